/*
 * commands.c - the management commands: one table, one dispatcher, the
 * handlers, and the jobs that carry a command's ctl request to tandem-node
 * (or tandem-syncd) and its reply back to the client.
 *
 * Checks in cmd_dispatch(), in this order, before any handler runs: words
 * known, authenticated (or a before-auth command), number of arguments,
 * privilege. Handlers validate their arguments completely before sending
 * anything, so every refusal leaves node and daemon as they were.
 *
 * Must never: send a request for a refused command, keep a pointer to a
 * client whose connection closed (jobs are detached), or leave the push
 * lock taken after the reply, a timeout or the client's departure.
 */
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "cli.h"
#include "filter.h"
#include "render.h"
#include "server.h"
#include "wire.h"

enum priv {
	PRIV_NONE = 0, /* also before auth */
	PRIV_READ,     /* any authenticated user */
	PRIV_ADMIN,    /* changes state */
};

typedef void (*cmd_fn)(struct cli *c, int argc, char **argv);

struct cmd {
	const char *words;  /* "show sessions count" */
	unsigned min_args, max_args;
	enum priv priv;
	cmd_fn fn;
	const char *args;   /* usage after the words */
	const char *help;
};

#define FILTER_ARGS 20 /* 9 filter words + limit, each with a value */

enum { BODY_PUSH = 1, BODY_CHECK = 2 };

/* ---------------------------------------------------------------- jobs */

struct cli_job;
/*
 * Returns true when the job goes on (it sent another request). reply is a
 * Tandem__CtlReply * from the node, a Tandem__SyncdReply * from syncd, and
 * the done function's to free.
 */
typedef bool (*job_done_fn)(struct cli *c, struct cli_job *j, void *reply);

struct cli_job {
	struct cli *c;        /* NULL once the client left */
	struct server *srv;
	const char *peer;     /* "node" / "syncd" in messages */
	job_done_fn done;
	bool push;            /* holds srv->push_running */
	bool metrics;         /* show metrics: node errors are data, not ERR */
	uint64_t id;          /* show/clear session <id> */
	uint32_t limit;
	/* show metrics collects three replies before it renders */
	Tandem__CtlReply *status, *stats;
	Tandem__SyncdReply *cluster;
};

static void job_free(struct cli_job *j)
{
	if (j->status)
		tandem__ctl_reply__free_unpacked(j->status, NULL);
	if (j->stats)
		tandem__ctl_reply__free_unpacked(j->stats, NULL);
	if (j->cluster)
		tandem__syncd_reply__free_unpacked(j->cluster, NULL);
	free(j);
}

static void ctl_err(struct cli *c, const struct cli_job *j, int err)
{
	const struct server *s = c->srv;
	bool syncd = strcmp(j->peer, "syncd") == 0;

	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
		if (syncd)
			cli_err(c, 503, "syncd not running");
		else
			cli_err(c, 503, "node not reachable (%s)", ctl_client_path(s->node));
		break;
	case -ETIMEDOUT:
		cli_err(c, 503, "%s did not answer within %u s", j->peer,
			s->conf->ctl_timeout_ms / 1000);
		break;
	case -ECONNRESET:
	case -ECANCELED:
		cli_err(c, 503, "%s connection lost", j->peer);
		break;
	case -EPROTO:
		cli_err(c, 500, "%s sent a malformed reply", j->peer);
		break;
	default:
		cli_err(c, 500, "%s request failed: %s", j->peer, strerror(-err));
	}
}

/* status and error of either reply type (same field numbers on the wire,
 * different C structs). */
static int32_t reply_status(const ProtobufCMessage *m, const char **ret_error)
{
	if (m->descriptor == &tandem__syncd_reply__descriptor) {
		const Tandem__SyncdReply *r = (const Tandem__SyncdReply *)m;
		*ret_error = r->error;
		return r->status;
	}
	const Tandem__CtlReply *r = (const Tandem__CtlReply *)m;
	*ret_error = r->error;
	return r->status;
}

