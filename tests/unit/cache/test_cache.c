/* test_cache.c - unit tests of the chunk cache: budget, LRU order, pins,
 * single-flight fills, fill errors, set_budget and exact statistics.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "cache/cache_internal.h"

#define LEN 4096u

/* test_enomem asks for impossible sizes: the sanitizers must return NULL, not abort. */
const char *__asan_default_options(void);
const char *__tsan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
const char *__tsan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* Fill state: counts calls, can sleep, can fail. */
struct filler {
	uint64_t chunk;	  /* the key's chunk, the seed of the bytes */
	atomic_int calls; /* fill calls so far */
	int sleep_ms;	  /* sleep inside fill, to make others wait */
	int err;	  /* returned instead of filling, if nonzero */
};

static uint8_t pattern(uint64_t chunk, size_t i)
{
	return (uint8_t)(chunk * 131 + i * 7 + (i >> 8));
}

static int fill_pattern(void *arg, void *dst, size_t len)
{
	struct filler *f = arg;

	atomic_fetch_add(&f->calls, 1);
	if (f->sleep_ms > 0) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = f->sleep_ms * 1000000L};

		nanosleep(&ts, NULL);
	}
	if (f->err)
		return f->err;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)dst)[i] = pattern(f->chunk, i);
	return 0;
}

static struct cache_key key(uint64_t chunk)
{
	struct cache_key k = {.obj = {0x1234, 0x5678}, .chunk = chunk};

	return k;
}

static void check_bytes(struct cache_entry *e, uint64_t chunk, size_t len)
{
	const uint8_t *p = cache_entry_data(e);

	assert_int_equal(cache_entry_len(e), len);
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern(chunk, i))
			fail_msg("chunk %llu byte %zu differs", (unsigned long long)chunk, i);
}

/* Gets @chunk (LEN bytes) and returns the number of fill calls it made (0 or 1). */
static int touch(struct cache *c, uint64_t chunk)
{
	struct filler f = {.chunk = chunk};
	struct cache_key k = key(chunk);
	struct cache_entry *e = NULL;

	assert_int_equal(cache_get(c, &k, LEN, fill_pattern, &f, &e), 0);
	check_bytes(e, chunk, LEN);
	cache_put(c, e);
	return atomic_load(&f.calls);
}

static struct cache_stats stats(struct cache *c)
{
	struct cache_stats st;

	cache_get_stats(c, &st);
	return st;
}

static void test_new_invalid(void **state)
{
	struct cache *c = (struct cache *)0x1;

	(void)state;
	assert_int_equal(cache_new(0, &c), -EINVAL);
	assert_ptr_equal(c, (struct cache *)0x1); /* out untouched on failure */
	cache_free(NULL);
}

/* Budget of 10 values: 1000 inserts keep at most 10, evicting 990. */
static void test_budget_many_inserts(void **state)
{
	struct cache *c = NULL;

	(void)state;
	assert_int_equal(cache_new_policy(10 * LEN, &cache_policy_lru, &c), 0);
	for (uint64_t i = 0; i < 1000; i++) {
		assert_int_equal(touch(c, i), 1);
		assert_true(stats(c).bytes <= 10 * LEN);
	}
	struct cache_stats st = stats(c);

	assert_int_equal(st.entries, 10);
	assert_int_equal(st.bytes, 10 * LEN);
	assert_int_equal(st.evictions, 990);
	assert_int_equal(st.misses, 1000);
	/* The last ten are the ones kept. */
	for (uint64_t i = 990; i < 1000; i++)
		assert_int_equal(touch(c, i), 0);
	cache_free(c);
}

/* Least recently used goes first; a hit refreshes an entry. */
static void test_lru_order(void **state)
{
	struct cache *c = NULL;

	(void)state;
	assert_int_equal(cache_new_policy(4 * LEN, &cache_policy_lru, &c), 0);
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(touch(c, i), 1);
	assert_int_equal(touch(c, 0), 0); /* 0 is now the most recent; 1 the least */
	assert_int_equal(touch(c, 4), 1); /* evicts 1 */
	assert_int_equal(stats(c).evictions, 1);
	assert_int_equal(touch(c, 0), 0);
	assert_int_equal(touch(c, 2), 0);
	assert_int_equal(touch(c, 3), 0);
	assert_int_equal(touch(c, 4), 0);
	/* Order now, least recent first: 0 2 3 4.  Getting 1 again evicts 0. */
	assert_int_equal(touch(c, 1), 1);
	assert_int_equal(stats(c).evictions, 2);
	assert_int_equal(touch(c, 2), 0);
	assert_int_equal(touch(c, 0), 1);
	cache_free(c);
}

