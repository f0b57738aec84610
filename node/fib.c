/*
 * fib.c - routes, neighbours, links and local addresses for the AF_XDP
 * data path (see fib.h). Lookups run on workers; fib_build and
 * fib_neigh_resolve on the control thread.
 */
#include "fib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fib_addr16(uint8_t out[16], int family, const void *a)
{
	if (family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, a, 4);
	} else {
		memcpy(out, a, 16);
	}
}

static bool prefix_match(const uint8_t *a, const uint8_t *p, unsigned plen)
{
	unsigned full = plen / 8, rest = plen % 8;
	if (memcmp(a, p, full) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t m = (uint8_t)(0xff << (8 - rest));
	return (a[full] & m) == (p[full] & m);
}

int fib_add_route(struct fib *f, int family, const uint8_t dst[16],
		  unsigned plen, const uint8_t *gw16, int oif, uint32_t metric)
{
	if (f->nroutes >= FIB_MAX_ROUTES)
		return -ENOSPC;
	struct fib_route *r = &f->routes[f->nroutes++];
	memset(r, 0, sizeof(*r));
	r->family = (uint8_t)family;
	r->plen = (uint8_t)(family == AF_INET ? plen + 96 : plen);
	memcpy(r->dst, dst, 16);
	/* keep only the prefix bits, so equal prefixes compare equal */
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = r->plen > i * 8 ? r->plen - i * 8 : 0;
		if (bits < 8)
			r->dst[i] &= (uint8_t)(bits ? 0xff << (8 - bits) : 0);
	}
	if (gw16) {
		memcpy(r->gw, gw16, 16);
		r->has_gw = true;
	}
	r->oif = oif;
	r->metric = metric;
	return 0;
}

const struct fib_route *fib_route(const struct fib *f, const uint8_t dst[16])
{
	const struct fib_route *best = NULL;
	for (unsigned i = 0; i < f->nroutes; i++) {
		const struct fib_route *r = &f->routes[i];
		if (!prefix_match(dst, r->dst, r->plen))
			continue;
		if (!best || r->plen > best->plen ||
		    (r->plen == best->plen && r->metric < best->metric))
			best = r;
	}
	return best;
}

static uint32_t neigh_hash(int ifindex, const uint8_t a[16])
{
	uint32_t w[4];
	memcpy(w, a, 16);
	uint64_t h = (uint64_t)(uint32_t)ifindex * UINT64_C(0x9e3779b97f4a7c15);
	for (int i = 0; i < 4; i++)
		h = (h ^ w[i]) * UINT64_C(0xbf58476d1ce4e5b9);
	return (uint32_t)(h >> 32);
}

int fib_add_neigh(struct fib *f, int ifindex, const uint8_t addr[16],
		  const uint8_t mac[6])
{
	uint32_t i = neigh_hash(ifindex, addr) & (FIB_NEIGH_SLOTS - 1);
	for (;; i = (i + 1) & (FIB_NEIGH_SLOTS - 1)) {
		struct fib_neigh *n = &f->neigh[i];
		if (n->ifindex == ifindex && memcmp(n->addr, addr, 16) == 0) {
			memcpy(n->mac, mac, 6);
			return 0;
		}
		if (n->ifindex == 0)
			break;
	}
	if (f->nneigh >= FIB_NEIGH_SLOTS / 2) {
		f->neigh_dropped++;
		return -ENOSPC;
	}
	struct fib_neigh *n = &f->neigh[i];
	n->ifindex = ifindex;
	memcpy(n->addr, addr, 16);
	memcpy(n->mac, mac, 6);
	f->nneigh++;
	return 0;
}

const uint8_t *fib_neigh(const struct fib *f, int ifindex, const uint8_t addr[16])
{
	uint32_t i = neigh_hash(ifindex, addr) & (FIB_NEIGH_SLOTS - 1);
	for (;; i = (i + 1) & (FIB_NEIGH_SLOTS - 1)) {
		const struct fib_neigh *n = &f->neigh[i];
		if (n->ifindex == 0)
			return NULL;
		if (n->ifindex == ifindex && memcmp(n->addr, addr, 16) == 0)
			return n->mac;
	}
}

