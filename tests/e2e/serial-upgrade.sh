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

UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
TOOL=$BUILD_DIR/tests/e2e/serial-tool
e2e_need "umdevd umdevctl serial-tool" "$UMDEVD" "$UMDEVCTL" "$TOOL"
e2e_static "$TOOL"
command -v python3 >/dev/null ||
    skip_or_fail "python3 not found (scripts/deps.sh installs it)"

e2e_guest_env
e2e_artifacts serial-upgrade console.log 'umdevd-*.log' info.txt events \
    umdevctl.out umdevctl.err result host
rm -f "$ART"/umdevd-*.log
mkdir -p "$ART/host"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-serup.XXXXXX")
CTL=$TMP/ctl.sock
SRV_PID='' HOST_PID='' GUEST_PID='' UUID='' WPID='' NDAEMON=0
export UMDEV_RUNDIR=$TMP/run UMDEV_STATEDIR=$TMP/state \
    UMDEV_CONTROL=$TMP/run/control
mkdir -p "$UMDEV_RUNDIR" "$UMDEV_STATEDIR"
# Every daemon runs with these (an upgrade keeps the options).
DAEMON_ARGS=(--verbose)

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$GUEST_PID" TERM
    stop "$HOST_PID" KILL
    [ -n "$UUID" ] && [ -n "$SRV_PID" ] &&
        timeout 10 "$UMDEVCTL" stop "$UUID" >/dev/null 2>&1
    stop "$SRV_PID"
    # A worker left behind by a failed run (no daemon to stop it): the one
    # process this test started through umdevd, by its pid.
    if [ -n "$WPID" ] && kill -0 "$WPID" 2>/dev/null &&
        [ "$(cat "/proc/$WPID/comm" 2>/dev/null)" = umdev-worker ]; then
        kill -KILL "$WPID"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

event() {
    printf '%s %s\n' "$(elapsed "$T_GO" "$(now)")" "$*" >>"$ART/events"
    say "t+$(elapsed "$T_GO" "$(now)")s: $*"
}

# daemon [ARGS...]: start umdevd N (its log umdevd-N.log) and wait until
# it answers; SRV_PID is it. Status 1 if it does not within 15 s.
daemon() {
    local log=$ART/umdevd-$NDAEMON.log

    "$UMDEVD" "${DAEMON_ARGS[@]}" "$@" >>"$log" 2>&1 &
    SRV_PID=$!
    LOG=$log
    NDAEMON=$((NDAEMON + 1))
    wait_until "$SRV_PID" 300 "$UMDEVCTL" version >/dev/null 2>&1
}

# worker_pid: the pid `umdevctl list` shows for the instance if it is
# running (nothing otherwise).
worker_pid() {
    timeout 10 "$UMDEVCTL" --json list -u "$UUID" 2>>"$ART/umdevctl.err" |
        python3 -c 'import json, sys
for i in json.load(sys.stdin)["instances"]:
    if i["state"] == "running":
        print(i["pid"])'
}

# dev_state: "CLIENT_PID ACCESSES ATTACHES ERRORS" of the instance, from
# its worker through the daemon (umdevctl info): the VMM connected to it,
# the register accesses it served, how many times a VMM attached, and
# the messages it answered with an error.
dev_state() {
    timeout 10 "$UMDEVCTL" --json info "$UUID" 2>>"$ART/umdevctl.err" |
        python3 -c 'import json, sys
d = json.load(sys.stdin)["device"]
c = d["counters"]
print(d.get("client_pid", "none"), c["region_reads"] + c["region_writes"],
      c["attaches"], c["errors"])'
}

# port_phase I: what serial-host.py's port I waits for now.
port_phase() {
    sed -n 's/^waiting_for=//p' "$ART/host/port$1.host" 2>/dev/null
}
phases() { echo "port0: $(port_phase 0 || true); port1: $(port_phase 1 || true)"; }

fail=0
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

# ---- the daemon and the instance ---------------------------------------------
if ! daemon; then
    say "FAIL: umdevd did not answer"
    cat "$LOG"
    exit 1
