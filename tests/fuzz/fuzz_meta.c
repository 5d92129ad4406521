/* fuzz_meta.c - libFuzzer target for the trailer decoder (store_meta_decode()):
 * the MessagePack map, its "faiss" map and the chunk table records.
 *
 * Input: [u64 logical size][u8 chunk-size shift][u32 trailer offset - 64][map].
 * The header fields come from the first 13 bytes so the fuzzer can match the
 * map's "size" and "chunk_size"; the trailer frame (magic, size, map, XXH3) is
 * built around the rest so the checksum never stops it.  Any result but a crash
 * or a sanitizer report is fine.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store/store_internal.h"
#include "util/log.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct fmt_object_header h = {0};
	struct store_meta m = {0};
	size_t map_len, len;
	uint8_t *frame;
	uint64_t hash;

	log_set_level((enum log_level) - 1);
	if (size < 13)
		return 0;
	h.logical_size = fmt_get64(data);
	h.chunk_size = FMT_CHUNK_MIN << (data[8] % 13);
	h.trailer_offset = FMT_OBJ_HEADER_SIZE + (uint64_t)fmt_get32(data + 9);
	map_len = size - 13;
	len = map_len + 16;
	h.trailer_size = (uint32_t)len;
	frame = malloc(len);
	if (!frame)
		return 0;
	fmt_put32(frame, FMT_SKIPPABLE_MAGIC_TRAILER);
	fmt_put32(frame + 4, (uint32_t)(map_len + 8));
	memcpy(frame + 8, data + 13, map_len);
	fmt_put64(frame + 8 + map_len, XXH3_64bits(frame + 8, map_len));
	if (store_meta_decode(frame, len, &h, "fuzz", &m, &hash) == 0) {
		/* Every record the decoder accepted must lie inside the data area. */
		for (uint64_t i = 0; i < m.nchunks; i++)
			if (m.recs[i].offset + m.recs[i].stored_len > h.trailer_offset)
				abort();
		free(m.recs);
	}
	free(frame);
	return 0;
}
