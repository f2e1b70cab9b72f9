#!/usr/bin/env bash
# bench.nvme_runs: bench/nvme works, not how fast it is (figures are for
# people, never for tests). A short run of both parts on a small file
# checks that every figure line is there with positive rates and that
# the counters were read; then the refusals: bad options exit 2, a
# directory that cannot take the file exits 1 saying so.
#   nvme_check.sh NVME KIT_SH
set -u
NVME=$1
KIT_NAME=bench.nvme_runs
# shellcheck source=../tests/common/kit.sh
. "$2"

dir=$(mktemp -d "${TMPDIR:-/var/tmp}/umdev-nvme-check-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { say "FAIL: $*"; exit 1; }
positive() { awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }'; }

command -v fio >/dev/null || skip_or_fail "fio is not installed (scripts/deps.sh)"

# Each kind runs long enough to get its threads scheduled on a loaded
# 2-CPU machine (0.05 s once left the bare kind with no I/O done at all).
out=$("$NVME" --rounds 1 --seconds 0.3 --fio-seconds 0.3 --file-mib 16 \
    --dir "$dir" 2>&1) || fail "bench/nvme failed: $out"
printf '%s\n' "$out"
for qd in 32 1; do
    line=$(printf '%s\n' "$out" | grep "^null read 4k qd=$qd ") ||
        fail "no null qd=$qd line"
    for k in umdev_iops bare_iops ratio one_thread_iops; do
        positive "$(field "$line" "$k")" || fail "$k not positive in: $line"
    done
done
line=$(printf '%s\n' "$out" | grep '^  median_us ') || fail "no QD1 latency"
positive "$(field "$line" umdev)" || fail "no umdev latency in: $line"
line=$(printf '%s\n' "$out" | grep '^file read 4k qd=32 ') ||
    fail "no file line"
for k in umdev_iops fio_iops ratio one_thread_iops one_thread_ratio; do
    positive "$(field "$line" "$k")" || fail "$k not positive in: $line"
done
n=$(printf '%s\n' "$out" | grep -c '^  umdev socket_msgs=[0-9]* ios=[1-9][0-9]* msgs_per_io=[0-9.]* ')
[ "$n" = 3 ] || fail "expected 3 socket message lines, got $n"
n=$(printf '%s\n' "$out" | grep -c '^  umdev cpu_ns_per_io driver=[1-9]')
[ "$n" = 3 ] || fail "expected 3 CPU time lines, got $n"
[ -z "$(ls -A "$dir")" ] || fail "the benchmark left files in $dir: $(ls "$dir")"

"$NVME" --rounds 0 >/dev/null 2>&1
[ $? = 2 ] || fail "--rounds 0 did not exit 2"
"$NVME" --seconds x >/dev/null 2>&1
[ $? = 2 ] || fail "--seconds x did not exit 2"
"$NVME" --poll-us 0 >/dev/null 2>&1
[ $? = 2 ] || fail "--poll-us 0 did not exit 2"
"$NVME" extra >/dev/null 2>&1
[ $? = 2 ] || fail "an operand did not exit 2"
out=$("$NVME" --rounds 1 --seconds 0.02 --dir "$dir/none" 2>&1)
rc=$?
[ $rc = 1 ] || fail "a missing --dir exited $rc: $out"
printf '%s\n' "$out" | grep -q "cannot create a file in $dir/none" ||
    fail "a missing --dir without saying so: $out"
say "PASS"
