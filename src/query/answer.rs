//! From a query and a snapshot to a response: a pure function, no I/O.
//!
//! This is the one place where DNS outcomes (answer, referral, NODATA, NXDOMAIN,
//! REFUSED, SERVFAIL) are decided; `handler` only encodes what it returns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::client;
use crate::model::AllDown;
use crate::model::zone::{Lookup, Node, key};
use crate::model::{Model, Ranker, RegionId};
use crate::routing::{self, Confine, Outcome};
use crate::state::Snapshot;

/// The question, as the handler extracted it.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The name as the client wrote it (case preserved).
    pub name: &'a Name,
    /// Lower-case wire form of `name`.
    pub key: &'a [u8],
    pub qtype: RecordType,
    pub qclass: DNSClass,
    /// The query's DO bit: sign the answer (if the zone is signed).
    pub dnssec_ok: bool,
    /// The query's CO bit (RFC 9824 "Compact Answers OK"): a compact denial of a name
    /// that does not exist keeps the NXDOMAIN code.
    pub compact_ok: bool,
}

/// What to send back (the handler adds header, question and OPT).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// ECS scope to echo: the bits of the client address the answer depends on.
    pub scope: u8,
    /// The first region answered, for metrics.
    pub region: Option<RegionId>,
    /// Residency restricted the answer: the residency counter slot, for metrics.
    pub restricted: Option<u16>,
    /// What a signed answer must prove does not exist.
    pub denial: Option<Denial>,
}

/// What a negative answer (or an unsigned delegation) denies, for DNSSEC.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    /// This name does not exist.
    Name(Name),
    /// This name has only these types (not the one asked for; at a delegation: no DS).
    Types(Name, Vec<RecordType>),
}

impl Response {
    fn new(rcode: ResponseCode, authoritative: bool) -> Response {
        Response {
            rcode,
            authoritative,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            scope: 0,
            region: None,
            restricted: None,
            denial: None,
        }
    }

    pub fn refused() -> Response {
        Response::new(ResponseCode::Refused, false)
    }

    pub fn new_servfail() -> Response {
        Response::new(ResponseCode::ServFail, false)
    }
}

/// CNAME chains inside the zone are followed at most this far.
const MAX_CHAIN: usize = 8;

/// Answers one question from one snapshot; signed if the query has DO and the zone has
/// keys (`now`: unix seconds, for the signatures).
pub fn resolve(snap: &Snapshot, q: &Question<'_>, client: &client::Client, now: u32) -> Response {
    let mut r = unsigned(snap, q, client);
    if q.dnssec_ok
        && q.qclass == DNSClass::IN
        && let Some(signer) = &snap.model.signer
    {
        super::sign::secure(&snap.model, signer, q, &mut r, now);
    }
    r
}

