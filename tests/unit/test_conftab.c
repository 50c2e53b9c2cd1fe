/* test_conftab: the key-table engine on a table of its own: every type, bounds, file errors, printing. */
#include "vmail/conftab.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/log.h"
#include "check_main.h"

struct demo {
	char *name;
	char *listen;
	char *need;
	char *secret;
	char *hidden;
	unsigned count;
	unsigned wait;   /* ms */
	unsigned buffer; /* bytes */
	unsigned mode;
	unsigned flag;
	unsigned lax;
	enum log_level level;
	unsigned target;
};

#define OFF(field) offsetof(struct demo, field)

static const struct conftab_row rows[] = {
	{ "name", CONFTAB_STRING, OFF(name), "anon", 0, 0, CONFTAB_RELOAD, "a string" },
	{ "listen", CONFTAB_ENDPOINTS, OFF(listen), "", 0, 0, 0, "endpoints, may be off" },
	{ "need", CONFTAB_ENDPOINTS, OFF(need), "inet:127.0.0.1:1", 0, 0, CONFTAB_NONEMPTY,
	  "endpoints, at least one" },
	{ "secret", CONFTAB_STRING, OFF(secret), "", 0, 0, CONFTAB_SECRET, "masked with a password" },
	{ "hidden", CONFTAB_STRING, OFF(hidden), "x", 0, 0, CONFTAB_HIDDEN, "always masked" },
	{ "count", CONFTAB_UINT, OFF(count), "5", 1, 10, CONFTAB_RELOAD, "a bounded number" },
	{ "wait", CONFTAB_DURATION, OFF(wait), "3s", 100, 60000, 0, "a bounded duration" },
	{ "buffer", CONFTAB_SIZE, OFF(buffer), "1M", 4096, 1UL << 30, 0, "a bounded size" },
	{ "mode", CONFTAB_MODE, OFF(mode), "0660", 0, 0777, 0, "a mode" },
	{ "flag", CONFTAB_BOOL, OFF(flag), "no", 0, 1, 0, "yes or no" },
	{ "lax", CONFTAB_BOOL, OFF(lax), "yes", 0, 1, CONFTAB_BOOL_ALIASES, "yes, true or 1" },
	{ "level", CONFTAB_LOG_LEVEL, OFF(level), "info", 0, 0, 0, "a log level" },
	{ "target", CONFTAB_LOG_TARGET, OFF(target), "stderr", 0, 0, 0, "a log target" },
};

static const struct conftab strict = CONFTAB_TABLE(rows, false);
static const struct conftab shared = CONFTAB_TABLE(rows, true);

static const struct conftab_row required_rows[] = {
	{ "must", CONFTAB_STRING, 0, NULL, 0, 0, CONFTAB_REQUIRED, "no default" },
};
static const struct conftab required = CONFTAB_TABLE(required_rows, false);

/* parse - text through cfgfile and the table into a zeroed demo */
static bool parse(const struct conftab *t, const char *text, struct demo *d, char *err,
		  size_t errlen)
{
	struct cfgfile cf;
	memset(d, 0, sizeof(*d));
	if (!cfgfile_parse(text, strlen(text), &cf, err, errlen))
		return false;
	bool ok = conftab_apply(t, &cf, d, err, errlen);
	cfgfile_free(&cf);
	return ok;
}

