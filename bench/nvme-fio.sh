#!/bin/bash
# bench/nvme-fio.sh [BUILD_DIR]
#
# fio in a guest against an umdev NVMe subdevice and, in the same guest and
# the same run, against QEMU's own -device nvme on a backing file of the
# same size on the same host file system (issue 15's first benchmark).
# The guest (tests/e2e's: QEMU 11.1 from trixie-backports, TCG, busybox
# initramfs, the trixie kernel's nvme driver) runs Debian trixie's fio,
# mounted over 9p from the tree tests/e2e/fio-tree.sh prepares. Each job
# runs on both devices, REPEATS times, the order alternating
# (bench/nvme-fio-guest.sh); the host prints per job and device the IOPS,
# the latency (submission to completion: mean, p50, p99) and the ratios
# umdev/QEMU, and per job umdev's own counters (socket messages, doorbell
# writes, poller wakeups, interrupts per I/O) and the guest's interrupts
# per I/O for each device. Targets (issue 15): IOPS ratio >= 1.0 at QD32,
# QD1 latency ratio <= 1.2; reported, not enforced.
#
# Environment (defaults in brackets):
#   UMDEV_BENCH_TYPE       umdev type, nvme-1q|nvme-4q|nvme-8q [nvme-1q]; the
#                          guest gets as many vCPUs as the type has queues
#   UMDEV_BENCH_SIZE_MB    size of both namespaces, MiB [256]
#   UMDEV_BENCH_RUNTIME    seconds each fio run measures [10]
#   UMDEV_BENCH_RAMP       seconds each fio run warms up first [2]
#   UMDEV_BENCH_REPEATS    runs of each job on each device [2]
#   UMDEV_BENCH_JOBS       "name:rw:bs:iodepth ..." [the six below]
#   UMDEV_BENCH_ENGINE     fio's ioengine in the guest [io_uring]
#   UMDEV_BENCH_QEMU_AIO   -drive aio= of QEMU's nvme [io_uring]
#   UMDEV_BENCH_QEMU_NVME  more properties of QEMU's -device nvme, e.g.
#                          ioeventfd=on [none: QEMU's defaults]
#   UMDEV_BENCH_QEMU_CPUS  taskset CPU list of QEMU [all online]
#   UMDEV_BENCH_UMDEV_CPUS taskset CPU list of umdevd and its workers [all]
#   UMDEV_BENCH_UMDEV_NICE nice value umdevd and its workers start with [0]
#   UMDEV_BENCH_DATA_DIR   where both backing files go [BUILD_DIR]
#   UMDEV_E2E_CACHE        as for tests/e2e
# BUILD_DIR defaults to build/release (built first if umdevd is missing).
#
# Exit 0 when every run completed and was read; 1 when anything failed or
# is missing (it says what); 2 on bad settings. Artifacts in
# BUILD_DIR/bench/nvme-fio: console.log, server.log, results/ (each run's
# fio JSON, umdev's counters and the guest's interrupts around it),
# info.txt, summary.txt (the table).
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
HERE=$SRC/tests/e2e
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init nvme-fio "${1:-$SRC/build/release}"
KIT_NAME=nvme-fio

