/* svc_socketmap: the Postfix socketmap service on top of conn (framing, map names, replies). */
#ifndef VMAIL_SVC_SOCKETMAP_H
#define VMAIL_SVC_SOCKETMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "lookup_kinds.h"

/*
 * The protocol for conn_new; its argument is the struct pg_pool * the
 * lookups run on.  Wire behaviour, per request "<map> <key>":
 *   map domain|alias|mailbox|sender, found      OK <value>
 *   not found, or empty key                     NOTFOUND <space>
 *   database down, slow (past request_timeout)  TEMP <reason>
 *   unknown map, bad request, SQL config error  PERM <reason>
 *   value over the 100000-byte reply limit      PERM reply too large
 *   request over 10000 bytes                    PERM request too large, then close
 *   broken netstring                            close without a reply
 *   over max_connections                        TEMP too many connections, then close
 * Keys are passed as sent; the SQL functions fold case and sub-addresses.
 */
extern const struct conn_proto svc_socketmap_proto;

/* svc_socketmap_map_kind - the kind a map name reaches: domain alias mailbox sender */
bool svc_socketmap_map_kind(const char *name, size_t len, enum lookup_kind *out);

#endif
