#!/usr/bin/env bash
# drill.sh - a failover drill on the lab's active/standby pair: N long-lived
# TCP connections with sequence-checked payload plus 10 ms pings through
# the pair, then a hard crash of the active (SIGKILL of its tandem-node and
# tandem-syncd, every link of it down), and a short report:
#
#   detection        last heartbeat the standby heard -> its takeover decision
#                    (from the new active's `show cluster`: path ages and
#                    role age of one snapshot), and kill -> decision
#   first forwarded  kill -> first packet the new active forwarded to the
#                    server (an AF_PACKET observer on the server host, by
#                    the source MAC of fw2's server-side interface)
#   ping gap         longest gap between echo replies (an echo request every
#                    10 ms, IPv4 from c1 and IPv6 from c2)
#   connections      surviving / total: a connection survives when, in both
#                    directions, in-order chunks (every 100 ms, numbered)
#                    keep arriving over the last --after seconds with no gap
#                    above 1 s, no sequence error and no reset
#   replication      events fw1 sent fw2 before the kill, and syncd's
#                    sent -> applied acknowledgement latency (p50/p99)
#   sessions         the standby's table before (peer copies) and after
#                    (promoted to local), from SYNC_DIGEST on its node's
#                    control socket
#
# Topology: deploy/lab.sh up --pair (fw1 = <prefix>fw, fw2 = <prefix>fw2,
# sync link sync0 10.255.0.0/30, data-side heartbeats 10.1.0.251 <-> .252).
# Clients <prefix>c1/c2 connect to 10.2.0.10:80 (rule "web" of
# conf/tandem.conf, the nodes' config), pings go to 10.2.0.10 and fd00:2::10
# (rule "ping").
#
# Usage (root): bash deploy/drill.sh [options]
#   -n N           connections [50], 1..1000
#   --before S     seconds of traffic before the kill [3], 1..60
#   --after S      seconds a connection must keep exchanging data after the
#                  failover to count as surviving [5], 1..120
#   --heartbeat MS syncd's heartbeat interval_ms on both nodes [100], 10..10000
#   --dead-count N syncd's heartbeat dead_count on both nodes [3], 2..100
#   --build DIR    where tandem-node and syncd/tandem-syncd are [SRC/build];
#                  $TANDEM_NODE / $TANDEM_SYNCD override each
#   --keep-lab     leave the lab up at the end (reset: fw1 links up, the
#                  virtual addresses back on fw1)
#   --json FILE    also write the results as JSON (tests/lab/test_failover.py)
#   --quiet        only the report block
# Environment: TANDEM_DATAPATH=af_xdp runs both nodes on the AF_XDP data
# path (datapath.source = "af_xdp", one worker) instead of NFQUEUE.
# TDM_LAB_PREFIX [tdm-drill-] the lab's namespace prefix. A lab
# that was already up under it is reset and kept; one the drill built is
# removed at the end.
# Exit: 0 the drill ran and every connection survived, 1 some did not or
# the drill failed, 2 usage, 77 not root / no namespaces.
#
# Bounded: the whole drill runs under a 300 s timeout; every wait in it has
# its own deadline. Cleanup (a trap) kills only the processes it started
# (by pid), deletes the nft table the killed node left behind, and removes
# or resets the lab.
# Must never: touch the root namespace or a lab of another prefix, or kill a
# process it did not start.
set -euo pipefail

if [ "${TDM_DRILL_TIMED:-}" != 1 ]; then
	TDM_DRILL_TIMED=1 exec timeout --kill-after=10 300 bash "$0" "$@"
fi

SRC=$(cd "$(dirname "$0")/.." && pwd)
LAB="$SRC/deploy/lab.sh"
export TDM_LAB_PREFIX=${TDM_LAB_PREFIX:-tdm-drill-}
P=$TDM_LAB_PREFIX
PY=/usr/bin/python3

N=50 BEFORE=3 AFTER=5 HB=100 DEAD=3 BUILD="$SRC/build" KEEP=0 JSON="" QUIET=0
usage() { sed -n '/^# Usage/,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=${2:?}; shift ;;
	--before) BEFORE=${2:?}; shift ;;
	--after) AFTER=${2:?}; shift ;;
	--heartbeat) HB=${2:?}; shift ;;
	--dead-count) DEAD=${2:?}; shift ;;
	--build) BUILD=${2:?}; shift ;;
	--keep-lab) KEEP=1 ;;
	--json) JSON=${2:?}; shift ;;
	--quiet) QUIET=1 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
	shift
