/* size: byte counts on the command line ("100M") and in human output ("100 MiB"). */
#ifndef VMAIL_SIZE_H
#define VMAIL_SIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every size must fit a PostgreSQL bigint. */
#define SIZE_MAX_BYTES ((uint64_t)INT64_MAX)
/* Room for "18446744073709551615 bytes" and friends. */
#define SIZE_FMT_MAX 32

/*
 * size_parse - a whole number of bytes with an optional suffix K, M, G or T (powers of
 * 1024, either case): "123", "512K", "100M", "1G".  Refuses "", "-1", "1.5M", "12X",
 * spaces and anything over SIZE_MAX_BYTES; err then holds one line naming the problem,
 * e.g. "invalid size \"12X\": unknown suffix \"X\" (use K, M or G)".
 */
bool size_parse(const char *s, uint64_t *out, char *err, size_t errlen);

/*
 * size_format - "0 bytes", "512 bytes", "100 MiB", "1.5 GiB": the largest unit that is at
 * least 1, with one decimal when the value is not a whole number of that unit.
 */
void size_format(uint64_t bytes, char *buf, size_t len);

#endif
