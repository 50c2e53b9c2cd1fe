/* config: the vmaild configuration table, its value parsers, validation and reload rules. */
#include "vmail/config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/cfgfile.h"
#include "vmail/endpoint.h"
#include "vmail/size.h"

#define OFF(field) offsetof(struct config, field)
#define DAY_MS (24UL * 3600 * 1000)

/*
 * The one place that says which keys exist.  Defaults are written in file
 * syntax and go through the same parsers as the file, so a default can never
 * disagree with its bounds.  docs/configuration.md and vmaild.conf(5) follow
 * this table row by row.
 */
static const struct config_param params[] = {
	{ "database", CONFIG_STRING, OFF(database), NULL, 0, 0, CONFIG_REQUIRED | CONFIG_RELOAD,
	  "libpq connection string" },
	{ "database_primary", CONFIG_STRING, OFF(database_primary), "", 0, 0, CONFIG_RELOAD,
	  "libpq connection string for writes and LISTEN (default: database, with "
	  "target_session_attrs=read-write when database asks for a standby)" },
	{ "socketmap_listen", CONFIG_STRING, OFF(socketmap_listen), "", 0, 0, CONFIG_ENDPOINTS,
	  "Postfix socketmap listeners: unix:PATH, inet:HOST:PORT, comma-separated" },
	{ "policy_listen", CONFIG_STRING, OFF(policy_listen), "", 0, 0, CONFIG_ENDPOINTS,
	  "Postfix policy delegation listeners (quota at RCPT and END-OF-MESSAGE)" },
	{ "dict_listen", CONFIG_STRING, OFF(dict_listen), "", 0, 0, CONFIG_ENDPOINTS,
	  "Dovecot dict listeners for passdb/userdb (unix: only; trusted peers only)" },
	{ "dict_quota_listen", CONFIG_STRING, OFF(dict_quota_listen), "", 0, 0, CONFIG_ENDPOINTS,
	  "Dovecot dict listeners for quota (unix: only; any uid, own users' counters only)" },
	{ "dict_quota_socket_mode", CONFIG_MODE, OFF(dict_quota_socket_mode), "0666", 0, 0777, 0,
	  "mode of the dict_quota_listen sockets (mail processes run as every shell account)" },
	{ "dict_auth_names", CONFIG_STRING, OFF(dict_auth_names), "auth", 0, 0, 0,
	  "dict names answered on dict_listen (passdb/userdb)" },
	{ "dict_quota_names", CONFIG_STRING, OFF(dict_quota_names), "quota, quotaclone", 0, 0, 0,
	  "dict names of the mailbox quota root and quota_clone on dict_quota_listen" },
	{ "dict_account_names", CONFIG_STRING, OFF(dict_account_names), "group", 0, 0, 0,
	  "dict names of the read-only shell-account root on dict_quota_listen" },
	{ "dict_trusted_users", CONFIG_STRING, OFF(dict_trusted_users), "dovecot", 0, 0, 0,
	  "peers besides root served everything: user names, uids, @group" },
	{ "socket_owner", CONFIG_STRING, OFF(socket_owner), "", 0, 0, 0,
	  "owner of unix sockets (default: user)" },
	{ "socket_group", CONFIG_STRING, OFF(socket_group), "", 0, 0, 0,
	  "group of unix sockets (default: group)" },
	{ "socket_mode", CONFIG_MODE, OFF(socket_mode), "0660", 0, 0777, 0,
	  "mode of unix sockets, octal" },
	{ "user", CONFIG_STRING, OFF(user), "", 0, 0, 0,
	  "user to run as after binding (required when started as root)" },
	{ "group", CONFIG_STRING, OFF(group), "", 0, 0, 0,
	  "group to run as (default: the user's primary group)" },
	{ "dns_resolv_conf", CONFIG_STRING, OFF(dns_resolv_conf), "/etc/resolv.conf", 0, 0,
	  CONFIG_RELOAD, "vmailctl domain verify/check: nameservers from this file (vmaild ignores it)" },
	{ "dns_nameserver", CONFIG_STRING, OFF(dns_nameserver), "", 0, 0, CONFIG_RELOAD,
	  "vmailctl domain verify/check: IP[:PORT] list used instead of dns_resolv_conf" },
	{ "dns_timeout", CONFIG_DURATION, OFF(dns_timeout), "3s", 100, 60000, CONFIG_RELOAD,
	  "vmailctl domain verify/check: wait this long for each nameserver" },
	{ "log_level", CONFIG_LOG_LEVEL, OFF(log_level), "info", 0, 0, CONFIG_RELOAD,
	  "error, warning, notice, info or debug" },
	{ "log_target", CONFIG_LOG_TARGET, OFF(log_target), "stderr", 0, 0, CONFIG_RELOAD,
	  "stderr or syslog (facility mail)" },
	{ "pg_pool_size", CONFIG_UINT, OFF(pg_pool_size), "4", 1, 256, CONFIG_RELOAD,
	  "PostgreSQL connections" },
	{ "pg_primary_pool_size", CONFIG_UINT, OFF(pg_primary_pool_size), "2", 1, 256, CONFIG_RELOAD,
	  "connections to the primary, when lookups read from a standby" },
	{ "pg_connect_timeout", CONFIG_DURATION, OFF(pg_connect_timeout), "2s", 100, 600000,
	  CONFIG_RELOAD, "limit for establishing one PostgreSQL connection" },
	{ "request_timeout", CONFIG_DURATION, OFF(request_timeout), "3s", 10, 90000,
	  CONFIG_RELOAD, "deadline for one lookup; past it the answer is a temporary failure" },
	{ "max_connections", CONFIG_UINT, OFF(max_connections), "1000", 1, 1000000,
	  CONFIG_RELOAD, "client connections over all listeners" },
	{ "idle_timeout", CONFIG_DURATION, OFF(idle_timeout), "60s", 100, DAY_MS, CONFIG_RELOAD,
	  "close a client connection idle this long" },
	{ "max_pipelined", CONFIG_UINT, OFF(max_pipelined), "64", 1, 100000, CONFIG_RELOAD,
	  "unanswered requests per connection before reading pauses" },
	{ "max_output_buffer", CONFIG_SIZE, OFF(max_output_buffer), "1M", 4096, 1UL << 30,
	  CONFIG_RELOAD, "unsent reply bytes per connection before reading pauses" },
	{ "policy_full_action_code", CONFIG_UINT, OFF(policy_full_action_code), "452", 452, 552,
	  CONFIG_RELOAD, "policy reply for a full mailbox: 452 (4.2.2, retried) or 552 (5.2.2)" },
	{ "policy_fail_open", CONFIG_BOOL, OFF(policy_fail_open), "no", 0, 1, CONFIG_RELOAD,
	  "policy answers DUNNO instead of DEFER_IF_PERMIT when the database cannot answer" },
	{ "policy_check_sender", CONFIG_BOOL, OFF(policy_check_sender), "no", 0, 1, CONFIG_RELOAD,
	  "policy rejects SASL clients whose MAIL FROM they do not own (the sender map)" },
	{ "cache_size", CONFIG_SIZE, OFF(cache_size), "64M", 0, 1UL << 31, CONFIG_RELOAD,
	  "memory for cached lookup answers, index included; 0 disables the cache" },
	{ "cache_ttl", CONFIG_DURATION, OFF(cache_ttl), "300s", 100, DAY_MS, CONFIG_RELOAD,
	  "how long a positive answer is served from the cache" },
	{ "cache_negative_ttl", CONFIG_DURATION, OFF(cache_negative_ttl), "10s", 100, DAY_MS,
	  CONFIG_RELOAD, "how long a \"no such key\" from the database is served from the cache" },
	{ "cache_stale_ttl", CONFIG_DURATION, OFF(cache_stale_ttl), "3600s", 0, 7 * DAY_MS,
	  CONFIG_RELOAD, "how long past its expiry a positive answer of domain, alias, mailbox, "
	  "sender or userdb may be served while the database is unreachable" },
	{ "metrics_listen", CONFIG_STRING, OFF(metrics_listen), "", 0, 0, CONFIG_ENDPOINTS,
	  "Prometheus metrics over HTTP (GET /metrics), e.g. inet:127.0.0.1:9469; \"\" = off" },
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))

