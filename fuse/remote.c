/* remote.c - a mount of a remote (s3://) store: the thread that polls the
 * bucket's manifest and tells the kernel what changed.
 *
 * The store layer brings the local view to the new manifest (store_remote_sync());
 * for each path it changed, added or removed we drop the kernel's cached entry,
 * attributes and pages, so that the next lookup and open see the new version.
 * An open file keeps its object (the old version) and keeps reading it: the
 * bucket never overwrites an object.  Locks: p->lock protects stop only; the
 * sync runs on this thread alone, without it.
 */
#include "mnt.h"
#include "node.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

struct mnt_remote {
	struct mnt_fs *fs;	  /* borrowed */
	struct fuse_session *se;  /* borrowed: lives longer than the thread */
	struct store_remote *r;	  /* borrowed; sync runs only here once started */
	unsigned interval;	  /* seconds */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* protected by lock */
	uint64_t polls, updates, failures; /* this thread's; read racily for logs */
};

/* Tells the kernel to forget what it cached of @path (relative to the root). */
static void forget_path(void *arg, const char *path)
{
	struct mnt_remote *p = arg;
	struct mnt_table *t = p->fs->tab;
	struct mnt_node *dir = mnt_node_get(t, FUSE_ROOT_ID);
	char comp[NAME_MAX + 1];
	const char *s = path, *slash;
	uint64_t ino;

	while (dir) {
		size_t len;

		slash = strchr(s, '/');
		len = slash ? (size_t)(slash - s) : strlen(s);
		if (len > NAME_MAX)
			return;
		memcpy(comp, s, len);
		comp[len] = '\0';
		if (!slash) {
			/* The entry itself: its name, attributes and pages; its directory's
			 * attributes and listing. */
			fuse_lowlevel_notify_inval_entry(p->se, dir->ino, comp, len);
			ino = mnt_node_peek(t, dir, comp);
			if (ino)
				fuse_lowlevel_notify_inval_inode(p->se, ino, 0, 0);
			fuse_lowlevel_notify_inval_inode(p->se, dir->ino, 0, 0);
			return;
		}
		ino = mnt_node_peek(t, dir, comp);
		dir = ino ? mnt_node_get(t, ino) : NULL; /* never looked up: nothing cached */
		s = slash + 1;
	}
}

static void *poll_main(void *arg)
{
	struct mnt_remote *p = arg;
	struct store_remote_sync_stats ss;
	struct timespec ts;
	bool stop;
	int rc;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += p->interval;
		pthread_mutex_lock(&p->lock);
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) != ETIMEDOUT)
			;
		stop = p->stop;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
		p->polls++;
		rc = store_remote_sync(p->r, forget_path, p, &ss);
		if (rc < 0) {
			p->failures++;
			log_warn("%s: checking for a new version failed (%s); serving generation "
				 "%llu, trying again in %u s",
				 store_remote_url(p->r), strerror(-rc),
				 (unsigned long long)store_remote_gen(p->r), p->interval);
		} else if (ss.updated) {
			p->updates++;
			log_info("%s: serving generation %llu (%u entries changed, %u removed); "
				 "open files keep the version they opened",
				 store_remote_url(p->r), (unsigned long long)ss.gen, ss.changed,
				 ss.removed);
		}
	}
	return NULL;
}

int mnt_remote_start(struct mnt_fs *fs, struct fuse_session *se, struct store_remote *r,
		     unsigned interval, struct mnt_remote **out)
{
	struct mnt_remote *p;
	int rc;

	*out = NULL;
	if (!interval)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fs = fs;
	p->se = se;
	p->r = r;
	p->interval = interval;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	rc = pthread_create(&p->thread, NULL, poll_main, p);
	if (rc) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return -rc;
	}
	p->started = true;
	*out = p;
	return 0;
}

void mnt_remote_stop(struct mnt_remote *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->started)
		pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
