"""A stand-in for tandem-node's ctl socket, for testing tandem-syncd alone.

It speaks the node's side of proto/tandem.proto (4-byte big-endian length +
CtlRequest / CtlReply, and SyncStream frames on a SYNC_SUBSCRIBE
connection) with the replication semantics syncd relies on:

  - SYNC_SUBSCRIBE: the reply, then bulk_begin, a CREATE per local session,
    bulk_end, then live events (create/refresh/delete made by the test);
    peer sessions are never sent.
  - SYNC_APPLY: CREATE/STATE/REFRESH install or update a peer session by key.
    A local session with the same key wins on an active node (counted as a
    conflict); on a standby the active's copy replaces it (the rule syncd
    needs from tandem-node, docs/syncd.md);
    EXPIRE/DELETE remove a peer session only. The reply's count = applied.
  - PROMOTE: every peer session becomes local. ROLE_SET: remembered.
  - SYNC_BULK (on the subscription): another dump. SYNC_DIGEST, SESSIONS
    (origin filter), STATUS (policy hash), CONFIG_SHOW / CONFIG_PUSH.

The policy hash is a hash of the config's `rules` setting with whitespace
removed, so a config re-written by libconfig keeps its hash.

Threads: one accept thread, one per connection; the table is under a lock.
Test code calls create()/refresh()/delete()/table() from its own thread.
"""
import hashlib
import os
import re
import socket
import struct
import threading
import time

pb = None  # tandem_pb2, set by load_proto()


def load_proto(src_root, tmpdir):
    """Generate tandem_pb2 from proto/tandem.proto into tmpdir; import it."""
    global pb
    import subprocess
    import sys
    subprocess.run(["protoc", f"--proto_path={src_root}/proto",
                    f"--python_out={tmpdir}", f"{src_root}/proto/tandem.proto"],
                   check=True)
    sys.path.insert(0, tmpdir)
    import tandem_pb2
    pb = tandem_pb2
    return pb


def policy_hash(text):
    m = re.search(r"\brules\s*=", text)
    if not m:
        return "0" * 16
    i = text.index("(", m.end())
    depth, j = 0, i
    while j < len(text):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                break
        j += 1
    body = re.sub(r"\s+", "", text[i:j + 1])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def recv_frame(s):
    h = b""
    while len(h) < 4:
        c = s.recv(4 - len(h))
        if not c:
            return None
        h += c
    n = struct.unpack("!I", h)[0]
    d = b""
    while len(d) < n:
        c = s.recv(min(1 << 20, n - len(d)))
        if not c:
            return None
        d += c
    return d


def send_frame(s, msg):
    b = msg.SerializeToString()
    s.sendall(struct.pack("!I", len(b)) + b)


