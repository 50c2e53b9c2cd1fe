/* netstring: "<len>:<payload>," framing (Postfix socketmap), parsed without I/O. */
#ifndef VMAIL_NETSTRING_H
#define VMAIL_NETSTRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ten digits cover any payload limit that fits in 32 bits; more is never valid. */
#define NETSTRING_MAX_DIGITS 10

enum netstring_status {
	NETSTRING_NEED_MORE,
	NETSTRING_OK,
	NETSTRING_ERROR,
};

/*
 * The length prefix read by earlier calls, so that a netstring arriving in pieces has its
 * "<len>:" read once.  Zero it (or use NETSTRING_SCAN_INIT) before the first piece of a
 * connection; netstring_parse keeps it.
 */
struct netstring_scan {
	size_t scanned; /* bytes of "<len>:" read, the ':' included once seen */
	uint64_t len;   /* the value of the digits read */
	bool have_len;  /* the ':' was seen: len is the payload length */
};

#define NETSTRING_SCAN_INIT { 0, 0, false }

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
 *
 * scan (NULL for a one-shot parse) resumes where the previous call on the same
 * netstring stopped: between calls the caller may only append to buf (it may
 * move) and must pass the same max_payload.  It is reset on NETSTRING_OK,
 * when the caller drains *consumed bytes.  The result is the one a one-shot
 * parse of buf[0..len) gives.
 */
enum netstring_status netstring_parse(const char *buf, size_t len, size_t max_payload,
				      struct netstring_scan *scan, const char **payload, size_t *payload_len,
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
