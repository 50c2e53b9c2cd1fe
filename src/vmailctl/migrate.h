/* migrate: the numbered schema migrations (schema/NNN_name.sql) and their bookkeeping in vmail_meta.migrations. */
#ifndef VMAIL_MIGRATE_H
#define VMAIL_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

struct migrate_step {
	int version; /* the NNN of NNN_name.sql */
	char *name;  /* "NNN_name" */
	char *path;
};

struct migrate_set {
	struct migrate_step *steps; /* ascending version */
	size_t count;
};

/*
 * migrate_scan - the files NNN_name.sql (NNN decimal, at least one digit, > 0; name of
 * [A-Za-z0-9_-]) in dir, sorted.  Other files are ignored; two files with one version are
 * an error.  An empty or missing directory is an error too.
 */
bool migrate_scan(const char *dir, struct migrate_set *out, char *err, size_t errlen);
void migrate_set_free(struct migrate_set *set);
/* migrate_latest - the highest version in set, 0 if none */
int migrate_latest(const struct migrate_set *set);

/* migrate_checksum - hex SHA-256 of a migration file, as recorded when it was applied */
bool migrate_checksum(const char *path, char out[65], char *err, size_t errlen);

/*
 * migrate_db_version - highest applied version, or -1 when vmail_meta.migrations does not
 * exist (a database never migrated).  False on a database error.
 */
bool migrate_db_version(PGconn *db, int *version, char *err, size_t errlen);

/*
 * migrate_apply - bring the database up to the latest version in set.  Holds a session
 * advisory lock so two migrators queue instead of racing; creates vmail_meta.migrations;
 * refuses a database newer than set; applies each missing step in its own transaction
 * (BEGIN; file; INSERT bookkeeping; COMMIT) with vmail.actor set to actor.  Reports each
 * step and the outcome on out.  False (with err) on failure; earlier steps stay applied.
 */
bool migrate_apply(PGconn *db, const struct migrate_set *set, const char *actor, FILE *out,
		   char *err, size_t errlen);

#endif
