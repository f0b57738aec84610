/*
 * node_link.h - syncd's two connections to its tandem-node's ctl socket
 * (unix, 4-byte big-endian length + CtlRequest / CtlReply).
 *
 *  - the subscription: SYNC_SUBSCRIBE, then the node's SyncStream frames
 *    (bulk_begin, CREATE per local session, bulk_end, live events). A
 *    SYNC_BULK asking for another dump goes on this connection too, so its
 *    CtlReply arrives between stream frames: a frame whose first byte is
 *    0x08 (field 1, varint: CtlReply.seq, always packed first) is a reply;
 *    a SyncStream never starts with it (its field 1 is a message).
 *  - the command connection: every other request (SYNC_APPLY, ROLE_SET,
 *    PROMOTE, STATUS, CONFIG_SHOW, CONFIG_PUSH, SESSIONS, SYNC_DIGEST),
 *    any number in flight, replies matched by seq (they may come out of
 *    order) and given a deadline.
 *
 * Both are opened together; the link is up once the subscription was
 * accepted and the command connection is open. Losing either (node
 * restart), a reply overdue, or a bad frame closes both, fails pending
 * requests with an error, and retries every 250 ms.
 *
 * Runs on the loop's thread only. Must never: call a reply callback twice,
 * or keep a pointer into a frame after its callback returned (frames are
 * unpacked into an arena that is reset after each one).
 */
#ifndef TANDEM_SYNCD_NODE_LINK_H
#define TANDEM_SYNCD_NODE_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "tandem.pb-c.h"

#define NODE_FRAME_MAX (64u << 20)

struct node_link_ops {
	void (*up)(void *arg);
	void (*down)(void *arg);
	/* one packed SyncStream frame, well-formed at its top level (its
	 * events are read in place: wire.h); valid during the call only */
	void (*stream)(void *arg, const uint8_t *d, size_t n);
};

/* err: 0 and rep (valid during the call only), or -errno (-ECONNRESET,
 * -ETIMEDOUT, -ECANCELED when closing, -EPROTO). */
typedef void (*node_reply_cb)(void *arg, int err, const Tandem__CtlReply *rep);

struct node_link_stats {
	uint64_t connects, disconnects, requests, replies, timeouts,
		 stream_frames, bad_frames;
};

struct node_link;

int node_link_new(uv_loop_t *loop, const char *path, uint32_t timeout_ms,
		  const struct node_link_ops *ops, void *arg,
		  struct node_link **ret);
void node_link_start(struct node_link *nl);
/* Fail pending requests (-ECANCELED), close the handles; free afterwards,
 * once the loop ran out. */
void node_link_close(struct node_link *nl);
void node_link_free(struct node_link *nl);     /* accepts NULL */

bool node_link_up(const struct node_link *nl);

/* Send req (its seq is set here) on the command connection. 0: cb will be
 * called exactly once; -ENOTCONN / -ENOMEM: it will not. */
int node_link_request(struct node_link *nl, Tandem__CtlRequest *req,
		      node_reply_cb cb, void *arg);
/* The same for a request packed by the caller (wire.h), whose seq field
 * holds the value node_link_next_seq() returned just before. */
uint64_t node_link_next_seq(struct node_link *nl);
int node_link_request_packed(struct node_link *nl, uint64_t seq,
			     const uint8_t *data, size_t len, node_reply_cb cb,
			     void *arg);
/* SYNC_BULK on the subscription: the node sends another dump. */
int node_link_bulk(struct node_link *nl);

size_t node_link_pending(const struct node_link *nl);
const struct node_link_stats *node_link_stats(const struct node_link *nl);

#endif
