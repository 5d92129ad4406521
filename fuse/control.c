/* control.c - MOUNTPOINT/.faissfs/: the control directory and runtime settings.
 *
 * A virtual directory on reserved inode numbers (control.h), reachable by name
 * at the root but not listed there, so ls, du, find and copies of the mount
 * never see it.  Its files are made at open (metrics and stats by observe.c);
 * settings change through MNT_IOC_SET (faissfs set), or a write where the
 * kernel lets one through, only for the mount's owner or root; a bad value is
 * EINVAL and a log line.  No lock of its own: settings are atomics or owned by
 * the cache and the logger, which are thread-safe.
 */
#include "control.h"
#include "write.h"
#include "mount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "store/format.h"
#include "store/store.h"

#define SETTING_MAX 64u
#define CACHE_MIN   (1ull << 20)

/* --- settings ------------------------------------------------------------------------- */

static void render_setting(struct mnt_ctl *c, int which, struct metrics_buf *b);
static int apply_setting(struct mnt_ctl *c, int which, const char *val);

enum ctl_file {
	CF_METRICS,
	CF_STATS,
	CF_STATS_JSON,
	CF_STORE,
	CF_CACHE_SIZE,
	CF_LOG_LEVEL,
	CF_COMPRESSION_LEVEL,
	CF_COMPACTION,
	CF_READAHEAD,
	CF_COUNT,
};

struct ctl_file_def {
	const char *name;
	bool writable;
};

static const struct ctl_file_def ctl_files[CF_COUNT] = {
	[CF_METRICS] = {"metrics", false},
	[CF_STATS] = {"stats", false},
	[CF_STATS_JSON] = {"stats.json", false},
	[CF_STORE] = {"store", false},
	/* What each setting accepts: mnt_settings (setting.c), shared with faissfs set. */
	[CF_CACHE_SIZE] = {"cache_size", true},
	[CF_LOG_LEVEL] = {"log_level", true},
	[CF_COMPRESSION_LEVEL] = {"compression_level", true},
	[CF_COMPACTION] = {"compaction", true},
	[CF_READAHEAD] = {"readahead", true},
};

#define INO_DIR	   MNT_CTL_INO_FIRST
#define INO_OF(cf) (MNT_CTL_INO_FIRST + 1 + (cf))

static int file_of(fuse_ino_t ino)
{
	if (ino <= INO_DIR || ino >= INO_OF(CF_COUNT))
		return -1;
	return (int)(ino - INO_OF(0));
}

static void render_setting(struct mnt_ctl *c, int which, struct metrics_buf *b)
{
	static const char *const lvl_names[] = {"error", "warn", "info", "debug"};
	struct cache_stats cs;

	switch (which) {
	case CF_CACHE_SIZE:
		cache_get_stats(c->fs->cache, &cs);
		metrics_buf_printf(b, "%" PRIu64 "\n", cs.budget);
		break;
	case CF_LOG_LEVEL:
		metrics_buf_printf(b, "%s\n", lvl_names[log_get_level()]);
		break;
	case CF_COMPRESSION_LEVEL:
		metrics_buf_printf(b, "%d\n", atomic_load(&c->level));
		break;
	case CF_COMPACTION:
		metrics_buf_printf(b, "%s\n", atomic_load(&c->compaction) ? "on" : "off");
		break;
	case CF_READAHEAD:
		metrics_buf_printf(b, "%u\n", c->fs->ra ? mnt_ra_depth(c->fs->ra) : 0);
		break;
	default:
		break;
	}
}

/* Parses and applies @val to setting @which.  Returns 0 or -EINVAL. */
static int apply_setting(struct mnt_ctl *c, int which, const char *val)
{
	unsigned long long v;
	enum log_level lvl;
	char *end;
	long l;

	switch (which) {
	case CF_CACHE_SIZE:
		if (mnt_parse_size(val, &v) < 0 || v < CACHE_MIN || v > SIZE_MAX)
			return -EINVAL;
		cache_set_budget(c->fs->cache, (size_t)v);
		return 0;
	case CF_LOG_LEVEL:
		if (log_parse_level(val, &lvl) < 0)
			return -EINVAL;
		log_set_level(lvl);
		return 0;
	case CF_COMPRESSION_LEVEL:
		errno = 0;
		l = strtol(val, &end, 10);
		if (!*val || *end || errno || l < 1 || l > 19)
			return -EINVAL;
		atomic_store(&c->level, (int)l);
		if (c->fs->cmp)
			mnt_cmp_set_level(c->fs->cmp, (int)l);
		return 0;
	case CF_COMPACTION:
		if (!strcmp(val, "on") || !strcmp(val, "1"))
			atomic_store(&c->compaction, true);
		else if (!strcmp(val, "off") || !strcmp(val, "0"))
			atomic_store(&c->compaction, false);
		else
			return -EINVAL;
		if (c->fs->cmp)
			mnt_cmp_set_paused(c->fs->cmp, !atomic_load(&c->compaction));
		return 0;
	case CF_READAHEAD:
		errno = 0;
		l = strtol(val, &end, 10);
		if (!*val || *end || errno || l < 0 || l > MNT_RA_MAX_DEPTH || !c->fs->ra)
			return -EINVAL;
		return mnt_ra_set_depth(c->fs->ra, (unsigned)l);
	default:
		return -EINVAL;
	}
}

