#!/usr/bin/env bash
# lab.sh - a Tandem lab out of network namespaces: client hosts, one
# firewall node, a server host and a dmz host, each LAN segment a bridge
# (so a later second firewall node can join it and a virtual address can
# move between the nodes).
#
#   tdm-c1 (10.1.0.2, fd00:1::2) ---+
#                                   +-- tdm-lanc:br0 --- veth-c --+
#   tdm-c2 (10.1.0.3, fd00:1::3) ---+                             |
#                                                             tdm-fw
#   tdm-srv (10.2.0.10 .11 .12 .13 .20 .30 .40 .53,               |
#            fd00:2::10, fd00:2::53) --- tdm-lans:br0 --- veth-s -+
#                                                                 |
#   tdm-dmz (10.3.0.5, fd00:3::5) ------ tdm-land:br0 --- veth-d -+
#
# The firewall holds 10.1.0.1/fd00:1::1 on veth-c, 10.2.0.1/fd00:2::1 on
# veth-s and 10.3.0.1/fd00:3::1 on veth-d (the interface names of
# conf/tandem.conf's zones); hosts route everything through it. Every host
# interface is `eth0`; the bridge ports in the tdm-lan* namespaces are named
# after the host they lead to (c1, c2, srv, dmz, fw1, fw2).
#
# Pair mode (`up --pair`): an active/standby pair for tandem-syncd. tdm-fw
# is the first node (fw1; its bridge ports are `fw1`), tdm-fw2 the second,
# joined to the same three bridges with the same interface names, plus a
# sync link of their own:
#
#   tdm-fw  sync0 10.255.0.1/30 ------------ sync0 10.255.0.2/30  tdm-fw2
#   (veth-c/-s/-d on lanc/lans/land)     (veth-c/-s/-d on lanc/lans/land)
#
# Each node has its own address on every LAN, .251 (fw1) and .252 (fw2):
# 10.1.0.251/16 fd00:1::251/64, 10.2.0.25x, 10.3.0.25x (and fd00:2::/3::).
# The hosts' gateways 10.1.0.1 10.2.0.1 10.3.0.1 fd00:1::1 fd00:2::1
# fd00:3::1 become virtual addresses that tandem-syncd moves (netlink +
# gratuitous ARP / unsolicited NA): a new pair starts with them on fw1, so
# the lab forwards before any daemon runs; `up --pair` over a pair where
# someone (syncd) holds them leaves them where they are. The nodes' own
# addresses are primary and promote_secondaries is on, so deleting a
# virtual address never takes the node's own with it. Hosts keep the
# kernel's defaults for ARP (arp_accept=0): a gratuitous ARP updates a
# neighbour entry that exists (the hosts' entry for their gateway), which
# is all a takeover needs. Node MACs: fw1 02:74:64:<seg>:01:00, fw2
# 02:74:64:<seg>:fc:00 (seg 01 client, 02 server, 03 dmz, ff sync).
#
# Usage (root): deploy/lab.sh up [--pair] | down [--all] | status
#   up      build the lab, or check and repair one that exists (idempotent).
#           Plain `up` over a pair lab turns it back into the one-node lab
#           (removes tdm-fw2, sync0 and the .251 addresses).
#   up --pair  the same, as a pair (over a one-node lab: adds the second).
#   down    kill what runs inside the lab's namespaces and delete them; fine
#           when nothing exists. `down --all` deletes every tdm-* namespace.
#   status  namespaces, interfaces and addresses, whether each firewall
#           holds the nft table `inet tandem`, and in pair mode which node
#           holds each virtual address. Exit 0 all up, 1 partly, 3 down.
# Environment:
#   TDM_LAB_PREFIX   namespace prefix [tdm-]; must begin with "tdm-" so that
#                    `ip netns list | grep tdm-` finds every leftover
#   TDM_LAB_OFFLOADS "off" [default]: turn off TX checksum offload on host
#                    ends when ethtool exists, so captures and NFQUEUE see
#                    complete checksums; "keep" leaves veth defaults.
#
# Must never: create, address or route anything in the root namespace (every
# link is created inside its namespace with `ip -n`), or delete a namespace
# whose name does not begin with the prefix.
set -euo pipefail

