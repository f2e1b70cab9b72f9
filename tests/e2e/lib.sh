# shellcheck shell=bash disable=SC2034  # variables set for the sourcing script
# What tests/e2e/{smoke,serial,accel}.sh share: the environment, the
# programs they need, the guest environment, artifacts, the QEMU device
# argument, and the reading of what the guest, QEMU and the server said.
# Sourced from the script's directory (HERE) before anything else runs;
# on top of tests/common/kit.sh (say, skip_or_fail, stop, ...).

# shellcheck source=tests/common/kit.sh
. "$HERE/../common/kit.sh"

# e2e_init NAME [BUILD_DIR]: KIT_NAME=e2e.NAME; SRC, BUILD_DIR (default
# build/debug), CACHE_DIR (exported as UMDEV_E2E_CACHE for setup.sh and
# run-guest.sh) and T_START.
e2e_init() {
    KIT_NAME=e2e.$1
    SRC=$(cd "$HERE/../.." && pwd)
    BUILD_DIR=${2:-$SRC/build/debug}
    CACHE_DIR=${UMDEV_E2E_CACHE:-$HOME/.cache/umdev-e2e}
    export UMDEV_E2E_CACHE=$CACHE_DIR
    T_START=$(now)
}

# e2e_need "TARGET..." PATH...: every PATH must be an executable. In the
# default build directory the debug preset builds the CMake TARGETs first
# if one is missing; anywhere else a missing one is a failure.
e2e_need() {
    local targets=$1 f

    shift
    for f in "$@"; do
        [ -x "$f" ] && continue
        if [ "$BUILD_DIR" = "$SRC/build/debug" ]; then
            say "building the debug preset ($f missing)"
            # shellcheck disable=SC2086  # a list of targets
            (cd "$SRC" && cmake --preset debug >/dev/null &&
                cmake --build --preset debug --target $targets) ||
                { say "FAIL: cannot build $targets"; exit 1; }
        fi
        break
    done
    for f in "$@"; do
        [ -x "$f" ] || { say "FAIL: $f not found"; exit 1; }
    done
}

# e2e_static TOOL: a guest helper must not need the host's libraries.
e2e_static() {
    if readelf -l "$1" | grep -q 'program interpreter'; then
        say "FAIL: $1 is dynamically linked; the guest has no libc"
        exit 1
    fi
}

# e2e_guest_env: prepare (or find cached) the guest environment with
# setup.sh, or skip; T_SETUP is how long it took.
e2e_guest_env() {
    local t

    t=$(now)
    if ! "$HERE/setup.sh" "$CACHE_DIR"; then
        skip_or_fail "tests/e2e/setup.sh could not prepare $CACHE_DIR"
    fi
    T_SETUP=$(elapsed "$t" "$(now)")
}

# e2e_artifacts NAME FILE...: ART is the artifact directory
# (UMDEV_E2E_ARTIFACTS or BUILD_DIR/e2e/NAME), made if needed and rid of
# the previous run's FILEs (names inside it).
e2e_artifacts() {
    local f

    ART=${UMDEV_E2E_ARTIFACTS:-$BUILD_DIR/e2e/$1}
    shift
    mkdir -p "$ART" || { say "FAIL: cannot create $ART"; exit 1; }
    for f in "$@"; do
        rm -rf "${ART:?}/$f"
    done
}

# e2e_device_json SLOT SOCK: QEMU's -device argument for a vfio-user-pci
# device on SOCK at SLOT (JSON escapes \ and ").
e2e_device_json() {
    local sock

    sock=$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')
    printf '{"driver":"vfio-user-pci","addr":"%s.0","socket":{"path":"%s","type":"unix"}}' \
        "$1" "$sock"
}

# e2e_trace_args: QEMU's -trace arguments when UMDEV_E2E_TRACE=1, into
# QARGS.
e2e_trace_args() {
    [ "${UMDEV_E2E_TRACE:-0}" = 1 ] &&
        QARGS+=(-trace 'vfio_user_*' -D "$ART/qemu-trace.log")
    return 0
}

