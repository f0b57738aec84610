/*
 * sess_wire.c - replicated sessions from the wire (see sess_wire.h).
 */
#include "sess_wire.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "pbwire.h"

Tandem__SessionState sess_state_to_wire(uint8_t st)
{
	switch ((enum sess_state)st) {
	case SS_TCP_SYN_SENT: return TANDEM__SESSION_STATE__SS_TCP_SYN_SENT;
	case SS_TCP_SYN_RECV: return TANDEM__SESSION_STATE__SS_TCP_SYN_RECV;
	case SS_TCP_ESTABLISHED: return TANDEM__SESSION_STATE__SS_TCP_ESTABLISHED;
	case SS_TCP_WAIT: return TANDEM__SESSION_STATE__SS_TCP_WAIT;
	case SS_TCP_TIME_WAIT: return TANDEM__SESSION_STATE__SS_TCP_TIME_WAIT;
	case SS_TCP_CLOSED: return TANDEM__SESSION_STATE__SS_TCP_CLOSED;
	case SS_UDP: return TANDEM__SESSION_STATE__SS_UDP;
	case SS_UDP_REPLIED: return TANDEM__SESSION_STATE__SS_UDP_REPLIED;
	case SS_ICMP: return TANDEM__SESSION_STATE__SS_ICMP;
	case SS_OTHER: return TANDEM__SESSION_STATE__SS_OTHER;
	default: return TANDEM__SESSION_STATE__SS_UNKNOWN;
	}
}

int sess_state_from_wire(int w)
{
	for (int s = 1; s < SS_MAX; s++)
		if ((int)sess_state_to_wire((uint8_t)s) == w)
			return s;
	return -1;
}

uint8_t sync_type_from_wire(unsigned t)
{
	switch (t) {
	case TANDEM__SESSION_EVENT__TYPE__CREATE: return SYNC_CREATE;
	case TANDEM__SESSION_EVENT__TYPE__STATE: return SYNC_STATE;
	case TANDEM__SESSION_EVENT__TYPE__REFRESH: return SYNC_REFRESH;
	case TANDEM__SESSION_EVENT__TYPE__EXPIRE: return SYNC_EXPIRE;
	default: return SYNC_DELETE;
	}
}

/* ---- reading in place ---------------------------------------------------- */

/* Session field numbers (proto/tandem.proto) */
enum { S_ID = 1, S_KEY, S_STATE, S_FLAGS, S_RULE, S_RULE_NAME, S_MODE,
       S_PKTS0, S_PKTS1, S_BYTES0, S_BYTES1, S_REMAINING, S_AGE, S_IFACE0,
       S_IFACE1, S_WSCALE, S_TCP0, S_TCP1 };
/* the fields protobuf-c requires in a Session */
#define S_REQUIRED (1u << S_ID | 1u << S_KEY | 1u << S_STATE | 1u << S_FLAGS | \
		    1u << S_RULE | 1u << S_MODE | 1u << S_PKTS0 | 1u << S_PKTS1 | \
		    1u << S_BYTES0 | 1u << S_BYTES1 | 1u << S_REMAINING)

/* The fields of a message read in place: field f < nv whose bit is set in
 * varint_mask (a varint, into v[f]) or len_mask (length-delimited, into
 * bytes[f], blen[f]), the last occurrence of each; bit f of *seen for each
 * one found. Other fields are skipped, as protobuf-c skips unknown ones; a
 * known field with another wire type is -EPROTO, like a malformed one. */
static int read_fields(const uint8_t *d, size_t n, unsigned nv,
		       unsigned varint_mask, unsigned len_mask, uint64_t *v,
		       const uint8_t **bytes, size_t *blen, unsigned *seen)
{
	size_t pos = 0;
	*seen = 0;
	while (pos < n) {
		unsigned f, wt;
		uint64_t x = 0;
		const uint8_t *p = NULL;
		size_t l = 0;
		if (pb_next_field(d, n, &pos, &f, &wt, &x, &p, &l) < 0)
			return -EPROTO;
		if (f >= nv || !((varint_mask | len_mask) >> f & 1))
			continue;
		if ((varint_mask >> f & 1) ? wt != PB_VARINT : wt != PB_LEN)
			return -EPROTO;
		if (wt == PB_VARINT)
			v[f] = x;
		else {
			bytes[f] = p;
			blen[f] = l;
		}
		*seen |= 1u << f;
	}
	return 0;
}

/* a small message whose fields are all required */
static int read_required(const uint8_t *d, size_t n, unsigned nv,
			 unsigned varint_mask, unsigned len_mask, uint64_t *v,
			 const uint8_t **bytes, size_t *blen)
{
	unsigned seen;
	int r = read_fields(d, n, nv, varint_mask, len_mask, v, bytes, blen, &seen);
	if (r < 0)
		return r;
	return seen == (varint_mask | len_mask) ? 0 : -EINVAL;
}

/* an interface name (not NUL-terminated on the wire) to its id; 0 when
 * this node has no such interface */
static uint8_t iface_of(const struct tandem_config *cfg, const uint8_t *p,
			size_t l)
{
	char name[64];
	if (l >= sizeof(name))
		return 0;
	memcpy(name, p, l);
	name[l] = 0;
	return config_iface_id(cfg, name);
}

