/* ctl_customer: "vmailctl customer add|list|show|set|del" — who pays, and what its shell accounts may do. */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

static int customer_add(struct ctl *ctx, const struct ctl_args *a)
{
	const char *display = ctl_opt_value(a, "display");
	const char *p[] = { a->argv[0], display ? display : "" };
	char done[160];
	snprintf(done, sizeof(done), "customer %s added", a->argv[0]);
	return ctl_run(ctx, "SELECT vmail.customer_add($1, $2)", 2, p, done);
}

static int customer_del(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char done[160];
	snprintf(done, sizeof(done), "customer %s deleted", a->argv[0]);
	return ctl_run(ctx, "SELECT vmail.customer_del($1)", 1, p, done);
}

/* What "customer set" changes: the word on the command line, the key of vmail.customer_set. */
static const struct {
	const char *arg, *key;
} customer_keys[] = {
	{ "self-forward", "self_forward" },
};

static int customer_set(struct ctl *ctx, const struct ctl_args *a)
{
	const char *key = NULL;
	for (size_t i = 0; i < sizeof(customer_keys) / sizeof(customer_keys[0]); i++)
		if (strcmp(a->argv[1], customer_keys[i].arg) == 0)
			key = customer_keys[i].key;
	if (!key)
		return ctl_usage_error(a, "unknown key \"%s\" for \"customer set\": it takes self-forward",
				       a->argv[1]);
	const char *p[] = { a->argv[0], key, a->argv[2] };
	char done[400];
	snprintf(done, sizeof(done), "customer %s: %s %s", a->argv[0], a->argv[1], a->argv[2]);
	return ctl_run(ctx, "SELECT vmail.customer_set($1, $2, $3)", 3, p, done);
}

#define CUSTOMER_COLS                                                                              \
	"SELECT c.name, c.display_name AS display, c.self_forward,"                                \
	" ARRAY(SELECT s.login FROM vmail.shell_account s WHERE s.customer_id = c.id ORDER BY 1)"  \
	"  AS shell_accounts,"                                                                     \
	" ARRAY(SELECT d.name FROM vmail.domain d WHERE d.customer_id = c.id ORDER BY 1) AS domains," \
	" (SELECT count(*) FROM vmail.mail_account m WHERE m.customer_id = c.id AND m.kind = 'paid')" \
	"  AS paid_accounts,"                                                                      \
	" to_char(c.created_at, 'YYYY-MM-DD HH24:MI') AS created"                                  \
	" FROM vmail.customer c"

static int customer_list(struct ctl *ctx, const struct ctl_args *a)
{
	(void)a;
	return ctl_print_list(ctx, CUSTOMER_COLS " ORDER BY c.name", 0, NULL, NULL);
}

static int customer_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char nf[160];
	snprintf(nf, sizeof(nf), "unknown customer \"%s\"", a->argv[0]);
	return ctl_print_show(ctx, CUSTOMER_COLS " WHERE c.name = lower($1)", 1, p, NULL, nf);
}

static const struct ctl_opt add_opts[] = {
	{ "display", "TEXT", "display name (e.g. the company's full name)" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb customer_verbs[] = {
	{ "add", "NAME", 1, 1, CTL_ADMIN, "add a customer", NULL, add_opts, customer_add },
	{ "list", "", 0, 0, CTL_ADMIN, "list customers", NULL, NULL, customer_list },
	{ "show", "NAME", 1, 1, CTL_ADMIN, "show one customer", NULL, NULL, customer_show },
	{ "set", "NAME KEY VALUE", 3, 3, CTL_ADMIN, "change what the customer allows its shell accounts",
	  "KEY self-forward, VALUE on or off: whether its shell accounts may forward their\n"
	  "mailboxes' mail themselves (self-service, --as).  The administrator always may.",
	  NULL, customer_set },
	{ "del", "NAME", 1, 1, CTL_ADMIN, "delete a customer that owns nothing any more", NULL, NULL,
	  customer_del },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_customer = { "customer", "customers: who pays, owns shell accounts and domains",
					    customer_verbs, NULL };
