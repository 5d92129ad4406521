/* chunk.c - encoding one chunk into one zstd frame, decoding it, and the
 * per-thread contexts.
 *
 * A chunk becomes exactly one zstd frame of one of three kinds (format.h):
 * HOLE (all zero: a hand-built frame of RLE blocks), ZSTD (compressed at the
 * writer's level, kept only if it saves at least 1/8) or RAW (a hand-built frame
 * of raw blocks).  A ZSTD chunk may be filtered (filter.c): its frame then holds
 * the chunk split into byte planes, each plane in blocks of its own, and is kept
 * only if smaller than the unfiltered frame.  Every frame decodes with plain
 * zstd; a filtered one decodes to the planes.  The layouts are in FORMAT.md; the
 * block rules are RFC 8878.
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
	free(cc->fbuf);
	free(cc->zbuf);
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
	free(dc->fbuf);
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

void store_cctx_set_filters(struct store_cctx *cc, enum store_filter_search search)
{
	cc->search = search;
}

/* Maps a zstd error of a compression call: -ENOMEM, or 1 for "keep it raw"
 * (a destination too small means the result would not be kept). */
static int compress_error(struct store_cctx *cc, size_t r)
{
	/* A failed call leaves the context mid-frame: reset it for the next. */
	ZSTD_CCtx_reset(cc->zc, ZSTD_reset_session_only);
	if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
		return -ENOMEM;
	if (ZSTD_getErrorCode(r) != ZSTD_error_dstSize_tooSmall)
		/* Anything else is a bug of ours or of zstd: still store the data. */
		log_warn("zstd: compressing a chunk failed (%s); storing it unfiltered",
			 ZSTD_getErrorName(r));
	return 1;
}

/* Compresses @in unfiltered into @dst (@cap bytes).  Returns 0 with *size set,
 * 1 if it does not fit in @cap, or -ENOMEM. */
static int compress_plain(struct store_cctx *cc, const void *in, size_t len, uint8_t *dst,
			  size_t cap, size_t *size)
{
	size_t r = ZSTD_compress2(cc->zc, dst, cap, in, len);

	if (ZSTD_isError(r))
		return compress_error(cc, r);
	*size = r;
	return 0;
}

/* Compresses @in split into planes at @phase into @dst (@cap bytes), as one frame
 * where a flush ends a block after head + plane 0, plane 1 and plane 2: no block
 * mixes two planes, so each gets its own literal statistics (or stays raw).
 * Returns 0 with *size set, 1 if it does not fit in @cap, or -ENOMEM. */
static int compress_planes4(struct store_cctx *cc, const uint8_t *in, size_t len, unsigned phase,
			    uint8_t *dst, size_t cap, size_t *size)
{
	ZSTD_outBuffer ob = {dst, cap, 0};
	struct store_planes4 pl;
	size_t seg[4], pos = 0, r;
	int ret;

	ret = store_buf_reserve(&cc->fbuf, &cc->fcap, len);
	if (ret)
		return ret;
	store_planes4_split(in, len, phase, cc->fbuf);
	store_planes4_layout(len, phase, &pl);
	seg[0] = pl.head + pl.nval;
	seg[1] = seg[2] = pl.nval;
	seg[3] = pl.nval + pl.tail;
	r = ZSTD_CCtx_setPledgedSrcSize(cc->zc, len);
	for (int k = 0; k < 4 && !ZSTD_isError(r); k++) {
		ZSTD_inBuffer ib = {cc->fbuf + pos, seg[k], 0};
		ZSTD_EndDirective end = k == 3 ? ZSTD_e_end : ZSTD_e_flush;

		pos += seg[k];
		if (k < 3 && seg[k] == 0)
			continue;
		r = ZSTD_compressStream2(cc->zc, &ob, &ib, end);
		/* Not all consumed or flushed: the output is full, it does not fit. */
		if (!ZSTD_isError(r) && (r != 0 || ib.pos != ib.size)) {
			ZSTD_CCtx_reset(cc->zc, ZSTD_reset_session_only);
			return 1;
		}
	}
	if (ZSTD_isError(r))
		return compress_error(cc, r);
	*size = ob.pos;
	return 0;
}

/* Encodes @in into out->data; see store.h.  The unfiltered attempt gets a
 * destination of exactly the largest size we would keep, and each filtered one
 * the largest size at which it would win, so zstd stops early (dstSize_tooSmall)
 * when a candidate cannot win.  A filtered frame must beat the unfiltered one by
 * 1/32: on small integer codes (PQ, binary) the planes save a percent or two but
 * decode up to twice as slowly (more matches, fewer raw literals), while on
 * floats and graph links they save about 10% and decode faster. */
int store_chunk_encode(struct store_cctx *cc, const void *in, size_t len, int level,
		       struct store_chunk *out)
{
	size_t need, best, cap, size = 0;
	unsigned phase, nphase;
	uint8_t *tmp;
	int ret;

