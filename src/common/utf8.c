/*
 * utf8: strict UTF-8 validation and cutting at a character boundary.  One
 * copy for the whole tree: PostgreSQL rejects invalid UTF-8 with an error,
 * Postfix refuses replies that are not UTF-8, and browsers must never get a
 * half character, so every layer needs the same answer to "is this UTF-8".
 */
#include "vmail/utf8.h"

/* utf8_seq_len - length announced by a lead byte, 0 if c cannot start a sequence */
static unsigned utf8_seq_len(unsigned char c)
{
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef)
		return 3;
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	return 0;
}

/*
 * utf8_next - decode the character at s[i] (i < len) into *cp; its length,
 * or 0 when it is not well-formed.
 */
static unsigned utf8_next(const unsigned char *s, size_t len, size_t i, unsigned *cp)
{
	static const unsigned min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	unsigned c = s[i];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	unsigned n = utf8_seq_len((unsigned char)c);
	if (n == 0 || len - i < n)
		return 0;
	unsigned v = c & (0x7fu >> n);
	for (unsigned k = 1; k < n; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i + k] & 0x3f);
	}
	if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

size_t utf8_text_char(const char *s, size_t len, size_t i)
{
	unsigned cp;
	unsigned n = utf8_next((const unsigned char *)s, len, i, &cp);
	return n && !(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) ? n : 0;
}

/* utf8_hidden - a format character or separator as utf8_shown_char lists them */
static bool utf8_hidden(unsigned cp)
{
	return cp == 0x061c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
	       (cp >= 0x2066 && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

size_t utf8_shown_char(const char *s, size_t len, size_t i)
{
	unsigned cp;
	unsigned n = utf8_next((const unsigned char *)s, len, i, &cp);
	return n && !(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) && !utf8_hidden(cp) ? n : 0;
}

static bool utf8_scan(const char *s, size_t len, bool text)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		unsigned cp;
		unsigned n = text ? (unsigned)utf8_text_char(s, len, i) : utf8_next(p, len, i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

bool utf8_valid(const char *s, size_t len)
{
	return utf8_scan(s, len, false);
}

bool utf8_valid_text(const char *s, size_t len)
{
	return utf8_scan(s, len, true);
}

size_t utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	if (len <= max)
		return len;
	size_t n = max;
	/* A sequence is at most four bytes: look back at most three. */
	while (n > 0 && max - n < 3 && (p[n] & 0xc0) == 0x80)
		n--;
	/* Only back off for a real sequence that crosses the cut. */
	if (n < max && utf8_seq_len(p[n]) > max - n)
		return n;
	return max;
}
