/* test_dnscheck: reading DNS replies, names, token and MX comparisons (table-driven), resolver failures. */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnscheck.h"
#include "check_main.h"

/* ---- comparisons ---- */

static const struct {
	const char *a, *b;
	bool equal;
} hosts[] = {
	{ "mx1.example.net", "mx1.example.net", true },
	{ "MX1.Example.NET", "mx1.example.net", true },
	{ "mx1.example.net.", "mx1.example.net", true },
	{ "mx1.example.net", "mx1.example.net.", true },
	{ "mx1.example.net.", "MX1.EXAMPLE.NET.", true },
	{ "mx1.example.net", "mx2.example.net", false },
	{ "mx1.example.net", "mx1.example.ne", false },
	{ "mx1.example.net..", "mx1.example.net", false },
	{ "", "", true },
	{ "", ".", true },
	{ "a", "", false },
};

START_TEST(test_host_equal)
{
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		ck_assert_msg(dnscheck_host_equal(hosts[i].a, hosts[i].b) == hosts[i].equal, "%s vs %s",
			      hosts[i].a, hosts[i].b);
}
END_TEST

static const struct {
	const char *host, *list;
	bool in;
} lists[] = {
	{ "mx1.example.net", "mx1.example.net, mx2.example.net", true },
	{ "mx2.example.net.", "mx1.example.net, mx2.example.net", true },
	{ "MX2.EXAMPLE.NET", "mx1.example.net mx2.example.net", true },
	{ "mx2.example.net", "  mx1.example.net ,\tmx2.example.net.  ", true },
	{ "mx3.example.net", "mx1.example.net, mx2.example.net", false },
	{ "example.net", "mx1.example.net", false },
	{ "mx1.example.net", "", false },
	{ "mx1.example.net", " , ", false },
};

START_TEST(test_host_in_list)
{
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		ck_assert_msg(dnscheck_host_in_list(lists[i].host, lists[i].list) == lists[i].in,
			      "%s in \"%s\"", lists[i].host, lists[i].list);
}
END_TEST

#define TOKEN "vmail-verify=0123456789abcdef0123456789abcdef"

static const struct {
	const char *records[4]; /* NULL-terminated */
	int want;               /* index of the match, -1 none */
} tokens[] = {
	{ { TOKEN, NULL }, 0 },
	{ { "v=spf1 -all", TOKEN, NULL }, 1 },
	{ { "v=spf1 -all", "google-site-verification=x", NULL }, -1 },
	{ { "  " TOKEN "\t", NULL }, 0 },
	{ { "\"" TOKEN "\"", NULL }, 0 },
	{ { "vmail-verify=0123456789ABCDEF0123456789ABCDEF", NULL }, -1 },
	{ { "vmail-verify=0123456789abcdef0123456789abcdee", NULL }, -1 },
	{ { TOKEN "x", NULL }, -1 },
	{ { "x" TOKEN, NULL }, -1 },
	{ { "vmail-verify=", NULL }, -1 },
	{ { "", NULL }, -1 },
	{ { NULL }, -1 },
};

START_TEST(test_token_match)
{
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		struct dnscheck_answer ans;
		memset(&ans, 0, sizeof(ans));
		for (size_t k = 0; tokens[i].records[k]; k++)
			snprintf(ans.rec[ans.count++].text, DNSCHECK_TEXT_MAX, "%s", tokens[i].records[k]);
		ans.status = ans.count ? DNSCHECK_FOUND : DNSCHECK_NODATA;
		ck_assert_msg(dnscheck_token_match(&ans, TOKEN) == tokens[i].want, "case %zu", i);
	}
	/* only an answer counts, whatever the records say */
	struct dnscheck_answer t;
	memset(&t, 0, sizeof(t));
	t.status = DNSCHECK_TEMPFAIL;
	t.count = 1;
	snprintf(t.rec[0].text, sizeof(t.rec[0].text), "%s", TOKEN);
	ck_assert_int_eq(dnscheck_token_match(&t, TOKEN), -1);
	t.status = DNSCHECK_FOUND;
	ck_assert_int_eq(dnscheck_token_match(&t, ""), -1);
}
END_TEST

