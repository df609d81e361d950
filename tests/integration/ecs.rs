use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::support::dns::{
    IN, Options, ecs, ecs_bytes, ecs_echo, first, query, raw_query, rcode, tcp, tcp_raw, udp, udp_raw,
};
use crate::support::{POLICIES, TestServer};

/// (name, client subnet, expected (source, scope)).
async fn scopes(s: &TestServer, cases: &[(&str, &str, (u8, u8))]) {
    for (name, subnet, want) in cases {
        let m = ecs(&format!("{name}.gslb.example.org."), RecordType::A, subnet);
        assert_eq!(ecs_echo(&udp(s.addr, &m).await), Some(*want), "udp {name} {subnet}");
        assert_eq!(ecs_echo(&tcp(s.addr, &m).await), Some(*want), "tcp {name} {subnet}");
    }
}

#[tokio::test]
async fn scope_is_the_matched_network_capped_at_the_source_prefix() {
    let s = TestServer::start(POLICIES).await;
    scopes(
        &s,
        &[
            // The test DB has 198.51.100.0/24: a /24 query gets /24, a /28 also /24.
            ("app", "198.51.100.0/24", (24, 24)),
            ("app", "198.51.100.16/28", (28, 24)),
            // 192.0.2.0/25 is a /25 in the DB: capped at the /24 source.
            ("app", "192.0.2.0/24", (24, 24)),
            ("app", "192.0.2.0/25", (25, 25)),
            ("app", "192.0.2.0/26", (26, 25)),
            // A /16 source over a /16 network.
            ("app", "100.64.0.0/16", (16, 16)),
            // Shorter source than the network: capped at the source.
            ("app", "100.64.0.0/12", (12, 12)),
            ("app", "2001:db8:300::/56", (56, 48)),
            // Latency: a CIDR row /25 inside a DB /24: the answer holds for the /25.
            ("lat", "198.51.100.0/25", (25, 25)),
            ("lat", "198.51.100.128/25", (25, 25)),
            // Weighted and tie-split answers are sticky per /24.
            ("w", "100.100.1.0/24", (24, 24)),
            ("w", "100.100.1.0/28", (28, 24)),
            // Answers that do not depend on the client: /0.
            ("fo", "198.51.100.0/24", (24, 0)),
            ("mv", "198.51.100.0/24", (24, 0)),
            ("static", "198.51.100.0/24", (24, 0)),
            ("nope", "198.51.100.0/24", (24, 0)),
        ],
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn unknown_networks_get_the_scope_of_the_unknown_range_never_zero() {
    let s = TestServer::start(POLICIES).await;
    let db = switchyard::geo::GeoDb::open(&s.dir.path().join("test-city.mmdb")).unwrap();
    for subnet in ["100.100.7.0/24", "100.127.0.0/24", "2001:db8:999::/56", "8.8.8.0/24"] {
        let net: ipnet::IpNet = subnet.parse().unwrap();
        let lookup = db.lookup(net.network());
        assert!(!lookup.found, "{subnet} is unknown to the test DB");
        let want = lookup.prefix.min(net.prefix_len());
        assert!(want > 0, "{subnet}: the unknown range has a prefix");
        let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, subnet)).await;
        assert_eq!(ecs_echo(&r), Some((net.prefix_len(), want)), "{subnet}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_scope_is_honest_every_address_in_it_gets_the_same_answer() {
    let s = TestServer::start(POLICIES).await;
    // For several clients, ask for the scope, then ask with random-ish subnets inside it.
    for (name, subnet) in
        [("app", "192.0.2.0/26"), ("lat", "198.51.100.64/26"), ("geo", "203.0.113.200/29"), ("w", "100.100.9.0/24")]
    {
        let r = udp(s.addr, &ecs(&format!("{name}.gslb.example.org."), RecordType::A, subnet)).await;
        let (_, scope) = ecs_echo(&r).unwrap();
        let answer = first(&r);
        let base: ipnet::Ipv4Net = subnet.parse().unwrap();
        let block = ipnet::Ipv4Net::new(base.network(), scope).unwrap().trunc();
        for i in 0..16u32 {
            let span = 1u64 << (32 - scope);
            let host = u32::from(block.network()) + (u64::from(i) * 2_654_435_761 % span) as u32;
            let probe = format!("{}/32", std::net::Ipv4Addr::from(host));
            let got = first(&udp(s.addr, &ecs(&format!("{name}.gslb.example.org."), RecordType::A, &probe)).await);
            assert_eq!(got, answer, "{name}: {probe} is inside {block} (scope of {subnet})");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn malformed_ecs_gets_formerr_over_udp_and_tcp() {
    let s = TestServer::start(POLICIES).await;
    let cases: Vec<(&str, Options)> = vec![
        ("host bits beyond the source prefix", vec![(8, ecs_bytes(1, 24, 0, &[198, 51, 100, 1]))]),
        ("source prefix longer than IPv4", vec![(8, ecs_bytes(1, 33, 0, &[198, 51, 100, 0, 0]))]),
        ("non-zero scope in a query", vec![(8, ecs_bytes(1, 24, 16, &[198, 51, 100]))]),
        ("unknown family", vec![(8, ecs_bytes(3, 24, 0, &[198, 51, 100]))]),
        ("address longer than the prefix needs", vec![(8, ecs_bytes(1, 8, 0, &[198, 51, 100, 0]))]),
        ("address shorter than the prefix needs", vec![(8, ecs_bytes(1, 24, 0, &[198]))]),
        ("empty option", vec![(8, vec![])]),
        ("two ECS options", vec![(8, ecs_bytes(1, 24, 0, &[198, 51, 100])), (8, ecs_bytes(1, 24, 0, &[192, 0, 2]))]),
    ];
    for (why, options) in cases {
        let packet = raw_query(4242, "app.gslb.example.org", 1, IN, Some((1232, 0, &options)));
        let reply = udp_raw(s.addr, &packet, Duration::from_secs(5)).await.unwrap_or_else(|| panic!("no reply: {why}"));
        assert_eq!(rcode(&reply), 1, "FORMERR over UDP: {why}");
        assert_eq!(Message::from_vec(&reply).unwrap().metadata.id, 4242);
        assert_eq!(rcode(&tcp_raw(s.addr, &packet).await), 1, "FORMERR over TCP: {why}");
    }
    // A well-formed one right after: still serving.
    let ok =
        raw_query(4243, "app.gslb.example.org", 1, IN, Some((1232, 0, &[(8, ecs_bytes(1, 24, 0, &[198, 51, 100]))])));
    assert_eq!(rcode(&udp_raw(s.addr, &ok, Duration::from_secs(5)).await.unwrap()), 0);
    s.stop().await;
}

#[tokio::test]
async fn source_prefix_zero_routes_on_the_resolver_with_scope_zero() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, "0.0.0.0/0")).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ecs_echo(&r), Some((0, 0)));
    // 127.0.0.1 is unknown to the DB: configured order.
    assert_eq!(first(&r), "192.0.2.1");
    s.stop().await;
}

#[tokio::test]
async fn untrusted_resolvers_ecs_is_ignored_and_not_echoed() {
    let config = POLICIES.replace("geoip_db = \"@GEOIP@\"", "geoip_db = \"@GEOIP@\"\necs_trusted = [\"10.0.0.0/8\"]");
    let s = TestServer::start(&config).await;
    let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, "203.0.113.0/24")).await;
    assert_eq!(ecs_echo(&r), None, "not echoed");
    assert_eq!(first(&r), "192.0.2.1", "routed on 127.0.0.1, not on the JP subnet");
    s.stop().await;

    let config = POLICIES.replace("geoip_db = \"@GEOIP@\"", "geoip_db = \"@GEOIP@\"\necs_trusted = [\"127.0.0.0/8\"]");
    let s = TestServer::start(&config).await;
    let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, "203.0.113.0/24")).await;
    assert_eq!((first(&r), ecs_echo(&r)), ("192.0.2.3".to_owned(), Some((24, 24))));
    s.stop().await;
}

