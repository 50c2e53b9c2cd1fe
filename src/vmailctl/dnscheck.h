/* dnscheck: DNS lookups for vmailctl (ownership proof, MX, client-setup records) and their comparisons. */
#ifndef VMAIL_DNSCHECK_H
#define VMAIL_DNSCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSCHECK_TYPE_A 1
#define DNSCHECK_TYPE_CNAME 5
#define DNSCHECK_TYPE_MX 15
#define DNSCHECK_TYPE_TXT 16
#define DNSCHECK_TYPE_AAAA 28
#define DNSCHECK_TYPE_SRV 33

#define DNSCHECK_MAX_RECORDS 32
#define DNSCHECK_TEXT_MAX 512   /* one TXT record (its strings joined), one host or one address */
#define DNSCHECK_NAME_MAX 256   /* a dotted name: 253 characters, with room to spare */
#define DNSCHECK_MSG_MAX 1232   /* the EDNS0 UDP payload size we offer (the DNS flag day value) */
#define DNSCHECK_PROOF_LABEL "_vmail-verify"

/*
 * The outcome of one lookup.  Only FOUND, NODATA and NXDOMAIN are answers; TEMPFAIL covers
 * everything that says nothing about the records (timeout, unreachable server, SERVFAIL,
 * REFUSED, a malformed reply), so callers never mistake an outage for "no record".
 */
enum dnscheck_status {
	DNSCHECK_FOUND,    /* one or more records of the asked type */
	DNSCHECK_NODATA,   /* the name exists but has no record of that type */
	DNSCHECK_NXDOMAIN, /* the name does not exist */
	DNSCHECK_TEMPFAIL,
};

/*
 * One record.  text: TXT the strings joined; MX, SRV and CNAME the host, without the trailing
 * dot ("." for SRV's "no such service"); A and AAAA the address as inet_ntop writes it.
 */
struct dnscheck_record {
	char text[DNSCHECK_TEXT_MAX];
	unsigned pref;   /* MX preference, SRV priority; else 0 */
	unsigned weight; /* SRV */
	unsigned port;   /* SRV */
};

struct dnscheck_answer {
	enum dnscheck_status status;
	size_t count;
	struct dnscheck_record rec[DNSCHECK_MAX_RECORDS];
	char canonical[DNSCHECK_NAME_MAX]; /* the name the records belong to, after CNAMEs */
	char error[256]; /* TEMPFAIL: what went wrong, e.g. "127.0.0.1:53: connection refused" */
};

const char *dnscheck_status_name(enum dnscheck_status s);

/* ---- pure: no I/O ---- */

/* dnscheck_name_valid - a host or service name we may ask for: LDH labels, '_' allowed */
bool dnscheck_name_valid(const char *name);

/*
 * dnscheck_parse_reply - read a DNS reply to the question (name, qtype) into *ans, with
 * libresolv's message parser.  CNAMEs in the answer section are followed from name, and only
 * records owned by the end of that chain count (for a CNAME question: the first link).
 * Returns false (ans->status TEMPFAIL, ans->error set) when the bytes are no answer to that
 * question: another question, truncated (TC), malformed, SERVFAIL, REFUSED or another error.
 */
bool dnscheck_parse_reply(const unsigned char *msg, size_t len, const char *name, uint16_t qtype,
			  struct dnscheck_answer *ans);

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

/* ---- lookups (c-ares), blocking: only vmailctl asks, one question at a time ---- */

struct dnscheck_resolver;

/*
 * dnscheck_resolver_new - a resolver asking the servers in the comma- or blank-separated
 * list nameservers ("127.0.0.1:5353, [::1]:53"; port 53 by default) when it is not empty,
 * else the "nameserver" lines of resolv_conf (/etc/resolv.conf when NULL or empty).
 * timeout_ms bounds each attempt; every server is asked once, in order, until one answers.
 * NULL with err set when there is no usable server.
 */
struct dnscheck_resolver *dnscheck_resolver_new(const char *resolv_conf, const char *nameservers,
						unsigned timeout_ms, char *err, size_t errlen);
void dnscheck_resolver_free(struct dnscheck_resolver *r);

/* dnscheck_lookup - ask name/qtype and wait for the answer (TEMPFAIL when no server gave one) */
void dnscheck_lookup(struct dnscheck_resolver *r, const char *name, uint16_t qtype,
		     struct dnscheck_answer *ans);

#endif
