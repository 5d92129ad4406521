/* write.c - the mutating requests of a writable mount (-o rw); see write.h.
 *
 * Staging: a file written through the mount is a plain file at its final name in
 * the store, written with pwrite() as the requests come.  Plain files are served
 * as they are (ops.c), so every open sees what was written; fsync() of the file
 * is fsync() of the plain file.  Opening an object for writing first unpacks it:
 * its bytes are copied to a plain file .faissfs/tmp/unpack.<pid>.<n> and fsynced
 * (an O_TRUNC open skips the copy), then, under the gate, renamed over the object
 * if the name still holds that very object (same inode, size, mtime, ctime; else
 * the copy is dropped and the open looks again, up to UNPACK_TRIES times: EAGAIN).
 * So a crash leaves the old bytes or the new ones, never a mix; two opens racing
 * end on one plain file; readers that had the object open keep it (they hold its
 * fd).  compact.c compresses plain files once they are idle, and removes the
 * unpack files a crash left at the next mount.
 *
 * The gate (struct mnt_wr) is one mutex.  It is held while a store file is opened
 * for writing (and counted in the writer set), while a name is unlinked or renamed,
 * and while the compactor checks that a file is unchanged and renames its object
 * over it; never while an object is copied.  So the compactor never replaces a
 * file that is open for writing, or that was written, renamed or removed after its
 * check.
 *
 * Symlinks, FIFOs, sockets and device nodes are made in the store as they are
 * (the store holds them natively, FORMAT.md); the daemon never follows a symlink
 * of the store.  Hard links are hard links in the store: a file with several names
 * is one store inode, and replacing it (the unpack above, compaction) replaces it
 * under every name (store_relink_tmp()).
 *
 * Not supported (documented in faissfs(1)): setting or removing extended attributes
 * (ENOTSUP), RENAME_EXCHANGE and rename flags other than RENAME_NOREPLACE (EINVAL).
 */
#include "write.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

#define UNPACK_BUF   (1u << 20)
#define UNPACK_TRIES 8 /* an object that keeps changing while unpacked: EAGAIN */

struct wr_open {
	dev_t dev;
	ino_t ino;
	unsigned n; /* writable opens of it */
};

struct mnt_wr {
	pthread_mutex_t lock; /* the gate; also protects the fields below */
	struct wr_open *v;    /* protected by lock */
	size_t n, cap;	      /* protected by lock */
};

/* --- the gate and the writer set ------------------------------------------------------ */

int mnt_wr_new(struct mnt_wr **out)
{
	struct mnt_wr *wr = calloc(1, sizeof(*wr));

	if (!wr)
		return -ENOMEM;
	pthread_mutex_init(&wr->lock, NULL);
	*out = wr;
	return 0;
}

void mnt_wr_free(struct mnt_wr *wr)
{
	if (!wr)
		return;
	pthread_mutex_destroy(&wr->lock);
	free(wr->v);
	free(wr);
}

void mnt_wr_lock(struct mnt_wr *wr)
{
	if (wr)
		pthread_mutex_lock(&wr->lock);
}

void mnt_wr_unlock(struct mnt_wr *wr)
{
	if (wr)
		pthread_mutex_unlock(&wr->lock);
}

static struct wr_open *wr_find(struct mnt_wr *wr, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < wr->n; i++)
		if (wr->v[i].dev == dev && wr->v[i].ino == ino)
			return &wr->v[i];
	return NULL;
}

bool mnt_wr_busy_locked(struct mnt_wr *wr, dev_t dev, ino_t ino)
{
	return wr && wr_find(wr, dev, ino) != NULL;
}

