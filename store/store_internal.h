/* store_internal.h - private to store/: the concrete types behind store.h and the
 * helpers its files share (chunk frames, trailer encode/decode, header checks).
 * Nothing here is visible outside store/.
 */
#ifndef FAISSFS_STORE_INTERNAL_H
#define FAISSFS_STORE_INTERNAL_H

#include "store.h"
#include "format.h"

#include <stdint.h>
#include <stddef.h>
#include <zstd.h>
#include <zstd_errors.h>

struct store {
	int root_fd; /* O_DIRECTORY on the store root */
	int meta_fd; /* STORE/.faissfs */
	int tmp_fd;  /* STORE/.faissfs/tmp, -1 when read-only */
	int flags;   /* STORE_RDONLY... */
	char *path;  /* as given to store_open() */
	struct store_params params;
	uint8_t uuid[16];
};

struct store_dctx {
	ZSTD_DCtx *zd;
	uint8_t *rbuf; /* stored bytes of one chunk */
	size_t rcap;
	uint8_t *lbuf; /* logical bytes of one chunk (partial reads) */
	size_t lcap;
};

struct store_cctx {
	ZSTD_CCtx *zc;
	int level; /* level currently set on zc, 0 = none yet */
};

/* The decoded trailer, what the object reader keeps in memory. */
struct store_meta {
	uint64_t size;
	uint32_t chunk_size;
	int level;
	uint64_t stored;
	struct store_faiss_info faiss;
	uint64_t nchunks;
	struct fmt_chunk_rec *recs; /* nchunks records, decoded; owned */
};

struct store_object {
	int fd;
	char *logname;
	struct store_object_info info;
	uint64_t header_checksum;
	uint64_t trailer_hash;
	uint64_t trailer_offset;
	struct fmt_chunk_rec *recs; /* info.nchunks records */
};

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

/* Builds the 64-byte object header (checksum included). */
void store_header_build(uint8_t out[FMT_OBJ_HEADER_SIZE], uint32_t chunk_size,
			uint64_t logical_size, uint64_t trailer_offset, uint32_t trailer_size);

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

/* Decodes and checks a whole trailer frame (@buf, @len) against header @h.
 * On success fills @m (m->recs malloc()ed, caller frees) and *hash (the XXH3 of
 * the map).  Returns 0, -EUCLEAN, -EPROTONOSUPPORT (both logged) or -ENOMEM. */
int store_meta_decode(const uint8_t *buf, size_t len, const struct fmt_object_header *h,
		      const char *logname, struct store_meta *m, uint64_t *hash);

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

#endif
