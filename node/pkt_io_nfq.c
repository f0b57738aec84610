/*
 * pkt_io_nfq.c - the kernel data path: NFQUEUE queues first..first+n-1,
 * one netlink socket per queue, each driven by its own worker thread.
 *
 * Receive is batched (recvmmsg, up to a burst of datagrams per system
 * call); verdicts are batched (every non-accept verdict individually, then
 * one NFQNL_MSG_VERDICT_BATCH accepting everything up to the highest id of
 * the burst, all in one sendto). Queues run with NFQA_CFG_F_GSO (no
 * segmentation before the queue), a large forced receive buffer and
 * NETLINK_NO_ENOBUFS; fail-open from the config sets NFQA_CFG_F_FAIL_OPEN
 * (a full queue accepts instead of dropping).
 *
 * Must never: allocate per packet (buffers are preallocated per queue),
 * block a worker for longer than the receive timeout (so its timer tick
 * runs), or write another queue's state.
 */
#include "pkt_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <net/if.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#define NFQ_BURST 64
/* Largest GSO packet plus headers, rounded up to a cache line: every
 * receive slot then starts as aligned as malloc's block (16), which netlink
 * headers and attributes (4-byte alignment) need - 0xffff + 512 made every
 * odd slot start misaligned. */
#define NFQ_BUF ((0xffff + 512 + 63) & ~63)
#define NFQ_RCVBUF (16 << 20)

struct nfq_queue {
	struct mnl_socket *nl;
	unsigned num;
	unsigned portid;
	uint8_t *buf;             /* NFQ_BURST x NFQ_BUF */
	struct mmsghdr msgs[NFQ_BURST];
	struct iovec iov[NFQ_BURST];
	char vbuf[NFQ_BURST * 64 + 256];
};

struct pkt_io {
	/* Copied at open: a config push frees old configs, and workers read
	 * these (interface changes take effect at the next start). */
	unsigned queue_first;
	unsigned n_ifaces;
	struct cfg_iface ifaces[CFG_MAX_IFACES];
	unsigned nq;
	struct nfq_queue *q;
	_Atomic int ifindex[CFG_MAX_IFACES + 1]; /* by config iface id */
};

void pkt_io_nfq_refresh_ifaces(struct pkt_io *io)
{
	for (unsigned i = 0; i < io->n_ifaces; i++) {
		unsigned idx = if_nametoindex(io->ifaces[i].name);
		atomic_store_explicit(&io->ifindex[io->ifaces[i].id],
				      (int)idx, memory_order_relaxed);
	}
}

/* Config interface id of a kernel ifindex; 0 = not a zone interface.
 * A handful of interfaces: a linear scan beats any index. */
static uint8_t iface_of(struct pkt_io *io, uint32_t ifindex)
{
	if (!ifindex)
		return 0;
	for (unsigned i = 0; i < io->n_ifaces; i++) {
		uint8_t id = io->ifaces[i].id;
		if ((uint32_t)atomic_load_explicit(&io->ifindex[id],
						   memory_order_relaxed) == ifindex)
			return id;
	}
	return 0;
}

