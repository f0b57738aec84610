/*
 * test_sess_wire.c - node/sess_wire.c: a packed Session read in place gives
 * what protobuf-c's unpack followed by the conversion tandem-node used
 * before (ref_from_session, kept here as the reference) gives; missing
 * required fields, wrong wire types, invalid values, every truncation and
 * corrupted bytes are refused without reading past the input (run under
 * the sanitizer build too).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "pbwire.h"
#include "sess_wire.h"

#define NOW 5000000u

static struct tandem_config *gcfg;

static int ref_from_session(const Tandem__Session *w,
			    const struct tandem_config *cfg, uint64_t now_ms,
			    struct peer_rec *out)
{
	const Tandem__SessionKey *k = w->key;
	if (!k || k->addr0.len != 16 || k->addr1.len != 16 ||
	    (k->family != 4 && k->family != 6) || k->proto > 255 ||
	    k->port0 > 65535 || k->port1 > 65535 || k->zone > 65535)
		return -EINVAL;
	int st = sess_state_from_wire(w->state);
	if (st < 0 || w->mode > 3 || w->flags > 255 || w->rule >= cfg->n_rules)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	struct sess *s = &out->s;
	memcpy(s->key.addr[0], k->addr0.data, 16);
	memcpy(s->key.addr[1], k->addr1.data, 16);
	s->key.port[0] = (uint16_t)k->port0;
	s->key.port[1] = (uint16_t)k->port1;
	s->key.zone = (uint16_t)k->zone;
	s->key.proto = (uint8_t)k->proto;
	s->key.family = (uint8_t)k->family;
	s->id = w->id;
	s->state = (uint8_t)st;
	s->flags = (uint8_t)w->flags;
	s->rule = (uint16_t)w->rule;
	s->mode = (uint8_t)w->mode;
	s->pkts[0] = (uint32_t)w->pkts0;
	s->pkts[1] = (uint32_t)w->pkts1;
	s->bytes[0] = w->bytes0;
	s->bytes[1] = w->bytes1;
	s->wscale = w->has_wscale ? (uint8_t)w->wscale : 0;
	s->created = (uint32_t)(now_ms / 1000u) - (w->has_age_s ? w->age_s : 0);
	s->iface[0] = w->iface0 ? config_iface_id(cfg, w->iface0) : 0;
	s->iface[1] = w->iface1 ? config_iface_id(cfg, w->iface1) : 0;
	if (w->tcp0) {
		s->tcp[0].end = w->tcp0->end;
		s->tcp[0].maxend = w->tcp0->maxend;
		s->tcp[0].maxwin = w->tcp0->maxwin;
		if (w->tcp0->has_maxack) {
			s->tcp[0].maxack = w->tcp0->maxack;
			s->tflags |= STF_MAXACK0;
		}
	}
	if (w->tcp1) {
		s->tcp[1].end = w->tcp1->end;
		s->tcp[1].maxend = w->tcp1->maxend;
		s->tcp[1].maxwin = w->tcp1->maxwin;
		if (w->tcp1->has_maxack) {
			s->tcp[1].maxack = w->tcp1->maxack;
			s->tflags |= STF_MAXACK1;
		}
	}
	out->remaining_ms = w->remaining_ms;
	return 0;
}


static int setup(void **state)
{
	(void)state;
	char err[512];
	return config_load_file(SRCDIR "/conf/tandem.conf", &gcfg, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	config_free(gcfg);
	return 0;
}

struct wsess {
	Tandem__Session s;
	Tandem__SessionKey k;
	Tandem__TcpDir t0, t1;
	uint8_t a0[16], a1[16];
};

/* a full session: every optional field set */
static void full(struct wsess *w)
{
	tandem__session__init(&w->s);
	tandem__session_key__init(&w->k);
	tandem__tcp_dir__init(&w->t0);
	tandem__tcp_dir__init(&w->t1);
	for (int i = 0; i < 16; i++) {
		w->a0[i] = (uint8_t)(0x10 + i);
		w->a1[i] = (uint8_t)(0xa0 + i);
	}
	w->k.family = 6;
	w->k.proto = 6;
	w->k.addr0.data = w->a0;
	w->k.addr0.len = 16;
	w->k.addr1.data = w->a1;
	w->k.addr1.len = 16;
	w->k.port0 = 40000;
	w->k.port1 = 443;
	w->k.zone = 0x0102;
	w->s.id = UINT64_C(0x0123456789abcdef);
	w->s.key = &w->k;
	w->s.state = sess_state_to_wire(SS_TCP_ESTABLISHED);
	w->s.flags = 0x41;
	w->s.rule = gcfg->n_rules - 1;
	w->s.rule_name = "web";
	w->s.mode = 2;
	w->s.pkts0 = UINT64_C(0x1ffffffff); /* kept to 32 bits, like the table */
	w->s.pkts1 = 7;
	w->s.bytes0 = UINT64_C(1) << 40;
	w->s.bytes1 = 99;
	w->s.remaining_ms = 1800000;
	w->s.has_age_s = true;
	w->s.age_s = 12;
	w->s.iface0 = "veth-c";
	w->s.iface1 = "no-such-if";
	w->s.has_wscale = true;
	w->s.wscale = 7;
	w->t0.end = 1000;
	w->t0.maxend = 2000;
	w->t0.maxwin = 65535;
	w->t0.has_maxack = true; /* t1 has none: both forms travel */
	w->t0.maxack = 4242;
	w->t1.end = UINT32_MAX;
	w->t1.maxend = 1;
	w->t1.maxwin = 2;
	w->s.tcp0 = &w->t0;
	w->s.tcp1 = &w->t1;
	w->s.has_shard = true;
	w->s.shard = 3;
	w->s.has_timeout_s = true;
	w->s.timeout_s = 1800;
	w->s.has_ka_next = true;
	w->s.ka_next = 1;
}

