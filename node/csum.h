/*
 * csum.h - Internet checksums and big-endian stores for the packets the
 * node builds itself (reject answers, keepalive probes).
 */
#ifndef TANDEM_CSUM_H
#define TANDEM_CSUM_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t csum_add(uint32_t sum, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	return sum;
}

static inline uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* L4 checksum over the pseudo-header of (src, dst, proto, len). */
static inline uint16_t l4_csum(int family, const uint8_t *src, const uint8_t *dst,
			uint8_t proto, const uint8_t *l4, size_t len)
{
	size_t alen = family == 4 ? 4 : 16;
	uint32_t sum = csum_add(0, src, alen);
	sum = csum_add(sum, dst, alen);
	sum += proto;
	sum += (uint32_t)len;
	sum = csum_add(sum, l4, len);
	return csum_fold(sum);
}

static inline void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b + 2, (uint16_t)v);
}

#endif
