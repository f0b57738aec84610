/*
 * reject.h - the answer of a `reject` rule: a TCP RST for TCP, an ICMP /
 * ICMPv6 "administratively prohibited" unreachable otherwise, sent back to
 * the packet's source from the firewall's namespace through a raw socket.
 *
 * Rejects happen only on a policy miss, never for packets of a session, so
 * the one sendto per reject stays off the established-traffic path. Must
 * never: answer an ICMP error, a RST, or a non-first fragment (RFC 1122).
 */
#ifndef TANDEM_REJECT_H
#define TANDEM_REJECT_H

#include <stddef.h>
#include <stdint.h>

#include "pkt.h"

struct rejector {
	int fd4, fd6; /* raw sockets, -1 when not open */
};

/* Open the raw sockets. 0 or -errno. */
int reject_open(struct rejector *r);
void reject_close(struct rejector *r);

/* Build the answer to p into buf (>= 1280 bytes). Returns its length, or 0
 * when p must not be answered. Pure: used by tests without sockets. */
size_t reject_build(const struct pkt *p, uint8_t *buf, size_t size);

/* Build and send. 0, or -errno from sendto, or -ENOMSG when not answered. */
int reject_send(struct rejector *r, const struct pkt *p);

/* Send a packet the node built (a keepalive probe) to dst. 0 or -errno. */
int rejector_send_raw(struct rejector *r, uint8_t family, const uint8_t *dst,
		      const uint8_t *buf, size_t len);

#endif
