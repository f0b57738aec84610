/*
 * peer.h - links to the other nodes' tandem-syncd: TCP sync links and the
 * UDP data-side heartbeat path, framed and authenticated (sync_msg.h).
 *
 * Each configured peer has at most one established TCP link. Both sides
 * connect and accept; a connection belongs to a peer once a frame on it
 * verified under the cluster key with that peer's node id. When two
 * connections to one peer exist, the one opened by the node with the
 * lower id is kept (both sides decide the same); a link that is silent for
 * interval x dead_count is closed.
 *
 * Every frame in is checked before anything else looks at it: header,
 * length, tag (constant time), sender, replay window, and only then the
 * PeerMsg is unpacked. A refused frame is counted by reason (for the
 * claimed peer when it is one, and in the totals) and changes nothing
 * else; on a stream, a frame whose length cannot be trusted (bad magic,
 * oversized) also closes that connection, since the stream cannot be
 * resynchronised. Messages are delivered only from a peer's established
 * link (sync path) or from the UDP socket (data path, heartbeats only).
 *
 * Sequence numbers: one counter per path for all peers, starting at the
 * wall clock in microseconds, so a restarted syncd continues above what
 * its peers saw (with the epoch kept in the state file).
 *
 * Runs on the loop's thread only. Must never: deliver an unverified
 * payload, reorder frames of a link, or block.
 */
#ifndef TANDEM_SYNCD_PEER_H
#define TANDEM_SYNCD_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "sconf.h"
#include "sync_msg.h"
#include "tandem.pb-c.h"
#include "pbwire.h"

enum peer_path { PATH_SYNC, PATH_DATA };

struct peers_ops {
	/* peer's established link came up / went down */
	void (*link)(void *arg, unsigned peer, bool up);
	/* a verified message; m, h and ev are valid during the call only.
	 * m is unpacked without its events; ev/ev_len is the packed message
	 * when it has events (read in place: wire.h), else NULL/0 */
	void (*msg)(void *arg, unsigned peer, enum peer_path path,
		    const struct sync_hdr *h, const Tandem__PeerMsg *m,
		    const uint8_t *ev, size_t ev_len);
	/* fill out with a heartbeat PeerMsg for peer (hello on a new
	 * outgoing connection) */
	void (*heartbeat)(void *arg, unsigned peer, enum peer_path path,
			  struct buf *out);
};

struct peer_link_stats {
	uint64_t frames_sent, frames_received, frames_refused;
	uint64_t bytes_sent, bytes_received;
	uint64_t refused[SR_MAX];
	uint64_t connects, disconnects;
	uint64_t last_rx_ms[2];    /* per path; 0 = never */
	uint64_t link_up_ms;       /* 0 = down */
	bool connecting;
};

struct peers;

int peers_new(uv_loop_t *loop, const struct sconf *conf,
	      const struct peers_ops *ops, void *arg, struct peers **ret);
/* Listen (TCP) and bind the UDP socket. */
int peers_start(struct peers *ps, char *err, size_t errlen);
/* Close every handle; the loop then runs out. Free afterwards. */
void peers_close(struct peers *ps);
void peers_free(struct peers *ps);  /* accepts NULL */

/* Called every heartbeat interval: connect where no link is, close links
 * silent for the dead time. */
void peers_tick(struct peers *ps, uint64_t now_ms);

void peers_set_epoch(struct peers *ps, uint64_t epoch);
/* The dead time negotiated with peer (0: this node's own interval x
 * dead_count): its sync link is closed after that long without a frame. */
void peers_set_dead_ms(struct peers *ps, unsigned peer, uint64_t ms);

/* Frame payload (a packed PeerMsg) and send it on peer's sync link.
 * Returns 0 and *ret_seq, or -ENOTCONN / -ENOMEM / -EMSGSIZE. */
int peers_send(struct peers *ps, unsigned peer, const uint8_t *payload,
	       size_t len, uint64_t *ret_seq);
/* The same on the data path (UDP), -ENOTCONN when not configured. */
int peers_send_data(struct peers *ps, unsigned peer, const uint8_t *payload,
		    size_t len);
/* Bytes queued on peer's link and not yet written to the kernel. */
size_t peers_write_queue(struct peers *ps, unsigned peer);

bool peers_link_up(const struct peers *ps, unsigned peer);
const struct peer_link_stats *peers_stats(const struct peers *ps,
					  unsigned peer);
/* Refusals of frames from no known peer (plus every peer's, in totals). */
const uint64_t *peers_refused_total(const struct peers *ps);
/* Index of node id, or -1. */
int peers_index(const struct peers *ps, uint16_t node_id);

#endif
