/*
 * server.h - tandem-mgmt's listener, its clients, the ctl clients of node
 * and syncd, the login limiter and the counters shown by `show stats`.
 *
 * Must never: accept more than max_clients authenticated-or-not clients at
 * once (the extra one gets `ERR 503 too many clients` and is closed).
 */
#ifndef TANDEM_MGMT_SERVER_H
#define TANDEM_MGMT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "auth.h"
#include "ctl_client.h"
#include "mgmt_conf.h"
#include "render.h"

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "0.1.0"
#endif

/* mgmt's own counters: name, field; `show stats` and `show metrics` list
 * them from this one X-macro. */
#define MGMT_COUNTERS(X)                                                       \
	X(connections, "connections")       /* accepted */                     \
	X(rejected_full, "rejected-too-many-clients")                          \
	X(auth_ok, "auth-ok")                                                  \
	X(auth_failed, "auth-failed")                                          \
	X(auth_rate_limited, "auth-rate-limited")                              \
	X(commands, "commands")                                                \
	X(command_errors, "command-errors")  /* ERR replies */                 \
	X(line_too_long, "line-too-long")                                      \
	X(binary_closed, "binary-closed")                                      \
	X(idle_closed, "idle-closed")                                          \
	X(slow_dropped, "slow-client-dropped") /* output not read */           \
	X(config_pushes, "config-pushes")

struct mgmt_counters {
#define X_FIELD(f, name) uint64_t f;
	MGMT_COUNTERS(X_FIELD)
#undef X_FIELD
};

struct cli;

struct server {
	uv_loop_t *loop;
	const struct mgmt_conf *conf;
	uv_tcp_t listener;
	bool listening;
	struct cli *clients;      /* doubly linked */
	unsigned n_clients;       /* not counting rejected ones */
	struct ctl_client *node;
	struct ctl_client *syncd; /* NULL: no syncd_socket configured */
	struct auth_limiter *limiter;
	struct mgmt_counters ctr;
	uint64_t start_ms;
	bool push_running;        /* one config push/rollback at a time */
	bool stopping;
};

/* Binds and listens; err gets a message on failure. */
int server_new(uv_loop_t *loop, const struct mgmt_conf *conf,
	       struct server **ret, char *err, size_t errlen);
/* Closes the listener, every client and the ctl clients (async); run the
 * loop until it ends, then server_free(). */
void server_stop(struct server *s);
void server_free(struct server *s); /* accepts NULL */

/* mgmt counters + ctl client counters as (name, value) pairs; returns n. */
size_t server_counters(const struct server *s, struct render_counter *out,
		       size_t max);

void mgmt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
