#!/usr/bin/env bash
# Prints the reliability figures of the README's "Reliability" section:
#   1. fuzzing: executions and crashes per target (scripts/fuzz.sh);
#   2. a flood at the maximum rate for FLOOD_SECONDS: server RSS before and after;
#   3. RRL under a bounded flood: what was sent, slipped and dropped;
#   4. from the tests (release build, --no-capture): legitimate queries' p99 during a
#      slowloris attack, bytes out/in under ANY and large-RRset floods, hostile health
#      targets, and the kill -9 restart.
#
#   scripts/reliability.sh                 # FUZZ_SECONDS=60 FLOOD_SECONDS=60 RRL_SECONDS=10
#
# Everything runs on loopback; the server is pinned to CPU 0 and dnsperf to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
fuzz_seconds=${FUZZ_SECONDS:-60}
flood_seconds=${FLOOD_SECONDS:-60}
rrl_seconds=${RRL_SECONDS:-10}
port=${PORT:-5454}
admin=127.0.0.1:${ADMIN_PORT:-9454}
control=127.0.0.1:${CONTROL_PORT:-18454}

command -v dnsperf >/dev/null || { apt-get update -qq && apt-get install -y -qq dnsperf >/dev/null; }
cargo build --release --locked -q
bin="$repo/target/release/switchyard"
work=$(mktemp -d)
pid=""
stop_server() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT

echo "## 1. Fuzzing (${fuzz_seconds} s per target)"
if [ "$fuzz_seconds" -gt 0 ]; then scripts/fuzz.sh "$fuzz_seconds" || echo "(crashes found: see above)"; fi

# The example config (demo gateways, bundled GeoIP database), RRL as given.
config() {
    sed -e "s|geoip_db = \"../geoip/default.mmdb\"|geoip_db = \"$repo/geoip/default.mmdb\"|" \
        -e "s|^enabled = true|enabled = $1|" config/example.toml >"$work/example.toml"
}
# A query mix over the example zone: GSLB names, static records, NXDOMAIN.
python3 - >"$work/queries.txt" <<'PY'
import random
random.seed(7)
names = ["app A", "app AAAA", "fast A", "geo A", "static A", "www A", "all A", "primary A", "gslb.example.org MX"]
for i in range(20000):
    r = random.random()
    if r < 0.8:
        q = random.choice(names)
        print(q if q.startswith("gslb.") else q.replace(" ", ".gslb.example.org ", 1))
    else:
        print(f"nx{random.randrange(10**6)}.gslb.example.org A")
PY
start_server() {
    taskset -c 0 "$bin" demo --config "$work/example.toml" --listen "127.0.0.1:$port" --admin "$admin" \
        --control "$control" 2>"$work/server.log" &
    pid=$!
    for _ in $(seq 100); do
        dig +short +tries=1 +time=1 -p "$port" @127.0.0.1 app.gslb.example.org A 2>/dev/null | grep -q . && return
        sleep 0.1
    done
    echo "the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
}
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status"; }

echo
echo "## 2. A ${flood_seconds}-second flood at the maximum rate (RRL off)"
if [ "$flood_seconds" -gt 0 ]; then
    config false
    start_server
    echo "RSS before: $(rss)"
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$flood_seconds" -c 8 -q 500 2>&1 |
        grep -E "Queries (sent|completed|lost)|Queries per second|Average Latency"
    echo "RSS after:  $(rss) (peak $(hwm))"
    stop_server
fi

echo
echo "## 3. RRL (the example's settings: 100 answers/s per /24 and kind, slip 2) under a ${rrl_seconds}-second flood from one address"
config true
start_server
# Many outstanding queries: dropped answers leave dnsperf waiting out its 1 s timeout.
taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$rrl_seconds" -c 8 -q 20000 -t 1 2>&1 |
    grep -E "Queries (sent|completed|lost)"
curl -s "http://$admin/metrics" | grep '^switchyard_rrl_responses_total'
stop_server

echo
echo "## 4. From the tests (release build)"
cargo nextest run --release --no-fail-fast --no-capture -E \
    'test(slowloris) | test(amplification) | test(rrl_limits) | test(hostile_targets) | test(kill_9)' 2>&1 |
    grep -E '^(slowloris|amplification|RRL flood|hostile targets|kill -9)|^ *(FAIL|Summary)' || true
