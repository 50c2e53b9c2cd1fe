/* test_ctl: vmailctl's command line without a database: --help everywhere, usage errors exit 2. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "check_main.h"

/* Run ctl_main on a NULL-terminated word list, output thrown away. */
static int run(const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "vmailctl";
	va_list ap;
	va_start(ap, first);
	for (const char *w = first; w && argc < 31; w = va_arg(ap, const char *))
		argv[argc++] = (char *)w;
	va_end(ap);
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	return ctl_main(argc, argv);
}

static void quiet(void)
{
	ck_assert_ptr_nonnull(freopen("/dev/null", "w", stdout));
	ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
}



START_TEST(help_everywhere)
{
	ck_assert_int_eq(run("--help", NULL), 0);
	ck_assert_int_eq(run("help", NULL), 0);
	ck_assert_int_eq(run("--version", NULL), 0);
	for (size_t i = 0; i < ctl_nouns_count; i++) {
		ck_assert_int_eq(run(ctl_nouns[i]->name, "--help", NULL), 0);
		ck_assert_int_eq(run(ctl_nouns[i]->name, "help", NULL), 0);
		for (const struct ctl_verb *v = ctl_nouns[i]->verbs; v->name; v++) {
			ck_assert_msg(run(ctl_nouns[i]->name, v->name, "--help", NULL) == 0, "%s %s --help",
				      ctl_nouns[i]->name, v->name);
			ck_assert(v->help && *v->help);
			ck_assert(v->modes & (CTL_ADMIN | CTL_SELF));
			ck_assert_ptr_nonnull(v->run);
			for (size_t k = 0; v->opts && v->opts[k].name; k++)
				ck_assert_uint_lt(k, CTL_MAX_OPTS);
		}
	}
}
END_TEST

START_TEST(usage_errors)
{
	ck_assert_int_eq(run(NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("nosuchnoun", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("--bogus", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("-c", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", "frob", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", "add", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", "add", "a", "b", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", "add", "a", "--display", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", "list", "--json=yes", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", "list", "--nope", NULL), CTL_EXIT_USAGE);
	/* admin-only verbs refuse --as before asking for any password */
	ck_assert_int_eq(run("--as", "jan", "customer", "list", NULL), CTL_EXIT_USAGE);
	ck_assert_int_eq(run("customer", "list", "--as", "jan", NULL), CTL_EXIT_USAGE);
}
END_TEST

START_TEST(config_errors)
{
	ck_assert_int_eq(run("-c", "/nonexistent/vmaild.conf", "customer", "list", NULL), CTL_EXIT_FAIL);
	ck_assert_int_eq(run("--schema-dir=/x", "-c", "/nonexistent", "db", "status", NULL), CTL_EXIT_FAIL);
}
END_TEST

/* What vmailctl prints of a client's string (a login vmaild listed) in a table cell. */
static const struct {
	const char *in, *want;
} escapes[] = {
	{ "jan@acme.pl", "jan@acme.pl" },
	{ "za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87@acme.pl", "za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87@acme.pl" },
	{ "jan\xe2\x80\xae" "lp.emca@ewa", "jan\\xe2\\x80\\xaelp.emca@ewa" },
	{ "a\xd8\x9c" "b", "a\\xd8\\x9cb" },
	{ "a\xe2\x80\xa8" "b", "a\\xe2\\x80\\xa8" "b" },
	{ "a\xe2\x81\xa0" "b", "a\\xe2\\x81\\xa0" "b" },
	{ "a\nb", "a\\x0ab" },
	{ "a\xff", "a\\xff" },
};

START_TEST(escape_table)
{
	char buf[CTL_CELL_MAX];
	ck_assert_str_eq(ctl_escape(escapes[_i].in, buf, sizeof(buf)), escapes[_i].want);
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("cli");
	tcase_add_checked_fixture(tc, quiet, NULL);
	tcase_add_test(tc, help_everywhere);
	tcase_add_test(tc, usage_errors);
	tcase_add_test(tc, config_errors);
	tcase_add_loop_test(tc, escape_table, 0, sizeof(escapes) / sizeof(escapes[0]));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(ctl_suite)
