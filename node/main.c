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
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <stdatomic.h>

#include <uv.h>

#include "clock.h"
#include "ctl.h"
#include "jobs.h"
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
		"       tandem-node --config FILE --pcap CAPTURE [--serve]  replay a capture offline\n"
		"       tandem-node --config FILE --check          validate the config\n"
		"  --config FILE   libconfig file (see conf/tandem.conf)\n"
		"  --pcap FILE     replay a pcap/pcapng capture, print a summary, exit\n"
		"  --check         validate the config and compile the policy, then exit\n"
		"  --stats FILE    rewrite FILE with the counters every 200 ms\n"
		"  --serve         with --pcap: after the replay, keep answering the control\n"
		"                  socket (control.socket) until SIGTERM\n");
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
	fprintf(f, "keepalive probes=%llu rejuvenated=%llu discarded_rst=%llu\n",
		(unsigned long long)t->ka_probes,
		(unsigned long long)t->ka_rejuvenated,
		(unsigned long long)t->ka_rst);
	fprintf(f, "tcp mss-clamped=%llu", (unsigned long long)t->mss_clamped);
	for (unsigned k = 1; k < TN_MAX; k++)
		fprintf(f, " %s=%llu", track_note_name(k),
			(unsigned long long)t->tcp_note[k]);
	fputc('\n', f);
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

/* ---- control loop (both modes) --------------------------------------- */

struct node_run {
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t stats_timer, iface_timer;
	struct ctl *ctl;
	struct connlimit *lim;
	unsigned n;
	struct worker *w;      /* kernel path */
	struct shard *sh;      /* offline */
	struct pkt_io *io;
	const struct pkt_io_ops *io_ops; /* kernel path: NFQUEUE or AF_XDP */
	const char *stats_path;
	int signal;
	/* the node's nft table: watched, put back when someone removes it */
	struct nft_table_opts nft;
	struct nft_watch *nft_watch;
	uv_poll_t nft_poll;
	bool nft_polling;
	uint64_t nft_reinstalled;
};

/* Offline: the control thread owns the shards, so a job runs to the end
 * right away. */
static void offline_post(void *arg, unsigned i, struct ctl_job *j)
{
	struct node_run *nr = arg;
	while (!job_run_slice(j, &nr->sh[i], clock_now_ms()))
		;
	atomic_store(&j->done, true);
	ctl_wake(nr->ctl);
}

static void offline_read(void *arg, unsigned i, struct shard_stats *st,
			 uint32_t *sessions)
{
	struct node_run *nr = arg;
	*st = nr->sh[i].st;
	*sessions = sess_table_count(nr->sh[i].tab);
}

static struct sync_out *offline_sync(void *arg, unsigned i)
{
	struct node_run *nr = arg;
	return nr->sh[i].sync;
}

static const struct ctl_shard_ops offline_ops = {offline_post, offline_read,
						 offline_sync};

static void worker_post(void *arg, unsigned i, struct ctl_job *j)
{
	struct node_run *nr = arg;
	atomic_store_explicit(&nr->w[i].job, j, memory_order_release);
	/* an idle worker sleeps in its receive (up to 50 ms): a signal
	 * without SA_RESTART cuts that short, so a job starts at once */
	if (nr->w[i].started)
		pthread_kill(nr->w[i].th, SIGUSR1);
}

static void on_wake_signal(int sig)
{
	(void)sig;
}

static void worker_read_op(void *arg, unsigned i, struct shard_stats *st,
			   uint32_t *sessions)
{
	struct node_run *nr = arg;
	worker_read(&nr->w[i], st, sessions);
}

static struct sync_out *worker_sync(void *arg, unsigned i)
{
	struct node_run *nr = arg;
	return nr->w[i].sh.sync;
}

static const struct ctl_shard_ops worker_ops = {worker_post, worker_read_op,
						worker_sync};

#define SYNC_RING_SLOTS 32768
#define SYNC_REFRESH_MS 1000

/* Every shard can replicate: rings cost 4 MiB each, used only while a
 * tandem-syncd is subscribed. */
static int shard_sync_init(struct shard *sh, uint32_t capacity)
{
	return sync_out_new(SYNC_RING_SLOTS, capacity, SYNC_REFRESH_MS, &sh->sync);
}

