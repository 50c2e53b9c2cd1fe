/* ctl_usage: "vmailctl usage set|show|list" — disk use of shell accounts against their limit (R5, R6). */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

static const char *const usage_sizes[] = { "disk_limit", "files", "mailbox", "free_mailboxes", "total",
					   "allocated", "available", "quota", "used", NULL };

static int usage_set(struct ctl *ctx, const struct ctl_args *a)
{
	uint64_t b;
	char bbuf[24], done[300];
	if (!ctl_parse_size(a->argv[1], &b))
		return CTL_EXIT_FAIL;
	snprintf(bbuf, sizeof(bbuf), "%llu", (unsigned long long)b);
	const char *p[] = { a->argv[0], bbuf };
	snprintf(done, sizeof(done), "files of %s: %s", a->argv[0], a->argv[1]);
	return ctl_run(ctx, "SELECT vmail.usage_set_files($1, $2::bigint)", 2, p, done);
}

#define STATE_COLS                                                                                 \
	"q.login, q.disk_limit, q.files, q.mailbox, q.free_mailboxes, q.total, q.allocated,"       \
	" greatest(q.disk_limit - q.total, 0) AS available"

#define MAILBOXES                                                                                  \
	"SELECT m.address, m.quota, coalesce(u.bytes, 0) AS used, coalesce(u.messages, 0) AS messages" \
	" FROM vmail.mail_account m JOIN vmail.shell_account s ON s.id = m.shell_account_id"       \
	" LEFT JOIN vmail.mailbox_usage u ON u.mail_account_id = m.id"                             \
	" WHERE s.login = lower($1) ORDER BY m.address"

static int usage_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *login = a->argc ? a->argv[0] : ctx->as_login;
	if (!login)
		return ctl_usage_error(a, "usage show needs LOGIN");
	if (ctx->as_login) {
		if (strcmp(login, ctx->as_login) != 0)
			return ctl_fail("shell account %s may see only its own usage, not %s's", ctx->as_login,
					login);
		/* The panel's view: self_overview, the one function the panel role may read with */
		const char *p[] = { ctx->as_token };
#define SELF_STATE                                                                                 \
	"SELECT o->>'login' AS login, (o->>'disk_limit')::bigint AS disk_limit,"                   \
	" (o->>'files')::bigint AS files, (o->>'mailbox')::bigint AS mailbox,"                     \
	" (o->>'total')::bigint AS total, (o->>'allocated')::bigint AS allocated,"                 \
	" greatest((o->>'disk_limit')::bigint - (o->>'total')::bigint, 0) AS available"
#define SELF_FROM " FROM (SELECT vmail.self_overview($1)::json AS o) x"
		const char *q = ctx->json ? SELF_STATE
			", (SELECT coalesce(json_agg(json_build_object('address', e->>'address',"
			" 'quota', (e->>'quota')::bigint, 'used', (e->>'usage')::bigint,"
			" 'messages', (e->>'messages')::bigint)), '[]')"
			" FROM json_array_elements(o->'accounts') e) AS mailboxes" SELF_FROM
					  : SELF_STATE SELF_FROM;
		int rc = ctl_print_show(ctx, q, 1, p, usage_sizes, "no such shell account");
		if (rc != CTL_EXIT_OK || ctx->json)
			return rc;
		putchar('\n');
		return ctl_print_list(ctx,
				      "SELECT e->>'address' AS address, (e->>'quota')::bigint AS quota,"
				      " (e->>'usage')::bigint AS used, (e->>'messages')::bigint AS messages"
				      " FROM json_array_elements(vmail.self_overview($1)::json->'accounts') e",
				      1, p, usage_sizes);
	}
	const char *p[] = { login };
	char nf[300];
	snprintf(nf, sizeof(nf), "unknown shell account \"%s\"", login);
	if (ctx->json)
		return ctl_print_show(ctx,
				      "SELECT " STATE_COLS ", (SELECT coalesce(json_agg(b), '[]') FROM (" MAILBOXES
				      ") b) AS mailboxes FROM vmail.quota_state((vmail.shell_row($1)).login) q",
				      1, p, usage_sizes, nf);
	int rc = ctl_print_show(ctx, "SELECT " STATE_COLS " FROM vmail.quota_state((vmail.shell_row($1)).login) q",
				1, p, usage_sizes, nf);
	if (rc != CTL_EXIT_OK)
		return rc;
	putchar('\n');
	return ctl_print_list(ctx, MAILBOXES, 1, p, usage_sizes);
}

static int usage_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { ctl_opt_value(a, "customer") };
	return ctl_print_list(ctx,
			      "SELECT " STATE_COLS " FROM vmail.shell_account s"
			      " JOIN vmail.customer c ON c.id = s.customer_id,"
			      " LATERAL vmail.quota_state(s.login) q"
			      " WHERE $1::text IS NULL OR c.name = lower($1) ORDER BY q.login",
			      1, p, usage_sizes);
}

static const struct ctl_opt list_opts[] = {
	{ "customer", "NAME", "only this customer's shell accounts" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb usage_verbs[] = {
	{ "set", "LOGIN SIZE", 2, 2, CTL_ADMIN, "record the shell account's non-mail files (from cron)",
	  "SIZE is the disk use of LOGIN's files outside its mail folders, e.g. from\n"
	  "du -sb --exclude=Maildir --exclude=mail ~LOGIN.  It counts toward R6.",
	  NULL, usage_set },
	{ "show", "[LOGIN]", 0, 1, CTL_ADMIN | CTL_SELF,
	  "disk limit, files, own mailbox, each free mailbox, total, allocated", NULL, NULL, usage_show },
	{ "list", "", 0, 0, CTL_ADMIN, "usage of every shell account", NULL, list_opts, usage_list },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_usage = { "usage", "disk usage against the disk limit (R5, R6)", usage_verbs, NULL };
