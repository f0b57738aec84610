/*
 * mss.h - TCP MSS clamping of SYN and SYN/ACK segments (Junos tcp-mss,
 * iptables TCPMSS --set-mss), in place.
 */
#ifndef TANDEM_MSS_H
#define TANDEM_MSS_H

#include <stdbool.h>
#include <stdint.h>

#include "pkt.h"

/* The MSS a segment should carry when `clamp` applies: 0 when it carries
 * none or already no more than clamp. */
uint16_t mss_over(const struct pkt *p, uint16_t clamp);

/* Rewrite the MSS option of the parsed segment p at l3 (the same bytes p
 * was parsed from) to mss. The TCP checksum is updated incrementally
 * (RFC 1624), so a wrong one stays wrong; when the kernel left it
 * partial (csum_partial: only the pseudo-header sum is there, the rest is
 * for the device), the full checksum is computed, as a mangled packet is
 * no longer offloaded. */
void mss_rewrite(uint8_t *l3, const struct pkt *p, uint16_t mss,
		 bool csum_partial);

/* TCP/UDP checksum of the parsed packet is right (any other protocol:
 * true). */
bool l4_csum_ok(const uint8_t *l3, const struct pkt *p);

#endif
