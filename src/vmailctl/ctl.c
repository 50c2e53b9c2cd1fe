/* ctl: vmailctl's command line (global options, noun/verb dispatch, --help), database session and output helpers. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "vmail/build_config.h"
#include "vmail/config.h"
#include "migrate.h"
#include "vmail/log.h"
#include "vmail/pwhash.h"
#include "vmail/size.h"
#include "vmail/utf8.h"

/* The command tree; a new noun is one line here plus its ctl_<noun>.c. */
const struct ctl_noun *const ctl_nouns[] = {
	&ctl_noun_customer, &ctl_noun_shell,    &ctl_noun_domain,  &ctl_noun_alias, &ctl_noun_mailbox,
	&ctl_noun_vacation, &ctl_noun_forward, &ctl_noun_grant,   &ctl_noun_usage, &ctl_noun_log,
	&ctl_noun_settings, &ctl_noun_db,      &ctl_noun_stats,
};
#define N_NOUNS (sizeof(ctl_nouns) / sizeof(ctl_nouns[0]))
const size_t ctl_nouns_count = N_NOUNS;

/* Options accepted at every level, before the noun or after the verb. */
static const struct ctl_opt global_opts[] = {
	{ "c", "FILE", "configuration file (default " CTL_DEFAULT_CONFIG ", or $VMAIL_CONFIG)" },
	{ "json", NULL, "machine-readable output of list and show (JSON)" },
	{ "as", "LOGIN", "self-service mode: act as shell account LOGIN, after its password" },
	{ "password-stdin", NULL, "read passwords from standard input, one per line, not the terminal" },
	{ "schema-dir", "DIR", "migrations directory (default $VMAIL_SCHEMA_DIR or " VMAIL_SCHEMA_DIR ")" },
	{ "help", NULL, "show help for this level and exit" },
	{ NULL, NULL, NULL },
};

int ctl_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vmailctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return CTL_EXIT_FAIL;
}

int ctl_usage_error(const struct ctl_args *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vmailctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (a && a->noun && a->verb)
		fprintf(stderr, " (see: vmailctl %s %s --help)\n", a->noun->name, a->verb->name);
	else if (a && a->noun)
		fprintf(stderr, " (see: vmailctl %s --help)\n", a->noun->name);
	else
		fputs(" (see: vmailctl --help)\n", stderr);
	return CTL_EXIT_USAGE;
}

/* ---- help ---- */

static void print_opts(FILE *f, const struct ctl_opt *opts)
{
	for (const struct ctl_opt *o = opts; o && o->name; o++) {
		char left[64];
		snprintf(left, sizeof(left), "%s%s%s%s", strlen(o->name) == 1 ? "-" : "--", o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "  %-24s %s\n", left, o->help);
	}
}

static void help_top(FILE *f)
{
	fputs("usage: vmailctl [-c FILE] [--json] [--as LOGIN [--password-stdin]] NOUN VERB [ARGS] [OPTIONS]\n"
	      "\nAdminister vmaild's customers, shell accounts, domains, aliases and mail accounts.\n"
	      "\nNouns:\n",
	      f);
	for (size_t i = 0; i < N_NOUNS; i++)
		fprintf(f, "  %-10s %s\n", ctl_nouns[i]->name, ctl_nouns[i]->help);
	fputs("\nGlobal options (also accepted after the verb):\n", f);
	print_opts(f, global_opts);
	fputs("  --version                print the version and exit\n"
	      "\nRun \"vmailctl NOUN --help\" for its verbs.  Exit status: 0 done, 1 refused or failed,\n"
	      "2 bad command line, 75 temporary failure (DNS gave no answer; try again later).\n",
	      f);
}

static void verb_line(FILE *f, const struct ctl_verb *v)
{
	char left[80];
	snprintf(left, sizeof(left), "%s %s", v->name, v->synopsis ? v->synopsis : "");
	fprintf(f, "  %-32s %s%s\n", left, v->help,
		(v->modes & (CTL_ADMIN | CTL_SELF)) == CTL_SELF	 ? " [--as only]"
		: (v->modes & CTL_SELF)				 ? " [also --as]"
								 : "");
}

