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

#[cfg(feature = "fleet")]
mod nats;
pub mod observation;

#[cfg(feature = "fleet")]
use nats::run;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::FleetConfig;
pub use observation::{
    CheckSeen, MemberSeen, Observation, Override, override_from_json, override_from_value, override_to_json,
    override_to_value,
};

/// What the fleet knows, as of the last change.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// The NATS connection and both buckets are up, and their contents read.
    pub connected: bool,
    /// When the connection was last known good (now, while connected).
    pub last_connected: Option<Instant>,
    /// The other vantages' latest observations, by name, with when each was written
    /// (on this instance's clock). Older than the TTL: pruned.
    pub vantages: BTreeMap<String, (Observation, Instant)>,
    /// Operators' overrides by region name, with the bucket's revision of each.
    pub overrides: BTreeMap<String, Override>,
}

/// This instance's observation as the health engine made it, and when: the fleet
/// publishes only a recent one (an engine that stopped making them, e.g. after a
/// reload that removed `[fleet]`, is not kept alive by the heartbeat).
#[derive(Debug, Clone)]
pub struct Own {
    pub observation: Observation,
    pub at: Instant,
}

/// What the NATS task is asked to do.
enum Op {
    /// An operator's override on its way to the bucket, and where to say how it went.
    Override(String, Override, oneshot::Sender<Result<u64, String>>),
    /// A message for a plain NATS subject (writer changes for the application).
    Publish(String, Vec<u8>),
}

/// A running fleet connection.
pub struct Fleet {
    /// This instance's observation: the health engine sends, the task publishes.
    pub own: watch::Sender<Option<Own>>,
    pub shared: watch::Receiver<Shared>,
    ops: mpsc::Sender<Op>,
    stop: CancellationToken,
}

/// The most vantages a fleet counts: names beyond it (a bucket others can write to,
/// generated host names piling up) are ignored. Whoever may write to the bucket has a
/// vote: give only the instances write access.
pub const MAX_VANTAGES: usize = 64;

impl Fleet {
    pub fn start(config: FleetConfig) -> Fleet {
        let (own, own_rx) = watch::channel(None);
        let (shared_tx, shared) = watch::channel(Shared::default());
        let (ops, ops_rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        tokio::spawn(run(config, own_rx, shared_tx, ops_rx, stop.clone()));
        Fleet { own, shared, ops, stop }
    }

    /// Stores an operator's override for a region in the bucket, and returns its
    /// revision once NATS has it; every instance then applies it. Fails when NATS does
    /// not take it within two seconds (the caller changes nothing: an override must not
    /// apply to one instance only).
    pub async fn set_override(&self, region: &str, o: Override) -> Result<u64, String> {
        if !self.shared.borrow().connected {
            return Err("the fleet's NATS servers are not reachable: not stored".into());
        }
        let (tx, rx) = oneshot::channel();
        self.ops.send(Op::Override(region.to_owned(), o, tx)).await.map_err(|_| "the fleet has stopped".to_owned())?;
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the fleet's NATS connection was lost: not stored".into()),
            Err(_) => Err("NATS did not confirm within 2 s: not stored".into()),
        }
    }

    /// Publishes `payload` on `subject` without waiting: while NATS is unreachable it
    /// waits in the task's queue (with the overrides, 64 in all) and goes out once the
    /// connection is back; beyond that, or if the send itself fails, it is dropped, and
    /// logged.
    pub fn publish(&self, subject: &str, payload: Vec<u8>) {
        if self.ops.try_send(Op::Publish(subject.to_owned(), payload)).is_err() {
            tracing::warn!(subject, "fleet: the NATS queue is full or stopped: a writer-change message is dropped");
        }
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

/// A build without the `fleet` feature (the fuzz targets') has no NATS client: the
/// fleet never connects, and says so once.
#[cfg(not(feature = "fleet"))]
async fn run(
    config: FleetConfig,
    _own: watch::Receiver<Option<Own>>,
    _shared: watch::Sender<Shared>,
    _ops: mpsc::Receiver<Op>,
    stop: CancellationToken,
) {
    tracing::error!(name = %config.name, "this build has no fleet support (the `fleet` feature): deciding alone");
    stop.cancelled().await;
}
