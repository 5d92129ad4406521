/* test_metrics.c - util/metrics: counters, histograms, families and the text format. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util/metrics.h"

static const uint64_t small_le[] = {10, 100, 1000};
static const struct metrics_bounds small = {3, small_le, 0.001};

static char *take(struct metrics_buf *b)
{
	size_t len;
	char *s = metrics_buf_take(b, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_buf_grows(void **state)
{
	struct metrics_buf b = METRICS_BUF_INIT;
	char *s;

	(void)state;
	for (int i = 0; i < 2000; i++)
		metrics_buf_printf(&b, "%04d\n", i);
	s = take(&b);
	assert_int_equal(strlen(s), 2000 * 5);
	assert_memory_equal(s + 1999 * 5, "1999\n", 5);
	free(s);
	assert_null(b.p);
}

static void test_empty_take(void **state)
{
	struct metrics_buf b = METRICS_BUF_INIT;
	char *s = take(&b);

	(void)state;
	assert_string_equal(s, "");
	free(s);
}

static void test_label_escape(void **state)
{
	struct metrics_buf b = METRICS_BUF_INIT;
	char *s;

	(void)state;
	metrics_buf_label_value(&b, "a\"b\\c\nd");
	s = take(&b);
	assert_string_equal(s, "a\\\"b\\\\c\\nd");
	free(s);
	/* Latin-1 bytes become U+FFFD; valid UTF-8 passes. */
	metrics_buf_label_value(&b, "caf\xe9-\xc3\xa9");
	s = take(&b);
	assert_string_equal(s, "caf\xef\xbf\xbd-\xc3\xa9");
	free(s);
}

static void test_counter_and_lines(void **state)
{
	struct metrics_counter c = {0};
	struct metrics_buf b = METRICS_BUF_INIT;
	char *s;

	(void)state;
	metrics_counter_add(&c, 3);
	metrics_counter_add(&c, 4);
	assert_int_equal(metrics_counter_get(&c), 7);
	metrics_write_header(&b, "x_total", "counter", "Things.");
	metrics_write_u64(&b, "x_total", NULL, metrics_counter_get(&c));
	metrics_write_u64(&b, "x_total", "op=\"read\"", 1);
	metrics_write_double(&b, "g", "", 0.5);
	s = take(&b);
	assert_string_equal(s, "# HELP x_total Things.\n# TYPE x_total counter\n"
			       "x_total 7\nx_total{op=\"read\"} 1\ng 0.5\n");
	free(s);
}

static void test_hist_buckets(void **state)
{
	struct metrics_hist h;
	struct metrics_buf b = METRICS_BUF_INIT;
	char *s;

	(void)state;
	metrics_hist_init(&h, &small);
	metrics_hist_observe(&h, 0);	/* <= 10 */
	metrics_hist_observe(&h, 10);	/* <= 10: bounds are inclusive */
	metrics_hist_observe(&h, 11);	/* <= 100 */
	metrics_hist_observe(&h, 1000); /* <= 1000 */
	metrics_hist_observe(&h, 5000); /* +Inf */
	metrics_write_hist(&b, "t_seconds", "a=\"1\"", &h);
	s = take(&b);
	assert_string_equal(s, "t_seconds_bucket{a=\"1\",le=\"0.01\"} 2\n"
			       "t_seconds_bucket{a=\"1\",le=\"0.1\"} 3\n"
			       "t_seconds_bucket{a=\"1\",le=\"1\"} 4\n"
			       "t_seconds_bucket{a=\"1\",le=\"+Inf\"} 5\n"
			       "t_seconds_sum{a=\"1\"} 6.0209999999999999\n"
			       "t_seconds_count{a=\"1\"} 5\n");
	free(s);
}

