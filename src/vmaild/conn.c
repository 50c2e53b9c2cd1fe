/*
 * conn: the client connection.  Owns its bufferevent, the FIFO of pending
 * requests and the idle timer; writes replies strictly in request order;
 * stops reading while too much is pending (backpressure); and has exactly one
 * teardown path, conn_close().  Protocols plug in through struct conn_proto.
 */
#include "conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/* An over-limit connection only gets to send one request, promptly. */
#define CONN_OVER_LIMIT_IDLE_MS 2000

struct conn_req {
	struct conn_req *next;
	struct conn *conn;
	void (*drop)(void *arg);   /* the service's cancel and cleanup if never answered */
	void *drop_arg;
	char *reply;               /* the answer once it came; may be NULL for "" */
	size_t reply_len;
	unsigned flags;            /* CONN_REPLY_* */
	bool answered;
};

struct conn {
	struct conn *prev, *next; /* in set */
	struct conn_set *set;
	uint64_t id;
	enum conn_state state;
	struct bufferevent *bev;
	struct event *idle_ev;
	const struct conn_proto *proto;
	void *proto_arg;
	const struct conn_limits *limits;
	struct conn_req *head, **tailp; /* reply FIFO */
	size_t npending;
	void *data;     /* the protocol's, see conn_set_data */
	unsigned depth; /* our callbacks on the stack; free is deferred until 0 */
	bool over_limit;
	bool input_partial; /* the protocol left the input as an unfinished request */
	bool drained;       /* conn_drain ran: the daemon is stopping */
	bool peer_gone;     /* closed by the client's end or a socket error */
	size_t drain_left;  /* bytes of the input sent before the drain, not consumed yet */
	long peer_uid;  /* conn_set_peer_uid; -1: not counted per uid */
	char peer[160];
};

static uint64_t conn_next_id = 1;

static const char *const state_names[CONN_STATE__COUNT] = {
	[CONN_READING] = "reading",   [CONN_PAUSED] = "paused",
	[CONN_CLOSING] = "closing",   [CONN_DRAINING] = "draining",
	[CONN_CLOSED] = "closed",
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_idle_cb(evutil_socket_t fd, short what, void *arg);
static void conn_flush(struct conn *c);
static void conn_update_reading(struct conn *c);
static void conn_maybe_finish(struct conn *c);

const char *conn_state_name(enum conn_state st)
{
	return st < CONN_STATE__COUNT ? state_names[st] : "?";
}

void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...)
{
	if (level > log_get_level())
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_msg(level, "%s #%llu %s: %s", c->proto->name, (unsigned long long)c->id, c->peer,
		buf);
}

/* conn_set_state - every state change goes through here */
static void conn_set_state(struct conn *c, enum conn_state st)
{
	if (c->state == st)
		return;
	conn_log(c, LOG_LEVEL_DEBUG, "%s -> %s", conn_state_name(c->state), conn_state_name(st));
	c->state = st;
}

static void conn_enter(struct conn *c)
{
	c->depth++;
}

static void conn_leave(struct conn *c)
{
	if (--c->depth == 0 && c->state == CONN_CLOSED)
		free(c);
}

static void ms_to_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

static void conn_arm_idle(struct conn *c)
{
	struct timeval tv;
	ms_to_tv(c->over_limit ? CONN_OVER_LIMIT_IDLE_MS : c->limits->idle_timeout_ms, &tv);
	evtimer_add(c->idle_ev, &tv);
}