const struct fib_link *fib_link(const struct fib *f, int ifindex)
{
	for (unsigned i = 0; i < f->nlinks; i++)
		if (f->links[i].ifindex == ifindex)
			return &f->links[i];
	return NULL;
}

/* ---- netlink dumps (control thread) ----------------------------------- */

struct dump {
	struct fib *f;
	const int *ifx;
	unsigned n;
	int err;
};

static bool zone_if(const struct dump *d, int ifindex)
{
	for (unsigned i = 0; i < d->n; i++)
		if (d->ifx[i] == ifindex)
			return true;
	return false;
}

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t t = mnl_attr_get_type(a);
	if (t < 64)
		tb[t] = a;
	return MNL_CB_OK;
}

static int on_link(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[64] = {0};
	mnl_attr_parse(nlh, sizeof(*ifi), attr_cb, tb);
	if (!zone_if(d, ifi->ifi_index) || !tb[IFLA_ADDRESS] ||
	    mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) != 6 ||
	    d->f->nlinks >= FIB_MAX_LINKS)
		return MNL_CB_OK;
	struct fib_link *l = &d->f->links[d->f->nlinks++];
	l->ifindex = ifi->ifi_index;
	memcpy(l->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
	l->mtu = tb[IFLA_MTU] ? mnl_attr_get_u32(tb[IFLA_MTU]) : 1500;
	return MNL_CB_OK;
}

static int on_route(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	const struct rtmsg *rt = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[64] = {0};
	mnl_attr_parse(nlh, sizeof(*rt), attr_cb, tb);
	uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rt->rtm_table;
	if (table != RT_TABLE_MAIN || rt->rtm_type != RTN_UNICAST || !tb[RTA_OIF])
		return MNL_CB_OK;
	int oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	if (!zone_if(d, oif))
		return MNL_CB_OK;
	size_t alen = rt->rtm_family == AF_INET ? 4 : 16;
	uint8_t dst[16] = {0}, gw[16];
	uint8_t raw[16] = {0};
	if (tb[RTA_DST] && mnl_attr_get_payload_len(tb[RTA_DST]) == alen)
		memcpy(raw, mnl_attr_get_payload(tb[RTA_DST]), alen);
	fib_addr16(dst, rt->rtm_family, raw);
	bool has_gw = tb[RTA_GATEWAY] &&
		      mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == alen;
	if (has_gw)
		fib_addr16(gw, rt->rtm_family, mnl_attr_get_payload(tb[RTA_GATEWAY]));
	uint32_t metric = tb[RTA_PRIORITY] ? mnl_attr_get_u32(tb[RTA_PRIORITY]) : 0;
	if (fib_add_route(d->f, rt->rtm_family, dst, rt->rtm_dst_len,
			  has_gw ? gw : NULL, oif, metric) < 0)
		d->err = -ENOSPC;
	return MNL_CB_OK;
}

static int on_neigh(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[64] = {0};
	mnl_attr_parse(nlh, sizeof(*nd), attr_cb, tb);
	/* usable: confirmed or not yet re-confirmed; not INCOMPLETE/FAILED */
	const uint16_t ok = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE |
			    NUD_PERMANENT | NUD_NOARP;
	size_t alen = nd->ndm_family == AF_INET ? 4 : 16;
	if (!(nd->ndm_state & ok) || !zone_if(d, nd->ndm_ifindex) ||
	    !tb[NDA_DST] || mnl_attr_get_payload_len(tb[NDA_DST]) != alen ||
	    !tb[NDA_LLADDR] || mnl_attr_get_payload_len(tb[NDA_LLADDR]) != 6)
		return MNL_CB_OK;
	uint8_t a[16];
	fib_addr16(a, nd->ndm_family, mnl_attr_get_payload(tb[NDA_DST]));
	fib_add_neigh(d->f, nd->ndm_ifindex, a, mnl_attr_get_payload(tb[NDA_LLADDR]));
	return MNL_CB_OK;
}

