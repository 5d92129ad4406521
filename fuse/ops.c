/* ops.c - the low-level FUSE handlers of the read-only mount.
 *
 * Each handler decodes the request, calls node.c / read.c / the store, and
 * replies exactly once.  Every mutating request answers EROFS, unless the mount
 * is writable (-o rw): then write.c serves it.  Entries and
 * attributes are cached by the kernel for MNT_TIMEOUT seconds: nothing changes
 * through a read-only mount.  Permission checks are the kernel's
 * (default_permissions), so there is no access handler.
 */
#include "mnt.h"
#include "node.h"
#include "control.h"
#include "write.h"
#include "preload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store/store.h"

/* One entry of a directory snapshot. */
struct mnt_dent {
	char *name;
	unsigned char type; /* DT_* */
	ino_t sino;	    /* the store's inode number (readdir without plus) */
};

/* An open directory: its entries as they were at opendir, so offsets are stable. */
struct mnt_dirh {
	struct mnt_hlink link; /* first: listed in the mnt_fs while open (mnt.h) */
	size_t n;
	struct mnt_dent *ents; /* [0] ".", [1] "..", then the store's entries */
};

struct mnt_node *mnt_req_node(fuse_req_t req, fuse_ino_t ino)
{
	struct mnt_node *n = mnt_node_get(mnt_req_fs(req)->tab, ino);

	if (!n)
		fuse_reply_err(req, ESTALE);
	return n;
}

/* Corrupt data (EUCLEAN) and objects of a newer format (EPROTONOSUPPORT) reach
 * applications as EIO: it is the errno every reader (cp, FAISS, mmap's SIGBUS
 * path) treats as "the data cannot be read", whereas "Structure needs cleaning"
 * or "Protocol not supported" would mislead.  The store has logged the file,
 * chunk and offset, and what to do. */
void mnt_reply_err(fuse_req_t req, int neg)
{
	int err = -neg;

	mnt_ctl_error(mnt_req_fs(req)->ctl, neg);
	if (err <= 0) {
		log_error("internal error: replying errno %d (please report this bug)", neg);
		err = EIO;
	}
	if (err == EUCLEAN || err == EPROTONOSUPPORT)
		err = EIO;
	fuse_reply_err(req, err);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mnt_fs *fs = userdata;

	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* Nothing is written; ask for what speeds up reads only. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* The kernel's read-ahead window: see readahead.c. */
	mnt_ra_tune_kernel(fs->mountpoint, fs->kernel_ra_kb, conn);
	conn->max_write = MNT_IO_MAX;
	/* Must equal the max_read= mount option mount.c passes: libfuse checks. */
	conn->max_read = MNT_IO_MAX;

	if (fs->ready_fd >= 0) {
		/* The kernel is talking to us: the mount is up and served. */
		if (write(fs->ready_fd, "ready\n", 6) != 6)
			log_warn("cannot write to ready_fd %d: %s (is the reader still there?)",
				 fs->ready_fd, strerror(errno));
		close(fs->ready_fd);
		fs->ready_fd = -1;
	}
	log_info("mounted %s", store_path(fs->st));
	mnt_pre_ready(fs->pre); /* preloading starts only now */
}

