/*
 * ctl_domain: "vmailctl domain add|list|show|confirm|registered|verify|check|set|alias|
 * unalias|del" — one virtual mail server per DNS domain, its life cycle and its domain
 * aliases (docs/domains.md).
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "vmail/config.h"
#include "dnscheck.h"

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

static int domain_alias(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0], a->argv[1] };
	char done[600];
	snprintf(done, sizeof(done), "domain %s is now an alias of %s: the addresses of %s answer at %s too",
		 a->argv[0], a->argv[1], a->argv[1], a->argv[0]);
	return ctl_run(ctx, "SELECT vmail.domain_alias($1, $2)", 2, p, done);
}

static int domain_unalias(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char done[300];
	snprintf(done, sizeof(done), "domain %s is no longer an alias domain", a->argv[0]);
	return ctl_run(ctx, "SELECT vmail.domain_unalias($1)", 1, p, done);
}

#define DOMAIN_COLS                                                                                \
	"SELECT d.name, coalesce(c.name, '(ISP)') AS customer, d.kind, d.state,"                   \
	" (SELECT t.name FROM vmail.domain t WHERE t.id = d.alias_of) AS alias_of,"               \
	" (SELECT count(*) FROM vmail.alias a WHERE a.domain_id = d.id) AS aliases,"               \
	" (SELECT count(*) FROM vmail.mail_account m WHERE m.domain_id = d.id AND m.kind = 'free')" \
	"  AS free_accounts,"                                                                      \
	" (SELECT count(*) FROM vmail.mail_account m WHERE m.domain_id = d.id AND m.kind = 'paid')" \
	"  AS paid_accounts"                                                                       \
	" FROM vmail.domain d LEFT JOIN vmail.customer c ON c.id = d.customer_id"

static int domain_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { ctl_opt_value(a, "customer") };
	if (ctl_flag(a, "pending"))
		return ctl_print_list(ctx,
				      "SELECT * FROM vmail.domain_pending() WHERE $1::text IS NULL OR customer = lower($1)",
				      1, p, NULL);
	return ctl_print_list(ctx, DOMAIN_COLS " WHERE $1::text IS NULL OR c.name = lower($1) ORDER BY d.name",
			      1, p, NULL);
}

#define DOMAIN_SHOW_COLS                                                                           \
	"SELECT q.*, d.verify_token, vmail.domain_proof_record(d.name) AS proof_record,"           \
	" to_char(d.created_at, 'YYYY-MM-DD HH24:MI') AS created,"                                 \
	" to_char(d.activated_at, 'YYYY-MM-DD HH24:MI') AS activated,"                             \
	" ARRAY(SELECT s.login FROM vmail.shell_account s WHERE s.mail_domain_id = d.id"           \
	"  ORDER BY 1) AS mail_domain_of,"                                                         \
	" ARRAY(SELECT a.name FROM vmail.domain a WHERE a.alias_of = d.id ORDER BY 1)"             \
	"  AS alias_domains"
#define DOMAIN_SHOW_FROM                                                                           \
	" FROM (" DOMAIN_COLS " WHERE d.name = lower(btrim($1))) q"                                \
	" JOIN vmail.domain d ON d.name = q.name"
/* the records mail programs find the servers by, in the order they are advertised */
#define CLIENT_RECORDS_OF(domain)                                                                  \
	" FROM vmail.client_dns_records(" domain ") WITH ORDINALITY c(name, type, value, n)"
/* --json: the records inside the one object, so that a script needs no second call */
#define DOMAIN_SHOW_RECORDS_JSON                                                                   \
	", (SELECT json_agg(json_build_object('name', c.name, 'type', c.type, 'value', c.value)"   \
	"   ORDER BY c.n)" CLIENT_RECORDS_OF("d.name") ") AS client_records"
#define CLIENT_RECORDS                                                                             \
	"SELECT c.name, c.type, c.value" CLIENT_RECORDS_OF("lower(btrim($1))") " ORDER BY c.n"

