#!/usr/bin/python3
"""test_tcp_vs_conntrack.py - Tandem's TCP tracker side by side with Linux
conntrack (lab prefix tdm-tcpd-).

Every scenario below is a named list of crafted packets (direction, flags,
sequence and acknowledgement numbers relative to ISNs the scenario picks,
window, options, payload length). Each is sent packet by packet from the
client or server host through the firewall namespace and a receiver on the
far side notes whether the packet came out: a pattern like "11101" per
scenario. The same scenarios run four times:

  kernel   nftables in the firewall: forward chain `ct state invalid drop;
           accept` (nf_conntrack_tcp_loose = 1, be_liberal = 0)
  loose    tandem-node with one accept rule for tcp, tracking = "loose"
  normal   the same with tracking = "normal"
  strict   the same with tracking = "strict"

Tandem's pattern must equal the kernel's unless the difference is listed in
the table "## Differences from Linux conntrack" of docs/tcp-tracking.md
(scenario | mode(s) | kernel | tandem | why). An unlisted difference fails
the test; a listed one that no longer occurs is printed as a warning. The
closing table shows every scenario's patterns and ok / listed / DIFF.

Method: one scapy process in the client host holds a packet socket on the
client's eth0 and one on the server's eth0 (opened there with setns): it
sends each frame with the MACs of the path and waits, bounded, for it on
the far side, matched by IP id and ports, before the next packet goes. A
frame that turns up after its wait ran out makes the scenario run again on
fresh ports with a longer wait. The end hosts' kernels never see the
crafted packets (an nft input chain in each host drops the scenario port
range and ICMP errors), so they answer nothing; the same sockets see every
frame a host sends, and any frame of the port range that is not ours fails
the run (a control SYN outside the range shows the observer sees such
answers).

Environment:
  TCPDIFF_REPORT=1  print the table (and the packets of each difference),
                    never fail on a difference: for work on the tracker
  TCPDIFF_ONLY=S    only scenarios whose name contains S
  TCPDIFF_WAIT=SEC  wait for a packet on the far side [0.05]

Must never: touch namespaces outside its lab, leave a table or a process
behind (host and firewall tables are deleted in `finally`, processes by the
harness), or wait without a bound.

Run (root): /usr/bin/python3 tests/lab/test_tcp_vs_conntrack.py
"""
import atexit
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labtest  # noqa: E402
from labtest import Lab, Node, TestFailure, check, config, run_tests  # noqa: E402

REPORT = os.environ.get("TCPDIFF_REPORT", "") not in ("", "0")
ONLY = os.environ.get("TCPDIFF_ONLY", "")
WAIT = float(os.environ.get("TCPDIFF_WAIT", "0.05"))
DOC = os.path.join(labtest.SRC, "docs", "tcp-tracking.md")
SECTION = "## Differences from Linux conntrack"

CLIENT = "10.1.0.2"
SERVER = "10.2.0.10"
ROUTER_S = "10.2.0.99"  # a router on the server side (exists nowhere): ICMP errors
ROUTER_C = "10.1.0.99"  # the same on the client side
MAC = {  # sender -> (own MAC, the firewall's MAC on that segment); deploy/lab.sh
    "c": ("02:74:64:01:02:00", "02:74:64:01:01:00"),
    "s": ("02:74:64:02:10:00", "02:74:64:02:01:00"),
}
PORT_LO, PORT_HI = 20000, 40000  # every scenario port; the hosts drop these
RUNS = ["kernel", "loose", "normal", "strict"]
MODES = RUNS[1:]
W = 65535  # default window (unscaled)

RULE = ' { name = "tcpd"; service = "tcp"; action = "accept"; tracking = "%s"; }'

RESULTS = {}  # run -> {scenario: pattern}
RUNINFO = {}  # run -> text for the report (node drop counters, sysctls)

TMP = tempfile.mkdtemp(prefix="tdm-tcpd-")
atexit.register(shutil.rmtree, TMP, True)


# ---- scenarios ------------------------------------------------------------
#
# c(...) / s(...): a segment from the client / the server. seq is relative
# to the sender's ISN, ack to the receiver's (both 0-based: the SYN has seq
# 0, the first data byte seq 1). base / abase name another ISN of the
# scenario ("c2", "s2") for seq / ack; seq_abs / ack_abs give raw numbers.
# n = payload bytes; ws = window scale option (SYNs only); win = window
# field as sent (scaled by the receiver when scaling is on).

def seg(d, flags, seq=0, ack=None, n=0, win=W, ws=None, base=None, abase=None,
        seq_abs=None, ack_abs=None):
    return dict(kind="tcp", d=d, flags=flags, seq=seq, ack=ack, n=n, win=win, ws=ws,
                base=base, abase=abase, seq_abs=seq_abs, ack_abs=ack_abs)


def c(flags, seq=0, ack=None, **kw):
    return seg("c", flags, seq, ack, **kw)


def s(flags, seq=0, ack=None, **kw):
    return seg("s", flags, seq, ack, **kw)


def icmp(d, typ, code, quote, mtu=0):
    """An ICMP error sent from side d's router, quoting segment `quote`
    (which travels the other way)."""
    return dict(kind="icmp", d=d, type=typ, code=code, quote=quote, mtu=mtu)


def hs(cws=None, sws=None, cwin=W, swin=W):
    return [c("S", 0, win=cwin, ws=cws), s("SA", 0, 1, win=swin, ws=sws), c("A", 1, 1)]


def est():
    """Handshake, 100 bytes from the client, acked: client next 101, server next 1."""
    return hs() + [c("PA", 1, 1, n=100), s("A", 1, 101)]


def fin_close():
    return est() + [c("FA", 101, 1), s("FA", 1, 102), c("A", 102, 2)]


