#!/usr/bin/env bash
# UDP workers against cores: the release binary with `udp_workers` = 1, then 2, each
# run for SECONDS_LOAD against the same dnsperf load; prints q/s, the server's CPU, and
# how the packets spread over the worker threads (their CPU time each).
#
#   bench/scaling.sh                   # SECONDS_LOAD=10 FAST_PATH=true CLIENTS=8
#   SCENARIO=heavy bench/scaling.sh    # `nearest` over REGIONS=400 regions per query
#
# Nothing is pinned here: the server and dnsperf share both cores. On a 2-core machine
# dnsperf needs most of a core, so with the example's cheap queries the server never
# saturates one core and a second worker cannot raise q/s; the per-thread CPU times
# still show SO_REUSEPORT spreading the queries. The heavy scenario makes each answer
# cost the server several times what it costs dnsperf (a `nearest` ranking over hundreds
# of regions, one ECS subnet), so one worker saturates its core and a second worker can
# use what dnsperf leaves of the other.
#
# Uses config/example.toml and geoip/default.mmdb; sets up what is missing (dnsperf,
# dig, the release build) with the same code as run.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
secs=${SECONDS_LOAD:-10}
fast=${FAST_PATH:-true}
scenario=${SCENARIO:-example}
regions=${REGIONS:-400}
clients=${CLIENTS:-8}
port=${SCALING_PORT:-5455}

# shellcheck disable=SC2086
need_packages $BASE_PACKAGES
build_switchyard
dir=$(mktemp -d)
pid=
trap 'stop_tree "$pid"; rm -rf "$dir"' EXIT

if [ "$scenario" = heavy ]; then
  printf 'heavy.gslb.example.org A\n' >"$dir/queries.txt"
  # ECS 81.2.69.0/24 (GB) on every query: family 1, source 24, scope 0.
  ecs=(-E 8:00011800510245)
else
  python3 - >"$dir/queries.txt" <<'PY'
import random
random.seed(7)
for i in range(20000):
    print(random.choice(["app A", "app AAAA", "fast A", "static A", "www A"]).replace(" ", ".gslb.example.org ", 1))
PY
  ecs=()
fi
ticks=$(getconf CLK_TCK)
printf '%-8s %10s %12s %14s   %s\n' workers "q/s" "server CPU" "µs CPU/answer" "CPU seconds per UDP worker thread"
for workers in 1 2; do
  sed -e "s|geoip_db = \"../geoip/default.mmdb\"|geoip_db = \"$REPO/geoip/default.mmdb\"|" \
    -e "s|^enabled = true|enabled = false|" \
    -e "s|^edns_udp_size = 1232|edns_udp_size = 1232\nudp_workers = $workers\nfast_path = $fast|" \
    "$REPO/config/example.toml" >"$dir/config.toml"
  if [ "$scenario" = heavy ]; then
    # Many regions (no checks), all candidates of one `nearest` name.
    python3 - "$dir/config.toml" "$regions" <<'PY'
import random, sys
path, n = sys.argv[1], int(sys.argv[2])
text = open(path).read()
random.seed(3)
extra = "".join(
    f'[regions.r{i}]\nlocation = [{random.uniform(-60, 70):.2f}, {random.uniform(-180, 180):.2f}]\na = ["198.18.{i // 250}.{i % 250 + 1}"]\n'
    for i in range(n))
name = '[names.heavy]\npolicy = "nearest"\nregions = [' + ", ".join(f'"r{i}"' for i in range(n)) + ']\n'
i = text.index("[names.app]")
open(path, "w").write(text[:i] + extra + name + text[i:])
PY
  fi
  "$OURS_BIN" demo --config "$dir/config.toml" --listen "127.0.0.1:$port" \
    --admin 127.0.0.1:0 --control 127.0.0.1:18455 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do
    dig +short +tries=1 +time=1 -p "$port" @127.0.0.1 app.gslb.example.org A 2>/dev/null | grep -q . && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; die "switchyard exited"; }
    sleep 0.1
  done
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  # at most SECONDS_LOAD seconds and SECONDS_LOAD x DNSPERF_MAX_QPS queries
  passes=$((secs * DNSPERF_MAX_QPS / $(wc -l <"$dir/queries.txt") + 1))
  out=$(timeout -k 5 $((secs + 30)) dnsperf -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -l "$secs" -n "$passes" \
    -c "$clients" -q 500 "${ecs[@]}" 2>&1)
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
  done_q=$(echo "$out" | awk '/Queries completed/ {print $3}')
  threads=$(for t in /proc/"$pid"/task/*; do
    name=$(cat "$t/comm")
    case $name in udp-*) awk -v n="$name" -v hz="$ticks" '{printf "%s %.1f  ", n, ($14 + $15) / hz}' "$t/stat" ;; esac
  done)
  python3 -c "
cpu = ($cpu1 - $cpu0) / $ticks; q = $done_q
print(f'{$workers:<8} {float(\"$qps\"):>10,.0f} {cpu / $secs * 100:>11.0f}% {cpu / q * 1e6:>14.2f}   $threads')"
  stop_tree "$pid"
  pid=
done
