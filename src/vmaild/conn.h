/* conn: one client connection, protocol-neutral: buffers, ordered replies, backpressure, teardown. */
#ifndef VMAIL_CONN_H
#define VMAIL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmail/log.h"

struct conn;
struct conn_req;
struct event_base;

/*
 * A protocol service (socketmap, policy, dict) is one of these.
 *
 * on_read is called whenever the input may hold complete requests.  It looks
 * at the unconsumed input with conn_input() and frames as many requests as it
 * can while conn_want_requests() is true; for each it calls conn_req_new(),
 * conn_consume() for its bytes, and later conn_req_reply() (directly, or from
 * the callback of work it started, which it registers with conn_req_on_drop).
 * Partial input stays unconsumed.  On a framing error it calls conn_close()
 * and returns; the conn stays valid until on_read returns.
 */
struct conn_proto {
	const char *name;
	void (*on_read)(struct conn *c, void *arg);
	/*
	 * Optional: the conn is being torn down (conn_close); data is what the
	 * protocol stored with conn_set_data.  Called once, after the pending
	 * requests were cancelled and freed, so it must not touch them.
	 */
	void (*on_close)(struct conn *c, void *data, void *arg);
	/*
	 * Optional: true while the client holds state it has yet to finish here
	 * (a dict transaction between B and C) although no request is pending.
	 * A draining conn stays open and reading while this says so.  A protocol
	 * with busy is also read while answers are owed or a line is unfinished
	 * (see conn_drain): it frames what finishes the client's work and refuses
	 * new work sent after the drain began (conn_drain_backlog, conn_finish).
	 * The protocol calls conn_recheck when busy changes outside its callbacks.
	 */
	bool (*busy)(const struct conn *c, void *data, void *arg);
};

/* Limits shared by every connection of a server; a reload changes them in place. */
struct conn_limits {
	unsigned idle_timeout_ms;
	unsigned max_pipelined;
	unsigned max_output_buffer;
};

/*
 * The connections of one server, as an intrusive list owned by conn.c; the
 * server reads the counters and gets on_close after each conn left the set.
 */
struct conn_set {
	struct conn *first;
	unsigned count;      /* all connections in the set */
	unsigned over_limit; /* of which admitted beyond max_connections */
	/* after a conn left the set; peer_uid is what conn_set_peer_uid stored, or -1 */
	void (*on_close)(void *arg, long peer_uid);
	void *arg;
};

/* conn_set_drain - conn_drain every connection of the set (the idle ones close at once) */
void conn_set_drain(struct conn_set *set);
/* conn_set_close - conn_close every connection of the set */
void conn_set_close(struct conn_set *set, const char *reason);

enum conn_state {
	CONN_READING = 0, /* reading requests (idle or with some pending) */
	CONN_PAUSED,      /* max_pipelined pending or output over limit: not reading */
	CONN_CLOSING,     /* a final reply is queued or input was refused: write what is due, then close */
	CONN_DRAINING,    /* daemon stopping: finish what is pending or busy, close when idle */
	CONN_CLOSED,      /* torn down; freed when the current callback unwinds */
	CONN_STATE__COUNT,
};

/* conn_req_reply flags */
#define CONN_REPLY_CLOSE 0x1u /* close the connection once this reply is written */

/*
 * conn_new - take over an accepted socket.  over_limit marks a connection
 * admitted beyond max_connections: the protocol answers its first request
 * with a temporary failure and closes it (conn_is_over_limit).  Returns NULL
 * (socket closed) on failure.
 */
struct conn *conn_new(struct conn_set *set, struct event_base *base, int fd, const char *peer,
		      const struct conn_proto *proto, void *proto_arg,
		      const struct conn_limits *limits, bool over_limit);

/*
 * conn_close - the only teardown: runs the drop hooks of unanswered
 * requests (conn_req_on_drop), closes the socket, frees the buffers, the
 * queue and the conn, logs reason at debug level, and tells the set.  Safe to call from any callback of this conn; the memory is
 * released when that callback returns.
 */
