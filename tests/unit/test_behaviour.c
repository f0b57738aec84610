/*
 * test_behaviour.c - every session behaviour of the five vendor documents
 * (see shared DESIGN.md), each a named case that drives real packet bytes
 * through pkt_parse + pipeline and moves the manual clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "keepalive.h"
#include "connlimit.h"
#include "pipeline.h"
#include "pktbuild.h"
#include "policy.h"

/* ---- fixture ---------------------------------------------------------- */

#define C1 "10.1.0.2"   /* client, zone trust */
#define C2 "10.1.0.3"
#define WEB "10.2.0.10" /* rule web: tcp/80,443 normal */
#define STRICT "10.2.0.11"
#define LOOSE "10.2.0.12"
#define KA "10.2.0.13"
#define DNS "10.2.0.53"
#define STATELESS "10.2.0.20"
#define LIMITED "10.2.0.30"
#define SHORTUDP "10.2.0.40"
#define ROUTER "10.9.0.1" /* in zone untrust via 10.9/16 */
#define C6 "fd00:1::2"
#define WEB6 "fd00:2::10"

struct opts {
	const char *tcp;      /* body of tcp = { ... } */
	const char *timeouts; /* body of timeouts = { ... } */
	unsigned max_sessions;
	const char *ageing;
};

struct fx {
	struct tandem_config *cfg;
	struct policy *pol;
	struct connlimit *lim;
	struct node_ctx ctx;
	struct shard sh;
	uint8_t buf[2048];
	struct pipeline_result res;
};

#define T0 1000000u /* ms: clock start */

static struct fx *fx_new(const struct opts *o)
{
	static char text[8192];
	snprintf(text, sizeof(text),
		 "node = { name = \"t\"; id = 7; };\n"
		 "datapath = { queues = 1; };\n"
		 "table = { max_sessions = %u; };\n"
		 "timeouts = { %s };\n"
		 "tcp = { %s };\n"
		 "ageing = { %s };\n"
		 "zones = (\n"
		 " { name = \"trust\"; networks = [\"10.1.0.0/16\", \"fd00:1::/64\"]; },\n"
		 " { name = \"untrust\"; networks = [\"10.2.0.0/16\", \"10.9.0.0/16\", \"fd00:2::/64\"]; }\n"
		 ");\n"
		 "rules = (\n"
		 " { name = \"web\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.10\", \"fd00:2::10\"];"
		 "   service = [\"tcp/80\", \"tcp/443\"]; action = \"accept\"; tracking = \"normal\"; },\n"
		 " { name = \"web-strict\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.11\"];"
		 "   service = [\"tcp/80\", \"icmp\"]; action = \"accept\"; tracking = \"strict\"; },\n"
		 " { name = \"web-loose\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.12\"];"
		 "   service = [\"tcp/80\", \"icmp\"]; action = \"accept\"; tracking = \"loose\"; },\n"
		 " { name = \"ssh-ka\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.13\"];"
		 "   service = \"tcp/22\"; action = \"accept\"; keepalive = true; idle_timeout = 3600; },\n"
		 " { name = \"dns\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.53\"];"
		 "   service = [\"udp/53\"]; action = \"accept\"; },\n"
		 " { name = \"ping\"; from = \"trust\"; to = \"untrust\"; service = [\"icmp/echo-request\", \"icmpv6/echo-request\"];"
		 "   action = \"accept\"; tracking = \"normal\"; },\n"
		 " { name = \"stateless\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.20\"];"
		 "   service = \"udp/5000-5100\"; action = \"accept\"; tracking = \"off\"; },\n"
		 " { name = \"stateless-return\"; from = \"untrust\"; to = \"trust\"; source = [\"10.2.0.20\"];"
		 "   service = \"udp\"; action = \"accept\"; tracking = \"off\"; },\n"
		 " { name = \"limited\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.30\"];"
		 "   service = \"tcp/8080\"; action = \"accept\"; limit_per_source = 3; limit_per_destination = 5; },\n"
		 " { name = \"short-udp\"; from = \"trust\"; to = \"untrust\"; destination = [\"10.2.0.40\"];"
		 "   service = \"udp/9000-9100\"; action = \"accept\"; idle_timeout = 10; },\n"
		 " { name = \"gre\"; from = \"trust\"; to = \"untrust\"; service = \"proto/47\"; action = \"accept\"; },\n"
		 " { name = \"block-telnet\"; service = \"tcp/23\"; action = \"reject\"; },\n"
		 " { name = \"deny-10-2-0-99\"; destination = [\"10.2.0.99\"]; action = \"drop\"; }\n"
		 ");\n",
		 o && o->max_sessions ? o->max_sessions : 1024,
		 o && o->timeouts ? o->timeouts : "",
		 o && o->tcp ? o->tcp : "",
		 o && o->ageing ? o->ageing : "high_watermark = 100; low_watermark = 90;");
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	char err[512] = "";
	int r = config_load_string(text, &f->cfg, err, sizeof(err));
	if (r < 0)
		fail_msg("config: %s", err);
	r = policy_compile(f->cfg, &f->pol, err, sizeof(err));
	if (r < 0)
		fail_msg("policy: %s", err);
	assert_int_equal(connlimit_new(4096, &f->lim), 0);
	clock_use_manual(T0);
	node_ctx_init(&f->ctx, f->cfg, f->pol, f->lim, false);
	assert_int_equal(shard_init(&f->sh, 0, f->cfg->max_sessions, &f->ctx,
				    clock_now_ms()), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	shard_fini(&f->sh);
	connlimit_free(f->lim);
	policy_free(f->pol);
	config_free(f->cfg);
	free(f);
}

/* Advance the clock by ms and run the wheel until it catches up. */
static void advance(struct fx *f, uint64_t ms)
{
	clock_advance_ms(ms);
	while (!pipeline_tick(&f->sh, clock_now_ms()))
		;
}

static enum verdict inject(struct fx *f, size_t len)
{
	pipeline_raw(&f->sh, f->buf, (uint32_t)len, 0, 0, clock_now_ms(),
		     &f->res);
	return f->res.verdict;
}

static enum verdict tcp(struct fx *f, const char *src, const char *dst,
			uint16_t sp, uint16_t dp, uint8_t flags, uint32_t seq,
			uint32_t ack, uint16_t payload)
{
	return inject(f, pb_tcp(f->buf, src, dst, sp, dp, flags, seq, ack,
			      65535, (flags & PB_SYN) ? 7 : -1, payload));
}

static enum verdict udp(struct fx *f, const char *src, const char *dst,
			uint16_t sp, uint16_t dp)
{
	return inject(f, pb_udp(f->buf, src, dst, sp, dp, 32));
}

static uint64_t drops(struct fx *f, enum drop_reason r)
{
	return f->sh.st.drop[r];
}

static uint32_t nsess(struct fx *f)
{
	return sess_table_count(f->sh.tab);
}

#define CISN 1000u
#define SISN 5000u

/* Three-way handshake C -> S; leaves the session established. */
static struct sess *handshake(struct fx *f, const char *c, const char *s,
			      uint16_t sp, uint16_t dp)
{
	assert_int_equal(tcp(f, c, s, sp, dp, PB_SYN, CISN, 0, 0), V_ACCEPT);
	assert_int_equal(tcp(f, s, c, dp, sp, PB_SYN | PB_ACK, SISN, CISN + 1, 0),
			 V_ACCEPT);
	assert_int_equal(tcp(f, c, s, sp, dp, PB_ACK, CISN + 1, SISN + 1, 0),
			 V_ACCEPT);
	assert_non_null(f->res.sess);
	assert_int_equal(f->res.sess->state, SS_TCP_ESTABLISHED);
	return f->res.sess;
}

/* ---- Junos SRX flow sessions ------------------------------------------ */

static void srx_first_packet_creates_session_reverse_flow_matches(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 1);
	struct sess *s = f->res.sess;
	assert_string_equal(f->cfg->rules[s->rule].name, "web");
	assert_int_equal(s->id >> 48, 7); /* node id in the high bits */
	/* the reply finds the same session, no policy lookup */
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_SYN | PB_ACK, SISN, CISN + 1, 0),
			 V_ACCEPT);
	assert_ptr_equal(f->res.sess, s);
	assert_null(f->res.rule);
	assert_int_equal(nsess(f), 1);
	assert_int_equal(s->pkts[0], 1);
	assert_int_equal(s->pkts[1], 1);
	/* no rule allows untrust -> trust: an unsolicited packet is refused */
	assert_int_equal(tcp(f, WEB, C1, 80, 40001, PB_SYN, 1, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_NO_RULE), 1);
	fx_free(f);
}

