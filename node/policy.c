/*
 * policy.c - the compiled rule set: bit-vector classification.
 *
 * Bit i of every bitset stands for rule i (rule order = priority), so the
 * first matching rule is the lowest bit set in the AND of one bitset per
 * field. Five fields: source address, destination address (one structure
 * per family), service point, from-zone, to-zone.
 *
 * Address and service fields are cut into sorted elementary intervals (from
 * every rule's range endpoints); an interval carries the bitset of the rules
 * whose ranges cover it, and a binary search finds the interval of a value.
 * Zone fields are tables indexed by zone id (0..CFG_MAX_ZONES-1) of dense
 * bitsets (rules naming the zone or "any").
 *
 * Memory is what usually sinks bit-vector schemes (intervals x rules bits),
 * so an address or service field's bitset is the OR of three parts:
 *  - wildcard: the rules with "any" in that field, one dense bitset per
 *    field (they cover every interval, so storing them once is enough);
 *  - two tiers of specific ranges, wide and narrow, each with its own
 *    intervals (see struct field for why);
 *  - each interval's bitset is stored sparse: a summary (bit j set = word j
 *    non-zero), then only the non-zero words, packed; identical bitsets are
 *    stored once (dedupe).
 * A lookup ANDs the summaries first and then, word by word where every
 * summary has a bit, the zone words and the fields' words (a word is
 * found by counting summary bits below it), stopping at the first word
 * with a bit left: its lowest bit is the answer. The work is the number of
 * such candidate words: far below the rule count when fields are
 * selective, but a rule set full of "any" and broad ranges makes many
 * words candidates (bench_policy: about 1 us at 10,000 random rules
 * against 20 us for the scan).
 *
 * Service point: (proto << 16 | dport) for TCP/UDP; (proto << 16 | type) for
 * ICMP/ICMPv6 (the type in the low 16 bits, so the query's 16-bit type maps
 * exactly: a type outside 0..255 matches only any-type services, as in
 * policy_match_linear); (proto << 16) for every other protocol, whose rules
 * cover proto << 16 .. proto << 16 | 0xffff. Service "any" covers all.
 *
 * Families: a rule whose address list has no prefix of a family (and is not
 * "any") has no range and no wildcard bit in that family's address fields,
 * so it can never match that family.
 *
 * Must never: allocate, lock or write anything in policy_match() (workers
 * share one compiled policy); change after policy_compile() returns.
 */
#include "policy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

#define SVC_MAX  0xffffffu  /* service points are 24 bits */
#define POOL_MAX 0xffffffffu /* pool offsets are uint32_t */

/* Elementary intervals of one tier: key[i] = first value of interval i
 * (key[0] = 0), ref[i] = pool offset of its sparse bitset. */
struct ifield {
	unsigned n;
	uint32_t *k32;   /* IPv4 and service fields */
	u128 *k128;      /* IPv6 fields */
	uint32_t *ref;
};

/* Ranges are split by width into tiers, each with its own intervals, and
 * the field's bitset for a value is the OR of the tiers' bitsets (and the
 * wildcard). Why: a range lands in every elementary interval it covers,
 * so wide ranges (a /16, every TCP port) among many narrow ones would be
 * copied into thousands of intervals (memory grows as rules squared: 720
 * MiB for 65,000 random rules in one tier). Wide ranges alone have few
 * distinct endpoints, narrow ones overlap little, so each tier stays
 * small. */
#define NT 2             /* tier 0: wide ranges, tier 1: narrow */
#define WIDE_V4_LEN 24   /* prefixes shorter than this are wide */
#define WIDE_V6_LEN 64
#define WIDE_SVC    256  /* service ranges of more points are wide */

struct field {
	struct ifield t[NT];
	uint32_t wild;   /* pool offset: nwords dense words, then nsum summary */
};

/* A zone field: per zone id (0 = unknown) the pool offset of a dense
 * bitset of the rules naming that zone or "any" (nwords words, then nsum
 * summary words). Dense because there are at most CFG_MAX_ZONES of them
 * and a lookup then reads a word without any rank computation. */
