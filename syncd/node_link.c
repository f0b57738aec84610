/*
 * node_link.c - subscription and command connections to tandem-node (see
 * node_link.h).
 *
 * Must never: call a callback twice, hand out frame memory beyond the
 * callback, or buffer a frame above NODE_FRAME_MAX.
 */
#include "node_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "pbwire.h"

#define RETRY_MS 250

enum { SUB, CMD };

struct pending {
	uint64_t seq;
	uint64_t deadline_ms;
	node_reply_cb cb;
	void *arg;
	struct pending *next;
};

struct nconn {
	struct node_link *nl;
	uv_pipe_t pipe;
	uv_connect_t creq;
	struct buf in;
	bool open, connected;
};

struct node_link {
	uv_loop_t *loop;
	char path[108];
	uint32_t timeout_ms;
	const struct node_link_ops *ops;
	void *arg;
	struct nconn c[2];
	uv_timer_t timer;
	bool up, subscribed, closing, timer_open;
	uint64_t seq, sub_seq;
	struct pending *head, **tail;
	size_t n_pending;
	struct arena arena;
	struct node_link_stats st;
};

int node_link_new(uv_loop_t *loop, const char *path, uint32_t timeout_ms,
		  const struct node_link_ops *ops, void *arg,
		  struct node_link **ret)
{
	struct node_link *nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->loop = loop;
	snprintf(nl->path, sizeof(nl->path), "%s", path);
	nl->timeout_ms = timeout_ms;
	nl->ops = ops;
	nl->arg = arg;
	nl->tail = &nl->head;
	for (int i = 0; i < 2; i++)
		nl->c[i].nl = nl;
	arena_init(&nl->arena);
	uv_timer_init(loop, &nl->timer);
	nl->timer.data = nl;
	nl->timer_open = true;
	*ret = nl;
	return 0;
}

static void fail_pending(struct node_link *nl, int err)
{
	struct pending *p = nl->head;
	nl->head = NULL;
	nl->tail = &nl->head;
	nl->n_pending = 0;
	while (p) {
		struct pending *n = p->next;
		p->cb(p->arg, err, NULL);
		free(p);
		p = n;
	}
}

static void on_closed(uv_handle_t *h)
{
	struct nconn *c = h->data;
	c->open = false;
}

/* Close both connections; reconnect after RETRY_MS unless closing. */
static void link_reset(struct node_link *nl, int err)
{
	bool was_up = nl->up;
	nl->up = nl->subscribed = false;
	for (int i = 0; i < 2; i++) {
		struct nconn *c = &nl->c[i];
		if (c->open && !uv_is_closing((uv_handle_t *)&c->pipe))
			uv_close((uv_handle_t *)&c->pipe, on_closed);
		c->connected = false;
		buf_free(&c->in);
	}
	fail_pending(nl, err);
	if (was_up) {
		nl->st.disconnects++;
		nl->ops->down(nl->arg);
	}
}

struct wreq {
	uv_write_t w;
	uint8_t data[];
};

static void on_written(uv_write_t *w, int status)
{
	(void)status; /* a broken connection shows in on_read */
	free(w);
}

static int write_frame(struct nconn *c, const uint8_t *data, size_t len)
{
	struct wreq *x = malloc(sizeof(*x) + 4 + len);
	if (!x)
		return -ENOMEM;
	uint8_t *d = x->data;
	d[0] = (uint8_t)(len >> 24);
	d[1] = (uint8_t)(len >> 16);
	d[2] = (uint8_t)(len >> 8);
	d[3] = (uint8_t)len;
	memcpy(d + 4, data, len);
	uv_buf_t b = uv_buf_init((char *)d, (unsigned)(len + 4));
	int r = uv_write(&x->w, (uv_stream_t *)&c->pipe, &b, 1, on_written);
	if (r < 0)
		free(x);
	return r;
}

static int write_msg(struct nconn *c, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t stackbuf[512];
	uint8_t *p = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (!p)
		return -ENOMEM;
	protobuf_c_message_pack(m, p);
	int r = write_frame(c, p, n);
	if (p != stackbuf)
		free(p);
	return r;
}

