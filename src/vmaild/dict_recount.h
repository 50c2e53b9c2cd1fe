/* dict_recount: what vmaild does after answering F to a quota request (count, log, list for a recount). */
#ifndef VMAIL_DICT_RECOUNT_H
#define VMAIL_DICT_RECOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

struct event_base;
struct pg_pool;
struct dict_recount;

/*
 * A commit answered F may leave the mailbox's counters wrong: its change is lost, or a
 * frozen server applies it after vmaild gave up on it, and nobody knows which.  Each such
 * mailbox goes on vmail.usage_recount, where `vmailctl usage recount` finds it.  Until the
 * database takes it, the list lives in memory and in the file DICT_RECOUNT_FILE of the
 * state directory (a regular file only: anything else there is refused, and the list stays
 * in memory), appended before the F is answered and synced once per event loop turn (a
 * crash or a restart loses nothing); a failed or short append has the file rewritten whole
 * (a new file created afresh under a temporary name, synced, renamed, its directory
 * synced) at the next change or at the stop, never a cut line glued to the next.  A file
 * that cannot be read at start-up is left as it is for the next start (memory only).
 * It is bounded by DICT_RECOUNT_FILE_MAX, beyond which one "*" entry says "recount every
 * mailbox".  A counter
 * lookup the database cannot answer is answered "full" by svc_dict (Dovecot defers the
 * mail instead of storing it uncounted): counted and logged, not listed.
 *
 * A failed insert is retried after dict_recount_backoff_ms and logged once per streak of
 * failures (and when one succeeds again); a quota request the database answers cuts only
 * the streak's first wait short.  A commit cut by its connection's end (reason "closed") is
 * listed like one answered F.
 *
 * An outage ends when the database answers a quota request or the list's own insert.  Each
 * mailbox is logged at warning once per outage (and once more if a commit of it fails after
 * a lookup did); past DICT_RECOUNT_LOG_MAX mailboxes only their number is logged, when the
 * outage ends.
 */
#define DICT_RECOUNT_FILE "usage-recount"
#define DICT_RECOUNT_FILE_MAX (256 * 1024)
#define DICT_RECOUNT_LOG_MAX 64
#define DICT_RECOUNT_RETRY_MS 2000 /* the first insert after a line is added */
#define DICT_RECOUNT_BACKOFF_MAX_MS 60000 /* the longest wait after failed inserts */

/*
 * dict_recount_new - the list, on pool; state_dir "" keeps it in memory only (lost on
 * restart).  A file left by a previous process is read now (the daemon has dropped its
 * privileges) and inserted once the event loop runs; a missing file is created at the
 * first line, and a directory that cannot take it is logged then (the list stays in
 * memory).  NULL when out of memory.
 */
struct dict_recount *dict_recount_new(struct event_base *base, struct pg_pool *pool,
				      const char *state_dir);

/* dict_recount_free - after the pool is freed (an insert in flight is answered then) */
void dict_recount_free(struct dict_recount *rc);

/*
 * dict_recount_failed - vmaild could not serve a quota request of login for reason (a
 * commit answered F, a lookup answered F or "full"): counted in the metrics; unless the
 * input was refused (denied, invalid, range: nothing to recount), logged once per outage,
 * and for a commit the mailbox listed.  Call before the answer.  rc may be NULL.
 */
void dict_recount_failed(struct dict_recount *rc, enum metrics_quota_req req,
			 enum metrics_quota_fail reason, const char *login);

/* dict_recount_db_ok - the database answered a quota request: the outage (if any) is over */
void dict_recount_db_ok(struct dict_recount *rc);

/*
 * dict_recount_backoff_ms - the wait before the next insert after the failures-th failed
 * one in a row: 1 s, doubling, at most DICT_RECOUNT_BACKOFF_MAX_MS
 */
unsigned dict_recount_backoff_ms(unsigned failures);

/* dict_recount_pending - bytes of entries not yet in the database (tests) */
size_t dict_recount_pending(const struct dict_recount *rc);

/*
 * dict_recount_parse_line - one line of the file ("REASON LOGIN", no newline): the reason
 * ([a-z-], 1..32 bytes) and the login (a valid lookup key, or "*") as pointers into line,
 * lengths in *reason_len and *login_len.  false for anything else.
 */
bool dict_recount_parse_line(const char *line, size_t len, size_t *reason_len,
			      const char **login, size_t *login_len);

#endif
