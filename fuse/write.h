/* write.h - private to fuse/: the writable mount (-o rw) and the compactor.
 *
 * write.c holds the handlers of every mutating request; ops.c calls them when the
 * mount is writable (fs->rw) and answers EROFS otherwise.  Written data goes
 * straight into a plain file at its final name in the store (the staging file):
 * plain files are served as they are, so other opens read it at once, and fsync
 * makes it durable.  compact.c later turns idle plain files into objects.
 */
#ifndef FAISSFS_FUSE_WRITE_H
#define FAISSFS_FUSE_WRITE_H

#include "mnt.h"
#include "control.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct mnt_node;

/* An open file: a shared object, or the fd of a plain file. */
struct mnt_fh {
	struct mnt_hlink link;	   /* first: listed in the mnt_fs while open (mnt.h) */
	struct mnt_node *node;	   /* alive while the kernel has the file open */
	struct mnt_obj *obj;	   /* reference, or NULL for a plain file */
	int fd;			   /* plain files: read with pread, else -1 */
	struct mnt_ctl_open track; /* objects: index load clocks (control.h) */
	bool writable;		   /* fd is O_RDWR and counted in the writer set */
	bool kept;		   /* holds a mnt_node_keep_fd() of node, given back at free */
	unsigned gen;		   /* read-only opens: node->gen at open; another value means
				    * the file was unpacked for a writer since: reads go to the
				    * node's current file, as on a local filesystem */
	dev_t sdev;		   /* writable: the store file's identity */
	ino_t sino;
};

/* Frees the open file @h is the link of: its object reference, its fd, itself (the
 * mnt_hlink free function of a struct mnt_fh; ops.c). */
void mnt_fh_free(struct mnt_hlink *h);

/* --- the writer set and publish gate (write.c) -------------------------------------- */

/* The store files open for writing, and the lock that orders "open for writing"
 * against the compactor's "check unchanged, then rename the object over it".
 * Thread-safe. */
struct mnt_wr;

int mnt_wr_new(struct mnt_wr **out);
void mnt_wr_free(struct mnt_wr *wr); /* NULL is fine */
void mnt_wr_lock(struct mnt_wr *wr); /* NULL is fine: no gate (offline) */
void mnt_wr_unlock(struct mnt_wr *wr);
/* True if the store file (@dev, @ino) is open for writing.  Caller holds the gate. */
bool mnt_wr_busy_locked(struct mnt_wr *wr, dev_t dev, ino_t ino);

/* --- handlers (write.c); each replies exactly once ----------------------------------- */

void mnt_w_open(fuse_req_t req, struct mnt_node *n, struct fuse_file_info *fi);
void mnt_w_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void mnt_w_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void mnt_w_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void mnt_w_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name);
void mnt_w_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void mnt_w_unlink(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir);
void mnt_w_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
void mnt_w_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi);
void mnt_w_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi);
void mnt_w_fsync(fuse_req_t req, int datasync, struct fuse_file_info *fi);
void mnt_w_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync);
void mnt_w_fallocate(fuse_req_t req, int mode, off_t offset, off_t length,
		     struct fuse_file_info *fi);

/* The release of a writable @fh (before ops.c closes it): leaves the writer set and
 * queues the file for compaction after its last close. */
void mnt_w_release(struct mnt_fs *fs, struct mnt_fh *fh);

/* --- the compactor (compact.c) ------------------------------------------------------- */

#define MNT_COMPACT_IDLE_MS 2000u /* a plain file must be unchanged this long */
#define MNT_COMPACT_SMALL   4096u /* files up to this size stay plain (one block anyway) */

struct mnt_cmp;

/* Starts @threads workers (0: one per CPU) compacting the plain files of @st that
 * are queued; @idle_ms: how long a file must be unchanged (0: no wait, offline).
 * @wr (may be NULL offline) is the publish gate.  Returns 0, -ENOMEM or -errno. */
/* The inode table of the mount, told when a file of several names becomes an object
 * (mnt_node_replaced()).  Call before mnt_cmp_scan() or any mnt_cmp_queue(). */
struct mnt_table;
void mnt_cmp_set_table(struct mnt_cmp *c, struct mnt_table *tab);

int mnt_cmp_new(struct store *st, struct mnt_wr *wr, unsigned threads, unsigned idle_ms,
		struct mnt_cmp **out);
/* Stops and joins the workers; queued work is dropped (a later mount finds it
 * again by its scan).  NULL is fine. */
void mnt_cmp_free(struct mnt_cmp *c);
/* Queues @relpath (relative to the store root), @bytes of staged data (a closed
 * file's size; 0 when unknown); a path already queued is not queued twice.  Never
 * blocks on I/O. */
void mnt_cmp_queue(struct mnt_cmp *c, const char *relpath, uint64_t bytes);

/* Staging back-pressure: sets the limit of bytes staged (closed, queued, not yet
 * compacted; 0: none).  A writer calls mnt_cmp_throttle() before each write: past
 * half the limit it is slowed (up to 20 ms per write), past the limit it waits until
 * the compactor brings the backlog under it (at most MNT_STAGE_BLOCK_S seconds, then
 * it goes on with a warning: never failed, never stuck).  NULL @c is fine. */
#define MNT_STAGE_BLOCK_S 120
void mnt_cmp_set_limit(struct mnt_cmp *c, uint64_t limit);

/* Runtime settings (faissfs set): the zstd level of the objects compaction writes
 * from now on (0: the store's default), and pausing compaction (queued files wait
 * and are retried once it is resumed).  Thread-safe. */
void mnt_cmp_set_level(struct mnt_cmp *c, int level);
void mnt_cmp_set_paused(struct mnt_cmp *c, bool paused);
void mnt_cmp_throttle(struct mnt_cmp *c);
/* Before the object @name in @dirfd (the store file of @relpath) is replaced: keeps
 * it as the hard link tmp/prev.<XXH3-64 of @relpath in 16 hex digits>, replacing an
 * older one, so that compacting the new version copies the chunks both share (a
 * restarted daemon finds it by that name).  Does nothing for a plain file or on any
 * error.  Caller holds the gate.  NULL @c is fine. */
void mnt_cmp_keep_prev(struct mnt_cmp *c, int dirfd, const char *name, const char *relpath);
/* @relpath is gone (unlinked): its kept previous version goes too.  Caller holds
 * the gate.  NULL @c is fine. */
void mnt_cmp_forget_prev(struct mnt_cmp *c, const char *relpath);

/* Queues a walk of the whole store that queues every plain file it finds. */
void mnt_cmp_scan(struct mnt_cmp *c);
/* Waits until the queue is empty and every worker idle (offline compaction). */
void mnt_cmp_drain(struct mnt_cmp *c);

struct mnt_cmp_stats {
	uint64_t compacted, failed, retried;
	uint64_t logical_bytes, stored_bytes;
	uint64_t chunks_reused, chunks_encoded; /* copied from a previous version / compressed */
	uint64_t backlog;			/* staged bytes queued now */
	uint64_t throttled;			/* writes slowed or blocked */
};
void mnt_cmp_get_stats(struct mnt_cmp *c, struct mnt_cmp_stats *out);

/* Time from a written file's last close to its compressed object being published
 * (files found by a scan are not counted); borrowed, valid until mnt_cmp_free(). */
struct metrics_hist;
const struct metrics_hist *mnt_cmp_commit_hist(struct mnt_cmp *c);

#endif
