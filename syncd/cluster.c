/*
 * cluster.c - tandem-syncd's top level (see cluster.h, docs/syncd.md).
 *
 * Must never: take over while an active peer is heard on any path (unless
 * it asked), move addresses before the readiness gate opened, log per
 * session or frame, or block the loop on anything but the short netlink
 * exchanges of a role change.
 */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <libconfig.h>

#include "clock.h"
#include "ctl_server.h"
#include "node_link.h"
#include "peer.h"
#include "repl.h"
#include "role.h"
#include "vip.h"
#include "pbwire.h"

#define TICK_MS 10
#define NODE_TIMEOUT_MS 10000
#define VIP_WAIT_MS 200          /* longest wait for PROMOTE before addresses */
#define ASK_TTL_MS 2000          /* a failover request stands this long */
#define CONFIG_REPUSH_MS 10000
#define FAILOVER_TIMEOUT_MS 10000

/* Counters shown in show cluster, one list. */
#define CLUSTER_COUNTERS(X)                          \
	X(ROLE_CHANGES, "role.changes")              \
	X(TAKEOVERS, "role.takeovers")               \
	X(VIP_ERRORS, "vip.errors")                  \
	X(GARP_SENT, "vip.announcements")            \
	X(GARP_ERRORS, "vip.announce-errors")        \
	X(CFG_SENT, "config.sent")                   \
	X(CFG_RECEIVED, "config.received")           \
	X(CFG_APPLIED, "config.applied")             \
	X(CFG_FAILED, "config.failed")               \
	X(NODE_ID_MISMATCH, "node.id-mismatch")      \
	X(STATE_WRITE_ERRORS, "state.write-errors")  \
	X(FAILOVERS, "failover.requests")           \
	X(RELOADS, "config.reloads")                 \
	X(STEP_DOWNS, "role.step-downs")             \
	X(FAULTS, "health.faults")                   \
	X(HOOKS_RUN, "notify.run")                   \
	X(HOOK_ERRORS, "notify.errors")              \
	X(HOOKS_SKIPPED, "notify.skipped")

enum {
#define CC_ENUM(n, s) CC_##n,
	CLUSTER_COUNTERS(CC_ENUM)
#undef CC_ENUM
	CC_MAX
};

static const char *const cc_names[CC_MAX] = {
#define CC_NAME(n, s) [CC_##n] = s,
	CLUSTER_COUNTERS(CC_NAME)
#undef CC_NAME
};

struct cpeer {
	bool heard;
	enum role role;
	uint32_t priority;
	bool preempt, ready;
	uint64_t epoch;
	char policy_hash[40];
	uint64_t asks_until;
	uint64_t hb_sent_ms;   /* sender's clock of the heartbeat believed */
	uint32_t hb_interval_ms, hb_dead_count; /* as it announced; 0: unknown */
	uint64_t last_cfg_push_ms;
	bool was_alive;
	/* heard as active since we last were: its table is (or was) the
	 * cluster's state. A bulk of a peer never heard active (both in init
	 * at start) is only its own sessions and ranks no one above it. */
	bool seen_active;
};

struct cluster {
	uv_loop_t *loop;
	struct sconf *conf;         /* the caller's; a reload rewrites the
				     * settings marked live in reload_fields */
	struct peers *ps;
	struct node_link *nl;
	struct repl *repl;
	struct ctl_server *ctl;
	struct role_sm sm;
	struct role_cfg rcfg;
	enum role notify;
	uv_timer_t tick, garp;
	bool tick_open, garp_open, stopping;
	uint64_t next_hb_ms;
	struct cpeer cp[SCONF_MAX_PEERS];
	/* node */
	bool node_up, hash_known, poll_busy;
	char policy_hash[40], expect_hash[40];
	uint64_t next_poll_ms;
	/* addresses */
	bool vips_up, vip_pending;
	unsigned garp_left;
	uint64_t takeover_t0;
	uint32_t last_takeover_ms;
	bool has_takeover;
	/* planned failover in progress */
	struct ctl_call *fo_call;
	int fo_peer;
	uint64_t fo_t0, fo_sent_ms, fo_last_ms, fo_deadline;
	uint64_t cnt[CC_MAX];
	struct buf hb;
	/* health: fault[0] != 0 while this node cannot carry the traffic */
	uint64_t node_lost_ms;      /* the node link went down; 0: linked, or
				     * never linked yet (the gate covers that) */
	int if_fd;                  /* SIOCGIFFLAGS of tracked interfaces */
	char fault[96];
	/* notify hooks still running */
	struct hook *hooks;
	unsigned n_hooks;
};

#define MAX_HOOKS 16

struct hook {
	uv_process_t proc;
	struct cluster *c;
	struct hook *next, **pprev;
};

static void logmsg(const struct cluster *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void logmsg(const struct cluster *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	localtime_r(&tv.tv_sec, &tm);
	fprintf(stderr, "%02d:%02d:%02d.%03ld tandem-syncd[%u]: %s\n", tm.tm_hour,
		tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000, c->conf->node_id, msg);
}

static uint64_t dead_ms(const struct cluster *c)
{
	return (uint64_t)c->conf->hb_interval_ms * c->conf->dead_count;
}

/* ---- epoch state file ------------------------------------------------------ */

static uint64_t load_epoch(const struct cluster *c)
{
	if (!c->conf->state_file[0])
		return 0;
	FILE *f = fopen(c->conf->state_file, "re");
	if (!f)
		return 0;
	unsigned long long e = 0;
	if (fscanf(f, "epoch %llu", &e) != 1)
		e = 0;
	fclose(f);
	return e;
}

static void save_epoch(struct cluster *c)
{
	if (!c->conf->state_file[0])
		return;
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->conf->state_file);
	FILE *f = fopen(tmp, "we");
	if (!f || fprintf(f, "epoch %" PRIu64 "\n", c->sm.epoch) < 0 ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		if (f)
			fclose(f);
		c->cnt[CC_STATE_WRITE_ERRORS]++;
		return;
	}
	fclose(f);
	if (rename(tmp, c->conf->state_file) < 0)
		c->cnt[CC_STATE_WRITE_ERRORS]++;
}

/* ---- heartbeats ------------------------------------------------------------ */

/* Detection time with peer i, negotiated by the slower side: the larger of
 * the two intervals times the larger dead count, so a peer that sends less
 * often than we do is never declared dead early. */
static uint64_t peer_dead_ms(const struct cluster *c, unsigned i)
{
	uint64_t iv = c->conf->hb_interval_ms, dc = c->conf->dead_count;
	if (c->cp[i].hb_interval_ms > iv)
		iv = c->cp[i].hb_interval_ms;
	if (c->cp[i].hb_dead_count > dc)
		dc = c->cp[i].hb_dead_count;
	return iv * dc;
}

static bool peer_alive_on(const struct cluster *c, unsigned i, int path,
			  uint64_t now)
{
	const struct peer_link_stats *st = peers_stats(c->ps, i);
	return st->last_rx_ms[path] && now - st->last_rx_ms[path] <= peer_dead_ms(c, i);
}

static bool ready_for(const struct cluster *c, unsigned i)
{
	if (c->sm.role == ROLE_ACTIVE)
		return repl_gate(c->repl);
	/* "we hold your state": only the state of an active counts */
	return c->cp[i].seen_active && repl_synced_from(c->repl, i);
}

/* a standby that holds the sessions of the (last) active: it ranks above
 * the nodes that do not */
