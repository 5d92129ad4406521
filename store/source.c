/* source.c - the local byte source: an object's stored bytes read with pread(2)
 * from its file in the store.  The object owns the fd and closes it; this source
 * keeps no state of its own.  The remote one is in remote_source.c.
 */
#include "store_internal.h"

#include <stdint.h>

static ssize_t local_pread(void *arg, void *buf, size_t len, uint64_t off,
			   enum store_src_what what)
{
	(void)what;
	return store_pread_full((int)(intptr_t)arg, buf, len, off);
}

const struct store_source_ops store_local_source = {
	.name = "local",
	.pread = local_pread,
};
