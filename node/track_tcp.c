/*
 * track_tcp.c - TCP state tracking as data.
 *
 * tcp_next[dir][flag class][state] gives the state after a packet; each row
 * says why. Sequence/window data is kept for every session (cheap, and it is
 * what strict mode, "every packet seen" and later keepalive probes need);
 * the window is only enforced in strict mode (Forcepoint), where an RST must
 * also fall in the window before it may end a session (Junos
 * rst-invalidate-session). The window test follows Guido van Rooij's
 * "Real stateful TCP packet filtering in IP Filter" (seq within what the
 * receiver allowed, not older than one receive window; ack within what the
 * receiver sent).
 *
 * Must never: touch the table, the clock or counters (pipeline.c does).
 */
#include "track.h"

#include <string.h>

enum tcp_class { TC_SYN, TC_SYNACK, TC_FIN, TC_ACK, TC_RST, TC_MAX };

/* Pseudo-states in the table. */
#define T_IGN 0xfe /* forward, keep state, no refresh */
#define T_INV 0xff /* drop: not possible in this state */
#define T_REO 0xfd /* SYN reusing a closed session: start over */

#define sSS SS_TCP_SYN_SENT
#define sSR SS_TCP_SYN_RECV
#define sES SS_TCP_ESTABLISHED
#define sWT SS_TCP_WAIT
#define sTW SS_TCP_TIME_WAIT
#define sCL SS_TCP_CLOSED

/* Column order: SYN_SENT, SYN_RECV, ESTABLISHED, WAIT, TIME_WAIT, CLOSED */
static const uint8_t tcp_next[2][TC_MAX][6] = {
	[0] = { /* original direction: initiator -> responder */
	[TC_SYN] =    { sSS,   sSR,   T_IGN, T_INV, T_REO, T_REO },
	/* retransmitted SYN restarts the handshake timer; a SYN into an
	 * established session is passed untouched (the responder answers
	 * with a challenge ACK, RFC 5961); after close it opens anew */
	[TC_SYNACK] = { T_INV, sES,   T_IGN, T_INV, T_INV, T_INV },
	/* only simultaneous open has the initiator send SYN/ACK */
	[TC_FIN] =    { T_INV, sWT,   sWT,   sWT,   sTW,   T_IGN },
	/* first FIN: half-closed (Palo Alto tcp-wait); the second FIN is
	 * resolved in code (WAIT -> TIME_WAIT when the other side closed) */
	[TC_ACK] =    { T_IGN, sES,   sES,   sWT,   sTW,   T_IGN },
	/* the initiator's ACK of the SYN/ACK completes the handshake */
	[TC_RST] =    { sCL,   sCL,   sCL,   sCL,   sCL,   sCL },
	},
	[1] = { /* reply direction: responder -> initiator */
	[TC_SYN] =    { sSR,   T_IGN, T_IGN, T_INV, T_INV, T_INV },
	/* a SYN back while SYN_SENT is simultaneous open */
	[TC_SYNACK] = { sSR,   sSR,   T_IGN, T_INV, T_INV, T_INV },
	/* SYN/ACK answers the SYN; a retransmitted one is harmless */
	[TC_FIN] =    { T_INV, sWT,   sWT,   sWT,   sTW,   T_IGN },
	[TC_ACK] =    { T_IGN, sSR,   sES,   sWT,   sTW,   T_IGN },
	/* the responder's ACK does not complete the handshake */
	[TC_RST] =    { sCL,   sCL,   sCL,   sCL,   sCL,   sCL },
	},
};

static inline bool seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}
static inline bool seq_after(uint32_t a, uint32_t b)
{
	return (int32_t)(b - a) < 0;
}

static enum tcp_class tcp_class_of(uint8_t f)
{
	if (f & PKT_TCP_RST)
		return TC_RST;
	if (f & PKT_TCP_SYN)
		return (f & PKT_TCP_ACK) ? TC_SYNACK : TC_SYN;
	if (f & PKT_TCP_FIN)
		return TC_FIN;
	return TC_ACK;
}

