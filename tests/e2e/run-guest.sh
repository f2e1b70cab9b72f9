#!/bin/bash
# tests/e2e/run-guest.sh [OPTIONS] INIT_SCRIPT [EXTRA_FILE[:DEST]...] [-- QEMU_ARGS...]
#
# Boot the e2e guest (TCG, q35, 512M of shared memfd RAM unless --private-ram,
# serial console)
# with an initramfs built by mkinitramfs.sh around INIT_SCRIPT, and print the
# console (carriage returns stripped) on stdout.
#
# Options:
#   --socket PATH    attach a vfio-user-pci device served on PATH (repeatable):
#                    -device '{"driver":"vfio-user-pci","socket":{"path":PATH,"type":"unix"}}'
#   --log FILE       also write the console to FILE
#   --timeout S      wall-clock bound of the QEMU run (default 120)
#   --initrd FILE    keep the built initramfs here (default: a temporary file)
#   --private-ram    guest RAM in memory-backend-ram, not shared: QEMU then
#                    maps it for devices without an fd, and their DMA goes
#                    through DMA_READ/DMA_WRITE messages
#   -- ARGS...       extra QEMU arguments (other -device, -trace, ...)
# Environment: UMDEV_E2E_CACHE (see setup.sh), MODULES (see mkinitramfs.sh),
#   UMDEV_E2E_APPEND (extra kernel command line).
#
# Exit status: QEMU's if it failed (124: timed out), else the guest script's
# ("E2E-INIT-EXIT rc=N"), 125 if the guest never reported one.
# /dev/kvm is never used: the hosts we run on have nested KVM that cannot run
# an ordinary guest, and TCG boots this guest in a few seconds anyway.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_DIR=${UMDEV_E2E_CACHE:-$HOME/.cache/umdev-e2e}
export UMDEV_E2E_CACHE=$CACHE_DIR
die() { printf 'run-guest: error: %s\n' "$*" >&2; exit 125; }

TIMEOUT=120 LOG='' INITRD='' RAM=memory-backend-memfd,id=mem,size=512M,share=on
SOCKS=() FILES=() QARGS=()
while [ $# -gt 0 ]; do
    case $1 in
    --socket) SOCKS+=("$2"); shift 2 ;;
    --log) LOG=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --initrd) INITRD=$2; shift 2 ;;
    --private-ram) RAM=memory-backend-ram,id=mem,size=512M; shift ;;
    --) shift; QARGS=("$@"); break ;;
    -*) die "unknown option $1" ;;
    *) FILES+=("$1"); shift ;;
    esac
done
[ ${#FILES[@]} -ge 1 ] || die "usage: $0 [--socket PATH]... [--log FILE] [--timeout S] INIT_SCRIPT [EXTRA_FILE...] [-- QEMU_ARGS...]"
[ -x "$CACHE_DIR/qemu" ] && [ -f "$CACHE_DIR/vmlinuz" ] ||
    die "no guest environment in $CACHE_DIR: run tests/e2e/setup.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-guest.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
[ -n "$INITRD" ] || INITRD=$TMP/initrd.cpio.gz
"$HERE/mkinitramfs.sh" "$INITRD" "${FILES[@]}"

DEVARGS=()
for s in "${SOCKS[@]}"; do
    case $s in /*) ;; *) s=$PWD/$s ;; esac
    esc=$(printf '%s' "$s" | sed 's/\\/\\\\/g; s/"/\\"/g')
    DEVARGS+=(-device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$esc\",\"type\":\"unix\"}}")
done

[ -n "$LOG" ] || LOG=$TMP/console.log
T0=$(date +%s.%N)
set +e
timeout --kill-after=10 "$TIMEOUT" "$CACHE_DIR/qemu" \
    -accel tcg -m 512M \
    -object "$RAM" \
    -machine q35,memory-backend=mem \
    -nographic -no-reboot -nic none \
    -kernel "$CACHE_DIR/vmlinuz" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 quiet 8250.nr_uarts=8 ${UMDEV_E2E_APPEND:-}" \
    "${DEVARGS[@]}" "${QARGS[@]}" </dev/null 2>&1 | stdbuf -oL tr -d '\r' | tee "$LOG"
qrc=${PIPESTATUS[0]}
set -e
T1=$(date +%s.%N)
wall=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
grc=$(sed -n 's/.*E2E-INIT-EXIT rc=\([0-9]*\).*/\1/p' "$LOG" | tail -n 1)
printf 'run-guest: qemu rc=%s guest rc=%s wall=%ss\n' "$qrc" "${grc:-none}" "$wall" >&2
[ "$qrc" -eq 0 ] || exit "$qrc"
[ -n "$grc" ] || exit 125
exit "$grc"
