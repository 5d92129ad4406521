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
 * leaves the plain file or the object, both with the same bytes; leftovers in
 * tmp/ are removed by `faissfs verify --repair`.  Readers that have the plain file
 * open keep reading it (they hold its fd).
 *
 * Lock: c->lock protects the queue, the counters and the stop flag (leaf; no I/O
 * under it).  The gate is taken only by compact_file(), never with c->lock.
 */
#include "write.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "node.h"
#include "store/store.h"

#define RETRY_MAX_MS 60000u

struct cmp_job {
	struct cmp_job *next;
	uint64_t due_ms; /* CLOCK_MONOTONIC */
	uint64_t bytes;	 /* counted in mnt_cmp.s.backlog */
	unsigned tries;
	uint64_t since_ms; /* CLOCK_MONOTONIC of the last close that queued it; 0: a scan */
	char path[];	   /* "" for the root */
};

/* The previous object of a path, kept in tmp/ until that path is compacted again:
 * the chunks both versions share are copied, not compressed again. */
struct cmp_prev {
	struct cmp_prev *next;
	char *tmpname; /* in the store's tmp/ */
	char path[];
};

struct mnt_cmp {
	struct store *st;    /* immutable */
	struct mnt_wr *wr;   /* immutable; NULL offline */
	unsigned idle_ms;    /* immutable */
	_Atomic int level;   /* zstd level for new objects, 0: the store's; relaxed */
	_Atomic bool paused; /* compaction off at run time (jobs wait); relaxed */
	uint64_t limit;	     /* staged bytes before writers wait; 0: none; set before use */
	unsigned nthreads;   /* immutable */
	pthread_t *threads;  /* immutable after start */

