/*
 * fuzz_sync.c - the bytes a peer with the right key sends, from the frame
 * to the node's table: sync_msg.c's frame checks (the harness seals each
 * payload with the cluster key, so the fuzzer gets past the tag), the
 * sender and replay checks, the PeerMsg read as syncd's peer.c reads it
 * (events in place, the rest unpacked into the arena), the mirror, the
 * SYNC_APPLY request syncd's repl.c builds for its node, and on the node
 * side what ctl.c does with it: pb_events over the request,
 * peer_rec_from_bytes(), the apply jobs into two shards; then packets
 * through the installed sessions, a takeover (promote), a revalidation and
 * a clear.
 *
 * Input:
 *   byte 0   bit 0 the node is a standby (the peer's copy wins), bit 1
 *            two shards, bit 2 promote at the end, bits 3-4 variant the
 *            sessions are revalidated against
 *   frames   ctl, ctl2, 2-byte length, payload. ctl bits 0-1: 0 sealed,
 *            1 sealed and one byte then changed (at ctl2), 2 the record is
 *            the whole frame, 3 sealed with a wrong header field; bits
 *            2-3 sender (peer 2, peer 3, ourselves, unknown); bits 4-5
 *            epoch (same, +1, -1, same); bits 6-7 sequence (+1, same,
 *            -(ctl2 % 70), +1000). ctl 0xff ends the frames.
 *   packets  op, 2-byte length, L3 bytes (op bits 0-2 clock step)
 *
 * Checked beyond the sanitizers: a sealed frame opens, a changed one never
 * does, and after the clear no session is left.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clock.h"
#include "connlimit.h"
#include "fuzz_common.h"
#include "jobs.h"
#include "mirror.h"
#include "pbwire.h"
#include "pipeline.h"
#include "sess_wire.h"
#include "sync_msg.h"
#include "tandem.pb-c.h"

#define CLUSTER 0x7a11u
#define MAX_FRAME (1u << 20)
#define SELF_ID 1
#define SHARDS 2

/* the field numbers repl.c and ctl.c agree on */
enum { PM_EVENTS = 1, EB_EVENTS = 1, CQ_SEQ = 1, CQ_CMD = 2, CQ_SOURCE = 6,
       CQ_EVENTS = 7 };

static struct tandem_config *cfgs[FUZZ_NODE_VARIANTS];
static struct policy *pols[FUZZ_NODE_VARIANTS];
static struct sync_key key;

static void setup(void)
{
	if (cfgs[0])
		return;
	if (sodium_init() < 0)
		abort();
	for (unsigned v = 0; v < FUZZ_NODE_VARIANTS; v++)
		fuzz_node_conf(v, &cfgs[v], &pols[v]);
	for (unsigned i = 0; i < SYNC_KEY_LEN; i++)
		key.k[i] = (uint8_t)(0xa5 ^ i * 7);
}

struct sender {
	uint16_t id;
	uint64_t epoch, seq;
	struct replay_win win;
	uint32_t gen;
};

struct run {
	struct shard sh[SHARDS];
	unsigned n;
	bool standby;
	struct sender peer[2];
	struct mirror *m;
	struct arena arena;
	struct buf rx, sess, batch, req;
	uint64_t node_seq;
	uint64_t refused[SR_MAX];
};

