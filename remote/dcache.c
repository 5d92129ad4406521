/* dcache.c - the disk cache of frames (dcache.h).
 *
 * Locks: c->lock (a leaf) protects the index (a hash table key -> size, last use)
 * and the byte count.  No file is opened, read, written or removed while it is
 * held: eviction picks its victims under the lock, takes them out of the index,
 * and unlinks them after.  A get reads the file without the lock (the index is
 * only for the budget), so a hit never waits for a put.  Two puts of one key
 * both rename into place; the index counts it once.
 */
#include "dcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/log.h"

#define DC_MAGIC     "FFSDC1\0\0"
#define DC_HDR	     32u
#define DC_KEY_MAX   128u
#define DC_BUCKETS   4096u
#define DC_LOW_WATER 0.9 /* eviction goes down to this share of the budget */

struct dc_entry {
	struct dc_entry *next;
	uint64_t size;	   /* bytes on disk, header included */
	int64_t last_use;  /* ns since the epoch (the file's mtime after a restart) */
	char key[];
};

struct remote_dcache {
	char *dir;
	int dirfd;
	uint64_t budget;
	pthread_t scan;
	bool scanning; /* a scan thread was started (joined at close) */
	atomic_bool stop;

	pthread_mutex_t lock;		     /* leaf */
	struct dc_entry *table[DC_BUCKETS]; /* protected by lock */
	uint64_t bytes, files;		     /* protected by lock */

