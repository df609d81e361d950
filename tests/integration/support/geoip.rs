//! GeoIP databases built for tests with `mmdb-writer`, in the GeoIP2-City schema and the
//! flat `country_code` schema. The networks are documentation and shared-address
//! ranges, so no real address is implied.

use ipnet::IpNet;
use mmdb_writer::Writer;
use serde_json::json;

/// (network, country, continent, subdivision, location)
pub type Row = (&'static str, &'static str, &'static str, Option<&'static str>, Option<(f64, f64)>);

/// The test world. Clients on five continents, v4 and v6.
pub const WORLD: &[Row] = &[
    ("198.51.100.0/24", "US", "NA", Some("VA"), Some((38.9, -77.0))),
    ("192.0.2.0/25", "GB", "EU", Some("ENG"), Some((51.5, -0.12))),
    ("192.0.2.128/25", "DE", "EU", None, Some((50.1, 8.7))),
    ("203.0.113.0/24", "JP", "AS", Some("13"), Some((35.7, 139.7))),
    ("100.64.0.0/16", "AU", "OC", None, None),
    ("100.65.0.0/16", "BR", "SA", None, Some((-23.5, -46.6))),
    ("100.66.0.0/16", "ZA", "AF", None, Some((-26.2, 28.0))),
    ("100.67.0.0/16", "US", "NA", Some("CA"), Some((37.4, -122.1))),
    ("2001:db8:100::/48", "US", "NA", None, Some((40.7, -74.0))),
    ("2001:db8:200::/48", "DE", "EU", None, Some((50.1, 8.7))),
    ("2001:db8:300::/48", "SG", "AS", None, Some((1.35, 103.8))),
];

/// A GeoIP2-City-schema database of [`WORLD`].
pub fn city_db() -> Vec<u8> {
    let mut w = Writer::new("GeoIP2-City");
    for (net, country, continent, sub, loc) in WORLD {
        let mut rec = json!({
            "country": { "iso_code": country, "names": { "en": country } },
            "continent": { "code": continent },
        });
        if let Some(s) = sub {
            rec["subdivisions"] = json!([{ "iso_code": s }]);
        }
        if let Some((lat, lon)) = loc {
            rec["location"] = json!({ "latitude": lat, "longitude": lon, "accuracy_radius": 100 });
        }
        w.insert(net.parse::<IpNet>().unwrap(), &rec).unwrap();
    }
    w.to_bytes().unwrap()
}

/// A flat `country_code` database (the ip-location-db schema) of [`WORLD`].
pub fn country_code_db() -> Vec<u8> {
    let mut w = Writer::new("country");
    for (net, country, ..) in WORLD {
        w.insert(net.parse::<IpNet>().unwrap(), &json!({ "country_code": country })).unwrap();
    }
    w.to_bytes().unwrap()
}
