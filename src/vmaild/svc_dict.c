/*
 * svc_dict: Dovecot's dict proxy protocol over conn.  Frames lines with the pure
 * parser (dictproto), gives each connection a role from the dict name in its hello
 * (dict_txn), checks who the peer is (SO_PEERCRED), and turns lookups and iterations
 * into lookups and commits of the mailbox quota root into dict_batch commits, which
 * coalesces them into few database transactions; a commit is answered only when its
 * batch's statement returned.  A database failure is never N: N makes Dovecot recount
 * (lookups), say "user unknown" (auth) or deliver without the mailbox's Sieve script,
 * so without its forwarding (sieve).  It is F, except for a counter lookup, which is
 * answered "full" (DICT_COUNTER_UNKNOWN).
 */
#define _GNU_SOURCE /* struct ucred */
#include "svc_dict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "dict_batch.h"
#include "dict_recount.h"
#include "dict_txn.h"
#include "lookup.h"
#include "vmail/dictproto.h"
#include "vmail/log.h"
#include "vmail/privdrop.h"

/* The longest reply line: an escaped value may double, plus letter, id and newline. */
#define DICT_REPLY_MAX   (2 * DICT_MAX_LINE + 64)

#define KEY_PASSDB "shared/passdb/"
#define KEY_USERDB "shared/userdb/"

/* What dict_quota_get and dict_sieve_get answer for a user the peer's uid may not read. */
#define DICT_DENIED "denied"

/*
 * The answer to a counter lookup the database cannot give: as much as a counter can
 * hold, so every limit is reached.  Dovecot 2.3 stores a message whose quota lookup
 * failed ("quota: ... - saving/copying mail anyway", quota-storage.c quota_save_begin,
 * quota_copy, quota_check) and cannot count it, but refuses one over its limit: LMTP
 * 452 4.2.2 (quota_full_tempfail, Postfix keeps it queued), APPEND NO [OVERQUOTA].
 * The lookup that comes before every save then decides, in every session, including
 * one that got its userdb answer before the outage.  A mailbox with no limit asks
 * nothing and is unaffected.
 */
#define DICT_COUNTER_UNKNOWN "9223372036854775807"

/* After a counter lookup on a quota connection: is a commit expected? */
enum dict_await {
	DICT_AWAIT_NONE = 0, /* no lookup since the last transaction began */
	DICT_AWAIT_GRACE,    /* answered, grace running: a stop waits */
	DICT_AWAIT_EXPIRED,  /* the grace ended while draining: the stop no longer waits */
};

enum dict_conn_state {
	DICT_CONN_HELLO = 0, /* waiting for H */
	DICT_CONN_READY,     /* role known, commands served */
	DICT_CONN_STATE__COUNT,
};

static const char *const dict_conn_state_names[DICT_CONN_STATE__COUNT] = {
	[DICT_CONN_HELLO] = "hello",
	[DICT_CONN_READY] = "ready",
};

struct dict_listener {
	struct svc_dict *svc;
	enum svc_dict_listener kind;
};

/*
 * A commit queued in dict_batch, until its answer (dict_commit_done) or until its
 * connection drops it (dict_commit_drop); freed by whichever comes first.
 */
struct dict_commit {
	struct svc_dict *svc;
	struct conn_req *req;
	struct dict_conn *dc;
	struct dict_batch_req *br;
	uint32_t id;
	bool async;                 /* D: the reply gets an 'A' prefix */
	struct dict_txn *txn;       /* owned */
};

_Static_assert((int)DICT_TXN_STORAGE == (int)DICT_BATCH_STORAGE &&
		       (int)DICT_TXN_MESSAGES == (int)DICT_BATCH_MESSAGES &&
		       (int)DICT_TXN_COUNTER__COUNT == (int)DICT_BATCH_COUNTER__COUNT,
	       "dict_txn and dict_batch number the counters alike");

struct svc_dict {
	struct event_base *base;
	struct pg_pool *pool;
	struct dict_listener listeners[SVC_DICT__COUNT];
	char *auth_names, *quota_names, *account_names, *sieve_names;
	struct privdrop_ids trusted;     /* dict_trusted_users */
	struct dict_batch *batch;        /* the commits of every connection */
	struct dict_recount *recount;    /* failed quota requests: metrics, log, recount list */
	/*
	 * How long a stop waits for the commit after a counter lookup (shutdown_commit_grace).
	 * Dovecot 2.3's quota looks the counters up, saves the mail, then sends B/A.../C on
	 * the same connection a few ms later; a connection closed in between fails that
	 * commit ("Quota is now desynced").  Long enough for a save under load, short enough
	 * that a client that only asked (IMAP GETQUOTAROOT) does not hold the stop.
	 */
	unsigned commit_grace_ms;
	struct dict_cmd cmd;             /* the line being handled (large: not per conn) */
	char out[DICT_REPLY_MAX];        /* one reply being formatted */
};

/* Per connection (conn_data). */
struct dict_conn {
	struct dict_listener *l;
	enum dict_conn_state state;
	enum dict_txn_role role;
	uint32_t major, minor;
	char *hello_user;            /* username from the hello (clients before 2.3.17) */
	bool have_cred;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool trusted;
	char peer_uid[16];           /* SQL parameter: the uid, or "-1" if trusted */
	struct dict_txn *txns;       /* open transactions */
	unsigned ntxns;
	/*
	 * Read your writes: a counter lookup that follows a commit of the same connection
	 * waits until that commit is in the database (Dovecot pipelines them).
	 */
	unsigned commits_pending;
	struct dict_parked *parked, **parked_tail;
	struct dictproto_scan scan; /* how far the partial line in the input was searched */
	/* The commit a counter lookup announces (svc_dict.commit_grace_ms). */
	struct conn *conn;
	enum dict_await await;
	struct event *grace_ev;
	char *await_login;
};

/* A counter lookup waiting for its connection's commits. */
struct dict_parked {
	struct dict_parked *next;
	struct conn_req *req;
	int counter;
	char user[];
};

