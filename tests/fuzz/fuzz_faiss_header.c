/* fuzz_faiss_header.c - libFuzzer target for the FAISS header parser
 * (store_faiss_parse()) and the fourcc names.  The parser never fails; the
 * target checks what it promises: a valid result has a positive d and a known
 * name.  Any crash, sanitizer report or broken promise is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct store_faiss_info fi;
	uint8_t *copy = malloc(size ? size : 1);

	/* A copy of exactly @size bytes, so ASan sees any read past the end. */
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	store_faiss_parse(copy, size, &fi);
	if (fi.valid) {
		if (fi.d <= 0 || strlen(fi.fourcc) != 4 ||
		    !strcmp(store_faiss_type_name(fi.fourcc), "unknown"))
			abort();
	}
	free(copy);
	return 0;
}
