/* object_write.c - writing a new object into tmp/ and publishing it.
 *
 * A writer appends chunk frames sequentially to a fresh temp file in
 * STORE/.faissfs/tmp/ behind a placeholder header, collecting the chunk records;
 * commit writes the trailer, then the real header, fsyncs and renames the file
 * into place.  Until that rename nothing outside tmp/ changes, so a failure at
 * any point (ENOSPC...) leaves the old file intact; the temp file is removed.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define WBUF_SIZE (1u << 20) /* appends are gathered into write(2)s of this size */
#define HEAD_SIZE 64u	     /* logical bytes kept for the FAISS header */

struct store_writer {
	struct store *st;
	struct store_params p;
	int fd;
	char tmpname[64];
	uint64_t file_off; /* bytes in the file + wbuf so far */
	uint64_t size;	   /* logical bytes appended */
	uint64_t stored;   /* sum of chunk stored lengths */
	uint8_t *wbuf;	   /* pending bytes, not yet written */
	size_t wlen;
	uint8_t *recs; /* nchunks * 24 bytes, on-disk form */
	size_t recs_cap;
	uint64_t nchunks;
	uint32_t incompat; /* FMT_OBJ_INCOMPAT_* the chunks so far need */
	bool short_chunk;  /* a chunk shorter than chunk_size came: it must be the last */
	bool used_write;   /* fed by store_writer_write() */
	bool used_append;  /* fed by store_writer_append_chunk() */
	int err;	   /* first error; the writer is dead after one */
	uint8_t head[HEAD_SIZE];
	size_t head_len;
	/* store_writer_write() state */
	struct store_cctx *cc;
	struct store_chunk chunk;
	uint8_t *cbuf; /* a partial chunk */
	size_t clen;
};

int store_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static void writer_release(struct store_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	store_cctx_free(w->cc);
	store_chunk_release(&w->chunk);
	free(w->cbuf);
	free(w->wbuf);
	free(w->recs);
	free(w);
}