/* ctl.c's do_apply_packed + job_run_slice (offline: runs to the end). */
static void node_apply(struct run *r, const uint8_t *in, size_t len,
		       uint64_t now)
{
	uint64_t qv[CQ_CMD + 1] = {0};
	unsigned seen = 0;
	if (pb_scan(in, len, CQ_EVENTS, qv, CQ_CMD + 1, &seen) < 0 ||
	    qv[CQ_CMD] != TANDEM__CTL_REQUEST__CMD__SYNC_APPLY)
		__builtin_trap(); /* syncd's own request must read back */
	struct peer_rec *recs[SHARDS] = {NULL};
	uint32_t n[SHARDS] = {0}, cap[SHARDS] = {0};
	struct pb_events it;
	struct pb_event ev;
	int got;
	pb_events_begin(&it, in, len, CQ_EVENTS);
	while ((got = pb_events_next(&it, &ev)) != 0) {
		struct peer_rec pr;
		if (got < 0 || peer_rec_from_bytes(ev.session, ev.session_len,
						   r->sh[0].ctx->cfg, now, &pr) < 0)
			continue;
		pr.type = sync_type_from_wire(ev.type);
		unsigned s = pipeline_shard_of_addrs(pr.s.key.family,
						     pr.s.key.addr[0],
						     pr.s.key.addr[1], r->n);
		if (n[s] == cap[s]) {
			cap[s] = cap[s] ? cap[s] * 2 : 16;
			recs[s] = realloc(recs[s], cap[s] * sizeof(*recs[s]));
			if (!recs[s])
				abort();
		}
		recs[s][n[s]++] = pr;
	}
	for (unsigned s = 0; s < r->n; s++) {
		struct ctl_job j = {.kind = JOB_APPLY, .apply = recs[s],
				    .n_apply = n[s], .peer_wins = r->standby};
		while (!job_run_slice(&j, &r->sh[s], now))
			;
		free(recs[s]);
	}
}

/* repl.c's rx_events: each event into the mirror and the apply batch. */
static void rx_events(struct run *r, struct sender *p, const uint8_t *ev_in,
		      size_t ev_len, uint64_t now)
{
	struct pb_events it;
	struct pb_event ev;
	int got;
	buf_reset(&r->batch);
	pb_events_begin(&it, ev_in, ev_len, PM_EVENTS);
	while ((got = pb_events_next(&it, &ev)) != 0) {
		buf_reset(&r->sess);
		if (got < 0 || pb_strip_field(ev.session, ev.session_len,
					      PB_SESSION_REMAINING, &r->sess) < 0)
			continue;
		if (ev.type == TANDEM__SESSION_EVENT__TYPE__EXPIRE ||
		    ev.type == TANDEM__SESSION_EVENT__TYPE__DELETE)
			mirror_del(r->m, ev.id);
		else if (mirror_put(r->m, ev.id, p->id, r->sess.p, r->sess.len,
				    now + ev.remaining_ms, p->gen, NULL) < 0)
			abort();
		if (pb_put_event(&r->batch, EB_EVENTS, ev.type, r->sess.p,
				 r->sess.len, ev.remaining_ms) < 0)
			abort();
	}
	if (!r->batch.len)
		return;
	static const char src[] = "tandem-syncd";
	buf_reset(&r->req);
	if (pb_put_varint(&r->req, CQ_SEQ, ++r->node_seq) < 0 ||
	    pb_put_varint(&r->req, CQ_CMD, TANDEM__CTL_REQUEST__CMD__SYNC_APPLY) < 0 ||
	    pb_put_len(&r->req, CQ_SOURCE, src, sizeof(src) - 1) < 0 ||
	    pb_put_len(&r->req, CQ_EVENTS, r->batch.p, r->batch.len) < 0)
		abort();
	node_apply(r, r->req.p, r->req.len, now);
}

