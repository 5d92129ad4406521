/* cache.c - sharded chunk cache with a global byte budget, pins and single-flight fills.
 *
 * The key space is split over CACHE_SHARDS shards by key hash.  Each shard has a
 * mutex, a chained hash table, the eviction policy's lists (cache_internal.h) and a
 * condition variable on which getters wait for a fill in progress.  The byte budget
 * is global: c->bytes is an atomic sum over all shards, and whoever pushes it over
 * the budget (an insert, the last put of an entry, cache_set_budget) evicts.  Each
 * shard publishes the tick of its next victim, so the evictor takes the least recent
 * entry of the whole cache, locking one shard at a time.  See DESIGN.md.
 *
 * Lock order tree (a thread holds at most one lock at any time):
 *
 *   c->shard[i].lock          one per shard, a leaf; never held with another shard's
 *     (s->cond waits on it)   lock, never held across fill(), malloc of a value or free
 *   c->spare_lock             a leaf: the spare entries, taken with no shard lock held
 *
 * Everything else shared is an atomic read without locks: the statistics, c->bytes,
 * c->entries, c->budget, c->clock and the shards' victim hints.  c->bytes and c->entries change
 * only under the lock of the shard whose table gains or loses the entry.
 *
 * Limits: the budget counts value bytes only (not headers or tables); concurrent
 * evictors may each take one victim past the point where the budget was met.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cache/cache.h"
#include "cache/cache_internal.h"

#define CACHE_SHARDS	      16u /* power of two */
#define CACHE_BUCKETS_INITIAL 64u /* per shard, power of two */
#define CACHE_LEVELS	      2u  /* victim levels: cold only, then any */

struct cache_shard {
	pthread_mutex_t lock;
	pthread_cond_t cond;	      /* waits on lock; broadcast when a fill ends */
	struct cache_entry **buckets; /* protected by lock: chains through e->hnext */
	size_t nbuckets;	      /* protected by lock: power of two */
	size_t count;		      /* protected by lock: entries in the table */
	unsigned waiters;	      /* protected by lock: threads waiting on cond */
	struct cache_policy policy;   /* protected by lock */
	/* Tick of the next victim per level, UINT64_MAX if none: written under lock,
	 * read without it by evictors choosing a shard (a hint, checked under lock). */
	_Atomic uint64_t hint[CACHE_LEVELS];
} __attribute__((aligned(64)));

struct cache {
	struct cache_shard shard[CACHE_SHARDS];
	const struct cache_policy_ops *ops; /* immutable */
	_Atomic uint64_t budget;	    /* bytes; read without locks */
	_Atomic uint64_t bytes;		    /* changed under the owning shard's lock */
	_Atomic uint64_t entries;	    /* changed under the owning shard's lock */
	_Atomic uint64_t protected_bytes;   /* changed by the policy under a shard lock */
	/* Bumped on every put and every get: each on its own cache line, away from the
	 * budget and byte count that every put reads. */
	_Alignas(64) _Atomic uint64_t clock; /* source of entry ticks */
	/* Statistics: relaxed atomics, no lock; see struct cache_stats. */
	_Alignas(64) _Atomic uint64_t hits;
	_Atomic uint64_t misses;
	_Atomic uint64_t evictions;
	_Atomic uint64_t fill_errors;
	_Atomic uint64_t prefetches;
	_Atomic uint64_t prefetch_hits;
	_Atomic uint64_t prefetch_unused;

	/* Mapped entries evicted lately, kept for the next insert of the same size
	 * (entry_alloc()): a stack through hnext, of spare_bytes in all. */
	_Alignas(64) pthread_mutex_t spare_lock;
	struct cache_entry *spare; /* protected by spare_lock */
	size_t spare_bytes;	   /* protected by spare_lock */
	_Atomic uint64_t recycled; /* statistics: relaxed */
	_Atomic uint64_t dropped;  /* statistics: relaxed */
};

/* A 64-bit mix of the key (the finaliser of MurmurHash3 applied to a running sum):
 * keys of one object differ only in chunk, so every bit of chunk must reach the top
 * bits (shard) and the bottom bits (bucket). */
static uint64_t cache_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t cache_hash(const struct cache_key *k)
{
	uint64_t h = cache_mix(k->obj[0] ^ 0x9e3779b97f4a7c15ULL);

	h = cache_mix(h ^ k->obj[1]);
	return cache_mix(h ^ k->chunk);
}

