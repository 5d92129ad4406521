/* node.c - the inode table (see node.h).
 *
 * Lock order (a lock may only be taken while holding the ones above it):
 *
 *   names_lock            (rwlock) every node's parent and name; written only by a rename
 *   mnt_table.lock        hash tables, inode counter, every node's nlookup/nchild/chains
 *   mnt_table.warn_lock   the set of names already warned about (leaf)
 *   mnt_node.lock         a node's probe cache and shared object (leaf)
 *
 * In practice no two of them are ever held together: node.lock and the table
 * lock are taken one after the other, never nested, and no I/O (openat, probe,
 * object open) happens under the table lock.  Lookups do their I/O unlocked,
 * then insert under the lock, re-checking for a concurrent insert of the same
 * name (the loser's node is dropped).
 *
 * Lifetime: a node is freed when the kernel has forgotten every lookup
 * (nlookup == 0) and no child node points to it (nchild == 0); freeing a child
 * may free its parent in turn.  Requests never race with that: the kernel sends
 * a request for an inode only while it holds a lookup on it.  The root lives
 * until mnt_table_free().
 *
 * Renames (a writable mount): a node's parent and name change under the write side of
 * names_lock, and every use of them for a system call (openat, fstatat, a log path)
 * holds its read side, so a file is never looked for under a name it just left.  The
 * old name is kept until the table goes (n->old_names): a metrics label borrowed from
 * a node stays readable.
 */
#include "mnt.h" /* first: FUSE_USE_VERSION */
#include "node.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"

#define MNT_WARN_MAX	 4096 /* names remembered for log-once; beyond, warn every time */
#define MNT_SINO_BUCKETS 256  /* files with several names are few: a fixed table */
#define MNT_ALIAS_MAX	 64   /* other names remembered per node */

/* Protects every node's parent and name (see the top of the file). */
static pthread_rwlock_t names_lock = PTHREAD_RWLOCK_INITIALIZER;

/* A name a node no longer has, kept for borrowers until the table is freed. */
struct mnt_old_name {
	struct mnt_old_name *next;
	char *name;
};

struct mnt_table {
	pthread_mutex_t lock;
	struct mnt_node **by_ino;		    /* protected by lock; every live node */
	struct mnt_node **by_name;		    /* protected by lock; nodes with in_name_hash */
	struct mnt_node *by_sino[MNT_SINO_BUCKETS]; /* protected by lock; in_sino_hash */
	size_t nbuckets;       /* protected by lock; a power of two, both tables */
	uint64_t count;	       /* protected by lock; nodes in by_ino */
	uint64_t next_ino;     /* protected by lock */
	struct mnt_node *root; /* immutable */

	pthread_mutex_t warn_lock;
	uint64_t *warned; /* protected by warn_lock: hashes of (parent ino, name) */
	size_t nwarned;	  /* protected by warn_lock */

	struct mnt_old_name *old_names; /* protected by lock: names left by renames */
};

/* --- identities and shared objects ------------------------------------------------ */

void mnt_ident_of(const struct stat *st, struct mnt_ident *out)
{
	memset(out, 0, sizeof(*out));
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->mtim = st->st_mtim;
	out->ctim = st->st_ctim;
}

