#!/usr/bin/python3
"""keepalived mode with a real keepalived (root, network namespaces).

The VIP test's topology (two nodes with lan0 on a bridge, an observer), a
keepalived in each node namespace (VRRPv3, advert_int 0.1, the VIP
10.1.0.1/16) whose notify hooks run `tandem-syncd --notify`, and syncd in
mode = "keepalived" with fake nodes. Checked: keepalived's master is the
active syncd, sessions replicate to the backup, and when the master's
keepalived and syncd are killed and its link taken down, the backup's
keepalived becomes master and its syncd takes over (PROMOTE, ROLE_SET
active) with every session.

Usage: keepalived_test.py TANDEM_SYNCD SOURCE_ROOT  (exit 77: skipped)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_node  # noqa: E402
import vip_test as lab  # noqa: E402
from harness import KEY_HEX, wait_for  # noqa: E402

SYNCD, SRC = lab.SYNCD, lab.SRC
lab.NS = {"a": "tsdk-a", "b": "tsdk-b", "obs": "tsdk-obs"}  # apart from vip_test's


def syncd_conf(tmp, k, node_id, peer_id):
    other = "b" if k == "a" else "a"
    path = f"{tmp}/{k}.conf"
    with open(path, "w") as f:
        f.write(f"""node_id = {node_id};
cluster = {{ id = 11; key = "{KEY_HEX}"; }};
mode = "keepalived";
node_socket = "{tmp}/{k}.node.sock";
control_socket = "{tmp}/{k}.syncd.sock";
sync = {{ listen = "{lab.IP[k]}"; port = 7790; }};
peers = ( {{ id = {peer_id}; address = "{lab.IP[other]}"; port = 7790; }} );
""")
    return path


def ka_conf(tmp, k, prio):
    path = f"{tmp}/{k}.ka.conf"
    sock = f"{tmp}/{k}.syncd.sock"
    note = f"{SYNCD} -s {sock} --notify"
    with open(path, "w") as f:
        f.write(f"""global_defs {{
    router_id tsdk_{k}
    vrrp_version 3
}}
vrrp_instance tandem_lan {{
    state BACKUP
    interface lan0
    virtual_router_id 51
    priority {prio}
    advert_int 0.1
    nopreempt
    virtual_ipaddress {{
        10.1.0.1/16 dev lan0
    }}
    notify_master "{note} active"
    notify_backup "{note} standby"
    notify_fault "{note} standby"
}}
""")
    return path


def main():
    if os.geteuid() != 0:
        print("keepalived_test: needs root: skipped")
        return 77
    if not shutil.which("keepalived"):
        print("keepalived_test: keepalived not installed "
              "(deploy/install-deps.sh): skipped")
        return 77
    tmp = tempfile.mkdtemp(prefix="tandem-ka-")
    os.chmod(tmp, 0o755)
    fake_node.load_proto(SRC, tmp)
    procs, fakes, ka = {}, {}, {}
    ok = False

    def role(k):
        r = subprocess.run([SYNCD, "-s", f"{tmp}/{k}.syncd.sock", "--show"],
                           capture_output=True, text=True)
        for w in r.stdout.split():
            if w.startswith("role="):
                return w[5:]
        return None

    def start_ka(k):
        log = open(f"{tmp}/{k}.ka.log", "a")
        ka[k] = subprocess.Popen(
            ["ip", "netns", "exec", lab.NS[k], "keepalived", "-n", "-l", "-D",
             "-f", f"{tmp}/{k}.ka.conf", "-p", f"{tmp}/{k}.ka.pid",
             "-r", f"{tmp}/{k}.vrrp.pid"], stdout=log, stderr=log)

    def kill_ka(k):
        # the parent and its VRRP child, as a crash would
        for f in (f"{tmp}/{k}.vrrp.pid", f"{tmp}/{k}.ka.pid"):
            try:
                os.kill(int(open(f).read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        p = ka.pop(k, None)
        if p:
            p.kill()
            p.wait(5)

    try:
        lab.setup()
        for k, nid, pid, prio in (("a", 1, 2, 200), ("b", 2, 1, 100)):
            syncd_conf(tmp, k, nid, pid)
            ka_conf(tmp, k, prio)
            fakes[k] = fake_node.FakeNode(f"{tmp}/{k}.node.sock", nid, f"fw{nid}")
            fakes[k].start()
            log = open(f"{tmp}/{k}.log", "a")
            procs[k] = subprocess.Popen(["ip", "netns", "exec", lab.NS[k], SYNCD, "-c",
                                         f"{tmp}/{k}.conf"], stdout=log, stderr=log)
            wait_for(lambda: os.path.exists(f"{tmp}/{k}.syncd.sock"), 5, "syncd")
        start_ka("a")
        wait_for(lambda: role("a") == "active", 10, "keepalived master -> active")
        start_ka("b")
        wait_for(lambda: role("b") == "standby", 10, "keepalived backup -> standby")
        assert fakes["a"].role == "active" and fakes["b"].role == "standby"
        wait_for(lambda: lab.has_ipv4_vip("a"), 3, "keepalived put the VIP on a")
        ss = fakes["a"].create(200)
        wait_for(lambda: fakes["b"].table()[1] == {s.id for s in ss}, 5, "replicated")

        t0 = time.monotonic()
        kill_ka("a")
        procs.pop("a").kill()
        lab.nsx("a", "ip link set lan0 down")
        wait_for(lambda: fakes["b"].role == "active", 5, "backup took over", step=0.01)
        took = time.monotonic() - t0
        assert {s.id for s in ss} <= fakes["b"].table()[0], "sessions promoted"
        assert lab.has_ipv4_vip("b")
        print(f"keepalived_test: master killed -> syncd active on the backup "
              f"in {took * 1000:.0f} ms (VRRPv3 advert_int 0.1)")
        ok = True
    finally:
        for k in list(ka):
            kill_ka(k)
        for k, p in procs.items():
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in fakes.values():
            if f.running:
                f.stop()
        if not ok:
            for name in ("a.log", "b.log", "a.ka.log", "b.ka.log"):
                try:
                    print(f"--- {name}\n" + open(f"{tmp}/{name}").read()[-2500:])
                except OSError:
                    pass
        lab.teardown()
    print("keepalived_test: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
