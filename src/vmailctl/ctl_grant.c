/* ctl_grant: "vmailctl grant add|list" — what the administrator gave beyond the defaults (R10). */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

static int grant_add(struct ctl *ctx, const struct ctl_args *a)
{
	const char *login = a->argv[0], *what = a->argv[1], *value = a->argv[2];
	const char *note = ctl_opt_value(a, "note");
	char vbuf[24], done[300];
	if (strcmp(what, "disk-limit") == 0 || strcmp(what, "disk_limit") == 0) {
		uint64_t b;
		if (!ctl_parse_size(value, &b))
			return CTL_EXIT_FAIL;
		snprintf(vbuf, sizeof(vbuf), "%llu", (unsigned long long)b);
		what = "disk_limit";
		value = vbuf;
	} else if (strcmp(what, "alias-limit") == 0 || strcmp(what, "alias_limit") == 0) {
		long n;
		if (strcmp(value, "default") != 0) {
			if (!ctl_parse_int(value, "alias limit", &n))
				return CTL_EXIT_FAIL;
			snprintf(vbuf, sizeof(vbuf), "%ld", n);
			value = vbuf;
		}
		what = "alias_limit";
	} else {
		return ctl_usage_error(a, "unknown grant \"%s\" (alias-limit or disk-limit)", what);
	}
	const char *p[] = { login, what, value, note ? note : "" };
	snprintf(done, sizeof(done), "granted %s %s = %s", login, what, a->argv[2]);
	return ctl_run(ctx, "SELECT vmail.grant($1, $2, $3, $4)", 4, p, done);
}

static int grant_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argc ? a->argv[0] : NULL };
	return ctl_print_list(ctx,
			      "SELECT to_char(g.granted_at, 'YYYY-MM-DD HH24:MI:SS') AS granted_at, g.login,"
			      " g.what, g.old_value, g.new_value, g.granted_by, g.note"
			      " FROM vmail.grant_log g WHERE $1::text IS NULL OR g.login = lower($1)"
			      " ORDER BY g.granted_at, g.id",
			      1, p, NULL);
}

static const struct ctl_opt add_opts[] = {
	{ "note", "TEXT", "why (kept with the grant)" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb grant_verbs[] = {
	{ "add", "LOGIN WHAT VALUE", 3, 3, CTL_ADMIN, "grant a shell account more",
	  "WHAT is alias-limit (a number, or \"default\") or disk-limit (a size: 200M, 1G).\n"
	  "The change and its record are one transaction.  Administrator aliases (alias add\n"
	  "--admin --owner LOGIN) are recorded as grants too.",
	  add_opts, grant_add },
	{ "list", "[LOGIN]", 0, 1, CTL_ADMIN, "list grants", NULL, NULL, grant_list },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_grant = { "grant", "grants: more aliases or disk than the defaults (R10)",
					 grant_verbs, NULL };