/* What a lookup or iteration needs in its callback; freed there or when its conn drops it. */
struct dict_ask {
	struct conn_req *req;
	struct lookup_req *lr;
	enum dict_txn_role role;
	uint64_t max_rows;
	struct svc_dict *svc;
	char login[]; /* a counter lookup's user, for dict_recount */
};

static void dict_on_read(struct conn *c, void *arg);
static void dict_on_close(struct conn *c, void *data, void *arg);
static bool dict_busy(const struct conn *c, void *data, void *arg);

const struct conn_proto svc_dict_proto = {
	.name = "dict",
	.on_read = dict_on_read,
	.on_close = dict_on_close,
	.busy = dict_busy,
};

/* ---- settings --------------------------------------------------------------------- */

struct svc_dict *svc_dict_new(struct event_base *base, struct pg_pool *pool,
			      const struct svc_dict_settings *set, char *err, size_t errlen)
{
	struct svc_dict *svc = calloc(1, sizeof(*svc));
	if (!svc) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	svc->base = base;
	svc->pool = pool;
	svc->commit_grace_ms = set->commit_grace_ms;
	for (unsigned i = 0; i < SVC_DICT__COUNT; i++) {
		svc->listeners[i].svc = svc;
		svc->listeners[i].kind = (enum svc_dict_listener)i;
	}
	svc->auth_names = strdup(set->auth_names);
	svc->quota_names = strdup(set->quota_names);
	svc->account_names = strdup(set->account_names);
	svc->sieve_names = strdup(set->sieve_names);
	svc->batch = dict_batch_new(base, pool);
	svc->recount = dict_recount_new(base, pool, set->state_directory);
	if (!svc->auth_names || !svc->quota_names || !svc->account_names || !svc->sieve_names ||
	    !svc->batch || !svc->recount) {
		snprintf(err, errlen, "out of memory");
		svc_dict_free(svc);
		return NULL;
	}
	if (!privdrop_ids_parse(&svc->trusted, "dict_trusted_users", set->trusted_users, err,
				errlen)) {
		svc_dict_free(svc);
		return NULL;
	}
	return svc;
}

void *svc_dict_listener_arg(struct svc_dict *svc, enum svc_dict_listener kind)
{
	return &svc->listeners[kind];
}

static void dict_commit_free(struct dict_commit *cm)
{
	dict_txn_free(cm->txn);
	free(cm);
}

void svc_dict_free(struct svc_dict *svc)
{
	if (!svc)
		return;
	dict_batch_free(svc->batch);
	dict_recount_free(svc->recount);
	free(svc->auth_names);
	free(svc->quota_names);
	free(svc->account_names);
	free(svc->sieve_names);
	free(svc);
}

/* ---- connections ------------------------------------------------------------------- */

static void dict_set_state(struct conn *c, struct dict_conn *dc, enum dict_conn_state st)
{
	conn_log(c, LOG_LEVEL_DEBUG, "dict %s -> %s", dict_conn_state_names[dc->state],
		 dict_conn_state_names[st]);
	dc->state = st;
}

bool svc_dict_is_trusted(const struct svc_dict *svc, uid_t uid, gid_t gid)
{
	return uid == 0 || privdrop_ids_match(&svc->trusted, uid, gid);
}

/* dict_grace_cb - the commit a lookup announced did not begin within the grace */
static void dict_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dict_conn *dc = arg;
	(void)fd;
	(void)what;
	if (conn_state(dc->conn) != CONN_DRAINING) {
		/* Not stopping: nothing waits; the lookup was only a question. */
		dc->await = DICT_AWAIT_NONE;
		return;
	}
	dc->await = DICT_AWAIT_EXPIRED;
	conn_recheck(dc->conn);
}

/* dict_await_clear - a transaction began: the announced commit is here */
static void dict_await_clear(struct dict_conn *dc)
{
	dc->await = DICT_AWAIT_NONE;
	evtimer_del(dc->grace_ev);
}

/*
 * dict_await_commit - a counter lookup of login is about to be answered: its commit may
 * follow.  Outside a stop each lookup restarts the grace (a GETQUOTAROOT just before a
 * save must not shorten the save's grace); once stopping, a client that keeps asking
 * cannot extend it.
 */
static void dict_await_commit(struct dict_conn *dc, const char *login)
{
	if (dc->ntxns > 0)
		return; /* in a transaction its own commit is awaited (dict_busy) */
	if (dc->await != DICT_AWAIT_NONE && conn_state(dc->conn) == CONN_DRAINING)
		return;
	if (!dc->await_login || strcmp(dc->await_login, login) != 0) {
		char *dup = strdup(login);
		if (!dup)
			return; /* out of memory: the stop just does not wait for this one */
		free(dc->await_login);
		dc->await_login = dup;
	}
	unsigned ms = dc->l->svc->commit_grace_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	if (evtimer_add(dc->grace_ev, &tv) == 0)
		dc->await = DICT_AWAIT_GRACE;
}

static struct dict_conn *dict_conn_new(struct conn *c, struct dict_listener *l)
{
	struct dict_conn *dc = calloc(1, sizeof(*dc));
	if (!dc)
		return NULL;
	dc->grace_ev = evtimer_new(l->svc->base, dict_grace_cb, dc);
	if (!dc->grace_ev) {
		free(dc);
		return NULL;
	}
	dc->conn = c;
	dc->l = l;
	dc->state = DICT_CONN_HELLO;
	dc->parked_tail = &dc->parked;
	/* The credentials of the process that connected, fixed at connect(2). */
	struct ucred uc;
	socklen_t len = sizeof(uc);
	int fd = conn_fd(c);
	if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 &&
	    len == sizeof(uc)) {
		dc->have_cred = true;
		dc->uid = uc.uid;
		dc->gid = uc.gid;
		dc->pid = uc.pid;
		dc->trusted = svc_dict_is_trusted(l->svc, uc.uid, uc.gid);
	}
	snprintf(dc->peer_uid, sizeof(dc->peer_uid), "%ld",
		 dc->trusted ? -1L : (long)dc->uid);
	return dc;
}

