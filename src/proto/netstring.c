/*
 * netstring: "<len>:<payload>," framing as used by Postfix socketmap.
 *
 * <len> is ASCII decimal without sign, spaces or leading zeros ("0" alone is
 * the empty payload); after exactly <len> payload bytes the next byte must be
 * ','.  Nothing separates consecutive netstrings.  Callers hand the parser
 * everything buffered so far and it either finds a complete netstring, asks
 * for more, or reports a broken stream.  The payload itself is never scanned,
 * and struct netstring_scan keeps the length prefix once read, so a netstring
 * arriving one byte per read costs O(1) per read.
 */
#include "vmail/netstring.h"

#include <stdint.h>
#include <string.h>

static enum netstring_status fail(const char **err, const char *why)
{
	if (err)
		*err = why;
	return NETSTRING_ERROR;
}

/* read_len - read the "<len>:" prefix on from s->scanned; NEED_MORE until the ':' */
static enum netstring_status read_len(const char *buf, size_t len, size_t max_payload,
				      struct netstring_scan *s, const char **err)
{
	/* At most 10 digits, so the value cannot overflow 64 bits. */
	uint64_t n = s->len;
	size_t i;
	for (i = s->scanned; i < len; i++) {
		char c = buf[i];
		if (c == ':')
			break;
		if (c < '0' || c > '9')
			return fail(err, i == 0 ? "non-digit in netstring length"
						: "missing ':' after netstring length");
		if (i == 1 && buf[0] == '0')
			return fail(err, "leading zero in netstring length");
		if (i >= NETSTRING_MAX_DIGITS)
			return fail(err, "netstring length has more than 10 digits");
		n = n * 10 + (uint64_t)(c - '0');
		if (n > max_payload)
			return fail(err, "netstring length exceeds the limit");
	}
	s->scanned = i;
	s->len = n;
	if (i == len)
		return NETSTRING_NEED_MORE;
	if (i == 0)
		return fail(err, "empty netstring length");
	s->scanned = i + 1;
	s->have_len = true;
	return NETSTRING_OK;
}

enum netstring_status netstring_parse(const char *buf, size_t len, size_t max_payload,
				      struct netstring_scan *scan, const char **payload, size_t *payload_len,
				      size_t *consumed, const char **err)
{
	struct netstring_scan one_shot = NETSTRING_SCAN_INIT;
	struct netstring_scan *s = scan ? scan : &one_shot;

	*payload = NULL;
	*payload_len = 0;
	*consumed = 0;
	if (s->scanned > len)
		*s = one_shot; /* not a continuation of buf: start over */
	if (!s->have_len) {
		enum netstring_status st = read_len(buf, len, max_payload, s, err);
		if (st != NETSTRING_OK)
			return st;
	}

	/* "<len>:", n bytes, ','; n <= max_payload bounds the sum only on 64-bit. */
	uint64_t n = s->len;
	if (n > SIZE_MAX - NETSTRING_MAX_DIGITS - 2)
		return fail(err, "netstring length exceeds the limit");
	size_t start = s->scanned;
	size_t total = start + (size_t)n + 1;
	if (len < total)
		return NETSTRING_NEED_MORE;
	if (buf[total - 1] != ',')
		return fail(err, "missing ',' after netstring payload");

	*s = one_shot;
	*payload = buf + start;
	*payload_len = (size_t)n;
	*consumed = total;
	return NETSTRING_OK;
}

static size_t decimal_digits(size_t v)
{
	size_t d = 1;
	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

size_t netstring_encoded_len(size_t len)
{
	size_t d = decimal_digits(len);
	if (len > SIZE_MAX - d - 2)
		return 0;
	return d + 1 + len + 1;
}

size_t netstring_encode(char *out, size_t cap, const char *payload, size_t len)
{
	size_t total = netstring_encoded_len(len);
	if (total == 0 || total > cap)
		return 0;

	size_t d = decimal_digits(len);
	size_t v = len;
	for (size_t k = d; k > 0; k--) {
		out[k - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	out[d] = ':';
	if (len)
		memcpy(out + d + 1, payload, len);
	out[d + 1 + len] = ',';
	return total;
}
