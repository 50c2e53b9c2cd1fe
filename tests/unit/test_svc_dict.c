/*
 * test_svc_dict: the dict service's failure paths over a socketpair, with a pool whose
 * database never answers (an unreachable server and a long request timeout): a counter
 * lookup on a connection over max_connections, and transactions the connection's end cuts
 * (an open one, or a commit whose answer never came), which must land on the recount list.
 * The sieve role: what it answers without the database, that its lookups always go to the
 * database, and that one the database cannot answer (a short request timeout) is F.
 */
#include "svc_dict.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "dict_recount.h"
#include "lookup_cache.h"
#include "lookup_kinds.h"
#include "metrics.h"
#include "vmail/pg.h"

#include "check_main.h"

static char dir[64];
static char path[128];
static struct event_base *base;
static struct pg_pool *pool;
static struct svc_dict *svc;
static struct conn_set set;
static struct conn_limits limits;
static struct conn *c;
static int client = -1;
static unsigned request_timeout_ms;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_svc_dict.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, DICT_RECOUNT_FILE);
	metrics_reset();
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	struct pg_config cfg;
	pg_config_defaults(&cfg);
	cfg.conninfo = "host=/nonexistent-test-svc-dict port=1 connect_timeout=1";
	/* 0: never answered while the test runs */
	cfg.request_timeout_ms = request_timeout_ms ? request_timeout_ms : 600000;
	pool = pg_pool_new(base, &cfg, lookup_statements(), LOOKUP__COUNT);
	ck_assert_ptr_nonnull(pool);
	struct svc_dict_settings s = { .auth_names = "auth", .quota_names = "quota",
				       .account_names = "account", .sieve_names = "sieve",
				       .trusted_users = "",
				       .state_directory = dir };
	char err[256];
	svc = svc_dict_new(base, pool, &s, err, sizeof(err));
	ck_assert_msg(svc != NULL, "%s", err);
	memset(&set, 0, sizeof(set));
	limits = (struct conn_limits){ .idle_timeout_ms = 10000, .max_pipelined = 16,
				       .max_output_buffer = 64 * 1024 };
}

static void teardown(void)
{
	conn_set_close(&set, "test over");
	if (client >= 0)
		close(client);
	client = -1;
	pg_pool_free(pool);
	svc_dict_free(svc);
	event_base_free(base);
	unlink(path);
	rmdir(dir);
}

/* connect_to - a connection on a listener of the dict service, after its hello */
static void connect_to(enum svc_dict_listener which, const char *dict, bool over_limit)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(evutil_make_socket_nonblocking(sv[0]), 0);
	ck_assert_int_eq(evutil_make_socket_nonblocking(sv[1]), 0);
	client = sv[1];
	c = conn_new(&set, base, sv[0], "test", &svc_dict_proto, svc_dict_listener_arg(svc, which),
		     &limits, over_limit);
	ck_assert_ptr_nonnull(c);
	char hello[64];
	int n = snprintf(hello, sizeof(hello), "H3\t2\t0\t\t%s\n", dict);
	ck_assert_int_eq(write(client, hello, (size_t)n), n);
}

/* connect_quota - a connection on the quota listener (root: trusted), after its hello */
static void connect_quota(bool over_limit)
{
	connect_to(SVC_DICT_QUOTA, "quota", over_limit);
}

/* pump - a few loop turns for whatever is due */
static void pump(void)
{
	for (int i = 0; i < 20; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		struct timespec ts = { 0, 500000 };
		nanosleep(&ts, NULL);
	}
}

/* recv_all - what the client reads until the server closes (or a second passed) */
static const char *recv_all(bool *closed)
{
	static char buf[512];
	size_t n = 0;
	*closed = false;
	for (int i = 0; i < 200 && !*closed && n + 1 < sizeof(buf); i++) {
		pump();
		ssize_t r;
		while (n + 1 < sizeof(buf) && (r = read(client, buf + n, sizeof(buf) - 1 - n)) > 0)
			n += (size_t)r;
		if (r == 0)
			*closed = true;
	}
	buf[n] = '\0';
	return buf;
}

/* recv_lines - what the client reads until n lines came (or about two seconds passed) */
static const char *recv_lines(unsigned n)
{
	static char buf[512];
	size_t len = 0;
	unsigned lines = 0;
	for (int i = 0; i < 100 && lines < n && len + 1 < sizeof(buf); i++) {
		pump();
		ssize_t r;
		while (len + 1 < sizeof(buf) && (r = read(client, buf + len, sizeof(buf) - 1 - len)) > 0) {
			for (ssize_t k = 0; k < r; k++)
				lines += buf[len + (size_t)k] == '\n';
			len += (size_t)r;
		}
	}
	buf[len] = '\0';
	return buf;
}

/* Pigeonhole's first question for jan: the id of the script "vmail". */
#define NAME_JAN "Lpriv/sieve/name/vmail\tjan@example.org\n"