static void dict_on_close(struct conn *c, void *data, void *arg)
{
	struct dict_conn *dc = data;
	(void)arg;
	if (!dc)
		return;
	if (dc->txns)
		/* The client was not told: the mailbox's counters miss this update. */
		conn_log(c, LOG_LEVEL_NOTICE, "closed with %u open transaction(s) discarded (%.200s's "
			 "first)", dc->ntxns, dc->txns->username);
	while (dc->txns) {
		struct dict_txn *t = dc->txns;
		dc->txns = t->next;
		/* Dovecot stored the mail and now reports the quota desynced: recount it. */
		if (dc->role == DICT_TXN_ROLE_MAILBOX && dict_txn_writes(t))
			dict_recount_failed(dc->l->svc->recount, METRICS_QUOTA_COMMIT,
					    METRICS_QF_CLOSED, t->username);
		dict_txn_free(t);
	}
	while (dc->parked) {
		struct dict_parked *p = dc->parked;
		dc->parked = p->next;
		free(p); /* its request was freed by conn_close */
	}
	/* The stop cut a commit a lookup announced: if it was coming, it is lost. */
	if (dc->await != DICT_AWAIT_NONE && dc->role == DICT_TXN_ROLE_MAILBOX &&
	    conn_cut_by_drain(c)) {
		conn_log(c, LOG_LEVEL_NOTICE, "closed by the stop %s a counter lookup of %.200s, "
			 "before a commit", dc->await == DICT_AWAIT_GRACE ? "right after" : "after",
			 dc->await_login);
		dict_recount_failed(dc->l->svc->recount, METRICS_QUOTA_COMMIT, METRICS_QF_CLOSED,
				    dc->await_login);
	}
	event_free(dc->grace_ev);
	free(dc->await_login);
	free(dc->hello_user);
	free(dc);
}

/*
 * dict_busy - a transaction begun and not committed, or a counter lookup answered within
 * shutdown_commit_grace: a stop waits for the commit
 */
static bool dict_busy(const struct conn *c, void *data, void *arg)
{
	const struct dict_conn *dc = data;
	(void)c;
	(void)arg;
	return dc && (dc->ntxns > 0 || dc->await == DICT_AWAIT_GRACE);
}

/* ---- replies ----------------------------------------------------------------------- */

static void dict_reply_line(struct conn_req *r, const char *line, size_t n, unsigned flags)
{
	/* Only the reply's kind and size: a passdb reply carries a password hash, and debug
	 * logs travel further than the auth socket does. */
	conn_log(conn_req_conn(r), LOG_LEVEL_DEBUG, "reply %c (%zu bytes)",
		 n && line[0] != '\n' ? line[0] : '-', n);
	conn_req_reply(r, line, n, flags);
}

static void dict_reply_fail(struct svc_dict *svc, struct conn_req *r, const char *why,
			    unsigned flags)
{
	size_t n = dictproto_format_fail(svc->out, sizeof(svc->out), why, strlen(why));
	dict_reply_line(r, svc->out, n, flags);
}

static void dict_reply_found(struct svc_dict *svc, struct conn_req *r, const char *value,
			     size_t len)
{
	size_t n = dictproto_format_found(svc->out, sizeof(svc->out), value, len);
	if (n == 0) {
		conn_log(conn_req_conn(r), LOG_LEVEL_WARNING, "value too large (%zu bytes)", len);
		dict_reply_fail(svc, r, "value too large", 0);
		return;
	}
	dict_reply_line(r, svc->out, n, 0);
}

static void dict_reply_notfound(struct svc_dict *svc, struct conn_req *r)
{
	size_t n = dictproto_format_notfound(svc->out, sizeof(svc->out));
	dict_reply_line(r, svc->out, n, 0);
}

static void dict_reply_commit(struct svc_dict *svc, struct conn_req *r, bool async,
			      enum dictproto_commit_result res, uint32_t id, const char *why)
{
	size_t n = dictproto_format_commit(svc->out, sizeof(svc->out), async, res, id,
					   why ? why : "", why ? strlen(why) : 0);
	dict_reply_line(r, svc->out, n, 0);
}

static const char *dict_failure_text(enum lookup_status st)
{
	return st == LOOKUP_PERMFAIL ? "lookup failed, see the vmaild log" : "database unavailable";
}

/*
 * dict_reply_unanswered_flags - a lookup vmaild cannot answer: F, or "full" for a
 * counter; flags as conn_req_reply's
 */
static void dict_reply_unanswered_flags(struct svc_dict *svc, struct conn_req *r,
					enum dict_txn_role role, const char *why, unsigned flags)
{
	if (role != DICT_TXN_ROLE_MAILBOX && role != DICT_TXN_ROLE_ACCOUNT) {
		dict_reply_fail(svc, r, why, flags);
		return;
	}
	conn_log(conn_req_conn(r), LOG_LEVEL_DEBUG, "counter lookup: %s, answering full", why);
	size_t n = dictproto_format_found(svc->out, sizeof(svc->out), DICT_COUNTER_UNKNOWN,
					  strlen(DICT_COUNTER_UNKNOWN));
	dict_reply_line(r, svc->out, n, flags);
}

/* dict_reply_unanswered - a lookup vmaild cannot answer: F, or "full" for a counter */
static void dict_reply_unanswered(struct svc_dict *svc, struct conn_req *r,
				  enum dict_txn_role role, const char *why)
{
	dict_reply_unanswered_flags(svc, r, role, why, 0);
}

/* ---- lookups and iteration ---------------------------------------------------------- */

/* dict_ask_drop - the connection went first: cancel the lookup, free the ask */
static void dict_ask_drop(void *arg)
{
	struct dict_ask *a = arg;
	if (a->lr)
		lookup_cancel(a->lr);
	free(a);
}

static bool dict_is_quota(enum dict_txn_role role)
{
	return role == DICT_TXN_ROLE_MAILBOX || role == DICT_TXN_ROLE_ACCOUNT;
}

/* dict_quota_failed - about to answer F to a quota request of login (see dict_recount.h) */
static void dict_quota_failed(struct svc_dict *svc, enum dict_txn_role role,
			      enum metrics_quota_req req, enum metrics_quota_fail reason,
			      const char *login)
{
	if (dict_is_quota(role))
		dict_recount_failed(svc->recount, req, reason, login);
}

