/* test_filter.c - the byte-plane filters (filter.c) and filtered chunks (chunk.c):
 * split and join are inverse at every phase and length; every filter round-trips
 * through store_chunk_encode_filter() and store_chunk_decode() at every chunk
 * size, with odd lengths and chunks that end mid-value; the writer's own choice
 * finds the planes of float data; damaged filtered frames are -EUCLEAN and
 * unknown filter ids are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <xxhash.h>
#include <zstd.h>

#include "store_test.h"
#include "store_internal.h"
#include "util/log.h"

/* Float32 values starting at byte @phase, filler bytes before and after. */
static void fill_floats(uint8_t *p, size_t len, unsigned phase, uint64_t seed)
{
	size_t off = phase < len ? phase : len;

	memset(p, 'h', off);
	for (; off + 4 <= len; off += 4) {
		/* full 24-bit mantissas, |f| < 0.125: like unit-normalised embeddings */
		float f =
			(float)((int64_t)(t_rand_next(&seed) >> 40) - (1 << 23)) / (float)(1 << 26);

		memcpy(p + off, &f, 4);
	}
	memset(p + off, 't', len - off);
}

static void test_split_join(void **state)
{
	uint8_t in[300], mid[300], out[300];

	(void)state;
	t_fill_random(in, sizeof(in), 5);
	for (unsigned phase = 0; phase < 4; phase++) {
		for (size_t len = 0; len <= sizeof(in); len++) {
			struct store_planes4 pl;

			store_planes4_layout(len, phase, &pl);
			assert_int_equal(pl.head + 4 * pl.nval + pl.tail, len);
			assert_true(pl.tail < 4);
			memset(mid, 0xee, sizeof(mid));
			store_planes4_split(in, len, phase, mid);
			/* plane k holds byte k of every whole value */
			for (size_t i = 0; i < pl.nval; i++)
				for (size_t k = 0; k < 4; k++)
					assert_int_equal(mid[pl.head + k * pl.nval + i],
							 in[pl.head + 4 * i + k]);
			assert_memory_equal(mid, in, pl.head);
			assert_memory_equal(mid + len - pl.tail, in + len - pl.tail, pl.tail);
			memset(out, 0xdd, sizeof(out));
			store_planes4_join(mid, len, phase, out);
			assert_memory_equal(out, in, len);
			if (len < sizeof(out))
				assert_int_equal(out[len], 0xdd); /* nothing past the end */
		}
	}
}

static void test_guess(void **state)
{
	size_t lens[] = {64, 4096, 100003, 1u << 20};
	uint8_t *buf = malloc(1u << 20);

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (unsigned phase = 0; phase < 4; phase++) {
			fill_floats(buf, lens[i], phase, lens[i] + phase);
			assert_int_equal(store_planes4_guess(buf, lens[i]), phase);
		}
	/* never out of range, whatever the bytes */
	for (size_t len = 0; len < 40; len++) {
		t_fill_random(buf, len, len);
		assert_true(store_planes4_guess(buf, len) < 4);
	}
	free(buf);
}

/* Encodes @in with @filter, checks the frame and decodes it back. */
static void round_trip(struct store_cctx *cc, struct store_dctx *dc, struct store_chunk *c,
		       const uint8_t *in, uint8_t *out, size_t len, unsigned filter)
{
	const char *bad = NULL;

	assert_int_equal(store_chunk_encode_filter(cc, in, len, 1, filter, c), 0);
	assert_int_equal(c->kind, FMT_CHUNK_ZSTD);
	assert_int_equal(c->filter, filter);
	assert_int_equal(c->logical_len, len);
	assert_true(c->hash == XXH3_64bits(in, len));
	/* one zstd frame of the chunk's length, whatever the filter */
	assert_int_equal(ZSTD_findFrameCompressedSize(c->data, c->stored_len), c->stored_len);
	assert_true(ZSTD_getFrameContentSize(c->data, c->stored_len) == len);
	memset(out, 0xAA, len);
	assert_int_equal(store_chunk_decode(dc, filter, c->data, c->stored_len, out, len, &bad), 0);
	assert_memory_equal(in, out, len);
}

