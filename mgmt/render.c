/*
 * render.c - protobuf replies from tandem-node as protocol lines.
 *
 * Must never: trust a length from the wire (addresses shorter than their
 * family are shown as "?"), or emit a raw text line from the node without
 * checking that it parses as a record.
 */
#include "render.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "wire.h"

/* ---------------------------------------------------------------- sessions */

static bool has_ports(uint32_t proto)
{
	return proto == 6 || proto == 17 || proto == 132 || proto == 136;
}

static bool is_icmp(uint32_t proto)
{
	return proto == 1 || proto == 58;
}

/* "10.1.0.2", "fd00:1::2" or "?" */
static void fmt_addr(const Tandem__SessionKey *k, const ProtobufCBinaryData *a,
		     char *out, size_t outlen)
{
	if (k->family == 4 && a->len >= 4)
		inet_ntop(AF_INET, a->data, out, (socklen_t)outlen);
	else if (k->family == 6 && a->len >= 16)
		inet_ntop(AF_INET6, a->data, out, (socklen_t)outlen);
	else
		snprintf(out, outlen, "?");
}

/* Address with the port when the protocol has ports. */
static void fmt_endpoint(const Tandem__SessionKey *k,
			 const ProtobufCBinaryData *a, uint32_t port,
			 char *out, size_t outlen)
{
	char ad[INET6_ADDRSTRLEN];

	fmt_addr(k, a, ad, sizeof(ad));
	if (!has_ports(k->proto))
		snprintf(out, outlen, "%s", ad);
	else if (k->family == 6)
		snprintf(out, outlen, "[%s]:%u", ad, port);
	else
		snprintf(out, outlen, "%s:%u", ad, port);
}

static void put_proto(struct rec_buf *b, uint32_t proto)
{
	const char *n = filter_proto_name(proto);

	if (n)
		rec_str(b, "proto", n);
	else
		rec_u64(b, "proto", proto);
}

static void put_tcpdir(struct rec_buf *b, const char *dir,
		       const Tandem__TcpDir *t)
{
	char key[32];

	if (!t)
		return;
	snprintf(key, sizeof(key), "tcp_%s_end", dir);
	rec_u64(b, key, t->end);
	snprintf(key, sizeof(key), "tcp_%s_maxend", dir);
	rec_u64(b, key, t->maxend);
	snprintf(key, sizeof(key), "tcp_%s_maxwin", dir);
	rec_u64(b, key, t->maxwin);
}

void render_session(struct rec_buf *b, const Tandem__Session *s, bool full)
{
	static const ProtobufCBinaryData none = {0, NULL};
	const Tandem__SessionKey *k = s->key;
	Tandem__SessionKey nokey = TANDEM__SESSION_KEY__INIT;
	char src[INET6_ADDRSTRLEN + 10], dst[INET6_ADDRSTRLEN + 10];

	if (!k) /* required on the wire; be safe with a hand-built reply */
		k = &nokey;
	/* src/dst = initiator/responder: the key is canonical (lower side 0). */
	bool init1 = s->flags & WIRE_SF_INIT_SIDE1;
	const ProtobufCBinaryData *a0 = k->addr0.data ? &k->addr0 : &none;
	const ProtobufCBinaryData *a1 = k->addr1.data ? &k->addr1 : &none;
	fmt_endpoint(k, init1 ? a1 : a0, init1 ? k->port1 : k->port0, src, sizeof(src));
	fmt_endpoint(k, init1 ? a0 : a1, init1 ? k->port0 : k->port1, dst, sizeof(dst));

	rec_begin(b, "session");
	rec_u64(b, "id", s->id);
	put_proto(b, k->proto);
	rec_str(b, "src", src);
	rec_str(b, "dst", dst);
	if (is_icmp(k->proto))
		rec_u64(b, "icmp_id", k->port0);
	rec_str(b, "state", mg_state_name(wire_state(s->state)));
	rec_u64(b, "expires", (s->remaining_ms + 999u) / 1000u);
	rec_fmt(b, "pkts", "%" PRIu64 "/%" PRIu64, s->pkts0, s->pkts1);
	rec_fmt(b, "bytes", "%" PRIu64 "/%" PRIu64, s->bytes0, s->bytes1);
	if (s->rule_name && *s->rule_name)
		rec_str(b, "rule", s->rule_name);
	else
		rec_fmt(b, "rule", "#%u", s->rule);
	rec_str(b, "origin", (s->flags & WIRE_SF_PEER) ? "peer" : "local");
	if (full) {
		char flags[128];
		const char *mode = wire_mode_name(s->mode);

		rec_u64(b, "family", k->family);
		rec_fmt(b, "zones", "%u/%u", (k->zone >> 8) & 0xff, k->zone & 0xff);
		rec_str(b, "iface_orig", s->iface0 && *s->iface0 ? s->iface0 : "-");
		rec_str(b, "iface_reply", s->iface1 && *s->iface1 ? s->iface1 : "-");
		rec_u64(b, "rule_index", s->rule);
		if (mode)
			rec_str(b, "mode", mode);
		else
			rec_u64(b, "mode", s->mode);
		wire_flags_names(s->flags, flags, sizeof(flags));
		rec_str(b, "flags", flags);
		rec_fmt(b, "flags_raw", "0x%02x", s->flags);
		rec_u64(b, "expires_ms", s->remaining_ms);
		if (s->has_timeout_s)
			rec_u64(b, "timeout", s->timeout_s);
		if (s->has_age_s)
			rec_u64(b, "age", s->age_s);
		if (s->has_shard)
			rec_u64(b, "shard", s->shard);
		if (s->has_wscale)
			rec_fmt(b, "wscale", "%u/%u", s->wscale & 15,
				(s->wscale >> 4) & 15);
		put_tcpdir(b, "orig", s->tcp0);
		put_tcpdir(b, "reply", s->tcp1);
		if (s->has_ka_next)
			rec_u64(b, "keepalive_next", s->ka_next);
	}
	rec_end(b);
}