static void srx_tcp_established_timeout_1800s(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(stats_live(&f->sh.st, SS_TCP_ESTABLISHED), 1);
	assert_int_equal(stats_live(&f->sh.st, SS_TCP_SYN_SENT), 0);
	advance(f, 1799 * 1000);
	assert_int_equal(nsess(f), 1);
	/* traffic restarts the 1800 s idle timer */
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_ACK, CISN + 1, SISN + 1, 0), V_ACCEPT);
	advance(f, 1799 * 1000);
	assert_int_equal(nsess(f), 1);
	advance(f, 2 * 1000);
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended[END_EXPIRED], 1);
	assert_int_equal(f->sh.st.ended_state[PC_TCP][SS_TCP_ESTABLISHED], 1);
	assert_int_equal(stats_live(&f->sh.st, SS_TCP_ESTABLISHED), 0);
	fx_free(f);
}

static void srx_udp_timeout_60s(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(udp(f, C1, DNS, 5353, 53), V_ACCEPT);
	assert_int_equal(udp(f, DNS, C1, 53, 5353), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_UDP_REPLIED);
	advance(f, 59 * 1000);
	assert_int_equal(nsess(f), 1);
	advance(f, 2 * 1000);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void srx_icmp_and_other_protocol_timeouts(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(inject(f, pb_echo(f->buf, C1, WEB, 0, 77, 1)), V_ACCEPT);
	assert_int_equal(inject(f, pb_echo(f->buf, WEB, C1, 1, 77, 1)), V_ACCEPT);
	assert_int_equal(nsess(f), 1);
	assert_int_equal(inject(f, pb_proto(f->buf, C1, WEB, 47, 24)), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_OTHER);
	assert_int_equal(nsess(f), 2);
	advance(f, 61 * 1000); /* ICMP default 60 s */
	assert_int_equal(nsess(f), 1);
	advance(f, 1740 * 1000); /* other protocols default 1800 s */
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void srx_tcp_initial_timeout_restarted_by_handshake_packets(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	advance(f, 15 * 1000);
	/* retransmitted SYN restarts the 20 s handshake timer */
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	advance(f, 15 * 1000);
	assert_int_equal(nsess(f), 1);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_SYN | PB_ACK, SISN, CISN + 1, 0), V_ACCEPT);
	advance(f, 15 * 1000);
	assert_int_equal(nsess(f), 1);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_ACK, CISN + 1, SISN + 1, 0), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_TCP_ESTABLISHED);
	advance(f, 100 * 1000); /* now the 1800 s timer holds */
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void srx_tcp_initial_timeout_removes_incomplete_handshake(void **st)
{
	(void)st;
	struct opts o = {.timeouts = "tcp_initial = 4;"};
	struct fx *f = fx_new(&o);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	/* a stray ACK from the responder does not keep the handshake alive */
	advance(f, 3 * 1000);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_ACK, SISN, CISN + 1, 0), V_ACCEPT);
	advance(f, 1500);
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended_state[PC_TCP][SS_TCP_SYN_SENT], 1);
	/* the late SYN/ACK finds no session and is refused */
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_SYN | PB_ACK, SISN, CISN + 1, 0), V_DROP);
	fx_free(f);
}

