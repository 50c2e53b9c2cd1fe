/* pwhash: creating, checking and vetting "{SCHEME}hash" password strings (Argon2id via libsodium, legacy via crypt_r). */
#include "vmail/pwhash.h"

#include <crypt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

enum scheme_kind {
	KIND_ARGON2ID,
	KIND_ARGON2I,
	KIND_SHA512,
	KIND_SHA256,
	KIND_BLF,
	KIND_MD5,
	KIND_CRYPT, /* DES, or whichever modular format the string itself names */
};

static const struct scheme {
	const char *name;
	enum scheme_kind kind;
} schemes[] = {
	{ "ARGON2ID", KIND_ARGON2ID },
	{ "ARGON2I", KIND_ARGON2I },
	{ "SHA512-CRYPT", KIND_SHA512 },
	{ "SHA256-CRYPT", KIND_SHA256 },
	{ "BLF-CRYPT", KIND_BLF },
	{ "MD5-CRYPT", KIND_MD5 },
	{ "CRYPT", KIND_CRYPT },
};

#define PREFIX "{ARGON2ID}"

static unsigned long long cost_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
static size_t cost_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;

bool pwhash_set_cost(const char *name, char *err, size_t errlen)
{
	if (!name || !*name || strcmp(name, "interactive") == 0) {
		cost_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		cost_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	} else if (strcmp(name, "moderate") == 0) {
		cost_ops = crypto_pwhash_OPSLIMIT_MODERATE;
		cost_mem = crypto_pwhash_MEMLIMIT_MODERATE;
	} else if (strcmp(name, "test") == 0) {
		cost_ops = crypto_pwhash_OPSLIMIT_MIN;
		cost_mem = crypto_pwhash_MEMLIMIT_MIN;
	} else {
		snprintf(err, errlen,
			 "unknown password hash cost \"%s\" (use interactive, moderate or test)", name);
		return false;
	}
	return true;
}

bool pwhash_init(char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return false;
	}
	return pwhash_set_cost(getenv("VMAIL_PWHASH_COST"), err, errlen);
}

void pwhash_wipe(void *buf, size_t len)
{
	sodium_memzero(buf, len);
}

/* Split "{NAME}rest" into its scheme and the part after the brace. */
static const struct scheme *split(const char *stored, const char **rest)
{
	if (!stored || stored[0] != '{')
		return NULL;
	const char *close = strchr(stored, '}');
	if (!close)
		return NULL;
	size_t n = (size_t)(close - stored - 1);
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) == n && strncasecmp(stored + 1, schemes[i].name, n) == 0) {
			*rest = close + 1;
			return &schemes[i];
		}
	}
	return NULL;
}