static struct dict_ask *dict_ask_new(struct svc_dict *svc, struct conn_req *r,
				     enum dict_txn_role role, const char *login)
{
	size_t n = login ? strlen(login) : 0;
	struct dict_ask *a = calloc(1, sizeof(*a) + n + 1);
	if (!a)
		return NULL;
	memcpy(a->login, login ? login : "", n);
	a->req = r;
	a->role = role;
	a->svc = svc;
	conn_req_on_drop(r, dict_ask_drop, a);
	return a;
}

/*
 * dict_refuse_denied - the database said the peer's uid may not read login's counter or
 * scripts: F.  A script refused names the uid and the user (who asked for whose rules),
 * never the script.
 */
static void dict_refuse_denied(struct svc_dict *svc, struct conn_req *r, enum dict_txn_role role,
			       const char *login)
{
	struct conn *c = conn_req_conn(r);
	if (role == DICT_TXN_ROLE_SIEVE) {
		const struct dict_conn *dc = conn_data(c);
		conn_log(c, LOG_LEVEL_NOTICE, "refused: the Sieve scripts of %.200s to uid %u, "
			 "under which that user's mail does not run", login, (unsigned)dc->uid);
	} else {
		dict_quota_failed(svc, role, METRICS_QUOTA_LOOKUP, METRICS_QF_DENIED, login);
		conn_log(c, LOG_LEVEL_NOTICE,
			 "refused: a counter of a user who does not run under the peer's uid");
	}
	dict_reply_fail(svc, r, "permission denied", 0);
}

/* dict_answer - the outcome of r's lookup, from the database or straight from the cache */
static void dict_answer(struct svc_dict *svc, struct conn_req *r, enum dict_txn_role role,
			const char *login, enum lookup_status st, const char *value, size_t len)
{
	bool quota = dict_is_quota(role);
	/* Only these roles' functions answer "denied"; a passdb or userdb value never is. */
	bool denied = st == LOOKUP_FOUND && (quota || role == DICT_TXN_ROLE_SIEVE) &&
		      strcmp(value, DICT_DENIED) == 0;
	if (quota && (st == LOOKUP_FOUND || st == LOOKUP_NOTFOUND))
		dict_recount_db_ok(svc->recount);
	else if (st == LOOKUP_TEMPFAIL || st == LOOKUP_PERMFAIL)
		dict_quota_failed(svc, role, METRICS_QUOTA_LOOKUP,
				  st == LOOKUP_TEMPFAIL ? METRICS_QF_UNAVAILABLE : METRICS_QF_ERROR,
				  login);
	/* Before the answer: a draining connection must stay open for the commit after it. */
	if (quota && (st == LOOKUP_NOTFOUND || (st == LOOKUP_FOUND && !denied)))
		dict_await_commit(conn_data(conn_req_conn(r)), login);
	switch (st) {
	case LOOKUP_FOUND:
		if (denied) {
			dict_refuse_denied(svc, r, role, login);
			return;
		}
		dict_reply_found(svc, r, value, len);
		return;
	case LOOKUP_NOTFOUND:
		/* The account root always has a total: N would make Dovecot "recount" it. */
		if (role == DICT_TXN_ROLE_ACCOUNT)
			dict_reply_found(svc, r, "0", 1);
		else
			dict_reply_notfound(svc, r);
		return;
	case LOOKUP_TEMPFAIL:
	case LOOKUP_PERMFAIL:
		dict_reply_unanswered(svc, r, role, dict_failure_text(st));
		return;
	}
	dict_reply_unanswered(svc, r, role, "internal error");
}

