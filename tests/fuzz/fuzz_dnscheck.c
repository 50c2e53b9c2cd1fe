/*
 * fuzz_dnscheck: vmailctl's DNS codec (dnscheck.c) on hostile replies, and queries built
 * from hostile names.
 *
 * The first input byte picks the question (one of four names, and MX, TXT, A or CNAME) and
 * how the rest is used: bit 7 clear, the rest is the whole reply, its own id taken as ours;
 * bit 7 set, the rest is the reply's header and record sections around a question written
 * here, so that mutations reach the records and the compression pointers into the question
 * instead of breaking the question match.  A query is also built from the input as a name:
 * when that works, the same bytes with the reply flag set must read as "no data".
 */
#include "dnscheck.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

#define HDR_LEN 12

static const char *const names[] = {
	"example.com",
	"_vmail-verify.example.com",
	"Mail.Example.ORG.",
	"a.b",
};
static const uint16_t qtypes[] = {DNSCHECK_TYPE_MX, DNSCHECK_TYPE_TXT, 1, 5};

static struct dnscheck_answer ans;
static unsigned char msg[65536 + 512];

static size_t cstrnlen(const char *s, size_t max)
{
	const char *z = memchr(s, '\0', max);
	return z ? (size_t)(z - s) : max;
}

/* check_answer - what every caller relies on, whatever the bytes were */
static void check_answer(bool ok, uint16_t qtype)
{
	CHECK(ans.count <= DNSCHECK_MAX_RECORDS);
	CHECK(cstrnlen(ans.error, sizeof(ans.error)) < sizeof(ans.error));
	if (!ok) {
		/* an outage or garbage never reads as "no record" */
		CHECK(ans.status == DNSCHECK_TEMPFAIL && ans.count == 0 && ans.error[0]);
		return;
	}
	CHECK(ans.status == DNSCHECK_FOUND || ans.status == DNSCHECK_NODATA ||
	      ans.status == DNSCHECK_NXDOMAIN);
	CHECK((ans.status == DNSCHECK_FOUND) == (ans.count > 0));
	CHECK(ans.error[0] == '\0');
	for (size_t i = 0; i < ans.count; i++) {
		const struct dnscheck_record *r = &ans.rec[i];
		size_t n = cstrnlen(r->text, sizeof(r->text));
		CHECK(n < sizeof(r->text));
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)r->text[k];
			/* printable: names as 0x21..0x7e (labels joined by '.'), TXT without controls */
			if (qtype == DNSCHECK_TYPE_MX)
				CHECK(c >= 0x21 && c <= 0x7e);
			else
				CHECK(c >= 0x20 && c != 0x7f);
		}
		if (qtype != DNSCHECK_TYPE_MX)
			CHECK(r->pref == 0);
	}
	/* the comparisons on a decoded answer */
	(void)dnscheck_token_match(&ans, "vmail-verify=0123456789abcdef");
	if (ans.count)
		(void)dnscheck_host_in_list(ans.rec[0].text, "mx1.example.com, mx2.example.com");
}

/* framed - our question between the input's header and its record sections */
static size_t framed(const uint8_t *in, size_t n, uint16_t id, const char *name, uint16_t qtype)
{
	unsigned char q[512];
	size_t qlen = dnscheck_build_query(id, name, qtype, q, sizeof(q));
	CHECK(qlen > HDR_LEN + 11);
	qlen -= 11; /* without the OPT record */
	if (n < HDR_LEN)
		return 0;
	memcpy(msg, in, HDR_LEN);
	msg[0] = (unsigned char)(id >> 8);
	msg[1] = (unsigned char)id;
	msg[2] |= 0x80; /* QR */
	msg[4] = 0;
	msg[5] = 1; /* QDCOUNT */
	memcpy(msg + HDR_LEN, q + HDR_LEN, qlen - HDR_LEN);
	memcpy(msg + qlen, in + HDR_LEN, n - HDR_LEN);
	return qlen + n - HDR_LEN;
}

/* query_round_trip - a query for the input as a name, answered by itself, is "no data" */
static void query_round_trip(const uint8_t *data, size_t size)
{
	char name[300];
	unsigned char q[DNSCHECK_MSG_MAX];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;

	memcpy(name, data, n);
	name[n] = '\0';
	size_t qlen = dnscheck_build_query(0x1234, name, DNSCHECK_TYPE_TXT, q, sizeof(q));
	if (!qlen)
		return;
	CHECK(qlen >= HDR_LEN + 2 + 4 + 11 && qlen <= HDR_LEN + 255 + 4 + 11);
	q[2] |= 0x80;
	CHECK(dnscheck_parse_reply(q, qlen, 0x1234, name, DNSCHECK_TYPE_TXT, &ans));
	CHECK(ans.status == DNSCHECK_NODATA && ans.count == 0);
	/* and to no other question */
	CHECK(!dnscheck_parse_reply(q, qlen, 0x1235, name, DNSCHECK_TYPE_TXT, &ans));
	CHECK(!dnscheck_parse_reply(q, qlen, 0x1234, name, DNSCHECK_TYPE_MX, &ans));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > sizeof(msg) - 512)
		return 0;
	uint8_t sel = data[0];
	const char *name = names[(sel >> 2) & 3];
	uint16_t qtype = qtypes[sel & 3];
	const uint8_t *in = data + 1;
	size_t n = size - 1;

	size_t len;
	uint16_t id;
	if (sel & 0x80) {
		id = 0x4242;
		len = framed(in, n, id, name, qtype);
	} else {
		id = n >= 2 ? (uint16_t)((in[0] << 8) | in[1]) : 0;
		memcpy(msg, in, n);
		len = n;
	}
	/* a copy of exactly len bytes, so that reading past the end is caught */
	unsigned char *exact = malloc(len ? len : 1);
	CHECK(exact != NULL);
	memcpy(exact, msg, len);
	bool ok = dnscheck_parse_reply(exact, len, id, name, qtype, &ans);
	check_answer(ok, qtype);
	free(exact);

	query_round_trip(in, n);
	return 0;
}
