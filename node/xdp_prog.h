/*
 * xdp_prog.h - the XDP program of the AF_XDP data path (pkt_io_xdp.c) and
 * its two maps.
 *
 * The program decides, per received frame, whether tandem-node filters it
 * (redirect to the AF_XDP socket of the frame's receive queue) or the
 * kernel keeps it (XDP_PASS). The kernel keeps:
 *   - frames not addressed to the interface's own MAC (broadcast,
 *     multicast: IPv6 neighbour discovery, VRRP ...; and unicast for
 *     other hosts, which a bridge floods while it has not learnt them),
 *   - anything that is not IPv4 or IPv6 (ARP, LLDP, VLAN-tagged frames ...),
 *   - IPv4 with TTL <= 1 and IPv6 with hop limit <= 1 (the kernel answers
 *     them with ICMP time exceeded, as a router must),
 *   - IPv6 to a link-local address (fe80::/10),
 *   - packets to an address of this host (the local-address map, kept equal
 *     to the kernel's addresses by the control thread: heartbeats, the
 *     virtual addresses, management),
 *   - frames too short to hold the IP header.
 * Everything else is forwarded traffic and goes to user space. When no
 * socket is bound to the queue (node not running, or starting), the
 * program's miss action applies (XDP_PASS: the kernel's forward path and
 * nftables decide, see pkt_io_xdp.c).
 *
 * Written as BPF instructions (no BPF compiler needed to build), verified
 * by the kernel at load time; tests/unit/test_xdp_prog.c runs it on frames
 * through BPF_PROG_TEST_RUN.
 */
#ifndef TANDEM_XDP_PROG_H
#define TANDEM_XDP_PROG_H

#include <stddef.h>
#include <stdint.h>

#define XDP_LOCAL_MAX 1024 /* addresses in the local-address map */

/* Hash map, key = 16-byte address (IPv4 as ::ffff:a.b.c.d), value u8.
 * Returns a map fd or -errno. */
int xdp_local_map_create(void);

/* XSKMAP with `queues` entries (key = receive queue index). fd or -errno. */
int xdp_xsk_map_create(unsigned queues);

/* Load the program for one interface (its MAC) and socket map. miss_action: what a
 * frame meant for user space gets when no socket is bound (XDP_PASS in the
 * node; tests use another code to tell the two ways apart). Returns the
 * program fd or -errno, with the verifier's log in log (may be NULL). */
int xdp_prog_load(const uint8_t mac[6], int local_fd, int xsk_fd,
		  unsigned miss_action, char *log, size_t loglen);

/* Make the local-address map hold exactly addrs[0..n-1] (16-byte keys).
 * Returns 0 or -errno (the map may then hold a mix; call again). */
int xdp_local_sync(int local_fd, const uint8_t (*addrs)[16], unsigned n);

#endif