/* Pinned entries are never evicted: with all of them held the cache exceeds its
 * budget, and falls back within it as they are put back. */
static void test_pinned_survive(void **state)
{
	struct cache *c = NULL;
	struct cache_entry *held[8];
	struct filler f[8];

	(void)state;
	assert_int_equal(cache_new_policy(4 * LEN, &cache_policy_lru, &c), 0);
	for (uint64_t i = 0; i < 8; i++) {
		struct cache_key k = key(i);

		f[i] = (struct filler){.chunk = i};
		assert_int_equal(cache_get(c, &k, LEN, fill_pattern, &f[i], &held[i]), 0);
	}
	struct cache_stats st = stats(c);

	assert_int_equal(st.entries, 8);
	assert_int_equal(st.bytes, 8 * LEN);
	assert_int_equal(st.evictions, 0);
	/* Pressure from unpinned inserts evicts only those. */
	for (uint64_t i = 100; i < 120; i++)
		assert_int_equal(touch(c, i), 1);
	assert_int_equal(stats(c).bytes, 8 * LEN);
	for (int i = 0; i < 8; i++)
		check_bytes(held[i], i, LEN);
	/* Putting back shrinks to the budget: held 8 -> 4 pinned, then 4 unpinned. */
	for (int i = 0; i < 8; i++) {
		cache_put(c, held[i]);
		st = stats(c);
		if (i < 4)
			assert_int_equal(st.bytes, (size_t)(8 - i - 1) * LEN);
		else
			assert_int_equal(st.bytes, 4 * LEN);
	}
	/* The last four put back are kept, the first four were evicted. */
	for (uint64_t i = 4; i < 8; i++)
		assert_int_equal(touch(c, i), 0);
	cache_free(c);
}

/* One value bigger than the whole budget: held while pinned, gone after put. */
static void test_oversized(void **state)
{
	struct cache *c = NULL;
	struct cache_entry *e = NULL;
	struct filler f = {.chunk = 9};
	struct cache_key k = key(9);

	(void)state;
	assert_int_equal(cache_new_policy(LEN, &cache_policy_lru, &c), 0);
	assert_int_equal(cache_get(c, &k, 4 * LEN, fill_pattern, &f, &e), 0);
	check_bytes(e, 9, 4 * LEN);
	assert_int_equal(stats(c).bytes, 4 * LEN);
	cache_put(c, e);
	assert_int_equal(stats(c).bytes, 0);
	assert_int_equal(stats(c).entries, 0);
	cache_free(c);
}

struct racer {
	struct cache *c;
	struct filler *f;
	pthread_barrier_t *start;
	int rc;
	struct cache_entry *e;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct cache_key k = key(r->f->chunk);

	pthread_barrier_wait(r->start);
	r->rc = cache_get(r->c, &k, LEN, fill_pattern, r->f, &r->e);
	return NULL;
}

