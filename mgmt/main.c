/*
 * main.c - tandem-mgmt: the management daemon.
 *
 *   tandem-mgmt --config FILE      serve the TCP text protocol
 *   tandem-mgmt --config FILE --check   validate FILE and exit
 *
 * SIGTERM / SIGINT: stop listening, close every client and the ctl
 * connections, let the loop end, free everything, exit 0.
 *
 * Must never: run as a partly configured server (any config error exits 1
 * before the socket is opened), or exit on SIGTERM without closing handles.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "mgmt_conf.h"
#include "server.h"

static struct server *g_srv;
static uv_signal_t sig_term, sig_int;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tandem-mgmt --config FILE [--check]\n"
		"  --config FILE  management config (conf/mgmt.conf)\n"
		"  --check        validate the config and exit\n"
		"  --version      print the version\n");
}

static void on_signal(uv_signal_t *h, int signum)
{
	mgmt_log("signal %d: stopping", signum);
	(void)h;
	server_stop(g_srv);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'k'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cfg_path = NULL;
	bool check = false;
	char err[512];
	int o;

	while ((o = getopt_long(argc, argv, "c:kVh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfg_path = optarg; break;
		case 'k': check = true; break;
		case 'V': printf("tandem-mgmt %s\n", TANDEM_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "tandem-mgmt: libsodium cannot start\n");
		return 1;
	}
	struct mgmt_conf *conf = NULL;
	if (mgmt_conf_load_file(cfg_path, &conf, err, sizeof(err))) {
		fprintf(stderr, "tandem-mgmt: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok, %u users, listen %s port %u\n", cfg_path,
		       conf->n_users, conf->listen_addr, conf->port);
		mgmt_conf_free(conf);
		return 0;
	}
	if (conf->file_too_open)
		mgmt_log("warning: %s holds tokens and is readable by group/others",
			 cfg_path);
	signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an EPIPE */

	uv_loop_t loop;
	uv_loop_init(&loop);
	int r = server_new(&loop, conf, &g_srv, err, sizeof(err));
	int rc = 0;
	if (r) {
		fprintf(stderr, "tandem-mgmt: %s\n", err);
		rc = 1;
	} else {
		uv_signal_init(&loop, &sig_term);
		uv_signal_init(&loop, &sig_int);
		uv_signal_start(&sig_term, on_signal, SIGTERM);
		uv_signal_start(&sig_int, on_signal, SIGINT);
		mgmt_log("listening on %s port %u, node %s, node socket %s%s%s",
			 conf->listen_addr, conf->port, conf->name, conf->node_socket,
			 conf->syncd_socket[0] ? ", syncd socket " : "",
			 conf->syncd_socket);
	}
	uv_run(&loop, UV_RUN_DEFAULT); /* ends when every handle is closed */
	server_free(g_srv);
	g_srv = NULL;
	if (uv_loop_close(&loop) == UV_EBUSY) {
		mgmt_log("handles still open at exit");
		rc = rc ? rc : 1;
	}
	mgmt_conf_free(conf);
	if (!rc)
		mgmt_log("stopped");
	return rc;
}
