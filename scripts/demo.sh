#!/usr/bin/env bash
# The main job: install missing Debian packages, build the debug preset,
# serve the test device on a private socket, show what umdev-probe sees
# (text, then JSON), and drive the device with real traffic (region I/O,
# DMA, IRQs) through umdev-testdev-drive. Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

BUILD=build/debug
# Every client step is bounded; a hang is a failure, not a stuck demo.
STEP_TIMEOUT=120

step() { printf '\n== %s\n' "$*"; }
die() {
    echo "demo FAILED: $*" >&2
    exit 1
}

step "dependencies (scripts/deps.sh)"
umdev_install_deps || die "missing Debian packages (see above)"
echo "all required Debian packages are installed"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/umdev-demo.XXXXXX")
SOCK="$DIR/testdev.sock"
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

step "build (cmake --preset debug && cmake --build --preset debug)"
if ! { cmake --preset debug && cmake --build --preset debug; } \
    >"$DIR/build.log" 2>&1; then
    cat "$DIR/build.log"
    die "build of the debug preset"
fi
echo "built $BUILD"

# run DESCRIPTION COMMAND...: one bounded step; on failure show the
# server's log too.
run() {
    local what=$1 rc=0

    shift
    step "$what"
    echo "\$ $*"
    timeout -k 5 "$STEP_TIMEOUT" "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        if [ -s "$DIR/testdev.log" ]; then
            echo "-- umdev-testdev log:" >&2
            cat "$DIR/testdev.log" >&2
        fi
        die "$what (exit $rc)"
    fi
}

step "serve the test device: $BUILD/tests/umdev-testdev --socket $SOCK"
"$BUILD/tests/umdev-testdev" --socket "$SOCK" >"$DIR/testdev.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
    [ -S "$SOCK" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -S "$SOCK" ]; then
    cat "$DIR/testdev.log" >&2
    die "umdev-testdev did not create $SOCK within 5 s"
fi
echo "listening (pid $server_pid)"

run "probe the device (umdev-probe)" "$BUILD/umdev-probe" "$SOCK"
run "probe the device as JSON (umdev-probe --json)" \
    "$BUILD/umdev-probe" --json "$SOCK"
run "drive the device with real traffic (umdev-testdev-drive)" \
    "$BUILD/tests/umdev-testdev-drive" "$SOCK"

step "stop the server"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
if [ "$rc" -ne 0 ]; then
    cat "$DIR/testdev.log" >&2
    die "umdev-testdev exited with status $rc"
fi
echo "umdev-testdev exited cleanly"

step "demo passed"
