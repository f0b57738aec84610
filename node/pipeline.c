/*
 * pipeline.c - one packet through one shard (see the diagram in
 * pipeline.h); read it top to bottom like pf_test().
 *
 * Must never: allocate, lock, log or make a system call per packet. The
 * only shared state written here is the limits table (atomic CAS, only when
 * a session of a limited rule is created or ends).
 */
#include "pipeline.h"

#include <errno.h>
#include <string.h>

#include "keepalive.h"
#include "mss.h"

/* ---- context ---------------------------------------------------------- */

void node_ctx_init(struct node_ctx *ctx, const struct tandem_config *cfg,
		   const struct policy *pol, struct connlimit *lim,
		   bool zones_by_iface)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->pol = pol;
	ctx->lim = lim;
	for (unsigned i = 0; i < TO_MAX; i++)
		ctx->timeout_ms[i] = (uint64_t)cfg->timeout[i] * 1000u;
	ctx->topts.rst_invalidate = cfg->rst_invalidate;
	ctx->topts.fin_invalidate = cfg->fin_invalidate;
	ctx->topts.syn_check = cfg->syn_check;
	ctx->topts.sequence_check = cfg->sequence_check;
	ctx->zones_by_iface = zones_by_iface;
}

static void expire_cb(void *arg, struct sess *s);

int shard_init(struct shard *sh, uint8_t id, uint32_t capacity,
	       const struct node_ctx *ctx, uint64_t now_ms)
{
	memset(sh, 0, sizeof(*sh));
	int r = sess_table_new(capacity, ctx->cfg->node_id, id, now_ms,
			       &sh->tab);
	if (r < 0)
		return r;
	sh->ctx = ctx;
	sh->id = id;
	const struct tandem_config *c = ctx->cfg;
	/* 100 % means off: the count can never exceed the capacity */
	sh->age_high = c->age_high_pct >= 100
			       ? capacity
			       : (uint32_t)((uint64_t)capacity * c->age_high_pct / 100);
	sh->age_low = (uint32_t)((uint64_t)capacity * c->age_low_pct / 100);
	/* pf purges 64 states at a time; a wheel slot visit is cheaper than a
	 * state, so allow more per tick but keep it bounded. */
	sh->tick_budget = 1024;
	sess_table_set_wake(sh->tab, pipeline_ka_wake, sh);
	return 0;
}

void shard_fini(struct shard *sh)
{
	sess_table_free(sh->tab);
	sh->tab = NULL;
	sync_out_free(sh->sync);
	sh->sync = NULL;
}

/* ---- helpers ---------------------------------------------------------- */

static inline void count_verdict(struct shard *sh, struct pipeline_result *res,
				 enum verdict v, enum drop_reason why)
{
	res->verdict = v;
	res->drop = why;
	sh->st.verdict[v]++;
	if (why != DROP_NONE)
		sh->st.drop[why]++;
}

uint8_t pipeline_iface_zone(const struct tandem_config *c, uint8_t iface)
{
	if (iface == 0 || iface > c->n_ifaces)
		return 0;
	return c->ifaces[iface - 1].zone;
}

uint64_t pipeline_sess_timeout_ms(const struct node_ctx *ctx,
				const struct sess *s)
{
	enum cfg_timeout cls = track_timeout_class(s);
	if (track_state_is_idle((enum sess_state)s->state) &&
	    s->rule < ctx->cfg->n_rules) {
		uint32_t idle = ctx->cfg->rules[s->rule].idle_timeout;
		if (idle)
			return (uint64_t)idle * 1000u;
	}
	return ctx->timeout_ms[cls];
}

static inline void emit(struct shard *sh, enum sess_event ev,
			const struct sess *s, enum end_reason why)
{
	if (sh->on_event)
		sh->on_event(sh->event_arg, ev, s);
	/* replication: local sessions only, never what a peer sent */
	if (sh->sync && !(s->flags & SF_PEER) &&
	    atomic_load_explicit(&sh->sync->subscribed, memory_order_relaxed))
		sync_push(sh->sync, ev == SEV_CREATE ? SYNC_CREATE
				    : ev == SEV_STATE ? SYNC_STATE
				    : why == END_EXPIRED ? SYNC_EXPIRE
				    : SYNC_DELETE, s);
}

