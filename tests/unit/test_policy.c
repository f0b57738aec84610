/*
 * test_policy.c - the compiled classifier against hand-made cases and
 * against the linear reference scan on random rule sets.
 *
 * Must never: depend on timing or on anything but the fixed seeds below.
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

#include "config.h"
#include "policy.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

struct fixture {
	struct tandem_config *c;
	struct policy *p;
};

static void load(struct fixture *f, const char *text)
{
	char err[512] = "";
	int r = config_load_string(text, &f->c, err, sizeof(err));

	if (r != 0)
		fail_msg("config: %s", err);
	r = policy_compile(f->c, &f->p, err, sizeof(err));
	if (r != 0)
		fail_msg("policy: %s", err);
}

static void load_file(struct fixture *f)
{
	char err[512] = "";
	int r = config_load_file(SRCDIR "/conf/tandem.conf", &f->c, err, sizeof(err));

	if (r != 0)
		fail_msg("config: %s", err);
	r = policy_compile(f->c, &f->p, err, sizeof(err));
	if (r != 0)
		fail_msg("policy: %s", err);
}

static void unload(struct fixture *f)
{
	policy_free(f->p);
	config_free(f->c);
	f->p = NULL;
	f->c = NULL;
}

static uint8_t zone(const struct fixture *f, const char *name)
{
	for (unsigned i = 0; i < f->c->n_zones; i++)
		if (strcmp(f->c->zones[i].name, name) == 0)
			return f->c->zones[i].id;
	fail_msg("no zone %s", name);
	return 0;
}

/* Match a query given as text; checks compiled == linear, returns the
 * rule name or NULL. */
static const char *match(const struct fixture *f, const char *from,
			 const char *to, const char *src, const char *dst,
			 uint8_t proto, uint16_t port_or_type)
{
	uint8_t s[16] = { 0 }, d[16] = { 0 };
	int fam = strchr(src, ':') ? 6 : 4;
	struct policy_query q = {
		.family = (uint8_t)fam, .proto = proto, .src = s, .dst = d,
		.zone_from = from ? zone(f, from) : 0,
		.zone_to = to ? zone(f, to) : 0,
	};
	const struct cfg_rule *a, *b;

	assert_int_equal(inet_pton(fam == 4 ? AF_INET : AF_INET6, src, s), 1);
	assert_int_equal(inet_pton(fam == 4 ? AF_INET : AF_INET6, dst, d), 1);
	if (proto == 1 || proto == 58)
		q.icmp_type = port_or_type;
	else
		q.dport = port_or_type;
	a = policy_match(f->p, &q);
	b = policy_match_linear(f->c, &q);
	assert_ptr_equal(a, b);
	return a ? a->name : NULL;
}

#define NODE "node = { name = \"fw1\"; id = 1; };\n"
#define ZONES "zones = ( { name = \"in\"; }, { name = \"out\"; }, { name = \"dmz\"; } );\n"

/* ------------------------------------------------------------------ */
/* The example config                                                   */

static void test_example_config_rules(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load_file(&f);
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.10", 6, 80), "web");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.10", 6, 443), "web");
	assert_string_equal(match(&f, "trust", "untrust", "fd00:1::5", "fd00:2::10", 6, 443), "web");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.11", 6, 80), "web-strict");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.12", 6, 80), "web-loose");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.13", 6, 22), "ssh-ka");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.53", 17, 53), "dns");
	assert_string_equal(match(&f, "trust", "untrust", "fd00:1::5", "fd00:2::53", 6, 53), "dns");
	/* echo-request to .12: "ping" comes first; echo-reply only "ping-loose". */
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.12", 1, 8), "ping");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.12", 1, 0), "ping-loose");
	assert_string_equal(match(&f, "trust", "untrust", "fd00:1::5", "fd00:2::99", 58, 128), "ping");
	assert_null(match(&f, "trust", "untrust", "fd00:1::5", "fd00:2::99", 58, 129));
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.20", 17, 5050), "stateless");
	assert_string_equal(match(&f, "untrust", "trust", "10.2.0.20", "10.1.0.5", 17, 40000), "stateless-return");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.30", 6, 8080), "limited");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.40", 17, 9100), "short-udp");
	assert_string_equal(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.99", 47, 0), "gre");
	assert_string_equal(match(&f, "untrust", "trust", "10.2.0.5", "10.1.0.5", 6, 23), "block-telnet");
	assert_string_equal(match(&f, NULL, NULL, "10.9.0.5", "10.8.0.5", 6, 23), "block-telnet");
	assert_string_equal(match(&f, "trust", "dmz", "10.1.0.5", "10.3.0.5", 6, 80), "deny-dmz");
	/* Default deny. */
	assert_null(match(&f, "untrust", "trust", "10.2.0.10", "10.1.0.5", 6, 80));
	assert_null(match(&f, "trust", "untrust", "10.1.0.5", "10.2.0.10", 6, 81));
	/* web-strict names only 10.2.0.11: nothing for IPv6 to port 80. */
	assert_null(match(&f, "trust", "untrust", "fd00:1::5", "fd00:2::11", 6, 80));
	unload(&f);
}

