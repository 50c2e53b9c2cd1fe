/* fuzz_socketmap: netstring stream parsing, socketmap requests, and reply round trips. */
#include "vmail/netstring.h"
#include "vmail/socketmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_chunks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static char out[SOCKETMAP_MAX_REPLY + 32];
static char enc[SOCKETMAP_MAX_REQUEST + 32];

/* check_reply - out[0..n) is one netstring whose payload starts with word */
static void check_reply(size_t n, const char *word, const char *text, size_t text_len,
			bool sanitised)
{
	const char *p, *err;
	size_t plen, used;
	size_t wlen = strlen(word);

	CHECK(netstring_parse(out, n, SOCKETMAP_MAX_REPLY, NULL, &p, &plen, &used, &err) == NETSTRING_OK);
	CHECK(used == n);
	CHECK(plen >= wlen && memcmp(p, word, wlen) == 0);
	if (!sanitised) {
		CHECK(plen == wlen + 1 + text_len);
		CHECK(p[wlen] == ' ');
		CHECK(memcmp(p + wlen + 1, text, text_len) == 0);
		return;
	}
	size_t sent = plen > wlen ? plen - wlen - 1 : 0;
	CHECK(sent <= SOCKETMAP_MAX_REASON && sent <= text_len);
	CHECK(text_len == 0 || sent > 0);
	if (sent < text_len)
		CHECK(sent + 3 >= SOCKETMAP_MAX_REASON);
	for (size_t i = 0; i < sent; i++) {
		unsigned char c = (unsigned char)p[wlen + 1 + i];
		CHECK(c >= 0x20 && c != 0x7f);
		unsigned char t = (unsigned char)text[i];
		CHECK(c == ((t < 0x20 || t == 0x7f) ? '?' : t));
	}
}

static void round_trip(const char *text, size_t len)
{
	size_t n = socketmap_format_reply(out, sizeof(out), SOCKETMAP_REPLY_OK, text, len);
	if (len == 0 || memchr(text, '\0', len) || len + 3 > SOCKETMAP_MAX_REPLY)
		CHECK(n == 0);
	else
		check_reply(n, "OK", text, len, false);

	n = socketmap_format_reply(out, sizeof(out), SOCKETMAP_REPLY_TEMP, text, len);
	CHECK(n > 0);
	check_reply(n, "TEMP", text, len, true);

	n = socketmap_format_reply(out, sizeof(out), SOCKETMAP_REPLY_NOTFOUND, text, len);
	CHECK(n == 12 && memcmp(out, "9:NOTFOUND ,", 12) == 0);
}

/*
 * chunked - the input as a stream arriving in reads of random sizes, framed as vmaild does:
 * with a scan state, everything buffered since the last whole netstring.  After every read
 * each result must equal a one-shot parse of the same bytes.
 */
static void chunked(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct netstring_scan scan = NETSTRING_SCAN_INIT;
	struct fuzz_chunks fc;
	size_t off = 0;

	fuzz_chunks_init(&fc, data, size);
	while (fuzz_chunks_read(&fc)) {
		size_t fed = fc.fed;
		for (;;) {
			const char *p, *p1, *err = NULL, *err1 = NULL;
			size_t plen, plen1, used, used1;
			enum netstring_status one =
				netstring_parse(buf + off, fed - off, SOCKETMAP_MAX_REQUEST, NULL, &p1,
						&plen1, &used1, &err1);
			enum netstring_status st = netstring_parse(
				buf + off, fed - off, SOCKETMAP_MAX_REQUEST, &scan, &p, &plen, &used, &err);
			CHECK(st == one && p == p1 && plen == plen1 && used == used1 && err == err1);
			if (st == NETSTRING_ERROR)
				return;
			if (st == NETSTRING_NEED_MORE) {
				CHECK(scan.scanned <= fed - off);
				break;
			}
			CHECK(scan.scanned == 0 && !scan.have_len);
			off += used;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	while (off < size) {
		const char *p, *err = NULL;
		size_t plen, used;
		enum netstring_status st = netstring_parse(buf + off, size - off, SOCKETMAP_MAX_REQUEST, NULL,
							   &p, &plen, &used, &err);
		if (st == NETSTRING_ERROR) {
			CHECK(err != NULL);
			break;
		}
		if (st == NETSTRING_NEED_MORE)
			break;

		CHECK(plen <= SOCKETMAP_MAX_REQUEST);
		CHECK(used > plen + 2 && used <= size - off);
		CHECK(p == buf + off + used - 1 - plen && buf[off + used - 1] == ',');
		/* every proper prefix of a netstring is incomplete, never broken */
		CHECK(netstring_parse(buf + off, used - 1, SOCKETMAP_MAX_REQUEST, NULL, &p, &plen,
				      &(size_t){0}, NULL) == NETSTRING_NEED_MORE);
		CHECK(netstring_parse(buf + off, used / 2, SOCKETMAP_MAX_REQUEST, NULL, &p, &plen,
				      &(size_t){0}, NULL) == NETSTRING_NEED_MORE);
		CHECK(netstring_parse(buf + off, used, SOCKETMAP_MAX_REQUEST, NULL, &p, &plen, &used, NULL) ==
		      NETSTRING_OK);
		/* the accepted syntax is canonical: re-encoding gives the same bytes */
		size_t n = netstring_encode(enc, sizeof(enc), p, plen);
		CHECK(n == used && memcmp(enc, buf + off, used) == 0);
		CHECK(netstring_encode(enc, used - 1, p, plen) == 0);

		struct socketmap_request req;
		if (socketmap_parse_request(p, plen, &req, &err)) {
			CHECK(req.name == p && req.name_len >= 1 &&
			      req.name_len <= SOCKETMAP_MAX_NAME);
			CHECK(req.key == p + req.name_len + 1);
			CHECK(req.name_len + 1 + req.key_len == plen);
			CHECK(!memchr(req.name, ' ', req.name_len));
			CHECK(!memchr(p, '\0', plen));
			round_trip(req.key, req.key_len);
		} else {
			CHECK(err != NULL);
		}
		off += used;
	}

	chunked(data, size);
	round_trip(buf, size);
	return 0;
}