bool pwhash_hash(const char *password, char *out, size_t outlen, char *err, size_t errlen)
{
	char h[crypto_pwhash_STRBYTES];
	if (outlen < sizeof(PREFIX) - 1 + sizeof(h)) {
		snprintf(err, errlen, "hash buffer too small");
		return false;
	}
	if (crypto_pwhash_str_alg(h, password, strlen(password), cost_ops, cost_mem,
				  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		snprintf(err, errlen, "out of memory while hashing the password");
		return false;
	}
	snprintf(out, outlen, "%s%s", PREFIX, h);
	return true;
}

static bool is_b64(char c)
{
	return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	       (c >= 'a' && c <= 'z');
}

static size_t b64_span(const char *s)
{
	size_t n = 0;
	while (is_b64(s[n]))
		n++;
	return n;
}

/*
 * Shape of "$id$[rounds=N$]salt$hash" as written by crypt(3): checked here so that a
 * truncated or mangled paste is refused at import, not discovered at the first login.
 */
static bool check_modular(const char *h, const char *id, size_t max_salt, bool rounds,
			  size_t hash_len, char *err, size_t errlen)
{
	size_t idlen = strlen(id);
	if (strncmp(h, id, idlen) != 0) {
		snprintf(err, errlen, "must start with \"%s\"", id);
		return false;
	}
	const char *p = h + idlen;
	if (rounds && strncmp(p, "rounds=", 7) == 0) {
		p += 7;
		size_t d = strspn(p, "0123456789");
		if (d == 0 || d > 9 || p[d] != '$') {
			snprintf(err, errlen, "malformed rounds= field");
			return false;
		}
		p += d + 1;
	}
	size_t salt = b64_span(p);
	if (salt > max_salt || p[salt] != '$') {
		snprintf(err, errlen, "malformed salt (at most %zu characters of [./0-9A-Za-z], then '$')",
			 max_salt);
		return false;
	}
	p += salt + 1;
	size_t hl = b64_span(p);
	if (hl != hash_len || p[hl] != '\0') {
		snprintf(err, errlen, "hash part must be %zu characters of [./0-9A-Za-z]", hash_len);
		return false;
	}
	return true;
}

static bool check_blf(const char *h, char *err, size_t errlen)
{
	if (!(h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') &&
	      h[3] == '$')) {
		snprintf(err, errlen, "must start with \"$2a$\", \"$2b$\" or \"$2y$\"");
		return false;
	}
	if (!(h[4] >= '0' && h[4] <= '3' && h[5] >= '0' && h[5] <= '9' && h[6] == '$')) {
		snprintf(err, errlen, "malformed cost field (two digits, 04..31)");
		return false;
	}
	int cost = (h[4] - '0') * 10 + (h[5] - '0');
	if (cost < 4 || cost > 31) {
		snprintf(err, errlen, "cost %d out of range 04..31", cost);
		return false;
	}
	if (b64_span(h + 7) != 53 || h[60] != '\0') {
		snprintf(err, errlen, "salt and hash must be 53 characters of [./0-9A-Za-z]");
		return false;
	}
	return true;
}

static bool check_shape(enum scheme_kind kind, const char *h, char *err, size_t errlen)
{
	switch (kind) {
	case KIND_ARGON2ID:
		if (strncmp(h, "$argon2id$", 10) != 0 ||
		    crypto_pwhash_argon2id_str_needs_rehash(h, cost_ops, cost_mem) < 0) {
			snprintf(err, errlen, "not a well-formed $argon2id$ string");
			return false;
		}
		return true;
	case KIND_ARGON2I:
		if (strncmp(h, "$argon2i$", 9) != 0 ||
		    crypto_pwhash_argon2i_str_needs_rehash(h, cost_ops, cost_mem) < 0) {
			snprintf(err, errlen, "not a well-formed $argon2i$ string");
			return false;
		}
		return true;
	case KIND_SHA512:
		return check_modular(h, "$6$", 16, true, 86, err, errlen);
	case KIND_SHA256:
		return check_modular(h, "$5$", 16, true, 43, err, errlen);
	case KIND_MD5:
		return check_modular(h, "$1$", 8, false, 22, err, errlen);
	case KIND_BLF:
		return check_blf(h, err, errlen);
	case KIND_CRYPT:
		if (h[0] != '$') {
			if (strlen(h) != 13 || b64_span(h) != 13) {
				snprintf(err, errlen, "DES crypt must be 13 characters of [./0-9A-Za-z]");
				return false;
			}
			return true;
		}
		if (strncmp(h, "$6$", 3) == 0)
			return check_shape(KIND_SHA512, h, err, errlen);
		if (strncmp(h, "$5$", 3) == 0)
			return check_shape(KIND_SHA256, h, err, errlen);
		if (strncmp(h, "$1$", 3) == 0)
			return check_shape(KIND_MD5, h, err, errlen);
		if (strncmp(h, "$2", 2) == 0)
			return check_shape(KIND_BLF, h, err, errlen);
		snprintf(err, errlen, "unsupported crypt format (use DES, $1$, $2b$, $5$ or $6$)");
		return false;
	}
	return false;
}

/* crypt_r with a heap crypt_data (it is ~32 KiB) that is wiped afterwards. */
static enum pwhash_verdict crypt_compare(const char *h, const char *password)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return PWHASH_ERROR;
	enum pwhash_verdict v = PWHASH_ERROR;
	const char *r = crypt_r(password, h, cd);
	if (r && r[0] != '*') {
		size_t rl = strlen(r), hl = strlen(h);
		v = (rl == hl && sodium_memcmp(r, h, hl) == 0) ? PWHASH_MATCH : PWHASH_MISMATCH;
	}
	sodium_memzero(cd, sizeof(*cd));
	free(cd);
	return v;
}

enum pwhash_verdict pwhash_verify(const char *stored, const char *password)
{
	const char *h;
	const struct scheme *s = split(stored, &h);
	char err[128];
	if (!s || !check_shape(s->kind, h, err, sizeof(err)))
		return PWHASH_ERROR;
	switch (s->kind) {
	case KIND_ARGON2ID:
	case KIND_ARGON2I:
		return crypto_pwhash_str_verify(h, password, strlen(password)) == 0 ? PWHASH_MATCH
										     : PWHASH_MISMATCH;
	default:
		return crypt_compare(h, password);
	}
}

/* The bounds a setting from the database may ask of us (libsodium's "sensitive" cost). */
#define DERIVE_MAX_MEM_KIB (1024u * 1024u)
#define DERIVE_MAX_OPS 16u
#define DERIVE_HASH_BYTES 32

