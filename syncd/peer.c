/*
 * peer.c - authenticated sync links and data-side heartbeats (see peer.h).
 *
 * Must never: hand a payload to protobuf before its tag verified, change a
 * replay window or a link for a refused frame, or block the loop.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "clock.h"

struct conn {
	struct peers *ps;
	uv_tcp_t tcp;
	uv_connect_t creq;
	struct buf in;
	int peer;               /* bound peer, -1 until a frame verified */
	int expect;             /* outgoing: the peer we called */
	bool outgoing, connected, closing, reading;
	uint64_t last_rx_ms;
	struct conn *next;
};

struct peer_slot {
	const struct sconf_peer *cfg;
	struct sockaddr_storage addr;
	struct conn *link;      /* established, or NULL */
	struct conn *dialing;   /* outgoing connection in progress */
	uint64_t next_dial_ms;
	struct replay_win win[2];
	struct peer_link_stats st;
	uint64_t dead_ms;       /* negotiated; 0: our own */
};

struct peers {
	uv_loop_t *loop;
	const struct sconf *conf;
	const struct peers_ops *ops;
	void *arg;
	uv_tcp_t server;
	uv_udp_t udp;
	bool server_open, udp_open;
	struct sockaddr_storage data_peer;
	struct peer_slot slot[SCONF_MAX_PEERS];
	unsigned n;
	struct conn *conns;
	uint64_t seq[2];
	uint64_t epoch;
	uint64_t refused_total[SR_MAX];
	struct arena arena;
	struct buf scratch;
	struct buf rx;               /* a payload without its events */
	uint8_t *udp_buf;
	bool closing;
};

#define DIAL_RETRY_MS 200
#define UDP_MAX 65536

static uint64_t dead_ms(const struct peers *ps)
{
	return (uint64_t)ps->conf->hb_interval_ms * ps->conf->dead_count;
}

static int make_addr(const char *host, uint16_t port,
		     struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		return 0;
	}
	return -EINVAL;
}

int peers_index(const struct peers *ps, uint16_t node_id)
{
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->slot[i].cfg->id == node_id)
			return (int)i;
	return -1;
}

