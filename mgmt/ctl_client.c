/*
 * ctl_client.c - framed protobuf requests over a unix stream socket (libuv).
 *
 * Lifetimes: a struct conn is one connection (attempt); it is detached from
 * the client (conn->c = NULL) when it fails or the client closes, and frees
 * itself in its close callback. Pending requests belong to the client; a
 * request is removed from the list before its callback runs, and lists are
 * detached before a batch of callbacks, so a callback may send new requests
 * or close the client.
 *
 * Must never: free a handle before libuv's close callback, keep a frame
 * above CTL_FRAME_MAX, or block.
 */
#include "ctl_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct pending {
	struct pending *next;
	uint64_t seq;
	uint64_t deadline; /* uv_now() ms */
	ctl_reply_cb cb;
	void *arg;
	uint8_t *frame;    /* not yet written (while connecting), else NULL */
	size_t frame_len;
};

struct conn {
	uv_pipe_t pipe;
	uv_connect_t creq;
	struct ctl_client *c; /* NULL once detached */
	bool connected;
	uint8_t hdr[4];
	size_t hdr_have;
	uint8_t *frame;
	uint32_t frame_len;
	size_t frame_have;
};

struct ctl_client {
	uv_loop_t *loop;
	const ProtobufCMessageDescriptor *reply_desc;
	char path[108];
	uint32_t timeout_ms;
	uv_timer_t timer;
	struct conn *conn;
	struct pending *head, *tail;
	uint64_t next_seq;
	struct ctl_stats st;
	bool closing;
};

struct wreq {
	uv_write_t req;
	uint8_t *data;
};

static void conn_drop(struct ctl_client *c, int err);
static void on_timer(uv_timer_t *t);

/* ---------------------------------------------------------------- pending */

static void fail_list(struct pending *p, int err)
{
	while (p) {
		struct pending *next = p->next;
		free(p->frame);
		p->cb(p->arg, err, NULL);
		free(p);
		p = next;
	}
}

/* Detaches the whole list (callbacks may add new requests meanwhile). */
static struct pending *take_all(struct ctl_client *c)
{
	struct pending *p = c->head;

	c->head = c->tail = NULL;
	return p;
}

static struct pending *take_seq(struct ctl_client *c, uint64_t seq)
{
	struct pending **pp = &c->head, *prev = NULL;

	for (; *pp; prev = *pp, pp = &(*pp)->next) {
		struct pending *p = *pp;
		if (p->seq != seq)
			continue;
		*pp = p->next;
		if (c->tail == p)
			c->tail = prev;
		p->next = NULL;
		return p;
	}
	return NULL;
}

static void timer_arm(struct ctl_client *c)
{
	if (c->closing)
		return;
	if (!c->head) {
		uv_timer_stop(&c->timer);
		return;
	}
	/* FIFO with one fixed timeout: the head has the earliest deadline. */
	uint64_t now = uv_now(c->loop);
	uint64_t wait = c->head->deadline > now ? c->head->deadline - now : 0;
	uv_timer_start(&c->timer, on_timer, wait, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct ctl_client *c = t->data;
	uint64_t now = uv_now(c->loop);
	struct pending *expired = NULL, **tail = &expired;

	while (c->head && c->head->deadline <= now) {
		struct pending *p = c->head;
		c->head = p->next;
		if (!c->head)
			c->tail = NULL;
		p->next = NULL;
		*tail = p;
		tail = &p->next;
		c->st.timeouts++;
	}
	timer_arm(c);
	fail_list(expired, -ETIMEDOUT);
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;

	(void)status; /* a failed write shows up as EOF/error on the read side */
	free(w->data);
	free(w);
}

static int conn_write(struct conn *k, uint8_t *frame, size_t len)
{
	struct wreq *w = malloc(sizeof(*w));

	if (!w) {
		free(frame);
		return -ENOMEM;
	}
	w->data = frame;
	uv_buf_t buf = uv_buf_init((char *)frame, (unsigned)len);
	int r = uv_write(&w->req, (uv_stream_t *)&k->pipe, &buf, 1, on_write);
	if (r) {
		free(frame);
		free(w);
		return r;
	}
	return 0;
}

/* ---------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *k = h->data;

	(void)suggested;
	/* Read the header, then straight into the frame buffer. */
	if (k->hdr_have < 4)
		*buf = uv_buf_init((char *)k->hdr + k->hdr_have,
				   (unsigned)(4 - k->hdr_have));
	else
		*buf = uv_buf_init((char *)k->frame + k->frame_have,
				   (unsigned)(k->frame_len - k->frame_have));
}