/* Window scale nibble per direction; 15 = the SYN carried no option. */
static unsigned wscale_get(const struct sess *s, unsigned dir)
{
	return dir ? (unsigned)(s->wscale >> 4) : (unsigned)(s->wscale & 15);
}
static void wscale_set(struct sess *s, unsigned dir, uint8_t opt)
{
	unsigned v = opt == 0xff ? 15 : (opt > 14 ? 14 : opt);
	s->wscale = dir ? (uint8_t)((s->wscale & 0x0f) | v << 4)
			: (uint8_t)((s->wscale & 0xf0) | v);
}
/* Scaling is in force only when both SYNs carried the option. */
static unsigned wscale_of(const struct sess *s, unsigned dir)
{
	unsigned a = wscale_get(s, 0), b = wscale_get(s, 1);
	if (a == 15 || b == 15)
		return 0;
	return dir ? b : a;
}

static uint32_t seg_len(const struct pkt *p)
{
	return (uint32_t)p->payload_len + !!(p->tcp_flags & PKT_TCP_SYN) +
	       !!(p->tcp_flags & PKT_TCP_FIN);
}

/* First packet seen from one side: start its window data. */
static void tcp_dir_init(struct sess *s, const struct pkt *p, unsigned dir)
{
	struct sess_tcp_dir *d = &s->tcp[dir];
	uint32_t end = p->tcp_seq + seg_len(p);
	d->end = end;
	d->maxend = end;
	d->maxwin = p->tcp_win ? p->tcp_win : 1;
	if (p->tcp_flags & PKT_TCP_SYN)
		wscale_set(s, dir, p->tcp_wscale);
}

enum window_verdict { W_OK, W_OUT, W_GAP };

/*
 * Check (when both sides are known) and update the window data of the
 * sender. Returns W_OUT when the segment lies outside the window, W_GAP
 * when it starts beyond everything seen so far (a segment was missed).
 */
static enum window_verdict tcp_window(struct sess *s, const struct pkt *p,
				      unsigned dir, bool enforce)
{
	struct sess_tcp_dir *snd = &s->tcp[dir], *rcv = &s->tcp[!dir];
	uint32_t seq = p->tcp_seq, len = seg_len(p), end = seq + len;
	uint32_t win = p->tcp_win;
	uint32_t ack = (p->tcp_flags & PKT_TCP_ACK) ? p->tcp_ack : rcv->end;

	if (snd->maxwin == 0) {
		tcp_dir_init(s, p, dir);
		snd = &s->tcp[dir];
	} else if (p->tcp_flags & PKT_TCP_SYN) {
		/* a retransmitted SYN or SYN/ACK may carry a new ISN only when
		 * nothing else was seen yet: restart this side */
		if (s->state == SS_TCP_SYN_SENT || s->state == SS_TCP_SYN_RECV)
			tcp_dir_init(s, p, dir);
	}
	if (!(p->tcp_flags & PKT_TCP_SYN))
		win <<= wscale_of(s, dir);

	enum window_verdict v = W_OK;
	if (enforce && rcv->maxwin != 0 && !(p->tcp_flags & PKT_TCP_SYN)) {
		uint32_t maxack = snd->maxwin ? snd->maxwin : 66000;
		bool in = !seq_after(seq, snd->maxend) &&
			  !seq_before(end, snd->end - rcv->maxwin) &&
			  !seq_after(ack, rcv->end) &&
			  !seq_before(ack, rcv->end - maxack);
		if (!in)
			return W_OUT;
	}
	if (len && seq_after(seq, snd->end))
		v = W_GAP;

	if (win > snd->maxwin)
		snd->maxwin = win;
	if (seq_after(end, snd->end))
		snd->end = end;
	if ((p->tcp_flags & PKT_TCP_ACK) && seq_after(ack + win, rcv->maxend))
		rcv->maxend = ack + (win ? win : 1);
	return v;
}

