//! Several instances, one verdict: three in-process servers share a real nats-server
//! (JetStream on) as vantage points; their probes leave from distinct loopback
//! addresses, and the test gateways close connections from chosen ones.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::support::dns::{first, query, udp};
use crate::support::gateway::{Gateway, Mode};
use crate::support::nats::Nats;
use crate::support::{TestServer, ZONE};

/// The probes' source address of instance `i` (1-based).
fn source(i: usize) -> String {
    format!("127.0.0.{}", 80 + i)
}

/// Instance `i`'s config: two regions with one gateway check each, probed from its own
/// source address; `extra` adds regions, clusters and names.
fn config(i: usize, nats: &Nats, bucket: &str, us: &Gateway, eu: &Gateway, extra: &str) -> String {
    let src = source(i);
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
token_file = "admin-token"
[health]
interval = "250ms"
timeout = "200ms"
jitter = 0
rise = 1
fall = 1
hold_down = "2s"
[fleet]
name = "ns{i}"
servers = ["{}"]
bucket = "{bucket}"
observation_ttl = "1s"
shared_grace = "2s"
[defaults]
ttl = 60
failover_ttl = 5
{ZONE}
[regions.us-east]
a = ["192.0.2.1"]
[[regions.us-east.checks]]
kind = "http"
url = "http://{}/healthz"
source = "{src}"
[regions.eu-west]
a = ["192.0.2.2"]
[[regions.eu-west.checks]]
kind = "http"
url = "http://{}/healthz"
source = "{src}"
[names.app]
policy = "failover"
regions = ["us-east", "eu-west"]
{}
"#,
        nats.url(),
        us.addr,
        eu.addr,
        extra.replace("@SRC@", &src)
    )
}

async fn start_three(nats: &Nats, bucket: &str, us: &Gateway, eu: &Gateway, extra: &str) -> Vec<TestServer> {
    let mut out = Vec::new();
    for i in 1..=3 {
        out.push(TestServer::start(&config(i, nats, bucket, us, eu, extra)).await);
    }
    out
}

