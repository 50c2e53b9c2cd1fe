/*
 * daemon: vmaild's life cycle.  The order in daemon_run is deliberate: read
 * the configuration, bind (may need root), raise the descriptor limit, init
 * libsodium, drop privileges for good, and only then create the event loop,
 * the database pool and the signal handlers.  Reload and stop are loop
 * events; systemd hears READY/RELOADING/STOPPING through NOTIFY_SOCKET.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "vmail/build_config.h"
#include "vmail/config.h"
#include "vmail/conftab.h"
#include "vmail/endpoint.h"
#include "vmail/log.h"
#include "vmail/privdrop.h"
#include "lookup.h"
#include "lookup_cache.h"
#include "metrics_http.h"
#include "vmail/pg.h"
#include "vmail/pg_listen.h"
#include "vmail/replica.h"
#include "vmail/sdlisten.h"
#include "server.h"
#include "svc_dict.h"
#include "svc_policy.h"
#include "svc_socketmap.h"

#define DAEMON_LISTEN_BACKLOG 1024
/* Descriptors kept back from the client budget: stdio, syslog, notify, accept headroom. */
#define DAEMON_FD_RESERVE 16
enum daemon_state {
	DAEMON_STARTING = 0,
	DAEMON_RUNNING,
	DAEMON_RELOADING,
	DAEMON_DRAINING, /* SIGTERM/SIGINT: no new connections; busy ones finish (shutdown_timeout) */
	DAEMON_STOPPING, /* drained, deadline or a second signal: leaving the loop, then teardown */
	DAEMON_STATE__COUNT,
};

/* The services a listener may carry; each has its own *_listen key. */
enum daemon_svc {
	DAEMON_SVC_SOCKETMAP = 0,
	DAEMON_SVC_POLICY,
	DAEMON_SVC_DICT,       /* dict_listen: passdb/userdb */
	DAEMON_SVC_DICT_QUOTA, /* dict_quota_listen: quota counters */
	DAEMON_SVC__COUNT,
};

/* One bound socket, between binding (as root) and serving (after the drop). */
struct daemon_listener {
	enum daemon_svc svc;
	int fd;
	char name[ENDPOINT_MAX_HOST + 16];
};

/* Users and groups resolved once, before privileges are dropped. */
struct identity {
	struct privdrop run_as; /* user, group */
	/* Per service, then metrics_listen (socket_*); owner (uid_t)-1: leave as created. */
	struct endpoint_perms sock[DAEMON_SVC__COUNT];
	struct endpoint_perms metrics;
};

struct daemon {
	enum daemon_state state;
	const char *path;
	struct config cfg;
	struct identity id;
	unsigned fd_room;    /* client connections the descriptor limit permits */
	unsigned nlisteners;
	struct daemon_listener listeners[DAEMON_SVC__COUNT * ENDPOINT_MAX];
	struct svc_policy policy; /* svc_policy_proto's argument; reload updates its opts */
	struct svc_dict *dict;    /* NULL without dict listeners */
	struct event_base *base;
	struct pg_pool *pool;
	struct server *srv;
	struct server_group *groups[DAEMON_SVC__COUNT]; /* one per service, with its caps */
	struct pg_listen *listen;       /* cache invalidations; NULL without a cache */
	/* Reads from a standby (database), writes and LISTEN on the primary (database_primary). */
	char *primary_conninfo;         /* NULL: one pool for everything */
	struct pg_pool *primary;        /* the writes' pool, when split */
	struct replica_wait *replica;   /* re-invalidates after the standby replayed; with a cache */
	int metrics_fd;                 /* metrics_listen socket until metrics takes it, or -1 */
	struct metrics_http *metrics;
	struct timespec started;
	struct event *sig_hup, *sig_term, *sig_int, *stop_timer;
	int exit_status;
};

static const char *const daemon_state_names[DAEMON_STATE__COUNT] = {
	[DAEMON_STARTING] = "starting",
	[DAEMON_RUNNING] = "running",
	[DAEMON_RELOADING] = "reloading",
	[DAEMON_DRAINING] = "draining",
	[DAEMON_STOPPING] = "stopping",
};

static void daemon_set_state(struct daemon *d, enum daemon_state st)
{
	log_debug("daemon: %s -> %s", daemon_state_names[d->state], daemon_state_names[st]);
	d->state = st;
}

bool daemon_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return true;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len > sizeof(sun.sun_path))
		return false;
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* Linux abstract namespace: no NUL terminator, length counts */
	else if (len < sizeof(sun.sun_path))
		len++;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(state);
}

