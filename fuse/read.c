/* read.c - the read path of objects: kernel read -> cache -> store chunk.
 *
 * A read of [off, off+size) pins every chunk it overlaps in the cache (filling
 * misses by decompressing the chunk with this thread's struct store_dctx),
 * replies once with an iovec pointing into the pinned entries, then unpins them.
 * A chunk that fails to read (corrupt: the store has logged file, chunk and
 * offset) fails the whole read: the kernel never gets wrong bytes.
 * Each worker thread owns one struct store_dctx, kept in a pthread key whose
 * destructor frees it when libfuse retires the thread.  Every read is noted for
 * read-ahead (readahead.c) before its own gets.
 *
 * Drop-behind (-o drop_behind, on by default): a chunk that a read continuing a
 * sequential stream covered whole is given back with cache_put_drop(), out of the
 * cache at once.  Its bytes are in the kernel's page cache now, and the next chunk
 * decompressed reuses its memory, which is already mapped and warm: a cold read of a
 * 512 MB Flat went from 1.2 to 1.4-1.8 GB/s, and a one-pass read no longer holds its bytes
 * twice.  The price: a re-read after the kernel let the pages go decompresses again.
 *
 * Not done, by measurement: pushing the rest of a freshly decompressed chunk into the
 * page cache with fuse_lowlevel_notify_store() after the reply.  It cut the FUSE reads of
 * 4 KiB random preads by half and made them ~18x faster (later reads hit the page cache),
 * but made 4 KiB random mmap faults ~3x slower (8.1 -> 2.3 MiB/s, fio), and a store
 * waits on pages locked by reads in flight: with every request thread in such a wait,
 * the mount would hang.
 */
#include "mnt.h"
#include "control.h"
#include "node.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cache/cache.h"
#include "store/store.h"

/* Entries pinned on the stack for reads of up to this many chunks; more (small
 * chunks, 1 MiB reads) go to the heap. */
#define READ_STACK_CHUNKS 16

static void dctx_destroy(void *p)
{
	store_dctx_free(p);
}

int mnt_read_init(struct mnt_fs *fs)
{
	return -pthread_key_create(&fs->dctx_key, dctx_destroy);
}

void mnt_read_release(struct mnt_fs *fs)
{
	/* The calling thread's context; workers freed theirs when they exited. */
	store_dctx_free(pthread_getspecific(fs->dctx_key));
	pthread_setspecific(fs->dctx_key, NULL);
	pthread_key_delete(fs->dctx_key);
}

/* This thread's decompression context, made on first use; NULL if out of memory. */
static struct store_dctx *thread_dctx(struct mnt_fs *fs)
{
	struct store_dctx *dc = pthread_getspecific(fs->dctx_key);

	if (dc)
		return dc;
	dc = store_dctx_new();
	if (dc && pthread_setspecific(fs->dctx_key, dc) != 0) {
		store_dctx_free(dc);
		dc = NULL;
	}
	return dc;
}

struct fill_arg {
	struct mnt_fs *fs;
	const struct store_object *so;
	uint64_t idx;
};

/* cache_fill_fn: decompresses one chunk into the new cache entry. */
static int fill_chunk(void *arg, void *dst, size_t len)
{
	struct fill_arg *a = arg;
	struct store_dctx *dc = thread_dctx(a->fs);
	uint64_t t0;
	int rc;

	(void)len; /* == store_object_chunk_len(): the key's length */
	if (!dc)
		return -ENOMEM;
	t0 = mnt_now_ns();
	rc = store_object_read_chunk(a->so, a->idx, dc, dst);
	mnt_ctl_chunk_filled(a->fs->ctl, a->so, a->idx, t0, rc);
	return rc;
}

void mnt_read_object(struct mnt_fs *fs, fuse_req_t req, struct mnt_obj *ob, size_t size, off_t off)
{
	const struct store_object *so = ob->so;
	const struct store_object_info *info = store_object_info(so);
	struct cache_entry *stack_ents[READ_STACK_CHUNKS], **ents = stack_ents;
	struct iovec stack_iov[READ_STACK_CHUNKS], *iov = stack_iov;
	uint64_t cs = info->chunk_size, first, last, end, n, got = 0;
	struct cache_key key;
	bool seq = false;
	int rc = 0;

	if (off < 0) {
		mnt_reply_err(req, -EINVAL);
		return;
	}
	if ((uint64_t)off >= info->size || size == 0) {
		fuse_reply_buf(req, NULL, 0); /* at or past EOF */
		return;
	}
	end = (uint64_t)off + size;
	if (end > info->size || end < (uint64_t)off)
		end = info->size;
	first = (uint64_t)off / cs;
	last = (end - 1) / cs;
	n = last - first + 1;
	/* Before our own gets, so the workers start on the chunks ahead at once. */
	if (fs->ra)
		seq = mnt_ra_note(fs->ra, ob, (uint64_t)off, end - (uint64_t)off);
	if (n > READ_STACK_CHUNKS) {
		ents = calloc(n, sizeof(*ents));
		iov = calloc(n, sizeof(*iov));
		if (!ents || !iov) {
			rc = -ENOMEM;
			goto out;
		}
	}

	store_object_id(so, key.obj);
	for (got = 0; got < n; got++) {
		uint64_t idx = first + got, cstart = idx * cs;
		struct fill_arg arg = {fs, so, idx};
		size_t clen = store_object_chunk_len(so, idx);
		uint64_t from, to;

		key.chunk = idx;
		rc = cache_get(fs->cache, &key, clen, fill_chunk, &arg, &ents[got]);
		if (rc < 0)
			break;
		/* Trim the chunk to the part inside [off, end). */
		from = (uint64_t)off > cstart ? (uint64_t)off - cstart : 0;
		to = end - cstart < clen ? end - cstart : clen;
		iov[got].iov_base = (char *)cache_entry_data(ents[got]) + from;
		iov[got].iov_len = to - from;
	}
	if (rc == 0)
		fuse_reply_iov(req, iov, (int)n);
out:
	if (rc < 0)
		mnt_reply_err(req, rc);
	for (uint64_t i = 0; i < got; i++) {
		uint64_t cstart = (first + i) * cs;

		if (seq && fs->drop_behind && rc == 0 && (uint64_t)off <= cstart &&
		    end >= cstart + cache_entry_len(ents[i]))
			cache_put_drop(fs->cache, ents[i]);
		else
			cache_put(fs->cache, ents[i]);
	}
	if (ents != stack_ents)
		free(ents);
	if (iov != stack_iov)
		free(iov);
}
