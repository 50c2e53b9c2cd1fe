/* purge: removing a retired mailbox's directory tree as root, never following a symlink. */
#include "purge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

void (*purge_test_before_open)(int dfd, const char *name);

__attribute__((format(printf, 3, 4)))
static void set_error(struct purge_result *out, enum purge_status st, const char *fmt, ...)
{
	va_list ap;
	out->status = st;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
}

bool purge_path_ok(const char *path)
{
	size_t len = strnlen(path, PURGE_PATH_MAX);
	if (len == 0 || len >= PURGE_PATH_MAX || path[0] != '/' || path[len - 1] == '/')
		return false;
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (const char *c = path + 1;; ) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (c[n] == '\0')
			return true;
		c += n + 1;
	}
}

/*
 * The directory holding path's last component, opened component by component from "/"
 * with O_NOFOLLOW; *name points at that component in path.  -1 with errno on failure.
 */
static int open_parent(const char *path, const char **name)
{
	int fd = open("/", DIR_FLAGS);
	const char *c = path + 1;
	char part[PURGE_PATH_MAX];
	for (;;) {
		size_t n = strcspn(c, "/");
		if (c[n] == '\0' || fd < 0) {
			*name = c;
			return fd;
		}
		memcpy(part, c, n);
		part[n] = '\0';
		int next = openat(fd, part, DIR_FLAGS);
		int saved = errno;
		close(fd);
		errno = saved;
		fd = next;
		c += n + 1;
	}
}

/*
 * The directory name in dfd, opened only if it is still the one seen (by fstatat): a
 * directory or mount swapped in between is refused (-1, errno 0), not emptied.
 */
static int open_seen(int dfd, const char *name, const struct stat *seen)
{
	if (purge_test_before_open)
		purge_test_before_open(dfd, name);
	int fd = openat(dfd, name, DIR_FLAGS);
	struct stat now;
	if (fd < 0)
		return -1;
	if (fstat(fd, &now) < 0 || now.st_ino != seen->st_ino || now.st_dev != seen->st_dev) {
		close(fd);
		errno = 0;
		return -1;
	}
	return fd;
}

/* Removes (or counts) everything inside the directory dfd, on device dev. */
static bool empty_dir(int dfd, dev_t dev, int depth, bool dry_run, struct purge_result *out)
{
	if (depth > PURGE_MAX_DEPTH) {
		set_error(out, PURGE_FAILED, "deeper than %d levels", PURGE_MAX_DEPTH);
		return false;
	}
	int it = dup(dfd);
	DIR *d = it < 0 ? NULL : fdopendir(it);
	if (!d) {
		if (it >= 0)
			close(it);
		set_error(out, PURGE_FAILED, "cannot read a directory: %s", strerror(errno));
		return false;
	}
	bool ok = true;
	struct dirent *e;
	while (ok && (errno = 0, e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			set_error(out, PURGE_FAILED, "%s: %s", e->d_name, strerror(errno));
			ok = false;
		} else if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				set_error(out, PURGE_FAILED, "%s: another file system is mounted there", e->d_name);
				ok = false;
				break;
			}
			int sub = open_seen(dfd, e->d_name, &st);
			if (sub < 0) {
				set_error(out, PURGE_FAILED, "%s: %s", e->d_name,
					  errno ? strerror(errno) : "changed while being checked");
				ok = false;
				break;
			}
			ok = empty_dir(sub, dev, depth + 1, dry_run, out);
			close(sub);
			if (ok && !dry_run && unlinkat(dfd, e->d_name, AT_REMOVEDIR) < 0) {
				set_error(out, PURGE_FAILED, "%s: %s", e->d_name, strerror(errno));
				ok = false;
			}
			if (ok)
				out->dirs++;
		} else {
			if (!dry_run && unlinkat(dfd, e->d_name, 0) < 0) {
				set_error(out, PURGE_FAILED, "%s: %s", e->d_name, strerror(errno));
				ok = false;
			} else {
				out->files++;
				out->bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
			}
		}
	}
	if (ok && errno != 0) {
		set_error(out, PURGE_FAILED, "cannot read a directory: %s", strerror(errno));
		ok = false;
	}
	closedir(d);
	return ok;
}

/* The top directory, checked: a real directory owned by uid; -1 (out set) otherwise. */
static int open_top(int parent, const char *name, uid_t uid, struct purge_result *out)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			out->status = PURGE_MISSING;
		else
			set_error(out, PURGE_REFUSED, "%s", strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		set_error(out, PURGE_REFUSED, "not a directory (%s)", S_ISLNK(st.st_mode) ? "a symlink" : "a file");
		return -1;
	}
	if (st.st_uid != uid) {
		set_error(out, PURGE_REFUSED, "owned by uid %lu, not %lu", (unsigned long)st.st_uid,
			  (unsigned long)uid);
		return -1;
	}
	int fd = open_seen(parent, name, &st);
	if (fd < 0)
		set_error(out, PURGE_REFUSED, "changed while being checked");
	return fd;
}

void purge_tree(const char *path, uid_t uid, bool dry_run, struct purge_result *out)
{
	memset(out, 0, sizeof(*out));
	if (!purge_path_ok(path)) {
		set_error(out, PURGE_REFUSED, "not an absolute path without . and .. components");
		return;
	}
	const char *name;
	int parent = open_parent(path, &name);
	if (parent < 0) {
		/* Not MISSING: an unmounted /var/vmail or /home (automount) hides files that
		 * still exist, and a missing home is only forgotten when its parent is there. */
		set_error(out, PURGE_REFUSED, "%s", errno == ENOENT ? "a directory above it is missing (not mounted?)"
						     : errno == ELOOP || errno == ENOTDIR ? "a symlink or a file in the path"
											   : strerror(errno));
		return;
	}
	int top = open_top(parent, name, uid, out);
	if (top >= 0) {
		struct stat st;
		bool ok = fstat(top, &st) == 0;
		if (!ok)
			set_error(out, PURGE_FAILED, "%s", strerror(errno));
		else
			ok = empty_dir(top, st.st_dev, 1, dry_run, out);
		close(top);
		if (ok && !dry_run && unlinkat(parent, name, AT_REMOVEDIR) < 0) {
			set_error(out, PURGE_FAILED, "%s", strerror(errno));
			ok = false;
		}
		if (ok) {
			out->dirs++;
			out->status = PURGE_REMOVED;
		}
	}
	close(parent);
}
