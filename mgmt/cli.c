/*
 * cli.c - one management connection (libuv TCP stream).
 *
 * The way of a line: on_read -> line reader (caps, binary check) ->
 * cli_process() -> cmd_dispatch() (commands.c) -> handler -> cli_ok/cli_err
 * or a ctl request (BUSY) whose reply ends in cli_ok/cli_err/cli_stream.
 *
 * Must never: free the struct before both handles are closed, write after
 * the handles began closing, or queue output beyond max_output_buffer.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tandem.pb-c.h"

#define CLOSE_GRACE_MS 5000 /* a closing client's last line may take this long */

struct wreq {
	uv_write_t req;
	struct cli *c;
	char *data;
	size_t len;
};

static void cli_process(struct cli *c);
static void stream_pump(struct cli *c);

/* ---------------------------------------------------------------- closing */

static void on_handle_closed(uv_handle_t *h)
{
	struct cli *c = h->data;

	if (--c->open_handles > 0)
		return;
	line_reader_free(&c->lr);
	rec_buf_free(&c->out);
	rec_buf_free(&c->body);
	if (c->stream_reply)
		tandem__ctl_reply__free_unpacked(c->stream_reply, NULL);
	free(c);
}

void cli_close(struct cli *c)
{
	struct server *s = c->srv;

	if (c->closed)
		return;
	c->closed = true;
	c->state = CLI_CLOSING;
	cmd_detach(c);
	if (c->prev)
		c->prev->next = c->next;
	else if (s->clients == c)
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	if (!c->rejected)
		s->n_clients--;
	if (!c->rejected)
		mgmt_log("%s: closed%s%s", c->peer, c->authed ? ", user " : "",
			 c->authed ? c->user : "");
	c->reading = false; /* uv_close stops reading */
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ---------------------------------------------------------------- timer */

static void on_timer(uv_timer_t *t)
{
	struct cli *c = t->data;

	if (c->state == CLI_CLOSING) {
		cli_close(c); /* its last line did not go out in time */
		return;
	}
	if (c->queued > 0) {
		/* Output has not moved for idle_timeout: the client stopped
		 * reading. Nothing more can be said to it. */
		c->srv->ctr.slow_dropped++;
		mgmt_log("%s: output not read for %u s, dropped", c->peer,
			 c->srv->conf->idle_timeout_ms / 1000);
		cli_close(c);
		return;
	}
	c->srv->ctr.idle_closed++;
	c->state = CLI_READY; /* BODY or READY: the status ends it */
	rec_buf_reset(&c->out);
	rec_err(&c->out, 408, "idle timeout");
	c->srv->ctr.command_errors++;
	cli_finish(c);
}

static void timer_idle(struct cli *c)
{
	if (!c->closed)
		uv_timer_start(&c->timer, on_timer, c->srv->conf->idle_timeout_ms, 0);
}

/* ---------------------------------------------------------------- output */

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct cli *c = w->c;

	c->queued -= w->len;
	free(w->data);
	free(w);
	if (c->closed)
		return;
	if (status < 0) {
		cli_close(c); /* peer gone */
		return;
	}
	if (c->state == CLI_CLOSING) {
		if (c->queued == 0)
			cli_close(c);
		return;
	}
	if (c->state != CLI_BUSY)
		timer_idle(c); /* output moved */
	if (c->state == CLI_STREAM)
		stream_pump(c);
}

/* Hands c->out to libuv. Returns -ENOBUFS when the client was dropped for
 * not reading, -EPIPE when it is closed. */
