/* fuzz_unfilter.c - libFuzzer target for the decoding of a chunk frame with its
 * filter (store_chunk_decode(): zstd, then the byte-plane join), and for the
 * filters' round trip.
 *
 * Input: [u8 filter id][u24 little-endian logical length - 1, modulo 1 MiB][frame].
 * 1. The frame is decoded as a chunk of that length and filter: the result must
 *    be 0, -EUCLEAN, -EPROTONOSUPPORT (exactly for unknown ids) or -ENOMEM.
 * 2. The frame bytes, taken as a chunk's logical bytes, must come back unchanged
 *    through split/join at every phase, through store_chunk_encode_filter() with
 *    every filter and through store_chunk_encode(); anything else aborts.
 * Build with CC=clang -DFAISSFS_FUZZ=ON (tests/fuzz/CMakeLists.txt) and run:
 *
 *   cp -r tests/data/fuzz-unfilter /tmp/fu && build/tests/fuzz/fuzz_unfilter /tmp/fu
 *
 * Without clang, tests/unit/store/test_fuzz_unfilter.c runs the same entry over
 * the committed corpus tests/data/fuzz-unfilter/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define FUZZ_LEN_MAX (1u << 20)

int FUZZ_ENTRY(const uint8_t *data, size_t size);

/* Kept from one input to the next (a fuzzer runs millions); never freed. */
static struct store_cctx *fu_cc;
static struct store_dctx *fu_dc;
static uint8_t *fu_a, *fu_b;

/* Step 2 for @in (@len >= 1 bytes); aborts on a mismatch. */
static void fu_round_trips(const uint8_t *in, size_t len)
{
	struct store_chunk c = {0};
	const char *bad = NULL;

	for (unsigned phase = 0; phase < 4; phase++) {
		store_planes4_split(in, len, phase, fu_a);
		store_planes4_join(fu_a, len, phase, fu_b);
		if (memcmp(in, fu_b, len))
			abort();
	}
	for (unsigned f = 0; f <= FMT_FILTER_MAX; f++) {
		if (store_chunk_encode_filter(fu_cc, in, len, 1, f, &c))
			goto out;
		if (store_chunk_decode(fu_dc, c.filter, c.data, c.stored_len, fu_b, len, &bad) ||
		    memcmp(in, fu_b, len))
			abort();
	}
	if (store_chunk_encode(fu_cc, in, len, 1, &c))
		goto out;
	if (c.kind == FMT_CHUNK_HOLE) {
		if (!store_is_zero(in, len) || c.filter)
			abort();
	} else if (store_chunk_decode(fu_dc, c.filter, c.data, c.stored_len, fu_b, len, &bad) ||
		   memcmp(in, fu_b, len)) {
		abort();
	}
out:
	store_chunk_release(&c);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	const char *bad = NULL;
	const uint8_t *frame;
	size_t len, flen;
	unsigned filter;
	int ret;

	log_set_level((enum log_level) - 1);
	if (size < 4)
		return 0;
	filter = data[0];
	len = ((size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16) % FUZZ_LEN_MAX + 1;
	frame = data + 4;
	flen = size - 4;
	if (!fu_cc)
		fu_cc = store_cctx_new();
	if (!fu_dc)
		fu_dc = store_dctx_new();
	if (!fu_a)
		fu_a = malloc(FUZZ_LEN_MAX);
	if (!fu_b)
		fu_b = malloc(FUZZ_LEN_MAX);
	if (!fu_cc || !fu_dc || !fu_a || !fu_b)
		return 0;

	ret = store_chunk_decode(fu_dc, filter, frame, flen, fu_a, len, &bad);
	if (filter > FMT_FILTER_MAX ? ret != -EPROTONOSUPPORT
				    : ret != 0 && ret != -EUCLEAN && ret != -ENOMEM)
		abort();
	if (ret == -EUCLEAN && !bad)
		abort();

	if (flen >= 1 && flen <= FUZZ_LEN_MAX)
		fu_round_trips(frame, flen);
	return 0;
}
