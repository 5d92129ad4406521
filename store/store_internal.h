/* store_internal.h - private to store/: the concrete types behind store.h and the
 * helpers its files share (chunk frames, trailer encode/decode, header checks).
 * Nothing here is visible outside store/.
 */
#ifndef FAISSFS_STORE_INTERNAL_H
#define FAISSFS_STORE_INTERNAL_H

#include "store.h"
#include "format.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <zstd.h>
#include <zstd_errors.h>

struct store_pool;

struct store {
	int root_fd; /* O_DIRECTORY on the store root */
	int meta_fd; /* STORE/.faissfs */
	int tmp_fd;  /* STORE/.faissfs/tmp, -1 when read-only */
	int flags;   /* STORE_RDONLY... */
	char *path;  /* as given to store_open() */
	struct store_params params;
	uint8_t uuid[16];
	/* The superblock's feature_ro_compat as last read or written: only bits are
	 * ever added (store_feature_links()), by any thread, hence atomic. */
	atomic_uint_fast32_t ro_compat;
	struct store_remote *remote; /* borrowed: a view of a remote store (remote.c) */
};

struct store_dctx {
	ZSTD_DCtx *zd;
	uint8_t *rbuf; /* stored bytes of one chunk */
	size_t rcap;
	uint8_t *lbuf; /* logical bytes of one chunk (partial reads) */
	size_t lcap;
	uint8_t *fbuf; /* a filtered chunk's bytes before store_planes4_join() */
	size_t fcap;
};

/* Which filters store_chunk_encode() tries besides none. */
enum store_filter_search {
	STORE_FILTERS_GUESS = 0, /* byte planes at the phase store_planes4_guess() picks */
	STORE_FILTERS_OFF,	 /* no filter (what format 1.0 writers did) */
	STORE_FILTERS_ALL,	 /* byte planes at each of the 4 phases (4x the work) */
};

struct store_cctx {
	ZSTD_CCtx *zc;
	int level; /* level currently set on zc, 0 = none yet */
	enum store_filter_search search;
	uint8_t *fbuf; /* the chunk split into planes */
	size_t fcap;
	uint8_t *zbuf; /* a candidate frame */
	size_t zcap;
};

/* The decoded trailer. */
struct store_meta {
	uint64_t size;
	uint32_t chunk_size;
	int level;
	uint64_t stored;
	struct store_faiss_info faiss;
	uint64_t nchunks;
	const uint8_t *table;	    /* nchunks * 24 on-disk records, inside the parsed buffer */
	uint64_t hole_hash_full;    /* XXH3 of a full chunk of zeros, if the table has a hole */
	uint64_t hole_hash_last;    /* of the last chunk's zeros, if the last chunk is a hole */
	struct fmt_chunk_rec *recs; /* store_meta_decode() only: decoded records; owned */
};

/* An open object.  The chunk table stays in its on-disk form and a record is
 * decoded (and its bounds checked again) on each access, so memory does not
 * grow with the file: a small trailer is copied to the heap, a large one
 * (STORE_TABLE_MAP_MIN bytes and more) is mapped read-only, so the kernel's page
 * cache holds it and may evict it.  Immutable after open; any thread may read. */
struct store_object {
	int fd; /* the local file, or -1 when the bytes come from another source */
	const struct store_source_ops *sops; /* where the stored bytes come from */
	void *sarg;			     /* sops' argument; released at free */
	char *logname;
	struct store_object_info info;
	uint64_t header_checksum;
	uint64_t trailer_hash;
	uint64_t trailer_offset;
	uint32_t incompat;	 /* the header's feature_incompat */
	uint64_t hole_hash_full; /* see struct store_meta */
	uint64_t hole_hash_last;
	const uint8_t *table; /* info.nchunks raw records, in @trailer or in @map */
	uint8_t *trailer;     /* heap copy of a small trailer, or NULL */
	void *map;	      /* read-only mapping of a large trailer, or NULL */
	size_t map_len;
};

/* Trailers of at least this many bytes are mapped rather than copied (about
 * 43,000 chunks: 10 GiB of logical file at 256 KiB chunks). */
#define STORE_TABLE_MAP_MIN (1u << 20)

/* Decodes record @idx (< nchunks) of @o into @r and checks it as open did.
 * Returns 0, or -EUCLEAN / -EPROTONOSUPPORT (logged; only if the file changed
 * under the open object). */
