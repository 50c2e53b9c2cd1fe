/* panel_config: vmail-panel's settings (vmail-panel.conf), one conftab table. */
#ifndef VMAIL_PANEL_CONFIG_H
#define VMAIL_PANEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "vmail/log.h"

/*
 * One field per key of the table in panel_config.c.  Durations are
 * milliseconds.  Strings are never NULL.  The file may be the one vmaild
 * reads: keys that are not the panel's are counted and otherwise ignored.
 */
struct panel_config {
	char *listen;              /* panel_listen: endpoint list */
	char *database;            /* panel_database, else database */
	unsigned cookie_secure;    /* yes/no */
	unsigned session_idle;     /* ms */
	unsigned session_max_age;  /* ms */
	unsigned max_sessions;
	unsigned failure_delay;    /* ms: every failed login is answered no sooner */
	unsigned throttle_login;   /* failures per login per window */
	unsigned throttle_address; /* failures per client address per window */
	unsigned throttle_window;  /* ms */
	char *socket_group;        /* panel_socket_group: of unix listeners */
	unsigned socket_mode;      /* panel_socket_mode: of unix listeners */
	char *trusted_proxies;     /* TCP peers whose X-Real-IP is believed */
	char *trusted_proxy_users; /* unix peers (users, @groups) whose X-Real-IP is believed */
	unsigned db_workers;
	unsigned hash_workers;
	unsigned db_timeout;       /* ms: connect and statement deadline */
	unsigned request_timeout;  /* ms: HTTP read/write */
	unsigned max_connections;  /* panel_max_connections: HTTP connections at a time */
	char *user;
	char *group;
	enum log_level log_level;
	unsigned log_syslog;       /* log_target: 0 stderr, 1 syslog */
	unsigned ignored_keys;     /* keys of other programs in the same file */
};

/*
 * panel_config_parse - defaults, then the file image; bad values and
 * duplicate keys fail with "line N: key: why" in err.  On failure *out is
 * empty (safe to panel_config_free).
 */
bool panel_config_parse(const char *buf, size_t len, struct panel_config *out, char *err,
			size_t errlen);
/* panel_config_load - the same for a file; err is prefixed with the path */
bool panel_config_load(const char *path, struct panel_config *out, char *err, size_t errlen);
void panel_config_free(struct panel_config *cfg);
/* panel_config_print - the effective settings, one "key = value" per line (vmail-panel -t) */
void panel_config_print(const struct panel_config *cfg, void (*line)(const char *text, void *arg),
			void *arg);

#endif
