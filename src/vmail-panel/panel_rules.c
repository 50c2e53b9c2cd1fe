/*
 * panel_rules: the out-of-office and forwarding page of one mailbox, as HTML
 * that works without JavaScript, like every page of panel_pages.  Every form
 * names the mailbox in a hidden field; the database decides whether it is the
 * session's, so a forged one changes nothing.  A refused form is drawn again
 * with what was typed, the refusal above it.
 */
#include "panel_rules.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "panel_html.h"
#include "panel_rules_form.h"

#define ESC(s) panel_html_esc(out, (s))
#define MSG(id) panel_html_msg(out, pg->lang, (id))
#define RAW(s) evbuffer_add(out, (s), strlen(s))
#define STR_(x) #x
#define STR(x) STR_(x)

/* hidden_field - a field the user does not see, its value escaped */
static void hidden_field(struct evbuffer *out, const char *name, const char *value)
{
	evbuffer_add_printf(out, "<input type=\"hidden\" name=\"%s\" value=\"", name);
	ESC(value);
	RAW("\">");
}

/*
 * form_begin - a form of the page posting to action: its CSRF token and the mailbox, which
 * every form carries; labelledby (may be NULL) names its heading
 */
static void form_begin(struct evbuffer *out, const struct panel_page *pg, const struct panel_mailbox_rules *m,
		       const char *cls, const char *action, const char *labelledby)
{
	evbuffer_add_printf(out, "<form class=\"%s\" method=\"post\" action=\"%s\"", cls, action);
	if (labelledby)
		evbuffer_add_printf(out, " aria-labelledby=\"%s\"", labelledby);
	RAW(">");
	panel_page_csrf(out, pg);
	hidden_field(out, "address", m->address);
}

/* vacation_state - one sentence: off, or on with the dates it is bounded by; what it does */
static void vacation_state(struct evbuffer *out, const struct panel_page *pg,
			   const struct panel_mailbox_rules *m)
{
	RAW("<p id=\"vacation-state\"><strong>");
	if (!m->vacation_on)
		MSG(M_VAC_STATE_OFF);
	else if (m->start && m->end)
		panel_html_msgf(out, pg->lang, M_VAC_STATE_RANGE, m->start, m->end);
	else if (m->start)
		panel_html_msgf(out, pg->lang, M_VAC_STATE_FROM, m->start, NULL);
	else if (m->end)
		panel_html_msgf(out, pg->lang, M_VAC_STATE_UNTIL, m->end, NULL);
	else
		MSG(M_VAC_STATE_ON);
	RAW("</strong></p>\n<p class=\"muted\">");
	MSG(M_VACATION_NOTE);
	RAW("</p>\n");
}

/* vacation_off_form - the button that switches the reply off (while it is on), its refusal above */
static void vacation_off_form(struct evbuffer *out, const struct panel_page *pg,
			      const struct panel_mailbox_rules *m, const struct panel_refusal *off)
{
	if (off)
		panel_refusal_block(out, pg, off, "vacation-off-error");
	else if (!m->vacation_on)
		return;
	form_begin(out, pg, m, "row", "/mailbox/vacation/off", NULL);
	RAW("<button type=\"submit\" class=\"danger\" id=\"vacation-off\">");
	MSG(M_VAC_OFF);
	RAW("</button></form>\n");
}

/* text_input - <label>text <input ...></label> with the value escaped; attrs are ours */
static void text_input(struct evbuffer *out, const struct panel_page *pg, enum panel_msg label,
		       const char *attrs, const char *value)
{
	RAW("\n<label>");
	MSG(label);
	RAW(" <input ");
	RAW(attrs);
	RAW(" value=\"");
	ESC(value);
	RAW("\"></label>");
}

/* shown - a field's value: what was typed when its form was refused, else what is stored */
static const char *shown(const struct panel_refusal *r, const char *field, const char *stored)
{
	return r ? panel_refusal_typed(r, field) : stored ? stored : "";
}

