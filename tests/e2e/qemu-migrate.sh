#!/bin/bash
# tests/e2e/qemu-migrate.sh [BUILD_DIR]
#
# What happens when a VM with a vfio-user-pci device served by umdev is
# live-migrated by QEMU 11.1, whose vfio-user client has no migration
# support (docs/QEMU.md "Live migration" quotes what this test observes).
# The VM is firmware only: SeaBIOS assigns the card's BARs and, finding
# nothing to boot, idles; QMP's human-monitor-command `i`/`o` then reach
# the card's registers as a guest's inb/outb would (each one a
# REGION_READ/REGION_WRITE to the server). The card is the serial card
# (`umdev-serve serial`, 4348:3253); its scratch register (BAR0 + 7, 8 bits
# the device keeps and nothing else touches) holds a value the guest wrote.
#   b. A second QEMU started with `-incoming defer` on the same socket (what
#      a same-host migration starts): umdev refuses it (EBUSY to its
#      VERSION), its realize fails with QEMU's message, the server's log
#      names both pids, and the first VM's card keeps working (the value
#      written before reads back, a new one is written and read back).
#   a. `migrate` to `exec:cat >/dev/null`: QEMU registers no migration
#      blocker for the device; the migration completes (query-migrate) and
#      the source stops (postmigrate). QEMU sends the device no
#      DEVICE_FEATURE (its vfio_user_* trace) and the card, `cont` given,
#      still holds the value.
#   c. `migrate` to a file: the stream has no section for the card (the
#      SATA controller's, at 00:1f.2, is there); a destination QEMU loaded
#      from it with a fresh umdev instance runs, but its card has no BARs
#      (query-pci: address -1) and the guest's I/O port reads 0xff: neither
#      the guest's programming of the card nor the device's state came
#      along.
#   d. QEMU's -only-migratable does not refuse the card (QEMU starts with it).
# The checks pin QEMU 11.1's behaviour down: a QEMU that blocks the
# migration or carries the card fails them, and docs/QEMU.md must then be
# updated with what it does.
#
# Exit 0: pass; 1: fail; 77: skipped (no guest environment, for its QEMU;
# no python3) - never with CI=true. Artifacts in
# ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/qemu_migrate}: src.out, second.out,
# dst.out, only.out (QEMU's output), src-trace.log (the source's
# vfio_user_* trace), server-src.log, server-dst.log (umdev-serve
# --verbose), vm.mig (the migration stream of c), result (the
# observations).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init qemu_migrate "${1:-}"
SERVE=$BUILD_DIR/devices/umdev-serve
e2e_need umdev-serve "$SERVE"
command -v python3 >/dev/null || skip_or_fail "python3 is missing (QMP)"
e2e_guest_env
e2e_versions
e2e_artifacts qemu_migrate src.out second.out dst.out only.out src-trace.log \
    server-src.log server-dst.log vm.mig result
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-migrate.XXXXXX")
SRV_SRC='' SRV_DST='' Q_SRC='' Q_SECOND='' Q_DST=''
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$Q_SRC" KILL
    stop "$Q_SECOND" KILL
    stop "$Q_DST" KILL
    stop "$SRV_SRC"
    stop "$SRV_DST"
    rm -rf "$TMP"
}
trap cleanup EXIT
fail=0
T0=$(now)

# note LINE: an observation, shown and kept in ART/result.
note() {
    say "$*"
    printf '%s\n' "$*" >>"$ART/result"
}
: >"$ART/result"

# qmp NAME COMMAND [ARGS-JSON] / qmp NAME hmp LINE: QMP of the VM NAME.
qmp() {
    local name=$1

    shift
    python3 "$HERE/qmp.py" "$TMP/$name.qmp" "$@"
}

# serve NAME: umdev-serve serial on TMP/NAME.sock, log in
# ART/server-NAME.log; SRV_PID is it. Exits 1 if it does not listen.
serve() {
    "$SERVE" serial --socket "$TMP/$1.sock" --verbose \
        >/dev/null 2>"$ART/server-$1.log" &
    SRV_PID=$!
    if ! wait_for_sockets "$SRV_PID" 200 "$TMP/$1.sock"; then
        say "FAIL: umdev-serve did not listen on $TMP/$1.sock"
        cat "$ART/server-$1.log"
        exit 1
    fi
}

