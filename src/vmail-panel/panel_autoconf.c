/*
 * panel_autoconf: mail programs' automatic configuration.  Reads the one thing an Outlook
 * autodiscover request carries (the address) and draws the three answers from
 * vmail.client_setup's rows.  Pure: bytes in, text out; no I/O, no state.
 *
 * The request reader is not a general XML parser.  It knows exactly what Outlook sends
 * and refuses everything that gives XML its dangers (DTDs and so entities, processing
 * instructions) before looking at the structure, so nothing is ever expanded or fetched.
 * Policy on the rest: comments are allowed (skipped: they carry nothing); CDATA sections
 * are refused (Outlook never sends one, and the five entities cover every character an
 * address could need).  The body must be UTF-8 without control characters other than
 * tab, CR and LF, as XML 1.0 requires; a declaration naming another encoding is refused
 * rather than half-believed.
 */
#include "panel_autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <uuid/uuid.h>

#include "panel_html.h"
#include "vmail/utf8.h"

#define MAX_DEPTH 32 /* Outlook's request is 3 deep; the bound keeps a depth bomb cheap */
#define MAX_REF 12   /* "&#x0000041;" is still XML; a longer reference is refused, not scanned */

/* The namespace of the profiles' UUIDv5s.  Changing it changes every profile's UUIDs, so a
 * device would take a downloaded profile for a new one: never change it. */
static const uuid_t profile_ns = { 0xaf, 0x64, 0x7c, 0xfd, 0xb4, 0x91, 0x4b, 0xd4,
				   0xb9, 0xa6, 0x67, 0xbc, 0xa8, 0x3d, 0xe6, 0x1d };

const char *autoconf_req_reason(enum autoconf_req r)
{
	switch (r) {
	case AUTOCONF_REQ_OK: return "ok";
	case AUTOCONF_REQ_TOO_LARGE: return "request too large";
	case AUTOCONF_REQ_MALFORMED: return "not a well-formed autodiscover request";
	case AUTOCONF_REQ_DTD: return "document type declarations are not accepted";
	case AUTOCONF_REQ_PI: return "processing instructions are not accepted";
	case AUTOCONF_REQ_NO_ADDRESS: return "no e-mail address in the request";
	}
	return "unknown request error";
}

/* ---- the request ---- */

struct open_elem {
	const char *name; /* the qualified name, for the end tag to match */
	size_t len;
	bool on_path; /* this element and its ancestors are Autodiscover/Request/EMailAddress so far */
};