static void dict_lookup_done(void *arg, enum lookup_status st, const char *value, size_t len)
{
	struct dict_ask *a = arg;
	conn_req_on_drop(a->req, NULL, NULL);
	dict_answer(a->svc, a->req, a->role, a->login, st, value, len);
	free(a);
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* dict_submit - start a lookup answered by dict_lookup_done; answers r itself on failure */
static void dict_submit(struct svc_dict *svc, struct conn_req *r, enum dict_txn_role role,
			enum lookup_kind kind, const char *const *params, unsigned nparams)
{
	/*
	 * A fresh cached answer goes out at once: no ask, no lookup request, no loop turn.
	 * Only one-parameter kinds (passdb, userdb) are cached; keep it that way: the quota
	 * counters and the Sieve scripts (more parameters: the peer's uid) must come from the
	 * database every time, a script so that a changed rule applies to the next delivery.
	 */
	enum lookup_status st;
	const char *value;
	size_t vlen;
	if (nparams == 1 &&
	    lookup_cached(METRICS_PROTO_DICT, kind, params[0], strlen(params[0]), &st, &value, &vlen)) {
		dict_answer(svc, r, role, params[0], st, value, vlen);
		return;
	}
	struct dict_ask *a = dict_ask_new(svc, r, role, params[0]);
	if (!a) {
		dict_quota_failed(svc, role, METRICS_QUOTA_LOOKUP, METRICS_QF_MEMORY, params[0]);
		dict_reply_unanswered(svc, r, role, "out of memory");
		return;
	}
	a->lr = lookup_submit_as(svc->pool, METRICS_PROTO_DICT, kind, params, NULL, nparams,
				 dict_lookup_done, a);
	if (!a->lr) {
		conn_req_on_drop(r, NULL, NULL);
		free(a);
		dict_quota_failed(svc, role, METRICS_QUOTA_LOOKUP, METRICS_QF_UNQUEUED, params[0]);
		dict_reply_unanswered(svc, r, role, "lookup could not be queued");
	}
}

/* dict_counter_lookup - L priv/quota/<counter> of user, on a quota role */
static void dict_counter_lookup(struct svc_dict *svc, struct dict_conn *dc, struct conn_req *r,
				const char *user, int counter)
{
	const char *params[4];
	if (dc->commits_pending) {
		size_t n = strlen(user);
		struct dict_parked *p = malloc(sizeof(*p) + n + 1);
		if (!p) {
			dict_quota_failed(svc, dc->role, METRICS_QUOTA_LOOKUP, METRICS_QF_MEMORY, user);
			dict_reply_unanswered(svc, r, dc->role, "out of memory");
			return;
		}
		p->next = NULL;
		p->req = r;
		p->counter = counter;
		memcpy(p->user, user, n + 1);
		*dc->parked_tail = p;
		dc->parked_tail = &p->next;
		return;
	}
	params[0] = user;
	params[1] = counter == DICT_TXN_STORAGE ? "storage" : "messages";
	params[2] = dc->role == DICT_TXN_ROLE_ACCOUNT ? "account" : "mailbox";
	params[3] = dc->peer_uid;
	dict_submit(svc, r, dc->role, LOOKUP_DICT_QUOTA_GET, params, 4);
}

/*
 * dict_sieve_lookup - L of key for user on the sieve role.  The whole key goes to SQL,
 * which knows Pigeonhole's layout (name/<script>, data/<id>); other keys have no value.
 */
static void dict_sieve_lookup(struct svc_dict *svc, struct dict_conn *dc, struct conn_req *r,
			      const char *user, const char *key)
{
	if (!dict_txn_is_sieve_key(key)) {
		dict_reply_notfound(svc, r);
		return;
	}
	/* lookup_submit answers a bad key N, which would deliver without the user's rules. */
	if (!lookup_key_valid(user, strlen(user))) {
		conn_log(conn_req_conn(r), LOG_LEVEL_NOTICE,
			 "refused: a Sieve lookup without a valid username");
		dict_reply_fail(svc, r, "invalid username", 0);
		return;
	}
	const char *params[3] = { user, key, dc->peer_uid };
	dict_submit(svc, r, dc->role, LOOKUP_DICT_SIEVE_GET, params, 3);
}

/* dict_unpark - the connection's commits are done: run the lookups that waited */
static void dict_unpark(struct svc_dict *svc, struct dict_conn *dc)
{
	struct dict_parked *p = dc->parked;
	dc->parked = NULL;
	dc->parked_tail = &dc->parked;
	while (p) {
		struct dict_parked *next = p->next;
		dict_counter_lookup(svc, dc, p->req, p->user, p->counter);
		free(p);
		p = next;
	}
}

static void dict_lookup(struct svc_dict *svc, struct dict_conn *dc, struct conn_req *r,
			const struct dict_cmd *cmd)
{
	const char *key = cmd->u.lookup.key;
	const char *user = cmd->u.lookup.username[0] ? cmd->u.lookup.username
						     : (dc->hello_user ? dc->hello_user : "");
	const char *params[1];

	if (dc->role == DICT_TXN_ROLE_AUTH) {
		enum lookup_kind kind;
		if (has_prefix(key, KEY_PASSDB)) {
			kind = LOOKUP_PASSDB;
			params[0] = key + strlen(KEY_PASSDB);
		} else if (has_prefix(key, KEY_USERDB)) {
			kind = LOOKUP_USERDB;
			params[0] = key + strlen(KEY_USERDB);
		} else {
			dict_reply_notfound(svc, r);
			return;
		}
		dict_submit(svc, r, dc->role, kind, params, 1);
		return;
	}
	if (dc->role == DICT_TXN_ROLE_SIEVE) {
		dict_sieve_lookup(svc, dc, r, user, key);
		return;
	}
	int counter = dict_txn_counter_of_key(key);
	if (counter < 0) {
		dict_reply_notfound(svc, r);
		return;
	}
	dict_counter_lookup(svc, dc, r, user, counter);
}

static void dict_iterate_done(void *arg, enum lookup_status st, const struct lookup_rows *rows)
{
	struct dict_ask a = *(struct dict_ask *)arg;
	free(arg);
	conn_req_on_drop(a.req, NULL, NULL);
	struct svc_dict *svc = a.svc;
	if (st != LOOKUP_FOUND && st != LOOKUP_NOTFOUND) {
		dict_reply_fail(svc, a.req, dict_failure_text(st), 0);
		return;
	}
	struct evbuffer *buf = evbuffer_new();
	if (!buf) {
		dict_reply_fail(svc, a.req, "out of memory", 0);
		return;
	}
	char key[LOOKUP_KEY_MAX + sizeof(KEY_USERDB)];
	size_t n = lookup_rows_count(rows);
	if (a.max_rows && n > a.max_rows)
		n = (size_t)a.max_rows;
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		size_t len;
		const char *login = lookup_rows_value(rows, i, &len);
		if (!login || len > LOOKUP_KEY_MAX)
			continue;
		int klen = snprintf(key, sizeof(key), "%s%s", KEY_USERDB, login);
		size_t m = dictproto_format_iter_row(svc->out, sizeof(svc->out), key, (size_t)klen,
						     "", 0);
		ok = m > 0 && evbuffer_add(buf, svc->out, m) == 0;
	}
	size_t m = dictproto_format_iter_end(svc->out, sizeof(svc->out));
	ok = ok && evbuffer_add(buf, svc->out, m) == 0;
	if (!ok) {
		evbuffer_free(buf);
		dict_reply_fail(svc, a.req, "out of memory", 0);
		return;
	}
	size_t total = evbuffer_get_length(buf);
	conn_log(conn_req_conn(a.req), LOG_LEVEL_DEBUG, "iteration: %zu rows", n);
	conn_req_reply(a.req, evbuffer_pullup(buf, -1), total, 0);
	evbuffer_free(buf);
}

static void dict_iterate(struct svc_dict *svc, struct dict_conn *dc, struct conn_req *r,
			 const struct dict_cmd *cmd)
{
	/* Only the userdb can be listed; anything else is an empty listing. */
	const char *path = cmd->u.iterate.path;
	if (dc->role != DICT_TXN_ROLE_AUTH || !has_prefix(KEY_USERDB, path) ||
	    strlen(path) < strlen("shared/userdb")) {
		size_t n = dictproto_format_iter_end(svc->out, sizeof(svc->out));
		dict_reply_line(r, svc->out, n, 0);
		return;
	}
	struct dict_ask *a = dict_ask_new(svc, r, dc->role, NULL);
	if (!a) {
		dict_reply_fail(svc, r, "out of memory", 0);
		return;
	}
	a->max_rows = cmd->u.iterate.max_rows;
	a->lr = lookup_submit_rows(svc->pool, LOOKUP_USERDB_LIST, NULL, NULL, 0, dict_iterate_done,
				   a);
	if (!a->lr) {
		conn_req_on_drop(r, NULL, NULL);
		free(a);
		dict_reply_fail(svc, r, "lookup could not be queued", 0);
	}
}

