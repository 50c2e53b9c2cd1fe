/*
 * dictproto: the Dovecot dict proxy protocol, server side (Dovecot 2.3 major 3
 * and 2.4 major 4).
 *
 * Wire format: one command per line, '\n'-terminated (a '\r' before it is
 * stripped).  The first byte is the command letter, immediately followed by
 * tab-separated fields; each field is tab-escaped with 0x01: \001 1 = \001,
 * \001 t = \t, \001 r = \r, \001 n = \n, \001 0 = NUL, \001 X = X, and a lone
 * \001 at the end of a field is dropped.  Split on '\t' first, then unescape.
 *
 *   H<major>\t<minor>\t<value_type>\t<user>\t<dict name>  hello, no reply
 *   L<key>\t<username>                                    lookup
 *   I<flags>\t<max_rows>\t<path>\t<username>              iterate
 *   B<id>\t<username>[\t<expire_secs>]                    begin (expire: v4)
 *   S<id>\t<key>\t<value>   U<id>\t<key>   A<id>\t<key>\t<diff>
 *   T<id>\t<secs>\t<nsecs>  V<id>\tyes|no  R<id>  C<id>  D<id>
 *
 * Only L, I, C and D get replies; anything else sent while the client waits
 * for nothing makes it disconnect.  Replies: lookup O<value> / N / F<error>;
 * iterate rows O<key>\t<value> then an empty line (or F<error>); commit
 * O<id> / N<id> / F<id>\t<error> / W<id>\t<error>, prefixed with 'A' for D.
 *
 * Limits: a line may hold DICT_MAX_LINE bytes before its '\n' (Dovecot's own
 * server limit); longer lines are rejected as soon as that is certain.  At
 * most DICT_MAX_FIELDS fields are kept; extra trailing fields are ignored so
 * that a newer client adding fields still works, but missing ones are errors.
 * NUL is rejected, raw or escaped: keys and values are C strings everywhere
 * downstream (libpq text parameters included).
 *
 * A line that arrives in pieces is searched once: struct dictproto_scan carries
 * how far the previous call searched, so one byte per read costs O(1) per read.
 */
#include "vmail/dictproto.h"

#include <string.h>

struct cmd_spec {
	char letter;
	size_t min_fields;
};

static const struct cmd_spec cmd_specs[] = {
	{ DICT_CMD_HELLO, 5 },
	{ DICT_CMD_LOOKUP, 2 },
	{ DICT_CMD_ITERATE, 4 },
	{ DICT_CMD_BEGIN, 2 },
	{ DICT_CMD_SET, 3 },
	{ DICT_CMD_UNSET, 2 },
	{ DICT_CMD_ATOMIC_INC, 3 },
	{ DICT_CMD_TIMESTAMP, 3 },
	{ DICT_CMD_HIDE_LOG_VALUES, 2 },
	{ DICT_CMD_ROLLBACK, 1 },
	{ DICT_CMD_COMMIT, 1 },
	{ DICT_CMD_COMMIT_ASYNC, 1 },
};

static enum dict_status fail(const char **err, const char *why)
{
	if (err)
		*err = why;
	return DICT_ERROR;
}

static const struct cmd_spec *find_spec(char letter)
{
	for (size_t i = 0; i < sizeof(cmd_specs) / sizeof(cmd_specs[0]); i++)
		if (cmd_specs[i].letter == letter)
			return &cmd_specs[i];
	return NULL;
}