def hs_ws(cws=7, sws=7):
    """Handshake with window scale: the SYN/ACK's window (never scaled) is
    1000, then the server's ACK says 20 (<< 7 = 2560 when scaling is on)."""
    return hs(cws=cws, sws=sws, swin=1000) + [s("A", 1, 1, win=20)]


def hs_small(swin):
    return hs(swin=swin)


def midstream():
    return [c("PA", 5000, 7000, n=100), s("A", 7000, 5100), s("PA", 7000, 5100, n=200),
            c("A", 5100, 7200)]


def scn(name, pkts, isn=None, what=""):
    return dict(name=name, pkts=pkts, isn=isn or {}, what=what)


def scenarios():
    L = []
    # -- handshakes
    L.append(scn("hs_normal", hs() + [c("PA", 1, 1, n=100), s("A", 1, 101),
                                       s("PA", 1, 101, n=200), c("A", 101, 201)]))
    L.append(scn("hs_syn_retransmit", [c("S", 0), c("S", 0), s("SA", 0, 1), c("A", 1, 1),
                                       c("PA", 1, 1, n=10)]))
    L.append(scn("hs_syn_retransmit_new_isn",
                 [c("S", 0), c("S", 0, base="c2"), s("SA", 0, 1, abase="c2"),
                  c("A", 1, 1, base="c2"), c("PA", 1, 1, n=10, base="c2")],
                 isn={"c2": ("c", 70000)}))
    L.append(scn("hs_synack_retransmit", [c("S", 0), s("SA", 0, 1), s("SA", 0, 1), c("A", 1, 1),
                                          c("PA", 1, 1, n=10)]))
    L.append(scn("hs_synack_retransmit_new_isn",
                 [c("S", 0), s("SA", 0, 1), s("SA", 0, 1, base="s2"), c("A", 1, 1, abase="s2"),
                  c("PA", 1, 1, n=10, abase="s2"), s("A", 1, 11, base="s2")],
                 isn={"s2": ("s", 90000)}))
    L.append(scn("hs_synack_new_isn_first_acked",
                 [c("S", 0), s("SA", 0, 1), s("SA", 0, 1, base="s2"), c("A", 1, 1),
                  c("PA", 1, 1, n=10), s("A", 1, 11)],
                 isn={"s2": ("s", 90000)},
                 what="a second SYN/ACK with another ISN; the client answers the first"))
    L.append(scn("hs_final_ack_lost",
                 hs() + [c("PA", 1, 1, n=10), s("SA", 0, 1), c("A", 11, 1), s("A", 1, 11)],
                 what="the server did not get the final ACK: it sends its SYN/ACK again"))
    L.append(scn("hs_simultaneous_open",
                 [c("S", 0), s("S", 0), s("SA", 0, 1), c("SA", 0, 1), c("A", 1, 1), s("A", 1, 1),
                  c("PA", 1, 1, n=10), s("PA", 1, 11, n=10)]))
    L.append(scn("hs_synack_wrong_ack", [c("S", 0), s("SA", 0, 1000), s("SA", 0, 1), c("A", 1, 1),
                                         c("PA", 1, 1, n=10)],
                 what="a SYN/ACK acking ISN+1000, then the right one"))
    L.append(scn("hs_data_before_synack", [c("S", 0), c("PA", 1, 0, n=100), s("SA", 0, 1),
                                           c("A", 1, 1), c("PA", 1, 1, n=100)]))
    L.append(scn("hs_data_on_final_ack", [c("S", 0), s("SA", 0, 1), c("PA", 1, 1, n=100),
                                          s("A", 1, 101), c("PA", 101, 1, n=50)]))
    L.append(scn("hs_synack_first", [s("SA", 0, 1), c("A", 1, 1), c("PA", 1, 1, n=10)],
                 what="a SYN/ACK nobody asked for, then the client's ACK and data"))
    L.append(scn("hs_final_ack_wrong", [c("S", 0), s("SA", 0, 1), c("A", 1, 1000), c("A", 1, 1),
                                        c("PA", 1, 1, n=10)]))
    L.append(scn("hs_server_data_early", [c("S", 0), s("SA", 0, 1), s("PA", 1, 1, n=100),
                                          c("A", 1, 101)],
                 what="server data before the client's final ACK"))
    # -- RST
    L.append(scn("rst_exact_client", est() + [c("R", 101)]))
    L.append(scn("rst_exact_server", est() + [s("R", 1)]))
    L.append(scn("rst_ack_exact_server", est() + [s("RA", 1, 101)]))
    L.append(scn("rst_in_window_challenge",
                 est() + [c("R", 1101), s("A", 1, 101), c("R", 101)],
                 what="in-window RST (not exact), the peer's challenge ACK, the exact RST"))
    L.append(scn("rst_in_window_challenge_server",
                 est() + [s("R", 1001), c("A", 101, 1), s("R", 1)]))
    L.append(scn("rst_in_window_then_data",
                 est() + [c("R", 1101), c("PA", 101, 1, n=10), s("PA", 1, 111, n=10)],
                 what="in-window RST (not exact), then data both ways"))
    L.append(scn("rst_far_out_of_window", est() + [c("R", 101 + 1000000), c("PA", 101, 1, n=10)]))
    L.append(scn("rst_below_rcv_ack", est() + [c("R", 51), c("PA", 101, 1, n=10)],
                 what="RST with seq below what the receiver acked"))
    L.append(scn("rst_synsent_ack_right", [c("S", 0), s("RA", seq_abs=0, ack=1), c("S", 0, base="c2")],
                 isn={"c2": ("c", 5000)}))
    L.append(scn("rst_synsent_ack_wrong", [c("S", 0), s("RA", seq_abs=0, ack=1000), s("SA", 0, 1),
                                           c("A", 1, 1), c("PA", 1, 1, n=10)]))
    L.append(scn("rst_synrecv_client", [c("S", 0), s("SA", 0, 1), c("R", 1), c("S", 0, base="c2"),
                                        s("SA", 0, 1, base="s2", abase="c2"),
                                        c("A", 1, 1, base="c2", abase="s2")],
                 isn={"c2": ("c", 5000), "s2": ("s", 777777)}))
    L.append(scn("rst_then_data", est() + [c("R", 101), c("PA", 101, 1, n=10), s("PA", 1, 101, n=10)]))
    # -- windows, no scaling
    L.append(scn("win_seg_at_right_edge",
                 hs_small(3000) + [c("PA", 1, 1, n=1000), c("PA", 1001, 1, n=1000),
                                   c("PA", 2001, 1, n=1000), c("PA", 3001, 1, n=100)],
                 what="window 3000: the last segment starts exactly at the right edge"))
    L.append(scn("win_overshoot_within_maxwin",
                 hs_small(3000) + [c("PA", 1, 1, n=1000), c("PA", 1001, 1, n=1000),
                                   c("PA", 2001, 1, n=1400)],
                 what="window 3000: the last segment ends 400 past the right edge"))
    L.append(scn("win_seg_past_right_edge",
                 hs_small(3000) + [c("PA", 1, 1, n=1000), c("PA", 1001, 1, n=1000),
                                   c("PA", 2001, 1, n=1100), c("PA", 3101, 1, n=100)],
                 what="window 3000: contiguous, the last segment starts 100 past the edge"))
    L.append(scn("win_start_past_edge_gap",
                 hs_small(3000) + [c("PA", 1, 1, n=1000), c("PA", 4001, 1, n=100)],
                 what="window 3000: a segment 1000 past the edge, within max window"))
    L.append(scn("win_data_100k_past", est() + [c("PA", 101 + W + 100000, 1, n=100),
                                                c("PA", 101, 1, n=10)]))
    L.append(scn("win_data_100k_past_server", est() + [s("PA", 1 + W + 100000, 101, n=100),
                                                       s("PA", 1, 101, n=10)]))
    L.append(scn("win_ack_never_sent", est() + [c("A", 101, 5001), c("PA", 101, 1, n=10)]))
    L.append(scn("win_slide_then_data",
                 hs_small(2000) + [c("PA", 1, 1, n=1000), c("PA", 1001, 1, n=1200),
                                   c("PA", 2201, 1, n=300), s("A", 1, 2201, win=2000),
                                   c("PA", 2201, 1, n=300), c("PA", 2501, 1, n=500)],
                 what="window 2000: past the edge until the ACK slides it, then valid"))
    L.append(scn("zero_window_probe_new_byte",
                 hs() + [c("PA", 1, 1, n=1000), s("A", 1, 1001, win=0), c("PA", 1001, 1, n=1),
                         s("A", 1, 1001, win=0), s("A", 1, 1001), c("PA", 1001, 1, n=100)]))
    L.append(scn("zero_window_probe_old_seq",
                 hs() + [c("PA", 1, 1, n=1000), s("A", 1, 1001, win=0), c("A", 1000, 1),
                         s("A", 1, 1001, win=0), s("A", 1, 1001), c("PA", 1001, 1, n=100)]))
    L.append(scn("zero_window_data", hs() + [c("PA", 1, 1, n=1000), s("A", 1, 1001, win=0),
                                             c("PA", 1001, 1, n=500)],
                 what="data into a zero window (inside the window offered before)"))
    # -- window scaling
    L.append(scn("ws_data_in_scaled_window",
                 hs_ws() + [c("PA", 1, 1, n=900), c("PA", 901, 1, n=900), c("PA", 1801, 1, n=500)],
                 what="scale 7 both: window 20 << 7 = 2560; the last starts past 1000"))
    L.append(scn("ws_past_scaled_edge",
                 hs_ws() + [c("PA", 1, 1, n=900), c("PA", 901, 1, n=900), c("PA", 1801, 1, n=900),
                            c("PA", 2701, 1, n=100)],
                 what="scale 7 both: the last segment starts 140 past the scaled edge 2561"))
    L.append(scn("ws_one_sided",
                 hs_ws(cws=7, sws=None) + [c("PA", 1, 1, n=900), c("PA", 901, 1, n=900),
                                           c("PA", 1801, 1, n=500)],
                 what="only the SYN has the option: no scaling, window 20"))
    L.append(scn("ws_server_only",
                 hs_ws(cws=None, sws=7) + [c("PA", 1, 1, n=900), c("PA", 901, 1, n=900),
                                           c("PA", 1801, 1, n=500)]))
    L.append(scn("ws_far_within_scaled_window",
                 hs(cws=7, sws=7) + [s("A", 1, 1, win=1000), c("PA", 1 + 100000, 1, n=100),
                                     c("PA", 1, 1, n=100)],
                 what="window 1000 << 7 = 128000: data 100000 ahead (a gap)"))
    # -- keepalive
    L.append(scn("keepalive_probe_0byte", est() + [c("A", 100, 1), s("A", 1, 101),
                                                   c("PA", 101, 1, n=10)]))
    L.append(scn("keepalive_probe_1byte", est() + [c("A", 100, 1, n=1), s("A", 1, 101),
                                                   c("PA", 101, 1, n=10)]))
    L.append(scn("keepalive_probe_server", est() + [s("A", 0, 101), c("A", 101, 1),
                                                    s("PA", 1, 101, n=10)]))
    # -- mid-stream pickup
    L.append(scn("midstream_client", midstream()))
    L.append(scn("midstream_server", [s("PA", 7000, 5000, n=100), c("A", 5000, 7100),
                                      c("PA", 5000, 7100, n=200), s("A", 7100, 5200)]))
    L.append(scn("midstream_far_segment", midstream() + [c("PA", 5100 + 1000000, 7200, n=100),
                                                         c("PA", 5100, 7200, n=10)]))
    L.append(scn("midstream_fin_first", [c("FA", 5000, 7000), s("FA", 7000, 5001), c("A", 5001, 7001)]))
    L.append(scn("midstream_rst_first", [c("R", 5000), c("PA", 5000, 7000, n=10)]))
    # -- retransmission, reordering, old ACKs
    L.append(scn("retrans_old_data", est() + [c("PA", 1, 1, n=100), s("A", 1, 101),
                                              c("PA", 101, 1, n=10)]))
    L.append(scn("retrans_partial_overlap", est() + [c("PA", 51, 1, n=100), s("A", 1, 151)]))
    L.append(scn("retrans_ancient", est() + [c("PA", 101 - 200000, 1, n=100), c("PA", 101, 1, n=10)],
                 what="data 200000 before what was acked (below one window)"))
    L.append(scn("ack_delayed_old", est() + [s("PA", 1, 101, n=1000), c("A", 101, 1001), c("A", 101, 1),
                                             c("PA", 101, 1001, n=10)]))
    L.append(scn("ack_ancient", est() + [c("A", 101, 1 - 200000), c("PA", 101, 1, n=10)]))
    L.append(scn("reorder_segments", est() + [c("PA", 201, 1, n=100), c("PA", 101, 1, n=100),
                                              s("A", 1, 301), c("PA", 301, 1, n=10)]))
    L.append(scn("reorder_server", est() + [s("PA", 101, 101, n=100), s("PA", 1, 101, n=100),
                                            c("A", 101, 201)]))
    # -- half-close and FIN
    L.append(scn("half_close_client", est() + [c("FA", 101, 1), s("A", 1, 102), s("PA", 1, 102, n=100),
                                               c("A", 102, 101), s("FA", 101, 102), c("A", 102, 102)]))
    L.append(scn("half_close_server", est() + [s("FA", 1, 101), c("A", 101, 2), c("PA", 101, 2, n=100),
                                               s("A", 2, 201), c("FA", 201, 2), s("A", 2, 202)]))
    L.append(scn("data_after_own_fin", est() + [c("FA", 101, 1), s("A", 1, 102), c("PA", 102, 1, n=10)]))
    L.append(scn("fin_normal_close", fin_close()))
    L.append(scn("fin_retransmit", est() + [c("FA", 101, 1), c("FA", 101, 1), s("A", 1, 102),
                                            s("FA", 1, 102), s("FA", 1, 102), c("A", 102, 2)]))
    L.append(scn("fin_simultaneous", est() + [c("FA", 101, 1), s("FA", 1, 101), c("A", 102, 2),
                                              s("A", 2, 102)]))
    L.append(scn("fin_with_data", est() + [c("FPA", 101, 1, n=50), s("FA", 1, 152), c("A", 152, 2)]))
    L.append(scn("data_after_close", fin_close() + [c("PA", 102, 2, n=10)]))
    L.append(scn("last_ack_retransmit", fin_close() + [s("FA", 1, 102), c("A", 102, 2)]))
    # -- TIME_WAIT reuse
    reuse = [c("S", 0, base="c2"), s("SA", 0, 1, base="s2", abase="c2"),
             c("A", 1, 1, base="c2", abase="s2"), c("PA", 1, 1, n=10, base="c2", abase="s2")]
    L.append(scn("tw_reuse_higher_isn", fin_close() + reuse,
                 isn={"c2": ("c", 100000), "s2": ("s", 333333)}))
    L.append(scn("tw_reuse_lower_isn", fin_close() + reuse,
                 isn={"c2": ("c", -100000), "s2": ("s", 333333)}))
    L.append(scn("tw_reuse_reverse", fin_close() + [s("S", 0, base="s2"), c("SA", 0, 1, base="c2", abase="s2"),
                                                    s("A", 1, 1, base="s2", abase="c2")],
                 isn={"c2": ("c", 100000), "s2": ("s", 333333)},
                 what="after TIME_WAIT the server opens the same ports towards the client"))
    # -- SYN on an established session
    L.append(scn("syn_established_challenge",
                 est() + [c("S", 0, base="c2"), s("A", 1, 101), c("R", 101), c("S", 0, base="c2"),
                          s("SA", 0, 1, base="s2", abase="c2"), c("A", 1, 1, base="c2", abase="s2")],
                 isn={"c2": ("c", 500000), "s2": ("s", 444444)},
                 what="new SYN, the server's challenge ACK, the client's RST to it, SYN again"))
    L.append(scn("syn_established_lost_state",
                 est() + [c("S", 0, base="c2"), s("SA", 0, 1, base="s2", abase="c2"),
                          c("A", 1, 1, base="c2", abase="s2"), c("PA", 1, 1, n=10, base="c2", abase="s2")],
                 isn={"c2": ("c", 500000), "s2": ("s", 444444)},
                 what="new SYN answered by a server that lost the old connection"))
    L.append(scn("synack_established_stray", est() + [s("SA", 0, 101), c("A", 101, 1), c("PA", 101, 1, n=10)]))
    # -- bad flag combinations
    L.append(scn("flags_syn_fin", est() + [c("SF", 101), c("PA", 101, 1, n=10)]))
    L.append(scn("flags_null", est() + [c("", 101), c("PA", 101, 1, n=10)]))
    L.append(scn("flags_fin_no_ack", est() + [c("F", 101), c("PA", 101, 1, n=10)]))
    L.append(scn("flags_xmas", est() + [c("FPU", 101), c("PA", 101, 1, n=10)]))
    L.append(scn("flags_syn_rst", est() + [c("SR", 101), c("PA", 101, 1, n=10)]))
    L.append(scn("flags_syn_fin_first", [c("SF", 0)]))
    L.append(scn("flags_null_first", [c("", 0)]))
    L.append(scn("flags_ecn_syn", [c("SEC", 0), s("SAE", 0, 1), c("A", 1, 1), c("PA", 1, 1, n=10)]))
    L.append(scn("flags_ack_urg", est() + [c("AU", 101, 1, n=10)]))
    # -- ICMP errors quoting the session
    L.append(scn("icmp_unreach_in_window", est() + [icmp("s", 3, 1, c("A", 101, 1)), c("PA", 101, 1, n=10)]))
    L.append(scn("icmp_unreach_out_of_window",
                 est() + [icmp("s", 3, 1, c("A", 101 + 10000000, 1)), c("PA", 101, 1, n=10)]))
    L.append(scn("icmp_frag_needed", est() + [icmp("s", 3, 4, c("A", 101, 1), mtu=1280), c("PA", 101, 1, n=10)]))
    L.append(scn("icmp_unreach_client_side", est() + [icmp("c", 3, 1, s("A", 1, 101)), s("PA", 1, 101, n=10)]))
    L.append(scn("icmp_no_session", [icmp("s", 3, 1, c("A", 1, 1))]))
    # -- sequence space wrap
    L.append(scn("seq_wrap_client", est() + [c("PA", 101, 1, n=100), s("A", 1, 201)],
                 isn={"c": 2**32 - 50}))
    L.append(scn("seq_wrap_server", est() + [s("PA", 1, 101, n=100), c("A", 101, 101)],
                 isn={"s": 2**32 - 10}))
    return L


