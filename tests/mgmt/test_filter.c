/*
 * test_filter.c - SRX-style session filters: every word, the values each
 * accepts, and one test per kind of refusal, each checking that the message
 * names the offending word.
 *
 * Must never: rely on *ret after a refused parse (it must be untouched).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

/* Splits a string into words (at most 32) in buf. */
static int words(char *buf, char **argv)
{
	int n = 0;

	for (char *p = strtok(buf, " "); p && n < 32; p = strtok(NULL, " "))
		argv[n++] = p;
	return n;
}

static int parse(const char *text, unsigned flags, struct filter *f, char *err)
{
	char buf[512], *argv[32];

	snprintf(buf, sizeof(buf), "%s", text);
	int argc = words(buf, argv);
	return filter_parse(argc, argv, flags, f, err, 200);
}

static void test_every_word(void **state)
{
	struct filter f;
	char err[200];
	uint8_t v4[4], v6[16];

	(void)state;
	assert_int_equal(parse("proto tcp src 10.1.0.0/16 dst fd00:2::/64 sport 40312 "
			       "dport 443 iface veth-c rule web state established "
			       "origin peer limit 50", FILTER_ALLOW_LIMIT, &f, err), 0);
	assert_int_equal(f.has, FILTER_PROTO | FILTER_SRC | FILTER_DST | FILTER_SPORT |
			 FILTER_DPORT | FILTER_IFACE | FILTER_RULE | FILTER_STATE |
			 FILTER_ORIGIN | FILTER_LIMIT);
	assert_int_equal(f.proto, 6);
	inet_pton(AF_INET, "10.1.0.0", v4);
	assert_int_equal(f.src.family, 4);
	assert_int_equal(f.src.len, 16);
	assert_memory_equal(f.src.addr, v4, 4);
	inet_pton(AF_INET6, "fd00:2::", v6);
	assert_int_equal(f.dst.family, 6);
	assert_int_equal(f.dst.len, 64);
	assert_memory_equal(f.dst.addr, v6, 16);
	assert_int_equal(f.sport, 40312);
	assert_int_equal(f.dport, 443);
	assert_string_equal(f.iface, "veth-c");
	assert_string_equal(f.rule, "web");
	assert_int_equal(f.state, MG_ST_ESTABLISHED);
	assert_int_equal(f.origin, ORIGIN_PEER);
	assert_int_equal(f.limit, 50);
}

static void test_empty_filter(void **state)
{
	struct filter f;
	char err[200];

	(void)state;
	assert_int_equal(parse("", 0, &f, err), 0);
	assert_int_equal(f.has, 0);
}

static void test_proto_names_and_numbers(void **state)
{
	uint8_t p;

	(void)state;
	assert_int_equal(filter_proto_parse("udp", &p), 0);
	assert_int_equal(p, 17);
	assert_int_equal(filter_proto_parse("icmp", &p), 0);
	assert_int_equal(p, 1);
	assert_int_equal(filter_proto_parse("icmpv6", &p), 0);
	assert_int_equal(p, 58);
	assert_int_equal(filter_proto_parse("47", &p), 0);
	assert_int_equal(p, 47);
	assert_int_equal(filter_proto_parse("256", &p), -EINVAL);
	assert_int_equal(filter_proto_parse("-1", &p), -EINVAL);
	assert_int_equal(filter_proto_parse("TCP", &p), -EINVAL);
	assert_string_equal(filter_proto_name(6), "tcp");
	assert_null(filter_proto_name(200));
}

static void test_every_state_name(void **state)
{
	static const char *const names[] = {"syn-sent", "syn-recv", "established",
		"tcp-wait", "time-wait", "closed", "udp", "udp-replied", "icmp", "other"};
	enum mg_state s;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(mg_state_parse(names[i], &s), 0);
		assert_string_equal(mg_state_name(s), names[i]);
	}
	assert_int_equal(mg_state_parse("unknown", &s), -EINVAL);
	assert_int_equal(mg_state_parse("ESTABLISHED", &s), -EINVAL);
}

