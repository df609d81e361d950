//! Table-driven policy decisions: one `check` per row, on configs without GeoIP
//! (CIDR rows) so that each decision is visible in the table.

use std::path::Path;

use super::{Client, Outcome, route};
use crate::config;
use crate::model::Model;
use crate::state::HealthView;

const BASE: &str = r#"
[zone]
origin = "example.org."
[zone.soa]
rname = "hostmaster.example.org."
[[zone.ns]]
name = "ns.example.net."

[regions.a]
a = ["192.0.2.1"]
weight = 3
[regions.b]
a = ["192.0.2.2"]
weight = 1
[regions.c]
a = ["192.0.2.3"]
weight = 0

[latency]
"default" = { a = 50, b = 60, c = 200 }
"10.0.0.0/8" = { a = 90, b = 20, c = 10 }
"10.1.0.0/16" = { a = 5, b = 100 }

[names.lat]
policy = "latency"
[names.tie]
policy = "latency"
tie_window = 15
[names.geo]
policy = "geo"
map = { "10.0.0.0/8" = ["c", "b"], "10.1.0.0/16" = ["b"], default = ["a", "b"] }
[names.fo]
policy = "failover"
regions = ["b", "a"]
[names.w]
policy = "weighted"
[names.w3]
policy = "weighted"
weights = { a = 3, b = 1, c = 2 }
[names.mv]
policy = "multivalue"
answers = 2
[names.st]
policy = "static"
answers = 3
[names.sf]
policy = "failover"
regions = ["c"]
when_all_down = "servfail"
[names.fb]
policy = "failover"
regions = ["c"]
when_all_down = { fallback = ["192.0.2.99"] }
"#;

fn model() -> Model {
    let cfg = config::parse(BASE, Path::new(".")).unwrap_or_else(|e| panic!("{e:?}"));
    Model::new(&cfg, None, crate::model::MetricSlots::none(&cfg))
}

/// What one decision should be: regions answered, TTL, scope, outcome.
type Want = (&'static [&'static str], u32, u8, Outcome);

/// One decision: name, client, regions down → regions answered, TTL, scope, outcome.
fn check(m: &Model, name: &str, client: &str, down: &[&str], want: Want) {
    let (addr, prefix) = super::parse_client(client).unwrap();
    let mut health = HealthView::initial(m);
    for d in down {
        health.up[m.region_index(d).unwrap() as usize] = false;
    }
    let index = m.names.iter().position(|n| n.fqdn.to_ascii() == format!("{name}.example.org.")).unwrap();
    let r = route(m, &health, index, &Client::new(addr, prefix, None));
    let got: Vec<&str> = r.regions.iter().map(|&i| m.region_name(i)).collect();
    assert_eq!((got.as_slice(), r.ttl, r.scope, r.outcome), want, "{name} for {client} with {down:?} down");
}

#[test]
fn latency() {
    let m = model();
    use Outcome::*;
    let rows: &[(&str, &[&str], Want)] = &[
        ("192.0.2.1", &[], (&["a"], 60, 1, Preferred)),
        ("10.2.0.0/16", &[], (&["c"], 60, 15, Preferred)),
        ("10.2.0.0/16", &["c"], (&["b"], 10, 15, Fallback)),
        // 10.2/16 and 10.1/16 part at bit 15: the /15 is uniform.
        // The /16 row has no rtt for c: it ranks last.
        ("10.1.2.0/24", &[], (&["a"], 60, 16, Preferred)),
        ("10.1.2.0/24", &["a", "b"], (&["c"], 10, 16, Fallback)),
        ("10.1.2.0/24", &["a", "b", "c"], (&["a"], 10, 16, AllDownFailOpen)),
    ];
    for (client, down, want) in rows {
        check(&m, "lat", client, down, *want);
    }
}

