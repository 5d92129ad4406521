/* test_access.c - the access counts file (.faissfs/access): a round trip, a missing
 * file, every way it can be damaged (refused whole), the path rules, and a read-only
 * store that refuses to save. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store_test.h"

static char *dir;
static char spath[512];

static int setup(void **state)
{
	(void)state;
	dir = t_tmpdir();
	snprintf(spath, sizeof(spath), "%s/s", dir);
	return store_create(spath, NULL);
}

static int teardown(void **state)
{
	(void)state;
	t_rm_rf(dir);
	free(dir);
	return 0;
}

/* Writes @text as the access file. */
static void put_file(const char *text)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s/%s", spath, FMT_META_DIR, FMT_ACCESS_NAME);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_round_trip(void **state)
{
	struct store_access in[2] = {{"acme/a/index.faiss", 7}, {"b.faiss", 1}}, *out = NULL;
	struct store *st;
	ssize_t n;

	(void)state;
	assert_int_equal(store_open(spath, 0, &st), 0);
	assert_int_equal(store_access_load(st, &out), -ENOENT);
	assert_int_equal(store_access_save(st, in, 2), 0);
	n = store_access_load(st, &out);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].path, "acme/a/index.faiss");
	assert_int_equal(out[0].count, 7);
	assert_string_equal(out[1].path, "b.faiss");
	assert_int_equal(out[1].count, 1);
	store_access_free(out, (size_t)n);
	/* Empty is a valid file too. */
	assert_int_equal(store_access_save(st, NULL, 0), 0);
	assert_int_equal(store_access_load(st, &out), 0);
	store_access_free(out, 0);
	store_close(st);
}

static void test_damaged(void **state)
{
	static const char *const bad[] = {
		"",
		"faissfs-access 2\nend\n",
		"faissfs-access 1\n3\tx.faiss\n",		       /* no end line */
		"faissfs-access 1\n3\tx.faiss\nend",		       /* end without newline */
		"faissfs-access 1\n3\tx.faiss",			       /* cut inside a record */
		"faissfs-access 1\n0\tx.faiss\nend\n",		       /* zero count */
		"faissfs-access 1\n-3\tx.faiss\nend\n",		       /* negative */
		"faissfs-access 1\n3x\tx.faiss\nend\n",		       /* junk count */
		"faissfs-access 1\n3 x.faiss\nend\n",		       /* no tab */
		"faissfs-access 1\n3\t../x.faiss\nend\n",	       /* escapes the store */
		"faissfs-access 1\n3\t/etc/passwd\nend\n",	       /* absolute */
		"faissfs-access 1\n3\t.faissfs/lock\nend\n",	       /* the store's own */
		"faissfs-access 1\n3\ta//b\nend\n",		       /* empty component */
		"faissfs-access 1\nend\n3\tx.faiss\n",		       /* after the end */
		"faissfs-access 1\n99999999999999999999999\tx\nend\n", /* overflow */
	};
	struct store_access *out = NULL;
	struct store *st;

	(void)state;
	assert_int_equal(store_open(spath, 0, &st), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_file(bad[i]);
		if (store_access_load(st, &out) != -EUCLEAN)
			fail_msg("case %zu was accepted: '%s'", i, bad[i]);
		assert_null(out);
	}
	put_file("faissfs-access 1\n18446744073709551615\tt/i/index.faiss\nend\n");
	assert_int_equal(store_access_load(st, &out), 1);
	assert_int_equal(out[0].count, UINT64_MAX);
	store_access_free(out, 1);
	store_close(st);
}

static void test_too_many(void **state)
{
	struct store_access *recs = calloc(STORE_ACCESS_MAX + 1, sizeof(*recs)), *out = NULL;
	char name[32];
	struct store *st;
	FILE *f;
	char p[600];

	(void)state;
	assert_non_null(recs);
	assert_int_equal(store_open(spath, 0, &st), 0);
	for (size_t i = 0; i <= STORE_ACCESS_MAX; i++) {
		snprintf(name, sizeof(name), "i%zu.faiss", i);
		recs[i].path = strdup(name);
		recs[i].count = i + 1;
	}
	assert_int_equal(store_access_save(st, recs, STORE_ACCESS_MAX + 1), -EINVAL);
	assert_int_equal(store_access_save(st, recs, STORE_ACCESS_MAX), 0);
	assert_int_equal(store_access_load(st, &out), STORE_ACCESS_MAX);
	store_access_free(out, STORE_ACCESS_MAX);
	/* One record more than a save writes, by hand: refused. */
	snprintf(p, sizeof(p), "%s/%s/%s", spath, FMT_META_DIR, FMT_ACCESS_NAME);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("faissfs-access 1\n", f);
	for (size_t i = 0; i <= STORE_ACCESS_MAX; i++)
		fprintf(f, "1\ti%zu\n", i);
	fputs("end\n", f);
	fclose(f);
	assert_int_equal(store_access_load(st, &out), -EUCLEAN);
	store_access_free(recs, STORE_ACCESS_MAX + 1);
	store_close(st);
}

static void test_paths_and_rdonly(void **state)
{
	struct store_access bad = {"a/../b", 1}, good = {"a/b", 2}, *out = NULL;
	struct store *st;

	(void)state;
	assert_true(store_access_path_ok("x"));
	assert_true(store_access_path_ok("t/.faissfs"));
	assert_false(store_access_path_ok(".faissfs"));
	assert_false(store_access_path_ok("a/"));
	assert_false(store_access_path_ok("./a"));
	assert_false(store_access_path_ok("a\tb"));
	assert_int_equal(store_open(spath, 0, &st), 0);
	assert_int_equal(store_access_save(st, &bad, 1), -EINVAL);
	assert_int_equal(store_access_save(st, &good, 1), 0);
	store_close(st);
	assert_int_equal(store_open(spath, STORE_RDONLY, &st), 0);
	assert_int_equal(store_access_save(st, &good, 1), -EROFS);
	assert_int_equal(store_access_load(st, &out), 1);
	store_access_free(out, 1);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths_and_rdonly, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
