//! Recovery-time budgets: the worst case, computed from the config alone, between a
//! region (or a database writer) failing and every client being sent elsewhere.
//!
//! The parts, each a bound the code keeps:
//! - **detection**: the failure happens just after a probe started (and succeeded);
//!   `fall` failed probes later, each up to `interval + jitter` apart, the last one
//!   has failed by its `timeout`. A `writer` name changes with the first probe that
//!   sees the promoted member as primary: one round. The slowest check that can decide
//!   the name counts.
//! - **propagation**: with `[fleet]`, a vantage that fell silent still votes until its
//!   observation expires: `observation_ttl`. Without a fleet, nothing.
//! - **hold-down**: it only shortens TTLs after a change; it never delays one: 0.
//! - **cached answer**: an answer given just before detection lives in caches for the
//!   name's `ttl`; a name that may answer SERVFAIL meanwhile (its all-down rule, a
//!   writer gap, residency) is counted as cached for the zone's negative TTL (SOA
//!   minimum). That one is an assumption, not a bound: a SERVFAIL carries no SOA, and
//!   RFC 2308 lets a resolver keep it up to five minutes (most keep it seconds).
//!
//! The database's own promotion time is not in the config, so it is not in the sum:
//! the budget covers switchyard's part.

use std::fmt::Write as _;
use std::time::Duration;

use hickory_proto::rr::RData;

use super::{AllDown, CheckConfig, Config, NameConfig, Policy, Unlocated};

/// One name's worst case, part by part.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub detection: Duration,
    /// How detection was bounded, e.g. `3 × (5s + 0.5s) + 2s (us-east/http:…)`.
    pub detection_text: String,
    pub propagation: Duration,
    pub hold_down: Duration,
    /// How long a resolver may hold the last answer.
    pub cached: Duration,
    pub cached_text: String,
    pub total: Duration,
    /// The declared budget, if any.
    pub rto: Option<Duration>,
}

impl Budget {
    /// Whether the worst case fits the declared budget (`true` with none declared).
    pub fn fits(&self) -> bool {
        self.rto.is_none_or(|rto| self.total <= rto)
    }

    /// The arithmetic, on one line.
    pub fn arithmetic(&self) -> String {
        let mut s = format!(
            "detection {} [{}] + propagation {} + hold-down {} + cached answer {} [{}] = {}",
            secs(self.detection),
            self.detection_text,
            secs(self.propagation),
            secs(self.hold_down),
            secs(self.cached),
            self.cached_text,
            secs(self.total),
        );
        if let Some(rto) = self.rto {
            let verdict = if self.fits() { "fits" } else { "exceeds" };
            let _ = write!(s, "; {verdict} rto {}", secs(rto));
        }
        s
    }
}

/// A duration in seconds, as short as it can be written exactly (to the millisecond).
pub fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{}s", ms as f64 / 1000.0) }
}

/// The worst case of one check going down after `fall` failures (`rounds` overrides
/// `fall`: a writer change needs one round).
fn detect(c: &CheckConfig, rounds: Option<u32>) -> (Duration, String) {
    let n = rounds.unwrap_or(c.fall);
    let d = c.interval.saturating_add(c.jitter).checked_mul(n).unwrap_or(Duration::MAX).saturating_add(c.timeout);
    let text = format!("{n} × ({} + {}) + {} ({})", secs(c.interval), secs(c.jitter), secs(c.timeout), c.id);
    (d, text)
}

/// The zone's negative TTL: the SOA minimum.
pub fn negative_ttl(config: &Config) -> u32 {
    match &config.zone.soa.data {
        RData::SOA(soa) => soa.minimum,
        _ => 0,
    }
}

/// Whether a name may answer SERVFAIL while it fails over.
fn may_servfail(config: &Config, n: &NameConfig) -> bool {
    let residency = match n.residency {
        Some(Unlocated::ServFail) => true,
        // A jurisdiction none of the name's regions is in fails open to nothing.
        Some(_) => {
            n.when_all_down == AllDown::FailOpen
                && config.jurisdictions.iter().any(|j| !n.regions.iter().any(|r| j.regions.contains(r)))
        }
        None => false,
    };
    residency
        || n.when_all_down == AllDown::ServFail
        // A writer gap, or a reader with neither a fresh member nor a writer.
        || matches!(n.policy, Policy::Writer { .. } | Policy::Reader { .. })
}

