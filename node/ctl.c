/*
 * ctl.c - the node's control socket (see ctl.h).
 *
 * Must never: touch a shard (only its owner does, through jobs), block the
 * loop, or apply half a config: a push is parsed, validated and compiled
 * into a new node_conf first; only then does each shard switch to it, at a
 * burst boundary, as the first step of its revalidation job.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "pbwire.h"
#include "sess_wire.h"
#include "tandem.pb-c.h"

#define FRAME_MAX (16u << 20)
#define SESSIONS_DEFAULT 1000
#define SESSIONS_MAX 100000
#define VERSION "0.1.0"

/* ---- configurations ---------------------------------------------------- */

int read_text_file(const char *path, char **ret, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			close(fd);
			return -ENOMEM;
		}
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			snprintf(err, errlen, "%s: %s", path, strerror(e));
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > FRAME_MAX) {
			snprintf(err, errlen, "%s: larger than %u bytes", path,
				 FRAME_MAX);
			free(buf);
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	buf[n] = 0;
	*ret = buf;
	return 0;
}

int node_conf_new(const char *text, const char *path, struct connlimit *lim,
		  bool zones_by_iface, struct node_conf **ret, char *err,
		  size_t errlen)
{
	struct node_conf *nc = calloc(1, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	int r;
	if (path) {
		r = read_text_file(path, &nc->text, err, errlen);
		if (r == 0)
			r = config_load_file(path, &nc->cfg, err, errlen);
	} else {
		nc->text = strdup(text ? text : "");
		r = nc->text ? config_load_string(text ? text : "", &nc->cfg,
						  err, errlen)
			     : -ENOMEM;
	}
	if (r == 0)
		r = policy_compile(nc->cfg, &nc->pol, err, errlen);
	if (r < 0) {
		node_conf_free(nc);
		return r;
	}
	node_ctx_init(&nc->ctx, nc->cfg, nc->pol, lim,
		      zones_by_iface && nc->cfg->n_ifaces > 0);
	*ret = nc;
	return 0;
}

void node_conf_free(struct node_conf *nc)
{
	if (!nc)
		return;
	policy_free(nc->pol);
	config_free(nc->cfg);
	free(nc->text);
	free(nc);
}

/* Zone ids are part of session keys: when the new config numbers zones or
 * interfaces differently, kept sessions would carry wrong ids. */
static bool zones_changed(const struct tandem_config *a,
			  const struct tandem_config *b)
{
	if (a->n_zones != b->n_zones || a->n_ifaces != b->n_ifaces)
		return true;
	for (unsigned i = 0; i < a->n_zones; i++)
		if (strcmp(a->zones[i].name, b->zones[i].name))
			return true;
	for (unsigned i = 0; i < a->n_ifaces; i++)
		if (strcmp(a->ifaces[i].name, b->ifaces[i].name) ||
		    a->ifaces[i].zone != b->ifaces[i].zone)
			return true;
	return false;
}

/* ---- requests ---------------------------------------------------------- */

struct conn;

struct req {
	struct conn *c;                /* NULL once the client went away */
	uint64_t seq;
	Tandem__CtlRequest__Cmd cmd;
	struct ctl_job *jobs;          /* one per shard */
	uint32_t limit;
	struct node_conf *newconf;     /* push/check/rollback */
	bool dry_run, rollback;
	uint64_t t0;
	char source[64];
	unsigned dequeued;             /* jobs done and out of their shard queue */
	struct req *next;
};

struct conn {
	struct ctl *ctl;
	uv_pipe_t pipe;
	uint8_t *buf;
	size_t len, cap;
	bool closing;
	struct conn *next;
};

struct ctl {
	uv_loop_t *loop;
	uv_pipe_t server;
	bool listening;
	uv_async_t wake;
	struct node_conf *cur, *prev;
	struct connlimit *lim;
	unsigned nshards;
	uint32_t capacity;
	const struct ctl_shard_ops *ops;
	void *arg;
	struct ctl_job **queue_head;   /* per shard: posted job first */
	struct req *reqs;              /* in flight */
	struct conn *conns;
	bool config_busy;
	uint64_t started_ms;
	char path[108];
	char file[4096];               /* the config file SIGHUP re-reads */
	/* replication */
	struct conn *subscriber;       /* tandem-syncd's stream, or NULL */
	uv_timer_t drain;
	struct sync_rec *drain_buf;
	unsigned bulks_running;
	char role[16];
};

struct wr {
	uv_write_t w;
	uint8_t *data;
};

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	struct wr *x = (struct wr *)w;
	free(x->data);
	free(x);
}

