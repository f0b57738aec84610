/*
 * sync.h - a shard's side of replication: the events it emits for
 * tandem-syncd, and the peer sessions it installs.
 *
 * Emission: create, state change and end of every local session go into
 * the shard's single-producer/single-consumer ring (producer: the worker;
 * consumer: the control thread, which sends them to syncd). A full ring is
 * counted, never waited on. Refreshes are coalesced: a packet that
 * restarts a session's timer only sets the session's bit in a dirty bitmap;
 * every refresh interval a bounded sweep emits one REFRESH per dirty
 * session. Peer sessions (SF_PEER) are never emitted.
 */
#ifndef TANDEM_SYNC_H
#define TANDEM_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sess_table.h"

enum sync_type { SYNC_CREATE, SYNC_STATE, SYNC_REFRESH, SYNC_EXPIRE,
		 SYNC_DELETE };

/* One event: 144 bytes (the session and its absolute expiry). */
struct sync_rec {
	struct sess s;      /* 136: as it was when the event happened */
	uint32_t expire;    /* low 32 bits of the expiry in ms (s.expire) */
	uint8_t type;       /* enum sync_type */
	uint8_t pad[3];
};
_Static_assert(sizeof(struct sync_rec) == 144, "sync_rec is 144 bytes");

struct sync_out {
	_Atomic bool subscribed;   /* set by the control thread */
	uint32_t mask;             /* ring slots - 1 */
	struct sync_rec *ring;
	_Atomic uint32_t head;     /* producer (worker) */
	_Atomic uint32_t tail;     /* consumer (control thread) */
	_Atomic uint64_t dropped;  /* events lost to a full ring */
	uint64_t *dirty;           /* one bit per pool entry */
	uint32_t dirty_words;
	uint32_t sweep_cursor;     /* word index of the running sweep */
	uint64_t next_sweep_ms;
	uint32_t refresh_ms;       /* interval between sweeps */
};

/* slots: a power of two. capacity: the shard's pool size. */
int sync_out_new(uint32_t slots, uint32_t capacity, uint32_t refresh_ms,
		 struct sync_out **ret);
void sync_out_free(struct sync_out *o);

/* Worker: queue an event (dropped and counted when the ring is full). */
void sync_push(struct sync_out *o, enum sync_type t, const struct sess *s);

/* Worker: remember that session at pool index idx was refreshed. */
static inline void sync_mark(struct sync_out *o, uint32_t idx)
{
	o->dirty[idx >> 6] |= UINT64_C(1) << (idx & 63);
}

/* Worker: part of the refresh sweep (at most `words` bitmap words). */
void sync_sweep(struct sync_out *o, struct sess_table *t, uint64_t now_ms,
		unsigned words);

/* Control thread: take up to max events; returns how many. */
unsigned sync_pop(struct sync_out *o, struct sync_rec *out, unsigned max);
/* Control thread: free slots left (for a bulk dump that must not drop). */
uint32_t sync_room(struct sync_out *o);

#endif
