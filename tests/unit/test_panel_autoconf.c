/* test_panel_autoconf: the autodiscover request reader (table-driven, limits, truncations) and the
 * Thunderbird, Outlook and Apple answers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "panel_autoconf.h"
#include "check_main.h"

/* ---- the request ---- */

#define DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
#define NS "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
#define SCHEMA "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/" \
	       "responseschema/2006a</AcceptableResponseSchema>"
/* REQ - Outlook's request, byte for byte, around an EMailAddress text */
#define REQ(a) DECL "<Autodiscover xmlns=\"" NS "\"><Request><EMailAddress>" a "</EMailAddress>" SCHEMA \
		    "</Request></Autodiscover>"
/* BARE - the same without the declaration and the schema; the pieces for the others */
#define AD(x) "<Autodiscover>" x "</Autodiscover>"
#define RQ(x) AD("<Request>" x "</Request>")
#define EM(a) "<EMailAddress>" a "</EMailAddress>"
#define BARE(a) RQ(EM(a))
#define BOM "\xef\xbb\xbf"

/* LIT - a literal with its length, for the ones with NUL bytes inside */
#define LIT(s) s, sizeof(s) - 1
/* the expected outcome: OK with the address, or a refusal (no address) */
#define OK(a) AUTOCONF_REQ_OK, a
#define MALFORMED AUTOCONF_REQ_MALFORMED, NULL
#define NO_ADDR AUTOCONF_REQ_NO_ADDRESS, NULL
#define DTD AUTOCONF_REQ_DTD, NULL
#define PI AUTOCONF_REQ_PI, NULL

