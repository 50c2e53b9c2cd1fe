/*
 * panel_form: the panel's only body format, application/x-www-form-urlencoded
 * (and the same syntax in query strings).  Pure: bytes in, decoded fields
 * out.  Strict on purpose: a browser never sends a malformed form, so anything
 * odd is an attacker or a bug and is refused whole, never repaired.
 */
#include "panel_form.h"

#include <string.h>

#include "vmail/utf8.h"

static const char *const status_names[PANEL_FORM_STATUS__COUNT] = {
	[PANEL_FORM_OK] = "ok",
	[PANEL_FORM_TOO_BIG] = "form too large",
	[PANEL_FORM_TOO_MANY] = "too many fields",
	[PANEL_FORM_BAD_ESCAPE] = "bad percent escape",
	[PANEL_FORM_NUL] = "NUL byte in a field",
	[PANEL_FORM_BAD_UTF8] = "field is not valid UTF-8",
	[PANEL_FORM_BAD_CHAR] = "raw byte not allowed in a form",
	[PANEL_FORM_EMPTY_NAME] = "empty field name",
	[PANEL_FORM_NO_VALUE] = "field without '='",
	[PANEL_FORM_LONG_NAME] = "field name too long",
	[PANEL_FORM_DUPLICATE] = "duplicate field",
};

const char *panel_form_status_name(enum panel_form_status st)
{
	return (unsigned)st < PANEL_FORM_STATUS__COUNT ? status_names[st] : "?";
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * decode - percent-decode in[0..len) to out (NUL-terminated); *outlen gets
 * the decoded length.  stop_eq: a raw '=' is an error (values).
 */
static enum panel_form_status decode(const char *in, size_t len, char *out, size_t *outlen,
				     bool stop_eq)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			int hi, lo;
			if (len - i < 3 || (hi = hexval((unsigned char)in[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)in[i + 2])) < 0)
				return PANEL_FORM_BAD_ESCAPE;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0)
				return PANEL_FORM_NUL;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		} else if (c <= 0x20 || c >= 0x7f || (stop_eq && c == '=')) {
			return PANEL_FORM_BAD_CHAR;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*outlen = o;
	return utf8_valid(out, o) ? PANEL_FORM_OK : PANEL_FORM_BAD_UTF8;
}

static enum panel_form_status parse(const char *in, size_t len, struct panel_form *form)
{
	char *w = form->buf;
	size_t pos = 0;

	if (len > PANEL_FORM_MAX_BODY)
		return PANEL_FORM_TOO_BIG;
	if (len == 0)
		return PANEL_FORM_OK;
	for (;;) {
		const char *seg = in + pos;
		const char *amp = memchr(seg, '&', len - pos);
		size_t seglen = amp ? (size_t)(amp - seg) : len - pos;
		const char *eq = memchr(seg, '=', seglen);
		size_t nlen, vlen;
		enum panel_form_status st;

		if (seglen == 0 || eq == seg)
			return PANEL_FORM_EMPTY_NAME;
		if (!eq)
			return PANEL_FORM_NO_VALUE;
		if (form->count == PANEL_FORM_MAX_FIELDS)
			return PANEL_FORM_TOO_MANY;
		struct panel_form_field *f = &form->fields[form->count];
		if ((st = decode(seg, (size_t)(eq - seg), w, &nlen, false)) != PANEL_FORM_OK)
			return st;
		if (nlen == 0)
			return PANEL_FORM_EMPTY_NAME; /* unreachable: a name of "" needs no bytes */
		if (nlen > PANEL_FORM_MAX_NAME)
			return PANEL_FORM_LONG_NAME;
		f->name = w;
		w += nlen + 1;
		if ((st = decode(eq + 1, seglen - (size_t)(eq + 1 - seg), w, &vlen, true)) !=
		    PANEL_FORM_OK)
			return st;
		f->value = w;
		f->value_len = vlen;
		w += vlen + 1;
		if (panel_form_get(form, f->name))
			return PANEL_FORM_DUPLICATE;
		form->count++;
		if (!amp)
			return PANEL_FORM_OK;
		pos += seglen + 1;
		if (pos == len)
			return PANEL_FORM_EMPTY_NAME; /* trailing '&' */
	}
}

enum panel_form_status panel_form_parse(const char *in, size_t len, struct panel_form *form)
{
	form->count = 0;
	enum panel_form_status st = parse(in, len, form);
	if (st != PANEL_FORM_OK)
		form->count = 0;
	return st;
}

const char *panel_form_get(const struct panel_form *form, const char *name)
{
	for (size_t i = 0; i < form->count; i++)
		if (strcmp(form->fields[i].name, name) == 0)
			return form->fields[i].value;
	return NULL;
}
