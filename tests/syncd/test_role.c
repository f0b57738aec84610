/*
 * test_role.c - the role state machine (syncd/role.c) as a pure function:
 * time is an argument, peers are what a node would have heard.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "role.h"

static const struct role_cfg cfg1 = {
	.node_id = 1, .priority = 100, .preempt = false,
	.init_wait_ms = 900, .hold_down_ms = 5000,
};

/* one peer (node 2) heard on both paths */
static struct role_peer peer2(enum role r, uint32_t prio, uint64_t epoch)
{
	return (struct role_peer){.id = 2, .heard = true, .sync_alive = true,
				  .data_alive = true, .role = r,
				  .priority = prio, .epoch = epoch};
}

static enum role_action step(struct role_sm *sm, const struct role_cfg *cfg,
			     uint64_t now, bool gate, struct role_peer *p,
			     unsigned n)
{
	struct role_in in = {.now_ms = now, .gate = gate, .synced = gate,
			     .notify = ROLE_INIT, .n_peers = n, .peers = p};
	return role_step(sm, cfg, &in);
}

static void alone_waits_then_becomes_active(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 1000);
	struct role_peer p = {.id = 2}; /* configured, never heard */
	assert_int_equal(step(&sm, &cfg1, 1500, true, &p, 1), RA_NONE);
	assert_int_equal(sm.role, ROLE_INIT);
	assert_int_equal(step(&sm, &cfg1, 1900, true, &p, 1), RA_ACTIVE);
	assert_int_equal(sm.role, ROLE_ACTIVE);
	assert_int_equal(sm.epoch, 1);
}

static void no_peers_configured_is_active_at_once(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 7, 0);
	assert_int_equal(step(&sm, &cfg1, 1, true, NULL, 0), RA_ACTIVE);
	assert_int_equal(sm.epoch, 8);
}

static void higher_priority_wins_the_election(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_INIT, 200, 0);
	/* every peer heard: no need to wait */
	assert_int_equal(step(&sm, &cfg1, 10, true, &p, 1), RA_STANDBY);
	assert_string_equal(sm.why, "node 2 wins the election");

	role_init(&sm, 0, 0);
	p = peer2(ROLE_INIT, 50, 0);
	assert_int_equal(step(&sm, &cfg1, 10, true, &p, 1), RA_ACTIVE);
}

static void equal_priority_lower_node_id_wins(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_INIT, 100, 0);
	assert_int_equal(step(&sm, &cfg1, 10, true, &p, 1), RA_ACTIVE);

	struct role_cfg cfg3 = cfg1;
	cfg3.node_id = 3;
	role_init(&sm, 0, 0);
	assert_int_equal(step(&sm, &cfg3, 10, true, &p, 1), RA_STANDBY);
}

static void init_follows_an_active_peer(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 10, 4);
	assert_int_equal(step(&sm, &cfg1, 10, true, &p, 1), RA_STANDBY);
	assert_int_equal(sm.epoch, 4); /* adopted */
}

static void init_defers_to_a_standby_that_holds_the_state(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_STANDBY, 10, 3);
	p.holds_state = true;
	/* we have the higher priority, it has the sessions */
	assert_int_equal(step(&sm, &cfg1, 10, true, &p, 1), RA_STANDBY);
	assert_string_equal(sm.why, "node 2 holds the state");
}

static void standby_takes_over_only_when_both_paths_are_lost(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 200, 1);
	assert_int_equal(step(&sm, &cfg1, 10, true, &p, 1), RA_STANDBY);
	/* sync link lost, data-side heartbeats still heard */
	p.sync_alive = false;
	assert_int_equal(step(&sm, &cfg1, 1000, true, &p, 1), RA_NONE);
	assert_int_equal(sm.role, ROLE_STANDBY);
	/* the other way round */
	p.sync_alive = true;
	p.data_alive = false;
	assert_int_equal(step(&sm, &cfg1, 2000, true, &p, 1), RA_NONE);
	assert_int_equal(sm.role, ROLE_STANDBY);
	/* both */
	p.sync_alive = false;
	assert_int_equal(step(&sm, &cfg1, 3000, true, &p, 1), RA_ACTIVE);
	assert_int_equal(sm.epoch, 2);
	assert_string_equal(sm.why, "no active heard on any path");
}

static void readiness_gate_holds_the_takeover(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 200, 1);
	step(&sm, &cfg1, 10, true, &p, 1);
	p.sync_alive = p.data_alive = false;
	assert_int_equal(step(&sm, &cfg1, 1000, false, &p, 1), RA_NONE);
	assert_true(sm.pending);
	assert_int_equal(sm.role, ROLE_STANDBY);
	assert_non_null(strstr(sm.why, "readiness gate"));
	assert_int_equal(step(&sm, &cfg1, 1100, false, &p, 1), RA_NONE);
	assert_int_equal(step(&sm, &cfg1, 1200, true, &p, 1), RA_ACTIVE);
	assert_false(sm.pending);
}

