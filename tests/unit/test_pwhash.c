/* test_pwhash: each scheme verifies, wrong passwords fail, malformed hashes are refused, rehash decisions. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmail/pwhash.h"
#include "check_main.h"

/* Vectors for password "secret" (openssl passwd -6/-5/-1 -salt saltsalt; python crypt for DES, bcrypt). */
#define SHA512 "{SHA512-CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"
#define SHA256 "{SHA256-CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA"
#define MD5 "{MD5-CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//"
#define BLF "{BLF-CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW"
#define DES "{CRYPT}abNANd1rDfiNc"
#define ARGON2I "{ARGON2I}$argon2i$v=19$m=8,t=3,p=1$dW9JdcPBP7Jf8walt83MAQ$UByKpjJS2xRfT6BY1cDZ05Va6taPW+hnPFa/3SHQa6I"
/* Made at the production (interactive) cost: t=2, m=64 MiB. */
#define ARGON2ID_PROD "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$MRDoSmEA2ucBvIjtSiPAWA$RaL2PrBGKfcEpEaBAL/9GHz77tccqv7LS+gP9eXBS2U"

static void setup(void)
{
	char err[128];
	ck_assert_msg(pwhash_init(err, sizeof(err)), "%s", err);
	ck_assert(pwhash_set_cost("test", err, sizeof(err)));
}

static const struct {
	const char *hash;
	bool rehash_at_test_cost;
} vectors[] = {
	{ SHA512, true },
	{ SHA256, true },
	{ MD5, true },
	{ BLF, true },
	{ DES, true },
	{ ARGON2I, true },
	{ ARGON2ID_PROD, true },
	{ "{sha512-crypt}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", true },
	{ "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", true },
	{ "{SHA512-CRYPT}$6$rounds=5000$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", true },
};

START_TEST(scheme_verifies)
{
	char err[256] = "";
	const char *h = vectors[_i].hash;
	ck_assert_msg(pwhash_validate(h, err, sizeof(err)), "%s: %s", h, err);
	ck_assert_int_eq(pwhash_verify(h, "secret"), PWHASH_MATCH);
	ck_assert_int_eq(pwhash_verify(h, "Secret"), PWHASH_MISMATCH);
	ck_assert_int_eq(pwhash_verify(h, ""), PWHASH_MISMATCH);
	ck_assert_int_eq(pwhash_needs_rehash(h), vectors[_i].rehash_at_test_cost);
}
END_TEST

static const struct {
	const char *hash;
	const char *msg;
} malformed[] = {
	{ "", "{SCHEME} prefix" },
	{ "$6$saltsalt$abc", "{SCHEME} prefix" },
	{ "{PLAIN}secret", "unknown password scheme {PLAIN}" },
	{ "{SSHA}abcd", "unknown password scheme {SSHA}" },
	{ "{SHA512-CRYPT", "{SCHEME} prefix" },
	{ "{SHA512-CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA", "must start with \"$6$\"" },
	{ "{SHA512-CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRst", "hash part must be 86" },
	{ "{SHA512-CRYPT}$6$salt!salt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", "malformed salt" },
	{ "{SHA512-CRYPT}$6$rounds=$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", "rounds" },
	{ "{SHA256-CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5s", "hash part must be 43" },
	{ "{MD5-CRYPT}$1$saltsaltx$9xy1btjgzLYfb7hivXtC//", "malformed salt" },
	{ "{BLF-CRYPT}$2x$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW", "must start with" },
	{ "{BLF-CRYPT}$2b$99$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW", "cost field" },
	{ "{BLF-CRYPT}$2b$03$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW", "cost 3 out of range" },
	{ "{BLF-CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIr", "53 characters" },
	{ "{CRYPT}abNANd1rDfiN", "DES crypt must be 13" },
	{ "{CRYPT}$7$abc", "unsupported crypt format" },
	{ "{ARGON2ID}$argon2i$v=19$m=8,t=3,p=1$dW9JdcPBP7Jf8walt83MAQ$UByKpjJS2xRfT6BY1cDZ05Va6taPW+hnPFa/3SHQa6I", "not a well-formed $argon2id$" },
	{ "{ARGON2ID}$argon2id$v=19$m=65536,t=2$MRDoSmEA2ucBvIjtSiPAWA$RaL2PrBGKfcEpEaBAL/9GHz77tccqv7LS+gP9eXBS2U", "not a well-formed $argon2id$" },
	{ "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$MRDoSmEA2ucBvIjtSiPAWA", "not a well-formed $argon2id$" },
	{ "{ARGON2I}$argon2i$garbage", "not a well-formed $argon2i$" },
};

START_TEST(malformed_refused)
{
	char err[256] = "";
	const char *h = malformed[_i].hash;
	ck_assert_msg(!pwhash_validate(h, err, sizeof(err)), "accepted %s", h);
	ck_assert_msg(strstr(err, malformed[_i].msg), "%s: got \"%s\"", h, err);
	ck_assert_int_eq(pwhash_verify(h, "secret"), PWHASH_ERROR);
	ck_assert(pwhash_needs_rehash(h));
}
END_TEST

START_TEST(new_hash_roundtrip)
{
	char h[PWHASH_MAX], h2[PWHASH_MAX], err[128];
	ck_assert(pwhash_hash("correct horse", h, sizeof(h), err, sizeof(err)));
	ck_assert(strncmp(h, "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$", 37) == 0);
	ck_assert(pwhash_validate(h, err, sizeof(err)));
	ck_assert_int_eq(pwhash_verify(h, "correct horse"), PWHASH_MATCH);
	ck_assert_int_eq(pwhash_verify(h, "correct horsE"), PWHASH_MISMATCH);
	ck_assert(!pwhash_needs_rehash(h));
	/* fresh salt every time */
	ck_assert(pwhash_hash("correct horse", h2, sizeof(h2), err, sizeof(err)));
	ck_assert_str_ne(h, h2);
	/* the same hash is too cheap for production */
	ck_assert(pwhash_set_cost("interactive", err, sizeof(err)));
	ck_assert(pwhash_needs_rehash(h));
	ck_assert(!pwhash_needs_rehash(ARGON2ID_PROD));
	ck_assert(pwhash_set_cost("test", err, sizeof(err)));
}
END_TEST

