#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and integration tests.
# Installs what the tests need (dig, unbound, PostgreSQL 15, Prometheus, nats-server,
# BIND's named-compilezone) with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v unbound >/dev/null || need+=(unbound)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v promtool >/dev/null || need+=(prometheus)
command -v nats-server >/dev/null || need+=(nats-server)
command -v named-compilezone >/dev/null || need+=(bind9-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets --all-features --locked -- -D warnings

# Live fuzzing is opt-in here (FUZZ_SECONDS=N runs every cargo-fuzz target N seconds on
# a quick unoptimized build, first, so that the test runner's summary closes the
# output); the tests below replay every seed and kept crash in any case, and
# scripts/fuzz.sh is for real fuzzing runs. CI does not fuzz: the instrumented build
# alone took three of its ten minutes, which now go to building and installing the
# Debian package.
fuzz_seconds=${FUZZ_SECONDS:-0}
fuzz_status=0
if [ "$fuzz_seconds" -gt 0 ]; then
  FUZZ_BUILD=${FUZZ_BUILD:-dev} FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} scripts/fuzz.sh "$fuzz_seconds" || fuzz_status=$?
fi
# fault-injection: a query can be made to panic (tests/integration/abuse.rs).
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast --features fault-injection
else
  cargo test --locked --no-fail-fast --features fault-injection
fi
if [ "$fuzz_status" -ne 0 ]; then
  echo "fuzzing found a crash (see the fuzz table above)" >&2
  exit "$fuzz_status"
fi
# The Debian package: build it from the debug binary above, install, serve, purge (root only).
scripts/package-test.sh
