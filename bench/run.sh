#!/usr/bin/env bash
# switchyard beside gdnsd, Knot and the minimal responder: the same rounds, the same
# query mix, on loopback. See bench/README.md.
#   bench/run.sh                                  # ROUNDS=3 DURATION=20
#   ROUNDS=5 SERVERS="gdnsd ours" bench/run.sh
#   SERVERS="gdnsd knot-geoip knot-geoip-signed ours ours-signed" bench/run.sh   # signed answers
#   CARGO_TARGET_DIR=/elsewhere bench/run.sh      # the binary is taken from there
# Sets up what is missing (bench/setup.sh), verifies every server's answers, runs the
# rounds, writes $WORK/results/<UTC time>/ and prints the tables.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

SERVERS=${SERVERS:-limit-mmsg gdnsd knot ours}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}         # seconds of saturating load, per server and round
WARM=${WARM:-5}                  # seconds of load before it (health checks settle too)
CLIENTS=${CLIENTS:-4}            # dnsperf -c
OUTSTANDING=${OUTSTANDING:-200}  # dnsperf -q
LAT_QPS=${LAT_QPS:-1000}         # the fixed rate of the latency phase
LAT_DURATION=${LAT_DURATION:-10}
VERIFY=${VERIFY:-1}              # 0: no verify pass
BENCHMARK=${BENCHMARK:-1}        # 0: verify only
read -ra LIST <<<"$SERVERS"
((${#LIST[@]})) || die "SERVERS is empty"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: the server on CPU $SERVER_CPU, dnsperf on CPU $LOADGEN_CPU"

( set -e; setup "${LIST[@]}" ) || exit 1

TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$WORK/results/$TS}
mkdir -p "$OUT/verify" "$OUT/raw"
cp "$DATA/anchors-expected.tsv" "$OUT/"

cleanup() { server_stop; gw_stop_all; }
trap cleanup EXIT
trap 'exit 130' INT TERM
gw_start_all || exit 1

# ---------------------------------------------------------------- verify
ask() { dig +norec +time=2 +tries=1 -p "$PORT" @127.0.0.1 "$@" 2>&1; }
a_records() { awk '/ANSWER SECTION/ {f = 1; next} f && /^$/ {exit} f && $4 == "A" {print $5}' | paste -sd, -; }
region_addr() { awk -v r="$1" '!/^#/ && $1 == r {print $2}' "$BENCH/geo/regions.txt"; }

# wait_for SUBNET WANT SECONDS: asks for app with that ECS subnet until the answer is
# WANT; prints the last answer and the seconds it took.
wait_for() {
  local t0=$SECONDS got=
  while ((SECONDS - t0 < $3)); do
    got=$(dig +norec +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 app.gslb.example A +subnet="$1" 2>/dev/null | paste -sd, -)
    [ "$got" = "$2" ] && break
    sleep 0.5
  done
  echo "$got after $((SECONDS - t0)) s"
}

# verify_signed: the signed slot's answers to DO queries carry RRSIGs, and validate with
# the zone's DNSKEY as the trust anchor: delv (no ECS) for static, app and a name that
# does not exist; dnssec-check.py (dnspython, ECS) for app from each anchor subnet.
verify_signed() {
  local dnskey out bad=0 n
  dnskey=$(server_dnskey 2>&1 | grep DNSKEY | head -1)
  echo "trust anchor: $dnskey"
  [ -n "$dnskey" ] || { echo "MISMATCH: no DNSKEY from the slot"; return 1; }
  awk '{for (i = 1; i < NF; i++) if ($i == "DNSKEY") break
        printf "trust-anchors { gslb.example. static-key %s %s %s \"", $(i + 1), $(i + 2), $(i + 3)
        for (j = i + 4; j <= NF; j++) printf "%s", $j; print "\"; };"}' <<<"$dnskey" >"$RUNDIR/anchor.conf"
  for n in static app; do
    out=$(ask "$n.gslb.example" A +dnssec)
    echo "$out" | sed -n '/HEADER/p;/flags:.*do;/p;/ANSWER SECTION/,/^$/p'
    grep -Eq "^$n\.gslb\.example\.[[:space:]].*RRSIG[[:space:]]+A " <<<"$out" || { echo "MISMATCH $n: no RRSIG A"; bad=1; }
  done
  out=$(ask nx-42.gslb.example A +dnssec)
  echo "$out" | sed -n '/HEADER/p;/AUTHORITY SECTION/,/^$/p'
  grep -Eq 'RRSIG[[:space:]]+NSEC ' <<<"$out" || { echo "MISMATCH nx-42: no signed NSEC"; bad=1; }
  for n in static app nx-42; do
    echo "## delv $n.gslb.example A"
    out=$(delv @127.0.0.1 -p "$PORT" -a "$RUNDIR/anchor.conf" +root=gslb.example "$n.gslb.example" A 2>&1)
    echo "$out"
    grep -q 'fully validated' <<<"$out" || { echo "MISMATCH: delv did not validate $n"; bad=1; }
  done
  echo "## dnssec-check.py (dnspython): app per anchor subnet, with ECS"
  {
    echo "static.gslb.example A"
    echo "nx-42.gslb.example A"
    grep -v '^#' "$DATA/anchors-expected.tsv" | awk '{print "app.gslb.example A", $1, $5}'
  } | /usr/bin/python3 "$BENCH/dnssec-check.py" "$PORT" gslb.example. "$dnskey" || bad=1
  return $bad
}

verify_server() {  # verify_server NAME: writes $OUT/verify/NAME.txt; 0 if all is right
  local f=$OUT/verify/$1.txt bad=0 net cc cont region addr got out n=0 miss=0
  server_start "$1" || { echo "FAIL: did not start" >"$f"; log "verify $1: did not start"; return 1; }
  {
    echo "# $1: $(server_version)"
    echo "# taskset -c $SERVER_CPU $(cat "$RUNDIR/cmdline")"
    echo "# check=$CHECK health=$HEALTH signed=$SIGNED mix=$MIX port=$PORT"
    sleep 3  # the first health checks
    out=$(ask static.gslb.example A)
    got=$(a_records <<<"$out")
    echo "$out" | sed -n '/HEADER/p;/ANSWER SECTION/,/^$/p'
    if [ "$CHECK" != none ] && [ "$got" != 192.0.2.10 ]; then echo "MISMATCH static: $got"; bad=1; fi
    out=$(ask nx-42.gslb.example A)
    echo "$out" | grep HEADER
    if [ "$CHECK" != none ] && ! grep -q 'status: NXDOMAIN' <<<"$out"; then echo "MISMATCH nx-42: not NXDOMAIN"; bad=1; fi
    while read -r net cc cont region addr; do
      out=$(ask app.gslb.example A +subnet="$net")
      got=$(a_records <<<"$out")
      echo
      echo "## app.gslb.example A, ECS $net ($cc, $cont): expect $region $addr"
      echo "$out" | sed -n '/HEADER/p;/CLIENT-SUBNET/p;/ANSWER SECTION/,/^$/p'
      case $CHECK in
        geo) [ "$got" = "$addr" ] || { echo "MISMATCH: got $got"; bad=1; } ;;
        static) [ "$got" = 192.0.2.1 ] || { echo "MISMATCH: got $got"; bad=1; } ;;
      esac
    done < <(grep -v '^#' "$DATA/anchors-expected.tsv")
    if [ "$CHECK" = geo ]; then
      # 100 subnets of the load's ECS pool, the same 100 for every server
      while read -r net cc cont region; do
        addr=$(region_addr "$region")
        got=$(dig +norec +short +time=2 +tries=1 -p "$PORT" @127.0.0.1 app.gslb.example A +subnet="$net" 2>&1)
        n=$((n + 1))
        [ "$got" = "$addr" ] || { miss=$((miss + 1)); echo "pool MISMATCH $net $cc $region: got $got"; }
      done < <(grep -v '^#' "$DATA/pool.tsv" | awk 'NR % 44 == 1' | head -100)
      echo
      echo "pool sample: $n subnets, $miss mismatches"
      [ "$miss" = 0 ] || bad=1
    fi
    if [ "$SIGNED" = yes ]; then
      echo
      echo "## signed answers (DO)"
      verify_signed || bad=1
    fi
    if [ "$HEALTH" = yes ]; then
      # eu-west's gateway down: a GB client must move to us-east, and back once it is up
      echo
      echo "## failover: eu-west's gateway (${GW_ADDR[eu-west]}:$GW_PORT) stopped"
      gw_stop eu-west
      got=$(wait_for 81.2.69.0/24 192.0.2.1 15)
      echo "GB client, eu-west down: $got (expect 192.0.2.1)"
      [[ $got == "192.0.2.1 "* ]] || bad=1
      gw_start eu-west || bad=1
      got=$(wait_for 81.2.69.0/24 192.0.2.2 15)
      echo "GB client, eu-west back: $got (expect 192.0.2.2)"
      [[ $got == "192.0.2.2 "* ]] || bad=1
    fi
    echo
    [ $bad = 0 ] && echo "RESULT: OK" || echo "RESULT: FAIL"
  } >"$f" 2>&1
  server_stop
  log "verify $1: $(tail -1 "$f")"
  return $bad
}

