/* test_lookup_cache: the per-kind policy, key folding and what each invalidation payload drops. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmail/log.h"
#include "lookup_cache.h"
#include "check_main.h"

static const struct lookup_cache_config cfg = {
	.size = 1 << 20, .ttl_ms = 300000, .negative_ttl_ms = 10000, .stale_ttl_ms = 3600000,
};

static void put(enum lookup_kind kind, const char *key, const char *value)
{
	char ck[LOOKUP_KEY_MAX];
	ck_assert(lookup_cache_key(key, strlen(key), ck));
	lookup_cache_put(kind, ck, strlen(key), value ? LOOKUP_FOUND : LOOKUP_NOTFOUND, value,
			 value ? strlen(value) : 0, 1000);
}

static bool cached(enum lookup_kind kind, const char *key)
{
	char ck[LOOKUP_KEY_MAX];
	struct cache_answer a;
	ck_assert(lookup_cache_key(key, strlen(key), ck));
	return lookup_cache_get(kind, ck, strlen(key), 2000, false, &a) == CACHE_FRESH;
}

static void setup(void)
{
	log_init("test", false, LOG_LEVEL_ERROR);
	ck_assert(lookup_cache_configure(&cfg));
	lookup_cache_set_live(true);
	put(LOOKUP_DOMAIN, "acme.pl", "acme.pl");
	put(LOOKUP_DOMAIN, "other.pl", "other.pl");
	put(LOOKUP_ALIAS, "Info@ACME.pl", "biuro@acme.pl");
	put(LOOKUP_ALIAS, "info+x@acme.pl", "biuro+x@acme.pl");
	put(LOOKUP_MAILBOX, "biuro@acme.pl", "biuro@acme.pl");
	put(LOOKUP_SENDER, "biuro@acme.pl", "biuro@acme.pl,jan");
	put(LOOKUP_ALIAS, "nobody@acme.pl", NULL);
	put(LOOKUP_ALIAS, "info@other.pl", "x@acme.pl");
	put(LOOKUP_ALIAS, "a@sub.acme.pl", "x@acme.pl");
	put(LOOKUP_PASSDB, "biuro@acme.pl", "{}");
	put(LOOKUP_USERDB, "biuro@acme.pl", "{}");
	put(LOOKUP_PASSDB, "jan", "{}");
}

static void teardown(void)
{
	lookup_cache_set_live(false);
	lookup_cache_close();
}

/* One payload, then which of the entries above are still there. */
static const struct {
	const char *payload;
	enum lookup_kind kind;
	const char *key;
	bool kept;
} rows[] = {
	{ "domain acme.pl", LOOKUP_DOMAIN, "acme.pl", false },
	{ "domain acme.pl", LOOKUP_DOMAIN, "other.pl", true },
	{ "domain acme.pl", LOOKUP_ALIAS, "info@acme.pl", false },   /* folded key */
	{ "domain acme.pl", LOOKUP_ALIAS, "info+x@acme.pl", false }, /* sub-address */
	{ "domain acme.pl", LOOKUP_ALIAS, "nobody@acme.pl", false }, /* negative */
	{ "domain acme.pl", LOOKUP_MAILBOX, "biuro@acme.pl", false },
	{ "domain acme.pl", LOOKUP_SENDER, "biuro@acme.pl", false },
	{ "domain acme.pl", LOOKUP_ALIAS, "info@other.pl", true },   /* answer in acme.pl: key is not */
	{ "domain acme.pl", LOOKUP_ALIAS, "a@sub.acme.pl", true },   /* another domain */
	{ "domain acme.pl", LOOKUP_PASSDB, "biuro@acme.pl", true },
	{ "domain ACME.PL", LOOKUP_ALIAS, "info@acme.pl", false },
	{ "login biuro@acme.pl", LOOKUP_PASSDB, "biuro@acme.pl", false },
	{ "login biuro@acme.pl", LOOKUP_USERDB, "biuro@acme.pl", false },
	{ "login biuro@acme.pl", LOOKUP_PASSDB, "jan", true },
	{ "login biuro@acme.pl", LOOKUP_MAILBOX, "biuro@acme.pl", true },
	{ "kind alias", LOOKUP_ALIAS, "info@other.pl", false },
	{ "kind alias", LOOKUP_MAILBOX, "biuro@acme.pl", true },
	{ "kind quota_get", LOOKUP_ALIAS, "info@other.pl", true },   /* not cached: nothing */
	{ "all", LOOKUP_PASSDB, "jan", false },
	{ "all", LOOKUP_DOMAIN, "other.pl", false },
	{ "frobnicate x", LOOKUP_DOMAIN, "other.pl", false },       /* unknown: everything */
	{ "domain", LOOKUP_DOMAIN, "other.pl", false },             /* malformed: everything */
};

