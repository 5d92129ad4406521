/* import.c - copy a FAISSx data directory into a store (store_import()).
 *
 * Two passes.  The first walks SRC without following symlinks and collects every
 * directory, regular file, symlink (with its target), FIFO, socket and device
 * node; an unreadable entry, a mount point, a reserved top-level name, or a STORE
 * that overlaps SRC is a problem, and the import stops before writing anything.
 * Names of one source inode (hard links: same st_dev and st_ino) are grouped: the
 * first in walk order is imported, the others become hard links to it in the
 * store, so the object is written once.  The second pass marks the store as
 * holding links if it will (FMT_SB_RO_COMPAT_LINKS), creates the directories, then
 * imports each entry: a file whose object already holds the same chunk hashes is
 * skipped; the others are compressed on all cores, read back and compared byte
 * for byte with the source, and only then published.  Symlinks (same target,
 * never followed), nodes (mknodat) and extra hard links are made in tmp/ and
 * renamed into place, then get the source's owner, mode and mtime.  Directory
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

enum ent_kind {
	ENT_DIR,
	ENT_FILE,
	ENT_SYMLINK,
	ENT_NODE, /* FIFO, socket, character or block device */
};

#define NO_LINK SIZE_MAX

struct entry {
	char *rel; /* path below SRC, no leading '/' */
	enum ent_kind kind;
	mode_t type; /* S_IFMT bits of the source */
	mode_t mode; /* permission bits (07777) */
	uid_t uid;
	gid_t gid;
	dev_t rdev; /* ENT_NODE */
	dev_t dev;  /* of the source inode: hard links are grouped by (dev, ino) */
	ino_t ino;
	nlink_t nlink;
	struct timespec mtime;
	uint64_t size;
	char *target;	/* ENT_SYMLINK: what it points to, never followed */
	size_t link_to; /* another name of the same source inode, earlier: the
			   entry to hard-link to; NO_LINK for the first name */
};

struct scan {
	const char *src;
	struct entry *v;
	size_t n, cap;
	unsigned problems;
	uint64_t bytes;
	uint64_t symlinks, nodes, links; /* links: names after the first of an inode */
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

/* Adds @rel (lstat @st, of kind @kind; @target for a symlink, taken over) to the
 * list.  Returns 0 or -ENOMEM (@target then freed). */
static int scan_add(struct scan *sc, const char *rel, const struct stat *st, enum ent_kind kind,
		    char *target)
{
	struct entry *e;

	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct entry *v = realloc(sc->v, cap * sizeof(*v));

		if (!v) {
			free(target);
			return -ENOMEM;
		}
		sc->v = v;
		sc->cap = cap;
	}
	e = &sc->v[sc->n];
	memset(e, 0, sizeof(*e));
	e->rel = strdup(rel);
	if (!e->rel) {
		free(target);
		return -ENOMEM;
	}
	e->kind = kind;
	e->type = st->st_mode & S_IFMT;
	e->mode = st->st_mode & 07777;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->rdev = st->st_rdev;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->nlink = st->st_nlink;
	e->mtime = st->st_mtim;
	e->size = kind == ENT_FILE ? (uint64_t)st->st_size : 0;
	e->target = target;
	e->link_to = NO_LINK;
	sc->n++;
	return 0;
}

