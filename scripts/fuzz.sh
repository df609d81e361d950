#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time and prints, per target, the
# executions, the corpus size and the crashes found.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s; all targets)
#   FUZZ_BUILD=dev FUZZ_SANITIZER=none scripts/fuzz.sh 20  (an unoptimized build without
#                                                           AddressSanitizer: it compiles in
#                                                           half the time and runs slower;
#                                                           what CI's short run uses)
#
# Needs a nightly toolchain (rustup's, else stable with RUSTC_BOOTSTRAP=1) and installs
# cargo-fuzz if missing. Inputs: fuzz/seeds/TARGET and fuzz/regressions/TARGET; the
# growing corpus is fuzz/corpus/TARGET (not committed). A crash is left in
# fuzz/artifacts/TARGET/: copy it to fuzz/regressions/TARGET/ with a telling name, and
# `cargo test` replays it from then on (tests/integration/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(packet tcp_stream config)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
case "${FUZZ_BUILD:-release}" in
    release) profile=(-O) ;;
    dev) profile=(--dev) ;;
    *) echo "FUZZ_BUILD is release or dev" >&2; exit 2 ;;
esac
# AddressSanitizer by default (it watches our dependencies' unsafe code; ours has none).
profile+=(--sanitizer "${FUZZ_SANITIZER:-address}")
"${fuzz[@]}" build "${profile[@]}" >/dev/null

printf '%-12s %10s %12s %8s %8s\n' target seconds executions corpus crashes
status=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    log=$(mktemp)
    # -rss_limit_mb bounds memory per input; -timeout flags an input that hangs.
    rc=0
    "${fuzz[@]}" run "${profile[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    crashes=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
    printf '%-12s %10s %12s %8s %8s\n' "$t" "$seconds" "$execs" "$corpus" "$crashes"
    if [ "$crashes" -eq 0 ] && [ "$rc" -ne 0 ]; then
        status=1
        echo "    $t exited with $rc and left no artifact:"
        tail -n 20 "$log" | sed 's/^/    /'
    fi
    if [ "$crashes" -gt 0 ]; then
        status=1
        grep -m5 -E 'panicked|ERROR|SUMMARY' "$log" | sed 's/^/    /'
        find "fuzz/artifacts/$t" -type f -newer "$log" | sed 's/^/    artifact: /'
    fi
    rm -f "$log"
done
exit $status
