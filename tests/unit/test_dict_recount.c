/* test_dict_recount: the failed-quota-request list: metrics, the file that survives a restart, its bounds. */
#include "dict_recount.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

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
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dict_recount_suite)
