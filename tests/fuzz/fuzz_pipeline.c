/*
 * fuzz_pipeline.c - a sequence of packets through the node's shards with a
 * driven clock: pkt_parse, zones, lookup, policy, TCP/UDP/ICMP tracking,
 * ICMP errors handed to the shard of the flow they quote, limits, eviction,
 * expiry and aggressive ageing, keepalive probes, MSS clamping,
 * replication events; then the control jobs (collect, count, digest,
 * revalidation against another configuration, clear) on what is left.
 *
 * Input:
 *   byte 0   set-up: bits 0-1 config variant (fuzz_common.h), bit 2 two
 *            shards, bit 3 zones by interface, bit 4 bursts
 *            (pipeline_burst), bit 5 replication ring, bit 6 revalidation
 *            is a dry run, bit 7 the clock starts near the 32-bit wrap
 *   byte 1   bits 0-1 variant revalidated against, bits 2-3 clock start
 *   records  op (bits 0-2 clock step, 3-4 in-interface, 5-6
 *            out-interface, 7 burst ends here), op2 (bit 0 checksum
 *            partial for the MSS rewrite, bit 1 check the L4 checksum as
 *            tcp.checksum_verify does), 2-byte length, L3 packet bytes
 *   the rest a session filter for the jobs
 *
 * Checked beyond the sanitizers: a requeued packet is never requeued again,
 * a clamped SYN still parses and carries no larger MSS than the clamp, a
 * keepalive probe parses, and once every session is cleared no limit unit
 * is held.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "connlimit.h"
#include "fuzz_common.h"
#include "jobs.h"
#include "keepalive.h"
#include "mss.h"
#include "pipeline.h"
#include "sync.h"

#define SHARD_MAX 2
#define ADDR_MAX 64

static struct tandem_config *cfgs[FUZZ_NODE_VARIANTS];
static struct policy *pols[FUZZ_NODE_VARIANTS];

static void setup(void)
{
	if (cfgs[0])
		return;
	for (unsigned v = 0; v < FUZZ_NODE_VARIANTS; v++)
		fuzz_node_conf(v, &cfgs[v], &pols[v]);
}

struct run {
	struct shard sh[SHARD_MAX];
	unsigned n;
	struct sync_rec ev[256];
	uint8_t addrs[ADDR_MAX][16];
	unsigned n_addrs;
};

/* The worker's probe: build it as the raw socket would send it. */
static int probe(void *arg, const struct sess *s)
{
	(void)arg;
	uint8_t buf[128];
	const uint8_t *dst;
	size_t n = ka_probe_build(s, buf, sizeof(buf), &dst);
	if (!n)
		return -1;
	struct pkt p;
	if (pkt_parse(&p, buf, (uint32_t)n) != DROP_NONE)
		__builtin_trap(); /* the node's own probe must parse */
	return 0;
}

static void note_addr(struct run *r, const uint8_t *a)
{
	for (unsigned i = 0; i < r->n_addrs; i++)
		if (!memcmp(r->addrs[i], a, 16))
			return;
	if (r->n_addrs < ADDR_MAX)
		memcpy(r->addrs[r->n_addrs++], a, 16);
}

/* Drain every ring as the control thread does. */
static void drain(struct run *r)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->sh[i].sync)
			while (sync_pop(r->sh[i].sync, r->ev, 256) > 0)
				;
}

static void catch_up(struct run *r, uint64_t now)
{
	for (unsigned i = 0; i < r->n; i++)
		while (!pipeline_tick(&r->sh[i], now))
			;
}

/* After the verdict, what the worker does with the packet. */
static void after(struct pkt *p, uint8_t *l3, const struct pipeline_result *res,
		  uint8_t op2)
{
	if (res->verdict != V_ACCEPT || !res->mss_clamp)
		return;
	mss_rewrite(l3, p, res->mss_clamp, op2 & 1);
	struct pkt q;
	if (pkt_parse(&q, l3, p->len) != DROP_NONE ||
	    mss_over(&q, res->mss_clamp) != 0)
		__builtin_trap(); /* the clamp broke the segment */
}

/* One packet through the shard the node's nft table would pick. */
static void one(struct run *r, uint8_t *l3, uint32_t len, uint8_t iif,
		uint8_t oif, uint8_t op2, uint64_t now)
{
	struct pkt p;
	enum drop_reason why = pkt_parse(&p, l3, len);
	if (why == DROP_NONE && (op2 & 2))
		(void)l4_csum_ok(l3, &p);
	unsigned s = why == DROP_NONE
		? pipeline_shard_of_addrs(p.family, p.src, p.dst, r->n) : 0;
	if (why != DROP_NONE) {
		pipeline_count_drop(&r->sh[0], why, len);
		return;
	}
	note_addr(r, p.src);
	note_addr(r, p.dst);
	struct pipeline_result res;
	pipeline_packet(&r->sh[s], &p, iif, oif, now, &res);
	if (res.verdict == V_REQUEUE) {
		if (res.requeue_to >= r->n)
			__builtin_trap();
		pipeline_packet(&r->sh[res.requeue_to], &p, iif, oif, now, &res);
		if (res.verdict == V_REQUEUE)
			__builtin_trap(); /* handed on twice */
	}
	after(&p, l3, &res, op2);
}

