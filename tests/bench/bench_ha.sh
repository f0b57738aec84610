#!/usr/bin/env bash
# bench_ha.sh - HA benchmark, not run in CI: on the pair lab (deploy/lab.sh
# up --pair), in one run, Tandem (tandem-node + tandem-syncd) against
# conntrackd (FTFW over UDP on the sync link) + keepalived (VRRPv3 with
# advert_int 1 s and 0.1 s). Prints the table
#   measure | tandem | conntrackd+keepalived (advert 1 s) | (advert 0.1 s) | ratio / target
# rows: sessions replicated per second (and how many missing on the
# standby), standby lag p50/p99, failover gap (longest gap in 10 ms pings),
# kill -> new master, TCP connections surviving.
# Targets (issue 5): failover < 0.5 s with 0 established connections lost;
# >= 5x conntrackd's replicated sessions/s; lag p99 < 5 ms.
#
# Tandem's failover, connections and lag come from deploy/drill.sh (its
# default heartbeat 100 ms x 3, --json); the rest from bench_ha.py, which
# imports the drill's own traffic pieces (extracted from drill.sh).
#
# Usage (root): bash tests/bench/bench_ha.sh [--build DIR] [--rates LIST]
#   [--conns N] [--phases LIST]
#   --build DIR   tandem-node, syncd/tandem-syncd and (with -Dbench=true)
#                 tests/bench/udpgen [SRC/build]; udpgen is compiled here if missing
#   --rates LIST  offered new flows/s of the replication sweep, comma list,
#                 each 1000..1000000 [10000,25000,50000,100000,150000,200000]
#   --conns N     long-lived TCP connections in each failover [10], 1..200
#   --phases L    comma list of drill,tandem,ctd,ka1,ka0.1 [all]
# Environment: TANDEM_DATAPATH=af_xdp runs Tandem's nodes on the AF_XDP data
# path (one worker; see deploy/drill.sh). TDM_LAB_PREFIX [tdm-bha-]; BHA_QUEUES=N runs Tandem's nodes
# with N queues instead of the sample config's 2; BHA_PERF=DIR records a
# perf profile of the whole machine per rate step (DIR/perf-RATE.data),
# BHA_PERFSTAT=DIR counts system calls and context switches per thread
# (DIR/stat-RATE.txt).
# Installs conntrackd and keepalived (apt-get) when missing, and linux-perf
# when BHA_PERF or BHA_PERFSTAT asks for it.
# Bounded: the whole run under a 600 s timeout; every load loop has a count
# and every wait a deadline.
# Must never: touch the root namespace or a lab of another prefix, or kill a
# process it did not start (pids recorded at spawn).
set -euo pipefail

if [ "${TDM_BHA_TIMED:-}" != 1 ]; then
	TDM_BHA_TIMED=1 exec timeout --kill-after=10 600 bash "$0" "$@"
fi

SRC=$(cd "$(dirname "$0")/../.." && pwd)
export TDM_LAB_PREFIX=${TDM_LAB_PREFIX:-tdm-bha-}
P=$TDM_LAB_PREFIX
PY=/usr/bin/python3
BUILD="$SRC/build" RATES=10000,25000,50000,100000,150000,200000 CONNS=10 PHASES=drill,tandem,ctd,ka1,ka0.1
usage() { sed -n '/^# Usage/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=${2:?}; shift ;;
	--rates) RATES=${2:?}; shift ;;
	--conns) CONNS=${2:?}; shift ;;
	--phases) PHASES=${2:?}; shift ;;
	*) usage ;;
	esac
	shift
