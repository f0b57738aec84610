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

/* Node counters named "<prefix>.<item>" become one labelled family. */
static const struct {
	const char *prefix; /* with the dot */
	const char *metric;
	const char *type;
	const char *label;
	const char *help;
} families[] = {
	{"sessions.", "tandem_sessions", "gauge", "state", "Live sessions by state."},
	{"verdict.", "tandem_verdicts_total", "counter", "verdict", "Packets by verdict."},
	{"drop.", "tandem_drops_total", "counter", "reason", "Dropped packets by reason."},
	{"created.", "tandem_sessions_created_total", "counter", "proto", "Sessions created by protocol class."},
	{"ended.", "tandem_sessions_ended_total", "counter", "reason", "Sessions ended by reason."},
	{"sync.", "tandem_sync_total", "counter", "event", "Replication events by kind."},
};
#define N_FAMILIES (sizeof(families) / sizeof(families[0]))

static int family_of(const char *name)
{
	for (size_t f = 0; f < N_FAMILIES; f++)
		if (strncmp(name, families[f].prefix, strlen(families[f].prefix)) == 0)
			return (int)f;
	return -1;
}

void render_metrics(struct rec_buf *b, const Tandem__Status *status,
		    const Tandem__CtlReply *stats,
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
				if (!head)
					family_head(b, families[f].metric, families[f].type,
						    families[f].help);
				head = true;
				rec_buf_printf(b, "%s{%s=\"", families[f].metric,
					       families[f].label);
				put_label(b, c->name + strlen(families[f].prefix));
				rec_buf_printf(b, "\"} %" PRIu64 "\n", c->value);
			}
		}
		/* Everything else as its own untyped metric. */
		for (size_t i = 0; i < stats->n_counters; i++) {
			const Tandem__Counter *c = stats->counters[i];
			char key[128];
			if (family_of(c->name) >= 0)
				continue;
			if (strcmp(c->name, "ageing.active") == 0) {
				gauge(b, "tandem_ageing_active",
				      "1 while aggressive ageing runs.", c->value);
				ageing = true;
				continue;
			}
			keyify(c->name, key, sizeof(key));
			rec_buf_printf(b, "# TYPE tandem_node_%s untyped\n"
				       "tandem_node_%s %" PRIu64 "\n", key, key, c->value);
		}
		if (!ageing)
			gauge(b, "tandem_ageing_active",
			      "1 while aggressive ageing runs.", 0);
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