/* ------------------------------------------------------------------ */
/* Hand-made cases                                                      */

static void test_first_match_wins(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "rules = (\n"
	     " { name = \"narrow\"; destination = \"10.0.0.5\"; service = \"tcp/80\"; action = \"drop\"; },\n"
	     " { name = \"wide\"; destination = \"10.0.0.0/8\"; service = \"tcp\"; action = \"accept\"; },\n"
	     " { name = \"shadowed\"; destination = \"10.0.0.5\"; service = \"tcp/80\"; action = \"accept\"; },\n"
	     " { name = \"all\"; action = \"reject\"; }\n"
	     ");\n");
	assert_string_equal(match(&f, "in", "out", "1.2.3.4", "10.0.0.5", 6, 80), "narrow");
	assert_string_equal(match(&f, "in", "out", "1.2.3.4", "10.0.0.6", 6, 80), "wide");
	assert_string_equal(match(&f, "in", "out", "1.2.3.4", "10.0.0.5", 6, 81), "wide");
	assert_string_equal(match(&f, "in", "out", "1.2.3.4", "11.0.0.5", 6, 80), "all");
	assert_string_equal(match(&f, "in", "out", "fd00::1", "fd00::2", 17, 80), "all");
	unload(&f);
}

static void test_any_fields_match_everything(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "rules = ( { name = \"everything\"; from = \"any\"; to = \"any\"; source = \"any\";\n"
	     "            destination = [\"any\"]; service = \"any\"; action = \"accept\"; } );\n");
	assert_string_equal(match(&f, NULL, NULL, "0.0.0.0", "255.255.255.255", 0, 0), "everything");
	assert_string_equal(match(&f, "dmz", "in", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 132, 0), "everything");
	assert_string_equal(match(&f, "in", "in", "10.0.0.1", "10.0.0.1", 1, 3), "everything");
	unload(&f);
}

static void test_zone_pairs(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "rules = (\n"
	     " { name = \"in-out\"; from = \"in\"; to = \"out\"; action = \"accept\"; },\n"
	     " { name = \"out-in\"; from = \"out\"; to = \"in\"; action = \"accept\"; },\n"
	     " { name = \"to-dmz\"; to = \"dmz\"; action = \"accept\"; },\n"
	     " { name = \"from-dmz\"; from = \"dmz\"; action = \"drop\"; }\n"
	     ");\n");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 1), "in-out");
	assert_string_equal(match(&f, "out", "in", "1.1.1.1", "2.2.2.2", 6, 1), "out-in");
	assert_string_equal(match(&f, "in", "dmz", "1.1.1.1", "2.2.2.2", 6, 1), "to-dmz");
	assert_string_equal(match(&f, "out", "dmz", "1.1.1.1", "2.2.2.2", 6, 1), "to-dmz");
	assert_string_equal(match(&f, "dmz", "in", "1.1.1.1", "2.2.2.2", 6, 1), "from-dmz");
	assert_null(match(&f, "in", "in", "1.1.1.1", "2.2.2.2", 6, 1));
	assert_null(match(&f, "out", "out", "1.1.1.1", "2.2.2.2", 6, 1));
	/* Unknown zone (0) only matches "any" sides. */
	assert_string_equal(match(&f, NULL, "dmz", "1.1.1.1", "2.2.2.2", 6, 1), "to-dmz");
	assert_null(match(&f, NULL, NULL, "1.1.1.1", "2.2.2.2", 6, 1));
	unload(&f);
}