/* --- the control directory ------------------------------------------------------------ */

/* An open control file: its text as it was at open. */
struct ctl_fh {
	struct mnt_hlink link; /* first: listed in the mnt_fs while open (mnt.h) */
	char *text;
	size_t len;
};

static void ctl_fh_free(struct mnt_hlink *h)
{
	struct ctl_fh *fh = (struct ctl_fh *)h;

	free(fh->text);
	free(fh);
}

static struct mnt_ctl *req_ctl(fuse_req_t req)
{
	return mnt_req_fs(req)->ctl;
}

static void ctl_stat(struct mnt_ctl *c, fuse_ino_t ino, struct stat *st)
{
	int f = file_of(ino);

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = c->owner;
	st->st_gid = c->group;
	st->st_atim = st->st_mtim = st->st_ctim = c->started;
	if (ino == INO_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		/* Size 0 and direct I/O, like /proc: the text is made at open. */
		st->st_mode = S_IFREG | (ctl_files[f].writable ? 0644 : 0444);
		st->st_nlink = 1;
	}
}

static void reply_ctl_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = ino;
	ctl_stat(req_ctl(req), ino, &e.attr);
	e.entry_timeout = MNT_TIMEOUT; /* the names never change */
	e.attr_timeout = 0;
	fuse_reply_entry(req, &e);
}

bool mnt_ctl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent == FUSE_ROOT_ID && !strcmp(name, MNT_CTL_NAME)) {
		reply_ctl_entry(req, INO_DIR);
		return true;
	}
	if (parent != INO_DIR)
		return false;
	for (int i = 0; i < CF_COUNT; i++) {
		if (!strcmp(name, ctl_files[i].name)) {
			reply_ctl_entry(req, INO_OF(i));
			return true;
		}
	}
	fuse_reply_err(req, ENOENT);
	return true;
}

void mnt_ctl_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;

	if (ino != INO_DIR && file_of(ino) < 0) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	ctl_stat(req_ctl(req), ino, &st);
	fuse_reply_attr(req, &st, 0);
}

/* True if the caller may change settings: the mount's owner, or root. */
static bool may_write(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return ctx->uid == req_ctl(req)->owner || ctx->uid == 0;
}