static int cmp_inode(const void *a, const void *b, void *arg)
{
	const struct entry *v = arg;
	const struct entry *x = &v[*(const size_t *)a], *y = &v[*(const size_t *)b];

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Groups the names of one source inode (non-directories with st_nlink > 1): each
 * name after the first in walk order gets link_to = the first; then counts what
 * pass 2 will make.  Returns 0 or -ENOMEM. */
static int scan_group(struct scan *sc)
{
	size_t *ix, n = 0;

	for (size_t i = 0; i < sc->n; i++)
		if (sc->v[i].kind != ENT_DIR && sc->v[i].nlink > 1)
			n++;
	ix = malloc((n ? n : 1) * sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < sc->n; i++)
		if (sc->v[i].kind != ENT_DIR && sc->v[i].nlink > 1)
			ix[n++] = i;
	qsort_r(ix, n, sizeof(*ix), cmp_inode, sc->v);
	for (size_t i = 1; i < n; i++) {
		const struct entry *first = &sc->v[ix[i - 1]];
		struct entry *e = &sc->v[ix[i]];

		if (e->dev != first->dev || e->ino != first->ino)
			continue;
		e->link_to = first->link_to != NO_LINK ? first->link_to : ix[i - 1];
	}
	free(ix);
	for (size_t i = 0; i < sc->n; i++) {
		const struct entry *e = &sc->v[i];

		if (e->link_to != NO_LINK)
			sc->links++;
		else if (e->kind == ENT_FILE)
			sc->bytes += e->size;
		else if (e->kind == ENT_SYMLINK)
			sc->symlinks++;
		else if (e->kind == ENT_NODE)
			sc->nodes++;
	}
	return 0;
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

/* store_walk_dir() callback over SRC: adds each directory, regular file, symlink
 * and special file to the list @arg (a struct scan), in pre-order; an entry that
 * cannot be read, a mount point, a reserved top-level name and the store itself
 * are problems (counted and logged, not returned).  Returns 0, STORE_WALK_SKIP or
 * -ENOMEM. */
static int scan_one(void *arg, const struct store_walk_entry *e)
{
	struct scan *sc = arg;
	mode_t m = e->st ? e->st->st_mode : 0;
	char *target = NULL;
	int fd, r;

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
		return scan_add(sc, e->rel, e->st, ENT_DIR, NULL);
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
		return scan_add(sc, e->rel, e->st, ENT_FILE, NULL);
	default:
		break;
	}
	if (S_ISLNK(m)) {
		r = store_readlink_at(e->dirfd, e->name, e->st->st_size, &target);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			problem(sc,
				"%s/%s is a symbolic link that cannot be read: %s; fix it or move "
				"it out of SRC, then run import again",
				sc->src, e->rel, strerror(-r));
			return 0;
		}
		return scan_add(sc, e->rel, e->st, ENT_SYMLINK, target);
	}
	if (S_ISFIFO(m) || S_ISSOCK(m) || S_ISCHR(m) || S_ISBLK(m))
		return scan_add(sc, e->rel, e->st, ENT_NODE, NULL);
	problem(sc,
		"%s/%s %s: import does not cross into another filesystem; import that "
		"one separately or move it out of SRC, then run import again",
		sc->src, e->rel, S_ISDIR(m) ? "is a mount point" : "is of an unknown file type");
	return 0;
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
	/* Not there, a plain or special file, a symlink: replaced by the object. */
	if (r == -ENOENT || r == -EMEDIUMTYPE || r == -ELOOP)
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

/* Gives the store entry @name in @dirfd @e's mode (not to a symlink: Linux has no
 * mode on them) and mtime, and with @owner also its owner, never following @name.
 * An owner that cannot be set without privileges (EPERM) is left as it is, with a
 * warning: the mode and mtime are still set.  Returns 0 or -errno (logged). */
static int set_attrs(int dirfd, const char *name, const struct entry *e, bool owner,
		     const char *logname)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, e->mtime};
	bool chowned = false;
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	if (owner && (st.st_uid != e->uid || st.st_gid != e->gid)) {
		chowned = fchownat(dirfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) == 0;
		if (!chowned && errno != EPERM)
			goto fail;
		if (!chowned)
			log_warn("import: cannot give %s the owner %ld:%ld of its source (not "
				 "privileged); it stays %ld:%ld",
				 logname, (long)e->uid, (long)e->gid, (long)st.st_uid,
				 (long)st.st_gid);
	}
	/* After the chown, which clears set-id bits.  fchmodat() follows a symlink,
	 * so never on one (the lstat above says what @name is). */
	if (!S_ISLNK(st.st_mode) && (chowned || (st.st_mode & 07777) != e->mode) &&
	    fchmodat(dirfd, name, e->mode, 0) < 0)
		goto fail;
	if ((st.st_mtim.tv_sec != e->mtime.tv_sec || st.st_mtim.tv_nsec != e->mtime.tv_nsec) &&
	    utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	return 0;
fail:
	log_error("import: cannot set the %smode or mtime of %s: %s; check the store's "
		  "permissions, then run import again",
		  owner ? "owner, " : "", logname, strerror(errno));
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
		r = set_attrs(dirfd, name, &cur, false, logname);
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

/* --- pass 2: symlinks, special files, hard links ------------------------------- */

/* A temp name in tmp/ for a node being made (never an object's "obj." name). */
static void node_tmpname(char *buf, size_t n)
{
	static unsigned seq;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, n, "node.%ld.%u.%ld", (long)getpid(), seq++, (long)ts.tv_nsec);
}

