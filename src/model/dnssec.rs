//! Signing: the zone's keys as the query plane uses them, and the signature cache.
//!
//! Every RRset switchyard answers with is signed once per distinct content and kept:
//! the static RRsets when the model is built (kept for the model's life), GSLB RRsets
//! the first time an answer has them (a few per name: subsets of its regions'
//! addresses, at its TTL or its failover TTL; at most `cache_size`). A signature is made
//! again when less than `refresh` of its validity is left, by the next query that needs
//! it: no reload, no timer.
//!
//! The cache has three parts, each read without a lock:
//! - the static RRsets (and the SOA at the negative TTL): a map fixed when the model is
//!   built, each entry an `ArcSwap` replaced in place when it is signed again;
//! - everything else that has a name in the zone (GSLB answers, NODATA denials): a
//!   table of `cache_size` slots (rounded up to a power of two), each an `ArcSwapOption`,
//!   4-way set-associative; a miss signs and stores into its bucket (an empty slot, else
//!   the RRset signed longest ago);
//! - denials of names that do not exist: a table of its own, the same size, so that a
//!   flood of random names cannot push the GSLB answers out.
//!
//! A miss signs (tens of microseconds). Misses are rare by construction, except for
//! the denial of a name that does not exist (its owner is the query name): each new
//! name is signed once, and repeated names hit the denial table.
//!
//! The cache key is the RRset in canonical form without its signatures' times: the
//! owner (lower-case wire), the type, the TTL and the sorted RDATA. The UDP fast path
//! builds the same key from its addresses, so both paths serve the same bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::{ArcSwap, ArcSwapOption};
use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSKEY, DNSSECRData, NSEC, RRSIG};
use hickory_proto::dnssec::{Algorithm, PublicKey, SigningKey, TBS};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use std::hash::{BuildHasher, RandomState};

use crate::config::dnssec::DnssecConfig;
pub use crate::metrics::SignCounters;

/// RFC 9824's meta-type: "this name does not exist", in a compact denial's NSEC.
pub const NXNAME: RecordType = RecordType::Unknown(128);

struct Key {
    tag: u16,
    algorithm: Algorithm,
    signing: Box<dyn SigningKey>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key {{ tag: {}, algorithm: {} }}", self.tag, self.algorithm)
    }
}

/// The signatures over one RRset: one per signing key.
#[derive(Debug)]
pub struct Signed {
    /// The RRset's cache key.
    key: Box<[u8]>,
    pub sigs: Vec<RRSIG>,
    /// Each signature's RDATA as it goes on the wire (the fast path copies these).
    pub wire: Vec<Box<[u8]>>,
    /// Unix seconds after which it is made again.
    refresh_at: u32,
    /// When it was last served (unix seconds; written at most once a second), so that the
    /// RRset used longest ago leaves a full bucket first.
    used: std::sync::atomic::AtomicU32,
}

impl Signed {
    fn fresh(&self, now: u32) -> bool {
        // Serial-number arithmetic: fresh while now is before refresh_at.
        self.refresh_at.wrapping_sub(now) as i32 > 0
    }

    fn touch(&self, now: u32) {
        if self.used.load(Ordering::Relaxed) != now {
            self.used.store(now, Ordering::Relaxed);
        }
    }
}

/// A cached entry, borrowed from the cache for one answer.
pub enum Hit {
    Static(arc_swap::Guard<Arc<Signed>>),
    Slot(arc_swap::Guard<Option<Arc<Signed>>>),
}

impl std::ops::Deref for Hit {
    type Target = Signed;

    fn deref(&self) -> &Signed {
        match self {
            Hit::Static(g) => g,
            Hit::Slot(g) => g.as_deref().expect("a slot hit holds an entry"),
        }
    }
}

impl Hit {
    fn into_arc(self) -> Arc<Signed> {
        match self {
            Hit::Static(g) => arc_swap::Guard::into_inner(g),
            Hit::Slot(g) => arc_swap::Guard::into_inner(g).expect("a slot hit holds an entry"),
        }
    }
}

/// Where an RRset's signatures are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// An answer or a NODATA denial: the static map, else the answers' table.
    Answer,
    /// The denial of a name that does not exist: the denials' table.
    Denial,
}

