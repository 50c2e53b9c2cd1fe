/*
 * svc_policy: Postfix access policy delegation over conn.  Frames requests
 * with the pure parser, decides which checks a request needs (sender
 * ownership, then the recipient's quota), runs them as lookups, and maps
 * their outcomes to actions.  Nothing here knows the quota rules: the SQL
 * function vmail.policy_check expands the recipient like the alias map and
 * answers with a verdict; this file only words it.  A database that cannot
 * answer never becomes DUNNO unless policy_fail_open says so: deferred mail
 * is retried, accepted mail for a full mailbox would bounce later.
 */
#include "svc_policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include "vmail/policy.h"
#include "vmail/utf8.h"

/* Room for "action=" + the longest action + "\n\n". */
#define POL_MAX_REPLY (SVC_POLICY_MAX_ACTION + 16)
/* Longest mailbox, sender or login echoed in a reply text. */
#define POL_MAX_ECHO 200

#define POL_TEMPFAIL_TEXT "DEFER_IF_PERMIT Temporary lookup failure, try again later"

enum pol_step {
	POL_SENDER = 0, /* waiting for the sender map */
	POL_QUOTA,      /* waiting for vmail.policy_check */
	POL_STEP__COUNT,
};

/*
 * One request in flight.  It owns copies of the attributes it needs (the
 * input buffer is drained once the request is framed) and is freed when the
 * reply is queued, or by pol_job_drop when the connection goes first.
 */
struct pol_job {
	struct conn_req *r;
	struct svc_policy *svc;
	struct lookup_req *lr; /* the lookup of the current step, until its callback */
	enum pol_step step;
	const char *state; /* protocol_state, for logs */
	const char *recipient; /* "" when there is nothing to check */
	const char *sender;
	const char *login;  /* sasl_username; "" when not checking the sender */
	size_t rlen, slen, llen;
	char size[24];      /* decimal, for the bigint parameter */
	char buf[];         /* the strings above */
};

static const char *const step_names[POL_STEP__COUNT] = {
	[POL_SENDER] = "sender",
	[POL_QUOTA] = "quota",
};

/* One reply is formatted at a time (single-threaded loop). */
static char pol_out[POL_MAX_REPLY];

static void pol_on_read(struct conn *c, void *arg);

const struct conn_proto svc_policy_proto = {
	.name = "policy",
	.on_read = pol_on_read,
	.on_close = conn_data_free, /* the scan state of the partial request */
};

/* ---- pure mapping: verdicts to actions ---- */

/*
 * echo - append untrusted text to a reply text.  Postfix refuses an action
 * that is not valid UTF-8 (smtputf8_enable), so text that is not is reduced
 * to printable ASCII; a cut never splits a UTF-8 sequence.
 */
