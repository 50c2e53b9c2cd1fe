/*
 * panel_rules_form: hard limits on every field of the out-of-office and
 * forwarding forms, so nothing oversized or malformed reaches the database.
 * The dates and the days are checked here rather than left to PostgreSQL: a
 * value it cannot cast is an error of another class than a rule's refusal,
 * and would come back as "temporarily unavailable" instead of a sentence the
 * user can act on.
 */
#include "panel_rules_form.h"

#include <string.h>

/* value - the field, or NULL when absent or empty (an empty field means "not set") */
static const char *value(const struct panel_form *form, const char *name)
{
	const char *v = panel_form_get(form, name);
	return v && *v ? v : NULL;
}

/* characters - UTF-8 characters in s (the form parser has checked that it is UTF-8) */
static size_t characters(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* stored_bytes - the length of s once each CRLF (a browser's textarea line end) is an LF */
static size_t stored_bytes(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += !(s[0] == '\r' && s[1] == '\n');
	return n;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static unsigned number(const char *s, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

/* valid_date - YYYY-MM-DD naming a day of the calendar (what an HTML date input sends) */
static bool valid_date(const char *s)
{
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
	    !digits(s + 8, 2))
		return false;
	unsigned y = number(s, 4), m = number(s + 5, 2), d = number(s + 8, 2);
	if (y == 0 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return !(m == 2 && d == 29 && !leap);
}

/* valid_days - a whole number from 1 to 30 */
static bool valid_days(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 2 && digits(s, n) && number(s, n) >= 1 && number(s, n) <= 30;
}

static enum panel_msg check_vacation(const struct panel_form *form, struct panel_rules_params *out)
{
	out->subject = value(form, "subject");
	out->body = value(form, "body");
	out->start = value(form, "start");
	out->end = value(form, "end");
	out->days = value(form, "days");
	out->from = value(form, "from");
	if (!out->subject || !out->body)
		return M_MISSING;
	if (characters(out->subject) > PANEL_RULES_MAX_SUBJECT)
		return M_VAC_SUBJECT_LONG;
	if (stored_bytes(out->body) > PANEL_RULES_MAX_BODY)
		return M_VAC_BODY_LONG;
	if ((out->start && !valid_date(out->start)) || (out->end && !valid_date(out->end)))
		return M_VAC_BAD_DATE;
	if (out->days && !valid_days(out->days))
		return M_VAC_BAD_DAYS;
	if (out->from && strlen(out->from) > PANEL_RULES_MAX_ADDRESS)
		return M_ADDRESS_LONG;
	return PANEL_MSG__COUNT;
}

static enum panel_msg check_forward(enum panel_form_id id, const struct panel_form *form,
				    struct panel_rules_params *out)
{
	out->target = value(form, "target");
	if (!out->target)
		return M_MISSING;
	if (strlen(out->target) > PANEL_RULES_MAX_ADDRESS)
		return M_ADDRESS_LONG;
	if (id == PANEL_FORM_FORWARD_ADD) {
		/* a checkbox: present when ticked, absent otherwise */
		const char *keep = panel_form_get(form, "keep");
		if (keep && strcmp(keep, "on") != 0)
			return M_E400;
		out->keep = keep ? "true" : "false";
	}
	return PANEL_MSG__COUNT;
}

enum panel_msg panel_rules_form_check(enum panel_form_id id, const struct panel_form *form,
				      struct panel_rules_params *out)
{
	memset(out, 0, sizeof(*out));
	out->address = value(form, "address");
	if (!out->address)
		return M_MISSING;
	if (strlen(out->address) > PANEL_RULES_MAX_ADDRESS)
		return M_ADDRESS_LONG;
	switch (id) {
	case PANEL_FORM_VACATION_SET:
		return check_vacation(form, out);
	case PANEL_FORM_VACATION_OFF:
		return PANEL_MSG__COUNT;
	case PANEL_FORM_FORWARD_ADD:
	case PANEL_FORM_FORWARD_DEL:
		return check_forward(id, form, out);
	default:
		return M_BAD_REQUEST;
	}
}
