use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::dns::{addrs, dig, ecs, ecs_echo, first, query, tcp, ttls, udp};
use crate::support::{POLICIES, TestServer};

const US: &str = "198.51.100.0/24";
const US_CA: &str = "100.67.0.0/24";
const GB: &str = "192.0.2.0/25";
const DE: &str = "192.0.2.128/25";
const JP: &str = "203.0.113.0/24";
const AU: &str = "100.64.0.0/24";
const BR: &str = "100.65.0.0/24";
const ZA: &str = "100.66.0.0/24";
const US6: &str = "2001:db8:100::/56";
const DE6: &str = "2001:db8:200::/56";
const SG6: &str = "2001:db8:300::/56";
/// A network the test database does not know.
const UNKNOWN: &str = "100.100.7.0/24";

const USE: &str = "192.0.2.1";
const EUW: &str = "192.0.2.2";
const APS: &str = "192.0.2.3";

/// Asks `name A` for each client subnet and checks the first address.
async fn check(s: &TestServer, name: &str, cases: &[(&str, &str)]) {
    for (subnet, want) in cases {
        let r = udp(s.addr, &ecs(&format!("{name}.gslb.example.org."), RecordType::A, subnet)).await;
        assert_eq!(first(&r), *want, "{name} for {subnet}");
    }
}

#[tokio::test]
async fn nearest_by_distance_on_five_continents() {
    let s = TestServer::start(POLICIES).await;
    check(&s, "app", &[(US, USE), (BR, USE), (GB, EUW), (DE, EUW), (JP, APS), (AU, APS)]).await;
    // IPv6 clients, both query types.
    for (subnet, a, aaaa) in [(US6, USE, "2001:db8:1::1"), (DE6, EUW, "2001:db8:2::1"), (SG6, APS, "2001:db8:3::1")] {
        let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, subnet)).await;
        assert_eq!(first(&r), a, "A for {subnet}");
        let r = tcp(s.addr, &ecs("app.gslb.example.org.", RecordType::AAAA, subnet)).await;
        assert_eq!(first(&r), aaaa, "AAAA for {subnet}");
    }
    // Johannesburg is nearer Singapore (8 700 km) than Dublin (9 500 km).
    check(&s, "app", &[(ZA, APS)]).await;
    // Unknown to GeoIP: configured order.
    check(&s, "app", &[(UNKNOWN, USE)]).await;
    s.stop().await;
}

#[tokio::test]
async fn nearest_fails_over_to_the_next_nearest_with_the_short_ttl() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, GB)).await;
    assert_eq!((first(&r), ttls(&r)), (EUW.to_owned(), vec![60]));
    s.set_up("eu-west", false);
    let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, GB)).await;
    assert_eq!((first(&r), ttls(&r)), (USE.to_owned(), vec![10]), "GB falls back to us-east with failover_ttl");
    // A client whose first choice is up keeps the normal TTL.
    let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, JP)).await;
    assert_eq!((first(&r), ttls(&r)), (APS.to_owned(), vec![60]));
    s.set_up("eu-west", true);
    let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, GB)).await;
    assert_eq!(first(&r), EUW);
    s.stop().await;
}

