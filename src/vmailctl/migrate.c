/* migrate: finding the schema files on disk, planning what a database lacks, applying it in one transaction. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define MIGRATE_MAX_FILE (16 * 1024 * 1024)
/* "vmailmig": one fixed key, so every vmailctl of every version queues on the same lock. */
#define LOCK_KEY "8533742014036830567"
/* How long one DDL statement may wait for a table lock before the whole upgrade gives up. */
#define MIGRATE_LOCK_TIMEOUT "10s"

/* [A-Za-z0-9_-]+ between p and end */
static bool name_chars(const char *p, const char *end)
{
	if (p >= end)
		return false;
	for (; p < end; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* The kind of a schema file from its name; false for files that are none of ours. */
static bool parse_name(const char *fname, enum migrate_kind *kind, int *version)
{
	size_t len = strlen(fname);
	if (len < 6 || strcmp(fname + len - 4, ".sql") != 0)
		return false;
	*version = 0;
	if (strcmp(fname, MIGRATE_GRANTS_FILE) == 0) {
		*kind = MIGRATE_GRANTS;
		return true;
	}
	if (strncmp(fname, "R_", 2) == 0) {
		*kind = strcmp(fname, MIGRATE_CHECKS_FILE) == 0 ? MIGRATE_CHECKS : MIGRATE_REPEATABLE;
		return name_chars(fname + 2, fname + len - 4);
	}
	size_t d = strspn(fname, "0123456789");
	if (d == 0 || d > 9 || fname[d] != '_' || !name_chars(fname + d + 1, fname + len - 4))
		return false;
	*kind = MIGRATE_VERSIONED;
	*version = atoi(fname);
	return *version > 0;
}

/* Versions ascending; definition files checks first, grants last, repeatables by name between. */
static int cmp_step(const void *a, const void *b)
{
	const struct migrate_step *x = a, *y = b;
	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	if (x->version != y->version)
		return (x->version > y->version) - (x->version < y->version);
	return strcmp(x->name, y->name);
}

static void steps_free(struct migrate_step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(steps[i].name);
		free(steps[i].path);
	}
	free(steps);
}

void migrate_set_free(struct migrate_set *set)
{
	steps_free(set->steps, set->count);
	steps_free(set->defs, set->ndefs);
	set->steps = set->defs = NULL;
	set->count = set->ndefs = 0;
}

static bool add_step(struct migrate_step **steps, size_t *n, const char *dir, const char *fname,
		     enum migrate_kind kind, int version)
{
	struct migrate_step *grown = realloc(*steps, (*n + 1) * sizeof(*grown));
	if (!grown)
		return false;
	*steps = grown;
	struct migrate_step *s = &grown[*n];
	size_t plen = strlen(dir) + strlen(fname) + 2;
	s->kind = kind;
	s->version = version;
	s->name = kind == MIGRATE_VERSIONED ? strndup(fname, strlen(fname) - 4) : strdup(fname);
	s->path = malloc(plen);
	(*n)++;
	if (!s->name || !s->path)
		return false;
	snprintf(s->path, plen, "%s/%s", dir, fname);
	return true;
}

bool migrate_scan(const char *dir, struct migrate_set *out, char *err, size_t errlen)
{
	*out = (struct migrate_set){ 0 };
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "cannot read schema directory %s: %s", dir, strerror(errno));
		return false;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		enum migrate_kind kind;
		int v;
		if (!parse_name(de->d_name, &kind, &v))
			continue;
		bool ok = kind == MIGRATE_VERSIONED ? add_step(&out->steps, &out->count, dir, de->d_name, kind, v)
						    : add_step(&out->defs, &out->ndefs, dir, de->d_name, kind, v);
		if (!ok) {
			closedir(d);
			migrate_set_free(out);
			snprintf(err, errlen, "out of memory");
			return false;
		}
	}
	closedir(d);
	if (out->count == 0) {
		migrate_set_free(out);
		snprintf(err, errlen, "no migrations (NNN_name.sql) in schema directory %s", dir);
		return false;
	}
	qsort(out->steps, out->count, sizeof(*out->steps), cmp_step);
	if (out->ndefs)
		qsort(out->defs, out->ndefs, sizeof(*out->defs), cmp_step);
	for (size_t i = 1; i < out->count; i++) {
		if (out->steps[i].version == out->steps[i - 1].version) {
			snprintf(err, errlen, "schema directory %s: %s and %s have the same version %d", dir,
				 out->steps[i - 1].name, out->steps[i].name, out->steps[i].version);
			migrate_set_free(out);
			return false;
		}
	}
	return true;
}

