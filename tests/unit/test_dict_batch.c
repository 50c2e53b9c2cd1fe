/* test_dict_batch: the pure parts of the commit queue: array element quoting, result names. */
#include "dict_batch.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

START_TEST(test_sql_quote)
{
	char out[64];
	size_t n = dict_batch_quote(out, sizeof(out), "a\"b\\c@x,{y}");
	ck_assert_uint_eq(n, 15);
	ck_assert(memcmp(out, "\"a\\\"b\\\\c@x,{y}\"", n) == 0);
	ck_assert_uint_eq(dict_batch_quote(out, 4, "abc"), 0);
	ck_assert_uint_eq(dict_batch_quote(out, 5, "abc"), 5);
	ck_assert_uint_eq(dict_batch_quote(out, 2, ""), 2);
}
END_TEST


START_TEST(test_result_names)
{
	for (int r = 0; r < DICT_BATCH_RESULT__COUNT; r++)
		ck_assert_str_ne(dict_batch_result_name((enum dict_batch_result)r), "?");
	ck_assert_str_eq(dict_batch_result_name(DICT_BATCH_DENIED), "denied");
	ck_assert_str_eq(dict_batch_result_name(DICT_BATCH_RESULT__COUNT), "?");
}
END_TEST

static Suite *dict_batch_suite(void)
{
	Suite *s = suite_create("dict_batch");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_sql_quote);
	tcase_add_test(tc, test_result_names);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dict_batch_suite)
