/*
 * What the fuzz targets share: the libFuzzer entry point (declared here so
 * that -Wmissing-prototypes holds) and CHECK, which reports a broken
 * invariant and aborts, so that libFuzzer (or the replay driver) stops on
 * it with the input that broke it.
 */
#ifndef SVCFS_FUZZ_H
#define SVCFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__,       \
			        #cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * Length of the valid UTF-8 sequence at S (LEFT > 0 bytes), or 0: the
 * well-formed byte sequences of Unicode 15, table 3-7, written out range by
 * range — an oracle for svcfs_utf8_seq_len, deliberately not the same code.
 */
static inline size_t ref_utf8_len(const unsigned char *s, size_t left)
{
	static const struct {
		unsigned char lead_lo, lead_hi, second_lo, second_hi;
		size_t n;
	} table[] = {
	    {0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
	    {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
	    {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};

	for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
		if (s[0] < table[t].lead_lo || s[0] > table[t].lead_hi)
			continue;
		if (table[t].n > left)
			return 0;
		if (table[t].n == 1)
			return 1;
		if (s[1] < table[t].second_lo || s[1] > table[t].second_hi)
			return 0;
		for (size_t i = 2; i < table[t].n; i++)
			if (s[i] < 0x80 || s[i] > 0xbf)
				return 0;
		return table[t].n;
	}
	return 0;
}

#endif /* SVCFS_FUZZ_H */
