//! The UDP fast path: the common queries answered straight from the raw packet.
//!
//! It reads the header, the question and the OPT record in place, decides with the
//! same zone lookup and the same GSLB decision (`answer::decide`) as the general path,
//! and writes the answer into a reused buffer: no per-query allocation, no task, no
//! message structs. It only parses and encodes. It declines
//! (returns `None`) anything outside its shapes, and the general path (hickory) answers
//! those: TCP, odd headers, other types, CNAMEs, referrals, NODATA, errors, anything
//! that would not fit. It writes exactly the bytes hickory's encoder would, name
//! compression included, which the tests check query by query.
//!
//! Shapes: an A or AAAA query for a GSLB name whose decision is addresses (its regions'
//! or the all-down fallback's) or a static A/AAAA RRset, and NXDOMAIN with the SOA;
//! with or without EDNS(0), with or without ECS. With DO in a signed zone: the address
//! answers and NXDOMAIN denials whose signatures are in the signature cache (the general
//! path signs what is not, and puts it there).

use std::net::IpAddr;

use hickory_proto::rr::{RData, Record, RecordType};

use super::answer::{Answer, decide};
use super::client::{EcsPolicy, from_query};
use super::wire::{self, u16_at};
use crate::model::dnssec::{Kept, rrset_key_into, unix_now};
use crate::model::zone::{Lookup, Node};
use crate::state::Snapshot;

/// What the fast path answered, for the query counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub qtype: u16,
    pub rcode: u16,
    pub region: Option<u16>,
    /// Residency restricted the answer: the residency counter slot.
    pub restricted: Option<u16>,
}

/// The parsed parts of a query the fast path can take.
struct Query {
    id: u16,
    rd: bool,
    cd: bool,
    /// Question bytes: name, type, class (copied into the answer as they came).
    question: (usize, usize),
    /// The question name without its root label, as written (case preserved).
    name_end: usize,
    qtype: u16,
    /// The client's EDNS: (udp size, DO bit), if it sent an OPT.
    edns: Option<(u16, bool)>,
    /// The CO bit (RFC 9824: a compact denial keeps NXDOMAIN).
    compact_ok: bool,
    /// Where the OPT record's options are, if it sent one.
    options: Option<std::ops::Range<usize>>,
}

/// Parses the query; `key` receives the lower-case wire name. `None`: not our shape.
fn parse(p: &[u8], key: &mut [u8; 256]) -> Option<(Query, usize)> {
    if p.len() < 12 || p[2] & 0x80 != 0 || (p[2] >> 3) & 0x0F != 0 || p[2] & 0x02 != 0 {
        return None;
    }
    if u16_at(p, 4)? != 1 || u16_at(p, 6)? != 0 || u16_at(p, 8)? != 0 {
        return None;
    }
    let arcount = u16_at(p, 10)?;
    if arcount > 1 {
        return None;
    }
    // The name, written out in full (a compressed question gets FORMERR on the general path).
    let end = wire::plain_name_end(p, 12)?;
    let klen = end - 12;
    for (k, b) in key[..klen].iter_mut().zip(&p[12..end]) {
        *k = b.to_ascii_lowercase();
    }
    let name_end = end - 1;
    let mut pos = end;
    let qtype = u16_at(p, pos)?;
    if u16_at(p, pos + 2)? != 1 {
        return None;
    }
    pos += 4;
    let question = (12, pos);
    let (mut edns, mut options, mut compact_ok) = (None, None, false);
    if arcount == 1 {
        // OPT: root name, type 41, class = udp size, ttl = ext rcode, version, flags.
        if *p.get(pos)? != 0 || u16_at(p, pos + 1)? != 41 {
            return None;
        }
        let size = u16_at(p, pos + 3)?;
        if *p.get(pos + 5)? != 0 || *p.get(pos + 6)? != 0 {
            return None; // extended rcode or version: the general path answers (BADVERS)
        }
        let flags = u16_at(p, pos + 7)?;
        let rdlen = u16_at(p, pos + 9)? as usize;
        let end = pos + 11 + rdlen;
        if end != p.len() {
            return None;
        }
        // Only ECS options: anything else goes the general way.
        let mut o = pos + 11;
        while o < end {
            let code = u16_at(p, o)?;
            let len = u16_at(p, o + 2)? as usize;
            if code != 8 || o + 4 + len > end {
                return None;
            }
            o += 4 + len;
        }
        edns = Some((size, flags & 0x8000 != 0));
        compact_ok = flags & 0x4000 != 0;
        options = Some(pos + 11..end);
    } else if pos != p.len() {
        return None;
    }
    let query = Query {
        id: u16_at(p, 0)?,
        rd: p[2] & 1 != 0,
        cd: p[3] & 0x10 != 0,
        question,
        name_end,
        qtype,
        edns,
        compact_ok,
        options,
    };
    Some((query, klen))
}

