/*
 * jobs.h - work the control thread asks of a shard: find, count or clear
 * sessions matching a filter, and revalidate every session against a new
 * policy. A job runs in bounded slices (JOB_SLICE sessions at a time) by the
 * shard's own worker between bursts, so forwarding continues meanwhile and
 * the shard keeps exactly one writer. Offline (no workers), the control
 * thread runs the slices itself.
 *
 * The control thread owns a job until it posts it; the worker owns it
 * until it sets `done` (release); then the control thread again.
 */
#ifndef TANDEM_JOBS_H
#define TANDEM_JOBS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pipeline.h"

#define JOB_SLICE 1024 /* sessions visited per slice: ~0.15 ms, so a busy
			* worker still forwards ~400 kpps while a job runs */

/* A session filter (SRX-style `show/clear security flow session ...`).
 * Unset fields match everything. */
struct sess_filter {
	bool has_proto, has_sport, has_dport, has_state, has_id;
	uint8_t proto;
	uint16_t sport, dport;          /* initiator's source / destination port */
	uint8_t state;                  /* enum sess_state */
	uint8_t origin;                 /* 0 any, 1 local, 2 peer */
	uint8_t src_family, src_len;    /* src_len 0xff = unset */
	uint8_t dst_family, dst_len;
	uint8_t src[16], dst[16];       /* initiator's source / destination prefix */
	int iface;                      /* config iface id, -1 = unset */
	int rule;                       /* rule index in the shard's ctx, -1 = unset */
	uint64_t id;
};

void sess_filter_init(struct sess_filter *f);
bool sess_filter_match(const struct sess_filter *f, const struct sess *s);

/* Why revalidation ends a session. */
#define REVAL_REASONS(X)                                                       \
	X(NO_RULE, "no-rule")             /* no rule allows it any more */    \
	X(DENIED, "denied")               /* the matching rule drops/rejects */ \
	X(STATELESS, "stateless")         /* the matching rule tracks nothing */ \
	X(STRICT_UNSEEN, "strict-unseen") /* strict, TCP not every packet seen */ \
	X(STRICT_NO_REQUEST, "strict-no-request") /* strict, ICMP w/o request */ \
	X(LIMIT, "limit")                 /* over the new rule's limits */    \
	X(ZONES_CHANGED, "zones-changed") /* zone/interface numbering changed */ \
	X(FLUSH, "flush")                 /* reload = flush (Symantec SEP) */

enum reval_reason {
#define X_ENUM(id, name) REVAL_##id,
	REVAL_REASONS(X_ENUM)
#undef X_ENUM
	REVAL_MAX
};
const char *reval_reason_name(enum reval_reason r);

enum job_kind {
	JOB_COLLECT, JOB_COUNT, JOB_CLEAR, JOB_REVALIDATE,
	JOB_DUMP,    /* replication: a CREATE event per local session */
	JOB_APPLY,   /* replication: install/update/remove peer sessions */
	JOB_PROMOTE, /* takeover: peer sessions become local */
	JOB_DIGEST,  /* convergence check: a hash over every session */
};

/* A peer's event, ready for its shard. */
struct peer_rec {
	struct sess s;          /* key, id, state, flags, counters, tcp data */
	uint32_t remaining_ms;  /* time left on the peer */
	uint8_t type;           /* enum sync_type */
};

/* A copy of one session with what the control thread cannot compute. */
struct sess_copy {
	struct sess s;
	uint32_t remaining_ms;
	uint8_t shard;
};

struct ctl_job {
	enum job_kind kind;
	struct sess_filter filter;
	/* COLLECT: up to cap copies into out (allocated by the poster) */
	struct sess_copy *out;
	uint32_t cap, n_out;
	uint64_t matched;               /* COLLECT/COUNT/CLEAR */
	/* REVALIDATE */
	const struct node_ctx *old_ctx, *new_ctx;
	bool dry_run, flush, zones_changed;
	uint64_t kept, ended[REVAL_MAX];
	/* APPLY */
	struct peer_rec *apply;
	uint32_t n_apply;
	uint64_t applied, conflicts, refused;
	bool peer_wins;                 /* standby: the active's copy replaces ours */
	/* DIGEST */
	uint64_t xor_hash, local, peer;
	/* progress, owned by whoever runs the job */
	uint32_t cursor;
	bool started;
	_Atomic bool done;
	struct ctl_job *next;           /* control thread's per-shard queue */
	void *owner;                    /* the control thread's request */
};

/* Run one slice on a shard; returns true when the job is complete. */
bool job_run_slice(struct ctl_job *j, struct shard *sh, uint64_t now_ms);

#endif