fn unsigned(snap: &Snapshot, q: &Question<'_>, client: &client::Client) -> Response {
    // Tests prove that a panicking query costs only itself (built only with the
    // `fault-injection` feature, which the test command turns on).
    #[cfg(feature = "fault-injection")]
    if q.key.starts_with(b"\x15fault-injection-panic") {
        panic!("fault injection: this query panics");
    }
    let model = &*snap.model;
    match q.qclass {
        DNSClass::IN => {}
        DNSClass::CH => return chaos(model, q),
        _ => return Response::refused(),
    }
    match u16::from(q.qtype) {
        // Zone transfers are not offered.
        251 | 252 => return Response::refused(),
        // Not a type one can ask for.
        0 | 41 => return Response::new(ResponseCode::FormErr, false),
        // TKEY, TSIG, MAILB, MAILA: meta types we do not implement.
        249 | 250 | 253 | 254 => return Response::new(ResponseCode::NotImp, false),
        // NXNAME is for compact denials' NSEC only (RFC 9824 3.5).
        128 => return Response::new(ResponseCode::FormErr, false),
        _ => {}
    }
    let mut r = Response::new(ResponseCode::NoError, true);
    let mut owner = q.name.clone();
    let mut node = match model.zone.lookup(q.key) {
        Lookup::OutOfZone => return Response::refused(),
        Lookup::NxDomain => {
            r.denial = Some(Denial::Name(q.name.clone()));
            return negative(model, ResponseCode::NXDomain, r);
        }
        Lookup::Delegated(cut) => return referral(model, cut, q),
        Lookup::Found(node) => node,
    };
    for _ in 0..MAX_CHAIN {
        if let Some(name) = node.gslb {
            let before = r.answers.len();
            gslb(snap, name, &owner, q.qtype, client, &mut r);
            if r.rcode == ResponseCode::NoError && r.answers.len() == before {
                // NODATA, possibly at the end of a CNAME chain (RFC 2308 2.2). The name
                // has addresses, just not of this type (or not now).
                r.authority.push(soa(model));
                let types = [RecordType::A, RecordType::AAAA].into_iter().filter(|t| *t != q.qtype).collect();
                r.denial = Some(Denial::Types(owner, types));
            }
            return r;
        }
        let wanted = if q.qtype == RecordType::ANY {
            // RFC 8482: one RRset, not everything.
            node.rrsets.first()
        } else {
            node.rrset(q.qtype)
        };
        if let Some(set) = wanted {
            r.answers.extend(set.records.iter().map(|rec| with_owner(rec, &owner)));
            if q.qtype == RecordType::NS && owner == model.zone.origin {
                r.additional.extend(model.zone.glue(&set.records).cloned());
            }
            return r;
        }
        // In a signed zone NSEC and RRSIG live beside a CNAME (RFC 4035 2.5): asked for,
        // it is not followed.
        let follow = !(matches!(q.qtype, RecordType::NSEC | RecordType::RRSIG) && model.signer.is_some());
        let Some(cname) = node.rrset(RecordType::CNAME).filter(|_| follow) else {
            r.denial = Some(Denial::Types(owner, crate::model::zone::Zone::types(node)));
            return negative(model, ResponseCode::NoError, r);
        };
        let rec = &cname.records[0];
        r.answers.push(with_owner(rec, &owner));
        let RData::CNAME(CNAME(target)) = &rec.data else {
            return r;
        };
        node = match model.zone.lookup(&key(target)) {
            Lookup::Found(next) => next,
            // Out of zone or delegated: the resolver follows it from here.
            Lookup::OutOfZone | Lookup::Delegated(_) => return r,
            Lookup::NxDomain => {
                r.rcode = ResponseCode::NXDomain;
                r.authority.push(soa(model));
                r.denial = Some(Denial::Name(target.clone()));
                return r;
            }
        };
        owner = target.clone();
    }
    r
}

fn with_owner(record: &Record, owner: &Name) -> Record {
    let mut r = record.clone();
    r.name = owner.clone();
    r
}

fn soa(model: &Model) -> Record {
    model.zone.negative_soa()
}

/// NXDOMAIN or NODATA: the SOA in authority carries the negative TTL (RFC 2308).
fn negative(model: &Model, rcode: ResponseCode, mut r: Response) -> Response {
    r.rcode = rcode;
    r.authority.push(soa(model));
    r
}

fn referral(model: &Model, cut: &Node, q: &Question<'_>) -> Response {
    let Some(ns) = cut.rrset(RecordType::NS) else {
        return Response::refused();
    };
    let cut_name = &ns.records[0].name;
    let ds = cut.rrset(RecordType::DS);
    let at_cut = key(cut_name).as_ref() == q.key;
    if at_cut && q.qtype == RecordType::DS {
        // The parent side of the cut answers DS.
        let mut r = Response::new(ResponseCode::NoError, true);
        if let Some(ds) = ds {
            r.answers.extend(ds.records.iter().map(|rec| with_owner(rec, q.name)));
            return r;
        }
        r.denial = Some(Denial::Types(q.name.clone(), vec![RecordType::NS]));
        return negative(model, ResponseCode::NoError, r);
    }
    let mut r = Response::new(ResponseCode::NoError, false);
    r.authority.extend(ns.records.iter().cloned());
    if q.dnssec_ok {
        // A signed delegation: its DS, or the proof that it has none (RFC 4035 3.1.4).
        match ds {
            Some(ds) => r.authority.extend(ds.records.iter().cloned()),
            None => r.denial = Some(Denial::Types(cut_name.clone(), vec![RecordType::NS])),
        }
    }
    r.additional.extend(model.zone.glue(&ns.records).cloned());
    r
}

