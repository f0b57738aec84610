/*
 * jobs.c - shard jobs in bounded slices (see jobs.h) and the session
 * revalidation after a policy change (Forcepoint: sessions no longer
 * allowed are dropped; loose->strict keeps ICMP only if it began with a
 * valid request; normal->strict keeps TCP only if every packet was seen;
 * Symantec SEP: `reload = flush` ends them all instead).
 *
 * Must never: visit more than JOB_SLICE sessions per call, allocate, or
 * touch a shard from a thread that does not own it.
 */
#include "jobs.h"

#include <string.h>

const char *reval_reason_name(enum reval_reason r)
{
	static const char *const names[REVAL_MAX] = {
#define X_NAME(id, name) [REVAL_##id] = name,
		REVAL_REASONS(X_NAME)
#undef X_NAME
	};
	return (unsigned)r < REVAL_MAX ? names[r] : "?";
}

void sess_filter_init(struct sess_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->src_len = f->dst_len = 0xff;
	f->iface = f->rule = -1;
}

static bool prefix_match(const uint8_t *addr, uint8_t fam_s,
			 const uint8_t *pfx, uint8_t fam_p, uint8_t len)
{
	if (fam_s != fam_p)
		return false;
	unsigned full = len / 8, rest = len % 8;
	if (memcmp(addr, pfx, full))
		return false;
	if (rest) {
		uint8_t m = (uint8_t)(0xff << (8 - rest));
		if ((addr[full] & m) != (pfx[full] & m))
			return false;
	}
	return true;
}

bool sess_filter_match(const struct sess_filter *f, const struct sess *s)
{
	unsigned init = (s->flags & SF_INIT_SIDE1) ? 1 : 0;
	if (f->has_id && s->id != f->id)
		return false;
	if (f->has_proto && s->key.proto != f->proto)
		return false;
	if (f->has_state && s->state != f->state)
		return false;
	if (f->has_sport && s->key.port[init] != f->sport)
		return false;
	if (f->has_dport && s->key.port[!init] != f->dport)
		return false;
	if (f->origin == 1 && (s->flags & SF_PEER))
		return false;
	if (f->origin == 2 && !(s->flags & SF_PEER))
		return false;
	if (f->src_len != 0xff &&
	    !prefix_match(s->key.addr[init], s->key.family, f->src,
			  f->src_family, f->src_len))
		return false;
	if (f->dst_len != 0xff &&
	    !prefix_match(s->key.addr[!init], s->key.family, f->dst,
			  f->dst_family, f->dst_len))
		return false;
	if (f->iface >= 0 && s->iface[0] != f->iface && s->iface[1] != f->iface)
		return false;
	if (f->rule >= 0 && s->rule != f->rule)
		return false;
	return true;
}

/* ---- revalidation ----------------------------------------------------- */

/* The rule the new policy gives a session's original direction. */
static const struct cfg_rule *rule_for(const struct node_ctx *ctx,
				       const struct sess *s)
{
	unsigned init = (s->flags & SF_INIT_SIDE1) ? 1 : 0;
	const uint8_t *src = s->key.addr[init], *dst = s->key.addr[!init];
	uint8_t za = (uint8_t)(s->key.zone >> 8), zb = (uint8_t)s->key.zone;
	uint8_t zf, zt;
	if (ctx->zones_by_iface) {
		zf = pipeline_iface_zone(ctx->cfg, s->iface[0]);
		zt = zf == za ? zb : za;
	} else {
		zf = config_zone_of_addr(ctx->cfg, s->key.family, src);
		zt = config_zone_of_addr(ctx->cfg, s->key.family, dst);
	}
	bool icmp = s->key.proto == PKT_PROTO_ICMP ||
		    s->key.proto == PKT_PROTO_ICMPV6;
	uint16_t type = 0xffff;
	if (icmp && s->state == SS_ICMP) {
		/* an ICMP query session: its opening type is not stored; it
		 * was a request when it began validly, else a reply */
		bool req = s->flags & SF_VALID_START;
		type = s->key.family == 4 ? (req ? 8 : 0) : (req ? 128 : 129);
	}
	struct policy_query q = {
		.family = s->key.family, .proto = s->key.proto,
		.zone_from = zf, .zone_to = zt, .src = src, .dst = dst,
		.dport = icmp ? 0 : s->key.port[!init], .icmp_type = type,
	};
	return policy_match(ctx->pol, &q);
}

