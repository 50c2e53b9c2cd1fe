/*
 * panel_pages: every page as HTML that works without JavaScript.  Each form
 * has visible (or, in table rows, visually hidden) labels and its CSRF field;
 * a refusal sits next to the form it answers, with role="alert" so a screen
 * reader announces it.  The usage bar is inline SVG (attributes, not style,
 * so the strict CSP needs no 'unsafe-inline'), with a table of the same
 * numbers for those who cannot see it.
 */
#include "panel_pages.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "panel_html.h"
#include "vmail/size.h"

#define ESC(s) panel_html_esc(out, (s))
#define MSG(id) panel_html_msg(out, pg->lang, (id))
#define RAW(s) evbuffer_add(out, (s), strlen(s))

void panel_page_begin(struct evbuffer *out, const struct panel_page *pg, enum panel_msg heading)
{
	evbuffer_add_printf(out, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n"
			    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
			    "<title>", panel_lang_code(pg->lang));
	MSG(heading);
	if (heading != M_TITLE) {
		RAW(" – ");
		MSG(M_TITLE);
	}
	RAW("</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n<body>\n"
	    "<a class=\"skip\" href=\"#main\">");
	MSG(M_SKIP);
	RAW("</a>\n<header>\n<p class=\"brand\">");
	MSG(M_TITLE);
	RAW("</p>\n<nav aria-label=\"");
	MSG(M_LANGUAGE);
	RAW("\">");
	for (int l = 0; l < PANEL_LANG__COUNT; l++) {
		evbuffer_add_printf(out, "<a href=\"/lang/%s\" lang=\"%s\" hreflang=\"%s\"%s>%s</a>",
				    panel_lang_code((enum panel_lang)l), panel_lang_code((enum panel_lang)l),
				    panel_lang_code((enum panel_lang)l),
				    l == (int)pg->lang ? " aria-current=\"true\"" : "",
				    panel_lang_name((enum panel_lang)l));
	}
	RAW("</nav>\n");
	if (pg->login) {
		RAW("<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"");
		ESC(pg->csrf);
		RAW("\"><span>");
		ESC(pg->login);
		RAW("</span><button type=\"submit\">");
		MSG(M_LOGOUT);
		RAW("</button></form>\n");
	}
	RAW("</header>\n<main id=\"main\">\n<h1>");
	MSG(heading);
	RAW("</h1>\n");
	if (pg->notice != PANEL_MSG__COUNT) {
		RAW(pg->notice_is_error ? "<p class=\"error\" role=\"alert\">" :
					  "<p class=\"notice\" role=\"status\">");
		MSG(pg->notice);
		RAW("</p>\n");
	}
}

void panel_page_end(struct evbuffer *out)
{
	RAW("</main>\n</body>\n</html>\n");
}

void panel_page_csrf(struct evbuffer *out, const struct panel_page *pg)
{
	RAW("<input type=\"hidden\" name=\"csrf\" value=\"");
	ESC(pg->csrf);
	RAW("\">");
}

void panel_page_login(struct evbuffer *out, const struct panel_page *pg, const char *login,
		      enum panel_msg error)
{
	panel_page_begin(out, pg, M_LOGIN_HEADING);
	RAW("<section>\n<p>");
	MSG(M_LOGIN_INTRO);
	RAW("</p>\n");
	if (error != PANEL_MSG__COUNT) {
		RAW("<p class=\"error\" role=\"alert\" id=\"login-error\">");
		MSG(error);
		RAW("</p>\n");
	}
	RAW("<form class=\"stack\" method=\"post\" action=\"/login\">");
	panel_page_csrf(out, pg);
	RAW("\n<label>");
	MSG(M_LOGIN);
	RAW(" <input name=\"login\" autocomplete=\"username\" required maxlength=\"64\" "
	    "autocapitalize=\"none\" spellcheck=\"false\" value=\"");
	ESC(login ? login : "");
	RAW("\"");
	if (error != PANEL_MSG__COUNT)
		RAW(" aria-describedby=\"login-error\"");
	RAW("></label>\n<label>");
	MSG(M_PASSWORD);
	RAW(" <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required "
	    "maxlength=\"256\"></label>\n<div><button type=\"submit\">");
	MSG(M_LOGIN_BUTTON);
	RAW("</button></div>\n</form>\n</section>\n");
	panel_page_end(out);
}

void panel_page_message(struct evbuffer *out, const struct panel_page *pg, enum panel_msg text)
{
	panel_page_begin(out, pg, M_TITLE);
	RAW("<section>\n<p>");
	MSG(text);
	RAW("</p>\n<p><a href=\"/\">");
	MSG(M_BACK);
	RAW("</a></p>\n</section>\n");
	panel_page_end(out);
}

const struct panel_refusal *panel_refusal_here(const struct panel_refusal *ref,
					       enum panel_form_id form, const char *address)
{
	if (!ref || ref->form != form)
		return NULL;
	if (address && (!ref->address || strcmp(ref->address, address) != 0))
		return NULL;
	return ref;
}

void panel_refusal_block(struct evbuffer *out, const struct panel_page *pg,
			 const struct panel_refusal *ref, const char *id)
{
	evbuffer_add_printf(out, "<p class=\"error\" role=\"alert\" id=\"%s\">", id);
	if (ref->msg != PANEL_MSG__COUNT) {
		MSG(ref->msg);
		if (ref->detail) {
			RAW(" ");
			MSG(M_DETAILS);
			RAW(": ");
		}
	}
	if (ref->detail)
		ESC(ref->detail);
	RAW("</p>\n");
}

const char *panel_refusal_typed(const struct panel_refusal *ref, const char *field)
{
	const char *v = ref && ref->typed ? panel_form_get(ref->typed, field) : NULL;
	return v ? v : "";
}

/* fmt_size - size_format, with "B" for "bytes" so the text needs no translation */
static void fmt_size(uint64_t bytes, char *buf, size_t len)
{
	size_format(bytes, buf, len);
	char *unit = strstr(buf, " bytes");
	if (unit)
		memcpy(unit, " B", 3);
}

static void size_cell(struct evbuffer *out, uint64_t bytes)
{
	char buf[SIZE_FMT_MAX];
	fmt_size(bytes, buf, sizeof(buf));
	ESC(buf);
}

static enum panel_msg domain_kind_msg(const char *k)
{
	return strcmp(k, "local") == 0 ? M_KIND_LOCAL :
	       strcmp(k, "external") == 0 ? M_KIND_EXTERNAL : M_KIND_PRIMARY;
}

static enum panel_msg domain_state_msg(const char *s)
{
	if (strcmp(s, "active") == 0)
		return M_DSTATE_ACTIVE;
	if (strcmp(s, "pending_registration") == 0)
		return M_DSTATE_PENDING_REG;
	if (strcmp(s, "pending_proof") == 0)
		return M_DSTATE_PENDING_PROOF;
	return M_DSTATE_SUSPENDED;
}

/* rules_link - to the out-of-office and forwarding page of one of the customer's mailboxes */
static void rules_link(struct evbuffer *out, const struct panel_page *pg, const char *address,
		       size_t idx)
{
	evbuffer_add_printf(out, "<a class=\"rules\" id=\"rules-link-%zu\" href=\"/mailbox/rules?address=",
			    idx);
	panel_html_query_esc(out, address);
	RAW("\" aria-label=\"");
	MSG(M_RULES);
	RAW(": ");
	ESC(address);
	RAW("\">");
	MSG(M_RULES);
	RAW("</a>");
}

static void section_account(struct evbuffer *out, const struct panel_page *pg,
			    const struct panel_overview *ov)
{
	RAW("<section aria-labelledby=\"h-account\">\n<h2 id=\"h-account\">");
	MSG(M_ACCOUNT);
	RAW("</h2>\n<dl>\n<dt>");
	MSG(M_SHELL_LOGIN);
	RAW("</dt><dd>");
	ESC(ov->login);
	if (strcmp(ov->state, "active") != 0) {
		RAW(" <span class=\"tag\">(");
		MSG(M_STATE_SUSPENDED);
		RAW(")</span>");
	}
	RAW("</dd>\n<dt>");
	MSG(M_PRIMARY_ADDRESS);
	RAW("</dt><dd>");
	ESC(ov->primary_address);
	RAW(" ");
	rules_link(out, pg, ov->primary_address, 0);
	RAW("</dd>\n<dt>");
	MSG(M_MAIL_DOMAIN);
	RAW("</dt><dd>");
	if (ov->mail_domain)
		ESC(ov->mail_domain);
	else {
		RAW("<span class=\"muted\">");
		MSG(M_NONE_SET);
		RAW("</span>");
	}
	RAW("</dd>\n</dl>\n<p><a href=\"/mail-programs\" id=\"programs-link\">");
	MSG(M_PROGRAMS_LINK);
	RAW("</a></p>\n</section>\n");
}

static void section_domains(struct evbuffer *out, const struct panel_page *pg,
			    const struct panel_overview *ov)
{
	RAW("<section aria-labelledby=\"h-domains\">\n<h2 id=\"h-domains\">");
	MSG(M_DOMAINS);
	RAW("</h2>\n");
	if (ov->ndomains == 0) {
		RAW("<p class=\"muted\">");
		MSG(M_NO_DOMAINS);
		RAW("</p>\n</section>\n");
		return;
	}
	RAW("<table>\n<thead><tr><th scope=\"col\">");
	MSG(M_DOMAIN);
	RAW("</th><th scope=\"col\">");
	MSG(M_KIND);
	RAW("</th><th scope=\"col\">");
	MSG(M_STATE);
	RAW("</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < ov->ndomains; i++) {
		const struct panel_domain *d = &ov->domains[i];
		RAW("<tr><td>");
		ESC(d->name);
		RAW("</td><td>");
		MSG(domain_kind_msg(d->kind));
		RAW("</td><td>");
		MSG(domain_state_msg(d->state));
		if (strcmp(d->state, "pending_proof") == 0 && d->verify_token) {
			RAW("<br><span class=\"muted\">");
			MSG(M_VERIFY_TOKEN);
			RAW(": <code>");
			ESC(d->verify_token);
			RAW("</code></span>");
		}
		if (d->alias_of) {
			RAW("<br><span class=\"muted\">");
			MSG(M_DOMAIN_ALIAS_OF);
			RAW(": <strong>");
			ESC(d->alias_of);
			RAW("</strong></span>");
		}
		RAW("</td></tr>\n");
	}
	RAW("</tbody>\n</table>\n</section>\n");
}

/* bar_rect - one segment of the usage bar, in a 1000-unit wide viewBox */
static void bar_rect(struct evbuffer *out, const char *cls, uint64_t bytes, uint64_t scale,
		     uint64_t *x, const char *label)
{
	if (bytes == 0 || scale == 0)
		return;
	uint64_t w = bytes * 1000 / scale;
	if (w == 0)
		w = 1; /* visible, however small */
	if (*x + w > 1000)
		w = 1000 - *x;
	char buf[SIZE_FMT_MAX];
	fmt_size(bytes, buf, sizeof(buf));
	evbuffer_add_printf(out, "<rect class=\"%s\" x=\"%llu\" y=\"0\" width=\"%llu\" height=\"24\">"
			    "<title>", cls, (unsigned long long)*x, (unsigned long long)w);
	ESC(label);
	RAW(": ");
	ESC(buf);
	RAW("</title></rect>");
	*x += w;
}

static void legend_row(struct evbuffer *out, const char *cls, const char *label, uint64_t bytes)
{
	evbuffer_add_printf(out, "<tr><th scope=\"row\"><span class=\"sw %s\" aria-hidden=\"true\"></span>",
			    cls);
	ESC(label);
	RAW("</th><td class=\"num\">");
	size_cell(out, bytes);
	RAW("</td></tr>\n");
}

static void section_disk(struct evbuffer *out, const struct panel_page *pg,
			 const struct panel_overview *ov)
{
	char used[SIZE_FMT_MAX], limit[SIZE_FMT_MAX], alloc[SIZE_FMT_MAX], cls[16];
	fmt_size(ov->total, used, sizeof(used));
	fmt_size(ov->disk_limit, limit, sizeof(limit));
	fmt_size(ov->allocated, alloc, sizeof(alloc));
	uint64_t scale = ov->total > ov->disk_limit ? ov->total : ov->disk_limit;

	RAW("<section aria-labelledby=\"h-disk\">\n<h2 id=\"h-disk\">");
	MSG(M_DISK);
	RAW("</h2>\n<p id=\"disk-summary\">");
	panel_html_msgf(out, pg->lang, M_DISK_USED, used, limit);
	RAW("</p>\n");
	if (ov->total > ov->disk_limit) {
		RAW("<p class=\"error\">");
		MSG(M_DISK_OVER);
		RAW("</p>\n");
	}
	RAW("<svg class=\"bar\" viewBox=\"0 0 1000 24\" preserveAspectRatio=\"none\" role=\"img\" "
	    "aria-labelledby=\"disk-summary\">");
	uint64_t x = 0;
	bar_rect(out, "seg-files", ov->files, scale, &x, panel_msg(pg->lang, M_FILES));
	bar_rect(out, "seg-mailbox", ov->mailbox, scale, &x, panel_msg(pg->lang, M_OWN_MAILBOX));
	for (size_t i = 0; i < ov->naccounts; i++) {
		snprintf(cls, sizeof(cls), "seg-a%zu", i % 5);
		bar_rect(out, cls, ov->accounts[i].usage, scale, &x, ov->accounts[i].address);
	}
	RAW("</svg>\n<table class=\"legend\">\n<thead><tr><th scope=\"col\">");
	MSG(M_PART);
	RAW("</th><th scope=\"col\" class=\"num\">");
	MSG(M_SIZE);
	RAW("</th></tr></thead>\n<tbody>\n");
	legend_row(out, "seg-files", panel_msg(pg->lang, M_FILES), ov->files);
	legend_row(out, "seg-mailbox", panel_msg(pg->lang, M_OWN_MAILBOX), ov->mailbox);
	for (size_t i = 0; i < ov->naccounts; i++) {
		snprintf(cls, sizeof(cls), "seg-a%zu", i % 5);
		legend_row(out, cls, ov->accounts[i].address, ov->accounts[i].usage);
	}
	legend_row(out, "seg-free", panel_msg(pg->lang, M_FREE_SPACE),
		   ov->disk_limit > ov->total ? ov->disk_limit - ov->total : 0);
	RAW("</tbody>\n</table>\n<p class=\"muted\">");
	panel_html_msgf(out, pg->lang, M_DISK_ALLOCATED, alloc, NULL);
	RAW("</p>\n</section>\n");
}

/* mailbox_select - the mailboxes a self-service alias may point at */
static void mailbox_select(struct evbuffer *out, const struct panel_overview *ov, const char *id,
			   const char *selected)
{
	evbuffer_add_printf(out, "<select name=\"target\" id=\"%s\">", id);
	const char *first = ov->primary_address;
	for (size_t i = 0; i <= ov->naccounts; i++) {
		const char *a = i == 0 ? first : ov->accounts[i - 1].address;
		RAW("<option value=\"");
		ESC(a);
		RAW("\"");
		if (selected && strcmp(selected, a) == 0)
			RAW(" selected");
		RAW(">");
		ESC(a);
		RAW("</option>");
	}
	RAW("</select>");
}

static void section_aliases(struct evbuffer *out, const struct panel_page *pg,
			    const struct panel_overview *ov, const struct panel_refusal *ref)
{
	char used[16], limit[16], id[48];
	const struct panel_refusal *r;
	snprintf(used, sizeof(used), "%u", ov->aliases_used);
	snprintf(limit, sizeof(limit), "%u", ov->alias_limit);

	RAW("<section aria-labelledby=\"h-aliases\">\n<h2 id=\"h-aliases\">");
	MSG(M_ALIASES);
	RAW(" <span class=\"count\" id=\"alias-count\">");
	panel_html_msgf(out, pg->lang, M_X_OF_Y, used, limit);
	RAW("</span></h2>\n<p class=\"muted\">");
	MSG(M_ALIASES_NOTE);
	RAW("</p>\n");
	if (ov->naliases == 0) {
		RAW("<p class=\"muted\">");
		MSG(M_NO_ALIASES);
		RAW("</p>\n");
	} else {
		RAW("<table id=\"aliases\">\n<thead><tr><th scope=\"col\">");
		MSG(M_ADDRESS);
		RAW("</th><th scope=\"col\">");
		MSG(M_DESTINATION);
		RAW("</th><th scope=\"col\">");
		MSG(M_ACTIONS);
		RAW("</th></tr></thead>\n<tbody>\n");
	}
	for (size_t i = 0; i < ov->naliases; i++) {
		const struct panel_alias *a = &ov->aliases[i];
		RAW("<tr><td>");
		ESC(a->address);
		RAW("</td><td>");
		ESC(a->destinations);
		RAW("</td><td>");
		if ((r = panel_refusal_here(ref, PANEL_FORM_ALIAS_SET, a->address)) ||
		    (r = panel_refusal_here(ref, PANEL_FORM_ALIAS_DEL, a->address))) {
			snprintf(id, sizeof(id), "alias-err-%zu", i);
			panel_refusal_block(out, pg, r, id);
		}
		if (!a->self_service) {
			RAW("<span class=\"tag\">");
			MSG(M_ADMIN_ALIAS);
			RAW("</span></td></tr>\n");
			continue;
		}
		RAW("<form class=\"row\" method=\"post\" action=\"/alias/set\">");
		panel_page_csrf(out, pg);
		RAW("<input type=\"hidden\" name=\"address\" value=\"");
		ESC(a->address);
		snprintf(id, sizeof(id), "alias-target-%zu", i);
		evbuffer_add_printf(out, "\"><label class=\"vh\" for=\"%s\">", id);
		MSG(M_TARGET);
		RAW(" (");
		ESC(a->address);
		RAW(")</label>");
		/* the current destination is preselected when it is one of ours */
		mailbox_select(out, ov, id, a->destinations);
		RAW("<button type=\"submit\">");
		MSG(M_CHANGE);
		RAW("</button></form>\n<form class=\"row\" method=\"post\" action=\"/alias/del\">");
		panel_page_csrf(out, pg);
		RAW("<input type=\"hidden\" name=\"address\" value=\"");
		ESC(a->address);
		RAW("\"><button type=\"submit\" class=\"danger\" aria-label=\"");
		MSG(M_DELETE);
		RAW(" ");
		ESC(a->address);
		RAW("\">");
		MSG(M_DELETE);
		RAW("</button></form></td></tr>\n");
	}
	if (ov->naliases)
		RAW("</tbody>\n</table>\n");

	RAW("<h3 id=\"h-alias-add\">");
	MSG(M_ADD_ALIAS);
	RAW("</h3>\n");
	r = panel_refusal_here(ref, PANEL_FORM_ALIAS_ADD, NULL);
	if (r)
		panel_refusal_block(out, pg, r, "alias-add-error");
	RAW("<form class=\"stack\" method=\"post\" action=\"/alias/add\" aria-labelledby=\"h-alias-add\">");
	panel_page_csrf(out, pg);
	RAW("\n<label>");
	MSG(M_ALIAS_ADDRESS);
	RAW(" <input name=\"address\" id=\"alias-address\" required maxlength=\"254\" autocomplete=\"off\" "
	    "spellcheck=\"false\" value=\"");
	ESC(panel_refusal_typed(r, "address"));
	RAW("\"");
	if (r)
		RAW(" aria-describedby=\"alias-add-error\" aria-invalid=\"true\"");
	RAW("></label>\n<label>");
	MSG(M_TARGET);
	RAW(" ");
	mailbox_select(out, ov, "alias-add-target", r ? panel_refusal_typed(r, "target") : NULL);
	RAW("</label>\n<div><button type=\"submit\">");
	MSG(M_ADD);
	RAW("</button></div>\n</form>\n</section>\n");
}

static void password_input(struct evbuffer *out, const char *name, const char *id,
			   const char *autocomplete, const char *placeholder)
{
	evbuffer_add_printf(out, "<input type=\"password\" name=\"%s\" id=\"%s\" required minlength=\"8\" "
			    "maxlength=\"256\" autocomplete=\"%s\"", name, id, autocomplete);
	if (placeholder) {
		/* rows have no visible label: the hint shows what the field is for */
		RAW(" placeholder=\"");
		ESC(placeholder);
		RAW("\"");
	}
	RAW(">");
}

static void section_accounts(struct evbuffer *out, const struct panel_page *pg,
			     const struct panel_overview *ov, const struct panel_refusal *ref)
{
	char used[16], limit[16], id[48];
	const struct panel_refusal *r;
	snprintf(used, sizeof(used), "%zu", ov->naccounts);
	snprintf(limit, sizeof(limit), "%u", ov->free_account_limit);

	RAW("<section aria-labelledby=\"h-accounts\">\n<h2 id=\"h-accounts\">");
	MSG(M_ACCOUNTS);
	RAW(" <span class=\"count\" id=\"account-count\">");
	panel_html_msgf(out, pg->lang, M_X_OF_Y, used, limit);
	RAW("</span></h2>\n");
	if (ov->naccounts == 0) {
		RAW("<p class=\"muted\">");
		MSG(M_NO_ACCOUNTS);
		RAW("</p>\n");
	} else {
		RAW("<table id=\"accounts\">\n<thead><tr><th scope=\"col\">");
		MSG(M_ADDRESS);
		RAW("</th><th scope=\"col\" class=\"num\">");
		MSG(M_QUOTA);
		RAW("</th><th scope=\"col\" class=\"num\">");
		MSG(M_USED);
		RAW("</th><th scope=\"col\">");
		MSG(M_STATE);
		RAW("</th><th scope=\"col\">");
		MSG(M_ACTIONS);
		RAW("</th></tr></thead>\n<tbody>\n");
	}
	for (size_t i = 0; i < ov->naccounts; i++) {
		const struct panel_account *m = &ov->accounts[i];
		RAW("<tr><td>");
		ESC(m->address);
		RAW("</td><td class=\"num\">");
		size_cell(out, m->quota);
		RAW("</td><td class=\"num\">");
		size_cell(out, m->usage);
		RAW("</td><td>");
		MSG(strcmp(m->state, "active") == 0 ? M_STATE_ACTIVE : M_STATE_SUSPENDED);
		RAW("</td><td>");
		if ((r = panel_refusal_here(ref, PANEL_FORM_ACCOUNT_PASSWD, m->address)) ||
		    (r = panel_refusal_here(ref, PANEL_FORM_ACCOUNT_RESIZE, m->address)) ||
		    (r = panel_refusal_here(ref, PANEL_FORM_ACCOUNT_DEL, m->address))) {
			snprintf(id, sizeof(id), "account-err-%zu", i);
			panel_refusal_block(out, pg, r, id);
		}
		RAW("<p class=\"cell-link\">");
		rules_link(out, pg, m->address, i + 1);
		RAW("</p>\n");
		/* new password */
		RAW("<form class=\"row\" method=\"post\" action=\"/account/passwd\">");
		panel_page_csrf(out, pg);
		RAW("<input type=\"hidden\" name=\"address\" value=\"");
		ESC(m->address);
		snprintf(id, sizeof(id), "account-pw-%zu", i);
		evbuffer_add_printf(out, "\"><label class=\"vh\" for=\"%s\">", id);
		MSG(M_NEW_PASSWORD);
		RAW(" (");
		ESC(m->address);
		RAW(")</label>");
		password_input(out, "password", id, "new-password",
			       panel_msg(pg->lang, M_NEW_PASSWORD));
		RAW("<button type=\"submit\">");
		MSG(M_SET_PASSWORD);
		RAW("</button></form>\n");
		/* quota */
		RAW("<form class=\"row\" method=\"post\" action=\"/account/resize\">");
		panel_page_csrf(out, pg);
		RAW("<input type=\"hidden\" name=\"address\" value=\"");
		ESC(m->address);
		snprintf(id, sizeof(id), "account-quota-%zu", i);
		evbuffer_add_printf(out, "\"><label class=\"vh\" for=\"%s\">", id);
		MSG(M_QUOTA_HINT);
		RAW(" (");
		ESC(m->address);
		evbuffer_add_printf(out, ")</label><input name=\"quota\" id=\"%s\" required size=\"8\" "
				    "maxlength=\"24\" value=\"", id);
		/* a value the size parser reads back: whole MiB when it is one */
		if (m->quota % (1024 * 1024) == 0)
			evbuffer_add_printf(out, "%lluM", (unsigned long long)(m->quota >> 20));
		else
			evbuffer_add_printf(out, "%llu", (unsigned long long)m->quota);
		RAW("\"><button type=\"submit\">");
		MSG(M_RESIZE);
		RAW("</button></form>\n");
		/* delete */
		RAW("<form class=\"row\" method=\"post\" action=\"/account/del\">");
		panel_page_csrf(out, pg);
		RAW("<input type=\"hidden\" name=\"address\" value=\"");
		ESC(m->address);
		RAW("\"><button type=\"submit\" class=\"danger\" aria-label=\"");
		MSG(M_DELETE);
		RAW(" ");
		ESC(m->address);
		RAW("\">");
		MSG(M_DELETE);
		RAW("</button></form></td></tr>\n");
	}
	if (ov->naccounts)
		RAW("</tbody>\n</table>\n");

	RAW("<h3 id=\"h-account-add\">");
	MSG(M_ADD_ACCOUNT);
	RAW("</h3>\n");
	r = panel_refusal_here(ref, PANEL_FORM_ACCOUNT_ADD, NULL);
	if (r)
		panel_refusal_block(out, pg, r, "account-add-error");
	RAW("<form class=\"stack\" method=\"post\" action=\"/account/add\" "
	    "aria-labelledby=\"h-account-add\">");
	panel_page_csrf(out, pg);
	RAW("\n<label>");
	MSG(M_ACCOUNT_ADDRESS);
	RAW(" <input name=\"address\" id=\"account-address\" required maxlength=\"254\" "
	    "autocomplete=\"off\" spellcheck=\"false\" value=\"");
	ESC(panel_refusal_typed(r, "address"));
	RAW("\"");
	if (r)
		RAW(" aria-describedby=\"account-add-error\" aria-invalid=\"true\"");
	RAW("></label>\n<label>");
	MSG(M_NEW_PASSWORD);
	RAW(" ");
	password_input(out, "password", "account-password", "new-password", NULL);
	RAW("</label>\n<label>");
	MSG(M_REPEAT_PASSWORD);
	RAW(" ");
	password_input(out, "password2", "account-password2", "new-password", NULL);
	RAW("</label>\n<label>");
	MSG(M_QUOTA_HINT);
	RAW(" <input name=\"quota\" id=\"account-quota\" required maxlength=\"24\" value=\"");
	ESC(panel_refusal_typed(r, "quota"));
	RAW("\"></label>\n<div><button type=\"submit\">");
	MSG(M_ADD);
	RAW("</button></div>\n</form>\n</section>\n");
}

static void section_password(struct evbuffer *out, const struct panel_page *pg,
			     const struct panel_refusal *ref)
{
	const struct panel_refusal *r = panel_refusal_here(ref, PANEL_FORM_PASSWD, NULL);
	RAW("<section aria-labelledby=\"h-password\">\n<h2 id=\"h-password\">");
	MSG(M_OWN_PASSWORD);
	RAW("</h2>\n<p class=\"muted\">");
	MSG(M_OWN_PASSWORD_NOTE);
	RAW("</p>\n");
	if (r)
		panel_refusal_block(out, pg, r, "password-error");
	RAW("<form class=\"stack\" method=\"post\" action=\"/passwd\" aria-labelledby=\"h-password\">");
	panel_page_csrf(out, pg);
	RAW("\n<label>");
	MSG(M_CURRENT_PASSWORD);
	RAW(" <input type=\"password\" name=\"current\" id=\"pw-current\" required maxlength=\"256\" "
	    "autocomplete=\"current-password\"></label>\n<label>");
	MSG(M_NEW_PASSWORD);
	RAW(" ");
	password_input(out, "password", "pw-new", "new-password", NULL);
	RAW("</label>\n<label>");
	MSG(M_REPEAT_PASSWORD);
	RAW(" ");
	password_input(out, "password2", "pw-new2", "new-password", NULL);
	RAW("</label>\n<div><button type=\"submit\">");
	MSG(M_SET_PASSWORD);
	RAW("</button></div>\n</form>\n</section>\n");
}

void panel_page_overview(struct evbuffer *out, const struct panel_page *pg,
			 const struct panel_overview *ov, const struct panel_refusal *ref)
{
	panel_page_begin(out, pg, M_TITLE);
	section_account(out, pg, ov);
	section_domains(out, pg, ov);
	section_disk(out, pg, ov);
	section_aliases(out, pg, ov, ref);
	section_accounts(out, pg, ov, ref);
	section_password(out, pg, ref);
	panel_page_end(out);
}

static enum panel_msg protocol_msg(const char *p)
{
	return strcmp(p, "imap") == 0 ? M_PROTO_IMAP : strcmp(p, "pop3") == 0 ? M_PROTO_POP3 :
										   M_PROTO_SMTP;
}

/* setup_has - whether setup offers a server for protocol (the Apple profile needs imap and smtp) */
static bool setup_has(const struct panel_client_setup *setup, const char *protocol)
{
	for (size_t i = 0; setup && i < setup->n; i++)
		if (strcmp(setup->srv[i].protocol, protocol) == 0)
			return true;
	return false;
}

/* mailbox_section - one mailbox: its address, the exact login to type, and the servers */
static void mailbox_section(struct evbuffer *out, const struct panel_page *pg,
			    const struct panel_client_setup *setup, size_t idx, const char *address,
			    const char *login, bool own, bool suspended)
{
	evbuffer_add_printf(out, "<section class=\"mailbox\" id=\"mailbox-%zu\" "
			    "aria-labelledby=\"h-mailbox-%zu\">\n<h2 id=\"h-mailbox-%zu\">", idx, idx, idx);
	ESC(address);
	RAW(" <span class=\"count\">");
	MSG(own ? M_MAILBOX_OWN : M_MAILBOX_ACCOUNT);
	if (suspended) {
		RAW(", ");
		MSG(M_STATE_SUSPENDED);
	}
	RAW("</span></h2>\n<dl>\n<dt>");
	MSG(M_EMAIL_ADDRESS);
	RAW("</dt><dd>");
	ESC(address);
	RAW("</dd>\n<dt>");
	MSG(M_USERNAME);
	RAW("</dt><dd><code class=\"login\">");
	ESC(login);
	RAW("</code></dd>\n<dt>");
	MSG(M_PASSWORD);
	RAW("</dt><dd>");
	MSG(own ? M_PASSWORD_OWN : M_PASSWORD_ACCOUNT);
	RAW("</dd>\n<dt>");
	MSG(M_AUTH);
	RAW("</dt><dd>");
	MSG(M_AUTH_NORMAL);
	RAW("</dd>\n</dl>\n");
	if (!setup || setup->n == 0) {
		RAW("</section>\n");
		return;
	}
	RAW("<table class=\"servers\">\n<thead><tr><th scope=\"col\">");
	MSG(M_SERVICE);
	RAW("</th><th scope=\"col\">");
	MSG(M_SERVER);
	RAW("</th><th scope=\"col\" class=\"num\">");
	MSG(M_PORT);
	RAW("</th><th scope=\"col\">");
	MSG(M_SECURITY);
	RAW("</th><th scope=\"col\">");
	MSG(M_LOGIN);
	RAW("</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < setup->n; i++) {
		const struct panel_setup_server *v = &setup->srv[i];
		RAW("<tr><th scope=\"row\">");
		MSG(protocol_msg(v->protocol));
		RAW("</th><td><code>");
		ESC(v->host);
		evbuffer_add_printf(out, "</code></td><td class=\"num\">%u</td><td>", v->port);
		MSG(strcmp(v->security, "ssl") == 0 ? M_SEC_SSL : M_SEC_STARTTLS);
		RAW("</td><td><code>");
		ESC(login);
		RAW("</code></td></tr>\n");
	}
	RAW("</tbody>\n</table>\n");
	if (setup_has(setup, "imap") && setup_has(setup, "smtp")) {
		RAW("<p><a class=\"profile\" href=\"/mail-programs/apple?address=");
		panel_html_query_esc(out, address);
		RAW("\">");
		MSG(M_APPLE_PROFILE);
		RAW("</a></p>\n");
	}
	RAW("</section>\n");
}

/* records_section - each domain's records as a zone file has them, one block per domain */
static void records_section(struct evbuffer *out, const struct panel_page *pg,
			    const struct panel_client_records *records)
{
	if (!records || records->n == 0)
		return;
	RAW("<section id=\"dns-records\" aria-label=\"");
	MSG(M_PROGRAMS_DNS);
	RAW("\">\n<h2>");
	MSG(M_PROGRAMS_DNS);
	RAW("</h2>\n<p>");
	MSG(M_PROGRAMS_DNS_NOTE);
	RAW("</p>\n");
	for (size_t i = 0; i < records->n; i++) {
		const struct panel_dns_record *r = &records->rec[i];
		if (i == 0 || strcmp(r->domain, records->rec[i - 1].domain) != 0) {
			RAW(i ? "</pre>\n<h3>" : "<h3>");
			ESC(r->domain);
			RAW("</h3>\n<pre>");
		}
		ESC(r->name);
		RAW(". ");
		ESC(r->type);
		RAW(" ");
		ESC(r->value);
		RAW("\n");
	}
	RAW("</pre>\n");
	if (records->truncated) {
		RAW("<p class=\"muted\">");
		MSG(M_PROGRAMS_DNS_MORE);
		RAW("</p>\n");
	}
	RAW("</section>\n");
}

void panel_page_programs(struct evbuffer *out, const struct panel_page *pg,
			 const struct panel_overview *ov, const struct panel_client_setup *setup,
			 const struct panel_client_records *records)
{
	panel_page_begin(out, pg, M_PROGRAMS);
	RAW("<section aria-label=\"");
	MSG(M_PROGRAMS);
	RAW("\">\n<p>");
	MSG(M_PROGRAMS_INTRO);
	RAW("</p>\n<p id=\"aliases-not-logins\"><strong>");
	MSG(M_PROGRAMS_ALIASES);
	RAW("</strong></p>\n");
	if (!setup || setup->n == 0) {
		RAW("<p class=\"error\" id=\"no-servers\">");
		MSG(M_PROGRAMS_NONE);
		RAW("</p>\n");
	} else if (setup_has(setup, "imap") && setup_has(setup, "smtp")) {
		RAW("<p class=\"muted\">");
		MSG(M_APPLE_NOTE);
		RAW("</p>\n");
	}
	RAW("<p><a href=\"/\">");
	MSG(M_BACK);
	RAW("</a></p>\n</section>\n");
	mailbox_section(out, pg, setup, 0, ov->primary_address, ov->login, true,
			strcmp(ov->state, "active") != 0);
	for (size_t i = 0; i < ov->naccounts; i++)
		mailbox_section(out, pg, setup, i + 1, ov->accounts[i].address, ov->accounts[i].address,
				false, strcmp(ov->accounts[i].state, "active") != 0);
	records_section(out, pg, records);
	panel_page_end(out);
}
