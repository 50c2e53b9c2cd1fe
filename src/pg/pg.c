/*
 * pg: the pool of asynchronous libpq connections.  It owns connecting (with
 * deadline and backoff), preparing the statement table, pipelining requests,
 * matching results to requests, request deadlines and cancellation.  It knows
 * nothing about lookup kinds: callers hand it a statement table.
 *
 * Request life: pg_submit -> queue (FIFO, bounded) -> dispatched to the least
 * loaded READY connection, alone or in a batch of requests for the same
 * statement that waited together -> in that connection's in-flight FIFO (a
 * batch: in its batch op's member list) until its result, NULL and
 * PGRES_PIPELINE_SYNC have been read -> freed.  The caller's
 * callback runs once, when the result arrives, the deadline passes or the
 * connection fails, whichever is first; the object lives on until the server
 * has answered, so the pipeline stays in step.
 *
 * Reentrancy: callbacks may submit and cancel.  Every other pool change
 * (dispatching, recycling connections after reload, freeing retired ones,
 * answers that carry no query) happens in one "kick" event, so nothing is
 * freed or sent while a connection is reading its results.
 */
#include "vmail/pg.h"

#include "vmail/log.h"
#include "vmail/pgconn.h"

#include <sys/queue.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* After a request's deadline, how long more its query may stay in the pipeline before the connection is recycled. */
#define STALL_MIN_MS 5000
/* A statement that failed to prepare answers its recorded error without a round trip for this long. */
#define PREPARE_RETRY_MS 1000
/* How far down the queue a batch looks for requests of its statement. */
#define BATCH_SCAN 1024
/*
 * Ops in a connection's pipeline from which requests that may batch wait
 * (pool_kick_cb).  One measured best (docs/benchmarks.md): the batches grow,
 * and the other connections keep the server's CPUs busy meanwhile.
 */
#define BATCH_DEPTH 1
#define RATELIMIT_SEC 10
#define POOL_SIZE_MAX 256

enum op_kind { OP_QUERY, OP_PREPARE, OP_BATCH };
enum req_where { REQ_NEW, REQ_QUEUED, REQ_DONE, REQ_INFLIGHT };
enum pgc_phase { PHASE_RESULT, PHASE_NULL, PHASE_SYNC };
enum stmt_state { STMT_UNPREPARED, STMT_PREPARING, STMT_PREPARED, STMT_FAILED };

TAILQ_HEAD(req_list, pg_req);

struct pg_req {
	struct pg_pool *pool;
	TAILQ_ENTRY(pg_req) link; /* queue, done list or a connection's in-flight FIFO */
	struct event timer;       /* deadline, then stall detection */
	struct pg_conn *conn;     /* while in flight (a batch member: its batch's connection) */
	struct req_list members;  /* OP_BATCH: the requests it carries, in parameter order */
	unsigned nmembers;
	pg_cb *cb;                /* NULL once answered or cancelled */
	void *arg;
	enum op_kind op;
	enum req_where where;
	enum pg_status status;    /* the answer of a REQ_DONE request */
	unsigned stmt;
	bool retried;
	bool timed_out;
	bool single;              /* its batch failed: sent alone from now on */
	PGresult *held;           /* PG_STMT_AFTER_COMMIT: the result, until its sync arrived */
	enum pg_status held_status;
	unsigned nparams;
	char *params[];           /* nparams pointers, then the copied strings */
};

struct stmt_slot {
	enum stmt_state state;
	enum pg_status fail_status;
	struct timespec failed_at;
};

struct pg_conn {
	struct pg_pool *pool;
	unsigned id;
	unsigned generation; /* pool settings this connection was made with */
	struct pgconn pc;    /* connect, deadline, backoff; its state is ours, plus draining */
	bool draining;       /* READY, but settings changed: no new requests, recycled when idle */
	struct req_list inflight;
	unsigned ninflight;  /* ops in the pipeline (queries and prepares) */
	unsigned nqueries;   /* of which queries */
	unsigned prepares_pending;
	enum pgc_phase phase;
	struct stmt_slot *stmts; /* 2 * nstmts: statement i, then its batch form at nstmts + i */
};

struct ratelimit {
	char key[160];
	time_t last;
	unsigned suppressed;
};

struct pg_pool {
	struct event_base *base;
	const struct pg_stmt *stmts;
	unsigned nstmts;
	char **batch_names;       /* per statement: its batch form's prepared name, or NULL */
	struct pg_config cfg;
	char *conninfo;
	unsigned generation;
	const struct timeval *req_tv; /* libevent common timeout for request deadlines */
	struct timeval req_tv_plain;
	struct pg_conn **conns;
	unsigned nconns;             /* >= cfg.pool_size while retired ones drain */
	unsigned next_id;
	struct req_list queue;
	size_t nqueued;
	struct req_list done;
	struct event *kick;
	bool kicked;
	bool closing;
	struct pg_stats stats;
	struct ratelimit *rl_stmt; /* one per statement: a missing schema fails them all at once */
	struct ratelimit rl_conn;
	struct pg_pool *primary;   /* where writes go when this pool reads from a standby */
};

/* declare static stuff */
static void pgc_fail(struct pg_conn *conn, const char *what, const char *detail);
static void req_timer_cb(evutil_socket_t fd, short what, void *arg);
static void pool_kick(struct pg_pool *pool);
static void pool_kick_cb(evutil_socket_t fd, short what, void *arg);

static const char *const status_names[PG_STATUS__COUNT] = {
	[PG_FOUND] = "found",
	[PG_NOTFOUND] = "notfound",
	[PG_TEMPFAIL] = "tempfail",
	[PG_PERMFAIL] = "permfail",
	[PG_DEFERRED] = "deferred",
};

static const char *const conn_state_names[PG_CONN_STATE__COUNT] = {
	[PG_CONN_BACKOFF] = "backoff",
	[PG_CONN_CONNECTING] = "connecting",
	[PG_CONN_PREPARING] = "preparing",
	[PG_CONN_READY] = "ready",
	[PG_CONN_DRAINING] = "draining",
};

const char *pg_status_name(enum pg_status st)
{
	return (unsigned)st < PG_STATUS__COUNT ? status_names[st] : "?";
}

const char *pg_conn_state_name(enum pg_conn_state st)
{
	return (unsigned)st < PG_CONN_STATE__COUNT ? conn_state_names[st] : "?";
}

/* ---------------------------------------------------------------- helpers */

static struct timeval ms_tv(unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	return tv;
}

static struct timespec now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static long ms_since(struct timespec then)
{
	struct timespec now = now_mono();
	return (long)(now.tv_sec - then.tv_sec) * 1000 + (now.tv_nsec - then.tv_nsec) / 1000000;
}

