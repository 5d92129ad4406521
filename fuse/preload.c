/* preload.c - access counts of index files, and warming the most used ones (-o preload).
 *
 * Counting: every open of a FAISS index file (an object whose header parses as an index)
 * adds one to its path's count in a small hash table (at most STORE_ACCESS_MAX paths;
 * when full, every count is halved and the zeros dropped, so old favourites fade).
 * The table starts from STORE/.faissfs/access and is written back (store_access_save())
 * about once a minute and at unmount, only if it changed, and only on a writable mount:
 * a read-only mount promises not to write to the store, so its counts stay in memory.
 *
 * Preloading: one thread, started once the daemon serves.  It waits for INIT to be
 * answered (mnt_pre_ready()), so readiness never waits for it, then takes the N paths
 * with the highest counts and, index by index, chunk by chunk, decompresses them into
 * the cache with cache_prefetch() (a prefetched entry enters the cache as cold, so it
 * never pushes out what readers use).  It stops for good once what it loaded would pass
 * budget / MNT_PRE_BUDGET_SHARE, or once one more chunk would not fit in the budget
 * without an eviction; it pauses while reads come in (none for MNT_PRE_QUIET_MS), so
 * readers and the read-ahead workers they start keep the CPUs.  A read that is still in
 * flight after that quiet time is not seen: the pause is a heuristic, not a lock.
 * Files are opened from the store root one component at a time with O_NOFOLLOW, so a
 * path in the access file cannot lead outside the store.
 *
 * Locks: p->lock (a leaf) guards the table, dirty, loaded, ready and stop; it is never
 * held across I/O, a cache call or a decompression.  Statistics are relaxed atomics.
 */
#include "preload.h"
#include "control.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "store/store.h"

#define PRE_BUCKETS 8192u /* hash buckets; power of two, >= 2 * STORE_ACCESS_MAX */

struct pre_ent {
	char *path;
	uint64_t count;
	uint32_t next; /* next entry of the bucket + 1; 0: none */
};

struct mnt_pre {
	struct mnt_fs *fs; /* borrowed; immutable */
	unsigned n;	   /* indices to preload; immutable */
	pthread_t thread;
	bool started; /* written before the thread starts, read by mnt_pre_free() */

	pthread_mutex_t lock;
	pthread_cond_t cond;		 /* waits on lock: ready, stop, or a timeout */
	bool ready, stop, dirty, loaded; /* protected by lock */
	struct pre_ent *ents;		 /* protected by lock; STORE_ACCESS_MAX of them */
	uint32_t nents;			 /* protected by lock */
	uint32_t buckets[PRE_BUCKETS];	 /* protected by lock; first entry + 1 */

	uint64_t seen_reads, seen_at; /* the preload thread's own */

	_Atomic uint64_t indices, chunks, bytes, pauses, failed, t_start, t_end;
	_Atomic bool running, full;
};

/* FNV-1a: paths are short; no need for more. */
static uint32_t pre_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h & (PRE_BUCKETS - 1);
}

static void pre_rehash(struct mnt_pre *p)
{
	memset(p->buckets, 0, sizeof(p->buckets));
	for (uint32_t i = 0; i < p->nents; i++) {
		uint32_t b = pre_hash(p->ents[i].path);

		p->ents[i].next = p->buckets[b];
		p->buckets[b] = i + 1;
	}
}

/* Full table: halves every count and drops those that reach zero, until one is
 * dropped.  Caller holds p->lock. */
static void pre_age(struct mnt_pre *p)
{
	uint32_t kept;

	do {
		kept = 0;
		for (uint32_t i = 0; i < p->nents; i++) {
			p->ents[i].count /= 2;
			if (p->ents[i].count)
				p->ents[kept++] = p->ents[i];
			else
				free(p->ents[i].path);
		}
	} while (kept == p->nents);
	p->nents = kept;
	pre_rehash(p);
}

/* Adds @count to @path's count (saturating).  Caller holds p->lock.  Returns 0 or
 * -ENOMEM. */
