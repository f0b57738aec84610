/*
 * test_pkt.c - unit tests of the packet parser (node/pkt.c).
 *
 * Packets are byte arrays written out here (or put together from such
 * arrays by the small builders below). Every parse runs on a malloc'd copy
 * of exactly the packet's length, so an over-read by one byte is an ASan
 * error, not a silent pass. One test per drop reason, named after the case,
 * plus a robustness test over truncations and random mutations.
 *
 * Must never: depend on time or on anything outside this file and pkt.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <pcap/dlt.h>

#include "pkt.h"

/* 10.1.0.2, 10.2.0.2, 10.9.0.1 */
#define A4_1 0x0a, 0x01, 0x00, 0x02
#define A4_2 0x0a, 0x02, 0x00, 0x02
#define A4_R 0x0a, 0x09, 0x00, 0x01
/* 2001:db8::1, 2001:db8::2, 2001:db8::99 */
#define A6_1 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01
#define A6_2 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02
#define A6_R 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99

static const uint8_t a4_1[16] = { A4_1 }, a4_2[16] = { A4_2 };
static const uint8_t a6_1[16] = { A6_1 }, a6_2[16] = { A6_2 };

/* ------------------------------------------------------------------------
 * Reference packets
 * ------------------------------------------------------------------------ */

/* IPv4 TCP SYN 10.1.0.2:41668 -> 10.2.0.2:80, options MSS, SACK-permitted,
 * timestamps, NOP, window scale 7 (doff 10), no payload. */
static const uint8_t v4_tcp_syn[] = {
	0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00,
	0x40, 0x06, 0x00, 0x00, A4_1, A4_2,
	0xa2, 0xc4, 0x00, 0x50,             /* ports */
	0x11, 0x22, 0x33, 0x44,             /* seq */
	0x00, 0x00, 0x00, 0x00,             /* ack */
	0xa0, 0x02, 0xfa, 0xf0,             /* doff 10, SYN, window 64240 */
	0x00, 0x00, 0x00, 0x00,             /* checksum, urgent */
	0x02, 0x04, 0x05, 0xb4,             /* MSS 1460 */
	0x04, 0x02,                         /* SACK permitted */
	0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 0, /* timestamps */
	0x01,                               /* NOP */
	0x03, 0x03, 0x07,                   /* window scale 7 */
};
#define V4_TCP_OPT0 40 /* offset of the first TCP option */

/* IPv4 UDP 10.1.0.2:40000 -> 10.2.0.2:53, 4 bytes of payload. */
static const uint8_t v4_udp[] = {
	0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00,
	0x40, 0x11, 0x00, 0x00, A4_1, A4_2,
	0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00,
	'a', 'b', 'c', 'd',
};

/* IPv4 with a NOP and a record-route option (IHL 7) carrying TCP ACK. */
static const uint8_t v4_opts_tcp[] = {
	0x47, 0x00, 0x00, 0x30, 0x00, 0x05, 0x00, 0x00,
	0x40, 0x06, 0x00, 0x00, A4_1, A4_2,
	0x01, 0x07, 0x07, 0x04, A4_R,
	0x03, 0xe8, 0x07, 0xd0, 0, 0, 0, 1, 0, 0, 0, 1,
	0x50, 0x10, 0x10, 0x00, 0, 0, 0, 0,
};

/* IPv4 ICMP echo request id 0x1234 seq 1, 4 bytes of data. */
static const uint8_t v4_echo[] = {
	0x45, 0x00, 0x00, 0x20, 0x00, 0x02, 0x00, 0x00,
	0x40, 0x01, 0x00, 0x00, A4_1, A4_2,
	0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01,
	1, 2, 3, 4,
};

/* IPv4 ICMP port unreachable from 10.2.0.2 to 10.1.0.2 quoting the UDP
 * packet 10.1.0.2:40000 -> 10.2.0.2:53. The quoted total length (64) is
 * larger than the quote: quotes are truncated and that is fine. */
static const uint8_t v4_unreach_udp[] = {
	0x45, 0x00, 0x00, 0x38, 0x00, 0x03, 0x00, 0x00,
	0x40, 0x01, 0x00, 0x00, A4_2, A4_1,
	0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* quoted IPv4 header */
	0x45, 0x00, 0x00, 0x40, 0x00, 0x04, 0x00, 0x00,
	0x40, 0x11, 0x00, 0x00, A4_1, A4_2,
	/* first 8 bytes of the quoted UDP header */
	0x9c, 0x40, 0x00, 0x35, 0x00, 0x2c, 0x00, 0x00,
};
#define V4_QUOTE 28 /* offset of the quoted IP header */

/* IPv6 TCP [2001:db8::1]:8080 -> [2001:db8::2]:443, ACK, 3 bytes data. */
static const uint8_t v6_tcp[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x17, 0x06, 0x40, A6_1, A6_2,
	0x1f, 0x90, 0x01, 0xbb,
	0x00, 0x00, 0x10, 0x00,             /* seq 4096 */
	0x00, 0x00, 0x20, 0x00,             /* ack 8192 */
	0x50, 0x18, 0x01, 0x00,             /* doff 5, PSH|ACK, win 256 */
	0x00, 0x00, 0x00, 0x00,
	'x', 'y', 'z',
};

/* IPv6 hop-by-hop + destination options + fragment (offset 0, M set)
 * carrying a TCP SYN. */
static const uint8_t v6_chain_frag[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x40, A6_1, A6_2,
	0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, /* HBH -> DST, PadN */
	0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, /* DST -> FRAG, PadN */
	0x06, 0x00, 0x00, 0x01, 0x00, 0x00, 0x12, 0x34, /* FRAG -> TCP, M */
	0x30, 0x39, 0x00, 0x16,             /* 12345 -> 22 */
	0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
};

/* ICMPv6 echo request id 0xabcd seq 1, 8 bytes of data. */
static const uint8_t v6_echo[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3a, 0x40, A6_1, A6_2,
	0x80, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x00, 0x01,
	1, 2, 3, 4, 5, 6, 7, 8,
};

/* ICMPv6 packet too big (MTU 1280) from a router to 2001:db8::1 quoting
 * its TCP segment [2001:db8::1]:8080 -> [2001:db8::2]:443 seq 0xdeadbeef. */
static const uint8_t v6_toobig_tcp[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x38, 0x3a, 0x40, A6_R, A6_1,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00,
	/* quoted IPv6 header (payload length 1400: truncated quote) */
	0x60, 0x00, 0x00, 0x00, 0x05, 0x78, 0x06, 0x40, A6_1, A6_2,
	/* first 8 bytes of the quoted TCP header */
	0x1f, 0x90, 0x01, 0xbb, 0xde, 0xad, 0xbe, 0xef,
};
#define V6_QUOTE 48 /* offset of the quoted IPv6 header */

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* Parse a copy of exactly len bytes so ASan sees any over-read. */
static enum drop_reason parse_exact(struct pkt *p, const uint8_t *bytes,
				    size_t len)
{
	uint8_t *b = malloc(len ? len : 1);
	enum drop_reason r;

	assert_non_null(b);
	if (len)
		memcpy(b, bytes, len);
	r = pkt_parse(p, b, (uint32_t)len);
	free(b);
	p->data = NULL; /* the copy is gone */
	return r;
}

