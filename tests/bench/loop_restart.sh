#!/usr/bin/env bash
# loop_restart.sh - not run in CI: the restart cases run many times in a
# row, to show a flaky restart is gone (a pass rate, not a benchmark).
#
#   syncd (default): tests/syncd/test_syncd.py's
#     syncd_restart_and_node_restart_lose_nothing (two tandem-syncd with
#     fake nodes, no root); use a sanitizer build's syncd
#     (--build build-asan) as the suite does.
#   lab (--lab): tests/lab/test_failover.py's
#     test_syncd_restart_loses_no_session (selected with TANDEM_TEST), the
#     pair lab with real nodes; root. Runs under its own namespace prefix
#     (TDM_HA_PREFIX, default tdm-lr-) so a lab of the suite is not touched.
#
# Usage: bash tests/bench/loop_restart.sh [-n N] [--build DIR] [--lab]
#   [--case NAME] [--load K]
#   -n N         runs [20], 1..1000
#   --build DIR  build dir with syncd/tandem-syncd (and tandem-node for
#                --lab) [SRC/build]
#   --lab        loop the lab case instead of the syncd one
#   --case NAME  another case of the chosen file (syncd: its name; lab: a
#                TANDEM_TEST substring)
#   --load K     K bounded busy loops beside the runs (a loaded CI machine)
#                [0], 0..16
# Prints one line per run (ok/FAIL, seconds; a failed run's log is kept and
# named) and a closing "N passed, N failed". Exit 0 when every run passed.
# Bounded: each run under a timeout (syncd 120 s, lab 300 s), the busy
# loops under one for the whole loop.
# Must never: kill a process it did not start (busy loops by their pids).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$here/../.." && pwd)
N=20 BUILD=$SRC/build LAB=0 CASE="" LOAD=0
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=${2:?}; shift 2 ;;
	--build) BUILD=${2:?}; shift 2 ;;
	--lab) LAB=1; shift ;;
	--case) CASE=${2:?}; shift 2 ;;
	--load) LOAD=${2:?}; shift 2 ;;
	-h|--help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "loop_restart: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 1000 ] ||
	{ echo "loop_restart: -n must be 1..1000" >&2; exit 2; }
[[ $LOAD =~ ^[0-9]+$ ]] && [ "$LOAD" -le 16 ] ||
	{ echo "loop_restart: --load must be 0..16" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
SYNCD=$BUILD/syncd/tandem-syncd
NODE=$BUILD/tandem-node
[ -x "$SYNCD" ] || { echo "loop_restart: no $SYNCD" >&2; exit 2; }
PY=/usr/bin/python3

if [ "$LAB" = 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "loop_restart: --lab needs root" >&2; exit 2; }
	[ -x "$NODE" ] || { echo "loop_restart: no $NODE" >&2; exit 2; }
	CASE=${CASE:-test_syncd_restart_loses_no_session}
	RUN_TIMEOUT=300
else
	CASE=${CASE:-syncd_restart_and_node_restart_lose_nothing}
	RUN_TIMEOUT=120
fi

logs=$(mktemp -d /tmp/loop_restart.XXXXXX)
load_pids=()
cleanup() {
	for p in "${load_pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for ((k = 0; k < LOAD; k++)); do
	timeout 3600 sh -c 'while :; do :; done' &
	load_pids+=($!)
done

run_one() { # $1 log
	if [ "$LAB" = 1 ]; then
		TANDEM_TEST=$CASE TANDEM_NODE=$NODE TANDEM_SYNCD=$SYNCD TANDEM_SRC=$SRC \
		TDM_HA_PREFIX=${TDM_HA_PREFIX:-tdm-lr-} PYTHONDONTWRITEBYTECODE=1 \
			timeout --kill-after=10 "$RUN_TIMEOUT" \
			"$PY" "$SRC/tests/lab/test_failover.py" </dev/null >"$1" 2>&1
	else
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
			timeout --kill-after=10 "$RUN_TIMEOUT" \
			"$PY" "$SRC/tests/syncd/test_syncd.py" "$SYNCD" "$SRC" "$CASE" \
			</dev/null >"$1" 2>&1
	fi
}

echo "loop_restart: $CASE x $N ($([ "$LAB" = 1 ] && echo lab || echo syncd)," \
	"$SYNCD, load $LOAD)"
passed=0 failed=0
for ((i = 1; i <= N; i++)); do
	log=$logs/run-$i.log
	t0=$(date +%s.%N)
	rc=0
	run_one "$log" || rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	# the file's own verdict too: a case that was not found runs nothing
	if [ "$rc" = 0 ] && grep -qE '^ok +[a-z_]+' "$log"; then
		passed=$((passed + 1))
		# what the case printed of itself (the lab case: its counts)
		detail=$(grep -E '^     ' "$log" | head -n 1 | sed 's/^ *//' || true)
		echo "run $i/$N: ok ($secs s)${detail:+ - ${detail:0:300}}"
		rm -f "$log"
	else
		failed=$((failed + 1))
		why=$(grep -E '^[A-Za-z]+Error: |^FAIL ' "$log" | head -n 1 || true)
		echo "run $i/$N: FAIL (exit $rc, $secs s) ${why:0:200} - log $log"
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && rmdir "$logs" 2>/dev/null
[ "$failed" = 0 ]