struct pending {
	uint8_t *l3[PIPELINE_BURST];
	struct pkt p[PIPELINE_BURST];
	uint8_t iif[PIPELINE_BURST], oif[PIPELINE_BURST], op2[PIPELINE_BURST];
	unsigned n;
};

/* A burst per shard, as each worker gets its queue's packets. */
static void flush_burst(struct run *r, struct pending *b, uint64_t now)
{
	for (unsigned s = 0; s < r->n; s++) {
		struct pkt p[PIPELINE_BURST];
		struct pipeline_result res[PIPELINE_BURST];
		uint8_t iif[PIPELINE_BURST], oif[PIPELINE_BURST], at[PIPELINE_BURST];
		unsigned m = 0;
		for (unsigned i = 0; i < b->n; i++) {
			if (pipeline_shard_of_addrs(b->p[i].family, b->p[i].src,
						    b->p[i].dst, r->n) != s)
				continue;
			p[m] = b->p[i];
			iif[m] = b->iif[i];
			oif[m] = b->oif[i];
			at[m++] = (uint8_t)i;
		}
		if (!m)
			continue;
		pipeline_burst(&r->sh[s], p, iif, oif, m, now, res);
		for (unsigned j = 0; j < m; j++) {
			unsigned i = at[j];
			if (res[j].verdict == V_REQUEUE) {
				if (res[j].requeue_to >= r->n)
					__builtin_trap();
				pipeline_packet(&r->sh[res[j].requeue_to], &p[j],
						iif[j], oif[j], now, &res[j]);
				if (res[j].verdict == V_REQUEUE)
					__builtin_trap();
			}
			after(&p[j], b->l3[i], &res[j], b->op2[i]);
		}
	}
	for (unsigned i = 0; i < b->n; i++)
		free(b->l3[i]);
	b->n = 0;
}

static void filter_from(struct fz *f, struct sess_filter *sf)
{
	sess_filter_init(sf);
	uint8_t has = fz_u8(f);
	sf->has_proto = has & 1;
	sf->has_sport = has & 2;
	sf->has_dport = has & 4;
	sf->has_state = has & 8;
	sf->proto = fz_u8(f);
	sf->sport = fz_u16(f);
	sf->dport = fz_u16(f);
	sf->state = (uint8_t)(fz_u8(f) % SS_MAX);
	sf->origin = (uint8_t)(fz_u8(f) % 3);
	if (has & 16) {
		sf->src_family = (has & 64) ? 6 : 4;
		sf->src_len = (uint8_t)(fz_u8(f) % (sf->src_family == 4 ? 33 : 129));
		size_t got;
		const uint8_t *a = fz_bytes(f, 16, &got);
		memcpy(sf->src, a, got);
	}
	if (has & 32) {
		sf->dst_family = (has & 128) ? 6 : 4;
		sf->dst_len = (uint8_t)(fz_u8(f) % (sf->dst_family == 4 ? 33 : 129));
		size_t got;
		const uint8_t *a = fz_bytes(f, 16, &got);
		memcpy(sf->dst, a, got);
	}
}

