//! Database clusters against real PostgreSQL 15: `[clusters.NAME]` members with their own
//! endpoints, identity, honest lag, several clusters side by side, cascading standbys.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::dns::{first, query, ttls, udp, until_answer};
use crate::support::postgres::Pg;
use crate::support::{TestServer, ZONE};

/// Gateways: what `app` answers. Members answer their own endpoints (10.x).
const REGIONS: &str = r#"
[regions.us-east]
a = ["192.0.2.1"]
[regions.eu-west]
a = ["192.0.2.2"]
[regions.ap-southeast]
a = ["192.0.2.3"]
"#;

/// A member: (name, region, dsn, endpoint address).
type Member<'a> = (&'a str, &'a str, String, &'a str);

fn cluster(name: &str, settings: &str, members: &[Member<'_>]) -> String {
    let mut out = format!("[clusters.{name}]\n{settings}\n");
    for (m, region, dsn, ip) in members {
        out.push_str(&format!(
            "[clusters.{name}.members.{m}]\nregion = \"{region}\"\nkind = \"postgres\"\ndsn = \"{dsn}\"\na = [\"{ip}\"]\n"
        ));
    }
    out
}

fn config(clusters: &str, names: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[health]
interval = "250ms"
timeout = "250ms"
jitter = 0
rise = 1
fall = 1
writer_grace = "2s"
hold_down = "3s"
[defaults]
ttl = 60
failover_ttl = 5
{ZONE}
{REGIONS}
{clusters}
[names.app]
policy = "latency"
{names}
[latency]
"default" = {{ us-east = 20, eu-west = 10, ap-southeast = 30 }}
"#
    )
}

fn fqdn(name: &str) -> String {
    format!("{name}.gslb.example.org.")
}

async fn ask(s: &TestServer, name: &str) -> hickory_proto::op::Message {
    udp(s.addr, &query(&fqdn(name), RecordType::A)).await
}

async fn until(s: &TestServer, name: &str, want: &str, within: Duration) -> Duration {
    until_answer(s.addr, &fqdn(name), want, within).await
}