static void reply_entry(fuse_req_t req, struct mnt_node *node, const struct stat *attr)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = node->ino;
	e.attr = *attr;
	e.attr_timeout = MNT_TIMEOUT;
	e.entry_timeout = MNT_TIMEOUT;
	if (fuse_reply_entry(req, &e) != 0)
		mnt_node_forget(mnt_req_fs(req)->tab, node, 1); /* interrupted: not counted */
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mnt_node *p = mnt_req_node(req, parent), *node;
	struct stat attr;
	int rc;

	if (!p)
		return;
	rc = mnt_node_lookup(mnt_req_fs(req)->tab, p, name, &attr, &node);
	if (rc < 0) {
		if (rc != -ENOENT)
			log_debug("lookup %s in inode %" PRIu64 ": %s", name, (uint64_t)parent,
				  strerror(-rc));
		mnt_reply_err(req, rc);
		return;
	}
	reply_entry(req, node, &attr);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct mnt_node *n = mnt_node_get(mnt_req_fs(req)->tab, ino);

	if (n)
		mnt_node_forget(mnt_req_fs(req)->tab, n, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct mnt_table *t = mnt_req_fs(req)->tab;

	for (size_t i = 0; i < count; i++) {
		struct mnt_node *n = mnt_node_get(t, forgets[i].ino);

		if (n)
			mnt_node_forget(t, n, forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt_node *n = mnt_req_node(req, ino);
	struct stat attr;
	int rc;

	(void)fi;
	if (!n)
		return;
	rc = mnt_node_stat(mnt_req_fs(req)->tab, n, &attr);
	if (rc < 0)
		mnt_reply_err(req, rc);
	else
		fuse_reply_attr(req, &attr, MNT_TIMEOUT);
}

/* --- files ------------------------------------------------------------------------ */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt_node *n;
	struct mnt_fh *fh = NULL;
	struct mnt_obj *ob = NULL;
	struct stat st;
	int fd = -1, rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		if (!mnt_req_fs(req)->rw) {
			fuse_reply_err(req, EROFS);
			return;
		}
		n = mnt_req_node(req, ino);
		if (n)
			mnt_w_open(req, n, fi);
		return;
	}
	n = mnt_req_node(req, ino);
	if (!n)
		return;
	if (n->is_dir) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fd = mnt_node_open_file(n, &st);
	if (fd < 0) {
		rc = fd;
		goto fail;
	}
	rc = mnt_node_object(mnt_req_fs(req)->st, n, fd, &st, &ob);
	if (rc < 0)
		goto fail;
	fh = calloc(1, sizeof(*fh));
	if (!fh) {
		rc = -ENOMEM;
		goto fail;
	}
	fh->node = n;
	fh->gen = __atomic_load_n(&n->gen, __ATOMIC_ACQUIRE);
	fh->obj = ob; /* NULL for a plain file */
	if (ob)
		mnt_ctl_open_begin(mnt_req_fs(req)->ctl, &fh->track, n, store_object_info(ob->so));
	if (ob && store_object_info(ob->so)->faiss.valid)
		mnt_pre_note(mnt_req_fs(req)->pre, n); /* one more access to this index */
	fh->fd = -1;
	mnt_node_keep_fd(n, fd); /* fstat() answers once the name is gone */
	fh->kept = true;
	if (ob) {
		close(fd);
	} else {
		fh->fd = fd;
		/* The fd was opened O_NONBLOCK (see node.h); regular files ignore it. */
	}
	fd = -1;
	ob = NULL;
	fi->fh = (uintptr_t)fh;
	/* The data never changes under a read-only mount; on a writable one every change
	 * comes through the kernel, which keeps its cache up to date. */
	fi->keep_cache = 1;
	fi->noflush = 1;
	mnt_handle_add(mnt_req_fs(req), &fh->link, mnt_fh_free);
	if (fuse_reply_open(req, fi) != 0) {
		/* Interrupted: the kernel will not release it. */
		mnt_handle_del(mnt_req_fs(req), &fh->link);
		mnt_fh_free(&fh->link);
	}
	return;
fail:
	if (fd >= 0)
		close(fd);
	mnt_node_object_put(n, ob);
	mnt_reply_err(req, rc);
}

/* Bytes a read of @size at @off of a file of @lsize bytes answers. */
static uint64_t read_len(uint64_t lsize, size_t size, off_t off)
{
	if (off < 0 || (uint64_t)off >= lsize)
		return 0;
	return lsize - (uint64_t)off < size ? lsize - (uint64_t)off : size;
}

/* A read through a read-only open of a file unpacked for a writer since (its object or
 * plain file is an old inode now): from the node's current store file, so that the
 * writer's bytes are seen, as on a local filesystem. */
