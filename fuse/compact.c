/* compact.c - the compactor: idle plain files of the store become objects.
 *
 * A queue of paths (relative to the store root) served by a few worker threads.
 * A job on a directory walks it and queues its files; a job on a file compresses
 * it with a store_writer (store_chunk_encode() picks the FAISS-aware filter) into
 * .faissfs/tmp, reads the object back and compares it with the file, then, under
 * the publish gate (write.c), checks that the file is still the one it read
 * (same inode, size, mtime, ctime) and not open for writing, and renames the
 * object over it (store_publish_tmp: fsync of the object and of the directory).
 * Anything else discards the object and retries later.  A crash at any point
 * leaves the plain file or the object, both with the same bytes; a half-written
 * object left in tmp/ (obj.*) is removed by the next mount's scan (below) or by
 * `faissfs verify --repair`.  Readers that have the plain file open keep reading
 * it (they hold its fd).
 *
 * One file on every core: the worker that compacts a file goes through it in
 * batches of CMP_BATCH_PER_THREAD chunks per worker and posts each batch; every
 * idle worker takes chunks of it (reads each, then encodes it or copies the
 * previous version's frame).  The owner appends a finished batch in order while
 * the others already work on the next one.  The read-back check runs the same
 * way.  Memory: five buffers of one batch per file being compacted (10 MiB with
 * 2 workers and 256 KiB chunks).
 *
 * Previous versions: an object about to be replaced through the mount is kept as
 * a hard link tmp/prev.<XXH3-64 of its path, 16 hex digits> (mnt_cmp_keep_prev),
 * so that compacting the new version copies the chunks both share.  The name is
 * found again after a restart.  It is removed once its path was compacted (or
 * found an object, or gone), when the path is unlinked through the mount, and by
 * the scan of a mount when older than CMP_PREV_MAX_AGE_S.  That scan also removes
 * the unpack.<pid>.<n> files (write.c) of a daemon that is gone (the store lock
 * says no other daemon runs) and the obj.* of an object writer killed half-way
 * (its PID gone, unchanged for a minute).  The prefixes and the store lock
 * (.faissfs/lock with the daemon's PID) are what tells `faissfs verify --repair`
 * which files of tmp/ a live daemon still uses.
 *
 * Locks: c->lock protects the queue, the batches, the counters and the stop flag
 * (leaf; no I/O under it).  The gate is taken only by compact_file() and the
 * previous-version functions, never with c->lock held.
 */
#include "write.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "node.h"
#include "store/store.h"

#define RETRY_MAX_MS	     60000u
#define CMP_BATCH_PER_THREAD 4u		 /* chunks of a batch per worker */
#define CMP_BATCH_MAX_BYTES  (16u << 20) /* logical bytes of a batch at most */
#define CMP_PREV_MAX_AGE_S   (6 * 3600)	 /* a kept previous version unused this long goes */
#define CMP_LOG_RATE_BYTES   (64u << 20) /* files this large log their compression rate */

struct cmp_job {
	struct cmp_job *next;
	uint64_t due_ms; /* CLOCK_MONOTONIC */
	uint64_t bytes;	 /* counted in mnt_cmp.s.backlog */
	unsigned tries;
	uint64_t since_ms; /* CLOCK_MONOTONIC of the last close that queued it; 0: a scan */
	char path[];	   /* "" for the root */
};

struct cmp_file;

/* A batch of chunks of one file, run by its owner and by idle workers: fn(b,
 * worker, i) for i in 0..n-1.  Posted in c->batches while chunks are left. */
struct cmp_batch {
	struct cmp_batch *next;					     /* protected by c->lock */
	int (*fn)(struct cmp_batch *b, unsigned worker, unsigned i); /* immutable */
	struct cmp_file *f;					     /* immutable */
	unsigned slot;	       /* immutable: which buffers of f */
	uint64_t first;	       /* immutable: index of its first chunk */
	size_t blen;	       /* immutable: logical bytes */
	unsigned n;	       /* immutable: chunks */
	bool posted;	       /* immutable: in c->batches (else run by the owner alone) */
	unsigned next_i, done; /* protected by c->lock */
	int err;	       /* protected by c->lock: the error of the lowest chunk */
	unsigned err_i;	       /* protected by c->lock */
};

struct cmp_worker {
	struct mnt_cmp *c;
	unsigned id; /* 0..nthreads-1: the slot of its contexts in a cmp_file */
};