fn chaos(model: &Model, q: &Question<'_>) -> Response {
    let server = &model.dns;
    let lower = q.name.to_lowercase().to_ascii();
    let text = match lower.as_str() {
        "version.bind." | "version.server." => server.chaos_version.as_deref(),
        "id.server." | "hostname.bind." => server.chaos_id.as_deref(),
        _ => None,
    };
    match (text, q.qtype) {
        (Some(text), RecordType::TXT | RecordType::ANY) => {
            let mut r = Response::new(ResponseCode::NoError, true);
            let mut rec = Record::from_rdata(q.name.clone(), 0, RData::TXT(TXT::new(vec![text.to_owned()])));
            rec.dns_class = DNSClass::CH;
            r.answers.push(rec);
            r
        }
        _ => Response::refused(),
    }
}

/// What a GSLB name answers one client: decided here once, for the general path and
/// the fast path alike (the fast path only parses and encodes).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<'m> {
    pub answer: Answer<'m>,
    pub ttl: u32,
    /// ECS scope: the bits of the client address the answer depends on.
    pub scope: u8,
    /// The first region answered, for metrics.
    pub region: Option<RegionId>,
    /// Residency restricted the answer: the jurisdiction's residency counter slot.
    pub restricted: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer<'m> {
    /// Not ready (cold start), or all down with `when_all_down = "servfail"`.
    ServFail,
    /// A CNAME, given for every type (a name is a CNAME or it is not, RFC 1034 3.6.2).
    Cname(&'m Name),
    /// The addresses of these regions, best first.
    Regions(routing::Regions),
    /// The addresses of these members of a database cluster, best first.
    Members { cluster: u16, members: routing::Members },
    /// The fixed all-down answer.
    Fallback { a: &'m [Ipv4Addr], aaaa: &'m [Ipv6Addr] },
}

impl Decision<'_> {
    /// Calls `each` with every address the answer holds for `qtype` (A, AAAA, or ANY,
    /// which gets one RRset: the IPv4 one when there is one, RFC 8482), each address
    /// once: two regions behind one address make one record (an RRset has no duplicates,
    /// RFC 2181 5, and a signature over one with duplicates does not verify).
    pub fn addresses(&self, model: &Model, qtype: RecordType, mut each: impl FnMut(IpAddr)) {
        let mut seen: smallvec::SmallVec<[IpAddr; 16]> = smallvec::SmallVec::new();
        let mut each = |ip: IpAddr| {
            if !seen.contains(&ip) {
                seen.push(ip);
                each(ip);
            }
        };
        let mut one = |a: &[Ipv4Addr], aaaa: &[Ipv6Addr]| {
            let v4 = qtype == RecordType::A || (qtype == RecordType::ANY && !a.is_empty());
            let v6 = qtype == RecordType::AAAA || (qtype == RecordType::ANY && a.is_empty());
            if v4 {
                a.iter().for_each(|ip| each(IpAddr::V4(*ip)));
            } else if v6 {
                aaaa.iter().for_each(|ip| each(IpAddr::V6(*ip)));
            }
        };
        match &self.answer {
            Answer::Regions(regions) => {
                for &id in regions {
                    let region = &model.regions[id as usize];
                    one(&region.a, &region.aaaa);
                }
            }
            Answer::Members { cluster, members } => {
                let cluster = &model.clusters[*cluster as usize];
                for &m in members {
                    let member = &cluster.members[m as usize];
                    one(&member.a, &member.aaaa);
                }
            }
            Answer::Fallback { a, aaaa } => one(a, aaaa),
            Answer::ServFail | Answer::Cname(_) => {}
        }
    }
}