static void daemon_notify(const char *state)
{
	if (!daemon_sd_notify(state))
		log_warn_errno("NOTIFY_SOCKET: cannot send %s", state);
}

/* daemon_svc_socket - a service's <name>_socket_* settings and the name they start with */
static const struct config_socket *daemon_svc_socket(const struct config *cfg,
						     enum daemon_svc svc, const char **name)
{
	switch (svc) {
	case DAEMON_SVC_SOCKETMAP:
		*name = "socketmap";
		return &cfg->socketmap_socket;
	case DAEMON_SVC_POLICY:
		*name = "policy";
		return &cfg->policy_socket;
	case DAEMON_SVC_DICT_QUOTA:
		*name = "dict_quota";
		return &cfg->dict_quota_socket;
	case DAEMON_SVC_DICT:
	case DAEMON_SVC__COUNT:
		break;
	}
	*name = "dict";
	return &cfg->dict_socket;
}

/*
 * resolve_perms - owner and group names of one set of sockets to ids; an
 * empty name leaves the default (the user's, the group's).  The keys name
 * the setting in err.
 */
static bool resolve_perms(const struct config_socket *s, const char *owner_key,
			  const char *group_key, struct endpoint_perms *p, char *err,
			  size_t errlen)
{
	p->mode = s->mode;
	if (s->owner[0] && !privdrop_find_user(owner_key, s->owner, &p->owner, NULL, err, errlen))
		return false;
	if (s->group[0] && !privdrop_find_group(group_key, s->group, &p->group, err, errlen))
		return false;
	return true;
}

/* resolve_identity - look up user, group and every socket owner name; false with err */
static bool resolve_identity(const struct config *cfg, struct identity *id, char *err,
			     size_t errlen)
{
	if (!privdrop_resolve(&id->run_as, "user", cfg->user, "group", cfg->group, err, errlen))
		return false;
	struct endpoint_perms def = {
		.owner = id->run_as.drop ? id->run_as.uid : (uid_t)-1,
		.group = id->run_as.drop || cfg->group[0] ? id->run_as.gid : (gid_t)-1,
	};
	struct config_socket global = { cfg->socket_owner, cfg->socket_group, cfg->socket_mode };
	id->metrics = def;
	if (!resolve_perms(&global, "socket_owner", "socket_group", &id->metrics, err, errlen))
		return false;
	for (unsigned svc = 0; svc < DAEMON_SVC__COUNT; svc++) {
		const char *name;
		const struct config_socket *own = daemon_svc_socket(cfg, svc, &name);
		struct config_socket eff;
		char okey[64], gkey[64];
		config_socket_resolve(cfg, own, &eff);
		/* An error names the key the value came from. */
		snprintf(okey, sizeof(okey), "%s_socket_owner", name);
		snprintf(gkey, sizeof(gkey), "%s_socket_group", name);
		id->sock[svc] = def;
		if (!resolve_perms(&eff, own->owner[0] ? okey : "socket_owner",
				   own->group[0] ? gkey : "socket_group", &id->sock[svc], err,
				   errlen))
			return false;
	}
	return true;
}

/* drop_privileges - for good, after binding; fatal when it does not work */
static void drop_privileges(const struct identity *id, const char *user)
{
	char err[256];
	if (!id->run_as.drop || geteuid() != 0)
		return;
	if (!privdrop_switch(&id->run_as, err, sizeof(err)))
		log_fatal("%s", err);
	log_info("running as %s (uid %u, gid %u)", user, (unsigned)id->run_as.uid,
		 (unsigned)id->run_as.gid);
}

/*
 * raise_fd_limit - soft RLIMIT_NOFILE up to the hard limit, then say how many
 * clients fit next to the listeners and the database pool.
 */
static unsigned raise_fd_limit(unsigned nlisteners, unsigned pool_size)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_fatal_errno("getrlimit(RLIMIT_NOFILE)");
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_warn_errno("cannot raise the open files limit from %llu to %llu",
				       (unsigned long long)old, (unsigned long long)rl.rlim_max);
			rl.rlim_cur = old;
		}
	}
	unsigned long long limit = rl.rlim_cur == RLIM_INFINITY ? 1048576ULL : rl.rlim_cur;
	unsigned long long used = 3 + nlisteners + pool_size + DAEMON_FD_RESERVE;
	unsigned long long room = limit > used ? limit - used : 0;
	if (room > 1000000)
		room = 1000000;
	log_notice("open files limit %llu permits %llu client connections", limit, room);
	return (unsigned)room;
}

