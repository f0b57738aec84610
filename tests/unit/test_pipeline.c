/*
 * test_pipeline.c - pipeline_burst() gives exactly the verdicts, sessions
 * and counters of pipeline_packet() one by one, also when packets of one
 * burst create, end and reopen sessions that later packets of the same
 * burst look up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "connlimit.h"
#include "pipeline.h"
#include "pktbuild.h"
#include "policy.h"

#define NPKT 6000

struct run {
	struct tandem_config *cfg;
	struct policy *pol;
	struct connlimit *lim;
	struct node_ctx ctx;
	struct shard sh;
};

static void run_init(struct run *r)
{
	char err[512];
	assert_int_equal(config_load_file(SRCDIR "/conf/tandem.conf", &r->cfg, err,
					  sizeof(err)), 0);
	assert_int_equal(policy_compile(r->cfg, &r->pol, err, sizeof(err)), 0);
	assert_int_equal(connlimit_new(4096, &r->lim), 0);
	node_ctx_init(&r->ctx, r->cfg, r->pol, r->lim, false);
	assert_int_equal(shard_init(&r->sh, 0, 4096, &r->ctx, clock_now_ms()), 0);
}

static void run_fini(struct run *r)
{
	shard_fini(&r->sh);
	connlimit_free(r->lim);
	policy_free(r->pol);
	config_free(r->cfg);
}

/* A random packet of one of 40 flows between 8 clients and the web, dns,
 * strict and limited servers: handshakes, data, FIN, RST, retransmits,
 * replies, ICMP errors quoting UDP flows. */
static size_t random_packet(uint8_t *b, unsigned *seed)
{
	static const char *cl[] = {"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5",
				   "10.1.0.6", "10.1.0.7", "10.1.0.8", "10.1.0.9"};
	static const char *sv[] = {"10.2.0.10", "10.2.0.11", "10.2.0.30", "10.2.0.53"};
	static const uint16_t dp[] = {80, 80, 8080, 53};
	unsigned r = (unsigned)rand_r(seed);
	const char *c = cl[r % 8], *s = sv[(r >> 3) % 4];
	uint16_t d = dp[(r >> 3) % 4], sp = (uint16_t)(40000 + (r >> 5) % 5);
	int reply = (r >> 8) & 1;
	if (d == 53) {
		uint8_t q[128];
		size_t ql = pb_udp(q, c, s, sp, 53, 8);
		if (((r >> 9) & 7) == 0)
			return pb_unreach(b, s, c, q, ql);
		if (reply)
			return pb_udp(b, s, c, 53, sp, 8);
		memcpy(b, q, ql);
		return ql;
	}
	static const uint8_t fl[] = {PB_SYN, PB_SYN | PB_ACK, PB_ACK, PB_ACK | PB_PSH,
				     PB_FIN | PB_ACK, PB_RST, PB_ACK, PB_ACK};
	uint8_t f = fl[(r >> 9) & 7];
	uint32_t seq = reply ? 5001 : 1001, ack = reply ? 1001 : 5001;
	if (f == PB_SYN || f == (PB_SYN | PB_ACK))
		seq--;
	return reply ? pb_tcp(b, s, c, d, sp, f, seq, ack, 65535, -1, 10)
		     : pb_tcp(b, c, s, sp, d, f, seq, ack, 65535, -1, 10);
}

static void burst_equals_one_by_one(void **state)
{
	(void)state;
	static uint8_t bufs[NPKT][128];
	static size_t lens[NPKT];
	unsigned seed = 12345;
	for (int i = 0; i < NPKT; i++)
		lens[i] = random_packet(bufs[i], &seed);

	clock_use_manual(1000000);
	struct run a, b;
	run_init(&a);
	run_init(&b);
	static enum verdict va[NPKT], vb[NPKT];
	static enum drop_reason da[NPKT], db[NPKT];
	uint64_t now = clock_now_ms();
	for (int i = 0; i < NPKT; i++) {
		struct pipeline_result res;
		pipeline_raw(&a.sh, bufs[i], (uint32_t)lens[i], 0, 0, now, &res);
		va[i] = res.verdict;
		da[i] = res.drop;
		if (i % 500 == 499) {
			now += 7000; /* some sessions expire between bursts */
			while (!pipeline_tick(&a.sh, now))
				;
		}
	}
	now = clock_now_ms();
	unsigned bseed = 99;
	int i = 0;
	while (i < NPKT) {
		/* bursts of 1..64, never across the tick points above */
		int n = 1 + rand_r(&bseed) % PIPELINE_BURST;
		int next_tick = (i / 500 + 1) * 500;
		if (i + n > next_tick)
			n = next_tick - i;
		struct pkt p[PIPELINE_BURST];
		struct pipeline_result res[PIPELINE_BURST];
		uint8_t ifs[PIPELINE_BURST] = {0};
		for (int j = 0; j < n; j++)
			assert_int_equal(pkt_parse(&p[j], bufs[i + j], (uint32_t)lens[i + j]),
					 DROP_NONE);
		pipeline_burst(&b.sh, p, ifs, ifs, (unsigned)n, now, res);
		for (int j = 0; j < n; j++) {
			vb[i + j] = res[j].verdict;
				db[i + j] = res[j].drop;
		}
		i += n;
		if (i % 500 == 0) {
			now += 7000;
			while (!pipeline_tick(&b.sh, now))
				;
		}
	}
	for (int k = 0; k < NPKT; k++) {
		if (va[k] != vb[k] || da[k] != db[k])
			fail_msg("packet %d: one-by-one %s/%s, burst %s/%s", k,
				 verdict_name(va[k]), drop_name(da[k]),
				 verdict_name(vb[k]), drop_name(db[k]));
	}
	assert_memory_equal(&a.sh.st, &b.sh.st, sizeof(a.sh.st));
	/* the same sessions, with the same ids, states and counters */
	assert_int_equal(sess_table_count(a.sh.tab), sess_table_count(b.sh.tab));
	for (uint32_t q = 0; q < sess_table_capacity(a.sh.tab); q++) {
		struct sess *x = sess_table_at(a.sh.tab, q);
		if (!x)
			continue;
		struct sess *y = sess_table_lookup(b.sh.tab, &x->key, sess_key_hash(&x->key));
		assert_non_null(y);
		assert_int_equal(x->id, y->id);
		assert_int_equal(x->state, y->state);
		assert_int_equal(x->pkts[0], y->pkts[0]);
		assert_int_equal(x->pkts[1], y->pkts[1]);
		assert_int_equal(x->expire, y->expire);
	}
	/* the sequence exercised what it is meant to */
	assert_true(a.sh.st.created[PC_TCP] > 50);
	assert_true(a.sh.st.ended[END_RST] > 20);
	assert_true(a.sh.st.ended[END_ICMP_ERROR] > 5);
	assert_true(a.sh.st.drop[DROP_TCP_NOT_SYN] > 50);
	run_fini(&a);
	run_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_equals_one_by_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
