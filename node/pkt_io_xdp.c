/*
 * pkt_io_xdp.c - the AF_XDP data path: frames come straight from the
 * zone interfaces' drivers (an XDP program, xdp_prog.c, redirects forwarded
 * IP traffic to AF_XDP sockets) and the node forwards what it accepts
 * itself: route lookup, next-hop MAC, TTL/hop limit, out through the
 * egress interface's socket. The kernel's IP stack never sees them.
 *
 * Per worker queue q: one UMEM (XQ_FRAMES frames), one socket per zone
 * interface bound to that interface's receive queue q, all sharing the
 * UMEM, each with its own fill and completion rings. A frame received on
 * one interface is transmitted from the same UMEM frame on another (no
 * copy in user space); free frames sit on the queue's own stack.
 *
 * Routes, neighbours and local addresses come from the kernel (fib.c),
 * rebuilt by the control thread on netlink notifications and every
 * second, published as an immutable snapshot; a worker takes the newest at
 * each burst and the control thread frees an old one once every worker
 * has moved past it. A next hop not yet resolved: the accepted frame waits
 * (at most XQ_HOLD frames, 1 s) while the control thread asks the kernel
 * for a managed neighbour entry, as the kernel's own ARP queue would.
 *
 * Sharding: with one queue every frame reaches the one worker. Several
 * would need both directions of a flow on the same receive queue index,
 * which veth and most drivers do not promise: the config allows one.
 *
 * Must never: allocate, lock or log per frame; make more than one
 * transmit kick per egress socket per burst (plus retries when the
 * kernel's per-call transmit budget is used up); block a worker for longer
 * than the receive timeout.
 */
#include "pkt_io.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include "clock.h"
#include "csum.h"
#include "fib.h"
#include "xdp_prog.h"

#define XQ_FRAMES 8192
#define XQ_FRAME 4096          /* power of two: base = addr & ~(XQ_FRAME-1) */
#define XQ_RING 2048           /* rx, tx, fill, completion entries */
#define XQ_FILL 1024           /* frames kept in each fill ring */
#define XQ_BURST 64
#define XQ_HOLD 64             /* accepted frames waiting for a neighbour */
#define XQ_HOLD_MS 1000
#define XQ_WANT 64             /* neighbour requests to the control thread */
#define XQ_MAX_PORTS FIB_MAX_LINKS
#define XQ_POLL_MS 50
#define XQ_FULL_REBUILD_MS 1000
#define XQ_RETIRED 16

struct xport {
	struct xsk_socket *xsk;
	struct xsk_ring_cons rx, comp;
	struct xsk_ring_prod tx, fill;
	int fd;
	int ifindex;
	uint8_t iface_id;
	unsigned tx_new;           /* reserved this burst, not yet submitted */
	bool kick;                 /* transmit submitted, kernel not yet told */
};

struct xslot {                 /* one received frame of the current burst */
	uint64_t addr;
	uint32_t len;
	int8_t out;                /* egress port, -1 = none (l2_drop set) */
	uint8_t nh[16];            /* next hop */
};

struct xhold {
	uint64_t addr;
	uint32_t len;
	int8_t out;
	uint8_t nh[16];
	uint64_t until_ms;
};

struct xwant {
	int ifindex;
	uint8_t addr[16];
};

struct xqueue {
	void *area;
	struct xsk_umem *umem;
	struct xport port[XQ_MAX_PORTS];
	unsigned nports;
	struct pollfd pfd[XQ_MAX_PORTS];
	uint64_t free[XQ_FRAMES];
	unsigned nfree;
	unsigned rr;
	struct xslot slot[XQ_BURST];
	struct xhold hold[XQ_HOLD];
	unsigned nhold;
	const struct fib *fib;     /* snapshot used by this burst */
	_Atomic uint64_t seen_gen; /* oldest snapshot this worker may use */
	struct xwant want[XQ_WANT];
	_Atomic unsigned want_head; /* worker writes */
	_Atomic unsigned want_tail; /* control thread writes */
	struct xwant last_want;
};

struct xif {
	char name[IFNAMSIZ];
	int ifindex;
	uint8_t id;
	int xsk_map, prog, link;
};

