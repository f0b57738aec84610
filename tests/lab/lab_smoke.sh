#!/usr/bin/env bash
# lab_smoke.sh - deploy/lab.sh end to end: up, up again (idempotent), repair
# after a link and a namespace were removed, ICMP echo client -> server and
# client -> dmz over IPv4 and IPv6 through the firewall namespace, down,
# down again, and nothing of it left behind.
#
# Runs its own lab under a private prefix (tdm-smk<PID>-), so a lab that is
# already up (tdm-fw, ...) is never touched. Cleanup runs from a trap on any
# exit; the whole script is bounded by a timeout.
#
# Usage (root): tests/lab/lab_smoke.sh      Exit: 0 pass, 77 skip, 1 fail.
# Must never: touch the root namespace, or delete a namespace it did not make.
set -euo pipefail

if [ "${TDM_SMOKE_TIMED:-}" != 1 ]; then
	# Re-run under a hard timeout (a hung `ip` or ping must not hang CI).
	TDM_SMOKE_TIMED=1 exec timeout --kill-after=5 120 bash "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
lab="$here/../../deploy/lab.sh"
export TDM_LAB_PREFIX="tdm-smk$$-"
P=$TDM_LAB_PREFIX

if [ "$(id -u)" != 0 ]; then
	echo "lab_smoke: needs root; skipped" >&2
	exit 77
fi
if ! ip netns add "${P}probe" 2>/dev/null; then
	echo "lab_smoke: cannot create network namespaces; skipped" >&2
	exit 77
fi
ip netns del "${P}probe"

root_links_before=$(ip -o link show | awk -F': ' '{print $2}' | sort)

cleanup() {
	bash "$lab" down >/dev/null 2>&1 || true
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fails=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # LABEL CMD...: pass when CMD succeeds
	local label=$1
	shift
	if "$@"; then pass "$label"; else fail "$label"; fi
}

# ICMP echo from namespace $1 to address $2: iputils ping when installed,
# else the same with raw sockets from Python's standard library. Up to 3
# requests 0.3 s apart, 3 s in all; 0 on the first matching reply
# (ping: -c 1 -w 3 sends until one reply or the deadline).
echo_ok() {
	local ns=$1 dst=$2
	if command -v ping >/dev/null 2>&1; then
		ip netns exec "$ns" ping -n -q -c 1 -i 0.3 -w 3 "$dst" >/dev/null 2>&1
		return
	fi
	ip netns exec "$ns" /usr/bin/python3 - "$dst" <<'PY'
import os, select, socket, struct, sys, time
dst = sys.argv[1]
v6 = ":" in dst
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    req_type, rep_type = 128, 129  # kernel fills the ICMPv6 checksum
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    req_type, rep_type = 8, 0
ident = os.getpid() & 0xFFFF

def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF

deadline = time.monotonic() + 3.0
for seq in range(1, 4):
    payload = b"tandem-lab-smoke"
    hdr = struct.pack("!BBHHH", req_type, 0, 0, ident, seq)
    if not v6:
        hdr = struct.pack("!BBHHH", req_type, 0, csum(hdr + payload), ident, seq)
    s.sendto(hdr + payload, (dst, 0))
    until = min(deadline, time.monotonic() + 0.3 * seq)
    while True:
        left = until - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        pkt, addr = s.recvfrom(2048)
        icmp = pkt if v6 else pkt[(pkt[0] & 0x0F) * 4:]
        if len(icmp) < 8 or addr[0] != socket.getaddrinfo(dst, 0)[0][4][0]:
            continue
        t, _, _, i, _ = struct.unpack("!BBHHH", icmp[:8])
        if t == rep_type and i == ident:
            sys.exit(0)
sys.exit(1)
PY
}

check_echo() { # ns dst label
	if echo_ok "$1" "$2"; then pass "echo $3 ($1 -> $2)"; else fail "echo $3 ($1 -> $2)"; fi
}

# 1. up, and up again over a complete lab.
if bash "$lab" up >/dev/null; then pass "up"; else fail "up"; exit 1; fi
idx_before=$(ip -n "${P}fw" -o link show | awk '{print $1 $2}')
if bash "$lab" up >/dev/null; then pass "up again"; else fail "up again"; fi
idx_after=$(ip -n "${P}fw" -o link show | awk '{print $1 $2}')
check "up again left existing links alone" [ "$idx_before" = "$idx_after" ]
st=0; bash "$lab" status >/dev/null 2>&1 || st=$?
check "status says up (exit 0, got $st)" [ $st = 0 ]

# 2. Forwarding through the firewall namespace, both families.
check_echo "${P}c1" 10.2.0.10 "ipv4 client->server"
check_echo "${P}c2" 10.2.0.53 "ipv4 client2->server"
check_echo "${P}c1" fd00:2::10 "ipv6 client->server"
check_echo "${P}c2" fd00:2::53 "ipv6 client2->server"
check_echo "${P}c1" 10.3.0.5 "ipv4 client->dmz"
check_echo "${P}c1" fd00:3::5 "ipv6 client->dmz"
check_echo "${P}srv" 10.1.0.2 "ipv4 server->client"
# The probe itself can fail: nobody holds 10.2.0.99.
if echo_ok "${P}c1" 10.2.0.99; then fail "echo to an absent host fails"; else pass "echo to an absent host fails"; fi

# 3. Repair: a lost firewall link and a lost host namespace come back.
ip -n "${P}fw" link del veth-s
ip netns del "${P}c2"
st=0; bash "$lab" status >/dev/null 2>&1 || st=$?
check "status says partly up (exit 1, got $st)" [ $st = 1 ]
if bash "$lab" up >/dev/null; then pass "up repairs"; else fail "up repairs"; fi
check_echo "${P}c2" 10.2.0.10 "ipv4 after repair"
check_echo "${P}c2" fd00:2::10 "ipv6 after repair"

# 4. down with a process still running inside, down again, nothing left.
ip netns exec "${P}srv" sleep 300 &
sleeper=$!
sleep 0.2
if bash "$lab" down >/dev/null; then pass "down"; else fail "down"; fi
if kill -0 "$sleeper" 2>/dev/null; then
	fail "down left a process running in ${P}srv"
	kill "$sleeper" 2>/dev/null || true
else
	pass "down ended processes inside the lab"
fi
wait "$sleeper" 2>/dev/null || true
if bash "$lab" down >/dev/null; then pass "down when down"; else fail "down when down"; fi
st=0; bash "$lab" status >/dev/null 2>&1 || st=$?
check "status says down (exit 3, got $st)" [ $st = 3 ]

# only this lab's namespaces count: other labs may come and go meanwhile
left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$TDM_LAB_PREFIX" || true)
if [ -z "$left" ]; then
	pass "no namespace of this lab left"
else
	fail "namespaces left: $(echo "$left" | tr '\n' ' ')"
fi
root_links_after=$(ip -o link show | awk -F': ' '{print $2}' | sort)
check "root namespace links unchanged" [ "$root_links_before" = "$root_links_after" ]

if [ $fails -ne 0 ]; then
	echo "lab_smoke: $fails check(s) failed"
	exit 1
fi
echo "lab_smoke: all checks passed"
