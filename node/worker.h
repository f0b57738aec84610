/*
 * worker.h - one data-path thread per queue: it alone owns its shard.
 *
 * Loop: rx_burst -> pkt_parse -> pipeline_packet -> (reject answer) ->
 * verdict_burst -> pipeline_tick -> every 100 ms publish a counter
 * snapshot. The control thread reads snapshots under a sequence counter
 * (seqlock): it never locks or slows a worker, and a worker never waits.
 */
#ifndef TANDEM_WORKER_H
#define TANDEM_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ctl.h"
#include "pipeline.h"
#include "pkt_io.h"
#include "reject.h"

struct worker {
	struct shard sh;
	unsigned queue;              /* index into the source's queues */
	const struct pkt_io_ops *ops;
	struct pkt_io *io;
	struct rejector rej;
	pthread_t th;
	bool started;
	atomic_bool *stop;
	/* control jobs (jobs.h): one at a time, posted by the control thread */
	struct ctl_job *_Atomic job;
	struct ctl *ctl;
	/* published for the control thread */
	_Atomic uint32_t snap_seq;   /* odd while being written */
	struct shard_stats snap;
	uint32_t snap_sessions;
};

/* Start the thread. 0 or -errno. */
int worker_start(struct worker *w);
void worker_join(struct worker *w);

/* Copy a consistent snapshot (control thread). */
void worker_read(struct worker *w, struct shard_stats *st,
		 uint32_t *sessions);

#endif
