/*
 * repl.c - session replication between the node and the peers (see
 * repl.h, docs/syncd.md "Replication").
 *
 * Must never: forward a peer session to a peer, acknowledge before the
 * node replied, let one peer's queue exceed the backlog, or allocate per
 * event once its buffers have grown (events are copied into reused
 * buffers; frames and apply chunks are allocated per frame).
 */
#include "repl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "mirror.h"
#include "pbwire.h"

#define BULK_WINDOW (8u << 20)    /* unacknowledged bytes a bulk may have */
#define CHUNK_CLOSE (1u << 20)    /* an apply request closes above this */
#define LAT_RING 1024
#define SEED_LIMIT 100000         /* the node's SESSIONS maximum */
#define NODE_BULK_MIN_MS 5000     /* at most one SYNC_BULK per this */

/* PeerMsg / CtlRequest field numbers (proto/tandem.proto) */
enum { PM_EVENTS = 1, PM_BULK_BEGIN = 4, PM_BULK_END = 5, PM_BULK_REQUEST = 6,
       PM_ACK = 3, ACK_APPLIED = 1, EB_EVENTS = 1,
       CQ_SEQ = 1, CQ_CMD = 2, CQ_SOURCE = 6, CQ_EVENTS = 7 };

struct txframe {
	struct txframe *next;
	uint64_t seq;          /* sequence it was last sent with */
	uint64_t queued_ms;
	uint64_t sent_us;      /* uv_hrtime: ack latency only, not logic */
	uint32_t n_events;
	bool sent;             /* on the current link */
	bool sent_once;
	size_t len;
	uint8_t data[];
};

struct achunk {
	struct achunk *next;
	struct repl *r;
	unsigned peer;
	uint64_t upto;         /* the peer's last frame wholly in here */
	uint32_t n;
	bool inflight, done, failed;
	struct buf b;          /* EventBatch.events encodings */
};

struct rpeer {
	uint16_t id;
	/* out */
	struct buf batch;
	uint32_t batch_n;
	uint64_t batch_t0;
	struct txframe *q_head, **q_tail;
	size_t q_bytes;
	uint64_t q_events;
	bool linked, fresh;    /* fresh: up, its first heartbeat not seen */
	bool need_full;        /* frames were lost: full bulk at next link */
	bool based;            /* a bulk was started to it by this process */
	uint64_t acked_seq;
	enum bulk_state tx_state;
	uint32_t cursor;
	uint64_t tx_sent, tx_total, tx_t0, tx_t1;
	double tokens;
	uint64_t tok_ms;
	/* in */
	uint64_t rx_seq;       /* last frame of it on the sync path */
	uint64_t applied_seq;
	uint32_t gen;          /* its bulk generation */
	enum bulk_state rx_state;
	uint64_t rx_n, rx_t0, rx_t1;
	bool bulk_since_seed;  /* a whole bulk of it came after our seed request */
	bool need_bulk_request;
	uint32_t n_chunks;
	struct achunk *open;   /* its chunk still taking events */
	/* counters */
	uint64_t events_sent, events_received, resumes, full_bulks, overflows,
		 overruns;
	uint32_t lat[LAT_RING];
	unsigned lat_n, lat_i;
};

struct repl {
	uv_loop_t *loop;
	const struct sconf *conf;
	struct peers *ps;
	struct node_link *nl;
	struct mirror *m;
	struct rpeer p[SCONF_MAX_PEERS];
	unsigned n;
	uv_timer_t timer;
	bool timer_open, timer_on;
	bool node_up, node_synced, node_bulk, seeding, dropped_known;
	bool active;
	uint32_t node_gen;
	uint64_t node_dropped, last_node_bulk_ms;
	struct achunk *a_head, **a_tail;
	unsigned a_inflight;
	size_t a_bytes;        /* queued, not in flight */
	size_t a_count;
	struct buf scratch, packed, sess;
	struct repl_info st;
};

const char *bulk_state_name(enum bulk_state s)
{
	switch (s) {
	case BULK_IDLE: return "idle";
	case BULK_WAITING: return "waiting";
	case BULK_SENDING: return "sending";
	case BULK_DONE: return "done";
	}
	return "?";
}

static void on_timer(uv_timer_t *t);

int repl_new(uv_loop_t *loop, const struct sconf *conf, struct peers *ps,
	     struct node_link *nl, struct repl **ret)
{
	struct repl *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int e = mirror_new(&r->m);
	if (e < 0) {
		free(r);
		return e;
	}
	r->loop = loop;
	r->conf = conf;
	r->ps = ps;
	r->nl = nl;
	r->n = conf->n_peers;
	for (unsigned i = 0; i < r->n; i++) {
		r->p[i].id = conf->peers[i].id;
		r->p[i].q_tail = &r->p[i].q_head;
	}
	r->a_tail = &r->a_head;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	r->timer_open = true;
	*ret = r;
	return 0;
}

