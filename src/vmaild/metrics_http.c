/*
 * metrics_http: a tiny evhttp server for Prometheus scrapes and vmailctl
 * stats.  Only GET /metrics; everything else is 404 or 405.  The page is
 * built per scrape from metrics.c's counters and the daemon's state.
 */
#include "metrics_http.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "vmail/httpcap.h"
#include "vmail/log.h"

/* A scrape that does not arrive within this many seconds is dropped. */
#define METRICS_HTTP_TIMEOUT_S 10

struct metrics_http {
	struct evhttp *http;
	struct httpcap *cap; /* metrics_max_connections */
	metrics_state_fn *state;
	void *arg;
};

static void metrics_http_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_http *m = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (!path || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
		return;
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, HTTP_BADMETHOD, "GET only");
		return;
	}
	struct metrics_state st;
	memset(&st, 0, sizeof(st));
	m->state(m->arg, &st);
	st.metrics.name = "metrics";
	st.metrics.connections = httpcap_connections(m->cap);
	st.metrics.reason[0] = "listener_limit";
	st.metrics.refused[0] = httpcap_refused(m->cap);
	struct evbuffer *body = evbuffer_new();
	if (!body) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	metrics_render(body, &st);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

struct metrics_http *metrics_http_new(struct event_base *base, int fd, unsigned max_connections,
				      metrics_state_fn *state, void *arg)
{
	struct metrics_http *m = calloc(1, sizeof(*m));
	if (!m || !(m->http = evhttp_new(base))) {
		free(m);
		close(fd);
		return NULL;
	}
	m->cap = httpcap_new(m->http, base, "metrics_listen", max_connections);
	if (!m->cap) {
		evhttp_free(m->http);
		free(m);
		close(fd);
		return NULL;
	}
	m->state = state;
	m->arg = arg;
	evhttp_set_timeout(m->http, METRICS_HTTP_TIMEOUT_S);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(m->http, metrics_http_cb, m);
	if (!evhttp_accept_socket_with_handle(m->http, fd)) {
		log_error("metrics_listen: cannot accept connections");
		evhttp_free(m->http);
		httpcap_free(m->cap);
		free(m);
		close(fd);
		return NULL;
	}
	return m;
}

void metrics_http_free(struct metrics_http *m)
{
	if (!m)
		return;
	evhttp_free(m->http);
	httpcap_free(m->cap); /* after: closing connections counts them out */
	free(m);
}

void metrics_http_set_max_connections(struct metrics_http *m, unsigned max_connections)
{
	httpcap_set_max(m->cap, max_connections);
}
