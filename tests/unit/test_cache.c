/* test_cache: the answer cache's storage: expiry, stale window, eviction order, memory bound, drops. */
#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "check_main.h"

#define K_ALIAS 1
#define K_PASSDB 4

static enum cache_state get(struct cache *c, unsigned kind, const char *key, uint64_t now,
			    uint64_t stale, struct cache_answer *a)
{
	return cache_get(c, kind, key, strlen(key), now, stale, a);
}

static bool put(struct cache *c, unsigned kind, const char *key, const char *value, uint64_t now,
		uint64_t ttl)
{
	return cache_put(c, kind, key, strlen(key), value != NULL, value, value ? strlen(value) : 0,
			 now, ttl);
}

static void assert_value(const struct cache_answer *a, const char *want)
{
	ck_assert(a->found);
	ck_assert_uint_eq(a->len, strlen(want));
	ck_assert_msg(memcmp(a->value, want, a->len) == 0, "got %.*s, want %s", (int)a->len,
		      a->value, want);
}

/* Expiry and the stale window, one row per probe of one entry put at t=1000. */
static const struct {
	bool positive;
	uint64_t ttl, at, stale;
	enum cache_state want;
} expiry_rows[] = {
	{ true, 300000, 1000, 0, CACHE_FRESH },
	{ true, 300000, 300999, 0, CACHE_FRESH },
	{ true, 300000, 301000, 0, CACHE_MISS },            /* expired, no stale window */
	{ true, 300000, 301000, 3600000, CACHE_STALE },     /* within the stale window */
	{ true, 300000, 3600000, 3600000, CACHE_STALE },
	{ true, 300000, 3901000, 3600000, CACHE_MISS },     /* past the window: dropped */
	{ false, 10000, 10999, 0, CACHE_FRESH },            /* negative, short TTL */
	{ false, 10000, 11000, 0, CACHE_MISS },
	{ false, 10000, 11000, 3600000, CACHE_MISS },       /* negatives are never stale */
	{ true, 0, 1000, 3600000, CACHE_MISS },             /* ttl 0: not cached */
};

START_TEST(expiry)
{
	struct cache *c = cache_new(1 << 20, 0);
	struct cache_answer a;
	ck_assert_ptr_nonnull(c);
	bool stored = put(c, K_ALIAS, "info@acme.pl", expiry_rows[_i].positive ? "biuro@acme.pl" : NULL,
			  1000, expiry_rows[_i].ttl);
	ck_assert(stored == (expiry_rows[_i].ttl > 0));
	enum cache_state st = get(c, K_ALIAS, "info@acme.pl", expiry_rows[_i].at, expiry_rows[_i].stale, &a);
	ck_assert_int_eq(st, expiry_rows[_i].want);
	if (st != CACHE_MISS) {
		ck_assert(a.found == expiry_rows[_i].positive);
		if (a.found)
			assert_value(&a, "biuro@acme.pl");
	} else {
		/* a miss past expiry removed the entry: even a generous window finds nothing now */
		ck_assert_int_eq(get(c, K_ALIAS, "info@acme.pl", 1000, 1u << 30, &a), CACHE_MISS);
	}
	cache_free(c);
}
END_TEST