/* ---- commits --------------------------------------------------------------------- */

/*
 * dict_commit_drop - the connection went first: the write still happens, unanswered.
 * Whether it lands is unknown to Dovecot, which reports the quota desynced: listed.
 * cm->dc may be gone already (conn's on_close): only mailbox roots queue commits.
 */
static void dict_commit_drop(void *arg)
{
	struct dict_commit *cm = arg;
	dict_recount_failed(cm->svc->recount, METRICS_QUOTA_COMMIT, METRICS_QF_CLOSED,
			    cm->txn->username);
	dict_batch_cancel(cm->br);
	dict_commit_free(cm);
}

/* dict_range_counter - the counter a *_RANGE result is about */
static enum dict_txn_counter dict_range_counter(enum dict_batch_result res)
{
	return res == DICT_BATCH_STORAGE_RANGE ? DICT_TXN_STORAGE : DICT_TXN_MESSAGES;
}

/* dict_commit_fail_reason - the metrics reason of a batch result answered F */
static enum metrics_quota_fail dict_commit_fail_reason(enum dict_batch_result res)
{
	switch (res) {
	case DICT_BATCH_DENIED:
		return METRICS_QF_DENIED;
	case DICT_BATCH_STORAGE_RANGE:
	case DICT_BATCH_MESSAGES_RANGE:
		return METRICS_QF_RANGE;
	case DICT_BATCH_PERMFAIL:
		return METRICS_QF_ERROR;
	case DICT_BATCH_UNQUEUED:
		return METRICS_QF_UNQUEUED;
	case DICT_BATCH_APPLIED:
	case DICT_BATCH_NO_COUNTER:
	case DICT_BATCH_TEMPFAIL:
	case DICT_BATCH_RESULT__COUNT:
		break;
	}
	return METRICS_QF_UNAVAILABLE;
}

/* dict_commit_done - the batch of cm returned: its reply */
static void dict_commit_done(void *arg, enum dict_batch_result res)
{
	struct dict_commit *cm = arg;
	struct svc_dict *svc = cm->svc;
	struct conn_req *r = cm->req;
	struct dict_conn *dc = cm->dc;
	conn_req_on_drop(r, NULL, NULL);
	/* Before the reply, which could close the connection: the lookups only start here. */
	if (--dc->commits_pending == 0 && dc->parked)
		dict_unpark(svc, dc);
	if (res == DICT_BATCH_APPLIED || res == DICT_BATCH_NO_COUNTER)
		dict_recount_db_ok(svc->recount);
	else
		dict_quota_failed(svc, dc->role, METRICS_QUOTA_COMMIT, dict_commit_fail_reason(res),
				  cm->txn->username);
	switch (res) {
	case DICT_BATCH_APPLIED:
		dict_reply_commit(svc, r, cm->async, DICTPROTO_COMMIT_OK, cm->id, NULL);
		break;
	case DICT_BATCH_NO_COUNTER:
		dict_reply_commit(svc, r, cm->async, DICTPROTO_COMMIT_NOTFOUND, cm->id, NULL);
		break;
	case DICT_BATCH_DENIED:
		conn_log(conn_req_conn(r), LOG_LEVEL_NOTICE,
			 "refused: counters of %s, who does not run under the peer's uid",
			 cm->txn->username);
		dict_reply_commit(svc, r, cm->async, DICTPROTO_COMMIT_FAILED, cm->id,
				  "permission denied");
		break;
	case DICT_BATCH_STORAGE_RANGE:
	case DICT_BATCH_MESSAGES_RANGE:
		conn_log(conn_req_conn(r), LOG_LEVEL_NOTICE, "refused: a commit for %s: %s",
			 cm->txn->username, dict_txn_result_error(dict_range_counter(res)));
		dict_reply_commit(svc, r, cm->async, DICTPROTO_COMMIT_FAILED, cm->id,
				  dict_txn_result_error(dict_range_counter(res)));
		break;
	case DICT_BATCH_PERMFAIL:
		dict_reply_commit(svc, r, cm->async, DICTPROTO_COMMIT_FAILED, cm->id,
				  "commit failed, see the vmaild log");
		break;
	case DICT_BATCH_UNQUEUED:
		dict_reply_commit(svc, r, cm->async, DICTPROTO_COMMIT_FAILED, cm->id,
				  "commit could not be queued");
		break;
	case DICT_BATCH_TEMPFAIL:
	case DICT_BATCH_RESULT__COUNT:
		dict_reply_commit(svc, r, cm->async, DICTPROTO_COMMIT_FAILED, cm->id,
				  "database unavailable");
		break;
	}
	dict_commit_free(cm);
}

/* dict_commit_queue - hand t to the batch queue; false when out of memory (t not taken) */
static bool dict_commit_queue(struct svc_dict *svc, struct dict_conn *dc, struct conn_req *r,
			      struct dict_txn *t, bool async)
{
	struct dict_commit *cm = calloc(1, sizeof(*cm));
	if (!cm)
		return false;
	struct dict_batch_write w = {
		.login = t->username,
		.peer_uid = dc->trusted ? -1L : (long)dc->uid,
	};
	for (int k = 0; k < DICT_TXN_COUNTER__COUNT; k++) {
		w.op[k] = t->op[k] == DICT_TXN_KEEP ? 0 : (char)t->op[k];
		w.value[k] = t->value[k];
	}
	cm->br = dict_batch_submit(svc->batch, &w, dict_commit_done, cm);
	if (!cm->br) {
		free(cm);
		return false;
	}
	cm->svc = svc;
	cm->req = r;
	cm->dc = dc;
	cm->id = t->id;
	cm->async = async;
	cm->txn = t;
	dc->commits_pending++;
	conn_req_on_drop(r, dict_commit_drop, cm);
	return true;
}

