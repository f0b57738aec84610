/*
 * test_sess_table.c - cmocka tests of the session table shard: index
 * (canonical keys, misses, duplicates, full pool, spill chains), ids, the
 * timer wheel (lazy re-arm, shortened expiry, budget, time jumps, 32-bit
 * clock wrap, early ageing) and a randomized run against a plain model.
 *
 * Time is driven by hand (common/clock.c's manual clock or plain numbers):
 * no test ever sleeps. Must never depend on hash values, only on behaviour.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sess_table.h"

#define SLOT_MS 128 /* wheel granularity: expiry may lag by up to this */

/* Key number i: 10.a.b.c:sport -> 192.168.0.1:80, proto TCP. Side 0 is
 * always the 10/8 address, so key_index() can read i back. */
static struct sess_key key_n(uint32_t i)
{
	struct sess_key k;

	memset(&k, 0, sizeof(k));
	k.addr[0][0] = 10;
	k.addr[0][1] = (uint8_t)(i >> 16);
	k.addr[0][2] = (uint8_t)(i >> 8);
	k.addr[0][3] = (uint8_t)i;
	k.addr[1][0] = 192;
	k.addr[1][1] = 168;
	k.addr[1][3] = 1;
	k.port[0] = (uint16_t)(1024 + (i >> 24));
	k.port[1] = 80;
	k.zone = 0x0102;
	k.proto = 6;
	k.family = 4;
	return k;
}

static uint32_t key_index(const struct sess_key *k)
{
	return (uint32_t)(k->port[0] - 1024) << 24 | (uint32_t)k->addr[0][1] << 16 |
	       (uint32_t)k->addr[0][2] << 8 | k->addr[0][3];
}

static struct sess_table *new_table(uint32_t cap, uint64_t now)
{
	struct sess_table *t = NULL;

	assert_int_equal(sess_table_new(cap, 7, 3, now, &t), 0);
	assert_non_null(t);
	return t;
}

static struct sess *ins(struct sess_table *t, uint32_t i, uint64_t now,
			uint64_t expire)
{
	struct sess_key k = key_n(i);
	struct sess *s = NULL;

	assert_int_equal(sess_table_insert(t, &k, sess_key_hash(&k), 0, now,
					   expire, &s), 0);
	assert_non_null(s);
	return s;
}

static struct sess *find(struct sess_table *t, uint32_t i)
{
	struct sess_key k = key_n(i);

	return sess_table_lookup(t, &k, sess_key_hash(&k));
}

/* Expiry callback: count, and check the session was really due. */
struct exp_log {
	uint64_t now;
	unsigned n;
	unsigned early; /* sessions handed over before their expiry */
	uint8_t *gone;  /* optional: gone[key index] = 1 */
};

static void on_expire(void *ctx, struct sess *s)
{
	struct exp_log *l = ctx;

	l->n++;
	if (sess_remaining_ms(s, l->now) > 0)
		l->early++;
	if (l->gone)
		l->gone[key_index(&s->key)] = 1;
}

/* Run expiry to completion at now; returns the number expired. */
static unsigned expire_all(struct sess_table *t, uint64_t now,
			   struct exp_log *l)
{
	unsigned total = 0;
	bool done = false;

	l->now = now;
	for (int guard = 0; !done; guard++) {
		assert_true(guard < 100000);
		total += sess_table_expire(t, now, 1000, on_expire, l, &done);
	}
	return total;
}

static void test_insert_lookup_remove(void **state)
{
	(void)state;
	struct sess_table *t = new_table(100, 0);
	struct sess *s = ins(t, 1, 5000, 65000);

	assert_int_equal(sess_table_count(t), 1);
	assert_ptr_equal(find(t, 1), s);
	assert_int_equal(s->created, 5);
	assert_int_equal(s->expire, 65000);
	assert_int_equal(s->pkts[0] + s->pkts[1] + s->state + s->flags, 0);
	struct sess_key k = key_n(1);
	assert_memory_equal(&s->key, &k, sizeof(k));
	sess_table_remove(t, s);
	assert_int_equal(sess_table_count(t), 0);
	assert_null(find(t, 1));
	sess_table_free(t);
	sess_table_free(NULL);
}

static void test_new_rejects_bad_capacity(void **state)
{
	(void)state;
	struct sess_table *t = NULL;

	assert_int_equal(sess_table_new(0, 1, 0, 0, &t), -EINVAL);
	assert_int_equal(sess_table_new((1u << 28) + 1, 1, 0, 0, &t), -EINVAL);
	assert_null(t);
}