static size_t pack(const Tandem__Session *s, uint8_t *buf, size_t cap)
{
	size_t n = tandem__session__get_packed_size(s);
	assert_true(n <= cap);
	return tandem__session__pack(s, buf);
}

/* in-place refusals of bytes protobuf-c accepted (see both()) */
static unsigned stricter;

/* both readers on d[0..n): the in-place reader never accepts what protobuf-c
 * refuses, and gives the same record when both accept. It may refuse what
 * protobuf-c lets through: a field number 0 (a tag 0x80 0x00; protobuf-c
 * skips it as an unknown field, the protobuf encoding forbids it), counted
 * in `stricter`. Returns the in-place result. */
static int both(const uint8_t *d, size_t n)
{
	struct peer_rec a, b;
	memset(&a, 0x5a, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	int rb = peer_rec_from_bytes(d, n, gcfg, NOW, &b);
	Tandem__Session *u = tandem__session__unpack(NULL, n, d);
	int ra = u ? ref_from_session(u, gcfg, NOW, &a) : -EPROTO;
	if (u)
		tandem__session__free_unpacked(u, NULL);
	assert_true(rb == 0 || rb == -EINVAL || rb == -EPROTO);
	if (rb == 0) {
		assert_int_equal(ra, 0);
		assert_memory_equal(&a, &b, sizeof(a));
	} else if (ra == 0) {
		assert_int_equal(rb, -EPROTO);
		stricter++;
	}
	return rb;
}

static void full_and_minimal_sessions_read_the_same(void **state)
{
	(void)state;
	struct wsess w;
	uint8_t buf[512];
	full(&w);
	size_t n = pack(&w.s, buf, sizeof(buf));
	assert_int_equal(both(buf, n), 0);
	struct peer_rec r;
	assert_int_equal(peer_rec_from_bytes(buf, n, gcfg, NOW, &r), 0);
	assert_int_equal(r.s.id, w.s.id);
	assert_int_equal(r.s.pkts[0], UINT32_MAX);
	assert_int_equal(r.s.tcp[1].end, UINT32_MAX);
	assert_int_equal(r.s.iface[0], config_iface_id(gcfg, "veth-c"));
	assert_int_not_equal(r.s.iface[0], 0);
	assert_int_equal(r.s.iface[1], 0);
	assert_int_equal(r.s.created, NOW / 1000 - 12);
	assert_int_equal(r.remaining_ms, 1800000);
	/* only the required fields, IPv4, UDP */
	full(&w);
	w.k.family = 4;
	w.k.proto = 17;
	w.s.state = sess_state_to_wire(SS_UDP);
	w.s.rule_name = NULL;
	w.s.has_age_s = w.s.has_wscale = w.s.has_shard = false;
	w.s.has_timeout_s = w.s.has_ka_next = false;
	w.s.iface0 = w.s.iface1 = NULL;
	w.s.tcp0 = w.s.tcp1 = NULL;
	n = pack(&w.s, buf, sizeof(buf));
	assert_int_equal(both(buf, n), 0);
}

static void a_missing_required_field_or_wrong_wire_type_is_refused(void **state)
{
	(void)state;
	struct wsess w;
	uint8_t buf[512];
	full(&w);
	size_t n = pack(&w.s, buf, sizeof(buf));
	static const unsigned req[] = {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12};
	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		struct buf out = {0};
		assert_int_equal(pb_strip_field(buf, n, req[i], &out), 0);
		assert_int_equal(both(out.p, out.len), -EINVAL);
		buf_free(&out);
	}
	/* a key without its zone, a tcp direction without maxwin */
	w.k.zone = 0; /* still sent: proto2 required fields always are */
	n = pack(&w.s, buf, sizeof(buf));
	assert_int_equal(both(buf, n), 0);
	/* flags (field 4) as a length-delimited field */
	uint8_t bad[600];
	size_t m = 0;
	bad[m++] = 4 << 3 | PB_LEN;
	bad[m++] = 1;
	bad[m++] = 0;
	memcpy(bad + m, buf, n);
	m += n;
	/* the varint flags later in buf is the last occurrence: it wins in
	 * protobuf-c only when wire types agree, which they do not here */
	assert_int_equal(both(bad, m), -EPROTO);
	/* the key (field 2) as a varint */
	m = 0;
	memcpy(bad, buf, n);
	m = n;
	bad[m++] = 2 << 3 | PB_VARINT;
	bad[m++] = 1;
	assert_int_equal(both(bad, m), -EPROTO);
}

