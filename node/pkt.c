/*
 * pkt.c - parse an L3 packet once into a struct pkt, and strip pcap L2
 * headers in front of it.
 *
 * The parser checks every field it relies on and names the first fault
 * it finds with its own drop reason (drop.h), so a counter tells which
 * malformation was seen. Later stages read struct pkt only.
 *
 * Must never: read a byte outside [data, data+len) (every read is behind a
 * check that the bytes lie within a length already proven <= len; lengths
 * are compared as "need > have - off" with off <= have, so nothing wraps),
 * allocate, lock, log, or keep any pointer into the packet other than
 * p->data.
 */
#include <string.h>

#include <pcap/dlt.h>

#include "pkt.h"

/* Protocol numbers of the IPv6 extension headers we follow. */
enum { IP6_HOPOPTS = 0, IP6_ROUTING = 43, IP6_FRAGMENT = 44, IP6_AH = 51,
       IP6_DSTOPTS = 60 };

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8
#define ETH_MAX_TAGS 2 /* 802.1Q, or 802.1ad outer + 802.1Q inner */

#define LINKTYPE_RAW 101 /* the file-format value of raw IP, not a DLT */

#define TCP_WSCALE_MAX 14 /* RFC 7323: larger shifts are treated as 14 */

static inline uint16_t rd16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t rd32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

static inline uint32_t rd32le(const uint8_t *b)
{
	return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[1] << 8 | b[0];
}

/* --- ICMP classification ------------------------------------------------ */

static enum pkt_icmp_kind icmp4_kind(uint8_t type)
{
	switch (type) {
	case 8: case 13: case 15: case 17: /* echo, timestamp, info, mask */
		return PKT_ICMP_REQUEST;
	case 0: case 14: case 16: case 18:
		return PKT_ICMP_REPLY;
	case 3: case 4: case 5: case 11: case 12:
		return PKT_ICMP_ERROR;
	default:
		return PKT_ICMP_OTHER;
	}
}

static enum pkt_icmp_kind icmp6_kind(uint8_t type)
{
	switch (type) {
	case 128:
		return PKT_ICMP_REQUEST;
	case 129:
		return PKT_ICMP_REPLY;
	case 1: case 2: case 3: case 4: /* unreach, too big, time, param */
		return PKT_ICMP_ERROR;
	default:
		return PKT_ICMP_OTHER;
	}
}

/* --- IPv6 extension chain ------------------------------------------------ */

struct ip6_chain {
	uint32_t l4_off;  /* first byte after the last extension header */
	uint8_t proto;    /* the header that ended the chain */
	bool first_frag;  /* a fragment header with offset 0 and M set */
};

static bool ip6_is_ext(uint8_t nh)
{
	return nh == IP6_HOPOPTS || nh == IP6_ROUTING || nh == IP6_FRAGMENT ||
	       nh == IP6_DSTOPTS || nh == IP6_AH;
}

/*
 * Follow the extension headers of the IPv6 header at d, whose bytes end at
 * end (end >= 40). Bounded: at most PKT_MAX_EXT headers, each at most
 * 2 KiB, so l4_off < 40 + 8 * 2048 fits struct pkt's uint16_t.
 * Returns DROP_NONE and fills *ret, or IP6_EXT (truncated), IP6_EXT_CHAIN,
 * FRAG_NONFIRST (the L4 header is in another fragment).
 */
static enum drop_reason ip6_chain(const uint8_t *d, uint32_t end,
				  struct ip6_chain *ret)
{
	uint32_t off = 40, hlen;
	uint8_t nh = d[6];
	bool first = false;
	unsigned n = 0;

