/*
 * sess_table.h - one shard of the session table.
 *
 * A shard is owned by exactly one worker thread, which is its only writer:
 * nothing here locks. Sessions come from a pool preallocated at creation
 * (capacity = max_sessions / shards); a full pool refuses the insert with
 * -ENOSPC and never touches established sessions.
 *
 * Index: open-addressed buckets of 10 (16-bit signature, 32-bit pool index)
 * in one 64-byte cache line, signatures first and keys in the pool (DPDK
 * rte_hash layout). Expiry: a timer wheel of 4096 slots x 128 ms, lazily
 * re-armed: a refresh that moves expiry later only writes s->expire; the
 * wheel re-files the session when it reaches its old slot.
 *
 * Must never: allocate after sess_table_new(), block, or visit more than
 * `budget` entries/slots in one sess_table_expire() call.
 */
#ifndef TANDEM_SESS_TABLE_H
#define TANDEM_SESS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Canonical key: the (address, port) pair that sorts lower is side 0, so both
 * directions of a flow build the same key. zone = zone pair, lower zone id in
 * the high byte, so both directions agree too. 40 bytes, no padding.
 */
struct sess_key {
	uint8_t addr[2][16]; /* IPv4 in the first 4 bytes, rest zero */
	uint16_t port[2];    /* TCP/UDP ports; ICMP echo id in both; else 0 */
	uint16_t zone;       /* (min zone << 8) | max zone */
	uint8_t proto;       /* IP protocol (ICMPv6 = 58) */
	uint8_t family;      /* 4 or 6 */
};
_Static_assert(sizeof(struct sess_key) == 40, "sess_key is 40 bytes");

enum sess_state {
	SS_FREE = 0,      /* in the pool's free list */
	SS_TCP_SYN_SENT,  /* SYN seen from the initiator */
	SS_TCP_SYN_RECV,  /* SYN/ACK seen from the responder (or simultaneous open) */
	SS_TCP_ESTABLISHED,
	SS_TCP_WAIT,      /* one side sent FIN: half-closed (Palo Alto tcp-wait) */
	SS_TCP_TIME_WAIT, /* both sides sent FIN */
	SS_TCP_CLOSED,    /* RST seen with rst-invalidate off */
	SS_UDP,           /* one direction seen */
	SS_UDP_REPLIED,   /* both directions seen */
	SS_ICMP,
	SS_OTHER,
	SS_MAX
};

/* Session flags (s->flags). */
enum {
	SF_INIT_SIDE1   = 0x01, /* the initiator is key side 1 (else side 0) */
	SF_EVERY_SEEN   = 0x02, /* TCP: began with SYN and no sequence gap seen */
	SF_VALID_START  = 0x04, /* began with a valid request (SYN, echo request) */
	SF_PEER         = 0x08, /* origin: learned from a peer (never re-sent) */
	SF_FIN_ORIG     = 0x10, /* FIN seen from the initiator */
	SF_FIN_REPLY    = 0x20, /* FIN seen from the responder */
	SF_MIDSTREAM    = 0x40, /* TCP picked up mid-stream (loose mode) */
	SF_KEEPALIVE    = 0x80, /* rule asked for keepalive probes */
};

/* Per-direction TCP window data (Rooij; pf's seqlo/seqhi/max_win; the
 * Linux tracker's td_end, td_maxend, td_maxwin, td_maxack). */
struct sess_tcp_dir {
	uint32_t end;    /* highest seq + len sent */
	uint32_t maxend; /* right edge this side may send to: highest ack +
			  * window the other side advertised */
	uint32_t maxwin; /* largest (scaled) window this side advertised */
	uint32_t maxack; /* highest ack this side sent (STF_MAXACK0/1) */
};