static enum drop_reason l2_exact(int dlt, const uint8_t *bytes, size_t len,
				 uint32_t *l3_off)
{
	uint8_t *b = malloc(len ? len : 1);
	enum drop_reason r;

	assert_non_null(b);
	if (len)
		memcpy(b, bytes, len);
	r = pkt_l2_strip(dlt, b, (uint32_t)len, l3_off);
	free(b);
	return r;
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

/* IPv4 header (IHL from optlen, a multiple of 4) + l4 into b. */
static size_t build_ip4(uint8_t *b, uint8_t proto, const uint8_t *opt,
			size_t optlen, const uint8_t *l4, size_t l4len)
{
	static const uint8_t hdr[20] = {
		0x45, 0, 0, 0, 0, 0x09, 0, 0, 0x40, 0, 0, 0, A4_1, A4_2,
	};
	size_t hl = 20 + optlen, n = hl + l4len;

	assert_int_equal(optlen % 4, 0);
	memcpy(b, hdr, 20);
	b[0] = (uint8_t)(0x40 | hl / 4);
	put16(b + 2, (uint16_t)n);
	b[9] = proto;
	if (optlen)
		memcpy(b + 20, opt, optlen);
	if (l4len)
		memcpy(b + hl, l4, l4len);
	return n;
}

/* IPv6 header with next header nh + rest (ext headers and L4) into b. */
static size_t build_ip6(uint8_t *b, uint8_t nh, const uint8_t *rest,
			size_t restlen)
{
	static const uint8_t hdr[40] = {
		0x60, 0, 0, 0, 0, 0, 0, 0x40, A6_1, A6_2,
	};

	memcpy(b, hdr, 40);
	put16(b + 4, (uint16_t)restlen);
	b[6] = nh;
	if (restlen)
		memcpy(b + 40, rest, restlen);
	return 40 + restlen;
}

/* A minimal TCP header: ACK, doff 5, ports 1000 -> 2000. */
static const uint8_t tcp_ack_hdr[20] = {
	0x03, 0xe8, 0x07, 0xd0, 0, 0, 0, 1, 0, 0, 0, 1,
	0x50, 0x10, 0x10, 0x00, 0, 0, 0, 0,
};

/* Parse v4_tcp_syn with its 20 option bytes replaced by opt. */
static enum drop_reason parse_syn_with_options(struct pkt *p,
					       const uint8_t opt[20])
{
	uint8_t b[sizeof(v4_tcp_syn)];

	memcpy(b, v4_tcp_syn, sizeof(b));
	memcpy(b + V4_TCP_OPT0, opt, 20);
	return parse_exact(p, b, sizeof(b));
}

/* Parse v4_tcp_syn with the TCP flag byte replaced. */
static enum drop_reason parse_syn_with_flags(struct pkt *p, uint8_t flags)
{
	uint8_t b[sizeof(v4_tcp_syn)];

	memcpy(b, v4_tcp_syn, sizeof(b));
	b[20 + 13] = flags;
	return parse_exact(p, b, sizeof(b));
}

/* ------------------------------------------------------------------------
 * Valid packets
 * ------------------------------------------------------------------------ */

static void ipv4_tcp_syn_with_options(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v4_tcp_syn, sizeof(v4_tcp_syn)),
			 DROP_NONE);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.proto, PKT_PROTO_TCP);
	assert_int_equal(p.len, 60);
	assert_memory_equal(p.src, a4_1, 16); /* rest zeroed */
	assert_memory_equal(p.dst, a4_2, 16);
	assert_int_equal(p.sport, 41668);
	assert_int_equal(p.dport, 80);
	assert_int_equal(p.l4_off, 20);
	assert_int_equal(p.payload_len, 0);
	assert_false(p.first_frag);
	assert_int_equal(p.tcp_flags, PKT_TCP_SYN);
	assert_int_equal(p.tcp_seq, 0x11223344);
	assert_int_equal(p.tcp_ack, 0);
	assert_int_equal(p.tcp_win, 64240);
	assert_int_equal(p.tcp_wscale, 7);
	assert_int_equal(p.icmp_kind, PKT_ICMP_NONE);
}

static void ipv4_trailing_bytes_ignored(void **state)
{
	uint8_t b[sizeof(v4_udp) + 6] = { 0 };
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(v4_udp)); /* + Ethernet minimum padding */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_NONE);
	assert_int_equal(p.len, sizeof(v4_udp));
	assert_int_equal(p.payload_len, 4);
}

static void tcp_wscale_absent_is_0xff(void **state)
{
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, NULL, 0, tcp_ack_hdr, 20);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.tcp_wscale, 0xff);
	assert_int_equal(p.tcp_flags, PKT_TCP_ACK);
	assert_int_equal(p.sport, 1000);
	assert_int_equal(p.dport, 2000);
}

static void tcp_wscale_capped_at_14(void **state)
{
	static const uint8_t opt[20] = { 0x03, 0x03, 20, 0 };
	struct pkt p;

	(void)state;
	assert_int_equal(parse_syn_with_options(&p, opt), DROP_NONE);
	assert_int_equal(p.tcp_wscale, 14);
}

static void tcp_wscale_wrong_length_ignored(void **state)
{
	static const uint8_t opt[20] = { 0x03, 0x04, 5, 0, 0x01, 0 };
	struct pkt p;

	(void)state;
	assert_int_equal(parse_syn_with_options(&p, opt), DROP_NONE);
	assert_int_equal(p.tcp_wscale, 0xff);
}

static void tcp_flags_ece_cwr_psh_masked(void **state)
{
	struct pkt p;

	(void)state;
	/* ECN setup SYN: SYN|ECE|CWR is a plain SYN to the tracker. */
	assert_int_equal(parse_syn_with_flags(&p, 0xc2), DROP_NONE);
	assert_int_equal(p.tcp_flags, PKT_TCP_SYN);
	assert_int_equal(parse_syn_with_flags(&p, PKT_TCP_PSH | PKT_TCP_ACK),
			 DROP_NONE);
	assert_int_equal(p.tcp_flags, PKT_TCP_PSH | PKT_TCP_ACK);
}

static void tcp_flags_valid_combinations(void **state)
{
	static const uint8_t valid[] = {
		PKT_TCP_SYN, PKT_TCP_SYN | PKT_TCP_URG,
		PKT_TCP_SYN | PKT_TCP_ACK, PKT_TCP_RST,
		PKT_TCP_RST | PKT_TCP_ACK, PKT_TCP_FIN | PKT_TCP_ACK,
		PKT_TCP_FIN | PKT_TCP_ACK | PKT_TCP_URG, PKT_TCP_ACK,
		PKT_TCP_ACK | PKT_TCP_URG,
	};
	struct pkt p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(valid); i++) {
		assert_int_equal(parse_syn_with_flags(&p, valid[i]), DROP_NONE);
		assert_int_equal(parse_syn_with_flags(&p, valid[i] | 0xc8),
				 DROP_NONE);
	}
}