struct pkt_io {
	bool generic;               /* xdp_mode (the config is not kept) */
	unsigned nq;
	struct xqueue *q;
	struct xif ifs[XQ_MAX_PORTS];
	unsigned nifs;
	int ifindexes[XQ_MAX_PORTS];
	int local_map;
	struct mnl_socket *events;  /* kernel route/neighbour/address changes */
	_Atomic(struct fib *) fib;
	struct fib *retired[XQ_RETIRED];
	unsigned nretired;
	uint64_t gen;
	uint64_t last_build_ms;
	bool dirty;
	unsigned build_errors;
};

/* ---- snapshots (control thread) --------------------------------------- */

static int publish_fib(struct pkt_io *io, char *err, size_t errlen)
{
	struct fib *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = fib_build(f, io->ifindexes, io->nifs, err, errlen);
	if (r < 0) {
		free(f);
		return r;
	}
	/* Local addresses first: a new virtual address must stay with the
	 * kernel before anything else changes. */
	r = xdp_local_sync(io->local_map, (const uint8_t (*)[16])f->local,
			   f->nlocal);
	if (r < 0) {
		snprintf(err, errlen, "local-address map: %s", strerror(-r));
		free(f);
		return r;
	}
	struct fib *cur = atomic_load_explicit(&io->fib, memory_order_relaxed);
	if (cur && io->nretired == XQ_RETIRED) {
		/* every slot waits for a worker that has not moved on: the
		 * current snapshot stays (nothing a worker reads is freed) */
		free(f);
		snprintf(err, errlen, "old routing snapshots not released");
		return -EBUSY;
	}
	f->gen = ++io->gen;
	atomic_store_explicit(&io->fib, f, memory_order_release);
	if (cur)
		io->retired[io->nretired++] = cur;
	return 0;
}

static void reclaim(struct pkt_io *io)
{
	uint64_t min = UINT64_MAX;
	for (unsigned i = 0; i < io->nq; i++) {
		uint64_t s = atomic_load_explicit(&io->q[i].seen_gen,
						  memory_order_acquire);
		if (s < min)
			min = s;
	}
	unsigned k = 0;
	for (unsigned i = 0; i < io->nretired; i++) {
		if (io->retired[i]->gen < min)
			free(io->retired[i]);
		else
			io->retired[k++] = io->retired[i];
	}
	io->nretired = k;
}

static void drain_events(struct pkt_io *io)
{
	if (!io->events)
		return;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(io->events), buf, sizeof(buf),
				 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) { /* lost some: rebuild */
			io->dirty = true;
			continue;
		}
		if (n <= 0)
			return;
		io->dirty = true;
	}
}

static void xdpio_tick(struct pkt_io *io)
{
	/* neighbours the workers are waiting for */
	for (unsigned i = 0; i < io->nq; i++) {
		struct xqueue *q = &io->q[i];
		unsigned t = atomic_load_explicit(&q->want_tail, memory_order_relaxed);
		unsigned h = atomic_load_explicit(&q->want_head, memory_order_acquire);
		for (; t != h; t++) {
			const struct xwant *w = &q->want[t % XQ_WANT];
			fib_neigh_resolve(w->ifindex, w->addr);
		}
		atomic_store_explicit(&q->want_tail, t, memory_order_release);
	}
	drain_events(io);
	uint64_t now = clock_now_ms();
	reclaim(io);
	if (io->dirty || now - io->last_build_ms >= XQ_FULL_REBUILD_MS) {
		char err[256];
		int r = publish_fib(io, err, sizeof(err));
		if (r < 0) {
			/* the previous snapshot stays; said once per streak */
			if (io->build_errors++ == 0)
				fprintf(stderr, "tandem-node: af_xdp: %s (keeping "
					"the previous routes)\n", err);
		} else {
			if (io->build_errors)
				fprintf(stderr, "tandem-node: af_xdp: routes "
					"read again\n");
			io->build_errors = 0;
			io->dirty = false;
		}
		io->last_build_ms = now;
	}
}

/* ---- frames ------------------------------------------------------------ */

static inline void frame_free(struct xqueue *q, uint64_t addr)
{
	q->free[q->nfree++] = addr & ~(uint64_t)(XQ_FRAME - 1);
}

static void reclaim_tx(struct xqueue *q)
{
	for (unsigned p = 0; p < q->nports; p++) {
		uint32_t idx;
		unsigned n = xsk_ring_cons__peek(&q->port[p].comp, XQ_RING, &idx);
		for (unsigned i = 0; i < n; i++)
			frame_free(q, *xsk_ring_cons__comp_addr(&q->port[p].comp,
								idx + i));
		if (n)
			xsk_ring_cons__release(&q->port[p].comp, n);
	}
}

