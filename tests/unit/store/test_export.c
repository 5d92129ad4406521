/* test_export.c - store_export(): objects and plain files come out byte-identical
 * with modes and mtimes, holes stay holes, DST must be new or empty, and a corrupt
 * chunk stops the export with -EUCLEAN, keeping what was written before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store_test.h"

#define CS 4096u

struct fixture {
	char *tmp;
	char store[512], dst[512];
	uint8_t *data;
	size_t len;
};

static char *join(const char *a, const char *b)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", a, b) > 0);
	return p;
}

static void set_attrs(const char *root, const char *rel, mode_t mode, time_t sec, long nsec)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {sec, nsec}};
	char *p = join(root, rel);

	assert_int_equal(chmod(p, mode), 0);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	free(p);
}

/* A store with: a/ (0750) holding object a/x.faiss (mixed, 5.x chunks) and a plain
 * file a/notes.txt; b.obj (random: raw chunks); c/zero.obj (holes then a tail). */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params p;
	struct store *st = NULL;
	uint8_t *zero;
	char *path;

	assert_non_null(f);
	f->tmp = t_tmpdir();
	snprintf(f->store, sizeof(f->store), "%s/store", f->tmp);
	snprintf(f->dst, sizeof(f->dst), "%s/dst", f->tmp);
	f->len = 5 * CS + 333;
	f->data = malloc(f->len);
	assert_non_null(f->data);
	t_fill_mixed(f->data, f->len, 99);

	store_params_default(&p);
	p.chunk_size = CS;
	assert_int_equal(store_create(f->store, &p), 0);
	assert_int_equal(store_open(f->store, 0, &st), 0);
	path = join(f->store, "a");
	assert_int_equal(mkdir(path, 0755), 0);
	free(path);
	path = join(f->store, "c");
	assert_int_equal(mkdir(path, 0755), 0);
	free(path);
	assert_int_equal(t_write_object(st, &p, "b.obj", f->data, f->len, 1000), 0);
	store_close(st);

	/* objects in subdirectories: write at the root, then move */
	assert_int_equal(store_open(f->store, 0, &st), 0);
	assert_int_equal(t_write_object(st, &p, "x.faiss", f->data, f->len, CS), 0);
	zero = calloc(1, 8 * CS + 5);
	assert_non_null(zero);
	memcpy(zero + 8 * CS, "tail!", 5);
	assert_int_equal(t_write_object(st, &p, "zero.obj", zero, 8 * CS + 5, 3 * CS), 0);
	free(zero);
	store_close(st);
	{
		int fd = open(f->store, O_RDONLY | O_DIRECTORY);

		assert_true(fd >= 0);
		assert_int_equal(renameat(fd, "x.faiss", fd, "a/x.faiss"), 0);
		assert_int_equal(renameat(fd, "zero.obj", fd, "c/zero.obj"), 0);
		close(fd);
	}
	path = join(f->store, "a/notes.txt");
	assert_int_equal(t_write_file(path, "plain bytes\n", 12), 0);
	free(path);

	set_attrs(f->store, "a/x.faiss", 0640, 1600000000, 111);
	set_attrs(f->store, "a/notes.txt", 0600, 1600000001, 222);
	set_attrs(f->store, "b.obj", 0755, 1600000002, 333);
	set_attrs(f->store, "c/zero.obj", 0644, 1600000003, 444);
	set_attrs(f->store, "c", 0700, 1500000000, 555);
	set_attrs(f->store, "a", 0750, 1500000001, 666);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	t_rm_rf(f->tmp);
	free(f->tmp);
	free(f->data);
	free(f);
	return 0;
}

static int do_export(const char *store, const char *dst)
{
	struct store *st = NULL;
	int r = store_open(store, STORE_RDONLY, &st);

	assert_int_equal(r, 0);
	r = store_export(st, dst, false);
	store_close(st);
	return r;
}

