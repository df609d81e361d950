//! Routing: from a GSLB name, a client and the health view to an ordered answer.
//!
//! Every policy ranks the name's candidate regions for one client ([`Ranking`]) and says
//! how many bits of the client address that ranking depended on (the ECS scope). Then
//! one shared step ([`route`]) filters by health, cuts to `answers`, applies
//! `when_all_down`, and picks the TTL. This module imports data types only: no tokio,
//! no clock, no I/O, no logging; it is the same code in the server, `explain` and tests.

mod explain;
mod geomap;
mod latency;
mod nearest;
mod weighted;

use std::cell::OnceCell;
use std::net::IpAddr;

use smallvec::SmallVec;

use crate::geo::{GeoDb, GeoLookup};
use crate::hash::hash64;
use crate::model::AllDown;
use crate::model::{GslbName, Model, Ranker, RegionId};
use crate::state::HealthView;

pub use explain::{Explanation, explain, parse_client};

/// Candidate lists live inline: names rarely have more than a handful of regions.
pub type Regions = SmallVec<[RegionId; 8]>;

/// The client as routing sees it: the ECS subnet if one is used, else the resolver.
pub struct Client<'a> {
    /// The address (host bits beyond `prefix` are zero for an ECS subnet).
    pub addr: IpAddr,
    /// How many leading bits of `addr` are real: the ECS source prefix, or the full width.
    pub prefix: u8,
    geo_db: Option<&'a GeoDb>,
    geo: OnceCell<Option<GeoLookup>>,
}

impl<'a> Client<'a> {
    pub fn new(addr: IpAddr, prefix: u8, geo_db: Option<&'a GeoDb>) -> Self {
        Client { addr, prefix, geo_db, geo: OnceCell::new() }
    }

    /// The GeoIP lookup, done at most once and only if a policy asks.
    pub fn geo(&self) -> Option<&GeoLookup> {
        self.geo.get_or_init(|| self.geo_db.map(|db| db.lookup(self.addr))).as_ref()
    }

    /// The prefix used to key sticky choices: a /24 or /56 at most, so that one
    /// resolver's clients in one network share a choice.
    fn sticky_prefix(&self) -> u8 {
        let cap = if self.addr.is_ipv4() { 24 } else { 56 };
        self.prefix.min(cap)
    }

    /// A stable hash of the client's sticky network.
    fn sticky_hash(&self) -> u64 {
        let bits = self.sticky_prefix();
        match self.addr {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                let masked = if bits == 0 { 0 } else { a & (u32::MAX << (32 - bits)) };
                hash64(u64::from(masked), 4)
            }
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                let masked = if bits == 0 { 0 } else { a & (u128::MAX << (128 - bits)) };
                hash64((masked >> 64) as u64 ^ hash64(masked as u64, 6), 6)
            }
        }
    }
}

/// One policy's ordering of the candidates, best first, for one client.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub order: Regions,
    /// Leading bits of the client address that this ordering depends on.
    pub scope: u8,
}

/// How the answer came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Health changed nothing: the client's first choice.
    Preferred,
    /// Some preferred region was skipped for health.
    Fallback,
    /// No candidate was up; `when_all_down = fail_open` answered as if all were.
    AllDownFailOpen,
    /// No candidate was up; `when_all_down = servfail`.
    AllDownServFail,
    /// No candidate was up; the fixed fallback answer applies.
    AllDownFallback,
}

/// The routing decision for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Regions to answer with, best first (empty for the all-down outcomes but fail-open).
    pub regions: Regions,
    pub ttl: u32,
    /// ECS scope prefix: the bits of the client address the answer depends on.
    pub scope: u8,
    pub outcome: Outcome,
}

/// Ranks a name's candidates for a client. Only `latency` looks at health, to know
/// which regions share the best usable round-trip time.
pub fn rank(model: &Model, name: &GslbName, client: &Client<'_>, health: &HealthView) -> Ranking {
    rank_by(model, name, &name.ranker, client, &|r| usable(name, health, r))
}