static bool derive_argon2(const char *setting, const char *h, enum scheme_kind kind,
			  const char *password, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *tag = kind == KIND_ARGON2ID ? "$argon2id$" : "$argon2i$";
	unsigned v = 0, m = 0, t = 0, par = 0;
	int used = 0;
	size_t taglen = strlen(tag);
	if (strncmp(h, tag, taglen) != 0 ||
	    sscanf(h + taglen, "v=%u$m=%u,t=%u,p=%u$%n", &v, &m, &t, &par, &used) != 4 || used == 0) {
		snprintf(err, errlen, "malformed Argon2 setting");
		return false;
	}
	/* Argon2's own base64 ('+', '/', no padding), not crypt's: up to the closing '$' */
	const char *salt64 = h + taglen + used;
	size_t slen = strspn(salt64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
	unsigned char salt[crypto_pwhash_SALTBYTES], hash[DERIVE_HASH_BYTES];
	size_t saltlen = 0;
	if (v != 19 || par != 1 || m < 8 || m > DERIVE_MAX_MEM_KIB || t < 1 || t > DERIVE_MAX_OPS ||
	    strcmp(salt64 + slen, "$") != 0 ||
	    sodium_base642bin(salt, sizeof(salt), salt64, slen, NULL, &saltlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
	    saltlen != sizeof(salt)) {
		snprintf(err, errlen, "unsupported Argon2 setting (need v=19, p=1, 16-byte salt)");
		return false;
	}
	int alg = kind == KIND_ARGON2ID ? crypto_pwhash_ALG_ARGON2ID13 : crypto_pwhash_ALG_ARGON2I13;
	if (crypto_pwhash(hash, sizeof(hash), password, strlen(password), salt, t,
			  (size_t)m * 1024u, alg) != 0) {
		snprintf(err, errlen, "Argon2 failed (out of memory or cost too low)");
		return false;
	}
	char hash64[sodium_base64_ENCODED_LEN(DERIVE_HASH_BYTES,
					      sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
	sodium_bin2base64(hash64, sizeof(hash64), hash, sizeof(hash),
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	sodium_memzero(hash, sizeof(hash));
	if ((size_t)snprintf(out, outlen, "%s%s", setting, hash64) >= outlen) {
		snprintf(err, errlen, "setting too long");
		return false;
	}
	return true;
}

static bool derive_crypt(const char *setting, const char *h, const char *password, char *out,
			 size_t outlen, char *err, size_t errlen)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (!cd) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	const char *r = crypt_r(password, h, cd);
	bool ok = r && r[0] != '*' && r[0] != '\0';
	if (!ok)
		snprintf(err, errlen, "crypt(3) does not know this setting");
	else if ((size_t)snprintf(out, outlen, "%.*s%s", (int)(h - setting), setting, r) >= outlen) {
		snprintf(err, errlen, "setting too long");
		ok = false;
	}
	sodium_memzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

bool pwhash_derive(const char *setting, const char *password, char *out, size_t outlen, char *err,
		   size_t errlen)
{
	const char *h;
	const struct scheme *s = split(setting, &h);
	if (!s || strlen(setting) >= PWHASH_MAX) {
		snprintf(err, errlen, "not a {SCHEME} setting");
		return false;
	}
	if (s->kind == KIND_ARGON2ID || s->kind == KIND_ARGON2I)
		return derive_argon2(setting, h, s->kind, password, out, outlen, err, errlen);
	return derive_crypt(setting, h, password, out, outlen, err, errlen);
}

bool pwhash_needs_rehash(const char *stored)
{
	const char *h;
	const struct scheme *s = split(stored, &h);
	if (!s || s->kind != KIND_ARGON2ID || strncmp(h, "$argon2id$", 10) != 0)
		return true;
	return crypto_pwhash_argon2id_str_needs_rehash(h, cost_ops, cost_mem) != 0;
}

bool pwhash_validate(const char *stored, char *err, size_t errlen)
{
	if (!stored || stored[0] != '{' || !strchr(stored, '}')) {
		snprintf(err, errlen,
			 "password hash must start with a {SCHEME} prefix, e.g. {SHA512-CRYPT}$6$...");
		return false;
	}
	if (strlen(stored) >= PWHASH_MAX) {
		snprintf(err, errlen, "password hash too long (at most %d characters)", PWHASH_MAX - 1);
		return false;
	}
	const char *h;
	const struct scheme *s = split(stored, &h);
	if (!s) {
		int n = (int)(strchr(stored, '}') - stored + 1);
		snprintf(err, errlen,
			 "unknown password scheme %.*s (known: ARGON2ID, ARGON2I, SHA512-CRYPT, "
			 "SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT, CRYPT)",
			 n > 40 ? 40 : n, stored);
		return false;
	}
	char why[160];
	if (!check_shape(s->kind, h, why, sizeof(why))) {
		snprintf(err, errlen, "malformed {%s} hash: %s", s->name, why);
		return false;
	}
	/* The C library must be able to check it too, or every login would fail. */
	if (s->kind != KIND_ARGON2ID && s->kind != KIND_ARGON2I &&
	    crypt_compare(h, "vmail-probe") == PWHASH_ERROR) {
		snprintf(err, errlen, "{%s} hash is not supported by this system's crypt(3)", s->name);
		return false;
	}
	return true;
}
