/*
 * test_server: admission at accept, over a private unix listener with a fake
 * line protocol that answers "over" (then closes) on an over-limit connection
 * and "ok" otherwise.  A connection past the group's or the uid's cap is
 * answered "over" from a bounded refusing pool, not closed unanswered (Dovecot
 * stores mail uncounted when its quota connection is reset); past the pool, or
 * the peer uid's share of it, it is closed at accept; the pool counts toward
 * neither cap.  A few cases add a loopback TCP listener or connect as other uids.
 * Every client connects and sends before the loop runs, so the listener
 * accepts them all in one batch, in order: no assertion depends on timing.
 * Links vmaild_io only.
 */
#include "server.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "check_main.h"

#define CLIENTS_MAX (SERVER_MAX_REFUSING + 16)

enum outcome {
	OUT_PENDING = 0,
	OUT_OK,    /* served */
	OUT_OVER,  /* answered from the over-limit path, then closed */
	OUT_CLOSED, /* closed (or reset) without an answer */
};

static struct event_base *base;
static struct server *srv;
static struct server_group *grp;
static char dir[64];
static struct sockaddr_un addr;
static struct sockaddr_in tcp_addr; /* when the listener is TCP (start_tcp) */
static bool tcp;
static int clients[CLIENTS_MAX];
static enum outcome outcomes[CLIENTS_MAX];
static size_t nclients;
static unsigned exempt_calls;   /* how often the group asked whether a uid is exempt */
static unsigned exempt_from;    /* the call (1-based) from which on peers are exempt; 0: none */

static void fake_read(struct conn *c, void *arg)
{
	(void)arg;
	while (conn_want_requests(c)) {
		size_t avail;
		const char *in = conn_input(c, &avail);
		const char *eol = memchr(in, '\n', avail);
		if (!eol)
			return;
		conn_consume(c, (size_t)(eol - in) + 1);
		struct conn_req *r = conn_req_new(c);
		ck_assert_ptr_nonnull(r);
		if (conn_is_over_limit(c)) {
			conn_req_reply(r, "over\n", 5, CONN_REPLY_CLOSE);
			return;
		}
		conn_req_reply(r, "ok\n", 3, 0);
	}
}

static const struct conn_proto fake_proto = { .name = "fake", .on_read = fake_read };

/* Another uid, as far as the cap is concerned: from call exempt_from on, peers are not counted. */
static bool fake_exempt(void *arg, uid_t uid, gid_t gid)
{
	(void)arg;
	(void)uid;
	(void)gid;
	exempt_calls++;
	return exempt_from && exempt_calls >= exempt_from;
}

static void start(unsigned group_max, unsigned per_uid)
{
	struct conn_limits limits = { .idle_timeout_ms = 60000, .max_pipelined = 4,
				      .max_output_buffer = 64 * 1024 };
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	srv = server_new(base, &limits, 1000);
	ck_assert_ptr_nonnull(srv);
	struct server_group_limits lim = { .max_connections = group_max, .max_per_uid = per_uid };
	grp = server_add_group(srv, "quota", &lim, fake_exempt, NULL);
	ck_assert_ptr_nonnull(grp);
	snprintf(dir, sizeof(dir), "/tmp/test_server.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/s", dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(fd, 128), 0);
	/* Reachable by the other uids test_refusing_pool_uids connects as. */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(chmod(addr.sun_path, 0777), 0);
	ck_assert(server_add_listener(srv, grp, fd, "test", &fake_proto, NULL));
}

/* start_tcp - start, with a loopback TCP listener added to the group (clients use it) */
static void start_tcp(unsigned group_max, unsigned per_uid)
{
	start(group_max, per_uid);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	memset(&tcp_addr, 0, sizeof(tcp_addr));
	tcp_addr.sin_family = AF_INET;
	tcp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)), 0);
	socklen_t len = sizeof(tcp_addr);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&tcp_addr, &len), 0);
	ck_assert_int_eq(listen(fd, 128), 0);
	ck_assert(server_add_listener(srv, grp, fd, "test-tcp", &fake_proto, NULL));
	tcp = true;
}

static void setup(void)
{
	nclients = 0;
	tcp = false;
	exempt_calls = 0;
	exempt_from = 0;
	memset(outcomes, 0, sizeof(outcomes));
}

static void teardown(void)
{
	for (size_t i = 0; i < nclients; i++)
		close(clients[i]);
	server_free(srv);
	srv = NULL;
	event_base_free(base);
	unlink(addr.sun_path);
	rmdir(dir);
}

/* client_connect - connect, without running the loop (it stays in the backlog) */
static int client_connect(void)
{
	ck_assert_uint_lt(nclients, CLIENTS_MAX);
	int fd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	if (tcp)
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)), 0);
	else
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	clients[nclients++] = fd;
	return fd;
}

/* client_ask - connect and send one request */
static void client_ask(void)
{
	ck_assert_int_eq(send(client_connect(), "q\n", 2, MSG_NOSIGNAL), 2);
}

