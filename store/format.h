/* format.h - the faissfs store format, version 1.2, in one header.
 *
 * The prose spec with byte tables is store/FORMAT.md; this header and that file
 * must agree.  All integers are little-endian and fixed width; every structure has
 * a static size assert.  Readers decode with the fmt_get*() helpers below and
 * check every length from disk against what remains before using it.
 *
 * A store is a directory:
 *   STORE/.faissfs/superblock     struct fmt_superblock (64 bytes)
 *   STORE/.faissfs/tmp/           objects being written (removed on publish)
 *   STORE/<tenant>/<index>/<file> one object per logical file, same name
 * Directories are plain directories.  A file whose first 16 bytes are an object
 * header prefix (skippable-frame magic + "FFSOBJ1") is an object; any other
 * regular file is a plain file, served as it is.  Symlinks, hard links, FIFOs,
 * sockets and device nodes are stored natively, as themselves (a store with any
 * has FMT_SB_RO_COMPAT_LINKS set); faissfs never follows a symlink of the store.
 *
 * An object is a valid sequence of zstd frames, so `zstd -d < object` decodes;
 * it prints the logical file when no chunk is filtered (FMT_OBJ_INCOMPAT_FILTER
 * clear), else filtered chunks come out in their plane order (use faissfs export):
 *   [header: skippable frame, 64 bytes]
 *   [chunk 0 frame] [chunk 1 frame] ...   one zstd frame per chunk (see kinds)
 *   [trailer: skippable frame: MessagePack map + 8-byte XXH3-64 of the map]
 */
#ifndef FAISSFS_STORE_FORMAT_H
#define FAISSFS_STORE_FORMAT_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#define FMT_VERSION_MAJOR 1
#define FMT_VERSION_MINOR 2 /* 1.1: byte-plane chunk filters; 1.2: native links */
/* The minor version objects carry: objects did not change in 1.2, and a 1.2
 * writer keeps writing the bytes (hence the identities) a 1.1 writer does. */
#define FMT_OBJ_VERSION_MINOR 1

/* --- superblock: STORE/.faissfs/superblock ----------------------------------- */

#define FMT_META_DIR	    ".faissfs"
#define FMT_SUPERBLOCK_NAME "superblock"
#define FMT_TMP_DIR	    "tmp"
#define FMT_ACCESS_NAME	    "access"   /* access counts, advisory text (FORMAT.md 7) */
#define FMT_SB_MAGIC	    "FFSSTORE" /* 8 bytes, no NUL on disk */

struct fmt_superblock {
	uint8_t magic[8];	    /*  0 "FFSSTORE" */
	uint16_t version_major;	    /*  8 FMT_VERSION_MAJOR; a reader refuses a larger one */
	uint16_t version_minor;	    /* 10 additions that old readers may ignore */
	uint32_t feature_incompat;  /* 12 bits a reader must know, or refuse the store */
	uint32_t feature_ro_compat; /* 16 bits a reader may ignore only when mounting read-only */
	uint32_t feature_compat;    /* 20 bits any reader may ignore */
	uint32_t chunk_size;	    /* 24 default chunk size for new objects (bytes) */
	int32_t zstd_level;	    /* 28 default zstd level for new objects */
	uint8_t uuid[16];	    /* 32 random, identifies the store */
	uint64_t created_sec;	    /* 48 creation time, seconds since the epoch */
	uint64_t checksum;	    /* 56 XXH3-64 of bytes 0..55 */
};
static_assert(sizeof(struct fmt_superblock) == 64, "superblock is 64 bytes on disk");

/* Read-only-compatible feature bits (feature_ro_compat).  LINKS (since 1.2): the
 * store may hold symlinks, hard links, FIFOs, sockets or device nodes, stored as
 * themselves; a reader that does not know the bit may open the store read-only
 * only (its compaction or rewrites would split hard links). */
#define FMT_SB_RO_COMPAT_LINKS 0x1u
#define FMT_SB_MINOR_LINKS     2 /* the minor version a store with LINKS says at least */

/* Feature bits known to this version. */
#define FMT_SB_INCOMPAT_KNOWN  0u
#define FMT_SB_RO_COMPAT_KNOWN FMT_SB_RO_COMPAT_LINKS

/* --- object header: the first 64 bytes of every object ------------------------ */

