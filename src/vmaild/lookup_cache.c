/*
 * lookup_cache: the policy around cache.c for lookup answers: the per-kind
 * table, TTLs, key folding, the live/not-live state of the invalidation
 * stream and the meaning of its payloads.  One instance per process: the
 * daemon is one event loop, and every service shares the answers.
 */
#include "lookup_cache.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmail/log.h"

/*
 * A burst (payloads that arrived together) costs at most one walk of the
 * cache per kind of request in it, or one flush: up to BURST_DOMAINS distinct
 * domains are dropped in one walk, more empty the cache.
 */
#define BURST_DOMAINS 16
#define BURST_NAMES 2048 /* bytes of those domain names */
#define LOG_EVERY_S 60   /* flushes and unknown payloads from bursts: one line a minute each */

enum lc_policy {
	LC_NEVER = 0, /* not cached */
	LC_CACHED,    /* cached, fresh answers only */
	LC_STALE_OK,  /* cached; positive answers may be served stale during an outage */
};

/*
 * Indexed by enum lookup_kind (unlisted kinds are LC_NEVER).  passdb is not
 * served stale: a changed or revoked password must not keep working while
 * the database is away.  Quota and policy answers change with every delivery.  Sieve
 * scripts (dict_sieve_get) are never cached either: a rule changed in the panel must
 * apply to the very next delivery, and no invalidation names them.
 */
static const enum lc_policy policy[LOOKUP__COUNT] = {
	[LOOKUP_DOMAIN] = LC_STALE_OK,
	[LOOKUP_ALIAS] = LC_STALE_OK,
	[LOOKUP_MAILBOX] = LC_STALE_OK,
	[LOOKUP_SENDER] = LC_STALE_OK,
	[LOOKUP_USERDB] = LC_STALE_OK,
	[LOOKUP_PASSDB] = LC_CACHED,
};

/* Kinds whose keys are addresses: a "domain" payload reaches them. */
static const enum lookup_kind address_kinds[] = { LOOKUP_ALIAS, LOOKUP_MAILBOX, LOOKUP_SENDER };

/* What the payloads of one burst ask for, applied at its end. */
struct lc_burst {
	unsigned depth;          /* lookup_cache_burst_begin calls not yet ended */
	size_t payloads;
	unsigned kinds;          /* "kind" payloads: whole kinds to drop */
	unsigned ndomains;       /* "domain" payloads: distinct names in names */
	size_t name_off[BURST_DOMAINS], name_len[BURST_DOMAINS], names_used;
	char names[BURST_NAMES];
	const char *flush;       /* everything goes, and why; NULL: no flush */
	size_t unknown;          /* payloads that mean nothing */
	char first_unknown[101]; /* the first of them, for the log */
};

/* One line per LOG_EVERY_S, counting the ones held back. */
struct lc_ratelimit {
	bool used;
	time_t last;
	unsigned held;
};

static struct {
	struct cache *cache;
	struct lookup_cache_config cfg;
	bool live;
	uint64_t epoch;
	uint64_t invalidations;
	uint64_t flushes;
	struct lc_burst burst;
	struct lc_ratelimit rl_flush, rl_unknown;
} lc;

_Static_assert(LOOKUP_DOMAIN < CACHE_KINDS && LOOKUP_ALIAS < CACHE_KINDS &&
		       LOOKUP_MAILBOX < CACHE_KINDS && LOOKUP_SENDER < CACHE_KINDS &&
		       LOOKUP_PASSDB < CACHE_KINDS && LOOKUP_USERDB < CACHE_KINDS,
	       "cached kinds must fit the cache's kind field");

bool lookup_cache_configure(const struct lookup_cache_config *cfg)
{
	if (lc.cache && cfg->size == lc.cfg.size) {
		bool ttl_changed = cfg->ttl_ms != lc.cfg.ttl_ms ||
				   cfg->negative_ttl_ms != lc.cfg.negative_ttl_ms;
		lc.cfg = *cfg;
		if (ttl_changed)
			lookup_cache_drop_all("cache TTLs changed");
		return true;
	}
	lookup_cache_close();
	lc.cfg = *cfg;
	if (cfg->size == 0) {
		log_info("answer cache disabled (cache_size 0)");
		return true;
	}
	lc.cache = cache_new(cfg->size, 0);
	if (!lc.cache) {
		log_error("cache_size %zu: cannot create the answer cache (too small or out of "
			  "memory); lookups run uncached", cfg->size);
		return false;
	}
	lc.epoch++;
	log_info("answer cache: %zu bytes, ttl %u ms, negative %u ms, stale %u ms", cfg->size,
		 cfg->ttl_ms, cfg->negative_ttl_ms, cfg->stale_ttl_ms);
	return true;
}

