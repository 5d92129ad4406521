/* store.h - the faissfs store: a directory tree of chunked, compressed objects.
 *
 * The one public header of store/.  The byte layout is in format.h and FORMAT.md.
 * store/ knows nothing of FUSE or of the cache; it shares no mutable state between
 * threads: a struct store and a struct store_object are immutable once opened and
 * may be read from many threads at once, each with its own struct store_dctx.
 *
 * Errors: every function returns 0 (or a size) on success and -errno on failure,
 * and writes its out-parameters only on success.  Data on disk that is wrong is
 * -EUCLEAN, always logged with the file, chunk and offset concerned.  Other codes
 * are listed per function.
 */
#ifndef FAISSFS_STORE_STORE_H
#define FAISSFS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct store;
struct store_object;
struct store_dctx;
struct store_cctx;
struct store_writer;
struct stat;

/* --- stores ------------------------------------------------------------------- */

struct store_params {
	uint32_t chunk_size; /* power of two, FMT_CHUNK_MIN..FMT_CHUNK_MAX */
	int level;	     /* zstd level, 1..19 (negative levels are refused) */
};

/* Default params (FMT_CHUNK_DEFAULT, FMT_LEVEL_DEFAULT). */
void store_params_default(struct store_params *p);

/* Checks @p.  Returns 0 or -EINVAL (logged, naming the bad value and the range). */
int store_params_check(const struct store_params *p);

/* Makes @path a store: creates the directory if missing, then .faissfs/ with its
 * superblock and tmp/, published atomically.  An existing non-empty directory is
 * accepted (its files become plain files of the store).
 * Errors: -EEXIST already a store; -EINVAL bad params; -errno from the filesystem. */
int store_create(const char *path, const struct store_params *p);

#define STORE_RDONLY 0x1 /* never write to the store (no tmp/ cleanup, no writers) */
/* A missing path, a non-directory or a non-store is not logged: the caller says so
 * (store_open_strerror()). */
#define STORE_QUIET 0x2

/* Opens the store at @path: reads the superblock and nothing else.
 * Errors: -ENOENT missing; -ENOTDIR not a directory; -EMEDIUMTYPE a directory
 * without a superblock ("not a faissfs store"); -EUCLEAN corrupt superblock;
 * -EPROTONOSUPPORT newer major version or unknown incompatible feature.
 * Each is logged with what was wrong and what to do. */
int store_open(const char *path, int flags, struct store **out);

/* Marks the store as one that may hold symlinks, hard links, FIFOs, sockets or
 * device nodes (FMT_SB_RO_COMPAT_LINKS in the superblock, format 1.2): call it
 * before making the first of them, so that a faissfs that does not know them
 * opens the store read-only only.  If the bit is not set yet, rewrites the
 * superblock atomically (temp file, fsync, rename, fsync .faissfs/), keeping its
 * other fields and raising version_minor to 2; a crash leaves the old superblock
 * or the new one.  Idempotent, and safe from several threads (and processes) at
 * once: all write the same bytes, each through a temp file of its own.
 * Returns 0 (the bit is set on disk); -EROFS store opened STORE_RDONLY (and the
 * bit not set); -EUCLEAN the superblock on disk is no longer valid; -errno of
 * the filesystem (-ENOSPC, -EACCES...).  Logged. */
int store_feature_links(struct store *st);

/* True if the store is known to have FMT_SB_RO_COMPAT_LINKS set (read at open,
 * or set by store_feature_links() through @st).  Thread-safe. */
bool store_has_links(const struct store *st);

/* What a store_open() error means, for people: "does not exist", "is not a faissfs
 * store (no .faissfs/superblock)", ...; never NULL. */
const char *store_open_strerror(int err);

/* Frees @st (NULL is fine).  Objects opened from it must be freed first. */
void store_close(struct store *st);

/* The store's root directory fd, borrowed: valid until store_close(). */
int store_root_fd(const struct store *st);

