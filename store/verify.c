/* verify.c - checking a whole store: every object's header, trailer and chunks.
 *
 * store_verify() walks the store (never following a symlink, never leaving the
 * store's directory), then checks the objects in two parallel passes: the first
 * opens each object (header, trailer, chunk table, frame layout, FAISS header of
 * chunk 0 against the trailer's "faiss" map), the second decodes every chunk and
 * compares its XXH3-64 with the chunk table, in ranges of chunks so that one big
 * file keeps every thread busy.  Each problem goes to the caller's report
 * callback with the file, chunk and stored offset.  With repair, objects with a
 * problem are moved to .faissfs/quarantine/<time>/<path> (never deleted) and
 * leftovers of interrupted writes in .faissfs/tmp are removed; while a daemon
 * holds the store's lock (a mount) nothing is moved aside, and neither its temp
 * files nor those of any running process are removed.
 * A file with several names (hard links) is checked once, under its first name;
 * symlinks are counted, never followed.
 * Limits: a store that changes while it is verified may give spurious problems
 * (a file replaced between the passes); verify a store nobody is writing to.
 * Repair moves aside the name a damaged object was checked under; its other hard
 * links are named in no problem and keep the damaged bytes.
 */
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define RANGE_CHUNKS  16u /* chunks per work item of the second pass */
#define MAX_THREADS   64u
#define TMP_IDLE_SEC  60 /* a temp object untouched this long is a leftover */
#define QUARANTINE    "quarantine"
#define PROGRESS_NSEC 250000000L

struct vfile {
	char *path; /* relative to the store root */
	dev_t dev;  /* the walk's lstat: names of one inode are checked once */
	ino_t ino;
	nlink_t nlink;
	uint64_t nchunks; /* set by the first pass; 0 for plain files */
	bool object;	  /* an object (first pass opened it) */
	atomic_bool bad;  /* a problem was found: quarantine candidate */
};

struct vrange {
	size_t file;
	uint64_t first, end; /* chunks [first, end) */
};

struct verify {
	struct store *st;
	const struct store_verify_opts *opts;
	struct vfile *files; /* the walk's result, sorted by path */
	size_t nfiles, fcap;
	struct vrange *ranges;
	size_t nranges;
	atomic_size_t next;	   /* next work item of the running pass */
	atomic_uint_fast64_t done; /* chunks checked (progress) */
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t problems;
	atomic_uint_fast64_t objects, plain, stored;
	atomic_int fatal; /* -ENOMEM and the like: stop */
	uint64_t total_chunks;
	pthread_mutex_t report_lock; /* serialises opts->report */
	atomic_bool running;
};

/* --- problems ------------------------------------------------------------------ */

