/* dictproto: Dovecot dict proxy line protocol (server side) parsing and formatting, without I/O. */
#ifndef VMAIL_DICTPROTO_H
#define VMAIL_DICTPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DICT_MAX_LINE   65536 /* bytes of one command line, without its '\n' */
#define DICT_MAX_FIELDS 8     /* fields kept per line; extra trailing ones are ignored */

enum dict_status {
	DICT_NEED_MORE,
	DICT_OK,
	DICT_ERROR,
};

/* Command letters (client -> server). */
enum dict_cmd_type {
	DICT_CMD_HELLO = 'H',
	DICT_CMD_LOOKUP = 'L',
	DICT_CMD_ITERATE = 'I',
	DICT_CMD_BEGIN = 'B',
	DICT_CMD_SET = 'S',
	DICT_CMD_UNSET = 'U',
	DICT_CMD_ATOMIC_INC = 'A',
	DICT_CMD_TIMESTAMP = 'T',
	DICT_CMD_HIDE_LOG_VALUES = 'V',
	DICT_CMD_ROLLBACK = 'R',
	DICT_CMD_COMMIT = 'C',
	DICT_CMD_COMMIT_ASYNC = 'D',
};

/* Iterate flags (field 1 of 'I'). */
#define DICT_ITER_RECURSE       0x01
#define DICT_ITER_SORT_BY_KEY   0x02
#define DICT_ITER_SORT_BY_VALUE 0x04
#define DICT_ITER_NO_VALUE      0x08
#define DICT_ITER_EXACT_KEY     0x10
#define DICT_ITER_ASYNC         0x20

/*
 * One parsed command.  Every string is unescaped, NUL-terminated (the
 * protocol's NUL escape is rejected, so strlen works) and lives in scratch:
 * valid until the next dictproto_parse_line on the same struct.  The struct is
 * large (scratch); keep one per connection, not on the stack.
 */
struct dict_cmd {
	enum dict_cmd_type type;
	size_t nfields;                      /* fields after the letter, at most DICT_MAX_FIELDS */
	const char *field[DICT_MAX_FIELDS];
	size_t field_len[DICT_MAX_FIELDS];
	union {
		struct {
			uint32_t major;      /* 3 (2.3.x) or 4 (2.4); checking is the caller's job */
			uint32_t minor;
			uint32_t value_type; /* 0 string, 1 uint32 */
			const char *user;    /* obsolete, empty since 2.3.17 */
			const char *name;    /* dict name from the client's URI */
		} hello;
		struct {
			const char *key;
			const char *username;
		} lookup;
		struct {
			uint32_t flags;      /* DICT_ITER_* */
			uint64_t max_rows;   /* 0 = unlimited */
			const char *path;
			const char *username;
		} iterate;
		struct {
			uint32_t id;
			const char *username;
			bool has_expire;     /* protocol 4 only */
			uint64_t expire_secs;
		} begin;
		struct {
			uint32_t id;
			const char *key;
			const char *value;
			size_t value_len;
		} set;
		struct {
			uint32_t id;
			const char *key;
		} unset;
		struct {
			uint32_t id;
			const char *key;
			int64_t diff;
		} atomic_inc;
		struct {
			uint32_t id;
			int64_t secs;
			uint32_t nsecs;      /* < 1000000000 */
		} timestamp;
		struct {
			uint32_t id;
			bool hide;
		} hide_log_values;
		struct {
			uint32_t id;
		} txn;                       /* R, C and D */
	} u;
	char scratch[DICT_MAX_LINE];
};

/*
 * Where the search for the '\n' of the line at the start of the buffer stopped, so that a
 * line arriving in pieces is searched once, not once per piece.  Zero it (or use
 * DICTPROTO_SCAN_INIT) before the first piece of a connection; dictproto_parse_line keeps it.
 */
struct dictproto_scan {
	size_t scanned; /* bytes at the start of buf known to hold no '\n' and no NUL */
};

#define DICTPROTO_SCAN_INIT { 0 }

/*
 * dictproto_parse_line - parse one '\n'-terminated command at the start of
 * buf[0..len) into cmd.  DICT_OK: *consumed covers the line and its '\n'.
 * DICT_NEED_MORE: no '\n' yet and the partial line is within DICT_MAX_LINE.
 * DICT_ERROR: *err (if err is not NULL) is a static description; the
 * connection should be closed.  One '\r' before '\n' is stripped.  Errors:
 * empty line, unknown letter, NUL (raw or escaped), missing fields, numbers
 * that are not strict decimal (no sign unless signed, no overflow, no junk),
 * V not "yes"/"no".  Extra trailing fields are ignored (forward compatible).
 *
 * scan (NULL for a one-shot parse) resumes the search where the previous call
 * on the same line stopped: between calls the caller may only append to buf
 * (it may move).  It is reset on DICT_OK, when the caller drains *consumed
 * bytes.  The result is the one a one-shot parse of buf[0..len) gives.
 */
enum dict_status dictproto_parse_line(const char *buf, size_t len, struct dictproto_scan *scan,
				      struct dict_cmd *cmd, size_t *consumed, const char **err);

/*
 * dictproto_escape - tab-escape in[0..len) into out (\001 -> \001 1, \t -> \001 t,
 * \r -> \001 r, \n -> \001 n, NUL -> \001 0).  Returns the bytes written (no
 * NUL terminator) or (size_t)-1 if cap is too small.
 */
size_t dictproto_escape(char *out, size_t cap, const char *in, size_t len);

/*
 * Reply formatters.  Each writes one complete '\n'-terminated reply line to
 * out and returns its length, or 0 if it does not fit in cap.
 */
/* dictproto_format_found - lookup hit: "O<value>\n" */
size_t dictproto_format_found(char *out, size_t cap, const char *value, size_t value_len);
/* dictproto_format_notfound - lookup miss: "N\n" */
size_t dictproto_format_notfound(char *out, size_t cap);
/* dictproto_format_fail - lookup failure, or iterate end with failure: "F<error>\n" */
size_t dictproto_format_fail(char *out, size_t cap, const char *error, size_t error_len);
/* dictproto_format_iter_row - one iterate row "O<key>\t<value>\n" (value may be empty) */
size_t dictproto_format_iter_row(char *out, size_t cap, const char *key, size_t key_len,
				 const char *value, size_t value_len);
/* dictproto_format_iter_end - successful end of an iteration: "\n" */
size_t dictproto_format_iter_end(char *out, size_t cap);

enum dictproto_commit_result {
	DICTPROTO_COMMIT_OK,             /* "O<id>" */
	DICTPROTO_COMMIT_NOTFOUND,       /* "N<id>": committed, but an 'A' found no row */
	DICTPROTO_COMMIT_FAILED,         /* "F<id>\t<error>" */
	DICTPROTO_COMMIT_WRITE_UNCERTAIN,/* "W<id>\t<error>" */
};

/*
 * dictproto_format_commit - reply to C (or to D with async: the line gets an
 * 'A' prefix).  error is used only for FAILED and WRITE_UNCERTAIN, where the
 * client expects the field to be present even if empty.
 */
size_t dictproto_format_commit(char *out, size_t cap, bool async,
			       enum dictproto_commit_result result, uint32_t id,
			       const char *error, size_t error_len);

#endif
