/* test_dict_recount: the failed-quota-request list: metrics, the file that survives a restart, its bounds. */
#include "dict_recount.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lookup_kinds.h"
#include "vmail/pg.h"

#include "check_main.h"

static char dir[64];
static char path[128];
static struct event_base *base;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_dict_recount.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, DICT_RECOUNT_FILE);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	metrics_reset();
}

static void teardown(void)
{
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	unlink(path);
	rmdir(dir);
	event_base_free(base);
}

/* file - the file's content (static buffer) */
static const char *file(void)
{
	static char buf[DICT_RECOUNT_FILE_MAX + 64];
	FILE *f = fopen(path, "r");
	if (!f)
		return "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void write_file(const char *s)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(s, f);
	fclose(f);
}

/* No event loop runs here, so nothing is sent to the (absent) pool. */
START_TEST(test_listed_once_per_outage_and_kept)
{
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	ck_assert_ptr_nonnull(rc);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	dict_recount_failed(rc, METRICS_QUOTA_LOOKUP, METRICS_QF_UNAVAILABLE, "ewa@acme.pl");
	/* Bad input is counted, never listed: a recount would not change anything. */
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_DENIED, "eve");
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_RANGE, "eve");
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_INVALID, "eve");
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "bad\nname");
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE), 3);
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_LOOKUP, METRICS_QF_UNAVAILABLE), 1);
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_COMMIT, METRICS_QF_DENIED), 1);
	/* A lookup is answered "full": nothing stored uncounted, nothing to list. */
	const char *want = "commit-unavailable jan\n";
	ck_assert_str_eq(file(), want);
	ck_assert_uint_eq(dict_recount_pending(rc), strlen(want));
	/* The outage ended (the database answered) but the insert did not happen yet: a new
	 * outage lists jan again, the file keeps the old lines. */
	dict_recount_db_ok(rc);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	dict_recount_free(rc);
	ck_assert_str_eq(file(), "commit-unavailable jan\ncommit-unavailable jan\n");
	/* A commit of a mailbox whose lookup failed first is still listed. */
	rc = dict_recount_new(base, NULL, dir);
	dict_recount_failed(rc, METRICS_QUOTA_LOOKUP, METRICS_QF_UNAVAILABLE, "ewa@acme.pl");
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "ewa@acme.pl");
	dict_recount_free(rc);
	ck_assert_str_eq(file(), "commit-unavailable jan\ncommit-unavailable jan\n"
				 "commit-unavailable ewa@acme.pl\n");

	/* A restart: the new process takes the lines over. */
	rc = dict_recount_new(base, NULL, dir);
	ck_assert_uint_eq(dict_recount_pending(rc), strlen(file()));
	dict_recount_free(rc);
}
END_TEST

START_TEST(test_cut_line_dropped)
{
	write_file("commit-unavailable jan\ncommit-unavailable e");
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	ck_assert_uint_eq(dict_recount_pending(rc), strlen("commit-unavailable jan\n"));
	ck_assert_str_eq(file(), "commit-unavailable jan\n");
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_ERROR, "ewa");
	ck_assert_str_eq(file(), "commit-unavailable jan\ncommit-error ewa\n");
	dict_recount_free(rc);
}
END_TEST

START_TEST(test_bounded)
{
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	char login[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(login, sizeof(login), "user%05d@example.org", i);
		dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, login);
	}
	const char *f = file();
	ck_assert_uint_le(strlen(f), DICT_RECOUNT_FILE_MAX);
	ck_assert_uint_eq(dict_recount_pending(rc), strlen(f));
	/* Past the bound one "*" entry stands for every mailbox, once. */
	const char *star = strstr(f, "overflow *\n");
	ck_assert_ptr_nonnull(star);
	ck_assert_ptr_null(strstr(star + 1, "overflow *\n"));
	ck_assert_str_eq(star + strlen("overflow *\n"), "");
	dict_recount_free(rc);
	/* A file over the bound (an older, larger limit) is cut and ends with "*". */
	FILE *fp = fopen(path, "a");
	for (int i = 0; i < 1000; i++)
		fprintf(fp, "commit-unavailable more%d\n", i);
	fclose(fp);
	rc = dict_recount_new(base, NULL, dir);
	ck_assert_uint_le(dict_recount_pending(rc), DICT_RECOUNT_FILE_MAX);
	dict_recount_free(rc);
}
END_TEST