static void help_noun(FILE *f, const struct ctl_noun *n)
{
	fprintf(f, "usage: vmailctl %s VERB [ARGS] [OPTIONS]\n\n%c%s.\n\nVerbs:\n", n->name,
		n->help[0] >= 'a' && n->help[0] <= 'z' ? n->help[0] - 'a' + 'A' : n->help[0], n->help + 1);
	for (const struct ctl_verb *v = n->verbs; v->name; v++)
		verb_line(f, v);
	if (n->default_verb)
		fprintf(f, "\nWithout a verb: %s.\n", n->default_verb);
	fprintf(f, "\nRun \"vmailctl %s VERB --help\" for a verb's options.\n", n->name);
}

static void help_verb(FILE *f, const struct ctl_noun *n, const struct ctl_verb *v)
{
	fprintf(f, "usage: vmailctl %s%s %s %s%s[OPTIONS]\n\n%c%s.\n", (v->modes & CTL_ADMIN) ? "" : "--as LOGIN ",
		n->name, v->name, v->synopsis ? v->synopsis : "", v->synopsis && *v->synopsis ? " " : "",
		v->help[0] >= 'a' && v->help[0] <= 'z' ? v->help[0] - 'a' + 'A' : v->help[0], v->help + 1);
	if (v->more)
		fprintf(f, "\n%s\n", v->more);
	fprintf(f, "\nModes: %s%s%s\n", (v->modes & CTL_ADMIN) ? "administrator" : "",
		(v->modes & CTL_ADMIN) && (v->modes & CTL_SELF) ? ", " : "",
		(v->modes & CTL_SELF) ? "self-service (--as LOGIN)" : "");
	if (v->opts && v->opts->name) {
		fputs("\nOptions:\n", f);
		print_opts(f, v->opts);
	}
	fputs("\nGlobal options:\n", f);
	print_opts(f, global_opts);
}

/* ---- option parsing ---- */

const char *ctl_opt_value(const struct ctl_args *a, const char *name)
{
	for (size_t i = 0; a->verb->opts && a->verb->opts[i].name; i++)
		if (strcmp(a->verb->opts[i].name, name) == 0)
			return a->values[i];
	return NULL;
}

bool ctl_flag(const struct ctl_args *a, const char *name)
{
	return ctl_opt_value(a, name) != NULL;
}

/* Find "--name" / "--name=value" / "-c" among opts; *inline_val gets the "=value" part. */
static const struct ctl_opt *match_opt(const struct ctl_opt *opts, const char *arg,
				       const char **inline_val, size_t *index)
{
	const char *name;
	if (arg[0] == '-' && arg[1] == '-')
		name = arg + 2;
	else if (arg[0] == '-' && arg[1] && !arg[2])
		name = arg + 1;
	else
		return NULL;
	const char *eq = strchr(name, '=');
	size_t nl = eq ? (size_t)(eq - name) : strlen(name);
	for (size_t i = 0; opts && opts[i].name; i++) {
		bool short_form = arg[1] != '-';
		if (short_form != (strlen(opts[i].name) == 1))
			continue;
		if (strlen(opts[i].name) == nl && strncmp(opts[i].name, name, nl) == 0) {
			*inline_val = eq ? eq + 1 : NULL;
			*index = i;
			return &opts[i];
		}
	}
	return NULL;
}

enum global_result { G_NONE, G_TAKEN, G_HELP, G_ERROR };

/* Apply a global option at argv[*i]; advances *i past its value. */
static enum global_result take_global(struct ctl *ctx, int argc, char **argv, int *i,
				      const struct ctl_args *a)
{
	const char *inl;
	size_t idx;
	const struct ctl_opt *o = match_opt(global_opts, argv[*i], &inl, &idx);
	if (!o)
		return G_NONE;
	const char *val = NULL;
	if (o->arg) {
		if (inl)
			val = inl;
		else if (*i + 1 < argc)
			val = argv[++*i];
		else {
			ctl_usage_error(a, "option %s needs a value (%s)", argv[*i], o->arg);
			return G_ERROR;
		}
	} else if (inl) {
		ctl_usage_error(a, "option --%s takes no value", o->name);
		return G_ERROR;
	}
	if (strcmp(o->name, "c") == 0)
		ctx->config_path = val;
	else if (strcmp(o->name, "json") == 0)
		ctx->json = true;
	else if (strcmp(o->name, "as") == 0)
		ctx->as_login = val;
	else if (strcmp(o->name, "password-stdin") == 0)
		ctx->password_stdin = true;
	else if (strcmp(o->name, "schema-dir") == 0)
		ctx->schema_dir = val;
	else if (strcmp(o->name, "help") == 0)
		return G_HELP;
	return G_TAKEN;
}