static void ipv4_udp(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v4_udp, sizeof(v4_udp)), DROP_NONE);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.proto, PKT_PROTO_UDP);
	assert_int_equal(p.len, 32);
	assert_memory_equal(p.src, a4_1, 16);
	assert_memory_equal(p.dst, a4_2, 16);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 53);
	assert_int_equal(p.l4_off, 20);
	assert_int_equal(p.payload_len, 4);
	assert_int_equal(p.tcp_wscale, 0xff);
}

static void ipv4_options_valid(void **state)
{
	/* NOP, record route (7 bytes, one slot), EOL: IHL 8. */
	static const uint8_t opt[12] = { 0x01, 0x07, 0x07, 0x04, 0, 0, 0, 0,
					 0x00, 0, 0, 0 };
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, opt, sizeof(opt),
			     tcp_ack_hdr, 20);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.l4_off, 32);
	assert_int_equal(p.sport, 1000);
}

static void ipv4_icmp_echo_request(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v4_echo, sizeof(v4_echo)), DROP_NONE);
	assert_int_equal(p.proto, PKT_PROTO_ICMP);
	assert_int_equal(p.icmp_type, 8);
	assert_int_equal(p.icmp_code, 0);
	assert_int_equal(p.icmp_kind, PKT_ICMP_REQUEST);
	assert_int_equal(p.sport, 0x1234);
	assert_int_equal(p.dport, 0x1234);
	assert_int_equal(p.l4_off, 20);
}

static void ipv4_icmp_kinds(void **state)
{
	static const struct { uint8_t type, kind; } cases[] = {
		{ 8, PKT_ICMP_REQUEST }, { 0, PKT_ICMP_REPLY },
		{ 13, PKT_ICMP_REQUEST }, { 14, PKT_ICMP_REPLY },
		{ 15, PKT_ICMP_REQUEST }, { 16, PKT_ICMP_REPLY },
		{ 17, PKT_ICMP_REQUEST }, { 18, PKT_ICMP_REPLY },
		{ 9, PKT_ICMP_OTHER }, { 10, PKT_ICMP_OTHER },
		{ 42, PKT_ICMP_OTHER },
	};
	uint8_t b[sizeof(v4_echo)];
	struct pkt p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(b, v4_echo, sizeof(b));
		b[20] = cases[i].type;
		assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_NONE);
		assert_int_equal(p.icmp_kind, cases[i].kind);
		if (cases[i].kind == PKT_ICMP_OTHER) {
			assert_int_equal(p.sport, 0);
			assert_int_equal(p.dport, 0);
		} else {
			assert_int_equal(p.sport, 0x1234);
		}
	}
}

static void ipv4_icmp_port_unreachable_quoting_udp(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v4_unreach_udp,
				     sizeof(v4_unreach_udp)), DROP_NONE);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_code, 3);
	assert_int_equal(p.icmp_kind, PKT_ICMP_ERROR);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.dport, 0);
	assert_memory_equal(p.src, a4_2, 16);
	assert_memory_equal(p.inner.src, a4_1, 16);
	assert_memory_equal(p.inner.dst, a4_2, 16);
	assert_int_equal(p.inner.proto, PKT_PROTO_UDP);
	assert_int_equal(p.inner.sport, 40000);
	assert_int_equal(p.inner.dport, 53);
	assert_int_equal(p.inner.icmp_kind, PKT_ICMP_NONE);
}

static void ipv4_icmp_error_quoting_echo(void **state)
{
	static const uint8_t icmp[] = {
		0x0b, 0x00, 0, 0, 0, 0, 0, 0, /* time exceeded */
		0x45, 0, 0, 0x54, 0, 0, 0, 0, 0x01, 0x01, 0, 0, A4_1, A4_2,
		0x08, 0x00, 0x00, 0x00, 0x77, 0x88, 0x00, 0x05,
	};
	uint8_t b[96];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_ICMP, NULL, 0, icmp, sizeof(icmp));

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.icmp_kind, PKT_ICMP_ERROR);
	assert_int_equal(p.inner.proto, PKT_PROTO_ICMP);
	assert_int_equal(p.inner.icmp_kind, PKT_ICMP_REQUEST);
	assert_int_equal(p.inner.sport, 0x7788);
	assert_int_equal(p.inner.dport, 0x7788);
}

static void ipv4_first_fragment_parsed(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	b[6] = 0x20; /* MF, offset 0 */
	b[24] = 0x05; /* UDP length 1400: the rest is in later fragments */
	b[25] = 0x78;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_NONE);
	assert_true(p.first_frag);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.payload_len, 4);
}

static void ipv4_other_protocol_generic(void **state)
{
	static const uint8_t gre[4] = { 0, 0, 0x08, 0x00 };
	uint8_t b[32];
	struct pkt p;
	size_t n = build_ip4(b, 47, NULL, 0, gre, sizeof(gre));

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.proto, 47);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.dport, 0);
	assert_int_equal(p.l4_off, 20);
}

static void ipv6_tcp(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v6_tcp, sizeof(v6_tcp)), DROP_NONE);
	assert_int_equal(p.family, 6);
	assert_int_equal(p.proto, PKT_PROTO_TCP);
	assert_int_equal(p.len, sizeof(v6_tcp));
	assert_memory_equal(p.src, a6_1, 16);
	assert_memory_equal(p.dst, a6_2, 16);
	assert_int_equal(p.sport, 8080);
	assert_int_equal(p.dport, 443);
	assert_int_equal(p.l4_off, 40);
	assert_int_equal(p.payload_len, 3);
	assert_int_equal(p.tcp_flags, PKT_TCP_PSH | PKT_TCP_ACK);
	assert_int_equal(p.tcp_seq, 4096);
	assert_int_equal(p.tcp_ack, 8192);
	assert_int_equal(p.tcp_win, 256);
	assert_int_equal(p.tcp_wscale, 0xff);
}

static void ipv6_hbh_dstopts_first_fragment(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v6_chain_frag, sizeof(v6_chain_frag)),
			 DROP_NONE);
	assert_int_equal(p.proto, PKT_PROTO_TCP);
	assert_int_equal(p.l4_off, 64);
	assert_true(p.first_frag);
	assert_int_equal(p.sport, 12345);
	assert_int_equal(p.dport, 22);
	assert_int_equal(p.tcp_flags, PKT_TCP_SYN);
	assert_int_equal(p.tcp_seq, 7);
}

static void ipv6_atomic_fragment_not_first_frag(void **state)
{
	uint8_t b[sizeof(v6_chain_frag)];
	struct pkt p;

	(void)state;
	memcpy(b, v6_chain_frag, sizeof(b));
	b[40 + 16 + 3] = 0x00; /* offset 0, M clear: a whole packet */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_NONE);
	assert_false(p.first_frag);
}