struct reader {
	const char *p;
	size_t len, i;
	struct open_elem stack[MAX_DEPTH];
	unsigned depth;
	bool root_seen, root_closed;
	bool addr_seen; /* an Autodiscover/Request/EMailAddress element was opened */
	/* its text, trimmed as it comes: leading blanks are never stored, trailing ones at the end */
	char val[AUTOCONF_MAX_ADDRESS + 1];
	size_t vn;
	bool too_long;
};

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool starts(const struct reader *r, size_t i, const char *lit)
{
	size_t n = strlen(lit);
	return r->len - i >= n && memcmp(r->p + i, lit, n) == 0;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ci_at - lit at p[i..len), ASCII case ignored */
static bool ci_at(const char *p, size_t len, size_t i, const char *lit)
{
	size_t n = strlen(lit);
	if (len - i < n)
		return false;
	for (size_t k = 0; k < n; k++)
		if (ascii_lower(p[i + k]) != ascii_lower(lit[k]))
			return false;
	return true;
}

/* decl_value_ok - a pseudo-attribute of the declaration: version 1.x; encoding UTF-8, the only
 * one read here; standalone yes or no */
static bool decl_value_ok(unsigned which, const char *v, size_t n)
{
	switch (which) {
	case 0:
		if (n < 3 || memcmp(v, "1.", 2) != 0)
			return false;
		for (size_t k = 2; k < n; k++)
			if (v[k] < '0' || v[k] > '9')
				return false;
		return true;
	case 1:
		return n == 5 && ci_at(v, n, 0, "UTF-8");
	default:
		return (n == 3 && memcmp(v, "yes", 3) == 0) || (n == 2 && memcmp(v, "no", 2) == 0);
	}
}

/* decl_inside_ok - p[i..end), between "<?xml" and "?>": version, then optionally encoding and
 * standalone, in XML 1.0's order, each after a blank */
static bool decl_inside_ok(const char *p, size_t i, size_t end)
{
	static const char *const names[] = { "version", "encoding", "standalone" };
	unsigned next = 0; /* the names before this one are used up */
	for (;;) {
		size_t b = i;
		while (i < end && is_blank((unsigned char)p[i]))
			i++;
		if (i == end)
			return next > 0;
		if (i == b)
			return false;
		unsigned which = next;
		while (which < 3 && !(end - i >= strlen(names[which]) &&
				      memcmp(p + i, names[which], strlen(names[which])) == 0))
			which++;
		if (which == 3 || (next == 0 && which != 0))
			return false;
		i += strlen(names[which]);
		while (i < end && is_blank((unsigned char)p[i]))
			i++;
		if (i == end || p[i] != '=')
			return false;
		i++;
		while (i < end && is_blank((unsigned char)p[i]))
			i++;
		if (i == end || (p[i] != '"' && p[i] != '\''))
			return false;
		const char *close = memchr(p + i + 1, p[i], end - i - 1);
		if (!close || !decl_value_ok(which, p + i + 1, (size_t)(close - p - i - 1)))
			return false;
		i = (size_t)(close - p) + 1;
		next = which + 1;
	}
}

/* decl_at - where the XML declaration at start ends (after "?>"), 0 if there is none there;
 * SIZE_MAX if one starts but is not closed or is not what XML 1.0 allows */
static size_t decl_at(const char *p, size_t len, size_t start)
{
	if (len - start < 6 || memcmp(p + start, "<?xml", 5) != 0 ||
	    !is_blank((unsigned char)p[start + 5]))
		return 0;
	for (size_t i = start + 5; i + 1 < len; i++)
		if (p[i] == '?' && p[i + 1] == '>')
			return decl_inside_ok(p, start + 5, i) ? i + 2 : SIZE_MAX;
	return SIZE_MAX;
}

/*
 * prescan - the refusals that do not depend on structure, over every byte (inside comments and
 * attribute values too): a DTD or entity declaration, a processing instruction other than the
 * declaration at decl, bytes XML does not allow.
 */
static enum autoconf_req prescan(const char *p, size_t len, size_t decl)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] == '<' && i + 1 < len && p[i + 1] == '!' &&
		    (ci_at(p, len, i + 2, "DOCTYPE") || ci_at(p, len, i + 2, "ENTITY")))
			return AUTOCONF_REQ_DTD;
	for (size_t i = 0; i + 1 < len; i++)
		if (p[i] == '<' && p[i + 1] == '?' && i != decl)
			return AUTOCONF_REQ_PI;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
			return AUTOCONF_REQ_MALFORMED;
	}
	return utf8_valid(p, len) ? AUTOCONF_REQ_OK : AUTOCONF_REQ_MALFORMED;
}

static bool name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool name_char(unsigned char c)
{
	return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':';
}

/* qname_len - the length of a (prefix:)name at i, 0 when there is none or it has an empty part */
static size_t qname_len(const struct reader *r, size_t i)
{
	size_t n = 0, colons = 0, colon_at = 0;
	if (i >= r->len || !name_start((unsigned char)r->p[i]))
		return 0;
	while (i + n < r->len && name_char((unsigned char)r->p[i + n])) {
		if (r->p[i + n] == ':') {
			colons++;
			colon_at = n;
		}
		n++;
	}
	if (colons > 1)
		return 0;
	if (colons == 1 && (colon_at + 1 == n || !name_start((unsigned char)r->p[i + colon_at + 1])))
		return 0;
	return n;
}

