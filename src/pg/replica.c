/*
 * replica: what vmaild needs to read from PostgreSQL hot standbys.  Pure
 * helpers for the two connection strings (lookups may go to a standby;
 * writes and LISTEN must reach the primary), and the replay wait that keeps
 * the answer cache from being refilled from a standby that has not yet
 * applied a change the primary announced (see replica.h for the protocol).
 */
#include "vmail/replica.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "vmail/log.h"
#include "vmail/pg.h"

#define POLL_MS 10     /* replay polling while notes wait */
#define RETRY_MS 200   /* after a failed query */
#define QUERY_MS 2000  /* deadline of one wait query */

enum note_phase {
	NOTE_NEW = 0,   /* needs a primary position from a query not yet sent */
	NOTE_FETCHING,  /* the position query in flight will give its position */
	NOTE_REPLAY,    /* has its position; waits for the standby to replay it */
};

struct note {
	TAILQ_ENTRY(note) link;
	enum note_phase phase;
	uint64_t lsn;
	struct timespec since;
	size_t len;
	char payload[];
};

TAILQ_HEAD(note_list, note);

struct replica_wait {
	struct event_base *base;
	struct pg_pool *primary; /* one connection: pg_current_wal_lsn() */
	struct pg_pool *reads;   /* one connection, like the lookups': replay position */
	struct pg_req *fetch;    /* position query in flight */
	struct pg_req *poll;     /* replay query in flight */
	struct event *timer;     /* next poll or retry */
	struct note_list notes;
	size_t nnotes;
	struct replica_wait_handler h;
	uint64_t failures_seen;  /* both pools' connection failures, when last looked at */
	bool lost_told;          /* lost was called; not again until a wait query succeeds */
	bool closing;
	struct replica_wait_stats stats;
};

static const struct pg_stmt primary_stmts[] = {
	/*
	 * The insert position, not pg_current_wal_lsn() (the write position): with
	 * synchronous_commit = off a commit can be visible, and notified, before
	 * its record is written out, so the write position may still be short of it.
	 */
	{ "vmail_replica_lsn", "SELECT pg_current_wal_insert_lsn()::text", 0, 1, PG_SHAPE_VALUE,
	  PG_STMT_RETRY, NULL },
};

static const struct pg_stmt read_stmts[] = {
	{ "vmail_replica_replayed",
	  "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
	  " ELSE pg_current_wal_insert_lsn() END)::text",
	  0, 1, PG_SHAPE_VALUE, PG_STMT_RETRY, NULL },
};

static void rw_schedule(struct replica_wait *rw, unsigned ms);
static void rw_fetch_start(struct replica_wait *rw);

/* ---------------------------------------------------------------- pure helpers */

static const char *conninfo_value(PQconninfoOption *opts, const char *key)
{
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val;
	return NULL;
}

bool replica_reads_from_standby(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	if (!opts)
		return false;
	const char *tsa = conninfo_value(opts, "target_session_attrs");
	bool standby = tsa && (strcmp(tsa, "standby") == 0 || strcmp(tsa, "prefer-standby") == 0 ||
			       strcmp(tsa, "read-only") == 0);
	PQconninfoFree(opts);
	return standby;
}