START_TEST(test_parse_line)
{
	size_t rlen, llen;
	const char *login;
	const char *l = "commit-unavailable jan kowalski@x";
	ck_assert(dict_recount_parse_line(l, strlen(l), &rlen, &login, &llen));
	ck_assert_uint_eq(rlen, strlen("commit-unavailable"));
	ck_assert_uint_eq(llen, strlen("jan kowalski@x"));
	ck_assert(dict_recount_parse_line("overflow *", 10, &rlen, &login, &llen));
	ck_assert(!dict_recount_parse_line("Commit jan", 10, &rlen, &login, &llen));
	ck_assert(!dict_recount_parse_line(" jan", 4, &rlen, &login, &llen));
	ck_assert(!dict_recount_parse_line("commit ", 7, &rlen, &login, &llen));
	ck_assert(!dict_recount_parse_line("commit", 6, &rlen, &login, &llen));
	ck_assert(!dict_recount_parse_line("commit a\tb", 10, &rlen, &login, &llen));
	ck_assert(!dict_recount_parse_line("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa jan", 37, &rlen, &login,
					   &llen));
}
END_TEST

START_TEST(test_missing_directory)
{
	char gone[160];
	snprintf(gone, sizeof(gone), "%s/gone", dir);
	struct dict_recount *rc = dict_recount_new(base, NULL, gone);
	ck_assert_ptr_nonnull(rc);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	/* Kept in memory: inserted once the database answers, lost only by a restart. */
	ck_assert_uint_eq(dict_recount_pending(rc), strlen("commit-unavailable jan\n"));
	dict_recount_free(rc);
}
END_TEST

START_TEST(test_memory_only)
{
	struct dict_recount *rc = dict_recount_new(base, NULL, "");
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	ck_assert_uint_eq(dict_recount_pending(rc), strlen("commit-unavailable jan\n"));
	ck_assert_int_ne(access(path, F_OK), 0);
	dict_recount_free(rc);
	dict_recount_failed(NULL, METRICS_QUOTA_LOOKUP, METRICS_QF_OVERLOAD, "jan");
	ck_assert_uint_eq(metrics_quota_failures(METRICS_QUOTA_LOOKUP, METRICS_QF_OVERLOAD), 1);
}
END_TEST


/* The insert's retry delay: 1 s doubling, at most 60 s, whatever the streak's length. */
START_TEST(test_backoff_schedule)
{
	ck_assert_uint_eq(dict_recount_backoff_ms(1), 1000);
	ck_assert_uint_eq(dict_recount_backoff_ms(2), 2000);
	ck_assert_uint_eq(dict_recount_backoff_ms(6), 32000);
	ck_assert_uint_eq(dict_recount_backoff_ms(7), DICT_RECOUNT_BACKOFF_MAX_MS);
	ck_assert_uint_eq(dict_recount_backoff_ms(64), DICT_RECOUNT_BACKOFF_MAX_MS);
	ck_assert_uint_eq(dict_recount_backoff_ms(~0u), DICT_RECOUNT_BACKOFF_MAX_MS);
}
END_TEST

/* stderr_to - send the log to a file from now on; returns the saved descriptor */
static int stderr_to(const char *name)
{
	fflush(stderr);
	int saved = dup(2);
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, 2), 0);
	close(fd);
	return saved;
}

