//! `nearest`: smallest great-circle distance from the client's GeoIP location.
//!
//! Each region's distance is scaled by `1 - bias/100` (Route 53 geoproximity style: a
//! positive bias draws clients from farther away). Clients without a location (the
//! database does not know the network) get the configured order.

use super::{Client, Ranking, Regions, geo_scope};
use crate::geo::distance_km;
use crate::model::{GslbName, Model, RegionId};

/// The biased distance from the client to a region, if both have a location.
pub(super) fn biased_km(model: &Model, region: RegionId, client: (f64, f64)) -> Option<f64> {
    let r = &model.regions[region as usize];
    let loc = r.location?;
    Some(distance_km(client, loc) * (1.0 - f64::from(r.bias) / 100.0))
}

pub(super) fn rank(model: &Model, name: &GslbName, client: &Client<'_>) -> Ranking {
    let scope = geo_scope(client);
    let order: Regions = match client.geo().and_then(|g| g.info.location) {
        Some(loc) => {
            // Each distance once, then a stable sort (configured order among equals).
            let mut keyed: smallvec::SmallVec<[(f64, RegionId); 16]> =
                name.regions.iter().map(|&r| (biased_km(model, r, loc).unwrap_or(f64::INFINITY), r)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            keyed.into_iter().map(|(_, r)| r).collect()
        }
        None => name.regions.iter().copied().collect(),
    };
    Ranking { order, scope }
}
