/* ctl: the vmailctl command tree (noun -> verb -> handler) and the helpers every handler shares. */
#ifndef VMAIL_CTL_H
#define VMAIL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "vmail/log.h"
#include "vmail/pwhash.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1  /* refused by a rule, database or system error */
#define CTL_EXIT_USAGE 2 /* bad command line */
#define CTL_EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: try again later (DNS gave no answer) */

#define CTL_DEFAULT_CONFIG "/etc/vmaild/vmaild.conf"
#define CTL_MAX_OPTS 16
#define CTL_PASSWORD_MAX 1024

struct ctl;
struct ctl_args;

/* One option of a verb: "--name ARG" or, when arg is NULL, the flag "--name". */
struct ctl_opt {
	const char *name;
	const char *arg;
	const char *help;
};

/* Where a verb may run. */
enum {
	CTL_ADMIN = 1 << 0,     /* administrator mode (no --as) */
	CTL_SELF = 1 << 1,      /* self-service mode (--as LOGIN): the handler calls vmail.self_* */
	CTL_NO_SCHEMA = 1 << 2, /* runs before/without the schema (db migrate, db status) */
	CTL_NO_DB = 1 << 3,     /* needs no database connection at all (stats) */
};

typedef int (*ctl_handler)(struct ctl *ctx, const struct ctl_args *a);

struct ctl_verb {
	const char *name;
	const char *synopsis; /* positional arguments, e.g. "CUSTOMER LOGIN" */
	int min_args, max_args; /* max_args < 0: unlimited */
	unsigned modes;
	const char *help;      /* one line */
	const char *more;      /* optional longer text for --help, or NULL */
	const struct ctl_opt *opts; /* NULL-name terminated, may be NULL */
	ctl_handler run;
};

struct ctl_noun {
	const char *name;
	const char *help;
	const struct ctl_verb *verbs; /* NULL-name terminated */
	const char *default_verb;     /* run when no verb is given, or NULL */
};

/* Parsed command line of one verb. */
struct ctl_args {
	const struct ctl_noun *noun;
	const struct ctl_verb *verb;
	int argc;
	char **argv;
	const char *values[CTL_MAX_OPTS]; /* parallel to verb->opts; a given flag is "" */
};

struct ctl {
	const char *config_path;
	const char *schema_dir; /* --schema-dir, else $VMAIL_SCHEMA_DIR, else build default */
	const char *as_login;   /* self-service mode */
	char as_token[65];      /* its session (vmail.self_login): what the self_* calls take */
	char as_derived[PWHASH_MAX]; /* the login password's hash, for self_passwd's check */
	bool json;
	bool password_stdin;
	PGconn *db;
	char os_user[64];
};

/* The nouns, each defined in src/vmailctl/ctl_<noun>.c (vacation and forward in ctl_sieve.c);
 * ctl.c lists them in ctl_nouns. */
extern const struct ctl_noun ctl_noun_customer, ctl_noun_shell, ctl_noun_domain, ctl_noun_alias,
	ctl_noun_mailbox, ctl_noun_grant, ctl_noun_usage, ctl_noun_log, ctl_noun_db, ctl_noun_settings,
	ctl_noun_stats, ctl_noun_vacation, ctl_noun_forward;

/* The command tree, in help order (tests walk it). */
extern const struct ctl_noun *const ctl_nouns[];
extern const size_t ctl_nouns_count;

/* ctl_main - the whole program; returns the exit status */
int ctl_main(int argc, char **argv);

/* ctl_opt_value - value of option name ("" for a given flag), NULL when absent */
const char *ctl_opt_value(const struct ctl_args *a, const char *name);
bool ctl_flag(const struct ctl_args *a, const char *name);

/* Messages: "vmailctl: ..." on stderr, one line.  Both return the status to exit with. */
int ctl_fail(const char *fmt, ...) VMAIL_PRINTF(1, 2);
int ctl_usage_error(const struct ctl_args *a, const char *fmt, ...) VMAIL_PRINTF(2, 3);

