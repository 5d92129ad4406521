/* test_huge.c - an object of 64 GiB logical size (mostly holes, a data chunk
 * every so often) written in seconds with store_writer_append_chunk(), opened and
 * read at random offsets across the whole range.  Checks 64-bit offsets end to
 * end and that opening it does not put its chunk table (6 MiB) on the heap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <inttypes.h>
#include <malloc.h>

#include <xxhash.h>

#include "store_test.h"
#include "store/store_internal.h"

#define CS	   (256u * 1024)
#define HUGE_SIZE  ((64ull << 30) + 12345) /* the last chunk is partial */
#define DATA_EVERY 997			   /* chunk i holds data if i % DATA_EVERY == 5 */

struct fixture {
	char *dir;
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	fx->dir = t_tmpdir();
	if (store_create(fx->dir, NULL) || store_open(fx->dir, 0, &fx->st))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	store_close(fx->st);
	t_rm_rf(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

static uint64_t nchunks(void)
{
	return HUGE_SIZE / CS + (HUGE_SIZE % CS != 0);
}

static size_t chunk_len(uint64_t i)
{
	return i == nchunks() - 1 ? (size_t)(HUGE_SIZE - i * CS) : CS;
}

static bool is_data(uint64_t i)
{
	return i % DATA_EVERY == 5 || i == nchunks() - 1;
}

/* The logical bytes [off, off + len) of the huge file. */
static void expected(uint8_t *dst, uint64_t off, size_t len)
{
	static uint8_t chunk[CS];
	uint64_t have = UINT64_MAX;

	while (len) {
		uint64_t i = off / CS;
		size_t in = (size_t)(off % CS), n = chunk_len(i) - in;

		if (n > len)
			n = len;
		if (!is_data(i)) {
			memset(dst, 0, n);
		} else {
			if (have != i)
				t_fill_text(chunk, chunk_len(i), i);
			have = i;
			memcpy(dst, chunk + in, n);
		}
		dst += n;
		off += n;
		len -= n;
	}
}

static void write_huge(struct fixture *fx)
{
	struct store_params p = {.chunk_size = CS, .level = 1};
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk hole = {0}, data = {0};
	struct store_writer *w;
	uint8_t *buf = calloc(1, CS);

	assert_non_null(cc);
	assert_non_null(buf);
	/* Encoded once: a hole's frame and hash depend only on its length. */
	assert_int_equal(store_chunk_encode(cc, buf, CS, 1, &hole), 0);
	assert_int_equal(hole.kind, FMT_CHUNK_HOLE);
	assert_int_equal(store_writer_new(fx->st, &p, &w), 0);
	for (uint64_t i = 0; i < nchunks(); i++) {
		if (!is_data(i)) {
			assert_int_equal(store_writer_append_chunk(w, &hole), 0);
			continue;
		}
		t_fill_text(buf, chunk_len(i), i);
		assert_int_equal(store_chunk_encode(cc, buf, chunk_len(i), 1, &data), 0);
		assert_int_equal(store_writer_append_chunk(w, &data), 0);
	}
	assert_int_equal(store_writer_commit(w, store_root_fd(fx->st), "huge", 0644, NULL), 0);
	store_chunk_release(&hole);
	store_chunk_release(&data);
	store_cctx_free(cc);
	free(buf);
}

static void test_huge_object(void **state)
{
	struct fixture *fx = *state;
	struct store_object *o;
	struct store_dctx *dc = store_dctx_new();
	uint8_t *got = malloc(3 * CS), *want = malloc(3 * CS);
	uint64_t seed = 42;
	size_t before, after;

	assert_non_null(dc);
	assert_non_null(got);
	assert_non_null(want);
	write_huge(fx);

	before = mallinfo2().uordblks;
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "huge", NULL, &o), 0);
	after = mallinfo2().uordblks;
	assert_int_equal(store_object_info(o)->size, HUGE_SIZE);
	assert_int_equal(store_object_info(o)->nchunks, nchunks());
	/* The table is nchunks * 24 bytes (6 MiB); the open object must cost a
	 * small, fixed amount of heap whatever the size. */
	print_message("chunk table %" PRIu64 " bytes; heap used by the open object: %zu bytes\n",
		      nchunks() * FMT_CHUNK_REC_SIZE, after - before);
	assert_true(after - before < 16 * 1024);
	assert_non_null(o->map);