struct mnt_cmp {
	struct store *st;	    /* immutable */
	struct mnt_wr *wr;	    /* immutable; NULL offline */
	struct mnt_table *tab;	    /* set before the first job (mnt_cmp_set_table); NULL offline */
	unsigned idle_ms;	    /* immutable */
	_Atomic int level;	    /* zstd level for new objects, 0: the store's; relaxed */
	_Atomic bool paused;	    /* compaction off at run time (jobs wait); relaxed */
	uint64_t limit;		    /* staged bytes before writers wait; 0: none; set before use */
	unsigned nthreads;	    /* immutable after start */
	unsigned started;	    /* threads to join; immutable after start */
	pthread_t *threads;	    /* immutable after start */
	struct cmp_worker *workers; /* immutable after start */

	pthread_mutex_t lock;
	pthread_cond_t cond;	    /* jobs queued, a batch posted, or stop */
	pthread_cond_t idle;	    /* a worker finished a job */
	pthread_cond_t batch_done;  /* the last chunk of a batch is done */
	struct cmp_job *jobs;	    /* protected by lock; unordered */
	struct cmp_batch *batches;  /* protected by lock: batches with chunks left */
	unsigned busy;		    /* protected by lock: workers in a job */
	bool stop;		    /* protected by lock; also read unlocked as a hint */
	struct mnt_cmp_stats s;	    /* protected by lock */
	struct metrics_hist commit; /* last close to object published, ns; lock-free */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Queues @path due at @due_ms with @bytes staged (added to the backlog), unless it
 * is queued already (then its bytes are updated).  Caller holds c->lock. */
static void queue_locked(struct mnt_cmp *c, const char *path, uint64_t due_ms, unsigned tries,
			 uint64_t bytes, uint64_t since_ms)
{
	struct cmp_job *j;
	size_t len = strlen(path);

	for (j = c->jobs; j; j = j->next) {
		if (strcmp(j->path, path) == 0) {
			if (bytes > j->bytes) {
				c->s.backlog += bytes - j->bytes;
				j->bytes = bytes;
			}
			if (!j->since_ms)
				j->since_ms = since_ms;
			return;
		}
	}
	j = malloc(sizeof(*j) + len + 1);
	if (!j) {
		log_warn("compaction: no memory to queue %s (it stays uncompressed until the "
			 "next mount)",
			 path);
		return;
	}
	memcpy(j->path, path, len + 1);
	j->due_ms = due_ms;
	j->tries = tries;
	j->bytes = bytes;
	j->since_ms = since_ms;
	c->s.backlog += bytes;
	j->next = c->jobs;
	c->jobs = j;
	pthread_cond_signal(&c->cond);
}

void mnt_cmp_queue(struct mnt_cmp *c, const char *relpath, uint64_t bytes)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	queue_locked(c, relpath, now_ms() + c->idle_ms, 0, bytes, now_ms());
	pthread_mutex_unlock(&c->lock);
}

void mnt_cmp_set_limit(struct mnt_cmp *c, uint64_t limit)
{
	if (c)
		c->limit = limit;
}