static void test_key_both_directions_v4(void **state)
{
	(void)state;
	uint8_t a[16] = {10, 1, 0, 2}, b[16] = {10, 2, 0, 2};
	struct sess_key k1, k2;
	unsigned side1 = 9, side2 = 9;

	sess_key_make(&k1, 4, 6, a, b, 40312, 80, 1, 2, &side1);
	sess_key_make(&k2, 4, 6, b, a, 80, 40312, 2, 1, &side2);
	assert_memory_equal(&k1, &k2, sizeof(k1));
	assert_int_equal(side1, 0);
	assert_int_equal(side2, 1);
	assert_int_equal(k1.zone, 0x0102);
	assert_int_equal(k1.port[0], 40312);
	assert_int_equal(k1.port[1], 80);
	assert_int_equal(sess_key_hash(&k1), sess_key_hash(&k2));

	/* Same address both ways (hairpin): ports decide. */
	sess_key_make(&k1, 4, 17, a, a, 5000, 53, 3, 3, &side1);
	sess_key_make(&k2, 4, 17, a, a, 53, 5000, 3, 3, &side2);
	assert_memory_equal(&k1, &k2, sizeof(k1));
	assert_int_equal(side1, 1);
	assert_int_equal(side2, 0);
	assert_int_equal(k1.zone, 0x0303);

	/* A table finds the reply with the original's key. */
	struct sess_table *t = new_table(16, 0);
	struct sess *s = NULL;
	sess_key_make(&k1, 4, 6, a, b, 40312, 80, 1, 2, NULL);
	assert_int_equal(sess_table_insert(t, &k1, sess_key_hash(&k1), 0, 0,
					   1000, &s), 0);
	sess_key_make(&k2, 4, 6, b, a, 80, 40312, 2, 1, NULL);
	assert_ptr_equal(sess_table_lookup(t, &k2, sess_key_hash(&k2)), s);
	sess_table_free(t);
}

static void test_key_both_directions_v6(void **state)
{
	(void)state;
	uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
	uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, [14] = 1, [15] = 1};
	struct sess_key k1, k2, k3;
	unsigned side1, side2;

	sess_key_make(&k1, 6, 58, a, b, 77, 77, 4, 1, &side1);
	sess_key_make(&k2, 6, 58, b, a, 77, 77, 1, 4, &side2);
	assert_memory_equal(&k1, &k2, sizeof(k1));
	assert_int_not_equal(side1, side2);
	assert_int_equal(side1, 0); /* a sorts lower: byte 14 is 0 < 1 */
	assert_int_equal(k1.zone, 0x0104);
	assert_int_equal(k1.family, 6);
	assert_int_equal(k1.proto, 58);
	/* Another zone pair is another session. */
	sess_key_make(&k3, 6, 58, a, b, 77, 77, 4, 2, NULL);
	assert_memory_not_equal(&k1, &k3, sizeof(k1));
}

static void test_lookup_miss(void **state)
{
	(void)state;
	struct sess_table *t = new_table(1000, 0);

	assert_null(find(t, 5)); /* empty table */
	for (uint32_t i = 0; i < 1000; i += 2)
		ins(t, i, 0, 1000);
	for (uint32_t i = 1; i < 1000; i += 2)
		assert_null(find(t, i));
	/* Same addresses, other protocol: a miss. */
	struct sess_key k = key_n(2);
	k.proto = 17;
	assert_null(sess_table_lookup(t, &k, sess_key_hash(&k)));
	sess_table_free(t);
}

static void test_duplicate_insert_eexist(void **state)
{
	(void)state;
	struct sess_table *t = new_table(10, 0);
	struct sess *s = ins(t, 42, 0, 1000), *dup = NULL;
	struct sess_key k = key_n(42);

	assert_int_equal(sess_table_insert(t, &k, sess_key_hash(&k), 0, 0,
					   2000, &dup), -EEXIST);
	assert_ptr_equal(dup, s);
	assert_int_equal(s->expire, 1000); /* untouched */
	assert_int_equal(sess_table_count(t), 1);
	sess_table_free(t);
}

