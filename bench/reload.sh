#!/usr/bin/env bash
# A 10 000-name config reloaded under load: dnsperf at a fixed rate against the release
# binary while it gets a SIGHUP every second; prints how long each reload took (from
# the server's own log) and what dnsperf lost.
#   bench/reload.sh            # NAMES=10000 QPS=20000 SECONDS=20 (run bench/run.sh once first for the data)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(dirname "$here")"
work="${WORK:-/tmp/gslb-bench}"; names=${NAMES:-10000}; qps=${QPS:-20000}; secs=${SECONDS_LOAD:-20}
[ -s "$work/queries.bin" ] && [ -s "$work/gslb-geoip2-country.mmdb" ] || { echo "run bench/run.sh once first" >&2; exit 1; }
(cd "$repo" && cargo build --release --locked -q)
dir=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
sed -e "s|@PORT@|5398|; s|@MMDB@|$work/gslb-geoip2-country.mmdb|" "$here/ours/ours.toml" > "$dir/base.toml"
python3 - "$dir/base.toml" "$names" > "$dir/big.toml" <<'PY'
import sys
base = open(sys.argv[1]).read(); n = int(sys.argv[2])
i = base.index("[names.app]")
extra = "".join(f'[names.n{k}]\npolicy = "failover"\nregions = ["eu-west", "us-east"]\n' for k in range(n))
print(base[:i] + extra + base[i:])
PY
taskset -c 0 "$repo/target/release/switchyard" serve --config "$dir/big.toml" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q "first round of health checks complete" "$dir/log" && break; sleep 0.1; done
( for _ in $(seq "$secs"); do sleep 1; kill -HUP "$pid"; done ) &
hups=$!
taskset -c 1 dnsperf -B -s 127.0.0.1 -p 5398 -d "$work/queries.bin" -Q "$qps" -l "$secs" -c 4 2>&1 | grep -E "Queries (sent|completed|lost)"
wait "$hups"
echo "reloads (ms):" $(grep -o 'took_ms=[0-9]*' "$dir/log" | cut -d= -f2 | tr '\n' ' ')
