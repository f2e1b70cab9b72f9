#!/usr/bin/env bash
# The whole test suite. Installs missing Debian packages (scripts/deps.sh),
# then for each preset in UMDEV_TEST_PRESETS configures, builds and runs
# its ctest suite, builds the release preset (counted as one test), then
# builds the fuzz preset and gives every libFuzzer
# target in build/fuzz/fuzz/ a smoke run on a temporary copy of its seed
# corpus. Ends with exactly one line "P passed, F failed" and exits
# non-zero if anything failed. A build that fails is a failure, never
# "zero tests".
#
# Environment:
#   UMDEV_TEST_PRESETS  presets to build and test (default "debug asan")
#   UMDEV_FUZZ_SECONDS  seconds of fuzzing per target (default 40: nine
#                       targets, 360 s in all; 0 skips)
#   CI=true             nothing may be skipped: a skipped test, a missing
#                       debug/asan preset or UMDEV_FUZZ_SECONDS=0 is a
#                       failure
#
# Shape on a 2-core machine: two builds and ctest runs (each test bounded
# by its TIMEOUT property, else TEST_TIMEOUT below), a release and a fuzz
# build, then UMDEV_FUZZ_SECONDS per fuzz target, one after another; well
# inside 90 minutes.

# No -e: every phase runs and is counted, whatever happened before.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

PRESETS=${UMDEV_TEST_PRESETS:-debug asan}
FUZZ_SECONDS=${UMDEV_FUZZ_SECONDS:-40}
CI=${CI:-}
# ctest's default per-test timeout (tests with a TIMEOUT property keep it).
TEST_TIMEOUT=300
# libFuzzer: one input running longer than this is a hang, a failure.
FUZZ_INPUT_TIMEOUT=30
# Where libFuzzer writes crash reproducers (under build/, not the tree).
FUZZ_ARTIFACTS=build/fuzz/artifacts

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

START=$(date +%s)
passed=0
failed=0
skipped=0
problems=()

phase() {
    local t=$(($(date +%s) - START))

    printf '\n=== %s (+%dm%02ds) %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" \
        $((t / 60)) $((t % 60)) "$*"
}

fail() {
    echo "FAILED: $*"
    failed=$((failed + 1))
    problems+=("FAILED: $*")
}

# Something did not run. Under CI=true that is a failure.
skip() {
    if [ "$CI" = true ]; then
        fail "$* (CI=true: nothing may be skipped)"
    else
        echo "SKIPPED: $*"
        skipped=$((skipped + 1))
        problems+=("SKIPPED: $*")
    fi
}

