/* dnscheck: TXT/MX queries over UDP on an event_base, the RFC 1035 codec, and the comparisons. */
#include "dnscheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#define HDR_LEN 12
#define TYPE_CNAME 5
#define TYPE_OPT 41
#define CLASS_IN 1
#define MAX_SERVERS 8
#define MAX_CNAME_HOPS 8
#define NAME_MAX_TEXT 256 /* 253 characters of a dotted name, with room to spare */

const char *dnscheck_status_name(enum dnscheck_status s)
{
	switch (s) {
	case DNSCHECK_FOUND:
		return "found";
	case DNSCHECK_NODATA:
		return "no data";
	case DNSCHECK_NXDOMAIN:
		return "no such name";
	case DNSCHECK_TEMPFAIL:
		break;
	}
	return "temporary failure";
}

/* ---- wire format ---- */

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static bool label_char(unsigned char c)
{
	/* '_' for service labels such as _vmail-verify */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

/* encode_name - "a.b.c" or "a.b.c." as length-prefixed labels; 0 on a bad name or no room */
static size_t encode_name(const char *name, unsigned char *out, size_t outlen)
{
	size_t o = 0;
	const char *p = name;
	if (!*p || strcmp(p, ".") == 0)
		return 0; /* the root has no TXT or MX we would ask for */
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n > 63)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (!label_char((unsigned char)p[i]))
				return 0;
		if (o + 1 + n + 1 > outlen || o + 1 + n + 1 > 255)
			return 0;
		out[o++] = (unsigned char)n;
		memcpy(out + o, p, n);
		o += n;
		p += n;
		if (*p == '.')
			p++;
	}
	out[o++] = 0;
	return o;
}

size_t dnscheck_build_query(uint16_t id, const char *name, uint16_t qtype, unsigned char *out,
			    size_t outlen)
{
	if (outlen < HDR_LEN)
		return 0;
	memset(out, 0, HDR_LEN);
	put16(out, id);
	out[2] = 0x01; /* RD: we ask a recursive resolver, or the authoritative server itself */
	put16(out + 4, 1); /* QDCOUNT */
	put16(out + 10, 1); /* ARCOUNT: the OPT record */
	size_t n = encode_name(name, out + HDR_LEN, outlen - HDR_LEN);
	size_t o = HDR_LEN + n;
	/* question tail (4) + OPT: root name, type, class = payload size, ttl, rdlen (11) */
	if (!n || o + 4 + 11 > outlen)
		return 0;
	put16(out + o, qtype);
	put16(out + o + 2, CLASS_IN);
	o += 4;
	out[o] = 0;
	put16(out + o + 1, TYPE_OPT);
	put16(out + o + 3, DNSCHECK_MSG_MAX);
	memset(out + o + 5, 0, 6);
	return o + 11;
}

/*
 * read_name - the (possibly compressed) name at *off into out as "a.b.c" (root = ""); *off
 * moves past it in the message.  Pointers are followed a bounded number of times, so a
 * pointer loop is an error rather than a hang; labels are bounded by the name's length
 * (a name may have 127 of them: only pointers count as hops).
 */
static bool read_name(const unsigned char *msg, size_t len, size_t *off, char *out, size_t outlen)
{
	size_t p = *off, o = 0;
	bool jumped = false;
	int hops = 0;
	for (;;) {
		if (p >= len)
			return false;
		unsigned c = msg[p];
		if ((c & 0xc0) == 0xc0) {
			if (p + 1 >= len || ++hops > 64)
				return false;
			if (!jumped)
				*off = p + 2;
			jumped = true;
			p = ((c & 0x3f) << 8) | msg[p + 1];
			continue;
		}
		if (c & 0xc0)
			return false; /* extended label types: not in replies we asked for */
		if (c == 0) {
			if (!jumped)
				*off = p + 1;
			if (o >= outlen)
				return false;
			out[o] = '\0';
			return true;
		}
		if (p + 1 + c > len || o + c + 2 > outlen || o + c + 1 > 254)
			return false;
		if (o)
			out[o++] = '.';
		for (unsigned i = 0; i < c; i++) {
			unsigned char ch = msg[p + 1 + i];
			/* a name is data for messages and comparisons: no control bytes or dots inside */
			out[o++] = (char)(ch < 0x21 || ch > 0x7e || ch == '.' ? '?' : ch);
		}
		p += 1 + c;
	}
}