/* Settings as vmail.hash_setting (R_self.sql) cuts them from the stored hashes. */
static const struct {
	const char *hash, *setting;
} derivable[] = {
	{ SHA512, "{SHA512-CRYPT}$6$saltsalt$" },
	{ SHA256, "{SHA256-CRYPT}$5$saltsalt$" },
	{ MD5, "{MD5-CRYPT}$1$saltsalt$" },
	{ BLF, "{BLF-CRYPT}$2b$04$abcdefghijklmnopqrstuu" },
	{ DES, "{CRYPT}ab" },
	{ ARGON2I, "{ARGON2I}$argon2i$v=19$m=8,t=3,p=1$dW9JdcPBP7Jf8walt83MAQ$" },
	{ ARGON2ID_PROD, "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$MRDoSmEA2ucBvIjtSiPAWA$" },
};

START_TEST(derive_gives_the_stored_string)
{
	char out[PWHASH_MAX], err[128] = "";
	ck_assert_msg(pwhash_derive(derivable[_i].setting, "secret", out, sizeof(out), err,
				    sizeof(err)), "%s: %s", derivable[_i].setting, err);
	ck_assert_str_eq(out, derivable[_i].hash);
	ck_assert(pwhash_derive(derivable[_i].setting, "Secret", out, sizeof(out), err, sizeof(err)));
	ck_assert_str_ne(out, derivable[_i].hash);
}
END_TEST

START_TEST(derive_new_hash_and_refusals)
{
	char h[PWHASH_MAX], out[PWHASH_MAX], err[128];
	ck_assert(pwhash_hash("correct horse", h, sizeof(h), err, sizeof(err)));
	char setting[PWHASH_MAX];
	snprintf(setting, sizeof(setting), "%.*s", (int)(strrchr(h, '$') - h + 1), h);
	ck_assert(pwhash_derive(setting, "correct horse", out, sizeof(out), err, sizeof(err)));
	ck_assert_str_eq(out, h);
	/* Argon2's base64 has '+' and '/' (crypt's has '.' instead of '+') */
	const char *plus = "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$y2mw2GD6YbT/oli+kXrCZg$"
			   "8r0KWWR+XfzAsq3KZydmbvyhMWyXNb5JVi+lbxz5c5Y";
	ck_assert_msg(pwhash_derive("{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$y2mw2GD6YbT/oli+kXrCZg$",
				    "janpass123", out, sizeof(out), err, sizeof(err)), "%s", err);
	ck_assert_str_eq(out, plus);
	/* a hostile or broken setting: no huge cost, no odd shapes */
	const char *bad[] = { "{ARGON2ID}$argon2id$v=19$m=4194304,t=1,p=1$MRDoSmEA2ucBvIjtSiPAWA$",
			      "{ARGON2ID}$argon2id$v=19$m=8,t=99,p=1$MRDoSmEA2ucBvIjtSiPAWA$",
			      "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=4$MRDoSmEA2ucBvIjtSiPAWA$",
			      "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$c2hvcnQ$",
			      "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$MRDoSmEA2ucBvIjtSiPAWA$x",
			      "{PLAIN}x", "$6$saltsalt$", "{SHA512-CRYPT}*" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!pwhash_derive(bad[i], "x", out, sizeof(out), err, sizeof(err)), "%s",
			      bad[i]);
}
END_TEST

START_TEST(cost_names)
{
	char err[128] = "";
	ck_assert(!pwhash_set_cost("cheap", err, sizeof(err)));
	ck_assert(strstr(err, "\"cheap\""));
	ck_assert(pwhash_set_cost(NULL, err, sizeof(err)));
	ck_assert(!pwhash_needs_rehash(ARGON2ID_PROD));
	ck_assert(pwhash_set_cost("moderate", err, sizeof(err)));
	ck_assert(pwhash_needs_rehash(ARGON2ID_PROD));
	setenv("VMAIL_PWHASH_COST", "bogus", 1);
	ck_assert(!pwhash_init(err, sizeof(err)));
	setenv("VMAIL_PWHASH_COST", "test", 1);
	ck_assert(pwhash_init(err, sizeof(err)));
	unsetenv("VMAIL_PWHASH_COST");
}
END_TEST

START_TEST(too_long)
{
	char big[PWHASH_MAX + 20], err[128] = "";
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "{CRYPT}", 7);
	ck_assert(!pwhash_validate(big, err, sizeof(err)));
	ck_assert(strstr(err, "too long"));
}
END_TEST

static Suite *pwhash_suite(void)
{
	Suite *s = suite_create("pwhash");
	TCase *tc = tcase_create("pwhash");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, scheme_verifies, 0, sizeof(vectors) / sizeof(vectors[0]));
	tcase_add_loop_test(tc, malformed_refused, 0, sizeof(malformed) / sizeof(malformed[0]));
	tcase_add_test(tc, new_hash_roundtrip);
	tcase_add_loop_test(tc, derive_gives_the_stored_string, 0,
			    sizeof(derivable) / sizeof(derivable[0]));
	tcase_add_test(tc, derive_new_hash_and_refusals);
	tcase_add_test(tc, cost_names);
	tcase_add_test(tc, too_long);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(pwhash_suite)
