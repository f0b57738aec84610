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

#include <signal.h>
#include <stdatomic.h>

#include "clock.h"
#include "config.h"
#include "connlimit.h"
#include "pipeline.h"
#include "pkt_io.h"
#include "nft_table.h"
#include "policy.h"
#include "worker.h"


static void usage(FILE *f)
{
	fprintf(f,
		"usage: tandem-node --config FILE [--stats FILE]   filter forwarded traffic (NFQUEUE)\n"
		"       tandem-node --config FILE --pcap CAPTURE   replay a capture offline\n"
		"       tandem-node --config FILE --check          validate the config\n"
		"  --config FILE   libconfig file (see conf/tandem.conf)\n"
		"  --pcap FILE     replay a pcap/pcapng capture, print a summary, exit\n"
		"  --check         validate the config and compile the policy, then exit\n"
		"  --stats FILE    kernel path: rewrite FILE with the counters every 200 ms\n");
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

/* The counters as `record key=value` lines (summary, stats file). lc may
 * be NULL when the caller cannot walk the shards (they are the workers'). */
static void print_stats(FILE *f, const struct shard_stats *t, uint64_t live,
			const struct live_count *lc)
{
	fprintf(f, "verdict");
	for (unsigned v = 0; v < V_MAX; v++)
		fprintf(f, " %s=%llu", verdict_name(v),
			(unsigned long long)t->verdict[v]);
	fprintf(f, "\ncreated");
	for (unsigned c = 0; c < PC_MAX; c++)
		fprintf(f, " %s=%llu", proto_class_name(c),
			(unsigned long long)t->created[c]);
	fprintf(f, "\nstateless");
	for (unsigned c = 0; c < PC_MAX; c++)
		fprintf(f, " %s=%llu", proto_class_name(c),
			(unsigned long long)t->stateless[c]);
	fprintf(f, "\nended");
	for (unsigned e = 0; e < END_MAX; e++)
		fprintf(f, " %s=%llu", end_reason_name(e),
			(unsigned long long)t->ended[e]);
	fprintf(f, "\nsessions live=%llu ageing_started=%llu first_fragments=%llu\n",
		(unsigned long long)live, (unsigned long long)t->ageing_on,
		(unsigned long long)t->first_frags);
	for (unsigned c = 0; c < PC_MAX; c++)
		for (unsigned s = 1; s < SS_MAX; s++) {
			uint64_t l = lc ? lc->n[c][s] : 0;
			if (!t->ended_state[c][s] && !l)
				continue;
			fprintf(f, "state proto=%s state=%s ended=%llu",
				proto_class_name(c), sess_state_name(s),
				(unsigned long long)t->ended_state[c][s]);
			if (lc)
				fprintf(f, " live=%llu", (unsigned long long)l);
			fputc('\n', f);
		}
	for (unsigned d = 1; d < DROP_MAX; d++)
		if (t->drop[d])
			fprintf(f, "drop reason=%s count=%llu\n", drop_name(d),
				(unsigned long long)t->drop[d]);
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
	print_stats(stdout, &t, live, &lc);
}

static int run_pcap(const char *file, const struct tandem_config *cfg,
		    const struct policy *pol)
{
	char err[512] = "";
	unsigned n = cfg->queues;
	struct connlimit *lim = NULL;
	struct shard *sh = calloc(n, sizeof(*sh));
	struct pkt_io *io = NULL;
	int rc = 1;
	if (!sh)
		goto out;
	int r = connlimit_new(cfg->max_sessions * 2u, &lim);
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
	connlimit_free(lim);
	free(sh);
	return rc;
}

/* ---- kernel data path ------------------------------------------------ */

static atomic_bool stop_flag;
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
	atomic_store(&stop_flag, true);
}

/* Write the counters to path atomically (temp file + rename). */
static void write_stats(const char *path, struct worker *w, unsigned n)
{
	struct shard_stats t = {0}, one;
	uint64_t live = 0;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint32_t sess;
		worker_read(&w[i], &one, &sess);
		stats_add(&t, &one);
		live += sess;
		fprintf(f, "shard id=%u queue=%u packets=%llu sessions=%u\n", i,
			w[i].queue, (unsigned long long)one.pkts, sess);
	}
	print_stats(f, &t, live, NULL);
	fclose(f);
	rename(tmp, path);
}