/* count_in - occurrences of needle in the file name */
static unsigned count_in(const char *name, const char *needle)
{
	static char buf[1 << 16];
	FILE *f = fopen(name, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	unsigned k = 0;
	for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
		k++;
	return k;
}

static void pump(void)
{
	for (int i = 0; i < 20; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
}

/*
 * An insert that keeps failing while quota lookups succeed (a schema older than 014, a
 * missing grant): each success used to send the insert again at once, and each failure
 * was logged.  Now the retries back off and the streak is logged once.  The pool has no
 * recount statement, so every insert is answered PG_PERMFAIL without a database.
 */
START_TEST(test_insert_failure_backs_off)
{
	static const struct pg_stmt one[1] = { { "t0", "SELECT 1", 0, 1, PG_SHAPE_VALUE, 0, NULL } };
	struct pg_config cfg;
	pg_config_defaults(&cfg);
	cfg.conninfo = "host=/nonexistent-test-dict-recount port=1";
	struct pg_pool *pool = pg_pool_new(base, &cfg, one, 1);
	ck_assert_ptr_nonnull(pool);
	char logf[160];
	snprintf(logf, sizeof(logf), "%s/log", dir);
	int saved = stderr_to(logf);
	struct dict_recount *rc = dict_recount_new(base, pool, dir);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	for (int i = 0; i < 10; i++) {
		dict_recount_db_ok(rc); /* a quota lookup answered */
		pump();
	}
	struct pg_stats st;
	pg_pool_stats(pool, &st);
	dict_recount_free(rc);
	pg_pool_free(pool);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unsigned logged = count_in(logf, "quota recount list: the insert failed");
	unlink(logf);
	fprintf(stderr, "inserts sent: %llu, failures logged: %u\n",
		(unsigned long long)st.answers[PG_PERMFAIL], logged);
	/* The first at once, one more when the database next answers, then the timer's. */
	ck_assert_uint_eq(st.answers[PG_PERMFAIL], 2);
	ck_assert_uint_eq(logged, 1);
	/* Still listed: the line waits for a later insert. */
	ck_assert_str_eq(file(), "commit-unavailable jan\n");
}
END_TEST

/*
 * failed_on_full_disk - a failed commit of login while the file may grow only room bytes
 * past the line "commit-unavailable jan\n" (RLIMIT_FSIZE): its append is cut short
 */
static void failed_on_full_disk(struct dict_recount *rc, const char *login, size_t room)
{
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, lim;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = strlen("commit-unavailable jan\n") + room;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, login);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
}

/* A short append (a full disk) must not glue the next line onto a cut one. */
START_TEST(test_short_append_repaired)
{
	write_file("commit-unavailable jan\n");
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	failed_on_full_disk(rc, "a-rather-long-login@example.org", 10);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "ewa");
	ck_assert_str_eq(file(), "commit-unavailable jan\n"
				 "commit-unavailable a-rather-long-login@example.org\n"
				 "commit-unavailable ewa\n");
	dict_recount_free(rc);
}
END_TEST

/* A FIFO (or anything not a regular file) in the file's place: refused, start-up goes on. */
START_TEST(test_fifo_refused)
{
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	ck_assert_ptr_nonnull(rc);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	ck_assert_uint_eq(dict_recount_pending(rc), strlen("commit-unavailable jan\n"));
	dict_recount_free(rc);
	struct stat sb;
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert(S_ISFIFO(sb.st_mode));
}
END_TEST

/*
 * A FIFO at the rewrite's temporary name (start-up rewrites a file ending in a cut line):
 * opening it for writing used to wait for a reader, hanging the start-up (Check's
 * timeout).  It is replaced, never opened.
 */
START_TEST(test_fifo_at_temporary_name)
{
	write_file("commit-unavailable jan\ncommit-unavailable e");
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	ck_assert_int_eq(mkfifo(tmp, 0600), 0);
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	ck_assert_ptr_nonnull(rc);
	ck_assert_str_eq(file(), "commit-unavailable jan\n");
	struct stat sb;
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));
	dict_recount_free(rc);
}
END_TEST

