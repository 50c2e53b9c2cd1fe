/* endpoint: listener address lists (pure parser) and the listening sockets they name. */
#define _GNU_SOURCE /* O_PATH, AT_EMPTY_PATH */
#include "vmail/endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmail/sdlisten.h"

static bool ep_fail(char *err, size_t errlen, const char *item, size_t len, const char *why)
{
	snprintf(err, errlen, "\"%.*s\": %s", (int)(len > 200 ? 200 : len), item, why);
	return false;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool parse_port(const char *s, size_t len, unsigned *port)
{
	unsigned v = 0;
	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = v;
	return true;
}

static bool host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == ':' || c == '*' || c == '%' || c == '_';
}

/* parse_one - one trimmed, non-empty item */
static bool parse_one(const char *s, size_t len, struct endpoint *ep, char *err, size_t errlen)
{
	memset(ep, 0, sizeof(*ep));
	if (len > 5 && memcmp(s, "unix:", 5) == 0) {
		const char *p = s + 5;
		size_t plen = len - 5;
		if (p[0] != '/')
			return ep_fail(err, errlen, s, len, "unix socket path must be absolute");
		if (plen > ENDPOINT_MAX_PATH)
			return ep_fail(err, errlen, s, len, "unix socket path too long");
		if (memchr(p, ',', plen) || memchr(p, ' ', plen))
			return ep_fail(err, errlen, s, len, "unix socket path contains a comma or space");
		ep->kind = ENDPOINT_UNIX;
		memcpy(ep->path, p, plen);
		ep->path[plen] = '\0';
		snprintf(ep->text, sizeof(ep->text), "unix:%.*s", (int)plen, p);
		return true;
	}
	if (len > 5 && memcmp(s, "inet:", 5) == 0) {
		const char *h = s + 5;
		size_t rest = len - 5;
		const char *host;
		size_t hlen;
		const char *portp;
		if (h[0] == '[') {
			const char *close = memchr(h, ']', rest);
			if (!close)
				return ep_fail(err, errlen, s, len, "missing ']' after IPv6 address");
			host = h + 1;
			hlen = (size_t)(close - host);
			if (close + 1 >= h + rest || close[1] != ':')
				return ep_fail(err, errlen, s, len, "expected ':PORT' after ']'");
			portp = close + 2;
		} else {
			const char *colon = NULL;
			for (size_t i = rest; i > 0; i--) {
				if (h[i - 1] == ':') {
					colon = h + i - 1;
					break;
				}
			}
			if (!colon)
				return ep_fail(err, errlen, s, len, "expected inet:HOST:PORT");
			host = h;
			hlen = (size_t)(colon - h);
			if (memchr(host, ':', hlen))
				return ep_fail(err, errlen, s, len,
					       "IPv6 addresses must be written in brackets: inet:[::1]:PORT");
			portp = colon + 1;
		}
		if (hlen == 0)
			return ep_fail(err, errlen, s, len, "empty host (use * for all addresses)");
		if (hlen > ENDPOINT_MAX_HOST)
			return ep_fail(err, errlen, s, len, "host name too long");
		for (size_t i = 0; i < hlen; i++)
			if (!host_char_ok(host[i]))
				return ep_fail(err, errlen, s, len, "bad character in host");
		if (!parse_port(portp, (size_t)(s + len - portp), &ep->port))
			return ep_fail(err, errlen, s, len, "port must be 1..65535");
		ep->kind = ENDPOINT_INET;
		memcpy(ep->host, host, hlen);
		ep->host[hlen] = '\0';
		if (memchr(host, ':', hlen))
			snprintf(ep->text, sizeof(ep->text), "inet:[%.*s]:%u", (int)hlen, host,
				 ep->port);
		else
			snprintf(ep->text, sizeof(ep->text), "inet:%.*s:%u", (int)hlen, host, ep->port);
		return true;
	}
	if (len > 8 && memcmp(s, "systemd:", 8) == 0) {
		if (!sdlisten_name_valid(s + 8, len - 8))
			return ep_fail(err, errlen, s, len, "systemd: name must be 1..255 printable "
							  "characters without ':' ','");
		ep->kind = ENDPOINT_SYSTEMD;
		memcpy(ep->name, s + 8, len - 8);
		ep->name[len - 8] = '\0';
		/* From s, not ep->name: gcc -Wrestrict cannot tell two fields of *ep apart. */
		snprintf(ep->text, sizeof(ep->text), "systemd:%.*s", (int)(len - 8), s + 8);
		return true;
	}
	return ep_fail(err, errlen, s, len, "expected unix:PATH, inet:HOST:PORT or systemd:NAME");
}

bool endpoint_parse_list(const char *spec, struct endpoint_list *out, char *err, size_t errlen)
{
	out->count = 0;
	const char *p = spec;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *b = p, *e = end;
		while (b < e && is_blank(*b))
			b++;
		while (e > b && is_blank(e[-1]))
			e--;
		if (b == e) {
			/* "" is an empty list; "a,,b" or a trailing comma is a typo. */
			if (comma || out->count > 0) {
				snprintf(err, errlen, "empty item in endpoint list");
				return false;
			}
		} else {
			if (out->count == ENDPOINT_MAX) {
				snprintf(err, errlen, "more than %d endpoints", ENDPOINT_MAX);
				return false;
			}
			struct endpoint *ep = &out->items[out->count];
			if (!parse_one(b, (size_t)(e - b), ep, err, errlen))
				return false;
			for (size_t i = 0; i < out->count; i++) {
				if (strcmp(out->items[i].text, ep->text) == 0) {
					snprintf(err, errlen, "%s listed twice", ep->text);
					return false;
				}
			}
			out->count++;
		}
		if (!comma)
			return true;
		p = comma + 1;
	}
}

