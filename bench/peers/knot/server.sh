# Knot DNS, static: the same zone with app.gslb.example a plain A (192.0.2.1 for
# everyone), no geo, no health checks. What a fast authoritative server costs per answer.
PORT=5303
CHECK=static
HEALTH=no
PACKAGES=knot
server_prepare() {
  mkdir -p "$RUNDIR/db"
  APP='app             IN A    192.0.2.1' render "$BENCH/peers/gslb.example.zone" "$RUNDIR/gslb.example.zone"
  render "$SERVER_DIR/knot.conf" "$RUNDIR/knot.conf"
}
server_cmd() { echo "knotd -c $RUNDIR/knot.conf"; }
server_version() { knotd -V 2>&1 | head -1; }
