/*
 * test_render.c - node replies as protocol lines: session records (src/dst
 * are initiator/responder whichever key side opened, IPv6 in brackets, ICMP
 * id, protocols without ports, origin), `show session` fields, push records,
 * Prometheus families (one HELP/TYPE each, escaped labels, node down), and
 * piecewise rendering giving the same text as one go. Also wire.c: filters
 * and states.
 *
 * Must never: use the network (replies are built by hand).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "wire.h"

struct sess_fixture {
	Tandem__Session s;
	Tandem__SessionKey k;
	uint8_t a0[16], a1[16];
};

/* A session a0:p0 <-> a1:p1 (a0 sorts lower), initiator side init_side. */
static void mk(struct sess_fixture *x, int family, unsigned proto,
	       const char *a0, unsigned p0, const char *a1, unsigned p1,
	       unsigned init_side)
{
	Tandem__Session s = TANDEM__SESSION__INIT;
	Tandem__SessionKey k = TANDEM__SESSION_KEY__INIT;

	memset(x, 0, sizeof(*x));
	x->s = s;
	x->k = k;
	inet_pton(family == 4 ? AF_INET : AF_INET6, a0, x->a0);
	inet_pton(family == 4 ? AF_INET : AF_INET6, a1, x->a1);
	x->k.family = (uint32_t)family;
	x->k.proto = proto;
	x->k.addr0.data = x->a0;
	x->k.addr0.len = 16;
	x->k.addr1.data = x->a1;
	x->k.addr1.len = 16;
	x->k.port0 = p0;
	x->k.port1 = p1;
	x->k.zone = 1 << 8 | 2;
	x->s.key = &x->k;
	x->s.id = 281474976710657ull;
	x->s.state = TANDEM__SESSION_STATE__SS_TCP_ESTABLISHED;
	x->s.flags = init_side ? WIRE_SF_INIT_SIDE1 : 0;
	x->s.rule_name = (char *)"web";
	x->s.pkts0 = 12;
	x->s.pkts1 = 10;
	x->s.bytes0 = 1100;
	x->s.bytes1 = 9000;
	x->s.remaining_ms = 1793001;
}

static char *render1(const Tandem__Session *s, bool full)
{
	struct rec_buf b;
	size_t n;

	rec_buf_init(&b);
	render_session(&b, s, full);
	assert_int_equal(b.err, 0);
	return rec_buf_take(&b, &n);
}

static void test_session_record_initiator_side0(void **state)
{
	struct sess_fixture x;

	(void)state;
	mk(&x, 4, 6, "10.1.0.2", 40312, "10.2.0.2", 80, 0);
	char *t = render1(&x.s, false);
	assert_string_equal(t, "session id=281474976710657 proto=tcp src=10.1.0.2:40312 "
			    "dst=10.2.0.2:80 state=established expires=1794 pkts=12/10 "
			    "bytes=1100/9000 rule=web origin=local\n");
	free(t);
}

static void test_session_record_initiator_side1_swaps(void **state)
{
	struct sess_fixture x;

	(void)state;
	/* The server sorts lower: it is side 0, the client (initiator) side 1. */
	mk(&x, 4, 6, "10.0.0.1", 443, "10.9.0.7", 51000, 1);
	char *t = render1(&x.s, false);
	assert_non_null(strstr(t, " src=10.9.0.7:51000 dst=10.0.0.1:443 "));
	free(t);
}

static void test_session_record_ipv6_icmp_other_peer(void **state)
{
	struct sess_fixture x;
	char *t;

	(void)state;
	mk(&x, 6, 17, "fd00:1::2", 5353, "fd00:2::53", 53, 0);
	x.s.flags |= WIRE_SF_PEER;
	x.s.state = TANDEM__SESSION_STATE__SS_UDP_REPLIED;
	t = render1(&x.s, false);
	assert_non_null(strstr(t, " proto=udp src=[fd00:1::2]:5353 dst=[fd00:2::53]:53 state=udp-replied "));
	assert_non_null(strstr(t, " origin=peer\n"));
	free(t);

	mk(&x, 4, 1, "10.1.0.2", 77, "10.2.0.2", 77, 0);
	x.s.state = TANDEM__SESSION_STATE__SS_ICMP;
	t = render1(&x.s, false);
	assert_non_null(strstr(t, " proto=icmp src=10.1.0.2 dst=10.2.0.2 icmp_id=77 state=icmp "));
	free(t);

	mk(&x, 4, 47, "10.1.0.2", 0, "10.2.0.2", 0, 0);
	x.s.rule_name = NULL;
	x.s.rule = 4;
	x.s.state = 99; /* unknown on the wire */
	t = render1(&x.s, false);
	assert_non_null(strstr(t, " proto=gre src=10.1.0.2 dst=10.2.0.2 state=unknown "));
	assert_non_null(strstr(t, " rule=#4 "));
	free(t);
}

