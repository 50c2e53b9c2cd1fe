/* lookup_kinds: the lookup kinds vmaild serves, as data: names, SQL statements, parameter counts, answer statuses. */
#ifndef VMAIL_LOOKUP_KINDS_H
#define VMAIL_LOOKUP_KINDS_H

#include <stdbool.h>

struct pg_stmt;

/*
 * Named by what is looked up, not by protocol (OpenSMTPD table services);
 * which protocol name reaches which kind is each service's business.
 */
enum lookup_kind {
	LOOKUP_DOMAIN = 0,   /* key: domain            -> the domain */
	LOOKUP_ALIAS,        /* key: address           -> comma-separated destinations */
	LOOKUP_MAILBOX,      /* key: address           -> canonical mailbox address */
	LOOKUP_SENDER,       /* key: address           -> comma-separated logins */
	LOOKUP_PASSDB,       /* key: login             -> JSON for Dovecot passdb */
	LOOKUP_USERDB,       /* key: login             -> JSON for Dovecot userdb */
	LOOKUP_USERDB_LIST,  /* no parameters          -> rows of usernames (lookup_submit_rows) */
	LOOKUP_QUOTA_GET,    /* login, key, root       -> number */
	LOOKUP_QUOTA_APPLY,  /* login, d_storage, d_messages -> "true"/"false" */
	LOOKUP_QUOTA_SET,    /* login, storage, messages -> text */
	LOOKUP_QUOTA_UNSET,  /* login                  -> text */
	LOOKUP_POLICY,       /* address, size          -> policy verdict */
	LOOKUP_DICT_QUOTA_GET, /* login, key, root, peer uid -> number, or "denied" */
	LOOKUP_DICT_COMMIT,  /* arrays of a batch of transactions -> one letter each (dict_batch) */
	LOOKUP_USAGE_RECOUNT_ADD, /* arrays of logins, reasons, counts -> rows (dict_recount) */
	LOOKUP_DICT_SIEVE_GET, /* login, priv/sieve/... key, peer uid -> data id or script, or "denied" */
	LOOKUP__COUNT,
};

/*
 * FOUND carries a value.  NOTFOUND means the database positively answered
 * "no such key" (or the key is one the database could never hold).  TEMPFAIL
 * is every database or pool problem; PERMFAIL a configuration error (missing
 * schema function, wrong result shape).  Protocols map these to their wire
 * form; a database error must never turn into NOTFOUND.
 */
enum lookup_status {
	LOOKUP_FOUND = 0,
	LOOKUP_NOTFOUND,
	LOOKUP_TEMPFAIL,
	LOOKUP_PERMFAIL,
};

#define LOOKUP_KEY_MAX 1024 /* longer keys are NOTFOUND without a query */

/* lookup_kind_name - "domain", "alias", "mailbox", "sender", "passdb", "userdb", "userdb_list", "quota_get", ... */
const char *lookup_kind_name(enum lookup_kind kind);
/* lookup_status_name - "found", "notfound", "tempfail", "permfail" */
const char *lookup_status_name(enum lookup_status st);
/* lookup_kind_nparams - how many parameters lookup_submit expects for kind */
unsigned lookup_kind_nparams(enum lookup_kind kind);
/* lookup_kind_is_rows - true for kinds answered with rows (lookup_submit_rows) */
bool lookup_kind_is_rows(enum lookup_kind kind);

/*
 * lookup_statements - the statement table for pg_pool_new, LOOKUP__COUNT
 * entries indexed by enum lookup_kind:
 *   pg_pool_new(base, &cfg, lookup_statements(), LOOKUP__COUNT)
 */
const struct pg_stmt *lookup_statements(void);

#endif