int store_object_rec(const struct store_object *o, uint64_t idx, struct fmt_chunk_rec *r);

/* Reads @len stored bytes of @o at @off through its byte source: the count (short
 * only at the object's end) or -errno. */
static inline ssize_t store_object_src_read(const struct store_object *o, void *buf, size_t len,
					    uint64_t off, enum store_src_what what)
{
	return o->sops->pread(o->sarg, buf, len, off, what);
}

/* The local byte source: pread(2) on the fd given as its argument
 * ((void *)(intptr_t)fd; the object owns and closes the fd). */
extern const struct store_source_ops store_local_source;

/* --- reference files (remote_ref.c; format.h, FORMAT.md section 8) ------------- */

/* True if the first bytes at @buf (@n read) start like a reference file. */
bool store_ref_is_ref(const uint8_t *buf, size_t n);

/* Checks and decodes a reference file's @n bytes into @ref and the object header
 * it carries into @h.  Returns 0, or -EUCLEAN / -EPROTONOSUPPORT (logged). */
int store_ref_parse(const uint8_t *buf, size_t n, const char *logname, struct fmt_ref *ref,
		    struct fmt_object_header *h);

/* Encodes a reference file for the object of identity @id, @stored_size bytes,
 * whose header is @header. */
void store_ref_build(uint8_t out[FMT_REF_SIZE], const uint64_t id[2], uint64_t stored_size,
		     const uint8_t header[FMT_OBJ_HEADER_SIZE]);

/* Writes the 32 hex digits of @id and a NUL into @hex. */
void store_id_hex(const uint64_t id[2], char hex[FMT_ID_HEX + 1]);

/* True if the @n MessagePack bytes at @p are exactly one well-formed object whose
 * every declared length and count fits in the bytes that remain (meta.c).  Call
 * it before msgpack_unpack_next(), which allocates for a container's declared
 * count before reading it. */
bool store_mp_well_formed(const uint8_t *p, size_t n);

/* --- manifests (manifest.c) ---------------------------------------------------- */

struct store_manifest_entry {
	char *path; /* relative to the store root; owned */
	uint32_t mode;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;	 /* logical bytes (0 for directories) */
	uint64_t stored; /* bytes of the object */
	bool dir;
	uint64_t id[2];			     /* files: the object's identity */
	uint8_t header[FMT_OBJ_HEADER_SIZE]; /* files: a copy of its header */
};

struct store_manifest {
	uint64_t gen, created;
	size_t n, cap;
	struct store_manifest_entry *e; /* parents before their entries */
};

/* Appends a copy of @e (its path duplicated).  Returns 0 or -ENOMEM. */
int store_manifest_add(struct store_manifest *m, const struct store_manifest_entry *e);
/* Frees the entries and zeroes @m (NULL is fine). */
void store_manifest_release(struct store_manifest *m);
/* Encodes @m into a malloc()ed buffer (caller frees).  Returns 0 or -ENOMEM. */
int store_manifest_encode(const struct store_manifest *m, uint8_t **out, size_t *len);
/* Decodes and checks a manifest; on success fills @out (release it with
 * store_manifest_release()).  Returns 0, -EUCLEAN damaged, -EPROTONOSUPPORT
 * newer format (both logged naming @logname), -ENOMEM. */
int store_manifest_decode(const uint8_t *buf, size_t len, const char *logname,
			  struct store_manifest *out);

/* --- the remote view (remote.c, remote_view.c) ----------------------------------- */

struct remote_s3;

/* What store_remote_sync_view() needs of a struct store_remote. */
struct store_remote_sync_io {
	struct remote_s3 *s3;
	const char *prefix, *url, *view;
	char **etag;   /* the manifest's ETag last applied (updated on success) */
	uint64_t *gen; /* its generation (updated on success) */
};

/* The client and the key prefix ("" or "PREFIX/") of @r; borrowed. */
struct remote_s3 *store_remote_s3(const struct store_remote *r);
const char *store_remote_prefix(const struct store_remote *r);

int store_remote_sync_view(const struct store_remote_sync_io *io, store_remote_changed_fn fn,
			   void *arg, struct store_remote_sync_stats *stats);

/* Grows *buf to at least @need bytes.  Returns 0 or -ENOMEM (buffer unchanged). */
int store_buf_reserve(uint8_t **buf, size_t *cap, size_t need);

