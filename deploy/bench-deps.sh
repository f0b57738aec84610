#!/bin/sh
# bench-deps.sh - install what tests/bench needs: DPDK's rte_hash (libdpdk-dev)
# as the hash-table baseline, and pkg-config so meson finds it.
#
# Idempotent: installs nothing when both are present, and only refreshes the
# package lists when something is missing. Run as root. Must never touch
# anything beyond these packages (no config, no services, no hugepages).
set -eu

pkgs="libdpdk-dev pkg-config"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "bench-deps: already installed:$(printf ' %s' $pkgs)"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "bench-deps: run as root (missing:$missing)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is wanted
apt-get install -y --no-install-recommends $missing
echo "bench-deps: installed:$missing"