static void test_pool_full_enospc_keeps_sessions(void **state)
{
	(void)state;
	const uint32_t cap = 50;
	struct sess_table *t = new_table(cap, 0);
	struct sess *s = NULL;

	for (uint32_t i = 0; i < cap; i++)
		ins(t, i, 0, 1000);
	struct sess_key k = key_n(cap);
	assert_int_equal(sess_table_insert(t, &k, sess_key_hash(&k), 0, 0, 1000,
					   &s), -ENOSPC);
	assert_null(s);
	assert_int_equal(sess_table_count(t), cap);
	for (uint32_t i = 0; i < cap; i++)
		assert_non_null(find(t, i));
	assert_null(find(t, cap));
	/* A present key still answers -EEXIST when full. */
	k = key_n(3);
	assert_int_equal(sess_table_insert(t, &k, sess_key_hash(&k), 0, 0, 1000,
					   &s), -EEXIST);
	sess_table_free(t);
}

static void test_remove_frees_slot_for_reuse(void **state)
{
	(void)state;
	struct sess_table *t = new_table(3, 0);
	struct sess *a = ins(t, 1, 0, 1000), *s = NULL;

	ins(t, 2, 0, 1000);
	ins(t, 3, 0, 1000);
	struct sess_key k = key_n(4);
	assert_int_equal(sess_table_insert(t, &k, sess_key_hash(&k), 0, 0, 1000,
					   &s), -ENOSPC);
	sess_table_remove(t, a);
	struct sess *d = ins(t, 4, 0, 1000);
	assert_ptr_equal(d, a); /* the freed entry is the one reused */
	assert_ptr_equal(find(t, 4), d);
	assert_null(find(t, 1));
	assert_non_null(find(t, 2));
	assert_non_null(find(t, 3));
	assert_int_equal(sess_table_count(t), 3);
	sess_table_free(t);
}

/* 64 sessions = 8 buckets: take 40 keys whose home is bucket 0, so they
 * fill buckets 0..3 and three spill over, then cut holes in the chain. */
static void test_bucket_overflow_chain(void **state)
{
	(void)state;
	const uint32_t cap = 64, nb = 8, want = 40;
	struct sess_table *t = new_table(cap, 0);
	uint32_t keys[40], n = 0;

	for (uint32_t i = 0; n < want; i++) {
		struct sess_key k = key_n(i);
		if ((((uint64_t)sess_key_hash(&k) * nb) >> 32) == 0)
			keys[n++] = i;
	}
	for (uint32_t i = 0; i < want; i++)
		ins(t, keys[i], 0, 1000);
	for (uint32_t i = 0; i < want; i++)
		assert_non_null(find(t, keys[i]));
	/* Misses that hash to the same home walk the whole chain. */
	for (uint32_t i = 0, misses = 0; misses < 20; i++) {
		struct sess_key k = key_n(1000000 + i);
		if ((((uint64_t)sess_key_hash(&k) * nb) >> 32) != 0)
			continue;
		assert_null(sess_table_lookup(t, &k, sess_key_hash(&k)));
		misses++;
	}
	/* Remove from the middle of the chain: all others still found. */
	for (uint32_t i = 8; i < 25; i++)
		sess_table_remove(t, find(t, keys[i]));
	for (uint32_t i = 0; i < want; i++) {
		if (i >= 8 && i < 25)
			assert_null(find(t, keys[i]));
		else
			assert_non_null(find(t, keys[i]));
	}
	/* Put them back (they take the holes), then empty the table and
	 * fill it with other keys: the chain's counters must not leak. */
	for (uint32_t i = 8; i < 25; i++)
		ins(t, keys[i], 0, 1000);
	for (uint32_t i = 0; i < want; i++)
		assert_non_null(find(t, keys[i]));
	for (uint32_t i = want; i-- > 0;)
		sess_table_remove(t, find(t, keys[i]));
	assert_int_equal(sess_table_count(t), 0);
	for (uint32_t i = 0; i < cap; i++)
		ins(t, 5000 + i, 0, 1000);
	for (uint32_t i = 0; i < cap; i++)
		assert_non_null(find(t, 5000 + i));
	sess_table_free(t);
}

/* Burst lookups agree with single ones: hits, misses, spilled chains,
 * bursts longer than one prefetch chunk and of odd length. */
static void test_lookup_burst_matches_single(void **state)
{
	(void)state;
	const uint32_t cap = 4000, n = 301;
	struct sess_table *t = new_table(cap, 0);
	struct sess_key keys[301];
	const struct sess_key *kp[301];
	uint32_t hashes[301];
	struct sess *out[301];

	/* Full pool: about a fifth of the buckets spill. */
	for (uint32_t i = 0; i < cap; i++)
		ins(t, i * 2, 0, 1000);
	for (uint32_t round = 0; round < 40; round++) {
		for (uint32_t j = 0; j < n; j++) {
			keys[j] = key_n((round * 977 + j * 13) % (2 * cap));
			kp[j] = &keys[j];
			hashes[j] = sess_key_hash(&keys[j]);
		}
		sess_table_lookup_burst(t, kp, hashes, n - round, out);
		for (uint32_t j = 0; j < n - round; j++) {
			struct sess *s = sess_table_lookup(t, &keys[j], hashes[j]);
			assert_ptr_equal(out[j], s);
			assert_int_equal(s != NULL, key_index(&keys[j]) % 2 == 0);
		}
	}
	sess_table_lookup_burst(t, kp, hashes, 0, out); /* no-op */
	sess_table_free(t);
}

