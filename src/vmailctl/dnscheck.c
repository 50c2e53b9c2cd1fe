/*
 * dnscheck: vmailctl's DNS questions.  c-ares asks (servers, ports, timeouts, retries over
 * TCP), libresolv's message parser reads the reply; this file owns what counts as an answer
 * (only FOUND, NODATA, NXDOMAIN), how CNAMEs are followed, and the comparisons that
 * "domain verify" and "domain check" make.
 */
#define CARES_NO_DEPRECATED /* the calls below exist in c-ares 1.18 (Debian 12) and 1.34 (13) */
#include "dnscheck.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>

#define MAX_SERVERS 8
#define MAX_CNAME_HOPS 8

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

static bool label_char(unsigned char c)
{
	/* '_' for service labels such as _vmail-verify and _imaps._tcp */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

bool dnscheck_name_valid(const char *name)
{
	size_t total = 0;
	const char *p = name;
	if (!*p || strcmp(p, ".") == 0)
		return false; /* the root has no record we would ask for */
	while (*p) {
		size_t n = strcspn(p, ".");
		if (n == 0 || n > 63)
			return false;
		for (size_t i = 0; i < n; i++)
			if (!label_char((unsigned char)p[i]))
				return false;
		total += n + 1;
		p += n;
		if (*p == '.')
			p++;
	}
	return total + 1 <= 255; /* the wire form: labels with their lengths, and the root */
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

/* ---- reading a reply ---- */

static bool fail(struct dnscheck_answer *ans, const char *why)
{
	ans->status = DNSCHECK_TEMPFAIL;
	ans->count = 0;
	snprintf(ans->error, sizeof(ans->error), "%s", why);
	return false;
}

/*
 * A name from a record, for messages and comparisons: libresolv writes it in presentation
 * form ("\." for a dot inside a label, "\DDD" for other bytes), which keeps it printable.
 */
static bool rdata_name(const ns_msg *h, const unsigned char *p, char *out, size_t outlen)
{
	char name[NS_MAXDNAME];
	if (ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), p, name, sizeof(name)) < 0)
		return false;
	return snprintf(out, outlen, "%s", strcmp(name, "") == 0 ? "." : name) < (int)outlen;
}

/* TXT rdata: character-strings joined as RFC 7208 does; control bytes become '?' for printing */
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

/* One record's data into *out; false when it does not hold what its type says. */
static bool read_record(const ns_msg *h, const ns_rr *rr, struct dnscheck_record *out)
{
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t n = ns_rr_rdlen(*rr);
	memset(out, 0, sizeof(*out));
	switch (ns_rr_type(*rr)) {
	case ns_t_txt:
		return read_txt(rd, n, out->text, sizeof(out->text));
	case ns_t_mx:
		out->pref = ns_get16(rd);
		return n >= 3 && rdata_name(h, rd + 2, out->text, sizeof(out->text));
	case ns_t_srv:
		if (n < 7)
			return false;
		out->pref = ns_get16(rd);
		out->weight = ns_get16(rd + 2);
		out->port = ns_get16(rd + 4);
		return rdata_name(h, rd + 6, out->text, sizeof(out->text));
	case ns_t_cname:
		return rdata_name(h, rd, out->text, sizeof(out->text));
	case ns_t_a:
		return n == 4 && inet_ntop(AF_INET, rd, out->text, sizeof(out->text));
	case ns_t_aaaa:
		return n == 16 && inet_ntop(AF_INET6, rd, out->text, sizeof(out->text));
	default:
		return false;
	}
}

bool dnscheck_parse_reply(const unsigned char *msg, size_t len, const char *name, uint16_t qtype,
			  struct dnscheck_answer *ans)
{
	ns_msg h;
	ns_rr rr;
	memset(ans, 0, sizeof(*ans));
	if (len > 65535 || ns_initparse(msg, (int)len, &h) < 0)
		return fail(ans, "malformed reply");
	if (!ns_msg_getflag(h, ns_f_qr) || ns_msg_count(h, ns_s_qd) != 1 ||
	    ns_parserr(&h, ns_s_qd, 0, &rr) < 0 || !dnscheck_host_equal(ns_rr_name(rr), name) ||
	    ns_rr_type(rr) != qtype || ns_rr_class(rr) != ns_c_in)
		return fail(ans, "not a reply to our question");
	if (ns_msg_getflag(h, ns_f_tc))
		return fail(ans, "truncated reply");
	int rcode = ns_msg_getflag(h, ns_f_rcode);
	if (rcode == ns_r_servfail)
		return fail(ans, "server failure (SERVFAIL)");
	if (rcode == ns_r_refused)
		return fail(ans, "query refused (REFUSED)");
	if (rcode != ns_r_noerror && rcode != ns_r_nxdomain) {
		char code[32];
		snprintf(code, sizeof(code), "error code %d", rcode);
		return fail(ans, code);
	}

