/*
 * lookup_kinds: the registry of lookup kinds as data only: their names, the
 * SQL statement each runs, its parameter count and result shape.  A leaf, so
 * that the cache (which parses kind names out of invalidations), the metrics
 * (which label by kind) and lookup.c itself all depend on it and not on each
 * other.  No code here runs a query.
 */
#include "lookup_kinds.h"

#include "vmail/pg.h"

static const char *const kind_names[LOOKUP__COUNT] = {
	[LOOKUP_DOMAIN] = "domain",
	[LOOKUP_ALIAS] = "alias",
	[LOOKUP_MAILBOX] = "mailbox",
	[LOOKUP_SENDER] = "sender",
	[LOOKUP_PASSDB] = "passdb",
	[LOOKUP_USERDB] = "userdb",
	[LOOKUP_USERDB_LIST] = "userdb_list",
	[LOOKUP_QUOTA_GET] = "quota_get",
	[LOOKUP_QUOTA_APPLY] = "quota_apply",
	[LOOKUP_QUOTA_SET] = "quota_set",
	[LOOKUP_QUOTA_UNSET] = "quota_unset",
	[LOOKUP_POLICY] = "policy",
	[LOOKUP_DICT_QUOTA_GET] = "dict_quota_get",
	[LOOKUP_DICT_COMMIT] = "dict_commit",
	[LOOKUP_USAGE_RECOUNT_ADD] = "usage_recount_add",
	[LOOKUP_DICT_SIEVE_GET] = "dict_sieve_get",
};

static const char *const status_names[] = {
	[LOOKUP_FOUND] = "found",
	[LOOKUP_NOTFOUND] = "notfound",
	[LOOKUP_TEMPFAIL] = "tempfail",
	[LOOKUP_PERMFAIL] = "permfail",
};

/*
 * The batch forms (see struct pg_stmt): many keys of one kind in one query,
 * rows (i, v, deferred).  The route_*_answer functions give the deferral of
 * a suspended domain as data, where the single forms raise it.
 */
#define BATCH_OF(fn) \
	"SELECT k.i, a.v, a.deferred IS NOT NULL FROM unnest($1::text[]) WITH ORDINALITY k(key, i)" \
	" CROSS JOIN LATERAL " fn "(k.key) a"
#define BATCH_VALUE_OF(fn) \
	"SELECT k.i, v, false FROM unnest($1::text[]) WITH ORDINALITY k(key, i)" \
	" CROSS JOIN LATERAL " fn "(k.key) v"

/*
 * Indexed by enum lookup_kind.  Keys always travel as parameters.  The Postfix
 * lookups and the dict passdb and userdb select from set-returning functions
 * (route_*, *_dict) so that the planner inlines them (a scalar SQL function
 * with a subquery is planned anew at each call).  Reads may
 * be resent after a lost connection (PG_STMT_RETRY); quota writes may not,
 * since the lost one may have committed.  The Sieve script of a delivery is read where
 * the other lookups are (a standby, with replication): a rule changed on the primary
 * applies from the delivery after the standby replayed it.
 */