/* Decide one session; apply unless dry. Returns REVAL_MAX when kept. */
static enum reval_reason revalidate_one(struct ctl_job *j, struct shard *sh,
					struct sess *s, uint64_t now)
{
	const struct node_ctx *nc = j->new_ctx;
	if (j->flush)
		return REVAL_FLUSH;
	if (j->zones_changed)
		return REVAL_ZONES_CHANGED;
	const struct cfg_rule *r = rule_for(nc, s);
	if (!r)
		return REVAL_NO_RULE;
	if (r->action != ACT_ACCEPT)
		return REVAL_DENIED;
	if (r->mode == TRACK_OFF)
		return REVAL_STATELESS;
	if (r->mode == TRACK_STRICT && SESS_MODE(s) != TRACK_STRICT) {
		if (s->key.proto == PKT_PROTO_TCP && !(s->flags & SF_EVERY_SEEN))
			return REVAL_STRICT_UNSEEN;
		if ((s->key.proto == PKT_PROTO_ICMP ||
		     s->key.proto == PKT_PROTO_ICMPV6) &&
		    !(s->flags & SF_VALID_START))
			return REVAL_STRICT_NO_REQUEST;
	}
	if (j->dry_run)
		return REVAL_MAX;

	/* Kept. The idle time so far, under the old rule's timeout. */
	uint64_t old_to = pipeline_sess_timeout_ms(j->old_ctx, s);
	uint64_t left = sess_remaining_ms(s, now);
	uint64_t idle = old_to > left ? old_to - left : 0;

	/* Move its limit units to the new rule when the rule changed. */
	unsigned init = (s->flags & SF_INIT_SIDE1) ? 1 : 0;
	if (r->index != s->rule) {
		if (s->mode & SESS_LIMITED_SRC)
			connlimit_release(nc->lim, s->rule, LIMIT_SIDE_SRC,
					  s->key.addr[init]);
		if (s->mode & SESS_LIMITED_DST)
			connlimit_release(nc->lim, s->rule, LIMIT_SIDE_DST,
					  s->key.addr[!init]);
		s->rule = r->index;
		s->mode = (uint8_t)r->mode;
		if (r->limit_src) {
			if (!connlimit_acquire(nc->lim, r->index, LIMIT_SIDE_SRC,
					       s->key.addr[init], r->limit_src))
				return REVAL_LIMIT;
			s->mode |= SESS_LIMITED_SRC;
		}
		if (r->limit_dst) {
			if (!connlimit_acquire(nc->lim, r->index, LIMIT_SIDE_DST,
					       s->key.addr[!init], r->limit_dst))
				return REVAL_LIMIT;
			s->mode |= SESS_LIMITED_DST;
		}
	} else {
		s->mode = (uint8_t)(r->mode |
				    (s->mode & (SESS_LIMITED_SRC | SESS_LIMITED_DST)));
	}
	if (r->keepalive)
		s->flags |= SF_KEEPALIVE;
	else
		s->flags &= (uint8_t)~SF_KEEPALIVE;
	/* Re-apply the idle timeout, keeping the time already idle. */
	uint64_t new_to = pipeline_sess_timeout_ms(nc, s);
	if (new_to != old_to)
		sess_table_set_expire(sh->tab, s,
				      now + (new_to > idle ? new_to - idle : 0));
	return REVAL_MAX;
}

/* ---- replication ------------------------------------------------------- */

static void apply_one(struct ctl_job *j, struct shard *sh,
		      const struct peer_rec *r, uint64_t now)
{
	uint32_t h = sess_key_hash(&r->s.key);
	struct sess *s = sess_table_lookup(sh->tab, &r->s.key, h);
	if (r->type == SYNC_EXPIRE || r->type == SYNC_DELETE) {
		if (s && (s->flags & SF_PEER))
			pipeline_end_session(sh, s, END_PEER);
		j->applied++;
		return;
	}
	if (s && !(s->flags & SF_PEER)) {
		j->conflicts++;
		/* the active's copy is the truth for a standby (an old active
		 * that returns with its own sessions); an active keeps its own */
		if (!j->peer_wins)
			return;
		pipeline_end_session(sh, s, END_PEER);
		s = NULL;
	}
	uint64_t expire = now + r->remaining_ms;
	if (!s) {
		if (sess_table_insert(sh->tab, &r->s.key, h, r->s.id, now,
				      expire, &s) < 0) {
			j->refused++;
			return;
		}
		s->created = r->s.created;
		sh->st.entered[r->s.state]++;
	} else {
		sess_table_set_expire(sh->tab, s, expire);
		if (s->state != r->s.state) {
			sh->st.left[s->state]++;
			sh->st.entered[r->s.state]++;
		}
	}
	s->state = r->s.state;
	s->flags = (uint8_t)(r->s.flags | SF_PEER);
	s->rule = r->s.rule;
	s->mode = r->s.mode & 3; /* limit units stay with the peer */
	s->wscale = r->s.wscale;
	s->iface[0] = r->s.iface[0];
	s->iface[1] = r->s.iface[1];
	memcpy(s->pkts, r->s.pkts, sizeof(s->pkts));
	memcpy(s->bytes, r->s.bytes, sizeof(s->bytes));
	memcpy(s->tcp, r->s.tcp, sizeof(s->tcp));
	/* which maxack fields hold one; the windows are the active's at
	 * the time of the event and may lag behind the stream by up to one
	 * refresh: the first packet seen here re-anchors each side */
	s->tflags = (uint8_t)(r->s.tflags | STF_STALE0 | STF_STALE1);
	j->applied++;
}

