/*
 * conn: the client connection.  Owns its socket, its input and output
 * buffers, the FIFO of pending requests and the idle and write timers;
 * writes replies strictly in request order; stops reading while too much is
 * pending (backpressure); and has exactly one teardown path, conn_close().
 * Protocols plug in through struct conn_proto.
 *
 * The socket path is PgBouncer's sbuf shape, not a bufferevent: the read
 * event stays registered while the conn takes requests, each readiness is
 * one recv(), the replies a read produced leave in one send(), and write
 * readiness is asked for only after a short write.  A cached lookup so costs
 * a recv and a send, no epoll_ctl.  Reads land in one buffer shared by all
 * conns (the loop frames one read at a time) and replies gather in another;
 * a conn owns buffers only for what is left over: a partial request, or
 * output the kernel did not take.  An idle conn holds no buffer at all.
 */
#include "conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

/* An over-limit connection only gets to send one request, promptly. */
#define CONN_OVER_LIMIT_IDLE_MS 2000
/* The shared read buffer: one read takes at most this much. */
#define CONN_READ_ROOM  65536
/*
 * A conn's own buffers start this small and a read after a partial request
 * asks for CONN_OWNED_ROOM free: thousands of clients dribbling requests
 * (slow loris) must not hold 64 KiB each.
 */
#define CONN_OWNED_CAP  4096
#define CONN_OWNED_ROOM 2048
/*
 * Unconsumed input a conn holds at most.  Every protocol frames or refuses a
 * request within 64 KiB (DICT_MAX_LINE), so more than this unconsumed while
 * the protocol still takes requests is a protocol that stopped framing.
 */
#define CONN_INPUT_MAX  (256 * 1024)

/* A byte buffer: the live bytes are data[off, len). */
struct conn_buf {
	char *data;
	size_t off, len, cap;
};

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
	int fd;
	struct event *read_ev;  /* persistent; registered while the socket is read */
	struct event *write_ev; /* registered only while output waits for the kernel */
	struct event *kick_ev;  /* frames input already buffered, from a loop turn of its own */
	struct event *idle_ev;
	struct conn_buf in, out; /* out: owned; in: owned, or the shared buffer while in_shared */
	const struct conn_proto *proto;
	void *proto_arg;
	const struct conn_limits *limits;
	struct conn_req *head, **tailp; /* reply FIFO */
	size_t npending;
	uint64_t idle_since_ms; /* when npending last became 0 (CLOCK_MONOTONIC_COARSE) */
	unsigned idle_limit_ms; /* the idle_timeout the idle timer was last armed for */
	void *data;     /* the protocol's, see conn_set_data */
	unsigned depth; /* our callbacks on the stack; free is deferred until 0 */
	bool in_read;   /* on_read runs: replies are gathered and sent when it returns */
	bool in_shared; /* in is conn_read_buf, for the read being framed */
	bool reading;   /* read_ev is registered */
	bool over_limit;
	bool input_partial; /* the protocol left the input as an unfinished request */
	bool drained;       /* conn_drain ran: the daemon is stopping */
	bool peer_gone;     /* closed by the client's end or a socket error */
	size_t drain_left;  /* bytes of the input sent before the drain, not consumed yet */
	long peer_uid;  /* conn_set_peer_uid; -1: not counted per uid */
	char peer[160];
};

static uint64_t conn_next_id = 1;

/*
 * The loop frames one conn's read at a time, so reads share one buffer and the
 * replies given while a read is framed gather in another (conn_gather_buf, for
 * conn_gatherer) until the read's one send.
 */
static char conn_read_buf[CONN_READ_ROOM];
static struct conn_buf conn_gather_buf;
static struct conn *conn_gatherer;

static const char *const state_names[CONN_STATE__COUNT] = {
	[CONN_READING] = "reading",   [CONN_PAUSED] = "paused",
	[CONN_CLOSING] = "closing",   [CONN_DRAINING] = "draining",
	[CONN_CLOSED] = "closed",
};

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);
static void conn_kick_cb(evutil_socket_t fd, short what, void *arg);
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

/* ---- buffers ------------------------------------------------------------------------ */

static size_t buf_used(const struct conn_buf *b)
{
	return b->len - b->off;
}

/* buf_room - at least want bytes free after the live ones; false when memory runs out */
static bool buf_room(struct conn_buf *b, size_t want)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len >= want)
		return true;
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= want)
			return true;
	}
	size_t cap = b->cap ? b->cap : CONN_OWNED_CAP;
	while (cap - b->len < want)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

static bool buf_add(struct conn_buf *b, const void *data, size_t len)
{
	if (!len)
		return true;
	if (!buf_room(b, len))
		return false;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return true;
}

