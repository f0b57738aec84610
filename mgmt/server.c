/*
 * server.c - tandem-mgmt's listening socket and shared state.
 *
 * Must never: listen on anything but the configured address (loopback by
 * default), or keep a handle open after server_stop() (the loop must end
 * by itself, which is how the SIGTERM test knows nothing leaked).
 */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define LIMITER_SLOTS 1024 /* source addresses remembered for failed logins */

void mgmt_log(const char *fmt, ...)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ tandem-mgmt: ", ts, now.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct server *s = l->data;

	if (status < 0 || s->stopping)
		return;
	int r = cli_accept(s, l);
	if (r)
		mgmt_log("accept: %s", uv_strerror(r));
}

int server_new(uv_loop_t *loop, const struct mgmt_conf *conf,
	       struct server **ret, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	struct server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->conf = conf;
	s->start_ms = uv_now(loop);
	if (uv_ip4_addr(conf->listen_addr, conf->port, (struct sockaddr_in *)&addr) &&
	    uv_ip6_addr(conf->listen_addr, conf->port, (struct sockaddr_in6 *)&addr)) {
		snprintf(err, errlen, "listen.address '%s' is not an IP address",
			 conf->listen_addr);
		free(s);
		return -EINVAL;
	}
	if ((r = auth_limiter_new(LIMITER_SLOTS, conf->login_max,
				  conf->login_window_ms, conf->login_block_ms,
				  &s->limiter)) ||
	    (r = ctl_client_new(loop, conf->node_socket, conf->ctl_timeout_ms,
				&tandem__ctl_reply__descriptor, &s->node)) ||
	    (conf->syncd_socket[0] &&
	     (r = ctl_client_new(loop, conf->syncd_socket, conf->ctl_timeout_ms,
				 &tandem__syncd_reply__descriptor, &s->syncd)))) {
		snprintf(err, errlen, "start: %s", strerror(-r));
		auth_limiter_free(s->limiter);
		ctl_client_close(s->node);
		ctl_client_close(s->syncd);
		/* The ctl clients free themselves when the loop runs. */
		free(s);
		return r;
	}
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->listening = true;
	if ((r = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0)) ||
	    (r = uv_listen((uv_stream_t *)&s->listener, 64, on_connection))) {
		snprintf(err, errlen, "listen on %s port %u: %s", conf->listen_addr,
			 conf->port, uv_strerror(r));
		s->stopping = true;
		ctl_client_close(s->node);
		ctl_client_close(s->syncd);
		s->node = s->syncd = NULL;
		/* The handle must be closed before the memory goes: the caller
		 * runs the loop, then server_free(). */
		*ret = s;
		uv_close((uv_handle_t *)&s->listener, NULL);
		s->listening = false;
		return r == UV_EADDRINUSE ? -EADDRINUSE : -EINVAL;
	}
	*ret = s;
	return 0;
}

void server_stop(struct server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	if (s->listening) {
		uv_close((uv_handle_t *)&s->listener, NULL);
		s->listening = false;
	}
	/* Clients first: their jobs are detached before the ctl clients fail
	 * what is pending. */
	while (s->clients)
		cli_close(s->clients);
	ctl_client_close(s->node);
	ctl_client_close(s->syncd);
	s->node = s->syncd = NULL;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	auth_limiter_free(s->limiter);
	free(s);
}

size_t server_counters(const struct server *s, struct render_counter *out,
		       size_t max)
{
	size_t n = 0;

#define X_PUT(f, nm)                                                           \
	if (n < max)                                                           \
		out[n++] = (struct render_counter){nm, s->ctr.f};
	MGMT_COUNTERS(X_PUT)
#undef X_PUT
	/* The ctl connections' counters; names are static strings. */
	static const char *const names[2][8] = {
		{"node-requests", "node-timeouts", "node-connects",
		 "node-connect-failures", "node-disconnects", "node-bad-frames",
		 "node-bad-replies", "node-late-replies"},
		{"syncd-requests", "syncd-timeouts", "syncd-connects",
		 "syncd-connect-failures", "syncd-disconnects", "syncd-bad-frames",
		 "syncd-bad-replies", "syncd-late-replies"},
	};
	const struct ctl_client *peers[2] = {s->node, s->syncd};
	for (int k = 0; k < 2; k++) {
		if (!peers[k])
			continue;
		const struct ctl_stats *cs = ctl_client_stats(peers[k]);
		const uint64_t v[8] = {cs->requests, cs->timeouts, cs->connects,
				       cs->connect_failures, cs->disconnects,
				       cs->bad_frames, cs->bad_replies,
				       cs->late_replies};
		for (size_t i = 0; i < 8 && n < max; i++)
			out[n++] = (struct render_counter){names[k][i], v[i]};
	}
	return n;
}