struct zfield {
	uint32_t ref[CFG_MAX_ZONES];
};

struct policy {
	const struct tandem_config *c;
	unsigned nbits, nwords, nsum;
	uint64_t *pool;  /* every bitset; fields hold offsets */
	size_t pool_n;
	struct field src4, dst4, src6, dst6, svc;
	struct zfield from, to;
	uint64_t hash;
	size_t mem;
};

/* ------------------------------------------------------------------ */
/* Lookup                                                               */

/* One field's bitset for one query: wildcard | tier 0 | tier 1. */
struct bv {
	const uint64_t *sum[NT];    /* nsum words: a tier's non-zero words */
	const uint64_t *packed[NT]; /* that tier's non-zero words */
	const uint64_t *wild;       /* nwords dense wildcard words */
	const uint64_t *wsum;       /* its nsum summary words */
};

/* Last i with k[i] <= x; k[0] == 0 so it exists. */
static unsigned find32(const uint32_t *k, unsigned n, uint32_t x)
{
	unsigned lo = 0;

	while (n > 1) {
		unsigned half = n / 2;

		if (k[lo + half] <= x)
			lo += half;
		n -= half;
	}
	return lo;
}

static unsigned find128(const u128 *k, unsigned n, u128 x)
{
	unsigned lo = 0;

	while (n > 1) {
		unsigned half = n / 2;

		if (k[lo + half] <= x)
			lo += half;
		n -= half;
	}
	return lo;
}

static void bv_wild(const struct policy *p, struct bv *v, const struct field *f)
{
	v->wild = p->pool + f->wild;
	v->wsum = v->wild + p->nwords;
}

static void bv_tier(const struct policy *p, struct bv *v, int t, uint32_t ref)
{
	v->sum[t] = p->pool + ref;
	v->packed[t] = v->sum[t] + p->nsum;
}

static uint32_t be32(const uint8_t *a)
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
	       (uint32_t)a[2] << 8 | a[3];
}

static u128 be128(const uint8_t *a)
{
	u128 v = 0;

	for (int i = 0; i < 16; i++)
		v = v << 8 | a[i];
	return v;
}

static uint32_t svc_point(uint8_t proto, uint16_t dport, uint16_t icmp_type)
{
	uint32_t base = (uint32_t)proto << 16;

	if (proto == 6 || proto == 17)
		return base | dport;
	if (proto == 1 || proto == 58)
		return base | icmp_type;
	return base;
}

