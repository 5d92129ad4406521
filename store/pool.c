/* pool.c - a fixed set of worker threads that run one job at a time (store_pool_*).
 *
 * A job is n independent indices: store_pool_run() hands out 0..n-1 to the
 * calling thread (worker 0) and the helper threads (workers 1..nthreads-1) and
 * returns when all are done, with the error of the lowest failing index, so a
 * job fails the same way whatever the threads' timing.  Import uses it to encode
 * and to check the chunks of a batch on all cores.  One caller at a time.
 *
 * Lock order: p->lock only.  Every field below "the current job" is protected by
 * p->lock; helpers sleep on p->work until p->gen moves, the caller on p->idle
 * until done == n.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "store_internal.h"

struct store_pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* helpers wait here for a new job */
	pthread_cond_t idle; /* the caller waits here for the job to finish */
	pthread_t *tids;
	unsigned nthreads; /* workers, the calling thread included */
	unsigned started;  /* helper threads running */
	/* the current job, all protected by lock */
	bool quit;
	uint64_t gen;
	store_pool_fn fn;
	void *arg;
	unsigned n, next, done;
	int err;
	unsigned err_idx;
};

/* Runs the current job's indices until none is left.  Called with p->lock held. */
static void pool_work(struct store_pool *p, unsigned id)
{
	while (p->next < p->n) {
		unsigned i = p->next++;
		int r;

		pthread_mutex_unlock(&p->lock);
		r = p->fn(p->arg, id, i);
		pthread_mutex_lock(&p->lock);
		if (r < 0 && (p->err == 0 || i < p->err_idx)) {
			p->err = r;
			p->err_idx = i;
		}
		if (++p->done == p->n)
			pthread_cond_broadcast(&p->idle);
	}
}

struct helper_arg {
	struct store_pool *p;
	unsigned id;
};

static void *pool_helper(void *a)
{
	struct helper_arg *ha = a;
	struct store_pool *p = ha->p;
	unsigned id = ha->id;
	uint64_t seen = 0;

	free(ha);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->quit && p->gen == seen)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->quit)
			break;
		seen = p->gen;
		pool_work(p, id);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void store_pool_free(struct store_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->tids[i], NULL);
	free(p->tids);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int store_pool_new(unsigned nthreads, struct store_pool **out)
{
	struct store_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->nthreads = nthreads;
	p->tids = calloc(nthreads, sizeof(*p->tids));
	if (!p->tids)
		goto nomem;
	for (unsigned i = 1; i < nthreads; i++) {
		struct helper_arg *ha = malloc(sizeof(*ha));
		int r;

		if (!ha)
			goto nomem;
		ha->p = p;
		ha->id = i;
		r = pthread_create(&p->tids[p->started], NULL, pool_helper, ha);
		if (r) {
			free(ha);
			store_pool_free(p);
			return -r;
		}
		p->started++;
	}
	*out = p;
	return 0;
nomem:
	store_pool_free(p);
	return -ENOMEM;
}

int store_pool_run(struct store_pool *p, store_pool_fn fn, void *arg, unsigned n)
{
	int err;

	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	p->next = 0;
	p->done = 0;
	p->err = 0;
	p->gen++;
	pthread_cond_broadcast(&p->work);
	pool_work(p, 0);
	while (p->done < p->n)
		pthread_cond_wait(&p->idle, &p->lock);
	err = p->err;
	pthread_mutex_unlock(&p->lock);
	return err;
}
