/*
 * sdlisten: systemd socket activation, the receiving side.  systemd binds
 * the sockets (as root, with the owner and mode of the .socket unit, e.g. in
 * Postfix's private/ directory) and starts vmaild with them as descriptors 3,
 * 4, ...; vmaild itself then needs no privilege at all.  The environment is
 * parsed by a pure function; what was passed is kept in one process-wide
 * table, since inherited descriptors are process-wide too.
 */
#include "vmail/sdlisten.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmail/log.h"

static struct sdlisten sd_passed;
static bool sd_initialised;

static int sd_fail(char *err, size_t errlen, const char *fmt, ...) VMAIL_PRINTF(3, 4);

/* sd_fail - format the reason into err; always -1 */
static int sd_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* parse_decimal - a plain positive decimal number below limit (no sign, no blanks) */
static bool parse_decimal(const char *s, long limit, long *out)
{
	long v = 0;
	if (!s || *s < '0' || *s > '9')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
		if (v > limit)
			return false;
	}
	*out = v;
	return true;
}

bool sdlisten_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > SDLISTEN_MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= 0x20 || c >= 0x7f || c == ':' || c == ',')
			return false;
	}
	return true;
}

int sdlisten_parse(const char *pid, const char *fds, const char *names, long self,
		   struct sdlisten *out, char *err, size_t errlen)
{
	long p, n;
	memset(out, 0, sizeof(*out));
	if (!pid || !fds)
		return 0;
	if (!parse_decimal(pid, INT_MAX, &p))
		return sd_fail(err, errlen, "LISTEN_PID=\"%.32s\": not a process id", pid);
	if (p != self)
		return 0; /* meant for the process that started us, e.g. a wrapper */
	if (!parse_decimal(fds, INT_MAX, &n))
		return sd_fail(err, errlen, "LISTEN_FDS=\"%.32s\": not a number", fds);
	if (n > SDLISTEN_MAX)
		return sd_fail(err, errlen, "LISTEN_FDS=%.32s: more descriptors than vmaild takes",
			       fds);
	const char *s = names;
	for (long i = 0; i < n; i++) {
		struct sdlisten_fd *it = &out->items[i];
		it->fd = SDLISTEN_FD_START + (int)i;
		if (!names) {
			snprintf(it->name, sizeof(it->name), "unknown");
			continue;
		}
		const char *colon = strchr(s, ':');
		size_t len = colon ? (size_t)(colon - s) : strlen(s);
		if (!colon && i + 1 < n) {
			memset(out, 0, sizeof(*out));
			return sd_fail(err, errlen, "LISTEN_FDNAMES=\"%.200s\": fewer names than "
						    "LISTEN_FDS", names);
		}
		if (len > SDLISTEN_MAX_NAME) {
			memset(out, 0, sizeof(*out));
			return sd_fail(err, errlen, "LISTEN_FDNAMES=\"%.200s\": name too long", names);
		}
		memcpy(it->name, s, len);
		it->name[len] = '\0';
		s = colon ? colon + 1 : s + len;
		if (i + 1 == n && colon) {
			memset(out, 0, sizeof(*out));
			return sd_fail(err, errlen, "LISTEN_FDNAMES=\"%.200s\": more names than "
						    "LISTEN_FDS", names);
		}
	}
	if (n == 0 && names && *names) {
		memset(out, 0, sizeof(*out));
		return sd_fail(err, errlen, "LISTEN_FDNAMES=\"%.200s\": names without LISTEN_FDS",
			       names);
	}
	out->count = (unsigned)n;
	return n > 0 ? 1 : 0;
}

bool sdlisten_init(char *err, size_t errlen)
{
	if (sd_initialised)
		return true;
	int rc = sdlisten_parse(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
				getenv("LISTEN_FDNAMES"), (long)getpid(), &sd_passed, err, errlen);
	if (rc < 0)
		return false;
	sd_initialised = true;
	if (rc > 0) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
	for (unsigned i = 0; i < sd_passed.count; i++) {
		int fd = sd_passed.items[i].fd;
		int flags = fcntl(fd, F_GETFD);
		if (flags < 0) {
			snprintf(err, errlen, "LISTEN_FDS: descriptor %d (%s) is not open", fd,
				 sd_passed.items[i].name);
			return false;
		}
		fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
		log_debug("systemd passed descriptor %d named \"%s\"", fd, sd_passed.items[i].name);
	}
	return true;
}

unsigned sdlisten_count(void)
{
	return sd_passed.count;
}

/* check_listener - what a listener must be: a listening stream socket, made non-blocking */
static bool check_listener(int fd, const char *name, char *err, size_t errlen)
{
	struct stat st;
	int type = 0, acc = 0;
	socklen_t len = sizeof(type), alen = sizeof(acc);
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "systemd:%s: descriptor %d is not a socket", name, fd);
		return false;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) < 0 || !acc) {
		snprintf(err, errlen, "systemd:%s: descriptor %d is not a listening stream socket "
				      "(use ListenStream= and Accept=no)", name, fd);
		return false;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "systemd:%s: cannot make descriptor %d non-blocking: %s", name,
			 fd, strerror(errno));
		return false;
	}
	return true;
}

int sdlisten_take(const char *name, char *err, size_t errlen)
{
	bool seen = false;
	for (unsigned i = 0; i < sd_passed.count; i++) {
		struct sdlisten_fd *it = &sd_passed.items[i];
		if (strcmp(it->name, name) != 0)
			continue;
		seen = true;
		if (it->taken)
			continue;
		if (!check_listener(it->fd, name, err, errlen))
			return -1;
		it->taken = true;
		return it->fd;
	}
	if (seen)
		snprintf(err, errlen, "systemd:%s: every descriptor by that name is already in use",
			 name);
	else if (sd_passed.count == 0)
		snprintf(err, errlen, "systemd:%s: not started by systemd with sockets (LISTEN_FDS "
				      "unset; is the .socket unit enabled?)", name);
	else
		snprintf(err, errlen, "systemd:%s: no socket unit with FileDescriptorName=%s was "
				      "passed", name, name);
	return -1;
}

unsigned sdlisten_close_unused(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < sd_passed.count; i++) {
		struct sdlisten_fd *it = &sd_passed.items[i];
		if (it->taken)
			continue;
		log_warning("systemd passed a socket named \"%s\" (descriptor %d) that no "
			    "*_listen setting uses; closing it", it->name, it->fd);
		close(it->fd);
		it->taken = true;
		n++;
	}
	return n;
}
