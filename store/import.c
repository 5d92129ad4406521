/* import.c - copy a FAISSx data directory into a store (store_import()).
 *
 * Two passes.  The first walks SRC without following symlinks and collects every
 * directory and regular file; anything else (symlink, FIFO, socket, device,
 * unreadable entry), a reserved top-level name, or a STORE that overlaps SRC is a
 * problem, and the import stops before writing anything.  The second pass creates
 * the directories, then imports each file: a file whose object already holds the
 * same chunk hashes is skipped; the others are compressed on all cores, read back
 * and compared byte for byte with the source, and only then published.  Directory
 * modes and mtimes are set last, deepest first.  SRC is only ever opened read-only.
 *
 * Threads: one pool per import (pool.c); the calling thread is worker 0 and also
 * does all reading from SRC and all writing to the store.  The workers only encode
 * chunks (each with its own store_cctx) or decode and compare them (own store_dctx).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "format.h"
#include "store.h"
#include "store_internal.h"
#include "util/log.h"

#define MAX_PROBLEMS_LOGGED 200
#define BATCH_MAX_BYTES	    (64u << 20)

/* --- pass 1: the list of entries ---------------------------------------------- */

struct entry {
	char *rel; /* path below SRC, no leading '/' */
	bool dir;
	mode_t mode;
	struct timespec mtime;
	uint64_t size;
};

struct scan {
	const char *src;
	struct entry *v;
	size_t n, cap;
	unsigned problems;
	uint64_t bytes;
	dev_t store_dev;
	ino_t store_ino;
};

static void problem(struct scan *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct scan *sc, const char *fmt, ...)
{
	char line[1536];
	va_list ap;

	if (sc->problems++ >= MAX_PROBLEMS_LOGGED)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_error("import: %s", line);
}

static int scan_add(struct scan *sc, const char *rel, const struct stat *st)
{
	struct entry *e;

	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct entry *v = realloc(sc->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sc->v = v;
		sc->cap = cap;
	}
	e = &sc->v[sc->n];
	e->rel = strdup(rel);
	if (!e->rel)
		return -ENOMEM;
	e->dir = S_ISDIR(st->st_mode);
	e->mode = st->st_mode & 07777;
	e->mtime = st->st_mtim;
	e->size = e->dir ? 0 : (uint64_t)st->st_size;
	if (!e->dir)
		sc->bytes += e->size;
	sc->n++;
	return 0;
}

static const char *kind_name(mode_t m)
{
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "not a regular file or directory";
}

/* Opens SRC's file @rel for reading, never following a symlink and without
 * touching its atime when we may.  Returns an fd or -errno. */
static int src_open(int srcfd, const char *rel, int extra)
{
	int fd = openat(srcfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME | extra);

	if (fd < 0 && errno == EPERM) /* O_NOATIME needs ownership */
		fd = openat(srcfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | extra);
	return fd < 0 ? -errno : fd;
}

/* store_walk_dir() callback over SRC: adds each directory and regular file to the
 * list @arg (a struct scan), in pre-order; every other kind of entry, one that
 * cannot be read, a reserved top-level name and the store itself are problems
 * (counted and logged, not returned).  Returns 0, STORE_WALK_SKIP or -ENOMEM. */
