/*
 * test_xdp_prog.c - the AF_XDP data path's XDP program, run by the kernel
 * on hand-made frames (BPF_PROG_TEST_RUN). Needs CAP_BPF (root); skipped
 * otherwise.
 *
 * The program is loaded with the miss action XDP_TX, which the real
 * program never returns on its own: with no socket bound, a frame meant
 * for user space comes back as XDP_TX, a frame left to the kernel as
 * XDP_PASS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "xdp_prog.h"

#define TO_USER XDP_TX
static const uint8_t OURS[6] = {0x02, 0x74, 0x64, 0x02, 0x01, 0x00};

struct fx {
	int local, xsk, prog;
};

static int setup(void **state)
{
	static struct fx f;
	f.local = xdp_local_map_create();
	if (f.local < 0) {
		fprintf(stderr, "# skipped: no BPF maps here (%s)\n",
			strerror(-f.local));
		*state = NULL;
		return 0;
	}
	f.xsk = xdp_xsk_map_create(1);
	assert_true(f.xsk >= 0);
	static char log[65536];
	f.prog = xdp_prog_load(OURS, f.local, f.xsk, TO_USER, log, sizeof(log));
	if (f.prog < 0)
		fprintf(stderr, "verifier: %s\n", log);
	assert_true(f.prog >= 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f) {
		close(f->prog);
		close(f->xsk);
		close(f->local);
	}
	return 0;
}

/* Ethernet + IPv4 (+ 8 bytes of UDP), dst MAC unicast unless group. */
static size_t frame4(uint8_t *b, const char *dst, uint8_t ttl, bool group)
{
	memset(b, 0, 64);
	memcpy(b, OURS, 6);
	if (group)
		b[0] |= 0x01;
	b[6] = 0x02;
	b[12] = 0x08;
	b[13] = 0x00;
	uint8_t *ip = b + 14;
	ip[0] = 0x45;
	ip[3] = 28;
	ip[8] = ttl;
	ip[9] = 17;
	inet_pton(AF_INET, "10.1.0.2", ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	return 14 + 28;
}

static size_t frame6(uint8_t *b, const char *dst, uint8_t hops)
{
	memset(b, 0, 96);
	memcpy(b, OURS, 6);
	b[6] = 0x02;
	b[12] = 0x86;
	b[13] = 0xdd;
	uint8_t *ip = b + 14;
	ip[0] = 0x60;
	ip[5] = 8;
	ip[6] = 17;
	ip[7] = hops;
	inet_pton(AF_INET6, "fd00:1::2", ip + 8);
	inet_pton(AF_INET6, dst, ip + 24);
	return 14 + 48;
}

static unsigned run(struct fx *f, uint8_t *frame, size_t len)
{
	uint8_t out[256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame,
		    .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	int r = bpf_prog_test_run_opts(f->prog, &o);
	assert_int_equal(r, 0);
	return o.retval;
}

static void test_forwarded_go_to_user_space(void **state)
{
	struct fx *f = *state;
	if (!f)
		skip();
	uint8_t b[128];
	assert_int_equal(run(f, b, frame4(b, "10.2.0.2", 64, false)), TO_USER);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.2", 2, false)), TO_USER);
	assert_int_equal(run(f, b, frame6(b, "fd00:2::2", 64)), TO_USER);
	assert_int_equal(run(f, b, frame6(b, "2001:db8::1", 2)), TO_USER);
	/* fe00::/9 is not link-local */
	assert_int_equal(run(f, b, frame6(b, "fec0::1", 64)), TO_USER);
}

static void test_kernel_keeps_what_is_not_forwarded(void **state)
{
	struct fx *f = *state;
	if (!f)
		skip();
	uint8_t b[128];
	size_t n = frame4(b, "10.2.0.2", 64, true);         /* group MAC */
	assert_int_equal(run(f, b, n), XDP_PASS);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.2", 1, false)), XDP_PASS);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.2", 0, false)), XDP_PASS);
	assert_int_equal(run(f, b, frame6(b, "fd00:2::2", 1)), XDP_PASS);
	assert_int_equal(run(f, b, frame6(b, "fe80::1", 64)), XDP_PASS);
	assert_int_equal(run(f, b, frame6(b, "febf::1", 64)), XDP_PASS);
	/* another host's MAC (flooded by a bridge), any byte of it */
	for (int i = 0; i < 6; i++) {
		n = frame4(b, "10.2.0.2", 64, false);
		b[i] ^= 0x20;
		assert_int_equal(run(f, b, n), XDP_PASS);
		n = frame6(b, "fd00:2::2", 64);
		b[i] ^= 0x04;
		assert_int_equal(run(f, b, n), XDP_PASS);
	}
	n = frame4(b, "10.2.0.2", 64, false);
	memset(b, 0xff, 6);
	assert_int_equal(run(f, b, n), XDP_PASS);
	/* ARP */
	n = frame4(b, "10.2.0.2", 64, false);
	b[12] = 0x08;
	b[13] = 0x06;
	assert_int_equal(run(f, b, n), XDP_PASS);
	/* VLAN tag */
	b[12] = 0x81;
	b[13] = 0x00;
	assert_int_equal(run(f, b, n), XDP_PASS);
}