static int sock_fail(int fd, char *err, size_t errlen, const char *what, const char *name)
{
	int saved = errno;
	snprintf(err, errlen, "%s %s: %s", what, name, strerror(saved));
	if (fd >= 0)
		close(fd);
	errno = saved;
	return -1;
}

/*
 * unix_clear_stale - remove path if it is a socket left by a dead process.
 * A live listener means another vmaild (or something else) owns the name; we
 * must not steal it.
 */
static bool unix_clear_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return true;
		sock_fail(-1, err, errlen, "cannot stat", path);
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; not removing it", path);
		return false;
	}
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		memcpy(sun.sun_path, path, strlen(path) + 1);
		int rc = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
		close(probe);
		if (rc == 0) {
			snprintf(err, errlen, "%s: another process is listening on it", path);
			return false;
		}
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		sock_fail(-1, err, errlen, "cannot remove stale socket", path);
		return false;
	}
	return true;
}

bool endpoint_unix_set_perms(const char *path, const struct endpoint_perms *perms, char *err,
			     size_t errlen)
{
	if (perms->owner == (uid_t)-1 && perms->group == (gid_t)-1)
		return true;
	/*
	 * Whoever can write the directory may have swapped the socket for a
	 * symlink or a hard link since bind().  O_PATH|O_NOFOLLOW pins the inode
	 * the name has now; only if that is a socket is it chowned, through the
	 * descriptor, so no later swap redirects the chown either.
	 */
	int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0) {
		sock_fail(-1, err, errlen, "cannot open", path);
		return false;
	}
	struct stat st;
	if (fstat(pfd, &st) < 0) {
		sock_fail(pfd, err, errlen, "cannot stat", path);
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		close(pfd);
		snprintf(err, errlen, "%s: replaced by something that is not a socket after bind; "
				      "not changing its owner", path);
		return false;
	}
	if (fchownat(pfd, "", perms->owner, perms->group, AT_EMPTY_PATH) < 0) {
		sock_fail(pfd, err, errlen, "chown", path);
		return false;
	}
	close(pfd);
	return true;
}

static int listen_unix(const struct endpoint *ep, const struct endpoint_perms *perms, int backlog,
		       char *err, size_t errlen)
{
	if (!unix_clear_stale(ep->path, err, errlen))
		return -1;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	/*
	 * Bound under a temporary name and renamed into place once it listens:
	 * between bind() and listen() a client that found the name (a test
	 * waiting for it, Postfix starting beside us) would be refused and take
	 * the service for down.  A path too long for the extra suffix is bound
	 * in place, as before.
	 */
	int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.new", ep->path);
	bool staged = n > 0 && (size_t)n < sizeof(sun.sun_path);
	if (!staged)
		memcpy(sun.sun_path, ep->path, strlen(ep->path) + 1);
	const char *bound = sun.sun_path;
	if (staged && !unix_clear_stale(bound, err, errlen))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sock_fail(-1, err, errlen, "socket", ep->text);
	/*
	 * The socket is born with its final mode: a chmod by path afterwards
	 * would follow a symlink planted in its place, and fchmod on a socket
	 * descriptor does not reach the file.  umask is process-wide; this runs
	 * while the daemon is still single-threaded (startup, before any worker
	 * thread exists).
	 */
	mode_t mode = perms ? (mode_t)(perms->mode & 0777) : 0600;
	mode_t old_umask = umask(~mode & 0777);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (rc < 0)
		return sock_fail(fd, err, errlen, "bind", ep->text);
	const char *what = NULL; /* the step that failed; "" when it wrote err itself */
	if (perms && !endpoint_unix_set_perms(bound, perms, err, errlen))
		what = "";
	else if (listen(fd, backlog) < 0)
		what = "listen";
	else if (staged && rename(bound, ep->path) < 0)
		what = "rename";
	if (what) {
		if (*what)
			sock_fail(-1, err, errlen, what, ep->text);
		unlink(bound);
		close(fd);
		return -1;
	}
	return fd;
}

static int listen_inet(const struct endpoint *ep, int backlog, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	char port[8];
	snprintf(port, sizeof(port), "%u", ep->port);
	const char *host = strcmp(ep->host, "*") == 0 ? NULL : ep->host;
	if (!host)
		hints.ai_family = AF_INET;
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "%s: %s", ep->text, gai_strerror(gai));
		return -1;
	}
	/* A name may resolve to several addresses; the first one that binds wins. */
	int fd = -1;
	snprintf(err, errlen, "%s: no usable address", ep->text);
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			sock_fail(-1, err, errlen, "socket", ep->text);
			continue;
		}
		int one = 1;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
			fd = sock_fail(fd, err, errlen, "bind/listen", ep->text);
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	return fd;
}

int endpoint_listen(const struct endpoint *ep, const struct endpoint_perms *perms, int backlog,
		    char *err, size_t errlen)
{
	if (ep->kind == ENDPOINT_UNIX)
		return listen_unix(ep, perms, backlog, err, errlen);
	if (ep->kind == ENDPOINT_SYSTEMD)
		return sdlisten_take(ep->name, err, errlen);
	return listen_inet(ep, backlog, err, errlen);
}
