/* panel_db: the panel's SQL — self-service functions only — run synchronously on worker threads. */
#ifndef VMAIL_PANEL_DB_H
#define VMAIL_PANEL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panel_worker.h"

enum panel_db_status {
	PANEL_DB_OK = 0,
	PANEL_DB_REFUSED,  /* a rule or an input check said no (SQLSTATE class VM): show it */
	PANEL_DB_TEMPFAIL, /* anything else: the database is down, slow or misconfigured */
};

/* The statements; each maps to one self-service function. */
enum panel_db_op {
	PANEL_DB_LOGIN_PARAMS = 0, /* (login) -> the setting to derive the hash with (value) */
	PANEL_DB_LOGIN,          /* (login, derived hash, lifetime s) -> session token or NULL (value) */
	PANEL_DB_LOGOUT,         /* (token) */
	PANEL_DB_REHASH,         /* (token, derived hash, new hash) */
	PANEL_DB_OVERVIEW,       /* (token) -> struct panel_overview */
	PANEL_DB_ALIAS_ADD,      /* (token, address, target) */
	PANEL_DB_ALIAS_SET,      /* (token, address, target) */
	PANEL_DB_ALIAS_DEL,      /* (token, address) */
	PANEL_DB_ACCOUNT_ADD,    /* (token, address, hash, quota) */
	PANEL_DB_ACCOUNT_PASSWD, /* (token, address, hash) */
	PANEL_DB_ACCOUNT_RESIZE, /* (token, address, quota) */
	PANEL_DB_ACCOUNT_DEL,    /* (token, address) */
	PANEL_DB_PASSWD,         /* (token, current password's derived hash, new hash) */
	PANEL_DB_CLIENT_SETUP,   /* (address) -> struct panel_client_setup; VM400, VM404 refused */
	PANEL_DB_CLIENT_RECORDS, /* (token) -> struct panel_client_records */
	PANEL_DB_RULES,          /* (token, address) -> struct panel_mailbox_rules */
	PANEL_DB_VACATION_SET,   /* (token, address, subject, body, start, end, days, from) */
	PANEL_DB_VACATION_OFF,   /* (token, address) */
	PANEL_DB_FORWARD_ADD,    /* (token, address, target, keep) */
	PANEL_DB_FORWARD_DEL,    /* (token, address, target) */
	PANEL_DB_OP__COUNT,
};

#define PANEL_DB_MAX_PARAMS 8 /* self_vacation_set's; a NULL parameter is SQL NULL */

/* SQLSTATEs the flow acts on: the session is unknown or expired; the current password is wrong */
#define PANEL_DB_SESSION_GONE "VM401"
#define PANEL_DB_WRONG_PASSWORD "VM412"
/* client_setup's refusals: not an e-mail address; its domain is not served here */
#define PANEL_DB_NO_ADDRESS "VM400"
#define PANEL_DB_NOT_SERVED "VM404"

struct panel_domain {
	const char *name, *kind, *state, *verify_token; /* verify_token may be NULL */
	const char *alias_of; /* a domain alias's target (set by the administrator), or NULL */
};

struct panel_alias {
	const char *address, *destinations;
	bool self_service, counts;
};

struct panel_account {
	const char *address, *state;
	uint64_t quota, usage, messages;
};

/* vmail.self_overview(login), taken apart in SQL; strings point into a result the struct owns. */
struct panel_overview {
	const char *login, *state, *primary_address, *mail_domain; /* mail_domain may be NULL */
	uint64_t disk_limit, files, mailbox, total, allocated;
	unsigned alias_limit, aliases_used, free_account_limit;
	struct panel_domain *domains;
	size_t ndomains;
	struct panel_alias *aliases;
	size_t naliases;
	struct panel_account *accounts;
	size_t naccounts;
	void *res; /* the PGresult */
};

#define PANEL_SETUP_MAX_SERVERS 6

/* One row of vmail.client_setup: copied, so the loop thread needs no PGresult. */
struct panel_setup_server {
	char service[16];  /* imaps imap pop3s pop3 submissions submission */
	char protocol[8];  /* imap pop3 smtp */
	char host[256];
	unsigned port;
	char security[16]; /* ssl starttls */
};

/*
 * vmail.client_setup(address): the servers in advertising order and what every row repeats
 * (empty strings when no service is offered at all: n is then 0).  service_name is up to 64
 * characters of UTF-8.
 */
struct panel_client_setup {
	char username[256];
	char domain[256];
	char service_name[260];
	size_t n;
	struct panel_setup_server srv[PANEL_SETUP_MAX_SERVERS];
};

#define PANEL_RECORDS_MAX 512 /* 64 domains of 8 records; a customer with more sees the first */

/* One record a domain should publish (vmail.self_client_records), as a zone file has it. */
struct panel_dns_record {
	char domain[256];
	char name[300];
	char type[8];
	char value[300];
};

struct panel_client_records {
	size_t n;
	bool truncated; /* more than PANEL_RECORDS_MAX */
	struct panel_dns_record rec[];
};

/*
 * One mailbox's out-of-office reply (vmail.self_vacation_show) and forwarding
 * (vmail.self_forward_list), taken apart in SQL; strings point into a result the struct owns.
 */
struct panel_mailbox_rules {
	const char *address;          /* the mailbox's own address */
	bool vacation_on;
	const char *subject, *body;   /* NULL until a reply was first set */
	const char *start, *end;      /* YYYY-MM-DD, or NULL: open */
	unsigned days;
	const char *from;             /* one of addresses */
	const char **addresses;       /* every address that delivers to the mailbox */
	size_t naddresses;
	const char **forwards;        /* the targets, in the order they were added */
	size_t nforwards;
	bool keep;                    /* the mailbox keeps a copy of what it forwards */
	void *res;                    /* the PGresult */
};

/*
 * One database call.  The caller fills op, params (copied strings it owns)
 * and client (the browser's address, recorded in the audit log), submits
 * with panel_db_submit, and reads the outcome in its done callback.  With
 * want_overview a refused change is followed by the overview, so the page
 * with the refusal can be drawn from one job.
 */
struct panel_db_call {
	struct panel_job job;
	enum panel_db_op op;
	const char *params[PANEL_DB_MAX_PARAMS];
	char client[64];
	bool want_overview;
	/* results */
	enum panel_db_status status;
	char sqlstate[6];
	char message[512];        /* the database's sentence for REFUSED */
	char *value;              /* LOGIN_PARAMS: the setting; LOGIN: the token (malloc'd, may be NULL) */
	bool rehashed;            /* REHASH: the row was still at the old hash */
	struct panel_overview *overview;
	struct panel_client_setup *setup; /* CLIENT_SETUP */
	struct panel_client_records *records; /* CLIENT_RECORDS */
	struct panel_mailbox_rules *rules; /* RULES */
};

struct panel_db_settings {
	const char *conninfo;
	unsigned timeout_ms; /* connect and statement deadline */
};

/* panel_db_pool_new - a worker pool whose threads each hold one connection, made on first use */
struct panel_pool *panel_db_pool_new(struct event_base *base, const struct panel_db_settings *s,
				     unsigned nthreads, unsigned max_queue);

/* panel_db_submit - set call->job.work and queue it; done is the caller's */
bool panel_db_submit(struct panel_pool *pool, struct panel_db_call *call,
		     void (*done)(struct panel_job *job));

/* panel_db_call_clear - free the results (value, overview, setup, records, rules) for reuse or release */
void panel_db_call_clear(struct panel_db_call *call);

void panel_overview_free(struct panel_overview *ov);
void panel_mailbox_rules_free(struct panel_mailbox_rules *rules);

#endif