/* ctl_parse_size - size_parse or print its error; false on error */
bool ctl_parse_size(const char *s, uint64_t *out);
/* ctl_parse_int - a non-negative decimal up to INT32_MAX, what names it in the error */
bool ctl_parse_int(const char *s, const char *what, long *out);
/* ctl_looks_like_interval - "2h", "30 min", "3 days": a span (PostgreSQL interval), not a time */
bool ctl_looks_like_interval(const char *s);

/* ctl_config_path - the configuration file: -c, else $VMAIL_CONFIG, else the default */
const char *ctl_config_path(const struct ctl *ctx);
/* ctl_connect - connect once (reads the config); prints the problem and returns NULL on failure */
PGconn *ctl_connect(struct ctl *ctx, bool check_schema);

/*
 * ctl_begin - BEGIN and, in administrator mode, set vmail.actor to "admin:<OS user>" for the
 * audit log.  ctl_exec runs one parameterised statement; on error it prints the primary
 * message, rolls back and returns NULL.  ctl_commit returns CTL_EXIT_OK or prints and fails.
 */
bool ctl_begin(struct ctl *ctx);
PGresult *ctl_exec(struct ctl *ctx, const char *sql, int n, const char *const *params);
int ctl_commit(struct ctl *ctx);
void ctl_rollback(struct ctl *ctx);

/* ctl_run - one change in one transaction (begin, statement, commit); prints done on success */
int ctl_run(struct ctl *ctx, const char *sql, int n, const char *const *params, const char *done);

/* A buffer for one table cell or ctl_escape: room for 1024 bytes escaped, \xNN each. */
#define CTL_CELL_MAX (4 * 1024 + 1)

/*
 * ctl_escape - s for the terminal: s itself when every character is one utf8_shown_char
 * accepts (well-formed UTF-8, no control characters, none of the bidi and invisible format
 * characters that could make one login look like another), else its log_escape in buf
 * (len bytes), cut to fit.
 */
const char *ctl_escape(const char *s, char *buf, size_t len);

/*
 * ctl_print_list - run a read-only query and print its rows: with --json as one JSON array
 * (built by PostgreSQL), otherwise as aligned columns with a header.  Columns named in
 * size_cols hold byte counts and are shown as "100 MiB" in the table.
 */
int ctl_print_list(struct ctl *ctx, const char *sql, int n, const char *const *params,
		   const char *const *size_cols);
/*
 * ctl_print_show - the same for exactly one row: a JSON object, or "column: value" lines.
 * Zero rows print "vmailctl: <notfound>" and fail.
 */
int ctl_print_show(struct ctl *ctx, const char *sql, int n, const char *const *params,
		   const char *const *size_cols, const char *notfound);
/*
 * ctl_print_show_text - ctl_print_show for a row with free text of several lines (a vacation
 * message): the columns named in text_cols are printed under their name, one indented line
 * each, rather than on one line with every newline escaped.  The JSON form is the same.
 */
int ctl_print_show_text(struct ctl *ctx, const char *sql, int n, const char *const *params,
			const char *const *text_cols, const char *notfound);

/*
 * ctl_read_password - one password: with --password-stdin the next line of stdin, else from
 * the terminal with echo off (asked twice when confirm is set, and they must match).
 * Never from argv.  The caller wipes buf with pwhash_wipe.
 */
bool ctl_read_password(struct ctl *ctx, const char *prompt, bool confirm, char *buf, size_t len);
/*
 * ctl_new_password_hash - the hash for a new password: --password-hash (validated) when the
 * verb has that option and it was given, else a password read as above and hashed here.
 */
bool ctl_new_password_hash(struct ctl *ctx, const struct ctl_args *a, const char *prompt,
			   char *out, size_t outlen);

/*
 * ctl_self_login - self-service: read the password of ctx->as_login, derive its hash with the
 * parameters the database gives, open a session (ctx->as_token), upgrade an old hash
 */
bool ctl_self_login(struct ctl *ctx);
/* ctl_self_logout - end the session ctl_self_login opened */
void ctl_self_logout(struct ctl *ctx);

#endif