int peers_new(uv_loop_t *loop, const struct sconf *conf,
	      const struct peers_ops *ops, void *arg, struct peers **ret)
{
	struct peers *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->loop = loop;
	ps->conf = conf;
	ps->ops = ops;
	ps->arg = arg;
	ps->n = conf->n_peers;
	for (unsigned i = 0; i < ps->n; i++) {
		ps->slot[i].cfg = &conf->peers[i];
		if (make_addr(conf->peers[i].address, conf->peers[i].port,
			      &ps->slot[i].addr) < 0) {
			free(ps);
			return -EINVAL;
		}
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	ps->seq[PATH_SYNC] = ps->seq[PATH_DATA] =
		(uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	arena_init(&ps->arena);
	*ret = ps;
	return 0;
}

/* ---- counting refusals --------------------------------------------------- */

static void refuse(struct peers *ps, int peer, enum sync_refusal why)
{
	ps->refused_total[why]++;
	if (peer >= 0) {
		ps->slot[peer].st.refused[why]++;
		ps->slot[peer].st.frames_refused++;
	}
}

/* the peer a refused frame is counted for: the connection's, else the
 * header's claimed node id when the header is readable */
static int claimed_peer(struct peers *ps, const struct conn *c,
			const uint8_t *frame, size_t n)
{
	if (c && c->peer >= 0)
		return c->peer;
	if (c && c->expect >= 0)
		return c->expect;
	if (n >= SYNC_HDR_LEN && !memcmp(frame, SYNC_MAGIC, 4))
		return peers_index(ps, (uint16_t)(frame[10] << 8 | frame[11]));
	return -1;
}

/* ---- connections --------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	buf_free(&c->in);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	struct peers *ps = c->ps;
	for (struct conn **pp = &ps->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->expect >= 0 && ps->slot[c->expect].dialing == c)
		ps->slot[c->expect].dialing = NULL;
	if (c->peer >= 0 && ps->slot[c->peer].link == c) {
		struct peer_slot *s = &ps->slot[c->peer];
		s->link = NULL;
		s->st.link_up_ms = 0;
		s->st.disconnects++;
		s->next_dial_ms = 0; /* dial again at once */
		if (!ps->closing)
			ps->ops->link(ps->arg, (unsigned)c->peer, false);
	}
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	(void)suggested;
	if (buf_reserve(&c->in, 65536) < 0) {
		*b = uv_buf_init(NULL, 0);
		return;
	}
	*b = uv_buf_init((char *)c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

struct wreq {
	uv_write_t w;
	size_t len;
	uint8_t data[];
};

static void on_written(uv_write_t *w, int status)
{
	(void)status; /* a failed write shows as a read error / EOF */
	free(w);
}

static int write_frame(struct peers *ps, struct conn *c, enum peer_path path,
		       const uint8_t *payload, size_t len, uint64_t *ret_seq)
{
	if (len > ps->conf->max_frame)
		return -EMSGSIZE;
	struct wreq *w = malloc(sizeof(*w) + SYNC_OVERHEAD + len);
	if (!w)
		return -ENOMEM;
	struct sync_hdr h = {
		.version = SYNC_VERSION,
		.cluster = ps->conf->cluster_id,
		.node = ps->conf->node_id,
		.epoch = ps->epoch,
		.seq = ++ps->seq[path],
		.len = (uint32_t)len,
	};
	memcpy(w->data + SYNC_HDR_LEN, payload, len);
	sync_frame_seal(&ps->conf->key, &h, w->data);
	w->len = sync_frame_len(&h);
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
	int r = uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (r < 0) {
		free(w);
		return r;
	}
	if (ret_seq)
		*ret_seq = h.seq;
	return 0;
}

/* initiated by the node with the lower id: the connection both keep */
static bool preferred(const struct peers *ps, const struct conn *c, int peer)
{
	bool we_lower = ps->conf->node_id < ps->slot[peer].cfg->id;
	return c->outgoing == we_lower;
}

/* c carried a verified frame of peer: make it the peer's link, or not.
 * Returns true when c is (now) the established link. */
static bool bind_conn(struct peers *ps, struct conn *c, int peer)
{
	struct peer_slot *s = &ps->slot[peer];
	if (c->peer < 0)
		c->peer = peer;
	if (s->link == c)
		return true;
	if (s->link) {
		bool keep_old = preferred(ps, s->link, peer) && !preferred(ps, c, peer);
		if (keep_old) {
			conn_close(c);
			return false;
		}
		conn_close(s->link); /* reports the link down */
	}
	if (s->dialing == c)
		s->dialing = NULL;
	s->link = c;
	s->st.link_up_ms = clock_now_ms();
	s->st.connects++;
	ps->ops->link(ps->arg, (unsigned)peer, true);
	return !c->closing;
}

/* Deliver one verified payload; false if the connection went away. */
static bool deliver(struct peers *ps, struct conn *c, int peer,
		    enum peer_path path, const struct sync_hdr *h,
		    const uint8_t *payload)
{
	/* the events stay packed (read in place by repl); the rest is
	 * unpacked */
	unsigned seen;
	int n_ev = pb_scan(payload, h->len, 1, NULL, 0, &seen);
	const uint8_t *body = payload;
	size_t body_len = h->len;
	if (n_ev > 0) {
		buf_reset(&ps->rx);
		if (pb_strip_field(payload, h->len, 1, &ps->rx) < 0) {
			refuse(ps, peer, SR_BAD_PAYLOAD);
			return true;
		}
		body = ps->rx.p;
		body_len = ps->rx.len;
	}
	Tandem__PeerMsg *m = n_ev < 0 ? NULL
		: tandem__peer_msg__unpack(&ps->arena.pa, body_len, body);
	if (!m) {
		arena_reset(&ps->arena);
		refuse(ps, peer, SR_BAD_PAYLOAD);
		return true;
	}
	struct peer_slot *s = &ps->slot[peer];
	replay_commit(&s->win[path], h->epoch, h->seq);
	s->st.frames_received++;
	s->st.bytes_received += sync_frame_len(h);
	s->st.last_rx_ms[path] = clock_now_ms();
	bool ok = true;
	if (path == PATH_SYNC) {
		c->last_rx_ms = s->st.last_rx_ms[path];
		ok = bind_conn(ps, c, peer);
		if (ok)
			ps->ops->msg(ps->arg, (unsigned)peer, path, h, m,
				     n_ev > 0 ? payload : NULL, n_ev > 0 ? h->len : 0);
		ok = ok && !c->closing;
	} else {
		ps->ops->msg(ps->arg, (unsigned)peer, path, h, m,
			     n_ev > 0 ? payload : NULL, n_ev > 0 ? h->len : 0);
	}
	arena_reset(&ps->arena);
	return ok;
}

/* Check one complete frame; sender and replay after the tag. */
static enum sync_refusal check_frame(struct peers *ps, const struct conn *c,
				     enum peer_path path, const uint8_t *f,
				     size_t n, struct sync_hdr *h, int *ret_peer)
{
	enum sync_refusal r = sync_frame_open(&ps->conf->key, ps->conf->cluster_id,
					      ps->conf->max_frame, f, n, h);
	if (r != SR_OK)
		return r;
	int peer = peers_index(ps, h->node);
	if (peer < 0 || (c && c->peer >= 0 && c->peer != peer) ||
	    (c && c->expect >= 0 && c->expect != peer))
		return SR_UNKNOWN_NODE;
	*ret_peer = peer;
	return replay_check(&ps->slot[peer].win[path], h->epoch, h->seq,
			    path == PATH_SYNC);
}

static void conn_parse(struct conn *c)
{
	struct peers *ps = c->ps;
	size_t off = 0;
	while (!c->closing && c->in.len - off >= SYNC_HDR_LEN) {
		const uint8_t *f = c->in.p + off;
		struct sync_hdr h;
		enum sync_refusal r = sync_hdr_check(f, ps->conf->cluster_id,
						     ps->conf->max_frame, &h);
		uint32_t len = (uint32_t)f[28] << 24 | (uint32_t)f[29] << 16 |
			       (uint32_t)f[30] << 8 | f[31];
		if (r == SR_BAD_MAGIC || len > ps->conf->max_frame) {
			/* the length cannot be trusted: no way to find the
			 * next frame */
			refuse(ps, claimed_peer(ps, c, f, c->in.len - off),
			       r == SR_OK ? SR_OVERSIZED : r);
			conn_close(c);
			return;
		}
		size_t flen = SYNC_OVERHEAD + (size_t)len;
		if (c->in.len - off < flen)
			break;
		int peer = -1;
		r = check_frame(ps, c, PATH_SYNC, f, flen, &h, &peer);
		if (r != SR_OK) {
			refuse(ps, peer >= 0 ? peer : claimed_peer(ps, c, f, flen), r);
			off += flen;
			continue;
		}
		if (!deliver(ps, c, peer, PATH_SYNC, &h, f + SYNC_HDR_LEN))
			return; /* closed: its buffer goes with it */
		off += flen;
	}
	if (!c->closing)
		buf_consume(&c->in, off);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = st->data;
	(void)b;
	if (nread < 0) {
		if (c->in.len)
			refuse(c->ps, claimed_peer(c->ps, c, c->in.p, c->in.len),
			       SR_TRUNCATED);
		conn_close(c);
		return;
	}
	c->in.len += (size_t)nread;
	conn_parse(c);
}

static int conn_start_read(struct conn *c)
{
	int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	c->reading = r == 0;
	return r;
}

static struct conn *conn_new(struct peers *ps)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ps = ps;
	c->peer = c->expect = -1;
	c->last_rx_ms = clock_now_ms();
	uv_tcp_init(ps->loop, &c->tcp);
	c->tcp.data = c;
	c->next = ps->conns;
	ps->conns = c;
	return c;
}

static void on_accept(uv_stream_t *server, int status)
{
	struct peers *ps = server->data;
	if (status < 0)
		return;
	struct conn *c = conn_new(ps);
	if (!c)
		return;
	c->connected = true;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    conn_start_read(c) < 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	/* the accepting side speaks after the first verified frame */
}

static void on_connected(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	struct peers *ps = c->ps;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	c->connected = true;
	uv_tcp_nodelay(&c->tcp, 1);
	if (conn_start_read(c) < 0) {
		conn_close(c);
		return;
	}
	/* hello: a heartbeat, so the accepting side can bind us */
	buf_reset(&ps->scratch);
	ps->ops->heartbeat(ps->arg, (unsigned)c->expect, PATH_SYNC, &ps->scratch);
	if (write_frame(ps, c, PATH_SYNC, ps->scratch.p, ps->scratch.len, NULL) < 0)
		conn_close(c);
}

static void dial(struct peers *ps, unsigned i, uint64_t now)
{
	struct peer_slot *s = &ps->slot[i];
	if (s->link || s->dialing || now < s->next_dial_ms)
		return;
	s->next_dial_ms = now + DIAL_RETRY_MS;
	struct conn *c = conn_new(ps);
	if (!c)
		return;
	c->outgoing = true;
	c->expect = (int)i;
	c->creq.data = c;
	s->dialing = c;
	if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&s->addr,
			   on_connected) < 0)
		conn_close(c);
}