done
int_in() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
int_in "$N" 1 1000 || usage
int_in "$BEFORE" 1 60 || usage
int_in "$AFTER" 1 120 || usage
int_in "$HB" 10 10000 || usage
int_in "$DEAD" 2 100 || usage

NODE=${TANDEM_NODE:-$BUILD/tandem-node}
SYNCD=${TANDEM_SYNCD:-$BUILD/syncd/tandem-syncd}

say() { [ "$QUIET" = 1 ] || echo "drill: $*"; }
die() { echo "drill: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
	echo "drill: needs root (network namespaces); skipped" >&2
	exit 77
fi
[ -x "$NODE" ] || die "no tandem-node at $NODE (meson setup build && meson compile -C build)"
[ -x "$SYNCD" ] || die "no tandem-syncd at $SYNCD (meson setup build && meson compile -C build)"
command -v protoc >/dev/null || die "protoc is missing (apt-get install protobuf-compiler)"
$PY -c 'import google.protobuf' 2>/dev/null || die "python3-protobuf is missing"

tmp=$(mktemp -d /tmp/tandem-drill.XXXXXX)
ctl=/run/tandem/${P%-} # the nodes' and syncd's control sockets: <ctl>/fw1, <ctl>/fw2
lab_was_up=0
lab_status=0
bash "$LAB" status >/dev/null 2>&1 || lab_status=$?
# a pair lab already up under this prefix is kept (and reset) at the end
if [ $lab_status = 0 ] && [ -e "/run/netns/${P}fw2" ]; then
	lab_was_up=1
fi

# shellcheck disable=SC2317  # called from the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local pid dev sig
	# only what the drill started: pids recorded by the orchestrator, and
	# only while that pid still runs something of this drill (its command
	# line names the drill's temporary directory), never a reused pid
	if [ -f "$tmp/pids" ]; then
		for sig in TERM KILL; do
			while read -r pid; do
				[[ $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) == *"$tmp/"* ]] || continue
				kill "-$sig" "$pid" 2>/dev/null || true
			done <"$tmp/pids"
			[ "$sig" = KILL ] || sleep 0.5
		done
	fi
	# the SIGKILLed node could not remove its table; with no node bound
	# its queues would drop everything
	local ns
	for ns in "${P}fw" "${P}fw2"; do
		[ -e "/run/netns/$ns" ] || continue
		ip netns exec "$ns" nft delete table inet tandem 2>/dev/null || true
	done
	if [ "$lab_was_up" = 1 ] || [ "$KEEP" = 1 ]; then
		# reset: no virtual address left on either node, then `up --pair`
		# brings fw1's links back and puts the addresses on fw1
		local i devs=(x veth-c veth-s veth-d)
		for ns in "${P}fw" "${P}fw2"; do
			for i in 1 2 3; do
				dev=${devs[$i]}
				ip -n "$ns" addr del "10.$i.0.1/16" dev "$dev" 2>/dev/null || true
				ip -n "$ns" -6 addr del "fd00:$i::1/64" dev "$dev" 2>/dev/null || true
			done
		done
		bash "$LAB" up --pair >/dev/null 2>&1 || echo "drill: lab reset failed" >&2
	else
		bash "$LAB" down >/dev/null 2>&1 || true
	fi
	# control sockets the killed node and syncd left behind
	for ns in fw1 fw2; do
		rm -f "$ctl/$ns/node.sock" "$ctl/$ns/syncd.sock"
		rmdir "$ctl/$ns" 2>/dev/null || true
	done
	rmdir "$ctl" 2>/dev/null || true
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "lab ${P}* (pair)"
bash "$LAB" up --pair >/dev/null

cat >"$tmp/drill.py" <<'PY'
"""The drill's orchestrator and its traffic pieces (one file, subcommands):
  run ...            orchestrate: nodes, syncd, traffic, kill, report
  server/client      sequence-checked TCP chunk streams (asyncio)
  pinger             ICMP echo every 10 ms on a raw socket
  sniff              AF_PACKET observer: first frame forwarded by fw2
Results of the pieces: JSON files written on SIGTERM."""
import argparse
import asyncio
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

