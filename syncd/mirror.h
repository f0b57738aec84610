/*
 * mirror.h - syncd's copy of the sessions it replicates, by session id.
 *
 * Local entries (origin 0) are the node's own sessions as its event stream
 * last described them: a bulk sync to a peer is read from here, at the
 * configured rate, without asking the node again. Peer entries (origin =
 * the peer's node id) are what we installed on our node for that peer:
 * after the peer's bulk ends, the ones it did not send again are stale and
 * are deleted on the node (sweep by generation), and at takeover they
 * become local (promote).
 *
 * Each entry holds the packed Session bytes (proto/tandem.proto) and the
 * time the session would expire, so a bulk sends the time really left.
 * Entries live in a slab whose indices never move (a bulk's cursor is an
 * index, valid across inserts and deletes); a hash of ids points into it.
 * An update that fits the entry's buffer does not allocate.
 *
 * Must never: move an entry to another index while it exists, or return an
 * entry pointer that survives the next mirror_put() (the slab may grow).
 */
#ifndef TANDEM_SYNCD_MIRROR_H
#define TANDEM_SYNCD_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIRROR_LOCAL 0

struct mirror_ent {
	uint64_t id;
	uint64_t deadline_ms;  /* clock_now_ms() at receipt + remaining_ms */
	uint8_t *data;         /* packed Session */
	uint32_t len, cap;
	uint32_t gen;          /* local: node bulk; peer: that peer's bulk */
	uint16_t origin;       /* MIRROR_LOCAL or the peer's node id */
	uint16_t held_by;      /* local, promoted from this live peer's copy:
				* it still holds the session as its own, so a
				* bulk does not send it back (0: none; every
				* put clears it) */
	bool used;
};

struct mirror;

int mirror_new(struct mirror **ret);
void mirror_free(struct mirror *m);          /* accepts NULL */

/* Insert or replace id. *ret (optional) is valid until the next put. */
int mirror_put(struct mirror *m, uint64_t id, uint16_t origin,
	       const uint8_t *data, size_t len, uint64_t deadline_ms,
	       uint32_t gen, struct mirror_ent **ret);
struct mirror_ent *mirror_get(struct mirror *m, uint64_t id);
/* Returns 0, or -ENOENT. */
int mirror_del(struct mirror *m, uint64_t id);
void mirror_set_origin(struct mirror *m, struct mirror_ent *e,
		       uint16_t origin);

/* Iteration by slab index: 0 .. mirror_slots() - 1; NULL = free slot. */
uint32_t mirror_slots(const struct mirror *m);
struct mirror_ent *mirror_at(struct mirror *m, uint32_t idx);

size_t mirror_count_local(const struct mirror *m);
size_t mirror_count_peer(const struct mirror *m);

#endif
