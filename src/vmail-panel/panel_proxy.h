/* panel_proxy: whom the panel believes when a request names its client in X-Real-IP. */
#ifndef VMAIL_PANEL_PROXY_H
#define VMAIL_PANEL_PROXY_H

#include <stdbool.h>
#include <stddef.h>

struct evhttp_request;
struct panel_proxy;

/*
 * panel_proxy_new - the trust list from trusted_proxies (numeric addresses)
 * and trusted_proxy_users (user names, uids, @group names: privdrop_ids_parse),
 * resolved now, before privileges are dropped.  NULL with the reason in err
 * for an unknown name or an over-long list.
 */
struct panel_proxy *panel_proxy_new(const char *addresses, const char *users, char *err,
				    size_t errlen);
void panel_proxy_free(struct panel_proxy *px);

/*
 * panel_proxy_client - who is asking: the TCP peer's address ("local" on a
 * unix socket), replaced by the X-Real-IP header only when the peer is a
 * listed address or, on a unix socket, a listed uid or gid (SO_PEERCRED).
 * Only a literal IP address is believed, so the result is safe in logs.
 */
void panel_proxy_client(const struct panel_proxy *px, struct evhttp_request *req, char *out,
			size_t outlen);

#endif