static void vacation_form(struct evbuffer *out, const struct panel_page *pg,
			  const struct panel_mailbox_rules *m, const struct panel_refusal *r)
{
	char days[16];
	const char *from = shown(r, "from", m->from);
	snprintf(days, sizeof(days), "%u", m->days ? m->days : 7);

	form_begin(out, pg, m, "stack wide", "/mailbox/vacation", "h-vacation");
	text_input(out, pg, M_VAC_SUBJECT,
		   "name=\"subject\" id=\"vacation-subject\" required "
		   "maxlength=\"" STR(PANEL_RULES_MAX_SUBJECT) "\"",
		   shown(r, "subject", m->subject));
	RAW("\n<label>");
	MSG(M_VAC_BODY);
	/* the newline after the tag is eaten by the parser, so a text's own first one survives */
	RAW(" <textarea name=\"body\" id=\"vacation-body\" required rows=\"8\" "
	    "maxlength=\"" STR(PANEL_RULES_MAX_BODY) "\">\n");
	ESC(shown(r, "body", m->body));
	RAW("</textarea></label>");
	text_input(out, pg, M_VAC_START, "type=\"date\" name=\"start\" id=\"vacation-start\"",
		   shown(r, "start", m->start));
	text_input(out, pg, M_VAC_END, "type=\"date\" name=\"end\" id=\"vacation-end\"",
		   shown(r, "end", m->end));
	text_input(out, pg, M_VAC_DAYS,
		   "type=\"number\" name=\"days\" id=\"vacation-days\" required "
		   "min=\"1\" max=\"30\" step=\"1\"",
		   shown(r, "days", days));
	RAW("\n<label>");
	MSG(M_VAC_FROM);
	RAW(" <select name=\"from\" id=\"vacation-from\">");
	for (size_t i = 0; i < m->naddresses; i++) {
		RAW("<option value=\"");
		ESC(m->addresses[i]);
		RAW(strcmp(m->addresses[i], from) == 0 ? "\" selected>" : "\">");
		ESC(m->addresses[i]);
		RAW("</option>");
	}
	RAW("</select></label>\n<div><button type=\"submit\">");
	MSG(M_VAC_SAVE);
	RAW("</button></div>\n</form>\n");
}

static void section_vacation(struct evbuffer *out, const struct panel_page *pg,
			     const struct panel_mailbox_rules *m, const struct panel_refusal *ref)
{
	const struct panel_refusal *set = panel_refusal_here(ref, PANEL_FORM_VACATION_SET, NULL);
	const struct panel_refusal *off = panel_refusal_here(ref, PANEL_FORM_VACATION_OFF, NULL);

	RAW("<section aria-labelledby=\"h-vacation\">\n<h2 id=\"h-vacation\">");
	MSG(M_VACATION);
	RAW("</h2>\n");
	vacation_state(out, pg, m);
	vacation_off_form(out, pg, m, off);
	if (set)
		panel_refusal_block(out, pg, set, "vacation-error");
	vacation_form(out, pg, m, set);
	RAW("</section>\n");
}

/* forward_table - the targets and whether a copy stays; a removal's refusal in its row */
static void forward_table(struct evbuffer *out, const struct panel_page *pg,
			  const struct panel_mailbox_rules *m, const struct panel_refusal *ref)
{
	const struct panel_refusal *del = panel_refusal_here(ref, PANEL_FORM_FORWARD_DEL, NULL);
	bool shown = false;
	char id[48];

	RAW("<p id=\"forward-copy-state\">");
	MSG(m->keep ? M_FWD_KEEPS : M_FWD_NO_COPY);
	RAW("</p>\n");
	/* a refused removal of a target no longer listed (removed in another tab) goes on top */
	for (size_t i = 0; del && i < m->nforwards; i++)
		shown = shown || panel_refusal_here(del, PANEL_FORM_FORWARD_DEL, m->forwards[i]);
	if (del && !shown)
		panel_refusal_block(out, pg, del, "forward-del-error");
	RAW("<table id=\"forwards\">\n<thead><tr><th scope=\"col\">");
	MSG(M_ADDRESS);
	RAW("</th><th scope=\"col\">");
	MSG(M_ACTIONS);
	RAW("</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < m->nforwards; i++) {
		const char *t = m->forwards[i];
		RAW("<tr><td>");
		ESC(t);
		RAW("</td><td>");
		if (shown && panel_refusal_here(del, PANEL_FORM_FORWARD_DEL, t)) {
			snprintf(id, sizeof(id), "forward-err-%zu", i);
			panel_refusal_block(out, pg, del, id);
		}
		form_begin(out, pg, m, "row", "/mailbox/forward/del", NULL);
		hidden_field(out, "target", t);
		RAW("<button type=\"submit\" class=\"danger\" aria-label=\"");
		panel_html_msgf(out, pg->lang, M_REMOVE_TARGET, t, NULL);
		RAW("\">");
		MSG(M_REMOVE);
		RAW("</button></form></td></tr>\n");
	}
	RAW("</tbody>\n</table>\n");
}

