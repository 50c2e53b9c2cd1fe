/*
 * policy: the Postfix SMTPD access policy delegation protocol.
 *
 * Request: "name=value\n" lines, ended by an empty line.  Values are raw (no
 * encoding) and never contain NUL or '\n'; Postfix 3.7 sends 29 attributes,
 * unknown ones must be ignored, and the order is not guaranteed.  Reply:
 * "action=<action>\n\n".  Limits (policy.h) are enforced while the request is
 * still arriving so that a peer cannot make us buffer more than
 * POLICY_MAX_REQUEST bytes.  Callers pass everything buffered so far with a
 * struct policy_scan that remembers the lines already checked, so each byte is
 * searched once however the request is split across reads.
 */
#include "vmail/policy.h"

#include <string.h>

static enum policy_status fail(const char **err, const char *why)
{
	if (err)
		*err = why;
	return POLICY_ERROR;
}

/* The offsets in struct policy_scan are 16 bits wide. */
_Static_assert(POLICY_MAX_REQUEST <= UINT16_MAX, "policy_scan offsets overflow");

/* fill_request - req's views into buf from the checked lines recorded in s */
static void fill_request(const char *buf, const struct policy_scan *s, struct policy_request *req)
{
	for (size_t i = 0; i < s->count; i++) {
		struct policy_attr *a = &req->attrs[i];
		a->name = buf + s->attr[i].name;
		a->name_len = (size_t)(s->attr[i].eq - s->attr[i].name);
		a->value = buf + s->attr[i].eq + 1;
		a->value_len = (size_t)(s->attr[i].end - s->attr[i].eq - 1);
	}
	req->count = s->count;
}

enum policy_status policy_parse(const char *buf, size_t len, struct policy_scan *scan,
				struct policy_request *req, size_t *consumed, const char **err)
{
	struct policy_scan one_shot = POLICY_SCAN_INIT;
	struct policy_scan *s = scan ? scan : &one_shot;

	req->count = 0;
	*consumed = 0;
	if (s->scanned > len || s->line > s->scanned)
		*s = one_shot; /* not a continuation of buf: start over */
	for (;;) {
		size_t pos = s->line;
		size_t limit = len - pos < POLICY_MAX_LINE + 1 ? len : pos + POLICY_MAX_LINE + 1;
		size_t from = s->scanned;
		const char *nl = memchr(buf + from, '\n', limit - from);
		size_t end = nl ? (size_t)(nl - buf) : limit;

		/* buf[pos..from) was searched by earlier calls: no NUL there. */
		if (memchr(buf + from, '\0', end - from))
			return fail(err, "NUL byte in policy request");
		if (!nl) {
			/* Incomplete line: fail now if it can no longer turn out valid. */
			if (len - pos > POLICY_MAX_LINE)
				return fail(err, "policy request line too long");
			if (len >= POLICY_MAX_REQUEST)
				return fail(err, "policy request too large");
			s->scanned = limit;
			return POLICY_NEED_MORE;
		}
		if (end + 1 > POLICY_MAX_REQUEST)
			return fail(err, "policy request too large");

		const char *line = buf + pos;
		size_t l = end - pos;
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (l == 0) {
			fill_request(buf, s, req);
			*consumed = end + 1;
			*s = one_shot;
			return POLICY_OK;
		}

		const char *eq = memchr(line, '=', l);
		if (!eq)
			return fail(err, "policy request line without '='");
		if (eq == line)
			return fail(err, "empty attribute name in policy request");
		if (s->count == POLICY_MAX_ATTRS)
			return fail(err, "too many attributes in policy request");

		s->attr[s->count].name = (uint16_t)pos;
		s->attr[s->count].eq = (uint16_t)(eq - buf);
		s->attr[s->count].end = (uint16_t)(pos + l);
		s->count++;
		s->line = s->scanned = end + 1;
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
