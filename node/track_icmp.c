/*
 * track_icmp.c - ICMP/ICMPv6 query sessions (echo and the other
 * request/reply pairs, keyed by identifier) and generic protocols.
 *
 * Forcepoint: in normal and strict mode an ICMP session must begin with a
 * request (a reply with no request, or with another identifier, answers
 * nothing, as Linux conntrack also holds); only loose mode lets a reply
 * open one, without the "began with a valid request" flag that a later
 * loose->strict policy change checks. ICMP errors never open sessions: pipeline.c maps them to
 * the session they quote. Must never: touch the table, clock or counters.
 */
#include "track.h"

enum drop_reason track_icmp_new(struct sess *s, const struct pkt *p,
				enum track_mode mode)
{
	if (p->icmp_kind == PKT_ICMP_REPLY && mode != TRACK_LOOSE)
		return DROP_ICMP_NO_REQUEST;
	s->state = SS_ICMP;
	if (p->icmp_kind == PKT_ICMP_REQUEST)
		s->flags |= SF_VALID_START;
	return DROP_NONE;
}

void track_icmp(struct sess *s, const struct pkt *p, unsigned dir,
		struct track_out *out)
{
	(void)s;
	(void)p;
	(void)dir;
	out->drop = DROP_NONE;
	out->note = TN_NONE;
	out->end = false;
	out->reopen = false;
	out->refresh = true;
	out->state_changed = false;
}

enum drop_reason track_other_new(struct sess *s, const struct pkt *p,
				 enum track_mode mode)
{
	(void)p;
	(void)mode;
	s->state = SS_OTHER;
	s->flags |= SF_VALID_START;
	return DROP_NONE;
}
