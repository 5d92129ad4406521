/* test_superblock.c - store_create() and store_open(): the good path and every
 * way a superblock can be missing, damaged or too new; store_feature_links()
 * sets its bit once, atomically, from many threads, and the stores with and
 * without it open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sys/mount.h>
#include <time.h>
#include <xxhash.h>

#include "store_test.h"

static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = t_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	t_rm_rf(dir);
	free(dir);
	return 0;
}

static void sb_path(char *buf, size_t n, const char *store)
{
	snprintf(buf, n, "%s/%s/%s", store, FMT_META_DIR, FMT_SUPERBLOCK_NAME);
}

static void test_create_open(void **state)
{
	struct store_params p = {.chunk_size = 1 << 20, .level = 9}, q;
	struct store *st;
	char path[512], sbp[600];
	struct stat sb;
	uint8_t *raw;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/a/b/store", dir);
	assert_int_equal(store_create(path, &p), 0);
	assert_int_equal(store_create(path, &p), -EEXIST);
	assert_int_equal(store_open(path, 0, &st), 0);
	assert_int_equal(store_default_params(st)->chunk_size, 1 << 20);
	assert_int_equal(store_default_params(st)->level, 9);
	assert_string_equal(store_path(st), path);
	assert_true(store_root_fd(st) >= 0);
	assert_true(store_tmp_fd(st) >= 0);
	assert_true(store_name_reserved(".faissfs"));
	assert_false(store_name_reserved("faissfs"));
	assert_false(store_name_reserved("tenant"));
	store_close(st);
	store_close(NULL);

	sb_path(sbp, sizeof(sbp), path);
	raw = t_read_file(sbp, &len);
	assert_int_equal(len, 64);
	assert_memory_equal(raw, "FFSSTORE", 8);
	assert_int_equal(fmt_get16(raw + 8), FMT_VERSION_MAJOR);
	assert_true(fmt_get64(raw + 56) == XXH3_64bits(raw, 56));
	free(raw);
	snprintf(sbp, sizeof(sbp), "%s/.faissfs/tmp", path);
	assert_int_equal(stat(sbp, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));

	/* An existing non-empty directory becomes a store; defaults with NULL. */
	snprintf(path, sizeof(path), "%s/data", dir);
	mkdir(path, 0755);
	snprintf(sbp, sizeof(sbp), "%s/data/x.json", dir);
	t_write_file(sbp, "{}", 2);
	assert_int_equal(store_create(path, NULL), 0);
	assert_int_equal(store_open(path, STORE_RDONLY, &st), 0);
	store_params_default(&q);
	assert_int_equal(store_default_params(st)->chunk_size, q.chunk_size);
	assert_int_equal(store_default_params(st)->level, q.level);
	store_close(st);

	q.level = 0;
	assert_int_equal(store_create(dir, &q), -EINVAL);
}

static void test_open_errors(void **state)
{
	struct store *st = (struct store *)0x1;
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(store_open(path, 0, &st), -ENOENT);
	snprintf(path, sizeof(path), "%s/file", dir);
	t_write_file(path, "x", 1);
	assert_int_equal(store_open(path, 0, &st), -ENOTDIR);
	assert_int_equal(store_open(dir, 0, &st), -EMEDIUMTYPE);
	snprintf(path, sizeof(path), "%s/.faissfs", dir);
	mkdir(path, 0755);
	assert_int_equal(store_open(dir, 0, &st), -EMEDIUMTYPE);
	assert_true(st == (struct store *)0x1); /* untouched on failure */
}

/* Rewrites the superblock of a fresh store through @edit, then opens it. */
static int open_edited(void (*edit)(uint8_t *sb, size_t *len), bool fix_sum, int flags)
{
	char path[600];
	uint8_t *raw;
	size_t len;
	struct store *st;
	int ret;

	t_rm_rf(dir);
	mkdir(dir, 0700);
	assert_int_equal(store_create(dir, NULL), 0);
	sb_path(path, sizeof(path), dir);
	raw = t_read_file(path, &len);
	edit(raw, &len);
	if (fix_sum && len >= 64)
		fmt_put64(raw + 56, XXH3_64bits(raw, 56));
	t_write_file(path, raw, len);
	free(raw);
	ret = store_open(dir, flags, &st);
	if (!ret)
		store_close(st);
	return ret;
}

