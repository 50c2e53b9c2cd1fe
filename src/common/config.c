/* config: the vmaild.conf key table (rows on conftab), its cross-key rules and readers. */
#include "vmail/config.h"

#include <stdio.h>
#include <string.h>

#include "vmail/cfgfile.h"
#include "vmail/conftab.h"
#include "vmail/endpoint.h"

#define OFF(field) offsetof(struct config, field)
#define DAY_MS (24UL * 3600 * 1000)

/* A service's socket owner and group; "" takes socket_owner, socket_group. */
#define SOCKET_ROWS(svc, listen)                                                         \
	{ #svc "_socket_owner", CONFTAB_STRING, OFF(svc##_socket.owner), "", 0, 0, 0,     \
	  "owner of the " listen " unix sockets (default: socket_owner)" },               \
	{ #svc "_socket_group", CONFTAB_STRING, OFF(svc##_socket.group), "", 0, 0, 0,     \
	  "group of the " listen " unix sockets (default: socket_group)" }
/* Its mode; "" takes socket_mode. */
#define SOCKET_MODE_ROW(svc, listen)                                                     \
	{ #svc "_socket_mode", CONFTAB_MODE, OFF(svc##_socket.mode), "", 0, 0777,         \
	  CONFTAB_EMPTY_UNSET, "mode of the " listen " unix sockets (default: socket_mode)" }

/*
 * The one place that says which keys exist.  Defaults are written in file
 * syntax and go through the same parsers as the file, so a default can never
 * disagree with its bounds.  docs/configuration.md and vmaild.conf(5) follow
 * this table row by row.  vmailctl reads the same file through it.
 */
