//! GeoIP: what a client address says about where the client is.
//!
//! Reads MaxMind GeoIP2/GeoLite2 City and Country databases (`country.iso_code`,
//! `continent.code`, `subdivisions[].iso_code`, `location`) and the flat
//! `country_code` schema of the ip-location-db databases. Where a record has a country
//! but no coordinates (Country databases, the bundled default), the country's centroid
//! stands in; where it has no continent, the country table gives it. The table is
//! `geoip/countries.csv`, compiled in.
//!
//! Every lookup also returns the prefix length of the database network that matched
//! (or of the unknown range around the address), which is what an ECS scope may claim.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod cache;
mod countries;

pub use countries::{CountryFacts, continent_centroid, country_facts, distance_km};

/// Where a client is, as far as the database knows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GeoInfo {
    pub country: Option<[u8; 2]>,
    pub continent: Option<[u8; 2]>,
    /// ISO 3166-2 subdivision codes, most general first (`CA` for US-CA).
    pub subdivisions: [Option<[u8; 3]>; 2],
    /// Latitude and longitude in degrees.
    pub location: Option<(f64, f64)>,
    /// Whether `location` is a centroid rather than the database's own coordinates.
    pub location_is_centroid: bool,
}

/// The result of one lookup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoLookup {
    pub info: GeoInfo,
    /// Prefix length of the matched database network, in the address's own family.
    pub prefix: u8,
    /// Whether the database had a record for the address.
    pub found: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot open GeoIP database {path}: {source}")]
    Open { path: PathBuf, source: maxminddb::MaxMindDbError },
    #[error("GeoIP database {path} has no country information (database_type {kind})")]
    Schema { path: PathBuf, kind: String },
}

/// An open GeoIP database.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
    path: PathBuf,
    /// Tells this database's cached records from another's (after a reload).
    id: u64,
}

static NEXT_DB_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("path", &self.path).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    registered_country: Option<Country<'a>>,
    #[serde(borrow)]
    continent: Option<Continent<'a>>,
    #[serde(borrow)]
    subdivisions: Option<Vec<Subdivision<'a>>>,
    location: Option<Location>,
    /// The flat ip-location-db schema.
    #[serde(borrow)]
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Continent<'a> {
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Subdivision<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

pub(super) fn code2(s: &str) -> Option<[u8; 2]> {
    let b = s.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic))
        .then(|| [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
}

fn code3(s: &str) -> Option<[u8; 3]> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut out = [0u8; 3];
    for (o, c) in out.iter_mut().zip(b) {
        *o = c.to_ascii_uppercase();
    }
    Some(out)
}

/// The bundled database (`geoip/default.mmdb`, see `geoip/README.md`), built into the
/// binary so that an installed switchyard has one wherever it runs.
pub static BUNDLED: &[u8] = include_bytes!("../../geoip/default.mmdb");

/// What `GeoDb::path` says of the built-in database.
pub const BUNDLED_NAME: &str = "(built in) default.mmdb";