/// Names already written, for compression: hickory's algorithm (store every label
/// suffix, as a copy; point at an exact earlier suffix). Reused across queries.
#[derive(Default)]
struct Names {
    /// (offset in the message, start and end in `bytes`)
    entries: Vec<(u16, u16, u16)>,
    bytes: Vec<u8>,
}

/// A worker's reusable buffers: the answer, the compression table, a signature
/// cache key.
#[derive(Default)]
pub struct Scratch {
    pub out: Vec<u8>,
    names: Names,
    key: Vec<u8>,
}

impl Names {
    fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
    }

    /// Remembers the suffixes of an uncompressed name written at `out[start..]` (up to
    /// its root label), as hickory does for names it may not compress (RDATA).
    fn remember(&mut self, out: &[u8], start: usize) {
        let mut end = start;
        while let Some(&len) = out.get(end) {
            if len == 0 {
                break;
            }
            end += len as usize + 1;
        }
        let mut at = start;
        while at < end && end <= out.len() {
            if end < 0x3FFF && self.entries.len() < 64 {
                let a = self.bytes.len() as u16;
                self.bytes.extend_from_slice(&out[at..end]);
                self.entries.push((at as u16, a, self.bytes.len() as u16));
            }
            at += out[at] as usize + 1;
        }
    }

    /// Writes a name given as wire labels without the root label.
    fn emit(&mut self, out: &mut Vec<u8>, labels: &[u8]) -> Option<()> {
        let start = out.len();
        out.extend_from_slice(labels);
        let last = out.len();
        let mut at = 0;
        while at < labels.len() {
            let idx = start + at;
            let suffix = &out[idx..last];
            let bytes = &self.bytes;
            let hit = self.entries.iter().find(|(_, a, b)| &bytes[*a as usize..*b as usize] == suffix);
            match hit {
                Some((loc, _, _)) if *loc & 0xC000 == 0 => {
                    let loc = *loc;
                    out.truncate(idx);
                    out.extend_from_slice(&(0xC000 | loc).to_be_bytes());
                    return Some(());
                }
                _ => {
                    // hickory keeps at most 64 candidates.
                    if idx < 0x3FFF && self.entries.len() < 64 {
                        let a = self.bytes.len() as u16;
                        self.bytes.extend_from_slice(suffix);
                        self.entries.push((idx as u16, a, self.bytes.len() as u16));
                    }
                }
            }
            at += labels[at] as usize + 1;
        }
        out.push(0);
        Some(())
    }
}

/// The wire labels of a name (no root), into `buf`.
fn labels_of(name: &hickory_proto::rr::Name, buf: &mut [u8; 256]) -> Option<usize> {
    let mut n = 0;
    for label in name.iter() {
        if n + 1 + label.len() > 255 {
            return None;
        }
        buf[n] = label.len() as u8;
        buf[n + 1..n + 1 + label.len()].copy_from_slice(label);
        n += 1 + label.len();
    }
    Some(n)
}

fn rr_head(out: &mut Vec<u8>, rtype: u16, ttl: u32) {
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
}

