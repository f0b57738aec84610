/*
 * ctl.h - tandem-node's control socket and its running configuration.
 *
 * A libuv server on a unix stream socket (config `control.socket`):
 * 4-byte big-endian length + CtlRequest, answered by CtlReply
 * (proto/tandem.proto). Queries that need sessions become jobs posted to
 * each shard's owner (jobs.h) and are answered when every shard finished;
 * config push/check/rollback validate fully, then swap the policy per
 * shard at a burst boundary and revalidate in slices.
 *
 * Runs on the control thread only (the loop's thread). ctl_wake() is the
 * one function a worker may call.
 */
#ifndef TANDEM_CTL_H
#define TANDEM_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "jobs.h"

/* One loaded configuration: config, compiled policy, worker context. */
struct node_conf {
	struct tandem_config *cfg;
	struct policy *pol;
	struct node_ctx ctx;
	char *text;            /* the config text it came from */
};

/* Parse, validate and compile text. Returns 0 and *ret, or -errno with
 * "FILE:LINE: SETTING: reason" in err. */
int node_conf_new(const char *text, const char *path, struct connlimit *lim,
		  bool zones_by_iface, struct node_conf **ret, char *err,
		  size_t errlen);
void node_conf_free(struct node_conf *nc); /* accepts NULL */
/* Read a whole file (config) into a NUL-terminated buffer. */
int read_text_file(const char *path, char **ret, char *err, size_t errlen);

struct ctl_shard_ops {
	/* Hand a job to shard i's owner; completion: j->done, then ctl_wake(). */
	void (*post)(void *arg, unsigned shard, struct ctl_job *j);
	/* Counter snapshot of shard i. */
	void (*read)(void *arg, unsigned shard, struct shard_stats *st,
		     uint32_t *sessions);
	/* Replication ring of shard i (NULL: replication off). */
	struct sync_out *(*sync)(void *arg, unsigned shard);
};

struct ctl;

int ctl_new(uv_loop_t *loop, struct node_conf *running, unsigned nshards,
	    uint32_t capacity, const struct ctl_shard_ops *ops, void *arg,
	    struct ctl **ret);
/* Listen on path (its directory is created; a stale socket replaced). */
int ctl_listen(struct ctl *c, const char *path, char *err, size_t errlen);
/* Worker threads: a job finished. */
void ctl_wake(struct ctl *c);
/* SIGHUP: reload the config file like a push; the result goes to stderr. */
void ctl_reload_file(struct ctl *c);
/* Close the server and connections; the loop then runs out. */
void ctl_close(struct ctl *c);
/* Free after the loop ended (accepts NULL); frees the configs it holds. */
void ctl_free(struct ctl *c);

#endif