/* Size of the hand-built raw frame (see chunk.c) for @len logical bytes. */
size_t store_raw_frame_size(size_t len);

/* Writes into @dst a zstd frame of raw blocks holding @src (@len bytes, >= 1).
 * @dst has store_raw_frame_size(len) bytes.  Returns the frame size. */
size_t store_raw_frame_build(uint8_t *dst, const void *src, size_t len);

/* Size of the hand-built RLE frame that decodes to @len zero bytes. */
size_t store_hole_frame_size(size_t len);
size_t store_hole_frame_build(uint8_t *dst, size_t len);

/* Builds the 64-byte object header (checksum included) with the incompatible
 * feature bits @incompat (FMT_OBJ_INCOMPAT_*). */
void store_header_build(uint8_t out[FMT_OBJ_HEADER_SIZE], uint32_t chunk_size,
			uint64_t logical_size, uint64_t trailer_offset, uint32_t trailer_size,
			uint32_t incompat);

/* Checks a 64-byte object header (@n bytes were read) of a file of @file_size
 * bytes and decodes it into @h.  Returns 0, -EUCLEAN or -EPROTONOSUPPORT (logged
 * naming @logname). */
int store_header_check(const uint8_t *buf, size_t n, uint64_t file_size, const char *logname,
		       struct fmt_object_header *h);

/* True if the first 16 bytes at @buf (@n read) start like an object. */
bool store_header_is_object(const uint8_t *buf, size_t n);

/* Encodes the trailer frame (magic, size, map, XXH3) for @m, records taken from
 * @recs_raw (nchunks * 24 bytes, on-disk form).  On success *out is malloc()ed
 * (caller frees) and *out_len set.  Returns 0 or -ENOMEM. */
int store_meta_encode(const struct store_meta *m, const uint8_t *recs_raw, uint8_t **out,
		      size_t *out_len);

/* Decodes and checks a whole trailer frame (@buf, @len) against header @h,
 * every chunk record included.  Allocates nothing: on success fills @m, whose
 * m->table points into @buf (valid as long as @buf; m->recs is left unset), and
 * *hash (the XXH3 of the map).  Returns 0, -EUCLEAN or -EPROTONOSUPPORT (logged). */
int store_meta_parse(const uint8_t *buf, size_t len, const struct fmt_object_header *h,
		     const char *logname, struct store_meta *m, uint64_t *hash);

/* store_meta_parse(), then the records decoded into m->recs (malloc()ed, caller
 * frees; for tests and tools).  Returns what parse does, or -ENOMEM. */
int store_meta_decode(const uint8_t *buf, size_t len, const struct fmt_object_header *h,
		      const char *logname, struct store_meta *m, uint64_t *hash);

/* Checks one decoded record @r of chunk @idx of an object whose header has
 * @incompat feature bits and its trailer at @trailer_offset; @hole_hash is the
 * XXH3 of the zeros a hole of this chunk's length holds.  Returns 0, -EUCLEAN or
 * -EPROTONOSUPPORT (logged with @logname and @idx). */
int store_rec_check(const struct fmt_chunk_rec *r, uint64_t idx, uint32_t incompat,
		    uint64_t trailer_offset, uint64_t hole_hash, const char *logname);

/* Encodes/decodes one 24-byte chunk record. */
void store_rec_put(uint8_t *p, const struct fmt_chunk_rec *r);
void store_rec_get(const uint8_t *p, struct fmt_chunk_rec *r);

/* Number of chunks of a @size-byte file cut in @chunk_size pieces. */
static inline uint64_t store_nchunks(uint64_t size, uint32_t chunk_size)
{
	return size / chunk_size + (size % chunk_size != 0);
}

/* True if @len bytes at @p are all zero. */
bool store_is_zero(const void *p, size_t len);

/* --- filters (filter.c) --------------------------------------------------------- */

/* Where the pieces of a PLANES4 filtered chunk lie (format.h): @head bytes, then
 * 4 planes of @nval bytes, then @tail bytes; head + 4 * nval + tail == len. */
struct store_planes4 {
	size_t head, nval, tail;
};
void store_planes4_layout(size_t len, unsigned phase, struct store_planes4 *pl);

/* Splits @len bytes of @in into @out (@len bytes, not overlapping @in) in the
 * PLANES4 order for @phase (0..3). */