static void dict_commit(struct svc_dict *svc, struct dict_conn *dc, struct conn_req *r,
			struct dict_txn *t, bool async)
{
	enum dictproto_commit_result res = DICTPROTO_COMMIT_OK;
	enum metrics_quota_fail reason = METRICS_QF_INVALID;
	const char *why = NULL;
	switch (dc->role) {
	case DICT_TXN_ROLE_AUTH:
	case DICT_TXN_ROLE_SIEVE: /* scripts change through vmailctl and the panel only */
	case DICT_TXN_ROLE_NONE:
	case DICT_TXN_ROLE__COUNT:
		res = DICTPROTO_COMMIT_FAILED;
		why = "this dict is read-only";
		break;
	case DICT_TXN_ROLE_ACCOUNT:
		/* Usage is counted by the mailbox roots; this root only reads the total. */
		break;
	case DICT_TXN_ROLE_MAILBOX:
		if (t->error) {
			res = DICTPROTO_COMMIT_FAILED;
			why = t->error;
			reason = METRICS_QF_INVALID;
		} else if ((why = dict_txn_value_error(t)) != NULL) {
			/* Here, not in the batch: it must not reach other users' commits. */
			res = DICTPROTO_COMMIT_FAILED;
			reason = METRICS_QF_RANGE;
		} else if (t->add_to_unset) {
			res = DICTPROTO_COMMIT_NOTFOUND;
		} else if (!dict_txn_writes(t)) {
			break;
		} else if (!lookup_key_valid(t->username, strlen(t->username))) {
			res = DICTPROTO_COMMIT_FAILED;
			why = "invalid username";
			reason = METRICS_QF_INVALID;
		} else if (dict_commit_queue(svc, dc, r, t, async)) {
			return;
		} else {
			res = DICTPROTO_COMMIT_FAILED;
			why = "out of memory";
			reason = METRICS_QF_MEMORY;
		}
		break;
	}
	if (res == DICTPROTO_COMMIT_FAILED)
		dict_quota_failed(svc, dc->role, METRICS_QUOTA_COMMIT, reason, t->username);
	uint32_t id = t->id;
	dict_txn_free(t);
	dict_reply_commit(svc, r, async, res, id, why);
}

/* ---- command dispatch -------------------------------------------------------------- */

static struct dict_txn **dict_find_txn(struct dict_conn *dc, uint32_t id)
{
	for (struct dict_txn **pp = &dc->txns; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id)
			return pp;
	return NULL;
}

static bool dict_hello(struct svc_dict *svc, struct conn *c, struct dict_conn *dc,
		       const struct dict_cmd *cmd)
{
	const char *err;
	if (!dict_txn_hello_check(cmd, &err)) {
		conn_log(c, LOG_LEVEL_NOTICE, "refused: %s", err);
		conn_close(c, err);
		return false;
	}
	const char *name = cmd->u.hello.name;
	const struct dict_txn_names names = {
		.auth = svc->auth_names,
		.quota = svc->quota_names,
		.account = svc->account_names,
		.sieve = svc->sieve_names,
	};
	bool auth_listener = dc->l->kind == SVC_DICT_AUTH;
	enum dict_txn_role role = dict_txn_role_of(&names, auth_listener, name);
	if (role == DICT_TXN_ROLE_NONE) {
		conn_log(c, LOG_LEVEL_NOTICE, "refused: dict \"%s\" is not served on this listener",
			 name);
		conn_close(c, "unknown dict name");
		return false;
	}
	if (!dc->have_cred) {
		conn_log(c, LOG_LEVEL_NOTICE, "refused: no peer credentials (not a unix socket?)");
		conn_close(c, "no peer credentials");
		return false;
	}
	/* Whatever it names: a socket mode that let others in must not open passdb to them. */
	if (auth_listener && !dc->trusted) {
		conn_log(c, LOG_LEVEL_NOTICE,
			 "refused: uid %u gid %u (pid %d) may not use the auth listener (dict \"%s\")",
			 (unsigned)dc->uid, (unsigned)dc->gid, (int)dc->pid, name);
		conn_close(c, "untrusted peer on the auth dict");
		return false;
	}
	if (cmd->u.hello.user[0]) {
		dc->hello_user = strdup(cmd->u.hello.user);
		if (!dc->hello_user) {
			conn_close(c, "out of memory");
			return false;
		}
	}
	dc->role = role;
	dc->major = cmd->u.hello.major;
	dc->minor = cmd->u.hello.minor;
	conn_log(c, LOG_LEVEL_DEBUG, "hello: protocol %u.%u, dict \"%s\" (%s), peer uid %u gid %u "
		 "pid %d%s", dc->major, dc->minor, name, dict_txn_role_name(role), (unsigned)dc->uid,
		 (unsigned)dc->gid, (int)dc->pid, dc->trusted ? ", trusted" : "");
	dict_set_state(c, dc, DICT_CONN_READY);
	return true;
}

static bool dict_protocol_error(struct conn *c, const char *why)
{
	conn_log(c, LOG_LEVEL_NOTICE, "protocol error: %s", why);
	conn_close(c, why);
	return false;
}

