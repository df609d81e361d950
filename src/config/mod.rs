//! Configuration: one TOML file, read in three steps.
//!
//! `raw` mirrors the file (serde, unknown keys rejected); `validate` checks meaning and
//! collects **every** error with its location and a hint; the result is a [`Config`]
//! whose names are resolved to region indices, ready for `model` to compile into the
//! hot-path tables. `check-config`, start-up and reload all run this same pipeline.
//! This module does no I/O beyond reading the files the config names (itself, a zone
//! file, and checking that others exist), and never touches sockets.

pub mod budget;
pub mod dnssec;
pub mod dsn;
mod raw;
mod validate;
pub mod zonefile;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{Name, Record};
use ipnet::IpNet;

/// A validated configuration. Region references are indices into `regions`.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub rrl: RrlConfig,
    pub health: HealthSettings,
    /// Shared health with the other instances; `None`: this instance decides alone.
    pub fleet: Option<FleetConfig>,
    pub zone: ZoneConfig,
    /// Sign the zone; `None`: unsigned.
    pub dnssec: Option<dnssec::DnssecConfig>,
    pub regions: Vec<RegionConfig>,
    /// Database clusters, for `writer` and `reader` names.
    pub clusters: Vec<ClusterConfig>,
    /// Where clients' traffic must stay, for names with `residency = "strict"`.
    pub jurisdictions: Vec<JurisdictionConfig>,
    /// Whom to tell about writer changes.
    pub notify: NotifyConfig,
    pub names: Vec<NameConfig>,
    /// Latency table rows: area → RTT in ms per region (by index), `None` where unknown.
    pub latency: Vec<(Area, Vec<Option<u32>>)>,
}

/// Where the GeoIP database comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoipSource {
    File(PathBuf),
    /// The database built into the binary (`geoip_db = "default"` when no copy is
    /// installed in the usual places).
    Bundled,
}

/// Where `geoip_db = "default"` looks, in order, before using the copy built into the
/// binary: beside the config (`default.mmdb`, or `../geoip/default.mmdb` as in a clone
/// of the repository), then these install locations.
pub const GEOIP_DEFAULT_PLACES: &[&str] =
    &["/etc/switchyard/default.mmdb", "/usr/local/share/switchyard/default.mmdb", "/usr/share/switchyard/default.mmdb"];

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub geoip_db: Option<GeoipSource>,
    pub ecs: bool,
    /// Resolvers whose ECS option is used; empty: every resolver's.
    pub ecs_trusted: Vec<IpNet>,
    pub edns_udp_size: u16,
    pub tcp_idle_timeout: Duration,
    pub tcp_io_timeout: Duration,
    pub tcp_max_connections: usize,
    pub tcp_max_per_client: usize,
    /// UDP worker threads per listen address.
    pub udp_workers: usize,
    /// Whether UDP queries try the fast path first.
    pub fast_path: bool,
    pub chaos_version: Option<String>,
    pub chaos_id: Option<String>,
}

/// `[rrl]`: response rate limiting for UDP.
#[derive(Debug, Clone, PartialEq)]
pub struct RrlConfig {
    pub enabled: bool,
    pub responses_per_second: u32,
    /// Every `slip`-th limited answer is sent truncated; 0: none, 1: all.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Clients never limited (e.g. your own resolvers, monitoring).
    pub exempt: Vec<IpNet>,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            enabled: false,
            responses_per_second: 100,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: Vec::new(),
        }
    }
}

/// `[fleet]`: the instances serving one zone share observations and operator actions
/// through a NATS JetStream key-value bucket, and decide from the same merged view.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// This instance's name as a vantage point (a key token: letters, digits, `-`, `_`).
    pub name: String,
    pub servers: Vec<String>,
    /// Observations go to this bucket (entries expire after `observation_ttl`);
    /// operator actions to `BUCKET-ops` (kept).
    pub bucket: String,
    pub credentials_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub quorum: Quorum,
    pub observation_ttl: Duration,
    pub shared_grace: Duration,
}

/// How many fresh vantages it takes to call a region down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quorum {
    Majority,
    Count(u32),
    /// At least this share of the voters (0 < f <= 1).
    Fraction(f64),
}

