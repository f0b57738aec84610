"""mgmtlib.py - helpers for the tandem-mgmt tests.

Generates the Python protobuf module from proto/tandem.proto with protoc
into a temporary directory, starts fake nodes and daemons on free ports,
and speaks the management protocol (greeting, HMAC auth, replies).

Must never: leave a process running (every Proc is killed by its owner's
cleanup), or wait without a timeout.
"""
import hashlib
import hmac
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))

_pb = None


def pb(tmpdir=None):
    """The generated tandem_pb2 module (protoc --python_out, once)."""
    global _pb
    if _pb is not None:
        return _pb
    out = tmpdir or tempfile.mkdtemp(prefix="tandem-pb-")
    proto_dir = os.path.join(SRC, "proto")
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + out,
                    os.path.join(proto_dir, "tandem.proto")], check=True, timeout=60)
    sys.path.insert(0, out)
    _pb = importlib.import_module("tandem_pb2")
    return _pb


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


ADMIN_TOKEN = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
RO_TOKEN = "ffeeddccbbaa99887766554433221100"


def write_conf(path, port, node_socket, **kw):
    """A tandem-mgmt config for tests; kw overrides/extends settings."""
    s = {
        "name": '"fw-test"',
        "node_socket": '"%s"' % node_socket,
        "idle_timeout": 30,
        "max_clients": 32,
        "allow_plain_auth": "false",
        "ctl_timeout": 5,
    }
    for k, v in kw.items():
        s[k] = v
    lines = ["listen = { address = \"127.0.0.1\"; port = %d; };" % port]
    for k, v in s.items():
        if v is None:
            continue
        lines.append("%s = %s;" % (k, v))
    lines.append("""users = (
  { name = "admin"; token = "%s"; role = "admin"; },
  { name = "viewer"; token = "%s"; role = "read-only"; }
);""" % (ADMIN_TOKEN, RO_TOKEN))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def hmac_hex(token_hex, nonce_hex):
    return hmac.new(bytes.fromhex(token_hex), nonce_hex.encode(), hashlib.sha256).hexdigest()


class Proc:
    """A child process with a log file; stop() never hangs."""

    def __init__(self, argv, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self.log.close()
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=5)
        if not self.log.closed:
            self.log.close()

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0


def wait_for(cond, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def start_fake_node(tmp, sock_path, *extra):
    if os.path.exists(sock_path):
        os.unlink(sock_path)  # its appearance tells that the node is up
    proc = Proc([sys.executable, os.path.join(HERE, "fake_node.py"), "--socket", sock_path,
                 "--pb-dir", os.path.dirname(pb().__file__)] + list(extra),
                os.path.join(tmp, "fake_node-%s.log" % os.path.basename(sock_path)))
    if not wait_for(lambda: os.path.exists(sock_path) or not proc.alive(), 20):
        proc.kill()
        raise RuntimeError("fake node did not start")
    if not proc.alive():
        raise RuntimeError("fake node died: " + proc.output())
    return proc


def start_mgmt(binary, conf, tmp, port, env=None, name="mgmt"):
    proc = Proc([binary, "--config", conf], os.path.join(tmp, name + ".log"), env=env)

    def up():
        if not proc.alive():
            return True
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    if not wait_for(up, 20) or not proc.alive():
        out = proc.output()
        proc.kill()
        raise RuntimeError("tandem-mgmt did not start: " + out)
    return proc


class Conn:
    """One protocol connection."""

    def __init__(self, port, timeout=10.0, greet=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = None
        self.nonce = None
        if greet:
            self.greeting = self.line()
            parts = dict(p.split("=", 1) for p in self.greeting.split()[2:])
            self.nonce = parts.get("nonce")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        """One line without its LF; None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                if self.buf:
                    out, self.buf = self.buf, b""
                    return out.decode(errors="replace")
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def reply(self):
        """(data lines, status line); status None at EOF."""
        data = []
        while True:
            l = self.line()
            if l is None:
                return data, None
            if l == "OK" or l.startswith("OK ") or l.startswith("ERR ") or l == "CONTINUE":
                return data, l
            data.append(l)

    def cmd(self, text):
        self.send(text + "\n")
        return self.reply()

    def auth(self, user="admin", token=ADMIN_TOKEN):
        return self.cmd("auth %s %s" % (user, hmac_hex(token, self.nonce)))

    def eof(self, timeout=5.0):
        """True when the server closed the connection (after any lines)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except OSError:
            return True


def parse_record(line):
    """'word k=v k="x y"' -> (word, dict)."""
    word, _, rest = line.partition(" ")
    fields = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] == " ":
            i += 1
        if i >= len(rest):
            break
        eq = rest.index("=", i)
        key = rest[i:eq]
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            i += 1
            val = ""
            while rest[i] != '"':
                if rest[i] == "\\":
                    i += 1
                    esc = rest[i]
                    if esc == "x":
                        val += chr(int(rest[i + 1:i + 3], 16))
                        i += 2
                    else:
                        val += {"n": "\n", "r": "\r", "t": "\t"}.get(esc, esc)
                else:
                    val += rest[i]
                i += 1
            i += 1
        else:
            j = rest.find(" ", i)
            j = len(rest) if j < 0 else j
            val = rest[i:j]
            i = j
        fields[key] = val
    return word, fields