static void buf_free(struct conn_buf *b)
{
	free(b->data);
	*b = (struct conn_buf){ 0 };
}

/*
 * conn_in_settle - the read being framed is done with the shared buffer: what
 * the protocol left (a partial request, or requests it may not take yet) moves
 * to a buffer of the conn's own; an owned buffer emptied is freed.  On a closed
 * conn everything goes.
 */
static bool conn_in_settle(struct conn *c)
{
	size_t left = c->state == CONN_CLOSED ? 0 : buf_used(&c->in);
	if (c->in_shared) {
		const char *rest = c->in.data + c->in.off;
		c->in = (struct conn_buf){ 0 };
		c->in_shared = false;
		return buf_add(&c->in, rest, left);
	}
	if (left == 0)
		buf_free(&c->in);
	return true;
}

/* ---- timers ------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ms_to_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

static unsigned conn_idle_ms(const struct conn *c)
{
	return c->over_limit ? CONN_OVER_LIMIT_IDLE_MS : c->limits->idle_timeout_ms;
}

static void conn_arm_idle(struct conn *c, unsigned ms)
{
	struct timeval tv;
	c->idle_limit_ms = conn_idle_ms(c);
	ms_to_tv(ms, &tv);
	evtimer_add(c->idle_ev, &tv);
}

/* ---- life cycle --------------------------------------------------------------------- */

struct conn *conn_new(struct conn_set *set, struct event_base *base, int fd, const char *peer,
		      const struct conn_proto *proto, void *proto_arg,
		      const struct conn_limits *limits, bool over_limit)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return NULL;
	}
	c->fd = fd;
	c->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->write_ev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->kick_ev = event_new(base, -1, 0, conn_kick_cb, c);
	c->idle_ev = evtimer_new(base, conn_idle_cb, c);
	if (!c->read_ev || !c->write_ev || !c->kick_ev || !c->idle_ev ||
	    event_add(c->read_ev, NULL) < 0) {
		if (c->read_ev)
			event_free(c->read_ev);
		if (c->write_ev)
			event_free(c->write_ev);
		if (c->kick_ev)
			event_free(c->kick_ev);
		if (c->idle_ev)
			event_free(c->idle_ev);
		evutil_closesocket(fd);
		free(c);
		return NULL;
	}
	c->reading = true;
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

	c->idle_since_ms = now_ms();
	conn_arm_idle(c, conn_idle_ms(c));
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

	event_free(c->read_ev);
	event_free(c->write_ev);
	event_free(c->kick_ev);
	event_free(c->idle_ev);
	c->read_ev = c->write_ev = c->kick_ev = c->idle_ev = NULL;
	c->reading = false;
	conn_in_settle(c);
	buf_free(&c->out);
	if (conn_gatherer == c) {
		conn_gather_buf.off = conn_gather_buf.len = 0;
		conn_gatherer = NULL;
	}
	evutil_closesocket(c->fd);
	c->fd = -1;

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

/* conn_close_errno - the socket failed (or the client went): the peer's end, not a drain's cut */
static void conn_close_errno(struct conn *c, const char *op, int err)
{
	char why[128];
	c->peer_gone = true;
	if (err == 0)
		snprintf(why, sizeof(why), "client closed");
	else
		snprintf(why, sizeof(why), "%s error: %s", op, strerror(err));
	conn_close(c, why);
}

/* ---- output ------------------------------------------------------------------------- */

/* conn_owes_nothing - every reply written (none gathered for the read's send either) */
static bool conn_owes_nothing(const struct conn *c)
{
	return c->npending == 0 && buf_used(&c->out) == 0 &&
	       (conn_gatherer != c || buf_used(&conn_gather_buf) == 0);
}

/* conn_write - one send() of data; *done: what the kernel took.  False when the conn closed. */
static bool conn_write(struct conn *c, const void *data, size_t len, size_t *done)
{
	ssize_t w;
	do
		w = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		conn_close_errno(c, "write", errno);
		return false;
	}
	*done = w > 0 ? (size_t)w : 0;
	return true;
}

/*
 * conn_watch_write - a short write means the socket buffer is full: write
 * readiness is asked for then, and dropped again once the output is gone,
 * with idle_timeout as the bound on a client that stops reading
 */
static void conn_watch_write(struct conn *c, bool on)
{
	bool armed = event_pending(c->write_ev, EV_WRITE, NULL);
	if (on && !armed) {
		struct timeval tv;
		ms_to_tv(c->limits->idle_timeout_ms, &tv);
		event_add(c->write_ev, &tv);
	} else if (!on && armed) {
		event_del(c->write_ev);
	}
}

