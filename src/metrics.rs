//! Prometheus metrics: names (imported by tests and docs), one registry per instance,
//! and handles built ahead of time.
//!
//! The DNS path touches only [`QueryCounters`]: a fixed array of atomics indexed by
//! query type, response code and region slot, so counting a query is one relaxed
//! atomic add, with no lock, no allocation and no label lookup. The series are made at
//! scrape time, for non-zero counts only. Everything else here is updated by the
//! control plane (health engine, reload, admin).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub const BUILD_INFO: &str = "switchyard_build_info";
pub const QUERIES_TOTAL: &str = "switchyard_dns_queries_total";
pub const REGION_UP: &str = "switchyard_region_up";
pub const REGION_DRAINED: &str = "switchyard_region_drained";
pub const CHECK_UP: &str = "switchyard_check_up";
pub const CHECK_DURATION: &str = "switchyard_check_duration_seconds";
pub const CHECK_FAILURES_TOTAL: &str = "switchyard_check_failures_total";
pub const WRITER: &str = "switchyard_writer";
pub const DATABASE_PRIMARY: &str = "switchyard_database_primary";
pub const SPLIT_BRAIN: &str = "switchyard_split_brain";
pub const REPLICA_LAG: &str = "switchyard_replica_lag_seconds";
pub const REPLICA_BYTES: &str = "switchyard_replica_lag_bytes";
pub const IDENTITY_MISMATCH: &str = "switchyard_database_identity_mismatch";
pub const WRITER_RPO: &str = "switchyard_writer_change_lag_seconds";
pub const FLEET_CONNECTED: &str = "switchyard_fleet_connected";
pub const FLEET_VANTAGES: &str = "switchyard_fleet_vantages";
pub const FLEET_CHECK_UP: &str = "switchyard_fleet_check_up";
pub const HEALTH_READY: &str = "switchyard_health_ready";
pub const RELOADS_TOTAL: &str = "switchyard_config_reloads_total";
pub const RELOAD_LAST_SUCCESS: &str = "switchyard_config_last_reload_success_timestamp_seconds";
pub const RELOAD_LAST_OK: &str = "switchyard_config_last_reload_successful";
pub const CONFIG_GENERATION: &str = "switchyard_config_generation";
pub const GEOIP_BUILD: &str = "switchyard_geoip_build_timestamp_seconds";
pub const RRL_RESPONSES: &str = "switchyard_rrl_responses_total";
pub const TCP_CONNECTIONS: &str = "switchyard_tcp_connections";
pub const TCP_REFUSED: &str = "switchyard_tcp_connections_refused_total";
pub const TCP_EVICTED: &str = "switchyard_tcp_connections_evicted_total";
pub const TCP_TIMEOUTS: &str = "switchyard_tcp_timeouts_total";
pub const RESIDENCY_RESTRICTED: &str = "switchyard_residency_restricted_total";
pub const FAILOVER_DETECTION: &str = "switchyard_failover_detection_seconds";
pub const WRITER_GAP: &str = "switchyard_writer_gap_seconds";
pub const NOTIFICATIONS: &str = "switchyard_notifications_total";
pub const DNSSEC_SIGNATURES: &str = "switchyard_dnssec_signatures_total";
pub const DNSSEC_CACHE_ENTRIES: &str = "switchyard_dnssec_signature_cache_entries";
pub const DNSSEC_CACHE_EVICTIONS: &str = "switchyard_dnssec_signature_cache_evictions_total";

/// Query types counted by name; the rest are `other`.
pub const QTYPES: &[&str] =
    &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "SOA", "CAA", "PTR", "DS", "ANY", "other"];
/// Response codes counted by name; the rest are `other`.
pub const RCODES: &[&str] = &["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other"];
/// Region slots: 0 is "none" (no region answered); names get slots as configs load.
pub const REGION_SLOTS: usize = 128;
/// Jurisdiction slots for residency counts: 0 is `unlocated` (a client of unknown
/// location refused by `unlocated = "servfail"`).
pub const JURISDICTION_SLOTS: usize = 32;

