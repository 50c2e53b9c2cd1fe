/* svc_dict: the Dovecot dict service on top of conn (passdb/userdb, quota counters, quota_clone, Sieve scripts). */
#ifndef VMAIL_SVC_DICT_H
#define VMAIL_SVC_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conn.h"

struct event_base;
struct pg_pool;
struct svc_dict;

/*
 * The two kinds of listener.  Each serves only its dict names (from the hello) and
 * checks the peer's credentials (SO_PEERCRED), so they must be unix sockets:
 *   AUTH   dict_listen: passdb/userdb JSON and userdb iteration, and Sieve scripts.
 *          Only trusted peers (root and dict_trusted_users: Dovecot's auth processes,
 *          doveadm); anyone else is disconnected after the hello, whatever dict it
 *          names.  Password hashes never leave here.
 *   QUOTA  dict_quota_listen: priv/quota/storage and priv/quota/messages, and Sieve
 *          scripts (priv/sieve/...).  Reachable by every mail process (they run as the
 *          shell accounts' uids); an untrusted peer may read and write only the counters,
 *          and read only the scripts, of users whose mail runs under its own uid;
 *          anything else is answered F.
 */
enum svc_dict_listener {
	SVC_DICT_AUTH = 0,
	SVC_DICT_QUOTA,
	SVC_DICT__COUNT,
};

struct svc_dict_settings {
	const char *auth_names;    /* dict names served on AUTH listeners */
	const char *quota_names;   /* mailbox quota root and quota_clone, on QUOTA listeners */
	const char *account_names; /* the shell account's read-only root, on QUOTA listeners */
	const char *sieve_names;   /* Pigeonhole's dict script storage, on both listeners */
	const char *trusted_users; /* user names, numeric uids, @group; root is always trusted */
	const char *state_directory; /* the recount list's file (dict_recount.h); NULL or "": none */
	unsigned commit_grace_ms;  /* a stop waits this for the commit a counter lookup announces */
};

/*
 * svc_dict_new - the service state shared by every dict connection: settings,
 * trusted peers (users resolved now; unknown ones are an error) and the queue that
 * coalesces commits into batches.  NULL with a message in err.
 */
struct svc_dict *svc_dict_new(struct event_base *base, struct pg_pool *pool,
			      const struct svc_dict_settings *set, char *err, size_t errlen);

/* svc_dict_listener_arg - the proto_arg for server_add_listener(..., &svc_dict_proto, arg) */
void *svc_dict_listener_arg(struct svc_dict *svc, enum svc_dict_listener kind);

/*
 * svc_dict_free - after the server and the pool are gone (the pool answers an in-flight
 * batch while it is freed, and the batch callback needs the commit queue this frees).
 */
/* svc_dict_is_trusted - root or a dict_trusted_users peer (served everything, on every listener) */
bool svc_dict_is_trusted(const struct svc_dict *svc, uid_t uid, gid_t gid);

void svc_dict_free(struct svc_dict *svc);

/*
 * The protocol.  Wire behaviour (Dovecot 2.3 protocol 3.x, and 4.x for 2.4 quota_clone):
 *   H with another major, or a name the listener does not serve   close
 *   AUTH:  L shared/passdb/<login>   O{"user":…,"password":"{SCHEME}…"} | N (unknown, suspended)
 *          L shared/userdb/<login>   O{"user":…,"home":…,"uid":…,"quota_rule":…,"quota2_rule":…}
 *                                    | O{"tempfail":"yes"} (suspended) | N
 *          I … shared/userdb/        one row per login, then the end line
 *   QUOTA: L priv/quota/<counter>    mailbox root: O<n> | N (no counter: Dovecot recounts)
 *                                    account root: O<total>, never N
 *          B S U A C R               mailbox root: applied at C in a batch; C answers O, or N
 *                                    when an A found no counter (nothing created)
 *                                    account root: ignored, C answers O
 *   SIEVE: L priv/sieve/name/<script>  O<data id> (SHA-256 hex of the script) | N (no rules)
 *          L priv/sieve/data/<id>      O<script text> | N (no such id)
 *          L <any other key>           N;  I … end line at once;  C  F (read-only)
 *          never from or into the answer cache: each delivery reads the database
 *   a foreign user's counter or script (untrusted peer)            F permission denied
 *   the database cannot answer                                     F; a counter lookup: O<2^63-1> ("full")
 * Every quota request not served is counted (vmaild_dict_quota_failures_total); one the
 * database caused also logs the mailbox once per outage, and a commit answered F lists it
 * for a recount (dict_recount.h).
 * Replies leave in request order; lines up to DICT_MAX_LINE; at most max_pipelined
 * unanswered L/I/C, DICT_TXN_MAX_OPEN open transactions, DICT_TXN_MAX_OPS operations each.
 */
extern const struct conn_proto svc_dict_proto;

#endif
