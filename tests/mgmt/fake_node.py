#!/usr/bin/python3
"""fake_node.py - a stand-in for tandem-node's ctl socket, for the
tandem-mgmt tests: 4-byte big-endian length + CtlRequest / CtlReply
(proto/tandem.proto), any number of connections, requests answered in
order.

It holds a generated session table (--sessions N), filters it like the
node (src/dst = initiator/responder prefixes, sport/dport = initiator /
responder ports, iface = either direction's ingress), clears, counts,
keeps a config with push / check / rollback (a text containing INVALID is
refused with 422 "FILE:LINE: SETTING: reason"; one containing DROPALL
ends every session as no-rule), and logs every request as a JSON line
(--log) so tests can check what reached the node and what did not.

Options for the limits tests: --slow CMD=MS delays the replies of one
command; --huge-text N makes POLICY answer a single N-byte line.

With --syncd it plays tandem-syncd's control socket instead (SyncdRequest /
SyncdReply): SHOW_CLUSTER answers a two-node cluster, FAILOVER switches
this node to standby (or, with --failover-refuse, answers 409).

Must never: answer a request it could not parse (it closes that
connection instead), or outlive its parent test (it exits on SIGTERM).
"""
import argparse
import hashlib
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--socket", required=True)
ap.add_argument("--pb-dir", required=True)
ap.add_argument("--sessions", type=int, default=6)
ap.add_argument("--log")
ap.add_argument("--slow", action="append", default=[])
ap.add_argument("--huge-text", type=int, default=0)
ap.add_argument("--syncd", action="store_true")
ap.add_argument("--failover-refuse", action="store_true")
args = ap.parse_args()

sys.path.insert(0, args.pb_dir)
import tandem_pb2 as pb  # noqa: E402

lock = threading.Lock()
slow = {}
for s in args.slow:
    k, v = s.split("=")
    slow[k] = int(v) / 1000.0

CONFIG0 = """# fake node config
node = { name = "fw-test"; id = 1; };
rules = ( { name = "web"; action = "accept"; } );
.hidden = "a line that starts with a dot";
"""


def addr16(a):
    ip = ipaddress.ip_address(a)
    b = ip.packed
    return b + bytes(16 - len(b)), 4 if ip.version == 4 else 6


def make_sessions(n):
    out = []
    states = [pb.SS_TCP_ESTABLISHED, pb.SS_TCP_SYN_SENT, pb.SS_UDP_REPLIED,
              pb.SS_ICMP, pb.SS_TCP_WAIT, pb.SS_UDP]
    for i in range(n):
        kind = i % 6
        s = pb.Session()
        s.id = (1 << 48) | (i % 2) << 40 | (i + 1)
        k = s.key
        if kind == 3:  # icmp echo
            proto, src, dst, sp, dp = 1, "10.1.0.%d" % (2 + i % 200), "10.2.0.2", 77, 77
        elif kind == 5:  # udp over IPv6
            proto, src, dst, sp, dp = 17, "fd00:1::%x" % (2 + i % 200), "fd00:2::53", 40000 + i % 20000, 53
        elif kind == 2:
            proto, src, dst, sp, dp = 17, "10.1.0.%d" % (2 + i % 200), "10.2.0.53", 30000 + i % 30000, 53
        else:
            proto, src, dst = 6, "10.1.0.%d" % (2 + i % 200), "10.2.0.2"
            sp, dp = 40000 + i % 20000, 443 if kind == 1 else 80
        a_src, fam = addr16(src)
        a_dst, _ = addr16(dst)
        # canonical key: lower (addr, port) is side 0
        init_side1 = (a_src, sp) > (a_dst, dp)
        k.family, k.proto, k.zone = fam, proto, (1 << 8) | 2
        if init_side1:
            k.addr0, k.port0, k.addr1, k.port1 = a_dst, dp, a_src, sp
        else:
            k.addr0, k.port0, k.addr1, k.port1 = a_src, sp, a_dst, dp
        s.state = states[kind]
        s.flags = (1 if init_side1 else 0) | (0x08 if i % 5 == 4 else 0) | 0x06
        s.rule = 0 if dp != 53 else 1
        s.rule_name = "web" if dp != 53 else "dns"
        s.mode = 2
        s.pkts0, s.pkts1, s.bytes0, s.bytes1 = 12 + i, 10, 1100, 9000
        s.remaining_ms = 1793500
        s.age_s, s.iface0, s.iface1 = 7, "veth-c", "veth-s"
        s.shard, s.timeout_s, s.wscale = i % 2, 1800, 0x77
        if proto == 6:
            s.tcp0.end, s.tcp0.maxend, s.tcp0.maxwin = 1000, 2000, 65535
            s.tcp1.end, s.tcp1.maxend, s.tcp1.maxwin = 3000, 4000, 29200
        out.append(s)
    return out


