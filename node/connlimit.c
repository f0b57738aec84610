/*
 * connlimit.c - lock-free concurrent-session counters (see limits.h).
 *
 * Slot word: tag (40 bits, never 0 for a live slot) << 24 | count (24 bits).
 * A slot whose count is 0 is free whatever its tag. A key lives in one of
 * LIMITS_PROBE consecutive slots from its home; acquire prefers a slot that
 * already holds its tag, else claims a free one. Must never: block, loop
 * unbounded, or allocate after connlimit_new().
 */
#include "connlimit.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LIMITS_PROBE 32
#define COUNT_BITS 24
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)

struct connlimit {
	uint32_t mask;
	_Atomic uint64_t *slot;
};

int connlimit_new(uint32_t slots, struct connlimit **ret)
{
	if (slots == 0 || slots > (1u << 30))
		return -EINVAL;
	uint32_t n = 64;
	while (n < slots)
		n <<= 1;
	struct connlimit *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->slot = calloc(n, sizeof(*l->slot));
	if (!l->slot) {
		free(l);
		return -ENOMEM;
	}
	l->mask = n - 1;
	*ret = l;
	return 0;
}

void connlimit_free(struct connlimit *l)
{
	if (!l)
		return;
	free(l->slot);
	free(l);
}

static uint64_t key_hash(uint16_t rule, enum limit_side side,
			 const uint8_t addr[16])
{
	uint64_t a, b;
	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	uint64_t h = (uint64_t)rule << 1 | (uint64_t)side;
	h ^= a * UINT64_C(0x9E3779B97F4A7C15);
	h = (h ^ (h >> 29)) * UINT64_C(0xBF58476D1CE4E5B9);
	h ^= b * UINT64_C(0x94D049BB133111EB);
	h = (h ^ (h >> 31)) * UINT64_C(0x9E3779B97F4A7C15);
	return h ^ (h >> 32);
}

/* 40-bit tag from the hash's high bits; 0 is reserved. A collision of two
 * keys on home slot and tag (2^-40 per pair) would merge their counts. */
static uint64_t tag_of(uint64_t h)
{
	uint64_t t = h >> 24;
	return t ? t : 1;
}

bool connlimit_acquire(struct connlimit *l, uint16_t rule, enum limit_side side,
		    const uint8_t addr[16], uint32_t limit)
{
	if (limit == 0)
		return true;
	if (limit > COUNT_MASK)
		limit = COUNT_MASK;
	uint64_t h = key_hash(rule, side, addr), tag = tag_of(h);
	uint32_t home = (uint32_t)h & l->mask;
	unsigned tries = 0;
again:
	/* First a slot that already counts this key. */
	for (unsigned i = 0; i < LIMITS_PROBE; i++) {
		_Atomic uint64_t *sl = &l->slot[(home + i) & l->mask];
		uint64_t v = atomic_load_explicit(sl, memory_order_relaxed);
		while ((v >> COUNT_BITS) == tag && (v & COUNT_MASK) != 0) {
			if ((v & COUNT_MASK) >= limit)
				return false;
			if (atomic_compare_exchange_weak(sl, &v, v + 1))
				return true;
		}
	}
	/* Then claim a free slot (count 0). */
	for (unsigned i = 0; i < LIMITS_PROBE; i++) {
		_Atomic uint64_t *sl = &l->slot[(home + i) & l->mask];
		uint64_t v = atomic_load_explicit(sl, memory_order_relaxed);
		while ((v & COUNT_MASK) == 0) {
			if (atomic_compare_exchange_weak(sl, &v,
							 tag << COUNT_BITS | 1))
				return true;
		}
		/* Someone else's now, or ours: a racing worker claimed it. */
		if ((v >> COUNT_BITS) == tag && ++tries < 3)
			goto again;
	}
	return false;
}

void connlimit_release(struct connlimit *l, uint16_t rule, enum limit_side side,
		    const uint8_t addr[16])
{
	uint64_t h = key_hash(rule, side, addr), tag = tag_of(h);
	uint32_t home = (uint32_t)h & l->mask;
	for (unsigned i = 0; i < LIMITS_PROBE; i++) {
		_Atomic uint64_t *sl = &l->slot[(home + i) & l->mask];
		uint64_t v = atomic_load_explicit(sl, memory_order_relaxed);
		while ((v >> COUNT_BITS) == tag && (v & COUNT_MASK) != 0) {
			if (atomic_compare_exchange_weak(sl, &v, v - 1))
				return;
		}
	}
}

uint32_t connlimit_held(const struct connlimit *l, uint16_t rule,
		     enum limit_side side, const uint8_t addr[16])
{
	uint64_t h = key_hash(rule, side, addr), tag = tag_of(h);
	uint32_t home = (uint32_t)h & l->mask, n = 0;
	for (unsigned i = 0; i < LIMITS_PROBE; i++) {
		uint64_t v = atomic_load_explicit(
			&((struct connlimit *)l)->slot[(home + i) & l->mask],
			memory_order_relaxed);
		if ((v >> COUNT_BITS) == tag)
			n += (uint32_t)(v & COUNT_MASK);
	}
	return n;
}