static void limits_put(struct shard *sh, const struct sess *s)
{
	if (!(s->mode & (SESS_LIMITED_SRC | SESS_LIMITED_DST)))
		return;
	unsigned init = (s->flags & SF_INIT_SIDE1) ? 1 : 0;
	if (s->mode & SESS_LIMITED_SRC)
		connlimit_release(sh->ctx->lim, s->rule, LIMIT_SIDE_SRC,
			       s->key.addr[init]);
	if (s->mode & SESS_LIMITED_DST)
		connlimit_release(sh->ctx->lim, s->rule, LIMIT_SIDE_DST,
			       s->key.addr[!init]);
}

/* ---- keepalive (SunScreen tcp_keepalive) ------------------------------ */

/* First offset that fits under a session's timeout. */
static unsigned ka_first(const struct tandem_config *cfg, uint64_t timeout)
{
	unsigned i = 0;
	while (i < cfg->n_ka_offsets &&
	       (uint64_t)cfg->ka_offsets[i] * 1000u >= timeout)
		i++;
	return i;
}

uint64_t pipeline_ka_wake(void *arg, struct sess *s, uint64_t now)
{
	struct shard *sh = arg;
	const struct tandem_config *cfg = sh->ctx->cfg;
	unsigned n = cfg->n_ka_offsets;
	/* a standby's copies do not probe: the active does */
	if ((s->flags & SF_PEER) || s->state != SS_TCP_ESTABLISHED || !n)
		return 0;
	/* a forgotten login does not stay open for ever */
	if (cfg->ka_max_lifetime &&
	    (uint32_t)(now / 1000u) - s->created >= cfg->ka_max_lifetime)
		return 0;
	uint64_t exp = now + sess_remaining_ms(s, now);
	uint64_t timeout = pipeline_sess_timeout_ms(sh->ctx, s);
	unsigned i = KA_IDX(s), first = ka_first(cfg, timeout);
	/* offsets longer than the session's timeout do not apply */
	if (i < first)
		i = first;
	bool sent = false;
	while (i < n && now >= exp - (uint64_t)cfg->ka_offsets[i] * 1000u) {
		uint64_t due = exp - (uint64_t)cfg->ka_offsets[i] * 1000u;
		if (!sent && now - due <= KA_LATE_MS) {
			if (sh->probe)
				sh->probe(sh->probe_arg, s);
			sh->st.ka_probes++;
			sent = true;
		}
		i++;
	}
	KA_SET(s, i);
	return i < n ? exp - (uint64_t)cfg->ka_offsets[i] * 1000u : 0;
}

/* Bookkeeping of a session that ends, before it leaves the table. */
static void account_end(struct shard *sh, struct sess *s, enum end_reason why)
{
	if (why == END_RST && (s->flags & SF_KEEPALIVE) &&
	    KA_IDX(s) > ka_first(sh->ctx->cfg, pipeline_sess_timeout_ms(sh->ctx, s)))
		sh->st.ka_rst++;
	sh->st.ended[why]++;
	sh->st.ended_state[proto_class_of(s->key.proto)][s->state]++;
	limits_put(sh, s);
	emit(sh, SEV_END, s, why);
}

void pipeline_end_session(struct shard *sh, struct sess *s,
			  enum end_reason why)
{
	account_end(sh, s, why);
	sess_table_remove(sh->tab, s);
}

static void expire_cb(void *arg, struct sess *s)
{
	account_end(arg, s, END_EXPIRED);
}

static void aged_cb(void *arg, struct sess *s)
{
	account_end(arg, s, END_AGED);
}

/* Who may make room in a full table: a local session that never saw a
 * reply (TCP still in SYN_SENT, one-way UDP, an ICMP query or other flow
 * without an answer), the one that has waited longest since its last
 * packet first. (Soonest to expire is not it: a fresh SYN's 20 s run out
 * before a flood's 60 s UDP entries.) Established, replied sessions are
 * never evicted; a peer's copies belong to the active. */
