/* test_policy_trace.c - replays synthetic access traces through LRU and segmented LRU and
 * compares hit ratios: how the default policy was chosen (cache/DESIGN.md).
 *
 * Traces, in chunk gets (256 KiB chunks, a cache of 64 chunks = 16 MiB):
 *   ivf     an IVF index of 256 chunks read through mmap: each query probes 16 lists
 *           (2 chunks each, every chunk faulted twice in a row: 128 KiB kernel readahead),
 *           list popularity Zipf-like (queries cluster), so a hot set fits the cache.
 *   scan    ivf interleaved with sequential reads of a 1024-chunk file (16x the cache),
 *           32 chunks per query, each got 4 times in a row, read ahead 8 chunks by
 *           prefetch.
 *   loop    a 96-chunk file read sequentially over and over (bigger than the cache).
 * The figures are printed; the test asserts what the default relies on: SLRU keeps
 * the IVF hit ratio under a scan and is within a few points of LRU without one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "cache/cache_internal.h"

#define CHUNK	  4096u /* bytes per value: only the count matters */
#define CAPACITY  64u
#define IVF_LISTS 128u
#define SCAN_LEN  1024u

struct run {
	struct cache *c;
	uint64_t gets[2], misses[2]; /* per class: 0 ivf, 1 scan */
	uint64_t rng;
};

static int fill_nothing(void *arg, void *dst, size_t len)
{
	uint64_t *misses = arg;

	(void)dst;
	(void)len;
	(*misses)++;
	return 0;
}

static void get(struct run *r, int cls, uint64_t chunk)
{
	struct cache_key k = {.obj = {(uint64_t)cls + 1, 0}, .chunk = chunk};
	struct cache_entry *e = NULL;

	r->gets[cls]++;
	assert_int_equal(cache_get(r->c, &k, CHUNK, fill_nothing, &r->misses[cls], &e), 0);
	cache_put(r->c, e);
}

static void prefetch(struct run *r, int cls, uint64_t chunk)
{
	struct cache_key k = {.obj = {(uint64_t)cls + 1, 0}, .chunk = chunk};
	uint64_t ignored = 0;

	(void)cache_prefetch(r->c, &k, CHUNK, fill_nothing, &ignored);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* A list index, Zipf-like with exponent 1 over IVF_LISTS lists. */
static unsigned zipf_list(uint64_t *rng)
{
	static double cdf[IVF_LISTS];
	double u = (double)(rng_next(rng) >> 11) / 9007199254740992.0;
	unsigned lo = 0, hi = IVF_LISTS - 1;

	if (cdf[IVF_LISTS - 1] == 0) {
		double sum = 0, acc = 0;

		for (unsigned i = 0; i < IVF_LISTS; i++)
			sum += 1.0 / (i + 1);
		for (unsigned i = 0; i < IVF_LISTS; i++) {
			acc += 1.0 / (i + 1) / sum;
			cdf[i] = acc;
		}
	}
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Scatter popular lists over the file. */
	return (lo * 37u) % IVF_LISTS;
}

static void ivf_query(struct run *r)
{
	for (int p = 0; p < 16; p++) {
		unsigned list = zipf_list(&r->rng);

		for (unsigned c = 0; c < 2; c++) {
			get(r, 0, list * 2 + c);
			get(r, 0, list * 2 + c);
		}
	}
}

/* Replays @trace under @ops; returns the ivf hit ratio (or the scan's for "loop"). */
static double replay(const struct cache_policy_ops *ops, const char *trace)
{
	struct run r = {.rng = 0x5eed};
	double ratio;
	int cls = 0;

	assert_int_equal(cache_new_policy(CAPACITY * CHUNK, ops, &r.c), 0);
	if (trace[0] == 'l') {
		cls = 1;
		for (int pass = 0; pass < 20; pass++)
			for (uint64_t i = 0; i < 96; i++)
				get(&r, 1, i);
	} else {
		uint64_t pos = 0;

		for (int q = 0; q < 3000; q++) {
			ivf_query(&r);
			if (trace[0] != 's')
				continue;
			/* 32 scan chunks per query (a read of another index at disk speed while
			 * queries run): the scan goes through the file many times. */
			for (int n = 0; n < 32; n++, pos = (pos + 1) % SCAN_LEN) {
				for (uint64_t j = 1; j <= 8; j++)
					prefetch(&r, 1, (pos + j) % SCAN_LEN);
				for (int rep = 0; rep < 4; rep++)
					get(&r, 1, pos);
			}
		}
	}
	ratio = 1.0 - (double)r.misses[cls] / (double)r.gets[cls];
	cache_free(r.c);
	return ratio;
}

static void test_policy_trace(void **state)
{
	const char *traces[] = {"ivf", "scan", "loop"};
	double lru[3], slru[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		lru[i] = replay(&cache_policy_lru, traces[i]);
		slru[i] = replay(&cache_policy_slru, traces[i]);
		print_message("trace %-5s hit ratio: lru %.3f  slru %.3f\n", traces[i], lru[i],
			      slru[i]);
	}
	/* IVF alone: SLRU about as good as LRU. */
	assert_true(slru[0] >= lru[0] - 0.03);
	/* IVF under a scan: SLRU keeps most of its hits, LRU loses them. */
	assert_true(slru[1] >= slru[0] - 0.10);
	assert_true(slru[1] > lru[1] + 0.10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_trace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