static unsigned cache_shard_index(uint64_t hash)
{
	return (unsigned)(hash >> 60) & (CACHE_SHARDS - 1);
}

static bool cache_key_eq(const struct cache_key *a, const struct cache_key *b)
{
	return a->obj[0] == b->obj[0] && a->obj[1] == b->obj[1] && a->chunk == b->chunk;
}

static void cache_lock(struct cache_shard *s)
{
	int rc = pthread_mutex_lock(&s->lock);

	assert(rc == 0);
	(void)rc;
}

static void cache_unlock(struct cache_shard *s)
{
	int rc = pthread_mutex_unlock(&s->lock);

	assert(rc == 0);
	(void)rc;
}

/* Entries of at least this many bytes are mmap()ed on their own, so that evicting one
 * gives its memory back to the system at once.  From malloc(), freed chunk-sized values
 * linger in the allocator's per-thread arenas (glibc raises its mmap threshold after the
 * first free), and the daemon's RSS exceeded a 256 MiB budget by 50 MiB after reading
 * 1 GiB; with mmap it stays within 12 MiB of it (bench/bench_read.sh prints it). */
#define CACHE_MMAP_MIN (64u * 1024)

/* At most this many bytes of evicted mapped entries are kept for reuse.  A fresh
 * mapping costs a page fault and a zeroed page per 4 KiB when the fill first writes
 * it, and its munmap a TLB shootdown: on a cold sequential read with the cache full,
 * every insert paid both, a quarter of the daemon's CPU time (perf, bench_read.sh).
 * A full cache evicts one entry per insert, so a few spares cover every thread that
 * fills at once; more would only add to the RSS over the budget. */
#define CACHE_SPARE_MAX (4u << 20)

static size_t entry_total(size_t len)
{
	return sizeof(struct cache_entry) + len;
}

/* Allocates an entry of @total bytes (header and value), reusing a spare one of that
 * size if there is one.  NULL: no memory.  Called without any shard lock. */
static struct cache_entry *entry_alloc(struct cache *c, size_t total)
{
	struct cache_entry **pp, *e = NULL;
	void *p;