static uint64_t unreplied(void *arg, const struct sess *s)
{
	struct shard *sh = arg;
	if (s->flags & SF_PEER)
		return 0;
	switch (s->state) {
	case SS_TCP_SYN_SENT:
	case SS_UDP:
		break;
	case SS_ICMP:
	case SS_OTHER:
		if (s->pkts[1] == 0)
			break;
		return 0;
	default:
		return 0;
	}
	uint64_t to = pipeline_sess_timeout_ms(sh->ctx, s);
	uint64_t left = sess_remaining_ms(s, sh->evict_now);
	return (to > left ? to - left : 0) + 1;
}

static void evicted_cb(void *arg, struct sess *s)
{
	account_end(arg, s, END_EVICTED);
}

/* The kernel's own queue balancing hashes with a random seed, which a peer
 * cannot reproduce; the node's nft table instead sends a packet to queue
 * (last byte of source ^ last byte of destination) mod n, the same for
 * both directions and computable here, so a peer's session can be
 * installed in the shard that will see its packets. */
unsigned pipeline_shard_of_addrs(uint8_t family, const uint8_t *a,
				 const uint8_t *b, unsigned n)
{
	unsigned last = family == 4 ? 3 : 15;
	unsigned v = (unsigned)(a[last] ^ b[last]);
	return (n & (n - 1)) == 0 ? v & (n - 1) : v % n;
}

unsigned pipeline_shard_of(const struct pkt *p, unsigned n)
{
	/* an ICMP error belongs where the flow it quotes is */
	if (p->icmp_kind == PKT_ICMP_ERROR)
		return pipeline_shard_of_addrs(p->family, p->inner.src,
					       p->inner.dst, n);
	return pipeline_shard_of_addrs(p->family, p->src, p->dst, n);
}

/* Zones of a flow from src to dst. */
static void flow_zones(const struct node_ctx *ctx, uint8_t family,
		       const uint8_t *src, const uint8_t *dst, uint8_t iif,
		       uint8_t oif, uint8_t *zin, uint8_t *zout)
{
	if (ctx->zones_by_iface) {
		*zin = pipeline_iface_zone(ctx->cfg, iif);
		*zout = pipeline_iface_zone(ctx->cfg, oif);
	} else {
		*zin = config_zone_of_addr(ctx->cfg, family, src);
		*zout = config_zone_of_addr(ctx->cfg, family, dst);
	}
}

/* ---- ICMP errors ------------------------------------------------------ */

/* An ICMP error belongs to the session of the packet it quotes; it never
 * opens one. Junos: an ICMP error for a UDP session ends that session. */
static void icmp_error(struct shard *sh, const struct pkt *p, uint8_t iif,
		       uint8_t oif, struct pipeline_result *res)
{
	const struct pkt_inner *in = &p->inner;
	/* The queue was chosen by the error's own addresses (a router's, for
	 * one); the quoted flow may live in another shard: hand it over. */
	if (sh->nshards > 1) {
		unsigned owner = pipeline_shard_of(p, sh->nshards);
		if (owner != sh->id) {
			res->requeue_to = (uint8_t)owner;
			count_verdict(sh, res, V_REQUEUE, DROP_NONE);
			return;
		}
	}
	uint8_t za, zb;
	if (sh->ctx->zones_by_iface)
		flow_zones(sh->ctx, p->family, NULL, NULL, iif, oif, &za, &zb);
	else
		flow_zones(sh->ctx, p->family, in->src, in->dst, 0, 0, &za,
			   &zb);
	struct sess_key k;
	unsigned side;
	sess_key_make(&k, p->family, in->proto, in->src, in->dst, in->sport,
		      in->dport, za, zb, &side);
	struct sess *s = sess_table_lookup(sh->tab, &k, sess_key_hash(&k));
	if (!s) {
		count_verdict(sh, res, V_DROP, DROP_ICMP_ERR_NO_SESSION);
		return;
	}
	unsigned init = (s->flags & SF_INIT_SIDE1) ? 1 : 0;
	unsigned dir = side == init ? 1 : 0; /* travels against the quote */
	s->pkts[dir]++;
	s->bytes[dir] += p->len;
	count_verdict(sh, res, V_ACCEPT, DROP_NONE);
	if (s->key.proto == PKT_PROTO_UDP) {
		pipeline_end_session(sh, s, END_ICMP_ERROR);
		return;
	}
	res->sess = s;
}