static bool holds_state(const struct cluster *c)
{
	for (unsigned i = 0; i < c->conf->n_peers; i++)
		if (c->cp[i].seen_active && repl_holds_bulk_of(c->repl, i))
			return true;
	return false;
}

static void build_heartbeat(struct cluster *c, unsigned i, enum peer_path path,
			    struct buf *out)
{
	Tandem__Heartbeat hb = TANDEM__HEARTBEAT__INIT;
	hb.role = (char *)role_name(c->stopping ? ROLE_INIT : c->sm.role);
	/* a stopping node ranks last (priority 0 is never configured), so a
	 * standby takes over without waiting for the dead time */
	hb.priority = c->stopping || c->fault[0] ? 0 : c->conf->priority;
	hb.preempt = c->conf->preempt;
	hb.applied_seq = repl_applied_seq(c->repl, i);
	hb.sent_ms = clock_now_ms();
	if (c->hash_known)
		hb.policy_hash = c->policy_hash;
	hb.has_ready = true;
	hb.ready = !c->stopping && !c->fault[0] && ready_for(c, i);
	hb.path = path == PATH_SYNC ? "sync" : "data";
	hb.has_interval_ms = hb.has_dead_count = true;
	hb.interval_ms = c->conf->hb_interval_ms;
	hb.dead_count = c->conf->dead_count;
	Tandem__PeerMsg m = TANDEM__PEER_MSG__INIT;
	m.heartbeat = &hb;
	size_t n = tandem__peer_msg__get_packed_size(&m);
	if (buf_reserve(out, n) < 0)
		return;
	out->len += tandem__peer_msg__pack(&m, out->p + out->len);
}

static void ops_heartbeat(void *arg, unsigned i, enum peer_path path,
			  struct buf *out)
{
	build_heartbeat(arg, i, path, out);
}

static void send_heartbeats(struct cluster *c)
{
	for (unsigned i = 0; i < c->conf->n_peers; i++) {
		buf_reset(&c->hb);
		build_heartbeat(c, i, PATH_SYNC, &c->hb);
		peers_send(c->ps, i, c->hb.p, c->hb.len, NULL);
		if (c->conf->data_hb && i == 0) {
			/* one data-side peer address: the first peer's path */
			buf_reset(&c->hb);
			build_heartbeat(c, i, PATH_DATA, &c->hb);
			peers_send_data(c->ps, i, c->hb.p, c->hb.len);
		}
	}
}

/* ---- addresses --------------------------------------------------------------- */

static void vips_del(struct cluster *c)
{
	char err[256];
	for (unsigned k = 0; k < c->conf->n_vips; k++)
		if (vip_del(&c->conf->vips[k], err, sizeof(err)) < 0) {
			c->cnt[CC_VIP_ERRORS]++;
			logmsg(c, "%s", err);
		}
	c->vips_up = false;
	c->garp_left = 0;
	if (c->garp_open)
		uv_timer_stop(&c->garp);
}

static void announce(struct cluster *c)
{
	char err[256];
	for (unsigned k = 0; k < c->conf->n_vips; k++) {
		if (vip_announce(&c->conf->vips[k], err, sizeof(err)) < 0) {
			if (!c->cnt[CC_GARP_ERRORS]++)
				logmsg(c, "%s", err);
		} else {
			c->cnt[CC_GARP_SENT]++;
		}
	}
}

static void on_garp(uv_timer_t *t)
{
	struct cluster *c = t->data;
	if (!c->vips_up || !c->garp_left) {
		uv_timer_stop(t);
		return;
	}
	c->garp_left--;
	announce(c);
}

static void vips_add(struct cluster *c)
{
	c->vip_pending = false;
	if (c->sm.role != ROLE_ACTIVE)
		return;
	char err[256];
	for (unsigned k = 0; k < c->conf->n_vips; k++)
		if (vip_add(&c->conf->vips[k], err, sizeof(err)) < 0) {
			c->cnt[CC_VIP_ERRORS]++;
			logmsg(c, "%s", err);
		}
	c->vips_up = true;
	c->last_takeover_ms = (uint32_t)(clock_now_ms() - c->takeover_t0);
	c->has_takeover = true;
	if (c->conf->n_vips && c->conf->garp_count) {
		announce(c);
		c->garp_left = c->conf->garp_count - 1;
		if (c->garp_left)
			uv_timer_start(&c->garp, on_garp, c->conf->garp_interval_ms,
				       c->conf->garp_interval_ms);
	}
	logmsg(c, "active: %u address(es) up %u ms after the decision",
	       c->conf->n_vips, c->last_takeover_ms);
}

/* ---- node requests --------------------------------------------------------- */

static void on_node_ok(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct cluster *c = arg;
	if (err == -ECANCELED)
		return;
	if (err < 0 || rep->status != 0)
		logmsg(c, "node request failed: %s",
		       err < 0 ? strerror(-err) : rep->error ? rep->error : "error");
}

/* A request whose answer only matters when it fails. When the node is
 * down it is not sent: on_node_up() sends the role again. */
static void node_simple(struct cluster *c, Tandem__CtlRequest__Cmd cmd,
			const char *role)
{
	Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
	q.cmd = cmd;
	q.role = (char *)role;
	node_link_request(c->nl, &q, on_node_ok, c);
}

static void on_promoted(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct cluster *c = arg;
	if (err == -ECANCELED)
		return;
	if (err == 0 && rep->status == 0)
		logmsg(c, "node promoted %" PRIu64 " peer session(s) to local",
		       rep->has_count ? rep->count : 0);
	else
		logmsg(c, "PROMOTE failed: %s", err < 0 ? strerror(-err)
				: rep->error ? rep->error : "error");
	if (c->vip_pending)
		vips_add(c);
}

/* ---- role ------------------------------------------------------------------ */

/* ---- notify hooks, health ------------------------------------------------- */

static void hook_closed(uv_handle_t *h)
{
	free(h->data);
}

static void hook_unlink(struct hook *k)
{
	*k->pprev = k->next;
	if (k->next)
		k->next->pprev = k->pprev;
	k->c->n_hooks--;
	uv_close((uv_handle_t *)&k->proc, hook_closed);
}

static void hook_exited(uv_process_t *p, int64_t status, int sig)
{
	struct hook *k = p->data;
	struct cluster *c = k->c;
	if (status || sig) {
		c->cnt[CC_HOOK_ERRORS]++;
		logmsg(c, "notify %s: exit %lld signal %d", c->conf->notify,
		       (long long)status, sig);
	}
	hook_unlink(k);
}

/* notify ROLE PREVIOUS EPOCH, started without waiting for it (uv_spawn:
 * fork + exec, reaped by the loop) */
static void run_hook(struct cluster *c, enum role prev)
{
	if (!c->conf->notify[0])
		return;
	if (c->n_hooks >= MAX_HOOKS) {
		c->cnt[CC_HOOKS_SKIPPED]++;
		logmsg(c, "notify %s: %u still running, not started",
		       c->conf->notify, c->n_hooks);
		return;
	}
	struct hook *k = calloc(1, sizeof(*k));
	if (!k) {
		c->cnt[CC_HOOK_ERRORS]++;
		return;
	}
	char epoch[24];
	snprintf(epoch, sizeof(epoch), "%" PRIu64, c->sm.epoch);
	char *args[] = {c->conf->notify, (char *)role_name(c->sm.role),
			(char *)role_name(prev), epoch, NULL};
	uv_stdio_container_t io[3] = {
		{.flags = UV_IGNORE},
		{.flags = UV_INHERIT_FD, .data.fd = 2},
		{.flags = UV_INHERIT_FD, .data.fd = 2},
	};
	uv_process_options_t o = {
		.exit_cb = hook_exited,
		.file = c->conf->notify,
		.args = args,
		.stdio_count = 3,
		.stdio = io,
	};
	k->c = c;
	k->proc.data = k;
	int r = uv_spawn(c->loop, &k->proc, &o);
	if (r < 0) {
		c->cnt[CC_HOOK_ERRORS]++;
		logmsg(c, "notify %s: %s", c->conf->notify, uv_strerror(r));
		uv_close((uv_handle_t *)&k->proc, hook_closed);
		return;
	}
	c->cnt[CC_HOOKS_RUN]++;
	k->next = c->hooks;
	if (k->next)
		k->next->pprev = &k->next;
	k->pprev = &c->hooks;
	c->hooks = k;
	c->n_hooks++;
}