/* TCP tracker flags (s->tflags). */
enum {
	STF_MAXACK0     = 0x01, /* tcp[0].maxack holds an ack */
	STF_MAXACK1     = 0x02, /* tcp[1].maxack holds an ack */
	STF_SYN_PENDING = 0x04, /* a SYN with a new ISN passed an open session;
				 * syn_* hold it until a SYN/ACK answers it */
	STF_STALE0      = 0x08, /* tcp[0] is a peer's snapshot: re-anchor it */
	STF_STALE1      = 0x10, /* tcp[1] likewise */
};

/*
 * One session: 136 bytes; with the index at full load (64-byte bucket per
 * 8 sessions) 144 bytes per session. Direction 0 = original (initiator ->
 * responder), 1 = reply.
 */
struct sess {
	struct sess_key key;       /*   0  40 */
	uint64_t id;               /*  40   8  node id in the high 16 bits */
	uint64_t bytes[2];         /*  48  16  per direction */
	uint32_t pkts[2];          /*  64   8 */
	uint32_t expire;           /*  72   4  ms, low 32 bits of clock; wrap-safe */
	uint32_t tw_next, tw_prev; /*  76   8  wheel links (pool index + 1, 0 = none) */
	uint32_t created;          /*  84   4  seconds, low 32 bits of clock/1000 */
	uint16_t rule;             /*  88   2  index of the rule that opened it */
	uint8_t iface[2];          /*  90   2  interface id per direction (ingress) */
	uint8_t state;             /*  92   1  enum sess_state */
	uint8_t flags;             /*  93   1  SF_* */
	uint8_t wscale;            /*  94   1  window scale: low nibble dir 0, high dir 1 */
	uint8_t mode;              /*  95   1  tracking mode of the rule (enum track_mode) */
	struct sess_tcp_dir tcp[2];/*  96  32 */
	uint32_t syn_end;          /* 128   4  STF_SYN_PENDING: that SYN's seq + 1 */
	uint16_t syn_win;          /* 132   2  its window (unscaled) */
	uint8_t syn_wscale;        /* 134   1  its window scale (15 = none) */
	uint8_t tflags;            /* 135   1  STF_* */
};                                 /* 136 */
_Static_assert(sizeof(struct sess) == 136, "struct sess is 136 bytes");

struct sess_table;

/* Hash of a canonical key for the index, under the process's secret seed
 * (random in tandem-node, 0 until set): a sender cannot aim many flows at
 * one bucket. Set the seed once, before any table is used. */
uint32_t sess_key_hash(const struct sess_key *k);
void sess_hash_seed(uint64_t s0, uint64_t s1);
/* The same hash without the seed: equal on every node (digests compared
 * across the cluster). */
uint32_t sess_key_hash_unseeded(const struct sess_key *k);

/* Build the canonical key of a flow; *ret_side = side of `src` in the key
 * (0 or 1). Addresses are 16 bytes (IPv4 zero-padded). */
void sess_key_make(struct sess_key *k, uint8_t family, uint8_t proto,
		   const uint8_t *src, const uint8_t *dst, uint16_t sport,
		   uint16_t dport, uint8_t zone_a, uint8_t zone_b,
		   unsigned *ret_side);

/*
 * capacity: pool size (>= 1, <= 2^28). node_id goes in the high 16 bits of
 * session ids, shard in the next 8. now_ms: the clock at creation.
 * Returns 0 or -errno (-EINVAL, -ENOMEM).
 */
int sess_table_new(uint32_t capacity, uint16_t node_id, uint8_t shard,
		   uint64_t now_ms, struct sess_table **ret);
void sess_table_free(struct sess_table *t); /* accepts NULL */

uint32_t sess_table_count(const struct sess_table *t);
uint32_t sess_table_capacity(const struct sess_table *t);
/* Bytes allocated for pool + index + wheel (for the bench / show status). */
size_t sess_table_memory(const struct sess_table *t);

/* Lookup; hash = sess_key_hash(k). NULL on a miss. */
struct sess *sess_table_lookup(struct sess_table *t, const struct sess_key *k,
			       uint32_t hash);
