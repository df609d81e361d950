#!/usr/bin/env bash
# UDP workers against cores: the release binary with `udp_workers` = 1, then 2, each
# run for SECONDS against the same dnsperf load; prints q/s, the server's CPU, and
# how the packets spread over the worker threads (their CPU time each).
#
#   bench/scaling.sh            # SECONDS_LOAD=10 FAST_PATH=true CLIENTS=8
#
# On a 2-core machine dnsperf needs a core of its own, so the server can only gain
# what the second core has left; the per-thread CPU times show that SO_REUSEPORT
# spreads the queries over both workers. FAST_PATH=false makes each query costlier
# (the hickory path), so the server, not dnsperf, is the bottleneck.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
secs=${SECONDS_LOAD:-10}
fast=${FAST_PATH:-true}
clients=${CLIENTS:-8}
port=5455
command -v dnsperf >/dev/null || { apt-get update -qq && apt-get install -y -qq dnsperf >/dev/null; }
(cd "$repo" && cargo build --release --locked -q)
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
python3 - >"$work/queries.txt" <<'PY'
import random
random.seed(7)
for i in range(20000):
    print(random.choice(["app A", "app AAAA", "fast A", "static A", "www A"]).replace(" ", ".gslb.example.org ", 1))
PY
ticks=$(getconf CLK_TCK)
printf '%-8s %10s %12s %14s   %s\n' workers "q/s" "server CPU" "µs CPU/answer" "CPU seconds per UDP worker thread"
for workers in 1 2; do
    sed -e "s|geoip_db = \"../geoip/default.mmdb\"|geoip_db = \"$repo/geoip/default.mmdb\"|" \
        -e "s|^enabled = true|enabled = false|" \
        -e "s|^edns_udp_size = 1232|edns_udp_size = 1232\nudp_workers = $workers\nfast_path = $fast|" \
        "$repo/config/example.toml" >"$work/config.toml"
    "$repo/target/release/switchyard" demo --config "$work/config.toml" --listen "127.0.0.1:$port" \
        --admin 127.0.0.1:0 --control 127.0.0.1:18455 2>"$work/log" &
    pid=$!
    for _ in $(seq 100); do
        dig +short +tries=1 +time=1 -p $port @127.0.0.1 app.gslb.example.org A 2>/dev/null | grep -q . && break
        sleep 0.1
    done
    cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(dnsperf -s 127.0.0.1 -p $port -d "$work/queries.txt" -l "$secs" -c "$clients" -q 500 2>&1)
    cpu1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
    done_q=$(echo "$out" | awk '/Queries completed/ {print $3}')
    threads=$(for t in /proc/$pid/task/*; do
        name=$(cat "$t/comm")
        case $name in udp-*) awk -v n="$name" -v hz="$ticks" '{printf "%s %.1f  ", n, ($14+$15)/hz}' "$t/stat" ;; esac
    done)
    python3 -c "
cpu=($cpu1-$cpu0)/$ticks; q=$done_q
print(f'{$workers:<8} {float(\"$qps\"):>10,.0f} {cpu/$secs*100:>11.0f}% {cpu/q*1e6:>14.2f}   $threads')"
    kill $pid
    wait $pid 2>/dev/null || true
    pid=""
done
