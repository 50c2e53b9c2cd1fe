/*
 * server: the listening sockets and who gets in.  Listeners belong to groups
 * (one per service); a group past its own cap, or a peer uid past the
 * group's per-uid cap, is refused (counted, logged at most every
 * SERVER_REFUSE_LOG_S), so one service's clients cannot take the connections
 * another needs.  A refused connection is answered "temporary failure" by its
 * protocol from the group's refusing pool, which counts toward neither cap
 * and holds at most SERVER_MAX_REFUSING, SERVER_REFUSING_PER_UID of them per
 * peer uid: a quota lookup reset unanswered makes Dovecot store the mail
 * uncounted.  Beyond the pool or the uid's share it is closed at accept, so a
 * flood costs a bounded number of descriptors and leaves room for the others.
 * Over all groups, up to max_connections are
 * served; a few more are accepted only to be told "temporary failure" by
 * their protocol (better than leaving Postfix waiting 100 s in the backlog);
 * beyond that, and when the process runs out of file descriptors, accepting
 * pauses instead of spinning on the ready listener.
 */
#define _GNU_SOURCE /* struct ucred */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "vmail/log.h"

#define SERVER_FD_PAUSE_MS 1000
/* At most one "refusing" warning per group and this many seconds. */
#define SERVER_REFUSE_LOG_S 10
/* Buckets of a group's per-uid counts (chained; entries exist while a uid is connected). */
#define SERVER_UID_BUCKETS 256

enum server_state {
	SERVER_ACCEPTING = 0,
	SERVER_PAUSED_FULL, /* max_connections + slack reached */
	SERVER_PAUSED_FD,   /* accept failed for lack of descriptors or memory */
	SERVER_STOPPING,
	SERVER_STATE__COUNT,
};

/* How many connections one peer uid holds in a group. */
struct uid_count {
	struct uid_count *next;
	uid_t uid;
	unsigned count;
};

/* Per-uid counts (chained; an entry exists while its uid holds a connection). */
struct uid_table {
	struct uid_count *buckets[SERVER_UID_BUCKETS];
};

/* The listeners of one service, their connections and caps. */
struct server_group {
	struct server *srv;
	char name[32];
	struct server_group_limits lim;
	server_uid_exempt_fn *exempt;
	void *exempt_arg;
	struct conn_set conns;
	struct conn_set refusing; /* refused, to be answered over-limit; not in conns */
	struct uid_table uids;      /* admitted, per counted uid */
	struct uid_table pool_uids; /* in the refusing pool, per uid */
	uint64_t refused[SERVER_REFUSED__COUNT];
	time_t refuse_logged;   /* when the last "refusing" warning went out */
	uint64_t refuse_quiet;  /* refusals since, not logged one by one */
};

