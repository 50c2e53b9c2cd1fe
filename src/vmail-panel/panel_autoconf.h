/*
 * panel_autoconf: mail programs' automatic configuration, pure (no I/O, no state): the
 * Outlook autodiscover request reader and the three answers (Thunderbird autoconfig,
 * Outlook autodiscover, Apple configuration profile), drawn from vmail.client_setup's rows.
 */
#ifndef VMAIL_PANEL_AUTOCONF_H
#define VMAIL_PANEL_AUTOCONF_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

#define AUTOCONF_MAX_BODY 8192    /* an autodiscover request body; larger is refused */
#define AUTOCONF_MAX_ADDRESS 254  /* an e-mail address */
#define AUTOCONF_MAX_SERVERS 6

/* One row of vmail.client_setup(address), in its order (implicit TLS first). */
struct autoconf_server {
	const char *service;  /* imaps imap pop3s pop3 submissions submission */
	const char *protocol; /* imap pop3 smtp */
	const char *host;
	unsigned port;
	const char *security; /* ssl starttls */
};

/* What every answer is drawn from: the rows, and the values the rows repeat. */
struct autoconf_setup {
	const char *username;     /* the address as asked, lower-cased: the login to type */
	const char *domain;       /* its domain */
	const char *service_name; /* the ISP's name for the service (settings.service_name) */
	size_t n;
	struct autoconf_server srv[AUTOCONF_MAX_SERVERS];
};

enum autoconf_req {
	AUTOCONF_REQ_OK = 0,
	AUTOCONF_REQ_TOO_LARGE,  /* body over AUTOCONF_MAX_BODY */
	AUTOCONF_REQ_MALFORMED,  /* not well-formed as far as read, or not an autodiscover Request */
	AUTOCONF_REQ_DTD,        /* <!DOCTYPE or <!ENTITY anywhere */
	AUTOCONF_REQ_PI,         /* a processing instruction other than the XML declaration */
	AUTOCONF_REQ_NO_ADDRESS, /* no (or an empty, or an over-long) Request/EMailAddress */
};

/* autoconf_req_reason - a short English reason for a 4xx answer */
const char *autoconf_req_reason(enum autoconf_req r);

/*
 * autoconf_parse_request - the EMailAddress of an Outlook autodiscover request
 * (Autodiscover/Request/EMailAddress, any namespace prefixes), whitespace trimmed, into
 * addr.  Reads body[0..len) only (no NUL needed); no entity is expanded except the five
 * predefined ones and character references.
 */
enum autoconf_req autoconf_parse_request(const char *body, size_t len, char *addr, size_t addrlen);

/* autoconf_write_thunderbird - config-v1.1.xml (clientConfig version 1.1) for s */
void autoconf_write_thunderbird(struct evbuffer *out, const struct autoconf_setup *s);

/* autoconf_write_autodiscover - the 2006 autodiscover response (outlook 2006a schema) for s */
void autoconf_write_autodiscover(struct evbuffer *out, const struct autoconf_setup *s);

/*
 * autoconf_write_apple - an Apple configuration profile (.mobileconfig, XML property list)
 * for the mailbox email whose login is login (the shell account's Unix login, or the
 * address), with PayloadUUIDs that are UUIDv5 of the address (stable across downloads) and
 * no password.  The IMAP server is the first imap row of s, the SMTP server the first smtp
 * row; false (nothing written) when s has no IMAP or no SMTP server, or email is empty or
 * longer than AUTOCONF_MAX_ADDRESS.
 */
bool autoconf_write_apple(struct evbuffer *out, const struct autoconf_setup *s, const char *email,
			  const char *login);

#endif