START_TEST(test_defaults)
{
	struct demo d;
	char err[256] = "";
	ck_assert_msg(parse(&strict, "", &d, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(d.name, "anon");
	ck_assert_str_eq(d.listen, "");
	ck_assert_uint_eq(d.count, 5);
	ck_assert_uint_eq(d.wait, 3000);
	ck_assert_uint_eq(d.buffer, 1024 * 1024);
	ck_assert_uint_eq(d.mode, 0660);
	ck_assert_uint_eq(d.flag, 0);
	ck_assert_uint_eq(d.lax, 1);
	ck_assert_int_eq(d.level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(d.target, 0);
	conftab_free(&strict, &d);
	ck_assert_ptr_null(d.name);
	/* every default formats back to itself */
	ck_assert(parse(&strict, "", &d, err, sizeof(err)));
	for (size_t i = 0; i < strict.count; i++) {
		char value[64];
		conftab_format_value(&rows[i], &d, value, sizeof(value));
		ck_assert_str_eq(value, rows[i].def);
	}
	conftab_free(&strict, &d);
}
END_TEST

/* One line, and either the value it stores (formatted back) or the error it gives. */
struct value_row {
	const char *line;
	const char *formatted; /* NULL: must fail */
	const char *error;
};

static const struct value_row value_rows[] = {
	/* strings and endpoints, empty values */
	{ "name = x y  z", "x y  z", NULL },
	{ "name =", "", NULL },
	{ "listen =", "", NULL },
	{ "listen = unix:/run/a, inet:127.0.0.1:25", "unix:/run/a, inet:127.0.0.1:25", NULL },
	{ "listen = tcp:1.2.3.4:5", NULL, "line 1: listen: \"tcp:1.2.3.4:5\": expected unix:PATH" },
	{ "need =", NULL, "line 1: need: at least one listener is needed" },
	{ "need = inet:127.0.0.1:9", "inet:127.0.0.1:9", NULL },
	/* whole numbers */
	{ "count = 10", "10", NULL },
	{ "count = 1", "1", NULL },
	{ "count = 0", NULL, "line 1: count: \"0\" is out of range 1..10" },
	{ "count = 11", NULL, "line 1: count: \"11\" is out of range 1..10" },
	{ "count = -1", NULL, "line 1: count: \"-1\": expected a whole number" },
	{ "count = 4x", NULL, "expected a whole number" },
	{ "count =", NULL, "line 1: count: \"\": expected a whole number" },
	{ "count = 99999999999999999999999", NULL, "expected a whole number" },
	/* durations */
	{ "wait = 250ms", "250ms", NULL },
	{ "wait = 2", "2s", NULL },
	{ "wait = 1m", "60s", NULL },
	{ "wait = 99ms", NULL, "line 1: wait: \"99ms\" is out of range 100ms..60s" },
	{ "wait = 2m", NULL, "out of range 100ms..60s" },
	{ "wait = 1.5s", NULL, "line 1: wait: \"1.5s\": expected a duration such as 500ms, 3s, 2m or 1h" },
	{ "wait =", NULL, "expected a duration" },
	/* sizes */
	{ "buffer = 64K", "64K", NULL },
	{ "buffer = 4097", "4097", NULL },
	{ "buffer = 1K", NULL, "line 1: buffer: \"1K\" is out of range 4K..1G" },
	{ "buffer = 1X", NULL, "expected a size such as 65536, 64K, 1M or 1G" },
	/* modes */
	{ "mode = 0600", "0600", NULL },
	{ "mode = 640", "0640", NULL },
	{ "mode = 0680", NULL, "line 1: mode: \"0680\": expected an octal mode such as 0660" },
	{ "mode = 1777", NULL, "out of range 0000..0777" },
	/* names */
	{ "flag = yes", "yes", NULL },
	{ "flag = true", NULL, "line 1: flag: \"true\": expected yes or no" },
	{ "flag = 1", NULL, "expected yes or no" },
	{ "flag =", NULL, "expected yes or no" },
	{ "lax = no", "no", NULL },
	{ "lax = false", "no", NULL },
	{ "lax = 1", "yes", NULL },
	{ "lax = on", NULL, "line 1: lax: \"on\": expected yes or no" },
	{ "level = debug", "debug", NULL },
	{ "level = DEBUG", NULL, "\"DEBUG\": expected error, warning, notice, info or debug" },
	{ "target = syslog", "syslog", NULL },
	{ "target = file", NULL, "line 1: target: \"file\": expected stderr or syslog" },
	/* the file around the values */
	{ "nmae = x", NULL, "line 1: unknown key \"nmae\"" },
	{ "name = a\nname = b", NULL, "line 2: duplicate key \"name\" (first on line 1)" },
};

START_TEST(test_value)
{
	const struct value_row *row = &value_rows[_i];
	struct demo d;
	char err[256] = "";
	bool ok = parse(&strict, row->line, &d, err, sizeof(err));
	if (!row->formatted) {
		ck_assert_msg(!ok, "accepted: %s", row->line);
		ck_assert_msg(strstr(err, row->error), "%s: got \"%s\", want \"%s\"", row->line, err,
			      row->error);
		ck_assert_ptr_null(d.name); /* failure leaves nothing allocated */
		conftab_free(&strict, &d);
		return;
	}
	ck_assert_msg(ok, "%s: %s", row->line, err);
	const char *key = row->line;
	size_t keylen = strcspn(key, " =");
	for (size_t i = 0; i < strict.count; i++) {
		if (strlen(rows[i].name) != keylen || strncmp(rows[i].name, key, keylen) != 0)
			continue;
		char value[128];
		conftab_format_value(&rows[i], &d, value, sizeof(value));
		ck_assert_str_eq(value, row->formatted);
	}
	conftab_free(&strict, &d);
}
END_TEST

START_TEST(test_shared_file_and_required)
{
	struct demo d;
	char err[256] = "";
	ck_assert_msg(parse(&shared, "other_program = 1\ncount = 7\n", &d, err, sizeof(err)), "%s",
		      err);
	ck_assert_uint_eq(d.count, 7);
	conftab_free(&shared, &d);
	/* a bad value is still an error in a shared file */
	ck_assert(!parse(&shared, "other_program = 1\ncount = 70\n", &d, err, sizeof(err)));
	ck_assert_str_eq(err, "line 2: count: \"70\" is out of range 1..10");

	char *must = NULL;
	struct cfgfile cf;
	ck_assert(cfgfile_parse("", 0, &cf, err, sizeof(err)));
	ck_assert(!conftab_apply(&required, &cf, &must, err, sizeof(err)));
	ck_assert_str_eq(err, "must: required key is missing");
	ck_assert_ptr_null(must);
	/* picking keys: a missing required key is "" and the caller decides */
	static const char *const keys[] = { "must", NULL };
	ck_assert(conftab_apply_keys(&required, &cf, &must, keys, err, sizeof(err)));
	ck_assert_str_eq(must, "");
	conftab_free(&required, &must);
	cfgfile_free(&cf);
}
END_TEST

START_TEST(test_apply_keys)
{
	static const char *const keys[] = { "wait", "name", NULL };
	const char *text = "wait = 500ms\nname = picked\ncount = 999\nnot_ours = x\n";
	struct cfgfile cf;
	struct demo d;
	char err[256] = "";
	memset(&d, 0, sizeof(d));
	ck_assert(cfgfile_parse(text, strlen(text), &cf, err, sizeof(err)));
	ck_assert_msg(conftab_apply_keys(&strict, &cf, &d, keys, err, sizeof(err)), "%s", err);
	ck_assert_uint_eq(d.wait, 500);
	ck_assert_str_eq(d.name, "picked");
	ck_assert_uint_eq(d.count, 5); /* not picked: the default, the bad value never read */
	conftab_free(&strict, &d);
	cfgfile_free(&cf);
	/* a picked key is checked by its row */
	text = "wait = 5ms\n";
	memset(&d, 0, sizeof(d));
	ck_assert(cfgfile_parse(text, strlen(text), &cf, err, sizeof(err)));
	ck_assert(!conftab_apply_keys(&strict, &cf, &d, keys, err, sizeof(err)));
	ck_assert_str_eq(err, "line 1: wait: \"5ms\" is out of range 100ms..60s");
	cfgfile_free(&cf);
}
END_TEST

START_TEST(test_keep_fixed)
{
	struct demo old, fresh;
	char err[256] = "";
	ck_assert(parse(&strict, "name = a\ncount = 2\nwait = 1s\nmode = 0600\n", &old, err,
			sizeof(err)));
	ck_assert(parse(&strict, "name = b\ncount = 3\nwait = 2s\nlisten = unix:/x\n", &fresh, err,
			sizeof(err)));
	ck_assert_uint_eq(conftab_keep_fixed(&strict, &old, &fresh, NULL, NULL), 3);
	ck_assert_str_eq(fresh.name, "b"); /* CONFTAB_RELOAD */
	ck_assert_uint_eq(fresh.count, 3);
	ck_assert_uint_eq(fresh.wait, 1000);
	ck_assert_uint_eq(fresh.mode, 0600);
	ck_assert_str_eq(fresh.listen, "");
	ck_assert_uint_eq(conftab_keep_fixed(&strict, &old, &fresh, NULL, NULL), 0);
	conftab_free(&strict, &old);
	conftab_free(&strict, &fresh);
}
END_TEST

static void collect(const char *text, void *arg)
{
	char *out = arg;
	size_t len = strlen(out);
	snprintf(out + len, 2048 - len, "%s\n", text);
}

START_TEST(test_print)
{
	struct demo d;
	char err[256] = "", out[2048] = "";
	ck_assert(parse(&strict, "secret = host=h password=p\nwait = 1500ms\n", &d, err,
			sizeof(err)));
	conftab_print(&strict, &d, collect, out);
	ck_assert_msg(strstr(out, "secret = (set; contains a password)\n"), "%s", out);
	ck_assert_msg(strstr(out, "hidden = (set)\n"), "%s", out);
	ck_assert_msg(strstr(out, "wait = 1500ms\nbuffer = 1M\n"), "%s", out);
	ck_assert_msg(strstr(out, "level = info\ntarget = stderr\n"), "%s", out);
	ck_assert_msg(!strstr(out, "password=p"), "%s", out);
	conftab_free(&strict, &d);
	out[0] = '\0';
	ck_assert(parse(&strict, "secret = host=h\n", &d, err, sizeof(err)));
	conftab_print(&strict, &d, collect, out);
	ck_assert_msg(strstr(out, "secret = host=h\n"), "%s", out);
	conftab_free(&strict, &d);
}
END_TEST

static Suite *conftab_suite(void)
{
	Suite *s = suite_create("conftab");
	TCase *tc = tcase_create("conftab");
	tcase_add_test(tc, test_defaults);
	tcase_add_loop_test(tc, test_value, 0, (int)(sizeof(value_rows) / sizeof(value_rows[0])));
	tcase_add_test(tc, test_shared_file_and_required);
	tcase_add_test(tc, test_apply_keys);
	tcase_add_test(tc, test_keep_fixed);
	tcase_add_test(tc, test_print);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(conftab_suite)
