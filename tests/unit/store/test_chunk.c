/* test_chunk.c - store_chunk_encode(): every kind at every chunk size decodes
 * with plain zstd to the same bytes (to the byte planes for a filtered chunk),
 * with the right kind, length and hash, and with store_chunk_decode() to the
 * same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <xxhash.h>
#include <zstd.h>

#include "store_test.h"
#include "store_internal.h"

enum fill { FILL_ZERO, FILL_TEXT, FILL_RANDOM, FILL_MIXED };

static void fill(uint8_t *buf, size_t len, enum fill f, uint64_t seed)
{
	switch (f) {
	case FILL_ZERO:
		memset(buf, 0, len);
		break;
	case FILL_TEXT:
		t_fill_text(buf, len, seed);
		break;
	case FILL_RANDOM:
		t_fill_random(buf, len, seed);
		break;
	case FILL_MIXED:
		t_fill_mixed(buf, len, seed);
		break;
	}
}

/* Encodes @len bytes of kind @f and checks the frame decodes back. */
static void round_trip(struct store_cctx *cc, struct store_chunk *c, uint8_t *in, uint8_t *out,
		       size_t len, enum fill f, int level)
{
	struct store_dctx *dc = store_dctx_new();
	const char *bad = NULL;
	uint8_t *split = NULL;
	size_t r;

	assert_non_null(dc);
	fill(in, len, f, len * 31 + (size_t)f);
	assert_int_equal(store_chunk_encode(cc, in, len, level, c), 0);
	assert_int_equal(c->logical_len, len);
	assert_true(c->stored_len <= c->cap);
	assert_true(c->hash == XXH3_64bits(in, len));
	if (f == FILL_ZERO)
		assert_int_equal(c->kind, FMT_CHUNK_HOLE);
	else if (f == FILL_RANDOM)
		assert_int_equal(c->kind, FMT_CHUNK_RAW);
	else if (f == FILL_TEXT && len >= 64)
		assert_int_equal(c->kind, FMT_CHUNK_ZSTD);
	if (c->kind == FMT_CHUNK_ZSTD)
		assert_true(c->stored_len <= len - len / 8);
	if (c->kind != FMT_CHUNK_ZSTD)
		assert_int_equal(c->filter, FMT_FILTER_NONE);
	assert_true(c->filter <= FMT_FILTER_MAX);
	/* One frame, with its content size, exactly @len bytes. */
	assert_int_equal(ZSTD_findFrameCompressedSize(c->data, c->stored_len), c->stored_len);
	assert_true(ZSTD_getFrameContentSize(c->data, c->stored_len) == len);
	memset(out, 0xAA, len);
	r = ZSTD_decompress(out, len, c->data, c->stored_len);
	assert_false(ZSTD_isError(r));
	assert_int_equal(r, len);
	if (c->filter) {
		split = malloc(len);
		assert_non_null(split);
		store_planes4_split(in, len, c->filter - FMT_FILTER_PLANES4_P0, split);
		assert_memory_equal(split, out, len);
		free(split);
	} else {
		assert_memory_equal(in, out, len);
	}
	if (c->kind != FMT_CHUNK_HOLE) {
		memset(out, 0x55, len);
		assert_int_equal(
			store_chunk_decode(dc, c->filter, c->data, c->stored_len, out, len, &bad),
			0);
		assert_memory_equal(in, out, len);
	}
	store_dctx_free(dc);
}

static void test_every_kind_every_chunk_size(void **state)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk c = {0};
	uint8_t *in = malloc(FMT_CHUNK_MAX), *out = malloc(FMT_CHUNK_MAX);

	(void)state;
	assert_non_null(cc);
	assert_non_null(in);
	assert_non_null(out);
	for (uint32_t cs = FMT_CHUNK_MIN; cs <= FMT_CHUNK_MAX; cs *= 2) {
		size_t lens[] = {1, 7, 4097 % cs + 1, cs / 2 + 3, cs - 1, cs};

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			for (int f = FILL_ZERO; f <= FILL_MIXED; f++)
				round_trip(cc, &c, in, out, lens[i], (enum fill)f,
					   cs >= (1u << 22) ? 1 : 3);
	}
	store_chunk_release(&c);
	store_cctx_free(cc);
	free(in);
	free(out);
}

static void test_levels(void **state)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk c = {0};
	size_t len = 100000;
	uint8_t *in = malloc(len), *out = malloc(len);

	(void)state;
	for (int level = 1; level <= 19; level += 3)
		for (int f = FILL_ZERO; f <= FILL_MIXED; f++)
			round_trip(cc, &c, in, out, len, (enum fill)f, level);
	store_chunk_release(&c);
	store_cctx_free(cc);
	free(in);
	free(out);
}

/* A raw frame straddling block boundaries (128 KiB) decodes, and its layout is
 * exactly header + 3 bytes per block + data. */
static void test_raw_block_boundaries(void **state)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk c = {0};
	size_t lens[] = {131071, 131072, 131073, 262144, 262145};
	uint8_t *in = malloc(262145), *out = malloc(262145);

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		round_trip(cc, &c, in, out, lens[i], FILL_RANDOM, 3);
		assert_int_equal(c.stored_len, 9 + 3 * ((lens[i] + 131071) / 131072) + lens[i]);
	}
	store_chunk_release(&c);
	store_cctx_free(cc);
	free(in);
	free(out);
}

static void test_bad_args(void **state)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk c = {0};
	uint8_t b[4] = {0};

	(void)state;
	assert_int_equal(store_chunk_encode(cc, b, 0, 3, &c), -EINVAL);
	assert_int_equal(store_chunk_encode(cc, b, (size_t)FMT_CHUNK_MAX + 1, 3, &c), -EINVAL);
	assert_int_equal(store_chunk_encode(NULL, b, 4, 3, &c), -EINVAL);
	store_chunk_release(&c);
	store_chunk_release(NULL);
	store_cctx_free(cc);
	store_cctx_free(NULL);
	store_dctx_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind_every_chunk_size),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_raw_block_boundaries),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
