#!/usr/bin/python3
"""Virtual addresses move with the role (root, network namespaces).

Three namespaces: two nodes (tsdv-a, tsdv-b), each with `lan0` on a bridge
in an observer namespace (tsdv-obs) that holds 10.1.0.100 / fd00:1::100.
Both syncd have the VIPs 10.1.0.1/16 and fd00:1::1/64 on lan0 and fake
nodes. Checked: the active holds the addresses and the standby not; after
SIGKILL of the active the standby adds them and announces them (gratuitous
ARP, unsolicited NA, garp.count times), the observer's neighbour entries
move to the new MAC; a restarted syncd removes addresses left behind; a
clean stop removes them and hands over.

Usage: vip_test.py TANDEM_SYNCD SOURCE_ROOT   (exit 77 = skipped: not root)
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_node  # noqa: E402
from harness import KEY_HEX, wait_for  # noqa: E402

SYNCD, SRC = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
NS = {"a": "tsdv-a", "b": "tsdv-b", "obs": "tsdv-obs"}
IP = {"a": "10.1.0.251", "b": "10.1.0.252"}


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True)


def nsx(ns, cmd, check=True):
    return sh(f"ip netns exec {NS[ns]} {cmd}", check)


def teardown():
    for n in NS.values():
        sh(f"ip netns del {n}", check=False)


def setup():
    teardown()
    for n in NS.values():
        sh(f"ip netns add {n}")
        sh(f"ip -n {n} link set lo up")
    o = NS["obs"]
    sh(f"ip -n {o} link add br0 type bridge")
    sh(f"ip -n {o} link set br0 up")
    sh(f"ip -n {o} addr add 10.1.0.100/16 dev br0")
    sh(f"ip -n {o} addr add fd00:1::100/64 dev br0 nodad")
    for k in ("a", "b"):
        sh(f"ip link add lan0 netns {NS[k]} type veth peer name {k}1 netns {o}")
        sh(f"ip -n {o} link set {k}1 master br0 up")
        sh(f"ip -n {NS[k]} link set lan0 up")
        sh(f"ip -n {NS[k]} addr add {IP[k]}/16 dev lan0")
        sh(f"ip -n {NS[k]} addr add fd00:1::25{1 if k == 'a' else 2}/64 dev lan0 nodad")


def conf(tmp, k, node_id, peer_id, prio):
    other = "b" if k == "a" else "a"
    text = f"""node_id = {node_id};
cluster = {{ id = 9; key = "{KEY_HEX}"; }};
node_socket = "{tmp}/{k}.node.sock";
control_socket = "{tmp}/{k}.syncd.sock";
sync = {{ listen = "{IP[k]}"; port = 7790; }};
peers = ( {{ id = {peer_id}; address = "{IP[other]}"; port = 7790; }} );
data_heartbeat = {{ bind = "{IP[k]}"; peer = "{IP[other]}"; port = 7791; }};
role = {{ priority = {prio}; }};
vips = ( {{ address = "10.1.0.1/16"; interface = "lan0"; }},
         {{ address = "fd00:1::1/64"; interface = "lan0"; }} );