def describe(p):
    if p["kind"] == "icmp":
        q = p["quote"]
        return (f"{'s>c' if p['d'] == 's' else 'c>s'} ICMP {p['type']}/{p['code']} quoting "
                f"{'c>s' if q['d'] == 'c' else 's>c'} {q['flags']} seq=+{q['seq']}")
    t = f"{'c>s' if p['d'] == 'c' else 's>c'} {p['flags'] or 'none':4} "
    t += f"seq={p['seq_abs']}" if p["seq_abs"] is not None else f"seq={p['base'] or p['d']}+{p['seq']}"
    if "A" in p["flags"]:
        other = "s" if p["d"] == "c" else "c"
        t += f" ack={p['abase'] or other}+{p['ack']}"
    t += f" win={p['win']}"
    if p["ws"] is not None:
        t += f" ws={p['ws']}"
    if p["n"]:
        t += f" len={p['n']}"
    return t


def concrete(sc, idx, run, attempt, ipid_start):
    """The scenario's packets as the driver sends them; returns (pkts, next ipid)."""
    cport = PORT_LO + run * 2500 + attempt * 250 + idx
    sport = cport + 10000
    isn = {"c": (0x3A000000 + idx * 0x01010101) & 0xFFFFFFFF,
           "s": (0xB4000000 + idx * 0x02030405) & 0xFFFFFFFF}
    for k, v in sc["isn"].items():
        if isinstance(v, tuple):
            continue
        isn[k] = v
    for k, v in sc["isn"].items():
        if isinstance(v, tuple):
            isn[k] = (isn[v[0]] + v[1]) & 0xFFFFFFFF
    addr = {"c": (CLIENT, cport), "s": (SERVER, sport)}
    ipid = ipid_start

    def tcp_fields(p):
        other = "s" if p["d"] == "c" else "c"
        if p["seq_abs"] is not None:
            seq = p["seq_abs"]
        else:
            seq = isn[p["base"] or p["d"]] + p["seq"]
        if p["ack_abs"] is not None:
            ack = p["ack_abs"]
        elif p["ack"] is not None:
            ack = isn[p["abase"] or other] + p["ack"]
        else:
            ack = 0
        (src, sp), (dst, dp) = addr[p["d"]], addr[other]
        opts = []
        if "S" in p["flags"]:
            opts.append(["MSS", 1460])
            if p["ws"] is not None:
                opts += [["NOP", None], ["WScale", p["ws"]]]
        return dict(src=src, dst=dst, sport=sp, dport=dp, flags=p["flags"], seq=seq & 0xFFFFFFFF,
                    ack=ack & 0xFFFFFFFF, win=p["win"], opts=opts, n=p["n"])

    out = []
    for p in sc["pkts"]:
        ipid = ipid % 65535 + 1
        if p["kind"] == "tcp":
            f = tcp_fields(p)
            f.update(kind="tcp", d=p["d"], ipid=ipid, key=["t", ipid, f["sport"], f["dport"]])
        else:
            q = tcp_fields(p["quote"])
            router = ROUTER_S if p["d"] == "s" else ROUTER_C
            f = dict(kind="icmp", d=p["d"], ipid=ipid, src=router, dst=addr[p["quote"]["d"]][0],
                     type=p["type"], code=p["code"], mtu=p["mtu"], quote=q,
                     key=["i", ipid, q["sport"], q["dport"]])
        out.append(f)
    return out, ipid


