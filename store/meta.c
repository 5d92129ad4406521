/* meta.c - the object trailer: a MessagePack map and its XXH3-64 (format.h).
 *
 * Encoding packs the keys in a fixed order; decoding accepts them in any order,
 * ignores unknown keys (later minor versions may add some), checks the type of
 * every value it uses and cross-checks sizes with the header.  Any mismatch is
 * -EUCLEAN, logged with the object's name and what was wrong.
 */
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "util/log.h"

#define CORRUPT_HINT "restore the file from its source or re-import it"

void store_rec_put(uint8_t *p, const struct fmt_chunk_rec *r)
{
	fmt_put64(p, r->offset);
	fmt_put32(p + 8, r->stored_len);
	p[12] = r->kind;
	p[13] = r->filter;
	fmt_put16(p + 14, r->reserved);
	fmt_put64(p + 16, r->hash);
}

void store_rec_get(const uint8_t *p, struct fmt_chunk_rec *r)
{
	r->offset = fmt_get64(p);
	r->stored_len = fmt_get32(p + 8);
	r->kind = p[12];
	r->filter = p[13];
	r->reserved = fmt_get16(p + 14);
	r->hash = fmt_get64(p + 16);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	size_t n = strlen(k);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, k, n);
}

static void pack_faiss(msgpack_packer *pk, const struct store_faiss_info *f)
{
	if (!f->valid) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_map(pk, f->binary ? 7 : 6);
	pack_key(pk, "fourcc");
	msgpack_pack_str(pk, 4);
	msgpack_pack_str_body(pk, f->fourcc, 4);
	pack_key(pk, "binary");
	f->binary ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	pack_key(pk, "d");
	msgpack_pack_int32(pk, f->d);
	pack_key(pk, "ntotal");
	msgpack_pack_int64(pk, f->ntotal);
	pack_key(pk, "metric");
	msgpack_pack_int32(pk, f->metric);
	pack_key(pk, "is_trained");
	f->is_trained ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	if (f->binary) {
		pack_key(pk, "code_size");
		msgpack_pack_int32(pk, f->code_size);
	}
}

int store_meta_encode(const struct store_meta *m, const uint8_t *recs_raw, uint8_t **out,
		      size_t *out_len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t recs_len = (size_t)m->nchunks * FMT_CHUNK_REC_SIZE;
	uint8_t *buf;
	size_t n;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* msgpack_sbuffer_write returns -1 on allocation failure; the packer calls
	 * ignore it, so an allocation failure shows as a NULL/short buffer below. */
	msgpack_pack_map(&pk, 6);
	pack_key(&pk, "size");
	msgpack_pack_uint64(&pk, m->size);
	pack_key(&pk, "chunk_size");
	msgpack_pack_uint32(&pk, m->chunk_size);
	pack_key(&pk, "level");
	msgpack_pack_int(&pk, m->level);
	pack_key(&pk, "stored");
	msgpack_pack_uint64(&pk, m->stored);
	pack_key(&pk, "faiss");
	pack_faiss(&pk, &m->faiss);
	pack_key(&pk, "chunks");
	msgpack_pack_bin(&pk, recs_len);
	if (recs_len)
		msgpack_pack_bin_body(&pk, recs_raw, recs_len);

	n = 8 + sb.size + 8;
	buf = sb.data ? malloc(n) : NULL;
	if (!buf || sb.size + 8 > FMT_TRAILER_MAX) {
		free(buf);
		msgpack_sbuffer_destroy(&sb);
		return -ENOMEM;
	}
	fmt_put32(buf, FMT_SKIPPABLE_MAGIC_TRAILER);
	fmt_put32(buf + 4, (uint32_t)(sb.size + 8));
	memcpy(buf + 8, sb.data, sb.size);
	fmt_put64(buf + 8 + sb.size, XXH3_64bits(sb.data, sb.size));
	msgpack_sbuffer_destroy(&sb);
	*out = buf;
	*out_len = n;
	return 0;
}

static bool key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, s, n) == 0;
}

static bool get_uint(const msgpack_object *v, uint64_t *out)
{
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*out = v->via.u64;
	return true;
}

static bool get_int(const msgpack_object *v, int64_t min, int64_t max, int64_t *out)
{
	int64_t x;

	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (v->via.u64 > (uint64_t)INT64_MAX)
			return false;
		x = (int64_t)v->via.u64;
	} else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		x = v->via.i64;
	} else {
		return false;
	}
	if (x < min || x > max)
		return false;
	*out = x;
	return true;
}