static void refill(struct xqueue *q)
{
	for (unsigned p = 0; p < q->nports && q->nfree; p++) {
		struct xsk_ring_prod *fr = &q->port[p].fill;
		/* top up to XQ_FILL frames in the ring */
		unsigned have = XQ_RING - xsk_prod_nb_free(fr, XQ_RING);
		if (have >= XQ_FILL)
			continue;
		unsigned want = XQ_FILL - have;
		if (want > q->nfree)
			want = q->nfree;
		uint32_t idx;
		unsigned n = xsk_ring_prod__reserve(fr, want, &idx);
		for (unsigned i = 0; i < n; i++)
			*xsk_ring_prod__fill_addr(fr, idx + i) = q->free[--q->nfree];
		if (n)
			xsk_ring_prod__submit(fr, n);
	}
}

static void want_neigh(struct xqueue *q, int ifindex, const uint8_t nh[16])
{
	/* the same address again and again (a burst of one flow): once */
	if (q->last_want.ifindex == ifindex && memcmp(q->last_want.addr, nh, 16) == 0)
		return;
	unsigned h = atomic_load_explicit(&q->want_head, memory_order_relaxed);
	unsigned t = atomic_load_explicit(&q->want_tail, memory_order_acquire);
	if (h - t >= XQ_WANT)
		return; /* the control thread is behind; the next miss asks */
	q->want[h % XQ_WANT].ifindex = ifindex;
	memcpy(q->want[h % XQ_WANT].addr, nh, 16);
	atomic_store_explicit(&q->want_head, h + 1, memory_order_release);
	q->last_want.ifindex = ifindex;
	memcpy(q->last_want.addr, nh, 16);
}

/* Route one frame: egress port and next hop into s, or a drop reason. */
static uint8_t route_frame(struct xqueue *q, const uint8_t *l3, uint32_t len,
			   struct xslot *s)
{
	s->out = -1;
	uint8_t dst[16];
	if (len >= 20 && (l3[0] >> 4) == 4)
		fib_addr16(dst, AF_INET, l3 + 16);
	else if (len >= 40 && (l3[0] >> 4) == 6)
		memcpy(dst, l3 + 24, 16);
	else
		return DROP_NONE; /* pkt_parse says what is wrong with it */
	const struct fib_route *r = fib_route(q->fib, dst);
	if (!r)
		return DROP_NO_ROUTE;
	for (unsigned p = 0; p < q->nports; p++)
		if (q->port[p].ifindex == r->oif) {
			s->out = (int8_t)p;
			memcpy(s->nh, r->has_gw ? r->gw : dst, 16);
			return DROP_NONE;
		}
	return DROP_NO_ROUTE; /* out of an interface that is not a zone's */
}

static int xdpio_rx_burst(struct pkt_io *io, unsigned queue, struct pkt_desc *d,
			  unsigned max, bool nowait)
{
	struct xqueue *q = &io->q[queue];
	/* the newest routes; older snapshots are no longer ours */
	q->fib = atomic_load_explicit(&io->fib, memory_order_acquire);
	atomic_store_explicit(&q->seen_gen, q->fib->gen, memory_order_release);
	reclaim_tx(q);
	refill(q);
	if (max > XQ_BURST)
		max = XQ_BURST;
	unsigned out = 0;
	for (int round = 0; round < 2 && out == 0; round++) {
		if (round == 1) {
			if (nowait)
				break;
			/* idle: sleep until a frame arrives (this also
			 * wakes the kernel to refill from the fill rings);
			 * briefly when frames wait for a neighbour or a
			 * transmit kick is owed */
			bool owed = q->nhold > 0;
			for (unsigned p = 0; p < q->nports; p++)
				owed |= q->port[p].kick;
			if (poll(q->pfd, q->nports, owed ? 1 : XQ_POLL_MS) <= 0)
				return 0;
		}
		for (unsigned k = 0; k < q->nports && out < max; k++) {
			unsigned p = (q->rr + k) % q->nports;
			struct xport *xp = &q->port[p];
			uint32_t idx;
			unsigned n = xsk_ring_cons__peek(&xp->rx, max - out, &idx);
			for (unsigned i = 0; i < n; i++, out++) {
				const struct xdp_desc *xd =
					xsk_ring_cons__rx_desc(&xp->rx, idx + i);
				uint8_t *fr = xsk_umem__get_data(q->area, xd->addr);
				struct pkt_desc *pd = &d[out];
				struct xslot *s = &q->slot[out];
				s->addr = xd->addr;
				s->len = xd->len;
				s->out = -1;
				pd->id = out;
				pd->wire_len = xd->len;
				pd->ts_ms = 0;
				/* local senders' partial sums were completed
				 * above; the rest nobody told us about */
				pd->csum = PKT_CSUM_UNKNOWN;
				pd->iif = xp->iface_id;
				pd->oif = 0;
				pd->requeue_to = 0;
				if (xd->len < 14) {
					pd->l2_drop = DROP_L2_SHORT;
					pd->l3 = NULL;
					pd->len = 0;
					continue;
				}
				uint16_t et = (uint16_t)(fr[12] << 8 | fr[13]);
				if (et != 0x0800 && et != 0x86dd) {
					pd->l2_drop = DROP_L2_TYPE;
					pd->l3 = NULL;
					pd->len = 0;
					continue;
				}
				pd->l3 = fr + 14;
				pd->len = xd->len - 14;
				pd->l2_drop = route_frame(q, pd->l3, pd->len, s);
				if (s->out >= 0)
					pd->oif = q->port[s->out].iface_id;
			}
			if (n)
				xsk_ring_cons__release(&xp->rx, n);
		}
	}
	q->rr++;
	return (int)out;
}