/*
 * ratelimit_pass - false if the same message was logged less than
 * RATELIMIT_SEC ago; a database that is down would otherwise log one line
 * per request.  *suppressed gets how many were dropped before this one.
 */
static bool ratelimit_pass(struct ratelimit *rl, const char *key, unsigned *suppressed)
{
	struct timespec now = now_mono();
	if (strncmp(rl->key, key, sizeof(rl->key) - 1) == 0 && now.tv_sec - rl->last < RATELIMIT_SEC) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last = now.tv_sec;
	/* Keys are compared on their first sizeof(key) - 1 bytes only: keep those. */
	size_t n = strnlen(key, sizeof(rl->key) - 1);
	memcpy(rl->key, key, n);
	rl->key[n] = '\0';
	return true;
}

/*
 * A connection's prepared statements are slots: statement i at slot i, its
 * batch form at slot nstmts + i.  A batch op's stmt is its slot.
 */
static unsigned slot_stmt(const struct pg_pool *pool, unsigned slot)
{
	return slot < pool->nstmts ? slot : slot - pool->nstmts;
}

static const char *slot_name(const struct pg_pool *pool, unsigned slot)
{
	return slot < pool->nstmts ? pool->stmts[slot].name : pool->batch_names[slot - pool->nstmts];
}

/* ---------------------------------------------------------------- requests */

static struct pg_req *req_alloc(struct pg_pool *pool, enum op_kind op, unsigned stmt,
				const char *const *params, const size_t *lens, unsigned nparams)
{
	size_t bytes = sizeof(struct pg_req) + nparams * sizeof(char *);
	for (unsigned i = 0; i < nparams; i++)
		bytes += (lens ? lens[i] : strlen(params[i])) + 1;
	struct pg_req *req = calloc(1, bytes);
	if (!req)
		return NULL;
	req->pool = pool;
	req->op = op;
	req->stmt = stmt;
	req->where = REQ_NEW;
	req->nparams = nparams;
	TAILQ_INIT(&req->members);
	char *p = (char *)&req->params[nparams];
	for (unsigned i = 0; i < nparams; i++) {
		size_t len = lens ? lens[i] : strlen(params[i]);
		memcpy(p, params[i], len);
		p[len] = '\0';
		req->params[i] = p;
		p += len + 1;
	}
	evtimer_assign(&req->timer, pool->base, req_timer_cb, req);
	return req;
}

static void req_free(struct pg_req *req)
{
	event_del(&req->timer);
	PQclear(req->held);
	free(req);
}

/* req_answer - run the callback at most once; the object itself stays where it is */
static void req_answer(struct pg_req *req, enum pg_status st, const PGresult *res)
{
	pg_cb *cb = req->cb;
	if (!cb)
		return;
	req->cb = NULL;
	req->pool->stats.answers[st]++;
	cb(req->arg, st, res);
}

/* req_defer - answer st from the kick event, so no callback runs inside pg_submit */
static void req_defer(struct pg_req *req, enum pg_status st)
{
	struct pg_pool *pool = req->pool;
	req->status = st;
	req->where = REQ_DONE;
	TAILQ_INSERT_TAIL(&pool->done, req, link);
	pool_kick(pool);
}

static void queue_remove(struct pg_pool *pool, struct pg_req *req)
{
	TAILQ_REMOVE(&pool->queue, req, link);
	pool->nqueued--;
	req->where = REQ_NEW;
}

/*
 * Deadlines are one timer per request rather than a periodic sweeper: the
 * answer goes out at the deadline instead of up to a tick later, and since
 * every request of a pool has the same timeout, libevent's common-timeout
 * queue makes arming and disarming O(1) instead of a heap operation.  The same
 * timer then watches for a query that never finishes (stall).
 */
static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_req *req = arg;
	struct pg_pool *pool = req->pool;
	(void)fd;
	(void)what;

	switch (req->where) {
	case REQ_QUEUED:
		queue_remove(pool, req);
		pool->stats.timeouts++;
		req_answer(req, PG_TEMPFAIL, NULL);
		req_free(req);
		break;
	case REQ_INFLIGHT:
		if (!req->timed_out) {
			req->timed_out = true;
			if (req->cb)
				pool->stats.timeouts++;
			unsigned stall = pool->cfg.request_timeout_ms > STALL_MIN_MS ?
				pool->cfg.request_timeout_ms : STALL_MIN_MS;
			struct timeval tv = ms_tv(stall);
			event_add(&req->timer, &tv);
			/* late results are dropped: req_answer does nothing once cb is NULL */
			req_answer(req, PG_TEMPFAIL, NULL);
		} else {
			pgc_fail(req->conn, "query stalled", pool->stmts[req->stmt].name);
		}
		break;
	case REQ_NEW:
	case REQ_DONE:
		break;
	}
}

/* ---------------------------------------------------------------- connections */

/* The driver's states in the pool's words; DRAINING is READY with settings that changed. */
static const enum pg_conn_state pool_state[PGCONN_STATE__COUNT] = {
	[PGCONN_BACKOFF] = PG_CONN_BACKOFF,
	[PGCONN_CONNECTING] = PG_CONN_CONNECTING,
	[PGCONN_SETUP] = PG_CONN_PREPARING,
	[PGCONN_READY] = PG_CONN_READY,
};

static enum pg_conn_state pgc_state(const struct pg_conn *conn)
{
	return conn->draining ? PG_CONN_DRAINING : pool_state[conn->pc.state];
}

static void pgc_log_state(const struct pg_conn *conn, enum pg_conn_state from, enum pg_conn_state to)
{
	log_debug("pg[%u]: %s -> %s", conn->id, pg_conn_state_name(from), pg_conn_state_name(to));
}

/* pgc_changed - the driver moved; only READY can be draining */
static void pgc_changed(void *arg, enum pgconn_state from, enum pgconn_state to)
{
	struct pg_conn *conn = arg;
	enum pg_conn_state was = conn->draining ? PG_CONN_DRAINING : pool_state[from];
	conn->draining = false;
	pgc_log_state(conn, was, pool_state[to]);
}

/* pgc_drain - stop taking requests; pool_maintain recycles the connection once its pipeline is empty */
static void pgc_drain(struct pg_conn *conn)
{
	conn->draining = true;
	pgc_log_state(conn, PG_CONN_READY, PG_CONN_DRAINING);
}

