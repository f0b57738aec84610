/*
 * sess_table.c - one shard of the session table: pool, index, timer wheel.
 *
 * One writer (the worker that owns the shard), so nothing here locks. All
 * memory is taken in sess_table_new(); afterwards no function allocates,
 * blocks, makes a system call or logs. It must never touch a session that is
 * not its own, never move a live session in the pool (callers keep pointers
 * across packets), and never visit more than `budget` entries in one
 * expiry or ageing call.
 *
 * Pool: `capacity` struct sess (136 bytes) in one aligned block, zeroed at
 * creation so every page is touched before traffic. Free entries are chained
 * through tw_next (pool index + 1, 0 = end). A live session is always linked
 * in the wheel, so tw_prev != 0 is what tells live from free: a fresh session
 * has state 0 (== SS_FREE) until the caller's tracker sets it.
 *
 * Index: nbuckets = max(1, ceil(capacity / 8)) buckets of one cache line:
 *
 *     0      20           60        62    64
 *     | sig[10] | idx[10]   | passthru | pad |
 *
 * sig = low 16 bits of the hash (0 means empty, so a hash whose low bits are
 * 0 uses 1); idx = pool index. 10 slots per 8 sessions: at full capacity the
 * index is 80 % loaded and costs 8 bytes per session (136 + 8 = 144 bytes per
 * session, plus 16 KiB of wheel heads per shard). Home bucket =
 * (hash * nbuckets) >> 32, which needs no power-of-two bucket count and
 * takes the high hash bits, so sig (low bits) stays mostly independent.
 * A full home bucket spills into the following buckets (linear, wrapping);
 * `passthru` counts the entries that live beyond a bucket but have their home
 * at or before it, so a lookup can stop at the first bucket whose passthru
 * is 0. Entries never move after insertion. Bounds: a lookup reads its home
 * line plus one adjacent line per spill step. Measured on a full 1M pool:
 * 6.4 % of sessions sit outside their home bucket, 28 % of buckets have
 * passthru > 0 (a miss there reads the next line too), the longest spill is
 * 22 buckets. An insert refuses (-ENOSPC) rather than let a 16-bit passthru
 * overflow, which needs 65535 entries spilling over one bucket: only a
 * hostile key set could build that, and the hash's secret seed (random per
 * process, sess_hash_seed) keeps the buckets of keys unknown to a sender.
 *
 * Wheel: 4096 slots of 128 ms (one lap = 524.288 s). A session sits in exactly
 * one list: slot (t >> 7) & 4095 for some t at or before its real expiry and
 * never behind the cursor, or the "pending" list (the detached remainder of
 * the slot being processed when an expiry call ran out of budget). Lists are
 * doubly linked through tw_next/tw_prev with values 1..capacity = pool index
 * + 1 and capacity+1+h = list head h (h < 4096 a slot, 4096 pending), so a
 * session can be unlinked without knowing which list holds it (its s->expire
 * may have moved on lazily). s->expire holds the low 32 bits of the expiry in
 * ms; differences are taken as int32_t, valid for timeouts under 24 days.
 */
#include "sess_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define BUCKET_SLOTS 10
#define SLOT_SHIFT 7 /* 128 ms per wheel slot */
#define WHEEL_SLOTS 4096u
#define WHEEL_MASK (WHEEL_SLOTS - 1)
#define HEAD_PENDING WHEEL_SLOTS /* heads[] index of the pending list */
#define CAPACITY_MAX (1u << 28)
#define ID_COUNTER_MASK ((UINT64_C(1) << 40) - 1)
#define BURST_CHUNK 32 /* lookups in flight per burst stage */
#define HUGE_ALIGN (2u << 20)

struct bucket {
	uint16_t sig[BUCKET_SLOTS]; /*  0 20  0 = empty slot */
	uint32_t idx[BUCKET_SLOTS]; /* 20 40  pool index */
	uint16_t passthru;          /* 60  2  entries spilling past this bucket */
	uint16_t pad;               /* 62  2 */
};                                  /* 64: one cache line */
_Static_assert(sizeof(struct bucket) == 64, "bucket is one cache line");

