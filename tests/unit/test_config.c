/*
 * test_config.c - loading the example config, the defaults, and one test per
 * kind of error: each checks the exact "FILE:LINE: SETTING:" prefix and that
 * nothing was returned (the caller's pointer is untouched).
 *
 * Must never: depend on the working directory (paths come from SRCDIR) or
 * leave files behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* Lines 1-3 of most test configs; a test's own lines start at line 4. */
#define BASE                                                                        \
	"node = { name = \"fw1\"; id = 1; };\n"                                     \
	"zones = ( { name = \"trust\"; interfaces = [\"veth-c\"]; networks = [\"10.1.0.0/16\", \"fd00:1::/64\"]; },\n" \
	"          { name = \"untrust\"; interfaces = \"veth-s\"; networks = [\"10.2.0.0/16\"]; } );\n"

#define RULES "rules = ( { name = \"r1\"; action = \"accept\"; } );\n"

static struct tandem_config sentinel_cfg;
#define SENTINEL (&sentinel_cfg)

static struct tandem_config *load_ok(const char *text)
{
	struct tandem_config *c = NULL;
	char err[512] = "";
	int r = config_load_string(text, &c, err, sizeof(err));

	if (r != 0)
		fail_msg("unexpected error %d: %s", r, err);
	assert_non_null(c);
	return c;
}

/* The load fails with -EINVAL, the message starts with prefix, and the
 * caller's pointer is left as it was. */
