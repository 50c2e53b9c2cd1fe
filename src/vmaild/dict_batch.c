/*
 * dict_batch: the write side of the dict service in the lookup layer.  Owns
 * the queue of quota commits, cuts it into batches, encodes a batch as the
 * six PostgreSQL array literals vmail.dict_commit takes, submits it as the
 * LOOKUP_DICT_COMMIT statement and turns the answer (one letter per commit)
 * into results.  One batch is in the database at a time: that keeps commits
 * in order and lets everything that arrived meanwhile share one transaction.
 */
#include "dict_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "lookup_kinds.h"
#include "vmail/log.h"
#include "vmail/pg.h"

/* The arrays of vmail.dict_commit: login, storage op and value, messages op and value, peer. */
#define DICT_BATCH_NARRAYS 6

/* A queued commit; freed by the queue once answered, whether cancelled or not. */
struct dict_batch_req {
	struct dict_batch_req *next;
	dict_batch_cb *cb; /* NULL once cancelled */
	void *arg;
	char op[DICT_BATCH_COUNTER__COUNT];
	int64_t value[DICT_BATCH_COUNTER__COUNT];
	long peer_uid;
	char login[];
};

/* The batch in the database. */
struct batch {
	struct dict_batch *q;
	struct dict_batch_req *first;
	size_t count;
};

struct dict_batch {
	struct pg_pool *pool;
	struct event *flush_ev; /* runs a batch from the event loop */
	struct dict_batch_req *queue, **queue_tail;
	size_t nqueued;
	struct batch *inflight; /* at most one: keeps order */
};

static const char *const result_names[DICT_BATCH_RESULT__COUNT] = {
	[DICT_BATCH_APPLIED] = "applied",
	[DICT_BATCH_NO_COUNTER] = "no counter",
	[DICT_BATCH_DENIED] = "denied",
	[DICT_BATCH_STORAGE_RANGE] = "storage out of range",
	[DICT_BATCH_MESSAGES_RANGE] = "messages out of range",
	[DICT_BATCH_TEMPFAIL] = "tempfail",
	[DICT_BATCH_PERMFAIL] = "permfail",
	[DICT_BATCH_UNQUEUED] = "not queued",
};

static void batch_flush_cb(evutil_socket_t fd, short what, void *arg);

const char *dict_batch_result_name(enum dict_batch_result res)
{
	return (unsigned)res < DICT_BATCH_RESULT__COUNT ? result_names[res] : "?";
}

enum dict_batch_result dict_batch_result_of_letter(char letter)
{
	switch (letter) {
	case 'O':
		return DICT_BATCH_APPLIED;
	case 'N':
		return DICT_BATCH_NO_COUNTER;
	case 'D':
		return DICT_BATCH_DENIED;
	case 'B':
		return DICT_BATCH_STORAGE_RANGE;
	case 'M':
		return DICT_BATCH_MESSAGES_RANGE;
	default:
		return DICT_BATCH_TEMPFAIL;
	}
}

struct dict_batch *dict_batch_new(struct event_base *base, struct pg_pool *pool)
{
	struct dict_batch *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->pool = pool;
	q->queue_tail = &q->queue;
	q->flush_ev = event_new(base, -1, 0, batch_flush_cb, q);
	if (!q->flush_ev) {
		free(q);
		return NULL;
	}
	return q;
}

void dict_batch_free(struct dict_batch *q)
{
	if (!q)
		return;
	while (q->queue) {
		struct dict_batch_req *r = q->queue;
		q->queue = r->next;
		free(r);
	}
	event_free(q->flush_ev);
	free(q);
}

struct dict_batch_req *dict_batch_submit(struct dict_batch *q, const struct dict_batch_write *w,
					 dict_batch_cb *cb, void *arg)
{
	size_t n = strlen(w->login);
	struct dict_batch_req *r = malloc(sizeof(*r) + n + 1);
	if (!r)
		return NULL;
	r->next = NULL;
	r->cb = cb;
	r->arg = arg;
	memcpy(r->op, w->op, sizeof(r->op));
	memcpy(r->value, w->value, sizeof(r->value));
	r->peer_uid = w->peer_uid;
	memcpy(r->login, w->login, n + 1);
	*q->queue_tail = r;
	q->queue_tail = &r->next;
	q->nqueued++;
	if (!q->inflight)
		event_active(q->flush_ev, EV_TIMEOUT, 0);
	return r;
}

void dict_batch_cancel(struct dict_batch_req *req)
{
	req->cb = NULL;
	req->arg = NULL;
}

size_t dict_batch_quote(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	if (cap < 2)
		return 0;
	out[n++] = '"';
	for (; *s; s++) {
		bool esc = *s == '"' || *s == '\\';
		if (n + (esc ? 2 : 1) + 1 > cap) /* room for the closing quote too */
			return 0;
		if (esc)
			out[n++] = '\\';
		out[n++] = *s;
	}
	if (n + 1 > cap)
		return 0;
	out[n++] = '"';
	return n;
}