static int flush(struct cli *c)
{
	if (c->closed)
		return -EPIPE;
	if (c->out.err) {
		/* Formatting ran out of memory: the reply is lost; say so. */
		rec_buf_free(&c->out);
		rec_err(&c->out, 500, "out of memory");
	}
	if (c->out.len == 0)
		return 0;
	/* With nothing queued the client reads what it was sent: one record
	 * larger than the cap (a long config line) may still go out. */
	if (c->queued > 0 &&
	    c->queued + c->out.len > c->srv->conf->max_output_buffer) {
		c->srv->ctr.slow_dropped++;
		mgmt_log("%s: more than %u bytes of output queued, dropped",
			 c->peer, c->srv->conf->max_output_buffer);
		rec_buf_reset(&c->out);
		cli_close(c);
		return -ENOBUFS;
	}
	struct wreq *w = malloc(sizeof(*w));
	if (!w) {
		cli_close(c);
		return -ENOMEM;
	}
	w->c = c;
	w->data = rec_buf_take(&c->out, &w->len);
	uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
	int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
	if (r) {
		free(w->data);
		free(w);
		cli_close(c);
		return -EPIPE;
	}
	c->queued += w->len;
	return 0;
}

/* ---------------------------------------------------------------- replies */

/* The reply is complete: back to reading (and to lines already read). */
static void reply_done(struct cli *c)
{
	if (flush(c))
		return;
	if (c->state == CLI_CLOSING)
		return;
	c->state = CLI_READY;
	timer_idle(c);
	if (!c->in_process)
		cli_process(c);
}

void cli_ok(struct cli *c, const char *fmt, ...)
{
	char text[1024] = "";

	if (c->closed)
		return;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	rec_ok(&c->out, text);
	reply_done(c);
}

void cli_err(struct cli *c, int code, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (c->closed)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Data lines of a failed command are not sent: the status says all. */
	rec_buf_reset(&c->out);
	rec_err(&c->out, code, text);
	c->srv->ctr.command_errors++;
	reply_done(c);
}

void cli_busy(struct cli *c)
{
	c->state = CLI_BUSY;
	uv_timer_stop(&c->timer); /* the ctl timeout bounds the wait */
}

void cli_body_begin(struct cli *c, int body_cmd)
{
	c->state = CLI_BODY;
	c->body_cmd = body_cmd;
	c->body_too_big = c->body_line_too_long = false;
	rec_buf_reset(&c->body);
	rec_buf_puts(&c->out, "CONTINUE\n");
	flush(c);
}

void cli_finish(struct cli *c)
{
	if (c->closed)
		return;
	if (flush(c))
		return;
	c->state = CLI_CLOSING;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	if (c->queued == 0) {
		cli_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timer, CLOSE_GRACE_MS, 0);
}

void cli_stream(struct cli *c, void *reply, enum render_kind kind,
		const char *word, const char *status)
{
	if (c->closed) {
		tandem__ctl_reply__free_unpacked(reply, NULL);
		return;
	}
	c->stream_reply = reply;
	render_stream_init(&c->rs, kind, reply, word);
	snprintf(c->stream_status, sizeof(c->stream_status), "%s",
		 status ? status : "");
	c->state = CLI_STREAM;
	timer_idle(c);
	stream_pump(c);
}

/* Formats the next pieces while the socket keeps up. */
static void stream_pump(struct cli *c)
{
	size_t max = c->srv->conf->max_output_buffer;
	size_t high = max / 2, slice = max / 8 < 65536 ? max / 8 : 65536;

	while (c->state == CLI_STREAM && !c->closed && c->queued < high) {
		bool done = render_stream_more(&c->rs, &c->out, slice);
		if (done) {
			tandem__ctl_reply__free_unpacked(c->stream_reply, NULL);
			c->stream_reply = NULL;
			rec_ok(&c->out, c->stream_status);
			reply_done(c);
			return;
		}
		if (flush(c))
			return;
	}
}

void cli_set_user(struct cli *c, const char *user, enum mgmt_role role)
{
	c->authed = true;
	snprintf(c->user, sizeof(c->user), "%s", user);
	c->role = role;
	line_set_max(&c->lr, CLI_LINE_MAX);
}

/* ---------------------------------------------------------------- input */

static void body_line(struct cli *c, const char *line, size_t len)
{
	if (len == 1 && line[0] == '.') {
		cmd_body_done(c);
		return;
	}
	if (line[0] == '.') { /* dot-stuffed by the sender */
		line++;
		len--;
	}
	if (c->body_too_big || c->body_line_too_long)
		return; /* the rest is read and dropped until "." */
	if (c->body.len + len + 1 > c->srv->conf->max_config_size) {
		c->body_too_big = true;
		rec_buf_free(&c->body); /* give the memory back now */
		return;
	}
	rec_buf_append(&c->body, line, len);
	rec_buf_append(&c->body, "\n", 1);
}