static void read_current(fuse_req_t req, struct mnt_fh *fh, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
	struct mnt_obj *ob = NULL;
	struct stat st;
	int fd, rc;

	fd = mnt_node_open_file(fh->node, &st);
	if (fd < 0) {
		mnt_reply_err(req, fd);
		return;
	}
	rc = mnt_node_object(mnt_req_fs(req)->st, fh->node, fd, &st, &ob);
	if (rc < 0) {
		close(fd);
		mnt_reply_err(req, rc);
		return;
	}
	if (rc == 1) {
		close(fd);
		mnt_read_object(mnt_req_fs(req), req, ob, size, off);
		mnt_node_object_put(fh->node, ob);
		return;
	}
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, 0);
	close(fd);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct mnt_fh *fh = (struct mnt_fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	(void)ino;
	if (!fh->writable && __atomic_load_n(&fh->node->gen, __ATOMIC_ACQUIRE) != fh->gen) {
		read_current(req, fh, size, off);
		return;
	}
	if (fh->obj) {
		/* Counted before the reply: once a reader has its bytes, the
		 * metrics show them. */
		mnt_ctl_open_read(mnt_req_fs(req)->ctl, &fh->track,
				  read_len(store_object_info(fh->obj->so)->size, size, off));
		mnt_read_object(mnt_req_fs(req), req, fh->obj, size, off);
		return;
	}
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fh->fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt_fh *fh = (struct mnt_fh *)(uintptr_t)fi->fh;

	(void)ino;
	mnt_handle_del(mnt_req_fs(req), &fh->link);
	mnt_w_release(mnt_req_fs(req), fh);
	mnt_fh_free(&fh->link);
	fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	if (mnt_req_fs(req)->rw) {
		mnt_w_fsync(req, datasync, fi);
		return;
	}
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0); /* nothing is ever dirty */
}

/* --- open handles ------------------------------------------------------------------- */

void mnt_handle_add(struct mnt_fs *fs, struct mnt_hlink *h, void (*free)(struct mnt_hlink *h))
{
	h->free = free;
	h->prev = NULL;
	pthread_mutex_lock(&fs->hlock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->hlock);
}

void mnt_handle_del(struct mnt_fs *fs, struct mnt_hlink *h)
{
	pthread_mutex_lock(&fs->hlock);
	if (h->prev)
		h->prev->next = h->next;
	else if (fs->handles == h)
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->prev = h->next = NULL;
	pthread_mutex_unlock(&fs->hlock);
}

void mnt_handles_free(struct mnt_fs *fs)
{
	struct mnt_hlink *h, *next;

	pthread_mutex_lock(&fs->hlock);
	h = fs->handles;
	fs->handles = NULL;
	pthread_mutex_unlock(&fs->hlock);
	for (; h; h = next) {
		next = h->next;
		h->free(h);
	}
}

void mnt_fh_free(struct mnt_hlink *h)
{
	struct mnt_fh *fh = (struct mnt_fh *)h;

	mnt_ctl_open_end(&fh->track);
	if (fh->kept)
		mnt_node_unkeep_fd(fh->node);
	mnt_node_object_put(fh->node, fh->obj);
	if (fh->fd >= 0)
		close(fh->fd);
	free(fh);
}

/* --- directories -------------------------------------------------------------------- */

static void dirh_free(struct mnt_dirh *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	free(d);
}

static void dirh_free_link(struct mnt_hlink *h)
{
	dirh_free((struct mnt_dirh *)h);
}

static int dirh_add(struct mnt_dirh *d, size_t *cap, const char *name, unsigned char type,
		    ino_t sino)
{
	if (d->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct mnt_dent *e = realloc(d->ents, nc * sizeof(*e));

		if (!e)
			return -ENOMEM;
		d->ents = e;
		*cap = nc;
	}
	d->ents[d->n].name = strdup(name);
	if (!d->ents[d->n].name)
		return -ENOMEM;
	d->ents[d->n].type = type;
	d->ents[d->n].sino = sino;
	d->n++;
	return 0;
}

