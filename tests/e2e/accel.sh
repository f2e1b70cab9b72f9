#!/bin/bash
# tests/e2e/accel.sh [BUILD_DIR]
#
# End-to-end test of the accel parent (devices/accel, PCI 1234:11ec) in a
# real guest: start a private umdevd, start a transient accel-2wq instance
# with umdevctl, and boot a TCG guest (see smoke.sh) with QEMU attached to
# the instance's socket. The guest half (accel-guest.sh, with the static
# helper accel-tool) checks the PCI identity and BARs, then drives the
# device from guest userspace through the sysfs resource0/resource2 mmaps
# with buffers translated by /proc/self/pagemap:
#   1. on every queue NOP, MEMMOVE, FILL and CRC32C at sizes 1..4096 and
#      several offsets, each verified (CRC32C against a software CRC32C),
#      and a MEMMOVE from an unmapped address: ADDR_FAULT, nothing written;
#   2. on queue 0 COUNT descriptors each of MEMMOVE, FILL and CRC32C of
#      SIZE bytes, DEPTH in flight, each verified, timed: ops/s.
# The instance's counters (umdevctl info) after the run, the guest's ops/s
# and the wall time are printed.
#
# Environment:
#   UMDEV_E2E_ACCEL_SERVER  umdevd (default) or serve: serve the device with
#                           `umdev-serve accel` instead of umdevd (debugging
#                           the device without the daemon)
#   UMDEV_E2E_ACCEL_TYPE    accel-1wq, accel-2wq (default) or accel-4wq
#   UMDEV_E2E_ACCEL_COUNT   descriptors per timed operation (default 2000)
#   UMDEV_E2E_ACCEL_SIZE    bytes per timed descriptor, 1..4096 (default 4096)
#   UMDEV_E2E_ACCEL_DEPTH   descriptors in flight, 1..32 (default 16)
#   UMDEV_E2E_ACCEL_SEED    data seed (default: random; printed)
#   UMDEV_E2E_TIMEOUT       bound of the QEMU run in seconds (default 300)
#   UMDEV_E2E_TRACE=1       record QEMU's vfio_user_* trace events
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/accel}: console.log,
# server.log (umdevd --verbose, or umdev-serve accel --verbose), info.txt
# (umdevctl info after the run), qemu-trace.log (with UMDEV_E2E_TRACE=1),
# result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init accel "${1:-}"
SERVER=${UMDEV_E2E_ACCEL_SERVER:-umdevd}
TYPE=${UMDEV_E2E_ACCEL_TYPE:-accel-2wq}
COUNT=${UMDEV_E2E_ACCEL_COUNT:-2000}
SIZE=${UMDEV_E2E_ACCEL_SIZE:-4096}
DEPTH=${UMDEV_E2E_ACCEL_DEPTH:-16}
SEED=${UMDEV_E2E_ACCEL_SEED:-$(((RANDOM << 15 ^ RANDOM) % 2147483646 + 1))}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-300}

case $TYPE in
accel-1wq) QUEUES=1 ;;
accel-2wq) QUEUES=2 ;;
accel-4wq) QUEUES=4 ;;
*) say "FAIL: UMDEV_E2E_ACCEL_TYPE must be accel-1wq, accel-2wq or accel-4wq"; exit 1 ;;
esac
case $SERVER in
umdevd | serve) ;;
*) say "FAIL: UMDEV_E2E_ACCEL_SERVER must be umdevd or serve"; exit 1 ;;
esac
case $COUNT$SIZE$DEPTH$SEED in
*[!0-9]*) say "FAIL: UMDEV_E2E_ACCEL_COUNT/SIZE/DEPTH/SEED must be numbers"; exit 1 ;;
esac
if [ "$COUNT" -lt 1 ] || [ "$SIZE" -lt 1 ] || [ "$SIZE" -gt 4096 ] ||
    [ "$DEPTH" -lt 1 ] || [ "$DEPTH" -gt 32 ] || [ "$SEED" -lt 1 ]; then
    say "FAIL: COUNT >= 1, SIZE in 1..4096, DEPTH in 1..32, SEED >= 1"
    exit 1
fi

# ---- programs ---------------------------------------------------------------
UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
SERVE=$BUILD_DIR/devices/umdev-serve
TOOL=$BUILD_DIR/tests/e2e/accel-tool
NEED=("$TOOL")
if [ "$SERVER" = umdevd ]; then NEED+=("$UMDEVD" "$UMDEVCTL"); else NEED+=("$SERVE"); fi
e2e_need "umdevd umdevctl umdev-serve accel-tool" "${NEED[@]}"
e2e_static "$TOOL"

