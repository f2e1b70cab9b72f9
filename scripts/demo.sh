#!/usr/bin/env bash
# The main job: build, serve the test device, inspect it with umdev-probe,
# and drive it with real traffic (registers, mmapped BAR, DMA through a
# mapped fd and through messages, INTx with EOI, reset).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
umdev_install_deps

step() { printf '\n== %s\n' "$*"; }

step "build (debug preset)"
cmake --preset debug >/dev/null
cmake --build --preset debug -j "$(nproc)" >/dev/null

dir=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

step "serve the test device on $dir/testdev.sock"
build/debug/tests/umdev-testdev --socket "$dir/testdev.sock" &
server_pid=$!
for _ in $(seq 50); do [ -S "$dir/testdev.sock" ] && break; sleep 0.1; done
[ -S "$dir/testdev.sock" ] || { echo "server did not start"; exit 1; }

step "umdev-probe $dir/testdev.sock"
build/debug/umdev-probe "$dir/testdev.sock"

step "umdev-probe --json"
build/debug/umdev-probe --json "$dir/testdev.sock"

step "drive the device with real traffic"
build/debug/tests/umdev-testdev-drive "$dir/testdev.sock"
