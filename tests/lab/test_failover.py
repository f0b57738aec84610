#!/usr/bin/python3
"""test_failover.py - the active/standby pair in the lab (prefix tdm-ha-,
deploy/lab.sh up --pair): two tandem-node (fw1 = tdm-ha-fw, fw2 =
tdm-ha-fw2) each with its tandem-syncd, sync link sync0 10.255.0.1/.2,
data-side heartbeats 10.1.0.251 <-> .252, the gateways 10.x.0.1 /
fd00:x::1 as virtual addresses. fw1 (priority 200) is started first and
is active; fw2 (100) joins as standby.

Checked, each through the nodes' control sockets (SESSIONS, SYNC_DIGEST)
and syncd's (SHOW_CLUSTER), with real packets from the lab's hosts:
  1. create / refresh / expire: sessions made on the active appear on the
     standby with origin=peer; one kept refreshed outlives several of its
     timeouts there, one left alone leaves it (not before its timeout).
  2. bulk sync: sessions made before the standby started are all copied
     (digests of both tables equal, bulk progress in show cluster).
  3. sync link cut for 30 s (ip link set sync0 down): no takeover (the
     data-side heartbeats still arrive: split-brain guard); sessions made,
     cleared and expired meanwhile; restored -> both tables converge
     (SYNC_DIGEST of the active's local sessions = the standby's peer ones).
  4. syncd restarted: on the standby after a crash (SIGKILL), then on the
     active (SIGTERM: it hands over to the standby): no session is lost, long-lived TCP connections keep
     exchanging sequence-checked data, the tables converge again.
  5. forged and replayed frames (a real heartbeat datagram captured on the
     LAN and sent again from a client host, a real sync-link frame sent
     again on a new TCP connection, frames under a wrong key on both
     paths) are refused and counted, and change nothing.
  6. SIGKILL of the active's node and syncd, its links down, 50 long-lived
     connections: none lost (deploy/drill.sh's run, its report printed).

Binaries: $TANDEM_NODE [SRC/build/tandem-node], $TANDEM_SYNCD
[<dir of TANDEM_NODE>/syncd/tandem-syncd]; skipped (77) without syncd.
Must never: touch namespaces outside the tdm-ha- lab or leave a process,
nft table, virtual address or downed link behind (every test repairs in
`finally`: processes stopped, tables deleted, addresses removed and
`lab.sh up --pair` run again).

Run (root): TANDEM_NODE=... TANDEM_SYNCD=... /usr/bin/python3 tests/lab/test_failover.py
One test: TANDEM_TEST=bulk ...
"""
import functools
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labtest  # noqa: E402
from labtest import PY, SRC, Capture, Lab, Node, TestFailure, check, config, run_tests  # noqa: E402

PREFIX = os.environ.get("TDM_HA_PREFIX", "tdm-ha-")
NODE_BIN = labtest.NODE_BIN
SYNCD_BIN = os.environ.get("TANDEM_SYNCD",
                           os.path.join(os.path.dirname(NODE_BIN), "syncd", "tandem-syncd"))
TMP = tempfile.mkdtemp(prefix="tdm-ha-")
CTL = "/run/tandem/" + PREFIX.rstrip("-")
KEY_HEX = hashlib.sha256(b"tandem lab test key").hexdigest()
CLUSTER_ID = 5
DNS, WEB, SHORT = "10.2.0.53", "10.2.0.10", "10.2.0.40"  # rules dns, web, short-udp
SF_PEER = 8

subprocess.run(["protoc", f"--proto_path={SRC}/proto", f"--python_out={TMP}",
                f"{SRC}/proto/tandem.proto"], check=True)
sys.path.insert(0, TMP)
import tandem_pb2 as pb  # noqa: E402


class PairLab(Lab):
    """The lab as a pair (deploy/lab.sh up --pair)."""

    def up(self):
        subprocess.run(["bash", os.path.join(SRC, "deploy/lab.sh"), "up", "--pair"], env=self.env,
                       check=True, stdout=subprocess.DEVNULL, timeout=120)


# ---- control sockets ----------------------------------------------------

def call(path, req, reply_cls, timeout=10.0):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(path)
        b = req.SerializeToString()
        s.sendall(struct.pack("!I", len(b)) + b)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack("!I", buf[:4])[0]:
            d = s.recv(1 << 20)
            if not d:
                raise TestFailure(f"{path}: connection closed before the reply")
            buf += d
        r = reply_cls()
        r.ParseFromString(buf[4:4 + struct.unpack("!I", buf[:4])[0]])
        return r
    finally:
        s.close()


def wait_for(pred, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
        except (OSError, TestFailure) as e:
            v, last = None, e
        if v:
            return v
        time.sleep(step)
    raise TestFailure(f"timed out after {timeout} s waiting for {what}" +
                      (f" (last error: {last})" if last else ""))


# ---- the pair -----------------------------------------------------------

class FwNode(Node):
    """tandem-node in the pair's fw1 (<prefix>fw) or fw2 (<prefix>fw2)."""

    def __init__(self, lab, n, cfg_text):
        self.n = n
        self.host = "fw" if n == 1 else "fw2"
        self.sock = f"{CTL}/fw{n}/node.sock"
        super().__init__(lab, cfg_text)

    def start(self, check_start=True):
        try:
            os.unlink(self.sock)
        except OSError:
            pass
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.ns(self.host), NODE_BIN, "--config", self.cfg,
             "--stats", self.stats_path], stdout=logf, stderr=logf, start_new_session=True)
        labtest._procs.append(self.proc)
        wait_for(lambda: self.proc.poll() is not None or
                 ("filtering" in self.read_log() and os.path.exists(self.sock)), 10,
                 f"tandem-node fw{self.n}")
        if self.proc.poll() is not None:
            raise TestFailure(f"tandem-node fw{self.n} exited: {self.read_log()}")

    def ctl(self, cmd, **kw):
        r = call(self.sock, pb.CtlRequest(seq=1, cmd=cmd, source="test_failover", **kw), pb.CtlReply)
        if r.status != 0:
            raise TestFailure(f"fw{self.n} node: {cmd}: {r.status} {r.error}")
        return r

    def digest(self):
        return self.ctl(pb.CtlRequest.SYNC_DIGEST).digest

    def sessions(self, limit=5000, **flt):
        return list(self.ctl(pb.CtlRequest.SESSIONS, filter=pb.Filter(**flt), limit=limit).sessions)


