#!/usr/bin/env bash
# Tandem demo on a fresh Debian 12 machine: install what is needed, build,
# generate the sample capture (every session behaviour, made by the project
# itself with scapy) and replay it through tandem-node with the example
# config conf/tandem.conf. Usage (as root): bash deploy/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build tandem-node >/dev/null

cap=build/sample.pcapng
/usr/bin/python3 tests/gen_sample_pcap.py "$cap"
echo
echo "== tandem-node --config conf/tandem.conf --pcap $cap"
./build/tandem-node --config conf/tandem.conf --pcap "$cap"
