# Guest side of tests/e2e/serial.sh (busybox sh, run by the initramfs /init).
# Finds the umdev serial card (4348:3253) bound to 8250_pci ("serial"), maps
# its two ttyS ports to BAR0/BAR1, then per port: sends a pattern to the
# host end, receives the host's pattern, and runs an MCR loopback transfer,
# each interrupt-driven (serial-tool counts the port's interrupts).
# /e2e/serial.conf (written by serial.sh) sets BDF (where QEMU was told to
# put the card), SEED, LEN and LOOP_LEN; the seeds of port N are SEED+2N+1 (guest -> host), SEED+2N+2 (host -> guest)
# and SEED+5+N (loopback), as serial-host.py has them.
# Marker lines: E2E-SERIAL-*.
# shellcheck shell=sh disable=SC1091,SC2154  # serial.conf exists only in the guest
MARK=SERIAL
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/serial.conf || { bad "no /e2e/serial.conf"; exit 1; }
echo "E2E-SERIAL-CONF bdf=$BDF seed=$SEED len=$LEN loop_len=$LOOP_LEN"
seed() { echo $(((SEED + $1) & 0xffffffff)); }
# "key=value ..." line -> value of key $2
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# ---- 1. the device, its driver and its ports --------------------------------
find_device 0x4348 0x3253 "$BDF"
ids=$(device_ids)
echo "E2E-SERIAL-IDS $ids (vendor:device subsystem class revision)"
# devices/serial/README.md, "PCI identity"
[ "$ids" = "0x4348:0x3253 0x4348:0x3253 0x070002 0x10" ] ||
    bad "identity '$ids', expected '0x4348:0x3253 0x4348:0x3253 0x070002 0x10'"
drv=$(device_driver)
echo "E2E-SERIAL-DRIVER=${drv:-<none>}"
[ "$drv" = serial ] || { bad "driver is '${drv:-<none>}', expected serial (8250_pci)"; exit 1; }
irq=$(cat "$dev/irq")
echo "E2E-SERIAL-IRQ=$irq"
[ "$irq" -gt 0 ] 2>/dev/null || { bad "no INTx line (irq '$irq')"; exit 1; }

# BAR0 and BAR1: the two ports' I/O windows (resource lines 1 and 2).
bar0=$(sed -n 1p "$dev/resource" | cut -d' ' -f1)
bar1=$(sed -n 2p "$dev/resource" | cut -d' ' -f1)
echo "E2E-SERIAL-BARS bar0=$bar0 bar1=$bar1"

# The ttys the driver registered for this device, mapped to ports by I/O
# base address. A tty's device is the PCI device itself on older kernels,
# a serial-base port below it (BDF:0/BDF:0.0) since Linux 6.5.
real=$(readlink -f "$dev")
tty0='' tty1='' n=0
for t in /sys/class/tty/ttyS*; do
    case $(readlink -f "$t/device") in
    "$real" | "$real"/*) ;;
    *) continue ;;
    esac
    name=${t##*/}
    n=$((n + 1))
    base=$(cat "/sys/class/tty/$name/port")
    echo "E2E-SERIAL-TTY $name port=$base irq=$(cat "/sys/class/tty/$name/irq")" \
         "type=$(cat "/sys/class/tty/$name/type")"
    if [ "$((base))" -eq "$((bar0))" ]; then
        tty0=$name
    elif [ "$((base))" -eq "$((bar1))" ]; then
        tty1=$name
    else
        bad "$name at I/O $base is neither BAR0 ($bar0) nor BAR1 ($bar1)"
    fi
    [ "$(cat "/sys/class/tty/$name/irq")" = "$irq" ] ||
        bad "$name uses irq $(cat "/sys/class/tty/$name/irq"), the device has $irq"
    # PORT_16550A is 4 (include/uapi/linux/serial_core.h).
    [ "$(cat "/sys/class/tty/$name/type")" = 4 ] || bad "$name is not a 16550A"
done
[ "$n" -eq 2 ] || bad "$n ttys belong to $bdf, expected 2"
if [ -z "$tty0" ] || [ -z "$tty1" ]; then
    bad "ports not found (port0='$tty0' port1='$tty1')"
    exit 1
fi
echo "E2E-SERIAL-PORTS port0=$tty0 port1=$tty1"
grep -E "^(${tty0#ttyS}|${tty1#ttyS}):" /proc/tty/driver/serial | sed 's/^/E2E-SERIAL-PROC /'

