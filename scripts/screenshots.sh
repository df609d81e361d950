#!/usr/bin/env bash
# Takes the README's status-page screenshots with headless Chromium: the demo healthy
# (docs/status-page.png), then with eu-west's gateway stopped (docs/status-page-failover.png).
# Needs chromium (apt-get install chromium) and dig; uses ports 15353, 19353 and 18080-18083.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "screenshots: chromium is missing (apt-get install chromium)" >&2; exit 1; }
cargo build --locked -q
bin="${CARGO_TARGET_DIR:-target}/debug/switchyard"
"$bin" demo --listen 127.0.0.1:15353 --admin 127.0.0.1:19353 --control 127.0.0.1:18080 2>/tmp/switchyard-screenshots.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -sf http://127.0.0.1:19353/readyz >/dev/null && break
  kill -0 $pid || { cat /tmp/switchyard-screenshots.log >&2; exit 1; }
  sleep 0.2
done
shot() { chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --window-size=1500,"$2" --screenshot="$1" http://127.0.0.1:19353/ 2>/dev/null; }
shot docs/status-page.png 1250
curl -s -X POST http://127.0.0.1:18080/eu-west/stop >/dev/null
# Two failed probes, a second apart: wait for the verdict, then ask, so the record has
# its first changed answer.
for _ in $(seq 1 100); do
  curl -s http://127.0.0.1:19353/status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if any(r["name"]=="eu-west" and r["up"] is False for r in s["regions"]) else 1)' && break
  sleep 0.1
done
for _ in 1 2 3; do dig @127.0.0.1 -p 15353 app.gslb.example.org +subnet=81.2.69.0/24 +short >/dev/null; done
for _ in $(seq 1 100); do
  curl -s http://127.0.0.1:19353/events | grep -q 'first_answer_changed":[0-9]' && break
  sleep 0.1
done
shot docs/status-page-failover.png 1350
curl -s -X POST http://127.0.0.1:18080/eu-west/start >/dev/null
echo "wrote docs/status-page.png and docs/status-page-failover.png"