static int pre_add(struct mnt_pre *p, const char *path, uint64_t count)
{
	uint32_t b = pre_hash(path), i;
	char *copy;

	for (i = p->buckets[b]; i; i = p->ents[i - 1].next) {
		struct pre_ent *e = &p->ents[i - 1];

		if (!strcmp(e->path, path)) {
			e->count = e->count > UINT64_MAX - count ? UINT64_MAX : e->count + count;
			return 0;
		}
	}
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	if (p->nents == STORE_ACCESS_MAX) {
		pre_age(p);
		b = pre_hash(path);
	}
	p->ents[p->nents] = (struct pre_ent){copy, count, p->buckets[b]};
	p->buckets[b] = ++p->nents;
	return 0;
}

int mnt_pre_new(struct mnt_fs *fs, unsigned n, struct mnt_pre **out)
{
	struct mnt_pre *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;

	if (!p)
		return -ENOMEM;
	p->ents = calloc(STORE_ACCESS_MAX, sizeof(*p->ents));
	if (!p->ents) {
		free(p);
		return -ENOMEM;
	}
	p->fs = fs;
	p->n = n;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = p;
	return 0;
}

void mnt_pre_note(struct mnt_pre *p, struct mnt_node *n)
{
	char path[PATH_MAX];

	if (!p || mnt_node_relpath(n, path, sizeof(path)) < 0 || !store_access_path_ok(path))
		return;
	pthread_mutex_lock(&p->lock);
	if (pre_add(p, path, 1) == 0)
		p->dirty = true;
	pthread_mutex_unlock(&p->lock);
}

/* Merges the saved counts into the table (once).  A missing file is the first mount;
 * a damaged one was logged by the store and is left for the next save to replace. */
static void pre_load(struct mnt_pre *p)
{
	struct store_access *recs = NULL;
	ssize_t n = store_access_load(p->fs->st, &recs);

	if (n < 0 && n != -ENOENT && n != -EUCLEAN)
		log_warn("cannot read the access counts of %s: %s; preloading starts from none "
			 "(check .faissfs/access there)",
			 store_path(p->fs->st), strerror((int)-n));
	pthread_mutex_lock(&p->lock);
	for (ssize_t i = 0; i < n; i++)
		pre_add(p, recs[i].path, recs[i].count);
	p->loaded = true;
	pthread_mutex_unlock(&p->lock);
	if (n >= 0)
		log_debug("access counts: %zd index files from .faissfs/access", n);
	if (!p->fs->rw)
		log_msg(p->n ? LOG_LVL_INFO : LOG_LVL_DEBUG,
			"read-only mount: its access counts are kept in memory, not saved to "
			".faissfs/access (mount writable to record them for -o preload)");
	store_access_free(recs, n > 0 ? (size_t)n : 0);
}