START_TEST(basics)
{
	struct cache *c = cache_new(1 << 20, 0);
	struct cache_answer a;
	struct cache_stats st;
	ck_assert(put(c, K_ALIAS, "info@acme.pl", "biuro@acme.pl", 0, 1000));
	ck_assert(put(c, K_PASSDB, "info@acme.pl", "{\"user\":\"x\"}", 0, 1000));
	ck_assert(put(c, K_ALIAS, "nobody@acme.pl", NULL, 0, 1000));
	ck_assert(put(c, K_ALIAS, "same@acme.pl", "same@acme.pl", 0, 1000)); /* all shared */
	ck_assert(put(c, K_ALIAS, "", "empty key", 0, 1000));
	ck_assert_int_eq(get(c, K_ALIAS, "info@acme.pl", 1, 0, &a), CACHE_FRESH);
	assert_value(&a, "biuro@acme.pl");
	ck_assert_int_eq(get(c, K_PASSDB, "info@acme.pl", 1, 0, &a), CACHE_FRESH);
	assert_value(&a, "{\"user\":\"x\"}");
	ck_assert_int_eq(get(c, K_ALIAS, "nobody@acme.pl", 1, 0, &a), CACHE_FRESH);
	ck_assert(!a.found);
	ck_assert_int_eq(get(c, K_ALIAS, "same@acme.pl", 1, 0, &a), CACHE_FRESH);
	assert_value(&a, "same@acme.pl");
	ck_assert_int_eq(get(c, K_ALIAS, "", 1, 0, &a), CACHE_FRESH);
	assert_value(&a, "empty key");
	ck_assert_int_eq(get(c, K_ALIAS, "Info@acme.pl", 1, 0, &a), CACHE_MISS); /* bytes, not case */
	ck_assert_int_eq(get(c, 2, "info@acme.pl", 1, 0, &a), CACHE_MISS);       /* other kind */
	/* replacing: the new answer, one entry */
	ck_assert(put(c, K_ALIAS, "info@acme.pl", "jan@platon.pl", 2, 1000));
	ck_assert_int_eq(get(c, K_ALIAS, "info@acme.pl", 3, 0, &a), CACHE_FRESH);
	assert_value(&a, "jan@platon.pl");
	cache_stats(c, &st);
	ck_assert_uint_eq(st.entries, 5);
	/* refused: kind out of range, value too large (the old entry goes) */
	ck_assert(!put(c, CACHE_KINDS, "x", "y", 0, 1000));
	char *big = malloc(CACHE_VALUE_MAX + 2);
	memset(big, 'v', CACHE_VALUE_MAX + 1);
	big[CACHE_VALUE_MAX + 1] = '\0';
	ck_assert(!put(c, K_ALIAS, "info@acme.pl", big, 4, 1000));
	ck_assert_int_eq(get(c, K_ALIAS, "info@acme.pl", 5, 0, &a), CACHE_MISS);
	free(big);
	cache_free(c);
}
END_TEST

static bool in_domain(const char *key, size_t len, void *arg)
{
	const char *dom = arg;
	size_t dl = strlen(dom);
	return len > dl && key[len - dl - 1] == '@' && memcmp(key + len - dl, dom, dl) == 0;
}

START_TEST(drops)
{
	struct cache *c = cache_new(1 << 20, 0);
	struct cache_answer a;
	struct cache_stats st;
	char key[64];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "u%d@%s.pl", i, i % 2 ? "odd" : "even");
		ck_assert(put(c, K_ALIAS, key, "x@y.pl", 0, 100000));
		ck_assert(put(c, K_PASSDB, key, "{}", 0, 100000));
	}
	ck_assert(cache_drop(c, K_ALIAS, "u1@odd.pl", 9));
	ck_assert(!cache_drop(c, K_ALIAS, "u1@odd.pl", 9));
	ck_assert_int_eq(get(c, K_PASSDB, "u1@odd.pl", 1, 0, &a), CACHE_FRESH);
	ck_assert_uint_eq(cache_drop_if(c, K_ALIAS, in_domain, "even.pl"), 50);
	ck_assert_int_eq(get(c, K_ALIAS, "u2@even.pl", 1, 0, &a), CACHE_MISS);
	ck_assert_int_eq(get(c, K_ALIAS, "u3@odd.pl", 1, 0, &a), CACHE_FRESH);
	ck_assert_uint_eq(cache_drop_if(c, K_PASSDB, NULL, NULL), 100);
	cache_stats(c, &st);
	ck_assert_uint_eq(st.entries, 49);
	ck_assert_int_eq(get(c, K_PASSDB, "u3@odd.pl", 1, 0, &a), CACHE_MISS);
	cache_drop_all(c);
	cache_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.live_bytes, 0);
	ck_assert_int_eq(get(c, K_ALIAS, "u3@odd.pl", 1, 0, &a), CACHE_MISS);
	/* usable again after dropping everything */
	ck_assert(put(c, K_ALIAS, "u3@odd.pl", "back@odd.pl", 2, 1000));
	ck_assert_int_eq(get(c, K_ALIAS, "u3@odd.pl", 3, 0, &a), CACHE_FRESH);
	assert_value(&a, "back@odd.pl");
	cache_free(c);
}
END_TEST