static void e_truncate(uint8_t *sb, size_t *len)
{
	(void)sb;
	*len = 40;
}
static void e_empty(uint8_t *sb, size_t *len)
{
	(void)sb;
	*len = 0;
}
static void e_flip(uint8_t *sb, size_t *len)
{
	(void)len;
	sb[30] ^= 0x10;
}
static void e_magic(uint8_t *sb, size_t *len)
{
	(void)len;
	sb[0] = 'X';
}
static void e_major(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put16(sb + 8, FMT_VERSION_MAJOR + 1);
}
static void e_minor(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put16(sb + 10, FMT_VERSION_MINOR + 1);
}
static void e_incompat(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put32(sb + 12, 0x80);
}
static void e_ro_compat(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put32(sb + 16, 0x4);
}
static void e_compat(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put32(sb + 20, 0x4);
}
static void e_chunk(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put32(sb + 24, 5000);
}
static void e_links(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put32(sb + 16, FMT_SB_RO_COMPAT_LINKS);
}
static void e_links_unknown(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put32(sb + 16, FMT_SB_RO_COMPAT_LINKS | 0x2);
}
static void e_old_minor(uint8_t *sb, size_t *len)
{
	(void)len;
	fmt_put16(sb + 10, 1); /* what a 1.1 faissfs wrote */
}
static void e_nothing(uint8_t *sb, size_t *len)
{
	(void)sb;
	(void)len;
}

static void test_damaged(void **state)
{
	(void)state;
	assert_int_equal(open_edited(e_nothing, false, 0), 0);
	assert_int_equal(open_edited(e_truncate, false, 0), -EUCLEAN);
	assert_int_equal(open_edited(e_empty, false, 0), -EUCLEAN);
	assert_int_equal(open_edited(e_flip, false, 0), -EUCLEAN);
	assert_int_equal(open_edited(e_magic, true, 0), -EUCLEAN);
	assert_int_equal(open_edited(e_chunk, true, 0), -EUCLEAN);
	/* newer major: refused even with a checksum we cannot verify */
	assert_int_equal(open_edited(e_major, false, 0), -EPROTONOSUPPORT);
	assert_int_equal(open_edited(e_major, true, 0), -EPROTONOSUPPORT);
	assert_int_equal(open_edited(e_minor, true, 0), 0);
	assert_int_equal(open_edited(e_incompat, true, 0), -EPROTONOSUPPORT);
	assert_int_equal(open_edited(e_incompat, true, STORE_RDONLY), -EPROTONOSUPPORT);
	assert_int_equal(open_edited(e_ro_compat, true, 0), -EPROTONOSUPPORT);
	assert_int_equal(open_edited(e_ro_compat, true, STORE_RDONLY), 0);
	assert_int_equal(open_edited(e_compat, true, 0), 0);
}

/* A read-only open writes nothing: it works on a store whose files are all
 * read-only and whose tmp/ is missing. */
static void test_rdonly_writes_nothing(void **state)
{
	char path[600];
	struct store *st;

	(void)state;
	assert_int_equal(store_create(dir, NULL), 0);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp", dir);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/.faissfs", dir);
	chmod(path, 0555);
	assert_int_equal(store_open(dir, STORE_RDONLY, &st), 0);
	assert_int_equal(store_tmp_fd(st), -1);
	store_close(st);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/.faissfs", dir);
	chmod(path, 0755);
}

/* A read-write open removes temp objects older than a day, and only those. */
static void test_stale_tmp(void **state)
{
	char path[600];
	struct store *st;
	struct timespec old[2] = {{.tv_sec = time(NULL) - 3 * 86400},
				  {.tv_sec = time(NULL) - 3 * 86400}};

	(void)state;
	assert_int_equal(store_create(dir, NULL), 0);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp/obj.old", dir);
	assert_int_equal(t_write_file(path, "x", 1), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp/obj.new", dir);
	assert_int_equal(t_write_file(path, "x", 1), 0);
	assert_int_equal(store_open(dir, STORE_RDONLY, &st), 0);
	store_close(st);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp/obj.old", dir);
	assert_int_equal(access(path, F_OK), 0); /* read-only: untouched */
	assert_int_equal(store_open(dir, 0, &st), 0);
	store_close(st);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp/obj.new", dir);
	assert_int_equal(access(path, F_OK), 0);
}

/* On a read-only filesystem (a read-only bind mount, when we may mount): a
 * read-only open works, a read-write one reports EROFS. */
static void test_rdonly_filesystem(void **state)
{
	char mnt[600], path[700];
	struct store *st;
	int ret, ret_rw;

	(void)state;
	assert_int_equal(store_create(dir, NULL), 0);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp", dir);
	assert_int_equal(rmdir(path), 0);
	snprintf(mnt, sizeof(mnt), "%s.ro", dir);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount(dir, mnt, NULL, MS_BIND, NULL) != 0) {
		rmdir(mnt);
		skip();
	}
	if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) {
		umount2(mnt, MNT_DETACH);
		rmdir(mnt);
		skip();
	}
	ret = store_open(mnt, STORE_RDONLY, &st);
	if (!ret)
		store_close(st);
	ret_rw = store_open(mnt, 0, &st);
	if (!ret_rw)
		store_close(st);
	assert_int_equal(umount2(mnt, 0) == 0 || umount2(mnt, MNT_DETACH) == 0, 1);
	rmdir(mnt);
	assert_int_equal(ret, 0);
	assert_int_equal(ret_rw, -EROFS);
}