pub fn qtype_index(qtype: u16) -> usize {
    match qtype {
        1 => 0,
        28 => 1,
        5 => 2,
        15 => 3,
        16 => 4,
        33 => 5,
        2 => 6,
        6 => 7,
        257 => 8,
        12 => 9,
        43 => 10,
        255 => 11,
        _ => 12,
    }
}

pub fn rcode_index(rcode: u16) -> usize {
    match rcode {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        5 => 5,
        16 => 6,
        _ => 7,
    }
}

/// Query counts by (qtype, rcode, region slot).
pub struct QueryCounters {
    counts: Box<[AtomicU64]>,
    /// Slot → region name; slot 0 is `none`. Grows, never shrinks, so a count never
    /// changes label.
    names: Mutex<Vec<String>>,
    zone: Mutex<String>,
    desc: Desc,
    /// Answers residency restricted, by jurisdiction slot.
    restricted: Box<[AtomicU64]>,
    /// Slot → jurisdiction name; slot 0 is `unlocated`. Grows, never shrinks.
    jurisdictions: Mutex<Vec<String>>,
    restricted_desc: Desc,
}

/// The slot of each of `wanted` in `names`, adding those not there yet (up to `limit`;
/// past it, the last slot is shared rather than labels grown).
fn assign_slots(names: &Mutex<Vec<String>>, wanted: &[&str], limit: usize) -> Vec<u16> {
    let mut names = names.lock().expect("not poisoned");
    wanted
        .iter()
        .map(|r| match names.iter().position(|n| n == r) {
            Some(i) => i as u16,
            None if names.len() < limit => {
                names.push((*r).to_owned());
                (names.len() - 1) as u16
            }
            None => (limit - 1) as u16,
        })
        .collect()
}