void peers_tick(struct peers *ps, uint64_t now)
{
	uint64_t dead = dead_ms(ps);
	for (struct conn *c = ps->conns, *n; c; c = n) {
		n = c->next;
		/* silent links and connections that never said who they are */
		uint64_t d = 4 * dead + 1000;
		if (c->peer >= 0)
			d = ps->slot[c->peer].dead_ms ? ps->slot[c->peer].dead_ms : dead;
		if (c->connected && now - c->last_rx_ms > d)
			conn_close(c);
	}
	for (unsigned i = 0; i < ps->n; i++) {
		dial(ps, i, now);
		ps->slot[i].st.connecting = !ps->slot[i].link && ps->slot[i].dialing;
	}
}

/* ---- UDP data path ------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct peers *ps = h->data;
	(void)suggested;
	*b = uv_buf_init((char *)ps->udp_buf, UDP_MAX);
}

static void on_udp(uv_udp_t *u, ssize_t nread, const uv_buf_t *b,
		   const struct sockaddr *from, unsigned flags)
{
	struct peers *ps = u->data;
	(void)from;
	if (nread <= 0 || (flags & UV_UDP_PARTIAL)) {
		if (flags & UV_UDP_PARTIAL)
			refuse(ps, -1, SR_OVERSIZED);
		return;
	}
	const uint8_t *f = (const uint8_t *)b->base;
	size_t n = (size_t)nread;
	struct sync_hdr h;
	int peer = -1;
	enum sync_refusal r = check_frame(ps, NULL, PATH_DATA, f, n, &h, &peer);
	if (r != SR_OK) {
		refuse(ps, peer >= 0 ? peer : claimed_peer(ps, NULL, f, n), r);
		return;
	}
	deliver(ps, NULL, peer, PATH_DATA, &h, f + SYNC_HDR_LEN);
}

int peers_send_data(struct peers *ps, unsigned peer, const uint8_t *payload,
		    size_t len)
{
	if (!ps->udp_open || peer >= ps->n)
		return -ENOTCONN;
	if (len + SYNC_OVERHEAD > UDP_MAX - 64)
		return -EMSGSIZE;
	uint8_t frame[2048];
	if (len + SYNC_OVERHEAD > sizeof(frame))
		return -EMSGSIZE; /* heartbeats are small */
	struct sync_hdr h = {
		.version = SYNC_VERSION,
		.cluster = ps->conf->cluster_id,
		.node = ps->conf->node_id,
		.epoch = ps->epoch,
		.seq = ++ps->seq[PATH_DATA],
		.len = (uint32_t)len,
	};
	memcpy(frame + SYNC_HDR_LEN, payload, len);
	sync_frame_seal(&ps->conf->key, &h, frame);
	uv_buf_t b = uv_buf_init((char *)frame, (unsigned)sync_frame_len(&h));
	int r = uv_udp_try_send(&ps->udp, &b, 1,
				(const struct sockaddr *)&ps->data_peer);
	if (r < 0)
		return r;
	ps->slot[peer].st.frames_sent++;
	ps->slot[peer].st.bytes_sent += b.len;
	return 0;
}

