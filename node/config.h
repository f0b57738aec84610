/*
 * config.h - the node's configuration, loaded from a libconfig file.
 *
 * config_load_file()/config_load_string() parse and validate everything into
 * a new struct tandem_config; on any error nothing is returned (the caller's
 * running config stays) and err holds "FILE:LINE: SETTING: reason".
 * The struct is immutable once loaded; policy_compile() turns its rules into
 * the lookup structure.
 */
#ifndef TANDEM_CONFIG_H
#define TANDEM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_NAME_MAX   32
#define CFG_MAX_ZONES  64  /* zone ids 1..63; 0 = none */
#define CFG_MAX_IFACES 255 /* iface ids 1..254; 0 = unknown */
#define CFG_MAX_RULES  65000
#define CFG_MAX_KEEPALIVE_OFFSETS 16

/* Timeout classes, seconds. Indexed by enum cfg_timeout. */
enum cfg_timeout {
	TO_TCP_INITIAL = 0, /* handshake (SRX tcp-initial-timeout) [20, min 4] */
	TO_TCP_ESTABLISHED, /* [1800] */
	TO_TCP_WAIT,        /* half-closed after the first FIN (Palo Alto) [30] */
	TO_TCP_TIME_WAIT,   /* after FIN in both directions [15] */
	TO_TCP_CLOSED,      /* after RST when rst-invalidate is off [2] */
	TO_UDP,             /* [60] */
	TO_ICMP,            /* [60] */
	TO_OTHER,           /* other IP protocols [1800] */
	TO_MAX
};

enum track_mode { TRACK_OFF = 0, TRACK_LOOSE, TRACK_NORMAL, TRACK_STRICT };
enum rule_action { ACT_ACCEPT = 0, ACT_DROP, ACT_REJECT };

struct cfg_prefix {
	uint8_t family; /* 4 or 6 */
	uint8_t len;    /* prefix length */
	uint8_t addr[16];
};

/* One service: protocol plus destination port range (TCP/UDP) or ICMP type
 * (type 0xffff = any). proto 0 = any protocol. */
struct cfg_service {
	uint8_t proto;
	uint16_t port_lo, port_hi;
	uint16_t icmp_type;
};

struct cfg_zone {
	char name[CFG_NAME_MAX];
	uint8_t id; /* 1.. */
	struct cfg_prefix *networks; /* used when no interface is known (pcap) */
	unsigned n_networks;
};

struct cfg_iface {
	char name[CFG_NAME_MAX]; /* kernel interface name */
	uint8_t id;   /* 1.. */
	uint8_t zone; /* zone id */
};

#define CFG_MSS_OFF 0xffff /* a rule's tcp.mss = 0: no clamping for it */

struct cfg_rule {
	char name[CFG_NAME_MAX];
	unsigned line;          /* line in the config file */
	uint16_t index;         /* position in the rule list (0 = first) */
	uint8_t from_zone, to_zone; /* 0 = any */
	struct cfg_prefix *src, *dst; /* n_src == 0: any */
	unsigned n_src, n_dst;
	struct cfg_service *svc; /* n_svc == 0: any */
	unsigned n_svc;
	enum rule_action action;
	enum track_mode mode;
	uint32_t idle_timeout;  /* seconds, 0 = protocol default */
	bool keepalive;
	uint32_t limit_src;     /* concurrent sessions per source address, 0 = none */
	uint32_t limit_dst;     /* per destination address, 0 = none */
	bool log;
	/* tcp = { ... }: 0 = the node's tcp.* setting, 1 = false, 2 = true */
	uint8_t syn_check, sequence_check;
	uint16_t mss;           /* 0 = the node's tcp.mss, CFG_MSS_OFF = none */
};

struct tandem_config {
	char *path;               /* file it came from ("<string>" otherwise) */
	/* node */
	char node_name[CFG_NAME_MAX];
	uint16_t node_id;         /* 1..65535, high bits of session ids */
	/* datapath */
	bool af_xdp;              /* source "af_xdp" (else "nfqueue") [nfqueue] */
	bool xdp_generic;         /* xdp_mode "generic" (else "native") [native] */
	unsigned queues;          /* NFQUEUE queues = workers = shards [1] */
	unsigned queue_first;     /* first queue number [0] */
	unsigned queue_len;       /* kernel queue length [4096] */
	bool fail_open;           /* accept when a queue overflows [false] */
	bool bypass;              /* accept when no node is bound [false] */
	/* table */
	uint32_t max_sessions;    /* all shards together [262144] */
	bool evict_unreplied;     /* [true] a full table evicts the oldest
				   * unreplied session for a new one */
	/* timeouts, seconds */
	uint32_t timeout[TO_MAX];
	/* tcp */
	bool rst_invalidate;      /* [true] */
	bool fin_invalidate;      /* [false] */
	bool syn_check;           /* [true] false: Junos no-syn-check */
	bool sequence_check;      /* [true] false: Junos no-sequence-check */
	uint16_t mss;             /* [0] clamp SYN and SYN/ACK MSS to this; 0 = off */
	bool checksum_verify;     /* [false] verify TCP/UDP checksums */
	/* aggressive ageing (SRX) */
	unsigned age_high_pct;    /* [90] 100 = off */
	unsigned age_low_pct;     /* [70] */
	uint32_t early_ageout;    /* seconds [20] */
	/* keepalive (SunScreen) */
	uint32_t ka_offsets[CFG_MAX_KEEPALIVE_OFFSETS]; /* seconds before expiry, descending */
	unsigned n_ka_offsets;
	uint32_t ka_max_lifetime; /* seconds, 0 = unlimited [86400] */
	/* control socket (tandem-mgmt talks to the node there)
	 * [/run/tandem/<node name>/node.sock] */
	char ctl_socket[108];
	/* reload behaviour: false = revalidate, true = flush (Symantec SEP) */
	bool reload_flush;
	/* zones, interfaces, rules */
	struct cfg_zone zones[CFG_MAX_ZONES];
	unsigned n_zones;
	struct cfg_iface ifaces[CFG_MAX_IFACES];
	unsigned n_ifaces;
	struct cfg_rule *rules;
	unsigned n_rules;
};

/* Load and validate. Returns 0 and *ret, or -EINVAL/-ENOENT/-ENOMEM with a
 * message in err ("FILE:LINE: SETTING: reason"). */
int config_load_file(const char *path, struct tandem_config **ret, char *err,
		     size_t errlen);
int config_load_string(const char *text, struct tandem_config **ret, char *err,
		       size_t errlen);
void config_free(struct tandem_config *c); /* accepts NULL */

/* Zone of an address from the zones' networks (longest prefix); 0 = none. */
uint8_t config_zone_of_addr(const struct tandem_config *c, uint8_t family,
			    const uint8_t *addr);
/* Interface id by kernel name; 0 = unknown. */
uint8_t config_iface_id(const struct tandem_config *c, const char *name);
/* Name of a zone id ("-" for 0/unknown). */
const char *config_zone_name(const struct tandem_config *c, uint8_t id);

#endif
