/*
 * reject.c - build and send the answer of a reject rule (see reject.h).
 * Checksums are computed here (raw sockets with the header included send
 * the bytes as they are, apart from the IPv4 header checksum).
 */
#include "reject.h"

#include "csum.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int reject_open(struct rejector *r)
{
	r->fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r->fd4 < 0)
		return -errno;
	r->fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r->fd6 < 0) {
		int e = -errno;
		close(r->fd4);
		r->fd4 = -1;
		return e;
	}
	return 0;
}

void reject_close(struct rejector *r)
{
	if (r->fd4 >= 0)
		close(r->fd4);
	if (r->fd6 >= 0)
		close(r->fd6);
	r->fd4 = r->fd6 = -1;
}

/* IP header from the packet's destination back to its source. */
static size_t ip_back(const struct pkt *p, uint8_t *b, uint8_t proto,
		      size_t l4len)
{
	if (p->family == 4) {
		memset(b, 0, 20);
		b[0] = 0x45;
		put16(b + 2, (uint16_t)(20 + l4len));
		b[8] = 64;
		b[9] = proto;
		memcpy(b + 12, p->dst, 4);
		memcpy(b + 16, p->src, 4);
		put16(b + 10, csum_fold(csum_add(0, b, 20)));
		return 20;
	}
	memset(b, 0, 40);
	b[0] = 0x60;
	put16(b + 4, (uint16_t)l4len);
	b[6] = proto;
	b[7] = 64;
	memcpy(b + 8, p->dst, 16);
	memcpy(b + 24, p->src, 16);
	return 40;
}

size_t reject_build(const struct pkt *p, uint8_t *buf, size_t size)
{
	if (size < 1280)
		return 0;
	if (p->icmp_kind == PKT_ICMP_ERROR)
		return 0;
	if (p->proto == PKT_PROTO_TCP) {
		if (p->tcp_flags & PKT_TCP_RST)
			return 0;
		size_t h = ip_back(p, buf, PKT_PROTO_TCP, 20);
		uint8_t *t = buf + h;
		memset(t, 0, 20);
		put16(t, p->dport);
		put16(t + 2, p->sport);
		if (p->tcp_flags & PKT_TCP_ACK) {
			/* RFC 793: a reset answering an ACK takes its number */
			put32(t + 4, p->tcp_ack);
			t[13] = PKT_TCP_RST;
		} else {
			uint32_t len = p->payload_len +
				       !!(p->tcp_flags & PKT_TCP_SYN) +
				       !!(p->tcp_flags & PKT_TCP_FIN);
			put32(t + 8, p->tcp_seq + len);
			t[13] = PKT_TCP_RST | PKT_TCP_ACK;
		}
		t[12] = 5 << 4;
		put16(t + 16, l4_csum(p->family, buf + (p->family == 4 ? 12 : 8),
				      buf + (p->family == 4 ? 16 : 24),
				      PKT_PROTO_TCP, t, 20));
		return h + 20;
	}
	/* ICMP unreachable, administratively prohibited, quoting as much of
	 * the packet as fits the minimum MTU. */
	size_t hlen = p->family == 4 ? 20 : 40;
	size_t quote = p->len;
	size_t maxq = (p->family == 4 ? 576 : 1280) - hlen - 8;
	if (quote > maxq)
		quote = maxq;
	uint8_t proto = p->family == 4 ? PKT_PROTO_ICMP : PKT_PROTO_ICMPV6;
	size_t h = ip_back(p, buf, proto, 8 + quote);
	uint8_t *c = buf + h;
	memset(c, 0, 8);
	c[0] = p->family == 4 ? 3 : 1;
	c[1] = p->family == 4 ? 13 : 1;
	memcpy(c + 8, p->data, quote);
	uint16_t ck = p->family == 4
			      ? csum_fold(csum_add(0, c, 8 + quote))
			      : l4_csum(6, buf + 8, buf + 24, proto, c, 8 + quote);
	put16(c + 2, ck);
	return h + 8 + quote;
}

int reject_send(struct rejector *r, const struct pkt *p)
{
	uint8_t buf[1500];
	size_t n = reject_build(p, buf, sizeof(buf));
	if (!n)
		return -ENOMSG;
	ssize_t s;
	if (p->family == 4) {
		struct sockaddr_in to = {.sin_family = AF_INET};
		memcpy(&to.sin_addr, p->src, 4);
		s = sendto(r->fd4, buf, n, MSG_DONTWAIT, (struct sockaddr *)&to,
			   sizeof(to));
	} else {
		struct sockaddr_in6 to = {.sin6_family = AF_INET6};
		memcpy(&to.sin6_addr, p->src, 16);
		s = sendto(r->fd6, buf, n, MSG_DONTWAIT, (struct sockaddr *)&to,
			   sizeof(to));
	}
	return s < 0 ? -errno : 0;
}

int rejector_send_raw(struct rejector *r, uint8_t family, const uint8_t *dst,
		      const uint8_t *buf, size_t len)
{
	ssize_t n;
	if (family == 4) {
		struct sockaddr_in to = {.sin_family = AF_INET};
		memcpy(&to.sin_addr, dst, 4);
		n = sendto(r->fd4, buf, len, MSG_DONTWAIT, (struct sockaddr *)&to,
			   sizeof(to));
	} else {
		struct sockaddr_in6 to = {.sin6_family = AF_INET6};
		memcpy(&to.sin6_addr, dst, 16);
		n = sendto(r->fd6, buf, len, MSG_DONTWAIT, (struct sockaddr *)&to,
			   sizeof(to));
	}
	return n < 0 ? -errno : 0;
}
