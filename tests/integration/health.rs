//! Health checks against real gateways that a test turns sick in every way a real one
//! fails: each leads to `down` after exactly `fall` failed probes and back to `up` after
//! exactly `rise` good ones, seen end to end in DNS answers.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::dns::{first, query, ttls, udp, until_answer};
use crate::support::gateway::{Gateway, Mode, Pki};
use crate::support::{TestServer, ZONE};

const FALL: u64 = 3;
const RISE: u64 = 2;

/// A failover name `fo`: `primary` (probed) first, `backup` (no checks) second.
fn config(check: &str, extra_health: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[health]
interval = "300ms"
timeout = "150ms"
jitter = 0
rise = {RISE}
fall = {FALL}
hold_down = "2s"
{extra_health}

[defaults]
ttl = 60
failover_ttl = 5

{ZONE}
[[zone.records]]
name = "static"
type = "A"
values = ["192.0.2.10"]

[regions.primary]
a = ["192.0.2.1"]
[[regions.primary.checks]]
{check}

[regions.backup]
a = ["192.0.2.2"]

[names.fo]
policy = "failover"
regions = ["primary", "backup"]
"#
    )
}

fn http_check(g: &Gateway) -> String {
    format!("kind = \"http\"\nurl = \"http://{}/healthz\"\nbody_contains = \"ok\"", g.addr)
}

/// Polls `fo` until it answers `want`; returns how long that took.
async fn until(s: &TestServer, want: &str, within: Duration) -> Duration {
    until_answer(s.addr, "fo.gslb.example.org.", want, within).await
}

const PRIMARY: &str = "192.0.2.1";
const BACKUP: &str = "192.0.2.2";

/// Healthy → `mode` → down after exactly FALL probes → healthy → up after exactly RISE.
async fn sick_and_back(mode: Mode) {
    let g = Gateway::http("127.0.0.11").await;
    let s = TestServer::start(&config(&http_check(&g), "")).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;

    let h0 = g.accepted();
    g.set(mode);
    until(&s, BACKUP, Duration::from_secs(10)).await;
    assert_eq!(g.accepted() - h0, FALL, "{mode:?}: down after exactly {FALL} failed probes");
    let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
    assert_eq!(ttls(&r), vec![5], "the fallback answer carries failover_ttl");

    let h1 = g.accepted();
    g.set(Mode::Healthy);
    until(&s, PRIMARY, Duration::from_secs(10)).await;
    // A probe accepted before the switch (a hung one) may still be open: count only
    // the ones accepted after it.
    assert_eq!(g.accepted() - h1, RISE, "{mode:?}: up after exactly {RISE} good probes");
    s.stop().await;
}

#[tokio::test]
async fn server_error_status() {
    sick_and_back(Mode::Status(503)).await;
}

#[tokio::test]
async fn wrong_body() {
    sick_and_back(Mode::WrongBody).await;
}

#[tokio::test]
async fn slower_than_the_timeout() {
    sick_and_back(Mode::Slow(Duration::from_millis(400))).await;
}

#[tokio::test]
async fn accepts_and_never_answers() {
    sick_and_back(Mode::Hang).await;
}

#[tokio::test]
async fn drips_one_byte_a_second() {
    sick_and_back(Mode::Drip).await;
}

#[tokio::test]
async fn connection_refused() {
    let g = Gateway::http("127.0.0.12").await;
    let s = TestServer::start(&config(&http_check(&g), "")).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    g.stop();
    let took = until(&s, BACKUP, Duration::from_secs(10)).await;
    // FALL refused probes, one interval apart: at least (FALL - 1) intervals.
    assert!(took >= Duration::from_millis(300 * (FALL - 1)), "down too soon: {took:?}");
    let h = g.accepted();
    g.restart().await;
    until(&s, PRIMARY, Duration::from_secs(10)).await;
    assert_eq!(g.accepted() - h, RISE);
    s.stop().await;
}

async fn tls_case(bad: impl Fn(&Pki, &Pki) -> tokio_rustls::TlsAcceptor, what: &str) {
    let pki = Pki::new("switchyard test CA");
    let other = Pki::new("someone else's CA");
    let g = Gateway::https("127.0.0.13", pki.acceptor("gw.example.test")).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let check = format!(
        "kind = \"https\"\nurl = \"https://{}/healthz\"\nsni = \"gw.example.test\"\nca_file = \"{}\"",
        g.addr,
        ca.display()
    );
    let s = TestServer::start(&config(&check, "")).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    let h0 = g.accepted();
    g.set_tls(bad(&pki, &other));
    until(&s, BACKUP, Duration::from_secs(10)).await;
    assert_eq!(g.accepted() - h0, FALL, "{what}: down after exactly {FALL} failed handshakes");
    let h1 = g.accepted();
    g.set_tls(pki.acceptor("gw.example.test"));
    until(&s, PRIMARY, Duration::from_secs(10)).await;
    assert_eq!(g.accepted() - h1, RISE);
    s.stop().await;
}

