/* lookup: the async submit API over pg for the kinds of lookup_kinds.h, with the answer cache in front. */
#ifndef VMAIL_LOOKUP_H
#define VMAIL_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>

#include "lookup_kinds.h"
#include "metrics.h"

struct pg_pool;
struct lookup_req;

/*
 * lookup_key_valid - the check lookup_submit applies to params[0]: non-empty,
 * at most LOOKUP_KEY_MAX bytes, valid UTF-8, no NUL or control characters.
 */
bool lookup_key_valid(const char *key, size_t len);

/*
 * The answer to a single-value lookup.  value (NUL-terminated, len bytes) is
 * set only for LOOKUP_FOUND and is valid only during the callback.  The
 * request handle is invalid once the callback runs.
 */
typedef void lookup_cb(void *arg, enum lookup_status st, const char *value, size_t len);

/* A read-only view of a row set, valid only during a lookup_rows_cb. */
struct lookup_rows;
size_t lookup_rows_count(const struct lookup_rows *rows);
/* lookup_rows_value - column 0 of row i (NUL-terminated), NULL for SQL NULL */
const char *lookup_rows_value(const struct lookup_rows *rows, size_t i, size_t *len);
/* rows is non-NULL only for LOOKUP_FOUND (at least one row) */
typedef void lookup_rows_cb(void *arg, enum lookup_status st, const struct lookup_rows *rows);

/*
 * lookup_submit - start a lookup of a single-value kind.  params[0] is the
 * key, passed to SQL as a parameter exactly as given (SQL folds case); lens
 * may be NULL for NUL-terminated strings.  A key failing lookup_key_valid is
 * answered NOTFOUND without a query; another invalid parameter PERMFAIL.
 * nparams must be lookup_kind_nparams(kind).  cb runs exactly once, from the
 * event loop, never from inside lookup_submit, unless lookup_cancel is called
 * first.  Returns NULL (cb never runs; treat as TEMPFAIL) only when out of
 * memory, the pool is shutting down, or kind/nparams are wrong (a bug; logged).
 */
struct lookup_req *lookup_submit(struct pg_pool *pool, enum lookup_kind kind,
				 const char *const *params, const size_t *lens, unsigned nparams,
				 lookup_cb *cb, void *arg);

/*
 * lookup_submit_as - lookup_submit on behalf of a protocol service.  Both go
 * through the answer cache (lookup_cache.h) for the kinds it caches, and both
 * count in the metrics; the callback contract is the same (never from inside
 * the call, even for a cached answer).
 */
struct lookup_req *lookup_submit_as(struct pg_pool *pool, enum metrics_proto proto,
				    enum lookup_kind kind, const char *const *params,
				    const size_t *lens, unsigned nparams, lookup_cb *cb, void *arg);

/*
 * lookup_cached - the fast path for a service that can answer at once: true
 * when the cache holds a fresh answer for (kind, key) and the invalidation
 * stream is up; then *st is LOOKUP_FOUND (value, len valid until the next
 * lookup call) or LOOKUP_NOTFOUND, counted as a hit.  false: nothing was
 * counted; call lookup_submit_as, which queries (or serves a stale answer).
 */
bool lookup_cached(enum metrics_proto proto, enum lookup_kind kind, const char *key, size_t len,
		   enum lookup_status *st, const char **value, size_t *vlen);

/* lookup_submit_rows - the same for row kinds (LOOKUP_USERDB_LIST) */
struct lookup_req *lookup_submit_rows(struct pg_pool *pool, enum lookup_kind kind,
				      const char *const *params, const size_t *lens, unsigned nparams,
				      lookup_rows_cb *cb, void *arg);

/*
 * lookup_cancel - the client went away: the callback will never run.  Safe
 * while the query is in flight (its result is read and dropped).  Must not
 * be called after the callback ran.
 */
void lookup_cancel(struct lookup_req *req);
/* lookup_drop - lookup_cancel(req) for cleanup hooks that take a void * */
void lookup_drop(void *req);

#endif