int store_writer_new(struct store *st, const struct store_params *p, struct store_writer **out)
{
	static unsigned long seq;
	struct store_writer *w;
	uint8_t hdr[FMT_OBJ_HEADER_SIZE] = {0};
	int ret;

	if (st->tmp_fd < 0 || (st->flags & STORE_RDONLY))
		return -EROFS;
	if (!p)
		p = &st->params;
	ret = store_params_check(p);
	if (ret)
		return ret;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->st = st;
	w->p = *p;
	w->fd = -1;
	w->wbuf = malloc(WBUF_SIZE);
	if (!w->wbuf) {
		ret = -ENOMEM;
		goto fail;
	}
	for (int tries = 0; tries < 100; tries++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(w->tmpname, sizeof(w->tmpname), "obj.%ld.%lu.%lx", (long)getpid(),
			 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), (unsigned long)ts.tv_nsec);
		w->fd = openat(st->tmp_fd, w->tmpname,
			       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (w->fd >= 0 || errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		ret = -errno;
		log_error("%s: cannot create a temp object in %s/%s/: %s", st->path, FMT_META_DIR,
			  FMT_TMP_DIR, strerror(-ret));
		goto fail;
	}
	/* Placeholder header (zeros): a crash before commit leaves no valid object. */
	memcpy(w->wbuf, hdr, sizeof(hdr));
	w->wlen = sizeof(hdr);
	w->file_off = sizeof(hdr);
	*out = w;
	return 0;

fail:
	writer_release(w);
	return ret;
}

static int wbuf_flush(struct store_writer *w)
{
	int ret;

	if (!w->wlen)
		return 0;
	ret = store_write_all(w->fd, w->wbuf, w->wlen);
	w->wlen = 0;
	return ret;
}

/* Appends @len stored bytes to the file through the write buffer. */
static int append_bytes(struct store_writer *w, const void *buf, size_t len)
{
	int ret;

	if (w->wlen + len > WBUF_SIZE) {
		ret = wbuf_flush(w);
		if (ret)
			return ret;
	}
	if (len >= WBUF_SIZE) {
		ret = store_write_all(w->fd, buf, len);
	} else {
		memcpy(w->wbuf + w->wlen, buf, len);
		w->wlen += len;
		ret = 0;
	}
	if (!ret)
		w->file_off += len;
	return ret;
}

static int append_chunk(struct store_writer *w, const struct store_chunk *c)
{
	struct fmt_chunk_rec r = {0};
	size_t need;
	int ret;

	if (w->err)
		return w->err;
	if (c->logical_len == 0 || c->logical_len > w->p.chunk_size || w->short_chunk ||
	    c->kind > FMT_CHUNK_ZSTD || c->stored_len == 0 || c->filter > FMT_FILTER_MAX ||
	    (c->filter && c->kind != FMT_CHUNK_ZSTD))
		return -EINVAL;
	need = (w->nchunks + 1) * FMT_CHUNK_REC_SIZE;
	if (w->recs_cap < need) {
		/* grow geometrically: one realloc per doubling, not per chunk */
		ret = store_buf_reserve(&w->recs, &w->recs_cap,
					need > 2 * w->recs_cap ? need : 2 * w->recs_cap);
		if (ret)
			return w->err = ret;
	}
	r.offset = w->file_off;
	r.stored_len = c->stored_len;
	r.kind = c->kind;
	r.filter = c->filter;
	r.hash = c->hash;
	ret = append_bytes(w, c->data, c->stored_len);
	if (ret)
		return w->err = ret;
	store_rec_put(w->recs + w->nchunks * FMT_CHUNK_REC_SIZE, &r);
	w->nchunks++;
	w->size += c->logical_len;
	w->stored += c->stored_len;
	if (c->filter)
		w->incompat |= FMT_OBJ_INCOMPAT_FILTER;
	if (c->logical_len < w->p.chunk_size)
		w->short_chunk = true;
	return 0;
}

int store_writer_append_chunk(struct store_writer *w, const struct store_chunk *c)
{
	if (w->used_write)
		return -EINVAL;
	w->used_append = true;
	return append_chunk(w, c);
}

void store_writer_set_head(struct store_writer *w, const void *buf, size_t len)
{
	w->head_len = len < HEAD_SIZE ? len : HEAD_SIZE;
	memcpy(w->head, buf, w->head_len);
}

static int encode_and_append(struct store_writer *w, const void *buf, size_t len)
{
	int ret = store_chunk_encode(w->cc, buf, len, w->p.level, &w->chunk);

	if (ret)
		return w->err = ret;
	return append_chunk(w, &w->chunk);
}

int store_writer_write(struct store_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t cs = w->p.chunk_size;
	int ret;

	if (w->err)
		return w->err;
	if (w->used_append)
		return -EINVAL;
	w->used_write = true;
	if (!w->cc) {
		w->cc = store_cctx_new();
		w->cbuf = malloc(cs);
		if (!w->cc || !w->cbuf)
			return w->err = -ENOMEM;
	}
	while (len) {
		uint64_t lpos = w->size + w->clen; /* logical position of p */
		size_t n;

		if (lpos < HEAD_SIZE) {
			n = HEAD_SIZE - (size_t)lpos < len ? HEAD_SIZE - (size_t)lpos : len;
			memcpy(w->head + lpos, p, n);
			w->head_len = (size_t)lpos + n;
		}
		if (w->clen == 0 && len >= cs) {
			/* Whole chunks straight from the caller's buffer. */
			ret = encode_and_append(w, p, cs);
			n = cs;
		} else {
			n = cs - w->clen < len ? cs - w->clen : len;
			memcpy(w->cbuf + w->clen, p, n);
			w->clen += n;
			ret = 0;
			if (w->clen == cs) {
				ret = encode_and_append(w, w->cbuf, cs);
				w->clen = 0;
			}
		}
		if (ret)
			return ret;
		p += n;
		len -= n;
	}
	return 0;
}

static int set_mode_time(int fd, mode_t mode, const struct timespec *mtime);

/* Writes the trailer and header, sets @mode and @mtime if @meta, and fsyncs: the
 * temp file is then a whole object. */
static int writer_finish_file(struct store_writer *w, bool meta, mode_t mode,
			      const struct timespec *mtime)
{
	struct store_meta m = {0};
	uint8_t hdr[FMT_OBJ_HEADER_SIZE];
	uint8_t *trailer = NULL;
	size_t tlen;
	uint64_t toff;
	int ret;

	if (w->err)
		return w->err;
	if (w->clen) {
		ret = encode_and_append(w, w->cbuf, w->clen);
		w->clen = 0;
		if (ret)
			return ret;
	}
	m.size = w->size;
	m.chunk_size = w->p.chunk_size;
	m.level = w->p.level;
	m.stored = w->stored;
	m.nchunks = w->nchunks;
	store_faiss_parse(w->head, w->head_len, &m.faiss);
	ret = store_meta_encode(&m, w->recs, &trailer, &tlen);
	if (ret)
		return ret;
	toff = w->file_off;
	ret = append_bytes(w, trailer, tlen);
	free(trailer);
	if (!ret)
		ret = wbuf_flush(w);
	if (ret)
		return ret;
	store_header_build(hdr, w->p.chunk_size, w->size, toff, (uint32_t)tlen, w->incompat);
	ret = pwrite_full(w->fd, hdr, sizeof(hdr), 0);
	if (!ret && meta)
		ret = set_mode_time(w->fd, mode, mtime);
	if (!ret && fsync(w->fd))
		ret = -errno;
	return ret;
}

static int set_mode_time(int fd, mode_t mode, const struct timespec *mtime)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_NOW}};

	if (fchmod(fd, mode & 07777))
		return -errno;
	if (mtime)
		ts[1] = *mtime;
	if (futimens(fd, ts))
		return -errno;
	return 0;
}

