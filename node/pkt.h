/*
 * pkt.h - a packet parsed once.
 *
 * pkt_parse() reads an L3 packet (IPv4 or IPv6, as NFQUEUE hands it over)
 * and fills a struct pkt on the caller's stack: addresses, L4 protocol after
 * the IPv6 extension chain, ports (or ICMP id), TCP flags/seq/ack/window and
 * window-scale option, and for ICMP/ICMPv6 errors the flow of the quoted
 * packet. Every later stage reads this struct, never the bytes again.
 *
 * Must never: read outside [data, data+len), allocate, or log. A malformed
 * packet returns its drop reason; the caller counts it.
 *
 * Fragments: the first fragment (offset 0) is parsed like a whole packet and
 * tracked by its L4 header; a non-first fragment has no L4 header and is
 * refused with DROP_FRAG_NONFIRST (the kernel path reassembles before the
 * queue, see docs/architecture.md).
 */
#ifndef TANDEM_PKT_H
#define TANDEM_PKT_H

#include <stdbool.h>
#include <stdint.h>

#include "drop.h"

#define PKT_MAX_EXT 8 /* IPv6 extension headers followed before giving up */

enum { PKT_TCP_FIN = 0x01, PKT_TCP_SYN = 0x02, PKT_TCP_RST = 0x04,
       PKT_TCP_PSH = 0x08, PKT_TCP_ACK = 0x10, PKT_TCP_URG = 0x20 };

#define PKT_PROTO_ICMP   1
#define PKT_PROTO_TCP    6
#define PKT_PROTO_UDP    17
#define PKT_PROTO_ICMPV6 58

enum pkt_icmp_kind {
	PKT_ICMP_NONE = 0,  /* not ICMP */
	PKT_ICMP_REQUEST,   /* echo request (v4 8, v6 128): may open a session */
	PKT_ICMP_REPLY,     /* echo reply (v4 0, v6 129) */
	PKT_ICMP_ERROR,     /* unreachable, time exceeded, param problem, too big */
	PKT_ICMP_OTHER,     /* anything else: tracked by type as a generic flow */
};

/* The quoted packet inside an ICMP error, as sent by the original sender
 * (src = the host that sent the quoted packet). */
struct pkt_inner {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;  /* ICMP echo: id in both */
	uint8_t proto;
	uint8_t icmp_kind;      /* for a quoted ICMP packet */
	uint32_t seq;           /* quoted TCP sequence number */
};

struct pkt {
	const uint8_t *data;  /* start of the L3 header */
	uint32_t len;         /* bytes of L3 packet (IP total length) */
	uint8_t family;       /* 4 or 6 */
	uint8_t proto;        /* L4 protocol after extension headers */
	uint8_t src[16], dst[16]; /* IPv4 in the first 4 bytes, rest zero */
	uint16_t sport, dport;    /* TCP/UDP ports; ICMP echo: id in both; else 0 */
	uint16_t l4_off;      /* offset of the L4 header from data */
	uint16_t payload_len; /* L4 payload bytes (TCP/UDP data) */
	bool first_frag;      /* offset 0 with more fragments */

	/* TCP */
	uint8_t tcp_flags;
	uint8_t tcp_wscale;   /* window scale option, 0xff when absent */
	uint16_t tcp_win;     /* raw window field */
	uint32_t tcp_seq, tcp_ack;
	uint32_t tcp_sack;    /* highest right edge of the SACK blocks */
	bool tcp_has_sack;    /* a SACK option with at least one block */
	uint8_t tcp_mss_opt;  /* offset of the MSS option in the TCP header, 0 = none */

	/* ICMP / ICMPv6 */
	uint8_t icmp_type, icmp_code;
	uint8_t icmp_kind;    /* enum pkt_icmp_kind */
	struct pkt_inner inner; /* valid when icmp_kind == PKT_ICMP_ERROR */
};

/* Parse an L3 packet. Returns DROP_NONE and fills *p, or the drop reason. */
enum drop_reason pkt_parse(struct pkt *p, const uint8_t *data, uint32_t len);

/* Strip an L2 header (pcap DLT: EN10MB incl. one 802.1Q tag, RAW,
 * LINUX_SLL, LINUX_SLL2, NULL/LOOP) and return the L3 offset in *l3_off. */
enum drop_reason pkt_l2_strip(int dlt, const uint8_t *frame, uint32_t caplen,
			      uint32_t *l3_off);

#endif