static void send_msg(struct conn *c, const ProtobufCMessage *m)
{
	if (!c || c->closing)
		return;
	size_t n = protobuf_c_message_get_packed_size(m);
	struct wr *x = malloc(sizeof(*x));
	uint8_t *d = malloc(n + 4);
	if (!x || !d) {
		free(x);
		free(d);
		return;
	}
	d[0] = (uint8_t)(n >> 24);
	d[1] = (uint8_t)(n >> 16);
	d[2] = (uint8_t)(n >> 8);
	d[3] = (uint8_t)n;
	protobuf_c_message_pack(m, d + 4);
	x->data = d;
	uv_buf_t b = uv_buf_init((char *)d, (unsigned)(n + 4));
	if (uv_write(&x->w, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(d);
		free(x);
	}
}

static void send_reply(struct conn *c, Tandem__CtlReply *rep)
{
	send_msg(c, &rep->base);
}

static void reply_error(struct conn *c, uint64_t seq, int status,
			const char *msg)
{
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	rep.seq = seq;
	rep.status = status;
	rep.error = (char *)msg;
	send_reply(c, &rep);
}

/* ---- sessions to the wire (the one place wire enums are converted) ---- */


/* Everything a reply's session needs, in one allocation per session. */
struct wire_sess {
	Tandem__Session s;
	Tandem__SessionKey k;
	Tandem__TcpDir t0, t1;
};

static void sess_to_wire(struct wire_sess *w, const struct sess_copy *c,
			 const struct node_conf *nc, uint64_t now_ms)
{
	const struct sess *s = &c->s;
	const struct tandem_config *cfg = nc->cfg;
	tandem__session__init(&w->s);
	tandem__session_key__init(&w->k);
	w->k.family = s->key.family;
	w->k.proto = s->key.proto;
	w->k.addr0.data = (uint8_t *)s->key.addr[0];
	w->k.addr0.len = 16;
	w->k.addr1.data = (uint8_t *)s->key.addr[1];
	w->k.addr1.len = 16;
	w->k.port0 = s->key.port[0];
	w->k.port1 = s->key.port[1];
	w->k.zone = s->key.zone;
	w->s.id = s->id;
	w->s.key = &w->k;
	w->s.state = sess_state_to_wire(s->state);
	w->s.flags = s->flags;
	w->s.rule = s->rule;
	w->s.rule_name = s->rule < cfg->n_rules ? cfg->rules[s->rule].name : "-";
	w->s.mode = s->mode & 3;
	w->s.pkts0 = s->pkts[0];
	w->s.pkts1 = s->pkts[1];
	w->s.bytes0 = s->bytes[0];
	w->s.bytes1 = s->bytes[1];
	w->s.remaining_ms = c->remaining_ms;
	w->s.has_age_s = true;
	uint32_t now_s = (uint32_t)(now_ms / 1000u);
	w->s.age_s = now_s - s->created;
	for (int d = 0; d < 2; d++) {
		uint8_t i = s->iface[d];
		char *name = i && i <= cfg->n_ifaces ? (char *)cfg->ifaces[i - 1].name : NULL;
		if (d == 0)
			w->s.iface0 = name;
		else
			w->s.iface1 = name;
	}
	w->s.has_wscale = true;
	w->s.wscale = s->wscale;
	w->s.has_shard = true;
	w->s.shard = c->shard;
	if (s->flags & SF_KEEPALIVE) {
		w->s.has_ka_next = true;
		w->s.ka_next = s->mode >> 4;
	}
	w->s.has_timeout_s = true;
	w->s.timeout_s = (uint32_t)(pipeline_sess_timeout_ms(&nc->ctx, s) / 1000u);
	if (s->key.proto == PKT_PROTO_TCP) {
		tandem__tcp_dir__init(&w->t0);
		tandem__tcp_dir__init(&w->t1);
		w->t0.end = s->tcp[0].end;
		w->t0.maxend = s->tcp[0].maxend;
		w->t0.maxwin = s->tcp[0].maxwin;
		w->t1.end = s->tcp[1].end;
		w->t1.maxend = s->tcp[1].maxend;
		w->t1.maxwin = s->tcp[1].maxwin;
		w->t0.has_maxack = (s->tflags & STF_MAXACK0) != 0;
		w->t0.maxack = s->tcp[0].maxack;
		w->t1.has_maxack = (s->tflags & STF_MAXACK1) != 0;
		w->t1.maxack = s->tcp[1].maxack;
		w->s.tcp0 = &w->t0;
		w->s.tcp1 = &w->t1;
	}
}

/* ---- filters ----------------------------------------------------------- */

static int filter_from_wire(const Tandem__Filter *w, const struct node_conf *nc,
			    struct sess_filter *f, char *err, size_t errlen)
{
	sess_filter_init(f);
	if (!w)
		return 0;
	if (w->has_proto) {
		if (w->proto > 255) {
			snprintf(err, errlen, "proto %u out of range", w->proto);
			return 400;
		}
		f->has_proto = true;
		f->proto = (uint8_t)w->proto;
	}
	if (w->has_src) {
		if (w->src.len != 16 || !w->has_src_len || !w->has_src_family ||
		    w->src_len > (w->src_family == 4 ? 32u : 128u)) {
			snprintf(err, errlen, "bad src prefix");
			return 400;
		}
		memcpy(f->src, w->src.data, 16);
		f->src_len = (uint8_t)w->src_len;
		f->src_family = (uint8_t)w->src_family;
	}
	if (w->has_dst) {
		if (w->dst.len != 16 || !w->has_dst_len || !w->has_dst_family ||
		    w->dst_len > (w->dst_family == 4 ? 32u : 128u)) {
			snprintf(err, errlen, "bad dst prefix");
			return 400;
		}
		memcpy(f->dst, w->dst.data, 16);
		f->dst_len = (uint8_t)w->dst_len;
		f->dst_family = (uint8_t)w->dst_family;
	}
	if (w->has_sport) {
		f->has_sport = true;
		f->sport = (uint16_t)w->sport;
	}
	if (w->has_dport) {
		f->has_dport = true;
		f->dport = (uint16_t)w->dport;
	}
	if (w->iface) {
		uint8_t id = config_iface_id(nc->cfg, w->iface);
		if (!id) {
			snprintf(err, errlen, "unknown interface '%s'", w->iface);
			return 404;
		}
		f->iface = id;
	}
	if (w->rule) {
		f->rule = -2;
		for (unsigned i = 0; i < nc->cfg->n_rules; i++)
			if (!strcmp(nc->cfg->rules[i].name, w->rule))
				f->rule = (int)i;
		if (f->rule < 0) {
			snprintf(err, errlen, "unknown rule '%s'", w->rule);
			return 404;
		}
	}
	if (w->has_state) {
		int st = sess_state_from_wire(w->state);
		if (st < 0) {
			snprintf(err, errlen, "unknown state");
			return 400;
		}
		f->has_state = true;
		f->state = (uint8_t)st;
	}
	if (w->has_origin)
		f->origin = (uint8_t)w->origin;
	if (w->has_id) {
		f->has_id = true;
		f->id = w->id;
	}
	return 0;
}

/* ---- jobs to shards ---------------------------------------------------- */

static void post_next(struct ctl *c, unsigned sh)
{
	struct ctl_job *j = c->queue_head[sh];
	if (j && !j->started && !atomic_load(&j->done))
		c->ops->post(c->arg, sh, j);
}

static void enqueue(struct ctl *c, unsigned sh, struct ctl_job *j)
{
	j->next = NULL;
	struct ctl_job **pp = &c->queue_head[sh];
	while (*pp)
		pp = &(*pp)->next;
	*pp = j;
	if (c->queue_head[sh] == j)
		c->ops->post(c->arg, sh, j);
}

static void start_jobs(struct ctl *c, struct req *r, enum job_kind kind,
		       const struct sess_filter *f, uint32_t cap)
{
	r->jobs = calloc(c->nshards, sizeof(*r->jobs));
	if (!r->jobs) {
		reply_error(r->c, r->seq, 500, "out of memory");
		free(r);
		return;
	}
	for (unsigned i = 0; i < c->nshards; i++) {
		struct ctl_job *j = &r->jobs[i];
		j->kind = kind;
		if (f)
			j->filter = *f;
		j->owner = r;
		if (kind == JOB_COLLECT) {
			j->cap = cap;
			j->out = cap ? calloc(cap, sizeof(*j->out)) : NULL;
		}
		if (kind == JOB_REVALIDATE) {
			j->old_ctx = &c->cur->ctx;
			j->new_ctx = &r->newconf->ctx;
			j->dry_run = r->dry_run;
			j->flush = r->newconf->cfg->reload_flush;
			j->zones_changed = zones_changed(c->cur->cfg,
							 r->newconf->cfg);
		}
	}
	r->next = c->reqs;
	c->reqs = r;
	for (unsigned i = 0; i < c->nshards; i++)
		enqueue(c, i, &r->jobs[i]);
}

static void free_req(struct req *r, unsigned nshards)
{
	if (r->jobs)
		for (unsigned i = 0; i < nshards; i++) {
			free(r->jobs[i].out);
			free(r->jobs[i].apply);
		}
	free(r->jobs);
	free(r);
}

static char *hash_hex(const struct node_conf *nc, char *buf)
{
	snprintf(buf, 17, "%016llx", (unsigned long long)policy_hash(nc->pol));
	return buf;
}

static void finish_sessions(struct ctl *c, struct req *r)
{
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	rep.seq = r->seq;
	uint64_t matched = 0, n = 0;
	for (unsigned i = 0; i < c->nshards; i++) {
		matched += r->jobs[i].matched;
		n += r->jobs[i].n_out;
	}
	rep.has_count = true;
	rep.count = matched;
	if (r->cmd == TANDEM__CTL_REQUEST__CMD__SESSIONS) {
		if (n > r->limit)
			n = r->limit;
		struct wire_sess *ws = calloc(n ? n : 1, sizeof(*ws));
		Tandem__Session **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
		if (!ws || !ptrs) {
			free(ws);
			free(ptrs);
			reply_error(r->c, r->seq, 500, "out of memory");
			return;
		}
		uint64_t k = 0, now = clock_now_ms();
		for (unsigned i = 0; i < c->nshards && k < n; i++)
			for (uint32_t m = 0; m < r->jobs[i].n_out && k < n; m++) {
				sess_to_wire(&ws[k], &r->jobs[i].out[m], c->cur, now);
				ptrs[k] = &ws[k].s;
				k++;
			}
		rep.n_sessions = k;
		rep.sessions = ptrs;
		rep.has_truncated = true;
		rep.truncated = matched > k;
		send_reply(r->c, &rep);
		free(ws);
		free(ptrs);
		return;
	}
	send_reply(r->c, &rep);
}

static void finish_config(struct ctl *c, struct req *r)
{
	char ho[17], hn[17];
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	Tandem__PushResult pr = TANDEM__PUSH_RESULT__INIT;
	Tandem__Counter cnt[REVAL_MAX], *cp[REVAL_MAX];
	uint64_t ended[REVAL_MAX] = {0}, kept = 0;
	for (unsigned i = 0; i < c->nshards; i++) {
		kept += r->jobs[i].kept;
		for (unsigned e = 0; e < REVAL_MAX; e++)
			ended[e] += r->jobs[i].ended[e];
	}
	for (unsigned e = 0; e < REVAL_MAX; e++) {
		tandem__counter__init(&cnt[e]);
		cnt[e].name = (char *)reval_reason_name(e);
		cnt[e].value = ended[e];
		cp[e] = &cnt[e];
	}
	pr.hash_old = hash_hex(c->cur, ho);
	pr.hash_new = hash_hex(r->newconf, hn);
	pr.kept = kept;
	pr.n_ended = REVAL_MAX;
	pr.ended = cp;
	pr.dry_run = r->dry_run;
	pr.elapsed_ms = (uint32_t)(clock_now_ms() - r->t0);
	pr.flushed = r->newconf->cfg->reload_flush;
	rep.seq = r->seq;
	rep.push = &pr;
	send_reply(r->c, &rep);
	fprintf(stderr,
		"tandem-node: config %s%s by %s: policy %s -> %s, kept %llu, ended %llu, %u ms\n",
		r->rollback ? "rollback" : "push", r->dry_run ? " (check)" : "",
		r->source[0] ? r->source : "?", ho, hn,
		(unsigned long long)kept,
		(unsigned long long)(ended[0] + ended[1] + ended[2] + ended[3] +
				     ended[4] + ended[5] + ended[6] + ended[7]),
		pr.elapsed_ms);
	if (r->dry_run) {
		node_conf_free(r->newconf);
	} else if (r->rollback) {
		/* the previous config is running again; keep the other as
		 * "previous" so a second rollback undoes the first */
		struct node_conf *t = c->cur;
		c->cur = r->newconf;
		c->prev = t;
	} else {
		node_conf_free(c->prev);
		c->prev = c->cur;
		c->cur = r->newconf;
	}
	r->newconf = NULL;
	c->config_busy = false;
}

static void finish_bulk(struct ctl *c);
static void finish_sync(struct ctl *c, struct req *r);

static void on_wake(uv_async_t *a)
{
	struct ctl *c = a->data;
	/* advance every shard's queue past finished jobs */
	for (unsigned i = 0; i < c->nshards; i++) {
		while (c->queue_head[i] && atomic_load_explicit(
					       &c->queue_head[i]->done,
					       memory_order_acquire)) {
			struct ctl_job *j = c->queue_head[i];
			c->queue_head[i] = j->next;
			((struct req *)j->owner)->dequeued++;
			post_next(c, i);
		}
	}
	/* answer requests whose every job is done and out of the queues (a
	 * worker may finish a job between the loop above and this one: its
	 * request waits for the next wake, never freed under a queue head) */
	struct req **pp = &c->reqs;
	while (*pp) {
		struct req *r = *pp;
		bool all = r->dequeued == c->nshards;
		if (!all) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (r->cmd == TANDEM__CTL_REQUEST__CMD__CONFIG_PUSH ||
		    r->cmd == TANDEM__CTL_REQUEST__CMD__CONFIG_CHECK ||
		    r->cmd == TANDEM__CTL_REQUEST__CMD__CONFIG_ROLLBACK)
			finish_config(c, r);
		else if (r->jobs[0].kind == JOB_DUMP)
			finish_bulk(c);
		else if (r->jobs[0].kind == JOB_APPLY ||
			 r->jobs[0].kind == JOB_DIGEST ||
			 r->jobs[0].kind == JOB_PROMOTE)
			finish_sync(c, r);
		else
			finish_sessions(c, r);
		free_req(r, c->nshards);
	}
}

void ctl_wake(struct ctl *c)
{
	uv_async_send(&c->wake);
}

/* ---- replication ------------------------------------------------------- */

#define DRAIN_MS 5
#define DRAIN_BATCH 1024
#define SUBSCRIBER_MAX_QUEUED (32u << 20)

static Tandem__SessionEvent__Type type_to_wire(uint8_t t)
{
	switch ((enum sync_type)t) {
	case SYNC_CREATE: return TANDEM__SESSION_EVENT__TYPE__CREATE;
	case SYNC_STATE: return TANDEM__SESSION_EVENT__TYPE__STATE;
	case SYNC_REFRESH: return TANDEM__SESSION_EVENT__TYPE__REFRESH;
	case SYNC_EXPIRE: return TANDEM__SESSION_EVENT__TYPE__EXPIRE;
	default: return TANDEM__SESSION_EVENT__TYPE__DELETE;
	}
}

static void send_stream(struct ctl *c, Tandem__SyncStream *m)
{
	send_msg(c->subscriber, &m->base);
}

static uint64_t dropped_total(struct ctl *c)
{
	uint64_t d = 0;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct sync_out *o = c->ops->sync(c->arg, i);
		if (o)
			d += atomic_load(&o->dropped);
	}
	return d;
}

