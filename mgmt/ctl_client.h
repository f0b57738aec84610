/*
 * ctl_client.h - asynchronous client of a ctl unix socket (tandem-node's,
 * later tandem-syncd's): frames of a 4-byte big-endian length and one
 * CtlRequest / CtlReply (proto/tandem.proto), matched by seq.
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
 * Must never: call a callback twice or after ctl_client_close() returned
 * (close calls them first with -ECANCELED), or buffer a frame above
 * CTL_FRAME_MAX.
 */
#ifndef TANDEM_MGMT_CTL_CLIENT_H
#define TANDEM_MGMT_CTL_CLIENT_H

#include <stdint.h>

#include <uv.h>

#include "tandem.pb-c.h"

#define CTL_FRAME_MAX (64u << 20)

struct ctl_client;

/* reply is the callee's (tandem__ctl_reply__free_unpacked) when err == 0. */
typedef void (*ctl_reply_cb)(void *arg, int err, Tandem__CtlReply *reply);

struct ctl_stats {
	uint64_t requests, replies, timeouts, connects, connect_failures,
		 disconnects, bad_frames, late_replies;
};

int ctl_client_new(uv_loop_t *loop, const char *path, uint32_t timeout_ms,
		   struct ctl_client **ret);
/* Fails what is pending with -ECANCELED, closes the handles; the memory is
 * released once libuv has closed them (run the loop to the end). NULL ok. */
void ctl_client_close(struct ctl_client *c);

/* req->seq is set here. Returns 0 (cb will be called exactly once, never
 * from inside this call) or -errno (-ENOMEM, -EMSGSIZE, -ECONNRESET; cb is
 * not called). */
int ctl_client_send(struct ctl_client *c, Tandem__CtlRequest *req,
		    ctl_reply_cb cb, void *arg);

const struct ctl_stats *ctl_client_stats(const struct ctl_client *c);
const char *ctl_client_path(const struct ctl_client *c);

#endif
