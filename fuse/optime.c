/* optime.c - the operations the session runs: mnt_ops, each handler timed, with
 * the control directory (MOUNTPOINT/.faissfs, control.c) routed in front.
 *
 * Every low-level handler replies before it returns (none defers a reply to
 * another thread), so the time a handler runs is the time the request took in
 * the daemon.  The request is gone once replied to: the metrics are found from
 * it before the handler runs.  Requests on the control directory's reserved
 * inode numbers go to control.c and are timed too; ops.c never sees them.
 */
#include "control.h"

#include <errno.h>

static struct mnt_ctl *ctl_of(fuse_req_t req)
{
	return mnt_req_fs(req)->ctl;
}

/* Defines t_FIELD, which runs mnt_ops.FIELD and records its time under OP. */
#define TIMED(field, op, params, args)                                                             \
	static void t_##field params                                                               \
	{                                                                                          \
		struct mnt_ctl *c = ctl_of(req);                                                   \
		uint64_t t0 = mnt_now_ns();                                                        \
                                                                                                   \
		mnt_ops.field args;                                                                \
		mnt_ctl_op_done(c, op, t0);                                                        \
	}

/* The same, but a request whose @ino is the control directory's goes to @ctl. */
#define ROUTED(field, op, params, args, ino, ctl)                                                  \
	static void t_##field params                                                               \
	{                                                                                          \
		struct mnt_ctl *c = ctl_of(req);                                                   \
		uint64_t t0 = mnt_now_ns();                                                        \
                                                                                                   \
		if (mnt_ctl_ino(ino))                                                              \
			ctl;                                                                       \
		else                                                                               \
			mnt_ops.field args;                                                        \
		mnt_ctl_op_done(c, op, t0);                                                        \
	}

/* Lookups of ".faissfs" at the root and of names inside it go to control.c. */
static void t_lookup(fuse_req_t req, fuse_ino_t p, const char *name)
{
	struct mnt_ctl *c = ctl_of(req);
	uint64_t t0 = mnt_now_ns();

	if (!mnt_ctl_lookup(req, p, name))
		mnt_ops.lookup(req, p, name);
	mnt_ctl_op_done(c, MNT_OP_LOOKUP, t0);
}

TIMED(forget, MNT_OP_FORGET, (fuse_req_t req, fuse_ino_t ino, uint64_t n), (req, ino, n))
TIMED(forget_multi, MNT_OP_FORGET, (fuse_req_t req, size_t count, struct fuse_forget_data *f),
      (req, count, f))
ROUTED(getattr, MNT_OP_GETATTR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
       (req, ino, fi), ino, mnt_ctl_getattr(req, ino))
ROUTED(setattr, MNT_OP_SETATTR,
       (fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set, struct fuse_file_info *fi),
       (req, ino, a, to_set, fi), ino, mnt_ctl_setattr(req, ino, a, to_set))
ROUTED(open, MNT_OP_OPEN, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
       (req, ino, fi), ino, mnt_ctl_open(req, ino, fi))
