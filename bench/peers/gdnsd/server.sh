# gdnsd: plugin_geoip on the continent map with ECS, and each region's address
# health-checked through its gateway (extmon running check-gw.sh every 2 s).
PORT=5301
CHECK=geo
HEALTH=yes
PACKAGES=gdnsd
server_prepare() {
  mkdir -p "$RUNDIR/etc/zones" "$RUNDIR/run" "$RUNDIR/state"
  APP='app             IN DYNA geoip!app' render "$BENCH/peers/gslb.example.zone" "$RUNDIR/etc/zones/gslb.example"
  render "$SERVER_DIR/config" "$RUNDIR/etc/config"
}
server_cmd() { echo "gdnsd -c $RUNDIR/etc start"; }
server_version() { echo "gdnsd $(dpkg-query -W -f='${Version}' gdnsd) (plugin_geoip, extmon)"; }
