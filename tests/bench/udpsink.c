/*
 * udpsink.c - receiving end of the data-path benchmark
 * (tests/bench/bench_datapath.py): counts the UDP datagrams delivered to
 * one port with recvmmsg(), and reports the delivered rate.
 *
 * Prints "ready" on stdout once bound (the bench starts the senders only
 * then) and, at the end, one line:
 *   udpsink packets=N bytes=B first_to_last=T pps=R cpu=C
 * where T is the time from the first to the last batch received,
 * R = (N - first batch) / T and C the CPU seconds the sink used. The sink
 * ends after --seconds, or once it has received something and then heard
 * nothing for --idle-ms.
 *
 * Must never: run without a time bound (--seconds, at most 300), run outside
 * a lab network namespace (one named tdm-* in /run/netns: run it with
 * `ip netns exec tdm-...`), or answer anything it receives.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
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

#define BATCH 256
#define SLOT 2048         /* bytes per datagram buffer; longer ones are cut */
#define SECONDS_MAX 300
#define RCVBUF (32 << 20) /* rides out the firewall's verdict bursts */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: udpsink --port P --seconds S [--addr A] [--idle-ms M]\n"
		"  --port P      UDP port to count on\n"
		"  --addr A      local address to bind [any]\n"
		"  --seconds S   time bound, 1..%d (required)\n"
		"  --idle-ms M   end after M ms of silence once traffic began [1000]\n",
		SECONDS_MAX);
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"addr", required_argument, NULL, 'a'},
		{"seconds", required_argument, NULL, 't'},
		{"idle-ms", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static uint8_t bufs[BATCH][SLOT];
	static struct mmsghdr msgs[BATCH];
	static struct iovec iov[BATCH];
	struct sockaddr_in local = {.sin_family = AF_INET};
	uint64_t v = 0, port = 0, seconds = 0, idle_ms = 1000;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case 'p':
			r = parse_u64(optarg, 1, 65535, &port);
			break;
		case 'a':
			r = inet_pton(AF_INET, optarg, &local.sin_addr) == 1
				    ? 0 : -EINVAL;
			break;
		case 't':
			r = parse_u64(optarg, 1, SECONDS_MAX, &seconds);
			break;
		case 'i':
			r = parse_u64(optarg, 10, 60000, &v);
			idle_ms = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (r < 0) {
			fprintf(stderr, "udpsink: bad option value '%s'\n", optarg);
			return 2;
		}
	}
	if (optind != argc || !port || !seconds) {
		usage(stderr);
		return 2;
	}
	int r = check_netns();
	if (r < 0) {
		fprintf(stderr, "udpsink: refusing to run: %s\n",
			r == -EPERM ? "not inside a lab namespace "
				      "(ip netns exec tdm-...)"
				    : strerror(-r));
		return 2;
	}

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("udpsink: socket");
		return 1;
	}
	int rcv = RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	/* Wake up every 100 ms to check the bounds. */
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	local.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		perror("udpsink: bind");
		close(fd);
		return 1;
	}
	for (unsigned i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = SLOT;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("ready\n");
	fflush(stdout);

	uint64_t packets = 0, bytes = 0, first_batch = 0;
	double t0 = now_s(), end = t0 + (double)seconds;
	double first = 0, last = 0, now = t0;
	while (!stop_flag && now < end) {
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		now = now_s();
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				perror("udpsink: recvmmsg");
				break;
			}
			n = 0;
		}
		if (n > 0) {
			if (!packets) {
				first = now;
				first_batch = (uint64_t)n;
			}
			last = now;
			packets += (uint64_t)n;
			for (int i = 0; i < n; i++)
				bytes += msgs[i].msg_len;
		} else if (packets && (now - last) * 1000.0 >= (double)idle_ms) {
			break;
		}
	}
	close(fd);
	double span = last - first;
	printf("udpsink packets=%llu bytes=%llu first_to_last=%.3f pps=%.0f "
	       "cpu=%.3f\n",
	       (unsigned long long)packets, (unsigned long long)bytes, span,
	       span > 0 ? (double)(packets - first_batch) / span : 0.0, cpu_s());
	return 0;
}