impl Quorum {
    /// Votes needed out of `voters` (at least 1, at most `voters`).
    pub fn needed(self, voters: usize) -> usize {
        let n = match self {
            Quorum::Majority => voters / 2 + 1,
            Quorum::Count(c) => c as usize,
            Quorum::Fraction(f) => (f * voters as f64).ceil() as usize,
        };
        n.clamp(1, voters.max(1))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// None: no admin server.
    pub listen: Option<SocketAddr>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// Lower-case, fully qualified.
    pub origin: Name,
    /// The SOA record (owner: origin); its `minimum` is the negative TTL.
    pub soa: Record,
    /// NS records at the apex.
    pub ns: Vec<Record>,
    /// Static records, including the name servers' glue; owners lower-case and absolute.
    pub records: Vec<Record>,
}

#[derive(Debug, Clone)]
pub struct RegionConfig {
    pub name: String,
    /// Latitude and longitude in degrees.
    pub location: Option<(f64, f64)>,
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub cname: Option<Name>,
    pub weight: u32,
    /// Geoproximity bias, percent (-99..=99).
    pub bias: i32,
    pub drained: bool,
    /// Probes of the region's gateways.
    pub checks: Vec<CheckConfig>,
    pub rule: HealthRule,
}

/// What a client is given to connect to: addresses or one CNAME.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub cname: Option<Name>,
}

/// One database cluster: a primary and the standbys that replicate from it. The writer
/// election, split brain, grace and identity are per cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    /// The PostgreSQL system identifier every member must report; `None`: learned
    /// from a majority of the members.
    pub system_identifier: Option<u64>,
    pub writer_grace: Duration,
    /// `fail_open` may answer the last primary observed at most this long ago.
    pub fail_open_max_age: Duration,
    pub members: Vec<MemberConfig>,
}

#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub name: String,
    pub region: usize,
    /// What clients connect to (the region's answer unless the member has its own).
    pub endpoint: Endpoint,
    /// How the upstream's `pg_stat_replication` names this standby; `None`: as the
    /// standby reports it.
    pub application_name: Option<String>,
    /// The probe: `postgres` or `http_role`.
    pub check: CheckConfig,
}

/// How a region's check verdicts combine into "up".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthRule {
    All,
    Any,
    Quorum(u32),
}

/// One probe, with its schedule and hysteresis.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    /// Stable identity, e.g. `us-east/http:http://127.0.0.1:8081/healthz` (never a secret).
    pub id: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub jitter: Duration,
    /// Successes in a row to go up.
    pub rise: u32,
    /// Failures in a row to go down.
    pub fall: u32,
    /// The local address probes are sent from (not part of `id`: instances that probe
    /// the same target from different addresses share the check).
    pub source: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Http(HttpCheck),
    Tcp {
        target: String,
    },
    /// A libpq connection string, its TLS settings read: never logged, never shown.
    Postgres {
        dsn: dsn::PgDsn,
    },
    /// 200 from `url` means primary; 200 from `replica_url` a healthy replica.
    HttpRole {
        primary: HttpCheck,
        replica: Option<HttpCheck>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub url: String,
    pub method: String,
    /// Healthy status codes; empty: any 2xx.
    pub expect_status: Vec<u16>,
    pub body_contains: Option<String>,
    /// Header values may carry credentials: they are secrets.
    pub headers: Vec<(String, Secret)>,
    pub sni: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
}

/// Engine-wide health settings, from `[health]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    pub hold_down: Duration,
    pub writer_grace: Duration,
    pub cold_start: ColdStart,
    pub cold_start_grace: Duration,
    pub state_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdStart {
    /// GSLB names get SERVFAIL until the first round of checks completes (or the grace ends).
    Wait,
    /// Serve at once as if every region were up.
    AssumeUp,
}

/// How `reader` names rank the readable regions.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderOrder {
    Nearest,
    Latency { tie_window: u32 },
}

