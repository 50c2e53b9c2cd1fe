/* test_dictproto: Dovecot dict line protocol parsing, escaping and replies, table-driven. */
#include "vmail/dictproto.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

#define B(s) s, sizeof(s) - 1 /* literal with its exact length, NULs included */

static struct dict_cmd cmd; /* too big for the stack */

/*
 * Expected typed view, per command letter:
 *   H n = major, minor, value_type   s = user, name
 *   L s = key, username
 *   I n = flags, max_rows            s = path, username
 *   B n = id, has_expire, expire     s = username
 *   S n = id                         s = key, value
 *   U n = id                         s = key
 *   A n = id, (uint64_t)diff         s = key
 *   T n = id, (uint64_t)secs, nsecs
 *   V n = id, hide
 *   R C D n = id
 */
struct parse_row {
	const char *in;
	size_t len;
	enum dict_status status;
	size_t consumed;
	char type;
	uint64_t n[3];
	const char *s[3];
	const char *err;
};

#define ERR(in, e) { B(in), DICT_ERROR, 0, 0, { 0 }, { NULL }, e }
#define MORE(in) { B(in), DICT_NEED_MORE, 0, 0, { 0 }, { NULL }, NULL }

static const struct parse_row parse_rows[] = {
	/* H */
	{ B("H3\t2\t0\t\tauth\n"), DICT_OK, 13, 'H', { 3, 2, 0 }, { "", "auth" }, NULL },
	{ B("H4\t0\t0\t\tquota\r\n"), DICT_OK, 15, 'H', { 4, 0, 0 }, { "", "quota" }, NULL },
	{ B("H3\t0\t1\tbob\tauth\tfuture\n"), DICT_OK, 23, 'H', { 3, 0, 1 }, { "bob", "auth" }, NULL },
	{ B("H4294967295\t2\t0\t\ta\n"), DICT_OK, 19, 'H', { 4294967295u, 2, 0 }, { "", "a" }, NULL },
	{ B("H003\t2\t0\t\tauth\n"), DICT_OK, 15, 'H', { 3, 2, 0 }, { "", "auth" }, NULL },
	ERR("H3\t2\t0\t\n", "missing fields"),
	ERR("H3\n", "missing fields"),
	ERR("H\n", "missing fields"),
	ERR("H-3\t2\t0\t\tauth\n", "bad number"),
	ERR("H+3\t2\t0\t\tauth\n", "bad number"),
	ERR("H3x\t2\t0\t\tauth\n", "bad number"),
	ERR("H 3\t2\t0\t\tauth\n", "bad number"),
	ERR("H\t2\t0\t\tauth\n", "bad number"),
	ERR("H4294967296\t2\t0\t\tauth\n", "bad number"),
	ERR("H99999999999999999999999\t2\t0\t\tauth\n", "bad number"),
	/* L */
	{ B("Lshared/passdb/bob@example.com\tbob@example.com\n"), DICT_OK, 47, 'L', { 0 },
	  { "shared/passdb/bob@example.com", "bob@example.com" }, NULL },
	{ B("Lpriv/quota/storage\tbob\nLpriv/quota/messages\tbob\n"), DICT_OK, 24, 'L', { 0 },
	  { "priv/quota/storage", "bob" }, NULL },
	{ B("L\t\n"), DICT_OK, 3, 'L', { 0 }, { "", "" }, NULL },
	{ B("Lshared/a b\t\n"), DICT_OK, 13, 'L', { 0 }, { "shared/a b", "" }, NULL },
	{ B("La\001tb\001nc\001rd\0011e\001xf\001\001\tu\n"), DICT_OK, 22, 'L', { 0 },
	  { "a\tb\nc\rd\001exf\001", "u" }, NULL },
	{ B("Lkey\001\tuser\001\n"), DICT_OK, 12, 'L', { 0 }, { "key", "user" }, NULL },
	{ B("Lk\tu\textra\n"), DICT_OK, 11, 'L', { 0 }, { "k", "u" }, NULL },
	{ B("Lk\tu\t\t\t\t\t\t\t\t\t\t\t\n"), DICT_OK, 16, 'L', { 0 }, { "k", "u" }, NULL },
	ERR("Lkey\n", "missing fields"),
	ERR("L\n", "missing fields"),
	ERR("Lkey\0010\tu\n", "NUL"),
	ERR("Lk\tu\0010\n", "NUL"),
	ERR("L\0key\tu\n", "NUL"),
	/* I */
	{ B("I0\t0\tshared/userdb/\t\n"), DICT_OK, 21, 'I', { 0, 0 }, { "shared/userdb/", "" }, NULL },
	{ B("I63\t18446744073709551615\tpriv/x\tbob\n"), DICT_OK, 36, 'I',
	  { 63, UINT64_MAX }, { "priv/x", "bob" }, NULL },
	ERR("I0\t18446744073709551616\tp\tu\n", "bad number"),
	ERR("I0\t-1\tp\tu\n", "bad number"),
	ERR("I0x10\t0\tp\tu\n", "bad number"),
	ERR("I0\t0\tp\n", "missing fields"),
	/* B */
	{ B("B1\tbob@example.com\n"), DICT_OK, 19, 'B', { 1, 0, 0 }, { "bob@example.com" }, NULL },
	{ B("B7\tbob\t3600\n"), DICT_OK, 12, 'B', { 7, 1, 3600 }, { "bob" }, NULL },
	{ B("B7\tbob\t\n"), DICT_OK, 8, 'B', { 7, 0, 0 }, { "bob" }, NULL },
	{ B("B7\t\t0\n"), DICT_OK, 6, 'B', { 7, 1, 0 }, { "" }, NULL },
	ERR("B7\tbob\tsoon\n", "expire"),
	ERR("B7\tbob\t-1\n", "expire"),
	ERR("Bx\tbob\n", "transaction id"),
	ERR("B\tbob\n", "transaction id"),
	ERR("B1\n", "missing fields"),
	/* S */
	{ B("S1\tpriv/quota/storage\t1024\n"), DICT_OK, 27, 'S', { 1 },
	  { "priv/quota/storage", "1024" }, NULL },
	{ B("S1\tk\t\n"), DICT_OK, 6, 'S', { 1 }, { "k", "" }, NULL },
	{ B("S2\tk\t{\"a\":\"x\001ty\"}\n"), DICT_OK, 18, 'S', { 2 }, { "k", "{\"a\":\"x\ty\"}" }, NULL },
	ERR("S1\tk\n", "missing fields"),
	ERR("S-1\tk\tv\n", "transaction id"),
	/* U */
	{ B("U1\tpriv/quota/storage\n"), DICT_OK, 22, 'U', { 1 }, { "priv/quota/storage" }, NULL },
	ERR("U1\n", "missing fields"),
	/* A */
	{ B("A1\tpriv/quota/storage\t2048\n"), DICT_OK, 27, 'A', { 1, 2048 },
	  { "priv/quota/storage" }, NULL },
	{ B("A1\tk\t-2048\n"), DICT_OK, 11, 'A', { 1, (uint64_t)-2048 }, { "k" }, NULL },
	{ B("A1\tk\t9223372036854775807\n"), DICT_OK, 25, 'A', { 1, INT64_MAX }, { "k" }, NULL },
	{ B("A1\tk\t-9223372036854775808\n"), DICT_OK, 26, 'A', { 1, (uint64_t)INT64_MIN }, { "k" },
	  NULL },
	{ B("A1\tk\t-0\n"), DICT_OK, 8, 'A', { 1, 0 }, { "k" }, NULL },
	{ B("A1\tk\t007\n"), DICT_OK, 9, 'A', { 1, 7 }, { "k" }, NULL },
	ERR("A1\tk\t9223372036854775808\n", "diff"),
	ERR("A1\tk\t-9223372036854775809\n", "diff"),
	ERR("A1\tk\t+5\n", "diff"),
	ERR("A1\tk\t-\n", "diff"),
	ERR("A1\tk\t\n", "diff"),
	ERR("A1\tk\t12 \n", "diff"),
	ERR("A1\tk\t1e3\n", "diff"),
	ERR("A1\tk\t--1\n", "diff"),
	ERR("A1\tk\n", "missing fields"),
	/* T */
	{ B("T1\t1700000000\t999999999\n"), DICT_OK, 24, 'T', { 1, 1700000000, 999999999 }, { NULL },
	  NULL },
	{ B("T1\t-5\t0\n"), DICT_OK, 8, 'T', { 1, (uint64_t)-5, 0 }, { NULL }, NULL },
	ERR("T1\t1\t1000000000\n", "timestamp"),
	ERR("T1\t1\t-1\n", "timestamp"),
	ERR("T1\tnow\t0\n", "timestamp"),
	ERR("T1\t1\n", "missing fields"),
	/* V */
	{ B("V1\tyes\n"), DICT_OK, 7, 'V', { 1, 1 }, { NULL }, NULL },
	{ B("V1\tno\n"), DICT_OK, 6, 'V', { 1, 0 }, { NULL }, NULL },
	ERR("V1\tYES\n", "yes nor no"),
	ERR("V1\t\n", "yes nor no"),
	ERR("V1\n", "missing fields"),
	/* R C D */
	{ B("R1\n"), DICT_OK, 3, 'R', { 1 }, { NULL }, NULL },
	{ B("C42\n"), DICT_OK, 4, 'C', { 42 }, { NULL }, NULL },
	{ B("C1\nC2\n"), DICT_OK, 3, 'C', { 1 }, { NULL }, NULL },
	{ B("C1\textra\n"), DICT_OK, 9, 'C', { 1 }, { NULL }, NULL },
	{ B("D4294967295\r\n"), DICT_OK, 13, 'D', { 4294967295u }, { NULL }, NULL },
	ERR("C\n", "transaction id"),
	ERR("C-1\n", "transaction id"),
	ERR("C4294967296\n", "transaction id"),
	ERR("R1x\n", "transaction id"),
	/* garbage */
	ERR("X1\n", "unknown"),
	ERR("l\tk\tu\n", "unknown"),
	ERR("\tC1\n", "unknown"),
	ERR("GET / HTTP/1.0\r\n", "unknown"),
	ERR("\n", "empty"),
	ERR("\r\n", "empty"),
	ERR("\0", "NUL"),
	ERR("L\0", "NUL"),
	/* incomplete */
	MORE(""),
	MORE("C1"),
	MORE("C1\r"),
	MORE("H3\t2\t0\t\tauth"),
	MORE("Lkey\001"),
	MORE("X"), /* garbage is judged once the line is complete */
};

