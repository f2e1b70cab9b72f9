# shellcheck shell=bash disable=SC2034  # variables set for the sourcing script
# What the e2e tests that run a private umdevd through daemon changes and
# worker restarts share (serial-upgrade.sh, the *-restart.sh tests):
# umdevd's directories under TMP, starting daemons one after the other
# (each its own log), an instance defined and started with umdevctl, and
# what umdevctl says about it. Sourced after lib.sh, e2e_init and
# e2e_artifacts (ART); the caller's EXIT trap calls umdevd_cleanup.

# umdevd_env NAME: TMP (umdev-NAME.*) with umdevd's run and state
# directories and control socket, exported for umdevd and umdevctl;
# NDAEMON=0, no daemon yet. Every daemon runs with DAEMON_ARGS (an
# upgrade keeps the options).
umdevd_env() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-$1.XXXXXX")
    SRV_PID='' UUID='' WPID='' NDAEMON=0
    export UMDEV_RUNDIR=$TMP/run UMDEV_STATEDIR=$TMP/state \
        UMDEV_CONTROL=$TMP/run/control
    mkdir -p "$UMDEV_RUNDIR" "$UMDEV_STATEDIR"
    DAEMON_ARGS=(--verbose)
    rm -f "$ART"/umdevd-*.log
}

# daemon [ARGS...]: start umdevd N (its log umdevd-N.log) and wait until
# it answers; SRV_PID is it, LOG its log. Status 1 if it does not within
# 30 s.
daemon() {
    local log=$ART/umdevd-$NDAEMON.log

    "$UMDEVD" "${DAEMON_ARGS[@]}" "$@" >>"$log" 2>&1 &
    SRV_PID=$!
    LOG=$log
    NDAEMON=$((NDAEMON + 1))
    wait_until "$SRV_PID" 300 "$UMDEVCTL" version >/dev/null 2>&1
}

