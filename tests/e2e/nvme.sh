#!/bin/bash
# tests/e2e/nvme.sh [BUILD_DIR]
#
# End-to-end test of the nvme parent (devices/nvme, PCI 1234:11ed) under
# the guest kernel's own nvme driver: a private umdevd starts a transient
# nvme-Kq instance (umdevctl start -p nvme), and a TCG guest with K vCPUs
# online and K+1 possible (the driver asks for K+1 I/O queues and must be
# granted K) gets it through QEMU's
# vfio-user-pci. The guest half (nvme-guest.sh) checks identity, driver,
# size, model, serial and queue count, writes a seeded pattern with
# O_DIRECT and reads it back, discards a range and reads zeroes, resets
# the controller in the middle of writes and finds them all, runs a load
# of 2K (at least 4) 4 KiB O_DIRECT readers and writers at once, and
# makes an ext2 file system with two files. The host reads the
# instance's counters at the load's markers: at most MAX_MSGS_PER_IO
# socket messages per I/O under load. Then the host checks, without the
# guest: the backing file holds the pattern byte for byte at the same
# offsets, a hole where the discard was, and the files (e2fsprogs'
# debugfs, no mount).
#
# Environment:
#   UMDEV_E2E_NVME_TYPE     nvme-1q, nvme-4q (default) or nvme-8q
#   UMDEV_E2E_NVME_MB       MiB of pattern (default 64)
#   UMDEV_E2E_NVME_SEED     pattern seed (default: random; printed)
#   UMDEV_E2E_TIMEOUT       bound of the QEMU run in seconds (default 400)
#   UMDEV_E2E_TRACE=1       record QEMU's vfio_user_* trace events
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/nvme}: console.log,
# server.log (umdevd --verbose), info.txt (umdevctl info after the run),
# qemu-trace.log (with UMDEV_E2E_TRACE=1), result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init nvme "${1:-}"
TYPE=${UMDEV_E2E_NVME_TYPE:-nvme-4q}
DATA_MB=${UMDEV_E2E_NVME_MB:-64}
SEED=${UMDEV_E2E_NVME_SEED:-$(((RANDOM << 15 ^ RANDOM) % 2147483646 + 1))}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-400}

case $TYPE in
nvme-1q) QUEUES=1 ;;
nvme-4q) QUEUES=4 ;;
nvme-8q) QUEUES=8 ;;
*) say "FAIL: UMDEV_E2E_NVME_TYPE must be nvme-1q, nvme-4q or nvme-8q"; exit 1 ;;
esac
case $DATA_MB$SEED in
*[!0-9]*) say "FAIL: UMDEV_E2E_NVME_MB/SEED must be numbers"; exit 1 ;;
esac
if [ "$DATA_MB" -lt 4 ] || [ "$DATA_MB" -gt 256 ] || [ "$SEED" -lt 1 ]; then
    say "FAIL: UMDEV_E2E_NVME_MB in 4..256, SEED >= 1"
    exit 1
fi
MB=1048576
# The file system first (it holds a copy of the pattern), then the data.
FS_MB=$((DATA_MB + 8))
DATA_OFF=$(((FS_MB + 8) * MB))
DATA_LEN=$((DATA_MB * MB))
DISCARD_OFF=$((DATA_OFF + 2 * MB))
DISCARD_LEN=$((2 * MB))
# The file system, the pattern, the pattern again for the reset, room
# for the load's writes.
LOAD_OFF=$((DATA_OFF + 2 * DATA_LEN))
SIZE=$((LOAD_OFF + 32 * MB))
# The load: two jobs per I/O queue (at least four), half reading the
# pattern, half writing the room, each at most 2048 4 KiB I/Os.
LOAD_JOBS=$((QUEUES < 2 ? 4 : 2 * QUEUES))
LOAD_COUNT=$((32 * MB / 4096 / (LOAD_JOBS / 2)))
[ "$LOAD_COUNT" -le 2048 ] || LOAD_COUNT=2048
[ "$LOAD_COUNT" -le $((DATA_LEN / 4096 / (LOAD_JOBS / 2))) ] ||
    LOAD_COUNT=$((DATA_LEN / 4096 / (LOAD_JOBS / 2)))
# Socket messages per I/O under that load: at most this (issue 15).
MAX_MSGS_PER_IO=0.01

# ---- programs ---------------------------------------------------------------
UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
e2e_need "umdevd umdevctl" "$UMDEVD" "$UMDEVCTL"
for p in debugfs python3; do
    command -v "$p" >/dev/null ||
        { say "FAIL: $p is needed on the host (e2fsprogs, python3)"; exit 1; }
done

# ---- the guest environment ----------------------------------------------------
e2e_guest_env
e2e_artifacts nvme console.log server.log server.out qemu-trace.log info.txt \
    result
TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-nvme.XXXXXX")
CTL=$TMP/control
SRV_PID='' UUID=''
ctl() { "$UMDEVCTL" --control "$CTL" "$@"; }
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop "$SRV_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT

