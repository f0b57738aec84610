#!/usr/bin/env bash
# Every test of Tandem on a fresh Debian 12 machine: install what is
# needed, build (normal and address+undefined sanitizer), run the suites.
# Usage (as root): bash deploy/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh

run_suite() { # $1 build dir, rest: meson setup options
  local dir=$1; shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  meson compile -C "$dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2
}

status=0
run_suite build || status=1
# b_lundef=false: the sanitizer runtimes resolve symbols at load time.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false || status=1

# One plain closing line over both builds.
/usr/bin/python3 - <<'PY'
import json
passed = failed = skipped = 0
for d in ("build", "build-asan"):
    try:
        with open(f"{d}/meson-logs/testlog.json") as f:
            for line in f:
                r = json.loads(line)["result"]
                if r == "OK": passed += 1
                elif r == "SKIP": skipped += 1
                else: failed += 1
    except FileNotFoundError:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
