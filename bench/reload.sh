#!/usr/bin/env bash
# A big config reloaded under load: the benchmark's scenario plus NAMES extra names,
# dnsperf at a fixed QPS against the release binary while it gets a SIGHUP every second;
# prints how long each reload took (the server's own log) and what dnsperf lost.
#   bench/reload.sh                     # NAMES=10000 QPS=20000 SECONDS_LOAD=20
# Sets up what is missing (the same code as run.sh: dnsperf, the release build, the data).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
names=${NAMES:-10000}
qps=${QPS:-20000}
secs=${SECONDS_LOAD:-20}

setup ours
PORT=${RELOAD_PORT:-5398}
dir=$(mktemp -d)
pid=
hups=
cleanup() {
  [ -z "$hups" ] || kill "$hups" 2>/dev/null || true
  stop_tree "$pid"
  gw_stop_all
  rm -rf "$dir"
}
trap cleanup EXIT
gw_start_all

RUNDIR=$dir render "$BENCH/ours/ours.toml" "$dir/base.toml"
python3 - "$dir/base.toml" "$names" >"$dir/big.toml" <<'PY'
import sys
base, n = open(sys.argv[1]).read(), int(sys.argv[2])
extra = "".join(f'[names.n{k}]\npolicy = "failover"\nregions = ["eu-west", "us-east"]\n' for k in range(n))
i = base.index("[names.app]")
print(base[:i] + extra + base[i:])
PY
taskset -c "$SERVER_CPU" "$OURS_BIN" serve --config "$dir/big.toml" 2>"$dir/log" &
pid=$!
for _ in $(seq 300); do
  grep -q "first round of health checks complete" "$dir/log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; die "switchyard exited"; }
  sleep 0.1
done
answers "$PORT" || die "switchyard does not answer on 127.0.0.1:$PORT (log: $dir/log)"

(for _ in $(seq "$secs"); do sleep 1; kill -HUP "$pid"; done) &
hups=$!
log "$((names + 1)) names, a SIGHUP a second for ${secs}s, dnsperf at $qps q/s"
dnsperf_run "$dir/dnsperf.txt" "$secs" -Q "$qps" -c 4 || true
wait "$hups" || true
hups=
sleep 1  # the last SIGHUP's reload
grep -E "Queries (sent|completed|lost)" "$dir/dnsperf.txt"
took=$(grep -o 'took_ms=[0-9]*' "$dir/log" | cut -d= -f2 | tr '\n' ' ')
echo "reloads: $(wc -w <<<"$took"), each (ms): $took"
