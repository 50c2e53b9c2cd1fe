/* test_svc_policy: policy verdicts and sender answers to actions, table-driven. */
#include "svc_policy.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

#define B(s) s, sizeof(s) - 1

static const struct svc_policy_opts DEFAULTS = { 452, false, false };
static const struct svc_policy_opts BOUNCE = { 552, false, false };
static const struct svc_policy_opts OPEN = { 452, true, false };

#define DEFER "DEFER_IF_PERMIT Temporary lookup failure, try again later"

struct quota_row {
	const struct svc_policy_opts *o;
	enum lookup_status st;
	const char *verdict;
	size_t vlen;
	const char *want;
};

static const struct quota_row quota_rows[] = {
	{ &DEFAULTS, LOOKUP_NOTFOUND, NULL, 0, "DUNNO" },
	{ &DEFAULTS, LOOKUP_FOUND, B("full\tjan@p.pl\t100\t100"), "452 4.2.2 Mailbox jan@p.pl is full" },
	{ &BOUNCE, LOOKUP_FOUND, B("full\tjan@p.pl\t100\t100"), "552 5.2.2 Mailbox jan@p.pl is full" },
	{ &OPEN, LOOKUP_FOUND, B("full\tjan@p.pl\t100\t100"), "452 4.2.2 Mailbox jan@p.pl is full" },
	{ &DEFAULTS, LOOKUP_FOUND, B("full\tb@x.pl"), "452 4.2.2 Mailbox b@x.pl is full" },
	{ &DEFAULTS, LOOKUP_FOUND, B("suspended\tola@p.pl"),
	  "450 4.2.1 Mailbox ola@p.pl is disabled, try again later" },
	{ &BOUNCE, LOOKUP_FOUND, B("suspended\tola@p.pl"),
	  "450 4.2.1 Mailbox ola@p.pl is disabled, try again later" },
	/* a suspended domain: DEFER_IF_PERMIT whatever the options (fail_open is for failures) */
	{ &DEFAULTS, LOOKUP_FOUND, B("domain_suspended\tstara.pl"),
	  "DEFER_IF_PERMIT Domain stara.pl is disabled, try again later" },
	{ &OPEN, LOOKUP_FOUND, B("domain_suspended\tstara.pl"),
	  "DEFER_IF_PERMIT Domain stara.pl is disabled, try again later" },
	/* UTF-8 mailboxes pass; control characters and broken UTF-8 do not reach Postfix. */
	{ &DEFAULTS, LOOKUP_FOUND, B("full\tza\xc5\xbc\xc3\xb3\xc5\x82\x63@p.pl\t1\t1"),
	  "452 4.2.2 Mailbox za\xc5\xbc\xc3\xb3\xc5\x82\x63@p.pl is full" },
	{ &DEFAULTS, LOOKUP_FOUND, B("full\ta\rb\xff@p\t1\t1"), "452 4.2.2 Mailbox a?b?@p is full" },
	/* unreadable verdicts and failures: temporary */
	{ &DEFAULTS, LOOKUP_FOUND, B("full"), DEFER },
	{ &DEFAULTS, LOOKUP_FOUND, B("full\t"), DEFER },
	{ &DEFAULTS, LOOKUP_FOUND, B("empty\tjan@p.pl"), DEFER },
	{ &DEFAULTS, LOOKUP_FOUND, B(""), DEFER },
	{ &DEFAULTS, LOOKUP_TEMPFAIL, NULL, 0, DEFER },
	{ &DEFAULTS, LOOKUP_PERMFAIL, NULL, 0, DEFER },
	{ &OPEN, LOOKUP_TEMPFAIL, NULL, 0, "DUNNO" },
	{ &OPEN, LOOKUP_PERMFAIL, NULL, 0, "DUNNO" },
	{ &OPEN, LOOKUP_FOUND, B("nonsense"), "DUNNO" },
};

START_TEST(test_quota_action)
{
	const struct quota_row *row = &quota_rows[_i];
	char out[SVC_POLICY_MAX_ACTION + 1];
	size_t n = svc_policy_quota_action(row->o, row->st, row->verdict, row->vlen, out);
	ck_assert_str_eq(out, row->want);
	ck_assert_uint_eq(n, strlen(row->want));
}
END_TEST