static int by_count(const void *a, const void *b)
{
	const struct store_access *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* A copy of the table (caller frees with store_access_free()); sorted by count, most
 * first, ties by path, when @sorted.  Returns the number of records or -ENOMEM. */
static ssize_t pre_snapshot(struct mnt_pre *p, bool sorted, struct store_access **out)
{
	struct store_access *recs;
	ssize_t n = 0;

	pthread_mutex_lock(&p->lock);
	recs = calloc(p->nents ? p->nents : 1, sizeof(*recs));
	for (uint32_t i = 0; recs && i < p->nents; i++, n++) {
		recs[i].path = strdup(p->ents[i].path);
		recs[i].count = p->ents[i].count;
		if (!recs[i].path) {
			store_access_free(recs, (size_t)n);
			recs = NULL;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (!recs)
		return -ENOMEM;
	if (sorted)
		qsort(recs, (size_t)n, sizeof(*recs), by_count);
	*out = recs;
	return n;
}

/* Writes the counts back if they changed and the mount may write to the store. */
static void pre_save(struct mnt_pre *p)
{
	struct store_access *recs = NULL;
	ssize_t n;
	bool dirty;

	if (!p->fs->rw)
		return;
	pthread_mutex_lock(&p->lock);
	dirty = p->dirty && p->loaded;
	p->dirty = false;
	pthread_mutex_unlock(&p->lock);
	if (!dirty)
		return;
	n = pre_snapshot(p, false, &recs);
	if (n < 0 || store_access_save(p->fs->st, recs, (size_t)n) < 0) {
		pthread_mutex_lock(&p->lock);
		p->dirty = true; /* try again at the next save */
		pthread_mutex_unlock(&p->lock);
	}
	store_access_free(recs, n > 0 ? (size_t)n : 0);
}

static bool pre_stopping(struct mnt_pre *p)
{
	bool s;

	pthread_mutex_lock(&p->lock);
	s = p->stop;
	pthread_mutex_unlock(&p->lock);
	return s;
}

/* Waits until no read was served for MNT_PRE_QUIET_MS.  Returns false if told to stop. */
static bool pre_quiet(struct mnt_pre *p)
{
	const uint64_t quiet = (uint64_t)MNT_PRE_QUIET_MS * 1000000u;
	bool paused = false, stop = false;
	struct mnt_ra_stats rs;

	while (p->fs->ra && !stop) {
		uint64_t now = mnt_now_ns(), until;
		struct timespec ts;

		mnt_ra_get_stats(p->fs->ra, &rs);
		if (rs.reads != p->seen_reads) {
			p->seen_reads = rs.reads;
			p->seen_at = now;
		}
		if (now - p->seen_at >= quiet)
			break;
		if (!paused) {
			paused = true;
			atomic_fetch_add_explicit(&p->pauses, 1, memory_order_relaxed);
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		until = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec +
			(p->seen_at + quiet - now);
		ts.tv_sec = (time_t)(until / 1000000000u);
		ts.tv_nsec = (long)(until % 1000000000u);
		pthread_mutex_lock(&p->lock);
		if (!p->stop)
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		stop = p->stop;
		pthread_mutex_unlock(&p->lock);
	}
	return !stop && !pre_stopping(p);
}

/* Opens the object at @path (relative to the store root, checked by
 * store_access_path_ok()) without following a symlink anywhere on the way. */
static int pre_open(struct mnt_pre *p, const char *path, struct store_object **out)
{
	const char *base;
	int dfd = store_open_parent(p->fs->st, path, &base), fd, rc;

	if (dfd < 0)
		return dfd;
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(dfd);
	if (fd < 0)
		return -errno;
	/* store_object_open(): a remote store's view holds reference files. */
	rc = store_object_open(p->fs->st, fd, path, out);
	close(fd);
	return rc;
}

struct pre_fill {
	const struct store_object *so;
	uint64_t idx;
	struct store_dctx *dc;
};

/* cache_fill_fn: decompresses one chunk with the preload thread's context. */
static int pre_fill_chunk(void *arg, void *dst, size_t len)
{
	struct pre_fill *f = arg;

	(void)len;
	return store_object_read_chunk(f->so, f->idx, f->dc, dst);
}

/* Warms every chunk of the index at @path.  @loaded counts the bytes this preload put
 * in the cache.  Returns 0 (done), 1 (the budget is reached or we are stopping: preload
 * no more), or -errno (this index failed; logged). */
static int pre_index(struct mnt_pre *p, const char *path, struct store_dctx *dc, uint64_t *loaded)
{
	struct store_object *so = NULL;
	const struct store_object_info *info;
	struct cache_stats cs;
	struct cache_key key;
	int rc = pre_open(p, path, &so);

	if (rc < 0) {
		log_info("preload: skipping %s: %s (gone or not an object since it was counted)",
			 path, strerror(-rc));
		return rc;
	}
	info = store_object_info(so);
	store_object_id(so, key.obj);
	for (uint64_t idx = 0; idx < info->nchunks; idx++) {
		size_t clen = store_object_chunk_len(so, idx);
		struct pre_fill f = {so, idx, dc};

		if (!pre_quiet(p)) {
			rc = 1;
			break;
		}
		cache_get_stats(p->fs->cache, &cs);
		if (*loaded + clen > cs.budget / MNT_PRE_BUDGET_SHARE ||
		    cs.bytes + clen > cs.budget) {
			atomic_store_explicit(&p->full, true, memory_order_relaxed);
			log_info("preload: stopped in %s at %llu MiB: the cache budget (%llu MiB, "
				 "%llu MiB held) leaves no more room for it",
				 path, (unsigned long long)(*loaded >> 20),
				 (unsigned long long)(cs.budget >> 20),
				 (unsigned long long)(cs.bytes >> 20));
			rc = 1;
			break;
		}
		key.chunk = idx;
		rc = cache_prefetch(p->fs->cache, &key, clen, pre_fill_chunk, &f);
		if (rc == -EEXIST) {
			rc = 0; /* a reader or read-ahead had it already */
			continue;
		}
		if (rc < 0) {
			log_warn("preload: %s: chunk %llu: %s; the rest of it is not preloaded "
				 "(readers will see the error; see faissfs verify)",
				 path, (unsigned long long)idx, strerror(-rc));
			break;
		}
		*loaded += clen;
		atomic_fetch_add_explicit(&p->chunks, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->bytes, clen, memory_order_relaxed);
	}
	if (rc >= 0)
		atomic_fetch_add_explicit(&p->indices, 1, memory_order_relaxed);
	store_object_free(so);
	return rc;
}

/* Preloads the p->n most used indices. */
static void pre_run(struct mnt_pre *p)
{
	struct store_access *top = NULL;
	struct store_dctx *dc = store_dctx_new();
	ssize_t n = pre_snapshot(p, true, &top);
	uint64_t loaded = 0, t0 = mnt_now_ns();
	unsigned done = 0;

	atomic_store_explicit(&p->t_start, t0, memory_order_relaxed);
	atomic_store_explicit(&p->running, true, memory_order_relaxed);
	if (!dc || n < 0) {
		log_warn("preload: out of memory; nothing preloaded");
		goto out;
	}
	/* An index that cannot be read (gone since it was counted) leaves its place to
	 * the next one. */
	for (ssize_t i = 0; i < n && done < p->n; i++) {
		int rc = pre_index(p, top[i].path, dc, &loaded);

		if (rc < 0)
			atomic_fetch_add_explicit(&p->failed, 1, memory_order_relaxed);
		else
			done++;
		if (rc == 1)
			break;
	}
	log_info("preload: %llu of the %u most used indices, %llu MiB in %.2f s",
		 (unsigned long long)atomic_load(&p->indices), p->n,
		 (unsigned long long)(loaded >> 20), (double)(mnt_now_ns() - t0) / 1e9);
out:
	atomic_store_explicit(&p->t_end, mnt_now_ns(), memory_order_relaxed);
	atomic_store_explicit(&p->running, false, memory_order_relaxed);
	store_access_free(top, n > 0 ? (size_t)n : 0);
	store_dctx_free(dc);
}

static void *pre_thread(void *arg)
{
	struct mnt_pre *p = arg;
	struct timespec ts;

	pre_load(p);
	pthread_mutex_lock(&p->lock);
	while (!p->stop && !p->ready)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	if (p->n > 0 && !pre_stopping(p))
		pre_run(p);
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += MNT_PRE_SAVE_MS / 1000;
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) != ETIMEDOUT)
			;
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);
		pre_save(p);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int mnt_pre_start(struct mnt_pre *p)
{
	int rc = -pthread_create(&p->thread, NULL, pre_thread, p);

	p->started = rc == 0;
	return rc;
}

void mnt_pre_ready(struct mnt_pre *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->ready = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void mnt_pre_free(struct mnt_pre *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->started)
		pthread_join(p->thread, NULL);
	/* Never started (or failed early): merge the saved counts before saving, so
	 * that they are not lost. */
	if (!p->loaded && p->dirty && p->fs->rw)
		pre_load(p);
	pre_save(p);
	for (uint32_t i = 0; i < p->nents; i++)
		free(p->ents[i].path);
	free(p->ents);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void mnt_pre_get_stats(struct mnt_pre *p, struct mnt_pre_stats *out)
{
	uint64_t t0, t1;

	memset(out, 0, sizeof(*out));
	if (!p)
		return;
	out->indices = atomic_load_explicit(&p->indices, memory_order_relaxed);
	out->chunks = atomic_load_explicit(&p->chunks, memory_order_relaxed);
	out->bytes = atomic_load_explicit(&p->bytes, memory_order_relaxed);
	out->pauses = atomic_load_explicit(&p->pauses, memory_order_relaxed);
	out->failed = atomic_load_explicit(&p->failed, memory_order_relaxed);
	out->running = atomic_load_explicit(&p->running, memory_order_relaxed);
	out->full = atomic_load_explicit(&p->full, memory_order_relaxed);
	t0 = atomic_load_explicit(&p->t_start, memory_order_relaxed);
	t1 = out->running ? mnt_now_ns() : atomic_load_explicit(&p->t_end, memory_order_relaxed);
	out->ms = t0 && t1 > t0 ? (t1 - t0) / 1000000u : 0;
	pthread_mutex_lock(&p->lock);
	out->tracked = p->nents;
	pthread_mutex_unlock(&p->lock);
}
