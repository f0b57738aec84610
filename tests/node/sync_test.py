#!/usr/bin/python3
"""tandem-node's replication side, offline (no root): node A replays a
capture, node B an empty one; this test plays tandem-syncd: it subscribes
to A (bulk dump, then live events), applies them on B (SYNC_APPLY), and
checks that both hold the same sessions (SYNC_DIGEST), that B's are
origin=peer and never sent back, that a clear on A deletes them on B, and
that PROMOTE makes B's copies local.

Usage: sync_test.py TANDEM_NODE SOURCE_ROOT
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

NODE, SRC = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="tandem-sync-")
subprocess.run(["protoc", f"--proto_path={SRC}/proto", f"--python_out={tmp}",
                f"{SRC}/proto/tandem.proto"], check=True)
sys.path.insert(0, tmp)
import tandem_pb2 as pb  # noqa: E402
from scapy.all import IP, TCP, UDP, ICMP, Ether, Raw, wrpcap  # noqa: E402

C, WEB, DNS = "10.1.0.2", "10.2.0.10", "10.2.0.53"


def capture(path, n_flows):
    pk, t = [], 1_700_000_000.0
    for i in range(n_flows):
        c = f"10.1.{i // 200}.{i % 200 + 1}"
        for dt, p in ((0, IP(src=c, dst=WEB) / TCP(sport=2000 + i, dport=80, flags="S", seq=1)),
                      (0.01, IP(src=WEB, dst=c) / TCP(sport=80, dport=2000 + i, flags="SA", seq=9, ack=2)),
                      (0.02, IP(src=c, dst=WEB) / TCP(sport=2000 + i, dport=80, flags="A", seq=2, ack=10)),
                      (0.03, IP(src=c, dst=DNS) / UDP(sport=3000 + i, dport=53) / Raw(b"q"))):
            e = Ether() / p
            e.time = t + i * 0.001 + dt
            pk.append(e)
    if not pk:  # an empty capture still needs one packet: an unknown zone
        e = Ether() / IP(src="192.0.2.1", dst="192.0.2.2") / ICMP()
        e.time = t
        pk.append(e)
    wrpcap(path, pk)


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)
        self.buf = b""
        self.seq = 0

    def send(self, cmd, **kw):
        self.seq += 1
        b = pb.CtlRequest(seq=self.seq, cmd=cmd, source="sync_test", **kw).SerializeToString()
        self.s.sendall(struct.pack("!I", len(b)) + b)

    def frame(self):
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack("!I", self.buf[:4])[0]:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError
            self.buf += d
        n = struct.unpack("!I", self.buf[:4])[0]
        f, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return f

    def call(self, cmd, **kw):
        self.send(cmd, **kw)
        r = pb.CtlReply()
        r.ParseFromString(self.frame())
        assert r.status == 0, (cmd, r.status, r.error)
        return r


def start(name, cap):
    conf = os.path.join(tmp, f"{name}.conf")
    sock = os.path.join(tmp, f"{name}.sock")
    with open(conf, "w") as f:
        text = open(f"{SRC}/conf/tandem.conf").read()
        old = 'socket = "/run/tandem/fw1/node.sock";'
        assert old in text
        f.write(text.replace(old, f'socket = "{sock}";'))
    log = open(os.path.join(tmp, f"{name}.log"), "w")
    p = subprocess.Popen([NODE, "--config", conf, "--pcap", cap, "--serve"], stdout=log, stderr=log)
    deadline = time.time() + 10
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.05)
    return p, sock


passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def main():
    N = 500
    capture(os.path.join(tmp, "a.pcap"), N)
    capture(os.path.join(tmp, "b.pcap"), 0)
    pa, sa = start("a", os.path.join(tmp, "a.pcap"))
    pb_, sb = start("b", os.path.join(tmp, "b.pcap"))
    try:
        sub = Conn(sa)
        sub.send(pb.CtlRequest.SYNC_SUBSCRIBE)
        r = pb.CtlReply()
        r.ParseFromString(sub.frame())
        check("subscribe_accepted", r.status == 0, r.error)
        events, begun, ended = [], False, False
        deadline = time.time() + 20
        while not ended and time.time() < deadline:
            m = pb.SyncStream()
            m.ParseFromString(sub.frame())
            begun |= m.bulk_begin
            ended |= m.bulk_end
            events.extend(m.events.events)
        check("bulk_dump_complete", begun and ended and len(events) == 2 * N,
              f"begin={begun} end={ended} events={len(events)}")
        check("bulk_events_are_creates",
              all(e.type == pb.SessionEvent.CREATE for e in events))

        b = Conn(sb)
        for i in range(0, len(events), 300):
            batch = pb.EventBatch(events=events[i:i + 300])
            r = b.call(pb.CtlRequest.SYNC_APPLY, events=batch)
            assert r.count == len(batch.events), r
        da = Conn(sa).call(pb.CtlRequest.SYNC_DIGEST).digest
        db = Conn(sb).call(pb.CtlRequest.SYNC_DIGEST).digest
        check("tables_converge_digest", da.xor_hash == db.xor_hash and da.sessions == db.sessions == 2 * N,
              f"{da} {db}")
        check("standby_copies_are_peer_origin", db.peer == 2 * N and db.local == 0, str(db))
        st = Conn(sb).call(pb.CtlRequest.SESSIONS, filter=pb.Filter(origin=2), limit=5)
        s0 = st.sessions[0]
        check("peer_session_keeps_state_and_timeout",
              s0.state in (pb.SS_TCP_ESTABLISHED, pb.SS_UDP) and 0 < s0.remaining_ms <= 1800000 and (s0.flags & 8))

        # B subscribed by a second "syncd": peer sessions are never sent back
        subb = Conn(sb)
        subb.send(pb.CtlRequest.SYNC_SUBSCRIBE)
        subb.frame()
        got = 0
        while True:
            m = pb.SyncStream()
            m.ParseFromString(subb.frame())
            got += len(m.events.events)
            if m.bulk_end:
                break
        check("peer_sessions_never_resent", got == 0, f"{got} events")

        # a clear on A: DELETE events on the live stream, applied on B
        r = Conn(sa).call(pb.CtlRequest.CLEAR, filter=pb.Filter(proto=17))
        check("clear_on_active", r.count == N, str(r.count))
        dels = []
        deadline = time.time() + 10
        while len(dels) < N and time.time() < deadline:
            m = pb.SyncStream()
            m.ParseFromString(sub.frame())
            dels.extend(e for e in m.events.events if e.type == pb.SessionEvent.DELETE)
        check("delete_events_streamed", len(dels) == N, str(len(dels)))
        b.call(pb.CtlRequest.SYNC_APPLY, events=pb.EventBatch(events=dels))
        db = Conn(sb).call(pb.CtlRequest.SYNC_DIGEST).digest
        da = Conn(sa).call(pb.CtlRequest.SYNC_DIGEST).digest
        check("converge_after_delete", db.sessions == N and da.xor_hash == db.xor_hash, f"{da} {db}")

        r = Conn(sb).call(pb.CtlRequest.PROMOTE)
        db = Conn(sb).call(pb.CtlRequest.SYNC_DIGEST).digest
        check("promote_makes_local", db.local == N and db.peer == 0 and r.count == N, f"{db}")
        r = Conn(sb).call(pb.CtlRequest.ROLE_SET, role="active")
        check("role_set", Conn(sb).call(pb.CtlRequest.STATUS).node.role == "active")
        # garbage in an apply is refused, not installed
        bad = pb.SessionEvent(type=pb.SessionEvent.CREATE, session=pb.Session(
            id=1, key=pb.SessionKey(family=9, proto=6, addr0=b"x", addr1=b"y", port0=1, port1=2, zone=1),
            state=pb.SS_TCP_ESTABLISHED, flags=0, rule=0, mode=2, pkts0=0, pkts1=0, bytes0=0, bytes1=0,
            remaining_ms=1000))
        r = b.call(pb.CtlRequest.SYNC_APPLY, events=pb.EventBatch(events=[bad]))
        check("malformed_peer_event_refused", r.count == 0 and "refused 1" in r.error, r.error)
        # an event that is not well-formed between two good ones (the node
        # reads SYNC_APPLY in place): the good ones applied, it refused, the
        # connection still answers
        def ev(i):
            return pb.SessionEvent(type=pb.SessionEvent.CREATE, session=pb.Session(
                id=900000 + i, key=pb.SessionKey(family=4, proto=17, addr0=bytes([10, 9, 9, i]) + bytes(12),
                                                 addr1=bytes([10, 2, 0, 53]) + bytes(12), port0=5000 + i,
                                                 port1=53, zone=0x0102),
                state=pb.SS_UDP, flags=0, rule=0, mode=2, pkts0=1, pkts1=0, bytes0=60, bytes1=0,
                remaining_ms=60000)).SerializeToString()

        def ld(field, data):  # a length-delimited field (lengths < 128 here)
            assert len(data) < 128
            return bytes([field << 3 | 2, len(data)]) + data
        broken = ld(2, b"\x08\x01\x12\x10\x08")  # Session whose key runs past its end
        batch_raw = ld(1, ev(1)) + ld(1, broken) + ld(1, ev(2))
        head = pb.CtlRequest(seq=77, cmd=pb.CtlRequest.SYNC_APPLY, source="sync_test").SerializeToString()
        raw = head + bytes([7 << 3 | 2]) + bytes([len(batch_raw) & 0x7f | 0x80, len(batch_raw) >> 7]) + batch_raw
        b.s.sendall(struct.pack("!I", len(raw)) + raw)
        r = pb.CtlReply()
        r.ParseFromString(b.frame())
        st = b.call(pb.CtlRequest.STATUS)
        check("broken_event_between_good_ones", r.seq == 77 and r.status == 0 and r.count == 2
              and "refused 1" in r.error and st.node.sessions >= 2, f"{r} {st.node.sessions}")
    finally:
        for p in (pa, pb_):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
