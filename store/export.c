/* export.c - write every file of a store back out as ordinary files (store_export()).
 *
 * DST must be new or an empty directory.  The store is walked from its root
 * (store_walk(): ".faissfs" skipped, names sorted, no symlink followed) into a
 * list first, so progress knows the totals; then directories are created,
 * objects are decompressed piece by piece and plain files copied, all-zero chunks
 * are left as holes, and each file gets its mode and mtime; symlinks are made
 * with the same target, FIFOs, sockets and devices with mknodat (these get their
 * owner too, as import keeps it); the names of one store inode (hard links)
 * become hard links to the first name exported.  Directories get their mode and
 * mtime last, deepest first.  A corrupt chunk stops the export: what was written
 * stays, and the file that failed is named.  One thread; the store is only read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "store.h"
#include "store_internal.h"
#include "util/log.h"

#define PIECE_MIN (8u << 20) /* bytes decompressed per store_object_pread() call */

#define NO_LINK SIZE_MAX

struct xentry {
	char *rel;
	bool dir;
	bool object;
	mode_t type; /* S_IFMT bits */
	mode_t mode; /* permission bits */
	uid_t uid;
	gid_t gid;
	dev_t rdev; /* devices */
	dev_t dev;  /* of the store inode: hard links are grouped by (dev, ino) */
	ino_t ino;
	nlink_t nlink;
	struct timespec mtime;
	uint64_t size;	/* logical */
	char *target;	/* a symlink's target */
	size_t link_to; /* an earlier name of the same store inode, or NO_LINK */
};

struct xscan {
	struct store *st;
	struct xentry *v;
	size_t n, cap;
	uint64_t bytes, files;
	uint64_t symlinks, nodes, links;
	dev_t dst_dev;
	ino_t dst_ino;
};

/* Adds @rel to the list (@target of a symlink taken over, freed on failure).
 * Returns 0 or -ENOMEM. */
static int xscan_add(struct xscan *sc, const char *rel, const struct stat *sb, bool object,
		     uint64_t size, char *target)
{
	struct xentry *e;

	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct xentry *v = realloc(sc->v, cap * sizeof(*v));

		if (!v) {
			free(target);
			return -ENOMEM;
		}
		sc->v = v;
		sc->cap = cap;
	}
	e = &sc->v[sc->n];
	memset(e, 0, sizeof(*e));
	e->rel = strdup(rel);
	if (!e->rel) {
		free(target);
		return -ENOMEM;
	}
	e->dir = S_ISDIR(sb->st_mode);
	e->object = object;
	e->type = sb->st_mode & S_IFMT;
	e->mode = sb->st_mode & 07777;
	e->uid = sb->st_uid;
	e->gid = sb->st_gid;
	e->rdev = sb->st_rdev;
	e->dev = sb->st_dev;
	e->ino = sb->st_ino;
	e->nlink = sb->st_nlink;
	e->mtime = sb->st_mtim;
	e->size = size;
	e->target = target;
	e->link_to = NO_LINK;
	sc->n++;
	return 0;
}