void conn_close(struct conn *c, const char *reason);

/*
 * conn_finish - the client's input is refused (garbage after framed
 * requests, or new work while draining): read nothing more, answer what is
 * pending, then close.
 */
void conn_finish(struct conn *c);

/*
 * conn_drain - daemon stopping: what the client had sent by now is read and
 * answered, then the conn closes; more is read only while the protocol is busy
 * (conn_proto.busy: a transaction open) or, for a protocol with busy, while
 * answers are owed or a line is unfinished, so a client that keeps pipelining
 * cannot hold the stop.  Closes at once if idle.
 */
void conn_drain(struct conn *c);

/* conn_recheck - busy() changed outside a callback of c: read or close as a drain wants */
void conn_recheck(struct conn *c);

/*
 * conn_cut_by_drain - in on_close: the drain closed c (idle, refused, or at the
 * daemon's deadline), not the client's end or a socket error
 */
bool conn_cut_by_drain(const struct conn *c);

/*
 * conn_drain_backlog - bytes at the front of the input that the client sent before
 * the drain began and the protocol has not consumed; 0 when not draining
 */
size_t conn_drain_backlog(const struct conn *c);

/*
 * conn_input - the input not consumed yet: *len bytes at the returned pointer,
 * valid until the next conn_consume or conn_close, or the callback's return
 */
const char *conn_input(const struct conn *c, size_t *len);
/* conn_consume - the first n bytes of the input are framed and done with */
void conn_consume(struct conn *c, size_t n);

/* conn_want_requests - true while the protocol may frame another request */
bool conn_want_requests(const struct conn *c);
bool conn_is_over_limit(const struct conn *c);
enum conn_state conn_state(const struct conn *c);
const char *conn_state_name(enum conn_state st);
uint64_t conn_id(const struct conn *c);
size_t conn_pending(const struct conn *c);

/*
 * conn_req_new - append a request to the reply FIFO.  Replies leave in FIFO
 * order whatever the order conn_req_reply is called in.  NULL when out of
 * memory (the conn is then closed).
 */
struct conn_req *conn_req_new(struct conn *c);

/*
 * conn_req_on_drop - fn(arg) runs once if r is dropped unanswered because the
 * connection closed first: the service cancels the work it started for r (a
 * lookup whose callback must then never run) and frees what it tied to r.
 * One hook per request: a later call replaces it, fn NULL removes it.  Never
 * runs once conn_req_reply ran.  conn knows nothing of what the work is.
 */
void conn_req_on_drop(struct conn_req *r, void (*fn)(void *arg), void *arg);

/* conn_req_conn - the connection a request belongs to */
struct conn *conn_req_conn(const struct conn_req *r);

/*
 * conn_req_reply - the answer to r (copied).  r is invalid afterwards: it may
 * be written and freed at once, and the conn may be closed.
 */
void conn_req_reply(struct conn_req *r, const void *data, size_t len, unsigned flags);

/* conn_set_data, conn_data - the protocol's per-connection state (see on_close) */
void conn_set_data(struct conn *c, void *data);
void *conn_data(const struct conn *c);
/*
 * conn_data_zalloc - the protocol's state, allocated zeroed on first use;
 * NULL (and the conn is closed) when memory runs out.
 */
void *conn_data_zalloc(struct conn *c, size_t size);
/* conn_data_free - an on_close for protocols whose state is one conn_data_zalloc block */
void conn_data_free(struct conn *c, void *data, void *arg);
/* conn_fd - the socket, e.g. for peer credentials */
int conn_fd(const struct conn *c);
/* conn_set_peer_uid, conn_peer_uid - the uid the server counted the conn under; -1: none */
void conn_set_peer_uid(struct conn *c, long uid);
long conn_peer_uid(const struct conn *c);

/* conn_log - log with the connection's id and peer as prefix */
void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...) VMAIL_PRINTF(3, 4);

#endif
