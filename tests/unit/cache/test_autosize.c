/* test_autosize.c - the -o cache_size=auto policy (cache_auto_next()) on made-up
 * samples, the mount-time budget, and the thread started and stopped on a real
 * cache. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <unistd.h>

#include "cache/cache.h"

#define MiB ((size_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

static void test_budget(void **state)
{
	struct cache_pressure p = {.avail = 8 * GiB, .total = 24 * GiB};

	(void)state;
	assert_int_equal(cache_auto_budget(&p), 2 * GiB);
	p.avail = 10 * MiB;
	assert_int_equal(cache_auto_budget(&p), CACHE_AUTO_MIN);
	p.avail = 1024 * GiB;
	assert_int_equal(cache_auto_budget(&p), CACHE_AUTO_MAX);
}

static void test_policy(void **state)
{
	struct cache_pressure calm = {.avail = 12 * GiB, .total = 24 * GiB, .have_psi = true};
	struct cache_pressure psi = calm, low = calm, mid = calm, nopsi = calm;
	size_t base = 1024 * MiB, cur = base;

	(void)state;
	psi.some_avg10 = 25.0;
	low.avail = GiB; /* < 5 % of 24 GiB */
	mid.some_avg10 = 5.0;
	nopsi.have_psi = false;
	/* Pressure halves, down to the floor. */
	cur = cache_auto_next(cur, base, &psi);
	assert_int_equal(cur, 512 * MiB);
	cur = cache_auto_next(cur, base, &low);
	assert_int_equal(cur, 256 * MiB);
	for (int i = 0; i < 20; i++)
		cur = cache_auto_next(cur, base, &psi);
	assert_int_equal(cur, CACHE_AUTO_MIN);
	/* Between the thresholds nothing changes. */
	assert_int_equal(cache_auto_next(cur, base, &mid), cur);
	/* Calm grows back by base/8 a step, never past base. */
	cur = cache_auto_next(cur, base, &calm);
	assert_int_equal(cur, CACHE_AUTO_MIN + base / 8);
	for (int i = 0; i < 20; i++)
		cur = cache_auto_next(cur, base, &nopsi);
	assert_int_equal(cur, base);
	assert_int_equal(cache_auto_next(base, base, &calm), base);
}

static void test_thread(void **state)
{
	struct cache *c;
	struct cache_autosize *a = NULL;
	struct cache_pressure p;
	struct cache_stats st;

	(void)state;
	assert_int_equal(cache_auto_sample(&p), 0);
	assert_true(p.total > 0 && p.avail <= p.total);
	assert_int_equal(cache_new(64 * MiB, &c), 0);
	assert_int_equal(cache_auto_start(c, 64 * MiB, 10, &a), 0);
	usleep(60 * 1000);
	cache_get_stats(c, &st);
	assert_true(st.budget >= CACHE_AUTO_MIN && st.budget <= 64 * MiB);
	cache_auto_stop(a);
	cache_auto_stop(NULL);
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
