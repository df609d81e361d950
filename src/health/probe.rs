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
use super::writer::Role;
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

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

fn fail(kind: FailureKind, detail: impl Into<String>) -> Failure {
    Failure { kind, detail: detail.into() }
}

/// What a successful probe saw: nothing more for gateways, a role for databases.
pub type Outcome = Result<Option<Role>, Failure>;

/// The most body a check reads while looking for `body_contains`.
const BODY_LIMIT: usize = 64 * 1024;

/// A check ready to run: its HTTP clients are built once.
pub struct Prober {
    pub config: CheckConfig,
    http: Option<reqwest::Client>,
    replica_http: Option<reqwest::Client>,
    pg: Option<pgconn::Connector>,
}

impl Prober {
    pub fn new(config: CheckConfig) -> Result<Prober, String> {
        let (http, replica_http) = match &config.kind {
            CheckKind::Http(h) => (Some(client(h, config.timeout)?), None),
            CheckKind::HttpRole { primary, replica } => (
                Some(client(primary, config.timeout)?),
                replica.as_ref().map(|r| client(r, config.timeout)).transpose()?,
            ),
            CheckKind::Tcp { .. } | CheckKind::Postgres { .. } => (None, None),
        };
        let pg = match &config.kind {
            CheckKind::Postgres { dsn } => Some(pgconn::Connector::new(dsn)),
            _ => None,
        };
        Ok(Prober { config, http, replica_http, pg })
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
            CheckKind::Tcp { target } => tcp(target).await.map(|_| None),
            CheckKind::Postgres { .. } => postgres(self.pg.as_ref().expect("built")).await.map(Some),
            CheckKind::HttpRole { primary, replica } => {
                let is_primary = http(self.http.as_ref().expect("built"), primary).await;
                match (is_primary, replica, &self.replica_http) {
                    (Ok(()), _, _) => Ok(Some(Role::Primary { timeline: 0 })),
                    // It answered, and not as primary.
                    (Err(e), None, _) if e.kind == FailureKind::Status => Ok(Some(Role::Replica { lag: 0.0 })),
                    (Err(e), Some(r), Some(client)) if e.kind == FailureKind::Status => {
                        http(client, r).await.map(|_| Some(Role::Replica { lag: 0.0 }))
                    }
                    (Err(e), _, _) => Err(e),
                }
            }
        }
    }
}

fn client(h: &HttpCheck, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
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

async fn tcp(target: &str) -> Result<(), Failure> {
    match TcpStream::connect(target).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(fail(FailureKind::Refused, e.to_string())),
        Err(e) => Err(fail(FailureKind::Connect, e.to_string())),
    }
}

/// Role, timeline and lag of a PostgreSQL member. The timeline is read from the current
/// WAL file name, which changes at promotion; `pg_control_checkpoint()` keeps the old
/// timeline until the next checkpoint. A replica whose received WAL is all replayed
/// has no lag, however long the primary has been idle.
const ROLE_QUERY: &str = "SELECT pg_is_in_recovery(), \
     CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END, \
     CASE WHEN NOT pg_is_in_recovery() THEN 0::float8 \
          WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8 \
          ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END";

async fn postgres(pg: &pgconn::Connector) -> Result<Role, Failure> {
    // Connection errors never include the password; the DSN is not printed.
    let (client, task) = pg.connect().await?;
    let row = client.query_one(ROLE_QUERY, &[]).await;
    drop(client);
    task.abort();
    let row = row.map_err(|e| fail(FailureKind::Database, e.to_string()))?;
    let in_recovery: bool = row.get(0);
    if in_recovery {
        let lag: Option<f64> = row.get(2);
        // Never replayed anything: treat as far behind.
        return Ok(Role::Replica { lag: lag.unwrap_or(f64::INFINITY).max(0.0) });
    }
    let walfile: Option<String> = row.get(1);
    let timeline = walfile
        .as_deref()
        .and_then(|w| w.get(..8))
        .and_then(|t| u32::from_str_radix(t, 16).ok())
        .ok_or_else(|| fail(FailureKind::Database, "cannot read the timeline"))?;
    Ok(Role::Primary { timeline })
}
