/* test_readahead.c - read-ahead of fuse/readahead.c over a real store object: a sequential
 * reader gets the chunks ahead decompressed into the cache by the workers (right bytes),
 * a random reader never triggers it, several readers at once (threads) keep the counters
 * and the object's references right, and the worker pool shuts down with jobs pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "mnt.h"
#include "node.h"
#include "store/store.h"
#include "tests/unit/store/store_test.h"

#define CHUNK  4096u
#define NCHUNK 1024u

struct fx {
	char dir[64];
	struct store *st;
	struct mnt_obj *ob;
	struct cache *cache;
	struct mnt_ra *ra;
};

static uint8_t byte_at(size_t i)
{
	return (uint8_t)(i * 7 + i / 4096);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_params p;
	struct store_writer *w;
	uint8_t *buf = malloc(CHUNK * NCHUNK);

	if (!fx || !buf)
		return -1;
	for (size_t i = 0; i < CHUNK * NCHUNK; i++)
		buf[i] = byte_at(i);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_readahead.XXXXXX");
	if (!mkdtemp(fx->dir) || store_create(fx->dir, NULL) || store_open(fx->dir, 0, &fx->st))
		return -1;
	store_params_default(&p);
	p.chunk_size = CHUNK;
	if (store_writer_new(fx->st, &p, &w) || store_writer_write(w, buf, CHUNK * NCHUNK) ||
	    store_writer_commit(w, store_root_fd(fx->st), "obj", 0644, NULL))
		return -1;
	free(buf);
	fx->ob = calloc(1, sizeof(*fx->ob));
	fx->ob->refs = 1;
	if (store_object_openat(store_root_fd(fx->st), "obj", "obj", &fx->ob->so))
		return -1;
	if (cache_new(CHUNK * NCHUNK * 2, &fx->cache) || mnt_ra_new(fx->cache, 2, 4, &fx->ra))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	mnt_ra_free(fx->ra);
	/* Every job gave its reference back. */
	assert_int_equal(__atomic_load_n(&fx->ob->refs, __ATOMIC_ACQUIRE), 1);
	mnt_obj_put(fx->ob);
	cache_free(fx->cache);
	store_close(fx->st);
	t_rm_rf(fx->dir);
	free(fx);
	return 0;
}

/* Waits (up to 10 s) until the workers have handled every queued chunk. */
static void drain(struct fx *fx, struct mnt_ra_stats *s)
{
	for (int i = 0; i < 10000; i++) {
		/* Each queued job holds a reference until a worker is done with it. */
		if (__atomic_load_n(&fx->ob->refs, __ATOMIC_ACQUIRE) == 1) {
			mnt_ra_get_stats(fx->ra, s);
			return;
		}
		usleep(1000);
	}
	fail_msg("read-ahead workers did not drain");
}

static int fill_fails(void *arg, void *dst, size_t len)
{
	(void)arg;
	(void)dst;
	(void)len;
	return -ENODATA;
}

/* Whether chunk @idx is in the cache with the right bytes (a get that may not fill). */
static bool cached_ok(struct fx *fx, uint64_t idx)
{
	struct cache_key k;
	struct cache_entry *e = NULL;
	const uint8_t *p;
	bool ok = true;

	store_object_id(fx->ob->so, k.obj);
	k.chunk = idx;
	if (cache_get(fx->cache, &k, CHUNK, fill_fails, NULL, &e) != 0)
		return false;
	p = cache_entry_data(e);
	for (size_t i = 0; i < CHUNK; i++)
		if (p[i] != byte_at(idx * CHUNK + i))
			ok = false;
	cache_put(fx->cache, e);
	return ok;
}

static void test_sequential_triggers(void **state)
{
	struct fx *fx = *state;
	struct mnt_ra_stats s;

	/* Two requests per chunk, like 2 KiB reads; nothing is got from the cache here.
	 * Every request but the first continues the stream (what drop-behind goes by). */
	for (uint64_t c = 0; c < 20; c++) {
		assert_int_equal(mnt_ra_note(fx->ra, fx->ob, c * CHUNK, CHUNK / 2), c > 0);
		assert_true(mnt_ra_note(fx->ra, fx->ob, c * CHUNK + CHUNK / 2, CHUNK / 2));
	}
	drain(fx, &s);
	assert_int_equal(s.reads, 40);
	assert_true(s.triggers > 0);
	/* From the 4th request (chunk 1): chunks 2..5, then topped up to 4 ahead whenever
	 * only 2 are left: the last top-up (at chunk 19) queued up to 23. */
	assert_int_equal(s.queued, 22);
	assert_int_equal(s.dropped, 0);
	assert_int_equal(s.done, s.queued);
	for (uint64_t c = 2; c < 24; c++)
		if (!cached_ok(fx, c))
			fail_msg("chunk %llu not read ahead (queued %llu done %llu failed %llu)",
				 (unsigned long long)c, (unsigned long long)s.queued,
				 (unsigned long long)s.done, (unsigned long long)s.failed);
	assert_false(cached_ok(fx, 24));
}