static void test_ids_unique_with_node_id(void **state)
{
	(void)state;
	struct sess_table *t = NULL;
	const uint32_t n = 5000;
	uint64_t *ids = calloc(n, sizeof(*ids));

	assert_non_null(ids);
	assert_int_equal(sess_table_new(n, 0xbeef, 0x5a, 0, &t), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct sess *s = ins(t, i, 0, 1000);
		ids[i] = s->id;
		assert_int_equal(s->id >> 48, 0xbeef);
		assert_int_equal((s->id >> 40) & 0xff, 0x5a);
		assert_int_equal(s->id & ((UINT64_C(1) << 40) - 1), i + 1);
	}
	for (uint32_t i = 1; i < n; i++)
		assert_true(ids[i] > ids[i - 1]);
	/* A peer's session keeps the id it came with. */
	sess_table_remove(t, find(t, 0));
	struct sess_key k = key_n(n);
	struct sess *s = NULL;
	uint64_t peer_id = (UINT64_C(0x0002) << 48) | 77;
	assert_int_equal(sess_table_insert(t, &k, sess_key_hash(&k), peer_id, 0,
					   1000, &s), 0);
	assert_int_equal(s->id, peer_id);
	free(ids);
	sess_table_free(t);
}

static void test_expiry_after_advancing_time(void **state)
{
	(void)state;
	struct sess_table *t = new_table(100, 1000);
	struct exp_log l = {0};

	for (uint32_t i = 0; i < 10; i++)
		ins(t, i, 1000, 1000 + 30000);  /* due at 31 s */
	for (uint32_t i = 10; i < 20; i++)
		ins(t, i, 1000, 1000 + 60000);  /* due at 61 s */
	assert_int_equal(expire_all(t, 30999, &l), 0);
	assert_int_equal(expire_all(t, 31000 + SLOT_MS, &l), 10);
	assert_int_equal(sess_table_count(t), 10);
	assert_null(find(t, 3));
	assert_non_null(find(t, 13));
	assert_int_equal(expire_all(t, 60999, &l), 0);
	assert_int_equal(expire_all(t, 61000 + SLOT_MS, &l), 10);
	assert_int_equal(sess_table_count(t), 0);
	assert_int_equal(l.early, 0);
	sess_table_free(t);
}

static void test_lazy_extension_does_not_expire_early(void **state)
{
	(void)state;
	struct sess_table *t = new_table(100, 0);
	struct exp_log l = {0};
	struct sess *s = ins(t, 1, 0, 4000);

	/* Later, and beyond one lap of the wheel (524 s). */
	sess_table_set_expire(t, s, 4000 + 900000);
	assert_int_equal(sess_remaining_ms(s, 4000), 900000);
	for (uint64_t now = 0; now < 904000; now += 1000)
		assert_int_equal(expire_all(t, now, &l), 0);
	assert_ptr_equal(find(t, 1), s);
	assert_int_equal(expire_all(t, 904000 + SLOT_MS, &l), 1);
	assert_int_equal(l.early, 0);
	assert_null(find(t, 1));
	sess_table_free(t);
}

static void test_shortened_expiry_fires_at_new_time(void **state)
{
	(void)state;
	struct sess_table *t = new_table(100, 0);
	struct exp_log l = {0};
	struct sess *s = ins(t, 1, 0, 1800000);

	ins(t, 2, 0, 1800000);
	sess_table_set_expire(t, s, 5000); /* e.g. an RST moved it to 5 s */
	assert_int_equal(expire_all(t, 4900, &l), 0);
	assert_int_equal(expire_all(t, 5000 + SLOT_MS, &l), 1);
	assert_null(find(t, 1));
	assert_non_null(find(t, 2));
	/* Shorten to a time already past: it goes at the next slot. */
	s = find(t, 2);
	sess_table_set_expire(t, s, 1000);
	assert_int_equal(expire_all(t, 5200 + SLOT_MS, &l), 1);
	assert_int_equal(sess_table_count(t), 0);
	assert_int_equal(l.early, 0);
	sess_table_free(t);
}