/* A TCP or UDP checksum left partial by a sender on this host (checksum
 * offload: the field holds only the pseudo-header sum, and the kernel's
 * skb said so; AF_XDP hands over the bytes without that note). Completed
 * here, else the receiver drops the segment. A checksum that merely
 * equals the pseudo-header sum by chance is recomputed to the same value,
 * so the test is safe. Fragments and IPv6 extension headers: left. */
static void complete_partial_csum(uint8_t *ip, uint32_t len)
{
	const uint8_t *src, *dst;
	uint8_t *l4, proto;
	uint32_t l4len;
	int fam;
	if ((ip[0] >> 4) == 4) {
		uint32_t ihl = (ip[0] & 15) * 4u, tot = (uint32_t)(ip[2] << 8 | ip[3]);
		if ((ip[6] & 0x3f) || ip[7] || ihl < 20 || tot > len || tot < ihl)
			return;
		proto = ip[9];
		l4 = ip + ihl;
		l4len = tot - ihl;
		src = ip + 12;
		dst = ip + 16;
		fam = 4;
	} else {
		uint32_t pl = (uint32_t)(ip[4] << 8 | ip[5]);
		if (len < 40 || pl > len - 40)
			return;
		proto = ip[6];
		l4 = ip + 40;
		l4len = pl;
		src = ip + 8;
		dst = ip + 24;
		fam = 6;
	}
	uint32_t off = proto == 6 ? 16 : proto == 17 ? 6 : 0;
	if (!off || l4len < (proto == 6 ? 20u : 8u))
		return;
	uint16_t field = (uint16_t)(l4[off] << 8 | l4[off + 1]);
	if (proto == 17 && fam == 4 && field == 0)
		return; /* IPv4 UDP without a checksum */
	size_t alen = fam == 4 ? 4 : 16;
	uint32_t ph = csum_add(csum_add(0, src, alen), dst, alen) + proto + l4len;
	uint16_t seed = (uint16_t)(0xffffu - csum_fold(ph)); /* unfolded ~ */
	if (field != seed)
		return;
	l4[off] = l4[off + 1] = 0;
	uint16_t c = l4_csum(fam, src, dst, proto, l4, l4len);
	if (proto == 17 && c == 0)
		c = 0xffff;
	put16(l4 + off, c);
}

/* Next hop's MAC in, TTL/hop limit down; false = must not go out. */
static bool rewrite(struct xqueue *q, uint8_t *fr, uint32_t len, int8_t out,
		    const uint8_t *mac)
{
	const struct fib_link *l = fib_link(q->fib, q->port[out].ifindex);
	if (!l || len < 14 + 20)
		return false;
	uint8_t *ip = fr + 14;
	if ((ip[0] >> 4) == 4) {
		if (ip[8] <= 1)
			return false;
		/* RFC 1624 incremental update of the header checksum */
		uint16_t old = (uint16_t)(ip[8] << 8 | ip[9]);
		ip[8]--;
		uint16_t new = (uint16_t)(ip[8] << 8 | ip[9]);
		uint16_t ck = (uint16_t)(ip[10] << 8 | ip[11]);
		uint32_t sum = (uint16_t)~ck + (uint16_t)~old + new;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		ck = (uint16_t)~sum;
		ip[10] = (uint8_t)(ck >> 8);
		ip[11] = (uint8_t)ck;
	} else {
		if (len < 14 + 40 || ip[7] <= 1)
			return false;
		ip[7]--;
	}
	complete_partial_csum(ip, len - 14);
	memcpy(fr, mac, 6);
	memcpy(fr + 6, l->mac, 6);
	return true;
}

