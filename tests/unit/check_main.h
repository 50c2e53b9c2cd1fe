/* check_main.h: the one way a unit test runs its Check suite and turns the result into an exit
 * status.  Every test used to repeat the same five runner lines; kept here, a change to how the
 * tests run (print mode, fork mode, log files) is made once (postsrsd's tests/unit/common.h).
 * A test whose main() only builds a suite ends with CHECK_MAIN(its_suite); one that does more
 * first (argv modes, logging, a private server) keeps its main() and calls check_main_run(). */
#ifndef VMAIL_TEST_CHECK_MAIN_H
#define VMAIL_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* check_main_run - run every case of s, free the runner; EXIT_SUCCESS when none failed */
static int check_main_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* CHECK_MAIN - define main() as running the suite that suite_fn() builds */
#define CHECK_MAIN(suite_fn)                       \
	int main(void)                             \
	{                                          \
		return check_main_run(suite_fn()); \
	}

#endif