/* A hard link at the temporary name: its other name's file is never written to. */
START_TEST(test_hard_link_at_temporary_name_untouched)
{
	char other[160], tmp[160], buf[64] = "";
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(other, "w");
	ck_assert_ptr_nonnull(f);
	fputs("precious\n", f);
	fclose(f);
	ck_assert_int_eq(link(other, tmp), 0);
	write_file("commit-unavailable jan\ncommit-unavailable e");
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	ck_assert_str_eq(file(), "commit-unavailable jan\n");
	dict_recount_free(rc);
	f = fopen(other, "r");
	ck_assert_ptr_nonnull(f);
	buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
	fclose(f);
	unlink(other);
	ck_assert_str_eq(buf, "precious\n");
}
END_TEST

/*
 * A cut append leaves the file stale; a stop before the next change (a SIGTERM while the
 * insert backs off) must still write the whole list, or the mailboxes answered F since
 * are lost.
 */
START_TEST(test_stale_file_written_at_free)
{
	struct dict_recount *rc = dict_recount_new(base, NULL, dir);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	ck_assert_str_eq(file(), "commit-unavailable jan\n");
	failed_on_full_disk(rc, "ewa", 5);
	ck_assert_str_eq(file(), "commit-unavailable jan\n");
	dict_recount_free(rc);
	ck_assert_str_eq(file(), "commit-unavailable jan\ncommit-unavailable ewa\n");
}
END_TEST

/* The file works again once its directory does: it then holds the whole list. */
START_TEST(test_file_recovers)
{
	char sub[160], subpath[200];
	snprintf(sub, sizeof(sub), "%s/late", dir);
	snprintf(subpath, sizeof(subpath), "%s/%s", sub, DICT_RECOUNT_FILE);
	struct dict_recount *rc = dict_recount_new(base, NULL, sub);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "jan");
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "ewa");
	dict_recount_free(rc);
	char buf[256] = "";
	FILE *f = fopen(subpath, "r");
	if (f) {
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
	}
	unlink(subpath);
	rmdir(sub);
	ck_assert_str_eq(buf, "commit-unavailable jan\ncommit-unavailable ewa\n");
}
END_TEST

/*
 * db mode (VMAIL_TEST_DSN): an insert that succeeds while new lines came in must clear the
 * "*" it took along, or a later overflow is dropped without a "*".  The recount statement
 * here only checks its three arrays (no vmail schema needed); the others are never used.
 */
static struct pg_stmt db_stmts[LOOKUP__COUNT];
static char db_names[LOOKUP__COUNT][16];

static struct pg_pool *db_pool(void)
{
	const char *dsn = getenv("VMAIL_TEST_DSN");
	ck_assert_msg(dsn && dsn[0], "VMAIL_TEST_DSN is not set (tests/world/pg.sh start DIR)");
	for (unsigned i = 0; i < LOOKUP__COUNT; i++) {
		snprintf(db_names[i], sizeof(db_names[i]), "t%u", i);
		db_stmts[i] = (struct pg_stmt){ db_names[i], "SELECT 1", 0, 1, PG_SHAPE_VALUE, 0, NULL };
	}
	db_stmts[LOOKUP_USAGE_RECOUNT_ADD] = (struct pg_stmt){
		"recount", "SELECT cardinality($1::text[]) + cardinality($2::text[]) "
			   "+ cardinality($3::integer[])", 3, 1, PG_SHAPE_VALUE, 0, NULL };
	struct pg_config cfg;
	pg_config_defaults(&cfg);
	cfg.conninfo = dsn;
	cfg.pool_size = 1;
	struct pg_pool *pool = pg_pool_new(base, &cfg, db_stmts, LOOKUP__COUNT);
	ck_assert_ptr_nonnull(pool);
	return pool;
}

/*
 * fill - failed commits until the list is full: short lines up to 100 bytes from the
 * bound, then a long one that no longer fits, so the "*" leaves room for a short line
 */
static void fill(struct dict_recount *rc, char prefix)
{
	char login[300];
	for (int i = 0; dict_recount_pending(rc) + 40 <= DICT_RECOUNT_FILE_MAX - 100; i++) {
		snprintf(login, sizeof(login), "%c%07d@example.org", prefix, i); /* 40-byte lines */
		dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, login);
	}
	memset(login, 'x', 200);
	snprintf(login + 200, sizeof(login) - 200, "%c@example.org", prefix);
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, login);
}

