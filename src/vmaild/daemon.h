/* daemon: vmaild's life cycle: startup order, privileges, signals, reload, systemd notify. */
#ifndef VMAIL_DAEMON_H
#define VMAIL_DAEMON_H

#include <stdbool.h>

/*
 * daemon_run - run vmaild in the foreground with the configuration at path
 * until SIGTERM/SIGINT; returns the process exit status.
 */
int daemon_run(const char *path);

/*
 * daemon_check_config - load and validate path (including user, group and
 * endpoint names), print the effective settings to stdout; returns the exit
 * status (0 valid, 1 not).
 */
int daemon_check_config(const char *path);

/*
 * daemon_sd_notify - send one state string ("READY=1", ...) to the socket in
 * NOTIFY_SOCKET ("/path" or "@abstract"); nothing when unset.  False if set
 * but sending failed.
 */
bool daemon_sd_notify(const char *state);

#endif