static void txq_clear(struct rpeer *p)
{
	struct txframe *f = p->q_head;
	while (f) {
		struct txframe *n = f->next;
		free(f);
		f = n;
	}
	p->q_head = NULL;
	p->q_tail = &p->q_head;
	p->q_bytes = 0;
	p->q_events = 0;
}

void repl_close(struct repl *r)
{
	if (r && r->timer_open) {
		uv_close((uv_handle_t *)&r->timer, NULL);
		r->timer_open = false;
	}
}

static void chunk_free(struct achunk *c)
{
	buf_free(&c->b);
	free(c);
}

void repl_free(struct repl *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->n; i++) {
		txq_clear(&r->p[i]);
		buf_free(&r->p[i].batch);
	}
	struct achunk *c = r->a_head;
	while (c) {
		struct achunk *n = c->next;
		if (c->inflight)
			c->r = NULL; /* the node link's callback frees it */
		else
			chunk_free(c);
		c = n;
	}
	buf_free(&r->scratch);
	buf_free(&r->packed);
	buf_free(&r->sess);
	mirror_free(r->m);
	free(r);
}

static void arm(struct repl *r)
{
	if (r->timer_on || !r->timer_open)
		return;
	/* 5 ms steps pace bulks; a flush_ms above that is honoured within
	 * 5 ms */
	uint64_t ms = r->conf->flush_ms && r->conf->flush_ms < 5 ? r->conf->flush_ms : 5;
	uv_timer_start(&r->timer, on_timer, ms, ms);
	r->timer_on = true;
}

/* ---- out: frames to a peer ----------------------------------------------- */

static void start_full_bulk(struct repl *r, unsigned i);

static void try_send(struct repl *r, unsigned i)
{
	struct rpeer *p = &r->p[i];
	if (!p->linked || p->fresh)
		return;
	uint64_t now_us = uv_hrtime() / 1000;
	for (struct txframe *f = p->q_head; f; f = f->next) {
		if (f->sent)
			continue;
		uint64_t seq;
		if (peers_send(r->ps, i, f->data, f->len, &seq) < 0)
			return; /* the link is going down: resent on the next */
		f->seq = seq;
		f->sent = f->sent_once = true;
		f->sent_us = now_us;
		p->events_sent += f->n_events;
	}
}

/* Queue one PeerMsg payload for peer i (and send it when linked). */
static void enqueue(struct repl *r, unsigned i, const uint8_t *data, size_t len,
		    uint32_t n_events)
{
	struct rpeer *p = &r->p[i];
	struct txframe *f = malloc(sizeof(*f) + len);
	if (!f) {
		p->need_full = true;
		return;
	}
	memset(f, 0, sizeof(*f));
	f->queued_ms = clock_now_ms();
	f->n_events = n_events;
	f->len = len;
	memcpy(f->data, data, len);
	*p->q_tail = f;
	p->q_tail = &f->next;
	p->q_bytes += len;
	p->q_events += n_events;
	if (p->q_bytes > r->conf->backlog_bytes) {
		/* the peer does not keep up (or is away): what it misses
		 * now comes with a full bulk */
		p->overflows++;
		txq_clear(p);
		if (p->linked && !p->fresh && r->node_synced) {
			start_full_bulk(r, i);
		} else {
			p->need_full = true;
			p->tx_state = p->tx_state == BULK_SENDING ? BULK_WAITING
								  : p->tx_state;
		}
		return;
	}
	try_send(r, i);
}

static void enqueue_flag(struct repl *r, unsigned i, unsigned field)
{
	uint8_t b[2] = {(uint8_t)(field << 3 | PB_VARINT), 1};
	enqueue(r, i, b, sizeof(b), 0);
}

static void flush_batch(struct repl *r, unsigned i)
{
	struct rpeer *p = &r->p[i];
	if (!p->batch_n)
		return;
	buf_reset(&r->scratch);
	if (pb_put_len(&r->scratch, PM_EVENTS, p->batch.p, p->batch.len) == 0)
		enqueue(r, i, r->scratch.p, r->scratch.len, p->batch_n);
	else
		p->need_full = true;
	buf_reset(&p->batch);
	p->batch_n = 0;
}

