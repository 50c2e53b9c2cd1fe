/* svc_policy: the Postfix policy delegation service on top of conn (quota at delivery, sender ownership). */
#ifndef VMAIL_SVC_POLICY_H
#define VMAIL_SVC_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "lookup.h"

struct pg_pool;

/* The policy settings of vmaild.conf; a reload changes them in place. */
struct svc_policy_opts {
	unsigned full_code; /* 452 (4.2.2, retry later) or 552 (5.2.2, bounce) */
	bool fail_open;     /* DUNNO instead of DEFER_IF_PERMIT when the database cannot answer */
	bool check_sender;  /* authenticated clients must own their MAIL FROM address */
};

/* The conn_proto argument; owned by the daemon, outlives every connection. */
struct svc_policy {
	struct pg_pool *pool;
	struct svc_policy_opts opts;
};

/*
 * The protocol for conn_new.  Wire behaviour, per request (name=value lines
 * and an empty line; reply "action=<action>" and an empty line):
 *   request other than smtpd_access_policy     close without a reply
 *   malformed or over the policy.h limits       close without a reply
 *   protocol_state other than RCPT and END-OF-MESSAGE, or no recipient
 *                                               DUNNO
 *   recipient fine, or not ours                 DUNNO
 *   a mailbox it reaches is full                452 4.2.2 (or 552 5.2.2) naming the mailbox
 *   a mailbox it reaches is suspended           450 4.2.1 naming the mailbox
 *   the recipient's domain is suspended         DEFER_IF_PERMIT naming the domain
 *   check_sender, sasl_username does not own sender
 *                                               553 5.7.1 (RCPT and MAIL only)
 *   database down or slow                       DEFER_IF_PERMIT (DUNNO with fail_open)
 *   over max_connections                        the database-down action, then close
 * The size checked is the size attribute: SIZE= at RCPT (0 when not
 * announced), the real size at END-OF-MESSAGE.
 */
extern const struct conn_proto svc_policy_proto;

/* The longest action this service formats, without "action=" and the newlines. */
#define SVC_POLICY_MAX_ACTION 512

/*
 * svc_policy_quota_action - the action for the answer to vmail.policy_check
 * (st, and the verdict text for LOOKUP_FOUND).  Writes a NUL-terminated
 * action to out (SVC_POLICY_MAX_ACTION + 1 bytes) and returns its length.
 * Texts name the mailbox only: Postfix puts "<recipient>: Recipient address
 * rejected: " in front of them.  A verdict it cannot read is a temporary
 * failure.  Pure: the table-driven tests call it directly.
 */
size_t svc_policy_quota_action(const struct svc_policy_opts *o, enum lookup_status st,
			       const char *verdict, size_t vlen, char *out);

enum svc_policy_sender_result {
	SVC_POLICY_SENDER_OWNED = 0, /* go on with the recipient check */
	SVC_POLICY_SENDER_REJECT,    /* out holds the 553 action */
	SVC_POLICY_SENDER_TEMPFAIL,  /* out holds the database-down action (DUNNO if fail_open) */
};

/*
 * svc_policy_sender_action - the verdict on "may sasl_username send as
 * sender", given the answer of the sender map (st, and for LOOKUP_FOUND the
 * comma-separated logins).  Same rule as Postfix reject_sender_login_mismatch:
 * owned when the login is listed (case-insensitive); an address with no
 * owner is not owned.  Writes the action for the non-OWNED results to out
 * (SVC_POLICY_MAX_ACTION + 1 bytes).  Pure.
 */
enum svc_policy_sender_result svc_policy_sender_action(const struct svc_policy_opts *o,
							const char *sender, size_t slen,
							const char *login, size_t llen,
							enum lookup_status st, const char *logins,
							size_t nlogins, char *out);

/* svc_policy_login_listed - login is one of the names in list (", \t" separated), ignoring case */
bool svc_policy_login_listed(const char *list, size_t len, const char *login, size_t llen);

#endif