/* Reads a base-128 varint; returns bytes used or 0. */
static size_t varint(const uint8_t *p, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len && i < 10; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*ret = v;
			return i + 1;
		}
	}
	return 0;
}

int ctl_wire_seq(const uint8_t *data, size_t len, uint64_t *ret)
{
	size_t off = 0;

	while (off < len) {
		uint64_t key, v;
		size_t n = varint(data + off, len - off, &key);
		if (!n)
			return -EPROTO;
		off += n;
		switch (key & 7) {
		case 0: /* varint */
			if (!(n = varint(data + off, len - off, &v)))
				return -EPROTO;
			off += n;
			if (key >> 3 == 1) {
				*ret = v;
				return 0;
			}
			break;
		case 1: /* 64-bit */
			if (len - off < 8)
				return -EPROTO;
			off += 8;
			break;
		case 2: /* length-delimited */
			if (!(n = varint(data + off, len - off, &v)) || v > len - off - n)
				return -EPROTO;
			off += n + v;
			break;
		case 5: /* 32-bit */
			if (len - off < 4)
				return -EPROTO;
			off += 4;
			break;
		default:
			return -EPROTO;
		}
	}
	return -ENOENT;
}

static void deliver(struct ctl_client *c, const uint8_t *data, size_t len)
{
	uint64_t seq;

	if (ctl_wire_seq(data, len, &seq)) {
		/* Cannot tell whose reply it is: the stream is not to be trusted. */
		c->st.bad_frames++;
		conn_drop(c, -EPROTO);
		return;
	}
	struct pending *p = take_seq(c, seq);
	if (!p) {
		c->st.late_replies++; /* timed out earlier */
		return;
	}
	timer_arm(c);
	ProtobufCMessage *r = protobuf_c_message_unpack(c->reply_desc, NULL, len, data);
	if (!r) {
		/* Framing is intact: only this request fails. */
		c->st.bad_replies++;
		p->cb(p->arg, -EPROTO, NULL);
		free(p);
		return;
	}
	c->st.replies++;
	p->cb(p->arg, 0, r);
	free(p);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *k = s->data;
	struct ctl_client *c = k->c;

	(void)buf;
	if (!c)
		return;
	if (n < 0) {
		conn_drop(c, -ECONNRESET);
		return;
	}
	if (k->hdr_have < 4) {
		k->hdr_have += (size_t)n;
		if (k->hdr_have < 4)
			return;
		k->frame_len = (uint32_t)k->hdr[0] << 24 | (uint32_t)k->hdr[1] << 16 |
			       (uint32_t)k->hdr[2] << 8 | k->hdr[3];
		k->frame_have = 0;
		if (k->frame_len > CTL_FRAME_MAX) {
			c->st.bad_frames++;
			conn_drop(c, -EPROTO);
			return;
		}
		/* +1: a zero-length frame still gets a valid pointer. */
		k->frame = malloc(k->frame_len + 1u);
		if (!k->frame) {
			conn_drop(c, -ENOMEM);
			return;
		}
	} else {
		k->frame_have += (size_t)n;
	}
	if (k->frame_have < k->frame_len)
		return;
	uint8_t *f = k->frame;
	size_t len = k->frame_len;
	k->frame = NULL;
	k->hdr_have = 0;
	deliver(c, f, len); /* may drop the connection or close the client */
	free(f);
}

/* ---------------------------------------------------------------- connection */

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *k = h->data;

	free(k->frame);
	free(k);
}

