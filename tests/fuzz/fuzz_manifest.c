/* fuzz_manifest.c - libFuzzer target for the parsers of a remote store: the
 * manifest (store_manifest_decode(): MessagePack, paths, parents, identities,
 * headers) and, on the first 112 bytes, a reference file (store_ref_parse()).
 * A decoded manifest is encoded again and must decode to the same entries.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct store_manifest m, again;
	struct fmt_object_header h;
	struct fmt_ref ref;
	uint8_t *buf;
	size_t len;

	log_set_level((enum log_level) - 1);
	if (size >= FMT_REF_SIZE)
		(void)store_ref_parse(data, FMT_REF_SIZE, "fuzz", &ref, &h);
	if (store_manifest_decode(data, size, "fuzz", &m))
		return 0;
	if (store_manifest_encode(&m, &buf, &len) == 0) {
		/* abort(), not assert(): checked in release builds of the regression test too */
		if (store_manifest_decode(buf, len, "fuzz", &again) || again.n != m.n)
			abort();
		for (size_t i = 0; i < m.n; i++)
			if (strcmp(again.e[i].path, m.e[i].path) || again.e[i].dir != m.e[i].dir)
				abort();
		store_manifest_release(&again);
		free(buf);
	}
	store_manifest_release(&m);
	return 0;
}
