//! `geo`: an explicit map from client area to an ordered list of regions.
//!
//! The most specific matching entry wins (CIDR, subdivision, country, continent,
//! default); its list is the whole ranking: regions it does not name are never used
//! for those clients, so list every region you would accept, in order.

use super::{Client, Ranking, geo_scope};
use crate::model::RegionId;
use crate::model::area::AreaTable;

pub(super) fn rank(table: &AreaTable<Vec<RegionId>>, client: &Client<'_>) -> Ranking {
    let m = table.lookup(client.addr, || client.geo().map(|g| &g.info));
    let mut scope = m.scope;
    if m.used_geo {
        scope = scope.max(geo_scope(client));
    }
    Ranking { order: m.row.map(|r| r.iter().copied().collect()).unwrap_or_default(), scope }
}
