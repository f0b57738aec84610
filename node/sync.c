/*
 * sync.c - replication rings and the refresh sweep (see sync.h).
 * Must never: block, allocate after sync_out_new(), or let the worker wait
 * for the control thread.
 */
#include "sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sync_out_new(uint32_t slots, uint32_t capacity, uint32_t refresh_ms,
		 struct sync_out **ret)
{
	if (slots < 2 || (slots & (slots - 1)))
		return -EINVAL;
	struct sync_out *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->ring = calloc(slots, sizeof(*o->ring));
	o->dirty_words = (capacity + 63) / 64;
	o->dirty = calloc(o->dirty_words, sizeof(uint64_t));
	if (!o->ring || !o->dirty) {
		sync_out_free(o);
		return -ENOMEM;
	}
	o->mask = slots - 1;
	o->refresh_ms = refresh_ms;
	*ret = o;
	return 0;
}

void sync_out_free(struct sync_out *o)
{
	if (!o)
		return;
	free(o->ring);
	free(o->dirty);
	free(o);
}

void sync_push(struct sync_out *o, enum sync_type t, const struct sess *s)
{
	uint32_t h = atomic_load_explicit(&o->head, memory_order_relaxed);
	uint32_t tl = atomic_load_explicit(&o->tail, memory_order_acquire);
	if (h - tl > o->mask) {
		atomic_fetch_add_explicit(&o->dropped, 1, memory_order_relaxed);
		return;
	}
	struct sync_rec *r = &o->ring[h & o->mask];
	r->s = *s;
	r->expire = s->expire;
	r->type = (uint8_t)t;
	atomic_store_explicit(&o->head, h + 1, memory_order_release);
}

void sync_sweep(struct sync_out *o, struct sess_table *t, uint64_t now_ms,
		unsigned words)
{
	if (o->sweep_cursor == 0 && now_ms < o->next_sweep_ms)
		return;
	uint32_t end = o->sweep_cursor + words;
	if (end > o->dirty_words)
		end = o->dirty_words;
	for (uint32_t w = o->sweep_cursor; w < end; w++) {
		uint64_t bits = o->dirty[w];
		if (!bits)
			continue;
		o->dirty[w] = 0;
		while (bits) {
			uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			struct sess *s = sess_table_at(t, idx);
			if (s && !(s->flags & SF_PEER))
				sync_push(o, SYNC_REFRESH, s);
		}
	}
	o->sweep_cursor = end >= o->dirty_words ? 0 : end;
	if (o->sweep_cursor == 0)
		o->next_sweep_ms = now_ms + o->refresh_ms;
}

unsigned sync_pop(struct sync_out *o, struct sync_rec *out, unsigned max)
{
	uint32_t tl = atomic_load_explicit(&o->tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&o->head, memory_order_acquire);
	unsigned n = 0;
	while (tl != h && n < max) {
		out[n++] = o->ring[tl & o->mask];
		tl++;
	}
	atomic_store_explicit(&o->tail, tl, memory_order_release);
	return n;
}

uint32_t sync_room(struct sync_out *o)
{
	uint32_t h = atomic_load_explicit(&o->head, memory_order_relaxed);
	uint32_t tl = atomic_load_explicit(&o->tail, memory_order_acquire);
	return o->mask + 1 - (h - tl);
}
