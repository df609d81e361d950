use std::net::IpAddr;

use hickory_proto::rr::RecordType;
use switchyard::geo::GeoDb;

use crate::support::dns::{ecs, first, udp};
use crate::support::{POLICIES, TestServer, geoip, repo};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn maxmind_city_schema() {
    let db = GeoDb::open(&repo().join("tests/fixtures/geoip/GeoIP2-City-Test.mmdb")).unwrap();
    let g = db.lookup(ip("81.2.69.142"));
    assert!(g.found);
    assert_eq!((g.info.country, g.info.continent), (Some(*b"GB"), Some(*b"EU")));
    assert_eq!(g.info.subdivisions[0], Some(*b"ENG"));
    assert_eq!(g.info.location, Some((51.5142, -0.0931)));
    assert!(!g.info.location_is_centroid);
    assert_eq!(g.prefix, 31);
    let g = db.lookup(ip("2001:218::1"));
    assert_eq!((g.info.country, g.prefix), (Some(*b"JP"), 32));
    let g = db.lookup(ip("216.160.83.56"));
    assert_eq!((g.info.country, g.info.subdivisions[0]), (Some(*b"US"), Some(*b"WA\0")));
    let g = db.lookup(ip("1.2.3.4"));
    assert!(!g.found);
    assert_eq!(g.prefix, 8, "the unknown range's prefix");
}

#[test]
fn maxmind_country_schema_gets_a_centroid() {
    let db = GeoDb::open(&repo().join("tests/fixtures/geoip/GeoIP2-Country-Test.mmdb")).unwrap();
    let g = db.lookup(ip("81.2.69.142"));
    assert_eq!((g.info.country, g.info.continent), (Some(*b"GB"), Some(*b"EU")));
    assert!(g.info.location_is_centroid);
    let (lat, lon) = g.info.location.unwrap();
    assert!((lat - 55.4).abs() < 1.0 && (lon + 3.4).abs() < 1.0, "{lat},{lon}");
}

#[test]
fn flat_country_code_schema_gets_continent_and_centroid_from_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.mmdb");
    std::fs::write(&path, geoip::country_code_db()).unwrap();
    let db = GeoDb::open(&path).unwrap();
    for (addr, country, continent) in
        [("192.0.2.200", b"DE", b"EU"), ("203.0.113.1", b"JP", b"AS"), ("100.65.1.1", b"BR", b"SA")]
    {
        let g = db.lookup(ip(addr));
        assert_eq!((g.info.country, g.info.continent), (Some(*country), Some(*continent)), "{addr}");
        assert!(g.info.location_is_centroid);
    }
}

#[tokio::test]
async fn nearest_works_on_the_flat_schema() {
    let s = TestServer::start(POLICIES).await;
    std::fs::write(s.dir.path().join("test-city.mmdb"), geoip::country_code_db()).unwrap();
    let model = switchyard::app::load(&s.dir.path().join("switchyard.toml"), &Default::default()).unwrap().model(None);
    s.state.replace_model(model);
    for (subnet, want) in
        [("192.0.2.128/25", "192.0.2.2"), ("203.0.113.0/24", "192.0.2.3"), ("198.51.100.0/24", "192.0.2.1")]
    {
        let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, subnet)).await;
        assert_eq!(first(&r), want, "{subnet}");
    }
    s.stop().await;
}

#[tokio::test]
async fn geo_map_subdivision_on_maxminds_city_database() {
    let config = POLICIES
        .replace("@GEOIP@", &repo().join("tests/fixtures/geoip/GeoIP2-City-Test.mmdb").display().to_string())
        .replace("\"subdivision:US-CA\"", "\"subdivision:US-WA\"");
    let s = TestServer::start(&config).await;
    for (subnet, want) in
        [("216.160.83.56/29", "192.0.2.3"), ("81.2.69.142/31", "192.0.2.2"), ("2001:218::/32", "192.0.2.3")]
    {
        let r = udp(s.addr, &ecs("geo.gslb.example.org.", RecordType::A, subnet)).await;
        assert_eq!(first(&r), want, "{subnet}");
    }
    s.stop().await;
}
