# Guest side of bench/nvme-fio.sh (busybox sh, run by the initramfs /init).
# Two NVMe controllers of the same size: the umdev subdevice (model "umdev
# NVMe ...") and QEMU's own -device nvme (model "QEMU NVMe Ctrl", serial
# QEMU_SERIAL). Each fio job of JOBS runs on both, REPEATS times, the
# order of the two alternating from job to job and from repeat to repeat
# so that drift hits both. fio comes from the 9p tree (guest-lib.sh's
# fio_mount); each run's JSON goes to the writable 9p share "results"
# (the host's results directory), with the nvme lines of /proc/interrupts
# before and after. Around each run the guest leaves NAME.pre / NAME.post
# and waits (at most 10 s) for the host to answer NAME.pre.ok /
# NAME.post.ok after it has read umdev's counters.
# /e2e/fio.conf (written by nvme-fio.sh) sets SIZE, QEMU_SERIAL, UMDEV_MODEL,
# JOBS ("name:rw:bs:iodepth ..."), REPEATS, RUNTIME, RAMP, ENGINE.
# Marker lines: E2E-FIO-*.
# shellcheck shell=sh disable=SC1091,SC2153,SC2154  # fio.conf exists only in the guest
MARK=FIO
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/fio.conf || { bad "no /e2e/fio.conf"; exit 1; }
fio_mount || exit 1
echo "E2E-FIO-VERSION $FIO_VERSION"
mkdir -p /results
if ! mount -t 9p -o trans=virtio,version=9p2000.L results /results; then
    bad "cannot mount the results share (9p tag results)"
    exit 1
fi

# The block device of each controller: the disk's device is the
# controller itself, or (native multipath) its subsystem; both have
# model and serial. The controller's name (nvmeN) names its interrupts.
UMDEV_BLK='' QEMU_BLK='' UMDEV_CTRL='' QEMU_CTRL=''
i=0
while [ $i -lt 100 ]; do
    n=0
    for b in /sys/block/nvme*n*; do
        case ${b##*/} in *c*) continue ;; esac # a multipath path, not a disk
        [ -e "$b" ] && n=$((n + 1))
    done
    [ $n -ge 2 ] && break
    sleep 0.1
    i=$((i + 1))
done
for b in /sys/block/nvme*n*; do
    name=${b##*/}
    case $name in *c*) continue ;; esac
    [ -e "$b/device/model" ] || continue
    model=$(sed 's/ *$//' "$b/device/model")
    serial=$(sed 's/ *$//' "$b/device/serial")
    if [ -e "$b/device/cntlid" ]; then
        ctrl=$(basename "$(readlink -f "$b/device")")
    else
        set -- "$b"/device/nvme[0-9]*
        ctrl=${1##*/}
    fi
    sectors=$(cat "$b/size")
    set -- "$b"/mq/*
    echo "E2E-FIO-DISK $name ctrl=$ctrl model='$model' serial=$serial sectors=$sectors queues=$#"
    [ "$sectors" -eq $((SIZE / 512)) ] ||
        bad "$name has $sectors sectors, expected $((SIZE / 512))"
    case $model in
    "$UMDEV_MODEL") UMDEV_BLK=$name UMDEV_CTRL=$ctrl ;;
    "QEMU NVMe Ctrl")
        [ "$serial" = "$QEMU_SERIAL" ] && QEMU_BLK=$name QEMU_CTRL=$ctrl ;;
    esac
done
[ -n "$UMDEV_BLK" ] || { bad "no disk with model '$UMDEV_MODEL'"; exit 1; }
[ -n "$QEMU_BLK" ] || { bad "no QEMU NVMe disk with serial $QEMU_SERIAL"; exit 1; }
echo "E2E-FIO-DEVICES umdev=/dev/$UMDEV_BLK($UMDEV_CTRL) qemu=/dev/$QEMU_BLK($QEMU_CTRL)"
echo "umdev $UMDEV_BLK $UMDEV_CTRL" >/results/devices
echo "qemu $QEMU_BLK $QEMU_CTRL" >>/results/devices

# handshake FILE: leave FILE for the host, wait for FILE.ok.
handshake() {
    : >"$1"
    w=0
    while [ ! -e "$1.ok" ] && [ $w -lt 100 ]; do
        sleep 0.1
        w=$((w + 1))
    done
    [ -e "$1.ok" ] || echo "E2E-FIO-NOTE the host did not answer $1"
}

# run REPEAT JOB RW BS DEPTH DEV BLK
run() {
    name=r$1-$2-$6
    grep nvme /proc/interrupts >"/results/$name.irq-pre"
    handshake "/results/$name.pre"
    if fio_run --name="$2" --filename="/dev/$7" --direct=1 \
        --ioengine="$ENGINE" --rw="$3" --bs="$4" --iodepth="$5" \
        --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" \
        --norandommap --randrepeat=0 --lat_percentiles=1 \
        --percentile_list=50:90:99:99.9 \
        --output-format=json --output="/results/$name.json" \
        >"/results/$name.out" 2>&1; then
        echo "E2E-FIO-RUN $name ok"
    else
        bad "fio $name failed: $(tail -n 3 "/results/$name.out" | tr '\n' ' ')"
    fi
    handshake "/results/$name.post"
    grep nvme /proc/interrupts >"/results/$name.irq-post"
}

# Each job's first device alternates from job to job and from repeat to
# repeat.
r=1
while [ $r -le "$REPEATS" ]; do
    k=$r
    for j in $JOBS; do
        IFS=: read -r job rw bs depth <<EOF
$j
EOF
        if [ $((k % 2)) -eq 0 ]; then
            run $r "$job" "$rw" "$bs" "$depth" umdev "$UMDEV_BLK"
            run $r "$job" "$rw" "$bs" "$depth" qemu "$QEMU_BLK"
        else
            run $r "$job" "$rw" "$bs" "$depth" qemu "$QEMU_BLK"
            run $r "$job" "$rw" "$bs" "$depth" umdev "$UMDEV_BLK"
        fi
        k=$((k + 1))
    done
    r=$((r + 1))
done

errs=$(dmesg | grep -i 'nvme' | grep -iE 'timeout|abort|error|fail|disable' || true)
[ -z "$errs" ] || bad "kernel: $errs"
sync
umount /results
if [ "$fail" -eq 0 ]; then
    echo "E2E-FIO-PASS"
fi
exit "$fail"