/* Runs @n threads getting the same key at once with filler @f. */
static void race(struct cache *c, struct filler *f, int n, struct racer *r)
{
	pthread_t t[16];
	pthread_barrier_t start;

	assert_true(n <= 16);
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		r[i] = (struct racer){.c = c, .f = f, .start = &start};
		assert_int_equal(pthread_create(&t[i], NULL, racer_main, &r[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
}

static void test_single_flight(void **state)
{
	struct cache *c = NULL;
	struct filler f = {.chunk = 77, .sleep_ms = 100};
	struct racer r[8];

	(void)state;
	assert_int_equal(cache_new_policy(64 * LEN, &cache_policy_lru, &c), 0);
	race(c, &f, 8, r);
	assert_int_equal(atomic_load(&f.calls), 1);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(r[i].rc, 0);
		assert_ptr_equal(r[i].e, r[0].e);
		check_bytes(r[i].e, 77, LEN);
	}
	struct cache_stats st = stats(c);

	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 7);
	assert_int_equal(st.entries, 1);
	for (int i = 0; i < 8; i++)
		cache_put(c, r[i].e);
	assert_int_equal(touch(c, 77), 0);
	cache_free(c);
}

static void test_fill_error(void **state)
{
	struct cache *c = NULL;
	struct filler f = {.chunk = 5, .sleep_ms = 100, .err = -EIO};
	struct racer r[8];

	(void)state;
	assert_int_equal(cache_new_policy(64 * LEN, &cache_policy_lru, &c), 0);
	race(c, &f, 8, r);
	assert_int_equal(atomic_load(&f.calls), 1);
	for (int i = 0; i < 8; i++)
		assert_int_equal(r[i].rc, -EIO);
	struct cache_stats st = stats(c);

	assert_int_equal(st.fill_errors, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	/* Not cached: the next get fills again, and succeeds. */
	assert_int_equal(touch(c, 5), 1);
	assert_int_equal(stats(c).entries, 1);
	cache_free(c);
}

static void test_set_budget(void **state)
{
	struct cache *c = NULL;

	(void)state;
	assert_int_equal(cache_new_policy(10 * LEN, &cache_policy_lru, &c), 0);
	for (uint64_t i = 0; i < 10; i++)
		touch(c, i);
	assert_int_equal(stats(c).entries, 10);
	cache_set_budget(c, 3 * LEN + LEN / 2);
	struct cache_stats st = stats(c);

	assert_int_equal(st.budget, 3 * LEN + LEN / 2);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.bytes, 3 * LEN);
	assert_int_equal(st.evictions, 7);
	for (uint64_t i = 7; i < 10; i++)
		assert_int_equal(touch(c, i), 0);
	/* Growing evicts nothing and lets more in. */
	cache_set_budget(c, 20 * LEN);
	for (uint64_t i = 0; i < 7; i++)
		assert_int_equal(touch(c, i), 1);
	assert_int_equal(stats(c).entries, 10);
	/* Zero keeps nothing that is not pinned. */
	cache_set_budget(c, 0);
	assert_int_equal(stats(c).entries, 0);
	cache_free(c);
}

/* Gets @chunk with a value of @len bytes, checks it, puts it back. */
static void touch_len(struct cache *c, uint64_t chunk, size_t len)
{
	struct filler f = {.chunk = chunk};
	struct cache_key k = key(chunk);
	struct cache_entry *e = NULL;

	assert_int_equal(cache_get(c, &k, len, fill_pattern, &f, &e), 0);
	check_bytes(e, chunk, len);
	cache_put(c, e);
}

/* Mapped entries evicted by a full cache are reused by the next inserts of their size
 * (no fresh mapping per insert), hold the new values, and are unmapped when the
 * budget is lowered. */
static void test_recycle(void **state)
{
	const size_t big = 256u * 1024;
	struct cache *c = NULL;
	struct cache_stats st;

	(void)state;
	assert_int_equal(cache_new_policy(4 * big, &cache_policy_lru, &c), 0);
	for (uint64_t i = 0; i < 20; i++)
		touch_len(c, i, big);
	st = stats(c);
	assert_int_equal(st.evictions, 16);
	/* Insert i allocates before it evicts: the 5th evicts first, the 6th reuses. */
	assert_int_equal(st.recycled, 15);
	assert_int_equal(st.entries, 4);
	/* Small values are malloc'ed, never kept. */
	touch_len(c, 100, LEN);
	assert_int_equal(stats(c).recycled, 15);
	/* Lowering the budget drops the spares: the next insert maps fresh memory. */
	cache_set_budget(c, big);
	touch_len(c, 101, big);
	assert_int_equal(stats(c).recycled, 15);
	touch_len(c, 102, big); /* maps fresh, then evicts 101 into the spares */
	assert_int_equal(stats(c).recycled, 15);
	touch_len(c, 103, big); /* reuses 101's */
	assert_int_equal(stats(c).recycled, 16);
	cache_free(c);
}

/* cache_put_drop() takes the entry out at once, into the spares when it is mapped, but
 * not while someone else holds it: that one's cache_put() keeps it as usual. */
static void test_put_drop(void **state)
{
	const size_t big = 256u * 1024;
	struct cache *c = NULL;
	struct cache_entry *e1 = NULL, *e2 = NULL;
	struct filler f = {.chunk = 7};
	struct cache_key k = key(7);
	struct cache_stats st;

	(void)state;
	assert_int_equal(cache_new_policy(16 * big, &cache_policy_lru, &c), 0);
	assert_int_equal(cache_get(c, &k, big, fill_pattern, &f, &e1), 0);
	cache_put_drop(c, e1);
	st = stats(c);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.evictions, 0);
	/* Gone: the next get fills again, into the dropped entry's memory. */
	assert_int_equal(cache_get(c, &k, big, fill_pattern, &f, &e1), 0);
	assert_int_equal(atomic_load(&f.calls), 2);
	assert_int_equal(stats(c).recycled, 1);
	check_bytes(e1, 7, big);
	/* Held twice: the drop only unpins, the entry stays for the other holder. */
	assert_int_equal(cache_get(c, &k, big, fill_pattern, &f, &e2), 0);
	cache_put_drop(c, e1);
	assert_int_equal(stats(c).dropped, 1);
	check_bytes(e2, 7, big);
	cache_put(c, e2);
	assert_int_equal(stats(c).entries, 1);
	assert_int_equal(touch(c, 8), 1);
	assert_int_equal(stats(c).entries, 2);
	cache_free(c);
}