/* value_equal and config_keep_fixed treat every non-string field as an unsigned. */
_Static_assert(sizeof(enum log_level) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum config_log_target) == sizeof(unsigned), "enum size");

static const char *const target_names[] = {
	[CONFIG_LOG_STDERR] = "stderr",
	[CONFIG_LOG_SYSLOG] = "syslog",
};

static const char *const bool_names[] = { "no", "yes" };

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",     [LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice",   [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

const struct config_param *config_params(size_t *count)
{
	*count = NPARAMS;
	return params;
}

/* Field access by table row: the only casts in this file. */
static char **str_field(struct config *cfg, const struct config_param *p)
{
	return (char **)(void *)((char *)cfg + p->offset);
}

static unsigned *uint_field(struct config *cfg, const struct config_param *p)
{
	return (unsigned *)(void *)((char *)cfg + p->offset);
}

static const void *field_c(const struct config *cfg, const struct config_param *p)
{
	return (const char *)cfg + p->offset;
}

/* parse_number - decimal digits only, no sign, no blanks; stops at the first non-digit */
static bool parse_number(const char *s, unsigned long *out, const char **rest)
{
	unsigned long v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (ULONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	*rest = p;
	return true;
}

static bool mul_ok(unsigned long v, unsigned long m, unsigned long *out)
{
	if (m && v > ULONG_MAX / m)
		return false;
	*out = v * m;
	return true;
}

bool config_parse_duration(const char *s, unsigned long *ms)
{
	unsigned long v;
	const char *unit;
	if (!parse_number(s, &v, &unit))
		return false;
	unsigned long mult;
	if (*unit == '\0' || strcmp(unit, "s") == 0)
		mult = 1000;
	else if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(unit, "h") == 0)
		mult = 3600 * 1000;
	else
		return false;
	return mul_ok(v, mult, ms);
}

static bool parse_mode(const char *s, unsigned long *mode)
{
	unsigned long v = 0;
	if (*s == '\0' || strlen(s) > 4)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			return false;
		v = v * 8 + (unsigned long)(*p - '0');
	}
	*mode = v;
	return true;
}