/* Send one config message and wait for the kernel's ack. */
static int nfqio_config(struct nfq_queue *q, struct nlmsghdr *nlh)
{
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	char ack[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n = mnl_socket_recvfrom(q->nl, ack, sizeof(ack));
	if (n < 0)
		return -errno;
	int r = mnl_cb_run(ack, (size_t)n, nlh->nlmsg_seq, q->portid, NULL,
			   NULL);
	return r < 0 ? -errno : 0;
}

/* Netlink port bound to queue `num` in this namespace, from
 * /proc/net/netfilter/nfnetlink_queue (one line per bound queue: number,
 * port, ...). 0 = found, -ENOENT = not bound, else -errno. Start-up only:
 * it names the holder when our bind is refused. */
static int queue_holder(unsigned num, unsigned *ret_portid)
{
	FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "re");
	if (!f)
		return -errno;
	unsigned qn, port;
	int r = -ENOENT;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%u %u", &qn, &port) == 2 && qn == num) {
			*ret_portid = port;
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static int queue_open(struct nfq_queue *q, unsigned num,
		      const struct tandem_config *cfg, char *err,
		      size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int r, one = 1, rcv = NFQ_RCVBUF;

	q->num = num;
	q->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!q->nl || mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		snprintf(err, errlen, "queue %u: netlink socket: %s", num,
			 strerror(-r));
		return r;
	}
	q->portid = mnl_socket_get_portid(q->nl);
	int fd = mnl_socket_get_fd(q->nl);
	/* A large buffer rides out bursts; without NO_ENOBUFS an overrun
	 * would make the next recv fail instead of just losing packets
	 * (which the kernel counts, and fail-open decides about). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	mnl_socket_setsockopt(q->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	/* Wake up at least every 50 ms so the worker's timer tick runs. */
	struct timeval tv = {.tv_sec = 0, .tv_usec = 50000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
	nlh->nlmsg_seq = 1;
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	r = nfqio_config(q, nlh);
	if (r < 0) {
		/* The kernel answers EPERM both for a queue held by another
		 * socket and for a missing CAP_NET_ADMIN: say which. */
		unsigned holder = 0;
		if (r == -EPERM && queue_holder(num, &holder) == 0) {
			snprintf(err, errlen,
				 "queue %u: bind: queue already bound by another "
				 "program (netlink port %u; is another tandem-node "
				 "running in this namespace?)", num, holder);
			return -EBUSY;
		}
		snprintf(err, errlen, "queue %u: bind: %s%s", num, strerror(-r),
			 r == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return r;
	}
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
	nlh->nlmsg_seq = 2;
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, cfg->queue_len);
	uint32_t flags = NFQA_CFG_F_GSO | (cfg->fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK,
			 htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	r = nfqio_config(q, nlh);
	if (r < 0) {
		snprintf(err, errlen, "queue %u: parameters: %s", num,
			 strerror(-r));
		return r;
	}

	q->buf = malloc((size_t)NFQ_BURST * NFQ_BUF);
	if (!q->buf) {
		snprintf(err, errlen, "queue %u: out of memory", num);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < NFQ_BURST; i++) {
		q->iov[i].iov_base = q->buf + (size_t)i * NFQ_BUF;
		q->iov[i].iov_len = NFQ_BUF;
		memset(&q->msgs[i], 0, sizeof(q->msgs[i]));
		q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
		q->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	return 0;
}

static void nfqio_close(struct pkt_io *io)
{
	if (!io)
		return;
	for (unsigned i = 0; i < io->nq; i++) {
		struct nfq_queue *q = &io->q[i];
		if (q->nl) {
			char buf[MNL_SOCKET_BUFFER_SIZE];
			struct nlmsghdr *nlh =
				nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
			nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
			mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len);
			mnl_socket_close(q->nl);
		}
		free(q->buf);
	}
	free(io->q);
	free(io);
}

static int nfqio_open(const char *arg, const struct tandem_config *cfg,
		    struct pkt_io **ret, char *err, size_t errlen)
{
	(void)arg;
	struct pkt_io *io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->queue_first = cfg->queue_first;
	io->n_ifaces = cfg->n_ifaces;
	memcpy(io->ifaces, cfg->ifaces, sizeof(io->ifaces));
	io->nq = cfg->queues;
	io->q = calloc(io->nq, sizeof(*io->q));
	if (!io->q) {
		free(io);
		return -ENOMEM;
	}
	pkt_io_nfq_refresh_ifaces(io);
	for (unsigned i = 0; i < io->nq; i++) {
		int r = queue_open(&io->q[i], cfg->queue_first + i, cfg, err,
				   errlen);
		if (r < 0) {
			nfqio_close(io);
			return r;
		}
	}
	*ret = io;
	return 0;
}

/* Fill one descriptor from a NFQNL_MSG_PACKET message. */
static bool packet_desc(struct pkt_io *io, const struct nlmsghdr *nlh,
			struct pkt_desc *d)
{
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR] ||
	    !attr[NFQA_PAYLOAD])
		return false;
	const struct nfqnl_msg_packet_hdr *ph =
		mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	d->id = ntohl(ph->packet_id);
	d->l3 = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	d->len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	d->wire_len = attr[NFQA_CAP_LEN]
			      ? ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]))
			      : d->len;
	d->iif = attr[NFQA_IFINDEX_INDEV]
			 ? iface_of(io, ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV])))
			 : 0;
	d->oif = attr[NFQA_IFINDEX_OUTDEV]
			 ? iface_of(io, ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV])))
			 : 0;
	d->l2_drop = DROP_NONE;
	d->ts_ms = 0;
	/* with NFQA_CFG_F_GSO the kernel says what it knows of the sum;
	 * no NFQA_SKB_INFO means verified (or not needed) */
	uint32_t info = attr[NFQA_SKB_INFO]
				? ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO]))
				: 0;
	d->csum = (info & NFQA_SKB_CSUMNOTREADY) ? PKT_CSUM_PARTIAL
		  : (info & NFQA_SKB_CSUM_NOTVERIFIED) ? PKT_CSUM_UNVERIFIED
		  : PKT_CSUM_OK;
	return true;
}

