/* readahead.c - decompress the chunks ahead of a sequential reader on a pool of workers.
 *
 * Every read of an object is noted here (mnt_ra_note()).  A small table of recent streams
 * (object, where its last read ended) recognises a sequential reader: a read that starts
 * exactly where a stream's last read ended extends it; once MNT_RA_TRIGGER reads in a row
 * have, the next `depth` chunks are queued, each once, to the workers, which
 * decompress them into the cache with cache_prefetch() (one struct store_dctx per worker)
 * and drop them at once.  A sequential read thus uses every core: the request thread copies
 * out chunk i while the workers decompress i+1..i+depth.  Random reads and page faults
 * start streams that nothing continues, so they never read ahead.
 * Jobs hold a reference on their object; a full queue drops new jobs (read-ahead is a hint).
 *
 * Also here: raising the kernel's read-ahead window of the mount (mnt_ra_tune_kernel()).
 *
 * Locks (leaves, never held together, never across a fill or a cache call):
 *   ra->streams_lock   the stream table
 *   ra->queue_lock     the job ring, ra->stop; ra->queue_cond waits on it
 */
#include "mnt.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "store/store.h"

#define MNT_RA_STREAMS 32u  /* sequential readers followed at once */
#define MNT_RA_TRIGGER 3u   /* reads continuing a stream before reading ahead */
#define MNT_RA_QUEUE   256u /* pending jobs; power of two */

struct ra_stream {
	const struct mnt_obj *obj; /* identity only, never dereferenced; NULL: free slot */
	uint64_t end;		   /* byte offset where the last read ended */
	uint64_t ahead;		   /* chunks below this were queued already */
	unsigned run;		   /* reads that continued the stream */
	uint64_t used;		   /* for replacing the least recently used slot */
};

struct ra_job {
	struct mnt_obj *ob; /* holds a reference */
	uint64_t idx;
};

struct mnt_ra {
	struct cache *cache;	/* immutable */
	_Atomic unsigned depth; /* chunks read ahead, 0 = off: relaxed, set by mnt_ra_set_depth() */
	unsigned nworkers;	/* immutable */
	pthread_t *workers;	/* immutable once started */

	pthread_mutex_t streams_lock;
	struct ra_stream streams[MNT_RA_STREAMS]; /* protected by streams_lock */
	uint64_t clock;				  /* protected by streams_lock */

	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;	  /* waits on queue_lock: a job or stop */
	struct ra_job ring[MNT_RA_QUEUE]; /* protected by queue_lock */
	unsigned head, count;		  /* protected by queue_lock */
	bool stop;			  /* protected by queue_lock */

	/* Statistics: relaxed atomics. */
	_Atomic uint64_t reads, read_bytes, triggers, queued, dropped, done, failed;
};

struct ra_fill {
	const struct store_object *so;
	uint64_t idx;
	struct store_dctx *dc;
};

/* cache_fill_fn: decompresses one chunk with the worker's context. */
static int ra_fill_chunk(void *arg, void *dst, size_t len)
{
	struct ra_fill *f = arg;

	(void)len;
	return store_object_read_chunk(f->so, f->idx, f->dc, dst);
}

static void *ra_worker(void *arg)
{
	struct mnt_ra *ra = arg;
	struct store_dctx *dc = store_dctx_new();

	for (;;) {
		struct ra_job job;
		struct cache_key key;
		struct ra_fill f;
		int rc;

		pthread_mutex_lock(&ra->queue_lock);
		while (!ra->stop && ra->count == 0)
			pthread_cond_wait(&ra->queue_cond, &ra->queue_lock);
		if (ra->stop) {
			pthread_mutex_unlock(&ra->queue_lock);
			break;
		}
		job = ra->ring[ra->head];
		ra->head = (ra->head + 1) & (MNT_RA_QUEUE - 1);
		ra->count--;
		pthread_mutex_unlock(&ra->queue_lock);

		rc = -ENOMEM;
		if (dc) {
			f = (struct ra_fill){job.ob->so, job.idx, dc};
			store_object_id(job.ob->so, key.obj);
			key.chunk = job.idx;
			rc = cache_prefetch(ra->cache, &key,
					    store_object_chunk_len(job.ob->so, job.idx),
					    ra_fill_chunk, &f);
		}
		/* -EEXIST: the reader got there first.  A failed chunk is not cached; the
		 * reader's own get reports it (the store has logged where). */
		if (rc == 0)
			atomic_fetch_add_explicit(&ra->done, 1, memory_order_relaxed);
		else if (rc != -EEXIST)
			atomic_fetch_add_explicit(&ra->failed, 1, memory_order_relaxed);
		mnt_obj_put(job.ob);
	}
	store_dctx_free(dc);
	return NULL;
}