/*
 * Eviction order: untouched entries leave in insertion order (oldest first,
 * so what is present is always a suffix of what was put), while an entry that
 * is read between insertions is never evicted.
 */
START_TEST(eviction_order)
{
	struct cache *c = cache_new(16384, 512);
	struct cache_answer a;
	struct cache_stats st;
	char key[32], value[32];
	ck_assert_ptr_nonnull(c);
	ck_assert(put(c, K_ALIAS, "hot@acme.pl", "kept@elsewhere.pl", 0, 1000000));
	int n = 3000;
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		snprintf(value, sizeof(value), "value-%05d-xxxxxxxx", i);
		ck_assert(put(c, K_ALIAS, key, value, 1, 1000000));
		ck_assert_int_eq(get(c, K_ALIAS, "hot@acme.pl", 1, 0, &a), CACHE_FRESH);
		cache_stats(c, &st);
		ck_assert_uint_le(st.allocated_bytes, 16384);
	}
	cache_stats(c, &st);
	ck_assert_uint_gt(st.evictions, 100);
	/* from the newest down: the first miss marks where eviction stopped */
	int first = -1;
	for (int i = n - 1; i >= 0; i--) {
		snprintf(key, sizeof(key), "k%05d", i);
		snprintf(value, sizeof(value), "value-%05d-xxxxxxxx", i);
		if (get(c, K_ALIAS, key, 2, 0, &a) == CACHE_MISS) {
			first = i + 1;
			break;
		}
		assert_value(&a, value);
	}
	ck_assert_int_gt(first, 0);
	for (int i = 0; i < first; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		ck_assert_msg(get(c, K_ALIAS, key, 2, 0, &a) == CACHE_MISS, "k%05d survived", i);
	}
	ck_assert_uint_eq(st.entries, (size_t)(n - first) + 1);
	ck_assert_int_eq(get(c, K_ALIAS, "hot@acme.pl", 2, 0, &a), CACHE_FRESH);
	assert_value(&a, "kept@elsewhere.pl");
	cache_free(c);
}
END_TEST

#define VALUE40 "value-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

/* LRU: one read makes the oldest entry outlive its neighbours from the same slab. */
START_TEST(second_chance)
{
	struct cache *c = cache_new(16384, 512);
	struct cache_answer a;
	struct cache_stats st;
	char key[32];
	int i = 0;
	/* 53-byte entries: the slabs run full before the index does */
	for (;; i++) {
		ck_assert_int_lt(i, 10000);
		snprintf(key, sizeof(key), "k%05d", i);
		ck_assert(put(c, K_ALIAS, key, VALUE40, 0, 1000000));
		cache_stats(c, &st);
		if (st.allocated_bytes + 512 > 16384 && i > 40)
			break; /* every slab allocated: the next slab's worth evicts */
	}
	ck_assert_uint_eq(st.evictions, 0);
	ck_assert_int_eq(get(c, K_ALIAS, "k00000", 1, 0, &a), CACHE_FRESH);
	for (int j = 0; j < 40; j++) {
		snprintf(key, sizeof(key), "n%05d", j);
		ck_assert(put(c, K_ALIAS, key, VALUE40, 2, 1000000));
	}
	cache_stats(c, &st);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_int_eq(get(c, K_ALIAS, "k00000", 3, 0, &a), CACHE_FRESH);
	ck_assert_int_eq(get(c, K_ALIAS, "k00001", 3, 0, &a), CACHE_MISS);
	ck_assert_int_eq(get(c, K_ALIAS, "k00002", 3, 0, &a), CACHE_MISS);
	snprintf(key, sizeof(key), "k%05d", i);
	ck_assert_int_eq(get(c, K_ALIAS, key, 3, 0, &a), CACHE_FRESH); /* the newest stay */
	cache_free(c);
}
END_TEST