static void ipv6_routing_and_ah_followed(void **state)
{
	static const uint8_t rest[] = {
		43, 0, 0, 0, 0, 0, 0, 0,              /* HBH -> routing */
		51, 0, 0, 0, 0, 0, 0, 0,              /* routing -> AH */
		17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2,  /* AH len (1+2)*4 -> UDP */
		0x00, 0x07, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00,
	};
	uint8_t b[128];
	struct pkt p;
	size_t n = build_ip6(b, 0, rest, sizeof(rest));

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.proto, PKT_PROTO_UDP);
	assert_int_equal(p.l4_off, 40 + 8 + 8 + 12);
	assert_int_equal(p.sport, 7);
	assert_int_equal(p.dport, 9);
	assert_int_equal(p.payload_len, 0);
}

static void ipv6_esp_and_no_next_end_chain(void **state)
{
	static const uint8_t dst_esp[] = {
		50, 0, 1, 4, 0, 0, 0, 0,
		0x00, 0x00, 0x10, 0x01, 0, 0, 0, 1, /* SPI, seq */
	};
	uint8_t b[128];
	struct pkt p;
	size_t n = build_ip6(b, 60, dst_esp, sizeof(dst_esp));

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.proto, 50);
	assert_int_equal(p.l4_off, 48);
	assert_int_equal(p.sport, 0);

	n = build_ip6(b, 59, NULL, 0);
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.proto, 59);
	assert_int_equal(p.l4_off, 40);
	assert_int_equal(p.len, 40);
}

static void ipv6_ext_chain_at_limit_accepted(void **state)
{
	uint8_t rest[PKT_MAX_EXT * 8 + 8], b[256];
	struct pkt p;
	size_t i, n;

	(void)state;
	memset(rest, 0, sizeof(rest));
	for (i = 0; i < PKT_MAX_EXT; i++)
		rest[i * 8] = i + 1 < PKT_MAX_EXT ? 60 : PKT_PROTO_UDP;
	put16(rest + PKT_MAX_EXT * 8 + 4, 8);
	n = build_ip6(b, 60, rest, sizeof(rest));
	assert_int_equal(parse_exact(&p, b, n), DROP_NONE);
	assert_int_equal(p.proto, PKT_PROTO_UDP);
	assert_int_equal(p.l4_off, 40 + PKT_MAX_EXT * 8);
}

static void ipv6_icmpv6_echo_request(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v6_echo, sizeof(v6_echo)), DROP_NONE);
	assert_int_equal(p.proto, PKT_PROTO_ICMPV6);
	assert_int_equal(p.icmp_type, 128);
	assert_int_equal(p.icmp_kind, PKT_ICMP_REQUEST);
	assert_int_equal(p.sport, 0xabcd);
	assert_int_equal(p.dport, 0xabcd);
	assert_int_equal(p.l4_off, 40);
}

static void ipv6_icmpv6_kinds(void **state)
{
	static const struct { uint8_t type, kind; } cases[] = {
		{ 128, PKT_ICMP_REQUEST }, { 129, PKT_ICMP_REPLY },
		{ 133, PKT_ICMP_OTHER }, { 135, PKT_ICMP_OTHER },
		{ 8, PKT_ICMP_OTHER }, /* an IPv4 echo type means nothing here */
	};
	uint8_t b[sizeof(v6_echo)];
	struct pkt p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(b, v6_echo, sizeof(b));
		b[40] = cases[i].type;
		assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_NONE);
		assert_int_equal(p.icmp_kind, cases[i].kind);
	}
}

static void ipv6_icmpv6_error_quoting_tcp(void **state)
{
	static const uint8_t a6_r[16] = { A6_R };
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v6_toobig_tcp, sizeof(v6_toobig_tcp)),
			 DROP_NONE);
	assert_int_equal(p.icmp_type, 2);
	assert_int_equal(p.icmp_kind, PKT_ICMP_ERROR);
	assert_memory_equal(p.src, a6_r, 16);
	assert_memory_equal(p.inner.src, a6_1, 16);
	assert_memory_equal(p.inner.dst, a6_2, 16);
	assert_int_equal(p.inner.proto, PKT_PROTO_TCP);
	assert_int_equal(p.inner.sport, 8080);
	assert_int_equal(p.inner.dport, 443);
	assert_int_equal(p.inner.seq, 0xdeadbeef);
}

static void ipv6_icmp_proto_1_is_generic(void **state)
{
	uint8_t b[sizeof(v6_echo)];
	struct pkt p;

	(void)state;
	memcpy(b, v6_echo, sizeof(b));
	b[6] = PKT_PROTO_ICMP; /* IPv4's ICMP number inside IPv6 */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_NONE);
	assert_int_equal(p.proto, PKT_PROTO_ICMP);
	assert_int_equal(p.icmp_kind, PKT_ICMP_NONE);
	assert_int_equal(p.sport, 0);
}

/* ------------------------------------------------------------------------
 * One test per drop reason
 * ------------------------------------------------------------------------ */

static void empty_packet_refused(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v4_udp, 0), DROP_IP_VERSION);
}

static void ip_version_not_4_or_6(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	b[0] = 0x55;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP_VERSION);
	b[0] = 0x05;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP_VERSION);
}

static void ipv4_header_short(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v4_udp, 19), DROP_IP4_SHORT);
	assert_int_equal(parse_exact(&p, v4_udp, 1), DROP_IP4_SHORT);
}

static void ipv4_ihl_below_5(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	b[0] = 0x44;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP4_IHL);
	b[0] = 0x40;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP4_IHL);
}

static void ipv4_ihl_past_buffer(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	b[0] = 0x4f; /* 60-byte header in a 32-byte packet */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP4_IHL);
}

static void ipv4_total_length_past_buffer(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	put16(b + 2, sizeof(b) + 1);
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP4_TOTLEN);
}

static void ipv4_total_length_below_ihl(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	put16(b + 2, 19);
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP4_TOTLEN);
}

static void ipv4_option_length_zero(void **state)
{
	static const uint8_t opt[4] = { 0x07, 0x00, 0, 0 };
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, opt, 4, tcp_ack_hdr, 20);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_IP4_OPT);
}

static void ipv4_option_length_one(void **state)
{
	static const uint8_t opt[4] = { 0x01, 0x44, 0x01, 0 };
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, opt, 4, tcp_ack_hdr, 20);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_IP4_OPT);
}

static void ipv4_option_past_header(void **state)
{
	static const uint8_t opt[4] = { 0x01, 0x07, 0x07, 0x04 }; /* 7 > 3 */
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, opt, 4, tcp_ack_hdr, 20);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_IP4_OPT);
}

static void ipv4_option_missing_length_byte(void **state)
{
	/* The packet ends with the header: reading a length byte for the
	 * last option would read past the buffer. */
	static const uint8_t opt[4] = { 0x01, 0x01, 0x01, 0x94 };
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, 59, opt, 4, NULL, 0);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_IP4_OPT);
}

static void ipv6_header_short(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v6_tcp, 39), DROP_IP6_SHORT);
	assert_int_equal(parse_exact(&p, v6_tcp, 1), DROP_IP6_SHORT);
}

