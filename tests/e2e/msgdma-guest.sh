# Guest side of tests/e2e/msgdma.sh (busybox sh, run by the initramfs /init).
# Finds the test device (1234:11ef) at the BDF /e2e/msgdma.conf names and
# runs msgdma-tool on it: COUNT INVERT DMAs on guest memory the server
# reaches only by messages, each polled through DMA_STATUS. Marker lines:
# E2E-MSGDMA-*.
# shellcheck shell=sh disable=SC1091,SC2154  # msgdma.conf exists only in the guest
MARK=MSGDMA
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/msgdma.conf || { bad "no /e2e/msgdma.conf"; exit 1; }
find_device 0x1234 0x11ef "$BDF"
if ! msgdma-tool "$dev" "$COUNT" >/tmp/tool.out 2>/tmp/tool.err; then
    bad "msgdma-tool failed"
fi
sed 's/^/E2E-MSGDMA-TOOL /' /tmp/tool.out
cat /tmp/tool.err
grep -q '^summary ' /tmp/tool.out || bad "msgdma-tool printed no summary"
[ "$fail" -eq 0 ] && echo "E2E-MSGDMA-PASS"
exit "$fail"
