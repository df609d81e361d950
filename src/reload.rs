//! Reloading: the one path by which a running server takes a new config, whatever asked
//! for it (SIGHUP, `POST /reload`, a changed file with `--reload-on-change`).
//!
//! A reload is all or nothing: the file and the GeoIP database go through the same
//! validation as start-up, the new model is built completely, and only then does one
//! `State::replace_model` swap install it; the health engine restarts from the old
//! one's `Carry`. On any error the old config stays in force.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{error, info, warn};

use crate::app::{self, Control};
use crate::config::Config;
use crate::health::HealthEngine;
use crate::listen::rrl;

/// What the last reload did.
#[derive(Debug, Clone)]
pub struct ReloadStatus {
    /// Configs loaded since start; 1 is the first.
    pub generation: u64,
    pub last_success: SystemTime,
    /// The last failed reload's errors, until a reload succeeds.
    pub last_error: Option<String>,
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
        let overrides = self.overrides.clone();
        let loading = path.clone();
        // Reading, validating and compiling (signing the static RRsets) are CPU and file
        // work: off the async workers.
        let metrics = self.metrics.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let loaded = app::load(&loading, &overrides)?;
            let model = loaded.serving_model(&metrics)?;
            anyhow::Ok((loaded, model))
        })
        .await
        .unwrap_or_else(|panicked| Err(anyhow::anyhow!("loading the config panicked: {panicked}")));
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                let text = format!("{e:#}");
                error!(error = %text, "config reload failed; the previous config stays in force");
                self.metrics.reloads.with_label_values(&["failure"]).inc();
                self.metrics.reload_last_ok.set(0);
                self.reload_status.lock().expect("not poisoned").last_error = Some(text);
                return Err(e);
            }
        };
        let (loaded, model) = loaded;
        let config = loaded.config;
        let old = self.config.load_full();
        if config.server.listen != old.server.listen {
            warn!("`[server] listen` changed: the new addresses take effect on restart");
        }
        if config.admin != old.admin {
            warn!("`[admin]` changed: the new settings take effect on restart");
        }
        let connection = |f: &Option<crate::config::FleetConfig>| {
            f.as_ref().map(|f| (f.name.clone(), f.servers.clone(), f.bucket.clone(), f.observation_ttl))
        };
        if connection(&config.fleet) != connection(&old.fleet) {
            warn!("`[fleet]` name, servers, bucket or observation_ttl changed: they take effect on restart");
        }
        // Health first stops, handing over what it knew; the new model goes in with one
        // swap; the new engine starts from the carried states.
        let mut health = self.health.lock().await;
        let carry = match health.take() {
            Some(engine) => engine.stop().await,
            // No engine before: start from the view now serving, not from a cold start.
            None => crate::health::Carry::warm(self.state.snapshot().health.ready),
        };
        // The engine also keeps the state file (drains too) and talks to the fleet.
        let start_engine = model.probed() || config.health.state_file.is_some() || config.fleet.is_some();
        self.state.replace_model(model);
        if let Some(signer) = &self.state.snapshot().model.signer {
            signer.publish_entries();
        }
        self.config.store(config.clone());
        self.take_events_config(&config);
        // A limiter with unchanged settings keeps its counts.
        rrl::install(&self.rrl, app::rrl_settings(&config.rrl));
        if start_engine {
            *health = Some(HealthEngine::start(self.state.clone(), config.clone(), self.observers(), Some(carry)));
        }
        drop(health);
        // The keys now published, in the key history (a file: off the async workers).
        let keys = tokio::task::spawn_blocking(move || app::record_keys(&path, &config, unix_now()));
        for w in keys.await.unwrap_or_default() {
            warn!(warning = %w, "dnssec key change");
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

pub(crate) fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Command-line overrides of `[server] listen` and `[admin] listen`: applied at start
/// and to every reloaded config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// The GeoIP database in place of the config's `geoip_db` (`--geoip`,
    /// `SWITCHYARD_GEOIP`): an absolute path or `default`; applied while validating.
    pub geoip: Option<String>,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if !self.listen.is_empty() {
            config.server.listen = self.listen.clone();
        }
        if self.admin.is_some() {
            config.admin.listen = self.admin;
        }
    }
}

/// The process's signal handlers. Install them before anything else starts, so that a
/// SIGHUP that comes during start-up is held until the server serves (SIGHUP's default
/// action would end the process).
pub struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Registers SIGHUP, SIGTERM and SIGINT; needs a tokio runtime context.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Reloads on every SIGHUP until SIGTERM or SIGINT.
    pub async fn reload_until_stopped(mut self, control: &Control) {
        loop {
            tokio::select! {
                _ = self.hup.recv() => {
                    info!("SIGHUP: reloading the config");
                    // A failed reload is logged and counted; the old config keeps serving.
                    let _ = control.reload().await;
                }
                _ = self.term.recv() => break,
                _ = self.int.recv() => break,
            }
        }
    }
}

/// Reloads when the config file's content changes (a ConfigMap update swaps a symlink).
pub async fn watch_config(path: PathBuf, control: Arc<Control>) {
    let read = |p: &PathBuf| std::fs::read(p).ok();
    let mut last = read(&path);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = read(&path);
        if now.is_some() && now != last {
            info!(config = %path.display(), "config file changed: reloading");
            let _ = control.reload().await;
            last = now;
        }
    }
}
