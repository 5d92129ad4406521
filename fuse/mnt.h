/* mnt.h - private to fuse/: the daemon's shared state, options and helpers.
 *
 * mount.c parses options and runs the session; node.c is the inode table;
 * ops.c holds the low-level handlers; read.c the read path through the cache.
 * The mount is writable unless -o ro (or the store's filesystem is read-only): then
 * write.c serves the mutating requests and compact.c compresses what was written
 * (write.h); else they answer EROFS.
 */
#ifndef FAISSFS_FUSE_MNT_H
#define FAISSFS_FUSE_MNT_H

/* libfuse 3.14 (Debian 12) knows API 3.12: fuse_session_loop_mt() takes a
 * struct fuse_loop_config made with fuse_loop_cfg_create(). */
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

struct store;
struct store_object;
struct cache;
struct mnt_table;
struct mnt_ctl;
struct mnt_obj;
struct mnt_ra;
struct mnt_wr;
struct mnt_cmp;
struct mnt_pre;
struct mnt_remote;
struct store_remote;

/* --- options (mount.c) ---------------------------------------------------------- */

#define MNT_CACHE_DEFAULT     (256ull << 20)
#define MNT_THREADS_DEFAULT   8u
#define MNT_IO_MAX	      (1u << 20) /* max_read, max_write, max_readahead */
#define MNT_TIMEOUT	      3600.0	 /* entry and attr timeouts, seconds */
#define MNT_READAHEAD_DEFAULT 16u	 /* chunks decompressed ahead of a sequential reader */
#define MNT_KERNEL_RA_DEFAULT 1024u	 /* KiB: the kernel's read-ahead window on the mount */

/* -o stage_max: bytes of closed files waiting for compaction before writers wait. */
#define MNT_STAGE_MAX_DEFAULT (1ull << 30)

struct mnt_opts {
	char *store;	  /* positional 1 (owned) */
	char *mountpoint; /* positional 2 (owned) */
	int foreground;
	int debug;
	int help;
	int allow_other;
	int ready_fd;	       /* -1: none */
	unsigned threads;      /* max worker threads */
	unsigned readahead;    /* chunks read ahead; 0: off */
	unsigned workers;      /* read-ahead decompression threads; 0: number of CPUs */
	unsigned kernel_ra_kb; /* kernel read-ahead window to ask for; 0: the kernel's */
	unsigned long long cache_size;
	int cache_auto; /* -o cache_size=auto: cache_size from MemAvailable, then follows it */
	enum log_level log_level;
	char *metrics;		     /* owned, NULL or -o metrics=ADDR:PORT (HTTP endpoint) */
	int metrics_allow_remote;    /* -o metrics_allow_remote: a non-loopback ADDR is fine */
	unsigned metrics_max_series; /* -o metrics_max_series=N: label sets per metric; 0: no cap */
	char *fsname;		     /* owned, NULL: "faissfs:STORE" */
	char *subtype;		     /* owned, NULL: "faissfs" */
	char *kernel_opts;	     /* owned, NULL or generic mount flags: "noexec,noatime" */
	char *log_file;		     /* owned, NULL or -o log_file=PATH */

	int rw;			      /* -o rw (the default) or -o ro: writable mount (write.h) */
	int compact;		      /* -o compact=on|off: background compaction (rw only) */
	int drop_behind;	      /* -o drop_behind=on|off: see mnt_read_object() */
	unsigned long long stage_max; /* -o stage_max=SIZE: staged bytes before writers wait */
	unsigned preload;	      /* -o preload=N: warm the N most used indices; 0: off */

	/* A remote store (STORE is s3://BUCKET[/PREFIX]): always read-only. */
	char *endpoint;			    /* owned, -o endpoint=URL */
	char *cred_file;		    /* owned, -o cred_file=PATH */
	char *cache_dir;		    /* owned, -o cache_dir=PATH */
	unsigned long long disk_cache_size; /* -o disk_cache_size=SIZE */
	unsigned poll_interval;		    /* -o poll_interval=SECONDS; 0: never */
	unsigned s3_inflight;		    /* -o s3_inflight=N */
};

