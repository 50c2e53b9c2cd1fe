/* ctl_mailbox: "vmailctl mailbox add|list|show|set|passwd|del" — mail accounts, free (R2–R5) and paid. */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

#include "vmail/pwhash.h"

static const char *const mailbox_sizes[] = { "quota", "used", NULL };

static int mailbox_add(struct ctl *ctx, const struct ctl_args *a)
{
	const char *addr = a->argv[0];
	const char *quota = ctl_opt_value(a, "quota"), *owner = ctl_opt_value(a, "owner");
	const char *customer = ctl_opt_value(a, "customer");
	bool paid = ctl_flag(a, "paid");
	if (!quota)
		return ctl_usage_error(a, "mailbox add needs --quota SIZE");
	if (ctx->as_login) {
		if (paid || owner || customer || ctl_opt_value(a, "password-hash"))
			return ctl_usage_error(a, "--paid, --owner, --customer and --password-hash are for the "
						  "administrator, not with --as");
	} else if (paid) {
		if (!customer || owner)
			return ctl_usage_error(a, "a paid mail account needs --customer NAME (and no --owner)");
	} else if (!owner || customer) {
		return ctl_usage_error(a, "say --owner LOGIN (a free mail account) or --paid --customer NAME");
	}
	uint64_t q;
	char qbuf[24], hash[PWHASH_MAX], prompt[400], done[400];
	if (!ctl_parse_size(quota, &q))
		return CTL_EXIT_FAIL;
	snprintf(qbuf, sizeof(qbuf), "%llu", (unsigned long long)q);
	snprintf(prompt, sizeof(prompt), "New password for %s: ", addr);
	if (!ctl_new_password_hash(ctx, a, prompt, hash, sizeof(hash)))
		return CTL_EXIT_FAIL;
	if (ctx->as_login) {
		const char *p[] = { ctx->as_token, addr, hash, qbuf };
		snprintf(done, sizeof(done), "free mail account %s added", addr);
		return ctl_run(ctx, "SELECT vmail.self_account_add($1, $2, $3, $4::bigint)", 4, p, done);
	}
	const char *p[] = { addr, paid ? "paid" : "free", paid ? customer : owner, hash, qbuf };
	snprintf(done, sizeof(done), "%s mail account %s added", paid ? "paid" : "free", addr);
	return ctl_run(ctx, "SELECT vmail.account_add($1, $2, $3, $4, $5::bigint)", 5, p, done);
}

static int mailbox_del(struct ctl *ctx, const struct ctl_args *a)
{
	char done[400];
	snprintf(done, sizeof(done), "mail account %s deleted", a->argv[0]);
	if (ctx->as_login) {
		const char *p[] = { ctx->as_token, a->argv[0] };
		return ctl_run(ctx, "SELECT vmail.self_account_del($1, $2)", 2, p, done);
	}
	const char *p[] = { a->argv[0] };
	return ctl_run(ctx, "SELECT vmail.account_del($1)", 1, p, done);
}

static bool step(struct ctl *ctx, const char *sql, int n, const char *const *p)
{
	PGresult *r = ctl_exec(ctx, sql, n, p);
	PQclear(r);
	return r != NULL;
}

static int mailbox_set(struct ctl *ctx, const struct ctl_args *a)
{
	const char *addr = a->argv[0];
	const char *quota = ctl_opt_value(a, "quota"), *state = ctl_opt_value(a, "state");
	bool pw = ctl_flag(a, "password") || ctl_opt_value(a, "password-hash");
	if (!quota && !state && !pw)
		return ctl_usage_error(a, "mailbox set: nothing to change");
	if (ctx->as_login && (state || ctl_opt_value(a, "password-hash")))
		return ctl_usage_error(a, "--state and --password-hash are for the administrator, not with --as");
	if (ctl_flag(a, "password") && ctl_opt_value(a, "password-hash"))
		return ctl_usage_error(a, "--password and --password-hash exclude each other");
	uint64_t q;
	char qbuf[24], hash[PWHASH_MAX], prompt[400];
	if (quota) {
		if (!ctl_parse_size(quota, &q))
			return CTL_EXIT_FAIL;
		snprintf(qbuf, sizeof(qbuf), "%llu", (unsigned long long)q);
	}
	snprintf(prompt, sizeof(prompt), "New password for %s: ", addr);
	if (pw && !ctl_new_password_hash(ctx, a, prompt, hash, sizeof(hash)))
		return CTL_EXIT_FAIL;
	if (!ctl_begin(ctx))
		return CTL_EXIT_FAIL;
	bool ok = true;
	if (ctx->as_login) {
		const char *pq[] = { ctx->as_token, addr, qbuf };
		const char *pp[] = { ctx->as_token, addr, hash };
		if (quota)
			ok = step(ctx, "SELECT vmail.self_account_resize($1, $2, $3::bigint)", 3, pq);
		if (ok && pw)
			ok = step(ctx, "SELECT vmail.self_account_passwd($1, $2, $3)", 3, pp);
	} else {
		const char *pq[] = { addr, "quota", qbuf };
		const char *ps[] = { addr, "state", state };
		const char *pp[] = { addr, "password", hash };
		if (quota)
			ok = step(ctx, "SELECT vmail.account_set($1, $2, $3)", 3, pq);
		if (ok && state)
			ok = step(ctx, "SELECT vmail.account_set($1, $2, $3)", 3, ps);
		if (ok && pw)
			ok = step(ctx, "SELECT vmail.account_set($1, $2, $3)", 3, pp);
	}
	if (!ok)
		return CTL_EXIT_FAIL;
	int rc = ctl_commit(ctx);
	if (rc == CTL_EXIT_OK)
		printf("mail account %s changed\n", addr);
	return rc;
}

