/*
 * lookup_cache: the policy around cache.c for lookup answers: the per-kind
 * table, TTLs, key folding, the live/not-live state of the invalidation
 * stream and the meaning of its payloads.  One instance per process: the
 * daemon is one event loop, and every service shares the answers.
 */
#include "lookup_cache.h"

#include <string.h>

#include "vmail/log.h"

enum lc_policy {
	LC_NEVER = 0, /* not cached */
	LC_CACHED,    /* cached, fresh answers only */
	LC_STALE_OK,  /* cached; positive answers may be served stale during an outage */
};

/*
 * Indexed by enum lookup_kind (unlisted kinds are LC_NEVER).  passdb is not
 * served stale: a changed or revoked password must not keep working while
 * the database is away.  Quota and policy answers change with every delivery.
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

static struct {
	struct cache *cache;
	struct lookup_cache_config cfg;
	bool live;
	uint64_t epoch;
	uint64_t invalidations;
	uint64_t flushes;
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
	lc.flushes++;
	if (!lc.cache)
		return;
	struct cache_stats st;
	cache_stats(lc.cache, &st);
	cache_drop_all(lc.cache);
	log_info("answer cache emptied (%zu entries): %s", st.entries, why);
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

/* in_domain - the key's domain (after its last '@', as vmail.find_address splits) is arg */
struct domain_arg {
	const char *name;
	size_t len;
};

static bool in_domain(const char *key, size_t len, void *arg)
{
	const struct domain_arg *d = arg;
	return len > d->len && key[len - d->len - 1] == '@' &&
	       memcmp(key + len - d->len, d->name, d->len) == 0 &&
	       !memchr(key + len - d->len, '@', d->len);
}

void lookup_cache_invalidate(const char *payload, size_t len)
{
	char arg[LOOKUP_KEY_MAX];
	lc.epoch++;
	lc.invalidations++;
	if (!lc.cache)
		return;
	const char *sp = memchr(payload, ' ', len);
	size_t wlen = sp ? (size_t)(sp - payload) : len;
	size_t alen = sp ? len - wlen - 1 : 0;
	bool arg_ok = sp && alen > 0 && lookup_cache_key(sp + 1, alen, arg);

	if (!sp && len == 3 && memcmp(payload, "all", 3) == 0) {
		lookup_cache_drop_all("notification \"all\"");
	} else if (arg_ok && wlen == 6 && memcmp(payload, "domain", 6) == 0) {
		size_t n = cache_drop(lc.cache, LOOKUP_DOMAIN, arg, alen) ? 1 : 0;
		struct domain_arg d = { arg, alen };
		unsigned kinds = 0;
		for (size_t i = 0; i < sizeof(address_kinds) / sizeof(address_kinds[0]); i++)
			kinds |= 1u << address_kinds[i];
		n += cache_drop_if_kinds(lc.cache, kinds, in_domain, &d);
		log_debug("answer cache: domain %.*s: %zu entries dropped", (int)alen, arg, n);
	} else if (arg_ok && wlen == 5 && memcmp(payload, "login", 5) == 0) {
		size_t n = cache_drop(lc.cache, LOOKUP_PASSDB, arg, alen) ? 1 : 0;
		n += cache_drop(lc.cache, LOOKUP_USERDB, arg, alen) ? 1 : 0;
		log_debug("answer cache: login %.*s: %zu entries dropped", (int)alen, arg, n);
	} else if (arg_ok && wlen == 4 && memcmp(payload, "kind", 4) == 0) {
		for (unsigned k = 0; k < LOOKUP__COUNT; k++) {
			const char *name = lookup_kind_name((enum lookup_kind)k);
			if (strlen(name) == alen && memcmp(name, arg, alen) == 0 &&
			    lookup_cache_kind_cached((enum lookup_kind)k)) {
				size_t n = cache_drop_if(lc.cache, k, NULL, NULL);
				log_debug("answer cache: kind %s: %zu entries dropped", name, n);
				return;
			}
		}
		log_debug("answer cache: kind %.*s is not cached", (int)alen, arg);
	} else {
		log_warning("answer cache: unknown notification \"%.*s\"; emptying the cache",
			    (int)(len > 100 ? 100 : len), payload);
		lookup_cache_drop_all("unknown notification");
	}
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