static void pending_takeover_is_dropped_when_the_active_returns(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 200, 1);
	step(&sm, &cfg1, 10, true, &p, 1);
	p.sync_alive = p.data_alive = false;
	step(&sm, &cfg1, 1000, false, &p, 1);
	assert_true(sm.pending);
	p.data_alive = true;
	assert_int_equal(step(&sm, &cfg1, 1100, true, &p, 1), RA_NONE);
	assert_false(sm.pending);
	assert_int_equal(sm.role, ROLE_STANDBY);
}

static void standby_leaves_the_takeover_to_a_better_standby(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p[2] = {peer2(ROLE_ACTIVE, 300, 1), peer2(ROLE_STANDBY, 200, 1)};
	p[1].id = 3;
	step(&sm, &cfg1, 10, true, p, 2);
	p[0].sync_alive = p[0].data_alive = false;
	assert_int_equal(step(&sm, &cfg1, 1000, true, p, 2), RA_NONE);
	/* unless we hold the state and it does not */
	struct role_in in = {.now_ms = 1100, .gate = true, .holds_state = true,
			     .notify = ROLE_INIT, .n_peers = 2, .peers = p};
	assert_int_equal(role_step(&sm, &cfg1, &in), RA_ACTIVE);
}

static void two_actives_higher_epoch_wins(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	step(&sm, &cfg1, 2000, true, NULL, 0); /* active, epoch 1 */
	sm.epoch = 5;
	struct role_peer p = peer2(ROLE_ACTIVE, 10, 6);
	assert_int_equal(step(&sm, &cfg1, 3000, true, &p, 1), RA_STANDBY);
	assert_int_equal(sm.epoch, 6);
	assert_int_equal(sm.winner, 2);
	/* the winner's view: it stays active */
	struct role_sm w;
	role_init(&w, 0, 0);
	step(&w, &cfg1, 2000, true, NULL, 0);
	w.epoch = 6;
	p = peer2(ROLE_ACTIVE, 200, 5);
	assert_int_equal(step(&w, &cfg1, 3000, true, &p, 1), RA_NONE);
	assert_int_equal(w.role, ROLE_ACTIVE);
	assert_int_equal(w.epoch, 6);
}

static void two_actives_same_epoch_priority_decides(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	step(&sm, &cfg1, 2000, true, NULL, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 200, sm.epoch);
	assert_int_equal(step(&sm, &cfg1, 3000, true, &p, 1), RA_STANDBY);
	role_init(&sm, 0, 0);
	step(&sm, &cfg1, 2000, true, NULL, 0);
	p = peer2(ROLE_ACTIVE, 50, sm.epoch);
	assert_int_equal(step(&sm, &cfg1, 3000, true, &p, 1), RA_NONE);
}

static void epoch_never_goes_down_and_takeover_is_above_all_heard(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 9, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 200, 3);
	step(&sm, &cfg1, 10, true, &p, 1);
	assert_int_equal(sm.epoch, 9);
	p.epoch = 12;
	step(&sm, &cfg1, 20, true, &p, 1);
	assert_int_equal(sm.epoch, 12);
	p.sync_alive = p.data_alive = false; /* heard before: epoch still counts */
	assert_int_equal(step(&sm, &cfg1, 1000, true, &p, 1), RA_ACTIVE);
	assert_int_equal(sm.epoch, 13);
}

static void preempt_waits_for_hold_down_and_sync(void **state)
{
	(void)state;
	struct role_cfg c = cfg1;
	c.preempt = true;
	c.priority = 250;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 200, 1);
	assert_int_equal(step(&sm, &c, 10, true, &p, 1), RA_STANDBY);
	/* not synced yet */
	struct role_in in = {.now_ms = 6000, .gate = true, .synced = false,
			     .notify = ROLE_INIT, .n_peers = 1, .peers = &p};
	assert_int_equal(role_step(&sm, &c, &in), RA_NONE);
	/* synced, but within hold-down */
	in.synced = true;
	in.now_ms = 4000;
	assert_int_equal(role_step(&sm, &c, &in), RA_NONE);
	in.now_ms = 5010;
	assert_int_equal(role_step(&sm, &c, &in), RA_ACTIVE);
	assert_string_equal(sm.why, "preempt");
	assert_int_equal(sm.epoch, 2);
	/* without preempt it never happens */
	role_init(&sm, 0, 0);
	c.preempt = false;
	step(&sm, &c, 10, true, &p, 1);
	assert_int_equal(step(&sm, &c, 100000, true, &p, 1), RA_NONE);
}

