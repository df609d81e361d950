//! The country table (`geoip/countries.csv`, compiled in): each country's continent
//! and centroid, for records that lack them; continent centroids; great-circle distance.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::code2;

/// What the compiled-in country table knows of one country.
#[derive(Debug, Clone, Copy)]
pub struct CountryFacts {
    pub continent: [u8; 2],
    pub lat: f64,
    pub lon: f64,
}

pub(super) static COUNTRIES: LazyLock<HashMap<[u8; 2], CountryFacts>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for line in include_str!("../../geoip/countries.csv").lines().skip(1) {
        let mut f = line.split(',');
        let (Some(iso), Some(cont), Some(lat), Some(lon)) = (f.next(), f.next(), f.next(), f.next()) else {
            continue;
        };
        if let (Some(iso), Some(continent), Ok(lat), Ok(lon)) = (code2(iso), code2(cont), lat.parse(), lon.parse()) {
            map.insert(iso, CountryFacts { continent, lat, lon });
        }
    }
    map
});

pub fn country_facts(country: [u8; 2]) -> Option<CountryFacts> {
    COUNTRIES.get(&country).copied()
}

/// Rough centres of the continents, for records that name nothing finer.
pub fn continent_centroid(continent: [u8; 2]) -> Option<(f64, f64)> {
    Some(match &continent {
        b"AF" => (1.6, 17.3),
        b"AN" => (-82.9, 135.0),
        b"AS" => (34.0, 100.6),
        b"EU" => (50.0, 10.0),
        b"NA" => (45.0, -100.0),
        b"OC" => (-22.7, 140.0),
        b"SA" => (-15.6, -56.1),
        _ => return None,
    })
}

/// Great-circle distance in kilometres (haversine).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}
