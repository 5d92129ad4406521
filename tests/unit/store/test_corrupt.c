/* test_corrupt.c - damaged objects give the right error and never a crash.
 *
 * A small deterministic object (chunk size 4 KiB: a zstd chunk, a raw chunk, a
 * hole, a short zstd chunk) is damaged in one way per case.  Each case is also
 * kept as a file in tests/data/corrupt/<case>.ffs (regenerate them with
 * FAISSFS_REGEN_CORPUS=1 after a format change) and both the committed file and
 * the freshly damaged one must give the expected errors.  Finally every byte of
 * the object gets a bit flipped in turn: open and reads must fail cleanly or
 * return the right bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <xxhash.h>

#include "store_test.h"
#include "store_internal.h"
#include "util/log.h"

#define CS	 4096u
#define NCHUNKS	 4
#define DATA_LEN (3 * CS + 100)

static uint8_t data[DATA_LEN];
static uint8_t *base; /* the good object */
static size_t base_len;

static void make_data(void)
{
	t_fill_text(data, CS, 1);
	t_fill_random(data + CS, CS, 2);
	memset(data + 2 * CS, 0, CS);
	t_fill_text(data + 3 * CS, 100, 3);
}

static int setup(void **state)
{
	struct store_params p = {.chunk_size = CS, .level = 3};
	struct store *st;
	char *dir = t_tmpdir(), path[600];

	(void)state;
	make_data();
	if (store_create(dir, &p) || store_open(dir, 0, &st))
		return -1;
	if (t_write_object(st, NULL, "obj", data, DATA_LEN, DATA_LEN))
		return -1;
	store_close(st);
	snprintf(path, sizeof(path), "%s/obj", dir);
	base = t_read_file(path, &base_len);
	t_rm_rf(dir);
	free(dir);
	return base ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(base);
	return 0;
}

/* --- editing helpers ---------------------------------------------------------- */

struct obj {
	uint8_t *b;
	size_t len;
};

static struct obj copy_base(void)
{
	struct obj o = {malloc(base_len + 4096), base_len};

	memcpy(o.b, base, base_len);
	return o;
}

static uint64_t toff(const struct obj *o)
{
	return fmt_get64(o->b + 40);
}

static void fix_header_sum(struct obj *o)
{
	fmt_put64(o->b + 56, XXH3_64bits(o->b, 56));
}

/* Replaces the trailer by @t (@tlen bytes) and fixes the header. */
static void put_trailer(struct obj *o, const uint8_t *t, size_t tlen)
{
	uint64_t off = toff(o);

	o->b = realloc(o->b, off + tlen);
	memcpy(o->b + off, t, tlen);
	o->len = off + tlen;
	fmt_put32(o->b + 48, (uint32_t)tlen);
	fix_header_sum(o);
}

/* A trailer frame around arbitrary map bytes, with a correct XXH3. */
static void put_raw_map(struct obj *o, const void *map, size_t n)
{
	uint8_t *t = malloc(n + 16);

	fmt_put32(t, FMT_SKIPPABLE_MAGIC_TRAILER);
	fmt_put32(t + 4, (uint32_t)(n + 8));
	memcpy(t + 8, map, n);
	fmt_put64(t + 8 + n, XXH3_64bits(map, n));
	put_trailer(o, t, n + 16);
	free(t);
}

/* Decodes the good trailer so a case can change it and re-encode it. */
static void base_meta(struct store_meta *m)
{
	struct fmt_object_header h;
	uint64_t hash;

	assert_int_equal(store_header_check(base, base_len, base_len, "base", &h), 0);
	assert_int_equal(
		store_meta_decode(base + h.trailer_offset, h.trailer_size, &h, "base", m, &hash),
		0);
}

static void put_meta(struct obj *o, struct store_meta *m, uint64_t nrecs)
{
	uint8_t *raw = calloc(nrecs + 1, FMT_CHUNK_REC_SIZE), *t;
	size_t tlen;
	uint64_t n = m->nchunks;

	for (uint64_t i = 0; i < nrecs && i < m->nchunks; i++)
		store_rec_put(raw + i * FMT_CHUNK_REC_SIZE, &m->recs[i]);
	m->nchunks = nrecs; /* store_meta_encode writes nchunks records */
	assert_int_equal(store_meta_encode(m, raw, &t, &tlen), 0);
	m->nchunks = n;
	put_trailer(o, t, tlen);
	free(t);
	free(raw);
	free(m->recs);
}

