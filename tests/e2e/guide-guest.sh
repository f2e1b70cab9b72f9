# Guest side of tests/e2e/guide.sh (busybox sh, run by the initramfs /init,
# which powers off afterwards as docs/QEMU.md's guest is shut down): the
# serial card the guide attaches enumerates as 4348:3253 and its config
# space reads back its IDs through vfio-user. Marker lines: E2E-GUIDE-*.
# shellcheck shell=sh disable=SC2034  # MARK is guest-lib.sh's
MARK=GUIDE
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

dev=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x4348 ] && [ "$(cat "$d/device")" = 0x3253 ]; then
        dev=$d
    fi
done
if [ -z "$dev" ]; then
    bad "no 4348:3253 device on the PCI bus"
    for d in /sys/bus/pci/devices/*; do
        echo "  ${d##*/} $(cat "$d/vendor"):$(cat "$d/device")"
    done
    exit 1
fi
echo "E2E-GUIDE-BDF=${dev##*/}"
echo "E2E-GUIDE-IDS $(device_ids) driver=$(device_driver)"
ids=$(hexdump -n 4 -e '1/4 "%08x"' "$dev/config")
[ "$ids" = 32534348 ] || bad "config space reads $ids, expected 32534348"
[ "$fail" -eq 0 ] && echo "E2E-GUIDE-PASS"
exit "$fail"