#define NPARSE (sizeof(parse_rows) / sizeof(parse_rows[0]))

static void check_str(int row, const char *what, const char *got, const char *want)
{
	ck_assert_msg(got != NULL, "row %d: %s is NULL", row, what);
	ck_assert_msg(strcmp(got, want) == 0, "row %d: %s \"%s\", want \"%s\"", row, what, got, want);
}

static void check_view(int row, const struct parse_row *r)
{
	switch (cmd.type) {
	case DICT_CMD_HELLO:
		ck_assert_uint_eq(cmd.u.hello.major, r->n[0]);
		ck_assert_uint_eq(cmd.u.hello.minor, r->n[1]);
		ck_assert_uint_eq(cmd.u.hello.value_type, r->n[2]);
		check_str(row, "user", cmd.u.hello.user, r->s[0]);
		check_str(row, "name", cmd.u.hello.name, r->s[1]);
		break;
	case DICT_CMD_LOOKUP:
		check_str(row, "key", cmd.u.lookup.key, r->s[0]);
		check_str(row, "username", cmd.u.lookup.username, r->s[1]);
		break;
	case DICT_CMD_ITERATE:
		ck_assert_uint_eq(cmd.u.iterate.flags, r->n[0]);
		ck_assert_uint_eq(cmd.u.iterate.max_rows, r->n[1]);
		check_str(row, "path", cmd.u.iterate.path, r->s[0]);
		check_str(row, "username", cmd.u.iterate.username, r->s[1]);
		break;
	case DICT_CMD_BEGIN:
		ck_assert_uint_eq(cmd.u.begin.id, r->n[0]);
		ck_assert_uint_eq(cmd.u.begin.has_expire, r->n[1]);
		ck_assert_uint_eq(cmd.u.begin.expire_secs, r->n[2]);
		check_str(row, "username", cmd.u.begin.username, r->s[0]);
		break;
	case DICT_CMD_SET:
		ck_assert_uint_eq(cmd.u.set.id, r->n[0]);
		check_str(row, "key", cmd.u.set.key, r->s[0]);
		check_str(row, "value", cmd.u.set.value, r->s[1]);
		ck_assert_uint_eq(cmd.u.set.value_len, strlen(r->s[1]));
		break;
	case DICT_CMD_UNSET:
		ck_assert_uint_eq(cmd.u.unset.id, r->n[0]);
		check_str(row, "key", cmd.u.unset.key, r->s[0]);
		break;
	case DICT_CMD_ATOMIC_INC:
		ck_assert_uint_eq(cmd.u.atomic_inc.id, r->n[0]);
		ck_assert_uint_eq((uint64_t)cmd.u.atomic_inc.diff, r->n[1]);
		check_str(row, "key", cmd.u.atomic_inc.key, r->s[0]);
		break;
	case DICT_CMD_TIMESTAMP:
		ck_assert_uint_eq(cmd.u.timestamp.id, r->n[0]);
		ck_assert_uint_eq((uint64_t)cmd.u.timestamp.secs, r->n[1]);
		ck_assert_uint_eq(cmd.u.timestamp.nsecs, r->n[2]);
		break;
	case DICT_CMD_HIDE_LOG_VALUES:
		ck_assert_uint_eq(cmd.u.hide_log_values.id, r->n[0]);
		ck_assert_uint_eq(cmd.u.hide_log_values.hide, r->n[1]);
		break;
	case DICT_CMD_ROLLBACK:
	case DICT_CMD_COMMIT:
	case DICT_CMD_COMMIT_ASYNC:
		ck_assert_uint_eq(cmd.u.txn.id, r->n[0]);
		break;
	default:
		ck_abort_msg("row %d: type %d", row, cmd.type);
	}
}

