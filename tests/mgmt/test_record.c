/*
 * test_record.c - data and status lines: when values are quoted, escapes
 * round-trip through the parser, a value can never forge a field or a line,
 * status lines are single clean lines.
 *
 * Must never: leak a buffer (run under ASan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

static void test_plain_values_are_bare(void **state)
{
	struct rec_buf b;

	(void)state;
	rec_buf_init(&b);
	rec_begin(&b, "session");
	rec_u64(&b, "id", 281474976710657ull);
	rec_str(&b, "proto", "tcp");
	rec_str(&b, "src", "10.1.0.2:40312");
	rec_fmt(&b, "pkts", "%u/%u", 12u, 10u);
	rec_end(&b);
	assert_string_equal(b.p, "session id=281474976710657 proto=tcp "
			    "src=10.1.0.2:40312 pkts=12/10\n");
	rec_buf_free(&b);
}

static void test_values_needing_quotes(void **state)
{
	struct rec_buf b;

	(void)state;
	rec_buf_init(&b);
	rec_begin(&b, "x");
	rec_str(&b, "a", "two words");
	rec_str(&b, "b", "k=v");
	rec_str(&b, "c", "");
	rec_str(&b, "d", "say \"hi\"\\");
	rec_str(&b, "e", "line\nbreak\ttab\x01");
	rec_str(&b, "f", NULL);
	rec_end(&b);
	assert_string_equal(b.p, "x a=\"two words\" b=\"k=v\" c=\"\" "
			    "d=\"say \\\"hi\\\"\\\\\" e=\"line\\nbreak\\ttab\\x01\" f=\"\"\n");
	/* One line however nasty the values. */
	assert_ptr_equal(strchr(b.p, '\n'), b.p + b.len - 1);
	rec_buf_free(&b);
}

static void test_round_trip_through_parser(void **state)
{
	static const char *const vals[] = {
		"plain", "", "two words", "a=b", "\"", "\\", "\n\r\t", "\x01\x7f",
		"caf\xc3\xa9", "OK", "ERR 500 x", "trailing ",
	};
	struct rec_buf b;

	(void)state;
	rec_buf_init(&b);
	rec_begin(&b, "t");
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%zu", i);
		rec_str(&b, key, vals[i]);
	}
	rec_end(&b);
	char *line = strdup(b.p);
	line[strlen(line) - 1] = '\0'; /* the LF */
	char *word;
	struct rec_field f[32];
	unsigned n;
	assert_int_equal(rec_parse(line, &word, f, 32, &n), 0);
	assert_string_equal(word, "t");
	assert_int_equal(n, sizeof(vals) / sizeof(vals[0]));
	for (unsigned i = 0; i < n; i++)
		assert_string_equal(f[i].val, vals[i]);
	free(line);
	rec_buf_free(&b);
}

static void test_parse_rejects_non_records(void **state)
{
	static const char *const bad[] = {
		"OK", "ERR 400 x", "# HELP x", "tandem_up 1x", "Word a=1", "w a",
		"w a=\"unterminated", "w a=\"x\"junk", "w a=\"\\q\"", "w =1",
		"w a=\"\\x4\"",
	};
	char *word;
	struct rec_field f[8];
	unsigned n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *l = strdup(bad[i]);
		if (rec_parse(l, &word, f, 8, &n) == 0)
			fail_msg("parsed: %s", bad[i]);
		free(l);
	}
	char l2[] = "w a=1 b=2 c=3";
	assert_int_equal(rec_parse(l2, &word, f, 2, &n), -E2BIG);
	char l3[] = "count";
	assert_int_equal(rec_parse(l3, &word, f, 2, &n), 0);
	assert_int_equal(n, 0);
}

static void test_status_lines(void **state)
{
	struct rec_buf b;
	int code = 0;
	const char *text;

	(void)state;
	rec_buf_init(&b);
	rec_ok(&b, NULL);
	rec_ok(&b, "cleared 3");
	rec_err(&b, 413, "line too long");
	rec_err(&b, 42, "bad code");
	rec_err(&b, 401, "evil\nOK injected");
	assert_string_equal(b.p, "OK\nOK cleared 3\nERR 413 line too long\n"
			    "ERR 500 bad code\nERR 401 evil OK injected\n");
	rec_buf_free(&b);

	assert_int_equal(rec_status("OK", &code, &text), 1);
	assert_string_equal(text, "");
	assert_int_equal(rec_status("OK cleared 3", &code, &text), 1);
	assert_string_equal(text, "cleared 3");
	assert_int_equal(rec_status("ERR 503 node not reachable", &code, &text), 2);
	assert_int_equal(code, 503);
	assert_string_equal(text, "node not reachable");
	assert_int_equal(rec_status("OKAY", &code, &text), 0);
	assert_int_equal(rec_status("ERR x", &code, &text), 0);
	assert_int_equal(rec_status("session id=1", &code, &text), 0);
}

static void test_long_status_text_is_cut(void **state)
{
	struct rec_buf b;
	char big[3000];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rec_buf_init(&b);
	rec_err(&b, 422, big);
	assert_true(b.len < 1100);
	rec_buf_free(&b);
}

static void test_buffer_grows_and_take(void **state)
{
	struct rec_buf b;
	size_t len;

	(void)state;
	rec_buf_init(&b);
	for (int i = 0; i < 10000; i++)
		rec_buf_printf(&b, "%05d", i);
	assert_int_equal(b.len, 50000);
	assert_int_equal(b.err, 0);
	char *p = rec_buf_take(&b, &len);
	assert_int_equal(len, 50000);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_memory_equal(p + 49995, "09999", 5);
	free(p);
	rec_buf_free(NULL);
	rec_buf_reset(&b);
	rec_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_values_are_bare),
		cmocka_unit_test(test_values_needing_quotes),
		cmocka_unit_test(test_round_trip_through_parser),
		cmocka_unit_test(test_parse_rejects_non_records),
		cmocka_unit_test(test_status_lines),
		cmocka_unit_test(test_long_status_text_is_cut),
		cmocka_unit_test(test_buffer_grows_and_take),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
