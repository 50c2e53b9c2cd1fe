/* fuzz_panel_form: the panel's form decoder, the out-of-office and forwarding forms' checks on
 * what it decodes, and Accept-Language on the same bytes. */
#include "panel_form.h"
#include "panel_rules_form.h"
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
		/* whatever the rules forms' check lets through is within the database's limits */
		static const enum panel_form_id ids[] = { PANEL_FORM_VACATION_SET, PANEL_FORM_VACATION_OFF,
							  PANEL_FORM_FORWARD_ADD, PANEL_FORM_FORWARD_DEL };
		for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
			struct panel_rules_params p;
			enum panel_msg m = panel_rules_form_check(ids[k], &form, &p);
			CHECK(m <= PANEL_MSG__COUNT);
			if (m != PANEL_MSG__COUNT)
				continue;
			CHECK(p.address && *p.address && strlen(p.address) <= PANEL_RULES_MAX_ADDRESS);
			if (ids[k] == PANEL_FORM_VACATION_SET) {
				CHECK(p.subject && p.body && strlen(p.subject) <= 4 * PANEL_RULES_MAX_SUBJECT);
				CHECK(!p.start || strlen(p.start) == 10);
				CHECK(!p.end || strlen(p.end) == 10);
				CHECK(!p.days || (atoi(p.days) >= 1 && atoi(p.days) <= 30));
				CHECK(!p.from || strlen(p.from) <= PANEL_RULES_MAX_ADDRESS);
			}
			if (ids[k] == PANEL_FORM_FORWARD_ADD)
				CHECK(p.keep && (!strcmp(p.keep, "true") || !strcmp(p.keep, "false")));
			if (ids[k] == PANEL_FORM_FORWARD_ADD || ids[k] == PANEL_FORM_FORWARD_DEL)
				CHECK(p.target && strlen(p.target) <= PANEL_RULES_MAX_ADDRESS);
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
