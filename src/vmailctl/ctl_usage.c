/*
 * ctl_usage: "vmailctl usage set|show|list" — disk use of shell accounts against their limit
 * (R5, R6) — and "usage pending|recount": the mailboxes vmaild listed after answering F to a
 * quota request (vmail.usage_recount), recounted with doveadm quota recalc.
 */
#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmail/config.h"
#include "vmail/utf8.h"

static const char *const usage_sizes[] = { "disk_limit", "files", "mailbox", "free_mailboxes", "total",
					   "allocated", "available", "quota", "used", NULL };

static int usage_set(struct ctl *ctx, const struct ctl_args *a)
{
	uint64_t b;
	char bbuf[24], done[300];
	if (!ctl_parse_size(a->argv[1], &b))
		return CTL_EXIT_FAIL;
	snprintf(bbuf, sizeof(bbuf), "%llu", (unsigned long long)b);
	const char *p[] = { a->argv[0], bbuf };
	snprintf(done, sizeof(done), "files of %s: %s", a->argv[0], a->argv[1]);
	return ctl_run(ctx, "SELECT vmail.usage_set_files($1, $2::bigint)", 2, p, done);
}

#define STATE_COLS                                                                                 \
	"q.login, q.disk_limit, q.files, q.mailbox, q.free_mailboxes, q.total, q.allocated,"       \
	" greatest(q.disk_limit - q.total, 0) AS available"

#define MAILBOXES                                                                                  \
	"SELECT m.address, m.quota, coalesce(u.bytes, 0) AS used, coalesce(u.messages, 0) AS messages" \
	" FROM vmail.mail_account m JOIN vmail.shell_account s ON s.id = m.shell_account_id"       \
	" LEFT JOIN vmail.mailbox_usage u ON u.mail_account_id = m.id"                             \
	" WHERE s.login = lower($1) ORDER BY m.address"

static int usage_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *login = a->argc ? a->argv[0] : ctx->as_login;
	if (!login)
		return ctl_usage_error(a, "usage show needs LOGIN");
	if (ctx->as_login) {
		if (strcmp(login, ctx->as_login) != 0)
			return ctl_fail("shell account %s may see only its own usage, not %s's", ctx->as_login,
					login);
		/* The panel's view: self_overview, the one function the panel role may read with */
		const char *p[] = { ctx->as_token };
#define SELF_STATE                                                                                 \
	"SELECT o->>'login' AS login, (o->>'disk_limit')::bigint AS disk_limit,"                   \
	" (o->>'files')::bigint AS files, (o->>'mailbox')::bigint AS mailbox,"                     \
	" (o->>'total')::bigint AS total, (o->>'allocated')::bigint AS allocated,"                 \
	" greatest((o->>'disk_limit')::bigint - (o->>'total')::bigint, 0) AS available"
#define SELF_FROM " FROM (SELECT vmail.self_overview($1)::json AS o) x"
		const char *q = ctx->json ? SELF_STATE
			", (SELECT coalesce(json_agg(json_build_object('address', e->>'address',"
			" 'quota', (e->>'quota')::bigint, 'used', (e->>'usage')::bigint,"
			" 'messages', (e->>'messages')::bigint)), '[]')"
			" FROM json_array_elements(o->'accounts') e) AS mailboxes" SELF_FROM
					  : SELF_STATE SELF_FROM;
		int rc = ctl_print_show(ctx, q, 1, p, usage_sizes, "no such shell account");
		if (rc != CTL_EXIT_OK || ctx->json)
			return rc;
		putchar('\n');
		return ctl_print_list(ctx,
				      "SELECT e->>'address' AS address, (e->>'quota')::bigint AS quota,"
				      " (e->>'usage')::bigint AS used, (e->>'messages')::bigint AS messages"
				      " FROM json_array_elements(vmail.self_overview($1)::json->'accounts') e",
				      1, p, usage_sizes);
	}
	const char *p[] = { login };
	char nf[300];
	snprintf(nf, sizeof(nf), "unknown shell account \"%s\"", login);
	if (ctx->json)
		return ctl_print_show(ctx,
				      "SELECT " STATE_COLS ", (SELECT coalesce(json_agg(b), '[]') FROM (" MAILBOXES
				      ") b) AS mailboxes FROM vmail.quota_state((vmail.shell_row($1)).login) q",
				      1, p, usage_sizes, nf);
	int rc = ctl_print_show(ctx, "SELECT " STATE_COLS " FROM vmail.quota_state((vmail.shell_row($1)).login) q",
				1, p, usage_sizes, nf);
	if (rc != CTL_EXIT_OK)
		return rc;
	putchar('\n');
	return ctl_print_list(ctx, MAILBOXES, 1, p, usage_sizes);
}