# qemu NAME SOCKET ARGS...: the VM (q35, 128 MiB shared memfd RAM, TCG,
# no disk) with the card on SOCKET at 00:04.0, QMP on TMP/NAME.qmp, its
# output in ART/NAME.out; QEMU_PID is it.
qemu() {
    local name=$1 sock=$2

    shift 2
    "$CACHE_DIR/qemu" -nodefaults -display none -accel tcg \
        -machine q35,memory-backend=mem -m 128M \
        -object memory-backend-memfd,id=mem,size=128M,share=on \
        -device "$(e2e_device_json 4 "$sock")" \
        -qmp "unix:$TMP/$name.qmp,server=on,wait=off" "$@" \
        >"$ART/$name.out" 2>&1 &
    QEMU_PID=$!
}

# card NAME: the card's BAR0 address (decimal, -1 if unassigned) and its
# interrupt line, from the VM NAME's query-pci ("ADDRESS IRQ").
card() {
    qmp "$1" query-pci | python3 -c '
import json, sys
for bus in json.load(sys.stdin):
    for d in bus["devices"]:
        if (d["id"]["vendor"], d["id"]["device"]) == (0x4348, 0x3253):
            bar0 = [r["address"] for r in d["regions"] if r["bar"] == 0]
            print(bar0[0] if bar0 else "none", d.get("irq", "none"))
'
}

bar0_assigned() {
    local c

    c=$(card "$1") && [ "${c%% *}" -gt 0 ] 2>/dev/null
}

# inb NAME PORT: the byte at I/O PORT of the VM NAME ("0x5a"), as its
# CPU reads it; outb NAME PORT VALUE writes it.
inb() {
    local out

    out=$(qmp "$1" hmp "i /b $2") || return 1
    out=${out%$'\r'}    # the trailing newline went with $(...)
    [[ $out =~ \]\ =\ (0x[0-9a-f]+)$ ]] || { say "HMP i said '$out'" >&2; return 1; }
    printf '%s\n' "${BASH_REMATCH[1]}"
}
outb() {
    local out

    out=$(qmp "$1" hmp "o /b $2 $3") || return 1
    [ -z "$out" ] || { say "HMP o said '$out'" >&2; return 1; }
}

# expect WHAT GOT WANT: fail unless GOT is WANT.
expect() {
    [ "$2" = "$3" ] && return 0
    say "FAIL: $1: '$2', expected '$3'"
    fail=1
    return 1
}

# status NAME: query-status's status of the VM NAME.
status() {
    qmp "$1" query-status | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])'
}

running() { [ "$(status "$1" 2>/dev/null)" = running ]; }

# migrate_to NAME URI: migrate the VM NAME to URI and wait (60 s at most)
# for the migration to end; MIG is query-migrate's last answer, MIG_STATUS
# its status, MIG_ERROR the error migrate itself answered (empty if none).
migrate_to() {
    local args

    args=$(python3 -c 'import json, sys; print(json.dumps({"uri": sys.argv[1]}))' "$2")
    MIG='' MIG_STATUS='' MIG_ERROR=''
    if ! MIG_ERROR=$(qmp "$1" migrate "$args" 2>&1 >/dev/null); then
        return 0
    fi
    MIG_ERROR=''
    for _ in $(seq 600); do
        MIG=$(qmp "$1" query-migrate) || return 1
        MIG_STATUS=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("status", ""))' "$MIG")
        case $MIG_STATUS in
        completed | failed | cancelled) return 0 ;;
        esac
        sleep 0.1
    done
    say "FAIL: the migration to $2 did not end within 60 s: $MIG"
    return 1
}

# ---- the source VM -----------------------------------------------------------
serve src
SRV_SRC=$SRV_PID
SOCK=$TMP/src.sock
qemu src "$SOCK" -trace 'vfio_user_*' -D "$ART/src-trace.log"
Q_SRC=$QEMU_PID
if ! wait_for_sockets "$Q_SRC" 600 "$TMP/src.qmp" ||
    ! wait_until "$Q_SRC" 600 bar0_assigned src; then
    say "FAIL: the source VM did not come up with the card's BAR0 assigned:"
    cat "$ART/src.out"
    exit 1