struct conn *conn_new(struct conn_set *set, struct event_base *base, int fd, const char *peer,
		      const struct conn_proto *proto, void *proto_arg,
		      const struct conn_limits *limits, bool over_limit)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return NULL;
	}
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		evutil_closesocket(fd);
		free(c);
		return NULL;
	}
	c->idle_ev = evtimer_new(base, conn_idle_cb, c);
	if (!c->idle_ev) {
		bufferevent_free(c->bev);
		free(c);
		return NULL;
	}
	c->id = conn_next_id++;
	c->state = CONN_READING;
	c->proto = proto;
	c->proto_arg = proto_arg;
	c->limits = limits;
	c->tailp = &c->head;
	c->over_limit = over_limit;
	c->peer_uid = -1;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);

	c->set = set;
	c->next = set->first;
	if (set->first)
		set->first->prev = c;
	set->first = c;
	set->count++;
	if (over_limit)
		set->over_limit++;

	/* A client that stops reading its replies is dropped after the idle time. */
	struct timeval wtv;
	ms_to_tv(limits->idle_timeout_ms, &wtv);
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_arm_idle(c);
	conn_log(c, LOG_LEVEL_DEBUG, "connected%s", over_limit ? " (over max_connections)" : "");
	return c;
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->state == CONN_CLOSED)
		return;
	conn_log(c, LOG_LEVEL_DEBUG, "closed: %s (%zu pending)", reason, c->npending);
	conn_set_state(c, CONN_CLOSED);

	struct conn_req *r = c->head;
	while (r) {
		struct conn_req *next = r->next;
		if (!r->answered && r->drop)
			r->drop(r->drop_arg);
		free(r->reply);
		free(r);
		r = next;
	}
	c->head = NULL;
	c->tailp = &c->head;
	c->npending = 0;
	if (c->proto->on_close)
		c->proto->on_close(c, c->data, c->proto_arg);
	c->data = NULL;

	bufferevent_free(c->bev);
	c->bev = NULL;
	event_free(c->idle_ev);
	c->idle_ev = NULL;

	struct conn_set *set = c->set;
	if (c->prev)
		c->prev->next = c->next;
	else
		set->first = c->next;
	if (c->next)
		c->next->prev = c->prev;
	set->count--;
	if (c->over_limit)
		set->over_limit--;
	c->set = NULL;

	long peer_uid = c->peer_uid;
	if (c->depth == 0)
		free(c);
	if (set->on_close)
		set->on_close(set->arg, peer_uid);
}

/* conn_owes_nothing - every reply written */
static bool conn_owes_nothing(const struct conn *c)
{
	return c->npending == 0 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

static bool conn_busy(const struct conn *c)
{
	return c->proto->busy && c->proto->busy(c, c->data, c->proto_arg);
}

/*
 * conn_is_idle - a draining conn may close: nothing owed, no client state open,
 * no whole request left in the input.  Its socket is no longer read then (see
 * conn_update_reading): what the client sends now goes to the next daemon.
 */
static bool conn_is_idle(const struct conn *c)
{
	if (!conn_owes_nothing(c) || conn_busy(c))
		return false;
	size_t in = evbuffer_get_length(bufferevent_get_input(c->bev));
	/* A protocol with busy() reads an unfinished line to its end (its framing bounds it). */
	return in == 0 || (c->input_partial && !c->proto->busy);
}

/* conn_input_cb - counts what the protocol consumed of the input sent before the drain */
static void conn_input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	(void)in;
	c->drain_left -= info->n_deleted < c->drain_left ? info->n_deleted : c->drain_left;
}

/*
 * conn_take_sent - what the client had sent when the drain began, into the
 * input, to be answered: a Dovecot quota update written just before the stop
 * (B, A, C) would otherwise meet a closed connection after its B, when the
 * client no longer retries.  Whatever comes later is not read (unless busy).
 */
static void conn_take_sent(struct conn *c)
{
	int unread = 0;
	int fd = bufferevent_getfd(c->bev);
	struct evbuffer *in = bufferevent_get_input(c->bev);
	if (ioctl(fd, FIONREAD, &unread) < 0 || unread <= 0)
		return;
	/* The bufferevent keeps its input's end frozen outside its own reads (as it does). */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_read(in, fd, unread) > 0)
		c->input_partial = false;
	evbuffer_freeze(in, 0);
}

/* conn_maybe_finish - a closing conn goes once all it owes is written, a draining one once idle */
static void conn_maybe_finish(struct conn *c)
{
	if (c->state == CONN_CLOSING && conn_owes_nothing(c))
		conn_close(c, "final reply sent");
	else if (c->state == CONN_DRAINING && conn_is_idle(c))
		conn_close(c, "drained");
}

void conn_finish(struct conn *c)
{
	if (c->state != CONN_READING && c->state != CONN_PAUSED && c->state != CONN_DRAINING)
		return;
	conn_enter(c);
	conn_set_state(c, CONN_CLOSING);
	bufferevent_disable(c->bev, EV_READ);
	conn_maybe_finish(c);
	conn_leave(c);
}

