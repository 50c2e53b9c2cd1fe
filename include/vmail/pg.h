/* pg: a small pool of asynchronous libpq connections, in pipeline mode, on one event_base. */
#ifndef VMAIL_PG_H
#define VMAIL_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct pg_pool;
struct pg_req;

/*
 * The outcome of one request.  A database that is down, slow or broken is
 * always PG_TEMPFAIL, never PG_NOTFOUND: only a query that completed and
 * returned no row (or SQL NULL) is PG_NOTFOUND.  PG_PERMFAIL is kept for what
 * an operator has to fix: SQLSTATE class 42 (missing function, syntax,
 * permission), 3F (missing schema) and 22 (data exception), or a result of
 * the wrong shape.  PG_DEFERRED is a query that raised PG_SQLSTATE_DEFER:
 * the data itself says "not now" (a schema's deliberate temporary failure).
 * To the asker it is a temporary failure like PG_TEMPFAIL, but no fault: it
 * is logged at debug level only, and a caller must not answer it with an
 * older result (a stale cache entry) the way it may cover a fault.
 */
enum pg_status {
	PG_FOUND = 0,
	PG_NOTFOUND,
	PG_TEMPFAIL,
	PG_PERMFAIL,
	PG_DEFERRED,
	PG_STATUS__COUNT,
};

/* The SQLSTATE a query raises for a deliberate temporary failure (PG_DEFERRED). */
#define PG_SQLSTATE_DEFER "VM451"

/* What a statement returns, checked on every result. */
enum pg_shape {
	PG_SHAPE_VALUE = 0, /* 0 or 1 row of exactly 1 column; SQL NULL = not found */
	PG_SHAPE_ROWS,      /* any number of rows of ncols columns; 0 rows = not found */
};

/* Statement flags. */
#define PG_STMT_RETRY 0x1u /* read-only: may be resent on another connection after a connection failure */
#define PG_STMT_PRIMARY 0x2u /* reads that must see the primary (writes without PG_STMT_RETRY always do) */
#define PG_STMT_AFTER_COMMIT 0x4u /* answer once the pipeline sync confirmed the commit, not at the result */

/*
 * One prepared statement.  The pool prepares every statement of its table on
 * every new connection; requests name a statement by its index in the table.
 * The table must outlive the pool (normally a static const array).
 *
 * batch_sql (optional, for PG_STMT_RETRY statements of PG_SHAPE_VALUE) asks
 * the same question for many requests in one execution: requests for the
 * statement that wait in the queue together leave as one query, which is
 * what makes an uncached lookup cheaper than a point select of its own (one
 * executor start, one plan, one round trip for the lot).  Its parameter $j
 * is a text[] of the requests' $j, in order; it returns rows (i, v, deferred):
 * i the 1-based position of a request, v its answer (SQL NULL: not found) and
 * deferred true for what the single statement answers by raising
 * PG_SQLSTATE_DEFER.  A request without a row is not found.  A batch that
 * fails as a whole is resent one statement per request, so one bad key (or a
 * schema without the batch form) costs its neighbours nothing.
 */
struct pg_stmt {
	const char *name;  /* prepared statement name, unique in the table */
	const char *sql;   /* parameters $1..$nparams, all sent as text */
	unsigned nparams;
	unsigned ncols;    /* expected column count (1 for PG_SHAPE_VALUE) */
	enum pg_shape shape;
	unsigned flags;    /* PG_STMT_* */
	const char *batch_sql; /* NULL, or the batch form (prepared as name "_n") */
};

/* The most requests one batch carries. */
#define PG_BATCH_MAX 64

/* Pool settings; pg_config_defaults fills the documented defaults. */
struct pg_config {
	const char *conninfo;        /* libpq string or URI, passed verbatim (multi-host, target_session_attrs) */
	unsigned pool_size;          /* connections, default 4 */
	unsigned max_inflight;       /* requests in the pipeline of one connection, default 64 */
	unsigned max_queue;          /* requests waiting for a connection, default 10000; beyond: TEMPFAIL */
	unsigned connect_timeout_ms; /* connect + prepare deadline, default 5000 */
	unsigned request_timeout_ms; /* submit to answer, default 3000 */
};

/* Connection states, for stats and logs. */
enum pg_conn_state {
	PG_CONN_BACKOFF = 0, /* down, waiting for the reconnect timer */
	PG_CONN_CONNECTING,  /* PQconnectPoll in progress */
	PG_CONN_PREPARING,   /* connected, statements being prepared */
	PG_CONN_READY,       /* takes requests */
	PG_CONN_DRAINING,    /* settings changed: no new requests, recycled when idle */
	PG_CONN_STATE__COUNT,
};