static void start_full_bulk(struct repl *r, unsigned i)
{
	struct rpeer *p = &r->p[i];
	txq_clear(p);
	buf_reset(&p->batch);
	p->batch_n = 0;
	p->need_full = false;
	p->based = true;
	p->tx_state = BULK_SENDING;
	p->cursor = 0;
	p->tx_sent = 0;
	p->tx_total = mirror_count_local(r->m);
	p->tx_t0 = p->tok_ms = clock_now_ms();
	p->tx_t1 = 0;
	p->tokens = 0;
	p->full_bulks++;
	enqueue_flag(r, i, PM_BULK_BEGIN);
	arm(r);
}

/* One step of peer i's bulk: frames while the rate and window allow. */
static void bulk_pump(struct repl *r, unsigned i, uint64_t now)
{
	struct rpeer *p = &r->p[i];
	if (p->tx_state != BULK_SENDING || !p->linked || p->fresh)
		return;
	double cap = r->conf->bulk_rate / 20.0; /* 50 ms of burst */
	if (cap < r->conf->batch_events)
		cap = r->conf->batch_events;
	p->tokens += (double)(now - p->tok_ms) * r->conf->bulk_rate / 1000.0;
	p->tok_ms = now;
	if (p->tokens > cap)
		p->tokens = cap;
	flush_batch(r, i); /* keep live events ahead of later bulk frames */
	while (p->tokens >= 1 && p->q_bytes < BULK_WINDOW) {
		uint32_t want = r->conf->batch_events;
		if (want > p->tokens)
			want = (uint32_t)p->tokens;
		uint32_t got = 0, scanned = 0, slots = mirror_slots(r->m);
		buf_reset(&r->packed);
		while (p->cursor < slots && got < want && scanned < 16 * want) {
			struct mirror_ent *e = mirror_at(r->m, p->cursor++);
			scanned++;
			if (!e || e->origin != MIRROR_LOCAL || e->deadline_ms <= now ||
			    e->held_by == p->id)
				continue;
			if (pb_put_event(&r->packed, EB_EVENTS,
					 TANDEM__SESSION_EVENT__TYPE__CREATE, e->data,
					 e->len, (uint32_t)(e->deadline_ms - now)) < 0)
				break;
			got++;
			if (r->packed.len > r->conf->max_frame / 2)
				break;
		}
		if (got) {
			buf_reset(&r->scratch);
			if (pb_put_len(&r->scratch, PM_EVENTS, r->packed.p,
				       r->packed.len) < 0)
				return;
			p->tx_sent += got;
			p->tokens -= got;
			enqueue(r, i, r->scratch.p, r->scratch.len, got);
			if (p->tx_state != BULK_SENDING)
				return; /* the queue overflowed */
		}
		if (p->cursor >= slots) {
			if (p->tx_sent > p->tx_total)
				p->tx_total = p->tx_sent;
			enqueue_flag(r, i, PM_BULK_END);
			p->tx_state = BULK_DONE;
			p->tx_t1 = now;
			return;
		}
		if (!got && scanned == 0)
			return;
	}
}

/* a verified Ack (or a heartbeat's applied_seq) of peer i */
static void handle_ack(struct repl *r, unsigned i, uint64_t applied)
{
	struct rpeer *p = &r->p[i];
	uint64_t now_us = uv_hrtime() / 1000;
	while (p->q_head && p->q_head->sent_once && p->q_head->seq <= applied) {
		struct txframe *f = p->q_head;
		p->q_head = f->next;
		if (!p->q_head)
			p->q_tail = &p->q_head;
		p->q_bytes -= f->len;
		p->q_events -= f->n_events;
		if (f->sent && f->n_events) {
			uint64_t us = now_us - f->sent_us;
			p->lat[p->lat_i] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
			p->lat_i = (p->lat_i + 1) % LAT_RING;
			if (p->lat_n < LAT_RING)
				p->lat_n++;
		}
		free(f);
	}
	if (applied > p->acked_seq)
		p->acked_seq = applied;
}

/* first heartbeat on a new link: resume the queue, or a full bulk */
static void link_decide(struct repl *r, unsigned i, uint64_t peer_applied)
{
	struct rpeer *p = &r->p[i];
	p->fresh = false;
	if (!r->node_synced) {
		txq_clear(p);
		p->tx_state = BULK_WAITING;
		return;
	}
	bool resume = p->based && !p->need_full && peer_applied > 0 &&
		      peer_applied >= p->acked_seq && p->tx_state != BULK_WAITING;
	if (!resume) {
		start_full_bulk(r, i);
		return;
	}
	p->resumes++;
	handle_ack(r, i, peer_applied);
	try_send(r, i);
	arm(r);
}

/* ---- in: a peer's events to the node ------------------------------------- */

static void issue_applies(struct repl *r);