static void expect_error(const char *text, const char *prefix)
{
	struct tandem_config *c = SENTINEL;
	char err[512] = "";
	int r = config_load_string(text, &c, err, sizeof(err));

	if (r != -EINVAL || strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("want -EINVAL '%s...', got %d '%s'", prefix, r, err);
	assert_ptr_equal(c, SENTINEL);
}

/* datapath.source / xdp_mode: names checked, af_xdp needs one worker and
 * zone interfaces. */
static void test_datapath_source(void **state)
{
	(void)state;
	struct tandem_config *c = load_ok(BASE RULES);
	assert_false(c->af_xdp);
	assert_false(c->xdp_generic);
	config_free(c);
	c = load_ok(BASE "datapath = { source = \"af_xdp\"; xdp_mode = \"generic\"; };\n" RULES);
	assert_true(c->af_xdp && c->xdp_generic);
	config_free(c);
	expect_error(BASE "datapath = { source = \"dpdk\"; };\n" RULES,
		     "<string>:4: datapath.source: \"dpdk\": one of");
	expect_error(BASE "datapath = { xdp_mode = \"offload\"; };\n" RULES,
		     "<string>:4: datapath.xdp_mode: \"offload\": one of");
	expect_error(BASE "datapath = { source = \"af_xdp\"; queues = 2; };\n" RULES,
		     "<string>:4: datapath.queues: 2 with source");
	expect_error("node = { name = \"fw1\"; id = 1; };\n"
		     "datapath = { source = \"af_xdp\"; };\n"
		     "zones = ( { name = \"a\"; networks = [\"10.0.0.0/8\"]; } );\n" RULES,
		     "<string>:2: datapath.source: \"af_xdp\" needs zones with interfaces");
}

/* ------------------------------------------------------------------ */
/* Good configs                                                         */

static void test_example_config_loads(void **state)
{
	static const char *const names[] = {
		"web", "web-strict", "web-loose", "ssh-ka", "dns", "ping",
		"ping-loose", "stateless", "stateless-return", "limited",
		"short-udp", "gre", "block-telnet", "deny-dmz"
	};
	struct tandem_config *c = NULL;
	char err[512] = "";
	const struct cfg_rule *r;

	(void)state;
	if (config_load_file(SRCDIR "/conf/tandem.conf", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c->path, SRCDIR "/conf/tandem.conf");
	assert_string_equal(c->node_name, "fw1");
	assert_int_equal(c->node_id, 1);
	assert_int_equal(c->queues, 2);
	assert_int_equal(c->max_sessions, 262144);

	assert_int_equal(c->n_zones, 3);
	assert_string_equal(c->zones[0].name, "trust");
	assert_string_equal(c->zones[1].name, "untrust");
	assert_string_equal(c->zones[2].name, "dmz");
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(c->zones[i].id, i + 1);
		assert_int_equal(c->zones[i].n_networks, 2);
		assert_int_equal(c->zones[i].networks[0].family, 4);
		assert_int_equal(c->zones[i].networks[0].len, 16);
		assert_int_equal(c->zones[i].networks[0].addr[1], i + 1);
		assert_int_equal(c->zones[i].networks[1].family, 6);
		assert_int_equal(c->zones[i].networks[1].len, 64);
	}
	assert_int_equal(c->n_ifaces, 3);
	assert_int_equal(config_iface_id(c, "veth-c"), 1);
	assert_int_equal(config_iface_id(c, "veth-s"), 2);
	assert_int_equal(config_iface_id(c, "veth-d"), 3);
	assert_int_equal(c->ifaces[2].zone, 3);
	assert_int_equal(config_iface_id(c, "eth0"), 0);
	assert_string_equal(config_zone_name(c, 2), "untrust");
	assert_string_equal(config_zone_name(c, 0), "-");
	assert_string_equal(config_zone_name(c, 9), "-");

	assert_int_equal(c->n_rules, 14);
	for (unsigned i = 0; i < 14; i++) {
		assert_string_equal(c->rules[i].name, names[i]);
		assert_int_equal(c->rules[i].index, i);
		assert_true(c->rules[i].line > 0);
	}
	r = &c->rules[0]; /* web */
	assert_int_equal(r->from_zone, 1);
	assert_int_equal(r->to_zone, 2);
	assert_int_equal(r->n_src, 2);
	assert_int_equal(r->n_dst, 2);
	assert_int_equal(r->dst[0].len, 32);
	assert_int_equal(r->dst[1].len, 128);
	assert_int_equal(r->n_svc, 2);
	assert_int_equal(r->svc[0].proto, 6);
	assert_int_equal(r->svc[0].port_lo, 80);
	assert_int_equal(r->svc[0].port_hi, 80);
	assert_int_equal(r->svc[1].port_lo, 443);
	assert_int_equal(r->action, ACT_ACCEPT);
	assert_int_equal(r->mode, TRACK_NORMAL);
	assert_int_equal(c->rules[1].mode, TRACK_STRICT);
	assert_int_equal(c->rules[2].mode, TRACK_LOOSE);
	r = &c->rules[3]; /* ssh-ka */
	assert_true(r->keepalive);
	assert_int_equal(r->idle_timeout, 3600);
	assert_int_equal(r->n_src, 0);
	r = &c->rules[5]; /* ping */
	assert_int_equal(r->n_svc, 2);
	assert_int_equal(r->svc[0].proto, 1);
	assert_int_equal(r->svc[0].icmp_type, 8);
	assert_int_equal(r->svc[1].proto, 58);
	assert_int_equal(r->svc[1].icmp_type, 128);
	assert_int_equal(c->rules[6].svc[0].icmp_type, 0xffff);
	assert_int_equal(c->rules[7].mode, TRACK_OFF);
	assert_int_equal(c->rules[7].svc[0].port_lo, 5000);
	assert_int_equal(c->rules[7].svc[0].port_hi, 5100);
	assert_int_equal(c->rules[8].from_zone, 2);
	assert_int_equal(c->rules[8].svc[0].port_hi, 65535);
	assert_int_equal(c->rules[9].limit_src, 3);
	assert_int_equal(c->rules[9].limit_dst, 5);
	assert_int_equal(c->rules[10].idle_timeout, 10);
	assert_int_equal(c->rules[11].svc[0].proto, 47);
	r = &c->rules[12]; /* block-telnet */
	assert_int_equal(r->from_zone, 0);
	assert_int_equal(r->to_zone, 0);
	assert_int_equal(r->action, ACT_REJECT);
	r = &c->rules[13]; /* deny-dmz */
	assert_int_equal(r->to_zone, 3);
	assert_int_equal(r->action, ACT_DROP);
	assert_true(r->log);
	assert_int_equal(r->n_svc, 0);
	config_free(c);
}

static void test_defaults(void **state)
{
	static const uint32_t ka[] = { 900, 880, 860, 820, 740, 580, 260 };
	struct tandem_config *c;

	(void)state;
	c = load_ok(BASE RULES);
	assert_string_equal(c->path, "<string>");
	assert_int_equal(c->queues, 1);
	assert_int_equal(c->queue_first, 0);
	assert_int_equal(c->queue_len, 4096);
	assert_false(c->fail_open);
	assert_false(c->bypass);
	assert_int_equal(c->max_sessions, 262144);
	assert_int_equal(c->timeout[TO_TCP_INITIAL], 20);
	assert_int_equal(c->timeout[TO_TCP_ESTABLISHED], 1800);
	assert_int_equal(c->timeout[TO_TCP_WAIT], 30);
	assert_int_equal(c->timeout[TO_TCP_TIME_WAIT], 15);
	assert_int_equal(c->timeout[TO_TCP_CLOSED], 2);
	assert_int_equal(c->timeout[TO_UDP], 60);
	assert_int_equal(c->timeout[TO_ICMP], 60);
	assert_int_equal(c->timeout[TO_OTHER], 1800);
	assert_true(c->rst_invalidate);
	assert_false(c->fin_invalidate);
	assert_int_equal(c->age_high_pct, 90);
	assert_int_equal(c->age_low_pct, 70);
	assert_int_equal(c->early_ageout, 20);
	assert_int_equal(c->n_ka_offsets, 7);
	assert_memory_equal(c->ka_offsets, ka, sizeof(ka));
	assert_int_equal(c->ka_max_lifetime, 86400);
	assert_false(c->reload_flush);
	/* A rule with nothing but name and action: everything any. */
	assert_int_equal(c->rules[0].from_zone, 0);
	assert_int_equal(c->rules[0].n_src + c->rules[0].n_dst + c->rules[0].n_svc, 0);
	assert_int_equal(c->rules[0].mode, TRACK_NORMAL);
	config_free(c);
}

static void test_every_setting_at_its_bounds(void **state)
{
	struct tandem_config *c;

	(void)state;
	c = load_ok(BASE
		    "datapath = { queues = 8; queue_first = 65527; queue_len = 1048576; fail_open = true; bypass = true; };\n"
		    "table = { max_sessions = 268435456; };\n"
		    "timeouts = { tcp_initial = 4; tcp_established = 86400; tcp_wait = 3600; tcp_time_wait = 1;\n"
		    "             tcp_closed = 600; udp = 4; icmp = 86400; other = 4; };\n"
		    "tcp = { rst_invalidate = false; fin_invalidate = true; };\n"
		    "ageing = { high_watermark = 100; low_watermark = 0; early_ageout = 300; };\n"
		    "keepalive = { offsets = [86400, 1]; max_lifetime = 0; };\n"
		    "reload = \"flush\";\n"
		    "addresses = { any4 = \"0.0.0.0/0\"; nested = [\"any4\", \"::/0\"]; };\n"
		    "services = { s = \"tcp/0-65535\"; t = [\"s\", \"icmp/255\", \"proto/255\"]; };\n"
		    "rules = ( { name = \"a.b_c-9\"; from = \"any\"; to = \"untrust\"; source = \"nested\";\n"
		    "            destination = [\"10.2.0.0/16\", \"fd00:2::1\"]; service = \"t\"; action = \"drop\";\n"
		    "            tracking = \"strict\"; idle_timeout = 86400; keepalive = true;\n"
		    "            limit_per_source = 1000000; limit_per_destination = 1; log = true; } );\n");
	assert_int_equal(c->queues, 8);
	assert_int_equal(c->queue_first, 65527);
	assert_true(c->fail_open && c->bypass && c->fin_invalidate && c->reload_flush);
	assert_int_equal(c->max_sessions, 268435456);
	assert_int_equal(c->timeout[TO_TCP_INITIAL], 4);
	assert_int_equal(c->age_high_pct, 100);
	assert_int_equal(c->n_ka_offsets, 2);
	assert_int_equal(c->ka_max_lifetime, 0);
	assert_int_equal(c->rules[0].n_src, 2);
	assert_int_equal(c->rules[0].n_svc, 3);
	assert_int_equal(c->rules[0].svc[1].icmp_type, 255);
	assert_int_equal(c->rules[0].limit_src, 1000000);
	config_free(c);
	/* 64-bit literals are fine where the value fits. */
	c = load_ok(BASE "table = { max_sessions = 1000L; };\n" RULES);
	assert_int_equal(c->max_sessions, 1000);
	config_free(c);
	/* "any" inside a list makes the whole list any. */
	c = load_ok(BASE "rules = ( { name = \"r\"; source = [\"10.0.0.0/8\", \"any\"]; service = [\"any\", \"tcp/1\"]; action = \"accept\"; } );\n");
	assert_int_equal(c->rules[0].n_src, 0);
	assert_int_equal(c->rules[0].n_svc, 0);
	config_free(c);
}

/* ------------------------------------------------------------------ */
/* One test per kind of error                                           */

static void test_error_out_of_range_timeout(void **state)
{
	(void)state;
	/* 4 s is the Junos tcp-initial-timeout minimum. */
	expect_error(BASE "timeouts = { tcp_initial = 3; };\n" RULES,
		     "<string>:4: timeouts.tcp_initial: 3 out of range 4..300");
	expect_error(BASE "timeouts = {\n udp = 5;\n icmp = 86401; };\n" RULES,
		     "<string>:6: timeouts.icmp: 86401 out of range 4..86400");
	expect_error(BASE "datapath = { queues = 16; };\n" RULES,
		     "<string>:4: datapath.queues: 16 out of range 1..8");
	expect_error(BASE "datapath = { queues = 3; };\n" RULES,
		     "<string>:4: datapath.queues: 3 is not 1, 2, 4 or 8");
	expect_error(BASE "datapath = { queues = 4; queue_first = 65532; };\n" RULES,
		     "<string>:4: datapath.queue_first: 65532 out of range 0..65531");
	expect_error(BASE "table = { max_sessions = 15; };\n" RULES,
		     "<string>:4: table.max_sessions: 15 out of range 16..268435456");
	expect_error(BASE "node = { name = \"x\"; id = 0; };\n" RULES,
		     "<string>:4: duplicate setting name");
	expect_error("node = { name = \"fw1\"; id = 65536; };\n" RULES,
		     "<string>:1: node.id: 65536 out of range 1..65535");
	expect_error(BASE "keepalive = { max_lifetime = 59; };\n" RULES,
		     "<string>:4: keepalive.max_lifetime: 59 out of range (0 = unlimited, or 60..31536000)");
	expect_error(BASE "rules = ( { name = \"r\"; action = \"accept\";\n idle_timeout = 3; } );\n",
		     "<string>:5: rules[0] (r).idle_timeout: 3 out of range (0 = protocol default, or 4..86400)");
	expect_error(BASE "rules = ( { name = \"r\"; action = \"accept\"; limit_per_source = 1000001; } );\n",
		     "<string>:4: rules[0] (r).limit_per_source: 1000001 out of range 0..1000000");
}

static void test_error_integer_literal_too_large(void **state)
{
	(void)state;
	/* libconfig 1.5 would silently load this as 60. */
	expect_error(BASE "timeouts = { udp = 4294967356; };\n" RULES,
		     "<string>:4: 4294967356: integer out of range");
	expect_error(BASE "# 99999999999 in a comment is fine\n"
		     "table = { max_sessions = \"99999999999\"; };\n" RULES,
		     "<string>:5: table.max_sessions: expected an integer, got a string");
}

static void test_error_wrong_type(void **state)
{
	(void)state;
	expect_error(BASE "timeouts = { udp = \"60\"; };\n" RULES,
		     "<string>:4: timeouts.udp: expected an integer, got a string");
	expect_error(BASE "timeouts = { udp = 60.0; };\n" RULES,
		     "<string>:4: timeouts.udp: expected an integer, got a float");
	expect_error(BASE "tcp = { rst_invalidate = 1; };\n" RULES,
		     "<string>:4: tcp.rst_invalidate: expected a boolean (true/false), got an integer");
	expect_error(BASE "timeouts = 60;\n" RULES,
		     "<string>:4: timeouts: expected a group { ... }, got an integer");
	expect_error(BASE "rules = ( { name = \"r\"; action = \"accept\";\n source = (\"10.0.0.0/8\", 5); } );\n",
		     "<string>:5: rules[0] (r).source[1]: expected a string, got an integer");
	/* An array of mixed types is libconfig's own error. */
	expect_error(BASE "rules = ( { name = \"r\"; action = \"accept\";\n source = [\"10.0.0.0/8\", 5]; } );\n",
		     "<string>:5: mismatched element type in array");
	expect_error(BASE "rules = { r = 1; };\n",
		     "<string>:4: rules: expected a list ( { ... }, ... ), got a group");
	expect_error(BASE "reload = true;\n" RULES,
		     "<string>:4: reload: expected a string, got a boolean");
}

static void test_error_unknown_setting(void **state)
{
	(void)state;
	expect_error(BASE "timeouts = {\n udp = 60;\n upd = 60; };\n" RULES,
		     "<string>:6: timeouts.upd: unknown setting (known: tcp_initial,");
	expect_error(BASE "rule = ();\n" RULES, "<string>:4: rule: unknown setting");
	expect_error(BASE "rules = ( { name = \"r\"; action = \"accept\";\n trackign = \"off\"; } );\n",
		     "<string>:5: rules[0] (r).trackign: unknown setting");
	expect_error("node = { name = \"fw1\"; id = 1; nmae = \"x\"; };\n",
		     "<string>:1: node.nmae: unknown setting (known: name, id)");
}

static void test_error_missing_required(void **state)
{
	(void)state;
	expect_error(RULES, "<string>:1: node: missing");
	expect_error("node = { id = 1; };\n", "<string>:1: node.name: missing");
	expect_error("node = { name = \"fw1\"; id = 1; };\n" RULES,
		     "<string>:1: zones: missing");
	expect_error(BASE, "<string>:1: rules: missing");
	expect_error(BASE "rules = ( { name = \"r\"; } );\n",
		     "<string>:4: rules[0] (r).action: missing");
	expect_error(BASE "rules = ( { action = \"accept\"; } );\n",
		     "<string>:4: rules[0].name: missing");
}

static void test_error_duplicate_rule_name(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; },\n"
		     "          { name = \"r2\"; action = \"accept\"; },\n"
		     "          { name = \"r1\"; action = \"drop\"; } );\n",
		     "<string>:6: rules[2].name: duplicate rule name 'r1'");
}