# ---- the driver (runs in the client host, scapy) --------------------------

DRIVER = r'''
import ctypes, select, struct
from scapy.all import Ether, IP, TCP, ICMP, Raw, raw, conf
conf.verb = 0
_libc = ctypes.CDLL(None, use_errno=True)

def _setns(fd):
    if _libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))

def _open_eth0():
    k = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
    k.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)  # SO_RCVBUFFORCE
    k.bind(("eth0", 3))
    k.setblocking(False)
    return k

def _open_in(path):
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    other = os.open(path, os.O_RDONLY)
    try:
        _setns(other)
        try:
            return _open_eth0()
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(other)

SOCKS = {"c": _open_eth0(), "s": _open_in(SRV_NETNS)}

def _tcp(f):
    l4 = TCP(sport=f["sport"], dport=f["dport"], flags=f["flags"], seq=f["seq"], ack=f["ack"],
             window=f["win"], options=[tuple(o) for o in f["opts"]])
    if f["n"]:
        l4 = l4 / Raw(b"\x55" * f["n"])
    return IP(src=f["src"], dst=f["dst"], ttl=64) / l4

def build(p):
    mac = MAC[p["d"]]
    if p["kind"] == "tcp":
        l3 = _tcp(p)
        l3.id = p["ipid"]
    else:
        q = _tcp(p["quote"])
        q.id = 4242
        if p["code"] == 4:
            ic = ICMP(type=p["type"], code=p["code"], nexthopmtu=p["mtu"])
        else:
            ic = ICMP(type=p["type"], code=p["code"])
        l3 = IP(src=p["src"], dst=p["dst"], id=p["ipid"], ttl=64) / ic / raw(q)[:40]
    return raw(Ether(src=mac[0], dst=mac[1]) / l3)

def _key(fr):
    if len(fr) < 38 or fr[12] != 8 or fr[13] != 0:
        return None
    ihl = (fr[14] & 15) * 4
    ipid = (fr[18] << 8) | fr[19]
    l4 = 14 + ihl
    if fr[23] == 6 and len(fr) >= l4 + 4:
        sp, dp = struct.unpack("!HH", fr[l4:l4 + 4])
        k = ("t", ipid, sp, dp)
    elif fr[23] == 1 and len(fr) >= l4 + 8 + 24 and fr[l4] in (3, 11, 12):
        q = l4 + 8
        qi = (fr[q] & 15) * 4
        if fr[q + 9] != 6 or len(fr) < q + qi + 4:
            return None
        sp, dp = struct.unpack("!HH", fr[q + qi:q + qi + 4])
        k = ("i", ipid, sp, dp)
    else:
        return None
    if PORT_LO <= sp < PORT_HI or PORT_LO <= dp < PORT_HI:
        return k
    return None

def _drain(side, on_frame):
    k = SOCKS[side]
    while True:
        try:
            fr, a = k.recvfrom(65535)
        except BlockingIOError:
            return
        on_frame(side, fr, a[2])

def discard():
    for side in SOCKS:
        _drain(side, lambda *x: None)

def run_batch(scens, wait):
    """scens: [{"name", "pkts"}]; returns per scenario its pattern and the
    packets that arrived after their wait, plus frames nobody sent."""
    discard()
    res, foreign, stray = [], [], []
    for sc in scens:
        pkts = sc["pkts"]
        frames = [build(p) for p in pkts]
        index = {tuple(p["key"]): i for i, p in enumerate(pkts)}
        got = [False] * len(pkts)
        gave_up = [False] * len(pkts)
        late = []

        def on_frame(side, fr, pkttype):
            k = _key(fr)
            if k is None:
                return
            if pkttype == 4:  # PACKET_OUTGOING: the host's own kernel sent it
                foreign.append([sc["name"], side, list(k)])
                return
            i = index.get(k)
            if i is None or pkts[i]["d"] == side:
                stray.append([sc["name"], side, list(k)])
                return
            if not got[i]:
                got[i] = True
                if gave_up[i]:
                    late.append(i)

        for i, p in enumerate(pkts):
            SOCKS[p["d"]].send(frames[i])
            deadline = time.monotonic() + wait
            while not got[i]:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                r, _, _ = select.select(list(SOCKS.values()), [], [], left)
                for side, k in SOCKS.items():
                    if k in r:
                        _drain(side, on_frame)
            gave_up[i] = not got[i]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            select.select(list(SOCKS.values()), [], [], max(0, deadline - time.monotonic()))
            for side in SOCKS:
                _drain(side, on_frame)
        res.append({"name": sc["name"], "pattern": "".join("1" if g else "0" for g in got),
                    "late": late})
    return {"res": res, "foreign": foreign, "stray": stray}

def observer_check(cport, sport):
    """A SYN to a port the server host does not drop: its kernel's RST
    must show as a frame the server sent (what the runs count as foreign)."""
    discard()
    f = dict(kind="tcp", d="c", ipid=4711, src=CLIENT, dst=SERVER, sport=cport, dport=sport,
             flags="S", seq=1, ack=0, win=1000, opts=[], n=0)
    SOCKS["c"].send(build(f))
    seen = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not seen:
        select.select([SOCKS["s"]], [], [], 0.05)
        def on(side, fr, pkttype):
            if pkttype == 4 and len(fr) >= 54 and fr[23] == 6:
                sp, dp = struct.unpack("!HH", fr[34:38])
                if sp == sport and dp == cport and fr[47] & 4:
                    seen.append(1)
        _drain("s", on)
    return bool(seen)
'''


