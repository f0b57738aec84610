/*
 * track_udp.c - UDP "state": one direction seen, or both.
 * A UDP session ends by timeout, or by an ICMP error that quotes it
 * (pipeline.c). Must never: touch the table, clock or counters.
 */
#include "track.h"

enum drop_reason track_udp_new(struct sess *s, const struct pkt *p,
			       enum track_mode mode)
{
	(void)p;
	(void)mode;
	s->state = SS_UDP;
	s->flags |= SF_VALID_START;
	return DROP_NONE;
}

void track_udp(struct sess *s, const struct pkt *p, unsigned dir,
	       struct track_out *out)
{
	(void)p;
	out->drop = DROP_NONE;
	out->note = TN_NONE;
	out->end = false;
	out->reopen = false;
	out->refresh = true;
	out->state_changed = false;
	if (dir == 1 && s->state == SS_UDP) {
		s->state = SS_UDP_REPLIED;
		out->state_changed = true;
	}
}

enum cfg_timeout track_timeout_class(const struct sess *s)
{
	switch ((enum sess_state)s->state) {
	case SS_TCP_SYN_SENT:
	case SS_TCP_SYN_RECV: return TO_TCP_INITIAL;
	case SS_TCP_ESTABLISHED: return TO_TCP_ESTABLISHED;
	case SS_TCP_WAIT: return TO_TCP_WAIT;
	case SS_TCP_TIME_WAIT: return TO_TCP_TIME_WAIT;
	case SS_TCP_CLOSED: return TO_TCP_CLOSED;
	case SS_UDP:
	case SS_UDP_REPLIED: return TO_UDP;
	case SS_ICMP: return TO_ICMP;
	default: return TO_OTHER;
	}
}

bool track_state_is_idle(enum sess_state st)
{
	return st == SS_TCP_ESTABLISHED || st == SS_UDP ||
	       st == SS_UDP_REPLIED || st == SS_ICMP || st == SS_OTHER;
}
