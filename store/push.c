/* push.c - publishing a local store to an S3 bucket (FORMAT.md section 8).
 *
 * Order is what makes it safe for readers: the whole store is checked and listed
 * first (nothing is sent if anything cannot be pushed), then each object the
 * bucket lacks is uploaded under its identity, then the superblock, and the
 * manifest last - one PUT, so a reader sees the previous generation or this one.
 * Objects are named by content, so a re-push sends only the objects that changed
 * (those the previous manifest lists are skipped without a request; others are
 * checked with a HEAD, so a push cut short is resumed, not repeated).  Objects the
 * new manifest no longer names stay in the bucket: nodes may still read them.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "remote/remote.h"
#include "util/log.h"

struct push_walk {
	struct store_manifest m;
	int problems;
	uint64_t bytes;
};

static int push_visit(void *arg, const struct store_walk_entry *e)
{
	struct push_walk *w = arg;
	struct store_manifest_entry me = { 0 };
	struct store_object *o = NULL;
	int fd, ret;

	if (e->type >= STORE_WALK_ERR_STAT) {
		log_error("push: %s: cannot read it: %s", e->rel, strerror(-e->err));
		w->problems++;
		return 0;
	}
	if (e->type == STORE_WALK_OTHER) {
		log_error("push: %s is a symlink or special file: a remote store holds only "
			  "directories and files - move it out of the store",
			  e->rel);
		w->problems++;
		return 0;
	}
	me.path = (char *)e->rel;
	me.mode = e->st->st_mode;
	me.mtime_sec = e->st->st_mtim.tv_sec;
	me.mtime_nsec = (uint32_t)e->st->st_mtim.tv_nsec;
	if (e->type == STORE_WALK_DIR) {
		me.dir = true;
		return store_manifest_add(&w->m, &me);
	}
	fd = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		log_error("push: %s: cannot open it: %s", e->rel, strerror(errno));
		w->problems++;
		return 0;
	}
	ret = store_object_open_fd(fd, e->rel, &o);
	if (ret == 0 && store_pread_full(fd, me.header, FMT_OBJ_HEADER_SIZE, 0) !=
				FMT_OBJ_HEADER_SIZE)
		ret = -EIO;
	close(fd);
	if (ret == -EMEDIUMTYPE) {
		log_error("push: %s is a plain file, not compacted into an object yet - run "
			  "'faissfs compact STORE' (or let a writable mount compact it) first",
			  e->rel);
		w->problems++;
		return 0;
	}
	if (ret) {
		log_error("push: %s: cannot open the object: %s", e->rel, strerror(-ret));
		w->problems++;
		store_object_free(o);
		return 0;
	}
	store_object_id(o, me.id);
	me.size = store_object_info(o)->size;
	me.stored = (uint64_t)e->st->st_size;
	w->bytes += me.stored;
	store_object_free(o);
	return store_manifest_add(&w->m, &me);
}

/* The bucket's current manifest into @old (empty if there is none or it is
 * unreadable: then every object is checked with a request). */
static int old_manifest(struct remote_s3 *s3, const char *prefix, const char *url,
			struct store_manifest *old)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char key[PATH_MAX];
	int ret;

	memset(old, 0, sizeof(*old));
	snprintf(key, sizeof(key), "%s" FMT_MANIFEST_NAME, prefix);
	ret = remote_s3_get(s3, key, NULL, &buf, &len, NULL);
	if (ret == -ENOENT)
		return 0; /* the first push */
	if (ret)
		return ret;
	ret = store_manifest_decode(buf, len, url, old);
	free(buf);
	if (ret == -ENOMEM)
		return ret;
	if (ret)
		log_warn("push: the bucket's manifest is unreadable: every object is checked "
			 "with a request, and the new manifest replaces it");
	return 0;
}

static bool id_in(const struct store_manifest *m, const uint64_t id[2])
{
	for (size_t i = 0; i < m->n; i++)
		if (!m->e[i].dir && m->e[i].id[0] == id[0] && m->e[i].id[1] == id[1])
			return true;
	return false;
}

/* True if @a and @b list the same tree: paths, types, modes, mtimes, objects. */
static bool same_tree(const struct store_manifest *a, const struct store_manifest *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct store_manifest_entry *x = &a->e[i], *y = &b->e[i];

		if (strcmp(x->path, y->path) || x->mode != y->mode || x->dir != y->dir ||
		    x->mtime_sec != y->mtime_sec || x->mtime_nsec != y->mtime_nsec ||
		    (!x->dir && (x->id[0] != y->id[0] || x->id[1] != y->id[1])))
			return false;
	}
	return true;
}

