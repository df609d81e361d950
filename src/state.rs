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

use crate::model::{Model, RegionId};

/// Per-region health as routing sees it, indexed like `Model::regions`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    /// The region's checks say it is up.
    pub up: Vec<bool>,
    /// An operator has taken the region out of rotation (it is still probed).
    pub drained: Vec<bool>,
    /// The region's state changed less than `hold_down` ago: its names use `failover_ttl`.
    pub recent: Vec<bool>,
    /// The region whose database member is primary, if one is (or is kept on grace).
    pub writer: Option<RegionId>,
    /// The last region known to be the writer, kept after the grace runs out so that
    /// `fail_open` answers it rather than a replica.
    pub last_writer: Option<RegionId>,
    /// The writer is kept on grace, changed less than `hold_down` ago, or is disputed.
    pub writer_unsettled: bool,
    /// Database members that report primary right now (two or more: split brain).
    pub primaries: Vec<RegionId>,
    /// Replication lag in seconds by region; `Some(0.0)` for the primary; `None` where
    /// the member is down, unknown, or absent.
    pub db_lag: Vec<Option<f64>>,
    /// False until the first round of checks completes (cold start): GSLB names get SERVFAIL.
    pub ready: bool,
}

impl HealthView {
    /// Every region up; drained as the config says.
    pub fn initial(model: &Model) -> HealthView {
        let n = model.regions.len();
        HealthView {
            up: vec![true; n],
            drained: model.regions.iter().map(|r| r.drained).collect(),
            recent: vec![false; n],
            writer: None,
            last_writer: None,
            writer_unsettled: false,
            primaries: Vec::new(),
            db_lag: vec![None; n],
            ready: true,
        }
    }

    /// Whether a replica (or the primary) in the region may serve reads.
    pub fn readable(&self, region: RegionId, max_lag: f64) -> bool {
        self.db_lag.get(region as usize).copied().flatten().is_some_and(|lag| lag <= max_lag)
    }

    /// Whether routing may send clients to the region.
    pub fn usable(&self, region: RegionId) -> bool {
        let i = region as usize;
        self.up.get(i).copied().unwrap_or(false) && !self.drained.get(i).copied().unwrap_or(true)
    }
}

#[derive(Debug)]
pub struct Snapshot {
    pub model: Arc<Model>,
    pub health: HealthView,
}

/// The current snapshot, swapped atomically.
#[derive(Debug)]
pub struct State {
    current: ArcSwap<Snapshot>,
    /// Drains and undrains by an operator (admin API), by region name. They outlive
    /// reloads; the config's `drained` applies where there is none. Control plane only.
    drain_overrides: std::sync::Mutex<std::collections::HashMap<String, bool>>,
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
        if self.snapshot().model.region_index(region).is_none() {
            return false;
        }
        // Held across the swap so that a reload cannot slip in between and lose it.
        let mut overrides = self.drain_overrides.lock().expect("not poisoned");
        overrides.insert(region.to_owned(), drained);
        self.update_health(|model, h| match model.region_index(region) {
            Some(i) => {
                h.drained[i as usize] = drained;
                true
            }
            None => false,
        })
    }

    /// Installs a new model, carrying health over by region name: region states, the
    /// writer, lags, readiness, and operator drains. One atomic swap: a query sees the
    /// old snapshot or the new one, never a mix.
    pub fn replace_model(&self, model: Model) {
        let model = Arc::new(model);
        let overrides = self.drain_overrides.lock().expect("not poisoned");
        self.current.rcu(|cur| {
            let mut health = HealthView::initial(&model);
            let old = &cur.health;
            let map = |r: Option<RegionId>| r.and_then(|r| model.region_index(cur.model.region_name(r)));
            for (i, r) in model.regions.iter().enumerate() {
                // Only what the health engine will keep maintaining carries over: a
                // region whose checks were removed starts from the config's view.
                if let Some(o) = cur.model.region_index(&r.name)
                    && r.probed
                {
                    let o = o as usize;
                    health.up[i] = old.up[o];
                    health.recent[i] = old.recent[o];
                    health.db_lag[i] = old.db_lag[o];
                }
                if let Some(&d) = overrides.get(&r.name) {
                    health.drained[i] = d;
                }
            }
            if model.regions.iter().any(|r| r.database) {
                health.writer = map(old.writer);
                health.last_writer = map(old.last_writer);
                health.writer_unsettled = old.writer_unsettled;
                health.primaries = old.primaries.iter().filter_map(|&p| map(Some(p))).collect();
            }
            health.ready = old.ready;
            Snapshot { model: model.clone(), health }
        });
    }
}