#define FMT_SKIPPABLE_MAGIC_HEADER  0x184D2A5Au /* zstd skippable frame, nibble A */
#define FMT_SKIPPABLE_MAGIC_TRAILER 0x184D2A5Bu /* zstd skippable frame, nibble B */
#define FMT_ZSTD_FRAME_MAGIC	    0xFD2FB528u
#define FMT_OBJ_MAGIC		    "FFSOBJ1" /* 8 bytes with its NUL */
#define FMT_OBJ_HEADER_SIZE	    64u

struct fmt_object_header {
	uint32_t frame_magic;	   /*  0 FMT_SKIPPABLE_MAGIC_HEADER */
	uint32_t frame_size;	   /*  4 56: bytes of this frame after these 8 */
	uint8_t magic[8];	   /*  8 "FFSOBJ1\0" */
	uint16_t version_major;	   /* 16 FMT_VERSION_MAJOR */
	uint16_t version_minor;	   /* 18 FMT_OBJ_VERSION_MINOR (readers accept any) */
	uint32_t feature_incompat; /* 20 bits a reader must know (FMT_OBJ_INCOMPAT_*) */
	uint32_t chunk_size;	   /* 24 power of two in [FMT_CHUNK_MIN, FMT_CHUNK_MAX] */
	uint32_t reserved0;	   /* 28 zero */
	uint64_t logical_size;	   /* 32 bytes of the logical file */
	uint64_t trailer_offset;   /* 40 offset of the trailer frame's magic */
	uint32_t trailer_size;	   /* 48 bytes of the whole trailer frame, magic included */
	uint32_t reserved1;	   /* 52 zero */
	uint64_t checksum;	   /* 56 XXH3-64 of bytes 0..55 */
};
static_assert(sizeof(struct fmt_object_header) == FMT_OBJ_HEADER_SIZE, "header is 64 bytes");

/* Incompatible object features: a reader refuses an object with a bit it does not know. */
#define FMT_OBJ_INCOMPAT_FILTER 0x1u /* some chunk has filter != 0 (format 1.1) */
#define FMT_OBJ_INCOMPAT_KNOWN	FMT_OBJ_INCOMPAT_FILTER

#define FMT_CHUNK_MIN	  (4u * 1024)	      /* 4 KiB */
#define FMT_CHUNK_MAX	  (16u * 1024 * 1024) /* 16 MiB */
#define FMT_CHUNK_DEFAULT (256u * 1024)	      /* chosen by bench/chunk_sweep.sh, see README */
#define FMT_LEVEL_DEFAULT 1 /* with the filter, 1 beats 3 on floats: bench/bench_compress */

/* --- trailer --------------------------------------------------------------------
 * [u32 FMT_SKIPPABLE_MAGIC_TRAILER][u32 frame size = map bytes + 8]
 * [MessagePack map][u64 XXH3-64 of the map bytes]
 * Map keys (strings); unknown keys are ignored by readers:
 *   "size"       uint   logical size (must equal the header's)
 *   "chunk_size" uint   (must equal the header's)
 *   "level"      int    zstd level the writer used
 *   "stored"     uint   sum of the chunk frames' stored lengths
 *   "faiss"      map or nil: "fourcc" str(4), "binary" bool, "d" int, "ntotal" int,
 *                "metric" int, "is_trained" bool, "code_size" int (binary only)
 *   "chunks"     bin    nchunks * 24 bytes of struct fmt_chunk_rec, in chunk order;
 *                nchunks = ceil(size / chunk_size)
 * The chunk table is one bin so a reader can index it in O(1), or map it in pieces.
 */
#define FMT_TRAILER_MAX (1u << 30) /* a trailer longer than this is corrupt */

enum fmt_chunk_kind {
	FMT_CHUNK_HOLE = 0, /* all zero; the stored frame is an RLE frame, never read */
	FMT_CHUNK_RAW = 1,  /* stored frame has only raw blocks (did not shrink by 1/8) */
	FMT_CHUNK_ZSTD = 2, /* compressed zstd frame */
};

