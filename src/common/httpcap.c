/*
 * httpcap: a connection cap for an evhttp server (metrics_listen, the panel).
 * libevent 2.1 has none.  evhttp builds each accepted connection's
 * bufferevent through our bevcb; right after that accept (an event made
 * active, so it runs before the loop polls again) the new connection is
 * found through the bufferevent's callback argument, which evhttp sets to
 * its evhttp_connection.  Under the cap it gets a close callback that counts
 * it out; over it, it is freed at once (closing the socket) and counted as
 * refused, with a warning at most every HTTPCAP_LOG_S seconds.
 */
#include "vmail/httpcap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "vmail/log.h"

#define HTTPCAP_LOG_S 10

/* An accepted connection between bevcb and adoption; its bufferevent is referenced. */
struct httpcap_pending {
	struct httpcap_pending *next;
	struct bufferevent *bev;
};

struct httpcap {
	char name[64];
	unsigned max_connections;
	unsigned connections;
	uint64_t refused;
	time_t refuse_logged;
	uint64_t refuse_quiet;
	struct event *adopt_ev;
	struct httpcap_pending *pending;
};

static void httpcap_closed(struct evhttp_connection *evcon, void *arg)
{
	struct httpcap *cap = arg;
	(void)evcon;
	cap->connections--;
}

static void httpcap_refuse(struct httpcap *cap, struct evhttp_connection *evcon)
{
	evhttp_connection_free(evcon);
	cap->refused++;
	time_t now = time(NULL);
	if (cap->refuse_logged && now - cap->refuse_logged < HTTPCAP_LOG_S) {
		cap->refuse_quiet++;
		return;
	}
	log_warning("%s: %u connections, the cap is %u: refusing more (%llu refused since the "
		    "last warning)", cap->name, cap->connections, cap->max_connections,
		    (unsigned long long)cap->refuse_quiet);
	cap->refuse_logged = now;
	cap->refuse_quiet = 0;
}

/* httpcap_adopt_cb - count or refuse each connection accepted since the last run */
static void httpcap_adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpcap *cap = arg;
	(void)fd;
	(void)what;
	while (cap->pending) {
		struct httpcap_pending *p = cap->pending;
		cap->pending = p->next;
		bufferevent_data_cb readcb = NULL;
		void *cbarg = NULL;
		bufferevent_getcb(p->bev, &readcb, NULL, NULL, &cbarg);
		/* No read callback: evhttp gave up on the connection already (and freed it). */
		if (readcb && cbarg) {
			struct evhttp_connection *evcon = cbarg;
			if (cap->connections >= cap->max_connections) {
				httpcap_refuse(cap, evcon);
			} else {
				cap->connections++;
				evhttp_connection_set_closecb(evcon, httpcap_closed, cap);
			}
		}
		bufferevent_decref(p->bev);
		free(p);
	}
}

static struct bufferevent *httpcap_bevcb(struct event_base *base, void *arg)
{
	struct httpcap *cap = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct httpcap_pending *p = bev ? calloc(1, sizeof(*p)) : NULL;
	if (!p) {
		/* evhttp makes its own bufferevent; this one connection goes uncounted */
		if (bev)
			bufferevent_free(bev);
		return NULL;
	}
	bufferevent_incref(bev);
	p->bev = bev;
	p->next = cap->pending;
	cap->pending = p;
	event_active(cap->adopt_ev, EV_TIMEOUT, 0);
	return bev;
}

struct httpcap *httpcap_new(struct evhttp *http, struct event_base *base, const char *name,
			    unsigned max_connections)
{
	struct httpcap *cap = calloc(1, sizeof(*cap));
	if (!cap)
		return NULL;
	cap->adopt_ev = event_new(base, -1, 0, httpcap_adopt_cb, cap);
	if (!cap->adopt_ev) {
		free(cap);
		return NULL;
	}
	snprintf(cap->name, sizeof(cap->name), "%s", name);
	cap->max_connections = max_connections;
	evhttp_set_bevcb(http, httpcap_bevcb, cap);
	return cap;
}

void httpcap_set_max(struct httpcap *cap, unsigned max_connections)
{
	cap->max_connections = max_connections;
}

unsigned httpcap_connections(const struct httpcap *cap)
{
	return cap->connections;
}

uint64_t httpcap_refused(const struct httpcap *cap)
{
	return cap->refused;
}

void httpcap_free(struct httpcap *cap)
{
	if (!cap)
		return;
	while (cap->pending) {
		struct httpcap_pending *p = cap->pending;
		cap->pending = p->next;
		bufferevent_decref(p->bev);
		free(p);
	}
	event_free(cap->adopt_ev);
	free(cap);
}
