/* node.h - the inode table: our inode numbers for the entries of a store.
 *
 * Each directory or regular file the kernel has looked up is a struct mnt_node
 * with our own 64-bit inode number (the root is FUSE_ROOT_ID).  A node lives
 * while the kernel holds lookups on it (nlookup) or while a child node points to
 * it.  Files are reached by openat() on the parent directory's fd, never by path.
 * The store is not expected to change under a mount: a replaced file is noticed
 * at the next lookup or open (its size cache and open object are refreshed); a
 * name whose store entry became another file or directory gets a new node.
 * Locks: see the lock-order note at the top of node.c.
 */
#ifndef FAISSFS_FUSE_NODE_H
#define FAISSFS_FUSE_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct store;
struct store_object;

/* The identity of one version of a store file: a different value means the
 * file was replaced or rewritten, so cached facts about it are stale. */
struct mnt_ident {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	struct timespec ctim;
};

void mnt_ident_of(const struct stat *st, struct mnt_ident *out);
bool mnt_ident_eq(const struct mnt_ident *a, const struct mnt_ident *b);

/* An opened store object shared by every open file of one node.  Reference
 * counted (atomically); the node holds one reference while it is current, and
 * lets it go when its last user gives it back (mnt_node_object_put()): a file
 * nobody has open keeps no fd and no chunk table.  Chunks cached under the
 * object's content id stay valid across a reopen. */
struct mnt_obj {
	unsigned refs;		 /* atomic */
	struct store_object *so; /* immutable; freed with the last reference */
	struct mnt_ident ident;	 /* immutable: the store file it was opened from */
};

void mnt_obj_get(struct mnt_obj *ob);
void mnt_obj_put(struct mnt_obj *ob); /* NULL is fine */

enum mnt_kind {
	MNT_KIND_UNKNOWN = 0, /* not probed yet */
	MNT_KIND_PLAIN,
	MNT_KIND_OBJECT,
};

struct mnt_alias {
	uint64_t parent_ino; /* our inode number of its directory (never reused) */
	char *name;
};

struct mnt_node {
	/* Immutable from creation to free: read without locks. */
	uint64_t ino;
	bool is_dir;
	mode_t type; /* S_IFMT bits of the store entry: a directory, file, symlink, ... */
	/* Changed only by mnt_node_rename() (a writable mount); see node.c's lock notes. */
	struct mnt_node *parent; /* holds a child count on it; NULL for the root */
	char *name;		 /* "" for the root */
	dev_t sdev; /* identity of the store entry at lookup; protected by the table lock */
	ino_t sino; /* (changed when a file of several names is replaced: mnt_node_replaced) */
	int dirfd;  /* directories: O_RDONLY|O_DIRECTORY fd, else -1 */

	/* Protected by the table lock (mnt_table.lock). */
	uint64_t nlookup;
	uint64_t nchild;	   /* child nodes whose parent is this one */
	bool in_name_hash;	   /* reachable by (parent, name) */
	bool in_sino_hash;	   /* reachable by (sdev, sino): a file with several names */
	struct mnt_node *next_ino; /* hash chains */
	struct mnt_node *next_name;
	struct mnt_node *next_sino;
	int pfd; /* a file with several names: O_PATH fd of its store inode, else -1;
		  * set once (under the table lock, before in_sino_hash), closed at free */

	/* Protected by lock (never held together with the table lock). */
	pthread_mutex_t lock;
	struct mnt_ident probed; /* identity the two fields below belong to */
	enum mnt_kind kind;	 /* MNT_KIND_UNKNOWN: not probed */
	uint64_t lsize;		 /* logical size, valid when kind != UNKNOWN */
	struct mnt_obj *obj;	 /* current shared object while in use, or NULL */
	int keep_fd;		 /* -1, or the store file opened through this node
				  * (mnt_node_keep_fd): its stat once the name is gone */
	unsigned nkeep;		 /* opens holding keep_fd; protected by lock */
	unsigned gen;		 /* atomic: bumped when the mount rewrote the file as a new
				  * inode that writes then change (an unpack): opens of the
				  * old inode read the current one (struct mnt_fh.gen) */