/* ---------------------------------------------------------------- others */

void render_status(struct rec_buf *b, const Tandem__Status *st)
{
	rec_begin(b, "status");
	rec_str(b, "node", st->node_name);
	rec_u64(b, "node_id", st->node_id);
	rec_str(b, "version", st->version);
	rec_u64(b, "uptime", st->uptime_s);
	rec_u64(b, "shards", st->shards);
	rec_u64(b, "sessions", st->sessions);
	rec_u64(b, "capacity", st->capacity);
	rec_str(b, "policy_hash", st->policy_hash);
	rec_u64(b, "rules", st->rules);
	rec_str(b, "role", st->role && *st->role ? st->role : "standalone");
	rec_str(b, "config", st->config_path);
	rec_end(b);
}

void render_counter(struct rec_buf *b, const char *name, uint64_t value)
{
	rec_begin(b, "counter");
	rec_str(b, "name", name);
	rec_u64(b, "value", value);
	rec_end(b);
}

/* A counter or reason name as a key part: [a-z0-9_], others '_'. */
static void keyify(const char *in, char *out, size_t outlen)
{
	size_t i = 0;

	for (; in && in[i] && i + 1 < outlen; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '_';
	}
	out[i] = '\0';
}

void render_push(struct rec_buf *b, const Tandem__PushResult *p)
{
	uint64_t ended = 0;

	rec_begin(b, "push");
	rec_str(b, "hash_old", p->hash_old);
	rec_str(b, "hash_new", p->hash_new);
	rec_u64(b, "kept", p->kept);
	for (size_t i = 0; i < p->n_ended; i++) {
		char key[80] = "ended_";
		keyify(p->ended[i]->name, key + 6, sizeof(key) - 6);
		rec_u64(b, key, p->ended[i]->value);
		ended += p->ended[i]->value;
	}
	rec_u64(b, "ended", ended);
	rec_str(b, "flushed", p->flushed ? "yes" : "no");
	rec_str(b, "dry_run", p->dry_run ? "yes" : "no");
	rec_u64(b, "elapsed_ms", p->elapsed_ms);
	rec_end(b);
}

/* ---------------------------------------------------------------- cluster */

static const char *yesno(bool v)
{
	return v ? "yes" : "no";
}

static void put_bulk(struct rec_buf *b, const char *key,
		     const Tandem__BulkProgress *bp)
{
	if (bp)
		rec_fmt(b, key, "%s:%" PRIu64 "/%" PRIu64, bp->state ? bp->state : "?",
			bp->sent, bp->total);
}