/* Decodes the "faiss" map.  Returns NULL or the name of the bad field. */
static const char *decode_faiss(const msgpack_object *v, struct store_faiss_info *f)
{
	int64_t x;

	memset(f, 0, sizeof(*f));
	if (v->type == MSGPACK_OBJECT_NIL)
		return NULL;
	if (v->type != MSGPACK_OBJECT_MAP)
		return "faiss";
	for (uint32_t i = 0; i < v->via.map.size; i++) {
		const msgpack_object *k = &v->via.map.ptr[i].key;
		const msgpack_object *val = &v->via.map.ptr[i].val;

		if (key_is(k, "fourcc")) {
			if (val->type != MSGPACK_OBJECT_STR || val->via.str.size != 4)
				return "faiss.fourcc";
			memcpy(f->fourcc, val->via.str.ptr, 4);
		} else if (key_is(k, "binary") || key_is(k, "is_trained")) {
			if (val->type != MSGPACK_OBJECT_BOOLEAN)
				return "faiss.binary/is_trained";
			*(key_is(k, "binary") ? &f->binary : &f->is_trained) = val->via.boolean;
		} else if (key_is(k, "d") || key_is(k, "metric") || key_is(k, "code_size")) {
			if (!get_int(val, INT32_MIN, INT32_MAX, &x))
				return "faiss.d/metric/code_size";
			if (key_is(k, "d"))
				f->d = (int32_t)x;
			else if (key_is(k, "metric"))
				f->metric = (int32_t)x;
			else
				f->code_size = (int32_t)x;
		} else if (key_is(k, "ntotal")) {
			if (!get_int(val, INT64_MIN, INT64_MAX, &f->ntotal))
				return "faiss.ntotal";
		}
	}
	f->valid = f->fourcc[0] != '\0';
	return NULL;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Walks the MessagePack bytes @p (@n) without building anything: true if they
 * are exactly one well-formed object whose every declared length and count fits
 * in the bytes that remain.  msgpack-c allocates for a container's declared
 * count before reading its elements, so this bounds its memory by the input. */
bool store_mp_well_formed(const uint8_t *p, size_t n)
{
	uint64_t pending = 1; /* objects still to read */
	size_t off = 0;

	while (pending) {
		uint8_t t;
		uint64_t len = 0, count = 0; /* payload bytes; elements that follow */
		unsigned w;

		if (off >= n)
			return false;
		t = p[off++];
		pending--;
		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
			/* fixint, nil, bool */
		} else if (t <= 0x8f) {
			count = 2u * (t & 0x0f);
		} else if (t <= 0x9f) {
			count = t & 0x0f;
		} else if (t <= 0xbf) {
			len = t & 0x1f;
		} else if (t == 0xc1) {
			return false;		     /* never used */
		} else if (t >= 0xc4 && t <= 0xc9) { /* bin8/16/32, ext8/16/32 */
			w = 1u << ((t - 0xc4) % 3);
			if (n - off < w)
				return false;
			len = be(p + off, w) + (t >= 0xc7);
			off += w;
		} else if (t == 0xca || t == 0xcb) {
			len = t == 0xca ? 4 : 8;
		} else if (t >= 0xcc && t <= 0xd3) { /* uint8..64, int8..64 */
			len = 1u << ((t - 0xcc) % 4);
		} else if (t >= 0xd4 && t <= 0xd8) { /* fixext 1..16 */
			len = 1 + (1u << (t - 0xd4));
		} else if (t >= 0xd9 && t <= 0xdb) { /* str8/16/32 */
			w = 1u << (t - 0xd9);
			if (n - off < w)
				return false;
			len = be(p + off, w);
			off += w;
		} else { /* 0xdc..0xdf: array16/32, map16/32 */
			w = (t == 0xdc || t == 0xde) ? 2 : 4;
			if (n - off < w)
				return false;
			count = be(p + off, w) * (t >= 0xde ? 2 : 1);
			off += w;
		}
		if (len > n - off)
			return false;
		off += (size_t)len;
		pending += count;
		if (pending > n - off) /* each object takes at least one byte */
			return false;
	}
	return off == n;
}

/* XXH3-64 of @len zero bytes, without a buffer of that size. */
static uint64_t zero_hash(size_t len)
{
	static const uint8_t zeros[65536];
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	for (; len > sizeof(zeros); len -= sizeof(zeros))
		XXH3_64bits_update(&st, zeros, sizeof(zeros));
	XXH3_64bits_update(&st, zeros, len);
	return XXH3_64bits_digest(&st);
}

