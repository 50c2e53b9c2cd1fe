/*
 * dict_txn: the meaning of a Dovecot dict connection, kept apart from sockets and the
 * database so that it can be unit-tested: which protocol versions we speak, which dict
 * names a listener serves and which role each gives, which keys are Sieve's, and how a
 * transaction's S/U/A operations on the two quota counters reduce to one operation per
 * counter at commit.
 */
#include "dict_txn.h"

#include <stdlib.h>
#include <string.h>

#define QUOTA_KEY_STORAGE  "priv/quota/storage"
#define QUOTA_KEY_MESSAGES "priv/quota/messages"
#define SIEVE_KEY_PREFIX   "priv/sieve/"

static const char *const role_names[DICT_TXN_ROLE__COUNT] = {
	[DICT_TXN_ROLE_NONE] = "none",
	[DICT_TXN_ROLE_AUTH] = "auth",
	[DICT_TXN_ROLE_MAILBOX] = "mailbox quota",
	[DICT_TXN_ROLE_ACCOUNT] = "account quota",
	[DICT_TXN_ROLE_SIEVE] = "sieve",
};

const char *dict_txn_role_name(enum dict_txn_role role)
{
	return (unsigned)role < DICT_TXN_ROLE__COUNT ? role_names[role] : "?";
}

static bool is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

bool dict_txn_name_in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return false;
	for (const char *p = list; *p;) {
		while (*p && is_sep(*p))
			p++;
		const char *start = p;
		while (*p && !is_sep(*p))
			p++;
		if ((size_t)(p - start) == n && memcmp(start, name, n) == 0)
			return true;
	}
	return false;
}

enum dict_txn_role dict_txn_role_of(const struct dict_txn_names *names, bool auth_listener,
				    const char *name)
{
	if (auth_listener && dict_txn_name_in_list(names->auth, name))
		return DICT_TXN_ROLE_AUTH;
	if (!auth_listener && dict_txn_name_in_list(names->quota, name))
		return DICT_TXN_ROLE_MAILBOX;
	if (!auth_listener && dict_txn_name_in_list(names->account, name))
		return DICT_TXN_ROLE_ACCOUNT;
	if (dict_txn_name_in_list(names->sieve, name))
		return DICT_TXN_ROLE_SIEVE;
	return DICT_TXN_ROLE_NONE;
}

bool dict_txn_hello_check(const struct dict_cmd *cmd, const char **err)
{
	if (cmd->type != DICT_CMD_HELLO) {
		*err = "first command is not a hello";
		return false;
	}
	/* 3 = Dovecot 2.3 (every minor: only the minor's extras differ); 4 = 2.4. */
	if (cmd->u.hello.major != 3 && cmd->u.hello.major != 4) {
		*err = "unsupported protocol major version";
		return false;
	}
	if (cmd->u.hello.name[0] == '\0') {
		*err = "no dict name in hello";
		return false;
	}
	return true;
}

struct dict_txn *dict_txn_new(uint32_t id, const char *username)
{
	struct dict_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->id = id;
	t->username = strdup(username ? username : "");
	if (!t->username) {
		free(t);
		return NULL;
	}
	return t;
}

void dict_txn_free(struct dict_txn *t)
{
	if (!t)
		return;
	free(t->username);
	free(t);
}

int dict_txn_counter_of_key(const char *key)
{
	if (strcmp(key, QUOTA_KEY_STORAGE) == 0)
		return DICT_TXN_STORAGE;
	if (strcmp(key, QUOTA_KEY_MESSAGES) == 0)
		return DICT_TXN_MESSAGES;
	return -1;
}

bool dict_txn_is_sieve_key(const char *key)
{
	size_t n = strlen(SIEVE_KEY_PREFIX);
	return strncmp(key, SIEVE_KEY_PREFIX, n) == 0 && key[n] != '\0';
}

/* parse_value - a counter value as Dovecot writes it: optional '-', then digits */
static bool parse_value(const char *s, size_t len, int64_t *out)
{
	bool neg = len > 0 && s[0] == '-';
	size_t i = neg ? 1 : 0;
	uint64_t mag = 0;
	if (i == len)
		return false;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (mag > ((uint64_t)INT64_MAX + 1 - d) / 10)
			return false;
		mag = mag * 10 + d;
	}
	if (!neg && mag > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return true;
}