static void ipv6_payload_length_past_buffer(void **state)
{
	struct pkt p;

	(void)state;
	assert_int_equal(parse_exact(&p, v6_tcp, sizeof(v6_tcp) - 1),
			 DROP_IP6_PAYLEN);
}

static void ipv6_jumbogram_refused(void **state)
{
	static const uint8_t hbh_jumbo[] = {
		6, 0, 0xc2, 4, 0x00, 0x01, 0x00, 0x1c, /* jumbo len 65564 */
	};
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip6(b, 0, hbh_jumbo, sizeof(hbh_jumbo));

	(void)state;
	put16(b + 4, 0);
	assert_int_equal(parse_exact(&p, b, n), DROP_IP6_PAYLEN);
}

static void ipv6_ext_header_truncated(void **state)
{
	uint8_t b[sizeof(v6_chain_frag)];
	struct pkt p;

	(void)state;
	memcpy(b, v6_chain_frag, sizeof(b));
	b[41] = 0x10; /* hop-by-hop claims 136 bytes */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_IP6_EXT);

	/* A chain cut inside the next header: payload length covers 4 of
	 * the 8 bytes of the destination options header. */
	memcpy(b, v6_chain_frag, sizeof(b));
	put16(b + 4, 12);
	assert_int_equal(parse_exact(&p, b, 52), DROP_IP6_EXT);
}

static void ipv6_ext_chain_too_long(void **state)
{
	uint8_t rest[(PKT_MAX_EXT + 1) * 8 + 8], b[256];
	struct pkt p;
	size_t i, n;

	(void)state;
	memset(rest, 0, sizeof(rest));
	for (i = 0; i <= PKT_MAX_EXT; i++)
		rest[i * 8] = i < PKT_MAX_EXT ? 60 : PKT_PROTO_UDP;
	put16(rest + (PKT_MAX_EXT + 1) * 8 + 4, 8);
	n = build_ip6(b, 60, rest, sizeof(rest));
	assert_int_equal(parse_exact(&p, b, n), DROP_IP6_EXT_CHAIN);
}

static void nonfirst_fragment(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	b[6] = 0x20; /* MF, offset 185 * 8 */
	b[7] = 0xb9;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_FRAG_NONFIRST);
	b[6] = 0x00; /* last fragment: offset set, MF clear */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_FRAG_NONFIRST);
}

static void ipv6_nonfirst_fragment(void **state)
{
	uint8_t b[sizeof(v6_chain_frag)];
	struct pkt p;

	(void)state;
	memcpy(b, v6_chain_frag, sizeof(b));
	put16(b + 40 + 16 + 2, (100 << 3) | 1);
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_FRAG_NONFIRST);
}

static void first_fragment_tcp_header_cut(void **state)
{
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, NULL, 0, tcp_ack_hdr, 12);

	(void)state;
	b[6] = 0x20; /* MF */
	assert_int_equal(parse_exact(&p, b, n), DROP_FRAG_BAD);
}

static void first_fragment_tcp_options_cut(void **state)
{
	uint8_t b[sizeof(v4_tcp_syn)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_tcp_syn, sizeof(b));
	b[6] = 0x20;
	put16(b + 2, 48); /* doff 40 but 28 bytes of TCP here */
	assert_int_equal(parse_exact(&p, b, 48), DROP_FRAG_BAD);
}

static void ipv6_first_fragment_udp_cut(void **state)
{
	static const uint8_t rest[] = {
		17, 0, 0x00, 0x01, 0, 0, 0, 9, /* FRAG -> UDP, M */
		0x00, 0x35, 0x00, 0x35,        /* half a UDP header */
	};
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip6(b, 44, rest, sizeof(rest));

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_FRAG_BAD);
}

static void tcp_header_short(void **state)
{
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, NULL, 0, tcp_ack_hdr, 19);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_TCP_SHORT);
}

static void tcp_doff_below_5(void **state)
{
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, NULL, 0, tcp_ack_hdr, 20);

	(void)state;
	b[20 + 12] = 0x40;
	assert_int_equal(parse_exact(&p, b, n), DROP_TCP_DOFF);
}

static void tcp_doff_past_end(void **state)
{
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_TCP, NULL, 0, tcp_ack_hdr, 20);

	(void)state;
	b[20 + 12] = 0x60; /* 24-byte header in a 20-byte segment */
	assert_int_equal(parse_exact(&p, b, n), DROP_TCP_DOFF);
}

static void tcp_option_length_zero(void **state)
{
	static const uint8_t opt[20] = { 0x02, 0x00 };
	struct pkt p;

	(void)state;
	assert_int_equal(parse_syn_with_options(&p, opt), DROP_TCP_OPT);
}

static void tcp_option_length_one(void **state)
{
	static const uint8_t opt[20] = { 0x01, 0x01, 0x08, 0x01 };
	struct pkt p;

	(void)state;
	assert_int_equal(parse_syn_with_options(&p, opt), DROP_TCP_OPT);
}

static void tcp_option_past_end(void **state)
{
	static const uint8_t opt[20] = {
		0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
		0x01, 0x01, 0x08, 0x0b, /* timestamps claim 11 of 10 bytes */
	};
	struct pkt p;

	(void)state;
	assert_int_equal(parse_syn_with_options(&p, opt), DROP_TCP_OPT);
}

static void tcp_option_missing_length_byte(void **state)
{
	uint8_t opt[20];
	struct pkt p;

	(void)state;
	memset(opt, 0x01, sizeof(opt));
	opt[19] = 0x03; /* window scale kind as the last option byte */
	assert_int_equal(parse_syn_with_options(&p, opt), DROP_TCP_OPT);
}

static void tcp_option_eol_ends_list(void **state)
{
	/* After EOL the bytes are padding, even if they look invalid. */
	static const uint8_t opt[20] = { 0x03, 0x03, 0x02, 0x00, 0x02, 0x00 };
	struct pkt p;

	(void)state;
	assert_int_equal(parse_syn_with_options(&p, opt), DROP_NONE);
	assert_int_equal(p.tcp_wscale, 2);
}

static void tcp_flags_invalid(void **state)
{
	static const uint8_t invalid[] = {
		0, /* null scan */
		PKT_TCP_SYN | PKT_TCP_FIN,
		PKT_TCP_SYN | PKT_TCP_RST,
		PKT_TCP_FIN, /* FIN scan: FIN without ACK */
		PKT_TCP_FIN | PKT_TCP_PSH | PKT_TCP_URG, /* Xmas */
		PKT_TCP_SYN | PKT_TCP_ACK | PKT_TCP_URG,
		PKT_TCP_RST | PKT_TCP_FIN | PKT_TCP_ACK,
		PKT_TCP_URG,
		PKT_TCP_PSH,
		0x3f,
		0xc0, /* ECE|CWR only */
	};
	struct pkt p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(invalid); i++)
		assert_int_equal(parse_syn_with_flags(&p, invalid[i]),
				 DROP_TCP_FLAGS);
}