/* --- the cases ---------------------------------------------------------------- */

static void c_chunk0_bitflip(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	o->b[m.recs[0].offset + m.recs[0].stored_len / 2] ^= 0x08;
	free(m.recs);
}
static void c_raw_chunk_bitflip(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	assert_int_equal(m.recs[1].kind, FMT_CHUNK_RAW);
	o->b[m.recs[1].offset + 100] ^= 0x01;
	free(m.recs);
}
static void c_last_chunk_truncated(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	/* the record says 5 bytes fewer than the frame has */
	m.recs[3].stored_len -= 5;
	m.stored -= 5;
	put_meta(o, &m, NCHUNKS);
}
static void c_records_swapped(struct obj *o)
{
	struct store_meta m;
	struct fmt_chunk_rec r;

	/* Where the frames are, not what they hold: the hashes stay in place. */
	base_meta(&m);
	r = m.recs[0];
	m.recs[0].offset = m.recs[1].offset;
	m.recs[0].stored_len = m.recs[1].stored_len;
	m.recs[0].kind = m.recs[1].kind;
	m.recs[1].offset = r.offset;
	m.recs[1].stored_len = r.stored_len;
	m.recs[1].kind = r.kind;
	put_meta(o, &m, NCHUNKS);
}
static void c_header_checksum(struct obj *o)
{
	o->b[33] ^= 0x01; /* logical size */
}
static void c_header_frame_size(struct obj *o)
{
	fmt_put32(o->b + 4, 57);
	fix_header_sum(o);
}
static void c_header_truncated(struct obj *o)
{
	o->len = 30;
}
static void c_newer_major(struct obj *o)
{
	fmt_put16(o->b + 16, FMT_VERSION_MAJOR + 1);
	fix_header_sum(o);
}
static void c_unknown_incompat(struct obj *o)
{
	fmt_put32(o->b + 20, 0x100);
	fix_header_sum(o);
}
static void c_bad_chunk_size(struct obj *o)
{
	fmt_put32(o->b + 24, 5000);
	fix_header_sum(o);
}
static void c_trailer_out_of_range(struct obj *o)
{
	fmt_put64(o->b + 40, o->len + 100);
	fix_header_sum(o);
}
static void c_file_truncated(struct obj *o)
{
	o->len -= 10;
}
static void c_trailer_bitflip(struct obj *o)
{
	o->b[toff(o) + 20] ^= 0x40;
}
static void c_trailer_magic(struct obj *o)
{
	o->b[toff(o)] ^= 0x01;
}
static void c_garbage_msgpack(struct obj *o)
{
	static const uint8_t g[] = {0x86, 0xc1, 0xc1, 0xff, 0x00, 0x13, 0x37};

	put_raw_map(o, g, sizeof(g));
}
static void c_msgpack_not_map(struct obj *o)
{
	static const uint8_t g[] = {0x93, 0x01, 0x02, 0x03}; /* [1, 2, 3] */

	put_raw_map(o, g, sizeof(g));
}
static void c_msgpack_trailing_bytes(struct obj *o)
{
	static const uint8_t g[] = {0x80, 0x01}; /* {} then 1 */

	put_raw_map(o, g, sizeof(g));
}
static void c_msgpack_huge_map(struct obj *o)
{
	/* a map that claims 2^32-1 entries and an array that claims as many */
	static const uint8_t g[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff, 0xff, 0xff};

	put_raw_map(o, g, sizeof(g));
}
static void c_size_wrong_type(struct obj *o)
{
	/* {"size": "x", "chunk_size": 4096, "chunks": bin(0)} */
	static const uint8_t g[] = {0x83, 0xa4, 's', 'i', 'z', 'e', 0xa1, 'x',	0xaa, 'c',  'h',
				    'u',  'n',	'k', '_', 's', 'i', 'z',  'e',	0xcd, 0x10, 0x00,
				    0xa6, 'c',	'h', 'u', 'n', 'k', 's',  0xc4, 0x00};

	put_raw_map(o, g, sizeof(g));
}
static void c_size_mismatch(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.size -= 1;
	put_meta(o, &m, NCHUNKS);
}
static void c_chunks_short(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	put_meta(o, &m, NCHUNKS - 1);
}
static void c_record_past_trailer(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[3].offset = toff(o) - 2;
	put_meta(o, &m, NCHUNKS);
}
static void c_record_in_header(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[0].offset = 10;
	put_meta(o, &m, NCHUNKS);
}
static void set_filter_bit(struct obj *o)
{
	fmt_put32(o->b + 20, FMT_OBJ_INCOMPAT_FILTER);
	fix_header_sum(o);
}
static void c_unknown_filter(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[0].filter = FMT_FILTER_MAX + 1;
	put_meta(o, &m, NCHUNKS);
	set_filter_bit(o);
}
static void c_filter_without_feature(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[0].filter = FMT_FILTER_PLANES4_P0;
	put_meta(o, &m, NCHUNKS);
}
static void c_filter_on_raw(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[1].filter = FMT_FILTER_PLANES4_P0;
	put_meta(o, &m, NCHUNKS);
	set_filter_bit(o);
}
static void c_filter_on_hole(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[2].filter = FMT_FILTER_PLANES4_P3;
	put_meta(o, &m, NCHUNKS);
	set_filter_bit(o);
}
/* A filter the frame was not written with: the bytes come out shuffled and the
 * hash of the logical bytes catches it. */