static int upload_object(struct remote_s3 *s3, int rootfd, const char *key,
			 const struct store_manifest_entry *e, bool *sent)
{
	uint64_t size = 0;
	int fd, ret;

	*sent = false;
	ret = remote_s3_head(s3, key, &size, NULL);
	if (ret == 0 && size == e->stored)
		return 0; /* sent by a push that was cut short */
	if (ret && ret != -ENOENT)
		return ret;
	fd = openat(rootfd, e->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = remote_s3_put_fd(s3, key, fd, 0, e->stored);
	close(fd);
	if (ret == 0)
		*sent = true;
	return ret;
}

int store_push(struct store *st, const struct store_remote_opts *o,
	       const struct store_push_opts *po, struct store_push_stats *stats)
{
	struct store_remote_opts ro = *o;
	struct store_remote *r = NULL;
	struct push_walk w = { 0 };
	struct store_progress pr;
	struct store_manifest old = {0};
	uint8_t sb[64], *mbuf = NULL;
	size_t mlen = 0;
	char key[PATH_MAX], hex[FMT_ID_HEX + 1];
	double t0 = store_now();
	int ret, fd;

	memset(stats, 0, sizeof(*stats));
	ret = store_walk(st, NULL, push_visit, &w);
	if (ret)
		goto out;
	if (w.problems) {
		log_error("push: %d entries of %s cannot be pushed (listed above): nothing was "
			  "sent",
			  w.problems, store_path(st));
		ret = -EINVAL;
		goto out;
	}
	ro.read_only_view = true;
	ret = store_remote_open(&ro, &r);
	if (ret)
		goto out;
	ret = old_manifest(store_remote_s3(r), store_remote_prefix(r), o->url, &old);
	if (ret)
		goto out;
	store_progress_start(&pr, "push", po && po->progress);
	pr.bytes_total = w.bytes;
	for (size_t i = 0; i < w.m.n; i++) {
		const struct store_manifest_entry *e = &w.m.e[i];
		bool sent;

		if (e->dir) {
			stats->dirs++;
			continue;
		}
		stats->files++;
		pr.files_done++;
		pr.bytes_done += e->stored;
		if (id_in(&old, e->id)) {
			stats->skipped++;
			continue;
		}
		store_id_hex(e->id, hex);
		snprintf(key, sizeof(key), "%s" FMT_REMOTE_OBJ_DIR "/%s", store_remote_prefix(r),
			 hex);
		ret = upload_object(store_remote_s3(r), store_root_fd(st), key, e, &sent);
		if (ret) {
			log_error("push: uploading %s (%s) failed: %s - nothing is published yet; "
				  "run the push again",
				  e->path, key, strerror(-ret));
			goto out_pr;
		}
		if (sent) {
			stats->uploaded++;
			stats->bytes_uploaded += e->stored;
		} else {
			stats->skipped++;
		}
		store_progress_show(&pr, false);
	}
	fd = openat(store_root_fd(st), FMT_META_DIR "/" FMT_SUPERBLOCK_NAME,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_pr;
	}
	ret = store_pread_full(fd, sb, sizeof(sb), 0) == sizeof(sb) ? 0 : -EIO;
	close(fd);
	snprintf(key, sizeof(key), "%s" FMT_SUPERBLOCK_NAME, store_remote_prefix(r));
	if (!ret)
		ret = remote_s3_put(store_remote_s3(r), key, sb, sizeof(sb));
	if (ret)
		goto out_pr;
	if (old.gen && same_tree(&old, &w.m)) {
		stats->gen = old.gen; /* nothing changed: readers keep their generation */
		stats->unchanged = true;
		goto out_pr;
	}
	w.m.gen = old.gen + 1;
	w.m.created = (uint64_t)time(NULL);
	ret = store_manifest_encode(&w.m, &mbuf, &mlen);
	snprintf(key, sizeof(key), "%s" FMT_MANIFEST_NAME, store_remote_prefix(r));
	if (!ret)
		ret = remote_s3_put(store_remote_s3(r), key, mbuf, mlen);
	if (ret) {
		log_error("push: writing the manifest %s failed: %s - the objects are there; "
			  "run the push again to publish them",
			  key, strerror(-ret));
		goto out_pr;
	}
	stats->gen = w.m.gen;
out_pr:
	store_progress_end(&pr);
out:
	stats->seconds = store_now() - t0;
	free(mbuf);
	store_manifest_release(&old);
	store_manifest_release(&w.m);
	store_remote_free(r);
	return ret;
}