static void test_short_frames_pass(void **state)
{
	struct fx *f = *state;
	if (!f)
		skip();
	uint8_t b[128];
	size_t n = frame4(b, "10.2.0.2", 64, false);
	/* BPF_PROG_TEST_RUN wants at least an Ethernet header */
	for (size_t len = 14; len < 14 + 20; len++)
		assert_int_equal(run(f, b, len), XDP_PASS);
	assert_int_equal(run(f, b, n), TO_USER);
	n = frame6(b, "fd00:2::2", 64);
	for (size_t len = 34; len < 14 + 40; len++)
		assert_int_equal(run(f, b, len), XDP_PASS);
}

static void key4(uint8_t k[16], const char *a)
{
	memset(k, 0, 16);
	k[10] = k[11] = 0xff;
	inet_pton(AF_INET, a, k + 12);
}

static void test_local_addresses_stay_with_the_kernel(void **state)
{
	struct fx *f = *state;
	if (!f)
		skip();
	uint8_t keys[3][16];
	key4(keys[0], "10.2.0.1");
	key4(keys[1], "10.2.0.254");
	inet_pton(AF_INET6, "fd00:2::1", keys[2]);
	assert_int_equal(xdp_local_sync(f->local, (const uint8_t (*)[16])keys, 3), 0);
	uint8_t b[128];
	assert_int_equal(run(f, b, frame4(b, "10.2.0.1", 64, false)), XDP_PASS);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.254", 64, false)), XDP_PASS);
	assert_int_equal(run(f, b, frame6(b, "fd00:2::1", 64)), XDP_PASS);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.2", 64, false)), TO_USER);
	/* the virtual address moves away: only it goes */
	assert_int_equal(xdp_local_sync(f->local, (const uint8_t (*)[16])keys, 1), 0);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.1", 64, false)), XDP_PASS);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.254", 64, false)), TO_USER);
	assert_int_equal(run(f, b, frame6(b, "fd00:2::1", 64)), TO_USER);
	/* many: the sync removes in rounds */
	static uint8_t many[300][16];
	for (unsigned i = 0; i < 300; i++) {
		char a[32];
		snprintf(a, sizeof(a), "10.9.%u.%u", i / 250, i % 250 + 1);
		key4(many[i], a);
	}
	assert_int_equal(xdp_local_sync(f->local, (const uint8_t (*)[16])many, 300), 0);
	assert_int_equal(run(f, b, frame4(b, "10.9.1.7", 64, false)), XDP_PASS);
	assert_int_equal(run(f, b, frame4(b, "10.2.0.1", 64, false)), TO_USER);
	assert_int_equal(xdp_local_sync(f->local, NULL, 0), 0);
	assert_int_equal(run(f, b, frame4(b, "10.9.1.7", 64, false)), TO_USER);
	uint8_t k[16];
	assert_int_not_equal(bpf_map_get_next_key(f->local, NULL, k), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forwarded_go_to_user_space),
		cmocka_unit_test(test_kernel_keeps_what_is_not_forwarded),
		cmocka_unit_test(test_short_frames_pass),
		cmocka_unit_test(test_local_addresses_stay_with_the_kernel),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
