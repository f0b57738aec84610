/*
 * worker.c - the data-path thread of one queue (see worker.h).
 * Must never: allocate, lock, log, or touch another worker's shard.
 */
#include "worker.h"

#include <errno.h>
#include <string.h>

#include "clock.h"
#include "keepalive.h"
#include "mss.h"

#define BURST PIPELINE_BURST
#define PUBLISH_MS 100

static void publish(struct worker *w)
{
	uint32_t s = atomic_load_explicit(&w->snap_seq, memory_order_relaxed);
	atomic_store_explicit(&w->snap_seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(&w->snap, &w->sh.st, sizeof(w->snap));
	w->snap_sessions = sess_table_count(w->sh.tab);
	atomic_store_explicit(&w->snap_seq, s + 2, memory_order_release);
}

void worker_read(struct worker *w, struct shard_stats *st, uint32_t *sessions)
{
	for (;;) {
		uint32_t a = atomic_load_explicit(&w->snap_seq,
						  memory_order_acquire);
		if (a & 1)
			continue;
		memcpy(st, &w->snap, sizeof(*st));
		*sessions = w->snap_sessions;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&w->snap_seq, memory_order_relaxed) == a)
			return;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pkt_desc d[BURST];
	enum verdict v[BURST];
	uint64_t last_pub = 0;

	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		struct ctl_job *job = atomic_load_explicit(&w->job,
							   memory_order_acquire);
		/* With a job pending, do not sleep in receive: alternate
		 * bursts and job slices until the job is done. */
		int n = w->ops->rx_burst(w->io, w->queue, d, BURST, job != NULL);
		uint64_t now = clock_now_ms();
		/* Parse the burst once; malformed packets are counted and
		 * dropped here, the rest go through the pipeline together. */
		struct pkt p[BURST];
		struct pipeline_result res[BURST];
		uint8_t iif[BURST], oif[BURST], at[BURST];
		unsigned m = 0;
		bool verify = w->sh.ctx->cfg->checksum_verify;
		for (int i = 0; i < n; i++) {
			d[i].mangled = 0;
			enum drop_reason why = d[i].l2_drop != DROP_NONE
				? (enum drop_reason)d[i].l2_drop
				: pkt_parse(&p[m], d[i].l3, d[i].len);
			/* tcp.checksum_verify: only sums nobody checked; a
			 * partial one is the device's to complete */
			if (why == DROP_NONE && verify &&
			    d[i].csum == PKT_CSUM_UNVERIFIED &&
			    !l4_csum_ok(d[i].l3, &p[m]))
				why = DROP_L4_CSUM;
			if (why != DROP_NONE) {
				pipeline_count_drop(&w->sh, why, d[i].len);
				v[i] = V_DROP;
				continue;
			}
			iif[m] = d[i].iif;
			oif[m] = d[i].oif;
			at[m++] = (uint8_t)i;
		}
		pipeline_burst(&w->sh, p, iif, oif, m, now, res);
		for (unsigned j = 0; j < m; j++) {
			v[at[j]] = res[j].verdict;
			d[at[j]].requeue_to = res[j].requeue_to;
			if (res[j].mss_clamp && res[j].verdict == V_ACCEPT) {
				/* the source's own receive buffer or frame */
				mss_rewrite((uint8_t *)d[at[j]].l3, &p[j],
					    res[j].mss_clamp,
					    d[at[j]].csum == PKT_CSUM_PARTIAL);
				d[at[j]].mangled = 1;
			}
			if (res[j].verdict == V_REJECT)
				reject_send(&w->rej, &p[j]);
		}
		w->ops->verdict_burst(w->io, w->queue, d, v,
				      n > 0 ? (unsigned)n : 0, &w->sh.st);
		pipeline_tick(&w->sh, now);
		if (job && job_run_slice(job, &w->sh, now)) {
			atomic_store_explicit(&w->job, NULL, memory_order_relaxed);
			atomic_store_explicit(&job->done, true, memory_order_release);
			ctl_wake(w->ctl);
		}
		if (now - last_pub >= PUBLISH_MS) {
			publish(w);
			last_pub = now;
		}
	}
	publish(w);
	return NULL;
}

static int worker_probe(void *arg, const struct sess *s)
{
	struct worker *w = arg;
	uint8_t buf[128];
	const uint8_t *dst;
	size_t n = ka_probe_build(s, buf, sizeof(buf), &dst);
	return n ? rejector_send_raw(&w->rej, s->key.family, dst, buf, n) : -ENOMSG;
}

int worker_start(struct worker *w)
{
	w->rej.fd4 = w->rej.fd6 = -1;
	int r = reject_open(&w->rej);
	if (r < 0)
		return r;
	w->sh.probe = worker_probe;
	w->sh.probe_arg = w;
	publish(w);
	r = pthread_create(&w->th, NULL, worker_main, w);
	if (r) {
		reject_close(&w->rej);
		return -r;
	}
	w->started = true;
	return 0;
}

void worker_join(struct worker *w)
{
	if (!w->started)
		return;
	pthread_join(w->th, NULL);
	reject_close(&w->rej);
	w->started = false;
}