	/* The first and last bytes, across 2^32 and 2^35, then at random. */
	static const uint64_t fixed[] = {0,
					 CS - 1,
					 (1ull << 32) - 100,
					 (1ull << 35) + 5 * CS - 3,
					 HUGE_SIZE - 1000,
					 HUGE_SIZE - 1};
	for (int k = 0; k < 2006; k++) {
		uint64_t off, r = t_rand_next(&seed);
		size_t len = 1 + (size_t)(t_rand_next(&seed) % (2 * CS));
		ssize_t n;

		if (k < 6)
			off = fixed[k];
		else if (k % 2) /* near a data chunk, so bytes are not all zero */
			off = (r % (nchunks() / DATA_EVERY)) * DATA_EVERY * CS + 4 * CS + r % CS;
		else
			off = r % HUGE_SIZE;
		if (len > HUGE_SIZE - off)
			len = (size_t)(HUGE_SIZE - off);
		n = store_object_pread(o, dc, got, len, off);
		assert_int_equal(n, (ssize_t)len);
		expected(want, off, len);
		if (memcmp(got, want, len))
			fail_msg("bytes differ at offset %" PRIu64 " (%zu bytes)", off, len);
	}
	assert_int_equal(store_object_pread(o, dc, got, 10, HUGE_SIZE), 0);
	/* Reads do not grow the heap either (the dctx buffers are allocated by now). */
	before = mallinfo2().uordblks;
	assert_int_equal(store_object_pread(o, dc, got, 3 * CS, (40ull << 30) + 7), 3 * CS);
	assert_true(mallinfo2().uordblks - before < 1024);
	store_object_free(o);
	store_dctx_free(dc);
	free(got);
	free(want);
}

/* Rewrites record @idx of the huge object with @kind and @hash and the trailer's
 * checksum to match, so only the record check can refuse it. */
static void patch_record(struct fixture *fx, uint64_t idx, uint8_t kind, uint64_t hash)
{
	char path[512];
	uint8_t hdr[FMT_OBJ_HEADER_SIZE], *t;
	uint64_t toff;
	uint32_t tlen;
	size_t rec;
	int fd;

	snprintf(path, sizeof(path), "%s/huge", fx->dir);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), sizeof(hdr));
	toff = fmt_get64(hdr + 40);
	tlen = fmt_get32(hdr + 48);
	t = malloc(tlen);
	assert_non_null(t);
	assert_int_equal(pread(fd, t, tlen, (off_t)toff), tlen);
	/* "chunks" is the map's last value: the table ends where the checksum starts. */
	rec = tlen - 8 - (nchunks() - idx) * FMT_CHUNK_REC_SIZE;
	t[rec + 12] = kind;
	fmt_put64(t + rec + 16, hash);
	fmt_put64(t + tlen - 8, XXH3_64bits(t + 8, tlen - 16));
	assert_int_equal(pwrite(fd, t, tlen, (off_t)toff), tlen);
	free(t);
	close(fd);
}

/* A mapped table is checked record by record at open like a copied one. */
static void test_huge_bad_record(void **state)
{
	struct fixture *fx = *state;
	struct store_object *o = NULL;

	write_huge(fx);
	patch_record(fx, 200003, 7, 0); /* an unknown kind far into the table */
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "huge", NULL, &o), -EUCLEAN);
	write_huge(fx);
	patch_record(fx, 123457, FMT_CHUNK_HOLE, 12345); /* a hole whose hash is not zeros' */
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "huge", NULL, &o), -EUCLEAN);
	assert_null(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_huge_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_bad_record, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