static void udp_header_short(void **state)
{
	uint8_t b[32];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_UDP, NULL, 0, v4_udp + 20, 7);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_UDP_SHORT);
}

static void udp_length_below_8(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	put16(b + 24, 7);
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_UDP_LEN);
}

static void udp_length_past_end(void **state)
{
	uint8_t b[sizeof(v4_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_udp, sizeof(b));
	put16(b + 24, 13);
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_UDP_LEN);
}

static void icmp_header_short(void **state)
{
	uint8_t b[32];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_ICMP, NULL, 0, v4_echo + 20, 7);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_ICMP_SHORT);
}

static void icmpv6_header_short(void **state)
{
	uint8_t b[64];
	struct pkt p;
	size_t n = build_ip6(b, PKT_PROTO_ICMPV6, v6_echo + 40, 7);

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_ICMP_SHORT);
}

/* v4_unreach_udp cut to n bytes, total length adjusted. */
static enum drop_reason parse_unreach_cut(struct pkt *p, size_t n)
{
	uint8_t b[sizeof(v4_unreach_udp)];

	memcpy(b, v4_unreach_udp, sizeof(b));
	put16(b + 2, (uint16_t)n);
	return parse_exact(p, b, n);
}

static void icmp_error_quote_truncated(void **state)
{
	struct pkt p;
	size_t n;

	(void)state;
	/* No quote at all, then every cut through the quoted IP header. */
	for (n = V4_QUOTE; n < V4_QUOTE + 20; n++)
		assert_int_equal(parse_unreach_cut(&p, n), DROP_ICMP_INNER);
}

static void icmp_error_quote_l4_truncated(void **state)
{
	struct pkt p;
	size_t n;

	(void)state;
	for (n = V4_QUOTE + 20; n < sizeof(v4_unreach_udp); n++)
		assert_int_equal(parse_unreach_cut(&p, n), DROP_ICMP_INNER);
	assert_int_equal(parse_unreach_cut(&p, sizeof(v4_unreach_udp)),
			 DROP_NONE);
}

static void icmp_error_quote_ihl_bad(void **state)
{
	uint8_t b[sizeof(v4_unreach_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_unreach_udp, sizeof(b));
	b[V4_QUOTE] = 0x44;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_ICMP_INNER);
	b[V4_QUOTE] = 0x46; /* 24-byte header: the 8 L4 bytes no longer fit */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_ICMP_INNER);
	b[V4_QUOTE] = 0x4f; /* 60-byte header in a 28-byte quote */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_ICMP_INNER);
}

static void icmp_error_quote_nonfirst_fragment(void **state)
{
	uint8_t b[sizeof(v4_unreach_udp)];
	struct pkt p;

	(void)state;
	memcpy(b, v4_unreach_udp, sizeof(b));
	b[V4_QUOTE + 7] = 0x10; /* quoted offset 16 * 8: no L4 header */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_ICMP_INNER);
}

static void icmp_error_quoting_ipv6(void **state)
{
	uint8_t icmp[8 + 48], b[128];
	struct pkt p;
	size_t n;

	(void)state;
	memcpy(icmp, v4_unreach_udp + 20, 8);
	memcpy(icmp + 8, v6_toobig_tcp + V6_QUOTE, 48);
	n = build_ip4(b, PKT_PROTO_ICMP, NULL, 0, icmp, sizeof(icmp));
	assert_int_equal(parse_exact(&p, b, n), DROP_ICMP_INNER);
}

static void icmpv6_error_quoting_ipv4(void **state)
{
	uint8_t icmp[8 + 28], b[128];
	struct pkt p;
	size_t n;

	(void)state;
	memcpy(icmp, v6_toobig_tcp + 40, 8);
	memcpy(icmp + 8, v4_unreach_udp + V4_QUOTE, 28);
	n = build_ip6(b, PKT_PROTO_ICMPV6, icmp, sizeof(icmp));
	assert_int_equal(parse_exact(&p, b, n), DROP_ICMP_INNER);
}

static void icmp_error_quoting_icmp_error(void **state)
{
	static const uint8_t icmp[] = {
		0x03, 0x01, 0, 0, 0, 0, 0, 0, /* host unreachable */
		0x45, 0, 0, 0x38, 0, 0, 0, 0, 0x40, 0x01, 0, 0, A4_1, A4_2,
		0x0b, 0x00, 0, 0, 0, 0, 0, 0, /* quoted: time exceeded */
	};
	uint8_t b[96];
	struct pkt p;
	size_t n = build_ip4(b, PKT_PROTO_ICMP, NULL, 0, icmp, sizeof(icmp));

	(void)state;
	assert_int_equal(parse_exact(&p, b, n), DROP_ICMP_INNER);
}

static void icmpv6_error_quoting_icmpv6_error(void **state)
{
	uint8_t b[sizeof(v6_toobig_tcp)];
	struct pkt p;

	(void)state;
	memcpy(b, v6_toobig_tcp, sizeof(b));
	b[V6_QUOTE + 6] = PKT_PROTO_ICMPV6;
	b[V6_QUOTE + 40] = 1; /* quoted destination unreachable */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_ICMP_INNER);
	b[V6_QUOTE + 40] = 128; /* quoted echo request is fine */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_NONE);
	assert_int_equal(p.inner.icmp_kind, PKT_ICMP_REQUEST);
	assert_int_equal(p.inner.sport, 0xdead);
}

static void icmpv6_error_quote_ext_truncated(void **state)
{
	uint8_t b[sizeof(v6_toobig_tcp)];
	struct pkt p;

	(void)state;
	memcpy(b, v6_toobig_tcp, sizeof(b));
	b[V6_QUOTE + 6] = 60; /* dst options of 8 bytes: no L4 bytes left */
	b[V6_QUOTE + 41] = 0;
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_ICMP_INNER);
	b[V6_QUOTE + 41] = 4; /* dst options past the quote */
	assert_int_equal(parse_exact(&p, b, sizeof(b)), DROP_ICMP_INNER);
}

static void icmpv6_error_quote_truncated(void **state)
{
	uint8_t b[sizeof(v6_toobig_tcp)];
	struct pkt p;
	size_t n;

	(void)state;
	for (n = V6_QUOTE; n < sizeof(b); n++) {
		memcpy(b, v6_toobig_tcp, sizeof(b));
		put16(b + 4, (uint16_t)(n - 40));
		assert_int_equal(parse_exact(&p, b, n), DROP_ICMP_INNER);
	}
}

/* ------------------------------------------------------------------------
 * L2
 * ------------------------------------------------------------------------ */

