/*
 * render.h - node replies (proto/tandem.proto) as protocol data lines.
 *
 * Records (docs/mgmt-protocol.md has every field):
 *   session  one per session; `full` adds every field the node sent
 *   status   node identity, table use, policy
 *   counter  name=... value=...
 *   push     config push / check / rollback result
 *   config   line=N text="..." (show config); policy lines likewise unless
 *            the node already sent records
 * and the Prometheus text exposition of `show metrics`.
 *
 * Long replies are rendered piecewise through struct render_stream, so the
 * daemon formats only as much as the client's socket takes (bounded output
 * memory however many sessions the node returned).
 *
 * Must never: emit a line that does not start with a lowercase record word
 * (or '#'/"tandem_" in metrics), or read a protobuf field without checking
 * its presence.
 */
#ifndef TANDEM_MGMT_RENDER_H
#define TANDEM_MGMT_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "tandem.pb-c.h"

void render_session(struct rec_buf *b, const Tandem__Session *s, bool full);
void render_status(struct rec_buf *b, const Tandem__Status *st);
void render_counter(struct rec_buf *b, const char *name, uint64_t value);
void render_push(struct rec_buf *b, const Tandem__PushResult *p);

/* `show cluster` (tandem-syncd's ClusterStatus): one `cluster` record, a
 * `peer` record per peer, then its counters as `counter` records. */
void render_cluster(struct rec_buf *b, const Tandem__ClusterStatus *cs);

/* mgmt's own counters, appended to `show stats` and `show metrics`. */
struct render_counter {
	const char *name;
	uint64_t value;
};

/*
 * `show metrics`: status may be NULL (node down: tandem_up 0 and nothing
 * from the node), stats may be NULL. syncd: 0 none configured (nothing
 * about the cluster), 1 configured; cluster NULL then means it did not
 * answer (tandem_syncd_up 0).
 */
void render_metrics(struct rec_buf *b, const Tandem__Status *status,
		    const Tandem__CtlReply *stats, int syncd,
		    const Tandem__ClusterStatus *cluster,
		    const struct render_counter *mgmt, size_t n_mgmt);

enum render_kind {
	RENDER_SESSIONS,  /* reply->sessions, short records */
	RENDER_SESSION_FULL,
	RENDER_TEXT,      /* reply->text as `word line=N text=...` */
	RENDER_RECORDS,   /* reply->text: record lines kept, others as TEXT */
};

struct render_stream {
	enum render_kind kind;
	const Tandem__CtlReply *reply;
	const char *word;  /* RENDER_TEXT / RENDER_RECORDS */
	size_t pos;        /* next session index / text offset */
	unsigned line;     /* text line number (1-based) */
	size_t text_len;
};

void render_stream_init(struct render_stream *rs, enum render_kind kind,
			const Tandem__CtlReply *reply, const char *word);
/* Appends lines until about `budget` bytes were added or the reply is done;
 * returns true when done. Always makes progress (at least one line). */
bool render_stream_more(struct render_stream *rs, struct rec_buf *b,
			size_t budget);

#endif