	if (total < CACHE_MMAP_MIN)
		return malloc(total);
	pthread_mutex_lock(&c->spare_lock);
	for (pp = &c->spare; *pp; pp = &(*pp)->hnext) {
		if (entry_total((*pp)->len) == total) {
			e = *pp;
			*pp = e->hnext;
			c->spare_bytes -= total;
			break;
		}
	}
	pthread_mutex_unlock(&c->spare_lock);
	if (e) {
		atomic_fetch_add_explicit(&c->recycled, 1, memory_order_relaxed);
		return e;
	}
	/* Populated: the fill writes every byte at once, and faulting the pages in one
	 * call costs far less than a fault per 4 KiB from the fill's first stores (cold
	 * sequential dd of a 512 MB Flat: 0.6 GB/s with a fault per page, 1.2 with this). */
	p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		 -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Frees an entry made by entry_alloc(), or keeps it as a spare; NULL is fine.  Called
 * without any shard lock. */
static void entry_free(struct cache *c, struct cache_entry *e)
{
	size_t total;

	if (!e)
		return;
	total = entry_total(e->len);
	if (total < CACHE_MMAP_MIN) {
		free(e);
		return;
	}
	pthread_mutex_lock(&c->spare_lock);
	if (c->spare_bytes + total <= CACHE_SPARE_MAX) {
		e->hnext = c->spare;
		c->spare = e;
		c->spare_bytes += total;
		e = NULL;
	}
	pthread_mutex_unlock(&c->spare_lock);
	if (e)
		munmap(e, total);
}

/* Unmaps the spare entries. */
static void spare_drain(struct cache *c)
{
	struct cache_entry *e, *next;

	pthread_mutex_lock(&c->spare_lock);
	e = c->spare;
	c->spare = NULL;
	c->spare_bytes = 0;
	pthread_mutex_unlock(&c->spare_lock);
	for (; e; e = next) {
		next = e->hnext;
		munmap(e, entry_total(e->len));
	}
}

/* Frees a chain of entries linked through hnext.  Called without any lock. */
static void cache_free_chain(struct cache *c, struct cache_entry *e)
{
	while (e) {
		struct cache_entry *next = e->hnext;

		entry_free(c, e);
		e = next;
	}
}

/* Looks @k up in @s.  Caller holds s->lock. */
static struct cache_entry *shard_find(struct cache_shard *s, const struct cache_key *k,
				      uint64_t hash)
{
	struct cache_entry *e = s->buckets[hash & (s->nbuckets - 1)];

	for (; e; e = e->hnext)
		if (e->hash == hash && cache_key_eq(&e->key, k))
			return e;
	return NULL;
}

/* Doubles the bucket array once the load factor passes 1.  Caller holds s->lock.
 * The array is small next to a value and grows rarely, so it is allocated under the
 * lock; if that fails the chains just get longer. */
static void shard_maybe_grow(struct cache_shard *s)
{
	size_t n = s->nbuckets * 2;
	struct cache_entry **b;

	if (s->count <= s->nbuckets)
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct cache_entry *e = s->buckets[i];

		while (e) {
			struct cache_entry *next = e->hnext;
			size_t j = e->hash & (n - 1);

			e->hnext = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/* Adds @e to the table and to the byte count.  Caller holds s->lock. */
static void shard_insert(struct cache *c, struct cache_shard *s, struct cache_entry *e)
{
	size_t i = e->hash & (s->nbuckets - 1);

	e->hnext = s->buckets[i];
	s->buckets[i] = e;
	s->count++;
	atomic_fetch_add(&c->bytes, e->len);
	atomic_fetch_add_explicit(&c->entries, 1, memory_order_relaxed);
	shard_maybe_grow(s);
}

/* Removes @e (in the table) from the table and the byte count.  Caller holds s->lock. */
static void shard_remove(struct cache *c, struct cache_shard *s, struct cache_entry *e)
{
	struct cache_entry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];

	while (*pp != e) {
		assert(*pp);
		pp = &(*pp)->hnext;
	}
	*pp = e->hnext;
	e->hnext = NULL;
	s->count--;
	atomic_fetch_sub(&c->bytes, e->len);
	atomic_fetch_sub_explicit(&c->entries, 1, memory_order_relaxed);
}

static bool cache_over_budget(struct cache *c)
{
	/* Sequentially consistent, so every change of bytes or budget and every check
	 * fall in one order; the argument above cache_evict() relies on it. */
	return atomic_load(&c->bytes) > atomic_load(&c->budget);
}

/* Publishes the tick of @s's next victim at each level (UINT64_MAX: none), read by
 * cache_evict() without the lock.  Caller holds s->lock and calls this after every
 * change to s's policy lists. */
static void shard_update_hint(struct cache *c, struct cache_shard *s)
{
	for (unsigned level = 0; level < CACHE_LEVELS; level++) {
		struct cache_entry *v = c->ops->victim(&s->policy, level == 0 && c->ops->two_level);

		atomic_store(&s->hint[level], v ? v->tick : UINT64_MAX);
	}
}

/* Picks the shard whose next victim at @level has the lowest tick; sets *next to the
 * second lowest tick.  Returns NULL if no shard offers a victim. */
static struct cache_shard *cache_pick_shard(struct cache *c, unsigned level, uint64_t *next)
{
	struct cache_shard *best = NULL;
	uint64_t lo = UINT64_MAX, lo2 = UINT64_MAX;

	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		uint64_t t = atomic_load(&c->shard[i].hint[level]);

		if (t < lo) {
			lo2 = lo;
			lo = t;
			best = &c->shard[i];
		} else if (t < lo2) {
			lo2 = t;
		}
	}
	*next = lo2;
	return best;
}

/* Evicts unpinned entries, lowest tick of all shards first, until the bytes held are
 * within the budget or nothing evictable is left; a two-level policy gives up its
 * hot entries only when no shard has a cold one.  Takes one shard lock at a time and
 * frees victims with no lock held.
 *
 * Why this is enough: each change that can put the cache over budget or make an
 * entry evictable (insert, last put, set_budget) is followed by a call here from the
 * thread that made it.  Bytes, budget and hints are sequentially consistent atomics,
 * so the call following the last such change sees every evictable entry's hint and
 * the final byte count, and stops only within budget or with nothing evictable. */
static void cache_evict(struct cache *c)
{
	unsigned levels = c->ops->two_level ? 2 : 1;
	unsigned level = 0;

	while (cache_over_budget(c)) {
		struct cache_entry *dead = NULL;
		struct cache_shard *s;
		struct cache_entry *v;
		uint64_t next;

		s = cache_pick_shard(c, level, &next);
		if (!s) {
			if (++level == levels)
				return;
			continue;
		}
		cache_lock(s);
		/* The hint may be stale; the lists are the truth.  Take victims from here
		 * while they are older than every other shard's. */
		while (cache_over_budget(c) &&
		       (v = c->ops->victim(&s->policy, level + 1 < levels)) && v->tick <= next) {
			assert(v->refs == 0 && v->state == CACHE_READY);
			c->ops->del(&s->policy, v);
			shard_remove(c, s, v);
			atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
			if (v->prefetched)
				atomic_fetch_add_explicit(&c->prefetch_unused, 1,
							  memory_order_relaxed);
			v->hnext = dead;
			dead = v;
		}
		shard_update_hint(c, s);
		cache_unlock(s);
		cache_free_chain(c, dead);
	}
}

int cache_new_policy(size_t budget, const struct cache_policy_ops *ops, struct cache **out)
{
	struct cache *c = NULL;
	unsigned i;

	if (budget == 0 || !ops)
		return -EINVAL;
	if (posix_memalign((void **)&c, 64, sizeof(*c)) != 0)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->ops = ops;
	atomic_init(&c->budget, budget);
	if (pthread_mutex_init(&c->spare_lock, NULL) != 0) {
		free(c);
		return -ENOMEM;
	}
	for (i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shard[i];

		s->buckets = calloc(CACHE_BUCKETS_INITIAL, sizeof(*s->buckets));
		if (!s->buckets)
			goto err_shards;
		s->nbuckets = CACHE_BUCKETS_INITIAL;
		if (pthread_mutex_init(&s->lock, NULL) != 0)
			goto err_buckets;
		if (pthread_cond_init(&s->cond, NULL) != 0)
			goto err_mutex;
		s->policy.clock = &c->clock;
		s->policy.entries = &c->entries;
		s->policy.protected_bytes = &c->protected_bytes;
		s->policy.budget = &c->budget;
		ops->init(&s->policy);
		for (unsigned level = 0; level < CACHE_LEVELS; level++)
			atomic_init(&s->hint[level], UINT64_MAX);
	}
	*out = c;
	return 0;

err_mutex:
	pthread_mutex_destroy(&c->shard[i].lock);
err_buckets:
	free(c->shard[i].buckets);
err_shards:
	while (i-- > 0) {
		pthread_cond_destroy(&c->shard[i].cond);
		pthread_mutex_destroy(&c->shard[i].lock);
		free(c->shard[i].buckets);
	}
	pthread_mutex_destroy(&c->spare_lock);
	free(c);
	return -ENOMEM;
}

/* Segmented LRU by default: on the replayed traces of tests/unit/cache/test_policy_trace.c
 * it keeps an IVF index's hit ratio while another file is scanned (plain LRU loses a
 * third of it) and is no worse without a scan; see DESIGN.md. */
int cache_new(size_t budget, struct cache **out)
{
	return cache_new_policy(budget, &cache_policy_slru, out);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shard[i];

		for (size_t b = 0; b < s->nbuckets; b++) {
			struct cache_entry *e = s->buckets[b];

			while (e) {
				struct cache_entry *next = e->hnext;

				/* A pin outliving the cache is the caller's bug. */
				assert(e->refs == 0 && e->state == CACHE_READY);
				entry_free(c, e);
				e = next;
			}
		}
		assert(s->waiters == 0);
		free(s->buckets);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
	}
	spare_drain(c);
	pthread_mutex_destroy(&c->spare_lock);
	free(c);
}