/* ---- the packet ------------------------------------------------------- */

/* The tracker's switches for a rule's sessions: the node's, with the
 * rule's tcp = { ... } on top. */
static inline void rule_topts(const struct node_ctx *ctx, unsigned rule,
			      struct track_opts *o)
{
	*o = ctx->topts;
	if (rule >= ctx->cfg->n_rules)
		return;
	const struct cfg_rule *r = &ctx->cfg->rules[rule];
	if (r->syn_check)
		o->syn_check = r->syn_check == 2;
	if (r->sequence_check)
		o->sequence_check = r->sequence_check == 2;
}

static enum drop_reason track_new(const struct node_ctx *ctx, struct sess *s,
				  const struct pkt *p, enum track_mode mode,
				  unsigned rule)
{
	struct track_opts o;
	switch (p->proto) {
	case PKT_PROTO_TCP:
		rule_topts(ctx, rule, &o);
		return track_tcp_new(s, p, mode, &o);
	case PKT_PROTO_UDP: return track_udp_new(s, p, mode);
	case PKT_PROTO_ICMP:
	case PKT_PROTO_ICMPV6:
		if (p->icmp_kind != PKT_ICMP_OTHER)
			return track_icmp_new(s, p, mode);
		/* other ICMP types are generic flows */
		return track_other_new(s, p, mode);
	default: return track_other_new(s, p, mode);
	}
}

static void track_existing(struct shard *sh, struct sess *s,
			   const struct pkt *p, unsigned dir,
			   struct track_out *out)
{
	struct track_opts o;
	switch (p->proto) {
	case PKT_PROTO_TCP:
		rule_topts(sh->ctx, s->rule, &o);
		track_tcp(s, p, dir, &o, out);
		sh->st.tcp_note[out->note]++;
		break;
	case PKT_PROTO_UDP:
		track_udp(s, p, dir, out);
		break;
	default:
		track_icmp(s, p, dir, out); /* ICMP queries and generic */
		break;
	}
}

/* tcp.mss (the rule's, else the node's): an accepted SYN or SYN/ACK
 * whose MSS is larger gets it lowered by the packet source. */
static void mss_check(struct shard *sh, const struct pkt *p, unsigned rule,
		      struct pipeline_result *res)
{
	if (p->proto != PKT_PROTO_TCP || !(p->tcp_flags & PKT_TCP_SYN))
		return;
	const struct tandem_config *c = sh->ctx->cfg;
	uint16_t clamp = c->mss;
	if (rule < c->n_rules && c->rules[rule].mss)
		clamp = c->rules[rule].mss == CFG_MSS_OFF ? 0 : c->rules[rule].mss;
	res->mss_clamp = mss_over(p, clamp);
	if (res->mss_clamp)
		sh->st.mss_clamped++;
}

/* A miss: the policy decides, then the tracker says whether this packet
 * may open a session, then limits and the pool. */
static void new_flow(struct shard *sh, const struct pkt *p,
		     const struct sess_key *k, uint32_t hash, unsigned side,
		     uint8_t zin, uint8_t zout, uint8_t iif, uint64_t now,
		     struct pipeline_result *res)
{
	const struct node_ctx *ctx = sh->ctx;
	struct policy_query q = {
		.family = p->family, .proto = p->proto,
		.zone_from = zin, .zone_to = zout,
		.src = p->src, .dst = p->dst,
		.dport = p->dport, .icmp_type = p->icmp_type,
	};
	const struct cfg_rule *r = policy_match(ctx->pol, &q);
	res->rule = r;
	if (!r) {
		count_verdict(sh, res, V_DROP, DROP_NO_RULE);
		return;
	}
	if (r->action == ACT_DROP) {
		count_verdict(sh, res, V_DROP, DROP_RULE_DROP);
		return;
	}
	if (r->action == ACT_REJECT) {
		count_verdict(sh, res, V_REJECT, DROP_RULE_REJECT);
		return;
	}
	enum proto_class pc = proto_class_of(p->proto);
	if (r->mode == TRACK_OFF) {
		/* stateless: this packet alone matched; replies must too */
		sh->st.stateless[pc]++;
		count_verdict(sh, res, V_ACCEPT, DROP_NONE);
		return;
	}

