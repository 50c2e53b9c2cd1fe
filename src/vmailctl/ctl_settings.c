/* ctl_settings: "vmailctl settings show|set" — the settings the rules need, kept in the database. */
#include "ctl.h"

#include <stdio.h>

/*
 * One row per column of vmail.settings, whatever columns later migrations add.  Lists are
 * shown the way "settings set" takes them (blank-separated), so a value can be copied back.
 */
#define SETTINGS_ROWS                                                                              \
	"SELECT key AS setting,"                                                                   \
	" CASE jsonb_typeof(value) WHEN 'array' THEN"                                              \
	"  array_to_string(ARRAY(SELECT jsonb_array_elements_text(value)), ' ')"                   \
	"  ELSE value #>> '{}' END AS value"                                                       \
	" FROM jsonb_each(to_jsonb((SELECT s FROM vmail.settings s)) - 'id')"

static int settings_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argc ? a->argv[0] : NULL };
	if (p[0]) {
		char nf[300];
		snprintf(nf, sizeof(nf), "unknown setting \"%s\" (see: vmailctl settings show)", p[0]);
		return ctl_print_show(ctx, "SELECT value FROM (" SETTINGS_ROWS ") q WHERE setting = lower($1)",
				      1, p, NULL, nf);
	}
	return ctl_print_list(ctx, SETTINGS_ROWS " ORDER BY key", 0, NULL, NULL);
}

static int settings_set(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0], a->argv[1] };
	if (!ctl_begin(ctx))
		return CTL_EXIT_FAIL;
	PGresult *r = ctl_exec(ctx, "SELECT vmail.setting_set(lower($1), $2)", 2, p);
	if (!r)
		return CTL_EXIT_FAIL;
	PQclear(r);
	/* echo the value as stored: lists are split and lower-cased on the way in */
	r = ctl_exec(ctx, "SELECT value FROM (" SETTINGS_ROWS ") q WHERE setting = lower($1)", 1, p);
	if (!r)
		return CTL_EXIT_FAIL;
	int rc = ctl_commit(ctx);
	if (rc == CTL_EXIT_OK && PQntuples(r) == 1)
		printf("%s = %s\n", a->argv[0], PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

static const struct ctl_verb settings_verbs[] = {
	{ "show", "[KEY]", 0, 1, CTL_ADMIN, "show the settings (or one)",
	  "Limits, the sub-address delimiter, local_suffixes (which domains are local), mail_hosts\n"
	  "(where customers' MX records must point), the primary domain and mail layouts.  They\n"
	  "live in the database because the rules and lookups read them.",
	  NULL, settings_show },
	{ "set", "KEY VALUE", 2, 2, CTL_ADMIN, "change one setting (recorded in the audit log)",
	  "Lists (local_suffixes, mail_hosts) are separated by blanks or commas, e.g.\n"
	  "  vmailctl settings set local_suffixes \"lublin.pl krasnik.pl\"\n"
	  "  vmailctl settings set mail_hosts \"mx1.example.net, mx2.example.net\"\n"
	  "A changed suffix list decides the kind of domains added later; existing domains keep theirs.",
	  NULL, settings_set },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_settings = { "settings", "settings the rules need, kept in the database",
					    settings_verbs, "show" };