/* Pins @e (in the table, state LOADING or READY) for the caller.  Caller holds s->lock. */
static void entry_pin(struct cache *c, struct cache_shard *s, struct cache_entry *e)
{
	if (e->refs++ == 0 && e->state == CACHE_READY) {
		c->ops->del(&s->policy, e);
		shard_update_hint(c, s);
	}
}

/* Drops one pin of @e.  Caller holds s->lock.  Returns @e if the caller must free it
 * once the lock is dropped (a failed fill's last holder), else NULL. */
static struct cache_entry *entry_unpin(struct cache *c, struct cache_shard *s,
				       struct cache_entry *e)
{
	assert(e->refs > 0);
	if (--e->refs > 0)
		return NULL;
	if (e->state == CACHE_FAILED)
		return e;
	assert(e->state == CACHE_READY);
	c->ops->add(&s->policy, e);
	e->hit = false;
	shard_update_hint(c, s);
	return NULL;
}

/* Waits until the fill of @e (pinned by the caller) ends, then returns 0 with the pin
 * kept if it is ready, or the fill's error with the pin dropped.  Caller holds
 * s->lock, which this drops and retakes while waiting and leaves held on return;
 * *dead is set to an entry the caller must free after unlocking. */
static int entry_wait(struct cache *c, struct cache_shard *s, struct cache_entry *e,
		      struct cache_entry **dead)
{
	int err;