static int run_nfq(const struct tandem_config *cfg, const struct policy *pol,
		   const char *stats_path)
{
	char err[512] = "";
	unsigned n = cfg->queues;
	struct connlimit *lim = NULL;
	struct pkt_io *io = NULL;
	struct worker *w = calloc(n, sizeof(*w));
	int rc = 1, r;
	unsigned ready = 0;
	bool table = false;
	if (!w)
		goto out;
	r = connlimit_new(cfg->max_sessions * 2u, &lim);
	if (r < 0) {
		fprintf(stderr, "tandem-node: limits: %s\n", strerror(-r));
		goto out;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a signal must interrupt the control loop's sleep */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Bind the queues before the table sends anything to them. */
	r = pkt_io_nfq_ops.open(NULL, cfg, &io, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: %s\n", err);
		goto out;
	}
	struct node_ctx ctx;
	node_ctx_init(&ctx, cfg, pol, lim, cfg->n_ifaces > 0);
	uint64_t now = clock_now_ms();
	for (; ready < n; ready++) {
		r = shard_init(&w[ready].sh, (uint8_t)ready,
			       cfg->max_sessions / n, &ctx, now);
		if (r < 0) {
			fprintf(stderr, "tandem-node: shard %u: %s\n", ready,
				strerror(-r));
			goto out;
		}
		w[ready].queue = ready;
		w[ready].ops = &pkt_io_nfq_ops;
		w[ready].io = io;
		w[ready].stop = &stop_flag;
	}
	struct nft_table_opts to = {
		.table = "tandem",
		.queue_first = cfg->queue_first,
		.queue_count = n,
		.bypass = cfg->bypass,
		.fanout = n > 1,
	};
	r = nft_table_install(&to, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: nftables: %s\n", err);
		goto out;
	}
	table = true;
	for (unsigned i = 0; i < n; i++) {
		r = worker_start(&w[i]);
		if (r < 0) {
			fprintf(stderr, "tandem-node: worker %u: %s\n", i,
				strerror(-r));
			atomic_store(&stop_flag, true);
			goto out;
		}
	}
	fprintf(stderr,
		"tandem-node: %s (id %u) filtering: queues %u-%u, table inet tandem, "
		"%s, %s, %u sessions max\n",
		cfg->node_name, cfg->node_id, cfg->queue_first,
		cfg->queue_first + n - 1,
		cfg->fail_open ? "fail-open on queue overflow" : "fail-closed on queue overflow",
		cfg->bypass ? "bypass when not running" : "drop when not running",
		cfg->max_sessions);

	/* Control loop: interface names, counters; workers run alone. */
	unsigned ticks = 0;
	while (!atomic_load(&stop_flag)) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
		nanosleep(&ts, NULL);
		if (++ticks % 10 == 0)
			pkt_io_nfq_refresh_ifaces(io);
		if (stats_path)
			write_stats(stats_path, w, n);
	}
	rc = 0;
out:
	atomic_store(&stop_flag, true);
	for (unsigned i = 0; i < ready; i++)
		worker_join(&w[i]);
	if (stats_path && rc == 0)
		write_stats(stats_path, w, n);
	if (table) {
		r = nft_table_remove("tandem", err, sizeof(err));
		if (r < 0)
			fprintf(stderr, "tandem-node: removing table: %s\n", err);
	}
	pkt_io_nfq_ops.close(io);
	for (unsigned i = 0; i < ready; i++)
		shard_fini(&w[i].sh);
	connlimit_free(lim);
	free(w);
	if (rc == 0)
		fprintf(stderr, "tandem-node: stopped (%s), table removed\n",
			got_signal == SIGINT ? "SIGINT" : "SIGTERM");
	return rc;
}

int main(int argc, char **argv)
{
	const char *cfg_path = NULL, *pcap_path = NULL, *stats_path = NULL;
	bool check = false;
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"pcap", required_argument, NULL, 'p'},
		{"check", no_argument, NULL, 'k'},
		{"stats", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:p:ks:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfg_path = optarg; break;
		case 'p': pcap_path = optarg; break;
		case 'k': check = true; break;
		case 's': stats_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg_path || optind != argc) {
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
	else if (pcap_path)
		rc = run_pcap(pcap_path, cfg, pol);
	else
		rc = run_nfq(cfg, pol, stats_path);
	policy_free(pol);
	config_free(cfg);
	return rc;
}
