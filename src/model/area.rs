//! Client-area tables: the compiled form of latency rows and geo maps.
//!
//! A lookup picks the most specific row that covers the client (CIDR, longest prefix
//! first, then subdivision, country, continent, default) and says how wide a block of
//! addresses around the client would get the same row: the ECS scope the decision can
//! honestly claim.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::Area;
use crate::geo::GeoInfo;

/// A binary trie of CIDR networks for one address family.
#[derive(Debug, Clone, Default)]
struct Trie {
    /// Node 0 is the root. `children[b]` is 0 when absent (the root is never a child).
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: [u32; 2],
    row: Option<u32>,
}

fn bit(addr: u128, i: u8) -> usize {
    ((addr >> (127 - i)) & 1) as usize
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => ((u32::from(v4) as u128) << 96, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl Trie {
    fn insert(&mut self, addr: u128, len: u8, row: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0usize;
        for i in 0..len {
            let b = bit(addr, i);
            let next = self.nodes[at].children[b];
            at = if next == 0 {
                self.nodes.push(Node::default());
                let new = (self.nodes.len() - 1) as u32;
                self.nodes[at].children[b] = new;
                new as usize
            } else {
                next as usize
            };
        }
        self.nodes[at].row = Some(row);
    }

    /// The deepest row covering `addr`, and the prefix length below which every
    /// address agrees with `addr` on that outcome.
    fn lookup(&self, addr: u128, max: u8) -> (Option<u32>, u8) {
        if self.nodes.is_empty() {
            return (None, 0);
        }
        let mut at = 0usize;
        let mut row = self.nodes[0].row;
        let mut depth = 0u8;
        loop {
            let node = &self.nodes[at];
            if node.children == [0, 0] {
                return (row, depth);
            }
            if depth == max {
                return (row, depth);
            }
            let next = node.children[bit(addr, depth)];
            if next == 0 {
                // Our side of this node holds no rows: the block one bit longer is uniform.
                return (row, depth + 1);
            }
            at = next as usize;
            depth += 1;
            if let Some(r) = self.nodes[at].row {
                row = Some(r);
            }
        }
    }
}

/// Rows of `T` keyed by client area.
#[derive(Debug, Clone)]
pub struct AreaTable<T> {
    rows: Vec<T>,
    v4: Trie,
    v6: Trie,
    subdivision: HashMap<([u8; 2], [u8; 3]), u32>,
    country: HashMap<[u8; 2], u32>,
    continent: HashMap<[u8; 2], u32>,
    default: Option<u32>,
    keys: Vec<Area>,
}

/// The outcome of a table lookup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AreaMatch<'a, T> {
    pub row: Option<&'a T>,
    pub index: Option<usize>,
    /// Bits of the client address the outcome depends on.
    pub scope: u8,
    /// Whether the outcome depended on GeoIP (then the GeoIP network prefix also bounds the scope).
    pub used_geo: bool,
}

impl<T> AreaTable<T> {
    pub fn new(rows: impl IntoIterator<Item = (Area, T)>) -> Self {
        let mut t = AreaTable {
            rows: Vec::new(),
            v4: Trie::default(),
            v6: Trie::default(),
            subdivision: HashMap::new(),
            country: HashMap::new(),
            continent: HashMap::new(),
            default: None,
            keys: Vec::new(),
        };
        for (area, row) in rows {
            let i = t.rows.len() as u32;
            match &area {
                Area::Default => t.default = Some(i),
                Area::Continent(c) => {
                    t.continent.insert(*c, i);
                }
                Area::Country(c) => {
                    t.country.insert(*c, i);
                }
                Area::Subdivision(c, s) => {
                    let mut code = [0u8; 3];
                    for (o, b) in code.iter_mut().zip(s.bytes()) {
                        *o = b;
                    }
                    t.subdivision.insert((*c, code), i);
                }
                Area::Cidr(IpNet::V4(n)) => t.v4.insert((u32::from(n.network()) as u128) << 96, n.prefix_len(), i),
                Area::Cidr(IpNet::V6(n)) => t.v6.insert(u128::from(n.network()), n.prefix_len(), i),
            }
            t.rows.push(row);
            t.keys.push(area);
        }
        t
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether any row needs GeoIP to match.
    pub fn needs_geo(&self) -> bool {
        !(self.subdivision.is_empty() && self.country.is_empty() && self.continent.is_empty())
    }

    pub fn key(&self, index: usize) -> &Area {
        &self.keys[index]
    }

    /// Finds the row for a client. `geo` is asked only when no CIDR row matches.
    pub fn lookup<'g>(&self, ip: IpAddr, geo: impl FnOnce() -> Option<&'g GeoInfo>) -> AreaMatch<'_, T> {
        let (addr, max) = bits(ip);
        let trie = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        let (cidr_row, scope) = trie.lookup(addr, max);
        if let Some(i) = cidr_row {
            return self.matched(Some(i), scope, false);
        }
        if !self.needs_geo() {
            return self.matched(self.default, scope, false);
        }
        let Some(info) = geo() else {
            return self.matched(self.default, scope, true);
        };
        let by_sub = info.country.and_then(|c| {
            info.subdivisions.iter().rev().flatten().find_map(|s| self.subdivision.get(&(c, *s)).copied())
        });
        let row = by_sub
            .or_else(|| info.country.and_then(|c| self.country.get(&c).copied()))
            .or_else(|| info.continent.and_then(|c| self.continent.get(&c).copied()))
            .or(self.default);
        self.matched(row, scope, true)
    }

    fn matched(&self, row: Option<u32>, scope: u8, used_geo: bool) -> AreaMatch<'_, T> {
        AreaMatch { row: row.map(|i| &self.rows[i as usize]), index: row.map(|i| i as usize), scope, used_geo }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&str]) -> AreaTable<usize> {
        AreaTable::new(rows.iter().enumerate().map(|(i, r)| (Area::parse(r).unwrap(), i)))
    }

    #[test]
    fn cidr_rows_and_scopes() {
        let t = table(&["default", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"]);
        let check = |ip: &str, row: Option<usize>, scope: u8| {
            let m = t.lookup(ip.parse().unwrap(), || None);
            assert_eq!((m.row.copied(), m.scope), (row, scope), "{ip}");
        };
        // Inside 10.1/16, which has nothing below it: the whole /16 agrees.
        check("10.1.2.3", Some(2), 16);
        // Inside 10/8 but beside 10.1/16: the block must exclude 10.1/16.
        check("10.2.3.4", Some(1), 15);
        check("10.0.3.4", Some(1), 16);
        check("10.128.0.1", Some(1), 9);
        // Outside every row: only the first bit tells 10/8 apart from 192/8.
        check("192.0.2.1", Some(0), 1);
        check("2001:db8::1", Some(3), 32);
        check("2001:db9::1", Some(0), 32);
    }

    #[test]
    fn specificity_order() {
        let t = table(&["default", "continent:EU", "country:GB", "subdivision:GB-SCT"]);
        let mut info = GeoInfo { country: Some(*b"GB"), continent: Some(*b"EU"), ..GeoInfo::default() };
        let ip = "81.2.69.1".parse().unwrap();
        assert_eq!(t.lookup(ip, || Some(&info)).row, Some(&2));
        info.subdivisions[0] = Some(*b"SCT");
        assert_eq!(t.lookup(ip, || Some(&info)).row, Some(&3));
        info = GeoInfo { country: Some(*b"FR"), continent: Some(*b"EU"), ..GeoInfo::default() };
        assert_eq!(t.lookup(ip, || Some(&info)).row, Some(&1));
        info = GeoInfo { country: Some(*b"JP"), continent: Some(*b"AS"), ..GeoInfo::default() };
        assert_eq!(t.lookup(ip, || Some(&info)).row, Some(&0));
        assert_eq!(t.lookup(ip, || None).row, Some(&0));
        assert!(t.lookup(ip, || None).used_geo);
    }
}
