/* ctl_shell: "vmailctl shell add|list|show|set|passwd|del" — Unix logins with a disk limit and a mailbox. */
#include "ctl.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "vmail/pwhash.h"

static const char *const shell_sizes[] = { "disk_limit", "files", "mailbox", "total", "allocated", NULL };

static int shell_add(struct ctl *ctx, const struct ctl_args *a)
{
	const char *login = a->argv[1];
	const char *uid = ctl_opt_value(a, "uid"), *gid = ctl_opt_value(a, "gid");
	const char *home = ctl_opt_value(a, "home"), *disk = ctl_opt_value(a, "disk-limit");
	const char *mail_domain = ctl_opt_value(a, "mail-domain");
	char uidbuf[24], gidbuf[24], homebuf[512], diskbuf[24];
	long v;
	uint64_t bytes;

	if (!disk)
		return ctl_usage_error(a, "shell add needs --disk-limit SIZE");
	if (!ctl_parse_size(disk, &bytes))
		return CTL_EXIT_FAIL;
	snprintf(diskbuf, sizeof(diskbuf), "%llu", (unsigned long long)bytes);
	/* The Unix account usually exists already: take what it says unless told otherwise. */
	struct passwd *pw = getpwnam(login);
	if (!uid && !pw)
		return ctl_usage_error(a, "no Unix account \"%s\" on this system: give --uid and --gid", login);
	if (uid) {
		if (!ctl_parse_int(uid, "uid", &v))
			return CTL_EXIT_FAIL;
	} else {
		v = (long)pw->pw_uid;
	}
	snprintf(uidbuf, sizeof(uidbuf), "%ld", v);
	if (gid) {
		if (!ctl_parse_int(gid, "gid", &v))
			return CTL_EXIT_FAIL;
	} else if (pw) {
		v = (long)pw->pw_gid;
	} else {
		return ctl_usage_error(a, "no Unix account \"%s\" on this system: give --gid", login);
	}
	snprintf(gidbuf, sizeof(gidbuf), "%ld", v);
	if (!home) {
		if (pw)
			snprintf(homebuf, sizeof(homebuf), "%s", pw->pw_dir);
		else
			snprintf(homebuf, sizeof(homebuf), "/home/%s", login);
		home = homebuf;
	}

	char hash[PWHASH_MAX];
	const char *hp = NULL;
	if (ctl_flag(a, "no-password")) {
		if (ctl_opt_value(a, "password-hash"))
			return ctl_usage_error(a, "--no-password and --password-hash exclude each other");
	} else {
		char prompt[128];
		snprintf(prompt, sizeof(prompt), "New password for %s: ", login);
		if (!ctl_new_password_hash(ctx, a, prompt, hash, sizeof(hash)))
			return CTL_EXIT_FAIL;
		hp = hash;
	}

	if (!ctl_begin(ctx))
		return CTL_EXIT_FAIL;
	const char *p[] = { a->argv[0], login, uidbuf, gidbuf, home, hp, diskbuf };
	PGresult *r = ctl_exec(ctx, "SELECT vmail.shell_add($1, $2, $3::int, $4::int, $5, $6, $7::bigint)", 7, p);
	if (!r)
		return CTL_EXIT_FAIL;
	PQclear(r);
	if (mail_domain) {
		const char *q[] = { login, mail_domain };
		r = ctl_exec(ctx, "SELECT vmail.shell_set($1, 'mail_domain', $2)", 2, q);
		if (!r)
			return CTL_EXIT_FAIL;
		PQclear(r);
	}
	int rc = ctl_commit(ctx);
	if (rc == CTL_EXIT_OK)
		printf("shell account %s added\n", login);
	return rc;
}

static int shell_del(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char done[160];
	snprintf(done, sizeof(done), "shell account %s deleted", a->argv[0]);
	return ctl_run(ctx, "SELECT vmail.shell_del($1)", 1, p, done);
}

/* Keys of "shell set", in the order they are applied; sizes are parsed here. */
static const struct {
	const char *opt;
	const char *key;
	bool size;
} set_keys[] = {
	{ "state", "state", false },
	{ "home", "home", false },
	{ "mail-domain", "mail_domain", false },
	{ "disk-limit", "disk_limit", true },
	{ "alias-limit", "alias_limit", false },
};

