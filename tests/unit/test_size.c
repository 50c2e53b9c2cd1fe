/* test_size: size_parse and size_format, table-driven. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/size.h"
#include "check_main.h"

static const struct {
	const char *in;
	uint64_t want;
} good[] = {
	{ "0", 0 },
	{ "123", 123 },
	{ "512K", 512 * 1024 },
	{ "512k", 512 * 1024 },
	{ "100M", 100ull << 20 },
	{ "1G", 1ull << 30 },
	{ "2T", 2ull << 40 },
	{ "9223372036854775807", 9223372036854775807ull },
	{ "8388607T", 8388607ull << 40 },
};

static const struct {
	const char *in;
	const char *msg; /* substring of the error */
} bad[] = {
	{ "", "empty" },
	{ "-1", "must not be negative" },
	{ "12X", "unknown suffix \"X\"" },
	{ "1.5M", "whole number" },
	{ "M", "must start with a number" },
	{ " 1M", "must start with a number" },
	{ "1M ", "unknown suffix \"M \"" },
	{ "1MB", "unknown suffix \"MB\"" },
	{ "9223372036854775808", "too large" },
	{ "99999999999999999999999", "too large" },
	{ "8388608T", "too large" },
	{ "9007199254740992K", "too large" },
};

START_TEST(parse_good)
{
	uint64_t v = 42;
	char err[256] = "";
	ck_assert_msg(size_parse(good[_i].in, &v, err, sizeof(err)), "%s: %s", good[_i].in, err);
	ck_assert_uint_eq(v, good[_i].want);
}
END_TEST

START_TEST(parse_bad)
{
	uint64_t v = 42;
	char err[256] = "";
	ck_assert(!size_parse(bad[_i].in, &v, err, sizeof(err)));
	ck_assert_uint_eq(v, 42);
	ck_assert_msg(strstr(err, bad[_i].msg), "%s: got \"%s\"", bad[_i].in, err);
	ck_assert_msg(strchr(err, '\n') == NULL, "one line");
}
END_TEST

static const struct {
	uint64_t in;
	const char *want;
} fmt[] = {
	{ 0, "0 bytes" },
	{ 1, "1 byte" },
	{ 1023, "1023 bytes" },
	{ 1024, "1 KiB" },
	{ 1536, "1.5 KiB" },
	{ 100ull << 20, "100 MiB" },
	{ 120ull << 20, "120 MiB" },
	{ (1ull << 30) + (1ull << 29), "1.5 GiB" },
	{ (1ull << 20) + 1, "1 MiB" },
	{ 5ull << 40, "5 TiB" },
	{ 18446744073709551615ull, "16 EiB" },
};

START_TEST(format)
{
	char buf[SIZE_FMT_MAX];
	size_format(fmt[_i].in, buf, sizeof(buf));
	ck_assert_str_eq(buf, fmt[_i].want);
}
END_TEST

static Suite *size_suite(void)
{
	Suite *s = suite_create("size");
	TCase *tc = tcase_create("size");
	tcase_add_loop_test(tc, parse_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, parse_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_loop_test(tc, format, 0, sizeof(fmt) / sizeof(fmt[0]));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(size_suite)
