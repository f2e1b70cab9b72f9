#!/bin/bash
# tests/e2e/serial.sh [BUILD_DIR]
#
# End-to-end test of the serial card (devices/serial, PCI 4348:3253): a
# private umdevd serves it (`umdevctl define -p serial -t serial-2port`,
# `umdevctl start UUID`; the VMM attaches to RUNDIR/UUID.sock), its two host
# ends (RUNDIR/UUID.port0, .port1) UNIX sockets driven by serial-host.py,
# and a TCG guest (see smoke.sh) boots with it attached. With
# UMDEV_E2E_SERIAL_SERVER=serve the standalone `umdev-serve serial` serves
# it instead. The
# guest half (serial-guest.sh, with the static helper serial-tool) checks:
#   1. the device at its BDF with IDs 4348:3253, bound to 8250_pci
#      ("serial"), with two 16550A ttyS ports on BAR0/BAR1 and its INTx;
#   2. per port, LEN bytes (default 64 KiB) of a seeded pseudo-random
#      pattern guest -> host and another host -> guest, raw mode, each
#      direction taking interrupts; the host compares what arrived with cmp
#      and the guest's sha256 of what it received with its own;
#   3. per port, MCR loopback (TIOCM_LOOP): the modem inputs follow MCR,
#      LOOP_LEN bytes come back unchanged, none reach the host end.
# Both sides compute the patterns (serial-tool in C, serial-host.py in
# Python, from one definition) from a seed this script picks at random and
# prints; the byte counters of the guest's driver must match exactly.
# Throughput of (2) in both directions (guest- and host-measured) and the
# wall time are printed.
#
# Environment:
#   UMDEV_E2E_SERIAL_SEED      base seed (default: random; printed)
#   UMDEV_E2E_SERIAL_LEN       bytes per direction and port (default 65536)
#   UMDEV_E2E_SERIAL_LOOP_LEN  loopback bytes per port (default 4096)
#   UMDEV_E2E_TIMEOUT          bound of the QEMU run in seconds (default 300;
#                              a pass takes about 40 s on an idle 2-CPU host)
#   UMDEV_E2E_SERIAL_SERVER    daemon (default) or serve
#   UMDEV_E2E_TRACE=1          record QEMU's vfio_user_* trace events (large:
#                              several messages per byte; slows the run)
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared or python3 is missing) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/serial}: console.log,
# server.log (umdevd or umdev-serve, --verbose), host/ (serial-host.py's files and
# results), qemu-trace.log (with UMDEV_E2E_TRACE=1), result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init serial "${1:-}"
LEN=${UMDEV_E2E_SERIAL_LEN:-65536}
LOOP_LEN=${UMDEV_E2E_SERIAL_LOOP_LEN:-4096}
SEED=${UMDEV_E2E_SERIAL_SEED:-$(((RANDOM << 17 ^ RANDOM << 2 ^ RANDOM) & 0xffffffff))}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-300}
SERVER=${UMDEV_E2E_SERIAL_SERVER:-daemon}

# bytes/s -> "N.N KiB/s (N B/s)"
rate() {
    awk -v r="$1" 'BEGIN { if (r == "") print "n/a";
        else printf "%.1f KiB/s (%d B/s)", r / 1024, r }'
}

case $SERVER in
daemon | serve) ;;
*) say "FAIL: UMDEV_E2E_SERIAL_SERVER must be daemon or serve, not '$SERVER'"; exit 1 ;;
esac
case $LEN$LOOP_LEN in
*[!0-9]*) say "FAIL: UMDEV_E2E_SERIAL_LEN/LOOP_LEN must be numbers"; exit 1 ;;
esac
if [ "$LEN" -le 0 ] || [ "$LOOP_LEN" -le 0 ]; then
    say "FAIL: UMDEV_E2E_SERIAL_LEN/LOOP_LEN must be positive"
    exit 1
fi

# ---- programs ---------------------------------------------------------------
SERVE=$BUILD_DIR/devices/umdev-serve
UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
TOOL=$BUILD_DIR/tests/e2e/serial-tool
e2e_need "umdev-serve umdevd umdevctl serial-tool" \
    "$SERVE" "$UMDEVD" "$UMDEVCTL" "$TOOL"
e2e_static "$TOOL"
command -v python3 >/dev/null ||
    skip_or_fail "python3 not found (scripts/deps.sh installs it)"

# ---- the guest environment ----------------------------------------------------
e2e_guest_env
e2e_artifacts serial console.log server.log server.out info.txt umdevctl.out \
    umdevctl.err qemu-trace.log result host
