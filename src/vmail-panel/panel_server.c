/*
 * panel_server: vmail-panel, the customers' configuration screen, on
 * libevent's evhttp.  This file owns the life cycle (the same order as
 * daemon.c: configuration, listeners, libsodium, privilege drop, then the
 * loop and the worker threads), the routing, the security headers, cookies,
 * CSRF checks, and each request's flow through the worker pools.
 *
 * A request that needs a worker becomes a struct preq with an explicit
 * state; each worker result comes back to preq_step on the loop thread,
 * which moves it on until it is answered.  preq_finish is the one place a
 * request ends.  The loop never blocks: hashing and SQL run on threads.
 *
 * Login: the database gives the scheme, cost and salt of the account's hash
 * (self_login_params), a hash worker derives the typed password's hash with
 * them, and self_login compares it and returns a session token, which the
 * in-memory session keeps (the cookie stays our own random value) and every
 * later self_* call sends.  The panel never sees a stored hash.
 *
 * Mail programs' automatic configuration (Thunderbird's config-v1.1.xml,
 * Outlook's autodiscover) needs no login: it is answered from
 * vmail.client_setup for the address the program asks about, never from the
 * Host header, and the answer is the same whether that mailbox exists or not.
 */
#include "panel_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <sodium.h>

#include "vmail/privdrop.h"
#include "vmail/endpoint.h"
#include "vmail/httpcap.h"
#include "vmail/log.h"
#include "panel_autoconf.h"
#include "panel_config.h"
#include "panel_db.h"
#include "panel_form.h"
#include "panel_html.h"
#include "panel_i18n.h"
#include "panel_pages.h"
#include "panel_proxy.h"
#include "panel_rules.h"
#include "panel_rules_form.h"
#include "panel_session.h"
#include "panel_worker.h"
#include "vmail/pwhash.h"
#include "vmail/size.h"

#define PANEL_BACKLOG 128
#define PANEL_MAX_HEADERS 8192
/*
 * evhttp's body limit, above the largest form's: a form a little too large (an
 * out-of-office text of 8192 characters of a script that takes 3 bytes each fills the
 * textarea and 72 KiB of the body) is then answered by read_form in the user's language
 * rather than by evhttp's bare page.
 */
#define PANEL_MAX_BODY (2 * PANEL_FORM_MAX_BODY)
#define PANEL_MAX_URI 2048
#define PANEL_MAX_PASSWORD 256
#define PANEL_MIN_PASSWORD 8
#define PANEL_HASH_QUEUE_PER_THREAD 16
#define PANEL_DB_QUEUE 256
#define PANEL_THROTTLE_KEYS 100000
#define PANEL_SWEEP_MS 60000
#define PANEL_LOGIN_TOKEN_MAX_AGE 3600 /* seconds a login form stays valid */
#define PANEL_RETRY_AFTER "30"         /* seconds, for a mail program told the database is down */

#define COOKIE_SESSION "vmail_session"
#define COOKIE_LOGIN "vmail_login"
#define COOKIE_LANG "vmail_lang"

/*
 * Security headers on every answer.  Nothing is inline and nothing comes
 * from elsewhere, so the policy can be this strict; form-action keeps a
 * hijacked page from posting a password elsewhere.
 */
static const char csp[] = "default-src 'none'; style-src 'self'; img-src 'self'; "
			  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

enum preq_state {
	PREQ_NEW = 0,
	PREQ_PARAMS,         /* db: the setting (scheme, cost, salt) of the login's hash */
	PREQ_DERIVE,         /* hash: the typed password's hash under that setting */
	PREQ_LOGIN,          /* db: self_login compares it; a session token or nothing */
	PREQ_REHASH_HASH,    /* hash: a legacy hash's replacement */
	PREQ_REHASH_STORE,   /* db: self_rehash */
	PREQ_FAIL_DELAY,     /* a failed login waits out login_failure_delay */
	PREQ_OVERVIEW,       /* db: the overview, to draw a page */
	PREQ_HASH_NEW,       /* hash: a new password for a change */
	PREQ_ACTION,         /* db: the change (with the overview if refused) */
	PREQ_LOGOUT,         /* db: self_logout */
	PREQ_SETUP,          /* db: client_setup, the servers for mail programs */
	PREQ_RECORDS,        /* db: self_client_records, the DNS records of the customer's domains */
	PREQ_RULES,          /* db: a mailbox's out-of-office reply and forwarding, to draw its page */
	PREQ_DONE,
	PREQ_STATE__COUNT,
};

static const char *const preq_state_names[PREQ_STATE__COUNT] = {
	[PREQ_NEW] = "new",
	[PREQ_PARAMS] = "params",
	[PREQ_DERIVE] = "derive",
	[PREQ_LOGIN] = "login",
	[PREQ_REHASH_HASH] = "rehash-hash",
	[PREQ_REHASH_STORE] = "rehash-store",
	[PREQ_FAIL_DELAY] = "fail-delay",
	[PREQ_OVERVIEW] = "overview",
	[PREQ_HASH_NEW] = "hash-new",
	[PREQ_ACTION] = "action",
	[PREQ_LOGOUT] = "logout",
	[PREQ_SETUP] = "setup",
	[PREQ_RECORDS] = "records",
	[PREQ_RULES] = "rules",
	[PREQ_DONE] = "done",
};

/* What a request is for; decides the flow through the states. */
enum preq_kind {
	PREQ_KIND_LOGIN,
	PREQ_KIND_PAGE,     /* GET /: the overview */
	PREQ_KIND_CHANGE,   /* a POST that changes something */
	PREQ_KIND_PROGRAMS, /* GET /mail-programs: the overview, then the servers */
	PREQ_KIND_APPLE,    /* GET /mail-programs/apple: the same, drawn as a profile */
	PREQ_KIND_AUTOCONF, /* a mail program's question: only the servers; no session */
	PREQ_KIND_RULES,    /* GET /mailbox/rules: the overview, then the mailbox's rules */
	PREQ_KIND_RULES_CHANGE, /* a POST of that page: answered there, not on the overview */
};

/* Which automatic configuration a mail program asked for. */
enum autoconf_answer {
	AUTOCONF_ANSWER_THUNDERBIRD,
	AUTOCONF_ANSWER_AUTODISCOVER,
};

enum hash_op {
	HASH_DERIVE,
	HASH_NEW,
};

struct panel;

struct preq {
	struct panel *p;
	struct evhttp_request *http;
	enum preq_state state;
	enum preq_kind kind;
	enum panel_lang lang;
	uint64_t started_ms;
	char client[64];
	char login[PANEL_LOGIN_MAX + 1];
	char token[PANEL_TOKEN_LEN + 1]; /* the session's, for a logged-in request */
	char dbtoken[PANEL_TOKEN_LEN + 1]; /* the database's session token */
	bool nobody;                     /* a login no account can have: derive, then fail */
	struct panel_form *form;         /* POST body; wiped when the request ends */

	/* a change */
	enum panel_form_id form_id;
	enum panel_db_op op;
	enum panel_msg done_msg;
	bool throttled;                  /* a login refused before any check */
	char quota[24];

	/* a refusal found before the database (drawn after an overview) */
	enum panel_msg local_refusal;
	/* RULES_CHANGE: the database's refusal, kept while the page's data is asked for */
	char db_refusal[sizeof(((struct panel_db_call *)0)->message)];
	struct panel_rules_params rules; /* RULES_CHANGE: the checked fields, inside form */

	/* mail programs: the address asked about; the overview kept while the servers are asked */
	enum autoconf_answer answer;
	char address[AUTOCONF_MAX_ADDRESS + 1];
	struct panel_overview *ov;
	struct panel_client_setup *setup;  /* PAGE: the servers, kept while the records are asked */
	const char *mb_address, *mb_login; /* APPLE: the chosen mailbox, inside ov */

	/* hash job: owned by the worker while in flight */
	struct panel_job hjob;
	enum hash_op hop;
	const char *hpassword;
	const char *hsetting;
	bool needs_rehash;
	bool hash_ok;
	char setting[PWHASH_MAX];
	char derived[PWHASH_MAX];   /* HASH_DERIVE's result: what self_login compares */
	char new_hash[PWHASH_MAX];
	char lifetime[24];          /* session_max_age in seconds, for self_login */

	struct panel_db_call db;
	struct event *timer;
	TAILQ_ENTRY(preq) link;
};

TAILQ_HEAD(preq_list, preq);

struct panel {
	struct panel_config cfg;
	struct event_base *base;
	struct evhttp *http;
	struct httpcap *cap; /* panel_max_connections */
	struct panel_pool *hash_pool, *db_pool;
	struct panel_db_settings db_settings;
	struct panel_sessions *sessions;
	struct panel_throttle *throttle_login, *throttle_addr;
	struct panel_proxy *proxy; /* whose X-Real-IP is believed */
	struct preq_list preqs;
	struct event *sig_term, *sig_int, *sweep;
	char dummy_hash[PWHASH_MAX];
	unsigned char login_key[crypto_auth_KEYBYTES];
	bool stopping;
};

static void preq_step(struct preq *r);
static void preq_finish(struct preq *r);

/* ---- small helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void preq_set_state(struct preq *r, enum preq_state st)
{
	log_debug("panel req %p: %s -> %s", (void *)r, preq_state_names[r->state],
		  preq_state_names[st]);
	r->state = st;
}

/*
 * cookie_get - the value of cookie name in a Cookie header, copied to out.
 * Values we set are hex or language codes; anything longer than out is
 * treated as absent.
 */
