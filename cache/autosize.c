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
 * A process in a memory cgroup (a systemd unit with MemoryHigh= or MemoryMax=, a
 * container) has less memory than the machine: the sample then takes the tightest
 * limit of its cgroup and every ancestor (v2: memory.high and memory.max; v1:
 * memory.limit_in_bytes) as the total, and that limit less what the cgroup uses,
 * not counting inactive page cache (reclaimable), as the available memory, when
 * lower than the machine's; on cgroup v2 the cgroup's own memory.pressure counts too
 * (the larger of it and the machine's).  Looked for at the usual mount points:
 * /sys/fs/cgroup (v2), /sys/fs/cgroup/unified (v2 of a hybrid setup) and
 * /sys/fs/cgroup/memory (v1); a cgroup mounted elsewhere is not seen.
 *
 * Lock order: a->lock is a leaf guarding a->stop; the thread calls
 * cache_set_budget() without holding it.
 */
#include "cache.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* @root @rel as one path in @buf ("" root: the real filesystem). */
static const char *at(char *buf, size_t size, const char *root, const char *rel)
{
	snprintf(buf, size, "%s%s", root, rel);
	return buf;
}

/* Reads MemAvailable and MemTotal (bytes).  Returns 0 or -errno / -EINVAL. */
static int read_meminfo(const char *root, uint64_t *avail, uint64_t *total)
{
	char line[128], path[PATH_MAX];
	unsigned long long v;
	int got = 0;
	FILE *f = fopen(at(path, sizeof(path), root, "/proc/meminfo"), "re");

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

/* Reads "some avg10" of a PSI file (/proc/pressure/memory, a cgroup's
 * memory.pressure).  Returns 0, or -errno when there is none (then MemAvailable
 * alone decides). */
static int read_psi(const char *path, double *avg10)
{
	char line[256];
	int ret = -EINVAL;
	FILE *f = fopen(path, "re");

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

/* Reads the number in file @dir/@name ("max", as cgroup v2 writes no limit, and v1's
 * huge "no limit" values give UINT64_MAX).  Returns 0 or -errno / -EINVAL. */
static int read_u64(const char *dir, const char *name, uint64_t *out)
{
	char path[PATH_MAX], buf[64];
	unsigned long long v;
	char *end;
	FILE *f;
	int ret = -EINVAL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		errno = 0;
		v = strtoull(buf, &end, 10);
		if (!strcmp(buf, "max")) {
			*out = UINT64_MAX;
			ret = 0;
		} else if (end != buf && !*end && !errno) {
			*out = v >= (1ull << 62) ? UINT64_MAX : v;
			ret = 0;
		}
	}
	fclose(f);
	return ret;
}

/* The value of key @key in @dir/memory.stat, or 0. */
static uint64_t read_stat(const char *dir, const char *key)
{
	char path[PATH_MAX], line[256], name[64];
	unsigned long long v;
	uint64_t ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %llu", name, &v) == 2 && !strcmp(name, key)) {
			ret = v;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* Folds the limit of cgroup directory @dir into @p: total is at most the limit,
 * avail at most the limit less the usage not counting inactive page cache. */
static void fold_limit(struct cache_pressure *p, const char *dir, bool v2)
{
	uint64_t lim = UINT64_MAX, high = UINT64_MAX, use, inactive, free_;

	if (v2) {
		bool have_max = read_u64(dir, "memory.max", &lim) == 0;
		bool have_high = read_u64(dir, "memory.high", &high) == 0;

		if (!have_max && !have_high)
			return;
		if (high < lim)
			lim = high;
	} else if (read_u64(dir, "memory.limit_in_bytes", &lim)) {
		return;
	}
	if (lim == UINT64_MAX)
		return;
	if (read_u64(dir, v2 ? "memory.current" : "memory.usage_in_bytes", &use))
		use = 0;
	inactive = read_stat(dir, v2 ? "inactive_file" : "total_inactive_file");
	use = use > inactive ? use - inactive : 0;
	free_ = lim > use ? lim - use : 0;
	if (!p->cg_limit || lim < p->cg_limit)
		p->cg_limit = lim;
	if (lim < p->total)
		p->total = lim;
	if (free_ < p->avail)
		p->avail = free_;
}

/* Applies the limits of @cg (a path like "/system.slice/x.service") and of each of
 * its ancestors under the hierarchy mounted at @base. */
static void fold_cgroup(struct cache_pressure *p, const char *base, const char *cg, bool v2)
{
	char dir[PATH_MAX];
	size_t blen = strlen(base);
	char *slash;

	if ((size_t)snprintf(dir, sizeof(dir), "%s%s", base, cg) >= sizeof(dir))
		return;
	/* No trailing slash ("/" is the hierarchy's root, base itself). */
	while (strlen(dir) > blen && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = '\0';
	for (;;) {
		fold_limit(p, dir, v2);
		slash = strrchr(dir, '/');
		if (strlen(dir) <= blen || !slash || (size_t)(slash - dir) < blen)
			break;
		*slash = '\0';
	}
}

/* Finds our cgroups in /proc/self/cgroup and folds their limits (and the v2 one's
 * memory pressure) into @p. */
static void sample_cgroup(const char *root, struct cache_pressure *p)
{
	char path[PATH_MAX], base[PATH_MAX], line[PATH_MAX + 64];
	FILE *f = fopen(at(path, sizeof(path), root, "/proc/self/cgroup"), "re");
	double avg10;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *cg;
		bool v2;

		if (!c2)
			continue;
		*c2 = '\0';
		cg = c2 + 1;
		cg[strcspn(cg, "\n")] = '\0';
		v2 = c1[1] == '\0' && !strncmp(line, "0:", 2);
		if (v2) {
			/* Pure v2 at /sys/fs/cgroup, or the v2 half of a hybrid setup. */
			at(base, sizeof(base), root, "/sys/fs/cgroup/cgroup.controllers");
			if (access(base, F_OK) == 0)
				at(base, sizeof(base), root, "/sys/fs/cgroup");
			else
				at(base, sizeof(base), root, "/sys/fs/cgroup/unified");
			fold_cgroup(p, base, cg, true);
			if ((size_t)snprintf(path, sizeof(path), "%s%s/memory.pressure", base,
					     strcmp(cg, "/") ? cg : "") < sizeof(path) &&
			    read_psi(path, &avg10) == 0) {
				if (!p->have_psi || avg10 > p->some_avg10)
					p->some_avg10 = avg10;
				p->have_psi = true;
			}
		} else {
			char *ctl = c1 + 1, *save = NULL;
			bool mem = false;

			for (char *t = strtok_r(ctl, ",", &save); t; t = strtok_r(NULL, ",", &save))
				mem = mem || !strcmp(t, "memory");
			if (mem)
				fold_cgroup(p,
					    at(base, sizeof(base), root, "/sys/fs/cgroup/memory"),
					    cg, false);
		}
	}
	fclose(f);
}

int cache_auto_sample_at(const char *root, struct cache_pressure *p)
{
	char path[PATH_MAX];
	int ret;

	memset(p, 0, sizeof(*p));
	ret = read_meminfo(root, &p->avail, &p->total);
	if (ret)
		return ret;
	p->have_psi = read_psi(at(path, sizeof(path), root, "/proc/pressure/memory"),
			       &p->some_avg10) == 0;
	sample_cgroup(root, p);
	return 0;
}

int cache_auto_sample(struct cache_pressure *p)
{
	return cache_auto_sample_at("", p);
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
