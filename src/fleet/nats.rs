//! The NATS side of the fleet: one task, one connection at a time, two buckets.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{MAX_VANTAGES, Observation, Op, Override, Own, Shared, override_from_json, override_to_json};
use crate::config::FleetConfig;

/// The key of a vantage's observation.
fn vantage_key(name: &str) -> String {
    format!("vantage.{name}")
}

/// A name another instance may have: what `[fleet] name` allows.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// When an entry read while replaying the bucket was written, on this instance's clock:
/// its age by the NATS server's clock against ours, at most `ttl`. Live entries are
/// taken as written when received, so clock skew does not age them.
fn written_at(created: SystemTime, ttl: Duration) -> Instant {
    let age = SystemTime::now().duration_since(created).unwrap_or(Duration::ZERO).min(ttl);
    let now = Instant::now();
    now.checked_sub(age).unwrap_or(now)
}

pub(super) async fn run(
    config: FleetConfig,
    mut own: watch::Receiver<Option<Own>>,
    shared: watch::Sender<Shared>,
    mut ops: mpsc::Receiver<Op>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    let mut logged_down = false;
    loop {
        let started = Instant::now();
        let session = session(&config, &mut own, &shared, &mut ops, &stop, &mut logged_down);
        let result = tokio::select! {
            r = session => r,
            _ = stop.cancelled() => return,
        };
        // Only a session that lasted starts the next wait short again: a server that
        // takes connections and then fails every write is not hammered.
        if started.elapsed() >= Duration::from_secs(30) {
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

/// What one bucket entry says, for `Shared`.
enum Seen {
    Vantage(String, Option<Observation>),
    Override(String, Option<Override>),
    Nothing,
}

fn read_entry(entry: &kv::Entry, own_name: &str) -> Seen {
    let put = matches!(entry.operation, kv::Operation::Put);
    if let Some(name) = entry.key.strip_prefix("vantage.") {
        if name == own_name || !valid_name(name) {
            return Seen::Nothing;
        }
        return Seen::Vantage(name.to_owned(), put.then(|| Observation::from_json(&entry.value)).flatten());
    }
    if let Some(region) = entry.key.strip_prefix("drain.") {
        let o = put.then(|| override_from_json(&entry.value)).flatten().map(|mut o| {
            o.revision = entry.revision;
            o
        });
        return Seen::Override(region.to_owned(), o);
    }
    Seen::Nothing
}

fn apply(shared: &watch::Sender<Shared>, seen: Seen, at: Instant) {
    match seen {
        Seen::Vantage(name, Some(o)) => shared.send_modify(|s| {
            if s.vantages.len() < MAX_VANTAGES || s.vantages.contains_key(&name) {
                s.vantages.insert(name, (o, at));
            }
        }),
        Seen::Vantage(name, None) => shared.send_modify(|s| {
            s.vantages.remove(&name);
        }),
        Seen::Override(region, Some(o)) => shared.send_modify(|s| {
            s.overrides.insert(region, o);
        }),
        Seen::Override(region, None) => shared.send_modify(|s| {
            s.overrides.remove(&region);
        }),
        Seen::Nothing => {}
    }
}

/// Reads what a watch replays of a bucket's current contents: entries until the one
/// with nothing after it (`delta` 0), or a short silence (an empty bucket sends none).
async fn replay(watch: &mut kv::Watch, config: &FleetConfig, shared: &watch::Sender<Shared>) -> Result<(), String> {
    loop {
        match tokio::time::timeout(Duration::from_millis(300), watch.next()).await {
            Err(_) => return Ok(()),
            Ok(None) => return Err("the watch ended".into()),
            Ok(Some(entry)) => {
                let entry = entry.map_err(|e| format!("watch: {e}"))?;
                let at = written_at(entry.created.into(), config.observation_ttl);
                apply(shared, read_entry(&entry, &config.name), at);
                if entry.delta == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// One connection's life: connect, open both buckets and read them, then publish and
/// watch until an error. `Ok` only when asked to stop.
async fn session(
    config: &FleetConfig,
    own: &mut watch::Receiver<Option<Own>>,
    shared: &watch::Sender<Shared>,
    ops: &mut mpsc::Receiver<Op>,
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
    // Connected only once both buckets' contents are read: a half-read view must not
    // replace the held one, nor take a drain.
    replay(&mut seen, config, shared).await?;
    replay(&mut ops_seen, config, shared).await?;
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
    let ttl = config.observation_ttl;
    let mut heartbeat = tokio::time::interval(ttl / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_put: Option<Observation> = None;
    own.mark_changed();
    loop {
        tokio::select! {
            changed = own.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                // Published when it says something new; the heartbeat keeps it alive.
                let current = own.borrow_and_update().clone();
                if let Some(current) = current
                    && last_put.as_ref() != Some(&current.observation)
                {
                    observations.put(&key, current.observation.to_json().into()).await.map_err(|e| format!("put: {e}"))?;
                    last_put = Some(current.observation);
                }
            }
            _ = heartbeat.tick() => {
                if client.connection_state() != async_nats::connection::State::Connected {
                    return Err("the connection to NATS was lost".into());
                }
                let current = own.borrow().clone();
                if let Some(current) = current.filter(|c| c.at.elapsed() <= ttl) {
                    observations.put(&key, current.observation.to_json().into()).await.map_err(|e| format!("put: {e}"))?;
                    last_put = Some(current.observation);
                }
                // Vantages whose entry expired (expiry sends no delete) stop counting.
                shared.send_modify(|s| {
                    s.last_connected = Some(Instant::now());
                    s.vantages.retain(|_, (_, at)| at.elapsed() <= ttl);
                });
            }
            entry = seen.next() => {
                let entry = entry.ok_or("the watch ended")?.map_err(|e| format!("watch: {e}"))?;
                apply(shared, read_entry(&entry, &config.name), Instant::now());
            }
            entry = ops_seen.next() => {
                let entry = entry.ok_or("the watch ended")?.map_err(|e| format!("watch: {e}"))?;
                apply(shared, read_entry(&entry, &config.name), Instant::now());
            }
            op = ops.recv() => {
                let (region, o, done) = match op {
                    None => return Ok(()),
                    Some(Op::Override(region, o, done)) => (region, o, done),
                    Some(Op::Publish(subject, payload)) => {
                        // A message that cannot be sent is lost, and said so; the
                        // connection itself is judged by the heartbeat.
                        let sent = match client.publish(subject.clone(), payload.into()).await {
                            Ok(()) => client.flush().await.map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        if let Err(e) = sent {
                            warn!(subject = %subject, error = %e, "fleet: a writer-change message could not be published");
                        }
                        continue;
                    }
                };
                // The caller gave up waiting (and answered 503): it must not land later.
                if done.is_closed() {
                    continue;
                }
                let put = overrides.put(format!("drain.{region}"), override_to_json(&o).into()).await;
                let failed = put.as_ref().err().map(|e| format!("put: {e}"));
                let _ = done.send(put.map_err(|e| format!("NATS did not take it: {e}")));
                if let Some(e) = failed {
                    return Err(e);
                }
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