static struct achunk *open_chunk(struct repl *r, unsigned i)
{
	struct rpeer *p = &r->p[i];
	if (p->open)
		return p->open;
	struct achunk *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->r = r;
	c->peer = i;
	*r->a_tail = c;
	r->a_tail = &c->next;
	r->a_count++;
	p->n_chunks++;
	p->open = c;
	return c;
}

static void send_ack(struct repl *r, unsigned i)
{
	uint8_t b[16];
	size_t n = 0;
	uint8_t inner[11];
	size_t in = 0;
	inner[in++] = ACK_APPLIED << 3 | PB_VARINT;
	in += pb_put_varint_raw(inner + in, r->p[i].applied_seq);
	b[n++] = PM_ACK << 3 | PB_LEN;
	b[n++] = (uint8_t)in;
	memcpy(b + n, inner, in);
	n += in;
	peers_send(r->ps, i, b, n, NULL);
}

static void pop_done(struct repl *r)
{
	bool acked[SCONF_MAX_PEERS] = {false};
	while (r->a_head && r->a_head->done) {
		struct achunk *c = r->a_head;
		r->a_head = c->next;
		if (!r->a_head)
			r->a_tail = &r->a_head;
		r->a_count--;
		struct rpeer *p = &r->p[c->peer];
		p->n_chunks--;
		if (c->failed) {
			p->need_bulk_request = true;
			arm(r);
		} else {
			if (c->upto > p->applied_seq)
				p->applied_seq = c->upto;
			if (!p->n_chunks && !p->need_bulk_request &&
			    p->rx_seq > p->applied_seq)
				p->applied_seq = p->rx_seq;
			acked[c->peer] = true;
		}
		chunk_free(c);
	}
	for (unsigned i = 0; i < r->n; i++)
		if (acked[i])
			send_ack(r, i);
}

static void on_applied(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct achunk *c = arg;
	struct repl *r = c->r;
	if (!r) {
		chunk_free(c); /* repl already gone */
		return;
	}
	c->done = true;
	c->inflight = false;
	r->a_inflight--;
	if (err < 0 || rep->status != 0) {
		c->failed = true;
		r->st.apply_errors++;
	} else {
		unsigned long long a = 0, co = 0, re = 0;
		if (rep->error && sscanf(rep->error, "applied %llu conflicts %llu refused %llu",
					 &a, &co, &re) == 3) {
			r->st.conflicts += co;
			r->st.refused += re;
		}
		r->st.applied += rep->has_count ? rep->count : c->n;
	}
	if (err == -ECANCELED)
		return; /* closing: nothing more to do */
	pop_done(r);
	issue_applies(r);
}

static void issue_applies(struct repl *r)
{
	if (!r->node_up)
		return;
	for (struct achunk *c = r->a_head; c && r->a_inflight < r->conf->apply_inflight;
	     c = c->next) {
		if (c->inflight || c->done)
			continue;
		if (!c->n) {
			/* nothing to apply (its events were already gone):
			 * completes at once, in order */
			if (r->p[c->peer].open == c)
				r->p[c->peer].open = NULL;
			c->done = true;
			continue;
		}
		if (r->p[c->peer].open == c)
			r->p[c->peer].open = NULL;
		uint64_t seq = node_link_next_seq(r->nl);
		buf_reset(&r->scratch);
		static const char src[] = "tandem-syncd";
		pb_put_varint(&r->scratch, CQ_SEQ, seq);
		pb_put_varint(&r->scratch, CQ_CMD, TANDEM__CTL_REQUEST__CMD__SYNC_APPLY);
		pb_put_len(&r->scratch, CQ_SOURCE, src, sizeof(src) - 1);
		if (pb_put_len(&r->scratch, CQ_EVENTS, c->b.p, c->b.len) < 0)
			return;
		if (node_link_request_packed(r->nl, seq, r->scratch.p, r->scratch.len,
					     on_applied, c) < 0)
			return;
		c->inflight = true;
		r->a_inflight++;
		r->a_bytes -= c->b.len;
	}
	pop_done(r);
}

/* Drop every queued (not in flight) chunk: the node cannot keep up or is
 * gone; the peers are asked for a bulk once it can. */
static void drop_queued(struct repl *r)
{
	for (struct achunk *c = r->a_head; c; c = c->next) {
		if (c->inflight || c->done)
			continue;
		if (r->p[c->peer].open == c)
			r->p[c->peer].open = NULL;
		r->a_bytes -= c->b.len;
		c->done = c->failed = true;
	}
	pop_done(r);
}

