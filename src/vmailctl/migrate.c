/* migrate: finding schema migrations on disk and applying the missing ones, one transaction each. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define MIGRATE_MAX_FILE (16 * 1024 * 1024)
/* "vmailmig": one fixed key, so every vmailctl of every version queues on the same lock. */
#define LOCK_KEY "8533742014036830567"

static bool parse_name(const char *fname, int *version)
{
	size_t len = strlen(fname);
	if (len < 6 || strcmp(fname + len - 4, ".sql") != 0)
		return false;
	size_t d = strspn(fname, "0123456789");
	if (d == 0 || d > 9 || fname[d] != '_' || d + 1 >= len - 4)
		return false;
	for (size_t i = d + 1; i < len - 4; i++) {
		char c = fname[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	*version = atoi(fname);
	return *version > 0;
}

static int cmp_step(const void *a, const void *b)
{
	const struct migrate_step *x = a, *y = b;
	return (x->version > y->version) - (x->version < y->version);
}

void migrate_set_free(struct migrate_set *set)
{
	for (size_t i = 0; i < set->count; i++) {
		free(set->steps[i].name);
		free(set->steps[i].path);
	}
	free(set->steps);
	set->steps = NULL;
	set->count = 0;
}

bool migrate_scan(const char *dir, struct migrate_set *out, char *err, size_t errlen)
{
	out->steps = NULL;
	out->count = 0;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "cannot read schema directory %s: %s", dir, strerror(errno));
		return false;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		int v;
		if (!parse_name(de->d_name, &v))
			continue;
		struct migrate_step *grown = realloc(out->steps, (out->count + 1) * sizeof(*grown));
		if (!grown)
			goto oom;
		out->steps = grown;
		struct migrate_step *s = &out->steps[out->count];
		size_t plen = strlen(dir) + strlen(de->d_name) + 2;
		s->version = v;
		s->name = strndup(de->d_name, strlen(de->d_name) - 4);
		s->path = malloc(plen);
		out->count++;
		if (!s->name || !s->path)
			goto oom;
		snprintf(s->path, plen, "%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (out->count == 0) {
		snprintf(err, errlen, "no migrations (NNN_name.sql) in schema directory %s", dir);
		return false;
	}
	qsort(out->steps, out->count, sizeof(*out->steps), cmp_step);
	for (size_t i = 1; i < out->count; i++) {
		if (out->steps[i].version == out->steps[i - 1].version) {
			snprintf(err, errlen, "schema directory %s: %s and %s have the same version %d", dir,
				 out->steps[i - 1].name, out->steps[i].name, out->steps[i].version);
			migrate_set_free(out);
			return false;
		}
	}
	return true;
oom:
	closedir(d);
	migrate_set_free(out);
	snprintf(err, errlen, "out of memory");
	return false;
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

static bool apply_step(PGconn *db, const struct migrate_step *s, const char *actor, char *err,
		       size_t errlen)
{
	char *sql = read_file(s->path, err, errlen);
	if (!sql)
		return false;
	char sum[65], ver[16], what[160];
	sha256_hex(sql, sum);
	snprintf(ver, sizeof(ver), "%d", s->version);
	snprintf(what, sizeof(what), "migration %s failed", s->name);
	bool ok = exec_ok(db, "BEGIN", what, err, errlen);
	if (ok) {
		const char *p[] = { actor };
		PGresult *r = PQexecParams(db, "SELECT set_config('vmail.actor', $1, true)", 1, NULL, p,
					   NULL, NULL, 0);
		ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
			db_error(db, r, what, err, errlen);
		PQclear(r);
	}
	if (ok) {
		/* Simple-query protocol: the file may hold many statements. */
		PGresult *r = PQexec(db, sql);
		ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
			const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
			char msg[512];
			snprintf(msg, sizeof(msg), "%s", m ? m : PQerrorMessage(db));
			for (char *c = msg; *c; c++)
				if (*c == '\n')
					*c = ' ';
			if (pos)
				snprintf(err, errlen, "migration %s failed at line %u: %s", s->name,
					 line_of(sql, pos), msg);
			else
				snprintf(err, errlen, "migration %s failed: %s", s->name, msg);
			ok = false;
		} else if (PQtransactionStatus(db) != PQTRANS_INTRANS) {
			snprintf(err, errlen,
				 "migration %s ended its own transaction; migrations must not contain "
				 "BEGIN/COMMIT",
				 s->name);
			ok = false;
		}
		PQclear(r);
	}
	if (ok) {
		const char *p[] = { ver, s->name, sum, actor };
		PGresult *r = PQexecParams(db,
					   "INSERT INTO vmail_meta.migrations (version, name, checksum, applied_by) "
					   "VALUES ($1::int, $2, $3, $4)",
					   4, NULL, p, NULL, NULL, 0);
		ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			db_error(db, r, what, err, errlen);
		PQclear(r);
	}
	if (ok)
		ok = exec_ok(db, "COMMIT", what, err, errlen);
	if (!ok && PQtransactionStatus(db) != PQTRANS_IDLE)
		PQclear(PQexec(db, "ROLLBACK"));
	free(sql);
	return ok;
}

static bool applied_versions(PGconn *db, int **out, int *n, char *err, size_t errlen)
{
	PGresult *r = PQexec(db, "SELECT version FROM vmail_meta.migrations ORDER BY version");
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_error(db, r, "cannot read vmail_meta.migrations", err, errlen);
		PQclear(r);
		return false;
	}
	*n = PQntuples(r);
	*out = calloc((size_t)*n + 1, sizeof(int));
	if (!*out) {
		PQclear(r);
		snprintf(err, errlen, "out of memory");
		return false;
	}
	for (int i = 0; i < *n; i++)
		(*out)[i] = atoi(PQgetvalue(r, i, 0));
	PQclear(r);
	return true;
}

