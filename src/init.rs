//! `switchyard init DIR`: a commented starter config, and a copy of the bundled GeoIP
//! database beside it, ready for `check-config`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::UsageError;

/// One region per continent (Antarctica aside), with documentation addresses.
const CONTINENTS: &[(&str, f64, f64, &str, &str)] = &[
    ("us-east", 39.04, -77.49, "192.0.2.1", "Ashburn"),
    ("sa-east", -23.55, -46.63, "192.0.2.2", "São Paulo"),
    ("eu-west", 53.35, -6.26, "192.0.2.3", "Dublin"),
    ("af-south", -26.20, 28.05, "192.0.2.4", "Johannesburg"),
    ("ap-southeast", 1.29, 103.85, "192.0.2.5", "Singapore"),
    ("au-east", -33.87, 151.21, "192.0.2.6", "Sydney"),
];

struct Region {
    name: String,
    lat: f64,
    lon: f64,
    addr: std::net::IpAddr,
    place: String,
}

/// `NAME=LAT,LON,ADDRESS`.
fn parse_region(s: &str) -> Result<Region, String> {
    let bad = || format!("`{s}` is not NAME=LATITUDE,LONGITUDE,ADDRESS (e.g. eu-west=53.35,-6.26,192.0.2.2)");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
    let [lat, lon, addr] = parts[..] else { return Err(bad()) };
    let valid_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let (Ok(lat), Ok(lon), Ok(addr)) = (lat.parse::<f64>(), lon.parse::<f64>(), addr.parse()) else {
        return Err(bad());
    };
    if !valid_name || !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(bad());
    }
    Ok(Region { name: name.to_owned(), lat, lon, addr, place: String::new() })
}

/// The starter config's text.
fn starter(zone: &str, regions: &[Region]) -> String {
    let bare = zone.trim_end_matches('.');
    let mut t = format!(
        r#"# switchyard: a starter config, written by `switchyard init`. Check it with
#   switchyard check-config switchyard.toml
# and see README.md ("Configuration reference") for every key.

[server]
# Where DNS is served (UDP and TCP). For production, your public address on port 53,
# e.g. ["203.0.113.53:53", "[2001:db8::53]:53"] (see "Going to production").
listen = ["127.0.0.1:5353"]
# "default": the bundled GeoIP database (the copy beside this file, else the one in
# /usr/share/switchyard, else the one built into switchyard). Or a path to your own.
geoip_db = "default"

[admin]
# Metrics, status page, explain, drains. Keep it off the internet.
listen = "127.0.0.1:9353"
# token_file = "admin-token"   # a bearer token for drains and reloads

[health]
interval = "5s"          # each check, every 5 s
fall = 3                 # down after 3 failures in a row
rise = 2                 # up after 2 successes in a row
# state_file = "/var/lib/switchyard/state.json"   # health, drains and the failover record across restarts

[defaults]
ttl = 60                 # answers that are the client's first choice
failover_ttl = 10        # answers that are not (and everything within hold_down of a change)

[zone]
origin = "{zone}"
[zone.soa]
rname = "hostmaster@{bare}"
minimum = 60             # the negative-caching TTL
# The name servers the parent zone delegates to: one per instance of switchyard, with
# glue addresses when they are inside this zone.
[[zone.ns]]
name = "ns1"
ipv4 = ["192.0.2.53"]

# Sign the zone (docs/dnssec.md): `switchyard dnssec keygen {zone} --dir keys`, list the
# file it writes here, reload, and give the parent the DS record it printed.
# [dnssec]
# keys = [{{ file = "keys/K{bare}+013+NNNNN.key" }}]
"#
    );
    for r in regions {
        let family = if r.addr.is_ipv4() { "a" } else { "aaaa" };
        let place = if r.place.is_empty() { String::new() } else { format!("   # {}", r.place) };
        let _ = write!(
            t,
            r#"
[regions.{name}]
location = [{lat:.2}, {lon:.2}]{place}
{family} = ["{addr}"]
# A health check of the region's gateway; without checks a region is always up.
# [[regions.{name}.checks]]
# kind = "http"
# url = "http://{addr}/healthz"
"#,
            name = r.name,
            lat = r.lat,
            lon = r.lon,
            addr = r.addr,
        );
    }
    t.push_str(
        r#"
# Each client gets the nearest up region (by the GeoIP location of its subnet).
[names.app]
policy = "nearest"
# rto = "2m"             # check-config proves the config can fail over within this

# More policies (latency, geo, failover, weighted, multivalue, writer, reader),
# jurisdictions and database clusters: README.md and docs/.
"#,
    );
    t
}

/// Writes `DIR/switchyard.toml` and `DIR/default.mmdb`.
pub fn write(dir: &Path, zone: &str, regions: &[String]) -> Result<()> {
    let zone = if zone.ends_with('.') { zone.to_owned() } else { format!("{zone}.") };
    let regions: Vec<Region> = if regions.is_empty() {
        CONTINENTS
            .iter()
            .map(|&(name, lat, lon, addr, place)| Region {
                name: name.to_owned(),
                lat,
                lon,
                addr: addr.parse().expect("a valid address"),
                place: place.to_owned(),
            })
            .collect()
    } else {
        regions.iter().map(|r| parse_region(r)).collect::<Result<_, _>>().map_err(UsageError)?
    };
    let config = dir.join("switchyard.toml");
    if config.exists() {
        bail!(UsageError(format!("{} exists: not overwritten", config.display())));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = starter(&zone, &regions);
    // The text must be what check-config accepts (the zone name comes from the user).
    crate::config::parse(&text, dir).map_err(|e| {
        let first = e.first().map_or_else(String::new, |d| d.message.clone());
        UsageError(format!("the starter config would not be valid: {first}"))
    })?;
    let db = dir.join("default.mmdb");
    let mut out = std::io::stdout().lock();
    if db.exists() {
        writeln!(out, "{} exists: kept", db.display())?;
    } else {
        std::fs::write(&db, crate::geo::BUNDLED).with_context(|| format!("writing {}", db.display()))?;
        writeln!(out, "wrote {} (the bundled GeoIP database; see geoip/README.md for its licence)", db.display())?;
    }
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    writeln!(out, "wrote {}", config.display())?;
    writeln!(out, "next: switchyard check-config {}", config.display())?;
    Ok(())
}
