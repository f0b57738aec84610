/*
 * repl.h - session replication: the node's events out to every peer, the
 * peers' events into the node.
 *
 * Out: the node's stream updates the mirror (mirror.h) and, outside a node
 * bulk, each event is appended to every peer's batch; a batch becomes a
 * frame at batch_events events or after flush_ms. Frames stay queued per
 * peer until the peer acknowledges the sequence its node applied; after a
 * link cut the peer's first heartbeat says how far it got, and the rest is
 * sent again (resume) - or, when the queue overflowed (backlog) or the
 * peer lost its state, a full bulk follows: bulk_begin, every local
 * session from the mirror at bulk_rate sessions/s (position kept, so a cut
 * bulk resumes), bulk_end.
 *
 * In: a peer's events are stored in the mirror and queued to the node as
 * SYNC_APPLY requests (at most apply_inflight in flight). When the node
 * acknowledges one, the peer is sent an Ack with the last sequence it
 * covered. At the peer's bulk_end, its sessions it did not send again are
 * deleted on the node. Readiness gate: node linked and nothing received
 * but not yet applied.
 *
 * Runs on the loop's thread only. Must never: send a peer's session back
 * to a peer, acknowledge a sequence before the node applied it, or hold
 * more than backlog bytes of frames for one peer.
 */
#ifndef TANDEM_SYNCD_REPL_H
#define TANDEM_SYNCD_REPL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "node_link.h"
#include "peer.h"
#include "sconf.h"

enum bulk_state { BULK_IDLE, BULK_WAITING, BULK_SENDING, BULK_DONE };
const char *bulk_state_name(enum bulk_state s);

struct repl_peer_info {
	uint64_t events_sent, events_received;
	uint64_t lag_events, lag_ms;
	bool has_lat;
	uint32_t ack_p50_us, ack_p99_us;
	enum bulk_state tx_state, rx_state;
	uint64_t tx_sent, tx_total, tx_ms;
	uint64_t rx_n, rx_ms;
	uint64_t applied_seq, acked_seq, backlog_bytes;
	uint64_t resumes, full_bulks, overflows, overruns;
};

struct repl_info {
	bool node_synced;
	uint64_t local, peer, apply_pending;
	uint64_t applied, conflicts, refused, apply_errors;
	uint64_t node_bulks, node_resyncs, bad_events, swept;
};

struct repl;

int repl_new(uv_loop_t *loop, const struct sconf *conf, struct peers *ps,
	     struct node_link *nl, struct repl **ret);
void repl_close(struct repl *r);   /* stop its timer */
void repl_free(struct repl *r);    /* accepts NULL */

/* node link */
void repl_node_up(struct repl *r);
void repl_node_down(struct repl *r);
/* one packed SyncStream (node_link.h) */
void repl_node_stream(struct repl *r, const uint8_t *d, size_t n);

/* peer links */
void repl_link(struct repl *r, unsigned peer, bool up);
/* a verified message on the sync path */
/* m without its events; ev/ev_len: the packed message when it has
 * events (peer.h) */
void repl_msg(struct repl *r, unsigned peer, const struct sync_hdr *h,
	      const Tandem__PeerMsg *m, const uint8_t *ev, size_t ev_len);

/* Our role. On a node that is not active, a peer's event for a session we
 * hold as local replaces it (the active owns the flow; the node does the
 * same on SYNC_APPLY); on the active, our local copy wins. */
void repl_set_active(struct repl *r, bool active);
/* takeover: every peer session in the mirror becomes local. from_init: a
 * takeover at start, not of a dead active: a linked peer still has the
 * sessions it sent us as its own, and no bulk sends them back to it (its
 * standby node would turn them into peer copies) until our node reports a
 * change of them. */
void repl_promote(struct repl *r, bool from_init);
/* new epoch: a full bulk to every peer */
void repl_bulk_all(struct repl *r);
/* ask peer for its whole table (after stepping down) */
void repl_request_bulk(struct repl *r, unsigned peer);

/* readiness gate: node linked, nothing received and not yet applied */
bool repl_gate(const struct repl *r);
/* peer's bulk to us is complete and the link carries its live events
 * (momentary apply queue not counted: that is the gate's business) */
bool repl_synced_from(const struct repl *r, unsigned peer);
/* a bulk from peer i completed (kept after its link went down). Whether
 * that is the cluster's state depends on the peer's role (cluster.c): a
 * peer still in init sent only its own sessions. */
bool repl_holds_bulk_of(const struct repl *r, unsigned peer);
uint64_t repl_applied_seq(const struct repl *r, unsigned peer);
void repl_peer_info(const struct repl *r, unsigned peer, uint64_t now,
		    struct repl_peer_info *ret);
void repl_info(const struct repl *r, struct repl_info *ret);

#endif
