#!/usr/bin/env bash
# The main job: install missing Debian packages, build the debug preset,
# start a private umdevd (its own directories under a temporary one),
# define and start serial subdevices with umdevctl, show the types and the
# instances, drive every port with real traffic over vfio-user (a VMM and
# polled 16550 driver in umdev-serial-drive, the host ends as sockets),
# show the traffic counters, then stop and undefine everything. Exits
# non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

BUILD=build/debug
# Every step is bounded; a hang is a failure, not a stuck demo.
STEP_TIMEOUT=120
BYTES=${UMDEV_DEMO_BYTES:-16384}

step() { printf '\n== %s\n' "$*"; }
die() {
    echo "demo FAILED: $*" >&2
    exit 1
}

step "dependencies (scripts/deps.sh)"
umdev_install_deps || die "missing Debian packages (see above)"
echo "all required Debian packages are installed"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/umdev-demo.XXXXXX")
export UMDEV_RUNDIR=$DIR/run UMDEV_STATEDIR=$DIR/state
export UMDEV_CONTROL=$DIR/control
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
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
# daemon's log too.
run() {
    local what=$1 rc=0

    shift
    step "$what"
    echo "\$ $*"
    timeout -k 5 "$STEP_TIMEOUT" "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "-- umdevd log:" >&2
        cat "$DIR/umdevd.log" >&2 || true
        die "$what (exit $rc)"
    fi
}
CTL=$BUILD/cli/umdevctl

step "start umdevd: rundir $UMDEV_RUNDIR, statedir $UMDEV_STATEDIR"
"$BUILD/daemon/umdevd" >"$DIR/umdevd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do
    [ -S "$UMDEV_CONTROL" ] && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
[ -S "$UMDEV_CONTROL" ] || {
    cat "$DIR/umdevd.log" >&2
    die "umdevd did not create $UMDEV_CONTROL within 5 s"
}
echo "umdevd running (pid $daemon_pid)"

run "parents and types (umdevctl types)" "$CTL" types
step "define two serial subdevices (umdevctl define)"
A=$("$CTL" define -p serial -t 2port --auto) || die "define"
B=$("$CTL" define -p serial -t 2port --manual --attr port1=none) ||
    die "define"
echo "defined $A (auto) and $B (manual, port1 without host end)"
run "start them (umdevctl start)" "$CTL" start "$A"
"$CTL" start "$B" || die "start $B"
run "instances (umdevctl list) and availability" "$CTL" list
"$CTL" types | grep 'Available' || true

run "inspect $A over vfio-user (umdev-probe)" "$BUILD/umdev-probe" \
    "$UMDEV_RUNDIR/$A.sock"
run "drive $A: $BYTES bytes each way through both ports" \
    "$BUILD/umdev-serial-drive" --bytes "$BYTES" "$UMDEV_RUNDIR/$A.sock" \
    "$UMDEV_RUNDIR/$A.port0" "$UMDEV_RUNDIR/$A.port1"
run "drive $B: $BYTES bytes each way through port 0" \
    "$BUILD/umdev-serial-drive" --bytes "$BYTES" "$UMDEV_RUNDIR/$B.sock" \
    "$UMDEV_RUNDIR/$B.port0"
run "traffic counters of $A (umdevctl info)" "$CTL" info "$A"

step "stop and undefine"
"$CTL" stop "$A" && "$CTL" stop "$B" || die "stop"
"$CTL" undefine "$A" && "$CTL" undefine "$B" || die "undefine"
"$CTL" list --defined
[ -z "$("$CTL" list --defined)" ] || die "definitions left behind"

step "stop umdevd (SIGTERM)"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
if [ "$rc" -ne 0 ]; then
    cat "$DIR/umdevd.log" >&2
    die "umdevd exited with status $rc"
fi
echo "umdevd exited cleanly"

step "demo passed"