/* interface up and with carrier; a missing one is down */
static bool if_running(const struct cluster *c, const char *name)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (c->if_fd < 0 || ioctl(c->if_fd, SIOCGIFFLAGS, &ifr) < 0)
		return false;
	return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
}

/* Election mode only (keepalived tracks its own interfaces there). The node
 * link gets dead_ms of grace: a node restart or one overdue reply is not a
 * failover. */
static void check_health(struct cluster *c, uint64_t now)
{
	char f[sizeof(c->fault)] = "";
	if (!c->conf->external) {
		if (c->node_lost_ms && now - c->node_lost_ms >= dead_ms(c))
			snprintf(f, sizeof(f), "node link down for %" PRIu64 " ms",
				 now - c->node_lost_ms);
		for (unsigned k = 0; !f[0] && k < c->conf->n_track; k++)
			if (!if_running(c, c->conf->track[k]))
				snprintf(f, sizeof(f), "tracked interface %s down",
					 c->conf->track[k]);
	}
	if (!f[0] == !c->fault[0])
		return;     /* no change (the first reason stays shown) */
	if (f[0]) {
		c->cnt[CC_FAULTS]++;
		logmsg(c, "fault (role %s): %s", role_name(c->sm.role), f);
	} else {
		logmsg(c, "fault cleared (was: %s)", c->fault);
	}
	memcpy(c->fault, f, sizeof(f));
	/* peers rank us by our heartbeats: tell them now */
	send_heartbeats(c);
}

static void failover_finish(struct cluster *c, int status, const char *msg);

static void became_active(struct cluster *c, enum role prev)
{
	uint64_t now = clock_now_ms();
	c->cnt[CC_ROLE_CHANGES]++;
	c->cnt[CC_TAKEOVERS]++;
	logmsg(c, "role active, epoch %" PRIu64 " (%s)", c->sm.epoch, c->sm.why);
	save_epoch(c);
	peers_set_epoch(c->ps, c->sm.epoch);
	c->takeover_t0 = now;
	/* the state is ours now: what we hold of former actives is stale */
	for (unsigned i = 0; i < c->conf->n_peers; i++)
		c->cp[i].seen_active = false;
	repl_set_active(c->repl, true);
	repl_promote(c->repl, prev == ROLE_INIT);
	Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
	q.cmd = TANDEM__CTL_REQUEST__CMD__PROMOTE;
	c->vip_pending = true;
	bool sent = node_link_request(c->nl, &q, on_promoted, c) == 0;
	node_simple(c, TANDEM__CTL_REQUEST__CMD__ROLE_SET, "active");
	if (!sent)
		vips_add(c);
	/* a takeover (new epoch, promoted sessions): every peer gets our
	 * whole table; from INIT the links' own bulks are enough */
	if (prev == ROLE_STANDBY)
		repl_bulk_all(c->repl);
	send_heartbeats(c);
	run_hook(c, prev);
}

static void became_standby(struct cluster *c, enum role prev)
{
	c->cnt[CC_ROLE_CHANGES]++;
	if (prev == ROLE_ACTIVE && c->fault[0])
		c->cnt[CC_STEP_DOWNS]++;
	logmsg(c, "role standby, epoch %" PRIu64 " (%s)", c->sm.epoch, c->sm.why);
	save_epoch(c);
	peers_set_epoch(c->ps, c->sm.epoch);
	c->vip_pending = false;
	repl_set_active(c->repl, false);
	vips_del(c);
	node_simple(c, TANDEM__CTL_REQUEST__CMD__ROLE_SET, "standby");
	if (c->sm.winner) {
		/* two actives met and we lost: resync from the winner */
		int i = peers_index(c->ps, c->sm.winner);
		if (i >= 0)
			repl_request_bulk(c->repl, (unsigned)i);
		c->sm.winner = 0;
	}
	send_heartbeats(c);
	if (c->fo_call)
		failover_finish(c, 0, NULL);
	run_hook(c, prev);
}

static void evaluate(struct cluster *c)
{
	if (c->stopping)
		return;
	uint64_t now = clock_now_ms();
	struct role_peer rp[SCONF_MAX_PEERS];
	int active_idx = -1;
	for (unsigned i = 0; i < c->conf->n_peers; i++) {
		const struct cpeer *p = &c->cp[i];
		rp[i] = (struct role_peer){
			.id = c->conf->peers[i].id,
			.heard = p->heard,
			.sync_alive = peer_alive_on(c, i, PATH_SYNC, now),
			.data_alive = peer_alive_on(c, i, PATH_DATA, now),
			.role = p->role,
			.priority = p->priority,
			.epoch = p->epoch,
			.holds_state = p->ready,
			.asks_takeover = now < p->asks_until,
		};
		bool alive = p->heard && (rp[i].sync_alive || rp[i].data_alive);
		if (alive && p->role == ROLE_ACTIVE)
			active_idx = (int)i;
		if (p->was_alive && !alive)
			logmsg(c, "peer %u silent on both paths", rp[i].id);
		c->cp[i].was_alive = alive;
	}
	struct role_in in = {
		.now_ms = now,
		.gate = repl_gate(c->repl),
		.notify = c->notify,
		.fault = c->fault[0] ? c->fault : NULL,
		.n_peers = c->conf->n_peers,
		.peers = rp,
	};
	in.synced = in.gate && active_idx >= 0 &&
		    repl_synced_from(c->repl, (unsigned)active_idx);
	in.holds_state = holds_state(c);
	uint64_t epoch = c->sm.epoch;
	enum role prev = c->sm.role;
	enum role_action a = role_step(&c->sm, &c->rcfg, &in);
	if (a == RA_ACTIVE)
		became_active(c, prev);
	else if (a == RA_STANDBY)
		became_standby(c, prev);
	else if (c->sm.epoch != epoch) {
		save_epoch(c);
		peers_set_epoch(c->ps, c->sm.epoch);
	}
}

/* ---- planned failover ------------------------------------------------------ */

static void failover_finish(struct cluster *c, int status, const char *msg)
{
	struct ctl_call *call = c->fo_call;
	c->fo_call = NULL;
	if (!call)
		return;
	uint64_t now = clock_now_ms();
	if (status) {
		logmsg(c, "failover: %s", msg);
		ctl_server_reply_error(call, status, msg);
		return;
	}
	Tandem__SyncdReply rep = TANDEM__SYNCD_REPLY__INIT;
	rep.has_failover_ms = true;
	rep.failover_ms = (uint32_t)(now - (c->fo_sent_ms ? c->fo_sent_ms : c->fo_t0));
	rep.role = (char *)role_name(c->sm.role);
	logmsg(c, "failover: node %u active after %u ms (%" PRIu64
	       " ms waiting for it to be ready)", c->conf->peers[c->fo_peer].id,
	       rep.failover_ms, (c->fo_sent_ms ? c->fo_sent_ms : now) - c->fo_t0);
	ctl_server_reply(call, &rep);
}

