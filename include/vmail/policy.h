/* policy: Postfix SMTPD access policy delegation requests and replies, without I/O. */
#ifndef VMAIL_POLICY_H
#define VMAIL_POLICY_H

#include <stddef.h>

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
 * policy_parse - parse one request "name=value\n"... "\n" at the start of
 * buf[0..len).  POLICY_OK: req holds views into buf (valid while buf is) and
 * *consumed covers the request including its empty line.  POLICY_NEED_MORE:
 * no empty line yet and nothing wrong so far.  POLICY_ERROR: *err (if err is
 * not NULL) is a static description; limits are enforced as soon as they are
 * exceeded, before the rest of the request arrives.  One '\r' before '\n' is
 * tolerated and stripped.  A value may contain '='; the name ends at the first.
 * An empty line alone is a valid request with no attributes.
 */
enum policy_status policy_parse(const char *buf, size_t len, struct policy_request *req,
				size_t *consumed, const char **err);

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
