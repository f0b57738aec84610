/*
 * test_wire.c - the hand-written protobuf encodings of common/pbwire.c checked
 * against protobuf-c: events with remaining_ms appended, PeerMsg and
 * SYNC_APPLY requests around them, field stripping, the arena allocator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.pb-c.h"
#include "pbwire.h"

static uint8_t addr0[16] = {10, 1, 0, 2}, addr1[16] = {10, 2, 0, 10};

/* a packed Session with remaining_ms = rem */
static size_t session(uint8_t *out, uint64_t id, uint32_t rem)
{
	Tandem__SessionKey k = TANDEM__SESSION_KEY__INIT;
	k.family = 4;
	k.proto = 6;
	k.addr0.data = addr0;
	k.addr0.len = 16;
	k.addr1.data = addr1;
	k.addr1.len = 16;
	k.port0 = 40312;
	k.port1 = 80;
	k.zone = 0x102;
	Tandem__Session s = TANDEM__SESSION__INIT;
	s.id = id;
	s.key = &k;
	s.state = TANDEM__SESSION_STATE__SS_TCP_ESTABLISHED;
	s.rule_name = "web";
	s.pkts0 = 12;
	s.bytes1 = 9000;
	s.remaining_ms = rem;
	s.has_timeout_s = true;
	s.timeout_s = 1800;
	return tandem__session__pack(&s, out);
}

static void strip_removes_remaining_and_event_puts_it_back(void **state)
{
	(void)state;
	uint8_t p[512];
	size_t n = session(p, 281474976710657ull, 123456);
	struct buf stripped = {0}, b = {0};
	assert_int_equal(pb_strip_field(p, n, PB_SESSION_REMAINING, &stripped), 0);
	assert_true(stripped.len < n);
	/* without field 12 the required field is missing: not a Session */
	assert_null(tandem__session__unpack(NULL, stripped.len, stripped.p));

	assert_int_equal(pb_put_event(&b, 1, TANDEM__SESSION_EVENT__TYPE__REFRESH,
				      stripped.p, stripped.len, 1794000), 0);
	assert_int_equal(b.len, pb_event_size(1, stripped.len, 1794000));
	assert_int_equal(pb_put_event(&b, 1, TANDEM__SESSION_EVENT__TYPE__DELETE,
				      stripped.p, stripped.len, 0), 0);
	Tandem__EventBatch *eb = tandem__event_batch__unpack(NULL, b.len, b.p);
	assert_non_null(eb);
	assert_int_equal(eb->n_events, 2);
	assert_int_equal(eb->events[0]->type, TANDEM__SESSION_EVENT__TYPE__REFRESH);
	assert_int_equal(eb->events[0]->session->id, 281474976710657ull);
	assert_int_equal(eb->events[0]->session->remaining_ms, 1794000);
	assert_int_equal(eb->events[0]->session->key->port0, 40312);
	assert_string_equal(eb->events[0]->session->rule_name, "web");
	assert_int_equal(eb->events[1]->type, TANDEM__SESSION_EVENT__TYPE__DELETE);
	assert_int_equal(eb->events[1]->session->remaining_ms, 0);
	tandem__event_batch__free_unpacked(eb, NULL);
	buf_free(&stripped);
	buf_free(&b);
}

static void peer_msg_and_apply_request_wrap_the_batch(void **state)
{
	(void)state;
	uint8_t p[512];
	size_t n = session(p, 5, 1);
	struct buf s = {0}, batch = {0}, msg = {0}, req = {0};
	assert_int_equal(pb_strip_field(p, n, PB_SESSION_REMAINING, &s), 0);
	for (int i = 0; i < 300; i++)
		pb_put_event(&batch, 1, TANDEM__SESSION_EVENT__TYPE__CREATE, s.p,
			     s.len, (uint32_t)i * 1000);
	/* PeerMsg.events = 1 */
	pb_put_len(&msg, 1, batch.p, batch.len);
	Tandem__PeerMsg *m = tandem__peer_msg__unpack(NULL, msg.len, msg.p);
	assert_non_null(m);
	assert_non_null(m->events);
	assert_int_equal(m->events->n_events, 300);
	assert_int_equal(m->events->events[299]->session->remaining_ms, 299000);
	tandem__peer_msg__free_unpacked(m, NULL);
	/* CtlRequest: seq 1, cmd 2, source 6, events 7 */
	pb_put_varint(&req, 1, 77);
	pb_put_varint(&req, 2, TANDEM__CTL_REQUEST__CMD__SYNC_APPLY);
	pb_put_len(&req, 6, "t", 1);
	pb_put_len(&req, 7, batch.p, batch.len);
	Tandem__CtlRequest *q = tandem__ctl_request__unpack(NULL, req.len, req.p);
	assert_non_null(q);
	assert_int_equal(q->seq, 77);
	assert_int_equal(q->cmd, TANDEM__CTL_REQUEST__CMD__SYNC_APPLY);
	assert_int_equal(q->events->n_events, 300);
	tandem__ctl_request__free_unpacked(q, NULL);
	buf_free(&s);
	buf_free(&batch);
	buf_free(&msg);
	buf_free(&req);
}

