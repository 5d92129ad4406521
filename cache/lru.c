/* lru.c - plain least-recently-used eviction policy for the chunk cache.
 *
 * One list per shard of the evictable (ready, unpinned) entries, most recently put
 * back at the head; the victim is the tail.  Pinned entries are off the list, so a
 * get moves an entry out and its last put moves it back to the head: recency is the
 * time of the last put, and e->tick records it so that the cache can evict the least
 * recent entry of all shards.  Called with the shard lock held (see cache.c).
 */
#include <assert.h>

#include "cache/cache_internal.h"

static void lru_init(struct cache_policy *p)
{
	for (int i = 0; i < CACHE_SEG_COUNT; i++) {
		cache_link_init(&p->list[i]);
		p->seg_bytes[i] = 0;
	}
}

static void lru_add(struct cache_policy *p, struct cache_entry *e)
{
	e->seg = CACHE_SEG_PROBATION;
	e->tick = atomic_fetch_add_explicit(p->clock, 1, memory_order_relaxed);
	cache_link_add_head(&p->list[CACHE_SEG_PROBATION], &e->link);
	p->seg_bytes[CACHE_SEG_PROBATION] += e->len;
}

static void lru_del(struct cache_policy *p, struct cache_entry *e)
{
	assert(e->seg == CACHE_SEG_PROBATION);
	assert(p->seg_bytes[CACHE_SEG_PROBATION] >= e->len);
	cache_link_del(&e->link);
	p->seg_bytes[CACHE_SEG_PROBATION] -= e->len;
}

static struct cache_entry *lru_victim(struct cache_policy *p, bool cold_only)
{
	struct cache_link *h = &p->list[CACHE_SEG_PROBATION];

	(void)cold_only;
	if (cache_link_empty(h))
		return NULL;
	return cache_link_entry(h->prev);
}

const struct cache_policy_ops cache_policy_lru = {
	.name = "lru",
	.two_level = false,
	.init = lru_init,
	.touch = NULL,
	.add = lru_add,
	.del = lru_del,
	.victim = lru_victim,
};