static void test_budget_respected_and_resumes(void **state)
{
	(void)state;
	const uint32_t n = 10000;
	struct sess_table *t = new_table(n, 0);
	struct exp_log l = {0};
	bool done = true;
	unsigned calls = 0;

	for (uint32_t i = 0; i < n; i++)
		ins(t, i, 0, 1000);
	/* Catch up to just before their slot so no empty slot eats budget. */
	assert_int_equal(expire_all(t, 1000, &l), 0);
	l.now = 1100;
	do {
		unsigned got = sess_table_expire(t, 1100, 100, on_expire, &l, &done);
		assert_int_equal(got, 100);
		calls++;
		assert_int_equal(sess_table_count(t), n - 100 * calls);
		assert_true(done == (calls == n / 100));
	} while (!done);
	assert_int_equal(calls, 100);
	assert_int_equal(l.n, n);
	/* Budget 0 visits nothing. */
	ins(t, 1, 1100, 1200);
	assert_int_equal(sess_table_expire(t, 5000, 0, on_expire, &l, &done), 0);
	assert_false(done);
	assert_int_equal(sess_table_count(t), 1);
	sess_table_free(t);
}

static void test_big_time_jump_two_hours(void **state)
{
	(void)state;
	const uint64_t t0 = 123456789;
	struct sess_table *t = new_table(2000, t0);
	struct exp_log l = {0};

	for (uint32_t i = 0; i < 1000; i++)  /* due within the jump */
		ins(t, i, t0, t0 + 1000 + i * 3600);
	for (uint32_t i = 1000; i < 2000; i++) /* due after it */
		ins(t, i, t0, t0 + 7200000 + 1000 + i);
	/* Bounded catch-up: one lap of slots (4096) plus the sessions, not
	 * the 56,250 slots of two hours. */
	bool done = false;
	unsigned calls = 0, got = 0;
	l.now = t0 + 7200000;
	while (!done) {
		got += sess_table_expire(t, l.now, 1000, on_expire, &l, &done);
		calls++;
	}
	assert_int_equal(got, 1000);
	assert_true(calls <= (4096 + 2000) / 1000 + 1);
	assert_int_equal(sess_table_count(t), 1000);
	for (uint32_t i = 1000; i < 2000; i++)
		assert_non_null(find(t, i));
	/* The survivors still expire on time after the jump. */
	assert_int_equal(expire_all(t, t0 + 7200000 + 1500, &l), 0);
	assert_int_equal(expire_all(t, t0 + 7200000 + 3000 + SLOT_MS, &l), 1000);
	assert_int_equal(l.early, 0);
	/* An empty table jumps straight to now. */
	done = false;
	assert_int_equal(sess_table_expire(t, t0 + 99999999, 1, on_expire, &l,
					   &done), 0);
	assert_true(done);
	sess_table_free(t);
}

/* Junos-style 1800 s TCP idle timeout on the project clock, 1 s steps: a
 * refreshed session lives on, an idle one goes at 1800 s (within a slot). */
static void test_timeout_1800s_simulated_clock(void **state)
{
	(void)state;
	const uint64_t timeout = 1800000;
	clock_use_manual(1000000);
	uint64_t start = clock_now_ms();
	struct sess_table *t = new_table(10, start);
	struct exp_log l = {0};
	struct sess *busy = ins(t, 1, start, start + timeout);
	uint64_t idle_gone = 0;

	ins(t, 2, start, start + timeout);
	for (int sec = 1; sec <= 4000; sec++) {
		clock_advance_ms(1000);
		uint64_t now = clock_now_ms();
		if (sec % 600 == 0) /* traffic every 10 min: lazy refresh */
			sess_table_set_expire(t, busy, now + timeout);
		expire_all(t, now, &l);
		if (!idle_gone && !find(t, 2))
			idle_gone = now - start;
	}
	assert_int_equal(idle_gone, timeout + 1000); /* first 1 s tick after */
	assert_ptr_equal(find(t, 1), busy);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.early, 0);
	clock_use_system();
	sess_table_free(t);
}

