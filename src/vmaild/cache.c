/*
 * cache: the answer cache's storage.  It owns the slabs, the packed entry
 * format, the index, expiry and eviction; what to cache, for how long and
 * when to drop what is decided by the caller (lookup.c).
 *
 * Entry format, byte-packed so that a million ~25-byte keys with ~25-byte
 * answers fit in about 60 MB (one allocation per entry would cost more in
 * malloc headers than the data):
 *   u32 word   bits 0-23 expiry in ticks since the epoch, 24-27 kind,
 *              28 found, 29 referenced (CLOCK), 30 dead
 *   varint klen, varint vlen, varint shared (LEB128: one byte each below 128)
 *   key bytes, the first vlen - shared value bytes
 * shared is how many bytes the value ends with that the key also ends with:
 * an alias answer usually shares "@domain" with its key, and a mailbox answer
 * is often the key itself, so that part is stored once.
 * An entry lives at a 32-bit offset: slab number << slab_shift | position.
 *
 * Index: linear probing over those offsets, at most INDEX_LOAD_PCT full;
 * removal shifts the cluster back, so there are no tombstones.  Only the
 * offset is stored: probes compare against the entry itself, which keeps the
 * index at 4 bytes a slot.  Keys come from SMTP clients (RCPT TO addresses),
 * so the index hash is SipHash-2-4 under a secret key drawn per cache: with
 * a known hash, addresses chosen offline would share one run of slots that
 * every lookup landing in it walks (hash flooding).
 *
 * Slabs form a ring in allocation order; the one after head is the oldest.
 * When head is full and no more slabs may be allocated, the oldest is
 * compacted in place (referenced entries kept, the rest evicted) and becomes
 * head.  The 24-bit expiry covers about 19 days after the epoch; when an
 * expiry would not fit, the cache empties itself once and starts a new epoch.
 */
#include "cache.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CACHE_HASH_KEY_BYTES == crypto_shorthash_KEYBYTES, "SipHash-2-4 takes a 16-byte key");

#define SLOT_EMPTY UINT32_MAX
#define INDEX_LOAD_PCT 85
/*
 * The index gets 1/INDEX_SHARE of max_bytes: one slot per 40 bytes, so the
 * index runs full at about 47 bytes of budget per entry, which is what an
 * address key with an answer in the same domain takes.
 */
#define INDEX_SHARE 10
#define DEFAULT_SLAB ((size_t)1 << 20)
#define MIN_SLAB ((size_t)256)
#define TICK_LIMIT 0xffffffu
#define TTL_MAX_TICKS (TICK_LIMIT / 2)

#define W_EXPIRY 0x00ffffffu
#define W_KIND_SHIFT 24
#define W_FOUND (1u << 28)
#define W_REF (1u << 29)
#define W_DEAD (1u << 30)

struct cache {
	size_t max_bytes;
	size_t slab_bytes;
	unsigned slab_shift;
	unsigned nslabs_max;
	unsigned nalloc;    /* slabs allocated, 0..nslabs_max */
	unsigned head;      /* the slab new entries go to */
	bool frozen;        /* evicting started: the ring no longer grows */
	uint8_t **slabs;
	uint32_t *fill;     /* bytes used per slab */
	uint32_t *index;
	uint32_t nslots;
	size_t max_entries; /* INDEX_LOAD_PCT of nslots */
	char value[CACHE_VALUE_MAX]; /* a value with a shared suffix, put together for cache_get */
	bool epoch_set;
	uint64_t epoch_ms;
	unsigned char hash_key[CACHE_HASH_KEY_BYTES];
	struct cache_stats st;
};

/* A decoded entry header. */
struct entry {
	uint32_t word;
	size_t klen, vlen, shared;
	const uint8_t *key, *value; /* value: its first vlen - shared bytes */
	size_t size; /* header + key + stored value */
};

/* ---------------------------------------------------------------- encoding */

