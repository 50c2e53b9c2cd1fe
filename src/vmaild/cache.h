/* cache: a memory-bounded answer cache keyed by (kind, key bytes); a pure data structure. */
#ifndef VMAIL_CACHE_H
#define VMAIL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * No I/O, no clock, no libevent: every call that needs the time takes now_ms
 * (any monotonic millisecond clock), so tests drive time by hand.
 *
 * Memory: entries are packed back to back in slabs (6 bytes of header for
 * short keys and values, no per-entry allocation) and found through an
 * open-addressing index of 4-byte offsets.  Slabs and index together never
 * exceed max_bytes.  Expiry times have a resolution of CACHE_TICK_MS.
 *
 * Eviction: least recently used first, at slab granularity, by CLOCK (second
 * chance): a hit sets a reference bit; when room is needed the oldest slab is
 * compacted in place, keeping the entries referenced since its last pass
 * (bit cleared, they become the newest) and evicting the rest.  Pointers
 * returned by cache_get are valid until the next cache_put or drop.
 */

#define CACHE_KINDS 16          /* kinds 0..15 */
#define CACHE_TICK_MS 100       /* expiry resolution */
#define CACHE_VALUE_MAX 65535   /* longer values are not cached */
#define CACHE_KEY_MAX 4096      /* longer keys are not cached */
#define CACHE_HASH_KEY_BYTES 16 /* the index hash's secret (SipHash-2-4) */

struct cache;

enum cache_state {
	CACHE_MISS = 0, /* no entry, or one past its expiry and stale window (dropped) */
	CACHE_FRESH,    /* before its expiry */
	CACHE_STALE,    /* a positive entry past its expiry, within the stale window asked for */
};

struct cache_answer {
	bool found;        /* false: a cached "no such key" */
	const char *value; /* found only; not NUL-terminated */
	size_t len;
};

struct cache_stats {
	size_t entries;         /* live entries */
	size_t live_bytes;      /* their bytes in slabs (headers included) */
	size_t allocated_bytes; /* slabs allocated plus the index: what the cache holds */
	size_t max_bytes;       /* the bound */
	uint64_t inserts;
	uint64_t evictions;     /* removed to make room */
	uint64_t expired;       /* removed because past expiry (and stale window) */
	uint64_t dropped;       /* removed by cache_drop, cache_drop_if, cache_drop_all */
	uint64_t walks;         /* cache_drop_if(_kinds) calls: each visits every entry */
	/*
	 * The index's shape, which hostile keys would distort: longest_probe is
	 * the longest run of occupied slots (the most slots one lookup can
	 * visit: a miss whose home is the run's first slot); probe_total is the
	 * slots visited by finding every live entry once (mean: / entries).
	 */
	size_t longest_probe;
	uint64_t probe_total;
};

/*
 * cache_new - a cache of at most max_bytes.  slab_bytes (a power of two, at
 * least 256) is the allocation unit and the largest entry; 0 picks 1 MiB, or
 * less for small caches.  The index hash gets a random key of its own
 * (libsodium, initialised here).  NULL when max_bytes is too small for two
 * slabs and the index, out of memory, or libsodium cannot initialise.
 */
struct cache *cache_new(size_t max_bytes, size_t slab_bytes);

/*
 * cache_new_keyed - the same with the index hash's key given: for tests,
 * which need a known key to show what colliding keys do.  A cache that
 * takes keys from outside must use cache_new.
 */
struct cache *cache_new_keyed(size_t max_bytes, size_t slab_bytes,
			      const unsigned char key[CACHE_HASH_KEY_BYTES]);
void cache_free(struct cache *c);

/* cache_hash_key - the index hash's key, for tests (two caches must not share one) */
void cache_hash_key(const struct cache *c, unsigned char out[CACHE_HASH_KEY_BYTES]);

/*
 * cache_get - look up (kind, key).  stale_ms: how long past its expiry a
 * positive entry may still be returned as CACHE_STALE (0: never).  An entry
 * past that is removed.  A FRESH or STALE answer counts as a use for LRU.
 */
enum cache_state cache_get(struct cache *c, unsigned kind, const char *key, size_t klen,
			   uint64_t now_ms, uint64_t stale_ms, struct cache_answer *out);

/*
 * cache_put - store an answer for ttl_ms (found false: a negative answer,
 * value ignored), replacing any entry for the key.  Evicts as needed.  False
 * (nothing stored, any old entry removed) when the entry cannot be cached:
 * too large, kind out of range, ttl 0, out of memory.
 */
bool cache_put(struct cache *c, unsigned kind, const char *key, size_t klen, bool found,
	       const char *value, size_t vlen, uint64_t now_ms, uint64_t ttl_ms);

/* cache_drop - remove one entry; true if there was one */
bool cache_drop(struct cache *c, unsigned kind, const char *key, size_t klen);

/*
 * cache_drop_if - remove every entry of kind for which match(key) is true, or
 * every entry of kind when match is NULL.  Walks the whole cache.  Returns
 * how many were removed.
 */
size_t cache_drop_if(struct cache *c, unsigned kind,
		     bool (*match)(const char *key, size_t klen, void *arg), void *arg);

/* cache_drop_if_kinds - the same for every kind k with bit 1 << k set in kinds, in one walk */
size_t cache_drop_if_kinds(struct cache *c, unsigned kinds,
			   bool (*match)(const char *key, size_t klen, void *arg), void *arg);

/* cache_drop_all - empty the cache and give its slabs back; how many entries were removed */
size_t cache_drop_all(struct cache *c);

/*
 * cache_stats - counters and sizes.  Walks the index for longest_probe: about
 * a millisecond per 64 MiB of max_bytes.
 */
void cache_stats(const struct cache *c, struct cache_stats *out);

#endif