static void invalid_values_are_refused(void **state)
{
	(void)state;
	uint8_t buf[512];
	for (int c = 0; c < 9; c++) {
		struct wsess w;
		full(&w);
		switch (c) {
		case 0: w.k.family = 5; break;
		case 1: w.k.addr1.len = 15; break;
		case 2: w.k.port0 = 65536; break;
		case 3: w.k.zone = 70000; break;
		case 4: w.k.proto = 256; break;
		case 5: w.s.rule = gcfg->n_rules; break;
		case 6: w.s.state = (Tandem__SessionState)999; break;
		case 7: w.s.mode = 4; break;
		case 8: w.s.flags = 256; break;
		}
		size_t n = pack(&w.s, buf, sizeof(buf));
		assert_int_equal(both(buf, n), -EINVAL);
	}
}

static void every_truncation_and_corruption_is_handled(void **state)
{
	(void)state;
	struct wsess w;
	uint8_t buf[512];
	full(&w);
	size_t n = pack(&w.s, buf, sizeof(buf));
	/* cut after the last required field (remaining_ms, 12) the rest are
	 * optional: such a cut is a valid, shorter session for both readers */
	unsigned accepted = 0;
	for (size_t k = 0; k < n; k++) {
		/* a copy of exactly k bytes, so the sanitizer sees any overread */
		uint8_t *t = malloc(k ? k : 1);
		memcpy(t, buf, k);
		accepted += both(t, k) == 0;
		free(t);
	}
	assert_true(accepted > 0 && accepted < n / 2);
	/* one byte changed at every position, to a few values each */
	static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x12, 0x0a};
	unsigned ok = 0;
	for (size_t k = 0; k < n; k++)
		for (size_t v = 0; v < sizeof(vals); v++) {
			uint8_t *t = malloc(n);
			memcpy(t, buf, n);
			t[k] = vals[v];
			ok += both(t, n) == 0;
			free(t);
		}
	assert_true(ok > 0); /* some changes only alter a value */
	/* the only stricter case a one-byte change makes here: the wscale
	 * tag 0x80 0x01 turned into 0x80 0x00 */
	assert_int_equal(stricter, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_and_minimal_sessions_read_the_same),
		cmocka_unit_test(a_missing_required_field_or_wrong_wire_type_is_refused),
		cmocka_unit_test(invalid_values_are_refused),
		cmocka_unit_test(every_truncation_and_corruption_is_handled),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