def driver(lab):
    pre = (f"SRV_NETNS = {'/run/netns/' + lab.ns('srv')!r}\nMAC = {MAC!r}\n"
           f"PORT_LO, PORT_HI = {PORT_LO}, {PORT_HI}\nCLIENT, SERVER = {CLIENT!r}, {SERVER!r}\n")
    return labtest.Agent(lab, "c1", preamble=pre + DRIVER, timeout=60)


# ---- lab set-up -----------------------------------------------------------

HOST_TABLE = f"""
add table inet tdmtcpd
add chain inet tdmtcpd hostin {{ type filter hook input priority -300; policy accept; }}
add rule inet tdmtcpd hostin tcp sport {PORT_LO}-{PORT_HI - 1} drop
add rule inet tdmtcpd hostin tcp dport {PORT_LO}-{PORT_HI - 1} drop
add rule inet tdmtcpd hostin icmp type {{ destination-unreachable, time-exceeded }} drop
"""

FW_TABLE = """
add table inet tdmtcpd
add chain inet tdmtcpd ctfwd { type filter hook forward priority 0; policy accept; }
add rule inet tdmtcpd ctfwd ct state invalid drop
add rule inet tdmtcpd ctfwd accept
"""


def nft_load(lab, host, text):
    lab.sh(host, "nft delete table inet tdmtcpd")
    lab.sh(host, f"nft -f - <<'EOF'\n{text}\nEOF", check_rc=True)


