/*
 * main.c - tandem-node's top level: options, config, shards, the packet
 * source loop, and the summary. The only place that prints; library code
 * returns errors and this file reports them once.
 *
 * Today one source exists: --pcap FILE replays a capture through the same
 * pipeline the kernel path will use, with capture time as the clock.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "limits.h"
#include "pipeline.h"
#include "pkt_io.h"
#include "policy.h"

#define MAX_SHARDS 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tandem-node --config FILE --pcap CAPTURE [--quiet]\n"
		"       tandem-node --config FILE --check\n"
		"  --config FILE   libconfig file (see conf/tandem.conf)\n"
		"  --pcap FILE     replay a pcap/pcapng capture offline, print a summary, exit\n"
		"  --check         validate the config and compile the policy, then exit\n"
		"  --quiet         print only the summary records\n");
}

struct live_count {
	uint64_t n[PC_MAX][SS_MAX];
};

static void count_live(void *arg, struct sess *s)
{
	struct live_count *lc = arg;
	lc->n[proto_class_of(s->key.proto)][s->state]++;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_summary(const char *src, struct shard *sh, unsigned n,
			  double secs, uint64_t t_first, uint64_t t_last)
{
	struct shard_stats t = {0};
	struct live_count lc = {0};
	uint64_t live = 0;
	for (unsigned i = 0; i < n; i++) {
		stats_add(&t, &sh[i].st);
		sess_table_foreach(sh[i].tab, count_live, &lc);
		live += sess_table_count(sh[i].tab);
	}
	printf("summary source=%s packets=%llu bytes=%llu wall_seconds=%.6f "
	       "pps=%.0f capture_seconds=%.3f shards=%u\n",
	       src, (unsigned long long)t.pkts, (unsigned long long)t.bytes,
	       secs, secs > 0 ? (double)t.pkts / secs : 0.0,
	       (double)(t_last - t_first) / 1000.0, n);
	printf("verdict");
	for (unsigned v = 0; v < V_MAX; v++)
		printf(" %s=%llu", verdict_name(v),
		       (unsigned long long)t.verdict[v]);
	printf("\ncreated");
	for (unsigned c = 0; c < PC_MAX; c++)
		printf(" %s=%llu", proto_class_name(c),
		       (unsigned long long)t.created[c]);
	printf("\nstateless");
	for (unsigned c = 0; c < PC_MAX; c++)
		printf(" %s=%llu", proto_class_name(c),
		       (unsigned long long)t.stateless[c]);
	printf("\nended");
	for (unsigned e = 0; e < END_MAX; e++)
		printf(" %s=%llu", end_reason_name(e),
		       (unsigned long long)t.ended[e]);
	printf("\nsessions live=%llu ageing_started=%llu first_fragments=%llu\n",
	       (unsigned long long)live, (unsigned long long)t.ageing_on,
	       (unsigned long long)t.first_frags);
	for (unsigned c = 0; c < PC_MAX; c++)
		for (unsigned s = 1; s < SS_MAX; s++)
			if (t.ended_state[c][s] || lc.n[c][s])
				printf("state proto=%s state=%s ended=%llu live=%llu\n",
				       proto_class_name(c), sess_state_name(s),
				       (unsigned long long)t.ended_state[c][s],
				       (unsigned long long)lc.n[c][s]);
	for (unsigned d = 1; d < DROP_MAX; d++)
		if (t.drop[d])
			printf("drop reason=%s count=%llu\n", drop_name(d),
			       (unsigned long long)t.drop[d]);
}

static int run_pcap(const char *file, const struct tandem_config *cfg,
		    const struct policy *pol)
{
	char err[512] = "";
	unsigned n = cfg->queues;
	struct limits *lim = NULL;
	struct shard *sh = calloc(n, sizeof(*sh));
	struct pkt_io *io = NULL;
	int rc = 1;
	if (!sh)
		goto out;
	int r = limits_new(cfg->max_sessions * 2u, &lim);
	if (r < 0) {
		fprintf(stderr, "tandem-node: limits: %s\n", strerror(-r));
		goto out;
	}
	r = pkt_io_pcap_ops.open(file, cfg, &io, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: %s\n", err);
		goto out;
	}

	/* The capture's first timestamp starts the clock. */
	struct pkt_desc d;
	int rx = pkt_io_pcap_ops.rx_burst(io, 0, &d, 1);
	uint64_t t0 = rx == 1 ? d.ts_ms : 0, t_last = t0;
	clock_use_manual(t0);

	struct node_ctx ctx;
	node_ctx_init(&ctx, cfg, pol, lim, false);
	uint32_t per_shard = cfg->max_sessions / n;
	unsigned ready = 0;
	for (; ready < n; ready++) {
		r = shard_init(&sh[ready], (uint8_t)ready, per_shard, &ctx, t0);
		if (r < 0) {
			fprintf(stderr, "tandem-node: shard %u: %s\n", ready,
				strerror(-r));
			goto out_shards;
		}
	}

	double start = mono_s();
	while (rx == 1) {
		clock_set_ms(d.ts_ms);
		uint64_t now = clock_now_ms();
		t_last = now;
		/* Replay honours every timeout in the capture: catch each
		 * wheel up before the packet (bounded slices, repeated). */
		for (unsigned i = 0; i < n; i++)
			while (!pipeline_tick(&sh[i], now))
				;
		if (d.l2_drop != DROP_NONE) {
			pipeline_count_drop(&sh[0], d.l2_drop, d.wire_len);
		} else {
			struct pkt p;
			enum drop_reason why = pkt_parse(&p, d.l3, d.len);
			if (why != DROP_NONE) {
				pipeline_count_drop(&sh[0], why, d.len);
			} else {
				struct pipeline_result res;
				unsigned s = pipeline_shard_of(&p, n);
				pipeline_packet(&sh[s], &p, d.iif, d.oif, now,
						&res);
			}
		}
		rx = pkt_io_pcap_ops.rx_burst(io, 0, &d, 1);
	}
	double secs = mono_s() - start;
	if (rx != -ENODATA && rx != 0) {
		fprintf(stderr, "tandem-node: %s: read error\n", file);
		goto out_shards;
	}
	print_summary(file, sh, n, secs, t0, t_last);
	rc = 0;
out_shards:
	for (unsigned i = 0; i < ready; i++)
		shard_fini(&sh[i]);
out:
	pkt_io_pcap_ops.close(io);
	limits_free(lim);
	free(sh);
	return rc;
}

int main(int argc, char **argv)
{
	const char *cfg_path = NULL, *pcap_path = NULL;
	bool check = false;
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"pcap", required_argument, NULL, 'p'},
		{"check", no_argument, NULL, 'k'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:p:kqh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfg_path = optarg; break;
		case 'p': pcap_path = optarg; break;
		case 'k': check = true; break;
		case 'q': break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg_path || (!pcap_path && !check) || optind != argc) {
		usage(stderr);
		return 2;
	}

	char err[512] = "";
	struct tandem_config *cfg = NULL;
	int r = config_load_file(cfg_path, &cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: config refused: %s\n", err);
		return 1;
	}
	struct policy *pol = NULL;
	r = policy_compile(cfg, &pol, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: policy: %s\n", err);
		config_free(cfg);
		return 1;
	}
	int rc = 0;
	if (check)
		printf("config ok file=%s rules=%u zones=%u policy_hash=%016llx\n",
		       cfg_path, cfg->n_rules, cfg->n_zones,
		       (unsigned long long)policy_hash(pol));
	else
		rc = run_pcap(pcap_path, cfg, pol);
	policy_free(pol);
	config_free(cfg);
	return rc;
}
