//! The configuration file as written: serde structs that mirror the TOML, with the
//! source span of every value a later check may need to point at.
//!
//! Nothing here checks meaning (that a region exists, that an address parses): that is
//! `validate`'s job, which can then report every problem at once. `Deserialize` is used
//! only in this module.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

/// The top-level sections. Each one is deserialized on its own (see `super::load`), so
/// that a type error in one region does not hide the errors in the next.
pub const SECTIONS: &[&str] = &[
    "server",
    "admin",
    "rrl",
    "defaults",
    "health",
    "fleet",
    "notify",
    "zone",
    "dnssec",
    "regions",
    "clusters",
    "jurisdictions",
    "names",
    "latency",
];

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Addresses to serve DNS on, UDP and TCP each.
    #[serde(default)]
    pub listen: Option<S<Vec<S<String>>>>,
    /// Path of the GeoIP database, relative to the config file.
    pub geoip_db: Option<S<String>>,
    /// Use the EDNS Client Subnet option when a query carries one.
    pub ecs: Option<bool>,
    /// Resolvers whose ECS is trusted; empty or absent: all.
    pub ecs_trusted: Option<Vec<S<String>>>,
    /// The largest UDP payload we offer in EDNS.
    pub edns_udp_size: Option<S<u16>>,
    /// Answer the common UDP queries on the fast path (default true).
    pub fast_path: Option<bool>,
    /// UDP sockets (and threads) per listen address, sharing it with SO_REUSEPORT.
    pub udp_workers: Option<S<u32>>,
    /// Seconds a TCP connection may sit idle between queries.
    pub tcp_idle_timeout: Option<S<u64>>,
    /// Seconds to receive the rest of a TCP query once it began, and to write its answer.
    pub tcp_io_timeout: Option<S<u64>>,
    /// Open TCP connections in all.
    pub tcp_max_connections: Option<S<u64>>,
    /// Open TCP connections from one client (an IPv4 address or an IPv6 /64).
    pub tcp_max_per_client: Option<S<u64>>,
    /// Answers to CHAOS TXT queries; absent: REFUSED.
    pub chaos: Option<Chaos>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Chaos {
    pub version: Option<String>,
    pub id: Option<String>,
}

/// `[admin]`: the HTTP admin server.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Default `127.0.0.1:9353`.
    pub listen: Option<S<String>>,
    pub enabled: Option<bool>,
    /// A file holding the bearer token for drain/undrain and reload; else the
    /// `SWITCHYARD_ADMIN_TOKEN` environment variable.
    pub token_file: Option<S<String>>,
}

/// `[rrl]`: response rate limiting for UDP.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rrl {
    pub enabled: Option<bool>,
    pub responses_per_second: Option<S<u32>>,
    pub slip: Option<S<u32>>,
    pub ipv4_prefix: Option<S<u8>>,
    pub ipv6_prefix: Option<S<u8>>,
    pub exempt: Option<Vec<S<String>>>,
}

/// `[fleet]`: the switchyard instances that serve one zone share what they see, and
/// decide together, through a NATS JetStream key-value bucket.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// This instance's name among the vantage points; default: the host name.
    pub name: Option<S<String>>,
    /// NATS server URLs.
    pub servers: Option<S<Vec<S<String>>>>,
    /// The key-value bucket (operator actions go to `BUCKET-ops`).
    pub bucket: Option<S<String>>,
    /// A NATS credentials file (JWT and NKey seed).
    pub credentials_file: Option<S<String>>,
    /// A file holding a NATS token.
    pub token_file: Option<S<String>>,
    /// PEM CA certificates to verify the NATS servers' TLS with (and require TLS).
    pub ca_file: Option<S<String>>,
    /// How many fresh vantages must see a region down: `"majority"`, a number, or a
    /// fraction such as 0.5.
    pub quorum: Option<S<Quorum>>,
    /// How long a vantage's observations count without being refreshed.
    pub observation_ttl: Option<S<Dur>>,
    /// How long to serve the last shared verdict when NATS or the quorum is lost,
    /// before deciding on this instance's own observations.
    pub shared_grace: Option<S<Dur>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Quorum {
    Keyword(String),
    Count(i64),
    Fraction(f64),
}