	/*
	 * The answer section, read whole first (so that bad framing anywhere is an error), then
	 * once per CNAME hop from the question's name, then once for the records of that name.
	 * libresolv parses in order, so each pass is linear.
	 */
	int ancount = ns_msg_count(h, ns_s_an);
	for (int i = 0; i < ancount; i++)
		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return fail(ans, "malformed reply");
	snprintf(ans->canonical, sizeof(ans->canonical), "%s", name);
	for (int hop = 0; qtype != ns_t_cname && hop < MAX_CNAME_HOPS; hop++) {
		bool moved = false;
		for (int i = 0; i < ancount && !moved; i++) {
			if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
				return fail(ans, "malformed reply");
			if (ns_rr_type(rr) != ns_t_cname || ns_rr_class(rr) != ns_c_in ||
			    !dnscheck_host_equal(ns_rr_name(rr), ans->canonical))
				continue;
			if (!rdata_name(&h, ns_rr_rdata(rr), ans->canonical, sizeof(ans->canonical)))
				return fail(ans, "malformed CNAME");
			moved = true;
		}
		if (!moved)
			break;
	}
	for (int i = 0; i < ancount && ans->count < DNSCHECK_MAX_RECORDS; i++) {
		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return fail(ans, "malformed reply");
		if (ns_rr_type(rr) != qtype || ns_rr_class(rr) != ns_c_in ||
		    !dnscheck_host_equal(ns_rr_name(rr), ans->canonical))
			continue;
		if (!read_record(&h, &rr, &ans->rec[ans->count]))
			return fail(ans, "malformed record");
		ans->count++;
	}
	if (ans->count)
		ans->status = DNSCHECK_FOUND;
	else
		ans->status = rcode == ns_r_nxdomain ? DNSCHECK_NXDOMAIN : DNSCHECK_NODATA;
	return true;
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
	char item[DNSCHECK_NAME_MAX];
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
	ares_channel ch;
	struct ares_addr_port_node server[MAX_SERVERS];
	char label[MAX_SERVERS][64]; /* "127.0.0.1:5353" for messages */
	int count;
	unsigned timeout_ms;
	struct pollfd fds[ARES_GETSOCK_MAXNUM]; /* the sockets c-ares wants watched */
	int nfds;
};

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dnscheck_resolver *r = data;
	int i = 0;
	while (i < r->nfds && r->fds[i].fd != fd)
		i++;
	if (!readable && !writable) {
		if (i < r->nfds)
			r->fds[i] = r->fds[--r->nfds];
		return;
	}
	if (i == r->nfds) {
		if (r->nfds == ARES_GETSOCK_MAXNUM)
			return; /* one question at a time never needs that many */
		r->nfds++;
	}
	r->fds[i].fd = fd;
	r->fds[i].events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
}