# The seeded pattern: a keystream of SHA-256 blocks.
python3 - "$SEED" "$DATA_LEN" "$TMP/pattern" <<'EOF'
import hashlib, sys
seed, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "wb") as f:
    block = 0
    while n > 0:
        chunk = b"".join(hashlib.sha256(b"%d:%d" % (seed, block + i)).digest()
                         for i in range(2048))
        f.write(chunk[:n])
        n -= len(chunk[:n])
        block += 2048
EOF

# ---- the device ---------------------------------------------------------------
mkdir -p "$TMP/run" "$TMP/state" "$TMP/nvme"
UMDEV_NVME_DIR=$TMP/nvme "$UMDEVD" --rundir "$TMP/run" --statedir "$TMP/state" \
    --control "$CTL" --verbose >"$ART/server.out" 2>"$ART/server.log" &
SRV_PID=$!
wait_until "$SRV_PID" 100 ctl version >/dev/null 2>&1
if ! ctl types >"$TMP/types" 2>&1 || ! grep -qw "$TYPE" "$TMP/types"; then
    say "FAIL: umdevd does not offer $TYPE:"
    cat "$TMP/types" "$ART/server.log"
    exit 1
fi
# "UUID started: PATH"
if ! out=$(ctl start -p nvme -t "$TYPE" --attr "size=$SIZE" 2>"$TMP/start.err"); then
    say "FAIL: umdevctl start -p nvme -t $TYPE: $(cat "$TMP/start.err")"
    cat "$ART/server.log"
    exit 1
fi
read -r UUID _ SOCK <<<"$(printf '%s\n' "$out" | tail -n 1)"
IMG=$TMP/nvme/$UUID.img
say "umdevd instance $UUID ($TYPE, $SIZE bytes) on $SOCK"
[ -S "$SOCK" ] || { say "FAIL: no socket at $SOCK"; cat "$ART/server.log"; exit 1; }
[ -f "$IMG" ] || { say "FAIL: no backing file $IMG"; exit 1; }

# ---- boot -----------------------------------------------------------------------
SLOT=6
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
SERIAL=$(printf '%s' "$UUID" | tr -d - | cut -c1-20)
printf 'BDF=%s\nQUEUES=%s\nSIZE=%s\nSERIAL=%s\nDATA_OFF=%s\nDATA_LEN=%s\nDISCARD_OFF=%s\nDISCARD_LEN=%s\nFS_MB=%s\nLOAD_OFF=%s\nLOAD_JOBS=%s\nLOAD_COUNT=%s\n' \
    "$BDF_WANT" "$QUEUES" "$SIZE" "$SERIAL" "$DATA_OFF" "$DATA_LEN" \
    "$DISCARD_OFF" "$DISCARD_LEN" "$FS_MB" "$LOAD_OFF" "$LOAD_JOBS" \
    "$LOAD_COUNT" >"$TMP/nvme.conf"
# One possible CPU more than the type's queues: the driver asks for a
# queue per possible CPU, so a controller granting more than its type
# offers would show up as an extra queue. Only K are online (TCG time).
QARGS=(-- -smp "$QUEUES,maxcpus=$((QUEUES + 1))"
    -device "$(e2e_device_json "$SLOT" "$SOCK")")
e2e_trace_args
say "seed $SEED; $DATA_MB MiB of pattern; guest with $QUEUES vCPUs ($((QUEUES + 1)) possible)"
# The instance's counters at the guest's load markers (the guest is idle
# for 2 s after each, so they hold still while we read them).
watch_load() {
    local phase=BEGIN
    while kill -0 "$SRV_PID" 2>/dev/null; do
        if grep -q "^E2E-NVME-LOAD-$phase" "$ART/console.log" 2>/dev/null; then
            ctl --json info "$UUID" >"$TMP/load-$phase.json" 2>&1
            [ $phase = END ] && return
            phase=END
        fi
        sleep 0.05
    done
}
: >"$ART/console.log"
watch_load &
WATCH_PID=$!
t=$(now)
MODULES="nvme ext4 crc32c_generic" "$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" \
    --log "$ART/console.log" "$HERE/nvme-guest.sh" "$HERE/guest-lib.sh" \
    "$TMP/nvme.conf:/e2e/nvme.conf" "$TMP/pattern:/e2e/pattern" \
    "${QARGS[@]}" >/dev/null
GUEST_RC=$?
T_BOOT=$(elapsed "$t" "$(now)")
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null

# ---- the server side after the run -----------------------------------------------
CTL_FAILED=0
ctl info "$UUID" >"$ART/info.txt" 2>&1 ||
    { say "umdevctl info $UUID failed: $(cat "$ART/info.txt")"; CTL_FAILED=1; }
fail=0
# The backing file, read by the host before the instance stops (a
# transient instance's goes with it): the pattern where the guest wrote it
# (zeroes and a hole where it discarded), the pattern again where the
# reset happened, and the file system's files.
if ! python3 - "$IMG" "$TMP/pattern" "$DATA_OFF" "$DATA_LEN" "$DISCARD_OFF" \
    "$DISCARD_LEN" <<'EOF'; then