	pthread_mutex_t lock;
	pthread_cond_t cond;	    /* jobs queued, or stop */
	pthread_cond_t idle;	    /* a worker finished a job */
	struct cmp_job *jobs;	    /* protected by lock; unordered */
	struct cmp_prev *prevs;	    /* protected by lock */
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

/* Opens the directory of @path (each component without following symlinks) and
 * sets *base to the last component.  Returns the fd or -errno. */
static int open_parent(struct mnt_cmp *c, const char *path, const char **base)
{
	char buf[PATH_MAX];
	char *p = buf, *slash;
	int fd, nfd;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	fd = fcntl(store_root_fd(c->st), F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while ((slash = strchr(p, '/'))) {
		*slash = '\0';
		nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return -errno;
		fd = nfd;
		p = slash + 1;
	}
	*base = path + (p - buf);
	return fd;
}

/* Queues every entry of the directory @path. */
static int walk_dir(struct mnt_cmp *c, const char *path)
{
	const char *base = NULL;
	struct dirent *de;
	char child[PATH_MAX];
	DIR *d;
	int dfd, fd;

	if (*path) {
		dfd = open_parent(c, path, &base);
		if (dfd < 0)
			return dfd;
		fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
	} else {
		fd = openat(store_root_fd(c->st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!*path && store_name_reserved(de->d_name))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", path, *path ? "/" : "", de->d_name) >=
		    (int)sizeof(child))
			continue;
		pthread_mutex_lock(&c->lock);
		queue_locked(c, child, now_ms(), 0, 0, 0);
		pthread_mutex_unlock(&c->lock);
	}
	closedir(d);
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	struct mnt_ident ia, ib;

	mnt_ident_of(a, &ia);
	mnt_ident_of(b, &ib);
	return mnt_ident_eq(&ia, &ib);
}

/* The temp name of @path's previous object (caller frees), or NULL. */
static char *prev_get(struct mnt_cmp *c, const char *path)
{
	char *name = NULL;

	pthread_mutex_lock(&c->lock);
	for (struct cmp_prev *p = c->prevs; p; p = p->next)
		if (!strcmp(p->path, path)) {
			name = strdup(p->tmpname);
			break;
		}
	pthread_mutex_unlock(&c->lock);
	return name;
}

/* Forgets the previous object kept as @tmpname (NULL: all of them) and removes it
 * from tmp/. */
static void prev_drop(struct mnt_cmp *c, const char *tmpname)
{
	struct cmp_prev **pp, *dead = NULL, *p;

	pthread_mutex_lock(&c->lock);
	for (pp = &c->prevs; *pp;) {
		p = *pp;
		if (tmpname && strcmp(p->tmpname, tmpname)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = dead;
		dead = p;
	}
	pthread_mutex_unlock(&c->lock);
	while (dead) {
		p = dead;
		dead = p->next;
		store_discard_tmp(c->st, p->tmpname);
		free(p->tmpname);
		free(p);
	}
}

void mnt_cmp_keep_prev(struct mnt_cmp *c, int dirfd, const char *name, const char *relpath)
{
	static unsigned long seq;
	struct cmp_prev *p = NULL;
	struct stat st;
	uint64_t lsize;
	char tmpname[64], *old;
	int fd, rc;

	if (!c)
		return;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	rc = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? store_object_probe(fd, name, &lsize) : 0;
	close(fd);
	if (rc != 1)
		return; /* only objects have chunks to share */
	snprintf(tmpname, sizeof(tmpname), "prev.%d.%lu", (int)getpid(),
		 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	if (linkat(dirfd, name, store_tmp_fd(c->st), tmpname, 0) < 0)
		return;
	p = malloc(sizeof(*p) + strlen(relpath) + 1);
	if (p)
		p->tmpname = strdup(tmpname);
	if (!p || !p->tmpname) {
		free(p);
		store_discard_tmp(c->st, tmpname);
		return;
	}
	strcpy(p->path, relpath);
	old = prev_get(c, relpath);
	if (old)
		prev_drop(c, old); /* an older one */
	free(old);
	pthread_mutex_lock(&c->lock);
	p->next = c->prevs;
	c->prevs = p;
	pthread_mutex_unlock(&c->lock);
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

/* Compresses the plain file @fd (stat @st) into a finished temp object and checks
 * it against the file.  Returns 0 and the temp name (caller frees), -EAGAIN if the
 * file changed meanwhile, -ECANCELED on stop, or -errno. */
static int compress_file(struct mnt_cmp *c, int fd, const struct stat *st, const char *path,
			 char **tmpname)
{
	struct store_params params = *store_default_params(c->st);
	const struct store_params *p = &params;
	int level = atomic_load_explicit(&c->level, memory_order_relaxed);
	struct store_writer *w = NULL;
	struct store_object *so = NULL;
	struct store_dctx *dc = NULL;
	uint8_t *buf = NULL, *back = NULL;
	struct store_object *prev = NULL;
	struct store_cctx *cc = NULL;
	struct store_chunk chunk = {0};
	uint64_t reused = 0, encoded = 0, nprev = 0;
	struct stat after;
	char *name = NULL, *prevname = prev_get(c, path);
	uint64_t off = 0;
	int rc;

	buf = malloc(p->chunk_size);
	back = malloc(p->chunk_size);
	dc = store_dctx_new();
	cc = store_cctx_new();
	if (!buf || !back || !dc || !cc) {
		rc = -ENOMEM;
		goto out;
	}
	if (prevname && store_object_openat(store_tmp_fd(c->st), prevname, prevname, &prev) == 0 &&
	    store_object_info(prev)->chunk_size == p->chunk_size)
		nprev = store_object_info(prev)->nchunks;
	if (level > 0)
		params.level = level; /* the runtime setting (faissfs set) */
	rc = store_writer_new(c->st, p, &w);
	if (rc < 0)
		goto out;
	for (uint64_t idx = 0; off < (uint64_t)st->st_size; idx++) {
		size_t len = (uint64_t)st->st_size - off < p->chunk_size
				     ? (size_t)((uint64_t)st->st_size - off)
				     : p->chunk_size;

		rc = read_full(fd, buf, len, off);
		if (rc < 0)
			goto out;
		if (idx == 0)
			store_writer_set_head(w, buf, len);
		/* The same bytes as the previous version's chunk: copy its frame. */
		if (idx < nprev && store_object_chunk_len(prev, idx) == len &&
		    store_object_chunk_hash(prev, idx) == XXH3_64bits(buf, len) &&
		    store_object_chunk_copy(prev, idx, &chunk) == 0) {
			reused++;
		} else {
			rc = store_chunk_encode(cc, buf, len, p->level, &chunk);
			if (rc < 0)
				goto out;
			encoded++;
		}
		rc = store_writer_append_chunk(w, &chunk);
		if (rc < 0)
			goto out;
		off += len;
		if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
			rc = -ECANCELED;
			goto out;
		}
	}
	if (fstat(fd, &after) < 0) {
		rc = -errno;
		goto out;
	}
	if (!same_file(st, &after) || off != (uint64_t)st->st_size) {
		rc = -EAGAIN;
		goto out;
	}
	rc = store_writer_finish(w, &name);
	w = NULL; /* freed either way */
	if (rc < 0)
		goto out;
	/* Read back and compare, as import does: the plain file goes away. */
	rc = store_object_openat(store_tmp_fd(c->st), name, path, &so);
	for (off = 0; rc == 0 && off < (uint64_t)st->st_size;) {
		ssize_t a = pread(fd, buf, p->chunk_size, (off_t)off);
		ssize_t b = store_object_pread(so, dc, back, p->chunk_size, off);

		if (a < 0 || b < 0 || a != b || a == 0 || memcmp(buf, back, (size_t)a)) {
			rc = a < 0 ? -errno : b < 0 ? (int)b : -EAGAIN;
			break;
		}
		off += (uint64_t)a;
	}
	if (rc == 0 && store_object_info(so)->size != (uint64_t)st->st_size)
		rc = -EAGAIN;
	if (rc < 0) {
		store_discard_tmp(c->st, name);
		goto out;
	}
	*tmpname = name;
	name = NULL;
	if (nprev)
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
	store_chunk_release(&chunk);
	store_cctx_free(cc);
	free(prevname);
	store_object_free(so);
	store_dctx_free(dc);
	free(buf);
	free(back);
	free(name);
	return rc;
}

/* Compacts the store file @path.  Returns 1 compacted, 0 nothing to do (an object,
 * small, gone, a directory: walked), -EAGAIN to retry later, or -errno. */
static int compact_file(struct mnt_cmp *c, const char *path, uint64_t *logical, uint64_t *stored)
{
	struct timespec now;
	const char *base = NULL;
	struct stat st, cur;
	uint64_t lsize;
	char *tmpname = NULL;
	int dfd = -1, fd = -1, rc;

	if (atomic_load_explicit(&c->paused, memory_order_relaxed))
		return -EAGAIN; /* compaction=off: retried later */
	if (!*path)
		return walk_dir(c, path);
	dfd = open_parent(c, path, &base);
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
	rc = compress_file(c, fd, &st, path, &tmpname);
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
	struct mnt_cmp *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		struct cmp_job **pp, **best = NULL, *j;
		uint64_t now = now_ms(), logical = 0, stored = 0;
		char *prevname = NULL;
		int rc;

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
		prevname = prev_get(c, j->path);
		rc = compact_file(c, j->path, &logical, &stored);

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
		if (!(rc == -EAGAIN || rc == -ENOSPC || rc == -EBUSY || rc == -ECANCELED)) {
			pthread_mutex_unlock(&c->lock);
			if (prevname)
				prev_drop(c, prevname);
			pthread_mutex_lock(&c->lock);
		}
		if (rc < 0 && rc != -EAGAIN && rc != -ENOSPC && rc != -EBUSY && rc != -ECANCELED) {
			c->s.failed++;
			log_warn(
				"compaction of %s failed: %s (it stays an uncompressed plain file; "
				"faissfs compact retries it)",
				j->path, strerror(-rc));
		}
		free(j);
		free(prevname);
		prevname = NULL;
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
	c->threads = calloc(threads, sizeof(*c->threads));
	if (!c->threads) {
		mnt_cmp_free(c);
		return -ENOMEM;
	}
	for (; c->nthreads < threads; c->nthreads++) {
		rc = pthread_create(&c->threads[c->nthreads], NULL, worker, c);
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
	for (unsigned i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	while (c->jobs) {
		struct cmp_job *j = c->jobs;

		c->jobs = j->next;
		free(j);
	}
	prev_drop(c, NULL);
	free(c->threads);
	pthread_cond_destroy(&c->cond);
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

	rc = store_open(path, 0, &st);
	if (rc < 0) {
		fprintf(stderr,
			"faissfs compact: cannot open store '%s': %s (see the message "
			"above)\n",
			path, strerror(-rc));
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
