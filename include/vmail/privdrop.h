/* privdrop: the one root policy and privilege drop shared by every program that starts as root. */
#ifndef VMAIL_PRIVDROP_H
#define VMAIL_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Test-only escape hatch: with this variable set to "1" a daemon keeps running
 * as root when no user is configured.  Never set it in production.
 */
#define PRIVDROP_ALLOW_ROOT_ENV "VMAILD_TEST_ALLOW_ROOT"

/*
 * Whom to run as, resolved once from the configuration before anything is
 * bound, and used after binding.  The key names are the program's own
 * ("user", "panel_user"), so every message names the key to fix.
 */
struct privdrop {
	const char *user_key;
	const char *group_key;
	bool drop;         /* a user is configured: switch to uid/gid */
	uid_t uid;
	gid_t gid;         /* the group, else the user's primary group */
};

/*
 * privdrop_find_user - a name to its uid (and primary gid when gid is not
 * NULL); false with "key: unknown user \"name\"" in err
 */
bool privdrop_find_user(const char *key, const char *name, uid_t *uid, gid_t *gid, char *err,
			size_t errlen);
/* privdrop_find_group - a name to its gid; false with "key: unknown group \"name\"" */
bool privdrop_find_group(const char *key, const char *name, gid_t *gid, char *err, size_t errlen);

#define PRIVDROP_MAX_IDS 32

/* A list of trusted peers: uids, and gids any of whose members is trusted. */
struct privdrop_ids {
	uid_t uid[PRIVDROP_MAX_IDS];
	size_t nuid;
	gid_t gid[PRIVDROP_MAX_IDS];
	size_t ngid;
};

/*
 * privdrop_ids_parse - "dovecot, 117 @mail": user names, numeric uids and
 * @group names (comma or blank separated) into ids, names resolved now;
 * false with "key: why" in err for an unknown name or more than
 * PRIVDROP_MAX_IDS of a kind.
 */
bool privdrop_ids_parse(struct privdrop_ids *ids, const char *key, const char *list, char *err,
			size_t errlen);
/* privdrop_ids_match - is uid listed, or gid one of the listed groups? */
bool privdrop_ids_match(const struct privdrop_ids *ids, uid_t uid, gid_t gid);

/*
 * privdrop_resolve - fill pd from the configured user and group (either may
 * be ""; the key names must outlive pd); false with err naming the key of an
 * unknown name.
 */
bool privdrop_resolve(struct privdrop *pd, const char *user_key, const char *user,
		      const char *group_key, const char *group, char *err, size_t errlen);

/* privdrop_root_allowed - PRIVDROP_ALLOW_ROOT_ENV is "1" (tests only) */
bool privdrop_root_allowed(void);

/*
 * privdrop_check - the root policy, before binding: started as root, a user
 * other than root must be configured (unless the test-only variable says
 * otherwise); not started as root, the configured ids must already be ours.
 * False with "refusing to run as root: ..." or "user/group: ..." in err.
 */
bool privdrop_check(const struct privdrop *pd, char *err, size_t errlen);

/*
 * privdrop_switch - as root with a user configured: setgroups, setresgid,
 * setresuid, each checked, then prove root cannot be regained.  Nothing to
 * do otherwise.  False with the failing call in err.
 */
bool privdrop_switch(const struct privdrop *pd, char *err, size_t errlen);

#endif