	atomic_uint_fast64_t hits, misses, puts, evictions, damaged;
	atomic_int_fast64_t last_warn; /* s, of the last put failure logged */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool key_ok(const char *key)
{
	size_t n = strlen(key);

	return n && n <= DC_KEY_MAX && key[0] != '.' &&
	       strspn(key, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-") == n;
}

static unsigned bucket_of(const char *key)
{
	return (unsigned)(XXH3_64bits(key, strlen(key)) % DC_BUCKETS);
}

/* "ab/KEY" for @key into @buf. */
static void rel_path(const char *key, char *buf, size_t size)
{
	snprintf(buf, size, "%02x/%s", (unsigned)(XXH3_64bits(key, strlen(key)) & 0xff), key);
}

/* --- the index (c->lock held) ------------------------------------------------------ */

static struct dc_entry **slot_of(struct remote_dcache *c, const char *key)
{
	struct dc_entry **p = &c->table[bucket_of(key)];

	while (*p && strcmp((*p)->key, key))
		p = &(*p)->next;
	return p;
}

/* Adds or updates @key; returns false on allocation failure. */
static bool index_set(struct remote_dcache *c, const char *key, uint64_t size, int64_t last_use)
{
	struct dc_entry **p = slot_of(c, key), *e = *p;

	if (e) {
		c->bytes = c->bytes - e->size + size;
		e->size = size;
		if (last_use > e->last_use)
			e->last_use = last_use;
		return true;
	}
	e = malloc(sizeof(*e) + strlen(key) + 1);
	if (!e)
		return false;
	e->next = NULL;
	e->size = size;
	e->last_use = last_use;
	strcpy(e->key, key);
	*p = e;
	c->bytes += size;
	c->files++;
	return true;
}

static void index_del(struct remote_dcache *c, const char *key)
{
	struct dc_entry **p = slot_of(c, key), *e = *p;

	if (!e)
		return;
	*p = e->next;
	c->bytes -= e->size;
	c->files--;
	free(e);
}

static int cmp_use(const void *a, const void *b)
{
	const struct dc_entry *x = *(struct dc_entry *const *)a, *y = *(struct dc_entry *const *)b;

	return (x->last_use > y->last_use) - (x->last_use < y->last_use);
}

/* Takes the oldest entries out of the index until the cache is below the low
 * water mark; returns them (caller unlinks and frees), *n set. */
static struct dc_entry **pick_victims(struct remote_dcache *c, size_t *n)
{
	struct dc_entry **all, **out;
	uint64_t target = (uint64_t)((double)c->budget * DC_LOW_WATER);
	size_t k = 0, m = 0;

	*n = 0;
	if (c->bytes <= c->budget)
		return NULL;
	all = malloc(c->files * sizeof(*all));
	if (!all)
		return NULL;
	for (unsigned b = 0; b < DC_BUCKETS; b++)
		for (struct dc_entry *e = c->table[b]; e; e = e->next)
			all[k++] = e;
	qsort(all, k, sizeof(*all), cmp_use);
	out = all;
	for (size_t i = 0; i < k && c->bytes > target; i++) {
		struct dc_entry **p = slot_of(c, all[i]->key);

		*p = all[i]->next;
		c->bytes -= all[i]->size;
		c->files--;
		out[m++] = all[i];
	}
	*n = m;
	return out;
}

static void evict(struct remote_dcache *c)
{
	struct dc_entry **v;
	char rel[DC_KEY_MAX + 8];
	size_t n;

	pthread_mutex_lock(&c->lock);
	v = pick_victims(c, &n);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		rel_path(v[i]->key, rel, sizeof(rel));
		unlinkat(c->dirfd, rel, 0);
		free(v[i]);
	}
	atomic_fetch_add(&c->evictions, n);
	free(v);
}

/* --- the start-up scan --------------------------------------------------------------- */

static void *scan_main(void *arg)
{
	struct remote_dcache *c = arg;
	char sub[4];

	for (unsigned b = 0; b < 256 && !atomic_load(&c->stop); b++) {
		struct dirent *de;
		DIR *d;
		int fd;

		snprintf(sub, sizeof(sub), "%02x", b);
		fd = openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			continue;
		}
		while ((de = readdir(d))) {
			struct stat st;

			if (de->d_name[0] == '.') {
				/* A temp file left by a crash: only an old one, never the one
				 * a put of this run is writing now. */
				if (de->d_name[1] && strcmp(de->d_name, "..") &&
				    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    st.st_mtime < time(NULL) - 60)
					unlinkat(fd, de->d_name, 0);
				continue;
			}
			if (!key_ok(de->d_name) ||
			    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
				continue;
			pthread_mutex_lock(&c->lock);
			index_set(c, de->d_name, (uint64_t)st.st_size,
				  (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
			pthread_mutex_unlock(&c->lock);
		}
		closedir(d);
	}
	evict(c); /* a smaller budget than last time */
	return NULL;
}

/* --- the API ------------------------------------------------------------------------- */

int remote_dcache_open(const char *dir, uint64_t budget, struct remote_dcache **out)
{
	struct remote_dcache *c;
	char sub[4];
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->dirfd = -1;
	c->budget = budget;
	pthread_mutex_init(&c->lock, NULL);
	c->dir = strdup(dir);
	if (!c->dir) {
		ret = -ENOMEM;
		goto fail;
	}
	if (budget == 0)
		goto done;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		ret = -errno;
		log_error("cannot create the disk cache directory %s: %s - give -o cache_dir on a "
			  "writable local filesystem, or -o disk_cache_size=0",
			  dir, strerror(errno));
		goto fail;
	}
	c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->dirfd < 0) {
		ret = -errno;
		log_error("cannot open the disk cache directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	for (unsigned b = 0; b < 256; b++) {
		snprintf(sub, sizeof(sub), "%02x", b);
		if (mkdirat(c->dirfd, sub, 0700) && errno != EEXIST) {
			ret = -errno;
			log_error("cannot write in the disk cache directory %s: %s - give -o "
				  "cache_dir on a writable local filesystem, or -o disk_cache_size=0",
				  dir, strerror(errno));
			goto fail;
		}
	}
	ret = pthread_create(&c->scan, NULL, scan_main, c);
	if (ret) {
		ret = -ret;
		goto fail;
	}
	c->scanning = true;
done:
	*out = c;
	return 0;
fail:
	remote_dcache_close(c);
	return ret;
}

void remote_dcache_close(struct remote_dcache *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	if (c->scanning)
		pthread_join(c->scan, NULL);
	for (unsigned b = 0; b < DC_BUCKETS; b++) {
		struct dc_entry *e = c->table[b], *n;

		for (; e; e = n) {
			n = e->next;
			free(e);
		}
	}
	if (c->dirfd >= 0)
		close(c->dirfd);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
}

static void drop(struct remote_dcache *c, const char *key)
{
	char rel[DC_KEY_MAX + 8];

	rel_path(key, rel, sizeof(rel));
	unlinkat(c->dirfd, rel, 0);
	pthread_mutex_lock(&c->lock);
	index_del(c, key);
	pthread_mutex_unlock(&c->lock);
}

ssize_t remote_dcache_get(struct remote_dcache *c, const char *key, void *buf, size_t cap)
{
	uint8_t hdr[DC_HDR];
	char rel[DC_KEY_MAX + 8];
	const char *bad = NULL;
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_NOW}};
	uint64_t len, sum;
	ssize_t n;
	int fd;

