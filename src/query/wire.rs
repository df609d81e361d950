//! The one hand-written DNS wire reader: names, the question, the OPT record and its
//! options, read in place without allocating. The fast path, ECS, RRL and the slip
//! all read messages through it, so they agree on what a message says.
//!
//! One rule for label bytes (RFC 1035 4.1.4, RFC 6891 5): 0 ends a name, 1–63 is a
//! label of that length, 0xC0–0xFF starts a compression pointer, and 0x40–0xBF
//! (extended label types, none in use) is malformed.

use std::ops::Range;

pub fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// The offset just past the (possibly compressed) name at `pos`; `None` if it is cut
/// short or malformed. Pointers are not followed.
pub fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        match *msg.get(pos)? {
            0 => return Some(pos + 1),
            len @ 1..=63 => pos += 1 + len as usize,
            0xC0.. => return msg.get(pos + 1).map(|_| pos + 2),
            _ => return None,
        }
    }
}

/// The offset just past the name at `pos` if it is written out in full (no pointer),
/// whole, and at most 255 bytes; else `None`. Within `msg[pos..end]` every length byte
/// is then at most 63, so lower-casing those bytes as ASCII leaves the lengths alone.
pub fn plain_name_end(msg: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        match *msg.get(pos)? {
            0 => return Some(pos + 1).filter(|end| end - start <= 255),
            len @ 1..=63 => pos += 1 + len as usize,
            _ => return None,
        }
        if pos - start > 255 {
            return None;
        }
    }
}

/// Whether a name in the question section is compressed. No query needs that: the
/// first question's name has nothing before it to point at but the header.
pub fn question_has_pointer(msg: &[u8]) -> bool {
    let Some(qd) = u16_at(msg, 4) else { return false };
    let mut pos = 12;
    for _ in 0..qd {
        loop {
            match msg.get(pos).copied() {
                None | Some(0) => break,
                Some(0xC0..) => return true,
                Some(len @ 1..=63) => pos += 1 + len as usize,
                Some(_) => return false,
            }
        }
        pos += 5;
    }
    false
}

/// The OPT record of a message (the first in its additional section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// The requestor's UDP payload size (the CLASS field).
    pub udp_size: u16,
    /// The TTL field: extended RCODE, version, flags (DO is the top bit of the flags).
    pub ttl: [u8; 4],
    /// Where the options (the RDATA) are in the message.
    pub options: Range<usize>,
}

/// Finds the OPT record: walks the question and the answer and authority sections,
/// then the additional section up to the first OPT.
pub fn opt(msg: &[u8]) -> Option<Opt> {
    let qd = u16_at(msg, 4)?;
    let records = u16_at(msg, 6)? as usize + u16_at(msg, 8)? as usize;
    let additional = u16_at(msg, 10)? as usize;
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    for i in 0..records + additional {
        pos = skip_name(msg, pos)?;
        let head = msg.get(pos..pos + 10)?;
        let rdata = pos + 10..pos + 10 + u16::from_be_bytes([head[8], head[9]]) as usize;
        if i >= records && u16::from_be_bytes([head[0], head[1]]) == 41 {
            msg.get(rdata.clone())?;
            return Some(Opt {
                udp_size: u16::from_be_bytes([head[2], head[3]]),
                ttl: [head[4], head[5], head[6], head[7]],
                options: rdata,
            });
        }
        pos = rdata.end;
    }
    None
}

/// The data of each option with `code` in an OPT record's RDATA (a last option cut
/// short is given as far as it goes).
pub fn options(rdata: &[u8], code: u16) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        while pos + 4 <= rdata.len() {
            let c = u16::from_be_bytes([rdata[pos], rdata[pos + 1]]);
            let len = u16::from_be_bytes([rdata[pos + 2], rdata[pos + 3]]) as usize;
            let start = pos + 4;
            let end = (start + len).min(rdata.len());
            pos = start + len;
            if c == code {
                return Some(&rdata[start..end]);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_label_bytes() {
        // A label, a pointer, the root.
        assert_eq!(skip_name(&[3, b'a', b'p', b'p', 0], 0), Some(5));
        assert_eq!(skip_name(&[1, b'x', 0xc0, 12], 0), Some(4));
        assert_eq!(skip_name(&[0], 0), Some(1));
        // Extended label types and cut names are malformed, for every reader.
        for bad in [&[0x40u8, 0][..], &[0x80, 0], &[0xbf, 0], &[3, b'a'], &[0xc0]] {
            assert_eq!(skip_name(bad, 0), None, "{bad:02x?}");
            assert_eq!(plain_name_end(bad, 0), None, "{bad:02x?}");
        }
        assert_eq!(plain_name_end(&[3, b'a', b'p', b'p', 0], 0), Some(5));
        assert_eq!(plain_name_end(&[1, b'x', 0xc0, 12], 0), None, "compressed");
        // 255 bytes at most.
        let mut long: Vec<u8> = std::iter::repeat_n([63u8; 64], 3).flatten().collect();
        long.extend_from_slice(&[61; 62]);
        long.push(0);
        assert_eq!(long.len(), 255);
        assert_eq!(plain_name_end(&long, 0), Some(255));
        long.insert(0, 0);
        long[0] = 1;
        long.insert(1, b'x');
        assert_eq!(plain_name_end(&long, 0), None, "257 bytes");
    }

    #[test]
    fn a_pointer_in_the_question_is_found() {
        let plain = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'p', b'p', 0, 0, 1, 0, 1];
        assert!(!question_has_pointer(&plain));
        // The fuzzer's find: the name is a pointer to offset 2 (a zero byte in the query,
        // the flags in the answer).
        let pointer = [0, 1, 0, 0x13, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 2, 4, 0, 1, 0, 1];
        assert!(question_has_pointer(&pointer));
        // After a label, in the second question, cut short: all found, nothing read past the end.
        let mut two = plain.to_vec();
        two[5] = 2;
        two.extend_from_slice(&[1, b'x', 0xc0, 12, 0, 1, 0, 1]);
        assert!(question_has_pointer(&two));
        assert!(!question_has_pointer(&two[..23]));
        assert!(!question_has_pointer(&plain[..5]));
    }

    #[test]
    fn finds_the_opt_and_its_options_after_the_question() {
        // Header: 1 question, 1 additional.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(&[3, b'a', b'p', b'p', 0, 0, 1, 0, 1]);
        // OPT: root, type 41, size 1232, ttl (DO), rdlen, options.
        let options_bytes = [0u8, 10, 0, 2, 0xAA, 0xBB, 0, 8, 0, 3, 0, 1, 24];
        m.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0x80, 0, 0, options_bytes.len() as u8]);
        m.extend_from_slice(&options_bytes);
        let o = opt(&m).expect("an OPT");
        assert_eq!((o.udp_size, o.ttl), (1232, [0, 0, 0x80, 0]));
        let rdata = &m[o.options];
        let ecs: Vec<&[u8]> = options(rdata, 8).collect();
        assert_eq!(ecs, vec![&[0u8, 1, 24][..]]);
        assert_eq!(options(rdata, 10).count(), 1);
        assert_eq!(opt(&m[..20]), None, "truncated: nothing");
    }
}