/* Counts one more writable open of (@dev, @ino).  Caller holds the gate. */
static int wr_add_locked(struct mnt_wr *wr, dev_t dev, ino_t ino)
{
	struct wr_open *o = wr_find(wr, dev, ino);

	if (o) {
		o->n++;
		return 0;
	}
	if (wr->n == wr->cap) {
		size_t nc = wr->cap ? wr->cap * 2 : 16;
		struct wr_open *v = realloc(wr->v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		wr->v = v;
		wr->cap = nc;
	}
	wr->v[wr->n++] = (struct wr_open){.dev = dev, .ino = ino, .n = 1};
	return 0;
}

/* Counts one writable open of (@dev, @ino) less.  Returns true if it was the last. */
static bool wr_del(struct mnt_wr *wr, dev_t dev, ino_t ino)
{
	struct wr_open *o;
	bool last = false;

	pthread_mutex_lock(&wr->lock);
	o = wr_find(wr, dev, ino);
	if (o && --o->n == 0) {
		*o = wr->v[--wr->n];
		last = true;
	}
	pthread_mutex_unlock(&wr->lock);
	return last;
}

/* --- helpers ------------------------------------------------------------------------------ */

/* A name to create or to remove in @parent: the store's reserved names are not
 * ours to touch (EPERM), the rest as mnt_name_check(). */
static int name_check_rw(const struct mnt_node *parent, const char *name)
{
	int rc;

	if (!parent->is_dir)
		return -ENOTDIR;
	rc = mnt_name_check(parent, name);
	if (rc == -ENOENT && *name)
		return -EPERM;
	return rc;
}

/* New files and directories belong to the caller, as on a local filesystem
 * (only possible when the daemon runs as root; else they are the daemon's). */
static void chown_to_caller(fuse_req_t req, int dirfd, const char *name, int fd)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (geteuid() != 0)
		return;
	if (fd >= 0 ? fchown(fd, ctx->uid, ctx->gid)
		    : fchownat(dirfd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW))
		log_warn("cannot give a new file to uid %u: %s (it stays root's)",
			 (unsigned)ctx->uid, strerror(errno));
}

static void reply_entry_rw(fuse_req_t req, struct mnt_node *node, const struct stat *attr)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = node->ino;
	e.attr = *attr;
	e.attr_timeout = MNT_TIMEOUT;
	e.entry_timeout = MNT_TIMEOUT;
	if (fuse_reply_entry(req, &e) != 0)
		mnt_node_forget(mnt_req_fs(req)->tab, node, 1);
}

static int at_open_rw(int dirfd, const char *name, void *arg)
{
	int fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	(void)arg;
	if (fd < 0)
		return errno == ELOOP ? -ESTALE : -errno;
	return fd;
}

struct tmp_ref {
	int tmpfd;
	const char *tmpname;
	struct mnt_cmp *cmp; /* NULL, or keep the object replaced as the previous version */
	const char *relpath;
};

static int at_rename_from_tmp(int dirfd, const char *name, void *arg)
{
	const struct tmp_ref *t = arg;

	if (t->cmp)
		mnt_cmp_keep_prev(t->cmp, dirfd, name, t->relpath);
	return renameat(t->tmpfd, t->tmpname, dirfd, name) < 0 ? -errno : 0;
}