/* The path given to store_open(), borrowed. */
const char *store_path(const struct store *st);

/* The store's default params for new objects, borrowed. */
const struct store_params *store_default_params(const struct store *st);

/* True for names the store reserves at its root (".faissfs"). */
bool store_name_reserved(const char *name);

/* Reads @len bytes at @off of @fd, going on after short reads and EINTR.
 * Returns the bytes read: @len, or fewer only if the file ends first (the caller
 * decides what a short file means: changed, truncated, corrupt); or -errno of
 * pread(2) (@buf then holds what was read before). */
ssize_t store_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* --- walking the tree (walk.c) ------------------------------------------------ */

enum store_walk_type {
	STORE_WALK_FILE,     /* a regular file */
	STORE_WALK_DIR,	     /* a directory, shown before its entries */
	STORE_WALK_OTHER,    /* a symlink (never followed), FIFO, socket, device, or a
				directory on another filesystem (a mount point: never crossed) */
	STORE_WALK_ERR_STAT, /* an entry that cannot be examined (fstatat failed) */
	STORE_WALK_ERR_OPEN, /* a directory that cannot be opened */
	STORE_WALK_ERR_LIST, /* a directory whose listing failed part way */
};

/* One entry, as store_walk() shows it to its callback; all borrowed for the call. */
struct store_walk_entry {
	enum store_walk_type type;
	int dirfd;	       /* the directory holding it (-1 for ERR_LIST) */
	const char *name;      /* its name in @dirfd */
	const char *rel;       /* its path below the store root, "acme/idx/index.faiss" */
	int depth;	       /* directories between the start directory and it: 0 for
				  the start's own entries (-1: ERR_LIST of the start) */
	const struct stat *st; /* its lstat; NULL for ERR_STAT and ERR_LIST */
	int err;	       /* ERR_*: the -errno */
};

/* A store_walk() callback returns 0 to go on (into a directory), STORE_WALK_SKIP to
 * leave a directory out, or -errno to stop the walk. */
#define STORE_WALK_SKIP 1
typedef int (*store_walk_fn)(void *arg, const struct store_walk_entry *e);

/* Calls @fn for every entry below the directory @rel of the store ("" or NULL: the
 * root), depth first, in strcmp order in each directory, a directory before its
 * entries.  Never follows a symlink (each directory, @rel's components included,
 * is opened with O_NOFOLLOW relative to its parent), so it stays in the store;
 * "." and ".." and the reserved names at the root are never shown.  Logs nothing:
 * an entry that cannot be examined, opened or listed goes to @fn as ERR_*.  After
 * ERR_LIST the names read before the failure are still walked.
 * Returns 0, the negative value of @fn that stopped it, -ENOMEM, or -errno if
 * @rel cannot be opened (-EINVAL for an empty, "." or ".." component, or a
 * leading or trailing "/"). */
int store_walk(const struct store *st, const char *rel, store_walk_fn fn, void *arg);

/* store_walk() over any directory tree: the one below the open directory @dirfd
 * (borrowed), with paths relative to it.  Only "." and ".." are left out (@dirfd
 * need not be a store: import walks its source with it).  Returns what store_walk()
 * does, or -errno if @dirfd cannot be opened again for reading. */
int store_walk_dir(int dirfd, store_walk_fn fn, void *arg);

/* Opens the directory that holds the store path @rel ("acme/idx/index.faiss"), one
 * component at a time from the store root, none followed if it is a symlink, and
 * sets *base to @rel's last component.  Returns the fd (caller closes it), or
 * -errno: -EINVAL for an empty, "." or ".." component, -ENAMETOOLONG, or what
 * openat() gave (-ELOOP for a symlink, -ENOENT, -ENOTDIR). */
int store_open_parent(const struct store *st, const char *rel, const char **base);