/* Names in messages and configuration may end in a dot; DNS ignores case. */
bool dnscheck_host_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	if (la != lb)
		return false;
	for (size_t i = 0; i < la; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

static void set_error(struct dnscheck_answer *ans, const char *why)
{
	ans->status = DNSCHECK_TEMPFAIL;
	ans->count = 0;
	snprintf(ans->error, sizeof(ans->error), "%s", why);
}

/* TXT rdata: character-strings, joined as RFC 7208 does; control bytes become '?' for printing */
static bool read_txt(const unsigned char *rd, size_t rdlen, char *out, size_t outlen)
{
	size_t p = 0, o = 0;
	while (p < rdlen) {
		size_t n = rd[p++];
		if (p + n > rdlen)
			return false;
		for (size_t i = 0; i < n; i++)
			if (o + 1 < outlen)
				out[o++] = (char)(rd[p + i] < 0x20 || rd[p + i] == 0x7f ? '?' : rd[p + i]);
		p += n;
	}
	out[o] = '\0';
	return true;
}

struct rr {
	char owner[NAME_MAX_TEXT];
	uint16_t type;
	size_t rdata, rdlen; /* offsets into the message */
};

/*
 * parse - 1: an answer (FOUND, NODATA, NXDOMAIN); 0: a reply to our query that is no answer
 * (TEMPFAIL, ans->error says why); -1: not a reply to our query at all (keep waiting).
 */
static int parse(const unsigned char *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
		 struct dnscheck_answer *ans)
{
	char owner[NAME_MAX_TEXT];
	memset(ans, 0, sizeof(*ans));
	ans->status = DNSCHECK_TEMPFAIL;
	if (len < HDR_LEN || get16(msg) != id || !(msg[2] & 0x80) || get16(msg + 4) != 1) {
		snprintf(ans->error, sizeof(ans->error), "not a reply to our query");
		return -1;
	}
	size_t off = HDR_LEN;
	if (!read_name(msg, len, &off, owner, sizeof(owner)) || off + 4 > len ||
	    !dnscheck_host_equal(owner, name) || get16(msg + off) != qtype ||
	    get16(msg + off + 2) != CLASS_IN) {
		snprintf(ans->error, sizeof(ans->error), "not a reply to our query");
		return -1;
	}
	off += 4;
	if (msg[2] & 0x02) {
		set_error(ans, "truncated reply (over UDP)");
		return 0;
	}
	unsigned rcode = msg[3] & 0x0f;
	if (rcode == 2) {
		set_error(ans, "server failure (SERVFAIL)");
		return 0;
	}
	if (rcode == 5) {
		set_error(ans, "query refused (REFUSED)");
		return 0;
	}
	if (rcode != 0 && rcode != 3) {
		char code[32];
		snprintf(code, sizeof(code), "error code %u", rcode);
		set_error(ans, code);
		return 0;
	}

	/* The answer section, owner names decoded once, then CNAMEs followed from the question. */
	struct rr rrs[64], extra;
	size_t nrr = 0, ancount = get16(msg + 6);
	for (size_t i = 0; i < ancount; i++) {
		/* past 64 records the rest are read (to check the framing) and ignored */
		struct rr *r = nrr < 64 ? &rrs[nrr] : &extra;
		if (!read_name(msg, len, &off, r->owner, sizeof(r->owner)) || off + 10 > len) {
			set_error(ans, "malformed reply");
			return 0;
		}
		r->type = get16(msg + off);
		uint16_t cls = get16(msg + off + 2);
		r->rdlen = get16(msg + off + 8);
		r->rdata = off + 10;
		off += 10 + r->rdlen;
		if (off > len) {
			set_error(ans, "malformed reply");
			return 0;
		}
		if (cls == CLASS_IN && nrr < 64)
			nrr++;
	}
	char want[NAME_MAX_TEXT];
	snprintf(want, sizeof(want), "%s", name);
	for (int hop = 0; hop < MAX_CNAME_HOPS; hop++) {
		bool moved = false;
		for (size_t i = 0; i < nrr && !moved; i++) {
			if (rrs[i].type != TYPE_CNAME || !dnscheck_host_equal(rrs[i].owner, want))
				continue;
			size_t p = rrs[i].rdata;
			if (!read_name(msg, len, &p, want, sizeof(want))) {
				set_error(ans, "malformed CNAME");
				return 0;
			}
			moved = true;
		}
		if (!moved)
			break;
	}
	for (size_t i = 0; i < nrr && ans->count < DNSCHECK_MAX_RECORDS; i++) {
		const struct rr *r = &rrs[i];
		if (r->type != qtype || !dnscheck_host_equal(r->owner, want))
			continue;
		struct dnscheck_record *out = &ans->rec[ans->count];
		bool ok;
		if (qtype == DNSCHECK_TYPE_MX) {
			size_t p = r->rdata + 2;
			ok = r->rdlen >= 3 && read_name(msg, len, &p, out->text, sizeof(out->text));
			if (ok)
				out->pref = get16(msg + r->rdata);
		} else {
			ok = read_txt(msg + r->rdata, r->rdlen, out->text, sizeof(out->text));
		}
		if (!ok) {
			set_error(ans, "malformed record");
			return 0;
		}
		ans->count++;
	}
	ans->error[0] = '\0';
	if (ans->count)
		ans->status = DNSCHECK_FOUND;
	else
		ans->status = rcode == 3 ? DNSCHECK_NXDOMAIN : DNSCHECK_NODATA;
	return 1;
}

bool dnscheck_parse_reply(const unsigned char *msg, size_t len, uint16_t id, const char *name,
			  uint16_t qtype, struct dnscheck_answer *ans)
{
	return parse(msg, len, id, name, qtype, ans) == 1;
}

/* ---- comparisons ---- */

int dnscheck_token_match(const struct dnscheck_answer *ans, const char *token)
{
	size_t tl = strlen(token);
	if (ans->status != DNSCHECK_FOUND || tl == 0)
		return -1;
	for (size_t i = 0; i < ans->count; i++) {
		const char *s = ans->rec[i].text;
		size_t n = strlen(s);
		while (n && (*s == ' ' || *s == '\t'))
			s++, n--;
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
			s++, n -= 2;
		if (n == tl && memcmp(s, token, tl) == 0)
			return (int)i;
	}
	return -1;
}

bool dnscheck_host_in_list(const char *host, const char *list)
{
	const char *p = list;
	char item[NAME_MAX_TEXT];
	while (*p) {
		p += strspn(p, ", \t");
		size_t n = strcspn(p, ", \t");
		if (n == 0)
			break;
		if (n < sizeof(item)) {
			memcpy(item, p, n);
			item[n] = '\0';
			if (dnscheck_host_equal(host, item))
				return true;
		}
		p += n;
	}
	return false;
}

bool dnscheck_proof_name(const char *domain, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, DNSCHECK_PROOF_LABEL ".%s", domain);
	return n > 0 && (size_t)n < outlen;
}