#[test]
fn latency_tie_window_is_sticky_and_covers_the_sticky_prefix() {
    let m = model();
    let mut seen = std::collections::HashSet::new();
    for i in 0..32 {
        let client = format!("198.51.{i}.0/24");
        let (addr, prefix) = super::parse_client(&client).unwrap();
        let health = HealthView::initial(&m);
        let index = m.names.iter().position(|n| n.fqdn.to_ascii() == "tie.example.org.").unwrap();
        let r = route(&m, &health, index, &Client::new(addr, prefix, None));
        assert_eq!(r.scope, 24, "tie split depends on the /24");
        seen.insert(m.region_name(r.regions[0]).to_owned());
    }
    assert_eq!(seen.len(), 2, "a and b share the default row's clients: {seen:?}");
}

#[test]
fn geo_map() {
    let m = model();
    use Outcome::*;
    let rows: &[(&str, &[&str], Want)] = &[
        ("10.9.0.0/16", &[], (&["c"], 60, 13, Preferred)),
        ("10.9.0.0/16", &["c"], (&["b"], 10, 13, Fallback)),
        ("10.1.0.0/16", &[], (&["b"], 60, 16, Preferred)),
        ("10.1.0.0/16", &["b"], (&["b"], 10, 16, AllDownFailOpen)),
        ("192.0.2.0/24", &[], (&["a"], 60, 1, Preferred)),
    ];
    for (client, down, want) in rows {
        check(&m, "geo", client, down, *want);
    }
}

#[test]
fn failover_multivalue_static_and_all_down_rules() {
    let m = model();
    use Outcome::*;
    let rows: &[(&str, &str, &[&str], Want)] = &[
        ("fo", "192.0.2.0/24", &[], (&["b"], 60, 0, Preferred)),
        ("fo", "192.0.2.0/24", &["b"], (&["a"], 10, 0, Fallback)),
        ("fo", "192.0.2.0/24", &["a", "b"], (&["b"], 10, 0, AllDownFailOpen)),
        ("mv", "192.0.2.0/24", &[], (&["a", "b"], 60, 0, Preferred)),
        ("mv", "192.0.2.0/24", &["a"], (&["b", "c"], 10, 0, Fallback)),
        ("st", "192.0.2.0/24", &["a", "b", "c"], (&["a", "b", "c"], 60, 0, Preferred)),
        ("sf", "192.0.2.0/24", &["c"], (&[], 10, 0, AllDownServFail)),
        ("fb", "192.0.2.0/24", &["c"], (&[], 10, 0, AllDownFallback)),
    ];
    for (name, client, down, want) in rows {
        check(&m, name, client, down, *want);
    }
}

#[test]
fn weighted_follows_weights_moves_only_failed_clients_and_uses_zero_weight_last() {
    let m = model();
    let index = m.names.iter().position(|n| n.fqdn.to_ascii() == "w.example.org.").unwrap();
    let all_up = HealthView::initial(&m);
    let mut b_down = all_up.clone();
    b_down.up[1] = false;
    let mut counts = [0usize; 3];
    for i in 0..2000u32 {
        let addr = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)));
        let client = Client::new(addr, 24, None);
        let before = route(&m, &all_up, index, &client).regions[0];
        counts[before as usize] += 1;
        let after = route(&m, &b_down, index, &client).regions[0];
        if before != 1 {
            assert_eq!(after, before, "a client of an up region stays put");
        } else {
            assert_eq!(after, 0, "b's clients move to a (c has weight 0)");
        }
    }
    assert_eq!(counts[2], 0, "weight 0 takes nothing while others are up");
    let share = counts[0] as f64 / 2000.0;
    assert!((0.70..0.80).contains(&share), "weight 3:1 → about 75 %, got {share}");
    let mut both_down = all_up.clone();
    both_down.up[0] = false;
    both_down.up[1] = false;
    let r = route(&m, &both_down, index, &Client::new("10.0.0.0".parse().unwrap(), 24, None));
    assert_eq!(m.region_name(r.regions[0]), "c", "the weight-0 backup");
}