def nft_clear(lab, host):
    lab.sh(host, "nft delete table inet tdmtcpd")


FW_NEIGH = [(CLIENT, MAC["c"][0], "veth-c"), (SERVER, MAC["s"][0], "veth-s")]


def hosts_up(lab):
    """The end hosts drop the scenario ports (their kernels answer nothing);
    the firewall knows both hosts' MACs before the first packet (no ARP
    delay in a scenario)."""
    for h in ("c1", "srv"):
        nft_load(lab, h, HOST_TABLE)
    for a, mac, dev in FW_NEIGH:
        lab.sh("fw", f"ip neigh replace {a} lladdr {mac} dev {dev} nud permanent", check_rc=True)


def hosts_down(lab):
    for h in ("c1", "srv"):
        nft_clear(lab, h)
    for a, _, dev in FW_NEIGH:
        lab.sh("fw", f"ip neigh del {a} dev {dev}")


_node_copy = []


def node_binary():
    """A private copy of tandem-node, so a rebuild during the run cannot
    change the tracker between the modes."""
    if not _node_copy:
        dst = os.path.join(TMP, "tandem-node")
        shutil.copy2(labtest.NODE_BIN, dst)
        _node_copy.append(dst)
        labtest.NODE_BIN = dst
    return _node_copy[0]