static void metrics_finish(struct cli *c, struct cli_job *j);

static void on_reply(void *arg, int err, ProtobufCMessage *m)
{
	struct cli_job *j = arg;
	struct cli *c = j->c;
	const char *error = NULL;
	int32_t status = m ? reply_status(m, &error) : 0;

	if (j->push)
		j->srv->push_running = false;
	j->push = false;
	if (!c) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		job_free(j);
		return;
	}
	c->job = NULL;
	if (j->metrics && (err || status)) {
		/* Metrics say what they can: node down = tandem_up 0. */
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		metrics_finish(c, j);
		job_free(j);
		return;
	}
	if (err) {
		ctl_err(c, j, err);
		job_free(j);
		return;
	}
	if (status != 0) {
		cli_err(c, wire_status_code(status), "%s",
			error && *error ? error : "request refused");
		protobuf_c_message_free_unpacked(m, NULL);
		job_free(j);
		return;
	}
	if (!j->done(c, j, m))
		job_free(j);
}

/* Sends req (its seq field at *seq) for client c; the reply goes to
 * j->done. On failure the client gets its ERR here and j is freed. */
static void job_send(struct cli *c, struct cli_job *j, struct ctl_client *to,
		     ProtobufCMessage *req, uint64_t *seq)
{
	j->c = c;
	j->srv = c->srv;
	c->job = j;
	cli_busy(c);
	int r = ctl_client_send(to, req, seq, on_reply, j); /* packs req now */
	if (r) {
		c->job = NULL;
		if (j->push)
			c->srv->push_running = false;
		j->push = false;
		if (j->metrics) {
			metrics_finish(c, j);
		} else if (r == -ECONNRESET) {
			ctl_err(c, j, r);
		} else {
			cli_err(c, 500, "cannot send to %s: %s", j->peer, strerror(-r));
		}
		job_free(j);
	}
}

/* "user@addr:port" for the node's or syncd's log. */
static void source_of(const struct cli *c, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s@%s", c->user, c->peer);
}

static void job_ctl(struct cli *c, struct cli_job *j, Tandem__CtlRequest *req)
{
	char source[160];

	source_of(c, source, sizeof(source));
	req->source = source;
	job_send(c, j, c->srv->node, &req->base, &req->seq);
}

static void job_syncd(struct cli *c, struct cli_job *j, Tandem__SyncdRequest *req)
{
	char source[160];

	source_of(c, source, sizeof(source));
	req->source = source;
	job_send(c, j, c->srv->syncd, &req->base, &req->seq);
}

static struct cli_job *job_new(struct cli *c, const char *peer, job_done_fn done)
{
	struct cli_job *j = calloc(1, sizeof(*j));

	if (!j) {
		cli_err(c, 500, "out of memory");
		return NULL;
	}
	j->peer = peer;
	j->done = done;
	return j;
}

/* A request to the node with an optional filter. */
static void node_request(struct cli *c, Tandem__CtlRequest__Cmd cmd,
			 const struct filter *f, uint64_t id, job_done_fn done,
			 struct cli_job *j)
{
	Tandem__CtlRequest req = TANDEM__CTL_REQUEST__INIT;
	Tandem__Filter pf = TANDEM__FILTER__INIT;

	if (!j && !(j = job_new(c, "node", done)))
		return;
	req.cmd = cmd;
	if (f) {
		wire_filter(f, &pf);
		req.filter = &pf;
		if (f->has & FILTER_LIMIT) {
			req.has_limit = 1;
			req.limit = f->limit;
		}
	}
	if (id) {
		pf.has_id = 1;
		pf.id = id;
		req.filter = &pf;
	}
	j->id = id;
	j->limit = f && (f->has & FILTER_LIMIT) ? f->limit : 0;
	job_ctl(c, j, &req);
}

/* ---------------------------------------------------------------- table */

