#!/usr/bin/env bash
# Builds the Debian package, installs it, runs the unit's ExecStart command line as the
# unit would (as the switchyard user), asks it with dig and /readyz, reloads it with
# SIGHUP, stops it, purges the package and checks that its files are gone.
#
# Quick, for CI: the package is made from the debug binary the tests already built
# (target/debug/switchyard; built here only if missing or older than src/),
# stripped and gzipped with the system's gzip. A release package is `cargo deb --locked`.
# Needs root (dpkg -i, a system user): without it, it says SKIP and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP package-test: installing a .deb needs root (run scripts/package-test.sh as root)"
  exit 0
fi
# Never touch a real installation, or a manual one the package would take over.
pkg_status=$(dpkg-query -W -f='${db:Status-Status}' switchyard 2>/dev/null || true)
if [ -n "$pkg_status" ] && [ "$pkg_status" != not-installed ]; then
  echo "SKIP package-test: the switchyard package is on this machine ($pkg_status); not touching it"
  exit 0
fi
for f in /etc/switchyard /usr/share/switchyard /var/lib/switchyard; do
  if [ -e "$f" ]; then
    echo "SKIP package-test: $f exists (a manual install?); not touching it"
    exit 0
  fi
done

need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v curl >/dev/null || need+=(curl)
command -v systemd-sysusers >/dev/null || need+=(systemd-standalone-sysusers)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb"
  # 3.8 packages a dev-profile binary with a warning (later versions may refuse).
  cargo install cargo-deb --locked --debug --version 3.8.0
fi

started=$EPOCHREALTIME
step() { printf 'package-test: %s\n' "$*"; }
fail() {
  printf 'package-test: FAIL: %s\n' "$*" >&2
  [ -z "${log:-}" ] || [ ! -s "$log" ] || { echo "--- server log:" >&2; cat "$log" >&2; }
  exit 1
}

