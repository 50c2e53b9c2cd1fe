/*
 * migrate: the schema directory (versioned migrations NNN_name.sql, repeatable definition
 * files R_<family>.sql, grants.sql), what a database still needs of it, and applying that in
 * one transaction with its bookkeeping in vmail_meta.
 */
#ifndef VMAIL_MIGRATE_H
#define VMAIL_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

/* The repeatable file holding the functions CHECK constraints use: applied before migrations. */
#define MIGRATE_CHECKS_FILE "R_valid.sql"
/* Roles and privileges: applied last. */
#define MIGRATE_GRANTS_FILE "grants.sql"

enum migrate_kind {
	MIGRATE_CHECKS,	    /* R_valid.sql */
	MIGRATE_VERSIONED,  /* NNN_name.sql, applied once */
	MIGRATE_REPEATABLE, /* R_<family>.sql, applied again whenever it changes */
	MIGRATE_GRANTS,	    /* grants.sql */
};

struct migrate_step {
	enum migrate_kind kind;
	int version; /* the NNN of NNN_name.sql; 0 for the other kinds */
	char *name;  /* "NNN_name" for a migration, the file name for the others */
	char *path;
};

struct migrate_set {
	struct migrate_step *steps; /* versioned migrations, ascending version */
	size_t count;
	struct migrate_step *defs; /* the checks file, the repeatables by name, grants.sql */
	size_t ndefs;
};

/*
 * migrate_scan - the schema files in dir: NNN_name.sql (NNN decimal, at least one digit,
 * > 0; name of [A-Za-z0-9_-]) sorted by version, and R_<family>.sql (same name characters)
 * and grants.sql in the order they are applied.  Other files are ignored; two migrations
 * with one version are an error, and so is a directory without migrations.
 */
bool migrate_scan(const char *dir, struct migrate_set *out, char *err, size_t errlen);
void migrate_set_free(struct migrate_set *set);
/* migrate_latest - the highest version in set, 0 if none */
int migrate_latest(const struct migrate_set *set);

/* migrate_checksum - hex SHA-256 of a schema file, as recorded when it was applied */
bool migrate_checksum(const char *path, char out[65], char *err, size_t errlen);

/* What vmail_meta says a database has applied. */
struct migrate_applied_def {
	char *name; /* file name */
	char *checksum;
};

struct migrate_db_state {
	int *versions; /* ascending */
	size_t nversions;
	struct migrate_applied_def *defs;
	size_t ndefs;
};

void migrate_db_state_free(struct migrate_db_state *st);

struct migrate_plan_item {
	const struct migrate_step *step;
	char checksum[65];
};

struct migrate_plan {
	struct migrate_plan_item *items; /* in the order they run */
	size_t count;
	int migrations;	 /* versioned items */
	int definitions; /* the other items */
	int version;	 /* the database's version after the plan */
};

/*
 * migrate_plan - what db still needs of set, in order: the checks file if its checksum
 * differs from the recorded one; the missing migrations; each repeatable whose checksum
 * differs (every repeatable when a migration runs, since a migration may have dropped what
 * one defines); grants.sql when it differs or anything else runs.  False (with err) for a
 * database newer than set, for one that predates set's first migration (a baseline it
 * cannot start from) and for unreadable files.
 */
bool migrate_plan(const struct migrate_set *set, const struct migrate_db_state *db,
		  struct migrate_plan *out, char *err, size_t errlen);
void migrate_plan_free(struct migrate_plan *plan);

/*
 * migrate_db_version - highest applied version, or -1 when vmail_meta.migrations does not
 * exist (a database never migrated).  False on a database error.
 */
bool migrate_db_version(PGconn *db, int *version, char *err, size_t errlen);

/*
 * migrate_apply - bring the database up to date with set.  Holds a session advisory lock so
 * two migrators queue instead of racing; then, in one transaction with a lock_timeout and
 * vmail.actor set to actor, creates the bookkeeping tables, plans (migrate_plan), runs the
 * plan's files and records them.  Reports what was applied and the outcome on out, only
 * once committed.  False (with err) on failure; then nothing changed.
 */
bool migrate_apply(PGconn *db, const struct migrate_set *set, const char *actor, FILE *out,
		   char *err, size_t errlen);

#endif