sessions = make_sessions(args.sessions)
config_text = CONFIG0
config_prev = None
counters = {"verdict.accept": 100, "verdict.drop": 3, "drop.no-rule": 2,
            "drop.tcp-not-syn": 1, "sessions.established": 1, "created.tcp": 4,
            "ended.expired": 9, "ageing.active": 0}
start = time.monotonic()


def chash(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def endpoints(s):
    k = s.key
    if s.flags & 1:
        return (k.addr1, k.port1), (k.addr0, k.port0)
    return (k.addr0, k.port0), (k.addr1, k.port1)


def in_prefix(addr, fam, pfx, plen, pfam):
    if fam != pfam:
        return False
    n = 4 if fam == 4 else 16
    a = int.from_bytes(addr[:n], "big")
    p = int.from_bytes(pfx[:n], "big")
    bits = n * 8
    mask = ((1 << plen) - 1) << (bits - plen) if plen else 0
    return (a & mask) == (p & mask)


def match(s, f):
    if f is None:
        return True
    (sa, sp), (da, dp) = endpoints(s)
    k = s.key
    if f.HasField("id") and s.id != f.id:
        return False
    if f.HasField("proto") and k.proto != f.proto:
        return False
    if f.HasField("src") and not in_prefix(sa, k.family, f.src, f.src_len, f.src_family):
        return False
    if f.HasField("dst") and not in_prefix(da, k.family, f.dst, f.dst_len, f.dst_family):
        return False
    if f.HasField("sport") and sp != f.sport:
        return False
    if f.HasField("dport") and dp != f.dport:
        return False
    if f.HasField("iface") and f.iface not in (s.iface0, s.iface1):
        return False
    if f.HasField("rule") and s.rule_name != f.rule:
        return False
    if f.HasField("state") and s.state != f.state:
        return False
    if f.HasField("origin") and (2 if s.flags & 0x08 else 1) != f.origin:
        return False
    return True


def log_req(req):
    if not args.log:
        return
    entry = {"cmd": pb.CtlRequest.Cmd.Name(req.cmd), "seq": req.seq, "source": req.source}
    if req.HasField("filter"):
        f = req.filter
        entry["filter"] = {fd.name: (v.hex() if isinstance(v, bytes) else v)
                           for fd, v in f.ListFields()}
    if req.HasField("limit"):
        entry["limit"] = req.limit
    if req.HasField("config_text"):
        entry["config_len"] = len(req.config_text)
    with open(args.log, "a") as fh:
        fh.write(json.dumps(entry) + "\n")


def push_result(new_text, dry):
    global sessions
    r = pb.PushResult()
    r.hash_old, r.hash_new = chash(config_text), chash(new_text)
    ended = len(sessions) if "DROPALL" in new_text else 0
    r.kept = len(sessions) - ended
    c = r.ended.add()
    c.name, c.value = "no-rule", ended
    c = r.ended.add()
    c.name, c.value = "mode-strict", 0
    r.dry_run, r.elapsed_ms, r.flushed = dry, 3, False
    if not dry and ended:
        sessions = []
    return r


def handle(req):
    global sessions, config_text, config_prev
    rep = pb.CtlReply()
    rep.seq = req.seq
    rep.status = 0
    cmd = req.cmd
    f = req.filter if req.HasField("filter") else None
    C = pb.CtlRequest
    if cmd == C.STATUS:
        n = rep.node
        n.node_name, n.node_id = "fw-test", 1
        n.uptime_s = int(time.monotonic() - start)
        n.shards, n.sessions, n.capacity = 2, len(sessions), 262144
        n.policy_hash, n.rules, n.role = chash(config_text), 2, "active"
        n.version, n.config_path = "0.1.0", "/etc/tandem/tandem.conf"
    elif cmd == C.SESSIONS:
        limit = req.limit if req.HasField("limit") and req.limit else 1000
        m = [s for s in sessions if match(s, f)]
        for s in m[:limit]:
            rep.sessions.add().CopyFrom(s)
        rep.truncated = len(m) > limit
    elif cmd == C.COUNT:
        rep.count = sum(1 for s in sessions if match(s, f))
    elif cmd == C.CLEAR:
        keep = [s for s in sessions if not match(s, f)]
        rep.count = len(sessions) - len(keep)
        sessions = keep
    elif cmd == C.STATS:
        for name, v in counters.items():
            c = rep.counters.add()
            c.name, c.value = name, v
    elif cmd == C.POLICY:
        if args.huge_text:
            rep.text = "x" * args.huge_text
        else:
            rep.text = ("rule index=0 name=web action=accept mode=normal\n"
                        "rule index=1 name=dns action=accept mode=loose\n"
                        "OK this line is not a record\n")
    elif cmd == C.CONFIG_SHOW:
        rep.text = config_text
    elif cmd in (C.CONFIG_PUSH, C.CONFIG_CHECK):
        text = req.config_text
        if "INVALID" in text:
            line = text[:text.index("INVALID")].count("\n") + 1
            rep.status = 422
            rep.error = "push:%d: rules.[0].action: unknown action 'INVALID' (accept, drop, reject)" % line
        else:
            rep.push.CopyFrom(push_result(text, cmd == C.CONFIG_CHECK))
            if cmd == C.CONFIG_PUSH:
                config_prev, config_text = config_text, text
    elif cmd == C.CONFIG_ROLLBACK:
        if config_prev is None:
            rep.status = 409
            rep.error = "no previous config to roll back to"
        else:
            rep.push.CopyFrom(push_result(config_prev, False))
            config_prev, config_text = None, config_prev
    else:
        rep.status = 400
        rep.error = "unknown command"
    return rep


syncd_role = "active"


def handle_syncd(req):
    global syncd_role
    rep = pb.SyncdReply()
    rep.seq, rep.status = req.seq, 0
    if req.cmd == pb.SyncdRequest.SHOW_CLUSTER:
        cs = rep.cluster
        cs.node_id, cs.cluster_id, cs.mode, cs.role = 1, 7, "election", syncd_role
        cs.epoch, cs.ready, cs.priority, cs.preempt = 3, True, 100, False
        cs.role_age_ms, cs.role_reason, cs.node_link = 5000, "election won", "up"
        cs.local_sessions, cs.peer_sessions, cs.apply_pending = 12, 3, 0
        cs.vips.extend(["10.1.0.1/16 veth-c", "10.2.0.1/16 veth-s"])
        cs.policy_hash = "1ea7c783f688c65f"
        p = cs.peers.add()
        p.node_id, p.address, p.link = 2, "10.9.0.2:7071", "up"
        for name, alive in (("sync", True), ("data", False)):
            ps = p.paths.add()
            ps.path, ps.alive = name, alive
            if alive:
                ps.last_rx_age_ms = 120
        p.role, p.priority, p.epoch, p.ready = "standby", 50, 3, True
        p.events_sent, p.events_received = 1000, 20
        p.frames_sent, p.frames_received, p.frames_refused = 100, 10, 1
        r = p.refused.add()
        r.name, r.value = "bad-tag", 1
        p.lag_events, p.lag_ms, p.ack_p50_us, p.ack_p99_us = 2, 4, 150, 900
        p.bulk_tx.state, p.bulk_tx.sent, p.bulk_tx.total = "done", 12, 12
        p.applied_seq, p.acked_seq, p.backlog_bytes = 10, 100, 0
        p.connects, p.disconnects, p.link_up_ms = 1, 0, 60000
        c = cs.counters.add()
        c.name, c.value = "node.reconnects", 0
    elif req.cmd == pb.SyncdRequest.FAILOVER:
        if args.failover_refuse:
            rep.status, rep.error = 409, "no ready standby to hand over to"
        else:
            syncd_role = "standby"
            rep.failover_ms, rep.role = 850, "standby"
    else:
        rep.status, rep.error = 400, "unknown command"
    return rep


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            return None
        b += chunk
    return b


def serve(c):
    try:
        while True:
            h = recv_exact(c, 4)
            if h is None:
                return
            (n,) = struct.unpack(">I", h)
            body = recv_exact(c, n)
            if body is None:
                return
            req = pb.SyncdRequest() if args.syncd else pb.CtlRequest()
            req.ParseFromString(body)
            name = type(req).Cmd.Name(req.cmd)
            if name in slow:
                time.sleep(slow[name])
            with lock:
                if args.syncd:
                    rep = handle_syncd(req)
                else:
                    log_req(req)
                    rep = handle(req)
            out = rep.SerializeToString()
            c.sendall(struct.pack(">I", len(out)) + out)
    except Exception as e:  # a test may kill the peer at any time
        print("fake_node: connection ended:", e, flush=True)
    finally:
        c.close()


def main():
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.socket + ".tmp")
    os.rename(args.socket + ".tmp", args.socket)  # appears when ready
    srv.listen(16)
    print("fake_node: listening on", args.socket, flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
