/* cfgfile: the "key = value" configuration file format (pure parser plus a bounded reader). */
#include "vmail/cfgfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool fail(char *err, size_t errlen, unsigned line, const char *what)
{
	if (line)
		snprintf(err, errlen, "line %u: %s", line, what);
	else
		snprintf(err, errlen, "%s", what);
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool cfgfile_parse(const char *buf, size_t len, struct cfgfile *out, char *err, size_t errlen)
{
	out->entries = NULL;
	out->count = 0;
	if (len > CFGFILE_MAX_SIZE)
		return fail(err, errlen, 0, "file too large");
	if (memchr(buf, '\0', len))
		return fail(err, errlen, 0, "file contains a NUL byte");

	unsigned lineno = 0;
	size_t pos = 0;
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t linelen = nl ? (size_t)(nl - line) : len - pos;
		pos += linelen + (nl ? 1 : 0);
		lineno++;
		if (linelen > CFGFILE_MAX_LINE) {
			cfgfile_free(out);
			return fail(err, errlen, lineno, "line too long");
		}
		size_t b = 0, e = linelen;
		while (b < e && is_space(line[b]))
			b++;
		while (e > b && is_space(line[e - 1]))
			e--;
		if (b == e || line[b] == '#')
			continue;
		size_t k = b;
		while (k < e && is_key_char(line[k]))
			k++;
		if (k == b) {
			cfgfile_free(out);
			return fail(err, errlen, lineno, "expected a key (lowercase letters, digits, _)");
		}
		size_t eq = k;
		while (eq < e && is_space(line[eq]))
			eq++;
		if (eq >= e || line[eq] != '=') {
			cfgfile_free(out);
			return fail(err, errlen, lineno, "expected \"key = value\"");
		}
		size_t v = eq + 1;
		while (v < e && is_space(line[v]))
			v++;
		if (out->count >= CFGFILE_MAX_KEYS) {
			cfgfile_free(out);
			return fail(err, errlen, lineno, "too many keys");
		}
		for (size_t i = 0; i < out->count; i++) {
			if (strlen(out->entries[i].key) == k - b &&
			    memcmp(out->entries[i].key, line + b, k - b) == 0) {
				char msg[160];
				snprintf(msg, sizeof(msg), "duplicate key \"%.64s\" (first on line %u)",
					 out->entries[i].key, out->entries[i].line);
				cfgfile_free(out);
				return fail(err, errlen, lineno, msg);
			}
		}
		struct cfgfile_entry *grown =
			realloc(out->entries, (out->count + 1) * sizeof(*out->entries));
		if (!grown) {
			cfgfile_free(out);
			return fail(err, errlen, lineno, "out of memory");
		}
		out->entries = grown;
		struct cfgfile_entry *ent = &out->entries[out->count];
		ent->key = strndup(line + b, k - b);
		ent->value = strndup(line + v, e - v);
		ent->line = lineno;
		ent->used = false;
		out->count++;
		if (!ent->key || !ent->value) {
			cfgfile_free(out);
			return fail(err, errlen, lineno, "out of memory");
		}
	}
	return true;
}

bool cfgfile_load(const char *path, struct cfgfile *out, char *err, size_t errlen)
{
	out->entries = NULL;
	out->count = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	char *buf = malloc(CFGFILE_MAX_SIZE + 1);
	if (!buf) {
		close(fd);
		return fail(err, errlen, 0, "out of memory");
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, CFGFILE_MAX_SIZE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return false;
		}
		if (n == 0 || (len += (size_t)n) > CFGFILE_MAX_SIZE)
			break;
	}
	close(fd);
	char inner[256];
	bool ok = cfgfile_parse(buf, len, out, inner, sizeof(inner));
	free(buf);
	if (!ok)
		snprintf(err, errlen, "%.200s: %s", path, inner);
	return ok;
}

const struct cfgfile_entry *cfgfile_find(struct cfgfile *cf, const char *key)
{
	for (size_t i = 0; i < cf->count; i++) {
		if (strcmp(cf->entries[i].key, key) == 0) {
			cf->entries[i].used = true;
			return &cf->entries[i];
		}
	}
	return NULL;
}

const char *cfgfile_get(struct cfgfile *cf, const char *key)
{
	const struct cfgfile_entry *e = cfgfile_find(cf, key);
	return e ? e->value : NULL;
}

const struct cfgfile_entry *cfgfile_first_unused(const struct cfgfile *cf)
{
	for (size_t i = 0; i < cf->count; i++)
		if (!cf->entries[i].used)
			return &cf->entries[i];
	return NULL;
}

void cfgfile_free(struct cfgfile *cf)
{
	for (size_t i = 0; i < cf->count; i++) {
		free(cf->entries[i].key);
		free(cf->entries[i].value);
	}
	free(cf->entries);
	cf->entries = NULL;
	cf->count = 0;
}

bool cfgfile_parse_into(const char *buf, size_t len, cfgfile_apply_fn *apply, void *out, char *err,
			size_t errlen)
{
	struct cfgfile cf;
	if (!cfgfile_parse(buf, len, &cf, err, errlen))
		return false;
	bool ok = apply(&cf, out, err, errlen);
	cfgfile_free(&cf);
	return ok;
}

bool cfgfile_load_into(const char *path, cfgfile_apply_fn *apply, void *out, char *err,
		       size_t errlen)
{
	struct cfgfile cf;
	char inner[400];
	if (!cfgfile_load(path, &cf, err, errlen))
		return false;
	bool ok = apply(&cf, out, inner, sizeof(inner));
	cfgfile_free(&cf);
	if (!ok)
		snprintf(err, errlen, "%.200s: %s", path, inner);
	return ok;
}
