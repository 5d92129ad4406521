/* relink.c - replacing a store file that has several names (hard links).
 *
 * A file is replaced by renaming a new one over its name (compaction publishes an
 * object, a writable mount unpacks one); a hard-linked file must get the new inode
 * under every name, or its names would stop being one file.  store_relink_tmp()
 * finds the names by walking the store (store_walk: no symlink followed, no mount
 * crossed; stores hold thousands of entries, so this is milliseconds) and renames a
 * fresh link of the temp file over each.  Every name always holds a whole file
 * with the same bytes; a crash part way leaves some names on the old inode and
 * some on the new one (two files with equal contents, the link split), never a
 * missing or partial file.
 */
#include "store_internal.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct relink {
	struct store *st;
	const char *tmpname;
	const struct stat *was;
	char linkname[64]; /* a second name of the temp file, renamed over each name */
	int found;
};

static int relink_entry(void *arg, const struct store_walk_entry *e)
{
	struct relink *r = arg;

	if (e->type != STORE_WALK_FILE || e->st->st_dev != r->was->st_dev ||
	    e->st->st_ino != r->was->st_ino)
		return 0;
	if (linkat(r->st->tmp_fd, r->tmpname, r->st->tmp_fd, r->linkname, 0) < 0)
		return -errno;
	if (renameat(r->st->tmp_fd, r->linkname, e->dirfd, e->name) < 0) {
		int rc = -errno;

		unlinkat(r->st->tmp_fd, r->linkname, 0);
		return rc;
	}
	if (fsync(e->dirfd) < 0)
		return -errno;
	r->found++;
	return 0;
}

int store_relink_tmp(struct store *st, const char *tmpname, const struct stat *was)
{
	static atomic_ulong seq;
	struct relink r = {.st = st, .tmpname = tmpname, .was = was};
	int rc;

	snprintf(r.linkname, sizeof(r.linkname), "relink.%d.%lu", (int)getpid(),
		 atomic_fetch_add(&seq, 1));
	rc = store_walk(st, NULL, relink_entry, &r);
	unlinkat(st->tmp_fd, tmpname, 0);
	if (rc < 0) {
		log_error("%s: replacing a file with %d names failed after %d of them: %s (each "
			  "name holds the same bytes; those left are separate files now)",
			  st->path, (int)was->st_nlink, r.found, strerror(-rc));
		return rc;
	}
	return r.found ? r.found : -ENOENT;
}