# instance_start PARENT TYPE [ATTR...]: define an instance of TYPE with
# the attributes (KEY=VALUE) and start it; UUID is it, WPID its worker,
# SOCK its vfio-user socket. Exits 1 (saying why) if that fails.
instance_start() {
    local p=$1 t=$2 a args=()

    shift 2
    for a in "$@"; do args+=(--attr "$a"); done
    if ! UUID=$(timeout 10 "$UMDEVCTL" define -p "$p" -t "$t" "${args[@]}" \
        2>"$ART/umdevctl.err") ||
        ! timeout 20 "$UMDEVCTL" start "$UUID" >"$ART/umdevctl.out" \
            2>>"$ART/umdevctl.err"; then
        say "FAIL: umdevctl define/start of a $t instance failed"
        cat "$ART/umdevctl.err" "$LOG"
        UUID=
        exit 1
    fi
    WPID=$(worker_pid)
    say "umdevd instance $UUID ($t), worker pid ${WPID:-?}"
    [ -n "$WPID" ] || { say "FAIL: the instance is not running"; exit 1; }
    SOCK=$UMDEV_RUNDIR/$UUID.sock
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

# instance_stop: `umdevctl stop` the instance (QEMU gone), which must
# leave it stopped and its worker gone; fail=1 otherwise. UUID is
# cleared.
instance_stop() {
    local state

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
}

# daemon_stop: SIGTERM to the last umdevd, which must exit 0 and leave
# RUNDIR empty; fail=1 otherwise.
daemon_stop() {
    local left

    stop_server "$SRV_PID" 100 || say "umdevd did not exit within 10 s of SIGTERM"
    SRV_PID=
    [ "$SRV_RC" -eq 0 ] || { say "the last umdevd exited $SRV_RC (expected 0 after SIGTERM)"; fail=1; }
    left=$(ls -A "$UMDEV_RUNDIR")
    [ -z "$left" ] || { say "RUNDIR holds after the last umdevd: $left"; fail=1; }
}

# daemon_log_errors: no daemon (and no worker: they log to their first
# daemon's stderr) reported an error or warning; fail=1 otherwise.
daemon_log_errors() {
    local f errs

    for f in "$ART"/umdevd-*.log; do
        errs=$(grep -E ' failed: |warning|error|unexpected|refusing|malformed|refused|not adopted|ignored|killed by signal' "$f" || true)
        if [ -n "$errs" ]; then
            say "${f##*/}: error/warning lines:"
            printf '%s\n' "$errs" | head -n 20 | sed 's/^/  /'
            fail=1
        fi
    done
}

# qemu_silent: QEMU never lost the device: it says nothing about vfio or
# vfio-user (a lost connection, a failed message, an unplug) on the
# console C; fail=1 otherwise.
qemu_silent() {
    local msgs

    msgs=$(grep -iE 'qemu-system|vfio' "$C" | grep -v '^E2E-' || true)
    if [ -n "$msgs" ]; then
        say "QEMU's messages about the device:"
        printf '%s\n' "$msgs" | sed 's/^/  /'
        fail=1
    fi
}

# umdevd_cleanup: for the EXIT trap, after the guest and any helper are
# stopped: the instance, the daemon, a worker a failed run left behind
# (the one process this test started through umdevd, by its pid), TMP.
# shellcheck disable=SC2317  # run by the EXIT trap
umdevd_cleanup() {
    [ -n "$UUID" ] && [ -n "$SRV_PID" ] &&
        timeout 10 "$UMDEVCTL" stop "$UUID" >/dev/null 2>&1
    stop "$SRV_PID"
    if [ -n "$WPID" ] && kill -0 "$WPID" 2>/dev/null &&
        [ "$(cat "/proc/$WPID/comm" 2>/dev/null)" = umdev-worker ]; then
        kill -KILL "$WPID"
    fi
    rm -rf "$TMP"
}

# ---- worker restarts under a running guest (the *-restart.sh tests) -------

# restart_init: RESTART_MODE from UMDEV_E2E_RESTART_MODE (default
# restart); BLACKOUTS empty. The other modes replace the worker in ways
# that break the device, to show that the test can fail:
#   stop-start  `umdevctl stop` and `umdevctl start` (a new worker, a new
#               socket: the VMM's connection is gone)
#   kill        SIGKILL to the worker (the instance ends `failed`)
restart_init() {
    RESTART_MODE=${UMDEV_E2E_RESTART_MODE:-restart}
    BLACKOUTS=() NRESTART=0 QEMU_PID=''
    case $RESTART_MODE in
    restart | stop-start | kill) ;;
    *) say "FAIL: UMDEV_E2E_RESTART_MODE must be restart, stop-start or kill, not '$RESTART_MODE'"; exit 1 ;;
    esac
}

# restart_event TEXT: a line in ART/events (seconds since T_GO) and on
# stdout.
restart_event() {
    printf '%s %s\n' "$(elapsed "$T_GO" "$(now)")" "$*" >>"$ART/events"
    say "t+$(elapsed "$T_GO" "$(now)")s: $*"
}

