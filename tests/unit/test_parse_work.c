/*
 * test_parse_work: the framing parsers do work proportional to the bytes that arrive, not to
 * the bytes buffered, when a peer sends a request one byte at a time.
 *
 * The parsers are included here with memchr replaced by a counting wrapper: every search for
 * a terminator (the '\n' of a dict line or policy line, a NUL) goes through memchr, so the sum
 * of the lengths handed to it is the number of bytes examined.  Each parser is fed a request
 * of the largest allowed size one byte at a time, as vmaild's read callbacks would on a
 * connection that delivers one byte per read, and the total must stay within a small multiple
 * of the request size (rescanning the whole buffer on every read makes it quadratic).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

static size_t examined;

static void *counting_memchr(const void *s, int c, size_t n)
{
	examined += n;
	return memchr(s, c, n);
}

/* <string.h> is in; from here on the parsers' memchr is the counting one. */
#define memchr counting_memchr
/*
 * Each parser has its own static fail(); one translation unit needs distinct names (and
 * check.h's old fail() macro must go first).
 */
#undef fail
#define fail dict_fail
#include "../../src/proto/dictproto.c"
#undef fail
#define fail policy_fail
#include "../../src/proto/policy.c"
#undef fail
#undef memchr

static struct dict_cmd cmd; /* too big for the stack */

/* A lookup line of exactly DICT_MAX_LINE bytes before its '\n'. */
static char *dict_line(size_t *len)
{
	size_t n = DICT_MAX_LINE + 1;
	char *s = malloc(n);
	ck_assert_ptr_nonnull(s);
	memset(s, 'k', n);
	s[0] = 'L';
	s[n - 3] = '\t';
	s[n - 2] = 'u';
	s[n - 1] = '\n';
	*len = n;
	return s;
}

START_TEST(dict_line_one_byte_at_a_time)
{
	size_t n;
	char *line = dict_line(&n);
	struct dictproto_scan scan = DICTPROTO_SCAN_INIT;
	size_t used = 0;
	enum dict_status st = DICT_NEED_MORE;

	examined = 0;
	for (size_t fed = 1; fed <= n; fed++) {
		const char *err = NULL;
		st = dictproto_parse_line(line, fed, &scan, &cmd, &used, &err);
		if (st != DICT_NEED_MORE)
			break;
		ck_assert_uint_eq(scan.scanned, fed); /* the next call starts after this byte */
	}
	ck_assert_int_eq(st, DICT_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_str_eq(cmd.u.lookup.username, "u");
	printf("dict: %zu-byte line fed one byte at a time: %zu bytes examined (%.1f per byte)\n", n,
	       examined, (double)examined / (double)n);
	ck_assert_uint_le(examined, 4 * n);
	free(line);
}
END_TEST

/* A policy request of POLICY_MAX_REQUEST bytes: full-length lines, then the empty line. */
static char *policy_request(size_t *len)
{
	size_t n = POLICY_MAX_REQUEST;
	char *s = malloc(n);
	ck_assert_ptr_nonnull(s);
	size_t pos = 0;
	while (n - pos > POLICY_MAX_LINE + 2) {
		size_t l = POLICY_MAX_LINE;
		memset(s + pos, 'v', l);
		memcpy(s + pos, "name=", 5);
		s[pos + l] = '\n';
		pos += l + 1;
	}
	/* The last attribute fills what is left before the empty line. */
	size_t l = n - pos - 2;
	memset(s + pos, 'v', l);
	memcpy(s + pos, "last=", 5);
	s[pos + l] = '\n';
	s[n - 1] = '\n';
	*len = n;
	return s;
}

START_TEST(policy_request_one_byte_at_a_time)
{
	size_t n;
	char *buf = policy_request(&n);
	static struct policy_scan scan; /* zero: nothing seen yet */
	struct policy_request req;
	size_t used = 0;
	enum policy_status st = POLICY_NEED_MORE;

	examined = 0;
	for (size_t fed = 1; fed <= n; fed++) {
		const char *err = NULL;
		st = policy_parse(buf, fed, &scan, &req, &used, &err);
		if (st != POLICY_NEED_MORE)
			break;
		ck_assert_uint_eq(scan.scanned, fed); /* the next call starts after this byte */
	}
	ck_assert_int_eq(st, POLICY_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(req.count, 8);
	size_t vlen;
	ck_assert_ptr_nonnull(policy_request_get(&req, "last", &vlen));
	printf("policy: %zu-byte request fed one byte at a time: %zu bytes examined (%.1f per byte)\n", n,
	       examined, (double)examined / (double)n);
	ck_assert_uint_le(examined, 4 * n);
	free(buf);
}
END_TEST

static Suite *parse_work_suite(void)
{
	Suite *s = suite_create("parse_work");
	TCase *tc = tcase_create("one_byte_reads");
	tcase_add_test(tc, dict_line_one_byte_at_a_time);
	tcase_add_test(tc, policy_request_one_byte_at_a_time);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(parse_work_suite)