P=${TDM_LAB_PREFIX:-tdm-}
case $P in
tdm-*) ;;
*) echo "lab.sh: TDM_LAB_PREFIX must begin with tdm- (got '$P')" >&2; exit 2 ;;
esac

NS_C1=${P}c1 NS_C2=${P}c2 NS_FW=${P}fw NS_SRV=${P}srv NS_DMZ=${P}dmz
NS_LANC=${P}lanc NS_LANS=${P}lans NS_LAND=${P}land
NS_FW2=${P}fw2
HOSTS=("$NS_C1" "$NS_C2" "$NS_SRV" "$NS_DMZ")
LANS=("$NS_LANC" "$NS_LANS" "$NS_LAND")
ALL_NS=("$NS_FW" "${HOSTS[@]}" "${LANS[@]}")     # the one-node lab
PAIR_NS=("${ALL_NS[@]}" "$NS_FW2")               # the pair lab

# Per LAN segment (the same index in each): the firewall interface, the
# bridge namespace, the MAC segment byte, the gateway (a virtual address in
# pair mode) and the network's first three octets / IPv6 prefix.
FW_DEVS=(veth-c veth-s veth-d)
FW_LANS=("$NS_LANC" "$NS_LANS" "$NS_LAND")
FW_SEGS=(01 02 03)
NET4=(10.1.0 10.2.0 10.3.0)
NET6=(fd00:1: fd00:2: fd00:3:)

SRV4=(10.2.0.10 10.2.0.11 10.2.0.12 10.2.0.13 10.2.0.20 10.2.0.30 10.2.0.40 10.2.0.53)
SRV6=(fd00:2::10 fd00:2::53)

die() { echo "lab.sh: $*" >&2; exit 1; }

ns_exists() { [ -e "/run/netns/$1" ]; }

link_exists() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }

# out_has TEXT CMD...: CMD succeeds and its output contains TEXT. (Not
# `CMD | grep -q`: with pipefail, grep quitting early fails the pipeline.)
out_has() {
	local text=$1 out
	shift
	out=$("$@" 2>/dev/null) || return 1
	[[ $out == *"$text"* ]]
}

# Best-effort sysctl: some keys (bridge-nf-*) exist only with a module.
nsysctl_opt() {
	local ns=$1; shift
	local kv
	for kv in "$@"; do
		ip netns exec "$ns" sysctl -qw "$kv" >/dev/null 2>&1 || true
	done
}

nsysctl() {
	local ns=$1; shift
	ip netns exec "$ns" sysctl -qw "$@" >/dev/null || die "sysctl in $ns failed: $*"
}

ensure_ns() {
	local ns=$1
	ns_exists "$ns" || ip netns add "$ns"
	ip -n "$ns" link set lo up
	# Before any interface exists in $ns: new interfaces copy "default".
	nsysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0
}

# True when $1:$2 is a veth whose peer is $3:$4. Peers are matched by the
# peer index (iflink) seen from $1 and the index of $4 in $3; both names
# must exist in the expected namespaces too.
veth_ok() {
	local a b
	link_exists "$1" "$2" && link_exists "$3" "$4" || return 1
	out_has ' veth ' ip -n "$1" -d link show dev "$2" || return 1
	a=$(ip netns exec "$1" cat "/sys/class/net/$2/iflink" 2>/dev/null) || return 1
	b=$(ip netns exec "$3" cat "/sys/class/net/$4/ifindex" 2>/dev/null) || return 1
	[ "$a" = "$b" ]
}

# Creates veth $1:$2 <-> $3:$4 directly inside both namespaces (never in the
# root namespace). A half-built or mismatched pair is deleted first.
ensure_veth() {
	local nsa=$1 a=$2 nsb=$3 b=$4
	veth_ok "$nsa" "$a" "$nsb" "$b" && return 0
	ip -n "$nsa" link del dev "$a" 2>/dev/null || true
	ip -n "$nsb" link del dev "$b" 2>/dev/null || true
	ip -n "$nsa" link add "$a" type veth peer name "$b" netns "$nsb"
}