	/* Protected by the table lock: the other names (hard links) the kernel reached
	 * this node by, as (parent inode, name); one takes over when the node's own
	 * name goes.  May be stale: each is checked before use. */
	struct mnt_alias *aliases;
	unsigned naliases;
};

struct mnt_table;

/* Makes a table whose root is the directory @rootfd (dup()ed; the caller keeps
 * its fd).  Returns 0, -ENOMEM, or -errno from dup/fstat. */
int mnt_table_new(int rootfd, struct mnt_table **out);

/* Frees every node (whatever their counts: the session is over). NULL is fine. */
void mnt_table_free(struct mnt_table *t);

/* The node of @ino, or NULL if the kernel never got it from us (or forgot it).
 * Borrowed: valid while the kernel holds a lookup on it, i.e. for the duration
 * of any request naming @ino. */
struct mnt_node *mnt_node_get(struct mnt_table *t, uint64_t ino);

/* Checks a name the kernel asks about in @parent.  Returns 0, -EINVAL for ".",
 * "..", or a name with '/', -ENAMETOOLONG beyond NAME_MAX, -ENOENT for "" and for
 * the store's reserved names at its root. */
int mnt_name_check(const struct mnt_node *parent, const char *name);

/* Looks @name up in directory @parent: on success takes one lookup on the node
 * (the kernel's to forget), sets *out and fills @attr (see mnt_node_stat).
 * Repeated lookups of an unchanged entry give the same node.
 * A file with several names (hard links) is one node whichever name reached it.
 * Errors: those of mnt_name_check(); -ENOTDIR parent not a directory; -ENOENT
 * for an entry of an unknown file type (logged once per name);
 * -EUCLEAN/-EPROTONOSUPPORT a bad object header; -ENOMEM; -errno from
 * fstatat/openat. */
int mnt_node_lookup(struct mnt_table *t, struct mnt_node *parent, const char *name,
		    struct stat *attr, struct mnt_node **out);

/* The inode number of the node of @name in @parent if there is one, else 0.
 * Takes no lookup: for d_ino in plain readdir replies. */
uint64_t mnt_node_peek(struct mnt_table *t, const struct mnt_node *parent, const char *name);

/* Drops @n lookups on @node; frees it (and parents left unused) at zero.
 * The root is never freed here. */
void mnt_node_forget(struct mnt_table *t, struct mnt_node *node, uint64_t n);

/* Attributes as the mount shows them: the store entry's mode, owner, times, link
 * count and st_blocks (disk use, compressed); st_size the logical size; st_ino ours;
 * the root's link count leaves out the hidden .faissfs.  Errors as mnt_node_lookup, and -ESTALE
 * when the name now holds an entry of another type (or another directory). */
int mnt_node_stat(struct mnt_table *t, struct mnt_node *node, struct stat *attr);

/* Opens the node's store file read-only (O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC: a FIFO
 * that took the name cannot block us) and fstat()s it.  Returns the fd (caller
 * closes) or -errno; -ESTALE if the name is no longer a regular file.  A file with
 * several names whose own name is gone is opened through its other names. */
int mnt_node_open_file(struct mnt_node *node, struct stat *st);

/* @node's pfd (see struct mnt_node), or -1.  Borrowed: valid while the node lives. */
static inline int mnt_node_pfd(const struct mnt_node *node)
{
	return __atomic_load_n(&node->pfd, __ATOMIC_ACQUIRE);
}

/* mnt_node_open_file() with open(2) @flags (O_RDWR: for writing); never O_CREAT. */
int mnt_node_open_flags(struct mnt_node *node, int flags, struct stat *st);

/* The target of the symlink @node into @buf (NUL-terminated).  Returns its length,
 * -ENAMETOOLONG if @size is too small, -EINVAL if @node is not a symlink, or -errno. */