static int on_addr(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[64] = {0};
	mnl_attr_parse(nlh, sizeof(*ifa), attr_cb, tb);
	size_t alen = ifa->ifa_family == AF_INET ? 4 : 16;
	const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != alen)
		return MNL_CB_OK;
	if (d->f->nlocal >= FIB_MAX_LOCAL) {
		d->err = -ENOSPC;
		return MNL_CB_OK;
	}
	fib_addr16(d->f->local[d->f->nlocal++], ifa->ifa_family,
		   mnl_attr_get_payload(a));
	return MNL_CB_OK;
}

static int dump(struct mnl_socket *nl, uint16_t type, uint8_t family,
		mnl_cb_t cb, struct dump *d)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	uint32_t seq = (uint32_t)time(NULL) ^ type;
	nlh->nlmsg_seq = seq;
	/* each request type's own header; all start with the family byte */
	size_t hdr = type == RTM_GETLINK ? sizeof(struct ifinfomsg)
		   : type == RTM_GETADDR ? sizeof(struct ifaddrmsg)
		   : type == RTM_GETNEIGH ? sizeof(struct ndmsg)
		   : sizeof(struct rtmsg);
	uint8_t *h = mnl_nlmsg_put_extra_header(nlh, hdr);
	h[0] = family;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	unsigned portid = mnl_socket_get_portid(nl);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		int r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, d);
		if (r == MNL_CB_STOP)
			return 0;
		if (r < 0)
			return -errno;
	}
}

int fib_build(struct fib *f, const int *ifindexes, unsigned n, char *err,
	      size_t errlen)
{
	struct dump d = {.f = f, .ifx = ifindexes, .n = n};
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		snprintf(err, errlen, "netlink: %s", strerror(-r));
		if (nl)
			mnl_socket_close(nl);
		return r;
	}
	static const struct {
		uint16_t type;
		uint8_t family;
		mnl_cb_t cb;
		const char *what;
	} steps[] = {
		{RTM_GETLINK, AF_UNSPEC, on_link, "links"},
		{RTM_GETROUTE, AF_INET, on_route, "IPv4 routes"},
		{RTM_GETROUTE, AF_INET6, on_route, "IPv6 routes"},
		{RTM_GETNEIGH, AF_INET, on_neigh, "IPv4 neighbours"},
		{RTM_GETNEIGH, AF_INET6, on_neigh, "IPv6 neighbours"},
		{RTM_GETADDR, AF_INET, on_addr, "IPv4 addresses"},
		{RTM_GETADDR, AF_INET6, on_addr, "IPv6 addresses"},
	};
	int r = 0;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && r == 0; i++) {
		r = dump(nl, steps[i].type, steps[i].family, steps[i].cb, &d);
		if (r < 0)
			snprintf(err, errlen, "netlink dump of %s: %s",
				 steps[i].what, strerror(-r));
	}
	mnl_socket_close(nl);
	if (r == 0 && d.err) {
		snprintf(err, errlen, "more routes or local addresses than the "
			 "data path holds (%u routes, %u addresses)",
			 FIB_MAX_ROUTES, FIB_MAX_LOCAL);
		r = d.err;
	}
	return r;
}

int fib_neigh_resolve(int ifindex, const uint8_t addr[16])
{
	static const uint8_t v4pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	bool v4 = memcmp(addr, v4pre, 12) == 0;
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	nlh->nlmsg_seq = 1;
	struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = v4 ? AF_INET : AF_INET6;
	nd->ndm_ifindex = ifindex;
	nd->ndm_state = NUD_NONE;
	mnl_attr_put(nlh, NDA_DST, v4 ? 4 : 16, v4 ? addr + 12 : addr);
	mnl_attr_put_u32(nlh, NDA_FLAGS_EXT, NTF_EXT_MANAGED);
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	int r = 0;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
	} else {
		char ack[MNL_SOCKET_BUFFER_SIZE];
		ssize_t n = mnl_socket_recvfrom(nl, ack, sizeof(ack));
		if (n < 0)
			r = -errno;
		else if (mnl_cb_run(ack, (size_t)n, 1, mnl_socket_get_portid(nl),
				    NULL, NULL) < 0)
			r = -errno;
	}
	mnl_socket_close(nl);
	return r;
}