	s->waiters++;
	while (e->state == CACHE_LOADING)
		pthread_cond_wait(&s->cond, &s->lock);
	s->waiters--;
	if (e->state == CACHE_READY)
		return 0;
	err = e->err;
	*dead = entry_unpin(c, s, e);
	return err;
}

/* Serves a get from @e found in the table: pins it, waits for its fill if needed.
 * Caller holds s->lock (held on return). */
static int entry_hit(struct cache *c, struct cache_shard *s, struct cache_entry *e, size_t len,
		     struct cache_entry **dead)
{
	/* Gets that wait for the fill are the same access as the miss, not a reuse. */
	bool was_ready = e->state == CACHE_READY;
	int rc;

	if (e->prefetched) {
		/* The first demand access: reuse is counted from here. */
		e->prefetched = false;
		e->born = atomic_load_explicit(&c->clock, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->prefetch_hits, 1, memory_order_relaxed);
	} else if (was_ready && c->ops->touch) {
		c->ops->touch(&s->policy, e);
	}
	entry_pin(c, s, e);
	rc = entry_wait(c, s, e, dead);
	if (rc != 0)
		return rc;
	assert(e->len == len); /* a key names one chunk of one length */
	(void)len;
	atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
	return 0;
}

/* Fills @e, which this thread inserted LOADING and pinned, then publishes the result
 * and wakes the waiters.  Runs fill with no lock held.  Returns fill's result; on
 * failure the entry is out of the table and the caller's pin is dropped. */
static int entry_fill(struct cache *c, struct cache_shard *s, struct cache_entry *e,
		      cache_fill_fn fill, void *arg)
{
	struct cache_entry *dead = NULL;
	int rc = fill(arg, e->data, e->len);

	assert(rc <= 0);
	cache_lock(s);
	if (rc == 0) {
		e->state = CACHE_READY;
	} else {
		e->state = CACHE_FAILED;
		e->err = rc;
		shard_remove(c, s, e);
		atomic_fetch_add_explicit(&c->fill_errors, 1, memory_order_relaxed);
		dead = entry_unpin(c, s, e);
	}
	if (s->waiters > 0)
		pthread_cond_broadcast(&s->cond);
	cache_unlock(s);
	entry_free(c, dead);
	return rc;
}

/* Allocates an entry for @k, LOADING with one pin, with no lock held.  NULL: no memory. */
static struct cache_entry *entry_new(struct cache *c, const struct cache_key *k, uint64_t hash,
				     size_t len)
{
	struct cache_entry *n = NULL;

	if (len <= SIZE_MAX - sizeof(*n))
		n = entry_alloc(c, entry_total(len));
	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->key = *k;
	n->hash = hash;
	n->len = len;
	n->born = atomic_load_explicit(&c->clock, memory_order_relaxed);
	n->refs = 1;
	n->state = CACHE_LOADING;
	cache_link_init(&n->link);
	return n;
}

int cache_get(struct cache *c, const struct cache_key *k, size_t len, cache_fill_fn fill, void *arg,
	      struct cache_entry **out)
{
	uint64_t hash = cache_hash(k);
	unsigned si = cache_shard_index(hash);
	struct cache_shard *s = &c->shard[si];
	struct cache_entry *dead = NULL;
	struct cache_entry *e, *n;
	int rc;

	cache_lock(s);
	e = shard_find(s, k, hash);
	if (e) {
		rc = entry_hit(c, s, e, len, &dead);
		cache_unlock(s);
		entry_free(c, dead);
		if (rc == 0)
			*out = e;
		return rc;
	}
	cache_unlock(s);

