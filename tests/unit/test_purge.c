/* test_purge: removing a retired mailbox's tree without following symlinks (src/vmailctl/purge.c). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "purge.h"
#include "check_main.h"

static char dir[64];

static void path_of(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", dir, rel);
}

static void mkdir_rel(const char *rel)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	ck_assert_int_eq(mkdir(p, 0700), 0);
}

static void write_rel(const char *rel, size_t size)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < size; i++)
		fputc('x', f);
	fclose(f);
}

static void symlink_rel(const char *target, const char *rel)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	ck_assert_int_eq(symlink(target, p), 0);
}

static bool exists_rel(const char *rel)
{
	char p[256];
	struct stat st;
	path_of(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

static void purge_rel(const char *rel, uid_t uid, bool dry_run, struct purge_result *r)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	purge_tree(p, uid, dry_run, r);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_purge.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* a retired Maildir and, beside it, what must survive */
	mkdir_rel("home");
	mkdir_rel("home/x.7");
	mkdir_rel("home/x.7/Maildir");
	mkdir_rel("home/x.7/Maildir/new");
	write_rel("home/x.7/Maildir/new/1.msg", 100);
	write_rel("home/x.7/Maildir/new/2.msg", 23);
	write_rel("home/x.7/dovecot.index", 5);
	mkdir_rel("keep");
	write_rel("keep/secret", 7);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_path_ok)
{
	static const char *const good[] = { "/a", "/var/vmail/d.pl/x.7", "/home/jan/mail/d/a..b.3", NULL };
	static const char *const bad[] = { "", "/", "a/b", "/a/", "//a", "/a//b", "/a/../b", "/..",
					   "/a/.", "/a/./b", "/a\n/b", "/a\x7f", NULL };
	for (int i = 0; good[i]; i++)
		ck_assert_msg(purge_path_ok(good[i]), "refused %s", good[i]);
	for (int i = 0; bad[i]; i++)
		ck_assert_msg(!purge_path_ok(bad[i]), "accepted %s", bad[i]);
	char longp[PURGE_PATH_MAX + 2];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	ck_assert(!purge_path_ok(longp));
}
END_TEST

START_TEST(test_removes_the_tree_and_counts)
{
	struct purge_result r;
	purge_rel("home/x.7", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REMOVED);
	ck_assert_uint_eq(r.files, 3);
	ck_assert_uint_eq(r.dirs, 3);
	ck_assert_uint_eq(r.bytes, 128);
	ck_assert(!exists_rel("home/x.7"));
	ck_assert(exists_rel("home"));
	ck_assert(exists_rel("keep/secret"));
}
END_TEST

START_TEST(test_dry_run_removes_nothing)
{
	struct purge_result r;
	purge_rel("home/x.7", getuid(), true, &r);
	ck_assert_int_eq(r.status, PURGE_REMOVED);
	ck_assert_uint_eq(r.files, 3);
	ck_assert_uint_eq(r.bytes, 128);
	ck_assert(exists_rel("home/x.7/Maildir/new/1.msg"));
}
END_TEST

START_TEST(test_symlink_inside_is_removed_not_followed)
{
	char keep[256];
	path_of(keep, sizeof(keep), "keep");
	symlink_rel(keep, "home/x.7/Maildir/cur");
	symlink_rel("/", "home/x.7/root");
	struct purge_result r;
	purge_rel("home/x.7", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REMOVED);
	ck_assert(!exists_rel("home/x.7"));
	ck_assert(exists_rel("keep/secret"));
}
END_TEST

START_TEST(test_symlink_in_the_path_refuses)
{
	/* home2 -> keep: "home2/secret-dir" must not reach keep/ */
	char keep[256];
	path_of(keep, sizeof(keep), "keep");
	mkdir_rel("keep/sub");
	write_rel("keep/sub/file", 3);
	symlink_rel(keep, "home2");
	struct purge_result r;
	purge_rel("home2/sub", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REFUSED);
	ck_assert_str_eq(r.error, "a symlink or a file in the path");
	ck_assert(exists_rel("keep/sub/file"));
	/* the top itself a symlink */
	symlink_rel(keep, "home/x.8");
	purge_rel("home/x.8", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REFUSED);
	ck_assert_str_eq(r.error, "not a directory (a symlink)");
	ck_assert(exists_rel("keep/secret"));
}
END_TEST

