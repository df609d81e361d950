//! `weighted`: a weighted choice among up regions, sticky per client network.
//!
//! Weighted rendezvous hashing: each region scores `weight / -ln(u)`, `u` a stable hash
//! of the client's /24 (IPv4) or /56 (IPv6) and the region's name, uniform in (0, 1).
//! The highest score wins; when it is down the next one takes over, so only the
//! clients of a failed region move. Regions of weight 0 rank last, as backups.

use super::{Client, Ranking, Regions};
use crate::hash::hash64;
use crate::model::{GslbName, Model, RegionId};

pub(super) fn score(model: &Model, weights: &[u32], region: RegionId, sticky: u64) -> f64 {
    let w = weights[region as usize];
    if w == 0 {
        return -1.0;
    }
    let h = hash64(sticky, model.regions[region as usize].hash);
    // 53 random bits, shifted off zero so that ln() is finite.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(w) / -u.ln()
}

pub(super) fn rank(model: &Model, name: &GslbName, weights: &[u32], client: &Client<'_>) -> Ranking {
    let sticky = client.sticky_hash();
    let mut order: Regions = name.regions.iter().copied().collect();
    order.sort_by(|&a, &b| score(model, weights, b, sticky).total_cmp(&score(model, weights, a, sticky)));
    Ranking { order, scope: client.sticky_prefix() }
}