	while (ip6_is_ext(nh)) {
		if (n++ == PKT_MAX_EXT)
			return DROP_IP6_EXT_CHAIN;
		/* Every extension header is at least 8 bytes long. */
		if (end - off < 8)
			return DROP_IP6_EXT;
		if (nh == IP6_FRAGMENT) {
			uint16_t fo = rd16(d + off + 2);

			if (fo & 0xfff8) /* offset in 8-byte units, bits 15..3 */
				return DROP_FRAG_NONFIRST;
			if (fo & 1)      /* M: more fragments follow */
				first = true;
			hlen = 8;
		} else if (nh == IP6_AH) {
			hlen = ((uint32_t)d[off + 1] + 2) * 4;
		} else {
			hlen = ((uint32_t)d[off + 1] + 1) * 8;
		}
		if (hlen > end - off)
			return DROP_IP6_EXT;
		nh = d[off];
		off += hlen;
	}
	ret->l4_off = off;
	ret->proto = nh;
	ret->first_frag = first;
	return DROP_NONE;
}

/* --- the quoted packet of an ICMP error ---------------------------------- */

/*
 * q/qlen: the bytes after the 8-byte ICMP header, up to the outer packet's
 * end. The quote is normally truncated, so its own total/payload length is
 * not checked; what must be there is its IP header (with extension chain)
 * and the first 8 bytes of its L4 header. Any fault is ICMP_INNER.
 */
static enum drop_reason parse_quote(struct pkt *p, const uint8_t *q,
				    uint32_t qlen)
{
	struct pkt_inner *in = &p->inner;
	const uint8_t *l4;
	uint32_t l4_off;

	if (qlen < 1 || (q[0] >> 4) != p->family)
		return DROP_ICMP_INNER;
	if (p->family == 4) {
		uint32_t hl;

		if (qlen < 20)
			return DROP_ICMP_INNER;
		hl = (q[0] & 0x0fu) * 4;
		if (hl < 20 || hl > qlen)
			return DROP_ICMP_INNER;
		if (rd16(q + 6) & 0x1fff) /* quoted non-first fragment */
			return DROP_ICMP_INNER;
		in->proto = q[9];
		memcpy(in->src, q + 12, 4);
		memcpy(in->dst, q + 16, 4);
		l4_off = hl;
	} else {
		struct ip6_chain c;

		if (qlen < 40 || ip6_chain(q, qlen, &c) != DROP_NONE)
			return DROP_ICMP_INNER;
		in->proto = c.proto;
		memcpy(in->src, q + 8, 16);
		memcpy(in->dst, q + 24, 16);
		l4_off = c.l4_off;
	}
	if (qlen - l4_off < 8)
		return DROP_ICMP_INNER;
	l4 = q + l4_off;

	switch (in->proto) {
	case PKT_PROTO_TCP:
		in->seq = rd32(l4 + 4);
		/* fall through */
	case PKT_PROTO_UDP:
		in->sport = rd16(l4);
		in->dport = rd16(l4 + 2);
		break;
	case PKT_PROTO_ICMP:
	case PKT_PROTO_ICMPV6:
		/* ICMP inside IPv6 (or ICMPv6 inside IPv4) is a generic flow. */
		if (in->proto != (p->family == 4 ? PKT_PROTO_ICMP
						 : PKT_PROTO_ICMPV6))
			break;
		in->icmp_kind = (uint8_t)(p->family == 4 ? icmp4_kind(l4[0])
					       : icmp6_kind(l4[0]));
		/* Errors about errors must never create or end state. */
		if (in->icmp_kind == PKT_ICMP_ERROR)
			return DROP_ICMP_INNER;
		if (in->icmp_kind == PKT_ICMP_REQUEST ||
		    in->icmp_kind == PKT_ICMP_REPLY)
			in->sport = in->dport = rd16(l4 + 4);
		break;
	default:
		break;
	}
	return DROP_NONE;
}

/* --- L4 ------------------------------------------------------------------ */

/* The valid TCP flag combinations after masking PSH, ECE and CWR, as the
 * Linux tracker sees them; bit n set = combination n valid. Everything
 * else (null, SYN+FIN, SYN+RST, FIN without ACK, ...) is a scan or junk. */
