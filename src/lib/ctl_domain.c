/* ctl_domain: "vmailctl domain add|list|show|confirm|set|del" — one virtual mail server per DNS domain. */
#include "vmail/ctl.h"

#include <stdio.h>
#include <string.h>

static int domain_add(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0], a->argv[1] };
	if (!ctl_begin(ctx))
		return CTL_EXIT_FAIL;
	PGresult *r = ctl_exec(ctx, "SELECT vmail.domain_add($1, $2)", 2, p);
	if (!r)
		return CTL_EXIT_FAIL;
	PQclear(r);
	r = ctl_exec(ctx, "SELECT name, kind, state FROM vmail.domain WHERE name = lower(btrim($1))", 1,
		     p + 1);
	if (!r)
		return CTL_EXIT_FAIL;
	int rc = ctl_commit(ctx);
	if (rc == CTL_EXIT_OK && PQntuples(r) == 1)
		printf("domain %s added: %s, %s\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
		       PQgetvalue(r, 0, 2));
	PQclear(r);
	return rc;
}

static int domain_state(struct ctl *ctx, const char *name, const char *state)
{
	const char *p[] = { name, state };
	char done[300];
	snprintf(done, sizeof(done), "domain %s is now %s", name, state);
	return ctl_run(ctx, "SELECT vmail.domain_set_state($1, $2)", 2, p, done);
}

static int domain_confirm(struct ctl *ctx, const struct ctl_args *a)
{
	return domain_state(ctx, a->argv[0], "active");
}

static int domain_set(struct ctl *ctx, const struct ctl_args *a)
{
	const char *st = ctl_opt_value(a, "state");
	if (!st)
		return ctl_usage_error(a, "domain set: nothing to change");
	return domain_state(ctx, a->argv[0], st);
}

static int domain_del(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char done[300];
	snprintf(done, sizeof(done), "domain %s deleted", a->argv[0]);
	return ctl_run(ctx, "SELECT vmail.domain_del($1)", 1, p, done);
}

#define DOMAIN_COLS                                                                                \
	"SELECT d.name, coalesce(c.name, '(ISP)') AS customer, d.kind, d.state,"                   \
	" (SELECT count(*) FROM vmail.alias a WHERE a.domain_id = d.id) AS aliases,"               \
	" (SELECT count(*) FROM vmail.mail_account m WHERE m.domain_id = d.id AND m.kind = 'free')" \
	"  AS free_accounts,"                                                                      \
	" (SELECT count(*) FROM vmail.mail_account m WHERE m.domain_id = d.id AND m.kind = 'paid')" \
	"  AS paid_accounts"                                                                       \
	" FROM vmail.domain d LEFT JOIN vmail.customer c ON c.id = d.customer_id"

static int domain_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { ctl_opt_value(a, "customer") };
	return ctl_print_list(ctx, DOMAIN_COLS " WHERE $1::text IS NULL OR c.name = lower($1) ORDER BY d.name",
			      1, p, NULL);
}

static int domain_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char nf[300];
	snprintf(nf, sizeof(nf), "unknown domain \"%s\"", a->argv[0]);
	return ctl_print_show(ctx,
			      "SELECT q.*, d.verify_token,"
			      " to_char(d.created_at, 'YYYY-MM-DD HH24:MI') AS created,"
			      " to_char(d.activated_at, 'YYYY-MM-DD HH24:MI') AS activated,"
			      " ARRAY(SELECT s.login FROM vmail.shell_account s WHERE s.mail_domain_id = d.id"
			      "  ORDER BY 1) AS mail_domain_of"
			      " FROM (" DOMAIN_COLS " WHERE d.name = lower(btrim($1))) q"
			      " JOIN vmail.domain d ON d.name = q.name",
			      1, p, NULL, nf);
}

static const struct ctl_opt list_opts[] = {
	{ "customer", "NAME", "only this customer's" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt set_opts[] = {
	{ "state", "STATE", "pending_registration, pending_proof, active or suspended" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb domain_verbs[] = {
	{ "add", "CUSTOMER NAME", 2, 2, CTL_ADMIN, "add a domain",
	  "A domain of one label under a configured local suffix (lublin.pl, ...) is local and\n"
	  "waits for registration; any other is external and waits for ownership proof.  Either\n"
	  "becomes usable once active (\"domain confirm\").",
	  NULL, domain_add },
	{ "list", "", 0, 0, CTL_ADMIN, "list domains", NULL, list_opts, domain_list },
	{ "show", "NAME", 1, 1, CTL_ADMIN, "show one domain", NULL, NULL, domain_show },
	{ "confirm", "NAME", 1, 1, CTL_ADMIN, "make a domain active (registered, or ownership confirmed)",
	  NULL, NULL, domain_confirm },
	{ "set", "NAME", 1, 1, CTL_ADMIN, "change a domain's state", NULL, set_opts, domain_set },
	{ "del", "NAME", 1, 1, CTL_ADMIN, "delete a domain without addresses", NULL, NULL, domain_del },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_domain = { "domain", "domains: one virtual mail server per DNS domain",
					  domain_verbs, NULL };