static int at_stat(int dirfd, const char *name, void *arg)
{
	return fstatat(dirfd, name, arg, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Copies the object open as @fd (stat @st) of @n into the new plain file
 * tmp/@tmpname (empty when @trunc) with its mode, owner and times, and fsyncs it.
 * Returns its fd, open O_RDWR, or -errno with nothing left in tmp/.  Needs no
 * gate: nothing outside tmp/ changes. */
static int unpack_copy(struct mnt_fs *fs, struct mnt_node *n, int fd, const struct stat *st,
		       bool trunc, const char *tmpname)
{
	struct store_object *so = NULL;
	struct store_dctx *dc = NULL;
	int tmpfd = store_tmp_fd(fs->st), tfd, rc = 0;
	char *buf = NULL;
	uint64_t off = 0;

	tfd = openat(tmpfd, tmpname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (tfd < 0)
		return -errno;
	if (!trunc) {
		rc = store_object_open_fd(fd, n->name, &so);
		if (rc < 0)
			goto fail;
		dc = store_dctx_new();
		buf = malloc(UNPACK_BUF);
		if (!dc || !buf) {
			rc = -ENOMEM;
			goto fail;
		}
		for (;;) {
			ssize_t got = store_object_pread(so, dc, buf, UNPACK_BUF, off);

			if (got < 0) {
				rc = (int)got;
				goto fail;
			}
			if (got == 0)
				break;
			for (ssize_t done = 0; done < got;) {
				ssize_t w = pwrite(tfd, buf + done, (size_t)(got - done),
						   (off_t)off + done);

				if (w < 0) {
					rc = -errno;
					goto fail;
				}
				done += w;
			}
			off += (uint64_t)got;
		}
	}
	if (fchmod(tfd, st->st_mode & 07777) < 0 || fsync(tfd) < 0) {
		rc = -errno;
		goto fail;
	}
	if (geteuid() == 0 && fchown(tfd, st->st_uid, st->st_gid) < 0)
		log_warn("cannot keep the owner of %s: %s", n->name, strerror(errno));
	if (!trunc) {
		struct timespec ts[2] = {st->st_atim, st->st_mtim};

		futimens(tfd, ts); /* only cosmetic: the bytes did not change */
	}
	goto out;
fail:
	unlinkat(tmpfd, tmpname, 0);
	close(tfd);
	tfd = rc;
out:
	store_object_free(so);
	store_dctx_free(dc);
	free(buf);
	return tfd;
}

/* Replaces @n's store file, the object @st, by a plain copy of it (empty when
 * @trunc): copies it to tmp/ without the gate, then takes the gate and renames
 * the copy over the object if the name still holds that very object (same inode,
 * size, mtime, ctime).  Returns the new file's fd, open O_RDWR, with the gate
 * held; -EAGAIN (gate not held) if the name changed meanwhile: the caller looks
 * again; or -errno (gate not held) with the object left in place. */
static int unpack(struct mnt_fs *fs, struct mnt_node *n, int fd, const struct stat *st, bool trunc)
{
	static atomic_ulong seq;
	char tmpname[64], path[4096];
	int tfd, rc;
	struct mnt_ident was, now;
	struct stat cur;
	struct tmp_ref ref;
	bool have_path = false;

	snprintf(tmpname, sizeof(tmpname), "unpack.%d.%lu", (int)getpid(),
		 atomic_fetch_add(&seq, 1));
	tfd = unpack_copy(fs, n, fd, st, trunc, tmpname);
	if (tfd < 0) {
		rc = tfd;
		goto fail;
	}
	mnt_wr_lock(fs->wr);
	rc = mnt_node_at(n, at_stat, &cur);
	if (rc == 0) {
		mnt_ident_of(st, &was);
		mnt_ident_of(&cur, &now);
		if (!mnt_ident_eq(&was, &now))
			rc = -EAGAIN; /* written, replaced or removed since we looked */
	}
	if (rc == 0 && st->st_nlink > 1) {
		/* Several names: each gets the plain copy (no previous version kept). */
		rc = store_relink_tmp(fs->st, tmpname, st);
		if (rc > 0)
			__atomic_add_fetch(&n->gen, 1, __ATOMIC_RELEASE);
		if (rc > 0 && fstat(tfd, &cur) == 0)
			mnt_node_replaced(fs->tab, NULL, st, &cur);
		if (rc > 0)
			return tfd;
	} else if (rc == 0) {
		ref.tmpfd = store_tmp_fd(fs->st);
		ref.tmpname = tmpname;
		have_path = mnt_node_relpath(n, path, sizeof(path)) == 0;
		ref.cmp = have_path ? fs->cmp : NULL;
		ref.relpath = path;
		rc = mnt_node_at(n, at_rename_from_tmp, &ref);
	}
	if (rc == 0) {
		/* The node follows its name to the plain copy (same bytes), which the
		 * writer changes next: its read-only opens must read it from now on. */
		__atomic_add_fetch(&n->gen, 1, __ATOMIC_RELEASE);
		if (fstat(tfd, &cur) == 0)
			mnt_node_replaced(fs->tab, have_path ? path : NULL, st, &cur);
		return tfd;
	}
	mnt_wr_unlock(fs->wr);
	unlinkat(store_tmp_fd(fs->st), tmpname, 0);
	close(tfd);
	if (rc == -EAGAIN || rc == -ENOENT || rc == -ESTALE)
		return -EAGAIN;
fail:
	log_warn("cannot open %s for writing: unpacking its object failed: %s (the object is "
		 "unchanged; %s)",
		 n->name, strerror(-rc),
		 rc == -ENOSPC ? "free some space in the store" : "check the store");
	return rc;
}

/* Opens @n's store file for writing (unpacking an object first), truncated if
 * @trunc, and counts it in the writer set.  Returns the fd (its stat in @st) or
 * -errno (-EAGAIN if the file kept changing while it was unpacked). */
static int open_rw(struct mnt_fs *fs, struct mnt_node *n, bool trunc, struct stat *st)
{
	unsigned tries = 0;
	uint64_t lsize;
	int fd, nfd, rc;

	if (n->is_dir)
		return -EISDIR;
again:
	mnt_wr_lock(fs->wr);
	fd = mnt_node_at(n, at_open_rw, NULL);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	if (fstat(fd, st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		rc = -ESTALE;
		goto fail;
	}
	rc = store_object_probe(fd, n->name, &lsize);
	if (rc < 0)
		goto fail;
	if (rc == 1) {
		/* Not under the gate: copying a large object takes a while. */
		mnt_wr_unlock(fs->wr);
		nfd = unpack(fs, n, fd, st, trunc);
		close(fd);
		if (nfd == -EAGAIN && ++tries < UNPACK_TRIES)
			goto again;
		if (nfd == -EAGAIN)
			log_warn("cannot open %s for writing: it was replaced %u times while its "
				 "object was unpacked (EAGAIN; open it again)",
				 n->name, tries);
		if (nfd < 0)
			return nfd;
		fd = nfd; /* the gate is held again */
	} else if (trunc && ftruncate(fd, 0) < 0) {
		rc = -errno;
		goto fail;
	}
	if (fstat(fd, st) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = wr_add_locked(fs->wr, st->st_dev, st->st_ino);
	if (rc < 0)
		goto fail;
	rc = fd;
	goto out;
fail:
	close(fd);
out:
	mnt_wr_unlock(fs->wr);
	return rc;
}

/* The end of a writable use of a store file: leaves the writer set and queues
 * the file for compaction. */
static void close_rw(struct mnt_fs *fs, struct mnt_node *n, dev_t dev, ino_t ino, int fd)
{
	struct stat st;
	char path[4096];

	wr_del(fs->wr, dev, ino);
	if (fs->cmp && mnt_node_relpath(n, path, sizeof(path)) == 0)
		mnt_cmp_queue(fs->cmp, path,
			      fd >= 0 && fstat(fd, &st) == 0 && st.st_nlink ? (uint64_t)st.st_size
									    : 0);
}

/* The path of @name in the directory @dir, relative to the store root. */
static int child_relpath(struct mnt_node *dir, const char *name, char *buf, size_t size)
{
	size_t len = 0;
	int rc;

	if (dir->parent) {
		rc = mnt_node_relpath(dir, buf, size);
		if (rc < 0)
			return rc;
		len = strlen(buf);
	}
	if ((size_t)snprintf(buf + len, size - len, "%s%s", len ? "/" : "", name) >= size - len)
		return -ENAMETOOLONG;
	return 0;
}

static struct mnt_fh *fh_new(struct mnt_node *n, int fd, const struct stat *st)
{
	struct mnt_fh *fh = calloc(1, sizeof(*fh));

	if (!fh)
		return NULL;
	fh->node = n;
	fh->fd = fd;
	fh->writable = true;
	fh->sdev = st->st_dev;
	fh->sino = st->st_ino;
	return fh;
}

/* --- handlers --------------------------------------------------------------------------------- */

void mnt_w_open(fuse_req_t req, struct mnt_node *n, struct fuse_file_info *fi)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_fh *fh;
	struct stat st;
	int fd;

	fd = open_rw(fs, n, (fi->flags & O_TRUNC) != 0, &st);
	if (fd < 0) {
		mnt_reply_err(req, fd);
		return;
	}
	fh = fh_new(n, fd, &st);
	if (!fh) {
		close_rw(fs, n, st.st_dev, st.st_ino, -1);
		close(fd);
		mnt_reply_err(req, -ENOMEM);
		return;
	}
	mnt_node_keep_fd(n, fd);
	fh->kept = true;
	mnt_handle_add(fs, &fh->link, mnt_fh_free);
	fi->fh = (uintptr_t)fh;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0) {
		mnt_handle_del(fs, &fh->link);
		mnt_node_unkeep_fd(n);
		close_rw(fs, n, fh->sdev, fh->sino, -1);
		close(fd);
		free(fh);
	}
}

void mnt_w_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *p = mnt_req_node(req, parent), *node = NULL;
	struct fuse_entry_param e;
	struct mnt_fh *fh = NULL;
	struct stat st;
	int fd = -1, rc;

	if (!p)
		return;
	rc = name_check_rw(p, name);
	if (rc < 0)
		goto fail;
	if (!S_ISREG(mode)) {
		rc = -EPERM;
		goto fail;
	}
	mnt_wr_lock(fs->wr);
	fd = openat(p->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
	} else {
		chown_to_caller(req, -1, NULL, fd);
		/* The kernel applied the caller's umask already. */
		if (fchmod(fd, mode & 07777) < 0 || fstat(fd, &st) < 0)
			rc = -errno;
		else
			rc = wr_add_locked(fs->wr, st.st_dev, st.st_ino);
		if (rc < 0) {
			close(fd);
			fd = -1;
			unlinkat(p->dirfd, name, 0);
		}
	}
	mnt_wr_unlock(fs->wr);
	if (rc < 0)
		goto fail;
	memset(&e, 0, sizeof(e));
	rc = mnt_node_lookup(fs->tab, p, name, &e.attr, &node);
	if (rc < 0)
		goto fail_open;
	fh = fh_new(node, fd, &st);
	if (!fh) {
		rc = -ENOMEM;
		goto fail_node;
	}
	mnt_node_keep_fd(node, fd);
	fh->kept = true;
	e.ino = node->ino;
	e.attr_timeout = MNT_TIMEOUT;
	e.entry_timeout = MNT_TIMEOUT;
	mnt_handle_add(fs, &fh->link, mnt_fh_free);
	fi->fh = (uintptr_t)fh;
	fi->keep_cache = 0;
	if (fuse_reply_create(req, &e, fi) != 0) {
		mnt_handle_del(fs, &fh->link);
		mnt_node_unkeep_fd(node);
		close_rw(fs, node, st.st_dev, st.st_ino, -1);
		close(fd);
		free(fh);
		mnt_node_forget(fs->tab, node, 1);
	}
	return;
fail_node:
	mnt_node_forget(fs->tab, node, 1);
fail_open:
	wr_del(fs->wr, st.st_dev, st.st_ino);
	close(fd);
fail:
	mnt_reply_err(req, rc);
}

/* Sets the mode of the store entry @name in @dirfd, which must not be a symlink:
 * through an O_PATH fd of it, so a name swapped for a symlink is never followed. */
static int chmod_nofollow(int dirfd, const char *name, mode_t mode)
{
	char path[64];
	struct stat st;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (S_ISLNK(st.st_mode))
		rc = -EOPNOTSUPP; /* as lchmod(2) on Linux */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (rc == 0 && chmod(path, mode & 07777) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Looks up the entry just made as @name in @p and replies with it, or removes it
 * again if that fails.  @made is the result of making it (0 or -errno). */
static void reply_made(fuse_req_t req, struct mnt_node *p, const char *name, int made)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *node;
	struct stat attr;
	int rc = made;

	if (rc == 0) {
		rc = mnt_node_lookup(fs->tab, p, name, &attr, &node);
		if (rc < 0 && unlinkat(p->dirfd, name, 0) < 0 && errno == EISDIR)
			unlinkat(p->dirfd, name, AT_REMOVEDIR);
	}
	if (rc < 0) {
		mnt_reply_err(req, rc);
		return;
	}
	mnt_ctl_tree_changed(fs->ctl);
	reply_entry_rw(req, node, &attr);
}

void mnt_w_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct mnt_node *p = mnt_req_node(req, parent);
	int rc;

	if (!p)
		return;
	rc = name_check_rw(p, name);
	if (rc == 0 && mkdirat(p->dirfd, name, 0700) < 0)
		rc = -errno;
	if (rc == 0) {
		chown_to_caller(req, p->dirfd, name, -1);
		rc = chmod_nofollow(p->dirfd, name, mode);
	}
	reply_made(req, p, name, rc);
}

/* The store may hold symlinks, hard links and special files from now on: the
 * superblock says so before the first one is made. */
static int note_links(struct mnt_fs *fs)
{
	return store_feature_links(fs->st);
}

void mnt_w_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *p = mnt_req_node(req, parent);
	int rc;

	if (!p)
		return;
	rc = name_check_rw(p, name);
	if (rc == 0 && !S_ISREG(mode))
		rc = note_links(fs);
	if (rc == 0 && mknodat(p->dirfd, name, (mode & S_IFMT) | 0600, rdev) < 0)
		rc = -errno;
	if (rc == 0) {
		chown_to_caller(req, p->dirfd, name, -1);
		/* The kernel applied the caller's umask already. */
		rc = chmod_nofollow(p->dirfd, name, mode);
		if (rc < 0)
			unlinkat(p->dirfd, name, 0);
	}
	reply_made(req, p, name, rc);
}

void mnt_w_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *p = mnt_req_node(req, parent);
	int rc;

	if (!p)
		return;
	rc = name_check_rw(p, name);
	if (rc == 0)
		rc = note_links(fs);
	if (rc == 0 && symlinkat(target, p->dirfd, name) < 0)
		rc = -errno;
	if (rc == 0)
		chown_to_caller(req, p->dirfd, name, -1);
	reply_made(req, p, name, rc);
}

