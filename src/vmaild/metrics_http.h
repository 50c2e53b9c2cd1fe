/* metrics_http: the metrics_listen endpoint, GET /metrics over libevent's evhttp. */
#ifndef VMAIL_METRICS_HTTP_H
#define VMAIL_METRICS_HTTP_H

#include "metrics.h"

struct event_base;
struct metrics_http;

/* Fills the daemon's part of a scrape (pool, cache, listener, connections). */
typedef void metrics_state_fn(void *arg, struct metrics_state *out);

/*
 * metrics_http_new - serve GET /metrics (text/plain; version=0.0.4) on the
 * listening socket fd, which it takes over, to at most max_connections
 * clients at a time (more are closed at accept and counted).  state is
 * called per scrape.  NULL when out of memory (fd is closed).
 */
struct metrics_http *metrics_http_new(struct event_base *base, int fd, unsigned max_connections,
				      metrics_state_fn *state, void *arg);
/* metrics_http_set_max_connections - a reload */
void metrics_http_set_max_connections(struct metrics_http *m, unsigned max_connections);
void metrics_http_free(struct metrics_http *m);

#endif