static void echo(char *out, size_t *pos, size_t cap, const char *s, size_t n)
{
	/* Kept as is: UTF-8 without controls, no longer than a lookup key (the check's old bound). */
	bool utf8 = n <= LOOKUP_KEY_MAX && utf8_valid_text(s, n);
	size_t total = n;
	if (n > POL_MAX_ECHO)
		n = POL_MAX_ECHO;
	if (*pos + n + 1 > cap)
		n = *pos + 1 < cap ? cap - *pos - 1 : 0;
	if (utf8)
		n = utf8_cut(s, total, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[(*pos)++] = utf8 || (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	out[*pos] = '\0';
}

static void put(char *out, size_t *pos, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (*pos + n + 1 > cap)
		n = *pos + 1 < cap ? cap - *pos - 1 : 0;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
}

static size_t tempfail_action(const struct svc_policy_opts *o, char *out)
{
	const char *a = o->fail_open ? "DUNNO" : POL_TEMPFAIL_TEXT;
	size_t n = strlen(a);
	memcpy(out, a, n + 1);
	return n;
}

size_t svc_policy_quota_action(const struct svc_policy_opts *o, enum lookup_status st,
			       const char *verdict, size_t vlen, char *out)
{
	const size_t cap = SVC_POLICY_MAX_ACTION + 1;
	size_t pos = 0;

	out[0] = '\0';
	if (st == LOOKUP_NOTFOUND) {
		put(out, &pos, cap, "DUNNO");
		return pos;
	}
	if (st != LOOKUP_FOUND || !verdict)
		return tempfail_action(o, out);

	/* "full\tMAILBOX\tUSED\tLIMIT", "suspended\tMAILBOX" or "domain_suspended\tDOMAIN" */
	const char *tab = memchr(verdict, '\t', vlen);
	if (!tab)
		return tempfail_action(o, out);
	size_t klen = (size_t)(tab - verdict);
	const char *mbox = tab + 1;
	const char *end = memchr(mbox, '\t', vlen - klen - 1);
	size_t mlen = end ? (size_t)(end - mbox) : vlen - klen - 1;
	if (mlen == 0)
		return tempfail_action(o, out);

	if (klen == 4 && memcmp(verdict, "full", 4) == 0) {
		put(out, &pos, cap, o->full_code == 552 ? "552 5.2.2 Mailbox " : "452 4.2.2 Mailbox ");
		echo(out, &pos, cap, mbox, mlen);
		put(out, &pos, cap, " is full");
		return pos;
	}
	if (klen == 9 && memcmp(verdict, "suspended", 9) == 0) {
		/* R9: deferred, never bounced; the sender's server retries. */
		put(out, &pos, cap, "450 4.2.1 Mailbox ");
		echo(out, &pos, cap, mbox, mlen);
		put(out, &pos, cap, " is disabled, try again later");
		return pos;
	}
	if (klen == 16 && memcmp(verdict, "domain_suspended", 16) == 0) {
		/* Still ours, not now: the sender's server retries until the domain is back. */
		put(out, &pos, cap, "DEFER_IF_PERMIT Domain ");
		echo(out, &pos, cap, mbox, mlen);
		put(out, &pos, cap, " is disabled, try again later");
		return pos;
	}
	return tempfail_action(o, out);
}

bool svc_policy_login_listed(const char *list, size_t len, const char *login, size_t llen)
{
	static const char seps[] = ", \t\r\n";
	size_t i = 0;

	if (llen == 0)
		return false;
	while (i < len) {
		while (i < len && strchr(seps, list[i]))
			i++;
		size_t start = i;
		while (i < len && !strchr(seps, list[i]))
			i++;
		if (i - start == llen && strncasecmp(list + start, login, llen) == 0)
			return true;
	}
	return false;
}

enum svc_policy_sender_result svc_policy_sender_action(const struct svc_policy_opts *o,
							const char *sender, size_t slen,
							const char *login, size_t llen,
							enum lookup_status st, const char *logins,
							size_t nlogins, char *out)
{
	const size_t cap = SVC_POLICY_MAX_ACTION + 1;
	size_t pos = 0;

	out[0] = '\0';
	switch (st) {
	case LOOKUP_FOUND:
		if (logins && svc_policy_login_listed(logins, nlogins, login, llen))
			return SVC_POLICY_SENDER_OWNED;
		break;
	case LOOKUP_NOTFOUND:
		break;
	case LOOKUP_TEMPFAIL:
	case LOOKUP_PERMFAIL:
		tempfail_action(o, out);
		return SVC_POLICY_SENDER_TEMPFAIL;
	}
	/* The wording of Postfix's own reject_sender_login_mismatch. */
	put(out, &pos, cap, "553 5.7.1 Sender address <");
	echo(out, &pos, cap, sender, slen);
	put(out, &pos, cap, "> not owned by user ");
	echo(out, &pos, cap, login, llen);
	return SVC_POLICY_SENDER_REJECT;
}

/* ---- requests ---- */

/* pol_job_drop - the connection went first: cancel the step's lookup, free the job */
static void pol_job_drop(void *arg)
{
	struct pol_job *job = arg;
	if (job->lr)
		lookup_cancel(job->lr);
	free(job);
}

/*
 * pol_finish - queue the reply and free the job.  A rejection is worth an
 * info line (what the administrator greps for); DUNNO only at debug level.
 */
static void pol_finish(struct pol_job *job, const char *action, size_t alen, unsigned flags)
{
	struct conn_req *r = job->r;
	struct conn *c = conn_req_conn(r);
	bool dunno = alen == 5 && memcmp(action, "DUNNO", 5) == 0;

	conn_log(c, dunno ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
		 "%s from=<%.*s> login=%.*s to=<%.*s> size=%s: %.*s", job->state,
		 (int)(job->slen > 200 ? 200 : job->slen), job->sender,
		 (int)(job->llen > 200 ? 200 : job->llen), job->login,
		 (int)(job->rlen > 200 ? 200 : job->rlen), job->recipient, job->size, (int)alen,
		 action);
	size_t n = policy_format_reply(pol_out, sizeof(pol_out), action, alen);
	free(job);
	if (n == 0) {
		/* Cannot happen (texts are bounded, newlines never echoed); still answer. */
		n = policy_format_reply(pol_out, sizeof(pol_out), POL_TEMPFAIL_TEXT,
					strlen(POL_TEMPFAIL_TEXT));
	}
	conn_req_reply(r, pol_out, n, flags);
}

static void pol_finish_str(struct pol_job *job, const char *action, unsigned flags)
{
	pol_finish(job, action, strlen(action), flags);
}

static void pol_set_step(struct pol_job *job, enum pol_step step)
{
	if (job->step == step)
		return;
	conn_log(conn_req_conn(job->r), LOG_LEVEL_DEBUG, "request: %s -> %s",
		 step_names[job->step], step_names[step]);
	job->step = step;
}

static void pol_quota_done(void *arg, enum lookup_status st, const char *value, size_t len)
{
	struct pol_job *job = arg;
	char action[SVC_POLICY_MAX_ACTION + 1];

	job->lr = NULL;
	if (st == LOOKUP_FOUND)
		conn_log(conn_req_conn(job->r), LOG_LEVEL_INFO, "verdict for <%.*s>: %.*s",
			 (int)(job->rlen > 200 ? 200 : job->rlen), job->recipient,
			 (int)(len > 300 ? 300 : len), value);
	else if (st != LOOKUP_NOTFOUND)
		conn_log(conn_req_conn(job->r), LOG_LEVEL_WARNING, "quota check for <%.*s>: %s",
			 (int)(job->rlen > 200 ? 200 : job->rlen), job->recipient,
			 lookup_status_name(st));
	size_t n = svc_policy_quota_action(&job->svc->opts, st, value, len, action);
	pol_finish(job, action, n, 0);
}

/* pol_check_quota - the last step; always answers, now or later */
static void pol_check_quota(struct pol_job *job)
{
	char action[SVC_POLICY_MAX_ACTION + 1];

	if (job->rlen == 0) {
		pol_finish_str(job, "DUNNO", 0);
		return;
	}
	pol_set_step(job, POL_QUOTA);
	const char *params[2] = { job->recipient, job->size };
	size_t lens[2] = { job->rlen, strlen(job->size) };
	job->lr = lookup_submit_as(job->svc->pool, METRICS_PROTO_POLICY, LOOKUP_POLICY, params,
				   lens, 2, pol_quota_done, job);
	if (!job->lr) {
		size_t n = tempfail_action(&job->svc->opts, action);
		pol_finish(job, action, n, 0);
	}
}

static void pol_sender_done(void *arg, enum lookup_status st, const char *value, size_t len)
{
	struct pol_job *job = arg;
	char action[SVC_POLICY_MAX_ACTION + 1];

	job->lr = NULL;
	if (st == LOOKUP_TEMPFAIL || st == LOOKUP_PERMFAIL)
		conn_log(conn_req_conn(job->r), LOG_LEVEL_WARNING, "sender check for <%.*s>: %s",
			 (int)(job->slen > 200 ? 200 : job->slen), job->sender,
			 lookup_status_name(st));
	switch (svc_policy_sender_action(&job->svc->opts, job->sender, job->slen, job->login,
					 job->llen, st, value, len, action)) {
	case SVC_POLICY_SENDER_OWNED:
		pol_check_quota(job);
		return;
	case SVC_POLICY_SENDER_TEMPFAIL:
		if (job->svc->opts.fail_open) {
			pol_check_quota(job);
			return;
		}
		break;
	case SVC_POLICY_SENDER_REJECT:
		break;
	}
	pol_finish_str(job, action, 0);
}

/* attr - a request attribute, "" when absent */
static const char *attr(const struct policy_request *req, const char *name, size_t *len)
{
	const char *v = policy_request_get(req, name, len);
	return v ? v : "";
}

static bool attr_is(const struct policy_request *req, const char *name, const char *want)
{
	size_t len;
	const char *v = attr(req, name, &len);
	return len == strlen(want) && memcmp(v, want, len) == 0;
}

/* size_param - the size attribute as a bigint literal; anything unreadable counts as 0 */
static void size_param(const char *v, size_t len, char *out, size_t cap)
{
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9') {
			n = 0;
			break;
		}
		unsigned d = (unsigned)(v[i] - '0');
		n = n > ((uint64_t)INT64_MAX - d) / 10 ? (uint64_t)INT64_MAX : n * 10 + d;
	}
	snprintf(out, cap, "%llu", (unsigned long long)n);
}