static bool cookie_get(const char *header, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = header;
	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t vlen = len - nlen - 1;
			while (vlen && (p[nlen + 1 + vlen - 1] == ' ' || p[nlen + 1 + vlen - 1] == '\t'))
				vlen--;
			if (vlen >= outlen)
				return false;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}

static bool req_cookie(struct evhttp_request *req, const char *name, char *out, size_t outlen)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	return h && cookie_get(h, name, out, outlen);
}

static void add_cookie(struct panel *p, struct evhttp_request *req, const char *name,
		       const char *value, const char *path, long max_age)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%s=%s; Path=%s; HttpOnly; SameSite=Strict%s", name, value,
			 path, p->cfg.cookie_secure ? "; Secure" : "");
	if (max_age >= 0)
		snprintf(buf + n, sizeof(buf) - (size_t)n, "; Max-Age=%ld", max_age);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", buf);
}

static void security_headers(struct evkeyvalq *h)
{
	evhttp_add_header(h, "Content-Security-Policy", csp);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
	evhttp_add_header(h, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
}

/* send_html - an HTML answer with the security headers; takes body */
static void send_html(struct evhttp_request *req, int code, const char *reason,
		      struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	security_headers(h);
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

static void send_redirect(struct evhttp_request *req, const char *location)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	security_headers(h);
	evhttp_add_header(h, "Location", location);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, 303, "See Other", NULL);
}

/*
 * send_body - a non-HTML answer (XML for mail programs, a profile, a short text/plain
 * reason); takes body.  disposition may be NULL.
 */
static void send_body(struct evhttp_request *req, int code, const char *reason, const char *type,
		      const char *disposition, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	security_headers(h);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (disposition)
		evhttp_add_header(h, "Content-Disposition", disposition);
	if (code == 503)
		evhttp_add_header(h, "Retry-After", PANEL_RETRY_AFTER);
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

/* send_text - one line of text/plain: mail programs read no HTML, and some show the line */
static void send_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_printf(b, "%s\n", text);
	send_body(req, code, reason, "text/plain; charset=utf-8", NULL, b);
}

static struct panel_page page_for(enum panel_lang lang, const char *login, const char *csrf)
{
	struct panel_page pg = { lang, login, csrf ? csrf : "", PANEL_MSG__COUNT, false };
	return pg;
}

/* send_message - a page with one sentence (errors that need no form) */
static void send_message(struct evhttp_request *req, enum panel_lang lang, int code,
			 const char *reason, enum panel_msg text)
{
	struct evbuffer *b = evbuffer_new();
	struct panel_page pg = page_for(lang, NULL, NULL);
	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	panel_page_message(b, &pg, text);
	send_html(req, code, reason, b);
}

/* request_lang - the cookie's choice, else Accept-Language */
static enum panel_lang request_lang(struct evhttp_request *req)
{
	char code[8];
	if (req_cookie(req, COOKIE_LANG, code, sizeof(code))) {
		int l = panel_lang_from_code(code);
		if (l >= 0)
			return (enum panel_lang)l;
	}
	return panel_lang_negotiate(
		evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Language"));
}

/* ---- login CSRF: a signed timestamp, in a cookie and in the form (double submit) ---- */

static void login_token_new(const struct panel *p, char *out, size_t outlen)
{
	uint64_t ts = (uint64_t)time(NULL);
	unsigned char tsb[8], mac[crypto_auth_BYTES];
	for (int i = 0; i < 8; i++)
		tsb[i] = (unsigned char)(ts >> (56 - 8 * i));
	crypto_auth(mac, tsb, sizeof(tsb), p->login_key);
	char tshex[17], machex[2 * crypto_auth_BYTES + 1];
	sodium_bin2hex(tshex, sizeof(tshex), tsb, sizeof(tsb));
	sodium_bin2hex(machex, sizeof(machex), mac, sizeof(mac));
	snprintf(out, outlen, "%s%s", tshex, machex);
}

static bool login_token_valid(const struct panel *p, const char *form, const char *cookie,
			      uint64_t max_age)
{
	unsigned char raw[8 + crypto_auth_BYTES];
	size_t rawlen = 0;
	size_t len = form ? strlen(form) : 0;
	if (!form || !cookie || len != 2 * sizeof(raw) || strlen(cookie) != len ||
	    sodium_memcmp(form, cookie, len) != 0)
		return false;
	if (sodium_hex2bin(raw, sizeof(raw), form, len, NULL, &rawlen, NULL) != 0 ||
	    rawlen != sizeof(raw))
		return false;
	if (crypto_auth_verify(raw + 8, raw, 8, p->login_key) != 0)
		return false;
	uint64_t ts = 0;
	for (int i = 0; i < 8; i++)
		ts = ts << 8 | raw[i];
	uint64_t now = (uint64_t)time(NULL);
	return ts <= now + 60 && now - ts < max_age;
}

/* ---- request objects ---- */

static struct preq *preq_new(struct panel *p, struct evhttp_request *req, enum preq_kind kind,
			     enum panel_lang lang)
{
	struct preq *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->p = p;
	r->http = req;
	r->kind = kind;
	r->lang = lang;
	r->started_ms = now_ms();
	r->local_refusal = PANEL_MSG__COUNT;
	r->done_msg = PANEL_MSG__COUNT;
	panel_proxy_client(p->proxy, req, r->client, sizeof(r->client));
	snprintf(r->db.client, sizeof(r->db.client), "%s", r->client);
	TAILQ_INSERT_TAIL(&p->preqs, r, link);
	return r;
}

/* preq_finish - the one way a request ends: it has been answered; release everything */
static void preq_finish(struct preq *r)
{
	preq_set_state(r, PREQ_DONE);
	TAILQ_REMOVE(&r->p->preqs, r, link);
	if (r->timer)
		event_free(r->timer);
	panel_db_call_clear(&r->db);
	panel_overview_free(r->ov);
	free(r->setup);
	if (r->form) {
		sodium_memzero(r->form, sizeof(*r->form));
		free(r->form);
	}
	sodium_memzero(r, sizeof(*r));
	free(r);
}

static void preq_unavailable(struct preq *r)
{
	if (r->kind == PREQ_KIND_AUTOCONF)
		send_text(r->http, 503, "Service Unavailable", panel_msg(r->lang, M_UNAVAILABLE));
	else
		send_message(r->http, r->lang, 503, "Service Unavailable", M_UNAVAILABLE);
	preq_finish(r);
}

static void hash_work(struct panel_job *job, void *ctx)
{
	struct preq *r = (struct preq *)((char *)job - offsetof(struct preq, hjob));
	char err[128];
	(void)ctx;
	if (r->hop == HASH_DERIVE) {
		r->hash_ok = pwhash_derive(r->hsetting, r->hpassword, r->derived, sizeof(r->derived),
					   err, sizeof(err));
		r->needs_rehash = r->hash_ok && pwhash_needs_rehash(r->derived);
		if (!r->hash_ok)
			log_warning("panel: deriving a password hash: %s", err);
	} else {
		r->hash_ok = pwhash_hash(r->hpassword, r->new_hash, sizeof(r->new_hash), err,
					 sizeof(err));
		if (!r->hash_ok)
			log_error("panel: hashing a password: %s", err);
	}
}

static void job_done(struct panel_job *job)
{
	struct preq *r = (struct preq *)((char *)job - offsetof(struct preq, hjob));
	if (job->cancelled) {
		preq_unavailable(r);
		return;
	}
	preq_step(r);
}

static void db_done(struct panel_job *job)
{
	struct preq *r = (struct preq *)((char *)job - offsetof(struct preq, db.job));
	if (job->cancelled) {
		preq_unavailable(r);
		return;
	}
	preq_step(r);
}

static void start_hash(struct preq *r, enum preq_state st, enum hash_op op, const char *password,
		       const char *setting)
{
	preq_set_state(r, st);
	r->hop = op;
	r->hpassword = password;
	r->hsetting = setting;
	r->hjob.work = hash_work;
	r->hjob.done = job_done;
	if (!panel_pool_submit(r->p->hash_pool, &r->hjob))
		preq_unavailable(r);
}

/* start_db_params - op with the first n of params (the rest NULL); a NULL parameter is SQL NULL */
static void start_db_params(struct preq *r, enum preq_state st, enum panel_db_op op,
			    const char *const *params, size_t n, bool want_overview)
{
	preq_set_state(r, st);
	r->db.op = op;
	for (size_t i = 0; i < PANEL_DB_MAX_PARAMS; i++)
		r->db.params[i] = i < n ? params[i] : NULL;
	r->db.want_overview = want_overview;
	if (!panel_db_submit(r->p->db_pool, &r->db, db_done))
		preq_unavailable(r);
}

static void start_db(struct preq *r, enum preq_state st, enum panel_db_op op, const char *a,
		     const char *b, const char *c, const char *d, bool want_overview)
{
	const char *const params[] = { a, b, c, d };
	start_db_params(r, st, op, params, 4, want_overview);
}

/* ---- login ---- */

static void login_page(struct panel *p, struct evhttp_request *req, enum panel_lang lang, int code,
		       const char *reason, const char *login, enum panel_msg error,
		       enum panel_msg notice)
{
	char token[128];
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	/* keep a valid token: a second tab's login form must not invalidate the first */
	if (!req_cookie(req, COOKIE_LOGIN, token, sizeof(token)) ||
	    !login_token_valid(p, token, token, PANEL_LOGIN_TOKEN_MAX_AGE / 2)) {
		login_token_new(p, token, sizeof(token));
		add_cookie(p, req, COOKIE_LOGIN, token, "/login", PANEL_LOGIN_TOKEN_MAX_AGE);
	}
	struct panel_page pg = page_for(lang, NULL, token);
	pg.notice = notice;
	panel_page_login(b, &pg, login, error);
	send_html(req, code, reason, b);
}

static void login_fail_answer(evutil_socket_t fd, short what, void *arg)
{
	struct preq *r = arg;
	bool throttled = r->throttled;
	(void)fd;
	(void)what;
	login_page(r->p, r->http, r->lang, throttled ? 429 : 401,
		   throttled ? "Too Many Requests" : "Unauthorized", r->login, M_LOGIN_FAILED,
		   PANEL_MSG__COUNT);
	preq_finish(r);
}

/*
 * login_failed - every failure looks the same: same text, and no answer
 * before login_failure_delay has passed since the request came in, so
 * neither the words nor the timing tell an unknown login from a wrong
 * password (or from a throttled one).
 */
static void login_failed(struct preq *r, bool throttled)
{
	struct panel *p = r->p;
	if (!throttled) {
		uint64_t now = now_ms();
		panel_throttle_fail(p->throttle_login, r->login, now);
		panel_throttle_fail(p->throttle_addr, r->client, now);
		log_notice("panel: failed login for \"%s\" from %s", r->login, r->client);
	} else {
		log_notice("panel: login for \"%s\" from %s refused: too many failures", r->login,
			   r->client);
		r->throttled = true;
	}
	preq_set_state(r, PREQ_FAIL_DELAY);
	uint64_t elapsed = now_ms() - r->started_ms;
	uint64_t wait = elapsed < p->cfg.failure_delay ? p->cfg.failure_delay - elapsed : 0;
	struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };
	r->timer = evtimer_new(p->base, login_fail_answer, r);
	if (!r->timer || evtimer_add(r->timer, &tv) != 0)
		login_fail_answer(-1, 0, r);
}

