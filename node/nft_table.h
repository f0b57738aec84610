/*
 * nft_table.h - tandem-node's own nftables table that sends forwarded
 * packets to its NFQUEUE queues.
 *
 * The table is family inet, holds one base chain `forward` (filter hook,
 * policy accept) and one rule queueing every packet to queues
 * queue_first .. queue_first + queue_count - 1. The native nft `queue`
 * expression is tried first; kernels built without CONFIG_NFT_QUEUE refuse
 * it, and the xtables compat target NFQUEUE revision 3 is used instead (same
 * semantics; `nft list` prints it as `queue num A-B bypass`).
 *
 * Must never: touch any table other than the one named, flush the user's
 * ruleset, or leave a half-built table behind (every change is one
 * nfnetlink batch, i.e. one kernel transaction).
 *
 * Not for the hot path: each call opens its own netlink socket.
 */
#ifndef TANDEM_NFT_TABLE_H
#define TANDEM_NFT_TABLE_H

#include <stdbool.h>
#include <stddef.h>

struct nft_table_opts {
	const char *table;      /* "tandem": 1..255 bytes */
	unsigned queue_first;   /* 0..65535 */
	/* 1, 2, 4 or 8. With several queues a packet goes to queue_first +
	 * ((last byte of source ^ last byte of destination) & (count - 1)):
	 * the same queue for both directions of a flow (one writer per shard)
	 * and, unlike the kernel's seeded balancing hash, computable by the
	 * node and its peers (pipeline_shard_of_addrs). Non-IP packets go to
	 * queue_first. */
	unsigned queue_count;
	bool bypass;            /* accept when no program is bound to the queue */
	/* AF_XDP data path: no queue rule; the chain drops everything the
	 * kernel would forward itself (policy drop; accept with bypass), so
	 * no packet crosses unfiltered while the node is down. */
	bool drop_forward;
	int priority;           /* forward hook priority; 0 = filter */
};

/*
 * Install the table, replacing a table of that name if one exists (stale
 * after a crash, or a previous install), in one atomic batch. Returns 0 or
 * -errno with a message naming the failing step in err (err may be NULL).
 * -EINVAL for bad options, -EPERM without CAP_NET_ADMIN.
 */
int nft_table_install(const struct nft_table_opts *o, char *err, size_t errlen);

/* Remove inet table `table`; an absent table is success. 0 or -errno. */
int nft_table_remove(const char *table, char *err, size_t errlen);

/* *ret = whether inet table `table` exists. 0 or -errno (ret untouched). */
int nft_table_exists(const char *table, bool *ret);

/*
 * Watch: a non-blocking netlink socket on the nftables event group. After
 * its fd turns readable, nft_watch_read() drains it and says whether
 * anyone but this process deleted the table or one of its chains or rules
 * (`nft flush ruleset`, as nftables.service runs at start, deletes every
 * table); the caller then installs the table again. Control thread only.
 */
struct nft_watch;
int nft_watch_open(const char *table, struct nft_watch **ret);
int nft_watch_fd(const struct nft_watch *w);
int nft_watch_read(struct nft_watch *w, bool *ret_touched);
void nft_watch_close(struct nft_watch *w); /* accepts NULL */

#endif /* TANDEM_NFT_TABLE_H */