/* Move every queued event of every shard to the subscriber. */
static void drain_rings(struct ctl *c)
{
	if (!c->subscriber || c->subscriber->closing)
		return;
	/* a slow syncd: leave the events in the rings (full rings count
	 * drops) rather than queue without bound here */
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->subscriber->pipe) >
	    SUBSCRIBER_MAX_QUEUED)
		return;
	static struct wire_sess ws[DRAIN_BATCH];
	static Tandem__SessionEvent ev[DRAIN_BATCH];
	static Tandem__SessionEvent *evp[DRAIN_BATCH];
	static struct sess_copy cps[DRAIN_BATCH]; /* the wire points into these */
	uint64_t now = clock_now_ms();
	for (unsigned i = 0; i < c->nshards; i++) {
		struct sync_out *o = c->ops->sync(c->arg, i);
		if (!o)
			continue;
		unsigned n;
		while ((n = sync_pop(o, c->drain_buf, DRAIN_BATCH)) > 0) {
			for (unsigned k = 0; k < n; k++) {
				const struct sync_rec *r = &c->drain_buf[k];
				int32_t left = (int32_t)(r->expire - (uint32_t)now);
				cps[k].s = r->s;
				cps[k].remaining_ms = left > 0 ? (uint32_t)left : 0;
				cps[k].shard = (uint8_t)i;
				sess_to_wire(&ws[k], &cps[k], c->cur, now);
				tandem__session_event__init(&ev[k]);
				ev[k].type = type_to_wire(r->type);
				ev[k].session = &ws[k].s;
				evp[k] = &ev[k];
			}
			Tandem__EventBatch b = TANDEM__EVENT_BATCH__INIT;
			b.n_events = n;
			b.events = evp;
			Tandem__SyncStream m = TANDEM__SYNC_STREAM__INIT;
			m.events = &b;
			m.has_dropped = true;
			m.dropped = dropped_total(c);
			send_stream(c, &m);
		}
	}
}

