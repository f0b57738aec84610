/*
 * pktbuild.h - test-only builders of raw IPv4/IPv6 packets (TCP, UDP,
 * ICMP/ICMPv6 echo and errors, other protocols), so behaviour tests drive
 * the real parser and pipeline with real bytes. Checksums are left zero:
 * the data path does not verify them (the kernel did).
 */
#ifndef TANDEM_TEST_PKTBUILD_H
#define TANDEM_TEST_PKTBUILD_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

enum { PB_FIN = 1, PB_SYN = 2, PB_RST = 4, PB_PSH = 8, PB_ACK = 16 };

static inline int pb_family(const char *a)
{
	return strchr(a, ':') ? 6 : 4;
}

/* IP header for `l4len` bytes of `proto`; returns header length. */
static inline size_t pb_ip(uint8_t *b, const char *src, const char *dst,
			   uint8_t proto, size_t l4len)
{
	if (pb_family(src) == 4) {
		memset(b, 0, 20);
		b[0] = 0x45;
		uint16_t tot = htons((uint16_t)(20 + l4len));
		memcpy(b + 2, &tot, 2);
		b[8] = 64;
		b[9] = proto;
		inet_pton(AF_INET, src, b + 12);
		inet_pton(AF_INET, dst, b + 16);
		return 20;
	}
	memset(b, 0, 40);
	b[0] = 0x60;
	uint16_t pl = htons((uint16_t)l4len);
	memcpy(b + 4, &pl, 2);
	b[6] = proto;
	b[7] = 64;
	inet_pton(AF_INET6, src, b + 8);
	inet_pton(AF_INET6, dst, b + 24);
	return 40;
}

static inline size_t pb_tcp(uint8_t *b, const char *src, const char *dst,
			    uint16_t sport, uint16_t dport, uint8_t flags,
			    uint32_t seq, uint32_t ack, uint16_t win,
			    int wscale, uint16_t payload)
{
	size_t optlen = wscale >= 0 ? 4 : 0, l4 = 20 + optlen + payload;
	size_t h = pb_ip(b, src, dst, 6, l4);
	uint8_t *t = b + h;
	memset(t, 0, l4);
	uint16_t v = htons(sport);
	memcpy(t, &v, 2);
	v = htons(dport);
	memcpy(t + 2, &v, 2);
	uint32_t w = htonl(seq);
	memcpy(t + 4, &w, 4);
	w = htonl(ack);
	memcpy(t + 8, &w, 4);
	t[12] = (uint8_t)(((20 + optlen) / 4) << 4);
	t[13] = flags;
	v = htons(win);
	memcpy(t + 14, &v, 2);
	if (wscale >= 0) {
		t[20] = 1; /* NOP */
		t[21] = 3;
		t[22] = 3;
		t[23] = (uint8_t)wscale;
	}
	return h + l4;
}

static inline size_t pb_udp(uint8_t *b, const char *src, const char *dst,
			    uint16_t sport, uint16_t dport, uint16_t payload)
{
	size_t l4 = 8u + payload, h = pb_ip(b, src, dst, 17, l4);
	uint8_t *u = b + h;
	memset(u, 0, l4);
	uint16_t v = htons(sport);
	memcpy(u, &v, 2);
	v = htons(dport);
	memcpy(u + 2, &v, 2);
	v = htons((uint16_t)l4);
	memcpy(u + 4, &v, 2);
	return h + l4;
}

/* ICMP (v4) or ICMPv6 message with an 4-byte rest-of-header and body. */
static inline size_t pb_icmp(uint8_t *b, const char *src, const char *dst,
			     uint8_t type, uint8_t code, uint16_t id,
			     uint16_t seq, const uint8_t *body, size_t blen)
{
	int v6 = pb_family(src) == 6;
	size_t l4 = 8 + blen, h = pb_ip(b, src, dst, v6 ? 58 : 1, l4);
	uint8_t *c = b + h;
	memset(c, 0, 8);
	c[0] = type;
	c[1] = code;
	uint16_t v = htons(id);
	memcpy(c + 4, &v, 2);
	v = htons(seq);
	memcpy(c + 6, &v, 2);
	if (blen)
		memcpy(c + 8, body, blen);
	return h + l4;
}

static inline size_t pb_echo(uint8_t *b, const char *src, const char *dst,
			     int reply, uint16_t id, uint16_t seq)
{
	int v6 = pb_family(src) == 6;
	uint8_t type = v6 ? (reply ? 129 : 128) : (reply ? 0 : 8);
	return pb_icmp(b, src, dst, type, 0, id, seq, NULL, 0);
}

/* Destination unreachable quoting `quoted` (its first 28/48 bytes). */
static inline size_t pb_unreach(uint8_t *b, const char *src, const char *dst,
				const uint8_t *quoted, size_t qlen)
{
	int v6 = pb_family(src) == 6;
	size_t max = v6 ? 48 : 28;
	if (qlen > max)
		qlen = max;
	return pb_icmp(b, src, dst, v6 ? 1 : 3, v6 ? 4 : 3, 0, 0, quoted, qlen);
}

static inline size_t pb_proto(uint8_t *b, const char *src, const char *dst,
			      uint8_t proto, uint16_t payload)
{
	size_t h = pb_ip(b, src, dst, proto, payload);
	memset(b + h, 0, payload);
	return h + payload;
}

#endif