struct sess_table {
	struct bucket *buckets; /* nbuckets, 64-byte aligned */
	struct sess *pool;      /* capacity entries */
	uint32_t nbuckets;
	uint32_t capacity;
	uint32_t count;
	uint32_t free_head;     /* pool index + 1, 0 = pool full */
	uint64_t id_base;       /* node id << 48 | shard << 40 */
	uint64_t id_next;       /* 40-bit counter, never 0 */
	uint64_t cursor_ms;     /* slots before cursor_ms >> 7 are processed */
	size_t pool_bytes, bucket_bytes;
	/* Slot heads then the pending head: pool index + 1, 0 = empty. */
	uint32_t heads[WHEEL_SLOTS + 1];
	sess_wake_fn wake;      /* keepalive wake-ups, may be NULL */
	void *wake_ctx;
};

/* ---- hash and key ---- */

/* Full 64x64->128 multiply folded to 64 bits: every input bit reaches
 * every output bit in one multiply, which is why five words need only
 * three of them. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
	unsigned __int128 p = (unsigned __int128)a * b;
	return (uint64_t)p ^ (uint64_t)(p >> 64);
#else
	uint64_t x = (a ^ (b >> 29)) * (b | 1);
	return x ^ (x >> 32) ^ (a * UINT64_C(0x9e3779b97f4a7c15));
#endif
}

/* The index's secret (sess_hash_seed): written once before any worker
 * starts, read-only afterwards. */
static uint64_t hash_seed[2];

void sess_hash_seed(uint64_t s0, uint64_t s1)
{
	hash_seed[0] = s0;
	hash_seed[1] = s1;
}

static inline uint32_t key_hash(const struct sess_key *k, uint64_t s0, uint64_t s1)
{
	uint64_t w[5];

	memcpy(w, k, sizeof(w));
	/* the seed enters the first two multiplies, before any key word is
	 * mixed with another: without it the bucket of a key is known from
	 * the source code alone */
	w[0] ^= s0;
	w[2] ^= s1;
	/* Two independent multiplies first so they overlap in the pipeline.
	 * The port/zone/proto word enters twice: in the last multiply alone
	 * its low-entropy ports (flows of one host pair) left buckets
	 * measurably uneven (chi-square/df 1.11 against 1.00). */
	uint64_t a = fold_mul(w[0] ^ UINT64_C(0x243f6a8885a308d3),
			      w[1] ^ w[4] ^ UINT64_C(0x13198a2e03707344));
	uint64_t b = fold_mul(w[2] ^ UINT64_C(0xa4093822299f31d0),
			      w[3] ^ UINT64_C(0x082efa98ec4e6c89));
	uint64_t h = fold_mul(a ^ w[4] ^ UINT64_C(0x452821e638d01377),
			      b ^ UINT64_C(0xbe5466cf34e90c6c));
	return (uint32_t)(h ^ (h >> 32));
}

uint32_t sess_key_hash(const struct sess_key *k)
{
	return key_hash(k, hash_seed[0], hash_seed[1]);
}

uint32_t sess_key_hash_unseeded(const struct sess_key *k)
{
	return key_hash(k, 0, 0);
}

void sess_key_make(struct sess_key *k, uint8_t family, uint8_t proto,
		   const uint8_t *src, const uint8_t *dst, uint16_t sport,
		   uint16_t dport, uint8_t zone_a, uint8_t zone_b,
		   unsigned *ret_side)
{
	int c = memcmp(src, dst, 16);
	unsigned side;

	if (c == 0)
		c = (sport > dport) - (sport < dport);
	side = c > 0; /* a flow to itself (c == 0) keeps src as side 0 */
	memcpy(k->addr[side], src, 16);
	memcpy(k->addr[!side], dst, 16);
	k->port[side] = sport;
	k->port[!side] = dport;
	k->zone = zone_a < zone_b ? (uint16_t)(zone_a << 8 | zone_b)
				  : (uint16_t)(zone_b << 8 | zone_a);
	k->proto = proto;
	k->family = family;
	if (ret_side)
		*ret_side = side;
}

