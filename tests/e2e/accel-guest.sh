# Guest side of tests/e2e/accel.sh (busybox sh, run by the initramfs /init).
# Finds the accel subdevice (1234:11ec, devices/accel/README.md), checks
# its PCI identity and BARs, then runs accel-tool on it: every queue's
# operations verified, an address fault, and timed MEMMOVE/FILL/CRC32C on
# queue 0 (ops/s). /e2e/accel.conf (written by accel.sh) sets BDF (where
# QEMU was told to put it), QUEUES (the type's queue count), COUNT, SIZE,
# DEPTH and SEED. Marker lines: E2E-ACCEL-*.
# shellcheck shell=sh disable=SC1091,SC2154  # accel.conf exists only in the guest
MARK=ACCEL
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/accel.conf || { bad "no /e2e/accel.conf"; exit 1; }
echo "E2E-ACCEL-CONF bdf=$BDF queues=$QUEUES count=$COUNT size=$SIZE depth=$DEPTH seed=$SEED"

find_device 0x1234 0x11ec "$BDF"
# devices/accel/README.md, "PCI identity": subsystem 1234:000K.
ids=$(device_ids)
want=$(printf '0x1234:0x11ec 0x1234:0x%04x 0x088000 0x01' "$QUEUES")
echo "E2E-ACCEL-IDS $ids (vendor:device subsystem class revision)"
[ "$ids" = "$want" ] || bad "identity '$ids', expected '$want'"
drv=$(device_driver)
[ -z "$drv" ] || bad "driver '$drv' bound the device; none should"

# BARs ("BARs"): 0 is 16 KiB, 2 is QUEUES pages rounded up to a power of
# two; both 64-bit memory (flags 0x...0204 in sysfs: MEM | MEM_64).
bar_size() {
    # shellcheck disable=SC2046  # the three fields of the line, split
    set -- $(sed -n "$(($1 + 1))p" "$dev/resource")
    [ "$(($2))" -eq 0 ] && { echo 0; return; }
    echo $(($2 - $1 + 1))
}
pages=1
while [ "$pages" -lt "$QUEUES" ]; do pages=$((pages * 2)); done
s0=$(bar_size 0) s2=$(bar_size 2)
echo "E2E-ACCEL-BARS bar0=$s0 bar2=$s2"
[ "$s0" -eq 16384 ] || bad "BAR0 is $s0 bytes, expected 16384"
[ "$s2" -eq $((pages * 4096)) ] || bad "BAR2 is $s2 bytes, expected $((pages * 4096))"
# 1 and 3 are the upper halves of the 64-bit BARs (sysfs shows them empty)
for b in 1 3 4 5; do
    [ "$(bar_size $b)" -eq 0 ] || bad "BAR$b is present"
done

if out=$(accel-tool -d "$bdf" -n "$COUNT" -s "$SIZE" -q "$DEPTH" -S "$SEED"); then
    rc=0
else
    rc=$?
fi
echo "$out" | sed 's/^/E2E-ACCEL-TOOL /'
[ "$rc" -eq 0 ] || bad "accel-tool exited $rc"
n=$(echo "$out" | grep -c '^check queue=.* ok$')
[ "$n" -eq "$QUEUES" ] || bad "$n of $QUEUES queues passed the operation checks"
n=$(echo "$out" | grep -c '^fault queue=.* ok$')
[ "$n" -eq "$QUEUES" ] || bad "$n of $QUEUES queues passed the fault check"
n=$(echo "$out" | grep -c '^bench op=')
[ "$n" -eq 3 ] || bad "$n of 3 timed runs completed"

if [ "$fail" -eq 0 ]; then
    echo "E2E-ACCEL-PASS"
fi
exit "$fail"
