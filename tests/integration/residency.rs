//! Residency over real DNS: three regions, two jurisdictions, every gateway policy,
//! every combination of regions down, clients of each jurisdiction, of none, and of
//! unknown location. No answer crosses a border; the ECS scope stays within the
//! client's GeoIP network; the residency counter and `/explain` say what happened.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::TestServer;
use crate::support::dns::{addrs, ecs, ecs_echo, udp};

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
geoip_db = "@GEOIP@"

[zone]
origin = "gslb.example.org."
[zone.soa]
rname = "hostmaster@example.org"
[[zone.ns]]
name = "ns1"
ipv4 = ["192.0.2.53"]

[regions.eu-west]
location = [53.35, -6.26]
a = ["10.0.1.1"]
[regions.eu-central]
location = [50.11, 8.68]
a = ["10.0.2.1"]
[regions.us-east]
location = [39.04, -77.49]
a = ["10.0.3.1"]

[jurisdictions.eu]
regions = ["eu-west", "eu-central"]
clients = ["continent:EU"]
sorry = { fallback = ["10.0.1.99"] }
[jurisdictions.us]
regions = ["us-east"]
clients = ["country:US"]
sorry = { fallback = ["10.0.3.99"] }

[latency]
"default" = { eu-west = 80, eu-central = 90, us-east = 10 }
"continent:EU" = { eu-west = 90, eu-central = 95, us-east = 5 }
"country:US" = { eu-west = 5, eu-central = 6, us-east = 100 }
"#;

/// Gateway policies (the database ones are swept in `routing::tests`, on every
/// writer and freshness state), each with every all-down rule.
const POLICIES: &[(&str, &str)] = &[
    ("nearest", ""),
    ("latency", ""),
    (
        "geo",
        "map = { \"continent:EU\" = [\"us-east\", \"eu-west\"], \"country:US\" = [\"eu-central\", \"us-east\"], default = [\"us-east\"] }\n",
    ),
    ("failover", "regions = [\"us-east\", \"eu-central\", \"eu-west\"]\n"),
    ("weighted", ""),
    ("multivalue", "answers = 3\n"),
];
const RULES: &[&str] = &["\"fail_open\"", "\"servfail\"", "{ fallback = [\"192.0.2.99\"] }"];

const GB: &str = "192.0.2.0/25";
const DE: &str = "192.0.2.128/25";
const US: &str = "198.51.100.0/24";
const JP: &str = "203.0.113.0/24";
/// A network the test GeoIP database does not know.
const UNKNOWN: &str = "100.100.7.0/24";

fn config() -> String {
    let mut c = CONFIG.to_owned();
    for (i, (policy, extra)) in POLICIES.iter().enumerate() {
        for (k, rule) in RULES.iter().enumerate() {
            c += &format!(
                "[names.p{i}r{k}]\npolicy = \"{policy}\"\nresidency = \"strict\"\nwhen_all_down = {rule}\n{extra}"
            );
        }
    }
    for unlocated in ["open", "servfail", "eu"] {
        c += &format!(
            "[names.u-{unlocated}]\npolicy = \"failover\"\nregions = [\"us-east\", \"eu-west\"]\nresidency = \"strict\"\nunlocated = \"{unlocated}\"\n"
        );
    }
    c += "[names.loose]\npolicy = \"failover\"\nregions = [\"us-east\", \"eu-west\"]\n";
    c
}