struct listener {
	struct server *srv;
	struct server_group *group;
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
	struct server_group *groups[SERVER_MAX_GROUPS];
	size_t ngroups;
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

static const char *const refusal_names[SERVER_REFUSED__COUNT] = {
	[SERVER_REFUSED_LISTENER] = "listener_limit",
	[SERVER_REFUSED_UID] = "uid_limit",
	[SERVER_REFUSED_MAX_CONNECTIONS] = "max_connections",
};

const char *server_refusal_name(enum server_refusal r)
{
	return r < SERVER_REFUSED__COUNT ? refusal_names[r] : "?";
}

static void server_conn_closed(void *arg, long peer_uid);
static void server_pool_closed(void *arg, long peer_uid);
static void server_resume_cb(evutil_socket_t fd, short what, void *arg);

/* server_set_state - the one transition function: listeners follow the state */
static void server_set_state(struct server *srv, enum server_state st)
{
	if (srv->state == st)
		return;
	enum log_level lvl = st == SERVER_ACCEPTING || st == SERVER_STOPPING ? LOG_LEVEL_INFO
									   : LOG_LEVEL_WARNING;
	log_msg(lvl, "listeners: %s -> %s (%u connections)", state_names[srv->state],
		state_names[st], server_connections(srv));
	srv->state = st;
	for (size_t i = 0; i < srv->nlisteners; i++) {
		if (st == SERVER_ACCEPTING)
			evconnlistener_enable(srv->listeners[i]->lev);
		else
			evconnlistener_disable(srv->listeners[i]->lev);
	}
}

/* server_served - connections admitted to their group (the refusing pools left out) */
static unsigned server_served(const struct server *srv)
{
	unsigned n = 0;
	for (size_t i = 0; i < srv->ngroups; i++)
		n += srv->groups[i]->conns.count;
	return n;
}

static void server_update_admission(struct server *srv)
{
	bool full = server_served(srv) >= srv->max_connections + SERVER_OVER_LIMIT_SLACK;
	if (full && srv->state == SERVER_ACCEPTING)
		server_set_state(srv, SERVER_PAUSED_FULL);
	else if (!full && srv->state == SERVER_PAUSED_FULL)
		server_set_state(srv, SERVER_ACCEPTING);
}

unsigned server_fd_overhead(size_t ngroups)
{
	return SERVER_OVER_LIMIT_SLACK + (unsigned)ngroups * SERVER_MAX_REFUSING;
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

static struct uid_count **uid_slot(struct uid_table *t, uid_t uid)
{
	struct uid_count **pp = &t->buckets[((uint32_t)uid * 2654435761u) >> 24];
	while (*pp && (*pp)->uid != uid)
		pp = &(*pp)->next;
	return pp;
}

/* uid_take - count one more connection of uid; false when out of memory */
static bool uid_take(struct uid_table *t, uid_t uid)
{
	struct uid_count **pp = uid_slot(t, uid);
	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (!*pp)
			return false;
		(*pp)->uid = uid;
	}
	(*pp)->count++;
	return true;
}

static void uid_release(struct uid_table *t, uid_t uid)
{
	struct uid_count **pp = uid_slot(t, uid);
	struct uid_count *u = *pp;
	if (!u)
		return;
	if (--u->count == 0) {
		*pp = u->next;
		free(u);
	}
}

static unsigned uid_connections(struct uid_table *t, uid_t uid)
{
	struct uid_count *u = *uid_slot(t, uid);
	return u ? u->count : 0;
}

static void uid_table_free(struct uid_table *t)
{
	for (size_t b = 0; b < SERVER_UID_BUCKETS; b++) {
		while (t->buckets[b]) {
			struct uid_count *u = t->buckets[b];
			t->buckets[b] = u->next;
			free(u);
		}
	}
}

/*
 * peer_uid - the peer's uid if the group may count it (a unix peer with
 * credentials, not exempt), else -1.
 */
static long peer_uid(const struct server_group *g, int fd)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || len != sizeof(uc))
		return -1;
	/* A TCP peer has no credentials: Linux answers uid -1, not an error. */
	if (uc.uid == (uid_t)-1)
		return -1;
	if (g->exempt && g->exempt(g->exempt_arg, uc.uid, uc.gid))
		return -1;
	return (long)uc.uid;
}

/*
 * pool_admit - hand fd to the refusing pool to be answered over-limit, or
 * close it at once when the pool or uid's share of it (uid -1: none) is full
 */
static void pool_admit(struct server_group *g, const struct listener *l, int fd,
		       const char *peer, long uid)
{
	if (g->refusing.count >= SERVER_MAX_REFUSING ||
	    (uid >= 0 && (uid_connections(&g->pool_uids, (uid_t)uid) >= SERVER_REFUSING_PER_UID ||
			  !uid_take(&g->pool_uids, (uid_t)uid)))) {
		evutil_closesocket(fd);
		return;
	}
	/* On failure conn_new closed fd: refused all the same. */
	struct conn *c = conn_new(&g->refusing, g->srv->base, fd, peer, l->proto, l->proto_arg,
				  &g->srv->limits, true);
	if (c)
		conn_set_peer_uid(c, uid);
	else if (uid >= 0)
		uid_release(&g->pool_uids, (uid_t)uid);
}

/*
 * group_refuse - refuse fd (answered from the pool or closed: pool_admit);
 * count it; warn, but not more than every few seconds
 */
static void group_refuse(struct server_group *g, const struct listener *l, int fd,
			 enum server_refusal why, const char *peer, long uid)
{
	pool_admit(g, l, fd, peer, uid);
	g->refused[why]++;
	time_t now = time(NULL);
	if (g->refuse_logged && now - g->refuse_logged < SERVER_REFUSE_LOG_S) {
		g->refuse_quiet++;
		return;
	}
	char who[64] = "";
	if (uid >= 0)
		snprintf(who, sizeof(who), " (uid %ld)", uid);
	log_warning("%s: refusing %s%s: %s_max_connections%s is %u (%llu more refused since the "
		    "last warning)", l->name, peer, who, g->name,
		    why == SERVER_REFUSED_UID ? "_per_uid" : "",
		    why == SERVER_REFUSED_UID ? g->lim.max_per_uid : g->lim.max_connections,
		    (unsigned long long)g->refuse_quiet);
	g->refuse_logged = now;
	g->refuse_quiet = 0;
}