	/* Decide on a scratch session first so a refused packet costs no
	 * pool entry and no limit unit. */
	struct sess tmp = {0};
	enum drop_reason why = track_new(ctx, &tmp, p, r->mode, r->index);
	if (why != DROP_NONE) {
		count_verdict(sh, res, V_DROP, why);
		return;
	}

	uint8_t limited = 0;
	if (r->limit_src) {
		if (!connlimit_acquire(ctx->lim, r->index, LIMIT_SIDE_SRC, p->src,
				    r->limit_src)) {
			count_verdict(sh, res, V_DROP, DROP_LIMIT_SRC);
			return;
		}
		limited |= SESS_LIMITED_SRC;
	}
	if (r->limit_dst) {
		if (!connlimit_acquire(ctx->lim, r->index, LIMIT_SIDE_DST, p->dst,
				    r->limit_dst)) {
			if (limited)
				connlimit_release(ctx->lim, r->index,
					       LIMIT_SIDE_SRC, p->src);
			count_verdict(sh, res, V_DROP, DROP_LIMIT_DST);
			return;
		}
		limited |= SESS_LIMITED_DST;
	}

	tmp.rule = r->index;
	struct sess *s;
	int rc = sess_table_insert(sh->tab, k, hash, 0, now,
				   now + pipeline_sess_timeout_ms(ctx, &tmp), &s);
	/* a full table: the oldest unreplied session (bounded search, in
	 * expiry order) gives its place to this one */
	if (rc == -ENOSPC && ctx->cfg->evict_unreplied) {
		sh->evict_now = now;
		if (sess_table_evict_one(sh->tab, EVICT_BUDGET, unreplied,
					 evicted_cb, sh))
			rc = sess_table_insert(sh->tab, k, hash, 0, now,
					       now + pipeline_sess_timeout_ms(ctx, &tmp), &s);
	}
	if (rc < 0) {
		if (limited & SESS_LIMITED_SRC)
			connlimit_release(ctx->lim, r->index, LIMIT_SIDE_SRC,
				       p->src);
		if (limited & SESS_LIMITED_DST)
			connlimit_release(ctx->lim, r->index, LIMIT_SIDE_DST,
				       p->dst);
		count_verdict(sh, res, V_DROP, DROP_TABLE_FULL);
		return;
	}
	s->state = tmp.state;
	s->flags = (uint8_t)(tmp.flags | (side ? SF_INIT_SIDE1 : 0) |
			     (r->keepalive ? SF_KEEPALIVE : 0));
	if (p->proto == PKT_PROTO_TCP) {
		memcpy(s->tcp, tmp.tcp, sizeof(s->tcp));
		s->wscale = tmp.wscale;
		s->tflags = tmp.tflags;
	}
	s->rule = r->index;
	s->mode = (uint8_t)(r->mode | limited);
	sh->st.entered[s->state]++;
	s->iface[0] = iif;
	s->pkts[0] = 1;
	s->bytes[0] = p->len;
	sh->st.created[pc]++;
	emit(sh, SEV_CREATE, s, END_MAX);
	res->sess = s;
	count_verdict(sh, res, V_ACCEPT, DROP_NONE);
	mss_check(sh, p, r->index, res);
}

/* What a packet needs before its lookup: zones, canonical key, hash. */
struct prep {
	struct sess_key k;
	uint32_t hash;
	unsigned side;
	uint8_t zin, zout;
};

static bool prepare(const struct node_ctx *ctx, const struct pkt *p,
		    uint8_t iif, uint8_t oif, struct prep *pr)
{
	flow_zones(ctx, p->family, p->src, p->dst, iif, oif, &pr->zin,
		   &pr->zout);
	if (!pr->zin || !pr->zout)
		return false;
	sess_key_make(&pr->k, p->family, p->proto, p->src, p->dst, p->sport,
		      p->dport, pr->zin, pr->zout, &pr->side);
	pr->hash = sess_key_hash(&pr->k);
	return true;
}

