//! The bridge between the control plane and the DNS path.
//!
//! Everything a query needs is one immutable [`Snapshot`]: the compiled model and the
//! health view built for it. The control plane (config load, health engine, admin)
//! publishes a new snapshot with one atomic pointer swap; the DNS path loads the
//! current one once per query and uses that version throughout, without locks and
//! without waiting on any probe. Health is stored beside the model it indexes so that
//! a reload can never pair region indices of one config with health of another.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::model::{MemberId, Model, Ranker, RegionId};

/// Per-region health as routing sees it, indexed like `Model::regions`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    /// The region's checks say it is up.
    pub up: Vec<bool>,
    /// An operator has taken the region out of rotation (it is still probed).
    pub drained: Vec<bool>,
    /// The region's state changed less than `hold_down` ago: its names use `failover_ttl`.
    pub recent: Vec<bool>,
    /// By region: within an operator's notice before a drain, or the hold-down after an
    /// undrain: names that use it answer with `failover_ttl`.
    pub noticed: Vec<bool>,
    /// Per database cluster, indexed like `Model::clusters`.
    pub clusters: Vec<ClusterView>,
    /// Per `reader` name, indexed by its slot (`Ranker::Reader::slot`).
    pub readers: Vec<ReaderView>,
    /// False until the first round of checks completes (cold start): GSLB names get SERVFAIL.
    pub ready: bool,
}

/// One database cluster's truth, indexed by member.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    /// The system identifier its members must report: configured, learned or restored;
    /// `None` while not settled (then no PostgreSQL member is trusted).
    pub identity: Option<u64>,
    /// The member that reports primary, if one does (or is kept on grace).
    pub writer: Option<MemberId>,
    /// The last member this instance saw as primary, while that was at most the
    /// cluster's `fail_open_max_age` ago: what `fail_open` answers when there is no
    /// writer. Never a member only ever seen as a replica.
    pub last_primary: Option<MemberId>,
    /// The writer is kept on grace, changed less than `hold_down` ago, or is disputed.
    pub writer_unsettled: bool,
    /// Members that report primary right now (two or more: split brain).
    pub primaries: Vec<MemberId>,
    /// Replication lag in seconds by member: `Some(0.0)` for the primary; `None` where
    /// the member is down, unknown, or not of this cluster (another system identifier).
    pub lag: Vec<Option<f64>>,
}

/// Which members one `reader` name may send clients to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReaderView {
    /// By member of the name's cluster: within the name's `max_lag` (with hysteresis).
    pub fresh: Vec<bool>,
    /// A member's freshness changed less than `hold_down` ago: the name uses `failover_ttl`.
    pub recent: bool,
}

impl HealthView {
    /// Every region up; drained as the config says; no database member known.
    pub fn initial(model: &Model) -> HealthView {
        let n = model.regions.len();
        let mut readers = vec![ReaderView::default(); model.readers];
        for name in &model.names {
            if let Ranker::Reader { cluster, slot, .. } = &name.ranker {
                readers[*slot].fresh = vec![false; model.clusters[*cluster as usize].members.len()];
            }
        }
        HealthView {
            up: vec![true; n],
            drained: model.regions.iter().map(|r| r.drained).collect(),
            recent: vec![false; n],
            noticed: vec![false; n],
            clusters: model
                .clusters
                .iter()
                .map(|c| ClusterView { lag: vec![None; c.members.len()], ..ClusterView::default() })
                .collect(),
            readers,
            ready: true,
        }
    }

    /// Whether routing may send clients to the region.
    pub fn usable(&self, region: RegionId) -> bool {
        let i = region as usize;
        self.up.get(i).copied().unwrap_or(false) && !self.drained.get(i).copied().unwrap_or(true)
    }
}

/// An operator's drain or undrain of a region: who (the name they gave), when (Unix
/// seconds) and why. Kept across reloads, in the state file, and by a fleet in its bucket.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Drain {
    pub drained: bool,
    pub by: String,
    pub at: f64,
    pub why: String,
    /// The fleet bucket's revision of it (later is newer, whatever the clocks); 0: not
    /// from a bucket.
    pub revision: u64,
    /// When (Unix seconds) a drain takes effect: the end of its notice. Until then the
    /// region still answers, with the short TTL. `at` or earlier: at once.
    pub effective_at: f64,
    /// Until when (Unix seconds) names that use the region answer with `failover_ttl`:
    /// the notice of a drain, the hold-down after an undrain.
    pub short_until: f64,
}

