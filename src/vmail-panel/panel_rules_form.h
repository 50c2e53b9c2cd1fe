/* panel_rules_form: the out-of-office and forwarding forms' fields, checked before the database. */
#ifndef VMAIL_PANEL_RULES_FORM_H
#define VMAIL_PANEL_RULES_FORM_H

#include "panel_form.h"
#include "panel_i18n.h"
#include "panel_pages.h"

#define PANEL_RULES_MAX_ADDRESS 254 /* bytes: a mailbox, a reply's From, a forwarding target */
#define PANEL_RULES_MAX_SUBJECT 200 /* characters, as vmail.vacation_set counts them */
#define PANEL_RULES_MAX_BODY 8192   /* bytes once stored: a CRLF counts as the LF it becomes */

/* One form's parameters for the database; NULL is SQL NULL.  Strings point into the form. */
struct panel_rules_params {
	const char *address;                                    /* the mailbox */
	const char *subject, *body, *start, *end, *days, *from; /* VACATION_SET */
	const char *target;                                     /* FORWARD_ADD, FORWARD_DEL */
	const char *keep;                                       /* FORWARD_ADD: "true" or "false" */
};

/*
 * panel_rules_form_check - the fields of form (one of the PANEL_FORM_VACATION_* and
 * PANEL_FORM_FORWARD_* forms) within their limits and shapes: PANEL_MSG__COUNT with *out
 * filled, or what to tell the user.  What only the database knows (whose mailbox, whether an
 * address is one of it, loops) is left to it.
 */
enum panel_msg panel_rules_form_check(enum panel_form_id id, const struct panel_form *form,
				      struct panel_rules_params *out);

#endif