/* section_forwarding - the targets with a button each to remove it, and the form to add one */
static void section_forwarding(struct evbuffer *out, const struct panel_page *pg,
			       const struct panel_mailbox_rules *m, const struct panel_refusal *ref)
{
	const struct panel_refusal *r = panel_refusal_here(ref, PANEL_FORM_FORWARD_ADD, NULL);
	/* a new target keeps the mailbox's choice unless the user changes it; none yet: keep */
	bool keep = r ? r->typed && panel_form_get(r->typed, "keep") : m->nforwards == 0 || m->keep;

	RAW("<section aria-labelledby=\"h-forward\">\n<h2 id=\"h-forward\">");
	MSG(M_FORWARDING);
	RAW("</h2>\n<p class=\"muted\">");
	MSG(M_FWD_NOTE);
	RAW("</p>\n");
	if (m->nforwards == 0) {
		RAW("<p id=\"forward-none\">");
		MSG(M_FWD_NONE);
		RAW("</p>\n");
	} else {
		forward_table(out, pg, m, ref);
	}
	RAW("<h3 id=\"h-forward-add\">");
	MSG(M_FWD_ADD);
	RAW("</h3>\n");
	if (r)
		panel_refusal_block(out, pg, r, "forward-add-error");
	form_begin(out, pg, m, "stack wide", "/mailbox/forward/add", "h-forward-add");
	text_input(out, pg, M_FWD_TARGET,
		   "name=\"target\" id=\"forward-target\" required "
		   "maxlength=\"" STR(PANEL_RULES_MAX_ADDRESS) "\" autocomplete=\"off\" spellcheck=\"false\"",
		   panel_refusal_typed(r, "target"));
	RAW("\n<label class=\"check\"><input type=\"checkbox\" name=\"keep\" value=\"on\" "
	    "id=\"forward-keep\" aria-describedby=\"forward-keep-warning\"");
	RAW(keep ? " checked> " : "> ");
	MSG(M_FWD_KEEP);
	RAW("</label>\n<p class=\"hint\" id=\"forward-keep-warning\">");
	MSG(M_FWD_KEEP_WARNING);
	if (m->nforwards) {
		RAW(" ");
		MSG(M_FWD_KEEP_ALL);
	}
	RAW("</p>\n<div><button type=\"submit\">");
	MSG(M_ADD);
	RAW("</button></div>\n</form>\n</section>\n");
}

void panel_rules_page(struct evbuffer *out, const struct panel_page *pg, const struct panel_mailbox_rules *m,
		      bool own, const struct panel_refusal *ref)
{
	panel_page_begin(out, pg, M_RULES);
	RAW("<section aria-label=\"");
	MSG(M_RULES_MAILBOX);
	RAW("\">\n<dl>\n<dt>");
	MSG(M_RULES_MAILBOX);
	RAW("</dt><dd id=\"rules-address\">");
	ESC(m->address);
	RAW(" <span class=\"count\">");
	MSG(own ? M_MAILBOX_OWN : M_MAILBOX_ACCOUNT);
	RAW("</span></dd>\n</dl>\n<p><a href=\"/\">");
	MSG(M_BACK);
	RAW("</a></p>\n</section>\n");
	section_vacation(out, pg, m, ref);
	section_forwarding(out, pg, m, ref);
	panel_page_end(out);
}
