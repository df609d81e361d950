//! Response rate limiting for UDP, as BIND, Knot and NSD do it.
//!
//! A spoofed-source flood makes an authoritative server a reflector: each small query
//! sends a bigger answer to the victim. RRL counts answers per *client prefix* (a /24
//! or /56 by default) and *kind of answer*, and over `responses_per_second` stops
//! answering: of the answers over the limit, every `slip`-th goes out as an empty
//! truncated reply (TC=1, so a real client behind that prefix retries over TCP, which
//! is not limited) and the rest are dropped.
//!
//! The kind of answer is what BIND buckets by: a positive answer by its query name and
//! type; NODATA by name; NXDOMAIN by the zone (so a random-subdomain flood shares one
//! bucket); referrals in one bucket; errors in one bucket. It is read from the encoded response, so the fast path and the
//! general path are limited alike.
//!
//! The table is a fixed array of atomic buckets, indexed by a keyed hash: no lock and
//! no allocation per answer. Two keys that collide share a bucket and its count: a
//! collision can only limit sooner, never let more through.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ipnet::IpNet;

use crate::query::wire;

/// Buckets in the table (a power of two).
const TABLE: usize = 1 << 16;

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send = 0,
    /// Send an empty truncated reply instead.
    Slip = 1,
    Drop = 2,
}

/// The limiter's settings (the control plane compiles them from `[rrl]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub responses_per_second: u32,
    /// Every `slip`-th limited answer is sent truncated; 0: none, 1: all.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Clients never limited (e.g. your own resolvers, monitoring).
    pub exempt: Vec<IpNet>,
}

/// Where the UDP workers find the limiter: the server owns it, and a reload replaces it
/// only when the settings change, so that a reload does not reset the counts.
pub type Slot = arc_swap::ArcSwapOption<Rrl>;

/// Puts a limiter with `settings` (none: RRL off) into `slot`, unless one with the same
/// settings is there already.
pub fn install(slot: &Slot, settings: Option<Settings>) {
    let current = slot.load();
    if current.as_ref().map(|r| &r.config) != settings.as_ref() {
        slot.store(settings.map(|s| std::sync::Arc::new(Rrl::new(s))));
    }
}

/// The limiter: settings and buckets. A reload builds a new one.
pub struct Rrl {
    config: Settings,
    hasher: std::hash::RandomState,
    /// Each bucket: the second (high 32 bits) | answers that second (low 32 bits).
    buckets: Box<[AtomicU64]>,
    epoch: Instant,
}

/// Hashes the kind of an encoded response, for bucketing.
fn classify(response: &[u8], hasher: &mut impl Hasher) {
    let rcode = response[3] & 0x0f;
    let authoritative = response[2] & 0x04 != 0;
    let count = |i: usize| u16::from_be_bytes([response[i], response[i + 1]]);
    let (qdcount, ancount, nscount) = (count(4), count(6), count(8));
    // The question name (lower-cased) and type; an answer's question is never compressed.
    let question = || {
        if qdcount != 1 {
            return None;
        }
        let end = wire::plain_name_end(response, 12)?;
        Some((12..end, response.get(end..end + 2)?))
    };
    let name = |hasher: &mut dyn Hasher, name: std::ops::Range<usize>| {
        // Length bytes are at most 63, so lower-casing the whole name is safe.
        response[name].iter().for_each(|b| hasher.write_u8(b.to_ascii_lowercase()));
    };
    match (rcode, question()) {
        // NOERROR with an answer: by name and type.
        (0, Some((labels, qtype))) if ancount > 0 => {
            hasher.write_u8(0);
            name(hasher, labels);
            hasher.write(qtype);
        }
        // Referrals (not authoritative, NS in authority): one bucket, so that random
        // names under a delegation share it.
        (0, _) if !authoritative && nscount > 0 => hasher.write_u8(4),
        // NODATA: by name (only names that exist get NODATA).
        (0, Some((labels, _))) => {
            hasher.write_u8(1);
            name(hasher, labels);
        }
        // NXDOMAIN: by the zone, and there is one, so one bucket: a random-subdomain
        // flood is limited as one.
        (3, _) => hasher.write_u8(3),
        // Errors, and anything without a readable question: one bucket.
        _ => hasher.write_u8(2),
    }
}