static void login_succeeded(struct preq *r)
{
	struct panel *p = r->p;
	char old[PANEL_TOKEN_LEN + 1];
	bool expired;
	/* a new token at every login: a planted session id is never promoted */
	if (req_cookie(r->http, COOKIE_SESSION, old, sizeof(old)))
		panel_session_destroy(p->sessions, panel_session_find(p->sessions, old, now_ms(),
								       &expired));
	struct panel_session *s = panel_session_create(p->sessions, r->login, now_ms());
	if (!s) {
		preq_unavailable(r);
		return;
	}
	snprintf(s->dbtoken, sizeof(s->dbtoken), "%s", r->dbtoken);
	panel_throttle_reset(p->throttle_login, r->login);
	log_notice("panel: login \"%s\" from %s", r->login, r->client);
	add_cookie(p, r->http, COOKIE_SESSION, s->token, "/", -1);
	add_cookie(p, r->http, COOKIE_LOGIN, "", "/login", 0);
	send_redirect(r->http, "/");
	preq_finish(r);
}

/* valid_login - the shape vmail.valid_login accepts; others are looked up as nobody */
static bool valid_login(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32 || isdigit((unsigned char)s[0]) || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

/* ---- the state machine ---- */

/* live_session - r's session if still open; else the browser is sent to log in and r ends */
static struct panel_session *live_session(struct preq *r)
{
	bool expired;
	struct panel_session *s = panel_session_find(r->p->sessions, r->token, now_ms(), &expired);
	if (!s) {
		/* logged out (another tab) while the database answered */
		send_redirect(r->http, expired ? "/login?expired=1" : "/login");
		preq_finish(r);
	}
	return s;
}

/*
 * The live session, the page's settings (its language, login and CSRF token) and a buffer for
 * it; NULL when the request has been answered instead.
 */
static struct evbuffer *page_buffer(struct preq *r, struct panel_session **s, struct panel_page *pg)
{
	*s = live_session(r);
	if (!*s)
		return NULL;
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		preq_unavailable(r);
		return NULL;
	}
	*pg = page_for(r->lang, (*s)->login, (*s)->csrf);
	return b;
}

static void render_overview(struct preq *r, int code, const char *reason,
			    const struct panel_overview *ov, const struct panel_refusal *ref)
{
	struct panel_session *s;
	struct panel_page pg;
	struct evbuffer *b = page_buffer(r, &s, &pg);
	if (!b)
		return;
	if (!ref && s->flash != PANEL_MSG__COUNT) {
		pg.notice = s->flash;
		s->flash = PANEL_MSG__COUNT;
	}
	panel_page_overview(b, &pg, ov, ref);
	send_html(r->http, code, reason, b);
	preq_finish(r);
}

/* change_refused - draw the overview with the refusal next to its form; nothing changed */
static void change_refused(struct preq *r, const struct panel_overview *ov, enum panel_msg msg,
			   const char *detail)
{
	struct panel_refusal ref = { r->form_id, r->form ? panel_form_get(r->form, "address") : NULL,
				     msg, detail, r->form };
	render_overview(r, 422, "Unprocessable Content", ov, &ref);
}

/* session_gone - the database no longer knows the session: end ours too, back to the login */
static void session_gone(struct preq *r)
{
	bool expired;
	panel_session_destroy(r->p->sessions,
			      panel_session_find(r->p->sessions, r->token, now_ms(), &expired));
	log_info("panel: session of \"%s\" ended by the database", r->login);
	send_redirect(r->http, "/login");
	preq_finish(r);
}

/* refusal_summary - a database refusal's translated summary: none on English pages, whose
 * words the database's sentence already is */
static enum panel_msg refusal_summary(const struct preq *r)
{
	return r->lang == PANEL_LANG_EN ? PANEL_MSG__COUNT : panel_rule_msg(r->db.sqlstate);
}

/* ---- mail programs ---- */

/* setup_view - the autoconf module's view of copied client_setup rows (pointers into in) */
static void setup_view(const struct panel_client_setup *in, struct autoconf_setup *out)
{
	memset(out, 0, sizeof(*out));
	out->username = in->username;
	out->domain = in->domain;
	out->service_name = in->service_name;
	for (size_t i = 0; i < in->n && i < AUTOCONF_MAX_SERVERS; i++) {
		out->srv[i].service = in->srv[i].service;
		out->srv[i].protocol = in->srv[i].protocol;
		out->srv[i].host = in->srv[i].host;
		out->srv[i].port = in->srv[i].port;
		out->srv[i].security = in->srv[i].security;
		out->n = i + 1;
	}
}

/*
 * own_mailbox - the customer's mailbox whose address is address (any case): the shell
 * account's own, whose login is the Unix login, or a mail account, whose login is its
 * address.  false when it is not one of theirs: an alias or someone else's is no mailbox.
 */
static bool own_mailbox(const struct panel_overview *ov, const char *address, const char **email,
			const char **login)
{
	if (strcasecmp(address, ov->primary_address) == 0) {
		*email = ov->primary_address;
		*login = ov->login;
		return true;
	}
	for (size_t i = 0; i < ov->naccounts; i++) {
		if (strcasecmp(address, ov->accounts[i].address) == 0) {
			*email = *login = ov->accounts[i].address;
			return true;
		}
	}
	return false;
}

/* programs_overview - the overview is in: keep it, and ask for the servers */
static void programs_overview(struct preq *r)
{
	r->ov = r->db.overview;
	r->db.overview = NULL;
	if (r->kind == PREQ_KIND_APPLE && !own_mailbox(r->ov, r->address, &r->mb_address, &r->mb_login)) {
		log_info("panel: \"%s\" asked for the profile of \"%s\", not a mailbox of theirs", r->login,
			 r->address);
		send_message(r->http, r->lang, 404, "Not Found", M_NOT_FOUND);
		preq_finish(r);
		return;
	}
	/* the servers are the same for every address; the primary one's domain is always served */
	start_db(r, PREQ_SETUP, PANEL_DB_CLIENT_SETUP, r->ov->primary_address, NULL, NULL, NULL, false);
}

/* programs_setup - the servers are in: keep them, and ask for the customer's DNS records */
static void programs_setup(struct preq *r)
{
	if (r->db.status == PANEL_DB_REFUSED)
		log_warning("panel: client_setup refused the primary address: %s", r->db.message);
	else if (r->db.status != PANEL_DB_OK) {
		preq_unavailable(r);
		return;
	}
	r->setup = r->db.setup;
	r->db.setup = NULL;
	start_db(r, PREQ_RECORDS, PANEL_DB_CLIENT_RECORDS, r->dbtoken, NULL, NULL, NULL, false);
}

static void render_programs(struct preq *r)
{
	if (r->db.status != PANEL_DB_OK) {
		preq_unavailable(r);
		return;
	}
	struct panel_session *s;
	struct panel_page pg;
	struct evbuffer *b = page_buffer(r, &s, &pg);
	if (!b)
		return;
	panel_page_programs(b, &pg, r->ov, r->setup, r->db.records);
	send_html(r->http, 200, "OK", b);
	preq_finish(r);
}

