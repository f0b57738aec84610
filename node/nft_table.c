/*
 * nft_table.c - install/remove tandem-node's own nftables table through
 * libnftnl + libmnl (see nft_table.h for the table's shape).
 *
 * Every change is one nfnetlink batch, which the kernel applies as one
 * transaction: either the whole table appears (replacing a stale one) or
 * nothing changes. Install builds
 *     add table; delete table; add table; add chain; add rule
 * where the first "add" makes the delete valid when no table exists (the
 * trick `nft -f` files use), so a leftover table after a crash - with
 * whatever chains or sets someone put in it - is replaced, not merged.
 *
 * The queue rule: native `queue` expression first; a kernel without
 * CONFIG_NFT_QUEUE answers ENOENT for that rule (the whole batch is then
 * rolled back), and the batch is sent again with the xtables compat target
 * NFQUEUE rev 3 (CONFIG_NFT_COMPAT + CONFIG_NETFILTER_XT_TARGET_NFQUEUE).
 * With several queues, n x n steering rules per family (payload, bitwise,
 * cmp) pick the queue from the last address bytes (see nft_table.h), then
 * one catch-all rule queues anything else to the first queue.
 *
 * Remove is two transactions: the rules go first (the chain stays, policy
 * accept, so nothing more is queued), then - once no packet of the
 * namespace waits in a queue, or after NT_DRAIN_MS - the table. Why: the
 * kernel drops every packet waiting in every NFQUEUE queue of the
 * namespace, silently, whenever a netfilter hook is unregistered
 * (nfqnl_nf_hook_drop), and deleting our base chain is such an event; so a
 * program still answering its queue gets the chance to empty it first, and
 * a clean stop loses no packet of a running connection.
 *
 * Must never: touch another table, flush the ruleset, or wait forever on
 * the kernel (replies are awaited at most NT_TIMEOUT_MS).
 */
#include "nft_table.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/netlink.h>

#define NT_CHAIN      "forward"
#define NT_TIMEOUT_MS 5000
#define NT_DRAIN_MS   1000 /* longest wait for the queues between the two removal steps */
#define NT_QUEUE_PROC "/proc/net/netfilter/nfnetlink_queue"
/* Batch limit; libmnl wants the buffer twice the limit. The largest batch
 * (7 messages) is well under 1 KiB. */
#define NT_BATCH_LIMIT 65536
/* begin + table x3 + chain + up to 2 x 8 x 8 steering rules + a catch-all
 * + end, with spares */
#define NT_MAX_MSGS    (8 + 2 * 64 + 8)

enum nt_queue_kind { NT_QUEUE_NATIVE, NT_QUEUE_COMPAT };

struct nt_batch {
	char buf[2 * NT_BATCH_LIMIT];
	struct mnl_nlmsg_batch *b;
	uint32_t seq0;                 /* seq of the batch-begin message */
	unsigned n;                    /* messages put, begin (and end) included */
	const char *step[NT_MAX_MSGS]; /* step name per message, for errors */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool table_name_ok(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	return len > 0 && len < NFT_TABLE_MAXNAMELEN;
}

/* Sequence numbers only need to be unique on our own fresh socket; a
 * time-based start keeps replies of separate calls apart in `nft monitor`. */
static uint32_t seq_start(void)
{
	return (uint32_t)time(NULL);
}

static void batch_init(struct nt_batch *bt)
{
	bt->b = mnl_nlmsg_batch_start(bt->buf, NT_BATCH_LIMIT);
	bt->seq0 = seq_start();
	bt->n = 0;
}

static void batch_done(struct nt_batch *bt)
{
	if (bt->b)
		mnl_nlmsg_batch_stop(bt->b);
	bt->b = NULL;
}

/* Moves to the next message slot; -EMSGSIZE if the batch is full (cannot
 * happen with the fixed messages built here, but never write past it). */
static int batch_next(struct nt_batch *bt, const char *step)
{
	if (bt->n >= NT_MAX_MSGS)
		return -EMSGSIZE;
	bt->step[bt->n++] = step;
	return mnl_nlmsg_batch_next(bt->b) ? 0 : -EMSGSIZE;
}

static int batch_begin(struct nt_batch *bt)
{
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), bt->seq0 + bt->n);
	return batch_next(bt, "batch begin");
}

