/*
 * server: the listening sockets and who gets in.  Up to max_connections are
 * served; a few more are accepted only to be told "temporary failure" by
 * their protocol (better than leaving Postfix waiting 100 s in the backlog);
 * beyond that, and when the process runs out of file descriptors, accepting
 * pauses instead of spinning on the ready listener.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "vmail/log.h"

#define SERVER_FD_PAUSE_MS 1000

enum server_state {
	SERVER_ACCEPTING = 0,
	SERVER_PAUSED_FULL, /* max_connections + slack reached */
	SERVER_PAUSED_FD,   /* accept failed for lack of descriptors or memory */
	SERVER_STOPPING,
	SERVER_STATE__COUNT,
};

struct listener {
	struct server *srv;
	struct evconnlistener *lev;
	const struct conn_proto *proto;
	void *proto_arg;
	char name[300];
};

struct server {
	struct event_base *base;
	enum server_state state;
	struct conn_limits limits;
	unsigned max_connections;
	struct conn_set conns;
	struct listener **listeners;
	size_t nlisteners;
	struct event *resume_ev;
	void (*done)(void *arg);
	void *done_arg;
};

static const char *const state_names[SERVER_STATE__COUNT] = {
	[SERVER_ACCEPTING] = "accepting",
	[SERVER_PAUSED_FULL] = "paused (max_connections)",
	[SERVER_PAUSED_FD] = "paused (out of file descriptors)",
	[SERVER_STOPPING] = "stopping",
};

static void server_conn_closed(void *arg);
static void server_resume_cb(evutil_socket_t fd, short what, void *arg);

/* server_set_state - the one transition function: listeners follow the state */
static void server_set_state(struct server *srv, enum server_state st)
{
	if (srv->state == st)
		return;
	enum log_level lvl = st == SERVER_ACCEPTING || st == SERVER_STOPPING ? LOG_LEVEL_INFO
									   : LOG_LEVEL_WARNING;
	log_msg(lvl, "listeners: %s -> %s (%u connections)", state_names[srv->state],
		state_names[st], srv->conns.count);
	srv->state = st;
	for (size_t i = 0; i < srv->nlisteners; i++) {
		if (st == SERVER_ACCEPTING)
			evconnlistener_enable(srv->listeners[i]->lev);
		else
			evconnlistener_disable(srv->listeners[i]->lev);
	}
}

static void server_update_admission(struct server *srv)
{
	bool full = srv->conns.count >= srv->max_connections + SERVER_OVER_LIMIT_SLACK;
	if (full && srv->state == SERVER_ACCEPTING)
		server_set_state(srv, SERVER_PAUSED_FULL);
	else if (!full && srv->state == SERVER_PAUSED_FULL)
		server_set_state(srv, SERVER_ACCEPTING);
}

struct server *server_new(struct event_base *base, const struct conn_limits *limits,
			  unsigned max_connections)
{
	struct server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->base = base;
	srv->limits = *limits;
	srv->max_connections = max_connections;
	srv->conns.on_close = server_conn_closed;
	srv->conns.arg = srv;
	srv->resume_ev = evtimer_new(base, server_resume_cb, srv);
	if (!srv->resume_ev) {
		free(srv);
		return NULL;
	}
	return srv;
}

static void peer_name(const struct listener *l, const struct sockaddr *sa, int salen, char *out,
		      size_t outlen)
{
	char addr[INET6_ADDRSTRLEN];
	if (sa && salen >= (int)sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		snprintf(out, outlen, "%s:%u", addr, ntohs(in->sin_port));
	} else if (sa && salen >= (int)sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		snprintf(out, outlen, "[%s]:%u", addr, ntohs(in6->sin6_port));
	} else {
		snprintf(out, outlen, "%s", l->name);
	}
}