#[derive(Debug, Clone)]
pub struct NameConfig {
    /// The key under `[names]`, as written.
    pub key: String,
    /// Lower-case, fully qualified.
    pub fqdn: Name,
    pub policy: Policy,
    /// Candidate regions in configured order.
    pub regions: Vec<usize>,
    pub answers: usize,
    pub ttl: u32,
    pub failover_ttl: u32,
    pub when_all_down: AllDown,
    /// `Some`: `residency = "strict"`, with the treatment of clients of unknown location.
    pub residency: Option<Unlocated>,
    /// The recovery-time budget check-config holds the config to.
    pub rto: Option<Duration>,
}

/// A jurisdiction: regions, and the clients whose traffic must stay among them.
#[derive(Debug, Clone, PartialEq)]
pub struct JurisdictionConfig {
    pub name: String,
    /// Region indices.
    pub regions: Vec<usize>,
    /// Client areas (never `Default`); each area belongs to one jurisdiction only.
    pub clients: Vec<Area>,
    /// The in-jurisdiction fixed answer (`AllDown::Fallback`) for strict names whose
    /// all-down rule is a fixed answer.
    pub sorry: Option<AllDown>,
}

/// What a strict name answers a client whose location is unknown (no ECS, and an
/// address neither in a jurisdiction's CIDRs nor located by the GeoIP database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocated {
    /// As a client of no jurisdiction: the policy alone decides.
    Open,
    /// SERVFAIL.
    ServFail,
    /// As a client of this jurisdiction (an index into `Config::jurisdictions`).
    As(usize),
}

/// `[notify]`: writer changes told to the application.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    pub webhooks: Vec<WebhookConfig>,
    /// With a fleet: the NATS subject writer changes are also published on.
    pub nats_subject: Option<String>,
    /// Events queued per webhook while it is unreachable; the oldest are dropped.
    pub queue: usize,
    /// How long one event is retried.
    pub give_up_after: Duration,
    /// The first retry's wait; each next one doubles, up to a minute.
    pub backoff: Duration,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            webhooks: Vec::new(),
            nats_subject: None,
            queue: 64,
            give_up_after: Duration::from_secs(3600),
            backoff: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub url: String,
    /// A file holding the HMAC-SHA256 key (read when the notifier starts).
    pub secret_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    Latency {
        tie_window: u32,
    },
    Nearest,
    Geo {
        map: Vec<(Area, Vec<usize>)>,
        default: Vec<usize>,
    },
    Failover,
    /// Weights by region index (all regions, 0 where the name does not use one).
    Weighted {
        weights: Vec<u32>,
    },
    Multivalue,
    Static,
    /// The cluster's writer: the member that reports primary.
    Writer {
        cluster: usize,
        /// The member's region must be up by its gateway checks too.
        require_gateway: bool,
    },
    /// Nearest or lowest-latency region with a member of the cluster that is up and
    /// within `max_lag`.
    Reader {
        cluster: usize,
        order: ReaderOrder,
        max_lag: Duration,
        require_gateway: bool,
    },
}

impl Policy {
    pub fn kind(&self) -> &'static str {
        match self {
            Policy::Latency { .. } => "latency",
            Policy::Nearest => "nearest",
            Policy::Geo { .. } => "geo",
            Policy::Failover => "failover",
            Policy::Weighted { .. } => "weighted",
            Policy::Multivalue => "multivalue",
            Policy::Static => "static",
            Policy::Writer { .. } => "writer",
            Policy::Reader { .. } => "reader",
        }
    }
}

/// What to answer when no candidate region is up.
#[derive(Debug, Clone, PartialEq)]
pub enum AllDown {
    /// Answer as if every candidate were up (for a `writer` name: the last primary
    /// observed, within the cluster's `fail_open_max_age`).
    FailOpen,
    /// `reader` names: answer the cluster's writer, fresh by definition.
    Writer,
    ServFail,
    /// A fixed "sorry" answer.
    Fallback {
        a: Vec<Ipv4Addr>,
        aaaa: Vec<Ipv6Addr>,
        cname: Option<Name>,
    },
}

