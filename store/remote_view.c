/* remote_view.c - bringing a remote store's local view (remote.c) to the
 * bucket's current manifest.
 *
 * The view is a store directory of reference files.  A sync first removes what
 * the manifest no longer has (or has as another type), deepest first, then
 * creates directories and writes each reference file that differs (temp file in
 * .faissfs/tmp, then rename over the old one: a reader sees the old or the new
 * reference, and an object opened from the old one keeps reading the old object,
 * which the bucket keeps).  Modes and times come from the manifest.  Every path
 * is opened one component at a time without following symlinks.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote/remote.h"
#include "util/log.h"

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens the directory holding @path below @root without following a symlink
 * anywhere; sets *base to the last component.  Returns the fd or -errno. */
static int open_parent(int root, const char *path, const char **base)
{
	char comp[NAME_MAX + 1];
	const char *p = path, *slash;
	int fd = dup(root), nfd;

	if (fd < 0)
		return -errno;
	while ((slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);

		if (len == 0 || len > NAME_MAX) {
			close(fd);
			return -EINVAL;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return -errno;
		fd = nfd;
		p = slash + 1;
	}
	*base = p;
	return fd;
}

/* --- removal pass ---------------------------------------------------------------- */

struct rm_walk {
	const struct store_manifest *m;
	char **sorted; /* the manifest's paths, sorted */
	size_t *order; /* manifest index of each sorted path */
	char **gone;   /* paths to remove, in walk order */
	size_t ngone, capgone;
	int err;
};

static const struct store_manifest_entry *find(const struct rm_walk *w, const char *path)
{
	char *const *hit = bsearch(&path, w->sorted, w->m->n, sizeof(char *), cmp_path);

	return hit ? &w->m->e[w->order[hit - w->sorted]] : NULL;
}

static int rm_visit(void *arg, const struct store_walk_entry *e)
{
	struct rm_walk *w = arg;
	const struct store_manifest_entry *me;
	bool keep;

	if (e->depth == 0 && !strcmp(e->name, FMT_META_DIR))
		return STORE_WALK_SKIP;
	if (e->type >= STORE_WALK_ERR_STAT)
		return e->err ? e->err : -EIO;
	me = find(w, e->rel);
	keep = me && ((me->dir && e->type == STORE_WALK_DIR) ||
		      (!me->dir && e->type == STORE_WALK_FILE));
	if (keep)
		return 0;
	if (w->ngone == w->capgone) {
		size_t cap = w->capgone ? 2 * w->capgone : 64;
		char **ng = realloc(w->gone, cap * sizeof(*ng));

		if (!ng)
			return -ENOMEM;
		w->gone = ng;
		w->capgone = cap;
	}
	w->gone[w->ngone] = strdup(e->rel);
	if (!w->gone[w->ngone])
		return -ENOMEM;
	w->ngone++;
	return 0; /* a directory's entries come next, and go first */
}

static int remove_gone(int root, const struct store_manifest *m, store_remote_changed_fn fn,
		       void *arg, unsigned *removed)
{
	struct rm_walk w = { .m = m };
	int ret = -ENOMEM;

	w.sorted = malloc((m->n ? m->n : 1) * sizeof(char *));
	w.order = malloc((m->n ? m->n : 1) * sizeof(size_t));
	if (!w.sorted || !w.order)
		goto out;
	for (size_t i = 0; i < m->n; i++)
		w.sorted[i] = m->e[i].path;
	qsort(w.sorted, m->n, sizeof(char *), cmp_path);
	for (size_t i = 0; i < m->n; i++) {
		char **hit = bsearch(&m->e[i].path, w.sorted, m->n, sizeof(char *), cmp_path);

		w.order[hit - w.sorted] = i;
	}
	ret = store_walk_dir(root, rm_visit, &w);
	for (size_t i = w.ngone; ret == 0 && i-- > 0;) {
		const char *base;
		int dfd = open_parent(root, w.gone[i], &base);

		if (dfd < 0) {
			ret = dfd;
			break;
		}
		if (unlinkat(dfd, base, 0) && (errno != EISDIR || unlinkat(dfd, base, AT_REMOVEDIR)))
			ret = errno == ENOENT ? 0 : -errno;
		close(dfd);
		if (ret == 0) {
			(*removed)++;
			if (fn)
				fn(arg, w.gone[i]);
		}
	}
out:
	for (size_t i = 0; i < w.ngone; i++)
		free(w.gone[i]);
	free(w.gone);
	free(w.sorted);
	free(w.order);
	return ret;
}

/* --- creation pass ---------------------------------------------------------------- */

static int set_meta(int dfd, const char *base, const struct store_manifest_entry *e)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
				  { .tv_sec = e->mtime_sec, .tv_nsec = e->mtime_nsec } };

	if (fchmodat(dfd, base, e->mode & 07777, 0) ||
	    utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

/* True if the file @base in @dfd holds exactly @ref with @e's mode and mtime. */
static bool ref_same(int dfd, const char *base, const uint8_t *ref,
		     const struct store_manifest_entry *e)
{
	uint8_t cur[FMT_REF_SIZE + 1];
	struct stat st;
	ssize_t n;
	int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	bool same;

	if (fd < 0)
		return false;
	n = store_pread_full(fd, cur, sizeof(cur), 0);
	same = n == FMT_REF_SIZE && !memcmp(cur, ref, FMT_REF_SIZE) && fstat(fd, &st) == 0 &&
	       (st.st_mode & 07777) == (e->mode & 07777) && st.st_mtim.tv_sec == e->mtime_sec &&
	       st.st_mtim.tv_nsec == (long)e->mtime_nsec;
	close(fd);
	return same;
}

static int write_ref(int root, int tmpfd, const struct store_manifest_entry *e, bool *changed)
{
	uint8_t ref[FMT_REF_SIZE];
	char tmpname[64];
	const char *base;
	int dfd, fd = -1, ret;

	*changed = false;
	store_ref_build(ref, e->id, e->stored, e->header);
	dfd = open_parent(root, e->path, &base);
	if (dfd < 0)
		return dfd;
	if (ref_same(dfd, base, ref, e)) {
		ret = 0;
		goto out;
	}
	snprintf(tmpname, sizeof(tmpname), "ref.%d.%" PRIx64, (int)getpid(), e->id[0]);
	fd = openat(tmpfd, tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = store_write_all(fd, ref, sizeof(ref));
	close(fd);
	if (!ret)
		ret = set_meta(tmpfd, tmpname, e);
	if (!ret && renameat(tmpfd, tmpname, dfd, base))
		ret = -errno;
	if (ret)
		unlinkat(tmpfd, tmpname, 0);
	else
		*changed = true;
out:
	close(dfd);
	return ret;
}

static int make_dir(int root, const struct store_manifest_entry *e, bool *created)
{
	const char *base;
	int dfd = open_parent(root, e->path, &base), ret = 0;

	*created = false;
	if (dfd < 0)
		return dfd;
	if (mkdirat(dfd, base, 0700) == 0)
		*created = true;
	else if (errno != EEXIST)
		ret = -errno;
	close(dfd);
	return ret;
}

/* --- the view's store directory ------------------------------------------------- */

static int put_file(int dfd, const char *name, const void *buf, size_t len)
{
	char tmp[NAME_MAX + 1];
	int fd, ret;

	snprintf(tmp, sizeof(tmp), ".%s.new", name);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ret = store_write_all(fd, buf, len);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (!ret && renameat(dfd, tmp, dfd, name))
		ret = -errno;
	if (ret)
		unlinkat(dfd, tmp, 0);
	return ret;
}

/* Makes @view a store directory holding the bucket's superblock @sb. */
static int view_prepare(const char *view, const uint8_t *sb, size_t sblen)
{
	char path[PATH_MAX];
	int dfd, ret;

	if (mkdir(view, 0755) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/" FMT_META_DIR, view);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/" FMT_META_DIR "/" FMT_TMP_DIR, view);
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/" FMT_META_DIR, view);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	ret = put_file(dfd, FMT_SUPERBLOCK_NAME, sb, sblen);
	close(dfd);
	return ret;
}

int store_remote_sync_view(const struct store_remote_sync_io *io, store_remote_changed_fn fn,
			   void *arg, struct store_remote_sync_stats *stats)
{
	struct store_manifest m = { 0 };
	uint8_t *buf = NULL, *sb = NULL;
	size_t len = 0, sblen = 0;
	char key[PATH_MAX], path[PATH_MAX];
	char *etag = NULL;
	int root = -1, tmpfd = -1, ret;

	memset(stats, 0, sizeof(*stats));
	snprintf(key, sizeof(key), "%s" FMT_MANIFEST_NAME, io->prefix);
	ret = remote_s3_get(io->s3, key, *io->etag, &buf, &len, &etag);
	if (ret == -EALREADY)
		return 0; /* unchanged */
	if (ret == -ENOENT) {
		log_error("%s: nothing has been pushed there yet (no %s in the bucket) - run "
			  "'faissfs push STORE %s' first",
			  io->url, key, io->url);
		return ret;
	}
	if (ret)
		return ret;
	ret = store_manifest_decode(buf, len, io->url, &m);
	if (ret)
		goto out;
	if (m.gen < *io->gen) {
		log_warn("%s: the bucket's manifest is generation %" PRIu64 ", older than the %"
			 PRIu64 " served: serving it anyway (was the store pushed again from an "
			 "older copy?)",
			 io->url, m.gen, *io->gen);
	}
	snprintf(key, sizeof(key), "%s" FMT_SUPERBLOCK_NAME, io->prefix);
	ret = remote_s3_get(io->s3, key, NULL, &sb, &sblen, NULL);
	if (ret == -ENOENT) {
		log_error("%s: the bucket has a manifest but no superblock (%s) - push the "
			  "store again",
			  io->url, key);
		ret = -EUCLEAN;
	}
	if (ret)
		goto out;
	ret = view_prepare(io->view, sb, sblen);
	if (ret) {
		log_error("%s: cannot prepare the local view %s: %s", io->url, io->view,
			  strerror(-ret));
		goto out;
	}
	root = open(io->view, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/" FMT_META_DIR "/" FMT_TMP_DIR, io->view);
	tmpfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0 || tmpfd < 0) {
		ret = -errno;
		goto out;
	}
	ret = remove_gone(root, &m, fn, arg, &stats->removed);
	for (size_t i = 0; ret == 0 && i < m.n; i++) {
		const struct store_manifest_entry *e = &m.e[i];
		bool changed;

		ret = e->dir ? make_dir(root, e, &changed) : write_ref(root, tmpfd, e, &changed);
		if (ret == 0 && changed) {
			stats->changed++;
			if (fn)
				fn(arg, e->path);
		}
	}
	/* Directories last: creating their entries changed their times. */
	for (size_t i = 0; ret == 0 && i < m.n; i++) {
		const char *base;
		int dfd;

		if (!m.e[i].dir)
			continue;
		dfd = open_parent(root, m.e[i].path, &base);
		if (dfd < 0) {
			ret = dfd;
			break;
		}
		ret = set_meta(dfd, base, &m.e[i]);
		close(dfd);
	}
	if (ret) {
		log_error("%s: cannot bring the local view %s to generation %" PRIu64 ": %s",
			  io->url, io->view, m.gen, strerror(-ret));
		goto out;
	}
	stats->entries = m.n;
	stats->gen = m.gen;
	free(*io->etag);
	*io->etag = etag;
	etag = NULL;
	*io->gen = m.gen;
	stats->updated = true;
out:
	if (root >= 0)
		close(root);
	if (tmpfd >= 0)
		close(tmpfd);
	store_manifest_release(&m);
	free(buf);
	free(sb);
	free(etag);
	return ret;
}