#define TCPF(f) (1ull << (f))
static const uint64_t tcp_valid_flags =
	TCPF(PKT_TCP_SYN) | TCPF(PKT_TCP_SYN | PKT_TCP_URG) |
	TCPF(PKT_TCP_SYN | PKT_TCP_ACK) |
	TCPF(PKT_TCP_RST) | TCPF(PKT_TCP_RST | PKT_TCP_ACK) |
	TCPF(PKT_TCP_FIN | PKT_TCP_ACK) |
	TCPF(PKT_TCP_FIN | PKT_TCP_ACK | PKT_TCP_URG) |
	TCPF(PKT_TCP_ACK) | TCPF(PKT_TCP_ACK | PKT_TCP_URG);
#define TCP_CLASS_MASK (PKT_TCP_FIN | PKT_TCP_SYN | PKT_TCP_RST | \
			PKT_TCP_ACK | PKT_TCP_URG) /* < 64: indexes the mask */

static enum drop_reason parse_tcp(struct pkt *p, const uint8_t *h,
				  uint32_t l4len)
{
	uint32_t doff, i;
	uint8_t flags;

	if (l4len < 20)
		return p->first_frag ? DROP_FRAG_BAD : DROP_TCP_SHORT;
	doff = (uint32_t)(h[12] >> 4) * 4;
	if (doff < 20)
		return DROP_TCP_DOFF;
	if (doff > l4len)
		return p->first_frag ? DROP_FRAG_BAD : DROP_TCP_DOFF;

	/* Options live in [20, doff). i < doff holds at the top of the loop;
	 * a length byte is read only when i + 1 < doff. */
	for (i = 20; i < doff;) {
		uint8_t kind = h[i], olen;

		if (kind == 0) /* end of option list */
			break;
		if (kind == 1) { /* NOP */
			i++;
			continue;
		}
		if (doff - i < 2)
			return DROP_TCP_OPT;
		olen = h[i + 1];
		if (olen < 2 || olen > doff - i)
			return DROP_TCP_OPT;
		if (kind == 3 && olen == 3) /* window scale */
			p->tcp_wscale = h[i + 2] > TCP_WSCALE_MAX ?
					TCP_WSCALE_MAX : h[i + 2];
		else if (kind == 2 && olen == 4) /* MSS: where, for clamping */
			p->tcp_mss_opt = (uint8_t)i;
		else if (kind == 5 && olen >= 10 && (olen - 2) % 8 == 0) {
			/* SACK blocks: the highest right edge acknowledges
			 * data too, so the tracker checks it like the ack */
			for (uint32_t b = i + 2; b + 8 <= i + olen; b += 8) {
				uint32_t right = rd32(h + b + 4);
				if (!p->tcp_has_sack ||
				    (int32_t)(right - p->tcp_sack) > 0)
					p->tcp_sack = right;
				p->tcp_has_sack = true;
			}
		}
		i += olen;
	}

	flags = h[13];
	if (!(tcp_valid_flags >> (flags & TCP_CLASS_MASK) & 1))
		return DROP_TCP_FLAGS;

	p->sport = rd16(h);
	p->dport = rd16(h + 2);
	p->tcp_seq = rd32(h + 4);
	p->tcp_ack = rd32(h + 8);
	/* ECE/CWR are dropped so "flags == SYN" also holds for an ECN SYN. */
	p->tcp_flags = flags & 0x3f;
	p->tcp_win = rd16(h + 14);
	p->payload_len = (uint16_t)(l4len - doff);
	return DROP_NONE;
}

static enum drop_reason parse_udp(struct pkt *p, const uint8_t *h,
				  uint32_t l4len)
{
	uint16_t ulen;

	if (l4len < 8)
		return p->first_frag ? DROP_FRAG_BAD : DROP_UDP_SHORT;
	ulen = rd16(h + 4);
	if (ulen < 8)
		return DROP_UDP_LEN;
	p->sport = rd16(h);
	p->dport = rd16(h + 2);
	if (p->first_frag) {
		/* The length covers the whole datagram; this fragment holds
		 * only part of it, so count what is here. */
		p->payload_len = (uint16_t)(l4len - 8);
		return DROP_NONE;
	}
	if (ulen > l4len)
		return DROP_UDP_LEN;
	p->payload_len = (uint16_t)(ulen - 8);
	return DROP_NONE;
}