def selected():
    return [(i, sc) for i, sc in enumerate(scenarios()) if ONLY in sc["name"]]


def run_all(lab, run_name):
    """Every selected scenario through whatever filters in the firewall now;
    returns {scenario: pattern}. A scenario with a late frame runs again on
    fresh ports with a longer wait (twice at most)."""
    run = RUNS.index(run_name)
    drv = driver(lab)
    todo = selected()
    out = {}
    ipid = run * 16000
    wait = WAIT
    for attempt in range(3):
        batch = []
        for idx, sc in todo:
            pk, ipid = concrete(sc, idx, run, attempt, ipid)
            batch.append({"name": sc["name"], "pkts": pk})
        n = sum(len(b["pkts"]) for b in batch)
        r = drv.run(f"out = run_batch({batch!r}, {wait})", timeout=30 + n * (wait + 0.02) * 3)
        check(not r["foreign"], f"{run_name}: an end host's kernel sent frames in the scenario "
                                f"port range (it must answer nothing): {r['foreign'][:5]}")
        check(not r["stray"], f"{run_name}: frames nobody sent (or on the wrong side): {r['stray'][:5]}")
        redo = []
        for (idx, sc), res in zip(todo, r["res"]):
            out[sc["name"]] = res["pattern"]
            if res["late"]:
                redo.append((idx, sc))
        if not redo:
            break
        print(f"   {run_name}: late frames in {', '.join(sc['name'] for _, sc in redo)}; "
              f"again with wait {wait * 4:.2f} s", flush=True)
        todo, wait = redo, wait * 4
    else:
        print(f"   warning: {run_name}: still late after retries: "
              f"{', '.join(sc['name'] for _, sc in todo)}", flush=True)
    drv.kill()
    return out


# ---- the runs -------------------------------------------------------------

def test_kernel_conntrack(lab):
    """Linux conntrack in the firewall namespace: `ct state invalid drop;
    accept` with the default TCP sysctls."""
    hosts_up(lab)
    try:
        nft_load(lab, "fw", FW_TABLE)
        lab.sh("fw", "sysctl -qw net.netfilter.nf_conntrack_tcp_loose=1 "
                     "net.netfilter.nf_conntrack_tcp_be_liberal=0", check_rc=True)
        sysctls = lab.sh("fw", "sysctl net.netfilter.nf_conntrack_tcp_loose "
                               "net.netfilter.nf_conntrack_tcp_be_liberal "
                               "net.netfilter.nf_conntrack_tcp_ignore_invalid_rst "
                               "net.netfilter.nf_conntrack_checksum").stdout
        RUNINFO["kernel"] = " ".join(line.split(".")[-1].replace(" ", "") for line in sysctls.splitlines())
        # the observer sees what a host's kernel sends (the runs count it)
        drv = driver(lab)
        ok = drv.run(f"out = observer_check({PORT_LO - 7}, {PORT_LO - 8})")
        drv.kill()
        check(ok, "the server's RST to a SYN on an undropped port was not seen: "
                  "the check that the end hosts stay silent would prove nothing")
        RESULTS["kernel"] = run_all(lab, "kernel")
        if "hs_normal" in RESULTS["kernel"]:
            check(set(RESULTS["kernel"]["hs_normal"]) == {"1"},
                  f"a plain connection did not cross the kernel firewall "
                  f"({RESULTS['kernel']['hs_normal']}): the lab is broken")
    finally:
        nft_clear(lab, "fw")
        hosts_down(lab)


def run_tandem(lab, mode):
    node_binary()
    hosts_up(lab)
    try:
        node = Node(lab, config(queues=1, rules=RULE % mode))
        RESULTS[mode] = run_all(lab, mode)
        st = node.stats()
        RUNINFO[mode] = " ".join(f"{k}={v}" for k, v in sorted(st["drop"].items()) if v)
        rc = node.stop()
        check(rc == 0, f"tandem-node ({mode}) exited with {rc}: {node.read_log()[-2000:]}")
    finally:
        hosts_down(lab)