impl Drain {
    /// Whether the region is drained at `now` (Unix seconds).
    pub fn drained_at(&self, now: f64) -> bool {
        self.drained && now >= self.effective_at
    }

    /// Whether names that use the region answer with the short TTL at `now`.
    pub fn short_at(&self, now: f64) -> bool {
        now < self.short_until
    }

    /// The next time after `now` at which this drain changes what is answered.
    pub fn next_change(&self, now: f64) -> Option<f64> {
        [self.effective_at, self.short_until].into_iter().filter(|&t| t.is_finite() && t > now).reduce(f64::min)
    }
}

#[derive(Debug)]
pub struct Snapshot {
    pub model: Arc<Model>,
    pub health: HealthView,
}

/// Now, in Unix seconds.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Keeps the drains' clock: applies each notice's end and each hold-down's end when it
/// comes (wall clock: the times are shared with the other instances and kept across
/// restarts), until `stop`.
pub async fn run_drain_clock(state: Arc<State>, stop: tokio_util::sync::CancellationToken) {
    loop {
        let now = unix_now();
        state.apply_drains(now);
        // At most a day at a time: a time from a bucket or a file may be anything.
        let wait =
            state.next_drain_change(now).map(|t| std::time::Duration::from_secs_f64((t - now).clamp(0.0, 86_400.0)));
        // Registered before looking again, so a drain set meanwhile is not missed.
        let changed = state.drains_changed.notified();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = changed => {}
            _ = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

/// The current snapshot, swapped atomically.
#[derive(Debug)]
pub struct State {
    current: ArcSwap<Snapshot>,
    /// Drains and undrains by an operator (admin API), by region name. They outlive
    /// reloads; the config's `drained` applies where there is none. Control plane only.
    drain_overrides: std::sync::Mutex<std::collections::HashMap<String, Drain>>,
    /// Woken when a drain is set, so that whoever keeps the drains' clock
    /// (`run_drain_clock`) looks at the next deadline again.
    pub drains_changed: tokio::sync::Notify,
}

impl State {
    /// The first snapshot; `ready` is false while GSLB names wait for the first round
    /// of health checks (`cold_start = "wait"` with checks).
    pub fn new(model: Model, ready: bool) -> State {
        let mut health = HealthView::initial(&model);
        health.ready = ready;
        State {
            current: ArcSwap::from_pointee(Snapshot { model: Arc::new(model), health }),
            drain_overrides: Default::default(),
            drains_changed: tokio::sync::Notify::new(),
        }
    }

    /// The snapshot to answer one query from.
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes a new health view for the current model, built by `change`.
    /// Returns false if a region name is unknown.
    pub fn update_health(&self, change: impl Fn(&Model, &mut HealthView) -> bool) -> bool {
        let mut ok = true;
        self.current.rcu(|cur| {
            let mut health = cur.health.clone();
            ok = change(&cur.model, &mut health);
            Snapshot { model: cur.model.clone(), health }
        });
        ok
    }

    /// Marks a region up or down by name (tests and the health engine use this).
    pub fn set_region_up(&self, region: &str, up: bool) -> bool {
        self.update_health(|model, h| match model.region_index(region) {
            Some(i) => {
                h.up[i as usize] = up;
                true
            }
            None => false,
        })
    }

    /// Drains or undrains a region by name.
    pub fn set_drained(&self, region: &str, drained: bool) -> bool {
        self.set_drain(region, Drain { drained, ..Drain::default() })
    }

    /// Drains or undrains a region by name, saying who, when and why.
    pub fn set_drain(&self, region: &str, drain: Drain) -> bool {
        if self.snapshot().model.region_index(region).is_none() {
            return false;
        }
        {
            // Held across the swap so that a reload cannot slip in between and lose it.
            let mut overrides = self.drain_overrides.lock().expect("not poisoned");
            overrides.insert(region.to_owned(), drain);
            self.publish_drains(&overrides, unix_now());
        }
        self.drains_changed.notify_one();
        true
    }

    /// Applies the operators' drains as they stand at `now` (Unix seconds): a notice
    /// that ended drains its region, a hold-down that ended lets TTLs grow back.
    pub fn apply_drains(&self, now: f64) {
        let overrides = self.drain_overrides.lock().expect("not poisoned");
        self.publish_drains(&overrides, now);
    }

    fn publish_drains(&self, overrides: &std::collections::HashMap<String, Drain>, now: f64) {
        self.update_health(|model, h| {
            for (name, d) in overrides {
                if let Some(i) = model.region_index(name) {
                    h.drained[i as usize] = d.drained_at(now);
                    h.noticed[i as usize] = d.short_at(now);
                }
            }
            true
        });
    }

    /// The next time (Unix seconds) after `now` at which a drain changes an answer.
    pub fn next_drain_change(&self, now: f64) -> Option<f64> {
        let overrides = self.drain_overrides.lock().expect("not poisoned");
        overrides.values().filter_map(|d| d.next_change(now)).reduce(f64::min)
    }

    /// The operators' drains and undrains so far, by region name.
    pub fn drains(&self) -> std::collections::BTreeMap<String, Drain> {
        self.drain_overrides.lock().expect("not poisoned").iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Installs a new model, carrying health over by name: region states, each
    /// cluster's writer and members, readers' freshness, readiness, and operator drains.
    /// One atomic swap: a query sees the old snapshot or the new one, never a mix.
    pub fn replace_model(&self, model: Model) {
        let model = Arc::new(model);
        let overrides = self.drain_overrides.lock().expect("not poisoned");
        self.current.rcu(|cur| {
            let mut health = HealthView::initial(&model);
            let old = &cur.health;
            for (i, r) in model.regions.iter().enumerate() {
                // Only what the health engine will keep maintaining carries over: a
                // region whose checks were removed starts from the config's view.
                if let Some(o) = cur.model.region_index(&r.name)
                    && r.probed
                {
                    let o = o as usize;
                    health.up[i] = old.up[o];
                    health.recent[i] = old.recent[o];
                }
                if let Some(d) = overrides.get(&r.name) {
                    let now = unix_now();
                    health.drained[i] = d.drained_at(now);
                    health.noticed[i] = d.short_at(now);
                }
            }
            for (c, cluster) in model.clusters.iter().enumerate() {
                let Some(o) = cur.model.clusters.iter().position(|k| k.name == cluster.name) else { continue };
                let (was, view) = (&old.clusters[o], &mut health.clusters[c]);
                // Old member index → new, by name.
                let map = |m: MemberId| {
                    let name = &cur.model.clusters[o].members[m as usize].name;
                    cluster.members.iter().position(|k| k.name == *name).map(|i| i as MemberId)
                };
                view.identity = was.identity;
                view.writer = was.writer.and_then(map);
                view.last_primary = was.last_primary.and_then(map);
                view.writer_unsettled = was.writer_unsettled;
                view.primaries = was.primaries.iter().filter_map(|&p| map(p)).collect();
                for (m, lag) in was.lag.iter().enumerate() {
                    if let Some(n) = map(m as MemberId) {
                        view.lag[n as usize] = *lag;
                    }
                }
            }
            // Readers by name, when they follow the same cluster.
            for name in &model.names {
                let Ranker::Reader { cluster, slot, .. } = &name.ranker else { continue };
                let cluster = &model.clusters[*cluster as usize];
                let before = cur.model.names.iter().find_map(|n| match &n.ranker {
                    Ranker::Reader { cluster: c, slot: s, .. }
                        if n.fqdn == name.fqdn && cur.model.clusters[*c as usize].name == cluster.name =>
                    {
                        Some((&cur.model.clusters[*c as usize], *s))
                    }
                    _ => None,
                });
                let Some((old_cluster, old_slot)) = before else { continue };
                let was = &old.readers[old_slot];
                health.readers[*slot].recent = was.recent;
                for (m, member) in cluster.members.iter().enumerate() {
                    if let Some(o) = old_cluster.members.iter().position(|k| k.name == member.name) {
                        health.readers[*slot].fresh[m] = was.fresh[o];
                    }
                }
            }
            health.ready = old.ready;
            Snapshot { model: model.clone(), health }
        });
    }
}
