"""Test harness for tandem-syncd: pairs of syncd processes on 127.0.0.1, each
with a fake node (fake_node.py), their sync links and data-side heartbeats
passing through proxies the tests can cut, and helpers to read `show
cluster`, wait for conditions and craft frames.

No root needed. Every process started here is killed in Cluster.close().
"""
import hashlib
import hmac
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import fake_node
from fake_node import FakeNode

KEY_HEX = "00112233445566778899aabbccddeeff" * 2
CLUSTER_ID = 7


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout, what, step=0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- frames

def frame(payload, node, seq, epoch=0, cluster=CLUSTER_ID, version=1,
          key=bytes.fromhex(KEY_HEX), magic=b"TDMS", length=None):
    h = magic + struct.pack("!HIHQQI", version, cluster, node, epoch, seq,
                            len(payload) if length is None else length)
    tag = hmac.new(key, h + payload, hashlib.sha256).digest()
    return h + payload + tag


# ---------------------------------------------------------------- proxies

class TcpProxy:
    """127.0.0.1:listen -> 127.0.0.1:target; block() cuts every connection
    and refuses new ones until unblock()."""

    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self.blocked = False
        self.pairs = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(16)
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if self.blocked:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=1)
            except OSError:
                c.close()
                continue
            for s in (c, u):  # no Nagle delay added by the proxy
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.pairs.append((c, u))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, a, b):
        socks = [a, b]
        try:
            while self.running and not self.blocked:
                r, _, _ = select.select(socks, [], [], 0.1)
                for s in r:
                    d = s.recv(65536)
                    if not d:
                        raise OSError
                    (b if s is a else a).sendall(d)
        except OSError:
            pass
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    def block(self):
        self.blocked = True
        with self.lock:
            for a, b in self.pairs:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            self.pairs = []

    def unblock(self):
        self.blocked = False

    def close(self):
        self.running = False
        self.block()
        self.srv.close()


class UdpRelay:
    """127.0.0.1:port -> 127.0.0.1:target, dropping while blocked."""

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.blocked = False
        self.running = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.1)
        while self.running:
            try:
                d, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not self.blocked:
                out.sendto(d, ("127.0.0.1", self.target))

    def block(self):
        self.blocked = True

    def unblock(self):
        self.blocked = False

    def close(self):
        self.running = False
        self.sock.close()


# ---------------------------------------------------------------- one node

class Node:
    def __init__(self, cl, node_id, priority):
        self.cl = cl
        self.id = node_id
        self.priority = priority
        d = cl.tmp
        self.node_sock = f"{d}/n{node_id}.node.sock"
        self.ctl_sock = f"{d}/n{node_id}.syncd.sock"
        self.state = f"{d}/n{node_id}.state"
        self.conf = f"{d}/n{node_id}.conf"
        self.log = f"{d}/n{node_id}.log"
        self.port = free_port()
        self.udp = free_port(socket.SOCK_DGRAM)
        self.fake = FakeNode(self.node_sock, node_id, f"fw{node_id}")
        self.proc = None
        self.seq = 0

    def write_conf(self, peers, extra=""):
        cl = self.cl
        pl = ",\n  ".join(
            f'{{ id = {p.id}; address = "127.0.0.1"; port = {cl.tcp_proxy[(self.id, p.id)].port}; }}'
            for p in peers)
        pl += "".join(f',\n  {{ id = {i}; address = "127.0.0.1"; port = {port}; }}'
                      for i, port in cl.ghost_peers)
        dh = ""
        if cl.data_hb and peers:
            dh = (f'data_heartbeat = {{ bind = "127.0.0.1"; port = {self.udp}; '
                  f'peer = "127.0.0.1"; peer_port = {cl.udp_relay[(self.id, peers[0].id)].port}; }};\n')
        text = f"""# generated by tests/syncd/harness.py
node_id = {self.id};
cluster = {{ id = {CLUSTER_ID}; key = "{KEY_HEX}"; }};
node_socket = "{self.node_sock}";
control_socket = "{self.ctl_sock}";
mode = "{cl.mode}";
state_file = "{self.state}";
sync = {{ listen = "127.0.0.1"; port = {self.port}; bulk_rate = {cl.bulk_rate}; backlog = {cl.backlog}; }};
peers = (
  {pl}
);
heartbeat = {{ interval_ms = {cl.interval}; dead_count = 3; }};
{dh}role = {{ priority = {self.priority}; preempt = {"true" if cl.preempt else "false"}; hold_down_ms = {cl.hold_down}; }};
{extra}"""
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        logf = open(self.log, "a")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen([self.cl.binary, "-c", self.conf],
                                     stdout=logf, stderr=logf, env=env)
        logf.close()
        wait_for(lambda: os.path.exists(self.ctl_sock) or self.proc.poll() is not None,
                 5, f"syncd {self.id} control socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"syncd {self.id} exited: {self.tail()}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def tail(self, n=30):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def request(self, cmd, timeout=15, **kw):
        pb = fake_node.pb
        self.seq += 1
        q = pb.SyncdRequest(seq=self.seq, cmd=cmd, source="test", **kw)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.ctl_sock)
        b = q.SerializeToString()
        s.sendall(struct.pack("!I", len(b)) + b)
        d = fake_node.recv_frame(s)
        s.close()
        r = pb.SyncdReply()
        r.ParseFromString(d)
        assert r.seq == self.seq
        return r

    def show(self):
        r = self.request(fake_node.pb.SyncdRequest.SHOW_CLUSTER)
        assert r.status == 0, r.error
        return r.cluster

    def role(self):
        try:
            return self.show().role
        except OSError:
            return None

    def peer(self, peer_id):
        for p in self.show().peers:
            if p.node_id == peer_id:
                return p
        raise KeyError(peer_id)

    def counter(self, name, cs=None):
        cs = cs or self.show()
        for c in cs.counters:
            if c.name == name:
                return c.value
        raise KeyError(name)


