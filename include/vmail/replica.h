/* replica: lookups from hot standbys, writes on the primary, and cache invalidation that waits for replay. */
#ifndef VMAIL_REPLICA_H
#define VMAIL_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct replica_wait;

/* A note whose replay is not confirmed within this long is applied anyway (logged). */
#define REPLICA_WAIT_MAX_MS 30000
/* Notes kept waiting; past this they collapse into one "all". */
#define REPLICA_WAIT_MAX_NOTES 256

/*
 * replica_reads_from_standby - conninfo (key=value or URI) asks libpq for a
 * standby: target_session_attrs is standby, prefer-standby or read-only.
 * False for anything else, including strings libpq cannot parse.
 */
bool replica_reads_from_standby(const char *conninfo);

/*
 * replica_primary_conninfo - the same connection settings with
 * target_session_attrs=read-write (replacing any other value), written as
 * key=value pairs with values quoted for libpq.  Malloc'd; NULL with err when
 * libpq cannot parse conninfo.
 */
char *replica_primary_conninfo(const char *conninfo, char *err, size_t errlen);

/* replica_lsn_parse - a pg_lsn in text form ("16/B374D848") to a number; false on bad syntax */
bool replica_lsn_parse(const char *s, size_t len, uint64_t *out);

/*
 * The wait.  An invalidation notification is delivered after its commit on
 * the primary, but a standby applies the commit some time later: a cache
 * entry refilled from the standby in between would hold the old answer until
 * its TTL.  So every notification is applied twice: at once (by the caller),
 * and again once the standby has replayed the primary's WAL position as it
 * was when the notification arrived.
 *
 *   1. replica_wait_notify(payload): the note is queued.
 *   2. One query on the primary, sent after the note arrived, reads
 *      pg_current_wal_insert_lsn(); since NOTIFY is delivered after commit,
 *      that position is at or past the end of the commit record (the write
 *      position need not be, with synchronous_commit = off).  Notes that arrive while
 *      such a query is in flight wait for the next one.
 *   3. The read side (same conninfo as the lookups, so the same standby) is
 *      polled every few milliseconds for pg_last_wal_replay_lsn()
 *      (pg_current_wal_insert_lsn() once it is a primary).
 *   4. Notes whose position was replayed are handed to apply(payload).
 *
 * Each side uses one connection of its own.  Notes older than
 * REPLICA_WAIT_MAX_MS are applied anyway.
 */
typedef void replica_apply_cb(void *arg, const char *payload, size_t len);

struct replica_wait_handler {
	replica_apply_cb *apply; /* one note, again */
	/* optional: true before the first and false after the last note applied together */
	void (*burst)(void *arg, bool begin);
	/*
	 * optional: a connection of the wait was lost while notes waited; its
	 * replacement may reach another server, so the pending notes became one
	 * "all" that waits for replay again.  Empty the cache now: what was
	 * refilled meanwhile may be older than the changes that waited.  Told
	 * once per loss, until a wait query succeeds again.
	 */
	void (*lost)(void *arg);
	void *arg;
};

struct replica_wait_stats {
	size_t pending;          /* notes not yet applied */
	uint64_t applied;        /* notes applied after their position was replayed */
	uint64_t forced;         /* notes applied after REPLICA_WAIT_MAX_MS without confirmation */
	unsigned last_wait_ms;   /* from notification to apply, of the latest note */
	unsigned max_wait_ms;
	uint64_t replayed_lsn;   /* latest position the read side reported */
};

/* replica_wait_new - the wait, with h copied; NULL when out of memory or on invalid settings */
struct replica_wait *replica_wait_new(struct event_base *base, const char *read_conninfo,
				      const char *primary_conninfo, unsigned connect_timeout_ms,
				      const struct replica_wait_handler *h);
/* replica_wait_notify - one notification payload (copied) */
void replica_wait_notify(struct replica_wait *rw, const char *payload, size_t len);
/* replica_wait_reload - new conninfos; false (nothing changed) on invalid settings */
bool replica_wait_reload(struct replica_wait *rw, const char *read_conninfo,
			 const char *primary_conninfo, unsigned connect_timeout_ms);
void replica_wait_stats(const struct replica_wait *rw, struct replica_wait_stats *out);
/* replica_wait_free - pending notes are dropped (the cache they were for goes too) */
void replica_wait_free(struct replica_wait *rw);

#endif
