#!/bin/bash
# tests/e2e/guide.sh [BUILD_DIR]
#
# The QEMU lines users read, run (issue 14, defect 1 and docs/QEMU.md):
#   1. README.md's QEMU arguments (its one code span with a vfio-user-pci
#      -device), SOCKET replaced by a running instance's socket, are
#      accepted by QEMU 11.1: started stopped (-S), QMP query-pci shows
#      the card (4348:3253). The key=value shorthand is checked to be
#      refused, which is why both documents use the JSON form.
#   2. Every ```sh block of docs/QEMU.md, in order, as one bash script
#      (set -eux): define, start, probe as QEMU's user, QEMU with shared
#      memfd RAM and a Linux guest that finds the card and powers off,
#      list, stop, undefine. Only the paths of its first block change
#      (kernel, initramfs, console; /run/umdev becomes a private umdevd's
#      rundir, found by umdevctl through UMDEV_RUNDIR as under systemd) and
#      the user: nobody for libvirt-qemu. qemu-system-x86_64, umdevctl and
#      umdev-probe are found on PATH (the cached QEMU, this build's tools).
#      Its ```xml block (libvirt) is checked by doc-blocks.py.
# Needs root (runuser, instances owned by another user), as CI has.
#
# Exit 0: pass; 1: fail; 77: skipped (no guest environment, not root) -
# never with CI=true. Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/guide}:
# guide.sh (the script run), guide.log, console.log, server.log, qmp.log.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init guide "${1:-}"
UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
PROBE=$BUILD_DIR/umdev-probe
e2e_need "umdevd umdevctl umdev-probe" "$UMDEVD" "$UMDEVCTL" "$PROBE"
[ "$(id -u)" -eq 0 ] ||
    skip_or_fail "docs/QEMU.md's commands need root (runuser, --owner)"
e2e_guest_env
e2e_versions
e2e_artifacts guide guide.sh guide.log console.log server.log qmp.log \
    initrd.cpio.gz
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-guide.XXXXXX")
chmod 755 "$TMP"    # nobody (QEMU's user here) reaches the sockets
SRV_PID=''
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    local qemu

    # A guide run cut short by its timeout leaves its QEMU (started in
    # the background, its pid traced in guide.log) behind.
    qemu=$(sed -n 's/^+ QEMU_PID=//p' "$ART/guide.log" 2>/dev/null | tail -n 1)
    [ -n "$qemu" ] && stop "$qemu" KILL
    stop "$SRV_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
fail=0

# ---- a private umdevd, laid out as the systemd unit lays out its own --------
export UMDEV_RUNDIR=$TMP/run
unset UMDEV_STATEDIR UMDEV_CONTROL
mkdir -p "$TMP/bin"
"$UMDEVD" --rundir "$TMP/run" --statedir "$TMP/state" --verbose \
    2>"$ART/server.log" &
SRV_PID=$!
if ! wait_until "$SRV_PID" 100 "$UMDEVCTL" version >/dev/null 2>&1; then
    say "FAIL: umdevd did not answer"
    cat "$ART/server.log"
    exit 1
fi

# ---- 1. README.md's QEMU line -----------------------------------------------
if ! U=$("$UMDEVCTL" define -p serial -t serial-2port) ||
    ! "$UMDEVCTL" start "$U" >/dev/null; then
    say "FAIL: cannot start an instance for the README check"
    exit 1
fi
mapfile -t RARGS < <(python3 "$HERE/doc-blocks.py" qemu-args "$SRC/README.md" \
    "$UMDEV_RUNDIR/$U.sock")
[ "${#RARGS[@]}" -gt 0 ] || { say "FAIL: no QEMU line in README.md"; exit 1; }
say "README.md's QEMU arguments: ${RARGS[*]}"
printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-pci"}' \
    '{"execute":"quit"}' |
    timeout 60 "$CACHE_DIR/qemu" -nodefaults -display none -S -qmp stdio \
        "${RARGS[@]}" >"$ART/qmp.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] || ! python3 - "$ART/qmp.log" <<'PY'; then
import json, sys
found = False
for line in open(sys.argv[1]):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    for bus in msg.get("return", []) if isinstance(msg.get("return"), list) else []:
        for d in bus.get("devices", []):
            if (d["id"]["vendor"], d["id"]["device"]) == (0x4348, 0x3253):
                found = True
sys.exit(0 if found else 1)
PY
    say "FAIL: QEMU with README.md's arguments (rc $rc) does not show the card:"
    cat "$ART/qmp.log"
    fail=1
else
    say "README.md's line: QEMU shows 4348:3253 (query-pci)"
fi
# The shorthand QEMU refuses (what README.md said before): so the check
# above is the one that tells the forms apart.
out=$(timeout 60 "$CACHE_DIR/qemu" -nodefaults -display none -S -qmp stdio \
    -device "vfio-user-pci,socket=$UMDEV_RUNDIR/$U.sock" 2>&1 <<<'{"execute":"quit"}')
