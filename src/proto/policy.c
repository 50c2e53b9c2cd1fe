/*
 * policy: the Postfix SMTPD access policy delegation protocol.
 *
 * Request: "name=value\n" lines, ended by an empty line.  Values are raw (no
 * encoding) and never contain NUL or '\n'; Postfix 3.7 sends 29 attributes,
 * unknown ones must be ignored, and the order is not guaranteed.  Reply:
 * "action=<action>\n\n".  Limits (policy.h) are enforced while the request is
 * still arriving so that a peer cannot make us buffer more than
 * POLICY_MAX_REQUEST bytes.  The parser is stateless: callers pass everything
 * buffered so far, which rescans at most POLICY_MAX_REQUEST bytes per call.
 */
#include "vmail/policy.h"

#include <string.h>

static enum policy_status fail(const char **err, const char *why)
{
	if (err)
		*err = why;
	return POLICY_ERROR;
}

enum policy_status policy_parse(const char *buf, size_t len, struct policy_request *req,
				size_t *consumed, const char **err)
{
	size_t pos = 0;

	req->count = 0;
	*consumed = 0;
	for (;;) {
		const char *line = buf + pos;
		size_t avail = len - pos;
		size_t scan = avail < POLICY_MAX_LINE + 1 ? avail : POLICY_MAX_LINE + 1;
		const char *nl = memchr(line, '\n', scan);

		if (!nl) {
			/* Incomplete line: fail now if it can no longer turn out valid. */
			if (memchr(line, '\0', scan))
				return fail(err, "NUL byte in policy request");
			if (avail > POLICY_MAX_LINE)
				return fail(err, "policy request line too long");
			if (len >= POLICY_MAX_REQUEST)
				return fail(err, "policy request too large");
			return POLICY_NEED_MORE;
		}

		size_t raw_len = (size_t)(nl - line);
		size_t end = pos + raw_len + 1;
		if (end > POLICY_MAX_REQUEST)
			return fail(err, "policy request too large");
		if (memchr(line, '\0', raw_len))
			return fail(err, "NUL byte in policy request");
		size_t l = raw_len;
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (l == 0) {
			*consumed = end;
			return POLICY_OK;
		}

		const char *eq = memchr(line, '=', l);
		if (!eq)
			return fail(err, "policy request line without '='");
		if (eq == line)
			return fail(err, "empty attribute name in policy request");
		if (req->count == POLICY_MAX_ATTRS)
			return fail(err, "too many attributes in policy request");

		struct policy_attr *a = &req->attrs[req->count++];
		a->name = line;
		a->name_len = (size_t)(eq - line);
		a->value = eq + 1;
		a->value_len = l - a->name_len - 1;
		pos = end;
	}
}

const char *policy_request_get(const struct policy_request *req, const char *name,
			       size_t *value_len)
{
	size_t nlen = strlen(name);

	for (size_t i = req->count; i > 0; i--) {
		const struct policy_attr *a = &req->attrs[i - 1];
		if (a->name_len == nlen && memcmp(a->name, name, nlen) == 0) {
			if (value_len)
				*value_len = a->value_len;
			return a->value;
		}
	}
	if (value_len)
		*value_len = 0;
	return NULL;
}

size_t policy_format_reply(char *out, size_t cap, const char *action, size_t action_len)
{
	static const char prefix[] = "action=";
	size_t plen = sizeof(prefix) - 1;

	if (action_len == 0 || memchr(action, '\n', action_len) || memchr(action, '\0', action_len))
		return 0;
	if (cap < plen + 2 || action_len > cap - plen - 2)
		return 0;
	memcpy(out, prefix, plen);
	memcpy(out + plen, action, action_len);
	out[plen + action_len] = '\n';
	out[plen + action_len + 1] = '\n';
	return plen + action_len + 2;
}
