/*
 * pipeline.h - the way of one packet through a shard, top to bottom:
 *
 *   pkt_parse (once) -> zones -> sess_table lookup
 *     hit : track_tcp/udp/icmp -> refresh timer or end session -> verdict
 *     miss: ICMP error? -> the quoted flow's session
 *           policy_match -> tracking off? stateless verdict
 *           -> limits -> track_*_new -> sess_table_insert -> verdict
 *
 * plus pipeline_tick(): bounded expiry and aggressive ageing per shard.
 *
 * A shard is driven by exactly one thread. The shared, read-only context
 * (config, compiled policy, timeouts in ms) is reached through a pointer the
 * shard reads once per packet. Must never: allocate, lock, log, or make a
 * system call per packet.
 */
#ifndef TANDEM_PIPELINE_H
#define TANDEM_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "connlimit.h"
#include "pkt.h"
#include "policy.h"
#include "sess_table.h"
#include "stats.h"
#include "sync.h"
#include "track.h"

/* Everything a worker reads but never writes. */
struct node_ctx {
	const struct tandem_config *cfg;
	const struct policy *pol;
	struct connlimit *lim;           /* shared, lock-free */
	uint64_t timeout_ms[TO_MAX];
	struct track_opts topts;
	bool zones_by_iface;          /* false: zones from address networks */
};

/* Session events, for replication (tandem-syncd) and tests. */
enum sess_event { SEV_CREATE, SEV_STATE, SEV_END };
typedef void (*sess_event_fn)(void *arg, enum sess_event ev,
			      const struct sess *s);

struct shard {
	struct sess_table *tab;
	const struct node_ctx *ctx;
	struct shard_stats st;
	uint8_t id;
	uint8_t nshards;        /* shards in all (0 or 1: one) */
	bool ageing;            /* aggressive ageing in progress */
	uint32_t age_high, age_low; /* watermarks in sessions */
	unsigned tick_budget;   /* wheel visits per tick */
	uint64_t evict_now;     /* the clock for the eviction score */
	sess_event_fn on_event; /* may be NULL */
	void *event_arg;
	struct sync_out *sync;  /* replication; NULL = off */
	/* keepalive probes: send s's probe (the worker's raw socket); NULL
	 * = count only (offline) */
	int (*probe)(void *arg, const struct sess *s);
	void *probe_arg;
};

/* What the caller learns about one packet. */
struct pipeline_result {
	enum verdict verdict;
	enum drop_reason drop;  /* DROP_NONE when accepted */
	struct sess *sess;      /* the session, when one exists after the packet;
				 * valid until the next packet is processed (in
				 * a burst, a later packet may end it and its
				 * pool entry be reused) */
	const struct cfg_rule *rule; /* rule matched on a miss, else NULL */
	uint8_t requeue_to;     /* V_REQUEUE: the shard that owns the flow */
	uint16_t mss_clamp;     /* V_ACCEPT of a SYN or SYN/ACK: rewrite its
				 * MSS option to this (0: leave it) */
};

/* Fill a context from a loaded config and compiled policy. */
void node_ctx_init(struct node_ctx *ctx, const struct tandem_config *cfg,
		   const struct policy *pol, struct connlimit *lim,
		   bool zones_by_iface);

/* Set up a shard of `capacity` sessions. Returns 0 or -errno. */
int shard_init(struct shard *sh, uint8_t id, uint32_t capacity,
	       const struct node_ctx *ctx, uint64_t now_ms);
void shard_fini(struct shard *sh);

/* The shard that owns a parsed packet among n (symmetric in direction, by
 * addresses only, as the kernel's queue balancing is). */
unsigned pipeline_shard_of(const struct pkt *p, unsigned n);
unsigned pipeline_shard_of_addrs(uint8_t family, const uint8_t *a,
				 const uint8_t *b, unsigned n);

/* Process a parsed packet. iif/oif: config interface ids (0 = unknown). */
void pipeline_packet(struct shard *sh, const struct pkt *p, uint8_t iif,
		     uint8_t oif, uint64_t now_ms, struct pipeline_result *res);

/* A burst of parsed packets at once: the lookups are batched so their
 * cache misses overlap; results are the same as pipeline_packet() one by
 * one, in order. n <= PIPELINE_BURST. */
#define PIPELINE_BURST 64
/* Sessions visited at most to find one to evict when the table is full. */
#define EVICT_BUDGET 64
void pipeline_burst(struct shard *sh, const struct pkt *p, const uint8_t *iif,
		    const uint8_t *oif, unsigned n, uint64_t now_ms,
		    struct pipeline_result *res);

/* Parse and process raw L3 bytes (counts parse drops). */
void pipeline_raw(struct shard *sh, const uint8_t *l3, uint32_t len,
		  uint8_t iif, uint8_t oif, uint64_t now_ms,
		  struct pipeline_result *res);

/* Count a drop decided before pipeline_packet (parse errors, L2). */
void pipeline_count_drop(struct shard *sh, enum drop_reason r, uint32_t len);

/* Expiry and aggressive ageing, bounded by sh->tick_budget visits. Returns
 * true when the wheel has caught up with now. */
bool pipeline_tick(struct shard *sh, uint64_t now_ms);

/* Words of the refresh bitmap swept per tick (64 sessions each). */
#define SYNC_SWEEP_WORDS 256

/* Idle timeout of a session's current state under ctx (the rule's
 * idle_timeout where it applies), and the zone of a config interface id. */
uint64_t pipeline_sess_timeout_ms(const struct node_ctx *ctx,
				  const struct sess *s);
uint8_t pipeline_iface_zone(const struct tandem_config *c, uint8_t iface);

/* Keepalive: send a due probe of s and return when s next wants a visit
 * (0: none). The wheel calls it; a takeover calls it to re-file a session. */
uint64_t pipeline_ka_wake(void *shard, struct sess *s, uint64_t now_ms);

/* End a session now (management clear, revalidation). */
void pipeline_end_session(struct shard *sh, struct sess *s,
			  enum end_reason why);

#endif