static int usage_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { ctl_opt_value(a, "customer") };
	return ctl_print_list(ctx,
			      "SELECT " STATE_COLS " FROM vmail.shell_account s"
			      " JOIN vmail.customer c ON c.id = s.customer_id,"
			      " LATERAL vmail.quota_state(s.login) q"
			      " WHERE $1::text IS NULL OR c.name = lower($1) ORDER BY q.login",
			      1, p, usage_sizes);
}

static int usage_pending(struct ctl *ctx, const struct ctl_args *a)
{
	(void)a;
	return ctl_print_list(ctx,
			      "SELECT login, to_char(first_failed_at, 'YYYY-MM-DD HH24:MI:SS') AS first_failed,"
			      " to_char(last_failed_at, 'YYYY-MM-DD HH24:MI:SS') AS last_failed, reason, count,"
			      " attempts, coalesce(last_error, '') AS last_error FROM vmail.usage_recount_list()",
			      0, NULL, NULL);
}

/* The most of doveadm's output kept as the row's error. */
#define RECOUNT_ERROR_MAX 1000

/*
 * doveadm runs as root for every user: by the configured absolute path, and with this
 * environment only, so nothing of the caller's (PATH, LD_*, DOVECOT_*, secrets) reaches it.
 */
static char *const recount_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL };

/* How to run doveadm: doveadm_path, and -c from --doveadm-config or doveadm_config. */
struct recount_cmd {
	struct config cfg;
	const char *path;
	const char *conf; /* NULL: doveadm's own */
};

/* recount_cmd_load - the doveadm keys of the configuration file; false (printed) on error */
static bool recount_cmd_load(struct ctl *ctx, const struct ctl_args *a, struct recount_cmd *cmd)
{
	static const char *const wanted[] = { "doveadm_path", "doveadm_config", NULL };
	const char *path = ctl_config_path(ctx);
	char err[512];
	if (!config_load_keys(path, wanted, &cmd->cfg, err, sizeof(err)))
		return (ctl_fail("cannot read configuration: %s", err), false);
	char ebuf[CTL_CELL_MAX];
	if (cmd->cfg.doveadm_path[0] != '/') {
		ctl_fail("%s: doveadm_path must be an absolute path, not \"%s\"", path,
			 ctl_escape(cmd->cfg.doveadm_path, ebuf, sizeof(ebuf)));
		config_free(&cmd->cfg);
		return false;
	}
	cmd->path = cmd->cfg.doveadm_path;
	cmd->conf = ctl_opt_value(a, "doveadm-config");
	if (!cmd->conf && cmd->cfg.doveadm_config[0])
		cmd->conf = cmd->cfg.doveadm_config;
	return true;
}

/*
 * recount_read - collect the child's output from fd into err: the first errlen - 1 bytes,
 * then cut to RECOUNT_ERROR_MAX on a character boundary (errlen leaves room to see a
 * character crossing the cut)
 */
