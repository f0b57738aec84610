/*
 * ctl_server.h - tandem-syncd's control socket: unix stream, frames of a
 * 4-byte big-endian length + SyncdRequest, each answered by one SyncdReply
 * with its seq (proto/tandem.proto). A request may be answered later
 * (FAILOVER waits for the switch); its connection may close meanwhile,
 * and the answer is then dropped.
 *
 * Runs on the loop's thread only. Must never: answer a call twice, use a
 * request message after the handler returned, or buffer a request above
 * CTL_REQUEST_MAX bytes (the connection is closed instead).
 */
#ifndef TANDEM_SYNCD_CTL_SERVER_H
#define TANDEM_SYNCD_CTL_SERVER_H

#include <stddef.h>

#include <uv.h>

#include "tandem.pb-c.h"

#define CTL_REQUEST_MAX (64u << 10)

struct ctl_server;
struct ctl_call;

/* req is valid during the call only; answer with ctl_server_reply(), now
 * or later. */
typedef void (*ctl_handler)(void *arg, struct ctl_call *call,
			    const Tandem__SyncdRequest *req);

int ctl_server_new(uv_loop_t *loop, ctl_handler h, void *arg,
		   struct ctl_server **ret);
/* Listen on path; a stale socket file is replaced, a missing directory
 * made. */
int ctl_server_listen(struct ctl_server *s, const char *path, char *err,
		      size_t errlen);
/* rep->seq is set here; frees call. */
void ctl_server_reply(struct ctl_call *call, Tandem__SyncdReply *rep);
void ctl_server_reply_error(struct ctl_call *call, int status,
			    const char *msg);
void ctl_server_close(struct ctl_server *s);
void ctl_server_free(struct ctl_server *s);   /* accepts NULL */

#endif
