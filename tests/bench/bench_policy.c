/*
 * bench_policy.c - lookup cost of the compiled policy against the linear
 * scan, on random rule sets of 10, 1,000 and 10,000 rules.
 *
 * For each size: build a random config (fixed seed), compile it (median of
 * 3), then time policy_match() and policy_match_linear() over the same
 * random queries (median of 5 runs) and print one table row:
 *   rules | compiled ns/lookup | linear ns/lookup | linear/compiled | compile ms | memory KiB
 * The random rules look like a large real policy: mostly specific rules
 * (destination "any" in 5%, service "any" in 5%, source "any" in 30%,
 * each zone "any" in 10%), mostly single ports, prefixes from /16 to host
 * routes in 10.0.0.0/12 and fd00::/12 so that they overlap and nest.
 * Half the queries are aimed at a random rule (its zones, an address inside
 * its prefixes, one of its services), half are random, so lookups end at
 * every depth and some find no rule (default deny: the linear scan's worst
 * case). Both answers are compared on the queries as a sanity check.
 *
 * The linear scan gets fewer lookups at large sizes so the whole run stays
 * well under a minute; ns/lookup is what is compared.
 *
 * Must never: print numbers from a run whose two answers disagreed without
 * saying so.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "policy.h"

#define NQ_DISTINCT  (1u << 18) /* distinct queries, reused cyclically */
#define LOOKUPS      1000000u   /* compiled lookups per run */
#define LINEAR_WORK  200000000u /* linear: lookups x rules per run, at most */
#define RUNS         5
#define ZONES        8

static uint64_t rng = 0x7a2d3e5f11c0ffeeull;

static uint32_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}