START_TEST(test_proof_name)
{
	char out[64];
	ck_assert(dnscheck_proof_name("acme.com.pl", out, sizeof(out)));
	ck_assert_str_eq(out, "_vmail-verify.acme.com.pl");
	ck_assert(!dnscheck_proof_name("acme.com.pl", out, 20));
}
END_TEST

/* ---- the codec ---- */

/* A reply under construction. */
struct msg {
	unsigned char b[2048];
	size_t len;
};

static void put(struct msg *m, const void *p, size_t n)
{
	ck_assert_uint_le(m->len + n, sizeof(m->b));
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

static void put16(struct msg *m, unsigned v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	put(m, x, 2);
}

/* a name as labels, uncompressed: the reference the parser is checked against */
static void put_name(struct msg *m, const char *name)
{
	const char *p = name;
	while (*p) {
		size_t n = strcspn(p, ".");
		ck_assert_uint_gt(n, 0);
		unsigned char l = (unsigned char)n;
		put(m, &l, 1);
		put(m, p, n);
		p += n;
		if (*p == '.')
			p++;
	}
	put(m, "", 1);
}

static void header(struct msg *m, unsigned id, unsigned flags, unsigned an)
{
	m->len = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, 1);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
}

static void question(struct msg *m, const char *name, unsigned type)
{
	put_name(m, name);
	put16(m, type);
	put16(m, 1);
}

static void rr_head(struct msg *m, const char *owner, unsigned type, unsigned rdlen)
{
	if (owner)
		put_name(m, owner);
	else
		put16(m, 0xc00c); /* pointer to the question name */
	put16(m, type);
	put16(m, 1);
	put16(m, 0);
	put16(m, 300);
	put16(m, rdlen);
}

static void rr_txt(struct msg *m, const char *owner, const char *const *strings)
{
	size_t rdlen = 0;
	for (size_t i = 0; strings[i]; i++)
		rdlen += 1 + strlen(strings[i]);
	rr_head(m, owner, 16, (unsigned)rdlen);
	for (size_t i = 0; strings[i]; i++) {
		unsigned char l = (unsigned char)strlen(strings[i]);
		put(m, &l, 1);
		put(m, strings[i], l);
	}
}

static void rr_mx(struct msg *m, const char *owner, unsigned pref, const char *host)
{
	struct msg tmp = { .len = 0 };
	put_name(&tmp, host);
	rr_head(m, owner, 15, (unsigned)(2 + tmp.len));
	put16(m, pref);
	put(m, tmp.b, tmp.len);
}

static void rr_srv(struct msg *m, const char *owner, unsigned prio, unsigned weight, unsigned port,
		   const char *target)
{
	struct msg tmp = { .len = 0 };
	if (strcmp(target, ".") == 0)
		put(&tmp, "", 1);
	else
		put_name(&tmp, target);
	rr_head(m, owner, 33, (unsigned)(6 + tmp.len));
	put16(m, prio);
	put16(m, weight);
	put16(m, port);
	put(m, tmp.b, tmp.len);
}

static void rr_cname(struct msg *m, const char *owner, const char *target)
{
	struct msg tmp = { .len = 0 };
	put_name(&tmp, target);
	rr_head(m, owner, 5, (unsigned)tmp.len);
	put(m, tmp.b, tmp.len);
}

static void rr_addr(struct msg *m, const char *owner, unsigned type, const void *addr, size_t n)
{
	rr_head(m, owner, type, (unsigned)n);
	put(m, addr, n);
}

#define QNAME "_vmail-verify.acme.com.pl"
#define OK_FLAGS 0x8180 /* QR, RD, RA, NOERROR */

/* names that can be asked, and those that cannot */
static const struct {
	const char *name;
	bool valid;
} names[] = {
	{ "acme.com.pl", true },
	{ "Acme.com.pl.", true },
	{ "_imaps._tcp.acme.pl", true },
	{ "xn--d1acufc.pl", true },
	{ "localhost", true },
	{ "", false },
	{ ".", false },
	{ "a..b", false },
	{ ".a", false },
	{ "a b.pl", false },
	{ "a/b.pl", false },
	{ "a\\.b.pl", false },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.pl", false }, /* label of 64 */
};

