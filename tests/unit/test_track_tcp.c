/*
 * test_track_tcp.c - the TCP tracker (node/track_tcp.c) as a named table of
 * packet sequences, one case each (pf's regress style): every packet is
 * built as bytes, parsed and run through the pipeline, and each step says
 * what must happen to it (forwarded or dropped, and why) and where the
 * session stands afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "connlimit.h"
#include "csum.h"
#include "mss.h"
#include "pipeline.h"
#include "pktbuild.h"
#include "policy.h"

#define CLI "10.1.0.2"
#define NORMAL "10.2.0.1"
#define STRICT "10.2.0.2"
#define LOOSE "10.2.0.3"
#define NOSEQ "10.2.0.4"  /* normal, tcp.sequence_check = false */
#define NOSYN "10.2.0.5"  /* normal, tcp.syn_check = false */

static const char *const conf_text =
	"node = { name = \"t\"; id = 3; };\n"
	"table = { max_sessions = 256; };\n"
	"ageing = { high_watermark = 100; low_watermark = 90; };\n"
	"zones = ( { name = \"in\"; networks = [\"10.1.0.0/16\"]; },\n"
	"          { name = \"out\"; networks = [\"10.2.0.0/16\"]; } );\n"
	"rules = (\n"
	" { name = \"n\"; destination = [\"10.2.0.1\"]; action = \"accept\"; tracking = \"normal\"; },\n"
	" { name = \"s\"; destination = [\"10.2.0.2\"]; action = \"accept\"; tracking = \"strict\"; },\n"
	" { name = \"l\"; destination = [\"10.2.0.3\"]; action = \"accept\"; tracking = \"loose\"; },\n"
	" { name = \"noseq\"; destination = [\"10.2.0.4\"]; action = \"accept\"; tcp = { sequence_check = false; }; },\n"
	" { name = \"nosyn\"; destination = [\"10.2.0.5\"]; action = \"accept\"; tcp = { syn_check = false; }; }\n"
	");\n";

struct fx {
	struct tandem_config *cfg;
	struct policy *pol;
	struct connlimit *lim;
	struct node_ctx ctx;
	struct shard sh;
	uint8_t buf[2048];
	struct pipeline_result res;
};

