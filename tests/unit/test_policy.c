/* test_policy: policy delegation request parsing and reply formatting, table-driven. */
#include "vmail/policy.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

#define B(s) s, sizeof(s) - 1 /* literal with its exact length, NULs included */

#define POSTFIX_REQUEST                                                                        \
	"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"              \
	"client_address=192.0.2.1\nclient_name=mail.example.net\nclient_port=40000\n"         \
	"reverse_client_name=mail.example.net\nserver_address=192.0.2.2\nserver_port=25\n"    \
	"helo_name=mail.example.net\nsender=alice@example.net\nrecipient=bob@example.com\n"   \
	"recipient_count=0\nqueue_id=\ninstance=1a2b.5f5e1.0\nsize=0\netrn_domain=\n"          \
	"stress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\n"               \
	"ccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"                       \
	"encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n"             \
	"encryption_keysize=256\npolicy_context=\n\n"

struct lookup {
	const char *name;
	const char *value; /* NULL: must be absent */
	size_t value_len;
};

struct parse_row {
	const char *in;
	size_t len;
	enum policy_status status;
	size_t consumed;
	size_t count;
	struct lookup get[3];
	const char *err;
};

static const struct parse_row parse_rows[] = {
	{ B("request=smtpd_access_policy\nrecipient=bob@example.com\n\n"), POLICY_OK, 55, 2,
	  { { "recipient", B("bob@example.com") }, { "request", B("smtpd_access_policy") },
	    { "sender", NULL, 0 } },
	  NULL },
	{ B(POSTFIX_REQUEST), POLICY_OK, sizeof(POSTFIX_REQUEST) - 1, 29,
	  { { "protocol_state", B("RCPT") }, { "queue_id", B("") }, { "size", B("0") } },
	  NULL },
	{ B("\n"), POLICY_OK, 1, 0, { { "recipient", NULL, 0 } }, NULL },
	{ B("\r\n"), POLICY_OK, 2, 0, { { "", NULL, 0 } }, NULL },
	{ B("a=1\r\nb=2\r\n\r\n"), POLICY_OK, 12, 2, { { "a", B("1") }, { "b", B("2") } }, NULL },
	{ B("a=1\n\nb=2\n\n"), POLICY_OK, 5, 1, { { "a", B("1") }, { "b", NULL, 0 } }, NULL },
	{ B("a=b=c\n\n"), POLICY_OK, 7, 1, { { "a", B("b=c") }, { "a=b", NULL, 0 } }, NULL },
	{ B("a=\n\n"), POLICY_OK, 4, 1, { { "a", B("") } }, NULL },
	{ B("a=1\rx\n\n"), POLICY_OK, 7, 1, { { "a", B("1\rx") } }, NULL },
	{ B("a=1\r\r\n\n"), POLICY_OK, 7, 1, { { "a", B("1\r") } }, NULL },
	{ B("a= spaced value \n\n"), POLICY_OK, 18, 1, { { "a", B(" spaced value ") } }, NULL },
	{ B("sender=\nsender=x@y\n\n"), POLICY_OK, 20, 2, { { "sender", B("x@y") } }, NULL },
	{ B("Recipient=x\n\n"), POLICY_OK, 13, 1,
	  { { "recipient", NULL, 0 }, { "Recipient", B("x") } }, NULL },
	{ B("x y=\xc3\xa9\n\n"), POLICY_OK, 8, 1, { { "x y", B("\xc3\xa9") } }, NULL },
	/* incomplete: no empty line yet */
	{ B(""), POLICY_NEED_MORE, 0, 0, { { NULL, NULL, 0 } }, NULL },
	{ B("request=smtpd_access_policy"), POLICY_NEED_MORE, 0, 0, { { NULL, NULL, 0 } }, NULL },
	{ B("request=smtpd_access_policy\n"), POLICY_NEED_MORE, 0, 0, { { NULL, NULL, 0 } }, NULL },
	{ B("a=1\n\r"), POLICY_NEED_MORE, 0, 0, { { NULL, NULL, 0 } }, NULL },
	{ B("garbage"), POLICY_NEED_MORE, 0, 0, { { NULL, NULL, 0 } }, NULL },
	/* broken */
	{ B("garbage\n\n"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "without '='" },
	{ B("a=1\ngarbage\n"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "without '='" },
	{ B("GET / HTTP/1.0\r\n\r\n"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "without '='" },
	{ B("=x\n\n"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "empty attribute name" },
	{ B("=\n"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "empty attribute name" },
	{ B("a=1\0\n\n"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "NUL" },
	{ B("\0\n"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "NUL" },
	{ B("a=\0"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "NUL" },
	{ B("a=1\nb\0"), POLICY_ERROR, 0, 0, { { NULL, NULL, 0 } }, "NUL" },
};

#define NPARSE (sizeof(parse_rows) / sizeof(parse_rows[0]))

/*
 * parse_resumed - in[0..len) arriving one byte per read: parsed with a scan
 * after each byte until it is not "need more".  Every prefix must give what a
 * one-shot parse of that prefix gives: same status, consumed count and error.
 */
static enum policy_status parse_resumed(const char *in, size_t len, struct policy_request *req,
					size_t *consumed, const char **err)
{
	static struct policy_scan scan;
	enum policy_status st = POLICY_NEED_MORE;

	memset(&scan, 0, sizeof(scan));
	for (size_t k = 0; k <= len && st == POLICY_NEED_MORE; k++) {
		const char *one_err = NULL;
		size_t one_used = 99;
		enum policy_status one = policy_parse(in, k, NULL, req, &one_used, &one_err);
		*err = NULL;
		st = policy_parse(in, k, &scan, req, consumed, err);
		ck_assert_msg(st == one && *consumed == one_used && *err == one_err,
			      "prefix %zu: resumed %d/%zu/%s, one-shot %d/%zu/%s", k, st, *consumed,
			      *err ? *err : "-", one, one_used, one_err ? one_err : "-");
	}
	return st;
}

/* Each row parsed in one call (even _i) and one byte per call with a scan (odd _i). */
START_TEST(test_parse_table)
{
	const struct parse_row *r = &parse_rows[_i / 2];
	struct policy_request req;
	const char *err = NULL;
	size_t consumed = 99;

	enum policy_status st = _i % 2 ? parse_resumed(r->in, r->len, &req, &consumed, &err)
				       : policy_parse(r->in, r->len, NULL, &req, &consumed, &err);
	ck_assert_msg(st == r->status, "row %d: status %d, want %d (err %s)", _i / 2, st, r->status,
		      err ? err : "-");
	if (st != POLICY_OK)
		ck_assert_uint_eq(consumed, 0);
	if (st == POLICY_ERROR) {
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, r->err), "row %d: err \"%s\" lacks \"%s\"", _i / 2, err, r->err);
		return;
	}
	if (st != POLICY_OK)
		return;
	ck_assert_uint_eq(consumed, r->consumed);
	ck_assert_uint_eq(req.count, r->count);
	for (size_t i = 0; i < 3 && r->get[i].name; i++) {
		size_t vlen = 99;
		const char *v = policy_request_get(&req, r->get[i].name, &vlen);
		if (!r->get[i].value) {
			ck_assert_msg(v == NULL, "row %d: %s present", _i / 2, r->get[i].name);
			continue;
		}
		ck_assert_msg(v != NULL, "row %d: %s absent", _i / 2, r->get[i].name);
		ck_assert_uint_eq(vlen, r->get[i].value_len);
		ck_assert_mem_eq(v, r->get[i].value, vlen);
		ck_assert(v >= r->in && v + vlen <= r->in + r->len);
	}
}
END_TEST

/* Streams of requests fed in chunks of _i + 1 bytes (1 = byte by byte). */
START_TEST(test_split_reads)
{
	static const char stream[] = POSTFIX_REQUEST "request=smtpd_access_policy\r\n"
						     "recipient=carol@example.com\r\n\r\n\n";
	static const char *const recipients[] = { "bob@example.com", "carol@example.com", NULL };
	static const size_t counts[] = { 29, 2, 0 };
	size_t chunk = (size_t)_i + 1, total = sizeof(stream) - 1;
	char buf[sizeof(stream)];
	size_t have = 0, fed = 0, n = 0;
	static struct policy_scan scan;

	memset(&scan, 0, sizeof(scan));
	while (fed < total) {
		size_t take = total - fed < chunk ? total - fed : chunk;
		memcpy(buf + have, stream + fed, take);
		have += take;
		fed += take;
		for (;;) {
			struct policy_request req;
			const char *err = NULL;
			size_t used;
			enum policy_status st = policy_parse(buf, have, &scan, &req, &used, &err);
			ck_assert_msg(st != POLICY_ERROR, "%s", err);
			if (st == POLICY_NEED_MORE)
				break;
			ck_assert_uint_lt(n, 3);
			ck_assert_uint_eq(req.count, counts[n]);
			size_t vlen;
			const char *v = policy_request_get(&req, "recipient", &vlen);
			if (recipients[n]) {
				ck_assert_ptr_nonnull(v);
				ck_assert_uint_eq(vlen, strlen(recipients[n]));
				ck_assert_mem_eq(v, recipients[n], vlen);
			} else {
				ck_assert_ptr_null(v);
			}
			n++;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
	}
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(have, 0);
}
END_TEST

START_TEST(test_every_prefix_needs_more)
{
	static const char req_text[] = POSTFIX_REQUEST;
	struct policy_request req;
	size_t used;

	for (size_t k = 0; k < sizeof(req_text) - 1; k++)
		ck_assert_msg(policy_parse(req_text, k, NULL, &req, &used, NULL) == POLICY_NEED_MORE,
			      "prefix %zu", k);
}
END_TEST

/* Generated requests around each limit. */
enum gen_kind { GEN_ATTRS, GEN_LINE, GEN_TOTAL };

struct limit_row {
	enum gen_kind kind;
	size_t n;              /* attributes, line length or total size */
	bool terminate;        /* append the empty line */
	enum policy_status status;
	const char *err;
};

static const struct limit_row limit_rows[] = {
	{ GEN_ATTRS, POLICY_MAX_ATTRS, true, POLICY_OK, NULL },
	{ GEN_ATTRS, POLICY_MAX_ATTRS + 1, true, POLICY_ERROR, "too many attributes" },
	{ GEN_ATTRS, POLICY_MAX_ATTRS + 1, false, POLICY_ERROR, "too many attributes" },
	{ GEN_LINE, POLICY_MAX_LINE, true, POLICY_OK, NULL },
	{ GEN_LINE, POLICY_MAX_LINE, false, POLICY_NEED_MORE, NULL },
	{ GEN_LINE, POLICY_MAX_LINE + 1, true, POLICY_ERROR, "line too long" },
	/* detected before the newline arrives */
	{ GEN_LINE, POLICY_MAX_LINE + 1, false, POLICY_ERROR, "line too long" },
	{ GEN_LINE, 3 * POLICY_MAX_LINE, false, POLICY_ERROR, "line too long" },
	{ GEN_TOTAL, POLICY_MAX_REQUEST, true, POLICY_OK, NULL },
	{ GEN_TOTAL, POLICY_MAX_REQUEST + 1, true, POLICY_ERROR, "too large" },
	/* MAX_REQUEST bytes without the empty line: it can only grow */
	{ GEN_TOTAL, POLICY_MAX_REQUEST + 1, false, POLICY_ERROR, "too large" },
	{ GEN_TOTAL, POLICY_MAX_REQUEST, false, POLICY_NEED_MORE, NULL },
};

#define NLIMIT (sizeof(limit_rows) / sizeof(limit_rows[0]))

/* gen - build a request per row into buf; returns its length */
static size_t gen(const struct limit_row *r, char *buf, size_t cap)
{
	size_t len = 0;

	switch (r->kind) {
	case GEN_ATTRS:
		for (size_t i = 0; i < r->n; i++)
			len += (size_t)snprintf(buf + len, cap - len, "attr%zu=v\n", i);
		break;
	case GEN_LINE:
		/* one line of exactly n bytes before its '\n' */
		memcpy(buf, "name=", 5);
		memset(buf + 5, 'v', r->n - 5);
		len = r->n;
		buf[len++] = '\n';
		break;
	case GEN_TOTAL: {
		/* lines of at most 1000 bytes; the whole request (with "\n" end) is n bytes */
		size_t body = r->n - 1;
		while (body > 0) {
			size_t line = body > 1000 ? 1000 : body;
			if (body - line > 0 && body - line < 4)
				line -= 4; /* keep room for a minimal "a=\n" */
			memcpy(buf + len, "a=", 2);
			memset(buf + len + 2, 'x', line - 3);
			buf[len + line - 1] = '\n';
			len += line;
			body -= line;
		}
		break;
	}
	}
	if (r->terminate)
		buf[len++] = '\n';
	ck_assert_uint_le(len, cap);
	return len;
}

START_TEST(test_limits)
{
	static char buf[4 * POLICY_MAX_REQUEST];
	const struct limit_row *r = &limit_rows[_i];
	struct policy_request req;
	const char *err = NULL;
	size_t used = 0;

	size_t len = gen(r, buf, sizeof(buf));
	if (r->kind == GEN_TOTAL)
		ck_assert_uint_eq(len, r->n - (r->terminate ? 0 : 1));
	enum policy_status st = policy_parse(buf, len, NULL, &req, &used, &err);
	ck_assert_msg(st == r->status, "row %d: status %d, want %d (err %s)", _i / 2, st, r->status,
		      err ? err : "-");
	if (st == POLICY_OK)
		ck_assert_uint_eq(used, len);
	if (st == POLICY_ERROR)
		ck_assert_msg(strstr(err, r->err), "row %d: err \"%s\" lacks \"%s\"", _i / 2, err, r->err);
}
END_TEST

struct reply_row {
	const char *action;
	size_t len;
	size_t cap;
	const char *out; /* NULL: must return 0 */
};

static const struct reply_row reply_rows[] = {
	{ B("DUNNO"), 64, "action=DUNNO\n\n" },
	{ B("DUNNO"), 14, "action=DUNNO\n\n" },
	{ B("DUNNO"), 13, NULL },
	{ B("DUNNO"), 0, NULL },
	{ B("554 5.2.2 Quota exceeded"), 64, "action=554 5.2.2 Quota exceeded\n\n" },
	{ B("DEFER_IF_PERMIT Service temporarily unavailable"), 64,
	  "action=DEFER_IF_PERMIT Service temporarily unavailable\n\n" },
	{ B(""), 64, NULL },
	{ B("REJECT a\nb"), 64, NULL },
	{ B("REJECT\n"), 64, NULL },
	{ B("REJECT a\0b"), 64, NULL },
};

#define NREPLY (sizeof(reply_rows) / sizeof(reply_rows[0]))

START_TEST(test_reply_table)
{
	const struct reply_row *r = &reply_rows[_i];
	char out[128];

	memset(out, 'X', sizeof(out));
	size_t n = policy_format_reply(out, r->cap, r->action, r->len);
	if (!r->out) {
		ck_assert_msg(n == 0, "row %d: wrote %zu bytes", _i, n);
		return;
	}
	ck_assert_uint_eq(n, strlen(r->out));
	ck_assert_mem_eq(out, r->out, n);
	ck_assert_int_eq(out[n], 'X');
}
END_TEST

START_TEST(test_reply_parses_back)
{
	char out[64];
	struct policy_request req;
	size_t used, vlen;

	size_t n = policy_format_reply(out, sizeof(out), "REJECT no=way", 13);
	ck_assert_int_eq(policy_parse(out, n, NULL, &req, &used, NULL), POLICY_OK);
	ck_assert_uint_eq(used, n);
	const char *v = policy_request_get(&req, "action", &vlen);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(vlen, 13);
	ck_assert_mem_eq(v, "REJECT no=way", 13);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_table, 0, 2 * NPARSE);
	tcase_add_loop_test(tc, test_split_reads, 0, 8);
	tcase_add_test(tc, test_every_prefix_needs_more);
	tcase_add_loop_test(tc, test_limits, 0, NLIMIT);
	tcase_add_loop_test(tc, test_reply_table, 0, NREPLY);
	tcase_add_test(tc, test_reply_parses_back);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(policy_suite)