START_TEST(payloads)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_msg(cached(rows[i].kind, rows[i].key), "row %zu: %s not cached before", i,
			      rows[i].key);
	uint64_t epoch = lookup_cache_epoch();
	lookup_cache_invalidate(rows[_i].payload, strlen(rows[_i].payload));
	ck_assert_uint_gt(lookup_cache_epoch(), epoch);
	ck_assert_msg(cached(rows[_i].kind, rows[_i].key) == rows[_i].kept, "%s: %s %s",
		      rows[_i].payload, lookup_kind_name(rows[_i].kind), rows[_i].key);
}
END_TEST

START_TEST(policy)
{
	ck_assert(lookup_cache_kind_cached(LOOKUP_ALIAS) && lookup_cache_kind_stale_ok(LOOKUP_ALIAS));
	ck_assert(lookup_cache_kind_cached(LOOKUP_USERDB) && lookup_cache_kind_stale_ok(LOOKUP_USERDB));
	ck_assert(lookup_cache_kind_cached(LOOKUP_PASSDB) && !lookup_cache_kind_stale_ok(LOOKUP_PASSDB));
	ck_assert(!lookup_cache_kind_cached(LOOKUP_QUOTA_GET));
	ck_assert(!lookup_cache_kind_cached(LOOKUP_POLICY));
	ck_assert(!lookup_cache_kind_cached(LOOKUP_USERDB_LIST));
	/* a changed forwarding or vacation rule applies to the very next delivery */
	ck_assert(!lookup_cache_kind_cached(LOOKUP_DICT_SIEVE_GET));
	ck_assert(!lookup_cache_kind_cached(LOOKUP_DICT_QUOTA_GET));
	char ck[LOOKUP_KEY_MAX];
	ck_assert(!lookup_cache_key("zo\xc5\xbc@acme.pl", 9, ck)); /* non-ASCII: not cached */
	/* errors are never stored; a stale positive is served only with allow_stale */
	char key[] = "err@acme.pl";
	lookup_cache_put(LOOKUP_ALIAS, key, strlen(key), LOOKUP_TEMPFAIL, NULL, 0, 1000);
	struct cache_answer a;
	ck_assert_int_eq(lookup_cache_get(LOOKUP_ALIAS, key, strlen(key), 1001, true, &a), CACHE_MISS);
	char ik[] = "info@acme.pl";
	ck_assert_int_eq(lookup_cache_get(LOOKUP_ALIAS, ik, strlen(ik), 1000 + 400000, false, &a),
			 CACHE_MISS);
	put(LOOKUP_ALIAS, "info@acme.pl", "biuro@acme.pl");
	ck_assert_int_eq(lookup_cache_get(LOOKUP_ALIAS, ik, strlen(ik), 1000 + 400000, true, &a),
			 CACHE_STALE);
	put(LOOKUP_PASSDB, "jan", "{}");
	ck_assert_int_eq(lookup_cache_get(LOOKUP_PASSDB, "jan", 3, 1000 + 400000, true, &a),
			 CACHE_MISS);
	/* the feed coming back empties the cache */
	put(LOOKUP_PASSDB, "jan", "{}");
	lookup_cache_set_live(false);
	ck_assert(cached(LOOKUP_PASSDB, "jan"));
	lookup_cache_set_live(true);
	ck_assert(!cached(LOOKUP_PASSDB, "jan"));
}
END_TEST

/* ---------------------------------------------------------------- floods */

/*
 * Any database role can NOTIFY vmail_cache.  A burst (the notifications of
 * one read of the feed) costs at most one walk of the cache or one flush, and
 * logs at most one line; bursts of one are rate-limited in the log.
 */
#define FLOOD 10000

static int saved_stderr = -1;
static FILE *captured;

/* capture_begin - stderr (where the log goes) into a temporary file, at info level */
static void capture_begin(void)
{
	fflush(stderr);
	captured = tmpfile();
	ck_assert_ptr_nonnull(captured);
	saved_stderr = dup(2);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fileno(captured), 2), 0);
	log_set_level(LOG_LEVEL_INFO);
}