struct fmt_chunk_rec {
	uint64_t offset;     /*  0 offset of the chunk's zstd frame in the object */
	uint32_t stored_len; /*  8 bytes of that frame */
	uint8_t kind;	     /* 12 enum fmt_chunk_kind */
	uint8_t filter;	     /* 13 enum fmt_filter; != 0 only on ZSTD chunks */
	uint16_t reserved;   /* 14 zero */
	uint64_t hash;	     /* 16 XXH3-64 of the chunk's logical bytes */
};
static_assert(sizeof(struct fmt_chunk_rec) == 24, "chunk record is 24 bytes on disk");
#define FMT_CHUNK_REC_SIZE 24u

/* Chunk filters (format 1.1).  A filtered chunk's zstd frame decodes to the
 * chunk's bytes rearranged; the reader undoes that.  PLANES4_Pn: the chunk is
 * read as 4-byte values whose first whole one starts at byte n (the phase) and
 * the frame decodes to
 *   [n head bytes][byte 0 of every value][byte 1 ...][byte 2 ...][byte 3 ...][tail]
 * with v = (len - n) / 4 values (n = len when len < n) and the tail the
 * (len - n) % 4 bytes after the last whole value.  An object with any filtered
 * chunk sets FMT_OBJ_INCOMPAT_FILTER. */
enum fmt_filter {
	FMT_FILTER_NONE = 0,
	FMT_FILTER_PLANES4_P0 = 1, /* phase 0 .. 3: ids 1 .. 4 */
	FMT_FILTER_PLANES4_P3 = 4,
};
#define FMT_FILTER_MAX FMT_FILTER_PLANES4_P3

/* --- remote stores (FORMAT.md section 8) ---------------------------------------
 * A store published to an S3 bucket by `faissfs push` is, under PREFIX/:
 *   PREFIX/superblock          the local store's superblock, as it is
 *   PREFIX/objects/<id>        each object, named by its identity (32 hex digits of
 *                              store_object_id(): id[0] then id[1], each %016x)
 *   PREFIX/manifest            the tree (MessagePack, below), written last
 * A node serving it keeps a local *view*: a store directory whose files are
 * reference files (below) naming remote objects; the chunk frames are fetched
 * by ranged GETs.
 *
 * Manifest: a MessagePack map; unknown keys are ignored:
 *   "format"  uint  FMT_MANIFEST_VERSION (a reader refuses a larger one)
 *   "gen"     uint  1 for the first push, +1 for each later one
 *   "created" uint  seconds since the epoch
 *   "entries" array of arrays, parents before their entries:
 *       [path str, mode uint, mtime_sec int, mtime_nsec uint, size uint,
 *        stored uint, id str(32) or nil (a directory), header bin(64) or nil]
 */
#define FMT_MANIFEST_NAME    "manifest"
#define FMT_MANIFEST_VERSION 1u
#define FMT_REMOTE_OBJ_DIR   "objects"
#define FMT_ID_HEX	     32u /* characters of an object identity */

/* Reference file (a view's stand-in for a remote object), 112 bytes:
 * a zstd skippable frame, so no zstd tool mistakes it for data. */
#define FMT_SKIPPABLE_MAGIC_REF 0x184D2A5Cu /* nibble C */
#define FMT_REF_MAGIC		"FFSREF1"   /* 8 bytes with its NUL */
#define FMT_REF_SIZE		112u

struct fmt_ref {
	uint32_t frame_magic; /*   0 FMT_SKIPPABLE_MAGIC_REF */
	uint32_t frame_size;  /*   4 FMT_REF_SIZE - 8 */
	uint8_t magic[8];     /*   8 "FFSREF1\0" */
	uint64_t stored_size; /*  16 bytes of the remote object */
	uint64_t id[2];	      /*  24 its identity (store_object_id()) */
	uint8_t header[64];   /*  40 a copy of the object's header */
	uint64_t checksum;    /* 104 XXH3-64 of bytes 0..103 */
};
static_assert(sizeof(struct fmt_ref) == FMT_REF_SIZE, "reference file is 112 bytes");

/* --- little-endian helpers --------------------------------------------------- */

static inline uint16_t fmt_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fmt_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t fmt_get64(const uint8_t *p)
{
	return (uint64_t)fmt_get32(p) | ((uint64_t)fmt_get32(p + 4) << 32);
}

static inline void fmt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void fmt_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void fmt_put64(uint8_t *p, uint64_t v)
{
	fmt_put32(p, (uint32_t)v);
	fmt_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
