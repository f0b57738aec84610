/*
 * bench_sess_table.c - speed and size of one session table shard, against
 * DPDK's rte_hash (cuckoo, signatures in 64-byte buckets, keys apart) as the
 * named baseline, on the same keys, on one pinned core.
 *
 * Keys are IPv4 5-tuples from a fixed seed (clients in 10/8 with ephemeral
 * ports, a few hundred servers on common ports, TCP and UDP), canonical as
 * the node builds them. Hashes are computed before timing for both tables
 * (lookup_with_hash on both sides); the hash functions get their own row.
 * Every cell is the median of 3 runs. Built with -DHAVE_RTE_HASH when meson
 * finds libdpdk; without it the baseline columns say n/a.
 *
 * Must never be part of the product or of the unit tests: it allocates
 * gigabytes, pins itself to CPU 0 and (with DPDK) starts an EAL.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sess_table.h"

#ifdef HAVE_RTE_HASH
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_version.h>
#endif

#define RUNS 3
#define BURST 32
#define LOOKUPS_PER_CELL (2u << 20) /* repeat passes over small tables */
#define SEED UINT64_C(0x7a6e64656d2d7462)

enum op {
	OP_HASH,
	OP_INSERT,
	OP_HIT,
	OP_HIT_BURST,
	OP_HIT_UPD,
	OP_BURST_UPD,
	OP_MISS,
	OP_REMOVE,
	OP_EXPIRE,
	OP_MAX
};

static const char *const op_name[OP_MAX] = {
	[OP_HASH] = "hash (40-byte key)",
	[OP_INSERT] = "insert",
	[OP_HIT] = "lookup hit",
	[OP_HIT_BURST] = "lookup hit burst32",
	[OP_HIT_UPD] = "hit + update",
	[OP_BURST_UPD] = "burst32 + update",
	[OP_MISS] = "lookup miss",
	[OP_REMOVE] = "remove",
	[OP_EXPIRE] = "expire (all due)",
};

struct keyset {
	uint32_t n;
	struct sess_key *key;       /* insertion order */
	struct sess_key *rkey;      /* the same keys, random order */
	struct sess_key *miss;      /* n keys never inserted */
	const struct sess_key **rptr;
	uint32_t *th, *trh, *tmh;   /* tandem hashes: key, rkey, miss */
	uint32_t *rh, *rrh, *rmh;   /* rte_hash hashes */
	uint32_t *order;            /* rkey[i] = key[order[i]] */
	uint64_t *expire;           /* per key, spread over 60 s */
};

static volatile uint64_t sink; /* keeps results alive */

static uint64_t rng = SEED;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "bench: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* Key i is unique by construction: u is a bijection of i on 32 bits and
 * (client, source port) encodes u; the rest is drawn at random. */
static void make_key(uint32_t i, struct sess_key *k)
{
	static const uint16_t dports[] = {443, 443, 443, 80, 80, 53, 22, 8080,
					  3306, 5432, 993, 123};
	uint32_t u = i * 0x9e3779b1u;
	uint8_t cli[16] = {0}, srv[16] = {0};
	uint16_t sport, dport;
	uint32_t server = (uint32_t)(rnd() % 400);
	uint8_t proto = rnd() % 100 < 85 ? 6 : 17;

	u ^= u >> 15;
	u *= 0x2c1b3c6du;
	u ^= u >> 12;
	cli[0] = 10;
	cli[1] = (uint8_t)(u >> 16);
	cli[2] = (uint8_t)(u >> 8);
	cli[3] = (uint8_t)u;
	sport = (uint16_t)(32768 + (u >> 24) * 101);
	srv[0] = 198;
	srv[1] = 18;
	srv[2] = (uint8_t)(server >> 8);
	srv[3] = (uint8_t)server;
	dport = proto == 17 && rnd() % 2 ? 53 : dports[rnd() % 12];
	sess_key_make(k, 4, proto, cli, srv, sport, dport, 1, 2, NULL);
}

#ifdef HAVE_RTE_HASH
static uint32_t rte_crc(const struct sess_key *k)
{
	return rte_hash_crc(k, sizeof(*k), 0);
}
#endif