/// Answers `packet` from `snap` into `out`, or declines.
pub fn answer(snap: &Snapshot, packet: &[u8], src: IpAddr, scratch: &mut Scratch) -> Option<Answered> {
    let Scratch { out, names, key: sig_key } = scratch;
    names.clear();
    let model = &*snap.model;
    let mut key = [0u8; 256];
    let (q, klen) = parse(packet, &mut key)?;
    if q.qtype != 1 && q.qtype != 28 {
        return None;
    }
    let server = &model.dns;
    let policy = EcsPolicy { enabled: server.ecs, trusted: &server.ecs_trusted };
    let client = from_query(src, q.options.clone().map(|o| &packet[o]), policy).ok()?;
    let qtype = if q.qtype == 1 { RecordType::A } else { RecordType::AAAA };

    // Decide: the records (as addresses) or NXDOMAIN.
    let mut addrs: [Option<(IpAddr, u32)>; 16] = [None; 16];
    let mut n = 0;
    let mut push = |ip: IpAddr, ttl: u32| {
        if n < addrs.len() {
            addrs[n] = Some((ip, ttl));
        }
        n += 1;
    };
    let mut scope = 0;
    let mut region = None;
    let mut restricted = None;
    let nxdomain = match model.zone.lookup(&key[..klen]) {
        Lookup::NxDomain => true,
        Lookup::Found(Node { gslb: Some(i), .. }) => {
            let d = decide(snap, *i, &client);
            if matches!(d.answer, Answer::ServFail | Answer::Cname(_)) {
                return None;
            }
            scope = d.scope;
            region = d.region;
            restricted = d.restricted;
            d.addresses(model, qtype, |ip| push(ip, d.ttl));
            false
        }
        Lookup::Found(node) => {
            let set = node.rrset(qtype)?;
            for r in &set.records {
                match &r.data {
                    RData::A(a) => push(IpAddr::V4(a.0), r.ttl),
                    RData::AAAA(a) => push(IpAddr::V6(a.0), r.ttl),
                    _ => return None,
                }
            }
            false
        }
        Lookup::OutOfZone | Lookup::Delegated(_) => return None,
    };
    if (!nxdomain && n == 0) || n > addrs.len() {
        return None; // NODATA or a very large set: the general path
    }
    // A signed answer: the RRset's signatures, if cached (else the general path signs).
    // A signed NXDOMAIN: the SOA's and the compact denial's (RFC 9824), if cached.
    let mut denial = None;
    let signed = match (&model.signer, q.edns) {
        (Some(signer), Some((_, true))) if nxdomain => {
            let now = unix_now();
            // The NSEC's RDATA: next name `\000.qname` (lower case), then the bitmap.
            let mut rdata = [0u8; 512];
            let len = 2 + klen + signer.nxname_bitmap.len();
            if 2 + klen > 255 {
                return None;
            }
            rdata[..2].copy_from_slice(&[1, 0]);
            rdata[2..2 + klen].copy_from_slice(&key[..klen]);
            rdata[2 + klen..len].copy_from_slice(&signer.nxname_bitmap);
            let ttl = model.zone.negative_ttl;
            rrset_key_into(sig_key, &key[..klen], 47, ttl, &mut [&rdata[..len]]);
            let nsec = signer.cached(sig_key, now, Kept::Denial)?;
            let soa = signer.cached(&signer.soa_key, now, Kept::Answer)?;
            denial = Some((soa, nsec, rdata, len));
            None
        }
        (Some(signer), Some((_, true))) => {
            let mut octets = [[0u8; 16]; 16];
            let mut lens = [0usize; 16];
            for (i, (ip, _)) in addrs[..n].iter().flatten().enumerate() {
                lens[i] = match ip {
                    IpAddr::V4(v4) => {
                        octets[i][..4].copy_from_slice(&v4.octets());
                        4
                    }
                    IpAddr::V6(v6) => {
                        octets[i] = v6.octets();
                        16
                    }
                };
            }
            let mut rdatas: [&[u8]; 16] = [&[]; 16];
            for i in 0..n {
                rdatas[i] = &octets[i][..lens[i]];
            }
            let ttl = addrs[0].map_or(0, |(_, ttl)| ttl);
            rrset_key_into(sig_key, &key[..klen], q.qtype, ttl, &mut rdatas[..n]);
            Some((signer.cached(sig_key, unix_now(), Kept::Answer)?, ttl))
        }
        _ => None,
    };
    let sigs = signed.as_ref().map_or(0, |(s, _)| s.wire.len());
    let authority = match &denial {
        Some((soa, nsec, ..)) => 2 + soa.wire.len() + nsec.wire.len(),
        None => usize::from(nxdomain),
    };

    // Encode, as hickory would.
    out.clear();
    let rcode: u16 = if nxdomain && (denial.is_none() || q.compact_ok) { 3 } else { 0 };
    out.extend_from_slice(&q.id.to_be_bytes());
    out.push(0x80 | 0x04 | u8::from(q.rd));
    out.push(if q.cd { 0x10 } else { 0 } | rcode as u8);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&((n + sigs) as u16).to_be_bytes());
    out.extend_from_slice(&(authority as u16).to_be_bytes());
    out.extend_from_slice(&u16::from(q.edns.is_some()).to_be_bytes());
    out.extend_from_slice(&packet[q.question.0..q.question.1]);
    let owner = &packet[12..q.name_end];
    for (ip, ttl) in addrs[..n].iter().flatten() {
        names.emit(out, owner)?;
        match ip {
            IpAddr::V4(v4) => {
                rr_head(out, 1, *ttl);
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                rr_head(out, 28, *ttl);
                out.extend_from_slice(&16u16.to_be_bytes());
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    if let Some((signed, ttl)) = &signed {
        rrsigs(out, names, owner, signed, *ttl)?;
    }
    if nxdomain {
        let ttl = model.zone.negative_ttl;
        soa(out, names, &model.zone.soa, ttl)?;
        if let Some((soa_sigs, nsec_sigs, rdata, len)) = &denial {
            let mut buf = [0u8; 256];
            let n = labels_of(&model.zone.soa.name, &mut buf)?;
            rrsigs(out, names, &buf[..n], soa_sigs, ttl)?;
            names.emit(out, owner)?;
            rr_head(out, 47, ttl);
            out.extend_from_slice(&(*len as u16).to_be_bytes());
            let at = out.len();
            out.extend_from_slice(&rdata[..*len]);
            // The next name is written whole, but hickory keeps its suffixes for
            // compression all the same.
            names.remember(out, at);
            rrsigs(out, names, owner, nsec_sigs, ttl)?;
        }
    }
    let mut limit = 512usize;
    if let Some((size, dnssec_ok)) = q.edns {
        let ours = server.edns_udp_size;
        let payload = ours.min(size.max(512)).max(512);
        limit = payload as usize;
        out.push(0);
        out.extend_from_slice(&41u16.to_be_bytes());
        out.extend_from_slice(&payload.to_be_bytes());
        let co = if dnssec_ok && q.compact_ok { 0x4000u32 } else { 0 };
        out.extend_from_slice(&(if dnssec_ok { 0x8000u32 | co } else { 0 }).to_be_bytes());
        match client.ecs {
            Some(ecs) => {
                let addr_len = ecs.source_prefix().div_ceil(8) as usize;
                out.extend_from_slice(&(8 + addr_len as u16).to_be_bytes());
                out.extend_from_slice(&8u16.to_be_bytes());
                out.extend_from_slice(&(4 + addr_len as u16).to_be_bytes());
                out.extend_from_slice(&(if ecs.addr().is_ipv4() { 1u16 } else { 2 }).to_be_bytes());
                out.push(ecs.source_prefix());
                out.push(scope.min(ecs.source_prefix()));
                match ecs.addr() {
                    IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..addr_len]),
                    IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..addr_len]),
                }
            }
            None => out.extend_from_slice(&0u16.to_be_bytes()),
        }
    }
    if out.len() > limit {
        return None; // would be truncated: the general path sets TC
    }
    Some(Answered { qtype: q.qtype, rcode, region, restricted })
}

