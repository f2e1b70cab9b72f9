#!/bin/bash
# tests/e2e/accel-restart.sh [BUILD_DIR]
#
# Issue 17's proof that `umdevctl restart` replaces an accel instance's
# worker under a running guest with descriptors in flight: a private
# umdevd starts an accel-4wq instance (umdevctl define/start), a TCG
# guest binds it to uio_pci_generic (its INTx reaches guest userspace)
# and accel-tool keeps 16 descriptors in flight on each of the 4 queues
# for SECONDS, interrupt-driven, every one verified
# (accel-restart-guest.sh), while the host restarts the worker 5 times,
# GAP seconds apart. Each `umdevctl restart` must print a new worker pid,
# which `umdevctl list` then shows, and a blackout; the new worker serves
# QEMU's connection with no error answered and the device's completion
# count grows (umdevctl info). Pass: every descriptor verified, none lost
# or done twice, none left without its interrupt, submitted == completed
# == verified per queue and the device's COMPLETED registers agree; the
# guest kernel said nothing about the device or its interrupt and it is
# the same device after; QEMU said nothing about vfio; no daemon or
# worker logged an error; the instance stops and umdevd exits 0 leaving
# RUNDIR empty. Prints the five blackouts.
#
# Environment:
#   UMDEV_E2E_RESTART_MODE  restart (default), or stop-start or kill: a
#                           replacement that breaks the device (the test
#                           must fail; shows that it can)
#   UMDEV_E2E_ACCRS_GAP     seconds between restarts (default 5)
#   UMDEV_E2E_ACCRS_SECONDS accel-tool's run in seconds (default 40; must
#                           outlast the restarts)
#   UMDEV_E2E_ACCRS_SEED    data seed (default: random; printed)
#   UMDEV_E2E_TIMEOUT       bound of the QEMU run in seconds (default 300)
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/accel-restart}:
# console.log, umdevd-0.log (umdevd --verbose and its workers), events
# (the restarts and when), umdevctl.out, info.txt, result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/umdevd-lib.sh
. "$HERE/umdevd-lib.sh"
e2e_init accel_restart "${1:-}"
TYPE=accel-4wq
QUEUES=4
DEPTH=16
RESTARTS=5
GAP=${UMDEV_E2E_ACCRS_GAP:-5}
SECONDS_RUN=${UMDEV_E2E_ACCRS_SECONDS:-40}
SEED=${UMDEV_E2E_ACCRS_SEED:-$(((RANDOM << 15 ^ RANDOM) % 2147483646 + 1))}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-300}
restart_init
case $GAP$SECONDS_RUN$SEED in
*[!0-9]*) say "FAIL: UMDEV_E2E_ACCRS_GAP/SECONDS/SEED must be numbers"; exit 1 ;;
esac

UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
TOOL=$BUILD_DIR/tests/e2e/accel-tool
e2e_need "umdevd umdevctl accel-tool" "$UMDEVD" "$UMDEVCTL" "$TOOL"
e2e_static "$TOOL"
command -v python3 >/dev/null ||
    skip_or_fail "python3 not found (scripts/deps.sh installs it)"

e2e_guest_env
e2e_artifacts accel-restart console.log 'umdevd-*.log' info.txt events \
    umdevctl.out umdevctl.err result
umdevd_env accrs
GUEST_PID=''
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$GUEST_PID" TERM
    umdevd_cleanup
}
trap cleanup EXIT

# ---- the daemon and the instance ---------------------------------------------
# shellcheck disable=SC2119  # no options beyond DAEMON_ARGS
if ! daemon; then
    say "FAIL: umdevd did not answer"
    cat "$LOG"
    exit 1
fi
instance_start accel "$TYPE"

# ---- boot, and the worker restarted during the run ------------------------------
SLOT=6
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
printf 'BDF=%s\nQUEUES=%s\nDEPTH=%s\nRUN_SECONDS=%s\nSEED=%s\n' \
    "$BDF_WANT" "$QUEUES" "$DEPTH" "$SECONDS_RUN" "$SEED" \
    >"$TMP/accel-restart.conf"
QARGS=(-- -device "$(e2e_device_json "$SLOT" "$SOCK")")
say "seed $SEED; $QUEUES queues x depth $DEPTH for ${SECONDS_RUN}s, by interrupt; $RESTARTS restarts ${GAP}s apart; mode $RESTART_MODE"
say "booting the guest (TCG) with vfio-user-pci on $SOCK"
C=$ART/console.log
: >"$C"
t=$(now)
MODULES="uio_pci_generic" "$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" \
    --log "$C" "$HERE/accel-restart-guest.sh" "$HERE/guest-lib.sh" "$TOOL" \
    "$TMP/accel-restart.conf:/e2e/accel-restart.conf" "${QARGS[@]}" \
    >/dev/null 2>"$TMP/run-guest.err" &
GUEST_PID=$!

guest_restarts ACCRS accel-tool completed E2E-ACCRS-RUN-DONE

timeout 10 "$UMDEVCTL" info "$UUID" >"$ART/info.txt" 2>&1 ||
    say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"
instance_stop
daemon_stop

# ---- verdict ----------------------------------------------------------------------
e2e_guest_verdict ACCRS accel-tool
qemu_silent
daemon_log_errors

T_WALL=$(elapsed "$T_START" "$(now)")
e2e_versions
say "type $TYPE; device ${BDF:-<not found>}; $NRESTART worker replacements ($RESTART_MODE)"
sed -n 's/^E2E-ACCRS-TOOL \(run .*\)/  guest: \1/p; s/^E2E-ACCRS-COUNTS /  guest: /p' "$C"
[ -f "$ART/events" ] && sed 's/^/  t+/' "$ART/events"
restart_summary "$RESTARTS"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "mode=$RESTART_MODE"
    echo "type=$TYPE"
    echo "seed=$SEED"
    echo "restarts=$NRESTART"
    echo "blackouts_ms=${BLACKOUTS[*]:-}"
    echo "counts=$(sed -n 's/^E2E-ACCRS-COUNTS //p' "$C" | head -n 1)"
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL (UMDEV_E2E_ACCRS_SEED=$SEED repeats the data)"
