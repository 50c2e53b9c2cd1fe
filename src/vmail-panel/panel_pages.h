/* panel_pages: the panel's HTML pages, drawn from data; no I/O, no state. */
#ifndef VMAIL_PANEL_PAGES_H
#define VMAIL_PANEL_PAGES_H

#include "panel_db.h"
#include "panel_form.h"
#include "panel_i18n.h"

struct evbuffer;

/* The forms of the pages; a refusal is drawn next to the one it answers. */
enum panel_form_id {
	PANEL_FORM_NONE = 0,
	PANEL_FORM_ALIAS_ADD,
	PANEL_FORM_ALIAS_SET,
	PANEL_FORM_ALIAS_DEL,
	PANEL_FORM_ACCOUNT_ADD,
	PANEL_FORM_ACCOUNT_PASSWD,
	PANEL_FORM_ACCOUNT_RESIZE,
	PANEL_FORM_ACCOUNT_DEL,
	PANEL_FORM_PASSWD,
	/* a mailbox's out-of-office and forwarding page (panel_rules) */
	PANEL_FORM_VACATION_SET,
	PANEL_FORM_VACATION_OFF,
	PANEL_FORM_FORWARD_ADD,
	PANEL_FORM_FORWARD_DEL,
};

struct panel_page {
	enum panel_lang lang;
	const char *login; /* NULL: logged out (no logout button) */
	const char *csrf;  /* the token every form carries */
	enum panel_msg notice;  /* PANEL_MSG__COUNT: none */
	bool notice_is_error;
};

/* A refusal to show: which form (and for row forms, which address), why, and what was typed. */
struct panel_refusal {
	enum panel_form_id form;
	const char *address;
	enum panel_msg msg;       /* PANEL_MSG__COUNT: only detail */
	const char *detail;       /* the database's sentence, or NULL */
	const struct panel_form *typed; /* to refill the form (never passwords) */
};

/*
 * The pieces every page is made of, for the page modules: the header (with the language
 * links, the logout form and the notice) and its end; the hidden CSRF field of a form.
 */
void panel_page_begin(struct evbuffer *out, const struct panel_page *pg, enum panel_msg heading);
void panel_page_end(struct evbuffer *out);
void panel_page_csrf(struct evbuffer *out, const struct panel_page *pg);
/* panel_refusal_here - ref if it belongs to form (and, for a row's form, to address); else NULL */
const struct panel_refusal *panel_refusal_here(const struct panel_refusal *ref,
					       enum panel_form_id form, const char *address);
/* panel_refusal_block - the refusal as an alert paragraph with id, the database's words escaped */
void panel_refusal_block(struct evbuffer *out, const struct panel_page *pg,
			 const struct panel_refusal *ref, const char *id);
/* panel_refusal_typed - what the user typed into field, to refill a refused form ("" if none) */
const char *panel_refusal_typed(const struct panel_refusal *ref, const char *field);

void panel_page_login(struct evbuffer *out, const struct panel_page *pg, const char *login,
		      enum panel_msg error);
void panel_page_message(struct evbuffer *out, const struct panel_page *pg, enum panel_msg text);
void panel_page_overview(struct evbuffer *out, const struct panel_page *pg,
			 const struct panel_overview *ov, const struct panel_refusal *ref);
/*
 * panel_page_programs - "Mail programs": for the shell account's own mailbox and each mail
 * account of ov, the login to type and the servers of setup (NULL or empty: none offered).
 */
void panel_page_programs(struct evbuffer *out, const struct panel_page *pg,
			 const struct panel_overview *ov, const struct panel_client_setup *setup,
			 const struct panel_client_records *records);

#endif
