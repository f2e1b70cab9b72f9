#!/bin/bash
# tests/e2e/serial-restart.sh [BUILD_DIR]
#
# Issue 17's proof that `umdevctl restart` replaces a serial instance's
# worker under a running guest in the middle of a transfer: a private
# umdevd starts a serial-2port instance (umdevctl define/start), a TCG
# guest drives it with its 8250_pci driver, and while both ports move LEN
# bytes each way (1 MiB each way in all by default; interrupt-driven,
# seeded, byte-exact; serial-host.py on the host ends, serial-tool in the
# guest: serial-lib.sh, serial-upgrade-guest.sh) the host restarts the
# worker five times: twice while the guest sends, twice while port 0
# receives, once while port 1 receives. Each `umdevctl restart` must
# print a new worker pid, which `umdevctl list` then shows, and a
# blackout; the new worker serves QEMU's connection with no error
# answered and the guest's register accesses go on; serial-host.py, the
# host ends' client, stays connected throughout.
# Pass: every byte exact both ways, the guest's driver counts exactly the
# bytes moved and no error (fe, pe, brk, oe, bo: overruns stay 0), the
# kernel said nothing about the card or its ports and it is the same
# device after; QEMU said nothing about vfio; no daemon or worker logged
# an error; the instance stops and umdevd exits 0 leaving RUNDIR empty.
# Prints the five blackouts.
#
# Environment:
#   UMDEV_E2E_RESTART_MODE  restart (default), or stop-start or kill: a
#                           replacement that breaks the device (the test
#                           must fail; shows that it can)
#   UMDEV_E2E_SERRS_SEED    base seed (default: random; printed)
#   UMDEV_E2E_SERRS_LEN     bytes per direction and port (default 524288)
#   UMDEV_E2E_SERRS_GAP     seconds between the restarts of one phase
#                           (default 4)
#   UMDEV_E2E_TIMEOUT       bound of the QEMU run in seconds (default 400;
#                           a pass takes about 150 s on an idle 2-CPU host)
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared or python3 is missing) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/serial-restart}:
# console.log, umdevd-0.log (umdevd --verbose and its workers), host/
# (serial-host.py's files), events (the restarts and when), info.txt,
# result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/umdevd-lib.sh
. "$HERE/umdevd-lib.sh"
# shellcheck source=tests/e2e/serial-lib.sh
. "$HERE/serial-lib.sh"
e2e_init serial_restart "${1:-}"
LEN=${UMDEV_E2E_SERRS_LEN:-524288}
LOOP_LEN=1024
GAP=${UMDEV_E2E_SERRS_GAP:-4}
SEED=${UMDEV_E2E_SERRS_SEED:-$(((RANDOM << 17 ^ RANDOM << 2 ^ RANDOM) & 0xffffffff))}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-400}
RESTARTS=5
restart_init
case $LEN$GAP in
*[!0-9]*) say "FAIL: UMDEV_E2E_SERRS_LEN/GAP must be numbers"; exit 1 ;;
esac
[ "$LEN" -gt 0 ] || { say "FAIL: UMDEV_E2E_SERRS_LEN must be positive"; exit 1; }

say "seed $SEED, $LEN bytes per direction and port, $LOOP_LEN looped; $RESTARTS restarts; mode $RESTART_MODE"
serial_start serial-restart serrs

# restart WHAT: restart the worker (umdevd-lib.sh's restart_worker); then
# serial-host.py must still be there and the guest's register accesses
# must go on at the new worker.
restart() {
    local a0 a1

    restart_worker || return
    kill -0 "$HOST_PID" 2>/dev/null ||
        { say "after restart $NRESTART ($1): serial-host.py has ended: $(phases)"; fail=1; }
    read -r _ a0 _ _ <<<"$(dev_state)"
    sleep 1
    read -r _ a1 _ _ <<<"$(dev_state)"
    if ! [ "${a1:-0}" -gt "${a0:-0}" ] 2>/dev/null; then
        say "after restart $NRESTART ($1): no register accesses at the new worker in 1 s (${a0:-none} -> ${a1:-none})"
        fail=1
    fi
    event "restart $NRESTART ($1): register accesses ${a0:-?} -> ${a1:-?} in 1 s; $(phases)"
}

if wait_for "the guest to start its transfers (E2E-SERUP-GO)" 1200 \
    guest_said E2E-SERUP-GO; then
    T_GO=$(now)
    : >"$ART/events"
    event "the guest sends (E2E-SERUP-GO)"
    # 1. and 2. While the guest sends, on both ports.
    sleep 2
    restart "guest sending"
    sleep "$GAP"
    restart "guest sending"
    during "the second restart" E2E-SERUP-G2H-DONE
    # 3. and 4. While port 0 receives; 5. while port 1 does.
    if wait_for "the host -> guest transfer (E2E-SERUP-H2G-GO)" 1200 \
        guest_said E2E-SERUP-H2G-GO; then
        event "the guest receives on port 0 (E2E-SERUP-H2G-GO)"
        sleep 2
        restart "port 0 receiving"
        sleep "$GAP"
        restart "port 0 receiving"
        during "the fourth restart" E2E-SERUP-H2G-PORT0-DONE
        if wait_for "port 1's transfer (E2E-SERUP-H2G-PORT0-DONE)" 1800 \
            guest_said E2E-SERUP-H2G-PORT0-DONE; then
            event "the guest receives on port 1 (E2E-SERUP-H2G-PORT0-DONE)"
            sleep 2
            restart "port 1 receiving"
            during "the fifth restart" E2E-SERUP-H2G-DONE
        fi
    fi
fi

serial_finish
restart_summary "$RESTARTS"
say "seed $SEED; $LEN bytes each way per port at once, $LOOP_LEN looped; $NRESTART worker replacements ($RESTART_MODE)"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "mode=$RESTART_MODE"
    echo "seed=$SEED"
    echo "len=$LEN"
    echo "restarts=$NRESTART"
    echo "blackouts_ms=${BLACKOUTS[*]:-}"
    serial_result
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL (seed $SEED: UMDEV_E2E_SERRS_SEED=$SEED reproduces it)"