static int setup(void **st)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512] = "";
	assert_non_null(f);
	if (config_load_string(conf_text, &f->cfg, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	if (policy_compile(f->cfg, &f->pol, err, sizeof(err)) < 0)
		fail_msg("policy: %s", err);
	assert_int_equal(connlimit_new(64, &f->lim), 0);
	clock_use_manual(1000000);
	node_ctx_init(&f->ctx, f->cfg, f->pol, f->lim, false);
	assert_int_equal(shard_init(&f->sh, 0, 256, &f->ctx, clock_now_ms()), 0);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	struct fx *f = *st;
	shard_fini(&f->sh);
	connlimit_free(f->lim);
	policy_free(f->pol);
	config_free(f->cfg);
	free(f);
	return 0;
}

/* ---- the table -------------------------------------------------------- */

#define CI 1000000u     /* client ISN */
#define SI 7000000u     /* server ISN */
#define C(x) (CI + (uint32_t)(x))
#define S(x) (SI + (uint32_t)(x))

enum { F = PB_FIN, Y = PB_SYN, R = PB_RST, P = PB_PSH, A = PB_ACK };
enum { TO_S = 0, TO_C = 1 }; /* client -> server, server -> client */
enum { FWD = 0, DROP = 1 };
enum { ST_ANY = 0, ST_GONE = 100 };

struct step {
	uint8_t dir, flags;
	uint32_t seq, ack;
	uint16_t win;
	int8_t wscale;         /* -1 = no option */
	uint16_t len;
	uint8_t verdict;       /* FWD / DROP */
	enum drop_reason why;  /* for DROP (DROP_NONE: any) */
	enum track_note note;  /* for FWD: the note it must carry (TN_NONE: any) */
	unsigned state;        /* session state afterwards (ST_ANY, ST_GONE) */
};

#define MAX_STEPS 12
struct tcase {
	const char *name;
	const char *server;
	uint16_t port;
	struct step s[MAX_STEPS];
};

/* The usual handshake: windows 65535 unscaled. */
#define HS                                                                     \
	{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },        \
	{ TO_C, Y | A, S(0), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV }, \
	{ TO_S, A, C(1), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED }

static const struct tcase cases[] = {
	{ "handshake_then_data_both_ways", NORMAL, 1, {
		HS,
		{ TO_S, A | P, C(1), S(1), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A | P, S(1), C(101), 65535, -1, 1000, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A, C(101), S(1001), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "synack_acking_the_wrong_number_dropped", NORMAL, 2, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1000), 65535, -1, 0, DROP, DROP_TCP_SYNACK_ACK, 0, SS_TCP_SYN_SENT },
		/* the final ACK of a handshake that never happened */
		{ TO_S, A, C(1), S(1), 65535, -1, 0, DROP, DROP_TCP_STATE, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
	}},
	{ "data_before_synack_refused", STRICT, 3, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_S, A | P, C(1), 0, 65535, -1, 100, DROP, DROP_TCP_STATE, 0, SS_TCP_SYN_SENT },
	}},
	{ "data_on_the_final_ack_passes", NORMAL, 4, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
		{ TO_S, A | P, C(1), S(1), 65535, -1, 200, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "syn_retransmit_with_new_isn_restarts", NORMAL, 5, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_S, Y, C(50000), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1), 65535, -1, 0, DROP, DROP_TCP_SYNACK_ACK, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(50001), 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
	}},
	{ "rst_exact_ends_session", NORMAL, 6, {
		HS,
		{ TO_C, R, S(1), 0, 0, -1, 0, FWD, 0, 0, ST_GONE },
	}},
	{ "rst_far_outside_window_dropped_all_modes", LOOSE, 7, {
		HS,
		{ TO_C, R, S(1 + 65535 + 1000000), 0, 0, -1, 0, DROP, DROP_TCP_RST_WINDOW, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1), S(1), 65535, -1, 10, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "rst_below_acked_dropped_strict", STRICT, 8, {
		HS,
		{ TO_S, A | P, C(1), S(1), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(101), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, R, C(1), 0, 0, -1, 0, DROP, DROP_TCP_RST_WINDOW, 0, SS_TCP_ESTABLISHED },
		{ TO_S, R, C(101), 0, 0, -1, 0, FWD, 0, 0, ST_GONE },
	}},
	{ "rst_in_window_not_exact_challenge_ack_then_exact", NORMAL, 9, {
		HS,
		{ TO_C, R, S(1 + 500), 0, 0, -1, 0, FWD, 0, TN_RST_IN_WINDOW, SS_TCP_ESTABLISHED },
		/* the client's challenge ACK, then the exact RST */
		{ TO_S, A, C(1), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, R, S(1), 0, 0, -1, 0, FWD, 0, 0, ST_GONE },
	}},
	{ "rst_ack_in_syn_sent_must_ack_the_syn", NORMAL, 10, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, R | A, 0, C(77), 0, -1, 0, DROP, DROP_TCP_RST_WINDOW, 0, SS_TCP_SYN_SENT },
		{ TO_C, R, 0, 0, 0, -1, 0, DROP, DROP_TCP_RST_WINDOW, 0, SS_TCP_SYN_SENT },
		{ TO_C, R | A, 0, C(1), 0, -1, 0, FWD, 0, 0, ST_GONE },
	}},
	{ "data_far_past_the_window_dropped_normal", NORMAL, 11, {
		HS,
		{ TO_S, A | P, C(1 + 65535 + 100000), S(1), 65535, -1, 10, DROP, DROP_TCP_WINDOW, 0, SS_TCP_ESTABLISHED },
	}},
	{ "ack_for_data_never_sent_dropped", NORMAL, 12, {
		HS,
		{ TO_S, A, C(1), S(90000), 65535, -1, 0, DROP, DROP_TCP_WINDOW, 0, SS_TCP_ESTABLISHED },
	}},
	{ "segment_starting_at_the_right_edge_passes", STRICT, 13, {
		HS,
		/* the right edge is C(1) + 65535: a segment may start there;
		 * past it, an overshoot of up to the receiver's max window
		 * passes (as Linux lets it), beyond that it is dropped */
		{ TO_S, A | P, C(1 + 65535), S(1), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1 + 65536), S(1), 65535, -1, 100, FWD, 0, TN_OVERSHOOT, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1 + 65535 + 70000), S(1), 65535, -1, 100, DROP, DROP_TCP_WINDOW, 0, SS_TCP_ESTABLISHED },
	}},
	{ "data_valid_after_the_window_slides", STRICT, 14, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1), 1000, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
		{ TO_S, A, C(1), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1001), S(1), 65535, -1, 500, FWD, 0, 0, SS_TCP_ESTABLISHED },
		/* 2000 bytes past the 1000-byte window (max window 1500 now):
		 * out; once the server acks and the window slides, data there
		 * is in */
		{ TO_S, A | P, C(3001), S(1), 65535, -1, 500, DROP, DROP_TCP_WINDOW, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(1501), 1000, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1501), S(1), 65535, -1, 500, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(2001), 1000, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(2501), S(1), 65535, -1, 500, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "window_scale_applies_when_both_syns_carry_it", STRICT, 15, {
		{ TO_S, Y, C(0), 0, 65535, 7, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1), 65535, 7, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
		{ TO_S, A, C(1), S(1), 1000, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		/* server window 1000 << 7 = 128000 */
		{ TO_C, A, S(1), C(1), 1000, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(100001), S(1), 1000, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1 + 128000 + 128000 + 10), S(1), 1000, -1, 100, DROP, DROP_TCP_WINDOW, 0, SS_TCP_ESTABLISHED },
	}},
	{ "window_scale_ignored_when_one_syn_lacks_it", STRICT, 16, {
		{ TO_S, Y, C(0), 0, 65535, 7, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
		{ TO_S, A, C(1), S(1), 1000, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(1), 1000, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		/* the server's window is 1000 bytes, unscaled; the SYN/ACK's
		 * 65535 still stands as the edge until acked */
		{ TO_S, A | P, C(1 + 65535 + 70000), S(1), 1000, -1, 100, DROP, DROP_TCP_WINDOW, 0, SS_TCP_ESTABLISHED },
	}},
	{ "retransmission_and_delayed_ack_pass_strict", STRICT, 17, {
		HS,
		{ TO_S, A | P, C(1), S(1), 65535, -1, 1000, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(1001), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1), S(1), 65535, -1, 1000, FWD, 0, 0, SS_TCP_ESTABLISHED },
		/* the old ACK, delayed */
		{ TO_C, A, S(1), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "reordered_segments_pass_strict", STRICT, 18, {
		HS,
		{ TO_S, A | P, C(1001), S(1), 65535, -1, 1000, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1), S(1), 65535, -1, 1000, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(2001), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "client_rebooted_syn_challenge_ack_rst_then_reconnect", NORMAL, 19, {
		HS,
		{ TO_S, Y, C(900000), 0, 65535, -1, 0, FWD, 0, TN_SYN_ON_OPEN, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, R, C(1), 0, 0, -1, 0, FWD, 0, 0, ST_GONE },
		{ TO_S, Y, C(900000), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
	}},
	{ "server_lost_state_synack_reopens", NORMAL, 20, {
		HS,
		{ TO_S, Y, C(900000), 0, 65535, -1, 0, FWD, 0, TN_SYN_ON_OPEN, SS_TCP_ESTABLISHED },
		{ TO_C, Y | A, S(40000), C(900001), 65535, -1, 0, FWD, 0, TN_REOPENED, SS_TCP_SYN_RECV },
		{ TO_S, A, C(900001), S(40001), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(900001), S(40001), 65535, -1, 10, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "synack_answering_nothing_on_open_session_strict_drops", STRICT, 21, {
		HS,
		{ TO_C, Y | A, S(40000), C(555), 65535, -1, 0, DROP, DROP_TCP_STATE, 0, SS_TCP_ESTABLISHED },
	}},
	{ "loose_pickup_is_tracked_liberally", LOOSE, 22, {
		{ TO_S, A | P, C(1), S(1), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A | P, S(1), C(101), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1 + 5000000), S(101), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "normal_refuses_pickup_syn_check_off_allows_it", NOSYN, 23, {
		{ TO_S, A | P, C(1), S(1), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "sequence_check_off_passes_anything_in_state", NOSEQ, 24, {
		HS,
		{ TO_S, A | P, C(1 + 5000000), S(1), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, R, S(1 + 5000000), 0, 0, -1, 0, FWD, 0, 0, ST_GONE },
	}},
	{ "keepalive_probes_and_answers_pass", STRICT, 25, {
		HS,
		{ TO_S, A | P, C(1), S(1), 65535, -1, 10, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(11), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		/* probe at snd_nxt - 1, empty and with one garbage byte */
		{ TO_S, A, C(10), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(11), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A, C(10), S(1), 65535, -1, 1, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A, S(1), C(11), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "zero_window_probe_passes", STRICT, 26, {
		HS,
		{ TO_C, A, S(1), C(1), 0, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1), S(1), 65535, -1, 1, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "half_close_then_data_from_the_open_side", NORMAL, 27, {
		HS,
		{ TO_S, F | A, C(1), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_WAIT },
		{ TO_C, A | P, S(1), C(2), 65535, -1, 100, FWD, 0, 0, SS_TCP_WAIT },
		{ TO_S, A | P, C(2), S(101), 65535, -1, 10, DROP, DROP_TCP_STATE, 0, SS_TCP_WAIT },
		{ TO_C, F | A, S(101), C(2), 65535, -1, 0, FWD, 0, 0, SS_TCP_TIME_WAIT },
	}},
	{ "time_wait_reuse_lower_isn_reopens", NORMAL, 28, {
		HS,
		{ TO_S, F | A, C(1), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_WAIT },
		{ TO_C, F | A, S(1), C(2), 65535, -1, 0, FWD, 0, 0, SS_TCP_TIME_WAIT },
		{ TO_S, Y, C(0) - 500000, 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
	}},
	{ "responder_syn_in_time_wait_reopens_as_a_new_flow", NORMAL, 31, {
		HS,
		{ TO_S, F | A, C(1), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_WAIT },
		{ TO_C, F | A, S(1), C(2), 65535, -1, 0, FWD, 0, 0, SS_TCP_TIME_WAIT },
		/* the old session ends; no rule lets the server open to the
		 * client, so the new flow is refused by the policy */
		{ TO_C, Y, S(90000), 0, 65535, -1, 0, DROP, DROP_NO_RULE, 0, ST_GONE },
	}},
	{ "second_synack_with_another_isn_does_not_replace_the_first", NORMAL, 32, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y | A, S(0), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
		{ TO_C, Y | A, S(5000000), C(1), 65535, -1, 0, FWD, 0, TN_IGNORED, SS_TCP_SYN_RECV },
		{ TO_S, A, C(1), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, A | P, S(1), C(1), 65535, -1, 100, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
	{ "fin_in_syn_sent_dropped", NORMAL, 29, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_S, F | A, C(1), 0, 65535, -1, 0, DROP, DROP_TCP_STATE, 0, SS_TCP_SYN_SENT },
	}},
	{ "simultaneous_open", NORMAL, 30, {
		{ TO_S, Y, C(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_SENT },
		{ TO_C, Y, S(0), 0, 65535, -1, 0, FWD, 0, 0, SS_TCP_SYN_RECV },
		{ TO_S, Y | A, C(0), S(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_C, Y | A, S(0), C(1), 65535, -1, 0, FWD, 0, 0, SS_TCP_ESTABLISHED },
		{ TO_S, A | P, C(1), S(1), 65535, -1, 10, FWD, 0, 0, SS_TCP_ESTABLISHED },
	}},
};

static void run_case(struct fx *f, const struct tcase *c)
{
	uint16_t cport = (uint16_t)(40000 + c->port), sport = 80;
	for (unsigned i = 0; i < MAX_STEPS; i++) {
		const struct step *s = &c->s[i];
		if (!s->flags)
			break;
		const char *src = s->dir == TO_S ? CLI : c->server;
		const char *dst = s->dir == TO_S ? c->server : CLI;
		size_t len = pb_tcp(f->buf, src, dst,
				    s->dir == TO_S ? cport : sport,
				    s->dir == TO_S ? sport : cport, s->flags,
				    s->seq, s->ack, s->win, s->wscale, s->len);
		pipeline_raw(&f->sh, f->buf, (uint32_t)len, 0, 0,
			     clock_now_ms(), &f->res);
		enum verdict want = s->verdict == FWD ? V_ACCEPT : V_DROP;
		if (f->res.verdict != want)
			fail_msg("%s step %u: verdict %s (drop %s), want %s",
				 c->name, i + 1, verdict_name(f->res.verdict),
				 drop_name(f->res.drop), verdict_name(want));
		if (s->verdict == DROP && s->why && f->res.drop != s->why)
			fail_msg("%s step %u: dropped as %s, want %s", c->name,
				 i + 1, drop_name(f->res.drop), drop_name(s->why));
		/* look the session up by key, whatever the verdict */
		struct sess_key k;
		unsigned side;
		uint8_t a[16] = {0}, b[16] = {0};
		inet_pton(AF_INET, CLI, a);
		inet_pton(AF_INET, c->server, b);
		uint8_t za = config_zone_of_addr(f->cfg, 4, a);
		uint8_t zb = config_zone_of_addr(f->cfg, 4, b);
		sess_key_make(&k, 4, 6, a, b, cport, sport, za, zb, &side);
		struct sess *ss = sess_table_lookup(f->sh.tab, &k, sess_key_hash(&k));
		if (s->verdict == FWD && s->note) {
			if (!ss && s->note != TN_NONE)
				fail_msg("%s step %u: no session for the note",
					 c->name, i + 1);
		}
		if (s->state == ST_GONE && ss)
			fail_msg("%s step %u: session still there (%s)", c->name,
				 i + 1, sess_state_name(ss->state));
		if (s->state != ST_ANY && s->state != ST_GONE) {
			if (!ss)
				fail_msg("%s step %u: no session, want %s",
					 c->name, i + 1,
					 sess_state_name(s->state));
			if (ss->state != s->state)
				fail_msg("%s step %u: state %s, want %s", c->name,
					 i + 1, sess_state_name(ss->state),
					 sess_state_name(s->state));
		}
	}
}

static void each_case_as_named(void **st)
{
	struct fx *f = *st;
	uint64_t notes[TN_MAX];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(notes, f->sh.st.tcp_note, sizeof(notes));
		run_case(f, &cases[i]);
		/* every note a case asks for was counted during it */
		for (unsigned j = 0; j < MAX_STEPS; j++) {
			enum track_note n = cases[i].s[j].note;
			if (cases[i].s[j].flags && n != TN_NONE &&
			    f->sh.st.tcp_note[n] == notes[n])
				fail_msg("%s step %u: note %s not counted",
					 cases[i].name, j + 1, track_note_name(n));
		}
	}
}

static enum verdict send1(struct fx *f, const char *src, const char *dst,
			  uint16_t sp, uint16_t dp, uint8_t flags, uint32_t seq,
			  uint32_t ack, uint16_t len)
{
	size_t n = pb_tcp(f->buf, src, dst, sp, dp, flags, seq, ack, 65535, -1, len);
	pipeline_raw(&f->sh, f->buf, (uint32_t)n, 0, 0, clock_now_ms(), &f->res);
	return f->res.verdict;
}

/* A session learned from a peer holds the active's window as of its last
 * update; after a takeover the stream has moved on. The first packet of
 * each side re-anchors it; an RST outside the replicated window is still
 * refused, and once anchored the window holds as before. */
static void peer_session_reanchors_after_takeover(void **st)
{
	struct fx *f = *st;
	uint16_t cp = 41001;
	assert_int_equal(send1(f, CLI, NORMAL, cp, 80, Y, C(0), 0, 0), V_ACCEPT);
	assert_int_equal(send1(f, NORMAL, CLI, 80, cp, Y | A, S(0), C(1), 0), V_ACCEPT);
	assert_int_equal(send1(f, CLI, NORMAL, cp, 80, A, C(1), S(1), 0), V_ACCEPT);
	struct sess *s = f->res.sess;
	assert_non_null(s);
	/* as jobs.c leaves a session a peer sent */
	s->flags |= SF_PEER;
	s->tflags |= STF_STALE0 | STF_STALE1;
	/* a blind RST, before any data: refused by the replicated window */
	assert_int_equal(send1(f, NORMAL, CLI, 80, cp, R, S(1 + 65535 + 1000000), 0, 0), V_DROP);
	assert_int_equal(f->res.drop, DROP_TCP_RST_WINDOW);
	/* 5 MB later in both directions (the replica lagged) */
	assert_int_equal(send1(f, CLI, NORMAL, cp, 80, A | P, C(5000001), S(7000001), 100), V_ACCEPT);
	assert_int_equal(send1(f, NORMAL, CLI, 80, cp, A | P, S(7000001), C(5000101), 100), V_ACCEPT);
	assert_int_equal(send1(f, CLI, NORMAL, cp, 80, A | P, C(5000101), S(7000101), 100), V_ACCEPT);
	assert_int_equal(s->tflags & (STF_STALE0 | STF_STALE1), 0);
	/* anchored: the window is enforced again */
	assert_int_equal(send1(f, CLI, NORMAL, cp, 80, A | P, C(5000201 + 1000000), S(7000101), 10), V_DROP);
	assert_int_equal(f->res.drop, DROP_TCP_WINDOW);
	assert_int_equal(send1(f, NORMAL, CLI, 80, cp, R, S(7000101 + 1000000), 0, 0), V_DROP);
	assert_int_equal(send1(f, NORMAL, CLI, 80, cp, R, S(7000101), 0, 0), V_ACCEPT);
	assert_null(sess_table_lookup(f->sh.tab, &s->key, sess_key_hash(&s->key)));
}

/* A SYN carrying MSS `mss` at option offset 20 (even) or 21 (odd: after a
 * NOP), with a correct checksum. */
static size_t syn_with_mss(uint8_t *b, const char *src, const char *dst,
			   uint16_t sp, uint8_t flags, uint16_t mss, bool odd)
{
	size_t n = pb_tcp(b, src, dst, sp, 80, flags, C(0), flags & A ? C(1) : 0,
			  65535, -1, 0);
	/* grow the header by 8 bytes of options */
	uint8_t *t = b + 20;
	uint8_t opt[8] = {1, 1, 1, 1, 1, 1, 1, 1};
	unsigned at = odd ? 1 : 0;
	opt[at] = 2;
	opt[at + 1] = 4;
	opt[at + 2] = (uint8_t)(mss >> 8);
	opt[at + 3] = (uint8_t)mss;
	memcpy(t + 20, opt, 8);
	t[12] = (uint8_t)(7 << 4);
	n += 8;
	put16(b + 2, (uint16_t)n);
	put16(b + 10, 0);
	put16(b + 10, csum_fold(csum_add(0, b, 20)));
	put16(t + 16, 0);
	put16(t + 16, l4_csum(4, b + 12, b + 16, 6, t, n - 20));
	return n;
}

/* tcp.mss: the SYN's and SYN/ACK's MSS is lowered with the checksum
 * still right, at an even or an odd option offset and from a partial
 * checksum; smaller ones stay; a rule's tcp.mss = 0 turns it off. */
static void mss_clamped_on_syn_and_synack(void **st)
{
	(void)st;
	struct tandem_config *c = NULL;
	struct policy *pol = NULL;
	struct connlimit *lim = NULL;
	char err[256];
	if (config_load_string("node = { name = \"t\"; id = 1; };\n"
		"zones = ( { name = \"in\"; networks = [\"10.1.0.0/16\"]; },"
		"          { name = \"out\"; networks = [\"10.2.0.0/16\"]; } );\n"
		"tcp = { mss = 1400; };\n"
		"rules = ( { name = \"off\"; destination = [\"10.2.0.9\"]; action = \"accept\"; tcp = { mss = 0; }; },\n"
		"          { name = \"r\"; action = \"accept\"; } );\n",
		&c, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	assert_int_equal(policy_compile(c, &pol, err, sizeof(err)), 0);
	assert_int_equal(connlimit_new(64, &lim), 0);
	struct node_ctx ctx;
	struct shard sh;
	node_ctx_init(&ctx, c, pol, lim, false);
	assert_int_equal(shard_init(&sh, 0, 64, &ctx, clock_now_ms()), 0);
	uint8_t b[256];
	struct pipeline_result res;
	struct pkt p;
	for (int odd = 0; odd < 2; odd++) {
		uint16_t sp = (uint16_t)(42000 + odd);
		size_t n = syn_with_mss(b, CLI, NORMAL, sp, Y, 1460, odd);
		assert_int_equal(pkt_parse(&p, b, (uint32_t)n), DROP_NONE);
		assert_true(l4_csum_ok(b, &p));
		pipeline_packet(&sh, &p, 0, 0, clock_now_ms(), &res);
		assert_int_equal(res.verdict, V_ACCEPT);
		assert_int_equal(res.mss_clamp, 1400);
		mss_rewrite(b, &p, res.mss_clamp, false);
		assert_int_equal(pkt_parse(&p, b, (uint32_t)n), DROP_NONE);
		assert_true(l4_csum_ok(b, &p));
		assert_int_equal(mss_over(&p, 1400), 0);
		const uint8_t *o = b + p.l4_off + p.tcp_mss_opt;
		assert_int_equal(o[2] << 8 | o[3], 1400);
	}
	/* the SYN/ACK too, from a partial checksum (only the pseudo-header) */
	size_t n = syn_with_mss(b, NORMAL, CLI, 80, Y | A, 9000, false);
	put16(b + 2, (uint16_t)n);
	/* swap ports: reply of 42000 */
	put16(b + 20, 80);
	put16(b + 22, 42000);
	put32(b + 24, S(0));
	put32(b + 28, C(1));
	put16(b + 36, 0x1234); /* garbage: the device would fill it */
	assert_int_equal(pkt_parse(&p, b, (uint32_t)n), DROP_NONE);
	pipeline_packet(&sh, &p, 0, 0, clock_now_ms(), &res);
	assert_int_equal(res.verdict, V_ACCEPT);
	assert_int_equal(res.mss_clamp, 1400);
	mss_rewrite(b, &p, res.mss_clamp, true);
	assert_int_equal(pkt_parse(&p, b, (uint32_t)n), DROP_NONE);
	assert_true(l4_csum_ok(b, &p));
	/* an MSS under the clamp is left alone; a rule can turn it off */
	n = syn_with_mss(b, CLI, NORMAL, 42005, Y, 1200, false);
	assert_int_equal(pkt_parse(&p, b, (uint32_t)n), DROP_NONE);
	pipeline_packet(&sh, &p, 0, 0, clock_now_ms(), &res);
	assert_int_equal(res.mss_clamp, 0);
	n = syn_with_mss(b, CLI, "10.2.0.9", 42006, Y, 1460, false);
	assert_int_equal(pkt_parse(&p, b, (uint32_t)n), DROP_NONE);
	pipeline_packet(&sh, &p, 0, 0, clock_now_ms(), &res);
	assert_int_equal(res.verdict, V_ACCEPT);
	assert_int_equal(res.mss_clamp, 0);
	assert_int_equal(sh.st.mss_clamped, 3);
	/* a damaged checksum is seen as such */
	b[40] ^= 0x55;
	assert_int_equal(pkt_parse(&p, b, (uint32_t)n), DROP_NONE);
	assert_false(l4_csum_ok(b, &p));
	shard_fini(&sh);
	connlimit_free(lim);
	policy_free(pol);
	config_free(c);
}

/* A reply without a request answers nothing in normal mode (Linux too);
 * loose takes it. */
static void icmp_reply_without_request_refused_in_normal(void **st)
{
	struct fx *f = *st;
	size_t len = pb_echo(f->buf, CLI, NORMAL, 1 /* reply */, 99, 1);
	pipeline_raw(&f->sh, f->buf, (uint32_t)len, 0, 0, clock_now_ms(), &f->res);
	assert_int_equal(f->res.verdict, V_DROP);
	assert_int_equal(f->res.drop, DROP_ICMP_NO_REQUEST);
	len = pb_echo(f->buf, CLI, LOOSE, 1, 99, 1);
	pipeline_raw(&f->sh, f->buf, (uint32_t)len, 0, 0, clock_now_ms(), &f->res);
	assert_int_equal(f->res.verdict, V_ACCEPT);
}

/* The switches: per node, per rule. */
#define ZONES "node = { name = \"t\"; id = 1; };\n" \
	"zones = ( { name = \"a\"; networks = [\"10.1.0.0/16\"]; } );\n"
static void config_tcp_switches(void **st)
{
	(void)st;
	struct tandem_config *c = NULL;
	char err[256];
	if (config_load_string(ZONES
		"tcp = { syn_check = false; sequence_check = false; mss = 1400; checksum_verify = true; };\n"
		"rules = ( { name = \"r\"; action = \"accept\"; tcp = { syn_check = true; mss = 0; }; } );\n",
		&c, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	assert_false(c->syn_check);
	assert_false(c->sequence_check);
	assert_int_equal(c->mss, 1400);
	assert_true(c->checksum_verify);
	assert_int_equal(c->rules[0].syn_check, 2);
	assert_int_equal(c->rules[0].sequence_check, 0);
	assert_int_equal(c->rules[0].mss, CFG_MSS_OFF);
	config_free(c);
	assert_int_equal(config_load_string(ZONES
		"tcp = { mss = 20; };\n", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tcp.mss"));
	assert_int_equal(config_load_string(ZONES
		"rules = ( { name = \"r\"; action = \"accept\"; tcp = { window = 1; }; } );\n",
		&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tcp.window: unknown setting"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(each_case_as_named, setup, teardown),
		cmocka_unit_test_setup_teardown(icmp_reply_without_request_refused_in_normal,
						setup, teardown),
		cmocka_unit_test_setup_teardown(peer_session_reanchors_after_takeover,
						setup, teardown),
		cmocka_unit_test(config_tcp_switches),
		cmocka_unit_test(mss_clamped_on_syn_and_synack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