START_TEST(test_other_owner_refuses)
{
	struct purge_result r;
	purge_rel("home/x.7", getuid() + 1, false, &r);
	ck_assert_int_eq(r.status, PURGE_REFUSED);
	ck_assert(strstr(r.error, "owned by uid") != NULL);
	ck_assert(exists_rel("home/x.7/Maildir/new/1.msg"));
}
END_TEST

START_TEST(test_missing_is_missing)
{
	struct purge_result r;
	purge_rel("home/x.9", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_MISSING);
	purge_rel("keep/secret", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REFUSED);
	ck_assert(exists_rel("keep/secret"));
	purge_tree("/tmp/../etc", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REFUSED);
}
END_TEST

/* An unmounted /var/vmail or /home: the files may well exist, the row must stay. */
START_TEST(test_missing_parent_is_not_missing)
{
	struct purge_result r;
	purge_rel("gone/x.9", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REFUSED);
	ck_assert_msg(strstr(r.error, "missing") != NULL, "%s", r.error);
	purge_rel("gone/deeper/x.9", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_REFUSED);
}
END_TEST

/* Swaps keep/ in for home/x.7/Maildir after purge checked Maildir and before it opens it. */
static void swap_maildir(int dfd, const char *name)
{
	(void)dfd;
	if (strcmp(name, "Maildir") != 0)
		return;
	char from[256], to[256];
	path_of(from, sizeof(from), "home/x.7/Maildir");
	path_of(to, sizeof(to), "maildir.away");
	ck_assert_int_eq(rename(from, to), 0);
	path_of(from, sizeof(from), "keep");
	path_of(to, sizeof(to), "home/x.7/Maildir");
	ck_assert_int_eq(rename(from, to), 0);
}

START_TEST(test_directory_swapped_in_is_refused)
{
	struct purge_result r;
	purge_test_before_open = swap_maildir;
	purge_rel("home/x.7", getuid(), false, &r);
	purge_test_before_open = NULL;
	ck_assert_int_eq(r.status, PURGE_FAILED);
	ck_assert_msg(strstr(r.error, "changed while being checked") != NULL, "%s", r.error);
	ck_assert(exists_rel("home/x.7/Maildir/secret"));
}
END_TEST

START_TEST(test_too_deep_fails_and_keeps_the_top)
{
	char rel[512] = "home/x.7";
	for (int i = 0; i < PURGE_MAX_DEPTH + 2; i++) {
		strcat(rel, "/d");
		mkdir_rel(rel);
	}
	struct purge_result r;
	purge_rel("home/x.7", getuid(), false, &r);
	ck_assert_int_eq(r.status, PURGE_FAILED);
	ck_assert(strstr(r.error, "deeper than") != NULL);
	ck_assert(exists_rel("home/x.7"));
}
END_TEST

static Suite *purge_suite(void)
{
	Suite *s = suite_create("purge");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_path_ok);
	tcase_add_test(tc, test_removes_the_tree_and_counts);
	tcase_add_test(tc, test_dry_run_removes_nothing);
	tcase_add_test(tc, test_symlink_inside_is_removed_not_followed);
	tcase_add_test(tc, test_symlink_in_the_path_refuses);
	tcase_add_test(tc, test_other_owner_refuses);
	tcase_add_test(tc, test_missing_is_missing);
	tcase_add_test(tc, test_missing_parent_is_not_missing);
	tcase_add_test(tc, test_directory_swapped_in_is_refused);
	tcase_add_test(tc, test_too_deep_fails_and_keeps_the_top);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(purge_suite)
