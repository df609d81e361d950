//! The `writer` and `reader` names against real PostgreSQL: a primary and streaming
//! standbys that the tests promote, kill and split.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::dns::{first, query, ttls, udp, until_answer};
use crate::support::postgres::Pg;
use crate::support::{TestServer, ZONE};

const US: &str = "192.0.2.1";
const EU: &str = "192.0.2.2";
const AP: &str = "192.0.2.3";

/// Regions us-east/eu-west/ap-southeast with database members at the given DSNs.
fn config(dsns: [&str; 3], extra_health: &str) -> String {
    let region = |name: &str, ip: &str, dsn: &str| {
        format!("[regions.{name}]\na = [\"{ip}\"]\n[regions.{name}.database]\nkind = \"postgres\"\ndsn = \"{dsn}\"\n")
    };
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[health]
interval = "250ms"
timeout = "2s"
jitter = 0
rise = 1
fall = 2
writer_grace = "2s"
hold_down = "3s"
{extra_health}

[defaults]
ttl = 60
failover_ttl = 5

{ZONE}

{}
{}
{}
[names.writer]
policy = "writer"
when_all_down = "servfail"

[names.read]
policy = "reader"
order = "latency"
max_lag = "5s"

[latency]
"default" = {{ us-east = 10, eu-west = 20, ap-southeast = 30 }}
"#,
        region("us-east", US, dsns[0]),
        region("eu-west", EU, dsns[1]),
        region("ap-southeast", AP, dsns[2]),
    )
    .replace("timeout = \"2s\"", "timeout = \"250ms\"")
}

async fn ask(s: &TestServer, name: &str) -> hickory_proto::op::Message {
    udp(s.addr, &query(&format!("{name}.gslb.example.org."), RecordType::A)).await
}

async fn until(s: &TestServer, name: &str, want: &str, within: Duration) -> Duration {
    until_answer(s.addr, &format!("{name}.gslb.example.org."), want, within).await
}

#[tokio::test]
async fn writer_follows_a_promoted_standby() {
    let mut primary = Pg::primary();
    let standby = Pg::standby_of(&primary);
    let closed = "host=127.0.0.1 port=1 user=postgres connect_timeout=1";
    let s = TestServer::start(&config([&primary.dsn(), &standby.dsn(), closed], "")).await;
    until(&s, "writer", US, Duration::from_secs(10)).await;
    // Reads go to the lowest-latency readable region: us-east (primary, lag 0).
    until(&s, "read", US, Duration::from_secs(5)).await;

    primary.kill();
    // The old writer is kept on grace, with the short TTL.
    let r = ask(&s, "writer").await;
    assert!(first(&r) == US, "never a replica while no primary is known");
    standby.promote();
    let promoted = Instant::now();
    let took = until(&s, "writer", EU, Duration::from_secs(10)).await;
    assert!(took <= Duration::from_millis(2 * 250 + 300), "writer flipped {took:?} after the promotion");
    assert_eq!(ttls(&ask(&s, "writer").await), vec![5], "a writer change uses failover_ttl");
    let _ = promoted;
    // us-east's database is gone: reads move to eu-west.
    until(&s, "read", EU, Duration::from_secs(5)).await;
    s.stop().await;
}

#[tokio::test]
async fn split_brain_the_higher_timeline_wins_and_the_alarm_is_raised() {
    let primary = Pg::primary();
    let standby = Pg::standby_of(&primary);
    let closed = "host=127.0.0.1 port=1 user=postgres connect_timeout=1";
    let s = TestServer::start(&config([&primary.dsn(), &standby.dsn(), closed], "")).await;
    until(&s, "writer", US, Duration::from_secs(10)).await;
    // Promote while the old primary still runs: two primaries.
    standby.promote();
    until(&s, "writer", EU, Duration::from_secs(10)).await;
    let snap = s.state.snapshot();
    let (cluster, view) = (&snap.model.clusters[0], &snap.health.clusters[0]);
    let names: Vec<&str> = view.primaries.iter().map(|&p| cluster.members[p as usize].name.as_str()).collect();
    assert_eq!(names, ["us-east", "eu-west"], "both report primary: split brain is visible");
    assert!(view.writer_unsettled);
    // It stays with the promoted one (timeline 2 beats 1) while both run.
    for _ in 0..10 {
        assert_eq!(first(&ask(&s, "writer").await), EU);
        assert_eq!(ttls(&ask(&s, "writer").await), vec![5], "split brain answers with failover_ttl");
    }
    s.stop().await;
}

#[tokio::test]
async fn no_primary_keeps_the_writer_for_the_grace_then_applies_when_all_down() {
    let mut primary = Pg::primary();
    let mut standby = Pg::standby_of(&primary);
    let closed = "host=127.0.0.1 port=1 user=postgres connect_timeout=1";
    let s = TestServer::start(&config([&primary.dsn(), &standby.dsn(), closed], "")).await;
    until(&s, "writer", US, Duration::from_secs(10)).await;
    standby.kill();
    primary.kill();
    let gone = Instant::now();
    // While within writer_grace (2 s) the last writer is kept, with the short TTL.
    let r = ask(&s, "writer").await;
    assert_eq!(first(&r), US);
    let start = Instant::now();
    loop {
        let r = ask(&s, "writer").await;
        if r.metadata.response_code == ResponseCode::ServFail {
            break;
        }
        assert_eq!(first(&r), US, "kept on grace, never another region");
        assert!(start.elapsed() < Duration::from_secs(10), "no SERVFAIL 10 s after the grace");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = gone.elapsed();
    // fall (2) × interval to see the member down, then the 2 s grace.
    assert!(took >= Duration::from_secs(2), "the grace was honoured: {took:?}");
    // Reads have no fresh member and no writer to fall back to: SERVFAIL, never a
    // replica nobody can vouch for.
    let r = ask(&s, "read").await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    s.stop().await;
}

/// Patroni-style members: `/primary` answers 200 on the primary, 503 elsewhere.
#[tokio::test]
async fn http_role_members_follow_a_switchover() {
    use crate::support::gateway::{Gateway, Mode};
    let a = Gateway::http("127.0.0.31").await;
    let b = Gateway::http("127.0.0.32").await;
    b.set(Mode::Status(503));
    let member = |g: &Gateway| format!("kind = \"http_role\"\nurl = \"http://{}/primary\"", g.addr);
    let text = config(["x", "y", "z"], "")
        .replacen("kind = \"postgres\"\ndsn = \"x\"", &member(&a), 1)
        .replacen("kind = \"postgres\"\ndsn = \"y\"", &member(&b), 1)
        .replacen("[regions.ap-southeast.database]\nkind = \"postgres\"\ndsn = \"z\"\n", "", 1);
    let s = TestServer::start(&text).await;
    until(&s, "writer", US, Duration::from_secs(5)).await;
    // Switchover: a steps down, b takes over.
    a.set(Mode::Status(503));
    b.set(Mode::Healthy);
    until(&s, "writer", EU, Duration::from_secs(5)).await;
    s.stop().await;
}