/* Ends the current connection and fails what was sent on it. */
static void conn_drop(struct ctl_client *c, int err)
{
	struct conn *k = c->conn;

	if (!k)
		return;
	c->conn = NULL;
	k->c = NULL;
	c->st.disconnects++;
	uv_close((uv_handle_t *)&k->pipe, on_conn_closed);
	struct pending *all = take_all(c);
	timer_arm(c);
	fail_list(all, err);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *k = req->data;
	struct ctl_client *c = k->c;

	if (!c)
		return; /* detached while connecting */
	if (status < 0) {
		c->st.connect_failures++;
		conn_drop(c, status == UV_ENOENT ? -ENOENT : -ECONNREFUSED);
		return;
	}
	k->connected = true;
	c->st.connects++;
	int r = uv_read_start((uv_stream_t *)&k->pipe, on_alloc, on_read);
	for (struct pending *p = c->head; !r && p; p = p->next) {
		if (!p->frame)
			continue;
		uint8_t *f = p->frame;
		p->frame = NULL;
		r = conn_write(k, f, p->frame_len);
	}
	if (r)
		conn_drop(c, -ECONNRESET);
}

static int conn_start(struct ctl_client *c)
{
	struct conn *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	int r = uv_pipe_init(c->loop, &k->pipe, 0);
	if (r) {
		free(k);
		return r;
	}
	k->c = c;
	k->pipe.data = k;
	k->creq.data = k;
	c->conn = k;
	uv_pipe_connect(&k->creq, &k->pipe, c->path, on_connect);
	return 0;
}

/* ---------------------------------------------------------------- API */

int ctl_client_new(uv_loop_t *loop, const char *path, uint32_t timeout_ms,
		   const ProtobufCMessageDescriptor *reply_desc,
		   struct ctl_client **ret)
{
	if (strlen(path) >= sizeof(((struct ctl_client *)0)->path) || !*path)
		return -ENAMETOOLONG;
	struct ctl_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->reply_desc = reply_desc;
	strcpy(c->path, path);
	c->timeout_ms = timeout_ms ? timeout_ms : 10000;
	c->next_seq = 1;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	*ret = c;
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void ctl_client_close(struct ctl_client *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	uv_timer_stop(&c->timer);
	if (c->conn) {
		struct conn *k = c->conn;
		c->conn = NULL;
		k->c = NULL;
		uv_close((uv_handle_t *)&k->pipe, on_conn_closed);
	}
	fail_list(take_all(c), -ECANCELED);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

int ctl_client_send(struct ctl_client *c, ProtobufCMessage *req, uint64_t *seq,
		    ctl_reply_cb cb, void *arg)
{
	if (c->closing)
		return -ECANCELED;
	*seq = c->next_seq++;
	size_t len = protobuf_c_message_get_packed_size(req);
	if (len > CTL_FRAME_MAX)
		return -EMSGSIZE;
	uint8_t *frame = malloc(len + 4);
	struct pending *p = calloc(1, sizeof(*p));
	if (!frame || !p) {
		free(frame);
		free(p);
		return -ENOMEM;
	}
	frame[0] = (uint8_t)(len >> 24);
	frame[1] = (uint8_t)(len >> 16);
	frame[2] = (uint8_t)(len >> 8);
	frame[3] = (uint8_t)len;
	protobuf_c_message_pack(req, frame + 4);
	p->seq = *seq;
	p->deadline = uv_now(c->loop) + c->timeout_ms;
	p->cb = cb;
	p->arg = arg;
	p->frame_len = len + 4;
	c->st.requests++;

	if (c->tail)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
	if (c->head == p)
		timer_arm(c);

	if (c->conn && c->conn->connected) {
		int r = conn_write(c->conn, frame, len + 4);
		if (r) {
			/* Never call cb from inside send: the caller is told. */
			take_seq(c, p->seq);
			free(p);
			conn_drop(c, -ECONNRESET); /* the others' cbs run */
			return -ECONNRESET;
		}
		return 0;
	}
	p->frame = frame; /* written once connected */
	if (!c->conn) {
		int r = conn_start(c);
		if (r) {
			/* Undo: the caller gets the error, cb is not called. */
			take_seq(c, p->seq);
			free(p->frame);
			free(p);
			timer_arm(c);
			return r;
		}
	}
	return 0;
}

const struct ctl_stats *ctl_client_stats(const struct ctl_client *c)
{
	return &c->st;
}

const char *ctl_client_path(const struct ctl_client *c)
{
	return c->path;
}
