//! The admin HTTP API: every endpoint, the bearer token, drains seen in DNS answers,
//! and a real `promtool` on the metrics.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::dns::{ecs, first, ttls, udp};
use crate::support::{ADMIN_TOKEN, POLICIES, TestServer};

fn with_token(config: &str) -> String {
    format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin-token\"\n{config}")
}

async fn get(s: &TestServer, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{}{path}", s.admin)).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(s: &TestServer, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().post(format!("http://{}{path}", s.admin));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn health_ready_status_and_the_page() {
    let s = TestServer::start(&with_token(POLICIES)).await;
    assert_eq!(get(&s, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get(&s, "/readyz").await.0, 200, "no checks: ready at once");
    let (code, body) = get(&s, "/status").await;
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["zone"], "gslb.example.org.");
    assert_eq!(v["config"]["generation"], 1);
    assert_eq!(v["geoip"]["type"], "GeoIP2-City");
    let names: Vec<&str> = v["regions"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["us-east", "eu-west", "ap-southeast", "cdn"]);
    let (code, html) = get(&s, "/").await;
    assert_eq!(code, 200);
    for want in ["switchyard — gslb.example.org.", "us-east", "ap-southeast", "Database clusters", "Recent changes"] {
        assert!(html.contains(want), "the page shows {want}");
    }
    s.stop().await;
}

#[tokio::test]
async fn explain_over_http() {
    let s = TestServer::start(&with_token(POLICIES)).await;
    s.set_up("eu-west", false);
    let (code, body) = get(&s, "/explain?name=app&client=192.0.2.0/25").await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("1. eu-west") && body.contains("down: skipped") && body.contains("A 192.0.2.1 (us-east)"),
        "{body}"
    );
    assert_eq!(get(&s, "/explain?name=nope&client=192.0.2.1").await.0, 404);
    assert_eq!(get(&s, "/explain?name=app&client=banana").await.0, 400);
    s.stop().await;
}

#[tokio::test]
async fn drain_needs_the_token_and_moves_answers() {
    let s = TestServer::start(&with_token(POLICIES)).await;
    let gb = || async { first(&udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, "192.0.2.0/25")).await) };
    assert_eq!(gb().await, "192.0.2.2");
    assert_eq!(post(&s, "/regions/eu-west/drain", None).await.0, 401, "no token");
    assert_eq!(post(&s, "/regions/eu-west/drain", Some("wrong-token")).await.0, 401, "wrong token");
    assert_eq!(
        post(&s, "/regions/eu-west/drain", Some(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])).await.0,
        401,
        "a prefix"
    );
    assert_eq!(gb().await, "192.0.2.2", "refused requests change nothing");
    let (code, body) = post(&s, "/regions/eu-west/drain?notice=0", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(gb().await, "192.0.2.1", "drained: eu-west leaves the answers");
    let v: Value = serde_json::from_str(&get(&s, "/status").await.1).unwrap();
    assert_eq!(v["regions"][1]["drained"], true);
    assert!(v["recent_changes"][0]["what"].as_str().unwrap().contains("eu-west drained"));
    assert!(get(&s, "/metrics").await.1.contains("switchyard_region_drained{region=\"eu-west\"} 1"));
    assert_eq!(post(&s, "/regions/eu-west/undrain", Some(ADMIN_TOKEN)).await.0, 200);
    assert_eq!(gb().await, "192.0.2.2", "undrained: back");
    assert_eq!(post(&s, "/regions/mars/drain", Some(ADMIN_TOKEN)).await.0, 404);
    s.stop().await;
}