TYPE=${UMDEV_BENCH_TYPE:-nvme-1q}
SIZE_MB=${UMDEV_BENCH_SIZE_MB:-256}
RUNTIME=${UMDEV_BENCH_RUNTIME:-10}
RAMP=${UMDEV_BENCH_RAMP:-2}
REPEATS=${UMDEV_BENCH_REPEATS:-2}
JOBS=${UMDEV_BENCH_JOBS:-randread-4k-qd1:randread:4k:1 randread-4k-qd32:randread:4k:32 randwrite-4k-qd1:randwrite:4k:1 randwrite-4k-qd32:randwrite:4k:32 read-128k-qd32:read:128k:32 write-128k-qd32:write:128k:32}
ENGINE=${UMDEV_BENCH_ENGINE:-io_uring}
QEMU_AIO=${UMDEV_BENCH_QEMU_AIO:-io_uring}
QEMU_NVME=${UMDEV_BENCH_QEMU_NVME:-}
ALL_CPUS=0-$(($(nproc --all) - 1))
QEMU_CPUS=${UMDEV_BENCH_QEMU_CPUS:-$ALL_CPUS}
UMDEV_CPUS=${UMDEV_BENCH_UMDEV_CPUS:-$ALL_CPUS}
UMDEV_NICE=${UMDEV_BENCH_UMDEV_NICE:-0}
# umdevd takes only an absolute UMDEV_NVME_DIR: paths given relative are
# made absolute here.
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$PWD/$BUILD_DIR ;; esac
DATA_PARENT=${UMDEV_BENCH_DATA_DIR:-$BUILD_DIR}
case $DATA_PARENT in /*) ;; *) DATA_PARENT=$PWD/$DATA_PARENT ;; esac

usage() { say "bad setting: $*"; exit 2; }
case $TYPE in
nvme-1q) QUEUES=1 ;;
nvme-4q) QUEUES=4 ;;
nvme-8q) QUEUES=8 ;;
*) usage "UMDEV_BENCH_TYPE must be nvme-1q, nvme-4q or nvme-8q" ;;
esac
for v in SIZE_MB RUNTIME RAMP REPEATS; do
    case ${!v} in
    '' | *[!0-9]*) usage "UMDEV_BENCH_$v must be a number" ;;
    esac
done
[ "$SIZE_MB" -ge 16 ] || usage "UMDEV_BENCH_SIZE_MB must be at least 16"
if [ "$RUNTIME" -lt 1 ] || [ "$REPEATS" -lt 1 ]; then
    usage "UMDEV_BENCH_RUNTIME and UMDEV_BENCH_REPEATS must be at least 1"
fi
NJOBS=0
for j in $JOBS; do
    [[ $j =~ ^[A-Za-z0-9_.-]+:(randread|randwrite|read|write|randrw|rw):[0-9]+[kKmM]?:[0-9]+$ ]] ||
        usage "UMDEV_BENCH_JOBS: '$j' is not name:rw:bs:iodepth"
    NJOBS=$((NJOBS + 1))
done
[ "$NJOBS" -ge 1 ] || usage "UMDEV_BENCH_JOBS is empty"
case $ENGINE in *[!a-z0-9_]* | '') usage "UMDEV_BENCH_ENGINE '$ENGINE'" ;; esac
case $QEMU_AIO in threads | native | io_uring) ;;
*) usage "UMDEV_BENCH_QEMU_AIO must be threads, native or io_uring" ;;
esac
[[ $QEMU_NVME =~ ^([a-z_-]+=[A-Za-z0-9_-]+(,[a-z_-]+=[A-Za-z0-9_-]+)*)?$ ]] ||
    usage "UMDEV_BENCH_QEMU_NVME must be prop=value[,prop=value...]"
if ! [[ $UMDEV_NICE =~ ^-?[0-9]+$ ]] || [ "$UMDEV_NICE" -lt -20 ] ||
    [ "$UMDEV_NICE" -gt 19 ]; then
    usage "UMDEV_BENCH_UMDEV_NICE must be in -20..19"
fi
for c in "$QEMU_CPUS" "$UMDEV_CPUS"; do
    taskset -c "$c" true 2>/dev/null || usage "'$c' is not a CPU list taskset takes"
done
SIZE=$((SIZE_MB * 1048576))
# The guest's fio runs, each with fio's own start (a few seconds under
# TCG), plus boot: the bound of the QEMU run.
RUNS=$((NJOBS * 2 * REPEATS))
QEMU_TIMEOUT=$((120 + RUNS * (RUNTIME + RAMP + 20)))

# ---- components -------------------------------------------------------------
UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
if [ ! -x "$UMDEVD" ] || [ ! -x "$UMDEVCTL" ]; then
    if [ "$BUILD_DIR" = "$SRC/build/release" ]; then
        say "building the release preset (umdevd, umdevctl)"
        (cd "$SRC" && nice -n 10 cmake --preset release >/dev/null &&
            nice -n 10 cmake --build --preset release --target umdevd umdevctl) ||
            { say "FAIL: cannot build the release preset"; exit 1; }
    fi
fi
for f in "$UMDEVD" "$UMDEVCTL"; do
    [ -x "$f" ] || { say "FAIL: $f not found (build it first)"; exit 1; }
done
for p in python3 taskset nice dd pgrep getconf; do
    command -v "$p" >/dev/null || { say "FAIL: $p is needed on the host"; exit 1; }
done
"$HERE/setup.sh" "$CACHE_DIR" ||
    { say "FAIL: tests/e2e/setup.sh could not prepare the guest in $CACHE_DIR"; exit 1; }
e2e_fio_tree ||
    { say "FAIL: tests/e2e/fio-tree.sh could not prepare fio in $CACHE_DIR"; exit 1; }

ART=$BUILD_DIR/bench/nvme-fio
RES=$ART/results
rm -rf "$RES" "$ART"/{console.log,server.log,server.out,info.txt,summary.txt}
mkdir -p "$RES" || { say "FAIL: cannot create $RES"; exit 1; }
mkdir -p "$DATA_PARENT" || { say "FAIL: cannot create $DATA_PARENT"; exit 1; }
DATA=$(mktemp -d "$DATA_PARENT/nvme-fio-data.XXXXXX") ||
    { say "FAIL: cannot create a directory in $DATA_PARENT"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-nvme-fio.XXXXXX")
CTL=$TMP/control
SRV_PID='' WATCH_PID=''
ctl() { "$UMDEVCTL" --control "$CTL" "$@"; }
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$WATCH_PID"
    stop "$SRV_PID"
    rm -rf "$TMP" "$DATA"
}
trap cleanup EXIT

# ---- the two devices -----------------------------------------------------------
mkdir -p "$TMP/run" "$TMP/state" "$DATA/umdev"
# The workers are forked from the daemon and keep its affinity and nice
# value.
UMDEV_NVME_DIR=$DATA/umdev taskset -c "$UMDEV_CPUS" \
    nice -n "$UMDEV_NICE" "$UMDEVD" \
    --rundir "$TMP/run" --statedir "$TMP/state" --control "$CTL" --verbose \
    >"$ART/server.out" 2>"$ART/server.log" &
SRV_PID=$!
wait_until "$SRV_PID" 100 ctl version >/dev/null 2>&1 ||
    { say "FAIL: umdevd did not answer"; cat "$ART/server.log"; exit 1; }
if ! out=$(ctl start -p nvme -t "$TYPE" --attr "size=$SIZE" 2>"$TMP/start.err"); then
    say "FAIL: umdevctl start -p nvme -t $TYPE: $(cat "$TMP/start.err")"
    exit 1
fi
read -r UUID _ SOCK <<<"$(printf '%s\n' "$out" | tail -n 1)"
UMDEV_IMG=$DATA/umdev/$UUID.img
QEMU_IMG=$DATA/qemu.img
if [ ! -S "$SOCK" ] || [ ! -f "$UMDEV_IMG" ]; then
    say "FAIL: no socket $SOCK or no backing file $UMDEV_IMG"
    exit 1
fi
# Both files fully written (zeroes), so that neither pays for allocating
# blocks on first write; same size, same file system.
: >"$QEMU_IMG"
for f in "$UMDEV_IMG" "$QEMU_IMG"; do
    dd if=/dev/zero of="$f" bs=1M count="$SIZE_MB" conv=notrunc,fsync \
        status=none || { say "FAIL: cannot fill $f"; exit 1; }
done
for f in "$UMDEV_IMG" "$QEMU_IMG"; do
    [ "$(stat -c %s "$f")" -eq "$SIZE" ] ||
        { say "FAIL: $f is not $SIZE bytes"; exit 1; }
done
FSTYPE=$(findmnt -n -o FSTYPE -T "$DATA" 2>/dev/null || stat -f -c %T "$DATA")
QEMU_SERIAL=qemunvme0001
UMDEV_MODEL="umdev NVMe $TYPE"
{
    printf 'SIZE=%s\nQEMU_SERIAL=%s\nUMDEV_MODEL="%s"\nJOBS="%s"\n' \
        "$SIZE" "$QEMU_SERIAL" "$UMDEV_MODEL" "$JOBS"
    printf 'REPEATS=%s\nRUNTIME=%s\nRAMP=%s\nENGINE=%s\n' \
        "$REPEATS" "$RUNTIME" "$RAMP" "$ENGINE"
} >"$TMP/fio.conf"

# Answer the guest's handshakes (bench/nvme-fio-guest.sh): umdev's
# counters before and after each run, and the CPU time (clock ticks,
# user + system) of umdev's worker (all its threads: the poller, the
# vfio-user server, io_uring's workers) and of QEMU's main thread (its
# nvme emulation and block layer; the vCPUs are other threads).
WORKER_PID=$(ctl --json info "$UUID" | python3 -c \
    'import json, sys; print(json.load(sys.stdin)["instance"]["pid"])') ||
    { say "FAIL: no worker pid in umdevctl info $UUID"; exit 1; }
# ticks FILE: utime + stime of a /proc stat file (after the command name,
# which may hold spaces).
ticks() {
    local s
    s=$(cat "$1" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    # shellcheck disable=SC2086  # fields
    set -- $s
    echo $((${12} + ${13}))
}
# The QEMU whose results share is ours: its main thread is the process.
qemu_pid() {
    local p
    for p in $(pgrep -f -- "path=$RES,mount_tag=results"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = timeout ] && continue
        ls /proc/"$p"/task/*/comm >/dev/null 2>&1 &&
            grep -qs TCG /proc/"$p"/task/*/comm && { echo "$p"; return; }
    done
}
watch_counters() {
    local f q=''
    while :; do
        for f in "$RES"/*.pre "$RES"/*.post; do
            if [ ! -e "$f" ] || [ -e "$f.ok" ]; then
                continue
            fi
            [ -n "$q" ] || q=$(qemu_pid)
            ctl --json info "$UUID" >"$f.info" 2>&1
            echo "worker=$(ticks "/proc/$WORKER_PID/stat")" \
                "qemu_main=$(ticks "/proc/$q/task/$q/stat")" \
                "hz=$(getconf CLK_TCK)" >"$f.cpu"
            : >"$f.ok"
        done
        sleep 0.1
    done
}
watch_counters &
WATCH_PID=$!

# ---- the guest -------------------------------------------------------------------
QARGS=(-- -smp "$QUEUES"
    -device "$(e2e_device_json 6 "$SOCK")"
    -drive "file=${QEMU_IMG//,/,,},if=none,id=qnvme,format=raw,cache=none,aio=$QEMU_AIO"
    -device "nvme,drive=qnvme,serial=$QEMU_SERIAL,addr=7.0${QEMU_NVME:+,$QEMU_NVME}"
    "${FIO_QARGS[@]}"
    -virtfs "local,path=${RES//,/,,},mount_tag=results,security_model=none")
say "umdev $TYPE ($UUID) and QEMU nvme (cache=none,aio=$QEMU_AIO${QEMU_NVME:+,$QEMU_NVME}), $SIZE_MB MiB each on $FSTYPE ($DATA_PARENT)"
say "guest: TCG, $QUEUES vCPU(s); QEMU on CPUs $QEMU_CPUS, umdevd and its worker on CPUs $UMDEV_CPUS (of $ALL_CPUS), nice $UMDEV_NICE"
say "$FIO_VERSION, ioengine=$ENGINE, $NJOBS job(s) x 2 devices x $REPEATS, ${RUNTIME}s + ${RAMP}s ramp each (bound ${QEMU_TIMEOUT}s)"
t=$(now)
MODULES="nvme $FIO_MODULES" taskset -c "$QEMU_CPUS" "$HERE/run-guest.sh" \
    --timeout "$QEMU_TIMEOUT" --log "$ART/console.log" \
    "$SRC/bench/nvme-fio-guest.sh" "$HERE/guest-lib.sh" \
    "$TMP/fio.conf:/e2e/fio.conf" "${QARGS[@]}" >/dev/null
GUEST_RC=$?
T_GUEST=$(elapsed "$t" "$(now)")
stop "$WATCH_PID"
WATCH_PID=

fail=0
C=$ART/console.log
ctl info "$UUID" >"$ART/info.txt" 2>&1 ||
    { say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"; fail=1; }
ctl stop "$UUID" >/dev/null 2>&1 || { say "umdevctl stop $UUID failed"; fail=1; }
stop_server "$SRV_PID" 100 || say "umdevd did not exit within 10 s of SIGTERM"
SRV_PID=
[ "$SRV_RC" -eq 0 ] || { say "umdevd exited $SRV_RC (expected 0 after SIGTERM)"; fail=1; }

grep -q '^E2E-FIO-PASS$' "$C" || { say "the guest's runs did not all pass"; fail=1; }
grep '^E2E-FIO-\(FAIL\|NOTE\)' "$C" | sed 's/^/  guest: /'
sed -n 's/^E2E-FIO-DEVICES /  guest: /p; s/^E2E-FIO-DISK /  guest: /p' "$C"
if [ "$GUEST_RC" -ne 0 ]; then
    say "run-guest.sh exited $GUEST_RC$([ "$GUEST_RC" -eq 124 ] && echo " (timed out)")"
    fail=1
fi

# ---- the figures ---------------------------------------------------------------------
# shellcheck disable=SC2086  # JOBS is a list
if ! python3 "$SRC/bench/nvme-fio-report.py" "$RES" "$REPEATS" $JOBS \
    >"$ART/summary.txt"; then
    say "FAIL: the results are incomplete (above)"
    fail=1
fi
sed 's/^/  /' "$ART/summary.txt"
e2e_versions
say "times: guest ${T_GUEST}s, wall $(elapsed "$T_START" "$(now)")s; artifacts in $ART"
if [ "$fail" -ne 0 ]; then
    say "FAIL; last 30 lines of the console ($C):"
    tail -n 30 "$C"
    exit 1
fi
exit 0