REC = struct.Struct("!4sIQd")   # magic, connection id, sequence, send time
REC_LEN = 64                    # records are padded to 64 bytes
MAGIC = b"TDRL"
CHUNK_S = 0.1                   # one record every 100 ms per direction
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value; also the cmsg type


def dump(path, obj):
    with open(path + ".part", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".part", path)


# ------------------------------------------------------------ TCP streams

class Stream:
    """One connection: sends numbered records, checks the peer's."""

    def __init__(self, conn_id, reader, writer, table):
        self.id = conn_id
        self.r, self.w = reader, writer
        self.rec = {"id": conn_id, "rx": [], "tx": 0, "errors": [], "closed": None,
                    "closed_at": None}
        table.append(self.rec)
        self.expect = 0

    async def sender(self):
        seq = 0
        try:
            while True:
                b = REC.pack(MAGIC, self.id, seq, time.time()).ljust(REC_LEN, b"\0")
                self.w.write(b)
                seq += 1
                self.rec["tx"] = seq
                await asyncio.sleep(CHUNK_S)
        except (OSError, ConnectionError) as e:
            self.closed(f"send: {e}")

    def closed(self, why):
        if not self.rec["closed"]:
            self.rec["closed"], self.rec["closed_at"] = why, time.time()

    async def receiver(self, first=None):
        try:
            while True:
                b = first if first is not None else await self.r.readexactly(REC_LEN)
                first = None
                magic, cid, seq, _ = REC.unpack_from(b)
                if magic != MAGIC or cid != self.id:
                    self.rec["errors"].append(f"bad record {magic!r} id {cid}")
                    return
                if seq != self.expect:
                    self.rec["errors"].append(f"seq {seq}, expected {self.expect}")
                self.expect = seq + 1
                self.rec["rx"].append(round(time.time(), 4))
        except asyncio.IncompleteReadError:
            self.closed("eof")
        except (OSError, ConnectionError) as e:
            self.closed(f"recv: {e}")


def run_until_term(coro_factory, out, table):
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main():
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        tasks = await coro_factory()
        await stop.wait()
        for t in tasks:
            t.close() if isinstance(t, asyncio.AbstractServer) else t.cancel()

    loop.run_until_complete(main())
    dump(out, table)


def cmd_server(a):
    table, tasks = [], []

    async def handle(reader, writer):
        writer.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            first = await reader.readexactly(REC_LEN)
        except (asyncio.IncompleteReadError, OSError):
            return
        _, cid, _, _ = REC.unpack_from(first)
        s = Stream(cid, reader, writer, table)
        tasks.append(asyncio.ensure_future(s.sender()))
        await s.receiver(first)

    async def start():
        srv = await asyncio.start_server(handle, a.addr, a.port, backlog=1024)
        open(a.out + ".ready", "w").close()
        return [srv]

    def factory():
        return start()
    run_until_term(factory, a.out, table)


