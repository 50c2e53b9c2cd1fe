/*
 * fuzz_dnscheck: vmailctl's reading of DNS replies (dnscheck.c over libresolv's ns_parse) on
 * hostile bytes, and hostile names checked, asked and answered.
 *
 * The first input byte picks the question (one of four names, and MX, TXT, A or CNAME) and
 * how the rest is used: bit 7 clear, the rest is the whole reply;
 * bit 7 set, the rest is the reply's header and record sections around a question written
 * here, so that mutations reach the records and the compression pointers into the question
 * instead of breaking the question match.  A query is also built from the input as a name:
 * when that works, the same bytes with the reply flag set must read as "no data".
 */
#include "dnscheck.h"

#include <arpa/nameser.h>
#include <resolv.h>
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
static const uint16_t qtypes[] = {DNSCHECK_TYPE_MX, DNSCHECK_TYPE_TXT, DNSCHECK_TYPE_SRV,
				  DNSCHECK_TYPE_A};

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
			/* printable: names in presentation form, addresses, TXT without controls */
			if (qtype == DNSCHECK_TYPE_TXT)
				CHECK(c >= 0x20 && c != 0x7f);
			else
				CHECK(c >= 0x21 && c <= 0x7e);
		}
		if (qtype != DNSCHECK_TYPE_MX && qtype != DNSCHECK_TYPE_SRV)
			CHECK(r->pref == 0);
		if (qtype != DNSCHECK_TYPE_SRV)
			CHECK(r->weight == 0 && r->port == 0);
	}
	/* the comparisons on a decoded answer */
	(void)dnscheck_token_match(&ans, "vmail-verify=0123456789abcdef");
	if (ans.count)
		(void)dnscheck_host_in_list(ans.rec[0].text, "mx1.example.com, mx2.example.com");
}

/* question - name/qtype as a question section (uncompressed labels, type, class IN) */
static size_t question(const char *name, uint16_t qtype, unsigned char *out)
{
	size_t o = 0;
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, ".");
		out[o++] = (unsigned char)n;
		memcpy(out + o, p, n);
		o += n;
		p += n;
		if (*p == '.')
			p++;
	}
	out[o++] = 0;
	out[o++] = (unsigned char)(qtype >> 8);
	out[o++] = (unsigned char)qtype;
	out[o++] = 0;
	out[o++] = 1;
	return o;
}

/* framed - our question between the input's header and its record sections */
static size_t framed(const uint8_t *in, size_t n, const char *name, uint16_t qtype)
{
	if (n < HDR_LEN)
		return 0;
	memcpy(msg, in, HDR_LEN);
	msg[2] |= 0x80; /* QR */
	msg[4] = 0;
	msg[5] = 1; /* QDCOUNT */
	size_t qlen = HDR_LEN + question(name, qtype, msg + HDR_LEN);
	memcpy(msg + qlen, in + HDR_LEN, n - HDR_LEN);
	return qlen + n - HDR_LEN;
}

/* query_round_trip - a name we may ask, asked by libresolv and answered by itself, is "no data" */
static void query_round_trip(const uint8_t *data, size_t size)
{
	char name[300];
	unsigned char q[DNSCHECK_MSG_MAX];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;

	memcpy(name, data, n);
	name[n] = '\0';
	if (!dnscheck_name_valid(name))
		return;
	int qlen = res_mkquery(ns_o_query, name, ns_c_in, ns_t_txt, NULL, 0, NULL, q, sizeof(q));
	CHECK(qlen >= HDR_LEN + 2 + 4 && qlen <= HDR_LEN + 255 + 4);
	q[2] |= 0x80;
	CHECK(dnscheck_parse_reply(q, (size_t)qlen, name, DNSCHECK_TYPE_TXT, &ans));
	CHECK(ans.status == DNSCHECK_NODATA && ans.count == 0);
	/* and to no other question */
	CHECK(!dnscheck_parse_reply(q, (size_t)qlen, name, DNSCHECK_TYPE_MX, &ans));
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
	if (sel & 0x80) {
		len = framed(in, n, name, qtype);
	} else {
		memcpy(msg, in, n);
		len = n;
	}
	/* a copy of exactly len bytes, so that reading past the end is caught */
	unsigned char *exact = malloc(len ? len : 1);
	CHECK(exact != NULL);
	memcpy(exact, msg, len);
	bool ok = dnscheck_parse_reply(exact, len, name, qtype, &ans);
	check_answer(ok, qtype);
	free(exact);

	query_round_trip(in, n);
	return 0;
}