/* effective_max_connections - max_connections, kept within what the descriptors allow */
static unsigned effective_max_connections(const struct daemon *d)
{
	/* The slack and the refusing pools must not eat into DAEMON_FD_RESERVE. */
	unsigned over = server_fd_overhead(DAEMON_SVC__COUNT);
	unsigned budget = d->fd_room > over ? d->fd_room - over : 1;
	if (d->cfg.max_connections <= budget)
		return d->cfg.max_connections;
	log_warning("max_connections %u exceeds what the open files limit permits; using %u",
		    d->cfg.max_connections, budget);
	return budget;
}

static void daemon_limits(const struct config *cfg, struct conn_limits *l)
{
	l->idle_timeout_ms = cfg->idle_timeout;
	l->max_pipelined = cfg->max_pipelined;
	l->max_output_buffer = cfg->max_output_buffer;
}

static void daemon_pg_config(const struct config *cfg, struct pg_config *pc)
{
	pg_config_defaults(pc);
	pc->conninfo = cfg->database;
	pc->pool_size = cfg->pg_pool_size;
	pc->connect_timeout_ms = cfg->pg_connect_timeout;
	pc->request_timeout_ms = cfg->request_timeout;
}

static void daemon_policy_opts(const struct config *cfg, struct svc_policy_opts *o)
{
	o->full_code = cfg->policy_full_action_code;
	o->fail_open = cfg->policy_fail_open != 0;
	o->check_sender = cfg->policy_check_sender != 0;
}

static void daemon_apply_logging(const struct config *cfg)
{
	log_init("vmaild", cfg->log_target == CONFIG_LOG_SYSLOG, cfg->log_level);
}

/* daemon_svc_key - the configuration key that lists a service's endpoints, and its value */
static const char *daemon_svc_key(const struct config *cfg, enum daemon_svc svc,
				  const char **value)
{
	switch (svc) {
	case DAEMON_SVC_SOCKETMAP:
		*value = cfg->socketmap_listen;
		return "socketmap_listen";
	case DAEMON_SVC_POLICY:
		*value = cfg->policy_listen;
		return "policy_listen";
	case DAEMON_SVC_DICT_QUOTA:
		*value = cfg->dict_quota_listen;
		return "dict_quota_listen";
	case DAEMON_SVC_DICT:
	case DAEMON_SVC__COUNT:
		break;
	}
	*value = cfg->dict_listen;
	return "dict_listen";
}

/* daemon_svc_group - a service's group name (its *_max_connections prefix) and caps */
static const char *daemon_svc_group(const struct config *cfg, enum daemon_svc svc,
				    struct server_group_limits *lim)
{
	lim->max_per_uid = 0;
	switch (svc) {
	case DAEMON_SVC_SOCKETMAP:
		lim->max_connections = cfg->socketmap_max_connections;
		return "socketmap";
	case DAEMON_SVC_POLICY:
		lim->max_connections = cfg->policy_max_connections;
		return "policy";
	case DAEMON_SVC_DICT_QUOTA:
		/* 0666: any local user connects; one uid must not take all of them */
		lim->max_connections = cfg->dict_quota_max_connections;
		lim->max_per_uid = cfg->dict_quota_max_connections_per_uid;
		return "dict_quota";
	case DAEMON_SVC_DICT:
	case DAEMON_SVC__COUNT:
		break;
	}
	lim->max_connections = cfg->dict_max_connections;
	return "dict";
}

/* daemon_uid_exempt - the per-uid cap spares root and dict_trusted_users */
static bool daemon_uid_exempt(void *arg, uid_t uid, gid_t gid)
{
	struct daemon *d = arg;
	return uid == 0 || (d->dict && svc_dict_is_trusted(d->dict, uid, gid));
}

/* daemon_groups - create (first call) or update (reload) each service's caps */
static void daemon_groups(struct daemon *d)
{
	for (unsigned svc = 0; svc < DAEMON_SVC__COUNT; svc++) {
		struct server_group_limits lim;
		const char *name = daemon_svc_group(&d->cfg, svc, &lim);
		if (d->groups[svc]) {
			server_group_set_limits(d->groups[svc], &lim);
			continue;
		}
		d->groups[svc] = server_add_group(d->srv, name, &lim, daemon_uid_exempt, d);
		if (!d->groups[svc])
			log_fatal("out of memory");
	}
}

