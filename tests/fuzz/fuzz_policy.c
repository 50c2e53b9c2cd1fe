/* fuzz_policy: policy delegation request stream parsing and reply round trips. */
#include "vmail/policy.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static struct policy_request req, req2;

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
	enum policy_status st = policy_parse(out, n, &req2, &used, NULL);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	while (off < size) {
		const char *err = NULL;
		size_t used;
		enum policy_status st = policy_parse(buf + off, size - off, &req, &used, &err);
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
		CHECK(policy_parse(buf + off, used - 1, &req2, &(size_t){ 0 }, NULL) ==
		      POLICY_NEED_MORE);
		CHECK(policy_parse(buf + off, used / 2, &req2, &(size_t){ 0 }, NULL) ==
		      POLICY_NEED_MORE);
		size_t vlen;
		const char *v = policy_request_get(&req, "recipient", &vlen);
		if (v)
			reply_round_trip(v, vlen);
		off += used;
	}

	reply_round_trip(buf, size);
	return 0;
}
