/*
 * udpgen.c - bounded UDP/IPv4 load generator for the data-path benchmark
 * (tests/bench/bench_datapath.py): small packets built in user space and
 * sent with sendmmsg() on a raw IP_HDRINCL socket, so that every packet of
 * a batch may carry a different flow (source address and port).
 *
 * Flows: --addrs consecutive source addresses from --src times --ports
 * consecutive source ports from --sport. Packet i uses address
 * src + i % addrs (address fastest, so that flows spread over NFQUEUE
 * queues, whose balancing hash looks at addresses only) and port
 * sport + (i / addrs) % ports. With --unique the run also stops when the
 * flow space is used up, so no flow repeats: every packet opens a new
 * session (the new-sessions-per-second test).
 *
 * Frame length counts the Ethernet frame with its FCS (RFC 2544 style):
 * --frame-len 64 gives 46-byte IP packets, 18 bytes of UDP payload. The
 * payload is a marker and the packet number. The UDP checksum is computed
 * here; the kernel fills in the IP id, length and header checksum.
 *
 * Output, one line on stdout at the end:
 *   udpgen sent=N tx_errors=N seconds=T pps=R flows=F cpu=C
 * (sent counts packets the kernel took; a veth that drops them may still
 * count them as sent: compare with what the receiver counted). C is the
 * CPU time the generator used, its system calls' inline softirq work (the
 * whole forwarding path up to wherever the packet is queued) included.
 *
 * Must never: run without both a time bound (--seconds, at most 300) and a
 * packet bound (--max-packets); send from or to an address outside the lab
 * networks 10.1.0.0/16, 10.2.0.0/16 and 10.3.0.0/16 (deploy/lab.sh); run
 * outside a lab network namespace (one named tdm-* in /run/netns: run it
 * with `ip netns exec tdm-...`).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX 256
#define FRAME_MIN 64
#define FRAME_MAX 1518
#define SLOT 1536      /* bytes per packet buffer: >= FRAME_MAX, 64-aligned */
#define ETH_OVERHEAD 18 /* header 14 + FCS 4 */
#define SECONDS_MAX 300
#define MARKER 0x74646d62u /* "tdmb" */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: udpgen --dst A --src A --seconds S --max-packets N [options]\n"
		"  --dst ADDR         destination (lab networks only)\n"
		"  --dport PORT       destination port [9000]\n"
		"  --src ADDR         first source address (lab networks only)\n"
		"  --addrs N          consecutive source addresses [1]\n"
		"  --sport PORT       first source port [10000]\n"
		"  --ports N          consecutive source ports [1]\n"
		"  --unique           stop when every flow was used once (no repeats)\n"
		"  --seconds S        time bound, 1..%d (required)\n"
		"  --max-packets N    packet bound, >= 1 (required)\n"
		"  --pps R            pace to R packets/s [0 = as fast as possible]\n"
		"  --frame-len L      Ethernet frame length with FCS, %d..%d [64]\n"
		"  --batch B          packets per sendmmsg, 1..%d [64]\n",
		SECONDS_MAX, FRAME_MIN, FRAME_MAX, BATCH_MAX);
}

/* The lab's client, server and dmz networks (deploy/lab.sh). */
static bool lab_addr(uint32_t a)
{
	uint32_t net = a & 0xffff0000u;
	return net == 0x0a010000u || net == 0x0a020000u || net == 0x0a030000u;
}

/* 0 when this process runs inside a lab namespace: one named tdm-* under
 * /run/netns (where `ip netns` keeps them); -EPERM anywhere else, the
 * initial namespace included. */
static int check_netns(void)
{
	struct stat self, ns;
	char path[300];
	struct dirent *e;
	DIR *d;
	int r = -EPERM;

	if (stat("/proc/self/ns/net", &self) < 0)
		return -errno;
	d = opendir("/run/netns");
	if (!d)
		return -EPERM;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "tdm-", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "/run/netns/%s", e->d_name);
		if (stat(path, &ns) == 0 && ns.st_ino == self.st_ino &&
		    ns.st_dev == self.st_dev) {
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* CPU seconds (user + system) this process used so far; system time
 * includes the softirq work the kernel did inline in its system calls. */
static double cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0.0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t sum16(uint32_t acc, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < len; i += 2)
		acc += (uint32_t)b[i] << 8 | b[i + 1];
	if (len & 1)
		acc += (uint32_t)b[len - 1] << 8;
	return acc;
}

