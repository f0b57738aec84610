/*
 * fuzz_common.h - what the libFuzzer harnesses share: the node
 * configuration they run against (the zones and rules of conf/tandem.conf,
 * so the sample capture's packets meet real rules), its variants, and a
 * reader over the fuzzer's bytes.
 *
 * A harness must be deterministic: everything a run changes (tables,
 * limits, the clock) is made fresh per input; only read-only things
 * (compiled configurations) are built once.
 *
 * Must never: hide a failure of the code under test. A setup step that
 * cannot fail for a fixed input aborts (a broken harness, not a finding).
 */
#ifndef TANDEM_FUZZ_COMMON_H
#define TANDEM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"

/* ---- the fuzzer's bytes ---------------------------------------------- */

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_empty(const struct fz *f)
{
	return f->n == 0;
}

static inline uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint16_t hi = fz_u8(f);
	return (uint16_t)(hi << 8 | fz_u8(f));
}

static inline uint32_t fz_u32(struct fz *f)
{
	uint32_t hi = fz_u16(f);
	return hi << 16 | fz_u16(f);
}

/* Up to want bytes (fewer at the end of the input). */
static inline const uint8_t *fz_bytes(struct fz *f, size_t want, size_t *got)
{
	size_t k = want < f->n ? want : f->n;
	const uint8_t *p = f->p;
	f->p += k;
	f->n -= k;
	*got = k;
	return p;
}

/* A record: 2-byte big-endian length, then that many bytes (or what is
 * left). The bytes are copied to an allocation of exactly their size, so
 * the address sanitizer sees any read past them; free() the result. */
static inline uint8_t *fz_record(struct fz *f, size_t *len)
{
	size_t want = fz_u16(f), got;
	const uint8_t *p = fz_bytes(f, want, &got);
	uint8_t *m = malloc(got ? got : 1);
	if (!m)
		abort();
	if (got)
		memcpy(m, p, got);
	*len = got;
	return m;
}

/* ---- the node configuration ------------------------------------------ */

#define FUZZ_NODE_VARIANTS 4

/* Zones and rules of conf/tandem.conf (trust 10.1/16 fd00:1::/64 on veth-c,
 * untrust 10.2/16 fd00:2::/64 on veth-s, dmz 10.3/16 on veth-d); the
 * variants change the table size and the node-wide switches. */