finish() {
    local p

    phase "summary"
    for p in "${problems[@]}"; do
        echo "  $p"
    done
    [ "$skipped" -gt 0 ] &&
        echo "$skipped skipped (not counted; CI=true makes them failures)"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umdev-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

if ! [[ $FUZZ_SECONDS =~ ^[0-9]+$ ]]; then
    fail "UMDEV_FUZZ_SECONDS must be a whole number of seconds, not '$FUZZ_SECONDS'"
    finish
fi

phase "dependencies (scripts/deps.sh)"
if ! umdev_install_deps; then
    fail "missing Debian packages (see above); nothing was built"
    finish
fi
echo "all required Debian packages are installed"

if [ "$CI" = true ]; then
    for p in debug asan; do
        [[ " $PRESETS " == *" $p "* ]] ||
            skip "preset $p (not in UMDEV_TEST_PRESETS='$PRESETS')"
    done
fi

# configure_and_build PRESET: both steps, output to a log shown on failure
# (the build's own output stays on screen: ninja prints errors there).
configure_and_build() {
    local preset=$1

    phase "configure + build: $preset"
    if ! cmake --preset "$preset" >"$TMP/configure-$preset.log" 2>&1; then
        cat "$TMP/configure-$preset.log"
        fail "cmake configure of preset $preset (its tests did not run)"
        return 1
    fi
    if ! cmake --build --preset "$preset"; then
        fail "build of preset $preset (its tests did not run)"
        return 1
    fi
}

# run_ctest PRESET: run the suite, add its summary line to the totals.
run_ctest() {
    local preset=$1 log="$TMP/ctest-$preset.log" summary f t n name how
    local last="build/$preset/Testing/Temporary/LastTest.log"
    local sel=(--test-dir "build/$preset")

    phase "ctest: $preset"
    if ctest --list-presets 2>/dev/null | grep -q "^ *\"$preset\""; then
        sel=(--preset "$preset")
    fi
    rm -f "$last"
    ctest "${sel[@]}" --output-on-failure -j2 --timeout "$TEST_TIMEOUT" \
        --test-output-size-passed 1048576 2>&1 | tee "$log"
    # "NN% tests passed, F tests failed out of T"
    summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
        "$log" | tail -n 1)
    if ! [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        fail "ctest for preset $preset printed no summary (no tests found, or ctest itself failed)"
        return
    fi
    f=${BASH_REMATCH[1]}
    t=${BASH_REMATCH[2]}
    if [ "$t" -eq 0 ]; then
        fail "ctest for preset $preset ran no tests"
        return
    fi
    passed=$((passed + t - f))
    failed=$((failed + f))
    [ "$f" -gt 0 ] && problems+=("FAILED: $f of $t ctest tests in preset $preset")

    # ctest counts a Skipped test as passed and leaves Disabled ones out.
    while read -r name how; do
        [ "$how" = "(Skipped)" ] && passed=$((passed - 1))
        skip "ctest $preset: $name $how"
    done < <(sed -n '/^The following tests did not run:/,/^$/p' "$log" |
        sed -nE 's/^[[:space:]]*[0-9]+ - (.+) (\((Skipped|Disabled)\))$/\1 \2/p')
    # cmocka's skip() passes the program; its summary names the skips.
    if [ -f "$last" ]; then
        while read -r n; do
            skip "ctest $preset: $n cmocka test(s) called skip() (see $last)"
        done < <(sed -nE 's/^\[  SKIPPED \] ([0-9]+) test\(s\), listed below:.*/\1/p' \
            "$last")
    fi
}

# run_fuzz BINARY: one libFuzzer smoke run on a copy of its seed corpus.
run_fuzz() {
    local bin=$1 name target work log rc artifacts

    name=$(basename "$bin")
    target=${name#fuzz_}
    work="$TMP/fuzz-$target"
    log="$TMP/fuzz-$target.log"
    artifacts="$FUZZ_ARTIFACTS/$target/"
    mkdir -p "$work" "$artifacts"
    phase "fuzz: $name for ${FUZZ_SECONDS}s"
    if [ -d "fuzz/corpus/$target" ]; then
        cp -R "fuzz/corpus/$target/." "$work/"
        echo "corpus: temporary copy of fuzz/corpus/$target ($(find "$work" -type f | wc -l) inputs)"
    else
        echo "corpus: none (fuzz/corpus/$target does not exist), starting empty"
    fi
    timeout -k 10 $((FUZZ_SECONDS + 120)) "$bin" \
        -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_INPUT_TIMEOUT" \
        -print_final_stats=1 -artifact_prefix="$artifacts" \
        "$work" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added):' \
            "$log"
        echo "ok: $name"
        passed=$((passed + 1))
    else
        tail -n 60 "$log"
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            fail "fuzz $name did not finish in $((FUZZ_SECONDS + 120))s"
        else
            fail "fuzz $name (exit $rc; reproducer, if any, in $artifacts)"
        fi
    fi
    rm -rf "$work"
}

for preset in $PRESETS; do
    configure_and_build "$preset" && run_ctest "$preset"
done

# The release preset has no tests of its own, but bench/ is built from it
# and gcc's -O2 warnings (-Wformat-truncation) appear only there.
if configure_and_build release; then
    echo "ok: release build"
    passed=$((passed + 1))
fi

if [ "$FUZZ_SECONDS" -eq 0 ]; then
    skip "fuzzing (UMDEV_FUZZ_SECONDS=0)"
elif configure_and_build fuzz; then
    bins=()
    for bin in build/fuzz/fuzz/fuzz_*; do
        [ -f "$bin" ] && [ -x "$bin" ] && bins+=("$bin")
    done
    if [ "${#bins[@]}" -eq 0 ]; then
        fail "the fuzz build produced no build/fuzz/fuzz/fuzz_* binaries"
    fi
    for bin in "${bins[@]}"; do
        run_fuzz "$bin"
    done
fi

finish
