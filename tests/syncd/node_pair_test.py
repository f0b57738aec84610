#!/usr/bin/python3
"""tandem-syncd with two real tandem-node processes (offline: --pcap
CAPTURE --serve, no root): the contract between syncd and the node.

Node fw1 replays a capture with TCP and UDP sessions, node fw2 one with a
single UDP session of its own; both keep serving their ctl sockets. With a
syncd each (node fw1 preferred): fw1's sessions appear on fw2 as peer
sessions and fw2's on fw1 (SYNC_SUBSCRIBE dump -> peer link -> SYNC_APPLY);
a SIGKILLed fw1 syncd makes fw2's syncd PROMOTE them (fw2's node: local,
role active); a config pushed to fw1's node reaches fw2's with fw2's own
identity and the same policy hash.

Usage: node_pair_test.py TANDEM_NODE TANDEM_SYNCD SOURCE_ROOT
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_node  # noqa: E402
from harness import KEY_HEX, free_port, wait_for  # noqa: E402

NODE, SYNCD, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
tmp = tempfile.mkdtemp(prefix="tandem-nodepair-")
pb = fake_node.load_proto(SRC, tmp)
from scapy.all import IP, TCP, UDP, Ether, Raw, wrpcap  # noqa: E402

C, WEB, DNS = "10.1.0.2", "10.2.0.10", "10.2.0.53"


def capture(path, node):
    pk, t = [], time.time() - 5  # recent: the sessions are young when served

    def at(dt, p):
        e = Ether() / p
        e.time = t + dt
        pk.append(e)
    if node == 1:
        for i in range(5):
            sp = 2000 + i
            at(i * 0.01, IP(src=C, dst=WEB) / TCP(sport=sp, dport=80, flags="S", seq=10))
            at(i * 0.01 + 0.001, IP(src=WEB, dst=C) / TCP(sport=80, dport=sp, flags="SA", seq=50, ack=11))
            at(i * 0.01 + 0.002, IP(src=C, dst=WEB) / TCP(sport=sp, dport=80, flags="A", seq=11, ack=51))
        for i in range(3):
            at(0.1 + i * 0.01, IP(src=C, dst=DNS) / UDP(sport=3000 + i, dport=53) / Raw(b"q"))
    else:
        at(0, IP(src=C, dst=DNS) / UDP(sport=4000, dport=53) / Raw(b"q"))
    wrpcap(path, pk)


def node_conf(node, sock):
    text = open(f"{SRC}/conf/tandem.conf").read()
    text = text.replace('socket = "/run/tandem/fw1/node.sock";', f'socket = "{sock}";')
    if node == 2:
        text = text.replace('name = "fw1";', 'name = "fw2";').replace("  id = 1;", "  id = 2;")
    path = f"{tmp}/node{node}.conf"
    with open(path, "w") as f:
        f.write(text)
    return path


def call(sock, cmd, **kw):
    q = pb.CtlRequest(seq=1, cmd=cmd, source="node_pair_test", **kw)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    b = q.SerializeToString()
    s.sendall(struct.pack("!I", len(b)) + b)
    d = fake_node.recv_frame(s)
    s.close()
    r = pb.CtlReply()
    r.ParseFromString(d)
    return r


def ids(sock, origin):
    r = call(sock, pb.CtlRequest.SESSIONS, filter=pb.Filter(origin=origin), limit=1000)
    return {s.id for s in r.sessions}


def main():
    procs = {}
    ports = {1: free_port(), 2: free_port()}
    nsock = {n: f"{tmp}/node{n}.sock" for n in (1, 2)}
    ssock = {n: f"{tmp}/syncd{n}.sock" for n in (1, 2)}
    ok = False
    try:
        for n in (1, 2):
            cap = f"{tmp}/n{n}.pcap"
            capture(cap, n)
            log = open(f"{tmp}/node{n}.log", "w")
            procs[f"node{n}"] = subprocess.Popen(
                [NODE, "--config", node_conf(n, nsock[n]), "--pcap", cap, "--serve"],
                stdout=log, stderr=log)
            wait_for(lambda: os.path.exists(nsock[n]), 10, f"node {n} ctl socket")
        local1 = ids(nsock[1], 1)
        local2 = ids(nsock[2], 1)
        assert len(local1) == 8 and len(local2) == 1, (local1, local2)
        for n in (1, 2):
            o = 3 - n
            with open(f"{tmp}/syncd{n}.conf", "w") as f:
                f.write(f"""node_id = {n};