/*
 * The records mail programs find the servers by, as zone-file lines under a zone-file
 * comment, unindented: the block can be pasted into the customer's zone as it is.
 */
static int print_client_records(struct ctl *ctx, const char *name)
{
	const char *p[] = { name };
	PGresult *r = ctl_exec(ctx, CLIENT_RECORDS, 1, p);
	if (!r)
		return CTL_EXIT_FAIL;
	printf("\n; mail programs find the servers by these (vmailctl domain check compares them with DNS)\n");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%s. %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
	PQclear(r);
	return CTL_EXIT_OK;
}

static int domain_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char nf[300];
	snprintf(nf, sizeof(nf), "unknown domain \"%s\"", a->argv[0]);
	if (ctx->json)
		return ctl_print_show(ctx, DOMAIN_SHOW_COLS DOMAIN_SHOW_RECORDS_JSON DOMAIN_SHOW_FROM, 1, p,
				      NULL, nf);
	int rc = ctl_print_show(ctx, DOMAIN_SHOW_COLS DOMAIN_SHOW_FROM, 1, p, NULL, nf);
	return rc == CTL_EXIT_OK ? print_client_records(ctx, a->argv[0]) : rc;
}

static int domain_registered(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	char done[300];
	snprintf(done, sizeof(done), "domain %s is registered and now active", a->argv[0]);
	return ctl_run(ctx, "SELECT vmail.domain_registered($1)", 1, p, done);
}

/* ---- DNS: ownership proof and delivery check ---- */

struct dns {
	struct dnscheck_resolver *res;
};

/* The resolver from the configuration file's dns_* keys, which vmaild accepts and ignores. */
static bool dns_open(struct ctl *ctx, struct dns *d)
{
	const char *path = ctl_config_path(ctx);
	static const char *const wanted[] = { "dns_resolv_conf", "dns_nameserver", "dns_timeout",
					      NULL };
	struct config cfg;
	char err[512];
	memset(d, 0, sizeof(*d));
	if (!config_load_keys(path, wanted, &cfg, err, sizeof(err)))
		return (ctl_fail("cannot read configuration: %s", err), false);
	d->res = dnscheck_resolver_new(cfg.dns_resolv_conf, cfg.dns_nameserver, cfg.dns_timeout, err,
				       sizeof(err));
	config_free(&cfg);
	if (!d->res)
		return (ctl_fail("%s: DNS: %s", path, err), false);
	return true;
}

static void dns_close(struct dns *d)
{
	dnscheck_resolver_free(d->res);
}

