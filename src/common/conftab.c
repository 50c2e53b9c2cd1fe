/*
 * conftab: the key-table engine.  It owns the value syntax of every type,
 * the bounds check and its wording, defaults, unknown keys, printing and the
 * reload diff, so vmaild.conf and vmail-panel.conf read the same way and a
 * program's table is rows only.
 */
#include "vmail/conftab.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/endpoint.h"
#include "vmail/log.h"
#include "vmail/size.h"

/* Every non-string field is read and written as an unsigned. */
_Static_assert(sizeof(enum log_level) == sizeof(unsigned), "enum size");

/* A spelling of a named value; the first spelling of a value is how it prints. */
struct conftab_name {
	const char *name;
	unsigned value;
};

/* The first two are the bool's own spellings; the rest only with CONFTAB_BOOL_ALIASES. */
static const struct conftab_name bool_names[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 }, { "1", 1 }, { "0", 0 },
};

static const struct conftab_name level_names[] = {
	{ "error", LOG_LEVEL_ERROR },   { "warning", LOG_LEVEL_WARNING },
	{ "notice", LOG_LEVEL_NOTICE }, { "info", LOG_LEVEL_INFO },
	{ "debug", LOG_LEVEL_DEBUG },
};

static const struct conftab_name target_names[] = { { "stderr", 0 }, { "syslog", 1 } };

#define NNAMES(a) (sizeof(a) / sizeof((a)[0]))

/* names_of - the spellings a named type accepts; NULL for the other types */
static const struct conftab_name *names_of(const struct conftab_row *r, size_t *n)
{
	switch (r->type) {
	case CONFTAB_BOOL:
		*n = r->flags & CONFTAB_BOOL_ALIASES ? NNAMES(bool_names) : 2;
		return bool_names;
	case CONFTAB_LOG_LEVEL:
		*n = NNAMES(level_names);
		return level_names;
	case CONFTAB_LOG_TARGET:
		*n = NNAMES(target_names);
		return target_names;
	default:
		*n = 0;
		return NULL;
	}
}

/* Field access by row: the only casts in this file. */
static char **str_field(void *base, const struct conftab_row *r)
{
	return (char **)(void *)((char *)base + r->offset);
}

static unsigned *uint_field(void *base, const struct conftab_row *r)
{
	return (unsigned *)(void *)((char *)base + r->offset);
}

static const void *field_c(const void *base, const struct conftab_row *r)
{
	return (const char *)base + r->offset;
}

static bool is_string(const struct conftab_row *r)
{
	return r->type == CONFTAB_STRING || r->type == CONFTAB_ENDPOINTS;
}

/* parse_number - decimal digits only, no sign, no blanks; stops at the first non-digit */
static bool parse_number(const char *s, unsigned long *out, const char **rest)
{
	unsigned long v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (ULONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	*rest = p;
	return true;
}

bool conftab_parse_duration(const char *s, unsigned long *ms)
{
	unsigned long v;
	const char *unit;
	if (!parse_number(s, &v, &unit))
		return false;
	unsigned long mult;
	if (*unit == '\0' || strcmp(unit, "s") == 0)
		mult = 1000;
	else if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(unit, "h") == 0)
		mult = 3600 * 1000;
	else
		return false;
	if (v > ULONG_MAX / mult)
		return false;
	*ms = v * mult;
	return true;
}

static bool parse_mode(const char *s, unsigned long *mode)
{
	unsigned long v = 0;
	if (*s == '\0' || strlen(s) > 4)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			return false;
		v = v * 8 + (unsigned long)(*p - '0');
	}
	*mode = v;
	return true;
}

static bool parse_name(const struct conftab_name *names, size_t n, const char *s,
		       unsigned long *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].value;
			return true;
		}
	}
	return false;
}

/* name_hint - "expected a, b or c" over the first spelling of each value */
static void name_hint(const struct conftab_name *names, size_t n, char *out, size_t outlen)
{
	const char *shown[NNAMES(bool_names) + NNAMES(level_names)];
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		size_t first = 0;
		while (names[first].value != names[i].value)
			first++;
		if (first == i)
			shown[count++] = names[i].name;
	}
	size_t len = (size_t)snprintf(out, outlen, "expected");
	for (size_t i = 0; i < count && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s",
					i == 0 ? " " : i + 1 == count ? " or " : ", ", shown[i]);
}

static void type_hint(const struct conftab_row *r, char *out, size_t outlen)
{
	const char *hint = "bad value";
	size_t n;
	const struct conftab_name *names = names_of(r, &n);
	if (names) {
		name_hint(names, n, out, outlen);
		return;
	}
	switch (r->type) {
	case CONFTAB_UINT:
		hint = "expected a whole number";
		break;
	case CONFTAB_DURATION:
		hint = "expected a duration such as 500ms, 3s, 2m or 1h";
		break;
	case CONFTAB_SIZE:
		hint = "expected a size such as 65536, 64K, 1M or 1G";
		break;
	case CONFTAB_MODE:
		hint = "expected an octal mode such as 0660";
		break;
	default:
		break;
	}
	snprintf(out, outlen, "%s", hint);
}