bool mnt_ident_eq(const struct mnt_ident *a, const struct mnt_ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

void mnt_obj_get(struct mnt_obj *ob)
{
	__atomic_add_fetch(&ob->refs, 1, __ATOMIC_RELAXED);
}

void mnt_obj_put(struct mnt_obj *ob)
{
	if (!ob)
		return;
	if (__atomic_sub_fetch(&ob->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		store_object_free(ob->so);
		free(ob);
	}
}

/* --- hashing ---------------------------------------------------------------------- */

static uint64_t hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_name(uint64_t parent_ino, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull ^ parent_ino;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return hash_mix(h);
}

static size_t ino_bucket(const struct mnt_table *t, uint64_t ino)
{
	return hash_mix(ino) & (t->nbuckets - 1);
}

static size_t name_bucket(const struct mnt_table *t, uint64_t parent_ino, const char *name)
{
	return hash_name(parent_ino, name) & (t->nbuckets - 1);
}

static size_t sino_bucket(dev_t dev, ino_t ino)
{
	return hash_mix((uint64_t)ino ^ ((uint64_t)dev << 40)) & (MNT_SINO_BUCKETS - 1);
}

/* The node of the store inode (@dev, @ino) of type @type, if one is in the sino
 * hash.  Caller holds t->lock. */
static struct mnt_node *find_sino(struct mnt_table *t, dev_t dev, ino_t ino, mode_t type)
{
	struct mnt_node *n = t->by_sino[sino_bucket(dev, ino)];

	for (; n; n = n->next_sino)
		if (n->sdev == dev && n->sino == ino && n->type == type)
			return n;
	return NULL;
}

/* Puts @n, which has its pfd, in the sino hash.  Caller holds t->lock. */
static void sino_insert(struct mnt_table *t, struct mnt_node *n)
{
	size_t b = sino_bucket(n->sdev, n->sino);

	n->next_sino = t->by_sino[b];
	t->by_sino[b] = n;
	n->in_sino_hash = true;
}

/* Takes @n out of the sino hash if it is in it.  Caller holds t->lock. */
static void sino_remove(struct mnt_table *t, struct mnt_node *n)
{
	struct mnt_node **pp;

	if (!n->in_sino_hash)
		return;
	pp = &t->by_sino[sino_bucket(n->sdev, n->sino)];
	while (*pp != n)
		pp = &(*pp)->next_sino;
	*pp = n->next_sino;
	n->in_sino_hash = false;
}

/* Caller holds t->lock. */
static void hash_insert(struct mnt_table *t, struct mnt_node *n)
{
	size_t b = ino_bucket(t, n->ino);

	n->next_ino = t->by_ino[b];
	t->by_ino[b] = n;
	if (n->parent) {
		b = name_bucket(t, n->parent->ino, n->name);
		n->next_name = t->by_name[b];
		t->by_name[b] = n;
		__atomic_store_n(&n->in_name_hash, true, __ATOMIC_RELEASE);
	}
	t->count++;
}

/* Caller holds t->lock. */
static void hash_remove_name(struct mnt_table *t, struct mnt_node *n)
{
	struct mnt_node **pp;

	if (!n->in_name_hash)
		return;
	pp = &t->by_name[name_bucket(t, n->parent->ino, n->name)];
	while (*pp != n)
		pp = &(*pp)->next_name;
	*pp = n->next_name;
	n->next_name = NULL;
	__atomic_store_n(&n->in_name_hash, false, __ATOMIC_RELEASE);
}

/* Caller holds t->lock. */
static void hash_remove(struct mnt_table *t, struct mnt_node *n)
{
	struct mnt_node **pp = &t->by_ino[ino_bucket(t, n->ino)];

	while (*pp != n)
		pp = &(*pp)->next_ino;
	*pp = n->next_ino;
	n->next_ino = NULL;
	hash_remove_name(t, n);
	sino_remove(t, n);
	t->count--;
}

/* Doubles the tables when they are full.  Caller holds t->lock.  A failed
 * allocation keeps the old tables (longer chains, still correct). */
static void hash_grow(struct mnt_table *t)
{
	size_t nb = t->nbuckets * 2;
	struct mnt_node **bi, **bn;

	if (t->count < t->nbuckets)
		return;
	bi = calloc(nb, sizeof(*bi));
	bn = calloc(nb, sizeof(*bn));
	if (!bi || !bn) {
		free(bi);
		free(bn);
		return;
	}
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct mnt_node *n = t->by_ino[i], *next;

		for (; n; n = next) {
			size_t b = hash_mix(n->ino) & (nb - 1);

			next = n->next_ino;
			n->next_ino = bi[b];
			bi[b] = n;
			if (n->in_name_hash) {
				b = hash_name(n->parent->ino, n->name) & (nb - 1);
				n->next_name = bn[b];
				bn[b] = n;
			}
		}
	}
	free(t->by_ino);
	free(t->by_name);
	t->by_ino = bi;
	t->by_name = bn;
	t->nbuckets = nb;
}

/* Caller holds t->lock. */
static struct mnt_node *find_name(struct mnt_table *t, const struct mnt_node *parent,
				  const char *name)
{
	struct mnt_node *n = t->by_name[name_bucket(t, parent->ino, name)];

	for (; n; n = n->next_name)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* --- nodes -------------------------------------------------------------------------- */

static void node_free(struct mnt_node *n)
{
	if (!n)
		return;
	if (n->dirfd >= 0)
		close(n->dirfd);
	if (n->keep_fd >= 0)
		close(n->keep_fd);
	if (n->pfd >= 0)
		close(n->pfd);
	for (unsigned i = 0; i < n->naliases; i++)
		free(n->aliases[i].name);
	free(n->aliases);
	mnt_obj_put(n->obj);
	pthread_mutex_destroy(&n->lock);
	free(n->name);
	free(n);
}

/* A node for @name in @parent (NULL: the root) whose store entry is @st; opens
 * the directory for a directory (@dirfd_in >= 0: use that fd, now owned).  Not
 * in the table yet, counts at zero.  Returns 0, -ENOMEM, -errno from openat, or
 * -ESTALE when the name no longer is the directory @st was. */
static int node_new(struct mnt_node *parent, const char *name, const struct stat *st, int dirfd_in,
		    struct mnt_node **out)
{
	struct mnt_node *n = calloc(1, sizeof(*n));
	int rc;

	if (!n) {
		if (dirfd_in >= 0)
			close(dirfd_in);
		return -ENOMEM;
	}
	n->dirfd = dirfd_in;
	n->keep_fd = -1;
	n->pfd = -1;
	pthread_mutex_init(&n->lock, NULL);
	n->parent = parent;
	n->is_dir = S_ISDIR(st->st_mode);
	n->type = st->st_mode & S_IFMT;
	n->sdev = st->st_dev;
	n->sino = st->st_ino;
	n->name = strdup(name);
	if (!n->name) {
		rc = -ENOMEM;
		goto fail;
	}
	if (n->is_dir && n->dirfd < 0) {
		struct stat dst;

		n->dirfd = openat(parent->dirfd, name,
				  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (n->dirfd < 0) {
			rc = errno == ELOOP || errno == ENOTDIR ? -ESTALE : -errno;
			goto fail;
		}
		if (fstat(n->dirfd, &dst) < 0) {
			rc = -errno;
			goto fail;
		}
		if (dst.st_dev != st->st_dev || dst.st_ino != st->st_ino) {
			rc = -ESTALE; /* replaced between fstatat and openat */
			goto fail;
		}
	}
	*out = n;
	return 0;
fail:
	node_free(n);
	return rc;
}

/* Writes the node's path relative to the store root into @buf (for log lines). */
static void node_path(const struct mnt_node *n, char *buf, size_t size)
{
	const struct mnt_node *chain[64];
	size_t depth = 0, pos = 0;

	pthread_rwlock_rdlock(&names_lock);

	for (; n && n->parent && depth < 64; n = n->parent)
		chain[depth++] = n;
	buf[0] = '\0';
	if (n && n->parent)
		pos = (size_t)snprintf(buf, size, ".../");
	while (depth-- > 0 && pos < size)
		pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", chain[depth]->name,
					depth ? "/" : "");
	if (buf[0] == '\0')
		snprintf(buf, size, ".");
	pthread_rwlock_unlock(&names_lock);
}

const char *mnt_special_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
	case S_IFREG:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return NULL;
	default:
		return "of an unknown file type";
	}
}