void conn_drain(struct conn *c)
{
	if (c->state != CONN_READING && c->state != CONN_PAUSED)
		return;
	conn_enter(c);
	conn_set_state(c, CONN_DRAINING);
	evtimer_del(c->idle_ev); /* the daemon's shutdown_timeout bounds the drain instead */
	c->drained = true;
	conn_take_sent(c);
	struct evbuffer *in = bufferevent_get_input(c->bev);
	c->drain_left = evbuffer_get_length(in);
	if (c->drain_left && !evbuffer_add_cb(in, conn_input_cb, c))
		c->drain_left = SIZE_MAX; /* out of memory: all of it counts as sent before */
	conn_update_reading(c);
	conn_maybe_finish(c);
	conn_leave(c);
}

void conn_set_drain(struct conn_set *set)
{
	/* conn_drain may close (and unlink) c: take next first. */
	for (struct conn *c = set->first, *next; c; c = next) {
		next = c->next;
		conn_drain(c);
	}
}

void conn_set_close(struct conn_set *set, const char *reason)
{
	while (set->first)
		conn_close(set->first, reason);
}

void conn_recheck(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	conn_enter(c);
	conn_update_reading(c);
	conn_maybe_finish(c);
	conn_leave(c);
}

bool conn_cut_by_drain(const struct conn *c)
{
	return c->drained && !c->peer_gone;
}

size_t conn_drain_backlog(const struct conn *c)
{
	return c->drain_left;
}

bool conn_want_requests(const struct conn *c)
{
	return (c->state == CONN_READING || c->state == CONN_DRAINING) &&
	       c->npending < c->limits->max_pipelined;
}

bool conn_is_over_limit(const struct conn *c)
{
	return c->over_limit;
}

enum conn_state conn_state(const struct conn *c)
{
	return c->state;
}

uint64_t conn_id(const struct conn *c)
{
	return c->id;
}

size_t conn_pending(const struct conn *c)
{
	return c->npending;
}

void conn_set_data(struct conn *c, void *data)
{
	c->data = data;
}

void *conn_data(const struct conn *c)
{
	return c->data;
}

void *conn_data_zalloc(struct conn *c, size_t size)
{
	if (!c->data) {
		c->data = calloc(1, size);
		if (!c->data)
			conn_close(c, "out of memory");
	}
	return c->data;
}

void conn_data_free(struct conn *c, void *data, void *arg)
{
	(void)c;
	(void)arg;
	free(data);
}

int conn_fd(const struct conn *c)
{
	return c->bev ? (int)bufferevent_getfd(c->bev) : -1;
}

void conn_set_peer_uid(struct conn *c, long uid)
{
	c->peer_uid = uid;
}

long conn_peer_uid(const struct conn *c)
{
	return c->peer_uid;
}

struct conn_req *conn_req_new(struct conn *c)
{
	struct conn_req *r = calloc(1, sizeof(*r));
	if (!r) {
		conn_close(c, "out of memory");
		return NULL;
	}
	r->conn = c;
	*c->tailp = r;
	c->tailp = &r->next;
	c->npending++;
	evtimer_del(c->idle_ev);
	return r;
}

void conn_req_on_drop(struct conn_req *r, void (*fn)(void *arg), void *arg)
{
	r->drop = fn;
	r->drop_arg = arg;
}

struct conn *conn_req_conn(const struct conn_req *r)
{
	return r->conn;
}

void conn_req_reply(struct conn_req *r, const void *data, size_t len, unsigned flags)
{
	struct conn *c = r->conn;
	conn_enter(c);
	r->drop = NULL;
	r->answered = true;
	r->flags = flags;
	if (r == c->head) {
		/* The common case: the oldest request; write without a copy. */
		if (bufferevent_write(c->bev, data, len) < 0)
			conn_close(c, "out of memory");
		else
			r->reply_len = 0;
	} else if (len) {
		r->reply = malloc(len);
		if (!r->reply) {
			conn_close(c, "out of memory");
			conn_leave(c);
			return;
		}
		memcpy(r->reply, data, len);
		r->reply_len = len;
	}
	if (flags & CONN_REPLY_CLOSE && c->state != CONN_CLOSED) {
		/* Whatever follows a final reply would never be answered: stop reading now. */
		conn_set_state(c, CONN_CLOSING);
		bufferevent_disable(c->bev, EV_READ);
	}
	if (c->state != CONN_CLOSED)
		conn_flush(c);
	conn_leave(c);
}

