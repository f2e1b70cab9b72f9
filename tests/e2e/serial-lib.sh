# shellcheck shell=bash disable=SC2034  # variables set for the sourcing script
# What the serial tests that replace a process under a running guest
# share (serial-upgrade.sh: umdevd replaced; serial-restart.sh: the
# instance's worker restarted): a private umdevd with a serial-2port
# instance, serial-host.py on the host ends, the guest
# (serial-upgrade-guest.sh moving LEN bytes each way per port, both ports,
# then LOOP_LEN of loopback) booted in the background, and the verdict on
# what everyone saw. Sourced after lib.sh and umdevd-lib.sh and
# e2e_init; the caller sets LEN, LOOP_LEN, SEED, QEMU_TIMEOUT first.

# serial_start ARTIFACTS NAME: the programs, the guest environment,
# artifacts in ART (BUILD_DIR/e2e/ARTIFACTS by default), umdevd's
# directories (TMP, umdev-NAME.*), the EXIT trap, the daemon, the
# instance (UUID, WPID, SOCK, PORT0, PORT1), serial-host.py (HOST_PID)
# connected to the host ends, and the guest booting (GUEST_PID; its
# console C, t when it started). Exits 1 if a step fails.
serial_start() {
    UMDEVD=$BUILD_DIR/daemon/umdevd
    UMDEVCTL=$BUILD_DIR/cli/umdevctl
    TOOL=$BUILD_DIR/tests/e2e/serial-tool
    e2e_need "umdevd umdevctl serial-tool" "$UMDEVD" "$UMDEVCTL" "$TOOL"
    e2e_static "$TOOL"
    command -v python3 >/dev/null ||
        skip_or_fail "python3 not found (scripts/deps.sh installs it)"

    e2e_guest_env
    e2e_artifacts "$1" console.log 'umdevd-*.log' info.txt events \
        umdevctl.out umdevctl.err result host
    umdevd_env "$2"
    mkdir -p "$ART/host"
    CTL=$TMP/ctl.sock
    HOST_PID='' GUEST_PID=''
    trap serial_cleanup EXIT
    fail=0

    # ---- the daemon and the instance -----------------------------------------
    if ! daemon; then
        say "FAIL: umdevd did not answer"
        cat "$LOG"
        exit 1
    fi
    instance_start serial serial-2port
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

    # ---- boot ------------------------------------------------------------------
    local slot=5 bdf qargs

    bdf=$(printf '0000:00:%02x.0' "$slot")
    printf 'BDF=%s\nSEED=%s\nLEN=%s\nLOOP_LEN=%s\n' "$bdf" "$SEED" "$LEN" \
        "$LOOP_LEN" >"$TMP/serial-upgrade.conf"
    qargs=(-- -monitor none -serial mon:stdio
        -chardev "socket,id=ctl,path=${CTL//,/,,}" -serial chardev:ctl
        -device "$(e2e_device_json "$slot" "$SOCK")")
    # Receiving, the guest's one CPU sits in the 8250 interrupt handler
    # for most of the transfer: the card hands the driver the next byte
    # as soon as it took the last (no baud-rate pacing), so the handler's
    # loop runs to its pass limit, and under TCG that is seconds per
    # interrupt (serial-tool counts 1 to 6 for 256 KiB). Nothing else runs
    # meanwhile, and the guest's soft-lockup (20 s) and RCU stall (21 s)
    # detectors would report the test's own load; they still report from
    # 120 s on. A stall the replacement caused would not hide behind
    # this: QEMU waits at most 5 s for an answer from the device and says
    # so.
    export UMDEV_E2E_APPEND="${UMDEV_E2E_APPEND:-} watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=120"
    say "booting the guest (TCG) with vfio-user-pci on $SOCK"
    C=$ART/console.log
    : >"$C"
    t=$(now)
    "$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" --log "$C" \
        "$HERE/serial-upgrade-guest.sh" "$HERE/guest-lib.sh" "$TOOL" \
        "$TMP/serial-upgrade.conf:/e2e/serial-upgrade.conf" "${qargs[@]}" \
        >/dev/null 2>"$TMP/run-guest.err" &
    GUEST_PID=$!
}

# shellcheck disable=SC2317  # run by the EXIT trap
serial_cleanup() {
    stop "$GUEST_PID" TERM
    stop "$HOST_PID" KILL
    umdevd_cleanup
}

# event TEXT: a line in ART/events (seconds since T_GO) and on stdout.
event() {
    printf '%s %s\n' "$(elapsed "$T_GO" "$(now)")" "$*" >>"$ART/events"
    say "t+$(elapsed "$T_GO" "$(now)")s: $*"
}

# port_phase I: what serial-host.py's port I waits for now.
port_phase() {
    sed -n 's/^waiting_for=//p' "$ART/host/port$1.host" 2>/dev/null
}
phases() { echo "port0: $(port_phase 0 || true); port1: $(port_phase 1 || true)"; }

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

# serial_finish: the guest and serial-host.py done, the instance stopped
# and the last umdevd with it (umdevd-lib.sh's instance_stop,
# daemon_stop), then the verdict: the guest's checks (serial-upgrade-
# guest.sh), serial-host.py's, every byte both ways, QEMU silent, no
# daemon or worker error. Fills RES (per port send, recv, g2h, h2g,
# counters) and prints it; sets fail=1 on any failure.
serial_finish() {
    local i

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
    timeout 10 "$UMDEVCTL" info "$UUID" >"$ART/info.txt" 2>&1 ||
        say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"
    instance_stop
    daemon_stop

    # ---- verdict ------------------------------------------------------------------
    H=$ART/host
    e2e_guest_verdict SERUP serial-tool
    if [ "$HOST_RC" -ne 0 ]; then
        say "serial-host.py $([ "$HOST_RC" -eq 124 ] && echo "did not finish" || echo "exited $HOST_RC"):"
        sed 's/^/  host: /' "$H/stderr"
        fail=1
    fi
    declare -gA RES=()
    e2e_serial_port_verdict SERUP
    for i in 0 1; do
        RES[counters$i]=$(sed -n "s/^E2E-SERUP-PORT$i-COUNTERS //p" "$C" | head -n 1)
    done
    qemu_silent
    daemon_log_errors

    T_WALL=$(elapsed "$T_START" "$(now)")
    e2e_versions
    for i in 0 1; do
        say "port$i: guest->host $(field "${RES[send$i]}" bytes_per_s) B/s ${RES[g2h$i]}," \
            "host->guest $(field "${RES[recv$i]}" bytes_per_s) B/s ${RES[h2g$i]};" \
            "driver: ${RES[counters$i]}"
    done
    [ -f "$ART/events" ] && sed 's/^/  t+/' "$ART/events"
}

# serial_result: the lines per port for the result file.
serial_result() {
    local i

    for i in 0 1; do
        echo "port${i}_send=${RES[send$i]}"
        echo "port${i}_recv=${RES[recv$i]}"
        echo "port${i}_counters=${RES[counters$i]}"
    done
}
