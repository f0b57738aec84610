#!/usr/bin/env bash
# run_lab_tests.sh - every lab test of the tree, one file after another:
# tests/lab/test_*.py (with /usr/bin/python3: scapy), then lab_smoke.sh and
# nft_table_test.sh (both run without arguments: lab_smoke.sh builds its own
# private lab, nft_table_test.sh compiles its test into a temporary dir).
#
# Usage (root): tests/lab/run_lab_tests.sh [TANDEM_NODE [TANDEM_SRC]]
#   TANDEM_NODE  the tandem-node binary   [$TANDEM_NODE, else SRC/build/tandem-node]
#   TANDEM_SRC   the source tree to test  [$TANDEM_SRC, else this script's tree]
# Environment:
#   TANDEM_LAB_FILE_TIMEOUT  seconds one file may take [300]; then it is
#                            killed and counts as failed
#   TANDEM_LAB_ONLY          run only files whose name contains this
#   TANDEM_TEST              passed through: runs only matching test_* functions
#
# Prints each file's output (indented), a result line per file, and closes
# with "N passed, N failed": the sum of the files' closing lines ("N passed,
# N failed" of labtest.run_tests, cmocka's [ PASSED ]/[ FAILED ] counts, or
# the ok/FAIL lines of lab_smoke.sh). A file that fails without saying how
# many of its tests failed (crash, timeout) adds one failure.
# Exit: 0 all passed, 1 something failed, 77 skipped (not root), 2 usage.
#
# Must never: run two lab files at once (they share the machine's two
# cores and their timing margins assume it), or leave a file running past
# its timeout.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SRC=${2:-${TANDEM_SRC:-$(cd "$here/../.." && pwd)}}
NODE=${1:-${TANDEM_NODE:-$SRC/build/tandem-node}}
FILE_TIMEOUT=${TANDEM_LAB_FILE_TIMEOUT:-300}
PY=/usr/bin/python3

if [ "$(id -u)" != 0 ]; then
	echo "run_lab_tests: lab tests need root; skipped" >&2
	exit 77
fi
if [ ! -d "$SRC/tests/lab" ]; then
	echo "run_lab_tests: $SRC/tests/lab: no such directory" >&2
	exit 2
fi
if [ ! -x "$NODE" ]; then
	echo "run_lab_tests: tandem-node binary '$NODE' not found or not executable" >&2
	exit 2
fi
SRC=$(cd "$SRC" && pwd)
NODE=$(cd "$(dirname "$NODE")" && pwd)/$(basename "$NODE")
export TANDEM_NODE=$NODE TANDEM_SRC=$SRC
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the tree

tmp=$(mktemp -d /tmp/tandem-labrun.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

files=()
for f in "$SRC"/tests/lab/test_*.py "$SRC/tests/lab/lab_smoke.sh" "$SRC/tests/lab/nft_table_test.sh"; do
	[ -f "$f" ] || continue
	[ -z "${TANDEM_LAB_ONLY:-}" ] || [[ $(basename "$f") == *"$TANDEM_LAB_ONLY"* ]] || continue
	files+=("$f")
done

# counts LOG -> "PASSED FAILED", or "" when the log states no count
counts() {
	local log=$1 line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		awk '{print $1, $3}' <<<"$line"
		return
	fi
	if grep -qE '^\[  (PASSED|FAILED)  \] [0-9]+ test' "$log"; then
		local p f
		p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | tail -n 1 | awk '{print $4}')
		f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | tail -n 1 | awk '{print $4}')
		echo "${p:-0} ${f:-0}"
		return
	fi
	local ok fail
	ok=$(grep -cE '^ok ' "$log")
	fail=$(grep -cE '^FAIL ' "$log")
	if [ "$ok" -gt 0 ] || [ "$fail" -gt 0 ]; then
		echo "$ok $fail"
	fi
}

total_p=0 total_f=0 failed_files=0
results=()
for f in "${files[@]}"; do
	name=$(basename "$f")
	log="$tmp/$name.log"
	case $f in
	*.py) cmd=("$PY" "$f") ;;
	*) cmd=(bash "$f") ;;
	esac
	echo "== $name"
	t0=$(date +%s)
	timeout --kill-after=10 "$FILE_TIMEOUT" "${cmd[@]}" </dev/null 2>&1 | tee "$log" | sed 's/^/   /'
	rc=${PIPESTATUS[0]}
	secs=$(($(date +%s) - t0))
	if [ "$rc" = 77 ]; then
		results+=("SKIP $name (${secs} s)")
		echo "-- $name: skipped"
		continue
	fi
	c=$(counts "$log")
	p=${c% *} fl=${c#* }
	[ -n "$c" ] || { p=0 fl=0; }
	status=ok
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		status="TIMEOUT after ${FILE_TIMEOUT} s"
	elif [ "$rc" != 0 ]; then
		status="FAIL (exit $rc)"
	fi
	if [ "$rc" != 0 ] && [ "$fl" = 0 ]; then
		fl=1 # failed without a count of its own
	fi
	if [ "$rc" = 0 ] && [ "$p" = 0 ] && [ "$fl" = 0 ]; then
		p=1 # passed without a count of its own
	fi
	[ "$rc" = 0 ] || failed_files=$((failed_files + 1))
	total_p=$((total_p + p))
	total_f=$((total_f + fl))
	results+=("$(printf '%-4s %s: %s passed, %s failed (%s s)%s' \
		"$([ "$rc" = 0 ] && echo ok || echo FAIL)" "$name" "$p" "$fl" "$secs" \
		"$([ "$status" = ok ] || echo " - $status")")")
	echo "-- $name: $status"
done

echo
echo "== lab test files (node $NODE)"
for r in "${results[@]}"; do
	echo "$r"
done
echo "$total_p passed, $total_f failed"
[ "$failed_files" = 0 ] && [ "$total_f" = 0 ]