#[tokio::test]
async fn no_answer_crosses_a_border_in_any_failure() {
    let s = TestServer::start(&config()).await;
    let eu = ["10.0.1.1", "10.0.2.1", "10.0.1.99"];
    let us = ["10.0.3.1", "10.0.3.99"];
    let regions = ["eu-west", "eu-central", "us-east"];
    let mut answers = 0;
    for down in 0..8u8 {
        for (i, r) in regions.iter().enumerate() {
            s.set_up(r, down & (1 << i) == 0);
        }
        for i in 0..POLICIES.len() {
            for k in 0..RULES.len() {
                let name = format!("p{i}r{k}.gslb.example.org.");
                for (client, allowed) in [(GB, &eu[..]), (DE, &eu[..]), (US, &us[..])] {
                    let r = udp(s.addr, &ecs(&name, RecordType::A, client)).await;
                    for a in addrs(&r) {
                        assert!(
                            allowed.contains(&a.to_string().as_str()),
                            "{name} answered {a} to {client} across the border (down {down:03b})"
                        );
                    }
                    // The decision depends on the client's jurisdiction: the scope
                    // never claims more than its GeoIP network.
                    let (_, scope) = ecs_echo(&r).expect("ECS echoed");
                    let network = if client == US { 24 } else { 25 };
                    assert!(scope >= network, "{name} for {client}: scope /{scope} wider than /{network}");
                    answers += 1;
                }
                // A client of no jurisdiction is routed as before: anything goes.
                let r = udp(s.addr, &ecs(&name, RecordType::A, JP)).await;
                if down == 0 {
                    assert!(!addrs(&r).is_empty(), "{name} for JP with {down:03b} down: {r:?}");
                }
            }
        }
    }
    assert_eq!(answers, 8 * POLICIES.len() * RULES.len() * 3);
    for r in regions {
        s.set_up(r, true);
    }

    // All of the EU down: each rule, restricted to the jurisdiction.
    s.set_up("eu-west", false);
    s.set_up("eu-central", false);
    let failover = POLICIES.iter().position(|(p, _)| *p == "failover").unwrap();
    let got = |r: &hickory_proto::op::Message| {
        (r.metadata.response_code, addrs(r).iter().map(|a| a.to_string()).collect::<Vec<_>>())
    };
    let r = udp(s.addr, &ecs(&format!("p{failover}r0.gslb.example.org."), RecordType::A, GB)).await;
    assert_eq!(got(&r), (ResponseCode::NoError, vec!["10.0.2.1".to_owned()]), "fail_open among EU regions only");
    let r = udp(s.addr, &ecs(&format!("p{failover}r1.gslb.example.org."), RecordType::A, GB)).await;
    assert_eq!(got(&r).0, ResponseCode::ServFail);
    let r = udp(s.addr, &ecs(&format!("p{failover}r2.gslb.example.org."), RecordType::A, GB)).await;
    assert_eq!(got(&r), (ResponseCode::NoError, vec!["10.0.1.99".to_owned()]), "the jurisdiction's sorry answer");
    let r = udp(s.addr, &ecs(&format!("p{failover}r2.gslb.example.org."), RecordType::A, JP)).await;
    assert_eq!(got(&r), (ResponseCode::NoError, vec!["10.0.3.1".to_owned()]), "JP is of no jurisdiction");
    // The name without residency still fails over across the border, as before.
    let r = udp(s.addr, &ecs("loose.gslb.example.org.", RecordType::A, GB)).await;
    assert_eq!(got(&r).1, vec!["10.0.3.1".to_owned()]);
    s.set_up("eu-west", true);
    s.set_up("eu-central", true);

    // Clients of unknown location, each treatment.
    let r = udp(s.addr, &ecs("u-open.gslb.example.org.", RecordType::A, UNKNOWN)).await;
    assert_eq!(got(&r).1, vec!["10.0.3.1".to_owned()], "open: as a client of no jurisdiction");
    let r = udp(s.addr, &ecs("u-servfail.gslb.example.org.", RecordType::A, UNKNOWN)).await;
    assert_eq!(got(&r).0, ResponseCode::ServFail);
    let r = udp(s.addr, &ecs("u-eu.gslb.example.org.", RecordType::A, UNKNOWN)).await;
    assert_eq!(got(&r).1, vec!["10.0.1.1".to_owned()], "treated as a client of eu");

    // A client subnet wider than the block that decides its jurisdiction (a /24 over
    // GeoIP's two /25s) is of unknown location: each treatment, and the scope never
    // claims more than the subnet sent.
    let wide = "192.0.2.0/24";
    let r = udp(s.addr, &ecs("u-servfail.gslb.example.org.", RecordType::A, wide)).await;
    assert_eq!(got(&r).0, ResponseCode::ServFail);
    let r = udp(s.addr, &ecs("u-eu.gslb.example.org.", RecordType::A, wide)).await;
    assert_eq!(got(&r).1, vec!["10.0.1.1".to_owned()]);
    assert!(ecs_echo(&r).unwrap().1 <= 24, "{r:?}");

    // The counter, by jurisdiction, and explain's account.
    let metrics = reqwest::get(format!("http://{}/metrics", s.admin)).await.unwrap().text().await.unwrap();
    let count = |label: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("switchyard_residency_restricted_total{{jurisdiction=\"{label}\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(count("eu") > 100, "{metrics}");
    assert!(count("us") > 10);
    assert!(count("unlocated") >= 1);
    let text = reqwest::get(format!("http://{}/explain?name=p{failover}r0&client={GB}", s.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("residency: strict; client of jurisdiction eu (regions eu-west, eu-central); excluded us-east"),
        "{text}"
    );
    assert!(text.contains("us-east") && text.contains("outside the client's jurisdiction: excluded"), "{text}");
    s.stop().await;
}