static void test_error_bad_names(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"has space\"; action = \"accept\"; } );\n",
		     "<string>:4: rules[0].name: bad name 'has space'");
	expect_error(BASE "rules = ( { name = \"abcdefghijklmnopqrstuvwxyz012345\"; action = \"accept\"; } );\n",
		     "<string>:4: rules[0].name: bad name");
	expect_error("node = { name = \"fw1\"; id = 1; };\nzones = ( { name = \"a\"; },\n { name = \"a\"; } );\n" RULES,
		     "<string>:3: zones[1].name: duplicate zone name 'a'");
	expect_error("node = { name = \"fw1\"; id = 1; };\nzones = ( { name = \"any\"; } );\n" RULES,
		     "<string>:2: zones[0].name: 'any' is reserved");
	expect_error("node = { name = \"fw1\"; id = 1; };\nzones = ( { name = \"a\"; interfaces = \"eth0\"; },\n"
		     " { name = \"b\"; interfaces = [\"eth1\", \"eth0\"]; } );\n" RULES,
		     "<string>:3: zones[1] (b).interfaces[1]: interface 'eth0' already in zone 'a'");
	expect_error("node = { name = \"fw1\"; id = 1; };\nzones = ( { name = \"a\"; interfaces = \"averyveryverylongname\"; } );\n" RULES,
		     "<string>:2: zones[0] (a).interfaces: bad interface name");
	expect_error("node = { name = \"fw1\"; id = 1; };\nzones = ( { name = \"a\"; networks = \"10.0.0.0/8\"; },\n"
		     " { name = \"b\"; networks = [\"10.0.0.0/8\"]; } );\n" RULES,
		     "<string>:3: zones[1] (b).networks[0]: network 10.0.0.0/8 already in zone 'a'");
	expect_error(BASE "services = { tcp = \"tcp/1\"; };\n" RULES,
		     "<string>:4: services.tcp: 'tcp' is reserved");
}