/* pgc_start - begin a non-blocking connect with the pool's current settings */
static void pgc_start(void *arg)
{
	struct pg_conn *conn = arg;
	struct pg_pool *pool = conn->pool;
	/*
	 * expand_dbname lets libpq parse the whole string (or URI) itself, so
	 * multi-host lists, target_session_attrs and the rest work unchanged.
	 * client_encoding comes first so the string may still override it; keys
	 * are validated as UTF-8 above us.  Host names are resolved
	 * synchronously inside libpq: use hostaddr= or a unix socket to avoid it.
	 */
	static const char *const keys[] = {
		"client_encoding", "fallback_application_name", "dbname", NULL,
	};
	const char *values[] = { "UTF8", "vmaild", pool->conninfo, NULL };

	conn->generation = pool->generation;
	conn->phase = PHASE_RESULT;
	/* A new session has nothing prepared. */
	conn->prepares_pending = 0;
	for (unsigned i = 0; i < 2 * pool->nstmts; i++)
		conn->stmts[i].state = STMT_UNPREPARED;
	pgconn_connect(&conn->pc, keys, values, pool->cfg.connect_timeout_ms);
}

/* lost_may_retry - a read lost with its connection goes back to the queue, once */
static bool lost_may_retry(const struct pg_pool *pool, const struct pg_req *req)
{
	return req->cb && !req->timed_out && !req->retried && !pool->closing &&
	       (pool->stmts[req->stmt].flags & PG_STMT_RETRY);
}

static void requeue_lost(struct pg_pool *pool, struct pg_req *req)
{
	req->retried = true;
	req->conn = NULL;
	req->where = REQ_QUEUED;
	TAILQ_INSERT_HEAD(&pool->queue, req, link);
	pool->nqueued++;
}

/* op_answer_all - answer st to a query, or to every member a batch still holds, and free them */
static void op_answer_all(struct pg_req *op, enum pg_status st)
{
	struct pg_req *m;
	while ((m = TAILQ_FIRST(&op->members))) {
		TAILQ_REMOVE(&op->members, m, link);
		req_answer(m, st, NULL);
		req_free(m);
	}
	if (op->op == OP_QUERY)
		req_answer(op, st, NULL);
	req_free(op);
}

/*
 * pgc_fail - the one error path of a connection: close it, answer or
 * requeue what was in its pipeline, and schedule a reconnect with jittered
 * exponential backoff.  Read-only requests (PG_STMT_RETRY) go back to the
 * head of the queue once, keeping their deadline; others get TEMPFAIL,
 * because a write may have committed before the connection broke.
 */
static void pgc_fail(struct pg_conn *conn, const char *what, const char *detail)
{
	struct pg_pool *pool = conn->pool;
	char msg[512], key[600];
	unsigned suppressed = 0;

	pgconn_one_line(msg, sizeof(msg), detail);
	snprintf(key, sizeof(key), "%s: %s", what, msg);
	if (ratelimit_pass(&pool->rl_conn, key, &suppressed)) {
		if (suppressed)
			log_warning("pg[%u]: %s: %s (%u similar suppressed)", conn->id, what, msg, suppressed);
		else
			log_warning("pg[%u]: %s: %s", conn->id, what, msg);
	}
	pool->stats.conn_failures++;

	struct req_list lost = TAILQ_HEAD_INITIALIZER(lost);
	TAILQ_CONCAT(&lost, &conn->inflight, link);
	conn->ninflight = 0;
	conn->nqueries = 0;
	unsigned delay = pgconn_backoff(&conn->pc);
	log_debug("pg[%u]: reconnect in %u ms", conn->id, delay);

	/*
	 * First requeue (no callbacks run), walking backwards to keep their order
	 * at the head; a batch's members go back one by one, and may batch again.
	 */
	struct pg_req *req, *prev;
	for (req = TAILQ_LAST(&lost, req_list); req; req = prev) {
		prev = TAILQ_PREV(req, req_list, link);
		if (req->op == OP_BATCH) {
			struct pg_req *m, *mprev;
			for (m = TAILQ_LAST(&req->members, req_list); m; m = mprev) {
				mprev = TAILQ_PREV(m, req_list, link);
				if (lost_may_retry(pool, m)) {
					TAILQ_REMOVE(&req->members, m, link);
					requeue_lost(pool, m);
				}
			}
		} else if (req->op == OP_QUERY && lost_may_retry(pool, req)) {
			TAILQ_REMOVE(&lost, req, link);
			requeue_lost(pool, req);
		}
	}
	/* Then answer.  A callback may cancel a neighbour: it stays REQ_INFLIGHT, so cancel only clears its cb. */
	while ((req = TAILQ_FIRST(&lost))) {
		TAILQ_REMOVE(&lost, req, link);
		op_answer_all(req, PG_TEMPFAIL);
	}
	pool_kick(pool);
}

static void pgc_fail_cb(void *arg, const char *what, const char *detail)
{
	pgc_fail(arg, what, detail);
}

/* pgc_ready - set up: take requests */
static void pgc_ready(struct pg_conn *conn)
{
	pgconn_ready(&conn->pc);
	pool_kick(conn->pool);
}

/*
 * pgc_sync - end one request's pipeline segment.  libpq 17's
 * PQsendPipelineSync leaves the bytes in libpq's buffer for pool_kick_cb's
 * one flush per connection, so a burst of lookups leaves in one send; older
 * libpq's PQpipelineSync sends at once, one send per query.
 */
static int pgc_sync(PGconn *pq)
{
#ifdef LIBPQ_HAS_SEND_PIPELINE_SYNC
	return PQsendPipelineSync(pq);
#else
	return PQpipelineSync(pq);
#endif
}

/* pgc_send_prepare - queue PQsendPrepare plus its own sync, so one failure cannot abort the others */
static bool pgc_send_prepare(struct pg_conn *conn, unsigned i)
{
	const struct pg_stmt *st = &conn->pool->stmts[slot_stmt(conn->pool, i)];
	const char *sql = i < conn->pool->nstmts ? st->sql : st->batch_sql;
	struct pg_req *op = req_alloc(conn->pool, OP_PREPARE, i, NULL, NULL, 0);
	if (!op) {
		pgc_fail(conn, "prepare", "out of memory");
		return false;
	}
	op->where = REQ_INFLIGHT;
	op->conn = conn;
	TAILQ_INSERT_TAIL(&conn->inflight, op, link);
	conn->ninflight++;
	conn->stmts[i].state = STMT_PREPARING;
	if (!PQsendPrepare(conn->pc.pq, slot_name(conn->pool, i), sql, (int)st->nparams, NULL) ||
	    !pgc_sync(conn->pc.pq)) {
		pgc_fail(conn, "prepare", PQerrorMessage(conn->pc.pq));
		return false;
	}
	return true;
}