impl GeoDb {
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|source| GeoError::Open { path: path.to_owned(), source })?;
        Self::checked(reader, path)
    }

    /// The database built into the binary.
    pub fn bundled() -> Result<GeoDb, GeoError> {
        let path = Path::new(BUNDLED_NAME);
        let reader = maxminddb::Reader::from_source(BUNDLED.to_vec())
            .map_err(|source| GeoError::Open { path: path.to_owned(), source })?;
        Self::checked(reader, path)
    }

    fn checked(reader: maxminddb::Reader<Vec<u8>>, path: &Path) -> Result<GeoDb, GeoError> {
        let kind = reader.metadata().database_type.clone();
        let lower = kind.to_ascii_lowercase();
        if lower.contains("asn") && !lower.contains("country") {
            return Err(GeoError::Schema { path: path.to_owned(), kind });
        }
        let id = NEXT_DB_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(GeoDb { reader, path: path.to_owned(), id })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Seconds since the epoch at which the database was built.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// Looks an address up. A decoding failure counts as "not found" (with the
    /// network's prefix), so a damaged record routes like an unknown client.
    pub fn lookup(&self, ip: IpAddr) -> GeoLookup {
        cache::lookup(self.id, ip, || self.walk(ip))
    }

    /// A lookup in the database itself (record decoding cached by data offset).
    fn walk(&self, ip: IpAddr) -> GeoLookup {
        let full = if ip.is_ipv4() { 32 } else { 128 };
        let Ok(result) = self.reader.lookup(ip) else {
            return GeoLookup { info: GeoInfo::default(), prefix: full, found: false };
        };
        let prefix = match result.network() {
            Ok(net) if net.is_ipv4() == ip.is_ipv4() => net.prefix(),
            // An IPv4 address in an IPv6 database without an IPv4 subtree.
            Ok(_) => 0,
            Err(_) => full,
        };
        let Some(offset) = result.offset() else {
            return GeoLookup { info: GeoInfo::default(), prefix, found: false };
        };
        let (info, found) = cache::record(self.id, offset, || match result.decode::<Record<'_>>() {
            Ok(Some(r)) => Self::info(r),
            _ => (GeoInfo::default(), false),
        });
        GeoLookup { info, prefix, found }
    }

    /// What a record says, with centroids and continents filled in from the table.
    fn info(record: Record<'_>) -> (GeoInfo, bool) {
        let country = record
            .country
            .and_then(|c| c.iso_code)
            .or(record.country_code)
            .or(record.registered_country.and_then(|c| c.iso_code))
            .and_then(code2);
        let mut info =
            GeoInfo { country, continent: record.continent.and_then(|c| c.code).and_then(code2), ..GeoInfo::default() };
        if let Some(subs) = &record.subdivisions {
            for (slot, sub) in info.subdivisions.iter_mut().zip(subs) {
                *slot = sub.iso_code.and_then(code3);
            }
        }
        if let Some(Location { latitude: Some(lat), longitude: Some(lon) }) = record.location {
            info.location = Some((lat, lon));
        }
        if let Some(c) = country.and_then(country_facts) {
            if info.continent.is_none() {
                info.continent = Some(c.continent);
            }
            if info.location.is_none() {
                info.location = Some((c.lat, c.lon));
                info.location_is_centroid = true;
            }
        }
        if info.location.is_none()
            && let Some(c) = info.continent.and_then(continent_centroid)
        {
            info.location = Some(c);
            info.location_is_centroid = true;
        }
        let found = country.is_some() || info.continent.is_some() || info.location.is_some();
        (info, found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_cache_answers_exactly_what_the_database_does() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/default.mmdb");
        let (a, b) = (GeoDb::open(&path).unwrap(), GeoDb::open(&path).unwrap());
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut addrs = Vec::new();
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            addrs.push(if i % 3 == 0 {
                IpAddr::from(((u128::from(x) << 64 | u128::from(x.rotate_left(17))) | 0x2000 << 112).to_be_bytes())
            } else {
                IpAddr::from((x as u32 & !0xff).to_be_bytes())
            });
        }
        // Twice over (misses, then hits and collisions), alternating two databases so the
        // cache is also thrown away and refilled.
        for _ in 0..2 {
            for (i, &ip) in addrs.iter().enumerate() {
                let db = if i % 100 < 50 { &a } else { &b };
                assert_eq!(db.lookup(ip), db.walk(ip), "{ip}");
            }
        }
    }

    #[test]
    fn distances() {
        let frankfurt = (50.11, 8.68);
        let virginia = (39.04, -77.49);
        let d = distance_km(frankfurt, virginia);
        assert!((6500.0..6700.0).contains(&d), "{d}");
        assert_eq!(distance_km(frankfurt, frankfurt), 0.0);
    }

    #[test]
    fn country_table_is_complete_enough() {
        for c in ["US", "GB", "DE", "JP", "AU", "BR", "ZA", "SG", "IN", "CA", "FR"] {
            let facts = country_facts([c.as_bytes()[0], c.as_bytes()[1]]);
            assert!(facts.is_some(), "{c} missing from geoip/countries.csv");
        }
        assert_eq!(&country_facts(*b"GB").unwrap().continent, b"EU");
        assert_eq!(&country_facts(*b"JP").unwrap().continent, b"AS");
        assert!(countries::COUNTRIES.len() >= 240, "{}", countries::COUNTRIES.len());
    }
}