/* format_number - a number in the unit its type is written in (bounds and printing) */
static void format_number(const struct conftab_row *r, unsigned long v, char *out, size_t len)
{
	switch (r->type) {
	case CONFTAB_DURATION:
		if (v % 1000 == 0)
			snprintf(out, len, "%lus", v / 1000);
		else
			snprintf(out, len, "%lums", v);
		break;
	case CONFTAB_MODE:
		snprintf(out, len, "%04lo", v);
		break;
	case CONFTAB_SIZE:
		if (v % (1024UL * 1024 * 1024) == 0)
			snprintf(out, len, "%luG", v / (1024UL * 1024 * 1024));
		else if (v % (1024 * 1024) == 0)
			snprintf(out, len, "%luM", v / (1024 * 1024));
		else if (v % 1024 == 0)
			snprintf(out, len, "%luK", v / 1024);
		else
			snprintf(out, len, "%lu", v);
		break;
	default:
		snprintf(out, len, "%lu", v);
		break;
	}
}

static bool set_string(void *base, const struct conftab_row *r, const char *value, char *why,
		       size_t whylen)
{
	if (r->type == CONFTAB_ENDPOINTS) {
		struct endpoint_list eps;
		if (!endpoint_parse_list(value, &eps, why, whylen))
			return false;
		if (eps.count == 0 && (r->flags & CONFTAB_NONEMPTY)) {
			snprintf(why, whylen, "at least one listener is needed");
			return false;
		}
	}
	char *copy = strdup(value);
	if (!copy) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	free(*str_field(base, r));
	*str_field(base, r) = copy;
	return true;
}

/* set_value - parse one value into its field; on error fills why */
static bool set_value(void *base, const struct conftab_row *r, const char *value, char *why,
		      size_t whylen)
{
	unsigned long v = 0;
	const char *rest;
	bool ok = false;
	size_t n;
	const struct conftab_name *names = names_of(r, &n);
	if (is_string(r))
		return set_string(base, r, value, why, whylen);
	if ((r->flags & CONFTAB_EMPTY_UNSET) && value[0] == '\0') {
		*uint_field(base, r) = CONFTAB_UNSET;
		return true;
	}
	switch (r->type) {
	case CONFTAB_STRING:
	case CONFTAB_ENDPOINTS:
		break; /* above */
	case CONFTAB_UINT:
		ok = parse_number(value, &v, &rest) && *rest == '\0';
		break;
	case CONFTAB_DURATION:
		ok = conftab_parse_duration(value, &v);
		break;
	case CONFTAB_SIZE: {
		uint64_t bytes;
		char sizeerr[128];
		ok = size_parse(value, &bytes, sizeerr, sizeof(sizeerr)) && bytes <= ULONG_MAX;
		v = (unsigned long)bytes;
		break;
	}
	case CONFTAB_MODE:
		ok = parse_mode(value, &v);
		break;
	case CONFTAB_BOOL:
	case CONFTAB_LOG_LEVEL:
	case CONFTAB_LOG_TARGET:
		if (!parse_name(names, n, value, &v))
			break;
		*uint_field(base, r) = (unsigned)v;
		return true;
	}
	if (!ok) {
		char hint[160];
		type_hint(r, hint, sizeof(hint));
		snprintf(why, whylen, "\"%.100s\": %s", value, hint);
		return false;
	}
	if (v < r->min || v > r->max || v > UINT32_MAX) {
		char lo[32], hi[32];
		format_number(r, r->min, lo, sizeof(lo));
		format_number(r, r->max, hi, sizeof(hi));
		snprintf(why, whylen, "\"%.100s\" is out of range %s..%s", value, lo, hi);
		return false;
	}
	*uint_field(base, r) = (unsigned)v;
	return true;
}

static bool named(const char *const *keys, const char *name)
{
	for (; *keys; keys++)
		if (strcmp(*keys, name) == 0)
			return true;
	return false;
}

/*
 * apply_row - the file's value (when from_file) or the default, into one
 * field; a required key the file lacks is an error only when strict.
 */
static bool apply_row(const struct conftab_row *r, struct cfgfile *cf, bool from_file, bool strict,
		      void *base, char *err, size_t errlen)
{
	const struct cfgfile_entry *e = from_file ? cfgfile_find(cf, r->name) : NULL;
	const char *value = e ? e->value : r->def;
	char why[300];
	if (!value && strict) {
		snprintf(err, errlen, "%s: required key is missing", r->name);
		return false;
	}
	if (set_value(base, r, value ? value : "", why, sizeof(why)))
		return true;
	if (e)
		snprintf(err, errlen, "line %u: %s: %s", e->line, r->name, why);
	else
		snprintf(err, errlen, "default of %s: %s", r->name, why);
	return false;
}