static void l2_ethernet(void **state)
{
	uint8_t f[14 + 8 + 20] = { 0 };
	uint32_t off = 99;

	(void)state;
	put16(f + 12, 0x0800);
	assert_int_equal(l2_exact(DLT_EN10MB, f, 14, &off), DROP_NONE);
	assert_int_equal(off, 14);
	put16(f + 12, 0x86dd);
	assert_int_equal(l2_exact(DLT_EN10MB, f, 14, &off), DROP_NONE);
	assert_int_equal(off, 14);

	/* 802.1Q */
	put16(f + 12, 0x8100);
	put16(f + 16, 0x0800);
	assert_int_equal(l2_exact(DLT_EN10MB, f, 18, &off), DROP_NONE);
	assert_int_equal(off, 18);
	/* 802.1ad + 802.1Q */
	put16(f + 12, 0x88a8);
	put16(f + 16, 0x8100);
	put16(f + 20, 0x86dd);
	assert_int_equal(l2_exact(DLT_EN10MB, f, 22, &off), DROP_NONE);
	assert_int_equal(off, 22);
}

static void l2_ethernet_short(void **state)
{
	uint8_t f[22] = { 0 };
	uint32_t off = 99;

	(void)state;
	assert_int_equal(l2_exact(DLT_EN10MB, f, 13, &off), DROP_L2_SHORT);
	put16(f + 12, 0x8100);
	assert_int_equal(l2_exact(DLT_EN10MB, f, 17, &off), DROP_L2_SHORT);
	put16(f + 16, 0x8100);
	assert_int_equal(l2_exact(DLT_EN10MB, f, 21, &off), DROP_L2_SHORT);
	assert_int_equal(off, 99); /* untouched on failure */
}

static void l2_ethernet_not_ip(void **state)
{
	uint8_t f[26] = { 0 };
	uint32_t off = 99;

	(void)state;
	put16(f + 12, 0x0806); /* ARP */
	assert_int_equal(l2_exact(DLT_EN10MB, f, 14, &off), DROP_L2_TYPE);
	/* three tags */
	put16(f + 12, 0x88a8);
	put16(f + 16, 0x8100);
	put16(f + 20, 0x8100);
	put16(f + 24, 0x0800);
	assert_int_equal(l2_exact(DLT_EN10MB, f, 26, &off), DROP_L2_TYPE);
	assert_int_equal(off, 99);
}

static void l2_raw_ipv4_ipv6(void **state)
{
	static const int dlts[] = { DLT_RAW, DLT_IPV4, DLT_IPV6 };
	uint32_t off;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dlts) / sizeof(dlts[0]); i++) {
		off = 99;
		assert_int_equal(l2_exact(dlts[i], v4_udp, sizeof(v4_udp),
					  &off), DROP_NONE);
		assert_int_equal(off, 0);
	}
}

static void l2_linux_sll(void **state)
{
	uint8_t f[16] = { 0 };
	uint32_t off = 99;

	(void)state;
	put16(f + 14, 0x86dd);
	assert_int_equal(l2_exact(DLT_LINUX_SLL, f, 16, &off), DROP_NONE);
	assert_int_equal(off, 16);
	assert_int_equal(l2_exact(DLT_LINUX_SLL, f, 15, &off), DROP_L2_SHORT);
	put16(f + 14, 0x0806);
	assert_int_equal(l2_exact(DLT_LINUX_SLL, f, 16, &off), DROP_L2_TYPE);
}

static void l2_linux_sll2(void **state)
{
	uint8_t f[20] = { 0 };
	uint32_t off = 99;

	(void)state;
	put16(f, 0x0800);
	assert_int_equal(l2_exact(DLT_LINUX_SLL2, f, 20, &off), DROP_NONE);
	assert_int_equal(off, 20);
	assert_int_equal(l2_exact(DLT_LINUX_SLL2, f, 19, &off), DROP_L2_SHORT);
	put16(f, 0x88cc); /* LLDP */
	assert_int_equal(l2_exact(DLT_LINUX_SLL2, f, 20, &off), DROP_L2_TYPE);
}

static void l2_null_loop_both_byte_orders(void **state)
{
	static const uint8_t ok[][4] = {
		{ 2, 0, 0, 0 }, { 0, 0, 0, 2 },
		{ 10, 0, 0, 0 }, { 0, 0, 0, 24 },
		{ 28, 0, 0, 0 }, { 0, 0, 0, 30 },
	};
	static const uint8_t bad[4] = { 7, 0, 0, 0 };
	uint32_t off;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		off = 99;
		assert_int_equal(l2_exact(DLT_NULL, ok[i], 4, &off), DROP_NONE);
		assert_int_equal(off, 4);
		assert_int_equal(l2_exact(DLT_LOOP, ok[i], 4, &off), DROP_NONE);
	}
	assert_int_equal(l2_exact(DLT_NULL, bad, 4, &off), DROP_L2_TYPE);
	assert_int_equal(l2_exact(DLT_LOOP, ok[0], 3, &off), DROP_L2_SHORT);
}

static void l2_unknown_dlt(void **state)
{
	uint8_t f[64] = { 0 };
	uint32_t off = 99;

	(void)state;
	assert_int_equal(l2_exact(DLT_IEEE802_11, f, sizeof(f), &off),
			 DROP_L2_TYPE);
	assert_int_equal(l2_exact(-1, f, sizeof(f), &off), DROP_L2_TYPE);
	assert_int_equal(off, 99);
}

/* ------------------------------------------------------------------------
 * Robustness
 * ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull; /* fixed seed */

static uint32_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* What holds for every accepted packet, whatever its bytes. */
static void check_accepted(const struct pkt *p, size_t len)
{
	assert_true(p->len <= len);
	assert_true(p->l4_off <= p->len);
	assert_true(p->family == 4 || p->family == 6);
	assert_true(p->payload_len <= p->len);
	if (p->family == 4) {
		static const uint8_t zero[12];

		assert_memory_equal(p->src + 4, zero, 12);
		assert_memory_equal(p->dst + 4, zero, 12);
	}
	if (p->proto == PKT_PROTO_TCP)
		assert_true(p->tcp_wscale <= 14 || p->tcp_wscale == 0xff);
	if (p->icmp_kind == PKT_ICMP_ERROR)
		assert_int_not_equal(p->inner.icmp_kind, PKT_ICMP_ERROR);
}

