/*
 * sync_msg.h - the frame between two tandem-syncd: header, HMAC tag,
 * replay window, and the reasons a frame is refused.
 *
 * A frame (big endian, docs/syncd.md):
 *
 *   0  magic "TDMS"      4
 *   4  version           2   (SYNC_VERSION)
 *   6  cluster id        4
 *  10  node id           2   (sender)
 *  12  epoch             8   (sender's role epoch)
 *  20  sequence          8   (sender's, per path, strictly increasing)
 *  28  payload length    4   (<= the configured maximum)
 *  32  payload           length bytes: one PeerMsg (proto/tandem.proto)
 *  ..  tag              32   HMAC-SHA256 over header and payload
 *
 * Pure functions: no I/O, no clock, no allocation. A frame is checked in
 * this order and the first failure is the reason: magic, version, cluster,
 * length (oversized), completeness (truncated / bad-length), tag (constant
 * time, libsodium), then the caller's sender and replay checks. Nothing
 * here parses the payload: that happens only after the tag is good.
 *
 * Must never: read past the bytes it is given, parse a payload, or change
 * a replay window except through replay_commit() after a frame passed
 * every check.
 */
#ifndef TANDEM_SYNC_MSG_H
#define TANDEM_SYNC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYNC_MAGIC "TDMS"
#define SYNC_VERSION 1
#define SYNC_HDR_LEN 32
#define SYNC_TAG_LEN 32
#define SYNC_KEY_LEN 32
#define SYNC_OVERHEAD (SYNC_HDR_LEN + SYNC_TAG_LEN)
#define SYNC_REPLAY_WINDOW 64

/* Every reason a frame is refused: the enum, names and counters come from
 * this one list. */
#define SYNC_REFUSALS(X)                                                   \
	X(BAD_MAGIC, "bad-magic")         /* not a Tandem frame */          \
	X(BAD_VERSION, "bad-version")     /* another frame version */       \
	X(WRONG_CLUSTER, "wrong-cluster") /* another cluster id */          \
	X(OVERSIZED, "oversized")         /* length above the maximum */    \
	X(TRUNCATED, "truncated")         /* fewer bytes than announced */  \
	X(BAD_LENGTH, "bad-length")       /* datagram longer than framed */ \
	X(BAD_TAG, "bad-tag")             /* HMAC does not verify */        \
	X(UNKNOWN_NODE, "unknown-node")   /* sender is not a peer */        \
	X(STALE_EPOCH, "stale-epoch")     /* epoch below one seen */        \
	X(REPLAYED, "replayed")           /* sequence already accepted */   \
	X(BACKWARDS, "backwards")         /* sequence behind the window */  \
	X(BAD_PAYLOAD, "bad-payload")     /* tag good, PeerMsg unparsable */

enum sync_refusal {
	SR_OK = 0,
#define SR_ENUM(n, s) SR_##n,
	SYNC_REFUSALS(SR_ENUM)
#undef SR_ENUM
	SR_MAX
};

const char *sync_refusal_name(enum sync_refusal r);

struct sync_hdr {
	uint16_t version;
	uint16_t node;
	uint32_t cluster;
	uint64_t epoch;
	uint64_t seq;
	uint32_t len;          /* payload bytes */
};

struct sync_key {
	uint8_t k[SYNC_KEY_LEN];
};

/* Parse "hex" (exactly 2 * SYNC_KEY_LEN hex digits). */
int sync_key_from_hex(const char *hex, struct sync_key *ret);

/* Write the 32 header bytes. */
void sync_hdr_pack(const struct sync_hdr *h, uint8_t out[SYNC_HDR_LEN]);

/* Check the header at buf (at least SYNC_HDR_LEN bytes): magic, version,
 * cluster, length against max_payload. SR_OK fills *ret. */
enum sync_refusal sync_hdr_check(const uint8_t *buf, uint32_t cluster,
				 uint32_t max_payload, struct sync_hdr *ret);

/* Whole frame length of a checked header. */
static inline size_t sync_frame_len(const struct sync_hdr *h)
{
	return SYNC_OVERHEAD + (size_t)h->len;
}

/* buf holds SYNC_HDR_LEN + h->len + SYNC_TAG_LEN bytes with the payload at
 * buf + SYNC_HDR_LEN: write the header and the tag around it. */
void sync_frame_seal(const struct sync_key *key, const struct sync_hdr *h,
		     uint8_t *buf);

/* A complete frame of exactly n bytes (a datagram, or a stream frame once
 * it is all buffered): every check up to the tag. SR_OK fills *ret; the
 * payload is buf + SYNC_HDR_LEN, ret->len bytes. */
enum sync_refusal sync_frame_open(const struct sync_key *key, uint32_t cluster,
				  uint32_t max_payload, const uint8_t *buf,
				  size_t n, struct sync_hdr *ret);

/* Replay state of one sender on one path. */
struct replay_win {
	uint64_t epoch;
	uint64_t top;          /* highest accepted sequence in epoch */
	uint64_t seen;         /* bit i: top - i accepted (bit 0 = top) */
	bool any;              /* something was accepted */
};

/* May (epoch, seq) be accepted? strict: nothing below top (an ordered
 * stream); otherwise up to SYNC_REPLAY_WINDOW - 1 behind top if not yet
 * seen (datagrams may be reordered). A higher epoch starts a new window. */
enum sync_refusal replay_check(const struct replay_win *w, uint64_t epoch,
			       uint64_t seq, bool strict);
/* Record (epoch, seq) after replay_check() said SR_OK and every other
 * check passed. */
void replay_commit(struct replay_win *w, uint64_t epoch, uint64_t seq);

#endif
