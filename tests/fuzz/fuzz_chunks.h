/*
 * fuzz_chunks.h: how a harness splits its input into reads, for the parsers that resume
 * with a scan state.  The sizes come from a generator seeded by the input itself, so a
 * crash replays exactly, and mix single bytes (a slow peer) with large reads.
 */
#ifndef VMAIL_FUZZ_CHUNKS_H
#define VMAIL_FUZZ_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_chunks {
	uint64_t state;
	size_t size; /* the whole input */
	size_t fed;  /* bytes "read" so far */
};

/* fuzz_chunks_init - nothing read yet; the generator seeded from the input (FNV-1a), never zero */
static inline void fuzz_chunks_init(struct fuzz_chunks *fc, const uint8_t *data, size_t size)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ull;
	fc->state = h | 1;
	fc->size = size;
	fc->fed = 0;
}

/*
 * fuzz_chunks_read - one more read: fc->fed grows by mostly 1..16 bytes, one time in eight
 * up to 1 KiB, never past the input; false once everything was read
 */
static inline bool fuzz_chunks_read(struct fuzz_chunks *fc)
{
	if (fc->fed == fc->size)
		return false;
	/* xorshift64 */
	uint64_t x = fc->state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	fc->state = x;
	size_t n = (x & 7) == 0 ? 1 + (size_t)((x >> 3) % 1024) : 1 + (size_t)((x >> 3) % 16);
	fc->fed += n < fc->size - fc->fed ? n : fc->size - fc->fed;
	return true;
}

#endif
