/*
 * role.c - the role state machine (see role.h for the rules).
 *
 * Must never: do I/O, read a clock, allocate, or let the epoch go down.
 */
#include "role.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *role_name(enum role r)
{
	switch (r) {
	case ROLE_INIT: return "init";
	case ROLE_STANDBY: return "standby";
	case ROLE_ACTIVE: return "active";
	}
	return "?";
}

int role_from_name(const char *s, enum role *ret)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "active") || !strcmp(s, "master"))
		*ret = ROLE_ACTIVE;
	else if (!strcmp(s, "standby") || !strcmp(s, "backup") ||
		 !strcmp(s, "fault"))
		*ret = ROLE_STANDBY;
	else if (!strcmp(s, "init"))
		*ret = ROLE_INIT;
	else
		return -EINVAL;
	return 0;
}

void role_init(struct role_sm *sm, uint64_t epoch, uint64_t now_ms)
{
	memset(sm, 0, sizeof(*sm));
	sm->role = ROLE_INIT;
	sm->epoch = epoch;
	sm->start_ms = sm->since_ms = now_ms;
	snprintf(sm->why, sizeof(sm->why), "starting");
}

static bool alive(const struct role_peer *p)
{
	return p->heard && (p->sync_alive || p->data_alive);
}

/* a before b in the election: higher priority, then lower node id */
static bool better(uint32_t pa, uint16_t ida, uint32_t pb, uint16_t idb)
{
	return pa > pb || (pa == pb && ida < idb);
}

/* order of nodes that are not active: the state holder, then election */
static bool ranks_above(bool ha, uint32_t pa, uint16_t ida, bool hb, uint32_t pb,
			uint16_t idb)
{
	return (ha && !hb) || (ha == hb && better(pa, ida, pb, idb));
}

/* two actives: higher epoch, then the election order */
static bool wins(uint64_t ea, uint32_t pa, uint16_t ida, uint64_t eb,
		 uint32_t pb, uint16_t idb)
{
	return ea > eb || (ea == eb && better(pa, ida, pb, idb));
}

static enum role_action become(struct role_sm *sm, enum role r,
			       uint64_t epoch, uint64_t now)
{
	sm->role = r;
	sm->epoch = epoch;
	sm->since_ms = now;
	sm->pending = false;
	return r == ROLE_ACTIVE ? RA_ACTIVE : RA_STANDBY;
}

/* Take over now if the gate is open, else remember that we want to. */
static enum role_action want_active(struct role_sm *sm, const struct role_in *in,
				    uint64_t max_epoch, const char *why)
{
	if (!in->gate) {
		sm->pending = true;
		snprintf(sm->why, sizeof(sm->why), "%s; waiting for the readiness gate",
			 why);
		return RA_NONE;
	}
	snprintf(sm->why, sizeof(sm->why), "%s", why);
	return become(sm, ROLE_ACTIVE, max_epoch + 1, in->now_ms);
}

static enum role_action step_external(struct role_sm *sm,
				      const struct role_in *in,
				      uint64_t max_epoch)
{
	if (in->notify == ROLE_ACTIVE && sm->role != ROLE_ACTIVE)
		return want_active(sm, in, max_epoch, "notified active");
	sm->pending = false;
	if (in->notify == ROLE_STANDBY && sm->role != ROLE_STANDBY) {
		snprintf(sm->why, sizeof(sm->why), "notified standby");
		return become(sm, ROLE_STANDBY, max_epoch, in->now_ms);
	}
	return RA_NONE;
}

enum role_action role_step(struct role_sm *sm, const struct role_cfg *cfg,
			   const struct role_in *in)
{
	uint64_t now = in->now_ms, max_epoch = sm->epoch;
	const struct role_peer *act = NULL;   /* the strongest live active */
	const struct role_peer *best = NULL;  /* best ranked live non-active */
	bool all_heard = true;

	for (unsigned i = 0; i < in->n_peers; i++) {
		const struct role_peer *p = &in->peers[i];
		if (p->heard && p->epoch > max_epoch)
			max_epoch = p->epoch;
		if (!alive(p)) {
			all_heard = false;
			continue;
		}
		if (p->role == ROLE_ACTIVE) {
			if (!act || wins(p->epoch, p->priority, p->id, act->epoch,
					 act->priority, act->id))
				act = p;
		} else if (!best || ranks_above(p->holds_state, p->priority, p->id,
					      best->holds_state, best->priority,
					      best->id)) {
			best = p;
		}
	}
	/* a node that is not active follows the highest epoch it has heard,
	 * so its next takeover is above every earlier one */
	if (sm->role != ROLE_ACTIVE)
		sm->epoch = max_epoch;

	if (cfg->external)
		return step_external(sm, in, max_epoch);

	if (in->fault) {
		sm->pending = false;
		if (sm->role == ROLE_ACTIVE) {
			snprintf(sm->why, sizeof(sm->why), "stepped down: %s",
				 in->fault);
			return become(sm, ROLE_STANDBY, max_epoch, now);
		}
		snprintf(sm->why, sizeof(sm->why), "cannot be active: %s", in->fault);
		return RA_NONE;
	}

	bool self_holds = sm->role == ROLE_STANDBY && in->holds_state;
	bool outranked = best && ranks_above(best->holds_state, best->priority,
					     best->id, self_holds, cfg->priority,
					     cfg->node_id);
	switch (sm->role) {
	case ROLE_INIT:
		if (act) {
			snprintf(sm->why, sizeof(sm->why), "node %u is active",
				 act->id);
			return become(sm, ROLE_STANDBY, max_epoch, now);
		}
		if (!all_heard && now - sm->start_ms < cfg->init_wait_ms)
			return RA_NONE;
		if (outranked) {
			snprintf(sm->why, sizeof(sm->why), "node %u %s", best->id,
				 best->holds_state ? "holds the state"
						   : "wins the election");
			return become(sm, ROLE_STANDBY, max_epoch, now);
		}
		return want_active(sm, in, max_epoch,
				   best ? "won the election" : "no peer heard");
	case ROLE_STANDBY:
		if (act) {
			if (act->asks_takeover)
				return want_active(sm, in, max_epoch,
						   "planned failover");
			if (cfg->preempt &&
			    better(cfg->priority, cfg->node_id, act->priority,
				   act->id) &&
			    now - sm->since_ms >= cfg->hold_down_ms && in->synced)
				return want_active(sm, in, max_epoch, "preempt");
			if (sm->pending) {
				sm->pending = false;
				snprintf(sm->why, sizeof(sm->why),
					 "node %u is active", act->id);
			}
			return RA_NONE;
		}
		if (outranked) {
			sm->pending = false;
			return RA_NONE; /* the better ranked one takes over */
		}
		return want_active(sm, in, max_epoch,
				   "no active heard on any path");
	case ROLE_ACTIVE:
		if (act && wins(act->epoch, act->priority, act->id, sm->epoch,
				cfg->priority, cfg->node_id)) {
			snprintf(sm->why, sizeof(sm->why),
				 "node %u is active with epoch %llu", act->id,
				 (unsigned long long)act->epoch);
			sm->winner = act->id;
			return become(sm, ROLE_STANDBY, act->epoch > sm->epoch
						       ? act->epoch : sm->epoch, now);
		}
		return RA_NONE;
	}
	return RA_NONE;
}