/* content_disposition - an attachment named after the address, in characters no header mangles */
static void content_disposition(char *out, size_t outlen, const char *address)
{
	char name[AUTOCONF_MAX_ADDRESS + 1];
	size_t n = 0;
	for (const char *c = address; *c && n < sizeof(name) - 1; c++)
		name[n++] = isalnum((unsigned char)*c) || strchr("@.-_+", *c) ? *c : '_';
	name[n] = '\0';
	snprintf(out, outlen, "attachment; filename=\"%s.mobileconfig\"", name);
}

static void send_apple(struct preq *r)
{
	if (r->db.status == PANEL_DB_TEMPFAIL) {
		preq_unavailable(r);
		return;
	}
	if (!live_session(r))
		return;
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		preq_unavailable(r);
		return;
	}
	struct autoconf_setup setup;
	bool ok = r->db.status == PANEL_DB_OK && r->db.setup;
	if (ok) {
		/* the rows name the primary address; the profile is for the mailbox chosen */
		const char *at = strchr(r->mb_address, '@');
		setup_view(r->db.setup, &setup);
		setup.username = r->mb_address;
		setup.domain = at ? at + 1 : "";
		ok = autoconf_write_apple(b, &setup, r->mb_address, r->mb_login);
	}
	if (!ok) {
		evbuffer_free(b);
		send_message(r->http, r->lang, 404, "Not Found", M_NO_PROFILE);
		preq_finish(r);
		return;
	}
	char disposition[2 * AUTOCONF_MAX_ADDRESS];
	content_disposition(disposition, sizeof(disposition), r->mb_address);
	log_info("panel: Apple profile of %s for \"%s\"", r->mb_address, r->login);
	send_body(r->http, 200, "OK", "application/x-apple-aspen-config", disposition, b);
	preq_finish(r);
}

/* send_autoconf - a mail program's answer: the servers, or why not, never an HTML page */
static void send_autoconf(struct preq *r)
{
	const struct panel_db_call *c = &r->db;
	if (c->status == PANEL_DB_REFUSED) {
		/* client_setup refuses only VM400 and VM404: both about what the program sent */
		if (strcmp(c->sqlstate, PANEL_DB_NO_ADDRESS) == 0)
			send_text(r->http, 400, "Bad Request", c->message);
		else
			send_text(r->http, 404, "Not Found", c->message);
		preq_finish(r);
		return;
	}
	if (c->status != PANEL_DB_OK || !c->setup) {
		preq_unavailable(r);
		return;
	}
	if (c->setup->n == 0) {
		send_text(r->http, 404, "Not Found", panel_msg(r->lang, M_PROGRAMS_NONE));
		preq_finish(r);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		preq_unavailable(r);
		return;
	}
	struct autoconf_setup setup;
	setup_view(c->setup, &setup);
	if (r->answer == AUTOCONF_ANSWER_THUNDERBIRD)
		autoconf_write_thunderbird(b, &setup);
	else
		autoconf_write_autodiscover(b, &setup);
	log_debug("panel: %s for %s to %s", r->answer == AUTOCONF_ANSWER_THUNDERBIRD ? "autoconfig" :
		  "autodiscover", c->setup->username, r->client);
	send_body(r->http, 200, "OK", "application/xml; charset=utf-8", NULL, b);
	preq_finish(r);
}

/* ---- a mailbox's out-of-office reply and forwarding ---- */

/* rules_not_yours - the mailbox named is not one of the session's: refused, nothing changed */
static void rules_not_yours(struct preq *r)
{
	log_info("panel: \"%s\" named \"%s\" for out-of-office or forwarding, not a mailbox of theirs",
		 r->login, r->address);
	send_message(r->http, r->lang, 403, "Forbidden", M_RULES_NOT_YOURS);
	preq_finish(r);
}

/*
 * rules_overview - the overview is in (for the page, or with a refused change): keep it,
 * and ask for the rules of the mailbox if it is one of the overview's
 */
static void rules_overview(struct preq *r, struct panel_overview *ov)
{
	r->ov = ov;
	/* the database also takes the shell account's login for its mailbox */
	if (strcasecmp(r->address, ov->login) == 0)
		snprintf(r->address, sizeof(r->address), "%s", ov->primary_address);
	if (!own_mailbox(r->ov, r->address, &r->mb_address, &r->mb_login)) {
		rules_not_yours(r);
		return;
	}
	start_db(r, PREQ_RULES, PANEL_DB_RULES, r->dbtoken, r->mb_address, NULL, NULL, false);
}

/* rules_refused - the database refused a change of the page: keep why, then draw the page again */
static void rules_refused(struct preq *r)
{
	struct panel_overview *ov = r->db.overview;
	r->db.overview = NULL;
	r->local_refusal = refusal_summary(r);
	snprintf(r->db_refusal, sizeof(r->db_refusal), "%s", r->db.message);
	rules_overview(r, ov);
}

/* render_rules - the page, with the refusal of the change that led here (422) if any */
static void render_rules(struct preq *r)
{
	struct panel_session *s;
	struct panel_page pg;
	struct evbuffer *b = page_buffer(r, &s, &pg);
	if (!b)
		return;
	bool refused = r->local_refusal != PANEL_MSG__COUNT || r->db_refusal[0];
	/* a removal's refusal belongs to the row of its target */
	const char *row = r->form_id == PANEL_FORM_FORWARD_DEL ? panel_form_get(r->form, "target") : NULL;
	struct panel_refusal ref = { r->form_id, row, r->local_refusal,
				     r->db_refusal[0] ? r->db_refusal : NULL, r->form };
	if (!refused && s->flash != PANEL_MSG__COUNT) {
		pg.notice = s->flash;
		s->flash = PANEL_MSG__COUNT;
	}
	panel_rules_page(b, &pg, r->db.rules, strcmp(r->mb_address, r->ov->primary_address) == 0,
			 refused ? &ref : NULL);
	send_html(r->http, refused ? 422 : 200, refused ? "Unprocessable Content" : "OK", b);
	preq_finish(r);
}

/* redirect_to_rules - after a change of the page: back to it, where the confirmation waits */
static void redirect_to_rules(struct preq *r)
{
	struct evbuffer *loc = evbuffer_new();
	const char *text = NULL;
	if (loc) {
		evbuffer_add_printf(loc, "/mailbox/rules?address=");
		panel_html_query_esc(loc, r->rules.address);
		evbuffer_add(loc, "", 1);
		text = (const char *)evbuffer_pullup(loc, -1);
	}
	send_redirect(r->http, text ? text : "/");
	if (loc)
		evbuffer_free(loc);
}

static void start_action(struct preq *r)
{
	const char *address = panel_form_get(r->form, "address");
	const char *target = panel_form_get(r->form, "target");
	switch (r->op) {
	case PANEL_DB_ALIAS_ADD:
	case PANEL_DB_ALIAS_SET:
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, address, target, NULL, true);
		break;
	case PANEL_DB_ACCOUNT_ADD:
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, address, r->new_hash, r->quota, true);
		break;
	case PANEL_DB_ACCOUNT_PASSWD:
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, address, r->new_hash, NULL, true);
		break;
	case PANEL_DB_ACCOUNT_RESIZE:
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, address, r->quota, NULL, true);
		break;
	case PANEL_DB_PASSWD:
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, r->derived, r->new_hash, NULL, true);
		break;
	case PANEL_DB_VACATION_SET: {
		const struct panel_rules_params *v = &r->rules;
		const char *const params[] = { r->dbtoken, v->address, v->subject, v->body,
					       v->start,   v->end,     v->days,    v->from };
		start_db_params(r, PREQ_ACTION, r->op, params, 8, true);
		break;
	}
	case PANEL_DB_VACATION_OFF:
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, r->rules.address, NULL, NULL, true);
		break;
	case PANEL_DB_FORWARD_ADD:
	case PANEL_DB_FORWARD_DEL:
		/* keep is NULL for a removal, which takes no fourth parameter */
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, r->rules.address, r->rules.target,
			 r->rules.keep, true);
		break;
	default: /* alias and account delete */
		start_db(r, PREQ_ACTION, r->op, r->dbtoken, address, NULL, NULL, true);
		break;
	}
}

