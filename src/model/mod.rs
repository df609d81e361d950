//! The compiled routing table: what the DNS path reads.
//!
//! A [`Model`] is built once per config load from a validated `Config` and the GeoIP
//! database, and never changes afterwards: names are resolved to indices, area tables
//! to tries and hash maps, static records to RRsets keyed by wire-format name. It holds
//! no health state (that is `state::HealthView`) and does no I/O.

pub mod area;
pub mod zone;

use std::sync::Arc;

use hickory_proto::rr::Name;

use crate::config::{AllDown, Area, Config, Policy, ReaderOrder};
use crate::geo::GeoDb;
use area::AreaTable;
use zone::Zone;

/// Region indices; `u16` keeps candidate lists small and inline.
pub type RegionId = u16;

#[derive(Debug)]
pub struct Model {
    pub config: Config,
    pub zone: Zone,
    pub names: Vec<GslbName>,
    pub geo: Option<Arc<GeoDb>>,
    /// Stable per-region hashes, for sticky choices that survive config reordering.
    pub region_hash: Vec<u64>,
    /// Each region's slot in the query counters (set when the model is installed).
    pub metric_slots: Vec<u16>,
    /// The UDP response rate limiter, if `[rrl]` is enabled.
    pub rrl: Option<Arc<crate::listen::rrl::Rrl>>,
}

#[derive(Debug)]
pub struct GslbName {
    pub fqdn: Name,
    /// Some answer of this name may be a CNAME (a CNAME region or fallback).
    pub may_cname: bool,
    pub policy: Compiled,
    pub regions: Vec<RegionId>,
    pub answers: usize,
    pub ttl: u32,
    pub failover_ttl: u32,
    pub when_all_down: AllDown,
}

/// A policy with its tables compiled.
#[derive(Debug)]
pub enum Compiled {
    Latency {
        table: AreaTable<Vec<Option<u32>>>,
        tie_window: u32,
    },
    Nearest,
    Geo {
        table: AreaTable<Vec<RegionId>>,
    },
    Failover,
    Weighted {
        weights: Vec<u32>,
    },
    Multivalue,
    Static,
    Writer,
    /// `order` is `Nearest` or `Latency`; `max_lag` in seconds.
    Reader {
        order: Box<Compiled>,
        max_lag: f64,
    },
}

impl Model {
    pub fn new(config: Config, geo: Option<Arc<GeoDb>>) -> Model {
        let names: Vec<GslbName> = config
            .names
            .iter()
            .map(|n| {
                let ids = |v: &[usize]| v.iter().map(|&i| i as RegionId).collect::<Vec<_>>();
                let policy = match &n.policy {
                    Policy::Latency { tie_window } => Compiled::Latency {
                        table: AreaTable::new(config.latency.iter().cloned()),
                        tie_window: *tie_window,
                    },
                    Policy::Nearest => Compiled::Nearest,
                    Policy::Geo { map, default } => Compiled::Geo {
                        table: AreaTable::new(
                            map.iter()
                                .map(|(a, rs)| (a.clone(), ids(rs)))
                                .chain(std::iter::once((Area::Default, ids(default)))),
                        ),
                    },
                    Policy::Failover => Compiled::Failover,
                    Policy::Weighted { weights } => Compiled::Weighted {
                        weights: weights.clone(),
                    },
                    Policy::Multivalue => Compiled::Multivalue,
                    Policy::Static => Compiled::Static,
                    Policy::Writer => Compiled::Writer,
                    Policy::Reader { order, max_lag } => Compiled::Reader {
                        order: Box::new(match order {
                            ReaderOrder::Nearest => Compiled::Nearest,
                            ReaderOrder::Latency { tie_window } => Compiled::Latency {
                                table: AreaTable::new(config.latency.iter().cloned()),
                                tie_window: *tie_window,
                            },
                        }),
                        max_lag: max_lag.as_secs_f64(),
                    },
                };
                let may_cname = n.regions.iter().any(|&r| config.regions[r].cname.is_some())
                    || matches!(&n.when_all_down, AllDown::Fallback { cname: Some(_), .. })
                    || matches!(&n.policy, Policy::Geo { map, default }
                        if map.iter().flat_map(|(_, rs)| rs).chain(default).any(|&r| config.regions[r].cname.is_some()));
                GslbName {
                    fqdn: n.fqdn.clone(),
                    may_cname,
                    policy,
                    regions: ids(&n.regions),
                    answers: n.answers,
                    ttl: n.ttl,
                    failover_ttl: n.failover_ttl,
                    when_all_down: n.when_all_down.clone(),
                }
            })
            .collect();
        let fqdns: Vec<Name> = names.iter().map(|n| n.fqdn.clone()).collect();
        let zone = Zone::new(&config.zone, &fqdns);
        let region_hash = config.regions.iter().map(|r| crate::hash::hash_bytes(r.name.as_bytes())).collect();
        let metric_slots = vec![0; config.regions.len()];
        let rrl = config.rrl.enabled.then(|| Arc::new(crate::listen::rrl::Rrl::new(config.rrl.clone())));
        Model { config, zone, names, geo, region_hash, metric_slots, rrl }
    }

    pub fn region_name(&self, id: RegionId) -> &str {
        &self.config.regions[id as usize].name
    }

    pub fn region_index(&self, name: &str) -> Option<RegionId> {
        self.config.regions.iter().position(|r| r.name == name).map(|i| i as RegionId)
    }

    pub fn name_index(&self, fqdn: &Name) -> Option<usize> {
        self.names.iter().position(|n| n.fqdn == *fqdn)
    }
}
