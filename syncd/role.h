/*
 * role.h - the active/standby role of one node, as a pure state machine.
 *
 * role_step() looks at what the node knows now (its peers as last heard on
 * each path, its readiness, the time) and decides the role; the caller
 * carries out what it returns (PROMOTE, addresses, ...). Time comes in as
 * an argument, so tests drive it; nothing here does I/O or allocates.
 *
 * Rules (docs/syncd.md has the full table):
 *  - Rank of a node that is not active: first whether it holds the state
 *    (a standby that completed a bulk from a peer heard active), then the
 *    higher priority, then the lower node id. Every node computes the same
 *    order.
 *  - INIT listens for init_wait_ms (or until every peer was heard): an
 *    active peer makes it standby; otherwise the best ranked of itself and
 *    the live non-active peers becomes active, the others standby.
 *  - A standby takes over only when no active peer is heard on ANY path
 *    (sync link and data-side heartbeat both silent: split-brain guard),
 *    when it ranks first among the live non-active nodes, and only once
 *    the readiness gate is open (node linked, every received event
 *    applied).
 *  - Preempt: a standby with a better priority takes over from a live
 *    active when preempt is on, hold_down_ms after its last role change,
 *    once fully synced.
 *  - Two actives: the higher epoch wins (then priority, then lower id);
 *    the loser becomes standby and adopts the winner's epoch.
 *  - Fault (election mode): an active with a fault steps down to standby
 *    (its peers, hearing it standby and ranking it last, take over at
 *    once); a faulty node never becomes active.
 *  - Every takeover sets epoch = highest epoch heard + 1.
 *  - external (keepalived mode): no election; the notified role is taken
 *    (active still through the readiness gate).
 *
 * Must never: do I/O, read a clock, or allocate.
 */
#ifndef TANDEM_SYNCD_ROLE_H
#define TANDEM_SYNCD_ROLE_H

#include <stdbool.h>
#include <stdint.h>

enum role { ROLE_INIT, ROLE_STANDBY, ROLE_ACTIVE };

const char *role_name(enum role r);
/* "init", "standby" | "backup" | "fault", "active" | "master". */
int role_from_name(const char *s, enum role *ret);

struct role_cfg {
	uint16_t node_id;
	uint32_t priority;
	bool preempt;
	bool external;          /* keepalived mode */
	uint32_t init_wait_ms;  /* INIT: listen before electing alone */
	uint32_t hold_down_ms;  /* no preemption this soon after a change */
};

/* One peer as last heard; sync_alive/data_alive: a heartbeat (or any
 * verified frame) arrived on that path within interval x dead_count. */
struct role_peer {
	uint16_t id;
	bool heard;             /* role..ready below come from a heartbeat */
	bool sync_alive, data_alive;
	enum role role;
	uint32_t priority;
	uint64_t epoch;
	bool holds_state;       /* it says it holds the state (ready) */
	bool asks_takeover;     /* the active asked us to take over (planned) */
};

struct role_in {
	uint64_t now_ms;
	bool gate;              /* node linked and every received event applied */
	bool synced;            /* gate, and the active's bulk is complete */
	bool holds_state;       /* standby that completed a bulk sync */
	enum role notify;       /* external: the notified role (INIT: none yet) */
	const char *fault;      /* why this node cannot carry the traffic now
				 * (its node is gone, a tracked interface is
				 * down); NULL: healthy */
	unsigned n_peers;
	const struct role_peer *peers;
};

enum role_action {
	RA_NONE,
	RA_ACTIVE,              /* became active: promote, addresses, GARP */
	RA_STANDBY,             /* became standby: drop addresses, resync */
};

struct role_sm {
	enum role role;
	uint64_t epoch;
	uint64_t start_ms;      /* role_init() */
	uint64_t since_ms;      /* last role change */
	bool pending;           /* wants active, held by the readiness gate */
	uint16_t winner;        /* RA_STANDBY after two actives met: the winner */
	char why[80];           /* reason of the last change, or of pending */
};

void role_init(struct role_sm *sm, uint64_t epoch, uint64_t now_ms);
enum role_action role_step(struct role_sm *sm, const struct role_cfg *cfg,
			   const struct role_in *in);

#endif
