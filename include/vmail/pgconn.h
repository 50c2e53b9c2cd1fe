/* pgconn: one non-blocking libpq connection on libevent: connect, watch, deadline, backoff. */
#ifndef VMAIL_PGCONN_H
#define VMAIL_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/event_struct.h>

/* Shortest and longest reconnect backoff; each failure doubles it, jittered down to half. */
#define PGCONN_BACKOFF_MIN_MS 100
#define PGCONN_BACKOFF_MAX_MS 5000

/*
 * The driver's states.  The owner (the pool's connection, the LISTEN client)
 * names them its own way: SETUP is "preparing" there, "subscribing" here.
 *
 *   BACKOFF --start--> CONNECTING --pgconn_setup--> SETUP --pgconn_ready--> READY
 *      ^                                                                      |
 *      +----------------- pgconn_backoff (any failure) -----------------------+
 */
enum pgconn_state {
	PGCONN_BACKOFF = 0, /* no connection; the reconnect timer runs (unless never started) */
	PGCONN_CONNECTING,  /* PQconnectPoll in progress; the connect deadline runs */
	PGCONN_SETUP,       /* connected, the owner's session setup in flight; deadline still runs */
	PGCONN_READY,       /* set up; deadline off, backoff back at its minimum */
	PGCONN_STATE__COUNT,
};

/*
 * What the owner does at each step.  Every hook may end in pgconn_backoff
 * (through the owner's failure path); the driver touches nothing after a
 * hook returns.
 */
struct pgconn_ops {
	/* start - time to connect: call pgconn_connect with the current settings */
	void (*start)(void *arg);
	/* connected - libpq is connected (still CONNECTING): send the setup, then pgconn_setup */
	void (*connected)(void *arg);
	/* readable - input may be waiting (SETUP or READY) */
	void (*readable)(void *arg);
	/*
	 * fail - the driver met an error: the owner logs and counts it (detail,
	 * possibly libpq's multi-line message, is valid until pgconn_backoff),
	 * then must call pgconn_backoff
	 */
	void (*fail)(void *arg, const char *what, const char *detail);
	/* changed - the state moved (logs, handlers) */
	void (*changed)(void *arg, enum pgconn_state from, enum pgconn_state to);
};

/*
 * One connection, embedded in its owner.  The owner may read state and pq
 * (NULL in BACKOFF) and use pq for queries; the rest is pgconn.c's.
 */
struct pgconn {
	enum pgconn_state state;
	PGconn *pq;
	struct event_base *base;
	const struct pgconn_ops *ops;
	void *arg;
	char name[24];        /* log prefix: "pg[3]", "pg_listen" */
	struct event io;      /* the one I/O event: connect polling, then reads and flushes */
	bool io_armed;
	int io_fd;
	short io_what;
	struct event timer;   /* connect deadline in CONNECTING/SETUP, reconnect in BACKOFF */
	unsigned backoff_ms;
};

/* pgconn_init - a connection in BACKOFF with nothing scheduled; name prefixes server notices */
void pgconn_init(struct pgconn *c, struct event_base *base, const char *name,
		 const struct pgconn_ops *ops, void *arg);

/*
 * pgconn_connect - start a non-blocking connect (PQconnectStartParams with
 * expand_dbname, so a "dbname" value may be a whole conninfo string or URI)
 * bounded by timeout_ms, which also covers the setup.  Failures go to
 * ops->fail.  Called from ops->start, or by the owner to begin.
 */
void pgconn_connect(struct pgconn *c, const char *const *keys, const char *const *values,
		    unsigned timeout_ms);

/* pgconn_setup - the owner sent its session setup: CONNECTING -> SETUP */
void pgconn_setup(struct pgconn *c);

/* pgconn_ready - the setup took effect: SETUP -> READY, deadline off, backoff reset */
void pgconn_ready(struct pgconn *c);

/*
 * pgconn_flush - send what libpq buffered; watch for writability while some
 * is left, and for input always (the server may be blocked writing to us).
 * False once failed (ops->fail ran with what).
 */
bool pgconn_flush(struct pgconn *c, const char *what);

/*
 * pgconn_backoff - the one failure path: close, BACKOFF, and reconnect after
 * the jittered backoff, which then doubles.  Returns the delay in ms.
 */
unsigned pgconn_backoff(struct pgconn *c);

/* pgconn_restart - close and connect again at once, backoff reset (new settings) */
void pgconn_restart(struct pgconn *c);

/* pgconn_close - drop the connection and both events; the state stays (teardown) */
void pgconn_close(struct pgconn *c);

/*
 * pgconn_one_line - a libpq message (trailing newline, tabs, multi-host
 * lines) as one log line: control characters between words become a space
 */
void pgconn_one_line(char *dst, size_t dstlen, const char *src);

#endif
