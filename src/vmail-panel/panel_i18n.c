/*
 * panel_i18n: the message table (English and Polish, with proper diacritics)
 * and Accept-Language negotiation.  Database refusals arrive in English
 * with the numbers in them; a Polish page shows a translated summary chosen
 * by SQLSTATE and keeps the database's sentence as the detail.
 */
#include "panel_i18n.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PANEL_MSG_ROW(id, en, pl) [id] = { en, pl },
static const char *const messages[PANEL_MSG__COUNT][PANEL_LANG__COUNT] = {
	PANEL_MESSAGES(PANEL_MSG_ROW)
};
#undef PANEL_MSG_ROW

static const char *const codes[PANEL_LANG__COUNT] = { "en", "pl" };
static const char *const names[PANEL_LANG__COUNT] = { "English", "Polski" };

const char *panel_msg(enum panel_lang lang, enum panel_msg id)
{
	if ((unsigned)lang >= PANEL_LANG__COUNT)
		lang = PANEL_LANG_EN;
	if ((unsigned)id >= PANEL_MSG__COUNT)
		return "?";
	return messages[id][lang];
}

const char *panel_lang_code(enum panel_lang lang)
{
	return (unsigned)lang < PANEL_LANG__COUNT ? codes[lang] : codes[0];
}

const char *panel_lang_name(enum panel_lang lang)
{
	return (unsigned)lang < PANEL_LANG__COUNT ? names[lang] : names[0];
}

int panel_lang_from_code(const char *code)
{
	for (int i = 0; i < PANEL_LANG__COUNT; i++)
		if (code && strcmp(code, codes[i]) == 0)
			return i;
	return -1;
}

/* parse_q - "q=0.8" (after ';' and blanks) into thousandths; -1 when malformed */
static int parse_q(const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	if (len < 3 || (s[0] != 'q' && s[0] != 'Q') || s[1] != '=')
		return -1;
	s += 2, len -= 2;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	int q = (s[0] - '0') * 1000, scale = 100;
	if (len > 1) {
		if (s[1] != '.' || len > 5)
			return -1;
		for (size_t i = 2; i < len; i++, scale /= 10) {
			if (!isdigit((unsigned char)s[i]))
				return -1;
			q += (s[i] - '0') * scale;
		}
	}
	return q > 1000 ? -1 : q;
}

enum panel_lang panel_lang_negotiate(const char *header)
{
	int best_q[PANEL_LANG__COUNT] = { -1, -1 };
	int star_q = -1;
	const char *p = header;
	if (!p || strlen(p) > 1024)
		return PANEL_LANG_EN;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *semi = memchr(p, ';', len);
		size_t rlen = semi ? (size_t)(semi - p) : len;
		const char *r = p;
		int q = semi ? parse_q(semi + 1, len - rlen - 1) : 1000;
		while (rlen && (*r == ' ' || *r == '\t'))
			r++, rlen--;
		while (rlen && (r[rlen - 1] == ' ' || r[rlen - 1] == '\t'))
			rlen--;
		if (q >= 0 && rlen) {
			if (rlen == 1 && r[0] == '*') {
				star_q = q > star_q ? q : star_q;
			} else {
				for (int i = 0; i < PANEL_LANG__COUNT; i++) {
					/* "pl" matches "pl" and "pl-PL", not "plx" */
					if (rlen >= 2 && strncasecmp(r, codes[i], 2) == 0 &&
					    (rlen == 2 || r[2] == '-') && q > best_q[i])
						best_q[i] = q;
				}
			}
		}
		if (!end)
			break;
		p = end + 1;
	}
	/* English wins ties: it is the default and what "*" most plausibly means here */
	int en = best_q[PANEL_LANG_EN] >= 0 ? best_q[PANEL_LANG_EN] : star_q;
	int pl = best_q[PANEL_LANG_PL];
	if (pl > 0 && pl > en)
		return PANEL_LANG_PL;
	return PANEL_LANG_EN;
}

enum panel_msg panel_rule_msg(const char *sqlstate)
{
	static const struct {
		const char *state;
		enum panel_msg msg;
	} map[] = {
		{ "VMR01", M_R01 }, { "VMR02", M_R02 }, { "VMR03", M_R03 }, { "VMR04", M_R04 },
		{ "VMR05", M_R05 }, { "VMR07", M_R07 }, { "VMR08", M_R08 }, { "VMR09", M_R09 },
		{ "VM404", M_E404 }, { "VM400", M_E400 }, { "VM403", M_E403 }, { "VM409", M_E409 },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (sqlstate && strcmp(sqlstate, map[i].state) == 0)
			return map[i].msg;
	return PANEL_MSG__COUNT;
}