ensure_bridge() {
	local ns=$1
	if ! out_has ' bridge ' ip -n "$ns" -d link show dev br0; then
		ip -n "$ns" link del dev br0 2>/dev/null || true
		ip -n "$ns" link add br0 type bridge
	fi
	# No STP (nothing loops), no multicast snooping (no querier here, and
	# IPv6 neighbour discovery must reach every port at once).
	ip -n "$ns" link set dev br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
	ip -n "$ns" link set dev br0 up
}

port_up() { # ns port
	ip -n "$1" link set dev "$2" master br0
	ip -n "$1" link set dev "$2" up
}

# Host or firewall end: fixed MAC (02:74:64:<segment>:<host>:00, readable in
# captures and for tcprewrite), up.
end_up() { # ns dev mac
	ip -n "$1" link set dev "$2" address "$3"
	ip -n "$1" link set dev "$2" up
}

addr4() { ip -n "$1" addr replace "$2" dev "$3"; }
addr6() { ip -n "$1" -6 addr replace "$2" dev "$3" nodad; }

offloads() { # ns dev
	[ "${TDM_LAB_OFFLOADS:-off}" = off ] || return 0
	command -v ethtool >/dev/null 2>&1 || return 0
	ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true
}

# Both nodes: forwarding, no reverse-path filter, and promote_secondaries
# (in pair mode a virtual address is a secondary address of the node's own
# subnet: deleting it must never delete the others with it).
fw_sysctls() { # ns
	nsysctl "$1" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv6.conf.default.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv4.conf.all.promote_secondaries=1 \
		net.ipv4.conf.default.promote_secondaries=1
}

# A firewall node's three LAN interfaces, each a port named $2 on its
# segment's bridge, MAC 02:74:64:<seg>:$3:00.
fw_links() { # ns port machost
	local ns=$1 port=$2 mh=$3 i dev
	for i in 0 1 2; do
		ensure_veth "$ns" "${FW_DEVS[$i]}" "${FW_LANS[$i]}" "$port"
		port_up "${FW_LANS[$i]}" "$port"
	done
	# Per-interface values too: the kernel uses max(all, interface) for
	# rp_filter, and an interface repaired by `up` may predate "default".
	for i in 0 1 2; do
		dev=${FW_DEVS[$i]}
		nsysctl "$ns" "net.ipv4.conf.$dev.rp_filter=0" "net.ipv6.conf.$dev.accept_dad=0" \
			"net.ipv4.conf.$dev.promote_secondaries=1"
		end_up "$ns" "$dev" "02:74:64:${FW_SEGS[$i]}:$mh:00"
	done
}

# First (primary) IPv4 address of ns:dev, without its length; "" if none.
primary4() {
	ip -n "$1" -4 -o addr show dev "$2" 2>/dev/null |
		awk '{split($4, a, "/"); print a[1]; exit}'
}

# The node's own address A.$3/16 must be the primary IPv4 address of its
# segment (so a virtual address added later is secondary). When another
# address came first (a one-node lab's 10.x.0.1 turned into a pair), the
# IPv4 addresses of the interface are re-added in order.
own_addr4() { # ns dev addr
	local ns=$1 dev=$2 a=$3 others
	if [ "$(primary4 "$ns" "$dev")" != "$a" ]; then
		others=$(ip -n "$ns" -4 -o addr show dev "$dev" | awk '{print $4}' | grep -vxF "$a/16" || true)
		ip -n "$ns" -4 addr flush dev "$dev"
		addr4 "$ns" "$a/16" "$dev"
		local o
		for o in $others; do addr4 "$ns" "$o" "$dev"; done
	fi
	addr4 "$ns" "$a/16" "$dev"
}

