/* walk.c - visit every entry of a store's tree (store_walk()), or of any directory
 * tree (store_walk_dir(): import's source).
 *
 * Depth first, names in strcmp order in each directory, a directory before its
 * entries.  Every directory is opened relative to its parent with O_NOFOLLOW, so
 * the walk never follows a symlink and cannot leave the tree; "." and ".." are
 * never shown, nor, by store_walk(), the names the store reserves at its root
 * (.faissfs).  What to do with an entry, and with one that cannot be examined,
 * opened or listed, is the callback's choice: the walk itself logs nothing.  One
 * fd per level and one directory's names in memory per level.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

struct walk {
	store_walk_fn fn;
	void *arg;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The sorted names of @d, without "." and "..".  Returns 0 or -ENOMEM; a listing
 * that fails part way gives the names read before and sets *list_err (-errno). */
static int list_names(DIR *d, char ***out, size_t *count, int *list_err)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	*list_err = 0;
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **v = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*v));

			if (!v)
				goto nomem;
			names = v;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto nomem;
		n++;
	}
	if (errno)
		*list_err = -errno;
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	*count = n;
	return 0;
nomem:
	names_free(names, n);
	return -ENOMEM;
}

/* Walks the open directory @dfd (taken over): path @rel below the store root, name
 * @dname, its entries at @depth; @root: it is the store root.  Returns 0 or the
 * negative value that stops the walk. */
static int walk_dir(struct walk *w, int dfd, const char *rel, const char *dname, int depth,
		    bool root)
{
	DIR *d = fdopendir(dfd);
	char **names = NULL, *child = NULL;
	struct stat dst;
	size_t n = 0;
	int r, list_err;

	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	r = list_names(d, &names, &n, &list_err);
	if (r < 0)
		goto out;
	if (list_err) {
		struct store_walk_entry e = {.type = STORE_WALK_ERR_LIST,
					     .dirfd = -1,
					     .name = dname,
					     .rel = rel,
					     .depth = depth - 1,
					     .err = list_err};

		r = w->fn(w->arg, &e);
		if (r < 0)
			goto out;
	}
	r = 0;
	if (fstat(dirfd(d), &dst) < 0)
		dst.st_dev = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct store_walk_entry e = {.dirfd = dirfd(d), .name = names[i], .depth = depth};
		struct stat sb;
		int fd;

		if (root && store_name_reserved(names[i]))
			continue;
		free(child);
		child = NULL;
		if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0) {
			child = NULL;
			r = -ENOMEM;
			break;
		}
		e.rel = child;
		if (fstatat(dirfd(d), names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			e.type = STORE_WALK_ERR_STAT;
			e.err = -errno;
		} else {
			e.st = &sb;
			e.type = S_ISREG(sb.st_mode)   ? STORE_WALK_FILE
				 : S_ISDIR(sb.st_mode) ? STORE_WALK_DIR
						       : STORE_WALK_OTHER;
			/* Another filesystem mounted here is not part of the store: never
			 * crossed (it might even be this store's own mount). */
			if (e.type == STORE_WALK_DIR && dst.st_dev && sb.st_dev != dst.st_dev)
				e.type = STORE_WALK_OTHER;
		}
		r = w->fn(w->arg, &e);
		if (r < 0 || e.type != STORE_WALK_DIR || r == STORE_WALK_SKIP)
			continue;
		fd = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			e.type = STORE_WALK_ERR_OPEN;
			e.err = -errno;
			r = w->fn(w->arg, &e);
			continue;
		}
		r = walk_dir(w, fd, child, names[i], depth + 1, false);
	}
	if (r > 0)
		r = 0;
out:
	free(child);
	names_free(names, n);
	closedir(d);
	return r;
}

/* Opens directory @rel below @root one component at a time, none followed if it is
 * a symlink.  Returns the fd or -errno (-EINVAL for an empty, "." or ".."
 * component). */
static int open_start(int root, const char *rel)
{
	const char *p = rel;
	int fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	while (fd >= 0 && *p) {
		size_t len = strcspn(p, "/");
		char name[NAME_MAX + 1];
		int nfd, err;

		if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.')) {
			close(fd);
			return len > NAME_MAX ? -ENAMETOOLONG : -EINVAL;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = -errno;
		close(fd);
		if (nfd < 0)
			return err;
		fd = nfd;
		p += len;
		if (*p == '/' && !*++p) {
			close(fd);
			return -EINVAL; /* a trailing '/': an empty last component */
		}
	}
	return fd < 0 ? -errno : fd;
}

int store_open_parent(const struct store *st, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/'), *name = slash ? slash + 1 : rel;
	char dir[PATH_MAX];
	size_t dlen = slash ? (size_t)(slash - rel) : 0;
	int fd;

	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (strlen(name) > NAME_MAX || dlen >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, dlen);
	dir[dlen] = '\0';
	if (slash && !dlen)
		return -EINVAL; /* a leading '/' */
	fd = open_start(store_root_fd(st), dir);
	if (fd >= 0)
		*base = name;
	return fd;
}

int store_walk(const struct store *st, const char *rel, store_walk_fn fn, void *arg)
{
	struct walk w = {.fn = fn, .arg = arg};
	const char *dname;
	int fd;

	if (!rel)
		rel = "";
	fd = open_start(store_root_fd(st), rel);
	if (fd < 0)
		return fd;
	dname = strrchr(rel, '/');
	dname = dname ? dname + 1 : rel;
	return walk_dir(&w, fd, rel, dname, 0, !*rel);
}

int store_walk_dir(int dirfd, store_walk_fn fn, void *arg)
{
	struct walk w = {.fn = fn, .arg = arg};
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return walk_dir(&w, fd, "", "", 0, false);
}

/* @len bytes of @s, without the extension if @strip and it has one ("a.faiss" ->
 * "a"; ".hidden" stays). */
static char *stem_dup(const char *s, size_t len, bool strip)
{
	const char *dot = memrchr(s, '.', len);

	if (strip && dot && dot != s)
		len = (size_t)(dot - s);
	return strndup(s, len);
}

int store_walk_group(const char *rel, char **tenant, char **index)
{
	const char *s1 = strchr(rel, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	char *t, *i;

	if (!s1) {
		t = strdup(STORE_TENANT_FLAT);
		i = stem_dup(rel, strlen(rel), true);
	} else {
		t = strndup(rel, (size_t)(s1 - rel));
		i = s2 ? strndup(s1 + 1, (size_t)(s2 - s1 - 1))
		       : stem_dup(s1 + 1, strlen(s1 + 1), true);
	}
	if (!t || !i) {
		free(t);
		free(i);
		return -ENOMEM;
	}
	*tenant = t;
	*index = i;
	return 0;
}
