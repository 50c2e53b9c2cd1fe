/*
 * panel_session: sessions and login throttling, both in this process's
 * memory.  That is a deliberate limit: one panel process per host, and a
 * restart logs everyone out and forgets failed attempts (documented in
 * vmail-panel(8)).  Both tables are hash chains plus an age list, so lookups
 * are cheap and the oldest entry can be evicted when a table is full.
 */
#include "panel_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define NBUCKETS 4096u

struct panel_sessions {
	struct panel_session *buckets[NBUCKETS];
	struct panel_session *oldest, *newest;
	size_t count;
	unsigned max;
	uint64_t idle_ms, max_age_ms;
};

void panel_token_new(char out[PANEL_TOKEN_LEN + 1])
{
	unsigned char raw[PANEL_TOKEN_LEN / 2];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, PANEL_TOKEN_LEN + 1, raw, sizeof(raw));
}

bool panel_token_equal(const char *a, const char *b)
{
	if (!a || !b || strlen(a) != PANEL_TOKEN_LEN || strlen(b) != PANEL_TOKEN_LEN)
		return false;
	return sodium_memcmp(a, b, PANEL_TOKEN_LEN) == 0;
}

/* bucket_of - tokens are random hex, so their first digits spread evenly */
static unsigned bucket_of(const char *token)
{
	unsigned h = 0;
	for (int i = 0; i < 3; i++) {
		char c = token[i];
		unsigned v = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
			     c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 0;
		h = h << 4 | v;
	}
	return h % NBUCKETS;
}

struct panel_sessions *panel_sessions_new(unsigned max, uint64_t idle_ms, uint64_t max_age_ms)
{
	struct panel_sessions *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return NULL;
	ss->max = max ? max : 1;
	ss->idle_ms = idle_ms;
	ss->max_age_ms = max_age_ms;
	return ss;
}

void panel_sessions_free(struct panel_sessions *ss)
{
	if (!ss)
		return;
	while (ss->oldest)
		panel_session_destroy(ss, ss->oldest);
	free(ss);
}

struct panel_session *panel_session_create(struct panel_sessions *ss, const char *login,
					   uint64_t now_ms)
{
	if (ss->count >= ss->max)
		panel_session_destroy(ss, ss->oldest);
	struct panel_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	panel_token_new(s->token);
	panel_token_new(s->csrf);
	snprintf(s->login, sizeof(s->login), "%s", login);
	s->created_ms = s->last_ms = now_ms;
	s->flash = PANEL_MSG__COUNT;
	unsigned b = bucket_of(s->token);
	s->next = ss->buckets[b];
	ss->buckets[b] = s;
	s->older = ss->newest;
	if (ss->newest)
		ss->newest->newer = s;
	else
		ss->oldest = s;
	ss->newest = s;
	ss->count++;
	return s;
}

static bool is_expired(const struct panel_sessions *ss, const struct panel_session *s,
		       uint64_t now_ms)
{
	return now_ms - s->last_ms >= ss->idle_ms || now_ms - s->created_ms >= ss->max_age_ms;
}

struct panel_session *panel_session_find(struct panel_sessions *ss, const char *token,
					 uint64_t now_ms, bool *expired)
{
	*expired = false;
	if (!token || strlen(token) != PANEL_TOKEN_LEN)
		return NULL;
	for (struct panel_session *s = ss->buckets[bucket_of(token)]; s; s = s->next) {
		if (!panel_token_equal(s->token, token))
			continue;
		if (is_expired(ss, s, now_ms)) {
			panel_session_destroy(ss, s);
			*expired = true;
			return NULL;
		}
		s->last_ms = now_ms;
		return s;
	}
	return NULL;
}

void panel_session_destroy(struct panel_sessions *ss, struct panel_session *s)
{
	if (!s)
		return;
	struct panel_session **pp = &ss->buckets[bucket_of(s->token)];
	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	if (s->older)
		s->older->newer = s->newer;
	else
		ss->oldest = s->newer;
	if (s->newer)
		s->newer->older = s->older;
	else
		ss->newest = s->older;
	ss->count--;
	sodium_memzero(s, sizeof(*s));
	free(s);
}

