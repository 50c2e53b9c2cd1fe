/* dnscheck: TXT and MX lookups for domain ownership proof and delivery checks, on an event_base. */
#ifndef VMAIL_DNSCHECK_H
#define VMAIL_DNSCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define DNSCHECK_TYPE_MX 15
#define DNSCHECK_TYPE_TXT 16

#define DNSCHECK_MAX_RECORDS 32
#define DNSCHECK_TEXT_MAX 512   /* one TXT record (its strings joined) or one MX host */
#define DNSCHECK_MSG_MAX 1232   /* our EDNS0 UDP payload size (the DNS flag day value) */
#define DNSCHECK_PROOF_LABEL "_vmail-verify"

/*
 * The outcome of one lookup.  Only FOUND, NODATA and NXDOMAIN are answers; TEMPFAIL covers
 * everything that says nothing about the records (timeout, unreachable server, SERVFAIL,
 * REFUSED, a malformed or truncated reply), so callers never mistake an outage for "no record".
 */
enum dnscheck_status {
	DNSCHECK_FOUND,    /* one or more records of the asked type */
	DNSCHECK_NODATA,   /* the name exists but has no record of that type */
	DNSCHECK_NXDOMAIN, /* the name does not exist */
	DNSCHECK_TEMPFAIL,
};

struct dnscheck_record {
	char text[DNSCHECK_TEXT_MAX]; /* TXT: the strings joined; MX: the host, without trailing dot */
	unsigned pref;                /* MX preference; 0 for TXT */
};

struct dnscheck_answer {
	enum dnscheck_status status;
	size_t count;
	struct dnscheck_record rec[DNSCHECK_MAX_RECORDS];
	char error[256]; /* TEMPFAIL: what went wrong, e.g. "127.0.0.1:53: connection refused" */
};

const char *dnscheck_status_name(enum dnscheck_status s);

/* ---- pure: the wire format (RFC 1035), no I/O ---- */

/*
 * dnscheck_build_query - one query for name/qtype with recursion desired and an EDNS0 OPT
 * record.  Returns its length, or 0 when name is not a valid host name or out is too small.
 */
size_t dnscheck_build_query(uint16_t id, const char *name, uint16_t qtype, unsigned char *out,
			    size_t outlen);

/*
 * dnscheck_parse_reply - read a reply to the query (id, name, qtype) into *ans.  CNAMEs in the
 * answer section are followed.  Returns false (with ans->status TEMPFAIL and ans->error set)
 * when the bytes are not a usable reply to that query: wrong id or question, truncated (TC),
 * malformed, SERVFAIL, REFUSED or another error code.
 */
bool dnscheck_parse_reply(const unsigned char *msg, size_t len, uint16_t id, const char *name,
			  uint16_t qtype, struct dnscheck_answer *ans);

/* ---- pure: comparisons ---- */

/*
 * dnscheck_host_equal - host names compared as DNS does: ASCII case-insensitive, with or
 * without a trailing dot.
 */
bool dnscheck_host_equal(const char *a, const char *b);

/*
 * dnscheck_token_match - index of the first TXT record that is the token, or -1.  Blanks
 * around the record and one pair of quotes (a customer who typed them into a DNS panel that
 * adds its own) are ignored; the token itself must match exactly, case-sensitively.
 */
int dnscheck_token_match(const struct dnscheck_answer *ans, const char *token);

/*
 * dnscheck_host_in_list - is host one of the hosts in list (separated by commas and/or
 * blanks), compared with dnscheck_host_equal?
 */
bool dnscheck_host_in_list(const char *host, const char *list);

/* dnscheck_proof_name - "_vmail-verify.<domain>" into out; false when it does not fit */
bool dnscheck_proof_name(const char *domain, char *out, size_t outlen);

/* ---- asynchronous lookups ---- */

struct dnscheck_resolver;

/*
 * dnscheck_resolver_new - nameservers for lookups on base: those in the comma- or
 * blank-separated list nameservers ("127.0.0.1:5353, [::1]:53"; port 53 by default) when it
 * is not empty, else the "nameserver" lines of resolv_conf.  Both are read by evdns, so they
 * mean what they mean to libevent.  timeout_ms bounds each attempt; every server is tried
 * once, in order, until one answers.  NULL with err set when there is no usable server.
 */
struct dnscheck_resolver *dnscheck_resolver_new(struct event_base *base, const char *resolv_conf,
						const char *nameservers, unsigned timeout_ms, char *err,
						size_t errlen);
void dnscheck_resolver_free(struct dnscheck_resolver *r);

typedef void (*dnscheck_cb)(const struct dnscheck_answer *ans, void *arg);

/*
 * dnscheck_query - start a lookup of name/qtype; cb runs exactly once, from the event loop,
 * with the answer (TEMPFAIL when every server failed).  False (and no callback) only when the
 * lookup cannot even start (bad name, out of memory), with err set.
 */
bool dnscheck_query(struct dnscheck_resolver *r, const char *name, uint16_t qtype, dnscheck_cb cb,
		    void *arg, char *err, size_t errlen);

/* dnscheck_lookup - dnscheck_query and run r's event_base until the answer is in */
void dnscheck_lookup(struct dnscheck_resolver *r, const char *name, uint16_t qtype,
		     struct dnscheck_answer *ans);

#endif