#[test]
fn weighted_with_three_regions_moves_only_the_failed_regions_clients() {
    let m = model();
    let index = m.names.iter().position(|n| n.fqdn.to_ascii() == "w3.example.org.").unwrap();
    let all_up = HealthView::initial(&m);
    let mut b_down = all_up.clone();
    b_down.up[1] = false;
    let mut counts = [0usize; 3];
    let mut moved_to = [0usize; 3];
    for i in 0..3000u32 {
        let addr = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)));
        let client = Client::new(addr, 24, None);
        let before = route(&m, &all_up, index, &client).regions[0];
        let after = route(&m, &b_down, index, &client).regions[0];
        counts[before as usize] += 1;
        if before == 1 {
            moved_to[after as usize] += 1;
        } else {
            assert_eq!(after, before, "a client of an up region stays put");
        }
    }
    let share = |n: usize| n as f64 / 3000.0;
    assert!((0.45..0.55).contains(&share(counts[0])), "a: weight 3 of 6, got {counts:?}");
    assert!((0.12..0.21).contains(&share(counts[1])), "b: weight 1 of 6, got {counts:?}");
    assert!((0.28..0.39).contains(&share(counts[2])), "c: weight 2 of 6, got {counts:?}");
    // b's clients spread over a and c in proportion to their weights (3:2).
    assert_eq!(moved_to[1], 0);
    let to_a = moved_to[0] as f64 / (moved_to[0] + moved_to[2]) as f64;
    assert!((0.48..0.72).contains(&to_a), "b's clients split 3:2, got {moved_to:?}");
}

/// A cluster with one member per region (pg-a, pg-b, pg-c) and database names over it.
const DATABASE: &str = r#"
[clusters.main.members.pg-a]
region = "a"
kind = "postgres"
dsn = "host=a"
a = ["10.9.0.1"]
[clusters.main.members.pg-b]
region = "b"
kind = "postgres"
dsn = "host=b"
a = ["10.9.0.2"]
[clusters.main.members.pg-c]
region = "c"
kind = "postgres"
dsn = "host=c"
a = ["10.9.0.3"]
[names.db]
policy = "writer"
[names.db-gw]
policy = "writer"
require_gateway = true
when_all_down = "servfail"
[names.ro]
policy = "reader"
order = "latency"
[names.ro-gw]
policy = "reader"
order = "latency"
require_gateway = true
[names.ro-stale]
policy = "reader"
order = "latency"
when_all_down = "fail_open"
"#;

#[test]
fn database_names_answer_members_by_writer_freshness_and_gateways() {
    let cfg = config::parse(&format!("{BASE}{DATABASE}"), Path::new(".")).unwrap_or_else(|e| panic!("{e:?}"));
    let m = Model::new(&cfg, None, crate::model::MetricSlots::none(&cfg));
    let index = |name: &str| m.names.iter().position(|n| n.key == name).unwrap();
    // pg-b is the writer; pg-a and pg-c are replicas; every reader slot sees a and b fresh.
    let mut health = HealthView::initial(&m);
    health.clusters[0].writer = Some(1);
    health.clusters[0].last_primary = Some(1);
    health.clusters[0].lag = vec![Some(0.5), Some(0.0), Some(90.0)];
    for r in &mut health.readers {
        r.fresh = vec![true, true, false];
    }
    let client = Client::new("192.0.2.1".parse().unwrap(), 32, None);
    let go = |h: &HealthView, name: &str| {
        let r = route(&m, h, index(name), &client);
        let members: Vec<&str> = r.members.iter().map(|&i| m.clusters[0].members[i as usize].name.as_str()).collect();
        (members.join(","), r.ttl, r.outcome)
    };
    use Outcome::*;
    assert_eq!(go(&health, "db"), ("pg-b".into(), 60, Preferred));
    // The default row ranks a (50 ms) first: its replica is fresh.
    assert_eq!(go(&health, "ro"), ("pg-a".into(), 60, Preferred));

    // a's gateways down: only the coupled names care.
    let mut gw = health.clone();
    gw.up[0] = false;
    gw.up[1] = false;
    assert_eq!(go(&gw, "ro"), ("pg-a".into(), 60, Preferred));
    assert_eq!(go(&gw, "ro-gw"), ("pg-b".into(), 10, AllDownWriter), "no usable fresh member: the writer");
    assert_eq!(go(&gw, "db"), ("pg-b".into(), 60, Preferred));
    assert_eq!(go(&gw, "db-gw"), ("".into(), 10, AllDownServFail));

    // Nothing fresh: the writer by default, stale replicas only when asked for.
    let mut stale = health.clone();
    for r in &mut stale.readers {
        r.fresh = vec![false, false, false];
    }
    assert_eq!(go(&stale, "ro"), ("pg-b".into(), 10, AllDownWriter));
    assert_eq!(go(&stale, "ro-stale"), ("pg-a".into(), 10, AllDownFailOpen));

    // No writer: fail_open answers the last primary seen, and without one, nothing.
    let mut none = stale.clone();
    none.clusters[0].writer = None;
    assert_eq!(go(&none, "db"), ("pg-b".into(), 10, AllDownFailOpen));
    assert_eq!(go(&none, "ro"), ("".into(), 10, AllDownUnknown));
    none.clusters[0].last_primary = None;
    assert_eq!(go(&none, "db"), ("".into(), 10, AllDownUnknown), "never a replica");

    // A freshness change within the hold-down: the short TTL.
    let mut recent = health.clone();
    for r in &mut recent.readers {
        r.recent = true;
    }
    assert_eq!(go(&recent, "ro"), ("pg-a".into(), 10, Preferred));
}

