# Guest side of tests/e2e/serial-upgrade.sh (busybox sh, run by the
# initramfs /init). The serial card (4348:3253) under 8250_pci, both ports
# at once: per port LEN bytes guest -> host, then LEN bytes host -> guest,
# then LOOP_LEN bytes of MCR loopback and the END token (the phases
# serial-host.py follows), while the host replaces umdevd three times
# (serial-upgrade.sh) or restarts the instance's worker five times
# (serial-restart.sh).
# Nothing of that may show here: every byte exact, the driver's byte
# counters exact and its error counters (fe, pe, brk, oe, bo) absent, no
# kernel message about the card or its ports, and the same device (path,
# IDs, driver, ttys, irq) before and after.
# /e2e/serial-upgrade.conf sets BDF, SEED, LEN, LOOP_LEN; the seeds of port
# N are SEED+2N+1 (guest -> host), SEED+2N+2 (host -> guest) and SEED+5+N
# (loopback), as serial-host.py has them.
# Marker lines: E2E-SERUP-*; the host times its replacements from the
# phase markers (E2E-SERUP-GO, -G2H-DONE, -H2G-GO, -H2G-PORT0-DONE,
# -H2G-DONE, -DONE).
# shellcheck shell=sh disable=SC1091,SC2154  # the conf exists only in the guest
MARK=SERUP
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/serial-upgrade.conf || { bad "no /e2e/serial-upgrade.conf"; exit 1; }
echo "E2E-SERUP-CONF bdf=$BDF seed=$SEED len=$LEN loop_len=$LOOP_LEN"
seed() { echo $(((SEED + $1) & 0xffffffff)); }
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# ---- the device as it is before ------------------------------------------
find_device 0x4348 0x3253 "$BDF"
drv=$(device_driver)
[ "$drv" = serial ] || { bad "driver is '${drv:-<none>}', expected serial (8250_pci)"; exit 1; }
irq=$(cat "$dev/irq")
[ "$irq" -gt 0 ] 2>/dev/null || { bad "no INTx line (irq '$irq')"; exit 1; }
bar0=$(sed -n 1p "$dev/resource" | cut -d' ' -f1)
bar1=$(sed -n 2p "$dev/resource" | cut -d' ' -f1)

# What identifies the card and its ports to the guest: compared after the
# transfers, so a re-probe or a reset that re-registered the ports shows.
identity() {
    real=$(readlink -f "$dev")
    echo "ids=$(device_ids | tr ' ' ',') driver=$(device_driver) irq=$(cat "$dev/irq")"
    for t in /sys/class/tty/ttyS*; do
        case $(readlink -f "$t/device") in
        "$real" | "$real"/*) ;;
        *) continue ;;
        esac
        n=${t##*/}
        echo "$n=$(cat "$t/port"),$(cat "$t/irq"),$(cat "$t/type")"
    done
}
before=$(identity | tr '\n' ' ')
echo "E2E-SERUP-DEVICE $before"

tty0='' tty1=''
for t in /sys/class/tty/ttyS*; do
    case $(readlink -f "$t/device") in
    "$(readlink -f "$dev")" | "$(readlink -f "$dev")"/*) ;;
    *) continue ;;
    esac
    base=$(cat "$t/port")
    if [ "$((base))" -eq "$((bar0))" ]; then
        tty0=${t##*/}
    elif [ "$((base))" -eq "$((bar1))" ]; then
        tty1=${t##*/}
    fi
done
if [ -z "$tty0" ] || [ -z "$tty1" ]; then
    bad "ports not found (port0='$tty0' port1='$tty1')"
    exit 1
fi
echo "E2E-SERUP-PORTS port0=$tty0 port1=$tty1"

CTL=/dev/ttyS1
stty -F "$CTL" raw -echo 115200 || bad "stty on the control tty $CTL failed"
for t in "$tty0" "$tty1"; do
    stty -F "/dev/$t" raw -echo cs8 -parenb -cstopb -crtscts 115200 ||
        { bad "stty on /dev/$t failed"; exit 1; }
done

# ---- the transfers, both ports at once ---------------------------------------
# Phase by phase, so the host knows from the markers which direction is
# under way: guest -> host (E2E-SERUP-GO .. E2E-SERUP-G2H-DONE), host ->
# guest (E2E-SERUP-H2G-GO .. E2E-SERUP-H2G-DONE), then loopback and the
# END token. Sending, both ports at once; receiving, one port after the
# other: a port receiving keeps the guest's CPU in its interrupt handler
# (serial-upgrade.sh says why), and the other's READY line and its
# reader's wake-ups would wait for that, its idle timeout running.

# step WHAT I TTY: serial-tool WHAT on port I (TTY), its line to /tmp/portI.
step() {
    case $1 in
    send) set -- "$@" "$irq" "$(seed $(($2 * 2 + 1)))" "$LEN" ;;
    recv) set -- "$@" "$irq" "$LEN" "/tmp/h2g$2.bin" "$CTL" "port$2" ;;
    loop) set -- "$@" "$irq" "$(seed $((5 + $2)))" "$LOOP_LEN" ;;
    esac
    what=$1 i=$2 tty=$3
    shift 3
    serial-tool "$what" "/dev/$tty" "$@" >>"/tmp/port$i" 2>&1 ||
        echo "FAILED $what" >>"/tmp/port$i"
}
# on_both WHAT: step WHAT on both ports at once.
on_both() {
    step "$1" 0 "$tty0" &
    p0=$!
    step "$1" 1 "$tty1" &
    p1=$!
    wait "$p0" "$p1"
}
dmesg_lines=$(dmesg | wc -l)
echo "E2E-SERUP-GO"
on_both send
echo "E2E-SERUP-G2H-DONE"
echo "E2E-SERUP-H2G-GO"
step recv 0 "$tty0"
echo "E2E-SERUP-H2G-PORT0-DONE"
step recv 1 "$tty1"
echo "E2E-SERUP-H2G-DONE"
on_both loop
echo "E2E-SERUP-DONE"

