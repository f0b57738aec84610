/*
 * test_sync_msg.c - the peer frame: header, HMAC tag, every refusal reason,
 * and the replay window (syncd/sync_msg.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "sync_msg.h"

#define CLUSTER 7
#define MAXP 4096

static struct sync_key key, other_key;

/* a sealed frame of payload p (n bytes) into out; returns its length */
static size_t make(uint8_t *out, const char *p, uint32_t cluster,
		   uint64_t epoch, uint64_t seq, const struct sync_key *k)
{
	size_t n = strlen(p);
	struct sync_hdr h = {.version = SYNC_VERSION, .cluster = cluster,
			     .node = 2, .epoch = epoch, .seq = seq,
			     .len = (uint32_t)n};
	memcpy(out + SYNC_HDR_LEN, p, n);
	sync_frame_seal(k, &h, out);
	return sync_frame_len(&h);
}

static int setup(void **state)
{
	(void)state;
	assert_true(sodium_init() >= 0);
	assert_int_equal(sync_key_from_hex(
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		&key), 0);
	memcpy(&other_key, &key, sizeof(key));
	other_key.k[31] ^= 1;
	return 0;
}

static void seal_then_open_gives_the_header_back(void **state)
{
	(void)state;
	uint8_t f[256];
	size_t n = make(f, "hello", CLUSTER, 5, 77, &key);
	assert_int_equal(n, SYNC_OVERHEAD + 5);
	assert_memory_equal(f, "TDMS", 4);
	struct sync_hdr h;
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n, &h), SR_OK);
	assert_int_equal(h.version, SYNC_VERSION);
	assert_int_equal(h.cluster, CLUSTER);
	assert_int_equal(h.node, 2);
	assert_int_equal(h.epoch, 5);
	assert_int_equal(h.seq, 77);
	assert_int_equal(h.len, 5);
	assert_memory_equal(f + SYNC_HDR_LEN, "hello", 5);
}

static void header_is_big_endian_at_documented_offsets(void **state)
{
	(void)state;
	uint8_t f[256];
	make(f, "x", 0x01020304, 0x1112131415161718ull, 0x2122232425262728ull, &key);
	static const uint8_t want[32] = {
		'T', 'D', 'M', 'S', 0, 1, 1, 2, 3, 4, 0, 2,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0, 0, 0, 1};
	assert_memory_equal(f, want, 32);
}

static void empty_payload_is_a_valid_frame(void **state)
{
	(void)state;
	uint8_t f[128];
	size_t n = make(f, "", CLUSTER, 0, 1, &key);
	struct sync_hdr h;
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n, &h), SR_OK);
	assert_int_equal(h.len, 0);
}

static void forged_tag_under_another_key_is_refused(void **state)
{
	(void)state;
	uint8_t f[256];
	size_t n = make(f, "payload", CLUSTER, 1, 1, &other_key);
	struct sync_hdr h = {.seq = 999};
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n, &h), SR_BAD_TAG);
	assert_int_equal(h.seq, 999); /* untouched on refusal */
}

static void flipped_bit_anywhere_is_a_bad_tag(void **state)
{
	(void)state;
	uint8_t f[256], g[256];
	size_t n = make(f, "payload", CLUSTER, 1, 1, &key);
	struct sync_hdr h;
	/* header fields that pass the plain checks (node, epoch, seq), the
	 * payload, and the tag itself */
	static const size_t pos[] = {11, 13, 27, SYNC_HDR_LEN + 3, 40, 50};
	for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
		memcpy(g, f, n);
		g[pos[i]] ^= 0x40;
		assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, g, n, &h),
				 SR_BAD_TAG);
	}
}

static void wrong_cluster_is_refused_before_the_tag(void **state)
{
	(void)state;
	uint8_t f[256];
	size_t n = make(f, "p", CLUSTER + 1, 1, 1, &key);
	struct sync_hdr h;
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n, &h),
			 SR_WRONG_CLUSTER);
}

static void bad_version_and_bad_magic_are_refused(void **state)
{
	(void)state;
	uint8_t f[256];
	size_t n = make(f, "p", CLUSTER, 1, 1, &key);
	struct sync_hdr h;
	f[5] = 2;
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n, &h),
			 SR_BAD_VERSION);
	f[5] = 1;
	f[0] = 'X';
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n, &h),
			 SR_BAD_MAGIC);
	assert_int_equal(sync_hdr_check(f, CLUSTER, MAXP, &h), SR_BAD_MAGIC);
}

static void oversized_length_is_refused_from_the_header(void **state)
{
	(void)state;
	uint8_t f[256];
	size_t n = make(f, "p", CLUSTER, 1, 1, &key);
	struct sync_hdr h;
	f[28] = 0x7f; /* length 2 GiB: refused before any more is read */
	assert_int_equal(sync_hdr_check(f, CLUSTER, MAXP, &h), SR_OVERSIZED);
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n, &h),
			 SR_OVERSIZED);
	/* exactly the maximum passes the header check */
	uint8_t g[SYNC_HDR_LEN];
	struct sync_hdr m = {.version = 1, .cluster = CLUSTER, .len = MAXP};
	sync_hdr_pack(&m, g);
	assert_int_equal(sync_hdr_check(g, CLUSTER, MAXP, &h), SR_OK);
}

static void truncated_and_overlong_frames_are_refused(void **state)
{
	(void)state;
	uint8_t f[256];
	size_t n = make(f, "payload", CLUSTER, 1, 1, &key);
	struct sync_hdr h;
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, 2, &h),
			 SR_TRUNCATED);
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, 20, &h),
			 SR_TRUNCATED);
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n - 1, &h),
			 SR_TRUNCATED);
	f[n] = 0;
	assert_int_equal(sync_frame_open(&key, CLUSTER, MAXP, f, n + 1, &h),
			 SR_BAD_LENGTH);
}

