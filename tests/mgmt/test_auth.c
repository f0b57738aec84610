/*
 * test_auth.c - HMAC challenge (RFC 4231 vector, right/wrong answer,
 * unknown user, malformed hex), the plain form, and the failed-login
 * limiter (block at max, window reset, block expiry, bounded table).
 *
 * Must never: depend on the wall clock (the limiter takes now_ms).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "auth.h"

static const uint8_t key32[32] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
	0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static void test_hmac_rfc4231_case2(void **state)
{
	char out[AUTH_MAC_HEX + 1];

	(void)state;
	auth_hmac_hex((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", out);
	assert_string_equal(out, "5bdcc146bf60754e6a042426089575c7"
			    "5a003f089d2739839dec58b964ec3843");
}

static void test_hex_round_trip_and_errors(void **state)
{
	uint8_t buf[8];
	char hex[17];
	size_t n;

	(void)state;
	auth_hex_encode((const uint8_t *)"\x01\xab\xff", 3, hex);
	assert_string_equal(hex, "01abff");
	assert_int_equal(auth_hex_decode("01ABff", buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "\x01\xab\xff", 3);
	assert_int_not_equal(auth_hex_decode("abc", buf, sizeof(buf), &n), 0);
	assert_int_not_equal(auth_hex_decode("zz", buf, sizeof(buf), &n), 0);
	assert_int_not_equal(auth_hex_decode("000000000000000000", buf, sizeof(buf), &n), 0);
}

static void test_nonce_is_fresh_hex(void **state)
{
	char a[AUTH_NONCE_HEX + 1], b[AUTH_NONCE_HEX + 1];

	(void)state;
	auth_nonce(a);
	auth_nonce(b);
	assert_int_equal(strlen(a), AUTH_NONCE_HEX);
	assert_int_equal(strspn(a, "0123456789abcdef"), AUTH_NONCE_HEX);
	assert_string_not_equal(a, b);
}

static void test_right_answer_accepted(void **state)
{
	char nonce[AUTH_NONCE_HEX + 1], mac[AUTH_MAC_HEX + 1];

	(void)state;
	auth_nonce(nonce);
	auth_hmac_hex(key32, sizeof(key32), nonce, mac);
	assert_true(auth_check_hmac(key32, sizeof(key32), nonce, mac));
	/* Upper-case hex is the same answer. */
	for (char *p = mac; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 32);
	assert_true(auth_check_hmac(key32, sizeof(key32), nonce, mac));
}

static void test_wrong_answers_refused(void **state)
{
	char nonce[AUTH_NONCE_HEX + 1], other[AUTH_NONCE_HEX + 1];
	char mac[AUTH_MAC_HEX + 1];

	(void)state;
	auth_nonce(nonce);
	auth_nonce(other);
	/* An answer for another nonce (replay from another connection). */
	auth_hmac_hex(key32, sizeof(key32), other, mac);
	assert_false(auth_check_hmac(key32, sizeof(key32), nonce, mac));
	/* One bit off. */
	auth_hmac_hex(key32, sizeof(key32), nonce, mac);
	mac[10] = mac[10] == '0' ? '1' : '0';
	assert_false(auth_check_hmac(key32, sizeof(key32), nonce, mac));
	/* Malformed. */
	assert_false(auth_check_hmac(key32, sizeof(key32), nonce, "abc"));
	assert_false(auth_check_hmac(key32, sizeof(key32), nonce, ""));
	mac[AUTH_MAC_HEX - 2] = '\0';
	assert_false(auth_check_hmac(key32, sizeof(key32), nonce, mac));
}

static void test_unknown_user_refused_even_with_dummy_answer(void **state)
{
	static const uint8_t dummy[AUTH_TOKEN_MIN];
	char nonce[AUTH_NONCE_HEX + 1], mac[AUTH_MAC_HEX + 1];

	(void)state;
	auth_nonce(nonce);
	auth_hmac_hex(dummy, sizeof(dummy), nonce, mac);
	assert_false(auth_check_hmac(NULL, 0, nonce, mac));
}

static void test_plain_token(void **state)
{
	(void)state;
	assert_true(auth_check_plain(key32, sizeof(key32),
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"));
	assert_false(auth_check_plain(key32, sizeof(key32),
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeefe"));
	/* A prefix of the token is not the token. */
	assert_false(auth_check_plain(key32, sizeof(key32),
		"00112233445566778899aabbccddeeff"));
	assert_false(auth_check_plain(key32, sizeof(key32), "xyz"));
	assert_false(auth_check_plain(NULL, 0, "00"));
}

static void test_limiter_blocks_at_max_failures(void **state)
{
	struct auth_limiter *l;
	uint8_t a[16] = {127, 0, 0, 1}, b[16] = {10, 0, 0, 9};

	(void)state;
	assert_int_equal(auth_limiter_new(8, 5, 60000, 60000, &l), 0);
	for (int i = 0; i < 4; i++) {
		assert_false(auth_limiter_fail(l, a, 1000 + i));
		assert_false(auth_limiter_blocked(l, a, 1000 + i));
	}
	assert_true(auth_limiter_fail(l, a, 1010));
	assert_true(auth_limiter_blocked(l, a, 1011));
	assert_false(auth_limiter_blocked(l, b, 1011)); /* per address */
	assert_true(auth_limiter_blocked(l, a, 1010 + 59999));
	assert_false(auth_limiter_blocked(l, a, 1010 + 60000)); /* block ends */
	auth_limiter_free(l);
	auth_limiter_free(NULL);
}

static void test_limiter_window_resets(void **state)
{
	struct auth_limiter *l;
	uint8_t a[16] = {127, 0, 0, 1};

	(void)state;
	assert_int_equal(auth_limiter_new(8, 5, 60000, 60000, &l), 0);
	for (int i = 0; i < 4; i++)
		auth_limiter_fail(l, a, 0);
	/* A minute later the count starts again: 4 more do not block. */
	for (int i = 0; i < 4; i++)
		assert_false(auth_limiter_fail(l, a, 60000 + i));
	assert_false(auth_limiter_blocked(l, a, 60010));
	auth_limiter_free(l);
}

static void test_limiter_table_is_bounded(void **state)
{
	struct auth_limiter *l;
	uint8_t a[16] = {0};

	(void)state;
	assert_int_equal(auth_limiter_new(4, 2, 60000, 60000, &l), 0);
	/* 1000 addresses through a 4-slot table: no growth, no crash; the
	 * most recent address is still tracked. */
	for (uint32_t i = 0; i < 1000; i++) {
		memcpy(a, &i, sizeof(i));
		auth_limiter_fail(l, a, i);
	}
	assert_true(auth_limiter_fail(l, a, 1000));
	assert_true(auth_limiter_blocked(l, a, 1001));
	auth_limiter_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231_case2),
		cmocka_unit_test(test_hex_round_trip_and_errors),
		cmocka_unit_test(test_nonce_is_fresh_hex),
		cmocka_unit_test(test_right_answer_accepted),
		cmocka_unit_test(test_wrong_answers_refused),
		cmocka_unit_test(test_unknown_user_refused_even_with_dummy_answer),
		cmocka_unit_test(test_plain_token),
		cmocka_unit_test(test_limiter_blocks_at_max_failures),
		cmocka_unit_test(test_limiter_window_resets),
		cmocka_unit_test(test_limiter_table_is_bounded),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