static void failover_progress(struct cluster *c, uint64_t now)
{
	if (!c->fo_call)
		return;
	if (c->sm.role != ROLE_ACTIVE) {
		failover_finish(c, 0, NULL);
		return;
	}
	if (now > c->fo_deadline) {
		failover_finish(c, 504, c->fo_sent_ms
				? "the standby did not take over in time"
				: "the standby did not become ready in time");
		return;
	}
	unsigned i = (unsigned)c->fo_peer;
	if (!c->cp[i].ready || !peers_link_up(c->ps, i))
		return;
	if (c->fo_sent_ms && now - c->fo_last_ms < c->conf->hb_interval_ms)
		return;
	uint8_t b[2] = {8 << 3, 1}; /* PeerMsg.failover_request = true */
	if (peers_send(c->ps, i, b, sizeof(b), NULL) == 0) {
		if (!c->fo_sent_ms)
			c->fo_sent_ms = now;
		c->fo_last_ms = now;
	}
}

/* ---- config replication ---------------------------------------------------- */

static void copy_setting(config_setting_t *parent, const config_setting_t *src)
{
	int t = config_setting_type(src);
	config_setting_t *d = config_setting_add(parent, config_setting_name(src), t);
	if (!d)
		return;
	config_setting_set_format(d, config_setting_get_format(src));
	switch (t) {
	case CONFIG_TYPE_INT:
		config_setting_set_int(d, config_setting_get_int(src));
		break;
	case CONFIG_TYPE_INT64:
		config_setting_set_int64(d, config_setting_get_int64(src));
		break;
	case CONFIG_TYPE_FLOAT:
		config_setting_set_float(d, config_setting_get_float(src));
		break;
	case CONFIG_TYPE_STRING:
		config_setting_set_string(d, config_setting_get_string(src));
		break;
	case CONFIG_TYPE_BOOL:
		config_setting_set_bool(d, config_setting_get_bool(src));
		break;
	default: /* group, list, array */
		for (int k = 0; k < config_setting_length(src); k++)
			copy_setting(d, config_setting_get_elem(src, (unsigned)k));
	}
}

/* The pushed config with this node's own settings (keep_local) put back:
 * node identity and control paths are per node. */
static int merge_config(const struct sconf *cf, const char *pushed,
			const char *ours, char **ret, char *err, size_t errlen)
{
	config_t a, b;
	config_init(&a);
	config_init(&b);
	int r = 0;
	if (config_read_string(&a, pushed) != CONFIG_TRUE) {
		snprintf(err, errlen, "pushed config, line %d: %s",
			 config_error_line(&a), config_error_text(&a));
		r = -EINVAL;
	} else if (config_read_string(&b, ours) != CONFIG_TRUE) {
		snprintf(err, errlen, "our config, line %d: %s",
			 config_error_line(&b), config_error_text(&b));
		r = -EINVAL;
	}
	if (r == 0) {
		config_setting_t *ra = config_root_setting(&a);
		config_setting_t *rb = config_root_setting(&b);
		for (unsigned k = 0; k < cf->n_keep; k++) {
			const char *name = cf->keep_local[k];
			if (config_setting_get_member(ra, name))
				config_setting_remove(ra, name);
			config_setting_t *s = config_setting_get_member(rb, name);
			if (s)
				copy_setting(ra, s);
		}
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (!f) {
			r = -ENOMEM;
		} else {
			config_write(&a, f);
			fclose(f);
			*ret = text;
		}
	}
	config_destroy(&a);
	config_destroy(&b);
	return r;
}

struct cfg_op {
	struct cluster *c;
	char *text;            /* pushed by the peer */
	char hash[40];
	uint16_t from;
};

static void cfg_op_free(struct cfg_op *op)
{
	free(op->text);
	free(op);
}

static void on_cfg_pushed(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct cfg_op *op = arg;
	struct cluster *c = op->c;
	if (err == -ECANCELED) {
		cfg_op_free(op);
		return;
	}
	if (err == 0 && rep->status == 0) {
		c->cnt[CC_CFG_APPLIED]++;
		snprintf(c->expect_hash, sizeof(c->expect_hash), "%s", op->hash);
		logmsg(c, "config from node %u applied: policy %s", op->from,
		       rep->push && rep->push->hash_new ? rep->push->hash_new : op->hash);
		c->next_poll_ms = 0; /* see the new hash soon */
	} else {
		c->cnt[CC_CFG_FAILED]++;
		logmsg(c, "config from node %u refused by the node: %s", op->from,
		       err < 0 ? strerror(-err) : rep->error ? rep->error : "error");
	}
	cfg_op_free(op);
}

static void on_cfg_ours(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct cfg_op *op = arg;
	struct cluster *c = op->c;
	if (err < 0 || rep->status != 0 || !rep->text) {
		if (err != -ECANCELED) {
			c->cnt[CC_CFG_FAILED]++;
			logmsg(c, "config from node %u: cannot read ours", op->from);
		}
		cfg_op_free(op);
		return;
	}
	char *merged = NULL, e[256];
	if (merge_config(c->conf, op->text, rep->text, &merged, e, sizeof(e)) < 0) {
		c->cnt[CC_CFG_FAILED]++;
		logmsg(c, "config from node %u: %s", op->from, e);
		cfg_op_free(op);
		return;
	}
	Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
	q.cmd = TANDEM__CTL_REQUEST__CMD__CONFIG_PUSH;
	q.config_text = merged;
	char src[48];
	snprintf(src, sizeof(src), "tandem-syncd (from node %u)", op->from);
	q.source = src;
	if (node_link_request(c->nl, &q, on_cfg_pushed, op) < 0)
		cfg_op_free(op);
	free(merged);
}

static void config_received(struct cluster *c, unsigned i,
			    const Tandem__ConfigPush *cp)
{
	c->cnt[CC_CFG_RECEIVED]++;
	if (!c->conf->config_sync || !c->node_up)
		return;
	if (c->hash_known && !strcmp(c->policy_hash, cp->policy_hash))
		return; /* the same policy already */
	struct cfg_op *op = calloc(1, sizeof(*op));
	if (!op || !(op->text = strdup(cp->config_text))) {
		free(op);
		return;
	}
	op->c = c;
	op->from = c->conf->peers[i].id;
	snprintf(op->hash, sizeof(op->hash), "%s", cp->policy_hash);
	Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
	q.cmd = TANDEM__CTL_REQUEST__CMD__CONFIG_SHOW;
	if (node_link_request(c->nl, &q, on_cfg_ours, op) < 0)
		cfg_op_free(op);
}

struct push_op {
	struct cluster *c;
	int only;              /* a peer index, or -1: every linked peer */
};

static void on_cfg_show(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct push_op *op = arg;
	struct cluster *c = op->c;
	if (err == 0 && rep->status == 0 && rep->text && c->hash_known) {
		Tandem__ConfigPush cp = TANDEM__CONFIG_PUSH__INIT;
		cp.config_text = rep->text;
		cp.policy_hash = c->policy_hash;
		Tandem__PeerMsg m = TANDEM__PEER_MSG__INIT;
		m.config = &cp;
		size_t n = tandem__peer_msg__get_packed_size(&m);
		uint8_t *d = malloc(n);
		if (d) {
			tandem__peer_msg__pack(&m, d);
			for (unsigned i = 0; i < c->conf->n_peers; i++) {
				if (op->only >= 0 && (int)i != op->only)
					continue;
				if (peers_send(c->ps, i, d, n, NULL) == 0) {
					c->cnt[CC_CFG_SENT]++;
					c->cp[i].last_cfg_push_ms = clock_now_ms();
				}
			}
			free(d);
		}
	}
	free(op);
}

