//! Stable hashes: the same on every build and host, so that instances with the same
//! config make the same sticky choices and spread their probes alike. A leaf module:
//! it imports nothing of the crate.

/// A stable 64-bit mix (splitmix64 finalizer): the same on every build and host, so
/// that instances with the same config make the same sticky choices.
pub fn hash64(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, then mixed: a stable hash of a region name.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash64(h, 0)
}