static void key_must_be_64_hex_digits(void **state)
{
	(void)state;
	struct sync_key k;
	assert_int_equal(sync_key_from_hex("0011", &k), -EINVAL);
	assert_int_equal(sync_key_from_hex(
		"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		&k), -EINVAL);
	assert_int_equal(sync_key_from_hex(NULL, &k), -EINVAL);
	assert_int_equal(sync_key_from_hex(
		"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
		&k), 0);
	assert_memory_equal(&k, &key, sizeof(k));
}

static void refusal_names_are_distinct(void **state)
{
	(void)state;
	for (int i = 0; i < SR_MAX; i++) {
		assert_non_null(sync_refusal_name((enum sync_refusal)i));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(sync_refusal_name((enum sync_refusal)i),
						sync_refusal_name((enum sync_refusal)j));
	}
	assert_string_equal(sync_refusal_name(SR_BAD_TAG), "bad-tag");
	assert_string_equal(sync_refusal_name(SR_MAX), "?");
}

/* ---- replay window ---- */

static void accept(struct replay_win *w, uint64_t e, uint64_t s, bool strict)
{
	assert_int_equal(replay_check(w, e, s, strict), SR_OK);
	replay_commit(w, e, s);
}

static void stream_accepts_increasing_with_gaps(void **state)
{
	(void)state;
	struct replay_win w = {0};
	accept(&w, 1, 100, true);
	accept(&w, 1, 101, true);
	accept(&w, 1, 500, true); /* gaps: other peers' frames */
	assert_int_equal(w.top, 500);
}

static void stream_refuses_replayed_and_backwards(void **state)
{
	(void)state;
	struct replay_win w = {0};
	accept(&w, 1, 100, true);
	accept(&w, 1, 105, true);
	assert_int_equal(replay_check(&w, 1, 105, true), SR_REPLAYED);
	assert_int_equal(replay_check(&w, 1, 100, true), SR_REPLAYED);
	assert_int_equal(replay_check(&w, 1, 103, true), SR_BACKWARDS);
	assert_int_equal(replay_check(&w, 1, 1, true), SR_BACKWARDS);
}

static void check_alone_changes_nothing(void **state)
{
	(void)state;
	struct replay_win w = {0};
	accept(&w, 1, 100, true);
	struct replay_win before = w;
	assert_int_equal(replay_check(&w, 1, 200, true), SR_OK);
	assert_int_equal(replay_check(&w, 2, 1, true), SR_OK);
	assert_memory_equal(&w, &before, sizeof(w));
}

static void datagrams_may_arrive_out_of_order_once(void **state)
{
	(void)state;
	struct replay_win w = {0};
	accept(&w, 1, 100, false);
	accept(&w, 1, 98, false);   /* late, unseen: fine */
	assert_int_equal(replay_check(&w, 1, 98, false), SR_REPLAYED);
	assert_int_equal(replay_check(&w, 1, 100, false), SR_REPLAYED);
	accept(&w, 1, 99, false);
	accept(&w, 1, 100 - (SYNC_REPLAY_WINDOW - 1), false); /* window edge */
	assert_int_equal(replay_check(&w, 1, 100 - SYNC_REPLAY_WINDOW, false),
			 SR_BACKWARDS);
	/* a jump beyond the window forgets the old bits */
	accept(&w, 1, 1000, false);
	assert_int_equal(replay_check(&w, 1, 999, false), SR_OK);
	assert_int_equal(replay_check(&w, 1, 1000, false), SR_REPLAYED);
	accept(&w, 1, 1001, false);
	assert_int_equal(replay_check(&w, 1, 1000, false), SR_REPLAYED);
}

static void higher_epoch_starts_over_lower_epoch_is_stale(void **state)
{
	(void)state;
	struct replay_win w = {0};
	accept(&w, 3, 100, true);
	assert_int_equal(replay_check(&w, 2, 1000, true), SR_STALE_EPOCH);
	accept(&w, 4, 50, true);    /* new epoch: any sequence */
	assert_int_equal(w.epoch, 4);
	assert_int_equal(replay_check(&w, 4, 50, true), SR_REPLAYED);
	assert_int_equal(replay_check(&w, 3, 101, true), SR_STALE_EPOCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seal_then_open_gives_the_header_back),
		cmocka_unit_test(header_is_big_endian_at_documented_offsets),
		cmocka_unit_test(empty_payload_is_a_valid_frame),
		cmocka_unit_test(forged_tag_under_another_key_is_refused),
		cmocka_unit_test(flipped_bit_anywhere_is_a_bad_tag),
		cmocka_unit_test(wrong_cluster_is_refused_before_the_tag),
		cmocka_unit_test(bad_version_and_bad_magic_are_refused),
		cmocka_unit_test(oversized_length_is_refused_from_the_header),
		cmocka_unit_test(truncated_and_overlong_frames_are_refused),
		cmocka_unit_test(key_must_be_64_hex_digits),
		cmocka_unit_test(refusal_names_are_distinct),
		cmocka_unit_test(stream_accepts_increasing_with_gaps),
		cmocka_unit_test(stream_refuses_replayed_and_backwards),
		cmocka_unit_test(check_alone_changes_nothing),
		cmocka_unit_test(datagrams_may_arrive_out_of_order_once),
		cmocka_unit_test(higher_epoch_starts_over_lower_epoch_is_stale),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
