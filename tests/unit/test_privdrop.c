/* test_privdrop: names to ids (errors name the key) and the root policy, without changing ids. */
#include "vmail/privdrop.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"

START_TEST(test_unknown_names_name_the_key)
{
	struct privdrop pd;
	uid_t uid;
	gid_t gid;
	char err[256] = "";
	ck_assert(!privdrop_find_user("socket_owner", "no-such-user-x", &uid, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "socket_owner: unknown user \"no-such-user-x\"");
	ck_assert(!privdrop_find_group("socket_group", "no-such-group-x", &gid, err, sizeof(err)));
	ck_assert_str_eq(err, "socket_group: unknown group \"no-such-group-x\"");
	ck_assert(!privdrop_resolve(&pd, "panel_user", "no-such-user-x", "panel_group", "", err,
				    sizeof(err)));
	ck_assert_str_eq(err, "panel_user: unknown user \"no-such-user-x\"");
	ck_assert(!privdrop_resolve(&pd, "user", "root", "group", "no-such-group-x", err,
				    sizeof(err)));
	ck_assert_str_eq(err, "group: unknown group \"no-such-group-x\"");
}
END_TEST

START_TEST(test_resolve)
{
	struct privdrop pd;
	char err[256] = "";
	ck_assert_msg(privdrop_resolve(&pd, "user", "", "group", "", err, sizeof(err)), "%s", err);
	ck_assert(!pd.drop);
	ck_assert_msg(privdrop_resolve(&pd, "user", "root", "group", "", err, sizeof(err)), "%s",
		      err);
	ck_assert(pd.drop);
	ck_assert_uint_eq(pd.uid, 0);
	ck_assert_uint_eq(pd.gid, 0); /* root's primary group */
	ck_assert_msg(privdrop_resolve(&pd, "user", "root", "group", "root", err, sizeof(err)),
		      "%s", err);
	ck_assert_uint_eq(pd.gid, 0);
}
END_TEST

START_TEST(test_root_policy)
{
	struct privdrop pd;
	char err[256] = "";
	unsetenv(PRIVDROP_ALLOW_ROOT_ENV);
	ck_assert(privdrop_resolve(&pd, "panel_user", "", "panel_group", "", err, sizeof(err)));
	if (geteuid() == 0) {
		ck_assert(!privdrop_check(&pd, err, sizeof(err)));
		ck_assert_str_eq(err, "refusing to run as root: set panel_user (and panel_group) in "
				      "the configuration");
		ck_assert(privdrop_resolve(&pd, "user", "root", "group", "", err, sizeof(err)));
		ck_assert(!privdrop_check(&pd, err, sizeof(err)));
		ck_assert_str_eq(err, "refusing to run as root: user resolves to uid 0");
		setenv(PRIVDROP_ALLOW_ROOT_ENV, "1", 1);
		ck_assert(privdrop_root_allowed());
		ck_assert_msg(privdrop_check(&pd, err, sizeof(err)), "%s", err);
		/* staying root is allowed: the switch to uid 0 changes nothing that matters */
		unsetenv(PRIVDROP_ALLOW_ROOT_ENV);
	} else {
		ck_assert_msg(privdrop_check(&pd, err, sizeof(err)), "%s", err);
		ck_assert(privdrop_switch(&pd, err, sizeof(err))); /* nothing to do */
		ck_assert(privdrop_resolve(&pd, "user", "root", "group", "", err, sizeof(err)));
		ck_assert(!privdrop_check(&pd, err, sizeof(err)));
		ck_assert_str_eq(err, "user/group: not running as root, so cannot switch to uid 0 "
				      "gid 0");
	}
	setenv(PRIVDROP_ALLOW_ROOT_ENV, "yes", 1);
	ck_assert(!privdrop_root_allowed()); /* only "1" */
	unsetenv(PRIVDROP_ALLOW_ROOT_ENV);
}
END_TEST

static Suite *privdrop_suite(void)
{
	Suite *s = suite_create("privdrop");
	TCase *tc = tcase_create("privdrop");
	tcase_add_test(tc, test_unknown_names_name_the_key);
	tcase_add_test(tc, test_resolve);
	tcase_add_test(tc, test_root_policy);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(privdrop_suite)