/* parse_uint - strict unsigned decimal: digits only (leading zeros allowed), <= max */
static bool parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* parse_int64 - strict signed decimal: optional '-' (no '+', as Dovecot) then digits */
static bool parse_int64(const char *s, size_t len, int64_t *out)
{
	uint64_t mag;

	if (len > 0 && s[0] == '-') {
		if (!parse_uint(s + 1, len - 1, (uint64_t)INT64_MAX + 1, &mag))
			return false;
		/* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
		return true;
	}
	if (!parse_uint(s, len, INT64_MAX, &mag))
		return false;
	*out = (int64_t)mag;
	return true;
}

static bool parse_u32(const struct dict_cmd *cmd, size_t i, uint32_t *out)
{
	uint64_t v;

	if (!parse_uint(cmd->field[i], cmd->field_len[i], UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

/* unescape - decode one field into dst; false if it contains an escaped NUL */
static bool unescape(const char *src, size_t len, char *dst, size_t *dst_len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (src[i] != '\001') {
			dst[o++] = src[i];
			continue;
		}
		if (++i == len)
			break; /* lone trailing \001 */
		switch (src[i]) {
		case '1':
			dst[o++] = '\001';
			break;
		case 't':
			dst[o++] = '\t';
			break;
		case 'r':
			dst[o++] = '\r';
			break;
		case 'n':
			dst[o++] = '\n';
			break;
		case '0':
			return false;
		default:
			dst[o++] = src[i];
			break;
		}
	}
	dst[o] = '\0';
	*dst_len = o;
	return true;
}

/* split_fields - split line (after the letter) on tabs and unescape into scratch */
static enum dict_status split_fields(const char *p, const char *end, struct dict_cmd *cmd,
				     const char **err)
{
	char *out = cmd->scratch;
	size_t n = 0;

	/*
	 * Unescaping never grows a field, and the n NUL terminators replace the
	 * letter and n - 1 tabs, so a line of at most DICT_MAX_LINE bytes always
	 * fits in scratch.
	 */
	for (;;) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		const char *fend = tab ? tab : end;
		if (n < DICT_MAX_FIELDS) {
			size_t flen;
			if (!unescape(p, (size_t)(fend - p), out, &flen))
				return fail(err, "escaped NUL in dict field");
			cmd->field[n] = out;
			cmd->field_len[n] = flen;
			out += flen + 1;
			n++;
		}
		if (!tab)
			break;
		p = tab + 1;
	}
	cmd->nfields = n;
	return DICT_OK;
}

/* fill_view - check the fields of the parsed command and set its typed view */
static enum dict_status fill_view(struct dict_cmd *cmd, const char **err)
{
	const char *const *f = cmd->field;
	uint64_t v;