impl std::fmt::Debug for Rrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rrl").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Rrl {
    pub fn new(config: Settings) -> Rrl {
        Rrl {
            config,
            hasher: std::hash::RandomState::new(),
            buckets: (0..TABLE).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
        }
    }

    /// The current second, for [`Rrl::check`] (read once per batch).
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// Counts an answer to `client` and says whether to send it.
    pub fn check(&self, client: IpAddr, response: &[u8], now: u32) -> Action {
        // An IPv4 address (or an IPv4-mapped IPv6 one) goes in the top 32 bits.
        let v4 = |v4: std::net::Ipv4Addr| (u128::from(u32::from(v4)) << 96, self.config.ipv4_prefix, 4);
        let (address, bits, family) = match client {
            IpAddr::V4(a) => v4(a),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or((u128::from(v6), self.config.ipv6_prefix, 6), v4),
        };
        let masked = address & !(u128::MAX.checked_shr(u32::from(bits)).unwrap_or(0));
        let mut h = self.hasher.build_hasher();
        h.write_u128(masked);
        h.write_u8(family);
        if response.len() < 12 {
            return Action::Send;
        }
        classify(response, &mut h);
        if !self.config.exempt.is_empty() && self.config.exempt.iter().any(|n| n.contains(&client)) {
            return Action::Send;
        }
        let hash = h.finish();
        // Keys that collide share the bucket and its count: they are limited sooner,
        // never reset each other.
        let bucket = &self.buckets[hash as usize & (TABLE - 1)];
        let second = u64::from(now);
        let mut current = bucket.load(Ordering::Relaxed);
        let count = loop {
            let count = if current >> 32 == second { (current & 0xffff_ffff) + 1 } else { 1 };
            let next = second << 32 | count.min(0xffff_ffff);
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break count,
                Err(seen) => current = seen,
            }
        };
        let rate = u64::from(self.config.responses_per_second);
        if count <= rate {
            return Action::Send;
        }
        let over = count - rate;
        match self.config.slip {
            0 => Action::Drop,
            slip if over.is_multiple_of(u64::from(slip)) => Action::Slip,
            _ => Action::Drop,
        }
    }
}

