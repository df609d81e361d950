#!/usr/bin/env bash
# Everything the benchmark needs, idempotent; run.sh, reload.sh and scaling.sh call the
# same code, so running this first is optional.
#   bench/setup.sh                         # for the default SERVERS of run.sh
#   SERVERS="gdnsd knot-geoip ours" bench/setup.sh
# Installs the Debian packages that are missing (dnsperf, dig, gdnsd, Knot, ...: each
# server slot names its own), builds switchyard's release binary (into
# ${CARGO_TARGET_DIR:-target}/release), the minimal responder and bench/data, and
# writes the country database and the query mix into $WORK/data (default
# /tmp/switchyard-bench/data). Nothing is fetched but Debian packages and crates.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
read -ra servers <<<"${SERVERS:-limit-mmsg gdnsd knot ours}"
setup "${servers[@]}"
log "setup done: data in $DATA"