START_TEST(test_name_valid)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_msg(dnscheck_name_valid(names[i].name) == names[i].valid, "%s", names[i].name);
	/* 253 characters is the longest name; 255 wire bytes */
	char name[300] = "";
	for (int i = 0; i < 63; i++)
		strcat(name, "abc.");
	strcat(name, "a"); /* 63 * 4 + 1 = 253 */
	ck_assert(dnscheck_name_valid(name));
	strcat(name, "b");
	ck_assert(!dnscheck_name_valid(name));
}
END_TEST

START_TEST(test_parse_txt)
{
	struct msg m;
	struct dnscheck_answer a;
	const char *one[] = { TOKEN, NULL };
	const char *split[] = { "vmail-verify=0123456789abcdef", "0123456789abcdef", NULL };
	const char *spf[] = { "v=spf1 -all", NULL };

	header(&m, 7, OK_FLAGS, 3);
	question(&m, QNAME, 16);
	rr_txt(&m, NULL, spf);
	rr_txt(&m, NULL, split); /* long records arrive as several strings: joined per record */
	rr_txt(&m, "other.acme.com.pl", one); /* not our name: ignored */
	ck_assert(dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));
	ck_assert_int_eq(a.status, DNSCHECK_FOUND);
	ck_assert_uint_eq(a.count, 2);
	ck_assert_str_eq(a.rec[0].text, "v=spf1 -all");
	ck_assert_str_eq(a.rec[1].text, TOKEN);
	ck_assert_int_eq(dnscheck_token_match(&a, TOKEN), 1);
	/* the name is compared without regard to case or a trailing dot */
	ck_assert(dnscheck_parse_reply(m.b, m.len, "_VMAIL-verify.ACME.com.pl.", 16, &a));

	/* NOERROR without records, and NXDOMAIN */
	header(&m, 7, OK_FLAGS, 0);
	question(&m, QNAME, 16);
	ck_assert(dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));
	ck_assert_int_eq(a.status, DNSCHECK_NODATA);
	header(&m, 7, OK_FLAGS | 3, 0);
	question(&m, QNAME, 16);
	ck_assert(dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));
	ck_assert_int_eq(a.status, DNSCHECK_NXDOMAIN);
	ck_assert_int_eq(dnscheck_token_match(&a, TOKEN), -1);

	/* a CNAME in front of the record is followed */
	header(&m, 9, OK_FLAGS, 2);
	question(&m, QNAME, 16);
	rr_cname(&m, NULL, "proof.hosting.example");
	rr_txt(&m, "proof.hosting.example", one);
	ck_assert(dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));
	ck_assert_uint_eq(a.count, 1);
	ck_assert_str_eq(a.rec[0].text, TOKEN);
	ck_assert_str_eq(a.canonical, "proof.hosting.example");

	/* control bytes are printed as '?' */
	const char *ctl[] = { "a\tb\x7f", NULL };
	header(&m, 9, OK_FLAGS, 1);
	question(&m, QNAME, 16);
	rr_txt(&m, NULL, ctl);
	ck_assert(dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));
	ck_assert_str_eq(a.rec[0].text, "a?b?");
}
END_TEST

START_TEST(test_parse_mx)
{
	struct msg m;
	struct dnscheck_answer a;
	header(&m, 0xbeef, OK_FLAGS, 2);
	question(&m, "acme.com.pl", 15);
	rr_mx(&m, NULL, 10, "mx1.example.net");
	rr_mx(&m, NULL, 20, "MX2.example.net");
	ck_assert(dnscheck_parse_reply(m.b, m.len, "acme.com.pl", 15, &a));
	ck_assert_int_eq(a.status, DNSCHECK_FOUND);
	ck_assert_uint_eq(a.count, 2);
	ck_assert_str_eq(a.rec[0].text, "mx1.example.net");
	ck_assert_uint_eq(a.rec[0].pref, 10);
	ck_assert_str_eq(a.rec[1].text, "MX2.example.net");
	ck_assert_uint_eq(a.rec[1].pref, 20);
	ck_assert(dnscheck_host_in_list(a.rec[1].text, "mx1.example.net mx2.example.net"));
}
END_TEST

