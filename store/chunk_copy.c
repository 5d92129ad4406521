/* chunk_copy.c - a stored chunk frame taken as it is from an object, for a new
 * version of a file that shares the chunk (no decompression, no compression).
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int store_object_chunk_copy(const struct store_object *o, uint64_t idx, struct store_chunk *out)
{
	struct fmt_chunk_rec r;
	size_t done = 0;
	int ret;

	if (idx >= o->info.nchunks)
		return -EINVAL;
	ret = store_object_rec(o, idx, &r);
	if (ret)
		return ret;
	ret = store_buf_reserve(&out->data, &out->cap, r.stored_len);
	if (ret)
		return ret;
	while (done < r.stored_len) {
		ssize_t n = pread(o->fd, out->data + done, r.stored_len - done,
				  (off_t)(r.offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the object shrank under us */
		done += (size_t)n;
	}
	out->stored_len = r.stored_len;
	out->logical_len = (uint32_t)store_object_chunk_len(o, idx);
	out->kind = r.kind;
	out->filter = r.filter;
	out->hash = r.hash;
	return 0;
}