static int batch_end(struct nt_batch *bt)
{
	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->seq0 + bt->n);
	return batch_next(bt, "batch end");
}

static struct nlmsghdr *batch_hdr(struct nt_batch *bt, uint16_t type, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET,
				     flags | NLM_F_ACK, bt->seq0 + bt->n);
}

/* type = NFT_MSG_NEWTABLE or NFT_MSG_DELTABLE. A NEWTABLE without
 * NLM_F_EXCL on an existing table changes nothing (no flags are sent). */
static int batch_put_table(struct nt_batch *bt, uint16_t type, const char *name,
			   const char *step)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return -ENOMEM;
	if (nftnl_table_set_str(t, NFTNL_TABLE_NAME, name) < 0) {
		nftnl_table_free(t);
		return -ENOMEM;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nlh = batch_hdr(bt, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return batch_next(bt, step);
}

static int batch_put_chain(struct nt_batch *bt, const struct nft_table_opts *o)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return -ENOMEM;
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, o->table) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, NT_CHAIN) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter") < 0) {
		nftnl_chain_free(c);
		return -ENOMEM;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_FORWARD);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, o->priority);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY,
			    o->drop_forward && !o->bypass ? NF_DROP : NF_ACCEPT);
	nlh = batch_hdr(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return batch_next(bt, "add chain " NT_CHAIN);
}

static struct nftnl_expr *expr_queue_native(const struct nft_table_opts *o,
					     unsigned num, unsigned total)
{
	struct nftnl_expr *e = nftnl_expr_alloc("queue");

	if (!e)
		return NULL;
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, (uint16_t)num);
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, (uint16_t)total);
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, o->bypass ? NFT_QUEUE_FLAG_BYPASS : 0);
	return e;
}

/* xt target info is padded to XT_ALIGN by the kernel's size check
 * (XT_ALIGN(targetsize) == XT_ALIGN(attribute length)), so send it padded. */
static struct nftnl_expr *expr_queue_compat(const struct nft_table_opts *o,
					     unsigned num, unsigned total)
{
	const size_t len = XT_ALIGN(sizeof(struct xt_NFQ_info_v3));
	struct xt_NFQ_info_v3 *info;
	struct nftnl_expr *e = nftnl_expr_alloc("target");

	if (!e)
		return NULL;
	info = calloc(1, len);
	if (!info || nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE") < 0) {
		free(info);
		nftnl_expr_free(e);
		return NULL;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	info->queuenum = (uint16_t)num;
	info->queues_total = (uint16_t)total;
	info->flags = o->bypass ? NFQ_FLAG_BYPASS : 0;
	/* libnftnl takes ownership of info (freed with the expression). */
	if (nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, (uint32_t)len) < 0) {
		free(info);
		nftnl_expr_free(e);
		return NULL;
	}
	return e;
}

/* ---- steering: queue = (last byte of saddr ^ last byte of daddr) & (n-1) */

static struct nftnl_expr *ex_meta_nfproto(void)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_NFPROTO);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *ex_cmp_u8(uint8_t v)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &v, 1);
	}
	return e;
}

static struct nftnl_expr *ex_payload_nh_u8(uint32_t offset)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE,
				   NFT_PAYLOAD_NETWORK_HEADER);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, 1);
	}
	return e;
}

static struct nftnl_expr *ex_and_u8(uint8_t mask)
{
	uint8_t zero = 0;
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 1);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 1);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 1);
	}
	return e;
}

/* Which rule: a steering rule for (family, source bits, queue), or (fam 0)
 * the catch-all that sends everything else to the first queue. */