static size_t varint_put(uint8_t *p, size_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static size_t varint_len(size_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t varint_get(const uint8_t *p, size_t *v)
{
	size_t r = 0, n = 0;
	unsigned shift = 0;
	do {
		r |= (size_t)(p[n] & 0x7f) << shift;
		shift += 7;
	} while (p[n++] & 0x80);
	*v = r;
	return n;
}

static uint8_t *at(const struct cache *c, uint32_t off)
{
	return c->slabs[off >> c->slab_shift] + (off & (c->slab_bytes - 1));
}

static void decode(const uint8_t *p, struct entry *e)
{
	memcpy(&e->word, p, 4);
	size_t n = 4;
	n += varint_get(p + n, &e->klen);
	n += varint_get(p + n, &e->vlen);
	n += varint_get(p + n, &e->shared);
	e->key = p + n;
	e->value = p + n + e->klen;
	e->size = n + e->klen + e->vlen - e->shared;
}

static void set_word(uint8_t *p, uint32_t word)
{
	memcpy(p, &word, 4);
}

static unsigned word_kind(uint32_t w)
{
	return (w >> W_KIND_SHIFT) & 0xf;
}

/* ---------------------------------------------------------------- index */

/*
 * key_hash - SipHash-2-4 of the key under the cache's secret; the kind is
 * mixed in afterwards (it needs no secrecy: the same key in two kinds just
 * lands elsewhere, as unpredictably).
 */
static uint64_t key_hash(const struct cache *c, unsigned kind, const uint8_t *key, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h = 0;
	crypto_shorthash(out, key, len, c->hash_key);
	for (size_t i = 0; i < sizeof(out); i++)
		h |= (uint64_t)out[i] << (8 * i);
	return h ^ (uint64_t)kind * 0x9e3779b97f4a7c15ULL;
}

/* home_slot - maps the hash onto 0..nslots-1 without a division */
static uint32_t home_slot(const struct cache *c, uint64_t h)
{
	return (uint32_t)(((h >> 32) * (uint64_t)c->nslots) >> 32);
}

static uint32_t entry_home(const struct cache *c, uint32_t off)
{
	struct entry e;
	decode(at(c, off), &e);
	return home_slot(c, key_hash(c, word_kind(e.word), e.key, e.klen));
}

static uint32_t next_slot(const struct cache *c, uint32_t i)
{
	return i + 1 == c->nslots ? 0 : i + 1;
}

/* distance - slots from a to b going forward (cyclically) */
static uint32_t distance(const struct cache *c, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : c->nslots - a + b;
}

/* find - the slot holding (kind, key), or SLOT_EMPTY */
static uint32_t find(const struct cache *c, unsigned kind, const char *key, size_t klen)
{
	uint32_t i = home_slot(c, key_hash(c, kind, (const uint8_t *)key, klen));
	for (; c->index[i] != SLOT_EMPTY; i = next_slot(c, i)) {
		struct entry e;
		decode(at(c, c->index[i]), &e);
		if (word_kind(e.word) == kind && e.klen == klen && memcmp(e.key, key, klen) == 0)
			return i;
	}
	return SLOT_EMPTY;
}

/* find_offset - the slot pointing at the entry at off (which must be indexed) */
static uint32_t find_offset(const struct cache *c, uint32_t off)
{
	uint32_t i = entry_home(c, off);
	while (c->index[i] != off)
		i = next_slot(c, i);
	return i;
}

/* slot_clear - backward-shift deletion: later members of the cluster move up */
static void slot_clear(struct cache *c, uint32_t hole)
{
	uint32_t j = hole;
	for (;;) {
		j = next_slot(c, j);
		if (c->index[j] == SLOT_EMPTY)
			break;
		uint32_t k = entry_home(c, c->index[j]);
		/* the entry at j may fill the hole unless its home lies cyclically in (hole, j] */
		bool stays = hole <= j ? (k > hole && k <= j) : (k > hole || k <= j);
		if (!stays) {
			c->st.probe_total -= distance(c, hole, j);
			c->index[hole] = c->index[j];
			hole = j;
		}
	}
	c->index[hole] = SLOT_EMPTY;
}

static void slot_insert(struct cache *c, uint64_t h, uint32_t off)
{
	uint32_t home = home_slot(c, h), i = home;
	while (c->index[i] != SLOT_EMPTY)
		i = next_slot(c, i);
	c->index[i] = off;
	c->st.probe_total += distance(c, home, i) + 1;
}

/* ---------------------------------------------------------------- entries */

/* unlink - an indexed entry leaves: its slot is cleared and its bytes are dead */
static void unlink_entry(struct cache *c, uint32_t slot)
{
	uint8_t *p = at(c, c->index[slot]);
	struct entry e;
	decode(p, &e);
	set_word(p, e.word | W_DEAD);
	c->st.entries--;
	c->st.live_bytes -= e.size;
	c->st.probe_total -= distance(c, entry_home(c, c->index[slot]), slot) + 1;
	slot_clear(c, slot);
}

/*
 * compact - second chance for the slab s: referenced entries move to the
 * front (bit cleared), unreferenced ones are evicted, dead bytes vanish.
 */
static void compact(struct cache *c, unsigned s)
{
	uint8_t *base = c->slabs[s];
	uint32_t pos = 0, w = 0;
	uint32_t slab_off = (uint32_t)s << c->slab_shift;
	while (pos < c->fill[s]) {
		struct entry e;
		decode(base + pos, &e);
		uint32_t size = (uint32_t)e.size;
		if (!(e.word & W_DEAD)) {
			if (e.word & W_REF) {
				uint32_t slot = find_offset(c, slab_off | pos);
				set_word(base + pos, e.word & ~W_REF);
				if (w != pos)
					memmove(base + w, base + pos, size);
				c->index[slot] = slab_off | w;
				w += size;
			} else {
				unlink_entry(c, find_offset(c, slab_off | pos));
				c->st.evictions++;
			}
		}
		pos += size;
	}
	c->fill[s] = w;
}

/* evict_step - recycle the oldest slab as head */
static void evict_step(struct cache *c)
{
	c->frozen = true;
	unsigned oldest = (c->head + 1) % c->nalloc;
	compact(c, oldest);
	c->head = oldest;
}

/* room - make head able to take size more bytes and the index one more entry */
static bool room(struct cache *c, size_t size)
{
	if (c->nalloc == 0) {
		c->slabs[0] = malloc(c->slab_bytes);
		if (!c->slabs[0])
			return false;
		c->fill[0] = 0;
		c->nalloc = 1;
		c->head = 0;
	}
	/* Each pass either clears reference bits or evicts, so this ends within two rounds. */
	for (unsigned guard = 0; guard <= 2 * c->nslabs_max + 2; guard++) {
		if (c->st.entries >= c->max_entries) {
			evict_step(c);
			continue;
		}
		if (c->fill[c->head] + size <= c->slab_bytes)
			return true;
		if (!c->frozen && c->nalloc < c->nslabs_max) {
			uint8_t *slab = malloc(c->slab_bytes);
			if (slab) {
				c->slabs[c->nalloc] = slab;
				c->fill[c->nalloc] = 0;
				c->head = c->nalloc++;
				continue;
			}
			c->frozen = true; /* out of memory: live with what we have */
		}
		evict_step(c);
	}
	return false;
}

/* ---------------------------------------------------------------- time */

/* ticks - now in ticks since the epoch, which the first call sets */
static uint64_t ticks(struct cache *c, uint64_t now_ms)
{
	if (!c->epoch_set) {
		c->epoch_set = true;
		c->epoch_ms = now_ms;
	}
	return now_ms <= c->epoch_ms ? 0 : (now_ms - c->epoch_ms) / CACHE_TICK_MS;
}

/* ---------------------------------------------------------------- API */

struct cache *cache_new(size_t max_bytes, size_t slab_bytes)
{
	unsigned char key[CACHE_HASH_KEY_BYTES];
	if (sodium_init() < 0)
		return NULL;
	crypto_shorthash_keygen(key);
	struct cache *c = cache_new_keyed(max_bytes, slab_bytes, key);
	sodium_memzero(key, sizeof(key));
	return c;
}

struct cache *cache_new_keyed(size_t max_bytes, size_t slab_bytes,
			      const unsigned char key[CACHE_HASH_KEY_BYTES])
{
	if (max_bytes > UINT32_MAX)
		max_bytes = UINT32_MAX; /* offsets are 32 bits */
	size_t index_bytes = max_bytes / INDEX_SHARE;
	size_t nslots = index_bytes / sizeof(uint32_t);
	if (nslots < 16)
		nslots = 16;
	index_bytes = nslots * sizeof(uint32_t);
	if (max_bytes <= index_bytes)
		return NULL;
	size_t arena = max_bytes - index_bytes;
	if (slab_bytes == 0) {
		slab_bytes = DEFAULT_SLAB;
		while (slab_bytes > MIN_SLAB && arena / slab_bytes < 16)
			slab_bytes /= 2;
	}
	if (slab_bytes < MIN_SLAB || (slab_bytes & (slab_bytes - 1)) || arena / slab_bytes < 2)
		return NULL;

	struct cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->max_bytes = max_bytes;
	c->slab_bytes = slab_bytes;
	while (((size_t)1 << c->slab_shift) < slab_bytes)
		c->slab_shift++;
	c->nslabs_max = (unsigned)(arena / slab_bytes);
	c->nslots = (uint32_t)nslots;
	c->max_entries = nslots * INDEX_LOAD_PCT / 100;
	c->slabs = calloc(c->nslabs_max, sizeof(*c->slabs));
	c->fill = calloc(c->nslabs_max, sizeof(*c->fill));
	c->index = malloc(index_bytes);
	if (!c->slabs || !c->fill || !c->index) {
		cache_free(c);
		return NULL;
	}
	memset(c->index, 0xff, index_bytes);
	memcpy(c->hash_key, key, CACHE_HASH_KEY_BYTES);
	c->st.max_bytes = max_bytes;
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nalloc; i++)
		free(c->slabs[i]);
	free(c->slabs);
	free(c->fill);
	free(c->index);
	sodium_memzero(c->hash_key, sizeof(c->hash_key));
	free(c);
}

void cache_hash_key(const struct cache *c, unsigned char out[CACHE_HASH_KEY_BYTES])
{
	memcpy(out, c->hash_key, CACHE_HASH_KEY_BYTES);
}

enum cache_state cache_get(struct cache *c, unsigned kind, const char *key, size_t klen,
			   uint64_t now_ms, uint64_t stale_ms, struct cache_answer *out)
{
	if (kind >= CACHE_KINDS || c->st.entries == 0)
		return CACHE_MISS;
	uint32_t slot = find(c, kind, key, klen);
	if (slot == SLOT_EMPTY)
		return CACHE_MISS;
	uint8_t *p = at(c, c->index[slot]);
	struct entry e;
	decode(p, &e);
	uint64_t now = ticks(c, now_ms), expiry = e.word & W_EXPIRY;
	enum cache_state state = CACHE_FRESH;
	if (now >= expiry) {
		if (!(e.word & W_FOUND) || now >= expiry + stale_ms / CACHE_TICK_MS) {
			unlink_entry(c, slot);
			c->st.expired++;
			return CACHE_MISS;
		}
		state = CACHE_STALE;
	}
	if (!(e.word & W_REF))
		set_word(p, e.word | W_REF);
	out->found = (e.word & W_FOUND) != 0;
	out->value = NULL;
	out->len = 0;
	if (out->found) {
		out->value = (const char *)e.value;
		out->len = e.vlen;
		if (e.shared) {
			size_t own = e.vlen - e.shared;
			memcpy(c->value, e.value, own);
			memcpy(c->value + own, e.key + e.klen - e.shared, e.shared);
			out->value = c->value;
		}
	}
	return state;
}

bool cache_put(struct cache *c, unsigned kind, const char *key, size_t klen, bool found,
	       const char *value, size_t vlen, uint64_t now_ms, uint64_t ttl_ms)
{
	if (kind >= CACHE_KINDS)
		return false;
	uint32_t old = c->st.entries ? find(c, kind, key, klen) : SLOT_EMPTY;
	if (old != SLOT_EMPTY) {
		unlink_entry(c, old);
		c->st.dropped++;
	}
	if (!found)
		vlen = 0;
	size_t shared = 0;
	while (shared < vlen && shared < klen && value[vlen - 1 - shared] == key[klen - 1 - shared])
		shared++;
	uint64_t ttl = (ttl_ms + CACHE_TICK_MS - 1) / CACHE_TICK_MS;
	size_t size = 4 + varint_len(klen) + varint_len(vlen) + varint_len(shared) + klen + vlen -
		      shared;
	if (ttl == 0 || klen > CACHE_KEY_MAX || vlen > CACHE_VALUE_MAX || size > c->slab_bytes)
		return false;
	if (ttl > TTL_MAX_TICKS)
		ttl = TTL_MAX_TICKS;
	uint64_t expiry = ticks(c, now_ms) + ttl;
	if (expiry > TICK_LIMIT) {
		/* The epoch ran out (after about 10 days): start over, once. */
		cache_drop_all(c);
		c->epoch_ms = now_ms;
		expiry = ttl;
	}
	if (!room(c, size))
		return false;

	uint32_t off = ((uint32_t)c->head << c->slab_shift) | c->fill[c->head];
	uint8_t *p = at(c, off);
	uint32_t word = (uint32_t)expiry | ((uint32_t)kind << W_KIND_SHIFT) | (found ? W_FOUND : 0);
	set_word(p, word);
	size_t n = 4;
	n += varint_put(p + n, klen);
	n += varint_put(p + n, vlen);
	n += varint_put(p + n, shared);
	memcpy(p + n, key, klen);
	if (vlen > shared)
		memcpy(p + n + klen, value, vlen - shared);
	c->fill[c->head] += (uint32_t)size;
	slot_insert(c, key_hash(c, kind, (const uint8_t *)key, klen), off);
	c->st.entries++;
	c->st.live_bytes += size;
	c->st.inserts++;
	return true;
}

bool cache_drop(struct cache *c, unsigned kind, const char *key, size_t klen)
{
	if (kind >= CACHE_KINDS || c->st.entries == 0)
		return false;
	uint32_t slot = find(c, kind, key, klen);
	if (slot == SLOT_EMPTY)
		return false;
	unlink_entry(c, slot);
	c->st.dropped++;
	return true;
}

size_t cache_drop_if(struct cache *c, unsigned kind,
		     bool (*match)(const char *key, size_t klen, void *arg), void *arg)
{
	return kind < CACHE_KINDS ? cache_drop_if_kinds(c, 1u << kind, match, arg) : 0;
}

size_t cache_drop_if_kinds(struct cache *c, unsigned kinds,
			   bool (*match)(const char *key, size_t klen, void *arg), void *arg)
{
	size_t n = 0;
	c->st.walks++;
	for (unsigned s = 0; s < c->nalloc && c->st.entries; s++) {
		uint32_t slab_off = (uint32_t)s << c->slab_shift;
		for (uint32_t pos = 0; pos < c->fill[s];) {
			struct entry e;
			decode(c->slabs[s] + pos, &e);
			if (!(e.word & W_DEAD) && (kinds >> word_kind(e.word) & 1) &&
			    (!match || match((const char *)e.key, e.klen, arg))) {
				unlink_entry(c, find_offset(c, slab_off | pos));
				n++;
			}
			pos += (uint32_t)e.size;
		}
	}
	c->st.dropped += n;
	return n;
}

size_t cache_drop_all(struct cache *c)
{
	size_t n = c->st.entries;
	for (unsigned i = 0; i < c->nalloc; i++)
		free(c->slabs[i]);
	memset(c->slabs, 0, c->nslabs_max * sizeof(*c->slabs));
	c->nalloc = 0;
	c->head = 0;
	c->frozen = false;
	/* An index without entries is all empty already: repeated flushes cost nothing. */
	if (n)
		memset(c->index, 0xff, (size_t)c->nslots * sizeof(uint32_t));
	c->st.dropped += n;
	c->st.entries = 0;
	c->st.live_bytes = 0;
	c->st.probe_total = 0;
	return n;
}

/* longest_run - the longest run of occupied slots, wrapping around the end */
static size_t longest_run(const struct cache *c)
{
	uint32_t start = 0;
	while (start < c->nslots && c->index[start] != SLOT_EMPTY)
		start++;
	if (start == c->nslots)
		return c->nslots; /* cannot happen below INDEX_LOAD_PCT */
	size_t longest = 0, run = 0;
	for (uint32_t n = 0, i = start; n < c->nslots; n++, i = next_slot(c, i)) {
		if (c->index[i] == SLOT_EMPTY) {
			run = 0;
		} else if (++run > longest) {
			longest = run;
		}
	}
	return longest;
}

void cache_stats(const struct cache *c, struct cache_stats *out)
{
	*out = c->st;
	out->allocated_bytes = (size_t)c->nalloc * c->slab_bytes + (size_t)c->nslots * sizeof(uint32_t);
	out->longest_probe = longest_run(c);
}
