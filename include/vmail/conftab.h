/* conftab: the one typed key-table engine every program's configuration is written in. */
#ifndef VMAIL_CONFTAB_H
#define VMAIL_CONFTAB_H

#include <stdbool.h>
#include <stddef.h>

#include "vmail/cfgfile.h"

/*
 * A program declares its keys as rows (like Postfix's CONFIG_*_TABLE) over
 * its own settings struct; the engine parses, bounds-checks, prints, frees
 * and diffs them.  Rules that involve more than one key stay with the
 * program.  Every non-string field is an unsigned (or an enum of that size).
 */
enum conftab_type {
	CONFTAB_STRING,
	CONFTAB_ENDPOINTS, /* endpoint list (endpoint.h), stored as its text; "" = off */
	CONFTAB_UINT,
	CONFTAB_DURATION,  /* "250ms", "3s", "2m", "1h"; a bare number is seconds; stored in ms */
	CONFTAB_SIZE,      /* bytes with optional K, M, G (powers of 1024) */
	CONFTAB_MODE,      /* octal file mode */
	CONFTAB_BOOL,      /* yes or no, stored as 1 or 0 */
	CONFTAB_LOG_LEVEL, /* error, warning, notice, info or debug: enum log_level */
	CONFTAB_LOG_TARGET, /* stderr or syslog, stored as 0 or 1 (enum config_log_target) */
};

#define CONFTAB_REQUIRED 0x01u /* no default: the file must set it */
#define CONFTAB_RELOAD   0x02u /* SIGHUP may change it */
#define CONFTAB_NONEMPTY 0x04u /* endpoints: at least one */
#define CONFTAB_SECRET   0x08u /* printed as "(set; contains a password)" when it holds one */
#define CONFTAB_HIDDEN   0x10u /* never printed: "(set)" */
#define CONFTAB_BOOL_ALIASES 0x20u /* a bool that also takes true/false and 1/0 */
#define CONFTAB_EMPTY_UNSET 0x40u /* a number that may be "": stored as CONFTAB_UNSET */

/* The value of an empty CONFTAB_EMPTY_UNSET key: "take it from another key". */
#define CONFTAB_UNSET 0xffffffffu

struct conftab_row {
	const char *name;
	enum conftab_type type;
	size_t offset;     /* into the program's settings struct */
	const char *def;   /* default in file syntax; NULL only with CONFTAB_REQUIRED */
	unsigned long min; /* bounds for numeric types, in the stored unit */
	unsigned long max;
	unsigned flags;
	const char *help;  /* one line, for the docs */
};

struct conftab {
	const struct conftab_row *rows;
	size_t count;
	bool shared_file; /* other programs' keys may be in the file: unknown keys are no error */
};

#define CONFTAB_TABLE(rows, shared) { (rows), sizeof(rows) / sizeof((rows)[0]), (shared) }

/*
 * conftab_apply - fill base from the parsed file: every row gets the file's
 * value or its default, through the same parser.  Fails with "line N: key:
 * why", "default of key: why", "key: required key is missing" or "line N:
 * unknown key \"k\"" (unless shared_file) in err.  base must start zeroed;
 * on failure its strings are freed again (safe to conftab_free).
 */
bool conftab_apply(const struct conftab *t, struct cfgfile *cf, void *base, char *err,
		   size_t errlen);
/*
 * conftab_apply_keys - the same for the keys named in the NULL-terminated
 * list only: other rows hold their defaults ("" for a required string), and
 * the file's other keys are not looked at.  For a program that reads a few
 * keys of another program's file.
 */
bool conftab_apply_keys(const struct conftab *t, struct cfgfile *cf, void *base,
			const char *const *keys, char *err, size_t errlen);
/* conftab_free - free base's strings and set them to NULL */
void conftab_free(const struct conftab *t, void *base);

/*
 * conftab_keep_fixed - for a reload: copy every row without CONFTAB_RELOAD
 * from old into fresh, calling report(key, arg) for each one whose value
 * differed.  Returns how many differed.
 */
unsigned conftab_keep_fixed(const struct conftab *t, const void *old, void *fresh,
			    void (*report)(const char *key, void *arg), void *arg);

/* conftab_format_value - one row's value in file syntax */
void conftab_format_value(const struct conftab_row *r, const void *base, char *out,
			  size_t outlen);
/* conftab_print - the effective settings, one "key = value" per row, secrets masked */
void conftab_print(const struct conftab *t, const void *base,
		   void (*line)(const char *text, void *arg), void *arg);

/* conftab_parse_duration - "500ms", "3s", "2m", "1h", bare = seconds; false on syntax or overflow */
bool conftab_parse_duration(const char *s, unsigned long *ms);

#endif