/* ---- the resolver ---- */

struct dnscheck_resolver {
	struct event_base *base;
	struct sockaddr_storage addr[MAX_SERVERS];
	socklen_t addrlen[MAX_SERVERS];
	char label[MAX_SERVERS][64]; /* "127.0.0.1:5353" for messages */
	int count;
	unsigned timeout_ms;
};

static void format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, outlen, "(address family %d)", sa->sa_family);
	}
}

/*
 * evdns (libevent 2.1) asks only for A, AAAA and PTR records, so it cannot send our TXT and
 * MX queries; it still reads the nameserver configuration, so "host:port" lists and
 * resolv.conf mean exactly what they mean to libevent, and we take its server list.
 */
struct dnscheck_resolver *dnscheck_resolver_new(struct event_base *base, const char *resolv_conf,
						const char *nameservers, unsigned timeout_ms, char *err,
						size_t errlen)
{
	struct evdns_base *evdns = evdns_base_new(base, 0);
	if (!evdns) {
		snprintf(err, errlen, "cannot set up evdns");
		return NULL;
	}
	if (nameservers && *nameservers) {
		const char *p = nameservers;
		while (*p) {
			p += strspn(p, ", \t");
			size_t n = strcspn(p, ", \t");
			if (n == 0)
				break;
			char item[128] = "";
			if (n < sizeof(item)) {
				memcpy(item, p, n);
				item[n] = '\0';
			}
			/* evdns parses with the same function, but would log its refusal to stderr */
			struct sockaddr_storage ss;
			int sslen = (int)sizeof(ss);
			if (!item[0] || evutil_parse_sockaddr_port(item, (struct sockaddr *)&ss, &sslen) != 0 ||
			    evdns_base_nameserver_ip_add(evdns, item) != 0) {
				snprintf(err, errlen, "bad nameserver \"%.*s\": expected IP or IP:PORT",
					 (int)(n > 100 ? 100 : n), p);
				evdns_base_free(evdns, 0);
				return NULL;
			}
			p += n;
		}
	} else {
		const char *path = resolv_conf && *resolv_conf ? resolv_conf : "/etc/resolv.conf";
		int rc = evdns_base_resolv_conf_parse(
			evdns, DNS_OPTION_NAMESERVERS | DNS_OPTION_NAMESERVERS_NO_DEFAULT, path);
		if (rc != 0) {
			snprintf(err, errlen, "%s: %s", path,
				 rc == 1 || rc == 2 ? "cannot read it"
				 : rc == 6	    ? "no \"nameserver\" line"
						    : "cannot parse it");
			evdns_base_free(evdns, 0);
			return NULL;
		}
	}
	struct dnscheck_resolver *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		evdns_base_free(evdns, 0);
		return NULL;
	}
	r->base = base;
	r->timeout_ms = timeout_ms ? timeout_ms : 1;
	int n = evdns_base_count_nameservers(evdns);
	for (int i = 0; i < n && r->count < MAX_SERVERS; i++) {
		int len = evdns_base_get_nameserver_addr(evdns, i, (struct sockaddr *)&r->addr[r->count],
							 sizeof(r->addr[0]));
		if (len <= 0 || (size_t)len > sizeof(r->addr[0]))
			continue;
		r->addrlen[r->count] = (socklen_t)len;
		format_addr((struct sockaddr *)&r->addr[r->count], r->label[r->count],
			    sizeof(r->label[0]));
		r->count++;
	}
	evdns_base_free(evdns, 0);
	if (r->count == 0) {
		snprintf(err, errlen, "no usable nameserver");
		free(r);
		return NULL;
	}
	return r;
}