/* pol_job_new - copy what the checks need out of the input buffer */
static struct pol_job *pol_job_new(struct svc_policy *svc, struct conn_req *r,
				   const struct policy_request *req, bool want_quota,
				   bool want_sender)
{
	size_t stlen, rlen, slen, llen, zlen;
	const char *st = attr(req, "protocol_state", &stlen);
	const char *rcpt = attr(req, "recipient", &rlen);
	const char *sender = attr(req, "sender", &slen);
	const char *login = attr(req, "sasl_username", &llen);
	const char *size = attr(req, "size", &zlen);

	if (!want_quota)
		rlen = 0;
	if (!want_sender)
		llen = 0;
	if (stlen > 32)
		stlen = 32;
	struct pol_job *job = malloc(sizeof(*job) + stlen + rlen + slen + llen + 4);
	if (!job)
		return NULL;
	job->r = r;
	job->svc = svc;
	job->lr = NULL;
	job->step = want_sender ? POL_SENDER : POL_QUOTA;
	char *p = job->buf;
	const struct {
		const char *src;
		size_t len;
		const char **dst;
	} copies[] = {
		{ st, stlen, &job->state },
		{ rcpt, rlen, &job->recipient },
		{ sender, slen, &job->sender },
		{ login, llen, &job->login },
	};
	for (size_t i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
		memcpy(p, copies[i].src, copies[i].len);
		p[copies[i].len] = '\0';
		*copies[i].dst = p;
		p += copies[i].len + 1;
	}
	job->rlen = rlen;
	job->slen = slen;
	job->llen = llen;
	size_param(size, zlen, job->size, sizeof(job->size));
	conn_req_on_drop(r, pol_job_drop, job);
	return job;
}