/// A client area, the key of a latency row or a geo map entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Area {
    Default,
    Continent([u8; 2]),
    Country([u8; 2]),
    /// Country and ISO 3166-2 subdivision code, e.g. `US` + `CA`.
    Subdivision([u8; 2], String),
    Cidr(IpNet),
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = |c: &[u8; 2]| String::from_utf8_lossy(c).into_owned();
        match self {
            Area::Default => f.write_str("default"),
            Area::Continent(c) => write!(f, "continent:{}", code(c)),
            Area::Country(c) => write!(f, "country:{}", code(c)),
            Area::Subdivision(c, s) => write!(f, "subdivision:{}-{}", code(c), s),
            Area::Cidr(net) => write!(f, "cidr:{net}"),
        }
    }
}

/// The continent codes GeoIP databases use.
pub const CONTINENTS: &[&str] = &["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// A string that must never be shown (a DSN, a token, a header value): `Debug` prints a
/// placeholder, so a config or a check can be logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A DSN with its password replaced, fit for logs and status pages.
pub fn redact_dsn(dsn: &str) -> String {
    if let Some(rest) = dsn.strip_prefix("postgres://").or_else(|| dsn.strip_prefix("postgresql://")) {
        // URL form: postgres://user:secret@host/db
        let scheme = &dsn[..dsn.len() - rest.len()];
        let (auth, host) = rest.split_once('@').unwrap_or(("", rest));
        let user = auth.split(':').next().unwrap_or("");
        let query = host.split_once('?').map(|(h, _)| h).unwrap_or(host);
        return if auth.is_empty() { format!("{scheme}{query}") } else { format!("{scheme}{user}@{query}") };
    }
    // Key-value form: drop password=...; values may be quoted.
    let mut out = Vec::new();
    let mut rest = dsn.trim();
    while !rest.is_empty() {
        let (pair, tail) = match rest.find('=') {
            Some(eq) => {
                let key = rest[..eq].trim();
                let after = rest[eq + 1..].trim_start();
                let end = if let Some(q) = after.strip_prefix('\'') {
                    q.find('\'').map_or(after.len(), |i| i + 2)
                } else {
                    after.find(char::is_whitespace).unwrap_or(after.len())
                };
                ((key, &after[..end]), after[end..].trim_start())
            }
            None => (("", rest), ""),
        };
        if !pair.0.eq_ignore_ascii_case("password") && !pair.0.is_empty() {
            out.push(format!("{}={}", pair.0, pair.1));
        }
        rest = tail;
    }
    out.join(" ")
}

/// Parses a duration: a number of seconds, or `500ms`, `2s`, `1.5s`, `1m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration such as \"2s\" or \"500ms\""))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => {
            return Err(format!("unknown duration unit `{other}` in `{s}` (ms, s, m, h, d)"));
        }
    };
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("`{s}` is out of range"))
}

impl Area {
    /// Parses `default`, `continent:EU`, `country:GB`, `subdivision:US-CA`,
    /// `cidr:192.0.2.0/24` or a bare CIDR.
    pub fn parse(s: &str) -> Result<Area, String> {
        fn code(s: &str, what: &str) -> Result<[u8; 2], String> {
            let b = s.as_bytes();
            if b.len() == 2 && b.iter().all(u8::is_ascii_uppercase) {
                Ok([b[0], b[1]])
            } else {
                Err(format!("{what} code `{s}` must be two upper-case letters"))
            }
        }
        if s == "default" {
            return Ok(Area::Default);
        }
        let (kind, rest) = match s.split_once(':') {
            _ if s.parse::<IpNet>().is_ok() => ("cidr", s),
            Some((k, r)) if k.bytes().all(|b| b.is_ascii_lowercase()) => (k, r),
            _ => ("cidr", s),
        };
        match kind {
            "continent" => {
                let c = code(rest, "continent")?;
                if CONTINENTS.contains(&rest) {
                    Ok(Area::Continent(c))
                } else {
                    Err(format!("unknown continent `{rest}` (one of {})", CONTINENTS.join(" ")))
                }
            }
            "country" => Ok(Area::Country(code(rest, "country")?)),
            "subdivision" => {
                let (c, sub) =
                    rest.split_once('-').ok_or_else(|| format!("subdivision `{rest}` must look like `US-CA`"))?;
                if sub.is_empty() || sub.len() > 3 || !sub.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("subdivision `{rest}` must look like `US-CA`"));
                }
                Ok(Area::Subdivision(code(c, "country")?, sub.to_ascii_uppercase()))
            }
            "cidr" => {
                let net: IpNet =
                    rest.parse().map_err(|_| format!("`{rest}` is not a CIDR network such as 192.0.2.0/24"))?;
                if net.trunc() != net {
                    return Err(format!("`{rest}` has host bits set; did you mean {}?", net.trunc()));
                }
                Ok(Area::Cidr(net))
            }
            other => {
                Err(format!("unknown area kind `{other}` (use default, continent:, country:, subdivision: or a CIDR)"))
            }
        }
    }
}

