/*
 * main.c - tandem-syncd: the daemon, and its one-shot control clients.
 *
 *   tandem-syncd -c CONF                 run (foreground; SIGTERM/SIGINT stop,
 *                                        SIGHUP reloads CONF)
 *   tandem-syncd -c CONF --check         validate the config and exit
 *   tandem-syncd -c CONF --show          print show cluster
 *   tandem-syncd -c CONF --failover [--timeout MS]
 *                                        planned switch (run on the active)
 *   tandem-syncd -c CONF --notify ROLE   keepalived notify hook: active|master,
 *                                        standby|backup|fault
 *   -s PATH instead of -c: the control socket to talk to.
 *
 * Must never: print from anywhere but here and cluster.c, or run the
 * daemon with a config that did not load completely.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "cluster.h"
#include "sconf.h"
#include "tandem.pb-c.h"

#define VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tandem-syncd -c CONF [--check]\n"
		"       tandem-syncd (-c CONF | -s SOCKET) --show\n"
		"       tandem-syncd (-c CONF | -s SOCKET) --failover [--timeout MS]\n"
		"       tandem-syncd (-c CONF | -s SOCKET) --notify active|standby\n");
}

/* ---- one-shot client ------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -ECONNRESET : -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static Tandem__SyncdReply *call(const char *path, Tandem__SyncdRequest *q)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "tandem-syncd: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	size_t n = tandem__syncd_request__get_packed_size(q);
	uint8_t *b = malloc(n + 4);
	if (!b) {
		close(fd);
		return NULL;
	}
	b[0] = (uint8_t)(n >> 24);
	b[1] = (uint8_t)(n >> 16);
	b[2] = (uint8_t)(n >> 8);
	b[3] = (uint8_t)n;
	tandem__syncd_request__pack(q, b + 4);
	int r = write_all(fd, b, n + 4);
	free(b);
	uint8_t h[4];
	if (r == 0)
		r = read_all(fd, h, 4);
	Tandem__SyncdReply *rep = NULL;
	if (r == 0) {
		uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
			       (uint32_t)h[2] << 8 | h[3];
		uint8_t *d = len <= (16u << 20) ? malloc(len ? len : 1) : NULL;
		if (d && read_all(fd, d, len) == 0)
			rep = tandem__syncd_reply__unpack(NULL, len, d);
		free(d);
	}
	close(fd);
	if (!rep)
		fprintf(stderr, "tandem-syncd: no valid reply from %s\n", path);
	return rep;
}

static const char *yesno(bool b)
{
	return b ? "yes" : "no";
}

static void print_cluster(const Tandem__ClusterStatus *cs)
{
	printf("cluster node=%u id=%u mode=%s role=%s epoch=%llu ready=%s "
	       "priority=%u preempt=%s role_age_ms=%llu node=%s local=%llu "
	       "peer=%llu apply_pending=%llu",
	       cs->node_id, cs->cluster_id, cs->mode, cs->role,
	       (unsigned long long)cs->epoch, yesno(cs->ready), cs->priority,
	       yesno(cs->preempt), (unsigned long long)cs->role_age_ms, cs->node_link,
	       (unsigned long long)cs->local_sessions,
	       (unsigned long long)cs->peer_sessions,
	       (unsigned long long)cs->apply_pending);
	if (cs->policy_hash)
		printf(" policy=%s", cs->policy_hash);
	if (cs->has_last_takeover_ms)
		printf(" last_takeover_ms=%u", cs->last_takeover_ms);
	if (cs->has_takeover_pending && cs->takeover_pending)
		printf(" takeover=pending");
	printf(" reason=\"%s\"\n", cs->role_reason ? cs->role_reason : "");
	for (size_t i = 0; i < cs->n_peers; i++) {
		const Tandem__PeerStatus *p = cs->peers[i];
		printf("peer id=%u addr=%s link=%s", p->node_id, p->address, p->link);
		for (size_t k = 0; k < p->n_paths; k++) {
			const Tandem__PathStatus *ph = p->paths[k];
			if (ph->has_last_rx_age_ms)
				printf(" %s=%s/%llums", ph->path,
				       ph->alive ? "alive" : "dead",
				       (unsigned long long)ph->last_rx_age_ms);
			else
				printf(" %s=never", ph->path);
		}
		if (p->role)
			printf(" role=%s epoch=%llu priority=%u ready=%s", p->role,
			       (unsigned long long)p->epoch, p->priority,
			       yesno(p->ready));
		printf(" sent=%llu received=%llu refused=%llu lag=%llu/%llums",
		       (unsigned long long)p->events_sent,
		       (unsigned long long)p->events_received,
		       (unsigned long long)p->frames_refused,
		       (unsigned long long)p->lag_events,
		       (unsigned long long)p->lag_ms);
		if (p->has_ack_p50_us)
			printf(" ack_p50_us=%u ack_p99_us=%u", p->ack_p50_us,
			       p->ack_p99_us);
		if (p->bulk_tx)
			printf(" bulk_tx=%s:%llu/%llu", p->bulk_tx->state,
			       (unsigned long long)p->bulk_tx->sent,
			       (unsigned long long)p->bulk_tx->total);
		if (p->bulk_rx)
			printf(" bulk_rx=%s:%llu", p->bulk_rx->state,
			       (unsigned long long)p->bulk_rx->sent);
		for (size_t k = 0; k < p->n_refused; k++)
			if (p->refused[k]->value)
				printf(" refused.%s=%llu", p->refused[k]->name,
				       (unsigned long long)p->refused[k]->value);
		printf("\n");
	}
	for (size_t k = 0; k < cs->n_vips; k++)
		printf("vip %s\n", cs->vips[k]);
	printf("counters");
	for (size_t k = 0; k < cs->n_counters; k++)
		if (cs->counters[k]->value)
			printf(" %s=%llu", cs->counters[k]->name,
			       (unsigned long long)cs->counters[k]->value);
	printf("\n");
}

static int client(const char *sock, Tandem__SyncdRequest__Cmd cmd,
		  const char *role, uint32_t timeout_ms)
{
	Tandem__SyncdRequest q = TANDEM__SYNCD_REQUEST__INIT;
	q.seq = (uint64_t)getpid();
	q.cmd = cmd;
	q.role = (char *)role;
	q.source = "tandem-syncd client";
	if (timeout_ms) {
		q.has_timeout_ms = true;
		q.timeout_ms = timeout_ms;
	}
	Tandem__SyncdReply *rep = call(sock, &q);
	if (!rep)
		return 2;
	int rc = 0;
	if (rep->status != 0) {
		printf("ERR %d %s\n", rep->status, rep->error ? rep->error : "");
		rc = 1;
	} else if (cmd == TANDEM__SYNCD_REQUEST__CMD__SHOW_CLUSTER && rep->cluster) {
		print_cluster(rep->cluster);
	} else if (cmd == TANDEM__SYNCD_REQUEST__CMD__FAILOVER) {
		printf("OK failover took %u ms, role %s\n", rep->failover_ms,
		       rep->role ? rep->role : "?");
	} else {
		printf("OK role %s\n", rep->role ? rep->role : "?");
	}
	tandem__syncd_reply__free_unpacked(rep, NULL);
	return rc;
}

/* ---- daemon ---------------------------------------------------------------- */