/*
 * parse_resumed - in[0..len) arriving one byte per read: parsed with a scan
 * after each byte until it is not "need more".  Every prefix must give what a
 * one-shot parse of that prefix gives: same status, consumed count and error.
 */
static enum dict_status parse_resumed(const char *in, size_t len, size_t *consumed, const char **err)
{
	struct dictproto_scan scan = DICTPROTO_SCAN_INIT;
	enum dict_status st = DICT_NEED_MORE;

	for (size_t k = 0; k <= len && st == DICT_NEED_MORE; k++) {
		const char *one_err = NULL;
		size_t one_used = 99;
		enum dict_status one = dictproto_parse_line(in, k, NULL, &cmd, &one_used, &one_err);
		*err = NULL;
		st = dictproto_parse_line(in, k, &scan, &cmd, consumed, err);
		ck_assert_msg(st == one && *consumed == one_used && *err == one_err,
			      "prefix %zu: resumed %d/%zu/%s, one-shot %d/%zu/%s", k, st, *consumed,
			      *err ? *err : "-", one, one_used, one_err ? one_err : "-");
	}
	return st;
}

/* Each row parsed in one call (even _i) and one byte per call with a scan (odd _i). */
START_TEST(test_parse_table)
{
	const struct parse_row *r = &parse_rows[_i / 2];
	const char *err = NULL;
	size_t consumed = 99;

	enum dict_status st = _i % 2 ? parse_resumed(r->in, r->len, &consumed, &err)
				     : dictproto_parse_line(r->in, r->len, NULL, &cmd, &consumed, &err);
	ck_assert_msg(st == r->status, "row %d: status %d, want %d (err %s)", _i / 2, st, r->status,
		      err ? err : "-");
	if (st == DICT_ERROR) {
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, r->err), "row %d: err \"%s\" lacks \"%s\"", _i / 2, err, r->err);
	}
	if (st != DICT_OK) {
		ck_assert_uint_eq(consumed, 0);
		return;
	}
	ck_assert_uint_eq(consumed, r->consumed);
	ck_assert_int_eq(cmd.type, r->type);
	ck_assert_uint_le(cmd.nfields, DICT_MAX_FIELDS);
	for (size_t i = 0; i < cmd.nfields; i++)
		ck_assert_uint_eq(strlen(cmd.field[i]), cmd.field_len[i]);
	check_view(_i / 2, r);
}
END_TEST