/* pack s for the mirror: Session without remaining_ms, into r->sess */
static int pack_session(struct repl *r, const Tandem__Session *s)
{
	size_t n = tandem__session__get_packed_size(s);
	buf_reset(&r->packed);
	int e = buf_reserve(&r->packed, n);
	if (e < 0)
		return e;
	r->packed.len = tandem__session__pack(s, r->packed.p);
	buf_reset(&r->sess);
	return pb_strip_field(r->packed.p, r->packed.len, PB_SESSION_REMAINING,
			      &r->sess);
}

/* ev's session for the mirror: without remaining_ms, into r->sess */
static int strip_session(struct repl *r, const struct pb_event *ev)
{
	buf_reset(&r->sess);
	return pb_strip_field(ev->session, ev->session_len, PB_SESSION_REMAINING,
			      &r->sess);
}

static bool is_end(unsigned t)
{
	return t == TANDEM__SESSION_EVENT__TYPE__EXPIRE ||
	       t == TANDEM__SESSION_EVENT__TYPE__DELETE;
}

static void rx_events(struct repl *r, unsigned i, const uint8_t *ev_in,
		      size_t ev_len)
{
	struct rpeer *p = &r->p[i];
	uint64_t now = clock_now_ms();
	struct achunk *c = open_chunk(r, i);
	if (!c) {
		p->need_bulk_request = true;
		return;
	}
	struct pb_events it;
	struct pb_event ev;
	int got;
	pb_events_begin(&it, ev_in, ev_len, PM_EVENTS);
	while ((got = pb_events_next(&it, &ev)) != 0) {
		if (got < 0 || strip_session(r, &ev) < 0) {
			r->st.bad_events++;
			continue;
		}
		struct mirror_ent *me = mirror_get(r->m, ev.id);
		bool ours = me && me->origin == MIRROR_LOCAL && r->active;
		if (!ours) {
			if (is_end(ev.type))
				mirror_del(r->m, ev.id);
			else
				mirror_put(r->m, ev.id, p->id, r->sess.p, r->sess.len,
					   now + ev.remaining_ms, p->gen, NULL);
		}
		size_t before = c->b.len;
		if (pb_put_event(&c->b, EB_EVENTS, ev.type, r->sess.p,
				 r->sess.len, ev.remaining_ms) < 0) {
			p->need_bulk_request = true;
			continue;
		}
		r->a_bytes += c->b.len - before;
		c->n++;
		p->events_received++;
		if (p->rx_state == BULK_SENDING)
			p->rx_n++;
	}
}

/* its bulk ended: what it did not send again is gone on its side */
static void sweep_peer(struct repl *r, unsigned i)
{
	struct rpeer *p = &r->p[i];
	struct achunk *c = open_chunk(r, i);
	if (!c)
		return;
	uint32_t slots = mirror_slots(r->m);
	for (uint32_t k = 0; k < slots; k++) {
		struct mirror_ent *e = mirror_at(r->m, k);
		if (!e || e->origin != p->id || e->gen == p->gen)
			continue;
		size_t before = c->b.len;
		if (pb_put_event(&c->b, EB_EVENTS, TANDEM__SESSION_EVENT__TYPE__DELETE,
				 e->data, e->len, 0) == 0) {
			r->a_bytes += c->b.len - before;
			c->n++;
			r->st.swept++;
		}
		mirror_del(r->m, e->id);
	}
}

void repl_msg(struct repl *r, unsigned i, const struct sync_hdr *h,
	      const Tandem__PeerMsg *m, const uint8_t *ev, size_t ev_len)
{
	struct rpeer *p = &r->p[i];
	if (m->heartbeat) {
		if (p->fresh)
			link_decide(r, i, m->heartbeat->applied_seq);
		else
			handle_ack(r, i, m->heartbeat->applied_seq);
	}
	if (m->ack)
		handle_ack(r, i, m->ack->applied_seq);
	p->rx_seq = h->seq;
	bool data = (m->has_bulk_begin && m->bulk_begin) || ev ||
		    (m->has_bulk_end && m->bulk_end);
	if (data && !r->node_up) {
		/* nowhere to apply it: ask again once the node is back */
		p->need_bulk_request = true;
	} else if (data) {
		if (p->rx_state == BULK_WAITING)
			p->rx_state = BULK_SENDING; /* its bulk resumed */
		if (m->has_bulk_begin && m->bulk_begin) {
			p->gen++;
			p->rx_state = BULK_SENDING;
			p->rx_n = 0;
			p->rx_t0 = clock_now_ms();
			p->rx_t1 = 0;
		}
		if (ev)
			rx_events(r, i, ev, ev_len);
		if (m->has_bulk_end && m->bulk_end && p->rx_state == BULK_SENDING) {
			sweep_peer(r, i);
			p->rx_state = BULK_DONE;
			p->bulk_since_seed = true;
			p->rx_t1 = clock_now_ms();
		}
		if (p->open) {
			p->open->upto = h->seq;
			if (p->open->b.len >= CHUNK_CLOSE)
				p->open = NULL;
		}
		if (r->a_bytes > r->conf->backlog_bytes) {
			p->overruns++;
			drop_queued(r);
		}
		issue_applies(r);
	}
	if (!p->n_chunks && !p->need_bulk_request && r->node_up)
		p->applied_seq = h->seq; /* nothing of it outstanding */
	if (m->has_bulk_request && m->bulk_request) {
		if (r->node_synced && p->linked && !p->fresh)
			start_full_bulk(r, i);
		else
			p->tx_state = BULK_WAITING;
	}
}