async fn metric(s: &TestServer, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{}/metrics", s.admin)).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

/// Polls until `pred` holds for every instance.
async fn until_all<F, Fut>(servers: &[TestServer], within: Duration, what: &str, pred: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        let mut all = true;
        for i in 0..servers.len() {
            all &= pred(i).await;
        }
        if all {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not on every instance within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn answer(s: &TestServer, name: &str) -> String {
    first(&udp(s.addr, &query(&format!("{name}.gslb.example.org."), RecordType::A)).await)
}

/// Every instance decides with all three vantages.
async fn until_three_vantages(servers: &[TestServer]) {
    until_all(servers, Duration::from_secs(15), "three vantages", |i| async move {
        metric(&servers[i], "switchyard_fleet_vantages").await == Some(3.0)
    })
    .await;
}

/// `vantage`'s verdict on the check of `region`, as shared with instance `s`.
async fn seen_on(s: &TestServer, vantage: &str, region: &str) -> Option<f64> {
    let prefix = "switchyard_fleet_check_up{check=";
    let text = reqwest::get(format!("http://{}/metrics", s.admin)).await.ok()?.text().await.ok()?;
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .find(|l| l.contains(&format!("region=\"{region}\"")) && l.contains(&format!("vantage=\"{vantage}\"")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn one_vantage_is_not_a_verdict_two_of_three_are_and_all_answer_alike() {
    let nats = Nats::start();
    let (us, eu) = (Gateway::http("127.0.0.61").await, Gateway::http("127.0.0.62").await);
    let servers = start_three(&nats, "one-verdict", &us, &eu, "").await;
    until_three_vantages(&servers).await;
    until_all(&servers, Duration::from_secs(5), "us-east first", |i| {
        let s = &servers[i];
        async move { answer(s, "app").await == "192.0.2.1" }
    })
    .await;

    // ns1 alone loses us-east: once every instance has that observation, none moves.
    us.refuse(&[&source(1)]);
    until_all(&servers, Duration::from_secs(5), "ns1's down vote shared", |i| {
        let s = &servers[i];
        async move { seen_on(s, "ns1", "us-east").await == Some(0.0) }
    })
    .await;
    for _ in 0..20 {
        for s in &servers {
            assert_eq!(answer(s, "app").await, "192.0.2.1", "one vantage of three is no verdict: no flap");
        }
    }
    // Who sees what, on every instance's status: the region × vantage matrix.
    let text = reqwest::get(format!("http://{}/status", servers[2].admin)).await.unwrap().text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let row = &v["fleet"]["matrix"]["us-east"];
    assert_eq!((row["ns1"].as_str(), row["ns2"].as_str(), row["ns3"].as_str()), (Some("down"), Some("up"), Some("up")));
    assert_eq!(v["fleet"]["connected"], true);
    let page = reqwest::get(format!("http://{}/", servers[2].admin)).await.unwrap().text().await.unwrap();
    assert!(page.contains("<h2>Fleet</h2>") && page.contains("<th>ns1</th>"), "the status page shows the matrix");

    // ns2 loses it too: two of three, every instance fails over. Ask all three over and
    // over meanwhile: they may differ only while the change spreads.
    us.refuse(&[&source(1), &source(2)]);
    let flipped = Instant::now();
    let (mut first_differ, mut last_differ, mut rounds) = (None, None, 0);
    let took = loop {
        let answers: Vec<String> = futures_util::future::join_all(servers.iter().map(|s| answer(s, "app"))).await;
        rounds += 1;
        if answers.windows(2).any(|w| w[0] != w[1]) {
            first_differ.get_or_insert(flipped.elapsed());
            last_differ = Some(flipped.elapsed());
        }
        if answers.iter().all(|a| a == "192.0.2.2") {
            break flipped.elapsed();
        }
        assert!(flipped.elapsed() < Duration::from_secs(5), "not failed over everywhere: {answers:?}");
    };
    eprintln!(
        "fleet: two of three vantages see us-east down: every instance answers eu-west {took:?} after the second \
         refusal (interval 250 ms); over {rounds} rounds of the same query to all three, answers differed from \
         {first_differ:?} to {last_differ:?}"
    );
    assert!(took < Duration::from_millis(250 + 500 + 250), "goal: one interval plus 0.5 s from the observation");
    // The same question, the same answer everywhere.
    for name in ["app", "static"] {
        let answers: Vec<String> = futures_util::future::join_all(servers.iter().map(|s| answer(s, name))).await;
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{name}: {answers:?}");
    }

    // Healthy again everywhere: back.
    us.refuse(&[]);
    until_all(&servers, Duration::from_secs(5), "back on us-east", |i| {
        let s = &servers[i];
        async move { answer(s, "app").await == "192.0.2.1" }
    })
    .await;
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_promotion_one_vantage_sees_reaches_every_instance() {
    let nats = Nats::start();
    let (us, eu) = (Gateway::http("127.0.0.63").await, Gateway::http("127.0.0.64").await);
    let (db_a, db_b) = (Gateway::http("127.0.0.65").await, Gateway::http("127.0.0.66").await);
    db_b.set(Mode::Status(503));
    let member = |name: &str, region: &str, g: &Gateway, ip: &str| {
        format!(
            "[clusters.main.members.{name}]\nregion = \"{region}\"\nkind = \"http_role\"\n\
             url = \"http://{}/primary\"\nsource = \"@SRC@\"\na = [\"{ip}\"]\n",
            g.addr
        )
    };
    let extra = format!(
        "{}{}[names.db]\npolicy = \"writer\"\n",
        member("pg-a", "us-east", &db_a, "10.0.1.1"),
        member("pg-b", "eu-west", &db_b, "10.0.2.1")
    );
    let servers = start_three(&nats, "promotion", &us, &eu, &extra).await;
    until_three_vantages(&servers).await;
    until_all(&servers, Duration::from_secs(5), "pg-a writer", |i| {
        let s = &servers[i];
        async move { answer(s, "db").await == "10.0.1.1" }
    })
    .await;

    // Only ns1 reaches pg-b; pg-a steps down and pg-b takes over.
    db_b.refuse(&[&source(2), &source(3)]);
    db_a.set(Mode::Status(503));
    db_b.set(Mode::Healthy);
    let took = until_all(&servers, Duration::from_secs(5), "pg-b writer", |i| {
        let s = &servers[i];
        async move { answer(s, "db").await == "10.0.2.1" }
    })
    .await;
    eprintln!("fleet: a promotion only ns1 sees: every instance answers the new writer {took:?} after it");
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test]
async fn without_nats_every_instance_keeps_answering_then_decides_alone_and_converges_again() {
    let mut nats = Nats::start();
    let (us, eu) = (Gateway::http("127.0.0.67").await, Gateway::http("127.0.0.68").await);
    let servers = start_three(&nats, "partition", &us, &eu, "").await;
    until_three_vantages(&servers).await;
    // ns1 alone sees us-east down: shared, no one moves.
    us.refuse(&[&source(1)]);
    until_all(&servers, Duration::from_secs(5), "ns1's down vote shared", |i| {
        let s = &servers[i];
        async move { seen_on(s, "ns1", "us-east").await == Some(0.0) }
    })
    .await;

    nats.stop();
    let stopped = Instant::now();
    // Within shared_grace (2 s) every instance holds the shared verdict.
    until_all(&servers, Duration::from_secs(5), "disconnected", |i| {
        let s = &servers[i];
        async move { metric(s, "switchyard_fleet_connected").await == Some(0.0) }
    })
    .await;
    if stopped.elapsed() < Duration::from_millis(1500) {
        for s in &servers {
            assert_eq!(answer(s, "app").await, "192.0.2.1", "held: the last shared verdict");
        }
    }
    // Then each on its own view: ns1 fails over, the others stay.
    let alone = until_all(&servers, Duration::from_secs(10), "deciding alone", |i| {
        let s = &servers[i];
        async move { answer(s, "app").await == if i == 0 { "192.0.2.2" } else { "192.0.2.1" } }
    })
    .await;
    eprintln!("fleet: NATS stopped: ns1 on its own view {alone:?} later (shared_grace 2 s)");
    assert!(stopped.elapsed() >= Duration::from_secs(2), "the shared verdict was held for shared_grace");

    // NATS is back: they converge without a restart.
    nats.restart();
    let took = until_all(&servers, Duration::from_secs(15), "converged", |i| {
        let s = &servers[i];
        async move { answer(s, "app").await == "192.0.2.1" }
    })
    .await;
    eprintln!("fleet: NATS back: every instance on the shared verdict {took:?} later");
    for s in servers {
        s.stop().await;
    }
}

async fn drain(s: &TestServer, region: &str, reason: &str) -> (u16, String) {
    let url = format!("http://{}/regions/{region}/drain?by=alice&reason={reason}&notice=0", s.admin);
    let r = reqwest::Client::new().post(url).bearer_auth(crate::support::ADMIN_TOKEN).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_drain_sent_to_one_instance_applies_to_all_and_outlives_a_restart_of_all() {
    let nats = Nats::start();
    let (us, eu) = (Gateway::http("127.0.0.69").await, Gateway::http("127.0.0.70").await);
    let servers = start_three(&nats, "drains", &us, &eu, "").await;
    until_three_vantages(&servers).await;
    assert_eq!(drain(&servers[1], "us-east", "upgrade").await.0, 200);
    until_all(&servers, Duration::from_secs(5), "drained everywhere", |i| {
        let s = &servers[i];
        async move { answer(s, "app").await == "192.0.2.2" }
    })
    .await;
    // Who, when and why travel with it.
    let text = reqwest::get(format!("http://{}/status", servers[2].admin)).await.unwrap().text().await.unwrap();
    assert!(text.contains("region us-east drained by alice: upgrade (shared)"), "{text}");
    for s in servers {
        s.stop().await;
    }

    // All three restart: the bucket still holds the drain.
    let servers = start_three(&nats, "drains", &us, &eu, "").await;
    until_all(&servers, Duration::from_secs(10), "still drained after a restart", |i| {
        let s = &servers[i];
        async move { s.state.snapshot().health.drained[0] && answer(s, "app").await == "192.0.2.2" }
    })
    .await;
    // A planned change through the fleet: eu-west drains with a 2 s notice, sent to one
    // instance. Every instance shortens its TTLs during the notice and drains at its
    // end: the times travel with the drain.
    let url = format!("http://{}/regions/eu-west/drain?by=alice&notice=2s", servers[2].admin);
    // Timed from before the request: the notice runs from when the server took it.
    let asked = Instant::now();
    let r = reqwest::Client::new().post(url).bearer_auth(crate::support::ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    until_all(&servers, Duration::from_secs(5), "the notice everywhere", |i| {
        let s = &servers[i];
        async move {
            let h = s.state.snapshot().health.clone();
            let ttl = crate::support::dns::ttls(&udp(s.addr, &query("app.gslb.example.org.", RecordType::A)).await);
            (h.noticed[1] && !h.drained[1] && ttl == vec![5]) || asked.elapsed() >= Duration::from_secs(2)
        }
    })
    .await;
    assert!(asked.elapsed() < Duration::from_secs(2), "the notice was not seen on every instance within it");
    until_all(&servers, Duration::from_secs(10), "drained at the notice's end", |i| {
        let s = &servers[i];
        async move { s.state.snapshot().health.drained[1] }
    })
    .await;
    assert!(asked.elapsed() >= Duration::from_secs(2), "drained before the notice ended");
    // Without NATS, a drain is refused rather than applied here alone and lost.
    drop(nats);
    until_all(&servers, Duration::from_secs(5), "disconnected", |i| {
        let s = &servers[i];
        async move { metric(s, "switchyard_fleet_connected").await == Some(0.0) }
    })
    .await;
    let url = format!("http://{}/regions/eu-west/undrain?by=alice", servers[0].admin);
    let r = reqwest::Client::new().post(url).bearer_auth(crate::support::ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(servers[0].state.snapshot().health.drained[1], "refused: nothing changed here");
    for s in servers {
        s.stop().await;
    }
}