#[tokio::test]
async fn without_ecs_the_resolver_address_is_the_client() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &query("app.gslb.example.org.", RecordType::A)).await;
    assert_eq!(ecs_echo(&r), None);
    assert_eq!(first(&r), "192.0.2.1");
    s.stop().await;
}

#[tokio::test]
async fn all_down_answers_of_client_dependent_names_keep_their_scope() {
    let config = POLICIES.replace(
        "\"default\" = [\"us-east\"]\n",
        "\"default\" = [\"us-east\"]\n[names.geo.when_all_down]\nfallback = [\"192.0.2.99\"]\n",
    );
    assert_ne!(config, POLICIES);
    let s = TestServer::start(&config).await;
    s.set_up("eu-west", false);
    s.set_up("us-east", false);
    let r = udp(s.addr, &ecs("geo.gslb.example.org.", RecordType::A, "192.0.2.0/25")).await;
    assert_eq!(first(&r), "192.0.2.99");
    let (_, scope) = ecs_echo(&r).unwrap();
    assert!(scope > 0, "the GB client's candidates are not everyone's: scope {scope}");
    // A JP client's candidates are still up: a different answer, so /0 would have been a lie.
    let r = udp(s.addr, &ecs("geo.gslb.example.org.", RecordType::A, "203.0.113.0/25")).await;
    assert_eq!(first(&r), "192.0.2.3");
    s.stop().await;
}
