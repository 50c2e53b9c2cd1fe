/* test_socketmap: socketmap request parsing and reply formatting, table-driven. */
#include "vmail/socketmap.h"

#include "vmail/netstring.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

#define B(s) s, sizeof(s) - 1 /* literal with its exact length, NULs included */

#define NAME64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."

struct req_row {
	const char *in;
	size_t len;
	bool ok;
	const char *name;
	const char *key;
	size_t key_len;
	const char *err;
};

static const struct req_row req_rows[] = {
	{ B("aliases bob@example.com"), true, "aliases", B("bob@example.com"), NULL },
	{ B("aliases Bob+x@Example.COM"), true, "aliases", B("Bob+x@Example.COM"), NULL },
	{ B("aliases "), true, "aliases", B(""), NULL },
	{ B("aliases \"john doe\"@example.com"), true, "aliases", B("\"john doe\"@example.com"),
	  NULL },
	{ B("aliases  x "), true, "aliases", B(" x "), NULL },
	{ B("domains example.com"), true, "domains", B("example.com"), NULL },
	{ B("my-map.v2_X key"), true, "my-map.v2_X", B("key"), NULL },
	{ B("m k\tey"), true, "m", B("k\tey"), NULL },
	{ B("m k\xc3\xa9y"), true, "m", B("k\xc3\xa9y"), NULL },
	{ B(NAME64 " k"), true, NAME64, B("k"), NULL },
	{ B("aliases"), false, NULL, NULL, 0, "no space" },
	{ B(""), false, NULL, NULL, 0, "no space" },
	{ B("aliases\tkey"), false, NULL, NULL, 0, "no space" },
	{ B(" key"), false, NULL, NULL, 0, "empty" },
	{ B(" "), false, NULL, NULL, 0, "empty" },
	{ B(NAME64 "x k"), false, NULL, NULL, 0, "too long" },
	{ B("al/ias key"), false, NULL, NULL, 0, "invalid character" },
	{ B("al:ias key"), false, NULL, NULL, 0, "invalid character" },
	{ B("al\xc3\xaf" "as key"), false, NULL, NULL, 0, "invalid character" },
	{ B("al\0ias key"), false, NULL, NULL, 0, "NUL" },
	{ B("aliases k\0ey"), false, NULL, NULL, 0, "NUL" },
	{ B("aliases key\0"), false, NULL, NULL, 0, "NUL" },
};

#define NREQ (sizeof(req_rows) / sizeof(req_rows[0]))

START_TEST(test_request_table)
{
	const struct req_row *r = &req_rows[_i];
	struct socketmap_request req;
	const char *err = NULL;

	bool ok = socketmap_parse_request(r->in, r->len, &req, &err);
	ck_assert_msg(ok == r->ok, "row %d: ok %d (err %s)", _i, ok, err ? err : "-");
	if (ok) {
		ck_assert_uint_eq(req.name_len, strlen(r->name));
		ck_assert_mem_eq(req.name, r->name, req.name_len);
		ck_assert_ptr_eq(req.name, r->in);
		ck_assert_uint_eq(req.key_len, r->key_len);
		ck_assert_mem_eq(req.key, r->key, r->key_len);
		ck_assert_ptr_eq(req.key + req.key_len, r->in + r->len);
	} else {
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, r->err), "row %d: err \"%s\" lacks \"%s\"", _i, err, r->err);
	}
}
END_TEST

START_TEST(test_request_size_limit)
{
	static char buf[SOCKETMAP_MAX_REQUEST + 1];
	struct socketmap_request req;
	const char *err = NULL;

	memset(buf, 'k', sizeof(buf));
	memcpy(buf, "aliases ", 8);
	ck_assert(socketmap_parse_request(buf, SOCKETMAP_MAX_REQUEST, &req, &err));
	ck_assert_uint_eq(req.key_len, SOCKETMAP_MAX_REQUEST - 8);
	ck_assert(!socketmap_parse_request(buf, SOCKETMAP_MAX_REQUEST + 1, &req, &err));
	ck_assert_ptr_nonnull(strstr(err, "too long"));
}
END_TEST