/* pgc_connected - the session's setup: pipeline mode, then every statement prepared */
static void pgc_connected(void *arg)
{
	struct pg_conn *conn = arg;
	struct pg_pool *pool = conn->pool;
	PGconn *pq = conn->pc.pq;
	if (PQsetnonblocking(pq, 1) != 0 || !PQenterPipelineMode(pq)) {
		pgc_fail(conn, "pipeline mode", PQerrorMessage(pq));
		return;
	}
	log_debug("pg[%u]: connected to %s, server %d", conn->id,
		  PQhost(pq) ? PQhost(pq) : "?", PQserverVersion(pq));
	pgconn_setup(&conn->pc);
	unsigned n = 0;
	for (unsigned i = 0; i < 2 * pool->nstmts; i++) {
		if (i >= pool->nstmts && !pool->batch_names[i - pool->nstmts])
			continue;
		if (!pgc_send_prepare(conn, i))
			return;
		n++;
	}
	conn->prepares_pending = n;
	if (!pgconn_flush(&conn->pc, "send"))
		return;
	if (n == 0)
		pgc_ready(conn);
}

/* is_conn_error - errors after which the session is gone or unusable */
static bool is_conn_error(const char *sqlstate)
{
	return !sqlstate || strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0;
}

/*
 * classify - only what an operator must fix is permanent (reliability rule
 * 2): class 42 (undefined function or table, syntax, privilege), 22 (data
 * exception) and 3F (invalid schema name: the schema is not installed, which
 * PostgreSQL reports as 3F000 rather than 42883).  Everything else, from
 * deadlocks to a server shutting down, may pass: TEMPFAIL.  The schema's
 * deliberate "not now" is DEFERRED.
 */
static enum pg_status classify(const char *sqlstate)
{
	if (strcmp(sqlstate, PG_SQLSTATE_DEFER) == 0)
		return PG_DEFERRED;
	if (strncmp(sqlstate, "42", 2) == 0 || strncmp(sqlstate, "22", 2) == 0 ||
	    strncmp(sqlstate, "3F", 2) == 0)
		return PG_PERMFAIL;
	return PG_TEMPFAIL;
}

/* log_query_error - slot is a statement or its batch form, which share one rate limit */
static void log_query_error(struct pg_conn *conn, unsigned slot, const char *sqlstate,
			    const char *message)
{
	const char *stmt = slot_name(conn->pool, slot);
	char msg[512], key[600];
	unsigned suppressed = 0;
	pgconn_one_line(msg, sizeof(msg), message);
	snprintf(key, sizeof(key), "%s %s", sqlstate, msg);
	if (!ratelimit_pass(&conn->pool->rl_stmt[slot_stmt(conn->pool, slot)], key, &suppressed))
		return;
	if (suppressed)
		log_warning("pg[%u]: %s: SQLSTATE %s: %s (%u similar suppressed)", conn->id, stmt,
			    sqlstate, msg, suppressed);
	else
		log_warning("pg[%u]: %s: SQLSTATE %s: %s", conn->id, stmt, sqlstate, msg);
}

/* check_shape - classify a PGRES_TUPLES_OK result against its statement */
static enum pg_status check_shape(struct pg_conn *conn, unsigned op_stmt, const PGresult *res)
{
	const struct pg_stmt *st = &conn->pool->stmts[op_stmt];
	int nf = PQnfields(res), nt = PQntuples(res);
	if (nf != (int)st->ncols || (st->shape == PG_SHAPE_VALUE && nt > 1)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "result has %d rows of %d columns, expected %s of %u",
			 nt, nf, st->shape == PG_SHAPE_VALUE ? "at most 1 row" : "rows", st->ncols);
		log_query_error(conn, op_stmt, "-----", msg);
		return PG_PERMFAIL;
	}
	if (nt == 0 || (st->shape == PG_SHAPE_VALUE && PQgetisnull(res, 0, 0)))
		return PG_NOTFOUND;
	return PG_FOUND;
}

/* one_row - row r of a batch's answers as the one-row, one-column result the single statement gives */
static PGresult *one_row(const PGresult *res, int r)
{
	PGresAttDesc att = { .name = (char *)"v", .typid = PQftype(res, 1), .typlen = -1, .atttypmod = -1 };
	PGresult *one = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	if (!one || !PQsetResultAttrs(one, 1, &att) ||
	    !PQsetvalue(one, 0, 0, PQgetvalue(res, r, 1), PQgetlength(res, r, 1))) {
		PQclear(one);
		return NULL;
	}
	return one;
}

/*
 * batch_resend_singly - a batch failed as a whole: its members go back to the
 * head of the queue, in order, each to be sent alone, so that the key that
 * broke it fails by itself and a schema without the batch form still answers.
 */
static void batch_resend_singly(struct pg_pool *pool, struct pg_req *op)
{
	struct pg_req *m, *prev;
	for (m = TAILQ_LAST(&op->members, req_list); m; m = prev) {
		prev = TAILQ_PREV(m, req_list, link);
		TAILQ_REMOVE(&op->members, m, link);
		if (!m->cb || m->timed_out) {
			req_free(m);
			continue;
		}
		m->single = true;
		m->conn = NULL;
		m->where = REQ_QUEUED;
		TAILQ_INSERT_HEAD(&pool->queue, m, link);
		pool->nqueued++;
	}
	pool->stats.batch_fallbacks++;
	pool_kick(pool);
}

/*
 * pgc_batch_result - answer every member of a batch from its rows (i, v,
 * deferred); a member without a row is not found.
 */
static void pgc_batch_result(struct pg_conn *conn, struct pg_req *op, const PGresult *res)
{
	struct pg_pool *pool = conn->pool;
	int rowof[PG_BATCH_MAX];
	unsigned n = op->nmembers;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3) {
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		bool unprepared = sqlstate && strcmp(sqlstate, "26000") == 0 &&
				  conn->stmts[op->stmt].state == STMT_FAILED;
		if (!unprepared) /* else its prepare failed just before and was logged */
			log_query_error(conn, op->stmt, sqlstate ? sqlstate : "-----",
					PQresultStatus(res) == PGRES_TUPLES_OK ?
						"batch result is not (i, v, deferred)" :
						PQresultErrorMessage(res));
		batch_resend_singly(pool, op);
		return;
	}
	for (unsigned k = 0; k < n; k++)
		rowof[k] = -1;
	for (int r = 0; r < PQntuples(res); r++) {
		unsigned long i = strtoul(PQgetvalue(res, r, 0), NULL, 10);
		if (i >= 1 && i <= n && rowof[i - 1] < 0)
			rowof[i - 1] = r;
	}
	struct pg_req *m;
	for (unsigned k = 0; (m = TAILQ_FIRST(&op->members)); k++) {
		TAILQ_REMOVE(&op->members, m, link);
		int r = k < n ? rowof[k] : -1;
		if (!m->cb) {
			/* cancelled or timed out: nothing to say */
		} else if (r >= 0 && PQgetvalue(res, r, 2)[0] == 't') {
			log_debug("pg[%u]: %s: deferred", conn->id, pool->stmts[m->stmt].name);
			req_answer(m, PG_DEFERRED, NULL);
		} else if (r < 0 || PQgetisnull(res, r, 1)) {
			req_answer(m, PG_NOTFOUND, NULL);
		} else {
			PGresult *one = one_row(res, r);
			req_answer(m, one ? PG_FOUND : PG_TEMPFAIL, one);
			PQclear(one);
		}
		req_free(m);
	}
}

