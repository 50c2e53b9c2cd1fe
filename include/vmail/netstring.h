/* netstring: "<len>:<payload>," framing (Postfix socketmap), parsed without I/O. */
#ifndef VMAIL_NETSTRING_H
#define VMAIL_NETSTRING_H

#include <stddef.h>

/* Ten digits cover any payload limit that fits in 32 bits; more is never valid. */
#define NETSTRING_MAX_DIGITS 10

enum netstring_status {
	NETSTRING_NEED_MORE,
	NETSTRING_OK,
	NETSTRING_ERROR,
};

/*
 * netstring_parse - find one netstring at the start of buf[0..len).
 *
 * NETSTRING_OK: *payload points into buf (*payload_len bytes), *consumed is the whole
 * netstring including "<len>:" and ",".  NETSTRING_NEED_MORE: buf is a valid
 * prefix; call again with more bytes.  NETSTRING_ERROR: the stream is broken
 * for good; *err (if err is not NULL) is a static description.  An error is
 * reported as soon as it is certain, e.g. a length above max_payload as soon
 * as its digits are seen, long before the payload arrives.  On anything but
 * OK, *payload is NULL and *payload_len and *consumed are 0.
 */
enum netstring_status netstring_parse(const char *buf, size_t len, size_t max_payload,
				      const char **payload, size_t *payload_len,
				      size_t *consumed, const char **err);

/* netstring_encoded_len - bytes netstring_encode needs for a len-byte payload */
size_t netstring_encoded_len(size_t len);

/*
 * netstring_encode - write "<len>:<payload>," to out; returns the number of
 * bytes written (no NUL terminator), or 0 if cap is too small.  out and
 * payload must not overlap.
 */
size_t netstring_encode(char *out, size_t cap, const char *payload, size_t len);

#endif