static int scan_one(void *arg, const struct store_walk_entry *e)
{
	struct scan *sc = arg;
	int fd;

	if (e->depth == 0 && store_name_reserved(e->name)) {
		problem(sc,
			"%s/%s: the name '%s' is reserved for the store's own data; rename or "
			"remove it in SRC, then run import again",
			sc->src, e->rel, e->name);
		return STORE_WALK_SKIP;
	}
	switch (e->type) {
	case STORE_WALK_ERR_LIST:
		problem(sc,
			"%s/%s cannot be listed: %s; make it readable or move it out of SRC, "
			"then run import again",
			sc->src, e->rel, strerror(-e->err));
		return 0;
	case STORE_WALK_ERR_STAT:
		problem(sc,
			"%s/%s cannot be examined: %s; fix its permissions or move it out of "
			"SRC, then run import again",
			sc->src, e->rel, strerror(-e->err));
		return 0;
	case STORE_WALK_ERR_OPEN:
		problem(sc,
			"%s/%s is a directory that cannot be opened: %s; make it readable or "
			"move it out of SRC, then run import again",
			sc->src, e->rel, strerror(-e->err));
		return 0;
	default:
		break;
	}
	if (e->st->st_dev == sc->store_dev && e->st->st_ino == sc->store_ino) {
		problem(sc,
			"%s/%s is the store itself: STORE must not be inside SRC; choose a STORE "
			"outside %s",
			sc->src, e->rel, sc->src);
		return STORE_WALK_SKIP;
	}
	switch (e->type) {
	case STORE_WALK_DIR:
		return scan_add(sc, e->rel, e->st);
	case STORE_WALK_FILE:
		fd = src_open(e->dirfd, e->name, 0);
		if (fd < 0) {
			problem(sc,
				"%s/%s cannot be opened for reading: %s; make it readable or move "
				"it out of SRC, then run import again",
				sc->src, e->rel, strerror(-fd));
			return 0;
		}
		close(fd);
		return scan_add(sc, e->rel, e->st);
	default:
		problem(sc,
			"%s/%s is %s: faissfs stores only regular files and directories; %s, "
			"then run import again",
			sc->src, e->rel, kind_name(e->st->st_mode),
			S_ISLNK(e->st->st_mode) ? "replace it with the file it points to or move "
						  "it out of SRC"
						: "move it out of SRC");
		return 0;
	}
}

/* Returns 1 if directory @fd is @dev/@ino or below it, 0 if not, -errno.  Walks up
 * with "..", so it also sees through bind mounts' parents as the kernel does. */
static int dir_is_below(int fd, dev_t dev, ino_t ino)
{
	int cur = dup(fd), r = 0;

	if (cur < 0)
		return -errno;
	for (;;) {
		struct stat st, pst;
		int up;

		if (fstat(cur, &st) < 0) {
			r = -errno;
			break;
		}
		if (st.st_dev == dev && st.st_ino == ino) {
			r = 1;
			break;
		}
		up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up < 0) {
			r = -errno;
			break;
		}
		if (fstat(up, &pst) < 0) {
			r = -errno;
			close(up);
			break;
		}
		close(cur);
		cur = up;
		if (pst.st_dev == st.st_dev && pst.st_ino == st.st_ino)
			break; /* reached "/" */
	}
	close(cur);
	return r;
}

/* --- pass 2: one file ---------------------------------------------------------- */

struct imp {
	struct store *st;
	const char *src;
	int srcfd;
	const struct store_params *par;
	struct store_pool *pool;
	struct store_cctx **cc;
	struct store_dctx **dc;
	unsigned nbatch;	 /* chunks per batch */
	uint8_t *buf, *vbuf;	 /* nbatch * chunk_size each */
	struct store_chunk *out; /* nbatch encoded chunks */
	/* the current batch (for the pool functions) */
	size_t blen;	/* logical bytes in buf */
	uint64_t first; /* chunk index of buf[0] */
	const struct store_object *vobj;
	struct store_progress pr;
	struct store_import_stats *stats;
};

#define VERIFY_MISMATCH (-EBADE)

static size_t batch_chunk_len(const struct imp *im, unsigned i)
{
	size_t off = (size_t)i * im->par->chunk_size;
	size_t left = im->blen - off;

	return left < im->par->chunk_size ? left : im->par->chunk_size;
}

static int encode_one(void *arg, unsigned worker, unsigned i)
{
	struct imp *im = arg;

	return store_chunk_encode(im->cc[worker], im->buf + (size_t)i * im->par->chunk_size,
				  batch_chunk_len(im, i), im->par->level, &im->out[i]);
}