static const struct {
	const char *in;
	size_t len;
	enum autoconf_req want;
	const char *addr; /* when OK */
} reqs[] = {
	/* what Outlook sends, and the ways it may be dressed */
	{ LIT(REQ("user@example.com")), OK("user@example.com") },
	{ LIT(BARE("jan@x.pl")), OK("jan@x.pl") },
	{ LIT(DECL "\r\n<Autodiscover xmlns=\"" NS "\">\r\n  <Request>\r\n    " EM("jan@x.pl") "\r\n"
	      "    " SCHEMA "\r\n  </Request>\r\n</Autodiscover>\r\n"), OK("jan@x.pl") },
	{ LIT("<a:Autodiscover xmlns:a=\"" NS "\"><a:Request><a:EMailAddress>jan@x.pl</a:EMailAddress>"
	      "</a:Request></a:Autodiscover>"), OK("jan@x.pl") },
	{ LIT("<a:Autodiscover xmlns:a='" NS "'><b:Request xmlns:b='" NS "'>" EM("jan@x.pl")
	      "</b:Request></a:Autodiscover>"), OK("jan@x.pl") },
	{ LIT(BARE("\n\t  jan@x.pl \r\n ")), OK("jan@x.pl") },
	{ LIT(BARE("a&amp;b@x.pl")), OK("a&b@x.pl") },
	{ LIT(BARE("&lt;jan@x.pl&gt;")), OK("<jan@x.pl>") },
	{ LIT(BARE("&quot;j&apos;an&quot;@x.pl")), OK("\"j'an\"@x.pl") },
	{ LIT(BARE("&#106;an@x.pl")), OK("jan@x.pl") },
	{ LIT(BARE("&#x6A;an&#x40;x.pl")), OK("jan@x.pl") },
	{ LIT(BARE("&#0000106;an@x.pl")), OK("jan@x.pl") },
	{ LIT(BARE("&#32;jan@x.pl&#x20;")), OK("jan@x.pl") },
	{ LIT(BARE("j\xc3\xb3zef@x.pl")), OK("j\xc3\xb3zef@x.pl") },
	{ LIT(BARE("jan>@x.pl")), OK("jan>@x.pl") },
	{ LIT(BARE("jan@x.pl") "\n\n"), OK("jan@x.pl") },
	{ LIT(BOM DECL BARE("jan@x.pl")), OK("jan@x.pl") },
	{ LIT(BOM BARE("jan@x.pl")), OK("jan@x.pl") },
	{ LIT("<Autodiscover ><Request\n><EMailAddress\t>jan@x.pl</EMailAddress >"
	      "</Request\r\n></Autodiscover>"),
	  OK("jan@x.pl") },
	{ LIT("<Autodiscover a = \"1\" b='&amp;&#x41;\"'><Request>"
	      "<EMailAddress c=\"'\">jan@x.pl</EMailAddress>"
	      "</Request></Autodiscover>"), OK("jan@x.pl") },
	{ LIT(AD("<Other>" EM("no@x.pl") "</Other><Request>" EM("jan@x.pl")
		 "<Deeper>" EM("no@x.pl") "</Deeper></Request>")), OK("jan@x.pl") },
	{ LIT("<Autodiscover><Request><Legacy/><EMailAddress>jan@x.pl</EMailAddress></Request><Request/>"
	      "</Autodiscover>"), OK("jan@x.pl") },
	/* comments are skipped wherever they stand */
	{ LIT("<!-- before --><Autodiscover><!----><Request><EMailAddress> jan<!-- x -->@x.pl </EMailAddress>"
	      "</Request></Autodiscover><!-- after -->"), OK("jan@x.pl") },
	{ LIT("<!---->" BARE("jan@x.pl") "<!--\n-\n-->"), OK("jan@x.pl") },
	{ LIT(BARE("jan@x.pl") "<!-- unclosed"), MALFORMED },
	{ LIT(BARE("jan@x.pl") "<!-- a -- b -->"), MALFORMED },
	{ LIT(BARE("jan@x.pl") "<!-- a --->"), MALFORMED },
	{ LIT(BARE("jan@x.pl") "<!--->"), MALFORMED },
	/* CDATA is refused, and every other <! */
	{ LIT(BARE("<![CDATA[jan@x.pl]]>")), MALFORMED },
	{ LIT(BARE("jan@x.pl<!ELEMENT x ANY>")), MALFORMED },
	{ LIT("<!x>" BARE("jan@x.pl")), MALFORMED },
	/* references: the five, and ASCII character references, nothing else */
	{ LIT(BARE("&foo;@x.pl")), MALFORMED },
	{ LIT(BARE("&AMP;@x.pl")), MALFORMED },
	{ LIT(BARE("a&amp b@x.pl")), MALFORMED },
	{ LIT(BARE("a&b@x.pl")), MALFORMED },
	{ LIT(BARE("jan@x.pl&")), MALFORMED },
	{ LIT(BARE("&;jan@x.pl")), MALFORMED },
	{ LIT(BARE("&#;jan@x.pl")), MALFORMED },
	{ LIT(BARE("&#x;jan@x.pl")), MALFORMED },
	{ LIT(BARE("&#X6A;an@x.pl")), MALFORMED },
	{ LIT(BARE("&#0;jan@x.pl")), MALFORMED },
	{ LIT(BARE("&#1;jan@x.pl")), MALFORMED },
	{ LIT(BARE("&#127;jan@x.pl")), MALFORMED },
	{ LIT(BARE("j&#243;zef@x.pl")), MALFORMED },
	{ LIT(BARE("&#x110000;jan@x.pl")), MALFORMED },
	{ LIT(BARE("&#99999999999999999999;jan@x.pl")), MALFORMED },
	{ LIT(BARE("&#00000000000106;an@x.pl")), MALFORMED },
	{ LIT(BARE("&#1a;jan@x.pl")), MALFORMED },
	{ LIT("&#32;" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<Autodiscover a=\"&foo;\"><Request>" EM("jan@x.pl") "</Request></Autodiscover>"), MALFORMED },
	/* DTDs, wherever they hide */
	{ LIT("<!DOCTYPE Autodiscover>" BARE("jan@x.pl")), DTD },
	{ LIT(DECL "<!DOCTYPE Autodiscover [<!ENTITY e \"jan@x.pl\">]>" BARE("&e;")), DTD },
	{ LIT(DECL "<!DOCTYPE Autodiscover SYSTEM \"http://attacker/x.dtd\">" BARE("jan@x.pl")), DTD },
	{ LIT("<!doctype Autodiscover>" BARE("jan@x.pl")), DTD },
	{ LIT(BARE("jan<!ENTITY e \"x\">@x.pl")), DTD },
	{ LIT(BARE("jan@x.pl") "<!-- <!DOCTYPE x> -->"), DTD },
	{ LIT("<!DOCTYPE"), DTD },
	/* processing instructions: the declaration at the very start only */
	{ LIT(BARE("jan<?php echo 1; ?>@x.pl")), PI },
	{ LIT("<?php ?>" BARE("jan@x.pl")), PI },
	{ LIT("<?xml-stylesheet href=\"x\"?>" BARE("jan@x.pl")), PI },
	{ LIT(" " DECL BARE("jan@x.pl")), PI },
	{ LIT("\n" DECL BARE("jan@x.pl")), PI },
	{ LIT(DECL DECL BARE("jan@x.pl")), PI },
	{ LIT(BARE("jan@x.pl") DECL), PI },
	{ LIT(BOM BOM DECL BARE("jan@x.pl")), PI },
	{ LIT("<?xml?>" BARE("jan@x.pl")), PI },
	{ LIT("<?XML version=\"1.0\"?>" BARE("jan@x.pl")), PI },
	{ LIT("<?xml version=\"1.0\"?>" BARE("jan@x.pl")), OK("jan@x.pl") },
	{ LIT("<?xml  version='1.1' encoding='UTF-8'\tstandalone='yes' ?>" BARE("jan@x.pl")),
	  OK("jan@x.pl") },
	{ LIT("<?xml version=\"1.0\" standalone=\"no\"?>" BARE("jan@x.pl")), OK("jan@x.pl") },
	{ LIT("<?xml ?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml encoding=\"utf-8\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml encoding=\"utf-8\" version=\"1.0\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0\" version=\"1.0\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0\"encoding=\"utf-8\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0\" encoding=\"utf-16\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"2.0\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0\" standalone=\"maybe\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0\" foo=\"x\"?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0'?>" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0\"" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml version=\"1.0\">" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<?xml "), MALFORMED },
	/* the path: Autodiscover/Request/EMailAddress, local names, case as Outlook sends them */
	{ LIT("<Autodiscovery><Request>" EM("jan@x.pl") "</Request></Autodiscovery>"), MALFORMED },
	{ LIT("<autodiscover><Request>" EM("jan@x.pl") "</Request></autodiscover>"), MALFORMED },
	{ LIT("<Request><EMailAddress>jan@x.pl</EMailAddress></Request>"), MALFORMED },
	{ LIT("<Autodiscover><EMailAddress>jan@x.pl</EMailAddress></Autodiscover>"), NO_ADDR },
	{ LIT(RQ("<Emailaddress>jan@x.pl</Emailaddress>")), NO_ADDR },
	{ LIT(RQ("<X>" EM("jan@x.pl") "</X>")), NO_ADDR },
	{ LIT("<Autodiscover><Request>" SCHEMA "</Request></Autodiscover>"), NO_ADDR },
	{ LIT("<Autodiscover/>"), NO_ADDR },
	{ LIT(BARE("")), NO_ADDR },
	{ LIT(BARE(" \r\n\t ")), NO_ADDR },
	{ LIT(BARE("&#32;")), NO_ADDR },
	{ LIT(BARE("<!-- -->")), NO_ADDR },
	{ LIT("<Autodiscover><Request><EMailAddress/></Request></Autodiscover>"), NO_ADDR },
	{ LIT("<Autodiscover><Request><EMailAddress>a@x.pl</EMailAddress><EMailAddress>b@x.pl</EMailAddress>"
	      "</Request></Autodiscover>"), MALFORMED },
	{ LIT("<Autodiscover><Request><EMailAddress>a@x.pl</EMailAddress></Request><Request><EMailAddress>"
	      "b@x.pl</EMailAddress></Request></Autodiscover>"), MALFORMED },
	{ LIT(BARE("jan<b>x</b>@x.pl")), MALFORMED },
	{ LIT(BARE("jan<br/>@x.pl")), MALFORMED },
	/* structure */
	{ LIT(""), MALFORMED },
	{ LIT(DECL), MALFORMED },
	{ LIT("   "), MALFORMED },
	{ LIT("jan@x.pl"), MALFORMED },
	{ LIT("x" BARE("jan@x.pl")), MALFORMED },
	{ LIT(BARE("jan@x.pl") "x"), MALFORMED },
	{ LIT(BARE("jan@x.pl") BARE("jan@x.pl")), MALFORMED },
	{ LIT(BARE("jan@x.pl") "<Autodiscover/>"), MALFORMED },
	{ LIT(BARE("jan@x.pl") "</Autodiscover>"), MALFORMED },
	{ LIT(AD("<Request>" EM("jan@x.pl") "</Requests>")), MALFORMED },
	{ LIT(AD("<Request><EMailAddress>jan@x.pl</Request></EMailAddress>")), MALFORMED },
	{ LIT("<Autodiscover><Request><EMailAddress>jan@x.pl</EMailAddress></Request>"), MALFORMED },
	{ LIT("<a:Autodiscover><a:Request><a:EMailAddress>jan@x.pl</b:EMailAddress>"
	      "</a:Request></a:Autodiscover>"), MALFORMED },
	{ LIT("<a:Autodiscover><a:Request><a:EMailAddress>jan@x.pl</EMailAddress>"
	      "</a:Request></a:Autodiscover>"), MALFORMED },
	{ LIT("<a:b:Autodiscover><Request>" EM("jan@x.pl") "</Request></a:b:Autodiscover>"), MALFORMED },
	{ LIT("<:Autodiscover><Request>" EM("jan@x.pl") "</Request></:Autodiscover>"), MALFORMED },
	{ LIT("<a:><Request><EMailAddress>jan@x.pl</EMailAddress></Request></a:>"), MALFORMED },
	{ LIT("< Autodiscover><Request>" EM("jan@x.pl") "</Request></Autodiscover>"), MALFORMED },
	{ LIT(RQ("<EMailAddress>jan@x.pl</ EMailAddress>")), MALFORMED },
	{ LIT("<1Autodiscover/>"), MALFORMED },
	{ LIT("<Autodiscover / >"), MALFORMED },
	{ LIT("<Autodiscover xmlns=" NS "/>"), MALFORMED },
	{ LIT("<Autodiscover xmlns/>"), MALFORMED },
	{ LIT("<Autodiscover a=\"1\"b=\"2\"/>"), MALFORMED },
	{ LIT("<Autodiscover a=\"<\"/>"), MALFORMED },
	{ LIT("<Autodiscover a=\"1/>"), MALFORMED },
	{ LIT("<Autodiscover a='1\"/>"), MALFORMED },
	{ LIT("<Autodiscover"), MALFORMED },
	{ LIT("<"), MALFORMED },
	{ LIT("</"), MALFORMED },
	{ LIT("</Autodiscover>"), MALFORMED },
	/* bytes XML does not allow */
	{ LIT(BARE("jan\0@x.pl")), MALFORMED },
	{ LIT(BARE("jan@x.pl") "\0"), MALFORMED },
	{ LIT("\0" BARE("jan@x.pl")), MALFORMED },
	{ LIT("<Autodiscover a=\"\0\"><Request>" EM("jan@x.pl") "</Request></Autodiscover>"), MALFORMED },
	{ LIT(BARE("jan\x01@x.pl")), MALFORMED },
	{ LIT(BARE("jan\x1b[31m@x.pl")), MALFORMED },
	{ LIT(BARE("j\xf3zef@x.pl")), MALFORMED },
	{ LIT(BARE("jan@x.pl\xc3")), MALFORMED },
	{ LIT("\xff\xfe<\0A\0"), MALFORMED },
};

/* parse - autoconf_parse_request on an exact-size copy, so a read past len is caught by ASan */
static enum autoconf_req parse(const char *in, size_t len, char *addr, size_t addrlen)
{
	char *copy = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, in, len);
	enum autoconf_req st = autoconf_parse_request(copy, len, addr, addrlen);
	free(copy);
	return st;
}

START_TEST(request)
{
	char addr[AUTOCONF_MAX_ADDRESS + 1];
	memset(addr, 'Z', sizeof(addr));
	enum autoconf_req st = parse(reqs[_i].in, reqs[_i].len, addr, sizeof(addr));
	ck_assert_msg(st == reqs[_i].want, "case %d: got \"%s\", want \"%s\"", _i, autoconf_req_reason(st),
		      autoconf_req_reason(reqs[_i].want));
	if (st == AUTOCONF_REQ_OK)
		ck_assert_str_eq(addr, reqs[_i].addr);
	else
		ck_assert_str_eq(addr, "");
}
END_TEST

START_TEST(reasons)
{
	for (int r = AUTOCONF_REQ_OK; r <= AUTOCONF_REQ_NO_ADDRESS; r++) {
		const char *t = autoconf_req_reason((enum autoconf_req)r);
		ck_assert_ptr_nonnull(t);
		ck_assert_uint_gt(strlen(t), 1);
	}
	ck_assert_str_ne(autoconf_req_reason(AUTOCONF_REQ_DTD), autoconf_req_reason(AUTOCONF_REQ_PI));
}
END_TEST

/* lengths: the address limit, the caller's buffer, the body limit */
START_TEST(limits)
{
	static char body[AUTOCONF_MAX_BODY + 64];
	char addr[AUTOCONF_MAX_ADDRESS + 1], local[AUTOCONF_MAX_ADDRESS + 2];

	/* 254 bytes fit, 255 do not; trailing blanks past 254 are still trimmed */
	memset(local, 'a', sizeof(local));
	memcpy(local + AUTOCONF_MAX_ADDRESS - 5, "@x.pl", 5);
	local[AUTOCONF_MAX_ADDRESS] = '\0';
	int n = snprintf(body, sizeof(body), BARE("%s"), local);
	ck_assert_int_eq(parse(body, (size_t)n, addr, sizeof(addr)), AUTOCONF_REQ_OK);
	ck_assert_str_eq(addr, local);
	n = snprintf(body, sizeof(body), BARE("  %s  \n   \t  \r\n  "), local);
	ck_assert_int_eq(parse(body, (size_t)n, addr, sizeof(addr)), AUTOCONF_REQ_OK);
	ck_assert_str_eq(addr, local);
	n = snprintf(body, sizeof(body), BARE("%s   x"), local);
	ck_assert_int_eq(parse(body, (size_t)n, addr, sizeof(addr)), AUTOCONF_REQ_NO_ADDRESS);
	n = snprintf(body, sizeof(body), BARE("b%s"), local);
	ck_assert_int_eq(parse(body, (size_t)n, addr, sizeof(addr)), AUTOCONF_REQ_NO_ADDRESS);
	ck_assert_str_eq(addr, "");

	/* the caller's buffer: "jan@x.pl" needs 9 bytes */
	n = snprintf(body, sizeof(body), BARE("jan@x.pl"));
	ck_assert_int_eq(parse(body, (size_t)n, addr, 9), AUTOCONF_REQ_OK);
	ck_assert_str_eq(addr, "jan@x.pl");
	ck_assert_int_eq(parse(body, (size_t)n, addr, 8), AUTOCONF_REQ_NO_ADDRESS);
	ck_assert_int_eq(parse(body, (size_t)n, addr, 0), AUTOCONF_REQ_NO_ADDRESS);

	/* a well-formed request of exactly AUTOCONF_MAX_BODY bytes (padded with blanks inside the
	 * root) is read; one byte more is refused before anything is read */
	n = snprintf(body, sizeof(body), "<Autodiscover><Request>" EM("jan@x.pl") "</Request>");
	memset(body + n, '\n', sizeof(body) - (size_t)n);
	const char close[] = "</Autodiscover>";
	memcpy(body + AUTOCONF_MAX_BODY - strlen(close), close, strlen(close));
	ck_assert_int_eq(parse(body, AUTOCONF_MAX_BODY, addr, sizeof(addr)), AUTOCONF_REQ_OK);
	ck_assert_str_eq(addr, "jan@x.pl");
	memcpy(body + AUTOCONF_MAX_BODY + 1 - strlen(close), close, strlen(close));
	ck_assert_int_eq(parse(body, AUTOCONF_MAX_BODY + 1, addr, sizeof(addr)), AUTOCONF_REQ_TOO_LARGE);
	ck_assert_int_eq(autoconf_parse_request(body, (size_t)-1, addr, sizeof(addr)),
			 AUTOCONF_REQ_TOO_LARGE);

	/* every byte an entity: the decoded text is shorter than the body */
	size_t o = (size_t)snprintf(body, sizeof(body), "<Autodiscover><Request><EMailAddress>");
	for (int k = 0; k < 200; k++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "&#x61;");
	o += (size_t)snprintf(body + o, sizeof(body) - o, "</EMailAddress></Request></Autodiscover>");
	ck_assert_int_eq(parse(body, o, addr, sizeof(addr)), AUTOCONF_REQ_OK);
	ck_assert_uint_eq(strlen(addr), 200);
}
END_TEST

/* a thousand nested elements: refused at the depth bound, without reading them all as elements */
START_TEST(depth_bomb)
{
	static char body[AUTOCONF_MAX_BODY];
	char addr[AUTOCONF_MAX_ADDRESS + 1];
	size_t o = (size_t)snprintf(body, sizeof(body), "<Autodiscover><Request>");
	for (int k = 0; k < 1000 && o + 3 <= sizeof(body); k++) {
		memcpy(body + o, "<x>", 3);
		o += 3;
	}
	ck_assert_int_eq(parse(body, o, addr, sizeof(addr)), AUTOCONF_REQ_MALFORMED);

	/* 32 deep is allowed, 33 is not */
	for (int depth = 31; depth <= 33; depth++) {
		o = (size_t)snprintf(body, sizeof(body), "<Autodiscover><Request>" EM("j@x.pl"));
		for (int k = 2; k < depth; k++)
			o += (size_t)snprintf(body + o, sizeof(body) - o, "<x>");
		for (int k = 2; k < depth; k++)
			o += (size_t)snprintf(body + o, sizeof(body) - o, "</x>");
		o += (size_t)snprintf(body + o, sizeof(body) - o, "</Request></Autodiscover>");
		ck_assert_int_eq(parse(body, o, addr, sizeof(addr)),
				 depth <= 32 ? AUTOCONF_REQ_OK : AUTOCONF_REQ_MALFORMED);
	}
}
END_TEST

/* every prefix of a good request is refused (its root is never closed), and every byte of it
 * replaced by a troublesome one still ends in an answer (ASan watches the reads) */
START_TEST(truncations)
{
	static const char good[] = REQ(" jan@x.pl ");
	const size_t len = sizeof(good) - 1;
	char addr[AUTOCONF_MAX_ADDRESS + 1];
	ck_assert_int_eq(parse(good, len, addr, sizeof(addr)), AUTOCONF_REQ_OK);
	ck_assert_str_eq(addr, "jan@x.pl");
	for (size_t k = 0; k < len; k++) {
		enum autoconf_req st = parse(good, k, addr, sizeof(addr));
		ck_assert_msg(st != AUTOCONF_REQ_OK, "prefix of %zu bytes read as \"%s\"", k, addr);
		ck_assert_str_eq(addr, "");
	}

	static const char nasty[] = { '\0', '<', '>', '&', '/', '"', '\'', '?', '!', ':', ' ', ';', '#',
				      '\xc3' };
	char copy[sizeof(good)];
	for (size_t k = 0; k < len; k++)
		for (size_t c = 0; c < sizeof(nasty); c++) {
			memcpy(copy, good, len);
			copy[k] = nasty[c];
			enum autoconf_req st = parse(copy, len, addr, sizeof(addr));
			if (st == AUTOCONF_REQ_OK)
				ck_assert(addr[0] && strlen(addr) <= AUTOCONF_MAX_ADDRESS);
		}
}
END_TEST

/* ---- the answers ---- */

static const struct autoconf_setup setup = {
	.username = "jan@x.pl",
	.domain = "x.pl",
	.service_name = "A&B <x>",
	.n = 6,
	.srv = {
		{ "imaps", "imap", "imap.x.pl", 993, "ssl" },
		{ "imap", "imap", "imap.x.pl", 143, "starttls" },
		{ "pop3s", "pop3", "pop.x.pl", 995, "ssl" },
		{ "pop3", "pop3", "pop.x.pl", 110, "starttls" },
		{ "submissions", "smtp", "smtp.x.pl", 465, "ssl" },
		{ "submission", "smtp", "smtp.x.pl", 587, "starttls" },
	},
};

/* take_text - the buffer's contents as a string (freed by the caller) */
static char *take_text(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* in_order - each of the needles (NULL-terminated) is found after the one before */
static void in_order(const char *hay, const char *const *needles)
{
	const char *p = hay;
	for (; *needles; needles++) {
		const char *q = strstr(p, *needles);
		ck_assert_msg(q, "\"%s\" missing or out of order", *needles);
		p = q + strlen(*needles);
	}
}

static void has(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle), "\"%s\" missing", needle);
}

