# Shared by bench/setup.sh, run.sh, reload.sh and scaling.sh (sourced, bash).
#
# Everything listens on 127.0.0.1; every process started here is remembered by its PID
# and stopped by it (and its descendants), never by name. Generated files go under
# $WORK; nothing is written into the repository.

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
WORK=${WORK:-/tmp/switchyard-bench}
case $WORK in /*) ;; *) WORK=$PWD/$WORK ;; esac
DATA=$WORK/data
MMDB=$DATA/gslb-geoip2-country.mmdb
QUERIES=$DATA/queries.bin
QUERIES_DO=$DATA/queries-do.bin  # the same queries with the DO bit: the signed servers' mix
SERVER_CPU=${SERVER_CPU:-0}    # the server under test is pinned here
LOADGEN_CPU=${LOADGEN_CPU:-1}  # dnsperf, the gateways and nats-server here

# The release build, where cargo puts it: $CARGO_TARGET_DIR if set, else target/.
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
OURS_BIN_GIVEN=${OURS_BIN:+yes}
OURS_BIN=${OURS_BIN:-$TARGET_DIR/release/switchyard}
export BENCH REPO WORK DATA MMDB QUERIES QUERIES_DO OURS_BIN

# What every script needs: the load generator, dig, taskset, /proc readers, python3
# (the gateways, the tables), a C compiler (the minimal responder).
BASE_PACKAGES="dnsperf bind9-dnsutils util-linux procps python3 gcc libc6-dev"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- setup

# need_packages PKG...: installs those of the Debian packages that are missing.
need_packages() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them by hand"
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  log "installing ${missing[*]}"
  mkdir -p "$WORK"
  {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  } >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; die "apt-get failed (log: $WORK/apt.log)"; }
}

# build_switchyard: the release binary, unless OURS_BIN names one.
build_switchyard() {
  if [ -n "$OURS_BIN_GIVEN" ]; then
    [ -x "$OURS_BIN" ] || die "OURS_BIN=$OURS_BIN is not an executable"
    return 0
  fi
  command -v cargo >/dev/null || die "cargo is needed to build switchyard (or set OURS_BIN)"
  log "cargo build --release (switchyard, into $TARGET_DIR)"
  (cd "$REPO" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --locked -q --bin switchyard) ||
    die "the release build failed"
}

# build_data: the GeoIP2-schema country database and the query mix (bench/data), rebuilt
# when the tool or any of its inputs changed.
build_data() {
  command -v cargo >/dev/null || die "cargo is needed to build bench/data"
  (CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --locked -q --manifest-path "$BENCH/data/Cargo.toml") ||
    die "building bench/data failed"
  local tool=$TARGET_DIR/release/switchyard-bench-data stamp
  local inputs=("$tool" "$REPO/geoip/default.mmdb" "$REPO/geoip/countries.csv" "$BENCH/geo/anchors.txt" "$BENCH/geo/regions.txt")
  stamp=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
  if [ "$(cat "$DATA/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -s "$MMDB" ] || [ ! -s "$QUERIES" ] ||
    [ ! -s "$QUERIES_DO" ]; then
    log "building the data into $DATA (country database, query mixes)"
    mkdir -p "$DATA"
    rm -f "$DATA/stamp"
    "$tool" "$REPO/geoip/default.mmdb" "$REPO/geoip/countries.csv" "$BENCH/geo" "$DATA" || die "bench/data failed"
    echo "$stamp" >"$DATA/stamp"
  fi
}

# build_responder: the minimal responder (bench/responder/responder.c).
RESPONDER=$WORK/bin/responder
build_responder() {
  mkdir -p "$WORK/bin"
  if [ ! -x "$RESPONDER" ] || [ "$BENCH/responder/responder.c" -nt "$RESPONDER" ]; then
    cc -O2 -Wall -o "$RESPONDER" "$BENCH/responder/responder.c" || die "compiling the responder failed"
  fi
}

# setup SERVER...: the packages, builds and data those servers need.
setup() {
  local s pkgs=$BASE_PACKAGES
  for s in "$@"; do load_server "$s" || exit 1; pkgs="$pkgs ${PACKAGES:-}"; done
  # shellcheck disable=SC2086
  need_packages $pkgs
  for s in "$@"; do
    load_server "$s"
    if declare -F server_setup >/dev/null; then server_setup || die "$s: setup failed"; fi
  done
  build_data
}

# ---------------------------------------------------------------- templates

# render SRC DST: SRC with @PORT@ @RUNDIR@ @BENCH@ @WORK@ @MMDB@ @APP@ replaced.
render() {
  local args=() k v
  for k in PORT RUNDIR BENCH WORK MMDB APP; do
    v=${!k-}
    v=${v//\\/\\\\}; v=${v//|/\\|}; v=${v//&/\\&}
    args+=(-e "s|@$k@|$v|g")
  done
  sed "${args[@]}" "$1" >"$2"
}

# ---------------------------------------------------------------- processes

# descendants PID: the PID and all its descendants.
descendants() {
  local c
  echo "$1"
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do descendants "$c"; done
}

# stop_tree PID: SIGTERM, up to 10 s, then SIGKILL; the same for any descendant left.
# Safe under `set -e` (a process already gone is not an error).
stop_tree() {
  local pid=$1 tree p
  [ -n "$pid" ] || return 0
  tree=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in $tree; do [ "$p" = "$pid" ] || kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in $tree; do [ "$p" = "$pid" ] || kill -KILL "$p" 2>/dev/null || true; done
  return 0
}

# answers PORT: whether something on 127.0.0.1:PORT answers static.gslb.example A.
answers() {
  dig +time=1 +tries=1 +norec -p "$1" @127.0.0.1 static.gslb.example A 2>/dev/null | grep -q 'status: NOERROR'
}

# ---------------------------------------------------------------- gateways

# Three small HTTP servers on loopback stand for the regions' gateways; the servers
# with health checks probe them the whole time, and the verify pass stops eu-west's.
declare -A GW_PID=()
declare -A GW_ADDR=([us-east]=127.0.0.11 [eu-west]=127.0.0.12 [ap-southeast]=127.0.0.13)
GW_PORT=8080

gw_start() {  # gw_start REGION
  local r=$1
  mkdir -p "$WORK/www"
  echo ok >"$WORK/www/index.html"
  taskset -c "$LOADGEN_CPU" python3 -m http.server --bind "${GW_ADDR[$r]}" --directory "$WORK/www" "$GW_PORT" \
    >"$WORK/gw-$r.log" 2>&1 &
  GW_PID[$r]=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/${GW_ADDR[$r]}/$GW_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  log "the $r gateway did not come up (${GW_ADDR[$r]}:$GW_PORT; log: $WORK/gw-$r.log)"
  return 1
}
gw_stop() {  # gw_stop REGION
  stop_tree "${GW_PID[$1]:-}"
  GW_PID[$1]=
}
gw_start_all() { local r; for r in us-east eu-west ap-southeast; do gw_start "$r" || return 1; done; }
gw_stop_all() { local r; for r in "${!GW_PID[@]}"; do gw_stop "$r"; done; }

# ---------------------------------------------------------------- server slots

# A slot is bench/NAME/server.sh (switchyard's: ours, ours-fleet) or
# bench/peers/NAME/server.sh, sourced here. It sets
#   PORT      the 127.0.0.1 port it serves on (unique)
#   CHECK     geo (app follows the continent map per ECS subnet), static (app is
#             192.0.2.1 for everyone) or none (not checked)
#   HEALTH    yes: the verify pass takes eu-west's gateway down and expects failover
#   PACKAGES  Debian packages it needs (optional)
#   MIX       do: it is loaded with the DO mix (queries-do.bin) instead of queries.bin
#   SIGNED    yes: the verify pass asks with DO and expects signed answers; the slot
#             then defines server_dnskey (prints the zone's SEP DNSKEY record, the trust
#             anchor the answers are validated with)
# and defines server_prepare (write its config into $RUNDIR, fresh for each start),
# server_cmd (prints the foreground command), server_version, and optionally
# server_setup (builds what it runs; called by setup).
load_server() {  # load_server NAME
  unset -f server_prepare server_cmd server_version server_setup server_dnskey
  unset PORT CHECK HEALTH PACKAGES MIX SIGNED
  if [ -f "$BENCH/$1/server.sh" ]; then
    SERVER_DIR=$BENCH/$1
  else
    SERVER_DIR=$BENCH/peers/$1
  fi
  [ -f "$SERVER_DIR/server.sh" ] || { log "no such server: $1 (no bench/$1/ nor bench/peers/$1/)"; return 1; }
  # shellcheck disable=SC1091
  . "$SERVER_DIR/server.sh"
  RUNDIR=$WORK/run/$1
  MIX=${MIX:-plain}
  SIGNED=${SIGNED:-no}
  export PORT RUNDIR SERVER_DIR
}

# mix_file: the query file of the loaded slot's MIX.
mix_file() { if [ "${MIX:-plain}" = "do" ]; then echo "$QUERIES_DO"; else echo "$QUERIES"; fi; }

SERVER_PID=
server_start() {  # server_start NAME: pinned to SERVER_CPU, up within 30 s
  local cmd
  load_server "$1" || return 1
  rm -rf "$RUNDIR"
  mkdir -p "$RUNDIR"
  server_prepare || { log "$1: server_prepare failed"; return 1; }
  cmd=$(server_cmd)
  echo "$cmd" >"$RUNDIR/cmdline"
  # shellcheck disable=SC2086
  taskset -c "$SERVER_CPU" $cmd >"$RUNDIR/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "$1 exited while starting:"
      tail -20 "$RUNDIR/server.log" >&2
      SERVER_PID=
      return 1
    fi
    answers "$PORT" && return 0
    sleep 0.1
  done
  log "$1 does not answer after 30 s (log: $RUNDIR/server.log)"
  server_stop
  return 1
}
server_stop() { stop_tree "$SERVER_PID"; SERVER_PID=; }

# peak RSS of the server's process tree (sum of VmHWM), MiB
server_peak_rss_mib() {
  local p kib total=0
  for p in $(descendants "$SERVER_PID"); do
    kib=$(awk '/^VmHWM:/ {print $2}' /proc/"$p"/status 2>/dev/null || true)
    total=$((total + ${kib:-0}))
  done
  awk -v k="$total" 'BEGIN {printf "%.1f", k / 1024}'
}

# ---------------------------------------------------------------- CPU and dnsperf

# cpu_ticks CPU: "busy total" jiffies of one CPU from /proc/stat. The server is alone on
# its CPU, so that CPU's busy share over the load is the server's use, kernel and softirq
# work for its packets included, however many processes it runs.
cpu_ticks() {
  awk -v c="cpu$1" '$1 == c {busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6}' /proc/stat
}
busy_pct() {  # busy_pct "B0 T0" "B1 T1"
  awk -v a="$1" -v b="$2" 'BEGIN {split(a, x); split(b, y); d = y[2] - x[2]; printf "%.0f", (d > 0 ? (y[1] - x[1]) * 100 / d : 0)}'
}

# DNSPERF_MAX_QPS: the count bound of every load, as queries per second of its length
# (dnsperf -n: passes over the query file). Far above what 2 cores reach on loopback.
DNSPERF_MAX_QPS=1000000

# dnsperf_run OUT SECONDS ARGS...: the query mix (100 000 queries; the slot's MIX: plain
# or with DO) against 127.0.0.1:$PORT from LOADGEN_CPU, for SECONDS and at most SECONDS x DNSPERF_MAX_QPS
# queries (killed 30 s past SECONDS, should it hang).
dnsperf_run() {
  local out=$1 secs=$2
  shift 2
  timeout -k 5 $((secs + 30)) taskset -c "$LOADGEN_CPU" \
    dnsperf -B -d "$(mix_file)" -s 127.0.0.1 -p "$PORT" -l "$secs" -n $((secs * DNSPERF_MAX_QPS / 100000 + 1)) \
    "$@" >"$out" 2>&1
}
# dnsperf_parse FILE: "qps avg_ms lost completed sent"
dnsperf_parse() {
  awk '/Queries sent:/ {sent = $3} /Queries completed:/ {done = $3} /Queries lost:/ {lost = $3}
       /Queries per second:/ {qps = $4} /Average Latency \(s\):/ {avg = $4 * 1000}
       END {printf "%.0f %.3f %d %d %d\n", qps, avg, lost, done, sent}' "$1"
}
# latency_pct FILE: "p50 p99 p99.9 n" in ms, from dnsperf -v's per-query lines
latency_pct() {
  awk '$1 == ">" && $2 != "T" {print $NF * 1000}' "$1" | sort -n | awk '
    {v[NR] = $1}
    function at(q,  i) {i = int(NR * q); return v[i < 1 ? 1 : i]}
    END {if (NR == 0) print "NA NA NA 0"; else printf "%.3f %.3f %.3f %d\n", at(0.50), at(0.99), at(0.999), NR}'
}