/* client_ask_as - client_ask with uid as the peer credentials (SO_PEERCRED: the euid at connect) */
static void client_ask_as(uid_t uid)
{
	ck_assert_int_eq(seteuid(uid), 0);
	client_ask();
	ck_assert_int_eq(seteuid(0), 0);
}

/* nap - a millisecond for the other side of the socket; loops bound their count, not time */
static void nap(void)
{
	struct timespec ts = { 0, 1000000 };
	nanosleep(&ts, NULL);
}

/* poll_client - what client i got so far */
static enum outcome poll_client(size_t i)
{
	char buf[16];
	ssize_t n = recv(clients[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return OUT_PENDING;
	if (n <= 0)
		return OUT_CLOSED;
	buf[n] = '\0';
	if (strcmp(buf, "ok\n") == 0)
		return OUT_OK;
	ck_assert_str_eq(buf, "over\n");
	/* The over-limit path closes after its one answer. */
	for (int k = 0; k < 1000; k++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		n = recv(clients[i], buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return OUT_OVER;
		ck_assert(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
		nap();
	}
	ck_abort_msg("client %zu: answered over but not closed", i);
	return OUT_PENDING;
}

/* run - let the server accept and answer until every client has its outcome */
static void run(void)
{
	for (int k = 0; k < 5000; k++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		size_t pending = 0;
		for (size_t i = 0; i < nclients; i++) {
			if (outcomes[i] == OUT_PENDING)
				outcomes[i] = poll_client(i);
			pending += outcomes[i] == OUT_PENDING;
		}
		if (!pending)
			return;
		nap();
	}
	ck_abort_msg("some client got neither an answer nor a close");
}

static struct server_group_stats stats(void)
{
	struct server_group_stats st;
	ck_assert_uint_eq(server_group_stats(srv, &st, 1), 1);
	return st;
}

static const char *const outcome_names[] = { "pending", "ok", "over", "closed" };

static void expect(size_t from, size_t to, enum outcome want)
{
	for (size_t i = from; i < to; i++)
		ck_assert_msg(outcomes[i] == want, "client %zu: %s, expected %s", i,
			      outcome_names[outcomes[i]], outcome_names[want]);
}

/* One more connection than the uid's cap: answered "over" (Dovecot: "full"), not reset. */
START_TEST(test_uid_cap_answers)
{
	start(100, 2);
	for (int i = 0; i < 3; i++)
		client_ask();
	run();
	expect(0, 2, OUT_OK);
	expect(2, 3, OUT_OVER);
	struct server_group_stats st = stats();
	ck_assert_uint_eq(st.refused[SERVER_REFUSED_UID], 1);
	ck_assert_uint_eq(st.connections, 2);
}
END_TEST

/* One more connection than the group's cap: the same. */
START_TEST(test_group_cap_answers)
{
	start(2, 0);
	for (int i = 0; i < 3; i++)
		client_ask();
	run();
	expect(0, 2, OUT_OK);
	expect(2, 3, OUT_OVER);
	ck_assert_uint_eq(stats().refused[SERVER_REFUSED_LISTENER], 1);
}
END_TEST

/*
 * expect_flood_and_other - clients [0, flood) are one uid (1 served, its pool
 * share answered, the rest closed), the two after it another peer (served,
 * then refused and answered).  The other peer is checked first: it is what a
 * pool without per-uid shares gets wrong.
 */
static void expect_flood_and_other(size_t flood)
{
	expect(flood, flood + 1, OUT_OK);
	expect(flood + 1, flood + 2, OUT_OVER);
	expect(0, 1, OUT_OK);
	expect(1, 1 + SERVER_REFUSING_PER_UID, OUT_OVER);
	expect(1 + SERVER_REFUSING_PER_UID, flood, OUT_CLOSED);
}

/*
 * Trusted peers (exempt, so no pool share applies) flood past the group's cap:
 * SERVER_MAX_REFUSING are answered, the rest is closed at accept, so a flood
 * costs a bounded number of descriptors.
 */
START_TEST(test_refusing_pool_bounded)
{
	start(1, 0);
	exempt_from = 1;
	for (int i = 0; i < 1 + SERVER_MAX_REFUSING + 2; i++)
		client_ask();
	run();
	expect(0, 1, OUT_OK);
	expect(1, 1 + SERVER_MAX_REFUSING, OUT_OVER);
	expect(1 + SERVER_MAX_REFUSING, nclients, OUT_CLOSED);
	struct server_group_stats st = stats();
	ck_assert_uint_eq(st.refused[SERVER_REFUSED_LISTENER], SERVER_MAX_REFUSING + 2);
	ck_assert_uint_eq(st.connections, 1);
	ck_assert_uint_eq(server_connections(srv), 1);
}
END_TEST

/*
 * A uid floods past its cap: only SERVER_REFUSING_PER_UID of its refusals are
 * held in the pool, the rest is closed at accept; a trusted peer is still
 * served although the group's cap is 2 (the pool counts toward neither cap),
 * and one refused for the group's cap is still answered, not closed.
 */
START_TEST(test_refusing_pool_uid_share)
{
	start(2, 1);
	size_t flood = 1 + SERVER_MAX_REFUSING + 2;
	exempt_from = (unsigned)flood + 1;
	for (size_t i = 0; i < flood + 2; i++)
		client_ask();
	run();
	expect_flood_and_other(flood);
	struct server_group_stats st = stats();
	ck_assert_uint_eq(st.refused[SERVER_REFUSED_UID], flood - 1);
	ck_assert_uint_eq(st.refused[SERVER_REFUSED_LISTENER], 1);
	ck_assert_uint_eq(st.connections, 2);
	ck_assert_uint_eq(server_connections(srv), 2);
}
END_TEST

/*
 * Two real uids (root only: connecting as another uid takes seteuid): uid A
 * floods past its per-uid cap; uid B's refused connection is still answered
 * "over", not closed at accept for a pool A filled.
 */
START_TEST(test_refusing_pool_uids)
{
	if (geteuid() != 0)
		return;
	const uid_t a = 65534, b = 65533;
	start(100, 1);
	size_t flood = 1 + SERVER_MAX_REFUSING + 2;
	for (size_t i = 0; i < flood; i++)
		client_ask_as(a);
	client_ask_as(b);
	client_ask_as(b);
	run();
	expect_flood_and_other(flood);
	ck_assert_uint_eq(stats().refused[SERVER_REFUSED_UID], flood);
}
END_TEST

/* The pool and a uid's share empty as their connections are answered: a later refusal is too. */
START_TEST(test_refusing_pool_reused)
{
	start(100, 1);
	client_ask();
	for (int i = 0; i < SERVER_REFUSING_PER_UID; i++)
		client_ask();
	run();
	expect(1, nclients, OUT_OVER);
	size_t first = nclients;
	client_ask();
	run();
	expect(first, nclients, OUT_OVER);
	ck_assert_uint_eq(server_connections(srv), 1);
}
END_TEST

static bool stopped;

static void on_stopped(void *arg)
{
	(void)arg;
	stopped = true;
}

/* A stop waits for the refusing pool too, and drains it: an idle refused connection closes. */
START_TEST(test_shutdown_drains_pool)
{
	start(100, 1);
	client_ask();
	run();
	client_connect(); /* refused, held in the pool, says nothing */
	for (int k = 0; k < 5000 && stats().refused[SERVER_REFUSED_UID] < 1; k++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		nap();
	}
	ck_assert_uint_eq(stats().refused[SERVER_REFUSED_UID], 1);
	ck_assert_uint_eq(server_connections(srv), 2);
	stopped = false;
	/* Both are idle: they close at once, and the stop is done. */
	server_shutdown(srv, on_stopped, NULL);
	ck_assert(stopped);
	ck_assert_uint_eq(server_connections(srv), 0);
	run();
	expect(0, 1, OUT_OK);
	expect(1, 2, OUT_CLOSED);
}
END_TEST

/*
 * TCP peers have no uid (Linux reports uid -1 for them): neither the per-uid
 * cap nor the pool's per-uid share lumps them together.
 */
START_TEST(test_tcp_peers_no_uid)
{
	start_tcp(2, 1);
	for (int i = 0; i < 2 + SERVER_REFUSING_PER_UID + 2; i++)
		client_ask();
	run();
	expect(0, 2, OUT_OK);
	expect(2, nclients, OUT_OVER);
	struct server_group_stats st = stats();
	ck_assert_uint_eq(st.refused[SERVER_REFUSED_UID], 0);
	ck_assert_uint_eq(st.refused[SERVER_REFUSED_LISTENER], SERVER_REFUSING_PER_UID + 2);
}
END_TEST

/*
 * The descriptor overhead covers what a flood of every group can hold beyond
 * max_connections: the slack and each group's full refusing pool.
 */
START_TEST(test_fd_overhead)
{
	start(1, 0);
	exempt_from = 1;
	for (int i = 0; i < 1 + SERVER_MAX_REFUSING + 2; i++)
		client_connect(); /* silent: the pool holds them until they speak or idle out */
	const uint64_t refused = SERVER_MAX_REFUSING + 2;
	for (int k = 0; k < 5000 && stats().refused[SERVER_REFUSED_LISTENER] < refused; k++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		nap();
	}
	unsigned held = server_connections(srv);
	ck_assert_uint_eq(held, 1 + SERVER_MAX_REFUSING);
	ck_assert_uint_ge(1 + server_fd_overhead(1), held + SERVER_OVER_LIMIT_SLACK);
	ck_assert_uint_eq(server_fd_overhead(3), SERVER_OVER_LIMIT_SLACK + 3 * SERVER_MAX_REFUSING);
}
END_TEST

static Suite *server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc = tcase_create("admission");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_uid_cap_answers);
	tcase_add_test(tc, test_group_cap_answers);
	tcase_add_test(tc, test_refusing_pool_bounded);
	tcase_add_test(tc, test_refusing_pool_uid_share);
	tcase_add_test(tc, test_refusing_pool_uids);
	tcase_add_test(tc, test_refusing_pool_reused);
	tcase_add_test(tc, test_shutdown_drains_pool);
	tcase_add_test(tc, test_fd_overhead);
	tcase_add_test(tc, test_tcp_peers_no_uid);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(server_suite)
