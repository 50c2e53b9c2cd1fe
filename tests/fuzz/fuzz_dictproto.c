/* fuzz_dictproto: Dovecot dict command parsing (whole and in pieces), escaping round trips and reply lines.
 */
#include "vmail/dictproto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_chunks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static struct dict_cmd cmd, cmd2, cmd3;
static char line[2 * DICT_MAX_LINE + 64];

static void check_cmd(const char *buf, size_t used)
{
	CHECK(used >= 2 && used <= DICT_MAX_LINE + 1 && buf[used - 1] == '\n');
	CHECK((char)cmd.type == buf[0]);
	CHECK(cmd.nfields >= 1 && cmd.nfields <= DICT_MAX_FIELDS);
	for (size_t i = 0; i < cmd.nfields; i++) {
		CHECK(cmd.field[i] >= cmd.scratch &&
		      cmd.field[i] + cmd.field_len[i] < cmd.scratch + sizeof(cmd.scratch));
		CHECK(strlen(cmd.field[i]) == cmd.field_len[i]);
	}
}

/* rebuild - escape cmd's fields back into a line; it must parse to the same fields */
static void rebuild(void)
{
	size_t pos = 0;

	line[pos++] = (char)cmd.type;
	for (size_t i = 0; i < cmd.nfields; i++) {
		if (i)
			line[pos++] = '\t';
		size_t n = dictproto_escape(line + pos, sizeof(line) - pos - 1, cmd.field[i],
					    cmd.field_len[i]);
		CHECK(n != (size_t)-1);
		pos += n;
	}
	if (pos > DICT_MAX_LINE)
		return;
	line[pos++] = '\n';
	size_t used;
	CHECK(dictproto_parse_line(line, pos, NULL, &cmd2, &used, NULL) == DICT_OK && used == pos);
	CHECK(cmd2.type == cmd.type && cmd2.nfields == cmd.nfields);
	for (size_t i = 0; i < cmd.nfields; i++)
		CHECK(cmd2.field_len[i] == cmd.field_len[i] &&
		      memcmp(cmd2.field[i], cmd.field[i], cmd.field_len[i]) == 0);
}

/* escape_round_trip - "L<esc data>\t<esc data>\n" gives data back unless it holds NUL */
static void escape_round_trip(const char *buf, size_t size)
{
	size_t pos = 0;

	line[pos++] = 'L';
	size_t n = dictproto_escape(line + pos, DICT_MAX_LINE, buf, size);
	if (n == (size_t)-1 || 2 * n + 2 > DICT_MAX_LINE)
		return;
	CHECK(n >= size && !memchr(line + pos, '\t', n) && !memchr(line + pos, '\n', n));
	memcpy(line + pos + n + 1, line + pos, n);
	line[pos + n] = '\t';
	pos += 2 * n + 1;
	line[pos++] = '\n';
	size_t used;
	enum dict_status st = dictproto_parse_line(line, pos, NULL, &cmd2, &used, NULL);
	if (memchr(buf, '\0', size)) {
		CHECK(st == DICT_ERROR);
		return;
	}
	CHECK(st == DICT_OK && used == pos);
	CHECK(strlen(cmd2.u.lookup.key) == size && memcmp(cmd2.u.lookup.key, buf, size) == 0);
	CHECK(strcmp(cmd2.u.lookup.key, cmd2.u.lookup.username) == 0);
}

/* replies are one line: no raw '\n' but the last, and the expected tabs */
static void check_reply_line(size_t n, size_t tabs)
{
	CHECK(n >= 1 && line[n - 1] == '\n');
	CHECK(!memchr(line, '\n', n - 1));
	size_t t = 0;
	for (size_t i = 0; i < n; i++)
		t += line[i] == '\t';
	CHECK(t == tabs);
}

static void replies(const char *buf, size_t size)
{
	size_t half = size / 2, n;

	if ((n = dictproto_format_found(line, sizeof(line), buf, size)))
		check_reply_line(n, 0);
	if ((n = dictproto_format_fail(line, sizeof(line), buf, size)))
		check_reply_line(n, 0);
	if ((n = dictproto_format_iter_row(line, sizeof(line), buf, half, buf + half, size - half)))
		check_reply_line(n, 1);
	n = dictproto_format_commit(line, sizeof(line), size & 1, DICTPROTO_COMMIT_FAILED,
				    (uint32_t)size, buf, size);
	if (n)
		check_reply_line(n, 1);
}

/*
 * chunked - the input as a stream arriving in reads of random sizes, parsed as vmaild does:
 * with a scan state, everything buffered since the last whole line.  After every read each
 * result must equal a one-shot parse of the same bytes.
 */
static void chunked(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct dictproto_scan scan = DICTPROTO_SCAN_INIT;
	struct fuzz_chunks fc;
	size_t off = 0;

	fuzz_chunks_init(&fc, data, size);
	while (fuzz_chunks_read(&fc)) {
		size_t fed = fc.fed;
		for (;;) {
			const char *err = NULL, *err1 = NULL;
			size_t used = 0, used1 = 0;
			enum dict_status one =
				dictproto_parse_line(buf + off, fed - off, NULL, &cmd3, &used1, &err1);
			enum dict_status st =
				dictproto_parse_line(buf + off, fed - off, &scan, &cmd2, &used, &err);
			CHECK(st == one && used == used1 && err == err1);
			if (st == DICT_ERROR)
				return;
			if (st == DICT_NEED_MORE) {
				CHECK(scan.scanned <= fed - off);
				break;
			}
			CHECK(scan.scanned == 0);
			CHECK(cmd2.type == cmd3.type && cmd2.nfields == cmd3.nfields);
			for (size_t i = 0; i < cmd2.nfields; i++)
				CHECK(cmd2.field_len[i] == cmd3.field_len[i] &&
				      memcmp(cmd2.field[i], cmd3.field[i], cmd2.field_len[i]) == 0);
			off += used;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	while (off < size) {
		const char *err = NULL;
		size_t used;
		enum dict_status st = dictproto_parse_line(buf + off, size - off, NULL, &cmd, &used, &err);
		if (st == DICT_ERROR) {
			CHECK(err != NULL);
			break;
		}
		if (st == DICT_NEED_MORE) {
			CHECK(size - off <= DICT_MAX_LINE);
			CHECK(!memchr(buf + off, '\n', size - off));
			break;
		}
		check_cmd(buf + off, used);
		CHECK(dictproto_parse_line(buf + off, used - 1, NULL, &cmd2, &(size_t){0}, NULL) ==
		      DICT_NEED_MORE);
		rebuild();
		off += used;
	}

	chunked(data, size);
	escape_round_trip(buf, size);
	replies(buf, size);
	return 0;
}