static inline int key_eq(const struct sess_key *a, const struct sess_key *b)
{
	uint64_t x[5], y[5];

	memcpy(x, a, sizeof(x));
	memcpy(y, b, sizeof(y));
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) |
		(x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/* ---- index ---- */

static inline uint16_t sig_of(uint32_t hash)
{
	uint16_t s = (uint16_t)hash;
	return s ? s : 1;
}

static inline uint32_t bucket_of(const struct sess_table *t, uint32_t hash)
{
	return (uint32_t)(((uint64_t)hash * t->nbuckets) >> 32);
}

static inline uint32_t bucket_next(const struct sess_table *t, uint32_t b)
{
	return ++b == t->nbuckets ? 0 : b;
}

/* Slots of bk whose signature is sig, as a mask with bit 2*i for slot i. */
static inline uint32_t sig_match(const struct bucket *bk, uint16_t sig)
{
#ifdef __SSE2__
	__m128i want = _mm_set1_epi16((short)sig);
	__m128i lo = _mm_loadu_si128((const __m128i *)(const void *)&bk->sig[0]);
	__m128i hi = _mm_loadu_si128((const __m128i *)(const void *)&bk->sig[2]);
	uint32_t m = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(lo, want));

	/* hi covers slots 2..9: shifted by two slots it fills slots 8, 9. */
	m |= (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(hi, want)) << 4;
	return m & 0x55555;
#else
	uint32_t m = 0;

	for (unsigned i = 0; i < BUCKET_SLOTS; i++)
		if (bk->sig[i] == sig)
			m |= 1u << (2 * i);
	return m;
#endif
}

static inline unsigned mask_first(uint32_t m)
{
	return (unsigned)__builtin_ctz(m) >> 1;
}

static inline void prefetch_key(const struct sess *s)
{
	/* The 40-byte key straddles two lines for half of the pool entries
	 * (136-byte stride); a second prefetch of the same line is cheap. */
	__builtin_prefetch(s);
	__builtin_prefetch((const char *)s + sizeof(struct sess_key) - 1);
}

/* The wheel links of a random pool entry: a line other than its key's for
 * most entries. */
static inline void prefetch_links(const struct sess_table *t, uint32_t ref)
{
	if (ref && ref <= t->capacity)
		__builtin_prefetch(&t->pool[ref - 1].tw_next, 1);
}

/* Search k from bucket b on (b = home, or the one after a home already
 * searched). */
static struct sess *lookup_from(struct sess_table *t,
				const struct sess_key *k, uint16_t sig,
				uint32_t b)
{
	for (uint32_t steps = 0; steps < t->nbuckets; steps++) {
		const struct bucket *bk = &t->buckets[b];
		uint32_t m = sig_match(bk, sig);

		while (m) {
			struct sess *s = &t->pool[bk->idx[mask_first(m)]];

			if (key_eq(&s->key, k))
				return s;
			m &= m - 1;
		}
		if (bk->passthru == 0)
			return NULL;
		b = bucket_next(t, b);
	}
	return NULL;
}

struct sess *sess_table_lookup(struct sess_table *t, const struct sess_key *k,
			       uint32_t hash)
{
	return lookup_from(t, k, sig_of(hash), bucket_of(t, hash));
}

void sess_table_lookup_burst(struct sess_table *t,
			     const struct sess_key *const *keys,
			     const uint32_t *hashes, unsigned n,
			     struct sess **out)
{
	uint32_t home[BURST_CHUNK], match[BURST_CHUNK];

	while (n > 0) {
		unsigned m = n < BURST_CHUNK ? n : BURST_CHUNK;

		/* Stage 1: every home line in flight at once. */
		for (unsigned i = 0; i < m; i++) {
			home[i] = bucket_of(t, hashes[i]);
			__builtin_prefetch(&t->buckets[home[i]]);
		}
		/* Stage 2: signatures, then the candidate keys in flight. */
		for (unsigned i = 0; i < m; i++) {
			const struct bucket *bk = &t->buckets[home[i]];

			match[i] = sig_match(bk, sig_of(hashes[i]));
			if (match[i])
				prefetch_key(&t->pool[bk->idx[mask_first(match[i])]]);
		}
		/* Stage 3: compare; a chain past the home line is rare enough
		 * to take the plain path. */
		for (unsigned i = 0; i < m; i++) {
			const struct bucket *bk = &t->buckets[home[i]];
			uint32_t mm = match[i];
			struct sess *found = NULL;

			while (mm) {
				struct sess *s = &t->pool[bk->idx[mask_first(mm)]];

				if (key_eq(&s->key, keys[i])) {
					found = s;
					break;
				}
				mm &= mm - 1;
			}
			if (!found && bk->passthru)
				found = lookup_from(t, keys[i], sig_of(hashes[i]),
						    bucket_next(t, home[i]));
			out[i] = found;
		}
		keys += m;
		hashes += m;
		out += m;
		n -= m;
	}
}