struct nt_steer {
	uint8_t nfproto;   /* NFPROTO_IPV4 / NFPROTO_IPV6, 0 = catch-all */
	uint8_t sbits, dbits;
	unsigned queue;    /* absolute queue number */
};

static int add_steer_match(struct nftnl_rule *r, const struct nt_steer *st,
			   uint8_t mask)
{
	/* offsets of the last address bytes in the IPv4 / IPv6 header */
	uint32_t so = st->nfproto == NFPROTO_IPV4 ? 15 : 23;
	uint32_t dof = st->nfproto == NFPROTO_IPV4 ? 19 : 39;
	struct nftnl_expr *x[8] = {
		ex_meta_nfproto(), ex_cmp_u8(st->nfproto),
		ex_payload_nh_u8(so), ex_and_u8(mask), ex_cmp_u8(st->sbits),
		ex_payload_nh_u8(dof), ex_and_u8(mask), ex_cmp_u8(st->dbits),
	};
	int r_ = 0;
	for (unsigned i = 0; i < 8; i++) {
		if (!x[i]) {
			r_ = -ENOMEM;
			continue;
		}
		if (r_ == 0)
			nftnl_rule_add_expr(r, x[i]);
		else
			nftnl_expr_free(x[i]);
	}
	return r_;
}

static int batch_put_rule(struct nt_batch *bt, const struct nft_table_opts *o,
			  enum nt_queue_kind kind, const struct nt_steer *st)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e;
	struct nlmsghdr *nlh;

	if (!r)
		return -ENOMEM;
	if (nftnl_rule_set_str(r, NFTNL_RULE_TABLE, o->table) < 0 ||
	    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, NT_CHAIN) < 0) {
		nftnl_rule_free(r);
		return -ENOMEM;
	}
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	if (st->nfproto &&
	    add_steer_match(r, st, (uint8_t)(o->queue_count - 1)) < 0) {
		nftnl_rule_free(r);
		return -ENOMEM;
	}
	e = kind == NT_QUEUE_NATIVE ? expr_queue_native(o, st->queue, 1)
				    : expr_queue_compat(o, st->queue, 1);
	if (!e) {
		nftnl_rule_free(r);
		return -ENOMEM;
	}
	nftnl_rule_add_expr(r, e); /* the rule owns e from here */
	nlh = batch_hdr(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	return batch_next(bt, kind == NT_QUEUE_NATIVE ? "add rule (nft queue)"
						      : "add rule (xt NFQUEUE target)");
}

/* Netlink port of the socket of the last batch this process sent. */
static uint32_t own_portid;

static int nl_open(struct mnl_socket **ret)
{
	struct timeval tv = { .tv_sec = NT_TIMEOUT_MS / 1000,
			      .tv_usec = (NT_TIMEOUT_MS % 1000) * 1000 };
	struct mnl_socket *nl;
	int one = 1, r;

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		mnl_socket_close(nl);
		return r;
	}
	/* Errors then carry only the header of our request, not all of it;
	 * best effort (old kernels lack it, replies are just longer). */
	(void)mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		r = -errno;
		mnl_socket_close(nl);
		return r;
	}
	*ret = nl;
	return 0;
}

static int nl_recv(struct mnl_socket *nl, char *buf, size_t len, ssize_t *ret_len)
{
	ssize_t n = mnl_socket_recvfrom(nl, buf, len);

	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
	*ret_len = n;
	return 0;
}

/*
 * Sends the batch and collects one ack per command (every command carries
 * NLM_F_ACK; begin/end are answered only when the whole batch is refused,
 * e.g. -EPERM). On failure the kernel still answers every command, so the
 * first failing step is the lowest sequence with an error: later ones are
 * usually its consequences. *ret_step = index of that step, or -1.
 */