static void flags_and_ack_as_peer_msg(void **state)
{
	(void)state;
	uint8_t b[2] = {4 << 3, 1};            /* bulk_begin */
	Tandem__PeerMsg *m = tandem__peer_msg__unpack(NULL, 2, b);
	assert_non_null(m);
	assert_true(m->has_bulk_begin && m->bulk_begin);
	tandem__peer_msg__free_unpacked(m, NULL);
	struct buf a = {0}, o = {0};
	pb_put_varint(&a, 1, UINT64_C(1700000000123456));
	pb_put_len(&o, 3, a.p, a.len);          /* PeerMsg.ack */
	m = tandem__peer_msg__unpack(NULL, o.len, o.p);
	assert_non_null(m);
	assert_int_equal(m->ack->applied_seq, UINT64_C(1700000000123456));
	tandem__peer_msg__free_unpacked(m, NULL);
	buf_free(&a);
	buf_free(&o);
}

static void strip_refuses_malformed_input(void **state)
{
	(void)state;
	struct buf o = {0};
	static const uint8_t bad_len[] = {0x0a, 0x05, 1, 2};       /* LEN past end */
	static const uint8_t bad_varint[] = {0x08, 0xff, 0xff};    /* unfinished */
	static const uint8_t group[] = {0x0b, 0x0c};               /* groups */
	assert_int_equal(pb_strip_field(bad_len, sizeof(bad_len), 12, &o), -EPROTO);
	assert_int_equal(pb_strip_field(bad_varint, sizeof(bad_varint), 12, &o), -EPROTO);
	assert_int_equal(pb_strip_field(group, sizeof(group), 12, &o), -EPROTO);
	buf_free(&o);
}

/* A SyncStream packed by protobuf-c (two batches, flags, dropped), read in
 * place: every event's type, id, remaining_ms and session bytes. */
