/* object_read.c - opening an object and reading its chunks.
 *
 * Open reads the 64-byte header and the trailer (the chunk table) and checks both
 * completely; after that the object is immutable and read_chunk() only needs a
 * pread, one zstd frame decode and one XXH3 per chunk.  Every byte from disk is
 * checked before use: bad data is -EUCLEAN, logged with file, chunk and offset.
 *
 * Memory: the chunk table (24 bytes per chunk, 96 MiB per TiB at 256 KiB chunks)
 * is never decoded into an array.  A small trailer is copied to the heap; a large
 * one is mapped read-only, checked once at open (checksum and every record), and
 * its pages then dropped from this process (MADV_DONTNEED): later accesses fault
 * single pages back from the page cache, which the kernel may evict.  Each
 * access decodes one record and checks its bounds again, so a file changed under
 * an open object gives -EUCLEAN, not a wild read.  A mapped object whose file is
 * truncated in place would raise SIGBUS: objects are only ever replaced by
 * rename(), never rewritten.
 */
#include "store_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/log.h"

#define CORRUPT_HINT "restore the file from its source or re-import it"

void store_header_build(uint8_t out[FMT_OBJ_HEADER_SIZE], uint32_t chunk_size,
			uint64_t logical_size, uint64_t trailer_offset, uint32_t trailer_size,
			uint32_t incompat)
{
	memset(out, 0, FMT_OBJ_HEADER_SIZE);
	fmt_put32(out, FMT_SKIPPABLE_MAGIC_HEADER);
	fmt_put32(out + 4, FMT_OBJ_HEADER_SIZE - 8);
	memcpy(out + 8, FMT_OBJ_MAGIC, 8);
	fmt_put16(out + 16, FMT_VERSION_MAJOR);
	fmt_put16(out + 18, FMT_OBJ_VERSION_MINOR);
	fmt_put32(out + 20, incompat);
	fmt_put32(out + 24, chunk_size);
	fmt_put64(out + 32, logical_size);
	fmt_put64(out + 40, trailer_offset);
	fmt_put32(out + 48, trailer_size);
	fmt_put64(out + 56, XXH3_64bits(out, 56));
}

bool store_header_is_object(const uint8_t *buf, size_t n)
{
	return n >= 16 && fmt_get32(buf) == FMT_SKIPPABLE_MAGIC_HEADER &&
	       memcmp(buf + 8, FMT_OBJ_MAGIC, 8) == 0;
}

int store_header_check(const uint8_t *buf, size_t n, uint64_t file_size, const char *logname,
		       struct fmt_object_header *h)
{
	const char *bad;
	uint32_t cs;

	if (n < FMT_OBJ_HEADER_SIZE) {
		bad = "the header is truncated";
		goto bad;
	}
	h->frame_magic = fmt_get32(buf);
	h->frame_size = fmt_get32(buf + 4);
	memcpy(h->magic, buf + 8, 8);
	h->version_major = fmt_get16(buf + 16);
	h->version_minor = fmt_get16(buf + 18);
	h->feature_incompat = fmt_get32(buf + 20);
	h->chunk_size = cs = fmt_get32(buf + 24);
	h->reserved0 = fmt_get32(buf + 28);
	h->logical_size = fmt_get64(buf + 32);
	h->trailer_offset = fmt_get64(buf + 40);
	h->trailer_size = fmt_get32(buf + 48);
	h->reserved1 = fmt_get32(buf + 52);
	h->checksum = fmt_get64(buf + 56);

	if (h->frame_magic != FMT_SKIPPABLE_MAGIC_HEADER ||
	    h->frame_size != FMT_OBJ_HEADER_SIZE - 8 || memcmp(h->magic, FMT_OBJ_MAGIC, 8)) {
		bad = "bad header frame magic or size";
		goto bad;
	}
	/* The version is read before the checksum: a newer format may checksum
	 * differently, and "upgrade" is the useful message then. */
	if (h->version_major > FMT_VERSION_MAJOR) {
		log_error("object %s: format %u.%u is newer than this faissfs supports (%u.%u): "
			  "upgrade faissfs",
			  logname, h->version_major, h->version_minor, FMT_VERSION_MAJOR,
			  FMT_VERSION_MINOR);
		return -EPROTONOSUPPORT;
	}
	if (h->checksum != XXH3_64bits(buf, 56)) {
		bad = "header checksum mismatch";
		goto bad;
	}
	if (h->version_major < 1) {
		bad = "format version 0 never existed";
		goto bad;
	}
	if (h->feature_incompat & ~FMT_OBJ_INCOMPAT_KNOWN) {
		log_error("object %s: uses format features unknown to this faissfs (incompat "
			  "0x%x): upgrade faissfs",
			  logname, h->feature_incompat & ~FMT_OBJ_INCOMPAT_KNOWN);
		return -EPROTONOSUPPORT;
	}
	if (cs < FMT_CHUNK_MIN || cs > FMT_CHUNK_MAX || (cs & (cs - 1))) {
		bad = "chunk size is not a power of two from 4K to 16M";
		goto bad;
	}
	if (h->trailer_offset < FMT_OBJ_HEADER_SIZE || h->trailer_size < 16 ||
	    h->trailer_size > FMT_TRAILER_MAX || h->trailer_offset > file_size ||
	    h->trailer_size > file_size - h->trailer_offset) {
		log_error("object %s: trailer (offset %" PRIu64 ", %u bytes) lies outside the "
			  "file (%" PRIu64
			  " bytes) - the stored data is corrupt or truncated; " CORRUPT_HINT,
			  logname, h->trailer_offset, h->trailer_size, file_size);
		return -EUCLEAN;
	}
	return 0;

bad:
	log_error("object %s: %s - the stored data is corrupt; " CORRUPT_HINT, logname, bad);
	return -EUCLEAN;
}