/*
 * pgc_result - the first result of the op at the head of the pipeline.
 * Returns false if the connection failed (and was closed) meanwhile.
 */
static bool pgc_result(struct pg_conn *conn, struct pg_req *op, PGresult *res)
{
	ExecStatusType rs = PQresultStatus(res);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	enum pg_status status;

	if (rs == PGRES_FATAL_ERROR && is_conn_error(sqlstate)) {
		char detail[512];
		pgconn_one_line(detail, sizeof(detail), PQresultErrorMessage(res));
		PQclear(res);
		pgc_fail(conn, "connection lost", detail);
		return false;
	}

	if (op->op == OP_BATCH) {
		pgc_batch_result(conn, op, res);
		PQclear(res);
		return true;
	}

	if (op->op == OP_PREPARE) {
		struct stmt_slot *slot = &conn->stmts[op->stmt];
		if (rs == PGRES_COMMAND_OK) {
			slot->state = STMT_PREPARED;
		} else {
			slot->state = STMT_FAILED;
			slot->fail_status = sqlstate ? classify(sqlstate) : PG_TEMPFAIL;
			slot->failed_at = now_mono();
			log_query_error(conn, op->stmt, sqlstate ? sqlstate : "-----",
					PQresultErrorMessage(res));
		}
		if (conn->pc.state == PGCONN_SETUP && --conn->prepares_pending == 0)
			pgc_ready(conn);
		PQclear(res);
		return true;
	}

	switch (rs) {
	case PGRES_TUPLES_OK:
		status = check_shape(conn, op->stmt, res);
		break;
	case PGRES_FATAL_ERROR:
		if (strcmp(sqlstate, "26000") == 0 && conn->stmts[op->stmt].state == STMT_FAILED) {
			/* its prepare failed just before and was logged: report that error */
			status = conn->stmts[op->stmt].fail_status;
		} else if ((status = classify(sqlstate)) == PG_DEFERRED) {
			/* An answer, not a fault: one per request would flood the warnings. */
			char msg[512];
			pgconn_one_line(msg, sizeof(msg), PQresultErrorMessage(res));
			log_debug("pg[%u]: %s: deferred: %s", conn->id,
				  conn->pool->stmts[op->stmt].name, msg);
		} else {
			log_query_error(conn, op->stmt, sqlstate, PQresultErrorMessage(res));
		}
		break;
	default:
		log_query_error(conn, op->stmt, "-----", PQresStatus(rs));
		status = rs == PGRES_COMMAND_OK ? PG_PERMFAIL : PG_TEMPFAIL;
		break;
	}
	if (conn->pool->stmts[op->stmt].flags & PG_STMT_AFTER_COMMIT && !op->held) {
		/* Its implicit transaction commits at the sync: answer then (pgc_pop). */
		op->held = res;
		op->held_status = status;
		return true;
	}
	req_answer(op, status, status == PG_FOUND || status == PG_NOTFOUND ? res : NULL);
	PQclear(res);
	return true;
}

/* pgc_pop - the op at the head got its PGRES_PIPELINE_SYNC: it is done */
static void pgc_pop(struct pg_conn *conn)
{
	struct pg_pool *pool = conn->pool;
	struct pg_req *op = TAILQ_FIRST(&conn->inflight);
	TAILQ_REMOVE(&conn->inflight, op, link);
	conn->ninflight--;
	if (op->op == OP_QUERY)
		conn->nqueries--;
	else if (op->op == OP_BATCH)
		conn->nqueries -= op->nmembers;
	if (op->held) {
		enum pg_status st = op->held_status;
		req_answer(op, st, st == PG_FOUND || st == PG_NOTFOUND ? op->held : NULL);
	}
	req_free(op);
	if (!TAILQ_EMPTY(&pool->queue) || pgc_state(conn) == PG_CONN_DRAINING)
		pool_kick(pool);
}

/*
 * pgc_read - each op yields its result, then NULL, then PGRES_PIPELINE_SYNC
 * (one sync per op keeps an error from aborting its neighbours).  conn->phase
 * tracks where the head op is; PQgetResult is called only while !PQisBusy so
 * it never blocks.
 */
static void pgc_read(void *arg)
{
	struct pg_conn *conn = arg;
	if (!PQconsumeInput(conn->pc.pq)) {
		pgc_fail(conn, "receive", PQerrorMessage(conn->pc.pq));
		return;
	}
	while (!TAILQ_EMPTY(&conn->inflight) && !PQisBusy(conn->pc.pq)) {
		if (PQstatus(conn->pc.pq) == CONNECTION_BAD) {
			pgc_fail(conn, "connection lost", PQerrorMessage(conn->pc.pq));
			return;
		}
		PGresult *res = PQgetResult(conn->pc.pq);
		switch (conn->phase) {
		case PHASE_RESULT:
			if (!res) {
				pgc_fail(conn, "protocol", "result missing in pipeline");
				return;
			}
			conn->phase = PHASE_NULL;
			if (!pgc_result(conn, TAILQ_FIRST(&conn->inflight), res))
				return;
			break;
		case PHASE_NULL:
			if (res) {
				PQclear(res); /* a statement yielding several results: only the first counts */
				break;
			}
			conn->phase = PHASE_SYNC;
			break;
		case PHASE_SYNC:
			if (!res) {
				pgc_fail(conn, "protocol", "pipeline sync missing");
				return;
			}
			if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
				conn->phase = PHASE_RESULT;
				pgc_pop(conn);
			}
			PQclear(res);
			break;
		}
	}
	if (PQstatus(conn->pc.pq) == CONNECTION_BAD)
		pgc_fail(conn, "connection lost", PQerrorMessage(conn->pc.pq));
}

/* requeue_unsent - back to the head of the queue; a batch's members in order, free to batch again */
static void requeue_unsent(struct pg_pool *pool, struct pg_req *req)
{
	if (req->op != OP_BATCH) {
		req->where = REQ_QUEUED;
		TAILQ_INSERT_HEAD(&pool->queue, req, link);
		pool->nqueued++;
		return;
	}
	struct pg_req *m;
	while ((m = TAILQ_LAST(&req->members, req_list))) {
		TAILQ_REMOVE(&req->members, m, link);
		m->where = REQ_QUEUED;
		m->conn = NULL;
		TAILQ_INSERT_HEAD(&pool->queue, m, link);
		pool->nqueued++;
	}
	req_free(req);
}