impl QueryCounters {
    fn new() -> QueryCounters {
        let n = QTYPES.len() * RCODES.len() * REGION_SLOTS;
        QueryCounters {
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            names: Mutex::new(vec!["none".to_owned()]),
            zone: Mutex::new(String::new()),
            desc: Desc::new(
                QUERIES_TOTAL.into(),
                "DNS queries answered, by zone, query type, response code and answered region.".into(),
                vec!["zone".into(), "qtype".into(), "rcode".into(), "region".into()],
                Default::default(),
            )
            .expect("valid descriptor"),
            restricted: (0..JURISDICTION_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            jurisdictions: Mutex::new(vec!["unlocated".to_owned()]),
            restricted_desc: Desc::new(
                RESIDENCY_RESTRICTED.into(),
                "Answers of strict-residency names that residency restricted: a region the policy ranked was outside the client's jurisdiction, or the client's location was unknown and `unlocated = \"servfail\"` refused it.".into(),
                vec!["jurisdiction".into()],
                Default::default(),
            )
            .expect("valid descriptor"),
        }
    }

    /// Counts one answer restricted by residency. The DNS path calls this.
    #[inline]
    pub fn restricted(&self, slot: u16) {
        self.restricted[(slot as usize).min(JURISDICTION_SLOTS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Queries counted so far in the region slots `which` accepts (every type and code):
    /// the failover record reads it to see the first answer given on a new state.
    pub fn answered(&self, which: &dyn Fn(u16) -> bool) -> u64 {
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            if which((i % REGION_SLOTS) as u16) {
                total += c.load(Ordering::Relaxed);
            }
        }
        total
    }

    /// Slots for a config's jurisdictions, by name.
    pub fn jurisdiction_slots(&self, jurisdictions: &[&str]) -> Vec<u16> {
        assign_slots(&self.jurisdictions, jurisdictions, JURISDICTION_SLOTS)
    }

    /// Counts one query. The DNS path calls this.
    #[inline]
    pub fn count(&self, qtype: usize, rcode: usize, slot: u16) {
        let i = (qtype * RCODES.len() + rcode) * REGION_SLOTS + (slot as usize).min(REGION_SLOTS - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Slots for a config's regions, by name.
    pub fn slots(&self, zone: &str, regions: &[&str]) -> Vec<u16> {
        *self.zone.lock().expect("not poisoned") = zone.trim_end_matches('.').to_owned();
        assign_slots(&self.names, regions, REGION_SLOTS)
    }
}

impl Collector for QueryCounters {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc, &self.restricted_desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let names = self.names.lock().expect("not poisoned").clone();
        let zone = self.zone.lock().expect("not poisoned").clone();
        let label = |name: &str, value: &str| {
            let mut l = LabelPair::default();
            l.set_name(name.to_owned());
            l.set_value(value.to_owned());
            l
        };
        let mut metrics = Vec::new();
        for (q, qtype) in QTYPES.iter().enumerate() {
            for (r, rcode) in RCODES.iter().enumerate() {
                for (slot, region) in names.iter().enumerate() {
                    let v = self.counts[(q * RCODES.len() + r) * REGION_SLOTS + slot].load(Ordering::Relaxed);
                    if v == 0 {
                        continue;
                    }
                    let mut c = Counter::default();
                    c.set_value(v as f64);
                    let mut m = Metric::from_label(vec![
                        label("qtype", qtype),
                        label("rcode", rcode),
                        label("region", region),
                        label("zone", &zone),
                    ]);
                    m.set_counter(c);
                    metrics.push(m);
                }
            }
        }
        let mut mf = MetricFamily::default();
        mf.set_name(QUERIES_TOTAL.to_owned());
        mf.set_help(self.desc.help.clone());
        mf.set_field_type(MetricType::COUNTER);
        mf.set_metric(metrics);
        let mut restricted = Vec::new();
        // Every jurisdiction a config named has a series, 0 included (and then the
        // unlocated one too); with none, the family is empty.
        let jurisdictions = self.jurisdictions.lock().expect("not poisoned").clone();
        for (slot, name) in jurisdictions.iter().enumerate().filter(|_| jurisdictions.len() > 1) {
            let v = self.restricted[slot].load(Ordering::Relaxed);
            let mut c = Counter::default();
            c.set_value(v as f64);
            let mut m = Metric::from_label(vec![label("jurisdiction", name)]);
            m.set_counter(c);
            restricted.push(m);
        }
        let mut rf = MetricFamily::default();
        rf.set_name(RESIDENCY_RESTRICTED.to_owned());
        rf.set_help(self.restricted_desc.help.clone());
        rf.set_field_type(MetricType::COUNTER);
        rf.set_metric(restricted);
        vec![mf, rf]
    }
}

/// Every metric of one instance.
pub struct Metrics {
    pub registry: Registry,
    pub queries: Arc<QueryCounters>,
    /// DNSSEC signing (shared with every model's signer).
    pub signing: Arc<SignCounters>,
    pub region_up: IntGaugeVec,
    pub region_drained: IntGaugeVec,
    pub check_up: IntGaugeVec,
    pub check_duration: HistogramVec,
    pub check_failures: IntCounterVec,
    pub writer: IntGaugeVec,
    pub database_primary: IntGaugeVec,
    pub split_brain: IntGaugeVec,
    pub replica_lag: GaugeVec,
    pub replica_bytes: GaugeVec,
    pub identity_mismatch: IntGaugeVec,
    pub writer_rpo: GaugeVec,
    /// From a region's first failed probe (seen here) to its down verdict.
    pub failover_detection: prometheus::Histogram,
    /// From the old writer's last sighting as primary to the new one's first.
    pub writer_gap: HistogramVec,
    /// Writer-change webhooks, by result: delivered, failed_attempt, dropped.
    pub notifications: IntCounterVec,
    pub fleet_connected: IntGauge,
    pub fleet_vantages: IntGauge,
    pub fleet_check_up: IntGaugeVec,
    pub health_ready: IntGauge,
    pub reloads: IntCounterVec,
    pub reload_last_success: Gauge,
    pub reload_last_ok: IntGauge,
    pub config_generation: IntGauge,
    pub geoip_build: Gauge,
    /// Answers the rate limiter saw, by action: sent, slipped (truncated), dropped.
    pub rrl: [IntCounter; 3],
    pub tcp_open: IntGauge,
    pub tcp_refused: IntCounter,
    pub tcp_evicted: IntCounter,
    /// TCP connections closed for a timeout: [idle, io].
    pub tcp_timeouts: [IntCounter; 2],
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let queries = Arc::new(QueryCounters::new());
        let reg = |c: Box<dyn Collector>| registry.register(c).expect("metric names are unique");
        reg(Box::new(QueryCountersHandle(queries.clone())));
        let signing = Arc::new(SignCounters::default());
        let desc = |name: &str, help: &str, labels: Vec<String>| {
            Desc::new(name.to_owned(), help.to_owned(), labels, HashMap::new()).expect("valid metric")
        };
        reg(Box::new(SignCountersHandle(
            signing.clone(),
            [
                desc(
                    DNSSEC_SIGNATURES,
                    "DNSSEC signatures made, by kind: rrset (static and GSLB RRsets, kept in the cache) or denial (a name that does not exist, not kept).",
                    vec!["kind".into()],
                ),
                desc(DNSSEC_CACHE_ENTRIES, "Signed RRsets in the signature cache.", vec![]),
                desc(
                    DNSSEC_CACHE_EVICTIONS,
                    "Times the signature cache was full and its GSLB entries dropped.",
                    vec![],
                ),
            ],
        )));
        macro_rules! vec_of {
            ($ty:ty, $name:expr, $help:expr, $labels:expr) => {{
                let v = <$ty>::new(Opts::new($name, $help), $labels).expect("valid metric");
                reg(Box::new(v.clone()));
                v
            }};
        }
        let build = vec_of!(IntGaugeVec, BUILD_INFO, "Build information.", &["version"]);
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let check_duration = HistogramVec::new(
            HistogramOpts::new(CHECK_DURATION, "How long each health probe took.")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["region", "check"],
        )
        .expect("valid metric");
        reg(Box::new(check_duration.clone()));
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        let m = Metrics {
            queries,
            signing,
            region_up: vec_of!(
                IntGaugeVec,
                REGION_UP,
                "Whether the region is up per its checks (1) or down (0).",
                &["region"]
            ),
            region_drained: vec_of!(
                IntGaugeVec,
                REGION_DRAINED,
                "Whether an operator drained the region.",
                &["region"]
            ),
            check_up: vec_of!(
                IntGaugeVec,
                CHECK_UP,
                "Whether the check's verdict is up (1) or down (0).",
                &["region", "check"]
            ),
            check_duration,
            check_failures: vec_of!(
                IntCounterVec,
                CHECK_FAILURES_TOTAL,
                "Failed health probes, by reason.",
                &["region", "check", "reason"]
            ),
            writer: vec_of!(
                IntGaugeVec,
                WRITER,
                "1 for the member that is its cluster's writer, 0 for the others.",
                &["cluster", "member", "region"]
            ),
            database_primary: vec_of!(
                IntGaugeVec,
                DATABASE_PRIMARY,
                "Whether the database member reports primary (members of another system identifier: 0).",
                &["cluster", "member", "region"]
            ),
            split_brain: vec_of!(
                IntGaugeVec,
                SPLIT_BRAIN,
                "1 while more than one member of the cluster reports primary.",
                &["cluster"]
            ),
            replica_lag: vec_of!(
                GaugeVec,
                REPLICA_LAG,
                "Replication lag of the database member (0 for the primary; NaN when down or unknown).",
                &["cluster", "member", "region"]
            ),
            replica_bytes: vec_of!(
                GaugeVec,
                REPLICA_BYTES,
                "WAL bytes the member's upstream has that it has not replayed (NaN when unknown).",
                &["cluster", "member", "region"]
            ),
            identity_mismatch: vec_of!(
                IntGaugeVec,
                IDENTITY_MISMATCH,
                "1 while the member reports a PostgreSQL system identifier other than its cluster's.",
                &["cluster", "member"]
            ),
            writer_rpo: vec_of!(
                GaugeVec,
                WRITER_RPO,
                "The lag the current writer last showed as a replica before it became the writer (NaN: none seen).",
                &["cluster"]
            ),
            failover_detection: {
                let h = prometheus::Histogram::with_opts(
                    HistogramOpts::new(
                        FAILOVER_DETECTION,
                        "From a region's first failed probe to its down verdict (failovers this instance saw begin).",
                    )
                    .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0, 600.0]),
                )
                .expect("valid metric");
                reg(Box::new(h.clone()));
                h
            },
            writer_gap: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        WRITER_GAP,
                        "Time without a writer at a writer change: from the old writer's last sighting as primary to the new one's first.",
                    )
                    .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0, 600.0]),
                    &["cluster"],
                )
                .expect("valid metric");
                reg(Box::new(h.clone()));
                h
            },
            notifications: {
                let v = vec_of!(
                    IntCounterVec,
                    NOTIFICATIONS,
                    "Writer-change webhook notifications, by result: delivered, failed_attempt (retried), dropped.",
                    &["result"]
                );
                // Each result exists from the start, at 0.
                for r in ["delivered", "failed_attempt", "dropped"] {
                    v.with_label_values(&[r]);
                }
                v
            },
            fleet_connected: gauge(
                FLEET_CONNECTED,
                "1 while this instance reaches the fleet's NATS servers and buckets.",
            ),
            fleet_vantages: gauge(
                FLEET_VANTAGES,
                "Vantages this instance decides with, itself included (1: deciding alone).",
            ),
            fleet_check_up: vec_of!(
                IntGaugeVec,
                FLEET_CHECK_UP,
                "Each vantage's verdict on each check (1 up, 0 down), as shared through the fleet.",
                &["vantage", "region", "check"]
            ),
            health_ready: gauge(HEALTH_READY, "1 once the first round of health checks completed."),
            reloads: vec_of!(IntCounterVec, RELOADS_TOTAL, "Config reloads, by result.", &["result"]),
            reload_last_success: {
                let g =
                    Gauge::new(RELOAD_LAST_SUCCESS, "When the config was last loaded successfully.").expect("valid");
                reg(Box::new(g.clone()));
                g
            },
            reload_last_ok: gauge(RELOAD_LAST_OK, "Whether the last config reload succeeded (1) or failed (0)."),
            config_generation: gauge(CONFIG_GENERATION, "Configs loaded since start (1 is the first)."),
            geoip_build: {
                let g = Gauge::new(GEOIP_BUILD, "When the GeoIP database in use was built.").expect("valid");
                reg(Box::new(g.clone()));
                g
            },
            rrl: {
                let v = vec_of!(
                    IntCounterVec,
                    RRL_RESPONSES,
                    "UDP answers seen by response rate limiting, by action: sent, slipped (sent truncated), dropped.",
                    &["action"]
                );
                ["sent", "slipped", "dropped"].map(|a| v.with_label_values(&[a]))
            },
            tcp_open: gauge(TCP_CONNECTIONS, "Open DNS-over-TCP connections."),
            tcp_refused: counter(
                TCP_REFUSED,
                "TCP connections closed at once: the client had tcp_max_per_client open.",
            ),
            tcp_evicted: counter(
                TCP_EVICTED,
                "TCP connections closed to make room when tcp_max_connections were open.",
            ),
            tcp_timeouts: {
                let v = vec_of!(
                    IntCounterVec,
                    TCP_TIMEOUTS,
                    "TCP connections closed for a timeout: idle between queries, or io (a query or answer too slow).",
                    &["kind"]
                );
                ["idle", "io"].map(|k| v.with_label_values(&[k]))
            },
            registry,
        };
        for result in ["success", "failure"] {
            m.reloads.with_label_values(&[result]);
        }
        Arc::new(m)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        encoder.encode_utf8(&self.registry.gather(), &mut out).expect("text encoding does not fail");
        out
    }
}