/// Three regions, two jurisdictions (CIDR clients), every policy and all-down rule.
const RESIDENCY: &str = r#"
[zone]
origin = "example.org."
[zone.soa]
rname = "hostmaster.example.org."
[[zone.ns]]
name = "ns.example.net."

[regions.eu-west]
a = ["10.0.1.1"]
[regions.eu-central]
a = ["10.0.2.1"]
[regions.us-east]
a = ["10.0.3.1"]

[jurisdictions.eu]
regions = ["eu-west", "eu-central"]
clients = ["10.10.0.0/16"]
sorry = { fallback = ["10.0.1.99"] }
[jurisdictions.us]
regions = ["us-east"]
clients = ["10.20.0.0/16"]
sorry = { fallback = ["10.0.3.99"] }

[latency]
"default" = { eu-west = 80, eu-central = 90, us-east = 10 }
"10.10.0.0/16" = { eu-west = 90, eu-central = 95, us-east = 5 }
"10.20.0.0/16" = { eu-west = 5, eu-central = 6, us-east = 100 }

[clusters.main.members.pg-w]
region = "eu-west"
kind = "postgres"
dsn = "host=w"
a = ["10.0.1.5"]
[clusters.main.members.pg-c]
region = "eu-central"
kind = "postgres"
dsn = "host=c"
a = ["10.0.2.5"]
[clusters.main.members.pg-u]
region = "us-east"
kind = "postgres"
dsn = "host=u"
a = ["10.0.3.5"]
"#;

