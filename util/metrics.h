/* metrics.h - counters, gauges and fixed-bucket histograms, and a writer for the
 * Prometheus text exposition format (version 0.0.4).
 *
 * The hot path is lock-free: metrics_counter_add() and metrics_hist_observe() are
 * relaxed atomic adds on one or two 64-bit words, callable from any thread.
 * Values are integers: a histogram observes in integer units (nanoseconds, say)
 * and writes them scaled (by 1e-9 to seconds).  A writer pass reads each word
 * atomically but not all at one instant, as Prometheus clients do.
 * Labelled histograms live in a struct metrics_family: finding or adding a label
 * set takes the family's mutex (once per open file, say), observing does not.
 */
#ifndef FAISSFS_UTIL_METRICS_H
#define FAISSFS_UTIL_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* --- a growable text buffer ---------------------------------------------------- */

struct metrics_buf {
	char *p;    /* NUL-terminated, owned; NULL until the first append */
	size_t len; /* bytes before the NUL */
	size_t cap;
	int err; /* -ENOMEM once an append failed; later appends do nothing */
};

#define METRICS_BUF_INIT                                                                           \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

/* Appends printf-style text.  On allocation failure sets b->err (checked once at
 * the end by the caller). */
void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void metrics_buf_vprintf(struct metrics_buf *b, const char *fmt, va_list ap);

/* Hands the text to the caller (who frees it with free()); the buffer is empty
 * afterwards.  Returns the text (never NULL unless b->err: then NULL and the
 * buffer is released). */
char *metrics_buf_take(struct metrics_buf *b, size_t *len);
void metrics_buf_release(struct metrics_buf *b);

/* Appends @s as the inside of a label value, and as a JSON string (quoted):
 * escaped, and any invalid UTF-8 byte written as U+FFFD (util/text.h). */
void metrics_buf_label_value(struct metrics_buf *b, const char *s);
void metrics_buf_json_str(struct metrics_buf *b, const char *s);

/* --- counters ---------------------------------------------------------------------- */

struct metrics_counter {
	_Atomic uint64_t v;
};

static inline void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline uint64_t metrics_counter_get(const struct metrics_counter *c)
{
	return atomic_load_explicit(&c->v, memory_order_relaxed);
}

/* --- histograms ------------------------------------------------------------------- */

#define METRICS_HIST_MAX_BOUNDS 24

/* Upper bounds of the buckets, in observation units, strictly increasing; the
 * +Inf bucket is implied.  Borrowed by every histogram made with it: keep it
 * alive (a static const array) as long as they live.  @scale converts units to
 * the written value (1e-9 for nanoseconds written as seconds). */
struct metrics_bounds {
	unsigned n;
	const uint64_t *le;
	double scale;
};

/* Bounds for durations in nanoseconds written as seconds: 10 us .. 10 s by
 * factors of about 2.5 (the Prometheus client default set, extended down). */
extern const struct metrics_bounds metrics_bounds_latency;
/* 1 ms .. 5 min: loading whole index files. */
extern const struct metrics_bounds metrics_bounds_load;

struct metrics_hist {
	const struct metrics_bounds *bounds;		      /* immutable */
	_Atomic uint64_t bucket[METRICS_HIST_MAX_BOUNDS + 1]; /* non-cumulative; last: +Inf */
	_Atomic uint64_t sum; /* in units; wraps after 584 years of nanoseconds */
};

/* Sets up an embedded histogram: all zero, with @bounds (n <= METRICS_HIST_MAX_BOUNDS). */
void metrics_hist_init(struct metrics_hist *h, const struct metrics_bounds *bounds);

/* Records one observation of @v units.  Lock-free. */
void metrics_hist_observe(struct metrics_hist *h, uint64_t v);

/* --- labelled histogram families ------------------------------------------------ */

struct metrics_series;

/* A histogram per label set.  Each series carries a key (what it is about: a
 * tenant, say) so that series of things gone can be dropped, and counts the
 * handles held on it, so a series in use is never freed.  Past max_series label
 * sets, new ones share one overflow series: a scrape stays bounded whatever
 * names appear. */
struct metrics_family {
	const struct metrics_bounds *bounds; /* immutable */
	pthread_mutex_t lock;
	struct metrics_series *head; /* protected by lock */
	unsigned n;		     /* series in the list; protected by lock */
	unsigned max_series;	     /* 0: no cap; protected by lock */
	char *overflow_labels;	     /* owned; protected by lock */
	uint64_t folded;	     /* gets sent to the overflow series; protected by lock */
};

int metrics_family_init(struct metrics_family *f, const struct metrics_bounds *bounds);
/* Frees every series: no histogram of the family may be used afterwards. */
void metrics_family_release(struct metrics_family *f);

/* Caps the family at @max_series label sets (0: none); past it, new label sets
 * share the series labelled @overflow (copied).  Returns 0 or -ENOMEM. */
int metrics_family_set_cap(struct metrics_family *f, unsigned max_series, const char *overflow);

/* The histogram for label set @labels (already formatted and escaped, e.g.
 * `tenant="a",type="IndexFlatL2"`) about @key, made on first use.  Valid until
 * metrics_family_put(), which every get needs.  Returns NULL only when out of
 * memory. */
struct metrics_hist *metrics_family_get(struct metrics_family *f, const char *key,
					const char *labels);
void metrics_family_put(struct metrics_family *f, struct metrics_hist *h); /* NULL is fine */

/* Drops every series no handle is held on whose key @keep rejects (called
 * with the family's lock held: it must not use the family).  The overflow
 * series stays.  Returns how many were dropped. */
unsigned metrics_family_prune(struct metrics_family *f, bool (*keep)(const char *key, void *arg),
			      void *arg);

/* How many gets went to the overflow series so far. */
uint64_t metrics_family_folded(struct metrics_family *f);

/* --- writing the exposition format ----------------------------------------------- */

/* "# HELP name help\n# TYPE name type\n"; @type is "counter", "gauge" or "histogram". */
void metrics_write_header(struct metrics_buf *b, const char *name, const char *type,
			  const char *help);

/* One sample line: name{labels} value.  @labels may be NULL or "". */
void metrics_write_u64(struct metrics_buf *b, const char *name, const char *labels, uint64_t v);
void metrics_write_double(struct metrics_buf *b, const char *name, const char *labels, double v);

/* The _bucket (cumulative, with le="..."), _sum and _count lines of @h. */
void metrics_write_hist(struct metrics_buf *b, const char *name, const char *labels,
			const struct metrics_hist *h);

/* Header and every series of @f (none: the header alone, which is valid). */
void metrics_write_family(struct metrics_buf *b, const char *name, const char *help,
			  struct metrics_family *f);

/* The process_* metrics Prometheus clients export: CPU seconds, resident and
 * virtual memory, open and maximum file descriptors, start time (from /proc;
 * a metric that cannot be read is left out). */
void metrics_write_process(struct metrics_buf *b);

#endif
