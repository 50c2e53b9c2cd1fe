/* panel_rules: the page of one mailbox's out-of-office reply and forwarding; no I/O, no state. */
#ifndef VMAIL_PANEL_RULES_H
#define VMAIL_PANEL_RULES_H

#include <stdbool.h>

#include "panel_db.h"
#include "panel_pages.h"

struct evbuffer;

/*
 * panel_rules_page - the page of rules (own: the shell account's own mailbox, else one of
 * its mail accounts), with ref (NULL: none) next to the form it answers.
 */
void panel_rules_page(struct evbuffer *out, const struct panel_page *pg,
		      const struct panel_mailbox_rules *rules, bool own, const struct panel_refusal *ref);

#endif
