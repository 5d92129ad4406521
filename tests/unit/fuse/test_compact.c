/* test_compact.c - the compactor (fuse/compact.c) offline, on a real store with
 * 4 KiB chunks so that one file makes many batches.
 *
 * One file compacted on 1 and on 3 workers gives the same object (chunks appended
 * in order whoever encoded them); many files at once on 2 workers; a previous
 * version kept as tmp/prev.<xxh3 of the path> (as a restarted daemon finds it)
 * lends its unchanged chunks and is removed after; the scan removes another
 * process's unpack files and a dead writer's old objects, and keeps fresh
 * previous versions.  Run under TSan by
 * scripts/test.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "store/store.h"
#include "util/log.h"
#include "write.h"
#include "tests/unit/store/store_test.h"

#define CS	 4096u
#define FILE_LEN (300u * CS + 123u) /* 301 chunks, the last one short */

struct fx {
	char dir[64];
	struct store *st;
};

/* @len bytes, compressible, different for each @seed. */
static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((i / 64) * seed + (i % 7 == 0 ? i : 0));
	return buf;
}

static void write_file(struct fx *fx, const char *name, const uint8_t *buf, size_t len)
{
	int fd = openat(store_root_fd(fx->st), name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* Compacts the whole store on @threads workers; gives the stats. */
static void compact(struct fx *fx, unsigned threads, struct mnt_cmp_stats *s)
{
	struct mnt_cmp *c = NULL;

	assert_int_equal(mnt_cmp_new(fx->st, NULL, threads, 0, &c), 0);
	mnt_cmp_scan(c);
	mnt_cmp_drain(c);
	mnt_cmp_get_stats(c, s);
	mnt_cmp_free(c);
}

/* Checks that @name is an object holding @want; gives its content id. */
static void check_object(struct fx *fx, const char *name, const uint8_t *want, size_t len,
			 uint64_t id[2])
{
	struct store_object *o = NULL;
	struct store_dctx *dc = store_dctx_new();
	uint8_t *got = malloc(len + 1);

	assert_non_null(got);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), name, name, &o), 0);
	assert_int_equal(store_object_info(o)->size, len);
	assert_int_equal(store_object_pread(o, dc, got, len + 1, 0), (ssize_t)len);
	assert_memory_equal(got, want, len);
	if (id)
		store_object_id(o, id);
	store_object_free(o);
	store_dctx_free(dc);
	free(got);
}

static void prev_name(const char *relpath, char *buf, size_t size)
{
	snprintf(buf, size, "prev.%016llx",
		 (unsigned long long)XXH3_64bits(relpath, strlen(relpath)));
}

