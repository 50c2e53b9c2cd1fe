/* server: listening sockets, admission (max_connections, fd exhaustion), graceful stop. */
#ifndef VMAIL_SERVER_H
#define VMAIL_SERVER_H

#include <stdbool.h>

#include "conn.h"

struct event_base;
struct server;

/* How many connections past max_connections are accepted only to be refused politely. */
#define SERVER_OVER_LIMIT_SLACK 32

struct server *server_new(struct event_base *base, const struct conn_limits *limits,
			  unsigned max_connections);

/*
 * server_add_listener - accept on fd (already listening, non-blocking) and
 * hand each connection to proto.  name is for logs.  The server owns fd from
 * now on, also on failure.
 */
bool server_add_listener(struct server *srv, int fd, const char *name,
			 const struct conn_proto *proto, void *proto_arg);

/* server_set_limits - a reload: the new limits apply to new and existing conns */
void server_set_limits(struct server *srv, const struct conn_limits *limits,
		       unsigned max_connections);

/*
 * server_shutdown - stop accepting (listeners closed), let every connection
 * answer what it has pending, and call done(arg) once none is left (possibly
 * right away).  server_free afterwards closes whatever is still open.
 */
void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg);

unsigned server_connections(const struct server *srv);
void server_free(struct server *srv);

#endif
