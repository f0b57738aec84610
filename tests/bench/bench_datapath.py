#!/usr/bin/python3
"""bench_datapath.py - data-path benchmark of tandem-node against plain
forwarding and kernel nftables stateful filtering, in the lab's namespaces
(deploy/lab.sh with prefix tdm-bench-). Not run in CI: run it by hand, as
root, on an otherwise quiet machine.

  meson setup /tmp/bld-bench /work/main -Dbench=true && meson compile -C /tmp/bld-bench
  /usr/bin/python3 tests/bench/bench_datapath.py --build /tmp/bld-bench \\
      [--runs 5] [--seconds 5] [--wait-quiet 40] [--perf]

Configurations of the firewall namespace (interleaved: every run visits
each configuration once, in an order rotated per run, so slow drifts of the
shared machine land on every column alike):
  plain     no ruleset at all (no conntrack either)
  nft       table inet bench, forward chain, policy drop:
            ct state established,related accept; ct state new accept
  tandem-q1 tandem-node, queues = 1, one accept rule for the traffic
  tandem-q2 the same with queues = 2

Rows (each one measurement per configuration per run; the table shows the
median over the runs):
  udp-1flow      64-byte UDP (frame with FCS), one flow, sender tdm-bench-c1
  udp-1024flows  the same, 1024 source ports, one sender
  udp-2senders   one flow from c1 and one from c2 at the same time
  tcp-bulk       iperf3, one TCP connection, Gbit/s
  new-sessions   every packet a new flow (64 source addresses x 64000
                 source ports, each used once; a fresh address block for
                 every measurement so that no flow repeats within any
                 timeout); delivered packets/s = sessions accepted/s
UDP rates are what the receiver (udpsink on 10.2.0.10:9000) counted, from
its first to its last packet. A row PASSes when the better tandem column
reaches 0.8 x the nft-stateful median (both ratios are printed).

--perf adds, after the table: the CPU cost per delivered packet of every
configuration at a fixed offered load (sender / node / sink, 3 interleaved
runs), and for the FAILing rows (else udp-2senders) perf stat and perf
record -g of tandem-node and of the whole machine (top symbols, and the
node's inclusive profile: where its time goes).

Must never: send outside the lab (udpgen refuses other addresses), leave a
process, a namespace or an nft table behind (everything is torn down in a
finally), touch a namespace that is not tdm-bench-*, or stop a process it
did not start.
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "lab"))
import labtest  # noqa: E402

PREFIX = "tdm-bench-"
SERVER = "10.2.0.10"
UDP_PORT = 9000
TCP_PORT = 5201
C1, C2 = "10.1.0.2", "10.1.0.3"
# new-sessions address blocks: 10.1.64.0 + k * 64, k < 768 (stays inside
# 10.1.0.0/16, well away from the hosts' own 10.1.0.x)
NS_BLOCK_BASE = (10 << 24) | (1 << 16) | (64 << 8)
NS_ADDRS, NS_PORTS, NS_SPORT = 64, 64000, 1024

CONFIGS = ["plain", "nft", "tandem-q1", "tandem-q2"]
ROWS = ["udp-1flow", "udp-1024flows", "udp-2senders", "tcp-bulk", "new-sessions"]
UNITS = {"udp-1flow": "kpps", "udp-1024flows": "kpps", "udp-2senders": "kpps",
         "tcp-bulk": "Gbit/s", "new-sessions": "ksess/s"}

NFT_STATEFUL = """table inet bench {
  chain filter_forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ct state new accept
  }
}
"""

# One accept rule for the benchmark's traffic (tracking "normal", the
# default). The table holds every session a new-sessions run can create
# (the kernel's conntrack, for comparison, is capped at nf_conntrack_max
# and evicts unreplied entries early when full).
TANDEM_RULES = """
 { name = "bench"; from = "trust"; to = "untrust"; destination = "10.2.0.10";
   service = ["udp/9000", "tcp/5201"]; action = "accept"; }
