# shellcheck shell=bash disable=SC2034  # sourced by lib.sh, which reads these variables
# Knot DNS with mod-geoip and automatic DNSSEC signing: knot-geoip's answers, signed.
# Served the DO mix (queries-do.bin). Optional: SERVERS="... knot-geoip-signed".
PORT=5306
CHECK=geo
HEALTH=no
SIGNED=yes
MIX="do"
PACKAGES="knot knot-module-geoip python3-dnspython"
server_prepare() {
  mkdir -p "$RUNDIR/db"
  APP='app             IN A    192.0.2.1' render "$BENCH/peers/gslb.example.zone" "$RUNDIR/gslb.example.zone"
  render "$SERVER_DIR/knot.conf" "$RUNDIR/knot.conf"
  cp "$BENCH/peers/knot-geoip/geo.conf" "$RUNDIR/geo.conf"
  # The key must be in the KASP database before knotd loads the module (knot.conf).
  keymgr -c "$RUNDIR/knot.conf" gslb.example. generate algorithm=ecdsap256sha256 ksk=yes zsk=yes \
    >"$RUNDIR/keymgr.log" 2>&1 || { cat "$RUNDIR/keymgr.log" >&2; return 1; }
}
server_cmd() { echo "knotd -c $RUNDIR/knot.conf"; }
server_version() { echo "$(knotd -V 2>&1 | head -1), mod-geoip, dnssec-signing (ECDSA P-256 CSK, NSEC)"; }
# The zone's DNSKEY with the SEP flag (the trust anchor), as `ZONE. DNSKEY 257 3 13 BASE64`.
server_dnskey() { keymgr -c "$RUNDIR/knot.conf" gslb.example. dnskey; }
