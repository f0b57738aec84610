#!/usr/bin/env bash
# nft_table_test.sh - runs tests/lab/nft_table_test.c (node/nft_table.c
# against the real kernel) inside a scratch network namespace that it
# creates and always deletes (trap), under a timeout.
#
# Usage (root): tests/lab/nft_table_test.sh [TEST_BINARY]
#   Without TEST_BINARY the test is compiled with gcc into a temporary
#   directory (set CFLAGS_EXTRA, e.g. "-fsanitize=address,undefined").
# Exit: 0 pass, 77 skipped (not root / no netns support), else failure.
# Must never: touch the root namespace's ruleset or leave its namespace.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ns="tdm-nfttest-$$"
tmp=""

if [ "$(id -u)" != 0 ]; then
	echo "nft_table_test.sh: needs root; skipped" >&2
	exit 77
fi

cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	[ -n "$tmp" ] && rm -rf "$tmp"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=${1:-}
if [ -z "$bin" ]; then
	tmp=$(mktemp -d /tmp/tdm-nfttest.XXXXXX)
	bin="$tmp/nft_table_test"
	# shellcheck disable=SC2046,SC2086
	gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		-Wno-missing-field-initializers -D_GNU_SOURCE ${CFLAGS_EXTRA:-} \
		-I"$root/common" -I"$root/node" \
		"$root/node/nft_table.c" "$here/nft_table_test.c" \
		$(pkg-config --cflags --libs libnftnl libmnl) -lcmocka -o "$bin"
fi

if ! ip netns add "$ns" 2>/dev/null; then
	echo "nft_table_test.sh: cannot create network namespace; skipped" >&2
	exit 77
fi
timeout --kill-after=5 60 ip netns exec "$ns" "$bin"