static void maybe_up(struct node_link *nl)
{
	if (!nl->up && nl->subscribed && nl->c[CMD].connected) {
		nl->up = true;
		nl->st.connects++;
		nl->ops->up(nl->arg);
	}
}

static void handle_reply(struct node_link *nl, int which,
			 const Tandem__CtlReply *rep)
{
	if (which == SUB) {
		if (rep->seq == nl->sub_seq && !nl->subscribed) {
			if (rep->status != 0) {
				link_reset(nl, -EPROTO);
				return;
			}
			nl->subscribed = true;
			maybe_up(nl);
		}
		return; /* SYNC_BULK acknowledgements */
	}
	for (struct pending **pp = &nl->head; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;
		if (p->seq != rep->seq)
			continue;
		*pp = p->next;
		if (nl->tail == &p->next)
			nl->tail = pp;
		nl->n_pending--;
		nl->st.replies++;
		p->cb(p->arg, 0, rep);
		free(p);
		return;
	}
	/* late reply of a request already failed: dropped */
}

/* one frame; false when the link was reset meanwhile */
static bool handle_frame(struct node_link *nl, int which, const uint8_t *d,
			 size_t n)
{
	bool reply = which == CMD || (n > 0 && d[0] == 0x08);
	if (reply) {
		Tandem__CtlReply *rep = tandem__ctl_reply__unpack(&nl->arena.pa, n, d);
		if (!rep) {
			nl->st.bad_frames++;
			arena_reset(&nl->arena);
			link_reset(nl, -EPROTO);
			return false;
		}
		handle_reply(nl, which, rep);
	} else {
		unsigned seen;
		if (pb_scan(d, n, 1, NULL, 0, &seen) < 0) {
			nl->st.bad_frames++;
			arena_reset(&nl->arena);
			link_reset(nl, -EPROTO);
			return false;
		}
		nl->st.stream_frames++;
		if (nl->subscribed)
			nl->ops->stream(nl->arg, d, n);
	}
	arena_reset(&nl->arena);
	return nl->c[which].connected;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct nconn *c = h->data;
	(void)suggested;
	if (buf_reserve(&c->in, 256u << 10) < 0) {
		*b = uv_buf_init(NULL, 0);
		return;
	}
	*b = uv_buf_init((char *)c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct nconn *c = s->data;
	struct node_link *nl = c->nl;
	int which = (int)(c - nl->c);
	(void)b;
	if (nread < 0) {
		link_reset(nl, -ECONNRESET);
		return;
	}
	c->in.len += (size_t)nread;
	size_t off = 0;
	while (c->in.len - off >= 4) {
		const uint8_t *p = c->in.p + off;
		uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			       (uint32_t)p[2] << 8 | p[3];
		if (len > NODE_FRAME_MAX) {
			nl->st.bad_frames++;
			link_reset(nl, -EPROTO);
			return;
		}
		if (c->in.len - off < 4 + (size_t)len)
			break;
		if (!handle_frame(nl, which, p + 4, len))
			return;
		off += 4 + (size_t)len;
	}
	buf_consume(&c->in, off);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct nconn *c = req->data;
	struct node_link *nl = c->nl;
	if (status < 0 || nl->closing) {
		link_reset(nl, -ECONNREFUSED);
		return;
	}
	if (!c->open || uv_is_closing((uv_handle_t *)&c->pipe))
		return;
	c->connected = true;
	if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0) {
		link_reset(nl, -ECONNRESET);
		return;
	}
	if (c == &nl->c[SUB]) {
		Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
		q.seq = nl->sub_seq = ++nl->seq;
		q.cmd = TANDEM__CTL_REQUEST__CMD__SYNC_SUBSCRIBE;
		q.source = "tandem-syncd";
		if (write_msg(c, &q.base) < 0)
			link_reset(nl, -ECONNRESET);
		return;
	}
	maybe_up(nl);
}