/* Memory bound and integrity under random sizes, replacements and drops, against a model. */
START_TEST(random_bound)
{
	enum { NKEYS = 2000 };
	static char model[NKEYS][300]; /* "" = unknown */
	const size_t max = 64 * 1024;
	struct cache *c = cache_new(max, 1024);
	struct cache_answer a;
	struct cache_stats st;
	uint64_t rng = 88172645463325252ULL;
	char key[32], value[300];
	memset(model, 0, sizeof(model));
	for (int step = 0; step < 200000; step++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		unsigned k = (unsigned)(rng % NKEYS), op = (unsigned)(rng >> 32) % 10;
		snprintf(key, sizeof(key), "key%u@d%u.pl", k, k % 7);
		if (op < 4) {
			size_t vl = 1 + (size_t)(rng >> 40) % 250;
			for (size_t i = 0; i < vl; i++)
				value[i] = (char)('a' + (k + i + (unsigned)step) % 26);
			value[vl] = '\0';
			if (op == 0)
				strcat(value, "@d0.pl"); /* sometimes shares a suffix with the key */
			ck_assert(put(c, K_ALIAS, key, value, 0, 1000000));
			strcpy(model[k], value);
		} else if (op == 4) {
			cache_drop(c, K_ALIAS, key, strlen(key));
			model[k][0] = '\0';
		} else if (get(c, K_ALIAS, key, 0, 0, &a) == CACHE_FRESH) {
			ck_assert_msg(model[k][0], "%s: dropped entry came back", key);
			assert_value(&a, model[k]);
		}
		cache_stats(c, &st);
		ck_assert_uint_le(st.allocated_bytes, max);
		ck_assert_uint_le(st.live_bytes, st.allocated_bytes);
	}
	cache_stats(c, &st);
	ck_assert_uint_gt(st.evictions, 1000);
	ck_assert_uint_gt(st.entries, 100);
	ck_assert_uint_ge(st.probe_total, st.entries);
	/* the probe sum is kept through moves and evictions: it ends at 0 with the last entry */
	for (unsigned k = 0; k < NKEYS; k++) {
		snprintf(key, sizeof(key), "key%u@d%u.pl", k, k % 7);
		cache_drop(c, K_ALIAS, key, strlen(key));
	}
	cache_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.probe_total, 0);
	ck_assert_uint_eq(st.longest_probe, 0);
	cache_free(c);
}
END_TEST

/* ---------------------------------------------------------------- hash flooding */

/*
 * An attacker sends RCPT TO addresses chosen offline so that their cache
 * entries (negative answers of the alias map) share one run of index slots.
 * The cache under attack has the default cache_size; the attacker knows the
 * code, so its slot count too.
 */
#define FLOOD_SIZE ((size_t)64 << 20)           /* cache_size's default */
#define FLOOD_SLOTS ((uint32_t)(FLOOD_SIZE / 10 / 4)) /* the index's share, 4 bytes a slot */
#define FLOOD_KEYS 8000
#define FLOOD_WINDOW 2048                        /* home slots the attacker aims at */
#define FLOOD_LONGEST_MAX 64
#define FLOOD_MEAN_MAX 4.0

typedef uint64_t flood_hash_fn(const char *key, size_t len);

static uint64_t load_le(const char *p, size_t n)
{
	uint64_t v = 0;
	memcpy(&v, p, n);
	return v;
}

/* old_hash - the unkeyed index hash cache.c had before SipHash, copied: the attacker's model */
static uint64_t old_hash(const char *key, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)K_ALIAS << 56) ^ len;
	while (len >= 8) {
		h = (h ^ load_le(key, 8)) * 0xbf58476d1ce4e5b9ULL;
		h = (h << 31) | (h >> 33);
		key += 8;
		len -= 8;
	}
	if (len)
		h = (h ^ load_le(key, len)) * 0x94d049bb133111ebULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* flood_keys - FLOOD_KEYS addresses whose home slot under hash is below FLOOD_WINDOW */
static void flood_keys(flood_hash_fn *hash, const char *prefix, char keys[][32])
{
	unsigned found = 0;
	for (uint64_t n = 0; found < FLOOD_KEYS; n++) {
		char *k = keys[found];
		int len = snprintf(k, 32, "%s%llx@victim.example", prefix, (unsigned long long)n);
		uint64_t h = hash(k, (size_t)len);
		if ((((h >> 32) * FLOOD_SLOTS) >> 32) < FLOOD_WINDOW)
			found++;
	}
}