static void recount_read(int fd, char *err, size_t errlen)
{
	size_t used = 0;
	char buf[512];
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR)) {
		size_t take = r > 0 ? (size_t)r : 0;
		if (take > errlen - 1 - used)
			take = errlen - 1 - used;
		memcpy(err + used, buf, take);
		used += take;
	}
	used = utf8_cut(err, used, RECOUNT_ERROR_MAX);
	err[used] = '\0';
	/* One line for the table and the terminal. */
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	while (used && err[used - 1] == ' ')
		err[--used] = '\0';
}

/*
 * recount_doveadm - doveadm [-c CONF] quota recalc (-u LOGIN | -A), its stdout and stderr
 * collected (the first RECOUNT_ERROR_MAX bytes) into err; true if it exited 0.
 */
static bool recount_doveadm(const struct recount_cmd *cmd, const char *login, char *err, size_t errlen)
{
	const char *argv[8];
	int n = 0;
	argv[n++] = cmd->path;
	if (cmd->conf) {
		argv[n++] = "-c";
		argv[n++] = cmd->conf;
	}
	argv[n++] = "quota";
	argv[n++] = "recalc";
	if (strcmp(login, "*") == 0) {
		argv[n++] = "-A";
	} else {
		argv[n++] = "-u";
		argv[n++] = login;
	}
	argv[n] = NULL;
	int fds[2];
	err[0] = '\0';
	if (pipe(fds) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return false;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		execve(cmd->path, (char *const *)argv, recount_env);
		fprintf(stderr, "cannot run %s: %s", cmd->path, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	recount_read(fds[0], err, errlen);
	close(fds[0]);
	int status;
	pid_t w;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w < 0) {
		/* No exit status to judge by (e.g. started with SIGCHLD ignored: ECHILD). */
		snprintf(err, errlen, "waitpid: %s", strerror(errno));
		return false;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	if (!err[0])
		snprintf(err, errlen, "doveadm exited with status %d",
			 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return false;
}

/* recount_one - recount login (listed at since); the row goes on success, keeps the error otherwise */
static bool recount_one(struct ctl *ctx, const struct recount_cmd *cmd, const char *login,
			const char *since, bool dry)
{
	/* A login is whatever vmaild was asked about: never raw to the terminal. */
	char elogin[CTL_CELL_MAX], econf[CTL_CELL_MAX];
	const char *shown = ctl_escape(login, elogin, sizeof(elogin));
	bool every = strcmp(login, "*") == 0;
	if (dry) {
		printf("would run: %s%s%s quota recalc %s%s\n", cmd->path, cmd->conf ? " -c " : "",
		       cmd->conf ? ctl_escape(cmd->conf, econf, sizeof(econf)) : "", every ? "-A" : "-u ",
		       every ? "" : shown);
		return true;
	}
	char err[RECOUNT_ERROR_MAX + 4], eerr[4 * RECOUNT_ERROR_MAX + 1];
	bool ok = recount_doveadm(cmd, login, err, sizeof(err));
	/* Escaped for the row too: PostgreSQL refuses text that is not UTF-8. */
	const char *shown_err = ctl_escape(err, eerr, sizeof(eerr));
	const char *p[] = { login, ok ? since : shown_err };
	PGresult *r = ctl_exec(ctx, ok ? "SELECT vmail.usage_recount_done($1, $2::timestamptz)"
				       : "SELECT vmail.usage_recount_failed($1, $2)", 2, p);
	PQclear(r);
	if (ok)
		printf("recounted %s\n", every ? "every mailbox" : shown);
	else
		fprintf(stderr, "vmailctl: %s: doveadm quota recalc failed: %s; kept in the list\n", shown,
			shown_err);
	return ok && r;
}

static int usage_recount(struct ctl *ctx, const struct ctl_args *a)
{
	bool all = ctl_flag(a, "all"), dry = ctl_flag(a, "dry-run");
	if (all == (a->argc > 0))
		return ctl_usage_error(a, "usage recount needs --all or LOGIN..., not both");
	if (!dry && geteuid() != 0)
		return ctl_fail("usage recount runs doveadm for other users: run it as root");
	struct recount_cmd cmd;
	if (!recount_cmd_load(ctx, a, &cmd))
		return CTL_EXIT_FAIL;
	/* Ignored by whoever started us (inherited across exec), SIGCHLD would have the kernel
	 * reap doveadm and waitpid fail: doveadm's exit status is what decides. */
	signal(SIGCHLD, SIG_DFL);
	PGresult *r = all ? ctl_exec(ctx, "SELECT login, checked_at FROM vmail.usage_recount_list()", 0, NULL)
			  : ctl_exec(ctx, "SELECT now()", 0, NULL);
	if (!r) {
		config_free(&cmd.cfg);
		return CTL_EXIT_FAIL;
	}
	unsigned done = 0, failed = 0;
	int n = all ? PQntuples(r) : a->argc;
	for (int i = 0; i < n; i++) {
		const char *login = all ? PQgetvalue(r, i, 0) : a->argv[i];
		const char *since = all ? PQgetvalue(r, i, 1) : PQgetvalue(r, 0, 0);
		if (recount_one(ctx, &cmd, login, since, dry))
			done++;
		else
			failed++;
	}
	PQclear(r);
	config_free(&cmd.cfg);
	printf("%s %u mailbox%s, %u failed\n", dry ? "would recount" : "recounted", done,
	       done == 1 ? "" : "es", failed);
	return failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

static const struct ctl_opt recount_opts[] = {
	{ "all", NULL, "every mailbox on the recount list (what the timer runs)" },
	{ "dry-run", NULL, "say what would be run, run nothing" },
	{ "doveadm-config", "FILE", "pass -c FILE to doveadm (default: doveadm_config, else its own)" },
	{ NULL, NULL, NULL },
};

static const struct ctl_opt list_opts[] = {
	{ "customer", "NAME", "only this customer's shell accounts" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb usage_verbs[] = {
	{ "set", "LOGIN SIZE", 2, 2, CTL_ADMIN, "record the shell account's non-mail files (from cron)",
	  "SIZE is the disk use of LOGIN's files outside its mail folders, e.g. from\n"
	  "du -sb --exclude=Maildir --exclude=mail ~LOGIN.  It counts toward R6.",
	  NULL, usage_set },
	{ "show", "[LOGIN]", 0, 1, CTL_ADMIN | CTL_SELF,
	  "disk limit, files, own mailbox, each free mailbox, total, allocated", NULL, NULL, usage_show },
	{ "list", "", 0, 0, CTL_ADMIN, "usage of every shell account", NULL, list_opts, usage_list },
	{ "pending", "", 0, 0, CTL_ADMIN, "mailboxes waiting for a quota recount",
	  "vmaild lists a mailbox when it answered F to one of its quota lookups or commits\n"
	  "(database down or frozen): its counters may be lower than its Maildir.", NULL,
	  usage_pending },
	{ "recount", "[LOGIN...]", 0, 64, CTL_ADMIN, "recount mailboxes with doveadm quota recalc (as root)",
	  "Runs doveadm quota recalc -u LOGIN for each listed mailbox (--all: the whole recount\n"
	  "list; a \"*\" entry means every mailbox, doveadm quota recalc -A).  Dovecot writes the\n"
	  "recounted values back through vmaild's quota dict.  A mailbox recounted successfully\n"
	  "leaves the list, unless it failed again meanwhile; a failure keeps it, with the error.\n"
	  "doveadm is the configuration's doveadm_path (default /usr/bin/doveadm), run with\n"
	  "PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C and nothing else of the environment.\n"
	  "Exit status 1 if any recount failed.", recount_opts, usage_recount },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_usage = { "usage", "disk usage against the disk limit (R5, R6), quota recounts",
					 usage_verbs, NULL };
