/*
 * panel_config: vmail-panel's keys, their defaults and bounds.  Like
 * config.c for vmaild, the table is the one place that says which keys
 * exist; defaults go through the same parsers as the file.  Unknown keys are
 * not errors here, because an operator may point the panel at vmaild's file.
 */
#include "panel_config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/cfgfile.h"
#include "vmail/config.h"
#include "vmail/endpoint.h"

#define OFF(field) offsetof(struct panel_config, field)
#define DAY_MS (24UL * 3600 * 1000)

enum pc_type {
	PC_STRING,
	PC_ENDPOINTS,
	PC_UINT,
	PC_DURATION,
	PC_BOOL,
	PC_LOG_LEVEL,
	PC_LOG_TARGET,
};

struct pc_param {
	const char *name;
	enum pc_type type;
	size_t offset;
	const char *def;
	unsigned long min, max;
};

static const struct pc_param params[] = {
	{ "panel_listen", PC_ENDPOINTS, OFF(listen), "inet:127.0.0.1:8080", 0, 0 },
	{ "panel_database", PC_STRING, OFF(database), "", 0, 0 },
	{ "cookie_secure", PC_BOOL, OFF(cookie_secure), "yes", 0, 0 },
	{ "session_idle_timeout", PC_DURATION, OFF(session_idle), "30m", 1000, DAY_MS },
	{ "session_max_age", PC_DURATION, OFF(session_max_age), "12h", 1000, 30 * DAY_MS },
	{ "max_sessions", PC_UINT, OFF(max_sessions), "10000", 1, 1000000 },
	{ "login_failure_delay", PC_DURATION, OFF(failure_delay), "1s", 0, 10000 },
	{ "throttle_login_failures", PC_UINT, OFF(throttle_login), "5", 1, 100000 },
	{ "throttle_address_failures", PC_UINT, OFF(throttle_address), "20", 1, 100000 },
	{ "throttle_window", PC_DURATION, OFF(throttle_window), "15m", 1000, DAY_MS },
	{ "trusted_proxies", PC_STRING, OFF(trusted_proxies), "127.0.0.1, ::1", 0, 0 },
	{ "panel_db_workers", PC_UINT, OFF(db_workers), "4", 1, 64 },
	{ "panel_hash_workers", PC_UINT, OFF(hash_workers), "2", 1, 16 },
	{ "panel_db_timeout", PC_DURATION, OFF(db_timeout), "5s", 1000, 600000 },
	{ "panel_request_timeout", PC_DURATION, OFF(request_timeout), "30s", 1000, 600000 },
	{ "panel_user", PC_STRING, OFF(user), "", 0, 0 },
	{ "panel_group", PC_STRING, OFF(group), "", 0, 0 },
	{ "log_level", PC_LOG_LEVEL, OFF(log_level), "info", 0, 0 },
	{ "log_target", PC_LOG_TARGET, OFF(log_syslog), "stderr", 0, 0 },
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))

static void *field(struct panel_config *cfg, const struct pc_param *p)
{
	return (char *)cfg + p->offset;
}

static const void *field_c(const struct panel_config *cfg, const struct pc_param *p)
{
	return (const char *)cfg + p->offset;
}

static bool parse_uint(const char *s, unsigned long *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v > UINT_MAX)
		return false;
	*out = v;
	return true;
}

static bool set_value(struct panel_config *cfg, const struct pc_param *p, const char *value,
		      char *why, size_t whylen)
{
	unsigned long v = 0;
	switch (p->type) {
	case PC_ENDPOINTS: {
		struct endpoint_list eps;
		if (!endpoint_parse_list(value, &eps, why, whylen))
			return false;
		if (eps.count == 0) {
			snprintf(why, whylen, "at least one listener is needed");
			return false;
		}
	}
		/* fall through */
	case PC_STRING: {
		char *copy = strdup(value);
		if (!copy) {
			snprintf(why, whylen, "out of memory");
			return false;
		}
		free(*(char **)field(cfg, p));
		*(char **)field(cfg, p) = copy;
		return true;
	}
	case PC_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
			*(bool *)field(cfg, p) = true;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
			 strcmp(value, "0") == 0)
			*(bool *)field(cfg, p) = false;
		else {
			snprintf(why, whylen, "\"%.100s\": expected yes or no", value);
			return false;
		}
		return true;
	case PC_LOG_LEVEL:
		if (!log_parse_level(value, (enum log_level *)field(cfg, p))) {
			snprintf(why, whylen, "\"%.100s\": error, warning, notice, info or debug",
				 value);
			return false;
		}
		return true;
	case PC_LOG_TARGET:
		if (strcmp(value, "stderr") != 0 && strcmp(value, "syslog") != 0) {
			snprintf(why, whylen, "\"%.100s\": stderr or syslog", value);
			return false;
		}
		*(bool *)field(cfg, p) = strcmp(value, "syslog") == 0;
		return true;
	case PC_UINT:
		if (!parse_uint(value, &v)) {
			snprintf(why, whylen, "\"%.100s\": expected a whole number", value);
			return false;
		}
		break;
	case PC_DURATION:
		if (!config_parse_duration(value, &v)) {
			snprintf(why, whylen, "\"%.100s\": expected a duration (500ms, 3s, 2m, 1h)",
				 value);
			return false;
		}
		break;
	}
	if (v < p->min || v > p->max) {
		snprintf(why, whylen, "\"%.100s\" is out of range %lu..%lu%s", value, p->min, p->max,
			 p->type == PC_DURATION ? " ms" : "");
		return false;
	}
	*(unsigned *)field(cfg, p) = (unsigned)v;
	return true;
}