/* Run a job to its end on every shard (the offline way). */
static void run_job(struct run *r, struct ctl_job *j, uint64_t now)
{
	for (unsigned i = 0; i < r->n; i++) {
		struct ctl_job one = *j;
		one.cursor = 0;
		one.started = false;
		unsigned guard = 0;
		while (!job_run_slice(&one, &r->sh[i], now)) {
			drain(r); /* a dump waits for room in the ring */
			if (++guard > 1000000)
				__builtin_trap();
		}
		j->matched += one.matched;
		j->n_out = one.n_out;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	struct fz f = {data, size};
	uint8_t b0 = fz_u8(&f), b1 = fz_u8(&f);
	unsigned var = b0 & 3, alt = b1 & 3;
	static const uint64_t starts[4] = {1000000, 5000, 86400000,
					   UINT64_C(0x100000000) - 30000};
	uint64_t now = (b0 & 0x80) ? UINT64_C(0x100000000) - 30000
				   : starts[(b1 >> 2) & 3];
	clock_use_manual(now);

	struct connlimit *lim;
	if (connlimit_new(4096, &lim) < 0)
		abort();
	struct node_ctx ctx, actx;
	node_ctx_init(&ctx, cfgs[var], pols[var], lim, (b0 & 8) != 0);
	node_ctx_init(&actx, cfgs[alt], pols[alt], lim, (b0 & 8) != 0);

	static struct run r;
	memset(&r, 0, sizeof(r));
	r.n = (b0 & 4) ? 2 : 1;
	for (unsigned i = 0; i < r.n; i++) {
		if (shard_init(&r.sh[i], (uint8_t)i, cfgs[var]->max_sessions / r.n,
			       &ctx, now) < 0)
			abort();
		r.sh[i].nshards = (uint8_t)r.n;
		r.sh[i].probe = probe;
		if (b0 & 0x20) {
			if (sync_out_new(64, cfgs[var]->max_sessions / r.n, 1000,
					 &r.sh[i].sync) < 0)
				abort();
			atomic_store(&r.sh[i].sync->subscribed, true);
		}
	}

	static const uint64_t steps[8] = {0, 1, 50, 1000, 5000, 30000, 400000,
					  4000000};
	struct pending b = {.n = 0};
	unsigned records = 0;
	while (f.n >= 4 && records++ < 512) {
		uint8_t op = fz_u8(&f), op2 = fz_u8(&f);
		size_t len;
		uint8_t *l3 = fz_record(&f, &len);
		uint64_t step = steps[op & 7];
		if (step) {
			if (b.n)
				flush_burst(&r, &b, now);
			clock_advance_ms(step);
			now = clock_now_ms();
			catch_up(&r, now);
		}
		uint8_t iif = (op >> 3) & 3, oif = (op >> 5) & 3;
		if (b0 & 0x10) {
			struct pkt p;
			enum drop_reason why = pkt_parse(&p, l3, (uint32_t)len);
			if (why != DROP_NONE) {
				pipeline_count_drop(&r.sh[0], why, (uint32_t)len);
				free(l3);
			} else {
				note_addr(&r, p.src);
				note_addr(&r, p.dst);
				b.l3[b.n] = l3;
				b.p[b.n] = p;
				b.iif[b.n] = iif;
				b.oif[b.n] = oif;
				b.op2[b.n++] = op2;
				if ((op & 0x80) || b.n == PIPELINE_BURST)
					flush_burst(&r, &b, now);
			}
		} else {
			one(&r, l3, (uint32_t)len, iif, oif, op2, now);
			free(l3);
		}
		drain(&r);
	}
	if (b.n)
		flush_burst(&r, &b, now);
	drain(&r);

	/* the control plane's jobs on what the packets left */
	struct sess_filter sf;
	filter_from(&f, &sf);
	static struct sess_copy out[64];
	struct ctl_job j = {.kind = JOB_COLLECT, .filter = sf, .out = out,
			    .cap = 64};
	run_job(&r, &j, now);
	j = (struct ctl_job){.kind = JOB_COUNT, .filter = sf};
	run_job(&r, &j, now);
	j = (struct ctl_job){.kind = JOB_DIGEST};
	run_job(&r, &j, now);
	if (r.sh[0].sync) { /* a bulk for a subscribing syncd */
		j = (struct ctl_job){.kind = JOB_DUMP};
		run_job(&r, &j, now);
		drain(&r);
	}
	j = (struct ctl_job){.kind = JOB_REVALIDATE, .old_ctx = &ctx,
			     .new_ctx = &actx, .dry_run = (b0 & 0x40) != 0,
			     .flush = cfgs[alt]->reload_flush};
	run_job(&r, &j, now);
	/* the revalidated sessions under their new rules, a while later */
	clock_advance_ms(steps[(b1 >> 4) & 7]);
	now = clock_now_ms();
	catch_up(&r, now);
	j = (struct ctl_job){.kind = JOB_CLEAR, .filter = sf};
	run_job(&r, &j, now);
	sess_filter_init(&sf);
	j = (struct ctl_job){.kind = JOB_CLEAR, .filter = sf};
	run_job(&r, &j, now);
	drain(&r);

	/* nothing is left, so no limit unit may be */
	for (unsigned i = 0; i < r.n; i++)
		if (sess_table_count(r.sh[i].tab) != 0)
			__builtin_trap();
	for (unsigned v = 0; v < 2; v++) {
		const struct tandem_config *c = v ? cfgs[alt] : cfgs[var];
		for (unsigned k = 0; k < c->n_rules; k++) {
			if (!c->rules[k].limit_src && !c->rules[k].limit_dst)
				continue;
			for (unsigned a = 0; a < r.n_addrs; a++)
				if (connlimit_held(lim, (uint16_t)k, LIMIT_SIDE_SRC,
						   r.addrs[a]) ||
				    connlimit_held(lim, (uint16_t)k, LIMIT_SIDE_DST,
						   r.addrs[a]))
					__builtin_trap(); /* a unit leaked */
		}
	}

	for (unsigned i = 0; i < r.n; i++)
		shard_fini(&r.sh[i]);
	connlimit_free(lim);
	return 0;
}