static int verify_one(void *arg, unsigned worker, unsigned i)
{
	struct imp *im = arg;
	size_t off = (size_t)i * im->par->chunk_size, len = batch_chunk_len(im, i);
	int r;

	if (store_object_chunk_len(im->vobj, im->first + i) != len)
		return VERIFY_MISMATCH;
	r = store_object_read_chunk(im->vobj, im->first + i, im->dc[worker], im->vbuf + off);
	if (r < 0)
		return r;
	return memcmp(im->vbuf + off, im->buf + off, len) ? VERIFY_MISMATCH : 0;
}

/* Reads [off, off+len) of the source @fd into @buf.  Returns 0, -EAGAIN if the
 * file got shorter (it changed), or -errno. */
static int read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	ssize_t n = store_pread_full(fd, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n < len ? -EAGAIN : 0;
}

/* read_full() for a source that may be sparse: the holes the file system reports
 * (SEEK_DATA/SEEK_HOLE) are zero-filled instead of read, which for a mostly
 * empty file of hundreds of GB is the difference between hours and minutes.
 * Falls back to read_full() where the file system cannot say.  Same returns. */
static int read_sparse(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t pos = off, end = off + len;

	while (pos < end) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;
		size_t n;
		int r;

		if (d < 0 && errno == ENXIO) /* no data from pos on: a hole, or EOF */
			d = (off_t)end;
		else if (d < 0)
			return read_full(fd, buf + (pos - off), (size_t)(end - pos), pos);
		if ((uint64_t)d > pos) {
			n = (size_t)(((uint64_t)d < end ? (uint64_t)d : end) - pos);
			memset(buf + (pos - off), 0, n);
			pos += n;
			continue;
		}
		h = lseek(fd, (off_t)pos, SEEK_HOLE);
		if (h < 0)
			return read_full(fd, buf + (pos - off), (size_t)(end - pos), pos);
		n = (size_t)(((uint64_t)h < end ? (uint64_t)h : end) - pos);
		r = read_full(fd, buf + (pos - off), n, pos);
		if (r < 0)
			return r;
		pos += n;
	}
	return 0;
}

static size_t batch_bytes(const struct imp *im, uint64_t size, uint64_t off)
{
	uint64_t want = (uint64_t)im->nbatch * im->par->chunk_size;

	return (size_t)(size - off < want ? size - off : want);
}

/* Returns 1 if the existing object @name in @dirfd holds the source's bytes by its
 * chunk table (same size, chunk size and chunk hashes), 0 if not, -errno. */
static int same_as_stored(struct imp *im, int dirfd, const char *name, const char *logname, int fd,
			  uint64_t size)
{
	struct store_object *o = NULL;
	const struct store_object_info *info;
	uint32_t cs = im->par->chunk_size;
	uint64_t off = 0;
	int r;

	r = store_object_openat(dirfd, name, logname, &o);
	if (r == -ENOENT || r == -EMEDIUMTYPE)
		return 0;
	if (r == -EUCLEAN) {
		log_warn("import: the object %s is corrupt; it will be replaced", logname);
		return 0;
	}
	if (r < 0) {
		log_error("import: cannot open the existing %s: %s; fix it or remove it, then "
			  "run import again",
			  logname, strerror(-r));
		return r;
	}
	info = store_object_info(o);
	r = info->size == size && info->chunk_size == cs;
	while (r == 1 && off < size) {
		size_t len = batch_bytes(im, size, off);

		int e = read_full(fd, im->buf, len, off);

		if (e < 0) {
			r = e;
			break;
		}
		for (size_t p = 0; p < len; p += cs) {
			size_t cl = len - p < cs ? len - p : cs;

			if (XXH3_64bits(im->buf + p, cl) !=
			    store_object_chunk_hash(o, (off + p) / cs)) {
				r = 0;
				break;
			}
		}
		if (r == 1) {
			off += len;
			im->pr.bytes_done += len;
			store_progress_show(&im->pr, false);
		}
	}
	store_object_free(o);
	return r == -EAGAIN ? 0 : r;
}