static bool local_is(const char *name, size_t len, const char *want)
{
	const char *colon = memchr(name, ':', len);
	if (colon) {
		len -= (size_t)(colon + 1 - name);
		name = colon + 1;
	}
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* in_address - the text being read is the EMailAddress's own */
static bool in_address(const struct reader *r)
{
	return r->depth == 3 && r->stack[2].on_path;
}

static void take(struct reader *r, unsigned char c)
{
	if (!in_address(r))
		return;
	if (r->vn == 0 && is_blank(c))
		return;
	if (r->vn == AUTOCONF_MAX_ADDRESS) {
		/* blanks past the limit may still all be trailing; anything else makes it too long */
		if (!is_blank(c))
			r->too_long = true;
		return;
	}
	r->val[r->vn++] = (char)c;
}

/*
 * reference - the character that the reference at p[i] ('&') stands for, its length into *n;
 * -1 for anything but the five predefined entities and ASCII character references.
 */
static int reference(const char *p, size_t end, size_t i, size_t *n)
{
	size_t semi = i + 1;
	while (semi < end && semi - i <= MAX_REF && p[semi] != ';')
		semi++;
	if (semi >= end || p[semi] != ';')
		return -1;
	*n = semi - i + 1;
	const char *s = p + i + 1;
	size_t len = semi - i - 1;
	static const struct {
		const char *name;
		char c;
	} predefined[] = { { "lt", '<' }, { "gt", '>' }, { "amp", '&' }, { "quot", '"' }, { "apos", '\'' } };
	for (size_t k = 0; k < sizeof(predefined) / sizeof(predefined[0]); k++)
		if (len == strlen(predefined[k].name) && memcmp(s, predefined[k].name, len) == 0)
			return predefined[k].c;
	if (len < 2 || s[0] != '#')
		return -1;
	bool hex = s[1] == 'x';
	size_t k = hex ? 2 : 1;
	if (k == len)
		return -1;
	unsigned long v = 0;
	for (; k < len; k++) {
		unsigned char c = (unsigned char)s[k];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (hex && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (hex && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * (hex ? 16 : 10) + (unsigned)d; /* at most MAX_REF digits: no overflow */
	}
	if (v == '\t' || v == '\n' || v == '\r' || (v >= 0x20 && v <= 0x7e))
		return (int)v;
	return -1;
}

/* text - character data up to the next '<': only an EMailAddress's is kept; outside the root
 * element only blanks may stand */
static enum autoconf_req text(struct reader *r)
{
	const char *lt = memchr(r->p + r->i, '<', r->len - r->i);
	size_t end = lt ? (size_t)(lt - r->p) : r->len;
	for (size_t i = r->i; i < end;) {
		unsigned char c = (unsigned char)r->p[i];
		size_t n = 1;
		if (r->depth == 0 && !is_blank(c)) /* before or after the root: blanks only */
			return AUTOCONF_REQ_MALFORMED;
		if (c == '&') {
			int v = reference(r->p, end, i, &n);
			if (v < 0)
				return AUTOCONF_REQ_MALFORMED;
			c = (unsigned char)v;
		}
		take(r, c);
		i += n;
	}
	r->i = end;
	return AUTOCONF_REQ_OK;
}

static size_t skip_blanks(const struct reader *r, size_t i)
{
	while (i < r->len && is_blank((unsigned char)r->p[i]))
		i++;
	return i;
}

/* attribute - name="value" or name='value' at r->i: read and dropped, its references checked */
static enum autoconf_req attribute(struct reader *r)
{
	size_t n = qname_len(r, r->i);
	if (!n)
		return AUTOCONF_REQ_MALFORMED;
	size_t i = skip_blanks(r, r->i + n);
	if (i >= r->len || r->p[i] != '=')
		return AUTOCONF_REQ_MALFORMED;
	i = skip_blanks(r, i + 1);
	if (i >= r->len || (r->p[i] != '"' && r->p[i] != '\''))
		return AUTOCONF_REQ_MALFORMED;
	const char *close = memchr(r->p + i + 1, r->p[i], r->len - i - 1);
	if (!close)
		return AUTOCONF_REQ_MALFORMED;
	size_t end = (size_t)(close - r->p);
	for (size_t k = i + 1; k < end;) {
		size_t len = 1;
		if (r->p[k] == '<' || (r->p[k] == '&' && reference(r->p, end, k, &len) < 0))
			return AUTOCONF_REQ_MALFORMED;
		k += len;
	}
	r->i = end + 1;
	return AUTOCONF_REQ_OK;
}

/* push - an element enters the stack; where it stands decides whether it is on the path */
static enum autoconf_req push(struct reader *r, const char *name, size_t len)
{
	if (r->root_closed || r->depth == MAX_DEPTH)
		return AUTOCONF_REQ_MALFORMED;
	if (in_address(r)) /* the address is text only */
		return AUTOCONF_REQ_MALFORMED;
	bool on_path;
	if (r->depth == 0) {
		if (!local_is(name, len, "Autodiscover"))
			return AUTOCONF_REQ_MALFORMED;
		r->root_seen = on_path = true;
	} else if (r->depth == 1) {
		on_path = local_is(name, len, "Request");
	} else if (r->depth == 2) {
		on_path = r->stack[1].on_path && local_is(name, len, "EMailAddress");
		if (on_path) {
			if (r->addr_seen) /* two addresses: which one was meant is a guess */
				return AUTOCONF_REQ_MALFORMED;
			r->addr_seen = true;
		}
	} else {
		on_path = false;
	}
	r->stack[r->depth++] = (struct open_elem){ name, len, on_path };
	return AUTOCONF_REQ_OK;
}

static void close_top(struct reader *r)
{
	if (--r->depth == 0)
		r->root_closed = true;
}

static enum autoconf_req start_tag(struct reader *r)
{
	size_t n = qname_len(r, r->i + 1);
	if (!n)
		return AUTOCONF_REQ_MALFORMED;
	const char *name = r->p + r->i + 1;
	r->i += 1 + n;
	for (;;) {
		size_t i = skip_blanks(r, r->i);
		if (i >= r->len)
			return AUTOCONF_REQ_MALFORMED;
		if (r->p[i] == '>') {
			r->i = i + 1;
			return push(r, name, n);
		}
		if (r->p[i] == '/') {
			if (i + 1 >= r->len || r->p[i + 1] != '>')
				return AUTOCONF_REQ_MALFORMED;
			r->i = i + 2;
			enum autoconf_req st = push(r, name, n);
			if (st == AUTOCONF_REQ_OK)
				close_top(r);
			return st;
		}
		if (i == r->i) /* attributes are separated by blanks */
			return AUTOCONF_REQ_MALFORMED;
		r->i = i;
		enum autoconf_req st = attribute(r);
		if (st != AUTOCONF_REQ_OK)
			return st;
	}
}

static enum autoconf_req end_tag(struct reader *r)
{
	size_t n = qname_len(r, r->i + 2);
	if (!n || r->depth == 0)
		return AUTOCONF_REQ_MALFORMED;
	const struct open_elem *top = &r->stack[r->depth - 1];
	if (top->len != n || memcmp(top->name, r->p + r->i + 2, n) != 0)
		return AUTOCONF_REQ_MALFORMED;
	size_t i = skip_blanks(r, r->i + 2 + n);
	if (i >= r->len || r->p[i] != '>')
		return AUTOCONF_REQ_MALFORMED;
	r->i = i + 1;
	close_top(r);
	return AUTOCONF_REQ_OK;
}

static enum autoconf_req markup(struct reader *r)
{
	if (starts(r, r->i, "<!--")) {
		/* XML allows "--" in a comment only as its end */
		for (size_t i = r->i + 4; i + 1 < r->len; i++)
			if (r->p[i] == '-' && r->p[i + 1] == '-') {
				if (i + 2 >= r->len || r->p[i + 2] != '>')
					return AUTOCONF_REQ_MALFORMED;
				r->i = i + 3;
				return AUTOCONF_REQ_OK;
			}
		return AUTOCONF_REQ_MALFORMED;
	}
	if (starts(r, r->i, "<!")) /* CDATA, and whatever else; the DTD was refused before */
		return AUTOCONF_REQ_MALFORMED;
	if (starts(r, r->i, "<?")) /* prescan refused it already; kept in case that ever changes */
		return AUTOCONF_REQ_PI;
	if (starts(r, r->i, "</"))
		return end_tag(r);
	return start_tag(r);
}

/* read_request - the structure: every step moves r->i forward, so the loop ends by len */
static enum autoconf_req read_request(struct reader *r)
{
	while (r->i < r->len) {
		enum autoconf_req st = r->p[r->i] == '<' ? markup(r) : text(r);
		if (st != AUTOCONF_REQ_OK)
			return st;
	}
	return r->root_seen && r->root_closed ? AUTOCONF_REQ_OK : AUTOCONF_REQ_MALFORMED;
}

enum autoconf_req autoconf_parse_request(const char *body, size_t len, char *addr, size_t addrlen)
{
	static const char bom[] = "\xef\xbb\xbf";
	struct reader r = { .p = body, .len = len };
	if (addrlen)
		addr[0] = '\0';
	if (len > AUTOCONF_MAX_BODY)
		return AUTOCONF_REQ_TOO_LARGE;
	if (len >= 3 && memcmp(body, bom, 3) == 0)
		r.i = 3;
	size_t decl_end = decl_at(body, len, r.i);
	enum autoconf_req st = prescan(body, len, decl_end ? r.i : SIZE_MAX);
	if (st != AUTOCONF_REQ_OK)
		return st;
	if (decl_end == SIZE_MAX)
		return AUTOCONF_REQ_MALFORMED;
	if (decl_end)
		r.i = decl_end;
	st = read_request(&r);
	if (st != AUTOCONF_REQ_OK)
		return st;
	while (r.vn && is_blank((unsigned char)r.val[r.vn - 1]))
		r.vn--;
	if (!r.vn || r.too_long || r.vn >= addrlen)
		return AUTOCONF_REQ_NO_ADDRESS;
	memcpy(addr, r.val, r.vn);
	addr[r.vn] = '\0';
	return AUTOCONF_REQ_OK;
}

/* ---- the answers ---- */

static void put(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, s, strlen(s));
}

/* elem - <name>value</name>, value escaped, after indent */
static void elem(struct evbuffer *out, const char *indent, const char *name, const char *value)
{
	evbuffer_add_printf(out, "%s<%s>", indent, name);
	panel_html_esc(out, value);
	evbuffer_add_printf(out, "</%s>\n", name);
}

static bool is(const char *a, const char *b)
{
	return a && strcmp(a, b) == 0;
}

static size_t rows(const struct autoconf_setup *s)
{
	return s->n < AUTOCONF_MAX_SERVERS ? s->n : AUTOCONF_MAX_SERVERS;
}

/* known - a row every answer can describe; any other is left out rather than guessed at */
static bool known(const struct autoconf_server *v)
{
	return (is(v->protocol, "imap") || is(v->protocol, "pop3") || is(v->protocol, "smtp")) &&
	       (is(v->security, "ssl") || is(v->security, "starttls"));
}

void autoconf_write_thunderbird(struct evbuffer *out, const struct autoconf_setup *s)
{
	put(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n");
	put(out, "  <emailProvider id=\"");
	panel_html_esc(out, s->domain);
	put(out, "\">\n");
	elem(out, "    ", "domain", s->domain);
	elem(out, "    ", "displayName", s->service_name);
	elem(out, "    ", "displayShortName", s->service_name);
	for (size_t k = 0; k < rows(s); k++) {
		const struct autoconf_server *v = &s->srv[k];
		if (!known(v))
			continue;
		const char *tag = is(v->protocol, "smtp") ? "outgoingServer" : "incomingServer";
		evbuffer_add_printf(out, "    <%s type=\"%s\">\n", tag, v->protocol);
		elem(out, "      ", "hostname", v->host);
		evbuffer_add_printf(out, "      <port>%u</port>\n", v->port);
		elem(out, "      ", "socketType", is(v->security, "ssl") ? "SSL" : "STARTTLS");
		elem(out, "      ", "authentication", "password-cleartext");
		elem(out, "      ", "username", s->username);
		evbuffer_add_printf(out, "    </%s>\n", tag);
	}
	put(out, "  </emailProvider>\n</clientConfig>\n");
}

void autoconf_write_autodiscover(struct evbuffer *out, const struct autoconf_setup *s)
{
	put(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		 "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/"
		 "responseschema/2006\">\n"
		 "  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/"
		 "responseschema/2006a\">\n"
		 "    <User>\n");
	elem(out, "      ", "DisplayName", s->service_name);
	put(out, "    </User>\n"
		 "    <Account>\n"
		 "      <AccountType>email</AccountType>\n"
		 "      <Action>settings</Action>\n");
	for (size_t k = 0; k < rows(s); k++) {
		const struct autoconf_server *v = &s->srv[k];
		if (!known(v))
			continue;
		put(out, "      <Protocol>\n");
		elem(out, "        ", "Type",
		     is(v->protocol, "imap") ? "IMAP" : is(v->protocol, "pop3") ? "POP3" : "SMTP");
		elem(out, "        ", "Server", v->host);
		evbuffer_add_printf(out, "        <Port>%u</Port>\n", v->port);
		elem(out, "        ", "LoginName", s->username);
		put(out, "        <DomainRequired>off</DomainRequired>\n"
			 "        <SPA>off</SPA>\n"
			 "        <SSL>on</SSL>\n");
		/* Outlook reads Encryption over SSL when both are there: say which TLS explicitly */
		elem(out, "        ", "Encryption", is(v->security, "ssl") ? "SSL" : "TLS");
		put(out, "        <AuthRequired>on</AuthRequired>\n");
		if (is(v->protocol, "smtp"))
			put(out, "        <UsePOPAuth>off</UsePOPAuth>\n"
				 "        <SMTPLast>off</SMTPLast>\n");
		put(out, "      </Protocol>\n");
	}
	put(out, "    </Account>\n  </Response>\n</Autodiscover>\n");
}

/* ---- the Apple profile ---- */

/* profile_uuid - UUIDv5 of prefix + the lower-cased email: the same mailbox gets the same
 * profile on every download, so installing it again replaces it instead of adding one */
static void profile_uuid(char out[37], const char *prefix, const char *email, size_t elen)
{
	char name[16 + AUTOCONF_MAX_ADDRESS];
	size_t pl = strlen(prefix);
	memcpy(name, prefix, pl);
	for (size_t k = 0; k < elen; k++)
		name[pl + k] = ascii_lower(email[k]);
	uuid_t u;
	uuid_generate_sha1(u, profile_ns, name, pl + elen);
	uuid_unparse_upper(u, out);
}

static bool ident_safe(char c, bool local)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == (local ? '.' : '-');
}

/* ident_part - p[0..n) lower-cased, any other character as "-HH": in the local part '-' is
 * escaped too, so two addresses never share an identifier */
static void ident_part(struct evbuffer *out, const char *p, size_t n, bool local)
{
	for (size_t k = 0; k < n; k++) {
		char c = ascii_lower(p[k]);
		if (ident_safe(c, local))
			evbuffer_add(out, &c, 1);
		else
			evbuffer_add_printf(out, "-%02X", (unsigned char)c);
	}
}

/* identifier - the reverse-DNS identifier of the mailbox's profile: tld.domain.mail.local */
static void identifier(struct evbuffer *out, const char *email, size_t elen)
{
	const char *at = NULL;
	for (size_t k = 0; k < elen; k++)
		if (email[k] == '@')
			at = email + k;
	size_t local = at ? (size_t)(at - email) : elen;
	const char *dom = at ? at + 1 : email + elen;
	size_t dlen = (size_t)(email + elen - dom);
	/* labels from the last; empty ones (a stray dot) are skipped */
	size_t end = dlen;
	while (end > 0) {
		size_t start = end;
		while (start > 0 && dom[start - 1] != '.')
			start--;
		if (start < end) {
			ident_part(out, dom + start, end - start, false);
			put(out, ".");
		}
		end = start ? start - 1 : 0;
	}
	put(out, "mail.");
	ident_part(out, email, local, true);
}

static void key_string(struct evbuffer *out, const char *indent, const char *key, const char *value)
{
	evbuffer_add_printf(out, "%s<key>%s</key>\n%s<string>", indent, key, indent);
	panel_html_esc(out, value);
	put(out, "</string>\n");
}

static void key_int(struct evbuffer *out, const char *indent, const char *key, unsigned value)
{
	evbuffer_add_printf(out, "%s<key>%s</key>\n%s<integer>%u</integer>\n", indent, key, indent, value);
}

static void key_bool(struct evbuffer *out, const char *indent, const char *key, bool value)
{
	evbuffer_add_printf(out, "%s<key>%s</key>\n%s<%s/>\n", indent, key, indent, value ? "true" : "false");
}

/* display_name - "Service (address)", or the address alone when the service has no name */
static void key_display(struct evbuffer *out, const char *indent, const struct autoconf_setup *s,
			const char *email)
{
	evbuffer_add_printf(out, "%s<key>PayloadDisplayName</key>\n%s<string>", indent, indent);
	if (s->service_name && *s->service_name) {
		panel_html_esc(out, s->service_name);
		put(out, " (");
		panel_html_esc(out, email);
		put(out, ")");
	} else {
		panel_html_esc(out, email);
	}
	put(out, "</string>\n");
}

static const struct autoconf_server *first(const struct autoconf_setup *s, const char *protocol)
{
	for (size_t k = 0; k < rows(s); k++)
		if (is(s->srv[k].protocol, protocol) && known(&s->srv[k]))
			return &s->srv[k];
	return NULL;
}

bool autoconf_write_apple(struct evbuffer *out, const struct autoconf_setup *s, const char *email,
			  const char *login)
{
	const struct autoconf_server *imap = first(s, "imap"), *smtp = first(s, "smtp");
	size_t elen = email ? strlen(email) : 0;
	if (!imap || !smtp || elen == 0 || elen > AUTOCONF_MAX_ADDRESS)
		return false;
	char profile[37], payload[37];
	profile_uuid(profile, "profile:", email, elen);
	profile_uuid(payload, "mail:", email, elen);
	const char *in = "\t\t\t";

	put(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		 "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		 "<plist version=\"1.0\">\n<dict>\n"
		 "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n");
	key_string(out, in, "PayloadType", "com.apple.mail.managed");
	key_int(out, in, "PayloadVersion", 1);
	evbuffer_add_printf(out, "%s<key>PayloadIdentifier</key>\n%s<string>", in, in);
	identifier(out, email, elen);
	put(out, ".account</string>\n");
	key_string(out, in, "PayloadUUID", payload);
	key_display(out, in, s, email);
	key_string(out, in, "EmailAccountType", "EmailTypeIMAP");
	key_string(out, in, "EmailAccountDescription",
		   s->service_name && *s->service_name ? s->service_name : email);
	key_string(out, in, "EmailAddress", email);
	key_string(out, in, "IncomingMailServerHostName", imap->host);
	key_int(out, in, "IncomingMailServerPortNumber", imap->port);
	/* Apple's key means "use TLS": STARTTLS on 143 is TLS too */
	key_bool(out, in, "IncomingMailServerUseSSL", true);
	key_string(out, in, "IncomingMailServerAuthentication", "EmailAuthPassword");
	key_string(out, in, "IncomingMailServerUsername", login);
	key_string(out, in, "OutgoingMailServerHostName", smtp->host);
	key_int(out, in, "OutgoingMailServerPortNumber", smtp->port);
	key_bool(out, in, "OutgoingMailServerUseSSL", true);
	key_string(out, in, "OutgoingMailServerAuthentication", "EmailAuthPassword");
	key_string(out, in, "OutgoingMailServerUsername", login);
	key_bool(out, in, "OutgoingPasswordSameAsIncomingPassword", true);
	put(out, "\t\t</dict>\n\t</array>\n");
	key_display(out, "\t", s, email);
	put(out, "\t<key>PayloadIdentifier</key>\n\t<string>");
	identifier(out, email, elen);
	put(out, "</string>\n");
	key_string(out, "\t", "PayloadType", "Configuration");
	key_string(out, "\t", "PayloadUUID", profile);
	key_int(out, "\t", "PayloadVersion", 1);
	put(out, "</dict>\n</plist>\n");
	return true;
}