static void packet_start(struct shard *sh, const struct pkt *p,
			 struct pipeline_result *res)
{
	res->sess = NULL;
	res->rule = NULL;
	res->mss_clamp = 0;
	sh->st.pkts++;
	sh->st.bytes += p->len;
	if (p->first_frag)
		sh->st.first_frags++;
}

/* The packet after its lookup. Returns true when it inserted or removed a
 * session (so later lookups of the same burst must be redone). */
static bool process(struct shard *sh, const struct pkt *p,
		    const struct prep *pr, struct sess *s, uint8_t iif,
		    uint64_t now, struct pipeline_result *res)
{
	const struct node_ctx *ctx = sh->ctx;
	if (!s) {
		new_flow(sh, p, &pr->k, pr->hash, pr->side, pr->zin, pr->zout,
			 iif, now, res);
		return res->sess != NULL;
	}
	unsigned init = (s->flags & SF_INIT_SIDE1) ? 1 : 0;
	unsigned dir = pr->side == init ? 0 : 1;
	struct track_out out;
	uint8_t was = s->state;
	track_existing(sh, s, p, dir, &out);
	if (s->state != was) {
		sh->st.left[was]++;
		sh->st.entered[s->state]++;
	}
	if (out.reopen) {
		pipeline_end_session(sh, s, out.end_reason);
		new_flow(sh, p, &pr->k, pr->hash, pr->side, pr->zin, pr->zout,
			 iif, now, res);
		return true;
	}
	if (out.drop != DROP_NONE) {
		count_verdict(sh, res, V_DROP, out.drop);
		return false;
	}
	s->pkts[dir]++;
	s->bytes[dir] += p->len;
	s->iface[dir] = iif;
	count_verdict(sh, res, V_ACCEPT, DROP_NONE);
	if (p->tcp_flags & PKT_TCP_SYN)
		mss_check(sh, p, s->rule, res);
	if (out.end) { /* forwarded, and the session ends with it */
		pipeline_end_session(sh, s, out.end_reason);
		return true;
	}
	if (out.refresh) {
		uint64_t exp = now + pipeline_sess_timeout_ms(ctx, s);
		sess_table_set_expire(sh->tab, s, exp);
		if ((s->flags & SF_KEEPALIVE) &&
		    KA_IDX(s) > ka_first(ctx->cfg, exp - now)) {
			/* an answer after probes: full timeout again, and the
			 * probe schedule starts over */
			sh->st.ka_rejuvenated++;
			KA_SET(s, 0);
			uint64_t w = pipeline_ka_wake(sh, s, now);
			if (w)
				sess_table_wake_at(sh->tab, s, w);
		} else if ((s->flags & SF_KEEPALIVE) && out.state_changed &&
			   s->state == SS_TCP_ESTABLISHED) {
			/* The session still sits in the wheel where its
			 * handshake timeout filed it; the first probe may be
			 * due before that visit (idle timeout - first offset
			 * < tcp_initial) and would then be skipped as late.
			 * File the first wake now; each visit files the next. */
			uint64_t w = pipeline_ka_wake(sh, s, now);
			if (w)
				sess_table_wake_at(sh->tab, s, w);
		}
		if (sh->sync && !(s->flags & SF_PEER) &&
		    atomic_load_explicit(&sh->sync->subscribed,
					 memory_order_relaxed))
			sync_mark(sh->sync, sess_table_index(sh->tab, s));
	}
	if (out.state_changed)
		emit(sh, SEV_STATE, s, END_MAX);
	res->sess = s;
	return false;
}

void pipeline_packet(struct shard *sh, const struct pkt *p, uint8_t iif,
		     uint8_t oif, uint64_t now, struct pipeline_result *res)
{
	packet_start(sh, p, res);
	if (p->icmp_kind == PKT_ICMP_ERROR) {
		icmp_error(sh, p, iif, oif, res);
		return;
	}
	struct prep pr;
	if (!prepare(sh->ctx, p, iif, oif, &pr)) {
		count_verdict(sh, res, V_DROP, DROP_NO_ZONE);
		return;
	}
	process(sh, p, &pr, sess_table_lookup(sh->tab, &pr.k, pr.hash), iif,
		now, res);
}