"""
TANDEM_TABLE = "max_sessions = 4194304;"

_started = []  # Popen objects this script started (killed by group at the end)


def ns(host):
    return PREFIX + host


def popen(host, args, **kw):
    p = subprocess.Popen(["ip", "netns", "exec", ns(host)] + args, start_new_session=True,
                         text=True, **kw)
    _started.append(p)
    return p


def kill(p):
    if p and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def sh(host, cmd, timeout=30):
    return subprocess.run(["ip", "netns", "exec", ns(host), "bash", "-c", cmd],
                          capture_output=True, text=True, timeout=timeout)


def kv(line):
    return {k: v for k, v in (w.split("=", 1) for w in line.split() if "=" in w)}


def readline_timeout(p, timeout):
    """One line of p's stdout within timeout seconds, or ''."""
    r, _, _ = select.select([p.stdout], [], [], timeout)
    return p.stdout.readline() if r else ""


# --- counters around each measurement ---------------------------------------

def nfq_counters():
    """{queue: (queue_dropped, user_dropped)} of the firewall namespace."""
    r = sh("fw", "cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null")
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 7:
            out[int(f[0])] = (int(f[5]), int(f[6]))
    return out


def udp_rcvbuf_errors():
    r = sh("srv", "cat /proc/net/snmp")
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith("Udp:")]
    if len(rows) >= 2:
        d = dict(zip(rows[0][1:], rows[1][1:]))
        return int(d.get("RcvbufErrors", 0))
    return 0


def ct_count():
    r = sh("fw", "cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null")
    try:
        return int(r.stdout.strip())
    except ValueError:
        return -1


# Flush the firewall namespace's conntrack table (ctnetlink
# IPCTNL_MSG_CT_DELETE without attributes), so that the entries of a
# new-sessions run neither linger into the next configuration's
# measurements nor expire in the middle of them. No conntrack tool needed.
CT_FLUSH = r"""
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
for fam in (2, 10):
    body = struct.pack("BBH", fam, 0, 0)  # nfgenmsg
    hdr = struct.pack("=IHHII", 16 + len(body), (1 << 8) | 2, 0x1 | 0x4, fam, 0)
    s.send(hdr + body)
    ack = s.recv(4096)
    err = struct.unpack_from("=i", ack, 16)[0]
    if err not in (0, -2):
        raise SystemExit(f"conntrack flush: error {err}")
"""


def ct_flush():
    r = sh("fw", f"/usr/bin/python3 -c '{CT_FLUSH}'", timeout=60)
    if r.returncode:
        print("  warning: " + r.stderr.strip()[-300:], flush=True)


# --- configurations -----------------------------------------------------------

