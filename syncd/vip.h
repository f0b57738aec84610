/*
 * vip.h - the virtual addresses that follow the active role: added and
 * removed with rtnetlink (libmnl, RTM_NEWADDR / RTM_DELADDR) in the
 * network namespace syncd runs in, and announced with a gratuitous ARP
 * (IPv4: ARP request, sender = target = the address, broadcast) or an
 * unsolicited neighbour advertisement (IPv6: to ff02::1, override flag).
 *
 * Each call is one short synchronous netlink exchange or one sendto; they
 * happen only at role changes. The two announcement sockets are opened on
 * first use and kept (closing a packet socket takes an RCU grace period). Adding an address that is there, or
 * removing one that is not, succeeds (idempotent).
 *
 * Must never: touch an address that is not in the configured list, or
 * wait for anything but the kernel's netlink acknowledgement.
 */
#ifndef TANDEM_SYNCD_VIP_H
#define TANDEM_SYNCD_VIP_H

#include <stddef.h>

#include "sconf.h"

int vip_add(const struct sconf_vip *v, char *err, size_t errlen);
int vip_del(const struct sconf_vip *v, char *err, size_t errlen);
/* One gratuitous ARP / unsolicited NA for v on its interface. */
int vip_announce(const struct sconf_vip *v, char *err, size_t errlen);
/* Close the announcement sockets vip_announce() keeps open. */
void vip_cleanup(void);

#endif