declare -A VERSION QFILE
for s in "${LIST[@]}"; do
  load_server "$s" && VERSION[$s]=$(server_version 2>&1) && QFILE[$s]=$(basename "$(mix_file)")
done
FAILED=
if [ "$VERIFY" = 1 ]; then
  for s in "${LIST[@]}"; do verify_server "$s" || FAILED="$FAILED $s"; done
fi
[ "$BENCHMARK" = 1 ] || { log "verify results in $OUT/verify"; exit 0; }

# ---------------------------------------------------------------- rounds
RUNS=$OUT/runs.tsv
printf 'round\tserver\tqps\tavg_ms\tlost\tcompleted\tsent\tsrv_cpu_pct\tp50_ms\tp99_ms\tp999_ms\tlat_n\tlat_lost\tpeak_rss_mib\tgen_cpu_pct\tmix\tresp_bytes\n' >"$RUNS"
N=${#LIST[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < N; i++)); do
    s=${LIST[$(((i + r - 1) % N))]}  # each round starts one server later
    log "round $r/$ROUNDS: $s"
    server_start "$s" || { log "$s did not start: skipped in round $r"; continue; }
    raw=$OUT/raw/r$r-$s
    dnsperf_run "$raw-warm.txt" "$WARM" -c "$CLIENTS" -q "$OUTSTANDING"
    c0=$(cpu_ticks "$SERVER_CPU"); g0=$(cpu_ticks "$LOADGEN_CPU")
    dnsperf_run "$raw-load.txt" "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING"
    c1=$(cpu_ticks "$SERVER_CPU"); g1=$(cpu_ticks "$LOADGEN_CPU")
    read -r qps avg lost answered sent < <(dnsperf_parse "$raw-load.txt")
    rbytes=$(awk '/Average packet size:/ {print $NF}' "$raw-load.txt")  # signed answers are bigger
    cpu=$(busy_pct "$c0" "$c1"); gcpu=$(busy_pct "$g0" "$g1")
    # latency at a fixed rate: dnsperf -v prints every query (kept out of results/)
    dnsperf_run "$WORK/latency.txt" "$LAT_DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -Q "$LAT_QPS" -v
    read -r p50 p99 p999 latn < <(latency_pct "$WORK/latency.txt")
    latlost=$(awk '/Queries lost:/ {print $3}' "$WORK/latency.txt")
    grep -v '^>' "$WORK/latency.txt" >"$raw-latency.txt"
    rm -f "$WORK/latency.txt"
    rss=$(server_peak_rss_mib)
    server_stop
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$qps" "$avg" "$lost" "$answered" \
      "$sent" "$cpu" "$p50" "$p99" "$p999" "$latn" "${latlost:-NA}" "$rss" "$gcpu" "$MIX" "${rbytes:-NA}" >>"$RUNS"
    log "  $s ($MIX mix): $qps q/s, lost $lost, CPU $SERVER_CPU (server) $cpu %, CPU $LOADGEN_CPU (dnsperf) $gcpu %, p99 at $LAT_QPS q/s $p99 ms, RSS $rss MiB"
  done
done

{
  echo "# bench/run.sh, $TS"
  echo
  echo "ROUNDS=$ROUNDS DURATION=${DURATION}s WARM=${WARM}s, dnsperf -c $CLIENTS -q $OUTSTANDING; latency at $LAT_QPS q/s"
  echo "for ${LAT_DURATION}s; server on CPU $SERVER_CPU, dnsperf on CPU $LOADGEN_CPU; $(nproc) CPUs, $(uname -r)."
  echo
  [ -z "$FAILED" ] || { echo "**Verification FAILED for:$FAILED** (see verify/): their figures are not comparable."; echo; }
  echo "Servers:"
  for s in "${LIST[@]}"; do echo "- $s: ${VERSION[$s]:-?}; load: ${QFILE[$s]:-?}"; done
  echo
  python3 "$BENCH/summary.py" "$RUNS"
  echo
  python3 "$BENCH/ratios.py" "$RUNS"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"
[ -z "$FAILED" ]