fi
read -r BAR0 IRQ < <(card src)
SCR=$(printf '0x%x' $((BAR0 + 7)))
note "source (pid $Q_SRC): card at 00:04.0, BAR0 I/O $(printf '0x%x' "$BAR0"), irq $IRQ; scratch register at $SCR"
outb src "$SCR" 0x5a || { say "FAIL: cannot write the scratch register"; exit 1; }
expect "source: scratch register after writing 0x5a" "$(inb src "$SCR")" 0x5a ||
    exit 1

# ---- b. a second QEMU on the same socket -------------------------------------
qemu second "$SOCK" -incoming defer
Q_SECOND=$QEMU_PID
if ! wait_exit "$Q_SECOND" 300; then
    say "FAIL: the second QEMU still runs after 30 s: umdev did not refuse it"
    fail=1
elif [ "$EXIT_RC" -ne 1 ]; then
    say "FAIL: the second QEMU exited $EXIT_RC, not 1 (a failed realize)"
    fail=1
fi
note "b. second QEMU (pid $Q_SECOND, -incoming defer, same socket) exit $EXIT_RC:"
sed 's/^/b.   /' "$ART/second.out" | tee -a "$ART/result" | sed "s/^/$KIT_NAME: /"
if ! grep -qF ": vfio vfio-user:$SOCK: version reply: Device or resource busy" \
    "$ART/second.out"; then
    say "FAIL: the second QEMU's realize did not fail with EBUSY to VERSION"
    fail=1
fi
Q_SECOND=
refusal="serial: refusing a second client (pid $QEMU_PID): in use by pid $Q_SRC"
if grep -q "^umdev: warning: $refusal\$" "$ART/server-src.log"; then
    note "b. umdev-serve: warning: $refusal"
else
    say "FAIL: the server's log does not say '$refusal':"
    cat "$ART/server-src.log"
    fail=1
fi
expect "b. source status after the refusal" "$(status src)" running
expect "b. source: scratch register after the refusal" "$(inb src "$SCR")" 0x5a
outb src "$SCR" 0xa5 || fail=1
expect "b. source: scratch register after writing 0xa5" "$(inb src "$SCR")" 0xa5 &&
    note "b. the source's card still works: scratch 0x5a kept, 0xa5 written and read back"

# ---- a. migrate to exec:cat >/dev/null ---------------------------------------
migrate_to src 'exec:cat >/dev/null' || exit 1
if [ -n "$MIG_ERROR" ]; then
    note "a. migrate refused: $MIG_ERROR"
    say "FAIL: QEMU refused the migration (a blocker?); docs/QEMU.md says it completes"
    fail=1
else
    note "a. migrate to exec:cat >/dev/null: no error; query-migrate: $MIG"
    expect "a. migration status" "$MIG_STATUS" completed
    expect "a. source status after the migration" "$(status src)" postmigrate &&
        note "a. source status after it: postmigrate"
fi
qmp src cont >/dev/null || fail=1
expect "a. source status after cont" "$(status src)" running
expect "a. source: scratch register after the migration" "$(inb src "$SCR")" 0xa5

# ---- c. migrate to a file, load it with a fresh umdev instance ---------------
migrate_to src "file:$ART/vm.mig" || exit 1
if [ -n "$MIG_ERROR" ] || ! expect "c. migration status" "$MIG_STATUS" completed; then
    say "FAIL: the migration to a file did not complete: ${MIG_ERROR:-$MIG}"
    exit 1
fi
note "c. migrate to file: completed, $(stat -c %s "$ART/vm.mig") bytes"
# The section names a device's state goes under ("BDF/vmsd name"); the
# SATA controller's shows the check would find one.
if ! grep -aq '0000:00:1f.2/ich9_ahci' "$ART/vm.mig"; then
    say "FAIL: no section 0000:00:1f.2/ich9_ahci in the stream: the check below means nothing"
    fail=1
elif grep -aq '0000:00:04.0/' "$ART/vm.mig"; then
    say "FAIL: the stream has a section for the card (0000:00:04.0/...)"
    fail=1
else
    note "c. the stream has a section for 00:1f.2 (ich9_ahci), none for the card at 00:04.0"
