# shellcheck shell=bash disable=SC2034  # sourced by lib.sh, which reads these variables
# Signed switchyard in the peer benchmark: bench/ours's scenario (ours.toml) with a
# [dnssec] key, served the DO mix (queries-do.bin): every answer carries its RRSIGs,
# negative answers a compact denial (RFC 9824). The key (one CSK, ECDSA P-256) is made
# once by `switchyard dnssec keygen` into $WORK/dnssec and kept there.
# With OURS_SIGNED_ADMIN=ADDR:PORT (bench/failover-p99.sh sets it) the admin API listens
# there with a bearer token in $RUNDIR/admin-token; otherwise it is off, as in bench/ours.
PORT=${OURS_SIGNED_PORT:-5312}
CHECK=geo
HEALTH=yes
SIGNED=yes
MIX="do"
PACKAGES="curl python3-dnspython"
KEYDIR=$WORK/dnssec
server_setup() {
  build_switchyard || return 1
  [ -n "$(ours_signed_key)" ] && return 0
  mkdir -p "$KEYDIR"
  "$OURS_BIN" dnssec keygen gslb.example. --dir "$KEYDIR" >"$KEYDIR/keygen.txt" 2>&1 ||
    { cat "$KEYDIR/keygen.txt" >&2; return 1; }
  log "ours-signed: made a DNSSEC key in $KEYDIR: $(ours_signed_key)"
}
ours_signed_key() { find "$KEYDIR" -maxdepth 1 -name 'K*.key' 2>/dev/null | sort | head -1; }
server_prepare() {
  local key admin=${OURS_SIGNED_ADMIN:-}
  key=$(ours_signed_key)
  [ -n "$key" ] || { log "ours-signed: no key in $KEYDIR (run bench/setup.sh)"; return 1; }
  render "$BENCH/ours/ours.toml" "$RUNDIR/ours.toml.in"
  if [ -n "$admin" ]; then
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$RUNDIR/admin-token"
    chmod 600 "$RUNDIR/admin-token"
    # [admin] enabled = false -> listen on $admin with the token
    awk -v l="listen = \"$admin\"" -v t="token_file = \"$RUNDIR/admin-token\"" '
      /^\[/ {sec = $0}
      sec == "[admin]" && /^enabled = false$/ {print l; print t; next}
      {print}' "$RUNDIR/ours.toml.in" >"$RUNDIR/ours.toml"
  else
    cp "$RUNDIR/ours.toml.in" "$RUNDIR/ours.toml"
  fi
  cat >>"$RUNDIR/ours.toml" <<TOML

[dnssec]
keys = [{ file = "$key" }]
TOML
}
server_cmd() { echo "${OURS_BIN:?} serve --config $RUNDIR/ours.toml"; }
server_version() { echo "$("$OURS_BIN" --version) with [dnssec] (key $(basename "$(ours_signed_key)")) ($OURS_BIN)"; }
# The zone's DNSKEY with the SEP flag (the trust anchor), as `ZONE. TTL DNSKEY 257 3 13 BASE64`.
server_dnskey() { "$OURS_BIN" dnssec keys --config "$RUNDIR/ours.toml" | grep -v '^;' | awk '$4 == "DNSKEY" || $3 == "DNSKEY"'; }