static void srx_tcp_initial_timeout_minimum_4s(void **st)
{
	(void)st;
	char err[512];
	struct tandem_config *c = NULL;
	int r = config_load_string(
		"node = { name = \"t\"; id = 1; };\n"
		"timeouts = { tcp_initial = 3; };\n"
		"zones = ( { name = \"a\"; } );\n"
		"rules = ( { name = \"r\"; action = \"accept\"; } );\n",
		&c, err, sizeof(err));
	assert_true(r < 0);
	assert_null(c);
	assert_non_null(strstr(err, "<string>:2: timeouts.tcp_initial"));
}

static void srx_rst_invalidate_session_default_on(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_RST | PB_ACK, SISN + 1, CISN + 1, 0),
			 V_ACCEPT); /* the RST itself is forwarded */
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended[END_RST], 1);
	/* data after it finds no session: normal mode needs a SYN */
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_ACK, CISN + 1, SISN + 1, 10), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_NOT_SYN), 1);
	fx_free(f);
}

static void srx_rst_invalidate_off_keeps_closed_state_briefly(void **st)
{
	(void)st;
	struct opts o = {.tcp = "rst_invalidate = false;"};
	struct fx *f = fx_new(&o);
	struct sess *s = handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_RST, SISN + 1, 0, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 1);
	assert_int_equal(s->state, SS_TCP_CLOSED);
	advance(f, 2200); /* tcp_closed default 2 s (+ one 128 ms wheel slot) */
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void srx_rst_must_fall_in_window_in_strict_mode(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, STRICT, 40000, 80);
	/* an RST far outside the window (blind reset) is dropped */
	assert_int_equal(tcp(f, STRICT, C1, 80, 40000, PB_RST, SISN + 100000000u, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_RST_WINDOW), 1);
	assert_int_equal(nsess(f), 1);
	/* in window, it ends the session */
	assert_int_equal(tcp(f, STRICT, C1, 80, 40000, PB_RST, SISN + 1, 0, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void srx_fin_invalidate_session_off_by_default(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	struct sess *s = handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_FIN | PB_ACK, CISN + 1, SISN + 1, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 1);
	assert_int_equal(s->state, SS_TCP_WAIT);
	fx_free(f);
}

static void srx_fin_invalidate_session_on_ends_at_first_fin(void **st)
{
	(void)st;
	struct opts o = {.tcp = "fin_invalidate = true;"};
	struct fx *f = fx_new(&o);
	handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_FIN | PB_ACK, CISN + 1, SISN + 1, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended[END_FIN], 1);
	fx_free(f);
}

static void srx_icmp_error_ends_udp_session(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	uint8_t q[128];
	size_t ql = pb_udp(q, C1, DNS, 5353, 53, 20);
	memcpy(f->buf, q, ql);
	assert_int_equal(inject(f, ql), V_ACCEPT);
	assert_int_equal(nsess(f), 1);
	/* port unreachable from the server, quoting the query */
	assert_int_equal(inject(f, pb_unreach(f->buf, DNS, C1, q, ql)), V_ACCEPT);
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended[END_ICMP_ERROR], 1);
	/* an error quoting nothing we know is dropped and counted */
	assert_int_equal(inject(f, pb_unreach(f->buf, ROUTER, C1, q, ql)), V_DROP);
	assert_int_equal(drops(f, DROP_ICMP_ERR_NO_SESSION), 1);
	fx_free(f);
}

static void srx_icmp_error_for_tcp_forwarded_session_kept(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, WEB, 40000, 80);
	uint8_t q[128];
	size_t ql = pb_tcp(q, C1, WEB, 40000, 80, PB_ACK, CISN + 1, SISN + 1, 65535, -1, 0);
	assert_int_equal(inject(f, pb_unreach(f->buf, ROUTER, C1, q, ql)), V_ACCEPT);
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void srx_aggressive_ageing_between_watermarks(void **st)
{
	(void)st;
	/* 100 sessions; ageing above 80, until below 50; early-ageout 20 s */
	struct opts o = {.max_sessions = 100,
			 .ageing = "high_watermark = 80; low_watermark = 50; early_ageout = 20;"};
	struct fx *f = fx_new(&o);
	char c[32];
	/* 40 established TCP sessions: 1800 s left, never aged early */
	for (int i = 0; i < 40; i++) {
		snprintf(c, sizeof(c), "10.1.1.%d", i + 1);
		handshake(f, c, WEB, 40000, 80);
	}
	/* 45 UDP sessions: 60 s timeout */
	for (int i = 0; i < 45; i++) {
		snprintf(c, sizeof(c), "10.1.2.%d", i + 1);
		assert_int_equal(udp(f, c, DNS, 1000, 53), V_ACCEPT);
	}
	assert_int_equal(nsess(f), 85);
	/* 30 s later ageing is on (85 > 80) but nobody has < 20 s left */
	advance(f, 30 * 1000);
	assert_true(f->sh.ageing);
	assert_int_equal(nsess(f), 85);
	/* keep 10 UDP sessions young */
	for (int i = 0; i < 10; i++) {
		snprintf(c, sizeof(c), "10.1.2.%d", i + 1);
		assert_int_equal(udp(f, c, DNS, 1000, 53), V_ACCEPT);
	}
	/* at 41 s the 35 others have 19 s left: under early-ageout */
	advance(f, 11 * 1000);
	assert_int_equal(f->sh.st.ageing_on, 1);
	/* the 35 old UDP sessions were aged; TCP and refreshed UDP stay */
	assert_int_equal(f->sh.st.ended[END_AGED], 35);
	assert_int_equal(nsess(f), 50);
	/* 50 is not below the low watermark (50): still active, but nothing
	 * left under early-ageout. One more UDP session ending brings it
	 * below: ageing stops. */
	assert_true(f->sh.ageing);
	snprintf(c, sizeof(c), "10.1.2.%d", 1);
	uint8_t q[128];
	size_t ql = pb_udp(q, c, DNS, 1000, 53, 20);
	assert_int_equal(inject(f, pb_unreach(f->buf, DNS, c, q, ql)), V_ACCEPT);
	advance(f, 200);
	assert_false(f->sh.ageing);
	assert_int_equal(nsess(f), 49);
	fx_free(f);
}