static void keyset_init(struct keyset *ks, uint32_t n)
{
	ks->n = n;
	ks->key = xmalloc(n * sizeof(*ks->key));
	ks->rkey = xmalloc(n * sizeof(*ks->rkey));
	ks->miss = xmalloc(n * sizeof(*ks->miss));
	ks->rptr = xmalloc(n * sizeof(*ks->rptr));
	ks->th = xmalloc(n * sizeof(uint32_t));
	ks->trh = xmalloc(n * sizeof(uint32_t));
	ks->tmh = xmalloc(n * sizeof(uint32_t));
	ks->rh = xmalloc(n * sizeof(uint32_t));
	ks->rrh = xmalloc(n * sizeof(uint32_t));
	ks->rmh = xmalloc(n * sizeof(uint32_t));
	ks->order = xmalloc(n * sizeof(uint32_t));
	ks->expire = xmalloc(n * sizeof(uint64_t));
	rng = SEED ^ n;
	for (uint32_t i = 0; i < n; i++) {
		make_key(i, &ks->key[i]);
		make_key(n + i, &ks->miss[i]); /* other i: other keys */
		ks->order[i] = i;
		ks->expire[i] = rnd() % 60000;
	}
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd() % (i + 1)), x = ks->order[i];
		ks->order[i] = ks->order[j];
		ks->order[j] = x;
	}
	for (uint32_t i = 0; i < n; i++) {
		ks->rkey[i] = ks->key[ks->order[i]];
		ks->rptr[i] = &ks->rkey[i];
		ks->th[i] = sess_key_hash(&ks->key[i]);
		ks->trh[i] = sess_key_hash(&ks->rkey[i]);
		ks->tmh[i] = sess_key_hash(&ks->miss[i]);
#ifdef HAVE_RTE_HASH
		ks->rh[i] = rte_crc(&ks->key[i]);
		ks->rrh[i] = rte_crc(&ks->rkey[i]);
		ks->rmh[i] = rte_crc(&ks->miss[i]);
#endif
	}
}

static void keyset_free(struct keyset *ks)
{
	free(ks->key);
	free(ks->rkey);
	free(ks->miss);
	free(ks->rptr);
	free(ks->th);
	free(ks->trh);
	free(ks->tmh);
	free(ks->rh);
	free(ks->rrh);
	free(ks->rmh);
	free(ks->order);
	free(ks->expire);
}

/* Share of the resident memory of the mapping holding addr that sits in
 * transparent huge pages (AnonHugePages / Rss in /proc/self/smaps); -1 if
 * unknown. Checks that both tables really got the pages they asked for. */
static double thp_share(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	double rss = -1, huge = -1;
	uintptr_t a = (uintptr_t)addr;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, kb;

		/* Only mapping headers read as "lo-hi"; field lines start
		 * with a name and a colon. */
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			if (in)
				break;
			in = a >= lo && a < hi;
		} else if (in) {
			if (sscanf(line, "Rss: %lu kB", &kb) == 1)
				rss = (double)kb;
			else if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
				huge = (double)kb;
		}
	}
	fclose(f);
	return rss > 0 && huge >= 0 ? huge / rss : -1;
}

static double thp_tandem = -1, thp_rte = -1; /* last run, largest N */

static uint32_t passes_for(uint32_t n)
{
	return n >= LOOKUPS_PER_CELL ? 1 : (LOOKUPS_PER_CELL + n - 1) / n;
}

/* ---- tandem ---- */

static void noop_cb(void *ctx, struct sess *s)
{
	(void)s;
	(*(uint64_t *)ctx)++;
}

