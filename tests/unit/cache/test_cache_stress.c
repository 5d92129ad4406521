/* test_cache_stress.c - many threads, random keys, a small budget, failing fills.
 *
 * Every value's bytes are a function of its key, checked on every get; at the end
 * the counters must add up exactly and the bytes held must be within the budget.
 * FFS_STRESS_THREADS and FFS_STRESS_GETS override the size (default 8 x 200000).
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

#define MAX_THREADS 64
#define HOLD	    4 /* pins each thread keeps at once */

struct stress {
	struct cache *c;
	unsigned nkeys;
	unsigned gets;
	size_t (*len_of)(uint64_t key);
	unsigned fail_one_in; /* a fill fails with probability 1/fail_one_in; 0 never */
	bool churn_budget;    /* thread 0 also moves the budget around */
	size_t budget;
	const struct cache_policy_ops *policy; /* NULL: cache_new()'s default */
};

struct worker {
	struct stress *st;
	unsigned id;
	uint64_t rng;
	/* results */
	uint64_t ok;	      /* gets that returned 0 */
	uint64_t failed;      /* gets that returned an error */
	uint64_t fills;	      /* fill calls made by this thread */
	uint64_t fill_errors; /* of which failed */
	uint64_t bad;	      /* values with wrong bytes */
};

struct fill_arg {
	struct worker *w;
	uint64_t key;
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

static uint64_t word(uint64_t key, size_t i)
{
	return key * 0x9e3779b97f4a7c15ULL + i * 0x2545f4914f6cdd1dULL;
}

static int fill_words(void *arg, void *dst, size_t len)
{
	struct fill_arg *a = arg;
	uint64_t *p = dst;

	a->w->fills++;
	if (a->w->st->fail_one_in && rng_next(&a->w->rng) % a->w->st->fail_one_in == 0) {
		a->w->fill_errors++;
		return -EIO;
	}
	for (size_t i = 0; i < len / 8; i++)
		p[i] = word(a->key, i);
	return 0;
}

static bool value_ok(struct cache_entry *e, uint64_t key, size_t len)
{
	const uint64_t *p = cache_entry_data(e);

	if (cache_entry_len(e) != len)
		return false;
	for (size_t i = 0; i < len / 8; i++)
		if (p[i] != word(key, i))
			return false;
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	struct cache_entry *held[HOLD] = {NULL};

	for (unsigned n = 0; n < st->gets; n++) {
		uint64_t r = rng_next(&w->rng);
		/* Half the gets go to a small hot set, so hits and waits happen too. */
		uint64_t key = (r & 1) ? (r >> 1) % (st->nkeys / 16 + 1) : (r >> 1) % st->nkeys;
		struct cache_key k = {.obj = {0xfeed, 0xbeef}, .chunk = key};
		struct fill_arg fa = {.w = w, .key = key};
		struct cache_entry *e = NULL;
		size_t len = st->len_of(key);
		unsigned slot = (unsigned)(r >> 40) % HOLD;
		int rc;

		rc = cache_get(st->c, &k, len, fill_words, &fa, &e);
		if (rc != 0) {
			if (rc != -EIO)
				w->bad++;
			w->failed++;
		} else {
			w->ok++;
			if (!value_ok(e, key, len))
				w->bad++;
			if (held[slot])
				cache_put(st->c, held[slot]);
			held[slot] = e;
		}
		if (st->churn_budget && w->id == 0 && n % 5000 == 0)
			cache_set_budget(st->c, (n / 5000) % 2 ? st->budget / 4 : st->budget);
	}
	for (int i = 0; i < HOLD; i++)
		if (held[i])
			cache_put(st->c, held[i]);
	return NULL;
}

static unsigned env_or(const char *name, unsigned dflt)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

static void run(struct stress *st, unsigned nthreads)
{
	pthread_t t[MAX_THREADS];
	struct worker w[MAX_THREADS];
	struct cache_stats cs;
	uint64_t ok = 0, failed = 0, fills = 0, fill_errors = 0, bad = 0;

	assert_true(nthreads > 0 && nthreads <= MAX_THREADS);
	if (st->policy)
		assert_int_equal(cache_new_policy(st->budget, st->policy, &st->c), 0);
	else
		assert_int_equal(cache_new(st->budget, &st->c), 0);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){.st = st, .id = i, .rng = 0x1234567ULL * (i + 1)};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
		failed += w[i].failed;
		fills += w[i].fills;
		fill_errors += w[i].fill_errors;
		bad += w[i].bad;
	}
	/* Whatever the churn left, end on the nominal budget. */
	cache_set_budget(st->c, st->budget);
	cache_get_stats(st->c, &cs);
	print_message("gets %llu (failed %llu) hits %llu misses %llu evictions %llu "
		      "fill_errors %llu entries %llu bytes %llu budget %llu\n",
		      (unsigned long long)(ok + failed), (unsigned long long)failed,
		      (unsigned long long)cs.hits, (unsigned long long)cs.misses,
		      (unsigned long long)cs.evictions, (unsigned long long)cs.fill_errors,
		      (unsigned long long)cs.entries, (unsigned long long)cs.bytes,
		      (unsigned long long)cs.budget);
	assert_int_equal(bad, 0);
	assert_int_equal(ok + failed, (uint64_t)nthreads * st->gets);
	assert_int_equal(cs.misses, fills);
	assert_int_equal(cs.fill_errors, fill_errors);
	/* A failed get either called the failing fill or waited for one. */
	assert_int_equal(cs.hits + cs.misses, ok + fill_errors);
	assert_true(cs.bytes <= st->budget);
	assert_true(cs.entries <= st->nkeys);
	/* Every key is still served right after the storm. */
	for (uint64_t key = 0; key < st->nkeys; key++) {
		struct worker w0 = {.st = st, .rng = 1};
		struct fill_arg fa = {.w = &w0, .key = key};
		struct cache_key k = {.obj = {0xfeed, 0xbeef}, .chunk = key};
		struct cache_entry *e = NULL;
		unsigned saved = st->fail_one_in;

		st->fail_one_in = 0;
		assert_int_equal(cache_get(st->c, &k, st->len_of(key), fill_words, &fa, &e), 0);
		assert_true(value_ok(e, key, st->len_of(key)));
		cache_put(st->c, e);
		st->fail_one_in = saved;
	}
	cache_get_stats(st->c, &cs);
	assert_true(cs.bytes <= st->budget);
	cache_free(st->c);
	st->c = NULL;
}

