/* pwhash: password hashes in Dovecot's "{SCHEME}hash" form; Argon2id for new ones, crypt(3) for imported ones. */
#ifndef VMAIL_PWHASH_H
#define VMAIL_PWHASH_H

#include <stdbool.h>
#include <stddef.h>

/* Big enough for "{ARGON2ID}" + crypto_pwhash_STRBYTES and any crypt(3) string. */
#define PWHASH_MAX 256

enum pwhash_verdict {
	PWHASH_MATCH = 0,
	PWHASH_MISMATCH,
	PWHASH_ERROR, /* unknown scheme, malformed hash, or out of memory */
};

/*
 * pwhash_init - initialise libsodium and pick the Argon2id cost for new hashes.
 * The cost comes from the environment variable VMAIL_PWHASH_COST:
 *   unset or "interactive"  t=2, m=64 MiB (crypto_pwhash_*_INTERACTIVE; production)
 *   "moderate"              t=3, m=256 MiB
 *   "test"                  the libsodium minimum (t=1, m=8 KiB): fast, for tests only
 * Anything else is an error (err names the value).  Call once before the rest.
 */
bool pwhash_init(char *err, size_t errlen);
/* pwhash_set_cost - same names as VMAIL_PWHASH_COST, for callers with a setting of their own */
bool pwhash_set_cost(const char *name, char *err, size_t errlen);

/* pwhash_hash - "{ARGON2ID}$argon2id$..." for password at the current cost into out[PWHASH_MAX] */
bool pwhash_hash(const char *password, char *out, size_t outlen, char *err, size_t errlen);

/*
 * pwhash_verify - check password against a stored "{SCHEME}..." hash.  Argon2id/Argon2i go
 * through libsodium; SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT and CRYPT through
 * crypt_r(3) with a constant-time comparison.  Scheme names are case-insensitive.
 */
enum pwhash_verdict pwhash_verify(const char *stored, const char *password);

/* pwhash_needs_rehash - true unless stored is Argon2id at exactly the current cost */
bool pwhash_needs_rehash(const char *stored);

/*
 * pwhash_validate - is stored an importable hash: a known scheme and a well-formed string
 * for it?  On false, err says what is wrong ("unknown password scheme {FOO} ...").
 */
bool pwhash_validate(const char *stored, char *err, size_t errlen);

/*
 * pwhash_derive - the hash string that password gives under setting: a stored hash without
 * its last part, as vmail.self_login_params hands it out ("{ARGON2ID}$argon2id$v=19$m=..,
 * t=..,p=1$<salt>$", "{SHA512-CRYPT}$6$<salt>$", "{BLF-CRYPT}$2b$NN$<22 salt chars>",
 * "{CRYPT}ab").  The result in out[PWHASH_MAX] equals the stored hash exactly when the
 * password is right, so the database can compare it without computing Argon2.  Argon2 needs
 * p=1, a 16-byte salt and a 32-byte hash (libsodium's), at most 1 GiB and t=16.  False
 * (err says why) for a setting outside these or a scheme crypt(3) does not know.
 */
bool pwhash_derive(const char *setting, const char *password, char *out, size_t outlen, char *err,
		   size_t errlen);

/* pwhash_wipe - sodium_memzero a password buffer (callers own the buffers) */
void pwhash_wipe(void *buf, size_t len);

#endif