/// A table of signed RRsets: 4-way set-associative (an RRset may sit in any of the 4
/// slots of the bucket its key hashes to), so that a few hot RRsets that share a bucket
/// do not push each other out.
struct Slots {
    slots: Box<[ArcSwapOption<Signed>]>,
    /// The first slot of a key's bucket: `hash & mask`.
    mask: usize,
}

const WAYS: usize = 4;

impl Slots {
    fn new(size: usize) -> Slots {
        let n = size.max(WAYS).next_power_of_two();
        Slots { slots: (0..n).map(|_| ArcSwapOption::empty()).collect(), mask: (n - 1) & !(WAYS - 1) }
    }

    fn bucket(&self, hash: u64) -> &[ArcSwapOption<Signed>] {
        let first = hash as usize & self.mask;
        &self.slots[first..first + WAYS]
    }

    /// The entry for `key`, borrowed (a guard: no reference count is touched, so the
    /// fast path's workers do not contend on a hot entry).
    fn find(&self, hash: u64, key: &[u8]) -> Option<Hit> {
        self.bucket(hash).iter().find_map(|slot| {
            let guard = slot.load();
            guard.as_ref().is_some_and(|s| *s.key == *key).then_some(Hit::Slot(guard))
        })
    }

    /// Puts `signed` in its bucket: in the slot of the same RRset, else an empty one,
    /// else a stale one, else the one served longest ago. Returns (a slot was empty,
    /// another RRset was pushed out).
    fn put(&self, hash: u64, signed: Arc<Signed>, now: u32) -> (bool, bool) {
        let bucket = self.bucket(hash);
        let held: Vec<Option<Arc<Signed>>> = bucket.iter().map(|s| s.load_full()).collect();
        let same = held.iter().position(|h| h.as_ref().is_some_and(|h| h.key == signed.key));
        let empty = held.iter().position(Option::is_none);
        let stale = held.iter().position(|h| h.as_ref().is_some_and(|h| !h.fresh(now)));
        let idle = |h: &Option<Arc<Signed>>| h.as_ref().map_or(0, |h| now.wrapping_sub(h.used.load(Ordering::Relaxed)));
        let lru = (0..WAYS).max_by_key(|&i| idle(&held[i]));
        let i = same.or(empty).or(stale).or(lru).unwrap_or(0);
        let old = bucket[i].swap(Some(signed.clone()));
        (old.is_none(), old.is_some_and(|o| o.key != signed.key))
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slots({})", self.slots.len())
    }
}

#[derive(Debug)]
pub struct Signer {
    /// The signer's name: the zone's origin, lower case.
    pub zone: Name,
    /// Keys that sign the zone's data (active CSKs and ZSKs).
    data_keys: Vec<Key>,
    /// Keys that sign the DNSKEY, CDS and CDNSKEY sets (every CSK and KSK).
    key_keys: Vec<Key>,
    validity: u32,
    refresh: u32,
    inception: u32,
    /// Static RRsets (and the SOA at the negative TTL), by key: fixed at build.
    statics: HashMap<Box<[u8]>, ArcSwap<Signed>>,
    answers: Slots,
    denials: Slots,
    hasher: RandomState,
    /// The key of the SOA at the negative TTL (negative answers carry it).
    pub soa_key: Box<[u8]>,
    /// Signed RRsets this signer keeps (the gauge shows the last count of any signer: a
    /// model being built during a reload does not add to the serving one's).
    entries: std::sync::atomic::AtomicU64,
    /// The type bitmap of a denial of a name that does not exist, as the NSEC's RDATA
    /// ends with it (the fast path writes it).
    pub nxname_bitmap: Box<[u8]>,
    pub counters: Arc<SignCounters>,
}

/// The current time as RRSIG times count it (unix seconds, mod 2^32).
pub fn unix_now() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

/// The cache key of an RRset: owner (lower-case wire), type, TTL, RDATA sorted.
pub fn rrset_key(owner_key: &[u8], rtype: u16, ttl: u32, rdatas: &mut [&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner_key.len() + 6 + rdatas.iter().map(|r| r.len() + 2).sum::<usize>());
    rrset_key_into(&mut k, owner_key, rtype, ttl, rdatas);
    k
}