/// A planned change: during the notice the region still answers, with the short TTL;
/// at its end the answer moves; after the undrain the region is back with the short TTL
/// for the hold-down, then the normal one.
#[tokio::test]
async fn a_drain_with_notice_shortens_ttls_first_and_moves_answers_at_its_end() {
    let config = with_token(POLICIES).replace("[zone]", "[health]\nhold_down = \"2s\"\n\n[zone]");
    let s = TestServer::start(&config).await;
    let gb = || async {
        let r = udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, "192.0.2.0/25")).await;
        (first(&r), ttls(&r)[0])
    };
    assert_eq!(gb().await, ("192.0.2.2".to_owned(), 60));
    let asked = Instant::now();
    let (code, body) = post(&s, "/regions/eu-west/drain?notice=3s&by=carol", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("eu-west drains in 3s"), "{body}");
    let v: Value = serde_json::from_str(&get(&s, "/status").await.1).unwrap();
    assert_eq!(v["regions"][1]["short_ttl_by_operator"], true);
    assert_eq!(v["regions"][1]["drained"], false, "not yet");
    assert_eq!(v["regions"][1]["operator"]["by"], "carol");
    // Until the notice ends: still eu-west, with failover_ttl; then us-east.
    let mut during = 0;
    let moved = loop {
        let (ip, ttl) = gb().await;
        if ip == "192.0.2.1" {
            break ttl;
        }
        assert_eq!((ip.as_str(), ttl), ("192.0.2.2", 10), "during the notice");
        during += 1;
        assert!(asked.elapsed() < Duration::from_secs(20), "the drain never took effect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(asked.elapsed() >= Duration::from_secs(3), "moved before the notice ended: {:?}", asked.elapsed());
    assert!(during > 0);
    assert_eq!(moved, 10, "a fallback answer has the short TTL");
    // Undrain: back at once, with the short TTL for the 2 s hold-down, then 60.
    // Timed from before the request: the server's hold-down starts when it gets it.
    let back = Instant::now();
    let (code, body) = post(&s, "/regions/eu-west/undrain", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(gb().await, ("192.0.2.2".to_owned(), 10));
    while gb().await.1 != 60 {
        assert!(back.elapsed() < Duration::from_secs(20), "the hold-down never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back.elapsed() >= Duration::from_secs(2), "short TTL for the whole hold-down");
    // A notice that is not a duration is refused, and changes nothing.
    assert_eq!(post(&s, "/regions/eu-west/drain?notice=soon", Some(ADMIN_TOKEN)).await.0, 400);
    assert_eq!(gb().await, ("192.0.2.2".to_owned(), 60));
    s.stop().await;
}

/// `switchyard drain` and `undrain` act through the admin API, with its token; a
/// refusal is exit code 2 and changes nothing.
#[tokio::test]
async fn the_cli_drains_and_undrains_through_the_admin_api() {
    let s = TestServer::start(&with_token(POLICIES)).await;
    let gb = || async { first(&udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, "192.0.2.0/25")).await) };
    let token = s.dir.path().join("admin-token");
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(crate::support::bin()).args(&args).output().await.unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let admin = s.admin.to_string();
    let args = |cmd: &str, extra: &[&str], token: &std::path::Path| {
        let mut v: Vec<String> = vec![cmd.into(), "eu-west".into(), "--admin".into(), admin.clone()];
        v.extend(["--token-file".into(), token.display().to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let wrong = s.dir.path().join("wrong-token");
    std::fs::write(&wrong, "nope\n").unwrap();
    let (code, _, err) = run(args("drain", &["--notice", "0s"], &wrong)).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the admin API refused (401)"), "{err}");
    assert_eq!(gb().await, "192.0.2.2", "refused: nothing changed");
    let (code, out, err) =
        run(args("drain", &["--notice", "0s", "--by", "dave", "--reason", "kernel upgrade"], &token)).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "eu-west drained\n");
    assert_eq!(gb().await, "192.0.2.1");
    assert_eq!(s.state.drains()["eu-west"].why, "kernel upgrade");
    let (code, out, err) = run(args("undrain", &[], &token)).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("eu-west undrained"), "{out}");
    assert_eq!(gb().await, "192.0.2.2");
    let (code, _, err) = run(args("drain", &["--notice", "soon"], &token)).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("notice: "), "{err}");
    s.stop().await;
}

/// The status page at a glance: each check's reason in a few words (the whole error a
/// click away), where each name sends a client on each continent now (fallbacks
/// marked), and each cluster's writer and lag over the last minutes.
#[tokio::test]
async fn the_status_page_shows_where_users_go_short_reasons_and_recent_lag() {
    use crate::support::gateway::{Gateway, Mode};
    let (gw, role) = (Gateway::http("127.0.0.98").await, Gateway::http("127.0.0.99").await);
    gw.set(Mode::Status(503));
    let config = POLICIES.replace(
        "[regions.eu-west]\n",
        &format!(
            "[[regions.us-east.checks]]\nkind = \"http\"\nurl = \"http://{}/\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nfall = 1\n\n\
             [clusters.main.members.pg-eu]\nregion = \"eu-west\"\nkind = \"http_role\"\nurl = \"http://{}/primary\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n\n\
             [names.db]\npolicy = \"writer\"\n\n[regions.eu-west]\n",
            gw.addr, role.addr
        ),
    );
    let s = TestServer::start(&with_token(&config)).await;
    let start = Instant::now();
    let status = loop {
        let v: Value = serde_json::from_str(&get(&s, "/status").await.1).unwrap();
        let sampled = v["clusters"][0]["history"]["writer"].as_array().is_some_and(|w| w.iter().any(|x| x == "pg-eu"));
        if v["regions"][0]["checks"][0]["reason"] == "HTTP 503" && sampled {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no short reason or no sample: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status["regions"][0]["checks"][0]["last"].as_str().unwrap().starts_with("status: status 503"));
    // us-east is down: every client of `fo` (eu-west first) is unaffected, `mv` and `w`
    // fall back; `db` answers the writer's member and region.
    let routing = &status["routing"];
    assert_eq!(routing["clients"].as_array().unwrap().len(), 7);
    let row = |name: &str| routing["names"].as_array().unwrap().iter().find(|n| n["name"] == name).unwrap().clone();
    for cell in row("lat")["cells"].as_array().unwrap() {
        assert_ne!(cell["answer"], "us-east", "{cell}");
    }
    let w = row("w");
    assert!(w["cells"].as_array().unwrap().iter().any(|c| c["fallback"] == true && c["ttl"] == 10), "{w}");
    assert_eq!(row("db")["cells"][0]["answer"], "pg-eu (eu-west)");
    let page = get(&s, "/").await.1;
    for want in [
        "Where users go now",
        "<summary><span>HTTP 503</span></summary>",
        "class=\"cell fallback\"",
        "pg-eu (eu-west)",
        "<svg class=\"spark\"",
        "Writer, last 1 min",
    ] {
        assert!(page.contains(want), "missing `{want}` in the page");
    }
    s.stop().await;
}

#[tokio::test]
async fn without_a_token_mutations_are_refused() {
    let s = TestServer::start(POLICIES).await;
    let (code, body) = post(&s, "/regions/eu-west/drain", Some("anything")).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("no admin token is configured"));
    s.stop().await;
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_queries() {
    let s = TestServer::start(&with_token(POLICIES)).await;
    for _ in 0..3 {
        udp(s.addr, &ecs("app.gslb.example.org.", RecordType::A, "192.0.2.0/25")).await;
    }
    udp(s.addr, &crate::support::dns::query("nope.gslb.example.org.", RecordType::AAAA)).await;
    let (code, text) = get(&s, "/metrics").await;
    assert_eq!(code, 200);
    for want in [
        r#"switchyard_dns_queries_total{qtype="A",rcode="NOERROR",region="eu-west",zone="gslb.example.org"} 3"#,
        r#"switchyard_dns_queries_total{qtype="AAAA",rcode="NXDOMAIN",region="none",zone="gslb.example.org"} 1"#,
        r#"switchyard_region_up{region="us-east"} 1"#,
        r#"switchyard_config_reloads_total{result="failure"} 0"#,
        "switchyard_build_info{version=",
        "switchyard_geoip_build_timestamp_seconds ",
    ] {
        assert!(text.contains(want), "missing {want} in:\n{text}");
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop().await;
}

#[tokio::test]
async fn readyz_waits_for_the_first_health_round() {
    use crate::support::gateway::{Gateway, Mode};
    let g = Gateway::http("127.0.0.41").await;
    g.set(Mode::Slow(Duration::from_millis(600)));
    let config = POLICIES.replace(
        "[regions.eu-west]\n",
        &format!("[[regions.us-east.checks]]\nkind = \"http\"\nurl = \"http://{}/\"\ntimeout = \"1s\"\n\n[regions.eu-west]\n", g.addr),
    );
    let s = TestServer::start(&with_token(&config.replace("[server]\n", "[health]\ninterval = \"2s\"\n\n[server]\n")))
        .await;
    assert_eq!(get(&s, "/readyz").await.0, 503);
    let start = Instant::now();
    while get(&s, "/readyz").await.0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(5), "not ready 5 s after start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

/// Without a fleet, an operator's drain is kept in the state file: a restart keeps it.
#[tokio::test]
async fn a_drain_outlives_a_restart_through_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config =
        with_token(POLICIES).replace("[zone]", &format!("[health]\nstate_file = \"{}\"\n\n[zone]", state.display()));
    let s = TestServer::start(&config).await;
    let (code, body) = post(&s, "/regions/eu-west/drain?by=bob&reason=maintenance&notice=0", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&state).is_ok_and(|t| t.contains("maintenance")) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "the drain never reached the state file: {:?}",
            std::fs::read_to_string(&state)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.stop().await;
    let s = TestServer::start(&config).await;
    let eu = s.state.snapshot().model.region_index("eu-west").unwrap() as usize;
    assert!(s.state.snapshot().health.drained[eu], "still drained after the restart");
    assert_eq!(s.state.drains()["eu-west"].by, "bob");
    s.stop().await;
}
