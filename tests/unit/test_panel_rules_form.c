/* test_panel_rules_form: the out-of-office and forwarding forms' fields, table-driven. */
#include <check.h>
#include <string.h>

#include "panel_rules_form.h"
#include "check_main.h"

#define OK PANEL_MSG__COUNT

static struct panel_form form;
static char big[PANEL_FORM_MAX_BODY + 1];

static const struct {
	const char *name;
	enum panel_form_id id;
	const char *in;
	enum panel_msg want;
} cases[] = {
	{ "full vacation", PANEL_FORM_VACATION_SET,
	  "address=jan&subject=Urlop&body=Wracam%0D%0Ajutro&start=2026-07-01&end=2026-07-14&days=3&from=a%40b.pl", OK },
	{ "vacation, optional fields empty", PANEL_FORM_VACATION_SET,
	  "address=jan&subject=S&body=B&start=&end=&days=&from=", OK },
	{ "no address", PANEL_FORM_VACATION_SET, "subject=S&body=B", M_MISSING },
	{ "empty address", PANEL_FORM_VACATION_OFF, "address=", M_MISSING },
	{ "no subject", PANEL_FORM_VACATION_SET, "address=jan&body=B", M_MISSING },
	{ "no text", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=", M_MISSING },
	{ "29 February of a leap year", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=2028-02-29", OK },
	{ "29 February otherwise", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=2027-02-29", M_VAC_BAD_DATE },
	{ "1900 was no leap year", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&end=1900-02-29", M_VAC_BAD_DATE },
	{ "2000 was", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&end=2000-02-29", OK },
	{ "31 April", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=2026-04-31", M_VAC_BAD_DATE },
	{ "month 13", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=2026-13-01", M_VAC_BAD_DATE },
	{ "day 0", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=2026-01-00", M_VAC_BAD_DATE },
	{ "year 0", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=0000-01-01", M_VAC_BAD_DATE },
	{ "another date order", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=01.07.2026", M_VAC_BAD_DATE },
	{ "a date with a time", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&end=2026-07-01T10", M_VAC_BAD_DATE },
	{ "signs in a date", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&end=2026-%2B1-01", M_VAC_BAD_DATE },
	{ "days 1", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&days=1", OK },
	{ "days 30", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&days=30", OK },
	{ "days 0", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&days=0", M_VAC_BAD_DAYS },
	{ "days 31", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&days=31", M_VAC_BAD_DAYS },
	{ "days 007", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&days=007", M_VAC_BAD_DAYS },
	{ "days -1", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&days=-1", M_VAC_BAD_DAYS },
	{ "days 1.5", PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&days=1.5", M_VAC_BAD_DAYS },
	{ "forward with a copy", PANEL_FORM_FORWARD_ADD, "address=jan&target=x%40y.pl&keep=on", OK },
	{ "forward without a copy", PANEL_FORM_FORWARD_ADD, "address=jan&target=x%40y.pl", OK },
	{ "keep other than on", PANEL_FORM_FORWARD_ADD, "address=jan&target=x%40y.pl&keep=yes", M_E400 },
	{ "no target", PANEL_FORM_FORWARD_ADD, "address=jan&keep=on", M_MISSING },
	{ "remove", PANEL_FORM_FORWARD_DEL, "address=jan&target=x%40y.pl", OK },
	{ "remove without target", PANEL_FORM_FORWARD_DEL, "address=jan", M_MISSING },
	{ "another form", PANEL_FORM_ALIAS_ADD, "address=jan", M_BAD_REQUEST },
};

START_TEST(table)
{
	ck_assert_int_eq(panel_form_parse(cases[_i].in, strlen(cases[_i].in), &form), PANEL_FORM_OK);
	struct panel_rules_params p;
	enum panel_msg got = panel_rules_form_check(cases[_i].id, &form, &p);
	ck_assert_msg(got == cases[_i].want, "%s: got %d, want %d", cases[_i].name, got, cases[_i].want);
}
END_TEST

/* check - the form of body (a field list already encoded) through the parser and the check */
static enum panel_msg check(enum panel_form_id id, const char *body, struct panel_rules_params *p)
{
	ck_assert_int_eq(panel_form_parse(body, strlen(body), &form), PANEL_FORM_OK);
	return panel_rules_form_check(id, &form, p);
}

/* a field of n copies of unit (already form-encoded), after prefix */
static const char *field(const char *prefix, const char *unit, size_t n)
{
	size_t o = strlen(prefix), u = strlen(unit);
	ck_assert_uint_lt(o + n * u, sizeof(big));
	memcpy(big, prefix, o);
	for (size_t i = 0; i < n; i++, o += u)
		memcpy(big + o, unit, u);
	big[o] = '\0';
	return big;
}

START_TEST(limits)
{
	struct panel_rules_params p;
	/* the subject counts characters: 200 two-byte letters pass, 201 do not */
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, field("address=jan&body=B&subject=", "%C5%BC", 200), &p), OK);
	ck_assert_uint_eq(strlen(p.subject), 400);
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, field("address=jan&body=B&subject=", "%C5%BC", 201), &p),
			 M_VAC_SUBJECT_LONG);
	/* the text counts stored bytes: a CRLF is the LF it becomes */
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, field("address=jan&subject=S&body=", "a%0D%0A", 4096), &p), OK);
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, field("address=jan&subject=S&body=", "ab", 4096), &p), OK);
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, field("address=jan&subject=S&body=", "abc", 2731), &p),
			 M_VAC_BODY_LONG);
	/* a lone CR is one byte and stays one */
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, field("address=jan&subject=S&body=", "a%0D", 4097), &p),
			 M_VAC_BODY_LONG);
	/* addresses: 254 bytes */
	ck_assert_int_eq(check(PANEL_FORM_VACATION_OFF, field("address=", "a", 254), &p), OK);
	ck_assert_int_eq(check(PANEL_FORM_VACATION_OFF, field("address=", "a", 255), &p), M_ADDRESS_LONG);
	ck_assert_int_eq(check(PANEL_FORM_FORWARD_DEL, field("address=jan&target=", "a", 255), &p), M_ADDRESS_LONG);
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, field("address=jan&subject=S&body=B&from=", "a", 255), &p),
			 M_ADDRESS_LONG);
}
END_TEST

/* what goes to the database: empty fields are NULL, keep is SQL's boolean */
START_TEST(params)
{
	struct panel_rules_params p;
	ck_assert_int_eq(check(PANEL_FORM_VACATION_SET, "address=jan&subject=S&body=B&start=&days=&from=", &p), OK);
	ck_assert_str_eq(p.address, "jan");
	ck_assert_str_eq(p.subject, "S");
	ck_assert_ptr_null(p.start);
	ck_assert_ptr_null(p.end);
	ck_assert_ptr_null(p.days);
	ck_assert_ptr_null(p.from);
	ck_assert_int_eq(check(PANEL_FORM_FORWARD_ADD, "address=jan&target=t&keep=on", &p), OK);
	ck_assert_str_eq(p.keep, "true");
	ck_assert_int_eq(check(PANEL_FORM_FORWARD_ADD, "address=jan&target=t", &p), OK);
	ck_assert_str_eq(p.keep, "false");
	ck_assert_int_eq(check(PANEL_FORM_FORWARD_DEL, "address=jan&target=t&keep=on", &p), OK);
	ck_assert_ptr_null(p.keep);
}
END_TEST

static Suite *panel_rules_form_suite(void)
{
	Suite *s = suite_create("panel_rules_form");
	TCase *tc = tcase_create("panel_rules_form");
	tcase_add_loop_test(tc, table, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, limits);
	tcase_add_test(tc, params);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(panel_rules_form_suite)