static void preq_step(struct preq *r)
{
	struct panel *p = r->p;
	switch (r->state) {
	case PREQ_PARAMS: {
		if (r->db.status != PANEL_DB_OK || !r->db.value) {
			preq_unavailable(r);
			return;
		}
		const char *pw = panel_form_get(r->form, r->kind == PREQ_KIND_LOGIN ? "password" :
											"current");
		snprintf(r->setting, sizeof(r->setting), "%s", r->db.value);
		panel_db_call_clear(&r->db);
		start_hash(r, PREQ_DERIVE, HASH_DERIVE, pw ? pw : "", r->setting);
		return;
	}
	case PREQ_DERIVE:
		if (r->kind == PREQ_KIND_LOGIN) {
			if (!r->hash_ok || r->nobody) {
				login_failed(r, false);
				return;
			}
			snprintf(r->lifetime, sizeof(r->lifetime), "%llu",
				 (unsigned long long)(p->cfg.session_max_age / 1000));
			start_db(r, PREQ_LOGIN, PANEL_DB_LOGIN, r->login, r->derived, r->lifetime, NULL,
				 false);
			return;
		}
		/* own password change: self_passwd checks the current one against r->derived */
		if (!r->hash_ok) {
			r->local_refusal = M_PW_WRONG;
			start_db(r, PREQ_OVERVIEW, PANEL_DB_OVERVIEW, r->dbtoken, NULL, NULL, NULL, false);
			return;
		}
		start_hash(r, PREQ_HASH_NEW, HASH_NEW, panel_form_get(r->form, "password"), NULL);
		return;
	case PREQ_LOGIN:
		if (r->db.status != PANEL_DB_OK) {
			preq_unavailable(r);
			return;
		}
		if (!r->db.value || strlen(r->db.value) != PANEL_TOKEN_LEN) {
			login_failed(r, false);
			return;
		}
		snprintf(r->dbtoken, sizeof(r->dbtoken), "%s", r->db.value);
		panel_db_call_clear(&r->db);
		if (r->needs_rehash) {
			start_hash(r, PREQ_REHASH_HASH, HASH_NEW, panel_form_get(r->form, "password"), NULL);
			return;
		}
		login_succeeded(r);
		return;
	case PREQ_REHASH_HASH:
		if (!r->hash_ok) {
			login_succeeded(r); /* the old hash still works; try again next time */
			return;
		}
		start_db(r, PREQ_REHASH_STORE, PANEL_DB_REHASH, r->dbtoken, r->derived, r->new_hash, NULL,
			 false);
		return;
	case PREQ_REHASH_STORE:
		if (r->db.status == PANEL_DB_OK && r->db.rehashed)
			log_info("panel: password hash of \"%s\" upgraded to Argon2id", r->login);
		else
			log_warning("panel: password hash of \"%s\" not upgraded", r->login);
		login_succeeded(r);
		return;
	case PREQ_OVERVIEW:
		if (r->db.status != PANEL_DB_OK || !r->db.overview) {
			if (r->db.status == PANEL_DB_REFUSED) {
				/* the database ended the session (reset, suspension) or the account is gone */
				session_gone(r);
				return;
			}
			preq_unavailable(r);
			return;
		}
		if (r->kind == PREQ_KIND_PROGRAMS || r->kind == PREQ_KIND_APPLE) {
			programs_overview(r);
		} else if (r->kind == PREQ_KIND_RULES || r->kind == PREQ_KIND_RULES_CHANGE) {
			struct panel_overview *ov = r->db.overview;
			r->db.overview = NULL;
			rules_overview(r, ov);
		} else if (r->local_refusal != PANEL_MSG__COUNT) {
			change_refused(r, r->db.overview, r->local_refusal, NULL);
		} else {
			render_overview(r, 200, "OK", r->db.overview, NULL);
		}
		return;
	case PREQ_HASH_NEW:
		if (!r->hash_ok) {
			preq_unavailable(r);
			return;
		}
		start_action(r);
		return;
	case PREQ_ACTION:
		if (r->db.status == PANEL_DB_REFUSED &&
		    strcmp(r->db.sqlstate, PANEL_DB_SESSION_GONE) == 0) {
			session_gone(r);
			return;
		}
		if (r->db.status == PANEL_DB_REFUSED && r->db.overview &&
		    strcmp(r->db.sqlstate, PANEL_DB_WRONG_PASSWORD) == 0) {
			uint64_t now = now_ms();
			panel_throttle_fail(p->throttle_login, r->login, now);
			panel_throttle_fail(p->throttle_addr, r->client, now);
			change_refused(r, r->db.overview, M_PW_WRONG, NULL);
			return;
		}
		if (r->db.status == PANEL_DB_REFUSED && r->db.overview &&
		    r->kind == PREQ_KIND_RULES_CHANGE) {
			rules_refused(r);
			return;
		}
		if (r->db.status == PANEL_DB_REFUSED && r->db.overview) {
			change_refused(r, r->db.overview, refusal_summary(r), r->db.message);
			return;
		}
		if (r->db.status != PANEL_DB_OK) {
			preq_unavailable(r);
			return;
		}
		{
			bool expired;
			struct panel_session *s =
				panel_session_find(p->sessions, r->token, now_ms(), &expired);
			if (s) {
				s->flash = r->done_msg;
				if (r->op == PANEL_DB_PASSWD)
					panel_session_end_login(p->sessions, r->login, s);
			}
		}
		log_info("panel: %s by \"%s\" from %s", r->form_id == PANEL_FORM_PASSWD ? "password change" :
			 "change", r->login, r->client);
		if (r->kind == PREQ_KIND_RULES_CHANGE)
			redirect_to_rules(r);
		else
			send_redirect(r->http, "/");
		preq_finish(r);
		return;
	case PREQ_LOGOUT:
		if (r->db.status != PANEL_DB_OK)
			log_warning("panel: logout of \"%s\": the database session stays until it expires",
				    r->login);
		send_redirect(r->http, "/login?out=1");
		preq_finish(r);
		return;
	case PREQ_SETUP:
		if (r->kind == PREQ_KIND_AUTOCONF)
			send_autoconf(r);
		else if (r->kind == PREQ_KIND_APPLE)
			send_apple(r);
		else
			programs_setup(r);
		return;
	case PREQ_RECORDS:
		render_programs(r);
		return;
	case PREQ_RULES:
		if (r->db.status == PANEL_DB_REFUSED &&
		    strcmp(r->db.sqlstate, PANEL_DB_SESSION_GONE) == 0)
			session_gone(r);
		else if (r->db.status == PANEL_DB_REFUSED)
			rules_not_yours(r); /* deleted, or taken from the customer, since the overview */
		else if (r->db.status != PANEL_DB_OK || !r->db.rules)
			preq_unavailable(r);
		else
			render_rules(r);
		return;
	case PREQ_NEW:
	case PREQ_FAIL_DELAY:
	case PREQ_DONE:
	case PREQ_STATE__COUNT:
		break;
	}
	log_error("panel req: unexpected result in state %s", preq_state_names[r->state]);
	preq_unavailable(r);
}

/* ---- handlers ---- */

/*
 * read_form - the POST body as a form of at most max bytes; NULL (answered 400/413/415) when
 * it is not one
 */
static struct panel_form *read_form(struct evhttp_request *req, enum panel_lang lang, size_t max)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded",
			       strlen("application/x-www-form-urlencoded")) != 0) {
		send_message(req, lang, 415, "Unsupported Media Type", M_BAD_REQUEST);
		return NULL;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > max) {
		log_info("panel: a form of %zu bytes refused (at most %zu here)", len, max);
		send_message(req, lang, 413, "Content Too Large", M_TOO_LARGE);
		return NULL;
	}
	struct panel_form *f = malloc(sizeof(*f));
	unsigned char *body = evbuffer_pullup(in, -1);
	if (!f) {
		send_message(req, lang, 503, "Service Unavailable", M_UNAVAILABLE);
		return NULL;
	}
	enum panel_form_status st = panel_form_parse((const char *)body, len, f);
	/* the raw body held passwords too */
	if (body)
		sodium_memzero(body, len);
	if (st != PANEL_FORM_OK) {
		log_info("panel: malformed form: %s", panel_form_status_name(st));
		sodium_memzero(f, sizeof(*f));
		free(f);
		send_message(req, lang, 400, "Bad Request", M_BAD_REQUEST);
		return NULL;
	}
	return f;
}

