/*
 * test_line.c - the line reader: caps (a line of exactly the cap works, one
 * byte more is refused and skipped to the next LF), LF and CRLF however the
 * bytes are split into reads, binary bytes, UTF-8.
 *
 * Must never: depend on the order tests run in (each builds its reader).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "line.h"

#define CAP 16

/* Feeds data in pieces of `step` bytes and collects the events as text:
 * "L:<line>" "TOO_LONG" "BINARY", joined by '|'. */
static void run(struct line_reader *lr, const char *data, size_t n, size_t step,
		char *out, size_t outlen)
{
	size_t off = 0;

	out[0] = '\0';
	while (off < n) {
		char *space;
		size_t avail;
		line_space(lr, &space, &avail);
		assert_true(avail > 0);
		size_t k = n - off < step ? n - off : step;
		if (k > avail)
			k = avail;
		memcpy(space, data + off, k);
		line_commit(lr, k);
		off += k;
		for (;;) {
			const char *l;
			size_t len;
			enum line_ev ev = line_next(lr, &l, &len);
			if (ev == LINE_NONE)
				break;
			if (out[0])
				strncat(out, "|", outlen - strlen(out) - 1);
			if (ev == LINE_OK) {
				assert_int_equal(strlen(l), len);
				strncat(out, "L:", outlen - strlen(out) - 1);
				strncat(out, l, outlen - strlen(out) - 1);
			} else if (ev == LINE_TOO_LONG) {
				strncat(out, "TOO_LONG", outlen - strlen(out) - 1);
			} else {
				strncat(out, "BINARY", outlen - strlen(out) - 1);
				return;
			}
		}
	}
}

static void check(const char *data, size_t max, const char *want)
{
	/* Every split of the input must give the same events. */
	for (size_t step = 1; step <= strlen(data) + 1; step++) {
		struct line_reader lr;
		char out[1024];
		assert_int_equal(line_reader_init(&lr, 64, max), 0);
		run(&lr, data, strlen(data), step, out, sizeof(out));
		if (strcmp(out, want) != 0)
			fail_msg("step %zu: got '%s' want '%s'", step, out, want);
		line_reader_free(&lr);
	}
}

static void test_lf_and_crlf_lines(void **state)
{
	(void)state;
	check("help\nshow status\r\nquit\n", CAP, "L:help|L:show status|L:quit");
}

static void test_empty_lines_are_lines(void **state)
{
	(void)state;
	check("\n\r\nx\n", CAP, "L:|L:|L:x");
}

static void test_line_of_exactly_the_cap_works(void **state)
{
	(void)state;
	check("0123456789abcdef\n", CAP, "L:0123456789abcdef");
	check("0123456789abcdef\r\n", CAP, "L:0123456789abcdef");
}

static void test_line_one_over_the_cap_is_refused_and_skipped(void **state)
{
	(void)state;
	check("0123456789abcdefX\nnext\n", CAP, "TOO_LONG|L:next");
	check("0123456789abcdefX\r\nnext\n", CAP, "TOO_LONG|L:next");
}

static void test_very_long_line_is_skipped_to_its_lf(void **state)
{
	char data[400];

	(void)state;
	memset(data, 'a', 300);
	strcpy(data + 300, "\nok\n");
	check(data, CAP, "TOO_LONG|L:ok");
}

static void test_nul_byte_is_binary(void **state)
{
	struct line_reader lr;
	char out[256];
	static const char data[] = {'a', 'b', 0, 'c', '\n'};

	(void)state;
	assert_int_equal(line_reader_init(&lr, 64, CAP), 0);
	run(&lr, data, sizeof(data), 64, out, sizeof(out));
	assert_string_equal(out, "BINARY");
	line_reader_free(&lr);
}

