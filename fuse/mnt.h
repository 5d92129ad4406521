/* mnt.h - private to fuse/: the daemon's shared state, options and helpers.
 *
 * mount.c parses options and runs the session; node.c is the inode table;
 * ops.c holds the low-level handlers; read.c the read path through the cache.
 * The mount is read-only in format v1: every mutating request answers EROFS.
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
#include <sys/stat.h>

#include "util/log.h"

struct store;
struct store_object;
struct cache;
struct mnt_table;

/* --- options (mount.c) ---------------------------------------------------------- */

#define MNT_CACHE_DEFAULT   (256ull << 20)
#define MNT_THREADS_DEFAULT 8u
#define MNT_IO_MAX	    (1u << 20) /* max_read, max_write, max_readahead */
#define MNT_TIMEOUT	    3600.0     /* entry and attr timeouts, seconds */

struct mnt_opts {
	char *store;	  /* positional 1 (owned) */
	char *mountpoint; /* positional 2 (owned) */
	int foreground;
	int debug;
	int help;
	int allow_other;
	int ready_fd;	  /* -1: none */
	unsigned threads; /* max worker threads */
	unsigned long long cache_size;
	enum log_level log_level;
	char *fsname;	   /* owned, NULL: "faissfs:STORE" */
	char *subtype;	   /* owned, NULL: "faissfs" */
	char *kernel_opts; /* owned, NULL or generic mount flags: "noexec,noatime" */
};

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

struct mnt_fs {
	struct store *st;	/* immutable after mount */
	struct cache *cache;	/* immutable after mount; thread-safe itself */
	struct mnt_table *tab;	/* immutable after mount; see node.c for its locks */
	int ready_fd;		/* written and closed once by mnt_op_init() (one thread) */
	pthread_key_t dctx_key; /* per-thread struct store_dctx, see read.c */
};

/* Low-level operations table (ops.c). */
extern const struct fuse_lowlevel_ops mnt_ops;

/* Replies @neg (a -errno) to the kernel, mapping our data errors to what
 * applications expect (see ops.c).  The one place where the sign flips. */
void mnt_reply_err(fuse_req_t req, int neg);

/* --- read path (read.c) ----------------------------------------------------------- */

/* Sets up / tears down the per-thread decompression contexts of @fs. */
int mnt_read_init(struct mnt_fs *fs);
void mnt_read_release(struct mnt_fs *fs);

/* Replies to a read of [@off, @off+@size) of @so through the cache: one
 * fuse_reply_iov() of pinned cache entries, or an error.  Replies exactly once. */
void mnt_read_object(struct mnt_fs *fs, fuse_req_t req, const struct store_object *so, size_t size,
		     off_t off);

#endif