/* Onto the egress socket's transmit ring; false = ring full. */
static bool tx_put(struct xqueue *q, int8_t out, uint64_t addr, uint32_t len)
{
	struct xport *xp = &q->port[out];
	uint32_t idx;
	if (xsk_ring_prod__reserve(&xp->tx, 1, &idx) != 1)
		return false;
	struct xdp_desc *xd = xsk_ring_prod__tx_desc(&xp->tx, idx);
	xd->addr = addr;
	xd->len = len;
	xp->tx_new++;
	return true;
}

/* Out with a known next-hop MAC: rewrite, onto the transmit ring; a frame
 * that cannot go is counted and freed. */
static void forward(struct xqueue *q, uint64_t addr, uint32_t len, int8_t out,
		    const uint8_t *mac, struct shard_stats *st)
{
	enum drop_reason why = DROP_NONE;
	if (!rewrite(q, xsk_umem__get_data(q->area, addr), len, out, mac))
		why = DROP_NO_ROUTE;
	else if (!tx_put(q, out, addr, len))
		why = DROP_TX_FULL;
	if (why != DROP_NONE) {
		st->drop[why]++;
		frame_free(q, addr);
	}
}

static void send_one(struct xqueue *q, uint64_t addr, uint32_t len, int8_t out,
		     const uint8_t *nh, uint64_t now, struct shard_stats *st)
{
	const uint8_t *mac = fib_neigh(q->fib, q->port[out].ifindex, nh);
	if (mac) {
		forward(q, addr, len, out, mac, st);
		return;
	}
	want_neigh(q, q->port[out].ifindex, nh);
	if (q->nhold == XQ_HOLD) {
		st->drop[DROP_NO_NEIGH]++;
		frame_free(q, addr);
		return;
	}
	struct xhold *h = &q->hold[q->nhold++];
	h->addr = addr;
	h->len = len;
	h->out = out;
	memcpy(h->nh, nh, 16);
	h->until_ms = now + XQ_HOLD_MS;
}

/* Frames waiting for a neighbour: out when it is known, dropped after
 * XQ_HOLD_MS. */
static void release_held(struct xqueue *q, uint64_t now, struct shard_stats *st)
{
	unsigned k = 0;
	for (unsigned i = 0; i < q->nhold; i++) {
		struct xhold *h = &q->hold[i];
		const uint8_t *mac = fib_neigh(q->fib, q->port[h->out].ifindex, h->nh);
		if (mac) {
			forward(q, h->addr, h->len, h->out, mac, st);
		} else if (now < h->until_ms) {
			q->hold[k++] = *h;
		} else {
			st->drop[DROP_NO_NEIGH]++;
			frame_free(q, h->addr);
		}
	}
	q->nhold = k;
}