static uint32_t below(uint32_t n)
{
	return n ? rnd() % n : 0;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void clear_host_bits(struct cfg_prefix *p)
{
	for (unsigned b = 0; b < 16; b++) {
		unsigned keep = p->len >= (b + 1) * 8 ? 8 : p->len > b * 8 ? p->len - b * 8 : 0;

		p->addr[b] &= (uint8_t)(0xff00u >> keep);
	}
}

/* Mostly narrow prefixes in 10.0-15.x.x / fd00-0f::, some wide ones. */
static void rand_prefix(struct cfg_prefix *p)
{
	static const uint8_t len4[] = { 16, 20, 22, 24, 24, 26, 28, 30, 32, 32, 32, 32 };
	static const uint8_t len6[] = { 32, 48, 56, 64, 64, 96, 120, 128, 128, 128 };

	memset(p, 0, sizeof(*p));
	if (below(10) < 7) {
		p->family = 4;
		p->addr[0] = 10;
		p->addr[1] = (uint8_t)below(16);
		p->addr[2] = (uint8_t)rnd();
		p->addr[3] = (uint8_t)rnd();
		p->len = below(200) ? len4[below(sizeof(len4))] : 8;
	} else {
		p->family = 6;
		p->addr[0] = 0xfd;
		p->addr[1] = (uint8_t)below(16);
		p->addr[7] = (uint8_t)below(16);
		p->addr[14] = (uint8_t)rnd();
		p->addr[15] = (uint8_t)rnd();
		p->len = below(200) ? len6[below(sizeof(len6))] : 16;
	}
	clear_host_bits(p);
}

static void rand_service(struct cfg_service *s)
{
	static const uint8_t other[] = { 47, 50, 132 };
	uint32_t k = below(10);

	memset(s, 0, sizeof(*s));
	s->port_hi = 65535;
	s->icmp_type = 0xffff;
	if (k < 7) {
		uint32_t shape = below(100);

		s->proto = below(3) ? 6 : 17;
		if (shape < 95) {
			s->port_lo = (uint16_t)(below(3) ? below(1100) : rnd());
			s->port_hi = s->port_lo;
			if (shape >= 85) /* a range */
				s->port_hi = (uint16_t)(s->port_lo + below(200));
			if (s->port_hi < s->port_lo)
				s->port_hi = 65535;
		}
	} else if (k < 9) {
		s->proto = below(2) ? 1 : 58;
		if (below(3))
			s->icmp_type = (uint16_t)(s->proto == 1 ? below(16) : 126 + below(6));
	} else {
		s->proto = other[below(3)];
	}
}

static struct cfg_prefix *rand_list(unsigned *n, unsigned any_pct)
{
	struct cfg_prefix *l;

	*n = 0;
	if (below(100) < any_pct)
		return NULL; /* any */
	*n = 1 + below(3);
	l = calloc(*n, sizeof(*l));
	if (!l)
		abort();
	for (unsigned i = 0; i < *n; i++)
		rand_prefix(&l[i]);
	return l;
}

static struct tandem_config *rand_config(unsigned n_rules)
{
	struct tandem_config *c = calloc(1, sizeof(*c));

	if (!c || !(c->rules = calloc(n_rules, sizeof(*c->rules))))
		abort();
	c->n_zones = ZONES;
	for (unsigned z = 0; z < ZONES; z++) {
		snprintf(c->zones[z].name, CFG_NAME_MAX, "z%u", z + 1);
		c->zones[z].id = (uint8_t)(z + 1);
	}
	c->n_rules = n_rules;
	for (unsigned i = 0; i < n_rules; i++) {
		struct cfg_rule *r = &c->rules[i];

		snprintf(r->name, CFG_NAME_MAX, "r%u", i);
		r->index = (uint16_t)i;
		r->from_zone = (uint8_t)(below(10) == 0 ? 0 : 1 + below(ZONES));
		r->to_zone = (uint8_t)(below(10) == 0 ? 0 : 1 + below(ZONES));
		r->src = rand_list(&r->n_src, 30);
		r->dst = rand_list(&r->n_dst, 5);
		if (below(100) >= 5) {
			r->n_svc = 1 + below(3);
			if (!(r->svc = calloc(r->n_svc, sizeof(*r->svc))))
				abort();
			for (unsigned k = 0; k < r->n_svc; k++)
				rand_service(&r->svc[k]);
		}
		r->action = (enum rule_action)below(3);
		r->mode = (enum track_mode)below(4);
	}
	return c;
}

static void rand_addr_in(const struct cfg_prefix *p, uint8_t family, uint8_t *a)
{
	unsigned nb = family == 4 ? 4 : 16;
	struct cfg_prefix r;

	memset(a, 0, 16);
	if (p && p->family == family) {
		for (unsigned b = 0; b < nb; b++) {
			unsigned keep = p->len >= (b + 1) * 8 ? 8 : p->len > b * 8 ? p->len - b * 8 : 0;
			uint8_t mask = (uint8_t)(0xff00u >> keep);

			a[b] = (uint8_t)((p->addr[b] & mask) | (rnd() & ~mask));
		}
		return;
	}
	do
		rand_prefix(&r);
	while (r.family != family);
	memcpy(a, r.addr, 16);
	for (unsigned b = nb / 2; b < nb; b++)
		a[b] = (uint8_t)rnd();
}

struct qbuf {
	struct policy_query q;
	uint8_t src[16], dst[16];
};

static void rand_query(const struct tandem_config *c, struct qbuf *b)
{
	static const uint8_t protos[] = { 6, 6, 17, 17, 1, 58, 47 };
	struct policy_query *q = &b->q;
	const struct cfg_rule *r = below(2) ? &c->rules[below(c->n_rules)] : NULL;
	const struct cfg_prefix *ps = NULL, *pd = NULL;

	memset(q, 0, sizeof(*q));
	q->family = below(10) < 7 ? 4 : 6;
	q->zone_from = (uint8_t)(1 + below(ZONES));
	q->zone_to = (uint8_t)(1 + below(ZONES));
	q->proto = protos[below(sizeof(protos))];
	q->dport = (uint16_t)(below(2) ? below(1200) : rnd());
	q->icmp_type = (uint16_t)below(256);
	if (r) {
		if (r->n_src) {
			ps = &r->src[below(r->n_src)];
			q->family = ps->family;
		}
		if (r->n_dst)
			pd = &r->dst[below(r->n_dst)];
		if (r->from_zone)
			q->zone_from = r->from_zone;
		if (r->to_zone)
			q->zone_to = r->to_zone;
		if (r->n_svc) {
			const struct cfg_service *s = &r->svc[below(r->n_svc)];

			q->proto = s->proto;
			q->dport = (uint16_t)(s->port_lo + below((uint32_t)s->port_hi - s->port_lo + 1));
			if (s->icmp_type != 0xffff)
				q->icmp_type = s->icmp_type;
		}
	}
	rand_addr_in(ps, q->family, b->src);
	rand_addr_in(pd, q->family, b->dst);
	q->src = b->src;
	q->dst = b->dst;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dcmp);
	return v[n / 2];
}