ROUTED(read, MNT_OP_READ,
       (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
       (req, ino, size, off, fi), ino, mnt_ctl_read(req, ino, size, off, fi))
ROUTED(write, MNT_OP_WRITE,
       (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	struct fuse_file_info *fi),
       (req, ino, buf, size, off, fi), ino, mnt_ctl_write(req, ino, buf, size, off, fi))
TIMED(flush, MNT_OP_FLUSH, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
ROUTED(release, MNT_OP_RELEASE, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
       (req, ino, fi), ino, mnt_ctl_release(req, ino, fi))
TIMED(fsync, MNT_OP_FSYNC, (fuse_req_t req, fuse_ino_t ino, int ds, struct fuse_file_info *fi),
      (req, ino, ds, fi))
ROUTED(opendir, MNT_OP_OPENDIR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
       (req, ino, fi), ino, mnt_ctl_opendir(req, ino, fi))
ROUTED(readdir, MNT_OP_READDIR,
       (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
       (req, ino, size, off, fi), ino, mnt_ctl_readdir(req, ino, size, off, fi, false))
ROUTED(readdirplus, MNT_OP_READDIRPLUS,
       (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
       (req, ino, size, off, fi), ino, mnt_ctl_readdir(req, ino, size, off, fi, true))
ROUTED(releasedir, MNT_OP_RELEASEDIR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
       (req, ino, fi), ino, mnt_ctl_releasedir(req, ino, fi))
TIMED(fsyncdir, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t ino, int ds, struct fuse_file_info *fi),
      (req, ino, ds, fi))
TIMED(statfs, MNT_OP_STATFS, (fuse_req_t req, fuse_ino_t ino), (req, ino))
ROUTED(getxattr, MNT_OP_GETXATTR, (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size),
       (req, ino, name, size), ino, mnt_ctl_getxattr(req, ino, name, size))
ROUTED(listxattr, MNT_OP_LISTXATTR, (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size),
       ino, mnt_ctl_listxattr(req, ino, size))
TIMED(mknod, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t p, const char *name, mode_t m, dev_t r),
      (req, p, name, m, r))
TIMED(mkdir, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t p, const char *name, mode_t m),
      (req, p, name, m))
TIMED(unlink, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
TIMED(rmdir, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
TIMED(symlink, MNT_OP_OTHER, (fuse_req_t req, const char *link, fuse_ino_t p, const char *name),
      (req, link, p, name))
TIMED(readlink, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t ino), (req, ino))
TIMED(rename, MNT_OP_OTHER,
      (fuse_req_t req, fuse_ino_t p, const char *name, fuse_ino_t np, const char *nn,
       unsigned int flags),
      (req, p, name, np, nn, flags))
TIMED(link, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t np, const char *nn),
      (req, ino, np, nn))
TIMED(create, MNT_OP_OTHER,
      (fuse_req_t req, fuse_ino_t p, const char *name, mode_t m, struct fuse_file_info *fi),
      (req, p, name, m, fi))
TIMED(setxattr, MNT_OP_OTHER,
      (fuse_req_t req, fuse_ino_t ino, const char *name, const char *v, size_t size, int flags),
      (req, ino, name, v, size, flags))
TIMED(removexattr, MNT_OP_OTHER, (fuse_req_t req, fuse_ino_t ino, const char *name),
      (req, ino, name))
TIMED(fallocate, MNT_OP_OTHER,
      (fuse_req_t req, fuse_ino_t ino, int mode, off_t o, off_t l, struct fuse_file_info *fi),
      (req, ino, mode, o, l, fi))

/* ioctl: MNT_IOC_SET on the control files (faissfs set); ENOTTY elsewhere
 * unless mnt_ops has an ioctl handler of its own. */
static void t_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		    struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
		    size_t out_bufsz)
{
	struct mnt_ctl *c = ctl_of(req);
	uint64_t t0 = mnt_now_ns();

	if (mnt_ctl_ino(ino))
		mnt_ctl_ioctl(req, ino, cmd, in_buf, in_bufsz);
	else if (mnt_ops.ioctl)
		mnt_ops.ioctl(req, ino, cmd, arg, fi, flags, in_buf, in_bufsz, out_bufsz);
	else
		fuse_reply_err(req, ENOTTY);
	mnt_ctl_op_done(c, MNT_OP_OTHER, t0);
}

void mnt_ops_outer(struct fuse_lowlevel_ops *out)
{
	*out = mnt_ops;
	out->ioctl = t_ioctl;
#define WRAP(field)                                                                                \
	do {                                                                                       \
		if (mnt_ops.field)                                                                 \
			out->field = t_##field;                                                    \
	} while (0)
	WRAP(lookup);
	WRAP(forget);
	WRAP(forget_multi);
	WRAP(getattr);
	WRAP(setattr);
	WRAP(open);
	WRAP(read);
	WRAP(write);
	WRAP(flush);
	WRAP(release);
	WRAP(fsync);
	WRAP(opendir);
	WRAP(readdir);
	WRAP(readdirplus);
	WRAP(releasedir);
	WRAP(fsyncdir);
	WRAP(statfs);
	WRAP(getxattr);
	WRAP(listxattr);
	WRAP(mknod);
	WRAP(mkdir);
	WRAP(unlink);
	WRAP(rmdir);
	WRAP(symlink);
	WRAP(readlink);
	WRAP(rename);
	WRAP(link);
	WRAP(create);
	WRAP(setxattr);
	WRAP(removexattr);
	WRAP(fallocate);
#undef WRAP
}