async fn status(s: &TestServer) -> Value {
    let text = reqwest::get(format!("http://{}/status", s.admin)).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn metrics(s: &TestServer) -> String {
    reqwest::get(format!("http://{}/metrics", s.admin)).await.unwrap().text().await.unwrap()
}

/// Polls `/status` until `pred` holds for it.
async fn until_status(s: &TestServer, within: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = status(s).await;
        if pred(&v) {
            return v;
        }
        assert!(start.elapsed() < within, "{what} not seen within {within:?}:\n{v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The member entry of `/status`.
fn member<'v>(v: &'v Value, cluster: &str, name: &str) -> &'v Value {
    let c = v["clusters"].as_array().unwrap().iter().find(|c| c["name"] == cluster).expect("the cluster");
    c["members"].as_array().unwrap().iter().find(|m| m["name"] == name).expect("the member")
}

fn role(v: &Value, cluster: &str, name: &str) -> String {
    member(v, cluster, name)["role"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn a_fresh_instance_with_the_primary_down_answers_servfail_not_a_replica() {
    let mut primary = Pg::primary();
    let eu = Pg::standby_of(&primary);
    let ap = Pg::standby_of(&primary);
    // One commit both standbys replay, so that their lag is known once the primary is
    // gone (from the last replayed commit): without one it is unknown, and unknown is stale.
    primary.sql("CREATE TABLE t ()");
    for standby in [&eu, &ap] {
        let start = Instant::now();
        while standby.sql("SELECT pg_last_xact_replay_timestamp() IS NOT NULL") != "t" {
            assert!(start.elapsed() < Duration::from_secs(10), "the standby never replayed the commit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    primary.kill();
    let members = [
        ("pg-us", "us-east", primary.dsn(), "10.0.1.1"),
        ("pg-eu", "eu-west", eu.dsn(), "10.0.2.1"),
        ("pg-ap", "ap-southeast", ap.dsn(), "10.0.3.1"),
    ];
    let names =
        "[names.db]\npolicy = \"writer\"\n[names.db-ro]\npolicy = \"reader\"\norder = \"latency\"\nmax_lag = \"1h\"\n";
    // No state file: this instance has never seen a primary.
    let s = TestServer::start(&config(&cluster("main", "", &members), names)).await;
    // The standbys are probed and trusted (two of three agree on the identity): reads work.
    until(&s, "db-ro", "10.0.2.1", Duration::from_secs(10)).await;
    for _ in 0..20 {
        let r = ask(&s, "db").await;
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "never a replica: {:?}", first(&r));
    }
    let v = status(&s).await;
    let c = &v["clusters"][0];
    assert_eq!((c["writer"].clone(), c["fail_open_to"].clone()), (Value::Null, Value::Null), "{c:#}");
    assert!(role(&v, "main", "pg-eu").starts_with("replica"));
    s.stop().await;
}

#[tokio::test]
async fn a_foreign_primary_is_never_the_writer_and_raises_the_identity_alarm() {
    let mut primary = Pg::primary();
    let eu = Pg::standby_of(&primary);
    // Another cluster's primary (a subscriber, a wrong DSN, a restored copy elsewhere).
    let foreign = Pg::primary();
    let members = [
        ("pg-us", "us-east", primary.dsn(), "10.0.1.1"),
        ("pg-eu", "eu-west", eu.dsn(), "10.0.2.1"),
        ("pg-other", "ap-southeast", foreign.dsn(), "10.0.3.1"),
    ];
    let names = "[names.db]\npolicy = \"writer\"\nwhen_all_down = \"servfail\"\n";
    let s = TestServer::start(&config(&cluster("main", "", &members), names)).await;
    until(&s, "db", "10.0.1.1", Duration::from_secs(10)).await;
    let start = Instant::now();
    loop {
        let text = metrics(&s).await;
        if text.contains("switchyard_database_identity_mismatch{cluster=\"main\",member=\"pg-other\"} 1") {
            assert!(text.contains("switchyard_database_identity_mismatch{cluster=\"main\",member=\"pg-eu\"} 0"));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no identity alarm:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both identifiers are on the status page's log.
    let (ours, theirs) = (primary.system_identifier(), foreign.system_identifier());
    assert_ne!(ours, theirs);
    let v = status(&s).await;
    let said = v["recent_changes"].as_array().unwrap().iter().any(|e| {
        let what = e["what"].as_str().unwrap_or("");
        what.contains("pg-other") && what.contains(&ours) && what.contains(&theirs)
    });
    assert!(said, "{:#}", v["recent_changes"]);
    assert_eq!(v["clusters"][0]["split_brain"], false, "a foreign primary is no rival writer");

    // The real primary dies: the foreign one is still never named.
    primary.kill();
    let start = Instant::now();
    loop {
        let r = ask(&s, "db").await;
        if r.metadata.response_code == ResponseCode::ServFail {
            break;
        }
        assert_eq!(first(&r), "10.0.1.1", "kept on grace, never the foreign primary");
        assert!(start.elapsed() < Duration::from_secs(10), "no SERVFAIL after the grace");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn a_standby_cut_off_ages_past_max_lag_and_reads_move_to_the_writer() {
    let primary = Pg::primary();
    let eu = Pg::standby_named(&primary, Some("pg-eu"));
    let members = [("pg-us", "us-east", primary.dsn(), "10.0.1.1"), ("pg-eu", "eu-west", eu.dsn(), "10.0.2.1")];
    // eu-west is nearer (latency 10 vs 20): reads go to its standby while it is fresh.
    let names = "[names.db-ro]\npolicy = \"reader\"\norder = \"latency\"\nmax_lag = \"2s\"\n";
    let s = TestServer::start(&config(&cluster("main", "", &members), names)).await;
    until(&s, "db-ro", "10.0.2.1", Duration::from_secs(10)).await;

    // The primary keeps committing.
    primary.sql("CREATE TABLE ticks (at timestamptz)");
    let dsn = primary.dsn();
    let writes = tokio::spawn(async move {
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        // Bounded: at most 600 commits, 50 ms apart (30 s).
        for _ in 0..600 {
            if client.execute("INSERT INTO ticks VALUES (now())", &[]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let conninfo = eu.cut_off();
    let cut = Instant::now();
    // Lag grows from the last message received: seen on /status, never stuck at 0.
    let mut lags = Vec::new();
    let took = loop {
        let r = ask(&s, "db-ro").await;
        if first(&r) == "10.0.1.1" {
            assert_eq!(ttls(&r), vec![5], "a reader falling back to the writer uses failover_ttl");
            break cut.elapsed();
        }
        assert_eq!(first(&r), "10.0.2.1");
        if let Some(l) = member(&status(&s).await, "main", "pg-eu")["lag_seconds"].as_f64() {
            lags.push(l);
        }
        assert!(cut.elapsed() < Duration::from_secs(10), "reads never left the cut-off standby: lags {lags:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("cut-off standby: reads moved to the writer {took:?} after the cut (max_lag 2 s, interval 250 ms)");
    assert!(took <= Duration::from_millis(2000 + 2 * 250), "took {took:?}: bound is max_lag plus two intervals");
    assert!(lags.windows(2).any(|w| w[1] > w[0]) && lags.iter().any(|&l| l > 1.0), "lag grew: {lags:?}");

    // Reconnected, it catches up and comes back.
    eu.reconnect(&conninfo);
    until(&s, "db-ro", "10.0.2.1", Duration::from_secs(15)).await;
    writes.abort();
    s.stop().await;
}

#[tokio::test]
async fn two_clusters_elect_independently() {
    let mut orders = Pg::primary();
    let orders_eu = Pg::standby_of(&orders);
    let billing = Pg::primary();
    let billing_us = Pg::standby_of(&billing);
    let clusters = [
        cluster(
            "orders",
            "",
            &[("o-us", "us-east", orders.dsn(), "10.1.1.1"), ("o-eu", "eu-west", orders_eu.dsn(), "10.1.2.1")],
        ),
        cluster(
            "billing",
            "",
            &[("b-eu", "eu-west", billing.dsn(), "10.2.2.1"), ("b-us", "us-east", billing_us.dsn(), "10.2.1.1")],
        ),
    ]
    .join("\n");
    let names = "[names.orders-db]\npolicy = \"writer\"\ncluster = \"orders\"\n\
                 [names.billing-db]\npolicy = \"writer\"\ncluster = \"billing\"\n";
    let s = TestServer::start(&config(&clusters, names)).await;
    until(&s, "orders-db", "10.1.1.1", Duration::from_secs(10)).await;
    until(&s, "billing-db", "10.2.2.1", Duration::from_secs(10)).await;
    // The gateway name is untouched by either: the writer names answer member endpoints.
    assert_eq!(first(&ask(&s, "app").await), "192.0.2.2");

    orders.kill();
    orders_eu.promote();
    let promoted = Instant::now();
    loop {
        let (o, b) = (ask(&s, "orders-db").await, ask(&s, "billing-db").await);
        assert_eq!(first(&b), "10.2.2.1", "billing's writer never moves with orders'");
        if first(&o) == "10.1.2.1" {
            break;
        }
        assert!(promoted.elapsed() < Duration::from_secs(10), "orders' writer did not follow the promotion");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = status(&s).await;
    let writer = |name: &str| {
        v["clusters"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["writer"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!((writer("orders"), writer("billing")), ("o-eu".to_owned(), "b-eu".to_owned()));
    s.stop().await;
}

#[tokio::test]
async fn a_cascading_standby_is_a_replica_and_there_is_exactly_one_writer() {
    let mut primary = Pg::primary();
    // In eu-west: a standby of the primary that feeds a standby of its own.
    let eu1 = Pg::standby_named(&primary, Some("eu1"));
    let eu2 = Pg::standby_named(&eu1, Some("eu2"));
    let members = [
        ("pg-us", "us-east", primary.dsn(), "10.0.1.1"),
        ("pg-eu1", "eu-west", eu1.dsn(), "10.0.2.1"),
        ("pg-eu2", "eu-west", eu2.dsn(), "10.0.2.2"),
    ];
    let names =
        "[names.db]\npolicy = \"writer\"\n[names.db-ro]\npolicy = \"reader\"\norder = \"latency\"\nmax_lag = \"30s\"\n";
    let s = TestServer::start(&config(&cluster("main", "", &members), names)).await;
    until(&s, "db", "10.0.1.1", Duration::from_secs(10)).await;
    let one_writer = |v: &Value| {
        let c = &v["clusters"][0];
        c["primaries"].as_array().is_some_and(|p| p.len() == 1)
            && ["pg-us", "pg-eu1", "pg-eu2"].iter().all(|m| !role(v, "main", m).is_empty())
    };
    let v = until_status(&s, Duration::from_secs(10), "every member's role", one_writer).await;
    assert_eq!(v["clusters"][0]["primaries"], serde_json::json!(["pg-us"]));
    assert!(role(&v, "main", "pg-eu2").starts_with("replica"), "{v:#}");
    // Both eu-west standbys are fresh: reads there get both.
    let start = Instant::now();
    loop {
        let r = ask(&s, "db-ro").await;
        let mut got: Vec<String> = r.answers.iter().map(|a| a.data.to_string()).collect();
        got.sort();
        if got == ["10.0.2.1", "10.0.2.2"] {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "reads: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The primary dies; eu1 is promoted; eu2 keeps streaming from it, now on the new
    // timeline: still one writer.
    primary.kill();
    eu1.promote();
    until(&s, "db", "10.0.2.1", Duration::from_secs(10)).await;
    let v = until_status(&s, Duration::from_secs(10), "one writer after the promotion", |v| {
        v["clusters"][0]["primaries"] == serde_json::json!(["pg-eu1"])
            && role(v, "main", "pg-eu2").starts_with("replica")
    })
    .await;
    assert_eq!(v["clusters"][0]["split_brain"], false);
    let text = metrics(&s).await;
    let writers: i64 = text
        .lines()
        .filter(|l| l.starts_with("switchyard_writer{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum();
    assert_eq!(writers, 1, "{text}");
    s.stop().await;
}

/// A reload with the members listed in another order (and one more name) keeps the
/// writer and the readers' freshness by name: no answer flips, no cold start.
#[tokio::test]
async fn a_reload_keeps_each_clusters_writer_and_freshness() {
    use crate::support::gateway::{Gateway, Mode};
    let (a, b) = (Gateway::http("127.0.0.41").await, Gateway::http("127.0.0.42").await);
    b.set(Mode::Status(503));
    let member = |name: &str, region: &str, g: &Gateway, ip: &str| {
        format!(
            "[clusters.main.members.{name}]\nregion = \"{region}\"\nkind = \"http_role\"\n\
             url = \"http://{}/primary\"\na = [\"{ip}\"]\n",
            g.addr
        )
    };
    let (ma, mb) = (member("pg-a", "us-east", &a, "10.0.1.1"), member("pg-b", "eu-west", &b, "10.0.2.1"));
    let names = "[names.db]\npolicy = \"writer\"\n[names.db-ro]\npolicy = \"reader\"\norder = \"latency\"\n";
    let s = TestServer::start(&config(&format!("{ma}{mb}"), names)).await;
    until(&s, "db", "10.0.1.1", Duration::from_secs(5)).await;
    until(&s, "db-ro", "10.0.2.1", Duration::from_secs(5)).await;

    // Reordered, with a new name; probes of the gateways now hang, so only what the
    // reload carries over can answer right away.
    a.set(Mode::Hang);
    b.set(Mode::Hang);
    let text = config(&format!("{mb}{ma}"), &format!("{names}[names.db2]\npolicy = \"writer\"\n"));
    crate::support::write_config(s.dir.path(), &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{text}"));
    s.control.reload().await.expect("the reload succeeds");
    for name in ["db", "db2"] {
        assert_eq!(first(&ask(&s, name).await), "10.0.1.1", "{name} right after the reload");
    }
    assert_eq!(first(&ask(&s, "db-ro").await), "10.0.2.1", "the reader right after the reload");
    s.stop().await;
}

/// A postgres member's probe leaves from its `source` address: PostgreSQL's pg_hba.conf
/// lets one source in and turns the other away.
#[tokio::test]
async fn a_postgres_member_probes_from_its_source_address() {
    let primary = Pg::primary();
    let listen = primary.sql("SHOW listen_addresses");
    assert_eq!(listen, "127.0.0.1");
    primary.allow("127.0.0.93");
    let member = |name: &str, source: &str| {
        format!(
            "[clusters.main.members.{name}]\nregion = \"us-east\"\nkind = \"postgres\"\ndsn = \"{}\"\nsource = \"{source}\"\n",
            primary.dsn()
        )
    };
    let text = config(&format!("{}{}", member("pg-in", "127.0.0.93"), member("pg-out", "127.0.0.94")), "");
    let s = TestServer::start(&text).await;
    let v = until_status(&s, Duration::from_secs(10), "both members probed", |v| {
        member_of(v, "pg-in")["up"] == true && member_of(v, "pg-out")["up"] == false
    })
    .await;
    let why = member_of(&v, "pg-out")["last"].as_str().unwrap_or("").to_owned();
    assert!(why.contains("127.0.0.94"), "turned away by pg_hba.conf for its source: {why}");
    s.stop().await;
}

fn member_of<'v>(v: &'v Value, name: &str) -> &'v Value {
    member(v, "main", name)
}
