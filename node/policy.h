/*
 * policy.h - the compiled rule set.
 *
 * policy_compile() turns the ordered rules of a config into a classifier
 * whose lookup cost does not grow linearly with the number of rules
 * (bit-vector classification: per field, sorted elementary intervals each
 * carrying the bitset of rules that cover it; the first matching rule is the
 * lowest set bit of the AND, found through a summary bitset of non-zero
 * words). It is evaluated only on a session miss (and for every packet of
 * rules with tracking off).
 *
 * A compiled policy is immutable and may be read by every worker at once.
 */
#ifndef TANDEM_POLICY_H
#define TANDEM_POLICY_H

#include <stdint.h>
#include <stddef.h>

#include "config.h"

struct policy;

/* What a packet presents to the classifier. */
struct policy_query {
	uint8_t family;    /* 4 or 6 */
	uint8_t proto;
	uint8_t zone_from, zone_to;
	const uint8_t *src, *dst; /* 16 bytes each, IPv4 in the first 4 */
	uint16_t dport;    /* TCP/UDP destination port */
	uint16_t icmp_type;/* ICMP/ICMPv6 type */
};

/* Compile; the config must outlive the policy (rules point into it).
 * Returns 0 and *ret, or -errno with a message in err. */
int policy_compile(const struct tandem_config *c, struct policy **ret,
		   char *err, size_t errlen);
void policy_free(struct policy *p); /* accepts NULL */

/* First matching rule, or NULL (default deny). */
const struct cfg_rule *policy_match(const struct policy *p,
				    const struct policy_query *q);

/* The same answer by a linear scan of the rules: reference for tests/bench. */
const struct cfg_rule *policy_match_linear(const struct tandem_config *c,
					   const struct policy_query *q);

/* 64-bit hash of the rule set's content (for `show policy`, sync). */
uint64_t policy_hash(const struct policy *p);
size_t policy_memory(const struct policy *p);

#endif