mkdir -p "$ART/host"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-serial.XXXXXX")
CTL=$TMP/ctl.sock
SRV_PID='' HOST_PID='' UUID=''
# The private daemon's directories (umdevctl finds it through these).
export UMDEV_RUNDIR=$TMP/run UMDEV_STATEDIR=$TMP/state \
    UMDEV_CONTROL=$TMP/run/control
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$HOST_PID" KILL
    [ -n "$UUID" ] && timeout 10 "$UMDEVCTL" stop "$UUID" >/dev/null 2>&1
    stop "$SRV_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT

if [ "$SERVER" = serve ]; then
    SERVER_NAME=umdev-serve
    SOCK=$TMP/serial.sock
    PORT0=$TMP/port0.sock
    PORT1=$TMP/port1.sock
    "$SERVE" serial --socket "$SOCK" --port0 "$PORT0" --port1 "$PORT1" \
        --verbose >"$ART/server.out" 2>"$ART/server.log" &
    SRV_PID=$!
else
    # The operator's way: a daemon, a persistent definition, a start.
    SERVER_NAME=umdevd
    mkdir -p "$UMDEV_RUNDIR" "$UMDEV_STATEDIR"
    "$UMDEVD" --verbose >"$ART/server.out" 2>"$ART/server.log" &
    SRV_PID=$!
    # Until it answers: its socket exists a moment before it listens.
    wait_until "$SRV_PID" 100 "$UMDEVCTL" version >/dev/null 2>&1
    if ! UUID=$(timeout 10 "$UMDEVCTL" define -p serial -t serial-2port \
        2>"$ART/umdevctl.err") ||
        ! timeout 20 "$UMDEVCTL" start "$UUID" >"$ART/umdevctl.out" \
            2>>"$ART/umdevctl.err"; then
        say "FAIL: umdevctl define/start of a serial-2port instance failed"
        cat "$ART/umdevctl.err" "$ART/server.log"
        UUID=
        exit 1
    fi
    say "umdevd instance $UUID: $(cat "$ART/umdevctl.out")"
    SOCK=$UMDEV_RUNDIR/$UUID.sock
    PORT0=$UMDEV_RUNDIR/$UUID.port0
    PORT1=$UMDEV_RUNDIR/$UUID.port1
fi
if ! wait_for_sockets "$SRV_PID" 100 "$SOCK" "$PORT0" "$PORT1"; then
    say "FAIL: $SERVER_NAME did not create $SOCK and its port sockets"
    cat "$ART/server.out" "$ART/server.log"
    exit 1
fi

# The host ends connect before the guest boots: the ports then see DCD,
# and nothing the guest sends has to wait for a client.
python3 "$HERE/serial-host.py" --seed "$SEED" --len "$LEN" --ctl "$CTL" \
    --out "$ART/host" --timeout "$((QEMU_TIMEOUT + 30))" "$PORT0" "$PORT1" \
    2>"$ART/host/stderr" &
HOST_PID=$!
if ! wait_until "$HOST_PID" 100 test -e "$ART/host/connected"; then
    say "FAIL: serial-host.py did not connect to the port sockets"
    cat "$ART/host/stderr" "$ART/host/"*.host 2>/dev/null
    exit 1
fi

# ---- boot -----------------------------------------------------------------------
# The card goes to a slot of our choosing, so the guest can check that it
# enumerates exactly there (run-guest.sh --socket would take the first free
# slot).
SLOT=5
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
printf 'BDF=%s\nSEED=%s\nLEN=%s\nLOOP_LEN=%s\n' "$BDF_WANT" "$SEED" "$LEN" \
    "$LOOP_LEN" >"$TMP/serial.conf"
# The control channel: a second ISA UART (the guest's ttyS1, irq 3) on
# serial-host.py's socket. Any -serial replaces -nographic's default
# console, so the console is given again, without a monitor.
# (QEMU option values double their commas.)
QARGS=(-- -monitor none -serial mon:stdio
    -chardev "socket,id=ctl,path=${CTL//,/,,}" -serial chardev:ctl
    -device "$(e2e_device_json "$SLOT" "$SOCK")")
e2e_trace_args
say "seed $SEED, $LEN bytes per direction and port, $LOOP_LEN looped"
say "booting the guest (TCG) with vfio-user-pci on $SOCK"
t=$(now)
"$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" \
    --log "$ART/console.log" "$HERE/serial-guest.sh" "$HERE/guest-lib.sh" \
    "$TOOL" "$TMP/serial.conf:/e2e/serial.conf" "${QARGS[@]}" >/dev/null