static unsigned line_of(const struct cfgfile *cf, const char *key)
{
	for (size_t k = 0; k < cf->count; k++)
		if (strcmp(cf->entries[k].key, key) == 0)
			return cf->entries[k].line;
	return 0;
}

static bool parse_cfgfile(struct cfgfile *cf, void *dest, char *err, size_t errlen)
{
	struct panel_config *out = dest;
	char why[300];
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < NPARAMS; i++) {
		const struct pc_param *p = &params[i];
		const char *value = cfgfile_get(cf, p->name);
		unsigned line = value ? line_of(cf, p->name) : 0;
		if (!set_value(out, p, value ? value : p->def, why, sizeof(why))) {
			if (line)
				snprintf(err, errlen, "line %u: %s: %s", line, p->name, why);
			else
				snprintf(err, errlen, "default of %s: %s", p->name, why);
			goto fail;
		}
	}
	/* The panel's own database key wins; vmaild's is the fallback for a shared file. */
	const char *shared = cfgfile_get(cf, "database");
	if (!out->database[0] && shared) {
		char *copy = strdup(shared);
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		free(out->database);
		out->database = copy;
	}
	if (!out->database[0]) {
		snprintf(err, errlen, "panel_database (or database): required key is missing");
		goto fail;
	}
	if (out->group[0] && !out->user[0]) {
		snprintf(err, errlen, "panel_group: set only together with panel_user");
		goto fail;
	}
	if (out->session_idle > out->session_max_age) {
		snprintf(err, errlen, "session_idle_timeout: longer than session_max_age");
		goto fail;
	}
	for (size_t k = 0; k < cf->count; k++)
		if (!cf->entries[k].used)
			out->ignored_keys++;
	return true;
fail:
	panel_config_free(out);
	return false;
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
	for (size_t i = 0; i < NPARAMS; i++) {
		if (params[i].type == PC_STRING || params[i].type == PC_ENDPOINTS) {
			free(*(char **)field(cfg, &params[i]));
			*(char **)field(cfg, &params[i]) = NULL;
		}
	}
}

void panel_config_print(const struct panel_config *cfg, void (*line)(const char *text, void *arg),
			void *arg)
{
	static const char *const levels[] = { "error", "warning", "notice", "info", "debug" };
	char buf[1200];
	for (size_t i = 0; i < NPARAMS; i++) {
		const struct pc_param *p = &params[i];
		const void *f = field_c(cfg, p);
		switch (p->type) {
		case PC_STRING:
		case PC_ENDPOINTS:
			/* the connection string may hold a password */
			if (strcmp(p->name, "panel_database") == 0)
				snprintf(buf, sizeof(buf), "%s = (set)", p->name);
			else
				snprintf(buf, sizeof(buf), "%s = %.1000s", p->name, *(char *const *)f);
			break;
		case PC_BOOL:
			snprintf(buf, sizeof(buf), "%s = %s", p->name, *(const bool *)f ? "yes" : "no");
			break;
		case PC_LOG_LEVEL:
			snprintf(buf, sizeof(buf), "%s = %s", p->name, levels[*(const enum log_level *)f]);
			break;
		case PC_LOG_TARGET:
			snprintf(buf, sizeof(buf), "%s = %s", p->name,
				 *(const bool *)f ? "syslog" : "stderr");
			break;
		case PC_UINT:
			snprintf(buf, sizeof(buf), "%s = %u", p->name, *(const unsigned *)f);
			break;
		case PC_DURATION:
			snprintf(buf, sizeof(buf), "%s = %ums", p->name, *(const unsigned *)f);
			break;
		}
		line(buf, arg);
	}
}
