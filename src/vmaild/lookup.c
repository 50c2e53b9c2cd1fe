/*
 * lookup: the submit API the protocol services call, over the kinds that
 * lookup_kinds.c describes.  It validates keys, turns pg answers into lookup
 * answers, asks the answer cache (lookup_cache.c) before
 * the database and tells it the database's answers, and counts every answer
 * in the metrics.  pg knows nothing of either.
 */
#include "lookup.h"

#include "vmail/log.h"
#include "lookup_cache.h"
#include "metrics.h"
#include "vmail/pg.h"
#include "vmail/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lookup_req {
	struct pg_req *pg;
	lookup_cb *cb;         /* single-value kinds */
	lookup_rows_cb *rows_cb; /* row kinds */
	void *arg;
	enum lookup_kind kind;
	enum metrics_proto proto;
	enum metrics_source source;
	bool answered;         /* a cached answer is in status/value: the pg request is a deferral */
	enum lookup_status status;
	uint64_t start_us;
	uint64_t epoch;        /* lookup_cache_epoch() when the query was submitted */
	size_t klen, vlen;
	char *key;             /* the cache key (a cacheable miss), in buf */
	char *value;           /* the cached answer, in buf */
	char buf[];
};

/* A row set is a PGresult seen through accessors, so callers need no libpq. */
struct lookup_rows {
	const PGresult *res;
};

/* The cache key of the request being looked at; one at a time (one event loop). */
static char ckey[LOOKUP_KEY_MAX];

/*
 * lookup_key_valid - PostgreSQL rejects invalid UTF-8 with an error, which
 * would be a failure instead of a clean "no such key"; control characters
 * never occur in addresses or logins.
 */
bool lookup_key_valid(const char *key, size_t len)
{
	return len > 0 && len <= LOOKUP_KEY_MAX && utf8_valid_text(key, len);
}

size_t lookup_rows_count(const struct lookup_rows *rows)
{
	return rows ? (size_t)PQntuples(rows->res) : 0;
}

const char *lookup_rows_value(const struct lookup_rows *rows, size_t i, size_t *len)
{
	if (!rows || i >= (size_t)PQntuples(rows->res)) {
		if (len)
			*len = 0;
		return NULL;
	}
	return pg_result_value(rows->res, (int)i, 0, len);
}

