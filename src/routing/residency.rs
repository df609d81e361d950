//! Residency: the regions a strict name may answer one client with.
//!
//! A client belongs to the jurisdiction whose most specific client area covers it
//! (CIDR, subdivision, country, continent: the same table lookup as latency rows and
//! geo maps). A client no area covers is of no jurisdiction if GeoIP places it (or
//! there is no GeoIP database); otherwise it is *unlocated*, and the name's `unlocated`
//! setting says what it gets. So is a client whose ECS subnet is wider than the block
//! of addresses that decides its jurisdiction: that subnet may hold clients of several.
//! The ECS scope of the decision is bounded by that block.

use super::{Client, geo_scope};
use crate::model::{GslbName, Model, RegionId, Unlocated};

/// Where residency lets a name answer one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confine {
    /// Not a strict name, or a client of no jurisdiction: the policy alone decides.
    Anywhere,
    /// Only the regions of this jurisdiction (an index into `Residency::jurisdictions`).
    Within(u16),
    /// A client of unknown location that the name refuses (`unlocated = "servfail"`).
    Nowhere,
}

impl Confine {
    /// Whether a region may answer.
    pub fn allows(self, model: &Model, region: RegionId) -> bool {
        match self {
            Confine::Anywhere => true,
            Confine::Within(j) => model.residency.jurisdictions[j as usize].regions.contains(&region),
            Confine::Nowhere => false,
        }
    }
}

/// A client placed for one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub confine: Confine,
    /// Leading bits of the client address the placement depends on.
    pub scope: u8,
    /// The client's location was unknown (and `unlocated` decided).
    pub unlocated: bool,
}

impl Placement {
    pub const ANYWHERE: Placement = Placement { confine: Confine::Anywhere, scope: 0, unlocated: false };
}

/// Places `client` for name `n`: `Anywhere` at once for a name without strict residency.
pub fn place(model: &Model, n: &GslbName, client: &Client<'_>) -> Placement {
    let Some(unlocated) = n.residency else {
        return Placement::ANYWHERE;
    };
    let m = model.residency.clients.lookup(client.addr, || client.geo().map(|g| &g.info));
    let mut scope = m.scope;
    if m.used_geo {
        scope = scope.max(geo_scope(client));
    }
    // A client subnet wider than the block that decides its jurisdiction may hold
    // clients of several: its location is not known well enough to answer for all.
    let ambiguous = scope > client.prefix;
    match m.row {
        Some(&j) if !ambiguous => return Placement { confine: Confine::Within(j), scope, unlocated: false },
        Some(_) => {}
        None => {
            // Not in a jurisdiction's CIDRs: located if GeoIP places it (asked even when
            // every area is a CIDR, so that `unlocated` means the same everywhere);
            // without a GeoIP database, every such client is of no jurisdiction.
            let located = match model.geo {
                None => true,
                Some(_) => {
                    scope = scope.max(geo_scope(client));
                    client.geo().is_some_and(|g| g.found && (g.info.country.is_some() || g.info.continent.is_some()))
                }
            };
            if located && scope <= client.prefix {
                return Placement { confine: Confine::Anywhere, scope, unlocated: false };
            }
        }
    }
    let scope = scope.min(client.prefix);
    let confine = match unlocated {
        Unlocated::Open => Confine::Anywhere,
        Unlocated::ServFail => Confine::Nowhere,
        Unlocated::As(j) => Confine::Within(j),
    };
    Placement { confine, scope, unlocated: true }
}