static void *links_thread(void *arg)
{
	return (void *)(intptr_t)store_feature_links(arg);
}

/* The bit: an old-style store (1.1, no bit) opens and gets it; the superblock
 * keeps its other fields, says 1.2 and its checksum holds; a second call and
 * calls from many threads at once change nothing more and leave no temp file; a
 * store with the bit opens read-write; unknown ro_compat bits beside it do not. */
static void test_feature_links(void **state)
{
	uint8_t *before, *after;
	size_t blen, alen;
	char sbp[600], meta[600];
	struct store *st, *ro;
	pthread_t th[8];
	struct stat sb;
	DIR *d;
	struct dirent *de;

	(void)state;
	assert_int_equal(open_edited(e_old_minor, true, 0), 0);
	sb_path(sbp, sizeof(sbp), dir);
	before = t_read_file(sbp, &blen);
	assert_int_equal(blen, 64);
	assert_int_equal(store_open(dir, 0, &st), 0);
	assert_false(store_has_links(st));
	assert_int_equal(store_open(dir, STORE_RDONLY, &ro), 0);
	assert_int_equal(store_feature_links(ro), -EROFS);
	assert_int_equal(store_feature_links(st), 0);
	assert_true(store_has_links(st));
	after = t_read_file(sbp, &alen);
	assert_int_equal(alen, 64);
	assert_int_equal(fmt_get32(after + 16), FMT_SB_RO_COMPAT_LINKS);
	assert_int_equal(fmt_get16(after + 10), 2);
	assert_int_equal(fmt_get64(after + 56), XXH3_64bits(after, 56));
	assert_memory_equal(before, after, 10);		  /* magic, major */
	assert_memory_equal(before + 12, after + 12, 4);  /* incompat */
	assert_memory_equal(before + 20, after + 20, 36); /* compat .. created */
	/* a store opened before the bit was set learns it from the disk */
	assert_false(store_has_links(ro));
	store_close(ro);
	assert_int_equal(stat(sbp, &sb), 0);
	assert_int_equal(store_feature_links(st), 0); /* idempotent: not rewritten */
	{
		struct stat sb2;

		assert_int_equal(stat(sbp, &sb2), 0);
		assert_int_equal(sb.st_ino, sb2.st_ino);
	}
	store_close(st);

	/* many threads at once on a store without the bit */
	assert_int_equal(open_edited(e_nothing, false, 0), 0);
	assert_int_equal(store_open(dir, 0, &st), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, links_thread, st), 0);
	for (int i = 0; i < 8; i++) {
		void *ret;

		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_int_equal((intptr_t)ret, 0);
	}
	store_close(st);
	free(after);
	after = t_read_file(sbp, &alen);
	assert_int_equal(alen, 64);
	assert_int_equal(fmt_get32(after + 16), FMT_SB_RO_COMPAT_LINKS);
	assert_int_equal(fmt_get64(after + 56), XXH3_64bits(after, 56));
	snprintf(meta, sizeof(meta), "%s/%s", dir, FMT_META_DIR);
	d = opendir(meta);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "superblock.", 11) == 0)
			fail_msg("temp file %s left behind", de->d_name);
	closedir(d);
	assert_int_equal(store_open(dir, 0, &st), 0);
	assert_true(store_has_links(st));
	store_close(st);

	/* a store with the bit opens read-write; another unknown bit does not */
	assert_int_equal(open_edited(e_links, true, 0), 0);
	assert_int_equal(open_edited(e_links_unknown, true, 0), -EPROTONOSUPPORT);
	assert_int_equal(open_edited(e_links_unknown, true, STORE_RDONLY), 0);
	free(before);
	free(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rdonly_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rdonly_filesystem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_feature_links, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
