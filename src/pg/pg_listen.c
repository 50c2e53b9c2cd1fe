/*
 * pg_listen: the invalidation feed.  One libpq connection, outside the query
 * pool (a LISTEN belongs to a session, and the pool's connections may go to
 * a standby, where LISTEN is refused), on the same driver as pg.c's
 * connections (pgconn): connect, send LISTEN, then read notifications as
 * they come.  Any failure closes the connection and retries with jittered
 * exponential backoff; the handler hears "down" at once and "listening"
 * only once LISTEN took effect, so the cache can drop what it may have
 * missed in between.
 */
#include "vmail/pg_listen.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/log.h"
#include "vmail/pgconn.h"

/* More notifications than this in one read are not applied one by one. */
#define BATCH_MAX 64
#define CHANNEL_MAX 63

struct pg_listen {
	char *conninfo;
	char channel[CHANNEL_MAX + 1];
	bool impose_rw;        /* conninfo does not ask for a writable server itself */
	unsigned connect_timeout_ms;
	struct pg_listen_handler h;
	struct pgconn pc;      /* connect, deadline, backoff; SETUP is SUBSCRIBING here */
	unsigned failing;      /* failures since LISTEN last took effect */
	struct pg_listen_stats stats;
};

static const char *const state_names[PG_LISTEN_STATE__COUNT] = {
	[PG_LISTEN_BACKOFF] = "backoff",
	[PG_LISTEN_CONNECTING] = "connecting",
	[PG_LISTEN_SUBSCRIBING] = "subscribing",
	[PG_LISTEN_LISTENING] = "listening",
};

const char *pg_listen_state_name(enum pg_listen_state st)
{
	return (unsigned)st < PG_LISTEN_STATE__COUNT ? state_names[st] : "?";
}

/* The driver's states in the listener's words. */
static const enum pg_listen_state listen_state[PGCONN_STATE__COUNT] = {
	[PGCONN_BACKOFF] = PG_LISTEN_BACKOFF,
	[PGCONN_CONNECTING] = PG_LISTEN_CONNECTING,
	[PGCONN_SETUP] = PG_LISTEN_SUBSCRIBING,
	[PGCONN_READY] = PG_LISTEN_LISTENING,
};

/* listen_changed - the handler hears of LISTENING being reached or left */
static void listen_changed(void *arg, enum pgconn_state from, enum pgconn_state to)
{
	struct pg_listen *l = arg;
	log_debug("pg_listen: %s -> %s", state_names[listen_state[from]], state_names[listen_state[to]]);
	if (to == PGCONN_READY && l->h.state)
		l->h.state(l->h.arg, true);
	else if (from == PGCONN_READY && l->h.state)
		l->h.state(l->h.arg, false);
}

/* impose_read_write - false when conninfo already asks for read-write or primary */
static bool impose_read_write(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	bool impose = true;
	if (!opts) {
		PQfreemem(err);
		return true; /* the connect will report the problem */
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "target_session_attrs") == 0 && o->val &&
		    (strcmp(o->val, "read-write") == 0 || strcmp(o->val, "primary") == 0))
			impose = false;
	PQconninfoFree(opts);
	return impose;
}

/* listen_fail - the one error path: close, tell the handler, retry later */
static void listen_fail(struct pg_listen *l, const char *what, const char *detail)
{
	char msg[512];
	pgconn_one_line(msg, sizeof(msg), detail);
	/* An outage would log a line per retry: the first at warning, the rest at debug. */
	if (l->failing++ == 0)
		log_warning("pg_listen: %s: %s; retrying", what, msg);
	else
		log_debug("pg_listen: %s: %s", what, msg);
	l->stats.failures++;
	pgconn_backoff(&l->pc);
}

static void listen_fail_cb(void *arg, const char *what, const char *detail)
{
	listen_fail(arg, what, detail);
}

/* listen_subscribe - connected: the session's setup is the LISTEN */
static void listen_subscribe(void *arg)
{
	struct pg_listen *l = arg;
	char sql[CHANNEL_MAX + 16];
	snprintf(sql, sizeof(sql), "LISTEN %s", l->channel);
	if (PQsetnonblocking(l->pc.pq, 1) != 0 || !PQsendQuery(l->pc.pq, sql)) {
		listen_fail(l, "LISTEN", PQerrorMessage(l->pc.pq));
		return;
	}
	pgconn_setup(&l->pc);
	pgconn_flush(&l->pc, "LISTEN");
}

