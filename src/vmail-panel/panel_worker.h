/* panel_worker: bounded pools of worker threads whose results come back to the event loop. */
#ifndef VMAIL_PANEL_WORKER_H
#define VMAIL_PANEL_WORKER_H

#include <stdbool.h>

struct event_base;
struct panel_pool;

/*
 * One unit of work.  The caller embeds it in its own request object and gets
 * back there with a container_of cast.  work runs on a worker thread and may
 * only touch what the job owns; done runs on the event loop thread, exactly
 * once per submitted job.  cancelled is set when the pool is freed before
 * work ran: done then must only answer "unavailable" and release.
 */
struct panel_job {
	void (*work)(struct panel_job *job, void *thread_ctx);
	void (*done)(struct panel_job *job);
	bool cancelled;
	struct panel_job *next; /* the pool's */
};

/* Per-thread state (a database connection, say): made and dropped on the worker thread. */
struct panel_pool_ops {
	void *(*thread_init)(void *arg);
	void (*thread_fini)(void *ctx);
	void *arg;
};

/*
 * panel_pool_new - nthreads workers and a queue of at most max_queue jobs.
 * Needs evthread_use_pthreads() before the event base was made: results are
 * handed back with event_active from the worker threads.  ops may be NULL.
 */
struct panel_pool *panel_pool_new(struct event_base *base, const char *name, unsigned nthreads,
				  unsigned max_queue, const struct panel_pool_ops *ops);

/* panel_pool_submit - queue job; false (and done never runs) when the queue is full or stopped */
bool panel_pool_submit(struct panel_pool *pool, struct panel_job *job);

/*
 * panel_pool_stop - refuse new jobs from now on; jobs not yet started get done
 * with cancelled set, jobs running are waited for and get their done, then
 * the threads end.  The pool stays valid, so a done callback (of this pool or
 * another) that submits is refused cleanly.  Idempotent.  Call from the loop
 * thread, outside any done callback.
 */
void panel_pool_stop(struct panel_pool *pool);

/* panel_pool_free - panel_pool_stop, then free; stop every pool that can submit here first */
void panel_pool_free(struct panel_pool *pool);

#endif