/* Batched lookup with prefetching: out[i] = lookup(keys[i]) for i < n. */
void sess_table_lookup_burst(struct sess_table *t,
			     const struct sess_key *const *keys,
			     const uint32_t *hashes, unsigned n,
			     struct sess **out);

/*
 * Insert a new session for k (which must not be present), zeroed except key,
 * id (fresh, unless id != 0 is given, as for a peer session), created, and
 * expire = expire_ms. Returns 0 and *ret, -ENOSPC when the pool is full,
 * -EEXIST when the key is present (*ret = the existing session).
 */
int sess_table_insert(struct sess_table *t, const struct sess_key *k,
		      uint32_t hash, uint64_t id, uint64_t now_ms,
		      uint64_t expire_ms, struct sess **ret);

/* Remove from index and wheel and return to the pool. */
void sess_table_remove(struct sess_table *t, struct sess *s);

/* Set the expiry time. Moving it later costs one store (lazy wheel);
 * moving it earlier re-files the session in the wheel. */
void sess_table_set_expire(struct sess_table *t, struct sess *s,
			   uint64_t expire_ms);

/*
 * Wake-ups before expiry (keepalive probes). A session may be filed in the
 * wheel earlier than its expiry with sess_table_wake_at(); when the wheel
 * reaches a session that is not due and has SF_KEEPALIVE, it calls the
 * table's wake function, which may act (send a probe) and returns the next
 * time the session wants a visit (0: none before its expiry). Bounded as
 * the rest of the wheel: one call per visit.
 */
typedef uint64_t (*sess_wake_fn)(void *ctx, struct sess *s, uint64_t now_ms);
void sess_table_set_wake(struct sess_table *t, sess_wake_fn fn, void *ctx);
/* File s so the wheel visits it at wake_ms (if before its expiry). */
void sess_table_wake_at(struct sess_table *t, struct sess *s, uint64_t wake_ms);

/* Milliseconds left before s expires at now_ms (0 if due). */
uint64_t sess_remaining_ms(const struct sess *s, uint64_t now_ms);

/*
 * Advance the wheel to now_ms, visiting at most `budget` sessions or empty
 * slots. Each due session is passed to cb (which may read it) and then
 * removed. Returns the number expired; *ret_done = true when caught up.
 */
typedef void (*sess_cb)(void *ctx, struct sess *s);
unsigned sess_table_expire(struct sess_table *t, uint64_t now_ms,
			   unsigned budget, sess_cb cb, void *ctx,
			   bool *ret_done);

/*
 * Flood relief (Linux conntrack's early drop): visit sessions in the order
 * the wheel will expire them, from the cursor on, at most `budget`
 * sessions (and at most every wheel slot's head once), and remove the one
 * `score` rates highest (0 = never), after passing it to cb. Returns true
 * when one was removed.
 */
typedef uint64_t (*sess_score)(void *ctx, const struct sess *s);
bool sess_table_evict_one(struct sess_table *t, unsigned budget,
			  sess_score score, sess_cb cb, void *ctx);

/*
 * Aggressive ageing helper: visit sessions whose remaining time is below
 * window_ms (they sit in the wheel slots between the cursor and
 * now + window), at most `budget` of them, calling cb and removing each.
 * Returns the number removed.
 */
unsigned sess_table_age_early(struct sess_table *t, uint64_t now_ms,
			      uint64_t window_ms, unsigned budget, sess_cb cb,
			      void *ctx);

/* Visit every live session (management, dumps; not the data path). cb may
 * not insert or remove. */
void sess_table_foreach(struct sess_table *t, sess_cb cb, void *ctx);

/* Pool index <-> session, for ids and iteration. */
struct sess *sess_table_at(struct sess_table *t, uint32_t idx);
uint32_t sess_table_index(const struct sess_table *t, const struct sess *s);

#endif
