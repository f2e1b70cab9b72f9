#!/usr/bin/env bash
# bench.rtt_runs: bench/rtt works, not how fast it is (figures are for
# people, never for tests). A short same-CPU run against the test device,
# one against umdev-serve's serial device through --socket, one against a
# sandboxed umdevd worker, and the refusals: a register the server
# refuses makes rtt fail, bad options make it exit 2.
#   rtt_check.sh RTT UMDEV_SERVE UMDEVD UMDEVCTL KIT_SH
set -u
RTT=$1 SERVE=$2 UMDEVD=$3 UMDEVCTL=$4
KIT_NAME=bench.rtt_runs
# shellcheck source=../tests/common/kit.sh
. "$5"

dir=$(mktemp -d)
srv= daemon=
trap 'stop "$srv"; stop "$daemon"; rm -rf "$dir"' EXIT
fail() { say "FAIL: $*"; exit 1; }

out=$("$RTT" --placement same --iters 200 --batches 2 2>&1) ||
    fail "rtt against the test device: $out"
line=$(printf '%s\n' "$out" | grep '^rtt placement=same-cpu') ||
    fail "no result line: $out"
for k in raw_us vfio_user_us ratio spec_client_us spec_ratio; do
    [ -n "$(field "$line" "$k")" ] || fail "no $k in: $line"
done

"$SERVE" serial --socket "$dir/s.sock" >"$dir/serve.log" 2>&1 &
srv=$!
wait_for_sockets "$srv" 100 "$dir/s.sock" || fail "umdev-serve did not listen"
# SCR (offset 7) of port 0: a register that keeps what it was given.
out=$("$RTT" --placement same --iters 200 --batches 2 --socket "$dir/s.sock" \
    --region 0 --offset 7 --width 1 2>&1) || fail "rtt --socket: $out"
line=$(printf '%s\n' "$out" | grep '^rtt placement=same-cpu') ||
    fail "no result line: $out"
[ "$(field "$line" width)" = 1 ] && [ -n "$(field "$line" spec_ratio)" ] ||
    fail "wrong result line: $line"
# Region 9 is not a region of the device: the server answers with an
# error and rtt must say so and fail.
out=$("$RTT" --placement same --iters 10 --batches 1 --socket "$dir/s.sock" \
    --region 9 --offset 0 --width 1 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "a refused read gave exit $rc: $out"
printf '%s\n' "$out" | grep -q 'REGION_READ of region 9' ||
    fail "no reason for the refused read: $out"

# A worker of a private umdevd (sandboxed when run as root, as in CI):
# its thread is moved to the bench's CPU and back.
export UMDEV_RUNDIR=$dir/run UMDEV_STATEDIR=$dir/state
export UMDEV_CONTROL=$dir/control
mkdir -p "$UMDEV_RUNDIR" "$UMDEV_STATEDIR"
"$UMDEVD" >"$dir/umdevd.log" 2>&1 &
daemon=$!
wait_for_sockets "$daemon" 100 "$UMDEV_CONTROL" || fail "umdevd did not listen"
u=$("$UMDEVCTL" define -p serial -t 2port --manual) || fail "define"
"$UMDEVCTL" start "$u" >/dev/null || fail "start $u"
worker=$("$UMDEVCTL" --json info "$u" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' |
    head -n 1)
[ -n "$worker" ] || fail "no worker pid for $u"
before=$(taskset -p "$worker" | sed 's/.*: //')
out=$("$RTT" --placement same --iters 200 --batches 2 \
    --socket "$UMDEV_RUNDIR/$u.sock" --region 0 --offset 7 --width 1 2>&1) ||
    fail "rtt against the umdevd worker: $out"
printf '%s\n' "$out" | grep -q '^rtt placement=same-cpu .*server_threads=1 ' ||
    fail "no result line for the worker: $out"
after=$(taskset -p "$worker" | sed 's/.*: //')
[ "$before" = "$after" ] || fail "worker affinity $before became $after"

for bad in "--width 3 --socket $dir/s.sock" "--region 1" \
    "--breakdown --socket $dir/s.sock" "--offset nope --socket $dir/s.sock"; do
    # shellcheck disable=SC2086  # the options are words on purpose
    out=$("$RTT" $bad 2>&1)
    rc=$?
    [ "$rc" = 2 ] || fail "rtt $bad: exit $rc, want 2: $out"
done
say "PASS"