int mnt_ra_new(struct cache *cache, unsigned workers, unsigned depth, struct mnt_ra **out)
{
	struct mnt_ra *ra = calloc(1, sizeof(*ra));
	unsigned started = 0;
	int rc = -ENOMEM;

	if (!ra)
		return -ENOMEM;
	ra->cache = cache;
	ra->depth = workers > 0 ? depth : 0;
	pthread_mutex_init(&ra->streams_lock, NULL);
	pthread_mutex_init(&ra->queue_lock, NULL);
	pthread_cond_init(&ra->queue_cond, NULL);
	/* Workers start even with depth 0, so that read-ahead can be turned on at run
	 * time; idle, they only wait on queue_cond. */
	if (workers > 0) {
		ra->workers = calloc(workers, sizeof(*ra->workers));
		if (!ra->workers)
			goto fail;
		for (; started < workers; started++) {
			rc = -pthread_create(&ra->workers[started], NULL, ra_worker, ra);
			if (rc < 0)
				goto fail;
		}
	}
	ra->nworkers = started;
	*out = ra;
	return 0;
fail:
	ra->nworkers = started;
	mnt_ra_free(ra);
	return rc;
}

int mnt_ra_set_depth(struct mnt_ra *ra, unsigned depth)
{
	if (depth > MNT_RA_MAX_DEPTH || (depth > 0 && ra->nworkers == 0))
		return -EINVAL;
	atomic_store_explicit(&ra->depth, depth, memory_order_relaxed);
	return 0;
}

unsigned mnt_ra_depth(struct mnt_ra *ra)
{
	return atomic_load_explicit(&ra->depth, memory_order_relaxed);
}

void mnt_ra_free(struct mnt_ra *ra)
{
	if (!ra)
		return;
	pthread_mutex_lock(&ra->queue_lock);
	ra->stop = true;
	pthread_cond_broadcast(&ra->queue_cond);
	pthread_mutex_unlock(&ra->queue_lock);
	for (unsigned i = 0; i < ra->nworkers; i++)
		pthread_join(ra->workers[i], NULL);
	/* Jobs nobody took: give their references back. */
	for (; ra->count > 0; ra->count--) {
		mnt_obj_put(ra->ring[ra->head].ob);
		ra->head = (ra->head + 1) & (MNT_RA_QUEUE - 1);
	}
	free(ra->workers);
	pthread_cond_destroy(&ra->queue_cond);
	pthread_mutex_destroy(&ra->queue_lock);
	pthread_mutex_destroy(&ra->streams_lock);
	free(ra);
}

/* Queues chunk @idx of @ob; false if the queue is full (the job is dropped). */
static bool ra_queue(struct mnt_ra *ra, struct mnt_obj *ob, uint64_t idx)
{
	bool ok = false;

	pthread_mutex_lock(&ra->queue_lock);
	if (ra->count < MNT_RA_QUEUE && !ra->stop) {
		mnt_obj_get(ob);
		ra->ring[(ra->head + ra->count) & (MNT_RA_QUEUE - 1)] = (struct ra_job){ob, idx};
		ra->count++;
		pthread_cond_signal(&ra->queue_cond);
		ok = true;
	}
	pthread_mutex_unlock(&ra->queue_lock);
	return ok;
}

/* Finds the stream a read of [@off, @off+@len) of @ob continues (it starts exactly where
 * the stream's last read ended), or recycles the least recently used slot for a new one.
 * Sets *from and *to to the chunks to queue (empty if none); returns true if the read
 * continues a stream.  Caller holds ra->streams_lock.
 *
 * Exact contiguity in bytes is what tells a sequential reader: the kernel's read-ahead
 * asks for the range right after the previous one, whereas random page faults (1 MiB
 * read-around windows) and random reads rarely start at the very byte another read
 * ended.  Requests in flight together may arrive out of order; the one that arrives
 * early starts its own stream, which the next request continues. */
static bool ra_follow(struct mnt_ra *ra, const struct mnt_obj *ob, uint64_t off, uint64_t len,
		      uint64_t cs, uint64_t nchunks, uint64_t *from, uint64_t *to)
{
	struct ra_stream *s = NULL, *lru = &ra->streams[0];
	uint64_t last = (off + len - 1) / cs;
	/* At most a quarter of the cache (its budget now: it changes at run time) ahead
	 * of one reader, or the chunks read ahead would evict each other before use. */
	uint64_t depth = atomic_load_explicit(&ra->depth, memory_order_relaxed), cap;
	struct cache_stats st;

	cache_get_stats(ra->cache, &st);
	cap = st.budget / 4 / cs;
	if (depth > cap)
		depth = cap;

	*from = *to = 0;
	for (unsigned i = 0; i < MNT_RA_STREAMS; i++) {
		struct ra_stream *t = &ra->streams[i];

		if (t->obj == ob && t->end == off) {
			s = t;
			break;
		}
		if (t->used < lru->used)
			lru = t;
	}
	if (!s) {
		*lru = (struct ra_stream){.obj = ob, .end = off + len, .ahead = last + 1};
		lru->used = ++ra->clock;
		return false;
	}
	s->used = ++ra->clock;
	s->end = off + len;
	if (++s->run < MNT_RA_TRIGGER)
		return true;
	/* Keep `depth` chunks queued ahead; top up only once half of them are used, so a
	 * reader of small requests does not queue one job per request. */
	if (s->ahead < last + 1)
		s->ahead = last + 1;
	if (depth == 0 || (s->ahead > last + 1 + depth / 2 && depth > 1))
		return true;
	*from = s->ahead;
	*to = last + 1 + depth < nchunks ? last + 1 + depth : nchunks;
	if (*to > *from)
		s->ahead = *to;
	return true;
}