/* flood - put the keys as negative alias answers; the index's shape afterwards */
static void flood(struct cache *c, char keys[][32], struct cache_stats *st)
{
	for (unsigned i = 0; i < FLOOD_KEYS; i++)
		ck_assert(cache_put(c, K_ALIAS, keys[i], strlen(keys[i]), false, NULL, 0, 0, 60000));
	cache_stats(c, st);
}

static double mean_probe(const struct cache_stats *st)
{
	return st->entries ? (double)st->probe_total / (double)st->entries : 0;
}

static void assert_flat(const char *what, const struct cache_stats *st)
{
	printf("%s: %zu entries, longest probe %zu, mean %.2f\n", what, st->entries,
	       st->longest_probe, mean_probe(st));
	fflush(stdout);
	ck_assert_msg(st->longest_probe <= FLOOD_LONGEST_MAX, "%s: longest probe %zu", what,
		      st->longest_probe);
	ck_assert_msg(mean_probe(st) <= FLOOD_MEAN_MAX, "%s: mean probe %.2f", what,
		      mean_probe(st));
}

/* A key the attacker somehow learnt, for the keys that collide under SipHash itself. */
static const unsigned char known_key[CACHE_HASH_KEY_BYTES] = "fixed test key!";

/* known_key_hash - cache.c's index hash under known_key, for kind K_ALIAS: the model */
static uint64_t known_key_hash(const char *key, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	crypto_shorthash(out, (const unsigned char *)key, len, known_key);
	uint64_t h = 0;
	for (size_t i = 0; i < sizeof(out); i++)
		h |= (uint64_t)out[i] << (8 * i);
	return h ^ (uint64_t)K_ALIAS * 0x9e3779b97f4a7c15ULL;
}

static char old_flood[FLOOD_KEYS][32], sip_flood[FLOOD_KEYS][32];

/*
 * Keys that share one window of home slots under the old hash, and keys that
 * do under SipHash with a known key, spread out in a cache keyed at random.
 */
START_TEST(flood_random_key)
{
	ck_assert_int_ge(sodium_init(), 0);
	flood_keys(old_hash, "x", old_flood);
	flood_keys(known_key_hash, "y", sip_flood);
	struct cache *c = cache_new(FLOOD_SIZE, 0);
	ck_assert_ptr_nonnull(c);
	struct cache_stats st;
	flood(c, old_flood, &st);
	ck_assert_uint_eq(st.entries, FLOOD_KEYS);
	assert_flat("keys clustered under the old hash", &st);
	flood(c, sip_flood, &st);
	ck_assert_uint_eq(st.entries, 2 * FLOOD_KEYS);
	assert_flat("and keys clustered under SipHash with a known key", &st);
	cache_free(c);
}
END_TEST

/* The model is right: under the known key the same keys do pile up (so the case above can fail). */
START_TEST(flood_known_key)
{
	ck_assert_int_ge(sodium_init(), 0);
	flood_keys(known_key_hash, "y", sip_flood);
	struct cache *c = cache_new_keyed(FLOOD_SIZE, 0, known_key);
	ck_assert_ptr_nonnull(c);
	struct cache_stats st;
	flood(c, sip_flood, &st);
	printf("keys clustered under SipHash, in a cache with that key: longest probe %zu, "
	       "mean %.2f\n", st.longest_probe, mean_probe(&st));
	fflush(stdout);
	ck_assert_uint_ge(st.longest_probe, FLOOD_KEYS);
	ck_assert(mean_probe(&st) > 100 * FLOOD_MEAN_MAX);
	cache_free(c);
}
END_TEST