#[tokio::test]
async fn tls_certificate_from_an_untrusted_ca() {
    tls_case(|_, other| other.acceptor("gw.example.test"), "untrusted CA").await;
}

#[tokio::test]
async fn tls_certificate_for_the_wrong_name() {
    tls_case(|pki, _| pki.acceptor("other.example.test"), "wrong name").await;
}

#[tokio::test]
async fn cold_start_waits_for_the_first_round_then_answers() {
    let g = Gateway::http("127.0.0.14").await;
    // The first probe hangs for the whole timeout: the first round takes 150 ms.
    g.set(Mode::Hang);
    let s = TestServer::start(&config(&http_check(&g), "cold_start_grace = \"5s\"")).await;
    let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "no guess before the first round");
    let r = udp(s.addr, &query("static.gslb.example.org.", RecordType::A)).await;
    assert_eq!(first(&r), "192.0.2.10", "static records are served at once");
    // The first result (a timeout) sets the state: primary down.
    until(&s, BACKUP, Duration::from_secs(5)).await;
    s.stop().await;
}

#[tokio::test]
async fn assume_up_serves_at_once() {
    let g = Gateway::http("127.0.0.15").await;
    g.set(Mode::Hang);
    let s = TestServer::start(&config(&http_check(&g), "cold_start = \"assume_up\"")).await;
    let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
    assert_eq!(first(&r), PRIMARY);
    until(&s, BACKUP, Duration::from_secs(5)).await;
    s.stop().await;
}

#[tokio::test]
async fn a_restart_restores_the_last_known_health_from_the_state_file() {
    let g = Gateway::http("127.0.0.16").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let extra = format!("state_file = \"{}\"\ncold_start_grace = \"5s\"", state.display());
    let s = TestServer::start(&config(&http_check(&g), &extra)).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    g.set(Mode::Status(500));
    until(&s, BACKUP, Duration::from_secs(5)).await;
    s.stop().await;
    let saved = std::fs::read_to_string(&state).unwrap();
    let v: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(v["regions"]["primary"]["up"], false, "{saved}");
    assert!(v["regions"]["primary"]["reasons"][0].as_str().unwrap().starts_with("status"), "{saved}");

    // The gateway now hangs: without the state file the first round would take a while.
    g.set(Mode::Hang);
    let s = TestServer::start(&config(&http_check(&g), &extra)).await;
    let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
    assert_eq!(first(&r), BACKUP, "honest at once: primary was down when we stopped");
    s.stop().await;

    // A corrupt state file is ignored (cold start as usual), not a crash.
    std::fs::write(&state, "{ not json").unwrap();
    let s = TestServer::start(&config(&http_check(&g), &extra)).await;
    let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    s.stop().await;
}

