#!/usr/bin/env bash
# The main job: install missing Debian packages, build the debug preset,
# start a private umdevd (its own directories under a temporary one),
# define and start serial subdevices with umdevctl, show the types and the
# instances, drive every port with real traffic over vfio-user (a VMM and
# polled 16550 driver in umdev-serial-drive, the host ends as sockets),
# show the traffic counters, then stop and undefine everything. Exits
# non-zero if any step fails.
#
# UMDEV_DEMO_PREFIX=DIR runs the programs installed under DIR instead
# (DIR/sbin/umdevd, DIR/bin/umdevctl and the rest, as `cmake --install`
# or the Debian packages lay them out, e.g. a package tree extracted with
# dpkg -x at ROOT: DIR=ROOT/usr, with LD_LIBRARY_PATH naming its
# libumdev): nothing is installed or built then.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

PREFIX=${UMDEV_DEMO_PREFIX:-}
BUILD=build/debug
# Every step is bounded; a hang is a failure, not a stuck demo.
STEP_TIMEOUT=120
BYTES=${UMDEV_DEMO_BYTES:-16384}

step() { printf '\n== %s\n' "$*"; }
die() {
    echo "demo FAILED: $*" >&2
    exit 1
}

if [ -z "$PREFIX" ]; then
    step "dependencies (scripts/deps.sh)"
    umdev_install_deps || die "missing Debian packages (see above)"
    echo "all required Debian packages are installed"
fi

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

# The programs, from the build tree or from the installed tree.
if [ -n "$PREFIX" ]; then
    UMDEVD=$PREFIX/sbin/umdevd CTL=$PREFIX/bin/umdevctl
    PROBE=$PREFIX/bin/umdev-probe SERIAL_DRIVE=$PREFIX/bin/umdev-serial-drive
    ACCESS_DRIVE=$PREFIX/bin/umdev-access-drive
    NVME_DRIVE=$PREFIX/bin/umdev-nvme-drive
    CONFORM=$PREFIX/bin/umdev-conform
    step "installed programs under $PREFIX (UMDEV_DEMO_PREFIX)"
    for p in "$UMDEVD" "$CTL" "$PROBE" "$SERIAL_DRIVE" "$ACCESS_DRIVE" \
        "$NVME_DRIVE" "$CONFORM"; do
        [ -x "$p" ] || die "$p is not an installed program"
    done
    echo "all seven programs found"
else
    UMDEVD=$BUILD/daemon/umdevd CTL=$BUILD/cli/umdevctl
    PROBE=$BUILD/umdev-probe SERIAL_DRIVE=$BUILD/umdev-serial-drive
    ACCESS_DRIVE=$BUILD/devices/umdev-access-drive
    NVME_DRIVE=$BUILD/devices/umdev-nvme-drive
    CONFORM=$BUILD/tests/conformance/umdev-conform
    step "build (cmake --preset debug && cmake --build --preset debug)"
    if ! { cmake --preset debug && cmake --build --preset debug; } \
        >"$DIR/build.log" 2>&1; then
        cat "$DIR/build.log"
        die "build of the debug preset"
    fi
    echo "built $BUILD"
fi

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
step "start umdevd: rundir $UMDEV_RUNDIR, statedir $UMDEV_STATEDIR"
"$UMDEVD" >"$DIR/umdevd.log" 2>&1 &
daemon_pid=$!
# The socket's path appears only once it listens (umdev_listen_unix()).
control_listening() {
    [ -S "$UMDEV_CONTROL" ]
}
for _ in $(seq 50); do
    control_listening && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
control_listening || {
    cat "$DIR/umdevd.log" >&2
    die "umdevd did not listen on $UMDEV_CONTROL within 5 s"
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

run "inspect $A over vfio-user (umdev-probe)" "$PROBE" \
    "$UMDEV_RUNDIR/$A.sock"

# json_get KEY...: a field of the JSON object on stdin.
json_get() {
    python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
print(v)' "$@"
}
now() { date +%s.%N; }
# row NAME OPS BYTES T0 T1 ERRORS: one line of the final table.
ROWS=$DIR/table.tsv
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }

# Serial: every port of A, port 0 of B, BYTES each way.
for u in "$A" "$B"; do
    ports=("$UMDEV_RUNDIR/$u.port0")
    [ "$u" = "$A" ] && ports+=("$UMDEV_RUNDIR/$u.port1")
    t0=$(now)
    run "drive $u: $BYTES bytes each way through ${#ports[@]} port(s)" \
        "$SERIAL_DRIVE" --bytes "$BYTES" \
        "$UMDEV_RUNDIR/$u.sock" "${ports[@]}"
    n=$((${#ports[@]} * 2 * BYTES))
    row "serial ${u:0:8}" "$n" "$n" "$t0" "$(now)" \
        "$("$CTL" --json info "$u" | json_get device counters errors)"
done
run "traffic counters of $A (umdevctl info)" "$CTL" info "$A"

step "two accelerator subdevices and an access-path queue on parent accel"
X=$("$CTL" --json start -p accel -t accel-2wq | json_get instance uuid) ||
    die "start accel-2wq"
Y=$("$CTL" --json start -p accel -t accel-1wq | json_get instance uuid) ||
    die "start accel-1wq"
echo "started $X (accel-2wq) and $Y (accel-1wq)"
step "drive them at once: each subdevice as a VMM (20000 verified 1 KiB" \
    "MEMMOVEs, umdev-conform's ring load), the access queue from a host" \
    "process (umdev-access-drive: every op checked, then 3 s of load)"
t0=$(now)
timeout -k 5 "$STEP_TIMEOUT" "$ACCESS_DRIVE" \
    --seconds 3 >"$DIR/access.out" 2>&1 &
access_pid=$!
sleep 0.5 # the queue is leased before the list below
"$CTL" list
pids=()
for u in "$X" "$Y"; do
    timeout -k 5 "$STEP_TIMEOUT" "$CONFORM" \
        "$UMDEV_RUNDIR/$u.sock" --only datapath --daemon-uuid "$u" \
        --umdevctl "$CTL" >"$DIR/$u.out" 2>&1 &
    pids+=($!)
done
for i in 0 1; do
    u=$([ "$i" = 0 ] && echo "$X" || echo "$Y")
    wait "${pids[$i]}" || { cat "$DIR/$u.out"; die "driving $u"; }
    t1=$(now)
    grep '^PASS datapath' "$DIR/$u.out"
    "$CTL" --json info "$u" >"$DIR/$u.json"
    ep() { json_get device endpoints "$1" <"$DIR/$u.json"; }
    row "accel ${u:0:8}" "$(ep completed)" "$(ep bytes)" "$t0" "$t1" \
        "$(($(ep failed) + $(json_get device counters errors <"$DIR/$u.json")))"
done
wait "$access_pid" || { cat "$DIR/access.out"; die "the access queue"; }
cat "$DIR/access.out"
load=$(grep '^load ' "$DIR/access.out")
field() { tr ' ' '\n' <<<"$load" | sed -n "s/^$1=//p"; }
row "access queue" "$(field ops)" "$(field bytes)" 0 "$(field seconds)" \
    "$(field errors)"

step "an NVMe subdevice (nvme-4q, 64 MiB namespace in a sparse file under" \
    "the statedir, its size claimed from pool nvme.storage_mib)"
N=$("$CTL" define -p nvme -t nvme-4q --attr size=64M) || die "define nvme"
run "start $N" "$CTL" start "$N"
run "drive $N as a VMM with a polled NVMe driver (umdev-nvme-drive: 32 MiB written, flushed, read back and compared)" \
    sh -c '"$1" --mib 32 "$2" >"$3"' sh "$NVME_DRIVE" \
    "$UMDEV_RUNDIR/$N.sock" "$DIR/nvme.out"
cat "$DIR/nvme.out"
load=$(grep '^io ' "$DIR/nvme.out")
row "nvme ${N:0:8}" "$(field ops)" "$(field bytes)" 0 "$(field seconds)" \
    "$(($(field errors) + $("$CTL" --json info "$N" |
        json_get device endpoints errors)))"

step "per device (errors must be 0)"
python3 - "$ROWS" <<'PY' || die "a device reported errors"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("%-16s %10s %12s %8s %10s %6s" % ("device", "ops", "bytes", "seconds",
                                        "MB/s", "errors"))
bad = 0
for name, ops, nbytes, t0, t1, err in rows:
    s = float(t1) - float(t0)
    print("%-16s %10d %12d %8.2f %10.2f %6d" % (name, int(ops), int(nbytes),
                                                s, int(nbytes) / s / 1e6,
                                                int(err)))
    bad += int(err) != 0 or int(ops) == 0
sys.exit(1 if bad else 0)
PY
echo "(serial ops are bytes; accel ops are descriptors; nvme ops are" \
    "commands)"

step "stop and undefine"
"$CTL" stop "$X" && "$CTL" stop "$Y" || die "stop accel"
"$CTL" stop "$A" && "$CTL" stop "$B" && "$CTL" stop "$N" || die "stop"
"$CTL" undefine "$A" && "$CTL" undefine "$B" || die "undefine"
# The NVMe definition's backing file goes with it only on request.
"$CTL" undefine --delete-data "$N" || die "undefine $N"
[ -z "$(ls -A "$UMDEV_STATEDIR/nvme.data")" ] || die "backing file left"
"$CTL" list --defined
[ -z "$("$CTL" list --defined)" ] || die "definitions left behind"
[ -z "$("$CTL" list)" ] || die "instances left running"
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