# What one trapped register access costs (informational: the transfer
# rates below are a small multiple of it; the 8250 driver makes about one
# access per byte sent, two per byte received, three per byte looped).
if out=$(serial-tool rtt "$bar0" 2000); then
    echo "E2E-SERIAL-RTT $out"
else
    echo "E2E-SERIAL-RTT unavailable"
fi

# The control channel to serial-host.py: QEMU's second ISA UART.
CTL=/dev/ttyS1
stty -F "$CTL" raw -echo 115200 || bad "stty on the control tty $CTL failed"

# ---- 2./3. per port: guest -> host, host -> guest, loopback ------------------
# The 8250 interrupt handler loops at most 512 times (PASS_LIMIT) and
# writes at most 16 bytes (the TX FIFO) per pass, so sending LEN bytes by
# interrupt takes at least LEN / 8192 interrupts; receiving at least one.
min_tx_irqs=$(((LEN + 8191) / 8192))
i=0
for tty in "$tty0" "$tty1"; do
    p=PORT$i
    if ! stty -F "/dev/$tty" raw -echo cs8 -parenb -cstopb -crtscts 115200; then
        bad "$p: stty on /dev/$tty failed"
        i=$((i + 1))
        continue
    fi
    # (-a also asks for the window size, which a serial port has not)
    echo "E2E-SERIAL-$p-STTY $(stty -F "/dev/$tty" -a 2>/dev/null | tr "\n" " ")"

    out=$(serial-tool send "/dev/$tty" "$irq" "$(seed $((2 * i + 1)))" "$LEN") ||
        bad "$p: send failed"
    echo "E2E-SERIAL-$p-SEND $out"
    n=$(field "$out" irqs)
    [ "${n:-0}" -ge "$min_tx_irqs" ] ||
        bad "$p: sending took ${n:-?} interrupts, expected at least $min_tx_irqs"

    out=$(serial-tool recv "/dev/$tty" "$irq" "$LEN" "/tmp/h2g$i.bin" \
        "$CTL" "port$i") || bad "$p: receive failed"
    echo "E2E-SERIAL-$p-RECV $out"
    n=$(field "$out" irqs)
    [ "${n:-0}" -ge 1 ] || bad "$p: receiving took ${n:-?} interrupts, expected some"
    serial-tool gen "$(seed $((2 * i + 2)))" "$LEN" >"/tmp/h2g$i.expect"
    if cmp "/tmp/h2g$i.bin" "/tmp/h2g$i.expect"; then
        echo "E2E-SERIAL-$p-H2G-MATCH"
    else
        bad "$p: the bytes from the host differ from the host's pattern"
    fi
    echo "E2E-SERIAL-$p-H2G-SHA256=$(sha256sum <"/tmp/h2g$i.bin" | cut -d' ' -f1)"

    out=$(serial-tool loop "/dev/$tty" "$irq" "$(seed $((5 + i)))" "$LOOP_LEN") ||
        bad "$p: loopback failed"
    echo "E2E-SERIAL-$p-LOOP $out"
    t=$(field "$out" token_bytes)
    n=$(field "$out" irqs)
    [ "${n:-0}" -ge 1 ] || bad "$p: loopback took ${n:-?} interrupts, expected some"

    # The driver's own counters: every byte the tests moved, and no other.
    # tx: pattern + loopback + END token; rx: pattern + loopback.
    line=$(grep "^${tty#ttyS}:" /proc/tty/driver/serial)
    echo "E2E-SERIAL-$p-COUNTERS $line"
    tx=$(echo "$line" | tr ' ' '\n' | sed -n 's/^tx:\(.*\)/\1/p')
    rx=$(echo "$line" | tr ' ' '\n' | sed -n 's/^rx:\(.*\)/\1/p')
    want_tx=$((LEN + LOOP_LEN + ${t:-0}))
    want_rx=$((LEN + LOOP_LEN))
    [ "$tx" = "$want_tx" ] || bad "$p: driver counted tx:$tx, expected $want_tx"
    [ "$rx" = "$want_rx" ] || bad "$p: driver counted rx:$rx, expected $want_rx"
    case $line in
    *uart:16550A*) ;;
    *) bad "$p: /proc/tty/driver/serial does not say 16550A" ;;
    esac
    i=$((i + 1))
done

if [ "$fail" -eq 0 ]; then
    echo "E2E-SERIAL-PASS"
fi
exit "$fail"
