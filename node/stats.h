/*
 * stats.h - per-shard counters and the reasons a session ends.
 *
 * Each worker writes only its own struct shard_stats (plain increments, no
 * atomics, no locks); readers (the summary, later the control thread) sum
 * the shards and tolerate a torn 64-bit read on 32-bit hosts only.
 */
#ifndef TANDEM_STATS_H
#define TANDEM_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "drop.h"
#include "sess_table.h"

#define END_REASONS(X)                                                         \
	X(EXPIRED, "expired")           /* idle timeout ran out */            \
	X(RST, "rst")                   /* rst-invalidate-session */          \
	X(FIN, "fin")                   /* fin-invalidate-session */          \
	X(ICMP_ERROR, "icmp-error")     /* ICMP error quoting a UDP session */ \
	X(AGED, "aged-early")           /* aggressive ageing */               \
	X(REOPEN, "reopened")           /* SYN reused the key after close */  \
	X(CLEARED, "cleared")           /* management clear */                \
	X(POLICY, "policy")             /* revalidation after a policy change */ \
	X(PEER, "peer")                 /* the peer expired or deleted it */   \
	X(EVICTED, "evicted-unreplied") /* a full table made room for a new one */

enum end_reason {
#define X_ENUM(id, name) END_##id,
	END_REASONS(X_ENUM)
#undef X_ENUM
	END_MAX
};

enum proto_class { PC_TCP = 0, PC_UDP, PC_ICMP, PC_OTHER, PC_MAX };
/* V_REQUEUE: the packet belongs to another shard's session (an ICMP error
 * quoting a flow whose addresses map to another queue): hand it over. */
enum verdict { V_ACCEPT = 0, V_DROP, V_REJECT, V_REQUEUE, V_MAX };

struct shard_stats {
	uint64_t pkts, bytes;
	uint64_t verdict[V_MAX];
	uint64_t drop[DROP_MAX];
	uint64_t created[PC_MAX];
	uint64_t stateless[PC_MAX];      /* accepted by a tracking-off rule */
	uint64_t ended[END_MAX];
	uint64_t ended_state[PC_MAX][SS_MAX]; /* state a session was in when it ended */
	uint64_t ageing_on;              /* times aggressive ageing started */
	uint64_t ka_probes;              /* keepalive probes sent */
	uint64_t ka_rejuvenated;         /* sessions answered after a probe */
	uint64_t ka_rst;                 /* probed sessions ended by an RST */
	/* live sessions per state = entered - left - ended in that state */
	uint64_t entered[SS_MAX], left[SS_MAX];
	uint64_t ageing_active;          /* 1 while aggressive ageing runs */
	uint64_t first_frags;
	uint64_t tcp_note[TN_MAX];       /* forwarded TCP packets by track note */
	uint64_t mss_clamped;            /* SYN, SYN/ACK MSS lowered (tcp.mss) */
};

const char *end_reason_name(enum end_reason r);
const char *proto_class_name(enum proto_class c);
const char *verdict_name(enum verdict v);
const char *sess_state_name(enum sess_state s);
enum proto_class proto_class_of(uint8_t proto);

/* dst += src, field by field. */
void stats_add(struct shard_stats *dst, const struct shard_stats *src);
/* Sessions in state st now (from the counters). */
uint64_t stats_live(const struct shard_stats *t, enum sess_state st);

#endif
