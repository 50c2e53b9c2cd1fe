/* echo_epoll: the minimal socketmap echo server, the baseline of vmaild's socket path. */
#ifndef VMAIL_BENCH_ECHO_EPOLL_H
#define VMAIL_BENCH_ECHO_EPOLL_H

#include <signal.h>

/*
 * echo_epoll_run - serve listen_fd until SIGTERM or SIGINT: every socketmap
 * request "<map> <key>" is answered "OK <key>".  The caller blocks both
 * signals before it listens; they are let in only while waiting for events,
 * with wait_mask.  Returns 0, or 1 if epoll cannot be set up.
 */
int echo_epoll_run(int listen_fd, const sigset_t *wait_mask);

#endif
