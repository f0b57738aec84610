/*
 * ctl_server.c - tandem-syncd's control socket (see ctl_server.h).
 *
 * Must never: answer twice, write to a closed connection, or keep a
 * request message beyond its handler.
 */
#include "ctl_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pbwire.h"

struct sconn;

struct ctl_call {
	struct sconn *c;       /* NULL once the connection closed */
	uint64_t seq;
	struct ctl_call *next; /* the connection's open calls */
};

struct sconn {
	struct ctl_server *s;
	uv_pipe_t pipe;
	struct buf in;
	bool closing;
	struct ctl_call *calls;
	struct sconn *next;
};

struct ctl_server {
	uv_loop_t *loop;
	ctl_handler h;
	void *arg;
	uv_pipe_t server;
	bool listening;
	struct sconn *conns;
	char path[108];
};

int ctl_server_new(uv_loop_t *loop, ctl_handler h, void *arg,
		   struct ctl_server **ret)
{
	struct ctl_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->h = h;
	s->arg = arg;
	*ret = s;
	return 0;
}

static void on_conn_closed(uv_handle_t *h)
{
	struct sconn *c = h->data;
	buf_free(&c->in);
	free(c);
}

static void conn_close(struct sconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	for (struct ctl_call *k = c->calls; k; k = k->next)
		k->c = NULL; /* answered into the void */
	c->calls = NULL;
	for (struct sconn **pp = &c->s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

struct wreq {
	uv_write_t w;
	uint8_t data[];
};

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	free(w);
}

void ctl_server_reply(struct ctl_call *call, Tandem__SyncdReply *rep)
{
	struct sconn *c = call->c;
	if (c) {
		for (struct ctl_call **pp = &c->calls; *pp; pp = &(*pp)->next)
			if (*pp == call) {
				*pp = call->next;
				break;
			}
	}
	rep->seq = call->seq;
	free(call);
	if (!c || c->closing)
		return;
	size_t n = tandem__syncd_reply__get_packed_size(rep);
	struct wreq *w = malloc(sizeof(*w) + 4 + n);
	if (!w) {
		conn_close(c);
		return;
	}
	w->data[0] = (uint8_t)(n >> 24);
	w->data[1] = (uint8_t)(n >> 16);
	w->data[2] = (uint8_t)(n >> 8);
	w->data[3] = (uint8_t)n;
	tandem__syncd_reply__pack(rep, w->data + 4);
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(n + 4));
	if (uv_write(&w->w, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(w);
		conn_close(c);
	}
}

void ctl_server_reply_error(struct ctl_call *call, int status, const char *msg)
{
	Tandem__SyncdReply rep = TANDEM__SYNCD_REPLY__INIT;
	rep.status = status;
	rep.error = (char *)msg;
	ctl_server_reply(call, &rep);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct sconn *c = h->data;
	(void)suggested;
	if (buf_reserve(&c->in, 4096) < 0) {
		*b = uv_buf_init(NULL, 0);
		return;
	}
	*b = uv_buf_init((char *)c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct sconn *c = st->data;
	(void)b;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->in.len += (size_t)nread;
	size_t off = 0;
	while (!c->closing && c->in.len - off >= 4) {
		const uint8_t *p = c->in.p + off;
		uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			       (uint32_t)p[2] << 8 | p[3];
		if (len > CTL_REQUEST_MAX) {
			conn_close(c);
			return;
		}
		if (c->in.len - off < 4 + (size_t)len)
			break;
		off += 4 + (size_t)len;
		Tandem__SyncdRequest *q = tandem__syncd_request__unpack(NULL, len, p + 4);
		struct ctl_call *call = calloc(1, sizeof(*call));
		if (!call) {
			tandem__syncd_request__free_unpacked(q, NULL);
			conn_close(c);
			return;
		}
		call->c = c;
		call->next = c->calls;
		c->calls = call;
		if (!q) {
			call->seq = 0;
			ctl_server_reply_error(call, 400, "cannot parse the request");
			continue;
		}
		call->seq = q->seq;
		c->s->h(c->s->arg, call, q);
		tandem__syncd_request__free_unpacked(q, NULL);
	}
	if (!c->closing)
		buf_consume(&c->in, off);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ctl_server *s = server->data;
	if (status < 0)
		return;
	struct sconn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->s = s;
	uv_pipe_init(s->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = s->conns;
	s->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
		conn_close(c);
}

int ctl_server_listen(struct ctl_server *s, const char *path, char *err,
		      size_t errlen)
{
	snprintf(s->path, sizeof(s->path), "%s", path);
	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0750); /* exists already: fine */
	}
	unlink(path);
	uv_pipe_init(s->loop, &s->server, 0);
	s->server.data = s;
	s->listening = true;
	int r = uv_pipe_bind(&s->server, path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->server, 16, on_connection);
	if (r < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(r));
		return r;
	}
	chmod(path, 0660);
	return 0;
}

void ctl_server_close(struct ctl_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns);
	if (s->listening) {
		uv_close((uv_handle_t *)&s->server, NULL);
		s->listening = false;
		unlink(s->path);
	}
}

void ctl_server_free(struct ctl_server *s)
{
	free(s);
}