/* daemon_svc_proto - the protocol serving svc and its argument; NULL if not in this version */
static const struct conn_proto *daemon_svc_proto(struct daemon *d, enum daemon_svc svc,
						 void **arg)
{
	switch (svc) {
	case DAEMON_SVC_SOCKETMAP:
		*arg = d->pool;
		return &svc_socketmap_proto;
	case DAEMON_SVC_POLICY:
		*arg = &d->policy;
		return &svc_policy_proto;
	case DAEMON_SVC_DICT:
	case DAEMON_SVC_DICT_QUOTA:
		/* d->dict exists only once the pool does; binding just asks "is it there?" */
		*arg = d->dict ? svc_dict_listener_arg(d->dict, svc == DAEMON_SVC_DICT
								? SVC_DICT_AUTH
								: SVC_DICT_QUOTA)
			       : NULL;
		return &svc_dict_proto;
	case DAEMON_SVC__COUNT:
		break;
	}
	*arg = NULL;
	return NULL;
}

static bool daemon_fd_is_unix(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

/* open_listeners - bind every endpoint of every service; fatal on the first failure */
static void open_listeners(struct daemon *d)
{
	char err[512];
	struct endpoint_list eps;
	d->nlisteners = 0;
	for (unsigned svc = 0; svc < DAEMON_SVC__COUNT; svc++) {
		const char *list;
		const char *key = daemon_svc_key(&d->cfg, svc, &list);
		void *arg;
		if (!list[0])
			continue;
		if (!daemon_svc_proto(d, svc, &arg)) {
			log_warning("%s: the service is not available in this version; ignored", key);
			continue;
		}
		if (!endpoint_parse_list(list, &eps, err, sizeof(err)))
			log_fatal("%s: %s", key, err);
		bool dict = svc == DAEMON_SVC_DICT || svc == DAEMON_SVC_DICT_QUOTA;
		for (size_t i = 0; i < eps.count; i++) {
			struct daemon_listener *l = &d->listeners[d->nlisteners];
			if (dict && eps.items[i].kind == ENDPOINT_INET)
				log_fatal("%s: %s: dict listeners must be unix sockets (the peer's "
					  "uid decides what it may ask)", key, eps.items[i].text);
			l->svc = svc;
			l->fd = endpoint_listen(&eps.items[i], &d->id.sock[svc], DAEMON_LISTEN_BACKLOG,
						err, sizeof(err));
			if (l->fd < 0)
				log_fatal("%s: %s", key, err);
			/* systemd:NAME may be a socket unit's ListenStream=HOST:PORT. */
			if (dict && !daemon_fd_is_unix(l->fd))
				log_fatal("%s: %s: dict listeners must be unix sockets (the peer's "
					  "uid decides what it may ask)", key, eps.items[i].text);
			snprintf(l->name, sizeof(l->name), "%s", eps.items[i].text);
			d->nlisteners++;
		}
	}
}

/* open_metrics_listener - bind metrics_listen (one endpoint), also while we may be root */
static void open_metrics_listener(struct daemon *d)
{
	char err[512];
	struct endpoint_list eps;
	d->metrics_fd = -1;
	if (!d->cfg.metrics_listen[0])
		return;
	if (!endpoint_parse_list(d->cfg.metrics_listen, &eps, err, sizeof(err)) || eps.count != 1)
		log_fatal("metrics_listen: %s", eps.count > 1 ? "one endpoint only" : err);
	d->metrics_fd = endpoint_listen(&eps.items[0], &d->id.metrics, 16, err, sizeof(err));
	if (d->metrics_fd < 0)
		log_fatal("metrics_listen: %s", err);
}

static void daemon_cache_config(const struct config *cfg, struct lookup_cache_config *cc)
{
	cc->size = cfg->cache_size;
	cc->ttl_ms = cfg->cache_ttl;
	cc->negative_ttl_ms = cfg->cache_negative_ttl;
	cc->stale_ttl_ms = cfg->cache_stale_ttl;
}

/*
 * With reads from a standby every invalidation is applied twice: now, and
 * once the standby has replayed the primary's WAL up to where it was when
 * the notification came (replica.h), so that an entry refilled from a
 * lagging standby in between does not outlive the change.
 */
static void daemon_cache_notify(void *arg, const char *payload, size_t len)
{
	struct daemon *d = arg;
	lookup_cache_invalidate(payload, len);
	if (d->replica)
		replica_wait_notify(d->replica, payload, len);
}

static void daemon_cache_overflow(void *arg)
{
	struct daemon *d = arg;
	lookup_cache_drop_all("too many notifications at once");
	if (d->replica)
		replica_wait_notify(d->replica, "all", 3);
}

static void daemon_cache_live(void *arg, bool listening)
{
	struct daemon *d = arg;
	lookup_cache_set_live(listening);
	/* Back after a gap: what changed meanwhile may not be on the standby yet either. */
	if (listening && d->replica)
		replica_wait_notify(d->replica, "all", 3);
}

static void daemon_replica_apply_cb(void *arg, const char *payload, size_t len)
{
	(void)arg;
	lookup_cache_invalidate(payload, len);
}

/* daemon_cache_burst - notifications (or replayed notes) that came together cost one walk */
static void daemon_cache_burst(void *arg, bool begin)
{
	(void)arg;
	if (begin)
		lookup_cache_burst_begin();
	else
		lookup_cache_burst_end();
}

static void daemon_replica_lost(void *arg)
{
	(void)arg;
	lookup_cache_drop_all("the replay wait lost a connection while invalidations waited");
}

/* daemon_write_conninfo - where writes and LISTEN go */
static const char *daemon_write_conninfo(const struct daemon *d)
{
	return d->primary_conninfo ? d->primary_conninfo : d->cfg.database;
}

/*
 * daemon_split_conninfo - database_primary, or database with
 * target_session_attrs=read-write when database asks for a standby; NULL
 * (and *err empty) when one pool serves everything.  NULL with err on a bad
 * connection string.
 */
static char *daemon_split_conninfo(const struct config *cfg, char *err, size_t errlen)
{
	err[0] = '\0';
	if (cfg->database_primary[0]) {
		char *copy = strdup(cfg->database_primary);
		if (!copy)
			snprintf(err, errlen, "out of memory");
		return copy;
	}
	if (!replica_reads_from_standby(cfg->database))
		return NULL;
	return replica_primary_conninfo(cfg->database, err, errlen);
}

static void daemon_primary_pg_config(const struct daemon *d, const struct config *cfg,
				     struct pg_config *pc)
{
	pg_config_defaults(pc);
	pc->conninfo = d->primary_conninfo;
	pc->pool_size = cfg->pg_primary_pool_size;
	pc->connect_timeout_ms = cfg->pg_connect_timeout;
	pc->request_timeout_ms = cfg->request_timeout;
}

/* daemon_replica_start - the primary's pool when reads and writes are split; fatal on error */
static void daemon_replica_start(struct daemon *d)
{
	char err[512];
	d->primary_conninfo = daemon_split_conninfo(&d->cfg, err, sizeof(err));
	if (!d->primary_conninfo) {
		if (err[0])
			log_fatal("database_primary: %s", err);
		return;
	}
	struct pg_config pc;
	daemon_primary_pg_config(d, &d->cfg, &pc);
	d->primary = pg_pool_new(d->base, &pc, lookup_statements(), LOOKUP__COUNT);
	if (!d->primary)
		log_fatal("cannot create the PostgreSQL pool for the primary");
	pg_pool_set_primary(d->pool, d->primary);
	log_info("lookups read from %s; writes and invalidations use the primary",
		 replica_reads_from_standby(d->cfg.database) ? "a standby" : "database");
}

/* daemon_replica_reload - new connection strings for the split; its presence needs a restart */
static bool daemon_replica_reload(struct daemon *d, const struct config *fresh)
{
	char err[512];
	char *conninfo = daemon_split_conninfo(fresh, err, sizeof(err));
	if (!conninfo && err[0]) {
		log_error("database_primary: %s", err);
		return false;
	}
	if (!conninfo != !d->primary_conninfo) {
		log_warning("reload: splitting reads and writes (database_primary, or a standby in "
			    "database) starts or ends only with a restart; keeping %s",
			    d->primary ? "the primary's pool" : "one pool");
		free(conninfo);
		return true;
	}
	if (!conninfo)
		return true;
	struct pg_config pc;
	char *old = d->primary_conninfo;
	d->primary_conninfo = conninfo;
	daemon_primary_pg_config(d, fresh, &pc);
	if (!pg_pool_reload(d->primary, &pc)) {
		d->primary_conninfo = old;
		free(conninfo);
		return false;
	}
	if (d->replica &&
	    !replica_wait_reload(d->replica, fresh->database, conninfo, fresh->pg_connect_timeout))
		log_warning("reload: the replay wait keeps its old connection strings");
	free(old);
	return true;
}

/* daemon_cache_apply - the answer cache and, while there is one, its invalidation feed */
static void daemon_cache_apply(struct daemon *d)
{
	struct lookup_cache_config cc;
	daemon_cache_config(&d->cfg, &cc);
	lookup_cache_configure(&cc);
	if (!lookup_cache_enabled()) {
		replica_wait_free(d->replica);
		d->replica = NULL;
		pg_listen_free(d->listen);
		d->listen = NULL;
		lookup_cache_set_live(false);
		return;
	}
	if (d->primary_conninfo && !d->replica) {
		const struct replica_wait_handler rh = {
			.apply = daemon_replica_apply_cb,
			.burst = daemon_cache_burst,
			.lost = daemon_replica_lost,
			.arg = d,
		};
		d->replica = replica_wait_new(d->base, d->cfg.database, d->primary_conninfo,
					      d->cfg.pg_connect_timeout, &rh);
		if (!d->replica)
			log_fatal("out of memory");
	}
	if (d->listen) {
		pg_listen_reload(d->listen, daemon_write_conninfo(d), d->cfg.pg_connect_timeout);
		return;
	}
	static struct pg_listen_handler h = {
		.notify = daemon_cache_notify,
		.overflow = daemon_cache_overflow,
		.burst = daemon_cache_burst,
		.state = daemon_cache_live,
	};
	h.arg = d;
	d->listen = pg_listen_new(d->base, daemon_write_conninfo(d), "vmail_cache",
				  d->cfg.pg_connect_timeout, &h);
	if (!d->listen)
		log_fatal("out of memory");
}

/* daemon_metrics_state - the daemon's part of a metrics scrape */
static void daemon_metrics_state(void *arg, struct metrics_state *out)
{
	struct daemon *d = arg;
	static struct pg_stats ps;
	static struct lookup_cache_stats cs;
	struct timespec now;
	pg_pool_stats(d->pool, &ps);
	lookup_cache_stats(&cs);
	out->pool = &ps;
	out->cache = &cs;
	if (d->listen) {
		struct pg_listen_stats ls;
		pg_listen_stats(d->listen, &ls);
		out->listen_up = ls.state == PG_LISTEN_LISTENING;
		out->listen_notifications = ls.notifications;
		out->listen_reconnects = ls.connects;
	}
	out->connections = server_connections(d->srv);
	static struct server_group_stats gs[SERVER_MAX_GROUPS];
	static struct metrics_listener ml[SERVER_MAX_GROUPS];
	_Static_assert(SERVER_REFUSED__COUNT <= METRICS_REFUSAL_REASONS, "refusal labels");
	size_t n = server_group_stats(d->srv, gs, SERVER_MAX_GROUPS);
	for (size_t i = 0; i < n; i++) {
		ml[i].name = gs[i].name;
		ml[i].connections = gs[i].connections;
		for (unsigned r = 0; r < SERVER_REFUSED__COUNT; r++) {
			ml[i].refused[r] = gs[i].refused[r];
			ml[i].reason[r] = server_refusal_name(r);
		}
	}
	out->listeners = ml;
	out->nlisteners = n;
	clock_gettime(CLOCK_MONOTONIC, &now);
	out->uptime_s = (double)(now.tv_sec - d->started.tv_sec) +
			(double)(now.tv_nsec - d->started.tv_nsec) / 1e9;
}

static void report_fixed(const char *key, void *arg)
{
	(void)arg;
	log_warning("reload: %s cannot change without a restart; keeping the running value", key);
}

/* daemon_reload - SIGHUP: a bad file changes nothing; a good one is swapped in whole */
static void daemon_reload(struct daemon *d)
{
	struct config fresh;
	char err[512];
	char status[64];
	struct timespec ts;

	daemon_set_state(d, DAEMON_RELOADING);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(status, sizeof(status), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	daemon_notify(status);
	log_notice("reloading %s", d->path);

	if (!config_load(d->path, &fresh, err, sizeof(err))) {
		log_error("reload failed, keeping the running configuration: %s", err);
		goto done;
	}
	config_keep_fixed(&d->cfg, &fresh, report_fixed, NULL);
	struct pg_config pc;
	daemon_pg_config(&fresh, &pc);
	if (!pg_pool_reload(d->pool, &pc) || !daemon_replica_reload(d, &fresh)) {
		log_error("reload failed, keeping the running configuration: database settings "
			  "refused");
		config_free(&fresh);
		goto done;
	}
	config_free(&d->cfg);
	d->cfg = fresh;
	daemon_apply_logging(&d->cfg);
	daemon_policy_opts(&d->cfg, &d->policy.opts);
	daemon_cache_apply(d);
	struct conn_limits limits;
	daemon_limits(&d->cfg, &limits);
	server_set_limits(d->srv, &limits, effective_max_connections(d));
	daemon_groups(d);
	if (d->metrics)
		metrics_http_set_max_connections(d->metrics, d->cfg.metrics_max_connections);
	log_notice("reloaded %s", d->path);
done:
	daemon_set_state(d, DAEMON_RUNNING);
	daemon_notify("READY=1");
}

/*
 * daemon_leave - the one way out of the drain: leave the loop; daemon_teardown
 * (server_free) closes whatever connection is still open.
 */
static void daemon_leave(struct daemon *d)
{
	daemon_set_state(d, DAEMON_STOPPING);
	evtimer_del(d->stop_timer);
	event_base_loopbreak(d->base);
}

static void daemon_stopped_cb(void *arg)
{
	struct daemon *d = arg;
	log_info("all connections answered and closed");
	daemon_leave(d);
}

/* daemon_log_busy - at the deadline: how many connections are cut, per service */
static void daemon_log_busy(const struct daemon *d)
{
	struct server_group_stats gs[SERVER_MAX_GROUPS];
	char per[256] = "";
	size_t n = server_group_stats(d->srv, gs, SERVER_MAX_GROUPS), used = 0;
	for (size_t i = 0; i < n && used < sizeof(per); i++) {
		if (!gs[i].connections)
			continue;
		int w = snprintf(per + used, sizeof(per) - used, "%s%s %u", used ? ", " : "",
				 gs[i].name, gs[i].connections);
		used += w > 0 ? (size_t)w : 0;
	}
	log_warning("stop: shutdown_timeout (%u ms) reached: closing %u connection(s) still busy "
		    "(%s)", d->cfg.shutdown_timeout, server_connections(d->srv), per);
}

static void daemon_stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	(void)fd;
	(void)what;
	daemon_log_busy(d);
	daemon_leave(d);
}

/*
 * daemon_stop - SIGTERM/SIGINT: stop accepting (socket units keep queueing
 * clients for the next vmaild), close idle connections, let open dict
 * transactions and lookups in flight finish within shutdown_timeout, then
 * leave.  A second signal during the drain leaves at once.
 */
static void daemon_stop(struct daemon *d, const char *why)
{
	if (d->state == DAEMON_DRAINING) {
		log_notice("%s again: stopping now (%u connections still busy)", why,
			   server_connections(d->srv));
		daemon_leave(d);
		return;
	}
	if (d->state == DAEMON_STOPPING)
		return;
	daemon_set_state(d, DAEMON_DRAINING);
	daemon_notify("STOPPING=1");
	log_notice("%s: stopping (%u connections): no new connections; idle ones close now, "
		   "busy ones within shutdown_timeout (%u ms)", why, server_connections(d->srv),
		   d->cfg.shutdown_timeout);
	struct timeval tv = { d->cfg.shutdown_timeout / 1000,
			      (d->cfg.shutdown_timeout % 1000) * 1000 };
	evtimer_add(d->stop_timer, &tv);
	server_shutdown(d->srv, daemon_stopped_cb, d);
}

static void daemon_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	if (sig == SIGHUP) {
		if (d->state == DAEMON_RUNNING)
			daemon_reload(d);
		return;
	}
	daemon_stop(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void daemon_teardown(struct daemon *d)
{
	metrics_http_free(d->metrics);
	if (d->metrics_fd >= 0)
		close(d->metrics_fd);
	replica_wait_free(d->replica);
	pg_listen_free(d->listen);
	lookup_cache_close();
	server_free(d->srv);
	if (d->pool)
		pg_pool_free(d->pool);
	if (d->primary)
		pg_pool_free(d->primary); /* after pool: nothing routes to it any more */
	free(d->primary_conninfo);
	svc_dict_free(d->dict); /* after the pool: it answers the batch in flight */
	struct event *evs[] = { d->sig_hup, d->sig_term, d->sig_int, d->stop_timer };
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	if (d->base)
		event_base_free(d->base);
	config_free(&d->cfg);
}

int daemon_run(const char *path)
{
	struct daemon d = { .state = DAEMON_STARTING, .path = path, .metrics_fd = -1 };
	char err[512];

	log_init("vmaild", false, LOG_LEVEL_INFO);
	/* 1. configuration */
	if (!config_load(path, &d.cfg, err, sizeof(err)))
		log_fatal("%s", err);
	daemon_apply_logging(&d.cfg);
	if (!resolve_identity(&d.cfg, &d.id, err, sizeof(err)) ||
	    !privdrop_check(&d.id.run_as, err, sizeof(err)))
		log_fatal("%s: %s", path, err);

	/* 2. listeners, while we may still be root; systemd may have bound them already */
	if (!sdlisten_init(err, sizeof(err)))
		log_fatal("socket activation: %s", err);
	open_listeners(&d);
	open_metrics_listener(&d);
	sdlisten_close_unused();

	/* 3. descriptors */
	d.fd_room = raise_fd_limit(d.nlisteners, d.cfg.pg_pool_size);

	/* 4. libsodium opens /dev/urandom before we lose access to anything */
	if (sodium_init() < 0)
		log_fatal("sodium_init failed");

	/* 5. privileges, for good */
	drop_privileges(&d.id, d.cfg.user);
	if (geteuid() == 0)
		log_warning("running as root (%s=1): for tests only", PRIVDROP_ALLOW_ROOT_ENV);

	/* 6. event loop, database, service, signals */
	signal(SIGPIPE, SIG_IGN);
	d.base = event_base_new();
	if (!d.base)
		log_fatal("cannot create the event loop");
	log_info("vmaild %s, libevent %s (%s)", VMAIL_VERSION, event_get_version(),
		 event_base_get_method(d.base));

	struct pg_config pc;
	daemon_pg_config(&d.cfg, &pc);
	d.pool = pg_pool_new(d.base, &pc, lookup_statements(), LOOKUP__COUNT);
	if (!d.pool)
		log_fatal("cannot create the PostgreSQL pool");
	daemon_replica_start(&d);
	clock_gettime(CLOCK_MONOTONIC, &d.started);
	daemon_cache_apply(&d);

	struct conn_limits limits;
	daemon_limits(&d.cfg, &limits);
	d.srv = server_new(d.base, &limits, effective_max_connections(&d));
	if (!d.srv)
		log_fatal("out of memory");
	d.policy.pool = d.pool;
	daemon_policy_opts(&d.cfg, &d.policy.opts);
	if (d.cfg.dict_listen[0] || d.cfg.dict_quota_listen[0]) {
		struct svc_dict_settings ds = {
			.auth_names = d.cfg.dict_auth_names,
			.quota_names = d.cfg.dict_quota_names,
			.account_names = d.cfg.dict_account_names,
			.sieve_names = d.cfg.dict_sieve_names,
			.trusted_users = d.cfg.dict_trusted_users,
			.state_directory = d.cfg.state_directory,
			.commit_grace_ms = d.cfg.shutdown_commit_grace,
		};
		d.dict = svc_dict_new(d.base, d.pool, &ds, err, sizeof(err));
		if (!d.dict)
			log_fatal("%s", err);
	}
	daemon_groups(&d);
	for (unsigned i = 0; i < d.nlisteners; i++) {
		struct daemon_listener *l = &d.listeners[i];
		void *arg;
		const struct conn_proto *proto = daemon_svc_proto(&d, l->svc, &arg);
		if (!server_add_listener(d.srv, d.groups[l->svc], l->fd, l->name, proto, arg))
			log_fatal("%s: cannot listen (out of memory)", l->name);
	}

	d.sig_hup = evsignal_new(d.base, SIGHUP, daemon_signal_cb, &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, daemon_signal_cb, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, daemon_signal_cb, &d);
	d.stop_timer = evtimer_new(d.base, daemon_stop_timeout_cb, &d);
	if (!d.sig_hup || !d.sig_term || !d.sig_int || !d.stop_timer ||
	    evsignal_add(d.sig_hup, NULL) < 0 || evsignal_add(d.sig_term, NULL) < 0 ||
	    evsignal_add(d.sig_int, NULL) < 0)
		log_fatal("cannot set up signal handling");

	if (d.metrics_fd >= 0) {
		d.metrics = metrics_http_new(d.base, d.metrics_fd, d.cfg.metrics_max_connections,
					     daemon_metrics_state, &d);
		d.metrics_fd = -1; /* taken over, closed on failure */
		if (!d.metrics)
			log_fatal("metrics_listen: cannot serve (out of memory)");
	}

	/* 7. serve */
	daemon_set_state(&d, DAEMON_RUNNING);
	log_notice("ready");
	daemon_notify("READY=1\nSTATUS=answering lookups");
	if (event_base_dispatch(d.base) < 0) {
		log_error("event loop failed");
		d.exit_status = 1;
	}
	daemon_teardown(&d);
	log_notice("stopped");
	return d.exit_status;
}

static void print_line(const char *text, void *arg)
{
	(void)arg;
	printf("%s\n", text);
}

int daemon_check_config(const char *path)
{
	struct config cfg;
	struct identity id;
	char err[512];
	if (!config_load(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "vmaild: %s\n", err);
		return 1;
	}
	int status = 0;
	if (!resolve_identity(&cfg, &id, err, sizeof(err))) {
		fprintf(stderr, "vmaild: %s: %s\n", path, err);
		status = 1;
	} else {
		conftab_print(config_table(), &cfg, print_line, NULL);
		fprintf(stderr, "vmaild: %s: configuration is valid\n", path);
	}
	config_free(&cfg);
	return status;
}
