#!/bin/bash
# tests/e2e/nvme-restart.sh [BUILD_DIR]
#
# Issue 17's proof that `umdevctl restart` replaces an nvme instance's
# worker under a running guest with I/O in flight: a private umdevd
# starts an nvme-4q instance (umdevctl define/start), a TCG guest with 2
# vCPUs runs it with its own nvme driver, and while fio writes and
# verifies (nvme-restart-guest.sh: random 4 KiB O_DIRECT writes at
# iodepth 16 in 2 jobs, every block read back and crc32c-checked every 64
# writes) the host restarts the worker 5 times, GAP seconds apart. Each
# `umdevctl restart` must print a new worker pid, which `umdevctl list`
# then shows, and a blackout; the new worker serves QEMU's connection
# with no error answered and its I/O count grows (umdevctl info). Pass:
# fio exits 0 with no error or verification failure; the guest kernel
# said nothing about the controller (no timeout, abort, reset, I/O
# error) and it is the same controller after; QEMU said nothing about
# vfio; no daemon or worker logged an error; the instance stops and
# umdevd exits 0 leaving RUNDIR empty. Prints the five blackouts.
#
# Environment:
#   UMDEV_E2E_RESTART_MODE  restart (default), or stop-start or kill: a
#                           replacement that breaks the device (the test
#                           must fail; shows that it can)
#   UMDEV_E2E_NVRS_GAP      seconds between restarts (default 6)
#   UMDEV_E2E_NVRS_RUNTIME  fio's runtime in seconds (default 50; must
#                           outlast the restarts)
#   UMDEV_E2E_TIMEOUT       bound of the QEMU run in seconds (default 300)
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment or fio's tree
# cannot be prepared) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/nvme-restart}:
# console.log, umdevd-0.log (umdevd --verbose and its workers), events
# (the restarts and when), umdevctl.out, info.txt, result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/umdevd-lib.sh
. "$HERE/umdevd-lib.sh"
e2e_init nvme_restart "${1:-}"
TYPE=nvme-4q
CPUS=2
JOBS=2
DEPTH=16
BACKLOG=64
REGION=$((32 * 1048576))
RESTARTS=5
GAP=${UMDEV_E2E_NVRS_GAP:-6}
RUNTIME=${UMDEV_E2E_NVRS_RUNTIME:-50}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-300}
restart_init
case $GAP$RUNTIME in
*[!0-9]*) say "FAIL: UMDEV_E2E_NVRS_GAP/RUNTIME must be numbers"; exit 1 ;;
esac

UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
e2e_need "umdevd umdevctl" "$UMDEVD" "$UMDEVCTL"
command -v python3 >/dev/null ||
    skip_or_fail "python3 not found (scripts/deps.sh installs it)"

e2e_guest_env
e2e_fio_tree || skip_or_fail "tests/e2e/fio-tree.sh could not prepare fio"
e2e_artifacts nvme-restart console.log 'umdevd-*.log' info.txt events \
    umdevctl.out umdevctl.err result
umdevd_env nvrs
GUEST_PID=''
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$GUEST_PID" TERM
    umdevd_cleanup
}
trap cleanup EXIT

# ---- the daemon and the instance ---------------------------------------------
mkdir -p "$TMP/nvme"
export UMDEV_NVME_DIR=$TMP/nvme
# shellcheck disable=SC2119  # no options beyond DAEMON_ARGS
if ! daemon; then
    say "FAIL: umdevd did not answer"
    cat "$LOG"
    exit 1
fi
instance_start nvme "$TYPE" "size=$((JOBS * REGION + 1048576))"

# ---- boot, and the worker restarted during fio's run ---------------------------
SLOT=6
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
printf 'BDF=%s\nQUEUES=%s\nJOBS=%s\nDEPTH=%s\nREGION=%s\nBACKLOG=%s\nRUNTIME=%s\n' \
    "$BDF_WANT" 4 "$JOBS" "$DEPTH" "$REGION" "$BACKLOG" "$RUNTIME" \
    >"$TMP/nvme-restart.conf"
QARGS=(-- -smp "$CPUS" "${FIO_QARGS[@]}"
    -device "$(e2e_device_json "$SLOT" "$SOCK")")
say "$FIO_VERSION: $JOBS jobs x iodepth $DEPTH, randwrite 4 KiB + crc32c verify every $BACKLOG, ${RUNTIME}s; $RESTARTS restarts ${GAP}s apart; mode $RESTART_MODE"
say "booting the guest (TCG, $CPUS vCPUs) with vfio-user-pci on $SOCK"
C=$ART/console.log
: >"$C"
t=$(now)
# shellcheck disable=SC2086  # a list of modules
MODULES="nvme $FIO_MODULES" "$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" \
    --log "$C" "$HERE/nvme-restart-guest.sh" "$HERE/guest-lib.sh" \
    "$TMP/nvme-restart.conf:/e2e/nvme-restart.conf" "${QARGS[@]}" \
    >/dev/null 2>"$TMP/run-guest.err" &
GUEST_PID=$!

guest_restarts NVRS fio io_commands E2E-NVRS-FIO-DONE

timeout 10 "$UMDEVCTL" info "$UUID" >"$ART/info.txt" 2>&1 ||
    say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"
instance_stop
daemon_stop

# ---- verdict ----------------------------------------------------------------------
e2e_guest_verdict NVRS
qemu_silent
daemon_log_errors

T_WALL=$(elapsed "$T_START" "$(now)")
e2e_versions
say "type $TYPE; device ${BDF:-<not found>}; $NRESTART worker replacements ($RESTART_MODE)"
sed -n 's/^E2E-NVRS-IOS /  guest: I\/Os /p' "$C"
sed -n 's/^E2E-NVRS-FIO \(.*\(IOPS=\|err=\).*\)/  fio: \1/p' "$C"
[ -f "$ART/events" ] && sed 's/^/  t+/' "$ART/events"
restart_summary "$RESTARTS"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "mode=$RESTART_MODE"
    echo "type=$TYPE"
    echo "restarts=$NRESTART"
    echo "blackouts_ms=${BLACKOUTS[*]:-}"
    echo "ios=$(sed -n 's/^E2E-NVRS-IOS //p' "$C" | head -n 1)"
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL"
