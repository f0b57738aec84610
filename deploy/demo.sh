#!/usr/bin/env bash
# Tandem demo on a fresh Debian 12 machine (as root): install what is
# needed, build, then
#   1. replay the project's own sample capture (every session behaviour)
#      through tandem-node offline, with the example config;
#   2. build the namespace lab (deploy/lab.sh), start tandem-node on the
#      firewall namespace with the same config, and show real traffic
#      passing and being blocked as the policy says;
#   3. build the active/standby pair (deploy/lab.sh up --pair) with
#      tandem-node and tandem-syncd on both nodes and run one failover
#      drill (deploy/drill.sh): 50 connections and 10 ms pings through the
#      pair, SIGKILL of the active, and the report.
# The single-node lab is torn down after part 2 unless KEEP_LAB=1 is set;
# the drill removes its own pair lab.
# Usage: bash deploy/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null

say() { printf '\n== %s\n' "$*"; }

say "1. offline: the sample capture through the pipeline"
cap=build/sample.pcapng
/usr/bin/python3 tests/gen_sample_pcap.py "$cap"
./build/tandem-node --config conf/tandem.conf --pcap "$cap"

say "2. live: the lab (client tdm-c1 10.1.0.2 -> firewall tdm-fw -> server tdm-srv 10.2.0.x, dmz 10.3.0.5)"
node_pid=
cleanup() {
	[ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
	if [ "${KEEP_LAB:-0}" = 1 ]; then
		echo "lab left running (KEEP_LAB=1); remove it with: bash deploy/lab.sh down"
	else
		bash deploy/lab.sh down >/dev/null 2>&1 || true
		echo "lab removed (run with KEEP_LAB=1 to keep it)"
	fi
}
trap cleanup EXIT
bash deploy/lab.sh up
stats=$(mktemp)
ip netns exec tdm-fw ./build/tandem-node --config conf/tandem.conf --stats "$stats" &
node_pid=$!
for _ in $(seq 50); do [ -s "$stats" ] && break; sleep 0.1; done

# servers: web on 10.2.0.10:80, something listening on telnet's port
ip netns exec tdm-srv /usr/bin/python3 -m http.server 80 --bind 10.2.0.10 >/dev/null 2>&1 &
ip netns exec tdm-srv /usr/bin/python3 -m http.server 23 --bind 10.2.0.10 >/dev/null 2>&1 &
ip netns exec tdm-dmz /usr/bin/python3 -m http.server 80 --bind 10.3.0.5 >/dev/null 2>&1 &
listening() { ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q .; }
for _ in $(seq 100); do
	listening tdm-srv 80 && listening tdm-srv 23 && listening tdm-dmz 80 && break
	sleep 0.1
done

try() { # description, expected, command
	local what=$1 want=$2; shift 2
	local got
	if timeout 5 "$@" >/dev/null 2>&1; then got=passed; else got=blocked; fi
	printf '  %-58s %-8s (policy: %s)\n' "$what" "$got" "$want"
}
try "client -> web server 10.2.0.10:80 (rule web)" passed \
	ip netns exec tdm-c1 curl -sf -m 3 http://10.2.0.10/
try "client -> 10.2.0.10:23 telnet (rule block-telnet: reject)" blocked \
	ip netns exec tdm-c1 curl -sf -m 3 http://10.2.0.10:23/
try "client -> dmz 10.3.0.5:80 (rule deny-dmz: drop)" blocked \
	ip netns exec tdm-c1 curl -sf -m 3 http://10.3.0.5/
try "server -> client (no rule lets untrust in)" blocked \
	ip netns exec tdm-srv curl -sf -m 3 http://10.1.0.2/
sleep 0.5
say "tandem-node counters"
cat "$stats"
rm -f "$stats"

say "3. failover drill on an active/standby pair"
kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
node_pid=
bash deploy/drill.sh --build build