static void push_config(struct cluster *c, int only)
{
	struct push_op *op = calloc(1, sizeof(*op));
	if (!op)
		return;
	op->c = c;
	op->only = only;
	Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
	q.cmd = TANDEM__CTL_REQUEST__CMD__CONFIG_SHOW;
	if (node_link_request(c->nl, &q, on_cfg_show, op) < 0)
		free(op);
}

static void on_status(void *arg, int err, const Tandem__CtlReply *rep)
{
	struct cluster *c = arg;
	if (err == -ECANCELED)
		return;
	c->poll_busy = false;
	if (err < 0 || rep->status != 0 || !rep->node)
		return;
	const Tandem__Status *st = rep->node;
	if (st->node_id != c->conf->node_id && !c->cnt[CC_NODE_ID_MISMATCH]++)
		logmsg(c, "the node says it is node %u, this syncd is node %u",
		       st->node_id, c->conf->node_id);
	if (!st->policy_hash)
		return;
	bool changed = c->hash_known && strcmp(c->policy_hash, st->policy_hash);
	snprintf(c->policy_hash, sizeof(c->policy_hash), "%s", st->policy_hash);
	c->hash_known = true;
	if (!changed || !c->conf->config_sync)
		return;
	if (!strcmp(c->expect_hash, st->policy_hash)) {
		c->expect_hash[0] = 0; /* the change we made from a peer */
		return;
	}
	logmsg(c, "policy changed to %s: sending the config to the peers",
	       st->policy_hash);
	push_config(c, -1);
}

static void poll_status(struct cluster *c, uint64_t now)
{
	if (!c->node_up || c->poll_busy || now < c->next_poll_ms)
		return;
	c->next_poll_ms = now + c->conf->poll_ms;
	Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
	q.cmd = TANDEM__CTL_REQUEST__CMD__STATUS;
	c->poll_busy = node_link_request(c->nl, &q, on_status, c) == 0;
}

/* ---- callbacks: node and peers --------------------------------------------- */

static void on_node_up(void *arg)
{
	struct cluster *c = arg;
	c->node_up = true;
	c->node_lost_ms = 0;
	logmsg(c, "node linked (%s)", c->conf->node_socket);
	repl_node_up(c->repl);
	c->next_poll_ms = 0;
	c->poll_busy = false;
	if (c->sm.role == ROLE_ACTIVE) {
		node_simple(c, TANDEM__CTL_REQUEST__CMD__PROMOTE, NULL);
		node_simple(c, TANDEM__CTL_REQUEST__CMD__ROLE_SET, "active");
	} else if (c->sm.role == ROLE_STANDBY) {
		node_simple(c, TANDEM__CTL_REQUEST__CMD__ROLE_SET, "standby");
	}
}

static void on_node_down(void *arg)
{
	struct cluster *c = arg;
	c->node_up = false;
	c->node_lost_ms = clock_now_ms();
	logmsg(c, "node link lost; reconnecting");
	repl_node_down(c->repl);
}

static void on_node_stream(void *arg, const uint8_t *d, size_t n)
{
	struct cluster *c = arg;
	repl_node_stream(c->repl, d, n);
}

static const struct node_link_ops node_ops = {
	.up = on_node_up,
	.down = on_node_down,
	.stream = on_node_stream,
};

static void ops_link(void *arg, unsigned i, bool up)
{
	struct cluster *c = arg;
	logmsg(c, "sync link to node %u %s", c->conf->peers[i].id,
	       up ? "up" : "down");
	repl_link(c->repl, i, up);
	if (up) {
		/* hello, also carrying how far we applied its frames */
		buf_reset(&c->hb);
		build_heartbeat(c, i, PATH_SYNC, &c->hb);
		peers_send(c->ps, i, c->hb.p, c->hb.len, NULL);
	}
}

static void ops_msg(void *arg, unsigned i, enum peer_path path,
		    const struct sync_hdr *h, const Tandem__PeerMsg *m,
		    const uint8_t *ev, size_t ev_len)
{
	struct cluster *c = arg;
	struct cpeer *p = &c->cp[i];
	uint64_t now = clock_now_ms();
	const Tandem__Heartbeat *hb = m->heartbeat;
	/* the two paths are not ordered with each other: a heartbeat older
	 * (sender's clock) than one already believed is stale, unless the
	 * clock jumped far back (the peer's host restarted) */
	if (hb && hb->sent_ms < p->hb_sent_ms && p->hb_sent_ms - hb->sent_ms < 5000)
		hb = NULL;
	if (hb) {
		enum role r;
		p->hb_sent_ms = hb->sent_ms;
		if (role_from_name(hb->role, &r) == 0) {
			if (!p->heard || p->role != r)
				logmsg(c, "node %u is %s (epoch %" PRIu64 ")",
				       c->conf->peers[i].id, role_name(r), h->epoch);
			p->heard = true;
			p->role = r;
			if (r == ROLE_ACTIVE)
				p->seen_active = true;
		}
		uint32_t iv = hb->has_interval_ms && hb->interval_ms <= 10000
				      ? hb->interval_ms : 0;
		uint32_t dc = hb->has_dead_count && hb->dead_count <= 100
				      ? hb->dead_count : 0;
		if (iv != p->hb_interval_ms || dc != p->hb_dead_count) {
			p->hb_interval_ms = iv;
			p->hb_dead_count = dc;
			uint64_t d = peer_dead_ms(c, i);
			peers_set_dead_ms(c->ps, i, d);
			logmsg(c, "node %u: heartbeat %u ms x %u, here %u ms x %u: "
			       "dead after %" PRIu64 " ms", c->conf->peers[i].id,
			       iv, dc, c->conf->hb_interval_ms, c->conf->dead_count, d);
		}
		p->priority = hb->priority;
		p->preempt = hb->preempt;
		p->epoch = h->epoch;
		p->ready = hb->has_ready && hb->ready;
		if (hb->policy_hash) {
			snprintf(p->policy_hash, sizeof(p->policy_hash), "%s",
				 hb->policy_hash);
			/* the active's policy is the cluster's: a peer that
			 * missed a push gets it again */
			if (path == PATH_SYNC && c->sm.role == ROLE_ACTIVE &&
			    c->conf->config_sync && c->hash_known &&
			    strcmp(p->policy_hash, c->policy_hash) &&
			    now - p->last_cfg_push_ms > CONFIG_REPUSH_MS) {
				p->last_cfg_push_ms = now;
				push_config(c, (int)i);
			}
		}
	}
	if (path == PATH_SYNC) {
		if (m->has_failover_request && m->failover_request) {
			logmsg(c, "node %u asks us to take over", c->conf->peers[i].id);
			p->asks_until = now + ASK_TTL_MS;
		}
		if (m->config)
			config_received(c, i, m->config);
		repl_msg(c->repl, i, h, m, ev, ev_len);
	}
	evaluate(c);
}

static const struct peers_ops peer_ops = {
	.link = ops_link,
	.msg = ops_msg,
	.heartbeat = ops_heartbeat,
};

/* ---- control socket -------------------------------------------------------- */