class Syncd:
    def __init__(self, lab, n, priority):
        self.lab, self.n = lab, n
        self.host = "fw" if n == 1 else "fw2"
        self.sock = f"{CTL}/fw{n}/syncd.sock"
        self.conf = os.path.join(TMP, f"syncd{n}.conf")
        self.log = os.path.join(TMP, f"syncd{n}.log")
        self.proc = None
        o = 3 - n
        vips = ",\n  ".join(f'{{ address = "{a}"; interface = "{d}"; }}'
                            for i, d in ((1, "veth-c"), (2, "veth-s"), (3, "veth-d"))
                            for a in (f"10.{i}.0.1/16", f"fd00:{i}::1/64"))
        with open(self.conf, "w") as f:
            f.write(f"""# generated by tests/lab/test_failover.py
node_id = {n};
cluster = {{ id = {CLUSTER_ID}; key = "{KEY_HEX}"; }};
node_socket = "{CTL}/fw{n}/node.sock";
control_socket = "{self.sock}";
state_file = "{TMP}/syncd{n}.state";
sync = {{ listen = "10.255.0.{n}"; port = 7790; }};
peers = ( {{ id = {o}; address = "10.255.0.{o}"; port = 7790; }} );
heartbeat = {{ interval_ms = 100; dead_count = 3; }};
data_heartbeat = {{ bind = "10.1.0.{250 + n}"; peer = "10.1.0.{250 + o}"; port = 7791; }};
role = {{ priority = {priority}; preempt = false; }};
track_interfaces = [ "veth-c", "veth-s", "veth-d" ];
vips = (
  {vips}
);
""")

    def start(self):
        try:
            os.unlink(self.sock)
        except OSError:
            pass
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.lab.ns(self.host), SYNCD_BIN,
                                      "-c", self.conf], stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        labtest._procs.append(self.proc)
        wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.sock), 10,
                 f"syncd fw{self.n} control socket")
        if self.proc.poll() is not None:
            raise TestFailure(f"syncd fw{self.n} exited: {self.tail()}")

    def stop(self, sig=signal.SIGTERM):
        """Returns the exit status (a SIGTERMed syncd must exit 0)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, sig) if sig == signal.SIGKILL else self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        return self.proc.returncode

    def tail(self, n=25):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def show(self):
        r = call(self.sock, pb.SyncdRequest(seq=1, cmd=pb.SyncdRequest.SHOW_CLUSTER,
                                            source="test_failover"), pb.SyncdReply)
        if r.status != 0:
            raise TestFailure(f"syncd fw{self.n}: show cluster: {r.error}")
        return r.cluster

    def role(self):
        try:
            return self.show().role
        except (OSError, TestFailure):
            return None

    def peer(self, cs=None):
        cs = cs or self.show()
        for p in cs.peers:
            if p.node_id == 3 - self.n:
                return p
        raise TestFailure(f"syncd fw{self.n}: no peer in show cluster")

    @staticmethod
    def counter(cs, name):
        return next((c.value for c in cs.counters if c.name == name), 0)


def node_config(n, udp=60):
    text = config(queues=2, timeouts=f"udp = {udp};",
                  extra=f'control = {{ socket = "{CTL}/fw{n}/node.sock"; }};')
    old = 'node = { name = "labfw"; id = 3; };'
    assert old in text
    return text.replace(old, f'node = {{ name = "fw{n}"; id = {n}; }};')


class Pair:
    def __init__(self, lab, udp=60):
        self.lab = lab
        self.udp = udp
        self.nodes = {}
        self.syncd = {1: Syncd(lab, 1, 200), 2: Syncd(lab, 2, 100)}

    def start_node(self, n):
        self.nodes[n] = FwNode(self.lab, n, node_config(n, self.udp))

    def start(self, which=(1, 2)):
        for n in which:
            self.start_node(n)
        if 1 in which:
            self.syncd[1].start()
            wait_for(lambda: self.syncd[1].role() == "active", 10, "fw1 active")
        if 2 in which:
            self.start_standby()

    def start_standby(self):
        self.syncd[2].start()
        self.wait_roles()

    def wait_roles(self, active=1, timeout=15):
        a, s = self.syncd[active], self.syncd[3 - active]

        def ok():
            ca, cs = a.show(), s.show()
            return (ca.role == "active" and cs.role == "standby" and cs.ready and
                    a.peer(ca).link == "up" and all(v.endswith(" up") for v in ca.vips))
        try:
            wait_for(ok, timeout, f"fw{active} active, fw{3 - active} standby and ready")
        except TestFailure as e:
            raise TestFailure(f"{e}\n--- syncd1\n{self.syncd[1].tail()}--- syncd2\n{self.syncd[2].tail()}")

    def converged(self, active=1):
        """Digest of the active's table (all local) = the standby's (all
        peer copies), and returns it; None while they differ."""
        da, ds = self.nodes[active].digest(), self.nodes[3 - active].digest()
        if (da.sessions == ds.sessions and da.xor_hash == ds.xor_hash and
                ds.peer == ds.sessions and da.local == da.sessions):
            return da
        return None

    def wait_converged(self, timeout=10, active=1, what="tables converge"):
        try:
            return wait_for(lambda: self.converged(active), timeout, what, 0.1)
        except TestFailure as e:
            da, ds = self.nodes[active].digest(), self.nodes[3 - active].digest()
            raise TestFailure(f"{e}: active fw{active} {fmt(da)}, standby {fmt(ds)}")

    def stop(self):
        rcs = {}
        for n in (2, 1):
            rcs[f"syncd{n}"] = self.syncd[n].stop()
        for n, node in self.nodes.items():
            rcs[f"node{n}"] = node.stop()
        return rcs


def fmt(d):
    return f"sessions={d.sessions} local={d.local} peer={d.peer} xor={d.xor_hash:016x}"


def reset_lab(lab):
    """Back to a fresh pair: no table, no virtual address on either node,
    every link up, the addresses on fw1 (lab.sh up --pair), no neighbour
    entry anywhere, no state file."""
    for host in ("fw", "fw2"):
        lab.sh(host, "nft delete table inet tandem 2>/dev/null; "
               + "; ".join(f"ip addr del 10.{i}.0.1/16 dev {d} 2>/dev/null; "
                           f"ip -6 addr del fd00:{i}::1/64 dev {d} 2>/dev/null"
                           for i, d in ((1, "veth-c"), (2, "veth-s"), (3, "veth-d"))) + "; true")
    lab.up()
    for host in ("c1", "c2", "srv", "dmz", "fw", "fw2"):
        lab.sh(host, "ip neigh flush all; ip -6 neigh flush all; true")
    for n in (1, 2):
        for f in (f"{TMP}/syncd{n}.state",):
            try:
                os.unlink(f)
            except OSError:
                pass


def pair_test(fn):
    """Run fn(lab, pair) with a pair (not started) and tear everything
    down afterwards, pass or fail; a syncd that does not exit 0 on
    SIGTERM fails the test."""
    @functools.wraps(fn)
    def run(lab):
        pair = Pair(lab)
        ok = False
        try:
            fn(lab, pair)
            ok = True
        finally:
            try:
                rcs = pair.stop()
            finally:
                reset_lab(lab)
        bad = {k: v for k, v in rcs.items() if k.startswith("syncd") and v not in (0, None)}
        check(not ok or not bad, f"exit status on SIGTERM: {bad}\n--- syncd1\n"
              f"{pair.syncd[1].tail()}--- syncd2\n{pair.syncd[2].tail()}")
    return run


# ---- traffic --------------------------------------------------------------



def Agent(lab, host):
    """labtest.Agent with a 30 s default per call"""
    return labtest.Agent(lab, host, timeout=30)

# UDP sinks on the server, so no ICMP port unreachable ends a session
SINK_CODE = r'''
import select, socket, sys
socks = []
for ap in sys.argv[1:]:
    a, p = ap.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, int(p)))
    socks.append(s)
open("/dev/stdout", "w").write("ready\n")
while True:
    for s in select.select(socks, [], [])[0]:
        s.recv(2048)
'''


def udp_sinks(lab, *addr_ports):
    script = os.path.join(TMP, "sink.py")
    with open(script, "w") as f:
        f.write(SINK_CODE)
    lab.bg("srv", f"exec {PY} {script} {' '.join(addr_ports)}")

    def bound():
        out = lab.sh("srv", "ss -Hlnu").stdout
        return all(ap in out for ap in addr_ports)
    wait_for(bound, 10, f"UDP sinks {addr_ports}")


def udp_flows(agent, dst, dport, sports):
    """One datagram from each source port (a session each)."""
    agent.run(f"""
        for sp in {list(sports)}:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", sp))
            s.sendto(b"tandem", ("{dst}", {dport}))
            s.close()
    """)


def udp_keep(agent, dst, dport, sport):
    """Open a socket from sport that later udp_again() calls use."""
    agent.run(f"""
        keep = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        keep.bind(("0.0.0.0", {sport}))
        keep.sendto(b"first", ("{dst}", {dport}))
    """)


def udp_again(agent, dst, dport):
    agent.run(f'keep.sendto(b"again", ("{dst}", {dport}))')


def icmp_flows(agent, dst, ids):
    """One echo request per ICMP id (a session each under the strict
    rule "ping")."""
    agent.run(f"""
        def _cs(b):
            t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
            t = (t >> 16) + (t & 0xFFFF); t += t >> 16
            return ~t & 0xFFFF
        r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        for i in {list(ids)}:
            h = struct.pack("!BBHHH", 8, 0, 0, i, 1) + b"tandem!!"
            h = struct.pack("!BBHHH", 8, 0, _cs(h), i, 1) + b"tandem!!"
            r.sendto(h, ("{dst}", 0))
        r.close()
    """)


def drill_py():
    """deploy/drill.sh's traffic pieces (its embedded drill.py)."""
    text = open(os.path.join(SRC, "deploy/drill.sh")).read()
    m = re.search(r"<<'PY'\n(.*?)\nPY\n", text, re.S)
    check(m, "deploy/drill.sh: no embedded drill.py")
    path = os.path.join(TMP, "drill.py")
    with open(path, "w") as f:
        f.write(m.group(1))
    return path


