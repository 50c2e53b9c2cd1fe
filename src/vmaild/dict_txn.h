/* dict_txn: what a dict connection means, without I/O: roles, hello checks, quota transactions. */
#ifndef VMAIL_DICT_TXN_H
#define VMAIL_DICT_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmail/dictproto.h"

/* What a connection is for, chosen by the dict name in its hello. */
enum dict_txn_role {
	DICT_TXN_ROLE_NONE = 0, /* no hello yet, or a name this listener does not serve */
	DICT_TXN_ROLE_AUTH,     /* shared/passdb/<login>, shared/userdb/<login>, iteration */
	DICT_TXN_ROLE_MAILBOX,  /* priv/quota/{storage,messages} of the mailbox: read and write */
	DICT_TXN_ROLE_ACCOUNT,  /* the same keys, answered with the shell account's total; read-only */
	DICT_TXN_ROLE_SIEVE,    /* priv/sieve/{name,data}/… of the mailbox: Pigeonhole; read-only */
	DICT_TXN_ROLE__COUNT,
};

#define DICT_TXN_MAX_OPEN    32  /* open transactions per connection (Dovecot uses one or two) */
#define DICT_TXN_MAX_OPS 256 /* operations per transaction (quota writes use at most four) */
#define DICT_TXN_MAX_USERNAME 1024

const char *dict_txn_role_name(enum dict_txn_role role);

/*
 * dict_txn_name_in_list - is name one of the names of list ("a, b c": separated by commas
 * and blanks)?  Exact, case-sensitive, as Dovecot's own dict server compares them.
 */
bool dict_txn_name_in_list(const char *list, const char *name);

/* The dict names of each role (vmaild.conf's dict_*_names), as lists for dict_txn_name_in_list. */
struct dict_txn_names {
	const char *auth;    /* dict_auth_names */
	const char *quota;   /* dict_quota_names: DICT_TXN_ROLE_MAILBOX */
	const char *account; /* dict_account_names */
	const char *sieve;   /* dict_sieve_names */
};

/*
 * dict_txn_role_of - the role the dict name of a hello gives on the auth listener
 * (auth_listener) or on the quota listener; DICT_TXN_ROLE_NONE for a name that listener
 * does not serve.  The auth listener serves the auth and sieve names, the quota listener
 * the quota, account and sieve names; a name in two lists takes the first role in that
 * order.  Sieve is on both: the mail processes that run Pigeonhole reach the quota
 * listener, root's tools (doveadm) the auth one.
 */
enum dict_txn_role dict_txn_role_of(const struct dict_txn_names *names, bool auth_listener,
				    const char *name);

/*
 * dict_txn_hello_check - the first line of a connection: an 'H' whose major is 3 (Dovecot
 * 2.3) or 4 (2.4; quota_clone) and whose dict name is not empty.  false with *err.
 */
bool dict_txn_hello_check(const struct dict_cmd *cmd, const char **err);

/*
 * dict_txn_is_sieve_key - a key of Pigeonhole's dict script storage: priv/sieve/ and
 * something after it (name/<script> gives a data id, data/<id> the script text)
 */
bool dict_txn_is_sieve_key(const char *key);

/* What a transaction does to one counter (storage or messages), as SQL gets it. */
enum dict_txn_op {
	DICT_TXN_KEEP = 0,     /* untouched */
	DICT_TXN_ADD = '+',    /* add value to an existing counter; a missing one stays missing */
	DICT_TXN_SET = '=',    /* set to value (creates the counter) */
	DICT_TXN_UNSET = 'x',  /* delete */
};

enum dict_txn_counter {
	DICT_TXN_STORAGE = 0, /* priv/quota/storage, bytes */
	DICT_TXN_MESSAGES,    /* priv/quota/messages */
	DICT_TXN_COUNTER__COUNT,
};

/*
 * The range a counter may reach through the dict, both ways: ±2^53 bytes (every count is
 * exact in a double, as Dovecot's and the panel's readers may hold it) and ±2^31 messages.
 * vmail.dict_commit (schema/R_lookup_dovecot.sql) checks the results against the same
 * numbers.  A commit outside them fails alone; negative counts inside are kept (Dovecot
 * recounts on them).
 */
#define DICT_TXN_STORAGE_BOUND  ((int64_t)1 << 53)
#define DICT_TXN_MESSAGES_BOUND ((int64_t)1 << 31)

/*
 * One open transaction, reduced as its operations arrive, so that a commit is one
 * (op, value) pair per counter whatever the client sent: "U storage, S storage 10"
 * is SET 10; "A storage 5, A storage -2" is ADD 3; "S storage 10, A storage 5" is SET 15.
 */
struct dict_txn {
	struct dict_txn *next;
	uint32_t id;
	char *username;            /* owned; from B (2.3.17+) or the hello (older clients) */
	enum dict_txn_op op[DICT_TXN_COUNTER__COUNT];
	int64_t value[DICT_TXN_COUNTER__COUNT];
	unsigned nops;             /* S/U/A seen, for DICT_TXN_MAX_OPS */
	unsigned ignored;          /* S/U/A on keys that are not quota counters */
	bool add_to_unset;         /* an A after a U of the same counter: commit answers N */
	const char *error;         /* static; set when the commit must fail (bad value, overflow) */
};

/* dict_txn_new - a transaction for B: username copied; NULL when out of memory */
struct dict_txn *dict_txn_new(uint32_t id, const char *username);
void dict_txn_free(struct dict_txn *t);

/* dict_txn_counter_of_key - DICT_TXN_STORAGE or DICT_TXN_MESSAGES for a quota key, or -1 */
int dict_txn_counter_of_key(const char *key);

/*
 * dict_txn_apply - fold one S, U or A (cmd->type) into t.  Returns false only when the
 * transaction grew past DICT_TXN_MAX_OPS (a protocol error: close the connection); a
 * bad value or an overflow marks t->error instead, so the commit answers F.
 */
bool dict_txn_apply(struct dict_txn *t, const struct dict_cmd *cmd);

/*
 * dict_txn_value_error - the reason t's commit must fail before it reaches the database
 * because a value it sets or adds lies outside its counter's bound ("priv/quota/storage:
 * value outside -2^53..2^53"); NULL when every value is inside.
 */
const char *dict_txn_value_error(const struct dict_txn *t);

/*
 * dict_txn_result_error - the reason for a commit that the database refused because counter
 * k would have ended outside its bound ("priv/quota/messages: result would be outside
 * -2^31..2^31"); "?" for no such counter.
 */
const char *dict_txn_result_error(enum dict_txn_counter k);

/* dict_txn_writes - true if committing t changes a counter */
bool dict_txn_writes(const struct dict_txn *t);

#endif
