/* ctl_sieve: "vmailctl vacation show|set|off" and "vmailctl forward list|add|del" — the two things a
 * mailbox's Sieve rules do for its owner: answer while away, and pass mail on. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * A vacation message is a short note.  The limit is checked here, before anything is sent, so
 * that a wrong file (a mailbox, a log) is refused as such rather than as a database error.
 */
#define VACATION_MESSAGE_MAX 8192

/*
 * by_mode - the statement for this mode.  *p starts with the session token, which only the
 * vmail.self_* function takes: in administrator mode it is dropped from *p and *n.
 */
static const char *by_mode(const struct ctl *ctx, const char *admin_sql, const char *self_sql, int *n,
			   const char *const **p)
{
	if (ctx->as_login)
		return self_sql;
	(*n)--;
	(*p)++;
	return admin_sql;
}

/* mode_run - ctl_run of the statement by_mode picks */
static int mode_run(struct ctl *ctx, const char *admin_sql, const char *self_sql, int n, const char *const *p,
		    const char *done)
{
	const char *sql = by_mode(ctx, admin_sql, self_sql, &n, &p);
	return ctl_run(ctx, sql, n, p, done);
}

/*
 * read_message - all of path ("-": standard input, after the password lines --as read) into buf
 * (VACATION_MESSAGE_MAX + 1 bytes), NUL-terminated.  Read with read(2) up to one byte past the
 * limit, so a huge file or an endless pipe is refused without being read whole.  A NUL byte is
 * refused too: libpq would silently cut the text there.
 */
static bool read_message(const char *path, char *buf)
{
	bool from_stdin = strcmp(path, "-") == 0;
	const char *name = from_stdin ? "- (standard input)" : path;
	int fd = from_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return (ctl_fail("cannot open message file %s: %s", name, strerror(errno)), false);
	char more;
	size_t n = 0;
	bool ok = true;
	for (;;) {
		/* the last read is into "more": only whether there is a byte past the limit matters */
		char *to = n < VACATION_MESSAGE_MAX ? buf + n : &more;
		ssize_t k = read(fd, to, n < VACATION_MESSAGE_MAX ? VACATION_MESSAGE_MAX - n : 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			ok = (ctl_fail("cannot read message file %s: %s", name, strerror(errno)), false);
			break;
		}
		if (k == 0)
			break;
		if (to == &more) {
			ok = (ctl_fail("message file %s is over the 8 KiB (%d bytes) a vacation message "
				       "may have",
				       name, VACATION_MESSAGE_MAX),
			      false);
			break;
		}
		n += (size_t)k;
	}
	if (!from_stdin)
		close(fd);
	buf[n] = '\0';
	if (ok && memchr(buf, '\0', n))
		ok = (ctl_fail("message file %s holds a NUL byte: a vacation message is text", name), false);
	return ok;
}

/* date_arg - YYYY-MM-DD only: PostgreSQL would take 01/07/2026 too and read it by its DateStyle */
static bool date_arg(const char *s, const char *what)
{
	static const char shape[] = "dddd-dd-dd";
	bool ok = strlen(s) == sizeof(shape) - 1;
	for (size_t i = 0; ok && shape[i]; i++)
		ok = shape[i] == 'd' ? s[i] >= '0' && s[i] <= '9' : s[i] == shape[i];
	if (!ok)
		ctl_fail("invalid %s \"%s\": expected a date as YYYY-MM-DD", what, s);
	return ok;
}

/* ---- vacation ---- */

static int vacation_show(struct ctl *ctx, const struct ctl_args *a)
{
	static const char *const text_cols[] = { "body", NULL };
	const char *p[] = { ctx->as_token, a->argv[0] };
	int n = 2;
	const char *const *pp = p;
	/* body last: in the human form it is a block of lines under its name */
	const char *sql = by_mode(ctx,
				  "SELECT address, active, subject, from_address, start_date, end_date, days,"
				  " addresses, body FROM vmail.vacation_show($1)",
				  "SELECT address, active, subject, from_address, start_date, end_date, days,"
				  " addresses, body FROM vmail.self_vacation_show($1, $2)",
				  &n, &pp);
	char nf[400];
	snprintf(nf, sizeof(nf), "no vacation reply for \"%s\"", a->argv[0]);
	return ctl_print_show_text(ctx, sql, n, pp, text_cols, nf);
}

static int vacation_set(struct ctl *ctx, const struct ctl_args *a)
{
	const char *addr = a->argv[0], *subject = ctl_opt_value(a, "subject");
	const char *file = ctl_opt_value(a, "message-file"), *start = ctl_opt_value(a, "start");
	const char *end = ctl_opt_value(a, "end"), *days = ctl_opt_value(a, "days");
	if (!subject || !file)
		return ctl_usage_error(a, "vacation set needs --subject TEXT and --message-file FILE");
	if ((start && !date_arg(start, "start date")) || (end && !date_arg(end, "end date")))
		return CTL_EXIT_FAIL;
	long d;
	char dbuf[24];
	if (days) {
		if (!ctl_parse_int(days, "number of days", &d))
			return CTL_EXIT_FAIL;
		snprintf(dbuf, sizeof(dbuf), "%ld", d);
	}
	char body[VACATION_MESSAGE_MAX + 1];
	if (!read_message(file, body))
		return CTL_EXIT_FAIL;
	const char *from = ctl_opt_value(a, "from-address");
	const char *p[] = { ctx->as_token, addr, subject, body, start, end, days ? dbuf : NULL, from };
	char done[400];
	snprintf(done, sizeof(done), "vacation reply of %s set", addr);
	return mode_run(ctx, "SELECT vmail.vacation_set($1, $2, $3, $4::date, $5::date, $6::integer, $7)",
			"SELECT vmail.self_vacation_set($1, $2, $3, $4, $5::date, $6::date, $7::integer, $8)",
			8, p, done);
}