/// One problem in a config file: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub span: Option<Range<usize>>,
    /// A place in another file the config names (a zone file), when that is where the
    /// problem is.
    pub place: Option<zonefile::Place>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic { span, place: None, message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file, with the text needed to show where each one is.
#[derive(Debug)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &d.span {
                Some(span) => {
                    let (line, col) = self.line_col(span.start);
                    writeln!(f, "{path}:{line}:{col}: error: {}", d.message)?;
                    if let Some(src) = self.text.lines().nth(line - 1) {
                        let width = self.text[span.clone()].lines().next().map_or(1, |l| l.chars().count().max(1));
                        writeln!(f, "  {line:>4} | {src}")?;
                        writeln!(f, "       | {}{}", " ".repeat(col - 1), "^".repeat(width.min(80)))?;
                    }
                }
                None => match &d.place {
                    Some(p) => {
                        writeln!(f, "{p}: error: {}", d.message)?;
                        if !p.text.is_empty() {
                            writeln!(f, "  {:>4} | {}", p.line, p.text)?;
                        }
                    }
                    None => writeln!(f, "{path}: error: {}", d.message)?,
                },
            }
            if let Some(hint) = &d.hint {
                writeln!(f, "       = hint: {hint}")?;
            }
        }
        write!(f, "{} error{} in {path}", self.diagnostics.len(), if self.diagnostics.len() == 1 { "" } else { "s" })
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is missing or unreadable (the OS error is part of the message, and not
    /// a `source`, so that it is printed once).
    #[error("cannot read config file {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{0}")]
    Invalid(Box<ConfigErrors>),
}

/// Reads and validates a config file. Relative paths inside it are taken from the
/// file's own directory.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    load_with(path, None)
}

/// [`load`], with the GeoIP database given on the command line or in the environment
/// (`--geoip`, `SWITCHYARD_GEOIP`: a path, relative to the working directory, or
/// `default`) in place of the config's `geoip_db`.
pub fn load_with(path: &Path, geoip: Option<&str>) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read { path: path.to_owned(), error })?;
    let base = path.parent().map(Path::to_owned).unwrap_or_default();
    validate::parse(&text, &base, geoip)
        .map_err(|diagnostics| LoadError::Invalid(Box::new(ConfigErrors { path: path.to_owned(), text, diagnostics })))
}

/// Parses and validates config text; `base` resolves relative paths.
pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    validate::parse(text, base, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug_print() {
        let dsn = dsn::parse("host=db password=hunter2", Path::new(".")).unwrap();
        let kind = CheckKind::Postgres { dsn };
        let shown = format!("{kind:?} {:?}", Secret::new("tok-123"));
        assert!(!shown.contains("hunter2") && !shown.contains("tok-123"), "{shown}");
    }

    #[test]
    fn dsns_lose_their_passwords() {
        let cases = [
            ("host=db port=5432 user=sy password=hunter2 dbname=postgres", "host=db port=5432 user=sy dbname=postgres"),
            ("host=db password='hunter 2' user=sy", "host=db user=sy"),
            ("postgres://sy:hunter2@db:5432/postgres?sslmode=require", "postgres://sy@db:5432/postgres"),
            ("postgresql://db/postgres", "postgresql://db/postgres"),
        ];
        for (dsn, want) in cases {
            assert_eq!(redact_dsn(dsn), want);
        }
    }

    #[test]
    fn durations() {
        for (text, ms) in [("2s", 2000), ("500ms", 500), ("1.5s", 1500), ("1m", 60_000), ("3", 3000)] {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        assert!(parse_duration("2 parsecs").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