/* The tenant of files at the store root (the flat layout). */
#define STORE_TENANT_FLAT "-"

/* The (tenant, index) the store file @rel belongs to, by the FAISSx layouts:
 * TENANT/INDEX/FILE... -> (TENANT, INDEX); TENANT/FILE -> (TENANT, FILE without its
 * extension); FILE -> (STORE_TENANT_FLAT, FILE without its extension).  faissfs stat
 * and the metrics group files this way.  On success sets both (caller frees each
 * with free()) and returns 0; -ENOMEM otherwise. */
int store_walk_group(const char *rel, char **tenant, char **index);

/* --- FAISS header ------------------------------------------------------------- */

struct store_faiss_info {
	bool valid;  /* false: not a FAISS index we recognise */
	bool binary; /* an IndexBinary* */
	bool is_trained;
	char fourcc[5]; /* NUL-terminated, e.g. "IxF2" */
	int32_t d;
	int32_t metric;	   /* faiss::MetricType */
	int32_t code_size; /* binary indices only, else 0 */
	int64_t ntotal;
};

/* Parses the FAISS 1.7.3 index header at the start of a file (@buf, @len bytes,
 * 64 are always enough).  No FAISS call.  Sets out->valid = false for anything that
 * is not a known index fourcc with a plausible header.  Never fails. */
void store_faiss_parse(const void *buf, size_t len, struct store_faiss_info *out);

/* Name of a fourcc for people ("IndexFlatL2", "IndexIVFFlat", ...), or "unknown". */
const char *store_faiss_type_name(const char *fourcc);

/* Name of a faiss::MetricType as people write it ("IP", "L2", "L1", "Linf", "Lp",
 * "Canberra", ...), or NULL for a value FAISS 1.7.3 does not define. */
const char *store_faiss_metric_name(int32_t metric);

/* --- byte sources (source.c, remote_source.c) ------------------------------------
 * Where an object's stored bytes come from: the local file (the default), or a
 * remote bucket for a store served from S3.  Header, trailer and chunk frames are
 * all read through the object's source, so the rest of store/ (and the cache and
 * fuse/ above it) does not know where the bytes live.  A source is shared by
 * every thread reading the object: its functions must be thread-safe.
 */
enum store_src_what {
	STORE_SRC_HEADER,  /* the 64-byte object header */
	STORE_SRC_TRAILER, /* the trailer (chunk table), read once at open */
	STORE_SRC_FRAME,   /* one chunk's stored frame */
};

struct store_source_ops {
	const char *name; /* "local", "s3": for log lines */
	/* Reads @len stored bytes at @off into @buf.  Returns the bytes read (fewer
	 * only at the end of the object) or -errno. */
	ssize_t (*pread)(void *arg, void *buf, size_t len, uint64_t off, enum store_src_what what);
	/* Optional: bytes at [@off, @off+@len) that pread gave failed their check:
	 * drop any copy kept of them, so the next pread fetches them again. */
	void (*invalidate)(void *arg, uint64_t off, size_t len);
	/* Optional: frees @arg (at store_object_free(), or when open fails). */
	void (*release)(void *arg);
};

/* Opens an object of @stored_size bytes read through @ops with @arg, which the
 * object takes over (released on failure too).  Checks header and trailer as
 * store_object_openat() does.  Errors as store_object_openat(), and those of the
 * source.  Caller frees with store_object_free(). */
int store_object_open_source(const struct store_source_ops *ops, void *arg, uint64_t stored_size,
			     const char *logname, struct store_object **out);

/* --- remote stores (remote.c, remote_view.c, push.c; FORMAT.md section 8) --------
 * A store published to an S3 bucket is served read-only from a local view: a
 * store directory of reference files under the cache directory, brought to the
 * bucket's manifest by store_remote_sync().  Open the view with store_open()
 * (STORE_RDONLY), then store_remote_attach() so that store_object_open() reads
 * its objects from the bucket (through the disk cache).
 */