fi
qmp src quit >/dev/null
wait_exit "$Q_SRC" 300 || { say "FAIL: the source QEMU did not quit"; fail=1; }
Q_SRC=
# Read once QEMU has exited and its trace is all written.
features=$(grep -c 'vfio_user_device_io_device_feature' "$ART/src-trace.log")
grep -q vfio_user_region_rw "$ART/src-trace.log" ||
    { say "FAIL: the source's trace has no register access: it recorded nothing"; fail=1; }
expect "a./c. DEVICE_FEATURE requests in the source's trace" "$features" 0 &&
    note "a./c. the source QEMU sent the device no DEVICE_FEATURE in either migration (its vfio_user_* trace)"

serve dst
SRV_DST=$SRV_PID
qemu dst "$TMP/dst.sock" -incoming "file:$ART/vm.mig"
Q_DST=$QEMU_PID
if ! wait_for_sockets "$Q_DST" 600 "$TMP/dst.qmp" ||
    ! wait_until "$Q_DST" 600 running dst; then
    say "FAIL: the destination did not run after loading the stream:"
    cat "$ART/dst.out"
    exit 1
fi
read -r DBAR0 DIRQ < <(card dst)
note "c. destination (pid $Q_DST, fresh umdev instance on its own socket) runs; its card: BAR0 address $DBAR0, irq $DIRQ (the source's: $BAR0, irq $IRQ)"
expect "c. destination: the card's BAR0 address" "$DBAR0" -1
v=$(inb dst "$SCR")
expect "c. destination: the guest's read of $SCR" "$v" 0xff &&
    note "c. the guest reads $v at $SCR, where the source's card held 0xa5"
if grep -q '^umdev: info: serial: client attached$' "$ART/server-dst.log"; then
    note "c. the fresh instance's log: client attached (the destination's realize, before the stream was loaded)"
else
    say "FAIL: the destination's server did not log the attach"
    fail=1
fi
qmp dst quit >/dev/null
wait_exit "$Q_DST" 300 || { say "FAIL: the destination QEMU did not quit"; fail=1; }
Q_DST=

# ---- d. -only-migratable -------------------------------------------------------
# QEMU's switch for refusing whatever cannot migrate does not see the card.
# The destination's close reaches the server asynchronously: a connect
# before its detach would meet the second-client refusal.
detached() { grep -q '^umdev: info: serial: client detached$' "$ART/server-dst.log"; }
wait_until "$SRV_DST" 200 detached ||
    { say "FAIL: the destination's server did not log the detach"; fail=1; }
qemu only "$TMP/dst.sock" -only-migratable -S
Q_DST=$QEMU_PID
if wait_for_sockets "$Q_DST" 600 "$TMP/only.qmp" &&
    [ "$(status only 2>/dev/null)" = prelaunch ] &&
    [ -n "$(card only)" ]; then
    note "d. QEMU with -only-migratable accepts the card (query-pci shows it)"
else
    say "FAIL: QEMU with -only-migratable did not start with the card:"
    cat "$ART/only.out"
    fail=1
fi
qmp only quit >/dev/null
wait_exit "$Q_DST" 300 || { say "FAIL: the -only-migratable QEMU did not quit"; fail=1; }
Q_DST=

# ---- what else QEMU and the servers said ---------------------------------------
for f in src dst only; do
    if [ -s "$ART/$f.out" ]; then
        say "QEMU ($f) said:"
        sed 's/^/  /' "$ART/$f.out"
    fi
done
stop_server "$SRV_SRC" 100 || { say "FAIL: umdev-serve (source) did not exit on SIGTERM"; fail=1; }
SRV_SRC=
stop_server "$SRV_DST" 100 || { say "FAIL: umdev-serve (destination) did not exit on SIGTERM"; fail=1; }
SRV_DST=
for f in src dst; do
    errs=$(grep -E ': (error|warning|crit|alert|emerg): ' "$ART/server-$f.log" |
        grep -vF ": warning: $refusal")
    if [ -n "$errs" ]; then
        say "FAIL: umdev-serve ($f) logged:"
        printf '%s\n' "$errs" | sed 's/^/  /'
        fail=1
    fi
done
say "wall time $(elapsed "$T0" "$(now)") s (setup ${T_SETUP} s)"
[ "$fail" -eq 0 ] || { say "FAIL (observations: $ART/result)"; exit 1; }
say PASS
