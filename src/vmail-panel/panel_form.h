/* panel_form: application/x-www-form-urlencoded bodies and query strings, decoded without I/O. */
#ifndef VMAIL_PANEL_FORM_H
#define VMAIL_PANEL_FORM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Limits.  The largest form is the out-of-office reply: 8 KiB of text, in
 * which a byte may take 3 characters encoded (%XX) and a line end 6
 * (%0D%0A, counted as one byte once stored), plus a subject of 200
 * characters; 64 KiB holds any text the database accepts.  Every other form
 * (a new mail account: address, two passwords, quota, CSRF token) is well
 * under 1 KiB encoded and is held to PANEL_FORM_MAX_SMALL, which leaves room
 * for long passwords without letting a client make us buffer much.
 */
#define PANEL_FORM_MAX_BODY 65536
#define PANEL_FORM_MAX_SMALL 16384
#define PANEL_FORM_MAX_FIELDS 32
#define PANEL_FORM_MAX_NAME 64

enum panel_form_status {
	PANEL_FORM_OK = 0,
	PANEL_FORM_TOO_BIG,      /* input over PANEL_FORM_MAX_BODY */
	PANEL_FORM_TOO_MANY,     /* over PANEL_FORM_MAX_FIELDS fields */
	PANEL_FORM_BAD_ESCAPE,   /* '%' not followed by two hex digits */
	PANEL_FORM_NUL,          /* a field decodes to a NUL byte */
	PANEL_FORM_BAD_UTF8,     /* a field does not decode to valid UTF-8 */
	PANEL_FORM_BAD_CHAR,     /* a raw byte outside printable ASCII, or a raw '=' in a value */
	PANEL_FORM_EMPTY_NAME,   /* "=x", "&&" or a trailing '&' */
	PANEL_FORM_NO_VALUE,     /* a field without '=' */
	PANEL_FORM_LONG_NAME,    /* name over PANEL_FORM_MAX_NAME bytes */
	PANEL_FORM_DUPLICATE,    /* the same name twice: refused rather than guessing which wins */
	PANEL_FORM_STATUS__COUNT,
};

struct panel_form_field {
	const char *name;  /* NUL-terminated, inside the form's buffer */
	const char *value; /* NUL-terminated, never contains NUL, valid UTF-8 */
	size_t value_len;
};

/* A decoded form; self-contained (the input may be freed after parsing). */
struct panel_form {
	struct panel_form_field fields[PANEL_FORM_MAX_FIELDS];
	size_t count;
	/* decoding never grows the text: one NUL per name and value is the only overhead */
	char buf[PANEL_FORM_MAX_BODY + 2 * PANEL_FORM_MAX_FIELDS + 2];
};

/*
 * panel_form_parse - decode len bytes of "name=value&name=value" into *form.
 * '+' is a space, %XX a byte (either case); anything else malformed is
 * refused whole rather than repaired.  An empty input is an empty form.  On
 * failure form->count is 0.
 */
enum panel_form_status panel_form_parse(const char *in, size_t len, struct panel_form *form);

/* panel_form_get - the value of name, or NULL */
const char *panel_form_get(const struct panel_form *form, const char *name);

/* panel_form_status_name - one line for logs ("bad percent escape") */
const char *panel_form_status_name(enum panel_form_status st);

#endif
