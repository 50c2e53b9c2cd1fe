/*
 * echo_epoll: the least a server can do per socketmap request, as the
 * baseline for vmaild's socket path (docs/benchmarks.md): one thread,
 * level-triggered epoll, one read per readiness into the connection's own
 * buffer, the same netstring framing, and one write of all the answers that
 * read completed.  Write readiness is watched only after a short write, and
 * input is not read again until the answers owed have left.
 */
#define _GNU_SOURCE /* accept4 */
#include "echo_epoll.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmail/netstring.h"
#include "vmail/socketmap.h"

#define ECHO_FRAME_MAX (NETSTRING_MAX_DIGITS + 2 + SOCKETMAP_MAX_REQUEST)
#define ECHO_EVENTS 256

struct echo_conn {
	struct echo_conn *prev, *next;
	int fd;
	bool writing; /* a short write left output: watching EPOLLOUT, not reading */
	struct netstring_scan scan;
	size_t in_len, out_off, out_len;
	char in[2 * ECHO_FRAME_MAX];
	/* an answer is at most four times its request (the shortest, "0:,", is answered
	 * "9:NOTFOUND ,"), so the answers to everything one read brought always fit: no
	 * request waits for output room */
	char out[4 * 2 * ECHO_FRAME_MAX];
};

static volatile sig_atomic_t echo_stop;
static int echo_ep = -1;
static struct echo_conn *echo_conns;

static void echo_on_signal(int sig)
{
	(void)sig;
	echo_stop = 1;
}

static void echo_close(struct echo_conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	if (c->prev)
		c->prev->next = c->next;
	else
		echo_conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* echo_answer - answer every complete request in the input */
static bool echo_answer(struct echo_conn *c)
{
	size_t off = 0;
	for (;;) {
		const char *payload, *err;
		size_t plen, used, n;
		enum netstring_status st = netstring_parse(c->in + off, c->in_len - off, SOCKETMAP_MAX_REQUEST,
							   &c->scan, &payload, &plen, &used, &err);
		if (st == NETSTRING_NEED_MORE)
			break;
		if (st == NETSTRING_ERROR)
			return false;
		struct socketmap_request req;
		char *out = c->out + c->out_len;
		size_t cap = sizeof(c->out) - c->out_len;
		if (socketmap_parse_request(payload, plen, &req, &err) && req.key_len)
			n = socketmap_format_reply(out, cap, SOCKETMAP_REPLY_OK, req.key, req.key_len);
		else
			n = socketmap_format_reply(out, cap, SOCKETMAP_REPLY_NOTFOUND, "", 0);
		if (n == 0)
			return false; /* cannot happen: see out */
		c->out_len += n;
		off += used;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return true;
}

/* echo_flush - one write of what is owed; watch EPOLLOUT (and stop reading) only if some is left */
static bool echo_flush(struct echo_conn *c)
{
	if (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0)
			c->out_off += (size_t)n;
	}
	bool left = c->out_off < c->out_len;
	if (!left)
		c->out_off = c->out_len = 0;
	if (left != c->writing) {
		struct epoll_event ev = { .events = left ? EPOLLOUT : EPOLLIN, .data.ptr = c };
		if (epoll_ctl(echo_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
			return false;
		c->writing = left;
	}
	return true;
}

static void echo_readable(struct echo_conn *c)
{
	ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		echo_close(c);
		return;
	}
	c->in_len += (size_t)n;
	if (!echo_answer(c) || !echo_flush(c))
		echo_close(c);
}

static void echo_writable(struct echo_conn *c)
{
	if (!echo_flush(c))
		echo_close(c);
}

static void echo_accept(int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return; /* EAGAIN, or a connection that died in the backlog */
	struct echo_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	if (!c || epoll_ctl(echo_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->next = echo_conns;
	if (echo_conns)
		echo_conns->prev = c;
	echo_conns = c;
}

int echo_epoll_run(int listen_fd, const sigset_t *wait_mask)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = echo_on_signal; /* runs only inside epoll_pwait, which then returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	echo_ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (echo_ep < 0 || fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    epoll_ctl(echo_ep, EPOLL_CTL_ADD, listen_fd, &lev) < 0) {
		perror("vmail-bench: epoll");
		return 1;
	}
	struct epoll_event evs[ECHO_EVENTS];
	while (!echo_stop) {
		int n = epoll_pwait(echo_ep, evs, ECHO_EVENTS, -1, wait_mask);
		for (int i = 0; i < n; i++) {
			struct echo_conn *c = evs[i].data.ptr;
			if (!c)
				echo_accept(listen_fd);
			else if (c->writing)
				echo_writable(c);
			else
				echo_readable(c);
		}
	}
	while (echo_conns)
		echo_close(echo_conns);
	close(echo_ep);
	return 0;
}
