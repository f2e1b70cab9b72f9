# Guest side of tests/e2e/smoke.sh (busybox sh, run by the initramfs /init).
# Finds the umdev test device (1234:11ef), checks its BARs and reads the ID
# register of BAR0 through /dev/mem (devmem). Marker lines: E2E-SMOKE-*.
# shellcheck disable=SC2154,SC2034  # startN/sizeN/flagsN are read and set through eval
fail=0
bad() { echo "E2E-SMOKE-FAIL $*"; fail=1; }

dev=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11ef ]; then
        dev=$d
    fi
done
echo "E2E-SMOKE-PCI-LIST:"
for d in /sys/bus/pci/devices/*; do
    echo "  ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") class=$(cat "$d/class")"
done
if [ -z "$dev" ]; then
    bad "no 1234:11ef device on the PCI bus"
    exit 1
fi
bdf=${dev##*/}
echo "E2E-SMOKE-BDF=$bdf"
echo "E2E-SMOKE-IDS vendor=$(cat "$dev/vendor") device=$(cat "$dev/device")" \
     "subsys=$(cat "$dev/subsystem_vendor"):$(cat "$dev/subsystem_device")" \
     "class=$(cat "$dev/class") revision=$(cat "$dev/revision" 2>/dev/null)" \
     "irq=$(cat "$dev/irq")"
echo "E2E-SMOKE-CONFIG:"
hexdump -C -n 256 "$dev/config"
[ -d "$dev/driver" ] && echo "E2E-SMOKE-DRIVER=$(basename "$(readlink "$dev/driver")")"

# resource: one "start end flags" line per BAR (0..5), then the ROM, ...
start0=0 start2=0 flags0=0 flags2=0
size0=0 size1=0 size2=0 size3=0 size4=0 size5=0
i=0
while read -r start end flags; do
    if [ "$((end))" -ne 0 ]; then
        size=$((end - start + 1))
    else
        size=0
    fi
    echo "E2E-SMOKE-RES$i start=$start size=$size flags=$flags"
    eval "start$i=$start size$i=$size flags$i=$flags"
    i=$((i + 1))
done <"$dev/resource"
[ "$size0" -eq 4096 ] || bad "BAR0 size $size0, expected 4096"
[ "$size2" -eq 65536 ] || bad "BAR2 size $size2, expected 65536"
# IORESOURCE_MEM 0x200, IORESOURCE_MEM_64 0x00100000, IORESOURCE_PREFETCH 0x2000
[ $((flags0 & 0x200)) -ne 0 ] || bad "BAR0 is not a memory BAR (flags $flags0)"
[ $((flags2 & 0x100000)) -ne 0 ] || bad "BAR2 is not 64-bit (flags $flags2)"
for n in 1 3 4 5; do
    eval "s=\$size$n"
    [ "$s" -eq 0 ] || bad "BAR$n unexpectedly present (size $s)"
done

cmd=$(hexdump -s 4 -n 2 -e '1/2 "%04x"' "$dev/config")
echo "E2E-SMOKE-COMMAND=0x$cmd"
if [ $((0x$cmd & 2)) -eq 0 ]; then
    echo "E2E-SMOKE: memory decoding off; enabling the device through sysfs"
    echo 1 >"$dev/enable"
    echo "E2E-SMOKE-COMMAND=0x$(hexdump -s 4 -n 2 -e '1/2 "%04x"' "$dev/config")"
fi

id=$(devmem "$start0" 32)
echo "E2E-SMOKE-ID=$id"
[ "$((id))" -eq $((0x7e57de71)) ] || bad "ID register reads $id, expected 0x7E57DE71"
# The other registers, for the record (reads have no side effects).
for off in 0x04 0x08 0x20 0x24 0x28 0x30; do
    echo "E2E-SMOKE-BAR0+$off=$(devmem $((start0 + off)) 32)"
done
# A scratch register round trip (trapped BAR0 write then read).
devmem $((start0 + 4)) 32 0xa5a55a5a
v=$(devmem $((start0 + 4)) 32)
echo "E2E-SMOKE-SCRATCH=$v"
[ "$((v))" -eq $((0xa5a55a5a)) ] || bad "scratch reads $v after writing 0xA5A55A5A"
# BAR2: offset 0 is trapped, 0x1000.. is a sparse-mmap area (shared memory).
for off in 0x0 0x1000 0xfffc; do
    a=$((start2 + off))
    devmem $a 32 $((0x5eed0000 + off))
    v=$(devmem $a 32)
    echo "E2E-SMOKE-BAR2+$off=$v"
    [ "$((v))" -eq $((0x5eed0000 + off)) ] || bad "BAR2+$off reads $v after writing $(printf 0x%x $((0x5eed0000 + off)))"
done

if [ "$fail" -eq 0 ]; then
    echo "E2E-SMOKE-PASS"
fi
exit "$fail"
