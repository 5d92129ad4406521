/* cache_internal.h - private structures of the chunk cache and its eviction policy.
 *
 * Only the cache sources and the cache unit tests include this.  The eviction policy is a
 * const struct of function pointers over per-shard state, so plain LRU (lru.c) and
 * the scan-resistant segmented LRU (slru.c) share the table and the locks.
 * Every policy call is made with the owning shard's lock held; a policy never
 * takes a lock, allocates or frees.
 */
#ifndef FAISSFS_CACHE_CACHE_INTERNAL_H
#define FAISSFS_CACHE_CACHE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"

/* A node of a circular doubly linked list; a list head is a node linked to itself. */
struct cache_link {
	struct cache_link *prev;
	struct cache_link *next;
};

enum cache_entry_state {
	CACHE_LOADING = 0, /* in the table, being filled by the thread that missed */
	CACHE_READY = 1,   /* in the table, data valid */
	CACHE_FAILED = 2,  /* out of the table, err set; freed by the last waiter */
};

/* Segment of an entry in a segmented policy; plain LRU uses only CACHE_SEG_PROBATION. */
enum cache_seg {
	CACHE_SEG_PROBATION = 0,
	CACHE_SEG_PROTECTED = 1,
	CACHE_SEG_COUNT = 2,
};

struct cache_entry {
	struct cache_key key;	   /* immutable */
	uint64_t hash;		   /* immutable, hash of key */
	size_t len;		   /* immutable, bytes in data */
	struct cache_entry *hnext; /* protected by shard->lock: bucket chain, then free list */
	struct cache_link link;	   /* protected by shard->lock: policy list, only while evictable */
	unsigned refs;		   /* protected by shard->lock: pins (callers holding it) */
	enum cache_entry_state state; /* protected by shard->lock */
	int err;		      /* protected by shard->lock: fill's error once CACHE_FAILED */
	/* protected by shard->lock: set by the policy when the entry joins a list; the
	 * cache evicts across shards lowest tick first (LRU: when it became evictable) */
	uint64_t tick;
	uint64_t born; /* immutable: the clock when the entry was inserted */
	uint8_t seg;   /* protected by shard->lock: enum cache_seg, owned by the policy */
	bool hit;      /* protected by shard->lock: set by ops->touch, cleared when put back */
	/* protected by shard->lock: filled by cache_prefetch() and not got since; the
	 * first get is the first access, not a reuse */
	bool prefetched;
	/* Written only by the filling thread while CACHE_LOADING (the entry is pinned and
	 * nobody else reads it); read-only once CACHE_READY was seen under shard->lock. */
	_Alignas(16) unsigned char data[];
};

/* Per-shard policy state.  Every field is protected by the owning shard->lock. */
struct cache_policy {
	struct cache_link list[CACHE_SEG_COUNT]; /* head = most recent, tail = next victim */
	size_t seg_bytes[CACHE_SEG_COUNT];	 /* value bytes on each list */
	/* Shared with the other shards (atomics, read without the lock). */
	_Atomic uint64_t *clock;	   /* source of e->tick, increasing */
	_Atomic uint64_t *entries;	   /* entries in the whole cache */
	_Atomic uint64_t *protected_bytes; /* value bytes on every shard's protected list */
	_Atomic uint64_t *budget;
};

/* An eviction policy.  Every call holds the shard lock of @p.  Entries on the policy's
 * lists are exactly the evictable ones: CACHE_READY and unpinned. */
struct cache_policy_ops {
	const char *name;
	/* Whether victim(p, true) may return NULL while victim(p, false) would not. */
	bool two_level;
	void (*init)(struct cache_policy *p);
	/* A get hit @e, which was READY when found (on a list, or pinned by others);
	 * called before the entry is pinned.  May set e->hit.  Optional (NULL). */
	void (*touch)(struct cache_policy *p, struct cache_entry *e);
	/* @e became evictable: inserted and put back, or put back by its last holder.
	 * e->hit is what touch() decided since it last became evictable. */
	void (*add)(struct cache_policy *p, struct cache_entry *e);
	/* @e (on a list) is no longer evictable: pinned again or being evicted. */
	void (*del)(struct cache_policy *p, struct cache_entry *e);
	/* The entry to evict next, left on its list; NULL if none.  With @cold_only a
	 * segmented policy offers only entries it does not consider hot.  Successive
	 * victims of one shard at one level should have increasing ticks, as the cache
	 * evicts across shards in tick order. */
	struct cache_entry *(*victim)(struct cache_policy *p, bool cold_only);
};

extern const struct cache_policy_ops cache_policy_lru;	/* lru.c */
extern const struct cache_policy_ops cache_policy_slru; /* slru.c, scan-resistant */

/* Like cache_new() with an explicit eviction policy (tests compare policies). */
int cache_new_policy(size_t budget, const struct cache_policy_ops *ops, struct cache **out);

/* List helpers shared by the policies. */
static inline void cache_link_init(struct cache_link *h)
{
	h->prev = h;
	h->next = h;
}

static inline bool cache_link_empty(const struct cache_link *h)
{
	return h->next == h;
}

static inline void cache_link_add_head(struct cache_link *h, struct cache_link *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}

static inline void cache_link_del(struct cache_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n;
	n->next = n;
}

static inline struct cache_entry *cache_link_entry(struct cache_link *n)
{
	return (struct cache_entry *)((char *)n - offsetof(struct cache_entry, link));
}

#endif