/* Compresses source @fd (@size bytes) into a finished temp object; gives its name. */
static int compress_file(struct imp *im, int fd, uint64_t size, char **tmpname)
{
	struct store_writer *w = NULL;
	uint64_t off = 0;
	int r;

	r = store_writer_new(im->st, im->par, &w);
	if (r < 0)
		return r;
	while (off < size) {
		unsigned n;

		im->blen = batch_bytes(im, size, off);
		r = read_sparse(fd, im->buf, im->blen, off);
		if (r < 0)
			goto fail;
		if (off == 0)
			store_writer_set_head(w, im->buf, im->blen < 64 ? im->blen : 64);
		n = (unsigned)((im->blen + im->par->chunk_size - 1) / im->par->chunk_size);
		r = store_pool_run(im->pool, encode_one, im, n);
		if (r < 0)
			goto fail;
		for (unsigned i = 0; i < n; i++) {
			r = store_writer_append_chunk(w, &im->out[i]);
			if (r < 0)
				goto fail;
		}
		off += im->blen;
		im->pr.bytes_done += im->blen / 2;
		store_progress_show(&im->pr, false);
	}
	return store_writer_finish(w, tmpname);
fail:
	store_writer_abort(w);
	return r;
}

/* Reads the temp object back and compares every byte with the source. */
static int verify_file(struct imp *im, int fd, uint64_t size, const char *tmpname,
		       const char *logname)
{
	struct store_object *o = NULL;
	uint64_t off = 0;
	int r;

	r = store_object_openat(store_tmp_fd(im->st), tmpname, logname, &o);
	if (r < 0)
		return r;
	if (store_object_info(o)->size != size) {
		r = VERIFY_MISMATCH;
		goto out;
	}
	im->vobj = o;
	while (off < size) {
		im->blen = batch_bytes(im, size, off);
		im->first = off / im->par->chunk_size;
		r = read_sparse(fd, im->buf, im->blen, off);
		if (r < 0)
			goto out;
		r = store_pool_run(
			im->pool, verify_one, im,
			(unsigned)((im->blen + im->par->chunk_size - 1) / im->par->chunk_size));
		if (r < 0)
			goto out;
		off += im->blen;
		im->pr.bytes_done += im->blen - im->blen / 2;
		store_progress_show(&im->pr, false);
	}
out:
	im->vobj = NULL;
	store_object_free(o);
	return r;
}