#[tokio::test]
async fn nearest_seen_by_dig() {
    let s = TestServer::start(POLICIES).await;
    for (subnet, want) in [(US, USE), (GB, EUW), (JP, APS), (SG6, APS)] {
        let d = dig(s.addr, &["app.gslb.example.org", "A", &format!("+subnet={subnet}")]).await;
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        assert!(d.flags.contains(&"aa".to_owned()) && !d.flags.contains(&"ra".to_owned()), "{:?}", d.flags);
        assert_eq!(d.answers.len(), 1, "{}", d.raw);
        assert_eq!(d.answers[0].3, want, "dig +subnet={subnet}");
        assert!(
            d.client_subnet.as_deref().is_some_and(|c| c.starts_with(subnet.split('/').next().unwrap())),
            "{}",
            d.raw
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn latency_most_specific_row_wins() {
    let s = TestServer::start(POLICIES).await;
    check(
        &s,
        "lat",
        &[
            // CIDR row beats the country/continent rows.
            ("198.51.100.0/25", EUW),
            // The other half of the /24 has no CIDR row: US → no NA row → default.
            ("198.51.100.128/25", USE),
            (GB, EUW),
            (JP, APS),
            (AU, USE),
            (DE6, EUW),
            (US6, USE),
        ],
    )
    .await;
    s.set_up("ap-southeast", false);
    let r = udp(s.addr, &ecs("lat.gslb.example.org.", RecordType::A, JP)).await;
    assert_eq!((first(&r), ttls(&r)), (USE.to_owned(), vec![10]), "JP: next lowest RTT");
    s.stop().await;
}

#[tokio::test]
async fn latency_tie_window_splits_clients_and_each_client_sticks() {
    let s = TestServer::start(POLICIES).await;
    // Default row: us-east 50, eu-west 60, within the 20 ms window.
    let mut seen = std::collections::HashMap::new();
    for i in 0..64 {
        let subnet = format!("100.100.{i}.0/24");
        let a = first(&udp(s.addr, &ecs("tie.gslb.example.org.", RecordType::A, &subnet)).await);
        let again = first(&udp(s.addr, &ecs("tie.gslb.example.org.", RecordType::A, &subnet)).await);
        assert_eq!(a, again, "sticky for {subnet}");
        *seen.entry(a).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both tied regions are used: {seen:?}");
    assert!(seen.values().all(|&n| n >= 12), "a rough split: {seen:?}");
    // Without a window the same clients all get the lowest RTT.
    for i in 0..8 {
        let r = udp(s.addr, &ecs("lat.gslb.example.org.", RecordType::A, &format!("100.100.{i}.0/24"))).await;
        assert_eq!(first(&r), USE);
    }
    s.stop().await;
}

#[tokio::test]
async fn geo_map_by_cidr_subdivision_country_continent_and_default() {
    let s = TestServer::start(POLICIES).await;
    check(
        &s,
        "geo",
        &[
            (GB, EUW),
            (DE, EUW),
            (JP, APS),
            ("203.0.113.128/25", EUW), // CIDR entry beats country:JP
            (US_CA, APS),              // subdivision:US-CA
            (US, USE),                 // default
            (ZA, USE),                 // AF is not mapped: default
            (DE6, EUW),
        ],
    )
    .await;
    // The map's list is the whole ranking: EU falls back to us-east, JP to us-east.
    s.set_up("eu-west", false);
    check(&s, "geo", &[(GB, USE)]).await;
    // The CIDR entry lists only eu-west: all down → fail open.
    let r = udp(s.addr, &ecs("geo.gslb.example.org.", RecordType::A, "203.0.113.128/25")).await;
    assert_eq!((first(&r), ttls(&r)), (EUW.to_owned(), vec![10]));
    s.stop().await;
}

#[tokio::test]
async fn failover_takes_the_first_up_region_and_fails_open_when_all_are_down() {
    let s = TestServer::start(POLICIES).await;
    let fo = || query("fo.gslb.example.org.", RecordType::A);
    let r = udp(s.addr, &fo()).await;
    assert_eq!((first(&r), ttls(&r)), (EUW.to_owned(), vec![60]));
    s.set_up("eu-west", false);
    let r = udp(s.addr, &fo()).await;
    assert_eq!((first(&r), ttls(&r)), (USE.to_owned(), vec![10]));
    s.set_up("us-east", false);
    let r = udp(s.addr, &fo()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!((first(&r), ttls(&r)), (EUW.to_owned(), vec![10]), "fail open: as if all were up, short TTL");
    // Drained is down for routing too.
    s.set_up("eu-west", true);
    s.set_up("us-east", true);
    assert!(s.state.set_drained("eu-west", true));
    assert_eq!(first(&udp(s.addr, &fo()).await), USE);
    s.stop().await;
}

#[tokio::test]
async fn when_all_down_servfail_and_fallback() {
    let s = TestServer::start(POLICIES).await;
    s.set_up("ap-southeast", false);
    let r = udp(s.addr, &query("sf.gslb.example.org.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(r.answers.is_empty());
    let r = udp(s.addr, &query("sorry.gslb.example.org.", RecordType::A)).await;
    assert_eq!((first(&r), ttls(&r)), ("192.0.2.99".to_owned(), vec![10]));
    let r = tcp(s.addr, &query("sorry.gslb.example.org.", RecordType::AAAA)).await;
    assert_eq!(first(&r), "2001:db8::99");
    s.set_up("ap-southeast", true);
    let r = udp(s.addr, &query("sorry.gslb.example.org.", RecordType::A)).await;
    assert_eq!((first(&r), ttls(&r)), (APS.to_owned(), vec![60]));
    s.stop().await;
}

#[tokio::test]
async fn weighted_is_sticky_per_subnet_and_only_the_failed_regions_clients_move() {
    let s = TestServer::start(POLICIES).await;
    let ask = |subnet: String| {
        let s = &s;
        async move { first(&udp(s.addr, &ecs("w.gslb.example.org.", RecordType::A, &subnet)).await) }
    };
    let mut before = Vec::new();
    for i in 0..150 {
        let a = ask(format!("100.100.{i}.0/24")).await;
        // Another host in the same /24 gets the same answer.
        assert_eq!(a, ask(format!("100.100.{i}.128/25")).await, "sticky within 100.100.{i}.0/24");
        before.push(a);
    }
    // Weights 3:1:1.
    let count = |who: &str| before.iter().filter(|a| *a == who).count();
    assert!((70..=110).contains(&count(USE)), "us-east got {} of 150", count(USE));
    assert!(count(EUW) >= 10 && count(APS) >= 10, "eu-west {} ap-southeast {}", count(EUW), count(APS));
    s.set_up("eu-west", false);
    let mut moved = std::collections::HashSet::new();
    for (i, was) in before.iter().enumerate() {
        let now = ask(format!("100.100.{i}.0/24")).await;
        if was == EUW {
            assert_ne!(now, EUW);
            moved.insert(now);
        } else {
            assert_eq!(&now, was, "100.100.{i}.0/24 was not on eu-west and stays put");
        }
    }
    assert_eq!(moved.len(), 2, "eu-west's clients spread over both others: {moved:?}");
    s.set_up("eu-west", true);
    for (i, was) in before.iter().enumerate() {
        assert_eq!(&ask(format!("100.100.{i}.0/24")).await, was, "back to the same choice");
    }
    s.stop().await;
}

#[tokio::test]
async fn multivalue_answers_up_to_n_up_regions_with_scope_zero() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &ecs("mv.gslb.example.org.", RecordType::A, JP)).await;
    let got: Vec<String> = addrs(&r).iter().map(|a| a.to_string()).collect();
    assert_eq!(got, [USE, EUW]);
    assert_eq!(ecs_echo(&r), Some((24, 0)), "multivalue does not depend on the client");
    s.set_up("us-east", false);
    let r = udp(s.addr, &query("mv.gslb.example.org.", RecordType::A)).await;
    let got: Vec<String> = addrs(&r).iter().map(|a| a.to_string()).collect();
    assert_eq!((got, ttls(&r)), (vec![EUW.to_owned(), APS.to_owned()], vec![10, 10]));
    s.stop().await;
}

#[tokio::test]
async fn static_policy_ignores_health() {
    let s = TestServer::start(POLICIES).await;
    s.set_up("us-east", false);
    s.set_up("eu-west", false);
    let r = udp(s.addr, &query("st.gslb.example.org.", RecordType::A)).await;
    let got: Vec<String> = addrs(&r).iter().map(|a| a.to_string()).collect();
    assert_eq!((got, ttls(&r)), (vec![USE.to_owned(), EUW.to_owned()], vec![60, 60]));
    s.stop().await;
}

#[tokio::test]
async fn a_region_with_a_cname_target_answers_with_the_cname() {
    let s = TestServer::start(POLICIES).await;
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
        let r = udp(s.addr, &query("edge.gslb.example.org.", qtype)).await;
        assert_eq!(r.answers.len(), 1, "{qtype}");
        assert!(matches!(&r.answers[0].data, RData::CNAME(c) if c.0.to_ascii() == "edge.cdn.example.net."));
    }
    s.set_up("cdn", false);
    let r = udp(s.addr, &query("edge.gslb.example.org.", RecordType::A)).await;
    assert_eq!((first(&r), ttls(&r)), (USE.to_owned(), vec![10]));
    s.stop().await;
}

#[tokio::test]
async fn a_static_cname_into_a_gslb_name_is_followed() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &ecs("www.gslb.example.org.", RecordType::A, JP)).await;
    assert_eq!(r.answers.len(), 2);
    assert!(matches!(&r.answers[0].data, RData::CNAME(_)));
    assert_eq!(r.answers[1].name.to_ascii(), "app.gslb.example.org.");
    assert_eq!(first(&r), APS);
    assert_eq!(ecs_echo(&r), Some((24, 24)), "the chain's answer depends on the client");
    s.stop().await;
}
