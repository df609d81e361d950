//! The fleet: the switchyard instances serving one zone share what each sees (its
//! vantage point) and the operators' overrides, through a NATS JetStream key-value
//! bucket, so that every instance decides from the same merged observations.
//!
//! One task owns the NATS connection. It publishes this instance's latest observation
//! (whenever it changes, and every `observation_ttl / 3` as a heartbeat) under
//! `vantage.NAME` in the observations bucket, whose entries expire after
//! `observation_ttl`, so a dead instance stops counting. It watches that bucket and the
//! operators' bucket (`BUCKET-ops`, kept), and publishes what it knows as one
//! [`Shared`] value on a watch channel. It never touches the DNS path; when NATS is
//! gone it keeps trying, and the health engine decides what to do meanwhile.

pub mod observation;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::FleetConfig;
pub use observation::{
    CheckSeen, MemberSeen, Observation, Override, override_from_json, override_from_value, override_to_json,
    override_to_value,
};

/// What the fleet knows, as of the last change.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// The NATS connection and both buckets are up.
    pub connected: bool,
    /// When the connection was last known good (now, while connected).
    pub last_connected: Option<Instant>,
    /// The other vantages' latest observations, by name, with when each was written
    /// (on this instance's clock; entries older than the TTL are gone).
    pub vantages: BTreeMap<String, (Observation, Instant)>,
    /// Operators' overrides by region name.
    pub overrides: BTreeMap<String, Override>,
}

/// A running fleet connection.
pub struct Fleet {
    /// This instance's observation: the health engine sends, the task publishes.
    pub own: watch::Sender<Option<Observation>>,
    pub shared: watch::Receiver<Shared>,
    ops: mpsc::Sender<(String, Override)>,
    stop: CancellationToken,
}