static void srx_table_full_refuses_new_keeps_established(void **st)
{
	(void)st;
	struct opts o = {.max_sessions = 16};
	struct fx *f = fx_new(&o);
	for (int i = 0; i < 16; i++)
		handshake(f, C1, WEB, (uint16_t)(40000 + i), 80);
	assert_int_equal(nsess(f), 16);
	assert_int_equal(tcp(f, C1, WEB, 50000, 80, PB_SYN, CISN, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_TABLE_FULL), 1);
	/* every established session still passes both ways */
	for (int i = 0; i < 16; i++) {
		assert_int_equal(tcp(f, C1, WEB, (uint16_t)(40000 + i), 80, PB_ACK,
				     CISN + 1, SISN + 1, 100), V_ACCEPT);
		assert_int_equal(tcp(f, WEB, C1, 80, (uint16_t)(40000 + i), PB_ACK,
				     SISN + 1, CISN + 101, 100), V_ACCEPT);
	}
	fx_free(f);
}

/* A full table of unreplied sessions (a spoofed SYN or UDP flood): a new
 * flow evicts the oldest unreplied one (Linux conntrack's early drop);
 * replied and established sessions are never evicted. */
static void table_full_evicts_oldest_unreplied_never_established(void **st)
{
	(void)st;
	struct opts o = {.max_sessions = 16};
	struct fx *f = fx_new(&o);
	for (int i = 0; i < 8; i++)
		handshake(f, C1, WEB, (uint16_t)(40000 + i), 80);
	/* 4 replied UDP flows, then 4 SYNs that no one answers */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(udp(f, C1, DNS, (uint16_t)(30000 + i), 53), V_ACCEPT);
		assert_int_equal(udp(f, DNS, C1, 53, (uint16_t)(30000 + i)), V_ACCEPT);
	}
	for (int i = 0; i < 4; i++) {
		advance(f, 200);
		assert_int_equal(tcp(f, C1, WEB, (uint16_t)(50000 + i), 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	}
	assert_int_equal(nsess(f), 16);
	/* a 17th flow takes the place of the first unanswered SYN */
	assert_int_equal(tcp(f, C1, WEB, 51000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	assert_int_equal(f->sh.st.ended[END_EVICTED], 1);
	assert_int_equal(nsess(f), 16);
	/* the evicted one is gone (its SYN/ACK finds nothing), the others not */
	assert_int_equal(tcp(f, WEB, C1, 80, 50000, PB_SYN | PB_ACK, SISN, CISN + 1, 0), V_DROP);
	assert_int_equal(tcp(f, WEB, C1, 80, 50001, PB_SYN | PB_ACK, SISN, CISN + 1, 0), V_ACCEPT);
	/* four more evict the rest of the unreplied ones ... */
	for (int i = 1; i < 5; i++)
		assert_int_equal(tcp(f, C1, WEB, (uint16_t)(51000 + i), 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	assert_int_equal(f->sh.st.ended[END_EVICTED], 5);
	/* ... then only replied and established sessions remain, and a new
	 * flow is refused */
	for (int i = 0; i < 5; i++) {
		tcp(f, WEB, C1, 80, (uint16_t)(51000 + i), PB_SYN | PB_ACK, SISN, CISN + 1, 0);
		tcp(f, C1, WEB, (uint16_t)(51000 + i), 80, PB_ACK, CISN + 1, SISN + 1, 0);
	}
	tcp(f, C1, WEB, 50001, 80, PB_ACK, CISN + 1, SISN + 1, 0);
	assert_int_equal(tcp(f, C1, WEB, 52000, 80, PB_SYN, CISN, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_TABLE_FULL), 1);
	for (int i = 0; i < 8; i++)
		assert_int_equal(tcp(f, C1, WEB, (uint16_t)(40000 + i), 80, PB_ACK,
				     CISN + 1, SISN + 1, 10), V_ACCEPT);
	for (int i = 0; i < 4; i++)
		assert_int_equal(udp(f, DNS, C1, 53, (uint16_t)(30000 + i)), V_ACCEPT);
	fx_free(f);
}

/* Under a UDP new-flow flood (60 s timeouts) a real SYN (20 s) expires
 * sooner than the flood's entries, yet it is the youngest: eviction goes by
 * how long a session has waited for a reply, so the flood's older entries
 * make room and the SYN lives to see its SYN/ACK (in a full-size table, for
 * as long as the flood takes to renew the whole table). */
static void eviction_spares_a_fresh_syn_under_a_udp_flood(void **st)
{
	(void)st;
	struct opts o = {.max_sessions = 16};
	struct fx *f = fx_new(&o);
	for (int i = 0; i < 16; i++) {
		advance(f, 100);
		assert_int_equal(udp(f, C1, DNS, (uint16_t)(30000 + i), 53), V_ACCEPT);
	}
	assert_int_equal(tcp(f, C1, WEB, 50000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	/* the flood goes on: 14 more flows evict the 14 oldest of its own */
	for (int i = 16; i < 30; i++) {
		clock_advance_ms(1);
		assert_int_equal(udp(f, C1, DNS, (uint16_t)(30000 + i), 53), V_ACCEPT);
	}
	assert_int_equal(f->sh.st.ended[END_EVICTED], 15);
	assert_int_equal(tcp(f, WEB, C1, 80, 50000, PB_SYN | PB_ACK, SISN, CISN + 1, 0), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_TCP_SYN_RECV);
	fx_free(f);
}

/* ---- Palo Alto half-close --------------------------------------------- */

static void paloalto_fin_moves_session_to_tcp_wait_30s(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	struct sess *s = handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_FIN | PB_ACK, SISN + 1, CISN + 1, 0), V_ACCEPT);
	assert_int_equal(s->state, SS_TCP_WAIT);
	/* the other half still carries data */
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_ACK, CISN + 1, SISN + 2, 500), V_ACCEPT);
	/* but the side that closed may not send data any more */
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_ACK, SISN + 2, CISN + 501, 100), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_STATE), 1);
	advance(f, 29 * 1000);
	assert_int_equal(nsess(f), 1);
	advance(f, 2 * 1000);
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended_state[PC_TCP][SS_TCP_WAIT], 1);
	fx_free(f);
}