# ---------------------------------------------------------------- a cluster

class Cluster:
    def __init__(self, binary, tmp, priorities=(200, 100), data_hb=True,
                 preempt=False, mode="election", bulk_rate=50000, interval=100,
                 hold_down=2000, backlog=64 << 20, ghost_peers=(), extra=None):
        self.binary = binary
        self.tmp = tmp
        self.data_hb = data_hb
        self.preempt = preempt
        self.mode = mode
        self.bulk_rate = bulk_rate
        self.interval = interval
        self.hold_down = hold_down
        self.backlog = backlog
        self.ghost_peers = list(ghost_peers)  # (id, port): configured, never run
        self.extra = extra or {}
        self.nodes = [Node(self, i + 1, p) for i, p in enumerate(priorities)]
        self.tcp_proxy = {}
        self.udp_relay = {}
        for a in self.nodes:
            for b in self.nodes:
                if a is b:
                    continue
                self.tcp_proxy[(a.id, b.id)] = TcpProxy(b.port)
                self.udp_relay[(a.id, b.id)] = UdpRelay(b.udp)
        for n in self.nodes:
            n.write_conf([p for p in self.nodes if p is not n],
                         self.extra.get(n.id, ""))

    def __getitem__(self, i):
        return self.nodes[i]

    def start(self, which=None, fakes=True):
        for n in self.nodes if which is None else [self.nodes[i] for i in which]:
            if fakes and not n.fake.running:
                n.fake.start()
            n.start()

    def cut_sync(self, on=True):
        for p in self.tcp_proxy.values():
            p.block() if on else p.unblock()

    def cut_data(self, on=True):
        for r in self.udp_relay.values():
            r.block() if on else r.unblock()

    def wait_roles(self, roles, timeout=10):
        def ok():
            return all(n.role() == r for n, r in zip(self.nodes, roles))
        try:
            wait_for(ok, timeout, f"roles {roles}")
        except AssertionError:
            raise AssertionError(f"roles {[n.role() for n in self.nodes]}, wanted {roles}\n"
                                 + "\n".join(n.tail() for n in self.nodes))

    def wait_linked(self, timeout=10):
        def ok():
            for n in self.nodes:
                for p in n.show().peers:
                    if p.node_id in [x.id for x in self.nodes] and p.link != "up":
                        return False
            return True
        wait_for(ok, timeout, "sync links up")

    def close(self):
        rcs = {}
        for n in self.nodes:
            rcs[n.id] = n.kill(signal.SIGTERM)
        for n in self.nodes:
            if n.fake.running:
                n.fake.stop()
        for p in self.tcp_proxy.values():
            p.close()
        for r in self.udp_relay.values():
            r.close()
        return rcs