/* One run over all ops; ns[op] = ns per operation; *ret_bytes = memory. */
static void tandem_run(const struct keyset *ks, double *ns, double *ret_bytes)
{
	const uint32_t n = ks->n, passes = passes_for(n);
	const uint64_t t0 = 1000000;
	struct sess_table *t;
	struct sess **sp = xmalloc(n * sizeof(*sp));
	struct sess *out[BURST];
	uint64_t acc = 0;
	double a;

	/* hash */
	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++)
			acc += sess_key_hash(&ks->rkey[i]);
	ns[OP_HASH] = (now_ns() - a) / ((double)n * passes);

	if (sess_table_new(n, 1, 0, t0, &t) != 0) {
		fprintf(stderr, "bench: sess_table_new(%u) failed\n", n);
		exit(1);
	}
	*ret_bytes = (double)sess_table_memory(t) / n;

	a = now_ns();
	for (uint32_t i = 0; i < n; i++)
		if (sess_table_insert(t, &ks->key[i], ks->th[i], 0, t0,
				      t0 + ks->expire[i], &sp[i]) != 0)
			abort();
	ns[OP_INSERT] = (now_ns() - a) / n;
	thp_tandem = thp_share(sess_table_at(t, n / 2));

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++)
			acc += (uintptr_t)sess_table_lookup(t, &ks->rkey[i],
							    ks->trh[i]);
	ns[OP_HIT] = (now_ns() - a) / ((double)n * passes);

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i += BURST) {
			unsigned m = n - i < BURST ? n - i : BURST;
			sess_table_lookup_burst(t, &ks->rptr[i], &ks->trh[i], m, out);
			acc += (uintptr_t)out[0] + (uintptr_t)out[m - 1];
		}
	ns[OP_HIT_BURST] = (now_ns() - a) / ((double)n * passes);

	/* What a packet of a known flow costs: find it, count it, refresh
	 * its timer (a later expiry is one store). */
	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++) {
			struct sess *s = sess_table_lookup(t, &ks->rkey[i], ks->trh[i]);
			s->pkts[0]++;
			s->bytes[0] += 1500;
			sess_table_set_expire(t, s, t0 + 1800000 + p);
		}
	ns[OP_HIT_UPD] = (now_ns() - a) / ((double)n * passes);

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i += BURST) {
			unsigned m = n - i < BURST ? n - i : BURST;
			sess_table_lookup_burst(t, &ks->rptr[i], &ks->trh[i], m, out);
			for (unsigned j = 0; j < m; j++) {
				out[j]->pkts[0]++;
				out[j]->bytes[0] += 1500;
				sess_table_set_expire(t, out[j], t0 + 1800000 + p);
			}
		}
	ns[OP_BURST_UPD] = (now_ns() - a) / ((double)n * passes);
	/* Back to the spread expiries the expiry row measures. */
	for (uint32_t i = 0; i < n; i++)
		sp[i]->expire = (uint32_t)(t0 + ks->expire[i]);

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++)
			acc += (uintptr_t)sess_table_lookup(t, &ks->miss[i],
							    ks->tmh[i]);
	ns[OP_MISS] = (now_ns() - a) / ((double)n * passes);

	a = now_ns();
	for (uint32_t i = 0; i < n; i++)
		sess_table_remove(t, sp[ks->order[i]]);
	ns[OP_REMOVE] = (now_ns() - a) / n;

	for (uint32_t i = 0; i < n; i++)
		if (sess_table_insert(t, &ks->key[i], ks->th[i], 0, t0,
				      t0 + ks->expire[i], &sp[i]) != 0)
			abort();
	uint64_t expired = 0;
	bool done = false;
	a = now_ns();
	sess_table_expire(t, t0 + 61000, ~0u, noop_cb, &expired, &done);
	ns[OP_EXPIRE] = (now_ns() - a) / n;
	if (!done || expired != n || sess_table_count(t) != 0) {
		fprintf(stderr, "bench: expiry left %u sessions\n",
			sess_table_count(t));
		exit(1);
	}
	sink += acc;
	sess_table_free(t);
	free(sp);
}

/* ---- rte_hash ---- */

#ifdef HAVE_RTE_HASH
static bool dpdk_ok;

/* rte_hash gets the memory DPDK is designed for, huge pages, without
 * touching the system's hugetlbfs: an external malloc heap over anonymous
 * memory with transparent huge pages, as the tandem table asks for its
 * own. Both then compare on equal TLB terms (coverage is printed). */
#define EXT_HEAP "bench_thp"
#define EXT_HEAP_BYTES ((size_t)640 << 20) /* rte_hash at 4M: ~270 MB */
#define PAGE_2M ((size_t)2 << 20)