/* conn_send - one send() of the queued output.  False when the conn closed. */
static bool conn_send(struct conn *c)
{
	size_t done;
	if (buf_used(&c->out) == 0)
		return true;
	if (!conn_write(c, c->out.data + c->out.off, buf_used(&c->out), &done))
		return false;
	c->out.off += done;
	conn_watch_write(c, buf_used(&c->out) > 0);
	if (buf_used(&c->out) == 0)
		buf_free(&c->out);
	return true;
}

/* conn_send_rest - out now, straight from data; what the kernel does not take is queued */
static bool conn_send_rest(struct conn *c, const void *data, size_t len)
{
	size_t done;
	if (!conn_write(c, data, len, &done))
		return false;
	if (done == len)
		return true;
	if (!buf_add(&c->out, (const char *)data + done, len - done)) {
		conn_close(c, "out of memory");
		return false;
	}
	conn_watch_write(c, true);
	return true;
}

/*
 * conn_output - data goes out after what is queued: now when nothing is, or
 * gathered for the one send of the read being framed
 */
static bool conn_output(struct conn *c, const void *data, size_t len)
{
	if (!len)
		return true;
	if (buf_used(&c->out) == 0) {
		if (!c->in_read)
			return conn_send_rest(c, data, len);
		if (!conn_gatherer || conn_gatherer == c) {
			conn_gatherer = c;
			if (buf_add(&conn_gather_buf, data, len))
				return true;
			conn_close(c, "out of memory");
			return false;
		}
	}
	if (!buf_add(&c->out, data, len)) {
		conn_close(c, "out of memory");
		return false;
	}
	return true;
}

/* ---- the protocol's view -------------------------------------------------------------- */

const char *conn_input(const struct conn *c, size_t *len)
{
	*len = c->state == CONN_CLOSED ? 0 : buf_used(&c->in);
	return c->in.data + c->in.off;
}

void conn_consume(struct conn *c, size_t n)
{
	if (c->state == CONN_CLOSED)
		return;
	size_t have = buf_used(&c->in);
	if (n > have)
		n = have;
	c->in.off += n;
	c->drain_left -= n < c->drain_left ? n : c->drain_left;
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
	/* A protocol with busy() reads an unfinished line to its end (its framing bounds it). */
	return buf_used(&c->in) == 0 || (c->input_partial && !c->proto->busy);
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
	if (ioctl(c->fd, FIONREAD, &unread) < 0 || unread <= 0)
		return;
	if (!buf_room(&c->in, (size_t)unread))
		return;
	ssize_t n = recv(c->fd, c->in.data + c->in.len, (size_t)unread, MSG_DONTWAIT);
	if (n > 0) {
		c->in.len += (size_t)n;
		c->input_partial = false;
	}
}

/* conn_maybe_finish - a closing conn goes once all it owes is written, a draining one once idle */
static void conn_maybe_finish(struct conn *c)
{
	if (c->state == CONN_CLOSING && conn_owes_nothing(c))
		conn_close(c, "final reply sent");
	else if (c->state == CONN_DRAINING && conn_is_idle(c))
		conn_close(c, "drained");
}

/* conn_read_events - the socket read or not; the registration changes only on a change */
static void conn_read_events(struct conn *c, bool on)
{
	if (on == c->reading)
		return;
	if (on ? event_add(c->read_ev, NULL) == 0 : event_del(c->read_ev) == 0)
		c->reading = on;
}

void conn_finish(struct conn *c)
{
	if (c->state != CONN_READING && c->state != CONN_PAUSED && c->state != CONN_DRAINING)
		return;
	conn_enter(c);
	conn_set_state(c, CONN_CLOSING);
	conn_read_events(c, false);
	if (!c->in_read)
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
	c->drain_left = buf_used(&c->in);
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
	return c->fd;
}

void conn_set_peer_uid(struct conn *c, long uid)
{
	c->peer_uid = uid;
}

long conn_peer_uid(const struct conn *c)
{
	return c->peer_uid;
}

/* ---- requests and replies ----------------------------------------------------------- */

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
		/* The common case: the oldest request; out without a copy of its own. */
		if (conn_output(c, data, len))
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
		conn_read_events(c, false);
	}
	if (c->state != CONN_CLOSED)
		conn_flush(c);
	conn_leave(c);
}

/*
 * conn_flush - write every answered request at the head of the FIFO.  Inside
 * on_read the replies only gather: the read callback sends them and
 * re-evaluates reading once for the whole read.
 */
