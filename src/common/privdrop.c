/*
 * privdrop: user and group names to ids, the root policy and the drop
 * itself, written once for vmaild and vmail-panel.  Names are resolved
 * before binding so a typo stops the program before it touches a socket.
 */
#define _GNU_SOURCE /* setresuid, setresgid */
#include "vmail/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool privdrop_find_user(const char *key, const char *name, uid_t *uid, gid_t *gid, char *err,
			size_t errlen)
{
	struct passwd *pw = getpwnam(name);
	if (!pw) {
		snprintf(err, errlen, "%s: unknown user \"%s\"", key, name);
		return false;
	}
	*uid = pw->pw_uid;
	if (gid)
		*gid = pw->pw_gid;
	return true;
}

bool privdrop_find_group(const char *key, const char *name, gid_t *gid, char *err, size_t errlen)
{
	struct group *gr = getgrnam(name);
	if (!gr) {
		snprintf(err, errlen, "%s: unknown group \"%s\"", key, name);
		return false;
	}
	*gid = gr->gr_gid;
	return true;
}

bool privdrop_ids_parse(struct privdrop_ids *ids, const char *key, const char *list, char *err,
			size_t errlen)
{
	char tok[256];
	memset(ids, 0, sizeof(*ids));
	for (const char *p = list; *p;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		size_t n = 0;
		while (*p && *p != ',' && *p != ' ' && *p != '\t') {
			if (n + 1 < sizeof(tok))
				tok[n++] = *p;
			p++;
		}
		tok[n] = '\0';
		if (n == 0)
			continue;
		if (ids->nuid == PRIVDROP_MAX_IDS || ids->ngid == PRIVDROP_MAX_IDS) {
			snprintf(err, errlen, "%s: more than %d entries", key, PRIVDROP_MAX_IDS);
			return false;
		}
		if (tok[0] == '@') {
			if (!privdrop_find_group(key, tok + 1,
						 &ids->gid[ids->ngid], err, errlen))
				return false;
			ids->ngid++;
		} else if (strspn(tok, "0123456789") == n) {
			ids->uid[ids->nuid++] = (uid_t)strtoul(tok, NULL, 10);
		} else {
			if (!privdrop_find_user(key, tok,
						&ids->uid[ids->nuid], NULL, err, errlen))
				return false;
			ids->nuid++;
		}
	}
	return true;
}

bool privdrop_ids_match(const struct privdrop_ids *ids, uid_t uid, gid_t gid)
{
	for (size_t i = 0; i < ids->nuid; i++)
		if (ids->uid[i] == uid)
			return true;
	for (size_t i = 0; i < ids->ngid; i++)
		if (ids->gid[i] == gid)
			return true;
	return false;
}

bool privdrop_resolve(struct privdrop *pd, const char *user_key, const char *user,
		      const char *group_key, const char *group, char *err, size_t errlen)
{
	memset(pd, 0, sizeof(*pd));
	pd->user_key = user_key;
	pd->group_key = group_key;
	if (user[0]) {
		if (!privdrop_find_user(user_key, user, &pd->uid, &pd->gid, err, errlen))
			return false;
		pd->drop = true;
	}
	if (group[0] && !privdrop_find_group(group_key, group, &pd->gid, err, errlen))
		return false;
	return true;
}

bool privdrop_root_allowed(void)
{
	const char *allow = getenv(PRIVDROP_ALLOW_ROOT_ENV);
	return allow && strcmp(allow, "1") == 0;
}

bool privdrop_check(const struct privdrop *pd, char *err, size_t errlen)
{
	bool allow_root = privdrop_root_allowed();
	if (geteuid() == 0) {
		if (!pd->drop && !allow_root) {
			snprintf(err, errlen, "refusing to run as root: set %s (and %s) in the "
					      "configuration", pd->user_key, pd->group_key);
			return false;
		}
		if (pd->drop && pd->uid == 0 && !allow_root) {
			snprintf(err, errlen, "refusing to run as root: %s resolves to uid 0",
				 pd->user_key);
			return false;
		}
	} else if (pd->drop && (pd->uid != geteuid() || pd->gid != getegid())) {
		snprintf(err, errlen, "%s/%s: not running as root, so cannot switch to uid %u gid %u",
			 pd->user_key, pd->group_key, (unsigned)pd->uid, (unsigned)pd->gid);
		return false;
	}
	return true;
}

static bool failed(const char *call, unsigned id, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s(%u): %s", call, id, strerror(errno));
	return false;
}

bool privdrop_switch(const struct privdrop *pd, char *err, size_t errlen)
{
	if (!pd->drop || geteuid() != 0)
		return true;
	if (setgroups(1, &pd->gid) < 0)
		return failed("setgroups", (unsigned)pd->gid, err, errlen);
	if (setresgid(pd->gid, pd->gid, pd->gid) < 0)
		return failed("setresgid", (unsigned)pd->gid, err, errlen);
	if (setresuid(pd->uid, pd->uid, pd->uid) < 0)
		return failed("setresuid", (unsigned)pd->uid, err, errlen);
	if (pd->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "privilege drop did not stick: could regain root");
		return false;
	}
	return true;
}