static void test_error_unknown_zone(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"r1\";\n from = \"trsut\"; action = \"accept\"; } );\n",
		     "<string>:5: rules[0] (r1).from: unknown zone 'trsut' (trust, untrust, any)");
	expect_error(BASE "rules = ( { name = \"r1\"; to = \"dmz\"; action = \"accept\"; } );\n",
		     "<string>:4: rules[0] (r1).to: unknown zone 'dmz'");
}

static void test_error_unknown_address_object(void **state)
{
	(void)state;
	expect_error(BASE "addresses = { servers = \"10.2.0.0/24\"; };\n"
		     "rules = ( { name = \"r1\"; action = \"accept\";\n"
		     "            source = [\"10.1.0.0/24\", \"clients\"]; } );\n",
		     "<string>:6: rules[0] (r1).source[1]: unknown address object 'clients'");
	expect_error(BASE "addresses = { lan = [\"10.1.0.0/24\", \"wan\"]; };\n" RULES,
		     "<string>:4: addresses.lan[1]: unknown address object 'wan'");
}

static void test_error_object_cycle(void **state)
{
	(void)state;
	expect_error(BASE "addresses = { a = [\"b\"];\n"
		     "              b = [\"10.0.0.0/8\", \"c\"];\n"
		     "              c = \"a\"; };\n" RULES,
		     "<string>:6: addresses.c: address object reference cycle: a -> b -> c -> a");
	expect_error(BASE "addresses = { self = [\"self\"]; };\n" RULES,
		     "<string>:4: addresses.self[0]: address object reference cycle: self -> self");
	expect_error(BASE "services = { x = [\"tcp/1\", \"y\"];\n y = \"x\"; };\n" RULES,
		     "<string>:5: services.y: service object reference cycle: x -> y -> x");
}