struct store_remote;

struct store_remote_opts {
	const char *url;	  /* "s3://BUCKET[/PREFIX]" */
	const char *endpoint;	  /* NULL: $FAISSFS_S3_ENDPOINT, then $AWS_ENDPOINT_URL */
	const char *cred_file;	  /* NULL: $AWS_SHARED_CREDENTIALS_FILE, then the AWS_ variables */
	const char *cache_dir;	  /* NULL: /var/cache/faissfs/BUCKET-HASH */
	uint64_t disk_cache_size; /* byte budget of the frames kept on disk; 0: none */
	unsigned max_inflight;	  /* requests in flight at once; 0: the client's default */
	bool read_only_view;	  /* push: no cache directory, no view */
	bool create_bucket;	  /* push: create the bucket if it is missing */
};

/* Connects: parses the URL, loads the credentials, checks the bucket, opens the
 * disk cache.  Nothing is fetched.  Errors (each logged saying what to do):
 * -EINVAL bad URL or no endpoint; -ENOENT no credentials or no such bucket;
 * -EACCES credentials refused; -EHOSTUNREACH endpoint unreachable; -errno.
 * Caller frees with store_remote_free(). */
int store_remote_open(const struct store_remote_opts *o, struct store_remote **out);
void store_remote_free(struct store_remote *r); /* NULL is fine; after the store using it */

/* Opens the disk cache of frames (CACHE/frames) of @r; until then every frame is
 * fetched.  Separate from store_remote_open() because the cache may start a
 * thread: the daemon calls it after going to the background.  Before any reads
 * (not concurrently with them).  Returns 0 or the cache's -errno (logged). */
int store_remote_cache_open(struct store_remote *r);

/* Called by a sync for each path of the view it changed, added or removed. */
typedef void (*store_remote_changed_fn)(void *arg, const char *path);

struct store_remote_sync_stats {
	bool updated;	  /* a new manifest was applied */
	uint64_t gen;	  /* its generation */
	uint64_t entries; /* its entries */
	unsigned changed; /* reference files written or directories made */
	unsigned removed; /* view entries removed */
};

/* Brings the view to the bucket's manifest (one conditional GET when it has not
 * changed).  One caller at a time.  Returns 0; -ENOENT nothing pushed yet;
 * -EUCLEAN a damaged manifest; the S3 client's errors; -errno writing the view.
 * On failure the view is left as it was or part way to the new manifest, every
 * reference in it valid. */
int store_remote_sync(struct store_remote *r, store_remote_changed_fn fn, void *arg,
		      struct store_remote_sync_stats *stats);

/* The view's directory, the URL, the generation served; borrowed. */
const char *store_remote_view(const struct store_remote *r);
const char *store_remote_url(const struct store_remote *r);
uint64_t store_remote_gen(const struct store_remote *r);

/* Objects of @st opened with store_object_open() read through @r (borrowed: it
 * must outlive @st). */
void store_remote_attach(struct store *st, struct store_remote *r);

struct store_remote_stats {
	uint64_t requests, retries, errors, bytes_in; /* S3 requests and bytes received */
	unsigned inflight, inflight_max;
	uint64_t disk_hits, disk_misses, disk_damaged, disk_bytes, disk_evictions;
	uint64_t gen;
};
void store_remote_stats(const struct store_remote *r, struct store_remote_stats *out);

/* Opens the object in the file @fd (dup()ed): a local object, or through @st's
 * remote for a reference file.  Errors as store_object_open_fd(), and -EREMOTE for
 * a reference file of a store with no remote attached; the remote source's errors. */
int store_object_open(const struct store *st, int fd, const char *logname,
		      struct store_object **out);

struct store_push_opts {
	bool progress; /* a progress line on stderr */
};