/* The ms clock crosses 2^32 (49.7 days of uptime): s->expire wraps. */
static void test_clock_wrap_32bit(void **state)
{
	(void)state;
	const uint64_t t0 = (UINT64_C(1) << 32) - 5000;
	struct sess_table *t = new_table(100, t0);
	struct exp_log l = {0};
	struct sess *s = ins(t, 1, t0, t0 + 10000);

	ins(t, 2, t0, t0 + 2000);       /* before the wrap */
	ins(t, 3, t0, t0 + 60000);      /* well after */
	assert_true(s->expire < 10000);  /* wrapped */
	assert_int_equal(sess_remaining_ms(s, t0), 10000);
	assert_int_equal(sess_remaining_ms(s, t0 + 6000), 4000);
	assert_int_equal(sess_remaining_ms(s, t0 + 10000), 0);
	assert_int_equal(sess_remaining_ms(s, t0 + 20000), 0);
	assert_int_equal(expire_all(t, t0 + 2000 + SLOT_MS, &l), 1);
	assert_int_equal(expire_all(t, t0 + 9900, &l), 0);
	/* Lazy extension across the wrap. */
	sess_table_set_expire(t, s, t0 + 30000);
	assert_int_equal(expire_all(t, t0 + 29000, &l), 0);
	assert_int_equal(expire_all(t, t0 + 30000 + SLOT_MS, &l), 1);
	assert_int_equal(expire_all(t, t0 + 60000 + SLOT_MS, &l), 1);
	assert_int_equal(l.early, 0);
	assert_int_equal(sess_table_count(t), 0);
	sess_table_free(t);
}

struct age_log {
	uint64_t now, window;
	unsigned n, wrong;
};

static void on_age(void *ctx, struct sess *s)
{
	struct age_log *a = ctx;

	a->n++;
	if (sess_remaining_ms(s, a->now) >= a->window)
		a->wrong++;
}

static void test_age_early_window(void **state)
{
	(void)state;
	const uint64_t now = 100000;
	struct sess_table *t = new_table(100, now);
	struct age_log a = {.now = now, .window = 30000};

	ins(t, 1, now, now + 5000);
	ins(t, 2, now, now + 20000);
	ins(t, 3, now, now + 29999);
	ins(t, 4, now, now + 30000);  /* exactly the window: stays */
	ins(t, 5, now, now + 100000);
	ins(t, 6, now, now + 1000000); /* beyond a lap */
	/* Filed in an early slot, extended lazily: must stay. */
	sess_table_set_expire(t, ins(t, 7, now, now + 10000), now + 600000);

	assert_int_equal(sess_table_age_early(t, now, 30000, 1000, on_age, &a), 3);
	assert_int_equal(a.wrong, 0);
	assert_null(find(t, 1));
	assert_null(find(t, 2));
	assert_null(find(t, 3));
	for (uint32_t i = 4; i <= 7; i++)
		assert_non_null(find(t, i));
	/* A second pass finds nothing new. */
	assert_int_equal(sess_table_age_early(t, now, 30000, 1000, on_age, &a), 0);

	/* A small budget still makes progress call after call: re-filed
	 * sessions do not come back to eat it. */
	for (uint32_t i = 100; i < 160; i++)
		sess_table_set_expire(t, ins(t, i, now, now + 1000), now + 900000);
	for (uint32_t i = 200; i < 220; i++)
		ins(t, i, now, now + 1500);
	unsigned got = 0;
	for (int call = 0; call < 40 && got < 20; call++)
		got += sess_table_age_early(t, now, 30000, 16, on_age, &a);
	assert_int_equal(got, 20);
	assert_int_equal(a.wrong, 0);
	assert_int_equal(sess_table_count(t), 4 + 60);
	/* The re-filed ones still expire when due, not before. */
	struct exp_log l = {0};
	assert_int_equal(expire_all(t, now + 899000, &l), 3); /* 4, 5, 7 */
	assert_int_equal(expire_all(t, now + 900000 + SLOT_MS, &l), 60);
	assert_int_equal(sess_table_count(t), 1); /* 6: due at 1000 s */
	assert_int_equal(l.early, 0);
	sess_table_free(t);
}

static void count_cb(void *ctx, struct sess *s)
{
	uint8_t *seen = ctx;

	seen[key_index(&s->key)]++;
}

static void test_foreach_visits_all(void **state)
{
	(void)state;
	const uint32_t n = 500;
	struct sess_table *t = new_table(n, 0);
	uint8_t seen[500] = {0};

	for (uint32_t i = 0; i < n; i++)
		ins(t, i, 0, 1000);
	for (uint32_t i = 0; i < n; i += 3)
		sess_table_remove(t, find(t, i));
	sess_table_foreach(t, count_cb, seen);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(seen[i], i % 3 ? 1 : 0);
	/* at(): live entries only. */
	unsigned live = 0;
	for (uint32_t i = 0; i < n + 10; i++)
		live += sess_table_at(t, i) != NULL;
	assert_int_equal(live, sess_table_count(t));
	assert_true(sess_table_memory(t) >= (size_t)n * 128);
	assert_int_equal(sess_table_capacity(t), n);
	sess_table_free(t);
}

