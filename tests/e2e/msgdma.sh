#!/bin/bash
# tests/e2e/msgdma.sh [BUILD_DIR]
#
# Device DMA by message under a real VMM: guest RAM in QEMU's
# memory-backend-ram (not shared, as whenever share=on is forgotten), so
# QEMU maps it without an fd and the test device (umdev-testdev, 1234:11ef)
# reaches it only through DMA_READ/DMA_WRITE messages, which QEMU serves
# only between its own requests (under its big lock). The guest half
# (msgdma-guest.sh, with the static helper msgdma-tool) programs COUNT
# INVERT DMAs on an mlocked page and polls DMA_STATUS after each: every
# DMA must complete (status 0, the bytes inverted), every status read must
# be answered within MAX_READ_MS (a server that waits for its own DMA
# reply before answering deadlocks QEMU until its 5 s timeout, and QEMU
# then drops the device), the device must have asked QEMU for guest memory
# by message (QEMU's vfio_user trace), and the client must stay attached.
#
# Environment:
#   UMDEV_E2E_MSGDMA_COUNT        DMAs (default 20)
#   UMDEV_E2E_MSGDMA_MAX_READ_MS  bound of one status read (default 1000;
#                                 TCG on a loaded host takes a few ms)
#   UMDEV_E2E_TIMEOUT             bound of the QEMU run in seconds (default 180)
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/msgdma}: console.log,
# server.log (umdev-testdev --verbose), qemu-trace.log, result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init msgdma "${1:-}"

COUNT=${UMDEV_E2E_MSGDMA_COUNT:-20}
MAX_READ_MS=${UMDEV_E2E_MSGDMA_MAX_READ_MS:-1000}
case $COUNT$MAX_READ_MS in
*[!0-9]*) say "FAIL: UMDEV_E2E_MSGDMA_COUNT/MAX_READ_MS must be numbers"; exit 1 ;;
esac

TESTDEV=$BUILD_DIR/tests/umdev-testdev
TOOL=$BUILD_DIR/tests/e2e/msgdma-tool
e2e_need "umdev-testdev msgdma-tool" "$TESTDEV" "$TOOL"
e2e_static "$TOOL"

e2e_guest_env
e2e_artifacts msgdma console.log server.log qemu-trace.log result
e2e_start_testdev msgdma

SLOT=5
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
printf 'BDF=%s\nCOUNT=%s\n' "$BDF_WANT" "$COUNT" >"$TMP/msgdma.conf"
say "booting the guest (TCG, guest RAM not shared) with vfio-user-pci on $SOCK"
t=$(now)
"$HERE/run-guest.sh" --private-ram --timeout "${UMDEV_E2E_TIMEOUT:-180}" \
    --log "$ART/console.log" "$HERE/msgdma-guest.sh" "$HERE/guest-lib.sh" \
    "$TOOL" "$TMP/msgdma.conf:/e2e/msgdma.conf" \
    -- -device "$(e2e_device_json "$SLOT" "$SOCK")" \
    -trace 'vfio_user_*' -D "$ART/qemu-trace.log" >/dev/null
GUEST_RC=$?
T_BOOT=$(elapsed "$t" "$(now)")
sleep 0.2    # let the server log the detach
stop_server "$SRV_PID" 100 ||
    say "umdev-testdev did not exit within 10 s of SIGTERM"
SRV_PID=

# ---- verdict ---------------------------------------------------------------------
fail=0
C=$ART/console.log
e2e_guest_verdict MSGDMA msgdma-tool
SUMMARY=$(sed -n 's/^E2E-MSGDMA-TOOL summary //p' "$C" | head -n 1)
DONE=$(grep -c '^E2E-MSGDMA-TOOL dma .* status=0x0 ' "$C")
WORST_US=$(field "$SUMMARY" max_read_us)
BUSY=$(field "$SUMMARY" busy_reads)
if [ "$DONE" -ne "$COUNT" ]; then
    say "$DONE of $COUNT DMAs completed with status 0"
    fail=1
fi
if [ -z "$WORST_US" ] || [ "$WORST_US" -gt $((MAX_READ_MS * 1000)) ]; then
    say "slowest DMA_STATUS read: ${WORST_US:-?} us, bound ${MAX_READ_MS} ms"
    fail=1
fi
# QEMU received the device's DMA_READ and DMA_WRITE (commands 0xb, 0xc):
# two per INVERT.
REQS=$(grep -cE 'vfio_user_recv_request +command 0x[bc]$' \
    "$ART/qemu-trace.log" 2>/dev/null)
if [ "${REQS:-0}" -lt $((2 * COUNT)) ]; then
    say "QEMU's trace shows ${REQS:-0} DMA_READ/DMA_WRITE requests, expected at least $((2 * COUNT))"
    fail=1
fi
DETACHES=$(grep -c 'client detached' "$ART/server.log")
if [ "$DETACHES" -gt 1 ]; then
    say "the client detached $DETACHES times (QEMU dropped the device)"
    fail=1
fi

e2e_versions
say "device: ${BDF:-<not found>}; $DONE/$COUNT DMAs by message, slowest status read ${WORST_US:-?} us, ${BUSY:-?} reads found it busy; $REQS DMA requests in QEMU's trace"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG)"
e2e_qemu_messages
e2e_trace_errors || fail=1
e2e_server_errors ' failed: |warning|error|unexpected|refusing|malformed' 20 ||
    fail=1
[ "$SRV_RC" -eq 0 ] || [ "$SRV_RC" -eq 143 ] ||
    { say "umdev-testdev exited $SRV_RC"; fail=1; }

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "bdf=$BDF"
    echo "dmas=$DONE"
    echo "max_status_read_us=$WORST_US"
    echo "busy_reads=$BUSY"
    echo "qemu_dma_requests=$REQS"
    echo "setup_seconds=$T_SETUP"
    echo "boot_seconds=$T_BOOT"
} >"$ART/result"

e2e_finish "FAIL"
