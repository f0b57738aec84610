/*
 * track_tcp.c - TCP state tracking as data, with window tracking in every
 * stateful mode.
 *
 * tcp_next[dir][flag class][state] gives the state after a packet; each row
 * says why. Every packet of a tracked session then passes the window test
 * (tcp_window), modelled on the window tracking of Linux conntrack and pf
 * (Guido van Rooij, "Real stateful TCP packet filtering in IP Filter"):
 * per direction the highest sequence sent (end), the right edge the other
 * side allows (maxend), the largest window advertised (maxwin) and the
 * highest ack sent (maxack); window scaling only when both SYNs carried
 * the option. Four bounds:
 *   I   seq   <= sender.maxend                (not past the receiver's window)
 *   II  end   >= sender.end - receiver.maxwin (not older than one window)
 *   III ack   <= receiver.end                 (acks only data that was sent)
 *   IV  ack   >= receiver.end - max(sender.maxwin, 66000)
 * Breaking I or III is invalid (dropped); breaking II or IV is a
 * retransmission or a delayed ACK: forwarded, state untouched. A segment
 * with no data is judged by its ack only (keepalive probes at snd_nxt - 1).
 * Sessions picked up mid-stream (loose) and rules with sequence_check off
 * are tracked liberally: bounds only grow, nothing is dropped for them.
 *
 * Resets (RFC 5961 section 3.2): below what the receiver already acked, or
 * outside the window -> dropped; in an established session an RST in the
 * window but not at the exact expected sequence (the receiver's highest
 * ack) is forwarded and the session kept, so the receiver's challenge ACK
 * and the exact RST that follows pass; exact -> the session ends.
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
#define T_PASS 0xfb /* forward untouched: no state, no window (see row) */
#define T_NEW 0xfc /* SYN with a new ISN, or a SYN/ACK, on an open session:
		    * forwarded unchecked and remembered (see syn_on_open) */

#define sSS SS_TCP_SYN_SENT
#define sSR SS_TCP_SYN_RECV
#define sES SS_TCP_ESTABLISHED
#define sWT SS_TCP_WAIT
#define sTW SS_TCP_TIME_WAIT
#define sCL SS_TCP_CLOSED

