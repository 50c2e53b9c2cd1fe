/*
 * socketmap: the Postfix socketmap protocol on top of netstring framing.
 *
 * Request payload: "<name> <key>" (one space; the key may itself contain
 * spaces and arrives in the case the SMTP client used).  Reply payload:
 * "OK <value>", "NOTFOUND ", "TEMP <reason>", "TIMEOUT <reason>" or
 * "PERM <reason>".  Postfix compares the first word case-sensitively, reads
 * "OK" without a space as not found and "OK " with empty data as a
 * configuration error, logs at most 200 reason bytes, and rejects replies over
 * 100000 payload bytes.  Nothing follows the closing ','.
 */
#include "vmail/socketmap.h"

#include "vmail/netstring.h"
#include "vmail/utf8.h"

#include <string.h>

static bool fail(const char **err, const char *why)
{
	if (err)
		*err = why;
	return false;
}

static bool is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

bool socketmap_parse_request(const char *payload, size_t len, struct socketmap_request *req,
			     const char **err)
{
	memset(req, 0, sizeof(*req));
	if (len > SOCKETMAP_MAX_REQUEST)
		return fail(err, "socketmap request too long");
	if (memchr(payload, '\0', len))
		return fail(err, "NUL byte in socketmap request");
	const char *sp = memchr(payload, ' ', len);
	if (!sp)
		return fail(err, "no space between socketmap name and key");
	size_t name_len = (size_t)(sp - payload);
	if (name_len == 0)
		return fail(err, "empty socketmap name");
	if (name_len > SOCKETMAP_MAX_NAME)
		return fail(err, "socketmap name too long");
	for (size_t i = 0; i < name_len; i++)
		if (!is_name_char((unsigned char)payload[i]))
			return fail(err, "invalid character in socketmap name");

	req->name = payload;
	req->name_len = name_len;
	req->key = sp + 1;
	req->key_len = len - name_len - 1;
	return true;
}

size_t socketmap_format_reply(char *out, size_t cap, enum socketmap_reply_kind kind,
			      const char *text, size_t text_len)
{
	const char *word;
	bool sanitise = true;

	switch (kind) {
	case SOCKETMAP_REPLY_OK:
		if (text_len == 0 || memchr(text, '\0', text_len))
			return 0;
		word = "OK";
		sanitise = false;
		break;
	case SOCKETMAP_REPLY_NOTFOUND:
		/* The documented form keeps the space. */
		word = "NOTFOUND";
		text_len = 0;
		break;
	case SOCKETMAP_REPLY_TEMP:
		word = "TEMP";
		break;
	case SOCKETMAP_REPLY_TIMEOUT:
		word = "TIMEOUT";
		break;
	case SOCKETMAP_REPLY_PERM:
		word = "PERM";
		break;
	default:
		return 0;
	}
	if (sanitise)
		text_len = utf8_cut(text, text_len, SOCKETMAP_MAX_REASON);

	size_t word_len = strlen(word);
	bool space = kind == SOCKETMAP_REPLY_NOTFOUND || text_len > 0;
	if (text_len > SOCKETMAP_MAX_REPLY)
		return 0;
	size_t plen = word_len + (space ? 1 : 0) + text_len;
	if (plen > SOCKETMAP_MAX_REPLY)
		return 0;
	size_t total = netstring_encoded_len(plen);
	if (total == 0 || total > cap)
		return 0;

	/* Write the payload in place after the header instead of staging it. */
	size_t hdr = total - plen - 1;
	char *p = out + hdr;
	memcpy(p, word, word_len);
	p += word_len;
	if (space)
		*p++ = ' ';
	for (size_t i = 0; i < text_len; i++) {
		unsigned char c = (unsigned char)text[i];
		*p++ = (sanitise && (c < 0x20 || c == 0x7f)) ? '?' : (char)c;
	}
	out[total - 1] = ',';
	size_t v = plen;
	out[hdr - 1] = ':';
	for (size_t k = hdr - 1; k > 0; k--) {
		out[k - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	return total;
}
