/*
 * pbwire.c - buffers, hand-written protobuf encodings, reading in place, arena (see pbwire.h).
 *
 * Must never: write past capacity, or free arena memory one by one.
 */
#include "pbwire.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t more)
{
	if (b->cap - b->len >= more)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int buf_put(struct buf *b, const void *data, size_t n)
{
	int r = buf_reserve(b, n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
}

void buf_free(struct buf *b)
{
	if (!b)
		return;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

size_t pb_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t pb_put_varint_raw(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static int put_raw_varint(struct buf *b, uint64_t v)
{
	int r = buf_reserve(b, 10);
	if (r < 0)
		return r;
	b->len += pb_put_varint_raw(b->p + b->len, v);
	return 0;
}

int pb_put_varint(struct buf *b, unsigned field, uint64_t v)
{
	int r = put_raw_varint(b, (uint64_t)field << 3 | PB_VARINT);
	return r < 0 ? r : put_raw_varint(b, v);
}

int pb_put_len_hdr(struct buf *b, unsigned field, size_t n)
{
	int r = put_raw_varint(b, (uint64_t)field << 3 | PB_LEN);
	return r < 0 ? r : put_raw_varint(b, n);
}

int pb_put_len(struct buf *b, unsigned field, const void *data, size_t n)
{
	int r = pb_put_len_hdr(b, field, n);
	return r < 0 ? r : buf_put(b, data, n);
}

size_t pb_len_field_size(unsigned field, size_t n)
{
	return pb_varint_len((uint64_t)field << 3 | PB_LEN) + pb_varint_len(n) + n;
}

static size_t session_len(size_t n, uint32_t remaining_ms)
{
	return n + 1 + pb_varint_len(remaining_ms);
}

size_t pb_event_size(unsigned field, size_t n, uint32_t remaining_ms)
{
	size_t inner = 2 + pb_len_field_size(2, session_len(n, remaining_ms));
	return pb_len_field_size(field, inner);
}

int pb_put_event(struct buf *b, unsigned field, unsigned type,
		 const uint8_t *session, size_t n, uint32_t remaining_ms)
{
	size_t sl = session_len(n, remaining_ms);
	/* type < 128: one tag byte and one value byte */
	size_t inner = 2 + pb_len_field_size(2, sl);
	int r = buf_reserve(b, pb_len_field_size(field, inner));
	if (r < 0)
		return r;
	pb_put_len_hdr(b, field, inner);
	pb_put_varint(b, 1, type & 0x7f);
	pb_put_len_hdr(b, 2, sl);
	buf_put(b, session, n);
	pb_put_varint(b, PB_SESSION_REMAINING, remaining_ms);
	return 0;
}

/* read a varint at *pos (< n); -EPROTO when it runs past n or 10 bytes */
static int get_varint(const uint8_t *in, size_t n, size_t *pos, uint64_t *ret)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (*pos >= n)
			return -EPROTO;
		uint8_t c = in[(*pos)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EPROTO;
}

int pb_strip_field(const uint8_t *in, size_t n, unsigned field,
		   struct buf *out)
{
	size_t pos = 0;
	int r = buf_reserve(out, n);
	if (r < 0)
		return r;
	while (pos < n) {
		size_t start = pos;
		uint64_t tag, v;
		if (get_varint(in, n, &pos, &tag) < 0)
			return -EPROTO;
		switch (tag & 7) {
		case 0:
			if (get_varint(in, n, &pos, &v) < 0)
				return -EPROTO;
			break;
		case 1:
			if (n - pos < 8)
				return -EPROTO;
			pos += 8;
			break;
		case 2:
			if (get_varint(in, n, &pos, &v) < 0 || v > n - pos)
				return -EPROTO;
			pos += (size_t)v;
			break;
		case 5:
			if (n - pos < 4)
				return -EPROTO;
			pos += 4;
			break;
		default:
			return -EPROTO; /* groups: never in our messages */
		}
		if ((tag >> 3) != field)
			buf_put(out, in + start, pos - start);
	}
	return 0;
}

/* ---- reading in place ------------------------------------------------- */

int pb_next_field(const uint8_t *in, size_t n, size_t *pos, unsigned *field,
		      unsigned *wt, uint64_t *v, const uint8_t **data, size_t *len)
{
	uint64_t tag;
	if (get_varint(in, n, pos, &tag) < 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
		return -EPROTO;
	*field = (unsigned)(tag >> 3);
	*wt = (unsigned)(tag & 7);
	switch (*wt) {
	case 0:
		return get_varint(in, n, pos, v);
	case 1:
	case 5: {
		size_t w = *wt == 1 ? 8 : 4;
		if (n - *pos < w)
			return -EPROTO;
		*pos += w;
		return 0;
	}
	case 2:
		if (get_varint(in, n, pos, v) < 0 || *v > n - *pos)
			return -EPROTO;
		*data = in + *pos;
		*len = (size_t)*v;
		*pos += (size_t)*v;
		return 0;
	default:
		return -EPROTO;
	}
}

int pb_scan(const uint8_t *in, size_t n, unsigned field, uint64_t *varints,
	    unsigned n_varints, unsigned *seen)
{
	size_t pos = 0;
	int count = 0;
	*seen = 0;
	while (pos < n) {
		unsigned f, wt;
		uint64_t v = 0;
		const uint8_t *d;
		size_t l;
		if (pb_next_field(in, n, &pos, &f, &wt, &v, &d, &l) < 0)
			return -EPROTO;
		if (f == field && wt == PB_LEN)
			count++;
		else if (wt == PB_VARINT && f < n_varints && f < 32) {
			varints[f] = v;
			*seen |= 1u << f;
		}
	}
	return count;
}

void pb_events_begin(struct pb_events *it, const uint8_t *in, size_t n,
		     unsigned field)
{
	memset(it, 0, sizeof(*it));
	it->in = in;
	it->n = n;
	it->field = field;
}

/* the event in a SessionEvent's bytes; -EINVAL when a field it needs is
 * missing, -EPROTO when it is not well-formed */
static int read_event(const uint8_t *in, size_t n, struct pb_event *ev)
{
	size_t pos = 0;
	bool has_type = false, has_id = false, has_rem = false;
	ev->session = NULL;
	while (pos < n) {
		unsigned f, wt;
		uint64_t v = 0;
		const uint8_t *d = NULL;
		size_t l = 0;
		if (pb_next_field(in, n, &pos, &f, &wt, &v, &d, &l) < 0)
			return -EPROTO;
		if (f == 1 && wt == PB_VARINT) {
			ev->type = (unsigned)(v & 0xffffffffu);
			has_type = v <= 0x7f;
		} else if (f == 2 && wt == PB_LEN) {
			ev->session = d;
			ev->session_len = l;
		}
	}
	if (!ev->session)
		return has_type ? -EINVAL : -EPROTO;
	pos = 0;
	while (pos < ev->session_len) {
		unsigned f, wt;
		uint64_t v = 0;
		const uint8_t *d = NULL;
		size_t l = 0;
		if (pb_next_field(ev->session, ev->session_len, &pos, &f, &wt, &v, &d, &l) < 0)
			return -EPROTO;
		if (wt != PB_VARINT)
			continue;
		if (f == 1) {
			ev->id = v;
			has_id = true;
		} else if (f == PB_SESSION_REMAINING) {
			ev->remaining_ms = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
			has_rem = true;
		}
	}
	return has_type && has_id && has_rem ? 0 : -EINVAL;
}

int pb_events_next(struct pb_events *it, struct pb_event *ev)
{
	for (;;) {
		while (it->bpos < it->blen) {
			unsigned f, wt;
			uint64_t v = 0;
			const uint8_t *d = NULL;
			size_t l = 0;
			if (pb_next_field(it->batch, it->blen, &it->bpos, &f, &wt, &v, &d, &l) < 0) {
				it->pos = it->n; /* nothing after it can be trusted */
				it->blen = 0;
				return -EPROTO;
			}
			if (f != 1 || wt != PB_LEN)
				continue;
			int r = read_event(d, l, ev);
			return r < 0 ? r : 1;
		}
		/* the next EventBatch of the container */
		for (;;) {
			if (it->pos >= it->n)
				return 0;
			unsigned f, wt;
			uint64_t v = 0;
			const uint8_t *d = NULL;
			size_t l = 0;
			if (pb_next_field(it->in, it->n, &it->pos, &f, &wt, &v, &d, &l) < 0) {
				it->pos = it->n;
				return -EPROTO;
			}
			if (f == it->field && wt == PB_LEN) {
				it->batch = d;
				it->blen = l;
				it->bpos = 0;
				break;
			}
		}
	}
}

/* ---- arena ------------------------------------------------------------- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t mem[];
};

#define ARENA_MIN (64u << 10)

static void *arena_alloc(void *data, size_t size)
{
	struct arena *a = data;
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct arena_chunk *c = a->chunks;
	if (!c || c->cap - c->used < size) {
		size_t cap = c ? c->cap * 2 : ARENA_MIN;
		while (cap < size)
			cap *= 2;
		struct arena_chunk *n = malloc(sizeof(*n) + cap);
		if (!n)
			return NULL;
		n->next = c;
		n->used = 0;
		n->cap = cap;
		a->chunks = c = n;
		a->total += cap;
	}
	void *p = (uint8_t *)c->mem + c->used;
	c->used += size;
	return p;
}

static void arena_free_one(void *data, void *p)
{
	(void)data; /* released all at once by arena_reset() */
	(void)p;
}

void arena_init(struct arena *a)
{
	memset(a, 0, sizeof(*a));
	a->pa.alloc = arena_alloc;
	a->pa.free = arena_free_one;
	a->pa.allocator_data = a;
}

void arena_reset(struct arena *a)
{
	/* the newest chunk is the largest: keep it, free the rest */
	struct arena_chunk *c = a->chunks;
	if (!c)
		return;
	struct arena_chunk *n = c->next;
	while (n) {
		struct arena_chunk *nn = n->next;
		a->total -= n->cap;
		free(n);
		n = nn;
	}
	c->next = NULL;
	c->used = 0;
}

void arena_fini(struct arena *a)
{
	struct arena_chunk *c = a->chunks;
	while (c) {
		struct arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->chunks = NULL;
	a->total = 0;
}
