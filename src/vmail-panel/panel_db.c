/*
 * panel_db: every SQL statement of the panel, and the worker threads that run
 * them.  Why synchronous libpq on threads rather than pg.c's async pool: the
 * panel needs the SQLSTATE and the text of each refusal (the rule's words go
 * on the page), a handful of calls per page view, and the same thread model
 * as the Argon2 workers; a page view is rare next to a mail lookup.  The loop
 * never waits on a socket to PostgreSQL: it only queues jobs.  Every wait is
 * bounded by connect_timeout and statement_timeout.  The connection's role
 * should be one that may only execute the self-service functions
 * (vmail_panel); nothing here needs more, and that role reads no password
 * hash: the login sends a derived hash and gets a session token back.
 */
#include "panel_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "vmail/log.h"

/* Writes carry the client address for the audit trigger in the same statement (one transaction). */
#define WITH_CLIENT(call) \
	"SELECT (" call ")::text FROM (SELECT set_config('vmail.client', $1, true)) c"

static const struct {
	const char *sql;
	unsigned nparams; /* not counting the client */
	bool client;
} stmts[PANEL_DB_OP__COUNT] = {
	[PANEL_DB_LOGIN_PARAMS] = { "SELECT vmail.self_login_params($1)", 1, false },
	[PANEL_DB_LOGIN] = { "SELECT vmail.self_login($2, $3, $1, $4::integer)", 3, true },
	[PANEL_DB_LOGOUT] = { "SELECT vmail.self_logout($2, $1)::text", 1, true },
	[PANEL_DB_REHASH] = { WITH_CLIENT("vmail.self_rehash($2, $3, $4)"), 3, true },
	[PANEL_DB_OVERVIEW] = {
		/* self_overview's JSON taken apart here, so C needs no JSON parser: one row of
		 * scalars (kind 0), then domains (1), aliases (2), accounts (3) in order */
		"WITH o AS MATERIALIZED (SELECT vmail.self_overview($1)::json AS j) "
		"SELECT 0 AS k, 0::bigint AS i, j->>'login', j->>'state', j->>'primary_address', "
		"  j->>'mail_domain', j->>'disk_limit', j->>'files', j->>'mailbox', j->>'total', "
		"  j->>'allocated', j->>'alias_limit', j->>'aliases_used', j->>'free_account_limit' FROM o "
		"UNION ALL SELECT 1, d.i, d.v->>'name', d.v->>'kind', d.v->>'state', d.v->>'verify_token', "
		"  d.v->>'alias_of', NULL, NULL, NULL, NULL, NULL, NULL, NULL "
		"  FROM o, json_array_elements(o.j->'domains') WITH ORDINALITY d(v, i) "
		"UNION ALL SELECT 2, a.i, a.v->>'address', a.v->>'self_service', a.v->>'counts', "
		"  a.v->>'destinations', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL "
		"  FROM o, json_array_elements(o.j->'aliases') WITH ORDINALITY a(v, i) "
		"UNION ALL SELECT 3, m.i, m.v->>'address', m.v->>'state', m.v->>'quota', m.v->>'usage', "
		"  m.v->>'messages', NULL, NULL, NULL, NULL, NULL, NULL, NULL "
		"  FROM o, json_array_elements(o.j->'accounts') WITH ORDINALITY m(v, i) "
		"ORDER BY 1, 2",
		1, false },
	[PANEL_DB_ALIAS_ADD] = { WITH_CLIENT("vmail.self_alias_add($2, $3, $4)"), 3, true },
	[PANEL_DB_ALIAS_SET] = { WITH_CLIENT("vmail.self_alias_set($2, $3, $4)"), 3, true },
	[PANEL_DB_ALIAS_DEL] = { WITH_CLIENT("vmail.self_alias_del($2, $3)"), 2, true },
	[PANEL_DB_ACCOUNT_ADD] = { WITH_CLIENT("vmail.self_account_add($2, $3, $4, $5::bigint)"), 4,
				   true },
	[PANEL_DB_ACCOUNT_PASSWD] = { WITH_CLIENT("vmail.self_account_passwd($2, $3, $4)"), 3, true },
	[PANEL_DB_ACCOUNT_RESIZE] = { WITH_CLIENT("vmail.self_account_resize($2, $3, $4::bigint)"), 3,
				      true },
	[PANEL_DB_ACCOUNT_DEL] = { WITH_CLIENT("vmail.self_account_del($2, $3)"), 2, true },
	[PANEL_DB_PASSWD] = { WITH_CLIENT("vmail.self_passwd($2, $3, $4)"), 3, true },
	[PANEL_DB_CLIENT_SETUP] = { "SELECT service, protocol, host, port, security, username, domain, "
				    "service_name FROM vmail.client_setup($1)", 1, false },
	/* one row past PANEL_RECORDS_MAX says that there were more */
	[PANEL_DB_CLIENT_RECORDS] = { "SELECT domain, name, type, value FROM vmail.self_client_records($1) "
				      "LIMIT 513", 1, false },
	[PANEL_DB_RULES] = {
		/* both functions refuse a mailbox that is not the session's the same way (VM403);
		 * one row of scalars (kind 0), then the addresses (1) and the targets (2) in order */
		"WITH v AS MATERIALIZED (SELECT * FROM vmail.self_vacation_show($1, $2)), "
		"f AS MATERIALIZED (SELECT * FROM vmail.self_forward_list($1, $2) "
		"  WITH ORDINALITY x(t, keep, i)) "
		"SELECT 0 AS k, 0::bigint AS i, v.address, v.active::text, v.subject, v.body, "
		"  to_char(v.start_date, 'YYYY-MM-DD'), to_char(v.end_date, 'YYYY-MM-DD'), v.days::text, "
		"  v.from_address FROM v "
		"UNION ALL SELECT 1, a.i, a.a, NULL, NULL, NULL, NULL, NULL, NULL, NULL "
		"  FROM v, unnest(v.addresses) WITH ORDINALITY a(a, i) "
		"UNION ALL SELECT 2, f.i, f.t, f.keep::text, NULL, NULL, NULL, NULL, NULL, NULL FROM f "
		"ORDER BY 1, 2",
		2, false },
	[PANEL_DB_VACATION_SET] = {
		WITH_CLIENT("vmail.self_vacation_set($2, $3, $4, $5, $6::date, $7::date, $8::integer, $9)"),
		8, true },
	[PANEL_DB_VACATION_OFF] = { WITH_CLIENT("vmail.self_vacation_off($2, $3)"), 2, true },
	[PANEL_DB_FORWARD_ADD] = { WITH_CLIENT("vmail.self_forward_add($2, $3, $4, $5::boolean)"), 4,
				   true },
	[PANEL_DB_FORWARD_DEL] = { WITH_CLIENT("vmail.self_forward_del($2, $3, $4)"), 3, true },
};
_Static_assert(PANEL_RECORDS_MAX == 512, "the LIMIT of PANEL_DB_CLIENT_RECORDS");