/* connect_send - connect_to, then the client writes lines */
static void connect_send(enum svc_dict_listener which, const char *dict, bool over_limit,
			 const char *lines)
{
	connect_to(which, dict, over_limit);
	ck_assert_int_eq(write(client, lines, strlen(lines)), (ssize_t)strlen(lines));
}

/* file - the recount list file's content */
static const char *file(void)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Over max_connections a counter lookup is answered "full" like an outage, then closed. */
START_TEST(test_over_limit_counter_lookup_answers_full)
{
	connect_quota(true);
	const char *l = "Lpriv/quota/storage\tjan\n";
	ck_assert_int_eq(write(client, l, strlen(l)), (ssize_t)strlen(l));
	bool closed;
	const char *got = recv_all(&closed);
	ck_assert_str_eq(got, "O9223372036854775807\n");
	ck_assert(closed);
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_LOOKUP, METRICS_QF_OVERLOAD), 1);
	/* Nothing was stored uncounted: not listed. */
	ck_assert_str_eq(file(), "");
}
END_TEST

/* A transaction open when the connection closes is listed for a recount. */
START_TEST(test_open_transaction_cut_is_listed)
{
	connect_quota(false);
	const char *t = "B1\tjan\nA1\tpriv/quota/storage\t100\n";
	ck_assert_int_eq(write(client, t, strlen(t)), (ssize_t)strlen(t));
	pump();
	conn_close(c, "test");
	ck_assert_str_eq(file(), "commit-closed jan\n");
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_COMMIT, METRICS_QF_CLOSED), 1);
}
END_TEST

/* A commit whose answer never reached the client (the connection went first) too. */
START_TEST(test_unanswered_commit_is_listed)
{
	connect_quota(false);
	const char *t = "B1\tewa\nA1\tpriv/quota/storage\t100\nC1\n";
	ck_assert_int_eq(write(client, t, strlen(t)), (ssize_t)strlen(t));
	pump();
	ck_assert_str_eq(file(), "");
	conn_close(c, "test");
	ck_assert_str_eq(file(), "commit-closed ewa\n");
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_COMMIT, METRICS_QF_CLOSED), 1);
}
END_TEST

/*
 * Draining with a commit's answer still owed: the client's next transaction, sent after
 * the drain began, is read and queued (Dovecot sends it without waiting for C1's answer);
 * a new lookup after it is refused, so the connection closes once its answers are out.
 */
START_TEST(test_drain_reads_the_next_transaction_refuses_a_lookup)
{
	connect_quota(false);
	const char *t1 = "B1\tjan\nA1\tpriv/quota/storage\t100\nC1\n";
	ck_assert_int_eq(write(client, t1, strlen(t1)), (ssize_t)strlen(t1));
	pump();
	conn_drain(c);
	const char *t2 = "B2\tjan\nA2\tpriv/quota/storage\t5\nC2\nLpriv/quota/storage\tjan\n";
	ck_assert_int_eq(write(client, t2, strlen(t2)), (ssize_t)strlen(t2));
	pump();
	ck_assert_uint_eq(conn_pending(c), 2);
	ck_assert_str_eq(conn_state_name(conn_state(c)), "closing");
	conn_close(c, "shutdown_timeout"); /* the daemon's deadline: both commits cut */
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_COMMIT, METRICS_QF_CLOSED), 2);
}
END_TEST