/* array_literal_len - the bytes of s as a quoted element of a text[] literal */
static size_t array_literal_len(const char *s)
{
	size_t n = 2;
	for (; *s; s++)
		n += (*s == '"' || *s == '\\') ? 2 : 1;
	return n;
}

static char *array_literal_put(char *p, const char *s)
{
	*p++ = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p++ = '"';
	return p;
}

/*
 * batch_gather - first, just taken from the queue, and the requests for its
 * statement waiting behind it become one batch op whose parameter j is the
 * text[] of their $j.  Returns first itself when it goes alone: no batch
 * form, no company, a batch form that failed to prepare a moment ago on this
 * connection, or no memory.
 */
static struct pg_req *batch_gather(struct pg_pool *pool, struct pg_conn *conn, struct pg_req *first)
{
	unsigned stmt = first->stmt;
	if (!pool->batch_names[stmt] || first->single)
		return first;
	const struct stmt_slot *slot = &conn->stmts[pool->nstmts + stmt];
	if (slot->state == STMT_FAILED && ms_since(slot->failed_at) < PREPARE_RETRY_MS)
		return first;

	struct pg_req *take[PG_BATCH_MAX], *r;
	unsigned n = 0, scanned = 0;
	take[n++] = first;
	TAILQ_FOREACH(r, &pool->queue, link) {
		if (n == PG_BATCH_MAX || ++scanned > BATCH_SCAN)
			break;
		if (r->stmt == stmt && !r->single)
			take[n++] = r;
	}
	if (n == 1)
		return first;

	unsigned np = first->nparams;
	size_t bytes = sizeof(struct pg_req) + np * sizeof(char *);
	for (unsigned j = 0; j < np; j++)
		for (unsigned k = 0; k < n; k++)
			bytes += array_literal_len(take[k]->params[j]) + 1; /* then ',' or '}' */
	bytes += 2 * np;                                            /* '{' and NUL */
	struct pg_req *op = calloc(1, bytes);
	if (!op)
		return first;
	op->pool = pool;
	op->op = OP_BATCH;
	op->stmt = pool->nstmts + stmt;
	op->where = REQ_NEW;
	op->nparams = np;
	TAILQ_INIT(&op->members);
	evtimer_assign(&op->timer, pool->base, req_timer_cb, op);
	char *p = (char *)&op->params[np];
	for (unsigned j = 0; j < np; j++) {
		op->params[j] = p;
		*p++ = '{';
		for (unsigned k = 0; k < n; k++) {
			p = array_literal_put(p, take[k]->params[j]);
			*p++ = k + 1 < n ? ',' : '}';
		}
		*p++ = '\0';
	}
	for (unsigned k = 0; k < n; k++) {
		if (k > 0)
			queue_remove(pool, take[k]);
		TAILQ_INSERT_TAIL(&op->members, take[k], link);
	}
	op->nmembers = n;
	return op;
}

/*
 * pgc_send - put one request (or batch) into the pipeline.  A statement whose prepare
 * failed a moment ago answers that error at once; after PREPARE_RETRY_MS it
 * is prepared again in front of the query, so installing the schema later
 * needs no restart.  Returns false if the connection failed.
 */
static bool pgc_send(struct pg_conn *conn, struct pg_req *req)
{
	struct pg_pool *pool = conn->pool;
	struct stmt_slot *slot = &conn->stmts[req->stmt];

	if (slot->state == STMT_FAILED && ms_since(slot->failed_at) < PREPARE_RETRY_MS) {
		if (req->op == OP_BATCH)
			batch_resend_singly(pool, req);
		else
			req_answer(req, slot->fail_status, NULL);
		req_free(req);
		return true;
	}
	if ((slot->state == STMT_FAILED || slot->state == STMT_UNPREPARED) &&
	    !pgc_send_prepare(conn, req->stmt)) {
		/* pgc_fail already ran; nothing of this request was sent, so it may wait for another */
		requeue_unsent(pool, req);
		return false;
	}
	req->where = REQ_INFLIGHT;
	req->conn = conn;
	TAILQ_INSERT_TAIL(&conn->inflight, req, link);
	conn->ninflight++;
	if (req->op == OP_BATCH) {
		struct pg_req *m;
		TAILQ_FOREACH(m, &req->members, link) {
			m->where = REQ_INFLIGHT;
			m->conn = conn;
		}
		conn->nqueries += req->nmembers;
		pool->stats.batches++;
		pool->stats.batched += req->nmembers;
	} else {
		conn->nqueries++;
	}
	if (!PQsendQueryPrepared(conn->pc.pq, slot_name(pool, req->stmt), (int)req->nparams,
				 (const char *const *)req->params, NULL, NULL, 0) ||
	    !pgc_sync(conn->pc.pq)) {
		pgc_fail(conn, "send", PQerrorMessage(conn->pc.pq));
		return false;
	}
	return true;
}

static const struct pgconn_ops pgc_ops = {
	.start = pgc_start,
	.connected = pgc_connected,
	.readable = pgc_read,
	.fail = pgc_fail_cb,
	.changed = pgc_changed,
};

static struct pg_conn *pgc_new(struct pg_pool *pool)
{
	struct pg_conn *conn = calloc(1, sizeof(*conn));
	if (!conn)
		return NULL;
	conn->stmts = calloc(pool->nstmts ? 2 * pool->nstmts : 1, sizeof(*conn->stmts));
	if (!conn->stmts) {
		free(conn);
		return NULL;
	}
	conn->pool = pool;
	conn->id = ++pool->next_id;
	TAILQ_INIT(&conn->inflight);
	char name[24];
	snprintf(name, sizeof(name), "pg[%u]", conn->id);
	pgconn_init(&conn->pc, pool->base, name, &pgc_ops, conn);
	return conn;
}

static void pgc_free(struct pg_conn *conn)
{
	pgconn_close(&conn->pc);
	free(conn->stmts);
	free(conn);
}

/* ---------------------------------------------------------------- pool */

static void pool_kick(struct pg_pool *pool)
{
	if (pool->kicked || pool->closing)
		return;
	pool->kicked = true;
	event_active(pool->kick, EV_TIMEOUT, 0);
}

/*
 * pool_pick - the least loaded READY connection with fewer than depth ops in
 * its pipeline
 */
static struct pg_conn *pool_pick(struct pg_pool *pool, unsigned depth)
{
	struct pg_conn *best = NULL;
	for (unsigned i = 0; i < pool->nconns && i < pool->cfg.pool_size; i++) {
		struct pg_conn *c = pool->conns[i];
		if (pgc_state(c) != PG_CONN_READY || c->ninflight >= depth)
			continue;
		if (!best || c->ninflight < best->ninflight)
			best = c;
	}
	return best;
}

/*
 * pool_maintain - apply reloads and shrinking: connections made with old
 * settings are restarted once their pipeline is empty; connections beyond
 * pool_size are freed once empty.
 */
