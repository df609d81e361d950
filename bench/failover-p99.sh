#!/usr/bin/env bash
# Latency of signed switchyard through a failover that forces new signatures: the DO
# mix at a fixed rate against ours-signed, one window without a failover and one in
# which a region is drained through the admin API; p50 / p99 / p99.9 / max of each, the
# worst one-second p99 inside each, and the signatures switchyard made in each (from
# /metrics). See bench/README.md.
#   bench/failover-p99.sh                # TRIALS=3 WINDOW=10 QPS=5000 REGION=eu-west NOTICE=0
#   OURS_BIN=/path/to/switchyard bench/failover-p99.sh
# Each trial is a fresh server (an empty signature cache): start, WARM s of the mix (the
# steady state's RRsets get signed), a WINDOW s baseline, then a WINDOW s window with
# `POST /regions/REGION/drain?notice=0` at DRAIN_AT s into it: the region's clients get
# other addresses at the failover TTL, RRsets the cache has not seen, signed on the spot.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

TRIALS=${TRIALS:-3}
WINDOW=${WINDOW:-10}             # seconds per window
QPS=${QPS:-5000}                 # the fixed rate (dnsperf -Q)
WARM=${WARM:-5}
DRAIN_AT=${DRAIN_AT:-$((WINDOW / 2))}
REGION=${REGION:-eu-west}
NOTICE=${NOTICE:-0}              # the drain's notice (?notice=): 0 drains at once
ADMIN=${ADMIN:-127.0.0.1:9392}   # ours-signed's admin API for this script only
CLIENTS=${CLIENTS:-4}
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: the server on CPU $SERVER_CPU, dnsperf on CPU $LOADGEN_CPU"
((DRAIN_AT > 0 && DRAIN_AT < WINDOW)) || die "DRAIN_AT must be inside the window (0 < DRAIN_AT < WINDOW)"

( set -e; setup ours-signed ) || exit 1

TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$WORK/results/failover-p99-$TS}
mkdir -p "$OUT/raw"
cleanup() { server_stop; gw_stop_all; }
trap cleanup EXIT
trap 'exit 130' INT TERM
gw_start_all || exit 1
export OURS_SIGNED_ADMIN=$ADMIN