static void do_help(struct cli *c, int argc, char **argv);
static void do_quit(struct cli *c, int argc, char **argv);
static void do_auth(struct cli *c, int argc, char **argv);
static void do_show_status(struct cli *c, int argc, char **argv);
static void do_show_sessions(struct cli *c, int argc, char **argv);
static void do_show_sessions_count(struct cli *c, int argc, char **argv);
static void do_show_session(struct cli *c, int argc, char **argv);
static void do_clear_sessions(struct cli *c, int argc, char **argv);
static void do_clear_session(struct cli *c, int argc, char **argv);
static void do_show_stats(struct cli *c, int argc, char **argv);
static void do_show_policy(struct cli *c, int argc, char **argv);
static void do_show_config(struct cli *c, int argc, char **argv);
static void do_config_push(struct cli *c, int argc, char **argv);
static void do_config_check(struct cli *c, int argc, char **argv);
static void do_config_rollback(struct cli *c, int argc, char **argv);
static void do_show_cluster(struct cli *c, int argc, char **argv);
static void do_request_failover(struct cli *c, int argc, char **argv);
static void do_show_metrics(struct cli *c, int argc, char **argv);

#define FILTER_HELP "FILTER: proto P, src PREFIX, dst PREFIX, sport N, dport N, " \
	"iface NAME, rule NAME, state S, origin local|peer"