GUEST_RC=$?
T_BOOT=$(elapsed "$t" "$(now)")

# The guest drained its last bytes before powering off; give the host side
# a moment to read them, then stop it.
wait_exit "$HOST_PID" 50
HOST_RC=$EXIT_RC
HOST_PID=
sleep 0.2    # let the server log the detach
if [ -n "$UUID" ]; then
    # Counters of the session, then the operator's stop.
    timeout 10 "$UMDEVCTL" info "$UUID" >"$ART/info.txt" 2>&1 ||
        say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"
    if ! timeout 20 "$UMDEVCTL" stop "$UUID" >>"$ART/umdevctl.out" \
        2>>"$ART/umdevctl.err"; then
        say "umdevctl stop $UUID failed: $(cat "$ART/umdevctl.err")"
        STOP_FAILED=1
    fi
    UUID=
    say "umdevctl info counters: $(sed -n 's/^ *\(msgs\|errors\|region_reads\|region_writes\|irqs\) *\([0-9][0-9]*\)$/\1=\2/p' \
        "$ART/info.txt" | tr '\n' ' ')"
fi
stop_server "$SRV_PID" 100 ||
    say "$SERVER_NAME did not exit within 10 s of SIGTERM"
SRV_PID=

# ---- verdict ----------------------------------------------------------------------
fail=0
C=$ART/console.log
H=$ART/host
e2e_guest_verdict SERIAL serial-tool
[ -z "$BDF" ] || [ "$BDF" = "$BDF_WANT" ] ||
    { say "the card enumerated at $BDF, QEMU was told $BDF_WANT"; fail=1; }
if [ "$HOST_RC" -ne 0 ]; then
    say "serial-host.py $([ "$HOST_RC" -eq 124 ] && echo "did not finish" || echo "exited $HOST_RC"):"
    sed 's/^/  host: /' "$H/stderr"
    fail=1
fi

declare -A RES=()
e2e_serial_port_verdict SERIAL
for i in 0 1; do
    RES[loop$i]=$(sed -n "s/^E2E-SERIAL-PORT$i-LOOP //p" "$C" | head -n 1)
done

RTT=$(sed -n 's/^E2E-SERIAL-RTT //p' "$C" | head -n 1)
T_WALL=$(elapsed "$T_START" "$(now)")
e2e_versions
say "device: ${BDF:-<not found>}  $(sed -n 's/^E2E-SERIAL-PORTS //p' "$C" | head -n 1)" \
    "irq $(sed -n 's/^E2E-SERIAL-IRQ=//p' "$C" | head -n 1)"
say "seed $SEED; $LEN bytes each way per port, $LOOP_LEN looped"
for i in 0 1; do
    say "port$i: guest->host $(rate "$(field "${RES[send$i]}" bytes_per_s)") guest-measured," \
        "$(rate "$(field "${RES[host$i]}" g2h_bytes_per_s)") host-measured," \
        "$(field "${RES[send$i]}" irqs) irqs, ${RES[g2h$i]}"
    say "port$i: host->guest $(rate "$(field "${RES[recv$i]}" bytes_per_s)") guest-measured," \
        "$(field "${RES[recv$i]}" irqs) irqs, ${RES[h2g$i]}"
    say "port$i: loopback    $(rate "$(field "${RES[loop$i]}" bytes_per_s)")," \
        "$(field "${RES[loop$i]}" irqs) irqs"
done
say "one trapped register access: $(field "$RTT" read_ns) ns read," \
    "$(field "$RTT" write_ns) ns write (guest-measured, SCR of port0)"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"
e2e_qemu_messages
e2e_trace_errors || fail=1
e2e_server_errors ' failed: |warning|error|unexpected|refusing|malformed|refused' 20 ||
    fail=1
[ "$SRV_RC" -eq 0 ] || { say "$SERVER_NAME exited $SRV_RC (expected 0 after SIGTERM)"; fail=1; }
[ "${STOP_FAILED:-0}" = 0 ] || fail=1

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "bdf=$BDF"
    echo "seed=$SEED"
    echo "len=$LEN"
    echo "loop_len=$LOOP_LEN"
    for i in 0 1; do
        echo "port${i}_send=${RES[send$i]}"
        echo "port${i}_recv=${RES[recv$i]}"
        echo "port${i}_loop=${RES[loop$i]}"
        echo "port${i}_host=${RES[host$i]}"
    done
    echo "rtt=$RTT"
    echo "setup_seconds=$T_SETUP"
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL (seed $SEED: UMDEV_E2E_SERIAL_SEED=$SEED reproduces it)"