static void test_error_bad_prefix(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; destination = \"10.1.0.0/33\"; } );\n",
		     "<string>:4: rules[0] (r1).destination: bad prefix '10.1.0.0/33' (length 0..32)");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; destination = \"10.1.300.0/24\"; } );\n",
		     "<string>:4: rules[0] (r1).destination: bad IPv4 address in '10.1.300.0/24'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; destination = \"fd00::1::2\"; } );\n",
		     "<string>:4: rules[0] (r1).destination: bad IPv6 address in 'fd00::1::2'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; destination = \"fd00::/129\"; } );\n",
		     "<string>:4: rules[0] (r1).destination: bad prefix 'fd00::/129' (length 0..128)");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; destination = \"10.0.0.0/\"; } );\n",
		     "<string>:4: rules[0] (r1).destination: bad prefix '10.0.0.0/'");
	expect_error("node = { name = \"fw1\"; id = 1; };\nzones = ( { name = \"a\"; networks = [\"10.0.0.0/-1\"]; } );\n" RULES,
		     "<string>:2: zones[0] (a).networks[0]: bad prefix '10.0.0.0/-1'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; source = []; } );\n",
		     "<string>:4: rules[0] (r1).source: empty list");
}

static void test_error_host_bits_set(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\";\n source = \"10.1.0.1/16\"; } );\n",
		     "<string>:5: rules[0] (r1).source: 10.1.0.1/16 has host bits set");
	expect_error(BASE "addresses = { v6 = [\"fd00:1::/64\", \"fd00::1/64\"]; };\n" RULES,
		     "<string>:4: addresses.v6[1]: fd00::1/64 has host bits set");
}