#[test]
fn residency_sweep_never_crosses_a_border() {
    use crate::query::answer::{Answer, decide};
    use crate::state::Snapshot;
    use std::sync::Arc;

    // Every policy with every all-down rule it takes, each name strict. The policies'
    // own preferences point across the border (latency and geo send EU clients to
    // us-east first), so that only residency keeps them home.
    let mut names = String::new();
    let gateway = [
        ("latency", ""),
        ("latency", "tie_window = 20\n"),
        (
            "geo",
            "map = { \"10.10.0.0/16\" = [\"us-east\", \"eu-west\"], \"10.20.0.0/16\" = [\"eu-central\", \"us-east\"], default = [\"us-east\"] }\n",
        ),
        ("failover", "regions = [\"us-east\", \"eu-central\", \"eu-west\"]\n"),
        ("weighted", ""),
        ("multivalue", "answers = 3\n"),
    ];
    let rules = ["\"fail_open\"", "\"servfail\"", "{ fallback = [\"192.0.2.99\"] }"];
    for (i, (policy, extra)) in gateway.iter().enumerate() {
        for (k, rule) in rules.iter().enumerate() {
            names += &format!(
                "[names.g{i}-{k}]\npolicy = \"{policy}\"\nresidency = \"strict\"\nwhen_all_down = {rule}\n{extra}"
            );
        }
    }
    for (k, rule) in ["\"fail_open\"", "\"servfail\""].iter().enumerate() {
        for gw in [false, true] {
            names += &format!(
                "[names.w{k}-{gw}]\npolicy = \"writer\"\nresidency = \"strict\"\nwhen_all_down = {rule}\nrequire_gateway = {gw}\n"
            );
        }
    }
    for (k, rule) in ["\"writer\"", "\"fail_open\"", "\"servfail\""].iter().enumerate() {
        for order in ["latency", "nearest"] {
            if order == "nearest" {
                continue; // needs GeoIP: the DNS-level sweep covers it
            }
            names += &format!(
                "[names.r{k}]\npolicy = \"reader\"\norder = \"{order}\"\nresidency = \"strict\"\nwhen_all_down = {rule}\nrequire_gateway = true\n"
            );
        }
    }
    let cfg = config::parse(&format!("{RESIDENCY}{names}"), Path::new(".")).unwrap_or_else(|e| panic!("{e:?}"));
    let m = Arc::new(Model::new(&cfg, None, crate::model::MetricSlots::none(&cfg)));
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    // Addresses each jurisdiction may be answered with (its regions, members, sorry).
    let eu: Vec<_> = ["10.0.1.1", "10.0.2.1", "10.0.1.5", "10.0.2.5", "10.0.1.99"].map(ip).to_vec();
    let us: Vec<_> = ["10.0.3.1", "10.0.3.5", "10.0.3.99"].map(ip).to_vec();
    let clients = [("10.10.7.0", Some(&eu)), ("10.20.7.0", Some(&us)), ("10.30.7.0", None)];

    let mut decisions = 0;
    let mut restricted = 0;
    let mut servfails = 0;
    for up in 0..8u8 {
        for drained in 0..8u8 {
            for writer in 0..4u8 {
                for last in 0..4u8 {
                    for fresh in 0..8u8 {
                        let mut h = HealthView::initial(&m);
                        for r in 0..3 {
                            h.up[r] = up & (1 << r) != 0;
                            h.drained[r] = drained & (1 << r) != 0;
                        }
                        let member = |x: u8| (x < 3).then_some(x as u16);
                        h.clusters[0].writer = member(writer);
                        h.clusters[0].last_primary = member(last).or(member(writer));
                        h.clusters[0].primaries = member(writer).into_iter().collect();
                        h.clusters[0].lag = (0..3).map(|i| (fresh & (1 << i) != 0).then_some(1.0)).collect();
                        for rv in &mut h.readers {
                            rv.fresh = (0..3).map(|i| fresh & (1 << i) != 0).collect();
                        }
                        let snap = Snapshot { model: m.clone(), health: h };
                        for (index, name) in m.names.iter().enumerate() {
                            for (addr, allowed) in clients {
                                let client = crate::query::client::Client { addr: ip(addr), prefix: 24, ecs: None };
                                let d = decide(&snap, index, &client);
                                decisions += 1;
                                restricted += usize::from(d.restricted.is_some());
                                let mut got = Vec::new();
                                d.addresses(&m, hickory_proto::rr::RecordType::A, |a| got.push(a));
                                if d.answer == Answer::ServFail {
                                    servfails += 1;
                                }
                                if let Some(allowed) = allowed {
                                    for a in &got {
                                        assert!(
                                            allowed.contains(a),
                                            "{} answered {a} to {addr} across the border (up {up:03b}, drained {drained:03b}, writer {writer}, last {last}, fresh {fresh:03b}): {:?}",
                                            name.key,
                                            d.answer
                                        );
                                    }
                                }
                                // A client of a jurisdiction (10.10/16, 10.20/16): the answer
                                // holds for its jurisdiction's block, so its scope is at
                                // least /16 even for client-independent policies.
                                if allowed.is_some() && d.answer != Answer::ServFail {
                                    assert!((16..=24).contains(&d.scope), "{} scope /{} for {addr}", name.key, d.scope);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // The sweep did what it says: many decisions, some restricted, some refused.
    assert_eq!(decisions, 8 * 8 * 4 * 4 * 8 * m.names.len() * clients.len());
    assert!(restricted > decisions / 10, "{restricted} of {decisions}");
    assert!(servfails > 0);
}