static void connect_both(struct node_link *nl)
{
	for (int i = 0; i < 2; i++) {
		struct nconn *c = &nl->c[i];
		if (c->open)
			return; /* still closing from the last attempt */
	}
	for (int i = 0; i < 2; i++) {
		struct nconn *c = &nl->c[i];
		uv_pipe_init(nl->loop, &c->pipe, 0);
		c->pipe.data = c;
		c->open = true;
		c->creq.data = c;
		uv_pipe_connect(&c->creq, &c->pipe, nl->path, on_connect);
	}
}

static void on_timer(uv_timer_t *t)
{
	struct node_link *nl = t->data;
	if (nl->closing)
		return;
	uint64_t now = clock_now_ms();
	if (nl->head && now > nl->head->deadline_ms) {
		nl->st.timeouts++;
		link_reset(nl, -ETIMEDOUT);
		return;
	}
	for (struct pending *p = nl->head; p; p = p->next)
		if (now > p->deadline_ms) {
			nl->st.timeouts++;
			link_reset(nl, -ETIMEDOUT);
			return;
		}
	if (!nl->c[SUB].open && !nl->c[CMD].open)
		connect_both(nl);
}

void node_link_start(struct node_link *nl)
{
	connect_both(nl);
	uv_timer_start(&nl->timer, on_timer, RETRY_MS, RETRY_MS);
}

void node_link_close(struct node_link *nl)
{
	if (!nl)
		return;
	nl->closing = true;
	nl->up = false; /* no down callback while closing */
	for (int i = 0; i < 2; i++) {
		struct nconn *c = &nl->c[i];
		if (c->open && !uv_is_closing((uv_handle_t *)&c->pipe))
			uv_close((uv_handle_t *)&c->pipe, on_closed);
		c->connected = false;
	}
	fail_pending(nl, -ECANCELED);
	if (nl->timer_open) {
		uv_close((uv_handle_t *)&nl->timer, NULL);
		nl->timer_open = false;
	}
}

void node_link_free(struct node_link *nl)
{
	if (!nl)
		return;
	for (int i = 0; i < 2; i++)
		buf_free(&nl->c[i].in);
	arena_fini(&nl->arena);
	free(nl);
}

bool node_link_up(const struct node_link *nl)
{
	return nl->up;
}

uint64_t node_link_next_seq(struct node_link *nl)
{
	return ++nl->seq;
}

int node_link_request_packed(struct node_link *nl, uint64_t seq,
			     const uint8_t *data, size_t len, node_reply_cb cb,
			     void *arg)
{
	if (!nl->up)
		return -ENOTCONN;
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	int r = write_frame(&nl->c[CMD], data, len);
	if (r < 0) {
		free(p);
		return r;
	}
	p->seq = seq;
	p->deadline_ms = clock_now_ms() + nl->timeout_ms;
	p->cb = cb;
	p->arg = arg;
	*nl->tail = p;
	nl->tail = &p->next;
	nl->n_pending++;
	nl->st.requests++;
	return 0;
}

int node_link_request(struct node_link *nl, Tandem__CtlRequest *req,
		      node_reply_cb cb, void *arg)
{
	if (!nl->up)
		return -ENOTCONN;
	req->seq = node_link_next_seq(nl);
	if (!req->source)
		req->source = "tandem-syncd";
	size_t n = tandem__ctl_request__get_packed_size(req);
	uint8_t *d = malloc(n ? n : 1);
	if (!d)
		return -ENOMEM;
	tandem__ctl_request__pack(req, d);
	int r = node_link_request_packed(nl, req->seq, d, n, cb, arg);
	free(d);
	return r;
}

int node_link_bulk(struct node_link *nl)
{
	if (!nl->up)
		return -ENOTCONN;
	Tandem__CtlRequest q = TANDEM__CTL_REQUEST__INIT;
	q.seq = ++nl->seq;
	q.cmd = TANDEM__CTL_REQUEST__CMD__SYNC_BULK;
	q.source = "tandem-syncd";
	return write_msg(&nl->c[SUB], &q.base);
}

size_t node_link_pending(const struct node_link *nl)
{
	return nl->n_pending;
}

const struct node_link_stats *node_link_stats(const struct node_link *nl)
{
	return &nl->st;
}
