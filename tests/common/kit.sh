# shellcheck shell=bash disable=SC2034  # variables set for the sourcing script
# The test kit's shell half (tests/common/README.md): what the e2e and
# golden test scripts share instead of keeping copies. Source it after
# setting KIT_NAME (the test's name, as ctest knows it: "e2e.smoke",
# "golden.serial_probe"); nothing here runs on its own. CI=true (from the
# environment) turns every skip into a failure.

CI=${CI:-false}

# say MESSAGE...: one line on stdout, prefixed with the test's name.
say() { printf '%s: %s\n' "$KIT_NAME" "$*"; }

# skip_or_fail REASON: the environment cannot run the test: exit 77
# (ctest's "skipped"), or 1 under CI=true where nothing may be skipped.
skip_or_fail() {
    if [ "$CI" = true ]; then
        say "FAIL: $* (CI=true: nothing is skipped)"
        exit 1
    fi
    say "SKIP: $*"
    exit 77
}

# now: seconds since the epoch, with nanoseconds; elapsed T0 T1: T1 - T0
# with one decimal.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# field LINE KEY: the value of KEY in a "key=value ..." line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# stop PID [SIGNAL]: end a child we started (SIGTERM by default) and reap
# it; nothing if PID is empty or already gone.
stop() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "-${2:-TERM}" "$1" 2>/dev/null
        wait "$1" 2>/dev/null
    fi
}

# wait_until PID TRIES COMMAND...: run COMMAND every 50 ms until it
# succeeds, at most TRIES times, and no longer once PID (the process that
# should make it succeed) has exited. Status: COMMAND's last.
wait_until() {
    local pid=$1 tries=$2

    shift 2
    for _ in $(seq "$tries"); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    "$@"
}

# are_sockets PATH...: status 0 if every PATH is a socket. Enough to
# connect: umdev's servers make a socket's path appear only once it
# listens (umdev_listen_unix()).
are_sockets() {
    local p

    for p in "$@"; do
        [ -S "$p" ] || return 1
    done
}

# wait_for_sockets PID TRIES PATH...: wait_until every PATH listens.
wait_for_sockets() {
    local pid=$1 tries=$2

    shift 2
    wait_until "$pid" "$tries" are_sockets "$@"
}

# wait_exit PID TENTHS: wait up to TENTHS tenths of a second for PID to
# exit. Sets EXIT_RC to its exit status; if it is still there, SIGKILLs
# it, sets EXIT_RC=124 and returns 1.
wait_exit() {
    local pid=$1 tenths=$2

    for _ in $(seq "$tenths"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        stop "$pid" KILL
        EXIT_RC=124
        return 1
    fi
    wait "$pid"
    EXIT_RC=$?
}

# stop_server PID TENTHS: SIGTERM, then wait_exit; its status goes to
# SRV_RC (124: it had to be killed, and the return status is 1).
stop_server() {
    local rc=0

    kill "$1" 2>/dev/null
    wait_exit "$1" "$2" || rc=1
    SRV_RC=$EXIT_RC
    return "$rc"
}