/* conn_flush - write every answered request at the head of the FIFO */
static void conn_flush(struct conn *c)
{
	while (c->head && c->head->answered) {
		struct conn_req *r = c->head;
		if (r->reply_len && bufferevent_write(c->bev, r->reply, r->reply_len) < 0) {
			conn_close(c, "out of memory");
			return;
		}
		c->head = r->next;
		if (!c->head)
			c->tailp = &c->head;
		c->npending--;
		free(r->reply);
		free(r);
	}
	if (c->npending == 0 && (c->state == CONN_READING || c->state == CONN_PAUSED))
		conn_arm_idle(c);
	conn_update_reading(c);
	conn_maybe_finish(c);
}

/*
 * conn_set_reading - socket reads on or off (sock); want: the protocol takes
 * requests.  Requests already in the input (read while paused, or before a
 * drain) are handed to it whether or not the socket is read.
 */
static void conn_set_reading(struct conn *c, bool sock, bool want)
{
	bool on = (bufferevent_get_enabled(c->bev) & EV_READ) != 0;
	if (sock && !on)
		bufferevent_enable(c->bev, EV_READ);
	else if (!sock && on)
		bufferevent_disable(c->bev, EV_READ);
	if (want && !c->input_partial && evbuffer_get_length(bufferevent_get_input(c->bev)))
		bufferevent_trigger(c->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * conn_drain_reads - a draining conn reads its socket while busy (a transaction
 * open); a protocol with busy() also while it owes answers or an unfinished line
 * waits for its end, since its client may follow an answer with a transaction
 * (Dovecot: C1 answered, then B2 A2 C2), and refuses other late requests itself.
 * A protocol without busy() reads no more: a client that pipelines without pause
 * would otherwise hold the stop until the daemon's shutdown_timeout.
 */
static bool conn_drain_reads(const struct conn *c)
{
	if (!c->proto->busy)
		return false;
	return conn_busy(c) || c->npending > 0 || c->input_partial;
}

/*
 * conn_update_reading - pause when max_pipelined requests are unanswered or
 * the client is not reading its replies; resume when both are under the
 * limits again.  A draining conn follows the same limits without changing
 * state, and reads its socket as conn_drain_reads says.
 */
static void conn_update_reading(struct conn *c)
{
	if (c->state != CONN_READING && c->state != CONN_PAUSED && c->state != CONN_DRAINING)
		return;
	size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
	bool want = c->npending < c->limits->max_pipelined && out < c->limits->max_output_buffer;
	if (c->state != CONN_DRAINING)
		conn_set_state(c, want ? CONN_READING : CONN_PAUSED);
	conn_set_reading(c, want && (c->state != CONN_DRAINING || conn_drain_reads(c)), want);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	if (c->state == CONN_READING || c->state == CONN_DRAINING) {
		struct evbuffer *in = bufferevent_get_input(bev);
		c->proto->on_read(c, in, c->proto_arg);
		/* Still taking requests: what is left cannot be framed yet. */
		c->input_partial = conn_want_requests(c) && evbuffer_get_length(in) > 0;
	}
	conn_update_reading(c);
	conn_maybe_finish(c); /* draining: a rollback may have left nothing open */
	conn_leave(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	conn_enter(c);
	conn_update_reading(c);
	conn_maybe_finish(c);
	conn_leave(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[128];
	(void)bev;
	conn_enter(c);
	/* A write timeout is this end giving up on the client: still a cut by the drain. */
	c->peer_gone = !(what & BEV_EVENT_TIMEOUT);
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "client closed");
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "client does not read its replies");
	else
		snprintf(why, sizeof(why), "%s error: %s", what & BEV_EVENT_READING ? "read" : "write",
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_close(c, why);
	conn_leave(c);
}

static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	conn_enter(c);
	conn_close(c, "idle timeout");
	conn_leave(c);
}