/* Reads the directory @node into a new snapshot: ".", "..", then its entries
 * (any of an unknown file type skipped with a log line, the store's reserved
 * names hidden at the root). */
static int dirh_read(struct mnt_table *t, struct mnt_node *node, struct mnt_dirh **out)
{
	struct mnt_dirh *d = calloc(1, sizeof(*d));
	DIR *dir = NULL;
	struct dirent *de;
	size_t cap = 0;
	int fd, rc;

	if (!d)
		return -ENOMEM;
	/* A fresh fd: the node's dirfd is shared, and readdir moves its offset. */
	fd = openat(node->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	dir = fdopendir(fd);
	if (!dir) {
		rc = -errno;
		close(fd);
		goto fail;
	}
	rc = dirh_add(d, &cap, ".", DT_DIR, 0);
	if (!rc)
		rc = dirh_add(d, &cap, "..", DT_DIR, 0);
	while (!rc) {
		unsigned char type;
		const char *what;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			rc = -errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!node->parent && store_name_reserved(de->d_name))
			continue;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* gone since readdir */
			type = (unsigned char)IFTODT(st.st_mode);
		}
		what = mnt_special_name(DTTOIF(type));
		if (what) {
			mnt_warn_special(t, node, de->d_name, what);
			continue;
		}
		rc = dirh_add(d, &cap, de->d_name, type, de->d_ino);
	}
	closedir(dir);
	if (rc < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	dirh_free(d);
	return rc;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt_node *n = mnt_req_node(req, ino);
	struct mnt_dirh *d = NULL;
	int rc;

	if (!n)
		return;
	if (!n->is_dir) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !mnt_req_fs(req)->rw) {
		fuse_reply_err(req, EROFS);
		return;
	}
	rc = dirh_read(mnt_req_fs(req)->tab, n, &d);
	if (rc < 0) {
		mnt_reply_err(req, rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	mnt_handle_add(mnt_req_fs(req), &d->link, dirh_free_link);
	if (fuse_reply_open(req, fi) != 0) {
		mnt_handle_del(mnt_req_fs(req), &d->link);
		dirh_free(d);
	}
}

/* Adds the snapshot's entries from @off on to a buffer of at most @size bytes
 * and replies with it.  With @plus, each entry but "." and ".." is looked up
 * (taking a lookup count only for entries that made it into the buffer). */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct mnt_dirh *d = (struct mnt_dirh *)(uintptr_t)fi->fh;
	struct mnt_table *t = mnt_req_fs(req)->tab;
	struct mnt_node *dnode = NULL;
	size_t pos = 0;
	char *buf;

	dnode = mnt_req_node(req, ino);
	if (!dnode)
		return;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? d->n : (size_t)off; i < d->n; i++) {
		const struct mnt_dent *de = &d->ents[i];
		struct fuse_entry_param e;
		struct mnt_node *child = NULL;
		size_t len;

		memset(&e, 0, sizeof(e));
		/* d_ino: our inode number where we have one (readdir(3) skips 0). */
		if (i == 0)
			e.attr.st_ino = dnode->ino;
		else if (i == 1)
			e.attr.st_ino = dnode->parent ? dnode->parent->ino : dnode->ino;
		else
			e.attr.st_ino = mnt_node_peek(t, dnode, de->name);
		if (!e.attr.st_ino)
			e.attr.st_ino = de->sino;
		e.attr.st_mode = DTTOIF(de->type);
		if (!plus) {
			len = fuse_add_direntry(req, buf + pos, size - pos, de->name, &e.attr,
						(off_t)(i + 1));
			if (len > size - pos)
				break;
			pos += len;
			continue;
		}
		if (i >= 2) {
			int rc = mnt_node_lookup(t, dnode, de->name, &e.attr, &child);

			if (rc == -ENOENT)
				continue; /* removed from the store since opendir */
			if (rc == 0) {
				e.ino = child->ino;
				e.attr_timeout = MNT_TIMEOUT;
				e.entry_timeout = MNT_TIMEOUT;
			} else {
				/* Listed, with no inode: a later stat() reports the error. */
				memset(&e.attr, 0, sizeof(e.attr));
				e.attr.st_ino = de->sino;
				e.attr.st_mode = DTTOIF(de->type);
			}
		}
		len = fuse_add_direntry_plus(req, buf + pos, size - pos, de->name, &e,
					     (off_t)(i + 1));
		if (len > size - pos) {
			if (child)
				mnt_node_forget(t, child, 1); /* not sent */
			break;
		}
		pos += len;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt_dirh *d = (struct mnt_dirh *)(uintptr_t)fi->fh;

	(void)ino;
	mnt_handle_del(mnt_req_fs(req), &d->link);
	dirh_free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	if (mnt_req_fs(req)->rw) {
		(void)fi;
		mnt_w_fsyncdir(req, ino, datasync);
		return;
	}
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(store_root_fd(mnt_req_fs(req)->st), &sv) < 0) {
		mnt_reply_err(req, -errno);
		return;
	}
	/* The store's filesystem, as it is: free space is where imports go. */
	fuse_reply_statfs(req, &sv);
}

