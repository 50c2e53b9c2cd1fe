/*
 * pgconn: the libpq driver under the pool's connections (pg.c) and the LISTEN
 * client (pg_listen.c).  It owns the non-blocking connect (PQconnectPoll on
 * one re-armed I/O event), the deadline that bounds connect plus setup, the
 * jittered exponential backoff between attempts, flushing, and server
 * notices.  What a session is for (prepares and pipelines, or LISTEN) and how
 * failures are logged stay with the owner, which hears about each step
 * through its pgconn_ops, much as PgBouncer's sbuf reports to its protocol
 * callback.
 */
#include "vmail/pgconn.h"

#include "vmail/log.h"

#include <sodium.h>
#include <stdio.h>

static void pgconn_io_cb(evutil_socket_t fd, short what, void *arg);
static void pgconn_timer_cb(evutil_socket_t fd, short what, void *arg);

static struct timeval ms_tv(unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	return tv;
}

void pgconn_one_line(char *dst, size_t dstlen, const char *src)
{
	size_t n = 0;
	bool space = false;
	for (; src && *src && n + 1 < dstlen; src++) {
		unsigned char c = (unsigned char)*src;
		if (c < 0x20) {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < dstlen)
			dst[n++] = ' ';
		space = false;
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
}

static void pgconn_set_state(struct pgconn *c, enum pgconn_state st)
{
	enum pgconn_state from = c->state;
	if (from == st)
		return;
	c->state = st;
	c->ops->changed(c->arg, from, st);
}

/* pgconn_notice - server notices (a shutdown's FATAL among them) go to our log, not stderr */
static void pgconn_notice(void *arg, const char *message)
{
	struct pgconn *c = arg;
	char line[512];
	pgconn_one_line(line, sizeof(line), message);
	log_notice("%s: server: %s", c->name, line);
}

/* pgconn_watch - (re)arm the I/O event; libpq may change the socket between connect polls */
static bool pgconn_watch(struct pgconn *c, short what)
{
	int fd = PQsocket(c->pq);
	if (fd < 0)
		return false;
	if (c->io_armed && c->io_fd == fd && c->io_what == what)
		return true;
	if (c->io_armed)
		event_del(&c->io);
	event_assign(&c->io, c->base, fd, what | EV_PERSIST, pgconn_io_cb, c);
	if (event_add(&c->io, NULL) != 0) {
		c->io_armed = false;
		return false;
	}
	c->io_armed = true;
	c->io_fd = fd;
	c->io_what = what;
	return true;
}

void pgconn_init(struct pgconn *c, struct event_base *base, const char *name,
		 const struct pgconn_ops *ops, void *arg)
{
	/* Idempotent: the programs call it before dropping privileges; this covers the unit tests. */
	if (sodium_init() < 0)
		log_error("%s: libsodium failed to initialise", name);
	c->state = PGCONN_BACKOFF;
	c->pq = NULL;
	c->base = base;
	c->ops = ops;
	c->arg = arg;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->io_armed = false;
	c->backoff_ms = PGCONN_BACKOFF_MIN_MS;
	evtimer_assign(&c->timer, base, pgconn_timer_cb, c);
}

void pgconn_connect(struct pgconn *c, const char *const *keys, const char *const *values,
		    unsigned timeout_ms)
{
	event_del(&c->timer);
	c->pq = PQconnectStartParams(keys, values, 1);
	if (!c->pq) {
		c->ops->fail(c->arg, "connect", "out of memory");
		return;
	}
	PQsetNoticeProcessor(c->pq, pgconn_notice, c);
	pgconn_set_state(c, PGCONN_CONNECTING);
	if (PQstatus(c->pq) == CONNECTION_BAD) {
		c->ops->fail(c->arg, "connect", PQerrorMessage(c->pq));
		return;
	}
	/* libpq's own connect_timeout is per host; this bounds the whole attempt, setup included. */
	struct timeval tv = ms_tv(timeout_ms);
	event_add(&c->timer, &tv);
	/* PQconnectStart leaves us as if PQconnectPoll had said "writing". */
	if (!pgconn_watch(c, EV_WRITE))
		c->ops->fail(c->arg, "connect", PQerrorMessage(c->pq));
}

void pgconn_setup(struct pgconn *c)
{
	pgconn_set_state(c, PGCONN_SETUP);
}

void pgconn_ready(struct pgconn *c)
{
	event_del(&c->timer);
	c->backoff_ms = PGCONN_BACKOFF_MIN_MS;
	pgconn_set_state(c, PGCONN_READY);
}

bool pgconn_flush(struct pgconn *c, const char *what)
{
	int r = PQflush(c->pq);
	if (r < 0) {
		c->ops->fail(c->arg, what, PQerrorMessage(c->pq));
		return false;
	}
	if (!pgconn_watch(c, r ? EV_READ | EV_WRITE : EV_READ)) {
		c->ops->fail(c->arg, "watch", "cannot watch the socket");
		return false;
	}
	return true;
}

void pgconn_close(struct pgconn *c)
{
	if (c->io_armed)
		event_del(&c->io);
	c->io_armed = false;
	event_del(&c->timer);
	if (c->pq)
		PQfinish(c->pq);
	c->pq = NULL;
}

unsigned pgconn_backoff(struct pgconn *c)
{
	pgconn_close(c);
	pgconn_set_state(c, PGCONN_BACKOFF);
	/* Jitter only has to keep the reconnects of several connections and daemons apart. */
	unsigned delay = c->backoff_ms / 2 + randombytes_uniform(c->backoff_ms / 2 + 1);
	c->backoff_ms = c->backoff_ms * 2 > PGCONN_BACKOFF_MAX_MS ? PGCONN_BACKOFF_MAX_MS :
								  c->backoff_ms * 2;
	struct timeval tv = ms_tv(delay);
	event_add(&c->timer, &tv);
	return delay;
}

void pgconn_restart(struct pgconn *c)
{
	pgconn_close(c);
	pgconn_set_state(c, PGCONN_BACKOFF);
	c->backoff_ms = PGCONN_BACKOFF_MIN_MS;
	c->ops->start(c->arg);
}

static void pgconn_connect_poll(struct pgconn *c)
{
	switch (PQconnectPoll(c->pq)) {
	case PGRES_POLLING_READING:
		if (!pgconn_watch(c, EV_READ))
			c->ops->fail(c->arg, "connect", PQerrorMessage(c->pq));
		break;
	case PGRES_POLLING_WRITING:
		if (!pgconn_watch(c, EV_WRITE))
			c->ops->fail(c->arg, "connect", PQerrorMessage(c->pq));
		break;
	case PGRES_POLLING_OK:
		c->ops->connected(c->arg);
		break;
	case PGRES_POLLING_FAILED:
	default:
		c->ops->fail(c->arg, "connect", PQerrorMessage(c->pq));
		break;
	}
}

static void pgconn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	(void)fd;
	if (c->state == PGCONN_CONNECTING) {
		pgconn_connect_poll(c);
		return;
	}
	if ((what & EV_WRITE) && !pgconn_flush(c, "send"))
		return;
	if (what & EV_READ)
		c->ops->readable(c->arg);
}

static void pgconn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	(void)fd;
	(void)what;
	switch (c->state) {
	case PGCONN_BACKOFF:
		c->ops->start(c->arg);
		break;
	case PGCONN_CONNECTING:
	case PGCONN_SETUP:
		c->ops->fail(c->arg, "connect", "timed out");
		break;
	case PGCONN_READY:
	case PGCONN_STATE__COUNT:
		break;
	}
}