static void c_filter_wrong(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[3].filter = FMT_FILTER_PLANES4_P0 + 2;
	put_meta(o, &m, NCHUNKS);
	set_filter_bit(o);
}
static void c_unknown_kind(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[1].kind = 7;
	put_meta(o, &m, NCHUNKS);
}
static void c_chunk_marked_hole(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.recs[0].kind = FMT_CHUNK_HOLE;
	put_meta(o, &m, NCHUNKS);
}
static void c_stored_mismatch(struct obj *o)
{
	struct store_meta m;

	base_meta(&m);
	m.stored += 1;
	put_meta(o, &m, NCHUNKS);
}

#define OK  0
#define BAD (-EUCLEAN)
#define NEW (-EPROTONOSUPPORT)

static const struct corrupt_case {
	const char *name;
	void (*edit)(struct obj *o);
	int open_ret;
	int read_ret[NCHUNKS]; /* when open succeeds */
} cases[] = {
	{"chunk0_bitflip", c_chunk0_bitflip, OK, {BAD, OK, OK, OK}},
	{"raw_chunk_bitflip", c_raw_chunk_bitflip, OK, {OK, BAD, OK, OK}},
	{"last_chunk_truncated", c_last_chunk_truncated, OK, {OK, OK, OK, BAD}},
	{"records_swapped", c_records_swapped, OK, {BAD, BAD, OK, OK}},
	{"header_checksum", c_header_checksum, BAD},
	{"header_frame_size", c_header_frame_size, BAD},
	{"header_truncated", c_header_truncated, BAD},
	{"newer_major", c_newer_major, NEW},
	{"unknown_incompat", c_unknown_incompat, NEW},
	{"bad_chunk_size", c_bad_chunk_size, BAD},
	{"trailer_out_of_range", c_trailer_out_of_range, BAD},
	{"file_truncated", c_file_truncated, BAD},
	{"trailer_bitflip", c_trailer_bitflip, BAD},
	{"trailer_magic", c_trailer_magic, BAD},
	{"garbage_msgpack", c_garbage_msgpack, BAD},
	{"msgpack_not_map", c_msgpack_not_map, BAD},
	{"msgpack_trailing_bytes", c_msgpack_trailing_bytes, BAD},
	{"msgpack_huge_map", c_msgpack_huge_map, BAD},
	{"size_wrong_type", c_size_wrong_type, BAD},
	{"size_mismatch", c_size_mismatch, BAD},
	{"chunks_short", c_chunks_short, BAD},
	{"record_past_trailer", c_record_past_trailer, BAD},
	{"record_in_header", c_record_in_header, BAD},
	{"unknown_filter", c_unknown_filter, NEW},
	{"filter_without_feature", c_filter_without_feature, BAD},
	{"filter_on_raw", c_filter_on_raw, BAD},
	{"filter_on_hole", c_filter_on_hole, BAD},
	{"filter_wrong", c_filter_wrong, OK, {OK, OK, OK, BAD}},
	{"unknown_kind", c_unknown_kind, BAD},
	{"stored_mismatch", c_stored_mismatch, BAD},
	{"chunk_marked_hole", c_chunk_marked_hole, BAD},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Opens the object in @fd and checks it against @c. */
static void check_case(const struct corrupt_case *c, int fd, const char *what)
{
	struct store_object *o = NULL;
	struct store_dctx *dc = store_dctx_new();
	uint8_t buf[CS];
	int ret;

	ret = store_object_open_fd(fd, c->name, &o);
	if (ret != c->open_ret)
		print_error("%s (%s): open returned %d, expected %d\n", c->name, what, ret,
			    c->open_ret);
	assert_int_equal(ret, c->open_ret);
	if (!ret) {
		for (int i = 0; i < NCHUNKS; i++) {
			ret = store_object_read_chunk(o, (uint64_t)i, dc, buf);
			if (ret != c->read_ret[i])
				print_error("%s (%s): chunk %d read returned %d, expected %d\n",
					    c->name, what, i, ret, c->read_ret[i]);
			assert_int_equal(ret, c->read_ret[i]);
			if (!ret)
				assert_memory_equal(buf, data + i * CS,
						    store_object_chunk_len(o, (uint64_t)i));
		}
		assert_true(store_object_pread(o, dc, buf, 1, DATA_LEN) == 0);
	}
	store_object_free(o);
	store_dctx_free(dc);
}

static int memfd_of(const void *b, size_t len)
{
	int fd = memfd_create("obj", 0);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, len, 0), (ssize_t)len);
	return fd;
}