static bool stat_changed(const struct stat *a, const struct stat *b)
{
	return a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
	       a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

/* Splits @rel into its directory (opened in the store) and its last name. */
static int store_parent(struct imp *im, const char *rel, const char **name)
{
	const char *slash = strrchr(rel, '/');
	char *dir;
	int fd;

	if (!slash) {
		*name = rel;
		fd = openat(store_root_fd(im->st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	dir = strndup(rel, (size_t)(slash - rel));
	if (!dir)
		return -ENOMEM;
	fd = openat(store_root_fd(im->st), dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -errno;
	*name = slash + 1;
	return fd;
}

/* Makes the store's file @name in @dirfd carry @e's mode and mtime. */
static int fix_attrs(int dirfd, const char *name, const struct entry *e, const char *logname)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, e->mtime};
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	if ((st.st_mode & 07777) != e->mode && fchmodat(dirfd, name, e->mode, 0) < 0)
		goto fail;
	if ((st.st_mtim.tv_sec != e->mtime.tv_sec || st.st_mtim.tv_nsec != e->mtime.tv_nsec) &&
	    utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	return 0;
fail:
	log_error("import: cannot set the mode or mtime of %s: %s; check the store's "
		  "permissions, then run import again",
		  logname, strerror(errno));
	return -errno;
}

static int import_file(struct imp *im, const struct entry *e)
{
	char *logname = NULL, *srcname = NULL, *tmpname = NULL;
	const char *name = NULL;
	struct stat before, after, ost;
	struct entry cur = *e;
	uint64_t done0 = im->pr.bytes_done;
	int dirfd = -1, fd = -1, r;

	if (asprintf(&logname, "%s/%s", store_path(im->st), e->rel) < 0 ||
	    asprintf(&srcname, "%s/%s", im->src, e->rel) < 0) {
		r = -ENOMEM;
		goto out;
	}
	fd = src_open(im->srcfd, e->rel, 0);
	if (fd < 0) {
		r = fd;
		log_error("import: cannot open %s: %s; make it readable, then run import again",
			  srcname, strerror(-r));
		goto out;
	}
	if (fstat(fd, &before) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(before.st_mode)) {
		r = -EAGAIN;
		goto changed;
	}
	dirfd = store_parent(im, e->rel, &name);
	if (dirfd < 0) {
		r = dirfd;
		log_error("import: cannot open the store directory of %s: %s; check STORE, "
			  "then run import again",
			  logname, strerror(-r));
		goto out;
	}

	cur.size = (uint64_t)before.st_size;
	cur.mtime = before.st_mtim;
	cur.mode = before.st_mode & 07777;

	r = same_as_stored(im, dirfd, name, logname, fd, cur.size);
	if (r < 0)
		goto out;
	if (r == 1) {
		r = fix_attrs(dirfd, name, &cur, logname);
		if (r < 0)
			goto out;
		im->stats->skipped++;
	} else {
		r = compress_file(im, fd, cur.size, &tmpname);
		if (r == -EAGAIN)
			goto changed;
		if (r < 0) {
			log_error("import: cannot store %s: %s; fix the cause, then run import "
				  "again (files already stored are skipped)",
				  srcname, strerror(-r));
			goto out;
		}
		r = verify_file(im, fd, cur.size, tmpname, logname);
		if (fstat(fd, &after) < 0 || stat_changed(&before, &after) || r == -EAGAIN) {
			store_discard_tmp(im->st, tmpname);
			goto changed;
		}
		if (r < 0) {
			store_discard_tmp(im->st, tmpname);
			if (r == VERIFY_MISMATCH) {
				log_error("import: BUG: the object written for %s does not read "
					  "back as the source bytes; nothing was published; please "
					  "report this with the file",
					  srcname);
				r = -EIO;
			} else {
				log_error("import: cannot read back the object written for %s: %s; "
					  "nothing was published; run import again",
					  srcname, strerror(-r));
			}
			goto out;
		}
		r = store_publish_tmp(im->st, tmpname, dirfd, name, cur.mode, &cur.mtime);
		if (r < 0) {
			log_error("import: cannot publish %s: %s; fix the cause, then run "
				  "import again",
				  logname, strerror(-r));
			goto out;
		}
	}
	if (fstatat(dirfd, name, &ost, AT_SYMLINK_NOFOLLOW) == 0)
		im->stats->stored_bytes += (uint64_t)ost.st_size;
	if (fstat(fd, &after) < 0 || stat_changed(&before, &after))
		goto changed;
	im->pr.bytes_done = done0 + cur.size;
	im->stats->files++;
	im->stats->logical_bytes += cur.size;
	r = 0;
	goto out;
changed:
	log_error("import: %s changed while it was being imported; stop whatever writes to "
		  "it, then run import again",
		  srcname);
	r = -EAGAIN;
out:
	free(tmpname);
	if (dirfd >= 0)
		close(dirfd);
	if (fd >= 0)
		close(fd);
	free(logname);
	free(srcname);
	return r;
}

/* --- the whole import ------------------------------------------------------------ */

/* Creates directory @e in the store, owner-writable until fix_dirs() runs. */
static int make_dir(struct store *st, const struct entry *e)
{
	struct stat sb;

	if (mkdirat(store_root_fd(st), e->rel, 0700) == 0)
		return 0;
	if (errno == EEXIST && fstatat(store_root_fd(st), e->rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(sb.st_mode)) {
		if ((sb.st_mode & 0700) != 0700 &&
		    fchmodat(store_root_fd(st), e->rel, (sb.st_mode & 07777) | 0700, 0) < 0)
			goto fail;
		return 0;
	}
	if (errno == EEXIST) {
		log_error("import: %s/%s exists in the store and is not a directory; move it "
			  "out of the store, then run import again",
			  store_path(st), e->rel);
		return -ENOTDIR;
	}
fail:
	log_error("import: cannot create the directory %s/%s: %s; check the store's "
		  "permissions and free space, then run import again",
		  store_path(st), e->rel, strerror(errno));
	return -errno;
}

/* Sets every directory's mode and mtime, deepest first (entries are in pre-order). */
static int fix_dirs(struct store *st, const struct scan *sc)
{
	for (size_t i = sc->n; i-- > 0;) {
		const struct entry *e = &sc->v[i];
		char *logname = NULL;
		int r;

		if (!e->dir)
			continue;
		if (asprintf(&logname, "%s/%s", store_path(st), e->rel) < 0)
			return -ENOMEM;
		r = fix_attrs(store_root_fd(st), e->rel, e, logname);
		free(logname);
		if (r < 0)
			return r;
	}
	return 0;
}

static unsigned default_threads(const struct store_import_opts *opts)
{
	long n;

	if (opts && opts->threads)
		return opts->threads;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static void imp_release(struct imp *im, unsigned nthreads)
{
	if (im->cc)
		for (unsigned i = 0; i < nthreads; i++)
			store_cctx_free(im->cc[i]);
	if (im->dc)
		for (unsigned i = 0; i < nthreads; i++)
			store_dctx_free(im->dc[i]);
	if (im->out)
		for (unsigned i = 0; i < im->nbatch; i++)
			store_chunk_release(&im->out[i]);
	free(im->cc);
	free(im->dc);
	free(im->out);
	free(im->buf);
	free(im->vbuf);
}

/* Allocates the per-thread contexts and the batch buffers. */
static int imp_alloc(struct imp *im, unsigned nthreads)
{
	size_t cs = im->par->chunk_size;

	im->nbatch = 4 * nthreads;
	while (im->nbatch > 1 && (size_t)im->nbatch * cs > BATCH_MAX_BYTES)
		im->nbatch--;
	im->cc = calloc(nthreads, sizeof(*im->cc));
	im->dc = calloc(nthreads, sizeof(*im->dc));
	im->out = calloc(im->nbatch, sizeof(*im->out));
	im->buf = malloc(im->nbatch * cs);
	im->vbuf = malloc(im->nbatch * cs);
	if (!im->cc || !im->dc || !im->out || !im->buf || !im->vbuf)
		return -ENOMEM;
	for (unsigned i = 0; i < nthreads; i++) {
		im->cc[i] = store_cctx_new();
		im->dc[i] = store_dctx_new();
		if (!im->cc[i] || !im->dc[i])
			return -ENOMEM;
	}
	return 0;
}

/* Checks that SRC and the store do not contain each other. */
static int check_overlap(struct store *st, int srcfd, const char *src)
{
	struct stat s_src, s_store;
	int r;

	if (fstat(srcfd, &s_src) < 0 || fstat(store_root_fd(st), &s_store) < 0)
		return -errno;
	r = dir_is_below(store_root_fd(st), s_src.st_dev, s_src.st_ino);
	if (r == 1) {
		log_error("import: the store %s is inside SRC %s (or is SRC); choose a STORE "
			  "outside SRC",
			  store_path(st), src);
		return -EINVAL;
	}
	if (r == 0)
		r = dir_is_below(srcfd, s_store.st_dev, s_store.st_ino);
	if (r == 1) {
		log_error("import: SRC %s is inside the store %s; choose a SRC outside STORE", src,
			  store_path(st));
		return -EINVAL;
	}
	if (r < 0)
		log_error("import: cannot check where %s and %s are: %s", src, store_path(st),
			  strerror(-r));
	return r;
}

int store_import(struct store *st, const char *src, const struct store_import_opts *opts,
		 struct store_import_stats *stats)
{
	struct scan sc = {.src = src};
	struct imp im = {.st = st, .src = src, .srcfd = -1};
	struct store_import_stats acc = {0};
	unsigned nthreads = default_threads(opts);
	struct stat sst;
	int r;
	double t0 = store_now(), secs;

	im.par = opts && opts->params ? opts->params : store_default_params(st);
	im.stats = &acc;
	r = store_params_check(im.par);
	if (r < 0)
		return r;

	im.srcfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im.srcfd < 0) {
		r = -errno;
		log_error("import: cannot open SRC %s: %s; give an existing, readable directory",
			  src, strerror(-r));
		return r;
	}
	r = check_overlap(st, im.srcfd, src);
	if (r < 0)
		goto out;
	if (fstat(store_root_fd(st), &sst) < 0) {
		r = -errno;
		goto out;
	}
	sc.store_dev = sst.st_dev;
	sc.store_ino = sst.st_ino;

	/* pass 1: look at everything before writing anything */
	r = store_walk_dir(im.srcfd, scan_one, &sc);
	if (r < 0)
		goto out;
	if (sc.problems) {
		if (sc.problems > MAX_PROBLEMS_LOGGED)
			log_error("import: ... and %u more problems",
				  sc.problems - MAX_PROBLEMS_LOGGED);
		log_error("import: %u problem%s in %s, nothing was written; fix %s, then run "
			  "import again",
			  sc.problems, sc.problems == 1 ? "" : "s", src,
			  sc.problems == 1 ? "it" : "them");
		r = -EINVAL;
		goto out;
	}

	/* pass 2 */
	r = imp_alloc(&im, nthreads);
	if (r < 0)
		goto out;
	r = store_pool_new(nthreads, &im.pool);
	if (r < 0) {
		if (r != -ENOMEM)
			log_error("import: cannot start a compression thread: %s (use --threads "
				  "with a smaller number)",
				  strerror(-r));
		goto out;
	}

	store_progress_start(&im.pr, "import", opts && opts->progress);
	for (size_t i = 0; i < sc.n; i++) {
		if (sc.v[i].dir)
			acc.dirs++;
		else
			im.pr.files_total++;
	}
	im.pr.bytes_total = sc.bytes;

	for (size_t i = 0; i < sc.n && r == 0; i++)
		if (sc.v[i].dir)
			r = make_dir(st, &sc.v[i]);
	for (size_t i = 0; i < sc.n && r == 0; i++) {
		if (sc.v[i].dir)
			continue;
		r = import_file(&im, &sc.v[i]);
		im.pr.files_done++;
		store_progress_show(&im.pr, false);
	}
	if (r == 0)
		r = fix_dirs(st, &sc);
	store_progress_show(&im.pr, true);
	store_progress_end(&im.pr);

	secs = store_now() - t0;
	acc.seconds = secs;
	/* On success the caller prints the summary (faissfs import does, once). */
	log_msg(r == 0 ? LOG_LVL_DEBUG : LOG_LVL_WARN,
		"import: %s %llu files (%llu skipped as already stored), %llu dirs, %.1f MiB -> "
		 "%.1f MiB stored (ratio %.2f) in %.1f s, %.1f MiB/s",
		 r == 0 ? "done:" : "stopped after", (unsigned long long)acc.files,
		 (unsigned long long)acc.skipped, (unsigned long long)acc.dirs,
		 (double)acc.logical_bytes / 1048576.0, (double)acc.stored_bytes / 1048576.0,
		 acc.stored_bytes ? (double)acc.logical_bytes / (double)acc.stored_bytes : 0.0,
		 secs, secs > 0 ? (double)acc.logical_bytes / secs / 1048576.0 : 0.0);
	if (r == 0 && stats)
		*stats = acc;
out:
	store_pool_free(im.pool);
	imp_release(&im, nthreads);
	for (size_t i = 0; i < sc.n; i++)
		free(sc.v[i].rel);
	free(sc.v);
	if (im.srcfd >= 0)
		close(im.srcfd);
	return r;
}