static void test_error_bad_service(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"tcp/99999\"; } );\n",
		     "<string>:4: rules[0] (r1).service: bad port in service 'tcp/99999'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = [\"tcp/80\", \"udp/90-80\"]; } );\n",
		     "<string>:4: rules[0] (r1).service[1]: bad port in service 'udp/90-80'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"sctp/80\"; } );\n",
		     "<string>:4: rules[0] (r1).service: bad service 'sctp/80'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"icmp/echo\"; } );\n",
		     "<string>:4: rules[0] (r1).service: bad ICMP type in service 'icmp/echo'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"icmp/256\"; } );\n",
		     "<string>:4: rules[0] (r1).service: bad ICMP type");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"proto/256\"; } );\n",
		     "<string>:4: rules[0] (r1).service: bad service 'proto/256'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"proto/0\"; } );\n",
		     "<string>:4: rules[0] (r1).service: bad service 'proto/0' (proto/1..255; use \"any\"");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"htp\"; } );\n",
		     "<string>:4: rules[0] (r1).service: unknown service object 'htp'");
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"accept\"; service = \"80\"; } );\n",
		     "<string>:4: rules[0] (r1).service: bad service '80'");
}

static void test_error_bad_tracking_mode(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"web\"; action = \"accept\";\n tracking = \"strictt\"; } );\n",
		     "<string>:5: rules[0] (web).tracking: unknown mode 'strictt' (off, loose, normal, strict)");
	expect_error(BASE "reload = \"flsh\";\n" RULES,
		     "<string>:4: reload: unknown mode 'flsh' (revalidate, flush)");
	/* Stateless rules have no sessions to keep alive or count. */
	expect_error(BASE "rules = ( { name = \"r\"; action = \"accept\"; tracking = \"off\";\n keepalive = true; } );\n",
		     "<string>:5: rules[0] (r).keepalive: needs session tracking (tracking is off)");
	expect_error(BASE "rules = ( { name = \"r\"; action = \"accept\"; tracking = \"off\";\n limit_per_destination = 2; } );\n",
		     "<string>:5: rules[0] (r).limit_per_destination: needs session tracking");
}

