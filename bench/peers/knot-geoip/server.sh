# Knot DNS with mod-geoip: app.gslb.example by the client's continent (ECS), no health
# checks (the module has none). Optional: SERVERS="... knot-geoip".
PORT=5305
CHECK=geo
HEALTH=no
PACKAGES="knot knot-module-geoip"
server_prepare() {
  mkdir -p "$RUNDIR/db"
  # mod-geoip wants a plain record to fall back on: us-east, as the map's default
  APP='app             IN A    192.0.2.1' render "$BENCH/peers/gslb.example.zone" "$RUNDIR/gslb.example.zone"
  render "$SERVER_DIR/knot.conf" "$RUNDIR/knot.conf"
  cp "$SERVER_DIR/geo.conf" "$RUNDIR/geo.conf"
}
server_cmd() { echo "knotd -c $RUNDIR/knot.conf"; }
server_version() { echo "$(knotd -V 2>&1 | head -1), mod-geoip"; }