static void test_port_ranges_edges(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "services = { alt = \"tcp/8000-8080\"; };\n"
	     "rules = (\n"
	     " { name = \"alt\"; service = \"alt\"; action = \"accept\"; },\n"
	     " { name = \"low\"; service = [\"tcp/0\", \"udp/0-1023\"]; action = \"accept\"; },\n"
	     " { name = \"top\"; service = \"udp/65535\"; action = \"accept\"; },\n"
	     " { name = \"tcp-all\"; service = \"tcp\"; action = \"drop\"; }\n"
	     ");\n");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 8000), "alt");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 8080), "alt");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 7999), "tcp-all");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 8081), "tcp-all");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 0), "low");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 1), "tcp-all");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 17, 1023), "low");
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 17, 1024));
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 17, 65535), "top");
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 17, 65534));
	/* Same port number, other protocol. */
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 132, 8000));
	unload(&f);
}

static void test_icmp_types(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "rules = (\n"
	     " { name = \"echo\"; service = [\"icmp/echo-request\", \"icmpv6/echo-request\"]; action = \"accept\"; },\n"
	     " { name = \"unreach\"; service = [\"icmp/3\", \"icmpv6/1\"]; action = \"accept\"; },\n"
	     " { name = \"any-v6\"; service = \"icmpv6\"; action = \"drop\"; }\n"
	     ");\n");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 1, 8), "echo");
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 1, 0));
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 1, 3), "unreach");
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 1, 128));
	assert_string_equal(match(&f, "in", "out", "fd00::1", "fd00::2", 58, 128), "echo");
	assert_string_equal(match(&f, "in", "out", "fd00::1", "fd00::2", 58, 1), "unreach");
	assert_string_equal(match(&f, "in", "out", "fd00::1", "fd00::2", 58, 8), "any-v6");
	assert_string_equal(match(&f, "in", "out", "fd00::1", "fd00::2", 58, 129), "any-v6");
	/* TCP port 8 is not ICMP type 8. */
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 8));
	unload(&f);
}

static void test_ipv6_prefixes(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "rules = (\n"
	     " { name = \"host\"; source = \"fd00:1::5\"; action = \"accept\"; },\n"
	     " { name = \"net64\"; source = \"fd00:1::/64\"; destination = \"fd00:2::/48\"; action = \"accept\"; },\n"
	     " { name = \"odd\"; source = \"fc00::/7\"; destination = \"2001:db8::/33\"; action = \"drop\"; }\n"
	     ");\n");
	assert_string_equal(match(&f, "in", "out", "fd00:1::5", "::1", 17, 1), "host");
	assert_string_equal(match(&f, "in", "out", "fd00:1::6", "fd00:2:0:ffff::1", 17, 1), "net64");
	assert_null(match(&f, "in", "out", "fd00:1::6", "fd00:3::1", 17, 1));
	assert_null(match(&f, "in", "out", "fd00:1:0:1::6", "fd00:2::1", 17, 1));
	assert_string_equal(match(&f, "in", "out", "fdff::1", "2001:db8:7fff::1", 17, 1), "odd");
	assert_null(match(&f, "in", "out", "fdff::1", "2001:db8:8000::1", 17, 1));
	assert_null(match(&f, "in", "out", "fe00::1", "2001:db8::1", 17, 1));
	unload(&f);
}

static void test_protocol_only_rules(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "rules = (\n"
	     " { name = \"gre\"; service = \"proto/47\"; action = \"accept\"; },\n"
	     " { name = \"esp-sctp\"; service = [\"proto/50\", \"proto/132\"]; action = \"accept\"; },\n"
	     " { name = \"tcp-by-number\"; service = \"proto/6\"; action = \"drop\"; },\n"
	     " { name = \"top\"; service = \"proto/255\"; action = \"drop\"; }\n"
	     ");\n");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 47, 0), "gre");
	assert_string_equal(match(&f, "in", "out", "fd00::1", "fd00::2", 50, 0), "esp-sctp");
	/* The port of an SCTP packet is not looked at. */
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 132, 9999), "esp-sctp");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 443), "tcp-by-number");
	assert_string_equal(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 255, 0), "top");
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 46, 0));
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 48, 0));
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 17, 47));
	unload(&f);
}