static size_t small_len(uint64_t key)
{
	return 64 + (key % 16) * 64;
}

static size_t chunk_len(uint64_t key)
{
	return (size_t)256 * 1024 + (key % 2) * 4096;
}

/* Small values, 1000 keys, a budget of about a tenth of them, 1 fill in 500 fails. */
static void test_stress_small(void **state)
{
	struct stress st = {
		.nkeys = 1000,
		.gets = env_or("FFS_STRESS_GETS", 200000),
		.len_of = small_len,
		.fail_one_in = 500,
		.budget = 64 * 1024,
	};

	(void)state;
	run(&st, env_or("FFS_STRESS_THREADS", 8));
}

/* Same with the budget moving under the threads' feet. */
static void test_stress_budget_churn(void **state)
{
	struct stress st = {
		.nkeys = 1000,
		.gets = env_or("FFS_STRESS_GETS", 200000) / 4,
		.len_of = small_len,
		.fail_one_in = 500,
		.churn_budget = true,
		.budget = 64 * 1024,
	};

	(void)state;
	run(&st, env_or("FFS_STRESS_THREADS", 8));
}

/* The segmented policy under the same load, with the budget moving. */
static void test_stress_slru(void **state)
{
	struct stress st = {
		.nkeys = 1000,
		.gets = env_or("FFS_STRESS_GETS", 200000) / 2,
		.len_of = small_len,
		.fail_one_in = 500,
		.churn_budget = true,
		.budget = 64 * 1024,
		.policy = &cache_policy_slru,
	};

	(void)state;
	run(&st, env_or("FFS_STRESS_THREADS", 8));
}

/* Chunk-sized values (256 KiB) over few keys: many concurrent misses on one key. */
static void test_stress_chunks(void **state)
{
	struct stress st = {
		.nkeys = 24,
		.gets = env_or("FFS_STRESS_GETS", 200000) / 100,
		.len_of = chunk_len,
		.fail_one_in = 50,
		.budget = 8 * 256 * 1024,
	};

	(void)state;
	run(&st, env_or("FFS_STRESS_THREADS", 8) / 2 + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress_small),
		cmocka_unit_test(test_stress_budget_churn),
		cmocka_unit_test(test_stress_slru),
		cmocka_unit_test(test_stress_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
