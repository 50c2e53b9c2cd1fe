/*
 * pg_listen: the invalidation feed.  One libpq connection, outside the query
 * pool (a LISTEN belongs to a session, and the pool's connections may go to
 * a standby, where LISTEN is refused), driven by one I/O event and one timer
 * like pg.c's connections: connect, send LISTEN, then read notifications as
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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "vmail/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* More notifications than this in one read are not applied one by one. */
#define BATCH_MAX 64
#define CHANNEL_MAX 63

struct pg_listen {
	struct event_base *base;
	char *conninfo;
	char channel[CHANNEL_MAX + 1];
	bool impose_rw;        /* conninfo does not ask for a writable server itself */
	unsigned connect_timeout_ms;
	struct pg_listen_handler h;
	enum pg_listen_state state;
	PGconn *pq;
	struct event io;
	bool io_armed;
	int io_fd;
	short io_what;
	struct event timer;    /* connect deadline, or reconnect */
	unsigned backoff_ms;
	unsigned failing;      /* failures since LISTEN last took effect */
	uint64_t rng;
	struct pg_listen_stats stats;
};

static void listen_start(struct pg_listen *l);
static void listen_fail(struct pg_listen *l, const char *what, const char *detail);
static void listen_io_cb(evutil_socket_t fd, short what, void *arg);

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

static void listen_set_state(struct pg_listen *l, enum pg_listen_state st)
{
	if (l->state == st)
		return;
	log_debug("pg_listen: %s -> %s", state_names[l->state], state_names[st]);
	enum pg_listen_state old = l->state;
	l->state = st;
	if (st == PG_LISTEN_LISTENING && l->h.state)
		l->h.state(l->h.arg, true);
	else if (old == PG_LISTEN_LISTENING && l->h.state)
		l->h.state(l->h.arg, false);
}

