/* purge: removing a retired mailbox's directory tree as root, never following a symlink. */
#ifndef VMAIL_PURGE_H
#define VMAIL_PURGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PURGE_PATH_MAX 4096
#define PURGE_MAX_DEPTH 64 /* deeper trees are refused (each level holds a descriptor) */

enum purge_status {
	PURGE_REMOVED, /* the tree is gone (or, dry run: would be removed) */
	PURGE_MISSING, /* nothing at the path: nothing to do */
	PURGE_REFUSED, /* the path or its top directory failed a check; nothing removed */
	PURGE_FAILED,  /* removal started and stopped on an error; part may be gone */
};

struct purge_result {
	enum purge_status status;
	uint64_t files;  /* non-directories (removed or, dry run, found) */
	uint64_t dirs;   /* directories, the top one included */
	uint64_t bytes;  /* sum of the files' sizes */
	char error[256]; /* REFUSED/FAILED: why */
};

/*
 * purge_path_ok - is path an absolute path of plain components ("/a/b"; no "/", no empty,
 * "." or ".." component, no trailing slash, no control character, below PURGE_PATH_MAX)?
 */
bool purge_path_ok(const char *path);

/*
 * purge_tree - remove the directory tree at path, whose top directory must be owned by uid.
 * Every component of path is opened with O_NOFOLLOW from "/", and everything below is
 * removed relative to directory descriptors (unlinkat), so a symlink anywhere — in the path
 * or inside the tree, even one swapped in meanwhile — is never followed: a symlink inside
 * is removed as a link, one in the path refuses.  The tree must not cross into another file
 * system; a directory replaced between its check and its opening is refused.  MISSING only
 * when the parent directory opened and the last component alone is absent; a missing
 * directory above it (an unmounted file system) is REFUSED.  dry_run counts what would go
 * and removes nothing.
 */
void purge_tree(const char *path, uid_t uid, bool dry_run, struct purge_result *out);

/*
 * purge_test_before_open - tests only (NULL otherwise): called between checking a directory
 * (fstatat) and opening it, to swap another one in; purge_tree must then refuse it.
 */
extern void (*purge_test_before_open)(int dfd, const char *name);

#endif
