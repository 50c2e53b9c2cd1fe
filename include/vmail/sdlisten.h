/* sdlisten: listening sockets handed over by systemd socket activation, without libsystemd. */
#ifndef VMAIL_SDLISTEN_H
#define VMAIL_SDLISTEN_H

#include <stdbool.h>
#include <stddef.h>

#define SDLISTEN_FD_START 3   /* SD_LISTEN_FDS_START: the first passed descriptor */
#define SDLISTEN_MAX 64       /* descriptors we accept from systemd */
#define SDLISTEN_MAX_NAME 255 /* FileDescriptorName= limit in systemd */

/*
 * The protocol (sd_listen_fds(3)): LISTEN_PID is the pid the descriptors are
 * meant for; LISTEN_FDS how many there are, starting at fd 3; LISTEN_FDNAMES
 * their FileDescriptorName= values, colon-separated, in the same order.
 * Without LISTEN_FDNAMES every descriptor is named "unknown", as
 * sd_listen_fds_with_names() does.
 */
struct sdlisten {
	unsigned count;
	struct sdlisten_fd {
		int fd;
		bool taken;
		char name[SDLISTEN_MAX_NAME + 1];
	} items[SDLISTEN_MAX];
};

/*
 * sdlisten_parse - pure: the three variables' values (NULL when unset) for
 * process self.  Returns 1 with *out filled when descriptors were passed to
 * self, 0 (count 0) when none were or they were meant for another process
 * (LISTEN_PID unset or different), -1 with err on a malformed value: a
 * LISTEN_PID or LISTEN_FDS that is not a plain decimal number, more than
 * SDLISTEN_MAX descriptors, or a name count that does not match LISTEN_FDS.
 */
int sdlisten_parse(const char *pid, const char *fds, const char *names, long self,
		   struct sdlisten *out, char *err, size_t errlen);

/* sdlisten_name_valid - a FileDescriptorName= we accept: 1..255 printable ASCII, no ':' ',' ' ' */
bool sdlisten_name_valid(const char *name, size_t len);

/*
 * sdlisten_init - read the environment once at startup, remember what
 * systemd passed, mark those descriptors close-on-exec and remove the three
 * variables (children must not believe the sockets are theirs).  False with
 * err on malformed variables.  Calling it again is harmless.
 */
bool sdlisten_init(char *err, size_t errlen);

/* sdlisten_count - descriptors passed to this process (after sdlisten_init) */
unsigned sdlisten_count(void);

/*
 * sdlisten_take - the descriptor systemd passed under name: checked to be a
 * listening stream socket and made non-blocking.  Each descriptor is taken
 * once; a name shared by several descriptors hands them out in order.
 * Returns -1 with err when there is no (further) descriptor by that name.
 */
int sdlisten_take(const char *name, char *err, size_t errlen);

/*
 * sdlisten_close_unused - close (and log) descriptors no endpoint took, so a
 * socket unit without a matching "systemd:NAME" in the configuration is
 * noticed.  Returns how many were closed.
 */
unsigned sdlisten_close_unused(void);

#endif