/* store_writer_finish(), optionally with the mode and mtime set before the fsync. */
static int writer_finish(struct store_writer *w, char **tmpname, bool meta, mode_t mode,
			 const struct timespec *mtime)
{
	char *name;
	int ret = writer_finish_file(w, meta, mode, mtime);

	if (!ret) {
		name = strdup(w->tmpname);
		if (name) {
			*tmpname = name;
			close(w->fd);
			w->fd = -1;
			writer_release(w);
			return 0;
		}
		ret = -ENOMEM;
	}
	log_error("%s: cannot write a new object: %s (free some space or check the store's "
		  "filesystem, then retry)",
		  w->st->path, strerror(-ret));
	store_writer_abort(w);
	return ret;
}

int store_writer_finish(struct store_writer *w, char **tmpname)
{
	return writer_finish(w, tmpname, false, 0, NULL);
}

/* Renames the finished temp object into place and fsyncs @dirfd; on failure
 * removes it. */
static int publish_rename(struct store *st, const char *tmpname, int dirfd, const char *name)
{
	struct stat cur;
	int ret;

	/* A file with several names gets the new inode under each of them. */
	if (fstatat(dirfd, name, &cur, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(cur.st_mode) &&
	    cur.st_nlink > 1) {
		ret = store_relink_tmp(st, tmpname, &cur);
		return ret < 0 ? ret : 0;
	}
	if (renameat(st->tmp_fd, tmpname, dirfd, name)) {
		ret = -errno;
		log_error("%s: cannot publish the new object %s: %s (check the space and "
			  "permissions in the store)",
			  st->path, name, strerror(-ret));
		store_discard_tmp(st, tmpname);
		return ret;
	}
	if (fsync(dirfd)) {
		/* The object is in place; only its durability is in doubt. */
		ret = -errno;
		log_error("%s: fsync of the directory of %s failed: %s (check the store's "
			  "filesystem)",
			  st->path, name, strerror(-ret));
		return ret;
	}
	return 0;
}

int store_publish_tmp(struct store *st, const char *tmpname, int dirfd, const char *name,
		      mode_t mode, const struct timespec *mtime)
{
	int fd, ret;

	fd = openat(st->tmp_fd, tmpname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
	} else {
		ret = set_mode_time(fd, mode, mtime);
		if (!ret && fsync(fd))
			ret = -errno;
		close(fd);
	}
	if (ret) {
		log_error("%s: cannot publish the new object %s: %s (check the space and "
			  "permissions in the store)",
			  st->path, name, strerror(-ret));
		store_discard_tmp(st, tmpname);
		return ret;
	}
	return publish_rename(st, tmpname, dirfd, name);
}

void store_discard_tmp(struct store *st, const char *tmpname)
{
	if (st->tmp_fd >= 0 && tmpname)
		unlinkat(st->tmp_fd, tmpname, 0);
}

int store_writer_commit(struct store_writer *w, int dirfd, const char *name, mode_t mode,
			const struct timespec *mtime)
{
	struct store *st = w->st;
	char *tmpname = NULL;
	int ret;

	/* Mode and mtime before the one fsync, then only the rename is left. */
	ret = writer_finish(w, &tmpname, true, mode, mtime);
	if (ret)
		return ret;
	ret = publish_rename(st, tmpname, dirfd, name);
	free(tmpname);
	return ret;
}

void store_writer_abort(struct store_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	store_discard_tmp(w->st, w->tmpname);
	writer_release(w);
}
