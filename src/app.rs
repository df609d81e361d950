//! Wiring: the one module that sees every other. It loads the config and the GeoIP
//! database into a model, publishes it as the first snapshot, starts the health
//! engine, the DNS listeners and the admin server, and reloads on request. The `serve`
//! command and the in-process test harness both start here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;

use crate::admin::AdminServer;
use crate::config::{self, ColdStart, Config, RrlConfig, Secret};
use crate::geo::GeoDb;
use crate::health::{HealthEngine, Observers};
use crate::listen::rrl;
use crate::listen::server::DnsServer;
use crate::listen::tcp::TcpLimits;
use crate::metrics::Metrics;
use crate::model::{MetricSlots, Model};
use crate::recent::Recent;
use crate::reload::{Overrides, ReloadStatus, unix_now};
use crate::state::State;

/// The limiter's settings from `[rrl]`; none when it is off.
pub fn rrl_settings(c: &RrlConfig) -> Option<rrl::Settings> {
    c.enabled.then(|| rrl::Settings {
        responses_per_second: c.responses_per_second,
        slip: c.slip,
        ipv4_prefix: c.ipv4_prefix,
        ipv6_prefix: c.ipv6_prefix,
        exempt: c.exempt.clone(),
    })
}

/// A validated config and its opened GeoIP database: what a model is compiled from.
/// The config stays on the control plane; the DNS path sees only the model.
pub struct Loaded {
    pub config: Arc<Config>,
    pub geo: Option<Arc<GeoDb>>,
}

impl Loaded {
    /// Compiles the model; with `metrics`, its regions get query-counter slots and the
    /// GeoIP build gauge is set.
    pub fn model(&self, metrics: Option<&Metrics>) -> Model {
        let slots = match metrics {
            Some(m) => {
                if let Some(geo) = &self.geo {
                    m.geoip_build.set(geo.build_epoch() as f64);
                }
                let names: Vec<&str> = self.config.regions.iter().map(|r| r.name.as_str()).collect();
                let jurisdictions: Vec<&str> = self.config.jurisdictions.iter().map(|j| j.name.as_str()).collect();
                MetricSlots {
                    regions: m.queries.slots(&self.config.zone.origin.to_ascii(), &names),
                    jurisdictions: m.queries.jurisdiction_slots(&jurisdictions),
                    signing: m.signing.clone(),
                }
            }
            None => MetricSlots::none(&self.config),
        };
        Model::new(&self.config, self.geo.clone(), slots)
    }

    /// The model to serve: as [`Loaded::model`], but a zone that is to be signed and
    /// cannot be is an error (served unsigned under a parent's DS, it would be bogus).
    pub fn serving_model(&self, metrics: &Metrics) -> Result<Model> {
        let model = self.model(Some(metrics));
        if self.config.dnssec.is_some() && model.signer.is_none() {
            anyhow::bail!("the zone cannot be signed with its keys (see the error above)");
        }
        Ok(model)
    }
}

/// Notes the keys `config` publishes in the key history (beside the state file, else
/// the config), after working out what check-config would have warned about; returns
/// those warnings. `now`: unix seconds.
pub fn record_keys(config_path: &Path, config: &Config, now: f64) -> Vec<String> {
    use crate::config::dnssec::{KeyHistory, max_ttl};
    let d = config.dnssec.as_ref();
    let file = KeyHistory::path(config.health.state_file.as_deref(), config_path);
    if d.is_none() && !file.exists() {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    let mut history = match KeyHistory::read(&file) {
        Ok(h) => h,
        Err(e) => {
            // Kept aside for a look, and started again (else it would stay broken).
            let aside = file.with_extension("json.corrupt");
            let _ = std::fs::rename(&file, &aside);
            warnings.push(format!("{e}; kept as `{}`, and the key history starts again", aside.display()));
            KeyHistory::default()
        }
    };
    // Whole seconds, rounded so that no wait comes out shorter than it is.
    warnings.extend(history.rollover_warnings(d, max_ttl(config), now.floor() as u64));
    history.observe(d, max_ttl(config), now.ceil() as u64);
    if let Err(e) = crate::health::statefile::write_atomically(&file, history.to_json().as_bytes()) {
        warnings.push(format!("cannot write the key history `{}`: {e}", file.display()));
    }
    warnings
}

/// Opens a validated config's GeoIP database.
pub fn open(config: Config) -> Result<Loaded> {
    let geo = match &config.server.geoip_db {
        Some(config::GeoipSource::File(path)) => Some(Arc::new(GeoDb::open(path)?)),
        Some(config::GeoipSource::Bundled) => Some(Arc::new(GeoDb::bundled()?)),
        None => None,
    };
    Ok(Loaded { config: Arc::new(config), geo })
}

/// Reads and validates a config file (with `overrides` applied) and opens its GeoIP
/// database: start-up minus sockets.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Loaded> {
    let mut config = config::load_with(path, overrides.geoip.as_deref())?;
    overrides.apply(&mut config);
    open(config).with_context(|| format!("loading {}", path.display()))
}

