/*
 * filter.c - parsing session filters (SRX `show security flow session`
 * style) into struct filter.
 *
 * Must never: leave *ret partly written on error (the struct is built on the
 * stack and copied out only on success).
 */
#include "filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[MG_ST_MAX] = {
	[MG_ST_UNKNOWN] = "unknown",
	[MG_ST_SYN_SENT] = "syn-sent",
	[MG_ST_SYN_RECV] = "syn-recv",
	[MG_ST_ESTABLISHED] = "established",
	[MG_ST_TCP_WAIT] = "tcp-wait",
	[MG_ST_TIME_WAIT] = "time-wait",
	[MG_ST_CLOSED] = "closed",
	[MG_ST_UDP] = "udp",
	[MG_ST_UDP_REPLIED] = "udp-replied",
	[MG_ST_ICMP] = "icmp",
	[MG_ST_OTHER] = "other",
};

const char *mg_state_name(enum mg_state s)
{
	return (unsigned)s < MG_ST_MAX ? state_names[s] : "?";
}

int mg_state_parse(const char *name, enum mg_state *ret)
{
	for (unsigned s = MG_ST_UNKNOWN + 1; s < MG_ST_MAX; s++)
		if (strcmp(name, state_names[s]) == 0) {
			*ret = (enum mg_state)s;
			return 0;
		}
	return -EINVAL;
}

static const struct {
	const char *name;
	uint8_t num;
} protos[] = {
	{"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"gre", 47}, {"esp", 50},
	{"ah", 51}, {"icmpv6", 58}, {"sctp", 132},
};

int filter_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int filter_proto_parse(const char *s, uint8_t *ret)
{
	uint64_t v;

	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strcmp(s, protos[i].name) == 0) {
			*ret = protos[i].num;
			return 0;
		}
	if (filter_parse_u64(s, 255, &v))
		return -EINVAL;
	*ret = (uint8_t)v;
	return 0;
}

const char *filter_proto_name(unsigned proto)
{
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (protos[i].num == proto)
			return protos[i].name;
	return NULL;
}

static int parse_prefix(const char *s, struct filter_prefix *ret)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	struct filter_prefix p = {0};
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	if (alen == 0 || alen >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	if (inet_pton(AF_INET, tmp, p.addr) == 1) {
		p.family = 4;
		p.len = 32;
	} else if (inet_pton(AF_INET6, tmp, p.addr) == 1) {
		p.family = 6;
		p.len = 128;
	} else {
		return -EINVAL;
	}
	if (slash) {
		uint64_t len;
		if (filter_parse_u64(slash + 1, p.len, &len))
			return -EINVAL;
		p.len = (uint8_t)len;
	}
	/* Host bits must be zero: "10.1.0.5/16" is most likely a typo. */
	unsigned bytes = p.family == 4 ? 4 : 16;
	for (unsigned bit = p.len; bit < bytes * 8; bit++)
		if (p.addr[bit / 8] & (0x80 >> (bit % 8)))
			return -EDOM;
	*ret = p;
	return 0;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= FILTER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static const struct {
	const char *word;
	unsigned bit;
} words[] = {
	{"proto", FILTER_PROTO}, {"src", FILTER_SRC}, {"dst", FILTER_DST},
	{"sport", FILTER_SPORT}, {"dport", FILTER_DPORT},
	{"iface", FILTER_IFACE}, {"rule", FILTER_RULE},
	{"state", FILTER_STATE}, {"origin", FILTER_ORIGIN},
	{"limit", FILTER_LIMIT},
};

int filter_parse(int argc, char *const *argv, unsigned flags,
		 struct filter *ret, char *err, size_t errlen)
{
	struct filter f = {0};

	for (int i = 0; i < argc; i += 2) {
		const char *w = argv[i];
		unsigned bit = 0;
		for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (strcmp(w, words[k].word) == 0)
				bit = words[k].bit;
		if (!bit || (bit == FILTER_LIMIT && !(flags & FILTER_ALLOW_LIMIT))) {
			snprintf(err, errlen, "bad filter word '%s'", w);
			return -EINVAL;
		}
		if (f.has & bit) {
			snprintf(err, errlen, "%s given twice", w);
			return -EINVAL;
		}
		if (i + 1 >= argc) {
			snprintf(err, errlen, "%s: value missing", w);
			return -EINVAL;
		}
		const char *v = argv[i + 1];
		uint64_t n;
		int r = 0;
		const char *range = "";

		switch (bit) {
		case FILTER_PROTO:
			r = filter_proto_parse(v, &f.proto);
			range = " (tcp, udp, icmp, icmpv6 or 0..255)";
			break;
		case FILTER_SRC:
		case FILTER_DST:
			r = parse_prefix(v, bit == FILTER_SRC ? &f.src : &f.dst);
			range = r == -EDOM ? " (host bits set)" : " (address[/len])";
			break;
		case FILTER_SPORT:
		case FILTER_DPORT:
			r = filter_parse_u64(v, 65535, &n);
			range = " (0..65535)";
			if (!r && bit == FILTER_SPORT)
				f.sport = (uint16_t)n;
			else if (!r)
				f.dport = (uint16_t)n;
			break;
		case FILTER_IFACE:
		case FILTER_RULE:
			r = name_ok(v) ? 0 : -EINVAL;
			range = " (1..31 of A-Z a-z 0-9 _ . -)";
			if (!r)
				strcpy(bit == FILTER_IFACE ? f.iface : f.rule, v);
			break;
		case FILTER_STATE:
			r = mg_state_parse(v, &f.state);
			range = " (syn-sent syn-recv established tcp-wait time-wait"
				" closed udp udp-replied icmp other)";
			break;
		case FILTER_ORIGIN:
			if (strcmp(v, "local") == 0)
				f.origin = ORIGIN_LOCAL;
			else if (strcmp(v, "peer") == 0)
				f.origin = ORIGIN_PEER;
			else
				r = -EINVAL;
			range = " (local, peer)";
			break;
		case FILTER_LIMIT:
			r = filter_parse_u64(v, FILTER_LIMIT_MAX, &n);
			if (!r && n == 0)
				r = -ERANGE;
			if (!r)
				f.limit = (uint32_t)n;
			range = " (1..100000)";
			break;
		}
		if (r) {
			snprintf(err, errlen, "%s: bad value '%.64s'%s", w, v, range);
			return -EINVAL;
		}
		f.has |= bit;
	}
	*ret = f;
	return 0;
}