/* A PostgreSQL text[] literal of the records (quotes and backslashes escaped); NULL on no memory. */
static char *array_literal(const struct dnscheck_answer *ans, bool with_pref)
{
	size_t cap = 3 + ans->count * (2 * DNSCHECK_TEXT_MAX + 16);
	char *s = malloc(cap), *o = s;
	if (!s)
		return NULL;
	*o++ = '{';
	for (size_t i = 0; i < ans->count; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		if (with_pref)
			o += snprintf(o, 16, "%u ", ans->rec[i].pref);
		for (const char *t = ans->rec[i].text; *t; t++) {
			if (*t == '"' || *t == '\\')
				*o++ = '\\';
			*o++ = *t;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return s;
}

/* "\"a\", \"b\"" for messages, cut to fit */
static void quoted_list(const struct dnscheck_answer *ans, char *out, size_t outlen)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < ans->count && o + 1 < outlen; i++) {
		int n = snprintf(out + o, outlen - o, "%s\"%s\"", i ? ", " : "", ans->rec[i].text);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

enum verify_mode { VERIFY_ONE, VERIFY_ALL };

/*
 * One domain: look up its proof record, record the outcome (activating the domain on a
 * match) and say what was found.  Returns the exit status for this domain.
 */
static int verify_one(struct ctl *ctx, struct dns *dns, const char *name, enum verify_mode mode)
{
	const char *p[] = { name };
	PGresult *r = ctl_exec(ctx,
			       "SELECT name, kind, state, verify_token, vmail.domain_proof_record(name)"
			       " FROM vmail.domain WHERE name = lower(btrim($1))",
			       1, p);
	if (!r)
		return CTL_EXIT_FAIL;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return ctl_fail("unknown domain \"%s\"", name);
	}
	char dname[256], kind[32], state[32], token[128], record[512];
	snprintf(dname, sizeof(dname), "%s", PQgetvalue(r, 0, 0));
	snprintf(kind, sizeof(kind), "%s", PQgetvalue(r, 0, 1));
	snprintf(state, sizeof(state), "%s", PQgetvalue(r, 0, 2));
	snprintf(token, sizeof(token), "%s", PQgetvalue(r, 0, 3));
	snprintf(record, sizeof(record), "%s", PQgetvalue(r, 0, 4));
	PQclear(r);
	if (strcmp(kind, "local") == 0)
		return ctl_fail("domain %s is local: the ISP registers it, then: vmailctl domain registered %s",
				dname, dname);
	if (strcmp(kind, "external") != 0)
		return ctl_fail("domain %s is the primary domain: it needs no proof", dname);

	char qname[300];
	dnscheck_proof_name(dname, qname, sizeof(qname));
	struct dnscheck_answer *ans = malloc(sizeof(*ans));
	if (!ans)
		return ctl_fail("out of memory");
	dnscheck_lookup(dns->res, qname, DNSCHECK_TYPE_TXT, ans);
	int match = dnscheck_token_match(ans, token);
	const char *outcome = ans->status == DNSCHECK_TEMPFAIL ? "tempfail"
			      : match >= 0		       ? "match"
			      : ans->status == DNSCHECK_FOUND  ? "mismatch"
							       : "missing";
	char *found = array_literal(ans, false);
	if (!found) {
		free(ans);
		return ctl_fail("out of memory");
	}
	const char *q[] = { dname, outcome, found, ans->status == DNSCHECK_TEMPFAIL ? ans->error : NULL };
	char after[32] = "";
	int rc = CTL_EXIT_FAIL;
	if (ctl_begin(ctx) &&
	    (r = ctl_exec(ctx, "SELECT vmail.domain_verify_result($1, $2, $3::text[], $4)", 4, q))) {
		snprintf(after, sizeof(after), "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
		rc = ctl_commit(ctx);
	}
	free(found);
	if (rc != CTL_EXIT_OK) {
		free(ans);
		return rc;
	}

	char list[1024];
	quoted_list(ans, list, sizeof(list));
	bool was_active = strcmp(state, "active") == 0;
	if (match >= 0) {
		if (strcmp(state, "pending_proof") == 0)
			printf("domain %s verified: TXT \"%s\" found at %s; now %s\n", dname, token, qname, after);
		else
			printf("domain %s: ownership record in place at %s (state %s, unchanged)\n", dname,
			       qname, after);
	} else if (ans->status == DNSCHECK_TEMPFAIL) {
		ctl_fail("domain %s: temporary DNS error: %s; state unchanged (%s)", dname, ans->error, state);
		rc = CTL_EXIT_TEMPFAIL;
	} else {
		char what[1700];
		if (ans->status == DNSCHECK_FOUND)
			snprintf(what, sizeof(what), "found TXT records at %s: %s, none of them \"%s\"", qname,
				 list, token);
		else
			snprintf(what, sizeof(what), "no TXT record at %s (%s)", qname,
				 ans->status == DNSCHECK_NXDOMAIN ? "no such name in DNS"
								  : "the name has no TXT records");
		if (was_active)
			/* re-verification reports; suspending is the administrator's decision */
			rc = ctl_fail("domain %s is active but its ownership record is gone: %s; state unchanged",
				      dname, what);
		else if (mode == VERIFY_ALL) {
			/* cron runs this: a customer who has not published yet is no error */
			printf("domain %s still %s: %s\n", dname, state, what);
			rc = CTL_EXIT_OK;
		} else
			rc = ctl_fail("domain %s stays %s: %s; publish: %s", dname, state, what, record);
	}
	free(ans);
	return rc;
}

static int domain_verify(struct ctl *ctx, const struct ctl_args *a)
{
	bool all = ctl_flag(a, "all");
	if (all == (a->argc == 1))
		return ctl_usage_error(a, "domain verify: name one domain, or --all");
	struct dns dns;
	if (!dns_open(ctx, &dns))
		return CTL_EXIT_FAIL;
	if (!all) {
		int rc = verify_one(ctx, &dns, a->argv[0], VERIFY_ONE);
		dns_close(&dns);
		return rc;
	}
	PGresult *r = ctl_exec(ctx,
			       "SELECT name FROM vmail.domain WHERE kind = 'external'"
			       " AND state IN ('pending_proof', 'active') ORDER BY name",
			       0, NULL);
	if (!r) {
		dns_close(&dns);
		return CTL_EXIT_FAIL;
	}
	/* the worst wins: a temporary error is retried by cron, a lost record needs a person */
	int worst = CTL_EXIT_OK;
	for (int i = 0; i < PQntuples(r); i++) {
		int rc = verify_one(ctx, &dns, PQgetvalue(r, i, 0), VERIFY_ALL);
		if (rc == CTL_EXIT_TEMPFAIL || (rc != CTL_EXIT_OK && worst == CTL_EXIT_OK))
			worst = rc;
	}
	PQclear(r);
	dns_close(&dns);
	return worst;
}

/*
 * The MX part of "domain check": are the domain's MX hosts ours?  The outcome goes to the
 * audit log.  Returns the exit status: a temporary DNS error is the only failure.
 */
static int check_mx(struct ctl *ctx, struct dns *dns, const char *dname, const char *hosts)
{
	struct dnscheck_answer *ans = malloc(sizeof(*ans));
	if (!ans)
		return ctl_fail("out of memory");
	dnscheck_lookup(dns->res, dname, DNSCHECK_TYPE_MX, ans);

	/* most preferred first, as a sending server tries them */
	for (size_t i = 1; i < ans->count; i++)
		for (size_t k = i; k > 0 && ans->rec[k].pref < ans->rec[k - 1].pref; k--) {
			struct dnscheck_record t = ans->rec[k];
			ans->rec[k] = ans->rec[k - 1];
			ans->rec[k - 1] = t;
		}
	size_t foreign = 0;
	for (size_t i = 0; i < ans->count; i++)
		if (!dnscheck_host_in_list(ans->rec[i].text, hosts))
			foreign++;
	bool ok = ans->status == DNSCHECK_FOUND && foreign == 0;
	char *mx = array_literal(ans, true);
	if (!mx) {
		free(ans);
		return ctl_fail("out of memory");
	}
	const char *q[] = { dname, mx,
			    ans->status == DNSCHECK_TEMPFAIL ? NULL : ok ? "true" : "false",
			    ans->status == DNSCHECK_TEMPFAIL ? ans->error : NULL };
	int rc = CTL_EXIT_FAIL;
	PGresult *r;
	if (ctl_begin(ctx) &&
	    (r = ctl_exec(ctx, "SELECT vmail.domain_check_result($1, $2::text[], $3::boolean, $4)", 4, q))) {
		PQclear(r);
		rc = ctl_commit(ctx);
	}
	free(mx);
	if (rc != CTL_EXIT_OK) {
		free(ans);
		return rc;
	}

	if (ans->status == DNSCHECK_TEMPFAIL) {
		ctl_fail("domain %s: temporary DNS error: %s; nothing checked", dname, ans->error);
		free(ans);
		return CTL_EXIT_TEMPFAIL;
	}
	for (size_t i = 0; i < ans->count; i++)
		printf("MX %u %s: %s\n", ans->rec[i].pref, ans->rec[i].text,
		       dnscheck_host_in_list(ans->rec[i].text, hosts) ? "ours" : "NOT ours");
	/* warnings, not refusals: where a customer's mail goes is the customer's decision */
	if (ans->status != DNSCHECK_FOUND)
		fprintf(stderr, "vmailctl: warning: domain %s has no MX record (%s); point it at %s\n", dname,
			ans->status == DNSCHECK_NXDOMAIN ? "no such name in DNS" : "none published", hosts);
	else if (foreign)
		fprintf(stderr,
			"vmailctl: warning: domain %s: %zu of %zu MX hosts are not ours (%s); mail sent to "
			"them does not reach us\n",
			dname, foreign, ans->count, hosts);
	else
		printf("domain %s: delivery OK: every MX is one of ours\n", dname);
	free(ans);
	return CTL_EXIT_OK;
}

/* One record vmail.client_dns_records lists: what to ask and what the answer must hold. */
struct client_record {
	const char *name, *type, *value; /* as the database gives them; value as a zone file has it */
	uint16_t qtype;
	unsigned port;                   /* SRV */
	char target[DNSCHECK_NAME_MAX];  /* "." for a service not offered */
};

static bool client_record_parse(struct client_record *c)
{
	unsigned prio, weight;
	if (strcmp(c->type, "SRV") == 0) {
		c->qtype = DNSCHECK_TYPE_SRV;
		return sscanf(c->value, "%u %u %u %255s", &prio, &weight, &c->port, c->target) == 4;
	}
	c->qtype = DNSCHECK_TYPE_CNAME;
	c->port = 0;
	return strcmp(c->type, "CNAME") == 0 &&
	       snprintf(c->target, sizeof(c->target), "%s", c->value) < (int)sizeof(c->target);
}

/*
 * Does one of the records found say what c says?  Priority and weight are the customer's to
 * choose (a backup server of its own may come first), and extra records are allowed; a
 * service not offered ("." target) has no port worth comparing.
 */
static bool client_record_found(const struct client_record *c, const struct dnscheck_answer *ans)
{
	bool not_offered = strcmp(c->target, ".") == 0;
	for (size_t i = 0; ans->status == DNSCHECK_FOUND && i < ans->count; i++)
		if (dnscheck_host_equal(ans->rec[i].text, c->target) &&
		    (c->qtype != DNSCHECK_TYPE_SRV || not_offered || ans->rec[i].port == c->port))
			return true;
	return false;
}

/* What DNS holds instead, the way the expected value is written: "0 1 993 other.host." */
static void found_list(const struct client_record *c, const struct dnscheck_answer *ans, char *out,
		       size_t outlen)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < ans->count && o + 1 < outlen; i++) {
		const struct dnscheck_record *f = &ans->rec[i];
		const char *dot = strcmp(f->text, ".") == 0 ? "" : ".";
		int n = c->qtype == DNSCHECK_TYPE_SRV
				? snprintf(out + o, outlen - o, "%s%u %u %u %s%s", i ? ", " : "", f->pref,
					   f->weight, f->port, f->text, dot)
				: snprintf(out + o, outlen - o, "%s%s%s", i ? ", " : "", f->text, dot);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

enum client_outcome { CLIENT_OK, CLIENT_WRONG, CLIENT_TEMPFAIL };

/* Look one record up and say what was found: ok on stdout, missing or different as a warning. */
static enum client_outcome check_client_record(struct dns *dns, const char *dname,
					       const struct client_record *c, struct dnscheck_answer *ans)
{
	dnscheck_lookup(dns->res, c->name, c->qtype, ans);
	if (ans->status == DNSCHECK_TEMPFAIL) {
		ctl_fail("domain %s: temporary DNS error: %s (%s %s); it and the records after it "
			 "not checked", dname, ans->error, c->type, c->name);
		return CLIENT_TEMPFAIL;
	}
	if (client_record_found(c, ans)) {
		printf("%s %s: ok\n", c->type, c->name);
		return CLIENT_OK;
	}
	if (ans->status != DNSCHECK_FOUND) {
		fprintf(stderr, "vmailctl: warning: %s %s: missing (publish: %s. %s %s)\n", c->type, c->name,
			c->name, c->type, c->value);
		return CLIENT_WRONG;
	}
	char found[1024];
	found_list(c, ans, found, sizeof(found));
	fprintf(stderr, "vmailctl: warning: %s %s: different (found %s, publish: %s. %s %s)\n", c->type,
		c->name, found, c->name, c->type, c->value);
	return CLIENT_WRONG;
}

/*
 * The client-setup part of "domain check": the records "domain show" lists, each looked up.
 * Wrong ones are warnings, as for MX: a customer may configure its mail programs by hand.
 */
static int check_client_records(struct ctl *ctx, struct dns *dns, const char *dname)
{
	const char *p[] = { dname };
	PGresult *r = ctl_exec(ctx, CLIENT_RECORDS, 1, p);
	if (!r)
		return CTL_EXIT_FAIL;
	struct dnscheck_answer *ans = malloc(sizeof(*ans));
	if (!ans) {
		PQclear(r);
		return ctl_fail("out of memory");
	}
	int rc = CTL_EXIT_OK, wrong = 0;
	for (int i = 0; i < PQntuples(r) && rc == CTL_EXIT_OK; i++) {
		struct client_record c = { .name = PQgetvalue(r, i, 0), .type = PQgetvalue(r, i, 1),
					   .value = PQgetvalue(r, i, 2) };
		if (!client_record_parse(&c)) {
			rc = ctl_fail("vmail.client_dns_records gave a record vmailctl cannot read: %s %s %s",
				      c.name, c.type, c.value);
			break;
		}
		enum client_outcome o = check_client_record(dns, dname, &c, ans);
		if (o == CLIENT_TEMPFAIL)
			rc = CTL_EXIT_TEMPFAIL;
		wrong += o == CLIENT_WRONG;
	}
	if (rc == CTL_EXIT_OK && !wrong)
		printf("domain %s: mail programs OK: every record they find the servers by is in place\n",
		       dname);
	free(ans);
	PQclear(r);
	return rc;
}

static int domain_check(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { a->argv[0] };
	PGresult *r = ctl_exec(ctx,
			       "SELECT d.name, array_to_string(s.mail_hosts, ', ')"
			       " FROM vmail.domain d, vmail.settings s WHERE d.name = lower(btrim($1))",
			       1, p);
	if (!r)
		return CTL_EXIT_FAIL;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return ctl_fail("unknown domain \"%s\"", a->argv[0]);
	}
	char dname[256], hosts[1024];
	snprintf(dname, sizeof(dname), "%s", PQgetvalue(r, 0, 0));
	snprintf(hosts, sizeof(hosts), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (!hosts[0])
		return ctl_fail("no mail hosts to compare with: vmailctl settings set mail_hosts "
				"\"mx1.example.net mx2.example.net\"");

	struct dns dns;
	if (!dns_open(ctx, &dns))
		return CTL_EXIT_FAIL;
	int rc = check_mx(ctx, &dns, dname, hosts);
	if (rc == CTL_EXIT_OK)
		rc = check_client_records(ctx, &dns, dname);
	dns_close(&dns);
	return rc;
}

static const struct ctl_opt list_opts[] = {
	{ "customer", "NAME", "only this customer's" },
	{ "pending", NULL, "the work queue: domains awaiting registration or ownership proof" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt verify_opts[] = {
	{ "all", NULL, "every external domain awaiting proof or active (for cron)" },
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
	{ "show", "NAME", 1, 1, CTL_ADMIN, "show one domain and the DNS records it should publish",
	  "After the domain's row, the records mail programs find the servers by, as zone-file lines\n"
	  "to paste into the domain's zone:\n"
	  "  _imaps._tcp.NAME. SRV 0 1 993 mail.example.net.   (RFC 6186, one per service)\n"
	  "  _autodiscover._tcp.NAME. SRV 0 1 443 www.example.net.   (Outlook)\n"
	  "  autoconfig.NAME. CNAME www.example.net.   (Thunderbird)\n"
	  "A service not offered gets \"0 0 0 .\".  Hosts, ports and services come from the settings\n"
	  "(imap_host, submission_host, web_host, client_services, ...).  With --json the records\n"
	  "are client_records: [{name, type, value}].",
	  NULL, domain_show },
	{ "alias", "ALIAS-DOMAIN TARGET-DOMAIN", 2, 2, CTL_ADMIN,
	  "make every address of TARGET-DOMAIN answer at ALIAS-DOMAIN too",
	  "A lookup of local+ext@ALIAS answers from the first that exists: local+ext@ALIAS,\n"
	  "local@ALIAS, local+ext@TARGET, local@TARGET, the postmaster/abuse default, ALIAS's\n"
	  "catch-all, TARGET's catch-all.  Both domains belong to one customer and are active;\n"
	  "neither is the primary domain; a target is no alias domain itself.  Mirrored addresses\n"
	  "count toward no limit, are no login names and no mailboxes, and may be used as senders\n"
	  "by whoever may send as their target.  ALIAS keeps its own addresses, which win.",
	  NULL, domain_alias },
	{ "unalias", "ALIAS-DOMAIN", 1, 1, CTL_ADMIN, "stop mirroring the target's addresses",
	  NULL, NULL, domain_unalias },
	{ "confirm", "NAME", 1, 1, CTL_ADMIN, "make a domain active (registered, or ownership confirmed)",
	  NULL, NULL, domain_confirm },
	{ "registered", "NAME", 1, 1, CTL_ADMIN, "a local domain has been registered: make it active",
	  NULL, NULL, domain_registered },
	{ "verify", "NAME|--all", 0, 1, CTL_ADMIN, "look up an external domain's ownership record in DNS",
	  "The customer publishes the line \"domain show\" prints as proof_record:\n"
	  "  _vmail-verify.NAME. IN TXT \"vmail-verify=<token>\"\n"
	  "When the token is there, a domain awaiting proof becomes active.  Nameservers come from\n"
	  "the configuration (dns_nameserver, else dns_resolv_conf).  Exit status: 0 verified,\n"
	  "1 record missing or different (the message says what DNS holds), 75 temporary DNS error\n"
	  "(state unchanged).  With --all: one line per domain; 1 only when an active domain lost\n"
	  "its record, 75 when DNS failed for any.  Every attempt goes to the audit log.",
	  verify_opts, domain_verify },
	{ "check", "NAME", 1, 1, CTL_ADMIN,
	  "check the domain's MX records and the records mail programs use in DNS",
	  "Prints every MX host and whether it is one of the mail_hosts setting, then each record\n"
	  "\"domain show\" lists: \"SRV _imaps._tcp.NAME: ok\", or a warning that it is missing or\n"
	  "different, with what to publish.  SRV records are compared on port and target (priority\n"
	  "and weight are the customer's), the autoconfig CNAME on its target.  A domain whose mail\n"
	  "goes elsewhere, or whose mail programs are set up by hand, is the customer's choice:\n"
	  "warnings, exit status 0.  75 on a temporary DNS error.  The MX outcome goes to the\n"
	  "audit log.",
	  NULL, domain_check },
	{ "set", "NAME", 1, 1, CTL_ADMIN, "change a domain's state", NULL, set_opts, domain_set },
	{ "del", "NAME", 1, 1, CTL_ADMIN, "delete a domain without addresses", NULL, NULL, domain_del },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_domain = { "domain", "domains: one virtual mail server per DNS domain",
					  domain_verbs, NULL };
