/* preload.h - private to fuse/: access counts of index files and -o preload=N.
 *
 * The daemon counts the opens of each FAISS index file (by its path in the store),
 * keeps the counts in STORE/.faissfs/access (store_access_*: loaded at mount, saved
 * about once a minute and at unmount when they changed; never on a read-only mount,
 * where they live in memory only), and after the mount is ready warms the chunks of
 * the N most opened indices into the cache from one background thread: never past
 * half of the cache's budget, never evicting what is there, pausing while readers are
 * active.  Thread-safe: every function may be called from any thread.
 */
#ifndef FAISSFS_FUSE_PRELOAD_H
#define FAISSFS_FUSE_PRELOAD_H

#include "mnt.h"

struct mnt_node;
struct mnt_pre;

#define MNT_PRELOAD_MAX	     4096u  /* -o preload=N: N at most (STORE_ACCESS_MAX) */
#define MNT_PRE_SAVE_MS	     60000u /* counts saved this often, if changed */
#define MNT_PRE_QUIET_MS     20u    /* preloading pauses until no read came for this long */
#define MNT_PRE_BUDGET_SHARE 2u	    /* preloads up to budget / this */

/* Makes the counter of @fs (whose st, cache and ra are set; fs->rw tells whether the
 * counts may be saved) and, if @n > 0, the preloader of the @n most used indices.
 * No I/O, no thread.  Returns 0 or -ENOMEM.  Free with mnt_pre_free(). */
int mnt_pre_new(struct mnt_fs *fs, unsigned n, struct mnt_pre **out);

/* Starts the background thread (after the daemon forked): it loads the saved counts,
 * waits for mnt_pre_ready(), preloads, then saves the counts now and then.
 * Returns 0 or -errno of pthread_create. */
int mnt_pre_start(struct mnt_pre *p);

/* The mount is ready (INIT answered): preloading may begin.  NULL is fine. */
void mnt_pre_ready(struct mnt_pre *p);

/* An index file behind @n was opened: one more access.  NULL @p is fine. */
void mnt_pre_note(struct mnt_pre *p, struct mnt_node *n);

/* Stops the thread (a preload in flight ends at its next chunk), saves the counts if
 * they changed and the mount is writable, frees @p.  NULL is fine.  Before the cache,
 * the store and fs->ra go. */
void mnt_pre_free(struct mnt_pre *p);

struct mnt_pre_stats {
	uint64_t indices; /* indices preloaded (each wholly, or up to the budget) */
	uint64_t chunks;  /* chunks decompressed into the cache */
	uint64_t bytes;	  /* their bytes */
	uint64_t pauses;  /* times preloading waited for readers */
	uint64_t failed;  /* indices that could not be preloaded (gone, damaged) */
	uint64_t tracked; /* index paths with a count */
	uint64_t ms;	  /* wall time of the preload; while running: so far */
	bool running;	  /* preloading now */
	bool full;	  /* stopped at the budget */
};

/* A snapshot of the counters.  NULL @p gives zeros. */
void mnt_pre_get_stats(struct mnt_pre *p, struct mnt_pre_stats *out);

#endif