void render_cluster(struct rec_buf *b, const Tandem__ClusterStatus *cs)
{
	rec_begin(b, "cluster");
	rec_u64(b, "node_id", cs->node_id);
	rec_u64(b, "cluster_id", cs->cluster_id);
	rec_str(b, "mode", cs->mode);
	rec_str(b, "role", cs->role);
	rec_u64(b, "epoch", cs->epoch);
	rec_str(b, "ready", yesno(cs->ready));
	rec_u64(b, "priority", cs->priority);
	rec_str(b, "preempt", yesno(cs->preempt));
	rec_u64(b, "role_age_ms", cs->role_age_ms);
	if (cs->role_reason && *cs->role_reason)
		rec_str(b, "role_reason", cs->role_reason);
	rec_str(b, "node_link", cs->node_link);
	rec_u64(b, "local_sessions", cs->local_sessions);
	rec_u64(b, "peer_sessions", cs->peer_sessions);
	rec_u64(b, "apply_pending", cs->apply_pending);
	if (cs->policy_hash && *cs->policy_hash)
		rec_str(b, "policy_hash", cs->policy_hash);
	if (cs->has_last_takeover_ms)
		rec_u64(b, "last_takeover_ms", cs->last_takeover_ms);
	if (cs->has_takeover_pending)
		rec_str(b, "takeover_pending", yesno(cs->takeover_pending));
	if (cs->n_vips) {
		struct rec_buf v;
		rec_buf_init(&v);
		for (size_t i = 0; i < cs->n_vips; i++) {
			if (i)
				rec_buf_append(&v, ",", 1);
			rec_buf_puts(&v, cs->vips[i]);
		}
		rec_strn(b, "vips", v.p, v.len);
		if (v.err)
			b->err = v.err;
		rec_buf_free(&v);
	}
	rec_end(b);

	for (size_t i = 0; i < cs->n_peers; i++) {
		const Tandem__PeerStatus *p = cs->peers[i];
		rec_begin(b, "peer");
		rec_u64(b, "node_id", p->node_id);
		rec_str(b, "address", p->address);
		rec_str(b, "link", p->link);
		if (p->role && *p->role)
			rec_str(b, "role", p->role);
		if (p->has_priority)
			rec_u64(b, "priority", p->priority);
		if (p->has_epoch)
			rec_u64(b, "epoch", p->epoch);
		if (p->has_ready)
			rec_str(b, "ready", yesno(p->ready));
		if (p->policy_hash && *p->policy_hash)
			rec_str(b, "policy_hash", p->policy_hash);
		for (size_t k = 0; k < p->n_paths; k++) {
			char key[48], name[24];
			keyify(p->paths[k]->path, name, sizeof(name));
			snprintf(key, sizeof(key), "path_%s", name);
			rec_str(b, key, p->paths[k]->alive ? "alive" : "dead");
			if (p->paths[k]->has_last_rx_age_ms) {
				snprintf(key, sizeof(key), "path_%s_rx_age_ms", name);
				rec_u64(b, key, p->paths[k]->last_rx_age_ms);
			}
		}
		rec_u64(b, "events_sent", p->events_sent);
		rec_u64(b, "events_received", p->events_received);
		rec_u64(b, "frames_sent", p->frames_sent);
		rec_u64(b, "frames_received", p->frames_received);
		rec_u64(b, "frames_refused", p->frames_refused);
		for (size_t k = 0; k < p->n_refused; k++) {
			char key[80] = "refused_";
			keyify(p->refused[k]->name, key + 8, sizeof(key) - 8);
			rec_u64(b, key, p->refused[k]->value);
		}
		rec_u64(b, "lag_events", p->lag_events);
		rec_u64(b, "lag_ms", p->lag_ms);
		if (p->has_ack_p50_us)
			rec_u64(b, "ack_p50_us", p->ack_p50_us);
		if (p->has_ack_p99_us)
			rec_u64(b, "ack_p99_us", p->ack_p99_us);
		put_bulk(b, "bulk_tx", p->bulk_tx);
		put_bulk(b, "bulk_rx", p->bulk_rx);
		rec_u64(b, "applied_seq", p->applied_seq);
		rec_u64(b, "acked_seq", p->acked_seq);
		rec_u64(b, "backlog_bytes", p->backlog_bytes);
		rec_u64(b, "connects", p->connects);
		rec_u64(b, "disconnects", p->disconnects);
		if (p->has_link_up_ms)
			rec_u64(b, "link_up_ms", p->link_up_ms);
		rec_end(b);
	}
	for (size_t i = 0; i < cs->n_counters; i++)
		render_counter(b, cs->counters[i]->name, cs->counters[i]->value);
}