/// Decides what GSLB name `name` answers `client`, from one snapshot.
pub fn decide<'m>(snap: &'m Snapshot, name: usize, client: &client::Client) -> Decision<'m> {
    let model = &*snap.model;
    let n = &model.names[name];
    if !snap.health.ready {
        // Cold start: no verdicts yet. SERVFAIL sends resolvers to another instance
        // rather than caching a guess.
        return Decision { answer: Answer::ServFail, ttl: 0, scope: 0, region: None, restricted: None };
    }
    let located = routing::Client::new(client.addr, client.prefix, model.geo.as_deref());
    let route = routing::route(model, &snap.health, name, &located);
    let (ttl, scope, best) = (route.ttl, route.scope, route.regions.first().copied());
    let cluster = match &n.ranker {
        Ranker::Writer { cluster, .. } | Ranker::Reader { cluster, .. } => Some(*cluster),
        _ => None,
    };
    let restricted = route.restricted().then(|| match route.confine {
        Confine::Within(j) => model.residency.jurisdictions[j as usize].metric_slot,
        _ => 0,
    });
    // Within a jurisdiction, the fixed all-down answer is the jurisdiction's own.
    let fallback = match route.confine {
        Confine::Within(j) => model.residency.jurisdictions[j as usize].sorry.as_ref(),
        _ => Some(&n.when_all_down),
    };
    let (answer, region) = match (&route.outcome, fallback) {
        (Outcome::AllDownServFail | Outcome::AllDownUnknown | Outcome::Unlocated, _) => (Answer::ServFail, None),
        (Outcome::AllDownFallback, Some(AllDown::Fallback { cname: Some(target), .. })) => {
            (Answer::Cname(target), None)
        }
        (Outcome::AllDownFallback, Some(AllDown::Fallback { a, aaaa, cname: None })) => {
            (Answer::Fallback { a, aaaa }, None)
        }
        (Outcome::AllDownFallback, _) => (Answer::ServFail, None),
        // A CNAME answer is decided once, from the best member or region.
        _ => match cluster {
            Some(c) => {
                let members = &model.clusters[c as usize].members;
                match route.members.first().and_then(|&m| members[m as usize].cname.as_ref()) {
                    Some(target) => (Answer::Cname(target), best),
                    None if route.members.is_empty() => (Answer::ServFail, None),
                    None => (Answer::Members { cluster: c, members: route.members }, best),
                }
            }
            None => match best.and_then(|id| model.regions[id as usize].cname.as_ref()) {
                Some(target) => (Answer::Cname(target), best),
                None => (Answer::Regions(route.regions), best),
            },
        },
    };
    Decision { answer, ttl, scope, region, restricted }
}

/// Answers a GSLB name (possibly reached through a CNAME at `owner`).
fn gslb(snap: &Snapshot, name: usize, owner: &Name, qtype: RecordType, client: &client::Client, r: &mut Response) {
    let model = &*snap.model;
    let addresses_asked = matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY);
    let dnssec_type = matches!(qtype, RecordType::NSEC | RecordType::RRSIG);
    if !addresses_asked && (!model.names[name].may_cname || dnssec_type) {
        // Other types never depend on the client: NODATA, scope /0.
        return;
    }
    let d = decide(snap, name, client);
    r.scope = r.scope.max(d.scope);
    r.region = d.region;
    r.restricted = d.restricted;
    let ttl = d.ttl;
    match &d.answer {
        Answer::ServFail => {
            r.rcode = ResponseCode::ServFail;
            r.authoritative = false;
        }
        Answer::Cname(target) => {
            r.answers.push(Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME((*target).clone()))))
        }
        Answer::Regions(_) | Answer::Members { .. } | Answer::Fallback { .. } if addresses_asked => {
            d.addresses(model, qtype, |ip| {
                let data = match ip {
                    IpAddr::V4(v4) => RData::A(A(v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                };
                r.answers.push(Record::from_rdata(owner.clone(), ttl, data));
            })
        }
        Answer::Regions(_) | Answer::Members { .. } | Answer::Fallback { .. } => {}
    }
}