static const struct cmd commands[] = {
	{"help", 0, 4, PRIV_NONE, do_help, "[COMMAND]",
	 "list the commands (those starting with COMMAND)"},
	{"quit", 0, 0, PRIV_NONE, do_quit, "", "close the connection"},
	{"auth", 2, 3, PRIV_NONE, do_auth, "USER HMAC | USER password TOKEN",
	 "log in: HMAC = hex HMAC-SHA256(token, nonce of the greeting)"},
	{"show status", 0, 0, PRIV_READ, do_show_status, "",
	 "node identity, uptime, table use, policy"},
	{"show sessions count", 0, FILTER_ARGS, PRIV_READ, do_show_sessions_count,
	 "[FILTER]", "number of sessions matching FILTER"},
	{"show sessions", 0, FILTER_ARGS, PRIV_READ, do_show_sessions,
	 "[FILTER] [limit N]", "sessions matching FILTER (default limit 1000). " FILTER_HELP},
	{"show session", 1, 1, PRIV_READ, do_show_session, "ID",
	 "every field of one session"},
	{"clear sessions", 1, FILTER_ARGS, PRIV_ADMIN, do_clear_sessions,
	 "all | FILTER", "end the sessions matching FILTER (or all)"},
	{"clear session", 1, 1, PRIV_ADMIN, do_clear_session, "ID",
	 "end one session"},
	{"show stats", 0, 0, PRIV_READ, do_show_stats, "",
	 "node and management counters"},
	{"show policy", 0, 0, PRIV_READ, do_show_policy, "", "the running rules"},
	{"show config", 0, 0, PRIV_READ, do_show_config, "",
	 "the running configuration text"},
	{"config push", 0, 0, PRIV_ADMIN, do_config_push, "",
	 "CONTINUE, then the config ended by a \".\" line: validate, swap, revalidate sessions"},
	{"config check", 0, 0, PRIV_READ, do_config_check, "",
	 "like config push as a dry run: nothing changes"},
	{"config rollback", 0, 0, PRIV_ADMIN, do_config_rollback, "",
	 "back to the previous config (revalidating sessions)"},
	{"show cluster", 0, 0, PRIV_READ, do_show_cluster, "",
	 "cluster role and peers (tandem-syncd)"},
	{"request failover", 0, 0, PRIV_ADMIN, do_request_failover, "",
	 "hand the active role to the peer (tandem-syncd)"},
	{"show metrics", 0, 0, PRIV_READ, do_show_metrics, "",
	 "Prometheus text exposition of the counters"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char *priv_name(enum priv p)
{
	return p == PRIV_NONE ? "none" : p == PRIV_READ ? "read-only" : "admin";
}

/* Number of words of cmd if they all begin argv (case-insensitive), else 0. */
static unsigned cmd_match(const struct cmd *cmd, int argc, char **argv)
{
	const char *w = cmd->words;
	unsigned n = 0;

	while (*w) {
		size_t len = strcspn(w, " ");
		if ((int)n >= argc || strlen(argv[n]) != len ||
		    strncasecmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len;
		while (*w == ' ')
			w++;
	}
	return n;
}

static int split(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return n;
		if (n == max)
			return max + 1;
		argv[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
	}
}

void cmd_dispatch(struct cli *c, char *line, size_t len)
{
	char *argv[CMD_WORDS_MAX];
	const struct cmd *best = NULL;
	unsigned best_n = 0;

	(void)len;
	int argc = split(line, argv, CMD_WORDS_MAX);
	if (argc == 0)
		return; /* a blank line is no command and gets no reply */
	c->srv->ctr.commands++;
	if (argc > CMD_WORDS_MAX) {
		if (!c->authed)
			cli_err(c, 401, "not authenticated");
		else
			cli_err(c, 400, "more than %d words", CMD_WORDS_MAX);
		return;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		unsigned n = cmd_match(&commands[i], argc, argv);
		if (n > best_n) {
			best = &commands[i];
			best_n = n;
		}
	}
	if (!c->authed && (!best || best->priv != PRIV_NONE)) {
		cli_err(c, 401, "not authenticated");
		return;
	}
	if (!best) {
		cli_err(c, 400, "unknown command '%.40s%s%.40s' (try help)", argv[0],
			argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return;
	}
	unsigned nargs = (unsigned)argc - best_n;
	if (nargs < best->min_args || nargs > best->max_args) {
		cli_err(c, 400, "usage: %s%s%s", best->words, *best->args ? " " : "",
			best->args);
		return;
	}
	if (best->priv == PRIV_ADMIN && c->role != ROLE_ADMIN) {
		cli_err(c, 403, "forbidden: '%s' needs an admin user", best->words);
		return;
	}
	best->fn(c, (int)nargs, argv + best_n);
}

void cmd_detach(struct cli *c)
{
	if (c->job) {
		c->job->c = NULL; /* the reply will be dropped */
		c->job = NULL;
	}
}

/* ---------------------------------------------------------------- local */

static void do_help(struct cli *c, int argc, char **argv)
{
	unsigned n = 0;

	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct cmd *cmd = &commands[i];
		/* `help show` lists the commands whose words begin so. */
		bool ok = true;
		const char *w = cmd->words;
		for (int k = 0; k < argc && ok; k++) {
			size_t len = strcspn(w, " ");
			ok = len == strlen(argv[k]) && strncasecmp(w, argv[k], len) == 0;
			w += len;
			while (*w == ' ')
				w++;
		}
		if (!ok)
			continue;
		char usage[160];
		snprintf(usage, sizeof(usage), "%s%s%s", cmd->words,
			 *cmd->args ? " " : "", cmd->args);
		rec_begin(&c->out, "command");
		rec_str(&c->out, "name", cmd->words);
		rec_str(&c->out, "usage", usage);
		rec_str(&c->out, "privilege", priv_name(cmd->priv));
		rec_str(&c->out, "help", cmd->help);
		rec_end(&c->out);
		n++;
	}
	if (!n) {
		cli_err(c, 404, "no command '%.64s'", argc ? argv[0] : "");
		return;
	}
	cli_ok(c, "%u commands", n);
}

static void do_quit(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	rec_ok(&c->out, "bye");
	cli_finish(c);
}

static void do_auth(struct cli *c, int argc, char **argv)
{
	struct server *s = c->srv;
	const struct mgmt_conf *conf = s->conf;
	uint64_t now = uv_now(s->loop);
	bool ok;

	if (c->authed) {
		cli_err(c, 409, "already authenticated as %s", c->user);
		return;
	}
	if (argc == 3 && strcmp(argv[1], "password") != 0) {
		cli_err(c, 400, "usage: auth USER HMAC | auth USER password TOKEN");
		return;
	}
	if (argc == 3 && !conf->allow_plain_auth) {
		cli_err(c, 401, "plain password auth is not allowed");
		return;
	}
	if (auth_limiter_blocked(s->limiter, c->peer_addr, now)) {
		s->ctr.auth_rate_limited++;
		cli_err(c, 429, "too many failed logins from this address; try later");
		return;
	}
	const struct mgmt_user *u = mgmt_conf_user(conf, argv[0]);
	if (argc == 3)
		ok = auth_check_plain(u ? u->token : NULL, u ? u->token_len : 0,
				      argv[2]);
	else
		ok = auth_check_hmac(u ? u->token : NULL, u ? u->token_len : 0,
				     c->nonce, argv[1]);
	if (!ok) {
		s->ctr.auth_failed++;
		bool blocked = auth_limiter_fail(s->limiter, c->peer_addr, now);
		mgmt_log("%s: auth failed for '%.32s'%s", c->peer, argv[0],
			 blocked ? "; address blocked" : "");
		cli_err(c, 401, "auth failed");
		return;
	}
	s->ctr.auth_ok++;
	cli_set_user(c, u->name, u->role);
	mgmt_log("%s: user %s (%s) logged in%s", c->peer, u->name,
		 mgmt_role_name(u->role), argc == 3 ? " with a plain token" : "");
	cli_ok(c, "user=%s role=%s", u->name, mgmt_role_name(u->role));
}

/* ---------------------------------------------------------------- node */

static bool done_status(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	const struct server *s = c->srv;

	(void)j;
	if (!r->node) {
		tandem__ctl_reply__free_unpacked(r, NULL);
		cli_err(c, 500, "node sent no status");
		return false;
	}
	render_status(&c->out, r->node);
	rec_begin(&c->out, "mgmt");
	rec_str(&c->out, "version", TANDEM_VERSION);
	rec_str(&c->out, "node", s->conf->name);
	rec_u64(&c->out, "clients", s->n_clients);
	rec_u64(&c->out, "uptime", (uv_now(s->loop) - s->start_ms) / 1000);
	rec_str(&c->out, "user", c->user);
	rec_str(&c->out, "role", mgmt_role_name(c->role));
	rec_end(&c->out);
	tandem__ctl_reply__free_unpacked(r, NULL);
	cli_ok(c, NULL);
	return false;
}

static void do_show_status(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	node_request(c, TANDEM__CTL_REQUEST__CMD__STATUS, NULL, 0, done_status, NULL);
}

static bool done_sessions(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	char status[128];
	size_t n = r->n_sessions;

	if (r->has_truncated && r->truncated)
		snprintf(status, sizeof(status), "%zu sessions, more match (limit %u)",
			 n, j->limit ? j->limit : 1000);
	else
		snprintf(status, sizeof(status), "%zu session%s", n, n == 1 ? "" : "s");
	cli_stream(c, r, RENDER_SESSIONS, NULL, status);
	return false;
}

static bool parse_filter(struct cli *c, int argc, char **argv, unsigned flags,
			 struct filter *f)
{
	char err[200];

	if (filter_parse(argc, argv, flags, f, err, sizeof(err))) {
		cli_err(c, 400, "%s", err);
		return false;
	}
	return true;
}

static void do_show_sessions(struct cli *c, int argc, char **argv)
{
	struct filter f;

	if (parse_filter(c, argc, argv, FILTER_ALLOW_LIMIT, &f))
		node_request(c, TANDEM__CTL_REQUEST__CMD__SESSIONS, &f, 0,
			     done_sessions, NULL);
}

static bool done_count(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	(void)j;
	rec_begin(&c->out, "count");
	rec_u64(&c->out, "sessions", r->has_count ? r->count : r->n_sessions);
	rec_end(&c->out);
	tandem__ctl_reply__free_unpacked(r, NULL);
	cli_ok(c, NULL);
	return false;
}

static void do_show_sessions_count(struct cli *c, int argc, char **argv)
{
	struct filter f;

	if (parse_filter(c, argc, argv, 0, &f))
		node_request(c, TANDEM__CTL_REQUEST__CMD__COUNT, &f, 0, done_count, NULL);
}

static bool parse_id(struct cli *c, const char *s, uint64_t *ret)
{
	if (filter_parse_u64(s, UINT64_MAX, ret) || *ret == 0) {
		cli_err(c, 400, "bad session id '%.32s' (a decimal number)", s);
		return false;
	}
	return true;
}

static bool done_session(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	/* The node filters by id; keep only an exact match, whatever it sent. */
	size_t keep = 0;
	for (size_t i = 0; i < r->n_sessions; i++)
		if (r->sessions[i]->id == j->id)
			keep = i + 1;
	if (!keep) {
		tandem__ctl_reply__free_unpacked(r, NULL);
		cli_err(c, 404, "session %" PRIu64 " not found", j->id);
		return false;
	}
	render_session(&c->out, r->sessions[keep - 1], true);
	tandem__ctl_reply__free_unpacked(r, NULL);
	cli_ok(c, NULL);
	return false;
}

static void do_show_session(struct cli *c, int argc, char **argv)
{
	uint64_t id;

	(void)argc;
	if (!parse_id(c, argv[0], &id))
		return;
	struct filter f = {.has = FILTER_LIMIT, .limit = 1};
	node_request(c, TANDEM__CTL_REQUEST__CMD__SESSIONS, &f, id, done_session, NULL);
}

static bool done_clear(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	uint64_t n = r->has_count ? r->count : 0;

	tandem__ctl_reply__free_unpacked(r, NULL);
	mgmt_log("%s: user %s cleared %" PRIu64 " sessions", c->peer, c->user, n);
	if (j->id && n == 0) {
		cli_err(c, 404, "session %" PRIu64 " not found", j->id);
		return false;
	}
	cli_ok(c, "cleared %" PRIu64, n);
	return false;
}

static void do_clear_sessions(struct cli *c, int argc, char **argv)
{
	struct filter f = {0};

	if (argc == 1 && strcmp(argv[0], "all") == 0) {
		node_request(c, TANDEM__CTL_REQUEST__CMD__CLEAR, &f, 0, done_clear, NULL);
		return;
	}
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "all") == 0) {
			cli_err(c, 400, "'all' goes alone: clear sessions all | FILTER");
			return;
		}
	if (parse_filter(c, argc, argv, 0, &f))
		node_request(c, TANDEM__CTL_REQUEST__CMD__CLEAR, &f, 0, done_clear, NULL);
}

static void do_clear_session(struct cli *c, int argc, char **argv)
{
	uint64_t id;

	(void)argc;
	if (parse_id(c, argv[0], &id))
		node_request(c, TANDEM__CTL_REQUEST__CMD__CLEAR, NULL, id, done_clear, NULL);
}

static void put_mgmt_counters(struct cli *c)
{
	struct render_counter rc[40];
	size_t n = server_counters(c->srv, rc, 40);

	for (size_t i = 0; i < n; i++) {
		char name[96];
		snprintf(name, sizeof(name), "mgmt.%s", rc[i].name);
		render_counter(&c->out, name, rc[i].value);
	}
}

static bool done_stats(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	(void)j;
	for (size_t i = 0; i < r->n_counters; i++)
		render_counter(&c->out, r->counters[i]->name, r->counters[i]->value);
	tandem__ctl_reply__free_unpacked(r, NULL);
	put_mgmt_counters(c);
	cli_ok(c, NULL);
	return false;
}

static void do_show_stats(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	node_request(c, TANDEM__CTL_REQUEST__CMD__STATS, NULL, 0, done_stats, NULL);
}

static bool done_policy(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	(void)j;
	cli_stream(c, r, RENDER_RECORDS, "policy", NULL);
	return false;
}

static void do_show_policy(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	node_request(c, TANDEM__CTL_REQUEST__CMD__POLICY, NULL, 0, done_policy, NULL);
}

static bool done_config(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	(void)j;
	cli_stream(c, r, RENDER_TEXT, "config", NULL);
	return false;
}

static void do_show_config(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	node_request(c, TANDEM__CTL_REQUEST__CMD__CONFIG_SHOW, NULL, 0, done_config, NULL);
}

/* ---------------------------------------------------------------- config */

static bool done_push(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__CtlReply *r = reply;
	(void)j;
	if (!r->push) {
		tandem__ctl_reply__free_unpacked(r, NULL);
		cli_err(c, 500, "node sent no push result");
		return false;
	}
	bool dry = r->push->dry_run;
	render_push(&c->out, r->push);
	mgmt_log("%s: user %s: config %s, policy %s -> %s", c->peer, c->user,
		 dry ? "checked" : "applied", r->push->hash_old, r->push->hash_new);
	tandem__ctl_reply__free_unpacked(r, NULL);
	cli_ok(c, dry ? "config valid (dry run, nothing changed)" : "config applied");
	return false;
}

static void do_config_push(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (c->srv->push_running) {
		cli_err(c, 409, "another config push is running");
		return;
	}
	cli_body_begin(c, BODY_PUSH);
}

static void do_config_check(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_body_begin(c, BODY_CHECK);
}

void cmd_body_done(struct cli *c)
{
	struct server *s = c->srv;
	bool push = c->body_cmd == BODY_PUSH;

	if (c->body_too_big) {
		rec_buf_free(&c->body);
		cli_err(c, 413, "config larger than %u bytes", s->conf->max_config_size);
		return;
	}
	if (c->body_line_too_long) {
		rec_buf_free(&c->body);
		cli_err(c, 413, "config line longer than %d bytes", CLI_LINE_MAX);
		return;
	}
	if (c->body.err) {
		rec_buf_free(&c->body);
		cli_err(c, 500, "out of memory");
		return;
	}
	if (push && s->push_running) {
		rec_buf_free(&c->body);
		cli_err(c, 409, "another config push is running");
		return;
	}
	struct cli_job *j = job_new(c, "node", done_push);
	if (!j) {
		rec_buf_free(&c->body);
		return;
	}
	Tandem__CtlRequest req = TANDEM__CTL_REQUEST__INIT;
	req.cmd = push ? TANDEM__CTL_REQUEST__CMD__CONFIG_PUSH
		       : TANDEM__CTL_REQUEST__CMD__CONFIG_CHECK;
	req.config_text = c->body.p ? c->body.p : (char *)"";
	if (push) {
		s->push_running = true;
		j->push = true;
		s->ctr.config_pushes++;
	}
	job_ctl(c, j, &req); /* packs the text: the body can go */
	rec_buf_free(&c->body);
}

static void do_config_rollback(struct cli *c, int argc, char **argv)
{
	struct server *s = c->srv;

	(void)argc;
	(void)argv;
	if (s->push_running) {
		cli_err(c, 409, "a config push is running");
		return;
	}
	struct cli_job *j = job_new(c, "node", done_push);
	if (!j)
		return;
	s->push_running = true;
	j->push = true;
	node_request(c, TANDEM__CTL_REQUEST__CMD__CONFIG_ROLLBACK, NULL, 0, NULL, j);
}

/* ---------------------------------------------------------------- syncd */

static bool done_cluster(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__SyncdReply *r = reply;

	(void)j;
	if (!r->cluster) {
		tandem__syncd_reply__free_unpacked(r, NULL);
		cli_err(c, 500, "syncd sent no cluster status");
		return false;
	}
	render_cluster(&c->out, r->cluster);
	tandem__syncd_reply__free_unpacked(r, NULL);
	cli_ok(c, NULL);
	return false;
}

static void do_show_cluster(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!c->srv->syncd) {
		cli_err(c, 503, "syncd not running");
		return;
	}
	struct cli_job *j = job_new(c, "syncd", done_cluster);
	if (!j)
		return;
	Tandem__SyncdRequest req = TANDEM__SYNCD_REQUEST__INIT;
	req.cmd = TANDEM__SYNCD_REQUEST__CMD__SHOW_CLUSTER;
	job_syncd(c, j, &req);
}