static int ext_socket = -1;
static void *ext_va;

static void ext_heap_init(void)
{
	size_t len = EXT_HEAP_BYTES + PAGE_2M;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	p = (char *)(((uintptr_t)p + PAGE_2M - 1) & ~(uintptr_t)(PAGE_2M - 1));
	(void)madvise(p, EXT_HEAP_BYTES, MADV_HUGEPAGE);
	memset(p, 0, EXT_HEAP_BYTES);
	if (rte_malloc_heap_create(EXT_HEAP) != 0 ||
	    rte_malloc_heap_memory_add(EXT_HEAP, p, EXT_HEAP_BYTES, NULL,
				       (unsigned)(EXT_HEAP_BYTES / PAGE_2M),
				       PAGE_2M) != 0) {
		fprintf(stderr, "bench: external heap: %s\n",
			rte_strerror(rte_errno));
		return;
	}
	ext_socket = rte_malloc_heap_get_socket(EXT_HEAP);
	ext_va = p;
}

static void dpdk_init(void)
{
	char *argv[] = {"bench", "--no-huge", "--no-pci", "--no-shconf",
			"--no-telemetry", "-l", "0", "--log-level=1",
			"-m", "256", NULL};

	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv) < 0) {
		fprintf(stderr, "bench: rte_eal_init failed: %s\n",
			rte_strerror(rte_errno));
		return;
	}
	ext_heap_init();
	dpdk_ok = true;
}

static size_t dpdk_heap_bytes(void)
{
	struct rte_malloc_socket_stats st;
	int sock = ext_socket >= 0 ? ext_socket : (int)rte_socket_id();

	if (rte_malloc_get_socket_stats(sock, &st) != 0)
		return 0;
	return st.heap_allocsz_bytes;
}

/* struct sess without its key: what rte_hash leaves to the caller. */
struct rec {
	uint64_t id;
	uint64_t bytes[2];
	uint32_t pkts[2];
	uint32_t expire, tw_next, tw_prev, created;
	uint8_t rest[32];
};
_Static_assert(sizeof(struct rec) == 80, "rec is struct sess minus key");

