/* test_panel_form: the panel's form decoder, Accept-Language choice, sessions and throttling. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "panel_form.h"
#include "vmail/utf8.h"
#include "panel_i18n.h"
#include "panel_session.h"
#include "check_main.h"

static struct panel_form form;

static const struct {
	const char *in;
	size_t nfields;
	const char *name, *value; /* one field to check, or NULL */
} good[] = {
	{ "", 0, NULL, NULL },
	{ "a=1", 1, "a", "1" },
	{ "a=", 1, "a", "" },
	{ "login=jan&password=tajne+has%C5%82o", 2, "password", "tajne hasło" },
	{ "address=a%40b.pl&target=jan", 2, "address", "a@b.pl" },
	{ "x=%3Cscript%3E", 1, "x", "<script>" },
	{ "x=%2b%2B", 1, "x", "++" },
	{ "x=a%3Db", 1, "x", "a=b" },
	{ "csrf=00ff&x=%26%25", 2, "x", "&%" },
	{ "n%61me=v", 1, "name", "v" },
	{ "z=%F0%9F%98%80", 1, "z", "\xf0\x9f\x98\x80" },
};

static const struct {
	const char *in;
	enum panel_form_status want;
} bad[] = {
	{ "a", PANEL_FORM_NO_VALUE },
	{ "a=1&b", PANEL_FORM_NO_VALUE },
	{ "=1", PANEL_FORM_EMPTY_NAME },
	{ "a=1&&b=2", PANEL_FORM_EMPTY_NAME },
	{ "a=1&", PANEL_FORM_EMPTY_NAME },
	{ "&a=1", PANEL_FORM_EMPTY_NAME },
	{ "a=%", PANEL_FORM_BAD_ESCAPE },
	{ "a=%4", PANEL_FORM_BAD_ESCAPE },
	{ "a=%zz", PANEL_FORM_BAD_ESCAPE },
	{ "a=%00", PANEL_FORM_NUL },
	{ "a%00=1", PANEL_FORM_NUL },
	{ "a=%C5", PANEL_FORM_BAD_UTF8 },
	{ "a=%C0%AF", PANEL_FORM_BAD_UTF8 },     /* overlong "/" */
	{ "a=%ED%A0%80", PANEL_FORM_BAD_UTF8 },  /* surrogate */
	{ "a=%F4%90%80%80", PANEL_FORM_BAD_UTF8 }, /* past U+10FFFF */
	{ "a=b c", PANEL_FORM_BAD_CHAR },
	{ "a=b\nc", PANEL_FORM_BAD_CHAR },
	{ "a=\xc5\x82", PANEL_FORM_BAD_CHAR },
	{ "a=b=c", PANEL_FORM_BAD_CHAR },
	{ "a=1&a=2", PANEL_FORM_DUPLICATE },
	{ "a=1&%61=2", PANEL_FORM_DUPLICATE },
};

START_TEST(parse_good)
{
	const char *in = good[_i].in;
	ck_assert_int_eq(panel_form_parse(in, strlen(in), &form), PANEL_FORM_OK);
	ck_assert_uint_eq(form.count, good[_i].nfields);
	if (good[_i].name) {
		const char *v = panel_form_get(&form, good[_i].name);
		ck_assert_ptr_nonnull(v);
		ck_assert_str_eq(v, good[_i].value);
	}
	ck_assert_ptr_null(panel_form_get(&form, "missing"));
}
END_TEST

START_TEST(parse_bad)
{
	const char *in = bad[_i].in;
	enum panel_form_status st = panel_form_parse(in, strlen(in), &form);
	ck_assert_msg(st == bad[_i].want, "%s: got %s, want %s", in, panel_form_status_name(st),
		      panel_form_status_name(bad[_i].want));
	ck_assert_uint_eq(form.count, 0);
}
END_TEST