static bool done_failover(struct cli *c, struct cli_job *j, void *reply)
{
	Tandem__SyncdReply *r = reply;

	(void)j;
	rec_begin(&c->out, "failover");
	rec_str(&c->out, "role", r->role && *r->role ? r->role : "unknown");
	if (r->has_failover_ms)
		rec_u64(&c->out, "elapsed_ms", r->failover_ms);
	rec_end(&c->out);
	mgmt_log("%s: user %s: failover, now %s", c->peer, c->user,
		 r->role ? r->role : "?");
	tandem__syncd_reply__free_unpacked(r, NULL);
	cli_ok(c, "failover done");
	return false;
}

static void do_request_failover(struct cli *c, int argc, char **argv)
{
	const struct mgmt_conf *conf = c->srv->conf;

	(void)argc;
	(void)argv;
	if (!c->srv->syncd) {
		cli_err(c, 503, "syncd not running");
		return;
	}
	struct cli_job *j = job_new(c, "syncd", done_failover);
	if (!j)
		return;
	Tandem__SyncdRequest req = TANDEM__SYNCD_REQUEST__INIT;
	req.cmd = TANDEM__SYNCD_REQUEST__CMD__FAILOVER;
	/* syncd gives up (and says why) a little before we stop waiting. */
	req.has_timeout_ms = 1;
	req.timeout_ms = conf->ctl_timeout_ms > 2000 ? conf->ctl_timeout_ms - 1000
						     : conf->ctl_timeout_ms / 2;
	mgmt_log("%s: user %s requests a failover", c->peer, c->user);
	job_syncd(c, j, &req);
}

