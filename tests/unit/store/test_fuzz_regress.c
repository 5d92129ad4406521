/* test_fuzz_regress.c - the fuzz corpora as plain regression tests (no clang).
 *
 * Every file of tests/fuzz/bad/<target>/ is one test: it is run through the
 * same entry point as the libFuzzer target (the target's source is included
 * here with its entry renamed) and must not crash; superblock, trailer and
 * FAISS header inputs must also be refused by the parser.  The seeds in
 * tests/fuzz/corpus/ and the corrupt objects of tests/data/corrupt/ go through
 * the targets too.  Run under ASan+UBSan by scripts/test.sh.
 */
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FUZZ_ENTRY fuzz_superblock_one
#include "tests/fuzz/fuzz_superblock.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_object_one
#include "tests/fuzz/fuzz_object.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_meta_one
#include "tests/fuzz/fuzz_meta.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_faiss_header_one
#include "tests/fuzz/fuzz_faiss_header.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_manifest_one
#include "tests/fuzz/fuzz_manifest.c"
#undef FUZZ_ENTRY

enum target { T_SUPERBLOCK, T_OBJECT, T_META, T_FAISS, T_MANIFEST };

struct input {
	enum target target;
	bool bad; /* from bad/: the parser must refuse it */
	char path[PATH_MAX];
};

static uint8_t *load(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*size = (size_t)n;
	return buf;
}

/* The superblock input as the target writes it must not open. */
static void refuse_superblock(const uint8_t *data, size_t size)
{
	struct store *st = NULL;

	/* fuzz_superblock_one() left the input in place as the superblock. */
	(void)data;
	(void)size;
	assert_int_not_equal(store_open(sb_dir, STORE_RDONLY, &st), 0);
}

static void refuse_meta(const uint8_t *data, size_t size)
{
	struct fmt_object_header h = {0};
	struct store_meta m = {0};
	size_t map_len, len;
	uint8_t *frame;
	uint64_t hash;

	if (size < 13)
		return; /* the target ignores it: nothing to refuse */
	h.logical_size = fmt_get64(data);
	h.chunk_size = FMT_CHUNK_MIN << (data[8] % 13);
	h.trailer_offset = FMT_OBJ_HEADER_SIZE + (uint64_t)fmt_get32(data + 9);
	map_len = size - 13;
	len = map_len + 16;
	h.trailer_size = (uint32_t)len;
	frame = malloc(len);
	assert_non_null(frame);
	fmt_put32(frame, FMT_SKIPPABLE_MAGIC_TRAILER);
	fmt_put32(frame + 4, (uint32_t)(map_len + 8));
	memcpy(frame + 8, data + 13, map_len);
	fmt_put64(frame + 8 + map_len, XXH3_64bits(frame + 8, map_len));
	assert_int_not_equal(store_meta_decode(frame, len, &h, "regress", &m, &hash), 0);
	free(frame);
}

static void run_one(void **state)
{
	const struct input *in = *state;
	size_t size;
	uint8_t *data = load(in->path, &size);
	struct store_faiss_info fi;

	switch (in->target) {
	case T_SUPERBLOCK:
		fuzz_superblock_one(data, size);
		if (in->bad)
			refuse_superblock(data, size);
		break;
	case T_OBJECT:
		fuzz_object_one(data, size);
		break;
	case T_META:
		fuzz_meta_one(data, size);
		if (in->bad)
			refuse_meta(data, size);
		break;
	case T_MANIFEST: {
		struct store_manifest m;

		fuzz_manifest_one(data, size);
		if (in->bad)
			assert_int_not_equal(store_manifest_decode(data, size, "regress", &m), 0);
		break;
	}
	case T_FAISS:
		fuzz_faiss_header_one(data, size);
		store_faiss_parse(data, size, &fi);
		if (in->bad)
			assert_false(fi.valid);
		break;
	}
	free(data);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct input *inputs;
static size_t ninputs, icap;

static void add_dir(const char *dir, enum target t, bool bad)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			if (ninputs == icap) {
				icap = icap ? icap * 2 : 64;
				inputs = realloc(inputs, icap * sizeof(*inputs));
				if (!inputs)
					abort();
			}
			inputs[ninputs].target = t;
			inputs[ninputs].bad = bad;
			snprintf(inputs[ninputs].path, sizeof(inputs[ninputs].path), "%s/%s", dir,
				 names[i]->d_name);
			ninputs++;
		}
		free(names[i]);
	}
	free(names);
}

int main(void)
{
	static const char *const tnames[] = {"fuzz_superblock", "fuzz_object", "fuzz_meta",
					     "fuzz_faiss_header", "fuzz_manifest"};
	const char *data = getenv("FAISSFS_TEST_DATA");
	struct CMUnitTest *tests;
	char dir[PATH_MAX];
	size_t nbad = 0;
	int rc;

	if (!data)
		data = "tests/data";
	for (int t = 0; t < 5; t++) {
		size_t before = ninputs;

		snprintf(dir, sizeof(dir), "%s/../fuzz/bad/%s", data, tnames[t]);
		add_dir(dir, (enum target)t, true);
		nbad += ninputs - before;
		snprintf(dir, sizeof(dir), "%s/../fuzz/corpus/%s", data, tnames[t]);
		add_dir(dir, (enum target)t, false);
	}
	snprintf(dir, sizeof(dir), "%s/corrupt", data);
	add_dir(dir, T_OBJECT, false);
	if (nbad == 0) {
		fprintf(stderr,
			"no known-bad inputs under %s/../fuzz/bad: wrong FAISSFS_TEST_DATA?\n",
			data);
		return 1;
	}
	tests = calloc(ninputs, sizeof(*tests));
	if (!tests)
		return 1;
	for (size_t i = 0; i < ninputs; i++) {
		tests[i].name = inputs[i].path + strlen(data) + 1;
		tests[i].test_func = run_one;
		tests[i].initial_state = &inputs[i];
	}
	rc = _cmocka_run_group_tests("fuzz_regress", tests, ninputs, NULL, NULL);
	free(tests);
	free(inputs);
	if (sb_dir[0])
		nftw(sb_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
