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
mod residency;
mod weighted;

use std::cell::OnceCell;
use std::net::IpAddr;

use smallvec::SmallVec;

use crate::geo::{GeoDb, GeoLookup};
use crate::hash::hash64;
use crate::model::AllDown;
use crate::model::{GslbName, MemberId, Model, Ranker, RegionId};
use crate::state::HealthView;

pub use explain::{Explanation, explain, parse_client};
pub use residency::{Confine, Placement, place};

/// Candidate lists live inline: names rarely have more than a handful of regions.
pub type Regions = SmallVec<[RegionId; 8]>;

/// Database members to answer with, of the name's cluster.
pub type Members = SmallVec<[MemberId; 4]>;

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
    /// `reader`: no member is fresh; the cluster's writer answers.
    AllDownWriter,
    /// A database name with nothing it may answer (no writer to fall back to, no
    /// primary observed recently enough to fail open to): SERVFAIL.
    AllDownUnknown,
    /// A strict name and a client of unknown location, with `unlocated = "servfail"`.
    Unlocated,
}

/// The routing decision for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Regions to answer with, best first (empty for the all-down outcomes but fail-open).
    pub regions: Regions,
    /// For `writer` and `reader` names: the members to answer with (of those regions).
    pub members: Members,
    pub ttl: u32,
    /// ECS scope prefix: the bits of the client address the answer depends on.
    pub scope: u8,
    pub outcome: Outcome,
    /// Where residency confined the answer.
    pub confine: Confine,
    /// Regions the policy ranked that residency excluded, in ranked order.
    pub excluded: Regions,
}

impl Route {
    /// Whether residency restricted this answer (excluded a ranked region, or refused
    /// an unlocated client).
    pub fn restricted(&self) -> bool {
        !self.excluded.is_empty() || self.confine == Confine::Nowhere
    }
}

/// Ranks a name's candidates for a client. Only `latency` looks at health, to know
/// which regions share the best usable round-trip time.
pub fn rank(model: &Model, name: &GslbName, client: &Client<'_>, health: &HealthView) -> Ranking {
    rank_by(model, name, &name.ranker, client, &|r| usable(model, name, health, r))
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
        Ranker::Writer { .. } => Ranking { order: Regions::new(), scope: 0 },
        Ranker::Failover | Ranker::Multivalue | Ranker::Static => {
            Ranking { order: name.regions.iter().copied().collect(), scope: 0 }
        }
    }
}

/// Whether a name may answer with a region: up and not drained. For `writer`: the
/// writer's region (its gateways matter only with `require_gateway`); for `reader`: a
/// region with a member within `max_lag` (gateways likewise).
pub fn usable(model: &Model, name: &GslbName, health: &HealthView, region: RegionId) -> bool {
    let i = region as usize;
    let gateway = |required: bool| !health.drained[i] && (!required || health.up[i]);
    match &name.ranker {
        Ranker::Writer { cluster, require_gateway } => {
            let c = *cluster as usize;
            health.clusters[c].writer.is_some_and(|w| model.clusters[c].members[w as usize].region == region)
                && gateway(*require_gateway)
        }
        Ranker::Reader { cluster, slot, require_gateway, .. } => {
            gateway(*require_gateway) && !fresh_members(model, health, *cluster, *slot, region).is_empty()
        }
        _ => health.usable(region),
    }
}

/// The members of `cluster` in `region` that reader `slot` may answer, in config order.
fn fresh_members(model: &Model, health: &HealthView, cluster: u16, slot: usize, region: RegionId) -> Members {
    let fresh = &health.readers[slot].fresh;
    model.clusters[cluster as usize]
        .members
        .iter()
        .enumerate()
        .filter(|(m, member)| member.region == region && fresh.get(*m).copied().unwrap_or(false))
        .map(|(m, _)| m as MemberId)
        .collect()
}

/// The writer name's ranking: the writer's region, if it is one of the name's.
fn writer_ranking(model: &Model, name: &GslbName, cluster: u16, health: &HealthView) -> Ranking {
    let c = cluster as usize;
    let w = health.clusters[c].writer.map(|w| model.clusters[c].members[w as usize].region);
    Ranking { order: w.filter(|w| name.regions.contains(w)).into_iter().collect(), scope: 0 }
}

/// The ranking `route` filters: the policy's, or the writer's. Under residency, the
/// best usable latency is sought among the regions the client may use.
pub fn ranking_for(model: &Model, n: &GslbName, client: &Client<'_>, health: &HealthView, confine: Confine) -> Ranking {
    match n.ranker {
        Ranker::Writer { cluster, .. } => writer_ranking(model, n, cluster, health),
        _ if confine == Confine::Anywhere => rank(model, n, client, health),
        _ => rank_by(model, n, &n.ranker, client, &|r| confine.allows(model, r) && usable(model, n, health, r)),
    }
}

/// Decides the answer for a GSLB name.
pub fn route(model: &Model, health: &HealthView, name: usize, client: &Client<'_>) -> Route {
    let n = &model.names[name];
    let placement = place(model, n, client);
    finish(model, n, &ranking_for(model, n, client, health, placement.confine), placement, health, client.prefix)
}

