/* test_dict_txn: the dict service's pure half: hellos (2.3 and 2.4), names and roles, transactions. */
#include "dict_txn.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"

static struct dict_cmd cmd; /* too big for the stack */

static void parse(const char *line)
{
	size_t used;
	const char *err = NULL;
	enum dict_status st = dictproto_parse_line(line, strlen(line), NULL, &cmd, &used, &err);
	ck_assert_msg(st == DICT_OK, "parse %s: %s", line, err ? err : "?");
	ck_assert_uint_eq(used, strlen(line));
}

static bool hello_ok(const char *line, const char **err)
{
	parse(line);
	return dict_txn_hello_check(&cmd, err);
}

START_TEST(test_hello_versions)
{
	const char *err = NULL;
	/* Dovecot 2.3.17+ */
	ck_assert(hello_ok("H3\t2\t0\t\tauth\n", &err));
	/* older 2.3 with the username in the hello */
	ck_assert(hello_ok("H3\t0\t0\tjan\tquota\n", &err));
	/* Dovecot 2.4 (quota_clone): major 4 */
	ck_assert(hello_ok("H4\t0\t0\t\tquota\n", &err));
	ck_assert_str_eq(cmd.u.hello.name, "quota");
	ck_assert_uint_eq(cmd.u.hello.major, 4);
	ck_assert(!hello_ok("H2\t0\t0\t\tquota\n", &err));
	ck_assert_str_eq(err, "unsupported protocol major version");
	ck_assert(!hello_ok("H5\t0\t0\t\tquota\n", &err));
	ck_assert(!hello_ok("H3\t2\t0\t\t\n", &err));
	ck_assert_str_eq(err, "no dict name in hello");
	ck_assert(!hello_ok("Lpriv/quota/storage\tjan\n", &err));
	ck_assert_str_eq(err, "first command is not a hello");
}
END_TEST

