/*
 * pkt_io.h - where packets come from and where verdicts go.
 *
 * Alternatives behind one ops struct, chosen once at start-up:
 * pkt_io_pcap.c (offline capture, capture time is the clock),
 * pkt_io_nfq.c (NFQUEUE) and pkt_io_xdp.c (AF_XDP). A burst of descriptors
 * points into the source's own buffers, valid until the next rx_burst on
 * the same queue.
 */
#ifndef TANDEM_PKT_IO_H
#define TANDEM_PKT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "drop.h"
#include "stats.h"

struct pkt_desc {
	const uint8_t *l3;   /* L3 header (NULL when l2_drop is set) */
	uint32_t len;        /* L3 bytes */
	uint32_t wire_len;   /* bytes as received, L2 included */
	uint64_t ts_ms;      /* receive time (capture time for pcap) */
	uint32_t id;         /* source's packet id (NFQUEUE packet id) */
	uint8_t iif, oif;    /* config interface ids, 0 = unknown */
	uint8_t l2_drop;     /* enum drop_reason when L2 was unusable */
	uint8_t requeue_to;  /* V_REQUEUE: queue index (0..) to hand it to */
	uint8_t csum;        /* enum pkt_csum: what the kernel says of the L4 sum */
	uint8_t mangled;     /* the worker rewrote l3 (MSS): send it back */
};

/* What the source knows of a packet's TCP/UDP checksum. */
enum pkt_csum {
	PKT_CSUM_UNKNOWN = 0, /* not said (AF_XDP, pcap): never verified here */
	PKT_CSUM_OK,          /* verified by the kernel or the device */
	PKT_CSUM_PARTIAL,     /* a local sender's, to be completed by the device */
	PKT_CSUM_UNVERIFIED,  /* nobody checked it */
};

struct pkt_io;

struct pkt_io_ops {
	const char *name;
	/* arg: the source's argument (capture file, ...). */
	int (*open)(const char *arg, const struct tandem_config *cfg,
		    struct pkt_io **ret, char *err, size_t errlen);
	/* Up to max descriptors; 0 = nothing now; -ENODATA = end of input.
	 * nowait: return at once when nothing is there (a job is pending). */
	int (*rx_burst)(struct pkt_io *io, unsigned queue, struct pkt_desc *d,
			unsigned max, bool nowait);
	/* Called after every rx_burst, n may be 0. A source that forwards
	 * itself (AF_XDP) counts what it then drops in st (the worker's own
	 * counters). */
	int (*verdict_burst)(struct pkt_io *io, unsigned queue,
			     const struct pkt_desc *d, const enum verdict *v,
			     unsigned n, struct shard_stats *st);
	void (*close)(struct pkt_io *io);
	/* Control thread, every tick_ms (NULL: none): follow the kernel
	 * (interfaces, routes, neighbours). */
	void (*tick)(struct pkt_io *io);
	unsigned tick_ms;
};

extern const struct pkt_io_ops pkt_io_pcap_ops;
extern const struct pkt_io_ops pkt_io_nfq_ops;
extern const struct pkt_io_ops pkt_io_xdp_ops;

/* NFQUEUE only: re-resolve the config's interface names to kernel ifindexes
 * (interfaces may appear after start). Control thread, not the data path. */
void pkt_io_nfq_refresh_ifaces(struct pkt_io *io);

#endif
