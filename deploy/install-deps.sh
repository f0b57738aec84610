#!/usr/bin/env bash
# Install every Debian 12 package Tandem needs to build, test and run its
# demo. Idempotent: does nothing when all are present. Run as root.
set -euo pipefail

PKGS=(
  # build
  gcc libc6-dev pkg-config meson ninja-build git
  # libraries (DESIGN.md)
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler libmnl-dev libnftnl-dev
  libnetfilter-queue-dev libconfig-dev libcmocka-dev libsodium-dev
  libpcap-dev libxdp-dev libbpf-dev
  # tests: packets, observers, namespaces
  python3 python3-scapy python3-protobuf protobuf-compiler tshark tcpdump hping3 iperf3 iproute2 nftables
  iptables procps curl
  keepalived          # tests/syncd/keepalived_test.py, deploy/keepalived/
  # tandemctl: line editing and TAB completion (optional at build time)
  libedit-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture: answer no, silently.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