START_TEST(test_v4_transaction)
{
	/* A 2.4 quota_clone write: B carries expire_secs, V is sent, S absolute values. */
	parse("H4\t0\t0\t\tquota\n");
	parse("B7\tjan\t0\n");
	ck_assert(cmd.u.begin.has_expire);
	struct dict_txn *t = dict_txn_new(cmd.u.begin.id, cmd.u.begin.username);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->id, 7);
	ck_assert_str_eq(t->username, "jan");
	parse("V7\tyes\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("U7\tpriv/quota/storage\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("S7\tpriv/quota/storage\t12345\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("S7\tpriv/quota/messages\t3\n");
	ck_assert(dict_txn_apply(t, &cmd));
	ck_assert_int_eq(t->op[DICT_TXN_STORAGE], DICT_TXN_SET);
	ck_assert_int_eq(t->value[DICT_TXN_STORAGE], 12345);
	ck_assert_int_eq(t->op[DICT_TXN_MESSAGES], DICT_TXN_SET);
	ck_assert_int_eq(t->value[DICT_TXN_MESSAGES], 3);
	ck_assert(dict_txn_writes(t));
	ck_assert_ptr_null(t->error);
	dict_txn_free(t);
}
END_TEST

START_TEST(test_increments)
{
	struct dict_txn *t = dict_txn_new(1, "biuro@acme.lublin.pl");
	parse("A1\tpriv/quota/storage\t2048\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("A1\tpriv/quota/storage\t-48\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("A1\tpriv/quota/messages\t1\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("T1\t1700000000\t5\n");
	ck_assert(dict_txn_apply(t, &cmd));
	ck_assert_int_eq(t->op[DICT_TXN_STORAGE], DICT_TXN_ADD);
	ck_assert_int_eq(t->value[DICT_TXN_STORAGE], 2000);
	ck_assert_int_eq(t->op[DICT_TXN_MESSAGES], DICT_TXN_ADD);
	ck_assert_int_eq(t->value[DICT_TXN_MESSAGES], 1);
	ck_assert(!t->add_to_unset);
	dict_txn_free(t);

	/* Set then add: still an absolute value. */
	t = dict_txn_new(2, "jan");
	parse("S2\tpriv/quota/storage\t10\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("A2\tpriv/quota/storage\t5\n");
	ck_assert(dict_txn_apply(t, &cmd));
	ck_assert_int_eq(t->op[DICT_TXN_STORAGE], DICT_TXN_SET);
	ck_assert_int_eq(t->value[DICT_TXN_STORAGE], 15);
	ck_assert_int_eq(t->op[DICT_TXN_MESSAGES], DICT_TXN_KEEP);
	dict_txn_free(t);

	/* Add to what the same transaction deleted: never creates it (commit answers N). */
	t = dict_txn_new(3, "jan");
	parse("U3\tpriv/quota/storage\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("A3\tpriv/quota/storage\t5\n");
	ck_assert(dict_txn_apply(t, &cmd));
	ck_assert(t->add_to_unset);
	dict_txn_free(t);
}
END_TEST

START_TEST(test_bad_values_and_limits)
{
	struct dict_txn *t = dict_txn_new(1, "jan");
	parse("S1\tpriv/quota/storage\tlots\n");
	ck_assert(dict_txn_apply(t, &cmd));
	ck_assert_str_eq(t->error, "counter value is not a number");
	dict_txn_free(t);

	t = dict_txn_new(1, "jan");
	parse("S1\tpriv/quota/storage\t9223372036854775807\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("A1\tpriv/quota/storage\t1\n");
	ck_assert(dict_txn_apply(t, &cmd));
	ck_assert_str_eq(t->error, "counter overflow");
	dict_txn_free(t);

	/* Other keys are accepted and ignored; nothing to write. */
	t = dict_txn_new(1, "jan");
	parse("S1\tpriv/other\tx\n");
	ck_assert(dict_txn_apply(t, &cmd));
	parse("S1\tshared/passdb/jan\t{}\n");
	ck_assert(dict_txn_apply(t, &cmd));
	ck_assert_uint_eq(t->ignored, 2);
	ck_assert(!dict_txn_writes(t));
	dict_txn_free(t);

	t = dict_txn_new(1, "jan");
	parse("A1\tpriv/quota/messages\t1\n");
	for (unsigned i = 0; i < DICT_TXN_MAX_OPS; i++)
		ck_assert(dict_txn_apply(t, &cmd));
	ck_assert(!dict_txn_apply(t, &cmd));
	dict_txn_free(t);
}
END_TEST

/* txn_of - a transaction made of the lines (one per string, NULL-terminated) */
static struct dict_txn *txn_of(const char *const *lines)
{
	struct dict_txn *t = dict_txn_new(1, "jan");
	for (; *lines; lines++) {
		parse(*lines);
		ck_assert(dict_txn_apply(t, &cmd));
	}
	return t;
}

/* A value a commit sets or adds must lie within ±2^53 bytes, ±2^31 messages. */
START_TEST(test_value_bounds)
{
	static const struct {
		const char *lines[3];
		const char *error; /* NULL: within the bounds */
	} cases[] = {
		{ { "S1\tpriv/quota/storage\t9007199254740992\n" }, NULL },
		{ { "S1\tpriv/quota/storage\t-9007199254740992\n" }, NULL },
		{ { "S1\tpriv/quota/storage\t9007199254740993\n" },
		  "priv/quota/storage: value outside -2^53..2^53" },
		{ { "A1\tpriv/quota/storage\t-9007199254740993\n" },
		  "priv/quota/storage: value outside -2^53..2^53" },
		{ { "A1\tpriv/quota/storage\t9223372036854775807\n" },
		  "priv/quota/storage: value outside -2^53..2^53" },
		{ { "S1\tpriv/quota/messages\t2147483648\n" }, NULL },
		{ { "A1\tpriv/quota/messages\t-2147483648\n" }, NULL },
		{ { "S1\tpriv/quota/messages\t2147483649\n" },
		  "priv/quota/messages: value outside -2^31..2^31" },
		{ { "A1\tpriv/quota/messages\t-2147483649\n" },
		  "priv/quota/messages: value outside -2^31..2^31" },
		/* The reduced value counts: two adds within, their sum beyond; or back within. */
		{ { "A1\tpriv/quota/messages\t2147483648\n", "A1\tpriv/quota/messages\t1\n" },
		  "priv/quota/messages: value outside -2^31..2^31" },
		{ { "A1\tpriv/quota/storage\t9007199254740993\n", "A1\tpriv/quota/storage\t-2\n" },
		  NULL },
		/* An unset has no value to check. */
		{ { "S1\tpriv/quota/storage\t9007199254740993\n", "U1\tpriv/quota/storage\n" }, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dict_txn *t = txn_of(cases[i].lines);
		const char *err = dict_txn_value_error(t);
		if (cases[i].error)
			ck_assert_msg(err && strcmp(err, cases[i].error) == 0, "case %zu: %s", i,
				      err ? err : "(none)");
		else
			ck_assert_msg(err == NULL, "case %zu: %s", i, err);
		dict_txn_free(t);
	}
	ck_assert_str_eq(dict_txn_result_error(DICT_TXN_STORAGE),
			 "priv/quota/storage: result would be outside -2^53..2^53");
	ck_assert_str_eq(dict_txn_result_error(DICT_TXN_MESSAGES),
			 "priv/quota/messages: result would be outside -2^31..2^31");
	ck_assert_str_eq(dict_txn_result_error(DICT_TXN_COUNTER__COUNT), "?");
}
END_TEST

START_TEST(test_names)
{
	ck_assert(dict_txn_name_in_list("quota, quotaclone", "quota"));
	ck_assert(dict_txn_name_in_list("quota, quotaclone", "quotaclone"));
	ck_assert(dict_txn_name_in_list("quota quotaclone", "quotaclone"));
	ck_assert(!dict_txn_name_in_list("quota, quotaclone", "quot"));
	ck_assert(!dict_txn_name_in_list("quota, quotaclone", "Quota"));
	ck_assert(!dict_txn_name_in_list("quota", ""));
	ck_assert(!dict_txn_name_in_list("", "quota"));
	ck_assert_int_eq(dict_txn_counter_of_key("priv/quota/storage"), DICT_TXN_STORAGE);
	ck_assert_int_eq(dict_txn_counter_of_key("priv/quota/messages"), DICT_TXN_MESSAGES);
	ck_assert_int_eq(dict_txn_counter_of_key("priv/quota/storage/"), -1);
	ck_assert_str_eq(dict_txn_role_name(DICT_TXN_ROLE_ACCOUNT), "account quota");
}
END_TEST

/* Which role a hello's dict name gives, per listener, from the names lists. */
struct role_row {
	bool auth_listener;
	const char *name;
	enum dict_txn_role role;
};

static const struct dict_txn_names role_names = {
	.auth = "auth", .quota = "quota, quotaclone", .account = "group", .sieve = "sieve, pigeonhole",
};

static const struct role_row role_rows[] = {
	{ false, "quota", DICT_TXN_ROLE_MAILBOX },
	{ false, "quotaclone", DICT_TXN_ROLE_MAILBOX },
	{ false, "group", DICT_TXN_ROLE_ACCOUNT },
	{ false, "sieve", DICT_TXN_ROLE_SIEVE },      /* LMTP, as the mailbox's uid */
	{ false, "pigeonhole", DICT_TXN_ROLE_SIEVE },
	{ false, "auth", DICT_TXN_ROLE_NONE },        /* never on the world-writable socket */
	{ false, "Sieve", DICT_TXN_ROLE_NONE },       /* exact, as Dovecot compares */
	{ false, "sieve2", DICT_TXN_ROLE_NONE },
	{ true, "auth", DICT_TXN_ROLE_AUTH },
	{ true, "sieve", DICT_TXN_ROLE_SIEVE },       /* root's tools */
	{ true, "quota", DICT_TXN_ROLE_NONE },
	{ true, "group", DICT_TXN_ROLE_NONE },
};

#define NROLES (sizeof(role_rows) / sizeof(role_rows[0]))

START_TEST(test_role_of)
{
	const struct role_row *r = &role_rows[_i];
	ck_assert_msg(dict_txn_role_of(&role_names, r->auth_listener, r->name) == r->role,
		      "%s on the %s listener: %s, want %s", r->name, r->auth_listener ? "auth" : "quota",
		      dict_txn_role_name(dict_txn_role_of(&role_names, r->auth_listener, r->name)),
		      dict_txn_role_name(r->role));
}
END_TEST

/* A name in two lists takes the first role: quota, account, then sieve; auth, then sieve. */
START_TEST(test_role_precedence)
{
	const struct dict_txn_names both = { .auth = "x", .quota = "x", .account = "x", .sieve = "x" };
	ck_assert_int_eq(dict_txn_role_of(&both, false, "x"), DICT_TXN_ROLE_MAILBOX);
	ck_assert_int_eq(dict_txn_role_of(&both, true, "x"), DICT_TXN_ROLE_AUTH);
	const struct dict_txn_names none = { .auth = "", .quota = "", .account = "", .sieve = "" };
	ck_assert_int_eq(dict_txn_role_of(&none, false, "sieve"), DICT_TXN_ROLE_NONE);
	ck_assert_int_eq(dict_txn_role_of(&none, true, "sieve"), DICT_TXN_ROLE_NONE);
	ck_assert_str_eq(dict_txn_role_name(DICT_TXN_ROLE_SIEVE), "sieve");
}
END_TEST

START_TEST(test_sieve_keys)
{
	ck_assert(dict_txn_is_sieve_key("priv/sieve/name/vmail"));
	ck_assert(dict_txn_is_sieve_key("priv/sieve/data/0123abcd"));
	ck_assert(!dict_txn_is_sieve_key("priv/sieve/"));
	ck_assert(!dict_txn_is_sieve_key("priv/sieve"));
	ck_assert(!dict_txn_is_sieve_key("shared/sieve/name/vmail"));
	ck_assert(!dict_txn_is_sieve_key("priv/quota/storage"));
	ck_assert(!dict_txn_is_sieve_key(""));
}
END_TEST

static Suite *dict_txn_suite(void)
{
	Suite *s = suite_create("dict_txn");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_hello_versions);
	tcase_add_test(tc, test_v4_transaction);
	tcase_add_test(tc, test_increments);
	tcase_add_test(tc, test_bad_values_and_limits);
	tcase_add_test(tc, test_value_bounds);
	tcase_add_test(tc, test_names);
	tcase_add_loop_test(tc, test_role_of, 0, NROLES);
	tcase_add_test(tc, test_role_precedence);
	tcase_add_test(tc, test_sieve_keys);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dict_txn_suite)
