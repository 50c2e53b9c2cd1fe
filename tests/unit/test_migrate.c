/* test_migrate: finding and ordering schema migrations on disk (no database needed). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"

static char dir[64];

static void touch(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("SELECT 1;\n", f);
	fclose(f);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_migrate.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(sorted_and_filtered)
{
	touch("010_ten.sql");
	touch("002_two.sql");
	touch("001_base-tables.sql");
	touch("README");
	touch("003_.sql");      /* no name */
	touch("abc_x.sql");     /* no number */
	touch("004_x.sql.orig"); /* not .sql */
	touch("005 x.sql");     /* space */
	touch("000_zero.sql");  /* version 0 */
	struct migrate_set set;
	char err[256];
	ck_assert_msg(migrate_scan(dir, &set, err, sizeof(err)), "%s", err);
	ck_assert_uint_eq(set.count, 3);
	ck_assert_int_eq(set.steps[0].version, 1);
	ck_assert_str_eq(set.steps[0].name, "001_base-tables");
	ck_assert_int_eq(set.steps[1].version, 2);
	ck_assert_int_eq(set.steps[2].version, 10);
	ck_assert(strstr(set.steps[2].path, "/010_ten.sql"));
	ck_assert_int_eq(migrate_latest(&set), 10);
	migrate_set_free(&set);
	ck_assert_uint_eq(set.count, 0);
}
END_TEST

START_TEST(duplicate_version)
{
	touch("001_a.sql");
	touch("1_b.sql");
	struct migrate_set set;
	char err[256] = "";
	ck_assert(!migrate_scan(dir, &set, err, sizeof(err)));
	ck_assert_msg(strstr(err, "same version 1"), "%s", err);
}
END_TEST

START_TEST(empty_or_missing)
{
	struct migrate_set set;
	char err[256] = "";
	ck_assert(!migrate_scan(dir, &set, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no migrations"), "%s", err);
	ck_assert(!migrate_scan("/nonexistent/schema", &set, err, sizeof(err)));
	ck_assert_msg(strstr(err, "cannot read schema directory /nonexistent/schema"), "%s", err);
}
END_TEST

START_TEST(repo_schema)
{
	/* The migrations shipped in the repository follow the naming rule. */
	const char *src = getenv("VMAIL_SOURCE_DIR");
	if (!src)
		return;
	char path[1024], err[256];
	snprintf(path, sizeof(path), "%s/schema", src);
	struct migrate_set set;
	ck_assert_msg(migrate_scan(path, &set, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(set.steps[0].version, 1);
	migrate_set_free(&set);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("scan");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sorted_and_filtered);
	tcase_add_test(tc, duplicate_version);
	tcase_add_test(tc, empty_or_missing);
	tcase_add_test(tc, repo_schema);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