/* ---------------------------------------------------------------- metrics */

/* Label value escaping of the exposition format: \\ \" \n. */
static void put_label(struct rec_buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			rec_buf_append(b, "\\\\", 2);
		else if (*v == '"')
			rec_buf_append(b, "\\\"", 2);
		else if (*v == '\n')
			rec_buf_append(b, "\\n", 2);
		else if ((unsigned char)*v < 0x20 || *v == 0x7f)
			rec_buf_append(b, " ", 1);
		else
			rec_buf_append(b, v, 1);
	}
}

static void family_head(struct rec_buf *b, const char *name, const char *type,
			const char *help)
{
	rec_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct rec_buf *b, const char *name, const char *help,
		  uint64_t v)
{
	family_head(b, name, "gauge", help);
	rec_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* Node counters named "<prefix>.<item>" become one labelled family;
 * with label2, "<prefix>.<a>.<b>" gives label="a",label2="b". */
static const struct {
	const char *prefix; /* with the dot */
	const char *metric;
	const char *type;
	const char *label;
	const char *label2;
	const char *help;
} families[] = {
	{"sessions.", "tandem_sessions", "gauge", "state", NULL, "Live sessions by state."},
	{"verdict.", "tandem_verdicts_total", "counter", "verdict", NULL, "Packets by verdict."},
	{"drop.", "tandem_drops_total", "counter", "reason", NULL, "Dropped packets by reason."},
	{"created.", "tandem_sessions_created_total", "counter", "proto", NULL, "Sessions created by protocol class."},
	{"stateless.", "tandem_stateless_total", "counter", "proto", NULL, "Packets accepted by tracking-off rules."},
	{"ended.", "tandem_sessions_ended_total", "counter", "reason", NULL, "Sessions ended by reason."},
	{"ended_in.", "tandem_sessions_ended_in_state_total", "counter", "proto", "state", "Sessions ended, by the state they were in."},
	{"sync.", "tandem_sync_total", "counter", "event", NULL, "Replication events by kind."},
};
#define N_FAMILIES (sizeof(families) / sizeof(families[0]))

/* Node counters without a group that have a type of their own. */
static const struct {
	const char *name;
	const char *metric; /* NULL: shown elsewhere (tandem_table_*) */
	const char *type;
	const char *help;
} scalars[] = {
	{"packets", "tandem_packets_total", "counter", "Packets seen."},
	{"bytes", "tandem_bytes_total", "counter", "Bytes seen."},
	{"ageing_started", "tandem_ageing_started_total", "counter", "Times aggressive ageing started."},
	{"first_fragments", "tandem_first_fragments_total", "counter", "First fragments tracked."},
	{"ageing.active", "tandem_ageing_active", "gauge", "1 while aggressive ageing runs."},
	{"sessions", NULL, NULL, NULL},
	{"capacity", NULL, NULL, NULL},
};
#define N_SCALARS (sizeof(scalars) / sizeof(scalars[0]))

static int family_of(const char *name)
{
	for (size_t f = 0; f < N_FAMILIES; f++)
		if (strncmp(name, families[f].prefix, strlen(families[f].prefix)) == 0)
			return (int)f;
	return -1;
}

static int scalar_of(const char *name)
{
	for (size_t i = 0; i < N_SCALARS; i++)
		if (strcmp(name, scalars[i].name) == 0)
			return (int)i;
	return -1;
}

/* One labelled family over the peers: name{peer="<id>"} value. */
static void peer_family(struct rec_buf *b, const Tandem__ClusterStatus *cs,
			const char *name, const char *type, const char *help,
			uint64_t (*get)(const Tandem__PeerStatus *))
{
	if (!cs->n_peers)
		return;
	family_head(b, name, type, help);
	for (size_t i = 0; i < cs->n_peers; i++)
		rec_buf_printf(b, "%s{peer=\"%u\"} %" PRIu64 "\n", name,
			       cs->peers[i]->node_id, get(cs->peers[i]));
}

static uint64_t p_up(const Tandem__PeerStatus *p)
{
	return p->link && strcmp(p->link, "up") == 0;
}
static uint64_t p_sent(const Tandem__PeerStatus *p) { return p->events_sent; }
static uint64_t p_recv(const Tandem__PeerStatus *p) { return p->events_received; }
static uint64_t p_refused(const Tandem__PeerStatus *p) { return p->frames_refused; }
static uint64_t p_lag_events(const Tandem__PeerStatus *p) { return p->lag_events; }
static uint64_t p_lag_ms(const Tandem__PeerStatus *p) { return p->lag_ms; }

static void cluster_metrics(struct rec_buf *b, const Tandem__ClusterStatus *cs)
{
	family_head(b, "tandem_cluster_role", "gauge",
		    "Cluster role of this node (the label), value 1.");
	rec_buf_puts(b, "tandem_cluster_role{role=\"");
	put_label(b, cs->role ? cs->role : "");
	rec_buf_puts(b, "\"} 1\n");
	gauge(b, "tandem_cluster_epoch", "Cluster epoch.", cs->epoch);
	gauge(b, "tandem_cluster_ready", "1 when this node may take over now.",
	      cs->ready);
	gauge(b, "tandem_cluster_local_sessions", "Sessions created here.",
	      cs->local_sessions);
	gauge(b, "tandem_cluster_peer_sessions", "Sessions learned from peers.",
	      cs->peer_sessions);
	gauge(b, "tandem_cluster_apply_pending",
	      "Peer events received, not yet applied.", cs->apply_pending);
	peer_family(b, cs, "tandem_sync_peer_up", "gauge",
		    "1 when the sync link to the peer is up.", p_up);
	peer_family(b, cs, "tandem_sync_events_sent_total", "counter",
		    "Session events sent to the peer.", p_sent);
	peer_family(b, cs, "tandem_sync_events_received_total", "counter",
		    "Session events received from the peer.", p_recv);
	peer_family(b, cs, "tandem_sync_frames_refused_total", "counter",
		    "Frames from the peer refused (tag, replay, ...).", p_refused);
	peer_family(b, cs, "tandem_sync_lag_events", "gauge",
		    "Events sent to the peer and not yet acknowledged.", p_lag_events);
	peer_family(b, cs, "tandem_sync_lag_ms", "gauge",
		    "Age of the oldest unacknowledged frame.", p_lag_ms);
	for (size_t i = 0; i < cs->n_counters; i++) {
		char key[128];
		keyify(cs->counters[i]->name, key, sizeof(key));
		rec_buf_printf(b, "# TYPE tandem_syncd_%s untyped\n"
			       "tandem_syncd_%s %" PRIu64 "\n", key, key,
			       cs->counters[i]->value);
	}
}

void render_metrics(struct rec_buf *b, const Tandem__Status *status,
		    const Tandem__CtlReply *stats, int syncd,
		    const Tandem__ClusterStatus *cluster,
		    const struct render_counter *mgmt, size_t n_mgmt)
{
	gauge(b, "tandem_up", "1 when tandem-node answered.", status ? 1 : 0);
	if (status) {
		gauge(b, "tandem_table_used", "Sessions in the table.", status->sessions);
		gauge(b, "tandem_table_capacity", "Session table capacity.",
		      status->capacity);
		gauge(b, "tandem_uptime_seconds", "Seconds since tandem-node started.",
		      status->uptime_s);
		gauge(b, "tandem_policy_rules", "Rules in the running policy.",
		      status->rules);
		family_head(b, "tandem_node_info", "gauge", "Node identity.");
		rec_buf_puts(b, "tandem_node_info{node=\"");
		put_label(b, status->node_name ? status->node_name : "");
		rec_buf_puts(b, "\",version=\"");
		put_label(b, status->version ? status->version : "");
		rec_buf_puts(b, "\",policy_hash=\"");
		put_label(b, status->policy_hash ? status->policy_hash : "");
		rec_buf_printf(b, "\",node_id=\"%u\"} 1\n", status->node_id);
	}
	if (stats) {
		bool ageing = false;
		for (size_t f = 0; f < N_FAMILIES; f++) {
			bool head = false;
			for (size_t i = 0; i < stats->n_counters; i++) {
				const Tandem__Counter *c = stats->counters[i];
				if (family_of(c->name) != (int)f)
					continue;
				const char *item = c->name + strlen(families[f].prefix);
				const char *dot = families[f].label2 ? strchr(item, '.') : NULL;
				if (families[f].label2 && !dot)
					continue; /* not of this family's shape */
				if (!head)
					family_head(b, families[f].metric, families[f].type,
						    families[f].help);
				head = true;
				rec_buf_printf(b, "%s{%s=\"", families[f].metric,
					       families[f].label);
				if (dot) {
					char first[64];
					snprintf(first, sizeof(first), "%.*s",
						 (int)(dot - item), item);
					put_label(b, first);
					rec_buf_printf(b, "\",%s=\"", families[f].label2);
					put_label(b, dot + 1);
				} else {
					put_label(b, item);
				}
				rec_buf_printf(b, "\"} %" PRIu64 "\n", c->value);
			}
		}
		for (size_t i = 0; i < stats->n_counters; i++) {
			const Tandem__Counter *c = stats->counters[i];
			char key[128];
			if (family_of(c->name) >= 0)
				continue;
			int k = scalar_of(c->name);
			if (k >= 0) {
				if (!scalars[k].metric)
					continue;
				family_head(b, scalars[k].metric, scalars[k].type,
					    scalars[k].help);
				rec_buf_printf(b, "%s %" PRIu64 "\n", scalars[k].metric,
					       c->value);
				if (strcmp(c->name, "ageing.active") == 0)
					ageing = true;
				continue;
			}
			/* Everything else as its own untyped metric. */
			keyify(c->name, key, sizeof(key));
			rec_buf_printf(b, "# TYPE tandem_node_%s untyped\n"
				       "tandem_node_%s %" PRIu64 "\n", key, key, c->value);
		}
		if (!ageing)
			gauge(b, "tandem_ageing_active",
			      "1 while aggressive ageing runs.", 0);
	}
	if (syncd) {
		gauge(b, "tandem_syncd_up", "1 when tandem-syncd answered.",
		      cluster ? 1 : 0);
		if (cluster)
			cluster_metrics(b, cluster);
	}
	for (size_t i = 0; i < n_mgmt; i++) {
		char key[128];
		keyify(mgmt[i].name, key, sizeof(key));
		rec_buf_printf(b, "# TYPE tandem_mgmt_%s counter\n"
			       "tandem_mgmt_%s %" PRIu64 "\n", key, key, mgmt[i].value);
	}
}

/* ---------------------------------------------------------------- streams */

void render_stream_init(struct render_stream *rs, enum render_kind kind,
			const Tandem__CtlReply *reply, const char *word)
{
	memset(rs, 0, sizeof(*rs));
	rs->kind = kind;
	rs->reply = reply;
	rs->word = word;
	rs->line = 1;
	rs->text_len = reply->text ? strlen(reply->text) : 0;
}

/* A node text line kept as it is when it is a valid record. */
static bool is_record(const char *s, size_t n)
{
	struct rec_field f[64];
	char *word, tmp[1024];
	unsigned nf;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return rec_parse(tmp, &word, f, 64, &nf) == 0;
}

bool render_stream_more(struct render_stream *rs, struct rec_buf *b,
			size_t budget)
{
	size_t start = b->len;
	const Tandem__CtlReply *r = rs->reply;

	if (rs->kind == RENDER_SESSIONS || rs->kind == RENDER_SESSION_FULL) {
		while (rs->pos < r->n_sessions) {
			render_session(b, r->sessions[rs->pos++],
				       rs->kind == RENDER_SESSION_FULL);
			if (b->len - start >= budget)
				break;
		}
		return rs->pos >= r->n_sessions;
	}

	const char *text = r->text ? r->text : "";
	size_t total = rs->text_len;
	while (rs->pos < total) {
		const char *l = text + rs->pos;
		const char *nl = memchr(l, '\n', total - rs->pos);
		size_t n = nl ? (size_t)(nl - l) : total - rs->pos;
		rs->pos += n + (nl ? 1 : 0);
		if (rs->kind == RENDER_RECORDS && is_record(l, n)) {
			rec_buf_append(b, l, n);
			rec_end(b);
		} else {
			rec_begin(b, rs->word);
			rec_u64(b, "line", rs->line);
			rec_strn(b, "text", l, n);
			rec_end(b);
		}
		rs->line++;
		if (b->len - start >= budget)
			break;
	}
	return rs->pos >= total;
}