# Who holds address $1 on segment $2: "fw1", "fw2", "fw1+fw2" or "none".
vip_holder() { # addr dev
	local who="" ns tag
	for ns in "$NS_FW" "$NS_FW2"; do
		[ "$ns" = "$NS_FW" ] && tag=fw1 || tag=fw2
		ns_exists "$ns" || continue
		if out_has " $1/" ip -n "$ns" -o addr show dev "$2"; then
			who=${who:+$who+}$tag
		fi
	done
	echo "${who:-none}"
}

lab_up() {
	local mode=${1:-single} ns dev i
	local nss=("${ALL_NS[@]}")
	[ "$mode" = pair ] && nss=("${PAIR_NS[@]}")

	for ns in "${nss[@]}"; do
		ensure_ns "$ns"
	done
	for ns in "${LANS[@]}"; do
		# Bridges forward IPv6 without holding addresses of their own;
		# keep their ports quiet (no link-local, no RS/MLD in captures).
		nsysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		nsysctl_opt "$ns" net.bridge.bridge-nf-call-iptables=0 \
			net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0
		ensure_bridge "$ns"
	done
	fw_sysctls "$NS_FW"

	ensure_veth "$NS_C1" eth0 "$NS_LANC" c1
	ensure_veth "$NS_C2" eth0 "$NS_LANC" c2
	ensure_veth "$NS_SRV" eth0 "$NS_LANS" srv
	ensure_veth "$NS_DMZ" eth0 "$NS_LAND" dmz
	port_up "$NS_LANC" c1
	port_up "$NS_LANC" c2
	port_up "$NS_LANS" srv
	port_up "$NS_LAND" dmz
	fw_links "$NS_FW" fw1 01

	for ns in "${HOSTS[@]}"; do
		nsysctl "$ns" net.ipv6.conf.eth0.accept_dad=0
	done
	end_up "$NS_C1" eth0 02:74:64:01:02:00
	end_up "$NS_C2" eth0 02:74:64:01:03:00
	end_up "$NS_SRV" eth0 02:74:64:02:10:00
	end_up "$NS_DMZ" eth0 02:74:64:03:05:00

	if [ "$mode" = pair ]; then
		pair_up
	else
		# a pair turned back into one node: no second node, no sync
		# link, no node addresses beside the gateways
		del_ns "$NS_FW2"
		ip -n "$NS_FW" link del dev sync0 2>/dev/null || true
		for i in 0 1 2; do
			dev=${FW_DEVS[$i]}
			ip -n "$NS_FW" addr del "${NET4[$i]}.251/16" dev "$dev" 2>/dev/null || true
			ip -n "$NS_FW" -6 addr del "${NET6[$i]}:251/64" dev "$dev" 2>/dev/null || true
			addr4 "$NS_FW" "${NET4[$i]}.1/16" "$dev"
			addr6 "$NS_FW" "${NET6[$i]}:1/64" "$dev"
		done
	fi

	addr4 "$NS_C1" 10.1.0.2/16 eth0
	addr6 "$NS_C1" fd00:1::2/64 eth0
	addr4 "$NS_C2" 10.1.0.3/16 eth0
	addr6 "$NS_C2" fd00:1::3/64 eth0
	local a
	for a in "${SRV4[@]}"; do addr4 "$NS_SRV" "$a/16" eth0; done
	for a in "${SRV6[@]}"; do addr6 "$NS_SRV" "$a/64" eth0; done
	addr4 "$NS_DMZ" 10.3.0.5/16 eth0
	addr6 "$NS_DMZ" fd00:3::5/64 eth0

	ip -n "$NS_C1" route replace default via 10.1.0.1 dev eth0
	ip -n "$NS_C1" -6 route replace default via fd00:1::1 dev eth0
	ip -n "$NS_C2" route replace default via 10.1.0.1 dev eth0
	ip -n "$NS_C2" -6 route replace default via fd00:1::1 dev eth0
	ip -n "$NS_SRV" route replace default via 10.2.0.1 dev eth0
	ip -n "$NS_SRV" -6 route replace default via fd00:2::1 dev eth0
	ip -n "$NS_DMZ" route replace default via 10.3.0.1 dev eth0
	ip -n "$NS_DMZ" -6 route replace default via fd00:3::1 dev eth0

	for ns in "${HOSTS[@]}"; do offloads "$ns" eth0; done

	lab_verify "$mode" || die "lab is not complete after up (see: deploy/lab.sh status)"
	local what=""
	[ "$mode" = pair ] && what=" --pair"
	echo "lab.sh: up$what (${nss[*]})"
}