/* Moves the node @tmpname just made in tmp/ to @name in @dirfd, replacing what is
 * there (atomically: a reader sees the old entry or the new one).  When @name
 * already was the same inode (a hard link made again) rename does nothing, so
 * the temp name is removed in any case.  Returns 0 or -errno. */
static int node_publish(struct imp *im, const char *tmpname, int dirfd, const char *name)
{
	int r = renameat(store_tmp_fd(im->st), tmpname, dirfd, name) < 0 ? -errno : 0;

	unlinkat(store_tmp_fd(im->st), tmpname, 0);
	if (r == 0 && fsync(dirfd) < 0)
		r = -errno;
	return r;
}

/* True if @name in @dirfd already is what @e asks for: a symlink with the same
 * target, or a node of the same type and device number. */
static bool node_same(int dirfd, const char *name, const struct entry *e)
{
	char *target = NULL;
	struct stat st;
	bool same;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || (st.st_mode & S_IFMT) != e->type)
		return false;
	if (e->kind == ENT_NODE)
		return (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) || st.st_rdev == e->rdev;
	if (store_readlink_at(dirfd, name, st.st_size, &target) < 0)
		return false;
	same = strcmp(target, e->target) == 0;
	free(target);
	return same;
}

/* Imports the symlink, FIFO, socket or device @e: made in tmp/ (symlinkat with
 * the same target, or mknodat with its type and device number), renamed over
 * its name in the store, then given its owner, mode and mtime.  An entry that is
 * already the same is only given its attributes.  Returns 0 or -errno (logged). */
static int import_node(struct imp *im, const struct entry *e)
{
	char *logname = NULL, tmpname[96];
	const char *name = NULL;
	int dirfd = -1, r;

	if (asprintf(&logname, "%s/%s", store_path(im->st), e->rel) < 0)
		return -ENOMEM;
	dirfd = store_parent(im, e->rel, &name);
	if (dirfd < 0) {
		r = dirfd;
		log_error("import: cannot open the store directory of %s: %s; check STORE, "
			  "then run import again",
			  logname, strerror(-r));
		goto out;
	}
	if (!node_same(dirfd, name, e)) {
		node_tmpname(tmpname, sizeof(tmpname));
		if (e->kind == ENT_SYMLINK)
			r = symlinkat(e->target, store_tmp_fd(im->st), tmpname);
		else
			r = mknodat(store_tmp_fd(im->st), tmpname, e->type | 0600, e->rdev);
		r = r < 0 ? -errno : node_publish(im, tmpname, dirfd, name);
		if (r < 0) {
			log_error("import: cannot create %s %s: %s; %s, then run import again",
				  e->kind == ENT_SYMLINK ? "the symbolic link" : "the special file",
				  logname, strerror(-r),
				  r == -EPERM ? "device nodes need the CAP_MKNOD privilege (run "
						"import as root)"
					      : "check the store's permissions and free space");
			goto out;
		}
	}
	r = set_attrs(dirfd, name, e, true, logname);
	if (r == 0 && e->kind == ENT_SYMLINK)
		im->stats->symlinks++;
	else if (r == 0)
		im->stats->specials++;
out:
	if (dirfd >= 0)
		close(dirfd);
	free(logname);
	return r;
}

/* Makes @e, a later name of the source inode whose first name is @first (already
 * imported), a hard link to @first's store entry: linked into tmp/ and renamed over
 * @e's name, unless it already is that inode.  Returns 0 or -errno (logged). */