/* SRV records as RFC 6186 publishes them; "." is "no such service here" */
START_TEST(test_parse_srv)
{
	struct msg m;
	struct dnscheck_answer a;
	header(&m, 1, OK_FLAGS, 2);
	question(&m, "_imaps._tcp.acme.pl", 33);
	rr_srv(&m, NULL, 0, 1, 993, "mail.isp.example");
	rr_srv(&m, NULL, 10, 5, 994, "imap2.isp.example");
	ck_assert(dnscheck_parse_reply(m.b, m.len, "_imaps._tcp.acme.pl", DNSCHECK_TYPE_SRV, &a));
	ck_assert_int_eq(a.status, DNSCHECK_FOUND);
	ck_assert_uint_eq(a.count, 2);
	ck_assert_str_eq(a.rec[0].text, "mail.isp.example");
	ck_assert_uint_eq(a.rec[0].pref, 0);
	ck_assert_uint_eq(a.rec[0].weight, 1);
	ck_assert_uint_eq(a.rec[0].port, 993);
	ck_assert_uint_eq(a.rec[1].pref, 10);
	ck_assert_uint_eq(a.rec[1].weight, 5);
	ck_assert_uint_eq(a.rec[1].port, 994);

	header(&m, 1, OK_FLAGS, 1);
	question(&m, "_pop3._tcp.acme.pl", 33);
	rr_srv(&m, NULL, 0, 0, 0, ".");
	ck_assert(dnscheck_parse_reply(m.b, m.len, "_pop3._tcp.acme.pl", DNSCHECK_TYPE_SRV, &a));
	ck_assert_uint_eq(a.count, 1);
	ck_assert_str_eq(a.rec[0].text, ".");
	ck_assert_uint_eq(a.rec[0].port, 0);

	/* SRV data too short for its fixed fields */
	header(&m, 1, OK_FLAGS, 1);
	question(&m, "_imaps._tcp.acme.pl", 33);
	rr_head(&m, NULL, 33, 5);
	put(&m, "\0\0\0\0\0", 5);
	ck_assert(!dnscheck_parse_reply(m.b, m.len, "_imaps._tcp.acme.pl", DNSCHECK_TYPE_SRV, &a));
	ck_assert_int_eq(a.status, DNSCHECK_TEMPFAIL);
}
END_TEST

