#!/bin/sh
# Run the conformance kit against a freshly started server and stop the
# server afterwards, whatever happened. Used by the conformance.* ctest
# entries; usable by hand.
#
#   run.sh serial        CONFORM UMDEV_SERVE   [KIT OPTIONS...]
#   run.sh testdev       CONFORM UMDEV_TESTDEV [KIT OPTIONS...]
#   run.sh accel-K       CONFORM UMDEV_SERVE   [KIT OPTIONS...]
#   run.sh display-1024|display-1920 CONFORM UMDEV_SERVE [KIT OPTIONS...]
#   run.sh serial_daemon CONFORM UMDEVD UMDEVCTL [KIT OPTIONS...]
#
# Environment: CONFORM_FUZZ_SECONDS (default 5), CONFORM_KEEP=1 keeps the
# temporary directory (server logs) for a look afterwards.
set -eu

usage() {
    echo "usage: run.sh serial|testdev|accel-K|display-1024|display-1920" \
        "CONFORM SERVER [OPTS...]" >&2
    echo "       run.sh serial_daemon CONFORM UMDEVD UMDEVCTL [OPTS...]" >&2
    exit 2
}

[ $# -ge 3 ] || usage
mode=$1
conform=$2
shift 2
fuzz=${CONFORM_FUZZ_SECONDS:-5}
# Every wait below is bounded: 10 s for a socket to appear, 60 s for the
# kit (ctest's TIMEOUT is the outer bound).
wait_limit=100 # tenths of a second

dir=$(mktemp -d /tmp/umdev-conform-XXXXXX)
server_pid=
daemon_pid=
uuid=

cleanup() {
    status=$?
    trap - EXIT INT TERM
    if [ -n "$uuid" ] && [ -n "$daemon_pid" ]; then
        "$umdevctl" stop "$uuid" >/dev/null 2>&1 || true
    fi
    for pid in $server_pid $daemon_pid; do
        kill -TERM "$pid" 2>/dev/null || continue
        n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ] || [ "${CONFORM_KEEP:-}" = 1 ]; then
        for log in "$dir"/*.log; do
            [ -s "$log" ] || continue
            echo "--- $log" >&2
            tail -n 40 "$log" >&2
        done
    fi
    if [ "${CONFORM_KEEP:-}" = 1 ]; then
        echo "kept $dir" >&2
    else
        rm -rf "$dir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The socket's path appears only once it listens (umdev_listen_unix()).
listening() {
    [ -S "$1" ]
}

wait_for_socket() {
    n=0
    while ! listening "$1"; do
        if [ $n -ge $wait_limit ]; then
            echo "run.sh: $1 did not listen within 10 s" >&2
            return 1
        fi
        if [ -n "$2" ] && ! kill -0 "$2" 2>/dev/null; then
            echo "run.sh: the server exited before listening on $1" >&2
            return 1
        fi
        sleep 0.1
        n=$((n + 1))
    done
}

# A sanitizer build's quarantine holds freed memory back on purpose; keep
# it small so the leaks check measures the server, not the sanitizer.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1
export ASAN_OPTIONS

case $mode in
serial | testdev)
    server=$1
    shift
    sock=$dir/dev.sock
    if [ "$mode" = serial ]; then
        "$server" serial --socket "$sock" >"$dir/server.log" 2>&1 &
    else
        "$server" --socket "$sock" >"$dir/server.log" 2>&1 &
    fi
    server_pid=$!
    wait_for_socket "$sock" "$server_pid"
    timeout -k 5 60 "$conform" "$sock" --fuzz-seconds "$fuzz" "$@"
    ;;
accel-1 | accel-2 | accel-4)
    # The profile comes from the server itself: the kit then checks that
    # the framework enforces exactly what the device declares.
    server=$1
    shift
    sock=$dir/dev.sock
    "$server" accel --socket "$sock" --queues "${mode#accel-}" --threads 2 \
        --profile-json "$dir/profile.json" >"$dir/server.log" 2>&1 &
    server_pid=$!
    wait_for_socket "$sock" "$server_pid"
    timeout -k 5 60 "$conform" "$sock" --fuzz-seconds "$fuzz" \
        --profile "$dir/profile.json" "$@"
    ;;
display-1024 | display-1920)
    # As accel: the profile is the server's own.
    server=$1
    shift
    sock=$dir/dev.sock
    "$server" display --socket "$sock" --type "$mode" \
        --profile-json "$dir/profile.json" >"$dir/server.log" 2>&1 &
    server_pid=$!
    wait_for_socket "$sock" "$server_pid"
    timeout -k 5 60 "$conform" "$sock" --fuzz-seconds "$fuzz" \
        --profile "$dir/profile.json" "$@"
    ;;
serial_daemon)
    [ $# -ge 2 ] || usage
    umdevd=$1
    umdevctl=$2
    shift 2
    UMDEV_RUNDIR=$dir/run
    UMDEV_STATEDIR=$dir/state
    UMDEV_CONTROL=$dir/run/control
    export UMDEV_RUNDIR UMDEV_STATEDIR UMDEV_CONTROL
    mkdir -p "$UMDEV_RUNDIR" "$UMDEV_STATEDIR"
    "$umdevd" >"$dir/daemon.log" 2>&1 &
    daemon_pid=$!
    wait_for_socket "$UMDEV_CONTROL" "$daemon_pid"
    out=$(timeout 10 "$umdevctl" start --parent serial --type serial-2port)
    uuid=${out%% *}
    sock=$UMDEV_RUNDIR/$uuid.sock
    wait_for_socket "$sock" ""
    timeout -k 5 60 "$conform" "$sock" --fuzz-seconds "$fuzz" \
        --daemon-uuid "$uuid" --umdevctl "$umdevctl" \
        --host-end "$UMDEV_RUNDIR/$uuid.port0" "$@"
    ;;
*)
    usage
    ;;
esac
