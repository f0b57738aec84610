#!/usr/bin/python3
"""test_xdp.py - tandem-node's AF_XDP data path (datapath.source =
"af_xdp") end to end in the single-firewall lab: real sockets from the
client namespaces, the node forwarding by itself (routes, neighbours, TTL)
between the zone interfaces, a server process as the observer.

The firewall kernel's own forwarding counter (Ip: ForwDatagrams in
/proc/net/snmp of the firewall namespace) is the independent witness that
forwarded packets went through the node and not through the kernel.

Run as root:  TANDEM_NODE=/path/tandem-node /usr/bin/python3 tests/lab/test_xdp.py
Lab prefix "tdm-xdp-". Helpers (Server, tcp_ok, ...) come from test_datapath.

Must never: leave a node, server or namespace behind (the harness kills
what it started and removes the lab), or wait without a deadline.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from labtest import Lab, Node, TestFailure, check, run_tests  # noqa: E402
import test_datapath as dp  # noqa: E402

PREFIX = "tdm-xdp-"
XDP = 'source = "af_xdp";'


def config(datapath="", **kw):
    return dp.config(queues=1, datapath=XDP + " " + datapath, **kw)


def forwarded_by_kernel(lab):
    """Ip: ForwDatagrams of the firewall namespace."""
    lines = lab.sh("fw", "cat /proc/net/snmp").stdout.split("\n")
    ip = [ln.split() for ln in lines if ln.startswith("Ip:")]
    return int(ip[1][ip[0].index("ForwDatagrams")])


def xdp_attached(lab):
    """Interfaces of the firewall with an XDP program."""
    out = lab.sh("fw", "ip -o link show").stdout
    return sorted(ln.split(":")[1].strip().split("@")[0] for ln in out.split("\n")
                  if " xdp" in ln)


def test_forwarding_v4_v6_and_policy(lab):
    """TCP, UDP and ICMP over IPv4 and IPv6 through the node's own
    forwarding, with neighbours the firewall had to resolve first; a denied
    direction stays closed; the kernel forwarded nothing."""
    srv = dp.Server(lab, tcp=[dp.WEB, ("fd00:2::10", 443)], udp=[dp.DNS])
    dp.Server(lab, host="dmz", tcp=[dp.DMZ])
    for host in ("c1", "c2", "fw", "srv", "dmz"):
        lab.sh(host, "ip neigh flush all; ip -6 neigh flush all")
    node = Node(lab, config())
    check(xdp_attached(lab) == ["veth-c", "veth-d", "veth-s"],
          f"XDP on {xdp_attached(lab)}")
    before = forwarded_by_kernel(lab)

    for size in (1, 1400, 60000):  # many segments: checksums must hold
        check(dp.tcp_ok(lab, "c1", *dp.WEB, size=size), f"TCP {size} bytes over IPv4")
    s = dp.tcp_open(lab, "c2", "fd00:2::10", 443)
    try:
        dp.echo_roundtrip(s, os.urandom(30000))
    finally:
        s.close()
    got, u = dp.udp_echo(lab, "c1", *dp.DNS, count=3)
    u.close()
    check(got == 3, f"UDP echo: {got}/3")
    out = lab.py("c1", r'''
from scapy.all import IP, IPv6, ICMP, ICMPv6EchoRequest, sr1, conf
conf.verb = 0
ok = 0
for seq in range(3):
    r = sr1(IP(dst="10.2.0.10", ttl=64)/ICMP(id=0x7464, seq=seq), timeout=2)
    ok += r is not None and r[IP].ttl == 63  # one hop each way: 64 -> 63
    r = sr1(IPv6(dst="fd00:2::10")/ICMPv6EchoRequest(id=0x7464, seq=seq), timeout=2)
    ok += r is not None
print(ok)
''')
    check(out.strip() == "6", f"ICMP echo v4+v6: {out.strip()}/6 (replies with TTL 63)")
    check(dp.tcp_refused(lab, "c1", *dp.DMZ, timeout=1.5), "trust -> dmz passed")
    st = dp.fresh_stats(node)
    check(st["created"]["tcp"] >= 4 and st["created"]["udp"] == 1 and st["created"]["icmp"] == 2,
          f"created {st['created']}")
    check(st["drop"].get("rule-drop", 0) >= 1, f"no rule-drop: {st['drop']}")
    check(not st["drop"].get("no-neighbour") and not st["drop"].get("tx-ring-full"),
          f"forwarding drops: {st['drop']}")
    check(forwarded_by_kernel(lab) == before,
          f"the kernel forwarded {forwarded_by_kernel(lab) - before} packets itself")
    check(srv.status()["tcp_accepted"].get("10.2.0.10:80", 0) == 3, "server accepted != 3")
    dp.check_quiet(lab)


def test_local_traffic_and_ttl_stay_with_the_kernel(lab):
    """Packets for the firewall's own addresses, ARP/NDP and TTL 1 are the
    kernel's: pings to the firewall answer, TTL 1 gets ICMP time exceeded
    from the firewall, and none of them makes a session."""
    node = Node(lab, config())
    out = lab.py("c1", r'''
from scapy.all import IP, IPv6, ICMP, UDP, ICMPv6EchoRequest, sr1, conf
conf.verb = 0
res = []
r = sr1(IP(dst="10.1.0.1")/ICMP(id=1, seq=1), timeout=2)
res.append(r is not None and r[IP].src == "10.1.0.1")
r = sr1(IP(dst="10.2.0.1")/ICMP(id=1, seq=2), timeout=2)  # its other side
res.append(r is not None and r[IP].src == "10.2.0.1")
r = sr1(IPv6(dst="fd00:1::1")/ICMPv6EchoRequest(id=1, seq=3), timeout=2)
res.append(r is not None)
r = sr1(IP(dst="10.2.0.10", ttl=1)/UDP(sport=4000, dport=53), timeout=2)
res.append(r is not None and ICMP in r and r[ICMP].type == 11 and r[IP].src == "10.1.0.1")
print(" ".join("1" if x else "0" for x in res))
''')
    check(out.strip() == "1 1 1 1", f"ping fw v4, fw far side, fw v6, TTL 1 -> time exceeded: {out.strip()}")
    st = dp.fresh_stats(node)
    check(sum(st["created"].values()) == 0, f"sessions made for local traffic: {st['created']}")


def test_node_killed_fails_closed_or_bypasses(lab):
    """SIGKILL takes the XDP programs away with the process; the node's
    table stays and drops what the kernel would now forward (bypass = true:
    accepts). A restart attaches again and filters."""
    dp.Server(lab, tcp=[dp.WEB])
    dp.Server(lab, host="dmz", tcp=[dp.DMZ])
    node = Node(lab, config())
    check(dp.tcp_ok(lab, "c1", *dp.WEB), "web through the running node")
    node.stop(signal.SIGKILL)
    dp.wait_for(lambda: not xdp_attached(lab), 5, "the XDP programs to go with the process")
    check(dp.table_rules(lab) == (1, 0), f"table after SIGKILL: {dp.table_rules(lab)}")
    check(dp.tcp_refused(lab, "c1", *dp.WEB, timeout=1.5), "fail-closed: web passed with the node dead")

    node = Node(lab, config("bypass = true;"))
    check(dp.tcp_ok(lab, "c1", *dp.WEB), "web through the restarted node")
    check(dp.tcp_refused(lab, "c1", *dp.DMZ, timeout=1.5), "trust -> dmz passed the running node")
    node.stop(signal.SIGKILL)
    dp.wait_for(lambda: not xdp_attached(lab), 5, "the XDP programs to go with the process")
    check(dp.tcp_ok(lab, "c1", *dp.WEB), "bypass: web blocked with the node dead")

    node = Node(lab, config())
    check(dp.tcp_ok(lab, "c1", *dp.WEB), "web after the restart")
    check(node.stop(signal.SIGTERM) == 0, "exit code after SIGTERM")
    check(not xdp_attached(lab) and dp.table_rules(lab) == (0, 0),
          f"left after SIGTERM: XDP on {xdp_attached(lab)}, table {dp.table_rules(lab)}")


def test_refused_configs_and_interfaces(lab):
    """Several queues, or an interface that is not there: refused at start
    with a message that says why, nothing left attached."""
    for cfg, want in ((dp.config(queues=2, datapath=XDP), "runs one worker"),
                      (config().replace('"veth-d"', '"veth-nope"'), "veth-nope: not found")):
        n = Node(lab, cfg, check_start=False)
        try:
            n.proc.wait(10)
        except Exception:
            raise TestFailure("node did not exit on a bad start")
        check(n.proc.returncode != 0 and want in n.read_log(), f"log: {n.read_log()[-400:]}")
        check(not xdp_attached(lab), f"XDP left on {xdp_attached(lab)}")


if __name__ == "__main__":
    run_tests(dp.sanitizer_checked(globals()), Lab(PREFIX), per_test_timeout=100)