	if (c->dirfd < 0 || !key_ok(key)) {
		atomic_fetch_add(&c->misses, 1);
		return -ENOENT;
	}
	rel_path(key, rel, sizeof(rel));
	fd = openat(c->dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		atomic_fetch_add(&c->misses, 1);
		return -ENOENT;
	}
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, DC_MAGIC, 8)) {
		bad = "bad header";
		goto damaged;
	}
	memcpy(&len, hdr + 8, 8); /* little-endian hosts only: the cache is local */
	memcpy(&sum, hdr + 16, 8);
	if (len > cap) {
		close(fd);
		return -ENOBUFS;
	}
	n = pread(fd, buf, len, DC_HDR);
	if (n != (ssize_t)len) {
		bad = "truncated";
		goto damaged;
	}
	if (XXH3_64bits(buf, len) != sum) {
		bad = "checksum mismatch";
		goto damaged;
	}
	futimens(fd, ts); /* recency that outlives a restart */
	close(fd);
	pthread_mutex_lock(&c->lock);
	index_set(c, key, len + DC_HDR, now_ns());
	pthread_mutex_unlock(&c->lock);
	atomic_fetch_add(&c->hits, 1);
	return (ssize_t)len;

damaged:
	close(fd);
	if (atomic_fetch_add(&c->damaged, 1) < 10)
		log_warn("disk cache %s/%s: %s - removed, fetching it again", c->dir, rel, bad);
	drop(c, key);
	atomic_fetch_add(&c->misses, 1);
	return -ENOENT;
}

int remote_dcache_put(struct remote_dcache *c, const char *key, const void *buf, size_t len)
{
	uint8_t hdr[DC_HDR] = {0};
	char rel[DC_KEY_MAX + 8], tmp[DC_KEY_MAX + 40];
	uint64_t l = len, sum = XXH3_64bits(buf, len);
	static atomic_uint seq;
	int fd, ret = 0;
	int64_t now;

	if (c->dirfd < 0 || !key_ok(key))
		return 0;
	if (len + DC_HDR > c->budget)
		return 0; /* would evict everything */
	memcpy(hdr, DC_MAGIC, 8);
	memcpy(hdr + 8, &l, 8);
	memcpy(hdr + 16, &sum, 8);
	rel_path(key, rel, sizeof(rel));
	snprintf(tmp, sizeof(tmp), "%.2s/.%s.%d.%u", rel, key, (int)getpid(),
		 atomic_fetch_add(&seq, 1));
	fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    pwrite(fd, buf, len, DC_HDR) != (ssize_t)len)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (!ret && renameat(c->dirfd, tmp, c->dirfd, rel))
		ret = -errno;
	if (ret)
		unlinkat(c->dirfd, tmp, 0);
out:
	if (ret) {
		now = (int64_t)time(NULL);
		if (now - atomic_load(&c->last_warn) >= 60) {
			atomic_store(&c->last_warn, now);
			log_warn("disk cache %s: cannot store a frame: %s - reads go on from the "
				 "bucket",
				 c->dir, strerror(-ret));
		}
		return ret;
	}
	atomic_fetch_add(&c->puts, 1);
	pthread_mutex_lock(&c->lock);
	index_set(c, key, len + DC_HDR, now_ns());
	pthread_mutex_unlock(&c->lock);
	evict(c);
	return 0;
}

void remote_dcache_drop(struct remote_dcache *c, const char *key)
{
	if (c->dirfd >= 0 && key_ok(key))
		drop(c, key);
}

void remote_dcache_stats(struct remote_dcache *c, struct remote_dcache_stats *out)
{
	out->hits = atomic_load(&c->hits);
	out->misses = atomic_load(&c->misses);
	out->puts = atomic_load(&c->puts);
	out->evictions = atomic_load(&c->evictions);
	out->damaged = atomic_load(&c->damaged);
	pthread_mutex_lock(&c->lock);
	out->bytes = c->bytes;
	out->files = c->files;
	pthread_mutex_unlock(&c->lock);
}