/* ---- randomized model test ---- */

#define M_KEYS 6000
#define M_CAP 4096

struct model {
	uint8_t live[M_KEYS];
	uint64_t expire[M_KEYS];
	uint64_t id[M_KEYS];
	uint32_t count;
	uint64_t now;
	unsigned bad; /* callback saw something the model forbids */
	uint64_t window; /* age_early window in progress */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
	/* xorshift64*: fixed seed, so a failure replays. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static void model_gone(struct model *m, struct sess *s, int ageing)
{
	uint32_t i = key_index(&s->key);

	if (i >= M_KEYS || !m->live[i] || s->id != m->id[i]) {
		m->bad++;
		return;
	}
	if (ageing ? m->expire[i] >= m->now + m->window : m->expire[i] > m->now)
		m->bad++;
	m->live[i] = 0;
	m->count--;
}

static void model_expire_cb(void *ctx, struct sess *s)
{
	model_gone(ctx, s, 0);
}

static void model_age_cb(void *ctx, struct sess *s)
{
	model_gone(ctx, s, 1);
}

static void test_randomized_against_model(void **state)
{
	(void)state;
	struct model *m = calloc(1, sizeof(*m));
	struct sess_table *t = NULL;
	bool pending_done = true;

	assert_non_null(m);
	m->now = (UINT64_C(1) << 32) - 3600000; /* crosses the 32-bit wrap */
	assert_int_equal(sess_table_new(M_CAP, 1, 0, m->now, &t), 0);
	for (int op = 0; op < 200000; op++) {
		uint32_t i = (uint32_t)(rnd() % M_KEYS);
		struct sess_key k = key_n(i);
		uint32_t h = sess_key_hash(&k);
		struct sess *s = sess_table_lookup(t, &k, h);
		unsigned r = (unsigned)(rnd() % 100);

		/* Every op starts with a lookup checked against the model. */
		assert_int_equal(s != NULL, m->live[i]);
		if (s) {
			assert_int_equal(s->id, m->id[i]);
			assert_int_equal(s->expire, (uint32_t)m->expire[i]);
		}
		if (r < 40) { /* insert: mostly 1..120 s, sometimes > a lap */
			uint64_t e = m->now + 1 + rnd() % (rnd() % 8 ? 120000 : 1500000);
			struct sess *got = NULL;
			int rc = sess_table_insert(t, &k, h, 0, m->now, e, &got);
			if (m->live[i]) {
				assert_int_equal(rc, -EEXIST);
				assert_ptr_equal(got, s);
			} else if (m->count == M_CAP) {
				assert_int_equal(rc, -ENOSPC);
			} else {
				assert_int_equal(rc, 0);
				m->live[i] = 1;
				m->expire[i] = e;
				m->id[i] = got->id;
				m->count++;
			}
		} else if (r < 55) { /* remove */
			if (s) {
				sess_table_remove(t, s);
				m->live[i] = 0;
				m->count--;
			}
		} else if (r < 75) { /* set_expire: refresh or shorten */
			if (s) {
				uint64_t e = m->now + rnd() % (rnd() % 4 ? 200000 : 900000);
				sess_table_set_expire(t, s, e);
				m->expire[i] = e;
			}
		} else if (r < 80) { /* burst lookup of random keys */
			struct sess_key bk[32];
			const struct sess_key *bp[32];
			uint32_t bh[32];
			struct sess *bo[32];
			for (unsigned j = 0; j < 32; j++) {
				bk[j] = key_n((uint32_t)(rnd() % M_KEYS));
				bp[j] = &bk[j];
				bh[j] = sess_key_hash(&bk[j]);
			}
			sess_table_lookup_burst(t, bp, bh, 32, bo);
			for (unsigned j = 0; j < 32; j++) {
				uint32_t x = key_index(&bk[j]);
				assert_int_equal(bo[j] != NULL, m->live[x]);
				if (bo[j])
					assert_int_equal(bo[j]->id, m->id[x]);
			}
		} else if (r < 97) { /* time passes, expiry with a budget */
			m->now += rnd() % (rnd() % 50 ? 3000 : 700000);
			sess_table_expire(t, m->now, 1 + (unsigned)(rnd() % 300),
					  model_expire_cb, m, &pending_done);
			if (pending_done) {
				/* Caught up: nothing due in a finished slot. */
				for (uint32_t j = 0; j < M_KEYS; j++)
					if (m->live[j] &&
					    ((m->expire[j] >> 7) + 1) << 7 <= m->now)
						m->bad++;
			}
		} else { /* aggressive ageing */
			m->window = rnd() % 60000;
			sess_table_age_early(t, m->now, m->window,
					     1 + (unsigned)(rnd() % 200),
					     model_age_cb, m);
		}
		assert_int_equal(m->bad, 0);
		assert_int_equal(sess_table_count(t), m->count);
	}
	/* Everything left is found, and foreach sees exactly it. */
	uint8_t *seen = calloc(M_KEYS, 1);
	assert_non_null(seen);
	sess_table_foreach(t, count_cb, seen);
	for (uint32_t i = 0; i < M_KEYS; i++) {
		assert_int_equal(seen[i], m->live[i]);
		assert_int_equal(find(t, i) != NULL, m->live[i]);
	}
	/* And all of it expires, never early. */
	struct exp_log l = {0};
	expire_all(t, m->now + 2000000, &l);
	assert_int_equal(l.early, 0);
	assert_int_equal(sess_table_count(t), 0);
	free(seen);
	free(m);
	sess_table_free(t);
}

