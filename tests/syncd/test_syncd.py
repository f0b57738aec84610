#!/usr/bin/python3
"""tandem-syncd integration tests: two syncd processes on 127.0.0.1, each
with a fake node (fake_node.py), their sync links and data-side heartbeats
through proxies the tests cut (harness.py). No root needed.

Usage: test_syncd.py TANDEM_SYNCD SOURCE_ROOT [TEST ...]

Every test has its own time limit and kills what it started; every syncd
must exit 0 on SIGTERM (under ASan that also means: no leak).
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_node  # noqa: E402
import harness  # noqa: E402
from harness import Cluster, frame, wait_for  # noqa: E402

SYNCD, SRC = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SELECTED = sys.argv[3:]
TMP = tempfile.mkdtemp(prefix="tandem-syncd-")
pb = fake_node.load_proto(SRC, TMP)
SR = pb.SyncdRequest
EV = pb.SessionEvent

TESTS = []
CLUSTERS = []


def test(timeout):
    def reg(fn):
        TESTS.append((fn.__name__, fn, timeout))
        return fn
    return reg


class Timeout(Exception):
    pass


def cluster(**kw):
    d = tempfile.mkdtemp(dir=TMP)
    cl = Cluster(SYNCD, d, **kw)
    CLUSTERS.append(cl)
    return cl


def pair(**kw):
    """A started pair: node 1 active, node 2 standby, linked."""
    cl = cluster(**kw)
    cl.start()
    cl.wait_roles(["active", "standby"])
    cl.wait_linked()
    return cl


def same_tables(src, dst):
    """dst's peer sessions are exactly src's local ones (ids and state)."""
    return lambda: src.fake.local_state() == dst.fake.peer_state()


# ------------------------------------------------------------------ tests

@test(30)
def replication_create_refresh_expire_delete():
    cl = pair()
    a, b = cl[0], cl[1]
    ss = a.fake.create(200)
    wait_for(same_tables(a, b), 5, "200 creates on the standby")
    a.fake.refresh(ss[:50], remaining_ms=60000, state=pb.SS_TCP_WAIT)
    a.fake.refresh(ss[50:80], remaining_ms=1700000)
    wait_for(same_tables(a, b), 5, "state changes and refreshes")
    ps = b.fake.peer_sessions()
    assert ps[ss[0].id].state == pb.SS_TCP_WAIT
    assert 55000 <= ps[ss[0].id].remaining_ms <= 60000, ps[ss[0].id].remaining_ms
    a.fake.delete(ss[100:130])
    a.fake.delete(ss[130:150], etype=EV.EXPIRE)
    wait_for(same_tables(a, b), 5, "deletes and expiries")
    assert len(b.fake.table()[1]) == 150
    # the standby's own sessions go the other way
    bs = b.fake.create(10)
    wait_for(lambda: a.fake.table()[1] == {s.id for s in bs}, 5, "standby -> active")
    # acknowledged: no lag left, latencies measured
    wait_for(lambda: a.peer(2).lag_events == 0, 5, "acks")
    p = a.peer(2)
    assert p.events_sent >= 200 + 80 + 50, p.events_sent
    assert p.HasField("ack_p50_us") and p.ack_p99_us >= p.ack_p50_us
    assert b.peer(1).events_received == p.events_sent
    # nothing of node 2's own comes back to it
    assert not (b.fake.table()[0] & b.fake.table()[1])


@test(40)
def bulk_sync_of_sessions_made_before_the_peer_started():
    cl = cluster(bulk_rate=2000)
    a, b = cl[0], cl[1]
    a.fake.start()
    a.fake.create(3000, emit=False)
    cl.start([0], fakes=False)
    wait_for(lambda: a.role() == "active", 5, "node 1 active alone")
    b.fake.start()
    b.fake.create(5, emit=False)  # the standby has a few of its own
    b.start()
    seen_progress = []

    def progress():
        p = a.peer(2)
        if p.bulk_tx.state == "sending" and 0 < p.bulk_tx.sent < p.bulk_tx.total:
            seen_progress.append((p.bulk_tx.sent, p.bulk_tx.total))
        return p.bulk_tx.state == "done" and len(b.fake.table()[1]) == 3000
    wait_for(progress, 15, "bulk of 3000 at 2000/s", step=0.1)
    wait_for(same_tables(a, b), 5, "tables equal")
    assert seen_progress, "bulk progress never visible in show cluster"
    p = a.peer(2)
    assert p.bulk_tx.sent == 3000 and p.bulk_tx.elapsed_ms >= 1000, p.bulk_tx
    assert b.peer(1).bulk_rx.state == "done"
    wait_for(lambda: a.fake.table()[1] == set(b.fake.table()[0]), 5, "standby's own")
    cl.wait_roles(["active", "standby"])


@test(40)
def link_cut_and_restored_resumes_and_converges():
    cl = pair()
    a, b = cl[0], cl[1]
    ss = a.fake.create(300)
    wait_for(same_tables(a, b), 5, "first 300")
    before = a.counter("peer2.full-bulks")
    cl.cut_sync()
    wait_for(lambda: a.peer(2).link != "up" and b.peer(1).link != "up", 3, "link down")
    a.fake.create(100)
    a.fake.delete(ss[:50])
    a.fake.refresh(ss[50:60], state=pb.SS_TCP_TIME_WAIT)
    time.sleep(2)
    # the data-side heartbeat still says node 1 is alive: no takeover
    assert b.role() == "standby" and a.role() == "active"
    assert a.peer(2).lag_events > 0
    cl.cut_sync(False)
    wait_for(same_tables(a, b), 10, "convergence after the cut")
    wait_for(lambda: a.peer(2).lag_events == 0, 5, "acks after the cut")
    assert a.counter("peer2.resumes") >= 1
    assert a.counter("peer2.full-bulks") == before, "a cut this short resumes"


@test(60)
def long_cut_overflows_the_backlog_and_ends_in_a_full_bulk():
    cl = pair(backlog=1 << 20)
    a, b = cl[0], cl[1]
    ss = a.fake.create(500)
    wait_for(same_tables(a, b), 5, "first 500")
    cl.cut_sync()
    wait_for(lambda: a.peer(2).link != "up", 3, "link down")
    for _ in range(10):
        a.fake.create(1000)  # ~1.5 MB of events: more than the backlog
    a.fake.delete(ss[:200])
    wait_for(lambda: a.counter("peer2.overflows") >= 1, 5, "backlog overflow")
    assert a.peer(2).backlog_bytes < 1 << 20
    assert b.role() == "standby"
    cl.cut_sync(False)
    wait_for(same_tables(a, b), 20, "convergence by a full bulk")
    assert a.counter("peer2.full-bulks") == 2
    assert b.counter("apply.swept") >= 200, "the deleted ones were swept on node 2"


@test(60)
def bulk_resumes_where_it_stopped_after_a_cut():
    cl = cluster(bulk_rate=1000)
    a, b = cl[0], cl[1]
    a.fake.start()
    a.fake.create(3000, emit=False)
    cl.start([0], fakes=False)
    wait_for(lambda: a.role() == "active", 5, "node 1 active alone")
    b.fake.start()
    b.start()
    wait_for(lambda: 500 < a.peer(2).bulk_tx.sent < 2500, 10, "bulk half way", step=0.05)
    cl.cut_sync()
    time.sleep(1.0)
    sent_at_cut = a.peer(2).bulk_tx.sent
    cl.cut_sync(False)
    wait_for(lambda: a.peer(2).bulk_tx.state == "done", 15, "bulk finished", step=0.1)
    wait_for(same_tables(a, b), 5, "tables equal")
    assert a.counter("peer2.full-bulks") == 1, "the bulk restarted instead of resuming"
    assert a.counter("peer2.resumes") >= 1
    assert sent_at_cut < 3000


@test(60)
def syncd_restart_and_node_restart_lose_nothing():
    cl = pair()
    a, b = cl[0], cl[1]
    ss = a.fake.create(400)
    wait_for(same_tables(a, b), 5, "first 400")
    # the standby's syncd dies; its node keeps the sessions
    b.kill(signal.SIGKILL)
    a.fake.delete(ss[:100])
    a.fake.create(100)
    time.sleep(1)
    assert a.role() == "active"
    b.start()
    wait_for(same_tables(a, b), 10, "convergence after a syncd restart")
    assert len(b.fake.table()[1]) == 400
    cl.wait_roles(["active", "standby"])
    # the standby's node restarts empty: it gets everything again
    b.fake.stop(forget=True)
    time.sleep(0.5)
    b.fake.start()
    wait_for(same_tables(a, b), 10, "convergence after a node restart")
    assert b.fake.role == "standby"


@test(40)
def restarted_standby_seed_answered_during_the_bulk_keeps_every_copy():
    """The standby's syncd restarts: it reloads from its node what the node
    holds for the peer (seed), and the active sends its bulk. When the
    node's answer to the seed arrives in the middle of that bulk, the
    sessions the bulk had already sent again must not be swept at its end
    (their copies on the standby's node would be deleted)."""
    cl = pair(bulk_rate=200)
    a, b = cl[0], cl[1]
    ss = a.fake.create(600)
    wait_for(same_tables(a, b), 10, "600 sessions on the standby")
    b.kill(signal.SIGKILL)
    time.sleep(0.3)
    b.fake.sessions_reply_open.clear()  # the seed's answer waits
    deletes0 = b.fake.peer_deletes
    try:
        b.start()
        wait_for(lambda: 100 <= a.peer(2).bulk_tx.sent < 500, 10,
                 "the active's bulk a part of the way", step=0.02)
    finally:
        b.fake.sessions_reply_open.set()
    wait_for(lambda: a.peer(2).bulk_tx.state == "done", 15, "bulk finished", step=0.05)
    wait_for(lambda: a.peer(2).lag_events == 0, 5, "everything applied")
    assert b.fake.peer_deletes == deletes0, \
        f"{b.fake.peer_deletes - deletes0} copies deleted on the standby's node"
    assert len(b.fake.table()[1]) == len(ss)
    wait_for(same_tables(a, b), 5, "tables equal")


@test(40)
def restarted_standby_seed_answered_after_the_bulk_sweeps_stale_copies():
    """The standby's syncd restarts after the active deleted sessions: its
    node still holds their copies. When the node's answer to the seed
    arrives after the active's whole bulk (a loaded machine), the copies
    that bulk did not send again must still be deleted on the node (they
    stayed there and the tables never converged)."""
    cl = pair()
    a, b = cl[0], cl[1]
    ss = a.fake.create(300)
    wait_for(same_tables(a, b), 10, "300 sessions on the standby")
    b.kill(signal.SIGKILL)
    a.fake.delete(ss[:80])
    a.fake.create(40)
    time.sleep(0.3)
    swept0 = b.fake.peer_deletes
    b.fake.sessions_reply_open.clear()  # the seed's answer waits
    try:
        b.start()

        def bulk_in():  # its control socket may still be the dead one's
            try:
                return b.peer(1).bulk_rx.state == "done"
            except OSError:
                return False
        wait_for(bulk_in, 10, "the active's whole bulk on the standby", step=0.02)
        assert b.show().apply_pending > 0, "the bulk was applied before the seed's answer"
    finally:
        b.fake.sessions_reply_open.set()
    wait_for(same_tables(a, b), 5, "the stale copies swept")
    assert b.fake.peer_deletes - swept0 == 80, b.fake.peer_deletes - swept0
    assert len(b.fake.table()[1]) == 260
    wait_for(lambda: b.show().ready and a.peer(2).lag_events == 0, 5, "everything applied")


@test(30)
def election_by_priority_then_lower_id():
    cl = cluster(priorities=(100, 200))
    cl.start()
    cl.wait_roles(["standby", "active"])
    assert cl[1].show().epoch == 1
    assert cl[1].fake.role == "active" and cl[0].fake.role == "standby"
    cl2 = cluster(priorities=(150, 150))
    cl2.start()
    cl2.wait_roles(["active", "standby"])


@test(30)
def startup_bulk_from_a_peer_in_init_is_not_the_state():
    """At start node 2 (standby: node 1 wins the election) completes node
    1's link bulk while node 1 is still init (its gate held). That bulk is
    node 1's own sessions, not the active's state: node 2 must not rank
    above node 1 with it and take over, node 1 becomes active once ready."""
    cl = cluster()
    a, b = cl[0], cl[1]
    a.fake.create(20, emit=False)
    a.fake.sessions_open.clear()  # node 1's syncd seeds: its gate stays shut
    try:
        cl.start()
        wait_for(lambda: b.peer(1).bulk_rx.state == "done" and
                 len(b.fake.table()[1]) == 20, 5, "node 1's bulk on node 2")
        # ten heartbeat intervals: with the bug node 2 took over within one
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert b.role() == "standby", "node 2 took over from a peer in init"
            assert a.role() == "init", a.role()
            time.sleep(0.02)
        assert not a.peer(2).ready, "node 2 claims node 1's state"
    finally:
        a.fake.sessions_open.set()
    cl.wait_roles(["active", "standby"])
    assert a.show().epoch == 1 and b.fake.promotes == 0
    assert b.fake.role_history == ["standby"], b.fake.role_history
    wait_for(same_tables(a, b), 5, "node 1's sessions on node 2")
    # node 1 is active now: what node 2 holds of it is the state
    wait_for(lambda: a.peer(2).ready, 5, "node 2 ready for node 1")


@test(30)
def takeover_at_start_sends_no_peer_its_own_sessions_back():
    """Node 1 wins the first election with node 2's link bulk applied
    (PROMOTE makes node 2's sessions local on node 1) before its own
    node's dump arrived, so its link bulk to node 2 starts after the
    promotion. Node 2 still holds its sessions as its own: the bulk must not
    send them back (its standby node would turn them into peer copies)."""
    cl = cluster()
    a, b = cl[0], cl[1]
    mine = {s.id for s in a.fake.create(5, emit=False)}
    theirs = {s.id for s in b.fake.create(3, emit=False)}
    a.fake.dump_open.clear()  # node 1's table reaches its syncd late
    a.fake.sessions_open.clear()  # and its gate opens after node 2's bulk
    try:
        cl.start()
        wait_for(lambda: a.peer(2).bulk_rx.state == "done", 5, "node 2's bulk on node 1")
        a.fake.sessions_open.set()
        wait_for(lambda: a.role() == "active", 5, "node 1 active before its dump")
        assert a.fake.promotes == 1 and theirs <= a.fake.table()[0], a.fake.table()
    finally:
        a.fake.sessions_open.set()
        a.fake.dump_open.set()
    cl.wait_roles(["active", "standby"])
    wait_for(lambda: b.peer(1).bulk_rx.state == "done" and
             a.peer(2).bulk_tx.state == "done", 5, "node 1's bulk to node 2")
    wait_for(lambda: b.fake.table()[1] == mine, 5, "node 1's own sessions on node 2")
    assert b.fake.table()[0] == theirs, b.fake.table()
    assert a.peer(2).bulk_tx.sent == 5, a.peer(2).bulk_tx


@test(30)
def takeover_when_the_active_is_killed():
    cl = pair()
    a, b = cl[0], cl[1]
    ss = a.fake.create(100)
    wait_for(same_tables(a, b), 5, "sessions on the standby")
    t0 = time.monotonic()
    a.kill(signal.SIGKILL)
    wait_for(lambda: b.fake.role == "active", 3, "standby takes over", step=0.005)
    took = time.monotonic() - t0
    assert took < 1.0, f"takeover took {took:.3f}s"
    assert b.fake.promotes == 1
    assert {s.id for s in ss} <= b.fake.table()[0], "promoted sessions are local"
    cs = b.show()
    assert cs.role == "active" and cs.epoch == 2, cs
    print(f"    detection + takeover: {took * 1000:.0f} ms "
          f"(decision -> addresses {cs.last_takeover_ms} ms)")
    # the old active returns: it becomes standby and gets the table
    a.start()
    cl.wait_roles(["standby", "active"])
    wait_for(same_tables(b, a), 10, "old active resynced")


@test(40)
def one_path_lost_is_no_takeover_both_is_and_epochs_settle_it():
    cl = pair()
    a, b = cl[0], cl[1]
    cl.cut_data()
    time.sleep(1.5)
    assert b.role() == "standby", "took over with the sync link alive"
    paths = {p.path: p.alive for p in b.peer(1).paths}
    assert paths == {"sync": True, "data": False}, paths
    cl.cut_data(False)
    cl.cut_sync()
    time.sleep(1.5)
    assert b.role() == "standby", "took over with the data-side heartbeat alive"
    paths = {p.path: p.alive for p in b.peer(1).paths}
    assert paths == {"sync": False, "data": True}, paths
    # both paths: split brain, by design
    cl.cut_data()
    wait_for(lambda: b.role() == "active", 3, "takeover with both paths lost")
    assert a.role() == "active"
    ea, eb = a.show().epoch, b.show().epoch
    assert eb == ea + 1, (ea, eb)
    b.fake.create(20)  # sessions made during the split on node 2
    # paths back: the higher epoch (node 2) keeps the role
    cl.cut_sync(False)
    cl.cut_data(False)
    cl.wait_roles(["standby", "active"], timeout=5)
    assert a.show().epoch == eb
    assert a.fake.role == "standby" and b.fake.role == "active"
    wait_for(lambda: b.fake.local_state().items() <= a.fake.peer_state().items(), 10,
             "the loser resynced from the winner")


@test(30)
def request_failover_reports_its_duration():
    cl = pair()
    a, b = cl[0], cl[1]
    a.fake.create(50)
    wait_for(same_tables(a, b), 5, "sessions on the standby")
    r = b.request(SR.FAILOVER)
    assert r.status == 409, r
    wait_for(lambda: a.peer(2).ready, 5, "standby ready")
    r = a.request(SR.FAILOVER, timeout_ms=5000)
    assert r.status == 0, r.error
    assert 0 < r.failover_ms < 2000, r.failover_ms
    assert r.role == "standby"
    print(f"    planned failover: {r.failover_ms} ms")
    cl.wait_roles(["standby", "active"])
    assert b.show().epoch == 2
    assert b.fake.promotes == 1
    # the command-line client says the same
    out = subprocess.run([SYNCD, "-s", b.ctl_sock, "--failover", "--timeout", "5000"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.startswith("OK failover took"), out
    cl.wait_roles(["active", "standby"])


@test(40)
def readiness_gate_holds_takeover_until_every_event_is_applied():
    cl = pair()
    a, b = cl[0], cl[1]
    b.fake.apply_delay = 0.7
    a.fake.create(600)  # 3 frames of 256/256/88 events: >= 2 s of applying
    wait_for(lambda: b.peer(1).events_received == 600, 5, "received")
    t0 = time.monotonic()
    a.kill(signal.SIGKILL)
    saw_pending = []

    def active():
        cs = b.show()
        if cs.takeover_pending:
            saw_pending.append(cs.apply_pending)
        return b.fake.role == "active"
    wait_for(active, 10, "takeover after the gate")
    took = time.monotonic() - t0
    assert saw_pending, "show cluster never showed the pending takeover"
    assert took > 1.0, f"took over after {took:.2f}s: before the events were applied"
    req = b.fake.requests
    last_apply = max(i for i, c in enumerate(req) if c == pb.CtlRequest.SYNC_APPLY)
    first_promote = req.index(pb.CtlRequest.PROMOTE)
    assert first_promote > last_apply, "PROMOTE before the last SYNC_APPLY"
    assert len(b.fake.table()[0]) == 600


@test(40)
def refused_frames_are_counted_and_change_nothing():
    ghost = harness.free_port()
    cl = pair(ghost_peers=[(3, ghost)])
    a, b = cl[0], cl[1]
    a.fake.create(20)
    wait_for(same_tables(a, b), 5, "sessions")
    before = b.show()
    tables = (b.fake.table(), a.fake.table())
    empty = b""          # an empty PeerMsg: valid, means nothing
    bad_key = bytes(32)
    big = 4 << 20

    def tcp(*frames, linger=0.3):
        s = socket.create_connection(("127.0.0.1", b.port))
        for f in frames:
            s.sendall(f)
            time.sleep(0.05)
        time.sleep(linger)
        s.close()
        time.sleep(0.1)

    tcp(frame(b"\x08\x01", node=1, seq=1 << 62, key=bad_key))        # forged tag
    tcp(frame(empty, node=1, seq=1 << 62, cluster=8))                  # wrong cluster
    tcp(frame(empty, node=1, seq=1 << 62, version=2))                  # bad version
    tcp(frame(empty, node=9, seq=1))                                   # unknown node
    ok = frame(empty, node=3, seq=1000)
    tcp(ok, ok, frame(empty, node=3, seq=999),                         # replayed, backwards
        frame(b"\xff\xff\xff", node=3, seq=2000),                      # bad payload
        frame(empty, node=3, seq=3000, epoch=5),
        frame(empty, node=3, seq=3001, epoch=4))                       # stale epoch
    tcp(frame(empty, node=1, seq=1, length=big + 1)[:32])              # oversized
    tcp(b"XXXX" + bytes(60))                                           # bad magic
    f = frame(b"\x12" * 100, node=1, seq=1 << 62)
    tcp(f[:80])                                                        # truncated
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for d in (frame(empty, node=1, seq=1 << 62, key=bad_key),         # forged tag
              frame(empty, node=3, seq=50000)[:20],                    # truncated
              frame(empty, node=3, seq=50000),
              frame(empty, node=3, seq=50000),                         # replayed
              frame(empty, node=3, seq=50000 - 100)):                  # backwards
        u.sendto(d, ("127.0.0.1", b.udp))
        time.sleep(0.05)
    u.close()
    time.sleep(0.3)
    after = b.show()
    want = {"bad-tag": 2, "wrong-cluster": 1, "bad-version": 1, "unknown-node": 1,
            "replayed": 2, "backwards": 2, "bad-payload": 1, "stale-epoch": 1,
            "oversized": 1, "bad-magic": 1, "truncated": 2, "bad-length": 0}
    got = {k: b.counter("refused." + k, after) - b.counter("refused." + k, before)
           for k in want}
    assert got == want, f"refusals {got}, wanted {want}"
    # per peer: the ones claiming node 1 and node 3
    p1 = {c.name: c.value for c in b.peer(1).refused}
    assert p1["bad-tag"] >= 2 and p1["wrong-cluster"] >= 1, p1
    # no state changed: role, epoch, the real link, the tables
    assert (after.role, after.epoch) == (before.role, before.epoch)
    assert b.peer(1).link == "up" and b.peer(1).connects == \
        [p for p in before.peers if p.node_id == 1][0].connects
    assert (b.fake.table(), a.fake.table()) == tables
    # and replication still works
    a.fake.create(10)
    wait_for(same_tables(a, b), 5, "replication after the refusals")


@test(30)
def pushed_config_reaches_the_peer_with_its_own_identity():
    cl = pair()
    a, b = cl[0], cl[1]
    wait_for(lambda: a.show().policy_hash and b.show().policy_hash, 5, "hashes known")
    a.fake.config_text = ('node = { name = "fw1"; id = 1; };\n'
                          'rules = ( { name = "web"; action = "accept"; },\n'
                          '          { name = "ssh"; action = "drop"; } );\n')
    want = fake_node.policy_hash(a.fake.config_text)
    wait_for(lambda: fake_node.policy_hash(b.fake.config_text) == want, 5,
             "config replicated")
    assert 'name = "fw2"' in b.fake.config_text and "id = 2" in b.fake.config_text, \
        b.fake.config_text
    wait_for(lambda: a.show().policy_hash == b.show().policy_hash == want, 5,
             "both report the same policy hash")
    assert b.counter("config.applied") == 1
    time.sleep(1.5)  # no ping-pong
    assert a.counter("config.sent") == 1 and b.counter("config.sent") == 0


@test(30)
def keepalived_mode_follows_notify():
    cl = cluster(mode="keepalived")
    cl.start()
    cl.wait_linked()
    time.sleep(1.5)
    assert cl[0].role() == "init" and cl[1].role() == "init", "elected by itself"
    cl[0].fake.create(30)
    wait_for(same_tables(cl[0], cl[1]), 5, "replication without a role")
    out = subprocess.run([SYNCD, "-c", cl[1].conf, "--notify", "master"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out
    wait_for(lambda: cl[1].fake.role == "active", 3, "notify master")
    assert cl[1].role() == "active" and cl[1].fake.promotes == 1
    r = cl[1].request(SR.FAILOVER)
    assert r.status == 409, r
    subprocess.run([SYNCD, "-s", cl[1].ctl_sock, "--notify", "backup"], check=True,
                   capture_output=True, timeout=10)
    wait_for(lambda: cl[1].fake.role == "standby", 3, "notify backup")
    r = cl[0].request(SR.ROLE, role="boss")
    assert r.status == 400
    # election mode refuses notify
    cl2 = pair()
    assert cl2[0].request(SR.ROLE, role="active").status == 409


@test(30)
def clean_stop_hands_over_at_once():
    cl = pair()
    a, b = cl[0], cl[1]
    t0 = time.monotonic()
    assert a.kill(signal.SIGTERM) == 0
    wait_for(lambda: b.fake.role == "active", 2, "takeover after a clean stop",
             step=0.005)
    took = time.monotonic() - t0
    assert took < 0.3, f"took {took:.3f}s: waited for the dead time"


@test(30)
def sighup_reloads_what_it_can_and_keeps_the_role():
    cl = pair()
    a, b = cl[0], cl[1]
    ss = a.fake.create(20)
    wait_for(same_tables(a, b), 5, "sessions on the standby")
    epoch = a.show().epoch
    promotes = (a.fake.promotes, b.fake.promotes)
    # a live setting (priority) and one that needs a restart (interval)
    a.priority = 150
    cl.interval = 50
    a.write_conf([b])
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in a.tail(5), 3, "reload logged")
    log = a.tail(5)
    print("    " + next(ln for ln in log.splitlines() if "reloaded" in ln))
    assert "applied: role.priority" in log, log
    assert "needs a restart (running value kept): heartbeat.interval_ms" in log, log
    cs = a.show()
    assert a.proc.poll() is None, "syncd died on SIGHUP"
    assert cs.role == "active" and cs.epoch == epoch, cs
    assert cs.priority == 150, cs
    assert a.counter("config.reloads", cs) == 1
    wait_for(lambda: b.peer(1).priority == 150, 2, "peer hears the new priority")
    # a file that does not load changes nothing
    with open(a.conf, "a") as f:
        f.write("no_such_setting = 1;\n")
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in a.tail(5), 3, "refusal logged")
    cs = a.show()
    assert a.proc.poll() is None and cs.role == "active" and cs.priority == 150, cs
    assert b.role() == "standby" and (a.fake.promotes, b.fake.promotes) == promotes
    s2 = a.fake.create(5)
    wait_for(same_tables(a, b), 5, "replication goes on after the reload")
    assert len(ss) + len(s2) == len(b.fake.peer_state())


def hook_script(cl, node_id):
    """A notify hook that appends its arguments to a file; returns both."""
    path, out = f"{cl.tmp}/hook{node_id}.sh", f"{cl.tmp}/hook{node_id}.out"
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\necho "$@" >> {out}\n')
    os.chmod(path, 0o755)
    return path, out


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


@test(30)
def node_gone_on_the_active_hands_over_and_hooks_run():
    cl = cluster()
    hooks = {n.id: hook_script(cl, n.id) for n in cl.nodes}
    for n in cl.nodes:
        n.write_conf([p for p in cl.nodes if p is not n],
                     f'notify = "{hooks[n.id][0]}";\n')
    cl.start()
    cl.wait_roles(["active", "standby"])
    cl.wait_linked()
    a, b = cl[0], cl[1]
    a.fake.create(50)
    wait_for(same_tables(a, b), 5, "sessions on the standby")
    wait_for(lambda: lines(hooks[1][1]) == ["active init 1"], 2, "hook of node 1")
    wait_for(lambda: lines(hooks[2][1]) == ["standby init 1"], 2, "hook of node 2")
    t0 = time.monotonic()
    a.fake.stop(forget=False)          # the active's node dies, its syncd lives
    wait_for(lambda: b.fake.role == "active", 3, "standby takes over", step=0.005)
    took = time.monotonic() - t0
    print(f"    node gone on the active -> standby's node active: {took * 1000:.0f} ms")
    assert took < 1.5, f"took {took:.3f}s"
    cs = a.show()
    assert cs.role == "standby" and "node link down" in cs.role_reason, cs
    assert a.counter("role.step-downs", cs) == 1
    assert b.show().epoch == 2
    wait_for(lambda: lines(hooks[1][1])[-1:] == ["standby active 1"], 2, "step-down hook")
    wait_for(lambda: lines(hooks[2][1])[-1:] == ["active standby 2"], 2, "takeover hook")
    # the node comes back: the fault clears, the old active stays standby
    a.fake.start()
    wait_for(lambda: "fault cleared" in a.tail(10), 3, "fault cleared")
    time.sleep(0.5)
    assert a.role() == "standby" and b.role() == "active"


@test(30)
def a_tracked_interface_down_hands_over():
    cl = pair(extra={1: 'track_interfaces = [ "lo" ];\n'})
    a, b = cl[0], cl[1]
    time.sleep(0.3)
    assert a.role() == "active", "lo is up: no fault"
    # the active now tracks an interface that is not there (down)
    a.write_conf([b], 'track_interfaces = [ "lo", "tdmnone0" ];\n')
    t0 = time.monotonic()
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: b.fake.role == "active", 3, "standby takes over", step=0.005)
    took = time.monotonic() - t0
    print(f"    tracked interface down -> standby's node active: {took * 1000:.0f} ms")
    cs = a.show()
    assert cs.role == "standby" and "tracked interface tdmnone0 down" in cs.role_reason, cs
    assert a.counter("health.faults", cs) == 1
    # back to a healthy list: it stays standby (no preempt), ready to take over
    a.write_conf([b], 'track_interfaces = [ "lo" ];\n')
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "fault cleared" in a.tail(10), 3, "fault cleared")
    assert a.role() == "standby" and b.role() == "active"


@test(30)
def heartbeat_intervals_are_negotiated_by_the_slower_side():
    cl = cluster()
    a, b = cl[0], cl[1]
    cl.interval = 20            # node 1 beats every 20 ms, node 2 every 200 ms
    a.write_conf([b])
    cl.interval = 200
    b.write_conf([a])
    cl.start()
    cl.wait_roles(["active", "standby"])
    cl.wait_linked()
    wait_for(lambda: "dead after 600 ms" in a.tail(20), 3, "node 1 negotiated")
    wait_for(lambda: "dead after 600 ms" in b.tail(20), 3, "node 2 negotiated")
    # node 1 would call node 2 dead after 60 ms of its own rule: it must not
    time.sleep(2)
    for n in (a, b):
        assert n.counter("role.changes") == 1, n.tail(20)
        assert "silent" not in n.tail(40), n.tail(40)
    assert a.peer(2).link == "up" and b.peer(1).link == "up"
    # a dead active is still found, at the slower side's time
    t0 = time.monotonic()
    a.kill(signal.SIGKILL)
    wait_for(lambda: b.fake.role == "active", 3, "standby takes over", step=0.005)
    took = time.monotonic() - t0
    print(f"    negotiated 200 ms x 3: takeover {took * 1000:.0f} ms after SIGKILL")
    assert 0.35 < took < 1.5, took


# ------------------------------------------------------------------ runner

def main():
    failed = []
    for name, fn, limit in TESTS:
        if SELECTED and name not in SELECTED:
            continue

        def alarm(signum, frm):
            raise Timeout(f"{name}: more than {limit}s")
        signal.signal(signal.SIGALRM, alarm)
        signal.alarm(limit)
        t0 = time.monotonic()
        ok = True
        try:
            fn()
        except BaseException:  # noqa: B902 (report and go on)
            ok = False
            traceback.print_exc()
        finally:
            signal.alarm(0)
            for cl in CLUSTERS:
                rcs = cl.close()
                bad = {k: v for k, v in rcs.items() if v not in (0, None, -9)}
                if bad:
                    ok = False
                    print(f"    unclean exit {bad}")
                    for n in cl.nodes:
                        print(n.tail(15))
                if not ok:
                    for n in cl.nodes:
                        print(f"--- log of node {n.id}\n{n.tail(40)}")
            CLUSTERS.clear()
        print(f"{'ok  ' if ok else 'FAIL'} {name} ({time.monotonic() - t0:.1f}s)",
              flush=True)
        if not ok:
            failed.append(name)
    print(f"{len(failed)} failed" + (": " + " ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