static void test_bare_address_is_host_prefix(void **state)
{
	struct filter f;
	char err[200];

	(void)state;
	assert_int_equal(parse("src 10.1.0.2 dst ::1", 0, &f, err), 0);
	assert_int_equal(f.src.len, 32);
	assert_int_equal(f.dst.len, 128);
}

/* Each refusal: -EINVAL, message contains `want`, *ret untouched. */
static void refused(const char *text, unsigned flags, const char *want)
{
	struct filter f;
	char err[200] = "";

	memset(&f, 0xa5, sizeof(f));
	if (parse(text, flags, &f, err) != -EINVAL)
		fail_msg("accepted: %s", text);
	if (!strstr(err, want))
		fail_msg("'%s': message '%s' lacks '%s'", text, err, want);
	for (size_t i = 0; i < sizeof(f); i++)
		assert_int_equal(((unsigned char *)&f)[i], 0xa5);
}

static void test_unknown_word_is_named(void **state)
{
	(void)state;
	refused("dport 80 colour red", 0, "'colour'");
	refused("80", 0, "'80'");
}

static void test_word_twice(void **state)
{
	(void)state;
	refused("dport 80 dport 81", 0, "dport given twice");
}

static void test_value_missing(void **state)
{
	(void)state;
	refused("proto tcp dport", 0, "dport: value missing");
}

static void test_bad_values_name_the_word(void **state)
{
	(void)state;
	refused("dport 65536", 0, "dport: bad value '65536'");
	refused("sport -1", 0, "sport: bad value");
	refused("sport +1", 0, "sport: bad value");
	refused("dport 80x", 0, "dport: bad value");
	refused("proto bogus", 0, "proto: bad value 'bogus'");
	refused("state open", 0, "state: bad value 'open'");
	refused("origin remote", 0, "origin: bad value 'remote'");
	refused("src 10.1.0.0/33", 0, "src: bad value");
	refused("dst 10.1.0/24", 0, "dst: bad value");
	refused("iface bad/name", 0, "iface: bad value");
	refused("rule aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, "rule: bad value");
}

static void test_host_bits_set(void **state)
{
	(void)state;
	refused("src 10.1.0.5/16", 0, "host bits set");
	refused("dst fd00::1/64", 0, "host bits set");
}

static void test_limit_only_where_allowed(void **state)
{
	struct filter f;
	char err[200];

	(void)state;
	refused("limit 10", 0, "'limit'");
	refused("limit 0", FILTER_ALLOW_LIMIT, "limit: bad value");
	refused("limit 100001", FILTER_ALLOW_LIMIT, "limit: bad value");
	assert_int_equal(parse("limit 100000", FILTER_ALLOW_LIMIT, &f, err), 0);
	assert_int_equal(f.limit, FILTER_LIMIT_MAX);
}

static void test_parse_u64(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(filter_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(filter_parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	assert_int_equal(filter_parse_u64("", 10, &v), -EINVAL);
	assert_int_equal(filter_parse_u64("11", 10, &v), -ERANGE);
	assert_int_equal(filter_parse_u64(" 1", 10, &v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_word),
		cmocka_unit_test(test_empty_filter),
		cmocka_unit_test(test_proto_names_and_numbers),
		cmocka_unit_test(test_every_state_name),
		cmocka_unit_test(test_bare_address_is_host_prefix),
		cmocka_unit_test(test_unknown_word_is_named),
		cmocka_unit_test(test_word_twice),
		cmocka_unit_test(test_value_missing),
		cmocka_unit_test(test_bad_values_name_the_word),
		cmocka_unit_test(test_host_bits_set),
		cmocka_unit_test(test_limit_only_where_allowed),
		cmocka_unit_test(test_parse_u64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
