/* object_hash.c - the chunk table's content hashes, for callers that compare an
 * object with other bytes without decompressing it (import's "already stored").
 */
#include "store_internal.h"

uint64_t store_object_chunk_hash(const struct store_object *o, uint64_t idx)
{
	struct fmt_chunk_rec r;

	if (idx >= o->info.nchunks || store_object_rec(o, idx, &r))
		return 0;
	return r.hash;
}