	if (!cc || !out || !in || len == 0 || len > FMT_CHUNK_MAX)
		return -EINVAL;
	need = store_raw_frame_size(len);
	ret = store_buf_reserve(&out->data, &out->cap, need);
	if (!ret)
		ret = store_buf_reserve(&cc->zbuf, &cc->zcap, need);
	if (ret)
		return ret;

	out->logical_len = (uint32_t)len;
	out->hash = XXH3_64bits(in, len);
	out->filter = FMT_FILTER_NONE;
	if (store_is_zero(in, len)) {
		out->kind = FMT_CHUNK_HOLE;
		out->stored_len = (uint32_t)store_hole_frame_build(out->data, len);
		return 0;
	}

	ret = cctx_set_level(cc, level);
	if (ret)
		return ret;
	best = len - len / 8 + 1; /* anything kept is at most len - len/8 */
	ret = compress_plain(cc, in, len, out->data, best - 1, &size);
	if (ret < 0)
		return ret;
	if (ret == 0)
		best = size;
	/* What a filtered frame must be smaller than (see above). */
	cap = ret == 0 ? size - size / 32 + 1 : best;
	/* Values need at least two of them to gain anything from planes. */
	nphase = cc->search == STORE_FILTERS_OFF || len < 8 ? 0
		 : cc->search == STORE_FILTERS_ALL	    ? 4
							    : 1;
	phase = nphase == 1 ? store_planes4_guess(in, len) : 0;
	for (unsigned k = 0; k < nphase; k++, phase = (phase + 1) & 3) {
		ret = compress_planes4(cc, in, len, phase, cc->zbuf, cap - 1, &size);
		if (ret < 0)
			return ret;
		if (ret > 0)
			continue;
		best = cap = size;
		out->filter = (uint8_t)(FMT_FILTER_PLANES4_P0 + phase);
		/* The winner so far moves to out->data; its old buffer is reused. */
		tmp = out->data;
		out->data = cc->zbuf;
		cc->zbuf = tmp;
		size = out->cap;
		out->cap = cc->zcap;
		cc->zcap = size;
	}
	if (best <= len - len / 8) {
		out->kind = FMT_CHUNK_ZSTD;
		out->stored_len = (uint32_t)best;
		return 0;
	}
	out->kind = FMT_CHUNK_RAW;
	out->stored_len = (uint32_t)store_raw_frame_build(out->data, in, len);
	return 0;
}

int store_chunk_encode_filter(struct store_cctx *cc, const void *in, size_t len, int level,
			      unsigned filter, struct store_chunk *out)
{
	size_t cap, size = 0;
	int ret;

	if (!cc || !out || !in || len == 0 || len > FMT_CHUNK_MAX || filter > FMT_FILTER_MAX)
		return -EINVAL;
	cap = ZSTD_compressBound(len);
	ret = store_buf_reserve(&out->data, &out->cap, cap);
	if (!ret)
		ret = cctx_set_level(cc, level);
	if (ret)
		return ret;
	if (filter == FMT_FILTER_NONE)
		ret = compress_plain(cc, in, len, out->data, cap, &size);
	else
		ret = compress_planes4(cc, in, len, filter - FMT_FILTER_PLANES4_P0, out->data, cap,
				       &size);
	if (ret)
		return ret < 0 ? ret : -EINVAL; /* cannot be too small for the bound */
	out->logical_len = (uint32_t)len;
	out->hash = XXH3_64bits(in, len);
	out->kind = FMT_CHUNK_ZSTD;
	out->filter = (uint8_t)filter;
	out->stored_len = (uint32_t)size;
	return 0;
}

/* Decompresses @src into @dst, which must come out exactly @len bytes. */
static int decompress_exact(struct store_dctx *dc, const void *src, size_t slen, void *dst,
			    size_t len, const char **bad)
{
	size_t got = ZSTD_decompressDCtx(dc->zd, dst, len, src, slen);

	if (ZSTD_isError(got)) {
		if (ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
			return -ENOMEM;
		*bad = "not a valid zstd frame";
		return -EUCLEAN;
	}
	if (got != len) {
		*bad = "decodes to the wrong length";
		return -EUCLEAN;
	}
	return 0;
}

int store_chunk_decode(struct store_dctx *dc, unsigned filter, const void *src, size_t slen,
		       void *dst, size_t len, const char **bad)
{
	int ret;

	if (filter == FMT_FILTER_NONE)
		return decompress_exact(dc, src, slen, dst, len, bad);
	if (filter > FMT_FILTER_MAX) {
		*bad = "unknown filter";
		return -EPROTONOSUPPORT;
	}
	ret = store_buf_reserve(&dc->fbuf, &dc->fcap, len);
	if (!ret)
		ret = decompress_exact(dc, src, slen, dc->fbuf, len, bad);
	if (ret)
		return ret;
	store_planes4_join(dc->fbuf, len, filter - FMT_FILTER_PLANES4_P0, dst);
	return 0;
}