struct sigs {
	uv_signal_t term, intr, hup;
	struct cluster *c;
};

static void close_sigs(struct sigs *g)
{
	if (!uv_is_closing((uv_handle_t *)&g->term))
		uv_close((uv_handle_t *)&g->term, NULL);
	if (!uv_is_closing((uv_handle_t *)&g->intr))
		uv_close((uv_handle_t *)&g->intr, NULL);
	if (!uv_is_closing((uv_handle_t *)&g->hup))
		uv_close((uv_handle_t *)&g->hup, NULL);
}

/* the default action of SIGHUP would kill the daemon and leave the virtual
 * addresses on the interface */
static void on_hup(uv_signal_t *s, int signum)
{
	(void)signum;
	struct sigs *g = s->data;
	cluster_reload(g->c);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	struct sigs *g = s->data;
	cluster_stop(g->c);
	close_sigs(g);
}

static int run(struct sconf *conf)
{
	uv_loop_t loop;
	if (uv_loop_init(&loop) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	struct sigs g = {.c = NULL};
	int r = cluster_new(&loop, conf, &g.c);
	if (r < 0) {
		fprintf(stderr, "tandem-syncd: %s\n", strerror(-r));
		uv_loop_close(&loop);
		return 1;
	}
	uv_signal_init(&loop, &g.term);
	uv_signal_init(&loop, &g.intr);
	uv_signal_init(&loop, &g.hup);
	g.term.data = g.intr.data = g.hup.data = &g;
	uv_signal_start(&g.term, on_signal, SIGTERM);
	uv_signal_start(&g.intr, on_signal, SIGINT);
	uv_signal_start(&g.hup, on_hup, SIGHUP);
	char err[512] = "";
	int rc = 0;
	if (cluster_start(g.c, err, sizeof(err)) < 0) {
		fprintf(stderr, "tandem-syncd: %s\n", err);
		rc = 1;
		cluster_stop(g.c);
		close_sigs(&g);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	cluster_free(g.c);
	if (uv_loop_close(&loop) != 0 && !rc)
		rc = 1;
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"socket", required_argument, NULL, 's'},
		{"check", no_argument, NULL, 'k'},
		{"show", no_argument, NULL, 'S'},
		{"failover", no_argument, NULL, 'F'},
		{"notify", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *sock = NULL, *role = NULL;
	int mode = 0;
	uint32_t timeout_ms = 0;
	int o;
	while ((o = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': conf_path = optarg; break;
		case 's': sock = optarg; break;
		case 'k': case 'S': case 'F': mode = o; break;
		case 'n': mode = 'n'; role = optarg; break;
		case 't': timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tandem-syncd %s\n", VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (!conf_path && !(sock && mode && mode != 'k'))) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "tandem-syncd: libsodium failed to initialise\n");
		return 1;
	}
	struct sconf *conf = NULL;
	if (conf_path) {
		char err[512];
		if (sconf_load_file(conf_path, &conf, err, sizeof(err)) < 0) {
			fprintf(stderr, "tandem-syncd: %s\n", err);
			return 1;
		}
		if (!sock)
			sock = conf->control_socket;
	}
	int rc;
	switch (mode) {
	case 'k':
		printf("tandem-syncd: %s: OK\n", conf_path);
		rc = 0;
		break;
	case 'S':
		rc = client(sock, TANDEM__SYNCD_REQUEST__CMD__SHOW_CLUSTER, NULL, 0);
		break;
	case 'F':
		rc = client(sock, TANDEM__SYNCD_REQUEST__CMD__FAILOVER, NULL, timeout_ms);
		break;
	case 'n':
		rc = client(sock, TANDEM__SYNCD_REQUEST__CMD__ROLE, role, 0);
		break;
	default:
		rc = run(conf);
	}
	sconf_free(conf);
	return rc;
}