static int batch_talk(struct nt_batch *bt, int *ret_step)
{
	char rbuf[MNL_SOCKET_BUFFER_SIZE];
	bool seen[NT_MAX_MSGS] = { false };
	struct mnl_socket *nl = NULL;
	unsigned want, got = 0;
	int r, first_err = 0, first_step = -1;

	*ret_step = -1;
	if (bt->n < 2)
		return -EINVAL;
	want = bt->n - 2;
	r = nl_open(&nl);
	if (r == 0) /* the watch tells our own changes from others' by it */
		own_portid = mnl_socket_get_portid(nl);
	if (r < 0)
		return r;
	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(bt->b), mnl_nlmsg_batch_size(bt->b)) < 0) {
		r = -errno;
		goto out;
	}
	while (got < want) {
		const struct nlmsghdr *nlh;
		ssize_t n = 0;
		int rem;

		r = nl_recv(nl, rbuf, sizeof(rbuf), &n);
		if (r < 0)
			goto out;
		rem = (int)n;
		for (nlh = (const struct nlmsghdr *)rbuf; mnl_nlmsg_ok(nlh, rem);
		     nlh = mnl_nlmsg_next(nlh, &rem)) {
			const struct nlmsgerr *e;
			uint32_t idx;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
				r = -EBADMSG;
				goto out;
			}
			e = mnl_nlmsg_get_payload(nlh);
			idx = nlh->nlmsg_seq - bt->seq0;
			if (idx >= bt->n || seen[idx])
				continue; /* not ours */
			seen[idx] = true;
			if (e->error < 0 && (first_step < 0 || idx < (unsigned)first_step)) {
				first_step = (int)idx;
				first_err = e->error;
			}
			if (idx == 0 || idx == bt->n - 1)
				got = want; /* whole batch refused: nothing else comes */
			else
				got++;
		}
	}
	r = first_err;
	*ret_step = first_step;
out:
	mnl_socket_close(nl);
	return r;
}

static int install_once(const struct nft_table_opts *o, enum nt_queue_kind kind,
			struct nt_batch *bt, int *ret_step)
{
	int r;

	*ret_step = -1;
	batch_init(bt);
	if ((r = batch_begin(bt)) < 0 ||
	    (r = batch_put_table(bt, NFT_MSG_NEWTABLE, o->table, "add table (if absent)")) < 0 ||
	    (r = batch_put_table(bt, NFT_MSG_DELTABLE, o->table, "delete stale table")) < 0 ||
	    (r = batch_put_table(bt, NFT_MSG_NEWTABLE, o->table, "add table")) < 0 ||
	    (r = batch_put_chain(bt, o)) < 0)
		return r;
	if (o->drop_forward) /* the chain's policy is all there is */
		return (r = batch_end(bt)) < 0 ? r : batch_talk(bt, ret_step);
	/* One queue: one rule. Several: the steering rules (n x n per
	 * family), then everything else (not IP) to the first queue. */
	unsigned n = o->queue_count;
	static const uint8_t fams[2] = {NFPROTO_IPV4, NFPROTO_IPV6};
	for (unsigned f = 0; n > 1 && f < 2; f++)
		for (unsigned q = 0; q < n; q++)
			for (unsigned sb = 0; sb < n; sb++) {
				struct nt_steer st = {
					.nfproto = fams[f], .sbits = (uint8_t)sb,
					.dbits = (uint8_t)(sb ^ q),
					.queue = o->queue_first + q,
				};
				if ((r = batch_put_rule(bt, o, kind, &st)) < 0)
					return r;
			}
	struct nt_steer all = {.queue = o->queue_first};
	if ((r = batch_put_rule(bt, o, kind, &all)) < 0 ||
	    (r = batch_end(bt)) < 0)
		return r;
	return batch_talk(bt, ret_step);
}