static void handle_css(struct evhttp_request *req)
{
	size_t len;
	const char *css = panel_html_css(&len);
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_reference(b, css, len, NULL, NULL);
	security_headers(h);
	evhttp_add_header(h, "Content-Type", "text/css; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "max-age=3600");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void handle_lang(struct panel *p, struct evhttp_request *req, const char *code)
{
	int l = panel_lang_from_code(code);
	if (l < 0) {
		send_message(req, request_lang(req), 404, "Not Found", M_NOT_FOUND);
		return;
	}
	add_cookie(p, req, COOKIE_LANG, code, "/", 365L * 24 * 3600);
	send_redirect(req, "/");
}

/* current_session - the live session of this request, or NULL (*expired says why) */
static struct panel_session *current_session(struct panel *p, struct evhttp_request *req,
					     bool *expired)
{
	char token[PANEL_TOKEN_LEN + 1];
	*expired = false;
	if (!req_cookie(req, COOKIE_SESSION, token, sizeof(token)))
		return NULL;
	return panel_session_find(p->sessions, token, now_ms(), expired);
}

/*
 * query_value - the decoded value of name in a query string, into out; false when absent,
 * too long, or the query is malformed (decoded as strictly as a form)
 */
static bool query_value(const char *query, const char *name, char *out, size_t outlen)
{
	struct panel_form *f;
	bool ok = false;
	if (!query || !(f = malloc(sizeof(*f))))
		return false;
	if (panel_form_parse(query, strlen(query), f) == PANEL_FORM_OK) {
		const char *v = panel_form_get(f, name);
		if (v && strlen(v) < outlen) {
			memcpy(out, v, strlen(v) + 1);
			ok = true;
		}
	}
	free(f);
	return ok;
}

static void handle_login_get(struct panel *p, struct evhttp_request *req, enum panel_lang lang,
			     const char *query)
{
	bool expired;
	if (current_session(p, req, &expired)) {
		send_redirect(req, "/");
		return;
	}
	enum panel_msg notice = PANEL_MSG__COUNT;
	if (query && strcmp(query, "expired=1") == 0)
		notice = M_EXPIRED;
	else if (query && strcmp(query, "out=1") == 0)
		notice = M_LOGGED_OUT;
	login_page(p, req, lang, 200, "OK", NULL, PANEL_MSG__COUNT, notice);
}

static void handle_login_post(struct panel *p, struct evhttp_request *req, enum panel_lang lang)
{
	char cookie[128];
	struct panel_form *f = read_form(req, lang, PANEL_FORM_MAX_SMALL);
	if (!f)
		return;
	if (!req_cookie(req, COOKIE_LOGIN, cookie, sizeof(cookie)) ||
	    !login_token_valid(p, panel_form_get(f, "csrf"), cookie, PANEL_LOGIN_TOKEN_MAX_AGE)) {
		sodium_memzero(f, sizeof(*f));
		free(f);
		log_info("panel: login form without a valid CSRF token");
		send_message(req, lang, 403, "Forbidden", M_CSRF);
		return;
	}
	struct preq *r = preq_new(p, req, PREQ_KIND_LOGIN, lang);
	if (!r) {
		sodium_memzero(f, sizeof(*f));
		free(f);
		send_message(req, lang, 503, "Service Unavailable", M_UNAVAILABLE);
		return;
	}
	r->form = f;
	const char *login = panel_form_get(f, "login");
	const char *pw = panel_form_get(f, "password");
	snprintf(r->login, sizeof(r->login), "%s", login ? login : "");
	for (char *c = r->login; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	uint64_t now = now_ms();
	if (panel_throttle_blocked(p->throttle_login, r->login, now) ||
	    panel_throttle_blocked(p->throttle_addr, r->client, now)) {
		login_failed(r, true);
		return;
	}
	if (!pw || !*pw || strlen(pw) > PANEL_MAX_PASSWORD || !valid_login(r->login)) {
		/* nobody can have this login: the same hashing work as an unknown one */
		r->nobody = true;
		snprintf(r->setting, sizeof(r->setting), "%.*s",
			 (int)(strrchr(p->dummy_hash, '$') - p->dummy_hash + 1), p->dummy_hash);
		start_hash(r, PREQ_DERIVE, HASH_DERIVE, pw && strlen(pw) <= PANEL_MAX_PASSWORD ? pw : "",
			   r->setting);
		return;
	}
	start_db(r, PREQ_PARAMS, PANEL_DB_LOGIN_PARAMS, r->login, NULL, NULL, NULL, false);
}

static void handle_logout(struct panel *p, struct evhttp_request *req, enum panel_lang lang)
{
	bool expired;
	struct panel_form *f = read_form(req, lang, PANEL_FORM_MAX_SMALL);
	if (!f)
		return;
	struct panel_session *s = current_session(p, req, &expired);
	if (s && !panel_token_equal(panel_form_get(f, "csrf"), s->csrf)) {
		free(f);
		send_message(req, lang, 403, "Forbidden", M_CSRF);
		return;
	}
	free(f);
	add_cookie(p, req, COOKIE_SESSION, "", "/", 0);
	if (s) {
		log_info("panel: logout \"%s\"", s->login);
		/* the database's session ends too (self_logout); the answer waits for it */
		struct preq *r = preq_new(p, req, PREQ_KIND_PAGE, lang);
		if (r) {
			snprintf(r->login, sizeof(r->login), "%s", s->login);
			snprintf(r->dbtoken, sizeof(r->dbtoken), "%s", s->dbtoken);
			panel_session_destroy(p->sessions, s);
			start_db(r, PREQ_LOGOUT, PANEL_DB_LOGOUT, r->dbtoken, NULL, NULL, NULL, false);
			return;
		}
		panel_session_destroy(p->sessions, s);
	}
	send_redirect(req, "/login?out=1");
}

/* session_or_login - the request's session, or NULL after redirecting to the login page */
static struct panel_session *session_or_login(struct panel *p, struct evhttp_request *req)
{
	bool expired;
	struct panel_session *s = current_session(p, req, &expired);
	if (!s)
		send_redirect(req, expired ? "/login?expired=1" : "/login");
	return s;
}

/* start_page - a logged-in page of KIND: the session's overview first, which every page
 * draws on (address: the mailbox an APPLE profile or a RULES page is for, else "") */
static void start_page(struct panel *p, struct evhttp_request *req, enum panel_lang lang,
		       enum preq_kind kind, const struct panel_session *s, const char *address)
{
	struct preq *r = preq_new(p, req, kind, lang);
	if (!r) {
		send_message(req, lang, 503, "Service Unavailable", M_UNAVAILABLE);
		return;
	}
	snprintf(r->address, sizeof(r->address), "%s", address);
	snprintf(r->login, sizeof(r->login), "%s", s->login);
	snprintf(r->token, sizeof(r->token), "%s", s->token);
	snprintf(r->dbtoken, sizeof(r->dbtoken), "%s", s->dbtoken);
	start_db(r, PREQ_OVERVIEW, PANEL_DB_OVERVIEW, r->dbtoken, NULL, NULL, NULL, false);
}

static void handle_overview(struct panel *p, struct evhttp_request *req, enum panel_lang lang)
{
	struct panel_session *s = session_or_login(p, req);
	if (s)
		start_page(p, req, lang, PREQ_KIND_PAGE, s, "");
}

/*
 * handle_page - a logged-in page other than the overview: Mail programs, or one mailbox's
 * Apple profile (APPLE) or out-of-office and forwarding (RULES), named by ?address=
 */
static void handle_page(struct panel *p, struct evhttp_request *req, enum panel_lang lang,
			enum preq_kind kind, const char *query)
{
	char address[AUTOCONF_MAX_ADDRESS + 1] = "";
	struct panel_session *s = session_or_login(p, req);
	if (!s)
		return;
	if ((kind == PREQ_KIND_APPLE || kind == PREQ_KIND_RULES) &&
	    (!query_value(query, "address", address, sizeof(address)) || !address[0])) {
		send_message(req, lang, 404, "Not Found", M_NOT_FOUND);
		return;
	}
	start_page(p, req, lang, kind, s, address);
}

/* start_autoconf - ask client_setup about address for a mail program */
static void start_autoconf(struct panel *p, struct evhttp_request *req, enum panel_lang lang,
			   enum autoconf_answer answer, const char *address)
{
	struct preq *r = preq_new(p, req, PREQ_KIND_AUTOCONF, lang);
	if (!r) {
		send_text(req, 503, "Service Unavailable", panel_msg(lang, M_UNAVAILABLE));
		return;
	}
	r->answer = answer;
	snprintf(r->address, sizeof(r->address), "%s", address);
	start_db(r, PREQ_SETUP, PANEL_DB_CLIENT_SETUP, r->address, NULL, NULL, NULL, false);
}

/* handle_autoconfig - Thunderbird: GET config-v1.1.xml?emailaddress=ADDR */
static void handle_autoconfig(struct panel *p, struct evhttp_request *req, enum panel_lang lang,
			      const char *query)
{
	char address[AUTOCONF_MAX_ADDRESS + 1];
	if (!query_value(query, "emailaddress", address, sizeof(address)) || !address[0]) {
		send_text(req, 400, "Bad Request", autoconf_req_reason(AUTOCONF_REQ_NO_ADDRESS));
		return;
	}
	start_autoconf(p, req, lang, AUTOCONF_ANSWER_THUNDERBIRD, address);
}

/* handle_autodiscover - Outlook: POST an autodiscover Request naming the EMailAddress */
static void handle_autodiscover(struct panel *p, struct evhttp_request *req, enum panel_lang lang)
{
	char address[AUTOCONF_MAX_ADDRESS + 1];
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	enum autoconf_req st = AUTOCONF_REQ_TOO_LARGE;
	/* the size is refused before a byte is parsed */
	if (len <= AUTOCONF_MAX_BODY) {
		const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
		st = body ? autoconf_parse_request(body, len, address, sizeof(address)) :
			    AUTOCONF_REQ_MALFORMED;
	}
	if (st == AUTOCONF_REQ_TOO_LARGE) {
		send_text(req, 413, "Content Too Large", autoconf_req_reason(st));
		return;
	}
	if (st != AUTOCONF_REQ_OK) {
		log_info("panel: autodiscover request refused: %s", autoconf_req_reason(st));
		send_text(req, 400, "Bad Request", autoconf_req_reason(st));
		return;
	}
	start_autoconf(p, req, lang, AUTOCONF_ANSWER_AUTODISCOVER, address);
}

/* method_not_allowed - for the automatic configuration's paths, whose clients read no HTML */
static void method_not_allowed(struct evhttp_request *req, enum panel_lang lang, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	send_text(req, 405, "Method Not Allowed", panel_msg(lang, M_BAD_REQUEST));
}

static const struct {
	const char *path;
	enum panel_form_id form;
	enum panel_db_op op;
	enum panel_msg done;
	const char *required[4];
	bool new_password; /* password (+ password2 when in required) must be hashed */
	bool rules;        /* a form of a mailbox's rules page (panel_rules_form), answered there */
	size_t max_body;   /* 0: PANEL_FORM_MAX_SMALL */
} changes[] = {
	{ "/alias/add", PANEL_FORM_ALIAS_ADD, PANEL_DB_ALIAS_ADD, M_DONE_ALIAS_ADD,
	  { "address", "target" }, false, false, 0 },
	{ "/alias/set", PANEL_FORM_ALIAS_SET, PANEL_DB_ALIAS_SET, M_DONE_ALIAS_SET,
	  { "address", "target" }, false, false, 0 },
	{ "/alias/del", PANEL_FORM_ALIAS_DEL, PANEL_DB_ALIAS_DEL, M_DONE_ALIAS_DEL, { "address" },
	  false, false, 0 },
	{ "/account/add", PANEL_FORM_ACCOUNT_ADD, PANEL_DB_ACCOUNT_ADD, M_DONE_ACCOUNT_ADD,
	  { "address", "password", "password2", "quota" }, true, false, 0 },
	{ "/account/passwd", PANEL_FORM_ACCOUNT_PASSWD, PANEL_DB_ACCOUNT_PASSWD,
	  M_DONE_ACCOUNT_PASSWD, { "address", "password" }, true, false, 0 },
	{ "/account/resize", PANEL_FORM_ACCOUNT_RESIZE, PANEL_DB_ACCOUNT_RESIZE,
	  M_DONE_ACCOUNT_RESIZE, { "address", "quota" }, false, false, 0 },
	{ "/account/del", PANEL_FORM_ACCOUNT_DEL, PANEL_DB_ACCOUNT_DEL, M_DONE_ACCOUNT_DEL,
	  { "address" }, false, false, 0 },
	{ "/passwd", PANEL_FORM_PASSWD, PANEL_DB_PASSWD, M_DONE_PASSWD,
	  { "current", "password", "password2" }, true, false, 0 },
	{ "/mailbox/vacation", PANEL_FORM_VACATION_SET, PANEL_DB_VACATION_SET, M_DONE_VACATION_SET,
	  { "address", "subject", "body" }, false, true, PANEL_FORM_MAX_BODY },
	{ "/mailbox/vacation/off", PANEL_FORM_VACATION_OFF, PANEL_DB_VACATION_OFF, M_DONE_VACATION_OFF,
	  { "address" }, false, true, 0 },
	{ "/mailbox/forward/add", PANEL_FORM_FORWARD_ADD, PANEL_DB_FORWARD_ADD, M_DONE_FORWARD_ADD,
	  { "address", "target" }, false, true, 0 },
	{ "/mailbox/forward/del", PANEL_FORM_FORWARD_DEL, PANEL_DB_FORWARD_DEL, M_DONE_FORWARD_DEL,
	  { "address", "target" }, false, true, 0 },
};

/* check_change - local checks before the database; PANEL_MSG__COUNT when fine */
static enum panel_msg check_change(struct preq *r, size_t idx)
{
	for (size_t i = 0; i < 4 && changes[idx].required[i]; i++) {
		const char *v = panel_form_get(r->form, changes[idx].required[i]);
		if (!v || !*v)
			return M_MISSING;
	}
	if (changes[idx].rules)
		return panel_rules_form_check(changes[idx].form, r->form, &r->rules);
	if (changes[idx].new_password) {
		const char *pw = panel_form_get(r->form, "password");
		const char *pw2 = panel_form_get(r->form, "password2");
		size_t n = strlen(pw);
		if (n < PANEL_MIN_PASSWORD || n > PANEL_MAX_PASSWORD)
			return M_PW_LENGTH;
		if (pw2 && strcmp(pw, pw2) != 0)
			return M_PW_MISMATCH;
	}
	const char *quota = panel_form_get(r->form, "quota");
	if (quota) {
		uint64_t bytes;
		char err[160];
		if (!size_parse(quota, &bytes, err, sizeof(err)) || bytes == 0)
			return M_BAD_SIZE;
		snprintf(r->quota, sizeof(r->quota), "%llu", (unsigned long long)bytes);
	}
	return PANEL_MSG__COUNT;
}

static void handle_change(struct panel *p, struct evhttp_request *req, enum panel_lang lang,
			  size_t idx)
{
	bool expired;
	struct panel_form *f =
		read_form(req, lang, changes[idx].max_body ? changes[idx].max_body : PANEL_FORM_MAX_SMALL);
	if (!f)
		return;
	struct panel_session *s = current_session(p, req, &expired);
	if (!s || !panel_token_equal(panel_form_get(f, "csrf"), s->csrf)) {
		sodium_memzero(f, sizeof(*f));
		free(f);
		if (!s && expired) {
			send_redirect(req, "/login?expired=1");
			return;
		}
		log_info("panel: %s without a valid session and CSRF token", changes[idx].path);
		send_message(req, lang, 403, "Forbidden", M_CSRF);
		return;
	}
	struct preq *r = preq_new(p, req, changes[idx].rules ? PREQ_KIND_RULES_CHANGE : PREQ_KIND_CHANGE,
				  lang);
	if (!r) {
		sodium_memzero(f, sizeof(*f));
		free(f);
		send_message(req, lang, 503, "Service Unavailable", M_UNAVAILABLE);
		return;
	}
	r->form = f;
	if (changes[idx].rules) {
		const char *address = panel_form_get(f, "address");
		snprintf(r->address, sizeof(r->address), "%s", address ? address : "");
	}
	r->form_id = changes[idx].form;
	r->op = changes[idx].op;
	r->done_msg = changes[idx].done;
	snprintf(r->login, sizeof(r->login), "%s", s->login);
	snprintf(r->token, sizeof(r->token), "%s", s->token);
	snprintf(r->dbtoken, sizeof(r->dbtoken), "%s", s->dbtoken);

	enum panel_msg bad = check_change(r, idx);
	if (bad != PANEL_MSG__COUNT) {
		r->local_refusal = bad;
		start_db(r, PREQ_OVERVIEW, PANEL_DB_OVERVIEW, r->dbtoken, NULL, NULL, NULL, false);
		return;
	}
	if (r->op == PANEL_DB_PASSWD) {
		uint64_t now = now_ms();
		if (panel_throttle_blocked(p->throttle_login, r->login, now) ||
		    panel_throttle_blocked(p->throttle_addr, r->client, now)) {
			r->local_refusal = M_LOGIN_FAILED;
			start_db(r, PREQ_OVERVIEW, PANEL_DB_OVERVIEW, r->dbtoken, NULL, NULL, NULL, false);
			return;
		}
		start_db(r, PREQ_PARAMS, PANEL_DB_LOGIN_PARAMS, r->login, NULL, NULL, NULL, false);
		return;
	}
	if (changes[idx].new_password) {
		start_hash(r, PREQ_HASH_NEW, HASH_NEW, panel_form_get(f, "password"), NULL);
		return;
	}
	start_action(r);
}

static void route(struct evhttp_request *req, void *arg)
{
	struct panel *p = arg;
	const char *uri = evhttp_request_get_uri(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	enum panel_lang lang = request_lang(req);
	char path[PANEL_MAX_URI + 1];
	const char *query = NULL;

	if (p->stopping) {
		send_message(req, lang, 503, "Service Unavailable", M_UNAVAILABLE);
		return;
	}
	if (!uri || strlen(uri) > PANEL_MAX_URI) {
		send_message(req, lang, 414, "URI Too Long", M_BAD_REQUEST);
		return;
	}
	snprintf(path, sizeof(path), "%s", uri);
	char *q = strchr(path, '?');
	if (q) {
		*q = '\0';
		query = q + 1;
	}
	bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
	bool post = cmd == EVHTTP_REQ_POST;

	if (get && strcmp(path, "/style.css") == 0) {
		handle_css(req);
	} else if (get && strcmp(path, "/favicon.ico") == 0) {
		/* browsers ask on every visit; nothing to show, nothing to log */
		security_headers(evhttp_request_get_output_headers(req));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
				  "max-age=86400");
		evhttp_send_reply(req, 204, "No Content", NULL);
	} else if (get && strncmp(path, "/lang/", 6) == 0) {
		handle_lang(p, req, path + 6);
	} else if (get && strcmp(path, "/") == 0) {
		handle_overview(p, req, lang);
	} else if (get && strcmp(path, "/login") == 0) {
		handle_login_get(p, req, lang, query);
	} else if (post && strcmp(path, "/login") == 0) {
		handle_login_post(p, req, lang);
	} else if (post && strcmp(path, "/logout") == 0) {
		handle_logout(p, req, lang);
	} else if (get && strcmp(path, "/mail-programs") == 0) {
		handle_page(p, req, lang, PREQ_KIND_PROGRAMS, NULL);
	} else if (get && strcmp(path, "/mail-programs/apple") == 0) {
		handle_page(p, req, lang, PREQ_KIND_APPLE, query);
	} else if (get && strcmp(path, "/mailbox/rules") == 0) {
		handle_page(p, req, lang, PREQ_KIND_RULES, query);
	} else if (strcmp(path, "/mail/config-v1.1.xml") == 0 ||
		   strcmp(path, "/.well-known/autoconfig/mail/config-v1.1.xml") == 0) {
		if (get)
			handle_autoconfig(p, req, lang, query);
		else
			method_not_allowed(req, lang, "GET, HEAD");
	} else if (strcasecmp(path, "/autodiscover/autodiscover.xml") == 0) {
		/* Outlook's spellings of the path differ in case only */
		if (post)
			handle_autodiscover(p, req, lang);
		else
			method_not_allowed(req, lang, "POST");
	} else {
		for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
			if (strcmp(path, changes[i].path) != 0)
				continue;
			if (post)
				handle_change(p, req, lang, i);
			else
				send_message(req, lang, 405, "Method Not Allowed", M_BAD_REQUEST);
			return;
		}
		send_message(req, lang, 404, "Not Found", M_NOT_FOUND);
	}
}

/* ---- life cycle ---- */

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct panel *p = arg;
	(void)fd;
	(void)what;
	size_t n = panel_sessions_sweep(p->sessions, now_ms());
	if (n)
		log_debug("panel: %zu expired sessions removed, %zu open", n,
			  panel_sessions_count(p->sessions));
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct panel *p = arg;
	(void)what;
	log_notice("panel: signal %d, stopping", (int)sig);
	p->stopping = true;
	event_base_loopexit(p->base, NULL);
}

/* drop_privileges - to panel_user/panel_group, resolved and checked before binding */
static bool drop_privileges(const struct privdrop *pd, const char *user, char *err,
			    size_t errlen)
{
	if (!pd->drop || geteuid() != 0)
		return true;
	if (!privdrop_switch(pd, err, errlen))
		return false;
	log_info("panel: running as %s (uid %u, gid %u)", user, (unsigned)pd->uid,
		 (unsigned)pd->gid);
	return true;
}

/* teardown - answer what is still open, then free in reverse order of creation */
static void teardown(struct panel *p)
{
	p->stopping = true;
	/*
	 * Both pools stop before either is freed: a finishing job's done may
	 * submit to the other pool (a looked-up hash goes to be verified, a
	 * verified one to be stored), and that must be refused, not land in
	 * freed memory.  Cancelled jobs answer 503 and finish.
	 */
	panel_pool_stop(p->hash_pool);
	panel_pool_stop(p->db_pool);
	panel_pool_free(p->hash_pool);
	panel_pool_free(p->db_pool);
	p->hash_pool = p->db_pool = NULL;
	bool answered = !TAILQ_EMPTY(&p->preqs);
	while (!TAILQ_EMPTY(&p->preqs))
		preq_unavailable(TAILQ_FIRST(&p->preqs));
	if (answered && p->base) {
		/* let those 503s reach their clients before the connections are freed */
		struct timeval flush = { 0, 200000 };
		event_base_loopexit(p->base, &flush);
		event_base_dispatch(p->base);
	}
	if (p->http)
		evhttp_free(p->http);
	httpcap_free(p->cap); /* after evhttp_free: closing connections counts them out */
	if (p->sweep)
		event_free(p->sweep);
	if (p->sig_term)
		event_free(p->sig_term);
	if (p->sig_int)
		event_free(p->sig_int);
	panel_sessions_free(p->sessions);
	panel_throttle_free(p->throttle_login);
	panel_throttle_free(p->throttle_addr);
	panel_proxy_free(p->proxy);
	if (p->base)
		event_base_free(p->base);
	sodium_memzero(p->login_key, sizeof(p->login_key));
	panel_config_free(&p->cfg);
}

static int listen_all(struct panel *p, int *fds, size_t *nfds)
{
	struct endpoint_list eps;
	char err[300];
	*nfds = 0;
	if (!endpoint_parse_list(p->cfg.listen, &eps, err, sizeof(err))) {
		log_error("panel_listen: %s", err);
		return -1;
	}
	/* a unix listener is how nginx reaches the panel: its group, not every local user */
	struct endpoint_perms perms = { (uid_t)-1, (gid_t)-1, p->cfg.socket_mode };
	if (p->cfg.socket_group[0] &&
	    !privdrop_find_group("panel_socket_group", p->cfg.socket_group, &perms.group, err,
				 sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	for (size_t i = 0; i < eps.count; i++) {
		int fd = endpoint_listen(&eps.items[i], &perms, PANEL_BACKLOG, err, sizeof(err));
		if (fd < 0) {
			log_error("panel_listen %s: %s", eps.items[i].text, err);
			return -1;
		}
		fds[(*nfds)++] = fd;
		log_info("panel: listening on %s", eps.items[i].text);
	}
	return 0;
}

int panel_server_run(const char *path)
{
	struct panel p;
	char err[512];
	int fds[ENDPOINT_MAX];
	size_t nfds = 0;
	int status = 1;

	memset(&p, 0, sizeof(p));
	TAILQ_INIT(&p.preqs);
	log_init("vmail-panel", false, LOG_LEVEL_INFO);
	if (!panel_config_load(path, &p.cfg, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	log_init("vmail-panel", p.cfg.log_syslog, p.cfg.log_level);
	if (p.cfg.ignored_keys)
		log_debug("panel: %u keys of other programs in %s ignored", p.cfg.ignored_keys,
			  path);
	struct privdrop run_as;
	if (!privdrop_resolve(&run_as, "panel_user", p.cfg.user, "panel_group", p.cfg.group, err,
			      sizeof(err)) ||
	    !privdrop_check(&run_as, err, sizeof(err))) {
		log_error("%s", err);
		goto out;
	}
	/* names resolve now: the run-as user may not read what root can */
	p.proxy = panel_proxy_new(p.cfg.trusted_proxies, p.cfg.trusted_proxy_users, err,
				  sizeof(err));
	if (!p.proxy) {
		log_error("%s", err);
		goto out;
	}
	if (listen_all(&p, fds, &nfds) < 0)
		goto out;
	if (!pwhash_init(err, sizeof(err))) {
		log_error("%s", err);
		goto out;
	}
	if (!drop_privileges(&run_as, p.cfg.user, err, sizeof(err))) {
		log_error("%s", err);
		goto out;
	}
	/*
	 * The dummy hash for unknown logins is made now, at the cost new hashes
	 * get, so verifying against it takes as long as against a real one.
	 */
	{
		char pw[PANEL_TOKEN_LEN + 1];
		panel_token_new(pw);
		if (!pwhash_hash(pw, p.dummy_hash, sizeof(p.dummy_hash), err, sizeof(err))) {
			log_error("panel: %s", err);
			goto out;
		}
		sodium_memzero(pw, sizeof(pw));
	}
	crypto_auth_keygen(p.login_key);
	if (evthread_use_pthreads() != 0) {
		log_error("panel: libevent has no pthreads support");
		goto out;
	}
	p.base = event_base_new();
	p.sessions = panel_sessions_new(p.cfg.max_sessions, p.cfg.session_idle,
					p.cfg.session_max_age);
	p.throttle_login = panel_throttle_new(p.cfg.throttle_login, p.cfg.throttle_window,
					      PANEL_THROTTLE_KEYS);
	p.throttle_addr = panel_throttle_new(p.cfg.throttle_address, p.cfg.throttle_window,
					     PANEL_THROTTLE_KEYS);
	if (!p.base || !p.sessions || !p.throttle_login || !p.throttle_addr) {
		log_error("panel: out of memory");
		goto out;
	}
	p.db_settings.conninfo = p.cfg.database;
	p.db_settings.timeout_ms = p.cfg.db_timeout;
	p.hash_pool = panel_pool_new(p.base, "hash", p.cfg.hash_workers,
				     p.cfg.hash_workers * PANEL_HASH_QUEUE_PER_THREAD, NULL);
	p.db_pool = panel_db_pool_new(p.base, &p.db_settings, p.cfg.db_workers, PANEL_DB_QUEUE);
	p.http = evhttp_new(p.base);
	if (p.http)
		p.cap = httpcap_new(p.http, p.base, "panel_listen", p.cfg.max_connections);
	if (!p.hash_pool || !p.db_pool || !p.http || !p.cap) {
		log_error("panel: cannot start the workers or the HTTP server");
		goto out;
	}
	evhttp_set_max_headers_size(p.http, PANEL_MAX_HEADERS);
	evhttp_set_max_body_size(p.http, PANEL_MAX_BODY);
	evhttp_set_timeout(p.http, (int)((p.cfg.request_timeout + 999) / 1000));
	evhttp_set_allowed_methods(p.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_gencb(p.http, route, &p);
	for (size_t i = 0; i < nfds; i++) {
		if (!evhttp_accept_socket_with_handle(p.http, fds[i])) {
			log_error("panel: cannot accept on a listener");
			goto out;
		}
		fds[i] = -1; /* evhttp owns it now */
	}
	signal(SIGPIPE, SIG_IGN);
	p.sig_term = evsignal_new(p.base, SIGTERM, signal_cb, &p);
	p.sig_int = evsignal_new(p.base, SIGINT, signal_cb, &p);
	p.sweep = event_new(p.base, -1, EV_PERSIST, sweep_cb, &p);
	struct timeval sweep_tv = { PANEL_SWEEP_MS / 1000, 0 };
	if (!p.sig_term || !p.sig_int || !p.sweep || evsignal_add(p.sig_term, NULL) ||
	    evsignal_add(p.sig_int, NULL) || event_add(p.sweep, &sweep_tv)) {
		log_error("panel: cannot set up signals and timers");
		goto out;
	}
	log_notice("panel: ready (%u hash workers, %u database workers)", p.cfg.hash_workers,
		   p.cfg.db_workers);
	event_base_dispatch(p.base);
	status = 0;
out:
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	teardown(&p);
	log_notice("panel: stopped");
	return status;
}

static void print_line(const char *text, void *arg)
{
	(void)arg;
	printf("%s\n", text);
}

int panel_server_check_config(const char *path)
{
	struct panel_config cfg;
	char err[512];
	log_init("vmail-panel", false, LOG_LEVEL_INFO);
	if (!panel_config_load(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "vmail-panel: %s\n", err);
		return 1;
	}
	panel_config_print(&cfg, print_line, NULL);
	if (cfg.ignored_keys)
		printf("# %u keys of other programs ignored\n", cfg.ignored_keys);
	panel_config_free(&cfg);
	return 0;
}