/* A stream as Postfix sends it: several framed requests, split anywhere. */
START_TEST(test_stream_split_reads)
{
	static const char stream[] = "25:aliases bob+x@Example.com,19:domains example.com,"
				     "8:aliases ,";
	static const char *const names[] = { "aliases", "domains", "aliases" };
	static const char *const keys[] = { "bob+x@Example.com", "example.com", "" };
	size_t chunk = (size_t)_i + 1; /* 1 = one byte at a time */
	char buf[sizeof(stream)];
	size_t have = 0, fed = 0, n = 0;

	while (fed < sizeof(stream) - 1) {
		size_t take = sizeof(stream) - 1 - fed < chunk ? sizeof(stream) - 1 - fed : chunk;
		memcpy(buf + have, stream + fed, take);
		have += take;
		fed += take;
		for (;;) {
			const char *p, *err = NULL;
			size_t plen, used;
			enum netstring_status st = netstring_parse(buf, have, SOCKETMAP_MAX_REQUEST, NULL, &p,
								   &plen, &used, &err);
			ck_assert_msg(st != NETSTRING_ERROR, "%s", err);
			if (st == NETSTRING_NEED_MORE)
				break;
			struct socketmap_request req;
			ck_assert(socketmap_parse_request(p, plen, &req, &err));
			ck_assert_uint_lt(n, 3);
			ck_assert_uint_eq(req.name_len, strlen(names[n]));
			ck_assert_mem_eq(req.name, names[n], req.name_len);
			ck_assert_uint_eq(req.key_len, strlen(keys[n]));
			ck_assert_mem_eq(req.key, keys[n], req.key_len);
			n++;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
	}
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(have, 0);
}
END_TEST

/* An oversized request is refused from its length digits alone. */
START_TEST(test_stream_oversize_early)
{
	const char *p, *err = NULL;
	size_t plen, used;

	ck_assert_int_eq(netstring_parse("10000:", 6, SOCKETMAP_MAX_REQUEST, NULL, &p, &plen, &used, &err),
			 NETSTRING_NEED_MORE);
	ck_assert_int_eq(netstring_parse("10001", 5, SOCKETMAP_MAX_REQUEST, NULL, &p, &plen, &used, &err),
			 NETSTRING_ERROR);
	ck_assert_int_eq(netstring_parse("99999999", 8, SOCKETMAP_MAX_REQUEST, NULL, &p, &plen, &used, &err),
			 NETSTRING_ERROR);
}
END_TEST

struct reply_row {
	enum socketmap_reply_kind kind;
	const char *text;
	size_t text_len;
	size_t cap;
	const char *out; /* NULL: must return 0 */
	size_t out_len;
};

static const struct reply_row reply_rows[] = {
	{ SOCKETMAP_REPLY_OK, B("bob@example.com"), 64, B("18:OK bob@example.com,") },
	{ SOCKETMAP_REPLY_OK, B("a, b c"), 64, B("9:OK a, b c,") },
	{ SOCKETMAP_REPLY_OK, B("x"), 64, B("4:OK x,") },
	{ SOCKETMAP_REPLY_OK, B("x"), 7, B("4:OK x,") },
	{ SOCKETMAP_REPLY_OK, B("x"), 6, NULL, 0 },
	{ SOCKETMAP_REPLY_OK, B("x"), 0, NULL, 0 },
	{ SOCKETMAP_REPLY_OK, B(""), 64, NULL, 0 },
	{ SOCKETMAP_REPLY_OK, NULL, 0, 64, NULL, 0 },
	{ SOCKETMAP_REPLY_OK, B("a\0b"), 64, NULL, 0 },
	{ SOCKETMAP_REPLY_OK, B("tab\tok"), 64, B("9:OK tab\tok,") },
	{ SOCKETMAP_REPLY_NOTFOUND, B("ignored"), 64, B("9:NOTFOUND ,") },
	{ SOCKETMAP_REPLY_NOTFOUND, NULL, 0, 64, B("9:NOTFOUND ,") },
	{ SOCKETMAP_REPLY_NOTFOUND, NULL, 0, 12, B("9:NOTFOUND ,") },
	{ SOCKETMAP_REPLY_NOTFOUND, NULL, 0, 11, NULL, 0 },
	{ SOCKETMAP_REPLY_TEMP, B("database unavailable"), 64, B("25:TEMP database unavailable,") },
	{ SOCKETMAP_REPLY_TEMP, B(""), 64, B("4:TEMP,") },
	{ SOCKETMAP_REPLY_TIMEOUT, B("x"), 64, B("9:TIMEOUT x,") },
	{ SOCKETMAP_REPLY_PERM, B("bad\nline\0x\x7f\x01"), 64, B("17:PERM bad?line?x??,") },
	{ SOCKETMAP_REPLY_PERM, B("caf\xc3\xa9"), 64, B("10:PERM caf\xc3\xa9,") },
	{ SOCKETMAP_REPLY_TEMP, B("\r\n"), 64, B("7:TEMP ??,") },
	{ (enum socketmap_reply_kind)99, B("x"), 64, NULL, 0 },
};

#define NREPLY (sizeof(reply_rows) / sizeof(reply_rows[0]))

START_TEST(test_reply_table)
{
	const struct reply_row *r = &reply_rows[_i];
	char out[128];

	memset(out, 'X', sizeof(out));
	size_t n = socketmap_format_reply(out, r->cap, r->kind, r->text, r->text_len);
	if (!r->out) {
		ck_assert_msg(n == 0, "row %d: wrote %zu bytes", _i, n);
		return;
	}
	ck_assert_msg(n == r->out_len, "row %d: %zu bytes, want %zu", _i, n, r->out_len);
	ck_assert_mem_eq(out, r->out, n);
	ck_assert_int_eq(out[n], 'X');
}
END_TEST

/* Reasons are cut to what Postfix logs, but never inside a UTF-8 sequence. */
struct trunc_row {
	size_t ascii;     /* leading 'a' bytes */
	const char *tail; /* then this */
	size_t want_text; /* reason bytes sent */
};

static const struct trunc_row trunc_rows[] = {
	{ 300, "", 200 },
	{ 200, "", 200 },
	{ 199, "", 199 },
	{ 199, "\xc3\xa9zzz", 199 },         /* 2-byte char across the cut */
	{ 198, "\xc3\xa9zzz", 200 },         /* ends exactly at the cut */
	{ 198, "\xe2\x82\xacz", 198 },       /* 3-byte char across the cut */
	{ 197, "\xf0\x9f\x98\x80z", 197 },   /* 4-byte char across the cut */
	{ 199, "\x80\x80\x80\x80\x80", 200 }, /* not UTF-8: plain cut */
	{ 196, "\xc3\x80\x80\x80\x80", 200 }, /* lead byte too far back */
	{ 199, "\xc3", 200 },                /* fits: nothing to cut */
};

#define NTRUNC (sizeof(trunc_rows) / sizeof(trunc_rows[0]))

START_TEST(test_reason_truncation)
{
	const struct trunc_row *r = &trunc_rows[_i];
	char text[400], out[400];
	size_t tail = strlen(r->tail);

	memset(text, 'a', r->ascii);
	memcpy(text + r->ascii, r->tail, tail);
	size_t n = socketmap_format_reply(out, sizeof(out), SOCKETMAP_REPLY_TEMP, text,
					  r->ascii + tail);
	ck_assert_uint_gt(n, 0);

	const char *p;
	size_t plen, used;
	ck_assert_int_eq(netstring_parse(out, n, SOCKETMAP_MAX_REPLY, NULL, &p, &plen, &used, NULL),
			 NETSTRING_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(plen, 5 + r->want_text);
	ck_assert_mem_eq(p, "TEMP ", 5);
	ck_assert_mem_eq(p + 5, text, r->want_text);
}
END_TEST

/* The payload limit is Postfix's: 100000 bytes, "OK " included. */
START_TEST(test_reply_size_limit)
{
	static char text[SOCKETMAP_MAX_REPLY], out[SOCKETMAP_MAX_REPLY + 64];
	size_t max_text = SOCKETMAP_MAX_REPLY - 3;

	memset(text, 'v', sizeof(text));
	size_t n = socketmap_format_reply(out, sizeof(out), SOCKETMAP_REPLY_OK, text, max_text);
	ck_assert_uint_eq(n, netstring_encoded_len(SOCKETMAP_MAX_REPLY));
	ck_assert_mem_eq(out, "100000:OK vvv", 13);
	ck_assert_int_eq(out[n - 1], ',');
	ck_assert_uint_eq(socketmap_format_reply(out, sizeof(out), SOCKETMAP_REPLY_OK, text,
						 max_text + 1),
			  0);
	/* Reasons are truncated rather than refused. */
	ck_assert_uint_eq(socketmap_format_reply(out, sizeof(out), SOCKETMAP_REPLY_PERM, text,
						 sizeof(text)),
			  netstring_encoded_len(5 + SOCKETMAP_MAX_REASON));
}
END_TEST

static Suite *socketmap_suite(void)
{
	Suite *s = suite_create("socketmap");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_request_table, 0, NREQ);
	tcase_add_test(tc, test_request_size_limit);
	tcase_add_loop_test(tc, test_stream_split_reads, 0, 8);
	tcase_add_test(tc, test_stream_oversize_early);
	tcase_add_loop_test(tc, test_reply_table, 0, NREPLY);
	tcase_add_loop_test(tc, test_reason_truncation, 0, NTRUNC);
	tcase_add_test(tc, test_reply_size_limit);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(socketmap_suite)