rc=$?
if [ "$rc" -eq 0 ] || ! grep -q "'socket'.*expected: object" <<<"$out"; then
    say "FAIL: -device vfio-user-pci,socket=PATH gave rc $rc, not the refusal docs/QEMU.md quotes:"
    printf '%s\n' "$out"
    fail=1
else
    say "the shorthand is refused: $(grep "expected: object" <<<"$out" | head -n 1)"
fi
if ! "$UMDEVCTL" stop "$U" >/dev/null || ! "$UMDEVCTL" undefine "$U"; then
    say "FAIL: cannot stop/undefine $U"
    fail=1
fi

# ---- 2. docs/QEMU.md ---------------------------------------------------------
python3 "$HERE/doc-blocks.py" xml "$SRC/docs/QEMU.md" || fail=1
MODULES='' "$HERE/mkinitramfs.sh" "$ART/initrd.cpio.gz" "$HERE/guide-guest.sh" \
    "$HERE/guest-lib.sh" || { say "FAIL: mkinitramfs.sh"; exit 1; }
printf '#!/bin/sh\nexec %q "$@"\n' "$CACHE_DIR/qemu" >"$TMP/bin/qemu-system-x86_64"
chmod +x "$TMP/bin/qemu-system-x86_64"
ln -s "$UMDEVCTL" "$TMP/bin/umdevctl"
ln -s "$PROBE" "$TMP/bin/umdev-probe"
: >"$ART/console.log"

# Each substitution must apply exactly once: a guide that changed its
# first block changes this list too.
script=$(python3 "$HERE/doc-blocks.py" sh "$SRC/docs/QEMU.md") || exit 1
subst() {
    local n

    n=$(printf '%s\n' "$script" | grep -cxF -- "$1")
    if [ "$n" -ne 1 ]; then
        say "FAIL: docs/QEMU.md has $n lines '$1' (expected 1)"
        exit 1
    fi
    script=$(printf '%s\n' "$script" | awk -v a="$1" -v b="$2" '$0 == a { $0 = b } { print }')
}
subst 'QEMU_USER=libvirt-qemu' 'QEMU_USER=nobody'
subst 'KERNEL=/boot/vmlinuz' "KERNEL=$CACHE_DIR/vmlinuz"
subst 'INITRD=/boot/initrd.img' "INITRD=$ART/initrd.cpio.gz"
subst 'CONSOLE=/var/log/umdev-guest.console' "CONSOLE=$ART/console.log"
# shellcheck disable=SC2016  # $UUID is the guide's, expanded when it runs
subst 'SOCK=/run/umdev/$UUID.sock' "SOCK=$UMDEV_RUNDIR/\$UUID.sock"
if printf '%s\n' "$script" | grep -q '/run/umdev\|/boot/\|/var/'; then
    say "FAIL: docs/QEMU.md's commands name a path this test does not replace:"
    printf '%s\n' "$script" | grep '/run/umdev\|/boot/\|/var/'
    exit 1
fi
printf 'set -euxo pipefail\n%s\n' "$script" >"$ART/guide.sh"
say "running docs/QEMU.md's commands ($ART/guide.sh)"
t=$(now)
PATH=$TMP/bin:$PATH timeout 300 bash "$ART/guide.sh" >"$ART/guide.log" 2>&1
rc=$?
say "docs/QEMU.md's commands: exit $rc in $(elapsed "$t" "$(now)") s"
if [ "$rc" -ne 0 ]; then
    say "FAIL: a command of docs/QEMU.md failed; the last 30 lines of guide.log:"
    tail -n 30 "$ART/guide.log"
    fail=1
fi
C=$ART/console.log
sed -i 's/\r$//' "$C"    # a serial console's line ends
grep '^E2E-GUIDE-\(BDF\|IDS\|FAIL\)' "$C" | sed 's/^/  guest: /'
grep -qx 'E2E-GUIDE-PASS' "$C" ||
    { say "FAIL: the guest did not find the card (console: $C)"; fail=1; }
grep -q "running" <(sed -n '/umdevctl list -u/,/wait/p' "$ART/guide.log") ||
    { say "FAIL: umdevctl list did not show the instance running"; fail=1; }
grep -q '^srw------- [0-9]* nobody ' "$ART/guide.log" ||
    { say "FAIL: ls -l does not show the socket nobody's, mode 0600"; fail=1; }
if [ -n "$("$UMDEVCTL" list --defined)" ]; then
    say "FAIL: definitions left after the guide's undefine:"
    "$UMDEVCTL" list --defined
    fail=1
fi
e2e_server_errors ': (error|warning|crit|alert|emerg): ' 20 || fail=1
stop_server "$SRV_PID" 100 || { say "FAIL: umdevd did not exit on SIGTERM"; fail=1; }
SRV_PID=
e2e_finish "docs/QEMU.md or README.md's QEMU line failed"