static bool contains(const int *v, int n, int x)
{
	for (int i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static bool locked_apply(PGconn *db, const struct migrate_set *set, const char *actor, FILE *out,
			 char *err, size_t errlen)
{
	if (!exec_ok(db, "CREATE SCHEMA IF NOT EXISTS vmail_meta", "cannot create schema vmail_meta", err,
		     errlen) ||
	    !exec_ok(db,
		     "CREATE TABLE IF NOT EXISTS vmail_meta.migrations ("
		     " version int PRIMARY KEY,"
		     " name text NOT NULL,"
		     " checksum text,"
		     " applied_at timestamptz NOT NULL DEFAULT now(),"
		     " applied_by text NOT NULL DEFAULT session_user)",
		     "cannot create vmail_meta.migrations", err, errlen))
		return false;
	int *done = NULL, ndone = 0;
	if (!applied_versions(db, &done, &ndone, err, errlen))
		return false;
	int latest = migrate_latest(set);
	int dbmax = ndone ? done[ndone - 1] : 0;
	if (dbmax > latest) {
		snprintf(err, errlen,
			 "the database schema is at version %d, newer than this vmailctl's migrations "
			 "(latest %d): refusing to touch it; upgrade vmailctl",
			 dbmax, latest);
		free(done);
		return false;
	}
	int applied = 0;
	bool ok = true;
	for (size_t i = 0; i < set->count && ok; i++) {
		const struct migrate_step *s = &set->steps[i];
		if (contains(done, ndone, s->version))
			continue;
		ok = apply_step(db, s, actor, err, errlen);
		if (ok) {
			fprintf(out, "applied %s\n", s->name);
			applied++;
		}
	}
	free(done);
	if (!ok)
		return false;
	if (applied)
		fprintf(out, "schema upgraded to version %d (%d migration%s applied)\n", latest, applied,
			applied == 1 ? "" : "s");
	else
		fprintf(out, "schema is up to date at version %d\n", dbmax);
	return true;
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
	bool ok = locked_apply(db, set, actor, out, err, errlen);
	PQclear(PQexec(db, "SELECT pg_advisory_unlock(" LOCK_KEY ")"));
	return ok;
}
