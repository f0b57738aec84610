/*
 * fib.h - what the AF_XDP data path needs of the kernel's routing: routes
 * out of the zone interfaces, the neighbours' link addresses, the zone
 * interfaces' own MAC addresses, and this host's addresses.
 *
 * The control thread builds a struct fib from netlink dumps (fib_build)
 * and publishes it; workers only read a published fib (fib_route,
 * fib_neigh), which is never changed after publication. Lookups are
 * allocation- and lock-free: a linear longest-prefix scan over at most
 * FIB_MAX_ROUTES routes (a firewall between a few zones has a handful) and
 * an open-addressed neighbour table.
 *
 * Addresses are 16 bytes everywhere; IPv4 as ::ffff:a.b.c.d.
 */
#ifndef TANDEM_FIB_H
#define TANDEM_FIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIB_MAX_ROUTES 256
#define FIB_MAX_LINKS 16
#define FIB_NEIGH_SLOTS 8192       /* power of two; filled to half at most */
#define FIB_MAX_LOCAL 1024

struct fib_route {
	uint8_t dst[16];
	uint8_t gw[16];
	uint8_t plen;            /* IPv4 prefixes counted in the mapped form: +96 */
	uint8_t family;          /* AF_INET, AF_INET6 */
	bool has_gw;
	int oif;
	uint32_t metric;
};

struct fib_neigh {
	int ifindex;             /* 0 = empty slot */
	uint8_t addr[16];
	uint8_t mac[6];
};

struct fib_link {
	int ifindex;
	uint8_t mac[6];
	unsigned mtu;
};

struct fib {
	uint64_t gen;
	unsigned nroutes, nneigh, nlinks, nlocal;
	unsigned neigh_dropped;  /* not stored: table half full */
	struct fib_route routes[FIB_MAX_ROUTES];
	struct fib_link links[FIB_MAX_LINKS];
	struct fib_neigh neigh[FIB_NEIGH_SLOTS];
	uint8_t local[FIB_MAX_LOCAL][16];
};

/* 16-byte form of an address of `family` (4 or 16 bytes at a). */
void fib_addr16(uint8_t out[16], int family, const void *a);

/* Building (control thread, tests). 0 or -ENOSPC. */
int fib_add_route(struct fib *f, int family, const uint8_t dst[16],
		  unsigned plen, const uint8_t *gw16, int oif, uint32_t metric);
int fib_add_neigh(struct fib *f, int ifindex, const uint8_t addr[16],
		  const uint8_t mac[6]);

/* Longest prefix, lowest metric among equals; NULL = no route. */
const struct fib_route *fib_route(const struct fib *f, const uint8_t dst[16]);
/* The neighbour's MAC, or NULL. */
const uint8_t *fib_neigh(const struct fib *f, int ifindex,
			 const uint8_t addr[16]);
const struct fib_link *fib_link(const struct fib *f, int ifindex);

/*
 * Fill f (zeroed by the caller) from the kernel of the calling namespace:
 * links, routes and neighbours on the interfaces ifindexes[0..n-1] (main
 * table, unicast routes), every local address of the host. 0 or -errno
 * with a message in err.
 */
int fib_build(struct fib *f, const int *ifindexes, unsigned n, char *err,
	      size_t errlen);

/* Ask the kernel to resolve addr on ifindex and keep it resolved (a
 * managed neighbour entry). 0, or -errno (-EEXIST: an entry is there). */
int fib_neigh_resolve(int ifindex, const uint8_t addr[16]);

#endif
