/*
 * pkt_io_pcap.c - offline packet source: a pcap or pcapng capture read with
 * libpcap. One queue; capture timestamps are the clock; verdicts are only
 * counted by the caller. Must never: write the capture, or hand out a
 * descriptor beyond the captured bytes (caplen, not the wire length).
 */
#include "pkt_io.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>

#include "pkt.h"

struct pkt_io {
	pcap_t *pc;
	int dlt;
};

static int pcapio_open(const char *arg, const struct tandem_config *cfg,
		     struct pkt_io **ret, char *err, size_t errlen)
{
	(void)cfg;
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc = pcap_open_offline(arg, ebuf);
	if (!pc) {
		snprintf(err, errlen, "%s: %s", arg, ebuf);
		return -EINVAL;
	}
	struct pkt_io *io = calloc(1, sizeof(*io));
	if (!io) {
		pcap_close(pc);
		return -ENOMEM;
	}
	io->pc = pc;
	io->dlt = pcap_datalink(pc);
	*ret = io;
	return 0;
}

/* One packet per call is enough here: the capture is in memory-mapped
 * stdio buffers and the caller loops. */
static int pcapio_rx_burst(struct pkt_io *io, unsigned queue,
			 struct pkt_desc *d, unsigned max, bool nowait)
{
	(void)queue;
	(void)nowait;
	if (max == 0)
		return 0;
	struct pcap_pkthdr *h;
	const u_char *data;
	int r = pcap_next_ex(io->pc, &h, &data);
	if (r == PCAP_ERROR_BREAK)
		return -ENODATA;
	if (r != 1)
		return r == 0 ? 0 : -EIO;
	d->ts_ms = (uint64_t)h->ts.tv_sec * 1000u +
		   (uint64_t)h->ts.tv_usec / 1000u;
	d->wire_len = h->caplen;
	d->id = 0;
	d->iif = d->oif = 0;
	d->csum = PKT_CSUM_UNKNOWN;
	uint32_t off = 0;
	enum drop_reason why = pkt_l2_strip(io->dlt, data, h->caplen, &off);
	if (why != DROP_NONE) {
		d->l2_drop = (uint8_t)why;
		d->l3 = NULL;
		d->len = 0;
		return 1;
	}
	d->l2_drop = DROP_NONE;
	d->l3 = data + off;
	d->len = h->caplen - off;
	return 1;
}

static int pcapio_verdict_burst(struct pkt_io *io, unsigned queue,
			      const struct pkt_desc *d, const enum verdict *v,
			      unsigned n, struct shard_stats *st)
{
	(void)st;
	(void)io;
	(void)queue;
	(void)d;
	(void)v;
	(void)n;
	return 0;
}

static void pcapio_close(struct pkt_io *io)
{
	if (!io)
		return;
	pcap_close(io->pc);
	free(io);
}

const struct pkt_io_ops pkt_io_pcap_ops = {
	.name = "pcap",
	.open = pcapio_open,
	.rx_burst = pcapio_rx_burst,
	.verdict_burst = pcapio_verdict_burst,
	.close = pcapio_close,
};