/* Write the counters to path atomically (temp file + rename). */
static void write_stats(struct node_run *nr, const struct ctl_shard_ops *ops)
{
	struct shard_stats t = {0}, one;
	uint64_t live = 0;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", nr->stats_path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	for (unsigned i = 0; i < nr->n; i++) {
		uint32_t sess;
		ops->read(nr, i, &one, &sess);
		stats_add(&t, &one);
		live += sess;
		fprintf(f, "shard id=%u queue=%u packets=%llu sessions=%u\n", i,
			i, (unsigned long long)one.pkts, sess);
	}
	print_stats(f, &t, live, NULL);
	fprintf(f, "nft reinstalled=%llu\n", (unsigned long long)nr->nft_reinstalled);
	fclose(f);
	rename(tmp, nr->stats_path);
}

static void on_stats_timer(uv_timer_t *t)
{
	struct node_run *nr = t->data;
	write_stats(nr, nr->w ? &worker_ops : &offline_ops);
}

static void on_iface_timer(uv_timer_t *t)
{
	struct node_run *nr = t->data;
	nr->io_ops->tick(nr->io);
}

static void on_uv_signal(uv_signal_t *h, int sig)
{
	struct node_run *nr = h->data;
	if (sig == SIGHUP) {
		ctl_reload_file(nr->ctl);
		return;
	}
	nr->signal = sig;
	/* close every handle: the loop then runs out */
	ctl_close(nr->ctl);
	uv_close((uv_handle_t *)&nr->sig_term, NULL);
	uv_close((uv_handle_t *)&nr->sig_int, NULL);
	uv_close((uv_handle_t *)&nr->sig_hup, NULL);
	uv_close((uv_handle_t *)&nr->stats_timer, NULL);
	if (nr->w)
		uv_close((uv_handle_t *)&nr->iface_timer, NULL);
	/* closed before the node removes its own table, which must not be
	 * put back */
	if (nr->nft_polling) {
		uv_close((uv_handle_t *)&nr->nft_poll, NULL);
		nr->nft_polling = false;
	}
}

/* Start the control plane on nr->loop: ctl socket, signals, timers. */
static int control_start(struct node_run *nr, struct node_conf *nc,
			 const struct ctl_shard_ops *ops, uint32_t capacity)
{
	char err[512] = "";
	int r = ctl_new(&nr->loop, nc, nr->n, capacity, ops, nr, &nr->ctl);
	if (r < 0)
		return r;
	r = ctl_listen(nr->ctl, nc->cfg->ctl_socket, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: control socket: %s\n", err);
		return r;
	}
	uv_signal_init(&nr->loop, &nr->sig_term);
	uv_signal_init(&nr->loop, &nr->sig_int);
	uv_signal_init(&nr->loop, &nr->sig_hup);
	nr->sig_term.data = nr->sig_int.data = nr->sig_hup.data = nr;
	uv_signal_start(&nr->sig_term, on_uv_signal, SIGTERM);
	uv_signal_start(&nr->sig_int, on_uv_signal, SIGINT);
	uv_signal_start(&nr->sig_hup, on_uv_signal, SIGHUP);
	uv_timer_init(&nr->loop, &nr->stats_timer);
	nr->stats_timer.data = nr;
	if (nr->stats_path)
		uv_timer_start(&nr->stats_timer, on_stats_timer, 0, 200);
	if (nr->w) {
		uv_timer_init(&nr->loop, &nr->iface_timer);
		nr->iface_timer.data = nr;
		unsigned ms = nr->io_ops->tick_ms;
		uv_timer_start(&nr->iface_timer, on_iface_timer, ms, ms);
	}
	return 0;
}

/* ---- offline ------------------------------------------------------------ */

