/* ctl_mailbox: "vmailctl mailbox add|list|show|set|passwd|del|retired|purge" — mail accounts,
 * free (R2–R5) and paid, and the homes of deleted ones. */
#include "ctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "purge.h"
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

#define MAILBOX_SELECT                                                                             \
	"SELECT m.address, m.kind, c.name AS customer, s.login AS owner, m.quota,"                 \
	" coalesce(u.bytes, 0) AS used, coalesce(u.messages, 0) AS messages, m.state"
#define MAILBOX_COLS MAILBOX_SELECT MAILBOX_FROM
#define MAILBOX_FROM                                                                               \
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
			      MAILBOX_SELECT ", m.home, to_char(m.created_at, 'YYYY-MM-DD HH24:MI') AS created"
			      MAILBOX_FROM " WHERE m.address = lower(btrim($1))",
			      1, p, mailbox_sizes, nf);
}

/* --older-than: N days, or a span ("12h", "3 days"); default 30 days, time to restore a mailbox deleted by mistake. */
static bool retired_span(const struct ctl_args *a, char *buf, size_t len)
{
	const char *v = ctl_opt_value(a, "older-than");
	if (!v)
		v = "30";
	if (v[0] && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 6)
		snprintf(buf, len, "%s days", v);
	else if (ctl_looks_like_interval(v) && strlen(v) < len)
		snprintf(buf, len, "%s", v);
	else
		return false;
	return true;
}

static int mailbox_retired(struct ctl *ctx, const struct ctl_args *a)
{
	char span[64];
	if (!retired_span(a, span, sizeof(span)))
		return ctl_usage_error(a, "--older-than takes days (30) or a span (12h, 3 days)");
	const char *p[] = { ctl_opt_value(a, "older-than") ? span : "0 s" };
	return ctl_print_list(ctx,
			      "SELECT address, home, uid, to_char(deleted_at, 'YYYY-MM-DD HH24:MI') AS deleted,"
			      " coalesce(refused, '') AS refused FROM vmail.retired_due($1::interval)",
			      1, p, NULL);
}

struct purge_totals {
	unsigned removed, missing, failed;
	uint64_t files, bytes;
};

/* One retired home: removed (or missing) leaves the list; anything else keeps its row. */
static void purge_one(struct ctl *ctx, PGresult *r, int i, bool dry, struct purge_totals *t)
{
	const char *id = PQgetvalue(r, i, 0), *addr = PQgetvalue(r, i, 1), *home = PQgetvalue(r, i, 2);
	if (!PQgetisnull(r, i, 4)) {
		fprintf(stderr, "vmailctl: %s (%s): refused: %s; kept in the list\n", home, addr, PQgetvalue(r, i, 4));
		t->failed++;
		return;
	}
	struct purge_result res;
	purge_tree(home, (uid_t)strtoul(PQgetvalue(r, i, 3), NULL, 10), dry, &res);
	switch (res.status) {
	case PURGE_REMOVED:
		printf("%s %s (%s): %" PRIu64 " files, %" PRIu64 " bytes\n", dry ? "would remove" : "removed",
		       home, addr, res.files, res.bytes);
		t->removed++;
		t->files += res.files;
		t->bytes += res.bytes;
		break;
	case PURGE_MISSING:
		printf("%s %s (%s): not there\n", dry ? "would drop" : "dropped", home, addr);
		t->missing++;
		break;
	case PURGE_REFUSED:
	case PURGE_FAILED:
		fprintf(stderr, "vmailctl: %s (%s): %s: %s; kept in the list\n", home, addr,
			res.status == PURGE_REFUSED ? "refused" : "removal failed", res.error);
		t->failed++;
		return;
	}
	const char *p[] = { id };
	PGresult *f = dry ? NULL : ctl_exec(ctx, "SELECT vmail.retired_forget($1::bigint)", 1, p);
	if (!dry && !f)
		t->failed++;
	PQclear(f);
}

static int mailbox_purge(struct ctl *ctx, const struct ctl_args *a)
{
	char span[64];
	if (!retired_span(a, span, sizeof(span)))
		return ctl_usage_error(a, "--older-than takes days (30) or a span (12h, 3 days)");
	bool dry = ctl_flag(a, "dry-run");
	/* Two purges at once would walk the same trees; the lock goes with the connection. */
	PGresult *lock = ctl_exec(ctx, "SELECT pg_try_advisory_lock(hashtext('vmailctl mailbox purge'))", 0, NULL);
	if (!lock)
		return CTL_EXIT_FAIL;
	bool mine = !strcmp(PQgetvalue(lock, 0, 0), "t");
	PQclear(lock);
	if (!mine) {
		fprintf(stderr, "vmailctl: another \"mailbox purge\" is running on this database; nothing done\n");
		return CTL_EXIT_FAIL;
	}
	const char *p[] = { span };
	PGresult *r = ctl_exec(ctx, "SELECT id, address, home, uid, refused FROM vmail.retired_due($1::interval)", 1, p);
	if (!r)
		return CTL_EXIT_FAIL;
	struct purge_totals t = { 0 };
	for (int i = 0; i < PQntuples(r); i++)
		purge_one(ctx, r, i, dry, &t);
	PQclear(r);
	printf("%s %u mailbox%s (%" PRIu64 " files, %" PRIu64 " bytes), %u missing, %u kept by an error\n",
	       dry ? "would purge" : "purged", t.removed, t.removed == 1 ? "" : "es", t.files, t.bytes,
	       t.missing, t.failed);
	return t.failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

static const struct ctl_opt retired_opts[] = {
	{ "older-than", "DAYS", "only those deleted at least DAYS days (or a span: 12h, 3 days) ago" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt purge_opts[] = {
	{ "older-than", "DAYS", "those deleted at least DAYS days (or a span: 12h, 3 days) ago; default 30" },
	{ "dry-run", NULL, "say what would be removed, remove nothing" },
	{ NULL, NULL, NULL },
};

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
	{ "del", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "delete a mail account",
	  "Its home is not touched: it is listed by \"mailbox retired\" until \"mailbox purge\"\n"
	  "removes it.  A new account with the same address gets a new home.",
	  NULL, mailbox_del },
	{ "retired", "", 0, 0, CTL_ADMIN, "list the homes of deleted mail accounts",
	  "With the reason purge would refuse one (refused), if any.", retired_opts, mailbox_retired },
	{ "purge", "", 0, 0, CTL_ADMIN, "remove the homes of mail accounts deleted long enough ago",
	  "Run as root (from cron: contrib/cron/vmaild-purge).  Each home is removed without\n"
	  "following symlinks, only if its top directory belongs to the account's uid, is not a\n"
	  "shell account's home or above one, and no live mail account's home is it, inside it or\n"
	  "above it; then it leaves the list.  A home that is not there leaves the list; one that\n"
	  "cannot be removed stays (exit status 1).",
	  purge_opts, mailbox_purge },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_mailbox = { "mailbox", "mail accounts: own mailbox and password, no shell",
					   mailbox_verbs, NULL };