static void on_drain(uv_timer_t *t)
{
	drain_rings(t->data);
}

static void set_subscribed(struct ctl *c, bool on)
{
	for (unsigned i = 0; i < c->nshards; i++) {
		struct sync_out *o = c->ops->sync(c->arg, i);
		if (o)
			atomic_store(&o->subscribed, on);
	}
}

static struct req *new_req_cmd(struct conn *cn, uint64_t seq, int cmd)
{
	struct req *r = calloc(1, sizeof(*r));
	if (!r) {
		reply_error(cn, seq, 500, "out of memory");
		return NULL;
	}
	r->c = cn;
	r->seq = seq;
	r->cmd = cmd;
	return r;
}

static struct req *new_req(struct conn *cn, const Tandem__CtlRequest *q)
{
	return new_req_cmd(cn, q ? q->seq : 0,
			   q ? (int)q->cmd : TANDEM__CTL_REQUEST__CMD__SYNC_BULK);
}

/* Post the jobs of r (already filled) to every shard. */
static void post_jobs(struct ctl *c, struct req *r)
{
	for (unsigned i = 0; i < c->nshards; i++)
		r->jobs[i].owner = r;
	r->next = c->reqs;
	c->reqs = r;
	for (unsigned i = 0; i < c->nshards; i++)
		enqueue(c, i, &r->jobs[i]);
}

static bool alloc_jobs(struct ctl *c, struct req *r, enum job_kind kind)
{
	r->jobs = calloc(c->nshards, sizeof(*r->jobs));
	if (!r->jobs) {
		reply_error(r->c, r->seq, 500, "out of memory");
		free(r);
		return false;
	}
	for (unsigned i = 0; i < c->nshards; i++)
		r->jobs[i].kind = kind;
	return true;
}

/* A bulk dump: every local session as CREATE, through the rings. */
static void start_bulk(struct ctl *c)
{
	struct req *r = new_req(NULL, NULL);
	if (!r || !alloc_jobs(c, r, JOB_DUMP))
		return;
	c->bulks_running++;
	Tandem__SyncStream m = TANDEM__SYNC_STREAM__INIT;
	m.has_bulk_begin = true;
	m.bulk_begin = true;
	send_stream(c, &m);
	post_jobs(c, r);
}

static void finish_bulk(struct ctl *c)
{
	drain_rings(c);
	Tandem__SyncStream m = TANDEM__SYNC_STREAM__INIT;
	m.has_bulk_end = true;
	m.bulk_end = true;
	send_stream(c, &m);
	if (c->bulks_running)
		c->bulks_running--;
}