static int import_link(struct imp *im, const struct entry *e, const struct entry *first)
{
	char *logname = NULL, tmpname[96];
	const char *name = NULL;
	struct stat a, b;
	int dirfd = -1, root = store_root_fd(im->st), r = 0;

	if (asprintf(&logname, "%s/%s", store_path(im->st), e->rel) < 0)
		return -ENOMEM;
	dirfd = store_parent(im, e->rel, &name);
	if (dirfd < 0) {
		r = dirfd;
		log_error("import: cannot open the store directory of %s: %s; check STORE, "
			  "then run import again",
			  logname, strerror(-r));
		goto out;
	}
	if (fstatat(root, first->rel, &a, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		goto fail;
	}
	if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		goto done;
	node_tmpname(tmpname, sizeof(tmpname));
	/* linkat() without AT_SYMLINK_FOLLOW links a symlink itself, never its target. */
	r = linkat(root, first->rel, store_tmp_fd(im->st), tmpname, 0) < 0
		    ? -errno
		    : node_publish(im, tmpname, dirfd, name);
	if (r < 0)
		goto fail;
done:
	im->stats->links++;
	goto out;
fail:
	log_error("import: cannot make %s a hard link to %s/%s: %s; check the store's "
		  "permissions, then run import again",
		  logname, store_path(im->st), first->rel, strerror(-r));
out:
	if (dirfd >= 0)
		close(dirfd);
	free(logname);
	return r;
}

/* Imports entry @i of @sc (not a directory). */
static int import_entry(struct imp *im, const struct scan *sc, size_t i)
{
	const struct entry *e = &sc->v[i];

	if (e->link_to != NO_LINK)
		return import_link(im, e, &sc->v[e->link_to]);
	if (e->kind == ENT_FILE)
		return import_file(im, e);
	return import_node(im, e);
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

		if (e->kind != ENT_DIR)
			continue;
		if (asprintf(&logname, "%s/%s", store_path(st), e->rel) < 0)
			return -ENOMEM;
		r = set_attrs(store_root_fd(st), e->rel, e, false, logname);
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
	if (r == 0)
		r = scan_group(&sc);
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

	/* Before the first link is made: a faissfs that does not know links must
	 * not open this store read-write (it would split them). */
	if (sc.symlinks || sc.nodes || sc.links) {
		r = store_feature_links(st);
		if (r < 0)
			goto out;
	}

	store_progress_start(&im.pr, "import", opts && opts->progress);
	for (size_t i = 0; i < sc.n; i++) {
		if (sc.v[i].kind == ENT_DIR)
			acc.dirs++;
		else
			im.pr.files_total++;
	}
	im.pr.bytes_total = sc.bytes;

	for (size_t i = 0; i < sc.n && r == 0; i++)
		if (sc.v[i].kind == ENT_DIR)
			r = make_dir(st, &sc.v[i]);
	for (size_t i = 0; i < sc.n && r == 0; i++) {
		if (sc.v[i].kind == ENT_DIR)
			continue;
		r = import_entry(&im, &sc, i);
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
		"import: %s %llu files (%llu skipped as already stored), %llu dirs, %llu "
		"symlinks, %llu special files, %llu extra hard links, %.1f MiB -> "
		"%.1f MiB stored (ratio %.2f) in %.1f s, %.1f MiB/s",
		r == 0 ? "done:" : "stopped after", (unsigned long long)acc.files,
		(unsigned long long)acc.skipped, (unsigned long long)acc.dirs,
		(unsigned long long)acc.symlinks, (unsigned long long)acc.specials,
		(unsigned long long)acc.links, (double)acc.logical_bytes / 1048576.0,
		(double)acc.stored_bytes / 1048576.0,
		acc.stored_bytes ? (double)acc.logical_bytes / (double)acc.stored_bytes : 0.0, secs,
		secs > 0 ? (double)acc.logical_bytes / secs / 1048576.0 : 0.0);
	if (r == 0 && stats)
		*stats = acc;
out:
	store_pool_free(im.pool);
	imp_release(&im, nthreads);
	for (size_t i = 0; i < sc.n; i++) {
		free(sc.v[i].rel);
		free(sc.v[i].target);
	}
	free(sc.v);
	if (im.srcfd >= 0)
		close(im.srcfd);
	return r;
}
