/* config: the vmaild configuration (vmaild.conf), one conftab table shared by vmaild and vmailctl. */
#ifndef VMAIL_CONFIG_H
#define VMAIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "vmail/log.h"

enum config_log_target {
	CONFIG_LOG_STDERR,
	CONFIG_LOG_SYSLOG,
};

/*
 * Owner, group and mode of one service's unix sockets (<service>_socket_owner,
 * _group, _mode).  "" and CONFTAB_UNSET: take socket_owner, socket_group and
 * socket_mode.  Postfix and Dovecot need different ones from one vmaild.
 */
struct config_socket {
	char *owner;
	char *group;
	unsigned mode;
};

/*
 * One field per key of the table in config.c.  Durations are milliseconds,
 * sizes bytes.  Strings are never NULL: an unset key holds its default ("" for
 * "off").  Only config_load/config_parse fill it and config_free releases it.
 */
struct config {
	char *database;
	char *database_primary; /* "": derived from database when it asks for a standby */
	char *socketmap_listen;
	char *policy_listen;
	char *dict_listen;
	char *dict_quota_listen;
	struct config_socket socketmap_socket;
	struct config_socket policy_socket;
	struct config_socket dict_socket;
	struct config_socket dict_quota_socket; /* its mode defaults to 0666, not socket_mode */
	char *dict_auth_names;
	char *dict_quota_names;
	char *dict_account_names;
	char *dict_sieve_names;
	char *dict_trusted_users;
	char *state_directory;  /* the quota recount list's file; "" keeps it in memory */
	char *socket_owner;
	char *socket_group;
	unsigned socket_mode;
	char *user;
	char *group;
	/* vmailctl's DNS checks (domain verify/check); vmaild accepts and ignores them */
	char *dns_resolv_conf;
	char *dns_nameserver;
	unsigned dns_timeout;        /* ms */
	/* vmailctl usage recount's doveadm (an absolute path) and its -c file; vmaild ignores them */
	char *doveadm_path;
	char *doveadm_config;
	enum log_level log_level;
	enum config_log_target log_target;
	unsigned pg_pool_size;
	unsigned pg_primary_pool_size;
	unsigned pg_connect_timeout; /* ms */
	unsigned request_timeout;    /* ms */
	unsigned shutdown_timeout;   /* ms: the drain after SIGTERM */
	unsigned shutdown_commit_grace; /* ms: a stop waits this for the commit after a counter lookup */
	unsigned max_connections;
	/* per service, within max_connections */
	unsigned socketmap_max_connections;
	unsigned policy_max_connections;
	unsigned dict_max_connections;
	unsigned dict_quota_max_connections;
	unsigned dict_quota_max_connections_per_uid; /* 0: no per-uid cap */
	unsigned metrics_max_connections;
	unsigned idle_timeout;       /* ms */
	unsigned max_pipelined;
	unsigned max_output_buffer;  /* bytes */
	unsigned policy_full_action_code; /* 452 or 552 */
	unsigned policy_fail_open;        /* bool */
	unsigned policy_check_sender;     /* bool */
	unsigned cache_size;              /* bytes, 0 = no answer cache */
	unsigned cache_ttl;               /* ms */
	unsigned cache_negative_ttl;      /* ms */
	unsigned cache_stale_ttl;         /* ms */
	char *metrics_listen;
};

struct conftab;

/* config_table - the key table itself (docs, tests, -t output and the reload diff walk it) */
const struct conftab *config_table(void);

/*
 * config_parse - parse a file image into *out (defaults first, then the file),
 * validate every value and the cross-key rules.  Unknown keys, duplicate keys,
 * bad values and missing required keys fail with "line N: key: why" in err.
 * On failure *out is left empty (safe to config_free).
 */
bool config_parse(const char *buf, size_t len, struct config *out, char *err, size_t errlen);
/* config_load - the same for a file on disk; err is prefixed with the path */
bool config_load(const char *path, struct config *out, char *err, size_t errlen);
/*
 * config_load_keys - how vmailctl reads the file it shares with vmaild: only
 * the keys named in the NULL-terminated list, each through its row (vmaild's
 * syntax and bounds); every other field holds its default ("" for database),
 * other keys (unknown ones too) are not looked at and no cross-key rule runs.
 */
bool config_load_keys(const char *path, const char *const *keys, struct config *out, char *err,
		      size_t errlen);
void config_free(struct config *cfg);

/*
 * config_socket_resolve - one service's socket settings with what it leaves
 * unset taken from socket_owner, socket_group and socket_mode; out's strings
 * point into cfg (owner and group may still be "": the user's, the group's).
 */
void config_socket_resolve(const struct config *cfg, const struct config_socket *s,
			   struct config_socket *out);

/*
 * config_keep_fixed - for a reload: copy every key without CONFTAB_RELOAD from
 * old into fresh, calling report(key, arg) for each one whose value differed
 * (the caller logs "cannot change on reload").  Returns how many differed.
 */
unsigned config_keep_fixed(const struct config *old, struct config *fresh,
			   void (*report)(const char *key, void *arg), void *arg);

#endif