enum drop_reason track_tcp_new(struct sess *s, const struct pkt *p,
			       enum track_mode mode)
{
	enum tcp_class c = tcp_class_of(p->tcp_flags);
	if (c == TC_SYN) {
		s->state = SS_TCP_SYN_SENT;
		s->flags |= SF_VALID_START | SF_EVERY_SEEN;
	} else if (mode == TRACK_LOOSE && (c == TC_ACK || c == TC_FIN)) {
		/* loose mode picks the connection up mid-stream */
		s->state = c == TC_FIN ? SS_TCP_WAIT : SS_TCP_ESTABLISHED;
		s->flags |= SF_MIDSTREAM;
	} else {
		return DROP_TCP_NOT_SYN;
	}
	memset(s->tcp, 0, sizeof(s->tcp));
	s->wscale = 0;
	tcp_dir_init(s, p, 0);
	if (c == TC_FIN)
		s->flags |= SF_FIN_ORIG;
	return DROP_NONE;
}

void track_tcp(struct sess *s, const struct pkt *p, unsigned dir,
	       const struct track_opts *o, struct track_out *out)
{
	enum tcp_class c = tcp_class_of(p->tcp_flags);
	unsigned col = (unsigned)s->state - SS_TCP_SYN_SENT;
	bool strict = SESS_MODE(s) == TRACK_STRICT;

	out->drop = DROP_NONE;
	out->end = false;
	out->refresh = false;
	out->reopen = false;
	out->state_changed = false;
	if (col >= 6) { /* not a TCP state: cannot happen for a TCP key */
		out->drop = DROP_TCP_STATE;
		return;
	}
	uint8_t next = tcp_next[dir][c][col];
	if (next == T_INV) {
		out->drop = DROP_TCP_STATE;
		return;
	}
	if (next == T_REO) {
		out->end = true;
		out->end_reason = END_REOPEN;
		out->reopen = true;
		return;
	}

	/* Data after this side's own FIN is not part of the connection. */
	unsigned fin_flag = dir ? SF_FIN_REPLY : SF_FIN_ORIG;
	if ((s->flags & fin_flag) && p->payload_len &&
	    seq_after(p->tcp_seq + p->payload_len, s->tcp[dir].end - 1)) {
		out->drop = DROP_TCP_STATE;
		return;
	}

	enum window_verdict w = tcp_window(s, p, dir, strict);
	if (w == W_OUT) {
		out->drop = c == TC_RST ? DROP_TCP_RST_WINDOW : DROP_TCP_WINDOW;
		return;
	}
	if (w == W_GAP) {
		if (strict) {
			out->drop = DROP_TCP_GAP;
			return;
		}
		s->flags &= (uint8_t)~SF_EVERY_SEEN;
	}

	if (next == T_IGN)
		return;

	if (c == TC_RST) {
		if (o->rst_invalidate) {
			out->end = true;
			out->end_reason = END_RST;
			return;
		}
	} else if (c == TC_FIN) {
		s->flags |= (uint8_t)fin_flag;
		if (o->fin_invalidate) {
			out->end = true;
			out->end_reason = END_FIN;
			return;
		}
		/* the second FIN, from the other side, closes both halves */
		if ((s->flags & (SF_FIN_ORIG | SF_FIN_REPLY)) ==
		    (SF_FIN_ORIG | SF_FIN_REPLY))
			next = SS_TCP_TIME_WAIT;
	}

	/* During the handshake only handshake packets restart the timer
	 * (tcp-initial-timeout), so stray ACKs cannot keep it alive. */
	bool handshake = s->state == SS_TCP_SYN_SENT ||
			 s->state == SS_TCP_SYN_RECV;
	out->refresh = !handshake || c == TC_SYN || c == TC_SYNACK ||
		       next != s->state;
	if (next != s->state) {
		s->state = next;
		out->state_changed = true;
	}
}
