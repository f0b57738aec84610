/*
 * stats.c - names of counters, states and reasons; summing shards.
 * Never called per packet.
 */
#include "stats.h"

#include "pkt.h"

const char *end_reason_name(enum end_reason r)
{
	static const char *const names[END_MAX] = {
#define X_NAME(id, name) [END_##id] = name,
		END_REASONS(X_NAME)
#undef X_NAME
	};
	return (unsigned)r < END_MAX ? names[r] : "?";
}

const char *proto_class_name(enum proto_class c)
{
	static const char *const names[PC_MAX] = {
		[PC_TCP] = "tcp", [PC_UDP] = "udp", [PC_ICMP] = "icmp",
		[PC_OTHER] = "other",
	};
	return (unsigned)c < PC_MAX ? names[c] : "?";
}

const char *verdict_name(enum verdict v)
{
	static const char *const names[V_MAX] = {
		[V_ACCEPT] = "accept", [V_DROP] = "drop", [V_REJECT] = "reject",
		[V_REQUEUE] = "requeue",
	};
	return (unsigned)v < V_MAX ? names[v] : "?";
}

const char *sess_state_name(enum sess_state s)
{
	static const char *const names[SS_MAX] = {
		[SS_FREE] = "free",
		[SS_TCP_SYN_SENT] = "syn-sent",
		[SS_TCP_SYN_RECV] = "syn-recv",
		[SS_TCP_ESTABLISHED] = "established",
		[SS_TCP_WAIT] = "tcp-wait",
		[SS_TCP_TIME_WAIT] = "time-wait",
		[SS_TCP_CLOSED] = "closed",
		[SS_UDP] = "udp",
		[SS_UDP_REPLIED] = "udp-replied",
		[SS_ICMP] = "icmp",
		[SS_OTHER] = "other",
	};
	return (unsigned)s < SS_MAX ? names[s] : "?";
}

enum proto_class proto_class_of(uint8_t proto)
{
	switch (proto) {
	case PKT_PROTO_TCP: return PC_TCP;
	case PKT_PROTO_UDP: return PC_UDP;
	case PKT_PROTO_ICMP:
	case PKT_PROTO_ICMPV6: return PC_ICMP;
	default: return PC_OTHER;
	}
}

void stats_add(struct shard_stats *dst, const struct shard_stats *src)
{
	/* The struct is nothing but uint64_t counters: add them as an array. */
	_Static_assert(sizeof(struct shard_stats) % sizeof(uint64_t) == 0,
		       "shard_stats holds only uint64_t");
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;
	for (size_t i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

uint64_t stats_live(const struct shard_stats *t, enum sess_state st)
{
	uint64_t ended = 0;
	for (unsigned c = 0; c < PC_MAX; c++)
		ended += t->ended_state[c][st];
	return t->entered[st] - t->left[st] - ended;
}