static void check_file(const char *dst, const char *rel, const void *want, size_t len, mode_t mode,
		       time_t sec, long nsec)
{
	char *p = join(dst, rel);
	struct stat sb;
	uint8_t *got;
	size_t glen;

	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, mode);
	assert_int_equal(sb.st_mtim.tv_sec, sec);
	assert_int_equal(sb.st_mtim.tv_nsec, nsec);
	if (S_ISREG(sb.st_mode)) {
		got = t_read_file(p, &glen);
		assert_non_null(got);
		assert_int_equal(glen, len);
		assert_memory_equal(got, want, len);
		free(got);
	}
	free(p);
}

static void test_export_all(void **state)
{
	struct fixture *f = *state;
	uint8_t *zero = calloc(1, 8 * CS + 5);
	char *meta = join(f->dst, FMT_META_DIR);
	struct stat sb;

	assert_non_null(zero);
	memcpy(zero + 8 * CS, "tail!", 5);
	assert_int_equal(do_export(f->store, f->dst), 0);
	assert_int_equal(stat(f->dst, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0755);
	check_file(f->dst, "a/x.faiss", f->data, f->len, 0640, 1600000000, 111);
	check_file(f->dst, "a/notes.txt", "plain bytes\n", 12, 0600, 1600000001, 222);
	check_file(f->dst, "b.obj", f->data, f->len, 0755, 1600000002, 333);
	check_file(f->dst, "c/zero.obj", zero, 8 * CS + 5, 0644, 1600000003, 444);
	check_file(f->dst, "c", NULL, 0, 0700, 1500000000, 555);
	check_file(f->dst, "a", NULL, 0, 0750, 1500000001, 666);
	assert_int_equal(access(meta, F_OK), -1); /* the store's own data stays behind */

	/* holes stay holes where the filesystem has them */
	free(meta);
	meta = join(f->dst, "c/zero.obj");
	assert_int_equal(stat(meta, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 < 8 * CS);
	free(meta);
	free(zero);
}

static void test_dst_rules(void **state)
{
	struct fixture *f = *state;
	char *file = join(f->dst, "keep");
	char *f2 = join(f->tmp, "afile");
	struct stat sb;

	/* non-empty: refused, untouched */
	assert_int_equal(mkdir(f->dst, 0700), 0);
	assert_int_equal(t_write_file(file, "k", 1), 0);
	assert_int_equal(do_export(f->store, f->dst), -EEXIST);
	free(file);
	file = join(f->dst, "a");
	assert_int_equal(access(file, F_OK), -1);

	/* a regular file: refused */
	assert_int_equal(t_write_file(f2, "k", 1), 0);
	assert_int_equal(do_export(f->store, f2), -EEXIST);

	/* an empty directory: fine, its mode kept */
	t_rm_rf(f->dst);
	assert_int_equal(mkdir(f->dst, 0700), 0);
	assert_int_equal(do_export(f->store, f->dst), 0);
	assert_int_equal(stat(f->dst, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	check_file(f->dst, "b.obj", f->data, f->len, 0755, 1600000002, 333);
	free(file);
	free(f2);
}

static void test_corrupt_chunk_stops(void **state)
{
	struct fixture *f = *state;
	char *obj = join(f->store, "b.obj");
	char *before = join(f->dst, "a/x.faiss"), *after = join(f->dst, "c/zero.obj");
	struct store_object *o = NULL;
	uint64_t off;
	uint8_t byte;
	int fd;

	/* flip a byte in the middle of chunk 2's frame */
	assert_int_equal(store_object_openat(AT_FDCWD, obj, obj, &o), 0);
	off = FMT_OBJ_HEADER_SIZE + store_object_chunk_stored(o, 0) +
	      store_object_chunk_stored(o, 1) + store_object_chunk_stored(o, 2) / 2;
	store_object_free(o);
	fd = open(obj, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, (off_t)off), 1);
	byte ^= 0x5a;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)off), 1);
	close(fd);

	assert_int_equal(do_export(f->store, f->dst), -EUCLEAN);
	assert_int_equal(access(before, F_OK), 0); /* written before it: kept */
	assert_int_equal(access(after, F_OK), -1); /* after it: never started */
	free(obj);
	free(before);
	free(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_export_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dst_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_chunk_stops, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
