#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and integration tests.
# Installs what the tests need (dig, unbound, PostgreSQL 15, Prometheus) with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v unbound >/dev/null || need+=(unbound)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets --all-features --locked -- -D warnings
# fault-injection: a query can be made to panic (tests/integration/abuse.rs).
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast --features fault-injection
else
  cargo test --locked --no-fail-fast --features fault-injection
fi