/// Waits until `g` has accepted `n` more connections than `from`.
async fn until_accepted(g: &Gateway, from: u64, n: u64) {
    let start = Instant::now();
    while g.accepted() < from + n {
        assert!(start.elapsed() < Duration::from_secs(10), "gateway saw {} of {n} probes", g.accepted() - from);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn region_rules_all_any_and_quorum() {
    let gs = [Gateway::http("127.0.0.17").await, Gateway::http("127.0.0.17").await, Gateway::http("127.0.0.17").await];
    let checks = gs.iter().map(http_check).collect::<Vec<_>>().join("\n[[regions.primary.checks]]\n");
    // (rule, answer with one of three sick, with two of three sick)
    for (rule, one, two) in
        [("\"all\"", BACKUP, BACKUP), ("\"any\"", PRIMARY, PRIMARY), ("{ quorum = 2 }", PRIMARY, BACKUP)]
    {
        for g in &gs {
            g.set(Mode::Healthy);
        }
        let text =
            config(&checks, "").replacen("[regions.primary]\n", &format!("[regions.primary]\nhealth = {rule}\n"), 1);
        let s = TestServer::start(&text).await;
        until(&s, PRIMARY, Duration::from_secs(5)).await;
        for (sick, want) in [(0, one), (1, two)] {
            let h = gs[sick].accepted();
            gs[sick].set(Mode::Status(500));
            // FALL failures and one more probe: any verdict it leads to has been published.
            until_accepted(&gs[sick], h, FALL + 1).await;
            assert_eq!(
                first(&udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await),
                want,
                "{rule} with {} sick",
                sick + 1
            );
        }
        gs[2].set(Mode::Status(500));
        until(&s, BACKUP, Duration::from_secs(5)).await;
        s.stop().await;
    }
}

#[tokio::test]
async fn hold_down_keeps_the_short_ttl_after_a_region_returns() {
    let g = Gateway::http("127.0.0.18").await;
    let s = TestServer::start(&config(&http_check(&g), "")).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    g.set(Mode::Status(503));
    until(&s, BACKUP, Duration::from_secs(5)).await;
    g.set(Mode::Healthy);
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    let back = Instant::now();
    assert_eq!(ttls(&udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await), vec![5], "within hold_down");
    loop {
        let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
        if ttls(&r) == vec![60] {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(5), "still the short TTL 5 s after the change (hold_down is 2 s)");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back.elapsed() >= Duration::from_millis(1500), "the normal TTL came back too soon: {:?}", back.elapsed());
    s.stop().await;
}

#[tokio::test]
async fn tcp_connect_check() {
    let g = Gateway::http("127.0.0.19").await;
    let s = TestServer::start(&config(&format!("kind = \"tcp\"\ntarget = \"{}\"", g.addr), "")).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    g.stop();
    until(&s, BACKUP, Duration::from_secs(5)).await;
    g.restart().await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    s.stop().await;
}

#[tokio::test]
async fn a_reload_carries_check_states_over_and_starts_new_checks() {
    let g = Gateway::http("127.0.0.20").await;
    let s = TestServer::start(&config(&http_check(&g), "cold_start_grace = \"30s\"")).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    g.set(Mode::Status(500));
    until(&s, BACKUP, Duration::from_secs(5)).await;
    // The gateway now hangs: a fresh engine would need a while (and SERVFAIL in `wait`
    // mode) before it knew anything. A reload must not forget what it knew.
    g.set(Mode::Hang);
    let g2 = Gateway::http("127.0.0.20").await;
    let text = config(&http_check(&g), "cold_start_grace = \"30s\"")
        .replace(
            "[regions.backup]\na = [\"192.0.2.2\"]\n",
            &format!("[regions.backup]\na = [\"192.0.2.2\"]\n[[regions.backup.checks]]\n{}\n", http_check(&g2)),
        )
        .replace("values = [\"192.0.2.10\"]", "values = [\"192.0.2.11\"]");
    std::fs::write(s.dir.path().join("switchyard.toml"), format!("[admin]\nlisten = \"127.0.0.1:0\"\n{text}")).unwrap();
    let generation = s.control.reload().await.expect("the new config is valid");
    assert_eq!(generation, 2);
    let r = udp(s.addr, &query("static.gslb.example.org.", RecordType::A)).await;
    assert_eq!(first(&r), "192.0.2.11", "the new config is in force");
    let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
    assert_eq!(first(&r), BACKUP, "primary is still down, without a new cold start");
    // The new check on backup runs: make it fail and backup goes down too (fail open
    // then answers the first candidate, primary).
    g2.set(Mode::Status(500));
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    // A broken config changes nothing.
    std::fs::write(s.dir.path().join("switchyard.toml"), "[zone]\norigin = 5\n").unwrap();
    assert!(s.control.reload().await.is_err());
    assert_eq!(first(&udp(s.addr, &query("static.gslb.example.org.", RecordType::A)).await), "192.0.2.11");
    s.stop().await;
}

#[tokio::test]
async fn a_reload_that_adds_the_first_checks_does_not_cold_start() {
    let g = Gateway::http("127.0.0.24").await;
    g.set(Mode::Hang);
    // No checks at first: the primary region is always up.
    let unprobed =
        config(&http_check(&g), "").replace(&format!("[[regions.primary.checks]]\n{}\n", http_check(&g)), "");
    assert!(!unprobed.contains("regions.primary.checks"));
    let s = TestServer::start(&unprobed).await;
    until(&s, PRIMARY, Duration::from_secs(5)).await;
    std::fs::write(
        s.dir.path().join("switchyard.toml"),
        format!("[admin]\nlisten = \"127.0.0.1:0\"\n{}", config(&http_check(&g), "")),
    )
    .unwrap();
    s.control.reload().await.expect("valid");
    // The new check hangs (no result for 150 ms): a live server keeps answering.
    let r = udp(s.addr, &query("fo.gslb.example.org.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "no SERVFAIL after a reload");
    assert_eq!(first(&r), PRIMARY);
    // And the check does take over: it times out, primary goes down.
    until(&s, BACKUP, Duration::from_secs(5)).await;
    s.stop().await;
}
