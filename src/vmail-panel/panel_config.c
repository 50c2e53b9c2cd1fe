/*
 * panel_config: vmail-panel's keys as rows on conftab, like config.c for
 * vmaild, plus the rules that involve more than one key.  Unknown keys are
 * not errors here, because an operator may point the panel at vmaild's file.
 */
#include "panel_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/cfgfile.h"
#include "vmail/conftab.h"

#define OFF(field) offsetof(struct panel_config, field)
#define DAY_MS (24UL * 3600 * 1000)

static const struct conftab_row rows[] = {
	{ "panel_listen", CONFTAB_ENDPOINTS, OFF(listen), "inet:127.0.0.1:8080", 0, 0,
	  CONFTAB_NONEMPTY, "listeners, inet:HOST:PORT or unix:PATH, comma-separated" },
	{ "panel_database", CONFTAB_STRING, OFF(database), "", 0, 0, CONFTAB_HIDDEN,
	  "libpq connection string for the panel's role (default: database)" },
	{ "cookie_secure", CONFTAB_BOOL, OFF(cookie_secure), "yes", 0, 0, CONFTAB_BOOL_ALIASES,
	  "mark cookies Secure (no only for plain-HTTP tests)" },
	{ "session_idle_timeout", CONFTAB_DURATION, OFF(session_idle), "30m", 1000, DAY_MS, 0,
	  "a session ends after this long without a request" },
	{ "session_max_age", CONFTAB_DURATION, OFF(session_max_age), "12h", 1000, 30 * DAY_MS, 0,
	  "a session ends this long after login" },
	{ "max_sessions", CONFTAB_UINT, OFF(max_sessions), "10000", 1, 1000000, 0,
	  "with this many sessions open, a new login ends the oldest" },
	{ "login_failure_delay", CONFTAB_DURATION, OFF(failure_delay), "1s", 0, 10000, 0,
	  "no failed login is answered sooner" },
	{ "throttle_login_failures", CONFTAB_UINT, OFF(throttle_login), "5", 1, 100000, 0,
	  "failed logins per login within throttle_window" },
	{ "throttle_address_failures", CONFTAB_UINT, OFF(throttle_address), "20", 1, 100000, 0,
	  "failed logins per client address within throttle_window" },
	{ "throttle_window", CONFTAB_DURATION, OFF(throttle_window), "15m", 1000, DAY_MS, 0,
	  "counted from the first failure" },
	{ "panel_socket_group", CONFTAB_STRING, OFF(socket_group), "", 0, 0, 0,
	  "group of panel_listen's unix sockets (the proxy's, e.g. www-data)" },
	{ "panel_socket_mode", CONFTAB_MODE, OFF(socket_mode), "0660", 0, 0777, 0,
	  "mode of panel_listen's unix sockets" },
	{ "trusted_proxies", CONFTAB_STRING, OFF(trusted_proxies), "", 0, 0, 0,
	  "TCP peers (numeric addresses) whose X-Real-IP header names the client" },
	{ "trusted_proxy_users", CONFTAB_STRING, OFF(trusted_proxy_users), "", 0, 0, 0,
	  "unix-socket peers (users, uids, @groups) whose X-Real-IP names the client" },
	{ "panel_db_workers", CONFTAB_UINT, OFF(db_workers), "4", 1, 64, 0,
	  "worker threads for database calls" },
	{ "panel_hash_workers", CONFTAB_UINT, OFF(hash_workers), "2", 1, 16, 0,
	  "worker threads for password hashing" },
	{ "panel_db_timeout", CONFTAB_DURATION, OFF(db_timeout), "5s", 1000, 600000, 0,
	  "connect and statement timeout of each database call" },
	{ "panel_max_connections", CONFTAB_UINT, OFF(max_connections), "256", 1, 100000, 0,
	  "HTTP connections open at a time; more are closed at accept" },
	{ "panel_request_timeout", CONFTAB_DURATION, OFF(request_timeout), "30s", 1000, 600000, 0,
	  "reading a request and writing an answer" },
	{ "panel_user", CONFTAB_STRING, OFF(user), "", 0, 0, 0,
	  "user to run as when started as root" },
	{ "panel_group", CONFTAB_STRING, OFF(group), "", 0, 0, 0,
	  "group to run as (default: the user's primary group)" },
	{ "log_level", CONFTAB_LOG_LEVEL, OFF(log_level), "info", 0, 0, 0,
	  "error, warning, notice, info or debug" },
	{ "log_target", CONFTAB_LOG_TARGET, OFF(log_syslog), "stderr", 0, 0, 0,
	  "stderr or syslog" },
};

static const struct conftab table = CONFTAB_TABLE(rows, true);

/* validate - the database fallback and the rules that involve more than one key */
static bool validate(struct cfgfile *cf, struct panel_config *cfg, char *err, size_t errlen)
{
	/* The panel's own database key wins; vmaild's is the fallback for a shared file. */
	const char *shared = cfgfile_get(cf, "database");
	if (!cfg->database[0] && shared) {
		char *copy = strdup(shared);
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		free(cfg->database);
		cfg->database = copy;
	}
	if (!cfg->database[0]) {
		snprintf(err, errlen, "panel_database (or database): required key is missing");
		return false;
	}
	if (cfg->group[0] && !cfg->user[0]) {
		snprintf(err, errlen, "panel_group: set only together with panel_user");
		return false;
	}
	if (cfg->session_idle > cfg->session_max_age) {
		snprintf(err, errlen, "session_idle_timeout: longer than session_max_age");
		return false;
	}
	return true;
}

static bool parse_cfgfile(struct cfgfile *cf, void *dest, char *err, size_t errlen)
{
	struct panel_config *out = dest;
	if (!conftab_apply(&table, cf, out, err, errlen))
		return false;
	if (!validate(cf, out, err, errlen)) {
		panel_config_free(out);
		return false;
	}
	for (size_t k = 0; k < cf->count; k++)
		if (!cf->entries[k].used)
			out->ignored_keys++;
	return true;
}

bool panel_config_parse(const char *buf, size_t len, struct panel_config *out, char *err,
			size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return cfgfile_parse_into(buf, len, parse_cfgfile, out, err, errlen);
}

bool panel_config_load(const char *path, struct panel_config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return cfgfile_load_into(path, parse_cfgfile, out, err, errlen);
}

void panel_config_free(struct panel_config *cfg)
{
	conftab_free(&table, cfg);
}

void panel_config_print(const struct panel_config *cfg, void (*line)(const char *text, void *arg),
			void *arg)
{
	conftab_print(&table, cfg, line, arg);
}