/// The control plane's shared handles: what the admin server and the signal handlers
/// act on.
pub struct Control {
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub config_path: Option<PathBuf>,
    pub reload_status: Mutex<ReloadStatus>,
    /// The bearer token that guards mutations; none: mutations are refused.
    pub admin_token: Option<Secret>,
    /// Command-line overrides of `[server] listen` and `[admin] listen`, applied to
    /// every reloaded config too.
    pub overrides: Overrides,
    /// The validated config now serving (control plane only: the DNS path reads the
    /// model compiled from it).
    pub config: ArcSwap<Config>,
    /// The status page's log: last check results, recent state changes.
    pub recent: Arc<Recent>,
    /// The UDP response rate limiter, owned by the server and kept across reloads.
    pub(crate) rrl: Arc<rrl::Slot>,
    pub(crate) health: tokio::sync::Mutex<Option<HealthEngine>>,
    pub(crate) reloading: tokio::sync::Mutex<()>,
    /// The connection to the other instances (`[fleet]`), kept across reloads.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
    /// The failover record, kept across reloads.
    pub events: Arc<crate::events::Events>,
}

impl Control {
    /// Points the failover record at a config's files and webhooks (start and reload).
    pub fn take_events_config(&self, config: &Config) {
        self.events.set_file(config.health.state_file.as_deref().map(crate::events::file_for));
        self.events.set_notify(&config.notify, self.fleet.clone());
    }

    /// What the health engine reports to.
    pub fn observers(&self) -> Observers {
        Observers {
            metrics: self.metrics.clone(),
            recent: self.recent.clone(),
            fleet: self.fleet.clone(),
            events: self.events.clone(),
        }
    }
}

/// A running switchyard.
pub struct App {
    pub control: Arc<Control>,
    pub state: Arc<State>,
    pub dns: DnsServer,
    pub admin: Option<AdminServer>,
    /// Stops the drains' clock.
    drain_clock: tokio_util::sync::CancellationToken,
}

impl App {
    /// Starts serving a loaded config (`overrides` are re-applied on every reload);
    /// `config_path` is what a reload re-reads.
    pub async fn start(loaded: Loaded, config_path: Option<PathBuf>, overrides: Overrides) -> Result<App> {
        let metrics = Metrics::new();
        let config = loaded.config.clone();
        let server = &config.server;
        let limits = TcpLimits {
            max_connections: server.tcp_max_connections,
            max_per_client: server.tcp_max_per_client,
            idle: server.tcp_idle_timeout,
            io: server.tcp_io_timeout,
        };
        let admin_token: Option<String> = match &config.admin.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the admin token file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("SWITCHYARD_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
        };
        let admin_token = admin_token.map(Secret::new);
        let model = loaded.serving_model(&metrics)?;
        // The engine also keeps the state file (drains too) and talks to the fleet.
        let start_engine = model.probed() || config.health.state_file.is_some() || config.fleet.is_some();
        let state = Arc::new(State::new(model, !start_engine || config.health.cold_start == ColdStart::AssumeUp));
        if let Some(signer) = &state.snapshot().model.signer {
            signer.publish_entries();
        }
        let rrl = Arc::new(rrl::Slot::empty());
        rrl::install(&rrl, rrl_settings(&config.rrl));
        let control = Arc::new(Control {
            state: state.clone(),
            metrics: metrics.clone(),
            config_path,
            reload_status: Mutex::new(ReloadStatus {
                generation: 1,
                last_success: SystemTime::now(),
                last_error: None,
            }),
            admin_token,
            overrides,
            config: ArcSwap::new(config.clone()),
            recent: Arc::default(),
            rrl: rrl.clone(),
            health: tokio::sync::Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            fleet: config.fleet.clone().map(|f| Arc::new(crate::fleet::Fleet::start(f))),
            events: Arc::new(crate::events::Events::new(metrics.clone())),
        });
        control.take_events_config(&config);
        if let Some(path) = &control.config_path {
            for w in record_keys(path, &config, unix_now()) {
                tracing::warn!(warning = %w, "dnssec key change");
            }
        }
        metrics.reload_last_ok.set(1);
        metrics.reload_last_success.set(unix_now());
        metrics.config_generation.set(1);
        // Health first: in `wait` mode the view is not ready before any query.
        if start_engine {
            *control.health.lock().await =
                Some(HealthEngine::start(state.clone(), config.clone(), control.observers(), None));
        }
        let admin = match config.admin.listen {
            Some(addr) => Some(AdminServer::start(control.clone(), addr).await?),
            None => None,
        };
        let started = DnsServer::start(state.clone(), metrics.clone(), rrl, &server.listen, limits, server.udp_workers);
        let dns = match started.await {
            Ok(dns) => dns,
            Err(e) => {
                // Nothing started here outlives a failed start.
                if let Some(engine) = control.health.lock().await.take() {
                    engine.stop().await;
                }
                if let Some(admin) = admin {
                    admin.stop().await;
                }
                return Err(e.into());
            }
        };
        // Notices and hold-downs of operators' drains end on their own.
        let drain_clock = tokio_util::sync::CancellationToken::new();
        tokio::spawn(crate::state::run_drain_clock(state.clone(), drain_clock.clone()));
        Ok(App { control, state, dns, admin, drain_clock })
    }

    /// The first bound DNS address.
    pub fn dns_addr(&self) -> std::net::SocketAddr {
        self.dns.addrs[0]
    }

    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    pub async fn shutdown(mut self) -> Result<()> {
        self.drain_clock.cancel();
        self.control.events.stop();
        if let Some(engine) = self.control.health.lock().await.take() {
            engine.stop().await;
        }
        // No more heartbeats: this vantage's observation expires with the TTL.
        if let Some(fleet) = &self.control.fleet {
            fleet.stop();
        }
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        Ok(self.dns.shutdown().await?)
    }
}