static void do_subscribe(struct ctl *c, struct conn *cn, uint64_t seq)
{
	if (!c->ops->sync || !c->ops->sync(c->arg, 0)) {
		reply_error(cn, seq, 503, "replication is off in this node");
		return;
	}
	if (c->subscriber && c->subscriber != cn) {
		reply_error(cn, seq, 409, "another syncd is subscribed");
		return;
	}
	c->subscriber = cn;
	set_subscribed(c, true);
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	rep.seq = seq;
	send_reply(cn, &rep);
	start_bulk(c);
}

/* CtlRequest fields read in place (proto/tandem.proto) */
enum { CQ_SEQ = 1, CQ_CMD = 2, CQ_EVENTS = 7 };

/* SYNC_APPLY read where it lies (pbwire.h, sess_wire.h): the same jobs as
 * do_apply without protobuf-c's unpack (one allocation per field of every
 * event, most of a standby's time per applied session). An event that is
 * not well-formed or not valid is counted as refused and the rest are
 * applied; a malformed batch ends the reading there. */
static void do_apply_packed(struct ctl *c, struct conn *cn, uint64_t seq,
			    const uint8_t *in, size_t len)
{
	struct req *r = new_req_cmd(cn, seq, TANDEM__CTL_REQUEST__CMD__SYNC_APPLY);
	if (!r || !alloc_jobs(c, r, JOB_APPLY))
		return;
	uint32_t *cap = calloc(c->nshards, sizeof(*cap));
	if (!cap) {
		reply_error(cn, seq, 500, "out of memory");
		free_req(r, c->nshards);
		return;
	}
	uint64_t now = clock_now_ms(), bad = 0;
	struct pb_events it;
	struct pb_event ev;
	int got;
	pb_events_begin(&it, in, len, CQ_EVENTS);
	while ((got = pb_events_next(&it, &ev)) != 0) {
		struct peer_rec pr;
		if (got < 0 || peer_rec_from_bytes(ev.session, ev.session_len,
						   c->cur->cfg, now, &pr) < 0) {
			bad++;
			continue;
		}
		pr.type = sync_type_from_wire(ev.type);
		unsigned sh = pipeline_shard_of_addrs(pr.s.key.family,
						      pr.s.key.addr[0],
						      pr.s.key.addr[1], c->nshards);
		struct ctl_job *j = &r->jobs[sh];
		if (j->n_apply == cap[sh]) {
			uint32_t nc = cap[sh] ? cap[sh] * 2 : 256;
			struct peer_rec *na = realloc(j->apply, nc * sizeof(*na));
			if (!na) {
				reply_error(cn, seq, 500, "out of memory");
				free(cap);
				free_req(r, c->nshards);
				return;
			}
			j->apply = na;
			cap[sh] = nc;
		}
		j->apply[j->n_apply++] = pr;
	}
	free(cap);
	for (unsigned i = 0; i < c->nshards; i++)
		r->jobs[i].peer_wins = strcmp(c->role, "standby") == 0;
	r->limit = (uint32_t)bad; /* reported as refused */
	post_jobs(c, r);
}

static void finish_sync(struct ctl *c, struct req *r)
{
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	Tandem__SyncDigest dg = TANDEM__SYNC_DIGEST__INIT;
	rep.seq = r->seq;
	uint64_t applied = 0, conflicts = 0, refused = r->limit;
	for (unsigned i = 0; i < c->nshards; i++) {
		applied += r->jobs[i].applied;
		conflicts += r->jobs[i].conflicts;
		refused += r->jobs[i].refused;
		dg.xor_hash ^= r->jobs[i].xor_hash;
		dg.local += r->jobs[i].local;
		dg.peer += r->jobs[i].peer;
	}
	switch (r->cmd) {
	case TANDEM__CTL_REQUEST__CMD__SYNC_APPLY:
		rep.has_count = true;
		rep.count = applied;
		if (conflicts || refused) {
			static char msg[96];
			snprintf(msg, sizeof(msg), "applied %llu conflicts %llu refused %llu",
				 (unsigned long long)applied,
				 (unsigned long long)conflicts,
				 (unsigned long long)refused);
			rep.error = msg;
		}
		break;
	case TANDEM__CTL_REQUEST__CMD__SYNC_DIGEST:
		dg.sessions = dg.local + dg.peer;
		rep.digest = &dg;
		break;
	case TANDEM__CTL_REQUEST__CMD__PROMOTE:
		rep.has_count = true;
		rep.count = dg.local;
		break;
	default:
		break;
	}
	send_reply(r->c, &rep);
}

static void sync_cmd(struct ctl *c, struct conn *cn, const Tandem__CtlRequest *q,
		     enum job_kind kind)
{
	struct req *r = new_req(cn, q);
	if (!r || !alloc_jobs(c, r, kind))
		return;
	post_jobs(c, r);
}

/* ---- commands answered at once ----------------------------------------- */

static void add_counter(Tandem__Counter *cs, Tandem__Counter **ps, size_t *n,
			char (*names)[64], const char *name, uint64_t v)
{
	snprintf(names[*n], 64, "%s", name);
	tandem__counter__init(&cs[*n]);
	cs[*n].name = names[*n];
	cs[*n].value = v;
	ps[*n] = &cs[*n];
	(*n)++;
}

static void totals(struct ctl *c, struct shard_stats *t, uint64_t *sessions)
{
	memset(t, 0, sizeof(*t));
	*sessions = 0;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard_stats one;
		uint32_t n;
		c->ops->read(c->arg, i, &one, &n);
		stats_add(t, &one);
		*sessions += n;
	}
}