/* ---- node ---------------------------------------------------------------- */

static void on_seeded(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct repl *r = arg;
	if (err == -ECANCELED)
		return;
	r->seeding = false;
	if (err < 0 || rep->status != 0)
		return;
	uint64_t now = clock_now_ms();
	for (size_t k = 0; k < rep->n_sessions; k++) {
		const Tandem__Session *s = rep->sessions[k];
		/* the answer is older than whatever a peer sent meanwhile:
		 * an entry already there (a bulk's, with that bulk's
		 * generation) stays as it is, or the bulk's end would sweep
		 * the copy it has just sent again */
		if (mirror_get(r->m, s->id))
			continue;
		if (pack_session(r, s) < 0)
			continue;
		/* whose: the node id in the id's high bits when it is a
		 * peer, else the first peer (sessions promoted back and
		 * forth keep their creator's id) */
		int idx = peers_index(r->ps, (uint16_t)(s->id >> 48));
		struct rpeer *p = &r->p[idx >= 0 ? idx : 0];
		/* generation 0 is older than any bulk of the peer: its next
		 * bulk end sweeps it unless sent again */
		mirror_put(r->m, s->id, p->id, r->sess.p, r->sess.len,
			   now + s->remaining_ms, 0, NULL);
	}
	/* A whole bulk of the peer ended since the request (a loaded node
	 * answers late): its sweep is past, and what it did not send again
	 * (the copies of sessions the peer ended while we were away) would
	 * stay on the node for good. Swept now; what the bulk or a later
	 * event sent is in the mirror with the bulk's generation. A bulk
	 * begun since then sweeps at its own end. */
	for (unsigned i = 0; i < r->n; i++)
		if (r->p[i].bulk_since_seed && r->p[i].rx_state == BULK_DONE)
			sweep_peer(r, i);
	issue_applies(r);
}

void repl_node_up(struct repl *r)
{
	r->node_up = true;
	r->node_synced = r->node_bulk = false;
	r->dropped_known = false;
	/* our node may have restarted: what we think it holds for the peers
	 * is reloaded from it, and each peer is asked for its table (its
	 * bulk_end then removes what it no longer has) */
	uint32_t slots = mirror_slots(r->m);
	for (uint32_t k = 0; k < slots; k++) {
		struct mirror_ent *e = mirror_at(r->m, k);
		if (e && e->origin != MIRROR_LOCAL)
			mirror_del(r->m, e->id);
	}
	for (unsigned i = 0; i < r->n; i++) {
		r->p[i].applied_seq = 0;
		r->p[i].rx_state = BULK_IDLE;
		r->p[i].bulk_since_seed = false;
		if (r->p[i].linked && !r->p[i].fresh)
			r->p[i].need_bulk_request = true;
	}
	if (r->n) {
		Tandem__Filter f = TANDEM__FILTER__INIT;
		f.has_origin = true;
		f.origin = 2;
		Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
		q.cmd = TANDEM__CTL_REQUEST__CMD__SESSIONS;
		q.filter = &f;
		q.has_limit = true;
		q.limit = SEED_LIMIT;
		r->seeding = node_link_request(r->nl, &q, on_seeded, r) == 0;
	}
	arm(r);
}

void repl_node_down(struct repl *r)
{
	r->node_up = r->node_synced = r->node_bulk = false;
	r->seeding = false;
	drop_queued(r);
}