	/* Miss: allocate with no lock held, then look again, as another thread may have
	 * inserted the key meanwhile. */
	n = entry_new(c, k, hash, len);
	if (!n)
		return -ENOMEM;
	cache_lock(s);
	e = shard_find(s, k, hash);
	if (e) {
		rc = entry_hit(c, s, e, len, &dead);
		cache_unlock(s);
		entry_free(c, dead);
		entry_free(c, n);
		if (rc == 0)
			*out = e;
		return rc;
	}
	shard_insert(c, s, n);
	atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
	cache_unlock(s);

	/* Make room before filling so memory stays bounded; n is pinned, so it stays. */
	cache_evict(c);
	rc = entry_fill(c, s, n, fill, arg);
	if (rc != 0)
		return rc;
	*out = n;
	return 0;
}

int cache_prefetch(struct cache *c, const struct cache_key *k, size_t len, cache_fill_fn fill,
		   void *arg)
{
	uint64_t hash = cache_hash(k);
	struct cache_shard *s = &c->shard[cache_shard_index(hash)];
	struct cache_entry *e, *n;
	bool found;
	int rc;

	/* A cheap look first: read-ahead mostly asks for chunks already there. */
	cache_lock(s);
	found = shard_find(s, k, hash) != NULL;
	cache_unlock(s);
	if (found)
		return -EEXIST;
	n = entry_new(c, k, hash, len);
	if (!n)
		return -ENOMEM;
	cache_lock(s);
	e = shard_find(s, k, hash);
	if (e) {
		cache_unlock(s);
		entry_free(c, n);
		return -EEXIST;
	}
	n->prefetched = true;
	shard_insert(c, s, n);
	atomic_fetch_add_explicit(&c->prefetches, 1, memory_order_relaxed);
	cache_unlock(s);

	cache_evict(c);
	rc = entry_fill(c, s, n, fill, arg);
	if (rc != 0)
		return rc;
	cache_put(c, n);
	return 0;
}

const void *cache_entry_data(const struct cache_entry *e)
{
	return e->data;
}

size_t cache_entry_len(const struct cache_entry *e)
{
	return e->len;
}

void cache_put(struct cache *c, struct cache_entry *e)
{
	unsigned si = cache_shard_index(e->hash);
	struct cache_shard *s = &c->shard[si];
	struct cache_entry *dead;

	cache_lock(s);
	dead = entry_unpin(c, s, e);
	cache_unlock(s);
	entry_free(c, dead);
	if (cache_over_budget(c))
		cache_evict(c);
}

void cache_put_drop(struct cache *c, struct cache_entry *e)
{
	struct cache_shard *s = &c->shard[cache_shard_index(e->hash)];
	struct cache_entry *dead;

	cache_lock(s);
	if (e->refs == 1 && e->state == CACHE_READY) {
		/* Pinned, so it is in no policy list: out of the table is out of the cache. */
		shard_remove(c, s, e);
		e->refs = 0;
		dead = e;
		atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
	} else {
		dead = entry_unpin(c, s, e);
	}
	cache_unlock(s);
	entry_free(c, dead);
}

void cache_set_budget(struct cache *c, size_t budget)
{
	uint64_t old = atomic_exchange(&c->budget, budget);

	cache_evict(c);
	if (budget < old)
		spare_drain(c); /* memory is short, or wanted elsewhere */
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
	out->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
	out->misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
	out->evictions = atomic_load_explicit(&c->evictions, memory_order_relaxed);
	out->fill_errors = atomic_load_explicit(&c->fill_errors, memory_order_relaxed);
	out->bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	out->entries = atomic_load_explicit(&c->entries, memory_order_relaxed);
	out->budget = atomic_load_explicit(&c->budget, memory_order_relaxed);
	out->prefetches = atomic_load_explicit(&c->prefetches, memory_order_relaxed);
	out->prefetch_hits = atomic_load_explicit(&c->prefetch_hits, memory_order_relaxed);
	out->prefetch_unused = atomic_load_explicit(&c->prefetch_unused, memory_order_relaxed);
	out->recycled = atomic_load_explicit(&c->recycled, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&c->dropped, memory_order_relaxed);
}