static void test_eof(void **state)
{
	struct fx *fx = *state;
	struct mnt_ra_stats s;

	for (uint64_t c = NCHUNK - 6; c < NCHUNK; c++)
		mnt_ra_note(fx->ra, fx->ob, c * CHUNK, CHUNK);
	drain(fx, &s);
	/* Never past the last chunk: only 2 exist after the 4th read. */
	assert_true(s.queued <= 3);
	assert_int_equal(s.failed, 0);
}

static void test_random_does_not_trigger(void **state)
{
	struct fx *fx = *state;
	struct mnt_ra_stats s;
	uint64_t c = 0;

	/* 4 KiB at chunk starts, strides of 7 chunks: never where another read ended. */
	for (int i = 0; i < 200; i++, c = (c + 7) % NCHUNK)
		assert_false(mnt_ra_note(fx->ra, fx->ob, c * CHUNK, 4096));
	drain(fx, &s);
	assert_int_equal(s.reads, 200);
	assert_int_equal(s.triggers, 0);
	assert_int_equal(s.queued, 0);
}

/* Multi-chunk requests (1 MiB reads over small chunks) advance a stream by several. */
static void test_big_requests(void **state)
{
	struct fx *fx = *state;
	struct mnt_ra_stats s;

	for (uint64_t c = 0; c + 3 < 32; c += 4)
		mnt_ra_note(fx->ra, fx->ob, c * CHUNK, 4 * CHUNK);
	drain(fx, &s);
	assert_true(s.triggers > 0);
	assert_true(cached_ok(fx, 32));
}

struct reader {
	struct fx *fx;
	int kind; /* 0 sequential, 1 random */
	uint64_t seed;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	for (int pass = 0; pass < 2; pass++)
		for (uint64_t c = 0; c < NCHUNK; c++) {
			uint64_t idx = c;

			if (r->kind) {
				r->seed = r->seed * 6364136223846793005ULL + 1442695040888963407ULL;
				idx = (r->seed >> 33) % NCHUNK;
			}
			mnt_ra_note(r->fx->ra, r->fx->ob, idx * CHUNK, CHUNK);
		}
	return NULL;
}

/* Sequential and random readers at once, while the workers fill the cache. */
static void test_concurrent_readers(void **state)
{
	struct fx *fx = *state;
	struct reader r[4];
	pthread_t t[4];
	struct mnt_ra_stats s;
	uint64_t missing = 0;

	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){fx, i % 2, 12345u * (i + 1)};
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	drain(fx, &s);
	assert_int_equal(s.reads, 4 * 2 * NCHUNK);
	assert_true(s.triggers > 0);
	assert_int_equal(s.failed, 0);
	/* Queued chunks were read ahead right; a full queue may have dropped a few. */
	for (uint64_t c = 0; c < NCHUNK; c++)
		missing += !cached_ok(fx, c);
	assert_true(s.done > 0 && missing <= s.dropped + 8);
}

/* Freeing the pool with jobs still queued gives their references back (teardown checks). */
static void test_free_with_pending(void **state)
{
	struct fx *fx = *state;

	mnt_ra_free(fx->ra);
	assert_int_equal(mnt_ra_new(fx->cache, 1, 32, &fx->ra), 0);
	for (uint64_t c = 0; c < NCHUNK; c++)
		mnt_ra_note(fx->ra, fx->ob, c * CHUNK, CHUNK);
	mnt_ra_free(fx->ra);
	assert_int_equal(__atomic_load_n(&fx->ob->refs, __ATOMIC_ACQUIRE), 1);
	/* Depth 0: no workers, notes only count. */
	assert_int_equal(mnt_ra_new(fx->cache, 2, 0, &fx->ra), 0);
	for (uint64_t c = 0; c < NCHUNK; c++)
		mnt_ra_note(fx->ra, fx->ob, c * CHUNK, CHUNK);
}

/* The depth changes at run time: off stops triggering, on again resumes it; bad
 * depths are refused and leave it unchanged. */
static void test_set_depth(void **state)
{
	struct fx *fx = *state;
	struct mnt_ra_stats s;
	uint64_t c = 0;

	assert_int_equal(mnt_ra_set_depth(fx->ra, 0), 0);
	assert_int_equal(mnt_ra_depth(fx->ra), 0);
	for (; c < 10; c++)
		mnt_ra_note(fx->ra, fx->ob, c * CHUNK, CHUNK);
	drain(fx, &s);
	assert_int_equal(s.triggers, 0);
	assert_int_equal(s.queued, 0);

	assert_int_equal(mnt_ra_set_depth(fx->ra, MNT_RA_MAX_DEPTH + 1), -EINVAL);
	assert_int_equal(mnt_ra_depth(fx->ra), 0);
	assert_int_equal(mnt_ra_set_depth(fx->ra, 4), 0);
	for (; c < 20; c++)
		mnt_ra_note(fx->ra, fx->ob, c * CHUNK, CHUNK);
	drain(fx, &s);
	assert_true(s.triggers > 0);
	assert_true(s.queued > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sequential_triggers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_does_not_trigger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_depth, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