static bool tmp_has(struct fx *fx, const char *name)
{
	struct stat st;

	return fstatat(store_tmp_fd(fx->st), name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Creates tmp/@name, last modified @age seconds ago. */
static void tmp_file(struct fx *fx, const char *name, time_t age)
{
	struct timespec ts[2];
	int fd = openat(store_tmp_fd(fx->st), name, O_WRONLY | O_CREAT, 0600);

	assert_true(fd >= 0);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age;
	ts[1] = ts[0];
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_params p;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_compact.XXXXXX");
	if (!fx || !mkdtemp(fx->dir))
		return -1;
	store_params_default(&p);
	p.chunk_size = CS;
	if (store_create(fx->dir, &p) || store_open(fx->dir, 0, &fx->st))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	store_close(fx->st);
	t_rm_rf(fx->dir);
	free(fx);
	return 0;
}

static void test_same_object_any_threads(void **state)
{
	struct fx *fx = *state;
	uint8_t *data = pattern(FILE_LEN, 3);
	struct mnt_cmp_stats s;
	uint64_t id1[2], id3[2];

	write_file(fx, "f", data, FILE_LEN);
	compact(fx, 1, &s);
	assert_int_equal(s.compacted, 1);
	assert_int_equal(s.chunks_encoded, 301);
	check_object(fx, "f", data, FILE_LEN, id1);

	write_file(fx, "f", data, FILE_LEN);
	compact(fx, 3, &s);
	assert_int_equal(s.compacted, 1);
	assert_int_equal(s.failed, 0);
	check_object(fx, "f", data, FILE_LEN, id3);
	assert_memory_equal(id1, id3, sizeof(id1));
	free(data);
}

static void test_many_files(void **state)
{
	struct fx *fx = *state;
	uint8_t *data[6];
	struct mnt_cmp_stats s;
	char name[16];

	for (unsigned i = 0; i < 6; i++) {
		data[i] = pattern(FILE_LEN - i * 1000, i + 5);
		snprintf(name, sizeof(name), "f%u", i);
		write_file(fx, name, data[i], FILE_LEN - i * 1000);
	}
	compact(fx, 2, &s);
	assert_int_equal(s.compacted, 6);
	assert_int_equal(s.failed, 0);
	for (unsigned i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		check_object(fx, name, data[i], FILE_LEN - i * 1000, NULL);
		free(data[i]);
	}
}

static void test_prev_reused(void **state)
{
	struct fx *fx = *state;
	uint8_t *v1 = pattern(FILE_LEN, 7), *v2 = malloc(FILE_LEN);
	struct mnt_cmp_stats s;
	char pname[32];

	assert_non_null(v2);
	memcpy(v2, v1, FILE_LEN);
	memset(v2 + 10 * CS + 5, 0xAB, 2 * CS); /* chunks 10, 11, 12 change */
	assert_int_equal(mkdirat(store_root_fd(fx->st), "t", 0755), 0);
	write_file(fx, "t/index", v1, FILE_LEN);
	compact(fx, 2, &s);
	check_object(fx, "t/index", v1, FILE_LEN, NULL);

	/* What a re-save through the mount leaves, as found after a restart. */
	prev_name("t/index", pname, sizeof(pname));
	assert_int_equal(linkat(store_root_fd(fx->st), "t/index", store_tmp_fd(fx->st), pname, 0),
			 0);
	write_file(fx, "t/index.new", v2, FILE_LEN); /* not over the link: a new inode */
	assert_int_equal(
		renameat(store_root_fd(fx->st), "t/index.new", store_root_fd(fx->st), "t/index"),
		0);
	compact(fx, 2, &s);
	assert_int_equal(s.compacted, 1);
	assert_int_equal(s.chunks_encoded, 3);
	assert_int_equal(s.chunks_reused, 298);
	check_object(fx, "t/index", v2, FILE_LEN, NULL);
	assert_false(tmp_has(fx, pname));
	free(v1);
	free(v2);
}

static void test_sweep(void **state)
{
	struct fx *fx = *state;
	uint8_t *data = pattern(FILE_LEN, 9);
	struct mnt_cmp_stats s;
	char pname[32], own[64], ownobj[64];

	/* An unpack file of a daemon that is gone, one of ours, a fresh prev of a path
	 * that does not exist (kept: it is young); objects of a dead writer (PID
	 * 999999999 is above any pid_max), old (removed) and recent (kept), and an old
	 * one of ours (kept). */
	tmp_file(fx, "unpack.999999999.3", 0);
	snprintf(own, sizeof(own), "unpack.%d.1", (int)getpid());
	tmp_file(fx, own, 0);
	tmp_file(fx, "obj.999999999.1.abc", 120);
	tmp_file(fx, "obj.999999999.2.abc", 0);
	snprintf(ownobj, sizeof(ownobj), "obj.%d.1.abc", (int)getpid());
	tmp_file(fx, ownobj, 120);
	write_file(fx, "f", data, FILE_LEN);
	compact(fx, 1, &s); /* makes f an object */
	prev_name("gone", pname, sizeof(pname));
	assert_int_equal(linkat(store_root_fd(fx->st), "f", store_tmp_fd(fx->st), pname, 0), 0);
	compact(fx, 2, &s);
	assert_false(tmp_has(fx, "unpack.999999999.3"));
	assert_true(tmp_has(fx, own));
	assert_false(tmp_has(fx, "obj.999999999.1.abc"));
	assert_true(tmp_has(fx, "obj.999999999.2.abc"));
	assert_true(tmp_has(fx, ownobj));
	assert_true(tmp_has(fx, pname));
	/* A path found to be an object already drops its prev. */
	prev_name("f", pname, sizeof(pname));
	assert_int_equal(linkat(store_root_fd(fx->st), "f", store_tmp_fd(fx->st), pname, 0), 0);
	compact(fx, 2, &s);
	assert_false(tmp_has(fx, pname));
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_object_any_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prev_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
