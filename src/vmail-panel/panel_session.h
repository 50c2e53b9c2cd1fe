/* panel_session: login sessions and failed-login throttling, in memory. */
#ifndef VMAIL_PANEL_SESSION_H
#define VMAIL_PANEL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panel_i18n.h"

/* 32 random bytes as hex: the cookie value and the CSRF token. */
#define PANEL_TOKEN_LEN 64
#define PANEL_LOGIN_MAX 64

struct panel_session {
	char token[PANEL_TOKEN_LEN + 1];
	char csrf[PANEL_TOKEN_LEN + 1];
	char login[PANEL_LOGIN_MAX + 1];
	char dbtoken[PANEL_TOKEN_LEN + 1]; /* vmail.self_login's token: what the self_* calls take */
	uint64_t created_ms, last_ms;
	enum panel_msg flash;        /* one-shot notice after a redirect; PANEL_MSG__COUNT = none */
	struct panel_session *next;  /* bucket chain */
	struct panel_session *older, *newer; /* age list, for eviction */
};

struct panel_sessions;

/*
 * Sessions live until idle_ms without a request or max_age_ms after login,
 * whichever comes first; with max sessions open, a new login ends the oldest.
 * Times are a monotonic clock in milliseconds, passed in so tests control it.
 */
struct panel_sessions *panel_sessions_new(unsigned max, uint64_t idle_ms, uint64_t max_age_ms);
void panel_sessions_free(struct panel_sessions *ss);

/* panel_session_create - a session with fresh random tokens; NULL if out of memory */
struct panel_session *panel_session_create(struct panel_sessions *ss, const char *login,
					   uint64_t now_ms);
/*
 * panel_session_find - the live session for a cookie token, touched (idle
 * timer restarted).  An expired one is destroyed and *expired set, so the
 * page can say so.  The token comparison is constant-time.
 */
struct panel_session *panel_session_find(struct panel_sessions *ss, const char *token,
					 uint64_t now_ms, bool *expired);
void panel_session_destroy(struct panel_sessions *ss, struct panel_session *s);
/* panel_session_end_login - end every session of login (its password changed); keep may stay */
void panel_session_end_login(struct panel_sessions *ss, const char *login,
			     const struct panel_session *keep);
/* panel_sessions_sweep - destroy the expired ones; returns how many */
size_t panel_sessions_sweep(struct panel_sessions *ss, uint64_t now_ms);
size_t panel_sessions_count(const struct panel_sessions *ss);

/* panel_token_equal - constant-time comparison of two tokens (false if either is NULL) */
bool panel_token_equal(const char *a, const char *b);
/* panel_token_new - PANEL_TOKEN_LEN random hex digits and a NUL */
void panel_token_new(char out[PANEL_TOKEN_LEN + 1]);

/*
 * Throttling: at most limit failures per key (a login or a client address)
 * within window_ms of the first one; then blocked until that window has
 * passed.  Keys are hashed with a secret SipHash key, so a client cannot aim
 * at one bucket.  At most max_keys are tracked; beyond, the oldest is dropped.
 */
struct panel_throttle;
struct panel_throttle *panel_throttle_new(unsigned limit, uint64_t window_ms, size_t max_keys);
void panel_throttle_free(struct panel_throttle *t);
bool panel_throttle_blocked(struct panel_throttle *t, const char *key, uint64_t now_ms);
void panel_throttle_fail(struct panel_throttle *t, const char *key, uint64_t now_ms);
void panel_throttle_reset(struct panel_throttle *t, const char *key);

#endif
