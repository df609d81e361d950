#!/usr/bin/env bash
# switchyard against gdnsd, Knot and the minimal responder, same rounds, same query mix.
#   bench/run.sh                       # ROUNDS=3 DURATION=20 by default
#   ROUNDS=5 SERVERS="limit-mmsg gdnsd knot ours" bench/run.sh
# Uses ../shared/bench (the peer harness: dnsperf, the peers from Debian, the GeoIP2
# country db, the 100 000-query ECS mix) with our own slot (bench/ours/), then prints
# the per-round ratios to gdnsd (bench/ratios.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
shared="${SHARED_BENCH:-$repo/../shared/bench}"
[ -d "$shared" ] || { echo "bench: no peer harness at $shared" >&2; exit 1; }
work="${WORK:-/tmp/gslb-bench}"
harness="$work/harness"
mkdir -p "$work"
rm -rf "$harness"
cp -r "$shared" "$harness"
chmod -R u+w "$harness"
rm -rf "$harness/servers/ours" "$harness/servers/ours-fleet" "$harness/results"
cp -r "$here/ours" "$harness/servers/ours"
# The same with [fleet] on (a nats-server beside it): SERVERS="gdnsd ours ours-fleet".
cp -r "$here/ours-fleet" "$harness/servers/ours-fleet"
(cd "$repo" && cargo build --release --locked -q)
export OURS_BIN="$repo/target/release/switchyard"
export SERVERS="${SERVERS:-limit-mmsg gdnsd knot ours}"
"$harness/setup.sh"
"$harness/run.sh"
latest=$(ls -d "$harness"/results/*/ | tail -1)
cat "$latest/summary.md"
python3 "$here/ratios.py" "$latest/runs.tsv"