int store_rec_check(const struct fmt_chunk_rec *r, uint64_t idx, uint32_t incompat,
		    uint64_t trailer_offset, uint64_t hole_hash, const char *logname)
{
	if (r->filter > FMT_FILTER_MAX) {
		log_error("object %s: chunk %" PRIu64 " uses filter %u, unknown to this "
			  "faissfs: upgrade faissfs",
			  logname, idx, r->filter);
		return -EPROTONOSUPPORT;
	}
	/* A filter only on a compressed frame, and only in an object that
	 * announces filters (so that readers without them refuse it). */
	if (r->filter != FMT_FILTER_NONE &&
	    (r->kind != FMT_CHUNK_ZSTD || !(incompat & FMT_OBJ_INCOMPAT_FILTER))) {
		log_error("object %s: chunk %" PRIu64 " has filter %u on a %s chunk%s - the "
			  "stored data is corrupt; " CORRUPT_HINT,
			  logname, idx, r->filter, r->kind == FMT_CHUNK_ZSTD ? "zstd" : "non-zstd",
			  incompat & FMT_OBJ_INCOMPAT_FILTER
				  ? ""
				  : " in an object without the filter feature bit");
		return -EUCLEAN;
	}
	if (r->kind > FMT_CHUNK_ZSTD || r->stored_len == 0 || r->offset < FMT_OBJ_HEADER_SIZE ||
	    r->offset > trailer_offset || r->stored_len > trailer_offset - r->offset) {
		log_error("object %s: chunk %" PRIu64 " record is invalid (kind %u, offset "
			  "%" PRIu64 ", %u bytes, chunk data ends at %" PRIu64 ") - the "
			  "stored data is corrupt; " CORRUPT_HINT,
			  logname, idx, r->kind, r->offset, r->stored_len, trailer_offset);
		return -EUCLEAN;
	}
	if (r->kind == FMT_CHUNK_HOLE && r->hash != hole_hash) {
		log_error("object %s: chunk %" PRIu64 " (stored at offset %" PRIu64 ", %u bytes) "
			  "is marked as a hole but its checksum is not that of zeros - the "
			  "stored data is corrupt; " CORRUPT_HINT,
			  logname, idx, r->offset, r->stored_len);
		return -EUCLEAN;
	}
	return 0;
}

/* Checks the raw records of @m (m->table) against the header; logs the first
 * bad one.  A HOLE is never read, so its hash is checked here: it must be that
 * of zeros (only two lengths exist, a full chunk and the last one, so this costs
 * at most two hashes, kept in @m for the checks on access).  Touches every
 * record once, in order: a mapped table is read sequentially. */
static int check_table(struct store_meta *m, const struct fmt_object_header *h, const char *logname)
{
	uint64_t stored = 0;
	bool have_full = false, have_last = false;
	int ret;

	for (uint64_t i = 0; i < m->nchunks; i++) {
		struct fmt_chunk_rec r;
		bool last = i == m->nchunks - 1;

		store_rec_get(m->table + i * FMT_CHUNK_REC_SIZE, &r);
		if (r.kind == FMT_CHUNK_HOLE) {
			size_t len = last ? (size_t)(m->size - i * m->chunk_size) : m->chunk_size;

			if (last && !have_last) {
				m->hole_hash_last = zero_hash(len);
				have_last = true;
			} else if (!last && !have_full) {
				m->hole_hash_full = zero_hash(len);
				have_full = true;
			}
		}
		ret = store_rec_check(&r, i, h->feature_incompat, h->trailer_offset,
				      last ? m->hole_hash_last : m->hole_hash_full, logname);
		if (ret)
			return ret;
		stored += r.stored_len;
	}
	if (stored != m->stored) {
		log_error("object %s: trailer says %" PRIu64 " stored bytes but its chunks hold "
			  "%" PRIu64 " - the stored data is corrupt; " CORRUPT_HINT,
			  logname, m->stored, stored);
		return -EUCLEAN;
	}
	return 0;
}

