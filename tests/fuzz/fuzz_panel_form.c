/* fuzz_panel_form: the panel's form decoder, and Accept-Language on the same bytes. */
#include "panel_form.h"
#include "vmail/utf8.h"
#include "panel_i18n.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static struct panel_form form;
static char text[PANEL_FORM_MAX_BODY * 3 + 1];

static size_t encode(const char *s, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	enum panel_form_status st = panel_form_parse(in, size, &form);
	if (st != PANEL_FORM_OK) {
		CHECK(form.count == 0);
		CHECK(*panel_form_status_name(st) != '?');
	} else {
		CHECK(size <= PANEL_FORM_MAX_BODY && form.count <= PANEL_FORM_MAX_FIELDS);
		for (size_t i = 0; i < form.count; i++) {
			const struct panel_form_field *f = &form.fields[i];
			size_t nlen = strlen(f->name);
			CHECK(nlen > 0 && nlen <= PANEL_FORM_MAX_NAME);
			CHECK(strlen(f->value) == f->value_len);
			CHECK(utf8_valid(f->value, f->value_len));
			CHECK(panel_form_get(&form, f->name) == f->value); /* names are unique */
		}
		/* re-encoding the first field decodes to the same text */
		if (form.count > 0) {
			struct panel_form_field f = form.fields[0];
			char name[PANEL_FORM_MAX_NAME + 1], value[PANEL_FORM_MAX_BODY + 1];
			strcpy(name, f.name);
			memcpy(value, f.value, f.value_len + 1);
			size_t o = encode(name, strlen(name), text);
			text[o++] = '=';
			o += encode(value, f.value_len, text + o);
			if (o <= PANEL_FORM_MAX_BODY) {
				CHECK(panel_form_parse(text, o, &form) == PANEL_FORM_OK);
				CHECK(form.count == 1 && strcmp(form.fields[0].name, name) == 0);
				CHECK(form.fields[0].value_len == f.value_len &&
				      memcmp(form.fields[0].value, value, f.value_len) == 0);
			}
		}
	}

	/* Accept-Language wants a C string */
	if (size < 2048) {
		char hdr[2048];
		memcpy(hdr, data, size);
		hdr[size] = '\0';
		enum panel_lang l = panel_lang_negotiate(hdr);
		CHECK(l == PANEL_LANG_EN || l == PANEL_LANG_PL);
	}
	return 0;
}