int store_object_probe(int fd, const char *logname, uint64_t *logical_size)
{
	uint64_t stored;

	return store_object_probe_sizes(fd, logname, logical_size, &stored);
}

int store_object_probe_sizes(int fd, const char *logname, uint64_t *logical_size,
			     uint64_t *stored_size)
{
	uint8_t buf[FMT_REF_SIZE];
	struct fmt_object_header h;
	struct fmt_ref ref;
	struct stat stb;
	ssize_t n;
	int ret;

	n = store_pread_full(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return (int)n;
	if (store_ref_is_ref(buf, (size_t)n)) {
		/* A view's stand-in for a remote object: its header is inside. */
		ret = store_ref_parse(buf, (size_t)n, logname, &ref, &h);
		if (ret)
			return ret;
		*logical_size = h.logical_size;
		*stored_size = ref.stored_size;
		return 1;
	}
	if (!store_header_is_object(buf, (size_t)n))
		return 0;
	if (fstat(fd, &stb))
		return -errno;
	ret = store_header_check(buf, (size_t)n, (uint64_t)stb.st_size, logname, &h);
	if (ret)
		return ret;
	*logical_size = h.logical_size;
	*stored_size = (uint64_t)stb.st_size;
	return 1;
}

void store_object_free(struct store_object *o)
{
	if (!o)
		return;
	if (o->sops && o->sops->release)
		o->sops->release(o->sarg);
	if (o->fd >= 0)
		close(o->fd);
	free(o->logname);
	free(o->trailer);
	if (o->map)
		munmap(o->map, o->map_len);
	free(o);
}

/* Brings the trailer described by @h into memory for @o: a heap copy
 * (o->trailer) when small, else a read-only mapping (o->map).  Sets *buf to its
 * first byte.  Returns 0, -EUCLEAN (truncated, logged), -ENOMEM or -errno. */
static int trailer_load(struct store_object *o, const struct fmt_object_header *h,
			const uint8_t **buf)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = h->trailer_offset - h->trailer_offset % page;
	void *map;
	ssize_t n;
	int ret;

	/* Another source than a local file has nothing to map: its trailer is read
	 * into the heap whatever its size (24 bytes per chunk). */
	if (h->trailer_size < STORE_TABLE_MAP_MIN || o->fd < 0) {
		o->trailer = malloc(h->trailer_size);
		if (!o->trailer)
			return -ENOMEM;
		n = store_object_src_read(o, o->trailer, h->trailer_size, h->trailer_offset,
					  STORE_SRC_TRAILER);
		if (n < 0)
			return (int)n;
		if ((size_t)n < h->trailer_size) {
			log_error("object %s: trailer (offset %" PRIu64
				  ", %u bytes) is truncated - "
				  "the stored data is corrupt; " CORRUPT_HINT,
				  o->logname, h->trailer_offset, h->trailer_size);
			return -EUCLEAN;
		}
		*buf = o->trailer;
		return 0;
	}
	/* store_header_check() made sure the trailer lies inside the file. */
	o->map_len = (size_t)(h->trailer_offset - start + h->trailer_size);
	map = mmap(NULL, o->map_len, PROT_READ, MAP_SHARED, o->fd, (off_t)start);
	if (map == MAP_FAILED) {
		ret = -errno;
		log_error("object %s: cannot map its chunk table (%u bytes at offset %" PRIu64
			  "): %s - raise the address space limit (ulimit -v) or free memory",
			  o->logname, h->trailer_size, h->trailer_offset, strerror(-ret));
		return ret;
	}
	madvise(map, o->map_len, MADV_SEQUENTIAL); /* open reads it once, in order */
	o->map = map;
	*buf = (const uint8_t *)map + (h->trailer_offset - start);
	return 0;
}