static void test_error_bad_action(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = \"r1\"; action = \"allow\"; } );\n",
		     "<string>:4: rules[0] (r1).action: unknown action 'allow' (accept, drop, reject)");
}

static void test_error_low_watermark_not_below_high(void **state)
{
	struct tandem_config *c;

	(void)state;
	expect_error(BASE "ageing = { high_watermark = 80;\n low_watermark = 80; };\n" RULES,
		     "<string>:5: ageing.low_watermark: 80 out of range 0..79 (must be below high_watermark 80)");
	expect_error(BASE "ageing = { high_watermark = 0; };\n" RULES,
		     "<string>:4: ageing.high_watermark: 0 out of range 1..100");
	/* The default low (70) follows a lower high watermark down. */
	c = load_ok(BASE "ageing = { high_watermark = 50; };\n" RULES);
	assert_int_equal(c->age_low_pct, 49);
	config_free(c);
}

static void test_error_offsets_not_descending(void **state)
{
	(void)state;
	expect_error(BASE "keepalive = { offsets = [900, 880,\n 880, 100]; };\n" RULES,
		     "<string>:5: keepalive.offsets[2]: 880 not below the previous offset 880");
	expect_error(BASE "keepalive = { offsets = [10, 20]; };\n" RULES,
		     "<string>:4: keepalive.offsets[1]: 20 not below the previous offset 10");
	expect_error(BASE "keepalive = { offsets = [17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]; };\n" RULES,
		     "<string>:4: keepalive.offsets: 17 values, expected 1..16");
	expect_error(BASE "keepalive = { offsets = []; };\n" RULES,
		     "<string>:4: keepalive.offsets: 0 values, expected 1..16");
	expect_error(BASE "keepalive = { offsets = [0]; };\n" RULES,
		     "<string>:4: keepalive.offsets[0]: 0 out of range 1..86400");
}

static void test_error_syntax(void **state)
{
	(void)state;
	expect_error(BASE "rules = ( { name = ; action = \"accept\"; } );\n",
		     "<string>:4: syntax error");
	/* An unterminated string runs to the end of the text. */
	expect_error(BASE "rules = ( { name = \"unterminated; } );\n",
		     "<string>:5: syntax error");
	expect_error(BASE "@include \"/etc/passwd\"\n" RULES,
		     "<string>:4: @include: not supported");
}

