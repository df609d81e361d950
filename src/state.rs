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

/// Per-region health as routing sees it, indexed like `Model::config.regions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthView {
    /// The region's checks say it is up.
    pub up: Vec<bool>,
    /// An operator has taken the region out of rotation (it is still probed).
    pub drained: Vec<bool>,
}

impl HealthView {
    /// Every region up; drained as the config says.
    pub fn initial(model: &Model) -> HealthView {
        HealthView {
            up: vec![true; model.config.regions.len()],
            drained: model.config.regions.iter().map(|r| r.drained).collect(),
        }
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
}

impl State {
    pub fn new(model: Model) -> State {
        let health = HealthView::initial(&model);
        State {
            current: ArcSwap::from_pointee(Snapshot {
                model: Arc::new(model),
                health,
            }),
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
            Snapshot {
                model: cur.model.clone(),
                health,
            }
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
        self.update_health(|model, h| match model.region_index(region) {
            Some(i) => {
                h.drained[i as usize] = drained;
                true
            }
            None => false,
        })
    }

    /// Installs a new model, carrying health over by region name.
    pub fn replace_model(&self, model: Model) {
        let model = Arc::new(model);
        self.current.rcu(|cur| {
            let mut health = HealthView::initial(&model);
            for (i, r) in model.config.regions.iter().enumerate() {
                if let Some(old) = cur.model.region_index(&r.name) {
                    health.up[i] = cur.health.up[old as usize];
                }
            }
            Snapshot {
                model: model.clone(),
                health,
            }
        });
    }
}
