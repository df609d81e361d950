//! The failover record and telling the application: a writer change reaches a webhook
//! that was down, then slower than its timeout, then up, exactly once and signed, while
//! DNS answers throughout; it also goes out on a NATS subject with a fleet; the record
//! outlives a restart and shows on the status page.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::dns::{first, query, udp};
use crate::support::gateway::{Gateway, Mode as GatewayMode};
use crate::support::nats::Nats;
use crate::support::receiver::{Mode, Receiver, signed};
use crate::support::{TestServer, ZONE};

const SECRET: &str = "hook-secret-3b1f";

/// A writer name over two `http_role` members (what Patroni's REST API answers): 200 on
/// the primary URL is primary, a 503 a replica.
fn config(a: &Gateway, b: &Gateway, notify: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[health]
interval = "200ms"
timeout = "150ms"
jitter = 0
rise = 1
fall = 1
hold_down = "1s"
{ZONE}
[regions.us-east]
a = ["192.0.2.1"]
[regions.eu-west]
a = ["192.0.2.2"]
[clusters.main.members.pg-a]
region = "us-east"
kind = "http_role"
url = "http://{}/primary"
a = ["10.1.0.1"]
[clusters.main.members.pg-b]
region = "eu-west"
kind = "http_role"
url = "http://{}/primary"
a = ["10.1.0.2"]
[names.db]
policy = "writer"
ttl = 30
{notify}
"#,
        a.addr, b.addr
    )
}

