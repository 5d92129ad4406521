/* test_prefetch.c - cache_prefetch(): fills without pinning, never waits, the first get
 * of a prefetched entry is not a reuse (so read-ahead of a scan does not promote it), the
 * counters add up; and a concurrent storm of gets and prefetches (runs under TSan).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "cache/cache_internal.h"

#define LEN 4096u

struct filler {
	atomic_int calls;
	int err;
};

static uint8_t pattern(uint64_t chunk, size_t i)
{
	return (uint8_t)(chunk * 131 + i * 7 + (i >> 8));
}

struct fill_arg {
	struct filler *f;
	uint64_t chunk;
};

static int fill_pattern(void *arg, void *dst, size_t len)
{
	struct fill_arg *a = arg;

	atomic_fetch_add(&a->f->calls, 1);
	if (a->f->err)
		return a->f->err;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)dst)[i] = pattern(a->chunk, i);
	return 0;
}

static struct cache_key key(uint64_t chunk)
{
	struct cache_key k = {.obj = {0xabc, 0xdef}, .chunk = chunk};

	return k;
}

static int prefetch(struct cache *c, struct filler *f, uint64_t chunk)
{
	struct cache_key k = key(chunk);
	struct fill_arg a = {f, chunk};

	return cache_prefetch(c, &k, LEN, fill_pattern, &a);
}

/* Gets and puts @chunk, checking its bytes. */
static void get_put(struct cache *c, struct filler *f, uint64_t chunk)
{
	struct cache_key k = key(chunk);
	struct fill_arg a = {f, chunk};
	struct cache_entry *e = NULL;
	const uint8_t *p;

	assert_int_equal(cache_get(c, &k, LEN, fill_pattern, &a, &e), 0);
	p = cache_entry_data(e);
	for (size_t i = 0; i < LEN; i++)
		if (p[i] != pattern(chunk, i))
			fail_msg("chunk %llu byte %zu differs", (unsigned long long)chunk, i);
	cache_put(c, e);
}

static void test_prefetch_basic(void **state)
{
	struct filler f = {0};
	struct cache_stats cs;
	struct cache *c;

	(void)state;
	assert_int_equal(cache_new(16 * LEN, &c), 0);
	assert_int_equal(prefetch(c, &f, 1), 0);
	assert_int_equal(f.calls, 1);
	assert_int_equal(prefetch(c, &f, 1), -EEXIST); /* present: nothing done */
	assert_int_equal(f.calls, 1);
	get_put(c, &f, 1); /* served from the prefetched entry */
	assert_int_equal(f.calls, 1);
	get_put(c, &f, 1);
	cache_get_stats(c, &cs);
	assert_int_equal(cs.prefetches, 1);
	assert_int_equal(cs.prefetch_hits, 1); /* only the first get */
	assert_int_equal(cs.hits, 2);
	assert_int_equal(cs.misses, 0);
	assert_int_equal(cs.entries, 1);
	/* A failed prefetch caches nothing and the next get retries. */
	f.err = -EIO;
	assert_int_equal(prefetch(c, &f, 2), -EIO);
	f.err = 0;
	get_put(c, &f, 2);
	cache_get_stats(c, &cs);
	assert_int_equal(cs.fill_errors, 1);
	assert_int_equal(cs.misses, 1);
	/* Prefetched entries never got are counted when evicted; the budget holds. */
	for (uint64_t i = 100; i < 140; i++)
		assert_int_equal(prefetch(c, &f, i), 0);
	cache_get_stats(c, &cs);
	assert_true(cs.bytes <= 16 * LEN);
	assert_true(cs.prefetch_unused >= 40 - 16);
	cache_free(c);
}

/* A prefetch does not wait for, nor disturb, a fill in progress: a key pinned LOADING
 * by a get in this thread is simply reported present. */
static void test_prefetch_pinned(void **state)
{
	struct filler f = {0};
	struct cache_key k = key(7);
	struct fill_arg a = {&f, 7};
	struct cache_entry *e = NULL;
	struct cache *c;

	(void)state;
	assert_int_equal(cache_new(4 * LEN, &c), 0);
	assert_int_equal(cache_get(c, &k, LEN, fill_pattern, &a, &e), 0);
	assert_int_equal(prefetch(c, &f, 7), -EEXIST);
	/* Prefetching past the budget never evicts a pinned entry. */
	for (uint64_t i = 0; i < 20; i++)
		if (i != 7)
			assert_int_equal(prefetch(c, &f, i), 0);
	assert_int_equal(((const uint8_t *)cache_entry_data(e))[5], pattern(7, 5));
	cache_put(c, e);
	cache_free(c);
}