/* pol_request - one framed smtpd_access_policy request; always answers r, now or later */
static void pol_request(struct conn *c, struct conn_req *r, const struct policy_request *req,
			struct svc_policy *svc)
{
	char action[SVC_POLICY_MAX_ACTION + 1];
	size_t rlen, slen, llen;

	attr(req, "recipient", &rlen);
	attr(req, "sender", &slen);
	attr(req, "sasl_username", &llen);
	/*
	 * RCPT and END-OF-MESSAGE are where the recipient is known; at
	 * END-OF-MESSAGE with several recipients Postfix sends none and there is
	 * nothing to check.  The sender is checked where a policy in
	 * smtpd_sender_restrictions or smtpd_recipient_restrictions runs.
	 */
	bool rcpt = attr_is(req, "protocol_state", "RCPT");
	bool eom = attr_is(req, "protocol_state", "END-OF-MESSAGE");
	bool mail = attr_is(req, "protocol_state", "MAIL");
	bool want_quota = (rcpt || eom) && rlen > 0;
	bool want_sender = svc->opts.check_sender && (rcpt || mail) && slen > 0 && llen > 0;

	if (conn_is_over_limit(c)) {
		size_t n = tempfail_action(&svc->opts, action);
		size_t f = policy_format_reply(pol_out, sizeof(pol_out), action, n);
		conn_log(c, LOG_LEVEL_NOTICE, "over max_connections: answering %s and closing",
			 action);
		conn_req_reply(r, pol_out, f, CONN_REPLY_CLOSE);
		return;
	}
	struct pol_job *job = pol_job_new(svc, r, req, want_quota, want_sender);
	if (!job) {
		size_t n = tempfail_action(&svc->opts, action);
		size_t f = policy_format_reply(pol_out, sizeof(pol_out), action, n);
		conn_req_reply(r, pol_out, f, 0);
		return;
	}
	if (!want_sender) {
		pol_check_quota(job);
		return;
	}
	const char *params[1] = { job->sender };
	job->lr = lookup_submit_as(svc->pool, METRICS_PROTO_POLICY, LOOKUP_SENDER, params,
				   &job->slen, 1, pol_sender_done, job);
	if (!job->lr) {
		size_t n = tempfail_action(&svc->opts, action);
		pol_finish(job, action, n, 0);
	}
}

/* The connection's data is the scan state of its partial request, so no byte is searched twice. */
static void pol_on_read(struct conn *c, void *arg)
{
	struct policy_request req;
	struct policy_scan *scan = conn_data_zalloc(c, sizeof(*scan));

	if (!scan)
		return;
	while (conn_want_requests(c)) {
		size_t avail;
		const char *buf = conn_input(c, &avail);
		if (avail == 0)
			return;
		size_t look = avail < POLICY_MAX_REQUEST ? avail : POLICY_MAX_REQUEST;
		const char *err = NULL;
		size_t used;
		switch (policy_parse(buf, look, scan, &req, &used, &err)) {
		case POLICY_NEED_MORE:
			return;
		case POLICY_ERROR:
			/*
			 * No reply: Postfix logs the broken connection and retries on a
			 * new one.  Requests framed before the garbage are still answered.
			 */
			conn_log(c, LOG_LEVEL_NOTICE, "malformed request: %s", err);
			if (conn_pending(c))
				conn_finish(c);
			else
				conn_close(c, "malformed policy request");
			return;
		case POLICY_OK:
			break;
		}
		if (!attr_is(&req, "request", "smtpd_access_policy")) {
			size_t len;
			const char *kind = attr(&req, "request", &len);
			conn_log(c, LOG_LEVEL_NOTICE, "unknown request type \"%.*s\"",
				 (int)(len > 64 ? 64 : len), kind);
			conn_close(c, "unknown policy request type");
			return;
		}
		struct conn_req *r = conn_req_new(c);
		if (!r)
			return;
		/* pol_request copies what it needs, so the input can be consumed afterwards. */
		pol_request(c, r, &req, arg);
		conn_consume(c, used);
	}
}