static void label_of(const struct ares_addr_port_node *s, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = s->udp_port ? (unsigned)s->udp_port : 53;
	inet_ntop(s->family, &s->addr, host, sizeof(host));
	snprintf(out, outlen, s->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* The servers as c-ares read them from resolv.conf or our list; false when there are none. */
static bool take_servers(struct dnscheck_resolver *r)
{
	struct ares_addr_port_node *list = NULL;
	if (ares_get_servers_ports(r->ch, &list) != ARES_SUCCESS)
		return false;
	for (struct ares_addr_port_node *s = list; s && r->count < MAX_SERVERS; s = s->next) {
		r->server[r->count] = *s;
		r->server[r->count].next = NULL;
		label_of(s, r->label[r->count], sizeof(r->label[0]));
		r->count++;
	}
	ares_free_data(list);
	return r->count > 0;
}

/* The servers of a comma- or blank-separated list, item by item so that a bad one is named. */
static bool set_servers(struct dnscheck_resolver *r, const char *list, char *err, size_t errlen)
{
	char csv[1024] = "";
	size_t used = 0;
	for (const char *p = list; *p;) {
		p += strspn(p, ", \t");
		size_t n = strcspn(p, ", \t");
		if (n == 0)
			break;
		char item[128];
		snprintf(item, sizeof(item), "%.*s", (int)(n < sizeof(item) ? n : sizeof(item) - 1), p);
		if (n >= sizeof(item) || (!strchr(item, '.') && !strchr(item, ':')) ||
		    ares_set_servers_ports_csv(r->ch, item) != ARES_SUCCESS || used + n + 2 > sizeof(csv)) {
			snprintf(err, errlen, "bad nameserver \"%.*s\": expected IP or IP:PORT",
				 (int)(n > 100 ? 100 : n), p);
			return false;
		}
		used += (size_t)snprintf(csv + used, sizeof(csv) - used, "%s%s", used ? "," : "", item);
		p += n;
	}
	if (ares_set_servers_ports_csv(r->ch, csv) != ARES_SUCCESS) {
		snprintf(err, errlen, "bad nameserver list \"%.100s\"", list);
		return false;
	}
	if (!take_servers(r)) {
		snprintf(err, errlen, "no usable nameserver");
		return false;
	}
	return true;
}

/*
 * The servers of resolv.conf's "nameserver" lines, blank-separated into out.  Read here rather
 * than by c-ares, which would quietly ask 127.0.0.1 when there is none, and which ignores the
 * "IP:PORT" form that libevent (and so earlier vmailctl configurations) accepted.
 */
static bool resolv_conf_servers(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read it", path);
		return false;
	}
	char line[512];
	size_t used = 0;
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		const char *p = line + strspn(line, " \t");
		if (strncmp(p, "nameserver", 10) != 0 || (p[10] != ' ' && p[10] != '\t'))
			continue;
		p += 10 + strspn(p + 10, " \t");
		size_t n = strcspn(p, " \t\r\n#;");
		if (n && used + n + 2 <= outlen)
			used += (size_t)snprintf(out + used, outlen - used, "%s%.*s", used ? " " : "", (int)n, p);
	}
	fclose(f);
	if (!used)
		snprintf(err, errlen, "%s: no \"nameserver\" line", path);
	return used > 0;
}

struct dnscheck_resolver *dnscheck_resolver_new(const char *resolv_conf, const char *nameservers,
						unsigned timeout_ms, char *err, size_t errlen)
{
	static bool initialised;
	if (!initialised && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		snprintf(err, errlen, "cannot initialise c-ares");
		return NULL;
	}
	initialised = true;
	char from_file[512];
	if (!nameservers || !nameservers[strspn(nameservers, ", \t")]) {
		const char *path = resolv_conf && *resolv_conf ? resolv_conf : "/etc/resolv.conf";
		if (!resolv_conf_servers(path, from_file, sizeof(from_file), err, errlen))
			return NULL;
		nameservers = from_file;
	}
	struct dnscheck_resolver *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->timeout_ms = timeout_ms ? timeout_ms : 1;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	/*
	 * Each server once, no search list, EDNS0: we ask exact names and report every failure.
	 * NOCHECKRESP: a SERVFAIL or REFUSED reply reaches our parser, which says so; c-ares 1.18
	 * would otherwise drop it and report the query as "connection refused".
	 */
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS | ARES_FLAG_NOCHECKRESP;
	o.timeout = (int)r->timeout_ms;
	o.tries = 1;
	o.ndomains = 0;
	o.ednspsz = DNSCHECK_MSG_MAX;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = r;
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS |
		   ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_STATE_CB;
#ifdef ARES_OPT_QUERY_CACHE
	/* c-ares 1.23 and later cache answers; a check asks what DNS says now */
	o.qcache_max_ttl = 0;
	mask |= ARES_OPT_QUERY_CACHE;
#endif
	int rc = ares_init_options(&r->ch, &o, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(r);
		return NULL;
	}
	if (!set_servers(r, nameservers, err, errlen)) {
		dnscheck_resolver_free(r);
		return NULL;
	}
	return r;
}

void dnscheck_resolver_free(struct dnscheck_resolver *r)
{
	if (!r)
		return;
	if (r->ch)
		ares_destroy(r->ch);
	free(r);
}

struct wait {
	struct dnscheck_answer *ans;
	const char *name;
	uint16_t qtype;
	unsigned timeout_ms;
	bool done;
};