static int nfqio_rx_burst(struct pkt_io *io, unsigned queue, struct pkt_desc *d,
			  unsigned max, bool nowait)
{
	struct nfq_queue *q = &io->q[queue];
	if (max > NFQ_BURST)
		max = NFQ_BURST;
	int n = recvmmsg(mnl_socket_get_fd(q->nl), q->msgs, max,
			 nowait ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	unsigned out = 0;
	for (int i = 0; i < n && out < max; i++) {
		const struct nlmsghdr *nlh = (const void *)q->iov[i].iov_base;
		int len = (int)q->msgs[i].msg_len;
		for (; mnl_nlmsg_ok(nlh, len) && out < max;
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET)
				continue;
			if (packet_desc(io, nlh, &d[out]))
				out++;
		}
	}
	return (int)out;
}

static int nfqio_verdict_burst(struct pkt_io *io, unsigned queue,
			     const struct pkt_desc *d, const enum verdict *v,
			     unsigned n, struct shard_stats *st)
{
	(void)st;
	struct nfq_queue *q = &io->q[queue];
	if (n == 0)
		return 0;
	char *p = q->vbuf;
	size_t used = 0;
	uint32_t max_accept = 0;
	bool any_accept = false;
	/* Drops (and rejects, whose answer was sent separately) go one by
	 * one, first; then one batch verdict accepts everything up to the
	 * highest accepted id, which after the drops is exactly the rest. */
	for (unsigned i = 0; i < n; i++) {
		if (v[i] == V_ACCEPT && d[i].mangled) {
			/* a rewritten packet (MSS) goes back with its bytes,
			 * on its own; flush first when the buffer is short */
			if (used + NLMSG_ALIGN(d[i].len) + 128 > sizeof(q->vbuf)) {
				while (mnl_socket_sendto(q->nl, q->vbuf, used) < 0)
					if (errno != EINTR)
						return -errno;
				used = 0;
			}
			if (NLMSG_ALIGN(d[i].len) + 128 <= sizeof(q->vbuf)) {
				struct nlmsghdr *nlh = nfq_nlmsg_put(
					p + used, NFQNL_MSG_VERDICT, q->num);
				nfq_nlmsg_verdict_put(nlh, (int)d[i].id, NF_ACCEPT);
				nfq_nlmsg_verdict_put_pkt(nlh, d[i].l3, d[i].len);
				used += NLMSG_ALIGN(nlh->nlmsg_len);
				continue;
			}
			/* too big to send back (cannot happen for the SYNs
			 * the worker rewrites): accepted as it came */
		}
		if (v[i] == V_ACCEPT) {
			if (!any_accept || (int32_t)(d[i].id - max_accept) > 0)
				max_accept = d[i].id;
			any_accept = true;
			continue;
		}
		struct nlmsghdr *nlh = nfq_nlmsg_put(p + used, NFQNL_MSG_VERDICT,
						     q->num);
		/* NF_QUEUE with a queue number hands the packet to that
		 * queue's worker (re-injected there, not re-filtered) */
		unsigned verdict = v[i] == V_REQUEUE
			? NF_QUEUE | (io->queue_first + d[i].requeue_to) << 16
			: NF_DROP;
		nfq_nlmsg_verdict_put(nlh, (int)d[i].id, (int)verdict);
		used += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	if (any_accept) {
		struct nlmsghdr *nlh = nfq_nlmsg_put(p + used,
						     NFQNL_MSG_VERDICT_BATCH,
						     q->num);
		nfq_nlmsg_verdict_put(nlh, (int)max_accept, NF_ACCEPT);
		used += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	/* a wake-up signal (a control job) must not lose verdicts */
	while (mnl_socket_sendto(q->nl, q->vbuf, used) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

const struct pkt_io_ops pkt_io_nfq_ops = {
	.name = "nfqueue",
	.open = nfqio_open,
	.rx_burst = nfqio_rx_burst,
	.verdict_burst = nfqio_verdict_burst,
	.close = nfqio_close,
	.tick = pkt_io_nfq_refresh_ifaces,
	.tick_ms = 2000,
};