	switch (cmd->type) {
	case DICT_CMD_HELLO:
		if (!parse_u32(cmd, 0, &cmd->u.hello.major) ||
		    !parse_u32(cmd, 1, &cmd->u.hello.minor) ||
		    !parse_u32(cmd, 2, &cmd->u.hello.value_type))
			return fail(err, "bad number in dict hello");
		cmd->u.hello.user = f[3];
		cmd->u.hello.name = f[4];
		break;
	case DICT_CMD_LOOKUP:
		cmd->u.lookup.key = f[0];
		cmd->u.lookup.username = f[1];
		break;
	case DICT_CMD_ITERATE:
		if (!parse_u32(cmd, 0, &cmd->u.iterate.flags) ||
		    !parse_uint(f[1], cmd->field_len[1], UINT64_MAX, &cmd->u.iterate.max_rows))
			return fail(err, "bad number in dict iterate");
		cmd->u.iterate.path = f[2];
		cmd->u.iterate.username = f[3];
		break;
	case DICT_CMD_BEGIN:
		if (!parse_u32(cmd, 0, &cmd->u.begin.id))
			return fail(err, "bad dict transaction id");
		cmd->u.begin.username = f[1];
		cmd->u.begin.has_expire = false;
		cmd->u.begin.expire_secs = 0;
		/* Protocol 4 adds expire_secs; an empty field means none. */
		if (cmd->nfields >= 3 && cmd->field_len[2] > 0) {
			if (!parse_uint(f[2], cmd->field_len[2], UINT64_MAX, &v))
				return fail(err, "bad expire_secs in dict begin");
			cmd->u.begin.has_expire = true;
			cmd->u.begin.expire_secs = v;
		}
		break;
	case DICT_CMD_SET:
		if (!parse_u32(cmd, 0, &cmd->u.set.id))
			return fail(err, "bad dict transaction id");
		cmd->u.set.key = f[1];
		cmd->u.set.value = f[2];
		cmd->u.set.value_len = cmd->field_len[2];
		break;
	case DICT_CMD_UNSET:
		if (!parse_u32(cmd, 0, &cmd->u.unset.id))
			return fail(err, "bad dict transaction id");
		cmd->u.unset.key = f[1];
		break;
	case DICT_CMD_ATOMIC_INC:
		if (!parse_u32(cmd, 0, &cmd->u.atomic_inc.id))
			return fail(err, "bad dict transaction id");
		cmd->u.atomic_inc.key = f[1];
		if (!parse_int64(f[2], cmd->field_len[2], &cmd->u.atomic_inc.diff))
			return fail(err, "bad diff in dict atomic increment");
		break;
	case DICT_CMD_TIMESTAMP:
		if (!parse_u32(cmd, 0, &cmd->u.timestamp.id))
			return fail(err, "bad dict transaction id");
		if (!parse_int64(f[1], cmd->field_len[1], &cmd->u.timestamp.secs) ||
		    !parse_u32(cmd, 2, &cmd->u.timestamp.nsecs) ||
		    cmd->u.timestamp.nsecs >= 1000000000)
			return fail(err, "bad dict timestamp");
		break;
	case DICT_CMD_HIDE_LOG_VALUES:
		if (!parse_u32(cmd, 0, &cmd->u.hide_log_values.id))
			return fail(err, "bad dict transaction id");
		if (strcmp(f[1], "yes") == 0)
			cmd->u.hide_log_values.hide = true;
		else if (strcmp(f[1], "no") == 0)
			cmd->u.hide_log_values.hide = false;
		else
			return fail(err, "dict hide-log-values is neither yes nor no");
		break;
	case DICT_CMD_ROLLBACK:
	case DICT_CMD_COMMIT:
	case DICT_CMD_COMMIT_ASYNC:
		if (!parse_u32(cmd, 0, &cmd->u.txn.id))
			return fail(err, "bad dict transaction id");
		break;
	}
	return DICT_OK;
}

enum dict_status dictproto_parse_line(const char *buf, size_t len, struct dictproto_scan *scan,
				      struct dict_cmd *cmd, size_t *consumed, const char **err)
{
	size_t limit = len < DICT_MAX_LINE + 1 ? len : DICT_MAX_LINE + 1;
	size_t from = scan && scan->scanned <= limit ? scan->scanned : 0;
	const char *nl = memchr(buf + from, '\n', limit - from);
	size_t end = nl ? (size_t)(nl - buf) : limit;

	*consumed = 0;
	cmd->nfields = 0;
	/* buf[0..from) was searched by earlier calls: no NUL there. */
	if (memchr(buf + from, '\0', end - from))
		return fail(err, "NUL byte in dict line");
	if (!nl) {
		if (len > DICT_MAX_LINE)
			return fail(err, "dict line too long");
		if (scan)
			scan->scanned = limit;
		return DICT_NEED_MORE;
	}
	if (scan)
		scan->scanned = 0;

	size_t raw_len = (size_t)(nl - buf);
	size_t l = raw_len;
	if (l > 0 && buf[l - 1] == '\r')
		l--;
	if (l == 0)
		return fail(err, "empty dict line");

	const struct cmd_spec *spec = find_spec(buf[0]);
	if (!spec)
		return fail(err, "unknown dict command");
	cmd->type = (enum dict_cmd_type)spec->letter;
	if (split_fields(buf + 1, buf + l, cmd, err) != DICT_OK)
		return DICT_ERROR;
	if (cmd->nfields < spec->min_fields)
		return fail(err, "missing fields in dict command");
	if (fill_view(cmd, err) != DICT_OK)
		return DICT_ERROR;
	*consumed = raw_len + 1;
	return DICT_OK;
}