/* peer.c's check_frame + deliver, then repl.c's handling of events. */
static void frame_in(struct run *r, const uint8_t *f, size_t n, uint64_t now)
{
	struct sync_hdr h;
	enum sync_refusal rr = sync_frame_open(&key, CLUSTER, MAX_FRAME, f, n, &h);
	if (rr != SR_OK) {
		r->refused[rr]++;
		return;
	}
	int pi = h.node == r->peer[0].id ? 0 : h.node == r->peer[1].id ? 1 : -1;
	if (pi < 0) {
		r->refused[SR_UNKNOWN_NODE]++;
		return;
	}
	struct sender *p = &r->peer[pi];
	rr = replay_check(&p->win, h.epoch, h.seq, true);
	if (rr != SR_OK) {
		r->refused[rr]++;
		return;
	}
	const uint8_t *payload = f + SYNC_HDR_LEN;
	unsigned seen;
	int n_ev = pb_scan(payload, h.len, 1, NULL, 0, &seen);
	const uint8_t *body = payload;
	size_t body_len = h.len;
	if (n_ev > 0) {
		buf_reset(&r->rx);
		if (pb_strip_field(payload, h.len, 1, &r->rx) < 0) {
			r->refused[SR_BAD_PAYLOAD]++;
			return;
		}
		body = r->rx.p;
		body_len = r->rx.len;
	}
	Tandem__PeerMsg *m = n_ev < 0 ? NULL
		: tandem__peer_msg__unpack(&r->arena.pa, body_len, body);
	if (!m) {
		arena_reset(&r->arena);
		r->refused[SR_BAD_PAYLOAD]++;
		return;
	}
	replay_commit(&p->win, h.epoch, h.seq);
	if (m->has_bulk_begin && m->bulk_begin)
		p->gen++;
	if (n_ev > 0)
		rx_events(r, p, payload, h.len, now);
	if (m->has_bulk_end && m->bulk_end) {
		/* what the peer did not send again in its bulk is gone */
		for (uint32_t k = 0; k < mirror_slots(r->m); k++) {
			struct mirror_ent *e = mirror_at(r->m, k);
			if (e && e->origin == p->id && e->gen != p->gen)
				mirror_del(r->m, e->id);
		}
	}
	arena_reset(&r->arena);
}