void panel_session_end_login(struct panel_sessions *ss, const char *login,
			     const struct panel_session *keep)
{
	struct panel_session *s = ss->oldest;
	while (s) {
		struct panel_session *next = s->newer;
		if (s != keep && strcmp(s->login, login) == 0)
			panel_session_destroy(ss, s);
		s = next;
	}
}

size_t panel_sessions_sweep(struct panel_sessions *ss, uint64_t now_ms)
{
	size_t n = 0;
	struct panel_session *s = ss->oldest;
	while (s) {
		struct panel_session *next = s->newer;
		if (is_expired(ss, s, now_ms)) {
			panel_session_destroy(ss, s);
			n++;
		}
		s = next;
	}
	return n;
}

size_t panel_sessions_count(const struct panel_sessions *ss)
{
	return ss->count;
}

/* ---- throttling ---- */

#define THROTTLE_KEY_MAX 128

struct throttle_entry {
	char key[THROTTLE_KEY_MAX + 1];
	unsigned failures;
	uint64_t first_ms;
	struct throttle_entry *next;          /* bucket chain */
	struct throttle_entry *older, *newer; /* by first_ms */
};

struct panel_throttle {
	struct throttle_entry *buckets[NBUCKETS];
	struct throttle_entry *oldest, *newest;
	size_t count, max_keys;
	unsigned limit;
	uint64_t window_ms;
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

static unsigned throttle_bucket(const struct panel_throttle *t, const char *key)
{
	unsigned char h[crypto_shorthash_BYTES];
	crypto_shorthash(h, (const unsigned char *)key, strlen(key), t->hash_key);
	return ((unsigned)h[0] | (unsigned)h[1] << 8 | (unsigned)h[2] << 16) % NBUCKETS;
}

struct panel_throttle *panel_throttle_new(unsigned limit, uint64_t window_ms, size_t max_keys)
{
	struct panel_throttle *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->limit = limit;
	t->window_ms = window_ms;
	t->max_keys = max_keys ? max_keys : 1;
	crypto_shorthash_keygen(t->hash_key);
	return t;
}

static void throttle_unlink(struct panel_throttle *t, struct throttle_entry *e)
{
	struct throttle_entry **pp = &t->buckets[throttle_bucket(t, e->key)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	if (e->older)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	t->count--;
	free(e);
}

void panel_throttle_free(struct panel_throttle *t)
{
	if (!t)
		return;
	while (t->oldest)
		throttle_unlink(t, t->oldest);
	free(t);
}

/* lookup - the entry for key, dropping expired entries on the way (oldest first) */
static struct throttle_entry *lookup(struct panel_throttle *t, const char *key, uint64_t now_ms)
{
	while (t->oldest && now_ms - t->oldest->first_ms >= t->window_ms)
		throttle_unlink(t, t->oldest);
	char k[THROTTLE_KEY_MAX + 1];
	snprintf(k, sizeof(k), "%s", key);
	for (struct throttle_entry *e = t->buckets[throttle_bucket(t, k)]; e; e = e->next)
		if (strcmp(e->key, k) == 0)
			return e;
	return NULL;
}

bool panel_throttle_blocked(struct panel_throttle *t, const char *key, uint64_t now_ms)
{
	struct throttle_entry *e = lookup(t, key, now_ms);
	return e && e->failures >= t->limit;
}

void panel_throttle_fail(struct panel_throttle *t, const char *key, uint64_t now_ms)
{
	struct throttle_entry *e = lookup(t, key, now_ms);
	if (e) {
		e->failures++;
		return;
	}
	if (t->count >= t->max_keys)
		throttle_unlink(t, t->oldest);
	if (!(e = calloc(1, sizeof(*e))))
		return;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->failures = 1;
	e->first_ms = now_ms;
	unsigned b = throttle_bucket(t, e->key);
	e->next = t->buckets[b];
	t->buckets[b] = e;
	e->older = t->newest;
	if (t->newest)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
	t->count++;
}

void panel_throttle_reset(struct panel_throttle *t, const char *key)
{
	char k[THROTTLE_KEY_MAX + 1];
	snprintf(k, sizeof(k), "%s", key);
	for (struct throttle_entry *e = t->buckets[throttle_bucket(t, k)]; e; e = e->next)
		if (strcmp(e->key, k) == 0) {
			throttle_unlink(t, e);
			return;
		}
}