static int vacation_off(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { ctx->as_token, a->argv[0] };
	char done[400];
	snprintf(done, sizeof(done), "vacation reply of %s off", a->argv[0]);
	return mode_run(ctx, "SELECT vmail.vacation_off($1)", "SELECT vmail.self_vacation_off($1, $2)", 2, p,
			done);
}

/* ---- forward ---- */

static int forward_list(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { ctx->as_token, a->argv[0] };
	int n = 2;
	const char *const *pp = p;
	const char *sql = by_mode(ctx, "SELECT target, keep FROM vmail.forward_list($1)",
				  "SELECT target, keep FROM vmail.self_forward_list($1, $2)", &n, &pp);
	return ctl_print_list(ctx, sql, n, pp, NULL);
}

static int forward_add(struct ctl *ctx, const struct ctl_args *a)
{
	bool keep = ctl_flag(a, "keep"), no_keep = ctl_flag(a, "no-keep");
	if (keep && no_keep)
		return ctl_usage_error(a, "--keep and --no-keep exclude each other");
	/* neither: the mailbox's keep-a-copy setting stays as it is */
	const char *p[] = { ctx->as_token, a->argv[0], a->argv[1], keep ? "true" : no_keep ? "false" : NULL };
	char done[600];
	snprintf(done, sizeof(done), "%s forwards to %s", a->argv[0], a->argv[1]);
	return mode_run(ctx, "SELECT vmail.forward_add($1, $2, $3::boolean)",
			"SELECT vmail.self_forward_add($1, $2, $3, $4::boolean)", 4, p, done);
}

static int forward_del(struct ctl *ctx, const struct ctl_args *a)
{
	const char *p[] = { ctx->as_token, a->argv[0], a->argv[1] };
	char done[600];
	snprintf(done, sizeof(done), "%s no longer forwards to %s", a->argv[0], a->argv[1]);
	return mode_run(ctx, "SELECT vmail.forward_del($1, $2)", "SELECT vmail.self_forward_del($1, $2, $3)",
			3, p, done);
}

static const struct ctl_opt vacation_set_opts[] = {
	{ "subject", "TEXT", "the reply's subject; required" },
	{ "message-file", "FILE", "the reply's text, at most 8 KiB (\"-\": standard input); required" },
	{ "start", "DATE", "first day to answer (YYYY-MM-DD); default: from now on" },
	{ "end", "DATE", "last day to answer (YYYY-MM-DD); default: until turned off" },
	{ "days", "N", "answer each sender at most once in N days (default 7)" },
	{ "from-address", "ADDRESS", "the reply's sender (default: the mailbox's own address)" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb vacation_verbs[] = {
	{ "show", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "show a mailbox's vacation reply",
	  "Whether it is on, its subject, sender, dates, how often one sender is answered, the\n"
	  "addresses it answers for (every address that delivers to the mailbox) and its text.",
	  NULL, vacation_show },
	{ "set", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "turn a mailbox's vacation reply on, or change it",
	  "Needs --subject and --message-file; what is not given takes its default, not the value\n"
	  "set before.  With --as and --password-stdin, the first line of standard input is the\n"
	  "password and, with --message-file -, the rest is the message.",
	  vacation_set_opts, vacation_set },
	{ "off", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "turn a mailbox's vacation reply off", NULL, NULL,
	  vacation_off },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

static const struct ctl_opt forward_add_opts[] = {
	{ "keep", NULL, "keep a copy in the mailbox too" },
	{ "no-keep", NULL, "keep no copy: the mail only goes on" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb forward_verbs[] = {
	{ "list", "ADDRESS", 1, 1, CTL_ADMIN | CTL_SELF, "list where a mailbox forwards to",
	  "Each target, and whether the mailbox keeps a copy.", NULL, forward_list },
	{ "add", "ADDRESS TARGET", 2, 2, CTL_ADMIN | CTL_SELF, "forward a mailbox's mail to TARGET too",
	  "Keeping a copy is one setting of the mailbox, for all its targets: --keep or --no-keep\n"
	  "changes it, neither leaves it as it is (a copy is kept unless said otherwise).  With\n"
	  "--as, refused while the customer has self-service forwarding turned off.",
	  forward_add_opts, forward_add },
	{ "del", "ADDRESS TARGET", 2, 2, CTL_ADMIN | CTL_SELF, "stop forwarding to TARGET", NULL, NULL,
	  forward_del },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_vacation = { "vacation",
					    "vacation replies: answers sent while a mailbox's owner is away",
					    vacation_verbs, NULL };
const struct ctl_noun ctl_noun_forward = { "forward", "forwarding of a mailbox's mail to other addresses",
					   forward_verbs, NULL };