static const struct pg_stmt statements[LOOKUP__COUNT] = {
	[LOOKUP_DOMAIN] = { "vmail_domain", "SELECT (SELECT v FROM vmail.route_domain($1) v)", 1, 1, PG_SHAPE_VALUE, PG_STMT_RETRY,
		BATCH_VALUE_OF("vmail.route_domain") },
	[LOOKUP_ALIAS] = { "vmail_alias", "SELECT (SELECT v FROM vmail.route_alias($1) v)", 1, 1, PG_SHAPE_VALUE, PG_STMT_RETRY,
		BATCH_OF("vmail.route_alias_answer") },
	[LOOKUP_MAILBOX] = { "vmail_mailbox", "SELECT (SELECT v FROM vmail.route_mailbox($1) v)", 1, 1, PG_SHAPE_VALUE, PG_STMT_RETRY,
		BATCH_OF("vmail.route_mailbox_answer") },
	[LOOKUP_SENDER] = { "vmail_sender", "SELECT (SELECT v FROM vmail.route_sender($1) v)", 1, 1, PG_SHAPE_VALUE, PG_STMT_RETRY,
		BATCH_OF("vmail.route_sender_answer") },
	[LOOKUP_PASSDB] = { "vmail_passdb", "SELECT (SELECT v FROM vmail.passdb_dict($1) v)", 1, 1, PG_SHAPE_VALUE, PG_STMT_RETRY,
		BATCH_VALUE_OF("vmail.passdb_dict") },
	[LOOKUP_USERDB] = { "vmail_userdb", "SELECT (SELECT v FROM vmail.userdb_dict($1) v)", 1, 1, PG_SHAPE_VALUE, PG_STMT_RETRY,
		BATCH_VALUE_OF("vmail.userdb_dict") },
	[LOOKUP_USERDB_LIST] = { "vmail_userdb_list", "SELECT * FROM vmail.userdb_list()", 0, 1, PG_SHAPE_ROWS, PG_STMT_RETRY, NULL },
	[LOOKUP_QUOTA_GET] = { "vmail_quota_get", "SELECT vmail.quota_get($1,$2,$3)", 3, 1, PG_SHAPE_VALUE, PG_STMT_RETRY, NULL },
	[LOOKUP_QUOTA_APPLY] = { "vmail_quota_apply", "SELECT vmail.quota_apply($1,$2::bigint,$3::bigint)::text", 3, 1, PG_SHAPE_VALUE, 0, NULL },
	[LOOKUP_QUOTA_SET] = { "vmail_quota_set", "SELECT vmail.quota_set($1,$2::bigint,$3::bigint)::text", 3, 1, PG_SHAPE_VALUE, 0, NULL },
	[LOOKUP_QUOTA_UNSET] = { "vmail_quota_unset", "SELECT vmail.quota_unset($1)::text", 1, 1, PG_SHAPE_VALUE, 0, NULL },
	[LOOKUP_POLICY] = { "vmail_policy", "SELECT vmail.policy_check($1,$2::bigint)", 2, 1, PG_SHAPE_VALUE, PG_STMT_RETRY,
		"SELECT k.i, vmail.policy_check(k.r, k.s::bigint), false"
		" FROM unnest($1::text[], $2::text[]) WITH ORDINALITY k(r, s, i)" },
	[LOOKUP_DICT_QUOTA_GET] = { "vmail_dict_quota_get", "SELECT vmail.dict_quota_get($1,$2,$3,$4::integer)", 4, 1, PG_SHAPE_VALUE, PG_STMT_RETRY | PG_STMT_PRIMARY, NULL },
	[LOOKUP_DICT_COMMIT] = { "vmail_dict_commit", "SELECT vmail.dict_commit($1::text[],$2::text[],$3::bigint[],$4::text[],$5::bigint[],$6::integer[])", 6, 1, PG_SHAPE_VALUE, PG_STMT_AFTER_COMMIT, NULL },
	[LOOKUP_USAGE_RECOUNT_ADD] = { "vmail_usage_recount_add", "SELECT vmail.usage_recount_add($1::text[],$2::text[],$3::integer[])", 3, 1, PG_SHAPE_VALUE, PG_STMT_AFTER_COMMIT, NULL },
	[LOOKUP_DICT_SIEVE_GET] = { "vmail_dict_sieve_get", "SELECT vmail.dict_sieve_get($1,$2,$3::integer)", 3, 1, PG_SHAPE_VALUE, PG_STMT_RETRY, NULL },
};

const char *lookup_kind_name(enum lookup_kind kind)
{
	return (unsigned)kind < LOOKUP__COUNT ? kind_names[kind] : "?";
}

const char *lookup_status_name(enum lookup_status st)
{
	return (unsigned)st <= LOOKUP_PERMFAIL ? status_names[st] : "?";
}

unsigned lookup_kind_nparams(enum lookup_kind kind)
{
	return (unsigned)kind < LOOKUP__COUNT ? statements[kind].nparams : 0;
}

bool lookup_kind_is_rows(enum lookup_kind kind)
{
	return (unsigned)kind < LOOKUP__COUNT && statements[kind].shape == PG_SHAPE_ROWS;
}

const struct pg_stmt *lookup_statements(void)
{
	return statements;
}