static void server_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
			     int salen, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	struct server_group *g = l->group;
	char peer[320];
	(void)lev;
	peer_name(l, sa, salen, peer, sizeof(peer));
	/* Known before the caps: the refusing pool shares its slots out by uid. */
	long puid = peer_uid(g, fd);
	if (g->lim.max_connections && g->conns.count >= g->lim.max_connections) {
		group_refuse(g, l, fd, SERVER_REFUSED_LISTENER, peer, puid);
		return;
	}
	long uid = g->lim.max_per_uid ? puid : -1;
	if (uid >= 0 && uid_connections(&g->uids, (uid_t)uid) >= g->lim.max_per_uid) {
		group_refuse(g, l, fd, SERVER_REFUSED_UID, peer, uid);
		return;
	}
	unsigned total = server_served(srv);
	bool over = total >= srv->max_connections;
	if (over) {
		g->refused[SERVER_REFUSED_MAX_CONNECTIONS]++;
		log_warning("%s: %u connections, max_connections is %u: refusing %s",
			    l->name, total, srv->max_connections, peer);
	}
	if (uid >= 0 && !uid_take(&g->uids, (uid_t)uid)) {
		evutil_closesocket(fd);
		log_error("%s: cannot set up connection from %s (out of memory)", l->name, peer);
		return;
	}
	struct conn *c = conn_new(&g->conns, srv->base, fd, peer, l->proto, l->proto_arg,
				  &srv->limits, over);
	if (!c) {
		if (uid >= 0)
			uid_release(&g->uids, (uid_t)uid);
		log_error("%s: cannot set up connection from %s (out of memory)", l->name, peer);
	} else {
		conn_set_peer_uid(c, uid);
	}
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

struct server_group *server_add_group(struct server *srv, const char *name,
				      const struct server_group_limits *lim,
				      server_uid_exempt_fn *exempt, void *exempt_arg)
{
	if (srv->ngroups == SERVER_MAX_GROUPS)
		return NULL;
	struct server_group *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->srv = srv;
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->lim = *lim;
	g->exempt = exempt;
	g->exempt_arg = exempt_arg;
	g->conns.on_close = server_conn_closed;
	g->conns.arg = g;
	g->refusing.on_close = server_pool_closed;
	g->refusing.arg = g;
	srv->groups[srv->ngroups++] = g;
	return g;
}

void server_group_set_limits(struct server_group *g, const struct server_group_limits *lim)
{
	/* A uid counted before keeps its count; one no longer counted is released at close. */
	g->lim = *lim;
}

size_t server_group_stats(const struct server *srv, struct server_group_stats *out, size_t max)
{
	size_t n = 0;
	for (; n < srv->ngroups && n < max; n++) {
		const struct server_group *g = srv->groups[n];
		out[n].name = g->name;
		out[n].connections = g->conns.count;
		memcpy(out[n].refused, g->refused, sizeof(out[n].refused));
	}
	return n;
}

static void server_free_groups(struct server *srv)
{
	for (size_t i = 0; i < srv->ngroups; i++) {
		struct server_group *g = srv->groups[i];
		uid_table_free(&g->uids);
		uid_table_free(&g->pool_uids);
		free(g);
	}
	srv->ngroups = 0;
}

bool server_add_listener(struct server *srv, struct server_group *group, int fd,
			 const char *name, const struct conn_proto *proto, void *proto_arg)
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
	l->group = group;
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
	if (srv->state != SERVER_STOPPING || server_connections(srv) || !srv->done)
		return;
	void (*done)(void *) = srv->done;
	srv->done = NULL;
	done(srv->done_arg);
}

/* server_left - after a connection of g's closed: a stop may be done, accepting may resume */
static void server_left(struct server_group *g)
{
	struct server *srv = g->srv;
	if (srv->state == SERVER_STOPPING)
		server_maybe_done(srv);
	else
		server_update_admission(srv);
}

static void server_conn_closed(void *arg, long peer_uid)
{
	struct server_group *g = arg;
	if (peer_uid >= 0)
		uid_release(&g->uids, (uid_t)peer_uid);
	server_left(g);
}

static void server_pool_closed(void *arg, long peer_uid)
{
	struct server_group *g = arg;
	if (peer_uid >= 0)
		uid_release(&g->pool_uids, (uid_t)peer_uid);
	server_left(g);
}

void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg)
{
	server_set_state(srv, SERVER_STOPPING);
	evtimer_del(srv->resume_ev);
	server_close_listeners(srv);
	srv->done = done;
	srv->done_arg = arg;
	for (size_t i = 0; i < srv->ngroups; i++) {
		conn_set_drain(&srv->groups[i]->conns);
		conn_set_drain(&srv->groups[i]->refusing);
	}
	server_maybe_done(srv);
}

unsigned server_connections(const struct server *srv)
{
	unsigned n = server_served(srv);
	for (size_t i = 0; i < srv->ngroups; i++)
		n += srv->groups[i]->refusing.count;
	return n;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	srv->done = NULL;
	srv->state = SERVER_STOPPING;
	for (size_t i = 0; i < srv->ngroups; i++) {
		conn_set_close(&srv->groups[i]->conns, "server stopped");
		conn_set_close(&srv->groups[i]->refusing, "server stopped");
	}
	server_close_listeners(srv);
	server_free_groups(srv);
	event_free(srv->resume_ev);
	free(srv);
}
