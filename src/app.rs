//! Wiring: the one module that sees every other. It loads the config and the GeoIP
//! database into a model, publishes it as the first snapshot, starts the health
//! engine, the DNS listeners and the admin server, and reloads on request. The `serve`
//! command and the in-process test harness both start here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::admin::AdminServer;
use crate::config::{self, Config};
use crate::geo::GeoDb;
use crate::health::HealthEngine;
use crate::listen::server::DnsServer;
use crate::metrics::Metrics;
use crate::model::Model;
use crate::reload::{Overrides, ReloadStatus, prepare, probed, unix_now};
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
    pub overrides: Overrides,
    pub(crate) health: tokio::sync::Mutex<Option<HealthEngine>>,
    pub(crate) reloading: tokio::sync::Mutex<()>,
}

/// A running switchyard.
pub struct App {
    pub control: Arc<Control>,
    pub state: Arc<State>,
    pub dns: DnsServer,
    pub admin: Option<AdminServer>,
}

impl App {
    /// Starts serving a compiled model (with `overrides` applied); `config_path` is what
    /// a reload re-reads.
    pub async fn start(mut model: Model, config_path: Option<PathBuf>, overrides: Overrides) -> Result<App> {
        overrides.apply(&mut model);
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
            overrides,
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