void lookup_cache_close(void)
{
	cache_free(lc.cache);
	lc.cache = NULL;
	lc.epoch++;
}

bool lookup_cache_enabled(void)
{
	return lc.cache != NULL;
}

bool lookup_cache_kind_cached(enum lookup_kind kind)
{
	return (unsigned)kind < LOOKUP__COUNT && policy[kind] != LC_NEVER;
}

bool lookup_cache_kind_stale_ok(enum lookup_kind kind)
{
	return (unsigned)kind < LOOKUP__COUNT && policy[kind] == LC_STALE_OK;
}

void lookup_cache_drop_all(const char *why)
{
	lc.epoch++;
	if (lc.burst.depth) {
		lc.burst.flush = why; /* once, at the burst's end */
		return;
	}
	lc.flushes++;
	if (!lc.cache)
		return;
	size_t n = cache_drop_all(lc.cache);
	log_info("answer cache emptied (%zu entries): %s", n, why);
}

void lookup_cache_set_live(bool live)
{
	if (live == lc.live)
		return;
	lc.live = live;
	if (live)
		lookup_cache_drop_all("invalidation stream (re)established");
	else
		log_notice("answer cache: invalidation stream lost; answering from the database "
			   "until it is back");
}

bool lookup_cache_live(void)
{
	return lc.live;
}

uint64_t lookup_cache_epoch(void)
{
	return lc.epoch;
}

bool lookup_cache_key(const char *key, size_t len, char *buf)
{
	if (len > LOOKUP_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)key[i];
		if (ch >= 0x80)
			return false;
		buf[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
	}
	return true;
}

enum cache_state lookup_cache_get(enum lookup_kind kind, const char *ckey, size_t len,
				  uint64_t now_ms, bool allow_stale, struct cache_answer *out)
{
	if (!lc.cache || !lookup_cache_kind_cached(kind))
		return CACHE_MISS;
	uint64_t stale = allow_stale && lookup_cache_kind_stale_ok(kind) ? lc.cfg.stale_ttl_ms : 0;
	return cache_get(lc.cache, (unsigned)kind, ckey, len, now_ms, stale, out);
}

void lookup_cache_put(enum lookup_kind kind, const char *ckey, size_t len, enum lookup_status st,
		      const char *value, size_t vlen, uint64_t now_ms)
{
	if (!lc.cache || !lookup_cache_kind_cached(kind))
		return;
	if (st == LOOKUP_FOUND)
		cache_put(lc.cache, (unsigned)kind, ckey, len, true, value, vlen, now_ms, lc.cfg.ttl_ms);
	else if (st == LOOKUP_NOTFOUND)
		cache_put(lc.cache, (unsigned)kind, ckey, len, false, NULL, 0, now_ms,
			  lc.cfg.negative_ttl_ms);
}

/* burst_domain - the domain of a key (after its last '@', as vmail.find_address splits) is in the burst */
static bool burst_domain(const char *key, size_t len, void *arg)
{
	const struct lc_burst *b = arg;
	size_t at = len;
	while (at > 0 && key[at - 1] != '@')
		at--;
	if (at == 0)
		return false;
	const char *dom = key + at;
	size_t dlen = len - at;
	for (unsigned i = 0; i < b->ndomains; i++)
		if (b->name_len[i] == dlen && memcmp(b->names + b->name_off[i], dom, dlen) == 0)
			return true;
	return false;
}

/* burst_add_domain - note a domain (once); when the burst holds too many, everything goes */
static void burst_add_domain(struct lc_burst *b, const char *name, size_t len)
{
	for (unsigned i = 0; i < b->ndomains; i++)
		if (b->name_len[i] == len && memcmp(b->names + b->name_off[i], name, len) == 0)
			return;
	if (b->ndomains == BURST_DOMAINS || len > BURST_NAMES - b->names_used) {
		b->flush = "too many domains changed at once";
		return;
	}
	memcpy(b->names + b->names_used, name, len);
	b->name_off[b->ndomains] = b->names_used;
	b->name_len[b->ndomains++] = len;
	b->names_used += len;
}