static inline void fuzz_node_conf_text(unsigned variant, char *out, size_t n)
{
	static const char *const vary[FUZZ_NODE_VARIANTS] = {
		/* defaults, a small table */
		"table = { max_sessions = 64; };\n",
		/* Junos no-syn-check/no-sequence-check, RST kept, FIN ends,
		 * MSS clamping, a tiny table that evicts nothing and ages
		 * early, reload = flush */
		"table = { max_sessions = 16; evict_unreplied = false; };\n"
		"tcp = { syn_check = false; sequence_check = false;"
		" rst_invalidate = false; fin_invalidate = true; mss = 536; };\n"
		"ageing = { high_watermark = 50; low_watermark = 20; early_ageout = 2; };\n"
		"reload = \"flush\";\n",
		/* short timeouts and keepalive probes that fire soon */
		"table = { max_sessions = 32; };\n"
		"timeouts = { tcp_initial = 4; tcp_established = 60; tcp_wait = 4;"
		" tcp_time_wait = 1; tcp_closed = 1; udp = 4; icmp = 4; other = 4; };\n"
		"tcp = { mss = 1200; };\n"
		"keepalive = { offsets = [50, 30, 10, 5]; max_lifetime = 0; };\n",
		/* ageing off, a larger table */
		("table = { max_sessions = 256; };\n"
		 "ageing = { high_watermark = 100; low_watermark = 0; };\n"),
	};
	snprintf(out, n,
		 "node = { name = \"fz\"; id = 9; };\n"
		 "datapath = { queues = 2; };\n"
		 "%s"
		 "control = { socket = \"/nonexistent/fuzz.sock\"; };\n"
		 "zones = (\n"
		 "  { name = \"trust\"; interfaces = [\"veth-c\"]; networks = [\"10.1.0.0/16\", \"fd00:1::/64\"]; },\n"
		 "  { name = \"untrust\"; interfaces = [\"veth-s\"]; networks = [\"10.2.0.0/16\", \"fd00:2::/64\"]; },\n"
		 "  { name = \"dmz\"; interfaces = [\"veth-d\"]; networks = [\"10.3.0.0/16\", \"fd00:3::/64\"]; }\n"
		 ");\n"
		 "addresses = { clients = [\"10.1.0.0/16\", \"fd00:1::/64\"];"
		 " web_servers = [\"10.2.0.10\", \"fd00:2::10\"];"
		 " dns_servers = [\"10.2.0.53\", \"fd00:2::53\"]; };\n"
		 "services = { http = \"tcp/80\"; https = \"tcp/443\"; web = [\"http\", \"https\"];"
		 " dns = [\"udp/53\", \"tcp/53\"]; ping = [\"icmp/echo-request\", \"icmpv6/echo-request\"]; };\n"
		 "rules = (\n"
		 "  { name = \"web\"; from = \"trust\"; to = \"untrust\"; source = \"clients\";"
		 "    destination = \"web_servers\"; service = \"web\"; action = \"accept\"; tracking = \"normal\"; },\n"
		 "  { name = \"web-strict\"; from = \"trust\"; to = \"untrust\"; destination = \"10.2.0.11\";"
		 "    service = \"tcp/80\"; action = \"accept\"; tracking = \"strict\"; },\n"
		 "  { name = \"web-loose\"; from = \"trust\"; to = \"untrust\"; destination = \"10.2.0.12\";"
		 "    service = \"tcp/80\"; action = \"accept\"; tracking = \"loose\";"
		 "    tcp = { syn_check = true; sequence_check = false; mss = 0; }; },\n"
		 "  { name = \"ssh-ka\"; from = \"trust\"; to = \"untrust\"; destination = \"10.2.0.13\";"
		 "    service = \"tcp/22\"; action = \"accept\"; keepalive = true; idle_timeout = 3600; },\n"
		 "  { name = \"dns\"; from = \"trust\"; to = \"untrust\"; destination = \"dns_servers\";"
		 "    service = \"dns\"; action = \"accept\"; },\n"
		 "  { name = \"ping\"; from = \"trust\"; to = \"untrust\"; service = \"ping\";"
		 "    action = \"accept\"; tracking = \"strict\"; },\n"
		 "  { name = \"ping-loose\"; from = \"trust\"; to = \"untrust\"; destination = \"10.2.0.12\";"
		 "    service = \"icmp\"; action = \"accept\"; tracking = \"loose\"; },\n"
		 "  { name = \"stateless\"; from = \"trust\"; to = \"untrust\"; destination = \"10.2.0.20\";"
		 "    service = \"udp/5000-5100\"; action = \"accept\"; tracking = \"off\"; },\n"
		 "  { name = \"stateless-return\"; from = \"untrust\"; to = \"trust\"; source = \"10.2.0.20\";"
		 "    service = \"udp\"; action = \"accept\"; tracking = \"off\"; },\n"
		 "  { name = \"limited\"; from = \"trust\"; to = \"untrust\"; destination = \"10.2.0.30\";"
		 "    service = \"tcp/8080\"; action = \"accept\"; limit_per_source = 3; limit_per_destination = 5; },\n"
		 "  { name = \"short-udp\"; from = \"trust\"; to = \"untrust\"; destination = \"10.2.0.40\";"
		 "    service = \"udp/9000-9100\"; action = \"accept\"; idle_timeout = 10; },\n"
		 "  { name = \"gre\"; from = \"trust\"; to = \"untrust\"; service = \"proto/47\"; action = \"accept\"; },\n"
		 "  { name = \"v6-any\"; from = \"trust\"; to = \"untrust\"; destination = \"fd00:2::/64\";"
		 "    action = \"accept\"; tracking = \"loose\"; },\n"
		 "  { name = \"icmp-back\"; from = \"untrust\"; to = \"trust\"; service = [\"icmp\", \"icmpv6\"];"
		 "    action = \"accept\"; tracking = \"normal\"; },\n"
		 "  { name = \"block-telnet\"; from = \"any\"; to = \"any\"; service = \"tcp/23\"; action = \"reject\"; },\n"
		 "  { name = \"deny-dmz\"; from = \"trust\"; to = \"dmz\"; action = \"drop\"; log = true; }\n"
		 ");\n",
		 vary[variant % FUZZ_NODE_VARIANTS]);
}

/* A loaded and compiled configuration; aborts on failure (a fixed text). */
static inline void fuzz_node_conf(unsigned variant, struct tandem_config **cfg,
				  struct policy **pol)
{
	char text[8192], err[512] = "";
	fuzz_node_conf_text(variant, text, sizeof(text));
	if (config_load_string(text, cfg, err, sizeof(err)) < 0 ||
	    policy_compile(*cfg, pol, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz: node config variant %u: %s\n", variant, err);
		abort();
	}
}

#endif