import os, sys
img, pat, off, n, doff, dlen = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
p = open(pat, "rb").read()
fd = os.open(img, os.O_RDONLY)
got = os.pread(fd, n, off)
want = bytearray(p)
want[doff - off:doff - off + dlen] = bytes(dlen)
if got != bytes(want):
    bad = next(i for i in range(n) if got[i] != want[i])
    sys.exit("backing file differs from the guest's writes at %d" % (off + bad))
if os.pread(fd, n, off + n) != p:
    sys.exit("backing file lacks the writes around the controller reset")
if os.lseek(fd, doff, os.SEEK_HOLE) != doff:
    sys.exit("no hole where the guest discarded")
try:
    data = os.lseek(fd, doff, os.SEEK_DATA)
except OSError:
    data = os.fstat(fd).st_size
if data < doff + dlen:
    sys.exit("the hole ends at %d, before %d" % (data, doff + dlen))
EOF
    say "FAIL: the backing file check (above)"
    fail=1
fi
debugfs -R "cat /pattern" "$IMG" 2>/dev/null >"$TMP/fs-pattern"
if ! cmp -s "$TMP/fs-pattern" "$TMP/pattern"; then
    say "FAIL: /pattern read out of the backing file with debugfs differs"
    fail=1
fi
hello=$(debugfs -R "cat /hello.txt" "$IMG" 2>/dev/null)
[ "$hello" = "hello from the guest" ] ||
    { say "FAIL: /hello.txt in the backing file reads '$hello'"; fail=1; }
ctl stop "$UUID" >"$TMP/stop.out" 2>&1 ||
    { say "umdevctl stop $UUID failed: $(cat "$TMP/stop.out")"; CTL_FAILED=1; }
[ ! -e "$IMG" ] ||
    { say "FAIL: the transient instance stopped, its backing file $IMG stayed"; fail=1; }
stop_server "$SRV_PID" 100 || say "umdevd did not exit within 10 s of SIGTERM"
SRV_PID=

# ---- verdict ----------------------------------------------------------------------
C=$ART/console.log
e2e_guest_verdict NVME
[ "$SRV_RC" -eq 0 ] || { say "umdevd exited $SRV_RC (expected 0 after SIGTERM)"; fail=1; }
[ "$CTL_FAILED" -eq 0 ] || fail=1


# Socket messages per I/O under load: the counters at the two markers.
# The guest's I/O count checks that the load fell between them.
LOAD_IOS=$(sed -n 's/^E2E-NVME-LOAD-IOS \([0-9]*\) .*/\1/p' "$C" | head -n 1)
if ! LOAD_LINE=$(python3 - "$TMP/load-BEGIN.json" "$TMP/load-END.json" \
    "${LOAD_IOS:-0}" "$MAX_MSGS_PER_IO" <<'EOF'
import json, sys
def counters(path):
    try:
        info = json.load(open(path))
    except (OSError, ValueError) as e:
        sys.exit("no counters at the load marker %s: %s" % (path, e))
    try:
        dev = info["device"]
        ep = dev["endpoints"]
        return dev["counters"]["msgs"], ep["io_commands"], ep["cpu_ms"]
    except (KeyError, TypeError):
        sys.exit("%s has no device counters: %s" % (path, info))
m0, io0, cpu0 = counters(sys.argv[1])
m1, io1, cpu1 = counters(sys.argv[2])
want, limit = int(sys.argv[3]), float(sys.argv[4])
ios, msgs = io1 - io0, m1 - m0
if want == 0 or ios < want:
    sys.exit("the guest reported %d load I/Os but %d were counted between "
             "the markers" % (want, ios))
ratio = msgs / ios
print("load: %d I/O commands, %d socket messages, %.4f per I/O (at most %g); "
      "worker CPU %.1f us per I/O" % (ios, msgs, ratio, limit,
                                     (cpu1 - cpu0) * 1000.0 / ios))
sys.exit(0 if ratio <= limit else 2)
EOF
); then
    say "FAIL: ${LOAD_LINE:-socket messages per I/O under load (above)}"
    fail=1
fi

T_WALL=$(elapsed "$T_START" "$(now)")
e2e_versions
say "type $TYPE; device ${BDF:-<not found>}"
sed -n 's/^E2E-NVME-ID /  /p' "$C" | head -n 1
sed -n 's/^E2E-NVME-DMESG /  guest: /p' "$C"
[ -z "${LOAD_LINE:-}" ] || say "$LOAD_LINE"
sed -n 's/^E2E-NVME-LOAD-IOS /  guest: load /p' "$C"
sed -n 's/^ *\(io_commands\|doorbell_writes\|poller_wakeups\|poll_window_us\|msgs_per_io\|o_direct\|resets\) */  \1 /p' \
    "$ART/info.txt"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"
e2e_qemu_messages
e2e_server_errors ' failed: |warning|error|unexpected|refusing|malformed|refused|crash|killed by signal' 20 ||
    fail=1

{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "type=$TYPE"
    echo "bdf=$BDF"
    echo "seed=$SEED"
    echo "data_mb=$DATA_MB"
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"

e2e_finish "FAIL (UMDEV_E2E_NVME_SEED=$SEED repeats the data)"