static void do_stats(struct ctl *c, struct conn *cn, uint64_t seq)
{
	struct shard_stats t;
	uint64_t sessions;
	totals(c, &t, &sessions);
	enum { MAXC = V_MAX + DROP_MAX + PC_MAX * 2 + END_MAX + PC_MAX * SS_MAX + SS_MAX + TN_MAX + 16 };
	static Tandem__Counter cs[MAXC];
	static Tandem__Counter *ps[MAXC];
	static char names[MAXC][64];
	size_t n = 0;
	char nm[64];
	add_counter(cs, ps, &n, names, "packets", t.pkts);
	add_counter(cs, ps, &n, names, "bytes", t.bytes);
	add_counter(cs, ps, &n, names, "sessions", sessions);
	add_counter(cs, ps, &n, names, "capacity", c->capacity);
	add_counter(cs, ps, &n, names, "ageing_started", t.ageing_on);
	add_counter(cs, ps, &n, names, "first_fragments", t.first_frags);
	add_counter(cs, ps, &n, names, "ageing.active", t.ageing_active ? 1 : 0);
	for (unsigned s = 1; s < SS_MAX; s++) {
		snprintf(nm, sizeof(nm), "sessions.%s", sess_state_name(s));
		add_counter(cs, ps, &n, names, nm, stats_live(&t, s));
	}
	add_counter(cs, ps, &n, names, "keepalive.probes", t.ka_probes);
	add_counter(cs, ps, &n, names, "keepalive.rejuvenated", t.ka_rejuvenated);
	add_counter(cs, ps, &n, names, "keepalive.discarded_rst", t.ka_rst);
	add_counter(cs, ps, &n, names, "tcp.mss-clamped", t.mss_clamped);
	for (unsigned k = 1; k < TN_MAX; k++) {
		snprintf(nm, sizeof(nm), "tcp.%s", track_note_name(k));
		add_counter(cs, ps, &n, names, nm, t.tcp_note[k]);
	}
	for (unsigned v = 0; v < V_MAX; v++) {
		snprintf(nm, sizeof(nm), "verdict.%s", verdict_name(v));
		add_counter(cs, ps, &n, names, nm, t.verdict[v]);
	}
	for (unsigned d = 1; d < DROP_MAX; d++) {
		snprintf(nm, sizeof(nm), "drop.%s", drop_name(d));
		add_counter(cs, ps, &n, names, nm, t.drop[d]);
	}
	for (unsigned p = 0; p < PC_MAX; p++) {
		snprintf(nm, sizeof(nm), "created.%s", proto_class_name(p));
		add_counter(cs, ps, &n, names, nm, t.created[p]);
		snprintf(nm, sizeof(nm), "stateless.%s", proto_class_name(p));
		add_counter(cs, ps, &n, names, nm, t.stateless[p]);
	}
	for (unsigned e = 0; e < END_MAX; e++) {
		snprintf(nm, sizeof(nm), "ended.%s", end_reason_name(e));
		add_counter(cs, ps, &n, names, nm, t.ended[e]);
	}
	for (unsigned p = 0; p < PC_MAX; p++)
		for (unsigned s = 1; s < SS_MAX; s++)
			if (t.ended_state[p][s]) {
				snprintf(nm, sizeof(nm), "ended_in.%s.%s",
					 proto_class_name(p), sess_state_name(s));
				add_counter(cs, ps, &n, names, nm, t.ended_state[p][s]);
			}
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	rep.seq = seq;
	rep.n_counters = n;
	rep.counters = ps;
	send_reply(cn, &rep);
}

static void do_status(struct ctl *c, struct conn *cn, uint64_t seq)
{
	struct shard_stats t;
	uint64_t sessions;
	char h[17];
	totals(c, &t, &sessions);
	Tandem__Status st = TANDEM__STATUS__INIT;
	st.node_name = c->cur->cfg->node_name;
	st.node_id = c->cur->cfg->node_id;
	st.uptime_s = (clock_now_ms() - c->started_ms) / 1000u;
	st.shards = c->nshards;
	st.sessions = sessions;
	st.capacity = c->capacity;
	st.policy_hash = hash_hex(c->cur, h);
	st.rules = c->cur->cfg->n_rules;
	st.version = VERSION;
	st.config_path = c->file;
	if (c->role[0])
		st.role = c->role;
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	rep.seq = seq;
	rep.node = &st;
	send_reply(cn, &rep);
}

static const char *mode_name(enum track_mode m)
{
	static const char *const n[] = {"off", "loose", "normal", "strict"};
	return (unsigned)m < 4 ? n[m] : "?";
}

static void do_policy(struct ctl *c, struct conn *cn, uint64_t seq)
{
	const struct tandem_config *cfg = c->cur->cfg;
	size_t cap = 256 + (size_t)cfg->n_rules * 256, n = 0;
	char *text = malloc(cap), h[17];
	if (!text) {
		reply_error(cn, seq, 500, "out of memory");
		return;
	}
	static const char *const act[] = {"accept", "drop", "reject"};
	n += (size_t)snprintf(text + n, cap - n, "policy hash=%s rules=%u\n",
			      hash_hex(c->cur, h), cfg->n_rules);
	for (unsigned i = 0; i < cfg->n_rules && n < cap; i++) {
		const struct cfg_rule *r = &cfg->rules[i];
		n += (size_t)snprintf(text + n, cap - n,
			"rule index=%u name=%s from=%s to=%s action=%s tracking=%s "
			"idle_timeout=%u keepalive=%s limit_per_source=%u "
			"limit_per_destination=%u log=%s line=%u\n",
			i, r->name, r->from_zone ? config_zone_name(cfg, r->from_zone) : "any",
			r->to_zone ? config_zone_name(cfg, r->to_zone) : "any",
			act[r->action], mode_name(r->mode), r->idle_timeout,
			r->keepalive ? "yes" : "no", r->limit_src, r->limit_dst,
			r->log ? "yes" : "no", r->line);
	}
	Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
	rep.seq = seq;
	rep.text = text;
	send_reply(cn, &rep);
	free(text);
}

static void config_request(struct ctl *c, struct conn *cn,
			   const Tandem__CtlRequest *q)
{
	char err[512] = "";
	if (c->config_busy) {
		reply_error(cn, q->seq, 409, "another config change is running");
		return;
	}
	struct req *r = calloc(1, sizeof(*r));
	if (!r) {
		reply_error(cn, q->seq, 500, "out of memory");
		return;
	}
	r->c = cn;
	r->seq = q->seq;
	r->cmd = q->cmd;
	r->t0 = clock_now_ms();
	snprintf(r->source, sizeof(r->source), "%s", q->source ? q->source : "ctl");
	if (q->cmd == TANDEM__CTL_REQUEST__CMD__CONFIG_ROLLBACK) {
		if (!c->prev) {
			free(r);
			reply_error(cn, q->seq, 409, "no previous config to roll back to");
			return;
		}
		r->rollback = true;
		r->newconf = c->prev;
		c->prev = NULL;
	} else {
		if (!q->config_text) {
			free(r);
			reply_error(cn, q->seq, 400, "config text missing");
			return;
		}
		int rc = node_conf_new(q->config_text, NULL, c->lim,
				       c->cur->ctx.zones_by_iface, &r->newconf,
				       err, sizeof(err));
		if (rc < 0) {
			free(r);
			reply_error(cn, q->seq, 422, err);
			return;
		}
		r->newconf->ctx.zones_by_iface = c->cur->ctx.zones_by_iface &&
						 r->newconf->cfg->n_ifaces > 0;
		if (r->newconf->cfg->max_sessions != c->cur->cfg->max_sessions ||
		    r->newconf->cfg->queues != c->cur->cfg->queues ||
		    r->newconf->cfg->queue_first != c->cur->cfg->queue_first ||
		    r->newconf->cfg->node_id != c->cur->cfg->node_id ||
		    r->newconf->cfg->af_xdp != c->cur->cfg->af_xdp ||
		    r->newconf->cfg->n_ifaces != c->cur->cfg->n_ifaces ||
		    memcmp(r->newconf->cfg->ifaces, c->cur->cfg->ifaces,
			   sizeof(c->cur->cfg->ifaces[0]) * c->cur->cfg->n_ifaces) != 0)
			fprintf(stderr, "tandem-node: note: table size, queues, data path "
				"source, zone interfaces and node id "
				"take effect at the next restart\n");
		r->dry_run = q->cmd == TANDEM__CTL_REQUEST__CMD__CONFIG_CHECK;
	}
	c->config_busy = true;
	start_jobs(c, r, JOB_REVALIDATE, NULL, 0);
}