/* A 2.3.19 session (protocols.md 3.8) fed in chunks of _i + 1 bytes. */
static const char session[] =
	"H3\t2\t0\t\tauth\n"
	"Lshared/passdb/bob@example.com\tbob@example.com\n"
	"B1\tbob@example.com\n"
	"A1\tpriv/quota/storage\t2048\n"
	"A1\tpriv/quota/messages\t1\n"
	"V1\tno\n"
	"T1\t1700000000\t5\n"
	"S1\tpriv/quota/x\tv\001tw\n"
	"U1\tpriv/quota/y\n"
	"C1\n"
	"B2\tbob\t60\r\n"
	"R2\n"
	"I0\t0\tshared/userdb/\t\n"
	"D3\n";
static const char session_types[] = "HLBAAVTSUCBRID";

START_TEST(test_split_reads)
{
	size_t chunk = (size_t)_i + 1, total = sizeof(session) - 1;
	char buf[sizeof(session)];
	size_t have = 0, fed = 0, n = 0;
	struct dictproto_scan scan = DICTPROTO_SCAN_INIT;

	while (fed < total) {
		size_t take = total - fed < chunk ? total - fed : chunk;
		memcpy(buf + have, session + fed, take);
		have += take;
		fed += take;
		for (;;) {
			const char *err = NULL;
			size_t used;
			enum dict_status st = dictproto_parse_line(buf, have, &scan, &cmd, &used, &err);
			ck_assert_msg(st != DICT_ERROR, "%s", err);
			if (st == DICT_NEED_MORE)
				break;
			ck_assert_uint_lt(n, sizeof(session_types) - 1);
			ck_assert_int_eq(cmd.type, session_types[n]);
			/* A line completes exactly on its '\n'. */
			ck_assert_int_eq(buf[used - 1], '\n');
			n++;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
	}
	ck_assert_uint_eq(n, sizeof(session_types) - 1);
	ck_assert_uint_eq(have, 0);
}
END_TEST

START_TEST(test_every_prefix_needs_more)
{
	size_t first;

	ck_assert_int_eq(dictproto_parse_line(session, sizeof(session) - 1, NULL, &cmd, &first, NULL),
			 DICT_OK);
	for (size_t k = 0; k < first; k++)
		ck_assert_msg(dictproto_parse_line(session, k, NULL, &cmd, &(size_t){0}, NULL) ==
				      DICT_NEED_MORE,
			      "prefix %zu", k);
}
END_TEST

/* Lines around DICT_MAX_LINE: "L" + key + "\tu" (+ "\r") (+ "\n"). */
struct long_row {
	size_t line_len; /* bytes before '\n' */
	bool cr;
	bool newline;
	enum dict_status status;
};

static const struct long_row long_rows[] = {
	{ DICT_MAX_LINE, false, true, DICT_OK },
	{ DICT_MAX_LINE, true, true, DICT_OK },
	{ DICT_MAX_LINE, false, false, DICT_NEED_MORE },
	{ DICT_MAX_LINE + 1, false, true, DICT_ERROR },
	{ DICT_MAX_LINE + 1, true, true, DICT_ERROR },
	{ DICT_MAX_LINE + 1, false, false, DICT_ERROR }, /* before the '\n' arrives */
	{ 4 * DICT_MAX_LINE, false, false, DICT_ERROR },
};

#define NLONG (sizeof(long_rows) / sizeof(long_rows[0]))

START_TEST(test_long_lines)
{
	static char buf[4 * DICT_MAX_LINE + 2];
	const struct long_row *r = &long_rows[_i];
	size_t len = r->line_len, used;
	const char *err = NULL;

	buf[0] = 'L';
	memset(buf + 1, 'k', len - 1);
	memcpy(buf + len - (r->cr ? 3 : 2), r->cr ? "\tu\r" : "\tu", r->cr ? 3 : 2);
	if (r->newline)
		buf[len++] = '\n';
	enum dict_status st = dictproto_parse_line(buf, len, NULL, &cmd, &used, &err);
	ck_assert_msg(st == r->status, "row %d: status %d (err %s)", _i, st, err ? err : "-");
	if (st == DICT_ERROR)
		ck_assert_ptr_nonnull(strstr(err, "too long"));
	if (st == DICT_OK) {
		ck_assert_uint_eq(used, len);
		ck_assert_uint_eq(strlen(cmd.u.lookup.key), r->line_len - (r->cr ? 4 : 3));
		check_str(_i, "username", cmd.u.lookup.username, "u");
	}
}
END_TEST

/* A maximal line of escapes in the last field: scratch must hold it all. */
START_TEST(test_max_line_all_escapes)
{
	static char buf[DICT_MAX_LINE + 1];
	size_t used;

	/* "S7" and six tabs: id 7, then empty fields up to the seventh. */
	memcpy(buf, "S7\t\t\t\t\t\t", 8);
	for (size_t i = 8; i < DICT_MAX_LINE; i += 2)
		memcpy(buf + i, "\001n", 2);
	buf[DICT_MAX_LINE] = '\n';
	ck_assert_int_eq(dictproto_parse_line(buf, sizeof(buf), NULL, &cmd, &used, NULL), DICT_OK);
	ck_assert_uint_eq(used, sizeof(buf));
	ck_assert_uint_eq(cmd.u.set.id, 7);
	ck_assert_uint_eq(cmd.nfields, 7);
	ck_assert_uint_eq(cmd.field_len[6], (DICT_MAX_LINE - 8) / 2);
	ck_assert_int_eq(cmd.field[6][0], '\n');
}
END_TEST

struct escape_row {
	const char *in;
	size_t len;
	const char *out;
	size_t out_len;
};

static const struct escape_row escape_rows[] = {
	{ B(""), B("") },
	{ B("plain"), B("plain") },
	{ B("\t"), B("\001t") },
	{ B("\n"), B("\001n") },
	{ B("\r"), B("\001r") },
	{ B("\001"), B("\0011") },
	{ B("\0"), B("\0010") },
	{ B("a\tb\nc\rd\001e\0f"), B("a\001tb\001nc\001rd\0011e\0010f") },
	{ B("{\"k\":\"v\"}"), B("{\"k\":\"v\"}") },
	{ B("\xff\x02t"), B("\xff\x02t") },
};

#define NESCAPE (sizeof(escape_rows) / sizeof(escape_rows[0]))

START_TEST(test_escape_table)
{
	const struct escape_row *r = &escape_rows[_i];
	char out[64];

	memset(out, 'X', sizeof(out));
	ck_assert_uint_eq(dictproto_escape(out, sizeof(out), r->in, r->len), r->out_len);
	ck_assert_mem_eq(out, r->out, r->out_len);
	ck_assert_int_eq(out[r->out_len], 'X');
	ck_assert_uint_eq(dictproto_escape(out, r->out_len, r->in, r->len), r->out_len);
	for (size_t cap = 0; cap < r->out_len; cap++)
		ck_assert_uint_eq(dictproto_escape(out, cap, r->in, r->len), (size_t)-1);
}
END_TEST

/* escape then parse gives back random bytes (NUL excluded: the parser rejects it) */
START_TEST(test_escape_roundtrip)
{
	static char key[600], value[600], ekey[1200], evalue[1200], line[2500];
	unsigned seed = 777u + (unsigned)_i * 7919u;
	size_t klen = (size_t)_i * 13 % sizeof(key), vlen = (size_t)_i * 29 % sizeof(value);

	for (size_t i = 0; i < klen + vlen; i++) {
		seed = seed * 1103515245u + 12345u;
		/* favour the bytes that need escaping */
		char c = (seed >> 24) % 4 == 0 ? "\001\t\r\n"[(seed >> 16) % 4]
					       : (char)(1 + (seed >> 16) % 255);
		if (i < klen)
			key[i] = c;
		else
			value[i - klen] = c;
	}
	size_t ek = dictproto_escape(ekey, sizeof(ekey), key, klen);
	size_t ev = dictproto_escape(evalue, sizeof(evalue), value, vlen);
	ck_assert_uint_ne(ek, (size_t)-1);
	ck_assert_uint_ne(ev, (size_t)-1);
	ck_assert_ptr_null(memchr(ekey, '\t', ek));
	ck_assert_ptr_null(memchr(evalue, '\n', ev));
	int n = snprintf(line, sizeof(line), "S%d\t%.*s\t%.*s\n", _i, (int)ek, ekey, (int)ev, evalue);
	ck_assert_int_gt(n, 0);

	size_t used;
	const char *err = NULL;
	ck_assert_msg(dictproto_parse_line(line, (size_t)n, NULL, &cmd, &used, &err) == DICT_OK, "%s", err);
	ck_assert_uint_eq(used, (size_t)n);
	ck_assert_uint_eq((unsigned)cmd.u.set.id, (unsigned)_i);
	ck_assert_uint_eq(cmd.field_len[1], klen);
	ck_assert_mem_eq(cmd.u.set.key, key, klen);
	ck_assert_uint_eq(cmd.u.set.value_len, vlen);
	ck_assert_mem_eq(cmd.u.set.value, value, vlen);
}
END_TEST

enum fmt_kind { FMT_FOUND, FMT_NOTFOUND, FMT_FAIL, FMT_ROW, FMT_END, FMT_COMMIT, FMT_COMMIT_ASYNC };

struct format_row {
	enum fmt_kind kind;
	enum dictproto_commit_result result;
	uint32_t id;
	const char *a;
	size_t a_len;
	const char *b;
	size_t b_len;
	const char *out;
	size_t out_len;
};

static const struct format_row format_rows[] = {
	{ FMT_FOUND, 0, 0, B("{\"password\":\"x\"}"), NULL, 0, B("O{\"password\":\"x\"}\n") },
	{ FMT_FOUND, 0, 0, B("a\tb\nc"), NULL, 0, B("Oa\001tb\001nc\n") },
	{ FMT_FOUND, 0, 0, B(""), NULL, 0, B("O\n") },
	{ FMT_NOTFOUND, 0, 0, NULL, 0, NULL, 0, B("N\n") },
	{ FMT_FAIL, 0, 0, B("db down\r\n"), NULL, 0, B("Fdb down\001r\001n\n") },
	{ FMT_ROW, 0, 0, B("shared/userdb/bob"), B("x"), B("Oshared/userdb/bob\tx\n") },
	{ FMT_ROW, 0, 0, B("k\t1"), B(""), B("Ok\001t1\t\n") },
	{ FMT_END, 0, 0, NULL, 0, NULL, 0, B("\n") },
	{ FMT_COMMIT, DICTPROTO_COMMIT_OK, 1, NULL, 0, NULL, 0, B("O1\n") },
	{ FMT_COMMIT, DICTPROTO_COMMIT_NOTFOUND, 0, NULL, 0, NULL, 0, B("N0\n") },
	{ FMT_COMMIT, DICTPROTO_COMMIT_FAILED, 4294967295u, B("oops\tx"), NULL, 0,
	  B("F4294967295\toops\001tx\n") },
	{ FMT_COMMIT, DICTPROTO_COMMIT_FAILED, 5, B(""), NULL, 0, B("F5\t\n") },
	{ FMT_COMMIT, DICTPROTO_COMMIT_WRITE_UNCERTAIN, 12, B("lost"), NULL, 0, B("W12\tlost\n") },
	{ FMT_COMMIT, DICTPROTO_COMMIT_OK, 12, B("ignored"), NULL, 0, B("O12\n") },
	{ FMT_COMMIT_ASYNC, DICTPROTO_COMMIT_OK, 3, NULL, 0, NULL, 0, B("AO3\n") },
	{ FMT_COMMIT_ASYNC, DICTPROTO_COMMIT_FAILED, 3, B("e"), NULL, 0, B("AF3\te\n") },
};

#define NFORMAT (sizeof(format_rows) / sizeof(format_rows[0]))

static size_t run_format(const struct format_row *r, char *out, size_t cap)
{
	switch (r->kind) {
	case FMT_FOUND:
		return dictproto_format_found(out, cap, r->a, r->a_len);
	case FMT_NOTFOUND:
		return dictproto_format_notfound(out, cap);
	case FMT_FAIL:
		return dictproto_format_fail(out, cap, r->a, r->a_len);
	case FMT_ROW:
		return dictproto_format_iter_row(out, cap, r->a, r->a_len, r->b, r->b_len);
	case FMT_END:
		return dictproto_format_iter_end(out, cap);
	case FMT_COMMIT:
	case FMT_COMMIT_ASYNC:
		return dictproto_format_commit(out, cap, r->kind == FMT_COMMIT_ASYNC, r->result, r->id,
					       r->a, r->a_len);
	}
	return 0;
}

START_TEST(test_format_table)
{
	const struct format_row *r = &format_rows[_i];
	char out[64];

	memset(out, 'X', sizeof(out));
	size_t n = run_format(r, out, sizeof(out));
	ck_assert_msg(n == r->out_len, "row %d: %zu bytes, want %zu", _i, n, r->out_len);
	ck_assert_mem_eq(out, r->out, n);
	ck_assert_int_eq(out[n], 'X');
	ck_assert_uint_eq(run_format(r, out, r->out_len), r->out_len);
	for (size_t cap = 0; cap < r->out_len; cap++)
		ck_assert_msg(run_format(r, out, cap) == 0, "row %d: cap %zu", _i, cap);
}
END_TEST

START_TEST(test_bad_commit_result)
{
	char out[64];

	ck_assert_uint_eq(dictproto_format_commit(out, sizeof(out), false,
						  (enum dictproto_commit_result)42, 1, NULL, 0),
			  0);
}
END_TEST

static Suite *dictproto_suite(void)
{
	Suite *s = suite_create("dictproto");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_table, 0, 2 * NPARSE);
	tcase_add_loop_test(tc, test_split_reads, 0, 8);
	tcase_add_test(tc, test_every_prefix_needs_more);
	tcase_add_loop_test(tc, test_long_lines, 0, NLONG);
	tcase_add_test(tc, test_max_line_all_escapes);
	tcase_add_loop_test(tc, test_escape_table, 0, NESCAPE);
	tcase_add_loop_test(tc, test_escape_roundtrip, 0, 64);
	tcase_add_loop_test(tc, test_format_table, 0, NFORMAT);
	tcase_add_test(tc, test_bad_commit_result);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dictproto_suite)