static enum drop_reason parse_icmp(struct pkt *p, const uint8_t *h,
				   uint32_t l4len)
{
	if (l4len < 8)
		return p->first_frag ? DROP_FRAG_BAD : DROP_ICMP_SHORT;
	p->icmp_type = h[0];
	p->icmp_code = h[1];
	p->icmp_kind = (uint8_t)(p->family == 4 ? icmp4_kind(h[0])
						 : icmp6_kind(h[0]));
	p->payload_len = (uint16_t)(l4len - 8);

	switch (p->icmp_kind) {
	case PKT_ICMP_REQUEST:
	case PKT_ICMP_REPLY:
		p->sport = p->dport = rd16(h + 4); /* identifier */
		return DROP_NONE;
	case PKT_ICMP_ERROR:
		return parse_quote(p, h + 8, l4len - 8);
	default:
		return DROP_NONE;
	}
}

static enum drop_reason parse_l4(struct pkt *p)
{
	const uint8_t *h = p->data + p->l4_off;
	uint32_t l4len = p->len - p->l4_off;

	switch (p->proto) {
	case PKT_PROTO_TCP:
		return parse_tcp(p, h, l4len);
	case PKT_PROTO_UDP:
		return parse_udp(p, h, l4len);
	case PKT_PROTO_ICMP:
		return p->family == 4 ? parse_icmp(p, h, l4len) : DROP_NONE;
	case PKT_PROTO_ICMPV6:
		return p->family == 6 ? parse_icmp(p, h, l4len) : DROP_NONE;
	default:
		/* ESP, no-next-header, GRE, SCTP ...: generic, ports 0. */
		return DROP_NONE;
	}
}

/* --- L3 ------------------------------------------------------------------ */

static enum drop_reason parse_ip4(struct pkt *p, const uint8_t *d,
				  uint32_t len)
{
	uint32_t hl, tot, i;
	uint16_t fo;

	if (len < 20)
		return DROP_IP4_SHORT;
	hl = (d[0] & 0x0fu) * 4;
	if (hl < 20 || hl > len)
		return DROP_IP4_IHL;
	tot = rd16(d + 2);
	if (tot > len || tot < hl)
		return DROP_IP4_TOTLEN;

	/* Options in [20, hl): EOL ends the list, NOP is one byte, the rest
	 * carry a length >= 2 that must stay inside the header. */
	for (i = 20; i < hl;) {
		uint8_t kind = d[i], olen;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (hl - i < 2)
			return DROP_IP4_OPT;
		olen = d[i + 1];
		if (olen < 2 || olen > hl - i)
			return DROP_IP4_OPT;
		i += olen;
	}

	fo = rd16(d + 6);
	if (fo & 0x1fff)
		return DROP_FRAG_NONFIRST;
	p->first_frag = (fo & 0x2000) != 0;

	p->family = 4;
	p->len = tot; /* bytes past the total length are link padding */
	p->proto = d[9];
	memcpy(p->src, d + 12, 4);
	memcpy(p->dst, d + 16, 4);
	p->l4_off = (uint16_t)hl;
	return DROP_NONE;
}

static enum drop_reason parse_ip6(struct pkt *p, const uint8_t *d,
				  uint32_t len)
{
	struct ip6_chain c;
	enum drop_reason r;
	uint32_t plen;

	if (len < 40)
		return DROP_IP6_SHORT;
	plen = rd16(d + 4);
	if (plen > len - 40)
		return DROP_IP6_PAYLEN;
	/* Payload length 0 behind a hop-by-hop header is a jumbogram
	 * (RFC 2675); it cannot cross a firewall with a 64 KiB MTU anyway. */
	if (plen == 0 && d[6] == IP6_HOPOPTS)
		return DROP_IP6_PAYLEN;

	r = ip6_chain(d, 40 + plen, &c);
	if (r != DROP_NONE)
		return r;

	p->family = 6;
	p->len = 40 + plen;
	p->proto = c.proto;
	p->first_frag = c.first_frag;
	memcpy(p->src, d + 8, 16);
	memcpy(p->dst, d + 24, 16);
	p->l4_off = (uint16_t)c.l4_off;
	return DROP_NONE;
}