static void test_control_bytes_are_binary_tab_is_not(void **state)
{
	(void)state;
	check("a\tb\n", CAP, "L:a\tb");
	check("a\x01" "b\n", CAP, "BINARY");
	check("a\x7f" "b\n", CAP, "BINARY");
	check("a\x1b[2J\n", CAP, "BINARY");
	check("a\rb\n", CAP, "BINARY"); /* CR only before LF */
}

static void test_binary_is_found_before_the_lf(void **state)
{
	struct line_reader lr;
	char out[256];

	(void)state;
	assert_int_equal(line_reader_init(&lr, 64, CAP), 0);
	run(&lr, "ab\x02", 3, 64, out, sizeof(out));
	assert_string_equal(out, "BINARY");
	line_reader_free(&lr);
}

static void test_utf8_valid_and_invalid(void **state)
{
	(void)state;
	check("caf\xc3\xa9\n", CAP, "L:caf\xc3\xa9");
	check("\xe2\x82\xac\n", CAP, "L:\xe2\x82\xac");
	check("\xff\xfe\n", CAP, "BINARY");
	check("\xc0\xaf\n", CAP, "BINARY");       /* overlong '/' */
	check("\xed\xa0\x80\n", CAP, "BINARY");   /* surrogate */
	check("\xc3\n", CAP, "BINARY");           /* truncated */
}

static void test_cap_change_applies_to_following_lines(void **state)
{
	struct line_reader lr;
	char out[512];
	char data[100];

	(void)state;
	memset(data, 'x', 40);
	data[40] = '\n';
	assert_int_equal(line_reader_init(&lr, 64, CAP), 0);
	run(&lr, data, 41, 64, out, sizeof(out));
	assert_string_equal(out, "TOO_LONG");
	line_set_max(&lr, 64);
	run(&lr, data, 41, 64, out, sizeof(out));
	assert_int_equal(strlen(out), 2 + 40);
	line_reader_free(&lr);
}

static void test_many_lines_in_one_read(void **state)
{
	struct line_reader lr;
	char out[4096], data[2048];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(data + n, "l%d\n", i);
	assert_int_equal(line_reader_init(&lr, 4096, 16), 0);
	run(&lr, data, n, n, out, sizeof(out));
	assert_non_null(strstr(out, "L:l0|L:l1|"));
	assert_non_null(strstr(out, "|L:l99"));
	assert_int_equal(line_pending(&lr), 0);
	line_reader_free(&lr);
}

static void test_buffer_never_fills_without_progress(void **state)
{
	struct line_reader lr;
	char *space;
	size_t avail;
	const char *l;
	size_t len;

	(void)state;
	/* Fill the whole buffer with one line-less run: the reader must
	 * decide (too long) and make room. */
	assert_int_equal(line_reader_init(&lr, 32, 32), 0);
	line_space(&lr, &space, &avail);
	assert_int_equal(avail, 34);
	memset(space, 'z', avail);
	line_commit(&lr, avail);
	assert_int_equal(line_next(&lr, &l, &len), LINE_TOO_LONG);
	line_space(&lr, &space, &avail);
	assert_true(avail > 0);
	line_reader_free(&lr);
	line_reader_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lf_and_crlf_lines),
		cmocka_unit_test(test_empty_lines_are_lines),
		cmocka_unit_test(test_line_of_exactly_the_cap_works),
		cmocka_unit_test(test_line_one_over_the_cap_is_refused_and_skipped),
		cmocka_unit_test(test_very_long_line_is_skipped_to_its_lf),
		cmocka_unit_test(test_nul_byte_is_binary),
		cmocka_unit_test(test_control_bytes_are_binary_tab_is_not),
		cmocka_unit_test(test_binary_is_found_before_the_lf),
		cmocka_unit_test(test_utf8_valid_and_invalid),
		cmocka_unit_test(test_cap_change_applies_to_following_lines),
		cmocka_unit_test(test_many_lines_in_one_read),
		cmocka_unit_test(test_buffer_never_fills_without_progress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