#define OVERVIEW_COLS 14
#define SETUP_COLS 8
#define RECORDS_COLS 4
#define RULES_COLS 10

struct db_thread {
	const struct panel_db_settings *s;
	PGconn *pq;
};

static void notice_to_log(void *arg, const char *message)
{
	(void)arg;
	log_debug("panel db: %.*s", (int)strcspn(message, "\n"), message);
}

/* db_connect - a fresh connection with our deadlines, or NULL (logged) */
static PGconn *db_connect(const struct panel_db_settings *s)
{
	char timeout[16], options[64];
	snprintf(timeout, sizeof(timeout), "%u", (s->timeout_ms + 999) / 1000);
	snprintf(options, sizeof(options), "-c statement_timeout=%u", s->timeout_ms);
	/* ours first: a key in the operator's string wins */
	const char *const keys[] = { "connect_timeout", "application_name", "options", "dbname",
				     NULL };
	const char *const values[] = { timeout, "vmail-panel", options, s->conninfo, NULL };
	PGconn *pq = PQconnectdbParams(keys, values, 1);
	if (!pq || PQstatus(pq) != CONNECTION_OK) {
		log_warning("panel db: connect: %.*s", pq ? (int)strcspn(PQerrorMessage(pq), "\n") : 13,
			    pq ? PQerrorMessage(pq) : "out of memory");
		PQfinish(pq);
		return NULL;
	}
	PQsetNoticeProcessor(pq, notice_to_log, NULL);
	return pq;
}

static void *db_thread_init(void *arg)
{
	struct db_thread *t = calloc(1, sizeof(*t));
	if (t)
		t->s = arg;
	return t;
}

static void db_thread_fini(void *ctx)
{
	struct db_thread *t = ctx;
	if (t)
		PQfinish(t->pq);
	free(t);
}