static void truncations_and_mutations_never_read_out_of_bounds(void **state)
{
	static const struct { const uint8_t *b; size_t n; } base[] = {
		{ v4_tcp_syn, sizeof(v4_tcp_syn) },
		{ v4_udp, sizeof(v4_udp) },
		{ v4_opts_tcp, sizeof(v4_opts_tcp) },
		{ v4_echo, sizeof(v4_echo) },
		{ v4_unreach_udp, sizeof(v4_unreach_udp) },
		{ v6_tcp, sizeof(v6_tcp) },
		{ v6_chain_frag, sizeof(v6_chain_frag) },
		{ v6_echo, sizeof(v6_echo) },
		{ v6_toobig_tcp, sizeof(v6_toobig_tcp) },
	};
	static const int dlts[] = { DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL,
				    DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP };
	const size_t nbase = sizeof(base) / sizeof(base[0]);
	uint8_t b[256];
	struct pkt p;
	uint32_t off;
	size_t i, n, k, accepted = 0;

	(void)state;
	for (i = 0; i < nbase; i++) {
		for (n = 0; n <= base[i].n; n++) {
			if (parse_exact(&p, base[i].b, n) == DROP_NONE)
				check_accepted(&p, n);
			/* The same cut with the IP length field agreeing, so
			 * the cut reaches the extension chain, L4 and quote
			 * parsers instead of stopping at the length check. */
			memcpy(b, base[i].b, n);
			if (n >= 40 && (b[0] >> 4) == 6)
				put16(b + 4, (uint16_t)(n - 40));
			else if (n >= 4 && (b[0] >> 4) == 4)
				put16(b + 2, (uint16_t)n);
			if (parse_exact(&p, b, n) == DROP_NONE)
				check_accepted(&p, n);
			for (k = 0; k < sizeof(dlts) / sizeof(dlts[0]); k++)
				if (l2_exact(dlts[k], base[i].b, n, &off) ==
				    DROP_NONE)
					assert_true(off <= n);
		}
		assert_int_equal(parse_exact(&p, base[i].b, base[i].n),
				 DROP_NONE);
	}

	for (i = 0; i < 100000; i++) {
		size_t which = rng() % nbase, flips = 1 + rng() % 4;

		n = base[which].n;
		memcpy(b, base[which].b, n);
		for (k = 0; k < flips; k++) {
			size_t at = rng() % n;

			/* Random values, or the extremes that break length
			 * and offset fields most often. */
			if (rng() & 1)
				b[at] = (uint8_t)rng();
			else
				b[at] = (rng() & 1) ? 0xff : 0x00;
		}
		if (rng() % 4 == 0)
			n = rng() % (n + 1);
		if (parse_exact(&p, b, n) == DROP_NONE) {
			check_accepted(&p, n);
			accepted++;
		}
		if (l2_exact(dlts[rng() % 6], b, n, &off) == DROP_NONE)
			assert_true(off <= n);
	}
	/* The mutations must not all be trivially refused. */
	assert_true(accepted > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* valid */
		cmocka_unit_test(ipv4_tcp_syn_with_options),
		cmocka_unit_test(ipv4_trailing_bytes_ignored),
		cmocka_unit_test(tcp_wscale_absent_is_0xff),
		cmocka_unit_test(tcp_wscale_capped_at_14),
		cmocka_unit_test(tcp_wscale_wrong_length_ignored),
		cmocka_unit_test(tcp_flags_ece_cwr_psh_masked),
		cmocka_unit_test(tcp_flags_valid_combinations),
		cmocka_unit_test(tcp_option_eol_ends_list),
		cmocka_unit_test(ipv4_udp),
		cmocka_unit_test(ipv4_options_valid),
		cmocka_unit_test(ipv4_icmp_echo_request),
		cmocka_unit_test(ipv4_icmp_kinds),
		cmocka_unit_test(ipv4_icmp_port_unreachable_quoting_udp),
		cmocka_unit_test(ipv4_icmp_error_quoting_echo),
		cmocka_unit_test(ipv4_first_fragment_parsed),
		cmocka_unit_test(ipv4_other_protocol_generic),
		cmocka_unit_test(ipv6_tcp),
		cmocka_unit_test(ipv6_hbh_dstopts_first_fragment),
		cmocka_unit_test(ipv6_atomic_fragment_not_first_frag),
		cmocka_unit_test(ipv6_routing_and_ah_followed),
		cmocka_unit_test(ipv6_esp_and_no_next_end_chain),
		cmocka_unit_test(ipv6_ext_chain_at_limit_accepted),
		cmocka_unit_test(ipv6_icmpv6_echo_request),
		cmocka_unit_test(ipv6_icmpv6_kinds),
		cmocka_unit_test(ipv6_icmpv6_error_quoting_tcp),
		cmocka_unit_test(ipv6_icmp_proto_1_is_generic),
		/* drop reasons */
		cmocka_unit_test(empty_packet_refused),
		cmocka_unit_test(ip_version_not_4_or_6),
		cmocka_unit_test(ipv4_header_short),
		cmocka_unit_test(ipv4_ihl_below_5),
		cmocka_unit_test(ipv4_ihl_past_buffer),
		cmocka_unit_test(ipv4_total_length_past_buffer),
		cmocka_unit_test(ipv4_total_length_below_ihl),
		cmocka_unit_test(ipv4_option_length_zero),
		cmocka_unit_test(ipv4_option_length_one),
		cmocka_unit_test(ipv4_option_past_header),
		cmocka_unit_test(ipv4_option_missing_length_byte),
		cmocka_unit_test(ipv6_header_short),
		cmocka_unit_test(ipv6_payload_length_past_buffer),
		cmocka_unit_test(ipv6_jumbogram_refused),
		cmocka_unit_test(ipv6_ext_header_truncated),
		cmocka_unit_test(ipv6_ext_chain_too_long),
		cmocka_unit_test(nonfirst_fragment),
		cmocka_unit_test(ipv6_nonfirst_fragment),
		cmocka_unit_test(first_fragment_tcp_header_cut),
		cmocka_unit_test(first_fragment_tcp_options_cut),
		cmocka_unit_test(ipv6_first_fragment_udp_cut),
		cmocka_unit_test(tcp_header_short),
		cmocka_unit_test(tcp_doff_below_5),
		cmocka_unit_test(tcp_doff_past_end),
		cmocka_unit_test(tcp_option_length_zero),
		cmocka_unit_test(tcp_option_length_one),
		cmocka_unit_test(tcp_option_past_end),
		cmocka_unit_test(tcp_option_missing_length_byte),
		cmocka_unit_test(tcp_flags_invalid),
		cmocka_unit_test(udp_header_short),
		cmocka_unit_test(udp_length_below_8),
		cmocka_unit_test(udp_length_past_end),
		cmocka_unit_test(icmp_header_short),
		cmocka_unit_test(icmpv6_header_short),
		cmocka_unit_test(icmp_error_quote_truncated),
		cmocka_unit_test(icmp_error_quote_l4_truncated),
		cmocka_unit_test(icmp_error_quote_ihl_bad),
		cmocka_unit_test(icmp_error_quote_nonfirst_fragment),
		cmocka_unit_test(icmp_error_quoting_ipv6),
		cmocka_unit_test(icmpv6_error_quoting_ipv4),
		cmocka_unit_test(icmp_error_quoting_icmp_error),
		cmocka_unit_test(icmpv6_error_quoting_icmpv6_error),
		cmocka_unit_test(icmpv6_error_quote_ext_truncated),
		cmocka_unit_test(icmpv6_error_quote_truncated),
		/* L2 */
		cmocka_unit_test(l2_ethernet),
		cmocka_unit_test(l2_ethernet_short),
		cmocka_unit_test(l2_ethernet_not_ip),
		cmocka_unit_test(l2_raw_ipv4_ipv6),
		cmocka_unit_test(l2_linux_sll),
		cmocka_unit_test(l2_linux_sll2),
		cmocka_unit_test(l2_null_loop_both_byte_orders),
		cmocka_unit_test(l2_unknown_dlt),
		/* robustness */
		cmocka_unit_test(truncations_and_mutations_never_read_out_of_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