static void events_read_in_place_match_protobuf_c(void **state)
{
	(void)state;
	enum { N = 40 };
	uint8_t sp[N][512];
	Tandem__Session *ss[N];
	Tandem__SessionEvent evs[N], *pe[N];
	for (int i = 0; i < N; i++) {
		size_t n = session(sp[i], 1000 + (uint64_t)i, (uint32_t)i * 7919u);
		ss[i] = tandem__session__unpack(NULL, n, sp[i]);
		assert_non_null(ss[i]);
		tandem__session_event__init(&evs[i]);
		evs[i].type = (Tandem__SessionEvent__Type)(i % 5);
		evs[i].session = ss[i];
		pe[i] = &evs[i];
	}
	Tandem__EventBatch eb = TANDEM__EVENT_BATCH__INIT;
	eb.n_events = N;
	eb.events = pe;
	Tandem__SyncStream m = TANDEM__SYNC_STREAM__INIT;
	m.events = &eb;
	m.has_bulk_end = true;
	m.bulk_end = true;
	m.has_dropped = true;
	m.dropped = 300000;
	size_t len = tandem__sync_stream__get_packed_size(&m);
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	tandem__sync_stream__pack(&m, buf);

	uint64_t v[5] = {0};
	unsigned seen;
	assert_int_equal(pb_scan(buf, len, 1, v, 5, &seen), 1);
	assert_true(seen & 1u << 3);
	assert_false(seen & 1u << 2);
	assert_int_equal(v[3], 1);
	assert_int_equal(v[4], 300000);

	struct pb_events it;
	struct pb_event ev;
	pb_events_begin(&it, buf, len, 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pb_events_next(&it, &ev), 1);
		assert_int_equal(ev.type, (unsigned)(i % 5));
		assert_int_equal(ev.id, 1000 + (uint64_t)i);
		assert_int_equal(ev.remaining_ms, (uint32_t)i * 7919u);
		Tandem__Session *back = tandem__session__unpack(NULL, ev.session_len, ev.session);
		assert_non_null(back);
		assert_int_equal(back->key->port0, 40312);
		tandem__session__free_unpacked(back, NULL);
	}
	assert_int_equal(pb_events_next(&it, &ev), 0);

	/* every truncation: no read past the end, no event invented */
	for (size_t cut = 0; cut < len; cut++) {
		int got, n_ok = 0;
		pb_scan(buf, cut, 1, v, 5, &seen);
		pb_events_begin(&it, buf, cut, 1);
		while ((got = pb_events_next(&it, &ev)) != 0) {
			if (got == 1)
				n_ok++;
			assert_true(n_ok <= N);
		}
	}
	/* an event whose session lacks an id is skipped, the next one read */
	struct buf b = {0}, sess = {0}, msg = {0};
	uint8_t p[512];
	size_t n = session(p, 42, 5);
	pb_strip_field(p, n, 1, &sess); /* no Session.id */
	pb_put_len_hdr(&b, 1, 2 + pb_len_field_size(2, sess.len));
	pb_put_varint(&b, 1, 0);
	pb_put_len(&b, 2, sess.p, sess.len);
	pb_put_len_hdr(&b, 1, 2 + pb_len_field_size(2, n));
	pb_put_varint(&b, 1, 2);
	pb_put_len(&b, 2, p, n);
	pb_put_len(&msg, 1, b.p, b.len);
	pb_events_begin(&it, msg.p, msg.len, 1);
	assert_int_equal(pb_events_next(&it, &ev), -EINVAL);
	assert_int_equal(pb_events_next(&it, &ev), 1);
	assert_int_equal(ev.id, 42);
	assert_int_equal(ev.type, 2);
	assert_int_equal(pb_events_next(&it, &ev), 0);
	/* a malformed top level is refused by the scan */
	uint8_t bad[3] = {1 << 3 | 2, 50, 0};
	assert_int_equal(pb_scan(bad, sizeof(bad), 1, v, 5, &seen), -EPROTO);
	buf_free(&b);
	buf_free(&sess);
	buf_free(&msg);
	free(buf);
	for (int i = 0; i < N; i++)
		tandem__session__free_unpacked(ss[i], NULL);
}

static void varint_lengths(void **state)
{
	(void)state;
	uint8_t b[10];
	assert_int_equal(pb_varint_len(0), 1);
	assert_int_equal(pb_varint_len(127), 1);
	assert_int_equal(pb_varint_len(128), 2);
	assert_int_equal(pb_varint_len(UINT64_MAX), 10);
	assert_int_equal(pb_put_varint_raw(b, 300), 2);
	assert_int_equal(b[0], 0xac);
	assert_int_equal(b[1], 0x02);
}

static void arena_unpacks_and_resets(void **state)
{
	(void)state;
	uint8_t p[512];
	size_t n = session(p, 9, 5);
	struct arena a;
	arena_init(&a);
	for (int round = 0; round < 100; round++) {
		Tandem__Session *s = tandem__session__unpack(&a.pa, n, p);
		assert_non_null(s);
		assert_int_equal(s->id, 9);
		arena_reset(&a);
	}
	assert_true(a.total > 0 && a.total <= (256u << 10));
	arena_fini(&a);
}

static void buffer_consume_keeps_the_rest(void **state)
{
	(void)state;
	struct buf b = {0};
	buf_put(&b, "abcdef", 6);
	buf_consume(&b, 2);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "cdef", 4);
	buf_consume(&b, 10);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	buf_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strip_removes_remaining_and_event_puts_it_back),
		cmocka_unit_test(peer_msg_and_apply_request_wrap_the_batch),
		cmocka_unit_test(flags_and_ack_as_peer_msg),
		cmocka_unit_test(strip_refuses_malformed_input),
		cmocka_unit_test(events_read_in_place_match_protobuf_c),
		cmocka_unit_test(varint_lengths),
		cmocka_unit_test(arena_unpacks_and_resets),
		cmocka_unit_test(buffer_consume_keeps_the_rest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