static void node_event(struct repl *r, const struct pb_event *e, uint64_t now)
{
	if (strip_session(r, e) < 0) {
		r->st.bad_events++;
		return;
	}
	if (is_end(e->type)) {
		struct mirror_ent *me = mirror_get(r->m, e->id);
		if (me && me->origin == MIRROR_LOCAL)
			mirror_del(r->m, e->id);
	} else {
		/* a dump only describes the table: who else holds a session
		 * stays known; a live event is a change the peers need */
		struct mirror_ent *me = r->node_bulk ? mirror_get(r->m, e->id) : NULL;
		uint16_t held = me && me->origin == MIRROR_LOCAL ? me->held_by : 0;
		if (mirror_put(r->m, e->id, MIRROR_LOCAL, r->sess.p, r->sess.len,
			       now + e->remaining_ms, r->node_gen, &me) < 0)
			/* out of memory: the mirror misses it; a later bulk
			 * is the only repair */
			r->st.bad_events++;
		else
			me->held_by = held;
	}
	if (r->node_bulk)
		return; /* a full bulk to every peer follows */
	for (unsigned i = 0; i < r->n; i++) {
		struct rpeer *p = &r->p[i];
		if (p->need_full || p->tx_state == BULK_WAITING || !p->based)
			continue; /* it gets everything with its (first) bulk */
		if (!p->batch_n)
			p->batch_t0 = now;
		if (pb_put_event(&p->batch, EB_EVENTS, e->type, r->sess.p,
				 r->sess.len, e->remaining_ms) < 0) {
			p->need_full = true;
			continue;
		}
		if (++p->batch_n >= r->conf->batch_events ||
		    p->batch.len >= r->conf->max_frame / 2)
			flush_batch(r, i);
	}
}

void repl_node_stream(struct repl *r, const uint8_t *d, size_t n)
{
	uint64_t now = clock_now_ms();
	/* SyncStream: events = 1, bulk_begin = 2, bulk_end = 3, dropped = 4 */
	uint64_t v[5] = {0};
	unsigned seen;
	int n_ev = pb_scan(d, n, 1, v, 5, &seen);
	if (n_ev < 0) {
		r->st.bad_events++;
		return;
	}
	bool bulk_begin = (seen & 1u << 2) && v[2], bulk_end = (seen & 1u << 3) && v[3];
	bool has_dropped = seen & 1u << 4;
	uint64_t dropped = v[4];
	if (bulk_begin) {
		r->node_bulk = true;
		r->node_gen++;
	}
	if (n_ev > 0) {
		struct pb_events it;
		struct pb_event ev;
		int got;
		pb_events_begin(&it, d, n, 1);
		while ((got = pb_events_next(&it, &ev)) != 0) {
			if (got < 0)
				r->st.bad_events++;
			else
				node_event(r, &ev, now);
		}
	}
	if (bulk_end && r->node_bulk) {
		r->node_bulk = false;
		r->st.node_bulks++;
		uint32_t slots = mirror_slots(r->m);
		for (uint32_t k = 0; k < slots; k++) {
			struct mirror_ent *e = mirror_at(r->m, k);
			if (e && e->origin == MIRROR_LOCAL && e->gen != r->node_gen)
				mirror_del(r->m, e->id);
		}
		r->node_synced = true;
		/* what changed during the dump was not forwarded: every
		 * peer gets the whole table */
		for (unsigned i = 0; i < r->n; i++) {
			struct rpeer *p = &r->p[i];
			if (p->linked && !p->fresh)
				start_full_bulk(r, i);
			else
				p->need_full = true;
		}
	}
	if (has_dropped) {
		if (r->dropped_known && dropped > r->node_dropped &&
		    now - r->last_node_bulk_ms >= NODE_BULK_MIN_MS &&
		    !r->node_bulk) {
			/* the node lost events: read its table again */
			r->st.node_resyncs++;
			r->last_node_bulk_ms = now;
			node_link_bulk(r->nl);
		}
		r->node_dropped = dropped;
		r->dropped_known = true;
	}
	/* the node already batched these (its drain interval): with
	 * flush_ms = 0 they leave now, as one frame per peer */
	if (!r->conf->flush_ms)
		for (unsigned i = 0; i < r->n; i++)
			flush_batch(r, i);
	arm(r);
}

/* ---- links, roles, timer ------------------------------------------------- */

void repl_link(struct repl *r, unsigned i, bool up)
{
	struct rpeer *p = &r->p[i];
	p->linked = up;
	p->fresh = up;
	for (struct txframe *f = p->q_head; f; f = f->next)
		f->sent = false;
	if (!up && p->rx_state == BULK_SENDING)
		p->rx_state = BULK_WAITING; /* its bulk resumes or restarts */
}

void repl_set_active(struct repl *r, bool active)
{
	r->active = active;
}

void repl_promote(struct repl *r, bool from_init)
{
	uint32_t slots = mirror_slots(r->m);
	for (uint32_t k = 0; k < slots; k++) {
		struct mirror_ent *e = mirror_at(r->m, k);
		if (e && e->origin != MIRROR_LOCAL) {
			int i = peers_index(r->ps, e->origin);
			if (from_init && i >= 0 && r->p[i].linked)
				e->held_by = e->origin;
			mirror_set_origin(r->m, e, MIRROR_LOCAL);
			e->gen = r->node_gen;
		}
	}
}

