/* lookup: the lookup kinds the daemon serves, their SQL, and the async submit API over pg. */
#ifndef VMAIL_LOOKUP_H
#define VMAIL_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>

struct pg_pool;
struct pg_stmt;
struct lookup_req;

/* Named by what is looked up, not by protocol (OpenSMTPD table services). */
enum lookup_kind {
	LOOKUP_DOMAIN = 0,   /* key: domain            -> the domain */
	LOOKUP_ALIAS,        /* key: address           -> comma-separated destinations */
	LOOKUP_MAILBOX,      /* key: address           -> canonical mailbox address */
	LOOKUP_SENDER,       /* key: address           -> comma-separated logins */
	LOOKUP_PASSDB,       /* key: login             -> JSON for Dovecot passdb */
	LOOKUP_USERDB,       /* key: login             -> JSON for Dovecot userdb */
	LOOKUP_USERDB_LIST,  /* no parameters          -> rows of usernames (lookup_submit_rows) */
	LOOKUP_QUOTA_GET,    /* login, key, root       -> number */
	LOOKUP_QUOTA_APPLY,  /* login, d_storage, d_messages -> "true"/"false" */
	LOOKUP_QUOTA_SET,    /* login, storage, messages -> text */
	LOOKUP_QUOTA_UNSET,  /* login                  -> text */
	LOOKUP_POLICY,       /* address, size          -> policy verdict */
	LOOKUP_DICT_QUOTA_GET, /* login, key, root, peer uid -> number, or "denied" */
	LOOKUP_DICT_COMMIT,  /* arrays of a batch of transactions -> one letter each (svc_dict) */
	LOOKUP__COUNT,
};

/*
 * FOUND carries a value.  NOTFOUND means the database positively answered
 * "no such key" (or the key is one the database could never hold).  TEMPFAIL
 * is every database or pool problem; PERMFAIL a configuration error (missing
 * schema function, wrong result shape).  Protocols map these to their wire
 * form; a database error must never turn into NOTFOUND.
 */
enum lookup_status {
	LOOKUP_FOUND = 0,
	LOOKUP_NOTFOUND,
	LOOKUP_TEMPFAIL,
	LOOKUP_PERMFAIL,
};

#define LOOKUP_KEY_MAX 1024 /* longer keys are NOTFOUND without a query */

/* lookup_kind_name - "domain", "alias", "mailbox", "sender", "passdb", "userdb", "userdb_list", "quota_get", ... */
const char *lookup_kind_name(enum lookup_kind kind);
const char *lookup_status_name(enum lookup_status st);
/* lookup_kind_from_socketmap_name - socketmap map names: domain alias mailbox sender */
bool lookup_kind_from_socketmap_name(const char *name, size_t len, enum lookup_kind *out);
/* lookup_kind_nparams - how many parameters lookup_submit expects for kind */
unsigned lookup_kind_nparams(enum lookup_kind kind);
/* lookup_kind_is_rows - true for kinds answered with rows (lookup_submit_rows) */
bool lookup_kind_is_rows(enum lookup_kind kind);

/*
 * lookup_statements - the statement table for pg_pool_new, LOOKUP__COUNT
 * entries indexed by enum lookup_kind:
 *   pg_pool_new(base, &cfg, lookup_statements(), LOOKUP__COUNT)
 */
const struct pg_stmt *lookup_statements(void);

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
 * Who asks, for the metrics (metrics.h): per protocol and lookup kind.
 * lookup_submit counts as LOOKUP_PROTO_OTHER.
 */
enum lookup_proto {
	LOOKUP_PROTO_OTHER = 0,
	LOOKUP_PROTO_SOCKETMAP,
	LOOKUP_PROTO_DICT,
	LOOKUP_PROTO_POLICY,
	LOOKUP_PROTO__COUNT,
};

const char *lookup_proto_name(enum lookup_proto proto);

/*
 * lookup_submit_as - lookup_submit on behalf of a protocol service.  Both go
 * through the answer cache (lookup_cache.h) for the kinds it caches, and both
 * count in the metrics; the callback contract is the same (never from inside
 * the call, even for a cached answer).
 */
struct lookup_req *lookup_submit_as(struct pg_pool *pool, enum lookup_proto proto,
				    enum lookup_kind kind, const char *const *params,
				    const size_t *lens, unsigned nparams, lookup_cb *cb, void *arg);

/*
 * lookup_cached - the fast path for a service that can answer at once: true
 * when the cache holds a fresh answer for (kind, key) and the invalidation
 * stream is up; then *st is LOOKUP_FOUND (value, len valid until the next
 * lookup call) or LOOKUP_NOTFOUND, counted as a hit.  false: nothing was
 * counted; call lookup_submit_as, which queries (or serves a stale answer).
 */
bool lookup_cached(enum lookup_proto proto, enum lookup_kind kind, const char *key, size_t len,
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

#endif