static bool parse_name(const char *s, const char *const *names, size_t n, unsigned *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (unsigned)i;
			return true;
		}
	}
	return false;
}

static const char *type_hint(enum config_type t)
{
	switch (t) {
	case CONFIG_UINT:
		return "expected a whole number";
	case CONFIG_DURATION:
		return "expected a duration such as 500ms, 3s, 2m or 1h";
	case CONFIG_SIZE:
		return "expected a size such as 65536, 64K, 1M or 1G";
	case CONFIG_MODE:
		return "expected an octal mode such as 0660";
	case CONFIG_LOG_LEVEL:
		return "expected error, warning, notice, info or debug";
	case CONFIG_LOG_TARGET:
		return "expected stderr or syslog";
	case CONFIG_BOOL:
		return "expected yes or no";
	case CONFIG_STRING:
		break;
	}
	return "bad value";
}

static void format_bound(const struct config_param *p, unsigned long v, char *out, size_t len)
{
	switch (p->type) {
	case CONFIG_DURATION:
		if (v % 1000 == 0)
			snprintf(out, len, "%lus", v / 1000);
		else
			snprintf(out, len, "%lums", v);
		break;
	case CONFIG_MODE:
		snprintf(out, len, "%04lo", v);
		break;
	case CONFIG_SIZE:
		if (v % (1024UL * 1024 * 1024) == 0)
			snprintf(out, len, "%luG", v / (1024UL * 1024 * 1024));
		else if (v % (1024 * 1024) == 0)
			snprintf(out, len, "%luM", v / (1024 * 1024));
		else if (v % 1024 == 0)
			snprintf(out, len, "%luK", v / 1024);
		else
			snprintf(out, len, "%lu", v);
		break;
	default:
		snprintf(out, len, "%lu", v);
		break;
	}
}

