# switchyard with `[fleet]` on, in the peer benchmark: the same scenario as bench/ours,
# plus a nats-server (JetStream on, on dnsperf's CPU, off the server's) that the instance
# publishes its observations to and watches. The DNS path must not notice.
PORT=${OURS_FLEET_PORT:-5311}
CHECK=geo
HEALTH=yes
PACKAGES=nats-server
server_setup() { build_switchyard; }
NATS_PORT=${OURS_FLEET_NATS_PORT:-14322}
server_prepare() {
  render "$SERVER_DIR/../ours/ours.toml" "$RUNDIR/ours.toml"
  cat >>"$RUNDIR/ours.toml" <<TOML

[fleet]
name = "bench"
servers = ["nats://127.0.0.1:$NATS_PORT"]
bucket = "bench"
TOML
  cat >"$RUNDIR/start.sh" <<SH
#!/usr/bin/env bash
taskset -c $LOADGEN_CPU nats-server -js -a 127.0.0.1 -p $NATS_PORT -sd $RUNDIR/nats >$RUNDIR/nats.log 2>&1 &
for i in \$(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$NATS_PORT) 2>/dev/null && break; sleep 0.1; done
exec ${OURS_BIN:?} serve --config $RUNDIR/ours.toml
SH
}
server_cmd() { echo "bash $RUNDIR/start.sh"; }
server_version() { echo "$("$OURS_BIN" --version) with [fleet] ($(nats-server --version))"; }