void mnt_warn_special(struct mnt_table *t, const struct mnt_node *parent, const char *name,
		      const char *what)
{
	uint64_t h = hash_name(parent->ino, name);
	bool seen = false;
	char path[PATH_MAX];

	pthread_mutex_lock(&t->warn_lock);
	for (size_t i = 0; i < t->nwarned && !seen; i++)
		seen = t->warned[i] == h;
	if (!seen && t->nwarned < MNT_WARN_MAX)
		t->warned[t->nwarned++] = h;
	pthread_mutex_unlock(&t->warn_lock);
	if (seen)
		return;
	node_path(parent, path, sizeof(path));
	log_warn("%s%s%s in the store is %s: not served (remove it from the store)",
		 parent->parent ? path : "", parent->parent ? "/" : "", name, what);
}

int mnt_name_check(const struct mnt_node *parent, const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -ENOENT;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (!parent->parent && store_name_reserved(name))
		return -ENOENT; /* hidden: the store's own metadata */
	return 0;
}

/* -@err for a failed lookup, but -EIO (logged once) when the store directory
 * itself was removed under the mount: its files are lost, not absent. */
static int store_gone_err(int root_fd, int err)
{
	static atomic_bool logged;
	struct stat rs;

	if (err != ENOENT || fstat(root_fd, &rs) < 0 || rs.st_nlink != 0)
		return -err;
	if (!atomic_exchange(&logged, true))
		log_error("the store directory was removed while mounted: every lookup now fails "
			  "with EIO (unmount, restore the store, mount it again)");
	return -EIO;
}

/* Opens @fd's inode again with @flags: /proc/self/fd/N opens the inode itself,
 * never a path.  Returns the new fd or -errno. */