static uint64_t to_u64(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

static const char *val(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static const char *str(PGresult *res, int row, int col)
{
	const char *v = val(res, row, col);
	return v ? v : "";
}

/* parse_overview - build the struct over res (which it then owns); NULL if malformed */
static struct panel_overview *parse_overview(PGresult *res)
{
	int n = PQntuples(res);
	if (PQnfields(res) != OVERVIEW_COLS || n < 1 || strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		return NULL;
	struct panel_overview *ov = calloc(1, sizeof(*ov));
	if (!ov)
		return NULL;
	ov->domains = calloc((size_t)n, sizeof(*ov->domains));
	ov->aliases = calloc((size_t)n, sizeof(*ov->aliases));
	ov->accounts = calloc((size_t)n, sizeof(*ov->accounts));
	if (!ov->domains || !ov->aliases || !ov->accounts) {
		panel_overview_free(ov);
		return NULL;
	}
	ov->res = res;
	ov->login = str(res, 0, 2);
	ov->state = str(res, 0, 3);
	ov->primary_address = str(res, 0, 4);
	ov->mail_domain = val(res, 0, 5);
	ov->disk_limit = to_u64(val(res, 0, 6));
	ov->files = to_u64(val(res, 0, 7));
	ov->mailbox = to_u64(val(res, 0, 8));
	ov->total = to_u64(val(res, 0, 9));
	ov->allocated = to_u64(val(res, 0, 10));
	ov->alias_limit = (unsigned)to_u64(val(res, 0, 11));
	ov->aliases_used = (unsigned)to_u64(val(res, 0, 12));
	ov->free_account_limit = (unsigned)to_u64(val(res, 0, 13));
	for (int r = 1; r < n; r++) {
		switch (PQgetvalue(res, r, 0)[0]) {
		case '1': {
			struct panel_domain *d = &ov->domains[ov->ndomains++];
			d->name = str(res, r, 2);
			d->kind = str(res, r, 3);
			d->state = str(res, r, 4);
			d->verify_token = val(res, r, 5);
			d->alias_of = val(res, r, 6);
			break;
		}
		case '2': {
			struct panel_alias *a = &ov->aliases[ov->naliases++];
			a->address = str(res, r, 2);
			a->self_service = strcmp(str(res, r, 3), "true") == 0;
			a->counts = strcmp(str(res, r, 4), "true") == 0;
			a->destinations = str(res, r, 5);
			break;
		}
		case '3': {
			struct panel_account *m = &ov->accounts[ov->naccounts++];
			m->address = str(res, r, 2);
			m->state = str(res, r, 3);
			m->quota = to_u64(val(res, r, 4));
			m->usage = to_u64(val(res, r, 5));
			m->messages = to_u64(val(res, r, 6));
			break;
		}
		default:
			break;
		}
	}
	return ov;
}

void panel_overview_free(struct panel_overview *ov)
{
	if (!ov)
		return;
	PQclear(ov->res);
	free(ov->domains);
	free(ov->aliases);
	free(ov->accounts);
	free(ov);
}

/* parse_rules - build the struct over res (which it then owns); NULL if malformed */
static struct panel_mailbox_rules *parse_rules(PGresult *res)
{
	int n = PQntuples(res);
	if (PQnfields(res) != RULES_COLS || n < 1 || strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		return NULL;
	struct panel_mailbox_rules *m = calloc(1, sizeof(*m));
	/* one array for both lists: the addresses fill it from the front, the targets from row n */
	const char **rows = m ? calloc(2 * (size_t)n, sizeof(*rows)) : NULL;
	if (!rows) {
		free(m);
		return NULL;
	}
	m->addresses = rows;
	m->forwards = rows + n;
	m->res = res;
	m->address = str(res, 0, 2);
	m->vacation_on = strcmp(str(res, 0, 3), "true") == 0;
	m->subject = val(res, 0, 4);
	m->body = val(res, 0, 5);
	m->start = val(res, 0, 6);
	m->end = val(res, 0, 7);
	m->days = (unsigned)to_u64(val(res, 0, 8));
	m->from = str(res, 0, 9);
	m->keep = true; /* what a new forward does unless told otherwise */
	for (int r = 1; r < n; r++) {
		if (PQgetvalue(res, r, 0)[0] == '1') {
			m->addresses[m->naddresses++] = str(res, r, 2);
		} else if (PQgetvalue(res, r, 0)[0] == '2') {
			m->forwards[m->nforwards++] = str(res, r, 2);
			m->keep = strcmp(str(res, r, 3), "true") == 0;
		}
	}
	return m;
}

void panel_mailbox_rules_free(struct panel_mailbox_rules *m)
{
	if (!m)
		return;
	PQclear(m->res);
	free(m->addresses); /* and the forwards inside it */
	free(m);
}

/* copy - v into out; false when it does not fit (the row then has an unexpected shape) */
static bool copy(char *out, size_t outlen, const char *v)
{
	size_t n = strlen(v);
	if (n >= outlen)
		return false;
	memcpy(out, v, n + 1);
	return true;
}

/* parse_setup - client_setup's rows copied into a new struct; NULL if malformed */
static struct panel_client_setup *parse_setup(PGresult *res)
{
	int n = PQntuples(res);
	if (PQnfields(res) != SETUP_COLS || n > PANEL_SETUP_MAX_SERVERS)
		return NULL;
	struct panel_client_setup *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	for (int r = 0; r < n; r++) {
		struct panel_setup_server *v = &s->srv[s->n++];
		char *end;
		unsigned long port = strtoul(str(res, r, 3), &end, 10);
		if (!copy(v->service, sizeof(v->service), str(res, r, 0)) ||
		    !copy(v->protocol, sizeof(v->protocol), str(res, r, 1)) ||
		    !copy(v->host, sizeof(v->host), str(res, r, 2)) ||
		    !copy(v->security, sizeof(v->security), str(res, r, 4)) ||
		    !copy(s->username, sizeof(s->username), str(res, r, 5)) ||
		    !copy(s->domain, sizeof(s->domain), str(res, r, 6)) ||
		    !copy(s->service_name, sizeof(s->service_name), str(res, r, 7)) || *end ||
		    port == 0 || port > 65535 || !v->host[0]) {
			free(s);
			return NULL;
		}
		v->port = (unsigned)port;
	}
	return s;
}

/* parse_records - self_client_records' rows copied into a new struct; NULL if malformed */
static struct panel_client_records *parse_records(PGresult *res)
{
	int n = PQntuples(res);
	if (PQnfields(res) != RECORDS_COLS)
		return NULL;
	size_t keep = n > PANEL_RECORDS_MAX ? PANEL_RECORDS_MAX : (size_t)n;
	struct panel_client_records *s = calloc(1, sizeof(*s) + keep * sizeof(s->rec[0]));
	if (!s)
		return NULL;
	s->truncated = (size_t)n > keep;
	for (size_t r = 0; r < keep; r++) {
		struct panel_dns_record *v = &s->rec[s->n++];
		if (!copy(v->domain, sizeof(v->domain), str(res, (int)r, 0)) ||
		    !copy(v->name, sizeof(v->name), str(res, (int)r, 1)) ||
		    !copy(v->type, sizeof(v->type), str(res, (int)r, 2)) ||
		    !copy(v->value, sizeof(v->value), str(res, (int)r, 3))) {
			free(s);
			return NULL;
		}
	}
	return s;
}

/*
 * run - one statement.  A refusal (SQLSTATE class VM, raised by vmail.fail)
 * is REFUSED with its message; anything else that failed is TEMPFAIL, and a
 * broken connection is dropped so the next job reconnects.  Only a
 * connection that was already broken before sending is retried (nothing can
 * have run), so a change is never applied twice.
 */
static PGresult *run(struct db_thread *t, struct panel_db_call *call, enum panel_db_op op)
{
	const char *params[PANEL_DB_MAX_PARAMS + 1];
	unsigned n = 0;
	if (stmts[op].client)
		params[n++] = call->client;
	for (unsigned i = 0; i < stmts[op].nparams; i++)
		params[n++] = call->params[i];

	if (t->pq && PQstatus(t->pq) != CONNECTION_OK) {
		PQfinish(t->pq);
		t->pq = NULL;
	}
	if (!t->pq && !(t->pq = db_connect(t->s))) {
		call->status = PANEL_DB_TEMPFAIL;
		return NULL;
	}
	PGresult *res = PQexecParams(t->pq, stmts[op].sql, (int)n, NULL, params, NULL, NULL, 0);
	ExecStatusType rs = PQresultStatus(res);
	if (rs == PGRES_TUPLES_OK) {
		call->status = PANEL_DB_OK;
		return res;
	}
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (state && strncmp(state, "VM", 2) == 0 && strcmp(state, "VM500") != 0) {
		call->status = PANEL_DB_REFUSED;
		snprintf(call->sqlstate, sizeof(call->sqlstate), "%s", state);
		snprintf(call->message, sizeof(call->message), "%s", msg ? msg : "refused");
		log_info("panel db: refused (%s): %s", state, call->message);
	} else {
		call->status = PANEL_DB_TEMPFAIL;
		const char *why = res ? PQresultErrorMessage(res) : PQerrorMessage(t->pq);
		log_warning("panel db: SQLSTATE %s: %.*s", state ? state : "-----",
			    (int)strcspn(why, "\n"), why);
		if (PQstatus(t->pq) != CONNECTION_OK) {
			PQfinish(t->pq);
			t->pq = NULL;
		}
	}
	PQclear(res);
	return NULL;
}

/* shape_error - a result unlike what the statement returns: the schema and the panel disagree */
static void shape_error(struct panel_db_call *call, const char *what)
{
	call->status = PANEL_DB_TEMPFAIL;
	log_warning("panel db: %s has an unexpected shape", what);
}

static void db_work(struct panel_job *job, void *ctx)
{
	struct panel_db_call *call = (struct panel_db_call *)job;
	struct db_thread *t = ctx;
	if (!t) {
		call->status = PANEL_DB_TEMPFAIL;
		return;
	}
	PGresult *res = run(t, call, call->op);
	if (res) {
		switch (call->op) {
		case PANEL_DB_LOGIN_PARAMS:
		case PANEL_DB_LOGIN:
			if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
				call->value = strdup(PQgetvalue(res, 0, 0));
			break;
		case PANEL_DB_REHASH:
			call->rehashed = PQntuples(res) == 1 && strcmp(str(res, 0, 0), "true") == 0;
			break;
		case PANEL_DB_OVERVIEW:
			if ((call->overview = parse_overview(res)))
				return; /* the overview owns res */
			shape_error(call, "overview");
			break;
		case PANEL_DB_RULES:
			if ((call->rules = parse_rules(res)))
				return; /* the rules own res */
			shape_error(call, "self_vacation_show or self_forward_list");
			break;
		case PANEL_DB_CLIENT_SETUP:
			if (!(call->setup = parse_setup(res)))
				shape_error(call, "client_setup");
			break;
		case PANEL_DB_CLIENT_RECORDS:
			if (!(call->records = parse_records(res)))
				shape_error(call, "self_client_records");
			break;
		default:
			break;
		}
		PQclear(res);
		return;
	}
	/* client_setup refuses only what is no address or no domain of ours; the rest is ours */
	if (call->status == PANEL_DB_REFUSED && call->op == PANEL_DB_CLIENT_SETUP &&
	    strcmp(call->sqlstate, PANEL_DB_NO_ADDRESS) != 0 &&
	    strcmp(call->sqlstate, PANEL_DB_NOT_SERVED) != 0)
		call->status = PANEL_DB_TEMPFAIL;
	/* no overview for a session that is gone: it would be refused the same way */
	if (call->status == PANEL_DB_REFUSED && call->want_overview &&
	    strcmp(call->sqlstate, PANEL_DB_SESSION_GONE) != 0) {
		struct panel_db_call ov = *call;
		if ((res = run(t, &ov, PANEL_DB_OVERVIEW)) && !(call->overview = parse_overview(res)))
			PQclear(res);
		if (!call->overview)
			call->status = PANEL_DB_TEMPFAIL;
	}
}

struct panel_pool *panel_db_pool_new(struct event_base *base, const struct panel_db_settings *s,
				     unsigned nthreads, unsigned max_queue)
{
	const struct panel_pool_ops ops = { db_thread_init, db_thread_fini, (void *)s };
	return panel_pool_new(base, "db", nthreads, max_queue, &ops);
}

bool panel_db_submit(struct panel_pool *pool, struct panel_db_call *call,
		     void (*done)(struct panel_job *job))
{
	panel_db_call_clear(call);
	call->status = PANEL_DB_TEMPFAIL;
	call->job.work = db_work;
	call->job.done = done;
	return panel_pool_submit(pool, &call->job);
}

void panel_db_call_clear(struct panel_db_call *call)
{
	free(call->value);
	call->value = NULL;
	panel_overview_free(call->overview);
	call->overview = NULL;
	free(call->setup);
	call->setup = NULL;
	free(call->records);
	call->records = NULL;
	panel_mailbox_rules_free(call->rules);
	call->rules = NULL;
	call->sqlstate[0] = '\0';
	call->message[0] = '\0';
	call->rehashed = false;
}
