#!/bin/bash
# tests/e2e/serial-upgrade.sh [BUILD_DIR]
#
# Issue 17's proof that umdevd can be replaced under a running guest: a
# private umdevd starts a serial-2port instance (umdevctl define/start), a
# TCG guest drives it with its 8250_pci driver, and while both ports move
# LEN bytes each way (interrupt-driven, seeded, byte-exact; serial-host.py
# on the host ends, serial-tool in the guest, both ports at once) the host
# replaces the daemon three times:
#   1. `umdevd --upgrade` (same options) while the guest sends;
#   2. SIGUSR2 to umdevd, which exits, then a new umdevd, while it receives;
#   3. SIGKILL to umdevd and at once a new umdevd, while it still
#      receives (the old one's cleanup process reports the worker left
#      running, and leaves the new one's sockets alone).
# After each, `umdevctl list` shows the instance running with the worker
# pid it started with, the new daemon logged adopting it, and the host
# ends' client (serial-host.py) is still connected and mid-transfer.
# Pass: every byte exact both ways, the guest's driver counts exactly the
# bytes moved and no error (fe, pe, brk, oe, bo), the kernel said nothing
# about the card or its ports meanwhile and it is the same device after
# (serial-upgrade-guest.sh); QEMU said nothing about vfio or vfio-user (it
# never lost the device); no daemon logged an error; the instance stops
# with `umdevctl stop` once QEMU is gone and the last umdevd exits 0 on
# SIGTERM leaving RUNDIR empty. After each replacement the instance's
# counters (umdevctl info, from the worker) show the same VMM pid, its one
# attach, no error answered, and register accesses that went on.
# The guest powers off before the stop, as the guide says to: QEMU
# 11.1.3's vfio-user-pci never gives the device request IRQ an eventfd
# (its SET_IRQS cover INTx and ERR only; behind a hot-pluggable
# pcie-root-port too), so a stop under a running guest is never seen by
# the guest: the worker leaves when the 5 s grace runs out, and QEMU,
# losing the device in the middle of I/O, aborts (the restart mode shows
# it). That an adopted worker raises REQ, and that a VMM letting go ends
# the stop early, tests/daemon/test_upgrade.py checks with a stand-in.
#
# Environment:
#   UMDEV_E2E_SERUP_SEED     base seed (default: random; printed)
#   UMDEV_E2E_SERUP_LEN      bytes per direction and port (default 262144)
#   UMDEV_E2E_SERUP_LOOP_LEN loopback bytes per port (default 1024)
#   UMDEV_E2E_SERUP_MODE     upgrade (default) or restart: replace the
#                            daemon with SIGTERM and a plain start each time
#                            instead (which stops the instance: the test
#                            must fail; shows that it can)
#   UMDEV_E2E_TIMEOUT        bound of the QEMU run in seconds (default 300;
#                            a pass takes about 60 s on an idle 2-CPU host)
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared or python3 is missing) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/serial-upgrade}:
# console.log (the guest's console and QEMU's messages), umdevd-N.log
# (each daemon, --verbose; the worker logs to umdevd-0.log, its first
# daemon's stderr), host/ (serial-host.py's files), events (what the host
# did and when), info.txt, result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/umdevd-lib.sh
. "$HERE/umdevd-lib.sh"
# shellcheck source=tests/e2e/serial-lib.sh
. "$HERE/serial-lib.sh"
e2e_init serial_upgrade "${1:-}"
LEN=${UMDEV_E2E_SERUP_LEN:-262144}
LOOP_LEN=${UMDEV_E2E_SERUP_LOOP_LEN:-1024}
SEED=${UMDEV_E2E_SERUP_SEED:-$(((RANDOM << 17 ^ RANDOM << 2 ^ RANDOM) & 0xffffffff))}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-300}
MODE=${UMDEV_E2E_SERUP_MODE:-upgrade}

case $MODE in
upgrade | restart) ;;
*) say "FAIL: UMDEV_E2E_SERUP_MODE must be upgrade or restart, not '$MODE'"; exit 1 ;;
esac
case $LEN$LOOP_LEN in
*[!0-9]*) say "FAIL: UMDEV_E2E_SERUP_LEN/LOOP_LEN must be numbers"; exit 1 ;;
esac
if [ "$LEN" -le 0 ] || [ "$LOOP_LEN" -le 0 ]; then
    say "FAIL: UMDEV_E2E_SERUP_LEN/LOOP_LEN must be positive"
    exit 1
fi

say "seed $SEED, $LEN bytes per direction and port, $LOOP_LEN looped; mode $MODE"
serial_start serial-upgrade serup

# check_adopted WHAT: after a replacement, the new daemon runs the
# instance with the same worker, which it logged adopting, and the host
# ends' client is still there.
check_adopted() {
    local pid

    pid=$(worker_pid)
    if [ "$pid" != "$WPID" ]; then
        say "after $1: umdevctl list shows the instance ${pid:+running with worker pid $pid}${pid:-not running}, expected worker pid $WPID"
        "$UMDEVCTL" list -u "$UUID" 2>&1 | sed 's/^/  /'
        fail=1
        return 1
    fi
    if ! grep -q "$UUID: adopted running worker (pid $WPID," "$LOG"; then
        say "after $1: $LOG does not say the worker was adopted"
        fail=1
    fi
    # The same VMM connection (QEMU's, its one attach), no error answered,
    # and the guest's register accesses went on through the replacement.
    read -r cpid acc att errs <<<"$(dev_state)"
    if [ "$cpid" != "$QEMU_PID" ] || [ "$att" != 1 ] || [ "$errs" != 0 ] ||
        ! [ "${acc:-0}" -gt "$ACCESSES" ]; then
        say "after $1: client pid ${cpid:-?} (before: $QEMU_PID), attaches ${att:-?} (1), errors ${errs:-?} (0), accesses ${acc:-?} (before: $ACCESSES, must grow)"
        fail=1
    fi
    kill -0 "$HOST_PID" 2>/dev/null ||
        { say "after $1: serial-host.py has ended: $(phases)"; fail=1; }
    event "$1: done; instance running, worker pid $pid; VMM pid $cpid, accesses $ACCESSES -> $acc; $(phases)"
}