target=$(cargo metadata --no-deps --format-version 1 | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')
bin=$target/debug/switchyard
# Not `cargo build` every time: after `cargo test` (dev-dependency features, the
# fault-injection feature) it would rebuild the binary.
if [ ! -x "$bin" ] || [ -n "$(find src geoip/countries.csv -newer "$bin" -print -quit)" ]; then
  step "building $bin"
  cargo build --locked --bin switchyard
fi

work=$(mktemp -d)
had_user=no
getent passwd switchyard >/dev/null && had_user=yes
runner="" server=""
installed=no
cleanup() {
  if [ -n "$server" ]; then kill -KILL "$server" 2>/dev/null || true; fi
  if [ -n "$runner" ]; then pkill -KILL -P "$runner" 2>/dev/null || true; fi
  if [ "$installed" = yes ]; then dpkg --purge switchyard >/dev/null 2>&1 || true; fi
  # The package keeps its system user on purge (as Debian does); the test does not.
  if [ "$had_user" = no ] && getent passwd switchyard >/dev/null; then
    userdel switchyard 2>/dev/null || true
    groupdel switchyard 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Packaging: the debug binary (--profile dev --no-build), stripped (the default),
# gzipped fast by the system's gzip (a debug-built cargo-deb compresses slowly itself).
step "cargo deb from $bin"
cargo deb --no-build --profile dev --locked --fast --compress-system -Z gz -o "$work" >"$work/cargo-deb.log" 2>&1 ||
  { cat "$work/cargo-deb.log" >&2; fail "cargo deb"; }
# Its warning that dev profiles are unsupported is expected here.
grep -v -e 'dev profile is not supported' -e 'To enable debug symbols set' "$work/cargo-deb.log" || true
deb=$(ls "$work"/switchyard_*.deb 2>/dev/null) || fail "no .deb in $work"
[ "$(dpkg-deb --field "$deb" Package)" = switchyard ] || fail "$deb is not the switchyard package"

step "dpkg -i $(basename "$deb")"
installed=yes
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" </dev/null >/dev/null || fail "dpkg -i"
for f in /usr/bin/switchyard /etc/switchyard/switchyard.toml /usr/share/switchyard/default.mmdb \
  /usr/share/switchyard/LICENSE-DATA.md /usr/share/doc/switchyard/copyright \
  /usr/share/doc/switchyard/README.md /usr/lib/systemd/system/switchyard.service \
  /usr/lib/sysusers.d/switchyard.conf; do
  [ -f "$f" ] || fail "$f is not installed"
done
dpkg-query -W -f='${Conffiles}\n' switchyard | grep -q '^ /etc/switchyard/switchyard.toml ' ||
  fail "/etc/switchyard/switchyard.toml is not a conffile"
entry=$(getent passwd switchyard) || fail "no switchyard user after install"
[ "$(cut -d: -f6,7 <<<"$entry")" = "/var/lib/switchyard:/usr/sbin/nologin" ] || fail "switchyard user: $entry"
/usr/bin/switchyard check-config /etc/switchyard/switchyard.toml >/dev/null ||
  fail "the packaged config does not pass check-config"

# An upgrade (here the same package again) keeps a locally changed conffile, unasked.
echo "# changed here" >>/etc/switchyard/switchyard.toml
step "dpkg -i again over a changed /etc/switchyard/switchyard.toml"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" </dev/null >/dev/null || fail "dpkg -i over the installed package"
[ "$(tail -n 1 /etc/switchyard/switchyard.toml)" = "# changed here" ] || fail "the upgrade replaced the changed conffile"

# The unit's command line, as the unit runs it: its user, / as working directory, a clean
# environment, its StateDirectory made for it. Loopback ports chosen by the kernel (port 0)
# instead of the config's, so it needs no capability and collides with nothing.
unit=/usr/lib/systemd/system/switchyard.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
state_dir=/var/lib/$(sed -n 's/^StateDirectory=//p' "$unit")
if [ "$user" != switchyard ] || [ "$state_dir" != /var/lib/switchyard ]; then
  fail "unit: User=$user, StateDirectory $state_dir"
fi
# shellcheck disable=SC2016 # the unit's own $MAINPID
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "unit: no ExecReload sending SIGHUP"
grep -q '^AmbientCapabilities=CAP_NET_BIND_SERVICE$' "$unit" || fail "unit: no CAP_NET_BIND_SERVICE"
install -d -o "$user" -g "$user" -m 0755 "$state_dir"
log=$work/server.log
read -r -a argv <<<"$exec_start"
step "runuser -u $user -- $exec_start --listen 127.0.0.1:0 --admin 127.0.0.1:0"
(cd / && exec runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  "${argv[@]}" --listen 127.0.0.1:0 --admin 127.0.0.1:0) 2>"$log" &
runner=$!

# Poll its stable log lines for the ports it got, with a deadline.
deadline=$((SECONDS + 20))
dns="" admin=""
while [ -z "$dns" ] || [ -z "$admin" ]; do
  kill -0 "$runner" 2>/dev/null || fail "the server exited"
  [ "$SECONDS" -lt "$deadline" ] || fail "no listening lines within 20 s"
  dns=$(sed -n 's/.*listening for UDP on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  admin=$(sed -n 's/.*admin HTTP listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$log" | head -1)
  if [ -z "$dns" ] || [ -z "$admin" ]; then sleep 0.05; fi
done
server=$(pgrep -P "$runner" -x switchyard) || fail "no switchyard process under runuser"
[ "$(stat -c %U "/proc/$server")" = "$user" ] || fail "the server does not run as $user"
until [ "$(curl -s "http://$admin/readyz" || true)" = ready ]; do
  kill -0 "$server" 2>/dev/null || fail "the server exited"
  [ "$SECONDS" -lt "$deadline" ] || fail "/readyz not ready within 20 s"
  sleep 0.05
done
step "serving DNS on 127.0.0.1:$dns (UDP and TCP), admin on $admin, pid $server"

ask() { dig @127.0.0.1 -p "$dns" +short +time=2 +tries=1 "$@"; }
expect() { # expect WANT dig-args...
  local want=$1 got
  shift
  got=$(ask "$@" | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "$want" ] || fail "dig $*: got '$got', want '$want'"
  step "dig $*: $got"
}
expect 192.0.2.10 static.gslb.example.org A
expect 192.0.2.2 app.gslb.example.org A +subnet=81.2.69.0/24   # United Kingdom: eu-west
expect 192.0.2.1 app.gslb.example.org A +subnet=8.8.8.0/24     # United States: us-east
expect 192.0.2.1 primary.gslb.example.org A +tcp
expect "app.gslb.example.org. 192.0.2.1" www.gslb.example.org A +subnet=8.8.8.0/24

# ExecReload: SIGHUP re-reads the config (readable by the service's user).
kill -HUP "$server"
deadline=$((SECONDS + 20))
until grep -q 'config reloaded' "$log"; do
  ! grep -q 'config reload failed' "$log" || fail "the reload failed"
  kill -0 "$server" 2>/dev/null || fail "the server exited"
  [ "$SECONDS" -lt "$deadline" ] || fail "no 'config reloaded' within 20 s of SIGHUP"
  sleep 0.05
done
step "SIGHUP: config reloaded"

kill -TERM "$server"
deadline=$((SECONDS + 20))
while kill -0 "$runner" 2>/dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || fail "still running 20 s after SIGTERM"
  sleep 0.05
done
status=0
wait "$runner" || status=$?
runner="" server=""
[ "$status" -eq 0 ] || fail "the server exited with $status after SIGTERM"
step "stopped by SIGTERM"

step "dpkg --purge switchyard"
dpkg --purge switchyard >/dev/null || fail "dpkg --purge"
installed=no
for f in /usr/bin/switchyard /etc/switchyard /usr/share/switchyard /usr/share/doc/switchyard \
  /usr/lib/systemd/system/switchyard.service /usr/lib/sysusers.d/switchyard.conf /var/lib/switchyard; do
  [ ! -e "$f" ] || fail "$f is still there after purge"
done
getent passwd switchyard >/dev/null || fail "the purge removed the switchyard user (Debian keeps it)"
awk -v a="$started" -v b="$EPOCHREALTIME" -v u="$user" \
  'BEGIN { printf "package-test: ok in %.1f s (package, install, serve as %s, dig, reload, stop, purge)\n", b - a, u }'