/* ---- wheel ---- */

static inline uint32_t head_ref(const struct sess_table *t, uint32_t h)
{
	return t->capacity + 1 + h;
}

static inline uint32_t pool_idx(const struct sess_table *t,
				const struct sess *s)
{
	return (uint32_t)(s - t->pool);
}

static void wheel_link(struct sess_table *t, struct sess *s, uint32_t h)
{
	uint32_t ref = pool_idx(t, s) + 1, first = t->heads[h];

	s->tw_next = first;
	s->tw_prev = head_ref(t, h);
	if (first)
		t->pool[first - 1].tw_prev = ref;
	t->heads[h] = ref;
}

static void wheel_unlink(struct sess_table *t, struct sess *s)
{
	uint32_t prev = s->tw_prev, next = s->tw_next;

	if (prev > t->capacity)
		t->heads[prev - t->capacity - 1] = next;
	else
		t->pool[prev - 1].tw_next = next;
	if (next)
		t->pool[next - 1].tw_prev = prev;
	s->tw_next = s->tw_prev = 0;
}

/* Wheel slot for an expiry: its own, or the cursor's when it is already
 * behind the cursor (the earliest slot still to be visited). */
static inline uint32_t slot_for(const struct sess_table *t, uint64_t expire_ms)
{
	uint64_t a = expire_ms >> SLOT_SHIFT, c = t->cursor_ms >> SLOT_SHIFT;

	return (uint32_t)((a > c ? a : c) & WHEEL_MASK);
}

/* 64-bit expiry from the 32-bit s->expire, near now (< 24 days away). */
static inline uint64_t expire64(const struct sess *s, uint64_t now_ms)
{
	return now_ms + (uint64_t)(int64_t)(int32_t)(s->expire - (uint32_t)now_ms);
}

static inline int is_due(const struct sess *s, uint64_t now_ms)
{
	return (int32_t)(s->expire - (uint32_t)now_ms) <= 0;
}

uint64_t sess_remaining_ms(const struct sess *s, uint64_t now_ms)
{
	int32_t d = (int32_t)(s->expire - (uint32_t)now_ms);

	return d > 0 ? (uint64_t)d : 0;
}

/* ---- table ---- */

