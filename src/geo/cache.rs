//! The per-thread GeoIP caches, both keyed by the database's id so that a reload (a new
//! database) invalidates them: whole lookups by address, and decoded records by their
//! data offset.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{GeoInfo, GeoLookup};

/// Decoded records cached per thread and keyed by data offset: many networks share one
/// record (a country database has a few hundred), so most lookups decode nothing.
const CACHE_MAX: usize = 8192;

/// (database id, data offset → decoded record and whether it said anything).
type Cache = (u64, HashMap<usize, (GeoInfo, bool)>);

/// Whole lookups cached per thread by address, direct-mapped: resolvers send the same
/// client subnets again and again, and a hit skips the walk down the database's tree
/// (about 20 node reads for a million networks). A slot holds one address; a colliding
/// address replaces it.
const ADDR_SLOTS: usize = 16384;

/// (database id, slots of (address, its lookup)).
type AddrCache = (u64, Box<[Option<(IpAddr, GeoLookup)>]>);

thread_local! {
    static CACHE: std::cell::RefCell<Cache> = std::cell::RefCell::new((0, HashMap::new()));
    static ADDRS: std::cell::RefCell<AddrCache> = std::cell::RefCell::new((0, vec![None; ADDR_SLOTS].into()));
}

/// An address's slot in the address cache (Fibonacci hashing of its bits).
fn addr_slot(ip: IpAddr) -> usize {
    let bits = match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let b = u128::from(v6);
            (b >> 64) as u64 ^ b as u64 ^ 1 << 63
        }
    };
    (bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - ADDR_SLOTS.trailing_zeros())) as usize
}

/// The lookup of `ip` in database `db`: from the address cache, or `walk`ed and kept.
pub(super) fn lookup(db: u64, ip: IpAddr, walk: impl FnOnce() -> GeoLookup) -> GeoLookup {
    let slot = addr_slot(ip);
    let hit = ADDRS.with(|c| {
        let c = c.borrow();
        match c.1[slot] {
            Some((addr, found)) if c.0 == db && addr == ip => Some(found),
            _ => None,
        }
    });
    if let Some(found) = hit {
        return found;
    }
    let found = walk();
    ADDRS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != db {
            c.0 = db;
            c.1.fill(None);
        }
        c.1[slot] = Some((ip, found));
    });
    found
}

/// The record at `offset` in database `db`: from the record cache, or `decode`d and kept.
pub(super) fn record(db: u64, offset: usize, decode: impl FnOnce() -> (GeoInfo, bool)) -> (GeoInfo, bool) {
    let cached = CACHE.with(|c| {
        let c = c.borrow();
        if c.0 == db { c.1.get(&offset).copied() } else { None }
    });
    if let Some(hit) = cached {
        return hit;
    }
    let decoded = decode();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != db || c.1.len() >= CACHE_MAX {
            c.0 = db;
            c.1.clear();
        }
        c.1.insert(offset, decoded);
    });
    decoded
}