/* autoconfig.<domain>: asked as CNAME it is the first link; asked as A the chain is followed */
START_TEST(test_parse_a_cname)
{
	struct msg m;
	struct dnscheck_answer a;
	static const unsigned char v4[4] = { 192, 0, 2, 7 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

	header(&m, 1, OK_FLAGS, 3);
	question(&m, "autoconfig.acme.pl", 1);
	rr_cname(&m, NULL, "web.isp.example");
	rr_cname(&m, "web.isp.example", "front.isp.example");
	rr_addr(&m, "front.isp.example", 1, v4, 4);
	ck_assert(dnscheck_parse_reply(m.b, m.len, "autoconfig.acme.pl", DNSCHECK_TYPE_A, &a));
	ck_assert_int_eq(a.status, DNSCHECK_FOUND);
	ck_assert_uint_eq(a.count, 1);
	ck_assert_str_eq(a.rec[0].text, "192.0.2.7");
	ck_assert_str_eq(a.canonical, "front.isp.example");

	header(&m, 1, OK_FLAGS, 1);
	question(&m, "autoconfig.acme.pl", 5);
	rr_cname(&m, NULL, "Web.ISP.example");
	ck_assert(dnscheck_parse_reply(m.b, m.len, "autoconfig.acme.pl", DNSCHECK_TYPE_CNAME, &a));
	ck_assert_uint_eq(a.count, 1);
	ck_assert_str_eq(a.rec[0].text, "Web.ISP.example");
	ck_assert(dnscheck_host_equal(a.rec[0].text, "web.isp.example."));

	header(&m, 1, OK_FLAGS, 1);
	question(&m, "mail.isp.example", 28);
	rr_addr(&m, NULL, 28, v6, 16);
	ck_assert(dnscheck_parse_reply(m.b, m.len, "mail.isp.example", DNSCHECK_TYPE_AAAA, &a));
	ck_assert_str_eq(a.rec[0].text, "2001:db8::1");

	/* an address of the wrong length is no address */
	header(&m, 1, OK_FLAGS, 1);
	question(&m, "mail.isp.example", 1);
	rr_addr(&m, NULL, 1, v6, 16);
	ck_assert(!dnscheck_parse_reply(m.b, m.len, "mail.isp.example", DNSCHECK_TYPE_A, &a));
	ck_assert_str_eq(a.error, "malformed record");

	/* a CNAME loop ends after a bounded number of hops, with no record */
	header(&m, 1, OK_FLAGS, 2);
	question(&m, "a.acme.pl", 1);
	rr_cname(&m, NULL, "b.acme.pl");
	rr_cname(&m, "b.acme.pl", "a.acme.pl");
	ck_assert(dnscheck_parse_reply(m.b, m.len, "a.acme.pl", DNSCHECK_TYPE_A, &a));
	ck_assert_int_eq(a.status, DNSCHECK_NODATA);
}
END_TEST

/*
 * Names of many short labels (found by fuzz_dnscheck): a name that can be asked, up to 127
 * labels in 255 bytes, is read back, in the question and in an MX host, however many labels.
 */
START_TEST(test_parse_many_labels)
{
	char name[256], host[256];
	struct msg m;
	struct dnscheck_answer a;

	/* "a.a.…" 125 labels + "pl": 254 wire bytes; "b.b.…" 100 labels + "net" */
	name[0] = '\0';
	for (int i = 0; i < 125; i++)
		strcat(name, "a.");
	strcat(name, "pl");
	host[0] = '\0';
	for (int i = 0; i < 100; i++)
		strcat(host, "b.");
	strcat(host, "net");
	ck_assert(dnscheck_name_valid(name));

	header(&m, 5, OK_FLAGS, 1);
	question(&m, name, 15);
	rr_mx(&m, NULL, 10, host);
	ck_assert_msg(dnscheck_parse_reply(m.b, m.len, name, 15, &a), "%s", a.error);
	ck_assert_int_eq(a.status, DNSCHECK_FOUND);
	ck_assert_uint_eq(a.count, 1);
	ck_assert_str_eq(a.rec[0].text, host);
}
END_TEST

/* Replies that are no answer: each is TEMPFAIL, never "no record". */
START_TEST(test_parse_failures)
{
	struct msg m;
	struct dnscheck_answer a;
	static const struct {
		unsigned flags;
		const char *why;
	} codes[] = {
		{ OK_FLAGS | 2, "SERVFAIL" },
		{ OK_FLAGS | 5, "REFUSED" },
		{ OK_FLAGS | 4, "error code 4" },
		{ OK_FLAGS | 0x0200, "truncated" },
	};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		header(&m, 1, codes[i].flags, 0);
		question(&m, QNAME, 16);
		ck_assert(!dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));
		ck_assert_int_eq(a.status, DNSCHECK_TEMPFAIL);
		ck_assert_msg(strstr(a.error, codes[i].why), "%s: %s", codes[i].why, a.error);
	}
	/* not ours: other name, other type, a query rather than a reply */
	header(&m, 1, OK_FLAGS, 0);
	question(&m, QNAME, 16);
	ck_assert(!dnscheck_parse_reply(m.b, m.len, "acme.com.pl", 16, &a));
	ck_assert(!dnscheck_parse_reply(m.b, m.len, QNAME, 15, &a));
	ck_assert_int_eq(a.status, DNSCHECK_TEMPFAIL);
	header(&m, 1, 0x0100, 0);
	question(&m, QNAME, 16);
	ck_assert(!dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));

	/* malformed: every truncation of a good reply, and a compression loop */
	const char *one[] = { TOKEN, NULL };
	header(&m, 3, OK_FLAGS, 1);
	question(&m, QNAME, 16);
	rr_txt(&m, NULL, one);
	for (size_t cut = 0; cut < m.len; cut++) {
		ck_assert_msg(!dnscheck_parse_reply(m.b, cut, QNAME, 16, &a), "cut %zu", cut);
		ck_assert_int_eq(a.status, DNSCHECK_TEMPFAIL);
		ck_assert_int_eq(a.count, 0);
	}
	header(&m, 3, OK_FLAGS, 1);
	question(&m, QNAME, 16);
	size_t loop = m.len;
	put16(&m, 0xc000 | (unsigned)loop); /* an owner name pointing at itself */
	put16(&m, 16);
	put16(&m, 1);
	put16(&m, 0);
	put16(&m, 0);
	put16(&m, 0);
	ck_assert(!dnscheck_parse_reply(m.b, m.len, QNAME, 16, &a));
	ck_assert_str_eq(a.error, "malformed reply");
}
END_TEST