/* burst_record - one payload: the cheap drops now, the walks and flushes for the burst's end */
static void burst_record(struct lc_burst *b, const char *payload, size_t len)
{
	char arg[LOOKUP_KEY_MAX];
	const char *sp = memchr(payload, ' ', len);
	size_t wlen = sp ? (size_t)(sp - payload) : len;
	size_t alen = sp ? len - wlen - 1 : 0;
	bool arg_ok = sp && alen > 0 && lookup_cache_key(sp + 1, alen, arg);

	b->payloads++;
	if (!sp && len == 3 && memcmp(payload, "all", 3) == 0) {
		b->flush = "notification \"all\"";
	} else if (arg_ok && wlen == 6 && memcmp(payload, "domain", 6) == 0) {
		cache_drop(lc.cache, LOOKUP_DOMAIN, arg, alen);
		burst_add_domain(b, arg, alen);
	} else if (arg_ok && wlen == 5 && memcmp(payload, "login", 5) == 0) {
		cache_drop(lc.cache, LOOKUP_PASSDB, arg, alen);
		cache_drop(lc.cache, LOOKUP_USERDB, arg, alen);
	} else if (arg_ok && wlen == 4 && memcmp(payload, "kind", 4) == 0) {
		/* a kind that is not cached ("kind quota_get") has nothing to drop */
		for (unsigned k = 0; k < LOOKUP__COUNT; k++) {
			const char *name = lookup_kind_name((enum lookup_kind)k);
			if (strlen(name) == alen && memcmp(name, arg, alen) == 0 &&
			    lookup_cache_kind_cached((enum lookup_kind)k))
				b->kinds |= 1u << k;
		}
	} else {
		if (b->unknown++ == 0)
			snprintf(b->first_unknown, sizeof(b->first_unknown), "%.*s",
				 (int)(len > 100 ? 100 : len), payload);
		b->flush = "unknown notification";
	}
}

/*
 * ratelimit_pass - true for the first line of a LOG_EVERY_S window; then
 * more says how many were held back since the last line ("" for none)
 */
static bool ratelimit_pass(struct lc_ratelimit *rl, char *more, size_t morelen)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (rl->used && now.tv_sec - rl->last < LOG_EVERY_S) {
		rl->held++;
		return false;
	}
	more[0] = '\0';
	if (rl->held)
		snprintf(more, morelen, "; %u more not logged since the last line", rl->held);
	rl->used = true;
	rl->last = now.tv_sec;
	rl->held = 0;
	return true;
}

/* burst_apply - the burst's walks or its one flush, and at most one log line */
static void burst_apply(struct lc_burst *b)
{
	char more[64];
	size_t n = 0;
	if (b->flush) {
		n = cache_drop_all(lc.cache);
		lc.flushes++;
	} else {
		unsigned addr = 0;
		for (size_t i = 0; i < sizeof(address_kinds) / sizeof(address_kinds[0]); i++)
			addr |= 1u << address_kinds[i];
		if (b->kinds)
			n += cache_drop_if_kinds(lc.cache, b->kinds, NULL, NULL);
		if (b->ndomains && (addr & ~b->kinds))
			n += cache_drop_if_kinds(lc.cache, addr & ~b->kinds, burst_domain, b);
	}
	if (b->unknown) {
		if (ratelimit_pass(&lc.rl_unknown, more, sizeof(more)))
			log_warning("answer cache: %zu unknown notification%s (\"%s\"%s) of %zu at "
				    "once; emptied the cache (%zu entries)%s", b->unknown,
				    b->unknown == 1 ? "" : "s", b->first_unknown,
				    b->unknown > 1 ? ", ..." : "", b->payloads, n, more);
	} else if (b->flush) {
		if (ratelimit_pass(&lc.rl_flush, more, sizeof(more)))
			log_info("answer cache emptied (%zu entries): %s (%zu notification%s at once)%s",
				 n, b->flush, b->payloads, b->payloads == 1 ? "" : "s", more);
	} else {
		log_debug("answer cache: %zu notification%s: %zu entries dropped", b->payloads,
			  b->payloads == 1 ? "" : "s", n);
	}
}

void lookup_cache_burst_begin(void)
{
	lc.burst.depth++;
}

void lookup_cache_burst_end(void)
{
	struct lc_burst *b = &lc.burst;
	if (b->depth == 0 || --b->depth > 0)
		return;
	if (lc.cache && (b->payloads || b->flush))
		burst_apply(b);
	else if (b->flush)
		lc.flushes++; /* counted as lookup_cache_drop_all counts it without a cache */
	memset(b, 0, sizeof(*b));
}

void lookup_cache_invalidate(const char *payload, size_t len)
{
	lc.epoch++;
	lc.invalidations++;
	if (!lc.cache)
		return;
	lookup_cache_burst_begin();
	burst_record(&lc.burst, payload, len);
	lookup_cache_burst_end();
}

void lookup_cache_stats(struct lookup_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->enabled = lc.cache != NULL;
	out->live = lc.live;
	out->invalidations = lc.invalidations;
	out->flushes = lc.flushes;
	if (lc.cache)
		cache_stats(lc.cache, &out->cache);
	else
		out->cache.max_bytes = 0;
}