/* ---- public -------------------------------------------------------------- */

int peers_start(struct peers *ps, char *err, size_t errlen)
{
	const struct sconf *cf = ps->conf;
	struct sockaddr_storage a;
	int r;
	if (make_addr(cf->listen, cf->port, &a) < 0) {
		snprintf(err, errlen, "sync.listen: bad address %s", cf->listen);
		return -EINVAL;
	}
	uv_tcp_init(ps->loop, &ps->server);
	ps->server.data = ps;
	ps->server_open = true;
	if ((r = uv_tcp_bind(&ps->server, (const struct sockaddr *)&a, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&ps->server, 16, on_accept)) < 0) {
		snprintf(err, errlen, "sync link %s:%u: %s", cf->listen, cf->port,
			 uv_strerror(r));
		return r;
	}
	if (!cf->data_hb)
		return 0;
	ps->udp_buf = malloc(UDP_MAX);
	if (!ps->udp_buf)
		return -ENOMEM;
	if (make_addr(cf->data_bind, cf->data_port, &a) < 0 ||
	    make_addr(cf->data_peer, cf->data_peer_port, &ps->data_peer) < 0) {
		snprintf(err, errlen, "data_heartbeat: bad address");
		return -EINVAL;
	}
	uv_udp_init(ps->loop, &ps->udp);
	ps->udp.data = ps;
	ps->udp_open = true;
	if ((r = uv_udp_bind(&ps->udp, (const struct sockaddr *)&a,
			     UV_UDP_REUSEADDR)) < 0 ||
	    (r = uv_udp_recv_start(&ps->udp, on_udp_alloc, on_udp)) < 0) {
		snprintf(err, errlen, "data_heartbeat %s:%u: %s", cf->data_bind,
			 cf->data_port, uv_strerror(r));
		return r;
	}
	return 0;
}