struct pg_stats {
	unsigned conns[PG_CONN_STATE__COUNT]; /* connections per state */
	size_t queued;                        /* waiting for a connection */
	size_t inflight;                      /* sent and not yet answered by the server */
	uint64_t answers[PG_STATUS__COUNT];   /* callbacks run, per status */
	uint64_t timeouts;                    /* TEMPFAIL answers caused by the request deadline */
	uint64_t cancelled;                   /* requests cancelled before their answer */
	uint64_t conn_failures;               /* connections lost or failed to connect */
	uint64_t batches;                     /* batch queries sent */
	uint64_t batched;                     /* requests they carried */
	uint64_t batch_fallbacks;             /* batches that failed and were resent singly */
};

/*
 * The answer to a request.  res is the PGresult for PG_FOUND and for
 * PG_NOTFOUND of a query that completed, NULL otherwise (and for PG_NOTFOUND
 * of a batched request); it is valid only during the callback (use
 * pg_result_value or PQgetvalue/PQntuples on it).  A batched request's
 * PG_FOUND result has the one row and column its own statement would have.
 * The request handle is invalid once the callback runs.
 */
typedef void pg_cb(void *arg, enum pg_status st, const PGresult *res);

const char *pg_status_name(enum pg_status st);
const char *pg_conn_state_name(enum pg_conn_state st);

/* pg_config_defaults - set every field to its default; conninfo becomes "" */
void pg_config_defaults(struct pg_config *cfg);

/*
 * pg_pool_new - create the pool and start connecting in the background.
 * Returns NULL (logged) on invalid settings or out of memory.  An unreachable
 * database is not an error: connections retry with backoff.
 */
struct pg_pool *pg_pool_new(struct event_base *base, const struct pg_config *cfg,
			    const struct pg_stmt *stmts, unsigned nstmts);

/*
 * pg_pool_free - close every connection and free the pool.  Requests still
 * outstanding are answered PG_TEMPFAIL first (cancel them before if that is
 * unwanted); submits from those callbacks are refused.  Must not be called
 * from inside a pool callback.
 */
void pg_pool_free(struct pg_pool *pool);

/*
 * pg_pool_reload - apply new settings (SIGHUP).  New connections use the new
 * conninfo; connections that are busy finish their pipeline first and are
 * then recycled.  Queued and in-flight requests are kept.  Returns false
 * (and changes nothing) on invalid settings.
 */
bool pg_pool_reload(struct pg_pool *pool, const struct pg_config *cfg);

/*
 * pg_pool_set_primary - with replication, pool reads from a (nearby) standby
 * and primary is a pool whose conninfo reaches the primary (target_session_attrs
 * =read-write); both were made with the same statement table.  From now on
 * pg_submit on pool sends statements that change data -- every statement
 * without PG_STMT_RETRY, since one that must not be resent is one with an
 * effect -- and those flagged PG_STMT_PRIMARY to primary instead.  primary
 * must outlive pool's use of it (free pool first, or set NULL).  NULL undoes it.
 */
void pg_pool_set_primary(struct pg_pool *pool, struct pg_pool *primary);

/*
 * pg_submit - run statement stmt with nparams text parameters (lens[i] bytes
 * each; lens may be NULL for NUL-terminated strings).  The parameters are
 * copied.  cb runs exactly once, always from the event loop and never from
 * inside pg_submit, unless the request is cancelled first.  Returns NULL only
 * when out of memory or while the pool is being freed; then cb never runs
 * and the caller should treat it as TEMPFAIL.  Wrong stmt/nparams or a
 * parameter containing a NUL byte is answered PG_PERMFAIL.
 */
struct pg_req *pg_submit(struct pg_pool *pool, unsigned stmt, const char *const *params,
			 const size_t *lens, unsigned nparams, pg_cb *cb, void *arg);

/*
 * pg_answer_later - a request that runs no query and is answered st (with a
 * NULL result) from the event loop.  Lets layers above refuse input with the
 * same callback and cancel contract as a real query.  NULL when out of memory.
 */
struct pg_req *pg_answer_later(struct pg_pool *pool, enum pg_status st, pg_cb *cb, void *arg);

/*
 * pg_cancel - the asker went away: its callback will never run.  A request
 * already in a pipeline is still read from the server and then discarded.
 * Must not be called after the callback ran; may be called from any pool
 * callback (including for other requests).
 */
void pg_cancel(struct pg_req *req);

/* pg_pool_stats - a snapshot of counters, for logs and metrics */
void pg_pool_stats(const struct pg_pool *pool, struct pg_stats *out);

/* pg_result_value - value of row/col of res (NUL-terminated), NULL for SQL NULL */
const char *pg_result_value(const PGresult *res, int row, int col, size_t *len);

#endif