# ---- the guest environment ----------------------------------------------------
e2e_guest_env
e2e_artifacts accel console.log server.log server.out qemu-trace.log info.txt \
    result
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-accel.XXXXXX")
CTL=$TMP/control
SRV_PID='' UUID=''
ctl() { "$UMDEVCTL" --control "$CTL" "$@"; }
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$SRV_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- the device ---------------------------------------------------------------
if [ "$SERVER" = umdevd ]; then
    mkdir -p "$TMP/run" "$TMP/state"
    "$UMDEVD" --rundir "$TMP/run" --statedir "$TMP/state" --control "$CTL" \
        --verbose >"$ART/server.out" 2>"$ART/server.log" &
    SRV_PID=$!
    # Until it answers: its socket exists a moment before it listens.
    wait_until "$SRV_PID" 100 ctl version >/dev/null 2>&1
    if ! ctl types >"$TMP/types" 2>&1; then
        say "FAIL: umdevd did not answer on $CTL"
        cat "$TMP/types" "$ART/server.log"
        exit 1
    fi
    if ! grep -qw "$TYPE" "$TMP/types"; then
        say "FAIL: umdevctl types does not list $TYPE:"
        sed 's/^/  /' "$TMP/types"
        exit 1
    fi
    # "UUID started: PATH"
    if ! out=$(ctl start -p accel -t "$TYPE" 2>"$TMP/start.err"); then
        say "FAIL: umdevctl start -p accel -t $TYPE: $(cat "$TMP/start.err")"
        cat "$ART/server.log"
        exit 1
    fi
    read -r UUID _ SOCK <<<"$(printf '%s\n' "$out" | tail -n 1)"
    say "umdevd instance $UUID ($TYPE) on $SOCK"
else
    SOCK=$TMP/accel.sock
    "$SERVE" accel --socket "$SOCK" --queues "$QUEUES" --verbose \
        >"$ART/server.out" 2>"$ART/server.log" &
    SRV_PID=$!
    wait_for_sockets "$SRV_PID" 100 "$SOCK"
    say "umdev-serve accel --queues $QUEUES on $SOCK"
fi
[ -S "$SOCK" ] || { say "FAIL: no socket at $SOCK"; cat "$ART/server.log"; exit 1; }

# ---- boot -----------------------------------------------------------------------
# A slot of our choosing, so the guest can check the device is exactly there.
SLOT=6
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
printf 'BDF=%s\nQUEUES=%s\nCOUNT=%s\nSIZE=%s\nDEPTH=%s\nSEED=%s\n' \
    "$BDF_WANT" "$QUEUES" "$COUNT" "$SIZE" "$DEPTH" "$SEED" >"$TMP/accel.conf"
# run-guest.sh gives QEMU memfd-backed shared RAM, which vfio-user needs
# to hand guest memory to the device.
QARGS=(-- -device "$(e2e_device_json "$SLOT" "$SOCK")")
e2e_trace_args
say "seed $SEED; $COUNT x $SIZE bytes per timed operation, depth $DEPTH"
say "booting the guest (TCG) with vfio-user-pci on $SOCK"
t=$(now)
"$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" --log "$ART/console.log" \
    "$HERE/accel-guest.sh" "$HERE/guest-lib.sh" "$TOOL" \
    "$TMP/accel.conf:/e2e/accel.conf" "${QARGS[@]}" >/dev/null
GUEST_RC=$?
T_BOOT=$(elapsed "$t" "$(now)")

# ---- the server side after the run -----------------------------------------------
CTL_FAILED=0
if [ "$SERVER" = umdevd ]; then
    ctl info "$UUID" >"$ART/info.txt" 2>&1 ||
        { say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"; CTL_FAILED=1; }
    if ! ctl stop "$UUID" >"$TMP/stop.out" 2>&1; then
        say "umdevctl stop $UUID failed: $(cat "$TMP/stop.out")"
        CTL_FAILED=1
    fi
fi
stop_server "$SRV_PID" 100 ||
    say "$SERVER did not exit within 10 s of SIGTERM"
SRV_PID=

# ---- verdict ----------------------------------------------------------------------
fail=0
C=$ART/console.log
e2e_guest_verdict ACCEL accel-tool
[ "$SRV_RC" -eq 0 ] || { say "$SERVER exited $SRV_RC (expected 0 after SIGTERM)"; fail=1; }
[ "$CTL_FAILED" -eq 0 ] || fail=1

declare -A B=()
for op in memmove fill crc32c; do
    B[$op]=$(sed -n "s/^E2E-ACCEL-TOOL bench op=$op /op=$op /p" "$C" | head -n 1)
done
T_WALL=$(elapsed "$T_START" "$(now)")
e2e_versions
say "server: $SERVER; type $TYPE; device ${BDF:-<not found>}"
sed -n 's/^E2E-ACCEL-TOOL info /  /p' "$C" | head -n 1
for op in memmove fill crc32c; do
    l=${B[$op]}
    say "$(printf '%-8s' "$op") $(field "$l" ops_per_s) ops/s," \
        "$(awk -v r="$(field "$l" bytes_per_s)" 'BEGIN { printf "%.1f MiB/s", r / 1048576 }')," \
        "$(field "$l" count) x $(field "$l" size) B, depth $(field "$l" depth)," \
        "$(field "$l" doorbells) doorbells, $(field "$l" verified) verified"
done
sed -n 's/^E2E-ACCEL-TOOL queue /  queue /p' "$C"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"
e2e_qemu_messages
# "killed by signal" is a worker crash; the daemon's own notice about the
# SIGTERM this script sent is expected and not matched.
e2e_server_errors ' failed: |warning|error|unexpected|refusing|malformed|refused|crash|killed by signal' 20 ||
    fail=1

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "server=$SERVER"
    echo "type=$TYPE"
    echo "bdf=$BDF"
    echo "seed=$SEED"
    for op in memmove fill crc32c; do echo "$op=${B[$op]}"; done
    echo "setup_seconds=$T_SETUP"
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL (UMDEV_E2E_ACCEL_SEED=$SEED repeats the data)"