static int run_pcap(const char *file, struct node_conf *nc, bool serve,
		    const char *stats_path)
{
	char err[512] = "";
	const struct tandem_config *cfg = nc->cfg;
	struct node_run nr = {.n = cfg->queues, .stats_path = stats_path};
	struct pkt_io *io = NULL;
	int rc = 1;
	nr.sh = calloc(nr.n, sizeof(*nr.sh));
	if (!nr.sh) {
		node_conf_free(nc);
		return 1;
	}
	int r = pkt_io_pcap_ops.open(file, cfg, &io, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: %s\n", err);
		free(nr.sh);
		node_conf_free(nc);
		return 1;
	}

	/* The capture's first timestamp starts the clock. */
	struct pkt_desc d;
	int rx = pkt_io_pcap_ops.rx_burst(io, 0, &d, 1, false);
	uint64_t t0 = rx == 1 ? d.ts_ms : 0, t_last = t0;
	clock_use_manual(t0);

	uint32_t per_shard = cfg->max_sessions / nr.n;
	unsigned ready = 0;
	for (; ready < nr.n; ready++) {
		r = shard_init(&nr.sh[ready], (uint8_t)ready, per_shard, &nc->ctx, t0);
		nr.sh[ready].nshards = (uint8_t)nr.n;
		if (r == 0 && serve && (r = shard_sync_init(&nr.sh[ready], per_shard)) < 0)
			shard_fini(&nr.sh[ready]);
		if (r < 0) {
			fprintf(stderr, "tandem-node: shard %u: %s\n", ready,
				strerror(-r));
			goto out;
		}
	}

	double start = mono_s();
	while (rx == 1) {
		clock_set_ms(d.ts_ms);
		uint64_t now = clock_now_ms();
		t_last = now;
		/* Replay honours every timeout in the capture: catch each
		 * wheel up before the packet (bounded slices, repeated). */
		for (unsigned i = 0; i < nr.n; i++)
			while (!pipeline_tick(&nr.sh[i], now))
				;
		if (d.l2_drop != DROP_NONE) {
			pipeline_count_drop(&nr.sh[0], d.l2_drop, d.wire_len);
		} else {
			struct pkt p;
			enum drop_reason why = pkt_parse(&p, d.l3, d.len);
			if (why != DROP_NONE) {
				pipeline_count_drop(&nr.sh[0], why, d.len);
			} else {
				struct pipeline_result res;
				unsigned s = pipeline_shard_of(&p, nr.n);
				pipeline_packet(&nr.sh[s], &p, d.iif, d.oif, now,
						&res);
			}
		}
		rx = pkt_io_pcap_ops.rx_burst(io, 0, &d, 1, false);
	}
	double secs = mono_s() - start;
	if (rx != -ENODATA && rx != 0) {
		fprintf(stderr, "tandem-node: %s: read error\n", file);
		goto out;
	}
	print_summary(file, nr.sh, nr.n, secs, t0, t_last);
	fflush(stdout);
	rc = 0;
	if (serve) {
		/* Keep the sessions as the capture left them (the clock stays
		 * at the last packet) and answer the control socket until
		 * SIGTERM/SIGINT. */
		uv_loop_init(&nr.loop);
		r = control_start(&nr, nc, &offline_ops, cfg->max_sessions);
		if (r < 0) {
			rc = 1;
			if (nr.ctl) {
				ctl_close(nr.ctl);
				uv_run(&nr.loop, UV_RUN_DEFAULT);
			}
		} else {
			fprintf(stderr, "tandem-node: serving %s\n", cfg->ctl_socket);
			uv_run(&nr.loop, UV_RUN_DEFAULT);
		}
		uv_loop_close(&nr.loop);
		nc = NULL; /* the control plane owned it */
	}
out:
	for (unsigned i = 0; i < ready; i++)
		shard_fini(&nr.sh[i]);
	ctl_free(nr.ctl);
	node_conf_free(nc);
	pkt_io_pcap_ops.close(io);
	free(nr.sh);
	return rc;
}

/* ---- kernel data path ------------------------------------------------ */

static atomic_bool stop_flag;

/* Someone deleted the node's table, a chain or a rule of it (nftables.service
 * starts with `flush ruleset`): without it traffic would pass unfiltered or
 * not at all. Put it back at once, say so. */
static void on_nft_event(uv_poll_t *p, int status, int events)
{
	struct node_run *nr = p->data;
	bool touched = false;
	char err[256];
	(void)events;
	if (status < 0 || nft_watch_read(nr->nft_watch, &touched) < 0 || !touched)
		return;
	uint64_t t0 = clock_now_ms();
	int r = nft_table_install(&nr->nft, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: table inet %s was removed by someone "
			"else; reinstalling failed: %s\n", nr->nft.table, err);
		return;
	}
	nr->nft_reinstalled++;
	fprintf(stderr, "tandem-node: table inet %s was removed or changed by "
		"someone else (nft flush ruleset?): reinstalled in %llu ms (%llu times)\n",
		nr->nft.table, (unsigned long long)(clock_now_ms() - t0),
		(unsigned long long)nr->nft_reinstalled);
}

