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

/* The letters of vmail.dict_commit's answer (schema/R_lookup_dovecot.sql). */
START_TEST(test_result_letters)
{
	static const struct {
		char letter;
		enum dict_batch_result res;
	} cases[] = {
		{ 'O', DICT_BATCH_APPLIED },        { 'N', DICT_BATCH_NO_COUNTER },
		{ 'D', DICT_BATCH_DENIED },         { 'B', DICT_BATCH_STORAGE_RANGE },
		{ 'M', DICT_BATCH_MESSAGES_RANGE }, { 'o', DICT_BATCH_TEMPFAIL },
		{ '?', DICT_BATCH_TEMPFAIL },       { '\0', DICT_BATCH_TEMPFAIL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(dict_batch_result_of_letter(cases[i].letter) == cases[i].res,
			      "letter %c", cases[i].letter);
}
END_TEST

static Suite *dict_batch_suite(void)
{
	Suite *s = suite_create("dict_batch");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_sql_quote);
	tcase_add_test(tc, test_result_names);
	tcase_add_test(tc, test_result_letters);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dict_batch_suite)