int store_object_rec(const struct store_object *o, uint64_t idx, struct fmt_chunk_rec *r)
{
	bool last = idx == o->info.nchunks - 1;

	assert(idx < o->info.nchunks);
	store_rec_get(o->table + idx * FMT_CHUNK_REC_SIZE, r);
	return store_rec_check(r, idx, o->incompat, o->trailer_offset,
			       last ? o->hole_hash_last : o->hole_hash_full, o->logname);
}

/* Reads and checks the header and trailer of @o, whose source is set, for an
 * object of @stored_size bytes, and fills in the rest of @o.  Returns 0, -EMEDIUMTYPE
 * (not an object), -EREMOTE (a reference file: open it through its store),
 * -EUCLEAN, -EPROTONOSUPPORT, -ENOMEM or an error of the source. */
static int object_load(struct store_object *o, uint64_t stored_size)
{
	uint8_t hbuf[FMT_REF_SIZE];
	const uint8_t *tbuf = NULL;
	struct fmt_object_header h;
	struct store_meta m;
	ssize_t n;
	int ret;

	n = store_object_src_read(o, hbuf, o->fd >= 0 ? sizeof(hbuf) : FMT_OBJ_HEADER_SIZE, 0,
				  STORE_SRC_HEADER);
	if (n < 0)
		return (int)n;
	if (o->fd >= 0 && store_ref_is_ref(hbuf, (size_t)n))
		return -EREMOTE;
	if (!store_header_is_object(hbuf, (size_t)n))
		return -EMEDIUMTYPE;
	ret = store_header_check(hbuf, (size_t)n, stored_size, o->logname, &h);
	if (ret)
		return ret;
	ret = trailer_load(o, &h, &tbuf);
	if (ret)
		return ret;
	ret = store_meta_parse(tbuf, h.trailer_size, &h, o->logname, &m, &o->trailer_hash);
	if (ret)
		return ret;
	if (o->map)
		madvise(o->map, o->map_len, MADV_DONTNEED); /* advice: its failure is harmless */
	o->header_checksum = h.checksum;
	o->trailer_offset = h.trailer_offset;
	o->incompat = h.feature_incompat;
	o->hole_hash_full = m.hole_hash_full;
	o->hole_hash_last = m.hole_hash_last;
	o->table = m.table;
	o->info.size = m.size;
	o->info.stored = m.stored;
	o->info.nchunks = m.nchunks;
	o->info.chunk_size = m.chunk_size;
	o->info.level = m.level;
	o->info.faiss = m.faiss;
	return 0;
}

