/*
 * wire.c - conversions between mgmt's internal values and proto/tandem.proto.
 *
 * Must never: map an unknown wire value onto a known internal one.
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>

static const Tandem__SessionState to_wire[MG_ST_MAX] = {
	[MG_ST_UNKNOWN] = TANDEM__SESSION_STATE__SS_UNKNOWN,
	[MG_ST_SYN_SENT] = TANDEM__SESSION_STATE__SS_TCP_SYN_SENT,
	[MG_ST_SYN_RECV] = TANDEM__SESSION_STATE__SS_TCP_SYN_RECV,
	[MG_ST_ESTABLISHED] = TANDEM__SESSION_STATE__SS_TCP_ESTABLISHED,
	[MG_ST_TCP_WAIT] = TANDEM__SESSION_STATE__SS_TCP_WAIT,
	[MG_ST_TIME_WAIT] = TANDEM__SESSION_STATE__SS_TCP_TIME_WAIT,
	[MG_ST_CLOSED] = TANDEM__SESSION_STATE__SS_TCP_CLOSED,
	[MG_ST_UDP] = TANDEM__SESSION_STATE__SS_UDP,
	[MG_ST_UDP_REPLIED] = TANDEM__SESSION_STATE__SS_UDP_REPLIED,
	[MG_ST_ICMP] = TANDEM__SESSION_STATE__SS_ICMP,
	[MG_ST_OTHER] = TANDEM__SESSION_STATE__SS_OTHER,
};

enum mg_state wire_state(Tandem__SessionState s)
{
	for (unsigned i = 0; i < MG_ST_MAX; i++)
		if (to_wire[i] == s)
			return (enum mg_state)i;
	return MG_ST_UNKNOWN;
}

void wire_filter(const struct filter *f, Tandem__Filter *pb)
{
	if (f->has & FILTER_PROTO) {
		pb->has_proto = 1;
		pb->proto = f->proto;
	}
	if (f->has & FILTER_SRC) {
		pb->has_src = pb->has_src_len = pb->has_src_family = 1;
		pb->src.data = (uint8_t *)f->src.addr;
		pb->src.len = sizeof(f->src.addr);
		pb->src_len = f->src.len;
		pb->src_family = f->src.family;
	}
	if (f->has & FILTER_DST) {
		pb->has_dst = pb->has_dst_len = pb->has_dst_family = 1;
		pb->dst.data = (uint8_t *)f->dst.addr;
		pb->dst.len = sizeof(f->dst.addr);
		pb->dst_len = f->dst.len;
		pb->dst_family = f->dst.family;
	}
	if (f->has & FILTER_SPORT) {
		pb->has_sport = 1;
		pb->sport = f->sport;
	}
	if (f->has & FILTER_DPORT) {
		pb->has_dport = 1;
		pb->dport = f->dport;
	}
	if (f->has & FILTER_IFACE)
		pb->iface = (char *)f->iface;
	if (f->has & FILTER_RULE)
		pb->rule = (char *)f->rule;
	if (f->has & FILTER_STATE) {
		pb->has_state = 1;
		pb->state = (unsigned)f->state < MG_ST_MAX ? to_wire[f->state]
					       : TANDEM__SESSION_STATE__SS_UNKNOWN;
	}
	if (f->has & FILTER_ORIGIN) {
		pb->has_origin = 1;
		pb->origin = f->origin == ORIGIN_PEER ? 2 : 1;
	}
}

const char *wire_mode_name(uint32_t mode)
{
	static const char *const names[] = {"off", "loose", "normal", "strict"};

	return mode < 4 ? names[mode] : NULL;
}

void wire_flags_names(uint32_t flags, char *out, size_t outlen)
{
	static const char *const names[8] = {
		"init-side1", "every-seen", "valid-start", "peer",
		"fin-orig", "fin-reply", "midstream", "keepalive",
	};
	size_t len = 0;

	out[0] = '\0';
	if (!flags) {
		snprintf(out, outlen, "none");
		return;
	}
	for (unsigned b = 0; b < 8; b++)
		if (flags & (1u << b)) {
			int n = snprintf(out + len, outlen - len, "%s%s",
					 len ? "," : "", names[b]);
			if (n < 0 || (size_t)n >= outlen - len)
				return;
			len += (size_t)n;
		}
	if (flags & ~0xffu)
		snprintf(out + len, outlen - len, "%s0x%x", len ? "," : "",
			 flags & ~0xffu);
}

int wire_status_code(int32_t status)
{
	return status >= 400 && status <= 599 ? status : 500;
}
