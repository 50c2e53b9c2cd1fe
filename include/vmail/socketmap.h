/* socketmap: Postfix socketmap request parsing and reply formatting, without I/O. */
#ifndef VMAIL_SOCKETMAP_H
#define VMAIL_SOCKETMAP_H

#include <stdbool.h>
#include <stddef.h>

#define SOCKETMAP_MAX_REQUEST 10000  /* payload bytes; Postfix 3.12's own query limit */
#define SOCKETMAP_MAX_REPLY   100000 /* payload bytes; Postfix's reply limit */
#define SOCKETMAP_MAX_NAME    64
#define SOCKETMAP_MAX_REASON  200    /* TEMP/TIMEOUT/PERM text; Postfix logs no more */

/* Views into the request payload; neither is NUL-terminated. */
struct socketmap_request {
	const char *name;
	size_t name_len;
	const char *key;
	size_t key_len;
};

/*
 * socketmap_parse_request - split a netstring payload "<name> <key>" at the
 * first space (keys may contain spaces).  Errors: payload over
 * SOCKETMAP_MAX_REQUEST, a NUL byte anywhere, no space, empty name, name over
 * SOCKETMAP_MAX_NAME or with bytes outside [A-Za-z0-9_.-].  An empty key is
 * valid (answer NOTFOUND).  On error *err is a static description.
 */
bool socketmap_parse_request(const char *payload, size_t len, struct socketmap_request *req,
			     const char **err);

enum socketmap_reply_kind {
	SOCKETMAP_REPLY_OK,
	SOCKETMAP_REPLY_NOTFOUND,
	SOCKETMAP_REPLY_TEMP,
	SOCKETMAP_REPLY_TIMEOUT,
	SOCKETMAP_REPLY_PERM,
};

/*
 * socketmap_format_reply - write a whole reply netstring to out and return its
 * length, or 0 if it does not fit in cap, if the payload would exceed
 * SOCKETMAP_MAX_REPLY, or if the reply would be misread by Postfix:
 *   OK       "OK <text>"; text must be non-empty ("OK " is a Postfix
 *            configuration error) and NUL-free (Postfix would truncate it).
 *   NOTFOUND "NOTFOUND " exactly; text is ignored.
 *   TEMP, TIMEOUT, PERM  "<KIND> <text>", or just "<KIND>" if text is empty;
 *            control bytes and NUL become '?', and the text is cut to
 *            SOCKETMAP_MAX_REASON bytes without splitting a UTF-8 sequence.
 */
size_t socketmap_format_reply(char *out, size_t cap, enum socketmap_reply_kind kind,
			      const char *text, size_t text_len);

#endif