# restart_worker: replace the instance's worker (RESTART_MODE) while the
# guest runs; in restart mode `umdevctl restart` must print a new worker
# pid (the one `umdevctl list` then shows, the old one gone) and a
# blackout (appended to BLACKOUTS, ms), and the new worker must serve the
# same VMM (QEMU's pid as client) with no error answered. fail=1 on any
# failure; status 1 if the instance is no longer running.
restart_worker() {
    local out old=$WPID new was ms pid cpid acc att errs i

    NRESTART=$((NRESTART + 1))
    i=$NRESTART
    if [ -z "$QEMU_PID" ]; then
        read -r QEMU_PID acc att errs <<<"$(dev_state)"
        if [ "$att" != 1 ] || [ "$errs" != 0 ] || [ "${QEMU_PID:-none}" = none ]; then
            say "before restart $i: client pid ${QEMU_PID:-?}, attaches ${att:-?} (1), errors ${errs:-?} (0)"
            fail=1
        fi
    fi
    case $RESTART_MODE in
    stop-start)
        restart_event "restart $i: (mode stop-start) umdevctl stop, then start (worker pid $old)"
        timeout 20 "$UMDEVCTL" stop "$UUID" >>"$ART/umdevctl.out" 2>>"$ART/umdevctl.err"
        timeout 20 "$UMDEVCTL" start "$UUID" >>"$ART/umdevctl.out" 2>>"$ART/umdevctl.err"
        WPID=$(worker_pid)
        restart_event "restart $i: worker pid ${WPID:-none}"
        return 0
        ;;
    kill)
        restart_event "restart $i: (mode kill) SIGKILL to worker pid $old"
        kill -KILL "$old"
        return 0
        ;;
    esac
    restart_event "restart $i: umdevctl restart (worker pid $old)"
    if ! out=$(timeout 30 "$UMDEVCTL" restart "$UUID" 2>>"$ART/umdevctl.err"); then
        say "restart $i: umdevctl restart failed: $(tail -n 1 "$ART/umdevctl.err")"
        fail=1
        pid=$(worker_pid)
        [ -n "$pid" ] || return 1
        return 0
    fi
    printf '%s\n' "$out" >>"$ART/umdevctl.out"
    # "restarted: worker pid NEW (was OLD), blackout MS ms"
    if ! [[ $out =~ ^restarted:\ worker\ pid\ ([0-9]+)\ \(was\ ([0-9]+)\),\ blackout\ ([0-9.]+)\ ms$ ]]; then
        say "restart $i: umdevctl restart printed '$out'"
        fail=1
        return 0
    fi
    new=${BASH_REMATCH[1]} was=${BASH_REMATCH[2]} ms=${BASH_REMATCH[3]}
    BLACKOUTS+=("$ms")
    [ "$was" = "$old" ] ||
        { say "restart $i: umdevctl says the old worker was $was, it was $old"; fail=1; }
    [ "$new" != "$old" ] ||
        { say "restart $i: the new worker has the old one's pid $old"; fail=1; }
    pid=$(worker_pid)
    WPID=$pid
    if [ "$pid" != "$new" ]; then
        say "restart $i: umdevctl list shows worker pid ${pid:-none}, restart printed $new"
        fail=1
        [ -n "$pid" ] || return 1
    fi
    if ! wait_until "$SRV_PID" 50 sh -c "! kill -0 $old 2>/dev/null"; then
        say "restart $i: the old worker (pid $old) is still there"
        fail=1
    fi
    # The new worker serves QEMU's connection (no new attach) and has
    # answered no message with an error.
    read -r cpid acc att errs <<<"$(dev_state)"
    if [ "$cpid" != "$QEMU_PID" ] || [ "$errs" != 0 ]; then
        say "after restart $i: client pid ${cpid:-?} (before: $QEMU_PID), errors ${errs:-?} (0)"
        fail=1
    fi
    restart_event "restart $i: worker pid $new (was $was), blackout $ms ms; VMM pid $cpid, accesses $acc, attaches $att"
}

# restart_summary: the blackouts, one line; fail=1 if not every one of
# the RESTARTS wanted was made (in restart mode).
restart_summary() {
    local want=$1

    say "blackouts (ms): ${BLACKOUTS[*]:-none}"
    if [ "$RESTART_MODE" = restart ] && [ "${#BLACKOUTS[@]}" -ne "$want" ]; then
        say "${#BLACKOUTS[@]} of $want restarts were made"
        fail=1
    fi
}