/// What signing has done: the signer (per-query plane) counts, the registry reads.
#[derive(Debug, Default)]
pub struct SignCounters {
    /// Signatures made over cacheable RRsets (static and GSLB).
    pub rrsets: AtomicU64,
    /// Signatures made over a compact denial of a name that does not exist.
    pub denials: AtomicU64,
    /// Times the GSLB part of the signature cache was full and emptied.
    pub evictions: AtomicU64,
    /// Entries in the cache (after the last insert).
    pub entries: AtomicU64,
}

struct SignCountersHandle(Arc<SignCounters>, [Desc; 3]);

impl Collector for SignCountersHandle {
    fn desc(&self) -> Vec<&Desc> {
        self.1.iter().collect()
    }
    fn collect(&self) -> Vec<MetricFamily> {
        let c = &self.0;
        let family = |name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>| {
            let mut mf = MetricFamily::default();
            mf.set_name(name.to_owned());
            mf.set_help(help.to_owned());
            mf.set_field_type(kind);
            mf.set_metric(metrics);
            mf
        };
        let counter = |v: u64, labels: Vec<LabelPair>| {
            let mut counter = Counter::default();
            counter.set_value(v as f64);
            let mut m = Metric::from_label(labels);
            m.set_counter(counter);
            m
        };
        let kind = |k: &str| {
            let mut l = LabelPair::default();
            l.set_name("kind".to_owned());
            l.set_value(k.to_owned());
            vec![l]
        };
        let mut gauge = prometheus::proto::Gauge::default();
        gauge.set_value(c.entries.load(Ordering::Relaxed) as f64);
        let mut entries = Metric::default();
        entries.set_gauge(gauge);
        vec![
            family(
                DNSSEC_SIGNATURES,
                &self.1[0].help,
                MetricType::COUNTER,
                vec![
                    counter(c.rrsets.load(Ordering::Relaxed), kind("rrset")),
                    counter(c.denials.load(Ordering::Relaxed), kind("denial")),
                ],
            ),
            family(DNSSEC_CACHE_ENTRIES, &self.1[1].help, MetricType::GAUGE, vec![entries]),
            family(
                DNSSEC_CACHE_EVICTIONS,
                &self.1[2].help,
                MetricType::COUNTER,
                vec![counter(c.evictions.load(Ordering::Relaxed), vec![])],
            ),
        ]
    }
}

/// Registers the shared counters (the registry takes ownership of a collector).
struct QueryCountersHandle(Arc<QueryCounters>);

impl Collector for QueryCountersHandle {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }
    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_counts_become_series_with_bounded_labels() {
        let m = Metrics::new();
        let slots = m.queries.slots("gslb.example.org.", &["us-east", "eu-west"]);
        assert_eq!(slots, vec![1, 2]);
        m.queries.count(qtype_index(1), rcode_index(0), slots[1]);
        m.queries.count(qtype_index(1), rcode_index(0), slots[1]);
        m.queries.count(qtype_index(65), rcode_index(3), 0);
        let text = m.render();
        assert!(
            text.contains(
                r#"switchyard_dns_queries_total{qtype="A",rcode="NOERROR",region="eu-west",zone="gslb.example.org"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"switchyard_dns_queries_total{qtype="other",rcode="NXDOMAIN",region="none",zone="gslb.example.org"} 1"#
        ));
        assert!(!text.contains("us-east"), "no zero series");
        // A reload that reorders regions keeps each name's slot.
        assert_eq!(m.queries.slots("gslb.example.org.", &["eu-west", "ap-southeast", "us-east"]), vec![2, 3, 1]);
    }
}