/* Without -mpopcnt the builtin is a libgcc call; this stays inline. */
static inline unsigned pop64(uint64_t x)
{
	x -= (x >> 1) & 0x5555555555555555ull;
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

#define NS 3 /* sparse fields per lookup */

/* Candidate words are those where every field's summary has a bit; in
 * each, the cheap dense zone words are ANDed first and the sparse fields
 * after, stopping as soon as no rule is left (the order of the sparse
 * fields puts the usually most selective first: destination, service,
 * source). */
const struct cfg_rule *policy_match(const struct policy *p,
				    const struct policy_query *q)
{
	const struct field *fs, *fd;
	const uint64_t *zf, *zt;
	struct bv v[NS];
	unsigned base[NS][NT] = { { 0 } };

	if (!p || !q || !q->src || !q->dst || (q->family != 4 && q->family != 6))
		return NULL;
	fs = q->family == 4 ? &p->src4 : &p->src6;
	fd = q->family == 4 ? &p->dst4 : &p->dst6;
	bv_wild(p, &v[0], fd);
	bv_wild(p, &v[1], &p->svc);
	bv_wild(p, &v[2], fs);
	for (int t = 0; t < NT; t++) {
		const struct ifield *d = &fd->t[t], *s = &fs->t[t], *sv = &p->svc.t[t];

		if (q->family == 4) {
			bv_tier(p, &v[0], t, d->ref[find32(d->k32, d->n, be32(q->dst))]);
			bv_tier(p, &v[2], t, s->ref[find32(s->k32, s->n, be32(q->src))]);
		} else {
			bv_tier(p, &v[0], t, d->ref[find128(d->k128, d->n, be128(q->dst))]);
			bv_tier(p, &v[2], t, s->ref[find128(s->k128, s->n, be128(q->src))]);
		}
		bv_tier(p, &v[1], t,
			sv->ref[find32(sv->k32, sv->n,
				       svc_point(q->proto, q->dport, q->icmp_type))]);
	}
	/* Ids beyond the table are unknown zones: only "any" rules match,
	 * exactly as in the linear scan (no rule names such a zone). */
	zf = p->pool + p->from.ref[q->zone_from < CFG_MAX_ZONES ? q->zone_from : 0];
	zt = p->pool + p->to.ref[q->zone_to < CFG_MAX_ZONES ? q->zone_to : 0];

	for (unsigned j = 0; j < p->nsum; j++) {
		uint64_t sj[NS][NT], cand = zf[p->nwords + j] & zt[p->nwords + j];

		_Pragma("GCC unroll 4")
		for (int f = 0; f < NS; f++) {
			uint64_t any = v[f].wsum[j];

			_Pragma("GCC unroll 4")
			for (int t = 0; t < NT; t++) {
				sj[f][t] = v[f].sum[t][j];
				any |= sj[f][t];
			}
			cand &= any;
		}
		while (cand) {
			unsigned b = (unsigned)__builtin_ctzll(cand);
			unsigned w = j * 64 + b;
			uint64_t below = (1ull << b) - 1, x = zf[w] & zt[w];

			_Pragma("GCC unroll 4")
			for (int f = 0; f < NS; f++) {
				uint64_t word = v[f].wild[w];

				if (!x)
					break;
				_Pragma("GCC unroll 4")
				for (int t = 0; t < NT; t++)
					if (sj[f][t] >> b & 1)
						word |= v[f].packed[t][base[f][t] +
								       pop64(sj[f][t] & below)];
				x &= word;
			}
			if (x)
				return &p->c->rules[w * 64 + (unsigned)__builtin_ctzll(x)];
			cand &= cand - 1;
		}
		_Pragma("GCC unroll 4")
		for (int f = 0; f < NS; f++)
			_Pragma("GCC unroll 4")
			for (int t = 0; t < NT; t++)
				base[f][t] += pop64(sj[f][t]);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Reference scan                                                       */

static bool prefix_has(const struct cfg_prefix *pf, uint8_t family,
		       const uint8_t *addr)
{
	unsigned full = pf->len / 8, rest = pf->len % 8;

	if (pf->family != family)
		return false;
	if (memcmp(pf->addr, addr, full) != 0)
		return false;
	return rest == 0 ||
	       ((pf->addr[full] ^ addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static bool addr_in(const struct cfg_prefix *list, unsigned n, uint8_t family,
		    const uint8_t *addr)
{
	if (n == 0)
		return true;
	for (unsigned i = 0; i < n; i++)
		if (prefix_has(&list[i], family, addr))
			return true;
	return false;
}

static bool svc_has(const struct cfg_service *s, const struct policy_query *q)
{
	if (s->proto == 0)
		return true;
	if (s->proto != q->proto)
		return false;
	if (s->proto == 6 || s->proto == 17)
		return s->port_lo <= q->dport && q->dport <= s->port_hi;
	if (s->proto == 1 || s->proto == 58)
		return s->icmp_type == 0xffff || s->icmp_type == q->icmp_type;
	return true;
}

const struct cfg_rule *policy_match_linear(const struct tandem_config *c,
					   const struct policy_query *q)
{
	if (!c || !q || !q->src || !q->dst || (q->family != 4 && q->family != 6))
		return NULL;
	for (unsigned i = 0; i < c->n_rules; i++) {
		const struct cfg_rule *r = &c->rules[i];
		bool svc_ok = r->n_svc == 0;

		if ((r->from_zone && r->from_zone != q->zone_from) ||
		    (r->to_zone && r->to_zone != q->zone_to))
			continue;
		if (!addr_in(r->src, r->n_src, q->family, q->src) ||
		    !addr_in(r->dst, r->n_dst, q->family, q->dst))
			continue;
		for (unsigned k = 0; k < r->n_svc && !svc_ok; k++)
			svc_ok = svc_has(&r->svc[k], q);
		if (svc_ok)
			return r;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Compile                                                              */

struct range {
	u128 lo, hi; /* inclusive */
	uint32_t rule;
};

struct ev {
	u128 pos;
	uint32_t rule;
	int32_t delta; /* +1 range starts here, -1 it ended just before */
};

struct dd_slot {
	uint64_t hash;
	uint32_t off, len; /* len 0 = empty slot: a stored bitset has >= 1 word */
};

struct builder {
	struct policy *p;
	unsigned nwords, nsum;
	uint64_t *pool;
	size_t pool_n, pool_cap;
	struct dd_slot *dd; /* dedupe table over stored bitsets */
	size_t dd_mask, dd_used;
	uint64_t *tmp;      /* bitset being interned (<= nsum + nwords words) */
	uint64_t *dense, *dsum; /* sweep state */
	uint32_t *count;    /* covering ranges per rule during a sweep */
};

static int pool_reserve(struct builder *B, size_t more)
{
	size_t need = B->pool_n + more, cap = B->pool_cap ? B->pool_cap : 1024;
	uint64_t *np;

	if (need > POOL_MAX)
		return -E2BIG;
	if (need <= B->pool_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	np = realloc(B->pool, cap * sizeof(*np));
	if (!np)
		return -ENOMEM;
	B->pool = np;
	B->pool_cap = cap;
	return 0;
}

static uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static int dd_grow(struct builder *B)
{
	size_t n = (B->dd_mask + 1) * 2;
	struct dd_slot *nd = calloc(n, sizeof(*nd));

	if (!nd)
		return -ENOMEM;
	for (size_t i = 0; i <= B->dd_mask; i++) {
		size_t k;

		if (!B->dd[i].len)
			continue;
		for (k = B->dd[i].hash & (n - 1); nd[k].len; k = (k + 1) & (n - 1))
			;
		nd[k] = B->dd[i];
	}
	free(B->dd);
	B->dd = nd;
	B->dd_mask = n - 1;
	return 0;
}

/* Store len words (B->tmp), shared with an identical run already stored:
 * identical words read the same whoever stored them. */
static int intern_tmp(struct builder *B, uint32_t len, uint32_t *ret)
{
	uint64_t h = 0;
	size_t k;
	int r;

	for (uint32_t i = 0; i < len; i++)
		h = mix(h, B->tmp[i]);
	h = mix(h, len);
	for (k = h & B->dd_mask; B->dd[k].len; k = (k + 1) & B->dd_mask)
		if (B->dd[k].hash == h && B->dd[k].len == len &&
		    !memcmp(B->pool + B->dd[k].off, B->tmp, len * sizeof(uint64_t))) {
			*ret = B->dd[k].off;
			return 0;
		}
	if ((r = pool_reserve(B, len)) < 0)
		return r;
	memcpy(B->pool + B->pool_n, B->tmp, len * sizeof(uint64_t));
	B->dd[k].hash = h;
	B->dd[k].len = len;
	B->dd[k].off = (uint32_t)B->pool_n;
	*ret = (uint32_t)B->pool_n;
	B->pool_n += len;
	/* len >= 1 always (nsum >= 1), so len doubles as the "used" mark. */
	if (++B->dd_used * 2 > B->dd_mask + 1)
		return dd_grow(B);
	return 0;
}

/* Store dense[]/dsum[] as a sparse bitset: summary, then the non-zero
 * words only. */
static int intern(struct builder *B, const uint64_t *dense, const uint64_t *dsum,
		  uint32_t *ret)
{
	uint32_t len = B->nsum;

	memcpy(B->tmp, dsum, B->nsum * sizeof(uint64_t));
	for (unsigned j = 0; j < B->nsum; j++)
		for (uint64_t s = dsum[j]; s; s &= s - 1)
			B->tmp[len++] = dense[j * 64 + (unsigned)__builtin_ctzll(s)];
	return intern_tmp(B, len, ret);
}

static void summarize(const struct builder *B, const uint64_t *dense,
		      uint64_t *sum)
{
	memset(sum, 0, B->nsum * sizeof(uint64_t));
	for (unsigned w = 0; w < B->nwords; w++)
		if (dense[w])
			sum[w / 64] |= 1ull << (w % 64);
}

/* Store a dense wildcard bitset (nwords words, then its nsum summary). */
static int add_wild(struct builder *B, const uint64_t *dense, uint32_t *ret)
{
	int r = pool_reserve(B, (size_t)B->nwords + B->nsum);

	if (r < 0)
		return r;
	*ret = (uint32_t)B->pool_n;
	memcpy(B->pool + B->pool_n, dense, B->nwords * sizeof(uint64_t));
	summarize(B, dense, B->pool + B->pool_n + B->nwords);
	B->pool_n += (size_t)B->nwords + B->nsum;
	return 0;
}

static int ev_cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sweep the ranges' endpoints in order, keeping the set of covering rules
 * (a rule may have several overlapping ranges, hence counts), and emit an
 * interval wherever that set changes. */
static int build_ifield(struct builder *B, const struct range *rg, size_t nr,
			u128 max, bool wide, struct ifield *out)
{
	struct ev *ev = NULL;
	size_t ne = 0, i = 0;
	u128 *keys = NULL;
	uint32_t *refs = NULL, ref;
	unsigned n = 0;
	int r = -ENOMEM;

	ev = malloc((2 * nr + 1) * sizeof(*ev));
	keys = malloc((2 * nr + 1) * sizeof(*keys));
	refs = malloc((2 * nr + 1) * sizeof(*refs));
	if (!ev || !keys || !refs)
		goto out;
	for (size_t k = 0; k < nr; k++) {
		ev[ne++] = (struct ev){ rg[k].lo, rg[k].rule, +1 };
		if (rg[k].hi < max)
			ev[ne++] = (struct ev){ rg[k].hi + 1, rg[k].rule, -1 };
	}
	qsort(ev, ne, sizeof(*ev), ev_cmp);
	memset(B->dense, 0, B->nwords * sizeof(uint64_t));
	memset(B->dsum, 0, B->nsum * sizeof(uint64_t));
	memset(B->count, 0, B->p->nbits * sizeof(uint32_t));
	if (ne == 0 || ev[0].pos != 0) {
		if ((r = intern(B, B->dense, B->dsum, &ref)) < 0)
			goto out;
		keys[n] = 0;
		refs[n++] = ref;
	}
	while (i < ne) {
		u128 pos = ev[i].pos;

		for (; i < ne && ev[i].pos == pos; i++) {
			uint32_t ru = ev[i].rule, w = ru / 64;
			uint64_t bit = 1ull << (ru % 64);

			if (ev[i].delta > 0) {
				if (B->count[ru]++ == 0) {
					B->dense[w] |= bit;
					B->dsum[w / 64] |= 1ull << (w % 64);
				}
			} else if (--B->count[ru] == 0) {
				B->dense[w] &= ~bit;
				if (!B->dense[w])
					B->dsum[w / 64] &= ~(1ull << (w % 64));
			}
		}
		if ((r = intern(B, B->dense, B->dsum, &ref)) < 0)
			goto out;
		if (n > 0 && refs[n - 1] == ref)
			continue; /* same set as the interval before: merge */
		keys[n] = pos;
		refs[n++] = ref;
	}
	out->n = n;
	out->ref = refs;
	refs = NULL;
	if (wide) {
		out->k128 = keys;
		keys = NULL;
	} else {
		out->k32 = malloc(n * sizeof(uint32_t));
		if (!out->k32)
			goto out;
		for (unsigned k = 0; k < n; k++)
			out->k32[k] = (uint32_t)keys[k];
	}
	r = 0;
out:
	free(ev);
	free(keys);
	free(refs);
	return r;
}

struct rvec {
	struct range *v;
	size_t n, cap;
};

static int rvec_push(struct rvec *rv, u128 lo, u128 hi, uint32_t rule)
{
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 64;
		struct range *nv = realloc(rv->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		rv->v = nv;
		rv->cap = cap;
	}
	rv->v[rv->n++] = (struct range){ lo, hi, rule };
	return 0;
}

static void bit_set(uint64_t *d, unsigned i)
{
	d[i / 64] |= 1ull << (i % 64);
}

/* The wildcard (dense, in B->dense) and the tiers of one field. */
static int build_field(struct builder *B, struct rvec *rv, u128 max, bool wide,
		       struct field *out)
{
	int r = add_wild(B, B->dense, &out->wild);

	for (int t = 0; t < NT && r == 0; t++)
		r = build_ifield(B, rv[t].v, rv[t].n, max, wide, &out->t[t]);
	return r;
}

/* Source (side 0) or destination (side 1) addresses of one family. */
static int build_addr(struct builder *B, int side, uint8_t family,
		      struct field *out)
{
	const struct tandem_config *c = B->p->c;
	unsigned bits = family == 4 ? 32 : 128;
	unsigned wide_len = family == 4 ? WIDE_V4_LEN : WIDE_V6_LEN;
	u128 max = family == 4 ? (u128)0xffffffffu : ~(u128)0;
	struct rvec rv[NT] = { { 0 } };
	int r = 0;

	memset(B->dense, 0, B->nwords * sizeof(uint64_t));
	for (unsigned i = 0; i < c->n_rules && r == 0; i++) {
		const struct cfg_rule *ru = &c->rules[i];
		const struct cfg_prefix *list = side ? ru->dst : ru->src;
		unsigned n = side ? ru->n_dst : ru->n_src;

		if (n == 0)
			bit_set(B->dense, i);
		for (unsigned k = 0; k < n && r == 0; k++) {
			u128 a, host;

			if (list[k].family != family)
				continue;
			a = family == 4 ? be32(list[k].addr) : be128(list[k].addr);
			host = list[k].len >= bits ? 0 : max >> list[k].len;
			r = rvec_push(&rv[list[k].len < wide_len ? 0 : 1], a & ~host,
				      (a & ~host) | host, i);
		}
	}
	if (r == 0)
		r = build_field(B, rv, max, family == 6, out);
	for (int t = 0; t < NT; t++)
		free(rv[t].v);
	return r;
}

static int build_svc(struct builder *B, struct field *out)
{
	const struct tandem_config *c = B->p->c;
	struct rvec rv[NT] = { { 0 } };
	int r = 0;

	memset(B->dense, 0, B->nwords * sizeof(uint64_t));
	for (unsigned i = 0; i < c->n_rules && r == 0; i++) {
		const struct cfg_rule *ru = &c->rules[i];
		bool any = ru->n_svc == 0;

		for (unsigned k = 0; k < ru->n_svc; k++)
			any |= ru->svc[k].proto == 0;
		if (any) {
			bit_set(B->dense, i);
			continue;
		}
		for (unsigned k = 0; k < ru->n_svc && r == 0; k++) {
			const struct cfg_service *s = &ru->svc[k];
			uint32_t base = (uint32_t)s->proto << 16, lo, hi;

			if (s->proto == 6 || s->proto == 17) {
				if (s->port_lo > s->port_hi)
					continue; /* matches nothing, as in the scan */
				lo = base | s->port_lo;
				hi = base | s->port_hi;
			} else if ((s->proto == 1 || s->proto == 58) &&
				   s->icmp_type != 0xffff) {
				lo = hi = base | s->icmp_type;
			} else {
				lo = base;
				hi = base | 0xffff;
			}
			r = rvec_push(&rv[hi - lo >= WIDE_SVC ? 0 : 1], lo, hi, i);
		}
	}
	if (r == 0)
		r = build_field(B, rv, SVC_MAX, false, out);
	for (int t = 0; t < NT; t++)
		free(rv[t].v);
	return r;
}

static int build_zone(struct builder *B, bool to, struct zfield *out)
{
	const struct tandem_config *c = B->p->c;
	int r;

	/* Zone 0 (unknown) gets only the "any" rules. */
	for (unsigned z = 0; z < CFG_MAX_ZONES; z++) {
		uint64_t *d = B->tmp;

		memset(d, 0, B->nwords * sizeof(uint64_t));
		for (unsigned i = 0; i < c->n_rules; i++) {
			uint8_t rz = to ? c->rules[i].to_zone : c->rules[i].from_zone;

			if (rz == 0 || rz == z)
				bit_set(d, i);
		}
		summarize(B, d, d + B->nwords);
		if ((r = intern_tmp(B, B->nwords + B->nsum, &out->ref[z])) < 0)
			return r;
	}
	return 0;
}

/* FNV-1a over a canonical serialization of the rules (names, zone names,
 * lists, verdict fields; not line numbers, not zone ids). */
struct fnv {
	uint64_t h;
};

static void fnv_bytes(struct fnv *f, const void *data, size_t n)
{
	const uint8_t *b = data;

	for (size_t i = 0; i < n; i++)
		f->h = (f->h ^ b[i]) * 1099511628211ull;
}

static void fnv_u32(struct fnv *f, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	fnv_bytes(f, b, 4);
}

static void fnv_str(struct fnv *f, const char *s)
{
	size_t n = strlen(s);

	fnv_u32(f, (uint32_t)n);
	fnv_bytes(f, s, n);
}

static uint64_t rules_hash(const struct tandem_config *c)
{
	struct fnv f = { 14695981039346656037ull };

	fnv_str(&f, "tandem-policy-1");
	fnv_u32(&f, c->n_rules);
	for (unsigned i = 0; i < c->n_rules; i++) {
		const struct cfg_rule *r = &c->rules[i];

		fnv_str(&f, r->name);
		fnv_str(&f, r->from_zone ? config_zone_name(c, r->from_zone) : "any");
		fnv_str(&f, r->to_zone ? config_zone_name(c, r->to_zone) : "any");
		for (int side = 0; side < 2; side++) {
			const struct cfg_prefix *l = side ? r->dst : r->src;
			unsigned n = side ? r->n_dst : r->n_src;

			fnv_u32(&f, n);
			for (unsigned k = 0; k < n; k++) {
				fnv_u32(&f, (uint32_t)l[k].family << 8 | l[k].len);
				fnv_bytes(&f, l[k].addr, l[k].family == 4 ? 4 : 16);
			}
		}
		fnv_u32(&f, r->n_svc);
		for (unsigned k = 0; k < r->n_svc; k++) {
			fnv_u32(&f, (uint32_t)r->svc[k].proto << 16 | r->svc[k].icmp_type);
			fnv_u32(&f, (uint32_t)r->svc[k].port_lo << 16 | r->svc[k].port_hi);
		}
		fnv_u32(&f, (uint32_t)r->action);
		fnv_u32(&f, (uint32_t)r->mode);
		fnv_u32(&f, r->idle_timeout);
		fnv_u32(&f, r->keepalive);
		fnv_u32(&f, r->limit_src);
		fnv_u32(&f, r->limit_dst);
		fnv_u32(&f, r->log);
	}
	return f.h;
}

/* Rules policy_compile() cannot represent (the loader never makes them). */
static int check_rules(const struct tandem_config *c, char *err, size_t errlen)
{
	for (unsigned i = 0; i < c->n_rules; i++) {
		const struct cfg_rule *r = &c->rules[i];

		if (r->from_zone >= CFG_MAX_ZONES || r->to_zone >= CFG_MAX_ZONES) {
			snprintf(err, errlen, "policy: rule '%s': zone id out of range",
				 r->name);
			return -EINVAL;
		}
		for (int side = 0; side < 2; side++) {
			const struct cfg_prefix *l = side ? r->dst : r->src;
			unsigned n = side ? r->n_dst : r->n_src;

			for (unsigned k = 0; k < n; k++)
				if ((l[k].family != 4 || l[k].len > 32) &&
				    (l[k].family != 6 || l[k].len > 128)) {
					snprintf(err, errlen,
						 "policy: rule '%s': bad prefix", r->name);
					return -EINVAL;
				}
		}
	}
	return 0;
}

static void field_free(struct field *f)
{
	for (int t = 0; t < NT; t++) {
		free(f->t[t].k32);
		free(f->t[t].k128);
		free(f->t[t].ref);
	}
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	field_free(&p->src4);
	field_free(&p->dst4);
	field_free(&p->src6);
	field_free(&p->dst6);
	field_free(&p->svc);
	free(p->pool);
	free(p);
}

static void builder_free(struct builder *B)
{
	free(B->pool);
	free(B->dd);
	free(B->tmp);
	free(B->dense);
	free(B->dsum);
	free(B->count);
}

int policy_compile(const struct tandem_config *c, struct policy **ret,
		   char *err, size_t errlen)
{
	char dummy[1];
	struct builder B = { 0 };
	struct policy *p;
	int r;

	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (!c || !ret || (c->n_rules && !c->rules)) {
		snprintf(err, errlen, "policy: no config");
		return -EINVAL;
	}
	if (c->n_rules > CFG_MAX_RULES) {
		snprintf(err, errlen, "policy: %u rules, at most %d", c->n_rules,
			 CFG_MAX_RULES);
		return -EINVAL;
	}
	if ((r = check_rules(c, err, errlen)) < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "policy: out of memory");
		return -ENOMEM;
	}
	p->c = c;
	p->nbits = c->n_rules;
	p->nwords = (p->nbits + 63) / 64;
	/* At least one summary word, so every stored sparse bitset has
	 * length >= 1 (the dedupe table uses length 0 as "empty slot") and an
	 * empty rule set still has a (zero) summary to read. */
	p->nsum = p->nwords ? (p->nwords + 63) / 64 : 1;
	B.p = p;
	B.nwords = p->nwords;
	B.nsum = p->nsum;
	B.dd_mask = 1023;
	B.dd = calloc(B.dd_mask + 1, sizeof(*B.dd));
	B.tmp = malloc(((size_t)B.nsum + B.nwords) * sizeof(uint64_t));
	B.dense = calloc((size_t)B.nwords + 1, sizeof(uint64_t));
	B.dsum = calloc(B.nsum, sizeof(uint64_t));
	B.count = calloc((size_t)p->nbits + 1, sizeof(uint32_t));
	if (!B.dd || !B.tmp || !B.dense || !B.dsum || !B.count)
		r = -ENOMEM;
	if (r < 0 ||
	    (r = build_zone(&B, false, &p->from)) < 0 ||
	    (r = build_zone(&B, true, &p->to)) < 0 ||
	    (r = build_svc(&B, &p->svc)) < 0 ||
	    (r = build_addr(&B, 0, 4, &p->src4)) < 0 ||
	    (r = build_addr(&B, 1, 4, &p->dst4)) < 0 ||
	    (r = build_addr(&B, 0, 6, &p->src6)) < 0 ||
	    (r = build_addr(&B, 1, 6, &p->dst6)) < 0) {
		builder_free(&B);
		policy_free(p);
		snprintf(err, errlen, "policy: %s",
			 r == -ENOMEM ? "out of memory" : "rule set too large to compile");
		return r;
	}
	p->pool = B.pool;
	p->pool_n = B.pool_n;
	B.pool = NULL;
	if (B.pool_cap > p->pool_n) {
		uint64_t *shrunk = realloc(p->pool, p->pool_n * sizeof(uint64_t));

		if (shrunk)
			p->pool = shrunk;
	}
	builder_free(&B);
	p->hash = rules_hash(c);
	p->mem = sizeof(*p) + p->pool_n * sizeof(uint64_t);
	{
		const struct field *fl[] = { &p->src4, &p->dst4, &p->src6,
					     &p->dst6, &p->svc };

		for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
			for (int t = 0; t < NT; t++)
				p->mem += fl[i]->t[t].n *
					  (sizeof(uint32_t) + (fl[i]->t[t].k128 ?
							       sizeof(u128) : sizeof(uint32_t)));
	}
	*ret = p;
	return 0;
}

uint64_t policy_hash(const struct policy *p)
{
	return p ? p->hash : 0;
}

size_t policy_memory(const struct policy *p)
{
	return p ? p->mem : 0;
}