# endpoint_counter NAME: the instance's parent-driver counter NAME
# (umdevctl info's device.endpoints: accel's "completed", nvme's
# "io_commands"), from its current worker; nothing if unavailable.
endpoint_counter() {
    timeout 10 "$UMDEVCTL" --json info "$UUID" 2>>"$ART/umdevctl.err" |
        python3 -c 'import json, sys
try:
    print(json.load(sys.stdin)["device"]["endpoints"][sys.argv[1]])
except (ValueError, KeyError, TypeError):
    pass' "$1"
}

# restart_run N GAP COUNTER DONE: N restarts (restart_worker) GAP seconds
# apart, the first at once, all while the guest's load runs: each must
# come before the guest prints the marker DONE (its load ended), and
# after each the new worker's endpoint counter COUNTER must grow within
# GAP seconds (the device works on). fail=1 otherwise.
restart_run() {
    local n=$1 gap=$2 counter=$3 done=$4 i p0 p1

    for i in $(seq "$n"); do
        if grep -q "^$done\$" "$C" 2>/dev/null; then
            say "restart $i: the guest printed $done before it: its load is too short for this host"
            fail=1
            return
        fi
        restart_worker || return
        p0=$(endpoint_counter "$counter")
        sleep "$gap"
        p1=$(endpoint_counter "$counter")
        if ! [ "${p1:-0}" -gt "${p0:-0}" ] 2>/dev/null; then
            say "after restart $i: the device's $counter did not grow in ${gap} s (${p0:-none} -> ${p1:-none})"
            fail=1
        else
            restart_event "restart $i: $counter ${p0} -> ${p1} in ${gap} s"
        fi
    done
    if grep -q "^$done\$" "$C" 2>/dev/null; then
        say "the guest printed $done before the last restart's check ended: its load is too short for this host"
        fail=1
    fi
}

# guest_said MARKER: the guest's console ($C) has the line.
guest_said() { grep -q "^$1\$" "$C" 2>/dev/null; }

# wait_guest WHAT TENTHS COMMAND...: until COMMAND succeeds while the
# guest (GUEST_PID) runs; fail=1 (WHAT said) and status 1 otherwise.
wait_guest() {
    local what=$1 tenths=$2

    shift 2
    wait_until "$GUEST_PID" "$tenths" "$@" && return 0
    say "gave up waiting for $what"
    fail=1
    return 1
}

# counter_grew NAME BASE: endpoint counter NAME is 200 past BASE.
# shellcheck disable=SC2317  # called through wait_guest
counter_grew() { [ "$(endpoint_counter "$1")" -gt $(($2 + 200)) ] 2>/dev/null; }

# guest_restarts TAG WHAT COUNTER DONE: the guest (GUEST_PID, console $C,
# booted at $t) says E2E-TAG-GO when WHAT starts; once endpoint counter
# COUNTER has grown since, RESTARTS restarts GAP s apart (restart_run)
# until it says DONE; then QEMU's end is waited for. Sets fail, T_GO,
# GUEST_RC and T_BOOT.
guest_restarts() {
    local tag=$1 what=$2 counter=$3 done=$4 base

    fail=0
    if wait_guest "the guest to start $what (E2E-$tag-GO)" 1800 \
        guest_said "E2E-$tag-GO"; then
        T_GO=$(now)
        : >"$ART/events"
        base=$(endpoint_counter "$counter")
        restart_event "the guest starts $what (E2E-$tag-GO); $counter so far ${base:-?}"
        if wait_guest "$what's work to flow" 600 counter_grew "$counter" "${base:-0}"; then
            restart_event "$what's work is flowing"
            # shellcheck disable=SC2153  # the test script sets both
            restart_run "$RESTARTS" "$GAP" "$counter" "$done"
        fi
    fi
    wait "$GUEST_PID"
    GUEST_RC=$?
    GUEST_PID=
    T_BOOT=$(elapsed "$t" "$(now)")
    [ -z "${T_GO:-}" ] || restart_event "QEMU exited (run-guest.sh exited $GUEST_RC)"
    cat "$TMP/run-guest.err"
}