START_TEST(thunderbird)
{
	struct evbuffer *b = evbuffer_new();
	autoconf_write_thunderbird(b, &setup);
	char *t = take_text(b);
	ck_assert(strncmp(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0);
	has(t, "<clientConfig version=\"1.1\">");
	has(t, "<emailProvider id=\"x.pl\">");
	has(t, "<domain>x.pl</domain>");
	has(t, "<displayName>A&amp;B &lt;x&gt;</displayName>");
	has(t, "<displayShortName>A&amp;B &lt;x&gt;</displayShortName>");
	ck_assert_ptr_null(strstr(t, "A&B"));
	has(t, "<authentication>password-cleartext</authentication>");
	ck_assert_uint_eq(count(t, "<username>jan@x.pl</username>"), 6);
	ck_assert_uint_eq(count(t, "<incomingServer type=\"imap\">"), 2);
	ck_assert_uint_eq(count(t, "<incomingServer type=\"pop3\">"), 2);
	ck_assert_uint_eq(count(t, "<outgoingServer type=\"smtp\">"), 2);
	ck_assert_uint_eq(count(t, "</incomingServer>"), 4);
	ck_assert_uint_eq(count(t, "</outgoingServer>"), 2);
	static const char *const order[] = {
		"<incomingServer type=\"imap\">", "<hostname>imap.x.pl</hostname>", "<port>993</port>",
		"<socketType>SSL</socketType>", "<incomingServer type=\"imap\">", "<port>143</port>",
		"<socketType>STARTTLS</socketType>", "<incomingServer type=\"pop3\">",
		"<hostname>pop.x.pl</hostname>", "<port>995</port>", "<port>110</port>",
		"<outgoingServer type=\"smtp\">", "<hostname>smtp.x.pl</hostname>", "<port>465</port>",
		"<socketType>SSL</socketType>", "<port>587</port>",
		"<socketType>STARTTLS</socketType>", "</emailProvider>", "</clientConfig>", NULL,
	};
	in_order(t, order);
	free(t);
}
END_TEST

START_TEST(autodiscover)
{
	struct evbuffer *b = evbuffer_new();
	autoconf_write_autodiscover(b, &setup);
	char *t = take_text(b);
	static const char *const order[] = {
		"<?xml version=\"1.0\" encoding=\"utf-8\"?>",
		"<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/"
		"responseschema/2006\">",
		"<Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/"
		"responseschema/2006a\">",
		"<User>", "<DisplayName>A&amp;B &lt;x&gt;</DisplayName>", "</User>", "<Account>",
		"<AccountType>email</AccountType>", "<Action>settings</Action>",
		"<Protocol>", "<Type>IMAP</Type>", "<Server>imap.x.pl</Server>", "<Port>993</Port>",
		"<LoginName>jan@x.pl</LoginName>", "<DomainRequired>off</DomainRequired>", "<SPA>off</SPA>",
		"<SSL>on</SSL>", "<Encryption>SSL</Encryption>", "<AuthRequired>on</AuthRequired>",
		"</Protocol>",
		"<Type>IMAP</Type>", "<Port>143</Port>", "<SSL>on</SSL>", "<Encryption>TLS</Encryption>",
		"<Type>POP3</Type>", "<Server>pop.x.pl</Server>", "<Port>995</Port>", "<Type>POP3</Type>",
		"<Port>110</Port>", "<Type>SMTP</Type>", "<Server>smtp.x.pl</Server>", "<Port>465</Port>",
		"<Encryption>SSL</Encryption>", "<AuthRequired>on</AuthRequired>",
		"<UsePOPAuth>off</UsePOPAuth>",
		"<SMTPLast>off</SMTPLast>", "</Protocol>", "<Type>SMTP</Type>", "<Port>587</Port>",
		"<Encryption>TLS</Encryption>", "</Account>", "</Response>", "</Autodiscover>", NULL,
	};
	in_order(t, order);
	ck_assert_uint_eq(count(t, "<Protocol>"), 6);
	ck_assert_uint_eq(count(t, "</Protocol>"), 6);
	ck_assert_uint_eq(count(t, "<LoginName>jan@x.pl</LoginName>"), 6);
	ck_assert_uint_eq(count(t, "<UsePOPAuth>off</UsePOPAuth>"), 2);
	ck_assert_uint_eq(count(t, "<SMTPLast>off</SMTPLast>"), 2);
	ck_assert_ptr_null(strstr(t, "A&B"));
	free(t);
}
END_TEST

/* rows this module does not know are left out; text from the database is escaped everywhere */
START_TEST(odd_rows)
{
	struct autoconf_setup s = {
		.username = "a\"b'c@x.pl",
		.domain = "x.pl",
		.service_name = NULL,
		.n = 3,
		.srv = {
			{ "ftp", "ftp", "ftp.x.pl", 21, "ssl" },
			{ "imap", "imap", "plain.x.pl", 143, "none" },
			{ "imaps", "imap", "i<m>&ap.x.pl", 993, "ssl" },
		},
	};
	for (int which = 0; which < 2; which++) {
		struct evbuffer *b = evbuffer_new();
		if (which)
			autoconf_write_autodiscover(b, &s);
		else
			autoconf_write_thunderbird(b, &s);
		char *t = take_text(b);
		ck_assert_ptr_null(strstr(t, "ftp"));
		ck_assert_ptr_null(strstr(t, "plain.x.pl"));
		has(t, "i&lt;m&gt;&amp;ap.x.pl");
		has(t, "a&quot;b&#39;c@x.pl");
		ck_assert_ptr_null(strstr(t, "a\"b"));
		free(t);
	}
}
END_TEST

static char *apple(const struct autoconf_setup *s, const char *email, const char *login)
{
	struct evbuffer *b = evbuffer_new();
	ck_assert(autoconf_write_apple(b, s, email, login));
	return take_text(b);
}

/* uuid_after - the PayloadUUID string after the n-th (0-based) PayloadUUID key */
static void uuid_after(const char *t, int nth, char out[37])
{
	const char *p = t;
	for (int k = 0; k <= nth; k++) {
		p = strstr(p, "<key>PayloadUUID</key>");
		ck_assert_ptr_nonnull(p);
		p += 1;
	}
	p = strstr(p, "<string>");
	ck_assert_ptr_nonnull(p);
	p += strlen("<string>");
	ck_assert_msg(strlen(p) > 36 && p[36] == '<', "UUID not 36 characters: %.40s", p);
	memcpy(out, p, 36);
	out[36] = '\0';
	/* 8-4-4-4-12 upper-case hex, version 5, RFC 4122 variant */
	for (int k = 0; k < 36; k++) {
		if (k == 8 || k == 13 || k == 18 || k == 23)
			ck_assert_msg(out[k] == '-', "%s", out);
		else
			ck_assert_msg(strchr("0123456789ABCDEF", out[k]), "%s", out);
	}
	ck_assert_msg(out[14] == '5', "not version 5: %s", out);
	ck_assert_msg(strchr("89AB", out[19]), "not the RFC 4122 variant: %s", out);
}

START_TEST(apple_profile)
{
	char *t = apple(&setup, "jan@x.pl", "jan");
	static const char *const order[] = {
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
		"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">",
		"<plist version=\"1.0\">", "<dict>", "<key>PayloadContent</key>", "<array>", "<dict>",
		"<key>PayloadType</key>", "<string>com.apple.mail.managed</string>",
		"<key>PayloadVersion</key>", "<integer>1</integer>",
		"<key>PayloadIdentifier</key>", "<string>pl.x.mail.jan.account</string>",
		"<key>PayloadUUID</key>",
		"<key>PayloadDisplayName</key>", "<string>A&amp;B &lt;x&gt; (jan@x.pl)</string>",
		"<key>EmailAccountType</key>", "<string>EmailTypeIMAP</string>",
		"<key>EmailAccountDescription</key>", "<string>A&amp;B &lt;x&gt;</string>",
		"<key>EmailAddress</key>", "<string>jan@x.pl</string>",
		"<key>IncomingMailServerHostName</key>", "<string>imap.x.pl</string>",
		"<key>IncomingMailServerPortNumber</key>", "<integer>993</integer>",
		"<key>IncomingMailServerUseSSL</key>", "<true/>",
		"<key>IncomingMailServerAuthentication</key>", "<string>EmailAuthPassword</string>",
		"<key>IncomingMailServerUsername</key>", "<string>jan</string>",
		"<key>OutgoingMailServerHostName</key>", "<string>smtp.x.pl</string>",
		"<key>OutgoingMailServerPortNumber</key>", "<integer>465</integer>",
		"<key>OutgoingMailServerUseSSL</key>", "<true/>",
		"<key>OutgoingMailServerAuthentication</key>", "<string>EmailAuthPassword</string>",
		"<key>OutgoingMailServerUsername</key>", "<string>jan</string>",
		"<key>OutgoingPasswordSameAsIncomingPassword</key>", "<true/>",
		"</dict>", "</array>",
		"<key>PayloadDisplayName</key>", "<string>A&amp;B &lt;x&gt; (jan@x.pl)</string>",
		"<key>PayloadIdentifier</key>", "<string>pl.x.mail.jan</string>",
		"<key>PayloadType</key>", "<string>Configuration</string>",
		"<key>PayloadUUID</key>",
		"<key>PayloadVersion</key>", "<integer>1</integer>",
		"</dict>", "</plist>", NULL,
	};
	in_order(t, order);
	ck_assert_uint_eq(count(t, "<key>"), count(t, "</key>"));
	ck_assert_uint_eq(count(t, "<dict>"), 2);
	ck_assert_ptr_null(strstr(t, "A&B"));

	/* no password key: only the one saying the outgoing password is the incoming one */
	for (const char *k = t; (k = strstr(k, "<key>"));) {
		k += strlen("<key>");
		const char *e = strstr(k, "</key>");
		ck_assert_ptr_nonnull(e);
		char key[128];
		ck_assert_uint_lt((size_t)(e - k), sizeof(key));
		memcpy(key, k, (size_t)(e - k));
		key[e - k] = '\0';
		if (strstr(key, "Password") || strstr(key, "password"))
			ck_assert_str_eq(key, "OutgoingPasswordSameAsIncomingPassword");
	}

	/* UUIDv5 of "mail:" and "profile:" + the address in the module's namespace (Python's uuid.uuid5
	 * gives the same), stable, and per address */
	char payload[37], profile[37];
	uuid_after(t, 0, payload);
	uuid_after(t, 1, profile);
	ck_assert_str_eq(payload, "2F558A93-890E-5467-9955-9B0B7A03B5B0");
	ck_assert_str_eq(profile, "51E1975B-43B2-5016-B5B4-4EFE917288D9");

	char *again = apple(&setup, "jan@x.pl", "jan");
	ck_assert_str_eq(t, again);
	free(again);

	char *upper = apple(&setup, "Jan@X.PL", "jan");
	char u1[37], u2[37];
	uuid_after(upper, 0, u1);
	uuid_after(upper, 1, u2);
	ck_assert_str_eq(u1, payload);
	ck_assert_str_eq(u2, profile);
	has(upper, "<string>pl.x.mail.jan</string>");
	has(upper, "<key>EmailAddress</key>\n\t\t\t<string>Jan@X.PL</string>");
	free(upper);

	char *other = apple(&setup, "ewa@x.pl", "ewa");
	uuid_after(other, 0, u1);
	uuid_after(other, 1, u2);
	ck_assert_str_ne(u1, payload);
	ck_assert_str_ne(u2, profile);
	ck_assert_str_ne(u1, u2);
	free(other);
	free(t);
}
END_TEST

/* identifiers: reverse-DNS, safe characters only, and two addresses never share one */
START_TEST(apple_identifier)
{
	static const struct {
		const char *email, *ident;
	} ids[] = {
		{ "jan@x.pl", "pl.x.mail.jan" },
		{ "jan.kowalski@mail.my-isp.com.pl", "pl.com.my-isp.mail.mail.jan.kowalski" },
		{ "jan+a@x.pl", "pl.x.mail.jan-2Ba" },
		{ "jan-2Ba@x.pl", "pl.x.mail.jan-2D2ba" },
		{ "a\"<b>@x.pl", "pl.x.mail.a-22-3Cb-3E" },
		{ "j\xc3\xb3zef@x.pl", "pl.x.mail.j-C3-B3zef" },
		{ "jan@x..pl.", "pl.x.mail.jan" },
		{ "nodomain", "mail.nodomain" },
	};
	for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		char *t = apple(&setup, ids[k].email, "login");
		char want[256];
		snprintf(want, sizeof(want), "<key>PayloadIdentifier</key>\n\t<string>%s</string>",
			 ids[k].ident);
		ck_assert_msg(strstr(t, want), "%s: want %s", ids[k].email, ids[k].ident);
		snprintf(want, sizeof(want), "<string>%s.account</string>", ids[k].ident);
		ck_assert_msg(strstr(t, want), "%s: want %s.account", ids[k].email, ids[k].ident);
		free(t);
	}
}
END_TEST

