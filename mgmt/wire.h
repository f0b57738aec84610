/*
 * wire.h - the one place where tandem-mgmt's internal values meet the
 * protobuf wire values of proto/tandem.proto (filter, session states,
 * tracking modes, flag bits, origins).
 *
 * Must never: let a wire enum value escape into the rest of mgmt/ unchecked
 * (an unknown value becomes MG_ST_UNKNOWN / "?" here).
 */
#ifndef TANDEM_MGMT_WIRE_H
#define TANDEM_MGMT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "tandem.pb-c.h"

/* Session.flags bits (node/sess_table.h SF_*; docs/architecture.md). */
enum {
	WIRE_SF_INIT_SIDE1 = 0x01,
	WIRE_SF_PEER = 0x08,
};

/*
 * Fills *pb (initialised by the caller with TANDEM__FILTER__INIT) from f.
 * pb points into f (addresses, names): f must outlive pb's packing.
 */
void wire_filter(const struct filter *f, Tandem__Filter *pb);

enum mg_state wire_state(Tandem__SessionState s);

/* "off" "loose" "normal" "strict", or NULL for an unknown mode. */
const char *wire_mode_name(uint32_t mode);

/* Comma list of flag names ("init-side1,every-seen"), "none" for 0;
 * unknown bits as hex. */
void wire_flags_names(uint32_t flags, char *out, size_t outlen);

/* Protocol error code of a node reply status: 400..599, else 500. */
int wire_status_code(int32_t status);

#endif