/* set_value - parse one value into its field; on error fills why */
static bool set_value(struct config *cfg, const struct config_param *p, const char *value,
		      char *why, size_t whylen)
{
	unsigned long v = 0;
	const char *rest;
	unsigned idx;
	bool ok = false;
	switch (p->type) {
	case CONFIG_STRING: {
		if (p->flags & CONFIG_ENDPOINTS) {
			struct endpoint_list eps;
			if (!endpoint_parse_list(value, &eps, why, whylen))
				return false;
		}
		char *copy = strdup(value);
		if (!copy) {
			snprintf(why, whylen, "out of memory");
			return false;
		}
		free(*str_field(cfg, p));
		*str_field(cfg, p) = copy;
		return true;
	}
	case CONFIG_UINT:
		ok = parse_number(value, &v, &rest) && *rest == '\0';
		break;
	case CONFIG_DURATION:
		ok = config_parse_duration(value, &v);
		break;
	case CONFIG_SIZE: {
		uint64_t bytes;
		char sizeerr[128];
		ok = size_parse(value, &bytes, sizeerr, sizeof(sizeerr)) && bytes <= ULONG_MAX;
		v = (unsigned long)bytes;
		break;
	}
	case CONFIG_MODE:
		ok = parse_mode(value, &v);
		break;
	case CONFIG_BOOL:
		ok = parse_name(value, bool_names, 2, &idx);
		if (ok)
			v = idx;
		break;
	case CONFIG_LOG_LEVEL:
		if (!parse_name(value, level_names, sizeof(level_names) / sizeof(level_names[0]),
				&idx))
			break;
		*(enum log_level *)(void *)((char *)cfg + p->offset) = (enum log_level)idx;
		return true;
	case CONFIG_LOG_TARGET:
		if (!parse_name(value, target_names, sizeof(target_names) / sizeof(target_names[0]),
				&idx))
			break;
		*(enum config_log_target *)(void *)((char *)cfg + p->offset) =
			(enum config_log_target)idx;
		return true;
	}
	if (!ok) {
		snprintf(why, whylen, "\"%.100s\": %s", value, type_hint(p->type));
		return false;
	}
	if (v < p->min || v > p->max || v > UINT32_MAX) {
		char lo[32], hi[32];
		format_bound(p, p->min, lo, sizeof(lo));
		format_bound(p, p->max, hi, sizeof(hi));
		snprintf(why, whylen, "\"%.100s\" is out of range %s..%s", value, lo, hi);
		return false;
	}
	*uint_field(cfg, p) = (unsigned)v;
	return true;
}

/* validate - rules that involve more than one key */
static bool validate(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->database[0] == '\0') {
		snprintf(err, errlen, "database: must not be empty");
		return false;
	}
	if (!cfg->socketmap_listen[0] && !cfg->policy_listen[0] && !cfg->dict_listen[0] &&
	    !cfg->dict_quota_listen[0]) {
		snprintf(err, errlen,
			 "no listeners: set socketmap_listen (or policy_listen, dict_listen)");
		return false;
	}
	if (cfg->policy_full_action_code != 452 && cfg->policy_full_action_code != 552) {
		snprintf(err, errlen, "policy_full_action_code: must be 452 or 552, not %u",
			 cfg->policy_full_action_code);
		return false;
	}
	if (cfg->group[0] && !cfg->user[0]) {
		snprintf(err, errlen, "group: set only together with user");
		return false;
	}
	/* The same address twice over different services would fail at bind time. */
	const char *lists[] = { cfg->socketmap_listen, cfg->policy_listen, cfg->dict_listen,
				cfg->dict_quota_listen };
	const size_t nlists = sizeof(lists) / sizeof(lists[0]);
	struct endpoint_list a, b;
	char tmp[256];
	for (size_t i = 0; i < nlists; i++) {
		if (!endpoint_parse_list(lists[i], &a, tmp, sizeof(tmp)))
			return false;
		for (size_t j = i + 1; j < nlists; j++) {
			if (!endpoint_parse_list(lists[j], &b, tmp, sizeof(tmp)))
				return false;
			for (size_t x = 0; x < a.count; x++)
				for (size_t y = 0; y < b.count; y++)
					if (strcmp(a.items[x].text, b.items[y].text) == 0) {
						snprintf(err, errlen, "%s is used by two services",
							 a.items[x].text);
						return false;
					}
		}
	}
	return true;
}