class Config:
    def __init__(self, name, lab):
        self.name = name
        self.lab = lab
        self.node = None

    def __enter__(self):
        sh("fw", "nft flush ruleset", timeout=30)
        if self.name == "nft":
            r = subprocess.run(["ip", "netns", "exec", ns("fw"), "nft", "-f", "-"],
                               input=NFT_STATEFUL, capture_output=True, text=True, timeout=30)
            if r.returncode:
                raise RuntimeError("nft -f: " + r.stderr.strip())
        elif self.name.startswith("tandem-q"):
            q = int(self.name[-1])
            self.node = labtest.Node(self.lab, labtest.config(
                queues=q, table=TANDEM_TABLE, rules=TANDEM_RULES))
        return self

    def __exit__(self, *exc):
        if self.node:
            rc = self.node.stop()
            if rc not in (0, None):
                print(f"  warning: tandem-node exited {rc}: {self.node.read_log()[-500:]}",
                      flush=True)
            self.node = None
        sh("fw", "nft flush ruleset", timeout=30)
        if self.name == "nft":
            ct_flush()
        return False

    def node_cpu(self):
        """CPU seconds (utime + stime, all threads) of tandem-node; 0 without."""
        if not self.node:
            return 0.0
        try:
            with open(f"/proc/{self.node.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def node_stats(self):
        if not self.node:
            return None
        try:
            return self.node.stats(settle=0.25)
        except (OSError, ValueError, KeyError):
            return None


def stats_delta(a, b):
    """Per-shard packets and drop reasons between two node.stats()."""
    if not a or not b:
        return ""
    shards = [s1.get("packets", 0) - s0.get("packets", 0)
              for s0, s1 in zip(a["shard"], b["shard"])]
    drops = {k: v - a["drop"].get(k, 0) for k, v in b["drop"].items()
             if v - a["drop"].get(k, 0)}
    created = sum(b.get("created", {}).values()) - sum(a.get("created", {}).values())
    s = f" shard_pkts={shards} created={created}"
    if drops:
        s += f" drops={drops}"
    return s


# --- measurements ---------------------------------------------------------------

class Bench:
    def __init__(self, args, lab):
        self.a = args
        self.lab = lab
        self.gen = os.path.join(args.build, "tests", "bench", "udpgen")
        self.sink = os.path.join(args.build, "tests", "bench", "udpsink")
        self.block = 0
        self.max_packets = args.seconds * 3000000
        # set once the traffic of a measurement has started (profile()
        # starts perf on it)
        self.started = threading.Event()
        self.last_cpu = {}

    def gen_args(self, src, extra):
        return [self.gen, "--dst", SERVER, "--dport", str(UDP_PORT), "--src", src,
                "--seconds", str(self.a.seconds), "--max-packets", str(self.max_packets)] + extra

    def udp(self, cfg, senders):
        """senders: [(host, udpgen args)]. Returns (kpps delivered, note)."""
        sink = popen("srv", [self.sink, "--port", str(UDP_PORT), "--addr", SERVER,
                             "--seconds", str(self.a.seconds + 20), "--idle-ms", "800"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        gens = []
        try:
            if readline_timeout(sink, 10).strip() != "ready":
                raise RuntimeError("udpsink did not start: " + (sink.stderr.read() or ""))
            q0, e0, s0 = nfq_counters(), udp_rcvbuf_errors(), cfg.node_stats()
            for host, args in senders:
                gens.append(popen(host, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            self.started.set()
            n0 = cfg.node_cpu()
            sent, gen_cpu = 0, 0.0
            for g in gens:
                out, err = g.communicate(timeout=self.a.seconds + 20)
                if g.returncode:
                    raise RuntimeError("udpgen failed: " + err.strip())
                sent += int(kv(out)["sent"])
                gen_cpu += float(kv(out).get("cpu", 0))
            out, err = sink.communicate(timeout=30)
            r = kv(out.strip().splitlines()[-1])
            n1 = cfg.node_cpu()
            q1, e1, s1 = nfq_counters(), udp_rcvbuf_errors(), cfg.node_stats()
        finally:
            for p in gens + [sink]:
                kill(p)
        delivered = int(r["packets"])
        nfq = {k: (q1[k][0] - q0.get(k, (0, 0))[0], q1[k][1] - q0.get(k, (0, 0))[1])
               for k in q1}
        note = (f"sent={sent} delivered={delivered} span={r['first_to_last']}s "
                f"sink_rcvbuf_err={e1 - e0}")
        if nfq:
            note += f" nfq_drop(queue,user)={nfq}"
        note += stats_delta(s0, s1)
        if cfg.name == "nft":
            note += f" ct_count={ct_count()}"
        self.last_cpu = {"senders": gen_cpu, "node": n1 - n0,
                         "sink": float(r.get("cpu", 0)), "delivered": delivered}
        return float(r["pps"]) / 1000.0, note

    def cost(self, cfg, pps):
        """CPU microseconds per delivered packet at a fixed offered load
        (one flow from c1, paced): {part: us}. Senders' time includes the
        forwarding work the kernel does inline in their sendmmsg (for
        NFQUEUE: up to the queue); the node's includes the reinjected rest
        of the path done inside its verdict sendto. Work that spills into
        ksoftirqd is not counted."""
        v, note = self.udp(cfg, [("c1", self.gen_args(C1, ["--pps", str(pps)]))])
        c = self.last_cpu
        n = max(1, c["delivered"])
        out = {k: c[k] / n * 1e6 for k in ("senders", "node", "sink")}
        out["total"] = sum(out.values())
        out["kpps"] = v
        return out

    def tcp(self, cfg):
        srv = popen("srv", ["iperf3", "-s", "-1", "-B", SERVER, "-p", str(TCP_PORT)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while time.time() < deadline:
                if f"{SERVER}:{TCP_PORT}" in sh("srv", "ss -ltnH").stdout:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("iperf3 server did not listen")
            s0 = cfg.node_stats()
            cmd = ["iperf3", "-c", SERVER, "-p", str(TCP_PORT), "-t", str(self.a.seconds), "-J"]
            self.started.set()
            r = subprocess.run(["ip", "netns", "exec", ns("c1")] + cmd, capture_output=True,
                               text=True, timeout=self.a.seconds + 30)
            j = json.loads(r.stdout)
            if "error" in j:
                raise RuntimeError("iperf3: " + j["error"])
            s1 = cfg.node_stats()
        finally:
            kill(srv)
        end = j["end"]
        gbps = end["sum_received"]["bits_per_second"] / 1e9
        retr = end.get("sum_sent", {}).get("retransmits", "?")
        return gbps, f"retransmits={retr}" + stats_delta(s0, s1)

    def measure(self, cfg, row):
        if row == "udp-1flow":
            return self.udp(cfg, [("c1", self.gen_args(C1, []))])
        if row == "udp-1024flows":
            return self.udp(cfg, [("c1", self.gen_args(C1, ["--ports", "1024"]))])
        if row == "udp-2senders":
            return self.udp(cfg, [("c1", self.gen_args(C1, [])),
                                  ("c2", self.gen_args(C2, []))])
        if row == "tcp-bulk":
            return self.tcp(cfg)
        if row == "new-sessions":
            base = NS_BLOCK_BASE + self.block * NS_ADDRS
            self.block += 1
            assert self.block < 768, "out of fresh address blocks"
            src = ".".join(str(base >> s & 255) for s in (24, 16, 8, 0))
            return self.udp(cfg, [("c1", self.gen_args(src, [
                "--addrs", str(NS_ADDRS), "--sport", str(NS_SPORT),
                "--ports", str(NS_PORTS), "--unique"]))])
        raise ValueError(row)


# --- machine state ----------------------------------------------------------------

def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def other_namespaces():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    names = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith("tdm-") and not n.startswith(PREFIX)]


def wait_quiet(minutes):
    """Poll every 60 s for at most `minutes`: load1 < 0.7 and no other tdm-
    namespaces. Returns a sentence for the header."""
    t0 = time.time()
    while True:
        la, others = load1(), other_namespaces()
        waited = (time.time() - t0) / 60
        if la < 0.7 and not others:
            return f"machine quiet after {waited:.0f} min (load1 {la:.2f}, no other tdm- namespaces)"
        if waited >= minutes:
            return (f"machine NOT quiet after {waited:.0f} min, ran anyway: load1 {la:.2f}, "
                    f"{len(others)} other tdm- namespaces ({' '.join(sorted(others)[:8])}...)")
        print(f"waiting for a quiet machine: load1 {la:.2f}, {len(others)} other tdm- "
              f"namespaces, {waited:.0f} min so far", flush=True)
        time.sleep(60)


def git_state():
    r = subprocess.run(["git", "-C", SRC, "log", "-1", "--format=%h %s"], capture_output=True,
                       text=True)
    d = subprocess.run(["git", "-C", SRC, "status", "--porcelain", "--untracked-files=no"],
                       capture_output=True, text=True)
    dirty = [line[3:] for line in d.stdout.splitlines()]
    return r.stdout.strip() + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")


# --- perf -------------------------------------------------------------------------

def profile(bench, lab, row, queues, seconds):
    """perf stat and perf record -g of tandem-node (and of the whole machine)
    while `row` runs; returns the report lines (top symbols)."""
    tmp = tempfile.mkdtemp(prefix="tandem-perf-")
    try:
        return profile_in(bench, lab, row, queues, seconds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def profile_in(bench, lab, row, queues, seconds, tmp):
    cfg = Config(f"tandem-q{queues}", lab)
    out = []
    node_data = os.path.join(tmp, "node.data")
    all_data = os.path.join(tmp, "all.data")
    rates = []
    with cfg:
        pid = cfg.node.proc.pid  # ip netns exec execs the node
        rec = str(max(2, seconds - 3))
        # one traffic run per perf tool; perf starts 0.5 s after the
        # senders and stops before them
        tools = [["perf", "stat", "-p", str(pid), "-e",
                  "task-clock,context-switches,cpu-migrations,cycles,instructions",
                  "--", "sleep", rec],
                 ["perf", "record", "-B", "-g", "-o", node_data, "-p", str(pid), "--",
                  "sleep", rec],
                 ["perf", "record", "-B", "-a", "-g", "-o", all_data, "--", "sleep", rec]]
        pstat = None
        for tool in tools:
            res = {}
            bench.started.clear()
            t = threading.Thread(target=lambda: res.update(r=bench.measure(cfg, row)))
            t.start()
            bench.started.wait(timeout=30)
            time.sleep(0.5)
            r = subprocess.run(tool, capture_output=True, text=True, timeout=int(rec) + 60)
            t.join(timeout=seconds + 60)
            rates.append(res.get("r", (0.0,))[0])
            pstat = pstat or r
    out.append(f"--- perf: {row}, tandem queues={queues} (rates during the three profiled "
               f"runs: {' / '.join(f'{x:.0f}' for x in rates)} {UNITS[row]})")
    out.append("perf stat -p <node>: " + " | ".join(
        re.sub(r"\s+", " ", line.strip()) for line in pstat.stderr.splitlines()
        if re.search(r"task-clock|context-switches|migrations|cycles|instructions", line)))

    def report(data, sort, limit, children=False, n=20):
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio",
                              "--children" if children else "--no-children",
                              "--sort", sort, "-g", "none", "--percent-limit", str(limit)],
                             capture_output=True, text=True, timeout=120)
        lines = [re.sub(r"( -)+$", "", re.sub(r"\s+", " ", line.strip()))
                 for line in rep.stdout.splitlines()
                 if line.strip() and not line.startswith("#")]
        return ["  " + line for line in lines[:n]]

    out.append("CPU by command, whole machine (perf record -a -g, share of samples):")
    out += report(all_data, "comm", 0.5, n=12)
    out.append("top symbols, whole machine (self):")
    out += report(all_data, "comm,symbol", 0.8, n=25)
    out.append("top symbols, tandem-node threads (perf record -g -p, self):")
    out += report(node_data, "symbol", 1.0, n=25)
    out.append("tandem-node threads, inclusive (children) - where the worker's time goes:")
    out += report(node_data, "symbol", 4.0, children=True, n=30)
    return out


# --- main -------------------------------------------------------------------------

def verdict(res, row):
    """PASS/FAIL/n/a of a row from its samples: the better tandem median
    against 0.8 x the nft-stateful median."""
    med = {c: statistics.median(res[(row, c)]) if res.get((row, c)) else None
           for c in ("nft", "tandem-q1", "tandem-q2")}
    if not med["nft"]:
        return "n/a"
    rs = [med[c] / med["nft"] for c in ("tandem-q1", "tandem-q2") if med[c] is not None]
    if not rs:
        return "n/a"
    return "PASS" if max(rs) >= 0.8 else "FAIL"


def fmt(v):
    return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("TANDEM_BENCH_BUILD", "/tmp/bld-bench"),
                    help="meson build dir configured with -Dbench=true")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="MIN",
                    help="first wait up to MIN minutes for load1 < 0.7 and no other tdm- labs")
    ap.add_argument("--perf", action="store_true",
                    help="after the table: CPU cost per packet of each configuration, and "
                         "perf stat / perf record of tandem-node on the --perf-rows")
    ap.add_argument("--cost-pps", type=int, default=100000, metavar="PPS",
                    help="with --perf: offered load of the CPU-cost-per-packet runs [100000]")
    ap.add_argument("--perf-rows", default="auto",
                    help="rows to profile [auto: the FAILing rows, else udp-2senders; "
                         "none: no perf]")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_datapath needs root")
        return 77
    rows = [r for r in a.rows.split(",") if r]
    configs = [c for c in a.configs.split(",") if c]
    assert all(r in ROWS for r in rows) and all(c in CONFIGS for c in configs)
    assert 1 <= a.seconds <= 60 and 1 <= a.runs <= 20
    node = os.path.join(a.build, "tandem-node")
    for b in (node, os.path.join(a.build, "tests/bench/udpgen"),
              os.path.join(a.build, "tests/bench/udpsink")):
        if not os.access(b, os.X_OK):
            print(f"missing {b}: meson setup {a.build} {SRC} -Dbench=true && meson compile -C {a.build}")
            return 1
    labtest.NODE_BIN = node

    quiet = wait_quiet(a.wait_quiet) if a.wait_quiet > 0 else "no quiet-machine wait requested"
    lab = labtest.Lab(PREFIX)
    bench = Bench(a, lab)
    res = {(r, c): [] for r in rows for c in configs}
    notes = []
    perf_out = []
    t_start = time.time()
    la_start, others_start = load1(), other_namespaces()
    source = git_state()
    try:
        lab.down()
        lab.up()
        for run in range(a.runs):
            order = configs[run % len(configs):] + configs[:run % len(configs)]
            for c in order:
                cfg = Config(c, lab)
                try:
                    with cfg:
                        for row in rows:
                            time.sleep(0.5)
                            try:
                                v, note = bench.measure(cfg, row)
                            except Exception as e:  # noqa: BLE001 - record, go on
                                v, note = None, f"ERROR {e}"
                            if v is not None:
                                res[(row, c)].append(v)
                            line = (f"run {run + 1} {c:9} {row:13} {fmt(v):>7} {UNITS[row]:7} "
                                    f"{note}")
                            notes.append(line)
                            print(line, flush=True)
                except Exception as e:  # noqa: BLE001 - a config that fails to start
                    print(f"run {run + 1} {c:9} configuration failed: {e}", flush=True)
        if a.perf:
            cost = {c: [] for c in configs}
            for run in range(3):
                for c in configs[run % len(configs):] + configs[:run % len(configs)]:
                    try:
                        with Config(c, lab) as cfg:
                            cost[c].append(bench.cost(cfg, a.cost_pps))
                    except Exception as e:  # noqa: BLE001 - the table still prints
                        print(f"cost run {run + 1} {c}: failed: {e}", flush=True)
            perf_out.append(f"--- CPU cost per delivered packet, one flow from c1 paced at "
                            f"{a.cost_pps} pps for {a.seconds} s, median of 3 interleaved runs "
                            "(us/packet; getrusage of udpgen/udpsink, /proc/PID/stat of the node)")
            perf_out.append(f"  {'config':10} {'delivered kpps':>14} {'sender':>7} {'node':>7} "
                            f"{'sink':>7} {'total':>7}")
            for c in configs:
                if not cost[c]:
                    continue
                m = {k: statistics.median(x[k] for x in cost[c])
                     for k in ("kpps", "senders", "node", "sink", "total")}
                perf_out.append(f"  {c:10} {m['kpps']:14.1f} {m['senders']:7.2f} {m['node']:7.2f} "
                                f"{m['sink']:7.2f} {m['total']:7.2f}")
            prow = [r for r in a.perf_rows.split(",") if r in ROWS or r == "auto"]
            if prow == ["auto"]:
                prow = [r for r in rows if verdict(res, r) == "FAIL"] or ["udp-2senders"]
            for row in prow:
                for q in (1, 2):
                    try:
                        perf_out += profile(bench, lab, row, q, max(a.seconds, 6))
                    except Exception as e:  # noqa: BLE001 - the table still prints
                        perf_out.append(f"--- perf: {row}, queues={q}: failed: {e}")
    finally:
        for p in _started:
            kill(p)
        sh("fw", "nft flush ruleset") if os.path.exists(f"/run/netns/{ns('fw')}") else None
        lab.down()
        for d in getattr(labtest, "_dirs", []):  # the nodes' temp dirs
            shutil.rmtree(d, ignore_errors=True)
    la_end, others_end = load1(), other_namespaces()
    elapsed = (time.time() - t_start) / 60

    med = {k: (statistics.median(v) if v else None) for k, v in res.items()}
    print()
    print("=" * 100)
    print("tandem data-path benchmark (tests/bench/bench_datapath.py)")
    print(f"source at the start of the run: {source}")
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(node)))
    print(f"node: {node} (built {built}; the tree may have changed since)")
    print(f"machine: {os.cpu_count()} CPUs, kernel {os.uname().release}; {quiet}")
    print(f"during the run ({elapsed:.0f} min): load1 {la_start:.2f} at start, {la_end:.2f} at end; "
          f"other tdm- namespaces: {len(others_start)} at start, {len(others_end)} at end")
    print(f"method: {a.runs} runs x {a.seconds} s per cell, configurations interleaved (order "
          f"rotated each run), median shown; lab {PREFIX}* (deploy/lab.sh): "
          f"c1 {C1} / c2 {C2} -> fw -> srv {SERVER}")
    print("commands:")
    print(f"  sink (srv):   udpsink --port {UDP_PORT} --addr {SERVER} --seconds {a.seconds + 20} --idle-ms 800"
          "   (rate = packets counted / first-to-last time)")
    g = f"udpgen --dst {SERVER} --dport {UDP_PORT} --seconds {a.seconds} --max-packets {bench.max_packets}"
    print(f"  udp-1flow:     c1: {g} --src {C1}   (64-byte frames incl. FCS, batch 64, raw IP_HDRINCL)")
    print(f"  udp-1024flows: c1: {g} --src {C1} --ports 1024")
    print(f"  udp-2senders:  c1: {g} --src {C1}  and at the same time  c2: {g} --src {C2}")
    print(f"  tcp-bulk:      srv: iperf3 -s -1 -B {SERVER} -p {TCP_PORT};  c1: iperf3 -c {SERVER} "
          f"-p {TCP_PORT} -t {a.seconds} -J  (sum_received)")
    print(f"  new-sessions:  c1: {g} --src 10.1.X.Y --addrs {NS_ADDRS} --sport {NS_SPORT} "
          f"--ports {NS_PORTS} --unique   (fresh 64-address block from 10.1.64.0 each time)")
    print("  plain: `nft flush ruleset` in fw;  nft-stateful: " +
          " ".join(NFT_STATEFUL.split()))
    print(f"  tandem qN: tandem-node --config (labtest.config(queues=N, table=\"{TANDEM_TABLE}\")"
          f", one rule: {' '.join(TANDEM_RULES.split())}); NFQUEUE defaults queue_len 4096, "
          "no fail-open, no bypass")
    print()
    hdr = (f"{'test':14} | {'unit':7} | {'plain':>7} | {'nft-stateful':>12} | {'tandem q1':>9} | "
           f"{'tandem q2':>9} | {'tandem/nft q1 / q2':>18} | result (>= 0.80 x nft, best of q1/q2)")
    print(hdr)
    print("-" * len(hdr))
    for row in rows:
        nft, t1, t2 = (med.get((row, c)) for c in ("nft", "tandem-q1", "tandem-q2"))
        r1 = t1 / nft if (t1 is not None and nft) else None
        r2 = t2 / nft if (t2 is not None and nft) else None
        result = verdict(res, row)
        ratio = f"{'-' if r1 is None else f'{r1:.2f}'} / {'-' if r2 is None else f'{r2:.2f}'}"
        print(f"{row:14} | {UNITS[row]:7} | {fmt(med.get((row, 'plain'))):>7} | {fmt(nft):>12} | "
              f"{fmt(t1):>9} | {fmt(t2):>9} | {ratio:>18} | {result}")
    print()
    print("samples (per run, in run order):")
    for row in rows:
        for c in configs:
            print(f"  {row:13} {c:9} " + " ".join(fmt(v) for v in res[(row, c)]))
    if perf_out:
        print()
        print("\n".join(perf_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
