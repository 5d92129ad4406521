/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void metrics_buf_label_value(struct metrics_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			metrics_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			metrics_buf_printf(b, "\\n");
		else
			metrics_buf_printf(b, "%c", *s);
	}
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
	char *labels;
	struct metrics_hist h;
};

int metrics_family_init(struct metrics_family *f, const struct metrics_bounds *bounds)
{
	f->bounds = bounds;
	f->head = NULL;
	return -pthread_mutex_init(&f->lock, NULL);
}

void metrics_family_release(struct metrics_family *f)
{
	struct metrics_series *s = f->head, *next;

	for (; s; s = next) {
		next = s->next;
		free(s->labels);
		free(s);
	}
	f->head = NULL;
	pthread_mutex_destroy(&f->lock);
}

struct metrics_hist *metrics_family_get(struct metrics_family *f, const char *labels)
{
	struct metrics_series *s, **pp;

	pthread_mutex_lock(&f->lock);
	/* Appended at the tail: series are written in the order they appeared. */
	for (pp = &f->head; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->labels, labels)) {
			s = *pp;
			goto out;
		}
	}
	s = calloc(1, sizeof(*s));
	if (s)
		s->labels = strdup(labels);
	if (!s || !s->labels) {
		free(s);
		s = NULL;
		goto out;
	}
	metrics_hist_init(&s->h, f->bounds);
	*pp = s;
out:
	pthread_mutex_unlock(&f->lock);
	return s ? &s->h : NULL;
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