/* Every filter and phase at every chunk size, full chunks and odd lengths whose
 * last value is cut (len - phase not a multiple of 4). */
static void test_every_filter_every_chunk_size(void **state)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_dctx *dc = store_dctx_new();
	struct store_chunk c = {0};
	uint8_t *in = malloc(FMT_CHUNK_MAX), *out = malloc(FMT_CHUNK_MAX);

	(void)state;
	for (uint32_t cs = FMT_CHUNK_MIN; cs <= FMT_CHUNK_MAX; cs *= 2) {
		size_t lens[] = {1, 2, 3, 5, 9, cs / 2 + 3, cs - 1, cs};

		for (unsigned phase = 0; phase < 4; phase++) {
			fill_floats(in, cs, phase, cs + phase);
			for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
				/* the large sizes once per length, to keep this quick */
				if (cs >= (1u << 22) && lens[i] < cs - 1 && lens[i] > 9)
					continue;
				for (unsigned f = 0; f <= FMT_FILTER_MAX; f++)
					round_trip(cc, dc, &c, in, out, lens[i], f);
			}
		}
	}
	store_chunk_release(&c);
	store_cctx_free(cc);
	store_dctx_free(dc);
	free(in);
	free(out);
}

/* store_chunk_encode() picks the planes for floats, at their phase, and keeps
 * the 1/8 rule; each search mode decodes back. */
static void test_writer_choice(void **state)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_dctx *dc = store_dctx_new();
	struct store_chunk c = {0};
	size_t len = 262144 + 3;
	uint8_t *in = malloc(len), *out = malloc(len);
	const char *bad;

	(void)state;
	for (unsigned phase = 0; phase < 4; phase++) {
		enum store_filter_search modes[] = {STORE_FILTERS_GUESS, STORE_FILTERS_ALL,
						    STORE_FILTERS_OFF};

		fill_floats(in, len, phase, phase);
		for (size_t m = 0; m < 3; m++) {
			store_cctx_set_filters(cc, modes[m]);
			assert_int_equal(store_chunk_encode(cc, in, len, 1, &c), 0);
			if (modes[m] == STORE_FILTERS_OFF) {
				assert_int_equal(c.filter, FMT_FILTER_NONE);
			} else {
				assert_int_equal(c.kind, FMT_CHUNK_ZSTD);
				assert_true(c.filter != FMT_FILTER_NONE);
				assert_true(c.stored_len <= len - len / 8);
			}
			if (modes[m] == STORE_FILTERS_GUESS)
				assert_int_equal(c.filter, FMT_FILTER_PLANES4_P0 + phase);
			if (c.kind != FMT_CHUNK_HOLE) {
				assert_int_equal(store_chunk_decode(dc, c.filter, c.data,
								    c.stored_len, out, len, &bad),
						 0);
				assert_memory_equal(in, out, len);
			}
		}
	}
	/* random bytes stay raw and unfiltered, zeros a hole */
	store_cctx_set_filters(cc, STORE_FILTERS_ALL);
	t_fill_random(in, len, 1);
	assert_int_equal(store_chunk_encode(cc, in, len, 1, &c), 0);
	assert_int_equal(c.kind, FMT_CHUNK_RAW);
	assert_int_equal(c.filter, FMT_FILTER_NONE);
	memset(in, 0, len);
	assert_int_equal(store_chunk_encode(cc, in, len, 1, &c), 0);
	assert_int_equal(c.kind, FMT_CHUNK_HOLE);
	assert_int_equal(c.filter, FMT_FILTER_NONE);
	store_chunk_release(&c);
	store_cctx_free(cc);
	store_dctx_free(dc);
	free(in);
	free(out);
}

/* Damaged filtered frames: -EUCLEAN or, if zstd does not notice, other bytes that
 * the chunk hash catches; never a crash.  Unknown ids and bad args are refused. */