static int shell_set(struct ctl *ctx, const struct ctl_args *a)
{
	const char *login = a->argv[0];
	bool any = ctl_flag(a, "password") || ctl_opt_value(a, "password-hash");
	char vals[sizeof(set_keys) / sizeof(set_keys[0])][24];
	for (size_t i = 0; i < sizeof(set_keys) / sizeof(set_keys[0]); i++) {
		const char *v = ctl_opt_value(a, set_keys[i].opt);
		if (!v)
			continue;
		any = true;
		uint64_t b;
		if (set_keys[i].size) {
			if (!ctl_parse_size(v, &b))
				return CTL_EXIT_FAIL;
			snprintf(vals[i], sizeof(vals[i]), "%llu", (unsigned long long)b);
		}
	}
	if (!any)
		return ctl_usage_error(a, "shell set: nothing to change");
	if (ctl_flag(a, "password") && ctl_opt_value(a, "password-hash"))
		return ctl_usage_error(a, "--password and --password-hash exclude each other");

	char hash[PWHASH_MAX];
	bool pw = any && (ctl_flag(a, "password") || ctl_opt_value(a, "password-hash"));
	if (pw) {
		char prompt[128];
		snprintf(prompt, sizeof(prompt), "New password for %s: ", login);
		if (!ctl_new_password_hash(ctx, a, prompt, hash, sizeof(hash)))
			return CTL_EXIT_FAIL;
	}
	if (!ctl_begin(ctx))
		return CTL_EXIT_FAIL;
	for (size_t i = 0; i < sizeof(set_keys) / sizeof(set_keys[0]); i++) {
		const char *v = ctl_opt_value(a, set_keys[i].opt);
		if (!v)
			continue;
		const char *p[] = { login, set_keys[i].key, set_keys[i].size ? vals[i] : v };
		PGresult *r = ctl_exec(ctx, "SELECT vmail.shell_set($1, $2, $3)", 3, p);
		if (!r)
			return CTL_EXIT_FAIL;
		PQclear(r);
	}
	if (pw) {
		const char *p[] = { login, hash };
		PGresult *r = ctl_exec(ctx, "SELECT vmail.shell_set($1, 'password', $2)", 2, p);
		if (!r)
			return CTL_EXIT_FAIL;
		PQclear(r);
	}
	int rc = ctl_commit(ctx);
	if (rc == CTL_EXIT_OK)
		printf("shell account %s changed\n", login);
	return rc;
}

static int shell_passwd(struct ctl *ctx, const struct ctl_args *a)
{
	const char *login = a->argc ? a->argv[0] : ctx->as_login;
	if (!login)
		return ctl_usage_error(a, "shell passwd needs LOGIN");
	if (ctx->as_login && strcmp(login, ctx->as_login) != 0)
		return ctl_fail("shell account %s may change only its own password, not %s's", ctx->as_login,
				login);
	if (ctx->as_login && ctl_opt_value(a, "password-hash"))
		return ctl_usage_error(a, "--password-hash is for the administrator, not with --as");
	char hash[PWHASH_MAX], prompt[128], done[160];
	snprintf(prompt, sizeof(prompt), "New password for %s: ", login);
	if (!ctl_new_password_hash(ctx, a, prompt, hash, sizeof(hash)))
		return CTL_EXIT_FAIL;
	snprintf(done, sizeof(done), "password of shell account %s changed", login);
	if (ctx->as_login) {
		/* the database checks the login password's hash once more (self_passwd) */
		const char *p[] = { ctx->as_token, ctx->as_derived, hash };
		return ctl_run(ctx, "SELECT vmail.self_passwd($1, $2, $3)", 3, p, done);
	}
	const char *p[] = { login, hash };
	return ctl_run(ctx, "SELECT vmail.shell_set($1, 'password', $2)", 2, p, done);
}

#define SHELL_COLS                                                                                 \
	"SELECT s.login, c.name AS customer, s.uid, s.gid, s.home, s.state, s.disk_limit,"         \
	" coalesce(s.alias_limit, (SELECT alias_limit FROM vmail.settings)) AS alias_limit,"       \
	" (SELECT count(*) FROM vmail.alias a WHERE a.owner_shell_id = s.id AND a.counts) AS aliases," \
	" (SELECT count(*) FROM vmail.mail_account m WHERE m.shell_account_id = s.id) AS free_accounts," \
	" d.name AS mail_domain"                                                                   \
	" FROM vmail.shell_account s JOIN vmail.customer c ON c.id = s.customer_id"                \
	" LEFT JOIN vmail.domain d ON d.id = s.mail_domain_id"

static int shell_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *cust = ctl_opt_value(a, "customer");
	const char *p[] = { cust };
	return ctl_print_list(ctx, SHELL_COLS " WHERE $1::text IS NULL OR c.name = lower($1) ORDER BY s.login",
			      1, p, shell_sizes);
}