int store_meta_parse(const uint8_t *buf, size_t len, const struct fmt_object_header *h,
		     const char *logname, struct store_meta *out, uint64_t *hash)
{
	struct store_meta m = {0};
	msgpack_unpacked up;
	size_t map_len, off = 0;
	const char *bad = NULL;
	const msgpack_object *chunks = NULL;
	bool have_size = false, have_cs = false, have_stored = false;
	uint64_t x, hv;
	int64_t lv;
	int ret = -EUCLEAN;

	if (len < 16 || fmt_get32(buf) != FMT_SKIPPABLE_MAGIC_TRAILER ||
	    fmt_get32(buf + 4) != len - 8) {
		log_error("object %s: trailer at offset %" PRIu64 " has a bad frame magic or size "
			  "- the stored data is corrupt; " CORRUPT_HINT,
			  logname, h->trailer_offset);
		return -EUCLEAN;
	}
	map_len = len - 16;
	hv = XXH3_64bits(buf + 8, map_len);
	if (hv != fmt_get64(buf + 8 + map_len)) {
		log_error("object %s: trailer (stored at offset %" PRIu64 ", %zu bytes): checksum "
			  "mismatch - the stored data is corrupt; " CORRUPT_HINT,
			  logname, h->trailer_offset, len);
		return -EUCLEAN;
	}

	msgpack_unpacked_init(&up);
	if (!store_mp_well_formed(buf + 8, map_len) ||
	    msgpack_unpack_next(&up, (const char *)buf + 8, map_len, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    off != map_len || up.data.type != MSGPACK_OBJECT_MAP) {
		bad = "not one MessagePack map";
		goto bad;
	}
	for (uint32_t i = 0; i < up.data.via.map.size; i++) {
		const msgpack_object *k = &up.data.via.map.ptr[i].key;
		const msgpack_object *v = &up.data.via.map.ptr[i].val;

		if (key_is(k, "size")) {
			have_size = get_uint(v, &m.size);
			if (!have_size)
				bad = "\"size\" is not an unsigned integer";
		} else if (key_is(k, "chunk_size")) {
			have_cs = get_uint(v, &x) && x <= UINT32_MAX;
			m.chunk_size = (uint32_t)x;
			if (!have_cs)
				bad = "\"chunk_size\" is not a 32-bit unsigned integer";
		} else if (key_is(k, "level")) {
			if (get_int(v, -1000000, 1000000, &lv))
				m.level = (int)lv;
			else
				bad = "\"level\" is not an integer";
		} else if (key_is(k, "stored")) {
			have_stored = get_uint(v, &m.stored);
			if (!have_stored)
				bad = "\"stored\" is not an unsigned integer";
		} else if (key_is(k, "faiss")) {
			bad = decode_faiss(v, &m.faiss);
		} else if (key_is(k, "chunks")) {
			if (v->type == MSGPACK_OBJECT_BIN)
				chunks = v;
			else
				bad = "\"chunks\" is not binary";
		}
		if (bad)
			goto bad;
	}
	if (!have_size || !have_cs || !chunks) {
		bad = "a required key (size, chunk_size, chunks) is missing";
		goto bad;
	}
	if (m.size != h->logical_size || m.chunk_size != h->chunk_size) {
		bad = "size or chunk size differ from the header's";
		goto bad;
	}
	m.nchunks = store_nchunks(m.size, m.chunk_size);
	if (m.nchunks > chunks->via.bin.size / FMT_CHUNK_REC_SIZE ||
	    chunks->via.bin.size != m.nchunks * FMT_CHUNK_REC_SIZE) {
		bad = "the chunk table length does not match the size";
		goto bad;
	}
	m.table = (const uint8_t *)chunks->via.bin.ptr;
	if (!have_stored) {
		struct fmt_chunk_rec r;

		for (uint64_t i = 0; i < m.nchunks; i++) {
			store_rec_get(m.table + i * FMT_CHUNK_REC_SIZE, &r);
			m.stored += r.stored_len;
		}
	}
	ret = check_table(&m, h, logname);
	if (ret)
		goto out;
	*out = m;
	*hash = hv;
	ret = 0;
	goto out;

bad:
	log_error("object %s: trailer (stored at offset %" PRIu64 ", %zu bytes) is invalid: %s - "
		  "the stored data is corrupt; " CORRUPT_HINT,
		  logname, h->trailer_offset, len, bad);
	ret = -EUCLEAN;
out:
	msgpack_unpacked_destroy(&up);
	return ret;
}

int store_meta_decode(const uint8_t *buf, size_t len, const struct fmt_object_header *h,
		      const char *logname, struct store_meta *out, uint64_t *hash)
{
	struct store_meta m;
	uint64_t hv;
	int ret = store_meta_parse(buf, len, h, logname, &m, &hv);

	if (ret)
		return ret;
	m.recs = NULL;
	if (m.nchunks) {
		m.recs = malloc(m.nchunks * sizeof(*m.recs));
		if (!m.recs)
			return -ENOMEM;
	}
	for (uint64_t i = 0; i < m.nchunks; i++)
		store_rec_get(m.table + i * FMT_CHUNK_REC_SIZE, &m.recs[i]);
	*out = m;
	*hash = hv;
	return 0;
}