static void *alloc_block(size_t bytes)
{
	size_t align = bytes >= HUGE_ALIGN ? HUGE_ALIGN : 64;
	void *p;

	if (posix_memalign(&p, align, bytes) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	/* Random lookups over hundreds of MB miss the TLB on nearly every
	 * access with 4 KiB pages; ask for huge pages before touching. Only
	 * advice: a refusal changes nothing. */
	if (align == HUGE_ALIGN)
		(void)madvise(p, bytes & ~(size_t)(HUGE_ALIGN - 1), MADV_HUGEPAGE);
#endif
	memset(p, 0, bytes);
	return p;
}

int sess_table_new(uint32_t capacity, uint16_t node_id, uint8_t shard,
		   uint64_t now_ms, struct sess_table **ret)
{
	struct sess_table *t;

	if (!ret || capacity < 1 || capacity > CAPACITY_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->capacity = capacity;
	t->nbuckets = (capacity + 7) / 8;
	t->pool_bytes = (size_t)capacity * sizeof(struct sess);
	t->bucket_bytes = (size_t)t->nbuckets * sizeof(struct bucket);
	t->pool = alloc_block(t->pool_bytes);
	t->buckets = alloc_block(t->bucket_bytes);
	if (!t->pool || !t->buckets) {
		sess_table_free(t);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i + 1 < capacity; i++)
		t->pool[i].tw_next = i + 2;
	t->free_head = 1;
	t->id_base = (uint64_t)node_id << 48 | (uint64_t)shard << 40;
	t->id_next = 1;
	t->cursor_ms = now_ms;
	*ret = t;
	return 0;
}

void sess_table_free(struct sess_table *t)
{
	if (!t)
		return;
	free(t->pool);
	free(t->buckets);
	free(t);
}

uint32_t sess_table_count(const struct sess_table *t)
{
	return t->count;
}

uint32_t sess_table_capacity(const struct sess_table *t)
{
	return t->capacity;
}

size_t sess_table_memory(const struct sess_table *t)
{
	return sizeof(*t) + t->pool_bytes + t->bucket_bytes;
}

int sess_table_insert(struct sess_table *t, const struct sess_key *k,
		      uint32_t hash, uint64_t id, uint64_t now_ms,
		      uint64_t expire_ms, struct sess **ret)
{
	uint16_t sig = sig_of(hash);
	uint32_t home = bucket_of(t, hash), b = home, free_m, i;
	uint32_t slot = slot_for(t, expire_ms);
	struct sess *s;

	/* Linking touches the slot's first session, a random line: load it
	 * while the index is searched. */
	prefetch_links(t, t->heads[slot]);
	s = lookup_from(t, k, sig, home);

	if (s) {
		if (ret)
			*ret = s;
		return -EEXIST;
	}
	if (t->free_head == 0)
		return -ENOSPC;
	/* count < capacity <= 0.8 * slots, so a free slot exists. */
	while (!(free_m = sig_match(&t->buckets[b], 0))) {
		if (t->buckets[b].passthru == UINT16_MAX)
			return -ENOSPC;
		b = bucket_next(t, b);
	}
	for (uint32_t x = home; x != b; x = bucket_next(t, x))
		t->buckets[x].passthru++;

	i = t->free_head - 1;
	s = &t->pool[i];
	t->free_head = s->tw_next;
	memset(s, 0, sizeof(*s));
	s->key = *k;
	if (id == 0) {
		id = t->id_base | t->id_next;
		/* 2^40 ids per shard; skip 0 on the (theoretical) wrap. */
		t->id_next = (t->id_next + 1) & ID_COUNTER_MASK;
		if (t->id_next == 0)
			t->id_next = 1;
	}
	s->id = id;
	s->created = (uint32_t)(now_ms / 1000);
	s->expire = (uint32_t)expire_ms;
	t->buckets[b].sig[mask_first(free_m)] = sig;
	t->buckets[b].idx[mask_first(free_m)] = i;
	wheel_link(t, s, slot);
	t->count++;
	if (ret)
		*ret = s;
	return 0;
}

/* Remove s, whose key hashes to hash, from index and wheel; back to the
 * pool. */
static void remove_hashed(struct sess_table *t, struct sess *s, uint32_t hash)
{
	uint32_t i = pool_idx(t, s), home = bucket_of(t, hash), b = home;
	uint16_t sig = sig_of(hash);

	for (uint32_t steps = 0; steps < t->nbuckets; steps++) {
		struct bucket *bk = &t->buckets[b];
		uint32_t m = sig_match(bk, sig);

		for (; m; m &= m - 1) {
			unsigned slot = mask_first(m);

			if (bk->idx[slot] != i)
				continue;
			bk->sig[slot] = 0;
			bk->idx[slot] = 0;
			for (uint32_t x = home; x != b; x = bucket_next(t, x))
				t->buckets[x].passthru--;
			goto unindexed;
		}
		if (bk->passthru == 0)
			break;
		b = bucket_next(t, b);
	}
	/* Not indexed: s was not a live session of this table. */
	return;
unindexed:
	wheel_unlink(t, s);
	s->state = SS_FREE;
	s->tw_next = t->free_head;
	t->free_head = i + 1;
	t->count--;
}

void sess_table_remove(struct sess_table *t, struct sess *s)
{
	/* Both wheel neighbours are random lines: overlap them with the
	 * index walk instead of paying them after it. */
	prefetch_links(t, s->tw_prev);
	prefetch_links(t, s->tw_next);
	remove_hashed(t, s, sess_key_hash(&s->key));
}

void sess_table_set_expire(struct sess_table *t, struct sess *s,
			   uint64_t expire_ms)
{
	uint32_t e = (uint32_t)expire_ms;
	int later = (int32_t)(e - s->expire) >= 0;

	s->expire = e;
	/* Later: the slot it sits in comes first, and re-files it then. */
	if (later)
		return;
	wheel_unlink(t, s);
	wheel_link(t, s, slot_for(t, expire_ms));
}

/* Pop the pending list, expiring or re-filing each entry, until empty or
 * *visits reaches budget. A list walk learns each address from the entry
 * before it, so it costs one memory latency per cold entry whatever is
 * prefetched (measured: within 10 % of a bare pointer chase); fetching the
 * next entry early only overlaps it with this entry's index line. */
static unsigned drain_pending(struct sess_table *t, uint64_t now_ms,
			      unsigned budget, unsigned *visits, sess_cb cb,
			      void *ctx)
{
	unsigned expired = 0;

	while (t->heads[HEAD_PENDING] && *visits < budget) {
		struct sess *s = &t->pool[t->heads[HEAD_PENDING] - 1];

		if (s->tw_next) {
			const struct sess *n = &t->pool[s->tw_next - 1];

			prefetch_key(n);
			__builtin_prefetch(&n->expire, 1); /* and the links */
		}
		(*visits)++;
		if (is_due(s, now_ms)) {
			if (cb)
				cb(ctx, s);
			remove_hashed(t, s, sess_key_hash(&s->key));
			expired++;
		} else {
			/* Not due means expiry > now >= cursor: a slot ahead,
			 * possibly this same index one lap on. A keepalive
			 * session may want a visit before that. */
			uint64_t at = expire64(s, now_ms);
			if (t->wake && (s->flags & SF_KEEPALIVE)) {
				uint64_t w = t->wake(t->wake_ctx, s, now_ms);
				if (w && w < at)
					at = w > now_ms ? w : now_ms + 1;
			}
			wheel_unlink(t, s);
			wheel_link(t, s, slot_for(t, at));
		}
	}
	return expired;
}

/* cb may read the session but not insert or remove: the detached list is
 * being walked. */
unsigned sess_table_expire(struct sess_table *t, uint64_t now_ms,
			   unsigned budget, sess_cb cb, void *ctx,
			   bool *ret_done)
{
	unsigned expired = 0, visits = 0;

	if (t->count == 0) {
		/* Nothing filed anywhere: no slot needs visiting. */
		if (now_ms > t->cursor_ms)
			t->cursor_ms = now_ms;
		if (ret_done)
			*ret_done = true;
		return 0;
	}
	for (;;) {
		expired += drain_pending(t, now_ms, budget, &visits, cb, ctx);
		if (t->heads[HEAD_PENDING])
			break; /* budget spent mid-slot: resume here */
		if (t->count == 0) {
			if (now_ms > t->cursor_ms)
				t->cursor_ms = now_ms;
			break;
		}

		uint64_t cs = t->cursor_ms >> SLOT_SHIFT, ns = now_ms >> SLOT_SHIFT;

		if (cs >= ns || visits >= budget)
			break; /* caught up (the cursor slot ends after now) */
		/* More than a lap behind: one full lap visits every list once,
		 * which expires or re-files everything, so older laps add
		 * nothing. */
		if (ns - cs > WHEEL_SLOTS)
			cs = ns - WHEEL_SLOTS;
		/* The cursor moves past the slot as it is detached, so
		 * re-filed entries land a lap on, never back into it. */
		t->cursor_ms = (cs + 1) << SLOT_SHIFT;

		uint32_t h = (uint32_t)(cs & WHEEL_MASK), first = t->heads[h];

		if (!first) {
			visits++;
			continue;
		}
		t->heads[h] = 0;
		t->heads[HEAD_PENDING] = first;
		t->pool[first - 1].tw_prev = head_ref(t, HEAD_PENDING);
	}
	if (ret_done)
		*ret_done = !t->heads[HEAD_PENDING] &&
			    (t->cursor_ms >> SLOT_SHIFT) >= (now_ms >> SLOT_SHIFT);
	return expired;
}

/* One session seen by age_early: remove it, or move it to the slot of its
 * real expiry so the next call does not pay for it again. */
static int age_one(struct sess_table *t, struct sess *s, uint64_t now_ms,
		   uint64_t window_ms, uint32_t cur_head, sess_cb cb, void *ctx)
{
	if (sess_remaining_ms(s, now_ms) < window_ms) {
		if (cb)
			cb(ctx, s);
		sess_table_remove(t, s);
		return 1;
	}
	uint32_t h = slot_for(t, expire64(s, now_ms));

	if (h != cur_head) {
		wheel_unlink(t, s);
		wheel_link(t, s, h);
	}
	return 0;
}

unsigned sess_table_age_early(struct sess_table *t, uint64_t now_ms,
			      uint64_t window_ms, unsigned budget, sess_cb cb,
			      void *ctx)
{
	unsigned removed = 0, visits = 0;
	uint64_t cs = t->cursor_ms >> SLOT_SHIFT;
	uint64_t last = (now_ms + window_ms) >> SLOT_SHIFT;

	if (last < cs)
		last = cs;
	if (last - cs >= WHEEL_SLOTS)
		last = cs + WHEEL_SLOTS - 1;
	/* The pending list belongs to a slot already passed: it comes first. */
	while (t->heads[HEAD_PENDING] && visits < budget) {
		visits++;
		removed += age_one(t, &t->pool[t->heads[HEAD_PENDING] - 1],
				   now_ms, window_ms, HEAD_PENDING, cb, ctx);
	}
	for (uint64_t a = cs; a <= last && visits < budget; a++) {
		uint32_t h = (uint32_t)(a & WHEEL_MASK), v = t->heads[h];

		if (!v)
			visits++;
		/* age_one re-files only to other heads, so the saved next
		 * stays valid; an entry moved to a slot still ahead is seen
		 * again there, in its own slot, and stays. */
		while (v && visits < budget) {
			struct sess *s = &t->pool[v - 1];

			v = s->tw_next;
			visits++;
			removed += age_one(t, s, now_ms, window_ms, h, cb, ctx);
		}
	}
	return removed;
}

bool sess_table_evict_one(struct sess_table *t, unsigned budget,
			  sess_score score, sess_cb cb, void *ctx)
{
	unsigned visits = 0;
	struct sess *best = NULL;
	uint64_t best_score = 0;
	uint32_t best_slot = 0;
	uint64_t cs = t->cursor_ms >> SLOT_SHIFT;
	for (uint64_t a = 0; a <= WHEEL_SLOTS && visits < budget; a++) {
		/* the pending list (slots already passed) first, then the
		 * slots from the cursor on: soonest to expire first */
		uint32_t h = a == 0 ? HEAD_PENDING
				    : (uint32_t)((cs + a - 1) & WHEEL_MASK);
		uint32_t v = t->heads[h];
		/* an empty slot costs one read of the head array: those are
		 * bounded by the wheel's size, sessions by the budget */
		for (; v && visits < budget; visits++) {
			struct sess *s = &t->pool[v - 1];
			v = s->tw_next;
			uint64_t sc = score(ctx, s);
			/* ties go to the older: an earlier slot, or later in
			 * a slot's list (newest first) */
			if (sc > best_score ||
			    (sc && sc == best_score && best_slot == h)) {
				best = s;
				best_score = sc;
				best_slot = h;
			}
		}
	}
	if (!best)
		return false;
	cb(ctx, best);
	sess_table_remove(t, best);
	return true;
}

void sess_table_foreach(struct sess_table *t, sess_cb cb, void *ctx)
{
	for (uint32_t i = 0; i < t->capacity; i++)
		if (t->pool[i].tw_prev != 0)
			cb(ctx, &t->pool[i]);
}

/* NULL for an index out of range or a free entry, so a caller walking
 * indexes never sees a recycled session's leftovers. */
struct sess *sess_table_at(struct sess_table *t, uint32_t idx)
{
	if (idx >= t->capacity || t->pool[idx].tw_prev == 0)
		return NULL;
	return &t->pool[idx];
}

uint32_t sess_table_index(const struct sess_table *t, const struct sess *s)
{
	return pool_idx(t, s);
}

void sess_table_set_wake(struct sess_table *t, sess_wake_fn fn, void *ctx)
{
	t->wake = fn;
	t->wake_ctx = ctx;
}

void sess_table_wake_at(struct sess_table *t, struct sess *s, uint64_t wake_ms)
{
	/* never later than its expiry, never behind the cursor (slot_for) */
	if ((int32_t)((uint32_t)wake_ms - s->expire) >= 0)
		return;
	wheel_unlink(t, s);
	wheel_link(t, s, slot_for(t, wake_ms));
}