/* one_line - a libpq message (trailing newline, multi-host lines) as one log line */
static void one_line(char *dst, size_t dstlen, const char *src)
{
	size_t n = 0;
	for (; src && *src && n + 1 < dstlen; src++) {
		char ch = (unsigned char)*src < 0x20 ? ' ' : *src;
		if (ch != ' ' || (n > 0 && dst[n - 1] != ' '))
			dst[n++] = ch;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

/* listen_notice - server notices (a shutdown's FATAL among them) go to our log, not stderr */
static void listen_notice(void *arg, const char *message)
{
	char line[512];
	(void)arg;
	one_line(line, sizeof(line), message);
	log_notice("pg_listen: server: %s", line);
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

static bool listen_watch(struct pg_listen *l, short what)
{
	int fd = PQsocket(l->pq);
	if (fd < 0)
		return false;
	if (l->io_armed && l->io_fd == fd && l->io_what == what)
		return true;
	if (l->io_armed)
		event_del(&l->io);
	event_assign(&l->io, l->base, fd, what | EV_PERSIST, listen_io_cb, l);
	l->io_armed = event_add(&l->io, NULL) == 0;
	l->io_fd = fd;
	l->io_what = what;
	return l->io_armed;
}

static void listen_close(struct pg_listen *l)
{
	if (l->io_armed)
		event_del(&l->io);
	l->io_armed = false;
	event_del(&l->timer);
	if (l->pq)
		PQfinish(l->pq);
	l->pq = NULL;
}

/* listen_fail - the one error path: close, tell the handler, retry later */
static void listen_fail(struct pg_listen *l, const char *what, const char *detail)
{
	char msg[512];
	one_line(msg, sizeof(msg), detail);
	/* An outage would log a line per retry: the first at warning, the rest at debug. */
	if (l->failing++ == 0)
		log_warning("pg_listen: %s: %s; retrying", what, msg);
	else
		log_debug("pg_listen: %s: %s", what, msg);
	l->stats.failures++;
	listen_close(l);
	listen_set_state(l, PG_LISTEN_BACKOFF);
	/* xorshift64 jitter: reconnects of several daemons should not line up */
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	unsigned delay = l->backoff_ms / 2 + (unsigned)(l->rng % (l->backoff_ms / 2 + 1));
	l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
	struct timeval tv = { delay / 1000, (suseconds_t)(delay % 1000) * 1000 };
	event_add(&l->timer, &tv);
}

static void listen_subscribe(struct pg_listen *l)
{
	char sql[CHANNEL_MAX + 16];
	snprintf(sql, sizeof(sql), "LISTEN %s", l->channel);
	if (PQsetnonblocking(l->pq, 1) != 0 || !PQsendQuery(l->pq, sql)) {
		listen_fail(l, "LISTEN", PQerrorMessage(l->pq));
		return;
	}
	listen_set_state(l, PG_LISTEN_SUBSCRIBING);
	int r = PQflush(l->pq);
	if (r < 0 || !listen_watch(l, r ? EV_READ | EV_WRITE : EV_READ))
		listen_fail(l, "LISTEN", PQerrorMessage(l->pq));
}

/*
 * listen_read - results of LISTEN first, then notifications.  Issue 8 (reads
 * from standbys) hooks in here: a notification will carry the primary's WAL
 * position, and entries must not be refilled from a standby that has not
 * replayed that far.
 */
static void listen_read(struct pg_listen *l)
{
	if (!PQconsumeInput(l->pq)) {
		listen_fail(l, "connection lost", PQerrorMessage(l->pq));
		return;
	}
	while (!PQisBusy(l->pq)) {
		PGresult *res = PQgetResult(l->pq);
		if (!res)
			break;
		ExecStatusType rs = PQresultStatus(res);
		if (rs != PGRES_COMMAND_OK) {
			char msg[512];
			one_line(msg, sizeof(msg), PQresultErrorMessage(res));
			PQclear(res);
			listen_fail(l, "LISTEN failed", msg);
			return;
		}
		PQclear(res);
		if (l->state == PG_LISTEN_SUBSCRIBING) {
			event_del(&l->timer);
			l->backoff_ms = BACKOFF_MIN_MS;
			l->stats.connects++;
			if (l->failing)
				log_notice("pg_listen: listening on %s again, after %u failed attempts",
					   l->channel, l->failing);
			else
				log_info("pg_listen: listening on %s", l->channel);
			l->failing = 0;
			listen_set_state(l, PG_LISTEN_LISTENING);
		}
	}
	if (l->state == PG_LISTEN_LISTENING) {
		PGnotify *n;
		unsigned batch = 0;
		while ((n = PQnotifies(l->pq))) {
			l->stats.notifications++;
			if (++batch <= BATCH_MAX) {
				if (l->h.notify)
					l->h.notify(l->h.arg, n->extra, strlen(n->extra));
			} else if (batch == BATCH_MAX + 1 && l->h.overflow) {
				l->h.overflow(l->h.arg);
			}
			PQfreemem(n);
		}
	}
	if (PQstatus(l->pq) == CONNECTION_BAD)
		listen_fail(l, "connection lost", PQerrorMessage(l->pq));
}

static void listen_connect_poll(struct pg_listen *l)
{
	switch (PQconnectPoll(l->pq)) {
	case PGRES_POLLING_READING:
		if (!listen_watch(l, EV_READ))
			listen_fail(l, "connect", PQerrorMessage(l->pq));
		break;
	case PGRES_POLLING_WRITING:
		if (!listen_watch(l, EV_WRITE))
			listen_fail(l, "connect", PQerrorMessage(l->pq));
		break;
	case PGRES_POLLING_OK:
		listen_subscribe(l);
		break;
	case PGRES_POLLING_FAILED:
	default:
		listen_fail(l, "connect", PQerrorMessage(l->pq));
		break;
	}
}

static void listen_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_listen *l = arg;
	(void)fd;
	if (l->state == PG_LISTEN_CONNECTING) {
		listen_connect_poll(l);
		return;
	}
	if (what & EV_WRITE) {
		int r = PQflush(l->pq);
		if (r < 0 || !listen_watch(l, r ? EV_READ | EV_WRITE : EV_READ)) {
			listen_fail(l, "send", PQerrorMessage(l->pq));
			return;
		}
	}
	if (what & EV_READ)
		listen_read(l);
}

static void listen_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_listen *l = arg;
	(void)fd;
	(void)what;
	switch (l->state) {
	case PG_LISTEN_BACKOFF:
		listen_start(l);
		break;
	case PG_LISTEN_CONNECTING:
	case PG_LISTEN_SUBSCRIBING:
		listen_fail(l, "connect", "timed out");
		break;
	case PG_LISTEN_LISTENING:
	case PG_LISTEN_STATE__COUNT:
		break;
	}
}

static void listen_start(struct pg_listen *l)
{
	/* A keyword after dbname overrides the expanded string, one before it does not. */
	const char *keys[] = { "client_encoding", "fallback_application_name", "dbname",
			       l->impose_rw ? "target_session_attrs" : NULL, NULL };
	const char *values[] = { "UTF8", "vmaild-listen", l->conninfo, "read-write", NULL };

	event_del(&l->timer);
	l->pq = PQconnectStartParams(keys, values, 1);
	if (!l->pq) {
		listen_fail(l, "connect", "out of memory");
		return;
	}
	PQsetNoticeProcessor(l->pq, listen_notice, l);
	listen_set_state(l, PG_LISTEN_CONNECTING);
	if (PQstatus(l->pq) == CONNECTION_BAD) {
		listen_fail(l, "connect", PQerrorMessage(l->pq));
		return;
	}
	struct timeval tv = { l->connect_timeout_ms / 1000,
			      (suseconds_t)(l->connect_timeout_ms % 1000) * 1000 };
	event_add(&l->timer, &tv);
	if (!listen_watch(l, EV_WRITE))
		listen_fail(l, "connect", PQerrorMessage(l->pq));
}

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
	l->base = base;
	snprintf(l->channel, sizeof(l->channel), "%s", channel);
	l->impose_rw = impose_read_write(conninfo);
	l->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : 5000;
	l->h = *h;
	l->state = PG_LISTEN_BACKOFF;
	l->backoff_ms = BACKOFF_MIN_MS;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	l->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^ 1;
	evtimer_assign(&l->timer, base, listen_timer_cb, l);
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
	listen_close(l);
	listen_set_state(l, PG_LISTEN_BACKOFF);
	l->backoff_ms = BACKOFF_MIN_MS;
	listen_start(l);
	return true;
}

void pg_listen_free(struct pg_listen *l)
{
	if (!l)
		return;
	listen_close(l);
	free(l->conninfo);
	free(l);
}

void pg_listen_stats(const struct pg_listen *l, struct pg_listen_stats *out)
{
	*out = l->stats;
	out->state = l->state;
}