static int shell_show(struct ctl *ctx, const struct ctl_args *a)
{
	if (ctx->as_login) {
		if (a->argc && strcmp(a->argv[0], ctx->as_login) != 0)
			return ctl_fail("shell account %s may see only itself, not %s", ctx->as_login, a->argv[0]);
		const char *p[] = { ctx->as_token };
		return ctl_print_show(ctx,
				      "SELECT o->>'login' AS login, o->>'state' AS state, o->>'customer' AS customer,"
				      " o->>'primary_address' AS primary_address, o->>'mail_domain' AS mail_domain,"
				      " (o->>'disk_limit')::bigint AS disk_limit, (o->>'total')::bigint AS total,"
				      " (o->>'allocated')::bigint AS allocated,"
				      " (o->>'aliases_used') || ' of ' || (o->>'alias_limit') AS aliases,"
				      " json_array_length(o->'accounts') || ' of ' || (o->>'free_account_limit')"
				      "  AS free_accounts,"
				      " ARRAY(SELECT x->>'name' FROM json_array_elements(o->'domains') x) AS domains"
				      " FROM (SELECT vmail.self_overview($1)::json AS o) q",
				      1, p, shell_sizes, "no such shell account");
	}
	if (!a->argc)
		return ctl_usage_error(a, "shell show needs LOGIN");
	const char *p[] = { a->argv[0] };
	char nf[160];
	snprintf(nf, sizeof(nf), "unknown shell account \"%s\"", a->argv[0]);
	return ctl_print_show(ctx,
			      "SELECT q.*, s.primary_address, q2.files, q2.mailbox, q2.total, q2.allocated,"
			      " to_char(s.created_at, 'YYYY-MM-DD HH24:MI') AS created FROM (" SHELL_COLS
			      " WHERE s.login = lower($1)) q,"
			      " LATERAL (SELECT login || '@' || (SELECT primary_domain FROM vmail.settings)"
			      "  AS primary_address, created_at FROM vmail.shell_account WHERE login = q.login) s,"
			      " LATERAL vmail.quota_state(q.login) q2",
			      1, p, shell_sizes, nf);
}

static const struct ctl_opt add_opts[] = {
	{ "disk-limit", "SIZE", "disk limit of the account (K, M, G suffixes); required" },
	{ "uid", "N", "Unix uid (default: from the system's account of that name)" },
	{ "gid", "N", "Unix gid (default: from the system's account of that name)" },
	{ "home", "DIR", "home directory (default: the system's, else /home/LOGIN)" },
	{ "mail-domain", "DOMAIN", "the domain of its free mail accounts (R3)" },
	{ "password-hash", "HASH", "import an existing hash, e.g. '{SHA512-CRYPT}$6$...' from shadow" },
	{ "no-password", NULL, "create it without a password (cannot log in until one is set)" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt set_opts[] = {
	{ "disk-limit", "SIZE", "new disk limit (a grant: see also \"grant add\")" },
	{ "alias-limit", "N", "self-service alias limit, or \"default\"" },
	{ "state", "STATE", "active or suspended (suspends its free mail accounts too)" },
	{ "mail-domain", "DOMAIN", "domain of its free mail accounts (R3); \"\" for none" },
	{ "home", "DIR", "home directory" },
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
	{ NULL, NULL, NULL },
};

static const struct ctl_verb shell_verbs[] = {
	{ "add", "CUSTOMER LOGIN", 2, 2, CTL_ADMIN, "add a shell account",
	  "The password is asked on the terminal (twice), or read from standard input with\n"
	  "--password-stdin, and stored as an Argon2id hash.",
	  add_opts, shell_add },
	{ "list", "", 0, 0, CTL_ADMIN, "list shell accounts", NULL, list_opts, shell_list },
	{ "show", "LOGIN", 0, 1, CTL_ADMIN | CTL_SELF, "show one shell account", NULL, NULL, shell_show },
	{ "set", "LOGIN", 1, 1, CTL_ADMIN, "change a shell account", NULL, set_opts, shell_set },
	{ "passwd", "[LOGIN]", 0, 1, CTL_ADMIN | CTL_SELF, "set a new password",
	  "With --as LOGIN --password-stdin, standard input holds the current password on the\n"
	  "first line and the new one on the second.",
	  passwd_opts, shell_passwd },
	{ "del", "LOGIN", 1, 1, CTL_ADMIN, "delete a shell account",
	  NULL, NULL, shell_del },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_shell = { "shell", "shell accounts: Unix logins with a disk limit and a mailbox",
					 shell_verbs, NULL };