static void paloalto_data_after_tcp_wait_expiry_dropped(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_FIN | PB_ACK, CISN + 1, SISN + 1, 0), V_ACCEPT);
	advance(f, 31 * 1000);
	assert_int_equal(nsess(f), 0);
	/* the server's data: no session, and no rule lets untrust in */
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_ACK, SISN + 1, CISN + 2, 200), V_DROP);
	assert_int_equal(drops(f, DROP_NO_RULE), 1);
	/* the client's ACK matches the rule but cannot open a session */
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_ACK, CISN + 2, SISN + 201, 0), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_NOT_SYN), 1);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

/* ---- Forcepoint connection tracking ----------------------------------- */

static void forcepoint_off_is_stateless_replies_must_match_a_rule(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(udp(f, C1, STATELESS, 4000, 5000), V_ACCEPT);
	assert_int_equal(nsess(f), 0);
	assert_string_equal(f->res.rule->name, "stateless");
	/* the reply is accepted by its own rule, not by a session */
	assert_int_equal(udp(f, STATELESS, C1, 5000, 4000), V_ACCEPT);
	assert_string_equal(f->res.rule->name, "stateless-return");
	assert_int_equal(f->sh.st.stateless[PC_UDP], 2);
	/* a port outside the rule is refused, even "in reply" */
	assert_int_equal(udp(f, C1, STATELESS, 4000, 6000), V_DROP);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void forcepoint_loose_picks_up_midstream_tcp_and_icmp_reply(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	/* mid-stream ACK with data: loose creates the session */
	assert_int_equal(tcp(f, C1, LOOSE, 40000, 80, PB_ACK, 123456, 654321, 100), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_TCP_ESTABLISHED);
	assert_true(f->res.sess->flags & SF_MIDSTREAM);
	assert_false(f->res.sess->flags & SF_EVERY_SEEN);
	assert_int_equal(tcp(f, LOOSE, C1, 80, 40000, PB_ACK, 654321, 123556, 0), V_ACCEPT);
	/* echo reply without a request is accepted, not marked valid */
	assert_int_equal(inject(f, pb_echo(f->buf, C1, LOOSE, 1, 9, 1)), V_ACCEPT);
	assert_false(f->res.sess->flags & SF_VALID_START);
	fx_free(f);
}

static void forcepoint_normal_requires_syn(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_ACK, 123456, 654321, 100), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_NOT_SYN), 1);
	assert_int_equal(nsess(f), 0);
	/* normal checks the window too: a segment far beyond it is dropped */
	handshake(f, C1, WEB, 40001, 80);
	assert_int_equal(tcp(f, C1, WEB, 40001, 80, PB_ACK, CISN + 100000000u, SISN + 1, 10), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_WINDOW), 1);
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void forcepoint_strict_checks_windows_and_every_packet_seen(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	struct sess *s = handshake(f, C1, STRICT, 40000, 80);
	assert_true(s->flags & SF_EVERY_SEEN);
	assert_int_equal(tcp(f, C1, STRICT, 40000, 80, PB_ACK, CISN + 1, SISN + 1, 100), V_ACCEPT);
	/* a segment past the window is dropped */
	assert_int_equal(tcp(f, C1, STRICT, 40000, 80, PB_ACK, CISN + 100000000u, SISN + 1, 10), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_WINDOW), 1);
	/* an ACK for data the server never sent is dropped */
	assert_int_equal(tcp(f, C1, STRICT, 40000, 80, PB_ACK, CISN + 101, SISN + 90000, 0), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_WINDOW), 2);
	/* a retransmission is fine, and the session saw every packet */
	assert_int_equal(tcp(f, C1, STRICT, 40000, 80, PB_ACK, CISN + 1, SISN + 1, 100), V_ACCEPT);
	assert_true(s->flags & SF_EVERY_SEEN);
	/* a gap (a segment the firewall never saw, or reordered) passes in
	 * the window, but the session no longer saw every packet */
	assert_int_equal(tcp(f, C1, STRICT, 40000, 80, PB_ACK, CISN + 201, SISN + 1, 100), V_ACCEPT);
	assert_false(s->flags & SF_EVERY_SEEN);
	/* mid-stream pickup is impossible in strict mode */
	assert_int_equal(tcp(f, C1, STRICT, 40001, 80, PB_ACK, 5, 5, 10), V_DROP);
	fx_free(f);
}

static void forcepoint_strict_icmp_must_begin_with_request(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(inject(f, pb_echo(f->buf, C1, STRICT, 1, 9, 1)), V_DROP);
	assert_int_equal(drops(f, DROP_ICMP_NO_REQUEST), 1);
	assert_int_equal(inject(f, pb_echo(f->buf, C1, STRICT, 0, 9, 1)), V_ACCEPT);
	assert_true(f->res.sess->flags & SF_VALID_START);
	assert_int_equal(inject(f, pb_echo(f->buf, STRICT, C1, 1, 9, 1)), V_ACCEPT);
	fx_free(f);
}