static void test_damage_and_unknown(void **state)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_dctx *dc = store_dctx_new();
	struct store_chunk c = {0};
	size_t len = 20000;
	uint8_t *in = malloc(len), *out = malloc(len), *frame;
	const char *bad = NULL;
	size_t caught = 0;

	(void)state;
	fill_floats(in, len, 1, 9);
	assert_int_equal(store_chunk_encode_filter(cc, in, len, 1, FMT_FILTER_PLANES4_P0 + 1, &c),
			 0);
	frame = malloc(c.stored_len);
	for (size_t pos = 0; pos < c.stored_len; pos++) {
		int ret;

		memcpy(frame, c.data, c.stored_len);
		frame[pos] ^= (uint8_t)(1u << (pos % 8));
		ret = store_chunk_decode(dc, c.filter, frame, c.stored_len, out, len, &bad);
		assert_true(ret == 0 || ret == -EUCLEAN);
		if (ret || XXH3_64bits(out, len) != c.hash)
			caught++;
	}
	assert_true(caught > c.stored_len / 2);
	/* truncated, and a frame of the wrong length */
	assert_int_equal(store_chunk_decode(dc, c.filter, c.data, c.stored_len - 1, out, len, &bad),
			 -EUCLEAN);
	assert_int_equal(store_chunk_decode(dc, c.filter, c.data, c.stored_len, out, len - 1, &bad),
			 -EUCLEAN);
	assert_string_equal(bad, "not a valid zstd frame");
	assert_int_equal(store_chunk_encode_filter(cc, in, len - 4, 1, FMT_FILTER_PLANES4_P0, &c),
			 0);
	memset(out, 0, len);
	assert_int_equal(store_chunk_decode(dc, c.filter, c.data, c.stored_len, out, len, &bad),
			 -EUCLEAN);
	/* ids past the known ones */
	for (unsigned f = FMT_FILTER_MAX + 1; f < 256; f++) {
		assert_int_equal(
			store_chunk_decode(dc, f, c.data, c.stored_len, out, len - 4, &bad),
			-EPROTONOSUPPORT);
		assert_int_equal(store_chunk_encode_filter(cc, in, len, 1, f, &c), -EINVAL);
	}
	assert_int_equal(store_chunk_encode_filter(cc, in, 0, 1, 1, &c), -EINVAL);
	assert_int_equal(store_chunk_encode_filter(NULL, in, 4, 1, 1, &c), -EINVAL);
	store_chunk_release(&c);
	store_cctx_free(cc);
	store_dctx_free(dc);
	free(frame);
	free(in);
	free(out);
}

/* The writer refuses a filter on a chunk that is not ZSTD, or an unknown one. */
static void test_writer_refuses_bad_filter(void **state)
{
	char *dir = t_tmpdir();
	struct store *st;
	struct store_writer *w;
	struct store_chunk c = {0};
	uint8_t frame[32];

	(void)state;
	assert_int_equal(store_create(dir, NULL), 0);
	assert_int_equal(store_open(dir, 0, &st), 0);
	c.data = frame;
	c.stored_len = (uint32_t)store_raw_frame_build(frame, "abcd", 4);
	c.logical_len = 4;
	c.kind = FMT_CHUNK_RAW;
	c.filter = FMT_FILTER_PLANES4_P0;
	assert_int_equal(store_writer_new(st, NULL, &w), 0);
	assert_int_equal(store_writer_append_chunk(w, &c), -EINVAL);
	c.kind = FMT_CHUNK_ZSTD;
	c.filter = FMT_FILTER_MAX + 1;
	assert_int_equal(store_writer_append_chunk(w, &c), -EINVAL);
	store_writer_abort(w);
	store_close(st);
	t_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_join),
		cmocka_unit_test(test_guess),
		cmocka_unit_test(test_every_filter_every_chunk_size),
		cmocka_unit_test(test_writer_choice),
		cmocka_unit_test(test_damage_and_unknown),
		cmocka_unit_test(test_writer_refuses_bad_filter),
	};

	log_set_level(getenv("FAISSFS_TEST_VERBOSE") ? LOG_LVL_DEBUG : (enum log_level) - 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
