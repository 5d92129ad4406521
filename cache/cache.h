/* cache.h - a cache of decompressed chunks with a byte budget.
 *
 * Keys are opaque 192-bit values (an object identity and a chunk index); values
 * are byte buffers filled by a caller-supplied function on a miss.  Concurrent
 * misses on one key call the fill function once; the others wait for it.  An entry
 * is pinned while a caller holds it (between cache_get() and cache_put()) and is
 * never evicted or freed while pinned.  Unpinned entries are evicted, least
 * recently used first, to keep the bytes held within the budget; when every entry
 * is pinned the cache may exceed its budget until entries are put back.
 * Failed fills are not cached: every waiter gets the error and the next get retries.
 *
 * Thread-safe: every function may be called from any thread.  The fill function
 * runs without any cache lock held.  cache/ knows nothing of FUSE or of the store.
 */
#ifndef FAISSFS_CACHE_CACHE_H
#define FAISSFS_CACHE_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct cache;
struct cache_entry;

struct cache_key {
	uint64_t obj[2]; /* object identity (store_object_id()) */
	uint64_t chunk;	 /* chunk index */
};

/* Fills @dst (@len bytes) for a missing entry.  Returns 0 or -errno. */
typedef int (*cache_fill_fn)(void *arg, void *dst, size_t len);

/* Creates a cache holding at most @budget bytes of values.
 * Returns 0, -EINVAL (budget 0) or -ENOMEM.  Caller frees with cache_free(). */
int cache_new(size_t budget, struct cache **out);

/* Frees the cache; every entry must have been put back (an assert checks). */
void cache_free(struct cache *c);

/* Gets the entry for @k, filling it with @fill(@arg, buf, @len) on a miss.
 * On success *out is pinned: the caller must give it back with cache_put().
 * Errors: whatever @fill returned; -ENOMEM.  A hit with a different @len than the
 * entry's is a caller bug (assert). */
int cache_get(struct cache *c, const struct cache_key *k, size_t len, cache_fill_fn fill, void *arg,
	      struct cache_entry **out);

/* Fills the entry for @k ahead of its use, as cache_get() would, and leaves it unpinned.
 * Does nothing if @k is present or being filled (never waits for another fill).  The
 * first get of a prefetched entry counts as its first access, not as a reuse, so
 * reading ahead of a scan does not make the scan look hot to the eviction policy.
 * Returns 0 (filled), -EEXIST (present: nothing done), whatever @fill returned
 * (nothing cached), or -ENOMEM. */
int cache_prefetch(struct cache *c, const struct cache_key *k, size_t len, cache_fill_fn fill,
		   void *arg);

/* The entry's bytes; borrowed, valid until cache_put(). */
const void *cache_entry_data(const struct cache_entry *e);
size_t cache_entry_len(const struct cache_entry *e);

/* Unpins @e; the caller must not touch it afterwards. */
void cache_put(struct cache *c, struct cache_entry *e);

/* Gives @e back like cache_put() and drops it from the cache at once unless another
 * caller holds it too: for values read once, whose memory is best reused at once. */
void cache_put_drop(struct cache *c, struct cache_entry *e);

/* Changes the budget at run time; evicts down to it at once (unpinned entries). */
void cache_set_budget(struct cache *c, size_t budget);

struct cache_stats {
	uint64_t hits;	 /* gets served from a ready entry, or by waiting for a fill */
	uint64_t misses; /* gets that called fill */
	uint64_t evictions;
	uint64_t fill_errors;
	uint64_t bytes;	  /* value bytes held now */
	uint64_t entries; /* entries held now */
	uint64_t budget;
	uint64_t prefetches;	  /* entries filled by cache_prefetch() */
	uint64_t prefetch_hits;	  /* gets that found a prefetched entry not got before */
	uint64_t prefetch_unused; /* prefetched entries evicted before any get */
	uint64_t recycled;	  /* inserts that reused an evicted entry's memory */
	uint64_t dropped;	  /* entries dropped by cache_put_drop() */
};

/* A snapshot of the counters (each read atomically, not all at one instant). */
void cache_get_stats(struct cache *c, struct cache_stats *out);

/* --- a budget that follows the machine (autosize.c) ---------------------------- */

#include <stdbool.h>

#define CACHE_AUTO_MIN	    ((size_t)16 << 20) /* never shrink below 16 MiB */
#define CACHE_AUTO_MAX	    ((size_t)64 << 30) /* nor start above 64 GiB */
#define CACHE_AUTO_PSI_HIGH 10.0	       /* PSI "some avg10" (%) at or above it: shrink */
#define CACHE_AUTO_PSI_LOW  1.0		       /* below it (and MemAvailable > 10 %): grow back */

/* One sample of the memory this process may use. */
struct cache_pressure {
	uint64_t avail, total; /* MemAvailable, MemTotal, bytes (lower in a cgroup) */
	double some_avg10;     /* PSI memory "some avg10", percent; valid if have_psi */
	bool have_psi;
	uint64_t cg_limit; /* the tightest memory cgroup limit applied, bytes; 0: none */
};

/* Samples /proc/meminfo and /proc/pressure/memory, then the memory cgroups of this
 * process (autosize.c): under a limit, total and avail are those of the cgroup when
 * lower, and a v2 cgroup's memory.pressure counts when higher.  Returns 0 or -errno
 * (no /proc/meminfo); a kernel without PSI gives have_psi false, not an error. */
int cache_auto_sample(struct cache_pressure *p);

/* The same with every path under @root (tests; "" is the real filesystem). */
int cache_auto_sample_at(const char *root, struct cache_pressure *p);

/* The mount-time budget: a quarter of MemAvailable, in [CACHE_AUTO_MIN, CACHE_AUTO_MAX]. */
size_t cache_auto_budget(const struct cache_pressure *p);

/* The next budget from @cur under @p: halved (not below CACHE_AUTO_MIN) under
 * pressure (PSI >= CACHE_AUTO_PSI_HIGH or MemAvailable < 5 %), grown by @base/8
 * up to @base when calm, else unchanged.  Pure. */
size_t cache_auto_next(size_t cur, size_t base, const struct cache_pressure *p);

/* Starts a thread that samples every @period_ms (0: 1000) and sets @c's budget
 * with cache_auto_next(), @base being the ceiling.  While it runs it owns the
 * budget.  Returns 0, -ENOMEM or -errno; stop (and free) with cache_auto_stop(),
 * before cache_free(@c).  cache_auto_stop(NULL) does nothing. */
struct cache_autosize;
int cache_auto_start(struct cache *c, size_t base, unsigned period_ms, struct cache_autosize **out);
void cache_auto_stop(struct cache_autosize *a);

#endif
