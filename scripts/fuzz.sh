#!/usr/bin/env bash
# Fuzzes the protocol code: runs every cargo-fuzz target of tests/fuzz for
# SECONDS each (default 60), one after another, and prints per target the
# inputs executed, the new inputs found and whether it failed.
#
#   bash scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain; installs cargo-fuzz when it is missing. The
# committed corpus (tests/fuzz/corpus/<target>) seeds each run and is left
# as it is: new inputs go to a temporary folder. A failing input is saved
# in tests/fuzz/artifacts/<target>/ (replay it with
# `cargo +nightly fuzz run --fuzz-dir tests/fuzz -s none <target> <file>`).
# Exits 1 when a target failed.
set -euo pipefail

SECONDS_EACH=${1:-60}
if ! [[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS]" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FUZZ_DIR=tests/fuzz
# No sanitizer: the code under test is safe Rust, where AddressSanitizer
# finds nothing, and it halves the executions per second. Overflow checks
# and debug assertions stay on (cargo-fuzz's default).
FUZZ=(cargo +nightly fuzz)
FUZZ_FLAGS=(--fuzz-dir "$FUZZ_DIR" --sanitizer none)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! "${FUZZ[@]}" --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "== building the fuzz targets"
"${FUZZ[@]}" build "${FUZZ_FLAGS[@]}"

mapfile -t TARGETS < <("${FUZZ[@]}" list --fuzz-dir "$FUZZ_DIR")
failed=0
summary=()
for target in "${TARGETS[@]}"; do
    echo "== $target: ${SECONDS_EACH}s"
    mkdir -p "$WORK/$target" "$FUZZ_DIR/corpus/$target"
    log=$WORK/$target.log
    status=0
    "${FUZZ[@]}" run "${FUZZ_FLAGS[@]}" "$target" "$WORK/$target" "$FUZZ_DIR/corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    found=$(find "$WORK/$target" -type f | wc -l)
    if [[ $status -eq 0 ]]; then
        result="nothing found"
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to *//p' "$log" | tail -n 1)
        result="FAILED (exit $status): ${artifact:-see the log below}"
        tail -n 40 "$log"
    fi
    line=$(printf '%-18s runs %-10s new inputs %-6s %s' "$target" "${runs:-?}" "$found" "$result")
    echo "$line"
    summary+=("$line")
done

echo "== summary (${SECONDS_EACH}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
