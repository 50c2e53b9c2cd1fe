/* test_replica: the two connection strings, pg_lsn parsing, and the replay wait against one server. */
#include "vmail/log.h"
#include "vmail/replica.h"
#include "lookup_cache.h"

#include <check.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_main.h"

static const char *dsn;

struct standby_row {
	const char *conninfo;
	bool standby;
};

static const struct standby_row standby_rows[] = {
	{ "host=/tmp dbname=vmail", false },
	{ "host=a,b target_session_attrs=prefer-standby", true },
	{ "host=a,b target_session_attrs=standby", true },
	{ "host=a target_session_attrs=read-only", true },
	{ "host=a target_session_attrs=read-write", false },
	{ "host=a target_session_attrs=primary", false },
	{ "host=a target_session_attrs=any", false },
	{ "postgresql://a:5432,b:5433/vmail?target_session_attrs=prefer-standby", true },
	{ "postgresql://a/vmail", false },
	{ "this is not = a conninfo '", false },
};

START_TEST(test_reads_from_standby)
{
	const struct standby_row *r = &standby_rows[_i];
	ck_assert_msg(replica_reads_from_standby(r->conninfo) == r->standby, "%s", r->conninfo);
}
END_TEST

/* parsed - conninfo's value of key after libpq parses it ("" when unset) */
static const char *parsed(const char *conninfo, const char *key)
{
	static char out[512];
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	ck_assert_ptr_nonnull(opts);
	out[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, key) == 0 && o->val)
			snprintf(out, sizeof(out), "%s", o->val);
	PQconninfoFree(opts);
	return out;
}

