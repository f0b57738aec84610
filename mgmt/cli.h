/*
 * cli.h - one management connection: greeting, line reading with its caps,
 * the config body after CONTINUE, bounded output, idle timeout, closing.
 *
 * States:
 *   READY   reading command lines
 *   BUSY    a command waits for a ctl reply (no reading: commands of one
 *           client run one at a time, in order)
 *   BODY    reading a config body up to the "." line
 *   STREAM  writing a long reply piecewise as the socket drains
 *   CLOSING the last line is queued; the connection closes once written
 *
 * Output: bytes handed to libuv and not yet written are `queued`. A long
 * reply is formatted only while queued < max_output_buffer / 2; anything
 * that would take queued past max_output_buffer drops the client (counted
 * slow-client-dropped), unless nothing is queued (one record larger than
 * the cap still goes to a client that reads). A client whose output has not moved for
 * idle_timeout is dropped too, so a client that never reads holds at most
 * max_output_buffer plus its one node reply.
 *
 * Every command line gets exactly one status line (cli_ok / cli_err) after
 * its data lines; CONTINUE is not a status line.
 *
 * Must never: process a line while a command of the same client runs, read
 * without a free buffer, or free itself outside libuv's close callbacks.
 */
#ifndef TANDEM_MGMT_CLI_H
#define TANDEM_MGMT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "line.h"
#include "mgmt_conf.h"
#include "record.h"
#include "render.h"
#include "server.h"

#define CLI_LINE_MAX_PRE  1024    /* bytes per line before auth */
#define CLI_LINE_MAX      65536   /* after */

enum cli_state { CLI_READY, CLI_BUSY, CLI_BODY, CLI_STREAM, CLI_CLOSING };

struct cli_job;

struct cli {
	struct cli *next, *prev;
	struct server *srv;
	uv_tcp_t tcp;
	uv_timer_t timer;       /* idle / stalled output / closing grace */
	int open_handles;       /* tcp + timer; freed when both closed */
	bool closed;            /* handles are closing */
	bool rejected;          /* over max_clients; not in n_clients */
	bool reading;
	bool in_process;        /* cli_process() on the stack */
	enum cli_state state;
	struct line_reader lr;

	/* who */
	bool authed;
	char user[MCONF_NAME_MAX];
	enum mgmt_role role;
	char nonce[AUTH_NONCE_HEX + 1];
	uint8_t peer_addr[16];  /* for the login limiter */
	char peer[64];          /* "addr:port" for logs */

	/* output */
	size_t queued;
	struct rec_buf out;

	/* config body */
	int body_cmd;           /* what the body is for (commands.c) */
	struct rec_buf body;
	bool body_too_big, body_line_too_long;

	/* long replies */
	struct render_stream rs;
	void *stream_reply;     /* Tandem__CtlReply *, freed when done */
	char stream_status[160];

	struct cli_job *job;    /* ctl request in flight */
};

/* Called by the server for an accepted connection. */
int cli_accept(struct server *srv, uv_stream_t *listener);

/* Data lines go into c->out (record.h), then one of these ends the reply.
 * They flush, return to READY and go on with buffered lines. */
void cli_ok(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_err(struct cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The command now waits for a ctl reply (no reading, idle timer off). */
void cli_busy(struct cli *c);
/* Sends CONTINUE and reads a body for body_cmd until ".". */
void cli_body_begin(struct cli *c, int body_cmd);
/* Streams reply (a Tandem__CtlReply *, owned from now on) then `OK status`. */
void cli_stream(struct cli *c, void *reply, enum render_kind kind,
		const char *word, const char *status);
/* After the queued output: close (quit). */
void cli_finish(struct cli *c);
/* Immediately (server stop). */
void cli_close(struct cli *c);

/* After a successful auth: user, role, longer lines. */
void cli_set_user(struct cli *c, const char *user, enum mgmt_role role);

#endif