static void rte_run(const struct keyset *ks, double *ns, double *ret_bytes,
		    uint32_t *ret_add_fail)
{
	static unsigned seq;
	const uint32_t n = ks->n, passes = passes_for(n);
	char name[32];
	struct rte_hash_parameters prm = {
		.name = name,
		.entries = n,
		.key_len = sizeof(struct sess_key),
		.hash_func = rte_hash_crc,
		.hash_func_init_val = 0,
		.socket_id = ext_socket >= 0 ? ext_socket : (int)rte_socket_id(),
	};
	int32_t pos[BURST];
	uint64_t acc = 0;
	uint32_t fail = 0;
	double a;

	snprintf(name, sizeof(name), "bench%u", seq++);
	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++)
			acc += rte_crc(&ks->rkey[i]);
	ns[OP_HASH] = (now_ns() - a) / ((double)n * passes);

	size_t before = dpdk_heap_bytes();
	struct rte_hash *h = rte_hash_create(&prm);
	if (!h) {
		fprintf(stderr, "bench: rte_hash_create(%u): %s\n", n,
			rte_strerror(rte_errno));
		exit(1);
	}
	*ret_bytes = (double)(dpdk_heap_bytes() - before) / n;

	a = now_ns();
	for (uint32_t i = 0; i < n; i++)
		if (rte_hash_add_key_with_hash(h, &ks->key[i], ks->rh[i]) < 0)
			fail++;
	ns[OP_INSERT] = (now_ns() - a) / n;
	*ret_add_fail = fail;
	if (ext_va)
		thp_rte = thp_share(ext_va);

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++)
			acc += (uint64_t)rte_hash_lookup_with_hash(h, &ks->rkey[i],
								   ks->rrh[i]);
	ns[OP_HIT] = (now_ns() - a) / ((double)n * passes);

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i += BURST) {
			unsigned m = n - i < BURST ? n - i : BURST;
			rte_hash_lookup_with_hash_bulk(h,
				(const void **)(void *)&ks->rptr[i], &ks->rrh[i],
				m, pos);
			acc += (uint64_t)pos[0] + (uint64_t)pos[m - 1];
		}
	ns[OP_HIT_BURST] = (now_ns() - a) / ((double)n * passes);

	/* A session table on rte_hash keeps the non-key state (80 bytes of
	 * struct sess) in an array indexed by key position. */
	struct rec *rec = rte_zmalloc_socket("bench_rec",
					     ((size_t)n + 1) * sizeof(*rec), 64,
					     prm.socket_id);
	if (!rec) {
		fprintf(stderr, "bench: no memory for rte_hash records\n");
		exit(1);
	}
	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++) {
			int32_t x = rte_hash_lookup_with_hash(h, &ks->rkey[i],
							      ks->rrh[i]);
			if (x < 0)
				continue; /* one of the refused adds */
			rec[x].pkts[0]++;
			rec[x].bytes[0] += 1500;
			rec[x].expire = (uint32_t)(1800000 + p);
		}
	ns[OP_HIT_UPD] = (now_ns() - a) / ((double)n * passes);

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i += BURST) {
			unsigned m = n - i < BURST ? n - i : BURST;
			rte_hash_lookup_with_hash_bulk(h,
				(const void **)(void *)&ks->rptr[i], &ks->rrh[i],
				m, pos);
			for (unsigned j = 0; j < m; j++)
				if (pos[j] >= 0)
					__builtin_prefetch(&rec[pos[j]], 1);
			for (unsigned j = 0; j < m; j++) {
				if (pos[j] < 0)
					continue;
				rec[pos[j]].pkts[0]++;
				rec[pos[j]].bytes[0] += 1500;
				rec[pos[j]].expire = (uint32_t)(1800000 + p);
			}
		}
	ns[OP_BURST_UPD] = (now_ns() - a) / ((double)n * passes);
	rte_free(rec);

	a = now_ns();
	for (uint32_t p = 0; p < passes; p++)
		for (uint32_t i = 0; i < n; i++)
			acc += (uint64_t)rte_hash_lookup_with_hash(h, &ks->miss[i],
								   ks->rmh[i]);
	ns[OP_MISS] = (now_ns() - a) / ((double)n * passes);

	a = now_ns();
	for (uint32_t i = 0; i < n; i++)
		acc += (uint64_t)rte_hash_del_key_with_hash(h, &ks->rkey[i],
							    ks->rrh[i]);
	ns[OP_REMOVE] = (now_ns() - a) / n;
	ns[OP_EXPIRE] = -1; /* rte_hash has no timers */
	sink += acc;
	rte_hash_free(h);
}
#endif

/* ---- report ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median3(double v[RUNS])
{
	double c[RUNS];

	memcpy(c, v, sizeof(c));
	qsort(c, RUNS, sizeof(double), cmp_double);
	return c[RUNS / 2];
}

static void pin_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		perror("bench: sched_setaffinity(CPU 0)");
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown cpu");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c) {
			snprintf(buf, len, "%s", c + 2);
			buf[strcspn(buf, "\n")] = 0;
			break;
		}
	}
	fclose(f);
}

struct cell {
	double t, r; /* ns/op medians; r < 0: n/a */
};

/* "65536", "64K", "1M": a table size; 0 when not one. */
static uint32_t parse_size(const char *a)
{
	char *end;
	unsigned long v = strtoul(a, &end, 10);

	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	return *end || v < 64 || v > (64ul << 20) ? 0 : (uint32_t)v;
}

#define MAX_SIZES 8