static void close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int run_nfq(struct node_conf *nc, const char *stats_path)
{
	char err[512] = "";
	const struct tandem_config *cfg = nc->cfg;
	struct node_run nr = {.n = cfg->queues, .stats_path = stats_path,
			      .io_ops = cfg->af_xdp ? &pkt_io_xdp_ops : &pkt_io_nfq_ops};
	int rc = 1, r;
	unsigned ready = 0, started = 0;
	bool table = false, loop_ready = false;
	nr.w = calloc(nr.n, sizeof(*nr.w));
	if (!nr.w)
		goto out;
	signal(SIGPIPE, SIG_IGN);

	/* Bind the queues (attach to the interfaces) before the table
	 * sends anything to them. */
	r = nr.io_ops->open(NULL, cfg, &nr.io, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: %s: %s\n", nr.io_ops->name, err);
		goto out;
	}
	uint64_t now = clock_now_ms();
	for (; ready < nr.n; ready++) {
		r = shard_init(&nr.w[ready].sh, (uint8_t)ready,
			       cfg->max_sessions / nr.n, &nc->ctx, now);
		if (r == 0 && (r = shard_sync_init(&nr.w[ready].sh,
						   cfg->max_sessions / nr.n)) < 0)
			shard_fini(&nr.w[ready].sh);
		if (r < 0) {
			fprintf(stderr, "tandem-node: shard %u: %s\n", ready,
				strerror(-r));
			goto out;
		}
		nr.w[ready].queue = ready;
		nr.w[ready].sh.nshards = (uint8_t)nr.n;
		nr.w[ready].ops = nr.io_ops;
		nr.w[ready].io = nr.io;
		nr.w[ready].stop = &stop_flag;
	}
	uv_loop_init(&nr.loop);
	loop_ready = true;
	r = control_start(&nr, nc, &worker_ops, cfg->max_sessions);
	nc = NULL; /* owned by the control plane from here */
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < nr.n; i++)
		nr.w[i].ctl = nr.ctl;

	nr.nft = (struct nft_table_opts){
		.table = "tandem",
		.queue_first = cfg->queue_first,
		.queue_count = cfg->af_xdp ? 1 : nr.n,
		.bypass = cfg->bypass,
		.drop_forward = cfg->af_xdp,
	};
	/* watch first, so a removal right after the install is seen */
	r = nft_watch_open(nr.nft.table, &nr.nft_watch);
	if (r < 0) {
		fprintf(stderr, "tandem-node: nftables events: %s\n", strerror(-r));
		goto out;
	}
	r = nft_table_install(&nr.nft, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: nftables: %s\n", err);
		goto out;
	}
	table = true;
	uv_poll_init(&nr.loop, &nr.nft_poll, nft_watch_fd(nr.nft_watch));
	nr.nft_poll.data = &nr;
	uv_poll_start(&nr.nft_poll, UV_READABLE, on_nft_event);
	nr.nft_polling = true;
	/* SIGUSR1 only interrupts a worker's receive (worker_post). */
	struct sigaction wake = {.sa_handler = on_wake_signal};
	sigemptyset(&wake.sa_mask);
	sigaction(SIGUSR1, &wake, NULL);
	/* Workers start with the stop signals blocked (the mask is
	 * inherited): the loop's signal handles get them. */
	sigset_t sigs, old;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	for (; started < nr.n; started++) {
		r = worker_start(&nr.w[started]);
		if (r < 0) {
			fprintf(stderr, "tandem-node: worker %u: %s\n", started,
				strerror(-r));
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started < nr.n)
		goto out;
	if (cfg->af_xdp) {
		char ifs[256] = "";
		size_t used = 0;
		for (unsigned i = 0; i < cfg->n_ifaces && used < sizeof(ifs); i++)
			used += (size_t)snprintf(ifs + used, sizeof(ifs) - used,
						 "%s%s", i ? "," : "", cfg->ifaces[i].name);
		fprintf(stderr,
			"tandem-node: %s (id %u) filtering: AF_XDP on %s (%s mode, "
			"copy), one worker, table inet tandem %s kernel forwarding, "
			"%u sessions max, control %s\n",
			cfg->node_name, cfg->node_id, ifs,
			cfg->xdp_generic ? "generic" : "native",
			cfg->bypass ? "accepts" : "drops",
			cfg->max_sessions, cfg->ctl_socket);
	} else fprintf(stderr,
		"tandem-node: %s (id %u) filtering: queues %u-%u, table inet tandem, "
		"%s, %s, %u sessions max, control %s\n",
		cfg->node_name, cfg->node_id, cfg->queue_first,
		cfg->queue_first + nr.n - 1,
		cfg->fail_open ? "fail-open on queue overflow" : "fail-closed on queue overflow",
		cfg->bypass ? "bypass when not running" : "drop when not running",
		cfg->max_sessions, cfg->ctl_socket);

	uv_run(&nr.loop, UV_RUN_DEFAULT); /* until SIGTERM/SIGINT */
	rc = 0;
	/* Clean stop: the table goes while the workers still answer, so the
	 * packets queued meanwhile get their verdicts (nft_table_remove
	 * waits for the queues to drain before the hook goes). */
	r = nft_table_remove("tandem", err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "tandem-node: removing table: %s\n", err);
	else
		table = false;
out:
	atomic_store(&stop_flag, true);
	for (unsigned i = 0; i < started; i++)
		worker_join(&nr.w[i]);
	if (stats_path && rc == 0 && nr.w)
		write_stats(&nr, &worker_ops);
	if (table) {
		r = nft_table_remove("tandem", err, sizeof(err));
		if (r < 0)
			fprintf(stderr, "tandem-node: removing table: %s\n", err);
	}
	if (loop_ready) {
		if (nr.ctl && rc != 0) {
			ctl_close(nr.ctl);
			uv_walk(&nr.loop, close_handle, NULL);
		}
		uv_run(&nr.loop, UV_RUN_DEFAULT);
		uv_loop_close(&nr.loop);
	}
	if (nr.io)
		nr.io_ops->close(nr.io);
	if (nr.w)
		for (unsigned i = 0; i < ready; i++)
			shard_fini(&nr.w[i].sh);
	ctl_free(nr.ctl);
	nft_watch_close(nr.nft_watch);
	node_conf_free(nc);
	connlimit_free(nr.lim);
	free(nr.w);
	if (rc == 0)
		fprintf(stderr, "tandem-node: stopped (%s), table removed\n",
			nr.signal == SIGINT ? "SIGINT" : "SIGTERM");
	return rc;
}