/* One record of the frame section; false at its end. */
static bool frame_record(struct run *r, struct fz *f, uint64_t now)
{
	if (f->n < 4)
		return false;
	uint8_t ctl = fz_u8(f);
	if (ctl == 0xff)
		return false;
	uint8_t ctl2 = fz_u8(f);
	size_t len;
	uint8_t *payload = fz_record(f, &len);
	unsigned mode = ctl & 3, who = (ctl >> 2) & 3;
	if (mode == 2) { /* the bytes as they came */
		frame_in(r, payload, len, now);
		free(payload);
		return true;
	}
	static const uint16_t ids[4] = {2, 3, SELF_ID, 77};
	struct sender *p = &r->peer[who & 1];
	uint64_t epoch = p->epoch, seq = p->seq;
	switch ((ctl >> 4) & 3) {
	case 1: epoch++; break;
	case 2: epoch -= epoch > 0; break;
	default: break;
	}
	switch (ctl >> 6) {
	case 0: seq++; break;
	case 2: seq -= ctl2 % 70; break;
	case 3: seq += 1000; break;
	default: break;
	}
	p->epoch = epoch; /* the sender's counters move with what it sends */
	p->seq = seq;
	struct sync_hdr h = {.version = SYNC_VERSION, .node = ids[who],
			     .cluster = CLUSTER, .epoch = epoch, .seq = seq,
			     .len = (uint32_t)len};
	size_t flen = sync_frame_len(&h);
	uint8_t *fr = malloc(flen);
	if (!fr)
		abort();
	if (len)
		memcpy(fr + SYNC_HDR_LEN, payload, len);
	free(payload);
	sync_frame_seal(&key, &h, fr);
	struct sync_hdr got;
	if (sync_frame_open(&key, CLUSTER, MAX_FRAME, fr, flen, &got) != SR_OK ||
	    got.seq != seq || got.epoch != epoch || got.node != ids[who] ||
	    got.len != len)
		__builtin_trap(); /* a frame sealed with the key must open */
	if (mode == 1) {
		size_t at = ((size_t)ctl2 << 8 | (len & 0xff)) % flen;
		uint8_t x = (uint8_t)(ctl2 | 1);
		fr[at] ^= x;
		if (sync_frame_open(&key, CLUSTER, MAX_FRAME, fr, flen, &got) == SR_OK)
			__builtin_trap(); /* a changed frame must not */
	} else if (mode == 3) { /* the header changed after the seal */
		if (ctl2 & 1)
			h.cluster ^= 1;
		else if (ctl2 & 2)
			h.version++;
		else
			h.len++; /* announces one byte more than it has */
		sync_hdr_pack(&h, fr);
		if (sync_frame_open(&key, CLUSTER, MAX_FRAME, fr, flen, &got) == SR_OK)
			__builtin_trap();
	}
	frame_in(r, fr, flen, now);
	free(fr);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	struct fz f = {data, size};
	uint8_t b0 = fz_u8(&f);
	uint64_t now = 1000000;
	clock_use_manual(now);
	struct connlimit *lim;
	if (connlimit_new(1024, &lim) < 0)
		abort();
	unsigned alt = (b0 >> 3) & 3;
	struct node_ctx ctx, actx;
	node_ctx_init(&ctx, cfgs[0], pols[0], lim, false);
	node_ctx_init(&actx, cfgs[alt], pols[alt], lim, false);

	static struct run r;
	memset(&r, 0, sizeof(r));
	r.n = (b0 & 2) ? 2 : 1;
	r.standby = b0 & 1;
	r.peer[0] = (struct sender){.id = 2, .epoch = 5, .seq = 1000};
	r.peer[1] = (struct sender){.id = 3, .epoch = 9, .seq = 50};
	if (mirror_new(&r.m) < 0)
		abort();
	arena_init(&r.arena);
	for (unsigned i = 0; i < r.n; i++) {
		if (shard_init(&r.sh[i], (uint8_t)i, 64, &ctx, now) < 0)
			abort();
		r.sh[i].nshards = (uint8_t)r.n;
	}
	for (unsigned k = 0; k < 64 && frame_record(&r, &f, now); k++)
		;

	/* packets meet the sessions the peer installed */
	static const uint64_t steps[8] = {0, 1, 50, 1000, 5000, 30000, 400000,
					  4000000};
	for (unsigned k = 0; k < 64 && f.n >= 3; k++) {
		uint8_t op = fz_u8(&f);
		size_t len;
		uint8_t *l3 = fz_record(&f, &len);
		if (steps[op & 7]) {
			clock_advance_ms(steps[op & 7]);
			now = clock_now_ms();
			for (unsigned i = 0; i < r.n; i++)
				while (!pipeline_tick(&r.sh[i], now))
					;
		}
		struct pkt p;
		if (pkt_parse(&p, l3, (uint32_t)len) == DROP_NONE) {
			struct pipeline_result res;
			unsigned s = pipeline_shard_of(&p, r.n);
			pipeline_packet(&r.sh[s], &p, 0, 0, now, &res);
		}
		free(l3);
	}

	/* takeover, the policy check, the end */
	struct ctl_job j;
	for (unsigned i = 0; i < r.n; i++) {
		if (b0 & 4) {
			j = (struct ctl_job){.kind = JOB_PROMOTE};
			while (!job_run_slice(&j, &r.sh[i], now))
				;
		}
		j = (struct ctl_job){.kind = JOB_DIGEST};
		while (!job_run_slice(&j, &r.sh[i], now))
			;
		j = (struct ctl_job){.kind = JOB_REVALIDATE, .old_ctx = &ctx,
				     .new_ctx = &actx};
		while (!job_run_slice(&j, &r.sh[i], now))
			;
		j = (struct ctl_job){.kind = JOB_CLEAR};
		sess_filter_init(&j.filter);
		while (!job_run_slice(&j, &r.sh[i], now))
			;
		if (sess_table_count(r.sh[i].tab))
			__builtin_trap();
		shard_fini(&r.sh[i]);
	}
	buf_free(&r.rx);
	buf_free(&r.sess);
	buf_free(&r.batch);
	buf_free(&r.req);
	arena_fini(&r.arena);
	mirror_free(r.m);
	connlimit_free(lim);
	return 0;
}