# e2e_guest_verdict MARK [TOOL]: what the guest printed on the console C
# (E2E-MARK-* lines): BDF is where the device enumerated; no BDF, no
# E2E-MARK-PASS or a non-zero GUEST_RC set fail=1. The guest's
# E2E-MARK-FAIL lines, and TOOL's own complaints, are shown.
e2e_guest_verdict() {
    local mark=$1 tool=${2:-}

    BDF=$(sed -n "s/^E2E-$mark-BDF=//p" "$C" | head -n 1)
    [ -n "$BDF" ] ||
        { say "no E2E-$mark-BDF line: the device did not enumerate"; fail=1; }
    grep -q "^E2E-$mark-PASS\$" "$C" ||
        { say "the guest checks did not all pass"; fail=1; }
    grep "^E2E-$mark-FAIL" "$C" | sed 's/^/  guest: /'
    [ -z "$tool" ] || grep "^$tool: " "$C" | sed 's/^/  guest: /'
    if [ "$GUEST_RC" -ne 0 ]; then
        say "run-guest.sh exited $GUEST_RC$([ "$GUEST_RC" -eq 124 ] && echo " (timed out)")"
        fail=1
    fi
}

# e2e_versions: the QEMU and kernel the guest environment holds.
e2e_versions() {
    say "QEMU: $(sed -n 's/^qemu=//p' "$CACHE_DIR/stamp"); kernel $(cat "$CACHE_DIR/kver")"
}

# e2e_qemu_messages: QEMU's own console lines about vfio (its messages
# start with "qemu-system"), shown if there are any.
e2e_qemu_messages() {
    local msgs

    msgs=$(grep -i 'qemu-system\|vfio' "$C" | grep -v '^E2E-' || true)
    if [ -n "$msgs" ]; then
        say "QEMU console messages about vfio:"
        printf '%s\n' "$msgs" | sed 's/^/  /'
    fi
}

# e2e_trace_errors: replies QEMU received with VFIO_USER_ERROR (0x20) set,
# from ART/qemu-trace.log (if it was recorded), shown (20 at most).
# Status 1 if there are any.
e2e_trace_errors() {
    local errs

    errs=$(grep 'vfio_user_recv_hdr' "$ART/qemu-trace.log" 2>/dev/null |
        while read -r line; do
            [[ $line =~ \ flags\ (0x[0-9a-fA-F]+) ]] &&
                ((BASH_REMATCH[1] & 0x20)) && printf '%s\n' "$line"
        done)
    [ -z "$errs" ] && return 0
    say "QEMU trace: $(printf '%s\n' "$errs" | wc -l) error repl(ies) (full trace: $ART/qemu-trace.log):"
    printf '%s\n' "$errs" | head -n 20 | sed 's/^/  /'
    return 1
}

# e2e_server_errors REGEX [MAX]: lines of ART/server.log matching REGEX
# (the server's errors and warnings; commands it refused are logged at
# debug level), shown (MAX at most, default all). Status 1 if any.
e2e_server_errors() {
    local errs

    errs=$(grep -E "$1" "$ART/server.log" || true)
    [ -z "$errs" ] && return 0
    say "server: $(printf '%s\n' "$errs" | wc -l) error/warning line(s) (full log: $ART/server.log):"
    printf '%s\n' "$errs" | head -n "${2:-1000000}" | sed 's/^/  /'
    return 1
}

# e2e_finish MESSAGE: exit 1 with MESSAGE and the console's last 50
# lines if fail is set, else say PASS and exit 0.
e2e_finish() {
    if [ "$fail" -ne 0 ]; then
        say "$1; last 50 lines of the console ($C):"
        tail -n 50 "$C"
        exit 1
    fi
    say "PASS"
    exit 0
}

