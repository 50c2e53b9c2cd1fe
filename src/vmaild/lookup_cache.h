/* lookup_cache: which lookup answers vmaild caches, for how long, when they may be served stale, and invalidation. */
#ifndef VMAIL_LOOKUP_CACHE_H
#define VMAIL_LOOKUP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "lookup_kinds.h"

/*
 * One cache per process, in front of lookup_submit (lookup.c asks it).
 *
 * Per kind (docs/configuration.md, "Answer cache"):
 *   domain alias mailbox sender userdb  cached; positive answers may be served
 *                                       stale_ttl past expiry while the
 *                                       database cannot answer
 *   passdb                              cached, never served stale
 *   quota_*, policy, dict_*, userdb_list  never cached
 * Negative answers are cached only when the database said "no" (NOTFOUND),
 * for negative_ttl, and are never served stale.  Keys are cached under their
 * ASCII lower-case form (the SQL functions fold case); keys with other bytes
 * bypass the cache.
 *
 * Fresh answers are served only while the invalidation stream (pg_listen.c)
 * is up: without it a change could go unseen.  Meanwhile the cache is still
 * filled, and serves as the fallback when the database cannot answer.
 */
struct lookup_cache_config {
	size_t size;              /* bytes; 0 disables the cache */
	unsigned ttl_ms;          /* positive answers */
	unsigned negative_ttl_ms; /* NOTFOUND answers */
	unsigned stale_ttl_ms;    /* past expiry, while the database is unreachable */
};

/*
 * lookup_cache_configure - create the cache or apply new settings (reload):
 * a new size or TTL empties the cache.  False (logged) when the cache cannot
 * be created; lookups then run uncached.
 */
bool lookup_cache_configure(const struct lookup_cache_config *cfg);
void lookup_cache_close(void);
bool lookup_cache_enabled(void);

/* lookup_cache_kind_cached, lookup_cache_kind_stale_ok - the per-kind policy above */
bool lookup_cache_kind_cached(enum lookup_kind kind);
bool lookup_cache_kind_stale_ok(enum lookup_kind kind);

/*
 * lookup_cache_set_live - the invalidation stream is up (true) or lost
 * (false).  Going up empties the cache: notifications may have been missed.
 */
void lookup_cache_set_live(bool live);
bool lookup_cache_live(void);

/*
 * lookup_cache_invalidate - apply one payload of the vmail_cache channel
 * (schema/R_notify.sql):
 *   all               everything
 *   domain <name>     the domain entry and every alias, mailbox and sender
 *                     entry whose key is in that domain
 *   login <login>     the passdb and userdb entries of that login
 *   kind <kind>       every entry of one kind ("alias", ...)
 * Anything else empties the cache (and is logged).  Any role that can
 * connect to the database can send these (PostgreSQL has no privilege on
 * NOTIFY), so the cost is bounded per burst, see below.
 */
void lookup_cache_invalidate(const char *payload, size_t len);

/*
 * lookup_cache_burst_begin, lookup_cache_burst_end - bracket the payloads
 * that arrived together (one read of the feed; the notes the replay wait
 * applies at once); brackets nest.  A payload outside a bracket is a burst of
 * its own.  Within a burst, "login" and the "domain" entries are dropped at
 * once (cheap); at its end, "kind" payloads cost one walk of the cache and up
 * to 16 distinct domains another, while more domains, "all", an unknown
 * payload or lookup_cache_drop_all empty the cache once instead.  A burst
 * logs at most one line; flushes and unknown payloads are logged once a
 * minute, with a count of the bursts not logged.
 */
void lookup_cache_burst_begin(void);
void lookup_cache_burst_end(void);

/*
 * lookup_cache_drop_all - empty the cache; why is logged at info level.
 * Inside a burst, once at its end.
 */
void lookup_cache_drop_all(const char *why);

/*
 * lookup_cache_epoch - changes with every invalidation.  An answer whose
 * query started in an older epoch is not stored: it may predate the change.
 */
uint64_t lookup_cache_epoch(void);

/*
 * lookup_cache_key - the cache key for key: ASCII lower case into buf
 * (LOOKUP_KEY_MAX bytes).  False when the key is not cacheable.
 */
bool lookup_cache_key(const char *key, size_t len, char *buf);

/* lookup_cache_get - cache_get with the kind's stale window when allow_stale */
enum cache_state lookup_cache_get(enum lookup_kind kind, const char *ckey, size_t len,
				  uint64_t now_ms, bool allow_stale, struct cache_answer *out);

/* lookup_cache_put - store a database answer (FOUND or NOTFOUND only) */
void lookup_cache_put(enum lookup_kind kind, const char *ckey, size_t len, enum lookup_status st,
		      const char *value, size_t vlen, uint64_t now_ms);

struct lookup_cache_stats {
	bool enabled;
	bool live;
	uint64_t invalidations; /* payloads applied */
	uint64_t flushes;       /* times everything was dropped */
	struct cache_stats cache;
};

void lookup_cache_stats(struct lookup_cache_stats *out);

#endif