START_TEST(limits)
{
	static char buf[PANEL_FORM_MAX_BODY + 16];
	/* exactly at the size limit: accepted */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "x=", 2);
	ck_assert_int_eq(panel_form_parse(buf, PANEL_FORM_MAX_BODY, &form), PANEL_FORM_OK);
	ck_assert_uint_eq(form.fields[0].value_len, PANEL_FORM_MAX_BODY - 2);
	ck_assert_int_eq(panel_form_parse(buf, PANEL_FORM_MAX_BODY + 1, &form), PANEL_FORM_TOO_BIG);

	/* field count */
	size_t o = 0;
	for (int i = 0; i < PANEL_FORM_MAX_FIELDS + 1; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%sf%d=%d", i ? "&" : "", i, i);
	ck_assert_int_eq(panel_form_parse(buf, o, &form), PANEL_FORM_TOO_MANY);
	o = 0;
	for (int i = 0; i < PANEL_FORM_MAX_FIELDS; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%sf%d=%d", i ? "&" : "", i, i);
	ck_assert_int_eq(panel_form_parse(buf, o, &form), PANEL_FORM_OK);
	ck_assert_uint_eq(form.count, PANEL_FORM_MAX_FIELDS);

	/* name length */
	memset(buf, 'n', PANEL_FORM_MAX_NAME);
	memcpy(buf + PANEL_FORM_MAX_NAME, "=1", 2);
	ck_assert_int_eq(panel_form_parse(buf, PANEL_FORM_MAX_NAME + 2, &form), PANEL_FORM_OK);
	memset(buf, 'n', PANEL_FORM_MAX_NAME + 1);
	memcpy(buf + PANEL_FORM_MAX_NAME + 1, "=1", 2);
	ck_assert_int_eq(panel_form_parse(buf, PANEL_FORM_MAX_NAME + 3, &form),
			 PANEL_FORM_LONG_NAME);

	/* every byte escaped: the decoded text still fits the buffer */
	o = 0;
	o += (size_t)snprintf(buf, sizeof(buf), "v=");
	while (o + 3 <= PANEL_FORM_MAX_BODY)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%%41");
	ck_assert_int_eq(panel_form_parse(buf, o, &form), PANEL_FORM_OK);
}
END_TEST

static const struct {
	const char *header;
	enum panel_lang want;
} langs[] = {
	{ NULL, PANEL_LANG_EN },
	{ "", PANEL_LANG_EN },
	{ "pl", PANEL_LANG_PL },
	{ "pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7", PANEL_LANG_PL },
	{ "en-US,en;q=0.9,pl;q=0.8", PANEL_LANG_EN },
	{ "de-DE,pl;q=0.5", PANEL_LANG_PL },
	{ "de-DE", PANEL_LANG_EN },
	{ "pl;q=0", PANEL_LANG_EN },
	{ "PL", PANEL_LANG_PL },
	{ "plx", PANEL_LANG_EN },
	{ "*;q=0.9, pl;q=0.5", PANEL_LANG_EN },
	{ "pl;q=1.0, en;q=1.0", PANEL_LANG_EN },
	{ "pl;q=bogus", PANEL_LANG_EN },
	{ "en;q=0.1 , pl ; q=0.2", PANEL_LANG_PL },
};

START_TEST(negotiate)
{
	ck_assert_msg(panel_lang_negotiate(langs[_i].header) == langs[_i].want, "%s",
		      langs[_i].header ? langs[_i].header : "(null)");
}
END_TEST

START_TEST(messages)
{
	for (int m = 0; m < PANEL_MSG__COUNT; m++)
		for (int l = 0; l < PANEL_LANG__COUNT; l++) {
			const char *t = panel_msg((enum panel_lang)l, (enum panel_msg)m);
			ck_assert(t && *t);
			ck_assert(utf8_valid(t, strlen(t)));
		}
	ck_assert_str_eq(panel_msg(PANEL_LANG_PL, M_PASSWORD), "Hasło");
	ck_assert_int_eq(panel_rule_msg("VMR01"), M_R01);
	ck_assert_int_eq(panel_rule_msg("XX000"), PANEL_MSG__COUNT);
}
END_TEST

START_TEST(sessions)
{
	struct panel_sessions *ss = panel_sessions_new(2, 1000, 5000);
	bool expired;
	struct panel_session *a = panel_session_create(ss, "jan", 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(strlen(a->token), PANEL_TOKEN_LEN);
	ck_assert_str_ne(a->token, a->csrf);
	char tok[PANEL_TOKEN_LEN + 1];
	strcpy(tok, a->token);
	ck_assert_ptr_eq(panel_session_find(ss, tok, 900, &expired), a);
	ck_assert_ptr_eq(panel_session_find(ss, tok, 1800, &expired), a); /* touched at 900 */
	/* idle: 1000 ms after the last request */
	ck_assert_ptr_null(panel_session_find(ss, tok, 2800, &expired));
	ck_assert(expired);
	ck_assert_ptr_null(panel_session_find(ss, tok, 2801, &expired));
	ck_assert(!expired);
	/* absolute age */
	struct panel_session *b = panel_session_create(ss, "ewa", 10000);
	strcpy(tok, b->token);
	for (uint64_t t = 10500; t < 15000; t += 500)
		ck_assert_ptr_eq(panel_session_find(ss, tok, t, &expired), b);
	ck_assert_ptr_null(panel_session_find(ss, tok, 15000, &expired));
	ck_assert(expired);
	/* full: the oldest goes */
	struct panel_session *c = panel_session_create(ss, "c", 20000);
	struct panel_session *d = panel_session_create(ss, "d", 20001);
	strcpy(tok, c->token);
	ck_assert_ptr_nonnull(panel_session_create(ss, "e", 20002));
	ck_assert_ptr_null(panel_session_find(ss, tok, 20003, &expired));
	ck_assert_ptr_eq(panel_session_find(ss, d->token, 20003, &expired), d);
	ck_assert_uint_eq(panel_sessions_count(ss), 2);
	ck_assert(!panel_token_equal("short", "short"));
	ck_assert_ptr_null(panel_session_find(ss, "not-a-token", 20003, &expired));
	panel_sessions_free(ss);
}
END_TEST

START_TEST(throttle)
{
	struct panel_throttle *t = panel_throttle_new(3, 1000, 2);
	for (int i = 0; i < 3; i++) {
		ck_assert(!panel_throttle_blocked(t, "jan", 100));
		panel_throttle_fail(t, "jan", 100 + (uint64_t)i);
	}
	ck_assert(panel_throttle_blocked(t, "jan", 500));
	ck_assert(!panel_throttle_blocked(t, "ewa", 500));
	/* the window counts from the first failure */
	ck_assert(panel_throttle_blocked(t, "jan", 1099));
	ck_assert(!panel_throttle_blocked(t, "jan", 1100));
	for (int i = 0; i < 3; i++)
		panel_throttle_fail(t, "jan", 2000);
	ck_assert(panel_throttle_blocked(t, "jan", 2001));
	panel_throttle_reset(t, "jan");
	ck_assert(!panel_throttle_blocked(t, "jan", 2002));
	/* bounded: a third key drops the oldest */
	panel_throttle_fail(t, "a", 3000);
	panel_throttle_fail(t, "b", 3001);
	panel_throttle_fail(t, "c", 3002);
	panel_throttle_free(t);
}
END_TEST

static Suite *panel_form_suite(void)
{
	Suite *s = suite_create("panel_form");
	TCase *tc = tcase_create("panel_form");
	tcase_add_loop_test(tc, parse_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, parse_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, limits);
	tcase_add_loop_test(tc, negotiate, 0, sizeof(langs) / sizeof(langs[0]));
	tcase_add_test(tc, messages);
	tcase_add_test(tc, sessions);
	tcase_add_test(tc, throttle);
	suite_add_tcase(s, tc);
	return s;
}

/* main: libsodium is set up once, before the runner forks the cases that use it. */
int main(void)
{
	if (sodium_init() < 0)
		return EXIT_FAILURE;
	return check_main_run(panel_form_suite());
}
