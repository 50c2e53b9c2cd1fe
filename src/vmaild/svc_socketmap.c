/*
 * svc_socketmap: Postfix socketmap over conn.  Frames netstrings with the pure
 * parser, turns "<map> <key>" into a lookup, and lookup outcomes into replies.
 * The mapping from outcome to reply is the whole point of this file: only a
 * positive "no such key" from the database becomes NOTFOUND (550 at SMTP);
 * anything else that went wrong is TEMP (451) or PERM (451 4.3.5).
 */
#include "svc_socketmap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookup.h"
#include "vmail/netstring.h"
#include "vmail/socketmap.h"

/* "<len>:" + payload + ","; the longest netstring a client may send or we send. */
#define SM_MAX_FRAME_IN  (NETSTRING_MAX_DIGITS + 2 + SOCKETMAP_MAX_REQUEST)
#define SM_MAX_FRAME_OUT (NETSTRING_MAX_DIGITS + 2 + SOCKETMAP_MAX_REPLY)

/* One reply is formatted at a time (single-threaded loop): no per-request buffers. */
static char sm_out[SM_MAX_FRAME_OUT];

static void sm_on_read(struct conn *c, void *arg);

/*
 * The map names Postfix may ask for and the kind each reaches: the service
 * names its own tables, as OpenSMTPD's table backends do.
 */
static const struct {
	const char *name;
	enum lookup_kind kind;
} sm_maps[] = {
	{ "domain", LOOKUP_DOMAIN },
	{ "alias", LOOKUP_ALIAS },
	{ "mailbox", LOOKUP_MAILBOX },
	{ "sender", LOOKUP_SENDER },
};

const struct conn_proto svc_socketmap_proto = {
	.name = "socketmap",
	.on_read = sm_on_read,
	.on_close = conn_data_free, /* the scan state of the partial request */
};

bool svc_socketmap_map_kind(const char *name, size_t len, enum lookup_kind *out)
{
	for (size_t i = 0; i < sizeof(sm_maps) / sizeof(sm_maps[0]); i++) {
		if (strlen(sm_maps[i].name) == len && memcmp(sm_maps[i].name, name, len) == 0) {
			*out = sm_maps[i].kind;
			return true;
		}
	}
	return false;
}

/* sm_reply - format and queue one reply; a reply that cannot be formatted becomes PERM */
static void sm_reply(struct conn_req *r, enum socketmap_reply_kind kind, const char *text,
		     size_t len, unsigned flags)
{
	size_t n = socketmap_format_reply(sm_out, sizeof(sm_out), kind, text, len);
	if (n == 0) {
		const char *why = kind == SOCKETMAP_REPLY_OK && len == 0 ? "empty lookup result"
									 : "reply too large";
		conn_log(conn_req_conn(r), LOG_LEVEL_WARNING, "%s (%zu bytes)", why, len);
		n = socketmap_format_reply(sm_out, sizeof(sm_out), SOCKETMAP_REPLY_PERM, why,
					   strlen(why));
	}
	conn_log(conn_req_conn(r), LOG_LEVEL_DEBUG, "reply %.*s", (int)(n > 120 ? 120 : n), sm_out);
	conn_req_reply(r, sm_out, n, flags);
}

static void sm_reply_str(struct conn_req *r, enum socketmap_reply_kind kind, const char *text,
			 unsigned flags)
{
	sm_reply(r, kind, text, strlen(text), flags);
}

static void sm_lookup_done(void *arg, enum lookup_status st, const char *value, size_t len)
{
	struct conn_req *r = arg;
	switch (st) {
	case LOOKUP_FOUND:
		sm_reply(r, SOCKETMAP_REPLY_OK, value, len, 0);
		return;
	case LOOKUP_NOTFOUND:
		sm_reply_str(r, SOCKETMAP_REPLY_NOTFOUND, "", 0);
		return;
	case LOOKUP_TEMPFAIL:
		sm_reply_str(r, SOCKETMAP_REPLY_TEMP, "database unavailable", 0);
		return;
	case LOOKUP_PERMFAIL:
		sm_reply_str(r, SOCKETMAP_REPLY_PERM, "lookup failed, see the vmaild log", 0);
		return;
	}
	sm_reply_str(r, SOCKETMAP_REPLY_TEMP, "internal error", 0);
}

