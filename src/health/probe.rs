//! Probes: one attempt at one target, bounded by the check's timeout.
//!
//! A probe never panics and never waits past its timeout: a hung target costs exactly
//! one timeout. What it returns is data ([`Failure`] says why, in a bounded set of
//! kinds fit for metric labels), which the engine feeds to hysteresis.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::pgconn;
use super::writer::{DbStatus, Role, Standby};
use crate::config::{CheckConfig, CheckKind, HttpCheck};

/// Why a probe failed. `kind` is one of a fixed set; `detail` is for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Timeout,
    Refused,
    Connect,
    Tls,
    Status,
    Body,
    Protocol,
    Database,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Refused => "refused",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Status => "status",
            FailureKind::Body => "body",
            FailureKind::Protocol => "protocol",
            FailureKind::Database => "database",
        }
    }
}

impl Failure {
    /// A few words a person reads at a glance ("connection refused", "HTTP 503",
    /// "timeout after 1s"); the whole `detail` stays for logs and a click away.
    pub fn short(&self) -> String {
        let d = &self.detail;
        match self.kind {
            FailureKind::Timeout => d
                .strip_prefix("no answer within ")
                .map_or_else(|| "timeout".to_owned(), |t| format!("timeout after {t}")),
            FailureKind::Refused => "connection refused".to_owned(),
            FailureKind::Connect if d.contains("dns error") || d.contains("failed to lookup") => {
                "name does not resolve".to_owned()
            }
            FailureKind::Connect => "cannot connect".to_owned(),
            FailureKind::Tls => "TLS handshake failed".to_owned(),
            FailureKind::Status => d
                .strip_prefix("status ")
                .and_then(|s| s.split_whitespace().next())
                .map_or_else(|| "unexpected HTTP status".to_owned(), |code| format!("HTTP {code}")),
            FailureKind::Body => "unexpected body".to_owned(),
            FailureKind::Protocol => "protocol error".to_owned(),
            FailureKind::Database => "database error".to_owned(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

#[cfg(test)]
mod short_tests {
    use super::*;

    #[test]
    fn short_reasons() {
        let f = |kind, detail: &str| fail(kind, detail).short();
        assert_eq!(f(FailureKind::Timeout, "no answer within 1s"), "timeout after 1s");
        assert_eq!(f(FailureKind::Status, "status 503 Service Unavailable"), "HTTP 503");
        assert_eq!(f(FailureKind::Refused, "Connection refused (os error 111)"), "connection refused");
        assert_eq!(
            f(FailureKind::Connect, "error sending request: dns error: failed to lookup"),
            "name does not resolve"
        );
    }
}

fn fail(kind: FailureKind, detail: impl Into<String>) -> Failure {
    Failure { kind, detail: detail.into() }
}

/// What a successful probe saw: nothing more for gateways, a status for databases.
pub type Outcome = Result<Option<DbStatus>, Failure>;

/// The most body a check reads while looking for `body_contains`.
const BODY_LIMIT: usize = 64 * 1024;

/// A check ready to run: its HTTP clients are built once.
pub struct Prober {
    pub config: CheckConfig,
    http: Option<reqwest::Client>,
    replica_http: Option<reqwest::Client>,
    pg: Option<pgconn::Connector>,
    /// A PostgreSQL standby's last WAL receipt time seen while streaming (the server's
    /// clock, Unix seconds): when the receiver stops, lag grows from there.
    last_receipt: std::sync::Mutex<Option<f64>>,
}

impl Prober {
    pub fn new(config: CheckConfig) -> Result<Prober, String> {
        let (http, replica_http) = match &config.kind {
            CheckKind::Http(h) => (Some(client(h, config.timeout, config.source)?), None),
            CheckKind::HttpRole { primary, replica } => (
                Some(client(primary, config.timeout, config.source)?),
                replica.as_ref().map(|r| client(r, config.timeout, config.source)).transpose()?,
            ),
            CheckKind::Tcp { .. } | CheckKind::Postgres { .. } => (None, None),
        };
        let pg = match &config.kind {
            CheckKind::Postgres { dsn } => Some(pgconn::Connector::new(dsn)),
            _ => None,
        };
        Ok(Prober { config, http, replica_http, pg, last_receipt: std::sync::Mutex::new(None) })
    }

    /// One attempt, never longer than the timeout.
    pub async fn probe(&self) -> Outcome {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.attempt()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(fail(FailureKind::Timeout, format!("no answer within {timeout:?}"))),
        }
    }

    async fn attempt(&self) -> Outcome {
        match &self.config.kind {
            CheckKind::Http(h) => http(self.http.as_ref().expect("built"), h).await.map(|_| None),
            CheckKind::Tcp { target } => tcp(target, self.config.source).await.map(|_| None),
            CheckKind::Postgres { .. } => {
                postgres(self.pg.as_ref().expect("built"), self.config.source, &self.last_receipt).await.map(Some)
            }
            CheckKind::HttpRole { primary, replica } => {
                let is_primary = http(self.http.as_ref().expect("built"), primary).await;
                let role = match (is_primary, replica, &self.replica_http) {
                    (Ok(()), _, _) => Role::Primary { timeline: 0 },
                    // It answered, and not as primary; the endpoint vouches for its lag.
                    (Err(e), None, _) if e.kind == FailureKind::Status => Role::Replica { lag: Some(0.0) },
                    (Err(e), Some(r), Some(client)) if e.kind == FailureKind::Status => {
                        http(client, r).await?;
                        Role::Replica { lag: Some(0.0) }
                    }
                    (Err(e), _, _) => return Err(e),
                };
                Ok(Some(DbStatus::of(role)))
            }
        }
    }
}

fn client(h: &HttpCheck, timeout: Duration, source: Option<std::net::IpAddr>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .local_address(source)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .http1_only()
        // A fresh connection per probe: a gateway that stops accepting is seen at once.
        .pool_max_idle_per_host(0)
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION"), " health-check"));
    if let Some(path) = &h.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("CA file {} has no usable certificate: {e}", path.display()))?;
        b = b.tls_certs_only(certs);
    }
    if h.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(sni) = &h.sni {
        let url = reqwest::Url::parse(&h.url).map_err(|e| e.to_string())?;
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(443);
        let addr: SocketAddr = format!("{host}:{port}")
            .parse()
            .or_else(|_| format!("[{host}]:{port}").parse())
            .map_err(|_| format!("with `sni`, the URL's host must be an IP address, not `{host}`"))?;
        b = b.resolve(sni, addr);
    }
    b.build().map_err(|e| e.to_string())
}

/// The URL actually requested: with `sni`, its host is the SNI name (resolved to the
/// configured address by the client).
fn request_url(h: &HttpCheck) -> String {
    match &h.sni {
        Some(sni) => match reqwest::Url::parse(&h.url) {
            Ok(mut u) => {
                let _ = u.set_host(Some(sni));
                u.to_string()
            }
            Err(_) => h.url.clone(),
        },
        None => h.url.clone(),
    }
}

fn classify(e: &reqwest::Error) -> Failure {
    use std::error::Error;
    let mut chain = String::new();
    let mut source: Option<&dyn Error> = Some(e);
    while let Some(s) = source {
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else if lower.contains("connection refused") {
        FailureKind::Refused
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        FailureKind::Tls
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Protocol
    };
    fail(kind, chain)
}

async fn http(client: &reqwest::Client, h: &HttpCheck) -> Result<(), Failure> {
    let method = reqwest::Method::from_bytes(h.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method, request_url(h));
    for (k, v) in &h.headers {
        req = req.header(k, v.expose());
    }
    let mut resp = req.send().await.map_err(|e| classify(&e))?;
    let status = resp.status().as_u16();
    let ok = if h.expect_status.is_empty() { (200..300).contains(&status) } else { h.expect_status.contains(&status) };
    if !ok {
        return Err(fail(FailureKind::Status, format!("status {status}")));
    }
    let Some(needle) = &h.body_contains else {
        return Ok(());
    };
    // Read only as much as needed, and never more than BODY_LIMIT.
    let mut seen: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_LIMIT.saturating_sub(seen.len());
                seen.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if contains(&seen, needle.as_bytes()) {
                    return Ok(());
                }
                if seen.len() >= BODY_LIMIT {
                    return Err(fail(FailureKind::Body, format!("no `{needle}` in the first {BODY_LIMIT} bytes")));
                }
            }
            Ok(None) => {
                return Err(fail(FailureKind::Body, format!("body does not contain `{needle}`")));
            }
            Err(e) => return Err(classify(&e)),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

async fn tcp(target: &str, source: Option<std::net::IpAddr>) -> Result<(), Failure> {
    let connected = match source {
        None => TcpStream::connect(target).await,
        Some(ip) => from_source(target, ip).await,
    };
    match connected {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(fail(FailureKind::Refused, e.to_string())),
        Err(e) => Err(fail(FailureKind::Connect, e.to_string())),
    }
}

/// Connects to `target` (host:port) from the local address `source`.
pub(super) async fn from_source(target: &str, source: std::net::IpAddr) -> std::io::Result<TcpStream> {
    let addr = tokio::net::lookup_host(target)
        .await?
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| std::io::Error::other(format!("`{target}` has no address of the family of {source}")))?;
    let socket = if source.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// What a PostgreSQL member is: its role, the cluster's system identifier, and for a
/// standby how far behind it is. The timeline is read from the current WAL file name,
/// which changes at promotion (`pg_control_checkpoint()` keeps the old timeline until
/// the next checkpoint). The standby's lag comes with the WAL receiver's state, so that
/// a standby cut off from its upstream is never reported as current (see [`standby_lag`]).
const STATUS_QUERY: &str = "SELECT pg_is_in_recovery(), \
     (SELECT system_identifier FROM pg_control_system())::text, \
     CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END, \
     EXTRACT(EPOCH FROM now())::float8, \
     CASE WHEN pg_is_in_recovery() AND pg_last_wal_receive_lsn() IS NOT NULL \
               AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0::float8 \
          WHEN pg_is_in_recovery() THEN EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END, \
     EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp())::float8, \
     (SELECT status FROM pg_stat_wal_receiver LIMIT 1), \
     (SELECT EXTRACT(EPOCH FROM last_msg_receipt_time)::float8 FROM pg_stat_wal_receiver LIMIT 1), \
     (SELECT conninfo FROM pg_stat_wal_receiver LIMIT 1), \
     current_setting('cluster_name'), \
     pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')";

/// The member's own standbys as it sees them: replay lag and bytes not yet replayed.
const STANDBYS_QUERY: &str = "SELECT application_name, EXTRACT(EPOCH FROM replay_lag)::float8, \
     pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, \
                     replay_lsn)::float8 \
     FROM pg_stat_replication WHERE state = 'streaming'";

async fn postgres(
    pg: &pgconn::Connector,
    source: Option<std::net::IpAddr>,
    last_receipt: &std::sync::Mutex<Option<f64>>,
) -> Result<DbStatus, Failure> {
    // Connection errors never include the password; the DSN is not printed.
    let (client, task) = pg.connect(source).await?;
    let rows = async {
        let status = client.query_one(STATUS_QUERY, &[]).await?;
        let standbys = client.query(STANDBYS_QUERY, &[]).await?;
        Ok::<_, tokio_postgres::Error>((status, standbys))
    }
    .await;
    drop(client);
    task.abort();
    let (row, standby_rows) = rows.map_err(|e| fail(FailureKind::Database, e.to_string()))?;
    let system_id: Option<String> = row.get(1);
    // Without it the member could not be told from another cluster's: not trusted.
    let system_id = system_id
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| fail(FailureKind::Database, "cannot read the system identifier (pg_control_system())"))?;
    let system_id = Some(system_id);
    let standbys = standby_rows
        .iter()
        .map(|r| Standby {
            name: r.get::<_, Option<String>>(0).unwrap_or_default(),
            lag: r.get(1),
            bytes: r.get::<_, Option<f64>>(2).map(|b| b.max(0.0) as u64),
        })
        .collect();
    let in_recovery: bool = row.get(0);
    let can_read_stats: bool = row.get(10);
    if !can_read_stats {
        // Without it, the replication views read as NULL, with no error: a streaming
        // standby would look cut off, and a primary would not see its standbys.
        return Err(fail(
            FailureKind::Database,
            "the probe's role cannot read replication state: GRANT pg_monitor (or pg_read_all_stats) to it",
        ));
    }
    if !in_recovery {
        let walfile: Option<String> = row.get(2);
        let timeline = walfile
            .as_deref()
            .and_then(|w| w.get(..8))
            .and_then(|t| u32::from_str_radix(t, 16).ok())
            .ok_or_else(|| fail(FailureKind::Database, "cannot read the timeline"))?;
        return Ok(DbStatus { role: Role::Primary { timeline }, system_id, name: None, standbys });
    }
    let receiver = Receiver {
        now: row.get(3),
        replay_lag: row.get(4),
        replay_at: row.get(5),
        status: row.get(6),
        receipt: row.get(7),
    };
    let conninfo: Option<String> = row.get(8);
    let cluster_name: Option<String> = row.get(9);
    let lag = {
        let mut remembered = last_receipt.lock().expect("not poisoned");
        standby_lag(&receiver, &mut remembered)
    };
    let name = upstream_name(conninfo.as_deref(), cluster_name.as_deref());
    Ok(DbStatus { role: Role::Replica { lag }, system_id, name: Some(name), standbys })
}

/// A standby's WAL receiver and replay, as one probe read them (the server's clock, Unix
/// seconds).
#[derive(Debug, Clone, Default)]
struct Receiver {
    now: f64,
    /// 0 when all received WAL is replayed, else the age of the last replayed commit.
    replay_lag: Option<f64>,
    replay_at: Option<f64>,
    /// `pg_stat_wal_receiver.status`; `None` when no receiver runs.
    status: Option<String>,
    receipt: Option<f64>,
}

/// A standby's lag in seconds; `None` when it cannot be known. Streaming: the replay lag
/// (0 when everything received is replayed). Not streaming: the time since the last
/// message received, as last seen (`remembered`, kept between probes) or, failing
/// that, since the last replayed commit, which is older still. It never stays 0.
fn standby_lag(r: &Receiver, remembered: &mut Option<f64>) -> Option<f64> {
    if r.status.as_deref() == Some("streaming") {
        if let Some(t) = r.receipt {
            *remembered = Some(remembered.map_or(t, |m| m.max(t)));
        }
        return r.replay_lag.map(|l| l.max(0.0));
    }
    let last = [*remembered, r.receipt].into_iter().flatten().reduce(f64::max).or(r.replay_at)?;
    Some((r.now - last).max(0.0))
}

/// How a standby's upstream names it in `pg_stat_replication`: the `application_name` in
/// its receiver's connection string, else `cluster_name`, else PostgreSQL's default.
fn upstream_name(conninfo: Option<&str>, cluster_name: Option<&str>) -> String {
    let from_conninfo = conninfo.and_then(|c| {
        c.split_whitespace()
            .find_map(|kv| kv.strip_prefix("application_name="))
            .map(|v| v.trim_matches('\'').to_owned())
    });
    from_conninfo
        .or_else(|| cluster_name.filter(|c| !c.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| "walreceiver".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_cut_off_ages_from_its_last_message() {
        let mut remembered = None;
        let streaming = |now: f64| Receiver {
            now,
            replay_lag: Some(0.0),
            replay_at: Some(now - 600.0),
            status: Some("streaming".into()),
            receipt: Some(now - 0.1),
        };
        assert_eq!(standby_lag(&streaming(1000.0), &mut remembered), Some(0.0));
        assert_eq!(remembered, Some(999.9));
        // The receiver stops: lag grows from the last message seen, not 0.
        let stopped = |now: f64| Receiver { now, replay_lag: Some(0.0), replay_at: Some(400.0), ..Receiver::default() };
        let lag = standby_lag(&stopped(1010.0), &mut remembered).unwrap();
        assert!((lag - 10.1).abs() < 1e-9, "{lag}");
        // Nothing remembered (a restart): the last replayed commit, older still.
        assert_eq!(standby_lag(&stopped(1010.0), &mut None), Some(610.0));
        // Nothing at all: unknown.
        assert_eq!(standby_lag(&Receiver { now: 5.0, ..Receiver::default() }, &mut None), None);
        // Restarting with a receipt time in the row: the later of the two.
        let waiting = Receiver { status: Some("waiting".into()), receipt: Some(1005.0), ..stopped(1010.0) };
        assert_eq!(standby_lag(&waiting, &mut remembered), Some(5.0));
    }

    #[test]
    fn upstream_names() {
        assert_eq!(upstream_name(Some("user=r host=10.0.0.1 application_name=pg-eu port=5432"), Some("x")), "pg-eu");
        assert_eq!(upstream_name(Some("user=r host=10.0.0.1"), Some("main")), "main");
        assert_eq!(upstream_name(None, Some("")), "walreceiver");
    }
}