void pipeline_burst(struct shard *sh, const struct pkt *p, const uint8_t *iif,
		    const uint8_t *oif, unsigned n, uint64_t now,
		    struct pipeline_result *res)
{
	struct prep pr[PIPELINE_BURST];
	const struct sess_key *keys[PIPELINE_BURST];
	uint32_t hashes[PIPELINE_BURST];
	struct sess *hit[PIPELINE_BURST];
	uint8_t slot[PIPELINE_BURST]; /* index into keys, 0xff = no lookup */
	unsigned m = 0;

	if (n > PIPELINE_BURST)
		n = PIPELINE_BURST;
	for (unsigned i = 0; i < n; i++) {
		slot[i] = 0xff;
		if (p[i].icmp_kind == PKT_ICMP_ERROR ||
		    !prepare(sh->ctx, &p[i], iif[i], oif[i], &pr[i]))
			continue;
		keys[m] = &pr[i].k;
		hashes[m] = pr[i].hash;
		slot[i] = (uint8_t)m++;
	}
	/* All lookups at once, with their cache misses overlapped. */
	if (m)
		sess_table_lookup_burst(sh->tab, keys, hashes, m, hit);

	/* A packet that creates or ends a session can change what a later
	 * packet of the same burst finds: from then on, look up again. */
	bool changed = false;
	for (unsigned i = 0; i < n; i++) {
		packet_start(sh, &p[i], &res[i]);
		if (p[i].icmp_kind == PKT_ICMP_ERROR) {
			icmp_error(sh, &p[i], iif[i], oif[i], &res[i]);
			changed = true;
			continue;
		}
		if (slot[i] == 0xff) {
			count_verdict(sh, &res[i], V_DROP, DROP_NO_ZONE);
			continue;
		}
		struct sess *s = changed ? sess_table_lookup(sh->tab, &pr[i].k,
							     pr[i].hash)
					 : hit[slot[i]];
		changed |= process(sh, &p[i], &pr[i], s, iif[i], now, &res[i]);
	}
}

void pipeline_count_drop(struct shard *sh, enum drop_reason r, uint32_t len)
{
	sh->st.pkts++;
	sh->st.bytes += len;
	sh->st.verdict[V_DROP]++;
	sh->st.drop[r]++;
}

void pipeline_raw(struct shard *sh, const uint8_t *l3, uint32_t len,
		  uint8_t iif, uint8_t oif, uint64_t now_ms,
		  struct pipeline_result *res)
{
	struct pkt p;
	enum drop_reason r = pkt_parse(&p, l3, len);
	if (r != DROP_NONE) {
		pipeline_count_drop(sh, r, len);
		res->verdict = V_DROP;
		res->drop = r;
		res->sess = NULL;
		res->rule = NULL;
		return;
	}
	pipeline_packet(sh, &p, iif, oif, now_ms, res);
}

/* ---- timers ----------------------------------------------------------- */

bool pipeline_tick(struct shard *sh, uint64_t now_ms)
{
	bool done = true;
	sess_table_expire(sh->tab, now_ms, sh->tick_budget, expire_cb, sh,
			  &done);

	/* Junos aggressive ageing: above the high watermark, sessions with
	 * less than early-ageout left go now, until below the low one. */
	uint32_t n = sess_table_count(sh->tab);
	if (!sh->ageing && n > sh->age_high) {
		sh->ageing = true;
		sh->st.ageing_on++;
	}
	if (sh->ageing) {
		sess_table_age_early(sh->tab, now_ms,
				     (uint64_t)sh->ctx->cfg->early_ageout * 1000u,
				     sh->tick_budget, aged_cb, sh);
		if (sess_table_count(sh->tab) < sh->age_low)
			sh->ageing = false;
	}
	sh->st.ageing_active = sh->ageing;
	if (sh->sync && atomic_load_explicit(&sh->sync->subscribed,
					     memory_order_relaxed))
		sync_sweep(sh->sync, sh->tab, now_ms, SYNC_SWEEP_WORDS);
	return done;
}