static void update_reading(struct cli *c);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct cli *c = h->data;
	char *p;
	size_t n;

	(void)suggested;
	line_space(&c->lr, &p, &n);
	*buf = uv_buf_init(p, (unsigned)n);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct cli *c = s->data;

	(void)buf;
	if (c->closed)
		return;
	if (n == UV_ENOBUFS) {
		/* Buffer full of unprocessed input: wait for the command. */
		uv_read_stop(s);
		c->reading = false;
		return;
	}
	if (n < 0) {
		cli_close(c); /* EOF or error: the client left */
		return;
	}
	line_commit(&c->lr, (size_t)n);
	cli_process(c);
}

static void update_reading(struct cli *c)
{
	bool want = !c->closed && (c->state == CLI_READY || c->state == CLI_BODY);

	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

static void cli_process(struct cli *c)
{
	c->in_process = true;
	while (!c->closed && (c->state == CLI_READY || c->state == CLI_BODY)) {
		const char *line;
		size_t len;
		enum line_ev ev = line_next(&c->lr, &line, &len);

		if (ev == LINE_NONE)
			break;
		timer_idle(c);
		if (ev == LINE_BINARY) {
			c->srv->ctr.binary_closed++;
			mgmt_log("%s: binary data, closing", c->peer);
			c->state = CLI_READY;
			rec_buf_reset(&c->out);
			rec_err(&c->out, 400, "binary data in line");
			c->srv->ctr.command_errors++;
			cli_finish(c);
			break;
		}
		if (ev == LINE_TOO_LONG) {
			c->srv->ctr.line_too_long++;
			if (c->state == CLI_BODY) {
				c->body_line_too_long = true; /* told at "." */
				continue;
			}
			cli_err(c, 413, "line too long (max %zu bytes)", c->lr.max);
			continue;
		}
		if (c->state == CLI_BODY)
			body_line(c, line, len);
		else
			cmd_dispatch(c, (char *)line, len);
	}
	c->in_process = false;
	update_reading(c);
}

/* ---------------------------------------------------------------- accept */

static void peer_name(struct cli *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			/* As ::ffff:a.b.c.d, so no IPv6 address shares its key. */
			c->peer_addr[10] = c->peer_addr[11] = 0xff;
			memcpy(c->peer_addr + 12, &in->sin_addr, 4);
			inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			memcpy(c->peer_addr, &in6->sin6_addr, 16);
			inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
			port = ntohs(in6->sin6_port);
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%u", a, port);
}

int cli_accept(struct server *srv, uv_stream_t *listener)
{
	struct cli *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->srv = srv;
	if ((r = line_reader_init(&c->lr, CLI_LINE_MAX, CLI_LINE_MAX_PRE))) {
		free(c);
		return r;
	}
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	c->rejected = srv->n_clients >= srv->conf->max_clients;
	if (!c->rejected)
		srv->n_clients++;

	if ((r = uv_accept(listener, (uv_stream_t *)&c->tcp))) {
		snprintf(c->peer, sizeof(c->peer), "?");
		cli_close(c);
		return r;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	peer_name(c);
	srv->ctr.connections++;
	if (c->rejected) {
		srv->ctr.rejected_full++;
		mgmt_log("%s: refused, %u clients already", c->peer, srv->n_clients);
		rec_err(&c->out, 503, "too many clients");
		cli_finish(c);
		return 0;
	}
	auth_nonce(c->nonce);
	rec_buf_printf(&c->out, "TANDEM %s node=%s nonce=%s\n", TANDEM_VERSION,
		       srv->conf->name, c->nonce);
	mgmt_log("%s: connected", c->peer);
	if (flush(c))
		return 0;
	c->state = CLI_READY;
	timer_idle(c);
	update_reading(c);
	return 0;
}
