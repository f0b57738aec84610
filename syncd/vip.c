/*
 * vip.c - virtual addresses: rtnetlink add/del, GARP, unsolicited NA (see
 * vip.h).
 *
 * Must never: block on anything but the netlink acknowledgement, or send
 * an announcement for an address that is not configured.
 */
#include "vip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>

static int addr_msg(const struct sconf_vip *v, bool add, char *err,
		    size_t errlen)
{
	unsigned ifindex = if_nametoindex(v->ifname);
	if (!ifindex) {
		int e = errno;
		snprintf(err, errlen, "%s: interface %s: %s", v->text, v->ifname,
			 strerror(e));
		return -e;
	}
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
			   (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	uint32_t seq = (uint32_t)time(NULL);
	nlh->nlmsg_seq = seq;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)v->family;
	ifa->ifa_prefixlen = v->plen;
	/* an IPv6 VIP must answer at once: no duplicate address detection */
	ifa->ifa_flags = v->family == AF_INET6 ? IFA_F_NODAD : 0;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	size_t alen = v->family == AF_INET ? 4 : 16;
	mnl_attr_put(nlh, IFA_LOCAL, alen, v->addr);
	mnl_attr_put(nlh, IFA_ADDRESS, alen, v->addr);

	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl) {
		int e = errno;
		snprintf(err, errlen, "netlink: %s", strerror(e));
		return -e;
	}
	int r = 0;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
	} else {
		unsigned portid = mnl_socket_get_portid(nl);
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			r = -errno;
		else if (mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0)
			r = -errno;
	}
	mnl_socket_close(nl);
	if (add && r == -EEXIST)
		r = 0;
	if (!add && (r == -EADDRNOTAVAIL || r == -ENOENT || r == -ENODEV))
		r = 0;
	if (r < 0)
		snprintf(err, errlen, "%s %s on %s: %s", add ? "add" : "del",
			 v->text, v->ifname, strerror(-r));
	return r;
}

int vip_add(const struct sconf_vip *v, char *err, size_t errlen)
{
	return addr_msg(v, true, err, errlen);
}

int vip_del(const struct sconf_vip *v, char *err, size_t errlen)
{
	return addr_msg(v, false, err, errlen);
}

static int if_mac(const char *ifname, uint8_t mac[6])
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int r = ioctl(fd, SIOCGIFHWADDR, &ifr) < 0 ? -errno : 0;
	close(fd);
	if (r == 0)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return r;
}

/* The announcement sockets stay open: closing a packet socket waits for
 * an RCU grace period (~10 ms here), too long for the loop at a takeover.
 * Neither receives anything (protocol 0; ICMPv6 filter blocks all). */
static int arp_fd = -1, icmp6_fd = -1;

static int arp_sock(void)
{
	if (arp_fd < 0)
		arp_fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return arp_fd < 0 ? -errno : arp_fd;
}

static int icmp6_sock(void)
{
	if (icmp6_fd >= 0)
		return icmp6_fd;
	int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (fd < 0)
		return -errno;
	struct icmp6_filter f;
	ICMP6_FILTER_SETBLOCKALL(&f);
	int hops = 255; /* receivers drop ND with any other hop limit */
	if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops,
		       sizeof(hops)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	icmp6_fd = fd;
	return fd;
}

void vip_cleanup(void)
{
	if (arp_fd >= 0)
		close(arp_fd);
	if (icmp6_fd >= 0)
		close(icmp6_fd);
	arp_fd = icmp6_fd = -1;
}

static int garp(const struct sconf_vip *v, unsigned ifindex, const uint8_t mac[6])
{
	struct __attribute__((packed)) {
		struct arphdr h;
		uint8_t sha[6], spa[4], tha[6], tpa[4];
	} pkt;
	pkt.h.ar_hrd = htons(ARPHRD_ETHER);
	pkt.h.ar_pro = htons(ETH_P_IP);
	pkt.h.ar_hln = 6;
	pkt.h.ar_pln = 4;
	pkt.h.ar_op = htons(ARPOP_REQUEST);
	memcpy(pkt.sha, mac, 6);
	memcpy(pkt.spa, v->addr, 4);
	memset(pkt.tha, 0, 6);
	memcpy(pkt.tpa, v->addr, 4);
	int fd = arp_sock();
	if (fd < 0)
		return fd;
	struct sockaddr_ll to;
	memset(&to, 0, sizeof(to));
	to.sll_family = AF_PACKET;
	to.sll_protocol = htons(ETH_P_ARP);
	to.sll_ifindex = (int)ifindex;
	to.sll_halen = 6;
	memset(to.sll_addr, 0xff, 6);
	return sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to,
		      sizeof(to)) < 0 ? -errno : 0;
}

static int unsolicited_na(const struct sconf_vip *v, unsigned ifindex,
			  const uint8_t mac[6])
{
	struct __attribute__((packed)) {
		struct nd_neighbor_advert na;
		uint8_t opt_type, opt_len, mac[6];
	} pkt;
	memset(&pkt, 0, sizeof(pkt));
	pkt.na.nd_na_type = ND_NEIGHBOR_ADVERT;
	pkt.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
	memcpy(&pkt.na.nd_na_target, v->addr, 16);
	pkt.opt_type = ND_OPT_TARGET_LINKADDR;
	pkt.opt_len = 1; /* units of 8 bytes */
	memcpy(pkt.mac, mac, 6);
	int fd = icmp6_sock();
	if (fd < 0)
		return fd;
	int idx = (int)ifindex;
	int r = 0;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0)
		r = -errno;
	struct sockaddr_in6 to;
	memset(&to, 0, sizeof(to));
	to.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	to.sin6_scope_id = ifindex;
	if (r == 0 && sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to,
			     sizeof(to)) < 0)
		r = -errno;
	return r;
}

int vip_announce(const struct sconf_vip *v, char *err, size_t errlen)
{
	unsigned ifindex = if_nametoindex(v->ifname);
	uint8_t mac[6];
	int r = ifindex ? if_mac(v->ifname, mac) : -errno;
	if (r == 0)
		r = v->family == AF_INET ? garp(v, ifindex, mac)
					 : unsolicited_na(v, ifindex, mac);
	if (r < 0)
		snprintf(err, errlen, "announce %s on %s: %s", v->text, v->ifname,
			 strerror(-r));
	return r;
}
