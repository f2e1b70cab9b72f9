# Guest side of tests/e2e/accel-restart.sh (busybox sh, run by the
# initramfs /init). The accel subdevice (1234:11ec) bound to
# uio_pci_generic, so that guest userspace gets its INTx interrupts;
# accel-tool then keeps DEPTH descriptors in flight on every queue for
# RUN_SECONDS, interrupt-driven, every descriptor verified, while the host
# restarts the instance's worker five times. Pass: accel-tool exits 0
# (nothing lost, done twice, wrong or left without its interrupt; the
# device's COMPLETED equals what was submitted on every queue; the error
# log empty) with submitted == completed == verified on every queue and
# at least one interrupt per queue; the kernel said nothing about the
# device, its interrupt or PCI meanwhile; the same device after (IDs,
# BARs, irq, driver).
# /e2e/accel-restart.conf sets BDF, QUEUES, DEPTH, RUN_SECONDS, SEED.
# Marker lines: E2E-ACCRS-*; the host restarts between E2E-ACCRS-GO and
# E2E-ACCRS-RUN-DONE.
# shellcheck shell=sh disable=SC1091,SC2153,SC2154  # the conf exists only in the guest
MARK=ACCRS
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/accel-restart.conf || { bad "no /e2e/accel-restart.conf"; exit 1; }
echo "E2E-ACCRS-CONF bdf=$BDF queues=$QUEUES depth=$DEPTH seconds=$RUN_SECONDS seed=$SEED"
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

find_device 0x1234 0x11ec "$BDF"
echo "1234 11ec" >/sys/bus/pci/drivers/uio_pci_generic/new_id ||
    { bad "cannot give the device to uio_pci_generic"; exit 1; }
drv=$(device_driver)
[ "$drv" = uio_pci_generic ] || { bad "driver '${drv:-<none>}', expected uio_pci_generic"; exit 1; }
set -- "$dev"/uio/uio*
[ -e "$1" ] || { bad "no uio device under $dev/uio"; exit 1; }
uio=/dev/${1##*/}
[ -c "$uio" ] || { bad "no $uio"; exit 1; }
# The line as the enabled device has it (the driver's probe routed it).
irq=$(cat "$dev/irq")
[ "$irq" -gt 0 ] 2>/dev/null || { bad "no INTx line (irq '$irq')"; exit 1; }
grep -q "^ *$irq:.*uio_pci_generic" /proc/interrupts ||
    { bad "line $irq is not uio_pci_generic's in /proc/interrupts"; exit 1; }

identity() {
    echo "ids=$(device_ids | tr ' ' ',') driver=$(device_driver) irq=$(cat "$dev/irq")" \
        "uio=${uio##*/} bars=$(head -n 3 "$dev/resource" | cut -d' ' -f1-2 | tr ' \n' ':,')"
}
before=$(identity)
echo "E2E-ACCRS-DEVICE $before"

# The line's count in /proc/interrupts (the first CPU column; the guest
# has one): interrupts the kernel took for the device.
irq_count() { sed -n "s/^ *$irq: *\([0-9]*\) .*/\1/p" /proc/interrupts; }
irq0=$(irq_count)
dmesg_lines=$(dmesg | wc -l)
echo "E2E-ACCRS-GO"
if out=$(accel-tool -d "$bdf" -R "$RUN_SECONDS" -u "$uio" -q "$DEPTH" -S "$SEED"); then
    rc=0
else
    rc=$?
fi
echo "E2E-ACCRS-RUN-DONE"
irq1=$(irq_count)
echo "$out" | sed 's/^/E2E-ACCRS-TOOL /'
[ "$rc" -eq 0 ] || bad "accel-tool exited $rc"

# Its own counts, queue by queue: everything submitted completed and was
# verified, each queue was signalled, and the whole run took interrupts.
n=0
for q in $(seq 0 $((QUEUES - 1))); do
    l=$(echo "$out" | grep "^run queue=$q ")
    [ -n "$l" ] || { bad "queue $q: no result line"; continue; }
    s=$(field "$l" submitted) c=$(field "$l" completed) v=$(field "$l" verified)
    sig=$(field "$l" signals)
    if ! [ "${s:-0}" -gt 0 ] || [ "$s" != "$c" ] || [ "$c" != "$v" ]; then
        bad "queue $q: submitted ${s:-?}, completed ${c:-?}, verified ${v:-?}"
    fi
    [ "${sig:-0}" -gt 0 ] || bad "queue $q: no interrupt named it"
    l=$(echo "$out" | grep "^queue idx=$q ")
    [ "$(field "$l" completed)" = "$(field "$l" submitted)" ] ||
        bad "queue $q: the device's COMPLETED is not what was submitted: $l"
    n=$((n + ${v:-0}))
done
l=$(echo "$out" | grep '^run end ')
irqs=$(field "$l" interrupts)
echo "E2E-ACCRS-COUNTS verified=$n interrupts=${irqs:-?} kernel_interrupts=$((irq1 - irq0))"
[ "${irqs:-0}" -gt 0 ] || bad "accel-tool saw no interrupt"
[ $((irq1 - irq0)) -ge "${irqs:-0}" ] ||
    bad "the kernel counted $((irq1 - irq0)) interrupts on line $irq, accel-tool ${irqs:-?}"

after=$(identity)
echo "E2E-ACCRS-DEVICE-AFTER $after"
[ "$after" = "$before" ] || bad "the device changed: before '$before', after '$after'"

# Nothing the kernel said during the run may be about the device, its
# interrupt line or PCI (an unhandled interrupt, a disabled line, a
# re-probe, a reset), or be a warning, a stall or a lockup.
dmesg | sed -n "$((dmesg_lines + 1)),\$p" >/tmp/dmesg.new
sed 's/^/E2E-ACCRS-DMESG /' /tmp/dmesg.new
if grep -iE "${BDF#0000:}|uio|pci|irq|nobody cared|disabling|probe|reset|lockup|stall|hung|bug|warning|call trace" \
    /tmp/dmesg.new >/tmp/dmesg.bad; then
    bad "kernel messages during the run: $(tr '\n' '|' </tmp/dmesg.bad)"
fi

if [ "$fail" -eq 0 ]; then
    echo "E2E-ACCRS-PASS"
fi
exit "$fail"