static void conn_flush(struct conn *c)
{
	while (c->head && c->head->answered) {
		struct conn_req *r = c->head;
		if (r->reply_len && !conn_output(c, r->reply, r->reply_len))
			return;
		c->head = r->next;
		if (!c->head)
			c->tailp = &c->head;
		if (--c->npending == 0) {
			c->idle_since_ms = now_ms();
			/* A reload shortened idle_timeout: the timer armed for the old one is too late. */
			if (conn_idle_ms(c) < c->idle_limit_ms && c->state != CONN_DRAINING)
				conn_arm_idle(c, conn_idle_ms(c));
		}
		free(r->reply);
		free(r);
	}
	if (c->in_read)
		return;
	conn_update_reading(c);
	conn_maybe_finish(c);
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
 * state, and reads its socket as conn_drain_reads says.  Requests already in
 * the input (read while paused, or before a drain) are handed to the protocol
 * from a loop turn of their own whether or not the socket is read.
 */
static void conn_update_reading(struct conn *c)
{
	if (c->state != CONN_READING && c->state != CONN_PAUSED && c->state != CONN_DRAINING)
		return;
	bool want = c->npending < c->limits->max_pipelined &&
		    buf_used(&c->out) < c->limits->max_output_buffer;
	if (c->state != CONN_DRAINING)
		conn_set_state(c, want ? CONN_READING : CONN_PAUSED);
	conn_read_events(c, want && (c->state != CONN_DRAINING || conn_drain_reads(c)));
	if (want && !c->input_partial && buf_used(&c->in))
		event_active(c->kick_ev, EV_READ, 0);
}

/* conn_gather_flush - the replies gathered while c's read was framed, in one send */
static bool conn_gather_flush(struct conn *c)
{
	if (conn_gatherer != c)
		return true;
	conn_gatherer = NULL;
	size_t n = buf_used(&conn_gather_buf);
	conn_gather_buf.off = conn_gather_buf.len = 0;
	return conn_send_rest(c, conn_gather_buf.data, n);
}

/* conn_frame - hand the input to the protocol; what it answers at once leaves in one send */
static void conn_frame(struct conn *c)
{
	if (c->state == CONN_READING || c->state == CONN_DRAINING) {
		c->in_read = true;
		c->proto->on_read(c, c->proto_arg);
		c->in_read = false;
		/* Still taking requests: what is left cannot be framed yet. */
		c->input_partial = conn_want_requests(c) && buf_used(&c->in) > 0;
	}
	if (!conn_in_settle(c) && c->state != CONN_CLOSED)
		conn_close(c, "out of memory");
	if (c->state == CONN_CLOSED)
		return;
	if (c->input_partial && buf_used(&c->in) >= CONN_INPUT_MAX) {
		conn_close(c, "unframed input over limit");
		return;
	}
	if (!conn_gather_flush(c))
		return;
	/* Replies queued behind earlier output go when the kernel takes that (write_ev). */
	if (buf_used(&c->out) && !event_pending(c->write_ev, EV_WRITE, NULL) && !conn_send(c))
		return;
	conn_update_reading(c);
	conn_maybe_finish(c); /* draining: a rollback may have left nothing open */
}

/*
 * conn_read_cb - one recv per readiness: into the shared buffer when nothing
 * is left over from earlier reads, else after what is
 */
static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)what;
	conn_enter(c);
	if (buf_used(&c->in) == 0) {
		buf_free(&c->in);
		c->in = (struct conn_buf){ .data = conn_read_buf, .cap = sizeof(conn_read_buf) };
		c->in_shared = true;
	} else if (!buf_room(&c->in, CONN_OWNED_ROOM)) {
		conn_close(c, "out of memory");
		conn_leave(c);
		return;
	}
	ssize_t n = recv(fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
	int err = errno;
	if (n > 0) {
		c->in.len += (size_t)n;
		conn_frame(c);
	} else {
		conn_in_settle(c);
		if (n == 0)
			conn_close_errno(c, "read", 0);
		else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
			conn_close_errno(c, "read", err);
	}
	conn_leave(c);
}

static void conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	conn_enter(c);
	conn_frame(c);
	conn_leave(c);
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	conn_enter(c);
	if (what & EV_TIMEOUT) {
		/* This end giving up on the client: still a cut by the drain. */
		conn_close(c, "client does not read its replies");
	} else if (conn_send(c)) {
		conn_update_reading(c);
		conn_maybe_finish(c);
	}
	conn_leave(c);
}

/*
 * conn_idle_cb - the timer stays armed and is checked when it fires, rather
 * than re-armed at every request: a conn closes idle_timeout after its last
 * answer, and a conn with requests pending is never idle.
 */
static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	unsigned idle = conn_idle_ms(c);
	if (c->npending > 0) {
		conn_arm_idle(c, idle);
		return;
	}
	uint64_t since = now_ms() - c->idle_since_ms;
	if (since < idle) {
		conn_arm_idle(c, idle - (unsigned)since);
		return;
	}
	conn_enter(c);
	conn_close(c, "idle timeout");
	conn_leave(c);
}