ssize_t mnt_node_readlink(struct mnt_node *node, char *buf, size_t size);

/* After link(2) gave the file @node another name: makes it findable by its store
 * inode (the one its name holds now), so that a lookup of any of its names answers
 * this node.  Returns 0 or -errno (what examining the store file gave). */
int mnt_node_linked(struct mnt_table *t, struct mnt_node *node);

/* The mount replaced the store file @was by @now, with the same bytes (an unpack,
 * compaction): under every name for a file of several names (store_relink_tmp()),
 * else at @relpath (NULL: unknown).  The node standing for @was stands for @now,
 * so lookups and readdirplus keep answering it: the kernel's inode, its page cache
 * and the files open on it stay one.  Nothing if no node stands for @was, or @t is
 * NULL. */
void mnt_node_replaced(struct mnt_table *t, const char *relpath, const struct stat *was,
		       const struct stat *now);

/* The node's current object for the store file open as @fd (identity @st):
 * reuses the shared one if @st matches it, else opens a new one (with
 * store_object_open(@store, ...): a reference file of a remote store reads from
 * its bucket; @store may be NULL for a local one).  Returns 1 and
 * a reference in *out (give it back with mnt_node_object_put()), 0 if the file
 * is a plain file, or -EUCLEAN / -EPROTONOSUPPORT / -errno. */
int mnt_node_object(const struct store *store, struct mnt_node *node, int fd, const struct stat *st,
		    struct mnt_obj **out);

/* Gives back a reference from mnt_node_object() on @node; when no other user is
 * left, the node drops its own reference too.  NULL @ob is fine. */
void mnt_node_object_put(struct mnt_node *node, struct mnt_obj *ob);

/* Logs "NAME in the store is of an unknown file type: not served" once per name
 * (per table); @what describes the type. */
void mnt_warn_special(struct mnt_table *t, const struct mnt_node *parent, const char *name,
		      const char *what);

/* NULL for the file types a mount serves (directories, regular files, symlinks,
 * FIFOs, sockets, character and block devices), else "of an unknown file type". */
const char *mnt_special_name(mode_t mode);

/* --- changes through a writable mount --------------------------------------------- */

/* Calls @fn with the directory fd and the name of @node's store entry, with no
 * rename in between; returns what @fn returns (-EBUSY for the root). */
int mnt_node_at(struct mnt_node *node, int (*fn)(int dirfd, const char *name, void *arg),
		void *arg);

/* Writes @node's path relative to the store root into @buf.  Returns 0, -EINVAL
 * for the root, -ENAMETOOLONG if it does not fit. */
int mnt_node_relpath(struct mnt_node *node, char *buf, size_t size);

/* After @name was removed from @parent in the store: the name no longer leads to
 * its node (which lives on for the kernel's lookups). */
void mnt_node_unlinked(struct mnt_table *t, struct mnt_node *parent, const char *name);

/* renameat2(@flags) of @name in @parent to @newname in @newparent, and the same
 * in the table, with no lookup by name seeing a half-done state; a node the target
 * name held is unlinked from it.  Returns 0, -ENOMEM, or -errno of renameat2. */
int mnt_node_rename(struct mnt_table *t, struct mnt_node *parent, const char *name,
		    struct mnt_node *newparent, const char *newname, unsigned flags);

/* Keeps a dup of @fd, the node's store file just opened for writing (replacing the
 * one kept before), so that fstat() of an open file still answers once its name was
 * removed or replaced.  Each call is matched by mnt_node_unkeep_fd() at the release
 * of that open (read-only ones too); the last one closes the dup, so the space of a
 * removed file is freed when its last open closes, not when the kernel forgets the
 * inode.  Best effort: a failed dup is ignored. */
void mnt_node_keep_fd(struct mnt_node *node, int fd);
void mnt_node_unkeep_fd(struct mnt_node *node);

/* Number of live nodes (tests and the exit log). */
uint64_t mnt_table_count(struct mnt_table *t);

#endif
