#!/bin/bash
# tests/golden/serial-probe.sh SERVE PROBE GOLDEN_JSON
#
# Golden test of what a VMM sees of the serial device: start
# `SERVE serial` (umdev-serve) on a socket in a temporary directory, run
# `PROBE --json` (umdev-probe) against it, and compare the JSON with the
# checked-in GOLDEN_JSON byte for byte (umdev-probe keeps key order).
#
# Nothing is masked: the JSON holds no fds, paths, PIDs, times or host
# addresses (a fresh server has BAR addresses 0 and Command 0). The
# temporary socket path appears only in umdev-serve's own output, which is
# not compared. A difference is either a change of the device's
# guest-visible identity or of the library's negotiated limits; review it,
# then regenerate:
#
#   UMDEV_GOLDEN_UPDATE=1 ctest --test-dir build/debug -R golden.serial_probe
#   (or: UMDEV_GOLDEN_UPDATE=1 tests/golden/serial-probe.sh SERVE PROBE FILE)
#
# which writes GOLDEN_JSON instead of comparing (and still fails on every
# other problem). The server must also stop cleanly on SIGTERM (exit 0,
# which under the asan preset includes LeakSanitizer's verdict).
set -uo pipefail

KIT_NAME=golden.serial_probe
# shellcheck source=tests/common/kit.sh
. "$(dirname "$0")/../common/kit.sh"
[ $# -eq 3 ] || { say "usage: $0 SERVE PROBE GOLDEN_JSON"; exit 2; }
SERVE=$1 PROBE=$2 GOLDEN=$3
for f in "$SERVE" "$PROBE"; do
    [ -x "$f" ] || { say "FAIL: $f is not executable"; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-golden.XXXXXX")
SOCK=$TMP/serial.sock
SRV_PID=''
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$SRV_PID" KILL
    rm -rf "$TMP"
}
trap cleanup EXIT

"$SERVE" serial --socket "$SOCK" >"$TMP/server.out" 2>"$TMP/server.err" &
SRV_PID=$!
if ! wait_for_sockets "$SRV_PID" 200 "$SOCK"; then
    say "FAIL: umdev-serve did not create $SOCK"
    cat "$TMP/server.out" "$TMP/server.err"
    exit 1
fi

fail=0
"$PROBE" --json --timeout 5000 "$SOCK" >"$TMP/probe.json" 2>"$TMP/probe.err"
rc=$?
if [ "$rc" -ne 0 ]; then
    say "FAIL: umdev-probe exited $rc"
    cat "$TMP/probe.err"
    fail=1
fi

if ! stop_server "$SRV_PID" 50; then
    say "FAIL: umdev-serve still running 5 s after SIGTERM"
    fail=1
elif [ "$SRV_RC" -ne 0 ]; then
    say "FAIL: umdev-serve exited $SRV_RC after SIGTERM"
    cat "$TMP/server.err"
    fail=1
fi
SRV_PID=
[ "$fail" -eq 0 ] || exit 1

if [ "${UMDEV_GOLDEN_UPDATE:-0}" = 1 ]; then
    cp "$TMP/probe.json" "$GOLDEN" || { say "FAIL: cannot write $GOLDEN"; exit 1; }
    say "UPDATED $GOLDEN ($(wc -c <"$GOLDEN") bytes): review and commit it"
    exit 0
fi
[ -f "$GOLDEN" ] ||
    { say "FAIL: $GOLDEN missing (UMDEV_GOLDEN_UPDATE=1 creates it)"; exit 1; }
if ! diff -u --label "$GOLDEN" --label "umdev-probe --json" \
    "$GOLDEN" "$TMP/probe.json"; then
    say "FAIL: the probe differs from $GOLDEN (diff above; if the change is"
    say "intended, regenerate with UMDEV_GOLDEN_UPDATE=1)"
    exit 1
fi
say "PASS ($(wc -c <"$GOLDEN") bytes match)"
exit 0