/* Segmented LRU: a scan read ahead by prefetch (each chunk then got 4 times in a row
 * by the reader, like 4 page-cache readahead requests per chunk) must not flush the
 * hot set, exactly as without prefetch. */
static void test_prefetch_scan_resistant(void **state)
{
	struct filler f = {0};
	struct cache *c;
	int before;

	(void)state;
	assert_int_equal(cache_new_policy(64 * LEN, &cache_policy_slru, &c), 0);
	for (int round = 0; round < 2; round++)
		for (uint64_t i = 0; i < 16; i++)
			get_put(c, &f, i);
	for (uint64_t i = 0; i < 1000; i++) {
		for (uint64_t j = 1; j <= 8; j++)
			(void)prefetch(c, &f, 1000 + i + j);
		for (int r = 0; r < 4; r++)
			get_put(c, &f, 1000 + i);
	}
	before = f.calls;
	for (uint64_t i = 0; i < 16; i++)
		get_put(c, &f, i);
	assert_int_equal(f.calls, before); /* every hot chunk survived */
	cache_free(c);
}

/* Storm: gets and prefetches of overlapping keys from several threads, some fills
 * failing; bytes are checked on every get and the counters must add up. */
struct storm {
	struct cache *c;
	atomic_uint fills, fill_errors, bad, get_errors;
	unsigned n;
};

struct sarg {
	struct storm *st;
	uint64_t chunk;
	uint64_t rng;
};

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static int storm_fill(void *arg, void *dst, size_t len)
{
	struct sarg *a = arg;

	atomic_fetch_add(&a->st->fills, 1);
	if (rng_next(&a->rng) % 97 == 0) {
		atomic_fetch_add(&a->st->fill_errors, 1);
		return -EIO;
	}
	for (size_t i = 0; i < len; i++)
		((uint8_t *)dst)[i] = pattern(a->chunk, i);
	return 0;
}

static void *storm_main(void *arg)
{
	struct sarg *me = arg;
	struct storm *st = me->st;

	for (unsigned n = 0; n < st->n; n++) {
		uint64_t r = rng_next(&me->rng);
		uint64_t chunk = (r >> 8) % 256;
		struct cache_key k = key(chunk);
		struct sarg a = {st, chunk, r | 1};
		struct cache_entry *e = NULL;
		int rc;

		if (r & 1) {
			/* A reader with a window of read-ahead, like fuse/readahead.c. */
			for (uint64_t j = 1; j <= 4; j++) {
				struct cache_key kk = key(chunk + j);
				struct sarg aa = {st, chunk + j, r + j};

				rc = cache_prefetch(st->c, &kk, LEN, storm_fill, &aa);
				if (rc != 0 && rc != -EEXIST && rc != -EIO)
					atomic_fetch_add(&st->bad, 1);
			}
		}
		rc = cache_get(st->c, &k, LEN, storm_fill, &a, &e);
		if (rc == -EIO) {
			atomic_fetch_add(&st->get_errors, 1);
			continue;
		}
		if (rc != 0) {
			atomic_fetch_add(&st->bad, 1);
			continue;
		}
		if (((const uint8_t *)cache_entry_data(e))[LEN - 1] != pattern(chunk, LEN - 1))
			atomic_fetch_add(&st->bad, 1);
		cache_put(st->c, e);
	}
	return NULL;
}

static void storm(const struct cache_policy_ops *ops)
{
	struct storm st = {.n = 20000};
	struct sarg a[4];
	pthread_t t[4];
	struct cache_stats cs;

	assert_int_equal(cache_new_policy(32 * LEN, ops, &st.c), 0);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct sarg){&st, 0, 0x9876543ULL * (i + 1)};
		assert_int_equal(pthread_create(&t[i], NULL, storm_main, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cache_get_stats(st.c, &cs);
	assert_int_equal(st.bad, 0);
	assert_int_equal(cs.misses + cs.prefetches, st.fills);
	assert_int_equal(cs.fill_errors, st.fill_errors);
	assert_true(cs.prefetch_hits <= cs.prefetches);
	assert_true(cs.bytes <= 32 * LEN);
	cache_free(st.c);
}

static void test_prefetch_storm_lru(void **state)
{
	(void)state;
	storm(&cache_policy_lru);
}

static void test_prefetch_storm_slru(void **state)
{
	(void)state;
	storm(&cache_policy_slru);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefetch_basic),
		cmocka_unit_test(test_prefetch_pinned),
		cmocka_unit_test(test_prefetch_scan_resistant),
		cmocka_unit_test(test_prefetch_storm_lru),
		cmocka_unit_test(test_prefetch_storm_slru),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
