/* test_fuzz_unfilter.c - the fuzz_unfilter corpus as a plain regression test (no
 * clang): every file of tests/data/fuzz-unfilter/ goes through the libFuzzer
 * target's own entry (tests/fuzz/fuzz_unfilter.c, included here with its entry
 * renamed), which aborts on a wrong result.  Files named ok_* must also decode,
 * bad_* must not (others, such as a flipped literal bit, may do either: the chunk
 * hash catches those).  FAISSFS_REGEN_CORPUS=1 rewrites the seeds this file makes.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "store_test.h"

#define FUZZ_ENTRY fuzz_unfilter_one
#include "tests/fuzz/fuzz_unfilter.c"
#undef FUZZ_ENTRY

static char corpus[PATH_MAX];

/* Float32 values from byte @phase on, as FAISS stores vectors. */
static void fill_floats(uint8_t *p, size_t len, unsigned phase, uint64_t seed)
{
	size_t off = phase < len ? phase : len;

	memset(p, 'h', off);
	for (; off + 4 <= len; off += 4) {
		float f =
			(float)((int64_t)(t_rand_next(&seed) >> 40) - (1 << 23)) / (float)(1 << 26);

		memcpy(p + off, &f, 4);
	}
	memset(p + off, 't', len - off);
}

/* Writes one seed: [filter][len - 1 as u24][frame]. */
static void put_seed(const char *name, unsigned filter, size_t len, const void *frame, size_t flen)
{
	uint8_t *buf = malloc(flen + 4);
	char path[PATH_MAX + 64];

	assert_non_null(buf);
	buf[0] = (uint8_t)filter;
	buf[1] = (uint8_t)(len - 1);
	buf[2] = (uint8_t)((len - 1) >> 8);
	buf[3] = (uint8_t)((len - 1) >> 16);
	memcpy(buf + 4, frame, flen);
	snprintf(path, sizeof(path), "%s/%s", corpus, name);
	assert_int_equal(t_write_file(path, buf, flen + 4), 0);
	free(buf);
}

/* The seeds: a good frame per filter (lengths that end mid-value), and damaged
 * or mislabelled ones. */
static void regen(void)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk c = {0};
	uint8_t in[4099], junk[300];
	char name[64];

	mkdir(corpus, 0755);
	for (unsigned f = 0; f <= FMT_FILTER_MAX; f++) {
		size_t len = 1000 + f;

		fill_floats(in, len, f ? f - 1 : 0, f);
		assert_int_equal(store_chunk_encode_filter(cc, in, len, 1, f, &c), 0);
		snprintf(name, sizeof(name), "ok_filter%u_len%zu", f, len);
		put_seed(name, f, len, c.data, c.stored_len);
	}
	fill_floats(in, sizeof(in), 1, 7);
	assert_int_equal(store_chunk_encode(cc, in, sizeof(in), 1, &c), 0);
	assert_true(c.filter != FMT_FILTER_NONE);
	put_seed("ok_writer_choice", c.filter, sizeof(in), c.data, c.stored_len);
	assert_int_equal(store_chunk_encode_filter(cc, in, 1, 1, FMT_FILTER_PLANES4_P3, &c), 0);
	put_seed("ok_one_byte_phase3", FMT_FILTER_PLANES4_P3, 1, c.data, c.stored_len);

	assert_int_equal(
		store_chunk_encode_filter(cc, in, sizeof(in), 1, FMT_FILTER_PLANES4_P0 + 1, &c), 0);
	put_seed("bad_truncated", c.filter, sizeof(in), c.data, c.stored_len - 5);
	put_seed("bad_too_long", c.filter, sizeof(in) - 3, c.data, c.stored_len);
	put_seed("bad_too_short", c.filter, sizeof(in) + 1, c.data, c.stored_len);
	put_seed("bad_unknown_filter5", FMT_FILTER_MAX + 1, sizeof(in), c.data, c.stored_len);
	put_seed("bad_unknown_filter255", 255, sizeof(in), c.data, c.stored_len);
	c.data[c.stored_len / 2] ^= 0x20;
	put_seed("any_bitflip", c.filter, sizeof(in), c.data, c.stored_len);
	put_seed("bad_empty_frame", FMT_FILTER_PLANES4_P0, 4096, "", 0);
	t_fill_random(junk, sizeof(junk), 3);
	put_seed("bad_garbage", FMT_FILTER_PLANES4_P0 + 2, 1u << 20, junk, sizeof(junk));
	/* a raw frame that says 8 bytes and holds 4 */
	store_raw_frame_build(junk, in, 8);
	put_seed("bad_raw_frame_short", FMT_FILTER_PLANES4_P0, 8, junk, 9 + 3 + 4);
	store_chunk_release(&c);
	store_cctx_free(cc);
}

static void run_file(const char *name)
{
	char path[PATH_MAX + 300];
	uint8_t *data;
	size_t size = 0;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", corpus, name);
	data = t_read_file(path, &size);
	assert_non_null(data);
	assert_int_equal(fuzz_unfilter_one(data, size), 0);
	if (size >= 4 && (!strncmp(name, "ok_", 3) || !strncmp(name, "bad_", 4))) {
		size_t len = ((size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16) + 1;
		const char *bad = NULL;

		ret = store_chunk_decode(fu_dc, data[0], data + 4, size - 4, fu_a, len, &bad);
		if ((ret == 0) != (name[0] == 'o'))
			print_error("%s: decode returned %d\n", name, ret);
		assert_true((ret == 0) == (name[0] == 'o'));
	}
	free(data);
}

static void test_corpus(void **state)
{
	struct dirent **names = NULL;
	int n, ok = 0, bad = 0;

	(void)state;
	if (getenv("FAISSFS_REGEN_CORPUS"))
		regen();
	n = scandir(corpus, &names, NULL, alphasort);
	if (n < 0)
		print_error("%s: missing; make it with FAISSFS_REGEN_CORPUS=1\n", corpus);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			run_file(names[i]->d_name);
			ok += names[i]->d_name[0] == 'o';
			bad += names[i]->d_name[0] == 'b';
		}
		free(names[i]);
	}
	free(names);
	assert_true(ok >= FMT_FILTER_MAX + 1);
	assert_true(bad >= 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
	};
	const char *data = getenv("FAISSFS_TEST_DATA");

	snprintf(corpus, sizeof(corpus), "%s/fuzz-unfilter", data ? data : "tests/data");
	log_set_level((enum log_level) - 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
