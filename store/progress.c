/* progress.c - the status line of long store operations (import, export, verify).
 *
 * One line on stderr, rewritten in place at most 4 times a second: files and
 * bytes done out of the total, rate and ETA.  Not thread-safe: one thread updates
 * and shows a struct store_progress.
 */
#include "store_internal.h"

#include <stdio.h>
#include <time.h>

double store_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void store_progress_start(struct store_progress *pr, const char *verb, bool on)
{
	*pr = (struct store_progress){.on = on, .verb = verb, .start = store_now()};
}

void store_progress_show(struct store_progress *pr, bool force)
{
	double t = store_now(), el = t - pr->start, rate, eta;

	if (!pr->on || (!force && t - pr->last < 0.25))
		return;
	pr->last = t;
	rate = el > 0 ? (double)pr->bytes_done / el : 0;
	eta = rate > 0 && pr->bytes_total > pr->bytes_done
		      ? (double)(pr->bytes_total - pr->bytes_done) / rate
		      : 0;
	fprintf(stderr, "\r%s: %llu/%llu files, %.1f/%.1f MiB, %.1f MB/s, ETA %d:%02d   ", pr->verb,
		(unsigned long long)pr->files_done, (unsigned long long)pr->files_total,
		(double)pr->bytes_done / 1048576.0, (double)pr->bytes_total / 1048576.0, rate / 1e6,
		(int)(eta / 60), (int)eta % 60);
	pr->shown = true;
}

void store_progress_end(struct store_progress *pr)
{
	if (pr->on && pr->shown)
		fprintf(stderr, "\r\033[K");
}
