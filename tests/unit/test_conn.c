/*
 * test_conn: the connection layer alone, over a socketpair with a fake
 * line protocol: replies leave in request order whatever order they are
 * given in, reading pauses at max_pipelined and while the client does not
 * read its replies, and a request's drop hook runs once when the client goes.
 * Links vmaild_io only: a call from conn.c into a layer above fails to link.
 */
#include "conn.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "check_main.h"

#define FAKE_MAX 16

/* The fake protocol: one request per line, answered when the test says so. */
static struct {
	struct conn_req *reqs[FAKE_MAX];
	char lines[FAKE_MAX][32];
	unsigned n;
	unsigned closes;   /* proto on_close calls */
	unsigned set_closes; /* conn_set on_close calls */
	bool busy;           /* what the proto's busy() says */
	unsigned refused;    /* lines refused while draining */
} fk;

static struct event_base *base;
static struct conn_set set;
static struct conn_limits limits;
static struct conn *c;
static int client = -1;

static void fake_read(struct conn *conn, void *arg)
{
	(void)arg;
	while (conn_want_requests(conn)) {
		size_t avail;
		const char *in = conn_input(conn, &avail);
		const char *eol = memchr(in, '\n', avail);
		if (!eol)
			return;
		size_t len = (size_t)(eol - in);
		char line[32] = "";
		memcpy(line, in, len < sizeof(line) - 1 ? len : sizeof(line) - 1);
		bool txn = strcmp(line, "begin") == 0 || strcmp(line, "commit") == 0;
		/* Draining: new work sent after the drain began is refused, as svc_dict does. */
		if (conn_state(conn) == CONN_DRAINING && !txn && !fk.busy &&
		    conn_drain_backlog(conn) == 0) {
			fk.refused++;
			conn_finish(conn);
			return;
		}
		conn_consume(conn, len + 1);
		ck_assert_uint_lt(fk.n, FAKE_MAX);
		struct conn_req *r = conn_req_new(conn);
		ck_assert_ptr_nonnull(r);
		snprintf(fk.lines[fk.n], sizeof(fk.lines[0]), "%s", line);
		/* A transaction, the way svc_dict's makes it busy. */
		if (strcmp(line, "begin") == 0)
			fk.busy = true;
		else if (strcmp(line, "commit") == 0)
			fk.busy = false;
		fk.reqs[fk.n++] = r;
		/* "now..." is answered from the read, as a cache hit is. */
		if (strncmp(line, "now", 3) == 0) {
			char out[40];
			int n = snprintf(out, sizeof(out), "r%s\n", line);
			conn_req_reply(r, out, (size_t)n, 0);
		}
	}
}

static void fake_close(struct conn *conn, void *data, void *arg)
{
	(void)conn;
	(void)data;
	(void)arg;
	fk.closes++;
}

static bool fake_busy(const struct conn *conn, void *data, void *arg)
{
	(void)conn;
	(void)data;
	(void)arg;
	return fk.busy;
}

static const struct conn_proto fake_proto = {
	.name = "fake",
	.on_read = fake_read,
	.on_close = fake_close,
	.busy = fake_busy,
};

static void set_closed(void *arg, long peer_uid)
{
	(void)arg;
	(void)peer_uid;
	fk.set_closes++;
}

/* open_conn - the conn under test, over a socketpair of the given type (client: the other end) */
static void open_conn(int type)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, type, 0, sv), 0);
	ck_assert_int_eq(evutil_make_socket_nonblocking(sv[0]), 0);
	ck_assert_int_eq(evutil_make_socket_nonblocking(sv[1]), 0);
	client = sv[1];
	c = conn_new(&set, base, sv[0], "test", &fake_proto, NULL, &limits, false);
	ck_assert_ptr_nonnull(c);
}

static void setup(void)
{
	memset(&fk, 0, sizeof(fk));
	memset(&set, 0, sizeof(set));
	set.on_close = set_closed;
	limits = (struct conn_limits){ .idle_timeout_ms = 10000, .max_pipelined = 2,
				       .max_output_buffer = 64 * 1024 };
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	open_conn(SOCK_STREAM);
}

static void teardown(void)
{
	conn_set_close(&set, "test over");
	if (client >= 0)
		close(client);
	client = -1;
	event_base_free(base);
}

