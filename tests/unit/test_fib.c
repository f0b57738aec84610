/*
 * test_fib.c - the AF_XDP data path's route and neighbour lookups, and a
 * build from this namespace's kernel tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "fib.h"

static void a16(uint8_t out[16], const char *s)
{
	uint8_t raw[16];
	if (inet_pton(AF_INET, s, raw) == 1)
		fib_addr16(out, AF_INET, raw);
	else
		assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

static int fam(const char *s) { return strchr(s, ':') ? AF_INET6 : AF_INET; }

static void route(struct fib *f, const char *dst, unsigned plen,
		  const char *gw, int oif, uint32_t metric)
{
	uint8_t d[16], g[16];
	a16(d, dst);
	if (gw)
		a16(g, gw);
	assert_int_equal(fib_add_route(f, fam(dst), d, plen, gw ? g : NULL, oif,
				       metric), 0);
}

static int oif_of(const struct fib *f, const char *dst)
{
	uint8_t d[16];
	a16(d, dst);
	const struct fib_route *r = fib_route(f, d);
	return r ? r->oif : 0;
}

static void test_longest_prefix_wins(void **state)
{
	(void)state;
	struct fib *f = calloc(1, sizeof(*f));
	route(f, "0.0.0.0", 0, "10.2.0.254", 2, 0);
	route(f, "10.1.0.0", 16, NULL, 1, 0);
	route(f, "10.2.0.0", 16, NULL, 2, 0);
	route(f, "10.2.7.0", 24, "10.2.0.9", 3, 0);
	route(f, "10.2.7.128", 25, NULL, 4, 0);
	route(f, "fd00:1::", 64, NULL, 1, 256);
	route(f, "::", 0, "fd00:2::fe", 2, 1024);
	assert_int_equal(oif_of(f, "10.1.200.3"), 1);
	assert_int_equal(oif_of(f, "10.2.0.2"), 2);
	assert_int_equal(oif_of(f, "10.2.7.1"), 3);
	assert_int_equal(oif_of(f, "10.2.7.200"), 4);
	assert_int_equal(oif_of(f, "192.0.2.1"), 2);
	assert_int_equal(oif_of(f, "fd00:1::5"), 1);
	assert_int_equal(oif_of(f, "2001:db8::1"), 2);
	/* IPv4 routes never match IPv6 destinations and back */
	struct fib *g = calloc(1, sizeof(*g));
	route(g, "0.0.0.0", 0, NULL, 1, 0);
	assert_int_equal(oif_of(g, "2001:db8::1"), 0);
	assert_int_equal(oif_of(g, "10.0.0.1"), 1);
	route(g, "::", 0, NULL, 2, 0);
	assert_int_equal(oif_of(g, "2001:db8::1"), 2);
	/* the gateway comes with the route */
	uint8_t d[16], gw[16];
	a16(d, "10.2.7.5");
	a16(gw, "10.2.0.9");
	const struct fib_route *r = fib_route(f, d);
	assert_true(r && r->has_gw && memcmp(r->gw, gw, 16) == 0);
	free(f);
	free(g);
}

static void test_equal_prefixes_lowest_metric(void **state)
{
	(void)state;
	struct fib *f = calloc(1, sizeof(*f));
	route(f, "10.2.0.0", 16, NULL, 5, 200);
	route(f, "10.2.0.0", 16, NULL, 6, 100);
	/* host bits set in the prefix are ignored */
	route(f, "10.2.99.99", 16, NULL, 7, 300);
	assert_int_equal(oif_of(f, "10.2.3.4"), 6);
	free(f);
}

static void test_route_table_full(void **state)
{
	(void)state;
	struct fib *f = calloc(1, sizeof(*f));
	uint8_t d[16];
	a16(d, "10.0.0.0");
	for (unsigned i = 0; i < FIB_MAX_ROUTES; i++)
		assert_int_equal(fib_add_route(f, AF_INET, d, 8, NULL, 1, i), 0);
	assert_int_equal(fib_add_route(f, AF_INET, d, 8, NULL, 1, 0), -ENOSPC);
	free(f);
}

static void test_neighbours(void **state)
{
	(void)state;
	struct fib *f = calloc(1, sizeof(*f));
	uint8_t a[16], mac[6] = {2, 0, 0, 0, 0, 1};
	a16(a, "10.2.0.2");
	assert_null(fib_neigh(f, 2, a));
	assert_int_equal(fib_add_neigh(f, 2, a, mac), 0);
	const uint8_t *m = fib_neigh(f, 2, a);
	assert_non_null(m);
	assert_memory_equal(m, mac, 6);
	/* same address, another interface: another neighbour */
	assert_null(fib_neigh(f, 3, a));
	/* update in place */
	mac[5] = 9;
	assert_int_equal(fib_add_neigh(f, 2, a, mac), 0);
	assert_int_equal(fib_neigh(f, 2, a)[5], 9);
	assert_int_equal(f->nneigh, 1);
	/* fill to the limit: every entry found, then refused */
	unsigned i;
	for (i = 0; f->nneigh < FIB_NEIGH_SLOTS / 2; i++) {
		uint8_t b[4] = {10, 3, (uint8_t)(i >> 8), (uint8_t)i};
		fib_addr16(a, AF_INET, b);
		mac[4] = (uint8_t)(i >> 8);
		mac[5] = (uint8_t)i;
		assert_int_equal(fib_add_neigh(f, 2, a, mac), 0);
	}
	for (unsigned j = 0; j < i; j++) {
		uint8_t b[4] = {10, 3, (uint8_t)(j >> 8), (uint8_t)j};
		fib_addr16(a, AF_INET, b);
		m = fib_neigh(f, 2, a);
		assert_non_null(m);
		assert_int_equal(m[5], (uint8_t)j);
	}
	a16(a, "10.4.0.1");
	assert_int_equal(fib_add_neigh(f, 2, a, mac), -ENOSPC);
	assert_int_equal(f->neigh_dropped, 1);
	assert_null(fib_neigh(f, 2, a));
	free(f);
}

static void test_build_from_this_namespace(void **state)
{
	(void)state;
	struct fib *f = calloc(1, sizeof(*f));
	int lo = (int)if_nametoindex("lo");
	char err[256] = "";
	int r = fib_build(f, &lo, 1, err, sizeof(err));
	if (r < 0)
		fail_msg("fib_build: %s", err);
	const struct fib_link *l = fib_link(f, lo);
	assert_non_null(l); /* lo's link address is 6 zero bytes */
	assert_int_equal(f->nlinks, 1);
	uint8_t a[16];
	a16(a, "127.0.0.1");
	bool found = false;
	for (unsigned i = 0; i < f->nlocal; i++)
		found |= memcmp(f->local[i], a, 16) == 0;
	assert_true(found);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_prefix_wins),
		cmocka_unit_test(test_equal_prefixes_lowest_metric),
		cmocka_unit_test(test_route_table_full),
		cmocka_unit_test(test_neighbours),
		cmocka_unit_test(test_build_from_this_namespace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
