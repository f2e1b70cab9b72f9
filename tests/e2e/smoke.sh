#!/bin/bash
# tests/e2e/smoke.sh [BUILD_DIR]
#
# First end-to-end test: serve the test device (umdev-testdev, 1234:11ef) on a
# UNIX socket, boot a TCG guest with it attached as vfio-user-pci (QEMU 11.x
# from the cached trixie tree, see setup.sh), and check from guest userspace
# that the device enumerates, that BAR0/BAR2 have the right sizes and that
# BAR0's ID register reads 0x7E57DE71 (devmem on the BAR0 address).
#
# BUILD_DIR defaults to build/debug (built with the debug preset if the test
# device is missing there). Exit 0: pass; 1: fail; 77: skipped (the guest
# environment cannot be prepared, e.g. no network) - never with CI=true, where
# every such problem is a failure.
# Artifacts (console, server log, timings) are kept in
# ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/smoke}.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD_DIR=${1:-$SRC/build/debug}
CACHE_DIR=${UMDEV_E2E_CACHE:-$HOME/.cache/umdev-e2e}
export UMDEV_E2E_CACHE=$CACHE_DIR
CI=${CI:-false}

say() { printf 'e2e.smoke: %s\n' "$*"; }
skip_or_fail() {
    if [ "$CI" = true ]; then
        say "FAIL: $* (CI=true: nothing is skipped)"
        exit 1
    fi
    say "SKIP: $*"
    exit 77
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the test device ---------------------------------------------------------
TESTDEV=$BUILD_DIR/tests/umdev-testdev
if [ ! -x "$TESTDEV" ]; then
    if [ "$BUILD_DIR" = "$SRC/build/debug" ]; then
        say "building the debug preset (umdev-testdev missing)"
        (cd "$SRC" && cmake --preset debug >/dev/null &&
            cmake --build --preset debug --target umdev-testdev) ||
            { say "FAIL: cannot build umdev-testdev"; exit 1; }
    fi
    [ -x "$TESTDEV" ] || { say "FAIL: $TESTDEV not found"; exit 1; }
fi

# ---- the guest environment ---------------------------------------------------
t=$(now)
if ! "$HERE/setup.sh" "$CACHE_DIR"; then
    skip_or_fail "tests/e2e/setup.sh could not prepare $CACHE_DIR"
fi
T_SETUP=$(elapsed "$t" "$(now)")

ART=${UMDEV_E2E_ARTIFACTS:-$BUILD_DIR/e2e/smoke}
mkdir -p "$ART" || { say "FAIL: cannot create $ART"; exit 1; }
rm -f "$ART"/console.log "$ART"/server.log "$ART"/qemu-trace.log "$ART"/result
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-smoke.XXXXXX")
SOCK=$TMP/testdev.sock
SRV_PID=
cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

"$TESTDEV" --socket "$SOCK" --verbose 2>"$ART/server.log" &
SRV_PID=$!
for _ in $(seq 100); do
    [ -S "$SOCK" ] && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
done
if [ ! -S "$SOCK" ]; then
    say "FAIL: umdev-testdev did not create $SOCK"
    cat "$ART/server.log"
    exit 1
fi

# ---- boot ----------------------------------------------------------------------
say "booting the guest (TCG) with vfio-user-pci on $SOCK"
t=$(now)
"$HERE/run-guest.sh" --timeout "${UMDEV_E2E_TIMEOUT:-120}" --socket "$SOCK" \
    --log "$ART/console.log" "$HERE/smoke-guest.sh" \
    -- -trace 'vfio_user_*' -D "$ART/qemu-trace.log" >/dev/null
GUEST_RC=$?
T_BOOT=$(elapsed "$t" "$(now)")
sleep 0.2    # let the server log the detach
kill "$SRV_PID" 2>/dev/null
wait "$SRV_PID" 2>/dev/null
SRV_RC=$?
SRV_PID=

# ---- verdict ---------------------------------------------------------------------
fail=0
C=$ART/console.log
BDF=$(sed -n 's/^E2E-SMOKE-BDF=//p' "$C" | head -n 1)
ID=$(sed -n 's/^E2E-SMOKE-ID=//p' "$C" | head -n 1)
[ -n "$BDF" ] || { say "no E2E-SMOKE-BDF line: the device did not enumerate"; fail=1; }
if ! grep -qi '^E2E-SMOKE-ID=0x7E57DE71$' "$C"; then
    say "ID register: '${ID:-<none>}', expected 0x7E57DE71"
    fail=1
fi
grep -q '^E2E-SMOKE-PASS$' "$C" || { say "the guest checks did not all pass"; fail=1; }
grep '^E2E-SMOKE-FAIL' "$C" | sed 's/^/  guest: /'
[ "$GUEST_RC" -eq 0 ] || { say "run-guest.sh exited $GUEST_RC$([ "$GUEST_RC" -eq 124 ] && echo " (timed out)")"; fail=1; }

# QEMU's complaints about the device (its messages start with "qemu-system").
QEMU_MSGS=$(grep -i 'qemu-system\|vfio' "$C" | grep -v '^E2E-' || true)
# Commands the server answered with an error (logged at debug level).
SRV_ERRS=$(grep -E ' failed: |warning|error|unexpected|refusing|malformed' \
    "$ART/server.log" || true)

# Replies QEMU received with VFIO_USER_ERROR (0x20) set, from its trace.
TRACE_ERRS=$(grep 'vfio_user_recv_hdr' "$ART/qemu-trace.log" 2>/dev/null |
    while read -r line; do
        [[ $line =~ \ flags\ (0x[0-9a-fA-F]+) ]] &&
            (( BASH_REMATCH[1] & 0x20 )) && printf '%s\n' "$line"
    done)

say "QEMU: $(sed -n 's/^qemu=//p' "$CACHE_DIR/stamp"); kernel $(cat "$CACHE_DIR/kver")"
say "device: ${BDF:-<not found>}  ID=${ID:-<none>}"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG)"
if [ -n "$QEMU_MSGS" ]; then
    say "QEMU console messages about vfio:"
    printf '%s\n' "$QEMU_MSGS" | sed 's/^/  /'
fi
if [ -n "$TRACE_ERRS" ]; then
    say "QEMU trace: $(printf '%s\n' "$TRACE_ERRS" | wc -l) error repl(ies) (full trace: $ART/qemu-trace.log):"
    printf '%s\n' "$TRACE_ERRS" | head -n 20 | sed 's/^/  /'
fi
if [ -n "$SRV_ERRS" ]; then
    say "server: $(printf '%s\n' "$SRV_ERRS" | wc -l) error/warning line(s) (full log: $ART/server.log):"
    printf '%s\n' "$SRV_ERRS" | sed 's/^/  /'
fi
[ "$SRV_RC" -eq 0 ] || [ "$SRV_RC" -eq 143 ] ||
    { say "umdev-testdev exited $SRV_RC"; fail=1; }

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "bdf=$BDF"
    echo "id=$ID"
    echo "setup_seconds=$T_SETUP"
    echo "boot_seconds=$T_BOOT"
} >"$ART/result"

if [ "$fail" -ne 0 ]; then
    say "FAIL; last 50 lines of the console ($C):"
    tail -n 50 "$C"
    exit 1
fi
say "PASS"
exit 0