/* Everything SHOW_CLUSTER returns, on the stack. */
struct show {
	Tandem__ClusterStatus cs;
	Tandem__PeerStatus ps[SCONF_MAX_PEERS], *psp[SCONF_MAX_PEERS];
	Tandem__PathStatus path[SCONF_MAX_PEERS][2], *pathp[SCONF_MAX_PEERS][2];
	Tandem__BulkProgress btx[SCONF_MAX_PEERS], brx[SCONF_MAX_PEERS];
	Tandem__Counter pref[SCONF_MAX_PEERS][SR_MAX], *prefp[SCONF_MAX_PEERS][SR_MAX];
	char addr[SCONF_MAX_PEERS][80];
	Tandem__Counter cnt[64], *cntp[64];
	char *vips[SCONF_MAX_VIPS];
	char vipbuf[SCONF_MAX_VIPS][96];
};

static void add_counter(struct show *s, const char *name, uint64_t v)
{
	size_t n = s->cs.n_counters;
	if (n >= 64)
		return;
	tandem__counter__init(&s->cnt[n]);
	s->cnt[n].name = (char *)name;
	s->cnt[n].value = v;
	s->cntp[n] = &s->cnt[n];
	s->cs.n_counters++;
}

static void fill_show(struct cluster *c, struct show *s)
{
	uint64_t now = clock_now_ms();
	static char refused_names[SR_MAX][40];
	Tandem__ClusterStatus *cs = &s->cs;
	tandem__cluster_status__init(cs);
	cs->node_id = c->conf->node_id;
	cs->cluster_id = c->conf->cluster_id;
	cs->mode = c->conf->external ? "keepalived" : "election";
	cs->role = (char *)role_name(c->sm.role);
	cs->epoch = c->sm.epoch;
	cs->ready = repl_gate(c->repl);
	cs->priority = c->conf->priority;
	cs->preempt = c->conf->preempt;
	cs->role_age_ms = now - c->sm.since_ms;
	cs->role_reason = c->sm.why;
	struct repl_info ri;
	repl_info(c->repl, &ri);
	cs->node_link = !c->node_up ? "down" : ri.node_synced ? "up" : "syncing";
	cs->local_sessions = ri.local;
	cs->peer_sessions = ri.peer;
	cs->apply_pending = ri.apply_pending;
	if (c->hash_known)
		cs->policy_hash = c->policy_hash;
	if (c->has_takeover) {
		cs->has_last_takeover_ms = true;
		cs->last_takeover_ms = c->last_takeover_ms;
	}
	cs->has_takeover_pending = true;
	cs->takeover_pending = c->sm.pending;
	for (unsigned i = 0; i < c->conf->n_peers; i++) {
		Tandem__PeerStatus *p = &s->ps[i];
		const struct peer_link_stats *st = peers_stats(c->ps, i);
		const struct cpeer *cp = &c->cp[i];
		struct repl_peer_info pi;
		repl_peer_info(c->repl, i, now, &pi);
		tandem__peer_status__init(p);
		p->node_id = c->conf->peers[i].id;
		snprintf(s->addr[i], sizeof(s->addr[i]), "%s:%u",
			 c->conf->peers[i].address, c->conf->peers[i].port);
		p->address = s->addr[i];
		p->link = peers_link_up(c->ps, i) ? "up"
			  : st->connecting ? "connecting" : "down";
		for (int k = 0; k < 2; k++) {
			Tandem__PathStatus *ph = &s->path[i][k];
			tandem__path_status__init(ph);
			ph->path = k == PATH_SYNC ? "sync" : "data";
			ph->alive = peer_alive_on(c, i, k, now);
			if (st->last_rx_ms[k]) {
				ph->has_last_rx_age_ms = true;
				ph->last_rx_age_ms = now - st->last_rx_ms[k];
			}
			s->pathp[i][k] = ph;
		}
		p->n_paths = c->conf->data_hb ? 2 : 1;
		p->paths = s->pathp[i];
		if (cp->heard) {
			p->role = (char *)role_name(cp->role);
			p->has_priority = p->has_epoch = p->has_ready = true;
			p->priority = cp->priority;
			p->epoch = cp->epoch;
			p->ready = cp->ready;
			if (cp->policy_hash[0])
				p->policy_hash = (char *)cp->policy_hash;
		}
		p->events_sent = pi.events_sent;
		p->events_received = pi.events_received;
		p->frames_sent = st->frames_sent;
		p->frames_received = st->frames_received;
		p->frames_refused = st->frames_refused;
		p->n_refused = 0;
		p->refused = s->prefp[i];
		for (int k = 1; k < SR_MAX; k++) {
			if (!refused_names[k][0])
				snprintf(refused_names[k], sizeof(refused_names[k]), "%s",
					 sync_refusal_name((enum sync_refusal)k));
			Tandem__Counter *ct = &s->pref[i][p->n_refused];
			tandem__counter__init(ct);
			ct->name = refused_names[k];
			ct->value = st->refused[k];
			s->prefp[i][p->n_refused++] = ct;
		}
		p->lag_events = pi.lag_events;
		p->lag_ms = pi.lag_ms;
		if (pi.has_lat) {
			p->has_ack_p50_us = p->has_ack_p99_us = true;
			p->ack_p50_us = pi.ack_p50_us;
			p->ack_p99_us = pi.ack_p99_us;
		}
		tandem__bulk_progress__init(&s->btx[i]);
		s->btx[i].state = (char *)bulk_state_name(pi.tx_state);
		s->btx[i].sent = pi.tx_sent;
		s->btx[i].total = pi.tx_total;
		s->btx[i].has_elapsed_ms = true;
		s->btx[i].elapsed_ms = pi.tx_ms;
		p->bulk_tx = &s->btx[i];
		tandem__bulk_progress__init(&s->brx[i]);
		s->brx[i].state = (char *)bulk_state_name(pi.rx_state);
		s->brx[i].sent = pi.rx_n;
		s->brx[i].total = 0;
		s->brx[i].has_elapsed_ms = true;
		s->brx[i].elapsed_ms = pi.rx_ms;
		p->bulk_rx = &s->brx[i];
		p->applied_seq = pi.applied_seq;
		p->acked_seq = pi.acked_seq;
		p->backlog_bytes = pi.backlog_bytes;
		p->connects = st->connects;
		p->disconnects = st->disconnects;
		if (st->link_up_ms) {
			p->has_link_up_ms = true;
			p->link_up_ms = now - st->link_up_ms;
		}
		s->psp[i] = p;
	}
	cs->n_peers = c->conf->n_peers;
	cs->peers = s->psp;
	cs->counters = s->cntp;
	const uint64_t *rt = peers_refused_total(c->ps);
	static char tot_names[SR_MAX][48];
	for (int k = 1; k < SR_MAX; k++) {
		if (!tot_names[k][0])
			snprintf(tot_names[k], sizeof(tot_names[k]), "refused.%s",
				 sync_refusal_name((enum sync_refusal)k));
		add_counter(s, tot_names[k], rt[k]);
	}
	const struct node_link_stats *ns = node_link_stats(c->nl);
	add_counter(s, "node.connects", ns->connects);
	add_counter(s, "node.disconnects", ns->disconnects);
	add_counter(s, "node.timeouts", ns->timeouts);
	add_counter(s, "node.bad-frames", ns->bad_frames);
	add_counter(s, "node.bulks", ri.node_bulks);
	add_counter(s, "node.resyncs", ri.node_resyncs);
	add_counter(s, "apply.applied", ri.applied);
	add_counter(s, "apply.conflicts", ri.conflicts);
	add_counter(s, "apply.refused", ri.refused);
	add_counter(s, "apply.errors", ri.apply_errors);
	add_counter(s, "apply.swept", ri.swept);
	add_counter(s, "events.bad", ri.bad_events);
	for (unsigned i = 0; i < c->conf->n_peers; i++) {
		struct repl_peer_info pi;
		repl_peer_info(c->repl, i, now, &pi);
		static char names[SCONF_MAX_PEERS][4][40];
		static const char *const kinds[4] = {"resumes", "full-bulks",
						     "overflows", "overruns"};
		uint64_t v[4] = {pi.resumes, pi.full_bulks, pi.overflows, pi.overruns};
		for (int k = 0; k < 4; k++) {
			snprintf(names[i][k], sizeof(names[i][k]), "peer%u.%s",
				 c->conf->peers[i].id, kinds[k]);
			add_counter(s, names[i][k], v[k]);
		}
	}
	for (int k = 0; k < CC_MAX; k++)
		add_counter(s, cc_names[k], c->cnt[k]);
	for (unsigned k = 0; k < c->conf->n_vips; k++) {
		snprintf(s->vipbuf[k], sizeof(s->vipbuf[k]), "%s %s %s",
			 c->conf->vips[k].text, c->conf->vips[k].ifname,
			 c->vips_up ? "up" : "down");
		s->vips[k] = s->vipbuf[k];
	}
	cs->n_vips = c->conf->n_vips;
	cs->vips = s->vips;
}

