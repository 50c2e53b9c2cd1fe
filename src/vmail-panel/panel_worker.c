/*
 * panel_worker: the panel's blocking work — Argon2id (tens of milliseconds by
 * design) and synchronous libpq calls — runs here, never on the event loop.
 * The pattern is pgbouncer's pam.c: a bounded queue, a few threads, and a
 * hand-back to the loop thread; the wake-up is event_active on an event of
 * the loop, which libevent makes thread-safe after evthread_use_pthreads().
 * Admission control is the queue bound: a full queue is refused at once
 * rather than letting latency grow without limit.
 */
#include "panel_worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "vmail/log.h"

struct panel_pool {
	char name[16];
	struct event_base *base;
	struct event *wake;       /* activated by workers when done_head is non-empty */
	struct panel_pool_ops ops;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct panel_job *queue_head, *queue_tail; /* waiting for a thread */
	struct panel_job *done_head, *done_tail;   /* waiting for the loop */
	unsigned queued, max_queue;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
};

static void push(struct panel_job **head, struct panel_job **tail, struct panel_job *job)
{
	job->next = NULL;
	if (*tail)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

static void *worker_main(void *arg)
{
	struct panel_pool *pool = arg;
	void *ctx = pool->ops.thread_init ? pool->ops.thread_init(pool->ops.arg) : NULL;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->queue_head && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (!pool->queue_head)
			break; /* stopping and nothing left that was taken */
		struct panel_job *job = pool->queue_head;
		if (pool->stopping)
			break; /* queued jobs are cancelled by panel_pool_free */
		pool->queue_head = job->next;
		if (!pool->queue_head)
			pool->queue_tail = NULL;
		pool->queued--;
		pthread_mutex_unlock(&pool->lock);

		job->work(job, ctx);

		pthread_mutex_lock(&pool->lock);
		push(&pool->done_head, &pool->done_tail, job);
		event_active(pool->wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&pool->lock);
	if (pool->ops.thread_fini)
		pool->ops.thread_fini(ctx);
	return NULL;
}

/* deliver - on the loop: run done for every finished job, in completion order */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
	struct panel_pool *pool = arg;
	(void)fd;
	(void)what;
	pthread_mutex_lock(&pool->lock);
	struct panel_job *job = pool->done_head;
	pool->done_head = pool->done_tail = NULL;
	pthread_mutex_unlock(&pool->lock);
	while (job) {
		struct panel_job *next = job->next;
		job->done(job);
		job = next;
	}
}

struct panel_pool *panel_pool_new(struct event_base *base, const char *name, unsigned nthreads,
				  unsigned max_queue, const struct panel_pool_ops *ops)
{
	struct panel_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	snprintf(pool->name, sizeof(pool->name), "%s", name);
	pool->base = base;
	pool->max_queue = max_queue;
	if (ops)
		pool->ops = *ops;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->wake = event_new(base, -1, 0, deliver, pool);
	pool->threads = calloc(nthreads, sizeof(*pool->threads));
	if (!pool->wake || !pool->threads)
		goto fail;
	for (; pool->nthreads < nthreads; pool->nthreads++) {
		int rc = pthread_create(&pool->threads[pool->nthreads], NULL, worker_main, pool);
		if (rc != 0) {
			log_error("%s pool: cannot start a thread: %s", name, strerror(rc));
			goto fail;
		}
	}
	log_debug("%s pool: %u threads, queue of %u", name, nthreads, max_queue);
	return pool;
fail:
	panel_pool_free(pool);
	return NULL;
}

bool panel_pool_submit(struct panel_pool *pool, struct panel_job *job)
{
	bool ok;
	job->cancelled = false;
	pthread_mutex_lock(&pool->lock);
	ok = !pool->stopping && pool->queued < pool->max_queue;
	if (ok) {
		push(&pool->queue_head, &pool->queue_tail, job);
		pool->queued++;
		pthread_cond_signal(&pool->cond);
	}
	bool stopping = pool->stopping;
	pthread_mutex_unlock(&pool->lock);
	if (stopping)
		log_debug("%s pool: stopping, request refused", pool->name);
	else if (!ok)
		log_warning("%s pool: queue full (%u), request refused", pool->name, pool->max_queue);
	return ok;
}

void panel_pool_stop(struct panel_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	if (pool->stopping && !pool->threads) {
		pthread_mutex_unlock(&pool->lock);
		return; /* stopped before */
	}
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	struct panel_job *cancelled = pool->queue_head;
	pool->queue_head = pool->queue_tail = NULL;
	pool->queued = 0;
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	free(pool->threads);
	pool->threads = NULL;
	pool->nthreads = 0;
	/* done callbacks may submit again, to this pool or another: stopping refuses it */
	if (pool->wake)
		deliver(-1, 0, pool); /* what finished while we waited */
	while (cancelled) {
		struct panel_job *next = cancelled->next;
		cancelled->cancelled = true;
		cancelled->done(cancelled);
		cancelled = next;
	}
}

void panel_pool_free(struct panel_pool *pool)
{
	if (!pool)
		return;
	panel_pool_stop(pool);
	if (pool->wake)
		event_free(pool->wake);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
