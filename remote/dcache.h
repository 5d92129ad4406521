/* dcache.h - compressed chunk frames of remote objects, kept on local disk.
 *
 * A node serving a remote store keeps each frame (and trailer) it fetched under
 * its cache directory, so that a second read, or the next start of the daemon,
 * needs no request.  The cache has a byte budget (least recently used entries go
 * first) and every entry is checksummed: a damaged one is removed and reported
 * as a miss, never returned.  It survives restarts: open finds what an earlier
 * run left, in the background.  All functions are thread-safe.
 *
 * Entry layout: DIR/<2 hex digits: the low byte of XXH3(key)>/<key>, a file of
 *   [8 bytes "FFSDC1\0\0"][u64 LE payload length][u64 LE XXH3-64 of the payload]
 *   [u64 reserved, 0][payload]
 * written to a temp name and renamed into place (a torn file fails its checksum).
 * Recency is the file's mtime, set at each hit, so the order outlives a restart.
 */
#ifndef FAISSFS_REMOTE_DCACHE_H
#define FAISSFS_REMOTE_DCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct remote_dcache;

struct remote_dcache_stats {
	uint64_t hits, misses, puts, evictions, damaged;
	uint64_t bytes, files; /* what the cache holds now (once the start-up scan ended) */
};

/* Opens (creating it, mode 0700) the cache directory @dir with a budget of
 * @budget bytes; 0: no disk cache (every get misses, put stores nothing).  Lists
 * what an earlier run left on a background thread.  Errors: -ENOTDIR, -EACCES,
 * -errno, logged saying which directory and what to do.  Caller frees with
 * remote_dcache_close(). */
int remote_dcache_open(const char *dir, uint64_t budget, struct remote_dcache **out);

/* Waits for the scan thread and frees @c (NULL is fine). */
void remote_dcache_close(struct remote_dcache *c);

/* Copies entry @key ([0-9a-zA-Z._-], at most 128 characters) into @buf (@cap
 * bytes) and returns its length.  -ENOENT: a miss (a damaged entry is removed,
 * counted, logged once, and is a miss too); -ENOBUFS: larger than @cap. */
ssize_t remote_dcache_get(struct remote_dcache *c, const char *key, void *buf, size_t cap);

/* Stores @len bytes under @key, evicting the least recently used entries to stay
 * within the budget.  Best effort: returns 0 or -errno (ENOSPC...: logged at most
 * once a minute); a failure loses nothing but the entry. */
int remote_dcache_put(struct remote_dcache *c, const char *key, const void *buf, size_t len);

/* Removes entry @key (its bytes failed a check above this layer). */
void remote_dcache_drop(struct remote_dcache *c, const char *key);

void remote_dcache_stats(struct remote_dcache *c, struct remote_dcache_stats *out);

#endif