/// Defaults for every `[names.*]` entry.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub ttl: Option<S<u32>>,
    pub failover_ttl: Option<S<u32>>,
    pub answers: Option<S<u32>>,
    pub when_all_down: Option<S<WhenAllDown>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum WhenAllDown {
    /// `"fail_open"` or `"servfail"`.
    Keyword(String),
    /// `{ fallback = ["192.0.2.99"] }` or `{ cname = "sorry.example.org." }`.
    Answer(FallbackAnswer),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FallbackAnswer {
    pub fallback: Option<Vec<String>>,
    pub cname: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub origin: S<String>,
    /// Default TTL of static records.
    pub ttl: Option<S<u32>>,
    /// Static records (and the SOA and apex NS, if `soa`/`ns` are not given) from an
    /// RFC 1035 master file, relative to the config file.
    pub file: Option<S<String>>,
    pub soa: Option<S<Soa>>,
    pub ns: Option<S<Vec<S<NameServer>>>>,
    #[serde(default)]
    pub records: Vec<S<StaticRecord>>,
}

/// `[dnssec]`: sign the zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dnssec {
    /// The zone's keys (files written by `switchyard dnssec keygen`).
    pub keys: S<Vec<S<DnssecKey>>>,
    /// How long a signature is valid (default 14 days).
    pub validity: Option<S<Dur>>,
    /// Sign again when less than this is left (default 7 days).
    pub refresh: Option<S<Dur>>,
    /// Inception this far in the past (default 1 hour).
    pub inception: Option<S<Dur>>,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets (default: the SOA's TTL).
    pub dnskey_ttl: Option<S<u32>>,
    /// Signed GSLB RRsets kept (default 10000).
    pub cache_size: Option<S<u64>>,
    /// Publish CDS and CDNSKEY at the apex (default true).
    pub cds: Option<bool>,
}

/// A key file, as `switchyard dnssec keygen` writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub zone: String,
    pub algorithm: u8,
    pub role: String,
    pub key_tag: u16,
    #[allow(dead_code)]
    pub created: String,
    /// PKCS#8, base64.
    pub private_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecKey {
    pub file: S<String>,
    /// false: published, not signing (default true).
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Soa {
    pub mname: Option<S<String>>,
    pub rname: S<String>,
    pub serial: Option<u32>,
    pub refresh: Option<u32>,
    pub retry: Option<u32>,
    pub expire: Option<u32>,
    /// The negative-caching TTL (RFC 2308).
    pub minimum: Option<u32>,
    pub ttl: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameServer {
    pub name: S<String>,
    #[serde(default)]
    pub ipv4: Vec<S<String>>,
    #[serde(default)]
    pub ipv6: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRecord {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub rtype: S<String>,
    pub ttl: Option<u32>,
    pub values: S<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// `[latitude, longitude]` in degrees.
    pub location: Option<S<Vec<f64>>>,
    #[serde(default)]
    pub a: Vec<S<String>>,
    #[serde(default)]
    pub aaaa: Vec<S<String>>,
    pub cname: Option<S<String>>,
    pub weight: Option<S<u32>>,
    /// Geoproximity bias in percent, -99..=99: a positive bias pulls clients in.
    pub bias: Option<S<i32>>,
    #[serde(default)]
    pub drained: bool,
    /// Probes of the region's gateways.
    #[serde(default)]
    pub checks: Vec<S<Check>>,
    /// How checks combine: `"all"` (default), `"any"` or `{ quorum = N }`.
    pub health: Option<S<HealthRule>>,
    /// The region's database member, the older form of a one-member-per-region
    /// cluster (read as the members of a cluster named `default`).
    pub database: Option<S<Check>>,
}

/// `[clusters.NAME]`: one database cluster (a primary and its standbys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The cluster's PostgreSQL system identifier; absent: learned from its members.
    pub system_identifier: Option<S<String>>,
    /// How long the last writer is kept when no member reports primary.
    pub writer_grace: Option<S<Dur>>,
    /// How old the last observed primary may be for `fail_open` to answer it.
    pub fail_open_max_age: Option<S<Dur>>,
    /// Member name → member.
    pub members: Option<S<IndexMap<S<String>, S<Member>>>>,
}

/// `[clusters.NAME.members.MEMBER]`: where a member is, how it is probed, and what a
/// client connects to. The probe keys are a check's (`kind` is `postgres` or `http_role`).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub region: S<String>,
    /// What clients connect to; absent: the region's own `a`/`aaaa`/`cname`.
    #[serde(default)]
    pub a: Vec<S<String>>,
    #[serde(default)]
    pub aaaa: Vec<S<String>>,
    pub cname: Option<S<String>>,
    /// How its upstream's `pg_stat_replication` names this standby; absent: what the
    /// standby reports.
    pub application_name: Option<S<String>>,
    pub kind: S<String>,
    pub url: Option<S<String>>,
    pub dsn: Option<S<String>>,
    pub replica_url: Option<S<String>>,
    pub method: Option<S<String>>,
    pub expect_status: Option<S<Vec<u16>>>,
    pub body_contains: Option<String>,
    pub headers: Option<IndexMap<String, String>>,
    pub sni: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    pub insecure: Option<bool>,
    pub source: Option<S<String>>,
    pub interval: Option<S<Dur>>,
    pub timeout: Option<S<Dur>>,
    pub jitter: Option<S<Dur>>,
    pub rise: Option<S<u32>>,
    pub fall: Option<S<u32>>,
}

impl Member {
    /// The member's probe, as a check.
    pub fn check(&self) -> Check {
        Check {
            kind: self.kind.clone(),
            url: self.url.clone(),
            target: None,
            dsn: self.dsn.clone(),
            replica_url: self.replica_url.clone(),
            method: self.method.clone(),
            expect_status: self.expect_status.clone(),
            body_contains: self.body_contains.clone(),
            headers: self.headers.clone(),
            sni: self.sni.clone(),
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
            source: self.source.clone(),
            interval: self.interval.clone(),
            timeout: self.timeout.clone(),
            jitter: self.jitter.clone(),
            rise: self.rise.clone(),
            fall: self.fall.clone(),
        }
    }
}

/// A duration: seconds as a number, or text such as `"500ms"`, `"2s"`, `"1m"`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Dur {
    Seconds(f64),
    Text(String),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum HealthRule {
    Keyword(String),
    Quorum { quorum: u32 },
}

/// One probe. Which keys apply depends on `kind`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// `http`, `https`, `tcp`, `postgres`, `http_role`.
    pub kind: S<String>,
    /// http/https/http_role: the URL to request.
    pub url: Option<S<String>>,
    /// tcp: `host:port` to connect to.
    pub target: Option<S<String>>,
    /// postgres: a libpq-style connection string (the password is never logged).
    pub dsn: Option<S<String>>,
    /// http_role: the URL that answers 200 on a healthy replica (Patroni `/replica`).
    pub replica_url: Option<S<String>>,
    pub method: Option<S<String>>,
    /// Status codes that count as healthy; default: any 2xx.
    pub expect_status: Option<S<Vec<u16>>>,
    pub body_contains: Option<String>,
    pub headers: Option<IndexMap<String, String>>,
    /// https: connect to the URL's address but present this name (SNI and Host).
    pub sni: Option<S<String>>,
    /// https: PEM file of CA certificates to trust instead of the system roots.
    pub ca_file: Option<S<String>>,
    /// https: accept any certificate.
    pub insecure: Option<bool>,
    /// The local address probes are sent from.
    pub source: Option<S<String>>,
    pub interval: Option<S<Dur>>,
    pub timeout: Option<S<Dur>>,
    pub jitter: Option<S<Dur>>,
    pub rise: Option<S<u32>>,
    pub fall: Option<S<u32>>,
}

/// `[health]`: engine settings and check defaults.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub interval: Option<S<Dur>>,
    pub timeout: Option<S<Dur>>,
    pub jitter: Option<S<Dur>>,
    pub rise: Option<S<u32>>,
    pub fall: Option<S<u32>>,
    /// Seconds after a change during which affected names answer with `failover_ttl`.
    pub hold_down: Option<S<Dur>>,
    /// How long the last writer is kept when no database member reports primary.
    pub writer_grace: Option<S<Dur>>,
    /// `"wait"` (default: GSLB names get SERVFAIL until the first round) or `"assume_up"`.
    pub cold_start: Option<S<String>>,
    /// The longest the first round may take before serving with what is known.
    pub cold_start_grace: Option<S<Dur>>,
    /// Where the last known health is kept across restarts (written atomically).
    pub state_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Name {
    pub policy: S<String>,
    pub regions: Option<S<Vec<S<String>>>>,
    pub answers: Option<S<u32>>,
    pub ttl: Option<S<u32>>,
    pub failover_ttl: Option<S<u32>>,
    pub when_all_down: Option<S<WhenAllDown>>,
    /// `latency`: regions within this many ms of the best share the answer.
    pub tie_window: Option<S<u32>>,
    /// `geo`: area → ordered regions.
    pub map: Option<S<GeoMap>>,
    /// `weighted`: per-name weights overriding the regions' own.
    pub weights: Option<S<IndexMap<S<String>, S<u32>>>>,
    /// `reader`: how to rank readable regions: `"nearest"` (default) or `"latency"`.
    pub order: Option<S<String>>,
    /// `reader`: a replica lagging more than this is not readable.
    pub max_lag: Option<S<Dur>>,
    /// `writer`, `reader`: the database cluster (may be left out when there is one).
    pub cluster: Option<S<String>>,
    /// `writer`, `reader`: a member's region must also be up by its gateway checks.
    pub require_gateway: Option<bool>,
    /// `"strict"`: a client of a jurisdiction is only ever answered with regions inside
    /// it; `"none"` (default): routed by the policy alone.
    pub residency: Option<S<String>>,
    /// Strict names: what clients of unknown location get: `"open"` (default: routed
    /// as clients of no jurisdiction), `"servfail"`, or a jurisdiction's name.
    pub unlocated: Option<S<String>>,
    /// The recovery-time budget: check-config proves the config can meet it.
    pub rto: Option<S<Dur>>,
}

/// `[jurisdictions.NAME]`: regions and the clients that must stay among them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jurisdiction {
    /// The regions inside the jurisdiction.
    pub regions: S<Vec<S<String>>>,
    /// Its clients: areas as in latency rows and geo maps (continent:, country:,
    /// subdivision:, CIDR), never `default`.
    pub clients: S<Vec<S<String>>>,
    /// The in-jurisdiction "sorry" answer for strict names whose `when_all_down` is a
    /// fixed answer: `{ fallback = [...] }` or `{ cname = "..." }`.
    pub sorry: Option<S<WhenAllDown>>,
}

/// `[notify]`: whom to tell when a database writer changes.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    #[serde(default)]
    pub webhooks: Vec<S<Webhook>>,
    /// With `[fleet]`: also publish each writer change on this NATS subject.
    pub nats_subject: Option<S<String>>,
    /// Events kept per webhook while it is unreachable (the oldest go first).
    pub queue: Option<S<u32>>,
    /// How long to keep retrying one event.
    pub give_up_after: Option<S<Dur>>,
    /// The first retry's wait (doubling, up to a minute).
    pub backoff: Option<S<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: S<String>,
    /// A file holding the HMAC-SHA256 key the body is signed with.
    pub secret_file: Option<S<String>>,
    pub timeout: Option<S<Dur>>,
}

/// A `geo` map: area → ordered region names.
pub type GeoMap = IndexMap<S<String>, S<Vec<S<String>>>>;

/// `[latency]`: area → region → RTT in ms.
pub type Latency = IndexMap<S<String>, S<IndexMap<S<String>, S<u32>>>>;