void peers_close(struct peers *ps)
{
	if (!ps)
		return;
	ps->closing = true;
	while (ps->conns)
		conn_close(ps->conns);
	if (ps->server_open) {
		uv_close((uv_handle_t *)&ps->server, NULL);
		ps->server_open = false;
	}
	if (ps->udp_open) {
		uv_close((uv_handle_t *)&ps->udp, NULL);
		ps->udp_open = false;
	}
}

void peers_free(struct peers *ps)
{
	if (!ps)
		return;
	arena_fini(&ps->arena);
	buf_free(&ps->scratch);
	buf_free(&ps->rx);
	free(ps->udp_buf);
	free(ps);
}

void peers_set_dead_ms(struct peers *ps, unsigned peer, uint64_t ms)
{
	if (peer < ps->n)
		ps->slot[peer].dead_ms = ms;
}

void peers_set_epoch(struct peers *ps, uint64_t epoch)
{
	ps->epoch = epoch;
}

int peers_send(struct peers *ps, unsigned peer, const uint8_t *payload,
	       size_t len, uint64_t *ret_seq)
{
	if (peer >= ps->n || !ps->slot[peer].link)
		return -ENOTCONN;
	uint64_t seq;
	int r = write_frame(ps, ps->slot[peer].link, PATH_SYNC, payload, len, &seq);
	if (r < 0)
		return r;
	ps->slot[peer].st.frames_sent++;
	ps->slot[peer].st.bytes_sent += len + SYNC_OVERHEAD;
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

size_t peers_write_queue(struct peers *ps, unsigned peer)
{
	if (peer >= ps->n || !ps->slot[peer].link)
		return 0;
	return uv_stream_get_write_queue_size((uv_stream_t *)&ps->slot[peer].link->tcp);
}

bool peers_link_up(const struct peers *ps, unsigned peer)
{
	return peer < ps->n && ps->slot[peer].link != NULL;
}

const struct peer_link_stats *peers_stats(const struct peers *ps, unsigned peer)
{
	return peer < ps->n ? &ps->slot[peer].st : NULL;
}

const uint64_t *peers_refused_total(const struct peers *ps)
{
	return ps->refused_total;
}
