/* passthrough.c - a minimal read-only passthrough FUSE daemon: the benchmark's measure of
 * FUSE's own overhead (bench/bench_read.sh).
 *
 *     ffs_passthrough SOURCE_DIR MOUNTPOINT [-o kernel_readahead_kb=N]
 *
 * Serves SOURCE_DIR read-only, in the foreground, with the kernel settings faissfs uses:
 * max_read 1 MiB, keep_cache, 1 h entry/attr timeouts, the multithreaded loop (8
 * threads), async reads, and the same kernel read-ahead window (raised through
 * /sys/class/bdi/<dev>/read_ahead_kb in INIT, default 1024 KiB; 0 keeps the kernel's).
 * Reads are answered from the source file's fd (fuse_reply_data, splice when the kernel
 * allows).  Only what the benchmark needs: lookup, forget, getattr, open, read, release,
 * opendir/readdir/releasedir.  Each lookup makes a new inode (no sharing), freed when
 * the kernel forgets it: enough for a few files under long timeouts.
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PT_IO_MAX  (1u << 20)
#define PT_TIMEOUT 3600.0

struct pt_inode {
	int fd;		  /* O_PATH */
	uint64_t nlookup; /* atomic */
};

struct pt {
	struct pt_inode root;
	const char *mnt;
	unsigned ra_kb;
};

static struct pt *pt_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct pt_inode *pt_inode(fuse_req_t req, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &pt_of(req)->root : (struct pt_inode *)(uintptr_t)ino;
}

/* Raises the bdi read-ahead window of our mount (found in mountinfo: safe inside INIT). */
static void pt_raise_ra(const char *mnt, unsigned kb)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], dev[32] = "", d[32], path[4096], sys[96];
	int fd;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*u %*u %31s %*s %4095s", d, path) == 2 && strcmp(path, mnt) == 0)
			snprintf(dev, sizeof(dev), "%s", d);
	fclose(f);
	if (!*dev)
		return;
	snprintf(sys, sizeof(sys), "/sys/class/bdi/%s/read_ahead_kb", dev);
	fd = open(sys, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dprintf(fd, "%u\n", kb);
		close(fd);
	}
}

static void pt_init(void *userdata, struct fuse_conn_info *conn)
{
	struct pt *pt = userdata;

	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->max_read = PT_IO_MAX;
	conn->max_write = PT_IO_MAX;
	if (pt->ra_kb) {
		pt_raise_ra(pt->mnt, pt->ra_kb);
		conn->max_readahead = pt->ra_kb * 1024u;
	} else if (conn->max_readahead > PT_IO_MAX) {
		conn->max_readahead = PT_IO_MAX;
	}
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pt_inode *p = pt_inode(req, parent), *n;
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	n = calloc(1, sizeof(*n));
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n->fd = openat(p->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (n->fd < 0 || fstatat(n->fd, "", &e.attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;

		if (n->fd >= 0)
			close(n->fd);
		free(n);
		fuse_reply_err(req, err);
		return;
	}
	n->nlookup = 1;
	e.ino = (uintptr_t)n;
	e.attr_timeout = PT_TIMEOUT;
	e.entry_timeout = PT_TIMEOUT;
	if (fuse_reply_entry(req, &e) != 0) {
		close(n->fd);
		free(n);
	}
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct pt_inode *n = pt_inode(req, ino);

	if (n != &pt_of(req)->root &&
	    __atomic_sub_fetch(&n->nlookup, nlookup, __ATOMIC_ACQ_REL) == 0) {
		close(n->fd);
		free(n);
	}
	fuse_reply_none(req);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (fstatat(pt_inode(req, ino)->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, PT_TIMEOUT);
}

/* Reopens the O_PATH fd of @ino with @flags through /proc/self/fd. */
static int pt_reopen(fuse_req_t req, fuse_ino_t ino, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", pt_inode(req, ino)->fd);
	return open(path, flags | O_CLOEXEC);
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fd = pt_reopen(req, ino, O_RDONLY);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0)
		close(fd);
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	(void)ino;
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = (int)fi->fh;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, 0);
}

static void pt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void pt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd = pt_reopen(req, ino, O_RDONLY | O_DIRECTORY);
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		closedir(d);
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	struct dirent *de;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	seekdir(d, off);
	while ((de = readdir(d))) {
		struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)de->d_type << 12};
		size_t n = fuse_add_direntry(req, buf + used, size - used, de->d_name, &st,
					     telldir(d));

		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	closedir((DIR *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops pt_ops = {
	.init = pt_init,
	.lookup = pt_lookup,
	.forget = pt_forget,
	.getattr = pt_getattr,
	.open = pt_open,
	.read = pt_read,
	.release = pt_release,
	.opendir = pt_opendir,
	.readdir = pt_readdir,
	.releasedir = pt_releasedir,
};

int main(int argc, char *argv[])
{
	char *args_v[] = {argv[0], "-o",
			  "ro,default_permissions,fsname=ffs_passthrough,max_read=1048576"};
	struct fuse_args args = FUSE_ARGS_INIT(3, args_v);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	struct pt pt = {.root.fd = -1, .ra_kb = 1024};
	char *mnt = NULL;
	int ret = 1;

	if (argc == 5 && strncmp(argv[4], "kernel_readahead_kb=", 20) == 0 &&
	    strcmp(argv[3], "-o") == 0)
		pt.ra_kb = (unsigned)strtoul(argv[4] + 20, NULL, 10);
	else if (argc != 3) {
		fprintf(stderr, "usage: %s SOURCE_DIR MOUNTPOINT [-o kernel_readahead_kb=N]\n",
			argv[0]);
		return 2;
	}
	mnt = realpath(argv[2], NULL);
	pt.root.fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!mnt || pt.root.fd < 0) {
		fprintf(stderr, "ffs_passthrough: cannot use %s or %s: %s\n", argv[1], argv[2],
			strerror(errno));
		goto out;
	}
	pt.mnt = mnt;
	se = fuse_session_new(&args, &pt_ops, sizeof(pt_ops), &pt);
	if (!se || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mnt) != 0) {
		fprintf(stderr, "ffs_passthrough: cannot mount at %s (see above)\n", mnt);
		goto out;
	}
	cfg = fuse_loop_cfg_create();
	if (cfg) {
		fuse_loop_cfg_set_max_threads(cfg, 8);
		ret = fuse_session_loop_mt(se, cfg) < 0;
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(se);
out:
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	if (pt.root.fd >= 0)
		close(pt.root.fd);
	free(mnt);
	return ret;
}