# The second node, the sync link, the nodes' own addresses and (where no
# node holds them) the virtual addresses on fw1.
pair_up() {
	local i dev
	fw_sysctls "$NS_FW2"
	fw_links "$NS_FW2" fw2 fc

	ensure_veth "$NS_FW" sync0 "$NS_FW2" sync0
	nsysctl "$NS_FW" net.ipv4.conf.sync0.rp_filter=0 net.ipv6.conf.sync0.accept_dad=0
	nsysctl "$NS_FW2" net.ipv4.conf.sync0.rp_filter=0 net.ipv6.conf.sync0.accept_dad=0
	end_up "$NS_FW" sync0 02:74:64:ff:01:00
	end_up "$NS_FW2" sync0 02:74:64:ff:fc:00
	addr4 "$NS_FW" 10.255.0.1/30 sync0
	addr4 "$NS_FW2" 10.255.0.2/30 sync0

	for i in 0 1 2; do
		dev=${FW_DEVS[$i]}
		own_addr4 "$NS_FW" "$dev" "${NET4[$i]}.251"
		own_addr4 "$NS_FW2" "$dev" "${NET4[$i]}.252"
		addr6 "$NS_FW" "${NET6[$i]}:251/64" "$dev"
		addr6 "$NS_FW2" "${NET6[$i]}:252/64" "$dev"
		[ "$(vip_holder "${NET4[$i]}.1" "$dev")" != none ] ||
			addr4 "$NS_FW" "${NET4[$i]}.1/16" "$dev"
		[ "$(vip_holder "${NET6[$i]}:1" "$dev")" != none ] ||
			addr6 "$NS_FW" "${NET6[$i]}:1/64" "$dev"
	done
}

# Every namespace, every end up with its first address: 0, else 1. In pair
# mode the nodes' own addresses and the sync link are checked, not the
# virtual addresses (they move).
lab_verify() {
	local mode=${1:-single} ok=0 ns i
	local nss=("${ALL_NS[@]}")
	[ "$mode" = pair ] && nss=("${PAIR_NS[@]}")
	for ns in "${nss[@]}"; do
		ns_exists "$ns" || { echo "missing namespace $ns" >&2; ok=1; }
	done
	[ $ok = 0 ] || return 1
	check_addr() { # ns dev addr
		out_has " $3/" ip -n "$1" -o addr show dev "$2" ||
			{ echo "$1: $2 lacks $3" >&2; return 1; }
		out_has 'state UP' ip -n "$1" link show dev "$2" ||
			{ echo "$1: $2 is not up" >&2; return 1; }
	}
	if [ "$mode" = pair ]; then
		for i in 0 1 2; do
			check_addr "$NS_FW" "${FW_DEVS[$i]}" "${NET4[$i]}.251" || ok=1
			check_addr "$NS_FW2" "${FW_DEVS[$i]}" "${NET4[$i]}.252" || ok=1
		done
		check_addr "$NS_FW" veth-c fd00:1::251 || ok=1
		check_addr "$NS_FW2" veth-c fd00:1::252 || ok=1
		check_addr "$NS_FW" sync0 10.255.0.1 || ok=1
		check_addr "$NS_FW2" sync0 10.255.0.2 || ok=1
	else
		check_addr "$NS_FW" veth-c 10.1.0.1 || ok=1
		check_addr "$NS_FW" veth-s 10.2.0.1 || ok=1
		check_addr "$NS_FW" veth-d 10.3.0.1 || ok=1
		check_addr "$NS_FW" veth-c fd00:1::1 || ok=1
	fi
	check_addr "$NS_C1" eth0 10.1.0.2 || ok=1
	check_addr "$NS_C2" eth0 10.1.0.3 || ok=1
	check_addr "$NS_SRV" eth0 10.2.0.53 || ok=1
	check_addr "$NS_SRV" eth0 fd00:2::53 || ok=1
	check_addr "$NS_DMZ" eth0 10.3.0.5 || ok=1
	return $ok
}

