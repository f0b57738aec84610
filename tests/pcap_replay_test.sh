#!/usr/bin/env bash
# Integration: generate the sample capture, replay it through tandem-node
# with conf/tandem.conf and compare the summary with tests/data/sample.expect
# (every line there must appear exactly); then replay it with a tiny table
# (tests/data/small-table.conf) where the table fills and aggressive ageing
# runs. Args: TANDEM_NODE SOURCE_ROOT.
set -euo pipefail
node=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

timeout 120 /usr/bin/python3 "$src/tests/gen_sample_pcap.py" "$tmp/sample.pcapng" >/dev/null
timeout 60 "$node" --config "$src/conf/tandem.conf" --pcap "$tmp/sample.pcapng" >"$tmp/out"
cat "$tmp/out"
fail=0
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  if ! grep -qxF -- "$line" "$tmp/out"; then
    echo "MISSING: $line"; fail=1
  fi
done <"$src/tests/data/sample.expect"

# small-table.conf turns table.evict_unreplied off: the table fills, new
# flows are refused; with it on (the default) unreplied flows make room
timeout 60 "$node" --config "$src/tests/data/small-table.conf" --pcap "$tmp/sample.pcapng" >"$tmp/small"
cat "$tmp/small"
grep -Eq '^drop reason=table-full count=[1-9]' "$tmp/small" || { echo "MISSING: table-full drops"; fail=1; }
grep -Eq 'ageing_started=[1-9]' "$tmp/small" || { echo "MISSING: aggressive ageing"; fail=1; }
sed 's/evict_unreplied = false/evict_unreplied = true/' "$src/tests/data/small-table.conf" >"$tmp/evict.conf"
timeout 60 "$node" --config "$tmp/evict.conf" --pcap "$tmp/sample.pcapng" >"$tmp/evict"
grep -Eq ' evicted-unreplied=[1-9]' "$tmp/evict" || { echo "MISSING: evicted-unreplied with eviction on"; fail=1; }

# malformed input: a truncated capture and a non-capture are clear errors, no crash
head -c 300 "$tmp/sample.pcapng" >"$tmp/trunc.pcapng"
set +e
timeout 60 "$node" --config "$src/conf/tandem.conf" --pcap "$tmp/trunc.pcapng" >/dev/null 2>"$tmp/err1"; r1=$?
echo "not a capture" >"$tmp/junk"
timeout 60 "$node" --config "$src/conf/tandem.conf" --pcap "$tmp/junk" >/dev/null 2>"$tmp/err2"; r2=$?
set -e
[ $r1 -le 1 ] || { echo "truncated capture: exit $r1"; fail=1; }
[ $r2 -eq 1 ] && [ -s "$tmp/err2" ] || { echo "junk capture: exit $r2, no message"; fail=1; }

[ $fail -eq 0 ] && echo "pcap replay: all expectations met"
exit $fail