static void test_error_in_file_names_path_and_line(void **state)
{
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	const char *text = BASE "\n\ntimeouts = { udp = 3; };\n" RULES;
	struct tandem_config *c = SENTINEL;
	char err[512], want[128];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(config_load_file(path, &c, err, sizeof(err)), -EINVAL);
	unlink(path);
	snprintf(want, sizeof(want), "%s:6: timeouts.udp: 3 out of range 4..86400", path);
	assert_string_equal(err, want);
	assert_ptr_equal(c, SENTINEL);

	assert_int_equal(config_load_file("/nonexistent/tandem.conf", &c, err, sizeof(err)), -ENOENT);
	assert_ptr_equal(c, SENTINEL);
	assert_non_null(strstr(err, "/nonexistent/tandem.conf"));
}

static void test_zone_of_addr_longest_match(void **state)
{
	struct tandem_config *c;
	uint8_t a[16];

	(void)state;
	c = load_ok("node = { name = \"fw1\"; id = 1; };\n"
		    "zones = ( { name = \"wide\"; networks = [\"10.0.0.0/8\", \"fd00::/8\", \"0.0.0.0/0\"]; },\n"
		    "          { name = \"mid\"; networks = [\"10.1.0.0/16\", \"fd00:1::/32\"]; },\n"
		    "          { name = \"narrow\"; networks = [\"10.1.2.0/24\", \"10.1.2.128/25\", \"fd00:1::5\"]; },\n"
		    "          { name = \"host\"; networks = \"10.1.2.200\"; } );\n" RULES);
#define ZONE_OF(fam, txt)                                                          \
	(memset(a, 0, sizeof(a)),                                                  \
	 assert_int_equal(inet_pton(fam == 4 ? AF_INET : AF_INET6, txt, a), 1), \
	 config_zone_of_addr(c, fam, a))
	assert_int_equal(ZONE_OF(4, "10.1.2.3"), 3);
	assert_int_equal(ZONE_OF(4, "10.1.2.200"), 4);
	assert_int_equal(ZONE_OF(4, "10.1.2.201"), 3);
	assert_int_equal(ZONE_OF(4, "10.1.3.3"), 2);
	assert_int_equal(ZONE_OF(4, "10.200.0.1"), 1);
	assert_int_equal(ZONE_OF(4, "192.0.2.1"), 1); /* 0.0.0.0/0 */
	assert_int_equal(ZONE_OF(6, "fd00:1::5"), 3);
	assert_int_equal(ZONE_OF(6, "fd00:1::6"), 2);
	assert_int_equal(ZONE_OF(6, "fd00:2::6"), 1);
	assert_int_equal(ZONE_OF(6, "fe80::1"), 0);
	/* An IPv4 address whose bytes begin like fd00:: is not in fd00::/8,
	 * and no IPv6 address is in 0.0.0.0/0. */
	assert_int_equal(ZONE_OF(6, "::"), 0);
	assert_int_equal(config_zone_of_addr(c, 5, a), 0);
	assert_int_equal(config_zone_of_addr(NULL, 4, a), 0);
	assert_string_equal(config_zone_name(c, 4), "host");
#undef ZONE_OF
	config_free(c);
	config_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_config_loads),
		cmocka_unit_test(test_datapath_source),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_setting_at_its_bounds),
		cmocka_unit_test(test_error_out_of_range_timeout),
		cmocka_unit_test(test_error_integer_literal_too_large),
		cmocka_unit_test(test_error_wrong_type),
		cmocka_unit_test(test_error_unknown_setting),
		cmocka_unit_test(test_error_missing_required),
		cmocka_unit_test(test_error_duplicate_rule_name),
		cmocka_unit_test(test_error_bad_names),
		cmocka_unit_test(test_error_unknown_zone),
		cmocka_unit_test(test_error_unknown_address_object),
		cmocka_unit_test(test_error_object_cycle),
		cmocka_unit_test(test_error_bad_prefix),
		cmocka_unit_test(test_error_host_bits_set),
		cmocka_unit_test(test_error_bad_service),
		cmocka_unit_test(test_error_bad_tracking_mode),
		cmocka_unit_test(test_error_bad_action),
		cmocka_unit_test(test_error_low_watermark_not_below_high),
		cmocka_unit_test(test_error_offsets_not_descending),
		cmocka_unit_test(test_error_syntax),
		cmocka_unit_test(test_error_in_file_names_path_and_line),
		cmocka_unit_test(test_zone_of_addr_longest_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