static void test_session_record_bad_address_length(void **state)
{
	struct sess_fixture x;

	(void)state;
	mk(&x, 6, 6, "::1", 1, "::2", 2, 0);
	x.k.addr1.len = 4; /* too short for IPv6: shown, never read past */
	char *t = render1(&x.s, false);
	assert_non_null(strstr(t, " dst=[?]:2 "));
	free(t);
}

static void test_show_session_has_every_field(void **state)
{
	struct sess_fixture x;
	Tandem__TcpDir t0 = TANDEM__TCP_DIR__INIT, t1 = TANDEM__TCP_DIR__INIT;

	(void)state;
	mk(&x, 4, 6, "10.1.0.2", 40312, "10.2.0.2", 80, 0);
	x.s.flags |= 0x02 | 0x04;
	x.s.mode = 3;
	x.s.iface0 = (char *)"veth-c";
	x.s.iface1 = (char *)"veth-s";
	x.s.has_age_s = x.s.has_shard = x.s.has_timeout_s = x.s.has_wscale = 1;
	x.s.age_s = 7;
	x.s.shard = 1;
	x.s.timeout_s = 1800;
	x.s.wscale = 0x72;
	x.s.has_ka_next = 1;
	x.s.ka_next = 2;
	t0.end = 1;
	t0.maxend = 2;
	t0.maxwin = 3;
	t1.end = 4;
	t1.maxend = 5;
	t1.maxwin = 6;
	x.s.tcp0 = &t0;
	x.s.tcp1 = &t1;
	char *t = render1(&x.s, true);
	static const char *const want[] = {
		" family=4 ", " zones=1/2 ", " iface_orig=veth-c ", " iface_reply=veth-s ",
		" rule_index=0 ", " mode=strict ", " flags=every-seen,valid-start ",
		" flags_raw=0x06 ", " expires_ms=1793001 ", " timeout=1800 ", " age=7 ",
		" shard=1 ", " wscale=2/7 ", " tcp_orig_end=1 ", " tcp_orig_maxend=2 ",
		" tcp_orig_maxwin=3 ", " tcp_reply_end=4 ", " tcp_reply_maxend=5 ",
		" tcp_reply_maxwin=6 ", " keepalive_next=2\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(t, want[i]))
			fail_msg("missing '%s' in %s", want[i], t);
	free(t);
}

static void test_push_record(void **state)
{
	Tandem__PushResult p = TANDEM__PUSH_RESULT__INIT;
	Tandem__Counter c1 = TANDEM__COUNTER__INIT, c2 = TANDEM__COUNTER__INIT;
	Tandem__Counter *cs[] = {&c1, &c2};
	struct rec_buf b;

	(void)state;
	c1.name = (char *)"no-rule";
	c1.value = 3;
	c2.name = (char *)"strict ICMP";
	c2.value = 1;
	p.hash_old = (char *)"aa";
	p.hash_new = (char *)"bb";
	p.kept = 10;
	p.n_ended = 2;
	p.ended = cs;
	p.dry_run = 1;
	p.elapsed_ms = 12;
	rec_buf_init(&b);
	render_push(&b, &p);
	assert_string_equal(b.p, "push hash_old=aa hash_new=bb kept=10 ended_no_rule=3 "
			    "ended_strict_icmp=1 ended=4 flushed=no dry_run=yes elapsed_ms=12\n");
	rec_buf_free(&b);
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_metrics_families_once_each(void **state)
{
	Tandem__Status st = TANDEM__STATUS__INIT;
	Tandem__CtlReply stats = TANDEM__CTL_REPLY__INIT;
	Tandem__Counter c[6];
	Tandem__Counter *cp[6];
	static const char *const names[6] = {"verdict.accept", "drop.no-rule",
		"verdict.drop", "sessions.established", "ageing.active", "weird name"};
	struct render_counter mg[] = {{"auth-failed", 2}};
	struct rec_buf b;

	(void)state;
	for (int i = 0; i < 6; i++) {
		Tandem__Counter z = TANDEM__COUNTER__INIT;
		c[i] = z;
		c[i].name = (char *)names[i];
		c[i].value = (uint64_t)i + 1;
		cp[i] = &c[i];
	}
	stats.n_counters = 6;
	stats.counters = cp;
	st.node_name = (char *)"fw\"1";
	st.sessions = 12;
	st.capacity = 100;
	rec_buf_init(&b);
	render_metrics(&b, &st, &stats, 0, NULL, mg, 1);
	assert_int_equal(b.err, 0);
	const char *t = b.p;
	assert_int_equal(count(t, "# TYPE tandem_verdicts_total counter\n"), 1);
	assert_non_null(strstr(t, "tandem_verdicts_total{verdict=\"accept\"} 1\n"));
	assert_non_null(strstr(t, "tandem_verdicts_total{verdict=\"drop\"} 3\n"));
	/* Lines of one family are together (exposition format rule). */
	assert_true(strstr(t, "verdict=\"drop\"") - strstr(t, "verdict=\"accept\"") <
		    (long)strlen("tandem_verdicts_total{verdict=\"accept\"} 1\n") + 1);
	assert_non_null(strstr(t, "tandem_drops_total{reason=\"no-rule\"} 2\n"));
	assert_non_null(strstr(t, "tandem_sessions{state=\"established\"} 4\n"));
	assert_non_null(strstr(t, "tandem_ageing_active 5\n"));
	assert_non_null(strstr(t, "tandem_table_used 12\n"));
	assert_non_null(strstr(t, "tandem_table_capacity 100\n"));
	assert_non_null(strstr(t, "tandem_up 1\n"));
	assert_non_null(strstr(t, "node=\"fw\\\"1\""));
	assert_non_null(strstr(t, "tandem_node_weird_name 6\n"));
	assert_non_null(strstr(t, "tandem_mgmt_auth_failed 2\n"));
	/* Every line is a comment or `name[{labels}] value`. */
	char *copy = strdup(t);
	for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n"))
		assert_true(l[0] == '#' || strncmp(l, "tandem_", 7) == 0);
	free(copy);
	rec_buf_free(&b);
}

static void test_metrics_node_down(void **state)
{
	struct rec_buf b;

	(void)state;
	rec_buf_init(&b);
	render_metrics(&b, NULL, NULL, 0, NULL, NULL, 0);
	assert_string_equal(b.p, "# HELP tandem_up 1 when tandem-node answered.\n"
			    "# TYPE tandem_up gauge\ntandem_up 0\n");
	rec_buf_free(&b);
}

/* The same text whether rendered in one go or in small pieces. */
static void test_stream_pieces_equal_whole(void **state)
{
	enum { N = 500 };
	struct sess_fixture *x = calloc(N, sizeof(*x));
	Tandem__Session **ps = calloc(N, sizeof(*ps));
	Tandem__CtlReply r = TANDEM__CTL_REPLY__INIT;
	struct render_stream rs;
	struct rec_buf whole, parts;
	int calls = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		mk(&x[i], 4, 6, "10.1.0.2", 40000u + (unsigned)i, "10.2.0.2", 80, 0);
		x[i].s.id = (uint64_t)i + 1;
		ps[i] = &x[i].s;
	}
	r.n_sessions = N;
	r.sessions = ps;
	rec_buf_init(&whole);
	rec_buf_init(&parts);
	render_stream_init(&rs, RENDER_SESSIONS, &r, NULL);
	assert_true(render_stream_more(&rs, &whole, SIZE_MAX));
	render_stream_init(&rs, RENDER_SESSIONS, &r, NULL);
	while (!render_stream_more(&rs, &parts, 1000))
		calls++;
	assert_true(calls > 10);
	assert_int_equal(whole.len, parts.len);
	assert_memory_equal(whole.p, parts.p, whole.len);
	rec_buf_free(&whole);
	rec_buf_free(&parts);
	free(ps);
	free(x);
}

static void test_stream_text_and_records(void **state)
{
	Tandem__CtlReply r = TANDEM__CTL_REPLY__INIT;
	struct render_stream rs;
	struct rec_buf b;

	(void)state;
	r.text = (char *)"a = 1;\n\n.dot \"q\"\nlast";
	rec_buf_init(&b);
	render_stream_init(&rs, RENDER_TEXT, &r, "config");
	while (!render_stream_more(&rs, &b, 1))
		;
	assert_string_equal(b.p, "config line=1 text=\"a = 1;\"\nconfig line=2 text=\"\"\n"
			    "config line=3 text=\".dot \\\"q\\\"\"\nconfig line=4 text=last\n");
	rec_buf_reset(&b);
	r.text = (char *)"rule index=0 name=web\nOK forged status\nERR 500 x\n";
	render_stream_init(&rs, RENDER_RECORDS, &r, "policy");
	while (!render_stream_more(&rs, &b, 1))
		;
	assert_string_equal(b.p, "rule index=0 name=web\n"
			    "policy line=2 text=\"OK forged status\"\n"
			    "policy line=3 text=\"ERR 500 x\"\n");
	rec_buf_reset(&b);
	r.text = NULL;
	render_stream_init(&rs, RENDER_TEXT, &r, "config");
	assert_true(render_stream_more(&rs, &b, 100));
	assert_int_equal(b.len, 0);
	rec_buf_free(&b);
}

static void test_wire_filter_and_states(void **state)
{
	struct filter f = {0};
	Tandem__Filter pf = TANDEM__FILTER__INIT;

	(void)state;
	f.has = FILTER_PROTO | FILTER_DPORT | FILTER_STATE | FILTER_ORIGIN | FILTER_RULE;
	f.proto = 17;
	f.dport = 53;
	f.state = MG_ST_UDP_REPLIED;
	f.origin = ORIGIN_PEER;
	strcpy(f.rule, "dns");
	wire_filter(&f, &pf);
	assert_true(pf.has_proto && pf.proto == 17);
	assert_true(pf.has_dport && pf.dport == 53);
	assert_false(pf.has_sport);
	assert_false(pf.has_src);
	assert_true(pf.has_state && pf.state == TANDEM__SESSION_STATE__SS_UDP_REPLIED);
	assert_true(pf.has_origin && pf.origin == 2);
	assert_string_equal(pf.rule, "dns");
	assert_null(pf.iface);
	for (int s = 0; s <= 10; s++)
		assert_int_equal(wire_state((Tandem__SessionState)s), s);
	assert_int_equal(wire_state((Tandem__SessionState)77), MG_ST_UNKNOWN);
	assert_string_equal(wire_mode_name(1), "loose");
	assert_null(wire_mode_name(9));
	assert_int_equal(wire_status_code(422), 422);
	assert_int_equal(wire_status_code(7), 500);
	char fl[64];
	wire_flags_names(0, fl, sizeof(fl));
	assert_string_equal(fl, "none");
	wire_flags_names(0x109, fl, sizeof(fl));
	assert_string_equal(fl, "init-side1,peer,0x100");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_record_initiator_side0),
		cmocka_unit_test(test_session_record_initiator_side1_swaps),
		cmocka_unit_test(test_session_record_ipv6_icmp_other_peer),
		cmocka_unit_test(test_session_record_bad_address_length),
		cmocka_unit_test(test_show_session_has_every_field),
		cmocka_unit_test(test_push_record),
		cmocka_unit_test(test_metrics_families_once_each),
		cmocka_unit_test(test_metrics_node_down),
		cmocka_unit_test(test_stream_pieces_equal_whole),
		cmocka_unit_test(test_stream_text_and_records),
		cmocka_unit_test(test_wire_filter_and_states),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