/* --- extended attributes ------------------------------------------------------------ */

static const char *const xattr_names[] = {
	"user.faissfs.stored_bytes", "user.faissfs.chunks", "user.faissfs.chunk_size",
	"user.faissfs.codec",	     "user.faiss.type",	    "user.faiss.d",
	"user.faiss.ntotal",	     "user.faiss.metric",   "user.faissfs.id",
};

/* Writes the value of xattr @name of object @info into @buf (NUL-terminated,
 * the NUL not part of the value).  Returns its length or -ENODATA. */
static int xattr_value(const struct store_object *so, const char *name, char *buf, size_t size)
{
	const struct store_object_info *info = store_object_info(so);
	const struct store_faiss_info *fi = &info->faiss;
	const char *m;
	uint64_t id[2];

	if (!strcmp(name, "user.faissfs.id")) {
		/* The object's identity: its name in a remote store's bucket. */
		store_object_id(so, id);
		return snprintf(buf, size, "%016" PRIx64 "%016" PRIx64, id[0], id[1]);
	}
	if (!strcmp(name, "user.faissfs.stored_bytes"))
		return snprintf(buf, size, "%" PRIu64, info->stored);
	if (!strcmp(name, "user.faissfs.chunks"))
		return snprintf(buf, size, "%" PRIu64, info->nchunks);
	if (!strcmp(name, "user.faissfs.chunk_size"))
		return snprintf(buf, size, "%" PRIu32, info->chunk_size);
	if (!strcmp(name, "user.faissfs.codec"))
		return snprintf(buf, size, "zstd");
	if (!fi->valid)
		return -ENODATA;
	if (!strcmp(name, "user.faiss.type"))
		return snprintf(buf, size, "%s", store_faiss_type_name(fi->fourcc));
	if (!strcmp(name, "user.faiss.d"))
		return snprintf(buf, size, "%" PRId32, fi->d);
	if (!strcmp(name, "user.faiss.ntotal"))
		return snprintf(buf, size, "%" PRId64, fi->ntotal);
	if (!strcmp(name, "user.faiss.metric")) {
		if (fi->binary)
			return snprintf(buf, size, "Hamming");
		m = store_faiss_metric_name(fi->metric);
		return m ? snprintf(buf, size, "%s", m)
			 : snprintf(buf, size, "%" PRId32, fi->metric);
	}
	return -ENODATA;
}

/* The object behind @n for its xattrs: 1 and a reference, 0 for plain files,
 * directories, symlinks and special files, or -errno. */
