//! Health targets that fight back: each ends in `down` with every probe bounded by its
//! timeout, memory stays bounded, and a steady region beside them is probed on time.

use std::time::{Duration, Instant};

use prometheus::proto::MetricFamily;

use crate::support::gateway::{Gateway, Mode};
use crate::support::{TestServer, ZONE};

const INTERVAL_MS: u64 = 300;
const TIMEOUT_MS: u64 = 250;

/// The resident set of this process (nextest runs each test in its own process).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families.iter().find(|f| f.name() == name).unwrap_or_else(|| panic!("no {name}"))
}

fn label<'a>(m: &'a prometheus::proto::Metric, name: &str) -> &'a str {
    m.get_label().iter().find(|l| l.name() == name).map_or("", |l| l.value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_targets_go_down_within_their_timeout_and_delay_no_other_check() {
    let steady = Gateway::http("127.0.0.21").await;
    let huge = Gateway::http("127.0.0.22").await;
    huge.set(Mode::HugeBody);
    let redirect = Gateway::http("127.0.0.23").await;
    redirect.set(Mode::RedirectLoop);
    // Plain TCP that reads the ClientHello and never answers: the TLS handshake hangs.
    let tls_hang = Gateway::http("127.0.0.24").await;
    tls_hang.set(Mode::Hang);
    // Accepts the PostgreSQL startup message and never answers.
    let pg_hang = Gateway::http("127.0.0.25").await;
    pg_hang.set(Mode::Hang);
    let drip = Gateway::http("127.0.0.26").await;
    drip.set(Mode::Drip);

    let http = |g: &Gateway| format!("kind = \"http\"\nurl = \"http://{}/healthz\"\nbody_contains = \"ok\"", g.addr);
    let regions = [
        ("steady", http(&steady)),
        ("huge", http(&huge)),
        ("redirect", http(&redirect)),
        ("tlshang", format!("kind = \"https\"\nurl = \"https://{}/healthz\"\ninsecure = true", tls_hang.addr)),
        ("nxhost", "kind = \"http\"\nurl = \"http://no-such-gateway.invalid/healthz\"".to_owned()),
        ("drip", http(&drip)),
    ];
    let mut config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[health]\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\n\
         jitter = 0\nrise = 1\nfall = 2\ncold_start = \"assume_up\"\n{ZONE}"
    );
    for (i, (name, check)) in regions.iter().enumerate() {
        config += &format!("[regions.{name}]\na = [\"192.0.2.{}\"]\n[[regions.{name}.checks]]\n{check}\n", i + 1);
    }
    config += &format!(
        "[regions.pghang]\na = [\"192.0.2.99\"]\n[regions.pghang.database]\nkind = \"postgres\"\n\
         dsn = \"host={} port={} user=switchyard password=hunter2 dbname=postgres\"\n",
        pg_hang.addr.ip(),
        pg_hang.addr.port()
    );
    let rss_before = rss_bytes();
    let s = TestServer::start(&config).await;
    let metrics = s.control.metrics.clone();

    // Every hostile check reaches down: fall (2) probes, each cut off at the timeout.
    let hostile = ["huge", "redirect", "tlshang", "nxhost", "drip", "pghang"];
    let started = Instant::now();
    // (A family with no series yet is not gathered at all.)
    let down = |families: &[MetricFamily], region: &str| {
        families
            .iter()
            .filter(|f| f.name() == switchyard::metrics::CHECK_UP)
            .flat_map(|f| f.get_metric())
            .any(|m| label(m, "region") == region && m.get_gauge().get_value() == 0.0)
    };
    loop {
        let families = metrics.registry.gather();
        let pending: Vec<&str> = hostile.iter().copied().filter(|r| !down(&families, r)).collect();
        if pending.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still not down after 10 s: {pending:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_down = started.elapsed();
    assert!(!down(&metrics.registry.gather(), "steady"), "the steady region stays up");

    // Over the next 3 s, the steady gateway is probed every interval as if alone.
    let (h0, t0) = (steady.accepted(), Instant::now());
    let deadline = t0 + Duration::from_secs(3);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let probes = steady.accepted() - h0;
    let expected = t0.elapsed().as_millis() as u64 / INTERVAL_MS;

    // Every probe of every check ended within the timeout (plus scheduling slack).
    let families = metrics.registry.gather();
    let mut report = Vec::new();
    for m in family(&families, switchyard::metrics::CHECK_DURATION).get_metric() {
        let h = m.get_histogram();
        let within: u64 = h.get_bucket().iter().find(|b| b.upper_bound() >= 0.5).unwrap().cumulative_count();
        report.push(format!("{}: {} probes, {within} within 0.5 s", label(m, "region"), h.get_sample_count()));
        assert_eq!(within, h.get_sample_count(), "{}: a probe outlived its timeout", label(m, "region"));
    }
    let rss_after = rss_bytes();
    eprintln!(
        "hostile targets: all down {all_down:?} after start; steady gateway probed {probes} times in 3 s \
         (interval {INTERVAL_MS} ms, so {expected} expected); the 1 GiB body gateway sent {} KiB in all; \
         RSS {} -> {} MiB; {}",
        huge.body_bytes_sent() / 1024,
        rss_before >> 20,
        rss_after >> 20,
        report.join(", ")
    );
    assert!(probes + 1 >= expected, "the steady check was delayed: {probes} probes, {expected} expected");
    // Each probe of the huge body reads at most 64 KiB; what the gateway got out is what
    // the kernel's socket buffers took, not the gigabyte.
    let huge_probes = huge.accepted();
    assert!(
        huge.body_bytes_sent() < huge_probes * (8 << 20),
        "{} bytes sent over {huge_probes} probes",
        huge.body_bytes_sent()
    );
    assert!(rss_after < rss_before + (64 << 20), "memory grew {} MiB", (rss_after - rss_before) >> 20);
    // The password never shows, whatever the failure.
    let text = metrics.render();
    assert!(!text.contains("hunter2"));
    let status = reqwest::get(format!("http://{}/status", s.admin)).await.unwrap().text().await.unwrap();
    assert!(!status.contains("hunter2") && status.contains("pghang"));
    s.stop().await;
}