static uint64_t digest_of(const struct sess *s)
{
	uint64_t h = s->id * UINT64_C(0x9E3779B97F4A7C15);
	h ^= (uint64_t)sess_key_hash_unseeded(&s->key) << 17 ^ s->state;
	h = (h ^ (h >> 31)) * UINT64_C(0xBF58476D1CE4E5B9);
	return h ^ (h >> 29);
}

bool job_run_slice(struct ctl_job *j, struct shard *sh, uint64_t now)
{
	if (j->kind == JOB_APPLY) {
		uint32_t end = j->cursor + JOB_SLICE < j->n_apply
				       ? j->cursor + JOB_SLICE : j->n_apply;
		for (; j->cursor < end; j->cursor++)
			apply_one(j, sh, &j->apply[j->cursor], now);
		return j->cursor >= j->n_apply;
	}
	if (!j->started) {
		j->started = true;
		/* the switch: every packet after this sees the new policy */
		if (j->kind == JOB_REVALIDATE && !j->dry_run)
			sh->ctx = j->new_ctx;
	}
	uint32_t cap = sess_table_capacity(sh->tab);
	uint32_t end = j->cursor + JOB_SLICE < cap ? j->cursor + JOB_SLICE : cap;
	for (; j->cursor < end; j->cursor++) {
		struct sess *s = sess_table_at(sh->tab, j->cursor);
		if (!s)
			continue;
		switch (j->kind) {
		case JOB_COLLECT:
			if (!sess_filter_match(&j->filter, s))
				break;
			j->matched++;
			if (j->n_out < j->cap) {
				struct sess_copy *c = &j->out[j->n_out++];
				c->s = *s;
				c->remaining_ms = (uint32_t)sess_remaining_ms(s, now);
				c->shard = sh->id;
			}
			break;
		case JOB_COUNT:
			j->matched += sess_filter_match(&j->filter, s);
			break;
		case JOB_CLEAR:
			if (sess_filter_match(&j->filter, s)) {
				j->matched++;
				pipeline_end_session(sh, s, END_CLEARED);
			}
			break;
		case JOB_DUMP:
			if (s->flags & SF_PEER)
				break;
			/* never drop a bulk record: pause until the control
			 * thread has drained the ring (keep room for live
			 * events too) */
			if (sync_room(sh->sync) < 64)
				return false;
			sync_push(sh->sync, SYNC_CREATE, s);
			break;
		case JOB_PROMOTE:
			if (s->flags & SF_PEER) {
				s->flags &= (uint8_t)~SF_PEER;
				j->local++; /* promoted */
				/* probes continue here: file it for its next one */
				if (s->flags & SF_KEEPALIVE) {
					uint64_t w = pipeline_ka_wake(sh, s, now);
					if (w)
						sess_table_wake_at(sh->tab, s, w);
				}
			}
			break;
		case JOB_DIGEST:
			j->xor_hash ^= digest_of(s);
			if (s->flags & SF_PEER)
				j->peer++;
			else
				j->local++;
			break;
		case JOB_APPLY:
			break;
		case JOB_REVALIDATE: {
			enum reval_reason why = revalidate_one(j, sh, s, now);
			if (why == REVAL_MAX) {
				j->kept++;
				break;
			}
			j->ended[why]++;
			if (!j->dry_run)
				pipeline_end_session(sh, s, END_POLICY);
			break;
		}
		}
	}
	return j->cursor >= cap;
}