struct store_push_stats {
	uint64_t files, dirs;
	uint64_t uploaded, skipped; /* objects sent / already in the bucket */
	uint64_t bytes_uploaded;
	uint64_t gen;	/* the generation published (the old one if unchanged) */
	bool unchanged; /* the bucket already held this tree: no new generation */
	double seconds;
};

/* Publishes @st to the bucket of @o: every object not there yet (named by its
 * identity), then the superblock, then the manifest, so readers never see a
 * half-published version.  Refuses (before uploading anything, naming each) plain
 * files not compacted yet, symlinks and special files.
 * Returns 0; -EINVAL something in the store cannot be pushed; the client's errors. */
int store_push(struct store *st, const struct store_remote_opts *o,
	       const struct store_push_opts *po, struct store_push_stats *stats);

/* --- reading objects ---------------------------------------------------------- */

/* Looks at the first bytes of the open file @fd.
 * Returns 1 and sets *logical_size if it is an object; 0 if it is a plain file;
 * -EUCLEAN (logged with @logname) if it starts like an object but the header is
 * bad; -EPROTONOSUPPORT for an object of a newer format; -errno on I/O errors. */
int store_object_probe(int fd, const char *logname, uint64_t *logical_size);

/* store_object_probe(), also setting *stored_size for an object: the bytes it takes
 * in its store (the remote object's for a reference file of a remote store's view). */
int store_object_probe_sizes(int fd, const char *logname, uint64_t *logical_size,
			     uint64_t *stored_size);

struct store_object_info {
	uint64_t size;	 /* logical bytes */
	uint64_t stored; /* bytes of chunk frames (what compression achieved) */
	uint64_t nchunks;
	uint32_t chunk_size;
	int level;
	struct store_faiss_info faiss;
};

/* Opens the object @name in directory @dirfd (O_NOFOLLOW): reads and checks the
 * header and trailer (chunk table).  @logname names it in log lines (borrowed for
 * the life of the object: copy it if needed - the object keeps its own copy).
 * Errors: -EUCLEAN corrupt; -EPROTONOSUPPORT newer format; -EMEDIUMTYPE a plain
 * file (or a special file), not an object; -EISDIR a directory; -ELOOP a symlink;
 * -errno from openat/pread.
 * Caller frees with store_object_free(). */
int store_object_openat(int dirfd, const char *name, const char *logname,
			struct store_object **out);

/* Same, on an fd the caller owns (the object dup()s it). */
int store_object_open_fd(int fd, const char *logname, struct store_object **out);

void store_object_free(struct store_object *o);

/* Borrowed; valid until store_object_free(). */
const struct store_object_info *store_object_info(const struct store_object *o);

/* A 128-bit identity of the object's content (derived from its trailer checksum
 * and header), equal for byte-identical objects; a cache key. */
void store_object_id(const struct store_object *o, uint64_t id[2]);

/* Logical length of chunk @idx (chunk_size, or less for the last). */
size_t store_object_chunk_len(const struct store_object *o, uint64_t idx);

/* Kind (enum fmt_chunk_kind) and stored length of chunk @idx.  Past the end,
 * kind is -EINVAL and length 0; a record changed on disk since open (logged)
 * gives -EUCLEAN and 0. */
int store_object_chunk_kind(const struct store_object *o, uint64_t idx);
uint32_t store_object_chunk_stored(const struct store_object *o, uint64_t idx);

/* XXH3-64 of chunk @idx's logical bytes as recorded in the chunk table (no I/O,
 * not verified against the data); lets import skip files already stored.
 * @idx must be < nchunks. */
uint64_t store_object_chunk_hash(const struct store_object *o, uint64_t idx);

/* Decompression state for one thread: a ZSTD_DCtx and a read buffer.
 * One per thread; never shared.  Free with store_dctx_free() (NULL is fine).
 * Returns NULL on allocation failure. */
struct store_dctx *store_dctx_new(void);
void store_dctx_free(struct store_dctx *dc);

