/*
 * test_sconf.c - tandem-syncd's configuration (syncd/sconf.c): defaults,
 * every group, and refusals that name file, line and setting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sconf.h"

#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define MIN "node_id = 1;\ncluster = { id = 7; key = \"" KEY "\"; };\n"

static int load(const char *text, struct sconf **c, char *err)
{
	return sconf_load_string(text, c, err, 256);
}

static void minimal_config_gets_the_defaults(void **state)
{
	(void)state;
	struct sconf *c = NULL;
	char err[256] = "";
	assert_int_equal(load(MIN, &c, err), 0);
	assert_int_equal(c->node_id, 1);
	assert_int_equal(c->cluster_id, 7);
	assert_int_equal(c->key.k[1], 0x11);
	assert_int_equal(c->hb_interval_ms, 100);
	assert_int_equal(c->dead_count, 3);
	assert_int_equal(c->init_wait_ms, 900);
	assert_int_equal(c->port, 7790);
	assert_int_equal(c->max_frame, 4u << 20);
	assert_int_equal(c->batch_events, 256);
	assert_int_equal(c->flush_ms, 0);
	assert_false(c->external);
	assert_false(c->data_hb);
	assert_true(c->config_sync);
	assert_int_equal(c->n_keep, 2);
	assert_string_equal(c->keep_local[0], "node");
	sconf_free(c);
	sconf_free(NULL);
}

static void full_config_loads(void **state)
{
	(void)state;
	struct sconf *c = NULL;
	char err[256] = "";
	const char *t = MIN
		"mode = \"keepalived\";\n"
		"node_socket = \"/tmp/n.sock\"; control_socket = \"/tmp/s.sock\";\n"
		"sync = { listen = \"10.9.0.1\"; port = 7000; bulk_rate = 1000; };\n"
		"peers = ( { id = 2; address = \"10.9.0.2\"; port = 7001; },\n"
		"          { id = 3; address = \"fd00::3\"; } );\n"
		"heartbeat = { interval_ms = 50; dead_count = 4; };\n"
		"data_heartbeat = { bind = \"10.1.0.251\"; peer = \"10.1.0.252\"; port = 7791; };\n"
		"role = { priority = 200; preempt = true; hold_down_ms = 1000; };\n"
		"vips = ( { address = \"10.1.0.1/16\"; interface = \"veth-c\"; },\n"
		"         { address = \"fd00:1::1/64\"; interface = \"veth-c\"; } );\n"
		"garp = { count = 5; interval_ms = 200; };\n"
		"config_sync = { enabled = false; keep_local = [\"node\", \"control\", \"datapath\"]; };\n";
	assert_int_equal(load(t, &c, err), 0);
	assert_true(c->external);
	assert_int_equal(c->n_peers, 2);
	assert_int_equal(c->peers[1].id, 3);
	assert_int_equal(c->peers[1].port, 7790);
	assert_true(c->data_hb);
	assert_int_equal(c->data_peer_port, 7791);
	assert_int_equal(c->init_wait_ms, 600);
	assert_int_equal(c->n_vips, 2);
	assert_int_equal(c->vips[0].family, AF_INET);
	assert_int_equal(c->vips[0].plen, 16);
	assert_int_equal(c->vips[1].family, AF_INET6);
	assert_int_equal(c->vips[1].plen, 64);
	assert_false(c->config_sync);
	assert_int_equal(c->n_keep, 3);
	sconf_free(c);
}

static void refusal(const char *text, const char *want)
{
	struct sconf *c = NULL;
	char err[256] = "";
	assert_int_equal(load(text, &c, err), -EINVAL);
	assert_null(c);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void errors_name_line_and_setting(void **state)
{
	(void)state;
	refusal(MIN "hartbeat = { interval_ms = 10; };\n", "<string>:3: hartbeat: unknown setting");
	refusal(MIN "heartbeat = { interval_ms = 5; };\n", "heartbeat.interval_ms: 5 is out of range 10..10000");
	refusal(MIN "role = { priority = \"high\"; };\n", "role.priority: must be an integer");
	refusal("node_id = 1;\ncluster = { id = 7; key = \"abc\"; };\n", "cluster.key: must be 64 hex digits");
	refusal("cluster = { id = 7; key = \"" KEY "\"; };\n", "node_id: required");
	refusal(MIN "peers = ( { id = 1; address = \"10.0.0.1\"; } );\n", "id 1 is this node's own id");
	refusal(MIN "peers = ( { id = 2; address = \"host.example\"; } );\n", "address must be numeric");
	refusal(MIN "peers = ( { id = 2; address = \"10.0.0.2\"; }, { id = 2; address = \"10.0.0.3\"; } );\n", "listed twice");
	refusal(MIN "vips = ( { address = \"10.1.0.1/33\"; interface = \"veth-c\"; } );\n", "prefix length above 32");
	refusal(MIN "vips = ( { address = \"10.1.0.1/16\"; } );\n", "vips.[0].interface: required");
	refusal(MIN "mode = \"vrrp\";\n", "mode: must be \"election\" or \"keepalived\"");
	refusal(MIN "sync = { port = 70000; };\n", "sync.port: 70000 is out of range");
	refusal(MIN "node_id = 2;\n", "<string>:3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_config_gets_the_defaults),
		cmocka_unit_test(full_config_loads),
		cmocka_unit_test(errors_name_line_and_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