impl Fleet {
    pub fn start(config: FleetConfig) -> Fleet {
        let (own, own_rx) = watch::channel(None);
        let (shared_tx, shared) = watch::channel(Shared::default());
        let (ops, ops_rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        tokio::spawn(run(config, own_rx, shared_tx, ops_rx, stop.clone()));
        Fleet { own, shared, ops, stop }
    }

    /// Stores an operator's override for a region; every instance applies it. Fails
    /// when NATS is not reachable (the caller says so: an override must not be lost).
    pub async fn set_override(&self, region: &str, o: Override) -> Result<(), String> {
        if !self.shared.borrow().connected {
            return Err("the fleet's NATS servers are not reachable: not stored".into());
        }
        self.ops.send((region.to_owned(), o)).await.map_err(|_| "the fleet has stopped".to_owned())
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The key of a vantage's observation.
fn vantage_key(name: &str) -> String {
    format!("vantage.{name}")
}

/// When an entry was written, on this instance's clock (its age by the NATS server's
/// clock against ours, at most `ttl`: the bucket drops older entries).
fn written_at(created: SystemTime, ttl: Duration) -> Instant {
    let age = SystemTime::now().duration_since(created).unwrap_or(Duration::ZERO).min(ttl);
    let now = Instant::now();
    now.checked_sub(age).unwrap_or(now)
}

async fn run(
    config: FleetConfig,
    mut own: watch::Receiver<Option<Observation>>,
    shared: watch::Sender<Shared>,
    mut ops: mpsc::Receiver<(String, Override)>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    let mut logged_down = false;
    loop {
        let session = session(&config, &mut own, &shared, &mut ops, &stop, &mut logged_down);
        let result = tokio::select! {
            r = session => r,
            _ = stop.cancelled() => return,
        };
        // A session that got connected starts the next wait short again.
        if shared.borrow().connected {
            backoff = Duration::from_millis(200);
        }
        shared.send_modify(|s| s.connected = false);
        match result {
            Ok(()) => return,
            Err(e) if !logged_down => {
                warn!(error = %e, servers = %config.servers.join(","), "fleet: NATS not reachable; retrying");
                logged_down = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connection's life: connect, open both buckets, then publish and watch until an
/// error. `Ok` only when asked to stop.
async fn session(
    config: &FleetConfig,
    own: &mut watch::Receiver<Option<Observation>>,
    shared: &watch::Sender<Shared>,
    ops: &mut mpsc::Receiver<(String, Override)>,
    stop: &CancellationToken,
    logged_down: &mut bool,
) -> Result<(), String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("switchyard {}", config.name))
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_secs(2)))
        // Reconnecting is this task's job: a lost connection ends the session.
        .max_reconnects(Some(1));
    if let Some(path) = &config.credentials_file {
        options = options.credentials_file(path).await.map_err(|e| format!("credentials file: {e}"))?;
    }
    if let Some(path) = &config.token_file {
        let token = std::fs::read_to_string(path).map_err(|e| format!("token file: {e}"))?;
        options = options.token(token.trim().to_owned());
    }
    if let Some(path) = &config.ca_file {
        options = options.add_root_certificates(path.clone()).require_tls(true);
    }
    let client = options.connect(config.servers.clone()).await.map_err(|e| format!("connect: {e}"))?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(1));
    let observations = bucket(&js, &config.bucket, config.observation_ttl).await?;
    let overrides = bucket(&js, &format!("{}-ops", config.bucket), Duration::ZERO).await?;
    let mut seen = observations.watch_with_history(">").await.map_err(|e| format!("watch: {e}"))?;
    let mut ops_seen = overrides.watch_with_history(">").await.map_err(|e| format!("watch: {e}"))?;
    if *logged_down {
        info!(servers = %config.servers.join(","), "fleet: NATS reachable again");
    } else {
        info!(servers = %config.servers.join(","), bucket = %config.bucket, name = %config.name, "fleet: connected");
    }
    *logged_down = false;
    shared.send_modify(|s| {
        s.connected = true;
        s.last_connected = Some(Instant::now());
    });
    let key = vantage_key(&config.name);
    let mut heartbeat = tokio::time::interval(config.observation_ttl / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    own.mark_changed();
    loop {
        tokio::select! {
            changed = own.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let value = own.borrow_and_update().as_ref().map(Observation::to_json);
                if let Some(value) = value {
                    observations.put(&key, value.into()).await.map_err(|e| format!("put: {e}"))?;
                }
            }
            _ = heartbeat.tick() => {
                if client.connection_state() != async_nats::connection::State::Connected {
                    return Err("the connection to NATS was lost".into());
                }
                let value = own.borrow().as_ref().map(Observation::to_json);
                if let Some(value) = value {
                    observations.put(&key, value.into()).await.map_err(|e| format!("put: {e}"))?;
                }
                shared.send_modify(|s| s.last_connected = Some(Instant::now()));
            }
            entry = seen.next() => {
                let entry = entry.ok_or("the watch ended")?.map_err(|e| format!("watch: {e}"))?;
                let Some(name) = entry.key.strip_prefix("vantage.") else { continue };
                if name == config.name {
                    continue;
                }
                let name = name.to_owned();
                let at = written_at(entry.created.into(), config.observation_ttl);
                let observation = match entry.operation {
                    kv::Operation::Put => Observation::from_json(&entry.value),
                    kv::Operation::Delete | kv::Operation::Purge => None,
                };
                shared.send_modify(|s| match observation {
                    Some(o) => {
                        s.vantages.insert(name, (o, at));
                    }
                    None => {
                        s.vantages.remove(&name);
                    }
                });
            }
            entry = ops_seen.next() => {
                let entry = entry.ok_or("the watch ended")?.map_err(|e| format!("watch: {e}"))?;
                let Some(region) = entry.key.strip_prefix("drain.") else { continue };
                let region = region.to_owned();
                let o = match entry.operation {
                    kv::Operation::Put => override_from_json(&entry.value),
                    kv::Operation::Delete | kv::Operation::Purge => None,
                };
                shared.send_modify(|s| match o {
                    Some(o) => {
                        s.overrides.insert(region, o);
                    }
                    None => {
                        s.overrides.remove(&region);
                    }
                });
            }
            op = ops.recv() => {
                let Some((region, o)) = op else { return Ok(()) };
                overrides.put(format!("drain.{region}"), override_to_json(&o).into()).await.map_err(|e| format!("put: {e}"))?;
            }
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

/// Opens a bucket, creating it if it is missing; `ttl` zero: entries are kept. The
/// stream is made by hand, as a key-value bucket's stream is laid out (one value per
/// key, rollups, no deletes, direct gets): the client's own bucket creation first
/// reads account details that servers before 2.10 (Debian's) lay out differently.
async fn bucket(js: &jetstream::Context, name: &str, ttl: Duration) -> Result<kv::Store, String> {
    let config = jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        discard: jetstream::stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        ..Default::default()
    };
    js.get_or_create_stream(config).await.map_err(|e| format!("bucket {name}: {e}"))?;
    js.get_key_value(name).await.map_err(|e| format!("bucket {name}: {e}"))
}
