/* test_dcache.c - the disk cache of frames: round trip, misses, the budget with
 * least-recently-used order, a restart finds entries and their order, damaged
 * entries (flipped byte, truncated, bad magic) never served and removed, budget 0,
 * an unwritable directory, and 8 threads at once (also run under TSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "remote/dcache.h"

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	(void)sb;
	(void)f;
	(void)w;
	return remove(p);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/ffs-dcache.XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

/* Waits for the start-up scan (its files count settles). */
static void settle(void)
{
	struct timespec ts = {0, 100 * 1000000L};

	nanosleep(&ts, NULL);
}

static void entry_path(const char *dir, const char *key, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%02x/%s", dir, (unsigned)(XXH3_64bits(key, strlen(key)) & 0xff),
		 key);
}

static void test_round_trip(void **state)
{
	char *d = tmpdir();
	struct remote_dcache *c;
	struct remote_dcache_stats st;
	uint8_t in[5000], out[5000];

	(void)state;
	fill(in, sizeof(in), 1);
	assert_int_equal(remote_dcache_open(d, 1 << 20, &c), 0);
	assert_int_equal(remote_dcache_get(c, "abc.0", out, sizeof(out)), -ENOENT);
	assert_int_equal(remote_dcache_put(c, "abc.0", in, sizeof(in)), 0);
	assert_int_equal(remote_dcache_get(c, "abc.0", out, sizeof(out)), sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(remote_dcache_get(c, "abc.0", out, 100), -ENOBUFS);
	remote_dcache_drop(c, "abc.0");
	assert_int_equal(remote_dcache_get(c, "abc.0", out, sizeof(out)), -ENOENT);
	assert_int_equal(remote_dcache_get(c, "../etc", out, sizeof(out)), -ENOENT);
	remote_dcache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.puts, 1);
	assert_int_equal(st.files, 0);
	remote_dcache_close(c);
	nftw(d, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static void test_budget_lru_and_restart(void **state)
{
	char *d = tmpdir(), key[32];
	struct remote_dcache *c;
	struct remote_dcache_stats st;
	uint8_t buf[10000], out[10000];

	(void)state;
	fill(buf, sizeof(buf), 2);
	/* 10 entries of ~10 KB fit in 105 KB; the 11th evicts down to 90 %. */
	assert_int_equal(remote_dcache_open(d, 105000, &c), 0);
	settle();
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k.%d", i);
		assert_int_equal(remote_dcache_put(c, key, buf, sizeof(buf)), 0);
	}
	/* k.0 used last: it must survive eviction. */
	assert_int_equal(remote_dcache_get(c, "k.0", out, sizeof(out)), sizeof(buf));
	assert_int_equal(remote_dcache_put(c, "k.10", buf, sizeof(buf)), 0);
	remote_dcache_stats(c, &st);
	assert_true(st.bytes <= 105000);
	assert_true(st.evictions >= 2);
	assert_int_equal(remote_dcache_get(c, "k.0", out, sizeof(out)), sizeof(buf));
	assert_int_equal(remote_dcache_get(c, "k.1", out, sizeof(out)), -ENOENT);
	assert_int_equal(remote_dcache_get(c, "k.10", out, sizeof(out)), sizeof(buf));
	remote_dcache_close(c);

	/* A restart finds the entries; a smaller budget evicts the oldest. */
	assert_int_equal(remote_dcache_open(d, 1 << 20, &c), 0);
	settle();
	remote_dcache_stats(c, &st);
	assert_true(st.files >= 8);
	assert_int_equal(remote_dcache_get(c, "k.10", out, sizeof(out)), sizeof(buf));
	assert_memory_equal(buf, out, sizeof(buf));
	remote_dcache_close(c);
	assert_int_equal(remote_dcache_open(d, 25000, &c), 0);
	settle();
	remote_dcache_stats(c, &st);
	assert_true(st.bytes <= 25000);
	assert_int_equal(remote_dcache_get(c, "k.10", out, sizeof(out)), sizeof(buf));
	remote_dcache_close(c);
	nftw(d, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static void damage(const char *path, int how)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	if (how == 0) { /* flip a payload byte */
		assert_int_equal(pread(fd, &b, 1, 40), 1);
		b ^= 1;
		assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	} else if (how == 1) {
		assert_int_equal(ftruncate(fd, 100), 0);
	} else {
		assert_int_equal(pwrite(fd, "XXXX", 4, 0), 4);
	}
	close(fd);
}

static void test_damaged_never_served(void **state)
{
	char *d = tmpdir(), path[512];
	struct remote_dcache *c;
	struct remote_dcache_stats st;
	uint8_t in[4000], out[4000];

	(void)state;
	fill(in, sizeof(in), 3);
	assert_int_equal(remote_dcache_open(d, 1 << 20, &c), 0);
	for (int how = 0; how < 3; how++) {
		assert_int_equal(remote_dcache_put(c, "dmg", in, sizeof(in)), 0);
		entry_path(d, "dmg", path, sizeof(path));
		damage(path, how);
		assert_int_equal(remote_dcache_get(c, "dmg", out, sizeof(out)), -ENOENT);
		assert_int_equal(access(path, F_OK), -1); /* removed */
	}
	remote_dcache_stats(c, &st);
	assert_int_equal(st.damaged, 3);
	remote_dcache_close(c);
	nftw(d, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static void test_budget_zero_and_bad_dir(void **state)
{
	struct remote_dcache *c;
	uint8_t b[10];

	(void)state;
	assert_int_equal(remote_dcache_open("/nonexistent/dir/x", 0, &c), 0);
	assert_int_equal(remote_dcache_put(c, "a", b, sizeof(b)), 0);
	assert_int_equal(remote_dcache_get(c, "a", b, sizeof(b)), -ENOENT);
	remote_dcache_close(c);
	assert_int_equal(remote_dcache_open("/proc/version/x", 1 << 20, &c), -ENOTDIR);
}

struct thr {
	struct remote_dcache *c;
	unsigned id;
	int bad;
};

static void *worker(void *arg)
{
	struct thr *t = arg;
	uint8_t buf[3000], out[3000], want[3000];
	char key[32];

	for (unsigned i = 0; i < 400; i++) {
		unsigned k = (i * 7 + t->id) % 50;

		snprintf(key, sizeof(key), "t.%u", k);
		fill(want, sizeof(want), k);
		ssize_t n = remote_dcache_get(t->c, key, out, sizeof(out));

		if (n >= 0 && (n != (ssize_t)sizeof(out) || memcmp(out, want, sizeof(out))))
			t->bad++;
		if (n < 0) {
			memcpy(buf, want, sizeof(buf));
			remote_dcache_put(t->c, key, buf, sizeof(buf));
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	char *d = tmpdir();
	struct remote_dcache *c;
	struct remote_dcache_stats st;
	pthread_t th[8];
	struct thr t[8];

	(void)state;
	assert_int_equal(remote_dcache_open(d, 60000, &c), 0);
	for (unsigned i = 0; i < 8; i++) {
		t[i] = (struct thr){.c = c, .id = i};
		pthread_create(&th[i], NULL, worker, &t[i]);
	}
	for (unsigned i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	remote_dcache_stats(c, &st);
	assert_true(st.bytes <= 60000);
	assert_true(st.hits > 0);
	remote_dcache_close(c);
	nftw(d, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_budget_lru_and_restart),
		cmocka_unit_test(test_damaged_never_served),
		cmocka_unit_test(test_budget_zero_and_bad_dir),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