# Processes left inside a namespace keep it (and its interfaces) alive after
# `ip netns del`: end them first, politely, then not.
kill_ns_pids() {
	local ns=$1 pids
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -n "$pids" ] || return 0
		sleep 0.2
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
}

del_ns() {
	local ns=$1
	case $ns in tdm-*) ;; *) die "refusing to delete namespace $ns" ;; esac
	ns_exists "$ns" || return 0
	kill_ns_pids "$ns"
	ip netns del "$ns" 2>/dev/null || true
}

lab_down() {
	local ns all=${1:-}
	for ns in "${PAIR_NS[@]}"; do
		del_ns "$ns"
	done
	if [ "$all" = --all ]; then
		for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^tdm-' || true); do
			del_ns "$ns"
		done
	fi
	# Anything still named like ours means a deletion failed.
	for ns in "${PAIR_NS[@]}"; do
		ns_exists "$ns" && die "namespace $ns still exists"
	done
	echo "lab.sh: down"
}

lab_status() {
	# a lab with the second node is a pair lab
	local mode=single ns present=0 i
	local nss=("${ALL_NS[@]}")
	if ns_exists "$NS_FW2"; then
		mode=pair
		nss=("${PAIR_NS[@]}")
	fi
	for ns in "${nss[@]}"; do
		if ns_exists "$ns"; then
			present=$((present + 1))
			echo "== $ns"
			ip -n "$ns" -br addr show 2>/dev/null | grep -v '^lo ' | sed 's/^/   /' || true
		else
			echo "== $ns (absent)"
		fi
	done
	for ns in "$NS_FW" "$NS_FW2"; do
		ns_exists "$ns" || continue
		if ip netns exec "$ns" nft list table inet tandem >/dev/null 2>&1; then
			echo "nft table inet tandem in $ns: present"
		else
			echo "nft table inet tandem in $ns: absent"
		fi
	done
	if [ $mode = pair ]; then
		for i in 0 1 2; do
			echo "virtual ${NET4[$i]}.1 ${NET6[$i]}:1 on ${FW_DEVS[$i]}:" \
				"$(vip_holder "${NET4[$i]}.1" "${FW_DEVS[$i]}")" \
				"$(vip_holder "${NET6[$i]}:1" "${FW_DEVS[$i]}")"
		done
	fi
	local others
	others=$(ip netns list 2>/dev/null | awk '{print $1}' | grep '^tdm-' |
		grep -vxF -f <(printf '%s\n' "${PAIR_NS[@]}") || true)
	[ -z "$others" ] || echo "other tdm- namespaces: $(echo "$others" | tr '\n' ' ')"
	if [ $present = 0 ]; then
		echo "lab: down"
		return 3
	fi
	local up_cmd="up"
	[ $mode = pair ] && up_cmd="up --pair"
	if [ $present != "${#nss[@]}" ] || ! lab_verify $mode 2>/dev/null; then
		echo "lab: partly up (run: deploy/lab.sh $up_cmd, or down)"
		return 1
	fi
	if [ $mode = pair ]; then echo "lab: up (pair)"; else echo "lab: up"; fi
}

[ "$(id -u)" = 0 ] || die "must run as root"
command -v ip >/dev/null || die "iproute2 (ip) is missing"

usage() { echo "usage: $0 up [--pair] | down [--all] | status" >&2; exit 2; }

case ${1:-} in
up)
	case ${2:-} in
	"") lab_up single ;;
	--pair) lab_up pair ;;
	*) usage ;;
	esac
	;;
down) lab_down "${2:-}" ;;
status) lab_status ;;
*) usage ;;
esac
