/*
 * drop.h - every reason a packet is dropped, from one X-macro, so the enum,
 * the names printed in summaries/metrics and the counters cannot drift.
 * Names are stable: they appear in `show stats` and in tests.
 */
#ifndef TANDEM_DROP_H
#define TANDEM_DROP_H

#define DROP_REASONS(X)                                                        \
	/* --- malformed input (pkt.c) --- */                                  \
	X(L2_SHORT, "l2-short")                 /* frame shorter than its L2 header */ \
	X(L2_TYPE, "l2-not-ip")                 /* ethertype/DLT not IPv4/IPv6 */ \
	X(IP_VERSION, "ip-version")             /* version nibble not 4/6 */    \
	X(IP4_SHORT, "ip4-header-short")        /* < 20 bytes */                \
	X(IP4_IHL, "ip4-ihl")                   /* IHL < 5 or past the buffer */ \
	X(IP4_TOTLEN, "ip4-total-length")       /* total length > buffer or < IHL*4 */ \
	X(IP4_OPT, "ip4-option")                /* IPv4 option length 0/1 or past IHL */ \
	X(IP6_SHORT, "ip6-header-short")        /* < 40 bytes */                \
	X(IP6_PAYLEN, "ip6-payload-length")     /* payload length > buffer */   \
	X(IP6_EXT, "ip6-ext-header")            /* ext header truncated/bad */  \
	X(IP6_EXT_CHAIN, "ip6-ext-chain-long")  /* more than PKT_MAX_EXT headers */ \
	X(FRAG_NONFIRST, "fragment-nonfirst")   /* offset > 0: no L4 header */  \
	X(FRAG_BAD, "fragment-bad")             /* first fragment too short for L4 */ \
	X(TCP_SHORT, "tcp-header-short")        /* < 20 bytes */                \
	X(TCP_DOFF, "tcp-data-offset")          /* doff < 5 or past the end */  \
	X(TCP_OPT, "tcp-option")                /* option length 0/1 or past the end */ \
	X(TCP_FLAGS, "tcp-flags")               /* null, SYN+FIN, SYN+RST ... */ \
	X(UDP_SHORT, "udp-header-short")        /* < 8 bytes */                 \
	X(UDP_LEN, "udp-length")                /* length field < 8 or > buffer */ \
	X(ICMP_SHORT, "icmp-header-short")      /* < 8 bytes */                 \
	X(ICMP_INNER, "icmp-error-quote")       /* quoted header truncated/bad */ \
	/* --- policy and limits --- */                                        \
	X(NO_ZONE, "no-zone")                   /* address/interface in no zone */ \
	X(NO_RULE, "no-rule")                   /* no rule matched: default deny */ \
	X(RULE_DROP, "rule-drop")               /* matched a drop rule */       \
	X(RULE_REJECT, "rule-reject")           /* matched a reject rule */     \
	X(TABLE_FULL, "table-full")             /* shard pool exhausted */      \
	X(LIMIT_SRC, "limit-per-source")        /* rule's per-source limit */   \
	X(LIMIT_DST, "limit-per-destination")   /* rule's per-destination limit */ \
	/* --- state tracking --- */                                           \
	X(TCP_NOT_SYN, "tcp-not-syn")           /* miss, mode needs a SYN */    \
	X(TCP_STATE, "tcp-invalid-state")       /* e.g. data after own FIN */   \
	X(TCP_WINDOW, "tcp-out-of-window")      /* seq/ack outside the window */ \
	X(TCP_RST_WINDOW, "tcp-rst-out-of-window") /* RST outside the window */ \
	X(TCP_SYNACK_ACK, "tcp-synack-bad-ack") /* SYN/ACK not acking ISN+1 */ \
	X(L4_CSUM, "bad-checksum")              /* tcp.checksum_verify: TCP/UDP sum */ \
	X(ICMP_NO_REQUEST, "icmp-no-request")   /* normal/strict: reply w/o request */ \
	X(ICMP_ERR_NO_SESSION, "icmp-error-no-session") /* quotes no session */ \
	/* --- forwarding (AF_XDP data path: the node routes itself) --- */    \
	X(NO_ROUTE, "no-route")                 /* no route out of a zone interface */ \
	X(NO_NEIGH, "no-neighbour")             /* next hop unresolved (1 s) or too many waiting */ \
	X(TX_FULL, "tx-ring-full")              /* accepted, transmit ring full */

enum drop_reason {
	DROP_NONE = 0,
#define X_ENUM(id, name) DROP_##id,
	DROP_REASONS(X_ENUM)
#undef X_ENUM
	DROP_MAX
};

static inline const char *drop_name(enum drop_reason r)
{
	static const char *const names[DROP_MAX] = {
		[DROP_NONE] = "none",
#define X_NAME(id, name) [DROP_##id] = name,
		DROP_REASONS(X_NAME)
#undef X_NAME
	};
	return (unsigned)r < DROP_MAX ? names[r] : "?";
}

/* What a forwarded TCP packet says about its session (track_tcp.c), for
 * the counters "tcp.<name>". */
#define TRACK_NOTES(X)                                                         \
	X(NONE, "none")                                                        \
	X(RST_IN_WINDOW, "rst-in-window")   /* RST in window, not exact: kept */ \
	X(OLD, "retransmission")            /* old data or a delayed ACK */    \
	X(OVERSHOOT, "window-overshoot")    /* past the edge, within a max window */ \
	X(SYN_ON_OPEN, "syn-on-open")       /* SYN with a new ISN passed */    \
	X(REOPENED, "reopened")             /* SYN/ACK answered it: new handshake */ \
	X(IGNORED, "ignored")               /* passed unchecked (see the table) */

enum track_note {
#define X_ENUM(id, name) TN_##id,
	TRACK_NOTES(X_ENUM)
#undef X_ENUM
	TN_MAX
};

static inline const char *track_note_name(enum track_note n)
{
	static const char *const names[TN_MAX] = {
#define X_NAME(id, name) [TN_##id] = name,
		TRACK_NOTES(X_NAME)
#undef X_NAME
	};
	return (unsigned)n < TN_MAX ? names[n] : "?";
}

#endif
