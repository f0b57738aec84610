/*
 * filter.h - the SRX-style session filter of `show sessions`, `show sessions
 * count` and `clear sessions`:
 *
 *   proto P   tcp udp icmp icmpv6 or 0..255    src PREFIX   dst PREFIX
 *   sport N   dport N (0..65535)                iface NAME   rule NAME
 *   state S   (names below)                     origin local|peer
 *   limit N   (show only, 1..FILTER_LIMIT_MAX)
 *
 * Each word at most once; a PREFIX is an IPv4/IPv6 address with an optional
 * /len and no host bits set. Parsing fills an internal struct; wire.c turns
 * it into the protobuf Filter (internal enums are not wire enums).
 *
 * Must never: accept a word twice, a number with a sign, spaces or trailing
 * junk, or a name with characters outside [A-Za-z0-9_.-].
 */
#ifndef TANDEM_MGMT_FILTER_H
#define TANDEM_MGMT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FILTER_LIMIT_MAX 100000u /* sessions in one reply */
#define FILTER_NAME_MAX  32      /* iface / rule names incl. NUL */

/* Session states as the protocol names them. */
enum mg_state {
	MG_ST_UNKNOWN = 0,
	MG_ST_SYN_SENT,
	MG_ST_SYN_RECV,
	MG_ST_ESTABLISHED,
	MG_ST_TCP_WAIT,
	MG_ST_TIME_WAIT,
	MG_ST_CLOSED,
	MG_ST_UDP,
	MG_ST_UDP_REPLIED,
	MG_ST_ICMP,
	MG_ST_OTHER,
	MG_ST_MAX
};

const char *mg_state_name(enum mg_state s);     /* "established", "?" */
int mg_state_parse(const char *name, enum mg_state *ret);

enum {
	FILTER_PROTO  = 1u << 0,
	FILTER_SRC    = 1u << 1,
	FILTER_DST    = 1u << 2,
	FILTER_SPORT  = 1u << 3,
	FILTER_DPORT  = 1u << 4,
	FILTER_IFACE  = 1u << 5,
	FILTER_RULE   = 1u << 6,
	FILTER_STATE  = 1u << 7,
	FILTER_ORIGIN = 1u << 8,
	FILTER_LIMIT  = 1u << 9, /* not a match criterion */
};

struct filter_prefix {
	uint8_t family; /* 4 or 6 */
	uint8_t len;
	uint8_t addr[16];
};

enum filter_origin { ORIGIN_LOCAL = 1, ORIGIN_PEER = 2 };

struct filter {
	unsigned has; /* FILTER_* bits */
	uint8_t proto;
	struct filter_prefix src, dst;
	uint16_t sport, dport;
	char iface[FILTER_NAME_MAX];
	char rule[FILTER_NAME_MAX];
	enum mg_state state;
	enum filter_origin origin;
	uint32_t limit;
};

/* Parse flags. */
#define FILTER_ALLOW_LIMIT 1u

/*
 * Parses argv[0..argc) into *ret. On error returns -EINVAL and writes a
 * message naming the offending word into err ("bad filter word 'x'",
 * "dport: bad value '70000' (0..65535)", "src given twice").
 */
int filter_parse(int argc, char *const *argv, unsigned flags,
		 struct filter *ret, char *err, size_t errlen);

/* Protocol number of a name ("tcp" 6 ...) or decimal 0..255. */
int filter_proto_parse(const char *s, uint8_t *ret);
const char *filter_proto_name(unsigned proto); /* NULL if no name */

/* Strict decimal 0..max. */
int filter_parse_u64(const char *s, uint64_t max, uint64_t *ret);

#endif
