/* ctl_db: "vmailctl db migrate|status" — the schema's version, its definition files and upgrades. */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

static int db_migrate(struct ctl *ctx, const struct ctl_args *a)
{
	(void)a;
	struct migrate_set set;
	char err[1024], actor[96];
	if (!migrate_scan(ctx->schema_dir, &set, err, sizeof(err)))
		return ctl_fail("%s", err);
	snprintf(actor, sizeof(actor), "admin:%s", ctx->os_user);
	bool ok = migrate_apply(ctx->db, &set, actor, stdout, err, sizeof(err));
	migrate_set_free(&set);
	return ok ? CTL_EXIT_OK : ctl_fail("%s", err);
}

/*
 * The definition files (R_*.sql, grants.sql) whose checksum differs from the one recorded in
 * vmail_meta.repeatables: pending[i] for set->defs[i].  A database without that table (made
 * before repeatable files existed) has them all pending.
 */
static bool defs_pending(struct ctl *ctx, const struct migrate_set *set, bool *pending)
{
	for (size_t i = 0; i < set->ndefs; i++)
		pending[i] = true;
	PGresult *t = ctl_exec(ctx, "SELECT to_regclass('vmail_meta.repeatables') IS NOT NULL", 0, NULL);
	if (!t)
		return false;
	bool exists = PQgetvalue(t, 0, 0)[0] == 't';
	PQclear(t);
	if (!exists)
		return true;
	PGresult *r = ctl_exec(ctx, "SELECT name, checksum FROM vmail_meta.repeatables", 0, NULL);
	if (!r)
		return false;
	for (size_t i = 0; i < set->ndefs; i++) {
		char sum[65], err[256];
		if (!migrate_checksum(set->defs[i].path, sum, err, sizeof(err)))
			continue;
		for (int k = 0; k < PQntuples(r); k++)
			if (!strcmp(PQgetvalue(r, k, 0), set->defs[i].name) && !strcmp(PQgetvalue(r, k, 1), sum))
				pending[i] = false;
	}
	PQclear(r);
	return true;
}

