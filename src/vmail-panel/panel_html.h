/* panel_html: escaping, translated text with arguments, and the stylesheet. */
#ifndef VMAIL_PANEL_HTML_H
#define VMAIL_PANEL_HTML_H

#include <stddef.h>

#include "panel_i18n.h"

struct evbuffer;

/* panel_html_esc - s with & < > " ' as entities: safe in text and in quoted attributes */
void panel_html_esc(struct evbuffer *out, const char *s);
/* panel_html_esc_buf - the same into a string; false if it did not fit (out is then "") */
int panel_html_esc_buf(char *out, size_t outlen, const char *s);
/*
 * panel_html_query_esc - s percent-encoded for a query value (unreserved characters and '@' as
 * they are, so a link shows the address it is for); safe in a quoted attribute and a header
 */
void panel_html_query_esc(struct evbuffer *out, const char *s);
/* panel_html_msg - message id in lang, escaped */
void panel_html_msg(struct evbuffer *out, enum panel_lang lang, enum panel_msg id);
/*
 * panel_html_msgf - message id with its "%s"/"%u" placeholders replaced, in
 * order, by a1 and a2 (escaped).  The table's texts are never format strings.
 */
void panel_html_msgf(struct evbuffer *out, enum panel_lang lang, enum panel_msg id, const char *a1,
		     const char *a2);
/* panel_html_css - the stylesheet served at /style.css */
const char *panel_html_css(size_t *len);

#endif