static void test_families_kept_apart(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES
	     "rules = (\n"
	     " { name = \"v6-only\"; source = \"fd00::/8\"; action = \"accept\"; },\n"
	     " { name = \"v4-default\"; destination = \"0.0.0.0/0\"; action = \"drop\"; },\n"
	     " { name = \"v6-default\"; source = \"::/0\"; action = \"reject\"; },\n"
	     " { name = \"mixed\"; source = [\"10.0.0.0/8\", \"fd00::/8\"]; action = \"accept\"; }\n"
	     ");\n");
	/* 0.0.0.0/0 is every IPv4 address, never an IPv6 one: and the
	 * reverse. An IPv4 address whose bytes equal an IPv6 prefix start
	 * (253.0.0.1 = fd00:0100::) does not match it. */
	assert_string_equal(match(&f, "in", "out", "253.0.0.1", "1.1.1.1", 6, 1), "v4-default");
	assert_string_equal(match(&f, "in", "out", "fd00::1", "::1", 6, 1), "v6-only");
	assert_string_equal(match(&f, "in", "out", "fe80::1", "::1", 6, 1), "v6-default");
	unload(&f);
}

static void test_empty_rule_set_denies(void **state)
{
	struct fixture f = { 0 };

	(void)state;
	load(&f, NODE ZONES "rules = ();\n");
	assert_null(match(&f, "in", "out", "1.1.1.1", "2.2.2.2", 6, 80));
	assert_null(match(&f, NULL, NULL, "::1", "::2", 58, 128));
	assert_true(policy_memory(f.p) > 0);
	unload(&f);
}

static void test_bad_queries_match_nothing(void **state)
{
	struct fixture f = { 0 };
	uint8_t a[16] = { 10 };
	struct policy_query q = { .family = 5, .proto = 6, .src = a, .dst = a };

	(void)state;
	load(&f, NODE ZONES "rules = ( { name = \"all\"; action = \"accept\"; } );\n");
	assert_null(policy_match(f.p, &q));
	assert_null(policy_match_linear(f.c, &q));
	q.family = 4;
	q.zone_from = 200; /* beyond the zone table: unknown */
	assert_string_equal(policy_match(f.p, &q)->name, "all");
	assert_null(policy_match(NULL, &q));
	assert_null(policy_match(f.p, NULL));
	policy_free(NULL);
	unload(&f);
}

static void test_hash_stable_and_content_sensitive(void **state)
{
	struct fixture a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

	(void)state;
	load_file(&a);
	load_file(&b);
	assert_true(policy_hash(a.p) != 0);
	assert_true(policy_hash(a.p) == policy_hash(b.p));
	load(&c, NODE ZONES "rules = ( { name = \"r\"; service = \"tcp/80\"; action = \"accept\"; } );\n");
	load(&d, NODE ZONES "rules = ( { name = \"r\"; service = \"tcp/81\"; action = \"accept\"; } );\n");
	assert_true(policy_hash(c.p) != policy_hash(d.p));
	unload(&a);
	unload(&b);
	unload(&c);
	load(&c, NODE ZONES "\n\nrules = ( { name = \"r\";\n service = \"tcp/81\"; action = \"accept\"; } );\n");
	/* Layout (line numbers) is not content. */
	assert_true(policy_hash(c.p) == policy_hash(d.p));
	unload(&c);
	unload(&d);
}

/* ------------------------------------------------------------------ */
/* Property test: compiled == linear on random rule sets                 */

static uint64_t rng;

static uint32_t rnd(void)
{
	/* xorshift64*: fixed seed, same sequence on every run */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}

static uint32_t below(uint32_t n)
{
	return n ? rnd() % n : 0;
}

#define RZONES 6

static void rand_prefix(struct cfg_prefix *p)
{
	/* Mostly narrow prefixes in a small space (10.0-3.x.x, fd00-03::),
	 * so ranges overlap and nest; a few wide ones, rarely /0. */
	static const uint8_t len4[] = { 16, 20, 22, 24, 24, 26, 28, 30, 32, 32, 32, 32 };
	static const uint8_t len6[] = { 32, 48, 56, 64, 64, 96, 120, 128, 128, 128 };

	memset(p, 0, sizeof(*p));
	if (below(10) < 7) {
		p->family = 4;
		p->addr[0] = 10;
		p->addr[1] = (uint8_t)below(4);
		p->addr[2] = (uint8_t)rnd();
		p->addr[3] = (uint8_t)rnd();
		p->len = below(100) ? len4[below(sizeof(len4))] : (uint8_t)(below(2) * 8);
	} else {
		p->family = 6;
		p->addr[0] = 0xfd;
		p->addr[1] = (uint8_t)below(4);
		p->addr[7] = (uint8_t)below(4);
		p->addr[14] = (uint8_t)rnd();
		p->addr[15] = (uint8_t)rnd();
		p->len = below(100) ? len6[below(sizeof(len6))] : (uint8_t)(below(2) * 16);
	}
	/* Clear host bits, as the loader guarantees. */
	for (unsigned b = 0; b < 16; b++) {
		unsigned keep = p->len >= (b + 1) * 8 ? 8 : p->len > b * 8 ? p->len - b * 8 : 0;

		p->addr[b] &= (uint8_t)(0xff00u >> keep);
	}
}