void dnscheck_resolver_free(struct dnscheck_resolver *r)
{
	free(r);
}

/* One lookup: the servers are tried in turn, each once, until one gives an answer. */
struct query {
	struct dnscheck_resolver *res;
	char name[NAME_MAX_TEXT];
	uint16_t qtype, id;
	unsigned char msg[DNSCHECK_MSG_MAX];
	size_t msglen;
	int server; /* the one being asked */
	evutil_socket_t fd;
	struct event *ev;
	dnscheck_cb cb;
	void *arg;
	struct dnscheck_answer ans;
	char errors[256]; /* every server's failure, for the final message */
};

static void query_next(struct query *q);

static void query_close_attempt(struct query *q)
{
	if (q->ev) {
		event_free(q->ev);
		q->ev = NULL;
	}
	if (q->fd >= 0) {
		evutil_closesocket(q->fd);
		q->fd = -1;
	}
}

static void attempt_failed(struct query *q, const char *why)
{
	size_t used = strlen(q->errors);
	snprintf(q->errors + used, sizeof(q->errors) - used, "%s%s: %s", used ? "; " : "",
		 q->res->label[q->server], why);
	query_close_attempt(q);
	q->server++;
	query_next(q);
}

static void on_reply(evutil_socket_t fd, short what, void *arg)
{
	struct query *q = arg;
	char why[128];
	if (what & EV_TIMEOUT) {
		snprintf(why, sizeof(why), "no reply within %ums", q->res->timeout_ms);
		attempt_failed(q, why);
		return;
	}
	unsigned char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		int e = errno;
		if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) {
			struct timeval tv = { q->res->timeout_ms / 1000, (q->res->timeout_ms % 1000) * 1000 };
			event_add(q->ev, &tv);
			return;
		}
		/* on a connected UDP socket, ECONNREFUSED is the ICMP "port unreachable" */
		attempt_failed(q, e == ECONNREFUSED ? "connection refused (no DNS server there)"
						    : strerror(e));
		return;
	}
	int rc = parse(buf, (size_t)n, q->id, q->name, q->qtype, &q->ans);
	if (rc < 0) {
		/* someone else's datagram; the timer keeps running for ours */
		struct timeval tv = { q->res->timeout_ms / 1000, (q->res->timeout_ms % 1000) * 1000 };
		event_add(q->ev, &tv);
		return;
	}
	if (rc == 0) {
		attempt_failed(q, q->ans.error);
		return;
	}
	query_close_attempt(q);
	q->cb(&q->ans, q->arg);
	free(q);
}