static enum lookup_status from_pg(enum pg_status st)
{
	switch (st) {
	case PG_FOUND:
		return LOOKUP_FOUND;
	case PG_NOTFOUND:
		return LOOKUP_NOTFOUND;
	case PG_PERMFAIL:
		return LOOKUP_PERMFAIL;
	case PG_TEMPFAIL:
	case PG_DEFERRED:
	case PG_STATUS__COUNT:
		break;
	}
	return LOOKUP_TEMPFAIL;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* pool_unreachable - no connection can take a query now: a stale answer beats waiting */
static bool pool_unreachable(const struct pg_pool *pool)
{
	struct pg_stats st;
	pg_pool_stats(pool, &st);
	return st.conns[PG_CONN_READY] + st.conns[PG_CONN_DRAINING] == 0;
}

/*
 * lookup_done - the answer of the query (or of the deferral carrying a cached
 * answer).  A database answer goes into the cache unless an invalidation came
 * while the query ran; a database failure falls back to a cached answer when
 * the kind allows it.  A deliberate deferral (PG_DEFERRED: a suspended domain)
 * never does: the database did answer, and its answer is "not now", which an
 * older "deliver here" must not overrule.  The request is freed after the
 * callback, which may submit again but not cancel it.
 */
static void lookup_done(void *arg, enum pg_status pst, const PGresult *res)
{
	struct lookup_req *req = arg;
	uint64_t now = now_us();
	enum lookup_status st;
	const char *value = NULL;
	size_t len = 0;
	char *stale = NULL; /* a copy: the callback may use the cache before it is done */

	req->pg = NULL;
	if (req->answered) {
		st = req->status;
		value = req->value;
		len = req->vlen;
	} else if (req->rows_cb) {
		st = from_pg(pst);
		struct lookup_rows rows = { res };
		metrics_lookup_done(req->proto, req->kind, req->source, st, now - req->start_us);
		req->rows_cb(req->arg, st, st == LOOKUP_FOUND && res ? &rows : NULL);
		free(req);
		return;
	} else {
		st = from_pg(pst);
		if (st == LOOKUP_FOUND)
			value = pg_result_value(res, 0, 0, &len);
		if (st == LOOKUP_FOUND && !value)
			st = LOOKUP_NOTFOUND; /* cannot happen: pg maps SQL NULL to not found */
		if (req->key && (st == LOOKUP_FOUND || st == LOOKUP_NOTFOUND)) {
			if (req->epoch == lookup_cache_epoch())
				lookup_cache_put(req->kind, req->key, req->klen, st, value, len,
						 now / 1000);
		} else if (req->key && pst == PG_TEMPFAIL && lookup_cache_kind_stale_ok(req->kind)) {
			struct cache_answer a;
			if (lookup_cache_get(req->kind, req->key, req->klen, now / 1000, true, &a) !=
				    CACHE_MISS && a.found && (stale = malloc(a.len + 1))) {
				memcpy(stale, a.value, a.len);
				stale[a.len] = '\0';
				st = LOOKUP_FOUND;
				value = stale;
				len = a.len;
				req->source = METRICS_STALE;
				log_debug("lookup %s: database unavailable, answering from the cache",
					  lookup_kind_name(req->kind));
			}
		}
	}
	metrics_lookup_done(req->proto, req->kind, req->source, st, now - req->start_us);
	req->cb(req->arg, st, value, len);
	free(stale);
	free(req);
}

/*
 * cached_answer - look in the cache for a cacheable key (ckey holds its
 * folded form).  Fresh answers count only while invalidations arrive; a
 * stale one only when no connection could ask the database.
 */
static enum metrics_source cached_answer(struct pg_pool *pool, enum lookup_kind kind, size_t klen,
					 uint64_t now_ms, struct cache_answer *a)
{
	bool live = lookup_cache_live();
	bool stale_ok = lookup_cache_kind_stale_ok(kind);
	enum cache_state cs = lookup_cache_get(kind, ckey, klen, now_ms, stale_ok, a);
	if (cs == CACHE_FRESH && live)
		return METRICS_HIT;
	if (cs != CACHE_MISS && a->found && stale_ok && pool && pool_unreachable(pool))
		return METRICS_STALE;
	return METRICS_MISS;
}

static struct lookup_req *submit(struct pg_pool *pool, enum metrics_proto proto,
				 enum lookup_kind kind, bool rows, const char *const *params,
				 const size_t *lens, unsigned nparams, lookup_cb *cb,
				 lookup_rows_cb *rows_cb, void *arg)
{
	if ((unsigned)kind >= LOOKUP__COUNT || lookup_kind_is_rows(kind) != rows ||
	    nparams != lookup_kind_nparams(kind)) {
		log_error("lookup: bug: kind %d submitted with %u parameters%s", (int)kind, nparams,
			  rows ? " for rows" : "");
		return NULL;
	}
	uint64_t start = now_us();
	enum pg_status refuse = PG_FOUND;
	for (unsigned i = 0; i < nparams && refuse == PG_FOUND; i++) {
		size_t len = lens ? lens[i] : strlen(params[i]);
		if (!lookup_key_valid(params[i], len))
			refuse = i == 0 ? PG_NOTFOUND : PG_PERMFAIL;
	}

	size_t klen = nparams ? (lens ? lens[0] : strlen(params[0])) : 0;
	bool cacheable = refuse == PG_FOUND && !rows && lookup_cache_enabled() &&
			 lookup_cache_kind_cached(kind) && lookup_cache_key(params[0], klen, ckey);
	enum metrics_source source = cacheable ? METRICS_MISS : METRICS_UNCACHED;
	struct cache_answer a = { 0 };
	if (cacheable)
		source = cached_answer(pool, kind, klen, start / 1000, &a);
	bool answered = source == METRICS_HIT || source == METRICS_STALE;

	size_t extra = answered ? a.len + 1 : source == METRICS_MISS ? klen : 0;
	struct lookup_req *req = calloc(1, sizeof(*req) + extra);
	if (!req)
		return NULL;
	req->cb = cb;
	req->rows_cb = rows_cb;
	req->arg = arg;
	req->kind = kind;
	req->proto = proto;
	req->source = source;
	req->start_us = start;

	if (answered) {
		req->answered = true;
		req->status = a.found ? LOOKUP_FOUND : LOOKUP_NOTFOUND;
		if (a.found) {
			req->value = req->buf;
			memcpy(req->value, a.value, a.len);
			req->value[a.len] = '\0';
			req->vlen = a.len;
		}
		req->pg = pg_answer_later(pool, PG_FOUND, lookup_done, req);
	} else if (refuse != PG_FOUND) {
		log_debug("lookup %s: invalid parameter, answering %s", lookup_kind_name(kind),
			  pg_status_name(refuse));
		req->pg = pg_answer_later(pool, refuse, lookup_done, req);
	} else {
		if (source == METRICS_MISS) {
			req->key = req->buf;
			memcpy(req->key, ckey, klen);
			req->klen = klen;
			req->epoch = lookup_cache_epoch();
		}
		req->pg = pg_submit(pool, (unsigned)kind, params, lens, nparams, lookup_done, req);
	}
	if (!req->pg) {
		free(req);
		return NULL;
	}
	return req;
}

bool lookup_cached(enum metrics_proto proto, enum lookup_kind kind, const char *key, size_t len,
		   enum lookup_status *st, const char **value, size_t *vlen)
{
	if (!lookup_cache_live() || !lookup_cache_kind_cached(kind) || lookup_kind_nparams(kind) != 1 ||
	    !lookup_key_valid(key, len) || !lookup_cache_key(key, len, ckey))
		return false;
	uint64_t start = now_us();
	struct cache_answer a;
	if (lookup_cache_get(kind, ckey, len, start / 1000, false, &a) != CACHE_FRESH)
		return false;
	*st = a.found ? LOOKUP_FOUND : LOOKUP_NOTFOUND;
	*value = a.value;
	*vlen = a.len;
	metrics_lookup_done(proto, kind, METRICS_HIT, *st, now_us() - start);
	return true;
}

struct lookup_req *lookup_submit_as(struct pg_pool *pool, enum metrics_proto proto,
				    enum lookup_kind kind, const char *const *params,
				    const size_t *lens, unsigned nparams, lookup_cb *cb, void *arg)
{
	return submit(pool, proto, kind, false, params, lens, nparams, cb, NULL, arg);
}

struct lookup_req *lookup_submit(struct pg_pool *pool, enum lookup_kind kind,
				 const char *const *params, const size_t *lens, unsigned nparams,
				 lookup_cb *cb, void *arg)
{
	return submit(pool, METRICS_PROTO_OTHER, kind, false, params, lens, nparams, cb, NULL, arg);
}

struct lookup_req *lookup_submit_rows(struct pg_pool *pool, enum lookup_kind kind,
				      const char *const *params, const size_t *lens, unsigned nparams,
				      lookup_rows_cb *cb, void *arg)
{
	return submit(pool, METRICS_PROTO_OTHER, kind, true, params, lens, nparams, NULL, cb, arg);
}

void lookup_cancel(struct lookup_req *req)
{
	pg_cancel(req->pg);
	free(req);
}

void lookup_drop(void *req)
{
	lookup_cancel(req);
}