static uint16_t fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

struct gen {
	uint32_t dst, src;     /* host order */
	uint16_t dport, sport;
	uint32_t addrs, ports;
	bool unique;
	double seconds;
	uint64_t max_packets;
	uint64_t pps;
	unsigned ip_len;
	unsigned batch;
};

/* Write packet number n (flow n % flows) into an IP packet of g->ip_len
 * bytes. */
static void build(const struct gen *g, uint8_t *pkt, uint64_t n)
{
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *udp = (struct udphdr *)(pkt + sizeof(*ip));
	uint8_t *pl = pkt + sizeof(*ip) + sizeof(*udp);
	unsigned udp_len = g->ip_len - (unsigned)sizeof(*ip);
	uint64_t flow = n % ((uint64_t)g->addrs * g->ports);
	uint32_t src = g->src + (uint32_t)(flow % g->addrs);
	uint16_t sport = (uint16_t)(g->sport + flow / g->addrs);

	memset(pkt, 0, g->ip_len);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons((uint16_t)g->ip_len);
	ip->frag_off = htons(IP_DF);
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = htonl(src);
	ip->daddr = htonl(g->dst);
	udp->source = htons(sport);
	udp->dest = htons(g->dport);
	udp->len = htons((uint16_t)udp_len);
	uint32_t m = htonl(MARKER);
	uint32_t hi = htonl((uint32_t)(n >> 32)), lo = htonl((uint32_t)n);
	memcpy(pl, &m, 4);
	memcpy(pl + 4, &hi, 4);
	memcpy(pl + 8, &lo, 4);

	/* pseudo header, then the UDP header and payload */
	uint32_t acc = sum16(0, &ip->saddr, 8);
	acc += IPPROTO_UDP + udp_len;
	acc = sum16(acc, udp, udp_len);
	uint16_t c = fold(acc);
	udp->check = htons(c ? c : 0xffff);
}