async fn until_writer(s: &TestServer, want: &str) {
    let start = Instant::now();
    while first(&udp(s.addr, &query("db.gslb.example.org.", RecordType::A)).await) != want {
        assert!(start.elapsed() < Duration::from_secs(10), "the writer never became {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Promotes pg-b the way a switchover does: pg-b reports primary, and once switchyard
/// has seen both (equal timelines keep the current writer), pg-a steps down: the change
/// is one step, pg-a → pg-b.
async fn switch_over(s: &TestServer, a: &Gateway, b: &Gateway) {
    b.set(GatewayMode::Healthy);
    let start = Instant::now();
    loop {
        let status: Value = serde_json::from_str(
            &reqwest::get(format!("http://{}/status", s.admin)).await.unwrap().text().await.unwrap(),
        )
        .unwrap();
        if status["clusters"][0]["primaries"].as_array().is_some_and(|p| p.len() == 2) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "pg-b never seen as primary");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.set(GatewayMode::Status(503));
}

async fn metric(s: &TestServer, series: &str) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", s.admin)).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{series} "))?.parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn a_writer_change_reaches_a_webhook_once_signed_through_an_outage_while_dns_answers() {
    let (a, b) = (Gateway::http("127.0.0.91").await, Gateway::http("127.0.0.92").await);
    b.set(GatewayMode::Status(503));
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("hook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut r = Receiver::down();
    let notify = format!(
        "[notify]\nbackoff = \"100ms\"\nwebhooks = [{{ url = \"{}\", secret_file = \"{}\", timeout = \"300ms\" }}]\n",
        r.url(),
        secret.display()
    );
    let s = TestServer::start(&config(&a, &b, &notify)).await;
    until_writer(&s, "10.1.0.1").await;

    // DNS all the while, on its own task.
    let stop = tokio_util::sync::CancellationToken::new();
    let looper = {
        let (stop, addr) = (stop.clone(), s.addr);
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.is_cancelled() {
                let m = udp(addr, &query("db.gslb.example.org.", RecordType::A)).await;
                answers.push((m.metadata.response_code, first(&m)));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answers
        })
    };

    switch_over(&s, &a, &b).await;
    until_writer(&s, "10.1.0.2").await;
    // The receiver is down: attempts are refused and retried.
    let start = Instant::now();
    while metric(&s, "switchyard_notifications_total{result=\"failed_attempt\"}").await < 2.0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no retries while the receiver is down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(r.seen().is_empty());
    // Slower than the 300 ms timeout, then up.
    r.listen(Mode::Slow(Duration::from_secs(1)));
    r.until("an attempt while slow", |s| !s.is_empty()).await;
    r.set(Mode::Up);
    r.until("a 2xx", |s| s.iter().any(|s| s.answered == Some(200))).await;
    stop.cancel();
    let answers = looper.await.unwrap();

    let seen = r.seen();
    assert_eq!(seen.iter().filter(|s| s.answered == Some(200)).count(), 1, "delivered once: {seen:#?}");
    let id = seen[0].header("x-switchyard-event-id").to_owned();
    for s in &seen {
        assert_eq!(s.header("x-switchyard-event-id"), id, "one event, one id");
        assert_eq!(s.header("x-switchyard-event"), "writer.changed");
        assert!(signed(s, SECRET), "signed with the configured secret: {s:#?}");
    }
    let body: Value = serde_json::from_slice(&seen.iter().find(|s| s.answered == Some(200)).unwrap().body).unwrap();
    assert_eq!((body["kind"].as_str(), body["cluster"].as_str()), (Some("writer_changed"), Some("main")));
    assert_eq!((body["from"].as_str(), body["to"].as_str()), (Some("pg-a"), Some("pg-b")));
    assert_eq!(body["id"].as_str(), Some(id.as_str()));
    // It is the record's event.
    let record: Value =
        serde_json::from_str(&reqwest::get(format!("http://{}/events", s.admin)).await.unwrap().text().await.unwrap())
            .unwrap();
    assert!(record["events"].as_array().unwrap().iter().any(|e| e["id"] == id.as_str()));
    assert_eq!(metric(&s, "switchyard_notifications_total{result=\"delivered\"}").await, 1.0);

    // DNS answered every query, with the old writer and then the new one, never anything else.
    assert!(answers.len() > 20, "{} queries", answers.len());
    for (rcode, ip) in &answers {
        assert_eq!(*rcode, ResponseCode::NoError);
        assert!(ip == "10.1.0.1" || ip == "10.1.0.2", "{ip}");
    }
    s.stop().await;
}

/// Two instances see the same writer change; one of them (the first by name) publishes
/// it on the NATS subject, so the application hears it once.
#[tokio::test]
async fn with_a_fleet_a_writer_change_goes_out_on_a_nats_subject_once() {
    let nats = Nats::start();
    let (a, b) = (Gateway::http("127.0.0.95").await, Gateway::http("127.0.0.96").await);
    b.set(GatewayMode::Status(503));
    let notify = |name: &str| {
        format!(
            "[fleet]\nname = \"{name}\"\nservers = [\"{}\"]\nbucket = \"events\"\n[notify]\nnats_subject = \"switchyard.writer\"\n",
            nats.url()
        )
    };
    let servers = [
        TestServer::start(&config(&a, &b, &notify("ns1"))).await,
        TestServer::start(&config(&a, &b, &notify("ns2"))).await,
    ];
    for s in &servers {
        until_writer(s, "10.1.0.1").await;
    }
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = client.subscribe("switchyard.writer").await.unwrap();
    client.flush().await.unwrap();
    // Both decide with both: each knows which of them tells.
    let start = Instant::now();
    for s in &servers {
        while metric(s, "switchyard_fleet_vantages").await != 2.0 {
            assert!(start.elapsed() < Duration::from_secs(10), "the instances never saw each other");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    switch_over(&servers[0], &a, &b).await;
    let message = tokio::time::timeout(Duration::from_secs(10), futures_util::StreamExt::next(&mut sub))
        .await
        .expect("a message on switchyard.writer within 10 s")
        .unwrap();
    let body: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["from"].as_str(), body["to"].as_str()),
        (Some("writer_changed"), Some("pg-a"), Some("pg-b"))
    );
    // Both recorded it; only one told.
    for s in &servers {
        let start = Instant::now();
        loop {
            let text = reqwest::get(format!("http://{}/events", s.admin)).await.unwrap().text().await.unwrap();
            if text.contains("writer_changed") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{} has no writer change: {text}", s.admin);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    client.flush().await.unwrap();
    let second = tokio::time::timeout(Duration::from_millis(500), futures_util::StreamExt::next(&mut sub)).await;
    assert!(second.is_err(), "a second message: {second:?}");
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test]
async fn the_record_outlives_a_restart_and_shows_on_the_status_page() {
    let gw = Gateway::http("127.0.0.97").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[health]
interval = "200ms"
timeout = "150ms"
jitter = 0
rise = 1
fall = 2
hold_down = "1s"
state_file = "{}"
{ZONE}
[regions.us-east]
a = ["192.0.2.1"]
[[regions.us-east.checks]]
kind = "http"
url = "http://{}/healthz"
[regions.eu-west]
a = ["192.0.2.2"]
[names.app]
policy = "failover"
"#,
        state.display(),
        gw.addr
    );
    let s = TestServer::start(&config).await;
    let app = || async { first(&udp(s.addr, &query("app.gslb.example.org.", RecordType::A)).await) };
    gw.stop();
    let start = Instant::now();
    // Querying is what fills in the first changed answer.
    while app().await != "192.0.2.2" {
        assert!(start.elapsed() < Duration::from_secs(10), "us-east never went down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events_file = dir.path().join("state.events.json");
    let down = loop {
        let text = std::fs::read_to_string(&events_file).unwrap_or_default();
        let kept: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let down = kept.as_array().into_iter().flatten().find(|e| e["kind"] == "region_down").cloned();
        if let Some(d) = down.filter(|d| d["timeline"]["first_answer_changed"].is_number()) {
            break d;
        }
        // Traffic goes on, as it would: the record counts the first answer after it.
        app().await;
        assert!(start.elapsed() < Duration::from_secs(10), "the event never reached {}: {text}", events_file.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let page = reqwest::get(format!("http://{}/", s.admin)).await.unwrap().text().await.unwrap();
    assert!(page.contains("Failover record") && page.contains("region us-east down"), "{page}");
    s.stop().await;

    let s = TestServer::start(&config).await;
    let record: Value = serde_json::from_str(
        &reqwest::get(format!("http://{}/events?since=1h", s.admin)).await.unwrap().text().await.unwrap(),
    )
    .unwrap();
    assert!(record["events"].as_array().unwrap().contains(&down), "kept across the restart: {record}");
    let bad = reqwest::get(format!("http://{}/events?since=yesterday", s.admin)).await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    s.stop().await;
}
