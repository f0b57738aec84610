/*
 * sync_msg.c - frame header, HMAC tag and replay window (see sync_msg.h).
 *
 * Must never: read beyond the given length, parse a payload, compare a tag
 * with anything but libsodium's constant-time verify.
 */
#include "sync_msg.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

_Static_assert(crypto_auth_hmacsha256_BYTES == SYNC_TAG_LEN, "tag size");
_Static_assert(crypto_auth_hmacsha256_KEYBYTES == SYNC_KEY_LEN, "key size");

static const char *const refusal_names[SR_MAX] = {
	[SR_OK] = "ok",
#define SR_NAME(n, s) [SR_##n] = s,
	SYNC_REFUSALS(SR_NAME)
#undef SR_NAME
};

const char *sync_refusal_name(enum sync_refusal r)
{
	return (unsigned)r < SR_MAX ? refusal_names[r] : "?";
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sync_key_from_hex(const char *hex, struct sync_key *ret)
{
	if (!hex || strlen(hex) != 2 * SYNC_KEY_LEN)
		return -EINVAL;
	struct sync_key k;
	for (unsigned i = 0; i < SYNC_KEY_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		k.k[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret = k;
	sodium_memzero(&k, sizeof(k));
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void sync_hdr_pack(const struct sync_hdr *h, uint8_t out[SYNC_HDR_LEN])
{
	memcpy(out, SYNC_MAGIC, 4);
	put16(out + 4, h->version);
	put32(out + 6, h->cluster);
	put16(out + 10, h->node);
	put64(out + 12, h->epoch);
	put64(out + 20, h->seq);
	put32(out + 28, h->len);
}

enum sync_refusal sync_hdr_check(const uint8_t *buf, uint32_t cluster,
				 uint32_t max_payload, struct sync_hdr *ret)
{
	if (memcmp(buf, SYNC_MAGIC, 4))
		return SR_BAD_MAGIC;
	struct sync_hdr h = {
		.version = get16(buf + 4),
		.cluster = get32(buf + 6),
		.node = get16(buf + 10),
		.epoch = get64(buf + 12),
		.seq = get64(buf + 20),
		.len = get32(buf + 28),
	};
	if (h.version != SYNC_VERSION)
		return SR_BAD_VERSION;
	if (h.cluster != cluster)
		return SR_WRONG_CLUSTER;
	if (h.len > max_payload)
		return SR_OVERSIZED;
	*ret = h;
	return SR_OK;
}

void sync_frame_seal(const struct sync_key *key, const struct sync_hdr *h,
		     uint8_t *buf)
{
	sync_hdr_pack(h, buf);
	crypto_auth_hmacsha256(buf + SYNC_HDR_LEN + h->len, buf,
			       SYNC_HDR_LEN + (unsigned long long)h->len, key->k);
}

enum sync_refusal sync_frame_open(const struct sync_key *key, uint32_t cluster,
				  uint32_t max_payload, const uint8_t *buf,
				  size_t n, struct sync_hdr *ret)
{
	if (n < 4)
		return SR_TRUNCATED;
	if (memcmp(buf, SYNC_MAGIC, 4))
		return SR_BAD_MAGIC;
	if (n < SYNC_HDR_LEN)
		return SR_TRUNCATED;
	struct sync_hdr h;
	enum sync_refusal r = sync_hdr_check(buf, cluster, max_payload, &h);
	if (r != SR_OK)
		return r;
	size_t want = sync_frame_len(&h);
	if (n < want)
		return SR_TRUNCATED;
	if (n > want)
		return SR_BAD_LENGTH;
	if (crypto_auth_hmacsha256_verify(buf + SYNC_HDR_LEN + h.len, buf,
					  SYNC_HDR_LEN + (unsigned long long)h.len,
					  key->k) != 0)
		return SR_BAD_TAG;
	*ret = h;
	return SR_OK;
}

enum sync_refusal replay_check(const struct replay_win *w, uint64_t epoch,
			       uint64_t seq, bool strict)
{
	if (!w->any || epoch > w->epoch)
		return SR_OK;
	if (epoch < w->epoch)
		return SR_STALE_EPOCH;
	if (seq > w->top)
		return SR_OK;
	uint64_t behind = w->top - seq;
	if (behind < SYNC_REPLAY_WINDOW && (w->seen >> behind) & 1)
		return SR_REPLAYED;
	if (strict || behind >= SYNC_REPLAY_WINDOW)
		return SR_BACKWARDS;
	return SR_OK;
}

void replay_commit(struct replay_win *w, uint64_t epoch, uint64_t seq)
{
	if (!w->any || epoch > w->epoch) {
		w->any = true;
		w->epoch = epoch;
		w->top = seq;
		w->seen = 1;
		return;
	}
	if (seq > w->top) {
		uint64_t shift = seq - w->top;
		w->seen = shift >= SYNC_REPLAY_WINDOW ? 0 : w->seen << shift;
		w->seen |= 1;
		w->top = seq;
		return;
	}
	uint64_t behind = w->top - seq;
	if (behind < SYNC_REPLAY_WINDOW)
		w->seen |= UINT64_C(1) << behind;
}