void store_planes4_split(const uint8_t *in, size_t len, unsigned phase, uint8_t *out);

/* The inverse of store_planes4_split(): @in (split order) back into @out. */
void store_planes4_join(const uint8_t *in, size_t len, unsigned phase, uint8_t *out);

/* The phase (0..3) at which 4-byte values most likely start in @in: the byte
 * position mod 4 whose bytes repeat most is taken as the values' top byte (the
 * float exponent, the high byte of small integers).  One pass, no allocation. */
unsigned store_planes4_guess(const uint8_t *in, size_t len);

/* Sets which filters store_chunk_encode() tries on @cc (default GUESS). */
void store_cctx_set_filters(struct store_cctx *cc, enum store_filter_search search);

/* Encodes @len bytes of @in as a ZSTD chunk with filter @filter (enum fmt_filter)
 * whatever it saves (tests and the fuzz target; the writer uses
 * store_chunk_encode()).  Returns 0, -EINVAL or -ENOMEM. */
int store_chunk_encode_filter(struct store_cctx *cc, const void *in, size_t len, int level,
			      unsigned filter, struct store_chunk *out);

/* Decodes one stored frame (@src, @slen bytes) of a non-HOLE chunk with filter
 * @filter into @dst, which takes exactly @len logical bytes.  The hash is not
 * checked here.  Returns 0; -EUCLEAN with *bad set to what is wrong (the caller
 * logs it with the file, chunk and offset); -EPROTONOSUPPORT unknown filter;
 * -ENOMEM.  On error @dst holds garbage. */
int store_chunk_decode(struct store_dctx *dc, unsigned filter, const void *src, size_t slen,
		       void *dst, size_t len, const char **bad);

/* Writes all @len bytes of @buf to @fd at its offset: 0, or -errno (-EIO for a
 * write that makes no progress and reports no error).  object_write.c. */
int store_write_all(int fd, const void *buf, size_t len);

/* Reads the target of the symlink @name in @dirfd (never following it; @size: its
 * lstat st_size, a hint).  Returns 0 and sets *out (NUL-terminated, caller frees);
 * -ENAMETOOLONG if the target changed size or does not fit in PATH_MAX; -ENOMEM;
 * -errno of readlinkat (-EINVAL: not a symlink).  io.c. */
int store_readlink_at(int dirfd, const char *name, off_t size, char **out);

/* --- pool.c: worker threads for the chunks of a batch ------------------------ */

/* One index of a job: @worker (0..nthreads-1; 0 is the thread that called
 * store_pool_run()) does item @i.  Returns 0 or -errno. */
typedef int (*store_pool_fn)(void *arg, unsigned worker, unsigned i);

/* A pool of @nthreads workers: the caller of store_pool_run() and nthreads - 1
 * helper threads started here.  Returns 0 and *out (free with store_pool_free()),
 * -ENOMEM, or the -errno of pthread_create() (nothing to free then). */
int store_pool_new(unsigned nthreads, struct store_pool **out);

/* Stops and joins the helpers, frees @p (NULL is fine).  No job may be running. */
void store_pool_free(struct store_pool *p);

/* Runs @fn(@arg, worker, i) for i in 0..n-1 on all workers and returns when all
 * are done: 0, or the error of the lowest failing index (the others still run).
 * One caller at a time. */
int store_pool_run(struct store_pool *p, store_pool_fn fn, void *arg, unsigned n);

/* --- progress.c: the status line of import, export and verify ---------------- */

/* Whether another process holds the daemon lock (store_lock()), without taking it
 * and without logging: returns 1 (*holder set to its PID, or 0 if unknown), 0 if
 * nobody holds it (a daemon may take it right after), or -errno. */
int store_lock_holder(const struct store *st, pid_t *holder);

/* Seconds on the monotonic clock. */
double store_now(void);

struct store_progress {
	bool on, shown;
	const char *verb; /* "import", "export": starts the line */
	uint64_t files_total, files_done;
	uint64_t bytes_total, bytes_done;
	double start, last;
};

/* Zeroes @pr and starts its clock; nothing is shown unless @on. */
void store_progress_start(struct store_progress *pr, const char *verb, bool on);
/* Rewrites the status line, at most 4 times a second unless @force. */
void store_progress_show(struct store_progress *pr, bool force);
/* Clears the status line if one was shown. */
void store_progress_end(struct store_progress *pr);

#endif