def test_tandem_loose(lab):
    run_tandem(lab, "loose")


def test_tandem_normal(lab):
    run_tandem(lab, "normal")


def test_tandem_strict(lab):
    run_tandem(lab, "strict")


# ---- the comparison -------------------------------------------------------

def allowed_table(path=DOC):
    """The rows of the differences table: [(scenario, {modes}, kernel, tandem, why, line)]."""
    with open(path) as f:
        lines = f.read().splitlines()
    try:
        start = lines.index(SECTION)
    except ValueError:
        raise TestFailure(f"{path}: no section '{SECTION}'")
    rows = []
    header_seen = False
    for no, line in enumerate(lines[start + 1:], start + 2):
        if line.startswith("#"):
            break
        t = line.strip()
        if not t.startswith("|"):
            if rows or header_seen:
                if t == "":
                    continue
            continue
        cells = [x.strip() for x in t.strip("|").split("|")]
        if not header_seen:
            header_seen = True  # scenario | mode(s) | kernel | tandem | why
            continue
        if all(re.fullmatch(r":?-+:?", x) for x in cells if x):
            continue
        if len(cells) < 5:
            raise TestFailure(f"{path}:{no}: a row needs 5 cells: {line}")
        name, modes, kern, tand = (x.strip("`* ") for x in cells[:4])
        why = "|".join(cells[4:]).strip()
        ms = set()
        for m in re.split(r"[,\s]+", modes):
            if not m:
                continue
            if m == "all":
                ms |= set(MODES)
            elif m in MODES:
                ms.add(m)
            else:
                raise TestFailure(f"{path}:{no}: unknown mode '{m}' (loose, normal, strict, all)")
        if not re.fullmatch(r"[01]+", kern) or not re.fullmatch(r"[01]+", tand):
            raise TestFailure(f"{path}:{no}: patterns are strings of 0 and 1: {line}")
        if not why:
            raise TestFailure(f"{path}:{no}: a difference needs its reason: {line}")
        rows.append((name, ms, kern, tand, why, no))
    return rows


def test_compare(lab):
    """Tandem per mode against the kernel; prints the table."""
    check("kernel" in RESULTS, "no kernel results (test_kernel_conntrack failed or did not run)")
    rows = allowed_table()
    listed = {}
    for name, ms, kern, tand, _, no in rows:
        for m in ms:
            listed.setdefault((name, m), []).append((kern, tand, no))
    scs = [sc for _, sc in selected()]
    names = {sc["name"] for sc in scenarios()}
    modes = [m for m in MODES if m in RESULTS]
    kernel = RESULTS["kernel"]

    unlisted, used = [], set()
    lines = []
    w = max(len(sc["name"]) for sc in scs)
    pw = max(8, max(len(sc["pkts"]) for sc in scs))
    lines.append(f"{'scenario':{w}}  {'kernel':{pw}}  " + "  ".join(f"{m:{pw}}" for m in MODES) + "  result")
    for sc in scs:
        n = sc["name"]
        k = kernel.get(n)
        cells, bad, lst = [], [], False
        for m in MODES:
            t = RESULTS.get(m, {}).get(n)
            cells.append(t if t is not None else "-")
            if t is None or k is None or t == k:
                continue
            hit = [e for e in listed.get((n, m), []) if e[0] == k and e[1] == t]
            if hit:
                lst = True
                used.update((n, m, e[2]) for e in hit)
            else:
                bad.append(m)
                unlisted.append((sc, m, k, t))
        res = ("DIFF " + ",".join(bad)) if bad else ("listed" if lst else "ok")
        lines.append(f"{n:{w}}  {k or '-':{pw}}  " + "  ".join(f"{x:{pw}}" for x in cells) + f"  {res}")

    print("\n".join("   " + x for x in lines), flush=True)
    for run, info in RUNINFO.items():
        print(f"   {run}: {info}")
    run_names = {sc["name"] for sc in scs}
    for name, ms, kern, tand, _, no in rows:
        if name not in names:
            print(f"   warning: {DOC}:{no}: listed scenario '{name}' does not exist")
            continue
        if name not in run_names:
            continue
        for m in sorted(ms):
            if m in modes and (name, m, no) not in used:
                print(f"   warning: listed difference no longer occurs: {name} ({m}) "
                      f"kernel {kern} tandem {tand} [{os.path.basename(DOC)}:{no}]; now kernel "
                      f"{kernel.get(name)} tandem {RESULTS[m].get(name)}")
    if unlisted:
        print("   unlisted differences (packet, kernel, tandem):")
        for sc, m, k, t in unlisted:
            print(f"   -- {sc['name']} ({m}){': ' + sc['what'] if sc['what'] else ''}")
            for i, p in enumerate(sc["pkts"]):
                mark = "" if k[i] == t[i] else "   <--"
                print(f"      {i + 1:2} {describe(p):60} {k[i]} {t[i]}{mark}")
    print(f"   {len(scs)} scenarios, modes {','.join(modes)}: {len(unlisted)} unlisted "
          f"difference(s){' (report only)' if REPORT else ''}", flush=True)
    missing = [m for m in MODES if m not in RESULTS]
    if REPORT:
        return
    check(not missing, f"no results for mode(s) {', '.join(missing)}")
    check(not unlisted, f"{len(unlisted)} difference(s) from conntrack not listed in "
                        f"{DOC}: " + ", ".join(f"{sc['name']} ({m})" for sc, m, _, _ in unlisted))


if __name__ == "__main__":
    if len(scenarios()) != len({sc["name"] for sc in scenarios()}):
        sys.exit("test_tcp_vs_conntrack: two scenarios share a name")
    run_tests(globals(), Lab("tdm-tcpd-"), per_test_timeout=150)
