//! Wiring: the one module that sees every other. It loads the config and the GeoIP
//! database into a model, publishes it as the first snapshot, starts the health
//! engine, the DNS listeners and the admin server, and reloads on request. The `serve`
//! command and the in-process test harness both start here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, Result};
use tracing::{error, info, warn};

use crate::admin::AdminServer;
use crate::config::{self, Config};
use crate::dns::server::DnsServer;
use crate::geo::GeoDb;
use crate::health::HealthEngine;
use crate::metrics::Metrics;
use crate::model::Model;
use crate::state::State;

/// Compiles a validated config, opening its GeoIP database.
pub fn build_model(config: Config) -> Result<Model> {
    let geo = match &config.server.geoip_db {
        Some(path) => Some(Arc::new(GeoDb::open(path)?)),
        None => None,
    };
    Ok(Model::new(config, geo))
}

/// Reads, validates and compiles a config file: start-up minus sockets.
pub fn load_model(path: &Path) -> Result<Model> {
    let config = config::load(path)?;
    build_model(config).with_context(|| format!("loading {}", path.display()))
}

/// What the last reload did.
#[derive(Debug, Clone)]
pub struct ReloadStatus {
    /// Configs loaded since start; 1 is the first.
    pub generation: u64,
    pub last_success: SystemTime,
    /// The last failed reload's errors, until a reload succeeds.
    pub last_error: Option<String>,
}

/// The control plane's shared handles: what the admin server and the signal handlers
/// act on.
pub struct Control {
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub config_path: Option<PathBuf>,
    pub reload_status: Mutex<ReloadStatus>,
    /// The bearer token that guards mutations; none: mutations are refused.
    pub admin_token: Option<String>,
    /// Command-line overrides of `[server] listen` and `[admin] listen`, applied to
    /// every reloaded config too.
    pub overrides: Mutex<(Vec<std::net::SocketAddr>, Option<std::net::SocketAddr>)>,
    health: tokio::sync::Mutex<Option<HealthEngine>>,
    reloading: tokio::sync::Mutex<()>,
}

fn probed(model: &Model) -> bool {
    model.config.regions.iter().any(|r| !r.checks.is_empty() || r.database.is_some())
}

/// Prepares a model for installation: metric slots, GeoIP gauge.
fn prepare(metrics: &Metrics, model: &mut Model) {
    let names: Vec<&str> = model.config.regions.iter().map(|r| r.name.as_str()).collect();
    model.metric_slots = metrics.queries.slots(&model.zone.origin.to_ascii(), &names);
    if let Some(geo) = &model.geo {
        metrics.geoip_build.set(geo.build_epoch() as f64);
    }
}

impl Control {
    /// Re-reads the config file through the same validation as start-up. On any error
    /// the old config stays in force, every error is logged, and the failure counted.
    pub async fn reload(&self) -> Result<u64> {
        // One reload at a time, from reading the file to the swap: two overlapping
        // reloads could otherwise install the older file last.
        let _one_at_a_time = self.reloading.lock().await;
        let Some(path) = self.config_path.clone() else {
            anyhow::bail!("this server was not started from a config file");
        };
        let started = std::time::Instant::now();
        let loaded = tokio::task::spawn_blocking(move || load_model(&path)).await?;
        let mut model = match loaded {
            Ok(m) => m,
            Err(e) => {
                let text = format!("{e:#}");
                error!(error = %text, "config reload failed; the previous config stays in force");
                self.metrics.reloads.with_label_values(&["failure"]).inc();
                self.metrics.reload_last_ok.set(0);
                self.reload_status.lock().expect("not poisoned").last_error = Some(text);
                return Err(e);
            }
        };
        prepare(&self.metrics, &mut model);
        {
            let (listen, admin) = &*self.overrides.lock().expect("not poisoned");
            if !listen.is_empty() {
                model.config.server.listen = listen.clone();
            }
            if admin.is_some() {
                model.config.admin.listen = *admin;
            }
        }
        let old = self.state.snapshot();
        if model.config.server.listen != old.model.config.server.listen {
            warn!("`[server] listen` changed: the new addresses take effect on restart");
        }
        if model.config.admin != old.model.config.admin {
            warn!("`[admin]` changed: the new settings take effect on restart");
        }
        // Health first stops, handing over what it knew; the new model goes in with one
        // swap; the new engine starts from the carried states.
        let mut health = self.health.lock().await;
        let carry = match health.take() {
            Some(engine) => engine.stop().await,
            // No engine before: start from the view now serving, not from a cold start.
            None => crate::health::Carry::warm(old.health.ready),
        };
        let start_engine = probed(&model);
        self.state.replace_model(model);
        if start_engine {
            *health = Some(HealthEngine::start(self.state.clone(), self.metrics.clone(), Some(carry)));
        }
        let generation = {
            let mut st = self.reload_status.lock().expect("not poisoned");
            st.generation += 1;
            st.last_success = SystemTime::now();
            st.last_error = None;
            st.generation
        };
        self.metrics.reloads.with_label_values(&["success"]).inc();
        self.metrics.reload_last_ok.set(1);
        self.metrics.reload_last_success.set(unix_now());
        self.metrics.config_generation.set(generation as i64);
        info!(generation, took_ms = started.elapsed().as_millis() as u64, "config reloaded");
        Ok(generation)
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A running switchyard.
pub struct App {
    pub control: Arc<Control>,
    pub state: Arc<State>,
    pub dns: DnsServer,
    pub admin: Option<AdminServer>,
}

impl App {
    /// Starts serving a compiled model; `config_path` is what a reload re-reads.
    pub async fn start(mut model: Model, config_path: Option<PathBuf>) -> Result<App> {
        let metrics = Metrics::new();
        let listen = model.config.server.listen.clone();
        let limits = model.config.server.tcp_limits();
        let admin_cfg = model.config.admin.clone();
        let admin_token = match &admin_cfg.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the admin token file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("SWITCHYARD_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
        };
        prepare(&metrics, &mut model);
        let start_engine = probed(&model);
        let state = Arc::new(State::new(model));
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
            overrides: Mutex::default(),
            health: tokio::sync::Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        });
        metrics.reload_last_ok.set(1);
        metrics.reload_last_success.set(unix_now());
        metrics.config_generation.set(1);
        // Health first: in `wait` mode the view is not ready before any query.
        if start_engine {
            *control.health.lock().await = Some(HealthEngine::start(state.clone(), metrics.clone(), None));
        }
        let admin = match admin_cfg.listen {
            Some(addr) => Some(AdminServer::start(control.clone(), addr).await?),
            None => None,
        };
        let workers = state.snapshot().model.config.server.udp_workers;
        let dns = match DnsServer::start(state.clone(), metrics.clone(), &listen, limits, workers).await {
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
        Ok(App { control, state, dns, admin })
    }

    /// The first bound DNS address.
    pub fn dns_addr(&self) -> std::net::SocketAddr {
        self.dns.addrs[0]
    }

    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(engine) = self.control.health.lock().await.take() {
            engine.stop().await;
        }
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        Ok(self.dns.shutdown().await?)
    }
}