/// The RRSIG records of one RRset at `owner` (wire labels without the root).
fn rrsigs(
    out: &mut Vec<u8>,
    names: &mut Names,
    owner: &[u8],
    signed: &crate::model::dnssec::Signed,
    ttl: u32,
) -> Option<()> {
    for rdata in &signed.wire {
        names.emit(out, owner)?;
        rr_head(out, 46, ttl);
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        let at = out.len();
        out.extend_from_slice(rdata);
        // The signer's name (after 18 fixed bytes) is written whole and remembered.
        names.remember(out, at + 18);
    }
    Some(())
}

fn soa(out: &mut Vec<u8>, names: &mut Names, soa: &Record, ttl: u32) -> Option<()> {
    let RData::SOA(s) = &soa.data else { return None };
    let mut buf = [0u8; 256];
    let n = labels_of(&soa.name, &mut buf)?;
    names.emit(out, &buf[..n])?;
    rr_head(out, 6, ttl);
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    let n = labels_of(&s.mname, &mut buf)?;
    names.emit(out, &buf[..n])?;
    let n = labels_of(&s.rname, &mut buf)?;
    names.emit(out, &buf[..n])?;
    out.extend_from_slice(&s.serial.to_be_bytes());
    out.extend_from_slice(&s.refresh.to_be_bytes());
    out.extend_from_slice(&s.retry.to_be_bytes());
    out.extend_from_slice(&s.expire.to_be_bytes());
    out.extend_from_slice(&s.minimum.to_be_bytes());
    let rdlen = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    Some(())
}
