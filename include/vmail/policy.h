/* policy: Postfix SMTPD access policy delegation requests and replies, without I/O. */
#ifndef VMAIL_POLICY_H
#define VMAIL_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_LINE    4096  /* bytes of one line, without its '\n' */
#define POLICY_MAX_ATTRS   64    /* Postfix 3.7 sends 29 */
#define POLICY_MAX_REQUEST 32768 /* whole request including the empty line */

enum policy_status {
	POLICY_NEED_MORE,
	POLICY_OK,
	POLICY_ERROR,
};

/* Views into the parsed buffer; neither is NUL-terminated. */
struct policy_attr {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct policy_request {
	struct policy_attr attrs[POLICY_MAX_ATTRS];
	size_t count; /* in arrival order, duplicates kept */
};

/*
 * What earlier calls learnt about the request at the start of the buffer, so that a request
 * arriving in pieces is searched once, not once per piece: the complete lines (checked, with
 * where their parts are) and how far the incomplete one was searched for its '\n'.  Zero it
 * (or use POLICY_SCAN_INIT) before the first piece of a connection; policy_parse keeps it.
 */
struct policy_scan {
	size_t line;    /* start of the first line without its '\n' yet */
	size_t scanned; /* buf[line..scanned) holds no '\n' and no NUL */
	size_t count;   /* complete attribute lines before line */
	struct {
		uint16_t name, eq, end; /* offsets: line start, its '=', value end */
	} attr[POLICY_MAX_ATTRS];
};

#define POLICY_SCAN_INIT { 0 }

/*
 * policy_parse - parse one request "name=value\n"... "\n" at the start of
 * buf[0..len).  POLICY_OK: req holds views into buf (valid while buf is) and
 * *consumed covers the request including its empty line.  POLICY_NEED_MORE:
 * no empty line yet and nothing wrong so far.  POLICY_ERROR: *err (if err is
 * not NULL) is a static description; limits are enforced as soon as they are
 * exceeded, before the rest of the request arrives.  One '\r' before '\n' is
 * tolerated and stripped.  A value may contain '='; the name ends at the first.
 * An empty line alone is a valid request with no attributes.
 *
 * scan (NULL for a one-shot parse) resumes where the previous call on the same
 * request stopped: between calls the caller may only append to buf (it may
 * move).  It is reset on POLICY_OK, when the caller drains *consumed bytes.
 * The result is the one a one-shot parse of buf[0..len) gives.
 */
enum policy_status policy_parse(const char *buf, size_t len, struct policy_scan *scan,
				struct policy_request *req, size_t *consumed, const char **err);

/*
 * policy_request_get - value of attribute name (exact, case-sensitive match)
 * or NULL if absent; *value_len gets its length.  When a name repeats, the
 * last occurrence wins.
 */
const char *policy_request_get(const struct policy_request *req, const char *name,
			       size_t *value_len);

/*
 * policy_format_reply - write "action=<action>\n\n" to out and return its
 * length, or 0 if it does not fit in cap or action is empty or contains '\n'
 * or NUL (either would break the reply framing).
 */
size_t policy_format_reply(char *out, size_t cap, const char *action, size_t action_len);

#endif