class Streams:
    """n long-lived TCP connections c1 -> 10.2.0.10:80, a numbered chunk
    every 100 ms both ways, checked for order (drill.py server/client)."""

    def __init__(self, lab, n):
        self.lab, self.n = lab, n
        py = drill_py()
        self.srv_out = os.path.join(TMP, "streams-srv.json")
        self.cli_out = os.path.join(TMP, "streams-cli.json")
        for f in (self.srv_out, self.cli_out, self.srv_out + ".ready"):
            try:
                os.unlink(f)
            except OSError:
                pass
        self.srv = self._bg("srv", f"{py} server --out {self.srv_out} --addr {WEB} --port 80")
        wait_for(lambda: os.path.exists(self.srv_out + ".ready"), 10, "stream server")
        self.cli = self._bg("c1", f"{py} client --out {self.cli_out} --dst {WEB} --port 80 "
                                  f"--n {n} --id-base 1")

    def _bg(self, host, args):
        p = subprocess.Popen(["ip", "netns", "exec", self.lab.ns(host), PY] + args.split(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        labtest._procs.append(p)
        return p

    def finish(self):
        """Stop both ends; returns (client records, server records by id)."""
        for p in (self.cli, self.srv):
            p.send_signal(signal.SIGTERM)
        for p in (self.cli, self.srv):
            p.wait(15)
        with open(self.cli_out) as f:
            cli = json.load(f)
        with open(self.srv_out) as f:
            srv = {r["id"]: r for r in json.load(f)}
        return cli, srv

    def check_alive(self, since, t_end, what):
        """Every connection exchanged in-order data both ways from `since`
        to the end, with no gap above 2 s (a takeover stalls TCP for a
        retransmission timeout or two)."""
        cli, srv = self.finish()
        check(len(cli) == self.n, f"{what}: {len(cli)} client connections of {self.n}")
        bad = []
        for c in cli:
            s = srv.get(c["id"])
            for side, r in (("client", c), ("server", s)):
                if r is None:
                    bad.append(f"{c['id']}: never reached the server")
                    break
                if r["errors"] or (r["closed"] and r.get("closed_at", 0) < t_end):
                    bad.append(f"{c['id']} {side}: {r['errors'][:1]} {r['closed']} (client: "
                               f"{c['closed']}, last rx {c['rx'][-1:] }, tx {c['tx']}; server: "
                               f"{s and s['closed']}, last rx {s and s['rx'][-1:]}, tx {s and s['tx']})")
                    break
                pts = [since] + [t for t in r["rx"] if t >= since] + [t_end]
                gap = max(b - a for a, b in zip(pts, pts[1:]))
                if gap > 2.0:
                    bad.append(f"{c['id']} {side}: no data for {gap:.1f} s")
                    break
        check(not bad, f"{what}: {len(bad)} of {self.n} connections broken: {bad[:5]}")


# ---- 1 ------------------------------------------------------------------

UDP_T = 5  # s, the test's UDP timeout (the node's minimum is 4)


@pair_test
def test_create_refresh_expire_replicated(lab, pair):
    pair.udp = UDP_T
    pair.start()
    fw1, fw2 = pair.nodes[1], pair.nodes[2]
    udp_sinks(lab, f"{DNS}:53")
    c1 = Agent(lab, "c1")
    KEEP, LEAVE = 41000, 41001
    udp_keep(c1, DNS, 53, KEEP)
    udp_flows(c1, DNS, 53, [LEAVE])
    t0 = time.monotonic()

    def on_standby(sport):
        s = fw2.sessions(proto=17, sport=sport)
        return s[0] if s else None
    for sp in (KEEP, LEAVE):
        s = wait_for(lambda: on_standby(sp), 3, f"udp session from port {sp} on the standby")
        check(s.flags & SF_PEER, f"standby copy of {sp} is not origin=peer: flags {s.flags:#x}")
        check(0 < s.remaining_ms <= UDP_T * 1000, f"standby copy of {sp}: remaining {s.remaining_ms} ms")
        check(s.rule_name == "dns", f"standby copy of {sp}: rule {s.rule_name}")
        a = fw1.sessions(proto=17, sport=sp, origin=1)
        check(len(a) == 1 and a[0].id == s.id, f"active's session {sp}: {a} vs standby id {s.id:#x}")
    check(not fw1.sessions(proto=17, origin=2), "the active holds peer sessions")

    # KEEP refreshed every second for 3 timeouts; LEAVE left to expire
    gone_at = None
    while time.monotonic() - t0 < 3 * UDP_T:
        udp_again(c1, DNS, 53)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            if gone_at is None and not on_standby(LEAVE):
                gone_at = time.monotonic() - t0
            time.sleep(0.1)
        k = on_standby(KEEP)
        check(k is not None, f"refreshed session left the standby after "
                             f"{time.monotonic() - t0:.1f} s (timeout {UDP_T} s)")
    check(gone_at is not None, f"unrefreshed session still on the standby after {3 * UDP_T} s")
    check(UDP_T - 1.0 <= gone_at <= UDP_T + 3.0,
          f"unrefreshed session left the standby {gone_at:.1f} s after creation (timeout {UDP_T} s)")
    check(not fw1.sessions(proto=17, sport=LEAVE), "unrefreshed session still on the active")
    k = on_standby(KEEP)
    check(k.flags & SF_PEER and k.remaining_ms > 1000,
          f"refreshed copy on the standby: flags {k.flags:#x} remaining {k.remaining_ms} ms")
    print(f"     created on both at once; unrefreshed copy left the standby after {gone_at:.1f} s; "
          f"refreshed copy alive after {time.monotonic() - t0:.1f} s ({k.remaining_ms} ms left)")


# ---- 2 ------------------------------------------------------------------

@pair_test
def test_bulk_sync_of_sessions_made_before_the_peer(lab, pair):
    pair.start(which=(1,))
    fw1 = pair.nodes[1]
    udp_sinks(lab, f"{DNS}:53")
    c1, c2 = Agent(lab, "c1"), Agent(lab, "c2")
    udp_flows(c1, DNS, 53, range(20000, 20300))
    udp_flows(c2, DNS, 53, range(20000, 20200))
    icmp_flows(c1, WEB, range(1, 101))
    want = 600
    wait_for(lambda: fw1.digest().local >= want, 10, f"{want} sessions on fw1")
    check(fw1.digest().local == want, f"fw1: {fmt(fw1.digest())}, wanted {want}")
    pair.start_node(2)
    check(pair.nodes[2].digest().sessions == 0, "fw2 starts empty")
    pair.start_standby()
    d = pair.wait_converged(10, what="bulk copied every session")
    check(d.sessions == want, f"converged on {fmt(d)}, wanted {want}")
    p1 = pair.syncd[1].peer()
    check(p1.bulk_tx.state == "done" and p1.bulk_tx.sent >= want,
          f"fw1's bulk to fw2: {p1.bulk_tx}")
    p2 = pair.syncd[2].peer()
    check(p2.bulk_rx.state == "done" and p2.bulk_rx.sent >= want, f"fw2's bulk from fw1: {p2.bulk_rx}")
    print(f"     {want} sessions copied by the bulk: {fmt(d)}; bulk_tx {p1.bulk_tx.sent}/"
          f"{p1.bulk_tx.total} in {p1.bulk_tx.elapsed_ms} ms")


# ---- 3 ------------------------------------------------------------------

CUT_S = 30


@pair_test
def test_sync_link_cut_30s_then_tables_converge(lab, pair):
    pair.start()
    fw1, fw2 = pair.nodes[1], pair.nodes[2]
    s1, s2 = pair.syncd[1], pair.syncd[2]
    udp_sinks(lab, f"{DNS}:53", f"{SHORT}:9000")
    c1 = Agent(lab, "c1")
    udp_flows(c1, DNS, 53, range(30000, 30100))       # stay
    icmp_flows(c1, WEB, range(100, 150))              # cleared during the cut
    udp_flows(c1, SHORT, 9000, range(31000, 31020))   # rule short-udp: expire in 10 s
    d0 = pair.wait_converged(10, what="tables converge before the cut")
    check(d0.sessions == 170, f"before the cut: {fmt(d0)}")
    epoch = s1.show().epoch

    lab.sh("fw", "ip link set dev sync0 down", check_rc=True)
    t_cut = time.monotonic()
    try:
        wait_for(lambda: not [p for p in s2.peer().paths if p.path == "sync" and p.alive], 3,
                 "fw2 sees the sync path dead")
        p = s2.peer()
        check([x.alive for x in p.paths if x.path == "data"] == [True],
              f"data path not alive on fw2 during the cut: {p.paths}")
        # changes while cut: 100 new, 50 cleared, 20 expire
        udp_flows(c1, DNS, 53, range(32000, 32100))
        r = fw1.ctl(pb.CtlRequest.CLEAR, filter=pb.Filter(proto=1))
        check(r.count == 50, f"cleared {r.count} ICMP sessions, wanted 50")
        while time.monotonic() - t_cut < CUT_S:
            c1s, c2s = s1.show(), s2.show()
            check(c1s.role == "active" and c2s.role == "standby",
                  f"role changed during the sync link cut: fw1 {c1s.role} fw2 {c2s.role} "
                  f"({c2s.role_reason})")
            time.sleep(1.0)
    finally:
        lab.sh("fw", "ip link set dev sync0 up")
    t_up = time.monotonic()
    wait_for(lambda: s1.peer().link == "up" and s2.peer().link == "up", 10, "sync link back up")
    d = pair.wait_converged(20, what="tables converge after the cut")
    took = time.monotonic() - t_up
    check(d.sessions == 200, f"after the cut: {fmt(d)}, wanted 200 (100 + 100 new; "
                             f"50 cleared, 20 expired)")
    check(s1.show().epoch == epoch and s1.role() == "active" and s2.role() == "standby",
          "roles or epoch changed")
    d2 = fw2.digest()
    print(f"     cut {CUT_S} s: no takeover; converged {took:.1f} s after the link came back: "
          f"{fmt(d2)}; fw2 counters {[(c.name, c.value) for c in s2.show().counters if 'bulk' in c.name or 'resume' in c.name]}")


# ---- 4 ------------------------------------------------------------------

@pair_test
def test_syncd_restart_loses_no_session(lab, pair):
    pair.start()
    fw1, fw2 = pair.nodes[1], pair.nodes[2]
    s1, s2 = pair.syncd[1], pair.syncd[2]
    udp_sinks(lab, f"{DNS}:53")
    c1 = Agent(lab, "c1")
    udp_flows(c1, DNS, 53, range(33000, 33200))
    # observers: any FIN or RST of the connections, on both ends' wires
    caps = [Capture(lab, h, bpf="tcp port 80 and tcp[tcpflags] & (tcp-rst|tcp-fin) != 0")
            for h in ("c1", "srv")]
    streams = Streams(lab, 10)
    d0 = wait_for(lambda: pair.converged() if fw1.digest().sessions >= 210 else None, 15,
                  "sessions copied before the restart")
    n0 = d0.sessions
    t_start = time.time()

    # a) the standby's syncd crashes (SIGKILL) and comes back: its node
    #    keeps every peer copy meanwhile, the new syncd reloads them
    s2.stop(signal.SIGKILL)
    time.sleep(0.5)
    check(fw2.digest().peer == n0, f"standby node lost copies with its syncd down: {fmt(fw2.digest())}")
    s2.start()
    low, at_low = n0, None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        dg = fw2.digest()
        if dg.peer < low:
            low, at_low = dg.peer, f"{fmt(dg)}, syncd2 role {s2.role()}"
        if s2.role() == "standby" and s2.show().ready and pair.converged():
            break
        time.sleep(0.05)
    check(low >= n0, f"standby's copies dropped to {low} of {n0} while its syncd restarted "
          f"(then: {at_low})\n--- syncd1\n{s1.tail()}--- syncd2\n{s2.tail()}")
    d = pair.wait_converged(10, what="converged after the standby's syncd restarted")
    check(d.sessions >= n0, f"after the standby restart: {fmt(d)}")

    # b) the active's syncd: a clean stop hands over to the standby, which
    #    holds every session; the restarted one is standby
    before_b = {x.id: x for x in fw2.sessions()}
    rc = s1.stop()
    check(rc == 0, f"active syncd exit status {rc} on SIGTERM")
    wait_for(lambda: s2.role() == "active", 3, "fw2 takes over from the stopped syncd")
    dl = fw2.digest()
    check(dl.local >= n0, f"new active lost sessions: {fmt(dl)}, had {n0}")
    s1.start()
    pair.wait_roles(active=2)
    time.sleep(3.0)  # the connections run through fw2 for a while

    def evidence(t_end):
        seen = [f"{h}: " + " ".join(r) for h, cap in zip(("c1", "srv"), caps)
                for r in cap.read(fields=("frame.time_epoch", "eth.src", "ip.src", "tcp.srcport",
                                          "ip.dst", "tcp.dstport", "tcp.flags.str"))
                if float(r[0]) < t_end]
        return ("\nFIN/RST seen while the connections ran:\n" + "\n".join(seen[:20]) +
                f"\nfw2 stats: {fw2.stats(settle=0.3)}"
                f"\n--- syncd1\n{s1.tail()}--- syncd2\n{s2.tail()}"
                f"--- node1\n{fw1.read_log()[-1500:]}--- node2\n{fw2.read_log()[-1500:]}")
    # tables first, while the connections still run (stopping them ends
    # their sessions: a close with unread data is an RST)
    try:
        d = pair.wait_converged(10, active=2, what="converged after both restarts")
    except TestFailure as e:
        raise TestFailure(f"{e}{evidence(time.time())}")
    if d.local < n0:
        now = {x.id for x in fw2.sessions()}
        gone = [before_b[i] for i in before_b if i not in now]
        raise TestFailure(f"after both restarts, active fw2: {fmt(d)}, had {n0}; gone: " +
                          "; ".join(f"id={x.id:#x} proto={x.key.proto} ports={x.key.port0}/"
                                    f"{x.key.port1} state={x.state} remaining={x.remaining_ms} "
                                    f"flags={x.flags:#x} rule={x.rule_name}" for x in gone[:5]) +
                          evidence(time.time()))
    ds = fw1.digest()
    t_end = time.time()
    try:
        streams.check_alive(t_start, t_end, "connections across both restarts")
    except TestFailure as e:
        raise TestFailure(f"{e}{evidence(t_end)}")
    for cap in caps:
        cap.cleanup()
    print(f"     {n0} sessions; standby syncd killed and restarted: copies never below {low}; "
          f"active syncd restarted: fw2 took over with {dl.local} local; 10 connections kept "
          f"exchanging; converged: fw2 {fmt(d)}, fw1 {fmt(ds)}")


# ---- 5 ------------------------------------------------------------------

CAPTURE_CODE = r'''
import socket, struct, sys, select, time
iface, proto, src, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
# ETH_P_ALL: a socket bound to one protocol sees incoming frames only
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
deadline = time.time() + 5
while time.time() < deadline:
    if not select.select([s], [], [], 0.2)[0]:
        continue
    d = s.recv(65536)
    if d[12:14] != b"\x08\x00":
        continue
    d = d[14:]
    ihl = (d[0] & 15) * 4
    if d[9] != proto or socket.inet_ntoa(d[12:16]) != src:
        continue
    l4 = d[ihl:]
    if dport not in struct.unpack("!HH", l4[:4]):  # either end: who dialled varies
        continue
    pay = l4[8:] if proto == 17 else l4[(l4[12] >> 4) * 4:]
    if pay[:4] != b"TDMS" or len(pay) < 32:
        continue
    n = struct.unpack("!I", pay[28:32])[0]
    if len(pay) >= 64 + n:
        sys.stdout.write(pay[:64 + n].hex())
        sys.exit(0)
sys.exit(1)
'''


def capture_frame(lab, host, iface, proto, src, dport):
    r = subprocess.run(["ip", "netns", "exec", lab.ns(host), PY, "-c", CAPTURE_CODE, iface,
                        str(proto), src, str(dport)], capture_output=True, text=True, timeout=15)
    check(r.returncode == 0 and r.stdout, f"no frame captured on {host}:{iface}: {r.stderr}")
    return bytes.fromhex(r.stdout)


def forged(node, epoch, key=bytes(32)):
    """A heartbeat-sized frame under the wrong key."""
    payload = b""
    h = b"TDMS" + struct.pack("!HIHQQI", 1, CLUSTER_ID, node, epoch, 1 << 62, len(payload))
    return h + payload + hmac.new(key, h + payload, hashlib.sha256).digest()


def refused(cs):
    return {c.name[len("refused."):]: c.value for c in cs.counters if c.name.startswith("refused.")}


@pair_test
def test_forged_and_replayed_frames_refused(lab, pair):
    pair.start()
    fw1, fw2 = pair.nodes[1], pair.nodes[2]
    s1, s2 = pair.syncd[1], pair.syncd[2]
    udp_sinks(lab, f"{DNS}:53")
    c1 = Agent(lab, "c1")
    udp_flows(c1, DNS, 53, range(34000, 34050))
    d0 = pair.wait_converged(10)
    # genuine frames of fw2, as they crossed: a data-path heartbeat on the
    # client LAN and a sync-link frame
    hb = capture_frame(lab, "fw2", "veth-c", 17, "10.1.0.252", 7791)
    tcpf = capture_frame(lab, "fw2", "sync0", 6, "10.255.0.2", 7790)
    before = s1.show()
    pb_before = s1.peer(before)
    r0 = refused(before)

    # replayed heartbeat + forged one, from a client host on the LAN
    c1.run(f"""
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for d in (bytes.fromhex("{hb.hex()}"), bytes.fromhex("{forged(2, before.epoch).hex()}")):
            u.sendto(d, ("10.1.0.251", 7791))
            time.sleep(0.05)
        u.close()
    """)
    # on the sync link: the captured frame again, and a forged one, each on a
    # new connection from fw2's address
    for f in (tcpf, forged(2, before.epoch)):
        lab.sh("fw2", f"{PY} -c 'import socket,time; s=socket.create_connection((\"10.255.0.1\", 7790), 3); "
                      f"s.sendall(bytes.fromhex(\"{f.hex()}\")); time.sleep(0.3); s.close()'",
               check_rc=True)
    time.sleep(0.5)
    after = s1.show()
    r1 = refused(after)
    diff = {k: r1.get(k, 0) - r0.get(k, 0) for k in set(r0) | set(r1)}
    diff = {k: v for k, v in diff.items() if v}
    check(diff.get("bad-tag", 0) == 2, f"forged frames: refusals {diff}, wanted bad-tag 2")
    check(diff.get("replayed", 0) + diff.get("backwards", 0) == 2,
          f"replayed frames: refusals {diff}, wanted replayed/backwards 2")
    check(set(diff) <= {"bad-tag", "replayed", "backwards"}, f"other refusals: {diff}")
    # nothing changed: roles, epoch, the real link, the tables
    p = s1.peer(after)
    check(after.role == "active" and after.epoch == before.epoch and s2.role() == "standby",
          f"role/epoch changed: {after.role} {after.epoch} (was {before.epoch})")
    check(p.link == "up" and p.connects == pb_before.connects and
          p.disconnects == pb_before.disconnects,
          f"the real sync link was disturbed: connects {pb_before.connects}->{p.connects} "
          f"disconnects {pb_before.disconnects}->{p.disconnects}")
    d = pair.converged()
    check(d is not None and d.xor_hash == d0.xor_hash, f"tables changed: {fmt(fw1.digest())} "
                                                        f"{fmt(fw2.digest())}")
    # replication still works
    udp_flows(c1, DNS, 53, range(34100, 34110))
    d = pair.wait_converged(5, what="replication after the refusals")
    check(d.sessions == 60, f"after: {fmt(d)}")
    print(f"     refused at fw1: {diff}; peer 2 per-peer refusals "
          f"{[(c.name, c.value) for c in p.refused if c.value]}")



@pair_test
def test_window_replicated_blind_rst_refused_after_takeover(lab, pair):
    """The TCP window state travels to the standby: a real connection
    through fw1, fw1's syncd stopped (fw2 takes over), then an RST with the
    connection's addresses but a sequence number 100 MB past the server's
    is dropped by the new active (tcp-rst-out-of-window), and the
    connection still carries data both ways through fw2."""
    pair.start()
    fw2 = pair.nodes[2]
    srv = Agent(lab, "srv")
    srv.run(f"""
        import threading
        ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("{WEB}", 443)); ls.listen(4)
        def serve():
            c, _ = ls.accept()
            while True:
                d = c.recv(4096)
                if not d: return
                c.sendall(d)
        threading.Thread(target=serve, daemon=True).start()
    """)
    cap = Capture(lab, "c1", bpf="tcp port 443")
    try:
        cli = Agent(lab, "c1")
        got = cli.run(f"""
            C = socket.create_connection(("{WEB}", 443), timeout=5)
            C.sendall(b"before-takeover"); out = C.recv(100).decode()
        """)
        check(got == "before-takeover", f"echo before the takeover: {got!r}")
        sport = cli.run("out = C.getsockname()[1]")
        wait_for(lambda: fw2.sessions(proto=6, dport=443), 5, "the connection on the standby")
        pair.wait_converged(10, what="converged before the takeover")
        rc = pair.syncd[1].stop()
        check(rc == 0, f"active syncd exit status {rc}")
        wait_for(lambda: pair.syncd[2].role() == "active", 5, "fw2 takes over")
        # the server's next sequence number, from the client's wire
        rows = cap.read(f"ip.src == {WEB} && tcp.srcport == 443",
                        fields=("tcp.seq_raw", "tcp.len"))
        seq = int(rows[-1][0]) + int(rows[-1][1] or 0)

        def counter(name):
            return sum(c.value for c in fw2.ctl(pb.CtlRequest.STATS).counters if c.name == name)
        before = counter("drop.tcp-rst-out-of-window")
        srv.run(f"""
            from scapy.all import IP, TCP, send
            send(IP(src="{WEB}", dst="10.1.0.2")/TCP(sport=443, dport={sport}, flags="R",
                 seq=({seq} + 100000000) % (1 << 32)), verbose=False)
        """)
        n = wait_for(lambda: (counter("drop.tcp-rst-out-of-window") - before) or None, 3,
                     "the blind RST dropped by the new active")
        check(n == 1, f"new active dropped {n} blind RSTs as tcp-rst-out-of-window, want 1")
        got = cli.run("C.sendall(b'after-takeover'); out = C.recv(100).decode()")
        check(got == "after-takeover", f"echo after the blind RST, through fw2: {got!r}")
        check(fw2.sessions(proto=6, dport=443), "the session is gone from the new active")
        cli.run("C.close()")
        print(f"     blind RST at server seq {seq} + 100M dropped by the new active; "
              f"the connection carried data after it")
    finally:
        cap.cleanup()


# ---- 6 ------------------------------------------------------------------

DRILL_N = 50


def test_sigkill_failover_no_connection_lost(lab):
    """deploy/drill.sh on this lab: its own nodes and syncd, 50 connections,
    SIGKILL of the active, report printed. The drill resets the lab after
    itself (it was up before)."""
    out = os.path.join(TMP, "drill.json")
    env = dict(os.environ, TDM_LAB_PREFIX=PREFIX, TANDEM_NODE=NODE_BIN, TANDEM_SYNCD=SYNCD_BIN)
    env.pop("TDM_DRILL_TIMED", None)
    p = subprocess.Popen(["bash", os.path.join(SRC, "deploy/drill.sh"), "-n", str(DRILL_N),
                          "--json", out, "--quiet"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        text, _ = p.communicate(timeout=100)
    except BaseException:
        p.terminate()  # timeout(1) passes it on; the drill's trap cleans up
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
        raise
    print(textwrap.indent(text.rstrip(), "     "))
    check(os.path.exists(out), f"drill wrote no results (exit {p.returncode})")
    with open(out) as f:
        r = json.load(f)
    check(r["connections"] == DRILL_N and r["survived"] == DRILL_N,
          f"{r['survived']} of {r['connections']} connections survived: {r['lost'][:5]}")
    check(r["standby_before"]["peer"] >= DRILL_N + 2,
          f"standby held {r['standby_before']} before the kill")
    check(r["standby_after"]["local"] >= DRILL_N + 2 and r["standby_after"]["peer"] == 0,
          f"new active holds {r['standby_after']}")
    check(r["detection_ms"] is not None and r["detection_ms"] < 1000,
          f"detection {r['detection_ms']} ms")
    check(r["first_forwarded_ms"] is not None and r["first_forwarded_ms"] < 2000,
          f"first forwarded {r['first_forwarded_ms']} ms after the kill")
    for k in ("ping_longest_gap_ms", "ping6_longest_gap_ms"):
        check(r[k] is not None and r[k] < 2000, f"{k} {r[k]} ms")
    check(p.returncode == 0, f"drill exit status {p.returncode}")


# ---- 7 ------------------------------------------------------------------

def echo_connection(lab, port):
    """A TCP echo server on the server LAN and a client connection to it
    from c1, through the active; returns the client agent (C is the socket)."""
    srv = Agent(lab, "srv")
    srv.run(f"""
        import threading
        ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("{WEB}", {port})); ls.listen(4)
        def serve():
            c, _ = ls.accept()
            while True:
                d = c.recv(4096)
                if not d: return
                c.sendall(d)
        threading.Thread(target=serve, daemon=True).start()
    """)
    cli = Agent(lab, "c1")
    got = cli.run(f"""
        C = socket.create_connection(("{WEB}", {port}), timeout=5)
        C.sendall(b"before"); out = C.recv(100).decode()
    """)
    check(got == "before", f"echo before the failure: {got!r}")
    return cli


def takeover_after(lab, pair, port, fail, what):
    """A connection through fw1, fail() on fw1, then fw2 active and the
    connection carries data both ways through it; prints the time."""
    pair.start()
    cli = echo_connection(lab, port)
    wait_for(lambda: pair.nodes[2].sessions(proto=6, dport=port), 5,
             "the connection on the standby")
    pair.wait_converged(10, what="converged before the failure")
    t0 = time.monotonic()
    fail()
    wait_for(lambda: pair.syncd[2].role() == "active", 5, f"fw2 takes over after {what}",
             step=0.01)
    took = time.monotonic() - t0
    cs1 = pair.syncd[1].show()
    check(cs1.role == "standby", f"fw1 is {cs1.role} ({cs1.role_reason})")
    wait_for(lambda: all(v.endswith(" up") for v in pair.syncd[2].show().vips), 3,
             "addresses on fw2")
    got = cli.run("C.sendall(b'after'); out = C.recv(100).decode()")
    check(got == "after", f"echo after the takeover, through fw2: {got!r}")
    check(pair.nodes[2].sessions(proto=6, dport=port), "the connection on the new active")
    cli.run("C.close()")
    print(f"     {what} -> fw2 active in {took * 1000:.0f} ms "
          f"(fw1: {cs1.role_reason}); the connection carried data after it")


@pair_test
def test_node_sigkill_on_the_active_hands_over(lab, pair):
    """tandem-node alone SIGKILLed on the active: its syncd steps down once
    the node link stayed down for the dead time, fw2 takes over, the
    connection lives on."""
    takeover_after(lab, pair, 443, lambda: pair.nodes[1].stop(signal.SIGKILL),
                   "SIGKILL of fw1's tandem-node")


@pair_test
def test_lan_link_down_on_the_active_hands_over(lab, pair):
    """fw1's server-side LAN link down (a tracked interface): fw1 steps down,
    fw2 takes over, the connection lives on."""
    takeover_after(lab, pair, 443, lambda: lab.sh("fw", "ip link set veth-s down"),
                   "fw1's veth-s down")


if __name__ == "__main__":
    if not os.access(SYNCD_BIN, os.X_OK):
        print(f"test_failover: no tandem-syncd at {SYNCD_BIN} (set TANDEM_SYNCD): skipped")
        shutil.rmtree(TMP, ignore_errors=True)
        sys.exit(77)
    try:
        run_tests(globals(), PairLab(PREFIX))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