static int parse_args(int argc, char **argv, struct gen *g)
{
	static const struct option opts[] = {
		{"dst", required_argument, NULL, 'd'},
		{"dport", required_argument, NULL, 'D'},
		{"src", required_argument, NULL, 's'},
		{"addrs", required_argument, NULL, 'a'},
		{"sport", required_argument, NULL, 'S'},
		{"ports", required_argument, NULL, 'p'},
		{"unique", no_argument, NULL, 'u'},
		{"seconds", required_argument, NULL, 't'},
		{"max-packets", required_argument, NULL, 'n'},
		{"pps", required_argument, NULL, 'r'},
		{"frame-len", required_argument, NULL, 'l'},
		{"batch", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool have_dst = false, have_src = false;
	uint64_t v = 0;
	int c;

	*g = (struct gen){.dport = 9000, .sport = 10000, .addrs = 1,
			  .ports = 1, .ip_len = FRAME_MIN - ETH_OVERHEAD,
			  .batch = 64};
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		struct in_addr ia;
		int r = 0;
		switch (c) {
		case 'd':
		case 's':
			if (inet_pton(AF_INET, optarg, &ia) != 1) {
				r = -EINVAL;
				break;
			}
			if (c == 'd') {
				g->dst = ntohl(ia.s_addr);
				have_dst = true;
			} else {
				g->src = ntohl(ia.s_addr);
				have_src = true;
			}
			break;
		case 'D':
			r = parse_u64(optarg, 1, 65535, &v);
			g->dport = (uint16_t)v;
			break;
		case 'S':
			r = parse_u64(optarg, 1, 65535, &v);
			g->sport = (uint16_t)v;
			break;
		case 'a':
			r = parse_u64(optarg, 1, 65536, &v);
			g->addrs = (uint32_t)v;
			break;
		case 'p':
			r = parse_u64(optarg, 1, 65535, &v);
			g->ports = (uint32_t)v;
			break;
		case 'u':
			g->unique = true;
			break;
		case 't':
			r = parse_u64(optarg, 1, SECONDS_MAX, &v);
			g->seconds = (double)v;
			break;
		case 'n':
			r = parse_u64(optarg, 1, UINT64_MAX / 2, &v);
			g->max_packets = v;
			break;
		case 'r':
			r = parse_u64(optarg, 0, 100000000, &v);
			g->pps = v;
			break;
		case 'l':
			r = parse_u64(optarg, FRAME_MIN, FRAME_MAX, &v);
			g->ip_len = (unsigned)v - ETH_OVERHEAD;
			break;
		case 'b':
			r = parse_u64(optarg, 1, BATCH_MAX, &v);
			g->batch = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (r < 0) {
			fprintf(stderr, "udpgen: bad option value '%s'\n",
				optarg);
			return r;
		}
	}
	if (optind != argc || !have_dst || !have_src || g->seconds <= 0 ||
	    g->max_packets == 0) {
		fprintf(stderr, "udpgen: --dst, --src, --seconds and "
				"--max-packets are required\n");
		return -EINVAL;
	}
	if ((uint32_t)g->sport + g->ports - 1 > 65535) {
		fprintf(stderr, "udpgen: --sport + --ports exceeds 65535\n");
		return -EINVAL;
	}
	uint32_t last = g->src + g->addrs - 1;
	if (!lab_addr(g->dst) || !lab_addr(g->src) || !lab_addr(last) ||
	    (last & 0xffff0000u) != (g->src & 0xffff0000u)) {
		fprintf(stderr, "udpgen: addresses must lie in 10.1.0.0/16, "
				"10.2.0.0/16 or 10.3.0.0/16 (the lab)\n");
		return -EINVAL;
	}
	if (g->unique) {
		uint64_t flows = (uint64_t)g->addrs * g->ports;
		if (g->max_packets > flows)
			g->max_packets = flows;
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* a multiple of 64 per slot keeps each IP header aligned */
	static _Alignas(64) uint8_t bufs[BATCH_MAX][SLOT];
	static struct mmsghdr msgs[BATCH_MAX];
	static struct iovec iov[BATCH_MAX];
	struct gen g;
	int r;

	if (parse_args(argc, argv, &g) < 0) {
		usage(stderr);
		return 2;
	}
	r = check_netns();
	if (r < 0) {
		fprintf(stderr, "udpgen: refusing to run: %s\n",
			r == -EPERM ? "not inside a lab namespace "
				      "(ip netns exec tdm-...)"
				    : strerror(-r));
		return 2;
	}

	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IP_HDRINCL implied */
	if (fd < 0) {
		perror("udpgen: raw socket");
		return 1;
	}
	int sndbuf = 4 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(g.dst)};
	for (unsigned i = 0; i < g.batch; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = g.ip_len;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_name = &to;
		msgs[i].msg_hdr.msg_namelen = sizeof(to);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	uint64_t sent = 0, tx_errors = 0;
	double t0 = now_s(), end = t0 + g.seconds, t = t0;
	/* Both bounds are checked once per batch: at most one batch past
	 * the time bound, never past the packet bound. */
	while (!stop_flag && sent < g.max_packets && t < end) {
		unsigned n = g.batch;
		if (g.max_packets - sent < n)
			n = (unsigned)(g.max_packets - sent);
		if (g.pps) {
			double due = t0 + (double)sent / (double)g.pps;
			if (due > t) {
				double d = due - t;
				struct timespec ts = {
					.tv_sec = (time_t)d,
					.tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
				nanosleep(&ts, NULL);
			}
		}
		for (unsigned i = 0; i < n; i++)
			build(&g, bufs[i], sent + i);
		int k = sendmmsg(fd, msgs, n, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ENOBUFS && errno != EAGAIN &&
			    errno != ENOMEM) {
				perror("udpgen: sendmmsg");
				close(fd);
				return 1;
			}
			/* the packet at the head failed: skip it, so a
			 * --unique flow is still never sent twice */
			tx_errors++;
			k = 1;
		}
		sent += (uint64_t)k;
		t = now_s();
	}
	close(fd);
	double el = t - t0;
	uint64_t flows = (uint64_t)g.addrs * g.ports;
	printf("udpgen sent=%llu tx_errors=%llu seconds=%.3f pps=%.0f flows=%llu "
	       "cpu=%.3f\n",
	       (unsigned long long)(sent - tx_errors),
	       (unsigned long long)tx_errors, el,
	       el > 0 ? (double)(sent - tx_errors) / el : 0.0,
	       (unsigned long long)(sent < flows ? sent : flows), cpu_s());
	return 0;
}