static int cmp_inode(const void *a, const void *b, void *arg)
{
	const struct xentry *v = arg;
	const struct xentry *x = &v[*(const size_t *)a], *y = &v[*(const size_t *)b];

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Groups the names of one store inode (non-directories with st_nlink > 1): each
 * name after the first in walk order gets link_to = the first.  Then counts the
 * files and bytes to write.  Returns 0 or -ENOMEM. */
static int xscan_group(struct xscan *sc)
{
	size_t *ix, n = 0;

	ix = malloc((sc->n ? sc->n : 1) * sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	for (size_t i = 0; i < sc->n; i++)
		if (!sc->v[i].dir && sc->v[i].nlink > 1)
			ix[n++] = i;
	qsort_r(ix, n, sizeof(*ix), cmp_inode, sc->v);
	for (size_t i = 1; i < n; i++) {
		const struct xentry *first = &sc->v[ix[i - 1]];
		struct xentry *e = &sc->v[ix[i]];

		if (e->dev == first->dev && e->ino == first->ino)
			e->link_to = first->link_to != NO_LINK ? first->link_to : ix[i - 1];
	}
	free(ix);
	for (size_t i = 0; i < sc->n; i++) {
		const struct xentry *e = &sc->v[i];

		if (e->dir)
			continue;
		sc->files++;
		if (e->link_to != NO_LINK)
			sc->links++;
		else if (S_ISLNK(e->type))
			sc->symlinks++;
		else if (!S_ISREG(e->type))
			sc->nodes++;
		else
			sc->bytes += e->size;
	}
	return 0;
}

/* What failed, for the ERR_* entries of the walk. */
static const char *walk_verb(enum store_walk_type t)
{
	return t == STORE_WALK_ERR_LIST ? "list" : t == STORE_WALK_ERR_OPEN ? "open" : "examine";
}

/* store_walk() callback: adds each directory, file, symlink and special file of
 * the store to the list @arg (a struct xscan), in pre-order.  A mount point, or an
 * entry that cannot be read, stops the export (logged). */
static int xscan_one(void *arg, const struct store_walk_entry *e)
{
	struct xscan *sc = arg;
	const char *sp = store_path(sc->st);
	char *target = NULL;
	uint64_t size = 0;
	mode_t m;
	int fd, r;

	switch (e->type) {
	case STORE_WALK_DIR:
		if (e->st->st_dev == sc->dst_dev && e->st->st_ino == sc->dst_ino) {
			log_error("export: DST %s/%s is inside the store; choose a DST outside %s",
				  sp, e->rel, sp);
			return -EINVAL;
		}
		return xscan_add(sc, e->rel, e->st, false, 0, NULL);
	case STORE_WALK_FILE:
		fd = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			log_error("export: cannot open %s/%s: %s; check the store's permissions",
				  sp, e->rel, strerror(-r));
			return r;
		}
		r = store_object_probe(fd, e->rel, &size);
		close(fd);
		if (r < 0) {
			log_error(
				"export: cannot read %s/%s: %s; repair it (import the file again) "
				"or move it out of the store",
				sp, e->rel, strerror(-r));
			return r;
		}
		return xscan_add(sc, e->rel, e->st, r == 1,
				 r == 1 ? size : (uint64_t)e->st->st_size, NULL);
	case STORE_WALK_OTHER:
		m = e->st->st_mode;
		if (S_ISLNK(m)) {
			r = store_readlink_at(e->dirfd, e->name, e->st->st_size, &target);
			if (r < 0) {
				log_error("export: cannot read the symbolic link %s/%s: %s", sp,
					  e->rel, strerror(-r));
				return r;
			}
			return xscan_add(sc, e->rel, e->st, false, 0, target);
		}
		if (S_ISFIFO(m) || S_ISSOCK(m) || S_ISCHR(m) || S_ISBLK(m))
			return xscan_add(sc, e->rel, e->st, false, 0, NULL);
		log_error("export: %s/%s is %s; export does not cross into another filesystem: "
			  "unmount it or move it out of the store, then export again",
			  sp, e->rel, S_ISDIR(m) ? "a mount point" : "of an unknown file type");
		return -EINVAL;
	default:
		log_error("export: cannot %s %s/%s: %s; check the store's permissions",
			  walk_verb(e->type), sp, e->rel, strerror(-e->err));
		return e->err;
	}
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Writes @len bytes at @off, leaving runs of @hole all-zero bytes unwritten. */
static int write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t off, size_t hole)
{
	for (size_t p = 0; p < len;) {
		size_t n = len - p < hole ? len - p : hole;

		if (!all_zero(buf + p, n)) {
			for (size_t w = 0; w < n;) {
				ssize_t k = pwrite(fd, buf + p + w, n - w, (off_t)(off + p + w));

				if (k < 0 && errno == EINTR)
					continue;
				if (k < 0)
					return -errno;
				w += (size_t)k;
			}
		}
		p += n;
	}
	return 0;
}

struct xctx {
	struct store *st;
	int dstfd;
	const char *dst;
	struct store_dctx *dc;
	uint8_t *buf;
	size_t bufsize;
	struct store_progress pr;
};

/* Writes one file of the store to DST.  Returns 0 or -errno, logged. */
static int export_file(struct xctx *x, const struct xentry *e)
{
	const char *sp = store_path(x->st);
	struct store_object *o = NULL;
	char *logname = NULL;
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, e->mtime};
	uint64_t off = 0, hole = FMT_CHUNK_MIN;
	int in = -1, out = -1, r = 0;
	const char *what = "read";
	bool created = false;

	if (asprintf(&logname, "%s/%s", sp, e->rel) < 0)
		return -ENOMEM;
	in = openat(store_root_fd(x->st), e->rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		r = -errno;
		goto fail;
	}
	if (e->object) {
		r = store_object_open_fd(in, logname, &o);
		if (r < 0)
			goto fail;
		hole = store_object_info(o)->chunk_size;
		if (store_object_info(o)->size != e->size) {
			r = -EAGAIN; /* replaced since the scan */
			goto fail;
		}
	}
	out = openat(x->dstfd, e->rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		what = "create";
		goto fail;
	}
	created = true;
	while (off < e->size) {
		size_t want = e->size - off < x->bufsize ? (size_t)(e->size - off) : x->bufsize;
		ssize_t n;

		if (o)
			n = store_object_pread(o, x->dc, x->buf, want, off);
		else
			n = store_pread_full(in, x->buf, want, off);
		if (n < 0) {
			r = (int)n;
			goto fail;
		}
		if (n == 0) {
			r = -EAGAIN; /* shorter than when listed */
			goto fail;
		}
		r = write_sparse(out, x->buf, (size_t)n, off, hole);
		if (r < 0) {
			what = "write";
			goto fail;
		}
		off += (uint64_t)n;
		x->pr.bytes_done += (uint64_t)n;
		store_progress_show(&x->pr, false);
	}
	what = "write";
	if (ftruncate(out, (off_t)e->size) < 0 || fchmod(out, e->mode) < 0 ||
	    futimens(out, ts) < 0) {
		r = -errno;
		goto fail;
	}
	r = close(out) < 0 ? -errno : 0;
	out = -1;
	if (r < 0)
		goto fail;
	goto done;
fail:
	if (r == -EAGAIN)
		log_error("export: %s changed while being exported; stop whatever writes to the "
			  "store, then export again into an empty DST",
			  logname);
	else
		log_error("export: stopped at %s: cannot %s it%s%s: %s; DST %s keeps the files "
			  "written before it%s%s%s; %s, then export again into an empty DST",
			  logname, what, strcmp(what, "read") ? " to " : "",
			  strcmp(what, "read") ? x->dst : "", strerror(-r), x->dst,
			  created ? " and an incomplete " : "", created ? e->rel : "",
			  created ? " (delete it)" : "",
			  r == -EUCLEAN ? "import that file again from its source"
					: "fix the cause");
done:
	if (out >= 0)
		close(out);
	store_object_free(o);
	if (in >= 0)
		close(in);
	free(logname);
	return r;
}