static void rand_service(struct cfg_service *s)
{
	static const uint8_t other[] = { 47, 50, 132 };
	uint32_t k = below(10);

	memset(s, 0, sizeof(*s));
	s->port_hi = 65535;
	s->icmp_type = 0xffff;
	if (k < 6) {
		s->proto = below(3) ? 6 : 17;
		if (below(20)) {
			s->port_lo = (uint16_t)(below(3) ? below(1100) : rnd());
			s->port_hi = (uint16_t)(s->port_lo + (below(2) ? 0 : below(200)));
			if (s->port_hi < s->port_lo)
				s->port_hi = 65535;
		}
	} else if (k < 9) {
		s->proto = below(2) ? 1 : 58;
		if (below(3))
			s->icmp_type = (uint16_t)(s->proto == 1 ? below(16) : 126 + below(6));
	} else {
		s->proto = other[below(3)];
	}
}

static struct cfg_prefix *rand_list(unsigned *n)
{
	struct cfg_prefix *l;

	if (below(100) < 15) {
		*n = 0; /* any */
		return NULL;
	}
	*n = 1 + below(3);
	l = calloc(*n, sizeof(*l));
	assert_non_null(l);
	for (unsigned i = 0; i < *n; i++)
		rand_prefix(&l[i]);
	return l;
}

static struct tandem_config *rand_config(unsigned n_rules)
{
	struct tandem_config *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->n_zones = RZONES;
	for (unsigned z = 0; z < RZONES; z++) {
		snprintf(c->zones[z].name, CFG_NAME_MAX, "z%u", z + 1);
		c->zones[z].id = (uint8_t)(z + 1);
	}
	c->rules = calloc(n_rules, sizeof(*c->rules));
	assert_non_null(c->rules);
	c->n_rules = n_rules;
	for (unsigned i = 0; i < n_rules; i++) {
		struct cfg_rule *r = &c->rules[i];

		snprintf(r->name, CFG_NAME_MAX, "r%u", i);
		r->index = (uint16_t)i;
		r->from_zone = (uint8_t)(below(4) == 0 ? 0 : 1 + below(RZONES));
		r->to_zone = (uint8_t)(below(4) == 0 ? 0 : 1 + below(RZONES));
		r->src = rand_list(&r->n_src);
		r->dst = rand_list(&r->n_dst);
		if (below(100) >= 15) {
			r->n_svc = 1 + below(3);
			r->svc = calloc(r->n_svc, sizeof(*r->svc));
			assert_non_null(r->svc);
			for (unsigned k = 0; k < r->n_svc; k++)
				rand_service(&r->svc[k]);
		}
		r->action = (enum rule_action)below(3);
		r->mode = (enum track_mode)below(4);
	}
	return c;
}

/* An address inside p (random host bits) or a random one of its family. */
static void rand_addr_in(const struct cfg_prefix *p, uint8_t family, uint8_t *a)
{
	struct cfg_prefix r;

	memset(a, 0, 16);
	if (p && p->family == family) {
		for (unsigned b = 0; b < (family == 4 ? 4u : 16u); b++) {
			unsigned keep = p->len >= (b + 1) * 8 ? 8 : p->len > b * 8 ? p->len - b * 8 : 0;
			uint8_t mask = (uint8_t)(0xff00u >> keep);

			a[b] = (uint8_t)((p->addr[b] & mask) | (rnd() & ~mask));
		}
		return;
	}
	do
		rand_prefix(&r);
	while (r.family != family);
	r.len = family == 4 ? 32 : 128;
	memcpy(a, r.addr, 16);
	if (below(4) == 0) /* sometimes anywhere at all */
		for (unsigned b = 0; b < (family == 4 ? 4u : 16u); b++)
			a[b] = (uint8_t)rnd();
}

