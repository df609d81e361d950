# switchyard's slot in the peer benchmark (sourced by bench/lib.sh): the scenario of
# bench/geo/regions.txt in switchyard's config (ours.toml), the release binary.
PORT=${OURS_PORT:-5310}
CHECK=geo
HEALTH=yes
server_setup() { build_switchyard; }
server_prepare() { render "$SERVER_DIR/ours.toml" "$RUNDIR/ours.toml"; }
server_cmd() { echo "${OURS_BIN:?} serve --config $RUNDIR/ours.toml"; }
server_version() { echo "$("$OURS_BIN" --version) ($OURS_BIN)"; }
