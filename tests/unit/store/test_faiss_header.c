/* test_faiss_header.c - store_faiss_parse() against real FAISS 1.7.3 files
 * (tests/data/faiss, made by make.py from FAISS's own objects) and against
 * truncated and implausible headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store_test.h"

static const char *data_dir(void)
{
	const char *d = getenv("FAISSFS_TEST_DATA");

	return d ? d : "tests/data";
}

static void test_real_files(void **state)
{
	char path[1024], line[1024];
	FILE *f;
	int n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/faiss/expected.json", data_dir());
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: cannot open (set FAISSFS_TEST_DATA to tests/data)\n", path);
		fail();
	}
	while (fgets(line, sizeof(line), f)) {
		char file[64], fourcc[5], binary[6], trained[6];
		int d, metric, code_size;
		long long ntotal;
		struct store_faiss_info fi;
		uint8_t *buf;
		size_t len = 0;

		if (sscanf(line,
			   "{\"file\": \"%63[^\"]\", \"fourcc\": \"%4[^\"]\", \"d\": %d, "
			   "\"ntotal\": %lld, \"metric\": %d, \"binary\": %5[a-z], "
			   "\"is_trained\": %5[a-z], \"code_size\": %d}",
			   file, fourcc, &d, &ntotal, &metric, binary, trained, &code_size) != 8)
			continue;
		snprintf(path, sizeof(path), "%s/faiss/%s", data_dir(), file);
		buf = t_read_file(path, &len);
		assert_non_null(buf);
		/* 64 bytes are always enough */
		store_faiss_parse(buf, len < 64 ? len : 64, &fi);
		print_message("%s: %s %s d=%d ntotal=%lld\n", file, fi.fourcc,
			      store_faiss_type_name(fi.fourcc), fi.d, (long long)fi.ntotal);
		assert_true(fi.valid);
		assert_string_equal(fi.fourcc, fourcc);
		assert_int_equal(fi.d, d);
		assert_int_equal(fi.ntotal, ntotal);
		assert_int_equal(fi.metric, metric);
		assert_int_equal(fi.binary, strcmp(binary, "true") == 0);
		assert_int_equal(fi.is_trained, strcmp(trained, "true") == 0);
		assert_int_equal(fi.code_size, code_size);
		assert_string_not_equal(store_faiss_type_name(fi.fourcc), "unknown");
		/* Any shorter prefix is either the same answer or not valid; never a crash. */
		for (size_t l = 0; l < 64 && l < len; l++) {
			struct store_faiss_info p;

			store_faiss_parse(buf, l, &p);
			assert_true(!p.valid || (p.d == fi.d && p.ntotal == fi.ntotal));
		}
		free(buf);
		n++;
	}
	fclose(f);
	assert_true(n >= 15);
}

static void put_float_header(uint8_t *b, const char *fourcc, int32_t d, int64_t ntotal,
			     uint8_t trained, int32_t metric)
{
	memset(b, 0, 64);
	memcpy(b, fourcc, 4);
	fmt_put32(b + 4, (uint32_t)d);
	fmt_put64(b + 8, (uint64_t)ntotal);
	b[32] = trained;
	fmt_put32(b + 33, (uint32_t)metric);
}

static void test_implausible(void **state)
{
	uint8_t b[64];
	struct store_faiss_info fi;

	(void)state;
	put_float_header(b, "IxF2", 16, 10, 1, 1);
	store_faiss_parse(b, 64, &fi);
	assert_true(fi.valid);
	put_float_header(b, "IxF2", 16, 10, 1, 22);
	store_faiss_parse(b, 64, &fi);
	assert_true(fi.valid);

	put_float_header(b, "XxF2", 16, 10, 1, 1); /* unknown fourcc */
	store_faiss_parse(b, 64, &fi);
	assert_false(fi.valid);
	put_float_header(b, "IxF2", 0, 10, 1, 1); /* d = 0 */
	store_faiss_parse(b, 64, &fi);
	assert_false(fi.valid);
	put_float_header(b, "IxF2", (1 << 20) + 1, 10, 1, 1); /* d too large */
	store_faiss_parse(b, 64, &fi);
	assert_false(fi.valid);
	put_float_header(b, "IxF2", 16, -1, 1, 1); /* ntotal < 0 */
	store_faiss_parse(b, 64, &fi);
	assert_false(fi.valid);
	put_float_header(b, "IxF2", 16, 10, 2, 1); /* is_trained not a bool */
	store_faiss_parse(b, 64, &fi);
	assert_false(fi.valid);
	put_float_header(b, "IxF2", 16, 10, 1, 7); /* metric unknown */
	store_faiss_parse(b, 64, &fi);
	assert_false(fi.valid);
	put_float_header(b, "IBxF", 16, 10, 1, 1); /* binary with a float layout */
	store_faiss_parse(b, 64, &fi);
	assert_false(fi.valid);

	store_faiss_parse(NULL, 0, &fi);
	assert_false(fi.valid);
	store_faiss_parse("{\"json\": 1}", 11, &fi);
	assert_false(fi.valid);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(store_faiss_type_name("IxF2"), "IndexFlatL2");
	assert_string_equal(store_faiss_type_name("IxFI"), "IndexFlatIP");
	assert_string_equal(store_faiss_type_name("IwFl"), "IndexIVFFlat");
	assert_string_equal(store_faiss_type_name("IwPQ"), "IndexIVFPQ");
	assert_string_equal(store_faiss_type_name("IHNf"), "IndexHNSWFlat");
	assert_string_equal(store_faiss_type_name("IBxF"), "IndexBinaryFlat");
	assert_string_equal(store_faiss_type_name("IxLa"), "IndexLattice");
	assert_string_equal(store_faiss_type_name("zzzz"), "unknown");
	assert_string_equal(store_faiss_type_name("IxF"), "unknown");
	assert_string_equal(store_faiss_type_name("IxF2x"), "unknown");
	assert_string_equal(store_faiss_type_name(NULL), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_files),
		cmocka_unit_test(test_implausible),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