START_TEST(test_primary_conninfo)
{
	char err[256];
	char *p = replica_primary_conninfo(
		"host=/run/s1,db2 port=5432,5433 dbname=vmail user=vmail "
		"password='it\\'s a \\\\ secret' target_session_attrs=prefer-standby", err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_str_eq(parsed(p, "host"), "/run/s1,db2");
	ck_assert_str_eq(parsed(p, "port"), "5432,5433");
	ck_assert_str_eq(parsed(p, "password"), "it's a \\ secret");
	ck_assert_str_eq(parsed(p, "target_session_attrs"), "read-write");
	ck_assert(!replica_reads_from_standby(p));
	free(p);

	p = replica_primary_conninfo("postgresql://u@a:1,b:2/vmail?application_name=x", err,
				     sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_str_eq(parsed(p, "host"), "a,b");
	ck_assert_str_eq(parsed(p, "port"), "1,2");
	ck_assert_str_eq(parsed(p, "user"), "u");
	ck_assert_str_eq(parsed(p, "dbname"), "vmail");
	ck_assert_str_eq(parsed(p, "application_name"), "x");
	ck_assert_str_eq(parsed(p, "target_session_attrs"), "read-write");
	free(p);

	ck_assert_ptr_null(replica_primary_conninfo("host='unterminated", err, sizeof(err)));
	ck_assert_msg(strstr(err, "unterminated"), "%s", err);
	ck_assert_ptr_null(replica_primary_conninfo("nosuchkey=1", err, sizeof(err)));
	ck_assert_msg(strstr(err, "nosuchkey"), "%s", err);
}
END_TEST

START_TEST(test_lsn_parse)
{
	uint64_t v;
	ck_assert(replica_lsn_parse("0/0", 3, &v) && v == 0);
	ck_assert(replica_lsn_parse("16/B374D848", 11, &v) && v == 0x16B374D848ULL);
	ck_assert(replica_lsn_parse("FFFFFFFF/ffffffff", 17, &v) && v == UINT64_MAX);
	ck_assert(replica_lsn_parse("0/3000060", 9, &v) && v == 0x3000060);
	ck_assert(!replica_lsn_parse("", 0, &v));
	ck_assert(!replica_lsn_parse("0", 1, &v));
	ck_assert(!replica_lsn_parse("/1", 2, &v));
	ck_assert(!replica_lsn_parse("1/", 2, &v));
	ck_assert(!replica_lsn_parse("1/g", 3, &v));
	ck_assert(!replica_lsn_parse("100000000/0", 11, &v));
	ck_assert(!replica_lsn_parse("1/2/3", 5, &v));
	/* ordering follows the numbers */
	uint64_t a, b;
	ck_assert(replica_lsn_parse("1/0", 3, &a) && replica_lsn_parse("0/FFFFFFFF", 10, &b));
	ck_assert(a > b);
}
END_TEST

/* ---------------------------------------------------------------- against a server */

static char applied[8][64];
static int napplied;

static void on_apply(void *arg, const char *payload, size_t len)
{
	(void)arg;
	ck_assert_uint_eq(strlen(payload), len);
	if (napplied < 8)
		snprintf(applied[napplied], sizeof(applied[0]), "%s", payload);
	napplied++;
}

static const struct replica_wait_handler apply_only = { .apply = on_apply };

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static bool run_until(struct event_base *base, int target, double ms)
{
	struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = { 0, 20000 };
	event_add(tick, &tv);
	double end = now_ms() + ms;
	while (napplied < target && now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	return napplied >= target;
}

/* A primary replays its own WAL at once: every note comes back, in order. */
START_TEST(test_wait_on_primary)
{
	struct event_base *base = event_base_new();
	napplied = 0;
	struct replica_wait *rw = replica_wait_new(base, dsn, dsn, 2000, &apply_only);
	ck_assert_ptr_nonnull(rw);
	replica_wait_notify(rw, "domain a.example", 16);
	replica_wait_notify(rw, "login jan", 9);
	ck_assert(run_until(base, 2, 5000));
	ck_assert_str_eq(applied[0], "domain a.example");
	ck_assert_str_eq(applied[1], "login jan");
	struct replica_wait_stats st;
	replica_wait_stats(rw, &st);
	ck_assert_uint_eq(st.applied, 2);
	ck_assert_uint_eq(st.forced, 0);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_gt(st.replayed_lsn, 0);

	/* A burst beyond the bound collapses into one "all". */
	napplied = 0;
	char p[32];
	for (int i = 0; i < REPLICA_WAIT_MAX_NOTES + 5; i++) {
		snprintf(p, sizeof(p), "login u%d", i);
		replica_wait_notify(rw, p, strlen(p));
	}
	ck_assert(run_until(base, 5, 5000));
	ck_assert_str_eq(applied[0], "all");
	ck_assert_int_eq(napplied, 5);
	replica_wait_notify(rw, "login late", 10);
	replica_wait_free(rw); /* pending notes are dropped, not applied into a closing cache */
	ck_assert_int_eq(napplied, 5);
	event_base_free(base);
}
END_TEST

/* Nothing reachable: notes wait (and would be forced after REPLICA_WAIT_MAX_MS). */
START_TEST(test_wait_unreachable)
{
	struct event_base *base = event_base_new();
	napplied = 0;
	const char *nowhere = "host=/nonexistent dbname=x connect_timeout=1";
	struct replica_wait *rw = replica_wait_new(base, nowhere, nowhere, 500, &apply_only);
	ck_assert_ptr_nonnull(rw);
	replica_wait_notify(rw, "all", 3);
	ck_assert(!run_until(base, 1, 800));
	struct replica_wait_stats st;
	replica_wait_stats(rw, &st);
	ck_assert_uint_eq(st.pending, 1);
	replica_wait_free(rw);
	event_base_free(base);
}
END_TEST

/*
 * The wait's read connection dies while a note waits: the cache is emptied,
 * once.  The read side goes to the same server, but a schema earlier on its
 * search_path makes it look like a standby that never replays (0/1), so the
 * note keeps waiting.
 */
#define LAG_SCHEMA "test_replica_lag"
#define LAG_APP "test_replica_lagging"

static int nlost;

static void on_lost(void *arg)
{
	(void)arg;
	nlost++;
	lookup_cache_drop_all("test: the replay wait lost its connection");
}

static void on_burst(void *arg, bool begin)
{
	(void)arg;
	if (begin)
		lookup_cache_burst_begin();
	else
		lookup_cache_burst_end();
}

static void sql(PGconn *pq, const char *q)
{
	PGresult *r = PQexec(pq, q);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
		      "%s: %s", q, PQerrorMessage(pq));
	PQclear(r);
}

/* run_while - the loop until done() or ms pass; done()'s last value */
static bool run_while(struct event_base *base, bool (*done)(struct replica_wait *),
		      struct replica_wait *rw, double ms)
{
	struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = { 0, 20000 };
	event_add(tick, &tv);
	double end = now_ms() + ms;
	while (!done(rw) && now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	return done(rw);
}

static bool polled_lagging(struct replica_wait *rw)
{
	struct replica_wait_stats st;
	replica_wait_stats(rw, &st);
	return st.replayed_lsn == 1;
}

static bool told_lost(struct replica_wait *rw)
{
	(void)rw;
	return nlost > 0;
}

static bool never(struct replica_wait *rw)
{
	(void)rw;
	return false;
}

static bool alias_cached(const char *key)
{
	struct cache_answer a;
	return lookup_cache_get(LOOKUP_ALIAS, key, strlen(key), 2000, false, &a) == CACHE_FRESH;
}

START_TEST(test_wait_conn_lost)
{
	PGconn *admin = PQconnectdb(dsn);
	ck_assert_msg(PQstatus(admin) == CONNECTION_OK, "%s", PQerrorMessage(admin));
	sql(admin, "SET client_min_messages = warning");
	sql(admin, "DROP SCHEMA IF EXISTS " LAG_SCHEMA " CASCADE");
	sql(admin, "CREATE SCHEMA " LAG_SCHEMA);
	sql(admin, "CREATE FUNCTION " LAG_SCHEMA ".pg_is_in_recovery() RETURNS boolean "
		   "LANGUAGE sql AS 'SELECT true'");
	sql(admin, "CREATE FUNCTION " LAG_SCHEMA ".pg_last_wal_replay_lsn() RETURNS pg_lsn "
		   "LANGUAGE sql AS 'SELECT ''0/1''::pg_lsn'");
	char lagging[1024];
	snprintf(lagging, sizeof(lagging),
		 "%s application_name=" LAG_APP " options='-c search_path=" LAG_SCHEMA ",pg_catalog'",
		 dsn);

	const struct lookup_cache_config cc = { .size = 1 << 20, .ttl_ms = 300000,
						.negative_ttl_ms = 10000 };
	ck_assert(lookup_cache_configure(&cc));
	lookup_cache_set_live(true);
	lookup_cache_put(LOOKUP_ALIAS, "info@b.example", 14, LOOKUP_FOUND, "jan@b.example", 13, 1000);
	ck_assert(alias_cached("info@b.example"));

	struct event_base *base = event_base_new();
	napplied = 0;
	nlost = 0;
	const struct replica_wait_handler h = {
		.apply = on_apply, .burst = on_burst, .lost = on_lost,
	};
	struct replica_wait *rw = replica_wait_new(base, lagging, dsn, 2000, &h);
	ck_assert_ptr_nonnull(rw);
	replica_wait_notify(rw, "domain a.example", 16);
	ck_assert_msg(run_while(base, polled_lagging, rw, 10000), "the lagging read side never answered");
	ck_assert_int_eq(napplied, 0);
	ck_assert_int_eq(nlost, 0);
	ck_assert(alias_cached("info@b.example")); /* another domain: kept so far */

	sql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		   "WHERE application_name = '" LAG_APP "'");
	bool lost = run_while(base, told_lost, rw, 10000);
	struct replica_wait_stats st;
	replica_wait_stats(rw, &st);
	printf("replay wait, read connection killed: lost told %d times, cache %s, %zu notes pending\n",
	       nlost, alias_cached("info@b.example") ? "kept" : "emptied", st.pending);
	fflush(stdout);
	ck_assert_msg(lost, "the lost connection went unnoticed");
	ck_assert(!alias_cached("info@b.example"));
	ck_assert_uint_eq(st.pending, 1); /* one "all", waiting for replay again */
	/* once: the reconnected side polls on without telling again */
	run_while(base, never, rw, 500);
	ck_assert_int_eq(nlost, 1);
	ck_assert_int_eq(napplied, 0);

	replica_wait_free(rw);
	event_base_free(base);
	lookup_cache_close();
	sql(admin, "DROP SCHEMA " LAG_SCHEMA " CASCADE");
	PQfinish(admin);
}
END_TEST

/* main: logging first; without VMAIL_TEST_DSN it fails rather than skip the database case. */
int main(void)
{
	log_init("test_replica", false, LOG_LEVEL_ERROR);
	dsn = getenv("VMAIL_TEST_DSN");
	if (dsn && !*dsn)
		dsn = NULL;
	Suite *s = suite_create("replica");
	TCase *tc = tcase_create("pure");
	tcase_add_loop_test(tc, test_reads_from_standby, 0,
			    (int)(sizeof(standby_rows) / sizeof(standby_rows[0])));
	tcase_add_test(tc, test_primary_conninfo);
	tcase_add_test(tc, test_lsn_parse);
	tcase_add_test(tc, test_wait_unreachable);
	suite_add_tcase(s, tc);
	if (dsn) {
		tc = tcase_create("database");
		tcase_set_timeout(tc, 30);
		tcase_add_test(tc, test_wait_on_primary);
		tcase_add_test(tc, test_wait_conn_lost);
		suite_add_tcase(s, tc);
	} else {
		fprintf(stderr, "test_replica: VMAIL_TEST_DSN is not set (tests/run-all.sh sets it)\n");
		return EXIT_FAILURE;
	}
	return check_main_run(s);
}