static void on_all_failed(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct query *q = arg;
	query_close_attempt(q);
	memset(&q->ans, 0, sizeof(q->ans));
	q->ans.status = DNSCHECK_TEMPFAIL;
	snprintf(q->ans.error, sizeof(q->ans.error), "%s", q->errors[0] ? q->errors : "no nameserver");
	q->cb(&q->ans, q->arg);
	free(q);
}

static void query_next(struct query *q)
{
	struct dnscheck_resolver *r = q->res;
	if (q->server >= r->count) {
		/* through the loop, so the callback never runs inside dnscheck_query */
		q->ev = evtimer_new(r->base, on_all_failed, q);
		if (q->ev) {
			struct timeval zero = { 0, 0 };
			evtimer_add(q->ev, &zero);
		}
		return;
	}
	const struct sockaddr *sa = (const struct sockaddr *)&r->addr[q->server];
	q->fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0) {
		attempt_failed(q, strerror(errno));
		return;
	}
	/* connected: replies from elsewhere are dropped by the kernel, and ICMP errors reach us */
	if (connect(q->fd, sa, r->addrlen[q->server]) != 0 ||
	    send(q->fd, q->msg, q->msglen, 0) != (ssize_t)q->msglen) {
		attempt_failed(q, strerror(errno));
		return;
	}
	q->ev = event_new(r->base, q->fd, EV_READ, on_reply, q);
	struct timeval tv = { r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000 };
	if (!q->ev || event_add(q->ev, &tv) != 0)
		attempt_failed(q, "cannot wait for the reply");
}

bool dnscheck_query(struct dnscheck_resolver *r, const char *name, uint16_t qtype, dnscheck_cb cb,
		    void *arg, char *err, size_t errlen)
{
	struct query *q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	q->res = r;
	q->qtype = qtype;
	q->cb = cb;
	q->arg = arg;
	q->fd = -1;
	snprintf(q->name, sizeof(q->name), "%s", name);
	/* an unpredictable id, so a blind off-path answer is hard to forge */
	evutil_secure_rng_get_bytes(&q->id, sizeof(q->id));
	q->msglen = dnscheck_build_query(q->id, name, qtype, q->msg, sizeof(q->msg));
	if (!q->msglen) {
		snprintf(err, errlen, "\"%.100s\" is not a name that can be looked up", name);
		free(q);
		return false;
	}
	query_next(q);
	return true;
}

struct lookup_wait {
	struct dnscheck_answer *ans;
	bool done;
};

static void lookup_done(const struct dnscheck_answer *ans, void *arg)
{
	struct lookup_wait *w = arg;
	*w->ans = *ans;
	w->done = true;
}

void dnscheck_lookup(struct dnscheck_resolver *r, const char *name, uint16_t qtype,
		     struct dnscheck_answer *ans)
{
	struct lookup_wait w = { ans, false };
	memset(ans, 0, sizeof(*ans));
	if (!dnscheck_query(r, name, qtype, lookup_done, &w, ans->error, sizeof(ans->error))) {
		ans->status = DNSCHECK_TEMPFAIL;
		return;
	}
	while (!w.done)
		if (event_base_loop(r->base, EVLOOP_ONCE) != 0)
			break; /* error, or nothing left to wait for */
	if (!w.done) {
		ans->status = DNSCHECK_TEMPFAIL;
		snprintf(ans->error, sizeof(ans->error), "event loop failed");
	}
}