static int db_status(struct ctl *ctx, const struct ctl_args *a)
{
	(void)a;
	struct migrate_set set;
	char err[1024];
	if (!migrate_scan(ctx->schema_dir, &set, err, sizeof(err)))
		return ctl_fail("%s", err);
	int dbv;
	if (!migrate_db_version(ctx->db, &dbv, err, sizeof(err))) {
		migrate_set_free(&set);
		return ctl_fail("%s", err);
	}
	PGresult *r = NULL;
	if (dbv >= 0) {
		r = ctl_exec(ctx,
			     "SELECT version, name, checksum, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS'),"
			     " applied_by, to_json(name)::text, to_json(applied_by)::text"
			     " FROM vmail_meta.migrations ORDER BY version",
			     0, NULL);
		if (!r) {
			migrate_set_free(&set);
			return CTL_EXIT_FAIL;
		}
	}
	bool *defs_due = calloc(set.ndefs + 1, sizeof(bool));
	if (!defs_due || (dbv >= 0 && !defs_pending(ctx, &set, defs_due))) {
		free(defs_due);
		PQclear(r);
		migrate_set_free(&set);
		return defs_due ? CTL_EXIT_FAIL : ctl_fail("out of memory");
	}
	int latest = migrate_latest(&set), pending = 0;
	for (size_t i = 0; dbv >= 0 && i < set.ndefs; i++)
		pending += defs_due[i];
	const char *state = dbv < 0 ? "empty" : dbv > latest ? "newer" : "current";
	for (size_t i = 0; i < set.count; i++) {
		bool found = false;
		for (int k = 0; r && k < PQntuples(r); k++)
			found |= atoi(PQgetvalue(r, k, 0)) == set.steps[i].version;
		pending += !found;
	}
	if (pending && strcmp(state, "current") == 0)
		state = "behind";
	/* Text from the table comes JSON-quoted by PostgreSQL; file names are [A-Za-z0-9_-]. */
	if (ctx->json)
		printf("{\"database_version\": %d, \"latest\": %d, \"pending\": %d, \"state\": \"%s\", "
		       "\"applied\": [",
		       dbv < 0 ? 0 : dbv, latest, pending, state);
	else
		printf("database version  %d\nlatest available  %d (%s)\nstate             %s\n\n",
		       dbv < 0 ? 0 : dbv, latest, ctx->schema_dir,
		       !strcmp(state, "empty")	  ? "no schema yet: run \"vmailctl db migrate\""
		       : !strcmp(state, "newer")  ? "database is newer than this vmailctl"
		       : !strcmp(state, "behind") ? "migrations pending: run \"vmailctl db migrate\""
						  : "up to date");
	for (int k = 0; r && k < PQntuples(r); k++) {
		int v = atoi(PQgetvalue(r, k, 0));
		const char *mark = "  (no such file here)";
		/* Versions up to the first file's were folded into that baseline. */
		if (set.count && v < set.steps[0].version)
			mark = "  (part of the baseline)";
		for (size_t i = 0; i < set.count; i++) {
			char sum[65];
			if (set.steps[i].version != v)
				continue;
			if (strcmp(set.steps[i].name, PQgetvalue(r, k, 1)) != 0) {
				mark = "  (part of the baseline)";
				continue;
			}
			/* An edited migration never reaches databases that already applied it. */
			bool same = !PQgetisnull(r, k, 2) &&
				    migrate_checksum(set.steps[i].path, sum, err, sizeof(err)) &&
				    strcmp(sum, PQgetvalue(r, k, 2)) == 0;
			mark = same ? "" : "  (file changed since it was applied)";
		}
		if (ctx->json)
			printf("%s{\"version\": %d, \"name\": %s, \"applied_at\": \"%s\", "
			       "\"applied_by\": %s, \"file\": \"%s\"}",
			       k ? ", " : "", v, PQgetvalue(r, k, 5), PQgetvalue(r, k, 3), PQgetvalue(r, k, 6),
			       !*mark			    ? "same"
			       : strstr(mark, "changed")   ? "changed"
			       : strstr(mark, "baseline") ? "baseline"
							    : "missing");
		else
			printf("applied  %-28s %s  %s%s\n", PQgetvalue(r, k, 1), PQgetvalue(r, k, 3),
			       PQgetvalue(r, k, 4), mark);
	}
	if (ctx->json)
		fputs("], \"pending_steps\": [", stdout);
	int shown = 0;
	for (size_t i = 0; i < set.count; i++) {
		bool found = false;
		for (int k = 0; r && k < PQntuples(r); k++)
			found |= atoi(PQgetvalue(r, k, 0)) == set.steps[i].version;
		if (found)
			continue;
		if (ctx->json)
			printf("%s\"%s\"", shown++ ? ", " : "", set.steps[i].name);
		else
			printf("pending  %s\n", set.steps[i].name);
	}
	for (size_t i = 0; dbv >= 0 && i < set.ndefs; i++) {
		if (!defs_due[i])
			continue;
		if (ctx->json)
			printf("%s\"%s\"", shown++ ? ", " : "", set.defs[i].name);
		else
			printf("pending  %s (new or changed definitions)\n", set.defs[i].name);
	}
	if (ctx->json)
		fputs("]}\n", stdout);
	free(defs_due);
	PQclear(r);
	migrate_set_free(&set);
	return CTL_EXIT_OK;
}

static const struct ctl_verb db_verbs[] = {
	{ "migrate", "", 0, 0, CTL_ADMIN | CTL_NO_SCHEMA, "create or upgrade the schema",
	  "In one transaction: applies R_valid.sql if it changed, each missing\n"
	  "schema/NNN_name.sql in order, each R_<family>.sql whose checksum changed, then\n"
	  "grants.sql, and records them in vmail_meta.  Running it again is a no-op.  A database\n"
	  "whose schema is newer than these migrations is refused.",
	  NULL, db_migrate },
	{ "status", "", 0, 0, CTL_ADMIN | CTL_NO_SCHEMA, "show applied and pending migrations and definitions", NULL, NULL,
	  db_status },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_db = { "db", "the database schema (migrations)", db_verbs, NULL };