static void test_hist_no_labels(void **state)
{
	struct metrics_hist h;
	struct metrics_buf b = METRICS_BUF_INIT;
	char *s;

	(void)state;
	metrics_hist_init(&h, &metrics_bounds_latency);
	metrics_hist_observe(&h, 1000); /* 1 us: first bucket (10 us) */
	metrics_write_hist(&b, "l_seconds", NULL, &h);
	s = take(&b);
	assert_non_null(strstr(s, "l_seconds_bucket{le=\"1e-05\"} 1\n"));
	assert_non_null(strstr(s, "l_seconds_bucket{le=\"10\"} 1\n"));
	assert_non_null(strstr(s, "l_seconds_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(s, "l_seconds_sum 0.000001000\n"));
	assert_non_null(strstr(s, "l_seconds_count 1\n"));
	free(s);
}

static void test_family(void **state)
{
	struct metrics_family f;
	struct metrics_buf b = METRICS_BUF_INIT;
	struct metrics_hist *h1, *h2, *h3;
	char *s;

	(void)state;
	assert_int_equal(metrics_family_init(&f, &small), 0);
	metrics_write_family(&b, "e_seconds", "Empty.", &f);
	s = take(&b);
	assert_string_equal(s, "# HELP e_seconds Empty.\n# TYPE e_seconds histogram\n");
	free(s);

	h1 = metrics_family_get(&f, "a", "t=\"a\"");
	h2 = metrics_family_get(&f, "b", "t=\"b\"");
	h3 = metrics_family_get(&f, "a", "t=\"a\"");
	assert_non_null(h1);
	assert_ptr_equal(h1, h3);
	assert_ptr_not_equal(h1, h2);
	metrics_hist_observe(h1, 50);
	metrics_write_family(&b, "e_seconds", "E.", &f);
	s = take(&b);
	/* Series in order of first use. */
	assert_true(strstr(s, "e_seconds_count{t=\"a\"} 1") <
		    strstr(s, "e_seconds_count{t=\"b\"} 0"));
	assert_non_null(strstr(s, "e_seconds_bucket{t=\"a\",le=\"0.1\"} 1\n"));
	free(s);
	metrics_family_put(&f, h1);
	metrics_family_put(&f, h2);
	metrics_family_put(&f, h3);
	metrics_family_release(&f);
}

static bool keep_only_b(const char *key, void *arg)
{
	(void)arg;
	return !strcmp(key, "b");
}

/* A series whose key is gone is dropped once no handle is held on it. */
static void test_family_prune(void **state)
{
	struct metrics_family f;
	struct metrics_buf b = METRICS_BUF_INIT;
	struct metrics_hist *ha, *hb;
	char *s;

	(void)state;
	assert_int_equal(metrics_family_init(&f, &small), 0);
	ha = metrics_family_get(&f, "a", "t=\"a\"");
	hb = metrics_family_get(&f, "b", "t=\"b\"");
	metrics_family_put(&f, hb);
	/* "a" is held: stays while its open file lives. */
	assert_int_equal(metrics_family_prune(&f, keep_only_b, NULL), 0);
	metrics_hist_observe(ha, 5);
	metrics_family_put(&f, ha);
	assert_int_equal(metrics_family_prune(&f, keep_only_b, NULL), 1);
	metrics_write_family(&b, "p_seconds", "P.", &f);
	s = take(&b);
	assert_null(strstr(s, "t=\"a\""));
	assert_non_null(strstr(s, "p_seconds_count{t=\"b\"} 0\n"));
	free(s);
	/* A new series for "a" starts from zero. */
	ha = metrics_family_get(&f, "a", "t=\"a\"");
	metrics_write_family(&b, "p_seconds", "P.", &f);
	s = take(&b);
	assert_non_null(strstr(s, "p_seconds_count{t=\"a\"} 0\n"));
	free(s);
	metrics_family_put(&f, ha);
	metrics_family_release(&f);
}

/* Past the cap, new label sets share the overflow series, which pruning keeps. */
static void test_family_cap(void **state)
{
	struct metrics_family f;
	struct metrics_buf b = METRICS_BUF_INIT;
	struct metrics_hist *h[5];
	char key[8], lab[16], *s;

	(void)state;
	assert_int_equal(metrics_family_init(&f, &small), 0);
	assert_int_equal(metrics_family_set_cap(&f, 2, "overflow=\"true\""), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "%d", i);
		snprintf(lab, sizeof(lab), "t=\"%d\"", i);
		h[i] = metrics_family_get(&f, key, lab);
		assert_non_null(h[i]);
		metrics_hist_observe(h[i], 5);
	}
	assert_ptr_not_equal(h[0], h[1]);
	assert_ptr_equal(h[2], h[3]);
	assert_ptr_equal(h[2], h[4]);
	assert_int_equal(metrics_family_folded(&f), 3);
	/* An existing label set still gets its own series. */
	assert_ptr_equal(metrics_family_get(&f, "0", "t=\"0\""), h[0]);
	metrics_family_put(&f, h[0]);
	metrics_write_family(&b, "c_seconds", "C.", &f);
	s = take(&b);
	assert_non_null(strstr(s, "c_seconds_count{overflow=\"true\"} 3\n"));
	assert_null(strstr(s, "t=\"2\""));
	free(s);
	for (int i = 0; i < 5; i++)
		metrics_family_put(&f, h[i]);
	assert_int_equal(metrics_family_prune(&f, keep_only_b, NULL), 2);
	metrics_write_family(&b, "c_seconds", "C.", &f);
	s = take(&b);
	assert_non_null(strstr(s, "c_seconds_count{overflow=\"true\"} 3\n"));
	free(s);
	metrics_family_release(&f);
}

/* The process_* metrics are there and plausible. */
static void test_process(void **state)
{
	struct metrics_buf b = METRICS_BUF_INIT;
	unsigned long long rss = 0, fds = 0;
	double start = 0;
	const char *p;
	char *s;

	(void)state;
	metrics_write_process(&b);
	s = take(&b);
	p = strstr(s, "\nprocess_resident_memory_bytes ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "\nprocess_resident_memory_bytes %llu", &rss), 1);
	assert_true(rss > 100000);
	p = strstr(s, "\nprocess_open_fds ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "\nprocess_open_fds %llu", &fds), 1);
	assert_true(fds >= 3);
	p = strstr(s, "\nprocess_start_time_seconds ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "\nprocess_start_time_seconds %lf", &start), 1);
	/* Started within the last day, not in the future. */
	assert_true(start > (double)time(NULL) - 86400 && start <= (double)time(NULL) + 1);
	assert_non_null(strstr(s, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(s, "\nprocess_max_fds "));
	free(s);
}

#define THREADS	   4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
	struct metrics_hist *h = arg;

	for (int i = 0; i < PER_THREAD; i++)
		metrics_hist_observe(h, (uint64_t)(i % 2000));
	return NULL;
}

static void test_hist_threads(void **state)
{
	pthread_t th[THREADS];
	struct metrics_hist h;
	uint64_t total = 0;

	(void)state;
	metrics_hist_init(&h, &small);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &h), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i <= small.n; i++)
		total += h.bucket[i];
	assert_int_equal(total, THREADS * PER_THREAD);
	/* sum of i % 2000 over 100000 values = 50 * (0 + ... + 1999) */
	assert_int_equal(h.sum, (uint64_t)THREADS * 50 * 1999 * 2000 / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows),    cmocka_unit_test(test_empty_take),
		cmocka_unit_test(test_label_escape), cmocka_unit_test(test_counter_and_lines),
		cmocka_unit_test(test_hist_buckets), cmocka_unit_test(test_hist_no_labels),
		cmocka_unit_test(test_family),	     cmocka_unit_test(test_family_prune),
		cmocka_unit_test(test_family_cap),   cmocka_unit_test(test_process),
		cmocka_unit_test(test_hist_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
