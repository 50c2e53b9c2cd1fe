/* test_log: log_escape, the one place client input is made safe for a log line. */
#include "vmail/log.h"

#include <check.h>
#include <string.h>

#include "check_main.h"

/* B: a byte string with its length, NULs included */
#define B(s) s, sizeof(s) - 1

static const struct {
	const char *what;
	const char *in;
	size_t len;
	const char *want;
} rows[] = {
	{ "empty", B(""), "" },
	{ "plain", B("panel: failed login for \"jan\""), "panel: failed login for \"jan\"" },
	{ "newline", B("x\npanel: forged"), "x\\x0apanel: forged" },
	{ "carriage return", B("x\rforged"), "x\\x0dforged" },
	{ "tab", B("a\tb"), "a\\x09b" },
	{ "escape sequence", B("\x1b[31mred"), "\\x1b[31mred" },
	{ "NUL", B("a\0b"), "a\\x00b" },
	{ "DEL", B("a\x7f"), "a\\x7f" },
	{ "Polish letters kept", B("za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87"),
	  "za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87" },
	{ "four-byte kept", B("\xf0\x9f\x93\xa7"), "\xf0\x9f\x93\xa7" },
	{ "C1 NEL", B("a\xc2\x85z"), "a\\xc2\\x85z" },
	{ "NBSP kept", B("\xc2\xa0"), "\xc2\xa0" },
	{ "lone continuation", B("a\x80z"), "a\\x80z" },
	{ "FF", B("\xff"), "\\xff" },
	{ "overlong newline", B("\xc0\x8a"), "\\xc0\\x8a" },
	{ "truncated at the end", B("a\xe2\x82"), "a\\xe2\\x82" },
	{ "bad continuation", B("\xe2(\xa1"), "\\xe2(\\xa1" },
	{ "surrogate", B("\xed\xa0\x80"), "\\xed\\xa0\\x80" },
	{ "backslash kept", B("a\\x0a"), "a\\x0a" },
	{ "bidi override", B("jan\xe2\x80\xae@x"), "jan\\xe2\\x80\\xae@x" },
	{ "bidi isolate", B("\xe2\x81\xa6" "a"), "\\xe2\\x81\\xa6a" },
	{ "pop directional isolate", B("a\xe2\x81\xa9"), "a\\xe2\\x81\\xa9" },
	{ "arabic letter mark", B("a\xd8\x9c" "b"), "a\\xd8\\x9cb" },
	{ "left-to-right mark", B("a\xe2\x80\x8e"), "a\\xe2\\x80\\x8e" },
	{ "zero width space", B("a\xe2\x80\x8b" "b"), "a\\xe2\\x80\\x8bb" },
	{ "word joiner", B("a\xe2\x81\xa0" "b"), "a\\xe2\\x81\\xa0b" },
	{ "line separator", B("x\xe2\x80\xa8" "forged"), "x\\xe2\\x80\\xa8forged" },
	{ "paragraph separator", B("x\xe2\x80\xa9y"), "x\\xe2\\x80\\xa9y" },
	{ "byte order mark", B("\xef\xbb\xbf" "a"), "\\xef\\xbb\\xbfa" },
	{ "interlinear annotation", B("\xef\xbf\xb9" "a"), "\\xef\\xbf\\xb9a" },
	{ "mongolian vowel separator", B("a\xe1\xa0\x8e"), "a\\xe1\\xa0\\x8e" },
	{ "en dash kept (U+2013, beside the controls)", B("a\xe2\x80\x93" "b"), "a\xe2\x80\x93" "b" },
	{ "hebrew letter kept", B("\xd7\x90"), "\xd7\x90" },
	{ "arabic letter kept", B("\xd8\xa8"), "\xd8\xa8" },
};

START_TEST(test_escape)
{
	char out[256];
	size_t n = log_escape(rows[_i].in, rows[_i].len, out, sizeof(out));
	ck_assert_msg(strcmp(out, rows[_i].want) == 0, "%s: got \"%s\"", rows[_i].what, out);
	ck_assert_uint_eq(n, strlen(rows[_i].want));
}
END_TEST

static const struct {
	const char *what;
	const char *in;
	size_t len, outlen;
	const char *want;
} cuts[] = {
	{ "fits exactly", B("abc"), 4, "abc" },
	{ "ascii cut", B("abcdef"), 4, "abc" },
	{ "no room", B("abc"), 1, "" },
	{ "an escape is not split", B("ab\n"), 5, "ab" },
	{ "a character is not split", B("a\xc5\xbc"), 3, "a" },
};

START_TEST(test_cut)
{
	char out[64];
	memset(out, 'Z', sizeof(out));
	log_escape(cuts[_i].in, cuts[_i].len, out, cuts[_i].outlen);
	ck_assert_msg(strcmp(out, cuts[_i].want) == 0, "%s: got \"%s\"", cuts[_i].what, out);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, test_escape, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_loop_test(tc, test_cut, 0, sizeof(cuts) / sizeof(cuts[0]));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(log_suite)