# signatures: "rrset denial" from switchyard_dnssec_signatures_total
signatures() {
  curl -fsS "http://$ADMIN/metrics" 2>/dev/null | awk '
    /^switchyard_dnssec_signatures_total\{/ {
      if ($1 ~ /kind="rrset"/) r = $2; else if ($1 ~ /kind="denial"/) d = $2 }
    END {printf "%d %d\n", r, d}'
}
# window_stats FILE: "p50 p99 p999 max worst_1s_p99 at_drain_1s_p99 answered timeouts"
# (ms) from dnsperf -v's lines. Lines come in the order answers arrive, at QPS a second,
# so line k is about k/QPS s into the window: one-second slices are cut by line number;
# at_drain is the slice from DRAIN_AT s on (in the baseline: the same second, no drain).
window_stats() {
  python3 - "$1" "$QPS" "$DRAIN_AT" <<'PY'
import sys
lat, slices, timeouts = [], {}, 0
qps, at = int(sys.argv[2]), int(sys.argv[3])
k = 0
for line in open(sys.argv[1], errors="replace"):
    f = line.split()
    if not f or f[0] != ">":
        continue
    k += 1
    if f[1] == "T":
        timeouts += 1
        continue
    ms = float(f[-1]) * 1000
    lat.append(ms)
    slices.setdefault(k // qps, []).append(ms)
def pct(v, q):
    v = sorted(v)
    return v[max(0, min(len(v) - 1, int(len(v) * q) - 1))] if v else float("nan")
worst = max((pct(v, 0.99) for v in slices.values() if len(v) >= qps // 2), default=float("nan"))
print(f"{pct(lat, .5):.3f} {pct(lat, .99):.3f} {pct(lat, .999):.3f} {max(lat, default=float('nan')):.3f} "
      f"{worst:.3f} {pct(slices.get(at, []), 0.99):.3f} {len(lat)} {timeouts}")
PY
}

TSV=$OUT/failover.tsv
printf 'trial\twindow\tp50_ms\tp99_ms\tp999_ms\tmax_ms\tworst_1s_p99_ms\tat_drain_1s_p99_ms\tanswered\ttimeouts\tsigs_rrset\tsigs_denial\tdrain\n' >"$TSV"
for ((t = 1; t <= TRIALS; t++)); do
  log "trial $t/$TRIALS: ours-signed, DO mix at $QPS q/s, windows of ${WINDOW}s, $REGION drained at ${DRAIN_AT}s of the second"
  server_start ours-signed || die "ours-signed did not start"
  token=$(cat "$RUNDIR/admin-token")
  for _ in $(seq 100); do curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  # The mix's queries (DO, no cookie) must get signed answers, or the figures mean nothing.
  printf 'static.gslb.example A\napp.gslb.example A 81.2.69.0/24 192.0.2.2\nnx-42.gslb.example A\n' |
    /usr/bin/python3 "$BENCH/dnssec-check.py" "$PORT" gslb.example. "$(server_dnskey | grep DNSKEY | head -1)" \
      >"$OUT/raw/t$t-check.txt" 2>&1 || { cat "$OUT/raw/t$t-check.txt" >&2; die "ours-signed's answers to DO queries are not signed"; }
  dnsperf_run "$OUT/raw/t$t-warm.txt" "$WARM" -c "$CLIENTS" -Q "$QPS"
  read -r r0 d0 < <(signatures)
  dnsperf_run "$WORK/fo-base.txt" "$WINDOW" -c "$CLIENTS" -Q "$QPS" -v
  read -r r1 d1 < <(signatures)
  dnsperf_run "$WORK/fo-drain.txt" "$WINDOW" -c "$CLIENTS" -Q "$QPS" -v &
  perf=$!
  sleep "$DRAIN_AT"
  drained=$(curl -sS -X POST -H "Authorization: Bearer $token" "http://$ADMIN/regions/$REGION/drain?notice=$NOTICE&by=bench&reason=failover-p99" 2>&1 | head -1)
  log "  drain: $drained"
  wait "$perf"
  read -r r2 d2 < <(signatures)
  for w in base drain; do
    read -r p50 p99 p999 max worst atd n tmo < <(window_stats "$WORK/fo-$w.txt")
    if [ "$w" = base ]; then sr=$((r1 - r0)) sd=$((d1 - d0)) dr=-; else sr=$((r2 - r1)) sd=$((d2 - d1)) dr=$drained; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$w" "$p50" "$p99" "$p999" "$max" "$worst" "$atd" "$n" "$tmo" \
      "$sr" "$sd" "$dr" >>"$TSV"
    grep -v '^>' "$WORK/fo-$w.txt" >"$OUT/raw/t$t-$w.txt"
    rm -f "$WORK/fo-$w.txt"
    log "  $w: p50 $p50 p99 $p99 p99.9 $p999 max $max ms, worst 1-s p99 $worst ms, p99 of the drain's second $atd ms; $n answered, $tmo timed out; signatures: $sr RRsets, $sd denials"
  done
  server_stop
done

python3 - "$TSV" "$QPS" "$WINDOW" "$REGION" "$NOTICE" <<'PY' | tee "$OUT/summary.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
qps, window, region, notice = sys.argv[2:6]
def f(x):
    try:
        return float(x)
    except ValueError:
        return None
def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
fmt = lambda v, nd=3: "n/a" if v is None else f"{v:,.{nd}f}"
print(f"# bench/failover-p99.sh: signed switchyard (DO mix) at {qps} q/s, windows of {window} s; "
      f"{region} drained (notice={notice}) in the second window\n")
print("| window | p50 ms | p99 ms | p99.9 ms | max ms | worst 1-s p99 ms | p99 of the drain's second ms | answered | timed out | new RRset signatures | denial signatures |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| trial {r['trial']} {'failover' if r['window'] == 'drain' else 'baseline'} | {r['p50_ms']} | {r['p99_ms']} "
          f"| {r['p999_ms']} | {r['max_ms']} | {r['worst_1s_p99_ms']} | {r['at_drain_1s_p99_ms']} | {r['answered']} | {r['timeouts']} "
          f"| {r['sigs_rrset']} | {r['sigs_denial']} |")
print()
ratios = {}
for key in ("p99_ms", "worst_1s_p99_ms", "at_drain_1s_p99_ms", "p999_ms"):
    per = []
    for t in sorted({r["trial"] for r in rows}, key=int):
        b = [f(r[key]) for r in rows if r["trial"] == t and r["window"] == "base"]
        d = [f(r[key]) for r in rows if r["trial"] == t and r["window"] == "drain"]
        if b and d and b[0] and d[0] is not None:
            per.append(d[0] / b[0])
    ratios[key] = per
print("| failover / baseline, per trial | median | per trial |")
print("|---|---:|---|")
for key, name in (("p99_ms", "p99"), ("worst_1s_p99_ms", "worst 1-s p99"),
                  ("at_drain_1s_p99_ms", "p99 of the drain's second"), ("p999_ms", "p99.9")):
    print(f"| {name} | {fmt(med(ratios[key]), 2)} | {' / '.join(fmt(v, 2) for v in ratios[key])} |")
PY
log "results in $OUT"