/* A known sequence gives exact counters. */
static void test_stats_exact(void **state)
{
	struct cache *c = NULL;
	struct cache_entry *e1 = NULL, *e2 = NULL;
	struct filler f = {.chunk = 1};
	struct filler bad = {.chunk = 3, .err = -EUCLEAN};
	struct cache_key k1 = key(1), k3 = key(3);

	(void)state;
	assert_int_equal(cache_new_policy(2 * LEN, &cache_policy_lru, &c), 0);
	touch(c, 1); /* miss */
	touch(c, 1); /* hit */
	touch(c, 2); /* miss */
	touch(c, 0); /* miss, evicts 1 */
	/* miss; room is made before the fill, so 2 is evicted although the fill fails */
	assert_int_equal(cache_get(c, &k3, LEN, fill_pattern, &bad, &e1), -EUCLEAN);
	assert_int_equal(cache_get(c, &k1, LEN, fill_pattern, &f, &e1), 0); /* miss */
	assert_int_equal(cache_get(c, &k1, LEN, fill_pattern, &f, &e2), 0); /* hit */
	assert_ptr_equal(e1, e2);
	struct cache_stats st = stats(c);

	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 5);
	assert_int_equal(st.evictions, 2);
	assert_int_equal(st.fill_errors, 1);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.bytes, 2 * LEN);
	assert_int_equal(st.budget, 2 * LEN);
	cache_put(c, e1);
	cache_put(c, e2);
	cache_free(c);
}

/* Keys differing in any field are different entries; lengths may differ per key. */
static void test_keys_and_lengths(void **state)
{
	struct cache *c = NULL;
	struct cache_key ks[4] = {
		{.obj = {1, 2}, .chunk = 3},
		{.obj = {2, 2}, .chunk = 3},
		{.obj = {1, 3}, .chunk = 3},
		{.obj = {1, 2}, .chunk = 4},
	};

	(void)state;
	assert_int_equal(cache_new_policy(64u << 20, &cache_policy_lru, &c), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 4; i++) {
			struct filler f = {.chunk = (uint64_t)i};
			struct cache_entry *e = NULL;
			size_t len = 100 + (size_t)i * 1000;

			assert_int_equal(cache_get(c, &ks[i], len, fill_pattern, &f, &e), 0);
			assert_int_equal(atomic_load(&f.calls), round == 0 ? 1 : 0);
			check_bytes(e, (uint64_t)i, len);
			cache_put(c, e);
		}
	}
	assert_int_equal(stats(c).entries, 4);
	assert_int_equal(stats(c).bytes, 100 + 1100 + 2100 + 3100);
	/* Many keys: the tables grow and every entry stays reachable. */
	for (uint64_t i = 0; i < 5000; i++)
		assert_int_equal(touch(c, 1000 + i), 1);
	for (uint64_t i = 0; i < 5000; i += 7)
		assert_int_equal(touch(c, 1000 + i), 0);
	cache_free(c);
}

/* A value that cannot be allocated is -ENOMEM, leaves nothing behind, calls no fill. */
static void test_enomem(void **state)
{
	struct cache *c = NULL;
	struct cache_entry *e = (struct cache_entry *)0x1;
	struct filler f = {.chunk = 1};
	struct cache_key k = key(1);

	(void)state;
	assert_int_equal(cache_new_policy(LEN, &cache_policy_lru, &c), 0);
	assert_int_equal(cache_get(c, &k, (size_t)1 << 50, fill_pattern, &f, &e), -ENOMEM);
	assert_int_equal(cache_get(c, &k, SIZE_MAX - 8, fill_pattern, &f, &e), -ENOMEM);
	assert_ptr_equal(e, (struct cache_entry *)0x1);
	assert_int_equal(atomic_load(&f.calls), 0);
	assert_int_equal(stats(c).entries, 0);
	assert_int_equal(stats(c).misses, 0);
	assert_int_equal(touch(c, 1), 1);
	cache_free(c);
}

/* How many of chunks [first, first + n) are still cached (fills them back). */
static int survivors(struct cache *c, uint64_t first, int n)
{
	int kept = 0;

	for (int i = 0; i < n; i++)
		kept += touch(c, first + (uint64_t)i) == 0;
	return kept;
}