static bool add_checked(int64_t *acc, int64_t d)
{
	if ((d > 0 && *acc > INT64_MAX - d) || (d < 0 && *acc < INT64_MIN - d))
		return false;
	*acc += d;
	return true;
}

bool dict_txn_apply(struct dict_txn *t, const struct dict_cmd *cmd)
{
	const char *key;
	if (++t->nops > DICT_TXN_MAX_OPS)
		return false;
	switch (cmd->type) {
	case DICT_CMD_SET:
		key = cmd->u.set.key;
		break;
	case DICT_CMD_UNSET:
		key = cmd->u.unset.key;
		break;
	case DICT_CMD_ATOMIC_INC:
		key = cmd->u.atomic_inc.key;
		break;
	default:
		return true; /* T, V: nothing for us */
	}
	int k = dict_txn_counter_of_key(key);
	if (k < 0) {
		/* Nothing else is stored; the commit still succeeds, as for a dict without the key. */
		t->ignored++;
		return true;
	}
	int64_t v;
	switch (cmd->type) {
	case DICT_CMD_SET:
		if (!parse_value(cmd->u.set.value, cmd->u.set.value_len, &v)) {
			t->error = "counter value is not a number";
			return true;
		}
		t->op[k] = DICT_TXN_SET;
		t->value[k] = v;
		break;
	case DICT_CMD_UNSET:
		t->op[k] = DICT_TXN_UNSET;
		t->value[k] = 0;
		break;
	case DICT_CMD_ATOMIC_INC:
		v = cmd->u.atomic_inc.diff;
		if (t->op[k] == DICT_TXN_UNSET) {
			/* Incrementing what this transaction deleted: a missing key is not created. */
			t->add_to_unset = true;
			break;
		}
		if (t->op[k] == DICT_TXN_KEEP) {
			t->op[k] = DICT_TXN_ADD;
			t->value[k] = 0;
		}
		if (!add_checked(&t->value[k], v))
			t->error = "counter overflow";
		break;
	default:
		break;
	}
	return true;
}

/* The reasons name the key and the bound, which is all a mail process's log can show. */
static const int64_t counter_bound[DICT_TXN_COUNTER__COUNT] = {
	[DICT_TXN_STORAGE] = DICT_TXN_STORAGE_BOUND,
	[DICT_TXN_MESSAGES] = DICT_TXN_MESSAGES_BOUND,
};
static const char *const value_errors[DICT_TXN_COUNTER__COUNT] = {
	[DICT_TXN_STORAGE] = QUOTA_KEY_STORAGE ": value outside -2^53..2^53",
	[DICT_TXN_MESSAGES] = QUOTA_KEY_MESSAGES ": value outside -2^31..2^31",
};
static const char *const result_errors[DICT_TXN_COUNTER__COUNT] = {
	[DICT_TXN_STORAGE] = QUOTA_KEY_STORAGE ": result would be outside -2^53..2^53",
	[DICT_TXN_MESSAGES] = QUOTA_KEY_MESSAGES ": result would be outside -2^31..2^31",
};

const char *dict_txn_value_error(const struct dict_txn *t)
{
	for (int k = 0; k < DICT_TXN_COUNTER__COUNT; k++) {
		if (t->op[k] != DICT_TXN_SET && t->op[k] != DICT_TXN_ADD)
			continue;
		if (t->value[k] > counter_bound[k] || t->value[k] < -counter_bound[k])
			return value_errors[k];
	}
	return NULL;
}

const char *dict_txn_result_error(enum dict_txn_counter k)
{
	return (unsigned)k < DICT_TXN_COUNTER__COUNT ? result_errors[k] : "?";
}

bool dict_txn_writes(const struct dict_txn *t)
{
	for (int k = 0; k < DICT_TXN_COUNTER__COUNT; k++)
		if (t->op[k] != DICT_TXN_KEEP)
			return true;
	return false;
}