/* no IMAP or no SMTP server, or no usable address: false, and nothing written */
START_TEST(apple_refused)
{
	struct autoconf_setup s = setup;
	char long_email[AUTOCONF_MAX_ADDRESS + 2];
	memset(long_email, 'a', sizeof(long_email) - 1);
	long_email[sizeof(long_email) - 1] = '\0';
	struct {
		size_t first, n;
		const char *email;
		bool ok;
	} cases[] = {
		{ 0, 6, "jan@x.pl", true },
		{ 0, 4, "jan@x.pl", false },  /* no smtp */
		{ 2, 4, "jan@x.pl", false },  /* no imap (pop3 and smtp only) */
		{ 1, 5, "jan@x.pl", true },   /* imap on 143 only */
		{ 0, 0, "jan@x.pl", false },
		{ 0, 6, "", false },
		{ 0, 6, NULL, false },
		{ 0, 6, long_email, false },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		memset(&s.srv, 0, sizeof(s.srv));
		s.n = cases[k].n;
		for (size_t r = 0; r < cases[k].n; r++)
			s.srv[r] = setup.srv[cases[k].first + r];
		struct evbuffer *b = evbuffer_new();
		ck_assert_msg(autoconf_write_apple(b, &s, cases[k].email, "jan") == cases[k].ok, "case %zu",
			      k);
		if (!cases[k].ok)
			ck_assert_uint_eq(evbuffer_get_length(b), 0);
		char *t = take_text(b);
		if (k == 3)
			has(t, "<key>IncomingMailServerPortNumber</key>\n\t\t\t<integer>143</integer>");
		free(t);
	}
}
END_TEST

static Suite *panel_autoconf_suite(void)
{
	Suite *s = suite_create("panel_autoconf");
	TCase *tc = tcase_create("request");
	tcase_add_loop_test(tc, request, 0, sizeof(reqs) / sizeof(reqs[0]));
	tcase_add_test(tc, reasons);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, depth_bomb);
	tcase_add_test(tc, truncations);
	suite_add_tcase(s, tc);
	tc = tcase_create("answers");
	tcase_add_test(tc, thunderbird);
	tcase_add_test(tc, autodiscover);
	tcase_add_test(tc, odd_rows);
	tcase_add_test(tc, apple_profile);
	tcase_add_test(tc, apple_identifier);
	tcase_add_test(tc, apple_refused);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(panel_autoconf_suite)