struct link_to {
	int dirfd;
	const char *name;
};

static int at_link(int dirfd, const char *name, void *arg)
{
	const struct link_to *to = arg;

	return linkat(dirfd, name, to->dirfd, to->name, 0) < 0 ? -errno : 0;
}

void mnt_w_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *n = mnt_req_node(req, ino), *np;
	struct link_to to;
	int rc;

	if (!n)
		return;
	np = mnt_req_node(req, newparent);
	if (!np)
		return;
	if (n->is_dir || !n->parent) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = name_check_rw(np, newname);
	if (rc == 0)
		rc = note_links(fs);
	if (rc == 0) {
		to.dirfd = np->dirfd;
		to.name = newname;
		/* Under the gate: the compactor does not swap the inode meanwhile. */
		mnt_wr_lock(fs->wr);
		rc = mnt_node_at(n, at_link, &to);
		if (rc == -ENOENT && mnt_node_pfd(n) >= 0) {
			char path[64];

			/* Its own name is gone; it has others (an open, unlinked file has
			 * no name at all: the kernel answered ENOENT before asking us). */
			snprintf(path, sizeof(path), "/proc/self/fd/%d", mnt_node_pfd(n));
			rc = linkat(AT_FDCWD, path, np->dirfd, newname, AT_SYMLINK_FOLLOW) < 0
				     ? -errno
				     : 0;
		}
		mnt_wr_unlock(fs->wr);
	}
	if (rc == 0) {
		rc = mnt_node_linked(fs->tab, n);
		if (rc < 0)
			log_warn("link %s: %s (the new name may show as another inode until the "
				 "kernel looks it up again)",
				 newname, strerror(-rc));
		rc = 0;
	}
	if (rc < 0) {
		mnt_reply_err(req, rc);
		return;
	}
	reply_made(req, np, newname, 0);
}