done
for r in ${RATES//,/ }; do
	[[ $r =~ ^[0-9]+$ ]] && [ "$r" -ge 1000 ] && [ "$r" -le 1000000 ] || usage
done
[[ $CONNS =~ ^[0-9]+$ ]] && [ "$CONNS" -ge 1 ] && [ "$CONNS" -le 200 ] || usage
NODE=${TANDEM_NODE:-$BUILD/tandem-node}
SYNCD=${TANDEM_SYNCD:-$BUILD/syncd/tandem-syncd}

if [ "$(id -u)" != 0 ]; then
	echo "bench_ha: needs root (network namespaces); skipped" >&2
	exit 77
fi
[ -x "$NODE" ] && [ -x "$SYNCD" ] || { echo "bench_ha: no tandem-node/tandem-syncd under $BUILD" >&2; exit 1; }
if ! command -v conntrackd >/dev/null || ! command -v keepalived >/dev/null ||
	! command -v conntrack >/dev/null; then
	echo "bench_ha: installing conntrackd keepalived conntrack" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y conntrackd keepalived conntrack >/dev/null
fi
if { [ -n "${BHA_PERF:-}" ] || [ -n "${BHA_PERFSTAT:-}" ]; } && ! command -v perf >/dev/null; then
	echo "bench_ha: installing linux-perf (BHA_PERF / BHA_PERFSTAT)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y linux-perf >/dev/null
fi

tmp=$(mktemp -d /tmp/tandem-bha.XXXXXX)
chmod 755 "$tmp"
# shellcheck disable=SC2317  # called from the trap
cleanup() {
	local rc=$? pid sig
	trap - EXIT INT TERM
	if [ -f "$tmp/pids" ]; then
		for sig in TERM KILL; do
			while read -r pid; do
				[[ $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) == *"$tmp/"* ]] || continue
				kill "-$sig" "-$pid" 2>/dev/null || true
			done <"$tmp/pids"
			[ "$sig" = KILL ] || sleep 0.5
		done
	fi
	bash "$SRC/deploy/lab.sh" down >/dev/null 2>&1 || true
	rm -rf "/run/tandem/${P%-}"
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

UDPGEN=$BUILD/tests/bench/udpgen
if [ ! -x "$UDPGEN" ]; then
	UDPGEN=$tmp/udpgen
	cc -O2 -std=gnu11 -Wall -Wextra -Werror -o "$UDPGEN" "$SRC/tests/bench/udpgen.c"
fi

# the drill's orchestrator and traffic pieces, as a module for bench_ha.py
sed -n '/^cat >"\$tmp\/drill.py" <<.PY.$/,/^PY$/p' "$SRC/deploy/drill.sh" | sed '1d;$d' >"$tmp/drill.py"
grep -q '^class Run' "$tmp/drill.py" || { echo "bench_ha: could not extract drill.py" >&2; exit 1; }

echo "bench_ha: lab ${P}* (pair), tmp $tmp" >&2
bash "$SRC/deploy/lab.sh" up --pair >/dev/null

if [[ ,$PHASES, == *,drill,* ]]; then
	echo "bench_ha: tandem failover drill (-n $CONNS)" >&2
	# the lab is up: the drill resets it and keeps it
	TANDEM_NODE=$NODE TANDEM_SYNCD=$SYNCD bash "$SRC/deploy/drill.sh" -n "$CONNS" --before 2 --after 3 \
		--json "$tmp/drill.json" || echo "bench_ha: drill exit $?" >&2
fi
rest=${PHASES//drill/}
if [ -n "${rest//,/}" ]; then
	$PY "$SRC/tests/bench/bench_ha.py" run --tmp "$tmp" --src "$SRC" --prefix "$P" --node "$NODE" \
		--syncd "$SYNCD" --out "$tmp/bench.json" --phases "$PHASES" --rates "$RATES" --udpgen "$UDPGEN" \
		--conns "$CONNS" --before 2 --after 3 ${BHA_QUEUES:+--queues $BHA_QUEUES} || echo "bench_ha: bench_ha.py exit $?" >&2
fi
echo
echo "== Tandem vs conntrackd + keepalived (pair lab ${P}*, one run; offered rates $RATES, conns $CONNS)"
$PY "$SRC/tests/bench/bench_ha.py" table --drill "$tmp/drill.json" --out "$tmp/bench.json"
