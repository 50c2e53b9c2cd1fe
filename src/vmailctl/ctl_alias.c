/* ctl_alias: "vmailctl alias add|list|show|set|del" — addresses that deliver to mailboxes (R1, R7, R8). */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The targets as one PostgreSQL array literal, passed as a parameter: each element quoted,
 * with '"' and '\' escaped, so no value can change the array's shape.
 */
static char *array_literal(char *const *v, int n)
{
	size_t len = 3;
	for (int i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	char *out = malloc(len), *o = out;
	if (!out)
		return NULL;
	*o++ = '{';
	for (int i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

static int alias_add(struct ctl *ctx, const struct ctl_args *a)
{
	const char *addr = a->argv[0];
	char done[400];
	if (ctx->as_login) {
		if (a->argc > 2)
			return ctl_usage_error(a, "a self-service alias has exactly one destination");
		if (ctl_flag(a, "admin") || ctl_opt_value(a, "owner"))
			return ctl_usage_error(a, "--admin and --owner are for the administrator, not with --as");
		const char *p[] = { ctx->as_token, addr, a->argc > 1 ? a->argv[1] : ctx->as_login };
		snprintf(done, sizeof(done), "alias %s -> %s added", addr, p[2]);
		return ctl_run(ctx, "SELECT vmail.self_alias_add($1, $2, $3)", 3, p, done);
	}
	if (a->argc < 2)
		return ctl_usage_error(a, "alias add needs ADDRESS and at least one TARGET");
	const char *owner = ctl_opt_value(a, "owner");
	bool admin = ctl_flag(a, "admin");
	if (!admin && !owner)
		return ctl_usage_error(a, "say --owner LOGIN (a self-service alias, counts toward R1) or "
					  "--admin (an administrator alias)");
	char *targets = array_literal(a->argv + 1, a->argc - 1);
	if (!targets)
		return ctl_fail("out of memory");
	const char *p[] = { addr, targets, admin ? "false" : "true", owner };
	snprintf(done, sizeof(done), "%s alias %s added", admin ? "administrator" : "self-service", addr);
	int rc = ctl_run(ctx, "SELECT vmail.alias_add($1, $2::text[], $3::boolean, $4)", 4, p, done);
	free(targets);
	return rc;
}

static int alias_set(struct ctl *ctx, const struct ctl_args *a)
{
	const char *addr = a->argv[0];
	char done[400];
	snprintf(done, sizeof(done), "alias %s changed", addr);
	if (ctx->as_login) {
		if (a->argc != 2)
			return ctl_usage_error(a, "a self-service alias has exactly one destination");
		const char *p[] = { ctx->as_token, addr, a->argv[1] };
		return ctl_run(ctx, "SELECT vmail.self_alias_set($1, $2, $3)", 3, p, done);
	}
	char *targets = array_literal(a->argv + 1, a->argc - 1);
	if (!targets)
		return ctl_fail("out of memory");
	const char *p[] = { addr, targets };
	int rc = ctl_run(ctx, "SELECT vmail.alias_set($1, $2::text[])", 2, p, done);
	free(targets);
	return rc;
}

static int alias_del(struct ctl *ctx, const struct ctl_args *a)
{
	char done[400];
	snprintf(done, sizeof(done), "alias %s deleted", a->argv[0]);
	if (ctx->as_login) {
		const char *p[] = { ctx->as_token, a->argv[0] };
		return ctl_run(ctx, "SELECT vmail.self_alias_del($1, $2)", 2, p, done);
	}
	const char *p[] = { a->argv[0] };
	return ctl_run(ctx, "SELECT vmail.alias_del($1)", 1, p, done);
}

#define ALIAS_COLS                                                                                 \
	"SELECT a.address, c.name AS customer, o.login AS owner,"                                  \
	" CASE WHEN a.self_service THEN 'self-service' ELSE 'administrator' END AS kind,"          \
	" a.counts, string_to_array(vmail.entry_destinations(e, NULL), ',') AS destinations"       \
	" FROM vmail.alias a JOIN vmail.domain d ON d.id = a.domain_id"                            \
	" LEFT JOIN vmail.customer c ON c.id = coalesce(a.customer_id, d.customer_id)"             \
	" LEFT JOIN vmail.shell_account o ON o.id = a.owner_shell_id"                              \
	" LEFT JOIN vmail.address e ON e.alias_id = a.id"

static int alias_list(struct ctl *ctx, const struct ctl_args *a)
{
	if (ctx->as_login) {
		const char *p[] = { ctx->as_token };
		return ctl_print_list(ctx,
				      "SELECT x->>'address' AS address,"
				      " CASE WHEN (x->>'self_service')::boolean THEN 'self-service'"
				      "  ELSE 'administrator' END AS kind,"
				      " (x->>'counts')::boolean AS counts,"
				      " string_to_array(x->>'destinations', ',') AS destinations"
				      " FROM json_array_elements(vmail.self_overview($1)::json->'aliases') x",
				      1, p, NULL);
	}
	const char *p[] = { ctl_opt_value(a, "customer"), ctl_opt_value(a, "owner"), ctl_opt_value(a, "domain") };
	return ctl_print_list(ctx,
			      ALIAS_COLS " WHERE ($1::text IS NULL OR c.name = lower($1))"
					 " AND ($2::text IS NULL OR o.login = lower($2))"
					 " AND ($3::text IS NULL OR d.name = lower($3))"
					 " ORDER BY d.name, a.local_part",
			      3, p, NULL);
}

static int alias_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char nf[400];
	snprintf(nf, sizeof(nf), "unknown alias \"%s\"", a->argv[0]);
	return ctl_print_show(ctx,
			      ALIAS_COLS ", LATERAL (SELECT to_char(a.created_at, 'YYYY-MM-DD HH24:MI')"
					 " AS created) t WHERE a.address = lower(btrim($1))",
			      1, p, NULL, nf);
}

static const struct ctl_opt add_opts[] = {
	{ "owner", "LOGIN", "the shell account whose self-service alias this is (counts toward R1)" },
	{ "admin", NULL, "an administrator alias: beyond R1, any mailboxes of the customer or outside addresses" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt list_opts[] = {
	{ "customer", "NAME", "only this customer's" },
	{ "owner", "LOGIN", "only this shell account's" },
	{ "domain", "DOMAIN", "only in this domain" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb alias_verbs[] = {
	{ "add", "ADDRESS [TARGET...]", 1, -1, CTL_ADMIN | CTL_SELF, "add an alias",
	  "TARGET is a login (its mailbox), a mail account's address or, for administrator aliases,\n"
	  "an outside address.  In self-service mode (--as LOGIN) there is one target, by default\n"
	  "LOGIN itself, and the alias counts toward LOGIN's limit (R1).  An administrator alias\n"
	  "with --owner is recorded as a grant to that shell account (R10).",
	  add_opts, alias_add },
	{ "list", "", 0, 0, CTL_ADMIN | CTL_SELF, "list aliases", NULL, list_opts, alias_list },
	{ "show", "ADDRESS", 1, 1, CTL_ADMIN, "show one alias", NULL, NULL, alias_show },
	{ "set", "ADDRESS TARGET...", 2, -1, CTL_ADMIN | CTL_SELF, "replace an alias's destinations", NULL,
	  NULL, alias_set },
	{ "del", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "delete an alias", NULL, NULL, alias_del },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_alias = { "alias", "aliases: addresses that deliver to mailboxes", alias_verbs, NULL };