fn rank_by(
    model: &Model,
    name: &GslbName,
    policy: &Ranker,
    client: &Client<'_>,
    usable: &dyn Fn(RegionId) -> bool,
) -> Ranking {
    match policy {
        Ranker::Latency { table, tie_window } => latency::rank(model, name, table, *tie_window, client, usable),
        Ranker::Nearest => nearest::rank(model, name, client),
        Ranker::Geo { table } => geomap::rank(table, client),
        Ranker::Weighted { weights } => weighted::rank(model, name, weights, client),
        Ranker::Reader { order, .. } => rank_by(model, name, order, client, usable),
        Ranker::Writer => Ranking { order: Regions::new(), scope: 0 },
        Ranker::Failover | Ranker::Multivalue | Ranker::Static => {
            Ranking { order: name.regions.iter().copied().collect(), scope: 0 }
        }
    }
}

/// Whether a name may answer with a region: up and not drained; for `reader`, also
/// readable within `max_lag`; for `writer`, the writer (its gateways do not matter:
/// writes can go nowhere else).
pub fn usable(name: &GslbName, health: &HealthView, region: RegionId) -> bool {
    match &name.ranker {
        Ranker::Writer => health.writer == Some(region) && !health.drained[region as usize],
        Ranker::Reader { max_lag, .. } => health.usable(region) && health.readable(region, *max_lag),
        _ => health.usable(region),
    }
}

/// The writer name's ranking: the writer, or the last known one (which `fail_open`
/// then answers), or the first candidate with a database member.
fn writer_ranking(model: &Model, name: &GslbName, health: &HealthView) -> Ranking {
    let has_db = |r: &RegionId| model.regions[*r as usize].database;
    let w = health
        .writer
        .or(health.last_writer)
        .filter(|w| name.regions.contains(w))
        .or_else(|| name.regions.iter().copied().find(has_db));
    Ranking { order: w.into_iter().collect(), scope: 0 }
}

/// The ranking `route` filters: the policy's, or the writer's.
pub fn ranking_for(model: &Model, n: &GslbName, client: &Client<'_>, health: &HealthView) -> Ranking {
    match n.ranker {
        Ranker::Writer => writer_ranking(model, n, health),
        _ => rank(model, n, client, health),
    }
}

/// Decides the answer for a GSLB name.
pub fn route(model: &Model, health: &HealthView, name: usize, client: &Client<'_>) -> Route {
    let n = &model.names[name];
    finish(n, &ranking_for(model, n, client, health), health, client.prefix)
}

/// The shared tail of every policy: health filter, cut, all-down rule, TTL.
pub fn finish(n: &GslbName, ranking: &Ranking, health: &HealthView, client_prefix: u8) -> Route {
    let scope = ranking.scope.min(client_prefix);
    let ideal = || ranking.order.iter().copied().take(n.answers).collect::<Regions>();
    if matches!(n.ranker, Ranker::Static) {
        return Route { regions: ideal(), ttl: n.ttl, scope, outcome: Outcome::Preferred };
    }
    let chosen: Regions = ranking.order.iter().copied().filter(|&r| usable(n, health, r)).take(n.answers).collect();
    if !chosen.is_empty() {
        let preferred = ranking.order.iter().take(n.answers).eq(chosen.iter());
        let outcome = if preferred { Outcome::Preferred } else { Outcome::Fallback };
        // Within hold-down of a change among this name's regions (or of the writer),
        // caches are told to come back soon.
        let settled = match n.ranker {
            Ranker::Writer => !health.writer_unsettled,
            _ => !n.regions.iter().any(|&r| health.recent[r as usize]),
        };
        let ttl = if preferred && settled { n.ttl } else { n.failover_ttl };
        return Route { regions: chosen, ttl, scope, outcome };
    }
    // The all-down answer is the same for every client only if the candidates are:
    // keep the ranking's scope (it is /0 for client-independent policies).
    let (regions, outcome) = match n.when_all_down {
        AllDown::FailOpen => (ideal(), Outcome::AllDownFailOpen),
        AllDown::ServFail => (Regions::new(), Outcome::AllDownServFail),
        AllDown::Fallback { .. } => (Regions::new(), Outcome::AllDownFallback),
    };
    Route { regions, ttl: n.failover_ttl, scope, outcome }
}

/// The GeoIP-bound scope: a decision that used GeoIP holds for the matched network.
fn geo_scope(client: &Client<'_>) -> u8 {
    client.geo().map_or(0, |g| g.prefix)
}

#[cfg(test)]
mod tests;
