/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "text.h"

/* --- buffer ------------------------------------------------------------------------ */

void metrics_buf_vprintf(struct metrics_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	if (b->err)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if (!b->p || b->len + (size_t)n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		char *np;

		while (nc < b->len + (size_t)n + 1)
			nc *= 2;
		np = realloc(b->p, nc);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = nc;
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	metrics_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *metrics_buf_take(struct metrics_buf *b, size_t *len)
{
	char *p;

	if (b->err) {
		metrics_buf_release(b);
		return NULL;
	}
	if (!b->p) {
		p = calloc(1, 1);
		if (!p)
			return NULL;
		*len = 0;
		return p;
	}
	p = b->p;
	*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void metrics_buf_release(struct metrics_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

/* A text_sink appending to a struct metrics_buf. */
static void buf_sink(void *arg, const char *p, size_t n)
{
	metrics_buf_printf(arg, "%.*s", (int)n, p);
}

void metrics_buf_label_value(struct metrics_buf *b, const char *s)
{
	text_label(s, buf_sink, b);
}

void metrics_buf_json_str(struct metrics_buf *b, const char *s)
{
	text_json(s, buf_sink, b);
}

/* --- histograms ------------------------------------------------------------------- */

static const uint64_t latency_le[] = {
	10000ull,      25000ull,      50000ull,	     100000ull,	     250000ull,
	500000ull,     1000000ull,    2500000ull,    5000000ull,     10000000ull,
	25000000ull,   50000000ull,   100000000ull,  250000000ull,   500000000ull,
	1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};
const struct metrics_bounds metrics_bounds_latency = {
	sizeof(latency_le) / sizeof(latency_le[0]),
	latency_le,
	1e-9,
};

static const uint64_t load_le[] = {
	1000000ull,	 2500000ull,	  5000000ull,	  10000000ull,	  25000000ull,
	50000000ull,	 100000000ull,	  250000000ull,	  500000000ull,	  1000000000ull,
	2500000000ull,	 5000000000ull,	  10000000000ull, 30000000000ull, 60000000000ull,
	120000000000ull, 300000000000ull,
};
const struct metrics_bounds metrics_bounds_load = {
	sizeof(load_le) / sizeof(load_le[0]),
	load_le,
	1e-9,
};

void metrics_hist_init(struct metrics_hist *h, const struct metrics_bounds *bounds)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
}

void metrics_hist_observe(struct metrics_hist *h, uint64_t v)
{
	unsigned i = 0, n = h->bounds->n;

	/* A linear scan of <= 24 bounds: cheaper than the atomics below. */
	while (i < n && v > h->bounds->le[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

/* --- families ------------------------------------------------------------------------ */

struct metrics_series {
	struct metrics_series *next;
	char *key;    /* NULL for the overflow series */
	char *labels; /* formatted, immutable */
	unsigned users; /* handles from metrics_family_get() not yet put */
	struct metrics_hist h;
};

int metrics_family_init(struct metrics_family *f, const struct metrics_bounds *bounds)
{
	memset(f, 0, sizeof(*f));
	f->bounds = bounds;
	return -pthread_mutex_init(&f->lock, NULL);
}

static void series_free(struct metrics_series *s)
{
	free(s->key);
	free(s->labels);
	free(s);
}

void metrics_family_release(struct metrics_family *f)
{
	struct metrics_series *s = f->head, *next;

	for (; s; s = next) {
		next = s->next;
		series_free(s);
	}
	f->head = NULL;
	free(f->overflow_labels);
	f->overflow_labels = NULL;
	pthread_mutex_destroy(&f->lock);
}

int metrics_family_set_cap(struct metrics_family *f, unsigned max_series, const char *overflow)
{
	char *o = strdup(overflow);

	if (!o)
		return -ENOMEM;
	pthread_mutex_lock(&f->lock);
	free(f->overflow_labels);
	f->overflow_labels = o;
	f->max_series = max_series;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* A new series at the tail (written in the order they appeared); f->lock held. */
static struct metrics_series *series_add(struct metrics_family *f, struct metrics_series **tail,
					 const char *key, const char *labels)
{
	struct metrics_series *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->labels = strdup(labels);
	s->key = key ? strdup(key) : NULL;
	if (!s->labels || (key && !s->key)) {
		series_free(s);
		return NULL;
	}
	metrics_hist_init(&s->h, f->bounds);
	*tail = s;
	f->n++;
	return s;
}

struct metrics_hist *metrics_family_get(struct metrics_family *f, const char *key,
					const char *labels)
{
	struct metrics_series *s = NULL, *over = NULL, **pp;

	pthread_mutex_lock(&f->lock);
	for (pp = &f->head; *pp; pp = &(*pp)->next) {
		if (!(*pp)->key)
			over = *pp;
		else if (!strcmp((*pp)->labels, labels)) {
			s = *pp;
			goto found;
		}
	}
	if (f->max_series && f->n - (over != NULL) >= f->max_series) {
		/* Past the cap: every new label set shares one series. */
		f->folded++;
		s = over ? over : series_add(f, pp, NULL, f->overflow_labels);
	} else
		s = series_add(f, pp, key, labels);
found:
	if (s)
		s->users++;
	pthread_mutex_unlock(&f->lock);
	return s ? &s->h : NULL;
}

void metrics_family_put(struct metrics_family *f, struct metrics_hist *h)
{
	struct metrics_series *s;

	if (!h)
		return;
	s = (struct metrics_series *)((char *)h - offsetof(struct metrics_series, h));
	pthread_mutex_lock(&f->lock);
	s->users--;
	pthread_mutex_unlock(&f->lock);
}

unsigned metrics_family_prune(struct metrics_family *f, bool (*keep)(const char *key, void *arg),
			      void *arg)
{
	struct metrics_series **pp, *s;
	unsigned dropped = 0;

	pthread_mutex_lock(&f->lock);
	for (pp = &f->head; (s = *pp);) {
		if (s->key && !s->users && !keep(s->key, arg)) {
			*pp = s->next;
			series_free(s);
			f->n--;
			dropped++;
			continue;
		}
		pp = &s->next;
	}
	pthread_mutex_unlock(&f->lock);
	return dropped;
}

uint64_t metrics_family_folded(struct metrics_family *f)
{
	uint64_t n;

	pthread_mutex_lock(&f->lock);
	n = f->folded;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* --- writer ------------------------------------------------------------------------- */

void metrics_write_header(struct metrics_buf *b, const char *name, const char *type,
			  const char *help)
{
	metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_name(struct metrics_buf *b, const char *name, const char *labels,
		       const char *extra)
{
	bool any = labels && *labels;

	if (!any && !extra) {
		metrics_buf_printf(b, "%s ", name);
		return;
	}
	metrics_buf_printf(b, "%s{%s%s%s} ", name, any ? labels : "", any && extra ? "," : "",
			   extra ? extra : "");
}

void metrics_write_u64(struct metrics_buf *b, const char *name, const char *labels, uint64_t v)
{
	write_name(b, name, labels, NULL);
	metrics_buf_printf(b, "%llu\n", (unsigned long long)v);
}

void metrics_write_double(struct metrics_buf *b, const char *name, const char *labels, double v)
{
	write_name(b, name, labels, NULL);
	metrics_buf_printf(b, "%.17g\n", v);
}

void metrics_write_hist(struct metrics_buf *b, const char *name, const char *labels,
			const struct metrics_hist *h)
{
	const struct metrics_bounds *bd = h->bounds;
	uint64_t cum = 0, count, sum;
	char full[128], le[48];

	snprintf(full, sizeof(full), "%s_bucket", name);
	for (unsigned i = 0; i <= bd->n; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		if (i < bd->n)
			snprintf(le, sizeof(le), "le=\"%g\"", (double)bd->le[i] * bd->scale);
		else
			snprintf(le, sizeof(le), "le=\"+Inf\"");
		write_name(b, full, labels, le);
		metrics_buf_printf(b, "%llu\n", (unsigned long long)cum);
	}
	/* _count is the +Inf bucket, so the two always agree; _sum, read after the
	 * buckets, may already include an observation in flight. */
	count = cum;
	sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
	snprintf(full, sizeof(full), "%s_sum", name);
	write_name(b, full, labels, NULL);
	if (bd->scale == 1e-9) /* nanoseconds: exact decimal seconds */
		metrics_buf_printf(b, "%llu.%09llu\n", (unsigned long long)(sum / 1000000000u),
				   (unsigned long long)(sum % 1000000000u));
	else
		metrics_buf_printf(b, "%.17g\n", (double)sum * bd->scale);
	snprintf(full, sizeof(full), "%s_count", name);
	metrics_write_u64(b, full, labels, count);
}

void metrics_write_family(struct metrics_buf *b, const char *name, const char *help,
			  struct metrics_family *f)
{
	metrics_write_header(b, name, "histogram", help);
	pthread_mutex_lock(&f->lock);
	for (struct metrics_series *s = f->head; s; s = s->next)
		metrics_write_hist(b, name, s->labels, &s->h);
	pthread_mutex_unlock(&f->lock);
}

/* --- the process ------------------------------------------------------------------ */

/* Fields 14.. of /proc/self/stat (after the command in parentheses, which may
 * hold spaces): utime, stime in ticks, starttime in ticks since boot, vsize in
 * bytes, rss in pages.  Returns 0 or -errno. */
static int proc_stat(unsigned long long *ticks, unsigned long long *start, unsigned long long *vsize,
		     long long *rss)
{
	char buf[1024], *p;
	unsigned long long ut, st;
	size_t n;
	FILE *f = fopen("/proc/self/stat", "re");

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice threads itrealvalue starttime
	 * vsize rss */
	if (!p || sscanf(p + 1,
			 " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
			 "%*d %*d %llu %llu %lld",
			 &ut, &st, start, vsize, rss) != 5)
		return -EINVAL;
	*ticks = ut + st;
	return 0;
}

/* Seconds since the epoch of the boot ("btime" in /proc/stat), or 0. */
static unsigned long long boot_time(void)
{
	char line[256];
	unsigned long long bt = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

void metrics_write_process(struct metrics_buf *b)
{
	unsigned long long ticks, start, vsize;
	long long rss;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds = open_fds();
	struct rlimit rl;

	if (proc_stat(&ticks, &start, &vsize, &rss) == 0 && hz > 0) {
		metrics_write_header(b, "process_cpu_seconds_total", "counter",
				     "Total user and system CPU time spent in seconds.");
		metrics_write_double(b, "process_cpu_seconds_total", NULL,
				     (double)ticks / (double)hz);
		metrics_write_header(b, "process_resident_memory_bytes", "gauge",
				     "Resident memory size in bytes.");
		metrics_write_u64(b, "process_resident_memory_bytes", NULL,
				  (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)page);
		metrics_write_header(b, "process_virtual_memory_bytes", "gauge",
				     "Virtual memory size in bytes.");
		metrics_write_u64(b, "process_virtual_memory_bytes", NULL, vsize);
		metrics_write_header(b, "process_start_time_seconds", "gauge",
				     "Start time of the process since unix epoch in seconds.");
		metrics_write_double(b, "process_start_time_seconds", NULL,
				     (double)boot_time() + (double)start / (double)hz);
	}
	if (fds >= 0) {
		metrics_write_header(b, "process_open_fds", "gauge",
				     "Number of open file descriptors.");
		metrics_write_u64(b, "process_open_fds", NULL, (uint64_t)fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		metrics_write_header(b, "process_max_fds", "gauge",
				     "Maximum number of open file descriptors.");
		metrics_write_u64(b, "process_max_fds", NULL, (uint64_t)rl.rlim_cur);
	}
}