int peer_rec_from_bytes(const uint8_t *d, size_t n,
			const struct tandem_config *cfg, uint64_t now_ms,
			struct peer_rec *out)
{
	uint64_t v[S_TCP1 + 1] = {0};
	const uint8_t *b[S_TCP1 + 1] = {0};
	size_t bl[S_TCP1 + 1] = {0};
	const unsigned lens = 1u << S_KEY | 1u << S_RULE_NAME | 1u << S_IFACE0 |
			      1u << S_IFACE1 | 1u << S_TCP0 | 1u << S_TCP1;
	/* every field up to tcp1 is known; shard, timeout_s and ka_next are
	 * not used here and skipped like unknown ones */
	const unsigned varints = ((1u << (S_TCP1 + 1)) - 2) & ~lens;
	unsigned seen;
	if (read_fields(d, n, S_TCP1 + 1, varints, lens, v, b, bl, &seen) < 0)
		return -EPROTO;
	if ((seen & S_REQUIRED) != S_REQUIRED)
		return -EINVAL;

	/* SessionKey {family 1, proto 2, addr0 3, addr1 4, port0 5, port1 6, zone 7} */
	uint64_t kv[8] = {0};
	const uint8_t *kb[8] = {0};
	size_t kl[8] = {0};
	int r = read_required(b[S_KEY], bl[S_KEY], 8,
			      1u << 1 | 1u << 2 | 1u << 5 | 1u << 6 | 1u << 7,
			      1u << 3 | 1u << 4, kv, kb, kl);
	if (r < 0)
		return r;
	uint32_t family = (uint32_t)kv[1], proto = (uint32_t)kv[2];
	uint32_t port0 = (uint32_t)kv[5], port1 = (uint32_t)kv[6], zone = (uint32_t)kv[7];
	if (kl[3] != 16 || kl[4] != 16 || (family != 4 && family != 6) ||
	    proto > 255 || port0 > 65535 || port1 > 65535 || zone > 65535)
		return -EINVAL;
	/* TcpDir {end 1, maxend 2, maxwin 3, maxack 4 (optional)} */
	uint64_t tv[2][5] = {{0}};
	unsigned tseen[2] = {0};
	for (unsigned i = 0; i < 2; i++) {
		unsigned f = i ? S_TCP1 : S_TCP0;
		if (!(seen >> f & 1))
			continue;
		r = read_fields(b[f], bl[f], 5, 0x1e, 0, tv[i], NULL, NULL,
				&tseen[i]);
		if (r < 0)
			return r;
		if ((tseen[i] & 0x0e) != 0x0e)
			return -EINVAL;
	}
	/* the enum keeps its 32 bits (a negative value arrives as 10 bytes) */
	int st = sess_state_from_wire((int)(int32_t)(uint32_t)v[S_STATE]);
	uint32_t flags = (uint32_t)v[S_FLAGS], rule = (uint32_t)v[S_RULE];
	uint32_t mode = (uint32_t)v[S_MODE];
	if (st < 0 || mode > 3 || flags > 255 || rule >= cfg->n_rules)
		return -EINVAL;

	memset(out, 0, sizeof(*out));
	struct sess *s = &out->s;
	memcpy(s->key.addr[0], kb[3], 16);
	memcpy(s->key.addr[1], kb[4], 16);
	s->key.port[0] = (uint16_t)port0;
	s->key.port[1] = (uint16_t)port1;
	s->key.zone = (uint16_t)zone;
	s->key.proto = (uint8_t)proto;
	s->key.family = (uint8_t)family;
	s->id = v[S_ID];
	s->state = (uint8_t)st;
	s->flags = (uint8_t)flags;
	s->rule = (uint16_t)rule;
	s->mode = (uint8_t)mode;
	s->pkts[0] = (uint32_t)v[S_PKTS0];
	s->pkts[1] = (uint32_t)v[S_PKTS1];
	s->bytes[0] = v[S_BYTES0];
	s->bytes[1] = v[S_BYTES1];
	s->wscale = (seen >> S_WSCALE & 1) ? (uint8_t)v[S_WSCALE] : 0;
	s->created = (uint32_t)(now_ms / 1000u) -
		     ((seen >> S_AGE & 1) ? (uint32_t)v[S_AGE] : 0);
	s->iface[0] = (seen >> S_IFACE0 & 1) ? iface_of(cfg, b[S_IFACE0], bl[S_IFACE0]) : 0;
	s->iface[1] = (seen >> S_IFACE1 & 1) ? iface_of(cfg, b[S_IFACE1], bl[S_IFACE1]) : 0;
	for (unsigned i = 0; i < 2; i++)
		if (seen >> (i ? S_TCP1 : S_TCP0) & 1) {
			s->tcp[i].end = (uint32_t)tv[i][1];
			s->tcp[i].maxend = (uint32_t)tv[i][2];
			s->tcp[i].maxwin = (uint32_t)tv[i][3];
			if (tseen[i] >> 4 & 1) {
				s->tcp[i].maxack = (uint32_t)tv[i][4];
				s->tflags |= (uint8_t)(i ? STF_MAXACK1 : STF_MAXACK0);
			}
		}
	out->remaining_ms = (uint32_t)v[S_REMAINING];
	return 0;
}
