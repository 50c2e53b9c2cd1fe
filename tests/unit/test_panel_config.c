/* test_panel_config: vmail-panel's table on conftab: defaults, values, the shared file, cross-key rules. */
#include "panel_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

static bool parse(const char *text, struct panel_config *cfg, char *err, size_t errlen)
{
	return panel_config_parse(text, strlen(text), cfg, err, errlen);
}

START_TEST(test_defaults)
{
	struct panel_config cfg;
	char err[256] = "";
	ck_assert_msg(parse("panel_database = dbname=vmail\n", &cfg, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(cfg.listen, "inet:127.0.0.1:8080");
	ck_assert_str_eq(cfg.database, "dbname=vmail");
	ck_assert_uint_eq(cfg.cookie_secure, 1);
	ck_assert_uint_eq(cfg.session_idle, 30 * 60 * 1000);
	ck_assert_uint_eq(cfg.session_max_age, 12 * 3600 * 1000);
	ck_assert_uint_eq(cfg.max_sessions, 10000);
	ck_assert_uint_eq(cfg.failure_delay, 1000);
	ck_assert_uint_eq(cfg.db_workers, 4);
	ck_assert_uint_eq(cfg.hash_workers, 2);
	/* nobody's X-Real-IP is believed until the operator names the proxy */
	ck_assert_str_eq(cfg.trusted_proxies, "");
	ck_assert_str_eq(cfg.trusted_proxy_users, "");
	ck_assert_str_eq(cfg.socket_group, "");
	ck_assert_uint_eq(cfg.socket_mode, 0660);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(cfg.log_syslog, 0);
	ck_assert_uint_eq(cfg.ignored_keys, 0);
	panel_config_free(&cfg);
}
END_TEST

START_TEST(test_shared_with_vmaild)
{
	struct panel_config cfg;
	char err[256] = "";
	const char *text = "database = dbname=shared\n"
			   "socketmap_listen = unix:/run/vmaild/socketmap\n"
			   "pg_pool_size = 8\n"
			   "cookie_secure = false\n"
			   "log_target = syslog\n"
			   "session_idle_timeout = 90s\n";
	ck_assert_msg(parse(text, &cfg, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(cfg.database, "dbname=shared"); /* vmaild's key as the fallback */
	ck_assert_uint_eq(cfg.cookie_secure, 0);
	ck_assert_uint_eq(cfg.log_syslog, 1);
	ck_assert_uint_eq(cfg.session_idle, 90000);
	ck_assert_uint_eq(cfg.ignored_keys, 2);
	panel_config_free(&cfg);
	ck_assert(parse("database = a\npanel_database = b\n", &cfg, err, sizeof(err)));
	ck_assert_str_eq(cfg.database, "b");
	panel_config_free(&cfg);
}
END_TEST

struct bad_row {
	const char *text;
	const char *expect;
};

static const struct bad_row bad_rows[] = {
	{ "", "panel_database (or database): required key is missing" },
	{ "panel_database =\n", "panel_database (or database): required key is missing" },
	{ "database = x\npanel_listen =\n", "line 2: panel_listen: at least one listener is needed" },
	{ "database = x\npanel_listen = tcp:x\n", "line 2: panel_listen: \"tcp:x\": expected unix:PATH" },
	{ "database = x\ncookie_secure = maybe\n", "line 2: cookie_secure: \"maybe\": expected yes or no" },
	{ "database = x\nmax_sessions = 0\n", "line 2: max_sessions: \"0\" is out of range 1..1000000" },
	{ "database = x\npanel_hash_workers = 17\n", "\"17\" is out of range 1..16" },
	{ "database = x\nsession_idle_timeout = 10ms\n", "\"10ms\" is out of range 1s..86400s" },
	{ "database = x\nlogin_failure_delay = 11s\n", "\"11s\" is out of range 0s..10s" },
	{ "database = x\nthrottle_window = soon\n", "\"soon\": expected a duration" },
	{ "database = x\nlog_level = loud\n", "\"loud\": expected error, warning, notice, info or debug" },
	{ "database = x\nlog_target = file\n", "\"file\": expected stderr or syslog" },
	{ "database = x\nmax_sessions = 5\nmax_sessions = 6\n", "line 3: duplicate key \"max_sessions\"" },
	{ "database = x\npanel_group = mail\n", "panel_group: set only together with panel_user" },
	{ "database = x\nsession_idle_timeout = 13h\n", "session_idle_timeout: longer than session_max_age" },
};

START_TEST(test_bad)
{
	const struct bad_row *row = &bad_rows[_i];
	struct panel_config cfg;
	char err[256] = "";
	ck_assert_msg(!parse(row->text, &cfg, err, sizeof(err)), "accepted: %s", row->text);
	ck_assert_msg(strstr(err, row->expect), "%s: got \"%s\", want \"%s\"", row->text, err,
		      row->expect);
	panel_config_free(&cfg); /* safe after a failure */
}
END_TEST

static void collect(const char *text, void *arg)
{
	char *out = arg;
	size_t len = strlen(out);
	snprintf(out + len, 4096 - len, "%s\n", text);
}

START_TEST(test_print)
{
	struct panel_config cfg;
	char err[256] = "", out[4096] = "";
	ck_assert(parse("panel_database = host=h dbname=d\n", &cfg, err, sizeof(err)));
	panel_config_print(&cfg, collect, out);
	ck_assert_msg(strstr(out, "panel_listen = inet:127.0.0.1:8080\n"
				  "panel_database = (set)\n"
				  "cookie_secure = yes\n"
				  "session_idle_timeout = 1800s\n"), "%s", out);
	ck_assert_msg(strstr(out, "\nlog_level = info\nlog_target = stderr\n"), "%s", out);
	ck_assert_msg(!strstr(out, "dbname=d"), "%s", out);
	panel_config_free(&cfg);
}
END_TEST

static Suite *panel_config_suite(void)
{
	Suite *s = suite_create("panel_config");
	TCase *tc = tcase_create("panel_config");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_shared_with_vmaild);
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad_rows) / sizeof(bad_rows[0])));
	tcase_add_test(tc, test_print);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(panel_config_suite)