/* batch_finish - answer every commit of b (by its letter, or all with res), free b */
static void batch_finish(struct batch *b, const char *letters, enum dict_batch_result res)
{
	struct dict_batch *q = b->q;
	size_t i = 0;
	while (b->first) {
		struct dict_batch_req *r = b->first;
		b->first = r->next;
		enum dict_batch_result rr = letters ? dict_batch_result_of_letter(letters[i]) : res;
		/* A callback may close a connection and so cancel a later commit of b. */
		if (r->cb)
			r->cb(r->arg, rr);
		free(r);
		i++;
	}
	if (q->inflight == b)
		q->inflight = NULL;
	free(b);
	if (q->queue)
		event_active(q->flush_ev, EV_TIMEOUT, 0);
}

static void batch_done(void *arg, enum pg_status st, const PGresult *res)
{
	struct batch *b = arg;
	size_t len = 0;
	const char *letters = st == PG_FOUND ? pg_result_value(res, 0, 0, &len) : NULL;
	if (letters && len != b->count) {
		log_error("dict: batch of %zu commits answered with %zu results", b->count, len);
		letters = NULL;
	}
	log_debug("dict: batch of %zu commits: %s", b->count,
		  letters ? "committed" : pg_status_name(st));
	batch_finish(b, letters, st == PG_PERMFAIL ? DICT_BATCH_PERMFAIL : DICT_BATCH_TEMPFAIL);
}

/* batch_arrays_add - one commit's elements onto the array literals */
static bool batch_arrays_add(struct evbuffer *arr[DICT_BATCH_NARRAYS],
			     const struct dict_batch_req *r, bool first)
{
	char q[2 * LOOKUP_KEY_MAX + 8];
	const char *sep = first ? "" : ",";
	size_t n = dict_batch_quote(q, sizeof(q), r->login);
	if (n == 0)
		return false;
	if (evbuffer_add_printf(arr[0], "%s%.*s", sep, (int)n, q) < 0)
		return false;
	for (int k = 0; k < DICT_BATCH_COUNTER__COUNT; k++) {
		char op = r->op[k];
		if (evbuffer_add_printf(arr[1 + 2 * k], "%s\"%.*s\"", sep, op ? 1 : 0, &op) < 0 ||
		    evbuffer_add_printf(arr[2 + 2 * k], "%s%lld", sep,
					(long long)r->value[k]) < 0)
			return false;
	}
	return evbuffer_add_printf(arr[5], "%s%ld", sep, r->peer_uid) >= 0;
}

/* batch_flush - send the queued commits (up to DICT_BATCH_MAX) as one statement */
static void batch_flush(struct dict_batch *q)
{
	if (q->inflight || !q->queue)
		return;
	struct batch *b = calloc(1, sizeof(*b));
	struct evbuffer *arr[DICT_BATCH_NARRAYS] = { NULL };
	bool ok = b != NULL;
	for (int i = 0; i < DICT_BATCH_NARRAYS && ok; i++)
		ok = (arr[i] = evbuffer_new()) != NULL && evbuffer_add(arr[i], "{", 1) == 0;
	if (!b) {
		log_error("dict: out of memory; commits wait");
		goto out;
	}
	b->q = q;
	/* Take the head of the queue. */
	struct dict_batch_req **tail = &b->first;
	while (q->queue && b->count < DICT_BATCH_MAX) {
		struct dict_batch_req *r = q->queue;
		q->queue = r->next;
		r->next = NULL;
		q->nqueued--;
		ok = ok && batch_arrays_add(arr, r, b->count == 0);
		*tail = r;
		tail = &r->next;
		b->count++;
	}
	if (!q->queue)
		q->queue_tail = &q->queue;
	q->inflight = b;
	const char *params[DICT_BATCH_NARRAYS];
	size_t lens[DICT_BATCH_NARRAYS];
	for (int i = 0; i < DICT_BATCH_NARRAYS && ok; i++) {
		ok = evbuffer_add(arr[i], "}", 1) == 0;
		lens[i] = evbuffer_get_length(arr[i]);
		params[i] = (const char *)evbuffer_pullup(arr[i], -1);
		ok = ok && params[i] != NULL;
	}
	struct pg_req *pr = ok ? pg_submit(q->pool, LOOKUP_DICT_COMMIT, params, lens,
					   DICT_BATCH_NARRAYS, batch_done, b)
			       : NULL;
	if (!pr) {
		log_error("dict: a batch of %zu commits could not be queued", b->count);
		batch_finish(b, NULL, DICT_BATCH_UNQUEUED);
	}
out:
	for (int i = 0; i < DICT_BATCH_NARRAYS; i++)
		if (arr[i])
			evbuffer_free(arr[i]);
}

static void batch_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	batch_flush(arg);
}