static void forcepoint_rule_idle_timeout_overrides_protocol_default(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(udp(f, C1, SHORTUDP, 1000, 9000), V_ACCEPT); /* 10 s */
	assert_int_equal(udp(f, C1, DNS, 1000, 53), V_ACCEPT);        /* 60 s */
	advance(f, 11 * 1000);
	assert_int_equal(nsess(f), 1);
	/* ssh-ka: tcp established 3600 s instead of 1800 s */
	handshake(f, C1, KA, 40000, 22);
	advance(f, 1900 * 1000);
	assert_int_equal(nsess(f), 1);
	advance(f, 1701 * 1000);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void forcepoint_per_source_and_destination_limits(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tcp(f, C1, LIMITED, (uint16_t)(41000 + i), 8080, PB_SYN, 1, 0, 0), V_ACCEPT);
	assert_int_equal(tcp(f, C1, LIMITED, 41003, 8080, PB_SYN, 1, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_LIMIT_SRC), 1);
	/* another source still gets in, up to 5 at the destination */
	assert_int_equal(tcp(f, C2, LIMITED, 41000, 8080, PB_SYN, 1, 0, 0), V_ACCEPT);
	assert_int_equal(tcp(f, C2, LIMITED, 41001, 8080, PB_SYN, 1, 0, 0), V_ACCEPT);
	assert_int_equal(tcp(f, "10.1.0.4", LIMITED, 41000, 8080, PB_SYN, 1, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_LIMIT_DST), 1);
	/* a session that ends gives its unit back */
	assert_int_equal(tcp(f, C1, LIMITED, 41000, 8080, PB_RST, 2, 0, 0), V_ACCEPT);
	assert_int_equal(tcp(f, "10.1.0.4", LIMITED, 41000, 8080, PB_SYN, 1, 0, 0), V_ACCEPT);
	/* expiry gives units back too */
	advance(f, 21 * 1000);
	assert_int_equal(nsess(f), 0);
	uint8_t a[16] = {10, 1, 0, 2};
	assert_int_equal(connlimit_held(f->lim, f->cfg->rules[8].index, LIMIT_SIDE_SRC, a), 0);
	fx_free(f);
}

/* ---- Symantec SEP ----------------------------------------------------- */

static void sep_timeouts_validated_against_ranges(void **st)
{
	(void)st;
	static const char *bad[] = {
		"timeouts = { tcp_established = 59; };",
		"timeouts = { udp = 3; };",
		"timeouts = { udp = \"sixty\"; };",
		"timeouts = { tcp_wait = 0; };",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512], err[512] = "";
		snprintf(text, sizeof(text),
			 "node = { name = \"t\"; id = 1; };\n%s\n"
			 "zones = ( { name = \"a\"; } );\n"
			 "rules = ( { name = \"r\"; action = \"accept\"; } );\n",
			 bad[i]);
		struct tandem_config *c = NULL;
		assert_true(config_load_string(text, &c, err, sizeof(err)) < 0);
		assert_null(c);
		assert_non_null(strstr(err, "<string>:2: timeouts."));
	}
}