/// The shared tail of every policy: residency, health filter, cut, all-down rule, TTL.
pub fn finish(
    model: &Model,
    n: &GslbName,
    ranking: &Ranking,
    placement: Placement,
    health: &HealthView,
    client_prefix: u8,
) -> Route {
    let scope = ranking.scope.max(placement.scope).min(client_prefix);
    let confine = placement.confine;
    let partitioned: (Regions, Regions);
    let (order, excluded): (&Regions, Regions) = match confine {
        Confine::Anywhere => (&ranking.order, Regions::new()),
        _ => {
            partitioned = ranking.order.iter().copied().partition(|&r| confine.allows(model, r));
            (&partitioned.0, partitioned.1.clone())
        }
    };
    let ideal = || order.iter().copied().take(n.answers).collect::<Regions>();
    let route =
        |regions, members, ttl, outcome, excluded| Route { regions, members, ttl, scope, outcome, confine, excluded };
    if matches!(n.ranker, Ranker::Static) {
        return route(ideal(), Members::new(), n.ttl, Outcome::Preferred, excluded);
    }
    if confine == Confine::Nowhere {
        return route(Regions::new(), Members::new(), n.failover_ttl, Outcome::Unlocated, excluded);
    }
    let chosen: Regions = order.iter().copied().filter(|&r| usable(model, n, health, r)).take(n.answers).collect();
    if !chosen.is_empty() {
        let preferred = order.iter().take(n.answers).eq(chosen.iter());
        let outcome = if preferred { Outcome::Preferred } else { Outcome::Fallback };
        // Within hold-down of a change among this name's regions (or of the writer, or
        // of a member's freshness), caches are told to come back soon.
        let regions_settled = || !n.regions.iter().any(|&r| health.recent[r as usize]);
        // An operator's notice (before a drain) or hold-down (after an undrain) shortens
        // the TTL of every name that uses the region, whatever its policy.
        let unnoticed = !n.regions.iter().any(|&r| health.noticed[r as usize]);
        let (members, settled) = match &n.ranker {
            Ranker::Writer { cluster, require_gateway } => {
                let view = &health.clusters[*cluster as usize];
                let settled = !view.writer_unsettled && (!require_gateway || regions_settled());
                (view.writer.into_iter().collect(), settled)
            }
            Ranker::Reader { cluster, slot, require_gateway, .. } => {
                let members = chosen.iter().flat_map(|&r| fresh_members(model, health, *cluster, *slot, r)).collect();
                (members, !health.readers[*slot].recent && (!require_gateway || regions_settled()))
            }
            _ => (Members::new(), regions_settled()),
        };
        let settled = settled && unnoticed;
        let ttl = if preferred && settled { n.ttl } else { n.failover_ttl };
        return route(chosen, members, ttl, outcome, excluded);
    }
    // The all-down answer is the same for every client only if the candidates are:
    // keep the ranking's scope (it is /0 for client-independent policies).
    // A member answers only from a region the client may use.
    let allowed = |cluster: u16, m: Option<MemberId>| {
        m.filter(|&m| confine.allows(model, model.clusters[cluster as usize].members[m as usize].region))
    };
    let members_of = |cluster: u16, m: Option<MemberId>| match m {
        Some(m) => {
            let region = model.clusters[cluster as usize].members[m as usize].region;
            (std::iter::once(region).collect(), std::iter::once(m).collect())
        }
        None => (Regions::new(), Members::new()),
    };
    let (regions, members, outcome) = match (&n.when_all_down, &n.ranker) {
        // A writer name fails open only to a primary this instance saw.
        (AllDown::FailOpen, Ranker::Writer { cluster, .. }) => {
            let last = allowed(*cluster, health.clusters[*cluster as usize].last_primary);
            let (regions, members) = members_of(*cluster, last);
            (regions, members, if last.is_some() { Outcome::AllDownFailOpen } else { Outcome::AllDownUnknown })
        }
        // Stale reads, chosen explicitly: the members in the preferred regions that
        // answer with a known lag (never one down or of another cluster).
        (AllDown::FailOpen, Ranker::Reader { cluster, .. }) => {
            let regions = ideal();
            let lag = &health.clusters[*cluster as usize].lag;
            let all = &model.clusters[*cluster as usize].members;
            // In the client's order of regions, so that the first is the nearest.
            let members: Members = regions
                .iter()
                .flat_map(|&r| {
                    all.iter().enumerate().filter(move |(i, m)| m.region == r && lag[*i].is_some()).map(|(i, _)| i)
                })
                .map(|i| i as MemberId)
                .collect();
            let outcome = if members.is_empty() { Outcome::AllDownUnknown } else { Outcome::AllDownFailOpen };
            (regions, members, outcome)
        }
        // Residency left no candidate to fail open to.
        (AllDown::FailOpen, _) if order.is_empty() => (Regions::new(), Members::new(), Outcome::AllDownServFail),
        (AllDown::FailOpen, _) => (ideal(), Members::new(), Outcome::AllDownFailOpen),
        (AllDown::Writer, Ranker::Reader { cluster, .. }) => {
            let writer = allowed(*cluster, health.clusters[*cluster as usize].writer);
            let (regions, members) = members_of(*cluster, writer);
            (regions, members, if writer.is_some() { Outcome::AllDownWriter } else { Outcome::AllDownUnknown })
        }
        (AllDown::Writer, _) | (AllDown::ServFail, _) => (Regions::new(), Members::new(), Outcome::AllDownServFail),
        (AllDown::Fallback { .. }, _) => (Regions::new(), Members::new(), Outcome::AllDownFallback),
    };
    route(regions, members, n.failover_ttl, outcome, excluded)
}

/// The GeoIP-bound scope: a decision that used GeoIP holds for the matched network.
fn geo_scope(client: &Client<'_>) -> u8 {
    client.geo().map_or(0, |g| g.prefix)
}

#[cfg(test)]
mod tests;