static void handle(struct ctl *c, struct conn *cn, const Tandem__CtlRequest *q)
{
	char err[256] = "";
	switch (q->cmd) {
	case TANDEM__CTL_REQUEST__CMD__STATUS:
		do_status(c, cn, q->seq);
		return;
	case TANDEM__CTL_REQUEST__CMD__STATS:
		do_stats(c, cn, q->seq);
		return;
	case TANDEM__CTL_REQUEST__CMD__POLICY:
		do_policy(c, cn, q->seq);
		return;
	case TANDEM__CTL_REQUEST__CMD__CONFIG_SHOW: {
		Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
		rep.seq = q->seq;
		rep.text = c->cur->text;
		send_reply(cn, &rep);
		return;
	}
	case TANDEM__CTL_REQUEST__CMD__CONFIG_PUSH:
	case TANDEM__CTL_REQUEST__CMD__CONFIG_CHECK:
	case TANDEM__CTL_REQUEST__CMD__CONFIG_ROLLBACK:
		config_request(c, cn, q);
		return;
	case TANDEM__CTL_REQUEST__CMD__SESSIONS:
	case TANDEM__CTL_REQUEST__CMD__COUNT:
	case TANDEM__CTL_REQUEST__CMD__CLEAR: {
		struct sess_filter f;
		int st = filter_from_wire(q->filter, c->cur, &f, err, sizeof(err));
		if (st) {
			reply_error(cn, q->seq, st, err);
			return;
		}
		struct req *r = calloc(1, sizeof(*r));
		if (!r) {
			reply_error(cn, q->seq, 500, "out of memory");
			return;
		}
		r->c = cn;
		r->seq = q->seq;
		r->cmd = q->cmd;
		enum job_kind k = q->cmd == TANDEM__CTL_REQUEST__CMD__SESSIONS ? JOB_COLLECT
				  : q->cmd == TANDEM__CTL_REQUEST__CMD__COUNT ? JOB_COUNT
				  : JOB_CLEAR;
		r->limit = q->has_limit && q->limit ? q->limit : SESSIONS_DEFAULT;
		if (r->limit > SESSIONS_MAX)
			r->limit = SESSIONS_MAX;
		start_jobs(c, r, k, &f, k == JOB_COLLECT ? r->limit : 0);
		return;
	}
	case TANDEM__CTL_REQUEST__CMD__SYNC_SUBSCRIBE:
		do_subscribe(c, cn, q->seq);
		return;
	case TANDEM__CTL_REQUEST__CMD__SYNC_BULK:
		if (c->subscriber != cn) {
			reply_error(cn, q->seq, 409, "not the subscribed connection");
			return;
		}
		{
			Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
			rep.seq = q->seq;
			send_reply(cn, &rep);
		}
		start_bulk(c);
		return;
	/* SYNC_APPLY never gets here: on_read reads it in place */
	case TANDEM__CTL_REQUEST__CMD__SYNC_DIGEST:
		sync_cmd(c, cn, q, JOB_DIGEST);
		return;
	case TANDEM__CTL_REQUEST__CMD__PROMOTE:
		sync_cmd(c, cn, q, JOB_PROMOTE);
		return;
	case TANDEM__CTL_REQUEST__CMD__ROLE_SET: {
		if (!q->role || (strcmp(q->role, "active") && strcmp(q->role, "standby"))) {
			reply_error(cn, q->seq, 400, "role must be active or standby");
			return;
		}
		snprintf(c->role, sizeof(c->role), "%s", q->role);
		fprintf(stderr, "tandem-node: role %s\n", c->role);
		Tandem__CtlReply rep = TANDEM__CTL_REPLY__INIT;
		rep.seq = q->seq;
		send_reply(cn, &rep);
		return;
	}
	default:
		reply_error(cn, q->seq, 400, "unknown command");
	}
}