/* What one server said, into w->ans: an answer, or TEMPFAIL and why. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	struct wait *w = arg;
	struct dnscheck_answer *ans = w->ans;
	w->done = true;
	if (abuf && alen > 0 && status != ARES_ECANCELLED && status != ARES_EDESTRUCTION) {
		dnscheck_parse_reply(abuf, (size_t)alen, w->name, w->qtype, ans);
		return;
	}
	memset(ans, 0, sizeof(*ans));
	snprintf(ans->canonical, sizeof(ans->canonical), "%s", w->name);
	switch (status) {
	case ARES_ENOTFOUND:
		ans->status = DNSCHECK_NXDOMAIN;
		return;
	case ARES_ENODATA:
		ans->status = DNSCHECK_NODATA;
		return;
	case ARES_ETIMEOUT:
		snprintf(ans->error, sizeof(ans->error), "no reply within %ums", w->timeout_ms);
		break;
	case ARES_ECONNREFUSED:
		snprintf(ans->error, sizeof(ans->error), "connection refused (no DNS server there)");
		break;
	case ARES_ESERVFAIL:
		snprintf(ans->error, sizeof(ans->error), "server failure (SERVFAIL)");
		break;
	case ARES_EREFUSED:
		snprintf(ans->error, sizeof(ans->error), "query refused (REFUSED)");
		break;
	default:
		snprintf(ans->error, sizeof(ans->error), "%s", ares_strerror(status));
		break;
	}
	ans->status = DNSCHECK_TEMPFAIL;
}

/* Drive c-ares until the callback ran; c-ares bounds every attempt by its timeout. */
static void run(struct dnscheck_resolver *r, struct wait *w)
{
	while (!w->done) {
		struct timeval tv, *t = ares_timeout(r->ch, NULL, &tv);
		int ms = t ? (int)(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000) : 1000;
		int n = poll(r->fds, (nfds_t)r->nfds, ms);
		if (n <= 0) {
			ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
			continue;
		}
		struct pollfd ready[ARES_GETSOCK_MAXNUM];
		int nready = r->nfds;
		memcpy(ready, r->fds, sizeof(ready[0]) * (size_t)nready); /* the callbacks edit r->fds */
		for (int i = 0; i < nready; i++) {
			short ev = ready[i].revents;
			if (!ev)
				continue;
			ares_process_fd(r->ch, ev & (POLLIN | POLLERR | POLLHUP) ? ready[i].fd : ARES_SOCKET_BAD,
					ev & POLLOUT ? ready[i].fd : ARES_SOCKET_BAD);
		}
	}
}

/* append - s at the end of buf, cut to fit: the failures of several servers in one message */
static void append(char *buf, size_t size, const char *s)
{
	size_t used = strlen(buf), n = strlen(s);
	if (used + 1 >= size)
		return;
	if (n > size - used - 1)
		n = size - used - 1;
	memcpy(buf + used, s, n);
	buf[used + n] = '\0';
}

void dnscheck_lookup(struct dnscheck_resolver *r, const char *name, uint16_t qtype,
		     struct dnscheck_answer *ans)
{
	memset(ans, 0, sizeof(*ans));
	if (!dnscheck_name_valid(name)) {
		ans->status = DNSCHECK_TEMPFAIL;
		snprintf(ans->error, sizeof(ans->error), "\"%.100s\" is not a name that can be looked up", name);
		return;
	}
	/* each server in turn, so that every failure is told with the server that failed */
	char errors[sizeof(ans->error)] = "";
	for (int i = 0; i < r->count; i++) {
		struct wait w = { ans, name, qtype, r->timeout_ms, false };
		if (ares_set_servers_ports(r->ch, &r->server[i]) != ARES_SUCCESS) {
			snprintf(ans->error, sizeof(ans->error), "cannot select the server");
			ans->status = DNSCHECK_TEMPFAIL;
		} else {
			ares_query(r->ch, name, ns_c_in, qtype, on_answer, &w);
			run(r, &w);
		}
		if (ans->status != DNSCHECK_TEMPFAIL)
			return;
		if (errors[0])
			append(errors, sizeof(errors), "; ");
		append(errors, sizeof(errors), r->label[i]);
		append(errors, sizeof(errors), ": ");
		append(errors, sizeof(errors), ans->error);
	}
	memset(ans, 0, sizeof(*ans));
	ans->status = DNSCHECK_TEMPFAIL;
	snprintf(ans->error, sizeof(ans->error), "%s", errors[0] ? errors : "no nameserver");
}