/* A new object reading through @ops/@arg (taken over), or NULL (@arg released). */
static struct store_object *object_new(const struct store_source_ops *ops, void *arg, int fd,
				       const char *logname)
{
	struct store_object *o = calloc(1, sizeof(*o));

	if (o)
		o->logname = strdup(logname ? logname : "?");
	if (!o || !o->logname) {
		free(o);
		if (ops->release)
			ops->release(arg);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	o->fd = fd;
	o->sops = ops;
	o->sarg = arg;
	return o;
}

int store_object_open_source(const struct store_source_ops *ops, void *arg, uint64_t stored_size,
			     const char *logname, struct store_object **out)
{
	struct store_object *o = object_new(ops, arg, -1, logname);
	int ret;

	if (!o)
		return -ENOMEM;
	ret = object_load(o, stored_size);
	if (ret) {
		store_object_free(o);
		return ret;
	}
	*out = o;
	return 0;
}

/* Opens the object on the local file @fd, which it takes over (closed on failure
 * too). */
static int object_open(int fd, const char *logname, struct store_object **out)
{
	struct store_object *o;
	struct stat stb;
	int ret;

	if (fstat(fd, &stb)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (!S_ISREG(stb.st_mode)) {
		close(fd);
		/* EMEDIUMTYPE: neither an object nor a plain file */
		return S_ISDIR(stb.st_mode) ? -EISDIR : -EMEDIUMTYPE;
	}
	o = object_new(&store_local_source, (void *)(intptr_t)fd, fd, logname);
	if (!o)
		return -ENOMEM;
	ret = object_load(o, (uint64_t)stb.st_size);
	if (ret) {
		store_object_free(o);
		return ret;
	}
	*out = o;
	return 0;
}

int store_object_openat(int dirfd, const char *name, const char *logname, struct store_object **out)
{
	/* O_NONBLOCK: opening a FIFO must not hang; no effect on regular files. */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	return object_open(fd, logname ? logname : name, out);
}

int store_object_open_fd(int fd, const char *logname, struct store_object **out)
{
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (dfd < 0)
		return -errno;
	return object_open(dfd, logname ? logname : "?", out);
}

const struct store_object_info *store_object_info(const struct store_object *o)
{
	return &o->info;
}

void store_object_id(const struct store_object *o, uint64_t id[2])
{
	id[0] = o->trailer_hash;
	id[1] = o->header_checksum;
}

size_t store_object_chunk_len(const struct store_object *o, uint64_t idx)
{
	uint64_t start = idx * o->info.chunk_size;

	if (idx >= o->info.nchunks)
		return 0;
	if (o->info.size - start < o->info.chunk_size)
		return (size_t)(o->info.size - start);
	return o->info.chunk_size;
}

int store_object_chunk_kind(const struct store_object *o, uint64_t idx)
{
	struct fmt_chunk_rec r;
	int ret;

	if (idx >= o->info.nchunks)
		return -EINVAL;
	ret = store_object_rec(o, idx, &r);
	return ret ? ret : r.kind;
}

uint32_t store_object_chunk_stored(const struct store_object *o, uint64_t idx)
{
	struct fmt_chunk_rec r;

	if (idx >= o->info.nchunks || store_object_rec(o, idx, &r))
		return 0;
	return r.stored_len;
}

int store_object_read_chunk(const struct store_object *o, uint64_t idx, struct store_dctx *dc,
			    void *dst)
{
	struct fmt_chunk_rec rec;
	const struct fmt_chunk_rec *r = &rec;
	bool retried = false;
	size_t len;
	const char *bad;
	ssize_t n;
	int ret;

	if (idx >= o->info.nchunks)
		return -EINVAL;
	ret = store_object_rec(o, idx, &rec);
	if (ret)
		return ret;
	len = store_object_chunk_len(o, idx);
	if (r->kind == FMT_CHUNK_HOLE) {
		memset(dst, 0, len);
		return 0;
	}
	ret = store_buf_reserve(&dc->rbuf, &dc->rcap, r->stored_len);
	if (ret)
		return ret;
again:
	n = store_object_src_read(o, dc->rbuf, r->stored_len, r->offset, STORE_SRC_FRAME);
	if (n < 0) {
		log_error("object %s: chunk %" PRIu64 " (stored at offset %" PRIu64 ", %u bytes): "
			  "read error: %s",
			  o->logname, idx, r->offset, r->stored_len, strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n < r->stored_len) {
		bad = "the file is truncated";
		goto bad;
	}
	/* The filter was checked at open: only -EUCLEAN and -ENOMEM come back. */
	ret = store_chunk_decode(dc, r->filter, dc->rbuf, r->stored_len, dst, len, &bad);
	if (ret == -EUCLEAN)
		goto bad;
	if (ret)
		return ret;
	if (XXH3_64bits(dst, len) != r->hash) {
		bad = "checksum mismatch";
		goto bad;
	}
	return 0;

bad:
	if (o->sops->invalidate && !retried) {
		/* A source that keeps copies (a disk cache) may hold a damaged one:
		 * never serve it, fetch the frame once more from where it lives. */
		log_warn("object %s: chunk %" PRIu64 ": %s in the %s source's copy - fetching "
			 "it again",
			 o->logname, idx, bad, o->sops->name);
		o->sops->invalidate(o->sarg, r->offset, r->stored_len);
		retried = true;
		goto again;
	}
	log_error("object %s: chunk %" PRIu64 " (stored at offset %" PRIu64 ", %u bytes): %s - "
		  "the stored data is corrupt; " CORRUPT_HINT,
		  o->logname, idx, r->offset, r->stored_len, bad);
	return -EUCLEAN;
}

ssize_t store_object_pread(const struct store_object *o, struct store_dctx *dc, void *buf,
			   size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	uint32_t cs = o->info.chunk_size;
	int ret;

	if (off >= o->info.size)
		return 0;
	if (len > o->info.size - off)
		len = (size_t)(o->info.size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t idx = pos / cs;
		size_t in = (size_t)(pos % cs);
		size_t clen = store_object_chunk_len(o, idx);
		size_t n = clen - in;

		if (n > len - done)
			n = len - done;
		if (in == 0 && n == clen) {
			ret = store_object_read_chunk(o, idx, dc, p + done);
		} else {
			ret = store_buf_reserve(&dc->lbuf, &dc->lcap, clen);
			if (!ret)
				ret = store_object_read_chunk(o, idx, dc, dc->lbuf);
			if (!ret)
				memcpy(p + done, dc->lbuf + in, n);
		}
		if (ret)
			return ret;
		done += n;
	}
	return (ssize_t)done;
}
