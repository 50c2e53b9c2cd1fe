/* test_config: the vmaild configuration table: defaults, every value kind, errors, reload rules. */
#include "vmail/config.h"
#include "vmail/conftab.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"

#define BASE "database = dbname=vmail\nsocketmap_listen = unix:/run/vmaild/socketmap\n"

static bool parse(const char *text, struct config *cfg, char *err, size_t errlen)
{
	return config_parse(text, strlen(text), cfg, err, errlen);
}

START_TEST(test_minimal_defaults)
{
	struct config cfg;
	char err[256] = "";
	ck_assert_msg(parse(BASE, &cfg, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(cfg.database, "dbname=vmail");
	ck_assert_str_eq(cfg.socketmap_listen, "unix:/run/vmaild/socketmap");
	ck_assert_str_eq(cfg.policy_listen, "");
	ck_assert_str_eq(cfg.dict_listen, "");
	ck_assert_str_eq(cfg.user, "");
	ck_assert_uint_eq(cfg.socket_mode, 0660);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(cfg.log_target, CONFIG_LOG_STDERR);
	ck_assert_uint_eq(cfg.pg_pool_size, 4);
	ck_assert_uint_eq(cfg.pg_connect_timeout, 2000);
	ck_assert_uint_eq(cfg.request_timeout, 3000);
	ck_assert_uint_eq(cfg.shutdown_timeout, 10000);
	ck_assert_uint_eq(cfg.shutdown_commit_grace, 2000);
	ck_assert_uint_eq(cfg.max_connections, 1000);
	ck_assert_uint_eq(cfg.dict_quota_max_connections, 500);
	/* Dovecot 2.3: two quota roots per mail process, 20 LMTP deliveries at a time, and IMAP. */
	ck_assert_uint_eq(cfg.dict_quota_max_connections_per_uid, 128);
	ck_assert_uint_eq(cfg.idle_timeout, 60000);
	ck_assert_uint_eq(cfg.max_pipelined, 64);
	ck_assert_uint_eq(cfg.max_output_buffer, 1024 * 1024);
	config_free(&cfg);
}
END_TEST

START_TEST(test_full_file)
{
	const char *text = "# every key\n"
			   "database = host=/run/postgresql dbname=vmail user=vmaild\n"
			   "socketmap_listen = unix:/var/spool/postfix/private/vmaild, inet:127.0.0.1:7000\n"
			   "policy_listen = inet:[::1]:7001\n"
			   "dict_listen =\n"
			   "socket_owner = postfix\n"
			   "socket_group = postfix\n"
			   "socket_mode = 0600\n"
			   "user = vmaild\n"
			   "group = vmaild\n"
			   "log_level = debug\n"
			   "log_target = syslog\n"
			   "pg_pool_size = 8\n"
			   "pg_connect_timeout = 1500ms\n"
			   "request_timeout = 2s\n"
			   "max_connections = 5000\n"
			   "idle_timeout = 2m\n"
			   "max_pipelined = 16\n"
			   "max_output_buffer = 256K\n";
	struct config cfg;
	char err[256] = "";
	ck_assert_msg(parse(text, &cfg, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(cfg.database, "host=/run/postgresql dbname=vmail user=vmaild");
	ck_assert_str_eq(cfg.policy_listen, "inet:[::1]:7001");
	ck_assert_str_eq(cfg.dict_listen, "");
	ck_assert_str_eq(cfg.socket_owner, "postfix");
	ck_assert_uint_eq(cfg.socket_mode, 0600);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(cfg.log_target, CONFIG_LOG_SYSLOG);
	ck_assert_uint_eq(cfg.pg_pool_size, 8);
	ck_assert_uint_eq(cfg.pg_connect_timeout, 1500);
	ck_assert_uint_eq(cfg.request_timeout, 2000);
	ck_assert_uint_eq(cfg.max_connections, 5000);
	ck_assert_uint_eq(cfg.idle_timeout, 120000);
	ck_assert_uint_eq(cfg.max_pipelined, 16);
	ck_assert_uint_eq(cfg.max_output_buffer, 256 * 1024);
	config_free(&cfg);
}
END_TEST

/* One bad line appended to BASE (line 3), and what the error must say. */
struct bad_row {
	const char *line;
	const char *expect;
};

static const struct bad_row bad_rows[] = {
	/* unknown and duplicate keys */
	{ "request_timout = 3s", "line 3: unknown key \"request_timout\"" },
	{ "database = again", "line 3: duplicate key \"database\" (first on line 1)" },
	/* syntax of the file itself */
	{ "Database = x", "line 3: expected a key" },
	{ "log_level debug", "line 3: expected \"key = value\"" },
	/* whole numbers */
	{ "pg_pool_size = many", "line 3: pg_pool_size: \"many\": expected a whole number" },
	{ "pg_pool_size = -1", "expected a whole number" },
	{ "pg_pool_size = 4x", "expected a whole number" },
	{ "pg_pool_size = 0", "line 3: pg_pool_size: \"0\" is out of range 1..256" },
	{ "pg_pool_size = 257", "out of range 1..256" },
	{ "max_connections = 99999999999999999999999", "expected a whole number" },
	{ "max_pipelined = 0", "out of range 1..100000" },
	/* durations */
	{ "request_timeout = 3 s", "expected a duration" },
	{ "request_timeout = 3sec", "expected a duration" },
	{ "request_timeout = s", "expected a duration" },
	{ "request_timeout = 1.5s", "expected a duration" },
	{ "request_timeout = 5ms", "line 3: request_timeout: \"5ms\" is out of range 10ms..90s" },
	{ "request_timeout = 2m", "out of range 10ms..90s" },
	{ "idle_timeout = 50ms", "out of range 100ms..86400s" },
	{ "pg_connect_timeout = 99999999999999h", "expected a duration" },
	/* sizes */
	{ "max_output_buffer = 1K", "out of range 4K..1G" },
	{ "max_output_buffer = 2G", "out of range 4K..1G" },
	{ "max_output_buffer = 1X", "expected a size" },
	{ "max_output_buffer = 1.5M", "expected a size" },
	/* modes */
	{ "socket_mode = 0680", "line 3: socket_mode: \"0680\": expected an octal mode" },
	{ "socket_mode = rw", "expected an octal mode" },
	{ "socket_mode = 1777", "out of range 0000..0777" },
	{ "socket_mode = 00000", "expected an octal mode" },
	{ "socketmap_socket_mode = 0680", "line 3: socketmap_socket_mode: \"0680\": expected an octal mode" },
	{ "policy_socket_mode = 1777", "line 3: policy_socket_mode: \"1777\" is out of range 0000..0777" },
	{ "dict_socket_mode = rw", "line 3: dict_socket_mode: \"rw\": expected an octal mode" },
	{ "dict_quota_socket_mode =", "line 3: dict_quota_socket_mode: \"\": expected an octal mode" },
	{ "dict_quota_socket_mode = 0800", "expected an octal mode" },
	{ "socket_mode =", "line 3: socket_mode: \"\": expected an octal mode" },
	{ "smtp_socket_mode = 0600", "line 3: unknown key \"smtp_socket_mode\"" },
	{ "dict_socket_owner = root\ndict_socket_owner = dovecot", "line 4: duplicate key \"dict_socket_owner\"" },
	/* names */
	{ "log_level = verbose", "line 3: log_level: \"verbose\": expected error, warning" },
	{ "log_level = DEBUG", "expected error, warning" },
	{ "log_target = file", "expected stderr or syslog" },
	/* endpoint lists */
	{ "policy_listen = tcp:1.2.3.4:5", "line 3: policy_listen: \"tcp:1.2.3.4:5\": expected unix:PATH" },
	{ "policy_listen = unix:relative/sock", "must be absolute" },
	{ "policy_listen = inet:127.0.0.1:0", "port must be 1..65535" },
	{ "policy_listen = inet:127.0.0.1", "expected inet:HOST:PORT" },
	{ "policy_listen = inet:127.0.0.1:x", "port must be 1..65535" },
	{ "policy_listen = inet:::1:25", "brackets" },
	{ "policy_listen = inet:a:1,,inet:b:2", "empty item" },
	/* cross-key rules */
	{ "policy_listen = unix:/run/vmaild/socketmap", "unix:/run/vmaild/socketmap is used by two services" },
	{ "group = mail", "group: set only together with user" },
};

START_TEST(test_bad_value)
{
	const struct bad_row *row = &bad_rows[_i];
	char text[512], err[256] = "";
	struct config cfg;
	snprintf(text, sizeof(text), BASE "%s\n", row->line);
	ck_assert_msg(!parse(text, &cfg, err, sizeof(err)), "accepted: %s", row->line);
	ck_assert_msg(strstr(err, row->expect), "%s: got \"%s\", want \"%s\"", row->line, err,
		      row->expect);
	config_free(&cfg); /* must be safe after a failure */
}
END_TEST

/* Settings appended to BASE, and each service's owner, group and mode after resolving. */
struct socket_row {
	const char *text;
	const char *owner[4], *group[4]; /* socketmap, policy, dict, dict_quota */
	unsigned mode[4];
};

static const struct socket_row socket_rows[] = {
	/* nothing set: the user's and group's ids (""), 0660, dict_quota 0666 */
	{ "", { "", "", "", "" }, { "", "", "", "" }, { 0660, 0660, 0660, 0666 } },
	/* the global keys cover every service but dict_quota's mode */
	{ "socket_owner = postfix\nsocket_group = mail\nsocket_mode = 0600\n",
	  { "postfix", "postfix", "postfix", "postfix" }, { "mail", "mail", "mail", "mail" },
	  { 0600, 0600, 0600, 0666 } },
	/* contrib: Postfix's two sockets postfix 0600, Dovecot's auth dict root 0600 */
	{ "socketmap_socket_owner = postfix\nsocketmap_socket_mode = 0600\n"
	  "policy_socket_owner = postfix\npolicy_socket_mode = 0600\n"
	  "dict_socket_owner = root\ndict_socket_mode = 0600\n",
	  { "postfix", "postfix", "root", "" }, { "", "", "", "" }, { 0600, 0600, 0600, 0666 } },
	/* a service's own key wins over the global one, also mode 0000 */
	{ "socket_owner = vmail\nsocket_group = vmail\nsocket_mode = 0660\n"
	  "policy_socket_group = postfix\npolicy_socket_mode = 0000\n"
	  "dict_quota_socket_owner = dovecot\ndict_quota_socket_group = dovecot\n"
	  "dict_quota_socket_mode = 0660\nsocketmap_socket_mode =\n",
	  { "vmail", "vmail", "vmail", "dovecot" }, { "vmail", "postfix", "vmail", "dovecot" },
	  { 0660, 0000, 0660, 0660 } },
};

START_TEST(test_socket_per_service)
{
	const struct socket_row *row = &socket_rows[_i];
	char text[1024], err[256] = "";
	struct config cfg;
	snprintf(text, sizeof(text), BASE "%s", row->text);
	ck_assert_msg(parse(text, &cfg, err, sizeof(err)), "%s", err);
	const struct config_socket *svc[4] = { &cfg.socketmap_socket, &cfg.policy_socket,
					       &cfg.dict_socket, &cfg.dict_quota_socket };
	for (int i = 0; i < 4; i++) {
		struct config_socket eff;
		config_socket_resolve(&cfg, svc[i], &eff);
		ck_assert_msg(strcmp(eff.owner, row->owner[i]) == 0, "row %d svc %d owner %s", _i,
			      i, eff.owner);
		ck_assert_msg(strcmp(eff.group, row->group[i]) == 0, "row %d svc %d group %s", _i,
			      i, eff.group);
		ck_assert_msg(eff.mode == row->mode[i], "row %d svc %d mode %04o", _i, i, eff.mode);
	}
	config_free(&cfg);
}
END_TEST

/* The per-service keys need a restart, like socket_owner/group/mode. */
START_TEST(test_socket_keys_fixed_on_reload)
{
	struct config old, fresh;
	char err[256] = "";
	ck_assert(parse(BASE "socketmap_socket_owner = postfix\n", &old, err, sizeof(err)));
	ck_assert(parse(BASE "socketmap_socket_owner = root\ndict_socket_mode = 0600\n"
			     "dict_quota_socket_group = mail\n",
			&fresh, err, sizeof(err)));
	ck_assert_uint_eq(config_keep_fixed(&old, &fresh, NULL, NULL), 3);
	ck_assert_str_eq(fresh.socketmap_socket.owner, "postfix");
	ck_assert_uint_eq(fresh.dict_socket.mode, CONFTAB_UNSET);
	ck_assert_str_eq(fresh.dict_quota_socket.group, "");
	config_free(&old);
	config_free(&fresh);
}
END_TEST

START_TEST(test_required_and_listeners)
{
	struct config cfg;
	char err[256] = "";
	ck_assert(!parse("socketmap_listen = unix:/x\n", &cfg, err, sizeof(err)));
	ck_assert_str_eq(err, "database: required key is missing");
	ck_assert(!parse("database =\nsocketmap_listen = unix:/x\n", &cfg, err, sizeof(err)));
	ck_assert_str_eq(err, "database: must not be empty");
	ck_assert(!parse("database = x\n", &cfg, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no listeners"), "%s", err);
	ck_assert_msg(parse("database = x\ndict_listen = inet:*:7002\n", &cfg, err, sizeof(err)),
		      "%s", err);
	config_free(&cfg);
}
END_TEST

struct duration_row {
	const char *in;
	bool ok;
	unsigned long ms;
};

static const struct duration_row duration_rows[] = {
	{ "0", true, 0 },         { "3", true, 3000 },       { "3s", true, 3000 },
	{ "250ms", true, 250 },   { "2m", true, 120000 },    { "1h", true, 3600000 },
	{ "", false, 0 },         { "ms", false, 0 },        { "-1s", false, 0 },
	{ "1S", false, 0 },       { "1 s", false, 0 },       { "1d", false, 0 },
	{ "18446744073709551615ms", true, 18446744073709551615UL },
	{ "18446744073709551615s", false, 0 },
};

START_TEST(test_duration)
{
	const struct duration_row *row = &duration_rows[_i];
	unsigned long ms = 0;
	ck_assert_msg(conftab_parse_duration(row->in, &ms) == row->ok, "\"%s\"", row->in);
	if (row->ok)
		ck_assert_uint_eq(ms, row->ms);
}
END_TEST

START_TEST(test_keep_fixed_on_reload)
{
	struct config old, fresh;
	char err[256] = "";
	ck_assert(parse(BASE "user = vmaild\nsocket_mode = 0660\nrequest_timeout = 3s\n", &old, err,
			sizeof(err)));
	ck_assert(parse("database = dbname=other\n"
			"socketmap_listen = inet:127.0.0.1:7000\n"
			"user = root\nsocket_mode = 0666\nrequest_timeout = 1s\nlog_level = debug\n",
			&fresh, err, sizeof(err)));
	unsigned n = config_keep_fixed(&old, &fresh, NULL, NULL);
	ck_assert_uint_eq(n, 3); /* socketmap_listen, user, socket_mode */
	ck_assert_str_eq(fresh.socketmap_listen, old.socketmap_listen);
	ck_assert_str_eq(fresh.user, "vmaild");
	ck_assert_uint_eq(fresh.socket_mode, 0660);
	/* reloadable keys keep their new values */
	ck_assert_str_eq(fresh.database, "dbname=other");
	ck_assert_uint_eq(fresh.request_timeout, 1000);
	ck_assert_int_eq(fresh.log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(config_keep_fixed(&old, &fresh, NULL, NULL), 0);
	config_free(&old);
	config_free(&fresh);
}
END_TEST

/* Every default in the table must pass its own parser and bounds. */
START_TEST(test_table_defaults_valid)
{
	const struct conftab *t = config_table();
	const struct conftab_row *p = t->rows;
	size_t n = t->count;
	ck_assert_uint_ge(n, 18);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(p[i].help && p[i].help[0], "%s has no help", p[i].name);
		ck_assert_msg((p[i].def == NULL) == !!(p[i].flags & CONFTAB_REQUIRED), "%s",
			      p[i].name);
		for (size_t j = i + 1; j < n; j++)
			ck_assert_str_ne(p[i].name, p[j].name);
	}
	struct config cfg;
	char err[256], value[256];
	ck_assert(parse(BASE, &cfg, err, sizeof(err)));
	for (size_t i = 0; i < n; i++) {
		conftab_format_value(&p[i], &cfg, value, sizeof(value));
		if (p[i].def && strcmp(p[i].name, "socketmap_listen") != 0)
			ck_assert_msg(strcmp(value, p[i].def) == 0, "%s: formatted %s, default %s",
				      p[i].name, value, p[i].def);
	}
	config_free(&cfg);
}
END_TEST

START_TEST(test_load_file)
{
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	const char *text = BASE "unknown_thing = 1\n";
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	struct config cfg;
	char err[512] = "";
	ck_assert(!config_load(path, &cfg, err, sizeof(err)));
	char want[600];
	snprintf(want, sizeof(want), "%s: line 3: unknown key \"unknown_thing\"", path);
	ck_assert_str_eq(err, want);
	unlink(path);
	ck_assert(!config_load(path, &cfg, err, sizeof(err)));
	ck_assert_msg(strstr(err, "No such file"), "%s", err);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_full_file);
	tcase_add_loop_test(tc, test_bad_value, 0, (int)(sizeof(bad_rows) / sizeof(bad_rows[0])));
	tcase_add_loop_test(tc, test_socket_per_service, 0,
			    (int)(sizeof(socket_rows) / sizeof(socket_rows[0])));
	tcase_add_test(tc, test_socket_keys_fixed_on_reload);
	tcase_add_test(tc, test_required_and_listeners);
	tcase_add_loop_test(tc, test_duration, 0,
			    (int)(sizeof(duration_rows) / sizeof(duration_rows[0])));
	tcase_add_test(tc, test_keep_fixed_on_reload);
	tcase_add_test(tc, test_table_defaults_valid);
	tcase_add_test(tc, test_load_file);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_suite)