int nft_table_install(const struct nft_table_opts *o, char *err, size_t errlen)
{
	struct nt_batch bt = { 0 };
	int r = 0, step = -1;
	/* Index of the rule message in the batch built by install_once(). */
	const int rule_step = 5;

	if (!o || !table_name_ok(o->table)) {
		set_err(err, errlen, "table name must be 1..%d bytes", NFT_TABLE_MAXNAMELEN - 1);
		return -EINVAL;
	}
	if (o->queue_count < 1 || o->queue_count > 65535 || o->queue_first > 65535 ||
	    o->queue_first + o->queue_count - 1 > 65535) {
		set_err(err, errlen, "table inet %s: queues %u..%u+%u out of 0..65535", o->table,
			o->queue_first, o->queue_first, o->queue_count);
		return -EINVAL;
	}
	if (o->queue_count > 8 || (o->queue_count & (o->queue_count - 1))) {
		set_err(err, errlen, "table inet %s: %u queues: 1, 2, 4 or 8 (address-bit steering)",
			o->table, o->queue_count);
		return -EINVAL;
	}

	r = install_once(o, NT_QUEUE_NATIVE, &bt, &step);
	if ((r == -ENOENT || r == -EOPNOTSUPP) && step == rule_step) {
		/* No nft_queue in this kernel: the batch was rolled back. */
		batch_done(&bt);
		r = install_once(o, NT_QUEUE_COMPAT, &bt, &step);
	}
	if (r < 0)
		set_err(err, errlen, "table inet %s: %s: %s", o->table,
			step >= 0 ? bt.step[step] : "netlink", strerror(-r));
	batch_done(&bt);
	return r;
}

/* Delete every rule of the table (all chains), keeping its chains and so
 * their hooks. -ENOENT when there is no such table. */
static int batch_put_flush(struct nt_batch *bt, const char *table)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	if (!r)
		return -ENOMEM;
	if (nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table) < 0) {
		nftnl_rule_free(r);
		return -ENOMEM;
	}
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	/* no chain and no handle: the kernel deletes the rules of every chain */
	nlh = batch_hdr(bt, NFT_MSG_DELRULE, 0);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	return batch_next(bt, "delete rules");
}

/* Packets of this namespace waiting for a verdict in any queue (column 3 of
 * NT_QUEUE_PROC), or -errno. Every queue counts: unregistering our hook
 * would drop the packets of other programs' queues too. */
static long queued_packets(void)
{
	FILE *f = fopen(NT_QUEUE_PROC, "re");
	unsigned q, port, waiting;
	long sum = 0;
	char line[256];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %u %u", &q, &port, &waiting) == 3)
			sum += waiting;
	fclose(f);
	return sum;
}

/* Wait until the queues were seen empty twice 10 ms apart (a packet that
 * passed the old rule just before the commit may still be on its way), at
 * most NT_DRAIN_MS. Gives up at once when nothing can be read. */
static void wait_queues_drained(void)
{
	unsigned empty = 0;

	for (unsigned ms = 0; ms < NT_DRAIN_MS && empty < 2; ms += 10) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000000L };
		long n;

		nanosleep(&ts, NULL);
		n = queued_packets();
		if (n < 0)
			return;
		empty = n == 0 ? empty + 1 : 0;
	}
}

int nft_table_remove(const char *table, char *err, size_t errlen)
{
	struct nt_batch bt = { 0 };
	int r, step = -1;

	if (!table_name_ok(table)) {
		set_err(err, errlen, "table name must be 1..%d bytes", NFT_TABLE_MAXNAMELEN - 1);
		return -EINVAL;
	}
	/* Step 1: no more queueing, hooks kept (see the file header). */
	batch_init(&bt);
	if ((r = batch_begin(&bt)) < 0 || (r = batch_put_flush(&bt, table)) < 0 ||
	    (r = batch_end(&bt)) < 0)
		goto out;
	r = batch_talk(&bt, &step);
	batch_done(&bt);
	if (r == 0)
		wait_queues_drained();
	else if (r != -ENOENT)
		goto out; /* -ENOENT: no such table, step 2 is a no-op */
	step = -1;

	/* Step 2: add + delete: an absent table is no error, and either way
	 * the batch ends with no such table. */
	batch_init(&bt);
	if ((r = batch_begin(&bt)) < 0 ||
	    (r = batch_put_table(&bt, NFT_MSG_NEWTABLE, table, "add table (if absent)")) < 0 ||
	    (r = batch_put_table(&bt, NFT_MSG_DELTABLE, table, "delete table")) < 0 ||
	    (r = batch_end(&bt)) < 0)
		goto out;
	r = batch_talk(&bt, &step);
out:
	if (r < 0)
		set_err(err, errlen, "table inet %s: %s: %s", table,
			step >= 0 ? bt.step[step] : "netlink", strerror(-r));
	batch_done(&bt);
	return r;
}

