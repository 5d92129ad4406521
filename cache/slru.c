/* slru.c - segmented LRU eviction policy: scan-resistant replacement for lru.c.
 *
 * Two lists per shard.  An entry put back without having been reused since it last
 * became evictable joins the probation list; a reused one joins the protected list.
 * Victims come from probation, least recent first; the cache takes protected entries
 * only when no shard has a probation entry left.  The protected lists of all shards
 * together hold at most SLRU_PROTECTED_PCT of the budget: past it, the adding shard
 * demotes its least recent protected entries to the head of its probation list,
 * where one more reuse saves them.
 *
 * Reuse is a hit that comes at least a window of puts after the entry was inserted
 * (the "correlated reference period" of 2Q and LRU-K): a sequential reader reads a
 * chunk in several requests, or through page faults, one right after another, and
 * those hits must not count, or a scan would promote itself.  Hits that waited for
 * the fill do not count either.
 *
 * Called with the shard lock held (see cache.c); the global protected byte count is
 * an atomic, so the cap is kept up to the races between shards.
 */
#include <assert.h>

#include "cache/cache_internal.h"

#define SLRU_PROTECTED_PCT 80u
#define SLRU_WINDOW_MIN	   8u /* puts; also covers a few concurrent sequential readers */
#define SLRU_WINDOW_DIV	   8u /* the window is at least 1/8 of the entries held */

static void slru_init(struct cache_policy *p)
{
	for (int i = 0; i < CACHE_SEG_COUNT; i++) {
		cache_link_init(&p->list[i]);
		p->seg_bytes[i] = 0;
	}
}

/* Puts @e at the head of segment @seg with a fresh tick. */
static void slru_link(struct cache_policy *p, struct cache_entry *e, enum cache_seg seg)
{
	e->seg = (uint8_t)seg;
	e->tick = atomic_fetch_add_explicit(p->clock, 1, memory_order_relaxed);
	cache_link_add_head(&p->list[seg], &e->link);
	p->seg_bytes[seg] += e->len;
	if (seg == CACHE_SEG_PROTECTED)
		atomic_fetch_add_explicit(p->protected_bytes, e->len, memory_order_relaxed);
}

static void slru_del(struct cache_policy *p, struct cache_entry *e)
{
	assert(e->seg < CACHE_SEG_COUNT);
	assert(p->seg_bytes[e->seg] >= e->len);
	cache_link_del(&e->link);
	p->seg_bytes[e->seg] -= e->len;
	if (e->seg == CACHE_SEG_PROTECTED)
		atomic_fetch_sub_explicit(p->protected_bytes, e->len, memory_order_relaxed);
}

static uint64_t slru_protected_cap(const struct cache_policy *p)
{
	uint64_t budget = atomic_load_explicit(p->budget, memory_order_relaxed);

	return budget / 100 * SLRU_PROTECTED_PCT + budget % 100 * SLRU_PROTECTED_PCT / 100;
}

static void slru_touch(struct cache_policy *p, struct cache_entry *e)
{
	uint64_t now = atomic_load_explicit(p->clock, memory_order_relaxed);
	uint64_t window = atomic_load_explicit(p->entries, memory_order_relaxed) / SLRU_WINDOW_DIV;

	if (window < SLRU_WINDOW_MIN)
		window = SLRU_WINDOW_MIN;
	if (now - e->born >= window)
		e->hit = true;
}

static void slru_add(struct cache_policy *p, struct cache_entry *e)
{
	struct cache_link *prot = &p->list[CACHE_SEG_PROTECTED];

	if (!e->hit) {
		slru_link(p, e, CACHE_SEG_PROBATION);
		return;
	}
	slru_link(p, e, CACHE_SEG_PROTECTED);
	/* Over the cap: demote this shard's least recent protected entries, but never
	 * the one just promoted. */
	while (atomic_load_explicit(p->protected_bytes, memory_order_relaxed) >
		       slru_protected_cap(p) &&
	       prot->prev != &e->link) {
		struct cache_entry *old = cache_link_entry(prot->prev);

		slru_del(p, old);
		slru_link(p, old, CACHE_SEG_PROBATION);
	}
}

static struct cache_entry *slru_victim(struct cache_policy *p, bool cold_only)
{
	struct cache_link *h = &p->list[CACHE_SEG_PROBATION];

	if (cache_link_empty(h)) {
		if (cold_only)
			return NULL;
		h = &p->list[CACHE_SEG_PROTECTED];
		if (cache_link_empty(h))
			return NULL;
	}
	return cache_link_entry(h->prev);
}

const struct cache_policy_ops cache_policy_slru = {
	.name = "slru",
	.two_level = true,
	.init = slru_init,
	.touch = slru_touch,
	.add = slru_add,
	.del = slru_del,
	.victim = slru_victim,
};
