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

# Fuzzing keeps running: in CI (CI=true) every cargo-fuzz target runs for FUZZ_SECONDS
# (10 by default, which keeps the whole run under ten minutes on two cores; set it
# anywhere else to do the same) on a quick-to-build unoptimized
# build, so a new crash fails the build. The tests below replay every seed and
# regression in any case; scripts/fuzz.sh alone is for long runs. It runs first so that
# the test runner's summary closes the output.
fuzz_seconds=${FUZZ_SECONDS:-0}
[ "${CI:-}" != true ] || [ -n "${FUZZ_SECONDS:-}" ] || fuzz_seconds=10
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