int nft_table_exists(const char *table, bool *ret)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_table *t;
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *nlh;
	uint32_t seq = seq_start();
	int r;

	if (!table_name_ok(table) || !ret)
		return -EINVAL;
	t = nftnl_table_alloc();
	if (!t)
		return -ENOMEM;
	if (nftnl_table_set_str(t, NFTNL_TABLE_NAME, table) < 0) {
		nftnl_table_free(t);
		return -ENOMEM;
	}
	/* No NLM_F_ACK: the answer is either the table or an error, one message. */
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, 0, seq);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);

	r = nl_open(&nl);
	if (r < 0)
		return r;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		const struct nlmsghdr *m;
		ssize_t n = 0;
		int rem;

		r = nl_recv(nl, buf, sizeof(buf), &n);
		if (r < 0)
			goto out;
		rem = (int)n;
		for (m = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(m, rem); m = mnl_nlmsg_next(m, &rem)) {
			if (m->nlmsg_seq != seq)
				continue;
			if (m->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE)) {
				*ret = true;
				r = 0;
				goto out;
			}
			if (m->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);

				if (m->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
					r = -EBADMSG;
					goto out;
				}
				if (e->error == -ENOENT) {
					*ret = false;
					r = 0;
				} else {
					/* 0 would be an ack without an answer. */
					r = e->error < 0 ? e->error : -EPROTO;
				}
				goto out;
			}
		}
	}
out:
	mnl_socket_close(nl);
	return r;
}

/* ---- watch --------------------------------------------------------------- */

struct nft_watch {
	struct mnl_socket *nl;
	char table[NFT_TABLE_MAXNAMELEN];
};

int nft_watch_open(const char *table, struct nft_watch **ret)
{
	if (!table_name_ok(table) || !ret)
		return -EINVAL;
	struct nft_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	snprintf(w->table, sizeof(w->table), "%s", table);
	w->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!w->nl) {
		free(w);
		return -errno;
	}
	if (mnl_socket_bind(w->nl, 1u << (NFNLGRP_NFTABLES - 1),
			    MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		nft_watch_close(w);
		return r;
	}
	*ret = w;
	return 0;
}

int nft_watch_fd(const struct nft_watch *w)
{
	return mnl_socket_get_fd(w->nl);
}

/* The table an nftables object message names: table, chain, rule, set
 * and object messages all carry it as attribute 1. */
static bool names_table(const struct nlmsghdr *m, const char *table)
{
	const struct nlattr *a;
	mnl_attr_for_each(a, m, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != 1)
			continue;
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			return false;
		return strcmp(mnl_attr_get_str(a), table) == 0;
	}
	return false;
}

int nft_watch_read(struct nft_watch *w, bool *ret_touched)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	bool touched = false;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(w->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) { /* events lost: look again */
				touched = true;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		int rem = (int)n;
		for (const struct nlmsghdr *m = (const struct nlmsghdr *)buf;
		     mnl_nlmsg_ok(m, rem); m = mnl_nlmsg_next(m, &rem)) {
			if ((m->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
				continue;
			unsigned t = m->nlmsg_type & 0xff;
			if (t != NFT_MSG_DELTABLE && t != NFT_MSG_DELCHAIN &&
			    t != NFT_MSG_DELRULE)
				continue;
			/* our own replacement of the table deletes it too */
			if (own_portid && m->nlmsg_pid == own_portid)
				continue;
			if (names_table(m, w->table))
				touched = true;
		}
	}
	*ret_touched = touched;
	return 0;
}

void nft_watch_close(struct nft_watch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}