/* pump - run the loop until *n reaches want (or a second passed); false on timeout */
static bool pump_until(const unsigned *n, unsigned want)
{
	for (int i = 0; i < 1000; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (*n >= want)
			return true;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* pump_idle - a few loop turns for whatever is due */
static void pump_idle(void)
{
	for (int i = 0; i < 20; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		struct timespec ts = { 0, 500000 };
		nanosleep(&ts, NULL);
	}
}

static void send_client(const char *s)
{
	ck_assert_int_eq(write(client, s, strlen(s)), (ssize_t)strlen(s));
}

/* recv_client - what the client can read now, as a string */
static const char *recv_client(void)
{
	static char buf[256];
	size_t n = 0;
	ssize_t r;
	while (n + 1 < sizeof(buf) && (r = read(client, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return buf;
}

static void reply(unsigned i)
{
	char out[40];
	int n = snprintf(out, sizeof(out), "r%s\n", fk.lines[i]);
	conn_req_reply(fk.reqs[i], out, (size_t)n, 0);
}

START_TEST(test_reply_order)
{
	limits.max_pipelined = 8;
	send_client("a\nb\nc\n");
	ck_assert(pump_until(&fk.n, 3));
	reply(2);
	reply(1);
	pump_idle();
	ck_assert_str_eq(recv_client(), ""); /* the oldest is unanswered: nothing may leave */
	ck_assert_uint_eq(conn_pending(c), 3);
	reply(0);
	pump_idle();
	ck_assert_str_eq(recv_client(), "ra\nrb\nrc\n");
	ck_assert_uint_eq(conn_pending(c), 0);
	ck_assert_int_eq(conn_state(c), CONN_READING);
}
END_TEST

START_TEST(test_max_pipelined)
{
	send_client("1\n2\n3\n4\n5\n");
	ck_assert(pump_until(&fk.n, 2));
	pump_idle();
	ck_assert_uint_eq(fk.n, 2); /* the rest waits in the input buffer */
	ck_assert_int_eq(conn_state(c), CONN_PAUSED);
	ck_assert(!conn_want_requests(c));
	reply(1);
	reply(0);
	ck_assert(pump_until(&fk.n, 4)); /* resumed: framed from what was buffered */
	ck_assert_int_eq(conn_state(c), CONN_PAUSED);
	reply(3);
	reply(2);
	ck_assert(pump_until(&fk.n, 5));
	reply(4);
	pump_idle();
	ck_assert_str_eq(recv_client(), "r1\nr2\nr3\nr4\nr5\n");
	ck_assert_int_eq(conn_state(c), CONN_READING);
}
END_TEST

START_TEST(test_output_backpressure)
{
	/* A client that does not read: the reply stays queued, reading stops. */
	size_t big = 4u << 20;
	char *data = malloc(big);
	ck_assert_ptr_nonnull(data);
	memset(data, 'x', big);
	send_client("big\n");
	ck_assert(pump_until(&fk.n, 1));
	conn_req_reply(fk.reqs[0], data, big, 0);
	free(data);
	pump_idle();
	ck_assert_int_eq(conn_state(c), CONN_PAUSED);
	send_client("next\n");
	pump_idle();
	ck_assert_uint_eq(fk.n, 1);
	/* The client reads: the output drains under the limit and reading resumes. */
	size_t got = 0;
	char buf[65536];
	for (int i = 0; i < 10000 && got < big; i++) {
		ssize_t r = read(client, buf, sizeof(buf));
		if (r > 0)
			got += (size_t)r;
		else
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	ck_assert_uint_eq(got, big);
	ck_assert(pump_until(&fk.n, 2));
	ck_assert_str_eq(fk.lines[1], "next");
}
END_TEST

static unsigned drops_a, drops_b;

static void drop_a(void *arg)
{
	ck_assert_ptr_eq(arg, &drops_a);
	drops_a++;
}

static void drop_b(void *arg)
{
	ck_assert_ptr_eq(arg, &drops_b);
	drops_b++;
}

START_TEST(test_drop_hook)
{
	drops_a = drops_b = 0;
	send_client("1\n2\n");
	ck_assert(pump_until(&fk.n, 2));
	/* Answered requests never see their hook. */
	conn_req_on_drop(fk.reqs[0], drop_a, &drops_a);
	reply(0);
	/* A later hook replaces the earlier one. */
	conn_req_on_drop(fk.reqs[1], drop_a, &drops_a);
	conn_req_on_drop(fk.reqs[1], drop_b, &drops_b);
	pump_idle();
	ck_assert_str_eq(recv_client(), "r1\n");
	close(client);
	client = -1;
	ck_assert(pump_until(&fk.set_closes, 1));
	pump_idle();
	ck_assert_uint_eq(drops_b, 1);
	ck_assert_uint_eq(drops_a, 0);
	ck_assert_uint_eq(fk.closes, 1);
	ck_assert_uint_eq(fk.set_closes, 1);
	ck_assert_uint_eq(set.count, 0);
	ck_assert_ptr_null(set.first);
}
END_TEST

START_TEST(test_close_from_server)
{
	drops_a = 0;
	send_client("1\n");
	ck_assert(pump_until(&fk.n, 1));
	conn_req_on_drop(fk.reqs[0], drop_a, &drops_a);
	conn_close(c, "test");
	ck_assert_uint_eq(drops_a, 1);
	ck_assert_uint_eq(fk.closes, 1);
	conn_set_close(&set, "again"); /* nothing left: no second hook, no second close */
	ck_assert_uint_eq(drops_a, 1);
	ck_assert_uint_eq(fk.set_closes, 1);
	pump_idle();
	char b;
	ck_assert_int_eq(read(client, &b, 1), 0); /* the client sees EOF */
}
END_TEST

/*
 * A draining connection answers what it read, and what was already sent when the drain
 * began, then closes: a client that keeps pipelining must not hold the stop until the
 * daemon's shutdown_timeout.
 */
START_TEST(test_drain_stops_reading)
{
	limits.max_pipelined = 8;
	send_client("a\n");
	ck_assert(pump_until(&fk.n, 1));
	send_client("b\n"); /* sent before the drain, not read yet */
	conn_drain(c);
	send_client("late1\n");
	pump_idle();
	send_client("late2\n");
	pump_idle();
	ck_assert_uint_eq(fk.n, 2);
	ck_assert_str_eq(fk.lines[1], "b");
	ck_assert_uint_eq(fk.closes, 0);
	ck_assert_uint_eq(fk.refused, 1); /* late1, read while answers are owed */
	reply(0);
	reply(1);
	ck_assert(pump_until(&fk.set_closes, 1));
	ck_assert_uint_eq(fk.n, 2);
	ck_assert_uint_eq(set.count, 0);
	ck_assert_str_eq(recv_client(), "ra\nrb\n");
}
END_TEST

/* A client in the middle of something (busy: a transaction open) is read until it is done. */
START_TEST(test_drain_reads_while_busy)
{
	limits.max_pipelined = 8;
	send_client("begin\n");
	ck_assert(pump_until(&fk.n, 1));
	reply(0);
	conn_drain(c);
	send_client("commit\n");
	ck_assert(pump_until(&fk.n, 2));
	send_client("late\n"); /* after the transaction: not read */
	pump_idle();
	reply(1);
	ck_assert(pump_until(&fk.set_closes, 1));
	ck_assert_uint_eq(fk.n, 2);
	ck_assert_uint_eq(set.count, 0);
}
END_TEST

/*
 * Answers still owed when the drain began: the client may follow them with a transaction
 * (Dovecot: C1 not answered yet, then B2 A2 C2), which is read and finished.
 */
START_TEST(test_drain_reads_while_answers_owed)
{
	limits.max_pipelined = 8;
	send_client("a\n");
	ck_assert(pump_until(&fk.n, 1));
	conn_drain(c);
	send_client("begin\n");
	ck_assert(pump_until(&fk.n, 2));
	send_client("commit\n");
	ck_assert(pump_until(&fk.n, 3));
	ck_assert_uint_eq(fk.closes, 0);
	reply(0);
	reply(1);
	reply(2);
	ck_assert(pump_until(&fk.set_closes, 1));
	ck_assert_uint_eq(fk.refused, 0);
	ck_assert_str_eq(recv_client(), "ra\nrbegin\nrcommit\n");
}
END_TEST

/* A line cut in two by the drain is read to its end, not cut. */
START_TEST(test_drain_reads_a_split_line)
{
	limits.max_pipelined = 8;
	send_client("beg");
	pump_idle();
	conn_drain(c);
	pump_idle();
	ck_assert_uint_eq(fk.set_closes, 0);
	send_client("in\n");
	ck_assert(pump_until(&fk.n, 1));
	ck_assert_str_eq(fk.lines[0], "begin");
	send_client("commit\n");
	ck_assert(pump_until(&fk.n, 2));
	reply(0);
	reply(1);
	ck_assert(pump_until(&fk.set_closes, 1));
	ck_assert_str_eq(recv_client(), "rbegin\nrcommit\n");
}
END_TEST

/* A reply given outside a read (a database answer) leaves at once, with no loop turn. */
START_TEST(test_reply_leaves_at_once)
{
	send_client("a\n");
	ck_assert(pump_until(&fk.n, 1));
	reply(0);
	ck_assert_str_eq(recv_client(), "ra\n");
}
END_TEST

/* reconnect - the fixture's conn replaced by one over a socketpair of the given type */
static void reconnect(int type)
{
	conn_close(c, "test");
	close(client);
	open_conn(type);
	fk.closes = fk.set_closes = 0;
}

/*
 * The replies a read produces leave in one send: over a SOCK_SEQPACKET pair every send
 * is one record, so one recv returns all of them only if they went out together.
 */
START_TEST(test_replies_of_a_read_in_one_send)
{
	limits.max_pipelined = 8;
	reconnect(SOCK_SEQPACKET);
	send_client("now1\nnow2\nnow3\n");
	ck_assert(pump_until(&fk.n, 3));
	pump_idle();
	char buf[128];
	ssize_t n = recv(client, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "rnow1\nrnow2\nrnow3\n");
}
END_TEST

/* A client that stops reading its replies is dropped after idle_timeout, not held forever. */
START_TEST(test_client_not_reading_is_dropped)
{
	limits.idle_timeout_ms = 100;
	size_t big = 4u << 20;
	char *data = malloc(big);
	ck_assert_ptr_nonnull(data);
	memset(data, 'x', big);
	send_client("big\n");
	ck_assert(pump_until(&fk.n, 1));
	conn_req_reply(fk.reqs[0], data, big, 0);
	free(data);
	ck_assert(pump_until(&fk.set_closes, 1));
	ck_assert_uint_eq(set.count, 0);
}
END_TEST

/*
 * Input the protocol cannot frame is bounded: a "line" that never ends closes the
 * connection once 256 KiB are held, instead of growing the buffer without end.
 */
START_TEST(test_unframed_input_is_bounded)
{
	char chunk[4096];
	memset(chunk, 'x', sizeof(chunk));
	size_t sent = 0;
	for (int i = 0; i < 5000 && fk.set_closes == 0 && sent < (8u << 20); i++) {
		ssize_t w = write(client, chunk, sizeof(chunk));
		if (w > 0)
			sent += (size_t)w;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	ck_assert_uint_eq(fk.set_closes, 1);
	ck_assert_uint_lt(sent, 1u << 20);
	ck_assert_uint_eq(fk.n, 0);
}
END_TEST

/*
 * idle_timeout counts from the last answer: a request pending for longer is never cut,
 * and the conn goes once it has been idle that long.
 */
START_TEST(test_idle_timeout_counts_from_the_last_answer)
{
	limits.idle_timeout_ms = 100;
	reconnect(SOCK_STREAM);
	send_client("a\n");
	ck_assert(pump_until(&fk.n, 1));
	for (int i = 0; i < 15; i++)
		pump_idle(); /* 150 ms or more with the request pending */
	ck_assert_uint_eq(fk.set_closes, 0);
	reply(0);
	ck_assert(pump_until(&fk.set_closes, 1));
	ck_assert_str_eq(recv_client(), "ra\n");
}
END_TEST

/* A reload that shortens idle_timeout reaches connections open since before it. */
START_TEST(test_shorter_idle_timeout_applies_to_open_conns)
{
	send_client("a\n");
	ck_assert(pump_until(&fk.n, 1));
	limits.idle_timeout_ms = 100; /* the conn's timer was armed for 10 s */
	reply(0);
	ck_assert(pump_until(&fk.set_closes, 1));
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reply_order);
	tcase_add_test(tc, test_max_pipelined);
	tcase_add_test(tc, test_output_backpressure);
	tcase_add_test(tc, test_drop_hook);
	tcase_add_test(tc, test_close_from_server);
	tcase_add_test(tc, test_drain_stops_reading);
	tcase_add_test(tc, test_drain_reads_while_busy);
	tcase_add_test(tc, test_drain_reads_while_answers_owed);
	tcase_add_test(tc, test_drain_reads_a_split_line);
	tcase_add_test(tc, test_reply_leaves_at_once);
	tcase_add_test(tc, test_replies_of_a_read_in_one_send);
	tcase_add_test(tc, test_client_not_reading_is_dropped);
	tcase_add_test(tc, test_unframed_input_is_bounded);
	tcase_add_test(tc, test_idle_timeout_counts_from_the_last_answer);
	tcase_add_test(tc, test_shorter_idle_timeout_applies_to_open_conns);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(conn_suite)
