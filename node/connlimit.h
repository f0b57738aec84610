/*
 * connlimit.h - per-rule concurrent session limits per source / destination
 * address (Forcepoint connection limits), shared by every shard.
 *
 * A session of a limited rule takes one unit from the (rule, side, address)
 * counter when it is created and gives it back when it ends. Counters live
 * in a fixed open-addressed array of 64-bit words (40-bit tag | 24-bit
 * count) changed only with compare-and-swap: no lock, no allocation after
 * connlimit_new(). Only session creation and end touch it, never a packet of
 * an existing session.
 *
 * Bound of the lock-free scheme: two workers creating the first sessions of
 * one address at the same instant may each claim a slot, and for as long as
 * both slots are live the address can exceed its limit by at most
 * (workers - 1). A single worker (and the offline source) is exact.
 */
#ifndef TANDEM_CONNLIMIT_H
#define TANDEM_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct connlimit;

enum limit_side { LIMIT_SIDE_SRC = 0, LIMIT_SIDE_DST = 1 };

/* slots: counters held at once (rounded up to a power of two). */
int connlimit_new(uint32_t slots, struct connlimit **ret);
void connlimit_free(struct connlimit *l); /* accepts NULL */

/* Take one unit for (rule, side, addr) if fewer than `limit` are held.
 * Returns true when taken; false when at the limit (or no slot is free
 * within the probe window, which counts as at the limit). */
bool connlimit_acquire(struct connlimit *l, uint16_t rule, enum limit_side side,
		    const uint8_t addr[16], uint32_t limit);
/* Give back a unit taken by connlimit_acquire(). */
void connlimit_release(struct connlimit *l, uint16_t rule, enum limit_side side,
		    const uint8_t addr[16]);
/* Units held now for (rule, side, addr) (tests, show). */
uint32_t connlimit_held(const struct connlimit *l, uint16_t rule,
		     enum limit_side side, const uint8_t addr[16]);

#endif
