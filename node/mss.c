/*
 * mss.c - MSS clamping and the L4 checksum check (see mss.h).
 *
 * Must never: allocate, or touch anything but the packet it is given.
 */
#include "mss.h"

#include "csum.h"

uint16_t mss_over(const struct pkt *p, uint16_t clamp)
{
	if (!clamp || p->proto != PKT_PROTO_TCP ||
	    !(p->tcp_flags & PKT_TCP_SYN) || !p->tcp_mss_opt)
		return 0;
	const uint8_t *o = p->data + p->l4_off + p->tcp_mss_opt;
	uint16_t cur = (uint16_t)(o[2] << 8 | o[3]);
	return cur > clamp ? clamp : 0;
}

/* One's complement 16-bit update of a checksum for a word old -> new
 * (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')). */
static uint16_t csum_replace16(uint16_t hc, uint16_t old, uint16_t new)
{
	uint32_t s = (uint16_t)~hc + (uint32_t)(uint16_t)~old + new;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint16_t rd16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

void mss_rewrite(uint8_t *l3, const struct pkt *p, uint16_t mss,
		 bool csum_partial)
{
	uint8_t *t = l3 + p->l4_off;
	uint32_t l4len = p->len - p->l4_off;
	unsigned at = (unsigned)p->tcp_mss_opt + 2; /* the value's offset */
	if (csum_partial) {
		put16(t + at, mss);
		put16(t + 16, 0);
		put16(t + 16, l4_csum(p->family, p->src, p->dst, PKT_PROTO_TCP,
				      t, l4len));
		return;
	}
	/* the words of the TCP header (16-bit aligned from its start) that
	 * the two value bytes fall in: one, or two when the option sits at
	 * an odd offset */
	unsigned w0 = at & ~1u, w1 = (at + 2 + 1) & ~1u;
	uint16_t old[2], hc = rd16(t + 16);
	for (unsigned w = w0, i = 0; w < w1; w += 2, i++)
		old[i] = rd16(t + w);
	put16(t + at, mss);
	for (unsigned w = w0, i = 0; w < w1; w += 2, i++)
		hc = csum_replace16(hc, old[i], rd16(t + w));
	put16(t + 16, hc);
}

bool l4_csum_ok(const uint8_t *l3, const struct pkt *p)
{
	if ((p->proto != PKT_PROTO_TCP && p->proto != PKT_PROTO_UDP) ||
	    p->first_frag)
		return true;
	const uint8_t *t = l3 + p->l4_off;
	uint32_t l4len = p->len - p->l4_off;
	/* a UDP checksum of 0 over IPv4 means none was computed */
	if (p->proto == PKT_PROTO_UDP && p->family == 4 && rd16(t + 6) == 0)
		return true;
	/* summing the segment with its checksum in place gives 0 */
	return l4_csum(p->family, p->src, p->dst, p->proto, t, l4len) == 0;
}