/* append - grow *buf by text; false when out of memory */
static bool append(char **buf, size_t *len, size_t *cap, const char *text, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t want = (*len + n + 1) * 2;
		char *grown = realloc(*buf, want);
		if (!grown)
			return false;
		*buf = grown;
		*cap = want;
	}
	memcpy(*buf + *len, text, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

char *replica_primary_conninfo(const char *conninfo, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		snprintf(err, errlen, "%s", perr ? perr : "out of memory");
		if (perr) {
			/* libpq's message ends in a newline */
			size_t n = strlen(err);
			while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
				err[--n] = '\0';
		}
		PQfreemem(perr);
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	bool ok = append(&buf, &len, &cap, "", 0);
	for (PQconninfoOption *o = opts; ok && o->keyword; o++) {
		if (!o->val || strcmp(o->keyword, "target_session_attrs") == 0)
			continue;
		ok = append(&buf, &len, &cap, o->keyword, strlen(o->keyword)) &&
		     append(&buf, &len, &cap, "='", 2);
		for (const char *v = o->val; ok && *v; v++) {
			if (*v == '\'' || *v == '\\')
				ok = append(&buf, &len, &cap, "\\", 1);
			ok = ok && append(&buf, &len, &cap, v, 1);
		}
		ok = ok && append(&buf, &len, &cap, "' ", 2);
	}
	ok = ok && append(&buf, &len, &cap, "target_session_attrs=read-write",
			  strlen("target_session_attrs=read-write"));
	PQconninfoFree(opts);
	if (!ok) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return buf;
}

/* hex_part - 1..8 hex digits */
static bool hex_part(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 8)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

bool replica_lsn_parse(const char *s, size_t len, uint64_t *out)
{
	const char *slash = memchr(s, '/', len);
	uint64_t hi, lo;
	if (!slash || !hex_part(s, (size_t)(slash - s), &hi) ||
	    !hex_part(slash + 1, len - (size_t)(slash - s) - 1, &lo))
		return false;
	*out = hi << 32 | lo;
	return true;
}

/* ---------------------------------------------------------------- the wait */

static unsigned ms_since(struct timespec then)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (long)(now.tv_sec - then.tv_sec) * 1000 + (now.tv_nsec - then.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (unsigned)ms;
}

/* rw_apply - hand one note over and forget it */
static void rw_apply(struct replica_wait *rw, struct note *n, bool forced)
{
	unsigned waited = ms_since(n->since);
	TAILQ_REMOVE(&rw->notes, n, link);
	rw->nnotes--;
	if (forced)
		rw->stats.forced++;
	else
		rw->stats.applied++;
	rw->stats.last_wait_ms = waited;
	if (waited > rw->stats.max_wait_ms)
		rw->stats.max_wait_ms = waited;
	log_debug("replica: \"%s\" applied again after %u ms%s", n->payload, waited,
		  forced ? " (replay not confirmed)" : "");
	rw->h.apply(rw->h.arg, n->payload, n->len);
	free(n);
}

/* rw_burst - bracket notes applied together, so the handler pays for them once */
static void rw_burst(struct replica_wait *rw, bool begin)
{
	if (rw->h.burst)
		rw->h.burst(rw->h.arg, begin);
}

/* rw_expire - notes that waited too long: apply them now rather than never */
static void rw_expire(struct replica_wait *rw)
{
	unsigned forced = 0;
	struct note *n, *next;
	for (n = TAILQ_FIRST(&rw->notes); n; n = next) {
		next = TAILQ_NEXT(n, link);
		if (n->phase != NOTE_FETCHING && ms_since(n->since) > REPLICA_WAIT_MAX_MS) {
			rw_apply(rw, n, true);
			forced++;
		}
	}
	if (forced)
		log_warning("replica: %u cache invalidations applied without confirmed replay "
			    "after %d s (standby lagging or unreachable?)", forced,
			    REPLICA_WAIT_MAX_MS / 1000);
}

/* rw_failures - connections of the wait lost or failed so far, both sides */
static uint64_t rw_failures(const struct replica_wait *rw)
{
	struct pg_stats a, b;
	pg_pool_stats(rw->primary, &a);
	pg_pool_stats(rw->reads, &b);
	return a.conn_failures + b.conn_failures;
}

/* rw_drop_notes - forget every note */
static void rw_drop_notes(struct replica_wait *rw)
{
	struct note *n;
	while ((n = TAILQ_FIRST(&rw->notes))) {
		TAILQ_REMOVE(&rw->notes, n, link);
		free(n);
	}
	rw->nnotes = 0;
}

/* rw_add_note - queue a note that needs a position; false (logged) when out of memory */
static bool rw_add_note(struct replica_wait *rw, const char *payload, size_t len)
{
	if (rw->nnotes == 0)
		rw->failures_seen = rw_failures(rw); /* failures while nothing waited lost nothing */
	struct note *n = malloc(sizeof(*n) + len + 1);
	if (!n) {
		log_error("replica: out of memory; \"%.*s\" applied without waiting for replay",
			  (int)(len > 80 ? 80 : len), payload);
		return false;
	}
	n->phase = NOTE_NEW;
	n->lsn = 0;
	clock_gettime(CLOCK_MONOTONIC, &n->since);
	n->len = len;
	memcpy(n->payload, payload, len);
	n->payload[len] = '\0';
	TAILQ_INSERT_TAIL(&rw->notes, n, link);
	rw->nnotes++;
	return true;
}

/*
 * rw_check_lost - a connection failed while notes waited.  Its replacement
 * may reach another server (the next host of the list, a promoted standby)
 * whose positions say nothing of the one the lookups read from, and the
 * query in flight may have been answered there: the notes become one "all"
 * that needs a new position, and the handler empties the cache now.  Told
 * once, until a wait query succeeds again.
 */
static void rw_check_lost(struct replica_wait *rw)
{
	uint64_t failures = rw_failures(rw);
	if (failures == rw->failures_seen || rw->nnotes == 0)
		return;
	rw->failures_seen = failures;
	rw_drop_notes(rw);
	rw_add_note(rw, "all", 3);
	if (rw->lost_told)
		return;
	rw->lost_told = true;
	/* pg.c logged the failure; the handler logs what it does about it */
	log_debug("replica: a connection was lost while notes waited; \"all\" now and after replay");
	if (rw->h.lost)
		rw->h.lost(rw->h.arg);
}

static bool rw_has(const struct replica_wait *rw, enum note_phase phase)
{
	struct note *n;
	TAILQ_FOREACH(n, &rw->notes, link)
		if (n->phase == phase)
			return true;
	return false;
}

/* result_lsn - the position a wait query answered; false when it failed */
static bool result_lsn(enum pg_status st, const PGresult *res, uint64_t *out)
{
	size_t len = 0;
	const char *v = st == PG_FOUND ? pg_result_value(res, 0, 0, &len) : NULL;
	return v && replica_lsn_parse(v, len, out);
}

static void rw_poll_done(void *arg, enum pg_status st, const PGresult *res)
{
	struct replica_wait *rw = arg;
	rw->poll = NULL;
	if (rw->closing)
		return;
	uint64_t replayed;
	rw_check_lost(rw);
	rw_burst(rw, true);
	if (result_lsn(st, res, &replayed)) {
		rw->lost_told = false;
		rw->stats.replayed_lsn = replayed;
		struct note *n, *next;
		for (n = TAILQ_FIRST(&rw->notes); n; n = next) {
			next = TAILQ_NEXT(n, link);
			if (n->phase == NOTE_REPLAY && n->lsn <= replayed)
				rw_apply(rw, n, false);
		}
	}
	rw_expire(rw);
	rw_burst(rw, false);
	if (rw_has(rw, NOTE_NEW))
		rw_fetch_start(rw);
	if (rw_has(rw, NOTE_REPLAY))
		rw_schedule(rw, st == PG_TEMPFAIL || st == PG_PERMFAIL ? RETRY_MS : POLL_MS);
}

static void rw_fetch_done(void *arg, enum pg_status st, const PGresult *res)
{
	struct replica_wait *rw = arg;
	rw->fetch = NULL;
	if (rw->closing)
		return;
	rw_check_lost(rw); /* then no note is FETCHING: the answer is not used */
	uint64_t lsn = 0;
	bool ok = result_lsn(st, res, &lsn);
	if (ok)
		rw->lost_told = false;
	struct note *n;
	TAILQ_FOREACH(n, &rw->notes, link) {
		if (n->phase != NOTE_FETCHING)
			continue;
		n->phase = ok ? NOTE_REPLAY : NOTE_NEW;
		n->lsn = ok ? lsn : 0;
	}
	if (!ok) {
		log_debug("replica: cannot read the primary's WAL position (%s); retrying",
			  pg_status_name(st));
		rw_burst(rw, true);
		rw_expire(rw);
		rw_burst(rw, false);
		rw_schedule(rw, RETRY_MS);
		return;
	}
	if (rw_has(rw, NOTE_NEW))
		rw_fetch_start(rw);
	rw_schedule(rw, 0);
}

static void rw_fetch_start(struct replica_wait *rw)
{
	if (rw->fetch || rw->closing)
		return;
	struct note *n;
	TAILQ_FOREACH(n, &rw->notes, link)
		if (n->phase == NOTE_NEW)
			n->phase = NOTE_FETCHING;
	rw->fetch = pg_submit(rw->primary, 0, NULL, NULL, 0, rw_fetch_done, rw);
	if (!rw->fetch) {
		TAILQ_FOREACH(n, &rw->notes, link)
			if (n->phase == NOTE_FETCHING)
				n->phase = NOTE_NEW;
		rw_schedule(rw, RETRY_MS);
	}
}

static void rw_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct replica_wait *rw = arg;
	(void)fd;
	(void)what;
	if (rw_has(rw, NOTE_NEW))
		rw_fetch_start(rw);
	if (!rw->poll && rw_has(rw, NOTE_REPLAY)) {
		rw->poll = pg_submit(rw->reads, 0, NULL, NULL, 0, rw_poll_done, rw);
		if (!rw->poll)
			rw_schedule(rw, RETRY_MS);
	}
}