/* Parse a verb's words: its options, global options and positionals in any order. */
static int parse_verb(struct ctl *ctx, struct ctl_args *a, int argc, char **argv)
{
	static char *pos[256];
	int npos = 0;
	bool only_pos = false;
	bool help = false;
	for (int i = 0; i < argc; i++) {
		const char *w = argv[i];
		if (!only_pos && strcmp(w, "--") == 0) {
			only_pos = true;
			continue;
		}
		/* "-1" is a (bad) value for the size parser to name, not an option */
		if (!only_pos && w[0] == '-' && w[1] && !(w[1] >= '0' && w[1] <= '9')) {
			const char *inl;
			size_t idx;
			const struct ctl_opt *o = match_opt(a->verb->opts, w, &inl, &idx);
			if (o) {
				if (o->arg) {
					if (inl)
						a->values[idx] = inl;
					else if (i + 1 < argc)
						a->values[idx] = argv[++i];
					else
						return ctl_usage_error(a, "option --%s needs a value (%s)",
								       o->name, o->arg);
				} else {
					if (inl)
						return ctl_usage_error(a, "option --%s takes no value", o->name);
					a->values[idx] = "";
				}
				continue;
			}
			switch (take_global(ctx, argc, argv, &i, a)) {
			case G_TAKEN:
				continue;
			case G_HELP:
				help = true;
				continue;
			case G_ERROR:
				return CTL_EXIT_USAGE;
			case G_NONE:
				break;
			}
			return ctl_usage_error(a, "unknown option %s for \"%s %s\"", w, a->noun->name,
					       a->verb->name);
		}
		if (npos >= (int)(sizeof(pos) / sizeof(pos[0])))
			return ctl_usage_error(a, "too many arguments");
		pos[npos++] = argv[i];
	}
	if (help) {
		help_verb(stdout, a->noun, a->verb);
		return -1;
	}
	a->argc = npos;
	a->argv = pos;
	if (npos < a->verb->min_args)
		return ctl_usage_error(a, "\"%s %s\" needs %s", a->noun->name, a->verb->name,
				       a->verb->synopsis);
	if (a->verb->max_args >= 0 && npos > a->verb->max_args)
		return ctl_usage_error(a, "unexpected argument \"%s\"", pos[a->verb->max_args]);
	return CTL_EXIT_OK;
}

/* ---- database ---- */

/* Server notices (e.g. "schema already exists, skipping") are noise; warnings are not. */
static void on_notice(void *arg, const PGresult *res)
{
	(void)arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (sev && strcmp(sev, "WARNING") == 0 && msg)
		fprintf(stderr, "vmailctl: warning: %s\n", msg);
}

