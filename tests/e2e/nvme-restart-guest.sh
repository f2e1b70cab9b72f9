# Guest side of tests/e2e/nvme-restart.sh (busybox sh, run by the
# initramfs /init). The nvme subdevice (1234:11ed) under the kernel's nvme
# driver runs fio with verification (Debian's fio from the host's tree
# over 9p) while the host restarts the instance's worker five times:
# random 4 KiB O_DIRECT writes, JOBS jobs each on its own region at
# iodepth DEPTH, every block read back and checked (crc32c) every
# BACKLOG writes, for RUNTIME seconds. Pass: fio exits 0 with no error in
# any job and both writes and verifying reads done; the kernel said
# nothing about the controller meanwhile (no timeout, abort, reset,
# I/O error); the same controller after (device, driver, serial, state
# live, the same namespace).
# /e2e/nvme-restart.conf sets BDF, QUEUES, SIZE, JOBS, DEPTH, REGION
# (bytes per job), BACKLOG, RUNTIME.
# Marker lines: E2E-NVRS-*; the host restarts between E2E-NVRS-GO and
# E2E-NVRS-FIO-DONE.
# shellcheck shell=sh disable=SC1091,SC2153,SC2154  # the conf exists only in the guest
MARK=NVRS
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/nvme-restart.conf || { bad "no /e2e/nvme-restart.conf"; exit 1; }
echo "E2E-NVRS-CONF bdf=$BDF queues=$QUEUES jobs=$JOBS depth=$DEPTH region=$REGION runtime=$RUNTIME"

find_device 0x1234 0x11ed "$BDF"
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { bad "no /dev/nvme0n1"; dmesg | grep -i nvme; exit 1; }
drv=$(device_driver)
[ "$drv" = nvme ] || bad "driver '$drv' bound the device, expected nvme"
c=/sys/class/nvme/nvme0

count() { [ -e "$1" ] && echo $# || echo 0; }
# What identifies the controller and its namespace to the guest: compared
# after the restarts, so a re-probe, a reset or a new namespace shows.
identity() {
    echo "ids=$(device_ids | tr ' ' ',') driver=$(device_driver)" \
        "ctrl=$(readlink -f "$c/device") serial=$(sed 's/ *$//' "$c/serial")" \
        "state=$(cat "$c/state") ns=$(cat /sys/block/nvme0n1/size)" \
        "queues=$(count /sys/block/nvme0n1/mq/*)" \
        "irqs=$(cd "$dev/msi_irqs" 2>/dev/null && echo *)"
}
before=$(identity)
echo "E2E-NVRS-DEVICE $before"
case $before in
*state=live*) ;;
*) bad "the controller is not live: $before" ;;
esac

fio_mount || exit 1
echo "E2E-NVRS-FIO-VERSION $FIO_VERSION"

dmesg_lines=$(dmesg | wc -l)
echo "E2E-NVRS-GO"
fio_run --name=nvrs --filename=/dev/nvme0n1 --direct=1 --ioengine=libaio \
    --rw=randwrite --bs=4k --iodepth="$DEPTH" --numjobs="$JOBS" \
    --size="$REGION" --offset_increment="$REGION" \
    --verify=crc32c --verify_backlog="$BACKLOG" --verify_fatal=1 \
    --time_based --runtime="$RUNTIME" --output=/tmp/fio.out 2>/tmp/fio.stderr
rc=$?
echo "E2E-NVRS-FIO-DONE"
sed 's/^/E2E-NVRS-FIO /' /tmp/fio.out
sed 's/^/E2E-NVRS-FIO-STDERR /' /tmp/fio.stderr
[ "$rc" -eq 0 ] || bad "fio exited $rc"
# One "err= 0" per job, no other err=; reads (the verification) and
# writes done.
n=$(grep -c 'err= *0:' /tmp/fio.out)
[ "$n" -eq "$JOBS" ] || bad "$n of $JOBS fio jobs ended with err= 0"
grep 'err=' /tmp/fio.out | grep -v 'err= *0:' >/tmp/fio.err &&
    bad "fio errors: $(tr '\n' '|' </tmp/fio.err)"
grep -iE 'verify|error|fail' /tmp/fio.stderr >/tmp/fio.err &&
    bad "fio complained: $(tr '\n' '|' </tmp/fio.err)"
# The block layer's count for the namespace: writes, and the reads that
# verified them.
ios=$(sed -n 's|^ *nvme0n1: ios=\([0-9]*\)/\([0-9]*\).*|\1 \2|p' /tmp/fio.out)
echo "E2E-NVRS-IOS ${ios:-none} (read write)"
read -r nr nw <<EOF
$ios
EOF
if ! [ "${nr:-0}" -gt 0 ] || ! [ "${nw:-0}" -gt 0 ]; then
    bad "fio did not both read and write (ios '${ios:-}')"
fi

after=$(identity)
echo "E2E-NVRS-DEVICE-AFTER $after"
[ "$after" = "$before" ] || bad "the controller changed: before '$before', after '$after'"

# Nothing the kernel said during the run may be about the controller, PCI
# or a stall (a timeout, an abort, a reset, an I/O error, a re-probe).
dmesg | sed -n "$((dmesg_lines + 1)),\$p" >/tmp/dmesg.new
sed 's/^/E2E-NVRS-DMESG /' /tmp/dmesg.new
if grep -iE "nvme|${BDF#0000:}|pci|timeout|abort|reset|I/O error|blk_update|probe|irq|nobody cared|lockup|stall|hung|bug|warning|call trace" \
    /tmp/dmesg.new >/tmp/dmesg.bad; then
    bad "kernel messages during the run: $(tr '\n' '|' </tmp/dmesg.bad)"
fi

if [ "$fail" -eq 0 ]; then
    echo "E2E-NVRS-PASS"
fi
exit "$fail"