static void sep_rst_clears_session(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_RST, CISN + 1, 0, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

/* ---- SunScreen tcp_keepalive -------------------------------------------- */

static uint64_t probe_at[32];
static unsigned n_probes;
static uint8_t last_probe[128];
static size_t last_probe_len;

static int record_probe(void *arg, const struct sess *s)
{
	(void)arg;
	const uint8_t *dst;
	if (n_probes < 32)
		probe_at[n_probes] = clock_now_ms();
	n_probes++;
	last_probe_len = ka_probe_build(s, last_probe, sizeof(last_probe), &dst);
	return 0;
}

/* Move the clock in 100 ms steps, as a worker's ticks do. */
static void advance_ticking(struct fx *f, uint64_t ms)
{
	for (uint64_t t = 0; t < ms; t += 100)
		advance(f, 100);
}

static struct fx *ka_fx(void)
{
	struct fx *f = fx_new(NULL);
	f->sh.probe = record_probe;
	n_probes = 0;
	return f;
}

/* One keepalive rule (10.1/16 -> 10.2/16) with the given keepalive
 * settings and idle timeout, probes recorded. */
static struct fx *ka_rule_fx(const char *keepalive, unsigned idle)
{
	char text[1024], err[512];
	snprintf(text, sizeof(text),
		 "node = { name = \"t\"; id = 1; };\n"
		 "keepalive = { %s };\n"
		 "zones = ( { name = \"a\"; networks = [\"10.1.0.0/16\"]; },"
		 "          { name = \"b\"; networks = [\"10.2.0.0/16\"]; } );\n"
		 "rules = ( { name = \"r\"; action = \"accept\"; keepalive = true; idle_timeout = %u; } );\n",
		 keepalive, idle);
	struct fx *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	if (config_load_string(text, &g->cfg, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	assert_int_equal(policy_compile(g->cfg, &g->pol, err, sizeof(err)), 0);
	assert_int_equal(connlimit_new(64, &g->lim), 0);
	node_ctx_init(&g->ctx, g->cfg, g->pol, g->lim, false);
	assert_int_equal(shard_init(&g->sh, 0, 64, &g->ctx, clock_now_ms()), 0);
	g->sh.probe = record_probe;
	n_probes = 0;
	return g;
}

static void sunscreen_keepalive_probes_at_offsets_then_expiry(void **st)
{
	(void)st;
	struct fx *f = ka_fx();
	struct sess *s = handshake(f, C1, KA, 40000, 22); /* idle timeout 3600 s */
	assert_true(s->flags & SF_KEEPALIVE);
	uint64_t t_est = clock_now_ms();
	advance_ticking(f, 3601 * 1000);
	/* 900, 880, 860, 820, 740, 580, 260 s before expiry */
	static const unsigned off[] = {900, 880, 860, 820, 740, 580, 260};
	assert_int_equal(n_probes, 7);
	for (int i = 0; i < 7; i++) {
		int64_t want = (int64_t)(t_est + (3600 - off[i]) * 1000u);
		int64_t late = (int64_t)probe_at[i] - want;
		if (late < 0 || late > 300)
			fail_msg("probe %d at %lld ms, scheduled %lld", i,
				 (long long)probe_at[i], (long long)want);
	}
	assert_int_equal(f->sh.st.ka_probes, 7);
	/* nobody answered: the session expired as usual */
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended[END_EXPIRED], 1);
	/* the probe: from the server to the client, seq one below what the
	 * client expects, acking everything the client sent */
	struct pkt p;
	assert_int_equal(pkt_parse(&p, last_probe, (uint32_t)last_probe_len), DROP_NONE);
	assert_int_equal(p.sport, 22);
	assert_int_equal(p.dport, 40000);
	assert_int_equal(p.tcp_flags, PKT_TCP_ACK);
	assert_int_equal(p.tcp_seq, SISN + 1 - 1);
	assert_int_equal(p.tcp_ack, CISN + 1);
	assert_int_equal(p.src[3], 13);
	assert_int_equal(p.dst[3], 2);
	fx_free(f);
}

static void sunscreen_keepalive_ack_rejuvenates_session(void **st)
{
	(void)st;
	struct fx *f = ka_fx();
	handshake(f, C1, KA, 40000, 22);
	advance_ticking(f, 2701 * 1000);
	assert_int_equal(n_probes, 1);
	/* the client's keepalive answer: an ordinary ACK of the session */
	assert_int_equal(tcp(f, C1, KA, 40000, 22, PB_ACK, CISN + 1, SISN + 1, 0), V_ACCEPT);
	assert_int_equal(f->sh.st.ka_rejuvenated, 1);
	/* full timeout again: the next probe comes 2700 s later */
	advance_ticking(f, 2600 * 1000);
	assert_int_equal(n_probes, 1);
	advance_ticking(f, 110 * 1000);
	assert_int_equal(n_probes, 2);
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void sunscreen_keepalive_rst_discards_session(void **st)
{
	(void)st;
	struct fx *f = ka_fx();
	handshake(f, C1, KA, 40000, 22);
	advance_ticking(f, 2701 * 1000);
	assert_int_equal(n_probes, 1);
	/* the client host lost the connection: it answers the probe with an
	 * RST whose sequence is the probe's ack (RFC 793), CISN + 1 */
	assert_int_equal(tcp(f, C1, KA, 40000, 22, PB_RST, CISN + 1, 0, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ka_rst, 1);
	fx_free(f);
}

static void sunscreen_keepalive_only_offsets_that_fit_the_timeout(void **st)
{
	(void)st;
	/* a rule without keepalive: no probes at all */
	struct fx *f = ka_fx();
	handshake(f, C1, WEB, 40000, 80);
	advance_ticking(f, 1801 * 1000);
	assert_int_equal(n_probes, 0);
	fx_free(f);
	/* a 600 s idle timeout: only 580 and 260 fit */
	struct fx *g = ka_rule_fx("max_lifetime = 0;", 600);
	handshake(g, C1, KA, 40000, 22);
	uint64_t t_est = clock_now_ms();
	advance_ticking(g, 601 * 1000);
	assert_int_equal(n_probes, 2);
	assert_true(probe_at[0] >= t_est + 20 * 1000 && probe_at[0] <= t_est + 20 * 1000 + 300);
	assert_true(probe_at[1] >= t_est + 340 * 1000 && probe_at[1] <= t_est + 340 * 1000 + 300);
	fx_free(g);
}

static void sunscreen_keepalive_max_lifetime(void **st)
{
	(void)st;
	/* idle 600 s: probes would go at 20 s and 340 s of idleness; with a
	 * 300 s lifetime only the first is sent, then the session expires */
	struct fx *g = ka_rule_fx("max_lifetime = 300;", 600);
	handshake(g, C1, KA, 40000, 22);
	advance_ticking(g, 601 * 1000);
	assert_int_equal(n_probes, 1);
	assert_int_equal(nsess(g), 0);
	fx_free(g);
}

static void sunscreen_keepalive_short_timeout_first_probe_on_time(void **st)
{
	(void)st;
	/* idle 20 s, offsets 15/10/5: the first probe is due 5 s after the
	 * handshake, before any expiry visit would reach the session */
	struct fx *g = ka_rule_fx("offsets = [15, 10, 5]; max_lifetime = 0;", 20);
	handshake(g, C1, KA, 40000, 22);
	uint64_t t_est = clock_now_ms();
	advance_ticking(g, 21 * 1000);
	assert_int_equal(n_probes, 3);
	for (int i = 0; i < 3; i++)
		assert_true(probe_at[i] >= t_est + (5 + 5u * i) * 1000 &&
			    probe_at[i] <= t_est + (5 + 5u * i) * 1000 + 300);
	assert_int_equal(nsess(g), 0);
	fx_free(g);
}

/* ---- the usual TCP cases ---------------------------------------------- */

static void tcp_fin_both_directions_then_time_wait(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	struct sess *s = handshake(f, C1, WEB, 40000, 80);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_FIN | PB_ACK, CISN + 1, SISN + 1, 0), V_ACCEPT);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_FIN | PB_ACK, SISN + 1, CISN + 2, 0), V_ACCEPT);
	assert_int_equal(s->state, SS_TCP_TIME_WAIT);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_ACK, CISN + 2, SISN + 2, 0), V_ACCEPT);
	advance(f, 14 * 1000);
	assert_int_equal(nsess(f), 1);
	advance(f, 2 * 1000); /* time-wait 15 s */
	assert_int_equal(nsess(f), 0);
	assert_int_equal(f->sh.st.ended_state[PC_TCP][SS_TCP_TIME_WAIT], 1);
	fx_free(f);
}

static void tcp_syn_in_time_wait_reopens(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, WEB, 40000, 80);
	tcp(f, C1, WEB, 40000, 80, PB_FIN | PB_ACK, CISN + 1, SISN + 1, 0);
	tcp(f, WEB, C1, 80, 40000, PB_FIN | PB_ACK, SISN + 1, CISN + 2, 0);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, 900000, 0, 0), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_TCP_SYN_SENT);
	assert_int_equal(f->sh.st.ended[END_REOPEN], 1);
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void tcp_simultaneous_open(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_SYN, SISN, 0, 0), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_TCP_SYN_RECV);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN | PB_ACK, CISN, SISN + 1, 0), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_TCP_ESTABLISHED);
	assert_int_equal(tcp(f, WEB, C1, 80, 40000, PB_SYN | PB_ACK, SISN, CISN + 1, 0), V_ACCEPT);
	assert_int_equal(f->res.sess->state, SS_TCP_ESTABLISHED);
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void tcp_retransmitted_syn_keeps_one_session(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, CISN, 0, 0), V_ACCEPT);
	assert_int_equal(nsess(f), 1);
	assert_int_equal(f->res.sess->pkts[0], 3);
	assert_int_equal(f->sh.st.created[PC_TCP], 1);
	fx_free(f);
}

