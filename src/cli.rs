//! The subcommands: `serve`, `check-config`, `explain`, `geoip lookup`, and the admin
//! API's actions: `drain`, `undrain`, `events`.
//!
//! Each one is a thin layer over the library; `main` maps what they return to exit
//! codes (0 ok, 2 bad usage or config, 1 any other failure).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tracing::info;

use crate::app::{self, App};
use crate::geo::GeoDb;
use crate::reload::{Overrides, Signals, watch_config};
use crate::routing::{self, Client};
use crate::state::HealthView;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Authoritative GSLB DNS: the nearest healthy region, and the database writer"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS for the configured zone.
    Serve {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        geoip: GeoipArg,
        /// Listen here instead of the config's `[server] listen` (repeatable).
        #[arg(long)]
        listen: Vec<SocketAddr>,
        /// Serve the admin HTTP API here instead of the config's `[admin] listen`.
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// Also reload when the config file's content changes (checked every 2 s), for
        /// Kubernetes ConfigMaps; SIGHUP always reloads.
        #[arg(long)]
        reload_on_change: bool,
    },
    /// Serve the example config with local stand-in gateways you can stop and start.
    Demo {
        /// The config to serve; its loopback HTTP checks get stand-in gateways (default:
        /// config/example.toml in a clone, else the copy of it built into switchyard).
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        geoip: GeoipArg,
        /// Listen here instead of the config's `[server] listen` (repeatable).
        #[arg(long)]
        listen: Vec<SocketAddr>,
        /// Serve the admin HTTP API here instead of the config's `[admin] listen`.
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// Where the gateway control endpoint listens.
        #[arg(long, default_value = "127.0.0.1:18080")]
        control: SocketAddr,
    },
    /// Validate a config file (and open its GeoIP database); print every error.
    CheckConfig {
        /// The config file.
        file: PathBuf,
        #[command(flatten)]
        geoip: GeoipArg,
    },
    /// Show which answer a client would get for a name, and why.
    Explain {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        geoip: GeoipArg,
        /// The GSLB name, relative to the zone origin or fully qualified.
        #[arg(long)]
        name: String,
        /// The client address or ECS subnet, e.g. 81.2.69.0/24.
        #[arg(long)]
        client: String,
        /// Assume this region is down (repeatable).
        #[arg(long)]
        down: Vec<String>,
        /// Assume this region is drained (repeatable).
        #[arg(long)]
        drain: Vec<String>,
    },
    /// GeoIP database tools.
    Geoip {
        #[command(subcommand)]
        command: GeoipCommand,
    },
    /// DNSSEC: make keys, show what the parent needs.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
    /// Write a commented starter config and a copy of the bundled GeoIP database into DIR.
    Init {
        /// The directory to write `switchyard.toml` and `default.mmdb` into (created if
        /// missing; existing files are not overwritten).
        dir: PathBuf,
        /// The zone to serve.
        #[arg(long, default_value = "gslb.example.org.")]
        zone: String,
        /// A region as NAME=LATITUDE,LONGITUDE,ADDRESS (repeatable), e.g.
        /// eu-west=53.35,-6.26,192.0.2.2; default: one region per continent.
        #[arg(long = "region", value_name = "NAME=LAT,LON,ADDRESS")]
        regions: Vec<String>,
    },
    /// Drain a region on a running server: after the notice, no name answers with it.
    Drain {
        /// The region to drain.
        region: String,
        /// How long names that use the region answer with their failover_ttl before the
        /// drain takes effect, e.g. 60s (default: the longest TTL of those names).
        #[arg(long)]
        notice: Option<String>,
        /// Who asks (kept with the drain).
        #[arg(long)]
        by: Option<String>,
        /// Why (kept with the drain).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Put a drained region back (its names answer with failover_ttl for the hold-down).
    Undrain {
        /// The region to put back.
        region: String,
        /// Who asks (kept with the undrain).
        #[arg(long)]
        by: Option<String>,
        /// Why (kept with the undrain).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print the failover record: region transitions and writer changes, with timelines.
    Events {
        /// How far back, e.g. 1h, 30m (default: everything kept).
        #[arg(long)]
        since: Option<String>,
        /// The events as JSON, one per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// The GeoIP database in place of the config's `geoip_db`.
#[derive(Debug, clap::Args)]
pub struct GeoipArg {
    /// Use this GeoIP database (a path, or `default`: the bundled one) instead of the
    /// config's `[server] geoip_db`.
    #[arg(long = "geoip", env = "SWITCHYARD_GEOIP", value_name = "FILE")]
    path: Option<String>,
}

impl GeoipArg {
    /// As an override: `default`, or an absolute path (a relative one is taken from the
    /// working directory, not the config's).
    fn resolved(&self) -> Option<String> {
        let p = self.path.as_ref()?;
        if p == "default" || Path::new(p).is_absolute() {
            return Some(p.clone());
        }
        Some(std::env::current_dir().map_or_else(|_| p.clone(), |d| d.join(p).display().to_string()))
    }

    fn overrides(&self) -> Overrides {
        Overrides { geoip: self.resolved(), ..Overrides::default() }
    }
}

/// Where the running server's admin API is, and its token.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The server's config: its `[admin] listen` and `token_file` are used.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The admin API's address (default: the config's, else 127.0.0.1:9353).
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// A file holding the admin token (default: the config's `token_file`, else the
    /// SWITCHYARD_ADMIN_TOKEN environment variable).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum GeoipCommand {
    /// Print what a database says about an address.
    Lookup {
        /// The GeoIP database (MaxMind DB format).
        #[arg(long)]
        db: PathBuf,
        /// The address to look up.
        ip: IpAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum DnssecCommand {
    /// Make a signing key for ZONE in a new owner-only file, and print its DS record
    /// (for the parent) and its DNSKEY.
    Keygen {
        /// The zone the key signs, e.g. gslb.example.org.
        zone: String,
        /// ecdsap256sha256 (13, the default) or ed25519 (15).
        #[arg(long, default_value = "ecdsap256sha256")]
        algorithm: String,
        /// csk: one key signs everything (the default); ksk: signs the DNSKEY set only
        /// (the parent's DS points at it); zsk: signs the zone's data only.
        #[arg(long, default_value = "csk")]
        role: String,
        /// The directory to write the key file into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print the configured keys: tag, role, whether each signs, and the DS records
    /// for the parent (the same as the zone's CDS).
    Keys {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// A usage error: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config, geoip, listen, admin, reload_on_change } => {
            serve(config, Overrides { listen, admin, geoip: geoip.resolved() }, None, reload_on_change)
        }
        Command::Demo { config, geoip, listen, admin, control } => {
            let (config, written) = match config {
                Some(c) => (c, false),
                None => demo_config()?,
            };
            let served =
                serve(config.clone(), Overrides { listen, admin, geoip: geoip.resolved() }, Some(control), false);
            if written {
                let _ = std::fs::remove_file(&config);
            }
            served
        }
        Command::CheckConfig { file, geoip } => check_config(file, &geoip.overrides()),
        Command::Explain { config, geoip, name, client, down, drain } => {
            explain(config, &geoip.overrides(), name, client, down, drain)
        }
        Command::Init { dir, zone, regions } => crate::init::write(&dir, &zone, &regions),
        Command::Dnssec { command: DnssecCommand::Keygen { zone, algorithm, role, dir } } => {
            keygen(&zone, &algorithm, &role, &dir)
        }
        Command::Dnssec { command: DnssecCommand::Keys { config } } => dnssec_keys(&config),
        Command::Geoip { command: GeoipCommand::Lookup { db, ip } } => geoip_lookup(db, ip),
        Command::Drain { region, notice, by, reason, admin } => {
            let query: Vec<(&str, String)> = [("notice", notice), ("by", by), ("reason", reason)]
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect();
            print_reply(admin_call(&admin, reqwest::Method::POST, &format!("/regions/{region}/drain"), &query)?)
        }
        Command::Undrain { region, by, reason, admin } => {
            let query: Vec<(&str, String)> =
                [("by", by), ("reason", reason)].into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
            print_reply(admin_call(&admin, reqwest::Method::POST, &format!("/regions/{region}/undrain"), &query)?)
        }
        Command::Events { since, json, admin } => events(&admin, since, json),
    }
}

/// The example config, built in so that `switchyard demo` runs anywhere.
const EXAMPLE: &str = include_str!("../config/example.toml");

/// The demo's config: `config/example.toml` when run from a clone, else the built-in
/// copy written to a temporary file (its GeoIP database is the built-in one too), and
/// whether it was written.
fn demo_config() -> Result<(PathBuf, bool)> {
    let local = PathBuf::from("config/example.toml");
    if local.is_file() {
        return Ok((local, false));
    }
    let path = std::env::temp_dir().join(format!("switchyard-demo-{}.toml", std::process::id()));
    std::fs::write(&path, EXAMPLE).with_context(|| format!("writing the demo config to {}", path.display()))?;
    info!(config = %path.display(), "demo: serving the built-in example config");
    Ok((path, true))
}

/// Calls the admin API of a running server: the HTTP status and the body.
fn admin_call(
    args: &AdminArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
) -> Result<(u16, String)> {
    let config = match &args.config {
        Some(path) => Some(crate::config::load(path)?),
        None => None,
    };
    let addr = args
        .admin
        .or(config.as_ref().and_then(|c| c.admin.listen))
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9353)));
    let token_file = args.token_file.clone().or(config.as_ref().and_then(|c| c.admin.token_file.clone()));
    let token = match token_file {
        Some(p) => Some(
            std::fs::read_to_string(&p)
                .with_context(|| format!("reading the admin token file {}", p.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("SWITCHYARD_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).no_proxy().build()?;
        let mut url = reqwest::Url::parse(&format!("http://{addr}{path}")).context("the admin API's URL")?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = client.request(method, url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let reply = request.send().await.with_context(|| format!("no admin API at {addr}"))?;
        let status = reply.status().as_u16();
        Ok((status, reply.text().await?))
    })
}

/// Prints a mutation's reply; a refusal is an error (2 when the request was wrong).
fn print_reply((status, body): (u16, String)) -> Result<()> {
    match status {
        200..=299 => {
            write!(std::io::stdout().lock(), "{body}")?;
            Ok(())
        }
        400 | 401 | 403 | 404 => bail!(UsageError(format!("the admin API refused ({status}): {}", body.trim()))),
        _ => bail!("the admin API failed ({status}): {}", body.trim()),
    }
}

fn events(admin: &AdminArgs, since: Option<String>, json: bool) -> Result<()> {
    let query: Vec<(&str, String)> = since.map(|s| ("since", s)).into_iter().collect();
    let (status, body) = admin_call(admin, reqwest::Method::GET, "/events", &query)?;
    if status != 200 {
        bail!(UsageError(format!("the admin API refused ({status}): {}", body.trim())));
    }
    let v: serde_json::Value = serde_json::from_str(&body).context("the admin API's /events is not JSON")?;
    let mut out = std::io::stdout().lock();
    let events = v["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() && !json {
        writeln!(out, "no events")?;
    }
    for e in &events {
        if json {
            writeln!(out, "{e}")?;
        } else {
            writeln!(out, "{}", crate::events::describe(e))?;
        }
    }
    Ok(())
}

fn serve(path: PathBuf, overrides: Overrides, demo: Option<SocketAddr>, reload_on_change: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The signal handlers come first: a SIGHUP while the server starts is held, not fatal.
    let signals = {
        let _context = runtime.enter();
        Signals::install()?
    };
    let loaded = app::load(&path, &overrides)?;
    let config = loaded.config.clone();
    info!(config = %path.display(), zone = %config.zone.origin, names = config.names.len(),
          regions = config.regions.len(), "config loaded");
    runtime.block_on(async {
        // The demo's gateways come up before the first health round.
        let _gateways = match demo {
            Some(control) => {
                let gateways = std::sync::Arc::new(crate::demo::Gateways::start(&config)?);
                let listener = tokio::net::TcpListener::bind(control)
                    .await
                    .with_context(|| format!("demo control cannot listen on {control}"))?;
                let control = listener.local_addr()?;
                tokio::spawn(crate::demo::control(listener, gateways.clone()));
                info!(%control, "demo: stop a region's gateway with `curl -X POST http://{control}/eu-west/stop`, start it with .../eu-west/start");
                Some(gateways)
            }
            None => None,
        };
        let app = App::start(loaded, Some(path.clone()), overrides).await?;
        if reload_on_change {
            tokio::spawn(watch_config(path.clone(), app.control.clone()));
        }
        signals.reload_until_stopped(&app.control).await;
        info!("shutting down");
        app.shutdown().await
    })
}

fn check_config(path: PathBuf, overrides: &Overrides) -> Result<()> {
    let loaded = app::load(&path, overrides)?;
    let config = &loaded.config;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: ok (zone {}, {} regions, {} names, {} static records{})",
        path.display(),
        config.zone.origin,
        config.regions.len(),
        config.names.len(),
        config.zone.records.len(),
        loaded
            .geo
            .as_ref()
            .map(|g| format!(", GeoIP {} from {}", g.database_type(), g.path().display()))
            .unwrap_or_default()
    )?;
    for line in database_summary(config) {
        writeln!(out, "  {line}")?;
    }
    for j in &config.jurisdictions {
        let regions: Vec<&str> = j.regions.iter().map(|&r| config.regions[r].name.as_str()).collect();
        let clients: Vec<String> = j.clients.iter().map(|a| a.to_string()).collect();
        writeln!(out, "  jurisdiction {}: regions {}; clients {}", j.name, regions.join(", "), clients.join(", "))?;
    }
    for n in &config.names {
        let unlocated = match n.residency {
            None => continue,
            Some(crate::config::Unlocated::Open) => "routed as of no jurisdiction".to_owned(),
            Some(crate::config::Unlocated::ServFail) => "SERVFAIL".to_owned(),
            Some(crate::config::Unlocated::As(j)) => format!("treated as of {}", config.jurisdictions[j].name),
        };
        writeln!(out, "  name {}: strict residency; clients of unknown location: {unlocated}", n.key)?;
    }
    // Every declared budget fits (one that does not is an error above); say by how much.
    for n in config.names.iter().filter(|n| n.rto.is_some()) {
        let b = crate::config::budget::budget(config, n);
        writeln!(out, "  name {}: rto {}", n.key, b.arithmetic())?;
    }
    if let Some(d) = &config.dnssec {
        let tags: Vec<String> = d
            .keys
            .iter()
            .map(|k| format!("{} ({}{})", k.tag, k.role.as_str(), if k.active { "" } else { ", inactive" }))
            .collect();
        writeln!(out, "  dnssec: keys {}", tags.join(", "))?;
    }
    drop(out);
    for w in rollover_warnings(&path, config) {
        eprintln!("{}: warning: {w}", path.display());
    }
    Ok(())
}

fn keygen(zone: &str, algorithm: &str, role: &str, dir: &Path) -> Result<()> {
    use crate::config::dnssec::{KeyRole, algorithm_from, generate};
    let zone = hickory_proto::rr::Name::from_ascii(zone)
        .map_err(|e| UsageError(format!("`{zone}` is not a zone name: {e}")))?
        .to_lowercase();
    let zone = if zone.is_fqdn() { zone } else { zone.append_domain(&hickory_proto::rr::Name::root())? };
    let algorithm = algorithm_from(algorithm)
        .ok_or_else(|| UsageError(format!("unknown algorithm `{algorithm}`: ecdsap256sha256 (13) or ed25519 (15)")))?;
    let role = KeyRole::parse(role).ok_or_else(|| UsageError(format!("unknown role `{role}`: csk, ksk or zsk")))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (path, key) = generate(&zone, algorithm, role, dir).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "; wrote {} (owner-only): {} key {}, {}", path.display(), role.as_str(), key.tag, algorithm)?;
    let zk = key.into_zone_key(path.clone(), true);
    write_key_records(&mut out, &zone, &zk, 3600)?;
    writeln!(out, "; in the config:\n; [dnssec]\n; keys = [{{ file = \"{}\" }}]", path.display())?;
    Ok(())
}

/// A key's DNSKEY, and for a key the parent points at, its DS.
fn write_key_records(
    out: &mut impl Write,
    zone: &hickory_proto::rr::Name,
    key: &crate::config::dnssec::ZoneKey,
    ttl: u32,
) -> Result<()> {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::{RData, Record};
    if key.role.signs_keys() {
        let ds = key.ds(zone).map_err(anyhow::Error::msg)?;
        writeln!(out, "; DS for the parent zone:")?;
        writeln!(out, "{}", Record::from_rdata(zone.clone(), ttl, RData::DNSSEC(DNSSECRData::DS(ds))))?;
    }
    writeln!(out, "; DNSKEY:")?;
    writeln!(out, "{}", Record::from_rdata(zone.clone(), ttl, RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey.clone()))))?;
    Ok(())
}

fn dnssec_keys(path: &Path) -> Result<()> {
    let config = crate::config::load(path)?;
    let Some(d) = &config.dnssec else {
        bail!(UsageError(format!("{}: the zone is not signed (no [dnssec])", path.display())));
    };
    let mut out = std::io::stdout().lock();
    for k in &d.keys {
        let signs = match (k.role, k.active) {
            (crate::config::dnssec::KeyRole::Ksk, _) => "signs the DNSKEY set",
            (crate::config::dnssec::KeyRole::Csk, true) => "signs the DNSKEY set and the zone",
            (crate::config::dnssec::KeyRole::Csk, false) => "signs the DNSKEY set; published for the zone",
            (_, true) => "signs the zone",
            (_, false) => "published, not signing",
        };
        writeln!(out, "; key {} ({}, {}): {signs}; {}", k.tag, k.role.as_str(), k.algorithm, k.file.display())?;
        write_key_records(&mut out, &config.zone.origin, k, d.dnskey_ttl)?;
    }
    Ok(())
}

/// Warnings about a key change the running server has not made yet (from the key
/// history it keeps), and about key files others can read; printed by check-config.
pub fn rollover_warnings(path: &Path, config: &crate::config::Config) -> Vec<String> {
    use crate::config::dnssec::KeyHistory;
    let d = config.dnssec.as_ref();
    let file = KeyHistory::path(config.health.state_file.as_deref(), path);
    let now = crate::reload::unix_now().floor() as u64;
    let mut warnings = match KeyHistory::read(&file) {
        Ok(h) => h.rollover_warnings(d, crate::config::dnssec::max_ttl(config), now),
        Err(e) => vec![format!("cannot check the key rollover: {e}")],
    };
    #[cfg(unix)]
    for k in d.iter().flat_map(|d| &d.keys) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&k.file)
            && meta.permissions().mode() & 0o077 != 0
        {
            warnings.push(format!(
                "key file `{}` is readable by others (mode {:o}): `chmod 600` it",
                k.file.display(),
                meta.permissions().mode() & 0o777
            ));
        }
    }
    warnings
}

