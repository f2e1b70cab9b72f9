# Guest side of tests/e2e/nvme.sh (busybox sh, run by the initramfs /init).
# The nvme subdevice (1234:11ed, devices/nvme/README.md) under the guest
# kernel's own nvme driver: identity and driver, the namespace's size, the
# model and serial from Identify, the I/O queues the driver created; then
# a seeded pattern written with O_DIRECT and read back, a discard read
# back as zeroes, a controller reset in the middle of writes losing
# nothing, a load of concurrent 4 KiB readers and writers between two
# markers (the host counts socket messages there), and an ext2 file
# system made, filled and unmounted for the host to read. /e2e/nvme.conf (written by nvme.sh) sets BDF, QUEUES,
# SIZE (bytes), SERIAL, DATA_OFF and DATA_LEN (bytes, MiB multiples),
# DISCARD_OFF and DISCARD_LEN, FS_MB, LOAD_OFF (bytes), LOAD_JOBS and
# LOAD_COUNT; /e2e/pattern is the pattern.
# Marker lines: E2E-NVME-*.
# shellcheck shell=sh disable=SC1091,SC2153,SC2154  # nvme.conf exists only in the guest
MARK=NVME
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/nvme.conf || { bad "no /e2e/nvme.conf"; exit 1; }
echo "E2E-NVME-CONF bdf=$BDF queues=$QUEUES size=$SIZE"

find_device 0x1234 0x11ed "$BDF"
ids=$(device_ids)
want=$(printf '0x1234:0x11ed 0x1234:0x%04x 0x010802 0x01' "$QUEUES")
echo "E2E-NVME-IDS $ids (vendor:device subsystem class revision)"
[ "$ids" = "$want" ] || bad "identity '$ids', expected '$want'"

# A PCI Express function: 4 KiB of config space reach the guest (QEMU's
# vfio-pci keeps a device with a 256-byte config region conventional).
cfgsize=$(wc -c <"$dev/config")
[ "$cfgsize" -eq 4096 ] || bad "config space is $cfgsize bytes, expected 4096"

# The driver probes asynchronously: wait for the namespace.
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { bad "no /dev/nvme0n1"; dmesg | grep -i nvme; exit 1; }
drv=$(device_driver)
[ "$drv" = nvme ] || bad "driver '$drv' bound the device, expected nvme"