static void tcp_syn_to_established_session_passes_unchanged(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	struct sess *s = handshake(f, C1, WEB, 40000, 80);
	uint64_t id = s->id;
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN, 777777, 0, 0), V_ACCEPT);
	assert_int_equal(s->state, SS_TCP_ESTABLISHED);
	assert_int_equal(s->id, id);
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void tcp_rst_out_of_window_dropped_in_strict(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C1, STRICT, 40000, 80);
	assert_int_equal(tcp(f, C1, STRICT, 40000, 80, PB_RST, CISN - 200000u, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_RST_WINDOW), 1);
	assert_int_equal(nsess(f), 1);
	fx_free(f);
}

static void tcp_invalid_flags_counted(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(tcp(f, C1, WEB, 40000, 80, PB_SYN | PB_FIN, CISN, 0, 0), V_DROP);
	assert_int_equal(drops(f, DROP_TCP_FLAGS), 1);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void reject_and_drop_rules(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(tcp(f, C1, WEB, 40000, 23, PB_SYN, CISN, 0, 0), V_REJECT);
	assert_int_equal(drops(f, DROP_RULE_REJECT), 1);
	assert_int_equal(udp(f, C1, "10.2.0.99", 1, 2), V_DROP);
	assert_int_equal(drops(f, DROP_RULE_DROP), 1);
	assert_int_equal(nsess(f), 0);
	fx_free(f);
}

static void ipv6_tcp_and_icmpv6_sessions(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	handshake(f, C6, WEB6, 40000, 443);
	assert_int_equal(inject(f, pb_echo(f->buf, C6, WEB6, 0, 5, 1)), V_ACCEPT);
	assert_int_equal(inject(f, pb_echo(f->buf, WEB6, C6, 1, 5, 1)), V_ACCEPT);
	assert_int_equal(nsess(f), 2);
	fx_free(f);
}

static void unknown_zone_counted(void **st)
{
	(void)st;
	struct fx *f = fx_new(NULL);
	assert_int_equal(udp(f, "192.0.2.1", DNS, 1, 53), V_DROP);
	assert_int_equal(drops(f, DROP_NO_ZONE), 1);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(srx_first_packet_creates_session_reverse_flow_matches),
		cmocka_unit_test(srx_tcp_established_timeout_1800s),
		cmocka_unit_test(srx_udp_timeout_60s),
		cmocka_unit_test(srx_icmp_and_other_protocol_timeouts),
		cmocka_unit_test(srx_tcp_initial_timeout_restarted_by_handshake_packets),
		cmocka_unit_test(srx_tcp_initial_timeout_removes_incomplete_handshake),
		cmocka_unit_test(srx_tcp_initial_timeout_minimum_4s),
		cmocka_unit_test(srx_rst_invalidate_session_default_on),
		cmocka_unit_test(srx_rst_invalidate_off_keeps_closed_state_briefly),
		cmocka_unit_test(srx_rst_must_fall_in_window_in_strict_mode),
		cmocka_unit_test(srx_fin_invalidate_session_off_by_default),
		cmocka_unit_test(srx_fin_invalidate_session_on_ends_at_first_fin),
		cmocka_unit_test(srx_icmp_error_ends_udp_session),
		cmocka_unit_test(srx_icmp_error_for_tcp_forwarded_session_kept),
		cmocka_unit_test(srx_aggressive_ageing_between_watermarks),
		cmocka_unit_test(srx_table_full_refuses_new_keeps_established),
		cmocka_unit_test(table_full_evicts_oldest_unreplied_never_established),
		cmocka_unit_test(eviction_spares_a_fresh_syn_under_a_udp_flood),
		cmocka_unit_test(paloalto_fin_moves_session_to_tcp_wait_30s),
		cmocka_unit_test(paloalto_data_after_tcp_wait_expiry_dropped),
		cmocka_unit_test(forcepoint_off_is_stateless_replies_must_match_a_rule),
		cmocka_unit_test(forcepoint_loose_picks_up_midstream_tcp_and_icmp_reply),
		cmocka_unit_test(forcepoint_normal_requires_syn),
		cmocka_unit_test(forcepoint_strict_checks_windows_and_every_packet_seen),
		cmocka_unit_test(forcepoint_strict_icmp_must_begin_with_request),
		cmocka_unit_test(forcepoint_rule_idle_timeout_overrides_protocol_default),
		cmocka_unit_test(forcepoint_per_source_and_destination_limits),
		cmocka_unit_test(sep_timeouts_validated_against_ranges),
		cmocka_unit_test(sep_rst_clears_session),
		cmocka_unit_test(sunscreen_keepalive_probes_at_offsets_then_expiry),
		cmocka_unit_test(sunscreen_keepalive_ack_rejuvenates_session),
		cmocka_unit_test(sunscreen_keepalive_rst_discards_session),
		cmocka_unit_test(sunscreen_keepalive_only_offsets_that_fit_the_timeout),
		cmocka_unit_test(sunscreen_keepalive_max_lifetime),
		cmocka_unit_test(sunscreen_keepalive_short_timeout_first_probe_on_time),
		cmocka_unit_test(tcp_fin_both_directions_then_time_wait),
		cmocka_unit_test(tcp_syn_in_time_wait_reopens),
		cmocka_unit_test(tcp_simultaneous_open),
		cmocka_unit_test(tcp_retransmitted_syn_keeps_one_session),
		cmocka_unit_test(tcp_syn_to_established_session_passes_unchanged),
		cmocka_unit_test(tcp_rst_out_of_window_dropped_in_strict),
		cmocka_unit_test(tcp_invalid_flags_counted),
		cmocka_unit_test(reject_and_drop_rules),
		cmocka_unit_test(ipv6_tcp_and_icmpv6_sessions),
		cmocka_unit_test(unknown_zone_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
