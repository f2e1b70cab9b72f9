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
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init smoke "${1:-}"

# ---- the test device ---------------------------------------------------------
TESTDEV=$BUILD_DIR/tests/umdev-testdev
e2e_need umdev-testdev "$TESTDEV"

# ---- the guest environment ---------------------------------------------------
e2e_guest_env
e2e_artifacts smoke console.log server.log qemu-trace.log result
e2e_start_testdev smoke

# ---- boot ----------------------------------------------------------------------
say "booting the guest (TCG) with vfio-user-pci on $SOCK"
t=$(now)
"$HERE/run-guest.sh" --timeout "${UMDEV_E2E_TIMEOUT:-120}" --socket "$SOCK" \
    --log "$ART/console.log" "$HERE/smoke-guest.sh" \
    -- -trace 'vfio_user_*' -D "$ART/qemu-trace.log" >/dev/null
GUEST_RC=$?
T_BOOT=$(elapsed "$t" "$(now)")
sleep 0.2    # let the server log the detach
stop_server "$SRV_PID" 100 ||
    say "umdev-testdev did not exit within 10 s of SIGTERM"
SRV_PID=

# ---- verdict ---------------------------------------------------------------------
fail=0
C=$ART/console.log
e2e_guest_verdict SMOKE
ID=$(sed -n 's/^E2E-SMOKE-ID=//p' "$C" | head -n 1)
if ! grep -qi '^E2E-SMOKE-ID=0x7E57DE71$' "$C"; then
    say "ID register: '${ID:-<none>}', expected 0x7E57DE71"
    fail=1
fi

e2e_versions
say "device: ${BDF:-<not found>}  ID=${ID:-<none>}"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG)"
e2e_qemu_messages
# Shown, not failed on: this test is about enumeration.
e2e_trace_errors || true
e2e_server_errors ' failed: |warning|error|unexpected|refusing|malformed' ||
    true
[ "$SRV_RC" -eq 0 ] || [ "$SRV_RC" -eq 143 ] ||
    { say "umdev-testdev exited $SRV_RC"; fail=1; }

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "bdf=$BDF"
    echo "id=$ID"
    echo "setup_seconds=$T_SETUP"
    echo "boot_seconds=$T_BOOT"
} >"$ART/result"

e2e_finish "FAIL"