static int node_obj_for_xattr(fuse_req_t req, struct mnt_node *n, struct mnt_obj **out)
{
	struct stat st;
	int fd, rc;

	if (n->type != S_IFREG)
		return 0;
	fd = mnt_node_open_file(n, &st);
	if (fd < 0)
		return fd;
	rc = mnt_node_object(mnt_req_fs(req)->st, n, fd, &st, out);
	close(fd);
	return rc;
}

/* Replies @len bytes of @val under the getxattr/listxattr size rules: size 0
 * asks for the length, a too-small buffer is ERANGE. */
static void reply_xattr_buf(fuse_req_t req, const char *val, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct mnt_node *n = mnt_req_node(req, ino);
	struct mnt_obj *ob = NULL;
	char val[128];
	int rc;

	if (!n)
		return;
	rc = node_obj_for_xattr(req, n, &ob);
	if (rc <= 0) {
		mnt_reply_err(req, rc < 0 ? rc : -ENODATA);
		return;
	}
	rc = xattr_value(ob->so, name, val, sizeof(val));
	mnt_node_object_put(n, ob);
	if (rc < 0)
		mnt_reply_err(req, rc);
	else
		reply_xattr_buf(req, val, (size_t)rc, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mnt_node *n = mnt_req_node(req, ino);
	struct mnt_obj *ob = NULL;
	char list[512], val[128];
	size_t len = 0;
	int rc;

	if (!n)
		return;
	rc = node_obj_for_xattr(req, n, &ob);
	if (rc < 0) {
		mnt_reply_err(req, rc);
		return;
	}
	for (size_t i = 0; rc > 0 && i < sizeof(xattr_names) / sizeof(xattr_names[0]); i++) {
		size_t nl = strlen(xattr_names[i]) + 1;

		if (xattr_value(ob->so, xattr_names[i], val, sizeof(val)) < 0)
			continue;
		memcpy(list + len, xattr_names[i], nl); /* fits: 9 names of < 32 bytes */
		len += nl;
	}
	mnt_node_object_put(n, ob);
	reply_xattr_buf(req, list, len, size);
}

/* --- everything that would change the store: EROFS, or write.c (-o rw) --------------- */

/* What a writable mount answers for what it does not support: xattr changes
 * (ENOTSUP). */
static int unsupported(fuse_req_t req, int err)
{
	return mnt_req_fs(req)->rw ? err : EROFS;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_setattr(req, ino, attr, to_set, fi);
		return;
	}
	(void)ino, (void)attr, (void)to_set, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_mknod(req, parent, name, mode, rdev);
		return;
	}
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_mkdir(req, parent, name, mode);
		return;
	}
	(void)parent, (void)name, (void)mode;
	fuse_reply_err(req, EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_unlink(req, parent, name, false);
		return;
	}
	(void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_unlink(req, parent, name, true);
		return;
	}
	(void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_symlink(req, link, parent, name);
		return;
	}
	(void)link, (void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct mnt_node *n = mnt_req_node(req, ino);
	char buf[PATH_MAX + 1];
	ssize_t len;

	if (!n)
		return;
	len = mnt_node_readlink(n, buf, sizeof(buf));
	if (len < 0)
		mnt_reply_err(req, (int)len);
	else
		fuse_reply_readlink(req, buf);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_rename(req, parent, name, newparent, newname, flags);
		return;
	}
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_link(req, ino, newparent, newname);
		return;
	}
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_write(req, buf, size, off, fi);
		return;
	}
	(void)ino, (void)buf, (void)size, (void)off, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_create(req, parent, name, mode, fi);
		return;
	}
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	fuse_reply_err(req, unsupported(req, ENOTSUP));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	fuse_reply_err(req, unsupported(req, ENOTSUP));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	if (mnt_req_fs(req)->rw) {
		mnt_w_fallocate(req, mode, offset, length, fi);
		return;
	}
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops mnt_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.readlink = op_readlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
};