def cmd_client(a):
    table, tasks = [], []

    async def one(cid):
        for attempt in range(50):  # the server may still be starting
            try:
                r, w = await asyncio.open_connection(a.dst, a.port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            table.append({"id": cid, "rx": [], "tx": 0, "errors": ["connect failed"],
                          "closed": "never", "closed_at": 0})
            return
        w.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = Stream(cid, r, w, table)
        await asyncio.gather(s.sender(), s.receiver())

    async def start():
        for i in range(a.n):
            tasks.append(asyncio.ensure_future(one(a.id_base + i)))
            await asyncio.sleep(0.01)  # 100 handshakes/s at most
        return tasks

    run_until_term(start, a.out, table)


# ------------------------------------------------------------ ICMP echo

def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF


def cmd_pinger(a):
    v6 = ":" in a.dst
    if v6:  # the kernel fills in the ICMPv6 checksum and strips the IPv6 header
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        req, rep = 128, 129
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        req, rep = 8, 0
    ident = os.getpid() & 0xFFFF
    sent, got = {}, {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    seq, nxt = 0, time.time()
    while not stop:
        now = time.time()
        if now >= nxt:
            seq = (seq + 1) & 0xFFFF
            payload = struct.pack("!d", now).ljust(24, b"p")
            hdr = struct.pack("!BBHHH", req, 0, 0, ident, seq)
            if not v6:
                hdr = struct.pack("!BBHHH", req, 0, csum(hdr + payload), ident, seq)
            try:
                s.sendto(hdr + payload, (a.dst, 0))
            except OSError:
                pass  # no route while the gateway moves: counted as lost
            sent[seq] = now
            nxt += a.interval
            if nxt < now:  # fell behind (loaded VM): no burst to catch up
                nxt = now + a.interval
            continue
        try:
            r = select.select([s], [], [], max(0.0, nxt - now))[0]
        except InterruptedError:
            continue
        if not r:
            continue
        pkt = s.recv(2048)
        icmp = pkt if v6 else pkt[(pkt[0] & 0x0F) * 4:]
        if len(icmp) >= 8:
            t, _, _, i, q = struct.unpack("!BBHHH", icmp[:8])
            if t == rep and i == ident and q in sent and q not in got:
                got[q] = time.time()
    dump(a.out, {"sent": sorted(sent.values()), "replies": sorted(got.values()),
                 "n_sent": len(sent), "n_got": len(got)})


# ------------------------------------------------------------ observer

def cmd_sniff(a):
    """Kernel timestamps (wall clock) of IPv4 frames from the clients'
    network, by source MAC (which node forwarded them): the first frames
    fw2 forwards are the first forwarded after the takeover."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((a.iface, 0))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    macs = {}
    for x in a.mac:
        name, mac = x.split("=", 1)
        macs[bytes.fromhex(mac.replace(":", ""))] = name
    out = {name: {"count": 0, "last": None, "times": []} for name in macs.values()}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    open(a.out + ".ready", "w").close()
    while not stop:
        try:
            if not select.select([s], [], [], 0.2)[0]:
                continue
            data, anc, _, _ = s.recvmsg(64, 64)
        except InterruptedError:
            continue
        name = macs.get(data[6:12])
        # IPv4 from the clients' network only (not the nodes' own frames)
        if name is None or len(data) < 34 or data[26] != 10 or data[27] != 1:
            continue
        ts = time.time()
        for lvl, typ, val in anc:
            if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", val[:16])
                ts = sec + nsec / 1e9
        o = out[name]
        o["count"] += 1
        o["last"] = ts
        if len(o["times"]) < 5000:  # bounded: the first ones matter
            o["times"].append(ts)
    dump(a.out, out)


# ------------------------------------------------------------ control sockets

pb = None


def load_proto(src, tmp):
    global pb
    subprocess.run(["protoc", f"--proto_path={src}/proto", f"--python_out={tmp}",
                    f"{src}/proto/tandem.proto"], check=True)
    sys.path.insert(0, tmp)
    import tandem_pb2
    pb = tandem_pb2


def call(path, req, reply_cls, timeout=5.0):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(path)
        b = req.SerializeToString()
        s.sendall(struct.pack("!I", len(b)) + b)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack("!I", buf[:4])[0]:
            d = s.recv(1 << 16)
            if not d:
                raise EOFError("closed")
            buf += d
        r = reply_cls()
        r.ParseFromString(buf[4:4 + struct.unpack("!I", buf[:4])[0]])
        return r
    finally:
        s.close()


def node_digest(sock):
    r = call(sock, pb.CtlRequest(seq=1, cmd=pb.CtlRequest.SYNC_DIGEST, source="drill"),
             pb.CtlReply)
    if r.status != 0:
        raise RuntimeError(r.error)
    return {"sessions": r.digest.sessions, "local": r.digest.local, "peer": r.digest.peer,
            "xor": r.digest.xor_hash}


def show(sock):
    r = call(sock, pb.SyncdRequest(seq=1, cmd=pb.SyncdRequest.SHOW_CLUSTER, source="drill"),
             pb.SyncdReply)
    if r.status != 0:
        raise RuntimeError(r.error)
    return r.cluster


def try_show(sock):
    try:
        return show(sock)
    except (OSError, EOFError, RuntimeError):
        return None


def wait_for(pred, timeout, what, step=0.05):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


# ------------------------------------------------------------ orchestration

class Run:
    def __init__(self, a):
        self.a = a
        self.tmp = a.tmp
        self.procs = {}
        self.ctl = f"/run/tandem/{a.prefix.rstrip('-')}"

    def log(self, msg):
        if not self.a.quiet:
            print(f"drill: {msg}", flush=True)

    def ns(self, name):
        return self.a.prefix + name

    def spawn(self, name, ns, argv):
        logf = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(ns)] + argv, stdout=logf,
                             stderr=logf, start_new_session=True)
        self.procs[name] = p
        with open(os.path.join(self.tmp, "pids"), "a") as f:
            f.write(f"{p.pid}\n")
        return p

    def piece(self, name, ns, *args):
        out = os.path.join(self.tmp, name + ".json")
        self.spawn(name, ns, ["/usr/bin/python3", os.path.join(self.tmp, "drill.py"),
                              args[0], "--out", out] + list(args[1:]))
        return out

    def logtext(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log")) as f:
                return f.read()
        except OSError:
            return ""

    def write_configs(self):
        base = open(os.path.join(self.a.src, "conf/tandem.conf")).read()
        old_sock = 'socket = "/run/tandem/fw1/node.sock";'
        assert old_sock in base and 'name = "fw1";' in base
        key = os.urandom(32).hex()
        for n in (1, 2):
            text = (base.replace('name = "fw1";', f'name = "fw{n}";')
                    .replace("\n  id = 1;", f"\n  id = {n};")
                    .replace(old_sock, f'socket = "{self.ctl}/fw{n}/node.sock";'))
            if os.environ.get("TANDEM_DATAPATH") == "af_xdp":
                assert '\n  source = "nfqueue";' in text and "\n  queues = 2;" in text
                text = (text.replace('\n  source = "nfqueue";', '\n  source = "af_xdp";')
                        .replace("\n  queues = 2;", "\n  queues = 1;"))
            with open(os.path.join(self.tmp, f"node{n}.conf"), "w") as f:
                f.write(text)
            o = 3 - n
            vips = ",\n  ".join(
                f'{{ address = "{ad}"; interface = "{dev}"; }}'
                for i, dev in ((1, "veth-c"), (2, "veth-s"), (3, "veth-d"))
                for ad in (f"10.{i}.0.1/16", f"fd00:{i}::1/64"))
            with open(os.path.join(self.tmp, f"syncd{n}.conf"), "w") as f:
                f.write(f"""# generated by deploy/drill.sh
node_id = {n};
cluster = {{ id = 1; key = "{key}"; }};
node_socket = "{self.ctl}/fw{n}/node.sock";
control_socket = "{self.ctl}/fw{n}/syncd.sock";
state_file = "{self.tmp}/syncd{n}.state";
sync = {{ listen = "10.255.0.{n}"; port = 7790; }};
peers = ( {{ id = {o}; address = "10.255.0.{o}"; port = 7790; }} );
heartbeat = {{ interval_ms = {self.a.heartbeat}; dead_count = {self.a.dead_count}; }};
data_heartbeat = {{ bind = "10.1.0.{250 + n}"; peer = "10.1.0.{250 + o}"; port = 7791; }};
role = {{ priority = {200 if n == 1 else 100}; preempt = false; }};
vips = (
  {vips}
);
garp = {{ count = 3; interval_ms = 100; }};
""")

    def sock(self, n, kind):
        return f"{self.ctl}/fw{n}/{kind}.sock"

    def start_pair(self):
        for n, ns in ((1, "fw"), (2, "fw2")):
            try:
                os.unlink(self.sock(n, "node"))
            except OSError:
                pass
            self.spawn(f"node{n}", ns, [self.a.node, "--config",
                                        os.path.join(self.tmp, f"node{n}.conf"),
                                        "--stats", os.path.join(self.tmp, f"stats{n}")])
        for n in (1, 2):
            wait_for(lambda: "filtering" in self.logtext(f"node{n}")
                     or self.procs[f"node{n}"].poll() is not None, 15, f"tandem-node fw{n}")
            if self.procs[f"node{n}"].poll() is not None:
                raise RuntimeError(f"tandem-node fw{n} exited: {self.logtext(f'node{n}')}")
        # fw1 first: it elects itself alone, then fw2 joins as standby and
        # takes the bulk (started at once, the election may go either way)
        self.spawn("syncd1", "fw", [self.a.syncd, "-c", os.path.join(self.tmp, "syncd1.conf")])
        wait_for(lambda: (try_show(self.sock(1, "syncd")) or pb.ClusterStatus()).role == "active",
                 10, "fw1 active")
        self.spawn("syncd2", "fw2", [self.a.syncd, "-c", os.path.join(self.tmp, "syncd2.conf")])

        def roles():
            s1, s2 = try_show(self.sock(1, "syncd")), try_show(self.sock(2, "syncd"))
            return (s1 and s2 and s1.role == "active" and s2.role == "standby" and s2.ready
                    and all(v.endswith(" up") for v in s1.vips))
        try:
            wait_for(roles, 20, "fw1 active, fw2 standby and ready")
        except RuntimeError:
            raise RuntimeError("roles not reached:\n" + self.logtext("syncd1")[-1500:] +
                               self.logtext("syncd2")[-1500:])

    def run(self):
        a = self.a
        t_begin = time.time()
        self.write_configs()
        self.start_pair()
        self.log("pair up: fw1 active, fw2 standby (tandem-node + tandem-syncd on each)")

        srv_out = self.piece("server", "srv", "server", "--addr", "10.2.0.10", "--port", "80")
        sniff_out = self.piece("sniff", "srv", "sniff", "--iface", "eth0",
                               "--mac", "fw1=02:74:64:02:01:00", "--mac", "fw2=02:74:64:02:fc:00")
        wait_for(lambda: os.path.exists(srv_out + ".ready") and os.path.exists(sniff_out + ".ready"),
                 10, "server and observer")
        n1 = a.n // 2
        outs = []
        if n1:
            outs.append(self.piece("client1", "c1", "client", "--dst", "10.2.0.10", "--port", "80",
                                   "--n", str(n1), "--id-base", "1"))
        outs.append(self.piece("client2", "c2", "client", "--dst", "10.2.0.10", "--port", "80",
                               "--n", str(a.n - n1), "--id-base", "100001"))
        ping_out = self.piece("pinger", "c1", "pinger", "--dst", "10.2.0.10", "--interval", "0.01")
        ping6_out = self.piece("pinger6", "c2", "pinger", "--dst", "fd00:2::10", "--interval", "0.01")

        # every connection (and both ping sessions) on the active and copied
        # to the standby before the kill
        want = a.n + 2

        def replicated():
            try:
                d1, d2 = node_digest(self.sock(1, "node")), node_digest(self.sock(2, "node"))
            except (OSError, EOFError, RuntimeError):
                return None
            return (d1, d2) if d1["local"] >= want and d2["peer"] >= want else None
        try:
            wait_for(replicated, 30 + a.n / 20, f"{want} sessions on fw1 and copied to fw2", 0.2)
        except RuntimeError as e:
            d = [node_digest(self.sock(n, "node")) for n in (1, 2)]
            raise RuntimeError(f"{e}: fw1 {d[0]} fw2 {d[1]}")
        self.log(f"{a.n} connections and pings running; every session copied to fw2")
        time.sleep(a.before)
        before1 = node_digest(self.sock(1, "node"))
        before2 = node_digest(self.sock(2, "node"))
        pre = [p for p in show(self.sock(1, "syncd")).peers if p.node_id == 2][0]

        # the crash: processes first, then every link, in one go
        t_kill = time.time()
        for name in ("node1", "syncd1"):
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        subprocess.run(["ip", "-n", self.ns("fw"), "-batch", "-"], check=True,
                       input="".join(f"link set dev {d} down\n"
                                     for d in ("veth-c", "veth-s", "veth-d", "sync0")),
                       text=True)
        t_down = time.time()
        for name in ("node1", "syncd1"):
            self.procs[name].wait(5)
        self.log(f"fw1 killed (SIGKILL tandem-node, tandem-syncd; links down in "
                 f"{(t_down - t_kill) * 1000:.0f} ms)")

        def taken():
            s = try_show(self.sock(2, "syncd"))
            return (time.time(), s) if s and s.role == "active" else None
        t_show, cs = wait_for(taken, 15, "fw2 active", 0.01)
        ages = [p.last_rx_age_ms for pe in cs.peers if pe.node_id == 1 for p in pe.paths
                if p.HasField("last_rx_age_ms")]
        t_decision = t_show - cs.role_age_ms / 1000.0
        detection_ms = (min(ages) - cs.role_age_ms) if ages else None

        # traffic keeps running: surviving connections must exchange data
        # for `after` seconds once they have recovered
        time.sleep(max(0.0, t_decision + 2.0 + a.after - time.time()))
        after2 = node_digest(self.sock(2, "node"))
        cs2 = show(self.sock(2, "syncd"))
        takeover_ms = cs2.last_takeover_ms if cs2.HasField("last_takeover_ms") else None
        t_stop = time.time()
        pieces = ("client1", "client2", "server", "pinger", "pinger6", "sniff")
        for name in pieces:
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name in pieces:
            p = self.procs.get(name)
            if p:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)

        def load(path):
            with open(path) as f:
                return json.load(f)
        clients = [r for o in outs for r in load(o)]
        servers = {r["id"]: r for r in load(srv_out)}
        ping = load(ping_out)
        ping6 = load(ping6_out)
        sniff = load(sniff_out)

        win0 = t_stop - a.after
        survived, lost, stalls = 0, [], []
        for c in clients:
            s = servers.get(c["id"])
            why = None
            if s is None:
                why = "never reached the server"
            else:
                for side, r in (("client", c), ("server", s)):
                    if r["errors"]:
                        why = f"{side}: {r['errors'][0]}"
                        break
                    # the other end stopping first is no failure
                    if r["closed"] and (r["closed_at"] or 0) < t_stop:
                        why = f"{side}: {r['closed']}"
                        break
                    rx = [t for t in r["rx"] if t >= win0 - 1.0]
                    pts = [win0] + [t for t in rx if t >= win0] + [t_stop]
                    gap = max(b - x for x, b in zip(pts, pts[1:]))
                    if gap > 1.0:
                        why = f"{side}: no data for {gap:.1f} s in the last {a.after} s"
                        break
                if why is None:
                    for r in (c, s):
                        rx = [t for t in r["rx"] if t >= t_kill - 1.0]
                        pts = [t_kill - 1.0] + rx
                        stalls.append(max(b - x for x, b in zip(pts, pts[1:])))
            if why is None:
                survived += 1
            else:
                lost.append((c["id"], why))

        def longest_gap(rep):
            gaps = [b - x for x, b in zip(rep, rep[1:])]
            return max(gaps) * 1000 if gaps else None
        first_reply_after = next((t for t in ping["replies"] if t > t_kill), None)
        fw2_first = next((t for t in sniff["fw2"]["times"] if t > t_kill), None)
        first_fwd_ms = (fw2_first - t_kill) * 1000 if fw2_first else None
        res = {
            "connections": a.n, "survived": survived, "lost": lost,
            "detection_ms": detection_ms,
            "kill_to_decision_ms": (t_decision - t_kill) * 1000,
            "takeover_ms": takeover_ms,
            "first_forwarded_ms": first_fwd_ms,
            "first_reply_after_kill_ms": (first_reply_after - t_kill) * 1000
            if first_reply_after else None,
            "ping_longest_gap_ms": longest_gap(ping["replies"]),
            "ping_sent": ping["n_sent"], "ping_replies": ping["n_got"],
            "ping6_longest_gap_ms": longest_gap(ping6["replies"]),
            "ping6_sent": ping6["n_sent"], "ping6_replies": ping6["n_got"],
            "tcp_stall_max_ms": max(stalls) * 1000 if stalls else None,
            "tcp_stall_p50_ms": sorted(stalls)[len(stalls) // 2] * 1000 if stalls else None,
            "standby_before": before2, "active_before": before1, "standby_after": after2,
            "fw2_forwarded_before_kill": sum(1 for t in sniff["fw2"]["times"] if t <= t_kill),
            "fw1_last_forwarded_ms": (sniff["fw1"]["last"] - t_kill) * 1000
            if sniff["fw1"]["last"] else None,
            "fw2_role_after": cs2.role, "fw2_epoch": cs2.epoch,
            "ack_p50_ms": pre.ack_p50_us / 1000 if pre.HasField("ack_p50_us") else None,
            "ack_p99_ms": pre.ack_p99_us / 1000 if pre.HasField("ack_p99_us") else None,
            "events_sent": pre.events_sent, "lag_events": pre.lag_events,
            "reason": cs.role_reason, "elapsed_s": time.time() - t_begin,
        }
        if a.json:
            dump(a.json, res)
        return res


def fmt(v, unit=" ms", nd=0):
    return "n/a" if v is None else f"{v:.{nd}f}{unit}"


def report(r, a):
    lines = [
        "== Tandem failover drill " + "=" * 40,
        f"pair            fw1 (active) + fw2 (standby); heartbeat {a.heartbeat} ms x {a.dead_count}, sync link + data path",
        f"load            {r['connections']} TCP connections (chunk every 100 ms both ways, "
        f"sequence-checked) + ICMP echo every 10 ms (IPv4 and IPv6)",
        f"crash           SIGKILL tandem-node + tandem-syncd on fw1, its 4 links down",
        f"detection       {fmt(r['detection_ms'])} last heartbeat heard -> takeover decision "
        f"(kill -> decision {fmt(r['kill_to_decision_ms'])})",
        f"addresses       moved {fmt(r['takeover_ms'])} after the decision (PROMOTE, then netlink + GARP/NA)",
        f"first forwarded {fmt(r['first_forwarded_ms'])} after the kill (first packet fw2 forwarded "
        f"to the server)",
        f"ping            longest gap {fmt(r['ping_longest_gap_ms'])} IPv4 ({r['ping_replies']}/"
        f"{r['ping_sent']} replies), {fmt(r['ping6_longest_gap_ms'])} IPv6 ({r['ping6_replies']}/"
        f"{r['ping6_sent']})",
        f"connections     {r['survived']}/{r['connections']} survived (in-order data both ways "
        f"for {a.after} s after the failover); TCP stall p50 {fmt(r['tcp_stall_p50_ms'])} "
        f"max {fmt(r['tcp_stall_max_ms'])}",
        f"replication     {r['events_sent']} events to fw2 before the kill, {r['lag_events']} not yet "
        f"applied; sent -> applied ack p50 {fmt(r['ack_p50_ms'], nd=1)} p99 {fmt(r['ack_p99_ms'], nd=1)}",
        f"standby table   before: {r['standby_before']['peer']} peer + "
        f"{r['standby_before']['local']} local (active had {r['active_before']['local']}); "
        f"after: {r['standby_after']['local']} local + {r['standby_after']['peer']} peer",
    ]
    for cid, why in r["lost"][:5]:
        lines.append(f"lost            connection {cid}: {why}")
    lines.append("=" * 66)
    print("\n".join(lines), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server"); s.add_argument("--out"); s.add_argument("--addr")
    s.add_argument("--port", type=int)
    s = sub.add_parser("client"); s.add_argument("--out"); s.add_argument("--dst")
    s.add_argument("--port", type=int); s.add_argument("--n", type=int)
    s.add_argument("--id-base", type=int)
    s = sub.add_parser("pinger"); s.add_argument("--out"); s.add_argument("--dst")
    s.add_argument("--interval", type=float)
    s = sub.add_parser("sniff"); s.add_argument("--out"); s.add_argument("--iface")
    s.add_argument("--mac", action="append"); s.add_argument("--after-file")
    s = sub.add_parser("run")
    for k in ("tmp", "src", "prefix", "node", "syncd", "json"):
        s.add_argument("--" + k)
    for k in ("n", "before", "after", "heartbeat", "dead-count"):
        s.add_argument("--" + k, type=int)
    s.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if a.cmd == "server":
        return cmd_server(a)
    if a.cmd == "client":
        return cmd_client(a)
    if a.cmd == "pinger":
        return cmd_pinger(a)
    if a.cmd == "sniff":
        return cmd_sniff(a)
    load_proto(a.src, a.tmp)
    r = Run(a)
    try:
        res = r.run()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"drill: failed: {e}", file=sys.stderr)
        for name in ("node1", "node2", "syncd1", "syncd2"):
            t = r.logtext(name)
            if t:
                i = t.find("ERROR: AddressSanitizer")
                part = t[i:i + 6000] if i >= 0 else t[-1200:]  # a sanitizer report: its head
                print(f"--- {name} log\n{part}", file=sys.stderr)
        return 1
    finally:
        for name in ("node2", "syncd2", "node1", "syncd1"):
            p = r.procs.get(name)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        for p in r.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    report(res, a)
    return 0 if res["survived"] == res["connections"] else 1


if __name__ == "__main__":
    sys.exit(main() or 0)
PY

opts=()
[ -z "$JSON" ] || opts+=(--json "$JSON")
[ "$QUIET" = 0 ] || opts+=(--quiet)
rc=0
$PY "$tmp/drill.py" run --tmp "$tmp" --src "$SRC" --prefix "$P" --node "$NODE" --syncd "$SYNCD" \
	--n "$N" --before "$BEFORE" --after "$AFTER" --heartbeat "$HB" --dead-count "$DEAD" \
	"${opts[@]}" || rc=$?
exit $rc