/* ---- connections -------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *cn = h->data;
	free(cn->buf);
	free(cn);
}

static void conn_close(struct conn *cn)
{
	if (cn->closing)
		return;
	cn->closing = true;
	struct ctl *c = cn->ctl;
	if (c->subscriber == cn) {
		c->subscriber = NULL;
		set_subscribed(c, false);
	}
	for (struct req *r = c->reqs; r; r = r->next)
		if (r->c == cn)
			r->c = NULL; /* its jobs finish; the answer is dropped */
	struct conn **pp = &c->conns;
	while (*pp && *pp != cn)
		pp = &(*pp)->next;
	if (*pp)
		*pp = cn->next;
	uv_close((uv_handle_t *)&cn->pipe, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)hint;
	struct conn *cn = h->data;
	if (cn->cap - cn->len < 65536) {
		size_t nc = cn->cap ? cn->cap * 2 : 131072;
		uint8_t *nb = realloc(cn->buf, nc);
		if (!nb) {
			*b = uv_buf_init(NULL, 0);
			return;
		}
		cn->buf = nb;
		cn->cap = nc;
	}
	*b = uv_buf_init((char *)cn->buf + cn->len, (unsigned)(cn->cap - cn->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)b;
	struct conn *cn = s->data;
	if (n < 0) {
		conn_close(cn);
		return;
	}
	cn->len += (size_t)n;
	size_t off = 0;
	while (cn->len - off >= 4) {
		const uint8_t *p = cn->buf + off;
		uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			       (uint32_t)p[2] << 8 | p[3];
		if (len > FRAME_MAX) {
			reply_error(cn, 0, 413, "frame too large");
			conn_close(cn);
			return;
		}
		if (cn->len - off - 4 < len)
			break;
		off += 4 + len;
		/* a SYNC_APPLY (seq and cmd present) is read in place */
		uint64_t qv[CQ_CMD + 1] = {0};
		unsigned seen = 0;
		if (pb_scan(p + 4, len, CQ_EVENTS, qv, CQ_CMD + 1, &seen) >= 0 &&
		    (seen & (1u << CQ_SEQ | 1u << CQ_CMD)) == (1u << CQ_SEQ | 1u << CQ_CMD) &&
		    qv[CQ_CMD] == TANDEM__CTL_REQUEST__CMD__SYNC_APPLY) {
			do_apply_packed(cn->ctl, cn, qv[CQ_SEQ], p + 4, len);
			if (cn->closing)
				return;
			continue;
		}
		Tandem__CtlRequest *q = tandem__ctl_request__unpack(NULL, len, p + 4);
		if (!q) {
			reply_error(cn, 0, 400, "malformed request");
			conn_close(cn);
			return;
		}
		handle(cn->ctl, cn, q);
		tandem__ctl_request__free_unpacked(q, NULL);
		if (cn->closing)
			return;
	}
	memmove(cn->buf, cn->buf + off, cn->len - off);
	cn->len -= off;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ctl *c = server->data;
	if (status < 0)
		return;
	struct conn *cn = calloc(1, sizeof(*cn));
	if (!cn)
		return;
	cn->ctl = c;
	uv_pipe_init(c->loop, &cn->pipe, 0);
	cn->pipe.data = cn;
	if (uv_accept(server, (uv_stream_t *)&cn->pipe) < 0) {
		cn->closing = true;
		uv_close((uv_handle_t *)&cn->pipe, on_conn_closed);
		return;
	}
	cn->next = c->conns;
	c->conns = cn;
	uv_read_start((uv_stream_t *)&cn->pipe, on_alloc, on_read);
}

/* ---- life cycle ----------------------------------------------------------- */

int ctl_new(uv_loop_t *loop, struct node_conf *running, unsigned nshards,
	    uint32_t capacity, const struct ctl_shard_ops *ops, void *arg,
	    struct ctl **ret)
{
	struct ctl *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->queue_head = calloc(nshards, sizeof(*c->queue_head));
	if (!c->queue_head) {
		free(c);
		return -ENOMEM;
	}
	c->loop = loop;
	c->cur = running;
	c->lim = running->ctx.lim;
	c->nshards = nshards;
	c->capacity = capacity;
	c->ops = ops;
	c->arg = arg;
	c->started_ms = clock_now_ms();
	snprintf(c->file, sizeof(c->file), "%s", running->cfg->path);
	uv_async_init(loop, &c->wake, on_wake);
	c->wake.data = c;
	c->drain_buf = calloc(DRAIN_BATCH, sizeof(*c->drain_buf));
	if (!c->drain_buf) {
		uv_close((uv_handle_t *)&c->wake, NULL);
		free(c->queue_head);
		free(c);
		return -ENOMEM;
	}
	uv_timer_init(loop, &c->drain);
	c->drain.data = c;
	if (ops->sync && ops->sync(arg, 0))
		uv_timer_start(&c->drain, on_drain, DRAIN_MS, DRAIN_MS);
	*ret = c;
	return 0;
}

static int mkdir_p(const char *dir)
{
	char tmp[108];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ctl_listen(struct ctl *c, const char *path, char *err, size_t errlen)
{
	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		int r = mkdir_p(dir);
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", dir, strerror(-r));
			return r;
		}
	}
	/* A socket file left by a crash is replaced; one that a live node
	 * answers on is not taken over. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		int live = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(probe);
		if (live) {
			snprintf(err, errlen, "%s: another process answers there "
				 "(a node with the same control.socket runs)", path);
			return -EADDRINUSE;
		}
	}
	unlink(path);
	uv_pipe_init(c->loop, &c->server, 0);
	c->server.data = c;
	int r = uv_pipe_bind(&c->server, path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&c->server, 16, on_connection);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, uv_strerror(r));
		uv_close((uv_handle_t *)&c->server, NULL);
		return r;
	}
	chmod(path, 0660);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->listening = true;
	return 0;
}

void ctl_reload_file(struct ctl *c)
{
	char err[512] = "";
	if (c->config_busy) {
		fprintf(stderr, "tandem-node: SIGHUP: a config change is running; try again\n");
		return;
	}
	struct req *q = calloc(1, sizeof(*q));
	struct node_conf *nc = NULL;
	int r = q ? node_conf_new(NULL, c->file, c->lim,
				  c->cur->ctx.zones_by_iface, &nc, err, sizeof(err))
		  : -ENOMEM;
	if (r < 0) {
		free(q);
		fprintf(stderr, "tandem-node: SIGHUP: config refused, old policy kept: %s\n", err);
		return;
	}
	q->cmd = TANDEM__CTL_REQUEST__CMD__CONFIG_PUSH;
	q->newconf = nc;
	q->t0 = clock_now_ms();
	snprintf(q->source, sizeof(q->source), "SIGHUP");
	c->config_busy = true;
	start_jobs(c, q, JOB_REVALIDATE, NULL, 0);
}

void ctl_close(struct ctl *c)
{
	while (c->conns)
		conn_close(c->conns);
	if (c->listening) {
		uv_close((uv_handle_t *)&c->server, NULL);
		unlink(c->path);
		c->listening = false;
	}
	uv_close((uv_handle_t *)&c->wake, NULL);
	uv_close((uv_handle_t *)&c->drain, NULL);
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	while (c->reqs) {
		struct req *r = c->reqs;
		c->reqs = r->next;
		if (r->newconf && r->newconf != c->cur && r->newconf != c->prev)
			node_conf_free(r->newconf);
		free_req(r, c->nshards);
	}
	if (c->prev != c->cur)
		node_conf_free(c->prev);
	node_conf_free(c->cur);
	free(c->queue_head);
	free(c->drain_buf);
	free(c);
}
