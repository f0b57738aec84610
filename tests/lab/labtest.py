"""labtest.py - harness for Tandem's lab tests (real packets in network
namespaces). Used by tests/lab/test_*.py, run as root with /usr/bin/python3.

A test module defines functions named test_*; run_tests() runs each with a
timeout, tears everything down even when one fails or hangs, prints one
line per test and closes with "N passed, N failed".

Pieces:
  Lab(prefix)    deploy/lab.sh up/down with a private namespace prefix
  Node(lab, cfg) tandem-node in the lab's firewall namespace, with a stats file
  lab.sh(ns, cmd) / lab.py(ns, code)  run a command / Python (scapy) in a host
  Capture        tshark in a namespace as the independent observer
  Agent(lab, host)  a Python process in a host running code sent to it,
                 globals kept between calls (sockets stay open)
  config(...)    the lab's config text with overrides
"""
import base64
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

SRC = os.environ.get("TANDEM_SRC", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NODE_BIN = os.environ.get("TANDEM_NODE", os.path.join(SRC, "build", "tandem-node"))
PY = "/usr/bin/python3"


class TestFailure(Exception):
    pass


_procs = []  # every process a test started; killed after each test
_ctl_dir = "/run/tandem/tdm-lab"  # set per lab by Lab()
_dirs = []   # node temp dirs, removed when the module's tests end


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


class Lab:
    def __init__(self, prefix):
        assert prefix.startswith("tdm-")
        self.prefix = prefix
        global _ctl_dir
        # labs side by side must not share a node control socket
        _ctl_dir = "/run/tandem/" + prefix.rstrip("-")
        self.env = dict(os.environ, TDM_LAB_PREFIX=prefix)

    def ns(self, name):
        return self.prefix + name

    def up(self):
        subprocess.run(["bash", os.path.join(SRC, "deploy/lab.sh"), "up"], env=self.env,
                       check=True, stdout=subprocess.DEVNULL, timeout=120)

    def down(self):
        subprocess.run(["bash", os.path.join(SRC, "deploy/lab.sh"), "down"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def sh(self, host, cmd, timeout=30, check_rc=False):
        """Run a shell command in namespace <prefix><host>; returns CompletedProcess."""
        r = subprocess.run(["ip", "netns", "exec", self.ns(host), "bash", "-c", cmd],
                           capture_output=True, text=True, timeout=timeout)
        if check_rc and r.returncode != 0:
            raise TestFailure(f"{host}: {cmd}: rc={r.returncode} {r.stderr.strip()}")
        return r

    def py(self, host, code, timeout=60):
        """Run Python code (scapy available) in a host; returns its stdout, raises on error."""
        r = subprocess.run(["ip", "netns", "exec", self.ns(host), PY, "-c", code],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise TestFailure(f"python in {host} failed: {r.stderr.strip()[-2000:]}")
        return r.stdout

    def bg(self, host, cmd):
        """Start a background command in a host (killed by lab.down())."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(host), "bash", "-c", cmd],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        _procs.append(p)
        return p


# The rule set of conf/tandem.conf, compactly (the lab's server host holds
# every one of these addresses).
DEFAULT_RULES = """
 { name = "web"; from = "trust"; to = "untrust"; source = ["10.1.0.0/16", "fd00:1::/64"];
   destination = ["10.2.0.10", "fd00:2::10"]; service = ["tcp/80", "tcp/443"]; action = "accept"; tracking = "normal"; },
 { name = "web-strict"; from = "trust"; to = "untrust"; destination = ["10.2.0.11"]; service = "tcp/80";
   action = "accept"; tracking = "strict"; },
 { name = "web-loose"; from = "trust"; to = "untrust"; destination = ["10.2.0.12"]; service = "tcp/80";
   action = "accept"; tracking = "loose"; },
 { name = "ssh-ka"; from = "trust"; to = "untrust"; destination = ["10.2.0.13"]; service = "tcp/22";
   action = "accept"; keepalive = true; idle_timeout = 3600; },
 { name = "dns"; from = "trust"; to = "untrust"; destination = ["10.2.0.53", "fd00:2::53"];
   service = ["udp/53", "tcp/53"]; action = "accept"; },
 { name = "ping"; from = "trust"; to = "untrust"; service = ["icmp/echo-request", "icmpv6/echo-request"];
   action = "accept"; tracking = "strict"; },
 { name = "ping-loose"; from = "trust"; to = "untrust"; destination = ["10.2.0.12"]; service = "icmp";
   action = "accept"; tracking = "loose"; },
 { name = "stateless"; from = "trust"; to = "untrust"; destination = ["10.2.0.20"]; service = "udp/5000-5100";
   action = "accept"; tracking = "off"; },
 { name = "stateless-return"; from = "untrust"; to = "trust"; source = ["10.2.0.20"]; service = "udp";
   action = "accept"; tracking = "off"; },
 { name = "limited"; from = "trust"; to = "untrust"; destination = ["10.2.0.30"]; service = "tcp/8080";
   action = "accept"; limit_per_source = 3; limit_per_destination = 5; },
 { name = "short-udp"; from = "trust"; to = "untrust"; destination = ["10.2.0.40"]; service = "udp/9000-9100";
   action = "accept"; idle_timeout = 10; },
 { name = "gre"; from = "trust"; to = "untrust"; service = "proto/47"; action = "accept"; },
 { name = "block-telnet"; service = "tcp/23"; action = "reject"; },
 { name = "deny-dmz"; from = "trust"; to = "dmz"; action = "drop"; log = true; }
"""


def config(queues=2, timeouts="", tcp="", table="", ageing="", datapath="", rules=None, extra=""):
    """The lab's config: zones by interface, DEFAULT_RULES (or `rules`, the
    body of a libconfig rule list), and the given settings of each section."""
    return f"""
node = {{ name = "labfw"; id = 3; }};
{"" if "control =" in extra else f'control = {{ socket = "{_ctl_dir}/node.sock"; }};'}
datapath = {{ queues = {queues}; {datapath} }};
table = {{ {table} }};
timeouts = {{ {timeouts} }};
tcp = {{ {tcp} }};
ageing = {{ {ageing} }};
zones = (
  {{ name = "trust";   interfaces = ["veth-c"]; networks = ["10.1.0.0/16", "fd00:1::/64"]; }},
  {{ name = "untrust"; interfaces = ["veth-s"]; networks = ["10.2.0.0/16", "fd00:2::/64"]; }},
  {{ name = "dmz";     interfaces = ["veth-d"]; networks = ["10.3.0.0/16", "fd00:3::/64"]; }}
);
{extra}
rules = (
{DEFAULT_RULES if rules is None else rules}
);
"""


class Node:
    """tandem-node in <prefix>fw with a config text and a stats file."""

    def __init__(self, lab, cfg_text, check_start=True):
        self.lab = lab
        self.dir = tempfile.mkdtemp(prefix="tandem-lab-")
        _dirs.append(self.dir)
        self.cfg = os.path.join(self.dir, "node.conf")
        self.stats_path = os.path.join(self.dir, "stats")
        self.log = os.path.join(self.dir, "node.log")
        with open(self.cfg, "w") as f:
            f.write(cfg_text)
        self.proc = None
        self.start(check_start)

    def start(self, check_start=True):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.ns("fw"), NODE_BIN, "--config", self.cfg,
             "--stats", self.stats_path], stdout=logf, stderr=logf, start_new_session=True)
        _procs.append(self.proc)
        if not check_start:
            return
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("tandem-node exited at start: " + self.read_log())
            if "filtering" in self.read_log() and os.path.exists(self.stats_path):
                return
            time.sleep(0.05)
        raise TestFailure("tandem-node did not start: " + self.read_log())

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stats(self, settle=0.3):
        """Counters from the stats file (rewritten every 200 ms):
        {'verdict': {...}, 'created': {...}, 'ended': {...}, 'sessions': {...},
         'drop': {reason: n}, 'state': {(proto, state): ended}, 'shard': [{...}]}"""
        time.sleep(settle)
        out = {"drop": {}, "state": {}, "shard": []}
        with open(self.stats_path) as f:
            for line in f:
                words = line.split()
                if not words:
                    continue
                kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
                rec = words[0]
                if rec == "drop":
                    out["drop"][kv["reason"]] = int(kv["count"])
                elif rec == "state":
                    out["state"][(kv["proto"], kv["state"])] = int(kv["ended"])
                elif rec == "shard":
                    out["shard"].append({k: int(v) for k, v in kv.items()})
                else:
                    out[rec] = {k: int(v) for k, v in kv.items()}
        return out

    def drops(self, reason):
        return self.stats()["drop"].get(reason, 0)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig) if sig == signal.SIGKILL else self.proc.send_signal(sig)
            # ip netns exec execs the node, so the pid is the node's
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode if self.proc else None


# The agent's loop: one base64 line of code in, one JSON line out
# {"ok", "out"} (the value the code left in `out`) or {"ok": false, "err"}.
AGENT_CODE = r'''
import base64, json, os, socket, struct, sys, time, traceback
{preamble}
G = dict(globals())
for line in sys.stdin:
    try:
        G["out"] = None
        exec(base64.b64decode(line).decode(), G)
        res = {{"ok": True, "out": G["out"]}}
    except BaseException:
        res = {{"ok": False, "err": traceback.format_exc()}}
    sys.stdout.write(json.dumps(res, default=repr) + "\n")
    sys.stdout.flush()
'''


class Agent:
    """A Python process in one host; run(code) executes code there with
    persistent globals (a socket opened by one call is used by the next) and
    returns the value the code left in `out`. preamble: code run once at
    start (e.g. scapy's import, slow); timeout: run()'s default in seconds.
    Killed by the harness after each test, or by kill()."""

    def __init__(self, lab, host, preamble="", timeout=20):
        self.host = host
        self.timeout = timeout
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.ns(host), PY, "-u", "-c",
             AGENT_CODE.format(preamble=preamble)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errf,
            start_new_session=True)
        _procs.append(self.proc)
        self.run("out = 1", timeout=30)

    def run(self, code, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        line = base64.b64encode(textwrap.dedent(code).encode()) + b"\n"
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise TestFailure(f"agent in {self.host} died: {self._err()}")
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TestFailure(f"agent in {self.host}: no answer within {timeout} s to:\n{code}")
        ans = self.proc.stdout.readline()
        if not ans:
            raise TestFailure(f"agent in {self.host} died: {self._err()}")
        res = json.loads(ans)
        if not res["ok"]:
            raise TestFailure(f"agent in {self.host} failed:\n{res['err']}")
        return res["out"]

    def kill(self):
        """End the agent (a process this test started, by its group id)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def _err(self):
        self.errf.seek(0)
        return self.errf.read().decode(errors="replace")[-2000:]


class Capture:
    """tshark in a namespace writing a pcap; read() returns field rows."""

    def __init__(self, lab, host, iface="eth0", bpf=""):
        self.path = tempfile.mktemp(prefix="tandem-cap-", suffix=".pcap")
        args = ["ip", "netns", "exec", lab.ns(host), "tshark", "-q", "-i", iface, "-w", self.path]
        if bpf:
            args += ["-f", bpf]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        _procs.append(self.proc)
        # wait until tshark reports it is capturing
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(self.path):
            time.sleep(0.05)
        time.sleep(0.5)

    def stop(self):
        if self.proc.poll() is None:
            time.sleep(0.3)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def read(self, display_filter="", fields=("frame.time_relative",)):
        self.stop()
        args = ["tshark", "-r", self.path, "-T", "fields"]
        for f in fields:
            args += ["-e", f]
        if display_filter:
            args += ["-Y", display_filter]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        return [line.split("\t") for line in r.stdout.splitlines() if line.strip()]

    def count(self, display_filter):
        return len(self.read(display_filter))

    def cleanup(self):
        self.stop()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def run_tests(module_globals, lab, per_test_timeout=120):
    """Run every test_* function of a module: fn(lab). One lab for the
    module; each test gets a timeout; the lab is always torn down."""
    if os.geteuid() != 0:
        print("lab tests need root: skipped")
        sys.exit(77)
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    only = os.environ.get("TANDEM_TEST")
    if only:
        tests = [(n, f) for n, f in tests if only in n]
    passed = failed = 0

    def on_alarm(signum, frame):
        raise TestFailure(f"timeout after {per_test_timeout} s")

    signal.signal(signal.SIGALRM, on_alarm)
    try:
        lab.down()
        lab.up()
        for name, fn in tests:
            t0 = time.time()
            signal.alarm(per_test_timeout)
            try:
                fn(lab)
                passed += 1
                print(f"ok   {name} ({time.time() - t0:.1f} s)", flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure kind
                failed += 1
                print(f"FAIL {name} ({time.time() - t0:.1f} s): {e}", flush=True)
                if not isinstance(e, TestFailure):
                    traceback.print_exc()
            finally:
                signal.alarm(0)
                # a test leaves no process behind (only its own: other
                # labs may run beside this one)
                while _procs:
                    p = _procs.pop()
                    if p.poll() is None:
                        try:
                            os.killpg(p.pid, signal.SIGKILL)
                        except OSError:
                            pass
                        p.wait(timeout=10)
                subprocess.run(["ip", "netns", "exec", lab.ns("fw"), "nft", "delete", "table", "inet", "tandem"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        lab.down()
        import shutil
        for d in _dirs:
            shutil.rmtree(d, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
