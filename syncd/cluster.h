/*
 * cluster.h - tandem-syncd as a whole: the node link, the peer links,
 * replication, heartbeats, the role and what follows from it (PROMOTE,
 * ROLE_SET, virtual addresses, gratuitous ARP), config replication and
 * the control socket (SHOW_CLUSTER, FAILOVER, ROLE).
 *
 * This is the daemon's top level: the modules below return errors and
 * count; this file decides and logs (stderr, one line per event that
 * matters: role changes, links, takeovers; never per session or frame).
 *
 * Runs on the loop's thread only. Must never: take over while an active
 * peer is heard on either path (unless it asked us to), move addresses
 * before the readiness gate opened, or apply a peer's config that it did
 * not send authenticated.
 */
#ifndef TANDEM_SYNCD_CLUSTER_H
#define TANDEM_SYNCD_CLUSTER_H

#include <stddef.h>

#include <uv.h>

#include "sconf.h"

struct cluster;

/* conf stays the caller's until cluster_free(); cluster_reload() writes
 * into it. */
int cluster_new(uv_loop_t *loop, struct sconf *conf, struct cluster **ret);
int cluster_start(struct cluster *c, char *err, size_t errlen);
/* Clean stop: addresses removed, peers told, handles closed; the loop then
 * runs out. */
void cluster_stop(struct cluster *c);
/* SIGHUP: read conf->path again. A file that does not load changes
 * nothing; otherwise the settings that can change at run time (role
 * priority/preempt/hold-down, garp, bulk rate, backlog, batch size,
 * apply_inflight, config_sync, track_interfaces, notify) take effect at once, every other changed one
 * is logged as needing a restart and keeps its running value. The role,
 * the addresses and the links are left as they are. */
void cluster_reload(struct cluster *c);
void cluster_free(struct cluster *c);   /* accepts NULL */

#endif