# e2e_start_testdev NAME: serve $TESTDEV on $SOCK in a new temporary
# directory $TMP (umdev-NAME.*), its log in $ART/server.log; $SRV_PID is
# the server. Both go at exit (the EXIT trap). Exits 1 if it does not
# listen within 10 s.
e2e_start_testdev() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-$1.XXXXXX")
    SOCK=$TMP/testdev.sock
    SRV_PID=
    trap e2e_stop_testdev EXIT
    "$TESTDEV" --socket "$SOCK" --verbose 2>"$ART/server.log" &
    SRV_PID=$!
    if ! wait_for_sockets "$SRV_PID" 100 "$SOCK"; then
        say "FAIL: umdev-testdev did not listen on $SOCK"
        cat "$ART/server.log"
        exit 1
    fi
}

# shellcheck disable=SC2317  # run by the EXIT trap
e2e_stop_testdev() {
    stop "$SRV_PID"
    rm -rf "$TMP"
}

# e2e_fio_tree: Debian trixie's fio for the guest, from the tree
# fio-tree.sh prepares once in CACHE_DIR/fio. Sets FIO_QARGS (QEMU's
# arguments sharing the tree read-only over 9p, mount tag "fio"; add them
# after run-guest.sh's --), FIO_MODULES (the guest modules the mount needs;
# add them to MODULES) and FIO_VERSION. In the guest, guest-lib.sh's
# fio_mount and fio_run use it. Status 1 (fio-tree.sh said why) if the
# tree cannot be prepared.
e2e_fio_tree() {
    "$HERE/fio-tree.sh" "$CACHE_DIR" || return 1
    FIO_VERSION=$(sed -n 's/^fio=//p' "$CACHE_DIR/fio/stamp")
    # QEMU's option syntax doubles a comma inside a value.
    FIO_QARGS=(-virtfs "local,path=${CACHE_DIR//,/,,}/fio/tree,mount_tag=fio,security_model=none,readonly=on")
    FIO_MODULES="9pnet_virtio 9p"
}

# The ports' verdict of the serial tests (serial.sh, serial-upgrade.sh),
# after e2e_guest_verdict: serial-host.py's result per port, guest ->
# host bytes byte-exact against the host's own computation, and the
# guest's digest of host -> guest bytes against what was sent. Reads
# $H (serial-host.py's files) and $C (the console); fills the caller's
# RES[g2hN], RES[h2gN], RES[sendN], RES[recvN], RES[hostN] and sets
# fail=1 on a mismatch. $1: the guest's marker tag (SERIAL, SERUP).
# RES is the caller's associative array, which shellcheck cannot see here.
# shellcheck disable=SC2154
e2e_serial_port_verdict() {
    local tag=$1 i p hres want got
    for i in 0 1; do
        p=PORT$i
        hres=$({ tr '\n' ' ' <"$H/port$i.host"; } 2>/dev/null)
        [ "$(field "$hres" status)" = pass ] ||
            { say "port$i: host side: ${hres:-no result}"; fail=1; }
        if [ -f "$H/port$i.g2h.bin" ] && cmp "$H/port$i.g2h.bin" "$H/port$i.g2h.expect"; then
            RES[g2h$i]=match
        else
            say "port$i: guest -> host bytes differ from the pattern (or none arrived)"
            RES[g2h$i]=differ
            fail=1
        fi
        want=$(sha256sum <"$H/port$i.h2g.bin" 2>/dev/null | cut -d" " -f1)
        got=$(sed -n "s/^E2E-$tag-$p-H2G-SHA256=//p" "$C" | head -n 1)
        if [ -n "$got" ] && [ "$got" = "$want" ]; then
            RES[h2g$i]=match
        else
            say "port$i: the guest's sha256 of host -> guest bytes is '${got:-none}', sent $want"
            RES[h2g$i]=differ
            fail=1
        fi
        RES[send$i]=$(sed -n "s/^E2E-$tag-$p-SEND //p" "$C" | head -n 1)
        RES[recv$i]=$(sed -n "s/^E2E-$tag-$p-RECV //p" "$C" | head -n 1)
        RES[host$i]=$hres
    done
}