void mnt_cmp_throttle(struct mnt_cmp *c)
{
	uint64_t half, over, start;
	bool warned = false;

	if (!c || !c->limit)
		return;
	half = c->limit / 2;
	pthread_mutex_lock(&c->lock);
	if (c->s.backlog > half && c->s.backlog <= c->limit) {
		/* Slowed: up to 20 ms per write as the backlog nears the limit. */
		over = c->s.backlog - half;
		c->s.throttled++;
		pthread_mutex_unlock(&c->lock);
		usleep((useconds_t)(over * 20000 / (half ? half : 1)));
		return;
	}
	start = now_ms();
	if (c->s.backlog > c->limit)
		c->s.throttled++;
	while (c->s.backlog > c->limit && !c->stop) {
		struct timespec ts;

		if (now_ms() - start > MNT_STAGE_BLOCK_S * 1000u) {
			log_warn("staging: %llu bytes wait for compaction, over the limit of %llu, "
				 "for "
				 "%u s: letting writes through (is the store's disk full or slow? "
				 "see the compaction messages above)",
				 (unsigned long long)c->s.backlog, (unsigned long long)c->limit,
				 MNT_STAGE_BLOCK_S);
			break;
		}
		if (!warned) {
			log_info("staging: %llu bytes wait for compaction (limit %llu): writers "
				 "wait",
				 (unsigned long long)c->s.backlog, (unsigned long long)c->limit);
			warned = true;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&c->idle, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
}

void mnt_cmp_scan(struct mnt_cmp *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	queue_locked(c, "", now_ms(), 0, 0, 0);
	pthread_mutex_unlock(&c->lock);
}

/* Files whose path from the store root passes PATH_MAX are served and written like
 * any other, but the compactor, which names them by path, leaves them plain. */
static int too_deep(const char *path)
{
	log_debug("compaction skips %.64s...: its path is longer than PATH_MAX", path);
	return 0;
}

/* store_walk() callback: queues each file and directory of the directory walked
 * (not deeper: a directory's job walks it in turn); special files are skipped. */
static int walk_entry(void *arg, const struct store_walk_entry *e)
{
	struct mnt_cmp *c = arg;

	if (e->type != STORE_WALK_FILE && e->type != STORE_WALK_DIR)
		return 0;
	pthread_mutex_lock(&c->lock);
	queue_locked(c, e->rel, now_ms(), 0, 0, 0);
	pthread_mutex_unlock(&c->lock);
	return e->type == STORE_WALK_DIR ? STORE_WALK_SKIP : 0;
}

/* Queues every entry of the directory @path ("" for the root). */
static int walk_dir(struct mnt_cmp *c, const char *path)
{
	int rc = store_walk(c->st, path, walk_entry, c);

	return rc == -ENAMETOOLONG ? too_deep(path) : rc;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	struct mnt_ident ia, ib;

	mnt_ident_of(a, &ia);
	mnt_ident_of(b, &ib);
	return mnt_ident_eq(&ia, &ib);
}

/* --- previous versions ------------------------------------------------------------------ */

/* The name in tmp/ of @relpath's previous version: prev.<XXH3-64 of the path>. */
static void prev_name(const char *relpath, char *buf, size_t size)
{
	snprintf(buf, size, "prev.%016llx",
		 (unsigned long long)XXH3_64bits(relpath, strlen(relpath)));
}

/* The identity of @relpath's previous version in *out (st_ino 0: none). */
static void prev_stat(struct mnt_cmp *c, const char *relpath, struct stat *out)
{
	char name[32];

	prev_name(relpath, name, sizeof(name));
	if (fstatat(store_tmp_fd(c->st), name, out, AT_SYMLINK_NOFOLLOW) < 0)
		memset(out, 0, sizeof(*out));
}

/* Removes @relpath's previous version if it is still the file @was (from
 * prev_stat(); NULL: whatever it is).  Takes the gate, which orders it against
 * mnt_cmp_keep_prev(). */
static void prev_drop(struct mnt_cmp *c, const char *relpath, const struct stat *was)
{
	struct stat cur;
	char name[32];

	if (was && !was->st_ino)
		return;
	prev_name(relpath, name, sizeof(name));
	mnt_wr_lock(c->wr);
	if (fstatat(store_tmp_fd(c->st), name, &cur, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (!was || (cur.st_dev == was->st_dev && cur.st_ino == was->st_ino)))
		store_discard_tmp(c->st, name);
	mnt_wr_unlock(c->wr);
}

void mnt_cmp_keep_prev(struct mnt_cmp *c, int dirfd, const char *name, const char *relpath)
{
	struct stat st;
	uint64_t lsize;
	char pname[32];
	int fd, rc, tmpfd;

	if (!c)
		return;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	rc = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1
		     ? store_object_probe(fd, name, &lsize)
		     : 0;
	close(fd);
	if (rc != 1)
		return; /* only objects have chunks to share; one with other names stays */
	/* An older one goes first: the caller holds the gate, so nobody else swaps it. */
	prev_name(relpath, pname, sizeof(pname));
	tmpfd = store_tmp_fd(c->st);
	if (unlinkat(tmpfd, pname, 0) < 0 && errno != ENOENT)
		return;
	if (linkat(dirfd, name, tmpfd, pname, 0) < 0)
		log_debug("cannot keep the previous version of %s: %s (a re-save compresses "
			  "all of it)",
			  relpath, strerror(errno));
}

void mnt_cmp_forget_prev(struct mnt_cmp *c, const char *relpath)
{
	char name[32];

	if (!c)
		return;
	prev_name(relpath, name, sizeof(name));
	store_discard_tmp(c->st, name);
}

/* True for tmp/obj.<pid>.* of a process that is gone, unchanged for a minute:
 * an object writer killed half-way (a live import's file is recent). */
static bool dead_writer(const char *name, const struct stat *st, time_t now)
{
	char *end;
	long pid = strtol(name + 4, &end, 10);

	return *end == '.' && pid > 0 && pid != (long)getpid() && now - st->st_mtim.tv_sec > 60 &&
	       kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Removes from tmp/ the previous versions unused for CMP_PREV_MAX_AGE_S, the
 * unpack files of another process (the store lock we hold says it is gone) and
 * the objects of a dead writer (dead_writer()). */
static void sweep_tmp(struct mnt_cmp *c)
{
	struct timespec now;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, kept = 0, removed = 0;
	char own[32];

	fd = openat(store_tmp_fd(c->st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(own, sizeof(own), "unpack.%d.", (int)getpid());
	while ((de = readdir(d))) {
		bool old;

		if (!strncmp(de->d_name, "unpack.", 7) && strncmp(de->d_name, own, strlen(own))) {
			removed += unlinkat(fd, de->d_name, 0) == 0;
			continue;
		}
		if (!strncmp(de->d_name, "obj.", 4) &&
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    dead_writer(de->d_name, &st, now.tv_sec)) {
			removed += unlinkat(fd, de->d_name, 0) == 0;
			continue;
		}
		if (strncmp(de->d_name, "prev.", 5) ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		/* ctime: when it was linked here (kept). */
		old = now.tv_sec - st.st_ctim.tv_sec > CMP_PREV_MAX_AGE_S;
		mnt_wr_lock(c->wr);
		if (old)
			removed += unlinkat(fd, de->d_name, 0) == 0;
		else
			kept++;
		mnt_wr_unlock(c->wr);
	}
	closedir(d);
	if (removed || kept)
		log_info("compaction: %d previous versions kept in the store's tmp/ for chunk "
			 "reuse, %d stale leftovers removed",
			 kept, removed);
}

/* pread() of exactly @len bytes at @off.  Returns 0, -EAGAIN if the file is shorter
 * (it changed), or -errno. */
static int read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EAGAIN;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* --- one file on every worker ------------------------------------------------------------- */

/* The state of one file being compressed; the per-worker contexts are made by
 * the worker that first needs them (slot = worker id) and freed with the file. */
struct cmp_file {
	struct mnt_cmp *c;
	uint32_t cs;			 /* chunk size */
	int level;			 /* zstd level */
	unsigned nbatch;		 /* chunks per batch */
	uint8_t *buf[2], *back;		 /* nbatch * cs each: two batches, one read back */
	struct store_chunk *out[2];	 /* nbatch each */
	bool *reused[2];		 /* nbatch each: out[][i] copied from prev */
	struct store_cctx **cc;		 /* nthreads */
	struct store_dctx **dc;		 /* nthreads */
	const struct store_object *prev; /* the previous version, or NULL */
	uint64_t nprev;			 /* its chunks usable (same chunk size) */
	const struct store_object *so;	 /* read back: the new object */
	int fd;				 /* the plain file, read by every worker */
	uint64_t size;			 /* its size */
};

static size_t batch_chunk_len(const struct cmp_batch *b, unsigned i)
{
	size_t left = b->blen - (size_t)i * b->f->cs;

	return left < b->f->cs ? left : b->f->cs;
}

/* Chunk @i of the batch into out[i]: the previous version's frame when it holds
 * the same bytes (same length and hash), else encoded. */
static int encode_one(struct cmp_batch *b, unsigned worker, unsigned i)
{
	struct cmp_file *f = b->f;
	uint8_t *in = f->buf[b->slot] + (size_t)i * f->cs;
	struct store_chunk *out = &f->out[b->slot][i];
	uint64_t idx = b->first + i;
	size_t len = batch_chunk_len(b, i);
	int rc = read_full(f->fd, in, len, idx * f->cs);

	if (rc < 0)
		return rc;
	if (idx < f->nprev && store_object_chunk_len(f->prev, idx) == len &&
	    store_object_chunk_hash(f->prev, idx) == XXH3_64bits(in, len) &&
	    store_object_chunk_copy(f->prev, idx, out) == 0) {
		f->reused[b->slot][i] = true;
		return 0;
	}
	f->reused[b->slot][i] = false;
	if (!f->cc[worker]) {
		f->cc[worker] = store_cctx_new();
		if (!f->cc[worker])
			return -ENOMEM;
	}
	return store_chunk_encode(f->cc[worker], in, len, f->level, out);
}

/* Chunk @i of the new object read back and compared with the file: -EAGAIN if
 * it differs (the file changed meanwhile). */
static int check_one(struct cmp_batch *b, unsigned worker, unsigned i)
{
	struct cmp_file *f = b->f;
	size_t off = (size_t)i * f->cs, len = batch_chunk_len(b, i);
	uint8_t *in = f->buf[b->slot] + off;
	int rc = read_full(f->fd, in, len, (b->first + i) * f->cs);

	if (rc < 0)
		return rc;
	if (store_object_chunk_len(f->so, b->first + i) != len)
		return -EAGAIN;
	if (!f->dc[worker]) {
		f->dc[worker] = store_dctx_new();
		if (!f->dc[worker])
			return -ENOMEM;
	}
	rc = store_object_read_chunk(f->so, b->first + i, f->dc[worker], f->back + off);
	if (rc < 0)
		return rc;
	return memcmp(f->back + off, in, len) ? -EAGAIN : 0;
}

/* Runs chunk b->next_i of the posted batch @b.  Called and returns with c->lock
 * held; drops it while the chunk is worked on. */
static void batch_step(struct mnt_cmp *c, struct cmp_batch *b, unsigned worker)
{
	unsigned i = b->next_i++;
	int rc;

	if (b->next_i == b->n) { /* the last one taken: nothing left to post */
		struct cmp_batch **pp = &c->batches;

		while (*pp != b)
			pp = &(*pp)->next;
		*pp = b->next;
	}
	pthread_mutex_unlock(&c->lock);
	rc = b->fn(b, worker, i);
	pthread_mutex_lock(&c->lock);
	if (rc < 0 && (!b->err || i < b->err_i)) {
		b->err = rc;
		b->err_i = i;
	}
	if (++b->done == b->n)
		pthread_cond_broadcast(&c->batch_done);
}

/* Makes @b the batch of @f at @off in buffer @slot, to run @fn on each of its
 * chunks, and posts it for the idle workers.  Returns false past the end. */
static bool batch_post(struct cmp_batch *b, struct cmp_file *f, unsigned slot, uint64_t off,
		       int (*fn)(struct cmp_batch *b, unsigned worker, unsigned i))
{
	struct mnt_cmp *c = f->c;
	uint64_t want = (uint64_t)f->nbatch * f->cs;

	if (off >= f->size)
		return false;
	*b = (struct cmp_batch){.fn = fn, .f = f, .slot = slot, .first = off / f->cs};
	b->blen = (size_t)(f->size - off < want ? f->size - off : want);
	b->n = (unsigned)((b->blen + f->cs - 1) / f->cs);
	if (b->n > 1 && c->nthreads > 1) {
		pthread_mutex_lock(&c->lock);
		b->next = c->batches;
		c->batches = b;
		b->posted = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
	return true;
}

/* Works on the batch @b with the other workers until all its chunks are done.
 * Returns 0 or the error of the lowest failing chunk. */
static int batch_wait(struct cmp_batch *b, unsigned worker)
{
	struct mnt_cmp *c = b->f->c;
	int rc;

	if (!b->posted) {
		for (unsigned i = 0; i < b->n; i++) {
			rc = b->fn(b, worker, i);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	while (b->next_i < b->n)
		batch_step(c, b, worker);
	while (b->done < b->n)
		pthread_cond_wait(&c->batch_done, &c->lock);
	rc = b->err;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void file_release(struct cmp_file *f)
{
	for (unsigned i = 0; f->cc && i < f->c->nthreads; i++) {
		store_cctx_free(f->cc[i]);
		store_dctx_free(f->dc[i]);
	}
	for (unsigned s = 0; s < 2; s++) {
		for (unsigned i = 0; f->out[s] && i < f->nbatch; i++)
			store_chunk_release(&f->out[s][i]);
		free(f->out[s]);
		free(f->reused[s]);
		free(f->buf[s]);
	}
	free(f->cc);
	free(f->dc);
	free(f->back);
}

static int file_init(struct cmp_file *f, struct mnt_cmp *c, uint32_t cs)
{
	bool ok = true;

	memset(f, 0, sizeof(*f));
	f->c = c;
	f->cs = cs;
	f->nbatch = CMP_BATCH_PER_THREAD * c->nthreads;
	while (f->nbatch > 1 && (size_t)f->nbatch * cs > CMP_BATCH_MAX_BYTES)
		f->nbatch--;
	for (unsigned s = 0; s < 2; s++) {
		f->buf[s] = malloc((size_t)f->nbatch * cs);
		f->out[s] = calloc(f->nbatch, sizeof(*f->out[s]));
		f->reused[s] = calloc(f->nbatch, sizeof(*f->reused[s]));
		ok = ok && f->buf[s] && f->out[s] && f->reused[s];
	}
	f->back = malloc((size_t)f->nbatch * cs);
	f->cc = calloc(c->nthreads, sizeof(*f->cc));
	f->dc = calloc(c->nthreads, sizeof(*f->dc));
	if (!ok || !f->back || !f->cc || !f->dc) {
		file_release(f);
		return -ENOMEM;
	}
	return 0;
}

/* Encodes the whole file into @w: while the owner appends one batch, the other
 * workers already encode the next.  Adds the chunks copied and encoded. */
static int encode_file(struct cmp_file *f, unsigned worker, struct store_writer *w,
		       uint64_t *reused, uint64_t *encoded)
{
	struct cmp_batch b[2];
	unsigned k = 0;
	bool more;
	int rc;

	if (!batch_post(&b[0], f, 0, 0, encode_one))
		return 0;
	for (;;) {
		rc = batch_wait(&b[k], worker);
		if (rc < 0)
			return rc;
		if (b[k].first == 0)
			store_writer_set_head(w, f->buf[k], b[k].blen < 64 ? b[k].blen : 64);
		more = batch_post(&b[!k], f, !k, (b[k].first + b[k].n) * f->cs, encode_one);
		for (unsigned i = 0; rc == 0 && i < b[k].n; i++) {
			rc = store_writer_append_chunk(w, &f->out[k][i]);
			*reused += f->reused[k][i];
			*encoded += !f->reused[k][i];
		}
		if (rc == 0 && __atomic_load_n(&f->c->stop, __ATOMIC_RELAXED))
			rc = -ECANCELED;
		if (rc < 0) {
			if (more)
				batch_wait(&b[!k], worker); /* the others still use it */
			return rc;
		}
		if (!more)
			return 0;
		k = !k;
	}
}

/* Reads the temp object back and compares it with the file, batch by batch. */
static int check_file(struct cmp_file *f, unsigned worker)
{
	struct cmp_batch b;
	int rc = 0;

	for (uint64_t off = 0; rc == 0 && batch_post(&b, f, 0, off, check_one);
	     off += (uint64_t)b.n * f->cs)
		rc = batch_wait(&b, worker);
	return rc;
}

static double secs_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Compresses the plain file @fd (stat @st) into a finished temp object and checks
 * it against the file, on the worker @worker and any idle one.  Returns 0 and the
 * temp name (caller frees), -EAGAIN if the file changed meanwhile, -ECANCELED on
 * stop, or -errno. */
static int compress_file(struct mnt_cmp *c, unsigned worker, int fd, const struct stat *st,
			 const char *path, char **tmpname)
{
	struct store_params params = *store_default_params(c->st);
	int level = atomic_load_explicit(&c->level, memory_order_relaxed);
	uint64_t size = (uint64_t)st->st_size, reused = 0, encoded = 0;
	struct store_writer *w = NULL;
	struct store_object *so = NULL, *prev = NULL;
	struct cmp_file f;
	struct timespec t0;
	struct stat after;
	char *name = NULL, pname[32];
	double secs;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (level > 0)
		params.level = level; /* the runtime setting (faissfs set) */
	rc = file_init(&f, c, params.chunk_size);
	if (rc < 0)
		return rc;
	f.level = params.level;
	f.fd = fd;
	f.size = size;
	prev_name(path, pname, sizeof(pname));
	if (store_object_openat(store_tmp_fd(c->st), pname, path, &prev) == 0 &&
	    store_object_info(prev)->chunk_size == params.chunk_size) {
		f.prev = prev;
		f.nprev = store_object_info(prev)->nchunks;
	}
	rc = store_writer_new(c->st, &params, &w);
	if (rc < 0)
		goto out;
	rc = encode_file(&f, worker, w, &reused, &encoded);
	if (rc < 0)
		goto out;
	if (fstat(fd, &after) < 0) {
		rc = -errno;
		goto out;
	}
	if (!same_file(st, &after)) {
		rc = -EAGAIN;
		goto out;
	}
	rc = store_writer_finish(w, &name);
	w = NULL; /* freed either way */
	if (rc < 0)
		goto out;
	/* Read back and compare, as import does: the plain file goes away. */
	rc = store_object_openat(store_tmp_fd(c->st), name, path, &so);
	if (rc == 0 && store_object_info(so)->size != size)
		rc = -EAGAIN;
	f.so = so;
	if (rc == 0)
		rc = check_file(&f, worker);
	if (rc < 0) {
		store_discard_tmp(c->st, name);
		goto out;
	}
	*tmpname = name;
	name = NULL;
	secs = secs_since(&t0);
	/* The rate of large files for people (bench/, capacity planning). */
	if (size >= CMP_LOG_RATE_BYTES)
		log_info("compressed %s: %llu MiB in %.2f s (%.0f MiB/s, read back included, "
			 "on up to %u threads)",
			 path, (unsigned long long)(size >> 20), secs,
			 secs > 0 ? (double)size / 1048576.0 / secs : 0.0, c->nthreads);
	if (f.nprev)
		log_info("compacted %s: %llu chunks copied from the previous version, %llu "
			 "compressed",
			 path, (unsigned long long)reused, (unsigned long long)encoded);
	pthread_mutex_lock(&c->lock);
	c->s.chunks_reused += reused;
	c->s.chunks_encoded += encoded;
	pthread_mutex_unlock(&c->lock);
out:
	store_writer_abort(w);
	store_object_free(prev);
	store_object_free(so);
	file_release(&f);
	free(name);
	return rc;
}

/* Compacts the store file @path on the worker @worker.  Returns 1 compacted, 0 nothing to do (an
 * object, small, gone, a directory: walked), -EAGAIN to retry later, or -errno. */
static int compact_file(struct mnt_cmp *c, unsigned worker, const char *path, uint64_t *logical,
			uint64_t *stored)
{
	struct timespec now;
	const char *base = NULL;
	struct stat st, cur;
	uint64_t lsize;
	char *tmpname = NULL;
	int dfd = -1, fd = -1, rc;

	if (atomic_load_explicit(&c->paused, memory_order_relaxed))
		return -EAGAIN; /* compaction=off: retried later */
	if (!*path) {
		sweep_tmp(c);
		return walk_dir(c, path);
	}
	dfd = store_open_parent(c->st, path, &base);
	if (dfd == -ENAMETOOLONG)
		return too_deep(path);
	if (dfd < 0)
		return dfd == -ENOENT || dfd == -ENOTDIR || dfd == -ELOOP ? 0 : dfd;
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT || errno == ELOOP ? 0 : -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		fd = -1;
		rc = walk_dir(c, path);
		goto out;
	}
	rc = 0;
	if (!S_ISREG(st.st_mode) || st.st_size <= MNT_COMPACT_SMALL)
		goto out;
	rc = store_object_probe(fd, path, &lsize);
	if (rc != 0) {
		rc = rc == 1 ? 0 : rc;
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (c->idle_ms &&
	    (now.tv_sec - st.st_mtim.tv_sec) * 1000 + (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000 <
		    (long)c->idle_ms) {
		rc = -EAGAIN; /* still being written, perhaps */
		goto out;
	}
	mnt_wr_lock(c->wr);
	rc = mnt_wr_busy_locked(c->wr, st.st_dev, st.st_ino) ? -EAGAIN : 0;
	mnt_wr_unlock(c->wr);
	if (rc < 0)
		goto out;
	rc = compress_file(c, worker, fd, &st, path, &tmpname);
	if (rc < 0)
		goto out;
	if (geteuid() == 0 && fchownat(store_tmp_fd(c->st), tmpname, st.st_uid, st.st_gid, 0))
		log_warn("compaction: cannot keep the owner of %s: %s", path, strerror(errno));
	mnt_wr_lock(c->wr);
	if (fstatat(dfd, base, &cur, AT_SYMLINK_NOFOLLOW) < 0 || !same_file(&st, &cur) ||
	    mnt_wr_busy_locked(c->wr, st.st_dev, st.st_ino)) {
		store_discard_tmp(c->st, tmpname);
		rc = -EAGAIN;
	} else {
		rc = store_publish_tmp(c->st, tmpname, dfd, base, st.st_mode & 07777, &st.st_mtim);
	}
	mnt_wr_unlock(c->wr);
	if (rc == 0) {
		struct stat ost;

		if (fstatat(dfd, base, &ost, AT_SYMLINK_NOFOLLOW) == 0) {
			*logical = (uint64_t)st.st_size;
			*stored = (uint64_t)ost.st_size;
			/* Its node (one under every name) stands for the object now. */
			mnt_node_replaced(c->tab, path, &st, &ost);
		}
		log_debug("compacted %s", path);
		rc = 1;
	}
out:
	free(tmpname);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

static void *worker(void *arg)
{
	struct cmp_worker *me = arg;
	struct mnt_cmp *c = me->c;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		struct cmp_job **pp, **best = NULL, *j;
		uint64_t now = now_ms(), logical = 0, stored = 0;
		struct stat prev;
		int rc;

		/* A chunk of another worker's file first: it is on its way to publish. */
		if (c->batches) {
			batch_step(c, c->batches, me->id);
			continue;
		}
		for (pp = &c->jobs; *pp; pp = &(*pp)->next)
			if (!best || (*pp)->due_ms < (*best)->due_ms)
				best = pp;
		if (!best || (*best)->due_ms > now) {
			struct timespec ts;
			uint64_t wait = best ? (*best)->due_ms - now : 1000;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
			continue;
		}
		j = *best;
		*best = j->next;
		c->busy++;
		pthread_mutex_unlock(&c->lock);

		/* The previous version kept when the job started: dropped when the job is
		 * done (one kept meanwhile waits for the next job of the path). */
		prev_stat(c, j->path, &prev);
		rc = compact_file(c, me->id, j->path, &logical, &stored);
		if (*j->path &&
		    !(rc == -EAGAIN || rc == -ENOSPC || rc == -EBUSY || rc == -ECANCELED))
			prev_drop(c, j->path, &prev);

		pthread_mutex_lock(&c->lock);
		c->busy--;
		c->s.backlog -= j->bytes; /* back in if it is queued again */
		if (rc == 1) {
			if (j->since_ms)
				metrics_hist_observe(&c->commit,
						     (now_ms() - j->since_ms) * 1000000u);
			c->s.compacted++;
			c->s.logical_bytes += logical;
			c->s.stored_bytes += stored;
		} else if ((rc == -EAGAIN || rc == -ENOSPC || rc == -EBUSY) && !c->stop) {
			uint64_t back = (uint64_t)(c->idle_ms ? c->idle_ms : 100)
					<< (j->tries < 6 ? j->tries : 6);

			c->s.retried++;
			if (back > RETRY_MAX_MS)
				back = RETRY_MAX_MS;
			if (rc == -ENOSPC && j->tries == 0)
				log_warn("compaction of %s: no space left in the store; it stays "
					 "uncompressed and is retried (free some space)",
					 j->path);
			queue_locked(c, j->path, now_ms() + back, j->tries + 1, j->bytes,
				     j->since_ms);
		}
		if (rc < 0 && rc != -EAGAIN && rc != -ENOSPC && rc != -EBUSY && rc != -ECANCELED) {
			c->s.failed++;
			log_warn(
				"compaction of %s failed: %s (it stays an uncompressed plain file; "
				"faissfs compact retries it)",
				j->path, strerror(-rc));
		}
		free(j);
		pthread_cond_broadcast(&c->idle);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int mnt_cmp_new(struct store *st, struct mnt_wr *wr, unsigned threads, unsigned idle_ms,
		struct mnt_cmp **out)
{
	struct mnt_cmp *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	c->st = st;
	c->wr = wr;
	c->idle_ms = idle_ms;
	metrics_hist_init(&c->commit, &metrics_bounds_load);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_cond_init(&c->idle, NULL);
	pthread_cond_init(&c->batch_done, NULL);
	c->threads = calloc(threads, sizeof(*c->threads));
	c->workers = calloc(threads, sizeof(*c->workers));
	if (!c->threads || !c->workers) {
		mnt_cmp_free(c);
		return -ENOMEM;
	}
	/* Every worker's id is below nthreads before any of them runs. */
	for (unsigned i = 0; i < threads; i++)
		c->workers[i] = (struct cmp_worker){.c = c, .id = i};
	c->nthreads = threads;
	for (; c->started < threads; c->started++) {
		rc = pthread_create(&c->threads[c->started], NULL, worker, &c->workers[c->started]);
		if (rc) {
			mnt_cmp_free(c);
			return -rc;
		}
	}
	*out = c;
	return 0;
}

void mnt_cmp_drain(struct mnt_cmp *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->jobs || c->busy)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

void mnt_cmp_get_stats(struct mnt_cmp *c, struct mnt_cmp_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->s;
	pthread_mutex_unlock(&c->lock);
}

void mnt_cmp_free(struct mnt_cmp *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->started; i++)
		pthread_join(c->threads[i], NULL);
	while (c->jobs) {
		struct cmp_job *j = c->jobs;

		c->jobs = j->next;
		free(j);
	}
	free(c->threads);
	free(c->workers);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->batch_done);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int mnt_compact_store(const char *path, unsigned threads)
{
	struct store *st = NULL;
	struct mnt_cmp *c = NULL;
	struct mnt_cmp_stats s;
	int lock = -1, rc;

	rc = store_open(path, STORE_QUIET, &st);
	if (rc < 0) {
		fprintf(stderr, "faissfs compact: '%s' %s\n", path, store_open_strerror(rc));
		return rc;
	}
	lock = store_lock(st, NULL);
	if (lock < 0) {
		rc = lock;
		fprintf(stderr,
			"faissfs compact: store '%s' is in use (a -o rw mount compacts it "
			"itself; or unmount it first)\n",
			path);
		goto out;
	}
	rc = mnt_cmp_new(st, NULL, threads, 0, &c);
	if (rc < 0) {
		fprintf(stderr, "faissfs compact: cannot start: %s\n", strerror(-rc));
		goto out;
	}
	mnt_cmp_scan(c);
	mnt_cmp_drain(c);
	mnt_cmp_get_stats(c, &s);
	printf("compacted %llu files: %llu bytes stored in %llu (%llu failed)\n",
	       (unsigned long long)s.compacted, (unsigned long long)s.logical_bytes,
	       (unsigned long long)s.stored_bytes, (unsigned long long)s.failed);
	rc = s.failed ? -EIO : 0;
out:
	mnt_cmp_free(c);
	store_unlock(lock);
	store_close(st);
	return rc;
}

void mnt_cmp_set_table(struct mnt_cmp *c, struct mnt_table *tab)
{
	if (c)
		c->tab = tab;
}

void mnt_cmp_set_level(struct mnt_cmp *c, int level)
{
	atomic_store_explicit(&c->level, level, memory_order_relaxed);
}

void mnt_cmp_set_paused(struct mnt_cmp *c, bool paused)
{
	atomic_store_explicit(&c->paused, paused, memory_order_relaxed);
	if (!paused) {
		pthread_mutex_lock(&c->lock);
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
}

const struct metrics_hist *mnt_cmp_commit_hist(struct mnt_cmp *c)
{
	return &c->commit;
}
