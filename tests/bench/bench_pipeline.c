/*
 * bench_pipeline.c - the whole tandem-node pipeline on one core, offline:
 * parse -> zones -> lookup -> policy on a miss -> tracking -> verdict, over
 * packets prepared in memory with the example config (conf/tandem.conf).
 *
 * Baseline, measured in the same run on the same packets: pkt_parse alone
 * (the part every packet pays anyway). Rows:
 *   new flows       every packet a SYN of a new flow (miss, policy, insert)
 *   established     data packets of N established flows in random order (hits)
 *   mixed           80 % established data, 20 % new flows
 * Not run by CI. Usage: bench_pipeline [flows] (default 262144)
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "connlimit.h"
#include "pipeline.h"
#include "policy.h"
#include "../unit/pktbuild.h"

#define PKT_SLOT 96 /* bytes reserved per prepared packet */

struct batch {
	uint8_t *buf;
	uint32_t *len;
	size_t n;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void batch_alloc(struct batch *b, size_t n)
{
	b->buf = malloc(n * PKT_SLOT);
	b->len = malloc(n * sizeof(uint32_t));
	b->n = n;
	if (!b->buf || !b->len) {
		perror("malloc");
		exit(1);
	}
}

static void client_of(size_t i, char *out, size_t outlen, uint16_t *port)
{
	/* 250 x 250 client addresses, then the next source port */
	snprintf(out, outlen, "10.1.%zu.%zu", (i / 250) % 250 + 1, i % 250 + 1);
	*port = (uint16_t)(10000 + i / 62500);
}

/* SYN of flow i to the web server. */
static void make_syn(struct batch *b, size_t slot, size_t i)
{
	char c[32];
	uint16_t sp;
	client_of(i, c, sizeof(c), &sp);
	b->len[slot] = (uint32_t)pb_tcp(b->buf + slot * PKT_SLOT, c, "10.2.0.10",
					sp, 80, PB_SYN, 1000, 0, 65535, 7, 0);
}

static void make_data(struct batch *b, size_t slot, size_t i, int reply)
{
	char c[32];
	uint16_t sp;
	client_of(i, c, sizeof(c), &sp);
	uint8_t *p = b->buf + slot * PKT_SLOT;
	b->len[slot] = reply
		? (uint32_t)pb_tcp(p, "10.2.0.10", c, 80, sp, PB_ACK, 5001, 1001, 65535, -1, 16)
		: (uint32_t)pb_tcp(p, c, "10.2.0.10", sp, 80, PB_ACK, 1001, 5001, 65535, -1, 16);
}

struct env {
	struct tandem_config *cfg;
	struct policy *pol;
	struct connlimit *lim;
	struct node_ctx ctx;
	struct shard sh;
};

static void env_init(struct env *e, uint32_t cap)
{
	char err[512];
	if (config_load_file(SRCDIR "/conf/tandem.conf", &e->cfg, err, sizeof(err)) < 0 ||
	    policy_compile(e->cfg, &e->pol, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	connlimit_new(1024, &e->lim);
	clock_use_manual(1000000);
	node_ctx_init(&e->ctx, e->cfg, e->pol, e->lim, false);
	if (shard_init(&e->sh, 0, cap, &e->ctx, clock_now_ms()) < 0) {
		fprintf(stderr, "shard_init failed\n");
		exit(1);
	}
}

static void env_fini(struct env *e)
{
	shard_fini(&e->sh);
	connlimit_free(e->lim);
	policy_free(e->pol);
	config_free(e->cfg);
}

static double run_pipeline(struct env *e, const struct batch *b)
{
	struct pipeline_result res;
	uint64_t now = clock_now_ms(), accepted = 0;
	double t = now_s();
	for (size_t i = 0; i < b->n; i++) {
		pipeline_raw(&e->sh, b->buf + i * PKT_SLOT, b->len[i], 0, 0, now, &res);
		accepted += res.verdict == V_ACCEPT;
	}
	t = now_s() - t;
	if (accepted != b->n)
		fprintf(stderr, "warning: %llu of %zu accepted\n",
			(unsigned long long)accepted, b->n);
	return (double)b->n / t;
}

/* Parse, then the pipeline in bursts of 32 (as the NFQUEUE worker does). */
static double run_burst(struct env *e, const struct batch *b)
{
	enum { B = 32 };
	struct pkt p[B];
	struct pipeline_result res[B];
	uint8_t ifs[B] = {0};
	uint64_t now = clock_now_ms(), accepted = 0;
	double t = now_s();
	for (size_t i = 0; i < b->n; i += B) {
		unsigned n = b->n - i < B ? (unsigned)(b->n - i) : B, m = 0;
		for (unsigned j = 0; j < n; j++)
			if (pkt_parse(&p[m], b->buf + (i + j) * PKT_SLOT,
				      b->len[i + j]) == DROP_NONE)
				m++;
		pipeline_burst(&e->sh, p, ifs, ifs, m, now, res);
		for (unsigned j = 0; j < m; j++)
			accepted += res[j].verdict == V_ACCEPT;
	}
	t = now_s() - t;
	if (accepted != b->n)
		fprintf(stderr, "warning: %llu of %zu accepted\n",
			(unsigned long long)accepted, b->n);
	return (double)b->n / t;
}

static double run_parse(const struct batch *b)
{
	struct pkt p;
	volatile unsigned sink = 0;
	double t = now_s();
	for (size_t i = 0; i < b->n; i++) {
		pkt_parse(&p, b->buf + i * PKT_SLOT, b->len[i]);
		sink += p.sport;
	}
	t = now_s() - t;
	(void)sink;
	return (double)b->n / t;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	size_t flows = argc > 1 ? strtoul(argv[1], NULL, 0) : 262144;
	if (flows < 1024 || flows > (1u << 24))
		flows = 262144;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);

	struct batch syn, est, mix;
	batch_alloc(&syn, flows);
	batch_alloc(&est, flows * 4);
	batch_alloc(&mix, flows);
	for (size_t i = 0; i < flows; i++)
		make_syn(&syn, i, i);
	srand(42);
	for (size_t k = 0; k < est.n; k++) {
		size_t i = (size_t)rand() % flows;
		make_data(&est, k, i, rand() & 1);
	}
	/* mixed: 80 % data of the first half of the flows, 20 % SYNs of the
	 * second half (new sessions) */
	size_t nnew = 0;
	for (size_t k = 0; k < mix.n; k++) {
		if (k % 5 == 4 && nnew < flows / 2)
			make_syn(&mix, k, flows / 2 + nnew++);
		else
			make_data(&mix, k, (size_t)rand() % (flows / 2), rand() & 1);
	}

	enum { RUNS = 5 };
	double r_new[RUNS], r_est[RUNS], r_mix[RUNS], r_bst[RUNS], p_new[RUNS], p_est[RUNS], p_mix[RUNS];
	for (int r = 0; r < RUNS; r++) {
		struct env e;
		env_init(&e, (uint32_t)(flows * 2));
		p_new[r] = run_parse(&syn);
		r_new[r] = run_pipeline(&e, &syn); /* creates `flows` sessions */
		/* complete every handshake so the data packets are established */
		struct batch hs;
		batch_alloc(&hs, 1);
		struct pipeline_result res;
		for (size_t i = 0; i < flows; i++) {
			char c[32];
			uint16_t sp;
			client_of(i, c, sizeof(c), &sp);
			hs.len[0] = (uint32_t)pb_tcp(hs.buf, "10.2.0.10", c, 80, sp,
						     PB_SYN | PB_ACK, 5000, 1001, 65535, 7, 0);
			pipeline_raw(&e.sh, hs.buf, hs.len[0], 0, 0, clock_now_ms(), &res);
			hs.len[0] = (uint32_t)pb_tcp(hs.buf, c, "10.2.0.10", sp, 80,
						     PB_ACK, 1001, 5001, 65535, -1, 0);
			pipeline_raw(&e.sh, hs.buf, hs.len[0], 0, 0, clock_now_ms(), &res);
		}
		free(hs.buf);
		free(hs.len);
		/* remove the second half so the mixed run's SYNs are new */
		p_est[r] = run_parse(&est);
		r_est[r] = run_pipeline(&e, &est);
		r_bst[r] = run_burst(&e, &est);
		env_fini(&e);

		env_init(&e, (uint32_t)(flows * 2));
		struct batch half = syn;
		half.n = flows / 2;
		run_pipeline(&e, &half);
		for (size_t i = 0; i < flows / 2; i++) {
			char c[32];
			uint16_t sp;
			client_of(i, c, sizeof(c), &sp);
			uint8_t b[128];
			uint32_t l = (uint32_t)pb_tcp(b, "10.2.0.10", c, 80, sp, PB_SYN | PB_ACK,
						      5000, 1001, 65535, 7, 0);
			pipeline_raw(&e.sh, b, l, 0, 0, clock_now_ms(), &res);
			l = (uint32_t)pb_tcp(b, c, "10.2.0.10", sp, 80, PB_ACK, 1001, 5001,
					     65535, -1, 0);
			pipeline_raw(&e.sh, b, l, 0, 0, clock_now_ms(), &res);
		}
		p_mix[r] = run_parse(&mix);
		r_mix[r] = run_pipeline(&e, &mix);
		env_fini(&e);
	}
	qsort(r_new, RUNS, sizeof(double), cmp_d);
	qsort(r_est, RUNS, sizeof(double), cmp_d);
	qsort(r_mix, RUNS, sizeof(double), cmp_d);
	qsort(r_bst, RUNS, sizeof(double), cmp_d);
	qsort(p_new, RUNS, sizeof(double), cmp_d);
	qsort(p_est, RUNS, sizeof(double), cmp_d);
	qsort(p_mix, RUNS, sizeof(double), cmp_d);

	printf("tandem-node pipeline, one core (CPU 0), offline, conf/tandem.conf, %zu flows, median of %d runs\n",
	       flows, RUNS);
	printf("baseline: pkt_parse alone over the same packets (what any data path pays)\n\n");
	printf("%-28s | %12s | %12s | %12s | %8s\n", "packets", "pipeline Mpps",
	       "ns/packet", "parse Mpps", "ratio");
	printf("-----------------------------+--------------+--------------+--------------+---------\n");
	const char *names[] = {"new flows (SYN, miss+insert)", "established (hit, track)",
			       "mixed 80/20", "established, bursts of 32"};
	double *rr[] = {r_new, r_est, r_mix, r_bst}, *pp[] = {p_new, p_est, p_mix, p_est};
	for (int i = 0; i < 4; i++) {
		double m = rr[i][RUNS / 2], pm = pp[i][RUNS / 2];
		printf("%-28.28s | %12.2f | %12.1f | %12.2f | %7.2fx\n", names[i], m / 1e6,
		       1e9 / m, pm / 1e6, m / pm);
	}
	printf("\nratio = pipeline pps / parse-only pps (the share of a parse-only data path's rate kept)\n");
	free(syn.buf); free(syn.len); free(est.buf); free(est.len); free(mix.buf); free(mix.len);
	return 0;
}