/* ---- the resolver against servers that do not answer ---- */

static int udp_socket(unsigned short *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

START_TEST(test_resolver_down)
{
	unsigned short closed, silent;
	close(udp_socket(&closed)); /* nobody listens there any more: ICMP port unreachable */
	int quiet = udp_socket(&silent); /* receives and never answers: the timeout */
	char list[128], err[256];
	snprintf(list, sizeof(list), "127.0.0.1:%u, 127.0.0.1:%u", closed, silent);
	struct dnscheck_resolver *r = dnscheck_resolver_new(NULL, list, 200, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	struct dnscheck_answer a;
	dnscheck_lookup(r, QNAME, DNSCHECK_TYPE_TXT, &a);
	ck_assert_int_eq(a.status, DNSCHECK_TEMPFAIL);
	ck_assert_msg(strstr(a.error, "connection refused"), "%s", a.error);
	ck_assert_msg(strstr(a.error, "no reply within 200ms"), "%s", a.error);
	/* a name that cannot be asked is never sent */
	dnscheck_lookup(r, "a b.pl", DNSCHECK_TYPE_TXT, &a);
	ck_assert_int_eq(a.status, DNSCHECK_TEMPFAIL);
	ck_assert_msg(strstr(a.error, "not a name"), "%s", a.error);
	dnscheck_resolver_free(r);
	close(quiet);

	ck_assert(!dnscheck_resolver_new(NULL, "not-an-address", 200, err, sizeof(err)));
	ck_assert_msg(strstr(err, "not-an-address"), "%s", err);
	ck_assert(!dnscheck_resolver_new("/nonexistent/resolv.conf", "", 200, err, sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent/resolv.conf"), "%s", err);

	/* resolv.conf: without a nameserver line c-ares would ask 127.0.0.1; we refuse */
	char path[] = "/tmp/test_dnscheck.XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "search example.net\n", 19), 19);
	ck_assert(!dnscheck_resolver_new(path, NULL, 200, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no \"nameserver\" line"), "%s", err);
	ck_assert_int_eq(write(fd, "nameserver 127.0.0.1\n", 21), 21);
	close(fd);
	r = dnscheck_resolver_new(path, NULL, 200, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	dnscheck_resolver_free(r);
	unlink(path);
}
END_TEST

static Suite *dnscheck_suite(void)
{
	Suite *s = suite_create("dnscheck");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_host_equal);
	tcase_add_test(tc, test_host_in_list);
	tcase_add_test(tc, test_token_match);
	tcase_add_test(tc, test_proof_name);
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_parse_txt);
	tcase_add_test(tc, test_parse_mx);
	tcase_add_test(tc, test_parse_srv);
	tcase_add_test(tc, test_parse_a_cname);
	tcase_add_test(tc, test_parse_many_labels);
	tcase_add_test(tc, test_parse_failures);
	tcase_add_test(tc, test_resolver_down);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dnscheck_suite)