static int mailbox_passwd(struct ctl *ctx, const struct ctl_args *a)
{
	const char *addr = a->argv[0];
	if (ctx->as_login && ctl_opt_value(a, "password-hash"))
		return ctl_usage_error(a, "--password-hash is for the administrator, not with --as");
	char hash[PWHASH_MAX], prompt[400], done[400];
	snprintf(prompt, sizeof(prompt), "New password for %s: ", addr);
	if (!ctl_new_password_hash(ctx, a, prompt, hash, sizeof(hash)))
		return CTL_EXIT_FAIL;
	snprintf(done, sizeof(done), "password of mail account %s changed", addr);
	if (ctx->as_login) {
		const char *p[] = { ctx->as_token, addr, hash };
		return ctl_run(ctx, "SELECT vmail.self_account_passwd($1, $2, $3)", 3, p, done);
	}
	const char *p[] = { addr, hash };
	return ctl_run(ctx, "SELECT vmail.account_set($1, 'password', $2)", 2, p, done);
}

#define MAILBOX_COLS                                                                               \
	"SELECT m.address, m.kind, c.name AS customer, s.login AS owner, m.quota,"                 \
	" coalesce(u.bytes, 0) AS used, coalesce(u.messages, 0) AS messages, m.state"              \
	" FROM vmail.mail_account m JOIN vmail.customer c ON c.id = m.customer_id"                 \
	" JOIN vmail.domain d ON d.id = m.domain_id"                                               \
	" LEFT JOIN vmail.shell_account s ON s.id = m.shell_account_id"                            \
	" LEFT JOIN vmail.mailbox_usage u ON u.mail_account_id = m.id"

static int mailbox_list(struct ctl *ctx, const struct ctl_args *a)
{
	if (ctx->as_login) {
		const char *p[] = { ctx->as_token };
		return ctl_print_list(ctx,
				      "SELECT x->>'address' AS address, (x->>'quota')::bigint AS quota,"
				      " (x->>'usage')::bigint AS used, (x->>'messages')::bigint AS messages,"
				      " x->>'state' AS state"
				      " FROM json_array_elements(vmail.self_overview($1)::json->'accounts') x",
				      1, p, mailbox_sizes);
	}
	const char *p[] = { ctl_opt_value(a, "customer"), ctl_opt_value(a, "owner"),
			    ctl_opt_value(a, "domain"), ctl_flag(a, "paid") ? "t" : NULL };
	return ctl_print_list(ctx,
			      MAILBOX_COLS " WHERE ($1::text IS NULL OR c.name = lower($1))"
					   " AND ($2::text IS NULL OR s.login = lower($2))"
					   " AND ($3::text IS NULL OR d.name = lower($3))"
					   " AND ($4::text IS NULL OR m.kind = 'paid')"
					   " ORDER BY d.name, m.local_part",
			      4, p, mailbox_sizes);
}

static int mailbox_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char nf[400];
	snprintf(nf, sizeof(nf), "unknown mail account \"%s\"", a->argv[0]);
	return ctl_print_show(ctx,
			      MAILBOX_COLS ", LATERAL (SELECT to_char(m.created_at, 'YYYY-MM-DD HH24:MI')"
					   " AS created) t WHERE m.address = lower(btrim($1))",
			      1, p, mailbox_sizes, nf);
}

static const struct ctl_opt add_opts[] = {
	{ "quota", "SIZE", "the mailbox's quota (K, M, G suffixes); required" },
	{ "owner", "LOGIN", "a free mail account of this shell account (R2-R5)" },
	{ "paid", NULL, "a paid mail account (with --customer): its own quota, no free limit" },
	{ "customer", "NAME", "the customer of a paid mail account" },
	{ "password-hash", "HASH", "import an existing hash instead of asking" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt set_opts[] = {
	{ "quota", "SIZE", "new quota (R5 for free accounts)" },
	{ "state", "STATE", "active or suspended" },
	{ "password", NULL, "ask for a new password" },
	{ "password-hash", "HASH", "import an existing hash" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt passwd_opts[] = {
	{ "password-hash", "HASH", "import an existing hash instead of asking (administrator)" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt list_opts[] = {
	{ "customer", "NAME", "only this customer's" },
	{ "owner", "LOGIN", "only this shell account's free accounts" },
	{ "domain", "DOMAIN", "only in this domain" },
	{ "paid", NULL, "only paid accounts" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb mailbox_verbs[] = {
	{ "add", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "add a mail account",
	  "Free: --owner LOGIN --quota SIZE (or --as LOGIN ... --quota SIZE); paid: --paid\n"
	  "--customer NAME --quota SIZE.  The password is asked on the terminal (twice), or read\n"
	  "from standard input with --password-stdin; with --as the first line of standard input\n"
	  "is LOGIN's own password and the second the new account's.",
	  add_opts, mailbox_add },
	{ "list", "", 0, 0, CTL_ADMIN | CTL_SELF, "list mail accounts", NULL, list_opts, mailbox_list },
	{ "show", "ADDRESS", 1, 1, CTL_ADMIN, "show one mail account", NULL, NULL, mailbox_show },
	{ "set", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "change quota, state or password", NULL, set_opts,
	  mailbox_set },
	{ "passwd", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "set a new password", NULL, passwd_opts,
	  mailbox_passwd },
	{ "del", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "delete a mail account", NULL, NULL, mailbox_del },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_mailbox = { "mailbox", "mail accounts: own mailbox and password, no shell",
					   mailbox_verbs, NULL };
