/* ctl_log: "vmailctl log [list]" — the audit log: who changed what, when, before and after. */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

#define LOG_FILTER                                                                                 \
	" FROM vmail.audit_log l"                                                                  \
	" WHERE ($2::text IS NULL OR strpos(lower(l.object), lower($2)) > 0)"                      \
	" AND ($4::text IS NULL OR strpos(lower(l.actor), lower($4)) > 0)"

/* In the table one line per change: for updates only what changed. */
#define LOG_HUMAN                                                                                  \
	"SELECT to_char(l.at, 'YYYY-MM-DD HH24:MI:SS') AS at, l.actor, l.action, l.object_kind AS kind," \
	" l.object, CASE l.action"                                                                 \
	"  WHEN 'update' THEN (SELECT string_agg(k || ': ' || coalesce(l.before->>k, 'null') || ' -> '" \
	"   || coalesce(l.after->>k, 'null'), ', ' ORDER BY k) FROM jsonb_object_keys(l.after) k"  \
	"   WHERE l.before->k IS DISTINCT FROM l.after->k)"                                        \
	"  ELSE '' END AS change"
#define LOG_JSON                                                                                   \
	"SELECT l.id, l.at, l.actor, l.client, l.action, l.object_kind AS kind, l.object, l.before, l.after"

#define LOG_SINCE_TIME " AND ($1::text IS NULL OR l.at >= $1::timestamptz)"
#define LOG_SINCE_SPAN " AND l.at >= now() - $1::interval"
#define LOG_TAIL " ORDER BY l.id DESC LIMIT $3::int"

static int log_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *since = ctl_opt_value(a, "since"), *limit = ctl_opt_value(a, "limit");
	long n = 50;
	char nbuf[24];
	if (limit && !ctl_parse_int(limit, "limit", &n))
		return CTL_EXIT_FAIL;
	snprintf(nbuf, sizeof(nbuf), "%ld", n);
	const char *p[] = { since, ctl_opt_value(a, "object"), nbuf, ctl_opt_value(a, "actor") };
	bool span = since && ctl_looks_like_interval(since);
	/* The newest N, shown oldest first. */
	const char *sql;
	if (ctx->json)
		sql = span ? "SELECT * FROM (" LOG_JSON LOG_FILTER LOG_SINCE_SPAN LOG_TAIL ") t ORDER BY id"
			   : "SELECT * FROM (" LOG_JSON LOG_FILTER LOG_SINCE_TIME LOG_TAIL ") t ORDER BY id";
	else
		sql = span ? "SELECT at, actor, action, kind, object, change FROM (" LOG_HUMAN ", l.id"
			     LOG_FILTER LOG_SINCE_SPAN LOG_TAIL ") t ORDER BY id"
			   : "SELECT at, actor, action, kind, object, change FROM (" LOG_HUMAN ", l.id"
			     LOG_FILTER LOG_SINCE_TIME LOG_TAIL ") t ORDER BY id";
	return ctl_print_list(ctx, sql, 4, p, NULL);
}

static const struct ctl_opt list_opts[] = {
	{ "since", "WHEN", "only changes since a time (2026-01-31, '2026-01-31 12:00') or span (2h, 3 days)" },
	{ "object", "TEXT", "only objects whose name contains TEXT (login, address, domain, customer)" },
	{ "actor", "TEXT", "only changes by actors containing TEXT (admin:root, self:jan)" },
	{ "limit", "N", "at most the newest N changes (default 50)" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb log_verbs[] = {
	{ "list", "", 0, 0, CTL_ADMIN, "show the audit log, oldest first",
	  "Every change to customers, shell accounts, domains, aliases, mail accounts, settings\n"
	  "and grants, with who made it (admin:<OS user>, self:<login>, sql:<role>).  --json adds\n"
	  "the whole rows before and after.",
	  list_opts, log_list },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_log = { "log", "the audit log of every change", log_verbs, "list" };
