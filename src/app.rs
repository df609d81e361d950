//! Wiring: the one module that sees every other. It loads the config and the GeoIP
//! database into a model, publishes it as the first snapshot, and starts the DNS
//! listeners. The `serve` command and the in-process test harness both start here.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{self, Config};
use crate::dns::server::DnsServer;
use crate::geo::GeoDb;
use crate::health::HealthEngine;
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

/// A running switchyard.
pub struct App {
    pub state: Arc<State>,
    pub dns: DnsServer,
    health: Option<HealthEngine>,
}

impl App {
    /// Starts serving a compiled model.
    pub async fn start(model: Model) -> Result<App> {
        let listen = model.config.server.listen.clone();
        let idle = model.config.server.tcp_idle_timeout;
        let state = Arc::new(State::new(model));
        // Health first: in `wait` mode it marks the view not ready before any query.
        let probed = state.snapshot().model.config.regions.iter().any(|r| !r.checks.is_empty() || r.database.is_some());
        let health = probed.then(|| HealthEngine::start(state.clone()));
        let dns = DnsServer::start(state.clone(), &listen, idle).await?;
        Ok(App { state, dns, health })
    }

    /// The first bound DNS address.
    pub fn dns_addr(&self) -> std::net::SocketAddr {
        self.dns.addrs[0]
    }

    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(health) = self.health.take() {
            health.stop().await;
        }
        Ok(self.dns.shutdown().await?)
    }
}
