/* server: listening sockets in groups, admission (per-group, per-uid and overall caps, fd exhaustion), graceful stop. */
#ifndef VMAIL_SERVER_H
#define VMAIL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conn.h"

struct event_base;
struct server;

/* How many connections past max_connections are accepted only to be refused politely. */
#define SERVER_OVER_LIMIT_SLACK 32

/*
 * Per group, how many connections refused for the group's or a uid's cap are
 * held open to be answered a temporary failure ("full" on the quota dict)
 * instead of being closed unanswered; beyond it they are closed at accept.
 */
#define SERVER_MAX_REFUSING 32

/*
 * Of those, how many one peer uid (SO_PEERCRED, not exempt) may hold.  A
 * refusal is answered within one read, so a few cover the processes of one
 * uid retrying at once (Dovecot 2.3: two quota connections per mail
 * process); without a share, one uid refused in a loop keeps the whole pool
 * and every other uid's refusals are closed unanswered, their mail stored
 * uncounted by Dovecot 2.3.
 */
#define SERVER_REFUSING_PER_UID 4

/*
 * server_fd_overhead - how many client connections a server of ngroups groups
 * may hold besides max_connections (the over-limit slack and every refusing
 * pool): what a descriptor budget must keep free for them
 */
unsigned server_fd_overhead(size_t ngroups);

struct server *server_new(struct event_base *base, const struct conn_limits *limits,
			  unsigned max_connections);

/* Groups (services) per server. */
#define SERVER_MAX_GROUPS 8

/* A group's own caps; 0 = none (only max_connections applies). */
struct server_group_limits {
	unsigned max_connections; /* over the group's listeners */
	unsigned max_per_uid;     /* per peer uid (SO_PEERCRED), unix listeners */
};

/* Why a connection was refused (the metrics label). */
enum server_refusal {
	/* These two are answered TEMP from the refusing pool, or closed at accept past it. */
	SERVER_REFUSED_LISTENER = 0,    /* the group's max_connections */
	SERVER_REFUSED_UID,             /* the group's max_per_uid */
	SERVER_REFUSED_MAX_CONNECTIONS, /* over max_connections: answered TEMP, then closed */
	SERVER_REFUSED__COUNT,
};

/* server_refusal_name - "listener_limit", "uid_limit", "max_connections" */
const char *server_refusal_name(enum server_refusal r);

/* A peer uid the per-uid cap does not apply to (e.g. a trusted service account). */
typedef bool server_uid_exempt_fn(void *arg, uid_t uid, gid_t gid);

struct server_group;

/*
 * server_add_group - a group of listeners with its own caps.  name is the
 * configuration prefix ("dict_quota" for dict_quota_max_connections) and the
 * metrics label.  exempt (may be NULL) says which uids max_per_uid spares.
 * NULL when out of memory or SERVER_MAX_GROUPS exist.
 */
struct server_group *server_add_group(struct server *srv, const char *name,
				      const struct server_group_limits *lim,
				      server_uid_exempt_fn *exempt, void *exempt_arg);

/* server_group_set_limits - a reload; connections over a lowered cap stay until they close */
void server_group_set_limits(struct server_group *g, const struct server_group_limits *lim);

/* What a scrape sees of one group. */
struct server_group_stats {
	const char *name;
	unsigned connections; /* admitted; the refusing pool not included */
	uint64_t refused[SERVER_REFUSED__COUNT];
};

/* server_group_stats - fill up to max rows, one per group; returns how many */
size_t server_group_stats(const struct server *srv, struct server_group_stats *out, size_t max);

/*
 * server_add_listener - accept on fd (already listening, non-blocking) into
 * group and hand each connection to proto.  name is for logs.  The server
 * owns fd from now on, also on failure.
 */
bool server_add_listener(struct server *srv, struct server_group *group, int fd,
			 const char *name, const struct conn_proto *proto, void *proto_arg);

/* server_set_limits - a reload: the new limits apply to new and existing conns */
void server_set_limits(struct server *srv, const struct conn_limits *limits,
		       unsigned max_connections);

/*
 * server_shutdown - stop accepting (listeners closed), let every connection
 * answer what it has pending, and call done(arg) once none is left (possibly
 * right away).  server_free afterwards closes whatever is still open.
 */
void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg);

/* server_connections - every open client connection, the refusing pools included */
unsigned server_connections(const struct server *srv);
void server_free(struct server *srv);

#endif