static void rw_schedule(struct replica_wait *rw, unsigned ms)
{
	if (rw->closing || evtimer_pending(rw->timer, NULL))
		return;
	struct timeval tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(rw->timer, &tv);
}

/* rw_config - each side's pool: one connection, a short queue, short queries */
static struct pg_config rw_config(const char *conninfo, unsigned connect_timeout_ms)
{
	struct pg_config pc;
	pg_config_defaults(&pc);
	pc.conninfo = conninfo;
	pc.pool_size = 1;
	pc.max_queue = 4;
	pc.connect_timeout_ms = connect_timeout_ms;
	pc.request_timeout_ms = QUERY_MS;
	return pc;
}

static struct pg_pool *rw_pool(struct event_base *base, const char *conninfo,
			       unsigned connect_timeout_ms, const struct pg_stmt *stmt)
{
	struct pg_config pc = rw_config(conninfo, connect_timeout_ms);
	return pg_pool_new(base, &pc, stmt, 1);
}

struct replica_wait *replica_wait_new(struct event_base *base, const char *read_conninfo,
				      const char *primary_conninfo, unsigned connect_timeout_ms,
				      const struct replica_wait_handler *h)
{
	struct replica_wait *rw = calloc(1, sizeof(*rw));
	if (!rw)
		return NULL;
	rw->base = base;
	rw->h = *h;
	TAILQ_INIT(&rw->notes);
	rw->timer = evtimer_new(base, rw_timer_cb, rw);
	rw->primary = rw_pool(base, primary_conninfo, connect_timeout_ms, primary_stmts);
	rw->reads = rw_pool(base, read_conninfo, connect_timeout_ms, read_stmts);
	if (!rw->timer || !rw->primary || !rw->reads) {
		replica_wait_free(rw);
		return NULL;
	}
	return rw;
}

