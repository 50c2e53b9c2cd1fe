/*
 * panel_proxy: the one decision whether X-Real-IP names the client.  The
 * throttle counts failures per client address and the audit log records it,
 * so believing the header from anyone would let any local user pick a fresh
 * address per guess.  Nothing is believed by default; an operator lists the
 * proxy's address (trusted_proxies) or, for the unix socket nginx uses, its
 * user or group (trusted_proxy_users), which the kernel vouches for.
 */
#define _GNU_SOURCE /* struct ucred */
#include "panel_proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/http.h>

#include "vmail/privdrop.h"

struct panel_proxy {
	char *addresses;          /* trusted_proxies as configured */
	struct privdrop_ids peers; /* trusted_proxy_users */
};

struct panel_proxy *panel_proxy_new(const char *addresses, const char *users, char *err,
				    size_t errlen)
{
	struct panel_proxy *px = calloc(1, sizeof(*px));
	if (!px || !(px->addresses = strdup(addresses))) {
		snprintf(err, errlen, "out of memory");
		panel_proxy_free(px);
		return NULL;
	}
	if (!privdrop_ids_parse(&px->peers, "trusted_proxy_users", users, err, errlen)) {
		panel_proxy_free(px);
		return NULL;
	}
	return px;
}

void panel_proxy_free(struct panel_proxy *px)
{
	if (!px)
		return;
	free(px->addresses);
	free(px);
}

/* listed_address - is addr one of trusted_proxies (exact text match of numeric forms)? */
static bool listed_address(const struct panel_proxy *px, const char *addr)
{
	const char *s = px->addresses;
	size_t alen = strlen(addr);
	while (*s) {
		while (*s == ' ' || *s == ',' || *s == '\t')
			s++;
		size_t len = strcspn(s, " ,\t");
		if (len && len == alen && strncmp(s, addr, len) == 0)
			return true;
		s += len;
	}
	return false;
}

/* listed_peer - is the unix-socket peer on fd a listed user or group? */
static bool listed_peer(const struct panel_proxy *px, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	       len == sizeof(cred) && privdrop_ids_match(&px->peers, cred.uid, cred.gid);
}

/* conn_fd - the connection's socket, -1 if libevent has none */
static int conn_fd(struct evhttp_connection *conn)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
	return bev ? (int)bufferevent_getfd(bev) : -1;
}

/* is_unix - is fd a unix-domain socket? */
static bool is_unix(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	       domain == AF_UNIX;
}

void panel_proxy_client(const struct panel_proxy *px, struct evhttp_request *req, char *out,
			size_t outlen)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	int fd = conn_fd(conn);
	bool trusted;
	if (is_unix(fd)) {
		snprintf(out, outlen, "local");
		trusted = listed_peer(px, fd);
	} else {
		char *peer = NULL;
		ev_uint16_t port = 0;
		evhttp_connection_get_peer(conn, &peer, &port);
		snprintf(out, outlen, "%s", peer && *peer ? peer : "unknown");
		trusted = peer && *peer && listed_address(px, peer);
	}
	if (!trusted)
		return;
	const char *real = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Real-IP");
	unsigned char bin[sizeof(struct in6_addr)];
	if (real && strlen(real) < outlen &&
	    (inet_pton(AF_INET, real, bin) == 1 || inet_pton(AF_INET6, real, bin) == 1))
		snprintf(out, outlen, "%s", real);
}