/* libpq's connection errors span lines; the brief asks for one. */
static void one_line(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

static const char *schema_dir(const struct ctl *ctx)
{
	if (ctx->schema_dir)
		return ctx->schema_dir;
	const char *env = getenv("VMAIL_SCHEMA_DIR");
	return env && *env ? env : VMAIL_SCHEMA_DIR;
}

/*
 * Refuse to work on a database this program does not understand: no schema yet, or a
 * schema newer than the migrations shipped with it.
 */
static bool check_schema_version(struct ctl *ctx)
{
	char err[512];
	int dbv;
	if (!migrate_db_version(ctx->db, &dbv, err, sizeof(err))) {
		ctl_fail("%s", err);
		return false;
	}
	if (dbv < 0) {
		ctl_fail("the database has no vmail schema yet: run \"vmailctl db migrate\" first");
		return false;
	}
	struct migrate_set set;
	if (!migrate_scan(schema_dir(ctx), &set, err, sizeof(err)))
		return true; /* no migrations installed here: nothing to compare with */
	int latest = migrate_latest(&set);
	migrate_set_free(&set);
	if (latest > 0 && dbv > latest) {
		ctl_fail("the database schema is at version %d, newer than this vmailctl (which knows "
			 "up to %d): upgrade vmailctl",
			 dbv, latest);
		return false;
	}
	return true;
}

const char *ctl_config_path(const struct ctl *ctx)
{
	const char *path = ctx->config_path;
	if (!path)
		path = getenv("VMAIL_CONFIG");
	if (!path || !*path)
		path = CTL_DEFAULT_CONFIG;
	return path;
}

PGconn *ctl_connect(struct ctl *ctx, bool check_schema)
{
	if (ctx->db)
		return ctx->db;
	const char *path = ctl_config_path(ctx);
	static const char *const wanted[] = { "database", NULL };
	struct config cfg;
	char err[512];
	/* Other keys belong to vmaild, which shares the file. */
	if (!config_load_keys(path, wanted, &cfg, err, sizeof(err))) {
		ctl_fail("cannot read configuration: %s", err);
		return NULL;
	}
	if (!cfg.database[0]) {
		ctl_fail("%s: no \"database = <connection string>\" line", path);
		config_free(&cfg);
		return NULL;
	}
	const char *keys[] = { "dbname", "fallback_application_name", NULL };
	const char *vals[] = { cfg.database, "vmailctl", NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	config_free(&cfg);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", c ? PQerrorMessage(c) : "out of memory");
		one_line(msg);
		ctl_fail("cannot connect to the database: %s", msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeReceiver(c, on_notice, NULL);
	ctx->db = c;
	if (check_schema && !check_schema_version(ctx)) {
		PQfinish(c);
		ctx->db = NULL;
		return NULL;
	}
	return c;
}

static void print_db_error(const PGresult *r, PGconn *c)
{
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", msg ? msg : PQerrorMessage(c));
	one_line(buf);
	ctl_fail("%s", buf);
}

PGresult *ctl_exec(struct ctl *ctx, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(ctx->db, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	print_db_error(r, ctx->db);
	PQclear(r);
	ctl_rollback(ctx);
	return NULL;
}

void ctl_rollback(struct ctl *ctx)
{
	if (ctx->db && PQtransactionStatus(ctx->db) != PQTRANS_IDLE)
		PQclear(PQexec(ctx->db, "ROLLBACK"));
}

bool ctl_begin(struct ctl *ctx)
{
	PGresult *r = ctl_exec(ctx, "BEGIN", 0, NULL);
	if (!r)
		return false;
	PQclear(r);
	if (ctx->as_login)
		return true; /* the self_* functions record "self:<login>" themselves */
	char actor[96];
	snprintf(actor, sizeof(actor), "admin:%s", ctx->os_user);
	const char *p[] = { actor };
	r = ctl_exec(ctx, "SELECT set_config('vmail.actor', $1, true)", 1, p);
	if (!r)
		return false;
	PQclear(r);
	return true;
}

int ctl_commit(struct ctl *ctx)
{
	PGresult *r = ctl_exec(ctx, "COMMIT", 0, NULL);
	if (!r)
		return CTL_EXIT_FAIL;
	PQclear(r);
	return CTL_EXIT_OK;
}

int ctl_run(struct ctl *ctx, const char *sql, int n, const char *const *params, const char *done)
{
	if (!ctl_begin(ctx))
		return CTL_EXIT_FAIL;
	PGresult *r = ctl_exec(ctx, sql, n, params);
	if (!r)
		return CTL_EXIT_FAIL;
	PQclear(r);
	int rc = ctl_commit(ctx);
	if (rc == CTL_EXIT_OK && done)
		printf("%s\n", done);
	return rc;
}

/* ---- output ---- */

static bool col_listed(const char *name, const char *const *cols)
{
	for (size_t i = 0; cols && cols[i]; i++)
		if (strcmp(cols[i], name) == 0)
			return true;
	return false;
}

#define BOOLOID 16
#define TEXTARRAYOID 1009

const char *ctl_escape(const char *s, char *buf, size_t len)
{
	size_t n = strlen(s);
	size_t i = 0;
	while (i < n) {
		size_t k = utf8_shown_char(s, n, i);
		if (!k)
			break;
		i += k;
	}
	if (i == n)
		return s;
	if (len == 0)
		return "";
	log_escape(s, n, buf, len);
	return buf;
}

/*
 * Cell text for the human table: NULL as "-", booleans as yes/no, sizes in KiB/MiB/GiB, control
 * characters escaped (a login vmaild listed after a failed quota commit is a client's string).
 */
static const char *cell(const PGresult *r, int row, int col, const char *const *size_cols, char *buf,
			size_t len)
{
	if (PQgetisnull(r, row, col))
		return "-";
	const char *v = ctl_escape(PQgetvalue(r, row, col), buf, len);
	if (v == buf) /* not a yes/no, a size or a list of names */
		return v;
	if (PQftype(r, col) == BOOLOID)
		return v[0] == 't' ? "yes" : "no";
	/* {a,b} reads better as "a, b"; elements here are names and addresses, never quoted */
	if (PQftype(r, col) == TEXTARRAYOID && v[0] == '{' && !strchr(v, '"')) {
		size_t o = 0;
		for (const char *p = v + 1; *p && *p != '}' && o + 3 < len; p++) {
			if (*p == ',') {
				buf[o++] = ',';
				buf[o++] = ' ';
			} else {
				buf[o++] = *p;
			}
		}
		buf[o] = '\0';
		return o ? buf : "-";
	}
	if (col_listed(PQfname(r, col), size_cols)) {
		char *end;
		errno = 0;
		unsigned long long b = strtoull(v, &end, 10);
		if (!errno && !*end && v[0] != '-') {
			size_format(b, buf, len);
			return buf;
		}
	}
	return v;
}

static int run_json(struct ctl *ctx, const char *pre, const char *sql, const char *post, int n,
		    const char *const *params, const char *notfound)
{
	size_t len = strlen(pre) + strlen(sql) + strlen(post) + 1;
	char *q = malloc(len);
	if (!q)
		return ctl_fail("out of memory");
	/* Only our own constant SQL is pasted here; values travel as parameters. */
	snprintf(q, len, "%s%s%s", pre, sql, post);
	PGresult *r = ctl_exec(ctx, q, n, params);
	free(q);
	if (!r)
		return CTL_EXIT_FAIL;
	int rc = CTL_EXIT_OK;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
		rc = ctl_fail("%s", notfound ? notfound : "no result");
	else
		printf("%s\n", PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

int ctl_print_list(struct ctl *ctx, const char *sql, int n, const char *const *params,
		   const char *const *size_cols)
{
	if (ctx->json)
		return run_json(ctx, "SELECT coalesce(json_agg(q), '[]'::json) FROM (", sql, ") q", n,
				params, NULL);
	PGresult *r = ctl_exec(ctx, sql, n, params);
	if (!r)
		return CTL_EXIT_FAIL;
	int rows = PQntuples(r), cols = PQnfields(r);
	size_t *w = calloc((size_t)cols + 1, sizeof(*w));
	if (!w) {
		PQclear(r);
		return ctl_fail("out of memory");
	}
	char buf[CTL_CELL_MAX];
	for (int c = 0; c < cols; c++) {
		w[c] = strlen(PQfname(r, c));
		for (int i = 0; i < rows; i++) {
			size_t l = strlen(cell(r, i, c, size_cols, buf, sizeof(buf)));
			if (l > w[c])
				w[c] = l;
		}
	}
	for (int c = 0; c < cols; c++)
		printf("%-*s%s", c + 1 < cols ? (int)w[c] : 0, PQfname(r, c), c + 1 < cols ? "  " : "\n");
	for (int i = 0; i < rows; i++)
		for (int c = 0; c < cols; c++)
			printf("%-*s%s", c + 1 < cols ? (int)w[c] : 0,
			       cell(r, i, c, size_cols, buf, sizeof(buf)), c + 1 < cols ? "  " : "\n");
	free(w);
	PQclear(r);
	return CTL_EXIT_OK;
}

/*
 * A text of several lines under its column's name, each line indented, what is between line
 * ends and tabs escaped on its own: those two are the text's shape here, not something to
 * hide, but the rest is still someone's string.  The buffer fits a whole piece escaped.
 */
static bool print_text_block(const char *name, const char *v)
{
	printf("%s\n", name);
	bool line_start = true;
	while (*v) {
		size_t n = strcspn(v, "\t\n");
		char *piece = strndup(v, n), *buf = malloc(4 * n + 1);
		if (!piece || !buf) {
			free(piece);
			free(buf);
			return false;
		}
		printf("%s%s", line_start ? "  " : "", ctl_escape(piece, buf, 4 * n + 1));
		free(piece);
		free(buf);
		if (v[n])
			putchar(v[n]);
		line_start = v[n] == '\n';
		v += n + (v[n] != '\0');
	}
	if (!line_start)
		putchar('\n');
	return true;
}

static int print_show(struct ctl *ctx, const char *sql, int n, const char *const *params,
		      const char *const *size_cols, const char *const *text_cols, const char *notfound)
{
	if (ctx->json)
		return run_json(ctx, "SELECT row_to_json(q) FROM (", sql, ") q", n, params, notfound);
	PGresult *r = ctl_exec(ctx, sql, n, params);
	if (!r)
		return CTL_EXIT_FAIL;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ctl_fail("%s", notfound);
	}
	int cols = PQnfields(r);
	size_t w = 0;
	for (int c = 0; c < cols; c++)
		if (strlen(PQfname(r, c)) > w)
			w = strlen(PQfname(r, c));
	char buf[CTL_CELL_MAX];
	int rc = CTL_EXIT_OK;
	for (int c = 0; c < cols && rc == CTL_EXIT_OK; c++) {
		if (!PQgetisnull(r, 0, c) && col_listed(PQfname(r, c), text_cols)) {
			if (!print_text_block(PQfname(r, c), PQgetvalue(r, 0, c)))
				rc = ctl_fail("out of memory");
			continue;
		}
		printf("%-*s  %s\n", (int)w + 1, PQfname(r, c), cell(r, 0, c, size_cols, buf, sizeof(buf)));
	}
	PQclear(r);
	return rc;
}

int ctl_print_show(struct ctl *ctx, const char *sql, int n, const char *const *params,
		   const char *const *size_cols, const char *notfound)
{
	return print_show(ctx, sql, n, params, size_cols, NULL, notfound);
}

int ctl_print_show_text(struct ctl *ctx, const char *sql, int n, const char *const *params,
			const char *const *text_cols, const char *notfound)
{
	return print_show(ctx, sql, n, params, NULL, text_cols, notfound);
}

/* ---- values ---- */

bool ctl_parse_size(const char *s, uint64_t *out)
{
	char err[256];
	if (size_parse(s, out, err, sizeof(err)))
		return true;
	ctl_fail("%s", err);
	return false;
}

bool ctl_parse_int(const char *s, const char *what, long *out)
{
	char *end;
	errno = 0;
	long v = s && *s >= '0' && *s <= '9' ? strtol(s, &end, 10) : -1;
	if (v < 0 || errno || *end || v > 2147483647L) {
		ctl_fail("invalid %s \"%s\": expected a whole number from 0 to 2147483647", what,
			 s ? s : "");
		return false;
	}
	*out = v;
	return true;
}

bool ctl_looks_like_interval(const char *s)
{
	size_t d = strspn(s, "0123456789");
	if (d == 0)
		return false;
	s += d;
	while (*s == ' ')
		s++;
	return (*s >= 'a' && *s <= 'z') && strspn(s, "abcdefghijklmnopqrstuvwxyz ") == strlen(s);
}

/* ---- passwords ---- */

static int tty_fd = -1;
static struct termios tty_saved;
static volatile sig_atomic_t tty_echo_off;

static void restore_tty(int sig)
{
	if (tty_echo_off)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from fd into buf, without the newline; false on EOF before any byte or overflow. */
static bool read_line_fd(int fd, char *buf, size_t len, bool *too_long)
{
	size_t n = 0;
	bool any = false;
	*too_long = false;
	for (;;) {
		char ch;
		ssize_t k = read(fd, &ch, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		any = true;
		if (ch == '\n')
			break;
		if (n + 1 >= len) {
			*too_long = true;
			continue;
		}
		buf[n++] = ch;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return any && !*too_long;
}

static bool tty_read(const char *prompt, char *buf, size_t len)
{
	if (tty_fd < 0)
		tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (tty_fd < 0) {
		ctl_fail("no terminal to read the password from (use --password-stdin)");
		return false;
	}
	if (write(tty_fd, prompt, strlen(prompt)) < 0) { /* best effort */
	}
	bool echo_changed = false;
	if (tcgetattr(tty_fd, &tty_saved) == 0) {
		struct termios t = tty_saved;
		t.c_lflag &= ~(tcflag_t)ECHO;
		t.c_lflag |= ECHONL;
		signal(SIGINT, restore_tty);
		signal(SIGTERM, restore_tty);
		signal(SIGHUP, restore_tty);
		tty_echo_off = 1;
		echo_changed = tcsetattr(tty_fd, TCSAFLUSH, &t) == 0;
	}
	bool too_long;
	bool ok = read_line_fd(tty_fd, buf, len, &too_long);
	if (echo_changed)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	tty_echo_off = 0;
	if (!ok)
		ctl_fail(too_long ? "password too long" : "no password entered");
	return ok;
}

bool ctl_read_password(struct ctl *ctx, const char *prompt, bool confirm, char *buf, size_t len)
{
	bool ok;
	if (ctx->password_stdin) {
		bool too_long;
		/* read(2) byte by byte: no stdio buffer keeps a copy, and later lines stay unread */
		ok = read_line_fd(STDIN_FILENO, buf, len, &too_long);
		if (!ok)
			ctl_fail(too_long ? "password too long" : "no password on standard input");
	} else {
		ok = tty_read(prompt, buf, len);
		if (ok && confirm) {
			char again[CTL_PASSWORD_MAX];
			ok = tty_read("Again: ", again, sizeof(again));
			if (ok && strcmp(buf, again) != 0)
				ok = (ctl_fail("the passwords do not match"), false);
			pwhash_wipe(again, sizeof(again));
		}
	}
	if (ok && !*buf)
		ok = (ctl_fail("empty password"), false);
	if (!ok)
		pwhash_wipe(buf, len);
	return ok;
}

bool ctl_new_password_hash(struct ctl *ctx, const struct ctl_args *a, const char *prompt,
			   char *out, size_t outlen)
{
	char err[256];
	const char *imported = ctl_opt_value(a, "password-hash");
	if (imported) {
		if (!pwhash_validate(imported, err, sizeof(err)))
			return (ctl_fail("%s", err), false);
		snprintf(out, outlen, "%s", imported);
		return true;
	}
	char pw[CTL_PASSWORD_MAX];
	if (!ctl_read_password(ctx, prompt, true, pw, sizeof(pw)))
		return false;
	bool ok = pwhash_hash(pw, out, outlen, err, sizeof(err));
	pwhash_wipe(pw, sizeof(pw));
	if (!ok)
		ctl_fail("%s", err);
	return ok;
}

/* Sessions of vmailctl --as last as long as one command may take. */
#define CTL_SELF_SESSION_SECONDS "600"

bool ctl_self_login(struct ctl *ctx)
{
	const char *p[] = { ctx->as_login, NULL };
	PGresult *r = ctl_exec(ctx, "SELECT vmail.self_login_params($1)", 1, p);
	if (!r)
		return false;
	char setting[PWHASH_MAX] = "";
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		snprintf(setting, sizeof(setting), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);

	char prompt[128], pw[CTL_PASSWORD_MAX], err[256];
	snprintf(prompt, sizeof(prompt), "Password for %s: ", ctx->as_login);
	if (!ctl_read_password(ctx, prompt, false, pw, sizeof(pw)))
		return false;
	/* the database compares; like the panel, it does not say why a login failed */
	bool derived = pwhash_derive(setting, pw, ctx->as_derived, sizeof(ctx->as_derived), err,
				     sizeof(err));
	const char *q[] = { ctx->as_login, ctx->as_derived, CTL_SELF_SESSION_SECONDS };
	r = derived ? ctl_exec(ctx, "SELECT vmail.self_login($1, $2, NULL, $3::integer)", 3, q) : NULL;
	if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		snprintf(ctx->as_token, sizeof(ctx->as_token), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (!ctx->as_token[0]) {
		pwhash_wipe(pw, sizeof(pw));
		ctl_fail("login failed: wrong password, or shell account %s is unknown, suspended (R9) "
			 "or has no password", ctx->as_login);
		return false;
	}
	if (pwhash_needs_rehash(ctx->as_derived)) {
		char fresh[PWHASH_MAX];
		if (pwhash_hash(pw, fresh, sizeof(fresh), err, sizeof(err))) {
			/* self_rehash changes nothing if the hash changed meanwhile: that change wins */
			const char *u[] = { ctx->as_token, ctx->as_derived, fresh };
			if (ctl_begin(ctx) &&
			    (r = ctl_exec(ctx, "SELECT vmail.self_rehash($1, $2, $3)", 3, u))) {
				bool done = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
				PQclear(r);
				if (ctl_commit(ctx) == CTL_EXIT_OK && done)
					snprintf(ctx->as_derived, sizeof(ctx->as_derived), "%s", fresh);
			}
		}
	}
	pwhash_wipe(pw, sizeof(pw));
	return true;
}

void ctl_self_logout(struct ctl *ctx)
{
	if (!ctx->as_token[0] || !ctx->db)
		return;
	ctl_rollback(ctx);
	const char *p[] = { ctx->as_token };
	PGresult *r = ctl_exec(ctx, "SELECT vmail.self_logout($1, NULL)", 1, p);
	PQclear(r);
	pwhash_wipe(ctx->as_token, sizeof(ctx->as_token));
	pwhash_wipe(ctx->as_derived, sizeof(ctx->as_derived));
}

/* ---- main ---- */

static const struct ctl_noun *find_noun(const char *name)
{
	for (size_t i = 0; i < N_NOUNS; i++)
		if (strcmp(ctl_nouns[i]->name, name) == 0)
			return ctl_nouns[i];
	return NULL;
}

static const struct ctl_verb *find_verb(const struct ctl_noun *n, const char *name)
{
	for (const struct ctl_verb *v = n->verbs; v->name; v++)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static void set_os_user(struct ctl *ctx)
{
	struct passwd *pw = getpwuid(getuid());
	if (pw && pw->pw_name)
		snprintf(ctx->os_user, sizeof(ctx->os_user), "%s", pw->pw_name);
	else
		snprintf(ctx->os_user, sizeof(ctx->os_user), "uid%lu", (unsigned long)getuid());
}

int ctl_main(int argc, char **argv)
{
	struct ctl ctx = { 0 };
	struct ctl_args a = { 0 };
	set_os_user(&ctx);
	log_init("vmailctl", false, LOG_LEVEL_WARNING);

	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("vmailctl %s\n", VMAIL_VERSION);
			return CTL_EXIT_OK;
		}
		switch (take_global(&ctx, argc, argv, &i, NULL)) {
		case G_TAKEN:
			continue;
		case G_HELP:
			help_top(stdout);
			return CTL_EXIT_OK;
		case G_ERROR:
			return CTL_EXIT_USAGE;
		case G_NONE:
			return ctl_usage_error(NULL, "unknown option %s", argv[i]);
		}
	}
	if (i >= argc) {
		help_top(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		help_top(stdout);
		return CTL_EXIT_OK;
	}
	a.noun = find_noun(argv[i]);
	if (!a.noun)
		return ctl_usage_error(NULL, "unknown noun \"%s\"", argv[i]);
	i++;
	const char *vname = i < argc && argv[i][0] != '-' ? argv[i] : NULL;
	if (vname && strcmp(vname, "help") == 0) {
		help_noun(stdout, a.noun);
		return CTL_EXIT_OK;
	}
	if (vname) {
		a.verb = find_verb(a.noun, vname);
		if (!a.verb)
			return ctl_usage_error(&a, "unknown verb \"%s\" for \"%s\"", vname, a.noun->name);
		i++;
	} else {
		/* "vmailctl customer --help" is help for the noun, not for its default verb */
		for (int k = i; k < argc; k++)
			if (strcmp(argv[k], "--help") == 0) {
				help_noun(stdout, a.noun);
				return CTL_EXIT_OK;
			}
		if (!a.noun->default_verb) {
			help_noun(stderr, a.noun);
			return CTL_EXIT_USAGE;
		}
		a.verb = find_verb(a.noun, a.noun->default_verb);
	}
	int rc = parse_verb(&ctx, &a, argc - i, argv + i);
	if (rc < 0)
		return CTL_EXIT_OK; /* --help */
	if (rc != CTL_EXIT_OK)
		return rc;

	if (ctx.as_login && !(a.verb->modes & CTL_SELF))
		return ctl_usage_error(&a, "\"%s %s\" is not available in self-service mode (--as)",
				       a.noun->name, a.verb->name);
	if (!ctx.as_login && !(a.verb->modes & CTL_ADMIN))
		return ctl_usage_error(&a, "\"%s %s\" needs --as LOGIN", a.noun->name, a.verb->name);
	if (ctx.as_login && !*ctx.as_login)
		return ctl_usage_error(&a, "--as needs a login");
	if (!ctx.schema_dir) {
		const char *env = getenv("VMAIL_SCHEMA_DIR");
		ctx.schema_dir = env && *env ? env : VMAIL_SCHEMA_DIR;
	}

	char err[256];
	if (!pwhash_init(err, sizeof(err)))
		return ctl_fail("%s", err);
	if (!(a.verb->modes & CTL_NO_DB) && !ctl_connect(&ctx, !(a.verb->modes & CTL_NO_SCHEMA)))
		return CTL_EXIT_FAIL;
	if (ctx.as_login && !ctl_self_login(&ctx))
		rc = CTL_EXIT_FAIL;
	else
		rc = a.verb->run(&ctx, &a);
	ctl_self_logout(&ctx);
	PQfinish(ctx.db);
	return rc;
}
