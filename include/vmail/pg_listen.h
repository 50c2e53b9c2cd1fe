/* pg_listen: one PostgreSQL connection that LISTENs on a channel and hands each notification over. */
#ifndef VMAIL_PG_LISTEN_H
#define VMAIL_PG_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct pg_listen;

/* The listener's states, for logs and metrics. */
enum pg_listen_state {
	PG_LISTEN_BACKOFF = 0, /* down, waiting for the reconnect timer */
	PG_LISTEN_CONNECTING,  /* PQconnectPoll in progress */
	PG_LISTEN_SUBSCRIBING, /* LISTEN sent, result not yet read */
	PG_LISTEN_LISTENING,   /* notifications flow */
	PG_LISTEN_STATE__COUNT,
};

struct pg_listen_stats {
	enum pg_listen_state state;
	uint64_t notifications; /* payloads handed over */
	uint64_t connects;      /* times LISTEN succeeded */
	uint64_t failures;      /* connections lost or failed */
};

struct pg_listen_handler {
	/* one notification; payload is NUL-terminated */
	void (*notify)(void *arg, const char *payload, size_t len);
	/*
	 * more notifications arrived at once than are worth applying one by one:
	 * they were discarded, act as if everything changed
	 */
	void (*overflow)(void *arg);
	/*
	 * optional: called with true before the first notification of one read
	 * of the connection and with false after its last, so the handler can
	 * apply a burst at the cost of one (anyone who can connect can NOTIFY)
	 */
	void (*burst)(void *arg, bool begin);
	/* LISTEN took effect (true), or the connection was lost (false) */
	void (*state)(void *arg, bool listening);
	void *arg;
};

/*
 * pg_listen_new - connect in the background and LISTEN on channel (an SQL
 * identifier, not quoted).  LISTEN needs a server that is not in recovery,
 * so unless conninfo asks for target_session_attrs=read-write or primary
 * itself, read-write is imposed.  Reconnects with backoff.  NULL when out of
 * memory.
 */
struct pg_listen *pg_listen_new(struct event_base *base, const char *conninfo, const char *channel,
				unsigned connect_timeout_ms, const struct pg_listen_handler *h);

/* pg_listen_reload - new settings; a changed conninfo reconnects */
bool pg_listen_reload(struct pg_listen *l, const char *conninfo, unsigned connect_timeout_ms);

void pg_listen_free(struct pg_listen *l);

void pg_listen_stats(const struct pg_listen *l, struct pg_listen_stats *out);
const char *pg_listen_state_name(enum pg_listen_state st);

#endif
