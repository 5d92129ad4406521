/* chunk.c - encoding one chunk into one zstd frame, and the per-thread contexts.
 *
 * A chunk becomes exactly one zstd frame of one of three kinds (format.h):
 * HOLE (all zero: a hand-built frame of RLE blocks), ZSTD (ZSTD_compress2 at the
 * writer's level, kept only if it saves at least 1/8) or RAW (a hand-built frame
 * of raw blocks).  Every kind decodes with plain zstd, so `zstd -d` works on an
 * object.  The frame layouts are in FORMAT.md; the block rules are RFC 8878.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util/log.h"

/* RFC 8878: a block holds at most 128 KiB; a single-segment frame header is the
 * magic, one descriptor byte and a 4-byte Frame_Content_Size. */
#define BLOCK_MAX	(128u * 1024)
#define FRAME_HDR_SIZE	9u
#define BLOCK_HDR_SIZE	3u
#define FHD_SINGLE_FCS4 0xA0u /* FCS_Field_Size 2 (4 bytes), Single_Segment 1 */
#define BLOCK_TYPE_RAW	0u
#define BLOCK_TYPE_RLE	1u

int store_buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p;

	if (*cap >= need)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = need;
	return 0;
}

bool store_is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	/* Check a short prefix by hand, then let memcmp compare the buffer with
	 * itself shifted by that prefix: fast and branch-free per byte. */
	size_t head = len < 16 ? len : 16;
	for (size_t i = 0; i < head; i++)
		if (b[i])
			return false;
	if (len <= 16)
		return true;
	return memcmp(b, b + 16, len - 16) == 0;
}

static size_t nblocks(size_t len)
{
	return (len + BLOCK_MAX - 1) / BLOCK_MAX;
}

static uint8_t *frame_header(uint8_t *p, size_t len)
{
	fmt_put32(p, FMT_ZSTD_FRAME_MAGIC);
	p[4] = FHD_SINGLE_FCS4;
	fmt_put32(p + 5, (uint32_t)len);
	return p + FRAME_HDR_SIZE;
}

static uint8_t *block_header(uint8_t *p, bool last, unsigned type, size_t size)
{
	uint32_t v = (uint32_t)last | (type << 1) | ((uint32_t)size << 3);

	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	return p + BLOCK_HDR_SIZE;
}

size_t store_raw_frame_size(size_t len)
{
	return FRAME_HDR_SIZE + nblocks(len) * BLOCK_HDR_SIZE + len;
}

size_t store_raw_frame_build(uint8_t *dst, const void *src, size_t len)
{
	const uint8_t *s = src;
	uint8_t *p = frame_header(dst, len);

	while (len) {
		size_t n = len < BLOCK_MAX ? len : BLOCK_MAX;

		p = block_header(p, n == len, BLOCK_TYPE_RAW, n);
		memcpy(p, s, n);
		p += n;
		s += n;
		len -= n;
	}
	return (size_t)(p - dst);
}

size_t store_hole_frame_size(size_t len)
{
	return FRAME_HDR_SIZE + nblocks(len) * (BLOCK_HDR_SIZE + 1);
}

size_t store_hole_frame_build(uint8_t *dst, size_t len)
{
	uint8_t *p = frame_header(dst, len);

	while (len) {
		size_t n = len < BLOCK_MAX ? len : BLOCK_MAX;

		p = block_header(p, n == len, BLOCK_TYPE_RLE, n);
		*p++ = 0;
		len -= n;
	}
	return (size_t)(p - dst);
}

struct store_cctx *store_cctx_new(void)
{
	struct store_cctx *cc = calloc(1, sizeof(*cc));

	if (!cc)
		return NULL;
	cc->zc = ZSTD_createCCtx();
	if (!cc->zc) {
		free(cc);
		return NULL;
	}
	return cc;
}

void store_cctx_free(struct store_cctx *cc)
{
	if (!cc)
		return;
	ZSTD_freeCCtx(cc->zc);
	free(cc);
}

struct store_dctx *store_dctx_new(void)
{
	struct store_dctx *dc = calloc(1, sizeof(*dc));

	if (!dc)
		return NULL;
	dc->zd = ZSTD_createDCtx();
	if (!dc->zd) {
		free(dc);
		return NULL;
	}
	return dc;
}

void store_dctx_free(struct store_dctx *dc)
{
	if (!dc)
		return;
	ZSTD_freeDCtx(dc->zd);
	free(dc->rbuf);
	free(dc->lbuf);
	free(dc);
}

void store_chunk_release(struct store_chunk *c)
{
	if (!c)
		return;
	free(c->data);
	memset(c, 0, sizeof(*c));
}

static int cctx_set_level(struct store_cctx *cc, int level)
{
	size_t r;

	if (cc->level == level)
		return 0;
	r = ZSTD_CCtx_setParameter(cc->zc, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cc->zc, ZSTD_c_contentSizeFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cc->zc, ZSTD_c_checksumFlag, 0);
	if (ZSTD_isError(r)) {
		log_error("zstd: cannot set level %d: %s (use a level from 1 to 19)", level,
			  ZSTD_getErrorName(r));
		cc->level = 0;
		return -EINVAL;
	}
	cc->level = level;
	return 0;
}

/* Encodes @in into out->data; see store.h.  The compressed attempt gets a
 * destination of exactly the largest size we would keep, so zstd stops early
 * (dstSize_tooSmall) on data that does not compress. */
int store_chunk_encode(struct store_cctx *cc, const void *in, size_t len, int level,
		       struct store_chunk *out)
{
	size_t need, keep_max, r;
	int ret;

	if (!cc || !out || !in || len == 0 || len > FMT_CHUNK_MAX)
		return -EINVAL;
	need = store_raw_frame_size(len);
	ret = store_buf_reserve(&out->data, &out->cap, need);
	if (ret)
		return ret;

	out->logical_len = (uint32_t)len;
	out->hash = XXH3_64bits(in, len);
	if (store_is_zero(in, len)) {
		out->kind = FMT_CHUNK_HOLE;
		out->stored_len = (uint32_t)store_hole_frame_build(out->data, len);
		return 0;
	}

	ret = cctx_set_level(cc, level);
	if (ret)
		return ret;
	keep_max = len - len / 8;
	r = ZSTD_compress2(cc->zc, out->data, keep_max, in, len);
	if (!ZSTD_isError(r) && r <= keep_max) {
		out->kind = FMT_CHUNK_ZSTD;
		out->stored_len = (uint32_t)r;
		return 0;
	}
	if (ZSTD_isError(r) && ZSTD_getErrorCode(r) != ZSTD_error_dstSize_tooSmall) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
			return -ENOMEM;
		/* Anything else is a bug of ours or of zstd: still store the data. */
		log_warn("zstd: compressing a chunk failed (%s); storing it uncompressed",
			 ZSTD_getErrorName(r));
	}
	/* A failed compress2 leaves the context mid-frame: reset it for the next. */
	ZSTD_CCtx_reset(cc->zc, ZSTD_reset_session_only);
	out->kind = FMT_CHUNK_RAW;
	out->stored_len = (uint32_t)store_raw_frame_build(out->data, in, len);
	return 0;
}
