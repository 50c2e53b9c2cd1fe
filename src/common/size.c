/* size: parsing and printing byte counts with binary (1024) suffixes. */
#include "vmail/size.h"

#include <stdio.h>
#include <string.h>

static const char units[] = "KMGT";

bool size_parse(const char *s, uint64_t *out, char *err, size_t errlen)
{
	if (!s || !*s) {
		snprintf(err, errlen, "invalid size \"\": empty (give bytes, or a number with K, M or G)");
		return false;
	}
	if (s[0] == '-') {
		snprintf(err, errlen, "invalid size \"%s\": must not be negative", s);
		return false;
	}
	const char *p = s;
	uint64_t v = 0;
	bool overflow = false;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (SIZE_MAX_BYTES - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
		p++;
	}
	if (p == s) {
		snprintf(err, errlen, "invalid size \"%s\": must start with a number", s);
		return false;
	}
	if (*p == '.' || *p == ',') {
		snprintf(err, errlen,
			 "invalid size \"%s\": must be a whole number (use a smaller unit, e.g. 1536K for 1.5M)",
			 s);
		return false;
	}
	unsigned shift = 0;
	if (*p) {
		char c = *p;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		const char *u = strchr(units, c);
		if (!u || p[1] != '\0') {
			snprintf(err, errlen, "invalid size \"%s\": unknown suffix \"%s\" (use K, M or G)", s, p);
			return false;
		}
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (overflow || v > (SIZE_MAX_BYTES >> shift)) {
		snprintf(err, errlen, "invalid size \"%s\": too large (at most %llu bytes)", s,
			 (unsigned long long)SIZE_MAX_BYTES);
		return false;
	}
	*out = v << shift;
	return true;
}

void size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *const names[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (bytes < 1024) {
		snprintf(buf, len, "%llu %s", (unsigned long long)bytes, bytes == 1 ? "byte" : "bytes");
		return;
	}
	unsigned i = 0;
	while (i + 1 < sizeof(names) / sizeof(names[0]) && bytes >> (10 * (i + 2)) != 0)
		i++;
	unsigned shift = 10 * (i + 1);
	uint64_t whole = bytes >> shift;
	uint64_t rest = bytes & ((UINT64_C(1) << shift) - 1);
	if (rest == 0) {
		snprintf(buf, len, "%llu %s", (unsigned long long)whole, names[i]);
		return;
	}
	/* Round the fraction to one decimal, carrying into the whole part when it rounds to 10. */
	uint64_t tenths = (uint64_t)(((long double)rest * 10 + (long double)(UINT64_C(1) << shift) / 2) /
				     (long double)(UINT64_C(1) << shift));
	if (tenths >= 10) {
		whole++;
		tenths = 0;
	}
	if (tenths == 0)
		snprintf(buf, len, "%llu %s", (unsigned long long)whole, names[i]);
	else
		snprintf(buf, len, "%llu.%u %s", (unsigned long long)whole, (unsigned)tenths, names[i]);
}