static int reopen_fd(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd = open(path, flags & ~O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/* Opens the store inode of @node whose own name is gone: the one an open of it
 * keeps, else (a file with several names) its O_PATH fd.  -ENOENT if neither. */
static int open_unnamed(struct mnt_node *node, int flags)
{
	int fd = -ENOENT, pfd;

	pthread_mutex_lock(&node->lock);
	if (node->keep_fd >= 0)
		fd = reopen_fd(node->keep_fd, flags);
	pthread_mutex_unlock(&node->lock);
	pfd = mnt_node_pfd(node);
	if (fd == -ENOENT && pfd >= 0)
		fd = reopen_fd(pfd, flags);
	return fd;
}

int mnt_node_open_flags(struct mnt_node *node, int flags, struct stat *st)
{
	bool named = __atomic_load_n(&node->in_name_hash, __ATOMIC_ACQUIRE);
	int fd = -ENOENT, rc;

	if (node->is_dir || !node->parent)
		return -EISDIR;
	flags = (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	/* Removed or replaced: the inode the kernel has, if we still hold it. */
	if (!named)
		fd = open_unnamed(node, flags);
	if (fd == -ENOENT && (named || mnt_node_pfd(node) < 0)) {
		pthread_rwlock_rdlock(&names_lock);
		fd = openat(node->parent->dirfd, node->name, flags);
		if (fd < 0)
			fd = -errno;
		pthread_rwlock_unlock(&names_lock);
	}
	if (fd == -ENOENT) {
		const struct mnt_node *root = node;

		while (root->parent)
			root = root->parent;
		return store_gone_err(root->dirfd, ENOENT);
	}
	if (fd < 0)
		return fd == -ELOOP ? -ESTALE : fd;
	if (fstat(fd, st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int mnt_node_open_file(struct mnt_node *node, struct stat *st)
{
	return mnt_node_open_flags(node, O_RDONLY, st);
}

ssize_t mnt_node_readlink(struct mnt_node *node, char *buf, size_t size)
{
	ssize_t len;
	int err = 0;

	if (node->type != S_IFLNK || !node->parent)
		return -EINVAL;
	pthread_rwlock_rdlock(&names_lock);
	len = readlinkat(node->parent->dirfd, node->name, buf, size);
	if (len < 0)
		err = errno;
	pthread_rwlock_unlock(&names_lock);
	if (len < 0)
		return -err;
	if ((size_t)len >= size)
		return -ENAMETOOLONG;
	buf[len] = '\0';
	return len;
}

/* The logical size of the regular file @node whose store entry is @st.  Probes
 * the file (@fd if >= 0: the store file itself, open) unless the cached probe is
 * for the same identity.  When the file was replaced since @st was taken, @st is
 * updated to the file actually probed. */
static int node_logical_size(struct mnt_node *node, int fd, struct stat *st, uint64_t *size)
{
	struct mnt_ident id;
	struct stat fst;
	uint64_t lsize = 0;
	char path[PATH_MAX];
	int own = -1, rc;

	mnt_ident_of(st, &id);
	pthread_mutex_lock(&node->lock);
	if (node->kind != MNT_KIND_UNKNOWN && mnt_ident_eq(&node->probed, &id)) {
		*size = node->lsize;
		pthread_mutex_unlock(&node->lock);
		return 0;
	}
	pthread_mutex_unlock(&node->lock);

	if (fd >= 0) {
		fst = *st;
	} else {
		own = fd = mnt_node_open_file(node, &fst);
		if (fd < 0)
			return fd;
	}
	node_path(node, path, sizeof(path));
	rc = store_object_probe(fd, path, &lsize);
	if (own >= 0)
		close(own);
	if (rc < 0)
		return rc;
	if (rc == 0)
		lsize = (uint64_t)fst.st_size;
	mnt_ident_of(&fst, &id);
	pthread_mutex_lock(&node->lock);
	node->probed = id;
	node->kind = rc == 1 ? MNT_KIND_OBJECT : MNT_KIND_PLAIN;
	node->lsize = lsize;
	pthread_mutex_unlock(&node->lock);
	*st = fst;
	*size = lsize;
	return 0;
}

/* Fills @attr from the store entry @st of @node (@fd: that entry, open, or -1).
 * @st may be updated (see node_logical_size). */
static int node_fill_attr(struct mnt_node *node, int fd, struct stat *st, struct stat *attr)
{
	uint64_t size;
	int rc;

	if (S_ISREG(st->st_mode)) {
		rc = node_logical_size(node, fd, st, &size);
		if (rc < 0)
			return rc;
	}
	*attr = *st;
	if (S_ISREG(st->st_mode))
		attr->st_size = (off_t)size;
	if (!node->parent && attr->st_nlink > 2) {
		struct stat ms;

		/* The store's own .faissfs is not part of the view. */
		if (fstatat(node->dirfd, ".faissfs", &ms, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(ms.st_mode))
			attr->st_nlink--;
	}
	attr->st_ino = node->ino;
	return 0;
}

/* Opens @node's store entry O_PATH (never following it) as its pfd, if it is the
 * inode @want.  A node without one gets it (set once: a racing call's fd is
 * closed); one that has one gets the new inode in the same fd number (dup3: a
 * concurrent user opens either inode, both valid).  Returns 0 or -errno (-ESTALE:
 * the name holds another inode). */
static int node_open_pfd(struct mnt_node *node, const struct stat *want)
{
	struct stat st;
	int fd, old, rc = 0;

	pthread_rwlock_rdlock(&names_lock);
	fd = openat(node->parent->dirfd, node->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		rc = -errno;
	pthread_rwlock_unlock(&names_lock);
	if (fd < 0)
		return rc;
	if (fstat(fd, &st) < 0 || st.st_dev != want->st_dev || st.st_ino != want->st_ino) {
		close(fd);
		return -ESTALE;
	}
	old = -1;
	if (__atomic_compare_exchange_n(&node->pfd, &old, fd, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return 0;
	if (dup3(fd, old, O_CLOEXEC) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Gives @node, a file with several names whose own name is gone, the name @name in
 * @parent (which led to it), if nothing else holds that name in the table. */
static void node_rehome(struct mnt_table *t, struct mnt_node *node, struct mnt_node *parent,
			const char *name)
{
	struct mnt_old_name *old = calloc(1, sizeof(*old));
	struct mnt_node *freeable = NULL;
	char *copy = strdup(name);
	size_t b;

	if (!old || !copy)
		goto out; /* it keeps working through its pfd */
	pthread_rwlock_wrlock(&names_lock);
	pthread_mutex_lock(&t->lock);
	if (!node->in_name_hash && !find_name(t, parent, name)) {
		if (node->parent != parent) {
			parent->nchild++;
			node->parent->nchild--;
			if (node->parent->parent && node->parent->nlookup == 0 &&
			    node->parent->nchild == 0)
				freeable = node->parent;
			node->parent = parent;
		}
		old->name = node->name;
		old->next = t->old_names;
		t->old_names = old;
		old = NULL;
		node->name = copy;
		copy = NULL;
		b = name_bucket(t, parent->ino, node->name);
		node->next_name = t->by_name[b];
		t->by_name[b] = node;
		__atomic_store_n(&node->in_name_hash, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&t->lock);
	pthread_rwlock_unlock(&names_lock);
	if (freeable)
		mnt_node_forget(t, freeable, 0);
out:
	free(old);
	free(copy);
}

/* Same store entry: the node stands for the inode @st of that type. */
static bool node_is(const struct mnt_node *n, const struct stat *st)
{
	return n->sdev == st->st_dev && n->sino == st->st_ino && n->type == (st->st_mode & S_IFMT);
}

/* Remembers @name in @parent as another name of @node, unless it is its own or
 * known already.  Caller holds t->lock.  Best effort (a failed allocation, or more
 * than MNT_ALIAS_MAX names: not remembered). */
static void alias_add_locked(struct mnt_node *node, struct mnt_node *parent, const char *name)
{
	struct mnt_alias *v;

	if (node->parent == parent && strcmp(node->name, name) == 0)
		return;
	for (unsigned i = 0; i < node->naliases; i++)
		if (node->aliases[i].parent_ino == parent->ino &&
		    strcmp(node->aliases[i].name, name) == 0)
			return;
	if (node->naliases >= MNT_ALIAS_MAX)
		return;
	v = realloc(node->aliases, (node->naliases + 1) * sizeof(*v));
	if (!v)
		return;
	node->aliases = v;
	v[node->naliases].name = strdup(name);
	if (!v[node->naliases].name)
		return;
	v[node->naliases++].parent_ino = parent->ino;
}

/* Drops alias @i of @node.  Caller holds t->lock. */
static void alias_del_locked(struct mnt_node *node, unsigned i)
{
	free(node->aliases[i].name);
	node->aliases[i] = node->aliases[--node->naliases];
}

/* The node of @ino with one more lookup (give it back with mnt_node_forget(t, n,
 * 1)), or NULL. */
static struct mnt_node *node_hold(struct mnt_table *t, uint64_t ino)
{
	struct mnt_node *n;

	pthread_mutex_lock(&t->lock);
	n = t->by_ino[ino_bucket(t, ino)];
	while (n && n->ino != ino)
		n = n->next_ino;
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* @node (held by the caller) lost its own name: if it has other names the kernel
 * knows (its aliases), the first that still leads to its inode becomes its name. */
static void node_promote(struct mnt_table *t, struct mnt_node *node)
{
	for (;;) {
		struct mnt_node *parent;
		struct stat st;
		uint64_t pino;
		char *name;
		bool match;

		pthread_mutex_lock(&t->lock);
		if (node->in_name_hash || node->naliases == 0) {
			pthread_mutex_unlock(&t->lock);
			return;
		}
		pino = node->aliases[0].parent_ino;
		name = node->aliases[0].name;
		node->aliases[0].name = NULL;
		alias_del_locked(node, 0);
		pthread_mutex_unlock(&t->lock);

		parent = node_hold(t, pino);
		match = parent && parent->is_dir &&
			fstatat(parent->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			node_is(node, &st);
		if (match)
			node_rehome(t, node, parent, name);
		if (parent)
			mnt_node_forget(t, parent, 1);
		free(name);
		if (match)
			return;
	}
}

int mnt_node_lookup(struct mnt_table *t, struct mnt_node *parent, const char *name,
		    struct stat *attr, struct mnt_node **out)
{
	struct mnt_node *node, *other;
	struct stat st;
	const char *what;
	bool linked;
	int rc;

	if (!parent->is_dir)
		return -ENOTDIR;
	rc = mnt_name_check(parent, name);
	if (rc < 0)
		return rc;
	if (fstatat(parent->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return store_gone_err(t->root->dirfd, errno);
	what = mnt_special_name(st.st_mode);
	if (what) {
		/* Not part of the view: readdir skips it too, so ENOENT is coherent. */
		mnt_warn_special(t, parent, name, what);
		return -ENOENT;
	}
	/* A file with several names is one node, found by its store inode. */
	linked = !S_ISDIR(st.st_mode) && st.st_nlink > 1;

	pthread_mutex_lock(&t->lock);
	node = find_name(t, parent, name);
	if (!(node && node_is(node, &st)) && linked)
		node = find_sino(t, st.st_dev, st.st_ino, st.st_mode & S_IFMT);
	if (node && node_is(node, &st)) {
		bool unnamed = !node->in_name_hash;

		node->nlookup++;
		if (linked && !unnamed)
			alias_add_locked(node, parent, name);
		pthread_mutex_unlock(&t->lock);
		if (unnamed)
			node_rehome(t, node, parent, name);
		rc = node_fill_attr(node, -1, &st, attr);
		if (rc < 0) {
			mnt_node_forget(t, node, 1);
			return rc;
		}
		*out = node;
		return 0;
	}
	pthread_mutex_unlock(&t->lock);

	rc = node_new(parent, name, &st, -1, &node);
	if (rc == 0 && linked)
		rc = node_open_pfd(node, &st);
	if (rc == 0)
		rc = node_fill_attr(node, -1, &st, attr);
	if (rc < 0) {
		node_free(node);
		return rc;
	}

	pthread_mutex_lock(&t->lock);
	other = find_name(t, parent, name);
	if (!(other && node_is(other, &st)) && linked)
		other = find_sino(t, st.st_dev, st.st_ino, st.st_mode & S_IFMT);
	if (other && node_is(other, &st)) {
		/* Another thread inserted the same entry meanwhile: use its node. */
		other->nlookup++;
		if (linked)
			alias_add_locked(other, parent, name);
		pthread_mutex_unlock(&t->lock);
		node_free(node);
		attr->st_ino = other->ino;
		*out = other;
		return 0;
	}
	if (other)
		hash_remove_name(t, other); /* replaced in the store; lives on for its lookups */
	hash_grow(t);
	node->ino = t->next_ino++;
	node->nlookup = 1;
	parent->nchild++;
	hash_insert(t, node);
	if (linked)
		sino_insert(t, node);
	pthread_mutex_unlock(&t->lock);
	attr->st_ino = node->ino;
	*out = node;
	return 0;
}

int mnt_node_linked(struct mnt_table *t, struct mnt_node *node)
{
	struct stat cur;
	int rc = 0;

	if (node->is_dir)
		return -EISDIR;
	pthread_rwlock_rdlock(&names_lock);
	if (fstatat(node->parent->dirfd, node->name, &cur, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	pthread_rwlock_unlock(&names_lock);
	if (rc < 0)
		return rc;
	if ((cur.st_mode & S_IFMT) != node->type)
		return -ESTALE;
	/* The node stands for the inode its name holds now: compaction may have replaced
	 * the one it was looked up as (same bytes, another inode). */
	pthread_mutex_lock(&t->lock);
	if (!node->in_sino_hash && !find_sino(t, cur.st_dev, cur.st_ino, node->type)) {
		node->sdev = cur.st_dev;
		node->sino = cur.st_ino;
		sino_insert(t, node);
	}
	pthread_mutex_unlock(&t->lock);
	if (mnt_node_pfd(node) < 0)
		rc = node_open_pfd(node, &cur);
	return rc;
}

/* The node of the store path @relpath ("a/b/c") if every component of it is in the
 * table, else NULL.  Caller holds t->lock. */
static struct mnt_node *find_path_locked(struct mnt_table *t, const char *relpath)
{
	struct mnt_node *n = t->root;
	char comp[NAME_MAX + 1];

	while (n && *relpath) {
		const char *slash = strchr(relpath, '/');
		size_t len = slash ? (size_t)(slash - relpath) : strlen(relpath);

		if (len == 0 || len > NAME_MAX)
			return NULL;
		memcpy(comp, relpath, len);
		comp[len] = '\0';
		n = find_name(t, n, comp);
		relpath += len + (slash != NULL);
	}
	return n == t->root ? NULL : n;
}

void mnt_node_replaced(struct mnt_table *t, const char *relpath, const struct stat *was,
		       const struct stat *now)
{
	struct mnt_node *n;
	bool linked;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	n = find_sino(t, was->st_dev, was->st_ino, S_IFREG);
	if (!n && relpath)
		n = find_path_locked(t, relpath);
	if (n && !node_is(n, was))
		n = NULL; /* the name leads to another file now: not this one's node */
	if (n) {
		linked = n->in_sino_hash;
		sino_remove(t, n);
		n->sdev = now->st_dev;
		n->sino = now->st_ino;
		if (linked)
			sino_insert(t, n);
		n->nlookup++; /* held below */
	}
	pthread_mutex_unlock(&t->lock);
	if (!n)
		return;
	if (mnt_node_pfd(n) >= 0 && node_open_pfd(n, now) < 0)
		log_debug("a file of several names was replaced: its O_PATH fd stays on the old "
			  "inode");
	mnt_node_forget(t, n, 1);
}

void mnt_node_forget(struct mnt_table *t, struct mnt_node *node, uint64_t n)
{
	struct mnt_node *dead = NULL;

	pthread_mutex_lock(&t->lock);
	if (n > node->nlookup) {
		log_warn("kernel forgot %llu lookups of inode %llu, which had %llu (ignored)",
			 (unsigned long long)n, (unsigned long long)node->ino,
			 (unsigned long long)node->nlookup);
		n = node->nlookup;
	}
	node->nlookup -= n;
	while (node->parent && node->nlookup == 0 && node->nchild == 0) {
		struct mnt_node *parent = node->parent;

		hash_remove(t, node);
		parent->nchild--;
		node->next_ino = dead; /* reuse the chain link for the free list */
		dead = node;
		node = parent;
	}
	pthread_mutex_unlock(&t->lock);

	while (dead) {
		struct mnt_node *next = dead->next_ino;

		node_free(dead);
		dead = next;
	}
}

uint64_t mnt_node_peek(struct mnt_table *t, const struct mnt_node *parent, const char *name)
{
	struct mnt_node *n;
	uint64_t ino;

	pthread_mutex_lock(&t->lock);
	n = find_name(t, parent, name);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

struct mnt_node *mnt_node_get(struct mnt_table *t, uint64_t ino)
{
	struct mnt_node *n;

	pthread_mutex_lock(&t->lock);
	n = t->by_ino[ino_bucket(t, ino)];
	while (n && n->ino != ino)
		n = n->next_ino;
	pthread_mutex_unlock(&t->lock);
	return n;
}

int mnt_node_stat(struct mnt_table *t, struct mnt_node *node, struct stat *attr)
{
	struct stat st;
	bool named;
	int rc = 0, fd;

	if (node->is_dir) {
		/* The fd we serve the directory from: one syscall, never a path. */
		if (fstat(node->dirfd, &st) < 0)
			return -errno;
		return node_fill_attr(node, -1, &st, attr);
	}
	pthread_mutex_lock(&t->lock);
	named = node->in_name_hash;
	pthread_mutex_unlock(&t->lock);
	if (!named) {
		/* Removed or replaced while open: the file the kernel still has, kept by
		 * an open of it (readable), or reached through its other names (O_PATH). */
		bool readable = true;

		pthread_mutex_lock(&node->lock);
		fd = node->keep_fd >= 0 ? fcntl(node->keep_fd, F_DUPFD_CLOEXEC, 0) : -1;
		pthread_mutex_unlock(&node->lock);
		if (fd < 0 && mnt_node_pfd(node) >= 0) {
			fd = fcntl(mnt_node_pfd(node), F_DUPFD_CLOEXEC, 0);
			readable = false;
		}
		if (fd >= 0) {
			rc = fstat(fd, &st) < 0 ? -errno : 0;
			if (rc == 0)
				rc = node_fill_attr(node, readable ? fd : -1, &st, attr);
			close(fd);
			return rc;
		}
	}
	pthread_rwlock_rdlock(&names_lock);
	if (fstatat(node->parent->dirfd, node->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	pthread_rwlock_unlock(&names_lock);
	if (rc < 0)
		return rc;
	if ((st.st_mode & S_IFMT) != node->type)
		return -ESTALE;
	return node_fill_attr(node, -1, &st, attr);
}

int mnt_node_object(const struct store *store, struct mnt_node *node, int fd, const struct stat *st,
		    struct mnt_obj **out)
{
	struct store_object *so = NULL;
	struct mnt_obj *ob, *old = NULL;
	struct mnt_ident id;
	char path[PATH_MAX];
	int rc;

	mnt_ident_of(st, &id);
	pthread_mutex_lock(&node->lock);
	if (node->obj && mnt_ident_eq(&node->obj->ident, &id)) {
		mnt_obj_get(node->obj);
		*out = node->obj;
		pthread_mutex_unlock(&node->lock);
		return 1;
	}
	if (node->kind == MNT_KIND_PLAIN && mnt_ident_eq(&node->probed, &id)) {
		pthread_mutex_unlock(&node->lock);
		return 0;
	}
	pthread_mutex_unlock(&node->lock);

	node_path(node, path, sizeof(path));
	rc = store_object_open(store, fd, path, &so);
	if (rc == -EMEDIUMTYPE) {
		pthread_mutex_lock(&node->lock);
		node->probed = id;
		node->kind = MNT_KIND_PLAIN;
		node->lsize = (uint64_t)st->st_size;
		pthread_mutex_unlock(&node->lock);
		return 0;
	}
	if (rc < 0)
		return rc;
	ob = calloc(1, sizeof(*ob));
	if (!ob) {
		store_object_free(so);
		return -ENOMEM;
	}
	ob->refs = 1; /* the node's */
	ob->so = so;
	ob->ident = id;

	pthread_mutex_lock(&node->lock);
	if (node->obj && mnt_ident_eq(&node->obj->ident, &id)) {
		/* Opened concurrently by another thread: keep the first. */
		old = ob;
	} else {
		old = node->obj;
		node->obj = ob;
		node->probed = id;
		node->kind = MNT_KIND_OBJECT;
		node->lsize = store_object_info(so)->size;
	}
	mnt_obj_get(node->obj);
	*out = node->obj;
	pthread_mutex_unlock(&node->lock);
	mnt_obj_put(old);
	return 1;
}

void mnt_node_object_put(struct mnt_node *node, struct mnt_obj *ob)
{
	bool drop = true;

	if (!ob)
		return;
	/* References to the current object are taken and given back only under
	 * node->lock, so its count cannot change while we look at it; the node's
	 * own reference keeps it above zero while it is current. */
	pthread_mutex_lock(&node->lock);
	if (node->obj == ob) {
		if (__atomic_load_n(&ob->refs, __ATOMIC_ACQUIRE) == 2) {
			node->obj = NULL; /* last user: the node lets go too */
			__atomic_sub_fetch(&ob->refs, 1, __ATOMIC_ACQ_REL);
		} else {
			__atomic_sub_fetch(&ob->refs, 1, __ATOMIC_ACQ_REL);
			drop = false;
		}
	}
	pthread_mutex_unlock(&node->lock);
	if (drop)
		mnt_obj_put(ob); /* may free: outside the lock */
}

/* --- the table ---------------------------------------------------------------------- */

int mnt_table_new(int rootfd, struct mnt_table **out)
{
	struct mnt_table *t = NULL;
	struct stat st;
	int fd = -1, rc;

	fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->warn_lock, NULL);
	t->nbuckets = 256;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_name = calloc(t->nbuckets, sizeof(*t->by_name));
	t->warned = calloc(MNT_WARN_MAX, sizeof(*t->warned));
	if (!t->by_ino || !t->by_name || !t->warned) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = node_new(NULL, "", &st, fd, &t->root);
	fd = -1; /* owned by the node, or closed */
	if (rc < 0)
		goto fail;
	t->root->ino = FUSE_ROOT_ID;
	t->root->nlookup = 1; /* the kernel's implicit lookup of the root */
	t->next_ino = FUSE_ROOT_ID + 1;
	hash_insert(t, t->root);
	*out = t;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	mnt_table_free(t);
	return rc;
}

void mnt_table_free(struct mnt_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->by_ino && i < t->nbuckets; i++) {
		struct mnt_node *n = t->by_ino[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			node_free(n);
		}
	}
	while (t->old_names) {
		struct mnt_old_name *o = t->old_names;

		t->old_names = o->next;
		free(o->name);
		free(o);
	}
	free(t->by_ino);
	free(t->by_name);
	free(t->warned);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->warn_lock);
	free(t);
}

uint64_t mnt_table_count(struct mnt_table *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* --- changes made through a writable mount ---------------------------------------------- */

int mnt_node_at(struct mnt_node *node, int (*fn)(int dirfd, const char *name, void *arg), void *arg)
{
	int rc;

	if (!node->parent)
		return -EBUSY; /* the root has no name in the store */
	if (!node->is_dir && mnt_node_pfd(node) >= 0 &&
	    !__atomic_load_n(&node->in_name_hash, __ATOMIC_ACQUIRE))
		return -ENOENT; /* a file of several names, none known to us any more */
	pthread_rwlock_rdlock(&names_lock);
	rc = fn(node->parent->dirfd, node->name, arg);
	pthread_rwlock_unlock(&names_lock);
	return rc;
}

int mnt_node_relpath(struct mnt_node *node, char *buf, size_t size)
{
	const struct mnt_node *chain[256];
	size_t depth = 0, pos = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&names_lock);
	for (const struct mnt_node *n = node; n->parent; n = n->parent) {
		if (depth == 256) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		chain[depth++] = n;
	}
	if (depth == 0 || size == 0) {
		rc = -EINVAL;
		goto out;
	}
	buf[0] = '\0';
	while (depth-- > 0) {
		int len = snprintf(buf + pos, size - pos, "%s%s", chain[depth]->name,
				   depth ? "/" : "");

		if (len < 0 || (size_t)len >= size - pos) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		pos += (size_t)len;
	}
out:
	pthread_rwlock_unlock(&names_lock);
	return rc;
}

/* @n lost its name (unlinked, or replaced by a rename): a file with other names takes
 * one of them.  Caller holds t->lock and has taken one lookup on @n for this; gives it
 * back.  Returns with t->lock released. */
static void lost_name_unlock(struct mnt_table *t, struct mnt_node *n)
{
	bool linked = n && n->in_sino_hash && n->naliases > 0;

	pthread_mutex_unlock(&t->lock);
	if (!n)
		return;
	if (linked)
		node_promote(t, n);
	mnt_node_forget(t, n, 1);
}

void mnt_node_unlinked(struct mnt_table *t, struct mnt_node *parent, const char *name)
{
	struct mnt_node *n;

	pthread_mutex_lock(&t->lock);
	n = find_name(t, parent, name);
	if (n) {
		hash_remove_name(t, n); /* lives on for the kernel's lookups */
		n->nlookup++;		/* held for lost_name_unlock() */
	}
	lost_name_unlock(t, n);
}

/* The name @name in @parent of the file @st (several names), an alias of its node,
 * is @newname in @newparent now.  Caller holds t->lock. */
static void alias_moved_locked(struct mnt_table *t, const struct stat *st, struct mnt_node *parent,
			       const char *name, struct mnt_node *newparent, const char *newname)
{
	struct mnt_node *n = find_sino(t, st->st_dev, st->st_ino, st->st_mode & S_IFMT);
	char *copy;

	for (unsigned i = 0; n && i < n->naliases; i++) {
		if (n->aliases[i].parent_ino != parent->ino || strcmp(n->aliases[i].name, name))
			continue;
		copy = strdup(newname);
		if (!copy) {
			alias_del_locked(n, i);
			return;
		}
		free(n->aliases[i].name);
		n->aliases[i].name = copy;
		n->aliases[i].parent_ino = newparent->ino;
		return;
	}
}

int mnt_node_rename(struct mnt_table *t, struct mnt_node *parent, const char *name,
		    struct mnt_node *newparent, const char *newname, unsigned flags)
{
	struct mnt_old_name *old = calloc(1, sizeof(*old));
	struct mnt_node *n, *gone, *freeable = NULL;
	char *copy = strdup(newname);
	struct stat moved;
	size_t b;
	int rc = 0;

	if (!old || !copy) {
		free(old);
		free(copy);
		return -ENOMEM;
	}
	pthread_rwlock_wrlock(&names_lock);
	if (fstatat(parent->dirfd, name, &moved, AT_SYMLINK_NOFOLLOW) == 0 && moved.st_nlink > 1 &&
	    !S_ISDIR(moved.st_mode)) {
		struct stat target;

		/* Two names of one file: rename(2) does nothing, nor do we. */
		if (fstatat(newparent->dirfd, newname, &target, AT_SYMLINK_NOFOLLOW) == 0 &&
		    target.st_dev == moved.st_dev && target.st_ino == moved.st_ino) {
			pthread_rwlock_unlock(&names_lock);
			free(old);
			free(copy);
			return (flags & RENAME_NOREPLACE) ? -EEXIST : 0;
		}
	}
	if (renameat2(parent->dirfd, name, newparent->dirfd, newname, flags) < 0) {
		rc = -errno;
		pthread_rwlock_unlock(&names_lock);
		free(old);
		free(copy);
		return rc;
	}
	/* The moved entry, in case it is another name of a file (an alias to update). */
	if (fstatat(newparent->dirfd, newname, &moved, AT_SYMLINK_NOFOLLOW) < 0)
		moved.st_nlink = 0;
	pthread_mutex_lock(&t->lock);
	gone = find_name(t, newparent, newname);
	if (gone) {
		hash_remove_name(t, gone); /* replaced: lives on for its lookups */
		gone->nlookup++;	   /* held for lost_name_unlock() */
	}
	n = find_name(t, parent, name);
	if (!n && moved.st_nlink > 1 && !S_ISDIR(moved.st_mode))
		alias_moved_locked(t, &moved, parent, name, newparent, newname);
	if (n) {
		hash_remove_name(t, n);
		if (n->parent != newparent) {
			newparent->nchild++;
			parent->nchild--;
			if (parent->parent && parent->nlookup == 0 && parent->nchild == 0)
				freeable = parent;
			n->parent = newparent;
		}
		old->name = n->name;
		old->next = t->old_names;
		t->old_names = old;
		old = NULL;
		n->name = copy;
		b = name_bucket(t, newparent->ino, copy);
		copy = NULL;
		n->next_name = t->by_name[b];
		t->by_name[b] = n;
		__atomic_store_n(&n->in_name_hash, true, __ATOMIC_RELEASE);
	}
	pthread_rwlock_unlock(&names_lock);
	lost_name_unlock(t, gone);
	if (freeable)
		mnt_node_forget(t, freeable, 0);
	free(old);
	free(copy);
	return 0;
}

void mnt_node_keep_fd(struct mnt_node *node, int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0), old;

	if (nfd < 0)
		return;
	pthread_mutex_lock(&node->lock);
	old = node->keep_fd;
	node->keep_fd = nfd;
	node->nkeep++;
	pthread_mutex_unlock(&node->lock);
	if (old >= 0)
		close(old);
}

void mnt_node_unkeep_fd(struct mnt_node *node)
{
	int old = -1;

	pthread_mutex_lock(&node->lock);
	if (node->nkeep > 0 && --node->nkeep == 0) {
		old = node->keep_fd;
		node->keep_fd = -1;
	}
	pthread_mutex_unlock(&node->lock);
	if (old >= 0)
		close(old);
}