static void on_ctl(void *arg, struct ctl_call *call, const Tandem__SyncdRequest *q)
{
	struct cluster *c = arg;
	uint64_t now = clock_now_ms();
	switch (q->cmd) {
	case TANDEM__SYNCD_REQUEST__CMD__SHOW_CLUSTER: {
		struct show *s = calloc(1, sizeof(*s));
		if (!s) {
			ctl_server_reply_error(call, 500, "out of memory");
			return;
		}
		fill_show(c, s);
		Tandem__SyncdReply rep = TANDEM__SYNCD_REPLY__INIT;
		rep.cluster = &s->cs;
		rep.role = (char *)role_name(c->sm.role);
		ctl_server_reply(call, &rep);
		free(s);
		return;
	}
	case TANDEM__SYNCD_REQUEST__CMD__FAILOVER: {
		if (c->conf->external) {
			ctl_server_reply_error(call, 409,
				"keepalived mode: the VRRP daemon decides the role");
			return;
		}
		if (c->sm.role != ROLE_ACTIVE) {
			ctl_server_reply_error(call, 409, "this node is not active");
			return;
		}
		if (c->fo_call) {
			ctl_server_reply_error(call, 409, "a failover is already running");
			return;
		}
		int target = -1;
		for (unsigned i = 0; i < c->conf->n_peers; i++)
			if (peers_link_up(c->ps, i) && c->cp[i].heard &&
			    c->cp[i].role == ROLE_STANDBY &&
			    (target < 0 || c->cp[i].priority > c->cp[target].priority))
				target = (int)i;
		if (target < 0) {
			ctl_server_reply_error(call, 503, "no standby peer is linked");
			return;
		}
		c->cnt[CC_FAILOVERS]++;
		c->fo_call = call;
		c->fo_peer = target;
		c->fo_t0 = now;
		c->fo_sent_ms = c->fo_last_ms = 0;
		c->fo_deadline = now + (q->has_timeout_ms && q->timeout_ms
					? q->timeout_ms : FAILOVER_TIMEOUT_MS);
		logmsg(c, "failover requested (%s): handing over to node %u",
		       q->source ? q->source : "control socket",
		       c->conf->peers[target].id);
		failover_progress(c, now);
		return;
	}
	case TANDEM__SYNCD_REQUEST__CMD__ROLE: {
		enum role r;
		if (!c->conf->external) {
			ctl_server_reply_error(call, 409,
				"mode is election: set mode = \"keepalived\" to use notify");
			return;
		}
		if (role_from_name(q->role, &r) < 0 || r == ROLE_INIT) {
			ctl_server_reply_error(call, 400,
				"role must be active|master or standby|backup|fault");
			return;
		}
		logmsg(c, "notified %s (%s)", q->role, q->source ? q->source : "notify");
		c->notify = r;
		evaluate(c);
		Tandem__SyncdReply rep = TANDEM__SYNCD_REPLY__INIT;
		rep.role = (char *)role_name(c->sm.role);
		ctl_server_reply(call, &rep);
		return;
	}
	default:
		ctl_server_reply_error(call, 400, "unknown command");
	}
}

/* ---- reload (SIGHUP) ------------------------------------------------------- */

/* Every setting of the file, and whether a reload can apply it. Live ones
 * are read where they are used (never cached at start-up), so writing them
 * into the running config is all a reload needs. The others shape sockets,
 * identity, frames or the peers' view of the dead time (heartbeat timers
 * change only with both sides restarted in turn), so a changed value is
 * reported and left as it runs. */
struct reload_field {
	const char *name;
	size_t off, size;
	bool live, str;             /* str: compared up to its NUL */
};

#define RF_(name, field, live, str) \
	{name, offsetof(struct sconf, field), sizeof(((struct sconf *)0)->field), \
	 live, str}
#define RF(name, field, live) RF_(name, field, live, false)
#define RFS(name, field, live) RF_(name, field, live, true)

static const struct reload_field reload_fields[] = {
	RF("node_id", node_id, false),
	RF("cluster.id", cluster_id, false),
	RF("cluster.key", key, false),
	RFS("node_socket", node_socket, false),
	RFS("control_socket", control_socket, false),
	RF("mode", external, false),
	RFS("state_file", state_file, false),
	RFS("sync.listen", listen, false),
	RF("sync.port", port, false),
	RF("sync.max_frame", max_frame, false),
	RF("sync.batch_events", batch_events, true),
	RF("sync.flush_ms", flush_ms, false),
	RF("sync.bulk_rate", bulk_rate, true),
	RF("sync.backlog", backlog_bytes, true),
	RF("sync.apply_inflight", apply_inflight, true),
	RF("heartbeat.interval_ms", hb_interval_ms, false),
	RF("heartbeat.dead_count", dead_count, false),
	RF("data_heartbeat", data_hb, false),
	RFS("data_heartbeat.bind", data_bind, false),
	RFS("data_heartbeat.peer", data_peer, false),
	RF("data_heartbeat.port", data_port, false),
	RF("data_heartbeat.peer_port", data_peer_port, false),
	RF("role.priority", priority, true),
	RF("role.preempt", preempt, true),
	RF("role.hold_down_ms", hold_down_ms, true),
	RF("role.init_wait_ms", init_wait_ms, true),
	RF("garp.count", garp_count, true),
	RF("garp.interval_ms", garp_interval_ms, true),
	RFS("notify", notify, true),
	RF("config_sync.enabled", config_sync, true),
	RF("config_sync.poll_ms", poll_ms, true),
};

#undef RFS
#undef RF
#undef RF_

static bool field_differs(const struct reload_field *f, const struct sconf *a,
			  const struct sconf *b)
{
	const char *x = (const char *)a + f->off, *y = (const char *)b + f->off;
	return f->str ? strncmp(x, y, f->size) != 0 : memcmp(x, y, f->size) != 0;
}

static bool peers_differ(const struct sconf *a, const struct sconf *b)
{
	if (a->n_peers != b->n_peers)
		return true;
	for (unsigned i = 0; i < a->n_peers; i++)
		if (a->peers[i].id != b->peers[i].id ||
		    a->peers[i].port != b->peers[i].port ||
		    strcmp(a->peers[i].address, b->peers[i].address))
			return true;
	return false;
}