/* A hot set read in two rounds (a miss, then a hit much later), then a one-time
 * sequential scan of 1000 keys through a cache of 64, each key read @reads times in
 * a row as a reader does with several requests per chunk.  Returns how many hot
 * entries survived; *st is taken right after the scan. */
static int hot_after_scan(const struct cache_policy_ops *ops, int hot, int reads,
			  struct cache_stats *st)
{
	struct cache *c = NULL;
	int kept;

	assert_int_equal(cache_new_policy(64 * LEN, ops, &c), 0);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < hot; i++)
			assert_int_equal(touch(c, (uint64_t)i), round == 0 ? 1 : 0);
	for (uint64_t i = 0; i < 1000; i++)
		for (int r = 0; r < reads; r++)
			assert_int_equal(touch(c, 100000 + i), r == 0 ? 1 : 0);
	cache_get_stats(c, st);
	kept = survivors(c, 0, hot);
	/* Shrinking takes the protected entries too once no cold one is left. */
	cache_set_budget(c, 1);
	assert_int_equal(stats(c).entries, 0);
	assert_int_equal(stats(c).bytes, 0);
	cache_free(c);
	return kept;
}

/* Plain LRU: the scan flushes the hot set (the reason for slru.c). */
static void test_lru_scan_flushes(void **state)
{
	struct cache_stats st;

	(void)state;
	assert_int_equal(hot_after_scan(&cache_policy_lru, 16, 1, &st), 0);
	assert_int_equal(st.bytes, 64 * LEN);
	assert_int_equal(hot_after_scan(&cache_policy_lru, 16, 3, &st), 0);
}

/* Segmented LRU: the scan evicts only its own entries; the hot set survives, also
 * when the scan reads each chunk several times in a row. */
static void test_slru_scan_resistant(void **state)
{
	struct cache_stats st;

	(void)state;
	assert_int_equal(hot_after_scan(&cache_policy_slru, 16, 1, &st), 16);
	assert_int_equal(st.bytes, 64 * LEN);
	assert_int_equal(st.evictions, 16 + 1000 - 64);
	assert_int_equal(st.hits, 16);
	assert_int_equal(hot_after_scan(&cache_policy_slru, 16, 4, &st), 16);
	assert_int_equal(st.hits, 16 + 3 * 1000);
	assert_int_equal(st.evictions, 16 + 1000 - 64);
}

/* A hot set above the protected cap (80% of 64 entries): the cap holds, the rest is
 * demoted to probation and goes with the scan; the budget holds throughout. */
static void test_slru_protected_cap(void **state)
{
	struct cache_stats st;
	int kept = hot_after_scan(&cache_policy_slru, 60, 2, &st);

	(void)state;
	print_message("slru: %d of 60 hot entries kept after the scan\n", kept);
	assert_true(kept >= 45 && kept <= 52);
	assert_int_equal(st.bytes, 64 * LEN);
}

/* Segmented LRU keeps the contract: LRU among cold entries, pins, budget. */
static void test_slru_basics(void **state)
{
	struct cache *c = NULL;
	struct cache_entry *e = NULL;
	struct filler f = {.chunk = 500};
	struct cache_key k = key(500);

	(void)state;
	assert_int_equal(cache_new_policy(4 * LEN, &cache_policy_slru, &c), 0);
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(touch(c, i), 1);
	assert_int_equal(touch(c, 4), 1); /* evicts 0, the oldest */
	assert_int_equal(stats(c).evictions, 1);
	assert_int_equal(touch(c, 0), 1); /* evicts 1 */
	assert_int_equal(touch(c, 2), 0);
	assert_int_equal(touch(c, 3), 0);
	assert_int_equal(touch(c, 4), 0);
	assert_int_equal(stats(c).evictions, 2);
	/* Pinned entries exceed the budget only while held. */
	assert_int_equal(cache_get(c, &k, 8 * LEN, fill_pattern, &f, &e), 0);
	check_bytes(e, 500, 8 * LEN);
	assert_true(stats(c).bytes >= 8 * LEN);
	cache_put(c, e);
	assert_true(stats(c).bytes <= 4 * LEN);
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_invalid),
		cmocka_unit_test(test_budget_many_inserts),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_pinned_survive),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_fill_error),
		cmocka_unit_test(test_set_budget),
		cmocka_unit_test(test_stats_exact),
		cmocka_unit_test(test_keys_and_lengths),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_lru_scan_flushes),
		cmocka_unit_test(test_slru_scan_resistant),
		cmocka_unit_test(test_slru_protected_cap),
		cmocka_unit_test(test_slru_basics),
		cmocka_unit_test(test_recycle),
		cmocka_unit_test(test_put_drop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