/// A duration as the config would write it: `15m`, `10s`, `500ms`.
fn human(d: std::time::Duration) -> String {
    match (d.as_secs(), d.subsec_millis()) {
        (s, 0) if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// What each database cluster and name will do, in words: how the identity is known,
/// and what a writer or reader name answers when it has nothing fresh to answer.
fn database_summary(config: &crate::config::Config) -> Vec<String> {
    use crate::config::{AllDown, CheckKind, Policy};
    let mut lines = Vec::new();
    for c in &config.clusters {
        let pg = c.members.iter().filter(|m| matches!(m.check.kind, CheckKind::Postgres { .. })).count();
        let identity = match (c.system_identifier, pg) {
            (Some(id), _) => format!("system identifier {id} (pinned)"),
            (None, 0) => "no postgres members (no identity to check)".to_owned(),
            (None, n) => format!("system identifier learned once {} of {n} postgres members agree", n / 2 + 1),
        };
        lines.push(format!("cluster {}: {} members; {identity}", c.name, c.members.len()));
    }
    let fallback = |w: &AllDown| match w {
        AllDown::Fallback { a, aaaa, cname } => {
            let mut parts: Vec<String> = a.iter().map(|ip| ip.to_string()).collect();
            parts.extend(aaaa.iter().map(|ip| ip.to_string()));
            parts.extend(cname.iter().map(|c| c.to_string()));
            format!("the fallback {}", parts.join(", "))
        }
        _ => String::new(),
    };
    for n in &config.names {
        let line = match &n.policy {
            Policy::Writer { cluster, .. } => {
                let c = &config.clusters[*cluster];
                let when = match &n.when_all_down {
                    AllDown::FailOpen => format!(
                        "the last member this instance saw as primary, if within {}; else SERVFAIL",
                        human(c.fail_open_max_age)
                    ),
                    AllDown::ServFail | AllDown::Writer => "SERVFAIL".to_owned(),
                    other => fallback(other),
                };
                format!("{} (writer of {}): no writer after a {} grace → {when}", n.key, c.name, human(c.writer_grace))
            }
            Policy::Reader { cluster, max_lag, .. } => {
                let when = match &n.when_all_down {
                    AllDown::Writer => "the writer; no writer → SERVFAIL".to_owned(),
                    AllDown::FailOpen => "stale reads: the nearest members that answer, whatever their lag".to_owned(),
                    AllDown::ServFail => "SERVFAIL".to_owned(),
                    other => fallback(other),
                };
                let cluster = &config.clusters[*cluster].name;
                format!("{} (reader of {cluster}): none within {} → {when}", n.key, human(*max_lag))
            }
            _ => continue,
        };
        lines.push(line);
    }
    lines
}

fn explain(
    path: PathBuf,
    overrides: &Overrides,
    name: String,
    client: String,
    down: Vec<String>,
    drain: Vec<String>,
) -> Result<()> {
    let loaded = app::load(&path, overrides)?;
    let model = loaded.model(None);
    let (addr, prefix) = routing::parse_client(&client).map_err(UsageError)?;
    let fqdn = if name.ends_with('.') { name.clone() } else { format!("{name}.{}", model.zone.origin) };
    let fqdn = hickory_proto::rr::Name::from_ascii(&fqdn)
        .map_err(|e| UsageError(format!("`{name}` is not a domain name: {e}")))?
        .to_lowercase();
    let Some(index) = model.name_index(&fqdn) else {
        let known: Vec<&str> = model.names.iter().map(|n| n.key.as_str()).collect();
        bail!(UsageError(format!("`{fqdn}` is not a GSLB name in this config (names: {})", known.join(", "))));
    };
    let mut health = HealthView::initial(&model);
    for (list, drained) in [(&down, false), (&drain, true)] {
        for region in list {
            let Some(i) = model.region_index(region) else {
                bail!(UsageError(format!("unknown region `{region}`")));
            };
            if drained {
                health.drained[i as usize] = true;
            } else {
                health.up[i as usize] = false;
            }
        }
    }
    let client = Client::new(addr, prefix, model.geo.as_deref());
    let mut explanation = routing::explain(&model, &health, index, &client);
    explanation.budget = Some(crate::config::budget::budget(&loaded.config, &loaded.config.names[index]).arithmetic());
    writeln!(std::io::stdout().lock(), "{explanation}")?;
    Ok(())
}

fn geoip_lookup(db: PathBuf, ip: IpAddr) -> Result<()> {
    let db = GeoDb::open(&db).context("opening the GeoIP database")?;
    let g = db.lookup(ip);
    let code = |c: Option<[u8; 2]>| c.map_or("-".to_owned(), |c| String::from_utf8_lossy(&c).into_owned());
    let subs: Vec<String> = g
        .info
        .subdivisions
        .iter()
        .flatten()
        .map(|s| String::from_utf8_lossy(s).trim_end_matches('\0').to_owned())
        .collect();
    let mut out = std::io::stdout().lock();
    let net = ipnet::IpNet::new(ip, g.prefix).map(|n| n.trunc().to_string()).unwrap_or_default();
    writeln!(out, "address:     {ip}")?;
    writeln!(out, "network:     {net}{}", if g.found { "" } else { " (not in the database)" })?;
    writeln!(out, "country:     {}", code(g.info.country))?;
    writeln!(out, "continent:   {}", code(g.info.continent))?;
    writeln!(out, "subdivision: {}", if subs.is_empty() { "-".to_owned() } else { subs.join(" ") })?;
    match g.info.location {
        Some((lat, lon)) => writeln!(
            out,
            "location:    {lat:.4},{lon:.4}{}",
            if g.info.location_is_centroid { " (country/continent centroid)" } else { "" }
        )?,
        None => writeln!(out, "location:    -")?,
    }
    writeln!(out, "database:    {} (built {})", db.database_type(), db.build_epoch())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `--help` explains every argument of every subcommand.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "switchyard", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