bool mnt_ra_note(struct mnt_ra *ra, struct mnt_obj *ob, uint64_t off, uint64_t len)
{
	const struct store_object_info *info = store_object_info(ob->so);
	uint64_t from, to;
	bool seq;

	atomic_fetch_add_explicit(&ra->reads, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ra->read_bytes, len, memory_order_relaxed);
	if (atomic_load_explicit(&ra->depth, memory_order_relaxed) == 0 || len == 0)
		return false;
	pthread_mutex_lock(&ra->streams_lock);
	seq = ra_follow(ra, ob, off, len, info->chunk_size, info->nchunks, &from, &to);
	pthread_mutex_unlock(&ra->streams_lock);
	if (to <= from)
		return seq;
	atomic_fetch_add_explicit(&ra->triggers, 1, memory_order_relaxed);
	for (uint64_t idx = from; idx < to; idx++) {
		if (!ra_queue(ra, ob, idx)) {
			atomic_fetch_add_explicit(&ra->dropped, to - idx, memory_order_relaxed);
			break;
		}
		atomic_fetch_add_explicit(&ra->queued, 1, memory_order_relaxed);
	}
	return seq;
}

void mnt_ra_get_stats(struct mnt_ra *ra, struct mnt_ra_stats *out)
{
	out->reads = atomic_load_explicit(&ra->reads, memory_order_relaxed);
	out->read_bytes = atomic_load_explicit(&ra->read_bytes, memory_order_relaxed);
	out->triggers = atomic_load_explicit(&ra->triggers, memory_order_relaxed);
	out->queued = atomic_load_explicit(&ra->queued, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&ra->dropped, memory_order_relaxed);
	out->done = atomic_load_explicit(&ra->done, memory_order_relaxed);
	out->failed = atomic_load_explicit(&ra->failed, memory_order_relaxed);
}

/* --- the kernel's read-ahead window ------------------------------------------------- */

/* Undoes mountinfo's octal escapes in place ("\\040" space, "\\011" tab, "\\012"
 * newline, "\\134" backslash). */
static void mountinfo_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Finds "MAJ:MIN" of the mount at @mnt in /proc/self/mountinfo (which asks nothing of the
 * FUSE daemon, so it is safe inside INIT).  Returns 0 or -ENOENT. */
static int ra_mount_dev(const char *mnt, char *dev, size_t devlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char d[32], path[4096];

		/* id parent MAJ:MIN root mountpoint ...; paths escape white space and
		 * backslashes in octal ("\040" for a space) */
		if (sscanf(line, "%*u %*u %31s %*s %4095s", d, path) != 2)
			continue;
		mountinfo_unescape(path);
		if (strcmp(path, mnt) == 0) {
			snprintf(dev, devlen, "%s", d);
			rc = 0; /* keep going: the last match is the topmost mount */
		}
	}
	free(line);
	fclose(f);
	return rc;
}

void mnt_ra_tune_kernel(const char *mnt, unsigned kb, struct fuse_conn_info *conn)
{
	char dev[32], path[96], val[24];
	unsigned cur = 0;
	int fd, n;

	if (kb == 0) {
		/* Keep the kernel's window; only cap it at what a request may carry. */
		if (conn->max_readahead > MNT_IO_MAX)
			conn->max_readahead = MNT_IO_MAX;
		return;
	}
	if (kb > MNT_IO_MAX / 1024)
		kb = MNT_IO_MAX / 1024;
	/* The kernel keeps min(its bdi's window, our answer): the bdi's window was offered
	 * in INIT (often 128 KiB) and can only be raised through sysfs, before we answer. */
	conn->max_readahead = kb * 1024u;
	if (!mnt || ra_mount_dev(mnt, dev, sizeof(dev)) < 0) {
		log_warn("read-ahead: cannot find the mount %s in /proc/self/mountinfo; the "
			 "kernel's window stays %u KiB",
			 mnt ? mnt : "?", conn->max_readahead / 1024);
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		n = (int)pread(fd, val, sizeof(val) - 1, 0);
		if (n > 0) {
			val[n] = '\0';
			cur = (unsigned)strtoul(val, NULL, 10);
		}
		n = snprintf(val, sizeof(val), "%u\n", kb);
		if (cur < kb && pwrite(fd, val, (size_t)n, 0) != n)
			cur = 0;
		else if (cur < kb)
			cur = kb;
		close(fd);
	}
	if (cur < kb)
		log_info("read-ahead: cannot raise %s to %u KiB (%s); the kernel reads ahead "
			 "less (run as root, or write it after mounting)",
			 path, kb, fd < 0 ? strerror(errno) : "write refused");
	else
		log_debug("read-ahead: kernel window %u KiB (%s)", kb, path);
}