static void pool_maintain(struct pg_pool *pool)
{
	for (unsigned i = pool->nconns; i-- > 0;) {
		struct pg_conn *c = pool->conns[i];
		bool retire = i >= pool->cfg.pool_size;
		if (!retire && c->generation == pool->generation)
			continue;
		if (c->pc.state == PGCONN_READY && c->ninflight > 0) {
			if (!c->draining)
				pgc_drain(c);
			continue;
		}
		if (!TAILQ_EMPTY(&c->inflight))
			continue; /* a PREPARING connection: closing it needs an empty FIFO */
		if (retire) {
			log_debug("pg[%u]: retired", c->id);
			pgc_free(c);
			memmove(&pool->conns[i], &pool->conns[i + 1],
				(pool->nconns - i - 1) * sizeof(*pool->conns));
			pool->nconns--;
		} else if (c->pc.state != PGCONN_BACKOFF || c->pc.pq) {
			log_debug("pg[%u]: reconnecting with new settings", c->id);
			pgconn_restart(&c->pc);
		} else {
			c->generation = pool->generation; /* will connect with the new settings anyway */
		}
	}
}

/*
 * batch_form_usable - some ready connection has stmt's batch form, or may try
 * it again: where none has (a schema from before the batch forms), requests
 * go alone at full pipeline depth instead of waiting to form batches that
 * would be resent one by one.
 */
static bool batch_form_usable(const struct pg_pool *pool, unsigned stmt)
{
	for (unsigned i = 0; i < pool->nconns && i < pool->cfg.pool_size; i++) {
		const struct pg_conn *c = pool->conns[i];
		const struct stmt_slot *slot = &c->stmts[pool->nstmts + stmt];
		if (pgc_state(c) == PG_CONN_READY &&
		    (slot->state != STMT_FAILED || ms_since(slot->failed_at) >= PREPARE_RETRY_MS))
			return true;
	}
	return false;
}

static void pool_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_pool *pool = arg;
	(void)fd;
	(void)what;
	pool->kicked = false;

	pool_maintain(pool);

	/* Only what is done now: answers submitted by these callbacks wait for the next kick. */
	struct req_list done = TAILQ_HEAD_INITIALIZER(done);
	TAILQ_CONCAT(&done, &pool->done, link);
	struct pg_req *req;
	while ((req = TAILQ_FIRST(&done))) {
		TAILQ_REMOVE(&done, req, link);
		req->where = REQ_NEW;
		req_answer(req, req->status, NULL);
		req_free(req);
	}

	/*
	 * A request that may batch waits while every connection has BATCH_DEPTH
	 * ops in its pipeline: the servers are busy anyway, and what arrives
	 * meanwhile leaves with it as one query when a connection frees up.  At
	 * low load nothing is in flight, so nothing waits.
	 */
	struct pg_conn *conn;
	while ((req = TAILQ_FIRST(&pool->queue))) {
		bool may_batch = pool->batch_names[req->stmt] && !req->single &&
				 batch_form_usable(pool, req->stmt);
		unsigned depth = pool->cfg.max_inflight;
		if (may_batch && depth > BATCH_DEPTH)
			depth = BATCH_DEPTH;
		if (!(conn = pool_pick(pool, depth)))
			break;
		queue_remove(pool, req);
		if (!pgc_send(conn, batch_gather(pool, conn, req)))
			continue;
	}
	for (unsigned i = 0; i < pool->nconns; i++) {
		conn = pool->conns[i];
		if (conn->pc.state == PGCONN_READY && !TAILQ_EMPTY(&conn->inflight))
			pgconn_flush(&conn->pc, "send");
	}
}

void pg_config_defaults(struct pg_config *cfg)
{
	cfg->conninfo = "";
	cfg->pool_size = 4;
	cfg->max_inflight = 64;
	cfg->max_queue = 10000;
	cfg->connect_timeout_ms = 5000;
	cfg->request_timeout_ms = 3000;
}

static bool config_valid(const struct pg_config *cfg)
{
	if (!cfg->conninfo) {
		log_error("pg: no connection string");
		return false;
	}
	if (cfg->pool_size < 1 || cfg->pool_size > POOL_SIZE_MAX) {
		log_error("pg: pool size %u out of range 1..%u", cfg->pool_size, POOL_SIZE_MAX);
		return false;
	}
	if (cfg->max_inflight < 1 || cfg->connect_timeout_ms < 1 || cfg->request_timeout_ms < 1) {
		log_error("pg: max_inflight, connect and request timeouts must be positive");
		return false;
	}
	return true;
}

/*
 * pool_apply - take over cfg (copying conninfo) and make sure pool_size
 * connections exist.  A changed conninfo starts a new generation: older
 * connections are recycled by pool_maintain.
 */
static bool pool_apply(struct pg_pool *pool, const struct pg_config *cfg)
{
	char *conninfo = strdup(cfg->conninfo);
	if (!conninfo)
		return false;
	if (cfg->pool_size > pool->nconns) {
		struct pg_conn **grown = realloc(pool->conns, cfg->pool_size * sizeof(*grown));
		if (!grown) {
			free(conninfo);
			return false;
		}
		pool->conns = grown;
	}
	/* libevent allows 256 common timeouts per base; after that many reloads use a plain one */
	pool->req_tv_plain = ms_tv(cfg->request_timeout_ms);
	pool->req_tv = event_base_init_common_timeout(pool->base, &pool->req_tv_plain);
	if (!pool->req_tv)
		pool->req_tv = &pool->req_tv_plain;
	if (pool->conninfo && strcmp(pool->conninfo, conninfo) != 0)
		pool->generation++;
	free(pool->conninfo);
	pool->conninfo = conninfo;
	pool->cfg = *cfg;
	pool->cfg.conninfo = conninfo;
	while (pool->nconns < cfg->pool_size) {
		struct pg_conn *conn = pgc_new(pool);
		if (!conn)
			break; /* fewer connections; the pool still works */
		pool->conns[pool->nconns++] = conn;
		pgc_start(conn);
	}
	return true;
}

/*
 * batch_names_new - the prepared name of each statement's batch form.  Only a
 * resendable single-value read may be batched: a batch that fails is resent
 * one request at a time.
 */
static bool batch_names_new(struct pg_pool *pool)
{
	pool->batch_names = calloc(pool->nstmts ? pool->nstmts : 1, sizeof(*pool->batch_names));
	if (!pool->batch_names)
		return false;
	for (unsigned i = 0; i < pool->nstmts; i++) {
		const struct pg_stmt *st = &pool->stmts[i];
		if (!st->batch_sql)
			continue;
		if (!(st->flags & PG_STMT_RETRY) || st->shape != PG_SHAPE_VALUE || st->nparams == 0) {
			log_error("pg: bug: statement %s cannot have a batch form", st->name);
			continue;
		}
		size_t len = strlen(st->name) + 3;
		if (!(pool->batch_names[i] = malloc(len)))
			return false;
		snprintf(pool->batch_names[i], len, "%s_n", st->name);
	}
	return true;
}

