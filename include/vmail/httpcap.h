/* httpcap: a cap on the connections an evhttp server holds; over it, connections are closed at accept. */
#ifndef VMAIL_HTTPCAP_H
#define VMAIL_HTTPCAP_H

#include <stdint.h>

struct event_base;
struct evhttp;
struct httpcap;

/*
 * httpcap_new - cap http (on base) at max_connections open connections;
 * more are closed right after accept, counted and logged as name.  Sets
 * http's bevcb.  Free it only after evhttp_free(http).  NULL when out of
 * memory.
 */
struct httpcap *httpcap_new(struct evhttp *http, struct event_base *base, const char *name,
			    unsigned max_connections);
/* httpcap_set_max - a reload; connections over a lowered cap stay until they close */
void httpcap_set_max(struct httpcap *cap, unsigned max_connections);
/* httpcap_connections - open connections counted */
unsigned httpcap_connections(const struct httpcap *cap);
/* httpcap_refused - connections closed at accept for the cap, since httpcap_new */
uint64_t httpcap_refused(const struct httpcap *cap);
void httpcap_free(struct httpcap *cap);

#endif