cluster = {{ id = 3; key = "{KEY_HEX}"; }};
node_socket = "{nsock[n]}";
control_socket = "{ssock[n]}";
state_file = "{tmp}/syncd{n}.state";
sync = {{ listen = "127.0.0.1"; port = {ports[n]}; }};
peers = ( {{ id = {o}; address = "127.0.0.1"; port = {ports[o]}; }} );
role = {{ priority = {200 if n == 1 else 100}; }};
""")
            log = open(f"{tmp}/syncd{n}.log", "w")
            procs[f"syncd{n}"] = subprocess.Popen([SYNCD, "-c", f"{tmp}/syncd{n}.conf"],
                                                  stdout=log, stderr=log)
        wait_for(lambda: ids(nsock[2], 2) == local1, 10, "fw1's sessions on fw2")
        # fw2's session reaches fw1 as a peer copy; when it arrives before
        # fw1 wins the first election, the takeover promotes it to local
        wait_for(lambda: local2 <= ids(nsock[1], 0) - local1, 10, "fw2's session on fw1")
        # fw1 elects itself once fw2's bulk is applied (its readiness
        # gate), which the session being visible on fw1 does not wait for
        wait_for(lambda: call(nsock[1], pb.CtlRequest.STATUS).node.role == "active", 3,
                 "fw1's node active")
        st = call(nsock[2], pb.CtlRequest.STATUS).node
        assert st.role == "standby", st
        # fw2's own session stayed local on fw2 (not sent back by fw1)
        assert ids(nsock[2], 2) == local1 and local2 <= ids(nsock[2], 1)
        d1 = call(nsock[1], pb.CtlRequest.SYNC_DIGEST).digest
        d2 = call(nsock[2], pb.CtlRequest.SYNC_DIGEST).digest
        assert d1.sessions == d2.sessions == 9 and d1.xor_hash == d2.xor_hash, (d1, d2)
        print(f"node_pair_test: tables replicated both ways, digests equal ({d1.xor_hash:016x})")

        # a config pushed on fw1's node reaches fw2's, identity kept
        text = call(nsock[1], pb.CtlRequest.CONFIG_SHOW).text
        new = text.replace("udp = 60;", "udp = 90;", 1).replace(
            'name = "dns";', 'name = "dns2";', 1)
        assert new != text
        r = call(nsock[1], pb.CtlRequest.CONFIG_PUSH, config_text=new)
        assert r.status == 0, r.error
        h1 = call(nsock[1], pb.CtlRequest.STATUS).node.policy_hash
        wait_for(lambda: call(nsock[2], pb.CtlRequest.STATUS).node.policy_hash == h1, 10,
                 "the same policy hash on fw2")
        st = call(nsock[2], pb.CtlRequest.STATUS).node
        assert st.node_name == "fw2" and st.node_id == 2, st
        assert nsock[2] in call(nsock[2], pb.CtlRequest.CONFIG_SHOW).text
        print(f"node_pair_test: config replicated, policy {h1} on both, fw2 kept its identity")

        # the active's syncd dies: fw2 promotes fw1's sessions
        procs.pop("syncd1").kill()
        wait_for(lambda: call(nsock[2], pb.CtlRequest.STATUS).node.role == "active", 3,
                 "fw2 active")
        wait_for(lambda: ids(nsock[2], 1) == local1 | local2, 3, "fw1's sessions local on fw2")
        assert not ids(nsock[2], 2)
        print("node_pair_test: takeover promoted every session")
        ok = True
    finally:
        rcs = {}
        for name, p in procs.items():
            p.send_signal(signal.SIGTERM)
            try:
                rcs[name] = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                rcs[name] = "killed"
        if any(rc != 0 for rc in rcs.values()):
            ok = False
            print("exit codes", rcs)
        if not ok:
            for name in ("node1", "node2", "syncd1", "syncd2"):
                try:
                    print(f"--- {name}\n" + open(f"{tmp}/{name}.log").read()[-2500:])
                except OSError:
                    pass
    print("node_pair_test: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