void repl_bulk_all(struct repl *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		struct rpeer *p = &r->p[i];
		if (p->linked && !p->fresh && r->node_synced)
			start_full_bulk(r, i);
		else
			p->need_full = true;
	}
}

void repl_request_bulk(struct repl *r, unsigned i)
{
	if (i < r->n)
		r->p[i].need_bulk_request = true;
	arm(r);
}

static void on_timer(uv_timer_t *t)
{
	struct repl *r = t->data;
	uint64_t now = clock_now_ms();
	bool busy = false;
	for (unsigned i = 0; i < r->n; i++) {
		struct rpeer *p = &r->p[i];
		if (p->batch_n && now - p->batch_t0 >= r->conf->flush_ms)
			flush_batch(r, i);
		if (p->tx_state == BULK_WAITING && p->linked && !p->fresh &&
		    r->node_synced)
			start_full_bulk(r, i);
		bulk_pump(r, i, now);
		if (p->need_bulk_request && r->node_up && !r->seeding &&
		    !p->n_chunks && p->linked && !p->fresh) {
			uint8_t b[2] = {PM_BULK_REQUEST << 3 | PB_VARINT, 1};
			if (peers_send(r->ps, i, b, sizeof(b), NULL) == 0)
				p->need_bulk_request = false;
		}
		busy |= p->batch_n || p->tx_state == BULK_SENDING ||
			p->tx_state == BULK_WAITING || p->need_bulk_request;
	}
	if (!busy && r->timer_on) {
		uv_timer_stop(&r->timer);
		r->timer_on = false;
	}
}

/* ---- queries ------------------------------------------------------------- */

bool repl_gate(const struct repl *r)
{
	return r->node_up && !r->seeding && r->a_count == 0;
}

bool repl_synced_from(const struct repl *r, unsigned i)
{
	const struct rpeer *p = &r->p[i];
	return r->node_up && !r->seeding && p->linked && !p->fresh &&
	       p->rx_state == BULK_DONE && !p->need_bulk_request;
}

bool repl_holds_bulk_of(const struct repl *r, unsigned i)
{
	return r->node_up && !r->seeding && i < r->n &&
	       r->p[i].rx_state == BULK_DONE;
}

uint64_t repl_applied_seq(const struct repl *r, unsigned i)
{
	return r->p[i].applied_seq;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void repl_peer_info(const struct repl *r, unsigned i, uint64_t now,
		    struct repl_peer_info *ret)
{
	const struct rpeer *p = &r->p[i];
	struct repl_peer_info o = {
		.events_sent = p->events_sent,
		.events_received = p->events_received,
		.lag_events = p->q_events + p->batch_n,
		.tx_state = p->tx_state,
		.rx_state = p->rx_state,
		.tx_sent = p->tx_sent,
		.tx_total = p->tx_total,
		.rx_n = p->rx_n,
		.applied_seq = p->applied_seq,
		.acked_seq = p->acked_seq,
		.backlog_bytes = p->q_bytes,
		.resumes = p->resumes,
		.full_bulks = p->full_bulks,
		.overflows = p->overflows,
		.overruns = p->overruns,
	};
	if (p->q_head)
		o.lag_ms = now - p->q_head->queued_ms;
	else if (p->batch_n)
		o.lag_ms = now - p->batch_t0;
	if (p->tx_t0)
		o.tx_ms = (p->tx_t1 ? p->tx_t1 : now) - p->tx_t0;
	if (p->rx_t0)
		o.rx_ms = (p->rx_t1 ? p->rx_t1 : now) - p->rx_t0;
	if (p->lat_n) {
		uint32_t tmp[LAT_RING];
		memcpy(tmp, p->lat, p->lat_n * sizeof(tmp[0]));
		qsort(tmp, p->lat_n, sizeof(tmp[0]), cmp_u32);
		o.has_lat = true;
		o.ack_p50_us = tmp[p->lat_n / 2];
		o.ack_p99_us = tmp[(p->lat_n * 99) / 100];
	}
	*ret = o;
}

void repl_info(const struct repl *r, struct repl_info *ret)
{
	struct repl_info o = r->st;
	o.node_synced = r->node_synced;
	o.local = mirror_count_local(r->m);
	o.peer = mirror_count_peer(r->m);
	o.apply_pending = 0;
	for (const struct achunk *c = r->a_head; c; c = c->next)
		o.apply_pending += c->n;
	*ret = o;
}