# One replacement of the daemon; status 1 if it failed outright.
# ACCESSES: the register accesses the worker had served just before.
replace() {
    local how=$1 old=$SRV_PID oldlog=$LOG cpid att errs

    read -r cpid ACCESSES att errs <<<"$(dev_state)"
    if [ -z "${QEMU_PID:-}" ]; then
        QEMU_PID=$cpid
        if [ "$att" != 1 ] || [ "$errs" != 0 ] || [ "$cpid" = none ]; then
            say "before $how: client pid $cpid, attaches $att, errors $errs"
            fail=1
        fi
    fi

    if [ "$MODE" = restart ]; then
        # The failing variant: an ordinary restart.
        event "$how: (mode restart) SIGTERM to umdevd pid $old, then a new umdevd"
        stop_server "$old" 150
        event "$how: umdevd pid $old exited $SRV_RC"
        daemon || { say "the new umdevd did not answer"; fail=1; return 1; }
        return 0
    fi
    case $how in
    upgrade)
        event "upgrade: umdevd --upgrade (umdevd pid $old running)"
        daemon --upgrade || { say "umdevd --upgrade did not answer"; fail=1; return 1; }
        wait_exit "$old" 50
        [ "$EXIT_RC" -eq 0 ] ||
            { say "the old umdevd (pid $old) exited $EXIT_RC after --upgrade, expected 0"; fail=1; }
        grep -q "upgrade: umdevd (pid $old) asked to hand over" "$LOG" ||
            { say "umdevd --upgrade did not log asking pid $old to hand over"; fail=1; }
        ;;
    sigusr2)
        event "sigusr2: SIGUSR2 to umdevd pid $old"
        kill -USR2 "$old"
        wait_exit "$old" 150
        [ "$EXIT_RC" -eq 0 ] ||
            { say "umdevd (pid $old) exited $EXIT_RC after SIGUSR2, expected 0"; fail=1; }
        grep -q "upgrade: leaving the instances running" "$oldlog" ||
            { say "umdevd (pid $old) did not log leaving the instances running"; fail=1; }
        kill -0 "$WPID" 2>/dev/null ||
            { say "the worker (pid $WPID) ended with umdevd"; fail=1; return 1; }
        event "sigusr2: umdevd pid $old exited $EXIT_RC; starting a new umdevd"
        daemon || { say "the new umdevd did not answer"; fail=1; return 1; }
        ;;
    sigkill)
        event "sigkill: SIGKILL to umdevd pid $old, and at once a new umdevd"
        kill -KILL "$old"
        wait "$old" 2>/dev/null
        # Started at once, as a service manager restarting it would: the
        # new one replaces the dead control socket, and the old one's
        # cleanup process, racing it, removes only what is still the
        # old one's.
        daemon || { say "the new umdevd did not answer"; fail=1; return 1; }
        kill -0 "$WPID" 2>/dev/null ||
            { say "the worker (pid $WPID) ended with umdevd"; fail=1; return 1; }
        if ! wait_until "$GUEST_PID" 150 grep -q \
            "umdevd (pid $old) ended leaving 1 instances running" "$oldlog"; then
            say "the killed umdevd's cleanup process did not report the worker left running"
            fail=1
        fi
        event "sigkill: the new umdevd answers; the old one's cleanup reported"
        # The cleanup left the new daemon's sockets alone.
        "$UMDEVCTL" version >/dev/null 2>&1 ||
            { say "the new umdevd's control socket is gone after the old one's cleanup"; fail=1; }
        are_sockets "$SOCK" "$PORT0" "$PORT1" ||
            { say "the instance's socket or host ends are gone after the old umdevd's cleanup"; fail=1; }
        ;;
    esac
}

if wait_for "the guest to start its transfers (E2E-SERUP-GO)" 1200 \
    guest_said E2E-SERUP-GO; then
    T_GO=$(now)
    : >"$ART/events"
    event "the guest sends (E2E-SERUP-GO)"
    # 1. While the guest sends: its first bytes are on their way.
    sleep 1
    replace upgrade && check_adopted "umdevd --upgrade"
    during "umdevd --upgrade" E2E-SERUP-G2H-DONE
    # 2. and 3. While the guest receives.
    if wait_for "the host -> guest transfer (E2E-SERUP-H2G-GO)" 1200 \
        guest_said E2E-SERUP-H2G-GO; then
        event "the guest receives (E2E-SERUP-H2G-GO)"
        sleep 1
        replace sigusr2 && check_adopted "SIGUSR2 and a new umdevd"
        sleep 1
        replace sigkill && check_adopted "SIGKILL and a new umdevd"
        during "the third replacement" E2E-SERUP-H2G-DONE
    fi
fi

# The instance, adopted twice over, stops as any other; then the daemon.
serial_finish
say "seed $SEED; $LEN bytes each way per port at once, $LOOP_LEN looped; $((NDAEMON)) umdevd in turn, one worker (pid $WPID)"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "mode=$MODE"
    echo "seed=$SEED"
    echo "len=$LEN"
    echo "worker_pid=$WPID"
    echo "daemons=$NDAEMON"
    serial_result
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL (seed $SEED: UMDEV_E2E_SERUP_SEED=$SEED reproduces it)"