static void test_base_is_good(void **state)
{
	static const struct corrupt_case good = {"good", NULL, OK, {OK, OK, OK, OK}};
	struct store_meta m;
	int fd = memfd_of(base, base_len);

	(void)state;
	check_case(&good, fd, "generated");
	close(fd);
	base_meta(&m);
	assert_int_equal(m.recs[0].kind, FMT_CHUNK_ZSTD);
	assert_int_equal(m.recs[1].kind, FMT_CHUNK_RAW);
	assert_int_equal(m.recs[2].kind, FMT_CHUNK_HOLE);
	assert_int_equal(m.recs[3].kind, FMT_CHUNK_ZSTD);
	for (int i = 0; i < NCHUNKS; i++)
		assert_int_equal(m.recs[i].filter, FMT_FILTER_NONE);
	free(m.recs);
}

static void test_cases(void **state)
{
	const char *dd = getenv("FAISSFS_TEST_DATA");
	bool regen = getenv("FAISSFS_REGEN_CORPUS") != NULL;

	(void)state;
	for (size_t i = 0; i < NCASES; i++) {
		struct obj o = copy_base();
		char path[1024];
		int fd;

		cases[i].edit(&o);
		fd = memfd_of(o.b, o.len);
		check_case(&cases[i], fd, "generated");
		close(fd);
		if (dd) {
			snprintf(path, sizeof(path), "%s/corrupt/%s.ffs", dd, cases[i].name);
			if (regen)
				assert_int_equal(t_write_file(path, o.b, o.len), 0);
			fd = open(path, O_RDONLY);
			if (fd < 0)
				print_error("%s: missing; regenerate the corpus with "
					    "FAISSFS_REGEN_CORPUS=1\n",
					    path);
			assert_true(fd >= 0);
			check_case(&cases[i], fd, "corpus");
			close(fd);
		}
		free(o.b);
	}
}

/* store_object_probe() looks at the header only. */
static void test_probe(void **state)
{
	static const struct {
		void (*edit)(struct obj *o);
		int ret;
	} p[] = {
		{NULL, 1},
		{c_header_checksum, -EUCLEAN},
		{c_header_truncated, -EUCLEAN},
		{c_header_frame_size, -EUCLEAN},
		{c_newer_major, -EPROTONOSUPPORT},
		{c_unknown_incompat, -EPROTONOSUPPORT},
		{c_trailer_out_of_range, -EUCLEAN},
		{c_trailer_bitflip, 1}, /* the trailer is not read */
	};
	uint64_t size = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		struct obj o = copy_base();
		int fd;

		if (p[i].edit)
			p[i].edit(&o);
		fd = memfd_of(o.b, o.len);
		assert_int_equal(store_object_probe(fd, "probe", &size), p[i].ret);
		if (p[i].ret == 1)
			assert_int_equal(size, DATA_LEN);
		close(fd);
		free(o.b);
	}
	/* a plain file, short or long */
	{
		int fd = memfd_of("FFSOBJ1", 7);

		assert_int_equal(store_object_probe(fd, "plain", &size), 0);
		close(fd);
		fd = memfd_of(data, sizeof(data));
		assert_int_equal(store_object_probe(fd, "plain", &size), 0);
		close(fd);
	}
}

