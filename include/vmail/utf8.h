/* utf8: the one UTF-8 validator and cutter every layer uses (keys, replies, form fields). */
#ifndef VMAIL_UTF8_H
#define VMAIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * utf8_valid - s[0..len) is well-formed UTF-8 (RFC 3629): no overlong forms,
 * no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no sequence cut
 * short by the end.  NUL is a valid character here; see utf8_valid_text.
 */
bool utf8_valid(const char *s, size_t len);

/*
 * utf8_valid_text - utf8_valid and free of control characters: C0 (NUL
 * included), DEL and C1.  What a lookup key or an echoed reply text may hold.
 */
bool utf8_valid_text(const char *s, size_t len);

/*
 * utf8_text_char - the length of the character at s[i] (i < len) when it is
 * well-formed UTF-8 and no control character (as utf8_valid_text), else 0.
 */
size_t utf8_text_char(const char *s, size_t len, size_t i);

/*
 * utf8_shown_char - utf8_text_char, and 0 also for a character that changes
 * how the text around it is shown without showing itself: the bidi controls
 * (U+061C, U+200E/F, U+202A..E, U+2066..9), the zero-width and invisible
 * format characters (U+180E, U+200B..D, U+2060..4, U+206A..F, U+FEFF,
 * U+FFF9..B) and the line and paragraph separators U+2028/9.  What a log line
 * or a terminal cell may hold from a client's string: one could otherwise
 * make a login read as another's, or start what looks like a line of its own.
 */
size_t utf8_shown_char(const char *s, size_t len, size_t i);

/*
 * utf8_cut - how many bytes of s (len bytes) to keep under a limit of max:
 * len when it fits, else max backed off so that a UTF-8 sequence crossing
 * the cut is dropped whole.  Bytes that are not UTF-8 are cut anywhere.
 */
size_t utf8_cut(const char *s, size_t len, size_t max);

#endif
