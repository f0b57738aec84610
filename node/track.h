/*
 * track.h - per-protocol state tracking of one session.
 *
 * track_tcp_*, track_udp_*, track_icmp_* look at a parsed packet and the
 * session it belongs to and say what happens: the packet's drop reason (or
 * none), the session's new state, and whether the session ends now. They
 * never touch the table, the clock or the counters: pipeline.c applies the
 * outcome, so the state machines stay pure and testable.
 */
#ifndef TANDEM_TRACK_H
#define TANDEM_TRACK_H

#include <stdbool.h>

#include "config.h"
#include "pkt.h"
#include "sess_table.h"
#include "stats.h"

/* Session-wide switches the trackers need from the config. */
struct track_opts {
	bool rst_invalidate;
	bool fin_invalidate;
	bool syn_check;      /* false: a non-SYN may open (Junos no-syn-check) */
	bool sequence_check; /* false: no window checks (no-sequence-check) */
};



struct track_out {
	enum drop_reason drop; /* DROP_NONE: forward */
	enum track_note note;  /* TN_NONE, or what is worth counting */
	bool end;              /* remove the session after forwarding */
	enum end_reason end_reason;
	bool refresh;          /* restart the state's idle timer */
	bool reopen;           /* SYN reuses a closed session's key: end it,
				* then handle the packet as a miss */
	bool state_changed;
};

/* The mode of a session's rule lives in the low 2 bits of s->mode;
 * bits 2 and 3 say it holds a per-source / per-destination limit unit. */
#define SESS_MODE(s)       ((enum track_mode)((s)->mode & 3))
#define SESS_LIMITED_SRC   0x04
#define SESS_LIMITED_DST   0x08

/* TCP: may this first packet open a session in `mode`? Fills the new
 * session's state and window data when it may. */
enum drop_reason track_tcp_new(struct sess *s, const struct pkt *p,
			       enum track_mode mode,
			       const struct track_opts *o);
/* TCP: a packet of an existing session, dir 0 = original, 1 = reply. */
void track_tcp(struct sess *s, const struct pkt *p, unsigned dir,
	       const struct track_opts *o, struct track_out *out);

enum drop_reason track_udp_new(struct sess *s, const struct pkt *p,
			       enum track_mode mode);
void track_udp(struct sess *s, const struct pkt *p, unsigned dir,
	       struct track_out *out);

/* ICMP/ICMPv6 queries (echo, timestamp ...) and other protocols. */
enum drop_reason track_icmp_new(struct sess *s, const struct pkt *p,
				enum track_mode mode);
void track_icmp(struct sess *s, const struct pkt *p, unsigned dir,
		struct track_out *out);
enum drop_reason track_other_new(struct sess *s, const struct pkt *p,
				 enum track_mode mode);

/* Timeout class of a session's current state. */
enum cfg_timeout track_timeout_class(const struct sess *s);
/* True for the states where a rule's idle_timeout replaces the default. */
bool track_state_is_idle(enum sess_state st);

#endif