static const struct conftab_row rows[] = {
	{ "database", CONFTAB_STRING, OFF(database), NULL, 0, 0,
	  CONFTAB_REQUIRED | CONFTAB_RELOAD | CONFTAB_SECRET,
	  "libpq connection string" },
	{ "database_primary", CONFTAB_STRING, OFF(database_primary), "", 0, 0,
	  CONFTAB_RELOAD | CONFTAB_SECRET,
	  "libpq connection string for writes and LISTEN (default: database, with "
	  "target_session_attrs=read-write when database asks for a standby)" },
	{ "socketmap_listen", CONFTAB_ENDPOINTS, OFF(socketmap_listen), "", 0, 0, 0,
	  "Postfix socketmap listeners: unix:PATH, inet:HOST:PORT, comma-separated" },
	{ "policy_listen", CONFTAB_ENDPOINTS, OFF(policy_listen), "", 0, 0, 0,
	  "Postfix policy delegation listeners (quota at RCPT and END-OF-MESSAGE)" },
	{ "dict_listen", CONFTAB_ENDPOINTS, OFF(dict_listen), "", 0, 0, 0,
	  "Dovecot dict listeners for passdb/userdb (unix: only; trusted peers only)" },
	{ "dict_quota_listen", CONFTAB_ENDPOINTS, OFF(dict_quota_listen), "", 0, 0, 0,
	  "Dovecot dict listeners for quota (unix: only; any uid, own users' counters only)" },
	/* Per service: Postfix wants postfix 0600, Dovecot's auth root 0600, its mail 0666. */
	SOCKET_ROWS(socketmap, "socketmap_listen"),
	SOCKET_MODE_ROW(socketmap, "socketmap_listen"),
	SOCKET_ROWS(policy, "policy_listen"),
	SOCKET_MODE_ROW(policy, "policy_listen"),
	SOCKET_ROWS(dict, "dict_listen"),
	SOCKET_MODE_ROW(dict, "dict_listen"),
	SOCKET_ROWS(dict_quota, "dict_quota_listen"),
	{ "dict_quota_socket_mode", CONFTAB_MODE, OFF(dict_quota_socket.mode), "0666", 0, 0777, 0,
	  "mode of the dict_quota_listen sockets (mail processes run as every shell account)" },
	{ "dict_auth_names", CONFTAB_STRING, OFF(dict_auth_names), "auth", 0, 0, 0,
	  "dict names answered on dict_listen (passdb/userdb)" },
	{ "dict_quota_names", CONFTAB_STRING, OFF(dict_quota_names), "quota, quotaclone", 0, 0, 0,
	  "dict names of the mailbox quota root and quota_clone on dict_quota_listen" },
	{ "dict_account_names", CONFTAB_STRING, OFF(dict_account_names), "group", 0, 0, 0,
	  "dict names of the read-only shell-account root on dict_quota_listen" },
	{ "dict_sieve_names", CONFTAB_STRING, OFF(dict_sieve_names), "sieve", 0, 0, 0,
	  "dict names of Pigeonhole's Sieve script storage, on dict_quota_listen and dict_listen" },
	{ "state_directory", CONFTAB_STRING, OFF(state_directory), "/var/lib/vmaild", 0, 0, 0,
	  "where vmaild keeps the mailboxes to recount until the database takes them (\"\": memory only)" },
	{ "dict_trusted_users", CONFTAB_STRING, OFF(dict_trusted_users), "dovecot", 0, 0, 0,
	  "peers besides root served everything: user names, uids, @group" },
	{ "socket_owner", CONFTAB_STRING, OFF(socket_owner), "", 0, 0, 0,
	  "owner of unix sockets (default: user)" },
	{ "socket_group", CONFTAB_STRING, OFF(socket_group), "", 0, 0, 0,
	  "group of unix sockets (default: group)" },
	{ "socket_mode", CONFTAB_MODE, OFF(socket_mode), "0660", 0, 0777, 0,
	  "mode of unix sockets, octal" },
	{ "user", CONFTAB_STRING, OFF(user), "", 0, 0, 0,
	  "user to run as after binding (required when started as root)" },
	{ "group", CONFTAB_STRING, OFF(group), "", 0, 0, 0,
	  "group to run as (default: the user's primary group)" },
	{ "dns_resolv_conf", CONFTAB_STRING, OFF(dns_resolv_conf), "/etc/resolv.conf", 0, 0,
	  CONFTAB_RELOAD, "vmailctl domain verify/check: nameservers from this file (vmaild ignores it)" },
	{ "dns_nameserver", CONFTAB_STRING, OFF(dns_nameserver), "", 0, 0, CONFTAB_RELOAD,
	  "vmailctl domain verify/check: IP[:PORT] list used instead of dns_resolv_conf" },
	{ "dns_timeout", CONFTAB_DURATION, OFF(dns_timeout), "3s", 100, 60000, CONFTAB_RELOAD,
	  "vmailctl domain verify/check: wait this long for each nameserver" },
	{ "doveadm_path", CONFTAB_STRING, OFF(doveadm_path), "/usr/bin/doveadm", 0, 0, CONFTAB_RELOAD,
	  "vmailctl usage recount: the doveadm it runs, an absolute path (vmaild ignores it)" },
	{ "doveadm_config", CONFTAB_STRING, OFF(doveadm_config), "", 0, 0, CONFTAB_RELOAD,
	  "vmailctl usage recount: passed to doveadm as -c FILE (\"\": doveadm's own)" },
	{ "log_level", CONFTAB_LOG_LEVEL, OFF(log_level), "info", 0, 0, CONFTAB_RELOAD,
	  "error, warning, notice, info or debug" },
	{ "log_target", CONFTAB_LOG_TARGET, OFF(log_target), "stderr", 0, 0, CONFTAB_RELOAD,
	  "stderr or syslog (facility mail)" },
	{ "pg_pool_size", CONFTAB_UINT, OFF(pg_pool_size), "4", 1, 256, CONFTAB_RELOAD,
	  "PostgreSQL connections" },
	{ "pg_primary_pool_size", CONFTAB_UINT, OFF(pg_primary_pool_size), "2", 1, 256, CONFTAB_RELOAD,
	  "connections to the primary, when lookups read from a standby" },
	{ "pg_connect_timeout", CONFTAB_DURATION, OFF(pg_connect_timeout), "2s", 100, 600000,
	  CONFTAB_RELOAD, "limit for establishing one PostgreSQL connection" },
	{ "request_timeout", CONFTAB_DURATION, OFF(request_timeout), "3s", 10, 90000,
	  CONFTAB_RELOAD, "deadline for one lookup; past it the answer is a temporary failure" },
	{ "shutdown_timeout", CONFTAB_DURATION, OFF(shutdown_timeout), "10s", 0, 600000,
	  CONFTAB_RELOAD, "on SIGTERM, how long open dict transactions and lookups in flight may "
	  "take to finish; then the rest is closed" },
	{ "shutdown_commit_grace", CONFTAB_DURATION, OFF(shutdown_commit_grace), "2s", 0, 60000, 0,
	  "on SIGTERM, how long a quota connection that was answered a counter lookup waits for "
	  "the commit that follows it" },
	{ "max_connections", CONFTAB_UINT, OFF(max_connections), "1000", 1, 1000000,
	  CONFTAB_RELOAD, "client connections over all listeners" },
	{ "socketmap_max_connections", CONFTAB_UINT, OFF(socketmap_max_connections), "500", 1,
	  1000000, CONFTAB_RELOAD, "connections over the socketmap_listen sockets; more are "
	  "closed at accept" },
	{ "policy_max_connections", CONFTAB_UINT, OFF(policy_max_connections), "250", 1, 1000000,
	  CONFTAB_RELOAD, "connections over the policy_listen sockets" },
	{ "dict_max_connections", CONFTAB_UINT, OFF(dict_max_connections), "100", 1, 1000000,
	  CONFTAB_RELOAD, "connections over the dict_listen sockets (passdb/userdb)" },
	{ "dict_quota_max_connections", CONFTAB_UINT, OFF(dict_quota_max_connections), "500", 1,
	  1000000, CONFTAB_RELOAD, "connections over the dict_quota_listen sockets" },
	{ "dict_quota_max_connections_per_uid", CONFTAB_UINT,
	  OFF(dict_quota_max_connections_per_uid), "128", 0, 1000000, CONFTAB_RELOAD,
	  "connections one peer uid may hold on dict_quota_listen (root and dict_trusted_users "
	  "exempt); 0 = no per-uid cap" },
	{ "metrics_max_connections", CONFTAB_UINT, OFF(metrics_max_connections), "8", 1, 10000,
	  CONFTAB_RELOAD, "connections to metrics_listen; more are closed at accept" },
	{ "idle_timeout", CONFTAB_DURATION, OFF(idle_timeout), "60s", 100, DAY_MS, CONFTAB_RELOAD,
	  "close a client connection idle this long" },
	{ "max_pipelined", CONFTAB_UINT, OFF(max_pipelined), "64", 1, 100000, CONFTAB_RELOAD,
	  "unanswered requests per connection before reading pauses" },
	{ "max_output_buffer", CONFTAB_SIZE, OFF(max_output_buffer), "1M", 4096, 1UL << 30,
	  CONFTAB_RELOAD, "unsent reply bytes per connection before reading pauses" },
	{ "policy_full_action_code", CONFTAB_UINT, OFF(policy_full_action_code), "452", 452, 552,
	  CONFTAB_RELOAD, "policy reply for a full mailbox: 452 (4.2.2, retried) or 552 (5.2.2)" },
	{ "policy_fail_open", CONFTAB_BOOL, OFF(policy_fail_open), "no", 0, 1, CONFTAB_RELOAD,
	  "policy answers DUNNO instead of DEFER_IF_PERMIT when the database cannot answer" },
	{ "policy_check_sender", CONFTAB_BOOL, OFF(policy_check_sender), "no", 0, 1, CONFTAB_RELOAD,
	  "policy rejects SASL clients whose MAIL FROM they do not own (the sender map)" },
	{ "cache_size", CONFTAB_SIZE, OFF(cache_size), "64M", 0, 1UL << 31, CONFTAB_RELOAD,
	  "memory for cached lookup answers, index included; 0 disables the cache" },
	{ "cache_ttl", CONFTAB_DURATION, OFF(cache_ttl), "300s", 100, DAY_MS, CONFTAB_RELOAD,
	  "how long a positive answer is served from the cache" },
	{ "cache_negative_ttl", CONFTAB_DURATION, OFF(cache_negative_ttl), "10s", 100, DAY_MS,
	  CONFTAB_RELOAD, "how long a \"no such key\" from the database is served from the cache" },
	{ "cache_stale_ttl", CONFTAB_DURATION, OFF(cache_stale_ttl), "3600s", 0, 7 * DAY_MS,
	  CONFTAB_RELOAD, "how long past its expiry a positive answer of domain, alias, mailbox, "
	  "sender or userdb may be served while the database is unreachable" },
	{ "metrics_listen", CONFTAB_ENDPOINTS, OFF(metrics_listen), "", 0, 0, 0,
	  "Prometheus metrics over HTTP (GET /metrics), e.g. inet:127.0.0.1:9469; \"\" = off" },
};