int main(int argc, char **argv)
{
	/* Default sizes: a cache-resident shard, 1M (the target size) and 4M;
	 * arguments replace them (e.g. "bench_sess_table 1M"). */
	uint32_t sizes[MAX_SIZES] = {65536, 1u << 20, 4u << 20};
	unsigned nsizes = 3;
	struct cell cells[MAX_SIZES][OP_MAX];
	double tbytes[MAX_SIZES], rbytes[MAX_SIZES];
	uint32_t rfail[MAX_SIZES] = {0};
	char cpu[128], thp_buf[16];
	double start = now_ns();
	bool have_rte = false;

	if (argc > 1) {
		nsizes = 0;
		for (int i = 1; i < argc && nsizes < MAX_SIZES; i++) {
			sizes[nsizes] = parse_size(argv[i]);
			if (!sizes[nsizes]) {
				fprintf(stderr, "usage: %s [SIZE[K|M]]... "
					"(64 .. 64M sessions)\n", argv[0]);
				return 2;
			}
			nsizes++;
		}
	}
#ifdef HAVE_RTE_HASH
	dpdk_init();
	have_rte = dpdk_ok;
#endif
	pin_cpu0();
	cpu_model(cpu, sizeof(cpu));

	printf("tandem sess_table benchmark\n");
#ifdef HAVE_RTE_HASH
	printf("baseline: %s rte_hash (cuckoo, 8-slot buckets, entries = N, "
	       "key_len 40, hash rte_hash_crc)%s\n", rte_version(),
	       have_rte ? "" : " - EAL init failed: n/a");
	if (have_rte)
		printf("baseline memory: %s\n", ext_socket >= 0 ?
		       "external malloc heap on anonymous memory with "
		       "madvise(MADV_HUGEPAGE) (EAL itself: --no-huge)" :
		       "EAL --no-huge memory (external heap failed)");
#else
	printf("baseline: rte_hash n/a (built without libdpdk)\n");
#endif
	printf("tandem: 10-slot 64-byte buckets, 8 sessions per bucket at full "
	       "pool, hash sess_key_hash, pool/index madvise(MADV_HUGEPAGE)\n");
	printf("cpu: %s, pinned to CPU 0; median of %d runs per cell\n", cpu, RUNS);
	printf("keys: IPv4 TCP/UDP 5-tuples, fixed seed, table filled to N = "
	       "its capacity; lookups in random order with precomputed hashes; "
	       "burst = %d\n", BURST);
	printf("remove: tandem by session pointer (re-hashes the key); rte_hash "
	       "del_key_with_hash by key; both in random order\n");
	printf("expire: all N due at once, spread over 60 s of wheel slots, one "
	       "sess_table_expire call, per session (no rte_hash equivalent)\n\n");
	fflush(stdout);

	for (unsigned z = 0; z < nsizes; z++) {
		struct keyset ks;
		double tv[OP_MAX][RUNS], rv[OP_MAX][RUNS], tb = 0, rb = 0;

		keyset_init(&ks, sizes[z]);
		for (int run = 0; run < RUNS; run++) {
			double t[OP_MAX], r[OP_MAX];
			tandem_run(&ks, t, &tb);
			for (int o = 0; o < OP_MAX; o++) {
				tv[o][run] = t[o];
				rv[o][run] = -1;
			}
#ifdef HAVE_RTE_HASH
			if (have_rte) {
				rte_run(&ks, r, &rb, &rfail[z]);
				for (int o = 0; o < OP_MAX; o++)
					rv[o][run] = r[o];
			}
#else
			(void)r;
#endif
		}
		for (int o = 0; o < OP_MAX; o++) {
			cells[z][o].t = median3(tv[o]);
			cells[z][o].r = rv[o][0] < 0 ? -1 : median3(rv[o]);
		}
		tbytes[z] = tb;
		rbytes[z] = have_rte ? rb : -1;
		keyset_free(&ks);
	}

	printf("%-20s | %-7s | %12s | %13s | %14s | %s\n", "ops", "N",
	       "tandem ns/op", "tandem Mops/s", "rte_hash ns/op", "ratio");
	printf("---------------------+---------+--------------+---------------+"
	       "----------------+------\n");
	for (int o = 0; o < OP_MAX; o++)
		for (unsigned z = 0; z < nsizes; z++) {
			struct cell *c = &cells[z][o];
			char rt[32], ra[32];
			if (c->r < 0) {
				snprintf(rt, sizeof(rt), "n/a");
				snprintf(ra, sizeof(ra), "n/a");
			} else {
				snprintf(rt, sizeof(rt), "%.1f", c->r);
				snprintf(ra, sizeof(ra), "%.2fx", c->r / c->t);
			}
			printf("%-20s | %-7u | %12.1f | %13.1f | %14s | %s\n",
			       op_name[o], sizes[z], c->t, 1e3 / c->t, rt, ra);
		}
	printf("\nratio = tandem ops/s / rte_hash ops/s (> 1: tandem faster)\n\n");

	printf("%-20s | %-7s | %12s | %s\n", "bytes/session", "N", "tandem",
	       "rte_hash");
	for (unsigned z = 0; z < nsizes; z++) {
		char rb[96];
		if (rbytes[z] < 0)
			snprintf(rb, sizeof(rb), "n/a");
		else
			snprintf(rb, sizeof(rb),
				 "%.1f (DPDK heap stats: allocated bytes delta "
				 "over rte_hash_create / N)", rbytes[z]);
		printf("%-20s | %-7u | %12.2f | %s\n", "pool+index+wheel",
		       sizes[z], tbytes[z], rb);
		if (rfail[z])
			printf("  note: rte_hash refused %u of %u adds (full "
			       "cuckoo at entries = N)\n", rfail[z], sizes[z]);
	}
	if (thp_rte < 0)
		snprintf(thp_buf, sizeof(thp_buf), "n/a");
	else
		snprintf(thp_buf, sizeof(thp_buf), "%.0f%%", thp_rte * 100);
	printf("huge-page share of resident memory (largest N, from smaps): "
	       "tandem pool %.0f%%, rte_hash heap %s\n", thp_tandem * 100,
	       thp_buf);
	printf("rte_hash bytes are its index and key store only (key + 8-byte "
	       "data per entry); the 80 bytes of non-key session state live\n"
	       "  elsewhere (the +update rows use an array by key position), "
	       "so a session table on it costs about %.0f bytes/session\n",
	       (rbytes[nsizes - 1] < 0 ? 64.0 : rbytes[nsizes - 1]) + 80);
	printf("tandem bytes = sess_table_memory / N: 120 pool + 8 index per "
	       "session + a fixed ~16 KiB per shard (wheel heads, table)\n\n");

	/* Targets at 1M, when it was run. */
	unsigned m = nsizes;
	for (unsigned z = 0; z < nsizes; z++)
		if (sizes[z] == 1u << 20)
			m = z;
	if (m == nsizes) {
		printf("targets: measured at N = 1M only (not run)\n");
		goto out;
	}
	struct cell *hit = &cells[m][OP_HIT], *burst = &cells[m][OP_HIT_BURST],
		    *miss = &cells[m][OP_MISS];
	double fixed_kib = (tbytes[m] - 128.0) * sizes[m] / 1024;
	printf("targets (N = 1M):\n");
	if (hit->r >= 0) {
		printf("  lookup hit         >= 1.0x rte_hash : %.2fx  %s\n",
		       hit->r / hit->t, hit->r / hit->t >= 1.0 ? "PASS" : "MISS");
		printf("  lookup hit burst32 >= 1.0x rte_hash : %.2fx  %s\n",
		       burst->r / burst->t,
		       burst->r / burst->t >= 1.0 ? "PASS" : "MISS");
		printf("  lookup miss        >= 1.0x rte_hash : %.2fx  %s\n",
		       miss->r / miss->t, miss->r / miss->t >= 1.0 ? "PASS" : "MISS");
	} else {
		printf("  lookups >= 1.0x rte_hash            : n/a (no baseline)\n");
	}
	printf("  batched lookups    >= 20 M/s        : %.1f M/s  %s\n",
	       1e3 / burst->t, 1e3 / burst->t >= 20.0 ? "PASS" : "MISS");
	printf("  bytes/session      <= 128           : %.2f all-in = 128 per "
	       "session + %.1f KiB per shard  %s\n", tbytes[m], fixed_kib,
	       tbytes[m] - fixed_kib * 1024 / sizes[m] <= 128.0 ? "PASS" : "MISS");
out:
	printf("\ntotal bench time: %.1f s\n", (now_ns() - start) / 1e9);
	(void)sink;
#ifdef HAVE_RTE_HASH
	if (have_rte)
		rte_eal_cleanup();
#endif
	return 0;
}