fi
if ! UUID=$(timeout 10 "$UMDEVCTL" define -p serial -t serial-2port \
    2>"$ART/umdevctl.err") ||
    ! timeout 20 "$UMDEVCTL" start "$UUID" >"$ART/umdevctl.out" \
        2>>"$ART/umdevctl.err"; then
    say "FAIL: umdevctl define/start of a serial-2port instance failed"
    cat "$ART/umdevctl.err" "$LOG"
    UUID=
    exit 1
fi
WPID=$(worker_pid)
say "umdevd instance $UUID, worker pid ${WPID:-?}"
[ -n "$WPID" ] || { say "FAIL: the instance is not running"; exit 1; }
SOCK=$UMDEV_RUNDIR/$UUID.sock
PORT0=$UMDEV_RUNDIR/$UUID.port0
PORT1=$UMDEV_RUNDIR/$UUID.port1

python3 "$HERE/serial-host.py" --seed "$SEED" --len "$LEN" --ctl "$CTL" \
    --out "$ART/host" --timeout "$((QEMU_TIMEOUT + 30))" "$PORT0" "$PORT1" \
    2>"$ART/host/stderr" &
HOST_PID=$!
if ! wait_until "$HOST_PID" 100 test -e "$ART/host/connected"; then
    say "FAIL: serial-host.py did not connect to the port sockets"
    cat "$ART/host/stderr" "$ART/host/"*.host 2>/dev/null
    exit 1
fi

# ---- boot, and the daemon replaced during the transfers ------------------------
SLOT=5
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
printf 'BDF=%s\nSEED=%s\nLEN=%s\nLOOP_LEN=%s\n' "$BDF_WANT" "$SEED" "$LEN" \
    "$LOOP_LEN" >"$TMP/serial-upgrade.conf"
QARGS=(-- -monitor none -serial mon:stdio
    -chardev "socket,id=ctl,path=${CTL//,/,,}" -serial chardev:ctl
    -device "$(e2e_device_json "$SLOT" "$SOCK")")
# Receiving, the guest's one CPU sits in the 8250 interrupt handler for
# most of the transfer: the card hands the driver the next byte as soon as
# it took the last (no baud-rate pacing), so the handler's loop runs to
# its pass limit, and under TCG that is seconds per interrupt (serial-tool
# counts 1 to 6 for 256 KiB). Nothing else runs meanwhile, and the guest's
# soft-lockup (20 s) and RCU stall (21 s) detectors would report the
# test's own load; they still report from 120 s on. A stall the daemon's
# replacement caused would not hide behind this: QEMU waits at most 5 s
# for an answer from the device and says so.
export UMDEV_E2E_APPEND="${UMDEV_E2E_APPEND:-} watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=120"
say "seed $SEED, $LEN bytes per direction and port, $LOOP_LEN looped; mode $MODE"
say "booting the guest (TCG) with vfio-user-pci on $SOCK"
t=$(now)
"$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" --log "$ART/console.log" \
    "$HERE/serial-upgrade-guest.sh" "$HERE/guest-lib.sh" "$TOOL" \
    "$TMP/serial-upgrade.conf:/e2e/serial-upgrade.conf" "${QARGS[@]}" \
    >/dev/null 2>"$TMP/run-guest.err" &
GUEST_PID=$!