struct pg_pool *pg_pool_new(struct event_base *base, const struct pg_config *cfg,
			    const struct pg_stmt *stmts, unsigned nstmts)
{
	if (!config_valid(cfg))
		return NULL;
	struct pg_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	pool->base = base;
	pool->stmts = stmts;
	pool->nstmts = nstmts;
	TAILQ_INIT(&pool->queue);
	TAILQ_INIT(&pool->done);
	pool->kick = event_new(base, -1, 0, pool_kick_cb, pool);
	pool->rl_stmt = calloc(nstmts ? nstmts : 1, sizeof(*pool->rl_stmt));
	if (!pool->kick || !pool->rl_stmt || !batch_names_new(pool) || !pool_apply(pool, cfg)) {
		log_error("pg: cannot create the pool: out of memory");
		pg_pool_free(pool);
		return NULL;
	}
	return pool;
}

bool pg_pool_reload(struct pg_pool *pool, const struct pg_config *cfg)
{
	if (!config_valid(cfg))
		return false;
	if (!pool_apply(pool, cfg)) {
		log_error("pg: reload failed: out of memory");
		return false;
	}
	pool_kick(pool);
	return true;
}

void pg_pool_free(struct pg_pool *pool)
{
	if (!pool)
		return;
	pool->closing = true;
	struct pg_req *req;
	for (unsigned i = 0; i < pool->nconns; i++) {
		struct pg_conn *conn = pool->conns[i];
		struct req_list lost = TAILQ_HEAD_INITIALIZER(lost);
		TAILQ_CONCAT(&lost, &conn->inflight, link);
		conn->ninflight = conn->nqueries = 0;
		while ((req = TAILQ_FIRST(&lost))) {
			TAILQ_REMOVE(&lost, req, link);
			op_answer_all(req, PG_TEMPFAIL);
		}
	}
	while ((req = TAILQ_FIRST(&pool->queue))) {
		queue_remove(pool, req);
		req_answer(req, PG_TEMPFAIL, NULL);
		req_free(req);
	}
	while ((req = TAILQ_FIRST(&pool->done))) {
		TAILQ_REMOVE(&pool->done, req, link);
		req->where = REQ_NEW;
		req_answer(req, req->status, NULL);
		req_free(req);
	}
	for (unsigned i = 0; i < pool->nconns; i++)
		pgc_free(pool->conns[i]);
	free(pool->conns);
	if (pool->kick)
		event_free(pool->kick);
	free(pool->conninfo);
	free(pool->rl_stmt);
	for (unsigned i = 0; pool->batch_names && i < pool->nstmts; i++)
		free(pool->batch_names[i]);
	free(pool->batch_names);
	free(pool);
}

void pg_pool_set_primary(struct pg_pool *pool, struct pg_pool *primary)
{
	if (primary && (primary == pool || primary->stmts != pool->stmts)) {
		log_error("pg: bug: a primary pool must be another pool with the same statements");
		return;
	}
	pool->primary = primary;
}

struct pg_req *pg_submit(struct pg_pool *pool, unsigned stmt, const char *const *params,
			 const size_t *lens, unsigned nparams, pg_cb *cb, void *arg)
{
	if (pool->closing)
		return NULL;
	if (stmt >= pool->nstmts || nparams != pool->stmts[stmt].nparams) {
		log_error("pg: bug: statement %u with %u parameters", stmt, nparams);
		return pg_answer_later(pool, PG_PERMFAIL, cb, arg);
	}
	/* A standby refuses writes (SQLSTATE 25006): they belong to the primary's pool. */
	if (pool->primary && (!(pool->stmts[stmt].flags & PG_STMT_RETRY) ||
			      pool->stmts[stmt].flags & PG_STMT_PRIMARY))
		return pg_submit(pool->primary, stmt, params, lens, nparams, cb, arg);
	for (unsigned i = 0; i < nparams; i++)
		if (lens && memchr(params[i], '\0', lens[i]))
			return pg_answer_later(pool, PG_PERMFAIL, cb, arg);
	struct pg_req *req = req_alloc(pool, OP_QUERY, stmt, params, lens, nparams);
	if (!req)
		return NULL;
	req->cb = cb;
	req->arg = arg;
	if (pool->nqueued >= pool->cfg.max_queue) {
		unsigned suppressed = 0;
		if (ratelimit_pass(&pool->rl_conn, "queue full", &suppressed))
			log_warning("pg: request queue full (%u), answering tempfail", pool->cfg.max_queue);
		req_defer(req, PG_TEMPFAIL);
		return req;
	}
	req->where = REQ_QUEUED;
	TAILQ_INSERT_TAIL(&pool->queue, req, link);
	pool->nqueued++;
	event_add(&req->timer, pool->req_tv);
	pool_kick(pool);
	return req;
}

struct pg_req *pg_answer_later(struct pg_pool *pool, enum pg_status st, pg_cb *cb, void *arg)
{
	if (pool->closing)
		return NULL;
	struct pg_req *req = req_alloc(pool, OP_QUERY, 0, NULL, NULL, 0);
	if (!req)
		return NULL;
	req->cb = cb;
	req->arg = arg;
	req_defer(req, st);
	return req;
}

void pg_cancel(struct pg_req *req)
{
	struct pg_pool *pool = req->pool;
	if (!req->cb)
		return; /* already answered: tolerated, though the contract forbids it */
	req->cb = NULL;
	pool->stats.cancelled++;
	switch (req->where) {
	case REQ_QUEUED:
		queue_remove(pool, req);
		req_free(req);
		break;
	case REQ_DONE:
		TAILQ_REMOVE(&pool->done, req, link);
		req_free(req);
		break;
	case REQ_INFLIGHT:
	case REQ_NEW:
		/* still owned by a pipeline (or by a loop answering it): freed there */
		break;
	}
}

void pg_pool_stats(const struct pg_pool *pool, struct pg_stats *out)
{
	*out = pool->stats;
	memset(out->conns, 0, sizeof(out->conns));
	out->queued = pool->nqueued;
	out->inflight = 0;
	for (unsigned i = 0; i < pool->nconns; i++) {
		out->conns[pgc_state(pool->conns[i])]++;
		out->inflight += pool->conns[i]->nqueries;
	}
}

const char *pg_result_value(const PGresult *res, int row, int col, size_t *len)
{
	if (!res || row >= PQntuples(res) || col >= PQnfields(res) || PQgetisnull(res, row, col)) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = (size_t)PQgetlength(res, row, col);
	return PQgetvalue(res, row, col);
}