garp = {{ count = 3; interval_ms = 100; }};
"""
    path = f"{tmp}/{k}.conf"
    with open(path, "w") as f:
        f.write(text)
    return path


def addrs(k):
    return nsx(k, "ip -br addr show lan0").stdout


def has_vips(k):
    a = addrs(k)
    return "10.1.0.1/16" in a and "fd00:1::1/64" in a


def has_ipv4_vip(k):
    return "10.1.0.1/16" in addrs(k)


def no_vips(k):
    a = addrs(k)
    return "10.1.0.1/" not in a and "fd00:1::1/" not in a


def mac(k):
    return re.search(r"link/ether (\S+)", nsx(k, "ip link show lan0").stdout).group(1)


def neigh(addr):
    m = re.search(r"lladdr (\S+)", nsx("obs", f"ip neigh show {addr}").stdout)
    return m.group(1) if m else None


def main():
    if os.geteuid() != 0:
        print("vip_test: needs root (network namespaces): skipped")
        return 77
    tmp = tempfile.mkdtemp(prefix="tandem-vip-")
    fake_node.load_proto(SRC, tmp)
    procs = {}
    fakes = {}
    logs = {}

    def start(k):
        logs[k] = open(f"{tmp}/{k}.log", "a")
        procs[k] = subprocess.Popen(["ip", "netns", "exec", NS[k], SYNCD, "-c",
                                     f"{tmp}/{k}.conf"], stdout=logs[k], stderr=logs[k])
        wait_for(lambda: os.path.exists(f"{tmp}/{k}.syncd.sock"), 5, f"syncd {k}")

    def stop(k, sig):
        p = procs.pop(k, None)
        if p:
            p.send_signal(sig)
            p.wait(10)
            return p.returncode
        return None

    def role(k):
        r = subprocess.run([SYNCD, "-s", f"{tmp}/{k}.syncd.sock", "--show"],
                           capture_output=True, text=True)
        m = re.search(r" role=(\w+)", r.stdout)
        return m.group(1) if m else None

    tcpdump = None
    ok = False
    try:
        setup()
        conf(tmp, "a", 1, 2, 200)
        conf(tmp, "b", 2, 1, 100)
        for k, nid in (("a", 1), ("b", 2)):
            fakes[k] = fake_node.FakeNode(f"{tmp}/{k}.node.sock", nid, f"fw{nid}")
            fakes[k].start()
        start("a")
        start("b")
        wait_for(lambda: role("a") == "active" and role("b") == "standby", 10, "roles")
        wait_for(lambda: has_vips("a"), 3, "addresses on the active")
        assert no_vips("b"), addrs("b")
        # a datagram to each address makes the observer resolve it
        nsx("obs", "python3 -c \"import socket as s; "
            "s.socket(s.AF_INET, s.SOCK_DGRAM).sendto(b'x', ('10.1.0.1', 9)); "
            "s.socket(s.AF_INET6, s.SOCK_DGRAM).sendto(b'x', ('fd00:1::1', 9))\"")
        wait_for(lambda: neigh("10.1.0.1") == mac("a") and neigh("fd00:1::1") == mac("a"),
                 3, "observer resolved the addresses to node a")

        cap = f"{tmp}/takeover.pcap"
        tcpdump = subprocess.Popen(["ip", "netns", "exec", NS["obs"], "tcpdump", "-i", "br0",
                                    "-n", "-U", "--immediate-mode", "-w", cap,
                                    "arp or icmp6"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        t0 = time.monotonic()
        stop("a", signal.SIGKILL)  # leaves its addresses behind, as keepalived does
        wait_for(lambda: has_vips("b"), 3, "addresses on the new active", step=0.01)
        took = time.monotonic() - t0
        wait_for(lambda: neigh("10.1.0.1") == mac("b"), 2, "IPv4 neighbour moved (GARP)")
        wait_for(lambda: neigh("fd00:1::1") == mac("b"), 2, "IPv6 neighbour moved (NA)")
        time.sleep(0.5)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(5)
        tcpdump = None
        out = sh(f"tcpdump -n -e -r {cap}").stdout
        garps = [ln for ln in out.splitlines()
                 if mac("b") in ln and "Request who-has 10.1.0.1 tell 10.1.0.1" in ln]
        nas = [ln for ln in out.splitlines()
               if mac("b") in ln and "neighbor advertisement" in ln and "fd00:1::1" in ln]
        assert len(garps) >= 3, out
        assert len(nas) >= 3, out
        print(f"vip_test: addresses moved {took * 1000:.0f} ms after SIGKILL; "
              f"{len(garps)} gratuitous ARP, {len(nas)} unsolicited NA")

        # the killed node comes back: stale addresses removed, standby
        assert has_vips("a"), "SIGKILL should have left them"
        start("a")
        wait_for(lambda: role("a") == "standby", 10, "old active is standby")
        assert no_vips("a"), addrs("a")
        assert has_vips("b")

        # SIGHUP reloads: the active keeps running, its role and its addresses
        procs["b"].send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert procs["b"].poll() is None, "syncd died on SIGHUP"
        assert role("b") == "active" and role("a") == "standby"
        assert has_vips("b") and no_vips("a"), (addrs("a"), addrs("b"))

        # a clean stop of the active: addresses go, the standby takes them
        assert stop("b", signal.SIGTERM) == 0
        assert no_vips("b"), addrs("b")
        wait_for(lambda: has_vips("a"), 3, "addresses back on node a")
        assert stop("a", signal.SIGTERM) == 0
        assert no_vips("a")
        ok = True
    finally:
        if tcpdump:
            tcpdump.kill()
        for k in list(procs):
            stop(k, signal.SIGKILL)
        for f in fakes.values():
            if f.running:
                f.stop()
        if not ok:
            for k in ("a", "b"):
                try:
                    print(f"--- {k}\n" + open(f"{tmp}/{k}.log").read()[-3000:])
                except OSError:
                    pass
        teardown()
    print("vip_test: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