#define MNT_MAX_SERIES_DEFAULT 2000u
#define MNT_DISK_CACHE_DEFAULT (4ull << 30)
#define MNT_POLL_DEFAULT       30u
#define MNT_REMOTE_WORKERS     16u /* read-ahead workers of a remote store (= s3_inflight) */

/* True if @store names a remote store ("s3://..."). */
static inline bool mnt_store_is_remote(const char *store)
{
	return store && !strncmp(store, "s3://", 5);
}

/* Parses "4096", "64K", "256M", "1G" (binary multiples; optional "B"/"iB").
 * Returns 0 or -EINVAL (empty, negative, junk, overflow). */
int mnt_parse_size(const char *s, unsigned long long *out);

/* Parses the mount command line (argv[0] is "mount") into @o.
 * Returns 0; or -EINVAL on a usage error, with a message on stderr already
 * ("faissfs mount: unknown option 'x' (see faissfs mount --help)").  With
 * o->help set the positional arguments are not required.  On failure @o may hold
 * partial values: free it with mnt_opts_release() either way. */
int mnt_opts_parse(int argc, char *argv[], struct mnt_opts *o);
void mnt_opts_release(struct mnt_opts *o);

/* --- the filesystem (userdata of the session) ---------------------------------- */

/* An open file or directory the kernel has not released yet (the first member of
 * struct mnt_fh, of ops.c's directory handle and of control.c's file handle), listed
 * in its mnt_fs so that what the kernel still holds when the daemon stops is freed
 * (ops.c). */
struct mnt_hlink {
	struct mnt_hlink *prev, *next;	   /* protected by mnt_fs.hlock */
	void (*free)(struct mnt_hlink *h); /* frees the handle h is the first member of */
};

struct mnt_fs {
	struct store *st;	/* immutable after mount */
	struct cache *cache;	/* immutable after mount; thread-safe itself */
	struct mnt_table *tab;	/* immutable after mount; see node.c for its locks */
	int ready_fd;		/* written and closed once by mnt_op_init() (one thread) */
	pthread_key_t dctx_key; /* per-thread struct store_dctx, see read.c */
	struct mnt_ctl *ctl;	/* immutable after mount: metrics and settings (control.h) */
	struct mnt_ra *ra;	/* immutable after mount; thread-safe itself */
	const char *mountpoint; /* immutable: absolute, for the kernel read-ahead window */
	unsigned kernel_ra_kb;	/* immutable: mnt_opts.kernel_ra_kb */
	bool drop_behind;	/* immutable: mnt_opts.drop_behind */
	bool rw;		/* immutable: -o rw, mutating requests served (write.h) */
	struct mnt_wr *wr;	/* immutable after mount (rw only); thread-safe itself */
	struct mnt_cmp *cmp;	/* immutable after mount; NULL: no compaction */
	struct mnt_pre *pre;	/* immutable after mount; access counts, -o preload (preload.h) */
	struct store_remote *remote; /* immutable after mount; NULL: a local store */
	struct mnt_remote *poller;   /* immutable after mount; NULL: no polling */
	pthread_mutex_t hlock;	     /* leaf: protects handles */
	struct mnt_hlink *handles;   /* protected by hlock: open handles, see mnt_handle_add() */
};

/* Lists the handle @h (before the reply that gives it to the kernel), to be freed
 * by @free if the session ends first / unlists it (before it is freed).
 * Thread-safe; mnt_handle_del() of an unlisted @h is fine. */
void mnt_handle_add(struct mnt_fs *fs, struct mnt_hlink *h, void (*free)(struct mnt_hlink *h));
void mnt_handle_del(struct mnt_fs *fs, struct mnt_hlink *h);
/* Frees every handle still listed: those the kernel held when the session ended.
 * Call after fuse_session_destroy() and before mnt_table_free(). */
void mnt_handles_free(struct mnt_fs *fs);

/* Low-level operations table (ops.c). */
extern const struct fuse_lowlevel_ops mnt_ops;
/* Copies mnt_ops into @out, each known handler timed into the latency histograms
 * and the control directory MOUNTPOINT/.faissfs routed to control.c (optime.c);
 * handlers it does not know pass through.  The session runs this table. */
void mnt_ops_outer(struct fuse_lowlevel_ops *out);