static void server_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
			     int salen, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	char peer[320];
	(void)lev;
	peer_name(l, sa, salen, peer, sizeof(peer));
	bool over = srv->conns.count >= srv->max_connections;
	if (over)
		log_warning("%s: %u connections, max_connections is %u: refusing %s",
			    l->name, srv->conns.count, srv->max_connections, peer);
	if (!conn_new(&srv->conns, srv->base, fd, peer, l->proto, l->proto_arg, &srv->limits,
		      over))
		log_error("%s: cannot set up connection from %s (out of memory)", l->name, peer);
	server_update_admission(srv);
}

static void server_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	int err = EVUTIL_SOCKET_ERROR();
	(void)lev;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* The pending connection stays in the backlog; retrying at once would spin. */
		log_warning("%s: accept: %s; pausing for %d ms", l->name, strerror(err),
			    SERVER_FD_PAUSE_MS);
		server_set_state(srv, SERVER_PAUSED_FD);
		struct timeval tv = { SERVER_FD_PAUSE_MS / 1000, (SERVER_FD_PAUSE_MS % 1000) * 1000 };
		evtimer_add(srv->resume_ev, &tv);
		return;
	}
	log_error("%s: accept: %s", l->name, strerror(err));
}

static void server_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	(void)fd;
	(void)what;
	if (srv->state != SERVER_PAUSED_FD)
		return;
	server_set_state(srv, SERVER_ACCEPTING);
	server_update_admission(srv);
}

bool server_add_listener(struct server *srv, int fd, const char *name,
			 const struct conn_proto *proto, void *proto_arg)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct listener **grown = realloc(srv->listeners,
					  (srv->nlisteners + 1) * sizeof(*srv->listeners));
	if (!l || !grown) {
		free(l);
		if (grown)
			srv->listeners = grown;
		evutil_closesocket(fd);
		return false;
	}
	srv->listeners = grown;
	l->srv = srv;
	l->proto = proto;
	l->proto_arg = proto_arg;
	snprintf(l->name, sizeof(l->name), "%s", name);
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
	if (srv->state != SERVER_ACCEPTING)
		flags |= LEV_OPT_DISABLED;
	/* backlog -1: the socket is already listening (endpoint_listen). */
	l->lev = evconnlistener_new(srv->base, server_accept_cb, l, flags, -1, fd);
	if (!l->lev) {
		evutil_closesocket(fd);
		free(l);
		return false;
	}
	evconnlistener_set_error_cb(l->lev, server_accept_error_cb);
	srv->listeners[srv->nlisteners++] = l;
	log_info("%s: listening (%s)", l->name, proto->name);
	return true;
}

void server_set_limits(struct server *srv, const struct conn_limits *limits,
		       unsigned max_connections)
{
	srv->limits = *limits;
	srv->max_connections = max_connections;
	server_update_admission(srv);
}

static void server_close_listeners(struct server *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++) {
		evconnlistener_free(srv->listeners[i]->lev);
		free(srv->listeners[i]);
	}
	free(srv->listeners);
	srv->listeners = NULL;
	srv->nlisteners = 0;
}

static void server_maybe_done(struct server *srv)
{
	if (srv->state != SERVER_STOPPING || srv->conns.count || !srv->done)
		return;
	void (*done)(void *) = srv->done;
	srv->done = NULL;
	done(srv->done_arg);
}

static void server_conn_closed(void *arg)
{
	struct server *srv = arg;
	if (srv->state == SERVER_STOPPING)
		server_maybe_done(srv);
	else
		server_update_admission(srv);
}

void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg)
{
	server_set_state(srv, SERVER_STOPPING);
	evtimer_del(srv->resume_ev);
	server_close_listeners(srv);
	srv->done = done;
	srv->done_arg = arg;
	conn_set_drain(&srv->conns);
	server_maybe_done(srv);
}

unsigned server_connections(const struct server *srv)
{
	return srv->conns.count;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	srv->done = NULL;
	srv->state = SERVER_STOPPING;
	conn_set_close(&srv->conns, "server stopped");
	server_close_listeners(srv);
	event_free(srv->resume_ev);
	free(srv);
}