/* Column order: SYN_SENT, SYN_RECV, ESTABLISHED, WAIT, TIME_WAIT, CLOSED */
static const uint8_t tcp_next[2][TC_MAX][6] = {
	[0] = { /* original direction: initiator -> responder */
	[TC_SYN] =    { sSS,   sSR,   T_NEW, T_NEW, T_REO, T_REO },
	/* a retransmitted SYN restarts the handshake timer; a SYN into an
	 * open session passes (the responder answers with a challenge ACK,
	 * RFC 5961 4.2, or, when it lost the connection, with a SYN/ACK
	 * that reopens it); after close it opens anew (RFC 1122 4.2.2.13) */
	[TC_SYNACK] = { T_INV, sES,   T_IGN, T_INV, T_INV, T_INV },
	/* only simultaneous open has the initiator send SYN/ACK */
	[TC_FIN] =    { T_INV, sWT,   sWT,   sWT,   sTW,   T_IGN },
	/* first FIN: half-closed (Palo Alto tcp-wait); the second FIN is
	 * resolved in code (WAIT -> TIME_WAIT when the other side closed).
	 * A FIN before the responder answered is a scan */
	[TC_ACK] =    { T_INV, sES,   sES,   sWT,   sTW,   T_IGN },
	/* the initiator's ACK of the SYN/ACK completes the handshake; an
	 * ACK or data before any SYN/ACK answers nothing (RFC 793) */
	[TC_RST] =    { sCL,   sCL,   sCL,   sCL,   sCL,   sCL },
	/* judged by sequence in code (rst_check) */
	},
	[1] = { /* reply direction: responder -> initiator */
	[TC_SYN] =    { sSR,   T_IGN, T_IGN, T_INV, T_REO, T_INV },
	/* a SYN back while SYN_SENT is simultaneous open; in TIME_WAIT
	 * the responder opens the same ports the other way: the old
	 * session ends and the SYN is a new flow for the policy */
	[TC_SYNACK] = { sSR,   sSR,   T_NEW, T_NEW, T_INV, T_INV },
	/* SYN/ACK answers the SYN (its ack checked in code); a
	 * retransmitted one is harmless; on an open session it reopens the
	 * session when it answers a SYN that passed (syn_on_open) */
	[TC_FIN] =    { T_INV, sWT,   sWT,   sWT,   sTW,   T_IGN },
	[TC_ACK] =    { T_PASS, sSR,  sES,   sWT,   sTW,   T_IGN },
	/* the responder's ACK does not complete the handshake; an ACK while
	 * SYN_SENT is the challenge ACK of a responder that still holds an
	 * old connection (RFC 5961 4.2): it passes unchecked, the initiator
	 * answers it with an RST at its ack, and its next SYN gets through */
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
static uint8_t wscale_nibble(uint8_t opt)
{
	return opt == 0xff ? 15 : (opt > 14 ? 14 : opt);
}
static void wscale_set(struct sess *s, unsigned dir, uint8_t nib)
{
	s->wscale = dir ? (uint8_t)((s->wscale & 0x0f) | nib << 4)
			: (uint8_t)((s->wscale & 0xf0) | nib);
}
/* Scaling is in force only when both SYNs carried the option (RFC 7323). */
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

static unsigned maxack_flag(unsigned dir)
{
	return dir ? STF_MAXACK1 : STF_MAXACK0;
}

/* A SYN or SYN/ACK starts (or restarts) its sender's side. */
static void dir_init_syn(struct sess *s, const struct pkt *p, unsigned dir)
{
	struct sess_tcp_dir *d = &s->tcp[dir];
	uint32_t end = p->tcp_seq + seg_len(p);
	d->end = end;
	d->maxend = end;
	d->maxwin = p->tcp_win ? p->tcp_win : 1;
	d->maxack = 0;
	s->tflags &= (uint8_t)~maxack_flag(dir);
	wscale_set(s, dir, wscale_nibble(p->tcp_wscale));
}

/* First packet seen from a side mid-stream (pickup, or the responder's
 * first packet after a pickup): take what the packet says. */
static void dir_init_mid(struct sess *s, const struct pkt *p, unsigned dir,
			 uint32_t ack)
{
	struct sess_tcp_dir *d = &s->tcp[dir], *r = &s->tcp[!dir];
	uint32_t end = p->tcp_seq + seg_len(p);
	uint32_t win = (uint32_t)p->tcp_win << wscale_of(s, dir);
	d->end = end;
	d->maxwin = win ? win : 1;
	d->maxend = end + d->maxwin;
	if (r->maxwin == 0) {
		/* the other side not seen yet: let its bounds start at what
		 * this packet acks, so III and IV hold until it speaks */
		r->end = ack;
		r->maxend = ack;
	} else if (ack == r->end + 1) {
		r->end++; /* most likely the answer to a keepalive probe */
	}
}

enum window_verdict {
	W_OK,     /* in the window: state updated */
	W_OLD,    /* a retransmission or a delayed ACK: forward, no update */
	W_OVER,   /* past the advertised edge by less than a max window:
		   * forward, only the sender's end moved */
	W_OUT,    /* outside the window: drop */
};

/*
 * Check the segment against the window and, when it is in it, move the
 * bounds. `liberal`: never refuse, only grow the bounds.
 */
static enum window_verdict tcp_window(struct sess *s, const struct pkt *p,
				      unsigned dir, bool liberal)
{
	struct sess_tcp_dir *snd = &s->tcp[dir], *rcv = &s->tcp[!dir];
	uint32_t seq = p->tcp_seq, end = seq + seg_len(p);
	uint32_t win = p->tcp_win;
	bool has_ack = p->tcp_flags & PKT_TCP_ACK;
	uint32_t ack = p->tcp_ack;

	if ((p->tcp_flags & (PKT_TCP_ACK | PKT_TCP_RST)) ==
		    (PKT_TCP_ACK | PKT_TCP_RST) && ack == 0)
		has_ack = false; /* some stacks send RST+ACK with ack 0 */
	if (!has_ack)
		ack = rcv->end; /* no ACK: pretend it acks what was sent */
	uint32_t sack = ack;
	if (has_ack && p->tcp_has_sack && seq_after(p->tcp_sack, sack))
		sack = p->tcp_sack;

	if (snd->maxwin == 0) {
		if (p->tcp_flags & PKT_TCP_SYN)
			dir_init_syn(s, p, dir);
		else
			dir_init_mid(s, p, dir, ack);
		snd = &s->tcp[dir];
		if (!has_ack)
			return W_OK; /* a SYN with nothing to check yet */
	}
	if (!(p->tcp_flags & PKT_TCP_SYN))
		win <<= wscale_of(s, dir);

	/* A side learned from a peer holds the active's bounds as of its last
	 * update, which a busy stream has moved past since. Its first packet
	 * here (not an RST: that is judged by the bounds it has) re-anchors it
	 * liberally; a stale receiver does not judge the acks, it takes them. */
	unsigned stale_snd = dir ? STF_STALE1 : STF_STALE0;
	unsigned stale_rcv = dir ? STF_STALE0 : STF_STALE1;
	bool anchor = (s->tflags & stale_snd) && !(p->tcp_flags & PKT_TCP_RST);
	if (anchor) {
		liberal = true;
		s->tflags &= (uint8_t)~stale_snd;
		if (seq_after(end, snd->end))
			snd->end = end;
		if (seq_after(snd->end + rcv->maxwin, snd->maxend))
			snd->maxend = snd->end + rcv->maxwin;
	}
	if ((s->tflags & stale_rcv) && has_ack && seq_after(sack, rcv->end))
		rcv->end = sack;

	/* No data: judged by the ack only (pure ACKs, keepalive probes);
	 * an RST always by its sequence. */
	if (seq == end && !(p->tcp_flags & PKT_TCP_RST))
		seq = end = snd->end;

	if (!liberal && rcv->maxwin != 0) {
		uint32_t maxack = snd->maxwin > 66000 ? snd->maxwin : 66000;
		bool ack_hi = !seq_after(sack, rcv->end);           /* III */
		bool ack_lo = !seq_before(sack, rcv->end - maxack); /* IV */
		bool recent = !seq_before(end, snd->end - rcv->maxwin); /* II */
		if (seq_after(seq, snd->maxend)) {
			/* I broken: past the receiver's window. Stacks do
			 * overshoot a window that just shrank or was
			 * misread; up to the receiver's largest window is
			 * taken (as Linux takes it), with only the sender's
			 * end moved, so the receiver's ACK of it is valid. */
			uint32_t over = end - snd->maxend + 1;
			if (recent && ack_lo && ack_hi && over <= rcv->maxwin) {
				snd->end = end;
				return W_OVER;
			}
			return W_OUT;
		}
		if (!ack_hi)
			return W_OUT;   /* III: acks data never sent */
		if (!ack_lo || !recent)
			return W_OLD;   /* IV or II: a delayed ACK, or data
					 * acked long ago sent again */
	}

	/* in the window (or liberal): move the bounds */
	if (win > snd->maxwin)
		snd->maxwin = win;
	if (seq_after(end, snd->end))
		snd->end = end;
	if (has_ack) {
		if (!(s->tflags & maxack_flag(dir)) || seq_after(ack, snd->maxack))
			snd->maxack = ack;
		s->tflags |= (uint8_t)maxack_flag(dir);
	}
	/* a segment past the advertised edge (which the bounds allow up to
	 * one max window) widens what the receiver is taken to accept */
	if (rcv->maxwin != 0 && seq_after(end, snd->maxend))
		rcv->maxwin += end - snd->maxend;
	if (seq_after(sack + win, rcv->maxend - 1))
		rcv->maxend = sack + (win ? win : 1);
	if (liberal && seq_after(end, snd->maxend))
		snd->maxend = end;
	return W_OK;
}

enum drop_reason track_tcp_new(struct sess *s, const struct pkt *p,
			       enum track_mode mode,
			       const struct track_opts *o)
{
	enum tcp_class c = tcp_class_of(p->tcp_flags);
	bool pickup = mode == TRACK_LOOSE || !o->syn_check;
	if (c == TC_SYN) {
		s->state = SS_TCP_SYN_SENT;
		s->flags |= SF_VALID_START | SF_EVERY_SEEN;
	} else if (pickup && (c == TC_ACK || c == TC_FIN)) {
		/* loose mode (or syn_check off: Junos no-syn-check) picks
		 * the connection up mid-stream, and tracks it liberally */
		s->state = c == TC_FIN ? SS_TCP_WAIT : SS_TCP_ESTABLISHED;
		s->flags |= SF_MIDSTREAM;
	} else {
		return DROP_TCP_NOT_SYN;
	}
	memset(s->tcp, 0, sizeof(s->tcp));
	s->wscale = 0xff; /* both sides: no option seen */
	s->tflags = 0;
	if (c == TC_SYN) {
		dir_init_syn(s, p, 0);
	} else {
		s->wscale = 0; /* mid-stream: the scale is unknown, take none */
		dir_init_mid(s, p, 0, p->tcp_ack);
		if (p->tcp_flags & PKT_TCP_ACK) {
			s->tcp[0].maxack = p->tcp_ack;
			s->tflags |= STF_MAXACK0;
		}
	}
	if (c == TC_FIN)
		s->flags |= SF_FIN_ORIG;
	return DROP_NONE;
}

static void out_clear(struct track_out *out)
{
	out->drop = DROP_NONE;
	out->note = TN_NONE;
	out->end = false;
	out->refresh = false;
	out->reopen = false;
	out->state_changed = false;
}

/*
 * A SYN with a new ISN on an open session, or a SYN/ACK there. The SYN
 * passes and is remembered (Linux keeps it the same way): the responder
 * answers it with a challenge ACK (it still has the connection; the ACK
 * is checked as any other) or with a SYN/ACK acking that SYN (it lost the
 * connection), which reopens the session as a new handshake. A SYN/ACK
 * that answers nothing remembered is a retransmission of the original
 * one, or forged: it passes untouched (the initiator answers it), except
 * in strict mode.
 */
static void syn_on_open(struct sess *s, const struct pkt *p, unsigned dir,
			bool strict, struct track_out *out)
{
	if (dir == 0) { /* the initiator's SYN */
		s->syn_end = p->tcp_seq + 1;
		s->syn_win = p->tcp_win;
		s->syn_wscale = wscale_nibble(p->tcp_wscale);
		s->tflags |= STF_SYN_PENDING;
		out->note = TN_SYN_ON_OPEN;
		return;
	}
	if ((s->tflags & STF_SYN_PENDING) && (p->tcp_flags & PKT_TCP_ACK) &&
	    p->tcp_ack == s->syn_end) {
		/* both ends are in a new handshake; so are we now */
		struct sess_tcp_dir *o = &s->tcp[0];
		o->end = o->maxend = s->syn_end;
		o->maxwin = s->syn_win ? s->syn_win : 1;
		o->maxack = 0;
		s->tflags = 0;
		memset(&s->tcp[1], 0, sizeof(s->tcp[1]));
		wscale_set(s, 0, s->syn_wscale);
		dir_init_syn(s, p, 1);
		s->flags &= (uint8_t)~(SF_FIN_ORIG | SF_FIN_REPLY | SF_MIDSTREAM);
		s->flags |= SF_VALID_START | SF_EVERY_SEEN;
		s->state = SS_TCP_SYN_RECV;
		out->state_changed = true;
		out->refresh = true;
		out->note = TN_REOPENED;
		return;
	}
	/* the handshake's own SYN/ACK again (the responder never got the
	 * final ACK): its sequence is at the responder's start, its ack
	 * within what the initiator sent */
	bool resent = (p->tcp_flags & PKT_TCP_ACK) && s->tcp[1].maxwin &&
		      !seq_after(p->tcp_seq + 1, s->tcp[1].end) &&
		      !seq_after(p->tcp_ack, s->tcp[0].end) &&
		      !seq_before(p->tcp_seq + 1, s->tcp[1].end - s->tcp[0].maxwin);
	if (strict && !resent) {
		out->drop = DROP_TCP_STATE;
		return;
	}
	out->note = TN_IGNORED;
}

/* RFC 5961 3.2 on top of the window test. Returns true when the RST
 * ends the session; sets out->drop or out->note otherwise. */
static bool rst_check(struct sess *s, const struct pkt *p, unsigned dir,
		      bool liberal, bool nocheck, struct track_out *out)
{
	const struct sess_tcp_dir *rcv = &s->tcp[!dir];
	if (nocheck) {
		tcp_window(s, p, dir, true);
		return true;
	}
	if (s->state == SS_TCP_SYN_SENT && dir == 1) {
		/* answering the SYN: its ACK must acknowledge the SYN
		 * (RFC 793 3.4); without one it proves nothing */
		if (!(p->tcp_flags & PKT_TCP_ACK) ||
		    p->tcp_ack != s->tcp[0].end) {
			out->drop = DROP_TCP_RST_WINDOW;
			return false;
		}
		return true;
	}
	bool maxack = s->tflags & maxack_flag(!dir);
	if (maxack && seq_before(p->tcp_seq, rcv->maxack)) {
		out->drop = DROP_TCP_RST_WINDOW; /* below what was acked */
		return false;
	}
	enum window_verdict w = tcp_window(s, p, dir, liberal);
	if (w != W_OK && w != W_OVER) {
		out->drop = DROP_TCP_RST_WINDOW;
		return false;
	}
	if (s->state == SS_TCP_ESTABLISHED && maxack &&
	    p->tcp_seq != rcv->maxack) {
		/* in the window, not exact: the receiver answers it with a
		 * challenge ACK; the session stays */
		out->note = TN_RST_IN_WINDOW;
		return false;
	}
	return true;
}

void track_tcp(struct sess *s, const struct pkt *p, unsigned dir,
	       const struct track_opts *o, struct track_out *out)
{
	enum tcp_class c = tcp_class_of(p->tcp_flags);
	unsigned col = (unsigned)s->state - SS_TCP_SYN_SENT;
	bool strict = SESS_MODE(s) == TRACK_STRICT;
	bool nocheck = !o->sequence_check; /* Junos no-sequence-check */
	bool liberal = (s->flags & SF_MIDSTREAM) || nocheck;

	out_clear(out);
	if (col >= 6) { /* not a TCP state: cannot happen for a TCP key */
		out->drop = DROP_TCP_STATE;
		return;
	}
	uint8_t next = tcp_next[dir][c][col];
	if (next == T_INV) {
		out->drop = DROP_TCP_STATE;
		return;
	}
	if (next == T_PASS) {
		out->note = TN_IGNORED;
		return;
	}
	if (next == T_REO) {
		out->end = true;
		out->end_reason = END_REOPEN;
		out->reopen = true;
		return;
	}
	if (next == T_NEW) {
		syn_on_open(s, p, dir, strict, out);
		return;
	}

	/* Data after this side's own FIN is not part of the connection. */
	unsigned fin_flag = dir ? SF_FIN_REPLY : SF_FIN_ORIG;
	if ((s->flags & fin_flag) && p->payload_len &&
	    seq_after(p->tcp_seq + p->payload_len, s->tcp[dir].end - 1)) {
		out->drop = DROP_TCP_STATE;
		return;
	}

	if (c == TC_RST) {
		if (!rst_check(s, p, dir, liberal, nocheck, out))
			return;
		if (o->rst_invalidate) {
			out->end = true;
			out->end_reason = END_RST;
			return;
		}
		if (s->state != SS_TCP_CLOSED) {
			s->state = SS_TCP_CLOSED;
			out->state_changed = true;
		}
		out->refresh = true;
		return;
	}

	/* A SYN/ACK must acknowledge the SYN it answers, exactly. */
	if (c == TC_SYNACK && p->tcp_ack != s->tcp[!dir].end &&
	    s->tcp[!dir].maxwin) {
		out->drop = DROP_TCP_SYNACK_ACK;
		return;
	}
	/* A retransmitted SYN with a new ISN restarts the initiator's side
	 * while the handshake is open (RFC 793: a restarted host picks a
	 * new ISN). A second SYN/ACK with another ISN does not replace the
	 * first: the initiator answers the first that reaches it, and Linux
	 * keeps the first too; it passes untouched. */
	if (c == TC_SYNACK && s->state == SS_TCP_SYN_RECV && dir == 1 &&
	    p->tcp_seq + 1 != s->tcp[1].end) {
		out->note = TN_IGNORED;
		return;
	}
	if (c == TC_SYN && s->tcp[dir].maxwin &&
	    (s->state == SS_TCP_SYN_SENT || s->state == SS_TCP_SYN_RECV) &&
	    p->tcp_seq + 1 != s->tcp[dir].end) {
		dir_init_syn(s, p, dir);
		if (dir == 0)
			memset(&s->tcp[1], 0, sizeof(s->tcp[1]));
	}

	uint32_t end_before = s->tcp[dir].end;
	enum window_verdict w = tcp_window(s, p, dir, liberal);
	if (w == W_OUT) {
		out->drop = DROP_TCP_WINDOW;
		return;
	}
	if (w == W_OLD || w == W_OVER) {
		out->note = w == W_OLD ? TN_OLD : TN_OVERSHOOT;
		return; /* forwarded; proves nothing about the session */
	}
	/* a segment that starts beyond everything seen from its sender: one
	 * was missed (or is reordered). Not a reason to drop; the session
	 * just no longer had every packet seen (Forcepoint normal->strict). */
	if (p->payload_len && seq_after(p->tcp_seq, end_before) &&
	    s->tcp[dir].maxwin)
		s->flags &= (uint8_t)~SF_EVERY_SEEN;

	if (next == T_IGN)
		return;

	if (c == TC_FIN) {
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