static void rand_query(const struct tandem_config *c, struct policy_query *q,
		       uint8_t *s, uint8_t *d)
{
	static const uint8_t protos[] = { 6, 17, 1, 58, 47, 50, 132, 0, 255 };
	const struct cfg_rule *r = c->n_rules && below(2) ? &c->rules[below(c->n_rules)] : NULL;
	const struct cfg_prefix *ps = NULL, *pd = NULL;

	memset(q, 0, sizeof(*q));
	q->family = below(10) < 6 ? 4 : 6;
	if (r) {
		/* Aim at a rule: its zones, addresses and a service of it. */
		if (r->n_src) {
			ps = &r->src[below(r->n_src)];
			q->family = ps->family;
		}
		if (r->n_dst)
			pd = &r->dst[below(r->n_dst)];
		q->zone_from = r->from_zone ? r->from_zone : (uint8_t)below(RZONES + 2);
		q->zone_to = r->to_zone ? r->to_zone : (uint8_t)below(RZONES + 2);
		if (r->n_svc) {
			const struct cfg_service *sv = &r->svc[below(r->n_svc)];

			q->proto = sv->proto;
			q->dport = (uint16_t)(sv->port_lo + below((uint32_t)sv->port_hi - sv->port_lo + 1));
			q->icmp_type = sv->icmp_type != 0xffff ? sv->icmp_type : (uint16_t)below(256);
		} else {
			q->proto = protos[below(sizeof(protos))];
			q->dport = (uint16_t)rnd();
		}
	} else {
		q->zone_from = (uint8_t)below(RZONES + 2);
		q->zone_to = (uint8_t)below(RZONES + 2);
		q->proto = protos[below(sizeof(protos))];
		q->dport = (uint16_t)(below(2) ? below(1200) : rnd());
		q->icmp_type = (uint16_t)(below(50) ? below(256) : rnd());
	}
	if (q->proto == 1 || q->proto == 58)
		q->dport = 0;
	rand_addr_in(ps, q->family, s);
	rand_addr_in(pd, q->family, d);
	q->src = s;
	q->dst = d;
}

static void check_random(unsigned n_rules, uint64_t seed)
{
	struct tandem_config *c;
	struct policy *p;
	char err[256];
	unsigned hits = 0, distinct = 0, deep = 0;
	unsigned char *seen;

	rng = seed;
	c = rand_config(n_rules);
	seen = calloc(n_rules, 1);
	assert_non_null(seen);
	assert_int_equal(policy_compile(c, &p, err, sizeof(err)), 0);
	for (unsigned i = 0; i < 20000; i++) {
		struct policy_query q;
		uint8_t s[16], d[16];
		const struct cfg_rule *a, *b;

		rand_query(c, &q, s, d);
		a = policy_match(p, &q);
		b = policy_match_linear(c, &q);
		if (a != b)
			fail_msg("%u rules, query %u: compiled %s, linear %s", n_rules,
				 i, a ? a->name : "none", b ? b->name : "none");
		if (a) {
			hits++;
			deep += a->index >= n_rules / 2;
			distinct += !seen[a->index];
			seen[a->index] = 1;
		}
	}
	print_message("%u rules: %u of 20000 queries matched, %u distinct rules, %u in the second half\n",
		      n_rules, hits, distinct, deep);
	/* The queries must exercise matches at every depth and misses too,
	 * not only default deny or one early catch-all rule. */
	assert_true(hits > 2000);
	assert_true(hits < 19500);
	assert_true(distinct >= n_rules / 5);
	assert_true(deep > 1000);
	free(seen);
	policy_free(p);
	config_free(c);
}

static void test_random_50_rules_match_linear(void **state)
{
	(void)state;
	check_random(50, 0x5eed0050u);
}

static void test_random_500_rules_match_linear(void **state)
{
	(void)state;
	check_random(500, 0x5eed0500u);
}

static void test_random_3000_rules_match_linear(void **state)
{
	(void)state;
	check_random(3000, 0x5eed3000u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_config_rules),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_any_fields_match_everything),
		cmocka_unit_test(test_zone_pairs),
		cmocka_unit_test(test_port_ranges_edges),
		cmocka_unit_test(test_icmp_types),
		cmocka_unit_test(test_ipv6_prefixes),
		cmocka_unit_test(test_protocol_only_rules),
		cmocka_unit_test(test_families_kept_apart),
		cmocka_unit_test(test_empty_rule_set_denies),
		cmocka_unit_test(test_bad_queries_match_nothing),
		cmocka_unit_test(test_hash_stable_and_content_sensitive),
		cmocka_unit_test(test_random_50_rules_match_linear),
		cmocka_unit_test(test_random_500_rules_match_linear),
		cmocka_unit_test(test_random_3000_rules_match_linear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
