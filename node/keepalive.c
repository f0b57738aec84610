/*
 * keepalive.c - build the keepalive probe of a session (see keepalive.h).
 * Pure: the worker sends the bytes through its raw socket; nothing here
 * touches the table.
 */
#include "keepalive.h"

#include <string.h>

#include "csum.h"
#include "pkt.h"

size_t ka_probe_build(const struct sess *s, uint8_t *buf, size_t size,
		      const uint8_t **ret_dst)
{
	if (s->key.proto != PKT_PROTO_TCP || size < 80)
		return 0;
	unsigned init = (s->flags & SF_INIT_SIDE1) ? 1 : 0, resp = !init;
	const uint8_t *src = s->key.addr[resp], *dst = s->key.addr[init];
	size_t h = s->key.family == 4 ? 20 : 40;
	memset(buf, 0, h + 20);
	if (s->key.family == 4) {
		buf[0] = 0x45;
		put16(buf + 2, (uint16_t)(h + 20));
		buf[8] = 64;
		buf[9] = PKT_PROTO_TCP;
		memcpy(buf + 12, src, 4);
		memcpy(buf + 16, dst, 4);
		put16(buf + 10, csum_fold(csum_add(0, buf, 20)));
	} else {
		buf[0] = 0x60;
		put16(buf + 4, 20);
		buf[6] = PKT_PROTO_TCP;
		buf[7] = 64;
		memcpy(buf + 8, src, 16);
		memcpy(buf + 24, dst, 16);
	}
	uint8_t *t = buf + h;
	put16(t, s->key.port[resp]);
	put16(t + 2, s->key.port[init]);
	/* direction 1 = responder: its next sequence number minus one, and
	 * an ack of everything the initiator sent */
	put32(t + 4, s->tcp[1].end - 1);
	put32(t + 8, s->tcp[0].end);
	t[12] = 5 << 4;
	t[13] = PKT_TCP_ACK;
	uint32_t win = s->tcp[1].maxwin;
	unsigned sc = (unsigned)(s->wscale >> 4);
	if (sc != 15 && (s->wscale & 15) != 15)
		win >>= sc;
	put16(t + 14, (uint16_t)(win > 65535 ? 65535 : win));
	put16(t + 16, l4_csum(s->key.family, src, dst, PKT_PROTO_TCP, t, 20));
	*ret_dst = dst;
	return h + 20;
}