/* Reads chunk @idx into @dst (store_object_chunk_len() bytes), verifying its
 * checksum.  Thread-safe for distinct @dc.  Errors: -EUCLEAN (corrupt: bad frame,
 * wrong length or checksum mismatch; logged with file, chunk and offset); -EINVAL
 * idx out of range; -EIO/-errno from pread.  On error @dst holds garbage. */
int store_object_read_chunk(const struct store_object *o, uint64_t idx, struct store_dctx *dc,
			    void *dst);

/* Reads logical bytes [off, off+len) into @buf, chunk by chunk, without a cache
 * (tools: export, verify).  Returns bytes read (short only at EOF) or -errno. */
ssize_t store_object_pread(const struct store_object *o, struct store_dctx *dc, void *buf,
			   size_t len, uint64_t off);

/* --- writing objects ---------------------------------------------------------- */

/* Compression state for one thread (ZSTD_CCtx + buffers).  Never shared. */
struct store_cctx *store_cctx_new(void);
void store_cctx_free(struct store_cctx *cc);

/* One encoded chunk, ready to append.  data is owned by the struct: free with
 * store_chunk_release(); store_chunk_encode() reuses its buffer. */
struct store_chunk {
	uint8_t *data; /* the zstd frame to store */
	size_t cap;    /* allocated bytes of data */
	uint32_t stored_len;
	uint32_t logical_len;
	uint8_t kind;	/* enum fmt_chunk_kind */
	uint8_t filter; /* enum fmt_filter (ZSTD chunks only) */
	uint64_t hash;	/* XXH3-64 of the logical bytes */
};

/* Encodes @len logical bytes (1..chunk_size): hole if all zero; zstd at @level,
 * with or without a byte-plane filter, whichever is smaller, if that saves at
 * least 1/8; else a raw frame.  Pure: thread-safe for distinct @cc.
 * Returns 0, -ENOMEM, or -EINVAL. */
int store_chunk_encode(struct store_cctx *cc, const void *in, size_t len, int level,
		       struct store_chunk *out);
void store_chunk_release(struct store_chunk *c);

/* Copies chunk @idx's stored frame as it is (no decompression) into @out, for
 * store_writer_append_chunk() to a writer with the same chunk size: a new version
 * of a file reuses the chunks it shares with the old one.  Only the chunk record is
 * checked, not the frame (read the new object back before publishing it).
 * Returns 0; -EINVAL idx out of range; -EUCLEAN bad record; -ENOMEM; -EIO the
 * object is shorter than its table; -errno of pread. */
int store_object_chunk_copy(const struct store_object *o, uint64_t idx, struct store_chunk *out);

/* Starts a new object in STORE/.faissfs/tmp/ with @p (NULL: store defaults).
 * Errors: -EROFS store opened read-only; -EINVAL bad params; -errno.
 * The writer is finished by store_writer_commit() or store_writer_abort(). */
int store_writer_new(struct store *st, const struct store_params *p, struct store_writer **out);

/* Appends logical bytes; compresses each full chunk inline (one thread). */
int store_writer_write(struct store_writer *w, const void *buf, size_t len);

/* Appends one chunk already encoded (by any thread) at the writer's params.
 * Chunks must come in order; every chunk but the last must be full.
 * Not to be mixed with store_writer_write() on the same writer. */
int store_writer_append_chunk(struct store_writer *w, const struct store_chunk *c);

/* Gives the writer the first bytes of the logical file (for the FAISS header) when
 * it was fed with store_writer_append_chunk(); store_writer_write() does it itself. */
void store_writer_set_head(struct store_writer *w, const void *buf, size_t len);

/* Finishes the object: writes the trailer and header, fsyncs, sets @mode and
 * @mtime (NULL: now), renames it to @name in @dirfd replacing any old file
 * atomically, fsyncs @dirfd.  Frees @w whatever happens; on failure the temp
 * file is removed and the old file, if any, is intact.  Errors: -errno (ENOSPC...). */