void mnt_w_unlink(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *p = mnt_req_node(req, parent);
	char path[4096];
	int rc;

	if (!p)
		return;
	rc = name_check_rw(p, name);
	if (rc == 0) {
		mnt_wr_lock(fs->wr);
		if (unlinkat(p->dirfd, name, dir ? AT_REMOVEDIR : 0) < 0) {
			rc = -errno;
		} else {
			mnt_node_unlinked(fs->tab, p, name);
			mnt_ctl_tree_changed(fs->ctl);
			if (!dir && child_relpath(p, name, path, sizeof(path)) == 0)
				mnt_cmp_forget_prev(fs->cmp, path);
		}
		mnt_wr_unlock(fs->wr);
	}
	if (rc < 0)
		mnt_reply_err(req, rc);
	else
		fuse_reply_err(req, 0);
}

void mnt_w_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *p = mnt_req_node(req, parent), *np;
	char path[4096];
	int rc;

	if (!p)
		return;
	np = mnt_req_node(req, newparent);
	if (!np)
		return;
	/* RENAME_EXCHANGE (and RENAME_WHITEOUT) are not supported. */
	if (flags & ~(unsigned)RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = name_check_rw(p, name);
	if (rc == 0)
		rc = name_check_rw(np, newname);
	if (rc == 0) {
		mnt_wr_lock(fs->wr);
		/* An object about to be replaced: its chunks may serve the new version. */
		if (fs->cmp && !(flags & RENAME_NOREPLACE) &&
		    child_relpath(np, newname, path, sizeof(path)) == 0)
			mnt_cmp_keep_prev(fs->cmp, np->dirfd, newname, path);
		rc = mnt_node_rename(fs->tab, p, name, np, newname, flags);
		mnt_wr_unlock(fs->wr);
	}
	if (rc < 0) {
		mnt_reply_err(req, rc);
		return;
	}
	mnt_ctl_tree_changed(fs->ctl);
	/* A plain file (or a directory of them) has a new path: look at it again. */
	if (fs->cmp && child_relpath(np, newname, path, sizeof(path)) == 0)
		mnt_cmp_queue(fs->cmp, path, 0);
	fuse_reply_err(req, 0);
}