/* sm_request - one complete request payload; always answers r, now or later */
static void sm_request(struct conn *c, struct conn_req *r, const char *payload, size_t len,
		       void *pool)
{
	struct socketmap_request req;
	const char *err;
	enum lookup_kind kind;
	char msg[SOCKETMAP_MAX_NAME + 32];

	if (conn_is_over_limit(c)) {
		sm_reply_str(r, SOCKETMAP_REPLY_TEMP, "too many connections", CONN_REPLY_CLOSE);
		return;
	}
	if (!socketmap_parse_request(payload, len, &req, &err)) {
		/* Framing is intact, so the stream can go on. */
		conn_log(c, LOG_LEVEL_NOTICE, "bad request: %s", err);
		sm_reply_str(r, SOCKETMAP_REPLY_PERM, err, 0);
		return;
	}
	conn_log(c, LOG_LEVEL_DEBUG, "lookup %.*s %.*s", (int)req.name_len, req.name,
		 (int)(req.key_len > 200 ? 200 : req.key_len), req.key);
	if (!svc_socketmap_map_kind(req.name, req.name_len, &kind)) {
		snprintf(msg, sizeof(msg), "unknown map %.*s", (int)req.name_len, req.name);
		sm_reply_str(r, SOCKETMAP_REPLY_PERM, msg, 0);
		return;
	}
	if (req.key_len == 0) {
		sm_reply_str(r, SOCKETMAP_REPLY_NOTFOUND, "", 0);
		return;
	}
	/* A fresh cached answer goes out at once: no request object, no loop turn. */
	enum lookup_status st;
	const char *value;
	size_t vlen;
	if (lookup_cached(METRICS_PROTO_SOCKETMAP, kind, req.key, req.key_len, &st, &value, &vlen)) {
		sm_lookup_done(r, st, value, vlen);
		return;
	}
	struct lookup_req *lr = lookup_submit_as(pool, METRICS_PROTO_SOCKETMAP, kind, &req.key,
						 &req.key_len, 1, sm_lookup_done, r);
	if (!lr) {
		sm_reply_str(r, SOCKETMAP_REPLY_TEMP, "lookup could not be queued", 0);
		return;
	}
	conn_req_on_drop(r, lookup_drop, lr);
}

/*
 * sm_frame_error - a netstring that cannot be parsed.  A length over the
 * limit gets "PERM request too large" first: the client then knows why.  Any
 * other breakage gets no reply, since we cannot tell where the next request
 * starts; Postfix reads the EOF and retries once on a new connection.
 */
static void sm_frame_error(struct conn *c, const char *buf, size_t len, const char *err)
{
	const char *p;
	size_t plen, used;
	enum netstring_status st = netstring_parse(buf, len, SIZE_MAX / 2, NULL, &p, &plen, &used, NULL);
	if (st != NETSTRING_ERROR) {
		conn_log(c, LOG_LEVEL_NOTICE, "request too large (limit %d bytes)",
			 SOCKETMAP_MAX_REQUEST);
		struct conn_req *r = conn_req_new(c);
		if (r)
			sm_reply_str(r, SOCKETMAP_REPLY_PERM, "request too large", CONN_REPLY_CLOSE);
		return;
	}
	conn_log(c, LOG_LEVEL_NOTICE, "malformed netstring: %s", err);
	conn_close(c, "malformed netstring");
}

/* The connection's data is the scan state of its partial netstring: its length is read once. */
static void sm_on_read(struct conn *c, void *arg)
{
	struct netstring_scan *scan = conn_data_zalloc(c, sizeof(*scan));

	if (!scan)
		return;
	while (conn_want_requests(c)) {
		size_t avail;
		const char *buf = conn_input(c, &avail);
		if (avail == 0)
			return;
		size_t look = avail < SM_MAX_FRAME_IN ? avail : SM_MAX_FRAME_IN;
		const char *payload, *err = NULL;
		size_t plen, used;
		switch (netstring_parse(buf, look, SOCKETMAP_MAX_REQUEST, scan, &payload, &plen, &used,
					&err)) {
		case NETSTRING_NEED_MORE:
			return;
		case NETSTRING_ERROR:
			sm_frame_error(c, buf, look, err);
			return;
		case NETSTRING_OK:
			break;
		}
		struct conn_req *r = conn_req_new(c);
		if (!r)
			return;
		/* lookup_submit copies the key, so the input can be consumed afterwards. */
		sm_request(c, r, payload, plen, arg);
		conn_consume(c, used);
	}
}
