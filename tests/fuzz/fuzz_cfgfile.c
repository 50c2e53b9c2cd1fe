/* fuzz_cfgfile: the "key = value" file parser, a format round trip, and vmaild's conftab table on top. */
#include "vmail/cfgfile.h"
#include "vmail/config.h"
#include "vmail/conftab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static char image[CFGFILE_MAX_SIZE + CFGFILE_MAX_KEYS * 8];

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* check_err - a failure leaves *out empty and says why, within the buffer */
static void check_err(const struct cfgfile *cf, const char *err, size_t errlen)
{
	CHECK(cf->count == 0 && cf->entries == NULL);
	CHECK(err[0] != '\0');
	CHECK(strnlen(err, errlen) < errlen);
}

/* check_entries - what a successful parse promises about every entry */
static void check_entries(const struct cfgfile *cf, size_t size, const char *buf)
{
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += buf[i] == '\n';
	CHECK(cf->count <= CFGFILE_MAX_KEYS);
	for (size_t i = 0; i < cf->count; i++) {
		const struct cfgfile_entry *e = &cf->entries[i];
		size_t klen = strlen(e->key), vlen = strlen(e->value);
		CHECK(klen > 0 && klen <= CFGFILE_MAX_LINE);
		for (size_t k = 0; k < klen; k++)
			CHECK(is_key_char(e->key[k]));
		CHECK(vlen <= CFGFILE_MAX_LINE);
		CHECK(!memchr(e->value, '\n', vlen));
		if (vlen)
			CHECK(!is_blank(e->value[0]) && !is_blank(e->value[vlen - 1]));
		CHECK(e->line >= 1 && e->line <= lines);
		CHECK(!e->used);
		if (i)
			CHECK(e->line > cf->entries[i - 1].line);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(cf->entries[j].key, e->key) != 0);
	}
}

/* round_trip - "key = value" lines of the entries parse back to the same entries */
static void round_trip(struct cfgfile *cf)
{
	size_t pos = 0;
	for (size_t i = 0; i < cf->count; i++) {
		int n = snprintf(image + pos, sizeof(image) - pos, "%s = %s\n", cf->entries[i].key,
				 cf->entries[i].value);
		CHECK(n > 0 && (size_t)n < sizeof(image) - pos);
		pos += (size_t)n;
	}
	struct cfgfile again;
	char err[256];
	if (pos > CFGFILE_MAX_SIZE) { /* the added " = " can push a full file over the limit */
		CHECK(!cfgfile_parse(image, pos, &again, err, sizeof(err)));
		return;
	}
	bool ok = cfgfile_parse(image, pos, &again, err, sizeof(err));
	/* A long key plus " = " plus a long value may exceed the line limit; nothing else fails. */
	if (!ok) {
		CHECK(strstr(err, "line too long"));
		return;
	}
	CHECK(again.count == cf->count);
	for (size_t i = 0; i < again.count; i++) {
		CHECK(strcmp(again.entries[i].key, cf->entries[i].key) == 0);
		CHECK(strcmp(again.entries[i].value, cf->entries[i].value) == 0);
		CHECK(again.entries[i].line == i + 1);
	}
	cfgfile_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct cfgfile cf;
	char err[256];

	memset(err, 0, sizeof(err));
	if (!cfgfile_parse(buf, size, &cf, err, sizeof(err))) {
		check_err(&cf, err, sizeof(err));
	} else {
		check_entries(&cf, size, buf);
		for (size_t i = 0; i < cf.count; i++) {
			const char *v = cfgfile_get(&cf, cf.entries[i].key);
			CHECK(v == cf.entries[i].value);
			if (i + 1 < cf.count)
				CHECK(cfgfile_first_unused(&cf) == &cf.entries[i + 1]);
		}
		CHECK(cfgfile_first_unused(&cf) == NULL);
		CHECK(cfgfile_get(&cf, "no such key!") == NULL);
		round_trip(&cf);
		cfgfile_free(&cf);
		CHECK(cf.count == 0 && cf.entries == NULL);
	}
	/* A tiny error buffer still gets a terminated (truncated) message. */
	char small[8];
	memset(small, 'x', sizeof(small));
	if (!cfgfile_parse(buf, size, &cf, small, sizeof(small)))
		CHECK(memchr(small, '\0', sizeof(small)));
	else
		cfgfile_free(&cf);

	/* vmaild's table over the same bytes: values, bounds, endpoints, cross-key rules. */
	struct config cfg;
	memset(err, 0, sizeof(err));
	if (config_parse(buf, size, &cfg, err, sizeof(err))) {
		CHECK(cfg.database && cfg.database[0]);
		const struct conftab *t = config_table();
		for (size_t i = 0; i < t->count; i++) {
			char value[CFGFILE_MAX_LINE + 64];
			conftab_format_value(&t->rows[i], &cfg, value, sizeof(value));
		}
		config_free(&cfg);
	} else {
		CHECK(err[0] != '\0');
		config_free(&cfg); /* documented as safe after a failure */
	}

	/* vmailctl's picked keys of the same table: other keys are never looked at. */
	static const char *const keys[] = { "database", "metrics_listen", "dns_resolv_conf",
					    "dns_nameserver", "dns_timeout", NULL };
	if (cfgfile_parse(buf, size, &cf, err, sizeof(err))) {
		memset(&cfg, 0, sizeof(cfg));
		if (conftab_apply_keys(config_table(), &cf, &cfg, keys, err, sizeof(err))) {
			CHECK(cfg.database && cfg.metrics_listen && cfg.dns_resolv_conf);
			CHECK(cfg.dns_timeout >= 100 && cfg.dns_timeout <= 60000);
			CHECK(cfg.pg_pool_size == 4); /* not picked: its default */
		} else {
			CHECK(strncmp(err, "line ", 5) == 0);
		}
		config_free(&cfg);
		cfgfile_free(&cf);
	}
	return 0;
}
