//! The DR drill SREs rehearse, as one test: three regions (us-east writer, eu-west and
//! ap-southeast standbys), each with a gateway and a database member. us-east dies
//! (gateway and primary), eu-west is promoted; the test queries over UDP all the while.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::support::dns::{first, query, ttls, udp};
use crate::support::gateway::Gateway;
use crate::support::postgres::Pg;
use crate::support::{TestServer, ZONE};

const INTERVAL_MS: u64 = 500;
const FALL: u64 = 2;
const FAILOVER_TTL: u32 = 5;

#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    /// The same moment in Unix seconds, to compare with the failover record.
    wall: f64,
    app: String,
    app_ttl: Vec<u32>,
    writer: String,
    writer_ttl: Vec<u32>,
}

#[tokio::test]
async fn dr_drill_kill_us_east_promote_eu_west() {
    let mut primary = Pg::primary();
    let eu_db = Pg::standby_of(&primary);
    let ap_db = Pg::standby_of(&primary);
    let gw = [Gateway::http("127.0.0.21").await, Gateway::http("127.0.0.22").await, Gateway::http("127.0.0.23").await];
    let region = |name: &str, ip: &str, g: &Gateway, db: &Pg| {
        format!(
            "[regions.{name}]\na = [\"{ip}\"]\n[[regions.{name}.checks]]\nkind = \"http\"\nurl = \"http://{}/healthz\"\n\
             [regions.{name}.database]\nkind = \"postgres\"\ndsn = \"{}\"\n",
            g.addr,
            db.dsn()
        )
    };
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[health]
interval = "{INTERVAL_MS}ms"
timeout = "250ms"
jitter = 0
rise = 2
fall = {FALL}
writer_grace = "10s"
hold_down = "5s"
[defaults]
ttl = 60
failover_ttl = {FAILOVER_TTL}
{ZONE}
{}{}{}
[names.app]
policy = "latency"
[names.writer]
policy = "writer"
[latency]
"default" = {{ us-east = 10, eu-west = 20, ap-southeast = 30 }}
"#,
        region("us-east", "192.0.2.1", &gw[0], &primary),
        region("eu-west", "192.0.2.2", &gw[1], &eu_db),
        region("ap-southeast", "192.0.2.3", &gw[2], &ap_db),
    );
    let s = TestServer::start(&config).await;
    let start = Instant::now();
    loop {
        let (a, w) = (
            udp(s.addr, &query("app.gslb.example.org.", RecordType::A)).await,
            udp(s.addr, &query("writer.gslb.example.org.", RecordType::A)).await,
        );
        if first(&a) == "192.0.2.1" && first(&w) == "192.0.2.1" && ttls(&w) == vec![60] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "steady state not reached: app {} writer {}",
            first(&a),
            first(&w)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Query over UDP all the while.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let looper = {
        let (samples, stop, addr) = (samples.clone(), stop.clone(), s.addr);
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let a = udp(addr, &query("app.gslb.example.org.", RecordType::A)).await;
                let w = udp(addr, &query("writer.gslb.example.org.", RecordType::A)).await;
                samples.lock().unwrap().push(Sample {
                    at: Instant::now(),
                    wall: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64(),
                    app: first(&a),
                    app_ttl: ttls(&a),
                    writer: first(&w),
                    writer_ttl: ttls(&w),
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Kill us-east: its gateway and its primary.
    gw[0].stop();
    primary.kill();
    let killed = Instant::now();
    // Promote eu-west (what an operator or Patroni does; switchyard never promotes).
    let promote_started = Instant::now();
    eu_db.promote();
    let promoted = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = {
            let v = samples.lock().unwrap();
            let writer_at = v.iter().find(|x| x.writer == "192.0.2.2").map(|x| x.at);
            let app_at = v.iter().find(|x| x.at > killed && x.app != "192.0.2.1").map(|x| x.at);
            matches!((writer_at, app_at), (Some(w), Some(a)) if v.last().unwrap().at > w.max(a) + Duration::from_secs(1))
        };
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the drill did not settle within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    looper.await.unwrap();
    let v = samples.lock().unwrap().clone();

    let app_moved = v.iter().find(|x| x.at > killed && x.app != "192.0.2.1").unwrap().at;
    let writer_moved = v.iter().find(|x| x.writer == "192.0.2.2").unwrap().at;
    let app_took = app_moved - killed;
    let writer_took = writer_moved.saturating_duration_since(promoted);
    eprintln!(
        "DR drill: {} queries; app left us-east {:?} after the kill (bound {:?}); promotion took {:?}; \
         writer on eu-west {:?} after the promotion (bound {:?})",
        v.len() * 2,
        app_took,
        Duration::from_millis(FALL * INTERVAL_MS + INTERVAL_MS),
        promoted - promote_started,
        writer_took,
        Duration::from_millis(2 * INTERVAL_MS)
    );
    assert!(app_took <= Duration::from_millis(FALL * INTERVAL_MS + INTERVAL_MS), "app took {app_took:?}");
    assert!(writer_took <= Duration::from_millis(2 * INTERVAL_MS), "writer took {writer_took:?}");
    for x in &v {
        assert!(
            x.writer == "192.0.2.1" || x.writer == "192.0.2.2",
            "writer answer {} at {:?}",
            x.writer,
            x.at - killed
        );
        if x.writer == "192.0.2.2" {
            assert!(x.at >= promote_started, "eu-west named writer before its promotion began");
        }
    }
    // Every answer in the transition carries failover_ttl: for each name, from its first
    // answer that differs from the steady state to the end of the drill.
    let steady = |ans: &str, ttl: &[u32]| ans == "192.0.2.1" && ttl == [60];
    let app_from = v.iter().position(|x| !steady(&x.app, &x.app_ttl)).unwrap();
    let writer_from = v.iter().position(|x| !steady(&x.writer, &x.writer_ttl)).unwrap();
    for x in &v[app_from..] {
        assert_eq!(x.app_ttl, vec![FAILOVER_TTL], "app answer {} during the transition", x.app);
    }
    for x in &v[writer_from..] {
        assert_eq!(x.writer_ttl, vec![FAILOVER_TTL], "writer answer {} during the transition", x.writer);
    }

    // The RPO seen: eu-west's last lag as a replica before it became the writer, on the
    // metrics and in the status page's log, for the postmortem.
    let metrics = reqwest::get(format!("http://{}/metrics", s.admin)).await.unwrap().text().await.unwrap();
    let rpo: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchyard_writer_change_lag_seconds{cluster=\"default\"} "))
        .expect("the writer change's lag is exported")
        .parse()
        .unwrap();
    let text = reqwest::get(format!("http://{}/status", s.admin)).await.unwrap().text().await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let event = status["recent_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"].as_str())
        .find(|w| w.contains("writer us-east → eu-west"))
        .expect("the writer change is on the status page")
        .to_owned();
    eprintln!("DR drill: RPO seen {rpo:.2} s ({event})");
    // The primary was killed before the promotion: eu-west lost its stream then, and
    // its lag grew from its last message until it was promoted.
    assert!(rpo.is_finite() && rpo >= 0.0, "a number, seen as a replica: {rpo}");
    assert!(event.contains("its last lag as a replica: "), "{event}");

    // The failover record: one event for us-east going down, one for the writer change,
    // every field of each timeline filled, in order.
    let text = reqwest::get(format!("http://{}/events", s.admin)).await.unwrap().text().await.unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    let all = record["events"].as_array().unwrap();
    let of = |kind: &str| all.iter().filter(|e| e["kind"] == kind).collect::<Vec<_>>();
    let down = of("region_down");
    assert_eq!(down.len(), 1, "one region down: {text}");
    let down = down[0];
    assert_eq!(down["region"], "us-east");
    let t = |e: &serde_json::Value, field: &str| {
        e["timeline"][field].as_f64().unwrap_or_else(|| panic!("{field} not filled in {e}"))
    };
    let (failed, verdict, answered, settled) =
        (t(down, "first_failed_probe"), t(down, "verdict"), t(down, "first_answer_changed"), t(down, "hold_down_end"));
    assert!(failed <= verdict && verdict <= answered && answered < settled, "{down}");
    // The record's first changed answer is the drill's own first answer that left
    // us-east (it was the only traffic), read off the counters within a poll.
    let seen = v.iter().find(|x| x.at > killed && x.app != "192.0.2.1").unwrap().wall;
    assert!(answered <= seen + 0.15, "first changed answer {answered} vs the drill's {seen}: {down}");
    assert!((settled - verdict - 5.0).abs() < 0.01, "the hold-down is 5 s: {down}");
    let detection = down["detection_seconds"].as_f64().expect("detection");
    // fall (2) failed probes, 500 ms apart, each bounded by a 250 ms timeout.
    assert!(detection <= (FALL * INTERVAL_MS + 250) as f64 / 1000.0 + 0.05, "detection {detection}: {down}");
    assert!(!down["reasons"].as_array().unwrap().is_empty());
    let writer = of("writer_changed");
    assert_eq!(writer.len(), 1, "one writer change: {text}");
    let w = writer[0];
    assert_eq!(
        (w["cluster"].as_str(), w["from"].as_str(), w["to"].as_str()),
        (Some("default"), Some("us-east"), Some("eu-west"))
    );
    assert_eq!(w["promotion"], true);
    let (last_primary, promotion, verdict, answered) =
        (t(w, "last_seen_primary"), t(w, "promotion_seen"), t(w, "verdict"), t(w, "first_answer_changed"));
    assert!(last_primary <= promotion && promotion <= verdict && verdict <= answered, "{w}");
    let seen = v.iter().find(|x| x.writer == "192.0.2.2").unwrap().wall;
    assert!(answered <= seen + 0.15, "first answer naming the new writer {answered} vs the drill's {seen}: {w}");
    assert!(t(w, "hold_down_end") > verdict);
    let lag = w["promoted_lag_seconds"].as_f64().expect("the RPO");
    assert!((lag - rpo).abs() < 0.01, "the record's RPO {lag} is the metric's {rpo}");
    let gap = w["without_writer_seconds"].as_f64().expect("the writer gap");
    assert!((gap - (promotion - last_primary)).abs() < 0.01 && gap > 0.0, "{w}");
    // The histograms saw them.
    let metrics = reqwest::get(format!("http://{}/metrics", s.admin)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchyard_failover_detection_seconds_count 1"), "{metrics}");
    assert!(metrics.contains("switchyard_writer_gap_seconds_count{cluster=\"default\"} 1"), "{metrics}");

    // And the postmortem's command prints them.
    let out = tokio::process::Command::new(crate::support::bin())
        .args(["events", "--since", "1h", "--admin", &s.admin.to_string()])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("region us-east down"), "{printed}");
    assert!(printed.contains("cluster default: writer us-east → eu-west ("), "{printed}");
    assert!(printed.contains("promoted member's lag"), "{printed}");
    eprintln!("DR drill, the record:\n{printed}");
    s.stop().await;
}
