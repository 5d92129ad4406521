/* autosize.c - a cache budget that follows the machine's memory (-o cache_size=auto).
 *
 * At mount the budget is a quarter of MemAvailable, between CACHE_AUTO_MIN and
 * CACHE_AUTO_MAX.  A thread then samples the memory pressure once a period:
 * the kernel's PSI (/proc/pressure/memory, "some avg10", the share of the last
 * 10 s in which some task stalled on memory) and MemAvailable.  Under pressure
 * it halves the budget (never below CACHE_AUTO_MIN), which cache_set_budget()
 * turns into evictions at once; when pressure is gone it grows back by an
 * eighth of the mount-time budget per period, never above it.  The policy is
 * the pure function cache_auto_next(), so tests drive it without a machine.
 *
 * Lock order: a->lock is a leaf guarding a->stop; the thread calls
 * cache_set_budget() without holding it.
 */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cache_autosize {
	struct cache *c;
	size_t base;	 /* the mount-time budget, the ceiling; constant */
	unsigned period; /* milliseconds between samples; constant */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled by cache_auto_stop() */
	bool stop;	     /* protected by lock */
	size_t cur;	     /* the budget last set; the thread's own */
};

/* Reads MemAvailable and MemTotal (bytes).  Returns 0 or -errno / -EINVAL. */
static int read_meminfo(uint64_t *avail, uint64_t *total)
{
	char line[128];
	unsigned long long v;
	int got = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -errno;
	while (got != 3 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
			*avail = v * 1024;
			got |= 1;
		} else if (sscanf(line, "MemTotal: %llu kB", &v) == 1) {
			*total = v * 1024;
			got |= 2;
		}
	}
	fclose(f);
	return got == 3 ? 0 : -EINVAL;
}

/* Reads "some avg10" of /proc/pressure/memory.  Returns 0, or -errno when the
 * kernel has no PSI (then MemAvailable alone decides). */
static int read_psi(double *avg10)
{
	char line[256];
	int ret = -EINVAL;
	FILE *f = fopen("/proc/pressure/memory", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "some avg10=%lf", avg10) == 1) {
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

int cache_auto_sample(struct cache_pressure *p)
{
	int ret;

	memset(p, 0, sizeof(*p));
	ret = read_meminfo(&p->avail, &p->total);
	if (ret)
		return ret;
	p->have_psi = read_psi(&p->some_avg10) == 0;
	return 0;
}

size_t cache_auto_budget(const struct cache_pressure *p)
{
	uint64_t b = p->avail / 4;

	if (b < CACHE_AUTO_MIN)
		b = CACHE_AUTO_MIN;
	if (b > CACHE_AUTO_MAX)
		b = CACHE_AUTO_MAX;
	return (size_t)b;
}

size_t cache_auto_next(size_t cur, size_t base, const struct cache_pressure *p)
{
	bool low = p->avail < p->total / 20;
	bool pressure = low || (p->have_psi && p->some_avg10 >= CACHE_AUTO_PSI_HIGH);
	bool calm =
		p->avail > p->total / 10 && (!p->have_psi || p->some_avg10 < CACHE_AUTO_PSI_LOW);
	size_t step = base / 8 ? base / 8 : 1;

	if (pressure)
		return cur / 2 > CACHE_AUTO_MIN ? cur / 2 : CACHE_AUTO_MIN;
	if (calm && cur < base)
		return base - cur > step ? cur + step : base;
	return cur;
}

static void *auto_thread(void *arg)
{
	struct cache_autosize *a = arg;
	struct cache_pressure p;
	struct timespec ts;

	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += a->period / 1000;
		ts.tv_nsec += (long)(a->period % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!a->stop && pthread_cond_timedwait(&a->cond, &a->lock, &ts) != ETIMEDOUT)
			;
		if (a->stop)
			break;
		pthread_mutex_unlock(&a->lock);
		if (cache_auto_sample(&p) == 0) {
			size_t next = cache_auto_next(a->cur, a->base, &p);

			if (next != a->cur) {
				a->cur = next;
				cache_set_budget(a->c, next);
			}
		}
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int cache_auto_start(struct cache *c, size_t base, unsigned period_ms, struct cache_autosize **out)
{
	struct cache_autosize *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;
	int ret;

	if (!a)
		return -ENOMEM;
	a->c = c;
	a->base = a->cur = base;
	a->period = period_ms ? period_ms : 1000;
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&a->thread, NULL, auto_thread, a);
	if (ret) {
		pthread_cond_destroy(&a->cond);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void cache_auto_stop(struct cache_autosize *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