/* Replies @neg (a -errno) to the kernel, mapping our data errors to what
 * applications expect (see ops.c).  The one place where the sign flips. */
void mnt_reply_err(fuse_req_t req, int neg);

/* The filesystem a request is for (the session's userdata). */
static inline struct mnt_fs *mnt_req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The node of @ino; NULL (after replying ESTALE) if it is not known (ops.c). */
struct mnt_node *mnt_req_node(fuse_req_t req, fuse_ino_t ino);

/* --- remote stores (remote.c) ------------------------------------------------------ */

/* Starts the thread that checks the bucket for a new version every @interval
 * seconds (0: sets *out to NULL and starts nothing) and invalidates what changed
 * in the kernel's caches.  Returns 0 or -errno of pthread_create(). */
int mnt_remote_start(struct mnt_fs *fs, struct fuse_session *se, struct store_remote *r,
		     unsigned interval, struct mnt_remote **out);
/* Stops and joins it (NULL is fine); before the session is destroyed. */
void mnt_remote_stop(struct mnt_remote *p);

/* --- read path (read.c) ----------------------------------------------------------- */

/* Sets up / tears down the per-thread decompression contexts of @fs. */
int mnt_read_init(struct mnt_fs *fs);
void mnt_read_release(struct mnt_fs *fs);

/* Replies to a read of [@off, @off+@size) of @ob through the cache: one
 * fuse_reply_iov() of pinned cache entries, or an error.  Replies exactly once.
 * Notes the read for read-ahead (fs->ra). */
void mnt_read_object(struct mnt_fs *fs, fuse_req_t req, struct mnt_obj *ob, size_t size, off_t off);

/* --- read-ahead (readahead.c) ------------------------------------------------------ */

/* Starts @workers threads (each with its own decompression context) that decompress
 * chunks ahead of sequential readers into @cache, @depth chunks ahead (0: read-ahead off,
 * no threads; never more than a quarter of the cache's budget per reader).  Returns 0, -ENOMEM or
 * -errno of pthread_create.  Free with mnt_ra_free(), before the objects' table and the cache go
 * (it joins the workers). */
int mnt_ra_new(struct cache *cache, unsigned workers, unsigned depth, struct mnt_ra **out);
void mnt_ra_free(struct mnt_ra *ra); /* NULL is fine */

#define MNT_RA_MAX_DEPTH 1024

/* Changes the read-ahead depth at run time (0 turns it off).  Returns 0, or -EINVAL
 * for more than MNT_RA_MAX_DEPTH, or for depth > 0 when there are no workers. */
int mnt_ra_set_depth(struct mnt_ra *ra, unsigned depth);
unsigned mnt_ra_depth(struct mnt_ra *ra);

/* Notes a read of [@off, @off+@len) of @ob (inside the object).  If it continues a
 * sequential stream, queues the chunks ahead of it (each job holds a reference on @ob)
 * and returns true; false for a read that starts or restarts a stream, or with
 * read-ahead off.  Never blocks on a decompression.  Thread-safe. */
bool mnt_ra_note(struct mnt_ra *ra, struct mnt_obj *ob, uint64_t off, uint64_t len);

struct mnt_ra_stats {
	uint64_t reads;	     /* object read requests served */
	uint64_t read_bytes; /* bytes they asked for */
	uint64_t triggers;   /* reads that queued read-ahead */
	uint64_t queued;     /* chunks queued */
	uint64_t dropped;    /* chunks not queued: queue full */
	uint64_t done;	     /* chunks decompressed ahead */
	uint64_t failed;     /* read-ahead fills that failed (not cached) */
};

/* A snapshot of the counters (each read atomically). */
void mnt_ra_get_stats(struct mnt_ra *ra, struct mnt_ra_stats *out);

/* In INIT: asks the kernel for a read-ahead window of @kb KiB on the mount at @mnt
 * (capped at MNT_IO_MAX; 0 keeps the kernel's offer).  The kernel keeps the smaller of
 * our answer and its bdi's read_ahead_kb, so this raises the latter in sysfs first
 * (root only; otherwise logged, and the kernel's window stays). */
void mnt_ra_tune_kernel(const char *mnt, unsigned kb, struct fuse_conn_info *conn);

#endif