/// Rewrites an encoded response, in place, as the empty truncated reply a slip sends:
/// the header (TC set) and the question, and the OPT (its size, extended rcode,
/// version and flags; no options) if the response had one (RFC 6891 7). A question
/// that is not written out in full is not kept: alone, a pointer would point nowhere.
pub fn slip(response: &mut Vec<u8>) {
    if response.len() < 12 {
        return;
    }
    let opt = wire::opt(response).map(|o| (o.udp_size, o.ttl));
    let question = (u16::from_be_bytes([response[4], response[5]]) == 1)
        .then(|| wire::plain_name_end(response, 12).map(|end| end + 4))
        .flatten()
        .filter(|&end| end <= response.len());
    response.truncate(question.unwrap_or(12));
    response[2] |= 0x02;
    response[4..12].fill(0);
    if question.is_some() {
        response[5] = 1;
    }
    if let Some((size, ttl)) = opt {
        response.push(0);
        response.extend_from_slice(&41u16.to_be_bytes());
        response.extend_from_slice(&size.to_be_bytes());
        response.extend_from_slice(&ttl);
        response.extend_from_slice(&[0, 0]);
        response[11] = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name`, type A.
    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.trim_end_matches('.').split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    fn answer(name: &str, rcode: u8, ancount: u16) -> Vec<u8> {
        let mut r = query(name);
        r[2] |= 0x80;
        r[3] = rcode;
        r[6..8].copy_from_slice(&ancount.to_be_bytes());
        r
    }

    fn rrl(rate: u32, slip: u32) -> Rrl {
        Rrl::new(Settings { responses_per_second: rate, slip, ipv4_prefix: 24, ipv6_prefix: 56, exempt: Vec::new() })
    }

    #[test]
    fn over_the_rate_every_second_limited_answer_slips_and_the_rest_drop() {
        let r = rrl(5, 2);
        let a = answer("app.example.", 0, 1);
        let c: IpAddr = "192.0.2.1".parse().unwrap();
        let actions: Vec<Action> = (0..11).map(|_| r.check(c, &a, 7)).collect();
        assert_eq!(&actions[..5], &[Action::Send; 5]);
        assert_eq!(
            &actions[5..],
            &[Action::Drop, Action::Slip, Action::Drop, Action::Slip, Action::Drop, Action::Slip]
        );
        // The next second starts afresh.
        assert_eq!(r.check(c, &a, 8), Action::Send);
    }

    #[test]
    fn the_prefix_and_kind_of_answer_make_the_bucket() {
        let r = rrl(1, 0);
        let a = answer("app.example.", 0, 1);
        let c = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(r.check(c("192.0.2.1"), &a, 1), Action::Send);
        // The same /24: the same bucket.
        assert_eq!(r.check(c("192.0.2.200"), &a, 1), Action::Drop);
        // Another /24, another name, case folded: separate buckets.
        assert_eq!(r.check(c("192.0.3.1"), &a, 1), Action::Send);
        assert_eq!(r.check(c("192.0.2.1"), &answer("www.example.", 0, 1), 1), Action::Send);
        assert_eq!(r.check(c("192.0.2.1"), &answer("APP.example.", 0, 1), 1), Action::Drop);
        // Random subdomains' NXDOMAINs share one bucket, however deep.
        assert_eq!(r.check(c("192.0.2.1"), &answer("x1.example.", 3, 0), 1), Action::Send);
        assert_eq!(r.check(c("192.0.2.1"), &answer("x2.y7.example.", 3, 0), 1), Action::Drop);
        // So do referrals (not authoritative, NS in authority) under any name.
        let referral = |name: &str| {
            let mut a = answer(name, 0, 0);
            a[9] = 1;
            a
        };
        assert_eq!(r.check(c("192.0.2.1"), &referral("a.child.example."), 1), Action::Send);
        assert_eq!(r.check(c("192.0.2.1"), &referral("b.c.child.example."), 1), Action::Drop);
        // A header-only error counts too.
        let mut formerr = vec![0, 9, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(r.check(c("192.0.2.1"), &formerr, 1), Action::Send);
        formerr[1] = 10;
        assert_eq!(r.check(c("192.0.2.1"), &formerr, 1), Action::Drop);
        // IPv6 by /56.
        assert_eq!(r.check(c("2001:db8:0:100::1"), &a, 1), Action::Send);
        assert_eq!(r.check(c("2001:db8:0:1ff::2"), &a, 1), Action::Drop);
        assert_eq!(r.check(c("2001:db8:0:200::1"), &a, 1), Action::Send);
    }

    #[test]
    fn a_limiter_is_replaced_only_when_its_settings_change() {
        let slot = Slot::empty();
        install(&slot, Some(rrl(5, 2).config));
        let first = slot.load_full().expect("installed");
        let c: IpAddr = "192.0.2.1".parse().unwrap();
        let a = answer("app.example.", 0, 1);
        for _ in 0..5 {
            assert_eq!(first.check(c, &a, 3), Action::Send);
        }
        // The same settings (a reload that did not touch `[rrl]`): the same buckets.
        install(&slot, Some(rrl(5, 2).config));
        let same = slot.load_full().expect("kept");
        assert!(std::sync::Arc::ptr_eq(&first, &same));
        assert_eq!(same.check(c, &a, 3), Action::Drop, "the count carried over");
        // New settings: a new limiter; none: RRL off.
        install(&slot, Some(rrl(6, 2).config));
        assert!(!std::sync::Arc::ptr_eq(&first, &slot.load_full().expect("replaced")));
        install(&slot, None);
        assert!(slot.load().is_none());
    }

    #[test]
    fn exempt_clients_and_non_dns_bytes_are_never_limited() {
        let mut config =
            Settings { responses_per_second: 1, slip: 0, ipv4_prefix: 24, ipv6_prefix: 56, exempt: Vec::new() };
        config.exempt.push("10.0.0.0/8".parse().unwrap());
        let r = Rrl::new(config);
        let a = answer("app.example.", 0, 1);
        for _ in 0..10 {
            assert_eq!(r.check("10.1.2.3".parse().unwrap(), &a, 1), Action::Send);
            assert_eq!(r.check("192.0.2.1".parse().unwrap(), &[0u8; 5], 1), Action::Send);
        }
    }

    #[test]
    fn a_slip_keeps_the_header_and_question_with_tc_and_no_records() {
        let q = query("app.example.");
        let mut r = q.clone();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1]);
        slip(&mut r);
        assert_eq!(r.len(), q.len());
        assert_eq!(r[2] & 0x02, 0x02, "TC");
        assert_eq!(&r[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[12..], &q[12..]);
    }

    #[test]
    fn a_slip_keeps_the_opt_without_options_and_drops_extra_questions() {
        let q = query("app.example.");
        let mut r = q.clone();
        r[2] |= 0x84;
        r[7] = 1;
        r[11] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1]);
        // OPT: size 1232, extended rcode 0, version 0, DO; an ECS option.
        r.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0x80, 0, 0, 8, 0, 8, 0, 4, 0, 1, 24, 24]);
        r.extend_from_slice(&[198, 51, 100]);
        slip(&mut r);
        let m = hickory_proto::op::Message::from_vec(&r).expect("the slip parses");
        assert!(m.metadata.truncation && m.answers.is_empty());
        let edns = m.edns.expect("the OPT is kept");
        assert_eq!((edns.max_payload(), edns.flags().dnssec_ok), (1232, true));
        assert!(edns.options().as_ref().is_empty(), "no options");
        // Two questions (a FORMERR echo): the header alone.
        let mut two = vec![0, 7, 0x80, 1, 0, 2, 0, 0, 0, 0, 0, 0];
        two.extend_from_slice(&q[12..]);
        two.extend_from_slice(&q[12..]);
        slip(&mut two);
        assert_eq!(two, vec![0, 7, 0x82, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        // A compressed question (the fuzzer's find: it pointed into the header): the
        // header alone, which parses.
        let mut pointer = vec![0, 1, 0x80, 0x15, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 2, 4, 0, 1, 0];
        slip(&mut pointer);
        assert_eq!(pointer, vec![0, 1, 0x82, 0x15, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(hickory_proto::op::Message::from_vec(&pointer).is_ok());
    }
}