/// [`rrset_key`] into a reused buffer (the fast path's).
pub fn rrset_key_into(k: &mut Vec<u8>, owner_key: &[u8], rtype: u16, ttl: u32, rdatas: &mut [&[u8]]) {
    rdatas.sort_unstable();
    k.clear();
    let mut last: Option<&[u8]> = None;
    k.extend_from_slice(owner_key);
    k.extend_from_slice(&rtype.to_be_bytes());
    k.extend_from_slice(&ttl.to_be_bytes());
    for r in rdatas.iter() {
        // A duplicate is one record (RFC 4034 6.3).
        if last == Some(*r) {
            continue;
        }
        last = Some(r);
        k.extend_from_slice(&(r.len() as u16).to_be_bytes());
        k.extend_from_slice(r);
    }
}

/// A record's RDATA in canonical form (RFC 4034 6.2).
pub fn canonical_rdata(data: &RData) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    let mut e = BinEncoder::new(&mut buf);
    e.set_canonical_form(true);
    let _ = data.emit(&mut e);
    buf
}

/// The cache key of a list of records that form one RRset.
pub fn records_key(records: &[Record]) -> Vec<u8> {
    let owner = crate::model::zone::key(&records[0].name);
    let rdatas: Vec<Vec<u8>> = records.iter().map(|r| canonical_rdata(&r.data)).collect();
    let mut refs: Vec<&[u8]> = rdatas.iter().map(|r| r.as_slice()).collect();
    rrset_key(&owner, u16::from(records[0].record_type()), records[0].ttl, &mut refs)
}

/// Whether an RRset of this type is signed by the key-signing keys.
fn is_key_set(rtype: RecordType) -> bool {
    matches!(rtype, RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY)
}

impl Signer {
    /// The signer for `config`'s keys, with `statics` (each one RRset) signed at `now`.
    pub fn new(
        config: &DnssecConfig,
        zone: &Name,
        counters: Arc<SignCounters>,
        statics: &[Vec<Record>],
        soa: &Record,
        now: u32,
    ) -> Result<Signer, String> {
        let mut data_keys = Vec::new();
        let mut key_keys = Vec::new();
        for k in &config.keys {
            let make = || -> Result<Key, String> {
                Ok(Key { tag: k.tag, algorithm: k.algorithm, signing: k.private.signing_key(k.algorithm)? })
            };
            if k.active && k.role != crate::config::dnssec::KeyRole::Ksk {
                data_keys.push(make()?);
            }
            if k.role.signs_keys() {
                key_keys.push(make()?);
            }
        }
        let secs = |d: std::time::Duration| d.as_secs().min(u64::from(u32::MAX / 2)) as u32;
        let mut signer = Signer {
            zone: zone.to_lowercase(),
            data_keys,
            key_keys,
            validity: secs(config.validity),
            refresh: secs(config.refresh),
            inception: secs(config.inception),
            statics: HashMap::new(),
            answers: Slots::new(config.cache_size),
            denials: Slots::new(config.cache_size),
            hasher: RandomState::new(),
            soa_key: records_key(std::slice::from_ref(soa)).into_boxed_slice(),
            entries: 0.into(),
            nxname_bitmap: {
                let nsec = compact_nsec(&Name::root(), &[NXNAME], 0).ok_or("an NSEC at the root")?;
                // `\000.` (two bytes) and the root (one) come before the bitmap.
                canonical_rdata(&nsec.data)[3..].into()
            },
            counters,
        };
        let mut statics_map = HashMap::new();
        for set in statics.iter().chain(std::iter::once(&vec![soa.clone()])) {
            let key = records_key(set).into_boxed_slice();
            let signed = signer.sign(set, key.clone(), now).ok_or("cannot sign a static RRset")?;
            signer.counters.rrsets.fetch_add(signed.sigs.len() as u64, Ordering::Relaxed);
            statics_map.insert(key, ArcSwap::from_pointee(signed));
        }
        signer.entries.store(statics_map.len() as u64, Ordering::Relaxed);
        signer.statics = statics_map;
        Ok(signer)
    }

    /// The DNSKEY records of the zone: every configured key.
    pub fn dnskeys(config: &DnssecConfig, zone: &Name) -> Vec<Record> {
        config
            .keys
            .iter()
            .map(|k| {
                Record::from_rdata(
                    zone.clone(),
                    config.dnskey_ttl,
                    RData::DNSSEC(DNSSECRData::DNSKEY(k.dnskey.clone())),
                )
            })
            .collect()
    }