static bool vips_differ(const struct sconf *a, const struct sconf *b)
{
	if (a->n_vips != b->n_vips)
		return true;
	for (unsigned i = 0; i < a->n_vips; i++)
		if (strcmp(a->vips[i].text, b->vips[i].text) ||
		    strcmp(a->vips[i].ifname, b->vips[i].ifname))
			return true;
	return false;
}

static bool keep_differs(const struct sconf *a, const struct sconf *b)
{
	if (a->n_keep != b->n_keep)
		return true;
	for (unsigned i = 0; i < a->n_keep; i++)
		if (strcmp(a->keep_local[i], b->keep_local[i]))
			return true;
	return false;
}

static void add_name(char *list, size_t len, const char *name)
{
	size_t n = strlen(list);
	snprintf(list + n, len - n, "%s%s", n ? ", " : "", name);
}

void cluster_reload(struct cluster *c)
{
	if (c->stopping)
		return;
	struct sconf *next = NULL;
	char err[512];
	if (sconf_load_file(c->conf->path, &next, err, sizeof(err)) < 0) {
		logmsg(c, "reload refused, running config kept: %s", err);
		return;
	}
	char applied[512] = "", restart[512] = "";
	for (size_t k = 0; k < sizeof(reload_fields) / sizeof(reload_fields[0]); k++) {
		const struct reload_field *f = &reload_fields[k];
		if (!field_differs(f, c->conf, next))
			continue;
		if (f->live) {
			memcpy((char *)c->conf + f->off, (const char *)next + f->off,
			       f->size);
			add_name(applied, sizeof(applied), f->name);
		} else {
			add_name(restart, sizeof(restart), f->name);
		}
	}
	if (keep_differs(c->conf, next)) {
		c->conf->n_keep = next->n_keep;
		memcpy(c->conf->keep_local, next->keep_local, sizeof(next->keep_local));
		add_name(applied, sizeof(applied), "config_sync.keep_local");
	}
	bool track = next->n_track != c->conf->n_track;
	for (unsigned i = 0; !track && i < next->n_track; i++)
		track = strcmp(next->track[i], c->conf->track[i]) != 0;
	if (track) {
		c->conf->n_track = next->n_track;
		memcpy(c->conf->track, next->track, sizeof(next->track));
		add_name(applied, sizeof(applied), "track_interfaces");
	}
	if (peers_differ(c->conf, next))
		add_name(restart, sizeof(restart), "peers");
	if (vips_differ(c->conf, next))
		add_name(restart, sizeof(restart), "vips");
	sconf_free(next);
	c->rcfg.priority = c->conf->priority;
	c->rcfg.preempt = c->conf->preempt;
	c->rcfg.hold_down_ms = c->conf->hold_down_ms;
	c->rcfg.init_wait_ms = c->conf->init_wait_ms;
	c->cnt[CC_RELOADS]++;
	logmsg(c, "reloaded %s (role %s): applied: %s; changed but needs a "
	       "restart (running value kept): %s", c->conf->path,
	       role_name(c->sm.role), applied[0] ? applied : "none",
	       restart[0] ? restart : "none");
	/* the peers rank us by what our heartbeats say: tell them now */
	if (applied[0])
		send_heartbeats(c);
}

/* ---- timers, life ---------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
	struct cluster *c = t->data;
	uint64_t now = clock_now_ms();
	if (now >= c->next_hb_ms) {
		c->next_hb_ms = now + c->conf->hb_interval_ms;
		send_heartbeats(c);
		peers_tick(c->ps, now);
	}
	check_health(c, now);
	evaluate(c);
	if (c->vip_pending && now - c->takeover_t0 >= VIP_WAIT_MS)
		vips_add(c); /* the node is slow to promote: go on */
	failover_progress(c, now);
	poll_status(c, now);
}

int cluster_new(uv_loop_t *loop, struct sconf *conf, struct cluster **ret)
{
	struct cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->conf = conf;
	c->fo_peer = -1;
	c->if_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (c->if_fd < 0 && conf->n_track) {
		int e = -errno;
		free(c);
		return e;
	}
	int r = peers_new(loop, conf, &peer_ops, c, &c->ps);
	if (r == 0)
		r = node_link_new(loop, conf->node_socket, NODE_TIMEOUT_MS, &node_ops,
				  c, &c->nl);
	if (r == 0)
		r = repl_new(loop, conf, c->ps, c->nl, &c->repl);
	if (r == 0)
		r = ctl_server_new(loop, on_ctl, c, &c->ctl);
	if (r < 0) {
		peers_free(c->ps);
		node_link_free(c->nl);
		repl_free(c->repl);
		if (c->if_fd >= 0)
			close(c->if_fd);
		free(c);
		return r;
	}
	c->rcfg = (struct role_cfg){
		.node_id = conf->node_id,
		.priority = conf->priority,
		.preempt = conf->preempt,
		.external = conf->external,
		.init_wait_ms = conf->init_wait_ms,
		.hold_down_ms = conf->hold_down_ms,
	};
	c->notify = ROLE_INIT;
	role_init(&c->sm, load_epoch(c), clock_now_ms());
	peers_set_epoch(c->ps, c->sm.epoch);
	uv_timer_init(loop, &c->tick);
	c->tick.data = c;
	c->tick_open = true;
	uv_timer_init(loop, &c->garp);
	c->garp.data = c;
	c->garp_open = true;
	*ret = c;
	return 0;
}

int cluster_start(struct cluster *c, char *err, size_t errlen)
{
	int r = ctl_server_listen(c->ctl, c->conf->control_socket, err, errlen);
	if (r < 0)
		return r;
	if ((r = peers_start(c->ps, err, errlen)) < 0)
		return r;
	/* addresses left behind by an earlier run (a SIGKILLed syncd keeps
	 * them) go until this node is elected */
	if (c->conf->n_vips)
		vips_del(c);
	node_link_start(c->nl);
	uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
	logmsg(c, "started: cluster %u, %u peer(s), mode %s, epoch %" PRIu64
	       ", priority %u", c->conf->cluster_id, c->conf->n_peers,
	       c->conf->external ? "keepalived" : "election", c->sm.epoch,
	       c->conf->priority);
	return 0;
}

void cluster_stop(struct cluster *c)
{
	if (c->stopping)
		return;
	c->stopping = true;
	logmsg(c, "stopping (role %s)", role_name(c->sm.role));
	/* tell the peers first: a standby takes over without waiting for
	 * the dead time */
	send_heartbeats(c);
	if (c->sm.role == ROLE_ACTIVE && c->conf->n_vips)
		vips_del(c);
	failover_finish(c, 503, "tandem-syncd is stopping");
	ctl_server_close(c->ctl);
	node_link_close(c->nl);
	repl_close(c->repl);
	peers_close(c->ps);
	if (c->tick_open) {
		uv_close((uv_handle_t *)&c->tick, NULL);
		c->tick_open = false;
	}
	if (c->garp_open) {
		uv_close((uv_handle_t *)&c->garp, NULL);
		c->garp_open = false;
	}
	/* hooks still running are left to finish on their own */
	while (c->hooks)
		hook_unlink(c->hooks);
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	repl_free(c->repl);
	node_link_free(c->nl);
	peers_free(c->ps);
	ctl_server_free(c->ctl);
	buf_free(&c->hb);
	if (c->if_fd >= 0)
		close(c->if_fd);
	vip_cleanup();
	free(c);
}
