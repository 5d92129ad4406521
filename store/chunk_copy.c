/* chunk_copy.c - a stored chunk frame taken as it is from an object, for a new
 * version of a file that shares the chunk (no decompression, no compression).
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>

int store_object_chunk_copy(const struct store_object *o, uint64_t idx, struct store_chunk *out)
{
	struct fmt_chunk_rec r;
	ssize_t n;
	int ret;

	if (idx >= o->info.nchunks)
		return -EINVAL;
	ret = store_object_rec(o, idx, &r);
	if (ret)
		return ret;
	ret = store_buf_reserve(&out->data, &out->cap, r.stored_len);
	if (ret)
		return ret;
	n = store_object_src_read(o, out->data, r.stored_len, r.offset, STORE_SRC_FRAME);
	if (n < 0)
		return (int)n;
	if ((size_t)n < r.stored_len)
		return -EIO; /* the object shrank under us */
	out->stored_len = r.stored_len;
	out->logical_len = (uint32_t)store_object_chunk_len(o, idx);
	out->kind = r.kind;
	out->filter = r.filter;
	out->hash = r.hash;
	return 0;
}
