/*
 * ctl_client.h - asynchronous client of a ctl unix socket (tandem-node's
 * CtlRequest/CtlReply, tandem-syncd's SyncdRequest/SyncdReply): frames of a
 * 4-byte big-endian length and one protobuf message (proto/tandem.proto),
 * replies matched by seq (field 1 of every reply type, read straight from
 * the wire, so a late reply is dropped without being unpacked).
 *
 * Connects on the first request and again on the first request after the
 * peer went away (a node restart costs the requests in flight at that
 * moment, nothing more). Each request has a deadline; a late reply is
 * dropped by its seq. Any number of requests may be in flight on the one
 * connection.
 *
 * Callback errors: -ECONNREFUSED / -ENOENT (cannot connect), -ECONNRESET
 * (connection lost before the reply), -ETIMEDOUT, -EPROTO (reply not
 * parsable, frame too large), -ECANCELED (client closing).
 *
 * Must never: call a callback twice, from inside ctl_client_send(), or
 * after ctl_client_close() returned (close calls them first with
 * -ECANCELED), or buffer a frame above CTL_FRAME_MAX.
 */
#ifndef TANDEM_MGMT_CTL_CLIENT_H
#define TANDEM_MGMT_CTL_CLIENT_H

#include <stdint.h>

#include <uv.h>

#include "tandem.pb-c.h"

#define CTL_FRAME_MAX (64u << 20)

struct ctl_client;

/* reply (of the client's reply type) is the callee's when err == 0:
 * protobuf_c_message_free_unpacked(reply, NULL). */
typedef void (*ctl_reply_cb)(void *arg, int err, ProtobufCMessage *reply);

struct ctl_stats {
	uint64_t requests, replies, timeouts, connects, connect_failures,
		 disconnects, bad_frames, bad_replies, late_replies;
};

/* reply_desc: the type of every reply on this socket. */
int ctl_client_new(uv_loop_t *loop, const char *path, uint32_t timeout_ms,
		   const ProtobufCMessageDescriptor *reply_desc,
		   struct ctl_client **ret);
/* Fails what is pending with -ECANCELED, closes the handles; the memory is
 * released once libuv has closed them (run the loop to the end). NULL ok. */
void ctl_client_close(struct ctl_client *c);

/* *seq (the request's seq field) is set here, then req is packed. Returns 0
 * (cb will be called exactly once, never from inside this call) or -errno
 * (-ENOMEM, -EMSGSIZE, -ECONNRESET; cb is not called). */
int ctl_client_send(struct ctl_client *c, ProtobufCMessage *req, uint64_t *seq,
		    ctl_reply_cb cb, void *arg);

/* The value of field 1 (varint) of a packed message: the seq of a reply. */
int ctl_wire_seq(const uint8_t *data, size_t len, uint64_t *ret);

const struct ctl_stats *ctl_client_stats(const struct ctl_client *c);
const char *ctl_client_path(const struct ctl_client *c);

#endif