static void kick(struct xqueue *q)
{
	for (unsigned p = 0; p < q->nports; p++) {
		struct xport *xp = &q->port[p];
		if (xp->tx_new) {
			xsk_ring_prod__submit(&xp->tx, xp->tx_new);
			xp->tx_new = 0;
			xp->kick = true;
		}
		if (!xp->kick)
			continue;
		/* copy mode sends a bounded batch per call: call again while
		 * the kernel says there is more (bounded here too) */
		xp->kick = false;
		for (int tries = 0; tries < 8; tries++) {
			if (!xsk_ring_prod__needs_wakeup(&xp->tx))
				break;
			if (sendto(xp->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
				break;
			if (errno == EAGAIN || errno == EBUSY || errno == ENOBUFS) {
				xp->kick = true; /* try again next burst */
				if (errno != EAGAIN)
					break;
				continue;
			}
			break; /* ENETDOWN, ENXIO: link gone; frames return */
		}
	}
}

static int xdpio_verdict_burst(struct pkt_io *io, unsigned queue,
			       const struct pkt_desc *d, const enum verdict *v,
			       unsigned n, struct shard_stats *st)
{
	struct xqueue *q = &io->q[queue];
	uint64_t now = q->nhold || n ? clock_now_ms() : 0;
	if (q->nhold)
		release_held(q, now, st);
	for (unsigned i = 0; i < n; i++) {
		struct xslot *s = &q->slot[d[i].id];
		if (v[i] != V_ACCEPT || s->out < 0 || d[i].l2_drop != DROP_NONE) {
			frame_free(q, s->addr);
			continue;
		}
		send_one(q, s->addr, s->len, s->out, s->nh, now, st);
	}
	kick(q);
	return 0;
}

/* ---- set-up ------------------------------------------------------------- */

static int queue_open(struct pkt_io *io, struct xqueue *q, unsigned num,
		      char *err, size_t errlen)
{
	size_t size = (size_t)XQ_FRAMES * XQ_FRAME;
	q->area = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (q->area == MAP_FAILED) {
		q->area = NULL;
		snprintf(err, errlen, "queue %u: %zu MiB of frames: %s", num,
			 size >> 20, strerror(errno));
		return -ENOMEM;
	}
	struct xsk_umem_config uc = {
		.fill_size = XQ_RING, .comp_size = XQ_RING,
		.frame_size = XQ_FRAME, .frame_headroom = 0,
	};
	int r = xsk_umem__create(&q->umem, q->area, size, &q->port[0].fill,
				 &q->port[0].comp, &uc);
	if (r < 0) {
		snprintf(err, errlen, "queue %u: umem: %s", num, strerror(-r));
		return r;
	}
	for (unsigned i = 0; i < XQ_FRAMES; i++)
		q->free[i] = (uint64_t)i * XQ_FRAME;
	q->nfree = XQ_FRAMES;
	struct xsk_socket_config sc = {
		.rx_size = XQ_RING, .tx_size = XQ_RING,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
	};
	for (unsigned p = 0; p < io->nifs; p++) {
		struct xport *xp = &q->port[p];
		r = xsk_socket__create_shared(&xp->xsk, io->ifs[p].name, num,
					      q->umem, &xp->rx, &xp->tx,
					      &xp->fill, &xp->comp, &sc);
		if (r < 0) {
			snprintf(err, errlen, "queue %u: AF_XDP socket on %s: %s",
				 num, io->ifs[p].name, strerror(-r));
			return r;
		}
		q->nports = p + 1;
		xp->fd = xsk_socket__fd(xp->xsk);
		xp->ifindex = io->ifs[p].ifindex;
		xp->iface_id = io->ifs[p].id;
		q->pfd[p].fd = xp->fd;
		q->pfd[p].events = POLLIN;
		int key = (int)num;
		if (bpf_map_update_elem(io->ifs[p].xsk_map, &key, &xp->fd, 0) < 0) {
			r = -errno;
			snprintf(err, errlen, "queue %u: socket map of %s: %s",
				 num, io->ifs[p].name, strerror(-r));
			return r;
		}
	}
	refill(q);
	return 0;
}

static void xdpio_close(struct pkt_io *io)
{
	if (!io)
		return;
	/* programs first: from here the kernel has the interfaces again
	 * (and the node's nftables chain decides about forwarding) */
	for (unsigned i = 0; i < io->nifs; i++) {
		if (io->ifs[i].link > 0)
			close(io->ifs[i].link);
		if (io->ifs[i].prog > 0)
			close(io->ifs[i].prog);
	}
	for (unsigned i = 0; io->q && i < io->nq; i++) {
		struct xqueue *q = &io->q[i];
		for (unsigned p = 0; p < q->nports; p++)
			xsk_socket__delete(q->port[p].xsk);
		if (q->umem)
			xsk_umem__delete(q->umem);
		if (q->area)
			munmap(q->area, (size_t)XQ_FRAMES * XQ_FRAME);
	}
	for (unsigned i = 0; i < io->nifs; i++)
		if (io->ifs[i].xsk_map > 0)
			close(io->ifs[i].xsk_map);
	if (io->local_map > 0)
		close(io->local_map);
	if (io->events)
		mnl_socket_close(io->events);
	free(atomic_load(&io->fib));
	for (unsigned i = 0; i < io->nretired; i++)
		free(io->retired[i]);
	free(io->q);
	free(io);
}

static int attach(struct pkt_io *io, struct xif *xi, char *err, size_t errlen)
{
	static char log[16384];
	xi->xsk_map = xdp_xsk_map_create(io->nq);
	if (xi->xsk_map < 0) {
		snprintf(err, errlen, "%s: socket map: %s%s", xi->name,
			 strerror(-xi->xsk_map),
			 xi->xsk_map == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
		return xi->xsk_map;
	}
	const struct fib_link *l = fib_link(atomic_load(&io->fib), xi->ifindex);
	if (!l) {
		snprintf(err, errlen, "%s: no Ethernet address", xi->name);
		return -ENODEV;
	}
	xi->prog = xdp_prog_load(l->mac, io->local_map, xi->xsk_map, XDP_PASS,
				 log, sizeof(log));
	if (xi->prog < 0) {
		snprintf(err, errlen, "%s: XDP program refused: %s: %.200s",
			 xi->name, strerror(-xi->prog), log);
		return xi->prog;
	}
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	lo.flags = io->generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	xi->link = bpf_link_create(xi->prog, xi->ifindex, BPF_XDP, &lo);
	if (xi->link < 0) {
		int r = xi->link;
		snprintf(err, errlen, "%s: attaching the XDP program (%s mode): %s%s",
			 xi->name, io->generic ? "generic" : "native",
			 strerror(-r),
			 r == -EBUSY ? " (another XDP program is attached)"
			 : !io->generic ? " (try datapath.xdp_mode = \"generic\")"
			 : "");
		return r;
	}
	return 0;
}

static int xdpio_open(const char *arg, const struct tandem_config *cfg,
		      struct pkt_io **ret, char *err, size_t errlen)
{
	(void)arg;
	struct pkt_io *io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->generic = cfg->xdp_generic;
	io->local_map = -1;
	int r = 0;
	if (cfg->n_ifaces == 0 || cfg->n_ifaces > XQ_MAX_PORTS) {
		snprintf(err, errlen, "af_xdp needs 1..%d zone interfaces, the "
			 "config names %u", XQ_MAX_PORTS, cfg->n_ifaces);
		r = -EINVAL;
		goto fail;
	}
	io->nq = cfg->queues;
	io->q = calloc(io->nq, sizeof(*io->q));
	if (!io->q) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < cfg->n_ifaces; i++) {
		struct xif *xi = &io->ifs[i];
		snprintf(xi->name, sizeof(xi->name), "%s", cfg->ifaces[i].name);
		xi->id = cfg->ifaces[i].id;
		xi->ifindex = (int)if_nametoindex(xi->name);
		xi->xsk_map = xi->prog = xi->link = -1;
		if (!xi->ifindex) {
			snprintf(err, errlen, "interface %s: not found", xi->name);
			r = -ENODEV;
			goto fail;
		}
		io->ifindexes[i] = xi->ifindex;
		io->nifs = i + 1;
	}
	/* Changes to follow: links, addresses, routes, neighbours. */
	io->events = mnl_socket_open(NETLINK_ROUTE);
	if (!io->events || mnl_socket_bind(io->events,
			RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR |
			RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
			MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		snprintf(err, errlen, "netlink notifications: %s", strerror(-r));
		goto fail;
	}
	io->local_map = xdp_local_map_create();
	if (io->local_map < 0) {
		r = io->local_map;
		snprintf(err, errlen, "local-address map: %s%s", strerror(-r),
			 r == -EPERM ? " (needs CAP_BPF)" : "");
		goto fail;
	}
	if ((r = publish_fib(io, err, errlen)) < 0)
		goto fail;
	io->last_build_ms = clock_now_ms();
	for (unsigned i = 0; i < io->nifs; i++)
		if ((r = attach(io, &io->ifs[i], err, errlen)) < 0)
			goto fail;
	for (unsigned i = 0; i < io->nq; i++)
		if ((r = queue_open(io, &io->q[i], i, err, errlen)) < 0)
			goto fail;
	*ret = io;
	return 0;
fail:
	xdpio_close(io);
	return r;
}

const struct pkt_io_ops pkt_io_xdp_ops = {
	.name = "af_xdp",
	.open = xdpio_open,
	.rx_burst = xdpio_rx_burst,
	.verdict_burst = xdpio_verdict_burst,
	.close = xdpio_close,
	.tick = xdpio_tick,
	.tick_ms = 20,
};