# ---- what the guest saw ---------------------------------------------------------
# The 8250 interrupt handler writes at most 16 bytes per pass and makes at
# most 512 passes per interrupt; the port shares its line with the other,
# so this is a floor, not a count.
min_tx_irqs=$(((LEN + 8191) / 8192))
i=0
for tty in "$tty0" "$tty1"; do
    p=PORT$i
    grep -q '^FAILED' "/tmp/port$i" && bad "$p: $(grep '^FAILED' "/tmp/port$i" | tr '\n' ' ')"
    grep -v '^\(send\|recv\|loop\) ' "/tmp/port$i" | sed "s/^/E2E-SERUP-$p-TOOL /"
    s=$(grep '^send ' "/tmp/port$i")
    r=$(grep '^recv ' "/tmp/port$i")
    l=$(grep '^loop ' "/tmp/port$i")
    echo "E2E-SERUP-$p-SEND $s"
    echo "E2E-SERUP-$p-RECV $r"
    echo "E2E-SERUP-$p-LOOP $l"
    n=$(field "$s" irqs)
    [ "${n:-0}" -ge "$min_tx_irqs" ] ||
        bad "$p: sending took ${n:-?} interrupts, expected at least $min_tx_irqs"
    n=$(field "$r" irqs)
    [ "${n:-0}" -ge 1 ] || bad "$p: receiving took ${n:-?} interrupts, expected some"
    serial-tool gen "$(seed $((2 * i + 2)))" "$LEN" >"/tmp/h2g$i.expect"
    if cmp "/tmp/h2g$i.bin" "/tmp/h2g$i.expect"; then
        echo "E2E-SERUP-$p-H2G-MATCH"
    else
        bad "$p: the bytes from the host differ from the host's pattern"
    fi
    echo "E2E-SERUP-$p-H2G-SHA256=$(sha256sum <"/tmp/h2g$i.bin" | cut -d' ' -f1)"

    # The driver's counters: every byte moved and no other; and no error
    # counted (uart_line_info prints fe, pe, brk, oe, bo only when not 0).
    line=$(grep "^${tty#ttyS}:" /proc/tty/driver/serial)
    echo "E2E-SERUP-$p-COUNTERS $line"
    tx=$(echo "$line" | tr ' ' '\n' | sed -n 's/^tx:\(.*\)/\1/p')
    rx=$(echo "$line" | tr ' ' '\n' | sed -n 's/^rx:\(.*\)/\1/p')
    want_tx=$((LEN + LOOP_LEN + $(field "$l" token_bytes)))
    want_rx=$((LEN + LOOP_LEN))
    [ "$tx" = "$want_tx" ] || bad "$p: driver counted tx:$tx, expected $want_tx"
    [ "$rx" = "$want_rx" ] || bad "$p: driver counted rx:$rx, expected $want_rx"
    for e in fe pe brk oe bo; do
        v=$(echo "$line" | tr ' ' '\n' | sed -n "s/^$e:\(.*\)/\1/p")
        [ -z "$v" ] || [ "$v" = 0 ] || bad "$p: the driver counted $e:$v"
    done
    i=$((i + 1))
done

# The same device, as it was: no re-probe, no reset that re-registered the
# ports, config space still answering with the card's identity.
after=$(identity | tr '\n' ' ')
echo "E2E-SERUP-DEVICE-AFTER $after"
[ "$after" = "$before" ] || bad "the device changed: before '$before', after '$after'"

# Nothing the kernel said during the transfers may be about the card, its
# ports or PCI (a serial error, an unhandled interrupt, a re-probe), or be
# a warning, a stall or a lockup. (What TCG's load makes it say about its
# clocks is fine: "clocksource: Long readout interval", "sched: DL
# replenish lagged".)
dmesg | sed -n "$((dmesg_lines + 1)),\$p" >/tmp/dmesg.new
sed 's/^/E2E-SERUP-DMESG /' /tmp/dmesg.new
if grep -iE "ttyS|serial|8250|uart|${BDF#0000:}|pci|irq|nobody cared|overrun|probe|reset|lockup|stall|hung|bug|warning|call trace" \
    /tmp/dmesg.new >/tmp/dmesg.bad; then
    bad "kernel messages during the transfers: $(tr '\n' '|' </tmp/dmesg.bad)"
fi

if [ "$fail" -eq 0 ]; then
    echo "E2E-SERUP-PASS"
fi
exit "$fail"
