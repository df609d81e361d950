#!/usr/bin/env python3
"""The raw figures of a bench/run.sh runs.tsv, one line per server, medians over rounds.

CPU 0 is the server's (alone there), CPU 1 dnsperf's: CPU 1 near 100 % with CPU 0 below
it means dnsperf, not the server, set the q/s, and only the CPU per answer (ratios.py)
separates the servers.   python3 bench/summary.py RUNS.tsv"""
import csv
import statistics
import sys


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
if not rows:
    print("(no rounds ran)")
    sys.exit(0)
by_server = {}
for row in rows:
    by_server.setdefault(row["server"], []).append(row)

print("| server | q/s (median) | q/s per round | server CPU % | dnsperf CPU % | lost (all rounds) "
      "| avg ms at saturation | p50 / p99 / p99.9 ms at fixed rate | peak RSS MiB | mix | response bytes |")
print("|---|---:|---|---:|---:|---:|---:|---|---:|---|---:|")
order = sorted(by_server, key=lambda s: -(median(num(r["qps"]) for r in by_server[s]) or 0))
for server in order:
    rs = sorted(by_server[server], key=lambda r: int(r["round"]))
    col = lambda key: median(num(r.get(key)) for r in rs)
    sent = sum(int(num(r["sent"]) or 0) for r in rs)
    lost = sum(int(num(r["lost"]) or 0) for r in rs)
    lost_s = f"{lost:,} ({100.0 * lost / sent:.3f} %)" if sent else "n/a"
    print(f"| {server} | {fmt(col('qps'))} | {' / '.join(fmt(num(r['qps'])) for r in rs)} "
          f"| {fmt(col('srv_cpu_pct'))} | {fmt(col('gen_cpu_pct'))} | {lost_s} | {fmt(col('avg_ms'), 3)} "
          f"| {fmt(col('p50_ms'), 3)} / {fmt(col('p99_ms'), 3)} / {fmt(col('p999_ms'), 3)} "
          f"| {fmt(max(num(r['peak_rss_mib']) or 0 for r in rs), 1)} | {rs[0].get('mix') or 'plain'} "
          f"| {fmt(col('resp_bytes'))} |")