/* dict_command - one parsed line; false if the connection was closed */
static bool dict_command(struct svc_dict *svc, struct conn *c, struct dict_conn *dc,
			 const struct dict_cmd *cmd)
{
	struct dict_txn **pp, *t;
	struct conn_req *r;

	if (dc->state == DICT_CONN_HELLO)
		return dict_hello(svc, c, dc, cmd);

	switch (cmd->type) {
	case DICT_CMD_HELLO:
		return dict_protocol_error(c, "second hello");
	case DICT_CMD_LOOKUP:
	case DICT_CMD_ITERATE:
	case DICT_CMD_COMMIT:
	case DICT_CMD_COMMIT_ASYNC:
		break;
	case DICT_CMD_BEGIN:
		if (dict_find_txn(dc, cmd->u.begin.id))
			return dict_protocol_error(c, "transaction id already open");
		if (dc->ntxns >= DICT_TXN_MAX_OPEN)
			return dict_protocol_error(c, "too many open transactions");
		t = dict_txn_new(cmd->u.begin.id, cmd->u.begin.username[0]
							  ? cmd->u.begin.username
							  : (dc->hello_user ? dc->hello_user : ""));
		if (!t) {
			conn_close(c, "out of memory");
			return false;
		}
		t->next = dc->txns;
		dc->txns = t;
		dc->ntxns++;
		dict_await_clear(dc);
		return true;
	case DICT_CMD_SET:
	case DICT_CMD_UNSET:
	case DICT_CMD_ATOMIC_INC:
	case DICT_CMD_TIMESTAMP:
	case DICT_CMD_HIDE_LOG_VALUES:
		/* The id is the first field of each; the union members all start with it. */
		pp = dict_find_txn(dc, cmd->u.txn.id);
		if (!pp)
			return dict_protocol_error(c, "unknown transaction id");
		if (!dict_txn_apply(*pp, cmd))
			return dict_protocol_error(c, "too many operations in one transaction");
		return true;
	case DICT_CMD_ROLLBACK:
		pp = dict_find_txn(dc, cmd->u.txn.id);
		if (!pp)
			return dict_protocol_error(c, "unknown transaction id");
		t = *pp;
		*pp = t->next;
		dc->ntxns--;
		dict_txn_free(t);
		return true;
	}

	/* Commands with a reply. */
	t = NULL;
	if (cmd->type == DICT_CMD_COMMIT || cmd->type == DICT_CMD_COMMIT_ASYNC) {
		pp = dict_find_txn(dc, cmd->u.txn.id);
		if (!pp)
			return dict_protocol_error(c, "unknown transaction id");
		t = *pp;
		*pp = t->next;
		dc->ntxns--;
	}
	r = conn_req_new(c);
	if (!r) {
		dict_txn_free(t);
		return false;
	}
	if (conn_is_over_limit(c)) {
		if (cmd->type == DICT_CMD_LOOKUP)
			dict_quota_failed(svc, dc->role, METRICS_QUOTA_LOOKUP, METRICS_QF_OVERLOAD,
					  cmd->u.lookup.username[0] ? cmd->u.lookup.username
								    : dc->hello_user);
		else if (t)
			dict_quota_failed(svc, dc->role, METRICS_QUOTA_COMMIT, METRICS_QF_OVERLOAD,
					  t->username);
		dict_txn_free(t);
		if (cmd->type == DICT_CMD_LOOKUP)
			/* A counter is "full" here too: F would let Dovecot store uncounted mail. */
			dict_reply_unanswered_flags(svc, r,
						    dict_txn_counter_of_key(cmd->u.lookup.key) < 0
							    ? DICT_TXN_ROLE_NONE
							    : dc->role,
						    "too many connections", CONN_REPLY_CLOSE);
		else if (cmd->type == DICT_CMD_ITERATE)
			dict_reply_fail(svc, r, "too many connections", CONN_REPLY_CLOSE);
		else {
			size_t n = dictproto_format_commit(svc->out, sizeof(svc->out),
							   cmd->type == DICT_CMD_COMMIT_ASYNC,
							   DICTPROTO_COMMIT_FAILED, cmd->u.txn.id,
							   "too many connections", 20);
			dict_reply_line(r, svc->out, n, CONN_REPLY_CLOSE);
		}
		return true;
	}
	switch (cmd->type) {
	case DICT_CMD_LOOKUP:
		conn_log(c, LOG_LEVEL_DEBUG, "lookup %.200s user %.200s", cmd->u.lookup.key,
			 cmd->u.lookup.username);
		dict_lookup(svc, dc, r, cmd);
		break;
	case DICT_CMD_ITERATE:
		conn_log(c, LOG_LEVEL_DEBUG, "iterate %.200s", cmd->u.iterate.path);
		dict_iterate(svc, dc, r, cmd);
		break;
	default:
		conn_log(c, LOG_LEVEL_DEBUG, "commit %u of %s: storage %c%lld messages %c%lld",
			 t->id, t->username, t->op[0] ? (char)t->op[0] : '.',
			 (long long)t->value[0], t->op[1] ? (char)t->op[1] : '.',
			 (long long)t->value[1]);
		dict_commit(svc, dc, r, t, cmd->type == DICT_CMD_COMMIT_ASYNC);
		break;
	}
	return true;
}

/*
 * dict_refuse_late - while draining, a lookup or iteration sent after the drain began
 * and outside a transaction or a lookup's grace is new work: refused (the connection
 * closes once its answers are out, the client asks the next vmaild), so a client that
 * keeps asking cannot hold the stop.  What finishes a transaction is always taken.
 */
static bool dict_refuse_late(struct conn *c, struct dict_conn *dc, enum dict_cmd_type type)
{
	if (conn_state(c) != CONN_DRAINING || (type != DICT_CMD_LOOKUP && type != DICT_CMD_ITERATE))
		return false;
	if (conn_drain_backlog(c) > 0 || dict_busy(c, dc, NULL))
		return false;
	conn_log(c, LOG_LEVEL_DEBUG, "draining: a new request after the drain began, refused");
	conn_finish(c);
	return true;
}

static void dict_on_read(struct conn *c, void *arg)
{
	struct dict_listener *l = arg;
	struct svc_dict *svc = l->svc;
	struct dict_conn *dc = conn_data(c);
	if (!dc) {
		dc = dict_conn_new(c, l);
		if (!dc) {
			conn_close(c, "out of memory");
			return;
		}
		conn_set_data(c, dc);
	}
	while (conn_want_requests(c)) {
		size_t avail;
		const char *buf = conn_input(c, &avail);
		if (avail == 0)
			return;
		/* A whole line of the longest allowed size, its "\r\n" and nothing more. */
		size_t look = avail < DICT_MAX_LINE + 2 ? avail : DICT_MAX_LINE + 2;
		const char *err = NULL;
		size_t used = 0;
		switch (dictproto_parse_line(buf, look, &dc->scan, &svc->cmd, &used, &err)) {
		case DICT_NEED_MORE:
			return;
		case DICT_ERROR:
			dict_protocol_error(c, err ? err : "bad line");
			return;
		case DICT_OK:
			break;
		}
		if (dict_refuse_late(c, dc, svc->cmd.type))
			return;
		/* The parsed strings live in svc->cmd, so the input can go first. */
		conn_consume(c, used);
		if (!dict_command(svc, c, dc, &svc->cmd))
			return;
	}
}