/* Each cache draws its own key. */
START_TEST(keys_differ)
{
	unsigned char a[CACHE_HASH_KEY_BYTES], b[CACHE_HASH_KEY_BYTES];
	struct cache *c1 = cache_new(1 << 20, 0), *c2 = cache_new(1 << 20, 0);
	ck_assert_ptr_nonnull(c1);
	ck_assert_ptr_nonnull(c2);
	cache_hash_key(c1, a);
	cache_hash_key(c2, b);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	cache_free(c1);
	cache_free(c2);
	struct cache *k = cache_new_keyed(1 << 20, 0, known_key);
	cache_hash_key(k, a);
	ck_assert(memcmp(a, known_key, sizeof(a)) == 0);
	cache_free(k);
}
END_TEST

/*
 * A million address keys of about 25 bytes with answers of about 25 bytes in
 * the same domain, in 52 MiB by the cache's own accounting.  Prints bytes per
 * entry for docs/benchmarks.md.
 */
START_TEST(million)
{
	const size_t max = 52u << 20;
	struct cache *c = cache_new(max, 0);
	struct cache_stats st;
	struct cache_answer a;
	char key[64], value[64];
	size_t kbytes = 0, vbytes = 0;
	for (unsigned i = 0; i < 1000000; i++) {
		int kl = snprintf(key, sizeof(key), "alias%06u@d%03u.lublin.pl", i, i % 500);
		int vl = snprintf(value, sizeof(value), "u%06u.box@d%03u.lublin.pl",
				  (i * 7919u + 13) % 999983u, i % 500);
		kbytes += (size_t)kl;
		vbytes += (size_t)vl;
		ck_assert(cache_put(c, K_ALIAS, key, (size_t)kl, true, value, (size_t)vl, 0, 300000));
	}
	cache_stats(c, &st);
	ck_assert_uint_eq(st.evictions, 0);
	ck_assert_uint_eq(st.entries, 1000000);
	ck_assert_uint_le(st.allocated_bytes, max);
	for (unsigned i = 0; i < 1000000; i += 9973) {
		int kl = snprintf(key, sizeof(key), "alias%06u@d%03u.lublin.pl", i, i % 500);
		snprintf(value, sizeof(value), "u%06u.box@d%03u.lublin.pl", (i * 7919u + 13) % 999983u,
			 i % 500);
		ck_assert_int_eq(cache_get(c, K_ALIAS, key, (size_t)kl, 1, 0, &a), CACHE_FRESH);
		assert_value(&a, value);
	}
	printf("million: keys %.1f bytes, values %.1f bytes on average; %zu entries; live %zu bytes "
	       "(%.1f/entry); allocated %zu bytes (%.1f/entry, %.1f MiB) of %zu\n",
	       (double)kbytes / 1e6, (double)vbytes / 1e6, st.entries, st.live_bytes,
	       (double)st.live_bytes / 1e6, st.allocated_bytes, (double)st.allocated_bytes / 1e6,
	       (double)st.allocated_bytes / 1048576.0, max);
	/* what one "domain" invalidation costs in a full cache: one walk over every entry */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t n = cache_drop_if_kinds(c, 1u << K_ALIAS | 1u << 2 | 1u << 3, in_domain, "d007.lublin.pl");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_uint_eq(n, 2000);
	printf("million: dropping one domain's 2000 entries took %.1f ms\n",
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	cache_free(c);
}
END_TEST

START_TEST(too_small)
{
	ck_assert_ptr_null(cache_new(100, 0));
	ck_assert_ptr_null(cache_new(4096, 3000)); /* not a power of two */
	ck_assert_ptr_null(cache_new(1024, 1024));  /* no room for two slabs */
	struct cache *c = cache_new(4096, 256);
	ck_assert_ptr_nonnull(c);
	char big[300];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert(!put(c, K_ALIAS, "k", big, 0, 1000)); /* larger than a slab */
	cache_free(c);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, expiry, 0, sizeof(expiry_rows) / sizeof(expiry_rows[0]));
	tcase_add_test(tc, basics);
	tcase_add_test(tc, drops);
	tcase_add_test(tc, eviction_order);
	tcase_add_test(tc, second_chance);
	tcase_add_test(tc, random_bound);
	tcase_add_test(tc, million);
	tcase_add_test(tc, too_small);
	tcase_add_test(tc, flood_random_key);
	tcase_add_test(tc, flood_known_key);
	tcase_add_test(tc, keys_differ);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(cache_suite)
