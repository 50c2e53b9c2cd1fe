/* endpoint: "unix:PATH" / "inet:HOST:PORT" / "systemd:NAME" listener addresses, and opening them. */
#ifndef VMAIL_ENDPOINT_H
#define VMAIL_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ENDPOINT_MAX 16      /* per list */
#define ENDPOINT_MAX_PATH 107 /* sun_path minus its NUL */
#define ENDPOINT_MAX_HOST 255

enum endpoint_kind {
	ENDPOINT_UNIX,
	ENDPOINT_INET,
	ENDPOINT_SYSTEMD, /* a socket passed by systemd, by FileDescriptorName= */
};

struct endpoint {
	enum endpoint_kind kind;
	char path[ENDPOINT_MAX_PATH + 1]; /* unix: absolute path */
	char host[ENDPOINT_MAX_HOST + 1]; /* inet: name or literal, without [] */
	unsigned port;                    /* inet: 1..65535 */
	char name[ENDPOINT_MAX_HOST + 1]; /* systemd: FileDescriptorName= */
	char text[ENDPOINT_MAX_HOST + 16]; /* canonical form for logs */
};

struct endpoint_list {
	struct endpoint items[ENDPOINT_MAX];
	size_t count;
};

/*
 * endpoint_parse_list - parse a comma-separated list; blanks around items are
 * ignored and an empty string is an empty list.  Forms: "unix:/abs/path",
 * "inet:HOST:PORT", "inet:[V6ADDR]:PORT", "inet:*:PORT" (all IPv4 addresses),
 * "systemd:NAME" (the socket a .socket unit passed with FileDescriptorName=NAME).
 * Relative unix paths are refused: the daemon's working directory is not
 * Postfix's queue directory.  Pure; on error a message in err.
 */
bool endpoint_parse_list(const char *spec, struct endpoint_list *out, char *err, size_t errlen);

/* Who owns a unix socket and its mode; (uid_t)-1 / (gid_t)-1 leave it unchanged. */
struct endpoint_perms {
	uid_t owner;
	gid_t group;
	unsigned mode;
};

/*
 * endpoint_listen - open a non-blocking, close-on-exec listening socket.  A
 * stale unix socket file is removed only if it is a socket nobody accepts on;
 * any other file at the path, or a live listener, is an error.  unix sockets
 * are bound with perms.mode (umask, so call it while single-threaded) and
 * then get the owner and group by endpoint_unix_set_perms.  inet sockets get SO_REUSEADDR.  systemd endpoints take
 * the descriptor sdlisten_init found (owner and mode are the socket unit's
 * business; perms and backlog are not applied).  Returns the fd or -1 with
 * the reason in err.
 */
int endpoint_listen(const struct endpoint *ep, const struct endpoint_perms *perms, int backlog,
		    char *err, size_t errlen);

/*
 * endpoint_unix_set_perms - give the socket just bound at path its owner and
 * group, without following a symlink and only if path is still a socket (the
 * mode was set at bind() through the umask).  endpoint_listen calls it;
 * public for tests.
 */
bool endpoint_unix_set_perms(const char *path, const struct endpoint_perms *perms, char *err,
			     size_t errlen);

#endif