static volatile uintptr_t sink;

static double time_compiled(const struct policy *p, const struct qbuf *qs,
			    unsigned n)
{
	uintptr_t acc = 0;
	double t0 = now_ns();

	for (unsigned i = 0; i < n; i++)
		acc += (uintptr_t)policy_match(p, &qs[i & (NQ_DISTINCT - 1)].q);
	sink = acc;
	return (now_ns() - t0) / n;
}

static double time_linear(const struct tandem_config *c, const struct qbuf *qs,
			  unsigned n)
{
	uintptr_t acc = 0;
	double t0 = now_ns();

	for (unsigned i = 0; i < n; i++)
		acc += (uintptr_t)policy_match_linear(c, &qs[i & (NQ_DISTINCT - 1)].q);
	sink = acc;
	return (now_ns() - t0) / n;
}

int main(void)
{
	static const unsigned sizes[] = { 10, 1000, 10000 };
	struct qbuf *qs = malloc(NQ_DISTINCT * sizeof(*qs));
	int bad = 0;

	if (!qs)
		return 1;
	printf("%6s | %18s | %16s | %15s | %10s | %10s\n", "rules",
	       "compiled ns/lookup", "linear ns/lookup", "linear/compiled",
	       "compile ms", "memory KiB");
	printf("-------+--------------------+------------------+-----------------+------------+-----------\n");
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		unsigned n = sizes[si], n_lin, mism = 0, hits = 0;
		struct tandem_config *c = rand_config(n);
		struct policy *p = NULL;
		double tc[RUNS], tl[RUNS], tcomp[3];
		char err[256];

		for (int k = 0; k < 3; k++) {
			double t0 = now_ns();

			policy_free(p);
			p = NULL;
			if (policy_compile(c, &p, err, sizeof(err)) != 0) {
				fprintf(stderr, "compile: %s\n", err);
				return 1;
			}
			tcomp[k] = (now_ns() - t0) / 1e6;
		}
		for (unsigned i = 0; i < NQ_DISTINCT; i++)
			rand_query(c, &qs[i]);
		n_lin = LINEAR_WORK / n;
		if (n_lin > LOOKUPS)
			n_lin = LOOKUPS;
		for (unsigned i = 0; i < NQ_DISTINCT && i < n_lin; i++) {
			const struct cfg_rule *a = policy_match(p, &qs[i].q);

			mism += a != policy_match_linear(c, &qs[i].q);
			hits += a != NULL;
		}
		for (int k = 0; k < RUNS; k++) {
			tc[k] = time_compiled(p, qs, LOOKUPS);
			tl[k] = time_linear(c, qs, n_lin);
		}
		{
			double mc = median(tc, RUNS), ml = median(tl, RUNS);

			printf("%6u | %18.1f | %16.1f | %15.1f | %10.2f | %10.1f\n", n,
			       mc, ml, ml / mc, median(tcomp, 3),
			       (double)policy_memory(p) / 1024.0);
		}
		fprintf(stderr, "  (%u rules: %u of %u checked queries matched a rule, "
			"%u compiled/linear mismatches; linear timed over %u lookups/run)\n",
			n, hits, n_lin < NQ_DISTINCT ? n_lin : NQ_DISTINCT, mism, n_lin);
		bad |= mism != 0;
		policy_free(p);
		config_free(c);
	}
	free(qs);
	if (bad)
		printf("WARNING: compiled and linear answers differed\n");
	return bad;
}