/* The session index's secret: from the kernel's random pool; should that
 * not answer at once (early boot), from the clock and pid, said on stderr. */
static void seed_session_hash(void)
{
	uint64_t k[2];
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		k[0] = (uint64_t)ts.tv_nsec * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)ts.tv_sec;
		k[1] = (uint64_t)getpid() * UINT64_C(0xbf58476d1ce4e5b9) ^ k[0] >> 7;
		fprintf(stderr, "tandem-node: note: random pool not ready, session hash "
			"seeded from the clock\n");
	}
	sess_hash_seed(k[0], k[1]);
}

int main(int argc, char **argv)
{
	const char *cfg_path = NULL, *pcap_path = NULL, *stats_path = NULL;
	bool check = false, serve = false;
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"pcap", required_argument, NULL, 'p'},
		{"check", no_argument, NULL, 'k'},
		{"stats", required_argument, NULL, 's'},
		{"serve", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:p:ks:Sh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfg_path = optarg; break;
		case 'p': pcap_path = optarg; break;
		case 'k': check = true; break;
		case 's': stats_path = optarg; break;
		case 'S': serve = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg_path || optind != argc || (serve && !pcap_path)) {
		usage(stderr);
		return 2;
	}

	char err[512] = "";
	/* Limits live as long as the process: every config shares them. */
	struct connlimit *lim = NULL;
	struct node_conf *nc = NULL;
	int r = node_conf_new(NULL, cfg_path, NULL, !pcap_path, &nc, err,
			      sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tandem-node: config refused: %s\n", err);
		return 1;
	}
	if (check) {
		printf("config ok file=%s rules=%u zones=%u policy_hash=%016llx\n",
		       cfg_path, nc->cfg->n_rules, nc->cfg->n_zones,
		       (unsigned long long)policy_hash(nc->pol));
		node_conf_free(nc);
		return 0;
	}
	seed_session_hash();
	r = connlimit_new(nc->cfg->max_sessions * 2u, &lim);
	if (r < 0) {
		fprintf(stderr, "tandem-node: limits: %s\n", strerror(-r));
		node_conf_free(nc);
		return 1;
	}
	nc->ctx.lim = lim;
	int rc = pcap_path ? run_pcap(pcap_path, nc, serve, stats_path)
			   : run_nfq(nc, stats_path);
	connlimit_free(lim);
	return rc;
}
