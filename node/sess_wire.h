/*
 * sess_wire.h - a replicated session from its wire form (proto/tandem.proto
 * Session) into the record an apply job installs (jobs.h struct peer_rec).
 *
 * peer_rec_from_bytes() reads the packed Session where it lies (a
 * SYNC_APPLY's events, ctl.c), with no allocation, and means what
 * protobuf-c's unpack would: a field protobuf-c requires is required here
 * too, a known field with another wire type makes the session malformed,
 * each uint32 field keeps the low 32 bits of its varint, unknown fields are
 * skipped. One difference: a field given twice keeps its last occurrence
 * (protobuf-c merges a repeated key or tcp message; syncd never sends one
 * twice). tests/unit/test_sess_wire.c holds it to the result of protobuf-c's
 * unpack followed by the conversion ctl.c used before.
 *
 * Must never: read past the bytes given, or accept a session the table
 * could not hold (bad family, address length, port, zone, state, rule).
 */
#ifndef TANDEM_SESS_WIRE_H
#define TANDEM_SESS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jobs.h"
#include "tandem.pb-c.h"

Tandem__SessionState sess_state_to_wire(uint8_t st);
/* enum sess_state of a wire state; -1 when it has none */
int sess_state_from_wire(int w);
/* enum sync_type of a SessionEvent.Type (unknown ones: SYNC_DELETE) */
uint8_t sync_type_from_wire(unsigned t);

/* 0 and *out (type left 0) from a packed Session; -EPROTO when it is not
 * well-formed, -EINVAL when a required field is missing or a value is one
 * this node cannot hold (cfg: its rules and interfaces; now_ms: the age's
 * base). */
int peer_rec_from_bytes(const uint8_t *d, size_t n,
			const struct tandem_config *cfg, uint64_t now_ms,
			struct peer_rec *out);

#endif
