/* mountpath.c - from a path a user gives to the store behind it: a store
 * directory itself, or a faissfs mount (whose hidden .faissfs/store names the
 * store it serves).  The tools read stores directly; through a mount they
 * would see the logical bytes, not the objects. */
#include "cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define FUSE_SUPER_MAGIC 0x65735546

/* The store a faissfs mount rooted at @dir serves (its .faissfs/store), or
 * NULL if @dir is no faissfs mount root.  Caller frees. */
static char *mount_store(const char *dir)
{
	char buf[PATH_MAX + 2], *p;
	size_t n;
	FILE *f;

	if (asprintf(&p, "%s/.faissfs/store", dir) < 0)
		return NULL;
	f = fopen(p, "re");
	free(p);
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return n ? strdup(buf) : NULL;
}

char *cmd_find_store(const char *path)
{
	struct stat st;
	char *p;

	if (asprintf(&p, "%s/.faissfs/superblock", path) < 0)
		return NULL;
	if (stat(p, &st) == 0) {
		free(p);
		return strdup(path);
	}
	free(p);
	return mount_store(path);
}

int cmd_on_mount(const char *path, char **store, char **rel)
{
	char *abs = realpath(path, NULL), *dir = NULL, *s;
	struct statfs sf;
	size_t end;
	int rc = 0;

	if (!abs)
		return -errno;
	if (statfs(abs, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC)
		goto out; /* not on FUSE at all */
	dir = strdup(abs);
	if (!dir) {
		rc = -ENOMEM;
		goto out;
	}
	/* Up from the file to the first directory with a .faissfs/store: the
	 * mount's root (only the root answers for .faissfs). */
	for (end = strlen(abs); end > 0; end--) {
		if (abs[end - 1] != '/')
			continue;
		memcpy(dir, abs, end - 1);
		dir[end - 1] = '\0';
		s = mount_store(end > 1 ? dir : "/");
		if (!s)
			continue;
		*rel = strdup(abs + end);
		if (!*rel) {
			free(s);
			rc = -ENOMEM;
			goto out;
		}
		*store = s;
		rc = 1;
		break;
	}
out:
	free(dir);
	free(abs);
	return rc;
}