bool replica_wait_reload(struct replica_wait *rw, const char *read_conninfo,
			 const char *primary_conninfo, unsigned connect_timeout_ms)
{
	struct pg_config pp = rw_config(primary_conninfo, connect_timeout_ms);
	struct pg_config pr = rw_config(read_conninfo, connect_timeout_ms);
	return pg_pool_reload(rw->primary, &pp) && pg_pool_reload(rw->reads, &pr);
}

void replica_wait_notify(struct replica_wait *rw, const char *payload, size_t len)
{
	if (rw->nnotes >= REPLICA_WAIT_MAX_NOTES) {
		/* A burst: one "all" once everything so far is replayed covers every note. */
		rw_drop_notes(rw);
		payload = "all";
		len = 3;
	}
	if (rw_add_note(rw, payload, len))
		rw_fetch_start(rw);
}

void replica_wait_stats(const struct replica_wait *rw, struct replica_wait_stats *out)
{
	*out = rw->stats;
	out->pending = rw->nnotes;
}

void replica_wait_free(struct replica_wait *rw)
{
	if (!rw)
		return;
	rw->closing = true;
	/* Outstanding queries are answered TEMPFAIL into callbacks that now do nothing. */
	if (rw->primary)
		pg_pool_free(rw->primary);
	if (rw->reads)
		pg_pool_free(rw->reads);
	rw_drop_notes(rw);
	if (rw->timer)
		event_free(rw->timer);
	free(rw);
}
