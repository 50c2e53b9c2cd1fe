/* test_utf8: the one UTF-8 validator (strict and text) and the cut at a character boundary. */
#include "vmail/utf8.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

/* B: a byte string with its length, NULs included */
#define B(s) s, sizeof(s) - 1

static const struct {
	const char *what;
	const char *s;
	size_t len;
	bool valid; /* utf8_valid */
	bool text;  /* utf8_valid_text */
} rows[] = {
	{ "empty", B(""), true, true },
	{ "ascii", B("jan@example.org"), true, true },
	{ "two-byte", B("za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87"), true, true },
	{ "three-byte", B("\xe2\x82\xac"), true, true },
	{ "four-byte U+1F4E7", B("\xf0\x9f\x93\xa7"), true, true },
	{ "U+10FFFF", B("\xf4\x8f\xbf\xbf"), true, true },
	{ "U+FFFD", B("\xef\xbf\xbd"), true, true },
	{ "NUL", B("a\0b"), true, false },
	{ "overlong NUL", B("\xc0\x80"), false, false },
	{ "overlong '/' two bytes", B("\xc0\xaf"), false, false },
	{ "overlong '/' three bytes", B("\xe0\x80\xaf"), false, false },
	{ "overlong U+07FF three bytes", B("\xe0\x9f\xbf"), false, false },
	{ "overlong four bytes", B("\xf0\x8f\xbf\xbf"), false, false },
	{ "surrogate low end", B("\xed\xa0\x80"), false, false },
	{ "surrogate high end", B("\xed\xbf\xbf"), false, false },
	{ "U+D7FF before surrogates", B("\xed\x9f\xbf"), true, true },
	{ "above U+10FFFF", B("\xf4\x90\x80\x80"), false, false },
	{ "F5 lead", B("\xf5\x80\x80\x80"), false, false },
	{ "FF", B("\xff"), false, false },
	{ "lone continuation", B("\x80"), false, false },
	{ "truncated two-byte", B("a\xc5"), false, false },
	{ "truncated three-byte", B("\xe2\x82"), false, false },
	{ "truncated four-byte", B("\xf0\x9f\x93"), false, false },
	{ "bad continuation", B("\xe2\x28\xa1"), false, false },
	{ "newline", B("a\nb"), true, false },
	{ "tab", B("a\tb"), true, false },
	{ "DEL", B("a\x7f"), true, false },
	{ "C1 NEL", B("\xc2\x85"), true, false },
	{ "C1 end U+009F", B("\xc2\x9f"), true, false },
	{ "NBSP U+00A0", B("\xc2\xa0"), true, true },
};

START_TEST(test_valid)
{
	ck_assert_msg(utf8_valid(rows[_i].s, rows[_i].len) == rows[_i].valid, "utf8_valid: %s",
		      rows[_i].what);
	ck_assert_msg(utf8_valid_text(rows[_i].s, rows[_i].len) == rows[_i].text,
		      "utf8_valid_text: %s", rows[_i].what);
}
END_TEST

static const struct {
	const char *what;
	const char *s;
	size_t len, max, want;
} cuts[] = {
	{ "fits", B("abc"), 3, 3 },
	{ "fits under", B("abc"), 10, 3 },
	{ "ascii cut", B("abcdef"), 4, 4 },
	{ "zero", B("abc"), 0, 0 },
	{ "before a two-byte character", B("ab\xc5\xbc"), 2, 2 },
	{ "after a two-byte character", B("ab\xc5\xbc" "c"), 4, 4 },
	{ "inside a three-byte character", B("a\xe2\x82\xac"), 3, 1 },
	{ "inside a four-byte character", B("a\xf0\x9f\x93\xa7"), 4, 1 },
	{ "after a four-byte character", B("a\xf0\x9f\x93\xa7z"), 5, 5 },
	{ "stray continuations are cut anywhere", B("a\x80\x80\x80\x80\x80"), 4, 4 },
	{ "between lead and continuation", B("a\xc5\xbc"), 2, 1 },
};

START_TEST(test_cut)
{
	ck_assert_msg(utf8_cut(cuts[_i].s, cuts[_i].len, cuts[_i].max) == cuts[_i].want,
		      "%s: %zu", cuts[_i].what, utf8_cut(cuts[_i].s, cuts[_i].len, cuts[_i].max));
}
END_TEST

static Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, test_valid, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_loop_test(tc, test_cut, 0, sizeof(cuts) / sizeof(cuts[0]));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(utf8_suite)
