/* dict_batch: the dict service's quota commits, coalesced into few database transactions. */
#ifndef VMAIL_DICT_BATCH_H
#define VMAIL_DICT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct pg_pool;
struct dict_batch;
struct dict_batch_req;

/*
 * Every commit submitted while a batch is in the database joins the next
 * batch (up to DICT_BATCH_MAX), which is one LOOKUP_DICT_COMMIT statement and
 * so one transaction; batches go one at a time, so commits reach the
 * database in submit order.  A commit is answered only once its batch's
 * statement returned after COMMIT (PG_STMT_AFTER_COMMIT).
 */
#define DICT_BATCH_MAX 256

/* The two quota counters, in the order vmail.dict_commit takes them. */
enum dict_batch_counter {
	DICT_BATCH_STORAGE = 0,
	DICT_BATCH_MESSAGES,
	DICT_BATCH_COUNTER__COUNT,
};

/*
 * One transaction, reduced to one operation per counter.  The caller keeps the values
 * within the dict's bounds (dict_txn.h); a result beyond them is answered B or M by the
 * statement, for that commit alone.
 */
struct dict_batch_write {
	const char *login;                        /* a valid lookup key (lookup_key_valid) */
	char op[DICT_BATCH_COUNTER__COUNT];       /* '+' add, '=' set, 'x' unset, 0 leave alone */
	int64_t value[DICT_BATCH_COUNTER__COUNT];
	long peer_uid;                            /* the peer's uid, -1 for a trusted peer */
};

/* How a commit ended (the letters are vmail.dict_commit's answer). */
enum dict_batch_result {
	DICT_BATCH_APPLIED = 0, /* 'O' */
	DICT_BATCH_NO_COUNTER,  /* 'N': an add found no counter; nothing of it was applied */
	DICT_BATCH_DENIED,      /* 'D': the login does not run under the peer's uid */
	DICT_BATCH_STORAGE_RANGE,  /* 'B': storage would leave ±2^53; nothing of it was applied */
	DICT_BATCH_MESSAGES_RANGE, /* 'M': messages would leave ±2^31; nothing of it was applied */
	DICT_BATCH_TEMPFAIL,    /* the database could not answer, or answered out of shape */
	DICT_BATCH_PERMFAIL,    /* the statement failed (schema, configuration) */
	DICT_BATCH_UNQUEUED,    /* the batch could not be queued (memory, pool full or closing) */
	DICT_BATCH_RESULT__COUNT,
};

/* dict_batch_result_name - "applied", "no counter", "denied", "tempfail", ... */
const char *dict_batch_result_name(enum dict_batch_result res);

/* dict_batch_result_of_letter - the result vmail.dict_commit's letter means; TEMPFAIL if unknown */
enum dict_batch_result dict_batch_result_of_letter(char letter);

/* dict_batch_new - the commit queue over pool; NULL when out of memory */
struct dict_batch *dict_batch_new(struct event_base *base, struct pg_pool *pool);

/*
 * dict_batch_free - drops what is queued, unanswered.  Only after the pool
 * is freed: freeing the pool answers the batch in flight, whose callback
 * needs the queue.
 */
void dict_batch_free(struct dict_batch *q);

typedef void dict_batch_cb(void *arg, enum dict_batch_result res);

/*
 * dict_batch_submit - queue one commit (w is copied).  cb runs exactly once,
 * from the event loop, never from inside dict_batch_submit, unless
 * dict_batch_cancel is called first.  NULL (cb never runs) when out of memory.
 */
struct dict_batch_req *dict_batch_submit(struct dict_batch *q, const struct dict_batch_write *w,
					 dict_batch_cb *cb, void *arg);

/*
 * dict_batch_cancel - the client went away: cb will never run, the write
 * still happens (it may already be in the database).  Must not be called
 * after cb ran.
 */
void dict_batch_cancel(struct dict_batch_req *req);

/*
 * dict_batch_quote - s as one double-quoted element of a PostgreSQL array
 * literal, with '"' and '\' escaped, into out.  Returns the bytes written
 * (no NUL), 0 if cap is too small.  Needs at most 2 * strlen(s) + 2 bytes.
 */
size_t dict_batch_quote(char *out, size_t cap, const char *s);

#endif