class FakeNode:
    def __init__(self, path, node_id, name, config_text=None):
        self.path = path
        self.node_id = node_id
        self.name = name
        self.config_text = config_text or (
            'node = { name = "%s"; id = %d; };\n'
            'rules = ( { name = "web"; action = "accept"; } );\n' % (name, node_id))
        self.lock = threading.RLock()
        self.local = {}    # key tuple -> Session (pb)
        self.peer = {}     # key tuple -> Session
        self.expiry = {}   # key tuple -> monotonic deadline (peer sessions)
        self.role = None
        self.role_history = []
        self.promotes = 0
        self.applied = 0
        self.apply_requests = 0
        self.apply_delay = 0.0
        # cleared: SESSIONS waits until it is set again (holds syncd's
        # seeding, so its readiness gate stays closed)
        self.sessions_open = threading.Event()
        self.sessions_open.set()
        # cleared: the dump after SYNC_SUBSCRIBE waits (its reply does not)
        self.dump_open = threading.Event()
        self.dump_open.set()
        # cleared: SESSIONS takes its snapshot, then holds the reply (an
        # answer that arrives after later events)
        self.sessions_reply_open = threading.Event()
        self.sessions_reply_open.set()
        self.peer_deletes = 0  # peer sessions removed by EXPIRE/DELETE
        self.counter = 0
        self.sub = None        # subscribed socket
        self.sub_lock = threading.Lock()
        self.server = None
        self.conns = []
        self.running = False
        self.started = time.monotonic()
        self.requests = []     # commands seen, in order

    # ---- life ----
    def start(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(self.path)
        self.server.listen(8)
        self.running = True
        self.started = time.monotonic()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self, forget=True):
        """Close everything; forget=True also empties the table (a node
        restart)."""
        self.running = False
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []
            with self.sub_lock:
                self.sub = None
            if forget:
                self.local.clear()
                self.peer.clear()
                self.expiry.clear()
                self.role = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _accept(self):
        srv = self.server
        while self.running:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    # ---- sessions ----
    def make_session(self, i, remaining_ms=1800000, state=None):
        s = pb.Session()
        s.id = (self.node_id << 48) | i
        k = s.key
        k.family = 4
        k.proto = 6
        k.addr0 = bytes([10, 1, (i >> 8) & 255, i & 255]) + bytes(12)
        k.addr1 = bytes([10, 2, 0, self.node_id]) + bytes(12)
        k.port0 = 1024 + (i % 60000)
        k.port1 = 80
        k.zone = 0x0102
        s.state = state if state is not None else pb.SS_TCP_ESTABLISHED
        s.flags = 0x06
        s.rule = 0
        s.rule_name = "web"
        s.mode = 2
        s.pkts0, s.pkts1, s.bytes0, s.bytes1 = 3, 2, 180, 120
        s.remaining_ms = remaining_ms
        s.iface0, s.iface1 = "veth-c", "veth-s"
        s.timeout_s = 1800
        return s

    @staticmethod
    def key_of(s):
        k = s.key
        return (k.family, k.proto, bytes(k.addr0), bytes(k.addr1), k.port0, k.port1, k.zone)

    def create(self, n, remaining_ms=1800000, emit=True):
        """n new local sessions; CREATE events to the subscriber."""
        out = []
        with self.lock:
            for _ in range(n):
                self.counter += 1
                s = self.make_session(self.counter, remaining_ms)
                self.local[self.key_of(s)] = s
                out.append(s)
        if emit:
            self.emit([(pb.SessionEvent.CREATE, s) for s in out])
        return out

    def refresh(self, sessions, remaining_ms=1800000, state=None):
        ev = []
        with self.lock:
            for s in sessions:
                k = self.key_of(s)
                if k in self.local:
                    t = self.local[k]
                    t.remaining_ms = remaining_ms
                    t.pkts0 += 1
                    if state is not None:
                        t.state = state
                    ev.append((pb.SessionEvent.STATE if state is not None
                               else pb.SessionEvent.REFRESH, t))
        self.emit(ev)

    def delete(self, sessions, etype=None):
        ev = []
        with self.lock:
            for s in sessions:
                k = self.key_of(s)
                if k in self.local:
                    ev.append((etype if etype is not None else pb.SessionEvent.DELETE,
                               self.local.pop(k)))
        self.emit(ev)

    def emit(self, events, batch=1024):
        with self.sub_lock:
            sub = self.sub
            if not sub:
                return
            for i in range(0, len(events), batch):
                m = pb.SyncStream()
                for t, s in events[i:i + batch]:
                    e = m.events.events.add()
                    e.type = t
                    e.session.CopyFrom(s)
                m.dropped = 0
                try:
                    send_frame(sub, m)
                except OSError:
                    return

    def table(self):
        """(local ids, peer ids) as sets."""
        with self.lock:
            return ({s.id for s in self.local.values()}, {s.id for s in self.peer.values()})

    def peer_sessions(self):
        with self.lock:
            return {s.id: pb.Session().FromString(s.SerializeToString())
                    for s in self.peer.values()}

    def local_state(self):
        """id -> (state, pkts0) of local sessions, for convergence checks."""
        with self.lock:
            return {s.id: (s.state, s.pkts0) for s in self.local.values()}

    def peer_state(self):
        with self.lock:
            return {s.id: (s.state, s.pkts0) for s in self.peer.values()}

    # ---- the socket ----
    def _dump(self, c):
        self.dump_open.wait(30)
        with self.lock:
            sess = list(self.local.values())
        m = pb.SyncStream(bulk_begin=True)
        send_frame(c, m)
        for i in range(0, len(sess), 512):
            m = pb.SyncStream()
            for s in sess[i:i + 512]:
                e = m.events.events.add()
                e.type = pb.SessionEvent.CREATE
                e.session.CopyFrom(s)
            send_frame(c, m)
        send_frame(c, pb.SyncStream(bulk_end=True, dropped=0))

    def _serve(self, c):
        while self.running:
            try:
                d = recv_frame(c)
            except OSError:
                d = None
            if d is None:
                break
            q = pb.CtlRequest()
            q.ParseFromString(d)
            self.requests.append(q.cmd)
            try:
                self._handle(c, q)
            except OSError:
                break
        with self.sub_lock:
            if self.sub is c:
                self.sub = None
        c.close()

    def _handle(self, c, q):
        R = pb.CtlRequest
        rep = pb.CtlReply(seq=q.seq, status=0)
        if q.cmd == R.SYNC_SUBSCRIBE:
            with self.sub_lock:
                send_frame(c, rep)
                self.sub = c
                self._dump(c)
            return
        if q.cmd == R.SYNC_BULK:
            with self.sub_lock:
                send_frame(c, rep)
                self._dump(c)
            return
        if q.cmd == R.SYNC_APPLY:
            if self.apply_delay:
                time.sleep(self.apply_delay)
            n = conflicts = 0
            now = time.monotonic()
            with self.lock:
                self.apply_requests += 1
                for e in q.events.events:
                    k = self.key_of(e.session)
                    if e.type in (pb.SessionEvent.EXPIRE, pb.SessionEvent.DELETE):
                        if k in self.peer:
                            del self.peer[k]
                            self.expiry.pop(k, None)
                            self.peer_deletes += 1
                        n += 1
                        continue
                    if k in self.local:
                        if self.role == "active":
                            conflicts += 1
                            continue
                        del self.local[k]
                    s = pb.Session()
                    s.CopyFrom(e.session)
                    self.peer[k] = s
                    self.expiry[k] = now + e.session.remaining_ms / 1000.0
                    n += 1
                self.applied += n
            rep.count = n
            if conflicts:
                rep.error = "applied %d conflicts %d refused 0" % (n, conflicts)
        elif q.cmd == R.PROMOTE:
            with self.lock:
                self.promotes += 1
                n = len(self.peer)
                self.local.update(self.peer)
                self.peer.clear()
                self.expiry.clear()
            rep.count = n
        elif q.cmd == R.ROLE_SET:
            self.role = q.role
            self.role_history.append(q.role)
        elif q.cmd == R.STATUS:
            with self.lock:
                st = rep.node
                st.node_name = self.name
                st.node_id = self.node_id
                st.uptime_s = int(time.monotonic() - self.started)
                st.shards = 1
                st.sessions = len(self.local) + len(self.peer)
                st.capacity = 262144
                st.policy_hash = policy_hash(self.config_text)
                st.rules = 1
                if self.role:
                    st.role = self.role
                st.version = "fake"
                st.config_path = "fake.conf"
        elif q.cmd == R.SESSIONS:
            self.sessions_open.wait(30)
            with self.lock:
                pool = list(self.local.values()) + list(self.peer.values())
                if q.filter.HasField("origin"):
                    pool = (list(self.local.values()) if q.filter.origin == 1
                            else list(self.peer.values()))
                lim = q.limit or 1000
                for s in pool[:lim]:
                    rep.sessions.add().CopyFrom(s)
                rep.truncated = len(pool) > lim
            self.sessions_reply_open.wait(30)
        elif q.cmd == R.SYNC_DIGEST:
            with self.lock:
                x = 0
                for s in list(self.local.values()) + list(self.peer.values()):
                    x ^= int.from_bytes(hashlib.sha256(
                        struct.pack("!QI", s.id, s.state) + repr(self.key_of(s)).encode()
                    ).digest()[:8], "big")
                rep.digest.sessions = len(self.local) + len(self.peer)
                rep.digest.xor_hash = x
                rep.digest.local = len(self.local)
                rep.digest.peer = len(self.peer)
        elif q.cmd == R.CONFIG_SHOW:
            rep.text = self.config_text
        elif q.cmd == R.CONFIG_PUSH:
            old = policy_hash(self.config_text)
            if "node" not in q.config_text or "rules" not in q.config_text:
                rep.status = 400
                rep.error = "fake: node and rules are required"
            else:
                self.config_text = q.config_text
                p = rep.push
                p.hash_old = old
                p.hash_new = policy_hash(q.config_text)
                p.kept = 0
                p.dry_run = False
                p.elapsed_ms = 0
                p.flushed = False
        else:
            rep.status = 400
            rep.error = "fake: unsupported command"
        send_frame(c, rep)
