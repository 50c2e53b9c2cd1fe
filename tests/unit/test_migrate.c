/* test_migrate: finding and ordering schema files on disk, and planning what a database lacks (no database needed). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "check_main.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void touch(const char *name)
{
	write_file(name, "SELECT 1;\n");
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
	touch("grants.sql");
	touch("R_rules.sql");
	touch("R_admin.sql");
	touch("R_valid.sql");
	touch("R_.sql");        /* no family */
	touch("R_a b.sql");     /* space */
	touch("grants.sql.orig");
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
	/* checks first, grants last, the other repeatables by name between */
	const char *defs[] = { "R_valid.sql", "R_admin.sql", "R_rules.sql", "grants.sql" };
	const enum migrate_kind kinds[] = { MIGRATE_CHECKS, MIGRATE_REPEATABLE, MIGRATE_REPEATABLE, MIGRATE_GRANTS };
	ck_assert_uint_eq(set.ndefs, 4);
	for (size_t i = 0; i < 4; i++) {
		ck_assert_str_eq(set.defs[i].name, defs[i]);
		ck_assert_int_eq(set.defs[i].kind, kinds[i]);
	}
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


START_TEST(checksum_of_file)
{
	char sum[65], err[256];
	char path[128];
	write_file("001_a.sql", "abc");
	snprintf(path, sizeof(path), "%s/001_a.sql", dir);
	ck_assert_msg(migrate_checksum(path, sum, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(sum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

/* The plan for one database state: applied versions and recorded checksums. */
struct plan_case {
	const char *what;
	int versions[4];      /* applied, 0-terminated */
	const char *recorded; /* "file=text;..." : the file's text when it was applied */
	const char *want;     /* names in order, space-separated; or the error's words */
	bool fails;
};

static const struct plan_case plan_cases[] = {
	{ "empty database: everything, checks first and grants last", { 0 }, "",
	  "R_valid.sql 011_base 012_more R_a.sql R_b.sql grants.sql", false },
	{ "up to date: nothing", { 11, 12 }, "R_valid.sql=v;R_a.sql=a;R_b.sql=b;grants.sql=g", "", false },
	{ "one repeatable changed: it, then grants", { 11, 12 }, "R_valid.sql=v;R_a.sql=a;R_b.sql=old;grants.sql=g",
	  "R_b.sql grants.sql", false },
	{ "only grants changed", { 11, 12 }, "R_valid.sql=v;R_a.sql=a;R_b.sql=b;grants.sql=old", "grants.sql", false },
	{ "checks changed: checks first, grants after", { 11, 12 }, "R_valid.sql=old;R_a.sql=a;R_b.sql=b;grants.sql=g",
	  "R_valid.sql grants.sql", false },
	{ "a migration pending: every repeatable after it", { 11 }, "R_valid.sql=v;R_a.sql=a;R_b.sql=b;grants.sql=g",
	  "012_more R_a.sql R_b.sql grants.sql", false },
	{ "made before repeatables: baseline skipped, all definitions", { 1, 2, 11 }, "",
	  "R_valid.sql 012_more R_a.sql R_b.sql grants.sql", false },
	{ "newer than the files: refused", { 11, 13 }, "", "version 13, newer than", true },
	{ "older than the baseline: refused", { 1, 10 }, "", "version 10, older than this vmailctl's first migration 011_base", true },
};

START_TEST(plan_table)
{
	const struct plan_case *c = &plan_cases[_i];
	write_file("R_valid.sql", "v");
	write_file("011_base.sql", "t");
	write_file("012_more.sql", "m");
	write_file("R_a.sql", "a");
	write_file("R_b.sql", "b");
	write_file("grants.sql", "g");
	struct migrate_set set;
	char err[256] = "";
	ck_assert_msg(migrate_scan(dir, &set, err, sizeof(err)), "%s", err);

	int versions[4];
	struct migrate_applied_def defs[8];
	char names[8][32], sums[8][65];
	struct migrate_db_state st = { versions, 0, defs, 0 };
	for (; c->versions[st.nversions]; st.nversions++)
		versions[st.nversions] = c->versions[st.nversions];
	char rec[128];
	snprintf(rec, sizeof(rec), "%s", c->recorded);
	for (char *save, *tok = strtok_r(rec, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(tok, '=');
		*eq = '\0';
		char path[128];
		snprintf(names[st.ndefs], sizeof(names[0]), "%s", tok);
		snprintf(path, sizeof(path), "%s/recorded.tmp", dir);
		FILE *f = fopen(path, "w");
		fputs(eq + 1, f);
		fclose(f);
		ck_assert(migrate_checksum(path, sums[st.ndefs], err, sizeof(err)));
		unlink(path);
		defs[st.ndefs] = (struct migrate_applied_def){ names[st.ndefs], sums[st.ndefs] };
		st.ndefs++;
	}

	struct migrate_plan plan;
	bool ok = migrate_plan(&set, &st, &plan, err, sizeof(err));
	ck_assert_msg(ok == !c->fails, "%s: %s", c->what, err);
	if (c->fails) {
		ck_assert_msg(strstr(err, c->want), "%s: %s", c->what, err);
	} else {
		char got[256] = "";
		for (size_t i = 0; i < plan.count; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
				 plan.items[i].step->name);
		ck_assert_msg(strcmp(got, c->want) == 0, "%s: got \"%s\"", c->what, got);
		int m = 0;
		for (size_t i = 0; i < plan.count; i++)
			m += plan.items[i].step->kind == MIGRATE_VERSIONED;
		ck_assert_int_eq(plan.migrations, m);
		ck_assert_int_eq(plan.definitions, (int)plan.count - m);
		ck_assert_int_eq(plan.version, 12);
		migrate_plan_free(&plan);
	}
	migrate_set_free(&set);
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
	/* one baseline at 11 replaced 001-011; checks first, grants last */
	ck_assert_int_eq(set.steps[0].version, 11);
	ck_assert_uint_ge(set.ndefs, 3);
	ck_assert_str_eq(set.defs[0].name, MIGRATE_CHECKS_FILE);
	ck_assert_str_eq(set.defs[set.ndefs - 1].name, MIGRATE_GRANTS_FILE);
	migrate_set_free(&set);
}
END_TEST

static Suite *migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("scan");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sorted_and_filtered);
	tcase_add_test(tc, duplicate_version);
	tcase_add_test(tc, empty_or_missing);
	tcase_add_test(tc, repo_schema);
	tcase_add_test(tc, checksum_of_file);
	tcase_add_loop_test(tc, plan_table, 0, (int)(sizeof(plan_cases) / sizeof(plan_cases[0])));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(migrate_suite)
