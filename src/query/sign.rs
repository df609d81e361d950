//! Signed answers: the RRSIGs for every RRset a response carries, and the compact
//! denial of existence (RFC 9824) for negative answers and unsigned delegations.
//!
//! The signatures come from the model's signature cache (`model::dnssec`); the NSEC
//! denying a name that does not exist is signed once per name (its own table).
//!
//! Denial: every negative answer carries one NSEC at the name itself, whose next name
//! is the name's immediate successor (`\000.name`) and whose type bitmap lists the
//! types the name has. A name that does not exist is answered as a name with no types
//! but NXNAME (NOERROR, unless the query set the CO bit: then NXDOMAIN). Nothing in
//! such an NSEC names another name of the zone, so the zone cannot be walked, and one
//! signature proves it all.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};

use super::answer::{Denial, Question, Response};
use crate::model::Model;
use crate::model::dnssec::{Kept, NXNAME, Signer, compact_nsec, rrsig_records};
use crate::model::zone::Lookup;

/// Adds the signatures and the denial to `r`, a response to a query with DO set.
pub fn secure(model: &Model, signer: &Signer, q: &Question<'_>, r: &mut Response, now: u32) {
    if !matches!(r.rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        return;
    }
    r.answers = signed(model, signer, std::mem::take(&mut r.answers), now);
    r.authority = signed(model, signer, std::mem::take(&mut r.authority), now);
    let Some(denial) = r.denial.take() else { return };
    let ttl = model.zone.negative_ttl;
    let (nsec, cached) = match &denial {
        Denial::Name(name) => (compact_nsec(name, &[NXNAME], ttl), false),
        Denial::Types(name, types) => (compact_nsec(name, types, ttl), true),
    };
    // A name too long to have a successor cannot be proven absent this way.
    let Some(nsec) = nsec else {
        *r = Response::new_servfail();
        return;
    };
    if let Denial::Name(_) = denial {
        r.rcode = if q.compact_ok { ResponseCode::NXDomain } else { ResponseCode::NoError };
    }
    let kept = if cached { Kept::Answer } else { Kept::Denial };
    let sigs: Vec<Record> = signer
        .signatures(std::slice::from_ref(&nsec), now, kept)
        .map(|s| rrsig_records(&s, &nsec.name, ttl).collect())
        .unwrap_or_default();
    // (At a delegation the NSEC and its signature belong in the referral.)
    let at_qname = r.authoritative
        && match &denial {
            Denial::Name(n) | Denial::Types(n, _) => n == q.name,
        };
    if at_qname && q.qtype == RecordType::NSEC {
        // Asked for the NSEC itself: it is the answer (its bitmap lists NSEC).
        r.rcode = ResponseCode::NoError;
        r.authority.clear();
        r.answers.push(nsec);
        r.answers.extend(sigs);
    } else if at_qname && q.qtype == RecordType::RRSIG {
        // Asked for the signatures at the name: those over its static RRsets and over
        // its NSEC (a GSLB name's addresses depend on the client: ask for them).
        r.rcode = ResponseCode::NoError;
        r.authority.clear();
        if let Lookup::Found(node) = model.zone.lookup(q.key) {
            for set in &node.rrsets {
                if let Some(s) = signer.signatures(&set.records, now, Kept::Answer) {
                    r.answers.extend(rrsig_records(&s, q.name, set.records[0].ttl));
                }
            }
        }
        r.answers.extend(sigs);
    } else {
        r.authority.push(nsec);
        r.authority.extend(sigs);
    }
}

/// `records` with each RRset followed by its signatures. A delegation's NS RRset is not
/// signed (the child signs it).
fn signed(model: &Model, signer: &Signer, records: Vec<Record>, now: u32) -> Vec<Record> {
    if records.is_empty() {
        return records;
    }
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut start = 0;
    while start < records.len() {
        let (name, rtype) = (&records[start].name, records[start].record_type());
        let end = start + records[start..].iter().take_while(|r| r.name == *name && r.record_type() == rtype).count();
        let set = &records[start..end];
        out.extend_from_slice(set);
        if !is_delegation(model, name, rtype)
            && let Some(s) = signer.signatures(set, now, Kept::Answer)
        {
            out.extend(rrsig_records(&s, name, set[0].ttl));
        }
        start = end;
    }
    out
}

fn is_delegation(model: &Model, name: &Name, rtype: RecordType) -> bool {
    rtype == RecordType::NS && *name != model.zone.origin
}