/// The worst case for `n`.
pub fn budget(config: &Config, n: &NameConfig) -> Budget {
    let mut worst: Option<(Duration, String)> = None;
    let mut consider = |(d, text): (Duration, String)| {
        if worst.as_ref().is_none_or(|(w, _)| d > *w) {
            worst = Some((d, text));
        }
    };
    let gateways = |consider: &mut dyn FnMut((Duration, String))| {
        for &r in &n.regions {
            for c in &config.regions[r].checks {
                consider(detect(c, None));
            }
        }
    };
    match &n.policy {
        Policy::Writer { cluster, require_gateway } => {
            for m in &config.clusters[*cluster].members {
                consider(detect(&m.check, Some(1)));
            }
            if *require_gateway {
                gateways(&mut consider);
            }
        }
        Policy::Reader { cluster, require_gateway, .. } => {
            for m in &config.clusters[*cluster].members {
                consider(detect(&m.check, None));
            }
            if *require_gateway {
                gateways(&mut consider);
            }
        }
        _ => gateways(&mut consider),
    }
    let (detection, detection_text) = worst.unwrap_or((Duration::ZERO, "no checks: never fails over".to_owned()));
    let propagation = config.fleet.as_ref().map_or(Duration::ZERO, |f| f.observation_ttl);
    let hold_down = Duration::ZERO;
    let ttl = Duration::from_secs(u64::from(n.ttl));
    let (cached, cached_text) = if may_servfail(config, n) {
        let neg = negative_ttl(config);
        let held = n.ttl.max(neg);
        (Duration::from_secs(u64::from(held)), format!("max(ttl {}s, negative ttl {neg}s)", n.ttl))
    } else {
        (ttl, format!("ttl {}s", n.ttl))
    };
    let total = detection.saturating_add(propagation).saturating_add(hold_down).saturating_add(cached);
    Budget { detection, detection_text, propagation, hold_down, cached, cached_text, total, rto: n.rto }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::budget;

    const BASE: &str = r#"
[health]
interval = "5s"
timeout = "2s"
jitter = "500ms"
fall = 3
[zone]
origin = "example.org."
[zone.soa]
rname = "hostmaster.example.org."
minimum = 120
[[zone.ns]]
name = "ns.example.net."
[regions.a]
a = ["192.0.2.1"]
[[regions.a.checks]]
kind = "tcp"
target = "192.0.2.1:443"
[regions.b]
a = ["192.0.2.2"]
[[regions.b.checks]]
kind = "tcp"
target = "192.0.2.2:443"
interval = "10s"
jitter = "0s"
fall = 2
[clusters.main.members.pg-a]
region = "a"
kind = "postgres"
dsn = "host=a"
interval = "2s"
timeout = "1s"
jitter = "0s"
"#;

    /// (name config, expected detection, propagation, cached, total) — by hand.
    fn check(extra: &str, name: &str, want: (f64, f64, f64, f64)) {
        let cfg = crate::config::parse(&format!("{BASE}{extra}"), Path::new(".")).unwrap_or_else(|e| panic!("{e:?}"));
        let n = cfg.names.iter().find(|n| n.key == name).unwrap();
        let b = budget(&cfg, n);
        let got = (b.detection, b.propagation, b.cached, b.total);
        let want = (
            Duration::from_secs_f64(want.0),
            Duration::from_secs_f64(want.1),
            Duration::from_secs_f64(want.2),
            Duration::from_secs_f64(want.3),
        );
        assert_eq!(got, want, "{name}: {}", b.arithmetic());
    }

    #[test]
    fn worst_cases_computed_by_hand() {
        // a: 3 × (5 + 0.5) + 2 = 18.5; b: 2 × (10 + 0) + 2 = 22, the slower; ttl 60.
        check("[names.app]\npolicy = \"failover\"\nttl = 60\n", "app", (22.0, 0.0, 60.0, 82.0));
        // Only a: 18.5 + 30.
        check("[names.app]\npolicy = \"failover\"\nregions = [\"a\"]\nttl = 30\n", "app", (18.5, 0.0, 30.0, 48.5));
        // SERVFAIL when all are down: the negative TTL (120) outlives the ttl (30).
        check(
            "[names.app]\npolicy = \"failover\"\nregions = [\"a\"]\nttl = 30\nwhen_all_down = \"servfail\"\n",
            "app",
            (18.5, 0.0, 120.0, 138.5),
        );
        // A writer changes with one probe of the promoted member: 1 × (2 + 0) + 1 = 3;
        // a writer gap may be SERVFAIL: max(ttl 30, 120).
        check("[names.db]\npolicy = \"writer\"\nttl = 30\n", "db", (3.0, 0.0, 120.0, 123.0));
        // With require_gateway, the gateways' 18.5 s bound it.
        check("[names.db]\npolicy = \"writer\"\nttl = 30\nrequire_gateway = true\n", "db", (18.5, 0.0, 120.0, 138.5));
        // A reader's member goes stale after fall (3) probes: 3 × 2 + 1 = 7.
        check(
            "[names.ro]\npolicy = \"reader\"\norder = \"latency\"\nttl = 30\n[latency]\ndefault = { a = 1 }\n",
            "ro",
            (7.0, 0.0, 120.0, 127.0),
        );
        // A fleet: a silent vantage votes until its observation expires (3 × 5 s).
        check(
            "[fleet]\nname = \"ns1\"\nservers = [\"nats://127.0.0.1:4222\"]\n[names.app]\npolicy = \"failover\"\nregions = [\"a\"]\nttl = 30\n",
            "app",
            (18.5, 15.0, 30.0, 63.5),
        );
    }

    #[test]
    fn the_arithmetic_reads_as_a_sum_with_its_verdict() {
        let cfg = crate::config::parse(
            &format!("{BASE}[names.app]\npolicy = \"failover\"\nregions = [\"a\"]\nttl = 30\nrto = \"1m\"\n"),
            Path::new("."),
        )
        .unwrap();
        let b = budget(&cfg, &cfg.names[0]);
        assert_eq!(
            b.arithmetic(),
            "detection 18.5s [3 × (5s + 0.5s) + 2s (a/tcp:192.0.2.1:443)] + propagation 0s + hold-down 0s \
             + cached answer 30s [ttl 30s] = 48.5s; fits rto 60s"
        );
        assert!(b.fits());
    }
}