void mnt_w_write(fuse_req_t req, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct mnt_fh *fh = (struct mnt_fh *)(uintptr_t)fi->fh;
	size_t done = 0;

	if (!fh->writable) {
		fuse_reply_err(req, EBADF);
		return;
	}
	mnt_cmp_throttle(mnt_req_fs(req)->cmp);
	while (done < size) {
		ssize_t w = pwrite(fh->fd, buf + done, size - done, off + (off_t)done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (done)
				break; /* a short write; the next one reports the error */
			mnt_reply_err(req, -errno);
			return;
		}
		done += (size_t)w;
	}
	fuse_reply_write(req, done);
}

/* The times of @to_set of @attr for utimensat(): UTIME_OMIT where not set. */
static void attr_times(const struct stat *attr, int to_set, struct timespec ts[2])
{
	ts[0] = ts[1] = (struct timespec){.tv_nsec = UTIME_OMIT};
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
}

struct attr_req {
	const struct stat *attr;
	int to_set;
	mode_t type;
};

/* Applies an attr_req to the store entry @name in @dirfd (a symlink, FIFO, socket or
 * device: never opened, never followed). */
static int at_apply_attr(int dirfd, const char *name, void *arg)
{
	const struct attr_req *r = arg;
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if ((st.st_mode & S_IFMT) != r->type)
		return -ESTALE;
	if (r->to_set & FUSE_SET_ATTR_SIZE)
		return -EINVAL;
	if (r->to_set & FUSE_SET_ATTR_MODE) {
		int rc = chmod_nofollow(dirfd, name, r->attr->st_mode);

		if (rc < 0)
			return rc;
	}
	if ((r->to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchownat(dirfd, name, (r->to_set & FUSE_SET_ATTR_UID) ? r->attr->st_uid : (uid_t)-1,
		     (r->to_set & FUSE_SET_ATTR_GID) ? r->attr->st_gid : (gid_t)-1,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (r->to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2];

		attr_times(r->attr, r->to_set, ts);
		if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

/* Applies @to_set of @attr to the open file @fd. */
static int apply_attr(int fd, const struct stat *attr, int to_set)
{
	if ((to_set & FUSE_SET_ATTR_MODE) && fchmod(fd, attr->st_mode & 07777) < 0)
		return -errno;
	if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchown(fd, (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
		   (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1) < 0)
		return -errno;
	if ((to_set & FUSE_SET_ATTR_SIZE) && ftruncate(fd, attr->st_size) < 0)
		return -errno;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2];

		attr_times(attr, to_set, ts);
		if (futimens(fd, ts) < 0)
			return -errno;
	}
	return 0;
}

void mnt_w_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi)
{
	struct mnt_fs *fs = mnt_req_fs(req);
	struct mnt_node *n = mnt_req_node(req, ino);
	struct mnt_fh *fh = NULL;
	struct stat st, out;
	bool own_rw = false;
	int fd = -1, own = -1, rc;

	if (!n)
		return;
	if (!n->is_dir && n->type != S_IFREG) {
		struct attr_req r = {.attr = attr, .to_set = to_set, .type = n->type};

		rc = mnt_node_at(n, at_apply_attr, &r);
		if (rc == 0)
			rc = mnt_node_stat(fs->tab, n, &out);
		if (rc < 0)
			mnt_reply_err(req, rc);
		else
			fuse_reply_attr(req, &out, MNT_TIMEOUT);
		return;
	}
	if (fi && !n->is_dir)
		fh = (struct mnt_fh *)(uintptr_t)fi->fh;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (n->is_dir) {
			mnt_reply_err(req, -EISDIR);
			return;
		}
		if (fh && fh->writable) {
			fd = fh->fd;
		} else {
			own = open_rw(fs, n, attr->st_size == 0, &st);
			own_rw = own >= 0;
			fd = own;
		}
	} else if (n->is_dir) {
		fd = n->dirfd;
	} else if (fh && fh->fd >= 0) {
		fd = fh->fd;
	} else {
		own = mnt_node_open_file(n, &st);
		fd = own;
	}
	if (fd < 0) {
		mnt_reply_err(req, fd);
		return;
	}
	rc = apply_attr(fd, attr, to_set);
	if (own_rw)
		close_rw(fs, n, st.st_dev, st.st_ino, own);
	if (own >= 0)
		close(own);
	if (rc == 0)
		rc = mnt_node_stat(fs->tab, n, &out);
	if (rc < 0)
		mnt_reply_err(req, rc);
	else
		fuse_reply_attr(req, &out, MNT_TIMEOUT);
}

void mnt_w_fsync(fuse_req_t req, int datasync, struct fuse_file_info *fi)
{
	struct mnt_fh *fh = (struct mnt_fh *)(uintptr_t)fi->fh;

	/* Any open of a plain file, read-only too (as on a local filesystem: `sync FILE`
	 * does that); an object is durable since it was published. */
	if (fh->fd >= 0 && (datasync ? fdatasync(fh->fd) : fsync(fh->fd)) < 0) {
		mnt_reply_err(req, -errno);
		return;
	}
	fuse_reply_err(req, 0);
}

void mnt_w_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync)
{
	struct mnt_node *n = mnt_req_node(req, ino);

	if (!n)
		return;
	if ((datasync ? fdatasync(n->dirfd) : fsync(n->dirfd)) < 0)
		mnt_reply_err(req, -errno);
	else
		fuse_reply_err(req, 0);
}

void mnt_w_fallocate(fuse_req_t req, int mode, off_t offset, off_t length,
		     struct fuse_file_info *fi)
{
	struct mnt_fh *fh = (struct mnt_fh *)(uintptr_t)fi->fh;

	if (!fh->writable) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (fallocate(fh->fd, mode, offset, length) < 0)
		mnt_reply_err(req, -errno);
	else
		fuse_reply_err(req, 0);
}

void mnt_w_release(struct mnt_fs *fs, struct mnt_fh *fh)
{
	if (fh->writable) {
		/* The node's dup of a removed file goes with its last writer, so its space
		 * is freed at close, as on a local filesystem. */
		if (fh->kept)
			mnt_node_unkeep_fd(fh->node);
		fh->kept = false;
		close_rw(fs, fh->node, fh->sdev, fh->sino, fh->fd);
	}
}