int store_writer_commit(struct store_writer *w, int dirfd, const char *name, mode_t mode,
			const struct timespec *mtime);

/* Renames the temp file tmp/@tmpname over every name in the store of the file @was
 * (its st_dev and st_ino: a file with several names), each directory fsynced; the
 * temp file is gone afterwards in every case.  Never follows a symlink or crosses a
 * mount.  Returns the number of names replaced, -ENOENT if none was found, or
 * -errno (logged: the names done hold the new file, the others the old one, both
 * whole). */
int store_relink_tmp(struct store *st, const char *tmpname, const struct stat *was);

/* Like commit, but leaves the finished object in tmp/ and gives its name there
 * (caller frees) for checks before publishing with store_publish_tmp(). */
int store_writer_finish(struct store_writer *w, char **tmpname);
int store_publish_tmp(struct store *st, const char *tmpname, int dirfd, const char *name,
		      mode_t mode, const struct timespec *mtime);
/* Removes a finished temp object (on a failed check). */
void store_discard_tmp(struct store *st, const char *tmpname);

/* The tmp directory fd, borrowed (for opening a finished temp object). */
int store_tmp_fd(const struct store *st);

void store_writer_abort(struct store_writer *w);

/* --- import and export (import.c, export.c) ----------------------------------- */

struct store_import_opts {
	unsigned threads;		   /* compression threads; 0 = number of CPUs */
	bool progress;			   /* print bytes, rate and ETA to stderr */
	const struct store_params *params; /* NULL: store defaults */
};

struct store_import_stats {
	uint64_t files, dirs, skipped; /* skipped: already in the store and identical */
	uint64_t symlinks, specials;   /* specials: FIFOs, sockets, devices */
	uint64_t links;		       /* names made hard links to an earlier name */
	uint64_t logical_bytes, stored_bytes;
	double seconds;
};

/* Copies the data dir @src into the store: every directory, regular file, symlink
 * and special file (FIFO, socket, device), keeping names, modes and mtimes (and
 * the owner of symlinks and special files).  Symlinks are stored as symlinks with
 * the same target, never followed; special files as the same node (mknodat:
 * devices need CAP_MKNOD); names of one source inode as hard links in the store,
 * so the object is written once.  Sets FMT_SB_RO_COMPAT_LINKS
 * (store_feature_links()) before making any of those.  First checks the whole of
 * @src and refuses (-EINVAL, each problem logged) unreadable entries, mount
 * points and the reserved name before writing anything.  Each object is read
 * back and compared with the source bytes before it is published.  Never writes
 * to @src.  Re-runnable: a file whose object already holds identical bytes is
 * skipped, an entry that already is the same symlink, node or link is kept. */
int store_import(struct store *st, const char *src, const struct store_import_opts *opts,
		 struct store_import_stats *stats);

/* Writes every file of the store to @dst (created; must not exist or be empty),
 * byte-identical, with modes and mtimes; symlinks with the same target (never
 * followed), FIFOs, sockets and devices as the same nodes (with their owner too;
 * devices need CAP_MKNOD), and the names of one store inode as hard links of one
 * file.  Returns 0 or -errno, logged (-EINVAL: a mount point in the store). */
int store_export(struct store *st, const char *dst, bool progress);

/* --- access counts (access.c) ------------------------------------------------- */

/* How often each index file was opened, kept in STORE/.faissfs/access so that a
 * later mount can warm the most used ones (FORMAT.md, section 7).  Advisory. */
#define STORE_ACCESS_MAX 4096 /* records in the file, at most */

struct store_access {
	char *path;	/* relative to the store root, e.g. "acme/idx1/index.faiss" */
	uint64_t count; /* > 0 */
};

/* True if @path may be a record's path: relative, no empty, "." or ".." component,
 * not under .faissfs, no TAB or newline, shorter than PATH_MAX. */
