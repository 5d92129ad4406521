/* fuzz_object.c - libFuzzer target for the object reader: header, trailer
 * (MessagePack), chunk table and chunk frames.  The input is written to a memfd
 * and opened as an object; every chunk is read.  Any result but a crash, a leak
 * or a sanitizer report is fine.  The header checksum and the trailer's map
 * checksum are fixed up first, or nearly every input would stop at them and
 * the parsers behind would go untested.  Build and run (clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DFAISSFS_VERSION=\"0\" \
 *     -I. -Istore \
 *     tests/fuzz/fuzz_object.c store/chunk.c store/meta.c store/object_read.c \
 *     store/faiss_header.c store/superblock.c store/object_write.c util/log.c \
 *     -lzstd -lmsgpackc -lxxhash -o /tmp/fuzz_object
 *   cp -r tests/data/corrupt /tmp/fz && /tmp/fuzz_object -max_total_time=60 /tmp/fz
 *
 * The corrupt corpus is a good seed (copy it: libFuzzer adds files to the dir).
 * -DFAISSFS_FUZZ=ON builds it (tests/fuzz/CMakeLists.txt); scripts/fuzz.sh runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string.h>
#include <xxhash.h>

#include "store/format.h"
#include "store/store.h"
#include "util/log.h"

/* Makes the checksums of @p right, so the fuzzer reaches the checks behind them. */
static void obj_fix_checksums(uint8_t *p, size_t size)
{
	uint64_t toff;
	uint32_t tsize;

	if (size < FMT_OBJ_HEADER_SIZE)
		return;
	toff = fmt_get64(p + 40);
	tsize = fmt_get32(p + 48);
	if (toff <= size && tsize >= 16 && tsize <= size - toff)
		fmt_put64(p + toff + tsize - 8, XXH3_64bits(p + toff + 8, tsize - 16));
	fmt_put64(p + 56, XXH3_64bits(p, 56));
}

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static struct store_dctx *dc;
	static uint8_t *buf;
	struct store_object *o;
	uint64_t lsize;
	uint8_t *copy;
	int fd;

	if (!dc) {
		log_set_level((enum log_level) - 1);
		dc = store_dctx_new();
		buf = malloc(16u << 20);
	}
	fd = memfd_create("fuzz", 0);
	if (fd < 0)
		return 0;
	copy = malloc(size ? size : 1);
	if (!copy)
		goto out;
	memcpy(copy, data, size);
	obj_fix_checksums(copy, size);
	if (size && write(fd, copy, size) != (ssize_t)size) {
		free(copy);
		goto out;
	}
	free(copy);
	store_object_probe(fd, "fuzz", &lsize);
	if (store_object_open_fd(fd, "fuzz", &o) == 0) {
		const struct store_object_info *info = store_object_info(o);

		uint64_t end = info->size < (1u << 20) ? info->size : (1u << 20);

		for (uint64_t i = 0; i < info->nchunks && i < 64; i++)
			store_object_read_chunk(o, i, dc, buf);
		/* The read path as tools use it: unaligned pieces across chunks. */
		for (uint64_t off = 0; off < end; off += 12345)
			store_object_pread(o, dc, buf, 20000, off);
		store_object_pread(o, dc, buf, 1, info->size);
		store_object_free(o);
	}
out:
	close(fd);
	return 0;
}
