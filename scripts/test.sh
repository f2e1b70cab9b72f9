#!/usr/bin/env bash
# The whole test suite: builds the debug and asan presets and runs their
# ctest suites, then a libFuzzer smoke run of every fuzz target. Ends with
# one line "P passed, F failed" and a non-zero status if anything failed.
#   UMDEV_TEST_PRESETS  presets to build and test (default "debug asan")
#   UMDEV_FUZZ_SECONDS  seconds per fuzz target (default 60; 0 skips,
#                       which CI=true refuses)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
umdev_install_deps || exit 1

presets=${UMDEV_TEST_PRESETS:-debug asan}
fuzz_seconds=${UMDEV_FUZZ_SECONDS:-60}
jobs=$(nproc)
passed=0
failed=0

phase() { printf '\n=== %s  %s\n' "$(date +%H:%M:%S)" "$*"; }

for preset in $presets; do
    phase "build $preset"
    if ! cmake --preset "$preset" >/dev/null ||
        ! cmake --build --preset "$preset" -j "$jobs"; then
        echo "BUILD FAILED: preset $preset"
        failed=$((failed + 1))
        continue
    fi
    phase "ctest $preset"
    log=$(mktemp)
    ctest --preset "$preset" --output-on-failure -j "$jobs" \
        --timeout 900 2>&1 | tee "$log"
    # "NN% tests passed, F tests failed out of T"
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
        "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "ctest for $preset printed no summary: counted as a failure"
        failed=$((failed + 1))
    else
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
        t=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
        passed=$((passed + t - f))
        failed=$((failed + f))
    fi
    rm -f "$log"
done

if [ "$fuzz_seconds" -gt 0 ]; then
    phase "build fuzz"
    if ! cmake --preset fuzz >/dev/null ||
        ! cmake --build --preset fuzz -j "$jobs"; then
        echo "BUILD FAILED: preset fuzz"
        failed=$((failed + 1))
    else
        for bin in build/fuzz/fuzz/fuzz_*; do
            [ -x "$bin" ] || continue
            name=$(basename "$bin")
            corpus=fuzz/corpus/${name#fuzz_}
            work=$(mktemp -d)
            [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
            phase "fuzz $name for ${fuzz_seconds}s"
            if "$bin" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
                "$work" >"$work.log" 2>&1; then
                grep -E 'stat::number_of_executed_units|Done' "$work.log" | tail -2
                passed=$((passed + 1))
            else
                tail -40 "$work.log"
                echo "FUZZ FAILED: $name"
                failed=$((failed + 1))
            fi
            rm -rf "$work" "$work.log"
        done
    fi
elif [ "${CI:-}" = true ]; then
    echo "UMDEV_FUZZ_SECONDS=0 is not allowed in CI"
    failed=$((failed + 1))
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