/* One bit flipped at every byte of the object: never a crash; an open or read
 * that succeeds returns the original bytes (a flip inside the hole's frame is not
 * seen: the reader never reads it). */
static void test_every_bitflip(void **state)
{
	int fd = memfd_of(base, base_len);
	struct store_dctx *dc = store_dctx_new();
	uint8_t buf[CS];
	size_t opened = 0;

	(void)state;
	for (size_t pos = 0; pos < base_len; pos++) {
		uint8_t b = (uint8_t)(base[pos] ^ (1u << (pos % 8)));
		struct store_object *o;
		int ret;

		assert_int_equal(pwrite(fd, &b, 1, (off_t)pos), 1);
		ret = store_object_open_fd(fd, "flip", &o);
		bool in_prefix = pos < 4 || (pos >= 8 && pos < 16);

		/* A damaged magic makes it look like a plain file, by design. */
		if (in_prefix && ret == -EMEDIUMTYPE)
			ret = -EUCLEAN;
		if (ret && ret != -EUCLEAN && ret != -EPROTONOSUPPORT)
			print_error("flip at %zu: open returned %d\n", pos, ret);
		assert_true(ret == 0 || ret == -EUCLEAN || ret == -EPROTONOSUPPORT);
		if (!ret) {
			opened++;
			for (uint64_t i = 0; i < NCHUNKS; i++) {
				ret = store_object_read_chunk(o, i, dc, buf);
				assert_true(ret == 0 || ret == -EUCLEAN);
				if (!ret)
					assert_memory_equal(buf, data + i * CS,
							    store_object_chunk_len(o, i));
			}
			store_object_free(o);
		}
		assert_int_equal(pwrite(fd, base + pos, 1, (off_t)pos), 1);
	}
	print_message("%zu of %zu single-bit flips left the object openable\n", opened, base_len);
	store_dctx_free(dc);
	close(fd);
}

/* Random damage to the trailer's map with its checksum fixed up (what a bad
 * writer, not the disk, would do): the parser never crashes, and whatever opens
 * reads back either the right bytes or -EUCLEAN. */
static void test_trailer_fuzz(void **state)
{
	struct fmt_object_header h;
	struct store_dctx *dc = store_dctx_new();
	uint64_t seed = 42;
	size_t opened = 0;
	uint8_t buf[CS];

	(void)state;
	assert_int_equal(store_header_check(base, base_len, base_len, "base", &h), 0);
	for (int it = 0; it < 20000; it++) {
		struct obj o = copy_base();
		size_t mlen = h.trailer_size - 16;
		uint8_t *map = o.b + h.trailer_offset + 8;
		int nmut = 1 + (int)(t_rand_next(&seed) % 4);
		struct store_object *ob;
		int fd, ret;

		for (int k = 0; k < nmut; k++) {
			size_t pos = t_rand_next(&seed) % mlen;
			uint64_t r = t_rand_next(&seed);

			if (r & 1)
				map[pos] ^= (uint8_t)(1u << ((r >> 1) % 8));
			else
				map[pos] = (uint8_t)(r >> 8);
		}
		fmt_put64(map + mlen, XXH3_64bits(map, mlen));
		fd = memfd_of(o.b, o.len);
		ret = store_object_open_fd(fd, "fuzz", &ob);
		assert_true(ret == 0 || ret == -EUCLEAN || ret == -EPROTONOSUPPORT);
		if (!ret) {
			opened++;
			for (uint64_t i = 0; i < NCHUNKS; i++) {
				ret = store_object_read_chunk(ob, i, dc, buf);
				assert_true(ret == 0 || ret == -EUCLEAN);
				if (!ret)
					assert_memory_equal(buf, data + i * CS,
							    store_object_chunk_len(ob, i));
			}
			store_object_free(ob);
		}
		close(fd);
		free(o.b);
	}
	print_message("%zu of 20000 damaged trailers still opened\n", opened);
	store_dctx_free(dc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_is_good), cmocka_unit_test(test_cases),
		cmocka_unit_test(test_probe),	     cmocka_unit_test(test_every_bitflip),
		cmocka_unit_test(test_trailer_fuzz),
	};

	/* A flood of expected error lines would hide a real failure. */
	log_set_level(getenv("FAISSFS_TEST_VERBOSE") ? LOG_LVL_DEBUG : (enum log_level) - 1);
	return cmocka_run_group_tests(tests, setup, teardown);
}