static bool parse_cfgfile(struct cfgfile *cf, void *dest, char *err, size_t errlen)
{
	struct config *out = dest;
	char why[300];
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < NPARAMS; i++) {
		const struct config_param *p = &params[i];
		const char *value = cfgfile_get(cf, p->name);
		unsigned line = 0;
		if (value) {
			for (size_t k = 0; k < cf->count; k++)
				if (strcmp(cf->entries[k].key, p->name) == 0)
					line = cf->entries[k].line;
		} else if (p->flags & CONFIG_REQUIRED) {
			snprintf(err, errlen, "%s: required key is missing", p->name);
			goto fail;
		} else {
			value = p->def;
		}
		if (!set_value(out, p, value, why, sizeof(why))) {
			if (line)
				snprintf(err, errlen, "line %u: %s: %s", line, p->name, why);
			else
				snprintf(err, errlen, "default of %s: %s", p->name, why);
			goto fail;
		}
	}
	const struct cfgfile_entry *unused = cfgfile_first_unused(cf);
	if (unused) {
		snprintf(err, errlen, "line %u: unknown key \"%.64s\"", unused->line, unused->key);
		goto fail;
	}
	if (!validate(out, err, errlen))
		goto fail;
	return true;
fail:
	config_free(out);
	return false;
}

bool config_parse(const char *buf, size_t len, struct config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return cfgfile_parse_into(buf, len, parse_cfgfile, out, err, errlen);
}

bool config_load(const char *path, struct config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return cfgfile_load_into(path, parse_cfgfile, out, err, errlen);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NPARAMS; i++) {
		if (params[i].type == CONFIG_STRING) {
			free(*str_field(cfg, &params[i]));
			*str_field(cfg, &params[i]) = NULL;
		}
	}
}

static bool value_equal(const struct config *a, const struct config *b,
			const struct config_param *p)
{
	if (p->type == CONFIG_STRING) {
		const char *const *x = field_c(a, p), *const *y = field_c(b, p);
		return strcmp(*x, *y) == 0;
	}
	/* Every non-string field is an unsigned or an enum of the same size. */
	return memcmp(field_c(a, p), field_c(b, p), sizeof(unsigned)) == 0;
}

unsigned config_keep_fixed(const struct config *old, struct config *fresh,
			   void (*report)(const char *key, void *arg), void *arg)
{
	unsigned changed = 0;
	for (size_t i = 0; i < NPARAMS; i++) {
		const struct config_param *p = &params[i];
		if (p->flags & CONFIG_RELOAD || value_equal(old, fresh, p))
			continue;
		changed++;
		if (report)
			report(p->name, arg);
		if (p->type == CONFIG_STRING) {
			char *copy = strdup(*(char *const *)field_c(old, p));
			if (copy) {
				free(*str_field(fresh, p));
				*str_field(fresh, p) = copy;
			}
		} else {
			memcpy((char *)fresh + p->offset, field_c(old, p), sizeof(unsigned));
		}
	}
	return changed;
}

void config_format_value(const struct config *cfg, const struct config_param *p, char *out,
			 size_t outlen)
{
	const void *f = field_c(cfg, p);
	switch (p->type) {
	case CONFIG_STRING:
		snprintf(out, outlen, "%s", *(char *const *)f);
		break;
	case CONFIG_LOG_LEVEL:
		snprintf(out, outlen, "%s", level_names[*(const enum log_level *)f]);
		break;
	case CONFIG_LOG_TARGET:
		snprintf(out, outlen, "%s", target_names[*(const enum config_log_target *)f]);
		break;
	case CONFIG_BOOL:
		snprintf(out, outlen, "%s", bool_names[*(const unsigned *)f != 0]);
		break;
	default:
		format_bound(p, *(const unsigned *)f, out, outlen);
		break;
	}
}