size_t dictproto_escape(char *out, size_t cap, const char *in, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char esc;
		switch (in[i]) {
		case '\001':
			esc = '1';
			break;
		case '\t':
			esc = 't';
			break;
		case '\r':
			esc = 'r';
			break;
		case '\n':
			esc = 'n';
			break;
		case '\0':
			esc = '0';
			break;
		default:
			if (o == cap)
				return (size_t)-1;
			out[o++] = in[i];
			continue;
		}
		if (cap - o < 2)
			return (size_t)-1;
		out[o++] = '\001';
		out[o++] = esc;
	}
	return o;
}

/* Small appenders; each returns false once out is full, and then stays false. */
static bool put_char(char *out, size_t cap, size_t *pos, char c)
{
	if (*pos >= cap)
		return false;
	out[(*pos)++] = c;
	return true;
}

static bool put_escaped(char *out, size_t cap, size_t *pos, const char *s, size_t len)
{
	if (*pos > cap)
		return false;
	size_t n = dictproto_escape(out + *pos, cap - *pos, s, len);
	if (n == (size_t)-1)
		return false;
	*pos += n;
	return true;
}

static bool put_u32(char *out, size_t cap, size_t *pos, uint32_t v)
{
	char tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (cap - *pos < n)
		return false;
	while (n)
		out[(*pos)++] = tmp[--n];
	return true;
}

size_t dictproto_format_found(char *out, size_t cap, const char *value, size_t value_len)
{
	size_t pos = 0;

	if (!put_char(out, cap, &pos, 'O') || !put_escaped(out, cap, &pos, value, value_len) ||
	    !put_char(out, cap, &pos, '\n'))
		return 0;
	return pos;
}

size_t dictproto_format_notfound(char *out, size_t cap)
{
	size_t pos = 0;

	if (!put_char(out, cap, &pos, 'N') || !put_char(out, cap, &pos, '\n'))
		return 0;
	return pos;
}

size_t dictproto_format_fail(char *out, size_t cap, const char *error, size_t error_len)
{
	size_t pos = 0;

	if (!put_char(out, cap, &pos, 'F') || !put_escaped(out, cap, &pos, error, error_len) ||
	    !put_char(out, cap, &pos, '\n'))
		return 0;
	return pos;
}

size_t dictproto_format_iter_row(char *out, size_t cap, const char *key, size_t key_len,
				 const char *value, size_t value_len)
{
	size_t pos = 0;

	/* The tab is mandatory even for an empty value: the client needs two fields. */
	if (!put_char(out, cap, &pos, 'O') || !put_escaped(out, cap, &pos, key, key_len) ||
	    !put_char(out, cap, &pos, '\t') || !put_escaped(out, cap, &pos, value, value_len) ||
	    !put_char(out, cap, &pos, '\n'))
		return 0;
	return pos;
}

size_t dictproto_format_iter_end(char *out, size_t cap)
{
	size_t pos = 0;

	if (!put_char(out, cap, &pos, '\n'))
		return 0;
	return pos;
}

size_t dictproto_format_commit(char *out, size_t cap, bool async,
			       enum dictproto_commit_result result, uint32_t id,
			       const char *error, size_t error_len)
{
	size_t pos = 0;
	bool with_error = false;
	char c;

	switch (result) {
	case DICTPROTO_COMMIT_OK:
		c = 'O';
		break;
	case DICTPROTO_COMMIT_NOTFOUND:
		c = 'N';
		break;
	case DICTPROTO_COMMIT_FAILED:
		c = 'F';
		with_error = true;
		break;
	case DICTPROTO_COMMIT_WRITE_UNCERTAIN:
		c = 'W';
		with_error = true;
		break;
	default:
		return 0;
	}
	if (async && !put_char(out, cap, &pos, 'A'))
		return 0;
	if (!put_char(out, cap, &pos, c) || !put_u32(out, cap, &pos, id))
		return 0;
	if (with_error && (!put_char(out, cap, &pos, '\t') ||
			   !put_escaped(out, cap, &pos, error, error_len)))
		return 0;
	if (!put_char(out, cap, &pos, '\n'))
		return 0;
	return pos;
}
