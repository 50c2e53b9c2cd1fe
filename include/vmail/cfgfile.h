/* cfgfile: the "key = value" configuration file format, parsed without I/O. */
#ifndef VMAIL_CFGFILE_H
#define VMAIL_CFGFILE_H

#include <stdbool.h>
#include <stddef.h>

#define CFGFILE_MAX_SIZE (256 * 1024) /* whole file */
#define CFGFILE_MAX_LINE 4096         /* one line, without its newline */
#define CFGFILE_MAX_KEYS 256

struct cfgfile_entry {
	char *key;
	char *value;
	unsigned line;
	bool used; /* set by cfgfile_get, so callers can report unknown keys */
};

struct cfgfile {
	struct cfgfile_entry *entries;
	size_t count;
};

/*
 * cfgfile_parse - parse a whole file image: blank lines, "# comment" lines and
 * "key = value" lines (key: [a-z0-9_]+; value trimmed; may be empty).  Duplicate
 * keys, NUL bytes, over-long lines and files over the limits are errors.  On
 * error returns false with "line N: what" in err and leaves *out empty.
 */
bool cfgfile_parse(const char *buf, size_t len, struct cfgfile *out, char *err, size_t errlen);
/* cfgfile_load - read path (bounded by CFGFILE_MAX_SIZE) and parse it */
bool cfgfile_load(const char *path, struct cfgfile *out, char *err, size_t errlen);
/* cfgfile_find - the entry for key (its value and line) or NULL; marks it used */
const struct cfgfile_entry *cfgfile_find(struct cfgfile *cf, const char *key);
/* cfgfile_get - value for key or NULL; marks the entry used */
const char *cfgfile_get(struct cfgfile *cf, const char *key);
/* cfgfile_first_unused - first entry never asked for, or NULL */
const struct cfgfile_entry *cfgfile_first_unused(const struct cfgfile *cf);
void cfgfile_free(struct cfgfile *cf);

/*
 * A program's typed configuration is filled from the parsed file by an apply
 * function (its declarative key table); these two run the parser or the
 * bounded reader, then apply, and prefix errors with the file name.
 */
typedef bool cfgfile_apply_fn(struct cfgfile *cf, void *out, char *err, size_t errlen);
bool cfgfile_parse_into(const char *buf, size_t len, cfgfile_apply_fn *apply, void *out, char *err,
			size_t errlen);
bool cfgfile_load_into(const char *path, cfgfile_apply_fn *apply, void *out, char *err,
		       size_t errlen);

#endif