/* ---------------------------------------------------------------- metrics */

/* node STATUS -> node STATS -> syncd SHOW_CLUSTER (when configured) ->
 * render. A step that fails ends the chain: what was collected is shown. */
static void metrics_finish(struct cli *c, struct cli_job *j)
{
	struct render_counter rc[40];
	size_t n = server_counters(c->srv, rc, 40);

	render_metrics(&c->out, j->status ? j->status->node : NULL, j->stats,
		       c->srv->syncd != NULL, j->cluster ? j->cluster->cluster : NULL,
		       rc, n);
	cli_ok(c, NULL);
}

static bool done_metrics_cluster(struct cli *c, struct cli_job *j, void *reply)
{
	j->cluster = reply;
	metrics_finish(c, j);
	return false;
}

static bool done_metrics_stats(struct cli *c, struct cli_job *j, void *reply)
{
	j->stats = reply;
	if (!c->srv->syncd) {
		metrics_finish(c, j);
		return false;
	}
	Tandem__SyncdRequest req = TANDEM__SYNCD_REQUEST__INIT;
	req.cmd = TANDEM__SYNCD_REQUEST__CMD__SHOW_CLUSTER;
	j->peer = "syncd";
	j->done = done_metrics_cluster;
	job_syncd(c, j, &req);
	return true;
}

static bool done_metrics_status(struct cli *c, struct cli_job *j, void *reply)
{
	j->status = reply;
	j->done = done_metrics_stats;
	Tandem__CtlRequest req = TANDEM__CTL_REQUEST__INIT;
	req.cmd = TANDEM__CTL_REQUEST__CMD__STATS;
	job_ctl(c, j, &req);
	return true;
}

static void do_show_metrics(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct cli_job *j = job_new(c, "node", done_metrics_status);
	if (!j)
		return;
	j->metrics = true;
	node_request(c, TANDEM__CTL_REQUEST__CMD__STATUS, NULL, 0, NULL, j);
}