/* apply - every row; keys NULL: all of them from the file, unknown keys checked */
static bool apply(const struct conftab *t, struct cfgfile *cf, void *base, const char *const *keys,
		  char *err, size_t errlen)
{
	for (size_t i = 0; i < t->count; i++) {
		const struct conftab_row *r = &t->rows[i];
		bool from_file = !keys || named(keys, r->name);
		if (!apply_row(r, cf, from_file, !keys, base, err, errlen))
			goto fail;
	}
	const struct cfgfile_entry *unused = cfgfile_first_unused(cf);
	if (!keys && !t->shared_file && unused) {
		snprintf(err, errlen, "line %u: unknown key \"%.64s\"", unused->line, unused->key);
		goto fail;
	}
	return true;
fail:
	conftab_free(t, base);
	return false;
}

bool conftab_apply(const struct conftab *t, struct cfgfile *cf, void *base, char *err,
		   size_t errlen)
{
	return apply(t, cf, base, NULL, err, errlen);
}

bool conftab_apply_keys(const struct conftab *t, struct cfgfile *cf, void *base,
			const char *const *keys, char *err, size_t errlen)
{
	return apply(t, cf, base, keys, err, errlen);
}

void conftab_free(const struct conftab *t, void *base)
{
	for (size_t i = 0; i < t->count; i++) {
		if (is_string(&t->rows[i])) {
			free(*str_field(base, &t->rows[i]));
			*str_field(base, &t->rows[i]) = NULL;
		}
	}
}

static bool value_equal(const void *a, const void *b, const struct conftab_row *r)
{
	if (is_string(r)) {
		const char *const *x = field_c(a, r), *const *y = field_c(b, r);
		return strcmp(*x, *y) == 0;
	}
	return memcmp(field_c(a, r), field_c(b, r), sizeof(unsigned)) == 0;
}

unsigned conftab_keep_fixed(const struct conftab *t, const void *old, void *fresh,
			    void (*report)(const char *key, void *arg), void *arg)
{
	unsigned changed = 0;
	for (size_t i = 0; i < t->count; i++) {
		const struct conftab_row *r = &t->rows[i];
		if (r->flags & CONFTAB_RELOAD || value_equal(old, fresh, r))
			continue;
		changed++;
		if (report)
			report(r->name, arg);
		if (is_string(r)) {
			char *copy = strdup(*(char *const *)field_c(old, r));
			if (copy) {
				free(*str_field(fresh, r));
				*str_field(fresh, r) = copy;
			}
		} else {
			memcpy(uint_field(fresh, r), field_c(old, r), sizeof(unsigned));
		}
	}
	return changed;
}

void conftab_format_value(const struct conftab_row *r, const void *base, char *out,
			  size_t outlen)
{
	const void *f = field_c(base, r);
	size_t n;
	const struct conftab_name *names = names_of(r, &n);
	switch (r->type) {
	case CONFTAB_STRING:
	case CONFTAB_ENDPOINTS:
		snprintf(out, outlen, "%s", *(char *const *)f);
		return;
	case CONFTAB_BOOL:
	case CONFTAB_LOG_LEVEL:
	case CONFTAB_LOG_TARGET:
		for (size_t i = 0; i < n; i++) {
			if (names[i].value == *(const unsigned *)f) {
				snprintf(out, outlen, "%s", names[i].name);
				return;
			}
		}
		snprintf(out, outlen, "%u", *(const unsigned *)f);
		return;
	default:
		if ((r->flags & CONFTAB_EMPTY_UNSET) && *(const unsigned *)f == CONFTAB_UNSET)
			snprintf(out, outlen, "%s", "");
		else
			format_number(r, *(const unsigned *)f, out, outlen);
		return;
	}
}

void conftab_print(const struct conftab *t, const void *base,
		   void (*line)(const char *text, void *arg), void *arg)
{
	char value[CFGFILE_MAX_LINE + 1], text[CFGFILE_MAX_LINE + 80];
	for (size_t i = 0; i < t->count; i++) {
		const struct conftab_row *r = &t->rows[i];
		conftab_format_value(r, base, value, sizeof(value));
		/* connection strings may hold a password */
		if (r->flags & CONFTAB_HIDDEN)
			snprintf(value, sizeof(value), "(set)");
		else if ((r->flags & CONFTAB_SECRET) && strstr(value, "password"))
			snprintf(value, sizeof(value), "(set; contains a password)");
		snprintf(text, sizeof(text), "%s = %s", r->name, value);
		line(text, arg);
	}
}