    /// CDS and CDNSKEY (RFC 7344): the DS set the parent should have, one per SEP key.
    pub fn cds(config: &DnssecConfig, zone: &Name) -> Vec<Record> {
        let mut out = Vec::new();
        for k in config.keys.iter().filter(|k| k.role.signs_keys()) {
            if let Ok(ds) = k.ds(zone) {
                let cds = CDS::new(ds.key_tag(), Some(ds.algorithm()), ds.digest_type(), ds.digest().to_vec());
                out.push(Record::from_rdata(zone.clone(), config.dnskey_ttl, RData::DNSSEC(DNSSECRData::CDS(cds))));
            }
        }
        for k in config.keys.iter().filter(|k| k.role.signs_keys()) {
            let key: &DNSKEY = &k.dnskey;
            let cdnskey = CDNSKEY::with_flags(key.flags(), Some(k.algorithm), key.public_key().public_bytes().to_vec());
            out.push(Record::from_rdata(zone.clone(), config.dnskey_ttl, RData::DNSSEC(DNSSECRData::CDNSKEY(cdnskey))));
        }
        out
    }

    /// The signatures for an answer RRset whose key is `key`, if kept and fresh at `now`
    /// (the fast path's lookup: it never signs).
    pub fn cached(&self, key: &[u8], now: u32, kept: Kept) -> Option<Hit> {
        let hit = match kept {
            Kept::Answer => match self.statics.get(key) {
                Some(s) => Hit::Static(s.load()),
                None => self.answers.find(self.hasher.hash_one(key), key)?,
            },
            Kept::Denial => self.denials.find(self.hasher.hash_one(key), key)?,
        };
        hit.touch(now);
        hit.fresh(now).then_some(hit)
    }

    /// The signatures for `records` (one RRset), kept or made now and kept.
    pub fn signatures(&self, records: &[Record], now: u32, kept: Kept) -> Option<Arc<Signed>> {
        let key = records_key(records);
        if let Some(hit) = self.cached(&key, now, kept) {
            return Some(hit.into_arc());
        }
        let signed = Arc::new(self.sign(records, key.into_boxed_slice(), now)?);
        let n = signed.sigs.len() as u64;
        let c = &self.counters;
        match kept {
            Kept::Denial => c.denials.fetch_add(n, Ordering::Relaxed),
            Kept::Answer => c.rrsets.fetch_add(n, Ordering::Relaxed),
        };
        let table = match (kept, self.statics.get(&signed.key)) {
            (Kept::Answer, Some(s)) => {
                s.store(Arc::clone(&signed));
                return Some(signed);
            }
            (Kept::Answer, None) => &self.answers,
            (Kept::Denial, _) => &self.denials,
        };
        // Another query may have signed it meanwhile: keep one copy.
        let hash = self.hasher.hash_one(&signed.key);
        if let Some(hit) = table.find(hash, &signed.key).filter(|h| h.fresh(now)) {
            return Some(hit.into_arc());
        }
        let (filled, evicted) = table.put(hash, Arc::clone(&signed), now);
        if filled {
            let n = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
            c.entries.store(n, Ordering::Relaxed);
        }
        if evicted {
            c.evictions.fetch_add(1, Ordering::Relaxed);
        }
        Some(signed)
    }

    fn sign(&self, records: &[Record], key: Box<[u8]>, now: u32) -> Option<Signed> {
        let first = records.first()?;
        let rtype = first.record_type();
        let keys = if is_key_set(rtype) { &self.key_keys } else { &self.data_keys };
        let inception = now.wrapping_sub(self.inception);
        let expiration = now.wrapping_add(self.validity);
        let mut sigs = Vec::with_capacity(keys.len());
        let mut wire = Vec::with_capacity(keys.len());
        for key in keys {
            let input = SigInput {
                type_covered: rtype,
                algorithm: key.algorithm,
                num_labels: first.name.num_labels(),
                original_ttl: first.ttl,
                sig_expiration: SerialNumber::new(expiration),
                sig_inception: SerialNumber::new(inception),
                key_tag: key.tag,
                signer_name: self.zone.clone(),
            };
            // Duplicates are one record to a validator (RFC 4034 6.3): sign each once.
            let unique = records.iter().enumerate().filter(|(i, r)| !records[..*i].iter().any(|o| o.data == r.data));
            let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, unique.map(|(_, r)| r)).ok()?;
            let sig = key.signing.sign(&tbs).ok()?;
            let rrsig = RRSIG::from_sig(input, sig);
            let mut buf = Vec::with_capacity(100);
            let mut e = BinEncoder::new(&mut buf);
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig.clone())).emit(&mut e).ok()?;
            sigs.push(rrsig);
            wire.push(buf.into_boxed_slice());
        }
        Some(Signed { key, sigs, wire, refresh_at: expiration.wrapping_sub(self.refresh), used: now.into() })
    }

    /// Sets the cache gauge to this signer's count (when its model starts serving).
    pub fn publish_entries(&self) {
        self.counters.entries.store(self.entries.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Signed RRsets kept now.
    pub fn cache_len(&self) -> usize {
        self.entries.load(Ordering::Relaxed) as usize
    }
}

/// The RRSIG records for one signed RRset.
pub fn rrsig_records<'a>(signed: &'a Signed, owner: &Name, ttl: u32) -> impl Iterator<Item = Record> + 'a {
    let owner = owner.clone();
    signed
        .sigs
        .iter()
        .map(move |s| Record::from_rdata(owner.clone(), ttl, RData::DNSSEC(DNSSECRData::RRSIG(s.clone()))))
}