c=/sys/class/nvme/nvme0
model=$(sed 's/ *$//' "$c/model")
serial=$(sed 's/ *$//' "$c/serial")
sectors=$(cat /sys/block/nvme0n1/size)
set -- /sys/block/nvme0n1/mq/*
nq=$#
echo "E2E-NVME-ID model='$model' serial=$serial sectors=$sectors queues=$nq"
[ "$model" = "umdev NVMe nvme-${QUEUES}q" ] || bad "model '$model'"
[ "$serial" = "$SERIAL" ] || bad "serial '$serial', expected $SERIAL"
[ "$sectors" -eq $((SIZE / 512)) ] || bad "$sectors sectors, expected $((SIZE / 512))"
[ "$nq" -eq "$QUEUES" ] || bad "$nq I/O queues, expected $QUEUES"

MB=1048576
# 1. The pattern, written with O_DIRECT and read back.
dd if=/e2e/pattern of=/dev/nvme0n1 bs=$MB seek=$((DATA_OFF / MB)) \
    oflag=direct conv=notrunc 2>/dev/null || bad "writing the pattern failed"
dd if=/dev/nvme0n1 of=/tmp/back bs=$MB skip=$((DATA_OFF / MB)) \
    count=$((DATA_LEN / MB)) iflag=direct 2>/dev/null || bad "reading it back failed"
if cmp -s /e2e/pattern /tmp/back; then
    echo "E2E-NVME-DATA ok $DATA_LEN bytes"
else
    bad "the pattern read back differs"
fi
rm -f /tmp/back

# 2. A discard inside it reads back as zeroes.
blkdiscard -o "$DISCARD_OFF" -l "$DISCARD_LEN" /dev/nvme0n1 || bad "blkdiscard failed"
nz=$(dd if=/dev/nvme0n1 bs=$MB skip=$((DISCARD_OFF / MB)) \
    count=$((DISCARD_LEN / MB)) iflag=direct 2>/dev/null | od -An -v -tx1 |
    tr -d ' \n' | tr -d 0 | wc -c)
if [ "$nz" -eq 0 ]; then
    echo "E2E-NVME-DISCARD ok"
else
    bad "discarded range has $nz non-zero digits"
fi

# 3. A controller reset while writes are in flight: every write dd saw
# complete is there afterwards.
R_OFF=$((DATA_OFF + DATA_LEN))
dd if=/e2e/pattern of=/dev/nvme0n1 bs=65536 seek=$((R_OFF / 65536)) \
    oflag=direct conv=notrunc 2>/dev/null &
ddpid=$!
sleep 0.2
# The reset must land while the writes run, or it proves nothing.
kill -0 "$ddpid" 2>/dev/null || bad "the writes ended before the reset"
echo 1 >"$c/reset_controller" || bad "reset_controller failed"
wait "$ddpid" || bad "writes around the reset failed"
dd if=/dev/nvme0n1 of=/tmp/back bs=$MB skip=$((R_OFF / MB)) \
    count=$((DATA_LEN / MB)) iflag=direct 2>/dev/null || bad "reading after the reset failed"
if cmp -s /e2e/pattern /tmp/back; then
    echo "E2E-NVME-RESET ok"
else
    bad "data differs after the reset"
fi
rm -f /tmp/back

# 4. Load: LOAD_JOBS processes each doing LOAD_COUNT 4 KiB O_DIRECT I/Os
# at once (half reading the pattern, half writing zeroes into the room
# after it), so several commands are always in flight. The host counts
# the socket messages the instance handled between the markers (taken
# while the guest is idle, so the counters hold still); LOAD-IOS tells
# it how many I/O commands at least fell in between.
echo "E2E-NVME-LOAD-BEGIN"
sleep 2
half=$((LOAD_JOBS / 2))
j=0
pids=
while [ $j -lt "$half" ]; do
    dd if=/dev/nvme0n1 of=/dev/null bs=4096 count="$LOAD_COUNT" \
        skip=$((DATA_OFF / 4096 + j * LOAD_COUNT)) iflag=direct 2>/dev/null &
    pids="$pids $!"
    dd if=/dev/zero of=/dev/nvme0n1 bs=4096 count="$LOAD_COUNT" \
        seek=$((LOAD_OFF / 4096 + j * LOAD_COUNT)) oflag=direct \
        conv=notrunc 2>/dev/null &
    pids="$pids $!"
    j=$((j + 1))
done
t0=$(cut -d' ' -f1 /proc/uptime)
for p in $pids; do
    wait "$p" || bad "a load job failed"
done
t1=$(cut -d' ' -f1 /proc/uptime)
echo "E2E-NVME-LOAD-IOS $((half * 2 * LOAD_COUNT)) in $t0..$t1 s of uptime"
echo "E2E-NVME-LOAD-END"
sleep 2

# 5. A file system in the first FS_MB MiB, for the host to read.
if mke2fs -q /dev/nvme0n1 $((FS_MB * 1024)) >/dev/null 2>&1; then
    mkdir -p /mnt
    if mount -t ext2 /dev/nvme0n1 /mnt; then
        cp /e2e/pattern /mnt/pattern || bad "copying the pattern in failed"
        echo "hello from the guest" >/mnt/hello.txt || bad "writing a file failed"
        sync
        umount /mnt || bad "umount failed"
        echo "E2E-NVME-FS ok"
    else
        bad "mount failed"
    fi
else
    bad "mke2fs failed"
fi

# The driver must not have timed out, aborted, failed or reset anything
# on its own (the reset the test asked for logs no such line).
errs=$(dmesg | grep -i 'nvme' | grep -iE 'timeout|abort|error|fail|disable|reset' || true)
[ -z "$errs" ] || bad "kernel: $errs"
dmesg | grep -i 'nvme' | sed 's/^/E2E-NVME-DMESG /'

if [ "$fail" -eq 0 ]; then
    echo "E2E-NVME-PASS"
fi
exit "$fail"