static void planned_failover_when_the_active_asks(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_ACTIVE, 200, 1);
	step(&sm, &cfg1, 10, true, &p, 1);
	p.asks_takeover = true;
	assert_int_equal(step(&sm, &cfg1, 20, false, &p, 1), RA_NONE);
	assert_true(sm.pending);
	assert_int_equal(step(&sm, &cfg1, 30, true, &p, 1), RA_ACTIVE);
	assert_string_equal(sm.why, "planned failover");
	assert_int_equal(sm.epoch, 2);
}

static void keepalived_mode_takes_the_notified_role(void **state)
{
	(void)state;
	struct role_cfg c = cfg1;
	c.external = true;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_STANDBY, 200, 0);
	struct role_in in = {.now_ms = 100000, .gate = true, .notify = ROLE_INIT,
			     .n_peers = 1, .peers = &p};
	assert_int_equal(role_step(&sm, &c, &in), RA_NONE); /* no election */
	assert_int_equal(sm.role, ROLE_INIT);
	in.notify = ROLE_ACTIVE;
	in.gate = false;
	assert_int_equal(role_step(&sm, &c, &in), RA_NONE);
	assert_true(sm.pending);
	in.gate = true;
	assert_int_equal(role_step(&sm, &c, &in), RA_ACTIVE);
	assert_int_equal(sm.epoch, 1);
	/* an active peer does not make it step down: keepalived decides */
	p = peer2(ROLE_ACTIVE, 200, 9);
	assert_int_equal(role_step(&sm, &c, &in), RA_NONE);
	in.notify = ROLE_STANDBY;
	assert_int_equal(role_step(&sm, &c, &in), RA_STANDBY);
	assert_int_equal(sm.epoch, 9);
}

static void a_faulty_active_steps_down_and_a_faulty_node_never_takes_over(void **state)
{
	(void)state;
	struct role_sm sm;
	role_init(&sm, 0, 0);
	struct role_peer p = peer2(ROLE_STANDBY, 100, 1);
	p.holds_state = true;
	sm.role = ROLE_ACTIVE;
	sm.epoch = 1;
	struct role_in in = {.now_ms = 100, .gate = true, .synced = true,
			     .notify = ROLE_INIT, .fault = "node gone",
			     .n_peers = 1, .peers = &p};
	assert_int_equal(role_step(&sm, &cfg1, &in), RA_STANDBY);
	assert_int_equal(sm.role, ROLE_STANDBY);
	assert_int_equal(sm.epoch, 1);
	assert_string_equal(sm.why, "stepped down: node gone");
	/* no active anywhere, but still faulty: stays standby */
	p.sync_alive = p.data_alive = false;
	in.now_ms = 5000;
	assert_int_equal(role_step(&sm, &cfg1, &in), RA_NONE);
	assert_int_equal(sm.role, ROLE_STANDBY);
	/* healthy again: the usual rules */
	in.fault = NULL;
	assert_int_equal(role_step(&sm, &cfg1, &in), RA_ACTIVE);
	assert_int_equal(sm.epoch, 2);
}

static void role_names_round_trip(void **state)
{
	(void)state;
	enum role r;
	assert_int_equal(role_from_name("master", &r), 0);
	assert_int_equal(r, ROLE_ACTIVE);
	assert_int_equal(role_from_name("backup", &r), 0);
	assert_int_equal(r, ROLE_STANDBY);
	assert_int_equal(role_from_name("fault", &r), 0);
	assert_int_equal(r, ROLE_STANDBY);
	assert_int_not_equal(role_from_name("boss", &r), 0);
	assert_string_equal(role_name(ROLE_ACTIVE), "active");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alone_waits_then_becomes_active),
		cmocka_unit_test(no_peers_configured_is_active_at_once),
		cmocka_unit_test(higher_priority_wins_the_election),
		cmocka_unit_test(equal_priority_lower_node_id_wins),
		cmocka_unit_test(init_follows_an_active_peer),
		cmocka_unit_test(init_defers_to_a_standby_that_holds_the_state),
		cmocka_unit_test(standby_takes_over_only_when_both_paths_are_lost),
		cmocka_unit_test(readiness_gate_holds_the_takeover),
		cmocka_unit_test(pending_takeover_is_dropped_when_the_active_returns),
		cmocka_unit_test(standby_leaves_the_takeover_to_a_better_standby),
		cmocka_unit_test(two_actives_higher_epoch_wins),
		cmocka_unit_test(two_actives_same_epoch_priority_decides),
		cmocka_unit_test(epoch_never_goes_down_and_takeover_is_above_all_heard),
		cmocka_unit_test(preempt_waits_for_hold_down_and_sync),
		cmocka_unit_test(planned_failover_when_the_active_asks),
		cmocka_unit_test(keepalived_mode_takes_the_notified_role),
		cmocka_unit_test(a_faulty_active_steps_down_and_a_faulty_node_never_takes_over),
		cmocka_unit_test(role_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
