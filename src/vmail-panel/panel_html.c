/*
 * panel_html: the one way text reaches a page.  Everything from the database
 * or the browser goes through panel_html_esc; translated texts with numbers
 * are filled in here rather than through printf, so no message is ever a
 * format string.  The stylesheet is small, has no external resources and
 * needs no inline styles (the CSP forbids them).
 */
#include "panel_html.h"

#include <string.h>

#include <event2/buffer.h>

static const char *entity(char c)
{
	switch (c) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return "&quot;";
	case '\'': return "&#39;";
	default: return NULL;
	}
}

void panel_html_esc(struct evbuffer *out, const char *s)
{
	if (!s)
		return;
	while (*s) {
		size_t run = strcspn(s, "&<>\"'");
		if (run)
			evbuffer_add(out, s, run);
		s += run;
		if (*s) {
			evbuffer_add_printf(out, "%s", entity(*s));
			s++;
		}
	}
}

int panel_html_esc_buf(char *out, size_t outlen, const char *s)
{
	size_t o = 0;
	for (; s && *s; s++) {
		const char *e = entity(*s);
		size_t n = e ? strlen(e) : 1;
		if (o + n >= outlen) {
			if (outlen)
				out[0] = '\0';
			return 0;
		}
		memcpy(out + o, e ? e : s, n);
		o += n;
	}
	if (outlen)
		out[o] = '\0';
	return 1;
}

void panel_html_query_esc(struct evbuffer *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		    strchr("-._~@", *c))
			evbuffer_add(out, c, 1);
		else
			evbuffer_add_printf(out, "%%%c%c", hex[*c >> 4], hex[*c & 15]);
	}
}

void panel_html_msg(struct evbuffer *out, enum panel_lang lang, enum panel_msg id)
{
	panel_html_esc(out, panel_msg(lang, id));
}

void panel_html_msgf(struct evbuffer *out, enum panel_lang lang, enum panel_msg id, const char *a1,
		     const char *a2)
{
	const char *t = panel_msg(lang, id);
	const char *args[2] = { a1, a2 };
	unsigned next = 0;
	char piece[1024];
	while (*t) {
		const char *pct = strchr(t, '%');
		size_t run = pct ? (size_t)(pct - t) : strlen(t);
		if (run >= sizeof(piece))
			run = sizeof(piece) - 1;
		memcpy(piece, t, run);
		piece[run] = '\0';
		panel_html_esc(out, piece);
		t += run;
		if (!*t)
			break;
		if ((t[1] == 's' || t[1] == 'u') && next < 2) {
			panel_html_esc(out, args[next++]);
			t += 2;
		} else {
			evbuffer_add(out, "%", 1);
			t++;
		}
	}
}

static const char css[] =
	":root{--fg:#1d2330;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;--line:#d5d9e0;"
	"--accent:#1f5fbf;--err:#a4161a;--errbg:#fdecea;--ok:#1e6b34;--okbg:#e8f5ec}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
	"color:var(--fg);background:var(--bg)}\n"
	"a{color:var(--accent)}\n"
	".skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}\n"
	"header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between;"
	"padding:.75rem 1.5rem;background:#24324a;color:#fff}\n"
	"header a{color:#fff}header .brand{font-weight:600;margin:0}\n"
	"header nav a{margin-left:.5rem}header nav a[aria-current]{font-weight:700;text-decoration:none}\n"
	"header form{display:flex;gap:.5rem;align-items:center;margin:0}\n"
	"main{max-width:60rem;margin:1.5rem auto;padding:0 1rem}\n"
	"section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;"
	"padding:1rem 1.25rem;margin-bottom:1.25rem}\n"
	"h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.2rem;margin:0 0 .75rem}"
	"h3{font-size:1rem;margin:1rem 0 .5rem}\n"
	".count{color:var(--muted);font-weight:400;font-size:1rem;margin-left:.5rem}\n"
	"table{border-collapse:collapse;width:100%;margin:.5rem 0}\n"
	"th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}\n"
	"th{font-size:.9rem;color:var(--muted);font-weight:600}\n"
	"td.num{text-align:right;white-space:nowrap}\n"
	"dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0}\n"
	"form.row{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.15rem 0}\n"
	"form.stack{display:grid;gap:.5rem;max-width:28rem}\n"
	"form.stack label{display:grid;gap:.2rem;font-weight:600;font-size:.95rem}\n"
	"form.stack input,form.stack select{font-weight:400}\n"
	"input,select,button,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #8a93a3;"
	"border-radius:.3rem}\n"
	"input:focus,select:focus,button:focus,textarea:focus{outline:3px solid #9cc0ff;outline-offset:1px}\n"
	"form.stack textarea{font-weight:400;width:100%;resize:vertical}\n"
	"form.stack.wide{max-width:40rem}\n"
	"form.stack label.check{display:flex;gap:.5rem;align-items:center}\n"
	".hint{font-weight:400;font-size:.9rem;color:var(--muted);margin:0}\n"
	".cell-link{margin:.15rem 0}\n"
	"button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}\n"
	"button.danger{background:#fff;color:var(--err);border-color:var(--err)}\n"
	"header button{background:#fff;color:#24324a;border-color:#fff}\n"
	".error{color:var(--err);background:var(--errbg);border-left:4px solid var(--err);"
	"padding:.5rem .75rem;margin:.5rem 0}\n"
	".notice{color:var(--ok);background:var(--okbg);border-left:4px solid var(--ok);"
	"padding:.5rem .75rem;margin:.5rem 0}\n"
	".muted{color:var(--muted)}.tag{font-size:.85rem;color:var(--muted);font-style:italic}\n"
	".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\n"
	"svg.bar{display:block;width:100%;height:1.6rem;border:1px solid var(--line);border-radius:.3rem;"
	"background:#eef0f3;margin:.5rem 0}\n"
	".seg-files{fill:#7b61c4;background:#7b61c4}.seg-mailbox{fill:#1f5fbf;background:#1f5fbf}"
	".seg-a0{fill:#1a936f;background:#1a936f}.seg-a1{fill:#c97b12;background:#c97b12}"
	".seg-a2{fill:#b5406b;background:#b5406b}.seg-a3{fill:#3d8fb8;background:#3d8fb8}"
	".seg-a4{fill:#6b8e23;background:#6b8e23}.seg-free{fill:#eef0f3;background:#eef0f3}\n"
	".sw{display:inline-block;width:.9rem;height:.9rem;border-radius:.2rem;margin-right:.4rem;"
	"vertical-align:-.1rem;border:1px solid #0002}\n"
	".over{fill:#a4161a}\n"
	"@media (max-width:40rem){dl{grid-template-columns:1fr}table{font-size:.9rem}}\n";

const char *panel_html_css(size_t *len)
{
	*len = sizeof(css) - 1;
	return css;
}
