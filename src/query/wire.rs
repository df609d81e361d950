//! Reading EDNS options straight from the raw query bytes.
//!
//! hickory-proto decodes the ECS option leniently (it ignores address bytes beyond the
//! source prefix), and RFC 7871 section 6 asks for FORMERR there; so the option is read
//! again here, byte-exact, without allocating. Anything this reader cannot walk was
//! already rejected by hickory's full decode.

/// The data of each option with `code` in the OPT record of a raw message.
pub fn edns_options(msg: &[u8], code: u16) -> impl Iterator<Item = &[u8]> {
    let opt = opt_rdata(msg).unwrap_or(&[]);
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        while pos + 4 <= opt.len() {
            let c = u16::from_be_bytes([opt[pos], opt[pos + 1]]);
            let len = u16::from_be_bytes([opt[pos + 2], opt[pos + 3]]) as usize;
            let start = pos + 4;
            let end = (start + len).min(opt.len());
            pos = start + len;
            if c == code {
                return Some(&opt[start..end]);
            }
        }
        None
    })
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            return Some(pos + 1);
        }
        if len & 0xC0 == 0xC0 {
            return Some(pos + 2);
        }
        pos += len + 1;
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
                Some(len) if len & 0xC0 != 0 => return len & 0xC0 == 0xC0,
                Some(len) => pos += 1 + len as usize,
            }
        }
        pos += 5;
    }
    false
}

/// The RDATA of the first OPT record in the additional section.
fn opt_rdata(msg: &[u8]) -> Option<&[u8]> {
    let qd = u16_at(msg, 4)?;
    let rrs = u16_at(msg, 6)? as usize + u16_at(msg, 8)? as usize;
    let ar = u16_at(msg, 10)? as usize;
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    for i in 0..rrs + ar {
        pos = skip_name(msg, pos)?;
        let rtype = u16_at(msg, pos)?;
        let rdlen = u16_at(msg, pos + 8)? as usize;
        let start = pos + 10;
        let end = start + rdlen;
        if i >= rrs && rtype == 41 {
            return msg.get(start..end);
        }
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn finds_options_after_the_question() {
        // Header: 1 question, 1 additional.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(&[3, b'a', b'p', b'p', 0, 0, 1, 0, 1]);
        // OPT: root, type 41, size 1232, ttl 0, rdlen, options.
        let options = [0u8, 10, 0, 2, 0xAA, 0xBB, 0, 8, 0, 3, 0, 1, 24];
        m.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, options.len() as u8]);
        m.extend_from_slice(&options);
        let ecs: Vec<&[u8]> = edns_options(&m, 8).collect();
        assert_eq!(ecs, vec![&[0u8, 1, 24][..]]);
        assert_eq!(edns_options(&m, 10).count(), 1);
        assert_eq!(edns_options(&m[..20], 8).count(), 0, "truncated: nothing");
    }
}