int migrate_latest(const struct migrate_set *set)
{
	return set->count ? set->steps[set->count - 1].version : 0;
}

static void db_error(PGconn *db, const PGresult *r, const char *what, char *err, size_t errlen)
{
	const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	snprintf(err, errlen, "%s: %s", what, m ? m : PQerrorMessage(db));
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = *(p + 1) ? ' ' : '\0';
}

/* Run sql without parameters; false (with err) unless it succeeded. */
static bool exec_ok(PGconn *db, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *r = PQexec(db, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		db_error(db, r, what, err, errlen);
	PQclear(r);
	return ok;
}

bool migrate_db_version(PGconn *db, int *version, char *err, size_t errlen)
{
	PGresult *r = PQexec(db, "SELECT to_regclass('vmail_meta.migrations') IS NOT NULL");
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_error(db, r, "cannot read the schema version", err, errlen);
		PQclear(r);
		return false;
	}
	bool exists = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!exists) {
		*version = -1;
		return true;
	}
	r = PQexec(db, "SELECT coalesce(max(version), 0) FROM vmail_meta.migrations");
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_error(db, r, "cannot read the schema version", err, errlen);
		PQclear(r);
		return false;
	}
	*version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return true;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(MIGRATE_MAX_FILE + 1);
	size_t n = buf ? fread(buf, 1, MIGRATE_MAX_FILE + 1, f) : 0;
	bool bad = !buf || ferror(f) || n > MIGRATE_MAX_FILE || memchr(buf, '\0', n);
	if (bad) {
		snprintf(err, errlen, "%s: %s", path,
			 !buf ? "out of memory" : ferror(f) ? strerror(errno) : n > MIGRATE_MAX_FILE ? "too large" : "contains a NUL byte");
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

static void sha256_hex(const char *s, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	sodium_bin2hex(out, 65, h, sizeof(h));
}

bool migrate_checksum(const char *path, char out[65], char *err, size_t errlen)
{
	char *sql = read_file(path, err, errlen);
	if (!sql)
		return false;
	sha256_hex(sql, out);
	free(sql);
	return true;
}

/* 1-based line of a character offset (PostgreSQL's error position counts characters). */
static unsigned line_of(const char *sql, const char *pos)
{
	long want = pos ? atol(pos) : 0;
	unsigned line = 1;
	long chars = 0;
	for (const unsigned char *p = (const unsigned char *)sql; *p && chars + 1 < want; p++) {
		if ((*p & 0xC0) != 0x80)
			chars++;
		if (*p == '\n')
			line++;
	}
	return line;
}

/* How a failure of step s reads: which file, and its line when PostgreSQL says where. */
static void step_error(const struct migrate_step *s, const char *sql, const PGresult *r, PGconn *db,
		       char *err, size_t errlen)
{
	const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
	const char *what = s->kind == MIGRATE_VERSIONED ? "migration" : "definition file";
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", m ? m : PQerrorMessage(db));
	for (char *c = msg; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (pos)
		snprintf(err, errlen, "%s %s failed at line %u: %s", what, s->name, line_of(sql, pos), msg);
	else
		snprintf(err, errlen, "%s %s failed: %s", what, s->name, msg);
}

/* Run one file of the plan inside the open transaction. */
static bool run_item(PGconn *db, const struct migrate_plan_item *it, char *err, size_t errlen)
{
	const struct migrate_step *s = it->step;
	char *sql = read_file(s->path, err, errlen);
	if (!sql)
		return false;
	char sum[65];
	sha256_hex(sql, sum);
	bool ok = strcmp(sum, it->checksum) == 0;
	if (!ok)
		snprintf(err, errlen, "%s changed while being applied", s->path);
	if (ok) {
		/* Simple-query protocol: the file may hold many statements. */
		PGresult *r = PQexec(db, sql);
		ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			step_error(s, sql, r, db, err, errlen);
			ok = false;
		} else if (PQtransactionStatus(db) != PQTRANS_INTRANS) {
			snprintf(err, errlen, "%s %s ended its own transaction; schema files must not contain BEGIN/COMMIT",
				 s->kind == MIGRATE_VERSIONED ? "migration" : "definition file", s->name);
			ok = false;
		}
		PQclear(r);
	}
	free(sql);
	return ok;
}

static bool record_item(PGconn *db, const struct migrate_plan_item *it, const char *actor, char *err,
			size_t errlen)
{
	const struct migrate_step *s = it->step;
	char ver[16];
	snprintf(ver, sizeof(ver), "%d", s->version);
	const char *pv[] = { ver, s->name, it->checksum, actor };
	const char *pd[] = { s->name, it->checksum, actor };
	PGresult *r = s->kind == MIGRATE_VERSIONED
			      ? PQexecParams(db,
					     "INSERT INTO vmail_meta.migrations (version, name, checksum, applied_by) "
					     "VALUES ($1::int, $2, $3, $4)",
					     4, NULL, pv, NULL, NULL, 0)
			      : PQexecParams(db,
					     "INSERT INTO vmail_meta.repeatables (name, checksum, applied_by) "
					     "VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET "
					     "checksum = EXCLUDED.checksum, applied_at = now(), applied_by = EXCLUDED.applied_by",
					     3, NULL, pd, NULL, NULL, 0);
	bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		db_error(db, r, "cannot record the schema change", err, errlen);
	PQclear(r);
	return ok;
}

void migrate_db_state_free(struct migrate_db_state *st)
{
	for (size_t i = 0; i < st->ndefs; i++) {
		free(st->defs[i].name);
		free(st->defs[i].checksum);
	}
	free(st->defs);
	free(st->versions);
	*st = (struct migrate_db_state){ 0 };
}

static bool read_db_state(PGconn *db, struct migrate_db_state *st, char *err, size_t errlen)
{
	*st = (struct migrate_db_state){ 0 };
	PGresult *v = PQexec(db, "SELECT version FROM vmail_meta.migrations ORDER BY version");
	PGresult *d = PQexec(db, "SELECT name, checksum FROM vmail_meta.repeatables ORDER BY name");
	bool ok = v && PQresultStatus(v) == PGRES_TUPLES_OK && d && PQresultStatus(d) == PGRES_TUPLES_OK;
	if (!ok)
		db_error(db, v && PQresultStatus(v) != PGRES_TUPLES_OK ? v : d,
			 "cannot read the schema bookkeeping", err, errlen);
	if (ok) {
		st->versions = calloc((size_t)PQntuples(v) + 1, sizeof(int));
		st->defs = calloc((size_t)PQntuples(d) + 1, sizeof(*st->defs));
		ok = st->versions && st->defs;
	}
	for (int i = 0; ok && i < PQntuples(v); i++)
		st->versions[st->nversions++] = atoi(PQgetvalue(v, i, 0));
	for (int i = 0; ok && i < PQntuples(d); i++) {
		struct migrate_applied_def *a = &st->defs[st->ndefs++];
		a->name = strdup(PQgetvalue(d, i, 0));
		a->checksum = strdup(PQgetvalue(d, i, 1));
		ok = a->name && a->checksum;
	}
	if (!ok && !*err)
		snprintf(err, errlen, "out of memory");
	PQclear(v);
	PQclear(d);
	if (!ok)
		migrate_db_state_free(st);
	return ok;
}

static bool has_version(const struct migrate_db_state *db, int v)
{
	for (size_t i = 0; i < db->nversions; i++)
		if (db->versions[i] == v)
			return true;
	return false;
}

static const char *recorded_sum(const struct migrate_db_state *db, const char *name)
{
	for (size_t i = 0; i < db->ndefs; i++)
		if (strcmp(db->defs[i].name, name) == 0)
			return db->defs[i].checksum;
	return NULL;
}

void migrate_plan_free(struct migrate_plan *plan)
{
	free(plan->items);
	*plan = (struct migrate_plan){ 0 };
}

/* Append s with its checksum; *changed tells whether the database recorded another one. */
static bool plan_add(struct migrate_plan *p, const struct migrate_step *s, const struct migrate_db_state *db,
		     bool *changed, char *err, size_t errlen)
{
	struct migrate_plan_item *it = &p->items[p->count];
	if (!migrate_checksum(s->path, it->checksum, err, errlen))
		return false;
	it->step = s;
	const char *old = s->kind == MIGRATE_VERSIONED ? NULL : recorded_sum(db, s->name);
	*changed = !old || strcmp(old, it->checksum) != 0;
	return true;
}

bool migrate_plan(const struct migrate_set *set, const struct migrate_db_state *db,
		  struct migrate_plan *out, char *err, size_t errlen)
{
	*out = (struct migrate_plan){ 0 };
	int latest = migrate_latest(set);
	int dbmax = db->nversions ? db->versions[db->nversions - 1] : 0;
	if (dbmax > latest) {
		snprintf(err, errlen,
			 "the database schema is at version %d, newer than this vmailctl's migrations "
			 "(latest %d): refusing to touch it; upgrade vmailctl",
			 dbmax, latest);
		return false;
	}
	if (db->nversions && set->count && dbmax < set->steps[0].version) {
		snprintf(err, errlen,
			 "the database schema is at version %d, older than this vmailctl's first migration "
			 "%s: upgrade it to version %d with an earlier vmailctl first",
			 dbmax, set->steps[0].name, set->steps[0].version);
		return false;
	}
	out->items = calloc(set->count + set->ndefs + 1, sizeof(*out->items));
	if (!out->items) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	out->version = dbmax;
	bool changed;
	/* checks first: the migrations' CHECK constraints call them */
	for (size_t i = 0; i < set->ndefs; i++) {
		if (set->defs[i].kind != MIGRATE_CHECKS)
			continue;
		if (!plan_add(out, &set->defs[i], db, &changed, err, errlen))
			goto fail;
		out->count += changed;
	}
	for (size_t i = 0; i < set->count; i++) {
		if (has_version(db, set->steps[i].version))
			continue;
		if (!plan_add(out, &set->steps[i], db, &changed, err, errlen))
			goto fail;
		out->count++;
		out->migrations++;
		out->version = set->steps[i].version;
	}
	for (int kind = MIGRATE_REPEATABLE; kind <= MIGRATE_GRANTS; kind++) {
		for (size_t i = 0; i < set->ndefs; i++) {
			if (set->defs[i].kind != (enum migrate_kind)kind)
				continue;
			if (!plan_add(out, &set->defs[i], db, &changed, err, errlen))
				goto fail;
			/* grants follow any re-created object; repeatables follow any migration */
			bool force = kind == MIGRATE_GRANTS ? out->count > 0 : out->migrations > 0;
			out->count += changed || force;
		}
	}
	out->definitions = (int)out->count - out->migrations;
	return true;
fail:
	migrate_plan_free(out);
	return false;
}

static bool begin_locked(PGconn *db, const char *actor, char *err, size_t errlen)
{
	const char *what = "cannot start the schema transaction";
	if (!exec_ok(db, "BEGIN", what, err, errlen))
		return false;
	/* DDL queues behind the daemons' transactions and everything queues behind it: give up
	 * rather than stall the mail service. */
	if (!exec_ok(db, "SET LOCAL lock_timeout = '" MIGRATE_LOCK_TIMEOUT "'", what, err, errlen))
		return false;
	const char *p[] = { actor };
	PGresult *r = PQexecParams(db, "SELECT set_config('vmail.actor', $1, true)", 1, NULL, p, NULL, NULL, 0);
	bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		db_error(db, r, what, err, errlen);
	PQclear(r);
	return ok && exec_ok(db, "CREATE SCHEMA IF NOT EXISTS vmail_meta", "cannot create schema vmail_meta", err, errlen) &&
	       exec_ok(db,
		       "CREATE TABLE IF NOT EXISTS vmail_meta.migrations ("
		       " version int PRIMARY KEY,"
		       " name text NOT NULL,"
		       " checksum text,"
		       " applied_at timestamptz NOT NULL DEFAULT now(),"
		       " applied_by text NOT NULL DEFAULT session_user)",
		       "cannot create vmail_meta.migrations", err, errlen) &&
	       exec_ok(db,
		       "CREATE TABLE IF NOT EXISTS vmail_meta.repeatables ("
		       " name text PRIMARY KEY,"
		       " checksum text NOT NULL,"
		       " applied_at timestamptz NOT NULL DEFAULT now(),"
		       " applied_by text NOT NULL DEFAULT session_user)",
		       "cannot create vmail_meta.repeatables", err, errlen);
}

static bool run_plan(PGconn *db, const struct migrate_plan *plan, const char *actor, char *err,
		     size_t errlen)
{
	bool bodies_off = false;
	for (size_t i = 0; i < plan->count; i++) {
		const struct migrate_plan_item *it = &plan->items[i];
		/* Functions may call functions of files applied later. */
		if (!bodies_off && it->step->kind != MIGRATE_VERSIONED) {
			if (!exec_ok(db, "SET LOCAL check_function_bodies = off", "cannot set check_function_bodies",
				     err, errlen))
				return false;
			bodies_off = true;
		}
		if (it->step->kind == MIGRATE_VERSIONED && bodies_off) {
			if (!exec_ok(db, "SET LOCAL check_function_bodies = on", "cannot set check_function_bodies",
				     err, errlen))
				return false;
			bodies_off = false;
		}
		if (!run_item(db, it, err, errlen) || !record_item(db, it, actor, err, errlen))
			return false;
	}
	return true;
}

static void report(const struct migrate_plan *plan, FILE *out)
{
	for (size_t i = 0; i < plan->count; i++) {
		const struct migrate_step *s = plan->items[i].step;
		fprintf(out, "applied %.*s\n",
			(int)(strlen(s->name) - (s->kind == MIGRATE_VERSIONED ? 0 : 4)), s->name);
	}
	int m = plan->migrations, d = plan->definitions;
	if (m)
		fprintf(out, "schema upgraded to version %d (%d migration%s and %d definition file%s applied)\n",
			plan->version, m, m == 1 ? "" : "s", d, d == 1 ? "" : "s");
	else if (d)
		fprintf(out, "schema definitions updated at version %d (%d definition file%s applied)\n",
			plan->version, d, d == 1 ? "" : "s");
	else
		fprintf(out, "schema is up to date at version %d\n", plan->version);
}

static bool locked_apply(PGconn *db, const struct migrate_set *set, const char *actor, FILE *out,
			 char *err, size_t errlen)
{
	struct migrate_db_state st = { 0 };
	struct migrate_plan plan = { 0 };
	bool ok = begin_locked(db, actor, err, errlen) && read_db_state(db, &st, err, errlen) &&
		  migrate_plan(set, &st, &plan, err, errlen) && run_plan(db, &plan, actor, err, errlen) &&
		  exec_ok(db, "COMMIT", "cannot commit the schema change", err, errlen);
	if (!ok && PQtransactionStatus(db) != PQTRANS_IDLE)
		PQclear(PQexec(db, "ROLLBACK"));
	if (ok)
		report(&plan, out);
	migrate_plan_free(&plan);
	migrate_db_state_free(&st);
	return ok;
}

bool migrate_apply(PGconn *db, const struct migrate_set *set, const char *actor, FILE *out,
		   char *err, size_t errlen)
{
	PGresult *r = PQexec(db, "SELECT pg_try_advisory_lock(" LOCK_KEY ")");
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_error(db, r, "cannot take the migration lock", err, errlen);
		PQclear(r);
		return false;
	}
	bool got = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!got) {
		fprintf(out, "waiting for another migration to finish...\n");
		fflush(out);
		if (!exec_ok(db, "SELECT pg_advisory_lock(" LOCK_KEY ")", "cannot take the migration lock",
			     err, errlen))
			return false;
	}
	*err = '\0';
	bool ok = locked_apply(db, set, actor, out, err, errlen);
	PQclear(PQexec(db, "SELECT pg_advisory_unlock(" LOCK_KEY ")"));
	return ok;
}
