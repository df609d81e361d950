//! `latency`: lowest RTT per the operator's latency table, most specific row first.
//!
//! Regions whose RTT is within `tie_window` ms of the best usable one share that place;
//! among them the order is a stable hash of the client network, so traffic splits
//! across them while each client network keeps its choice. Regions the row does not
//! mention rank last, in configured order; a client no row covers gets configured order.

use super::{Client, Ranking, Regions, geo_scope};
use crate::hash::hash64;
use crate::model::area::AreaTable;
use crate::model::{GslbName, Model, RegionId};

pub(super) fn rank(
    model: &Model,
    name: &GslbName,
    table: &AreaTable<Vec<Option<u32>>>,
    tie_window: u32,
    client: &Client<'_>,
    usable: &dyn Fn(RegionId) -> bool,
) -> Ranking {
    let m = table.lookup(client.addr, || client.geo().map(|g| &g.info));
    let mut scope = m.scope;
    if m.used_geo {
        scope = scope.max(geo_scope(client));
    }
    let Some(row) = m.row else {
        return Ranking { order: name.regions.iter().copied().collect(), scope };
    };
    let rtt = |r: u16| row[r as usize].unwrap_or(u32::MAX);
    let best_up = name.regions.iter().filter(|&&r| usable(r)).map(|&r| rtt(r)).min();
    let best = best_up.unwrap_or_else(|| name.regions.iter().map(|&r| rtt(r)).min().unwrap_or(u32::MAX));
    let tier_top = best.saturating_add(tie_window);
    let sticky = client.sticky_hash();
    let mut tied = 0;
    let mut keyed: Regions = name.regions.iter().copied().collect();
    let key = |r: u16| {
        let t = rtt(r);
        if tie_window > 0 && t >= best && t <= tier_top && t != u32::MAX {
            (best, hash64(sticky, model.regions[r as usize].hash))
        } else {
            (t, 0)
        }
    };
    for &r in name.regions.iter() {
        if tie_window > 0 && rtt(r) >= best && rtt(r) <= tier_top && rtt(r) != u32::MAX {
            tied += 1;
        }
    }
    keyed.sort_by_key(|&r| key(r));
    if tied > 1 {
        scope = scope.max(client.sticky_prefix());
    }
    Ranking { order: keyed, scope }
}