/* A huge mailbox name is cut on a character boundary and stays within the limit. */
START_TEST(test_quota_action_long)
{
	char verdict[4000], out[SVC_POLICY_MAX_ACTION + 1];
	size_t n = 0;
	memcpy(verdict, "full\t", 5);
	n = 5;
	while (n < sizeof(verdict) - 8) {
		memcpy(verdict + n, "\xc5\xbc", 2); /* two-byte character */
		n += 2;
	}
	size_t len = svc_policy_quota_action(&DEFAULTS, LOOKUP_FOUND, verdict, n, out);
	ck_assert_uint_le(len, SVC_POLICY_MAX_ACTION);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert(strncmp(out, "452 4.2.2 Mailbox ", 18) == 0);
	const char *tail = strstr(out, " is full");
	ck_assert_ptr_nonnull(tail);
	ck_assert_uint_eq((size_t)(tail - out - 18) % 2, 0);
}
END_TEST

struct listed_row {
	const char *list;
	const char *login;
	bool want;
};

static const struct listed_row listed_rows[] = {
	{ "jan", "jan", true },
	{ "biuro@acme.pl,jan", "jan", true },
	{ "biuro@acme.pl,jan", "JAN", true },
	{ "biuro@acme.pl,jan", "Biuro@ACME.pl", true },
	{ "biuro@acme.pl, jan", "jan", true },
	{ "jan2,ja", "jan", false },
	{ "janek", "jan", false },
	{ "", "jan", false },
	{ ",,,", "jan", false },
	{ "jan", "", false },
};

START_TEST(test_login_listed)
{
	const struct listed_row *row = &listed_rows[_i];
	ck_assert_msg(svc_policy_login_listed(row->list, strlen(row->list), row->login,
					      strlen(row->login)) == row->want,
		      "%s in %s", row->login, row->list);
}
END_TEST

struct sender_row {
	const struct svc_policy_opts *o;
	const char *sender, *login;
	enum lookup_status st;
	const char *logins;
	enum svc_policy_sender_result want;
	const char *action;
};

static const struct sender_row sender_rows[] = {
	{ &DEFAULTS, "info@acme.pl", "jan", LOOKUP_FOUND, "biuro@acme.pl,jan", SVC_POLICY_SENDER_OWNED, "" },
	{ &DEFAULTS, "info@acme.pl", "ewa", LOOKUP_FOUND, "biuro@acme.pl,jan", SVC_POLICY_SENDER_REJECT,
	  "553 5.7.1 Sender address <info@acme.pl> not owned by user ewa" },
	{ &DEFAULTS, "x@example.org", "jan", LOOKUP_NOTFOUND, NULL, SVC_POLICY_SENDER_REJECT,
	  "553 5.7.1 Sender address <x@example.org> not owned by user jan" },
	{ &OPEN, "x@example.org", "jan", LOOKUP_NOTFOUND, NULL, SVC_POLICY_SENDER_REJECT,
	  "553 5.7.1 Sender address <x@example.org> not owned by user jan" },
	{ &DEFAULTS, "x@example.org", "jan", LOOKUP_TEMPFAIL, NULL, SVC_POLICY_SENDER_TEMPFAIL, DEFER },
	{ &DEFAULTS, "x@example.org", "jan", LOOKUP_PERMFAIL, NULL, SVC_POLICY_SENDER_TEMPFAIL, DEFER },
	{ &OPEN, "x@example.org", "jan", LOOKUP_TEMPFAIL, NULL, SVC_POLICY_SENDER_TEMPFAIL, "DUNNO" },
	{ &DEFAULTS, "a\nb@x", "j\tx", LOOKUP_NOTFOUND, NULL, SVC_POLICY_SENDER_REJECT,
	  "553 5.7.1 Sender address <a?b@x> not owned by user j?x" },
};

START_TEST(test_sender_action)
{
	const struct sender_row *row = &sender_rows[_i];
	char out[SVC_POLICY_MAX_ACTION + 1];
	enum svc_policy_sender_result got = svc_policy_sender_action(
		row->o, row->sender, strlen(row->sender), row->login, strlen(row->login), row->st,
		row->logins, row->logins ? strlen(row->logins) : 0, out);
	ck_assert_int_eq(got, row->want);
	if (got != SVC_POLICY_SENDER_OWNED)
		ck_assert_str_eq(out, row->action);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *svc_policy_suite(void)
{
	Suite *s = suite_create("svc_policy");
	TCase *tc = tcase_create("mapping");
	tcase_add_loop_test(tc, test_quota_action, 0, N(quota_rows));
	tcase_add_test(tc, test_quota_action_long);
	tcase_add_loop_test(tc, test_login_listed, 0, N(listed_rows));
	tcase_add_loop_test(tc, test_sender_action, 0, N(sender_rows));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(svc_policy_suite)