C=$ART/console.log
# guest_said MARKER: the console has the line.
guest_said() { grep -q "^$1\$" "$C" 2>/dev/null; }
# wait_for WHAT TENTHS COMMAND...: until COMMAND succeeds while the guest
# runs; a failure (fail=1, WHAT said) otherwise.
wait_for() {
    local what=$1 tenths=$2

    shift 2
    for _ in $(seq "$tenths"); do
        "$@" && return 0
        kill -0 "$GUEST_PID" 2>/dev/null || break
        sleep 0.1
    done
    "$@" && return 0
    say "gave up waiting for $what"
    fail=1
    return 1
}
# during WHAT MARKER: WHAT ended before the guest printed MARKER (the end
# of the phase it had to fall in); fail=1 otherwise.
during() {
    if guest_said "$2"; then
        say "$1 ended after the guest printed $2: not during that phase (LEN too small for this host?)"
        fail=1
    fi
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

wait "$GUEST_PID"
GUEST_RC=$?
GUEST_PID=
T_BOOT=$(elapsed "$t" "$(now)")
[ -z "${T_GO:-}" ] || event "QEMU exited (run-guest.sh exited $GUEST_RC)"
cat "$TMP/run-guest.err"

wait_exit "$HOST_PID" 50
HOST_RC=$EXIT_RC
HOST_PID=
sleep 0.2
# The instance, adopted twice over, stops as any other; then the daemon.
timeout 10 "$UMDEVCTL" info "$UUID" >"$ART/info.txt" 2>&1 ||
    say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"
if ! timeout 20 "$UMDEVCTL" stop "$UUID" >>"$ART/umdevctl.out" \
    2>>"$ART/umdevctl.err"; then
    say "umdevctl stop $UUID failed: $(tail -n 1 "$ART/umdevctl.err")"
    fail=1
fi
state=$(timeout 10 "$UMDEVCTL" --json list -d -u "$UUID" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["instances"][0]["state"])' 2>/dev/null)
[ "$state" = stopped ] || { say "after umdevctl stop the instance is '${state:-?}'"; fail=1; }
if ! wait_until "$SRV_PID" 50 sh -c "! kill -0 $WPID 2>/dev/null"; then
    say "the worker (pid $WPID) is still there after umdevctl stop"
    fail=1
fi
UUID=
stop_server "$SRV_PID" 100 || say "umdevd did not exit within 10 s of SIGTERM"
SRV_PID=
[ "$SRV_RC" -eq 0 ] || { say "the last umdevd exited $SRV_RC (expected 0 after SIGTERM)"; fail=1; }
left=$(ls -A "$UMDEV_RUNDIR")
[ -z "$left" ] || { say "RUNDIR holds after the last umdevd: $left"; fail=1; }

# ---- verdict ----------------------------------------------------------------------
H=$ART/host
e2e_guest_verdict SERUP serial-tool
if [ "$HOST_RC" -ne 0 ]; then
    say "serial-host.py $([ "$HOST_RC" -eq 124 ] && echo "did not finish" || echo "exited $HOST_RC"):"
    sed 's/^/  host: /' "$H/stderr"
    fail=1
fi
declare -A RES=()
e2e_serial_port_verdict SERUP
for i in 0 1; do
    RES[counters$i]=$(sed -n "s/^E2E-SERUP-PORT$i-COUNTERS //p" "$C" | head -n 1)
done

# QEMU never lost the device: it says nothing about vfio or vfio-user
# (a lost connection, a failed message, an unplug) on its console.
qmsgs=$(grep -iE 'qemu-system|vfio' "$C" | grep -v '^E2E-' || true)
if [ -n "$qmsgs" ]; then
    say "QEMU's messages about the device:"
    printf '%s\n' "$qmsgs" | sed 's/^/  /'
    fail=1
fi
# No daemon (and not the worker, which logs to umdevd-0.log) reported an
# error or warning.
for f in "$ART"/umdevd-*.log; do
    errs=$(grep -E ' failed: |warning|error|unexpected|refusing|malformed|refused|not adopted|ignored' "$f" || true)
    if [ -n "$errs" ]; then
        say "${f##*/}: error/warning lines:"
        printf '%s\n' "$errs" | head -n 20 | sed 's/^/  /'
        fail=1
    fi
done

T_WALL=$(elapsed "$T_START" "$(now)")
e2e_versions
say "seed $SEED; $LEN bytes each way per port at once, $LOOP_LEN looped; $((NDAEMON)) umdevd in turn, one worker (pid $WPID)"
for i in 0 1; do
    say "port$i: guest->host $(field "${RES[send$i]}" bytes_per_s) B/s ${RES[g2h$i]}," \
        "host->guest $(field "${RES[recv$i]}" bytes_per_s) B/s ${RES[h2g$i]};" \
        "driver: ${RES[counters$i]}"
done
[ -f "$ART/events" ] && sed 's/^/  t+/' "$ART/events"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "mode=$MODE"
    echo "seed=$SEED"
    echo "len=$LEN"
    echo "worker_pid=$WPID"
    echo "daemons=$NDAEMON"
    for i in 0 1; do
        echo "port${i}_send=${RES[send$i]}"
        echo "port${i}_recv=${RES[recv$i]}"
        echo "port${i}_counters=${RES[counters$i]}"
    done
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL (seed $SEED: UMDEV_E2E_SERUP_SEED=$SEED reproduces it)"
