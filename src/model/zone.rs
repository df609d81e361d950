//! The static part of the zone, compiled for lookup by lower-case wire-format name.
//!
//! Every owner name gets a node, and so does every empty non-terminal between it and
//! the apex, so that "no such name" and "no data of that type" are told apart by one
//! hash lookup. Delegation points (NS below the apex) are marked on their nodes.

use std::collections::HashMap;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::config::ZoneConfig;
use crate::config::dnssec::DnssecConfig;
use crate::model::dnssec::Signer;

/// One RRset.
#[derive(Debug, Clone)]
pub struct RrSet {
    pub rtype: RecordType,
    pub records: Vec<Record>,
}

/// What the zone holds at one name.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub rrsets: Vec<RrSet>,
    /// Index of the GSLB name at this node, if any.
    pub gslb: Option<usize>,
    /// NS records here delegate a child zone.
    pub delegation: bool,
}

impl Node {
    pub fn rrset(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// Where a query name falls.
#[derive(Debug)]
pub enum Lookup<'a> {
    OutOfZone,
    /// The name exists (possibly as an empty non-terminal).
    Found(&'a Node),
    /// The name is at or below a delegation point; the node is the cut's.
    Delegated(&'a Node),
    NxDomain,
}

#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: Name,
    origin_key: Box<[u8]>,
    pub soa: Record,
    /// The TTL of the SOA in negative answers: min(SOA TTL, SOA minimum), RFC 2308.
    pub negative_ttl: u32,
    nodes: HashMap<Box<[u8]>, Node>,
}

/// The lookup key of a name: its lower-case wire form.
pub fn key(name: &Name) -> Box<[u8]> {
    name.to_lowercase().to_bytes().unwrap_or_default().into_boxed_slice()
}

impl Zone {
    pub fn new(z: &ZoneConfig, dnssec: Option<&DnssecConfig>, gslb: &[Name]) -> Zone {
        let origin_key = key(&z.origin);
        let negative_ttl = match &z.soa.data {
            RData::SOA(soa) => soa.minimum.min(z.soa.ttl),
            _ => z.soa.ttl,
        };
        let mut zone =
            Zone { origin: z.origin.clone(), origin_key, soa: z.soa.clone(), negative_ttl, nodes: HashMap::new() };
        let mut keys = Vec::new();
        if let Some(d) = dnssec {
            keys = Signer::dnskeys(d, &z.origin);
            if d.cds {
                keys.extend(Signer::cds(d, &z.origin));
            }
        }
        let apex = std::iter::once(&z.soa).chain(&z.ns).chain(&keys);
        for record in apex.chain(&z.records) {
            let node = zone.node_mut(&record.name);
            match node.rrsets.iter_mut().find(|s| s.rtype == record.record_type()) {
                // An RRset has no duplicates (RFC 2181 5).
                Some(set) if set.records.iter().any(|r| r.data == record.data) => {}
                Some(set) => set.records.push(record.clone()),
                None => node.rrsets.push(RrSet { rtype: record.record_type(), records: vec![record.clone()] }),
            }
            if record.record_type() == RecordType::NS && record.name != z.origin {
                node.delegation = true;
            }
        }
        for (i, name) in gslb.iter().enumerate() {
            zone.node_mut(name).gslb = Some(i);
        }
        // An RRset has one TTL (RFC 2181 5.2): the lowest of its records'.
        for node in zone.nodes.values_mut() {
            for set in &mut node.rrsets {
                let ttl = set.records.iter().map(|r| r.ttl).min().unwrap_or(0);
                set.records.iter_mut().for_each(|r| r.ttl = ttl);
            }
        }
        zone
    }

    /// Every authoritative RRset (not a delegation's NS, not glue), to be signed when
    /// the model is built.
    pub fn signable(&self) -> Vec<Vec<Record>> {
        let mut out = Vec::new();
        for (k, node) in &self.nodes {
            let sets: Vec<&RrSet> = match self.lookup(k) {
                Lookup::Found(n) if std::ptr::eq(n, node) => node.rrsets.iter().collect(),
                Lookup::Delegated(n) if std::ptr::eq(n, node) => node.rrset(RecordType::DS).into_iter().collect(),
                _ => Vec::new(),
            };
            out.extend(sets.into_iter().map(|set| set.records.clone()));
        }
        out
    }

    /// The SOA as negative answers carry it: at the negative TTL.
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        soa.ttl = self.negative_ttl;
        soa
    }

    /// The types at a node, for a denial's NSEC.
    pub fn types(node: &Node) -> Vec<RecordType> {
        node.rrsets.iter().map(|s| s.rtype).collect()
    }

    /// The node for `name`, creating it and its empty ancestors up to the apex.
    fn node_mut(&mut self, name: &Name) -> &mut Node {
        let mut ancestor = name.base_name();
        while ancestor.num_labels() > self.origin.num_labels() {
            self.nodes.entry(key(&ancestor)).or_default();
            ancestor = ancestor.base_name();
        }
        self.nodes.entry(key(name)).or_default()
    }

    pub fn apex(&self) -> &Node {
        &self.nodes[&self.origin_key]
    }

    /// Finds a name given its lower-case wire form.
    pub fn lookup(&self, qkey: &[u8]) -> Lookup<'_> {
        // Label start offsets, to walk suffixes without allocating.
        let mut starts = [0u8; 128];
        let mut count = 0usize;
        let mut pos = 0usize;
        let mut origin_at = None;
        while pos < qkey.len() {
            if qkey[pos..] == *self.origin_key {
                origin_at = Some(count);
                break;
            }
            let len = qkey[pos] as usize;
            if len == 0 || count == starts.len() {
                break;
            }
            starts[count] = pos as u8;
            count += 1;
            pos += len + 1;
        }
        let Some(labels_below) = origin_at else {
            return Lookup::OutOfZone;
        };
        // From just below the apex down to the name itself: the first cut wins.
        for i in (0..labels_below).rev() {
            let suffix = &qkey[starts[i] as usize..];
            match self.nodes.get(suffix) {
                Some(node) if node.delegation => return Lookup::Delegated(node),
                Some(node) if i == 0 => return Lookup::Found(node),
                Some(_) => {}
                None => return Lookup::NxDomain,
            }
        }
        Lookup::Found(self.apex())
    }

    /// Addresses of in-zone name servers, for the additional section.
    pub fn glue<'a>(&'a self, ns: &'a [Record]) -> impl Iterator<Item = &'a Record> + 'a {
        ns.iter()
            .filter_map(|r| match &r.data {
                RData::NS(n) => self.nodes.get(&key(&n.0)),
                _ => None,
            })
            .flat_map(|node| node.rrsets.iter().filter(|s| matches!(s.rtype, RecordType::A | RecordType::AAAA)))
            .flat_map(|s| s.records.iter())
    }
}