/* capture_end - stderr back; the number of lines logged meanwhile */
static unsigned capture_end(void)
{
	fflush(stderr);
	log_set_level(LOG_LEVEL_ERROR);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	rewind(captured);
	unsigned lines = 0;
	char buf[4096];
	while (fgets(buf, sizeof(buf), captured)) {
		lines++;
		if (lines <= 3)
			fprintf(stderr, "  logged: %s", buf);
	}
	fclose(captured);
	return lines;
}

struct flood_cost {
	uint64_t walks, flushes;
	unsigned lines;
};

static void cost_begin(struct flood_cost *c)
{
	struct lookup_cache_stats st;
	lookup_cache_stats(&st);
	c->walks = st.cache.walks;
	c->flushes = st.flushes;
	capture_begin();
}

static void cost_end(struct flood_cost *c, const char *what)
{
	c->lines = capture_end();
	struct lookup_cache_stats st;
	lookup_cache_stats(&st);
	c->walks = st.cache.walks - c->walks;
	c->flushes = st.flushes - c->flushes;
	printf("%s: %llu walks, %llu flushes, %u log lines\n", what, (unsigned long long)c->walks,
	       (unsigned long long)c->flushes, c->lines);
	fflush(stdout);
}

/* flood_payloads - FLOOD payloads: prefix, then a counter when numbered ("d7.example" and so on) */
static void flood_payloads(const char *prefix, bool numbered, bool bracket)
{
	char p[64];
	if (bracket)
		lookup_cache_burst_begin();
	for (unsigned i = 0; i < FLOOD; i++) {
		int n = numbered ? snprintf(p, sizeof(p), "%s%u.example", prefix, i)
				 : snprintf(p, sizeof(p), "%s", prefix);
		lookup_cache_invalidate(p, (size_t)n);
	}
	if (bracket)
		lookup_cache_burst_end();
}

/* Many domains at once: the cache is emptied once, instead of one walk per payload. */
START_TEST(flood_domains)
{
	struct flood_cost c;
	cost_begin(&c);
	flood_payloads("domain d", true, true);
	cost_end(&c, "burst of 10000 domain payloads");
	ck_assert_uint_le(c.walks + c.flushes, 1);
	ck_assert_uint_le(c.lines, 1);
	ck_assert(!cached(LOOKUP_ALIAS, "info@acme.pl"));
}
END_TEST

/* The same domain many times, with a few others: one walk, and only those domains go. */
START_TEST(flood_one_domain)
{
	struct flood_cost c;
	cost_begin(&c);
	lookup_cache_burst_begin();
	flood_payloads("domain acme.pl", false, false);
	lookup_cache_invalidate("domain x.example", 16);
	lookup_cache_invalidate("login jan", 9);
	lookup_cache_burst_end();
	cost_end(&c, "burst of 10000 times one domain");
	ck_assert_uint_le(c.walks, 1);
	ck_assert_uint_eq(c.flushes, 0);
	ck_assert_uint_le(c.lines, 1);
	ck_assert(!cached(LOOKUP_ALIAS, "info@acme.pl"));
	ck_assert(!cached(LOOKUP_DOMAIN, "acme.pl"));
	ck_assert(!cached(LOOKUP_PASSDB, "jan"));
	ck_assert(cached(LOOKUP_ALIAS, "info@other.pl"));
	ck_assert(cached(LOOKUP_PASSDB, "biuro@acme.pl"));
}
END_TEST

/* Unknown payloads at once: one flush, one line. */
START_TEST(flood_unknown)
{
	struct flood_cost c;
	cost_begin(&c);
	flood_payloads("frobnicate ", true, true);
	cost_end(&c, "burst of 10000 unknown payloads");
	ck_assert_uint_eq(c.flushes, 1);
	ck_assert_uint_eq(c.walks, 0);
	ck_assert_uint_le(c.lines, 1);
	ck_assert(!cached(LOOKUP_PASSDB, "jan"));
}
END_TEST

/* Unknown payloads one per burst: each empties the cache, but the log is rate-limited. */
START_TEST(flood_unknown_apart)
{
	struct flood_cost c;
	cost_begin(&c);
	flood_payloads("frobnicate ", true, false);
	cost_end(&c, "10000 bursts of one unknown payload");
	ck_assert_uint_eq(c.walks, 0);
	ck_assert_uint_le(c.lines, 2); /* one per minute, and this takes well under one */
}
END_TEST

static Suite *lookup_cache_suite(void)
{
	Suite *s = suite_create("lookup_cache");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, payloads, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, policy);
	tcase_add_test(tc, flood_domains);
	tcase_add_test(tc, flood_one_domain);
	tcase_add_test(tc, flood_unknown);
	tcase_add_test(tc, flood_unknown_apart);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(lookup_cache_suite)
