# shellcheck shell=sh disable=SC2034  # variables set for the sourcing script
# What the guest halves of the e2e tests share (busybox sh, in the
# initramfs at /e2e/guest-lib.sh: the host script passes it to
# run-guest.sh). Source it after setting MARK (the marker word: ACCEL,
# SERIAL); it sets fail=0.

fail=0
# bad MESSAGE: report a failed check (E2E-MARK-FAIL) and remember it.
bad() { echo "E2E-$MARK-FAIL $*"; fail=1; }

# find_device VENDOR DEVICE WANT_BDF: dev is the sysfs directory of the one
# PCI function VENDOR:DEVICE (0x1234 0x11ec), bdf its address, printed as
# E2E-MARK-BDF; it must be at WANT_BDF (where QEMU was told to put it).
# No such device: the bus is listed and the script exits 1.
find_device() {
    dev=
    for d in /sys/bus/pci/devices/*; do
        if [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ]; then
            [ -z "$dev" ] || bad "two ${1#0x}:${2#0x} devices: $dev and $d"
            dev=$d
        fi
    done
    if [ -z "$dev" ]; then
        bad "no ${1#0x}:${2#0x} device on the PCI bus"
        for d in /sys/bus/pci/devices/*; do
            echo "  ${d##*/} $(cat "$d/vendor"):$(cat "$d/device")"
        done
        exit 1
    fi
    bdf=${dev##*/}
    echo "E2E-$MARK-BDF=$bdf"
    [ "$bdf" = "$3" ] || bad "the device is at $bdf, QEMU was told $3"
}

# device_ids: "vendor:device subsystem_vendor:subsystem class revision" of
# dev, as sysfs shows them (0x...).
device_ids() {
    echo "$(cat "$dev/vendor"):$(cat "$dev/device")" \
        "$(cat "$dev/subsystem_vendor"):$(cat "$dev/subsystem_device")" \
        "$(cat "$dev/class") $(cat "$dev/revision")"
}

# device_driver: the driver bound to dev, or nothing.
device_driver() {
    [ -e "$dev/driver" ] && basename "$(readlink "$dev/driver")"
    return 0
}

# fio_mount: mount the fio tree the host shares over 9p (tests/e2e/
# fio-tree.sh, lib.sh's e2e_fio_tree: mount tag "fio") read-only at /fio,
# and check that fio runs from it; FIO_VERSION is its version. Returns 1
# after a bad line if it cannot.
fio_mount() {
    mkdir -p /fio
    if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro fio /fio; then
        bad "cannot mount the fio tree (9p tag fio)"
        return 1
    fi
    FIO_LIBS=$(sed 's|\([^:]*\)|/fio/\1|g' /fio/.library-path)
    if ! FIO_VERSION=$(fio_run --version); then
        bad "fio from /fio does not run"
        return 1
    fi
}

# fio_run ARGS...: Debian's fio from the tree fio_mount mounted, through
# the tree's own loader and libraries (the initramfs has no libc).
fio_run() {
    /fio/usr/lib64/ld-linux-x86-64.so.2 --library-path "$FIO_LIBS" \
        /fio/usr/bin/fio "$@"
}
