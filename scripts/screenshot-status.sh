#!/usr/bin/env bash
# Renders the admin status page of `switchyard demo` in headless Chromium and writes
# docs/status-page.png (the README's screenshot). Needs Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "apt-get install chromium first" >&2; exit 1; }
cargo build --release -q
work=$(mktemp -d)
target/release/switchyard demo --listen 127.0.0.1:0 --admin 127.0.0.1:19353 --control 127.0.0.1:18180 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:19353/readyz >/dev/null && break; sleep 0.1; done
# Show a failover on the page: stop eu-west's gateway, wait for the region to go down.
curl -sf -X POST http://127.0.0.1:18180/eu-west/stop >/dev/null
for _ in $(seq 100); do curl -sf http://127.0.0.1:19353/status | grep -q '"up":false' && break; sleep 0.1; done
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --window-size=1200,760 \
  --screenshot=docs/status-page.png http://127.0.0.1:19353/ 2>/dev/null
echo "wrote docs/status-page.png"
