#!/usr/bin/env bash
# Runs the whole test suite again and again, to find tests that fail only sometimes,
# and prints each failing test with how often it failed.
#
#   scripts/soak.sh [RUNS] [-- NEXTEST ARGS...]      (default: 20 runs, debug build)
#   scripts/soak.sh 20 -- --release
#   BURN=1 scripts/soak.sh 20                          (a CPU burner on every core alongside)
#
# Each run is `cargo nextest run --no-fail-fast --features fault-injection`, as the test
# command runs it; logs are kept in a temporary directory, named at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
shift || true
[ "${1:-}" != "--" ] || shift
logs=$(mktemp -d)
burners=()
stop() { [ ${#burners[@]} -eq 0 ] || kill "${burners[@]}" 2>/dev/null || true; }
trap stop EXIT
if [ -n "${BURN:-}" ]; then
    # Bounded: each burner stops by itself after an hour at most.
    for _ in $(seq "$(nproc)"); do
        timeout 3600 sh -c 'while :; do :; done' &
        burners+=($!)
    done
fi
cargo nextest run --locked --features fault-injection "$@" --no-run >"$logs/build.log" 2>&1 || {
    cat "$logs/build.log"
    exit 1
}
failed_runs=0
for i in $(seq "$runs"); do
    if cargo nextest run --locked --no-fail-fast --features fault-injection "$@" >"$logs/run-$i.log" 2>&1; then
        echo "run $i: passed"
    else
        failed_runs=$((failed_runs + 1))
        echo "run $i: FAILED: $(grep -E '^ +(FAIL|SIGSEGV|SIGABRT|TIMEOUT) ' "$logs/run-$i.log" | sort -u | awk '{print $NF}' | tr '\n' ' ')"
    fi
done
echo "$failed_runs of $runs runs had a failure; logs in $logs"
# A failing test is named twice in its run's log (as it ends, and in the summary).
for f in "$logs"/run-*.log; do
    grep -E '^ +(FAIL|SIGSEGV|SIGABRT|TIMEOUT) ' "$f" | awk '{print $NF}' | sort -u || true
done | sort | uniq -c | sort -rn
[ "$failed_runs" -eq 0 ]