/* cache_userdb - a fresh cached userdb answer for login, the cache serving (live) */
static void cache_userdb(const char *login, const char *value)
{
	static const struct lookup_cache_config cc = { .size = 1 << 20, .ttl_ms = 300000,
						       .negative_ttl_ms = 10000 };
	ck_assert(lookup_cache_configure(&cc));
	lookup_cache_set_live(true);
	char ck[LOOKUP_KEY_MAX];
	ck_assert(lookup_cache_key(login, strlen(login), ck));
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lookup_cache_put(LOOKUP_USERDB, ck, strlen(login), LOOKUP_FOUND, value, strlen(value),
			 (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/*
 * A cached userdb answer goes out from the read that framed it, with the database
 * unreachable; behind a lookup still waiting for the database it waits its turn
 * (Dovecot's 2.3 dict client matches answers by their order).
 */
START_TEST(test_cache_hit_answered_in_order)
{
	cache_userdb("jan@example.org", "{\"home\":\"/h/jan\"}");
	connect_to(SVC_DICT_AUTH, "auth", false);
	const char *hit = "Lshared/userdb/Jan@example.org\tjan@example.org\n";
	ck_assert_int_eq(write(client, hit, strlen(hit)), (ssize_t)strlen(hit));
	pump();
	char buf[128];
	ssize_t n = read(client, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "O{\"home\":\"/h/jan\"}\n");
	ck_assert_uint_eq(conn_pending(c), 0);

	const char *two = "Lshared/userdb/ewa@example.org\tewa@example.org\n"
			  "Lshared/userdb/jan@example.org\tjan@example.org\n";
	ck_assert_int_eq(write(client, two, strlen(two)), (ssize_t)strlen(two));
	pump();
	ck_assert_uint_eq(conn_pending(c), 2);
	ck_assert_int_lt(read(client, buf, sizeof(buf)), 0); /* nothing may pass ewa's lookup */
	lookup_cache_set_live(false);
	lookup_cache_close();
}
END_TEST

/*
 * On the quota listener the sieve name gives the sieve role: what is not a script is
 * answered at once (N, an empty listing, a refused commit), in order; a script lookup
 * waits for the database even with a live cache (never cached), and a lookup without a
 * username is F, never N (N would deliver without the mailbox's forwarding).
 */
START_TEST(test_sieve_role_answers)
{
	static const struct lookup_cache_config cc = { .size = 1 << 20, .ttl_ms = 300000,
						       .negative_ttl_ms = 10000 };
	ck_assert(lookup_cache_configure(&cc));
	lookup_cache_set_live(true);
	connect_send(SVC_DICT_QUOTA, "sieve", false,
		     "Lpriv/quota/storage\tjan@example.org\n"
		     "Lpriv/sieve/\tjan@example.org\n"
		     "I0\t0\tpriv/sieve/\tjan@example.org\n"
		     "B1\tjan@example.org\nS1\tpriv/sieve/name/vmail\tx\nC1\n"
		     "Lpriv/sieve/name/vmail\t\n");
	ck_assert_str_eq(recv_lines(5), "N\nN\n\nF1\tthis dict is read-only\nFinvalid username\n");
	ck_assert_int_eq(write(client, NAME_JAN, strlen(NAME_JAN)), (ssize_t)strlen(NAME_JAN));
	pump();
	ck_assert_uint_eq(conn_pending(c), 1);
	char buf[64];
	ck_assert_int_lt(read(client, buf, sizeof(buf)), 0);
	/* Nothing was asked of the quota accounting. */
	ck_assert_str_eq(file(), "");
	lookup_cache_set_live(false);
	lookup_cache_close();
}
END_TEST

/* Root's tools may read scripts over the auth listener too; that connection gets no passdb. */
START_TEST(test_sieve_role_on_auth_listener)
{
	connect_send(SVC_DICT_AUTH, "sieve", false,
		     "Lshared/passdb/jan@example.org\tjan@example.org\n" NAME_JAN);
	ck_assert_str_eq(recv_lines(1), "N\n");
	ck_assert_uint_eq(conn_pending(c), 1);
}
END_TEST

/* Over max_connections a script lookup is F, then the connection closes. */
START_TEST(test_sieve_over_limit_fails)
{
	connect_send(SVC_DICT_QUOTA, "sieve", true, NAME_JAN);
	bool closed;
	ck_assert_str_eq(recv_all(&closed), "Ftoo many connections\n");
	ck_assert(closed);
}
END_TEST

/* The database does not answer within request_timeout: F, never N. */
START_TEST(test_sieve_database_down_fails)
{
	connect_send(SVC_DICT_QUOTA, "sieve", false,
		     NAME_JAN "Lpriv/sieve/data/0123456789abcdef\tjan@example.org\n");
	ck_assert_str_eq(recv_lines(2), "Fdatabase unavailable\nFdatabase unavailable\n");
	const struct metrics_lookup *m = metrics_lookup_get(METRICS_PROTO_DICT, LOOKUP_DICT_SIEVE_GET);
	ck_assert_uint_eq(m->requests, 2);
	ck_assert_uint_eq(m->status[LOOKUP_TEMPFAIL], 2);
	ck_assert_uint_eq(m->source[METRICS_UNCACHED], 2);
}
END_TEST

/* fast_timeout - the pool gives up on a request after 200 ms */
static void fast_timeout(void)
{
	request_timeout_ms = 200;
	setup();
}

static void fast_timeout_teardown(void)
{
	teardown();
	request_timeout_ms = 0;
}

static Suite *svc_dict_suite(void)
{
	Suite *s = suite_create("svc_dict");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_over_limit_counter_lookup_answers_full);
	tcase_add_test(tc, test_open_transaction_cut_is_listed);
	tcase_add_test(tc, test_unanswered_commit_is_listed);
	tcase_add_test(tc, test_drain_reads_the_next_transaction_refuses_a_lookup);
	tcase_add_test(tc, test_cache_hit_answered_in_order);
	tcase_add_test(tc, test_sieve_role_answers);
	tcase_add_test(tc, test_sieve_role_on_auth_listener);
	tcase_add_test(tc, test_sieve_over_limit_fails);
	suite_add_tcase(s, tc);
	TCase *down = tcase_create("database down");
	tcase_add_checked_fixture(down, fast_timeout, fast_timeout_teardown);
	tcase_add_test(down, test_sieve_database_down_fails);
	suite_add_tcase(s, down);
	return s;
}

CHECK_MAIN(svc_dict_suite)
