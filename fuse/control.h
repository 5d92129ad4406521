/* control.h - private to fuse/: metrics and the control directory MOUNT/.faissfs/.
 *
 * struct mnt_ctl holds the daemon's metrics (lock-free counters and histograms,
 * util/metrics.h) and its runtime settings.  The control directory is virtual:
 * its inode numbers are reserved (MNT_CTL_INO_FIRST and up, far above what the
 * inode table hands out), it is reachable by name at the root but not listed in
 * readdir of the root, and its files are generated at open (direct I/O, size 0,
 * like /proc).  Settings are writable by the mount's owner (and root) only; a
 * write takes effect at once; a bad value is EINVAL and a log line.
 * Thread-safe: every function may be called from any worker thread.
 */
#ifndef FAISSFS_FUSE_CONTROL_H
#define FAISSFS_FUSE_CONTROL_H

#include "mnt.h"

#include <stdatomic.h>

#include "util/metrics.h"

struct mnt_node;
struct store_object;
struct store_object_info;

#define MNT_CTL_NAME	  ".faissfs"
#define MNT_CTL_INO_FIRST (UINT64_C(1) << 62) /* the directory; its files follow */

/* The FUSE operations whose latency is measured (optime.c). */
enum mnt_op {
	MNT_OP_LOOKUP,
	MNT_OP_FORGET,
	MNT_OP_GETATTR,
	MNT_OP_SETATTR,
	MNT_OP_OPEN,
	MNT_OP_READ,
	MNT_OP_WRITE,
	MNT_OP_FLUSH,
	MNT_OP_RELEASE,
	MNT_OP_FSYNC,
	MNT_OP_OPENDIR,
	MNT_OP_READDIR,
	MNT_OP_READDIRPLUS,
	MNT_OP_RELEASEDIR,
	MNT_OP_STATFS,
	MNT_OP_GETXATTR,
	MNT_OP_LISTXATTR,
	MNT_OP_OTHER, /* everything that only answers EROFS */
	MNT_OP_COUNT,
};

/* Per open file of an object: what the index load histograms need.  Embedded
 * in the open file; set up by mnt_ctl_open_begin(). */
struct mnt_ctl_open {
	struct mnt_ctl *ctl; /* borrowed; NULL: not tracked */
	uint64_t t_open; /* CLOCK_MONOTONIC ns at open */
	uint64_t size;	 /* logical size */
	_Atomic uint64_t served;
	_Atomic bool first_done;
	struct metrics_hist *first_read; /* NULL: not a FAISS index, not tracked */
	struct metrics_hist *load;
};

/* One index of the store: what the size gauges show. */
struct mnt_usage_row {
	char *tenant;
	char *index;
	uint64_t files, logical, stored;
};

struct mnt_usage {
	size_t n, cap;
	struct mnt_usage_row *rows;
};

/* The daemon's metrics and settings (observe.c, control.c). */
struct mnt_ctl {
	struct mnt_fs *fs; /* borrowed; immutable */
	char *mountpoint;  /* owned; immutable */
	char *store;	   /* owned; immutable: the store's absolute path */
	uid_t owner;	   /* the daemon's uid: may change settings */
	gid_t group;
	struct timespec started; /* CLOCK_REALTIME at mount */

	/* Settings: atomics, written by control.c. */
	_Atomic int level;
	_Atomic bool compaction;

	/* Metrics: lock-free. */
	struct metrics_hist op[MNT_OP_COUNT];
	struct metrics_hist chunk_fill;
	struct metrics_family first_read; /* key: tenant; labels: tenant, type */
	struct metrics_family load;
	unsigned max_series; /* immutable: -o metrics_max_series */
	struct metrics_counter logical_read, physical_read, checksum_errors, io_errors;

	pthread_mutex_t usage_lock;
	struct mnt_usage usage; /* protected by usage_lock */
	uint64_t usage_at;	/* protected by usage_lock; mnt_now_ns() of the walk, 0: none */
	_Atomic bool usage_stale; /* a name went away through the mount: walk again */
};

/* Makes the metrics and settings of @fs (whose st and cache must be set):
 * settings start from @o.  Returns 0 or -ENOMEM.  Free with mnt_ctl_free(). */