static void problem(struct verify *v, const char *path, int64_t chunk, int64_t offset, int err,
		    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void problem(struct verify *v, const char *path, int64_t chunk, int64_t offset, int err,
		    const char *fmt, ...)
{
	struct store_verify_problem p;
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	p.path = path;
	p.chunk = chunk;
	p.offset = offset;
	p.err = err;
	p.what = what;
	atomic_fetch_add(&v->problems, 1);
	pthread_mutex_lock(&v->report_lock);
	if (v->opts->report)
		v->opts->report(v->opts->arg, &p);
	pthread_mutex_unlock(&v->report_lock);
}

/* --- the walk ------------------------------------------------------------------ */

/* Opens @path below the store root without following any symlink and without
 * leaving the store (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS; where the
 * kernel lacks openat2, the walk already refused symlinked directories). */
static int open_beneath(int root, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, root, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = openat(root, path, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

static int add_file(struct verify *v, const char *path, const struct stat *sb)
{
	if (v->nfiles == v->fcap) {
		size_t ncap = v->fcap ? v->fcap * 2 : 64;
		struct vfile *n = realloc(v->files, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->files = n;
		v->fcap = ncap;
	}
	memset(&v->files[v->nfiles], 0, sizeof(v->files[0]));
	v->files[v->nfiles].path = strdup(path);
	if (!v->files[v->nfiles].path)
		return -ENOMEM;
	v->files[v->nfiles].dev = sb->st_dev;
	v->files[v->nfiles].ino = sb->st_ino;
	v->files[v->nfiles].nlink = sb->st_nlink;
	v->nfiles++;
	return 0;
}

/* Orders hard-linked files by inode, then path; the others after them, by path. */
static int cmp_inode(const void *a, const void *b)
{
	const struct vfile *x = a, *y = b;
	bool lx = x->nlink > 1, ly = y->nlink > 1;

	if (lx != ly)
		return lx ? -1 : 1;
	if (lx && x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (lx && x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Leaves one name (the first by strcmp) of each hard-linked store inode in the
 * list, so an object with several names is checked once; returns how many names
 * were dropped. */
static uint64_t dedup_links(struct verify *v)
{
	size_t out = 0;
	uint64_t dropped = 0;

	if (!v->nfiles)
		return 0;
	qsort(v->files, v->nfiles, sizeof(v->files[0]), cmp_inode);
	for (size_t i = 0; i < v->nfiles; i++) {
		const struct vfile *f = &v->files[i];

		if (out && f->nlink > 1 && v->files[out - 1].nlink > 1 &&
		    v->files[out - 1].dev == f->dev && v->files[out - 1].ino == f->ino) {
			free(f->path);
			dropped++;
			continue;
		}
		if (out != i)
			memcpy(&v->files[out], f, sizeof(*f));
		out++;
	}
	v->nfiles = out;
	return dropped;
}

/* What walk_entry() fills. */
struct walk_arg {
	struct verify *v;
	struct store_verify_stats *stats;
};

/* store_walk() callback: every regular file of the store is added to the list;
 * directories, symlinks (never followed) and special files are counted: valid
 * entries of a store (format 1.2); a mount point is not crossed (a warning); what
 * cannot be examined, opened or listed is a problem. */
static int walk_entry(void *arg, const struct store_walk_entry *e)
{
	struct walk_arg *a = arg;

	if (strlen(e->rel) >= PATH_MAX) {
		problem(a->v, e->rel, -1, -1, -ENAMETOOLONG,
			"an entry's path is longer than PATH_MAX: not served; shorten the "
			"directory tree");
		return STORE_WALK_SKIP;
	}
	switch (e->type) {
	case STORE_WALK_FILE:
		return add_file(a->v, e->rel, e->st);
	case STORE_WALK_DIR:
		a->stats->dirs++;
		return 0;
	case STORE_WALK_OTHER:
		if (S_ISLNK(e->st->st_mode)) {
			a->stats->symlinks++;
			return 0;
		}
		if (!S_ISDIR(e->st->st_mode)) {
			a->stats->special++;
			return 0;
		}
		/* Another filesystem mounted inside the store: not part of it. */
		a->stats->skipped++;
		log_warn("%s in the store is a mount point: not checked (verify does not cross "
			 "into another filesystem)",
			 e->rel);
		return 0;
	case STORE_WALK_ERR_STAT:
		if (e->err != -ENOENT) /* else: gone since the listing */
			problem(a->v, e->rel, -1, -1, e->err, "cannot stat: %s", strerror(-e->err));
		return 0;
	case STORE_WALK_ERR_OPEN:
		problem(a->v, e->rel, -1, -1, e->err, "cannot open the directory: %s",
			strerror(-e->err));
		return 0;
	case STORE_WALK_ERR_LIST:
		return e->err;
	}
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct vfile *)a)->path, ((const struct vfile *)b)->path);
}

/* --- first pass: objects ------------------------------------------------------- */

static bool faiss_equal(const struct store_faiss_info *a, const struct store_faiss_info *b)
{
	if (a->valid != b->valid)
		return false;
	if (!a->valid)
		return true;
	return a->binary == b->binary && a->is_trained == b->is_trained &&
	       !strcmp(a->fourcc, b->fourcc) && a->d == b->d && a->metric == b->metric &&
	       a->code_size == b->code_size && a->ntotal == b->ntotal;
}

/* Checks what open does not: the chunk frames lie back to back from the header
 * to the trailer, and the file ends with the trailer. */
static void check_layout(struct verify *v, struct vfile *f, const struct store_object *o)
{
	uint64_t pos = FMT_OBJ_HEADER_SIZE, tend;
	struct stat stb;

	for (uint64_t i = 0; i < o->info.nchunks; i++) {
		struct fmt_chunk_rec r;

		if (store_object_rec(o, i, &r)) {
			problem(v, f->path, (int64_t)i, -1, -EUCLEAN,
				"chunk record changed since the object was opened");
			atomic_store(&f->bad, true);
			return;
		}
		if (r.offset != pos) {
			problem(v, f->path, (int64_t)i, (int64_t)r.offset, -EUCLEAN,
				"chunk frame expected at offset %" PRIu64 " (frames must follow "
				"each other)",
				pos);
			atomic_store(&f->bad, true);
			return;
		}
		pos += r.stored_len;
	}
	if (pos != o->trailer_offset) {
		problem(v, f->path, -1, (int64_t)pos, -EUCLEAN,
			"%" PRIu64 " bytes between the last chunk frame and the trailer at "
			"offset %" PRIu64,
			o->trailer_offset - pos, o->trailer_offset);
		atomic_store(&f->bad, true);
	}
	if (fstat(o->fd, &stb) == 0) {
		uint8_t h[FMT_OBJ_HEADER_SIZE];

		if (pread(o->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
			return;
		tend = fmt_get64(h + 40) + fmt_get32(h + 48);
		if ((uint64_t)stb.st_size != tend) {
			problem(v, f->path, -1, (int64_t)tend, -EUCLEAN,
				"object is %" PRIu64 " bytes long but its trailer ends at "
				"offset %" PRIu64,
				(uint64_t)stb.st_size, tend);
			atomic_store(&f->bad, true);
		}
	}
}

static void check_faiss(struct verify *v, struct vfile *f, const struct store_object *o,
			struct store_dctx *dc, uint8_t *buf)
{
	struct store_faiss_info got;
	struct fmt_chunk_rec r0;
	size_t len;
	int ret;

	if (o->info.nchunks == 0) {
		if (o->info.faiss.valid) {
			problem(v, f->path, -1, -1, -EUCLEAN,
				"trailer describes a FAISS index but the file is empty");
			atomic_store(&f->bad, true);
		}
		return;
	}
	len = store_object_chunk_len(o, 0);
	ret = store_object_read_chunk(o, 0, dc, buf);
	if (ret || store_object_rec(o, 0, &r0))
		return; /* the second pass reports it, with its offset */
	store_faiss_parse(buf, len < 64 ? len : 64, &got);
	if (!faiss_equal(&got, &o->info.faiss)) {
		problem(v, f->path, 0, (int64_t)r0.offset, -EUCLEAN,
			"FAISS header in chunk 0 (%s, d %d, ntotal %" PRId64 ") disagrees with the "
			"trailer (%s, d %d, ntotal %" PRId64 ")",
			got.valid ? got.fourcc : "none", got.d, got.ntotal,
			o->info.faiss.valid ? o->info.faiss.fourcc : "none", o->info.faiss.d,
			o->info.faiss.ntotal);
		atomic_store(&f->bad, true);
	}
}

static void pass1_one(struct verify *v, struct vfile *f, struct store_dctx *dc, uint8_t **buf,
		      size_t *cap)
{
	struct store_object *o = NULL;
	int fd, ret;

	fd = open_beneath(store_root_fd(v->st), f->path, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		problem(v, f->path, -1, -1, fd, "cannot open: %s", strerror(-fd));
		return;
	}
	ret = store_object_open_fd(fd, f->path, &o);
	close(fd);
	if (ret == -EMEDIUMTYPE) {
		atomic_fetch_add(&v->plain, 1);
		return;
	}
	if (ret == -ENOMEM) {
		atomic_store(&v->fatal, ret);
		return;
	}
	if (ret) {
		problem(v, f->path, -1, 0, ret, "header or trailer: %s",
			ret == -EUCLEAN ? "corrupt (see the log line above)" : strerror(-ret));
		atomic_store(&f->bad, true);
		return;
	}
	f->object = true;
	f->nchunks = o->info.nchunks;
	atomic_fetch_add(&v->objects, 1);
	atomic_fetch_add(&v->stored, o->info.stored);
	check_layout(v, f, o);
	if (store_buf_reserve(buf, cap, o->info.chunk_size) == 0)
		check_faiss(v, f, o, dc, *buf);
	else
		atomic_store(&v->fatal, -ENOMEM);
	store_object_free(o);
}

/* --- second pass: chunks ------------------------------------------------------- */

/* A hole is never read (it reads as zeros), but its stored frame must still be
 * the RLE frame the writer put there, or `zstd -d` of the object fails.  Uses
 * @buf (chunk_size bytes) as scratch.  Returns 0 or -EUCLEAN (logged). */
static int check_hole(const struct store_object *o, uint64_t idx, uint8_t *buf)
{
	struct fmt_chunk_rec rec;
	const struct fmt_chunk_rec *r = &rec;
	size_t len = store_object_chunk_len(o, idx), n = store_hole_frame_size(len);
	uint8_t *want = buf, *got = buf + n;
	ssize_t rd;
	int ret = store_object_rec(o, idx, &rec);

	if (ret)
		return ret;
	if (r->stored_len == n && 2 * n <= o->info.chunk_size) {
		store_hole_frame_build(want, len);
		rd = pread(o->fd, got, n, (off_t)r->offset);
		if (rd == (ssize_t)n && memcmp(want, got, n) == 0)
			return 0;
		if (rd < 0)
			return -errno;
	}
	log_error("object %s: chunk %" PRIu64 " (stored at offset %" PRIu64 ", %u bytes): the "
		  "frame of a hole is damaged (reads still give zeros; `zstd -d` of the object "
		  "fails) - the stored data is corrupt; restore the file from its source or "
		  "re-import it",
		  o->logname, idx, r->offset, r->stored_len);
	return -EUCLEAN;
}

static void pass2_one(struct verify *v, const struct vrange *r, struct store_dctx *dc,
		      uint8_t **buf, size_t *cap)
{
	struct vfile *f = &v->files[r->file];
	struct store_object *o = NULL;
	int fd, ret;

	fd = open_beneath(store_root_fd(v->st), f->path, O_RDONLY | O_NONBLOCK);
	if (fd >= 0) {
		ret = store_object_open_fd(fd, f->path, &o);
		close(fd);
	} else {
		ret = fd;
	}
	if (ret) {
		problem(v, f->path, (int64_t)r->first, -1, ret,
			"the object changed or vanished during the check: %s", strerror(-ret));
		atomic_store(&f->bad, true);
		return;
	}
	if (store_buf_reserve(buf, cap, o->info.chunk_size)) {
		atomic_store(&v->fatal, -ENOMEM);
		goto out;
	}
	for (uint64_t i = r->first; i < r->end && i < o->info.nchunks; i++) {
		struct fmt_chunk_rec rec = {0};

		ret = store_object_rec(o, i, &rec);
		if (!ret)
			ret = rec.kind == FMT_CHUNK_HOLE ? check_hole(o, i, *buf)
							 : store_object_read_chunk(o, i, dc, *buf);
		if (ret == -ENOMEM) {
			atomic_store(&v->fatal, ret);
			break;
		}
		if (ret) {
			problem(v, f->path, (int64_t)i, (int64_t)rec.offset, ret,
				"chunk of %u stored bytes: %s", rec.stored_len,
				ret == -EUCLEAN ? "corrupt (bad frame, length or checksum)"
						: strerror(-ret));
			atomic_store(&f->bad, true);
		}
		atomic_fetch_add(&v->done, 1);
		atomic_fetch_add(&v->bytes, store_object_chunk_len(o, i));
	}
out:
	store_object_free(o);
}

struct worker {
	struct verify *v;
	int pass; /* 1 or 2 */
	pthread_t tid;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct verify *v = w->v;
	struct store_dctx *dc = store_dctx_new();
	uint8_t *buf = NULL;
	size_t cap = 0;

	if (!dc) {
		atomic_store(&v->fatal, -ENOMEM);
		return NULL;
	}
	for (;;) {
		size_t i = atomic_fetch_add(&v->next, 1);

		if (atomic_load(&v->fatal))
			break;
		if (w->pass == 1) {
			if (i >= v->nfiles)
				break;
			pass1_one(v, &v->files[i], dc, &buf, &cap);
		} else {
			if (i >= v->nranges)
				break;
			pass2_one(v, &v->ranges[i], dc, &buf, &cap);
		}
	}
	free(buf);
	store_dctx_free(dc);
	return NULL;
}

static void show_progress(struct verify *v, double t0, bool final)
{
	double dt = store_now() - t0;
	uint64_t done = atomic_load(&v->done), bytes = atomic_load(&v->bytes);

	fprintf(stderr,
		"\rverify: %" PRIu64 "/%" PRIu64 " chunks, %.1f MiB, %.0f MiB/s, %" PRIu64
		" problems   %s",
		done, v->total_chunks, (double)bytes / 1048576.0,
		dt > 0 ? (double)bytes / 1048576.0 / dt : 0.0, (uint64_t)atomic_load(&v->problems),
		final ? "\n" : "");
}

/* Runs pass @p on @n threads; the calling thread prints progress meanwhile. */
static int run_pass(struct verify *v, int p, unsigned n, double t0)
{
	struct worker w[MAX_THREADS];
	unsigned started = 0;
	size_t total = p == 1 ? v->nfiles : v->nranges;

	atomic_store(&v->next, 0);
	for (unsigned i = 0; i < n; i++) {
		w[i].v = v;
		w[i].pass = p;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
			break;
		started++;
	}
	if (!started)
		worker_main(&w[0]); /* no thread: do it here */
	while (started && v->opts->progress && p == 2 && atomic_load(&v->next) < total &&
	       !atomic_load(&v->fatal)) {
		struct timespec ts = {0, PROGRESS_NSEC};

		nanosleep(&ts, NULL);
		show_progress(v, t0, false);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	return atomic_load(&v->fatal);
}

static int make_ranges(struct verify *v)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < v->nfiles; i++)
		if (v->files[i].object && v->files[i].nchunks)
			n += (size_t)((v->files[i].nchunks + RANGE_CHUNKS - 1) / RANGE_CHUNKS);
	v->ranges = calloc(n ? n : 1, sizeof(*v->ranges));
	if (!v->ranges)
		return -ENOMEM;
	for (size_t i = 0; i < v->nfiles; i++) {
		if (!v->files[i].object)
			continue;
		v->total_chunks += v->files[i].nchunks;
		for (uint64_t c = 0; c < v->files[i].nchunks; c += RANGE_CHUNKS) {
			v->ranges[k].file = i;
			v->ranges[k].first = c;
			v->ranges[k].end = c + RANGE_CHUNKS;
			k++;
		}
	}
	v->nranges = k;
	return 0;
}

/* --- repair -------------------------------------------------------------------- */

/* mkdir -p of @rel's directories below @dirfd; returns the fd of the last one
 * (or a dup of @dirfd when @rel has no '/') or -errno. */
static int mkdirs_at(int dirfd, const char *rel)
{
	char *copy = strdup(rel), *p, *s;
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);

	if (!copy || fd < 0) {
		free(copy);
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	for (s = copy; (p = strchr(s, '/')); s = p + 1) {
		int nfd;

		*p = '\0';
		if (mkdirat(fd, s, 0700) && errno != EEXIST)
			goto fail;
		nfd = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0)
			goto fail;
		close(fd);
		fd = nfd;
	}
	free(copy);
	return fd;
fail:
	free(copy);
	close(fd);
	return -errno;
}

static int quarantine(struct verify *v, const char *stamp, const char *path)
{
	char qrel[PATH_MAX];
	const char *base = strrchr(path, '/');
	int meta = -1, qdir = -1, srcdir = -1, ret;

	snprintf(qrel, sizeof(qrel), "%s/%s/%s", QUARANTINE, stamp, path);
	meta = openat(store_root_fd(v->st), FMT_META_DIR,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (meta < 0)
		return -errno;
	qdir = mkdirs_at(meta, qrel);
	if (qdir < 0) {
		ret = qdir;
		goto out;
	}
	if (base) {
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%.*s", (int)(base - path), path);
		srcdir = open_beneath(store_root_fd(v->st), dir, O_RDONLY | O_DIRECTORY);
		if (srcdir < 0) {
			ret = srcdir;
			goto out;
		}
		base++;
	} else {
		base = path;
	}
	/* RENAME_NOREPLACE: never overwrite what an earlier run put aside. */
	ret = renameat2(srcdir >= 0 ? srcdir : store_root_fd(v->st), base, qdir, base,
			RENAME_NOREPLACE)
		      ? -errno
		      : 0;
	if (!ret) {
		fsync(qdir);
		fsync(srcdir >= 0 ? srcdir : store_root_fd(v->st));
		log_warn("%s: moved to %s/%s (a damaged object; restore it from its source "
			 "and re-import)",
			 path, FMT_META_DIR, qrel);
	}
out:
	if (srcdir >= 0)
		close(srcdir);
	if (qdir >= 0)
		close(qdir);
	close(meta);
	return ret;
}

/* The PID in a temp file's name ("<kind>.<pid>.<...>": obj. of the object
 * writer, unpack. of a -o rw daemon), or 0 if it has none. */
static pid_t tmp_owner(const char *name)
{
	const char *dot = strchr(name, '.');
	char *end;
	long pid;

	if (!dot || dot[1] < '1' || dot[1] > '9')
		return 0;
	errno = 0;
	pid = strtol(dot + 1, &end, 10);
	if (errno || (*end && *end != '.') || pid > INT32_MAX)
		return 0;
	return (pid_t)pid;
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Removes temp objects nobody has written to for TMP_IDLE_SEC: leftovers of
 * writes interrupted by a crash (a live writer keeps its file's mtime fresh).
 * The files of a running process are left alone, whatever their age: those of
 * the daemon holding the store's lock (@daemon > 0; all of them if its PID is
 * unknown, @daemon == 0; -1: no daemon), that is its unpack.<pid>.* and obj.<pid>.*
 * and every prev.* (the previous versions a -o rw daemon keeps for chunk reuse,
 * named after their path), and those of a running import.  With no daemon a
 * prev.* is a leftover like the others (a later mount would only have reused its
 * chunks). */
static void clean_tmp(struct verify *v, struct store_verify_stats *stats, pid_t daemon)
{
	int fd = -1;
	DIR *d;
	struct dirent *de;
	time_t now = time(NULL);
	unsigned kept = 0;

	fd = open_beneath(store_root_fd(v->st), FMT_META_DIR "/" FMT_TMP_DIR,
			  O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat stb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &stb, AT_SYMLINK_NOFOLLOW) ||
		    S_ISDIR(stb.st_mode))
			continue;
		if (daemon == 0 || (daemon > 0 && (!strncmp(de->d_name, "prev.", 5) ||
						   tmp_owner(de->d_name) == daemon))) {
			kept++;
			continue;
		}
		if (pid_alive(tmp_owner(de->d_name))) {
			log_info("%s/%s/%s belongs to the running process %ld: left alone",
				 FMT_META_DIR, FMT_TMP_DIR, de->d_name,
				 (long)tmp_owner(de->d_name));
			continue;
		}
		if (now - stb.st_mtime < TMP_IDLE_SEC) {
			log_info("%s/%s/%s was written to in the last %d s: left alone (a write "
				 "may be running; run verify --repair again later)",
				 FMT_META_DIR, FMT_TMP_DIR, de->d_name, TMP_IDLE_SEC);
			continue;
		}
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			stats->tmp_removed++;
			log_info("removed %s/%s/%s, left over from an interrupted write",
				 FMT_META_DIR, FMT_TMP_DIR, de->d_name);
		} else {
			log_warn("cannot remove %s/%s/%s: %s", FMT_META_DIR, FMT_TMP_DIR,
				 de->d_name, strerror(errno));
		}
	}
	closedir(d);
	if (kept && daemon > 0)
		log_warn("%u files in %s/%s belong to the faissfs daemon (PID %ld) that has the "
			 "store "
			 "mounted: left alone (unmount it, then run verify --repair again)",
			 kept, FMT_META_DIR, FMT_TMP_DIR, (long)daemon);
	else if (kept)
		log_warn("%u files in %s/%s may belong to the faissfs daemon that has the store "
			 "mounted (its PID is unknown): left alone (unmount it, then run verify "
			 "--repair again)",
			 kept, FMT_META_DIR, FMT_TMP_DIR);
}

static void repair(struct verify *v, struct store_verify_stats *stats)
{
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	pid_t daemon = -1, holder = 0;

	/* A daemon serving the store owns its temp files and may be replacing the
	 * files found damaged (a store written to while verified gives spurious
	 * problems): nothing of that is moved while it runs. */
	if (store_lock_holder(v->st, &holder) == 1)
		daemon = holder;
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (size_t i = 0; i < v->nfiles; i++) {
		int ret;

		if (!atomic_load(&v->files[i].bad))
			continue;
		if (daemon >= 0) {
			log_error(
				"%s: not moved aside: the store is in use by a faissfs daemon "
				"(PID %ld, 0: unknown) that may be rewriting it; unmount it, then "
				"run verify --repair again",
				v->files[i].path, (long)daemon);
			continue;
		}
		ret = quarantine(v, stamp, v->files[i].path);
		if (ret)
			log_error("%s: cannot move it to %s/%s/%s: %s (move it aside by hand)",
				  v->files[i].path, FMT_META_DIR, QUARANTINE, stamp,
				  strerror(-ret));
		else
			stats->quarantined++;
	}
	clean_tmp(v, stats, daemon);
}

/* --- entry point --------------------------------------------------------------- */

int store_verify(struct store *st, const struct store_verify_opts *opts,
		 struct store_verify_stats *stats)
{
	struct store_verify_stats s = {0};
	struct verify v;
	double t0 = store_now();
	unsigned n;
	int ret;

	memset(&v, 0, sizeof(v));
	v.st = st;
	v.opts = opts;
	pthread_mutex_init(&v.report_lock, NULL);
	if (opts->repair && (st->flags & STORE_RDONLY)) {
		log_error("%s: repair needs the store opened read-write", store_path(st));
		ret = -EROFS;
		goto out;
	}
	n = opts->threads ? opts->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	ret = store_walk(st, "", walk_entry, &(struct walk_arg){.v = &v, .stats = &s});
	if (ret) {
		log_error("%s: cannot list the store: %s", store_path(st), strerror(-ret));
		goto out;
	}
	s.links = dedup_links(&v);
	if ((s.symlinks || s.special || s.links) && !store_has_links(st))
		log_warn("%s: the store holds symlinks, hard links or special files but its "
			 "superblock does not say so (ro_compat bit 0x%x): an older faissfs may "
			 "open it read-write and split its hard links",
			 store_path(st), FMT_SB_RO_COMPAT_LINKS);
	if (v.nfiles)
		qsort(v.files, v.nfiles, sizeof(v.files[0]), cmp_file);
	ret = run_pass(&v, 1, n, t0);
	if (!ret)
		ret = make_ranges(&v);
	if (!ret)
		ret = run_pass(&v, 2, n, t0);
	if (ret) {
		log_error("%s: verify stopped: %s", store_path(st), strerror(-ret));
		goto out;
	}
	if (opts->progress)
		show_progress(&v, t0, true);
	if (opts->repair)
		repair(&v, &s);
	s.files = v.nfiles;
	s.objects = atomic_load(&v.objects);
	s.plain = atomic_load(&v.plain);
	s.chunks = atomic_load(&v.done);
	s.logical_bytes = atomic_load(&v.bytes);
	s.stored_bytes = atomic_load(&v.stored);
	s.problems = atomic_load(&v.problems);
	s.seconds = store_now() - t0;
	if (stats)
		*stats = s;
	ret = s.problems ? -EUCLEAN : 0;
out:
	for (size_t i = 0; i < v.nfiles; i++)
		free(v.files[i].path);
	free(v.files);
	free(v.ranges);
	pthread_mutex_destroy(&v.report_lock);
	return ret;
}
