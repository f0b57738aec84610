/*
 * mirror.c - slab of sessions with an id hash (see mirror.h).
 *
 * Index: open addressing with linear probing over a power-of-two table of
 * slab indices + 1 (0 = empty) with the id's 32-bit hash beside each, at
 * most half full; a probe reads the slab (a cache miss) only when the hash
 * matches. Deletion shifts the following run back, so there are no
 * tombstones and lookups stay short.
 *
 * Must never: move an existing entry to another slab index.
 */
#include "mirror.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mirror {
	struct mirror_ent *slab;
	uint32_t n_slab, cap_slab;  /* slots handed out / allocated */
	uint32_t *free_list;        /* released slab indices */
	uint32_t n_free;
	uint64_t *index;            /* hash << 32 | slab index + 1; 0 = empty */
	uint32_t index_mask;
	size_t count, n_local;
};

static uint32_t hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= UINT64_C(0xff51afd7ed558ccd);
	id ^= id >> 33;
	return (uint32_t)id;
}

int mirror_new(struct mirror **ret)
{
	struct mirror *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->index = calloc(1024, sizeof(*m->index));
	if (!m->index) {
		free(m);
		return -ENOMEM;
	}
	m->index_mask = 1023;
	*ret = m;
	return 0;
}

void mirror_free(struct mirror *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->n_slab; i++)
		free(m->slab[i].data);
	free(m->slab);
	free(m->free_list);
	free(m->index);
	free(m);
}

#define SLOT(x) ((uint32_t)(x))           /* slab index + 1 */
#define HASH(x) ((uint32_t)((x) >> 32))

/* position in the index of id (hash h), or of the empty slot where it
 * would go */
static uint32_t find_pos_h(const struct mirror *m, uint64_t id, uint32_t h)
{
	uint32_t pos = h & m->index_mask;
	for (;;) {
		uint64_t x = m->index[pos];
		if (!x || (HASH(x) == h && m->slab[SLOT(x) - 1].id == id))
			return pos;
		pos = (pos + 1) & m->index_mask;
	}
}

static uint32_t find_pos(const struct mirror *m, uint64_t id)
{
	return find_pos_h(m, id, hash_id(id));
}

static int grow_index(struct mirror *m)
{
	uint32_t cap = (m->index_mask + 1) * 2;
	uint64_t *ni = calloc(cap, sizeof(*ni));
	if (!ni)
		return -ENOMEM;
	uint64_t *old = m->index;
	uint32_t old_cap = m->index_mask + 1;
	m->index = ni;
	m->index_mask = cap - 1;
	/* ids are distinct: the first empty slot from the home is its place */
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i]) {
			uint32_t pos = HASH(old[i]) & m->index_mask;
			while (m->index[pos])
				pos = (pos + 1) & m->index_mask;
			m->index[pos] = old[i];
		}
	free(old);
	return 0;
}

static int alloc_slot(struct mirror *m, uint32_t *ret)
{
	if (m->n_free) {
		*ret = m->free_list[--m->n_free];
		return 0;
	}
	if (m->n_slab == m->cap_slab) {
		uint32_t cap = m->cap_slab ? m->cap_slab * 2 : 1024;
		struct mirror_ent *ns = realloc(m->slab, cap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		uint32_t *nf = realloc(m->free_list, cap * sizeof(*nf));
		if (!nf) {
			m->slab = ns;
			return -ENOMEM;
		}
		memset(ns + m->cap_slab, 0, (cap - m->cap_slab) * sizeof(*ns));
		m->slab = ns;
		m->free_list = nf;
		m->cap_slab = cap;
	}
	*ret = m->n_slab++;
	return 0;
}

int mirror_put(struct mirror *m, uint64_t id, uint16_t origin,
	       const uint8_t *data, size_t len, uint64_t deadline_ms,
	       uint32_t gen, struct mirror_ent **ret)
{
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if ((m->count + 1) * 2 > m->index_mask + 1) {
		int r = grow_index(m);
		if (r < 0)
			return r;
	}
	uint32_t h = hash_id(id);
	uint32_t pos = find_pos_h(m, id, h);
	struct mirror_ent *e;
	bool fresh = !m->index[pos];
	if (!fresh) {
		e = &m->slab[SLOT(m->index[pos]) - 1];
	} else {
		uint32_t slot;
		int r = alloc_slot(m, &slot);
		if (r < 0)
			return r;
		e = &m->slab[slot];
		e->used = true;
		e->id = id;
		e->len = 0;
		e->origin = MIRROR_LOCAL;
		m->n_local++;
		m->index[pos] = (uint64_t)h << 32 | (slot + 1);
		m->count++;
	}
	if (len > e->cap) {
		uint32_t cap = (uint32_t)((len + 63) & ~(size_t)63);
		uint8_t *nd = realloc(e->data, cap);
		if (!nd) {
			/* an update keeps the old content; a new entry goes */
			if (fresh)
				mirror_del(m, id);
			return -ENOMEM;
		}
		e->data = nd;
		e->cap = cap;
	}
	memcpy(e->data, data, len);
	e->len = (uint32_t)len;
	e->deadline_ms = deadline_ms;
	e->gen = gen;
	e->held_by = 0;
	mirror_set_origin(m, e, origin);
	if (ret)
		*ret = e;
	return 0;
}

struct mirror_ent *mirror_get(struct mirror *m, uint64_t id)
{
	uint32_t pos = find_pos(m, id);
	return m->index[pos] ? &m->slab[SLOT(m->index[pos]) - 1] : NULL;
}

int mirror_del(struct mirror *m, uint64_t id)
{
	uint32_t pos = find_pos(m, id);
	if (!m->index[pos])
		return -ENOENT;
	uint32_t slot = SLOT(m->index[pos]) - 1;
	struct mirror_ent *e = &m->slab[slot];
	if (e->origin == MIRROR_LOCAL)
		m->n_local--;
	e->used = false;
	e->len = 0;
	m->free_list[m->n_free++] = slot;
	m->count--;
	/* backward shift: move later members of the run into the hole when
	 * their home is not between the hole and them */
	uint32_t hole = pos, i = pos;
	m->index[hole] = 0;
	for (;;) {
		i = (i + 1) & m->index_mask;
		if (!m->index[i])
			break;
		uint32_t home = HASH(m->index[i]) & m->index_mask;
		bool movable = hole <= i ? (home <= hole || home > i)
					 : (home <= hole && home > i);
		if (movable) {
			m->index[hole] = m->index[i];
			m->index[i] = 0;
			hole = i;
		}
	}
	return 0;
}

void mirror_set_origin(struct mirror *m, struct mirror_ent *e, uint16_t origin)
{
	if (e->origin == origin)
		return;
	if (e->origin == MIRROR_LOCAL)
		m->n_local--;
	else if (origin == MIRROR_LOCAL)
		m->n_local++;
	e->origin = origin;
}

uint32_t mirror_slots(const struct mirror *m)
{
	return m->n_slab;
}

struct mirror_ent *mirror_at(struct mirror *m, uint32_t idx)
{
	return idx < m->n_slab && m->slab[idx].used ? &m->slab[idx] : NULL;
}

size_t mirror_count_local(const struct mirror *m)
{
	return m->n_local;
}

size_t mirror_count_peer(const struct mirror *m)
{
	return m->count - m->n_local;
}