/* Keys aimed at one bucket with the hash as the source code has it (seed
 * 0) land in one bucket there and scatter under a secret seed; the
 * unseeded hash (digests) does not depend on the seed. */
static void test_seed_scatters_keys_aimed_at_one_bucket(void **state)
{
	(void)state;
	enum { NB = 1024, WANT = 200 };
	static struct sess_key keys[WANT];
	uint8_t a[16] = {10, 1, 0, 0}, b[16] = {10, 2, 0, 10};
	unsigned n = 0;
	sess_hash_seed(0, 0);
	for (uint32_t i = 0; n < WANT && i < 4000000; i++) {
		struct sess_key k;
		a[2] = (uint8_t)(i >> 16);
		a[3] = (uint8_t)(i >> 8);
		sess_key_make(&k, 4, 17, a, b, (uint16_t)(1024 + (i & 0xff)), 53, 1, 2, NULL);
		if (((uint64_t)sess_key_hash(&k) * NB) >> 32 == 0)
			keys[n++] = k;
	}
	assert_int_equal(n, WANT);
	uint32_t plain[WANT];
	for (unsigned i = 0; i < WANT; i++)
		plain[i] = sess_key_hash_unseeded(&keys[i]);
	sess_hash_seed(UINT64_C(0x8f1bbcdc5a827999), UINT64_C(0x6ed9eba1ca62c1d6));
	static uint8_t used[NB];
	unsigned distinct = 0;
	for (unsigned i = 0; i < WANT; i++) {
		uint32_t bk = (uint32_t)(((uint64_t)sess_key_hash(&keys[i]) * NB) >> 32);
		distinct += !used[bk];
		used[bk] = 1;
		assert_int_equal(sess_key_hash_unseeded(&keys[i]), plain[i]);
	}
	/* 200 keys thrown at random into 1024 buckets: ~181 distinct */
	assert_true(distinct > 160);
	sess_hash_seed(0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_lookup_remove),
		cmocka_unit_test(test_new_rejects_bad_capacity),
		cmocka_unit_test(test_key_both_directions_v4),
		cmocka_unit_test(test_key_both_directions_v6),
		cmocka_unit_test(test_lookup_miss),
		cmocka_unit_test(test_duplicate_insert_eexist),
		cmocka_unit_test(test_pool_full_enospc_keeps_sessions),
		cmocka_unit_test(test_remove_frees_slot_for_reuse),
		cmocka_unit_test(test_bucket_overflow_chain),
		cmocka_unit_test(test_lookup_burst_matches_single),
		cmocka_unit_test(test_ids_unique_with_node_id),
		cmocka_unit_test(test_expiry_after_advancing_time),
		cmocka_unit_test(test_lazy_extension_does_not_expire_early),
		cmocka_unit_test(test_shortened_expiry_fires_at_new_time),
		cmocka_unit_test(test_budget_respected_and_resumes),
		cmocka_unit_test(test_big_time_jump_two_hours),
		cmocka_unit_test(test_timeout_1800s_simulated_clock),
		cmocka_unit_test(test_clock_wrap_32bit),
		cmocka_unit_test(test_age_early_window),
		cmocka_unit_test(test_foreach_visits_all),
		cmocka_unit_test(test_randomized_against_model),
		cmocka_unit_test(test_seed_scatters_keys_aimed_at_one_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