/*
 * listen_read - results of LISTEN first, then notifications.  Issue 8 (reads
 * from standbys) hooks in here: a notification will carry the primary's WAL
 * position, and entries must not be refilled from a standby that has not
 * replayed that far.
 */
static void listen_read(void *arg)
{
	struct pg_listen *l = arg;
	if (!PQconsumeInput(l->pc.pq)) {
		listen_fail(l, "connection lost", PQerrorMessage(l->pc.pq));
		return;
	}
	while (!PQisBusy(l->pc.pq)) {
		PGresult *res = PQgetResult(l->pc.pq);
		if (!res)
			break;
		ExecStatusType rs = PQresultStatus(res);
		if (rs != PGRES_COMMAND_OK) {
			char msg[512];
			pgconn_one_line(msg, sizeof(msg), PQresultErrorMessage(res));
			PQclear(res);
			listen_fail(l, "LISTEN failed", msg);
			return;
		}
		PQclear(res);
		if (l->pc.state == PGCONN_SETUP) {
			l->stats.connects++;
			if (l->failing)
				log_notice("pg_listen: listening on %s again, after %u failed attempts",
					   l->channel, l->failing);
			else
				log_info("pg_listen: listening on %s", l->channel);
			l->failing = 0;
			pgconn_ready(&l->pc);
		}
	}
	if (l->pc.state == PGCONN_READY) {
		PGnotify *n;
		unsigned batch = 0;
		while ((n = PQnotifies(l->pc.pq))) {
			if (batch == 0 && l->h.burst)
				l->h.burst(l->h.arg, true);
			l->stats.notifications++;
			if (++batch <= BATCH_MAX) {
				if (l->h.notify)
					l->h.notify(l->h.arg, n->extra, strlen(n->extra));
			} else if (batch == BATCH_MAX + 1 && l->h.overflow) {
				l->h.overflow(l->h.arg);
			}
			PQfreemem(n);
		}
		if (batch && l->h.burst)
			l->h.burst(l->h.arg, false);
	}
	if (PQstatus(l->pc.pq) == CONNECTION_BAD)
		listen_fail(l, "connection lost", PQerrorMessage(l->pc.pq));
}

/* listen_start - connect with the current settings */
static void listen_start(void *arg)
{
	struct pg_listen *l = arg;
	/* A keyword after dbname overrides the expanded string, one before it does not. */
	const char *keys[] = { "client_encoding", "fallback_application_name", "dbname",
			       l->impose_rw ? "target_session_attrs" : NULL, NULL };
	const char *values[] = { "UTF8", "vmaild-listen", l->conninfo, "read-write", NULL };
	pgconn_connect(&l->pc, keys, values, l->connect_timeout_ms);
}

static const struct pgconn_ops listen_ops = {
	.start = listen_start,
	.connected = listen_subscribe,
	.readable = listen_read,
	.fail = listen_fail_cb,
	.changed = listen_changed,
};

struct pg_listen *pg_listen_new(struct event_base *base, const char *conninfo, const char *channel,
				unsigned connect_timeout_ms, const struct pg_listen_handler *h)
{
	if (strlen(channel) > CHANNEL_MAX)
		return NULL;
	struct pg_listen *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->conninfo = strdup(conninfo);
	if (!l->conninfo) {
		free(l);
		return NULL;
	}
	snprintf(l->channel, sizeof(l->channel), "%s", channel);
	l->impose_rw = impose_read_write(conninfo);
	l->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : 5000;
	l->h = *h;
	pgconn_init(&l->pc, base, "pg_listen", &listen_ops, l);
	listen_start(l);
	return l;
}

bool pg_listen_reload(struct pg_listen *l, const char *conninfo, unsigned connect_timeout_ms)
{
	l->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : 5000;
	if (strcmp(conninfo, l->conninfo) == 0)
		return true;
	char *copy = strdup(conninfo);
	if (!copy)
		return false;
	free(l->conninfo);
	l->conninfo = copy;
	l->impose_rw = impose_read_write(conninfo);
	log_info("pg_listen: connection string changed, reconnecting");
	pgconn_restart(&l->pc);
	return true;
}

void pg_listen_free(struct pg_listen *l)
{
	if (!l)
		return;
	pgconn_close(&l->pc);
	free(l->conninfo);
	free(l);
}

void pg_listen_stats(const struct pg_listen *l, struct pg_listen_stats *out)
{
	*out = l->stats;
	out->state = listen_state[l->pc.state];
}