enum drop_reason pkt_parse(struct pkt *p, const uint8_t *data, uint32_t len)
{
	enum drop_reason r;

	/* One memset of the whole struct: every field not set below reads 0. */
	memset(p, 0, sizeof(*p));
	p->data = data;
	p->tcp_wscale = 0xff;

	if (len < 1)
		return DROP_IP_VERSION;
	switch (data[0] >> 4) {
	case 4:
		r = parse_ip4(p, data, len);
		break;
	case 6:
		r = parse_ip6(p, data, len);
		break;
	default:
		return DROP_IP_VERSION;
	}
	if (r != DROP_NONE)
		return r;
	return parse_l4(p);
}

/* --- L2 ------------------------------------------------------------------ */

static enum drop_reason ethertype_ok(uint16_t et)
{
	return et == ETH_P_IPV4 || et == ETH_P_IPV6 ? DROP_NONE : DROP_L2_TYPE;
}

enum drop_reason pkt_l2_strip(int dlt, const uint8_t *frame, uint32_t caplen,
			      uint32_t *l3_off)
{
	enum drop_reason r;
	uint32_t off;
	uint16_t et;

	switch (dlt) {
	case DLT_EN10MB: {
		unsigned tags = 0;

		if (caplen < 14)
			return DROP_L2_SHORT;
		et = rd16(frame + 12);
		off = 14;
		/* Each tag: TPID already read as et, then TCI(2) + type(2). */
		while (et == ETH_P_8021Q || et == ETH_P_8021AD) {
			if (tags++ == ETH_MAX_TAGS)
				return DROP_L2_TYPE;
			if (caplen - off < 4)
				return DROP_L2_SHORT;
			et = rd16(frame + off + 2);
			off += 4;
		}
		r = ethertype_ok(et);
		break;
	}
	case DLT_RAW:
#if DLT_RAW != 12 && DLT_LOOP != 12
	case 12: /* DLT_RAW elsewhere */
#endif
#if DLT_RAW != 14 && DLT_PPP_BSDOS != 14
	case 14: /* DLT_RAW on OpenBSD / BSD/OS */
#endif
	case LINKTYPE_RAW:
#ifdef DLT_IPV4
	case DLT_IPV4:
#endif
#ifdef DLT_IPV6
	case DLT_IPV6:
#endif
		/* No L2 header; pkt_parse() checks the version nibble. */
		off = 0;
		r = DROP_NONE;
		break;
	case DLT_LINUX_SLL:
		if (caplen < 16)
			return DROP_L2_SHORT;
		off = 16;
		r = ethertype_ok(rd16(frame + 14));
		break;
#ifdef DLT_LINUX_SLL2
	case DLT_LINUX_SLL2:
		if (caplen < 20)
			return DROP_L2_SHORT;
		off = 20;
		r = ethertype_ok(rd16(frame));
		break;
#endif
	case DLT_NULL:
	case DLT_LOOP: {
		/* A 4-byte address family: host order for NULL, network order
		 * for LOOP, and captures move between hosts, so try both.
		 * IPv6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD),
		 * 30 (macOS). */
		uint32_t fam[2];
		unsigned k;

		if (caplen < 4)
			return DROP_L2_SHORT;
		fam[0] = rd32(frame);
		fam[1] = rd32le(frame);
		off = 4;
		r = DROP_L2_TYPE;
		for (k = 0; k < 2; k++)
			if (fam[k] == 2 || fam[k] == 10 || fam[k] == 24 ||
			    fam[k] == 28 || fam[k] == 30)
				r = DROP_NONE;
		break;
	}
	default:
		return DROP_L2_TYPE;
	}
	if (r != DROP_NONE)
		return r;
	*l3_off = off;
	return DROP_NONE;
}