void mnt_ctl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set)
{
	int f = file_of(ino);
	struct stat st;

	(void)attr;
	/* Only the truncate of `echo VALUE > setting` (and times, ignored). */
	if (f < 0 || !ctl_files[f].writable ||
	    (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (!may_write(req)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	ctl_stat(req_ctl(req), ino, &st);
	fuse_reply_attr(req, &st, 0);
}

void mnt_ctl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt_ctl *c = req_ctl(req);
	struct metrics_buf b = METRICS_BUF_INIT;
	struct ctl_fh *fh;
	int f = file_of(ino);

	if (ino == INO_DIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (f < 0) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		if (!ctl_files[f].writable) {
			fuse_reply_err(req, EACCES);
			return;
		}
		if (!may_write(req)) {
			log_warn("control: uid %u may not change %s/%s (only the mount's owner, "
				 "uid %u, or root)",
				 (unsigned)fuse_req_ctx(req)->uid, MNT_CTL_NAME, ctl_files[f].name,
				 (unsigned)c->owner);
			fuse_reply_err(req, EACCES);
			return;
		}
	}
	switch (f) {
	case CF_METRICS:
		mnt_ctl_render_metrics(c, &b);
		break;
	case CF_STATS:
		mnt_ctl_render_stats(c, &b, false);
		break;
	case CF_STATS_JSON:
		mnt_ctl_render_stats(c, &b, true);
		break;
	case CF_STORE:
		metrics_buf_printf(&b, "%s\n", c->store);
		break;
	default:
		render_setting(c, f, &b);
		break;
	}
	fh = calloc(1, sizeof(*fh));
	if (!fh || !(fh->text = metrics_buf_take(&b, &fh->len))) {
		free(fh);
		metrics_buf_release(&b);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)fh;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	mnt_handle_add(mnt_req_fs(req), &fh->link, ctl_fh_free);
	if (fuse_reply_open(req, fi) != 0) {
		mnt_handle_del(mnt_req_fs(req), &fh->link);
		ctl_fh_free(&fh->link);
	}
}

void mnt_ctl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct ctl_fh *fh = (struct ctl_fh *)(uintptr_t)fi->fh;
	char *copy;

	(void)ino;
	if (off < 0 || (size_t)off >= fh->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > fh->len - (size_t)off)
		size = fh->len - (size_t)off;
	/* Reply from a copy: once the kernel has the bytes, the reader may close the file
	 * and the release, on another thread, frees fh->text while this thread is still
	 * inside writev() (ASan's interceptor reads the iovec after the call returns and
	 * reported a use after free in test_preload, which polls the metrics). */
	copy = malloc(size);
	if (!copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(copy, fh->text + off, size);
	fuse_reply_buf(req, copy, size);
	free(copy);
}

/* Sets setting file @f to @val (@n bytes, trailing whitespace ignored) for
 * the caller of @req.  Returns 0, -EACCES, -EPERM (not a setting) or -EINVAL,
 * each refusal logged. */
static int set_value(fuse_req_t req, int f, const char *val, size_t n)
{
	struct mnt_ctl *c = req_ctl(req);
	unsigned uid = (unsigned)fuse_req_ctx(req)->uid;
	char v[SETTING_MAX];

	if (f < 0 || !ctl_files[f].writable)
		return -EPERM;
	if (!may_write(req)) {
		log_warn("control: uid %u may not change %s (only the mount's owner, uid %u, or "
			 "root)",
			 uid, ctl_files[f].name, (unsigned)c->owner);
		return -EACCES;
	}
	while (n && (val[n - 1] == '\n' || val[n - 1] == ' ' || val[n - 1] == '\t' ||
		     val[n - 1] == '\0'))
		n--;
	if (n == 0 || n >= sizeof(v) || memchr(val, '\0', n)) {
		log_warn("control: refused an empty or overlong value for %s (%s)",
			 ctl_files[f].name, mnt_setting_find(ctl_files[f].name)->accepts);
		return -EINVAL;
	}
	memcpy(v, val, n);
	v[n] = '\0';
	if (apply_setting(c, f, v) < 0) {
		log_warn("control: bad value '%s' for %s (%s); setting unchanged", v,
			 ctl_files[f].name, mnt_setting_find(ctl_files[f].name)->accepts);
		return -EINVAL;
	}
	if ((f == CF_COMPRESSION_LEVEL || f == CF_COMPACTION) && !c->fs->cmp)
		log_info("control: %s set to %s by uid %u (stored; it takes effect on a mount "
			 "that is writable, with compaction on)",
			 ctl_files[f].name, v, uid);
	else
		log_info("control: %s set to %s by uid %u", ctl_files[f].name, v, uid);
	return 0;
}

void mnt_ctl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	int rc;

	(void)fi;
	/* One value per write, from the start: `echo 512M > cache_size` (on a mount
	 * the kernel does not hold read-only). */
	rc = off == 0 ? set_value(req, file_of(ino), buf, size) : -EINVAL;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

void mnt_ctl_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, const void *in_buf,
		   size_t in_bufsz)
{
	int rc;

	if (cmd != MNT_IOC_SET || in_bufsz != sizeof(struct mnt_set_arg)) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	rc = set_value(req, file_of(ino), in_buf, strnlen(in_buf, in_bufsz));
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}

void mnt_ctl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ctl_fh *fh = (struct ctl_fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh) {
		mnt_handle_del(mnt_req_fs(req), &fh->link);
		ctl_fh_free(&fh->link);
	}
	fuse_reply_err(req, 0);
}

void mnt_ctl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != INO_DIR) {
		fuse_reply_err(req, file_of(ino) < 0 ? ESTALE : ENOTDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

void mnt_ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi, bool plus)
{
	struct mnt_ctl *c = req_ctl(req);
	char *buf = malloc(size ? size : 1);
	size_t pos = 0;

	(void)fi;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Entries: 0 ".", 1 "..", then the files. */
	for (off_t i = off < 0 ? CF_COUNT + 2 : off; i < CF_COUNT + 2; i++) {
		struct fuse_entry_param e;
		const char *name;
		size_t len;

		memset(&e, 0, sizeof(e));
		if (i == 0) {
			name = ".";
			ctl_stat(c, ino, &e.attr);
		} else if (i == 1) {
			name = "..";
			e.attr.st_ino = FUSE_ROOT_ID;
			e.attr.st_mode = S_IFDIR;
		} else {
			name = ctl_files[i - 2].name;
			ctl_stat(c, INO_OF(i - 2), &e.attr);
		}
		if (plus && i >= 2) {
			e.ino = e.attr.st_ino;
			e.entry_timeout = MNT_TIMEOUT;
			len = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, i + 1);
		} else if (plus) {
			len = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, i + 1);
		} else {
			len = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr, i + 1);
		}
		if (len > size - pos)
			break;
		pos += len;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

void mnt_ctl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void mnt_ctl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

void mnt_ctl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}