/* Writes the symlink, FIFO, socket or device @e of the store to DST (symlinkat with
 * the same target, or mknodat), or, if it is a later name of a store inode, a hard
 * link to @first's name in DST.  Then gives a new node @e's owner (left as it is
 * without the privilege, with a warning), mode (not on a symlink) and mtime, never
 * following it.  Returns 0 or -errno, logged. */
static int export_node(struct xctx *x, const struct xentry *e, const struct xentry *first)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, e->mtime};
	const char *what = "create";
	int r;

	if (first) {
		r = linkat(x->dstfd, first->rel, x->dstfd, e->rel, 0);
		if (r < 0) {
			r = -errno;
			log_error("export: cannot make %s/%s a hard link to %s/%s: %s; check "
				  "DST's permissions",
				  x->dst, e->rel, x->dst, first->rel, strerror(-r));
		}
		return r;
	}
	if (S_ISLNK(e->type))
		r = symlinkat(e->target, x->dstfd, e->rel);
	else
		r = mknodat(x->dstfd, e->rel, e->type | 0600, e->rdev);
	if (r < 0)
		goto fail;
	what = "set the owner, mode or mtime of";
	if (fchownat(x->dstfd, e->rel, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != EPERM)
			goto fail;
		log_warn("export: cannot give %s/%s the owner %ld:%ld it has in the store (not "
			 "privileged)",
			 x->dst, e->rel, (long)e->uid, (long)e->gid);
	}
	/* A node we just made, not a symlink: fchmodat() does not follow it. */
	if (!S_ISLNK(e->type) && fchmodat(x->dstfd, e->rel, e->mode, 0) < 0)
		goto fail;
	if (utimensat(x->dstfd, e->rel, ts, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	return 0;
fail:
	r = -errno;
	log_error("export: cannot %s %s/%s: %s; %s", what, x->dst, e->rel, strerror(-r),
		  r == -EPERM && !S_ISLNK(e->type) ? "device nodes need the CAP_MKNOD privilege "
						     "(run export as root)"
						   : "check DST's permissions and free space");
	return r;
}

/* Opens DST, creating it (0755) if missing; refuses anything but an empty directory. */
static int open_dst(const char *dst)
{
	struct dirent *de;
	DIR *d;
	int fd, r;

	if (mkdir(dst, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		log_error("export: cannot create DST %s: %s; give a path whose parent exists "
			  "and is writable",
			  dst, strerror(-r));
		return r;
	}
	fd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENOTDIR || errno == ELOOP ? -EEXIST : -errno;
		log_error("export: DST %s %s; give a new path or an empty directory", dst,
			  r == -EEXIST ? "exists and is not a directory" : strerror(-r));
		return r;
	}
	r = dup(fd);
	d = r >= 0 ? fdopendir(r) : NULL;
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((errno = 0, de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	r = de ? -EEXIST : -errno;
	closedir(d);
	if (r < 0) {
		if (r == -EEXIST)
			log_error("export: DST %s is not empty; export needs a new path or an "
				  "empty directory (nothing was written)",
				  dst);
		close(fd);
		return r;
	}
	return fd;
}

int store_export(struct store *st, const char *dst, bool progress)
{
	struct xscan sc = {.st = st};
	struct xctx x = {.st = st, .dst = dst, .dstfd = -1};
	uint32_t cs = store_default_params(st)->chunk_size;
	double t0 = store_now(), secs;
	struct stat sb;
	int r;

	x.dstfd = open_dst(dst);
	if (x.dstfd < 0)
		return x.dstfd;
	if (fstat(x.dstfd, &sb) < 0) {
		r = -errno;
		goto out;
	}
	sc.dst_dev = sb.st_dev;
	sc.dst_ino = sb.st_ino;
	r = store_walk(st, "", xscan_one, &sc);
	if (r == 0)
		r = xscan_group(&sc);
	if (r < 0)
		goto out;

	x.bufsize = PIECE_MIN > 8 * (size_t)cs ? PIECE_MIN : 8 * (size_t)cs;
	x.buf = malloc(x.bufsize);
	x.dc = store_dctx_new();
	if (!x.buf || !x.dc) {
		r = -ENOMEM;
		goto out;
	}
	store_progress_start(&x.pr, "export", progress);
	x.pr.files_total = sc.files;
	x.pr.bytes_total = sc.bytes;

	for (size_t i = 0; i < sc.n && r == 0; i++) {
		const struct xentry *e = &sc.v[i];

		if (e->dir) {
			if (mkdirat(x.dstfd, e->rel, 0700) < 0) {
				r = -errno;
				log_error("export: cannot create %s/%s: %s; check DST's "
					  "permissions and free space",
					  dst, e->rel, strerror(-r));
			}
			continue;
		}
		if (e->link_to != NO_LINK)
			r = export_node(&x, e, &sc.v[e->link_to]);
		else if (S_ISREG(e->type))
			r = export_file(&x, e);
		else
			r = export_node(&x, e, NULL);
		if (r == 0)
			x.pr.files_done++;
		store_progress_show(&x.pr, false);
	}
	for (size_t i = sc.n; r == 0 && i-- > 0;) {
		const struct xentry *e = &sc.v[i];
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, e->mtime};

		if (!e->dir)
			continue;
		if (fchmodat(x.dstfd, e->rel, e->mode, 0) < 0 ||
		    utimensat(x.dstfd, e->rel, ts, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			log_error("export: cannot set the mode or mtime of %s/%s: %s", dst, e->rel,
				  strerror(-r));
		}
	}
	store_progress_show(&x.pr, true);
	store_progress_end(&x.pr);
	secs = store_now() - t0;
	log_info("export: %s %llu of %llu files (%llu symlinks, %llu special files, %llu "
		 "extra hard links), %.1f MiB in %.1f s, %.1f MiB/s",
		 r == 0 ? "done:" : "stopped after", (unsigned long long)x.pr.files_done,
		 (unsigned long long)sc.files, (unsigned long long)sc.symlinks,
		 (unsigned long long)sc.nodes, (unsigned long long)sc.links,
		 (double)x.pr.bytes_done / 1048576.0, secs,
		 secs > 0 ? (double)x.pr.bytes_done / secs / 1048576.0 : 0.0);
out:
	store_dctx_free(x.dc);
	free(x.buf);
	for (size_t i = 0; i < sc.n; i++) {
		free(sc.v[i].rel);
		free(sc.v[i].target);
	}
	free(sc.v);
	close(x.dstfd);
	return r;
}