/* loop_until_ready - turn the loop until the pool has a connection that takes requests: on a
 * loaded machine (ctest -j2 beside a build) connecting can outlast the insert's deadline,
 * and a failed first insert would take the late line along at its retry */
static void loop_until_ready(struct pg_pool *pool)
{
	struct pg_stats st;
	for (int i = 0; i < 15000; i++) {
		pg_pool_stats(pool, &st);
		if (st.conns[PG_CONN_READY] > 0)
			return;
		event_base_loop(base, EVLOOP_NONBLOCK);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("the pool has no ready connection after 15 s (%llu connection failures)",
		     (unsigned long long)st.conn_failures);
}

START_TEST(test_overflow_after_insert)
{
	struct pg_pool *pool = db_pool();
	loop_until_ready(pool);
	struct dict_recount *rc = dict_recount_new(base, pool, dir);
	fill(rc, 'a');
	ck_assert_ptr_nonnull(strstr(file(), "overflow *\n"));
	dict_recount_db_ok(rc);
	event_base_loop(base, EVLOOP_NONBLOCK); /* the insert of everything is sent */
	struct pg_stats st;
	pg_pool_stats(pool, &st);
	ck_assert_msg(st.queued + st.inflight == 1, "the insert is not on its way (%zu queued, %zu in flight)",
		      st.queued, st.inflight);
	/* A line comes in while the insert is in flight (it fits after the "*"): it stays. */
	dict_recount_failed(rc, METRICS_QUOTA_COMMIT, METRICS_QF_UNAVAILABLE, "late@example.org");
	const size_t late = strlen("commit-unavailable late@example.org\n");
	for (int i = 0; i < 15000 && dict_recount_pending(rc) != late; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	pg_pool_stats(pool, &st);
	ck_assert_msg(dict_recount_pending(rc) == late,
		      "%zu bytes pending, not the late line's %zu (answers: %llu found, %llu tempfail, "
		      "%llu timeouts, %llu connection failures)", dict_recount_pending(rc), late,
		      (unsigned long long)st.answers[PG_FOUND], (unsigned long long)st.answers[PG_TEMPFAIL],
		      (unsigned long long)st.timeouts, (unsigned long long)st.conn_failures);
	ck_assert_str_eq(file(), "commit-unavailable late@example.org\n");
	/* A new outage fills the list again: it must end with its own "*". */
	fill(rc, 'b');
	const char *f = file();
	ck_assert_msg(strstr(f, "overflow *\n") != NULL, "no \"*\" after the second overflow "
		      "(%zu bytes listed)", strlen(f));
	dict_recount_free(rc);
	pg_pool_free(pool);
}
END_TEST

static Suite *dict_recount_suite(void)
{
	Suite *s = suite_create("dict_recount");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_listed_once_per_outage_and_kept);
	tcase_add_test(tc, test_cut_line_dropped);
	tcase_add_test(tc, test_bounded);
	tcase_add_test(tc, test_parse_line);
	tcase_add_test(tc, test_memory_only);
	tcase_add_test(tc, test_missing_directory);
	tcase_add_test(tc, test_backoff_schedule);
	tcase_add_test(tc, test_insert_failure_backs_off);
	tcase_add_test(tc, test_short_append_repaired);
	tcase_add_test(tc, test_fifo_refused);
	tcase_add_test(tc, test_file_recovers);
	tcase_add_test(tc, test_fifo_at_temporary_name);
	tcase_add_test(tc, test_hard_link_at_temporary_name_untouched);
	tcase_add_test(tc, test_stale_file_written_at_free);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *dict_recount_db_suite(void)
{
	Suite *s = suite_create("dict_recount_db");
	TCase *tc = tcase_create("db");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_overflow_after_insert);
	suite_add_tcase(s, tc);
	return s;
}

/* main: "test_dict_recount" runs the pure cases, "test_dict_recount db" the database's. */
int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "db") == 0)
		return check_main_run(dict_recount_db_suite());
	return check_main_run(dict_recount_suite());
}