static const struct conftab table = CONFTAB_TABLE(rows, false);

_Static_assert(sizeof(enum config_log_target) == sizeof(unsigned), "enum size");

const struct conftab *config_table(void)
{
	return &table;
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
	if (!conftab_apply(&table, cf, out, err, errlen))
		return false;
	if (!validate(out, err, errlen)) {
		config_free(out);
		return false;
	}
	return true;
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

/* What config_load_keys hands through cfgfile's apply callback. */
struct picked {
	struct config *cfg;
	const char *const *keys;
};

static bool apply_picked(struct cfgfile *cf, void *dest, char *err, size_t errlen)
{
	struct picked *p = dest;
	return conftab_apply_keys(&table, cf, p->cfg, p->keys, err, errlen);
}

bool config_load_keys(const char *path, const char *const *keys, struct config *out, char *err,
		      size_t errlen)
{
	struct picked p = { out, keys };
	memset(out, 0, sizeof(*out));
	return cfgfile_load_into(path, apply_picked, &p, err, errlen);
}

void config_free(struct config *cfg)
{
	conftab_free(&table, cfg);
}

void config_socket_resolve(const struct config *cfg, const struct config_socket *s,
			   struct config_socket *out)
{
	out->owner = s->owner[0] ? s->owner : cfg->socket_owner;
	out->group = s->group[0] ? s->group : cfg->socket_group;
	out->mode = s->mode != CONFTAB_UNSET ? s->mode : cfg->socket_mode;
}

unsigned config_keep_fixed(const struct config *old, struct config *fresh,
			   void (*report)(const char *key, void *arg), void *arg)
{
	return conftab_keep_fixed(&table, old, fresh, report, arg);
}
