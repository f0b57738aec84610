/*
 * keepalive.h - SunScreen-style TCP keepalive probes for rules with
 * `keepalive = true`.
 *
 * Before an idle established session expires, the node sends the session's
 * source (the initiator) a probe that claims to come from the destination:
 * a TCP ACK whose sequence number is one below what the source expects
 * next, as a host keepalive is. A live source answers with an ACK, which is
 * an ordinary packet of the session: it restarts the timer and is forwarded
 * to the destination. An RST from either host ends the session (rst-
 * invalidate). No answer: the session expires as usual.
 */
#ifndef TANDEM_KEEPALIVE_H
#define TANDEM_KEEPALIVE_H

#include <stddef.h>
#include <stdint.h>

#include "sess_table.h"

/* Index of the next probe offset, in bits 4..7 of s->mode (bits 0..1 are
 * the tracking mode, 2..3 the limit units): at most 15 probes. */
#define KA_IDX(s)      ((unsigned)((s)->mode >> 4))
#define KA_SET(s, i)   ((s)->mode = (uint8_t)(((s)->mode & 0x0f) | ((i) > 15 ? 15 : (i)) << 4))
/* A probe whose time passed more than this ago is skipped, not sent. */
#define KA_LATE_MS 2000

/* Build the probe of session s (from its responder to its initiator) into
 * buf (>= 80 bytes). Returns its length and the initiator's address in
 * *dst, or 0 when s is not a TCP session. */
size_t ka_probe_build(const struct sess *s, uint8_t *buf, size_t size,
		      const uint8_t **ret_dst);

#endif
