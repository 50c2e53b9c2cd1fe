/* test_netstring: netstring framing, table-driven. */
#include "vmail/netstring.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

#define B(s) s, sizeof(s) - 1 /* literal with its exact length, NULs included */

struct parse_row {
	const char *in;
	size_t len;
	size_t max;
	enum netstring_status status;
	const char *payload; /* OK only */
	size_t payload_len;
	size_t consumed;
	const char *err; /* substring of the error, ERROR only */
};

static const struct parse_row parse_rows[] = {
	{ B("0:,"), 100, NETSTRING_OK, B(""), 3, NULL },
	{ B("5:hello,"), 100, NETSTRING_OK, B("hello"), 8, NULL },
	{ B("11:hello world,"), 100, NETSTRING_OK, B("hello world"), 15, NULL },
	{ B("5:hello,5:world,"), 100, NETSTRING_OK, B("hello"), 8, NULL },
	{ B("3:a\0b,"), 100, NETSTRING_OK, B("a\0b"), 6, NULL },
	{ B("3:,,,,"), 100, NETSTRING_OK, B(",,,"), 6, NULL },
	{ B("5:hello,"), 5, NETSTRING_OK, B("hello"), 8, NULL },
	{ B("0:,"), 0, NETSTRING_OK, B(""), 3, NULL },
	/* incomplete but valid so far */
	{ B(""), 100, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("5"), 100, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("5:"), 100, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("5:hel"), 100, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("5:hello"), 100, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("0"), 100, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("0:"), 100, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("10000:"), 10000, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("4294967295:"), SIZE_MAX, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	{ B("9999999999"), SIZE_MAX, NETSTRING_NEED_MORE, NULL, 0, 0, NULL },
	/* broken */
	{ B("5:hellox"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ','" },
	{ B("5:hello\n"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ','" },
	{ B("3:abc\0"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ','" },
	{ B("0:x"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ','" },
	{ B(":hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "empty" },
	{ B(":"), 100, NETSTRING_ERROR, NULL, 0, 0, "empty" },
	{ B("a"), 100, NETSTRING_ERROR, NULL, 0, 0, "non-digit" },
	{ B("-5:hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "non-digit" },
	{ B("+5:hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "non-digit" },
	{ B(" 5:hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "non-digit" },
	{ B("\0"), 100, NETSTRING_ERROR, NULL, 0, 0, "non-digit" },
	{ B("5a:hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ':'" },
	{ B("5 :hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ':'" },
	{ B("3\0:abc,"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ':'" },
	{ B("5,hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "missing ':'" },
	{ B("05:hello,"), 100, NETSTRING_ERROR, NULL, 0, 0, "leading zero" },
	{ B("00:,"), 100, NETSTRING_ERROR, NULL, 0, 0, "leading zero" },
	{ B("01"), 100, NETSTRING_ERROR, NULL, 0, 0, "leading zero" },
	{ B("12345678901"), SIZE_MAX, NETSTRING_ERROR, NULL, 0, 0, "10 digits" },
	{ B("99999999999999999999999999:"), SIZE_MAX, NETSTRING_ERROR, NULL, 0, 0, "10 digits" },
	/* over the limit: known from the digits, before any payload */
	{ B("10001"), 10000, NETSTRING_ERROR, NULL, 0, 0, "exceeds" },
	{ B("10001:"), 10000, NETSTRING_ERROR, NULL, 0, 0, "exceeds" },
	{ B("100000"), 10000, NETSTRING_ERROR, NULL, 0, 0, "exceeds" },
	{ B("6:hello!,"), 5, NETSTRING_ERROR, NULL, 0, 0, "exceeds" },
	{ B("1"), 0, NETSTRING_ERROR, NULL, 0, 0, "exceeds" },
	{ B("99999999999999999999"), 10000, NETSTRING_ERROR, NULL, 0, 0, "exceeds" },
};

#define NPARSE (sizeof(parse_rows) / sizeof(parse_rows[0]))

/*
 * parse_resumed - r->in arriving one byte per read: parsed with a scan after
 * each byte until it is not "need more".  Every prefix must give what a
 * one-shot parse of that prefix gives: same status, payload, consumed count and error.
 */
static enum netstring_status parse_resumed(const struct parse_row *r, const char **payload, size_t *plen,
					   size_t *consumed, const char **err)
{
	struct netstring_scan scan = NETSTRING_SCAN_INIT;
	enum netstring_status st = NETSTRING_NEED_MORE;

	for (size_t k = 0; k <= r->len && st == NETSTRING_NEED_MORE; k++) {
		const char *one_p, *one_err = NULL;
		size_t one_plen, one_used;
		enum netstring_status one =
			netstring_parse(r->in, k, r->max, NULL, &one_p, &one_plen, &one_used, &one_err);
		*err = NULL;
		st = netstring_parse(r->in, k, r->max, &scan, payload, plen, consumed, err);
		ck_assert_msg(st == one && *payload == one_p && *plen == one_plen && *consumed == one_used &&
				      *err == one_err,
			      "prefix %zu: resumed %d/%zu/%s, one-shot %d/%zu/%s", k, st, *consumed,
			      *err ? *err : "-", one, one_used, one_err ? one_err : "-");
	}
	return st;
}

/* Each row parsed in one call (even _i) and one byte per call with a scan (odd _i). */
START_TEST(test_parse_table)
{
	const struct parse_row *r = &parse_rows[_i / 2];
	const char *payload = (const char *)1, *err = NULL;
	size_t plen = 99, consumed = 99;

	enum netstring_status st =
		_i % 2 ? parse_resumed(r, &payload, &plen, &consumed, &err)
		       : netstring_parse(r->in, r->len, r->max, NULL, &payload, &plen, &consumed, &err);
	ck_assert_msg(st == r->status, "row %d: status %d, want %d (err %s)", _i / 2, st, r->status,
		      err ? err : "-");
	if (st == NETSTRING_OK) {
		ck_assert_uint_eq(plen, r->payload_len);
		ck_assert_uint_eq(consumed, r->consumed);
		ck_assert_ptr_eq(payload, r->in + consumed - 1 - plen);
		ck_assert_mem_eq(payload, r->payload, plen);
	} else {
		ck_assert_ptr_null(payload);
		ck_assert_uint_eq(plen, 0);
		ck_assert_uint_eq(consumed, 0);
	}
	if (st == NETSTRING_ERROR) {
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, r->err), "row %d: err \"%s\" lacks \"%s\"", _i / 2, err, r->err);

		/* An error is final: more bytes cannot repair it. */
		char more[64];
		ck_assert_uint_le(r->len + 4, sizeof(more));
		memcpy(more, r->in, r->len);
		memcpy(more + r->len, "1:,,", 4);
		ck_assert_int_eq(
			netstring_parse(more, r->len + 4, r->max, NULL, &payload, &plen, &consumed, NULL),
			NETSTRING_ERROR);
	}
}
END_TEST

/* Streams of several netstrings, and the payloads they hold. */
struct stream_row {
	const char *in;
	size_t len;
	const char *payloads[4];
};

static const struct stream_row stream_rows[] = {
	{ B("25:aliases bob+x@Example.com,"), { "aliases bob+x@Example.com" } },
	{ B("5:hello,0:,5:world,"), { "hello", "", "world" } },
	{ B("9:NOTFOUND ,18:OK bob@example.com,"), { "NOTFOUND ", "OK bob@example.com" } },
	{ B("1:a,1:b,1:c,1:d,"), { "a", "b", "c", "d" } },
	{ B("10:0123456789,"), { "0123456789" } },
};

#define NSTREAM (sizeof(stream_rows) / sizeof(stream_rows[0]))

/*
 * drain - parse netstrings from buf until NEED_MORE; checks each against the
 * expected payloads starting at *next and returns the bytes consumed.
 */
static size_t drain(const struct stream_row *r, const char *buf, size_t len, size_t *next,
		    struct netstring_scan *scan)
{
	size_t off = 0;

	for (;;) {
		const char *p, *err = NULL;
		size_t plen, used;
		enum netstring_status st =
			netstring_parse(buf + off, len - off, 1000, scan, &p, &plen, &used, &err);
		ck_assert_msg(st != NETSTRING_ERROR, "error on a valid stream: %s", err);
		if (st == NETSTRING_NEED_MORE)
			return off;
		ck_assert_uint_lt(*next, 4);
		ck_assert_ptr_nonnull(r->payloads[*next]);
		ck_assert_uint_eq(plen, strlen(r->payloads[*next]));
		ck_assert_mem_eq(p, r->payloads[*next], plen);
		(*next)++;
		ck_assert_uint_gt(used, 0);
		off += used;
	}
}

static size_t count_payloads(const struct stream_row *r)
{
	size_t n = 0;
	while (n < 4 && r->payloads[n])
		n++;
	return n;
}

START_TEST(test_stream_one_read)
{
	const struct stream_row *r = &stream_rows[_i];
	size_t next = 0;

	ck_assert_uint_eq(drain(r, r->in, r->len, &next, NULL), r->len);
	ck_assert_uint_eq(next, count_payloads(r));
}
END_TEST

START_TEST(test_stream_byte_by_byte)
{
	const struct stream_row *r = &stream_rows[_i];
	char buf[128];
	size_t have = 0, next = 0;
	struct netstring_scan scan = NETSTRING_SCAN_INIT;

	/* Deliver one byte at a time, as a slow peer would. */
	for (size_t i = 0; i < r->len; i++) {
		buf[have++] = r->in[i];
		size_t before = next;
		size_t used = drain(r, buf, have, &next, &scan);
		memmove(buf, buf + used, have - used);
		have -= used;
		/* A netstring completes exactly on its ',' and not earlier. */
		if (next != before)
			ck_assert_int_eq(r->in[i], ',');
	}
	ck_assert_uint_eq(have, 0);
	ck_assert_uint_eq(next, count_payloads(r));
}
END_TEST

START_TEST(test_every_prefix_needs_more)
{
	const struct stream_row *r = &stream_rows[_i];
	const char *p;
	size_t plen, first;

	ck_assert_int_eq(netstring_parse(r->in, r->len, 1000, NULL, &p, &plen, &first, NULL), NETSTRING_OK);
	for (size_t k = 0; k < first; k++)
		ck_assert_msg(netstring_parse(r->in, k, 1000, NULL, &p, &plen, &(size_t){0}, NULL) ==
				      NETSTRING_NEED_MORE,
			      "prefix %zu of row %d", k, _i);
}
END_TEST

struct encode_row {
	const char *payload;
	size_t len;
	const char *out;
};

static const struct encode_row encode_rows[] = {
	{ B(""), "0:," },
	{ B("hello"), "5:hello," },
	{ B("a\0b"), "3:a\0b," },
	{ B("0123456789"), "10:0123456789," },
	{ B("NOTFOUND "), "9:NOTFOUND ," },
};

#define NENCODE (sizeof(encode_rows) / sizeof(encode_rows[0]))

START_TEST(test_encode_table)
{
	const struct encode_row *r = &encode_rows[_i];
	char out[64];
	size_t want = netstring_encoded_len(r->len);

	ck_assert_uint_gt(want, 0);
	memset(out, 'X', sizeof(out));
	ck_assert_uint_eq(netstring_encode(out, sizeof(out), r->payload, r->len), want);
	ck_assert_mem_eq(out, r->out, want);
	/* Exactly enough room works; one byte less writes nothing. */
	ck_assert_uint_eq(netstring_encode(out, want, r->payload, r->len), want);
	memset(out, 'X', sizeof(out));
	ck_assert_uint_eq(netstring_encode(out, want - 1, r->payload, r->len), 0);
	ck_assert_int_eq(out[0], 'X');
	ck_assert_uint_eq(netstring_encode(out, 0, r->payload, r->len), 0);
}
END_TEST

START_TEST(test_encode_parse_roundtrip)
{
	static char payload[12000], out[12100];
	unsigned seed = 12345u + (unsigned)_i;
	size_t len = (size_t)_i * 397 % sizeof(payload);

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		payload[i] = (char)(seed >> 16);
	}
	size_t n = netstring_encode(out, sizeof(out), payload, len);
	ck_assert_uint_gt(n, len);

	const char *p;
	size_t plen, used;
	ck_assert_int_eq(netstring_parse(out, n, sizeof(payload), NULL, &p, &plen, &used, NULL),
			 NETSTRING_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(plen, len);
	ck_assert_mem_eq(p, payload, len);
	/* One byte short of the limit is refused from the header alone. */
	if (len > 0)
		ck_assert_int_eq(netstring_parse(out, n - len - 1, len - 1, NULL, &p, &plen, &used, NULL),
				 NETSTRING_ERROR);
}
END_TEST

START_TEST(test_encoded_len)
{
	ck_assert_uint_eq(netstring_encoded_len(0), 3);
	ck_assert_uint_eq(netstring_encoded_len(9), 12);
	ck_assert_uint_eq(netstring_encoded_len(10), 14);
	ck_assert_uint_eq(netstring_encoded_len(100000), 100008);
	ck_assert_uint_eq(netstring_encoded_len(SIZE_MAX), 0);
	ck_assert_uint_eq(netstring_encoded_len(SIZE_MAX - 21), 0);
}
END_TEST

static Suite *netstring_suite(void)
{
	Suite *s = suite_create("netstring");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_table, 0, 2 * NPARSE);
	tcase_add_loop_test(tc, test_stream_one_read, 0, NSTREAM);
	tcase_add_loop_test(tc, test_stream_byte_by_byte, 0, NSTREAM);
	tcase_add_loop_test(tc, test_every_prefix_needs_more, 0, NSTREAM);
	tcase_add_loop_test(tc, test_encode_table, 0, NENCODE);
	tcase_add_loop_test(tc, test_encode_parse_roundtrip, 0, 40);
	tcase_add_test(tc, test_encoded_len);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(netstring_suite)
