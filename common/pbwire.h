/*
 * pbwire.h - growable byte buffers, the few protobuf encodings syncd writes
 * by hand, and an arena allocator for unpacking frames.
 *
 * Why by hand: a replicated event is stored once as packed Session bytes
 * (mirror.h); an EventBatch, a PeerMsg carrying one and a SYNC_APPLY
 * CtlRequest carrying one are then only tags and lengths around those
 * bytes, so an event is never unpacked and packed again on its way.
 * The encodings are the standard protobuf wire format (varints, tag =
 * field << 3 | wire type, length-delimited fields), checked against
 * protobuf-c in tests/syncd/test_wire.c.
 *
 * The arena gives protobuf-c its memory while one frame is unpacked and is
 * reset afterwards: no malloc per event once it has grown to the largest
 * frame seen.
 *
 * Must never: write past a buffer's capacity (every put reserves first),
 * or hand out arena memory that outlives arena_reset().
 */
#ifndef TANDEM_COMMON_PBWIRE_H
#define TANDEM_COMMON_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct buf {
	uint8_t *p;
	size_t len, cap;
};

int buf_reserve(struct buf *b, size_t more);
int buf_put(struct buf *b, const void *data, size_t n);
void buf_reset(struct buf *b);          /* len = 0, memory kept */
void buf_free(struct buf *b);           /* memory released */
/* Drop the first n bytes (consumed input). */
void buf_consume(struct buf *b, size_t n);

enum { PB_VARINT = 0, PB_LEN = 2 };

/* Bytes a varint of v takes (1..10). */
size_t pb_varint_len(uint64_t v);
size_t pb_put_varint_raw(uint8_t *out, uint64_t v);
int pb_put_varint(struct buf *b, unsigned field, uint64_t v);
int pb_put_len(struct buf *b, unsigned field, const void *data, size_t n);
/* Field header of a length-delimited field of n bytes (content follows). */
int pb_put_len_hdr(struct buf *b, unsigned field, size_t n);
/* Encoded size of a length-delimited field of n bytes. */
size_t pb_len_field_size(unsigned field, size_t n);

/* Session.remaining_ms: kept out of stored sessions (mirror.h) and
 * appended when an event is encoded, so it is always the time left now. */
#define PB_SESSION_REMAINING 12

/* One SessionEvent {type = 1; session = 2} as field `field` of the
 * enclosing message (EventBatch.events is field 1); session holds a packed
 * Session without remaining_ms, which is appended. */
int pb_put_event(struct buf *b, unsigned field, unsigned type,
		 const uint8_t *session, size_t n, uint32_t remaining_ms);
size_t pb_event_size(unsigned field, size_t session_len,
		     uint32_t remaining_ms);
/* Copy the packed message in[0..n) to out without field `field` (every
 * occurrence). -EPROTO when in is not well-formed. */
int pb_strip_field(const uint8_t *in, size_t n, unsigned field,
		   struct buf *out);

/* Reading in place: the events of a PeerMsg or SyncStream (syncd) and of a
 * SYNC_APPLY request (tandem-node, node/sess_wire.c) are never unpacked by
 * protobuf-c (its allocations and the repacking were most of the time per
 * event); the rest of a message is small and is. */

/* One field at *pos (< n): its number and wire type; a varint's value in
 * *v, a length-delimited field's content in *data, *len (pointing into in);
 * fixed32/fixed64 fields are skipped over. -EPROTO when malformed (a
 * truncated field, field number 0, a group). */
int pb_next_field(const uint8_t *in, size_t n, size_t *pos, unsigned *field,
		  unsigned *wt, uint64_t *v, const uint8_t **data, size_t *len);

/* Top-level scan of a packed message: returns how many length-delimited
 * occurrences of `field` it has (or -EPROTO when not well-formed); the last
 * value of each varint field f < n_varints (and < 32) is put in
 * varints[f], and bit f of *seen set. */
int pb_scan(const uint8_t *in, size_t n, unsigned field, uint64_t *varints,
	    unsigned n_varints, unsigned *seen);

/* A SessionEvent, read where it lies: session points into the message
 * (valid as long as it is), with remaining_ms still in it. */
struct pb_event {
	unsigned type;
	uint64_t id;
	uint32_t remaining_ms;
	const uint8_t *session;
	size_t session_len;
};

/* Iterator over the events of every EventBatch found in field `field` of
 * a packed message (PeerMsg.events and SyncStream.events are field 1). */
struct pb_events {
	const uint8_t *in, *batch;
	size_t n, pos, blen, bpos;
	unsigned field;
};

void pb_events_begin(struct pb_events *it, const uint8_t *in, size_t n,
		     unsigned field);
/* 1 and *ev: an event; 0: no more; -EINVAL: an event without type,
 * session, id or remaining_ms (skipped: call again); -EPROTO: not
 * well-formed (the iteration ends). */
int pb_events_next(struct pb_events *it, struct pb_event *ev);

struct arena_chunk;

struct arena {
	ProtobufCAllocator pa;      /* hand &arena.pa to *_unpack() */
	struct arena_chunk *chunks; /* first = current */
	size_t total;               /* bytes held */
};

void arena_init(struct arena *a);
/* Forget every allocation; keeps the largest chunk for the next frame. */
void arena_reset(struct arena *a);
void arena_fini(struct arena *a);

#endif