/// The compact-denial NSEC at `owner` (RFC 9824): next name `\000.owner`, the types
/// present (for a name that does not exist: NXNAME), RRSIG and NSEC.
pub fn compact_nsec(owner: &Name, types: &[RecordType], ttl: u32) -> Option<Record> {
    let lower = owner.to_lowercase();
    let next = lower.prepend_label(hickory_proto::rr::domain::Label::from_raw_bytes(&[0]).ok()?).ok()?;
    let mut all: Vec<RecordType> = types.to_vec();
    all.extend([RecordType::RRSIG, RecordType::NSEC]);
    let nsec = NSEC::new(next, all);
    Some(Record::from_rdata(owner.clone(), ttl, RData::DNSSEC(DNSSECRData::NSEC(nsec))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dnssec::{KeyRole, generate};
    use hickory_proto::rr::rdata::A;

    const T0: u32 = 1_800_000_000;

    fn signer(cache_size: usize, statics: &[Vec<Record>]) -> (Signer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let zone = Name::from_ascii("gslb.example.org.").unwrap();
        let (file, k) = generate(&zone, Algorithm::ECDSAP256SHA256, KeyRole::Csk, dir.path()).unwrap();
        let key = k.into_zone_key(file, true);
        let config = DnssecConfig {
            keys: vec![key],
            validity: std::time::Duration::from_secs(1000),
            refresh: std::time::Duration::from_secs(400),
            inception: std::time::Duration::from_secs(60),
            dnskey_ttl: 60,
            cache_size,
            cds: true,
        };
        let soa = rrset(0).remove(0);
        (Signer::new(&config, &zone, Arc::default(), statics, &soa, T0).unwrap(), dir)
    }

    fn rrset(last: u8) -> Vec<Record> {
        let name = Name::from_ascii("app.gslb.example.org.").unwrap();
        vec![Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, last)))]
    }

    fn made(s: &Signer) -> u64 {
        s.counters.rrsets.load(Ordering::Relaxed)
    }

    #[test]
    fn a_signature_is_made_again_when_refresh_is_left_and_not_before() {
        let (s, _dir) = signer(100, &[]);
        let first = s.signatures(&rrset(1), T0, Kept::Answer).unwrap();
        let sig = &first.sigs[0];
        assert_eq!((sig.input().sig_inception.get(), sig.input().sig_expiration.get()), (T0 - 60, T0 + 1000));
        // Until 600 s (validity - refresh) have passed, the same signature.
        let again = s.signatures(&rrset(1), T0 + 599, Kept::Answer).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let before = made(&s);
        // Then a new one, valid from then.
        let fresh = s.signatures(&rrset(1), T0 + 600, Kept::Answer).unwrap();
        assert_eq!(fresh.sigs[0].input().sig_expiration.get(), T0 + 600 + 1000);
        assert_eq!(made(&s), before + 1);
        // The fast path's lookup sees the new one, and never a stale one.
        assert!(s.cached(&records_key(&rrset(1)), T0 + 600, Kept::Answer).is_some_and(|h| std::ptr::eq(&*h, &*fresh)));
        assert!(s.cached(&records_key(&rrset(1)), T0 + 1200, Kept::Answer).is_none());
    }

    #[test]
    fn static_rrsets_are_signed_at_build_and_refreshed_in_place() {
        let statics = [rrset(7)];
        let (s, _dir) = signer(16, &statics);
        // The static RRset and the SOA, signed when built.
        assert_eq!(made(&s), 2);
        assert!(s.cached(&records_key(&rrset(7)), T0, Kept::Answer).is_some());
        // However many other RRsets come and go, it stays.
        for last in 100..200 {
            s.signatures(&rrset(last), T0, Kept::Answer).unwrap();
        }
        assert!(s.counters.evictions.load(Ordering::Relaxed) > 0, "16 slots for 100 RRsets");
        let before = made(&s);
        s.signatures(&rrset(7), T0 + 1, Kept::Answer).unwrap();
        assert_eq!(made(&s), before, "still kept");
        // Refreshed in place when due.
        s.signatures(&rrset(7), T0 + 600, Kept::Answer).unwrap();
        assert_eq!(made(&s), before + 1);
        assert!(s.cached(&records_key(&rrset(7)), T0 + 601, Kept::Answer).is_some());
    }

    #[test]
    fn denials_have_a_table_of_their_own() {
        let (s, _dir) = signer(16, &[]);
        let answer = s.signatures(&rrset(1), T0, Kept::Answer).unwrap();
        // A flood of names that do not exist fills the denials' table only.
        for i in 0..1000u32 {
            let name = Name::from_ascii(format!("nx-{i}.gslb.example.org.")).unwrap();
            let nsec = compact_nsec(&name, &[NXNAME], 60).unwrap();
            s.signatures(std::slice::from_ref(&nsec), T0, Kept::Denial).unwrap();
        }
        assert_eq!(s.counters.denials.load(Ordering::Relaxed), 1000);
        let hit = s.cached(&records_key(&rrset(1)), T0, Kept::Answer).unwrap();
        assert!(std::ptr::eq(&*hit, &*answer), "the answer was not pushed out");
        // A repeated name is not signed again (while it holds its slot).
        let name = Name::from_ascii("nx-999.gslb.example.org.").unwrap();
        let nsec = compact_nsec(&name, &[NXNAME], 60).unwrap();
        s.signatures(std::slice::from_ref(&nsec), T0, Kept::Denial).unwrap();
        assert_eq!(s.counters.denials.load(Ordering::Relaxed), 1000);
    }

    #[test]
    fn four_hot_rrsets_in_one_bucket_are_each_signed_once() {
        let (s, _dir) = signer(64, &[]);
        let bucket = |last: u8| s.hasher.hash_one(records_key(&rrset(last))) as usize & s.answers.mask;
        let same: Vec<u8> = (1..=255).filter(|&l| bucket(l) == bucket(1)).take(5).collect();
        assert_eq!(same.len(), 5, "five RRsets that share a bucket");
        for round in 0..10 {
            for &last in &same[..4] {
                s.signatures(&rrset(last), T0 + round, Kept::Answer).unwrap();
            }
        }
        assert_eq!(made(&s), 1 + 4, "the SOA, and each of the four once");
        // Three of them are served again; a fifth RRset pushes out the one served longest
        // ago, not a hot one.
        for &last in &same[1..4] {
            assert!(s.cached(&records_key(&rrset(last)), T0 + 50, Kept::Answer).is_some());
        }
        s.signatures(&rrset(same[4]), T0 + 100, Kept::Answer).unwrap();
        assert!(s.cached(&records_key(&rrset(same[0])), T0 + 100, Kept::Answer).is_none());
        for &last in &same[1..] {
            assert!(s.cached(&records_key(&rrset(last)), T0 + 100, Kept::Answer).is_some(), "{last}");
        }
        assert_eq!(s.counters.evictions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_cache_key_ignores_order_and_owner_case() {
        let a = rrset(1).into_iter().chain(rrset(2)).collect::<Vec<_>>();
        let mut b = rrset(2).into_iter().chain(rrset(1)).collect::<Vec<_>>();
        b.iter_mut().for_each(|r| r.name = Name::from_ascii("APP.gslb.Example.org.").unwrap());
        assert_eq!(records_key(&a), records_key(&b));
        let mut c = a.clone();
        c.iter_mut().for_each(|r| r.ttl = 10);
        assert_ne!(records_key(&a), records_key(&c), "the TTL is part of what is signed");
    }
}
