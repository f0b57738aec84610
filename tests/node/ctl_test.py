#!/usr/bin/python3
"""tandem-node's control socket, offline: replay a capture made here with
scapy (sessions of several rules and modes, all still live at its end),
keep serving (--serve), and drive the socket with CtlRequest messages:
status, sessions with filters, count, clear, stats, policy, config check /
push / rollback with revalidation, an invalid push, reload = flush, SIGHUP.

Usage: ctl_test.py TANDEM_NODE SOURCE_ROOT   (no root needed)
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
tmp = tempfile.mkdtemp(prefix="tandem-ctl-")
subprocess.run(["protoc", f"--proto_path={SRC}/proto", f"--python_out={tmp}",
                f"{SRC}/proto/tandem.proto"], check=True)
sys.path.insert(0, tmp)
import tandem_pb2 as pb  # noqa: E402
from scapy.all import IP, TCP, UDP, ICMP, Ether, Raw, wrpcap  # noqa: E402

SOCK = os.path.join(tmp, "node.sock")
C, WEB, LOOSE, DNS, SHORT = "10.1.0.2", "10.2.0.10", "10.2.0.12", "10.2.0.53", "10.2.0.40"


def with_socket(text, sock):
    """The example config with its control socket moved to sock."""
    old = 'socket = "/run/tandem/fw1/node.sock";'
    assert old in text
    return text.replace(old, f'socket = "{sock}";')


def capture(path):
    pk, t = [], 1_700_000_000.0

    def at(dt, p):
        e = Ether() / p
        e.time = t + dt
        pk.append(e)
    # normal TCP (web), every packet seen
    at(0, IP(src=C, dst=WEB) / TCP(sport=1000, dport=80, flags="S", seq=10))
    at(0.1, IP(src=WEB, dst=C) / TCP(sport=80, dport=1000, flags="SA", seq=50, ack=11))
    at(0.2, IP(src=C, dst=WEB) / TCP(sport=1000, dport=80, flags="A", seq=11, ack=51))
    # loose mid-stream TCP (web-loose)
    at(1, IP(src=C, dst=LOOSE) / TCP(sport=1001, dport=80, flags="A", seq=500, ack=600) / Raw(b"x" * 10))
    # ICMP reply without request (ping-loose), echo request (ping, strict)
    at(2, IP(src=C, dst=LOOSE) / ICMP(type=0, id=9))
    at(2.1, IP(src=C, dst=WEB) / ICMP(type=8, id=10))
    # UDP: dns (60 s) and short-udp (10 s)
    at(3, IP(src=C, dst=DNS) / UDP(sport=1002, dport=53) / Raw(b"q"))
    at(3.1, IP(src=C, dst=SHORT) / UDP(sport=1003, dport=9000) / Raw(b"q"))
    at(4, IP(src=C, dst=WEB) / TCP(sport=1004, dport=443, flags="S", seq=10))
    wrpcap(path, pk)


def call(req, expect_ok=True):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(SOCK)
    b = req.SerializeToString()
    s.sendall(struct.pack("!I", len(b)) + b)
    data = b""
    while len(data) < 4:
        data += s.recv(4096)
    n = struct.unpack("!I", data[:4])[0]
    while len(data) < 4 + n:
        data += s.recv(65536)
    s.close()
    r = pb.CtlReply()
    r.ParseFromString(data[4:4 + n])
    if expect_ok and r.status != 0:
        raise AssertionError(f"{req.cmd}: status {r.status} {r.error}")
    return r


seq = 0


def req(cmd, **kw):
    global seq
    seq += 1
    return pb.CtlRequest(seq=seq, cmd=cmd, source="ctl_test", **kw)


def count(**f):
    return call(req(pb.CtlRequest.COUNT, filter=pb.Filter(**f))).count


def addr(a):
    return bytes(map(int, a.split("."))) + bytes(12)


def ended(push):
    return {c.name: c.value for c in push.ended if c.value}


passed = failed = 0


def case(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL {name}: {e!r}", flush=True)


def main():
    cap = os.path.join(tmp, "c.pcap")
    capture(cap)
    conf_text = open(f"{SRC}/conf/tandem.conf").read()
    conf = os.path.join(tmp, "node.conf")
    with open(conf, "w") as f:
        f.write(with_socket(conf_text, SOCK))
    log = open(os.path.join(tmp, "node.log"), "w")
    node = subprocess.Popen([NODE, "--config", conf, "--pcap", cap, "--serve"],
                            stdout=log, stderr=log)
    try:
        deadline = time.time() + 10
        while not os.path.exists(SOCK) and time.time() < deadline:
            time.sleep(0.05)
        run_cases(conf, conf_text, node)
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            rc = node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
            rc = -9
        global passed, failed
        if rc == 0 and not os.path.exists(SOCK):
            passed += 1
            print("ok   clean_exit_on_sigterm_removes_socket")
        else:
            failed += 1
            print(f"FAIL clean_exit_on_sigterm_removes_socket: rc={rc}")
            print(open(os.path.join(tmp, "node.log")).read())
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def run_cases(conf, conf_text, node):
    def status():
        st = call(req(pb.CtlRequest.STATUS)).node
        assert st.node_name == "fw1" and st.node_id == 1 and st.rules == 14, st
        assert st.sessions == 7, st.sessions
        assert st.capacity == 262144
    case("status", status)

    def sessions_and_filters():
        r = call(req(pb.CtlRequest.SESSIONS))
        assert r.count == 7 and len(r.sessions) == 7 and not r.truncated
        r = call(req(pb.CtlRequest.SESSIONS, limit=2))
        assert len(r.sessions) == 2 and r.truncated and r.count == 7
        assert count(proto=6) == 3
        assert count(proto=17) == 2
        assert count(dport=80) == 2
        assert count(proto=6, dport=443) == 1
        assert count(sport=1002) == 1
        assert count(dst=addr(LOOSE), dst_len=32, dst_family=4) == 2
        assert count(src=addr("10.1.0.0"), src_len=16, src_family=4) == 7
        assert count(src=addr("10.9.0.0"), src_len=16, src_family=4) == 0
        assert count(rule="web") == 2
        assert count(state=pb.SS_TCP_ESTABLISHED) == 2
        assert count(state=pb.SS_TCP_SYN_SENT) == 1
        assert count(origin=2) == 0
        web = [s for s in call(req(pb.CtlRequest.SESSIONS, filter=pb.Filter(dport=80, rule="web"))).sessions]
        assert len(web) == 1 and web[0].state == pb.SS_TCP_ESTABLISHED and web[0].pkts0 == 2 and web[0].pkts1 == 1
        assert count(id=web[0].id) == 1
        r = call(req(pb.CtlRequest.COUNT, filter=pb.Filter(rule="nope")), expect_ok=False)
        assert r.status == 404 and "nope" in r.error
    case("sessions_with_filters", sessions_and_filters)

    def stats_and_policy():
        c = {x.name: x.value for x in call(req(pb.CtlRequest.STATS)).counters}
        assert c["packets"] == 9 and c["created.tcp"] == 3 and c["sessions"] == 7, c
        t = call(req(pb.CtlRequest.POLICY)).text
        assert t.startswith("policy hash=") and "rule index=0 name=web" in t
        assert SOCK in call(req(pb.CtlRequest.CONFIG_SHOW)).text
    case("stats_policy_config_show", stats_and_policy)

    h0 = call(req(pb.CtlRequest.STATUS)).node.policy_hash
    # strict everywhere loose was, no dns rule, web denied
    new = (conf_text.replace('tracking = "loose"', 'tracking = "strict"')
           .replace('{ name = "dns"; from = "trust";', '{ name = "dns"; from = "dmz";')
           .replace('service = "web";\n    action = "accept";', 'service = "web";\n    action = "drop";', 1))
    assert new.count('"strict"') > conf_text.count('"strict"') and 'from = "dmz";' in new \
        and 'action = "drop"; tracking = "normal"' in new, "config edits did not apply"

    def invalid_push_changes_nothing():
        bad = conf_text.replace("tcp_initial = 20", "tcp_initial = 3")
        if bad == conf_text:
            bad = conf_text + "\ntimeouts_typo = 1;\n"
        r = call(req(pb.CtlRequest.CONFIG_PUSH, config_text=bad), expect_ok=False)
        assert r.status == 422 and r.error.startswith("<string>:"), (r.status, r.error)
        assert call(req(pb.CtlRequest.STATUS)).node.policy_hash == h0
        assert count() == 7
    case("invalid_push_refused_whole", invalid_push_changes_nothing)

    def check_is_dry_run():
        r = call(req(pb.CtlRequest.CONFIG_CHECK, config_text=new)).push
        assert r.dry_run and r.hash_old == h0 and r.hash_new != h0
        e = ended(r)
        # web: denied (2: port 80 established + 443 syn); loose TCP mid-stream
        # -> strict-unseen; ICMP reply without request -> strict-no-request;
        # dns rule gone -> no-rule
        assert e == {"denied": 2, "strict-unseen": 1, "strict-no-request": 1, "no-rule": 1}, e
        assert r.kept == 2, r.kept
        assert count() == 7 and call(req(pb.CtlRequest.STATUS)).node.policy_hash == h0
    case("config_check_dry_run", check_is_dry_run)

    def push_revalidates_and_rollback():
        r = call(req(pb.CtlRequest.CONFIG_PUSH, config_text=new)).push
        assert not r.dry_run and r.kept == 2 and sum(c.value for c in r.ended) == 5
        assert count() == 2
        h1 = call(req(pb.CtlRequest.STATUS)).node.policy_hash
        assert h1 == r.hash_new != h0
        c = {x.name: x.value for x in call(req(pb.CtlRequest.STATS)).counters}
        assert c["ended.policy"] == 5, c
        r = call(req(pb.CtlRequest.CONFIG_ROLLBACK)).push
        assert r.hash_new == h0 and r.kept == 2
        assert call(req(pb.CtlRequest.STATUS)).node.policy_hash == h0
        # a second rollback returns to the pushed policy
        r = call(req(pb.CtlRequest.CONFIG_ROLLBACK)).push
        assert r.hash_new == h1
        call(req(pb.CtlRequest.CONFIG_ROLLBACK))
    case("push_revalidates_then_rollback", push_revalidates_and_rollback)

    def timeouts_reapplied():
        before = [s for s in call(req(pb.CtlRequest.SESSIONS)).sessions]
        assert len(before) == 2
        # ping (icmp 60 s) and short-udp (10 s) remain: give icmp 300 s
        t = conf_text.replace("icmp = 60;", "icmp = 300;")
        assert t != conf_text
        call(req(pb.CtlRequest.CONFIG_PUSH, config_text=t))
        after = {s.id: s for s in call(req(pb.CtlRequest.SESSIONS)).sessions}
        for s in before:
            a = after[s.id]
            if s.key.proto == 1:
                assert a.remaining_ms == s.remaining_ms + 240000, (s.remaining_ms, a.remaining_ms)
                assert a.timeout_s == 300
            else:
                assert a.remaining_ms == s.remaining_ms
    case("per_rule_timeouts_reapplied", timeouts_reapplied)

    def clear_by_filter():
        r = call(req(pb.CtlRequest.CLEAR, filter=pb.Filter(proto=17)))
        assert r.count == 1 and count() == 1
        c = {x.name: x.value for x in call(req(pb.CtlRequest.STATS)).counters}
        assert c["ended.cleared"] == 1
    case("clear_by_filter", clear_by_filter)

    def flush_reload_and_sighup():
        # SIGHUP re-reads the file: make it reload = flush
        text = open(conf).read()
        assert 'reload = "revalidate";' in text
        with open(conf, "w") as f:
            f.write(text.replace('reload = "revalidate";', 'reload = "flush";'))
        node.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline and count() != 0:
            time.sleep(0.05)
        assert count() == 0, "sessions left after the flush reload"
    case("sighup_reload_flush", flush_reload_and_sighup)


main()