int mnt_ctl_new(struct mnt_fs *fs, const struct mnt_opts *o, const char *mountpoint,
		struct mnt_ctl **out);
void mnt_ctl_free(struct mnt_ctl *c); /* NULL is fine */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t mnt_now_ns(void);

/* --- hooks on the request paths (all lock-free) ------------------------------------ */

/* A request of kind @op that started at @t0 has been handled. */
void mnt_ctl_op_done(struct mnt_ctl *c, enum mnt_op op, uint64_t t0);

/* A cache fill of chunk @idx of @so, started at @t0, returned @rc. */
void mnt_ctl_chunk_filled(struct mnt_ctl *c, const struct store_object *so, uint64_t idx,
			  uint64_t t0, int rc);

/* A request is answered with error @neg (-errno): counts checksum and I/O errors. */
void mnt_ctl_error(struct mnt_ctl *c, int neg);

/* An object @info behind node @n is opened: starts the open-to-first-read and
 * load clocks if it is a FAISS index (labels: tenant, FAISS type). */
void mnt_ctl_open_begin(struct mnt_ctl *c, struct mnt_ctl_open *op, const struct mnt_node *n,
			const struct store_object_info *info);

/* A read on that open file is about to be answered with @bytes bytes (called
 * before the reply, so the load time stops at the arrival of the last read). */
void mnt_ctl_open_read(struct mnt_ctl *c, struct mnt_ctl_open *op, uint64_t bytes);

/* The open file is released: its histograms may be dropped once their tenant
 * is gone.  Safe on an untracked or zeroed @op. */
void mnt_ctl_open_end(struct mnt_ctl_open *op);

/* A file or directory was removed or renamed through the mount: the next
 * scrape walks the store again (and drops the series of a tenant gone). */
void mnt_ctl_tree_changed(struct mnt_ctl *c);

/* --- the control directory (each replies exactly once) ---------------------------- */

static inline bool mnt_ctl_ino(fuse_ino_t ino)
{
	return ino >= MNT_CTL_INO_FIRST && ino < MNT_CTL_INO_FIRST + 64;
}

/* Answers a lookup of @name in @parent if it is about the control directory
 * (".faissfs" at the root, or anything inside it).  Returns true if it replied. */
bool mnt_ctl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);

void mnt_ctl_getattr(fuse_req_t req, fuse_ino_t ino);
void mnt_ctl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set);
void mnt_ctl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mnt_ctl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void mnt_ctl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi);
void mnt_ctl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mnt_ctl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mnt_ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi, bool plus);
void mnt_ctl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* MNT_IOC_SET on a setting file (see mount.h): replies 0, EINVAL, EACCES or EPERM. */
void mnt_ctl_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, const void *in_buf,
		   size_t in_bufsz);
/* No xattrs on control files: ENODATA, an empty list. */
void mnt_ctl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void mnt_ctl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

/* --- rendering (also for the HTTP endpoint) ----------------------------------------- */

/* Appends the Prometheus text exposition of every metric to @b. */
void mnt_ctl_render_metrics(struct mnt_ctl *c, struct metrics_buf *b);

/* Appends the human-readable summary (stats) or its JSON (stats.json) to @b. */
void mnt_ctl_render_stats(struct mnt_ctl *c, struct metrics_buf *b, bool json);

/* --- HTTP endpoint (http.c) ---------------------------------------------------------- */

struct mnt_http;

/* Checks -o metrics=ADDR:PORT: a numeric IPv4 address, [IPv6] or "localhost",
 * and a port 1..65535; a non-loopback address only with @allow_remote.
 * Returns 0, or -EINVAL with the reason on stderr. */
int mnt_http_check(const char *spec, bool allow_remote);

/* Binds and listens on @spec (checked) before the daemon forks, so a busy port
 * fails the mount.  Returns a listening fd or -errno (message on stderr). */
int mnt_http_listen(const char *spec);

/* Serves GET /metrics on @fd (taken over) from its own thread.  Call after the
 * daemon forked.  Returns 0 or -errno; stop and free with mnt_http_stop(). */
int mnt_http_start(struct mnt_ctl *c, int fd, struct mnt_http **out);
void mnt_http_stop(struct mnt_http *h); /* NULL is fine */

#endif
