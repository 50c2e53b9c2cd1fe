/* fuzz_policy: policy delegation request stream parsing (whole and in pieces) and reply round trips. */
#include "vmail/policy.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_chunks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static struct policy_request req, req2, req3;
static struct policy_scan scan;

static bool inside(const char *p, size_t len, const char *base, size_t base_len)
{
	return p >= base && len <= base_len && (size_t)(p - base) <= base_len - len;
}

static void check_request(const char *buf, size_t used)
{
	char name[POLICY_MAX_LINE + 1];

	CHECK(used >= 1 && used <= POLICY_MAX_REQUEST && buf[used - 1] == '\n');
	CHECK(req.count <= POLICY_MAX_ATTRS);
	for (size_t i = 0; i < req.count; i++) {
		const struct policy_attr *a = &req.attrs[i];
		CHECK(a->name_len > 0 && a->name_len <= POLICY_MAX_LINE);
		CHECK(inside(a->name, a->name_len, buf, used));
		CHECK(inside(a->value, a->value_len, buf, used));
		CHECK(a->value == a->name + a->name_len + 1 && a->name[a->name_len] == '=');
		CHECK(!memchr(a->name, '=', a->name_len));
		CHECK(!memchr(a->name, '\n', a->name_len) && !memchr(a->value, '\n', a->value_len));
		CHECK(!memchr(a->name, '\0', a->name_len) && !memchr(a->value, '\0', a->value_len));

		/* lookup finds the last attribute of that name */
		memcpy(name, a->name, a->name_len);
		name[a->name_len] = '\0';
		size_t vlen;
		const char *v = policy_request_get(&req, name, &vlen);
		CHECK(v != NULL);
		size_t last = i;
		for (size_t j = i + 1; j < req.count; j++)
			if (req.attrs[j].name_len == a->name_len &&
			    memcmp(req.attrs[j].name, a->name, a->name_len) == 0)
				last = j;
		CHECK(v == req.attrs[last].value && vlen == req.attrs[last].value_len);
	}
}

static void reply_round_trip(const char *action, size_t len)
{
	static char out[POLICY_MAX_LINE + 16];
	size_t n = policy_format_reply(out, sizeof(out), action, len);

	if (len == 0 || memchr(action, '\n', len) || memchr(action, '\0', len) ||
	    len + 9 > sizeof(out)) {
		CHECK(n == 0);
		return;
	}
	CHECK(n == len + 9);
	size_t used;
	enum policy_status st = policy_parse(out, n, NULL, &req2, &used, NULL);
	/* A trailing '\r' is the one thing the parser strips from a value. */
	if (action[len - 1] == '\r' || len + 7 > POLICY_MAX_LINE) {
		CHECK(st != POLICY_NEED_MORE);
		return;
	}
	CHECK(st == POLICY_OK && used == n && req2.count == 1);
	size_t vlen;
	const char *v = policy_request_get(&req2, "action", &vlen);
	CHECK(v && vlen == len && memcmp(v, action, len) == 0);
}

/*
 * chunked - the input as a stream arriving in reads of random sizes, parsed as vmaild does:
 * with a scan state, everything buffered since the last whole request.  After every read
 * each result must equal a one-shot parse of the same bytes.
 */
static void chunked(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct fuzz_chunks fc;
	size_t off = 0;

	memset(&scan, 0, sizeof(scan));
	fuzz_chunks_init(&fc, data, size);
	while (fuzz_chunks_read(&fc)) {
		size_t fed = fc.fed;
		for (;;) {
			const char *err = NULL, *err1 = NULL;
			size_t used = 0, used1 = 0;
			enum policy_status one =
				policy_parse(buf + off, fed - off, NULL, &req3, &used1, &err1);
			enum policy_status st = policy_parse(buf + off, fed - off, &scan, &req2, &used, &err);
			CHECK(st == one && used == used1 && err == err1);
			if (st == POLICY_ERROR)
				return;
			if (st == POLICY_NEED_MORE) {
				CHECK(scan.line <= scan.scanned && scan.scanned <= fed - off);
				break;
			}
			CHECK(scan.scanned == 0 && scan.count == 0);
			/* Views into the same bytes: the very same pointers. */
			CHECK(req2.count == req3.count);
			for (size_t i = 0; i < req2.count; i++)
				CHECK(req2.attrs[i].name == req3.attrs[i].name &&
				      req2.attrs[i].name_len == req3.attrs[i].name_len &&
				      req2.attrs[i].value == req3.attrs[i].value &&
				      req2.attrs[i].value_len == req3.attrs[i].value_len);
			off += used;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	while (off < size) {
		const char *err = NULL;
		size_t used;
		enum policy_status st = policy_parse(buf + off, size - off, NULL, &req, &used, &err);
		if (st == POLICY_ERROR) {
			CHECK(err != NULL);
			break;
		}
		if (st == POLICY_NEED_MORE) {
			CHECK(size - off < POLICY_MAX_REQUEST);
			break;
		}
		check_request(buf + off, used);
		/* a proper prefix of a complete request is incomplete, never broken */
		CHECK(policy_parse(buf + off, used - 1, NULL, &req2, &(size_t){0}, NULL) == POLICY_NEED_MORE);
		CHECK(policy_parse(buf + off, used / 2, NULL, &req2, &(size_t){0}, NULL) == POLICY_NEED_MORE);
		size_t vlen;
		const char *v = policy_request_get(&req, "recipient", &vlen);
		if (v)
			reply_round_trip(v, vlen);
		off += used;
	}

	chunked(data, size);
	reply_round_trip(buf, size);
	return 0;
}