bool store_access_path_ok(const char *path);

/* Reads the access counts.  Returns the number of records (0 is possible) and sets
 * *out (caller frees with store_access_free()).  Errors: -ENOENT no file yet;
 * -EUCLEAN damaged (logged with the line and offset: ignore it, the next save
 * replaces it); -ENOMEM; -errno. */
ssize_t store_access_load(const struct store *st, struct store_access **out);

/* Replaces the access file with @n records (tmp file + rename; not fsynced: a crash
 * keeps the old file or the new one, or a cut one that loading refuses).
 * Errors: -EROFS store opened read-only; -EINVAL more than STORE_ACCESS_MAX records
 * or a bad path or zero count; -errno writing (logged). */
int store_access_save(struct store *st, const struct store_access *recs, size_t n);

/* Frees @n records and the array (NULL is fine). */
void store_access_free(struct store_access *recs, size_t n);

/* --- verify (verify.c) and the daemon lock (superblock.c) -------------------- */

struct store_verify_problem {
	const char *path; /* relative to the store root; borrowed for the callback */
	int64_t chunk;	  /* chunk index, or -1 for the whole file */
	int64_t offset;	  /* stored byte offset in the file, or -1 */
	int err;	  /* -EUCLEAN corrupt, or the -errno met */
	const char *what; /* what is wrong, for people; borrowed for the callback */
};

struct store_verify_opts {
	unsigned threads; /* 0 = number of CPUs */
	bool repair;	  /* quarantine damaged objects, remove tmp/ leftovers */
	bool progress;	  /* progress line on stderr */
	/* Called once per problem, never concurrently (from any thread). */
	void (*report)(void *arg, const struct store_verify_problem *p);
	void *arg;
};

struct store_verify_stats {
	uint64_t files, objects, plain, dirs; /* files: regular files checked, one per inode */
	uint64_t symlinks, special;	      /* special: FIFOs, sockets, devices (valid entries) */
	uint64_t links;	  /* names of a hard-linked file besides the one checked */
	uint64_t skipped; /* mount points in the store: not crossed (warned) */
	uint64_t chunks, logical_bytes, stored_bytes;
	uint64_t problems, quarantined, tmp_removed;
	double seconds;
};

/* Checks every object of @st: header, trailer, chunk table and frame layout,
 * object length, the FAISS header of chunk 0 against the trailer, and every
 * chunk (decoded and hashed), on opts->threads threads.  Each problem goes to
 * opts->report with file, chunk and offset (and the store logs it).  With
 * opts->repair (@st opened read-write) damaged objects are moved to
 * .faissfs/quarantine/<UTC time>/<path>, never deleted, and temp objects idle
 * for a minute are removed from .faissfs/tmp.  Symlinks (never followed) and
 * special files are counted as valid entries; a file with several names (hard
 * links) is checked once; a mount point inside the store is skipped with a
 * warning.
 * Returns 0 if all is well, -EUCLEAN if any problem was found (@stats filled in
 * both cases), -EROFS repair on a read-only store, -ENOMEM or -errno if the
 * check could not run. */
int store_verify(struct store *st, const struct store_verify_opts *opts,
		 struct store_verify_stats *stats);

/* Takes the store's daemon lock: flock(2) on STORE/.faissfs/lock, with the
 * caller's PID written in it (on a read-only filesystem the lock is taken on
 * .faissfs itself and no PID can be written).  Returns the lock fd (>= 0, give it
 * to store_unlock()) or -EBUSY when another process holds it (*holder set to its
 * PID, or 0 if unknown; logged), or -errno. */
int store_lock(const struct store *st, pid_t *holder);

/* Writes the current PID into the lock @fd (after a fork that keeps the lock). */
void store_lock_update_pid(int fd);

/* Releases the lock (closing @fd; -1 is fine).  The file stays. */
void store_unlock(int fd);

#endif
